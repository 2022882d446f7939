/* Incremental, strict HTTP/1.1 request reader: bytes in, one request out.
 *
 * Knows nothing of sockets or the loop: conn.c feeds it what it reads and
 * acts on the events it returns. It is a self-contained parser (http-parser
 * 2.9.4 lets through what RFC 9110/9112 say a server MUST refuse: bare LF,
 * obs-fold, unbounded chunk extensions, lax trailers) and refuses whitespace
 * before a header colon, obs-fold, bare CR or LF, Transfer-Encoding on
 * HTTP/1.0, ambiguous framing, chunk extensions outside their grammar,
 * request-targets with octets >= 0x80, lengths past 2^63 - 1, ... Limits left
 * at 0 take the defaults (32 KiB head, 8 KiB a line, 100 fields, 1 MiB
 * body): nginx's large_client_header_buffers (4 x 8k) and Node's 16 KiB
 * head both fit in them.
 */
#ifndef NNO_HOST_HTTP_H
#define NNO_HOST_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct http_limits {
  size_t max_header_bytes; /* whole head: request line + fields; 431 over */
  size_t max_headers;      /* number of fields; 431 over */
  size_t max_body_bytes;   /* decoded body; 413 over */
  size_t max_field_bytes;  /* one line of the head with its CRLF: 414 for
                              the request-line, 431 for a field line; at
                              most max_header_bytes */
} http_limits;

typedef struct http_header {
  const char *name; /* NUL-terminated, as sent (case kept) */
  size_t name_len;
  const char *value; /* NUL-terminated, OWS trimmed */
  size_t value_len;
} http_header;

/* A parsed request. Every pointer is owned by the reader and valid until the
 * next http_reader_reset() or http_reader_free(). Strings are NUL-terminated. */
typedef struct http_request {
  const char *method; /* "GET" ... */
  size_t method_len;
  const char *target; /* request-target as sent */
  size_t target_len;
  const char *path; /* target up to '?' (origin-form; "*" for OPTIONS *) */
  size_t path_len;
  const char *query; /* after '?', without it; "" when none */
  size_t query_len;
  int version_major, version_minor;
  http_header *headers;
  size_t nheaders;
  const char *host; /* Host field value ("" if absent on HTTP/1.0) */
  size_t host_len;
  char *body; /* decoded body (chunked framing removed); NUL-terminated */
  size_t body_len;
  int keep_alive;      /* 1 if the connection may be reused afterwards */
  int expect_continue; /* 1 if "Expect: 100-continue" was sent */
  int head;            /* 1 for HEAD: the response carries no body */
} http_request;

typedef enum http_event {
  HTTP_NEED_MORE = 0,  /* all input consumed; feed more */
  HTTP_HEAD_DONE = 1,  /* head parsed and valid; body (if any) follows.
                          The caller may send "100 Continue" now. Always
                          comes before MESSAGE_DONE, even without a body:
                          feed again, with len 0 if nothing is left. */
  HTTP_MESSAGE_DONE = 2, /* a whole request is ready in http_reader_request().
                            Input after it was NOT consumed (pipelining):
                            feed it again after http_reader_reset(). */
  HTTP_ERROR = 3,      /* refuse: answer http_reader_error_status() and
                          close the connection. */
} http_event;

typedef struct http_reader http_reader;

/* Allocate a reader with copied limits. NULL on allocation failure. */
http_reader *http_reader_new(const http_limits *limits);
void http_reader_free(http_reader *r);

/* Make the reader ready for the next request on the same connection,
 * releasing the previous request's memory (a small buffer may be kept). */
void http_reader_reset(http_reader *r);

/* Feed bytes. Sets *consumed to how many were used; never more than len.
 * Returns the first event reached. After HTTP_HEAD_DONE, call again with the
 * rest of the input. After HTTP_MESSAGE_DONE or HTTP_ERROR, do not feed
 * until http_reader_reset(). */
http_event http_reader_feed(http_reader *r, const char *data, size_t len,
                            size_t *consumed);

/* 1 if some bytes of a request have been received (so a timeout or EOF
 * now is an incomplete request, not an idle connection). */
int http_reader_started(const http_reader *r);
/* 1 once the head has been parsed (HTTP_HEAD_DONE was returned). */
int http_reader_head_done(const http_reader *r);

/* ---- spooled bodies -------------------------------------------------------
 * A body may go elsewhere than memory (a file): the reader asks `fn` when a
 * head announcing a body (a Content-Length > 0, or chunked) is complete and
 * before it judges the body's length; `fn` answers the body's bound for
 * this request, or 0 to hold it in memory under the reader's limit. With a
 * bound, the reader is "spooling": after HTTP_HEAD_DONE the caller gives it
 * a sink (http_reader_spool), or takes the request back to memory
 * (http_reader_unspool). The sink gets every decoded body byte in order; a
 * sink failing (non-zero) is answered 500. The request's `body` stays
 * empty. `fn` is kept across resets. */
typedef uint64_t (*http_head_fn)(void *ud, const http_request *req);
typedef int (*http_sink_fn)(void *ud, const char *data, size_t n);
void http_reader_on_head(http_reader *r, http_head_fn fn, void *ud);
/* 1 if the head's fn gave the current request a bound. */
int http_reader_spooling(const http_reader *r);
void http_reader_spool(http_reader *r, http_sink_fn sink, void *ud);
/* The request's Content-Length; -1 for a chunked body. */
int64_t http_reader_content_length(const http_reader *r);
/* Back to memory under the reader's own limit: -1 (and HTTP_ERROR, 413
 * pending) if the Content-Length is over it. */
int http_reader_unspool(http_reader *r);

/* Body bytes the current request will hold, as far as is known now: 0
 * before the head is done, then its Content-Length; for a chunked body what
 * was decoded plus the whole of the chunk being read (its size comes before
 * its data). Never more than the body limit. 0 for a spooled body. */
uint64_t http_reader_body_need(const http_reader *r);

/* Valid after HTTP_HEAD_DONE (head fields only) or HTTP_MESSAGE_DONE;
 * NULL before the head is done. */
const http_request *http_reader_request(const http_reader *r);

/* After HTTP_ERROR: the status to answer (400, 413, 414, 417, 431, 501, 505;
 * 500 when memory ran out) and a short human reason naming what was wrong.
 * Static strings. 0 and "" when there was no error. */
int http_reader_error_status(const http_reader *r);
const char *http_reader_error_detail(const http_reader *r);

/* Case-insensitive header lookup on a parsed request; NULL if absent. */
const http_header *http_request_header(const http_request *req,
                                       const char *name);

#endif
