/* The request object behind the ABI's opaque nno_req: one per connection,
 * reused across keep-alive requests, so the common path allocates nothing. */
#ifndef NNO_HOST_REQ_H
#define NNO_HOST_REQ_H

#include <stddef.h>
#include <stdint.h>

#include <nno/plugin.h>

#include "http.h"
#include "router.h"

struct conn;
struct plugin;
struct event_run;

#define REQ_ARENA_INLINE 2048
#define REQ_ARENA_MAX (1u << 20)

typedef struct arena_chunk {
  struct arena_chunk *next;
  size_t used, cap;
  _Alignas(16) char data[];
} arena_chunk;

typedef struct buf {
  char *p;
  size_t len, cap;
} buf;

/* Append; 0 or NNO_ENOMEM / NNO_ETOOBIG when over `max`. */
int buf_append(buf *b, const void *data, size_t n, size_t max);
void buf_free(buf *b);

/* What became of a request's body at its head (conn.c, uploads). */
enum {
  REQ_UPLOAD_NONE = 0,
  REQ_UPLOAD_FILE = 1,     /* spooled to upload_fd: dispatch when it is in */
  REQ_UPLOAD_ANSWERED = 2, /* answered at the head; a small body is read
                              and thrown away, then the answer goes */
};

struct nno_req {
  struct conn *c;
  const http_request *hr; /* owned by the connection's reader */
  route_match match;
  struct plugin *plugin; /* the handler's plugin, NULL for built-ins */
  const char *route_label; /* for metrics and logs: pattern or fixed name */
  int status;
  int async;   /* handler returned NNO_ASYNC, res_end() not called yet */
  int written; /* a res_ call set something */
  int gone;    /* the client disconnected */
  int active;  /* between dispatch and the end of the response */
  int in_handler; /* the handler has not returned yet */
  int ended;   /* res_end() was called */
  int stage;   /* the policy stage running now, 0 outside the chain */
  buf keep;    /* headers a policy kept across res_problem (CORS...) */
  buf headers; /* "Name: value\r\n" lines from the handler */
  buf body;
  size_t max_body;
  /* A res_write/res_json went past max_body: the response is a 500
   * problem, not the body cut short (req_finish). */
  int body_over;
  unsigned nheaders; /* res_header/res_header_keep calls taken */
  char scope[65]; /* set by a RESOLVE hook; "" when none */
  size_t scope_len;
  int scoped;
  size_t path_strip;
  struct stack *stacks[16];
  size_t nstacks;
  /* Since ABI 1.3: the stacks of `stacks` hold a reference (stacks.h)
   * until the request is reset; and the first active stack version the
   * RESOLVE hook found not loaded (req_stack_missing), "" when none. */
  int stacks_held;
  char missing[160];
  char host[256]; /* lower-cased, without port */
  size_t host_len;
  /* Who is calling: set by an AUTHN hook (req_set_caller). */
  int caller_kind;
  uint8_t caller_len[5]; /* platform, tenant, subject, session; unused */
  size_t scopes_len;
  char caller[4][65];    /* platform, tenant, subject, session */
  char scopes[1024];
  /* The caller's tenant path (req_set_tenant_path), "" when none. */
  size_t tenant_path_len;
  char tenant_path[1024];
  /* Resources (res.c). Handles live in the arena. */
  unsigned res_pending; /* operations started and not completed yet */
  int res_entered;      /* platform_enter succeeded: leave at the end */
  int in_cb;            /* inside a resource completion: an end waits for
                           its return */
  int end_when_idle;    /* the handler returned with operations pending:
                           the last completion ends the response */
  struct event_run *event; /* a host-made request (platform_event), NULL
                              for a client's */
  /* A body source (res_blob): the response's body is body_left bytes read
   * from body_fd, streamed by the connection after the head instead of
   * `body`. The fd is the request's: closed when it is reset. */
  int body_src;
  int body_fd;
  uint64_t body_left;
  /* The body of an upload route (route_add_upload), spooled to an
   * unlinked temporary file as it arrives; the file is the request's until
   * it is reset (the response ended). *upload_count counts open ones. */
  int upload; /* REQ_UPLOAD_... */
  int upload_fd;
  uint64_t upload_len;
  unsigned *upload_count;
  /* Containment (ABI 1.4): the platform's plan as the RESOLVE hook gave it
   * (req_set_plan), "" when none: it picks the request's budgets. And the
   * sandbox serving the request, NULL in-process (sandbox.c). */
  char plan[33];
  /* The request ran the gateway's hooks and the end-of-request hooks are
   * owed to it (set only when some are registered): cleared when they
   * run, once (gateway_done). */
  int done_pending;
  struct sbx_proc *sbx;
  uint64_t sbx_id; /* the request's id in that sandbox's protocol */
  char peer[64]; /* the client's address as text, made on first use */
  size_t peer_len;
  char rid[72];
  size_t rid_len;
  char traceparent[56];
  size_t traceparent_len;
  uint64_t start_ns;
  /* Arena: an inline first chunk, then malloc'ed ones up to REQ_ARENA_MAX. */
  size_t arena_used, arena_total;
  arena_chunk *arena_more;
  _Alignas(16) char arena_inline[REQ_ARENA_INLINE];
};

