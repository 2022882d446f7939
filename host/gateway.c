/* Request dispatch and the built-in endpoints. */
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "callctx.h"
#include "conn.h"
#include "loader.h"
#include "log.h"
#include "logring.h"
#include "metrics.h"
#include "quarantine.h"
#include "res.h"
#include "router.h"
#include "stacks.h"
#include "watchdog.h"

static const char hexd[] = "0123456789abcdef";

int gateway_request_id_valid(const char *s, size_t n) {
  if (n == 0 || n > 64) return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' ||
          ch == '-'))
      return 0;
  }
  return 1;
}

static int is_lhex(char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

int gateway_traceparent_valid(const char *s, size_t n) {
  /* version(2) - trace-id(32) - parent-id(16) - flags(2) */
  if (n != 55 || s[2] != '-' || s[35] != '-' || s[52] != '-') return 0;
  int nonzero_trace = 0, nonzero_parent = 0;
  for (size_t i = 0; i < n; i++) {
    if (i == 2 || i == 35 || i == 52) continue;
    if (!is_lhex(s[i])) return 0;
    if (i >= 3 && i < 35 && s[i] != '0') nonzero_trace = 1;
    if (i >= 36 && i < 52 && s[i] != '0') nonzero_parent = 1;
  }
  /* Version ff is invalid; we only know version 00's layout exactly. */
  if (s[0] == 'f' && s[1] == 'f') return 0;
  return nonzero_trace && nonzero_parent;
}

static void put_hex64(char *out, uint64_t v) {
  for (int i = 15; i >= 0; i--, v >>= 4) out[i] = hexd[v & 15];
}

void gateway_prepare(conn *c, const http_request *hr) {
  gateway_prepare_req(c->w, &c->req, hr);
  /* A request is dated from when its bytes reached the worker, so that the
   * time it waited for a busy loop counts (watchdog_arrival_ns). */
  if (hr && c->read_ns && c->read_ns < c->req.start_ns)
    c->req.start_ns = c->read_ns;
}

void gateway_prepare_req(worker *w, nno_req *r, const http_request *hr) {
  r->start_ns = uv_hrtime();
  const http_header *h = hr ? http_request_header(hr, "x-request-id") : NULL;
  if (h && gateway_request_id_valid(h->value, h->value_len)) {
    memcpy(r->rid, h->value, h->value_len);
    r->rid_len = h->value_len;
  } else {
    memcpy(r->rid, w->rid_prefix, 16);
    put_hex64(r->rid + 16, ++w->rid_counter);
    r->rid_len = 32;
  }
  r->rid[r->rid_len] = '\0';
  /* The trace context is built on first use (a plugin asks, or the access
   * log writes it): most requests of a busy gateway never need it. */
  r->traceparent_len = 0;
}

const char *gateway_traceparent(nno_req *r) {
  if (r->traceparent_len) return r->traceparent;
  worker *w = g_worker;
  /* Keep the caller's trace id and flags; our span gets a new parent id. */
  char *tp = r->traceparent;
  const http_header *h = r->hr ? http_request_header(r->hr, "traceparent") : NULL;
  if (h && gateway_traceparent_valid(h->value, h->value_len)) {
    memcpy(tp, h->value, 55);
    tp[0] = '0'; /* we speak version 00 downstream */
    tp[1] = '0';
  } else {
    memcpy(tp, "00-", 3);
    put_hex64(tp + 3, worker_rand(w));
    put_hex64(tp + 19, worker_rand(w) | 1);
    memcpy(tp + 52, "-01", 3);
  }
  tp[35] = '-';
  put_hex64(tp + 36, worker_rand(w) | 1);
  tp[55] = '\0';
  r->traceparent_len = 55;
  return tp;
}

static int set_json(nno_req *r, int status, const char *json, size_t len) {
  r->status = status;
  r->body.len = 0;
  r->written = 1;
  static const char ct[] = "Content-Type: application/json\r\n";
  if (buf_append(&r->headers, ct, sizeof ct - 1, SIZE_MAX) ||
      buf_append(&r->body, json, len, SIZE_MAX))
    return NNO_ENOMEM;
  return 0;
}

/* Is the request's host a platform's: a name under the base domain other
 * than api.{base}? Those hosts belong to the platform (README: routing);
 * the host's own endpoints answer them only what is no one's business. */
static int platform_host(const nno_req *r, const char *base) {
  size_t bl = strlen(base);
  if (r->host_len <= bl + 1) return 0; /* the base itself, or not under it */
  const char *dot = r->host + r->host_len - bl - 1;
  if (*dot != '.' || strcasecmp(dot + 1, base) != 0) return 0;
  return !(dot - r->host == 3 && memcmp(r->host, "api", 3) == 0);
}

/* On a platform's host: the status only, no pids (they say nothing to a
 * platform's users and something to an attacker). */
static void builtin_healthz(nno_req *r) {
  if (platform_host(r, g_worker->cfg->base_domain)) {
    static const char ok[] = "{\"status\":\"ok\"}";
    set_json(r, 200, ok, sizeof ok - 1);
    return;
  }
  pid_t pids[METRICS_MAX_WORKERS];
  size_t n = metrics_worker_pids(pids, METRICS_MAX_WORKERS);
  char body[2048];
  int len = snprintf(body, sizeof body, "{\"status\":\"ok\",\"pid\":%d,\"workers\":[",
                     (int)getpid());
  for (size_t i = 0; i < n && len < (int)sizeof body - 32; i++)
    len += snprintf(body + len, sizeof body - (size_t)len, "%s%d",
                    i ? "," : "", (int)pids[i]);
  len += snprintf(body + len, sizeof body - (size_t)len, "]}");
  set_json(r, 200, body, (size_t)len);
}

static void builtin_readyz(nno_req *r) {
  if (metrics_all_ready() && !g_worker->draining) {
    static const char ok[] = "{\"status\":\"ready\"}";
    set_json(r, 200, ok, sizeof ok - 1);
  } else {
    req_problem(r, 503, "Not Ready",
                g_worker->draining ? "the host is shutting down"
                                   : "plugins are still loading");
  }
}

static void builtin_metrics(nno_req *r) {
  char *text;
  size_t len;
  if (metrics_render(&text, &len) != 0) {
    req_problem(r, 500, "Internal Server Error", "cannot render metrics");
    return;
  }
  static const char ct[] = "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n";
  r->status = 200;
  r->written = 1;
  if (buf_append(&r->headers, ct, sizeof ct - 1, SIZE_MAX) ||
      buf_append(&r->body, text, len, SIZE_MAX))
    req_problem(r, 500, "Internal Server Error", "out of memory");
  free(text);
}

typedef struct builtin {
  const char *path;
  size_t len;
  void (*fn)(nno_req *r);
  int everywhere; /* 0: not on a platform's host, where the path is its */
} builtin;

/* Load balancers probe /healthz and /readyz by address or by any name:
 * they answer on every host. /metrics (routes, workers, rate-limit
 * pressure of the whole host) is the operator's: on a platform's host the
 * path goes to routing like any other. */
static const builtin builtins[] = {
    {"/healthz", 8, builtin_healthz, 1},
    {"/readyz", 7, builtin_readyz, 1},
    {"/metrics", 8, builtin_metrics, 0},
};

static int try_builtin(nno_req *r, const http_request *hr) {
  for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
    const builtin *b = &builtins[i];
    if (hr->path_len != b->len || memcmp(hr->path, b->path, b->len) != 0)
      continue;
    if (!b->everywhere && platform_host(r, g_worker->cfg->base_domain))
      return 0;
    r->route_label = b->path;
    if (strcmp(hr->method, "GET") != 0 && strcmp(hr->method, "HEAD") != 0) {
      req_problem(r, 405, "Method Not Allowed",
                  "this endpoint answers GET and HEAD");
      buf_append(&r->headers, "Allow: GET, HEAD\r\n", 18, SIZE_MAX);
      return 1;
    }
    b->fn(r);
    return 1;
  }
  return 0;
}

