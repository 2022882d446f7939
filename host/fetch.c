/* libcurl multi on libuv. */
#include "fetch.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "callctx.h"
#include "loader.h"
#include "log.h"
#include "req.h"
#include "watchdog.h"

typedef struct transfer {
  struct transfer *prev, *next;
  fetcher *f;
  struct plugin *owner;
  CURL *easy;
  struct curl_slist *headers;
  char *body; /* request body copy */
  buf resp_head;
  buf resp_body;
  size_t max_bytes;
  int too_big;
  nno_http_done_fn done;
  void *ud;
  char errbuf[CURL_ERROR_SIZE];
} transfer;

typedef struct sock_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  fetcher *f;
} sock_ctx;

struct fetcher {
  uv_loop_t *loop;
  const nno_config *cfg;
  CURLM *multi;
  uv_timer_t timer;
  transfer *list;
  size_t active;
  int closing;
};

static void check_done(fetcher *f);

static void finish(transfer *t, int error, int status, const char *msg) {
  fetcher *f = t->f;
  nno_http_response res;
  memset(&res, 0, sizeof res);
  res.error = error;
  res.status = error ? 0 : status;
  res.headers.ptr = t->resp_head.p ? t->resp_head.p : "";
  res.headers.len = t->resp_head.len;
  res.body.ptr = t->resp_body.p ? t->resp_body.p : "";
  res.body.len = t->resp_body.len;
  res.error_message = error ? msg : NULL;
  curl_multi_remove_handle(f->multi, t->easy);
  curl_easy_cleanup(t->easy);
  curl_slist_free_all(t->headers);
  if (t->prev) t->prev->next = t->next;
  else f->list = t->next;
  if (t->next) t->next->prev = t->prev;
  f->active--;
  t->owner->pending--;
  callctx cc;
  callctx_enter(t->owner, NULL, &cc);
  t->done(&res, t->ud);
  callctx_leave(&cc);
  buf_free(&t->resp_head);
  buf_free(&t->resp_body);
  free(t->body);
  free(t);
}

static void check_done(fetcher *f) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(f->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    transfer *t;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    CURLcode rc = m->data.result;
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK) {
      finish(t, 0, (int)status, NULL);
    } else if (t->too_big) {
      finish(t, NNO_ETOOBIG, 0, "response larger than the allowed maximum");
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
      finish(t, NNO_ETIMEDOUT, 0, "timed out");
    } else {
      finish(t, NNO_EIO, 0, t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    }
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  watchdog_woke();
  sock_ctx *s = h->data;
  fetcher *f = s->f;
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  int running;
  curl_multi_socket_action(f->multi, s->fd, flags, &running);
  check_done(f);
}

static void on_timeout(uv_timer_t *h) {
  fetcher *f = h->data;
  int running;
  curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(f);
}

static int timer_fn(CURLM *m, long ms, void *userp) {
  fetcher *f = userp;
  if (ms < 0) uv_timer_stop(&f->timer);
  else uv_timer_start(&f->timer, on_timeout, (uint64_t)ms, 0);
  return 0;
}

static void sock_free(uv_handle_t *h) { free(h->data); }

