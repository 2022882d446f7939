/* Connections: feed the request reader, dispatch one request at a time (so
 * pipelined responses leave in order), batch output per read, and enforce
 * timeouts and limits.
 *
 * Lifetime: a conn is freed when both of its handles are closed AND no
 * request of it is in flight. An async handler may outlive the socket: its
 * request stays valid (req_gone() says 1) until res_end(). */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway.h"
#include "log.h"
#include "res.h"
#include "router.h"
#include "watchdog.h"

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void process(conn *c, const char *data, size_t n);
static void resume(conn *c);
static void flush(conn *c);
static void conn_close(conn *c);
static void stream_stop(conn *c);
static void stream_pump(conn *c);

/* Bytes of a body source read at a time. */
#define STREAM_CHUNK (64u << 10)

/* ---- bounded output ------------------------------------------------------
 * Pipelined requests are answered as fast as they are parsed, and one read
 * holds hundreds: without a bound a client that sends and never reads makes
 * the worker queue every answer. So a connection starts no request while
 * its unsent output is above its bound, or while it has some and the
 * worker's is above the worker's bound (conn.h); what it sent meanwhile
 * waits in c->pending and it is not read. */

/* Unsent output of c: responses not yet handed to the kernel, and the
 * buffer of the write in flight (freed when it completes). */
static size_t queued(const conn *c) {
  return c->out.len + c->inflight;
}

/* Bring w->out_bytes up to date with c's queue (nothing once closing: its
 * buffers are about to be freed). */
static void account(conn *c) {
  worker *w = c->w;
  size_t now = c->state == CONN_CLOSING ? 0 : queued(c);
  w->out_bytes = w->out_bytes - c->counted + now;
  c->counted = now;
}

/* 1 if c may not start another request now: its unsent output is over
 * its bound, or it has any while the worker's is over the worker's bound.
 * A connection with nothing unsent (a client that reads its answers) is
 * never held back by others. Called after flush(), a connection that is
 * full always has a write in flight, whose end (on_write) resumes it. */
static int out_full(const conn *c) {
  const worker *w = c->w;
  size_t q = queued(c);
  return q > (size_t)w->cfg->conn_output_bytes ||
         (q > 0 && w->out_bytes > (size_t)w->cfg->worker_output_bytes);
}

/* ---- bounded input -------------------------------------------------------
 * A request is dispatched once its whole body is in memory, so without a
 * bound a worker holds as many bodies as clients care to half-send (10,000
 * connections of 1 MiB each). Each connection reserves what its request
 * will hold in w->in_bytes before reading it (conn.h); a reservation that
 * does not fit is answered 503 before "100 Continue", or mid-way through a
 * chunked body, and the connection closes. */

/* Grow c's reservation to what its request is known to need. -1 if the
 * worker's bound does not have room for it (nothing reserved then). */
static int in_reserve(conn *c) {
  worker *w = c->w;
  uint64_t need = http_reader_body_need(c->reader);
  if (need <= c->in_counted) return 0;
  size_t bound = (size_t)w->cfg->worker_input_bytes;
  size_t others = w->in_bytes - c->in_counted;
  if (others > bound || need > bound - others) return -1;
  w->in_bytes = others + (size_t)need;
  c->in_counted = (size_t)need;
  return 0;
}

/* The body is gone (reader reset, or connection freed). */
static void in_release(conn *c) {
  c->w->in_bytes -= c->in_counted;
  c->in_counted = 0;
}

int buf_append(buf *b, const void *data, size_t n, size_t max) {
  if (n > max || b->len > max - n) return NNO_ETOOBIG;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return NNO_ENOMEM;
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, data, n);
  b->len += n;
  return 0;
}

void buf_free(buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out) {
  conn *c = h->data;
  worker *w = c->w;
  /* The slab is consumed before the next read callback, except when a
   * read is re-entered from within processing, which libuv never does. */
  *out = uv_buf_init(w->read_slab, sizeof w->read_slab);
}

static void on_timer(uv_timer_t *t);