/* Prepare for a new request (keeps buffers). */
void req_reset(nno_req *r);
/* Release everything (connection close). */
void req_release(nno_req *r);
void *req_arena_alloc(nno_req *r, size_t n);

/* Give r an empty temporary file for its body: O_TMPFILE in
 * {data_dir}/tmp (made 0700 if missing), or a mkstemp file unlinked at
 * once, so it has no name and goes with its last fd. Counts it in *count
 * until r is reset. 0, or NNO_EIO (logged). */
int req_upload_open(nno_req *r, const char *data_dir, unsigned *count);

/* Write a problem+json response into `headers` (its Content-Type line)
 * and `body`, both emptied first: the one shape every problem answer of
 * the host has, in-process and in a sandbox. On allocation failure the
 * body may be cut short. */
void problem_build(buf *headers, buf *body, int status, const char *title,
                   const char *detail, const char *rid, size_t rid_len);

/* The most headers res_header and res_header_keep take for one response,
 * together: past it, NNO_ETOOBIG (and a sandbox's RES with more lines,
 * beyond the one Content-Type of res_json or a problem, is refused). */
#define RES_HEADERS_MAX 100

/* Append "name: value\r\n" to `b` unless that makes it more than 65536
 * bytes: 0, or NNO_ETOOBIG with `b` as it was. (Name and value are
 * checked by the caller.) */
/* Is `name: value` a header a package may add to its response (a token
 * name, no control characters but tab in the value, not one the host
 * writes itself, at most 8 KiB)? 0 with the lengths in *nl and *vl,
 * NNO_EINVAL, or NNO_ETOOBIG. In-process and in a sandbox alike. */
int res_header_check(const char *name, const char *value, size_t *nl,
                     size_t *vl);
int header_line_add(buf *b, const char *name, size_t nl, const char *value,
                    size_t vl);

/* The "\r\n"-ended lines in `p`..`p + n`. */
size_t header_lines(const char *p, size_t n);

/* Find query parameter `name` in the raw query `q` (without '?') and
 * percent-decode its value ('+' is a space) into memory from
 * alloc(ctx, n): 0 with *out set, NNO_ENOENT, or NNO_ENOMEM. */
int query_param_find(const char *q, size_t qlen, const char *name,
                     void *(*alloc)(void *ctx, size_t n), void *ctx,
                     nno_str *out);

/* Replace the response with a problem+json body. */
void req_problem(nno_req *r, int status, const char *title,
                 const char *detail);

/* Append `s` as a JSON string literal (quotes included). Bytes that are
 * not well-formed UTF-8 are written as U+FFFD: the literal is always valid
 * JSON. */
int json_append_string(buf *b, const char *s, size_t n);

/* Error names and messages from NNO_ERRNO_MAP. */
const char *nno__strerror(int err);
const char *nno__err_name(int err);

/* Reason phrase for a status code. */
const char *http_reason(int status);

#endif