static int socket_fn(CURL *e, curl_socket_t fd, int what, void *userp,
                     void *sockp) {
  fetcher *f = userp;
  sock_ctx *s = sockp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      uv_poll_stop(&s->poll);
      uv_close((uv_handle_t *)&s->poll, sock_free);
      curl_multi_assign(f->multi, fd, NULL);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->fd = fd;
    s->f = f;
    if (uv_poll_init_socket(f->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->poll.data = s;
    curl_multi_assign(f->multi, fd, s);
  }
  int ev = 0;
  if (what & CURL_POLL_IN) ev |= UV_READABLE;
  if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
  uv_poll_start(&s->poll, ev, on_poll);
  return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  transfer *t = ud;
  size_t len = size * n;
  if (buf_append(&t->resp_body, p, len, t->max_bytes)) {
    t->too_big = 1;
    return 0; /* makes curl fail the transfer */
  }
  return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  transfer *t = ud;
  size_t len = size * n;
  /* Keep only the last response's header block (after redirects or 100). */
  if (len > 5 && memcmp(p, "HTTP/", 5) == 0) t->resp_head.len = 0;
  if (buf_append(&t->resp_head, p, len, 64 * 1024)) {
    t->too_big = 1;
    return 0;
  }
  return len;
}

fetcher *fetch_new(uv_loop_t *loop, const nno_config *cfg) {
  static int global_done;
  if (!global_done) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) return NULL;
    global_done = 1;
  }
  fetcher *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->loop = loop;
  f->cfg = cfg;
  f->multi = curl_multi_init();
  if (!f->multi) {
    free(f);
    return NULL;
  }
  uv_timer_init(loop, &f->timer);
  f->timer.data = f;
  curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
  curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
  curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
  curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
  return f;
}

int fetch_start(fetcher *f, struct plugin *owner, const nno_http_request *req,
                nno_http_done_fn done, void *ud) {
  if (!f || f->closing) return NNO_ESTATE;
  if (!req || !done || !req->url || req->size < offsetof(nno_http_request,
                                                          max_response_bytes))
    return NNO_EINVAL;
  if (strncmp(req->url, "http://", 7) != 0 &&
      strncmp(req->url, "https://", 8) != 0)
    return NNO_EINVAL;
  if ((int64_t)f->active >= f->cfg->fetch_max_concurrent) return NNO_EBUSY;
  transfer *t = calloc(1, sizeof *t);
  if (!t) return NNO_ENOMEM;
  t->f = f;
  t->owner = owner;
  t->done = done;
  t->ud = ud;
  t->max_bytes = (size_t)f->cfg->fetch_max_bytes;
  if (req->size >= sizeof(nno_http_request) && req->max_response_bytes &&
      req->max_response_bytes < t->max_bytes)
    t->max_bytes = req->max_response_bytes;
  long timeout = (long)f->cfg->fetch_timeout_ms;
  if (req->timeout_ms && req->timeout_ms < timeout) timeout = req->timeout_ms;
  t->easy = curl_easy_init();
  if (!t->easy) goto fail;
  CURL *e = t->easy;
  curl_easy_setopt(e, CURLOPT_URL, req->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
  if (req->method) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
  if (req->method && strcmp(req->method, "HEAD") == 0)
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  for (const char *const *h = req->headers; h && *h; h++) {
    struct curl_slist *n = curl_slist_append(t->headers, *h);
    if (!n) goto fail;
    t->headers = n;
  }
  if (t->headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  if (req->body) {
    t->body = malloc(req->body_len ? req->body_len : 1);
    if (!t->body) goto fail;
    memcpy(t->body, req->body, req->body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
  }
  if (curl_multi_add_handle(f->multi, e) != CURLM_OK) goto fail;
  t->next = f->list;
  if (f->list) f->list->prev = t;
  f->list = t;
  f->active++;
  owner->pending++;
  return 0;
fail:
  if (t->easy) curl_easy_cleanup(t->easy);
  curl_slist_free_all(t->headers);
  free(t->body);
  free(t);
  return NNO_ENOMEM;
}

void fetch_cancel_owner(fetcher *f, struct plugin *owner) {
  transfer *t = f->list;
  while (t) {
    transfer *next = t->next;
    if (!owner || t->owner == owner)
      finish(t, NNO_ECANCELED, 0, "canceled: the host is stopping");
    t = next;
  }
}

static void fetcher_closed(uv_handle_t *h) { free(h->data); }

void fetch_free(fetcher *f) {
  if (!f) return;
  f->closing = 1;
  fetch_cancel_owner(f, NULL);
  curl_multi_cleanup(f->multi);
  uv_close((uv_handle_t *)&f->timer, fetcher_closed);
}