/* Deadlines are lazy, as in nginx: moving a deadline later only records it,
 * and the timer, when it fires early, re-arms for the rest. Keep-alive
 * requests then cost no timer-heap operation at all in the common case. */
static void arm(conn *c, int64_t ms) {
  uint64_t now = uv_now(&c->w->loop);
  c->deadline = now + (uint64_t)ms;
  if (!uv_is_active((uv_handle_t *)&c->timer) ||
      uv_timer_get_due_in(&c->timer) > (uint64_t)ms)
    uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
}

/* The wait for more of a body: body_timeout_ms of silence, and for an
 * upload being spooled no later than its overall deadline, so a client
 * trickling a byte now and then cannot hold an upload slot for ever. */
static void arm_body(conn *c) {
  int64_t ms = c->w->cfg->body_timeout_ms;
  if (c->req.upload == REQ_UPLOAD_FILE) {
    uint64_t now = uv_now(&c->w->loop);
    int64_t left = c->upload_until > now ? (int64_t)(c->upload_until - now) : 0;
    if (left < ms) ms = left;
  }
  arm(c, ms);
}

/* No deadline while a handler works; the timer may stay armed and will
 * find nothing to do. */
static void disarm(conn *c) { c->deadline = 0; }

static void conn_free(conn *c) {
  worker *w = c->w;
  if (c->prev) c->prev->next = c->next;
  else w->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  w->nconns--;
  w->nclosing--;
  in_release(c);
  http_reader_free(c->reader);
  buf_free(&c->out);
  buf_free(&c->pending);
  req_release(&c->req);
  free(c);
  worker_maybe_done(w);
}

static void on_handle_close(uv_handle_t *h) {
  conn *c = h->data;
  if (--c->handles_open == 0 && !c->req.active) conn_free(c);
}

static void conn_close(conn *c) {
  if (c->state == CONN_CLOSING) return;
  c->state = CONN_CLOSING;
  c->w->nclosing++;
  account(c);
  if (c->req.active) c->req.gone = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_close((uv_handle_t *)&c->tcp, on_handle_close);
  uv_close((uv_handle_t *)&c->timer, on_handle_close);
  /* A read in flight stops the stream when it returns. */
  if (c->streaming && !c->stream_reading) stream_stop(c);
}

/* Answer an error found before a request could be dispatched (framing,
 * limits, timeouts) and close. */
static void refuse(conn *c, int status, const char *detail) {
  nno_req *r = &c->req;
  /* A request that went through the gateway's hooks at its head (an
   * upload whose body then failed) stays itself, answered with this
   * instead: it ends once, with this status. Any other is a new one. */
  if (!r->done_pending) {
    req_reset(r);
    gateway_prepare(c, NULL);
  }
  req_problem(r, status, http_reason(status), detail);
  /* 503s here are about load (connections, bodies): the client may retry. */
  if (status == 503) {
    static const char ra[] = "Retry-After: 1\r\n";
    (void)buf_append(&r->headers, ra, sizeof ra - 1, SIZE_MAX);
  }
  r->route_label = "refused";
  c->close_after = 1;
  c->state = CONN_HANDLING;
  r->active = 1;
  conn_request_done(c);
}

#define CONN_DRAIN_BYTES 65536

/* ---- uploads --------------------------------------------------------------
 * The body of an upload route (route_add_upload) is written to a temporary
 * file as it arrives, as nginx writes client bodies to temporary files from
 * its loop (a write(2) to the page cache), and is not counted in
 * w->in_bytes. The reader asks upload_bound() when a head announcing a body
 * is complete (only on a worker that has upload routes, so other workers
 * never pay for it); with a bound the gateway runs the stages at once
 * (gateway_head), and a refusal is answered before any body byte is read.
 * A refused request's body is read and thrown away when it is at most
 * CONN_DRAIN_BYTES long (Content-Length, no "100-continue" awaited), so
 * the connection stays open; otherwise the connection closes after the
 * answer.
 * The silence allowed between two reads of a spooled body is
 * body_timeout_ms, and the whole body must be in within
 * upload_timeout_ms of its head (arm_body). */