/* Lower-cased host name without the port, from the Host header. */
static void set_host(nno_req *r, const http_request *hr) {
  const char *h = hr->host ? hr->host : "";
  size_t n = hr->host ? hr->host_len : 0, end = n;
  if (n && h[0] == '[') { /* [v6]:port */
    const char *rb = memchr(h, ']', n);
    end = rb ? (size_t)(rb - h) + 1 : n;
  } else {
    const char *colon = memchr(h, ':', n);
    if (colon) end = (size_t)(colon - h);
  }
  /* "acme.example." and "acme.example" name the same host. */
  if (end > 1 && h[end - 1] == '.') end--;
  /* Never truncate: a cut name could match a platform the full one does
   * not. Longer than DNS allows is refused by the caller. */
  if (end > 253) {
    r->host_len = SIZE_MAX;
    return;
  }
  for (size_t i = 0; i < end; i++)
    r->host[i] = (h[i] >= 'A' && h[i] <= 'Z') ? (char)(h[i] + 32) : h[i];
  r->host[end] = '\0';
  r->host_len = end;
}

/* Run the policy chain. Returns 1 when a hook answered (or failed) and the
 * response is ready, 0 to go on to routing. */
static int run_hooks(nno_req *r, worker *w, int first, int last) {
  for (int stage = first; stage <= last; stage++)
    for (size_t i = 0; i < w->nhooks[stage]; i++) {
      const gw_hook *h = &w->hooks[stage][i];
      r->stage = stage;
      callctx cc;
      callctx_enter(h->plugin, r, &cc);
      int rc = h->fn(r, h->ud);
      callctx_leave(&cc);
      r->stage = 0;
      if (rc == NNO_OK) continue;
      if (rc == NNO_DONE) {
        if (!r->written) req_problem(r, 500, "Internal Server Error",
                                     "a gateway policy answered nothing");
      } else {
        char detail[128];
        snprintf(detail, sizeof detail, "gateway policy of \"%s\" failed: %s",
                 h->plugin->man.name, nno__err_name(rc));
        req_problem(r, 500, "Internal Server Error", detail);
      }
      if (!r->route_label) r->route_label = "policy";
      return 1;
    }
  return 0;
}

