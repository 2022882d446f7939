/* Connections: reading requests, ordering responses, timeouts, limits. */
#ifndef NNO_HOST_CONN_H
#define NNO_HOST_CONN_H

#include <uv.h>

#include "http.h"
#include "req.h"
#include "worker.h"

typedef enum conn_state {
  CONN_IDLE,     /* waiting for the first byte of a request */
  CONN_READING,  /* part of a request received */
  CONN_HANDLING, /* request dispatched; reads paused */
  CONN_CLOSING,
} conn_state;

/* A request still arriving after this long gives way to a new connection
 * when the worker is past overload.max_connections. */
#define CONN_SLOW_READ_MS 1000

typedef struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  worker *w;
  struct conn *prev, *next; /* in w->conns */
  http_reader *reader;
  conn_state state;
  int handles_open;  /* tcp + timer not yet closed */
  int close_after;   /* close once the output is flushed */
  int eof;           /* the client shut down its side */
  int writing;       /* a uv_write is in flight */
  int in_process;    /* inside process(): do not re-enter it */
  size_t inflight;   /* bytes of the write in flight, held until it ends */
  size_t counted;    /* this connection's share of w->out_bytes */
  size_t in_counted; /* this connection's share of w->in_bytes */
  uint64_t nrequests; /* requests answered on this connection */
  uint64_t deadline;  /* loop time (ms) the current wait ends; 0: none */
  uint64_t idle_since; /* loop time (ms) it last began waiting for a request */
  uint64_t reading_since; /* loop time (ms) the first byte of the request
                             being read arrived (CONN_READING) */
  uint64_t upload_until; /* loop time (ms) an upload's body must be in by
                            (limits.upload_timeout_ms), while spooling */
  uint64_t read_ns;   /* when the last bytes read reached the worker
                         (watchdog_arrival_ns): a request's start; 0
                         before the first read */
  uint64_t accept_ns, accept_iter; /* when and in which loop iteration it
                                      was accepted (watchdog.h) */
  int accept_bytes; /* its first bytes were there at the accept, after a
                       stretch it waited through (watchdog_accepted_ns) */
  buf out;           /* responses not yet handed to the kernel */
  buf pending;       /* bytes read but not consumed (pipelining) */
  /* Streaming the response's body source (req.body_src, res_blob): read
   * STREAM_CHUNK bytes at a time on the thread pool, each only once the
   * output is below its bounds (as a request would wait), so an object is
   * never held whole. The request stays active until the last byte. */
  int streaming;
  int stream_reading; /* a read is on the thread pool */
  uv_fs_t stream_fs;
  char *stream_buf;
  nno_req req;
} conn;

/* Accept one connection from `server` (the listener's callback). With
 * cfg->max_connections open, the connection idle longest (no request in
 * progress, nothing unsent) is closed to make room, as nginx reuses
 * keep-alive connections; only when none is idle is the new one answered
 * 503 and closed. Past overload.max_connections the same, and then the
 * connection reading a head or body for more than CONN_SLOW_READ_MS
 * longest is closed (a slow client must not hold the worker's last
 * places); only when neither exists is the new one answered 503. */
void conn_accept(worker *w, uv_stream_t *server);

/* The response of c->req is complete: serialise it, flush, and go on with
 * the next pipelined request. Called by the gateway (sync) or res_end. */
void conn_request_done(conn *c);

/* Unsent output (conn.out plus the write in flight) is bounded: a
 * connection holding more than cfg->conn_output_bytes, or holding any while
 * its worker holds more than cfg->worker_output_bytes, reads and parses no
 * further request (what was read waits in conn.pending) until its write
 * completes. Past the worker's bound, each connection adds at most the
 * answer to the request it was handling. */

/* Request bodies are bounded per worker too: each request reserves its
 * body in w->in_bytes (a Content-Length when its head is done, before any
 * "100 Continue"; a chunked body as each chunk size arrives), and one that
 * would take the worker past cfg->worker_input_bytes is answered 503 with
 * Retry-After and the connection closes. The reservation ends with the
 * request's answer (or the connection). */

/* Upload routes (route_add_upload): their bodies go to a temporary file
 * instead of w->in_bytes; at most CONN_MAX_UPLOADS of them per worker are
 * being received or handled at a time (503 with Retry-After over it). */
#define CONN_MAX_UPLOADS 8
/* ... and at most CONN_MAX_UPLOADS_EACH of them per platform whose key or
 * user sent it (the operator's are not counted), so one platform cannot
 * take every slot; the platforms' together leave CONN_UPLOADS_OPERATOR
 * slots that only the operator's uploads take, so that no number of
 * platforms can shut the operator's installs out. */
#define CONN_MAX_UPLOADS_EACH 2
#define CONN_UPLOADS_OPERATOR 2

/* Drain: close idle connections; busy ones close after their response. */
void conn_drain_all(worker *w);

#endif