static uint64_t upload_bound(void *ud, const http_request *q) {
  conn *c = ud;
  route_match m;
  if (router_match(c->w->upload_router, q->method, q->method_len, q->path,
                   q->path_len, &m, NULL, 0) != 0)
    return 0;
  return ((const route_target *)m.target)->upload_max;
}

static int spool_write(void *ud, const char *data, size_t n) {
  conn *c = ud;
  nno_req *r = &c->req;
  while (n) {
    ssize_t k = write(r->upload_fd, data, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      log_warn("cannot store a request body: %s", strerror(errno));
      return -1;
    }
    data += k;
    n -= (size_t)k;
    r->upload_len += (uint64_t)k;
  }
  arm_body(c);
  return 0;
}

static int discard(void *ud, const char *data, size_t n) {
  (void)ud, (void)data, (void)n;
  return 0;
}

/* c->req was answered when its head came. A small body the client is
 * sending anyway is read and thrown away, then the answer goes, and the
 * connection stays open (0); any other is not read, and the connection
 * closes after the answer (1). */
static int answered(conn *c, const http_request *hr) {
  nno_req *r = &c->req;
  if (!hr->expect_continue &&
      (uint64_t)http_reader_content_length(c->reader) <= CONN_DRAIN_BYTES) {
    r->upload = REQ_UPLOAD_ANSWERED;
    r->active = 0;
    http_reader_spool(c->reader, discard, c);
    return 0;
  }
  c->close_after = 1;
  c->state = CONN_HANDLING;
  r->active = 1;
  conn_request_done(c);
  return 1;
}

/* Uploads open on this worker now sent with a platform's credential (a
 * key or a user's): in all (*all) and of the platform whose credential
 * sent c->req (the result). Both 0 for the operator's request (or an
 * unknown caller's), which these bounds do not count. */
static int is_platform_caller(const nno_req *r) {
  return r->caller_kind == NNO_CALLER_KEY || r->caller_kind == NNO_CALLER_USER;
}

static unsigned platform_uploads(worker *w, const conn *c, unsigned *all) {
  const nno_req *r = &c->req;
  unsigned n = 0;
  *all = 0;
  if (!is_platform_caller(r)) return 0;
  for (const conn *o = w->conns; o; o = o->next)
    if (o != c && o->req.upload == REQ_UPLOAD_FILE &&
        is_platform_caller(&o->req)) {
      (*all)++;
      if (strcmp(o->req.caller[0], r->caller[0]) == 0) n++;
    }
  return n;
}

/* The head of a request to spool is complete. 1 if it was answered and the
 * connection is closing, 0 to go on reading its body. */
static int upload_begin(conn *c, const http_request *hr) {
  worker *w = c->w;
  nno_req *r = &c->req;
  switch (gateway_head(c, hr)) {
  case GW_ANSWERED:
    return answered(c, hr);
  case GW_ORDINARY:
    if (http_reader_unspool(c->reader) != 0) {
      refuse(c, 413, "request body too large");
      return 1;
    }
    if (in_reserve(c) != 0) {
      refuse(c, 503, "too many request bodies in progress; retry later");
      return 1;
    }
    return 0;
  default:
    break;
  }
  if (w->nuploads >= CONN_MAX_UPLOADS) {
    static const char ra[] = "Retry-After: 1\r\n";
    req_problem(r, 503, http_reason(503),
                "too many uploads in progress; retry later");
    (void)buf_append(&r->headers, ra, sizeof ra - 1, SIZE_MAX);
    return answered(c, hr);
  }
  unsigned all = 0, mine = 0;
  if (w->nuploads >= CONN_MAX_UPLOADS_EACH) /* a scan only when it may bind */
    mine = platform_uploads(w, c, &all);
  if (all >= CONN_MAX_UPLOADS - CONN_UPLOADS_OPERATOR) {
    static const char ra[] = "Retry-After: 1\r\n";
    req_problem(r, 503, http_reason(503),
                "too many uploads by platforms' keys in progress; retry "
                "later");
    (void)buf_append(&r->headers, ra, sizeof ra - 1, SIZE_MAX);
    return answered(c, hr);
  }
  if (mine >= CONN_MAX_UPLOADS_EACH) {
    static const char ra[] = "Retry-After: 1\r\n";
    req_problem(r, 429, http_reason(429),
                "this platform has 2 uploads in progress on this worker "
                "already; retry when one is done");
    (void)buf_append(&r->headers, ra, sizeof ra - 1, SIZE_MAX);
    return answered(c, hr);
  }
  if (req_upload_open(r, w->cfg->data_dir, &w->nuploads) != 0) {
    req_problem(r, 500, http_reason(500), "cannot store the request body");
    return answered(c, hr);
  }
  /* Not dispatched yet: a client going away now frees the connection (and
   * the file) at once. gateway_handle dispatches it once the body is in. */
  r->active = 0;
  c->upload_until = uv_now(&w->loop) + (uint64_t)w->cfg->upload_timeout_ms;
  http_reader_spool(c->reader, spool_write, c);
  return 0;
}