/* Match in one router; remembers a 405's Allow list if nothing matched. */
static int match_in(router *rt, nno_req *r, const char *path, size_t plen,
                    char *allow, size_t allow_len, int *saw405) {
  const http_request *hr = r->hr;
  char tmp[128];
  int rc = router_match(rt, hr->method, hr->method_len, path, plen, &r->match,
                        tmp, sizeof tmp);
  if (rc == 0) return 0;
  if (rc == NNO_EINVAL && !*saw405) {
    *saw405 = 1;
    snprintf(allow, allow_len, "%s", tmp);
  }
  return -1;
}

/* Set r up, resolve and route it: 1 when its response is ready (OPTIONS *,
 * a built-in, a RESOLVE or CORS answer, 404, 405, a bad host), 0 when
 * r->match holds its route. */
static int route_request(conn *c, const http_request *hr) {
  nno_req *r = &c->req;
  worker *w = c->w;
  r->hr = hr;
  r->active = 1;
  r->max_body = (size_t)w->cfg->max_response_bytes;
  gateway_prepare(c, hr);
  if (hr->path_len == 1 && hr->path[0] == '*') {
    /* "OPTIONS *" asks what the server as a whole supports (RFC 9110
     * 9.3.7); the reader lets asterisk-form through only with OPTIONS. No
     * platform or route is concerned, so the host answers it. */
    static const char allow[] =
        "Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n";
    r->route_label = "*";
    r->status = 200;
    r->written = 1;
    if (buf_append(&r->headers, allow, sizeof allow - 1, SIZE_MAX))
      req_problem(r, 500, "Internal Server Error", "out of memory");
    return 1;
  }
  set_host(r, hr);
  if (r->host_len == SIZE_MAX) {
    r->host_len = 0;
    r->route_label = "refused";
    req_problem(r, 400, "Bad Request", "host name longer than 253 bytes");
    return 1;
  }
  if (try_builtin(r, hr)) return 1;
  /* Overloaded: answered before any plugin runs (the built-ins above stay
   * reachable, for the operator watching it). */
  if (watchdog_shed(r)) return 1;
  /* Stacks installed or removed by any worker are picked up first. */
  stacks_poll(w);
  /* Quarantines and releases not yet told to the core plugins. */
  quarantine_poll(w);
  /* From here on the request is one of the gateway's: it is owed the
   * end-of-request hooks, whatever answers it. */
  r->done_pending = w->ndone != 0;
  /* RESOLVE picks the platform and stacks; the route is found next, so
   * that AUTHN, AUTHZ and LIMIT can see what it requires (req_route). */
  if (run_hooks(r, w, NNO_STAGE_RESOLVE, NNO_STAGE_RESOLVE) ||
      run_hooks(r, w, NNO_STAGE_CORS, NNO_STAGE_CORS))
    return 1;
  const char *path = hr->path + r->path_strip;
  size_t plen = hr->path_len - r->path_strip;
  if (plen == 0) {
    path = "/";
    plen = 1;
  }
  char allow[128] = "";
  int saw405 = 0, found = -1;
  if (r->scoped) {
    for (size_t i = 0; i < r->nstacks && found != 0; i++)
      found = match_in(r->stacks[i]->router, r, path, plen, allow,
                       sizeof allow, &saw405);
  } else {
    found = match_in(w->router, r, path, plen, allow, sizeof allow, &saw405);
    if (found != 0 && w->dev_mode)
      for (stack *st = w->plugins->stacks; st && found != 0; st = st->next)
        if (st->newest)
          found = match_in(st->router, r, path, plen, allow, sizeof allow,
                           &saw405);
  }
  if (found != 0) {
    r->route_label = "unmatched";
    if (saw405) {
      req_problem(r, 405, "Method Not Allowed",
                  "the route exists but not for this method");
      char line[160];
      int n = snprintf(line, sizeof line, "Allow: %s\r\n", allow);
      buf_append(&r->headers, line, (size_t)n, SIZE_MAX);
    } else if (r->missing[0]) {
      /* An active stack version is not loaded here: the platform is
       * broken, not the path unknown. */
      char detail[LOADER_ERR_MAX + 256];
      const char *tab = strchr(r->missing, '\t');
      int il = tab ? (int)(tab - r->missing) : 0;
      snprintf(detail, sizeof detail,
               "stack %.*s %s is active on this platform but not loaded: %s",
               il, r->missing, tab ? tab + 1 : "",
               stacks_why_missing(r->missing, il, tab ? tab + 1 : ""));
      r->route_label = "stack-missing";
      req_problem(r, 503, "Service Unavailable", detail);
    } else {
      req_problem(r, 404, "Not Found", "no route for this path");
    }
    return 1;
  }
  r->route_label = r->match.pattern;
  return 0;
}