static void on_timer(uv_timer_t *t) {
  conn *c = t->data;
  if (c->deadline == 0) return;
  uint64_t now = uv_now(&c->w->loop);
  if (now < c->deadline) {
    uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
    return;
  }
  c->deadline = 0;
  switch (c->state) {
  case CONN_IDLE:
    conn_close(c);
    break;
  case CONN_READING:
    if (!http_reader_head_done(c->reader))
      refuse(c, 408, "request head not received in time");
    else if (c->req.upload == REQ_UPLOAD_FILE && now >= c->upload_until)
      refuse(c, 408, "upload not received within limits.upload_timeout_ms");
    else
      refuse(c, 408, "request body not received in time");
    break;
  default:
    /* A client that stopped reading a streamed body. */
    if (c->streaming) conn_close(c);
    break;
  }
}

/* The open connection waiting longest for a request with nothing to send
 * (a keep-alive connection between requests, or one that never sent any),
 * other than `fresh` (the one being accepted), or NULL. A scan, done only
 * at the limit. */
static conn *longest_idle(worker *w, const conn *fresh) {
  conn *best = NULL;
  for (conn *c = w->conns; c; c = c->next) {
    if (c == fresh || c->state != CONN_IDLE || c->close_after || c->writing ||
        c->out.len || c->pending.len || c->req.active ||
        http_reader_started(c->reader))
      continue;
    if (!best || c->idle_since < best->idle_since) best = c;
  }
  return best;
}

/* The connection reading one request (head or body, nothing dispatched,
 * nothing to send) for longest, if that is more than CONN_SLOW_READ_MS,
 * other than `fresh`; or NULL. A scan, done only past the limit. */
static conn *slowest_reader(worker *w, const conn *fresh) {
  uint64_t now = uv_now(&w->loop);
  conn *best = NULL;
  for (conn *c = w->conns; c; c = c->next) {
    if (c == fresh || c->state != CONN_READING || c->close_after ||
        c->writing || c->out.len || c->req.active || c->streaming ||
        now - c->reading_since <= CONN_SLOW_READ_MS)
      continue;
    if (!best || c->reading_since < best->reading_since) best = c;
  }
  return best;
}

void conn_accept(worker *w, uv_stream_t *server) {
  conn *c = calloc(1, sizeof *c);
  if (!c) goto refuse_oom;
  c->w = w;
  req_reset(&c->req);
  c->reader = http_reader_new(&w->limits);
  if (!c->reader) {
    free(c);
    goto refuse_oom;
  }
  if (w->upload_router) http_reader_on_head(c->reader, upload_bound, c);
  uv_tcp_init(&w->loop, &c->tcp);
  uv_timer_init(&w->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles_open = 2;
  c->next = w->conns;
  if (w->conns) w->conns->prev = c;
  w->conns = c;
  w->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  uv_os_fd_t fd = -1;
  (void)uv_fileno((uv_handle_t *)&c->tcp, &fd);
  c->accept_ns = watchdog_accepted_ns(fd, &c->accept_bytes);
  c->accept_iter = watchdog_iteration();
  char why[192];
  int over = watchdog_overloaded(w, why, sizeof why);
  if (over == WD_OVERLOAD_CONNECTIONS) {
    /* Past overload.max_connections: make room as nginx reuses keep-alive
     * connections -- the one idle longest, else the one slowest to send
     * its request -- so that a few stuck clients cannot shut everyone out;
     * with neither, answered at once and closed, before the connection
     * costs a request. */
    conn *old = longest_idle(w, c);
    if (!old) old = slowest_reader(w, c);
    if (!old) {
      watchdog_count_rejected(over);
      refuse(c, 503, why);
      return;
    }
    conn_close(old);
  }
  if ((int64_t)(w->nconns - w->nclosing) > w->cfg->max_connections) {
    /* Over the limit: make room by closing the connection idle longest,
     * which HTTP allows at any time; with none idle, a short 503 the
     * client can act on, then close. */
    conn *idle = longest_idle(w, c);
    if (!idle) {
      refuse(c, 503, "too many connections; retry later");
      return;
    }
    conn_close(idle);
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->state = CONN_IDLE;
  c->idle_since = uv_now(&w->loop);
  arm(c, w->cfg->idle_timeout_ms);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  return;
refuse_oom: {
  /* Accept and drop, or the listener would spin on the pending socket. */
  uv_tcp_t *tmp = malloc(sizeof *tmp);
  if (!tmp) return;
  uv_tcp_init(&w->loop, tmp);
  uv_accept(server, (uv_stream_t *)tmp);
  uv_close((uv_handle_t *)tmp, (uv_close_cb)free);
}
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn *c = s->data;
  if (n == 0) return;
  if (n < 0) {
    if (n == UV_EOF && (c->state == CONN_HANDLING || c->writing ||
                        c->out.len || c->pending.len)) {
      /* Half-close after complete requests: still answer them. */
      c->eof = 1;
      c->close_after = c->pending.len == 0;
      uv_read_stop(s);
      return;
    }
    conn_close(c);
    return;
  }
  c->read_ns = c->read_ns ? watchdog_arrival_ns()
                          : watchdog_first_arrival_ns(c->accept_ns,
                                                      c->accept_iter,
                                                      c->accept_bytes);
  c->in_process = 1;
  process(c, b->base, (size_t)n);
  c->in_process = 0;
}

static void process(conn *c, const char *data, size_t n) {
  worker *w = c->w;
  int head_done = 0; /* a head just completed: feed again, even with 0 bytes */
  while ((n > 0 || head_done) && c->state != CONN_CLOSING) {
    int full = 0;
    head_done = 0;
    if (c->state == CONN_IDLE && !c->close_after && out_full(c)) {
      /* Before starting another request, let the kernel take what it
       * will; still over a bound, the request waits. */
      flush(c);
      if (c->state == CONN_CLOSING) return;
      full = out_full(c);
    }
    if (c->state == CONN_HANDLING || c->close_after || full) {
      /* Keep the rest for after the current response, or for when the
       * output has drained. */
      if (!c->close_after &&
          buf_append(&c->pending, data, n, w->limits.max_header_bytes +
                                               w->limits.max_body_bytes + 65536)) {
        conn_close(c);
        return;
      }
      break;
    }
    size_t used = 0;
    http_event ev = http_reader_feed(c->reader, data, n, &used);
    data += used;
    n -= used;
    if (ev != HTTP_ERROR && in_reserve(c) != 0) {
      refuse(c, 503, "too many request bodies in progress; retry later");
      n = 0;
      continue;
    }
    switch (ev) {
    case HTTP_NEED_MORE:
      if (c->state == CONN_IDLE && http_reader_started(c->reader)) {
        c->state = CONN_READING;
        c->reading_since = uv_now(&w->loop);
        arm(c, w->cfg->header_timeout_ms);
      }
      break;
    case HTTP_HEAD_DONE: {
      const http_request *hr = http_reader_request(c->reader);
      if (c->state == CONN_IDLE) c->reading_since = uv_now(&w->loop);
      c->state = CONN_READING;
      if (http_reader_spooling(c->reader) && upload_begin(c, hr)) {
        n = 0;
        break;
      }
      if (hr->expect_continue && n == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (buf_append(&c->out, cont, sizeof cont - 1, SIZE_MAX)) {
          conn_close(c);
          return;
        }
        flush(c);
      }
      arm_body(c);
      head_done = 1;
      break;
    }
    case HTTP_MESSAGE_DONE:
      disarm(c);
      c->state = CONN_HANDLING;
      gateway_handle(c, http_reader_request(c->reader));
      break;
    case HTTP_ERROR:
      refuse(c, http_reader_error_status(c->reader),
             http_reader_error_detail(c->reader));
      n = 0;
      break;
    }
  }
  if (c->state == CONN_CLOSING) return;
  if (c->pending.len && !c->close_after)
    uv_read_stop((uv_stream_t *)&c->tcp); /* backpressure */
  flush(c);
}

typedef struct wreq {
  uv_write_t req;
  conn *c;
  buf data;
} wreq;

static void after_flush(conn *c) {
  if (c->close_after && !c->writing && c->out.len == 0 &&
      c->state != CONN_HANDLING)
    conn_close(c);
}

static void on_write(uv_write_t *req, int status) {
  wreq *wr = (wreq *)req;
  conn *c = wr->c;
  buf_free(&wr->data);
  free(wr);
  c->writing = 0;
  c->inflight = 0;
  account(c);
  if (c->state == CONN_CLOSING) return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  flush(c);
  if (c->streaming) {
    stream_pump(c);
    return;
  }
  /* Drained below its bounds: go on with what was kept back. */
  if (c->state == CONN_IDLE && !c->in_process && !out_full(c)) resume(c);
}

static void flush_out(conn *c);

/* Hand c->out to the kernel, then account for what is left. */
static void flush(conn *c) {
  flush_out(c);
  account(c);
}

static void flush_out(conn *c) {
  if (c->writing || c->state == CONN_CLOSING) return;
  if (c->out.len == 0) {
    after_flush(c);
    return;
  }
  uv_buf_t b = uv_buf_init(c->out.p, (unsigned)c->out.len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == (int)c->out.len) {
    c->out.len = 0;
    after_flush(c);
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    conn_close(c);
    return;
  }
  if (n < 0) n = 0;
  /* The kernel took part: hand the buffer itself to a write request
   * (no copy); the connection starts a fresh one. */
  wreq *wr = malloc(sizeof *wr);
  if (!wr) {
    conn_close(c);
    return;
  }
  wr->c = c;
  wr->data = c->out;
  memset(&c->out, 0, sizeof c->out);
  uv_buf_t rest = uv_buf_init(wr->data.p + n, (unsigned)(wr->data.len - (size_t)n));
  c->writing = 1;
  c->inflight = wr->data.len;
  if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &rest, 1, on_write) != 0) {
    buf_free(&wr->data);
    free(wr);
    c->writing = 0;
    c->inflight = 0;
    conn_close(c);
  }
}