/* Call the route's handler; the response ends now or later. */
static void dispatch(conn *c) {
  nno_req *r = &c->req;
  worker *w = c->w;
  const route_target *t = r->match.target;
  r->plugin = t->plugin;
  /* A package quarantined on this platform is not called. */
  if (quarantine_refuse(r)) {
    conn_request_done(c);
    return;
  }
  w->nrequests_active++;
  r->in_handler = 1;
  callctx cc;
  callctx_enter(t->plugin, r, &cc);
  int rc = t->fn(r, t->ud);
  callctx_leave(&cc);
  r->in_handler = 0;
  if (rc == NNO_ASYNC && !r->ended) {
    r->async = 1;
    return; /* res_end() finishes it */
  }
  if (rc < 0 && !r->written) {
    char detail[128];
    snprintf(detail, sizeof detail, "the handler failed: %s", nno__err_name(rc));
    req_problem(r, 500, "Internal Server Error", detail);
  }
  if (!r->ended && r->res_pending) {
    /* Returned with resource operations pending: the request (and what
     * they will call back with) stays until the last one completes. */
    res_end_when_idle(r);
    return;
  }
  if (rc >= 0 && !r->written && !r->ended) {
    r->status = 204;
  }
  w->nrequests_active--;
  conn_request_done(c);
}