/* Serialise c->req's response into c->out. */
static int emit(conn *c) {
  nno_req *r = &c->req;
  worker *w = c->w;
  const http_request *hr = r->hr;
  int status = r->status;
  int close = c->close_after || w->draining || !hr || !hr->keep_alive;
  int no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
  int is_head = hr && hr->head;
  /* Formatted by hand: this runs for every response, and printf-family
   * calls were a fifth of a worker's instructions. */
  worker_update_date(w);
  const char *reason = http_reason(status);
  size_t rl = strlen(reason);
  char head[512];
  char *p = head;
  memcpy(p, "HTTP/1.1 ", 9);
  p += 9;
  *p++ = (char)('0' + status / 100 % 10);
  *p++ = (char)('0' + status / 10 % 10);
  *p++ = (char)('0' + status % 10);
  *p++ = ' ';
  memcpy(p, reason, rl);
  p += rl;
  memcpy(p, "\r\n", 2);
  p += 2;
  memcpy(p, w->date, w->date_len);
  p += w->date_len;
  memcpy(p, "X-Request-Id: ", 14);
  p += 14;
  memcpy(p, r->rid, r->rid_len);
  p += r->rid_len;
  memcpy(p, "\r\n", 2);
  p += 2;
  if (!no_body) {
    memcpy(p, "Content-Length: ", 16);
    p += 16;
    char digits[24];
    int nd = 0;
    size_t v = r->body_src ? (size_t)r->body_left : r->body.len;
    do {
      digits[nd++] = (char)('0' + v % 10);
      v /= 10;
    } while (v);
    while (nd) *p++ = digits[--nd];
    memcpy(p, "\r\n", 2);
    p += 2;
  }
  if (close) {
    memcpy(p, "Connection: close\r\n", 19);
    p += 19;
  } else if (hr->version_minor == 0) {
    memcpy(p, "Connection: keep-alive\r\n", 24);
    p += 24;
  }
  int n = (int)(p - head);
  size_t max = SIZE_MAX;
  if (buf_append(&c->out, head, (size_t)n, max) ||
      buf_append(&c->out, r->keep.p, r->keep.len, max) ||
      buf_append(&c->out, r->headers.p, r->headers.len, max) ||
      buf_append(&c->out, "\r\n", 2, max))
    return -1;
  if (!no_body && !is_head && !r->body_src && r->body.len &&
      buf_append(&c->out, r->body.p, r->body.len, max))
    return -1;
  if (close) c->close_after = 1;
  account(c);
  return 0;
}

static void request_finish(conn *c);
static void stream_start(conn *c);

void conn_request_done(conn *c) {
  nno_req *r = &c->req;
  /* A body cut at max_response_bytes (a res_write refused, the refusal
   * ignored) is never sent as if whole. */
  if (r->body_over)
    req_problem(r, 500, "Internal Server Error",
                "the response is larger than limits.max_response_bytes");
  /* A body streamed from storage still reads the platform's file: the
   * request holds the platform until the stream is over (req_reset). */
  if (!r->body_src) res_request_end(r);
  gateway_complete(c);
  if (c->state == CONN_CLOSING) {
    /* The client went away while the handler worked: nothing to send. */
    r->active = 0;
    if (c->handles_open == 0) conn_free(c);
    return;
  }
  if (emit(c) != 0) {
    r->active = 0;
    conn_close(c);
    return;
  }
  if (r->body_src && r->body_left && !(r->hr && r->hr->head) &&
      r->status != 304 && r->status != 204) {
    stream_start(c);
    return;
  }
  r->active = 0;
  request_finish(c);
}

/* The response is out (or queued): ready the connection for the next
 * request. */
static void request_finish(conn *c) {
  nno_req *r = &c->req;
  worker *w = c->w;
  req_reset(r);
  http_reader_reset(c->reader);
  in_release(c);
  c->state = CONN_IDLE;
  c->idle_since = uv_now(&w->loop);
  c->nrequests++;
  /* Bound the time the client takes to read the answer, too. */
  arm(c, w->cfg->idle_timeout_ms);
  /* Out at once, pipelined or not (one write an answer, as nginx): the
   * next request may hold the loop (an in-process handler), and this
   * answer must not wait for it. */
  flush(c);
  if (c->close_after) return;
  if (c->in_process) return; /* process() goes on with the rest itself */
  resume(c);
}

/* ---- body sources ---------------------------------------------------------
 * A response whose body is a file (res_blob): the head is queued by emit(),
 * then the connection reads the file STREAM_CHUNK bytes at a time on the
 * thread pool and queues each, reading the next only while its output is
 * within its bounds (out_full, as for pipelined requests); on_write pumps
 * again as the client reads. A client that goes away stops it (conn_close);
 * a read that fails or ends early closes the connection, since the head
 * promised the length. */

static void on_stream_read(uv_fs_t *req);

static void stream_start(conn *c) {
  c->stream_buf = malloc(STREAM_CHUNK);
  if (!c->stream_buf) {
    c->req.active = 0;
    conn_close(c);
    return;
  }
  c->streaming = 1;
  c->stream_fs.data = c;
  arm(c, c->w->cfg->idle_timeout_ms);
  flush(c);
  if (c->state == CONN_CLOSING) return; /* conn_close stopped it */
  stream_pump(c);
}