void gateway_handle(conn *c, const http_request *hr) {
  nno_req *r = &c->req;
  if (r->upload) {
    /* Routed and through its stages when its head came (gateway_head);
     * the handler reads the file from its start. Or answered then, the
     * body read only to keep the connection. */
    r->active = 1;
    if (r->upload == REQ_UPLOAD_ANSWERED) {
      conn_request_done(c);
      return;
    }
    if (lseek(r->upload_fd, 0, SEEK_SET) != 0) {
      req_problem(r, 500, "Internal Server Error",
                  "cannot read the stored request body");
      conn_request_done(c);
      return;
    }
    dispatch(c);
    return;
  }
  if (route_request(c, hr) ||
      run_hooks(r, c->w, NNO_STAGE_AUTHN, NNO_STAGE_LIMIT)) {
    conn_request_done(c);
    return;
  }
  dispatch(c);
}

int gateway_head(conn *c, const http_request *hr) {
  nno_req *r = &c->req;
  if (route_request(c, hr)) return GW_ANSWERED;
  const route_target *t = r->match.target;
  if (!t->upload_max) {
    /* RESOLVE sent it elsewhere: handled as any request once its body is
     * in (RESOLVE and CORS run again then; they only set the request).
     * Its end is reported then, once. */
    r->done_pending = 0;
    req_reset(r);
    return GW_ORDINARY;
  }
  if (run_hooks(r, c->w, NNO_STAGE_AUTHN, NNO_STAGE_LIMIT)) return GW_ANSWERED;
  return GW_UPLOAD;
}

static void access_line(worker *w, nno_req *r, int status, uint64_t dur_us);

void gateway_complete(conn *c) {
  nno_req *r = &c->req;
  worker *w = c->w;
  uint64_t dur_us = (uv_hrtime() - r->start_ns) / 1000;
  int status = r->gone ? 499 : r->status;
  metrics_request(r->route_label ? r->route_label : "unmatched", status, dur_us);
  if (w->cfg->access_log) access_line(w, r, status, dur_us);
  if (r->done_pending) gateway_done(r, status);
}

void gateway_done(nno_req *r, int status) {
  worker *w = g_worker;
  if (!r->done_pending) return;
  r->done_pending = 0; /* first: once, even if a hook ends in a reset */
  if (!w) return;
  /* Read-only from here: every res_ call refuses an ended request. */
  int ended = r->ended;
  r->ended = 1;
  for (size_t i = 0; i < w->ndone; i++) {
    const gw_done *d = &w->done[i];
    callctx cc;
    callctx_enter(d->plugin, r, &cc);
    d->fn(r, status, d->ud);
    callctx_leave(&cc);
  }
  r->ended = ended;
}

static void access_line(worker *w, nno_req *r, int status, uint64_t dur_us) {
  logline l;
  log_begin(&l, NNO_LOG_INFO, "access");
  log_strn(&l, "rid", r->rid, r->rid_len);
  if (r->hr) {
    log_strn(&l, "method", r->hr->method, r->hr->method_len);
    /* The path only: query strings may carry secrets. */
    log_strn(&l, "path", r->hr->path, r->hr->path_len > 256 ? 256 : r->hr->path_len);
  }
  log_str(&l, "route", r->route_label ? r->route_label : "unmatched");
  log_int(&l, "status", status);
  /* A streamed body (res_blob) is sent after this line: its length. */
  log_int(&l, "bytes",
          (long long)(r->body_src ? r->body_left : r->body.len));
  log_int(&l, "dur_us", (long long)dur_us);
  log_strn(&l, "trace", gateway_traceparent(r) + 3, 32);
  /* Buffered: written in batches by the worker (log.h). */
  if (log_end_deferred(&l)) worker_arm_log_flush(w);
  /* A platform's request is in its logs (logring.h) at once. */
  if (r->scope_len) {
    const char *pkg = r->plugin ? r->plugin->man.name : NULL;
    logring_meta lm = {r->scope, r->scope_len, pkg, pkg ? strlen(pkg) : 0,
                       r->rid,   r->rid_len,   NNO_LOG_INFO};
    logring_append(&lm, l.buf, l.len);
  }
}