/* The stream is over, sent or not: let the connection be freed or go on. */
static void stream_release(conn *c) {
  c->streaming = 0;
  free(c->stream_buf);
  c->stream_buf = NULL;
  c->req.active = 0;
}

/* Stopped by a closing connection: free it once its handles are closed. */
static void stream_stop(conn *c) {
  stream_release(c);
  req_reset(&c->req); /* closes the file */
  if (c->handles_open == 0) conn_free(c);
}

static void stream_pump(conn *c) {
  nno_req *r = &c->req;
  if (!c->streaming || c->stream_reading || c->state == CONN_CLOSING) return;
  if (r->body_left == 0) {
    stream_release(c);
    request_finish(c);
    return;
  }
  if (out_full(c)) return; /* a write is in flight: on_write pumps */
  size_t n = r->body_left < STREAM_CHUNK ? (size_t)r->body_left : STREAM_CHUNK;
  uv_buf_t b = uv_buf_init(c->stream_buf, (unsigned)n);
  c->stream_reading = 1;
  if (uv_fs_read(&c->w->loop, &c->stream_fs, r->body_fd, &b, 1, -1,
                 on_stream_read) != 0) {
    c->stream_reading = 0;
    conn_close(c);
  }
}

static void on_stream_read(uv_fs_t *req) {
  conn *c = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  c->stream_reading = 0;
  if (c->state == CONN_CLOSING) {
    stream_stop(c);
    return;
  }
  nno_req *r = &c->req;
  if (n <= 0) {
    log_warn("a streamed body ended %llu bytes early: %s",
             (unsigned long long)r->body_left,
             n < 0 ? uv_strerror((int)n) : "end of file");
    conn_close(c);
    return;
  }
  if ((uint64_t)n > r->body_left) n = (ssize_t)r->body_left;
  if (buf_append(&c->out, c->stream_buf, (size_t)n, SIZE_MAX)) {
    conn_close(c);
    return;
  }
  r->body_left -= (uint64_t)n;
  arm(c, c->w->cfg->idle_timeout_ms);
  flush(c);
  stream_pump(c);
}

/* Go on after a pause (async response, full output): first the bytes kept
 * back, then reading again. */
static void resume(conn *c) {
  if (c->state != CONN_IDLE) return;
  if (c->pending.len) {
    buf p = c->pending;
    memset(&c->pending, 0, sizeof c->pending);
    c->in_process = 1;
    process(c, p.p, p.len);
    c->in_process = 0;
    buf_free(&p);
  }
  /* Busy again: the end of that response, or of the drain, resumes. */
  if (c->pending.len || c->state == CONN_HANDLING || c->state == CONN_CLOSING)
    return;
  if (c->eof) {
    /* The client shut its side: nothing more comes. A request cut short
     * by it cannot complete (as in on_read). */
    if (c->state == CONN_READING) {
      conn_close(c);
      return;
    }
    c->close_after = 1;
    flush(c);
    return;
  }
  /* Idle, or the kept-back bytes ended inside a request: read on. */
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

void conn_drain_all(worker *w) {
  conn *c = w->conns;
  while (c) {
    conn *next = c->next;
    if (c->state == CONN_IDLE && !c->writing && c->out.len == 0 &&
        c->nrequests > 0) {
      /* Idle keep-alive: closing it is what HTTP allows at any time. */
      conn_close(c);
    } else if (c->state == CONN_IDLE && c->nrequests == 0) {
      /* Accepted just before the drain began, its request is likely on its
       * way: answer it (with Connection: close, as the worker is draining)
       * rather than reset it, but do not wait long for it. */
      uint64_t grace = w->cfg->header_timeout_ms < 2000
                           ? (uint64_t)w->cfg->header_timeout_ms : 2000;
      arm(c, (int64_t)grace);
    } else if (c->state != CONN_READING) {
      c->close_after = 1;
    }
    /* A request still arriving is read to its end and answered (with
     * Connection: close, since the worker is draining). */
    c = next;
  }
}
