/* The host side of the plugin ABI: the nno_host_api table. */
#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "callctx.h"
#include "conn.h"
#include "fetch.h"
#include "gateway.h"
#include "jsonv.h"
#include "ratelimit.h"
#include "res.h"
#include "loader.h"
#include "metrics.h"
#include "quarantine.h"
#include "router.h"
#include "log.h"
#include "logring.h"
#include "meter.h"
#include "services.h"
#include "stacks.h"
#include "worker.h"

/* ---- plugin ---------------------------------------------------------- */

static const char *api_plugin_name(nno_plugin *p) {
  return ((plugin *)p)->man.name;
}
static const char *api_plugin_version(nno_plugin *p) {
  return ((plugin *)p)->man.version;
}
static const char *api_plugin_config(nno_plugin *p) {
  return ((plugin *)p)->man.config_json;
}
static void api_plugin_set_data(nno_plugin *p, void *d) {
  ((plugin *)p)->data = d;
}
static void *api_plugin_data(nno_plugin *p) { return ((plugin *)p)->data; }

static void api_plugin_fail(nno_plugin *p, const char *fmt, ...) {
  plugin *pl = (plugin *)p;
  if (!pl->initing) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pl->fail, sizeof pl->fail, fmt, ap);
  va_end(ap);
}

static void api_log(nno_plugin *p, int level, const char *fmt, ...) {
  if (!log_level_enabled(level)) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  logline l;
  const char *name = p ? ((plugin *)p)->man.name : "?";
  log_begin(&l, level, msg);
  log_str(&l, "plugin", name);
  /* In a platform's request: its platform and request id, and the line
   * goes to the platform's logs (logring.h). */
  const nno_req *r = g_callctx.req;
  if (r && r->scope_len) {
    log_strn(&l, "platform", r->scope, r->scope_len);
    log_strn(&l, "rid", r->rid, r->rid_len);
  }
  log_end(&l);
  if (r && r->scope_len) {
    logring_meta lm = {r->scope, r->scope_len, name, strlen(name),
                       r->rid,   r->rid_len,   level};
    logring_append(&lm, l.buf, l.len);
  }
}

/* ---- routes ---------------------------------------------------------- */

static int api_route_add(nno_plugin *p, const char *method,
                         const char *pattern, nno_handler_fn fn, void *ud) {
  plugin *pl = (plugin *)p;
  if (!pl->initing || !method || !pattern || !fn) return NNO_EINVAL;
  const manifest_route *declared = NULL;
  for (size_t i = 0; i < pl->man.nroutes; i++)
    if (strcmp(pl->man.routes[i].method, method) == 0 &&
        strcmp(pl->man.routes[i].path, pattern) == 0)
      declared = &pl->man.routes[i];
  if (!declared) {
    if (!pl->undeclared[0])
      snprintf(pl->undeclared, sizeof pl->undeclared, "%.31s %.120s", method,
               pattern);
    api_log(p, NNO_LOG_ERROR, "route %s %s is not declared in package.json",
            method, pattern);
    return NNO_EINVAL;
  }
  for (size_t i = 0; i < pl->nroutes; i++)
    if (strcmp(pl->routes[i].method, method) == 0 &&
        strcmp(pl->routes[i].pattern, pattern) == 0)
      return NNO_EEXIST;
  plugin_route *v = realloc(pl->routes, (pl->nroutes + 1) * sizeof *v);
  if (!v) return NNO_ENOMEM;
  pl->routes = v;
  plugin_route *r = &v[pl->nroutes];
  r->method = strdup(method);
  r->pattern = strdup(pattern);
  if (!r->method || !r->pattern) {
    free(r->method);
    free(r->pattern);
    return NNO_ENOMEM;
  }
  r->target.plugin = pl;
  r->target.fn = fn;
  r->target.ud = ud;
  r->target.scope = declared->scope ? declared->scope : "";
  r->target.upload_max = 0;
  r->scope = r->target.scope;
  pl->nroutes++;
  return 0;
}

/* ---- request --------------------------------------------------------- */

static nno_str mk(const char *p, size_t n) {
  nno_str s = {p, n};
  return s;
}

static nno_str api_req_method(nno_req *r) {
  return mk(r->hr->method, r->hr->method_len);
}
static nno_str api_req_path(nno_req *r) {
  return mk(r->hr->path, r->hr->path_len);
}
static nno_str api_req_query(nno_req *r) {
  return mk(r->hr->query, r->hr->query_len);
}

static int api_req_param(nno_req *r, const char *name, nno_str *out) {
  size_t n = strlen(name);
  for (size_t i = 0; i < r->match.nparams; i++) {
    const route_param *p = &r->match.params[i];
    if (p->name_len == n && memcmp(p->name, name, n) == 0) {
      *out = mk(p->value, p->value_len);
      return 0;
    }
  }
  return NNO_ENOENT;
}

static void *arena_of(void *r, size_t n) { return req_arena_alloc(r, n); }

static int api_req_query_param(nno_req *r, const char *name, nno_str *out) {
  return query_param_find(r->hr->query, r->hr->query_len, name, arena_of, r,
                          out);
}

static int api_req_header(nno_req *r, const char *name, nno_str *out) {
  const http_request *hr = r->hr;
  const http_header *first = NULL;
  size_t count = 0, total = 0;
  for (size_t i = 0; i < hr->nheaders; i++)
    if (strcasecmp(hr->headers[i].name, name) == 0) {
      if (!first) first = &hr->headers[i];
      count++;
      total += hr->headers[i].value_len + 2;
    }
  if (!first) return NNO_ENOENT;
  if (count == 1) {
    *out = mk(first->value, first->value_len);
    return 0;
  }
  char *d = req_arena_alloc(r, total + 1);
  if (!d) return NNO_ENOMEM;
  size_t j = 0;
  for (size_t i = 0; i < hr->nheaders; i++)
    if (strcasecmp(hr->headers[i].name, name) == 0) {
      if (j) {
        d[j++] = ',';
        d[j++] = ' ';
      }
      memcpy(d + j, hr->headers[i].value, hr->headers[i].value_len);
      j += hr->headers[i].value_len;
    }
  d[j] = '\0';
  *out = mk(d, j);
  return 0;
}

static int api_req_header_at(nno_req *r, size_t i, nno_str *name,
                             nno_str *value) {
  if (i >= r->hr->nheaders) return NNO_ENOENT;
  const http_header *h = &r->hr->headers[i];
  if (name) *name = mk(h->name, h->name_len);
  if (value) *value = mk(h->value, h->value_len);
  return 0;
}

static nno_str api_req_body(nno_req *r) {
  return mk(r->hr->body ? r->hr->body : "", r->hr->body_len);
}
static nno_str api_req_id(nno_req *r) { return mk(r->rid, r->rid_len); }
static nno_str api_req_traceparent(nno_req *r) {
  return mk(gateway_traceparent(r), 55);
}
static int api_req_gone(nno_req *r) { return r->gone; }
static void *api_req_alloc(nno_req *r, size_t n) {
  return req_arena_alloc(r, n);
}

/* ---- response -------------------------------------------------------- */

static int api_res_status(nno_req *r, int status) {
  if (r->ended || status < 200 || status > 599) return NNO_EINVAL;
  r->status = status;
  r->written = 1;
  return 0;
}

static int header_to(buf *b, nno_req *r, const char *name,
                     const char *value) {
  if (r->ended) return NNO_EINVAL;
  size_t nl, vl;
  int bad = res_header_check(name, value, &nl, &vl);
  if (bad) return bad;
  if (r->nheaders >= RES_HEADERS_MAX) return NNO_ETOOBIG;
  /* A header alone is not an answer: `written` stays as it was, so a
   * handler that fails after a policy added headers still gets its 500. */
  int rc = header_line_add(b, name, nl, value, vl);
  if (!rc) r->nheaders++;
  return rc;
}

static int api_res_header(nno_req *r, const char *name, const char *value) {
  return header_to(&r->headers, r, name, value);
}

static int api_res_header_keep(nno_req *r, const char *name,
                               const char *value) {
  return header_to(&r->keep, r, name, value);
}

static int api_res_write(nno_req *r, const void *data, size_t len) {
  if (r->ended) return NNO_ESTATE;
  r->written = 1;
  int rc = buf_append(&r->body, data, len, r->max_body);
  if (rc == NNO_ETOOBIG) r->body_over = 1;
  return rc;
}

static int api_res_json(nno_req *r, int status, const char *json,
                        size_t len) {
  static const char ct[] = "Content-Type: application/json\r\n";
  if (r->ended) return NNO_ESTATE;
  if (status < 200 || status > 599 || !json || !json_valid(json, len))
    return NNO_EINVAL;
  r->status = status;
  r->written = 1;
  r->body.len = 0;
  r->body_over = 0;
  int rc = buf_append(&r->headers, ct, sizeof ct - 1, 65536);
  if (!rc) rc = buf_append(&r->body, json, len, r->max_body);
  if (rc == NNO_ETOOBIG) r->body_over = 1;
  return rc;
}

static int api_res_problem(nno_req *r, int status, const char *title,
                           const char *detail) {
  if (r->ended) return NNO_ESTATE;
  if (status < 400 || status > 599 || !title) return NNO_EINVAL;
  req_problem(r, status, title, detail);
  return 0;
}

static int api_res_end(nno_req *r) { return res_req_end(r); }

/* ---- timers ---------------------------------------------------------- */

typedef struct plugin_timer {
  uv_timer_t h;
  plugin *owner;
  struct plugin_timer *prev, *next;
  nno_timer_fn fn;
  void *ud;
} plugin_timer;

static void timer_cb(uv_timer_t *h) {
  plugin_timer *t = h->data;
  callctx cc;
  callctx_enter(t->owner, NULL, &cc);
  t->fn((nno_timer *)t, t->ud);
  callctx_leave(&cc);
}

static int api_timer_start(nno_plugin *p, uint64_t timeout_ms,
                           uint64_t repeat_ms, nno_timer_fn fn, void *ud,
                           nno_timer **out) {
  plugin *pl = (plugin *)p;
  if (!fn || !out) return NNO_EINVAL;
  plugin_timer *t = calloc(1, sizeof *t);
  if (!t) return NNO_ENOMEM;
  uv_timer_init(&g_worker->loop, &t->h);
  t->h.data = t;
  t->owner = pl;
  t->fn = fn;
  t->ud = ud;
  t->next = pl->timers;
  if (pl->timers) pl->timers->prev = t;
  pl->timers = t;
  uv_timer_start(&t->h, timer_cb, timeout_ms, repeat_ms);
  *out = (nno_timer *)t;
  return 0;
}

static void timer_free(uv_handle_t *h) { free(h->data); }

static void api_timer_stop(nno_timer *tm) {
  plugin_timer *t = (plugin_timer *)tm;
  if (!t) return;
  plugin *pl = t->owner;
  if (t->prev) t->prev->next = t->next;
  else pl->timers = t->next;
  if (t->next) t->next->prev = t->prev;
  uv_timer_stop(&t->h);
  uv_close((uv_handle_t *)&t->h, timer_free);
}

void api_stop_timers(plugin *pl) {
  while (pl->timers) api_timer_stop((nno_timer *)pl->timers);
}

/* ---- thread pool ----------------------------------------------------- */

typedef struct work {
  uv_work_t req;
  plugin *owner;
  nno_work_fn fn;
  nno_after_work_fn after;
  void *ud;
} work;

static void work_cb(uv_work_t *req) {
  work *wk = (work *)req;
  wk->fn(wk->ud);
}

static void after_work_cb(uv_work_t *req, int status) {
  work *wk = (work *)req;
  wk->owner->pending--;
  if (wk->after) {
    callctx cc;
    callctx_enter(wk->owner, NULL, &cc);
    wk->after(status == UV_ECANCELED ? NNO_ECANCELED : 0, wk->ud);
    callctx_leave(&cc);
  }
  free(wk);
}

static int api_work_queue(nno_plugin *p, nno_work_fn fn,
                          nno_after_work_fn after, void *ud) {
  if (!fn) return NNO_EINVAL;
  work *wk = malloc(sizeof *wk);
  if (!wk) return NNO_ENOMEM;
  wk->owner = (plugin *)p;
  wk->fn = fn;
  wk->after = after;
  wk->ud = ud;
  if (uv_queue_work(&g_worker->loop, &wk->req, work_cb, after_work_cb) != 0) {
    free(wk);
    return NNO_EIO;
  }
  wk->owner->pending++;
  return 0;
}

/* ---- outbound HTTP, services ------------------------------------------ */

static int api_http_fetch(nno_plugin *p, const nno_http_request *req,
                          nno_http_done_fn done, void *ud) {
  return fetch_start(g_worker->fetcher, (plugin *)p, req, done, ud);
}

static int api_service_publish(nno_plugin *p, const char *name,
                               uint32_t version, const void *vtable) {
  return services_publish(g_worker->services, (plugin *)p, name, version,
                          vtable);
}

static int api_service_lookup(nno_plugin *p, const char *name,
                              uint32_t min_version, const void **vtable,
                              uint32_t *version) {
  return services_lookup(g_worker->services, name, min_version, vtable,
                         version);
}

/* ---- host facts, counters ---------------------------------------------- */

static const char *api_host_data_dir(nno_plugin *p) {
  return g_worker->cfg->data_dir;
}
static const char *api_host_base_domain(nno_plugin *p) {
  return g_worker->cfg->base_domain;
}

static int api_counter_get(nno_plugin *p, const char *name, uint64_t *value) {
  _Atomic uint64_t *c;
  if (!name || !value) return NNO_EINVAL;
  /* The meter table's gauges, read-only: how full it is. */
  if (strcmp(name, "nno.meter_slots") == 0 ||
      strcmp(name, "nno.meter_slots_used") == 0) {
    meter_stats ms;
    meter_get_stats(&ms);
    *value = name[15] == '\0' ? ms.total : ms.used;
    return 0;
  }
  int rc = metrics_counter(name, 0, &c);
  if (rc == NNO_ENOENT) {
    *value = 0;
    return 0;
  }
  if (rc) return rc;
  *value = atomic_load_explicit(c, memory_order_acquire);
  return 0;
}

static int api_counter_add(nno_plugin *p, const char *name, uint64_t delta,
                           uint64_t *after) {
  _Atomic uint64_t *c;
  if (!name) return NNO_EINVAL;
  int rc = metrics_counter(name, 1, &c);
  if (rc) return rc;
  uint64_t v = atomic_fetch_add_explicit(c, delta, memory_order_acq_rel) + delta;
  if (after) *after = v;
  return 0;
}

/* ---- gateway hooks, stacks, scope --------------------------------------- */

static int api_gateway_hook_add(nno_plugin *p, int stage, nno_hook_fn fn,
                                void *ud) {
  plugin *pl = (plugin *)p;
  worker *w = g_worker;
  if (!pl->initing || pl->man.kind != NNO_KIND_CORE) return NNO_ESTATE;
  if (stage < NNO_STAGE_RESOLVE || stage > NNO_STAGE_CORS || !fn)
    return NNO_EINVAL;
  gw_hook *v = realloc(w->hooks[stage], (w->nhooks[stage] + 1) * sizeof *v);
  if (!v) return NNO_ENOMEM;
  w->hooks[stage] = v;
  v[w->nhooks[stage]].plugin = pl;
  v[w->nhooks[stage]].fn = fn;
  v[w->nhooks[stage]].ud = ud;
  w->nhooks[stage]++;
  return 0;
}

static int api_gateway_done_add(nno_plugin *p, nno_done_hook_fn fn,
                                void *ud) {
  plugin *pl = (plugin *)p;
  worker *w = g_worker;
  if (!pl || !pl->initing || pl->man.kind != NNO_KIND_CORE || !w)
    return NNO_ESTATE;
  if (!fn) return NNO_EINVAL;
  gw_done *v = realloc(w->done, (w->ndone + 1) * sizeof *v);
  if (!v) return NNO_ENOMEM;
  w->done = v;
  v[w->ndone].plugin = pl;
  v[w->ndone].fn = fn;
  v[w->ndone].ud = ud;
  w->ndone++;
  return 0;
}

static nno_str api_req_plan(nno_req *r) {
  return r ? mk(r->plan, strlen(r->plan)) : mk("", 0);
}

static int api_stack_find(nno_plugin *p, const char *id, const char *version,
                          nno_stack **out) {
  if (!id || !out) return NNO_EINVAL;
  stack *st = loader_stack_find(g_worker->plugins, id, version);
  /* A version removed from disk since this worker last looked is not
   * found: a removal renames its folder away inside the transaction that
   * decides it, so a caller deciding in a later one sees it gone. */
  if (!st || (st->dir[0] && access(st->dir, F_OK) != 0)) return NNO_ENOENT;
  *out = (nno_stack *)st;
  return 0;
}

static int api_stack_at(nno_plugin *p, size_t i, nno_stack **out) {
  stack *st = g_worker->plugins->stacks;
  while (st && st->removed) st = st->next;
  while (st && i--) {
    st = st->next;
    while (st && st->removed) st = st->next;
  }
  if (!st) return NNO_ENOENT;
  *out = (nno_stack *)st;
  return 0;
}

static int api_stack_info(nno_stack *s, nno_str *id, nno_str *version) {
  stack *st = (stack *)s;
  if (!st) return NNO_EINVAL;
  if (id) *id = mk(st->id, strlen(st->id));
  if (version) *version = mk(st->version, strlen(st->version));
  return 0;
}

static int api_stack_require_at(nno_plugin *p, nno_stack *s, size_t i,
                                nno_str *id, nno_str *range) {
  (void)p;
  stack *st = (stack *)s;
  if (!st) return NNO_EINVAL;
  if (i >= st->man.nrequires) return NNO_ENOENT;
  const stack_require *q = &st->man.requires[i];
  if (id) *id = mk(q->stack, strlen(q->stack));
  if (range) *range = mk(q->range, strlen(q->range));
  return 0;
}

static int api_version_satisfies(const char *version, const char *range) {
  semver v;
  if (!version || !range || semver_parse(version, &v) != 0) return NNO_EINVAL;
  int rc = semver_satisfies(&v, range);
  return rc < 0 ? NNO_EINVAL : rc;
}

static int api_req_set_scope(nno_req *r, const char *scope, size_t scope_len,
                             size_t path_strip, nno_stack *const *stacks,
                             size_t nstacks) {
  if (!scope || scope_len == 0 || scope_len >= sizeof r->scope ||
      path_strip > r->hr->path_len ||
      nstacks > sizeof r->stacks / sizeof r->stacks[0] ||
      (nstacks && !stacks))
    return NNO_EINVAL;
  memcpy(r->scope, scope, scope_len);
  r->scope[scope_len] = '\0';
  r->scope_len = scope_len;
  r->path_strip = path_strip;
  /* A stack given to a request stays loaded until it ends (stacks.h). */
  for (size_t i = 0; i < nstacks; i++) stacks_ref((stack *)stacks[i]);
  if (r->stacks_held)
    for (size_t i = 0; i < r->nstacks; i++) stacks_unref(r->stacks[i]);
  for (size_t i = 0; i < nstacks; i++) r->stacks[i] = (stack *)stacks[i];
  r->nstacks = nstacks;
  r->stacks_held = 1;
  r->scoped = 1;
  return 0;
}

static nno_str api_req_scope(nno_req *r) { return mk(r->scope, r->scope_len); }

static nno_str api_req_host(nno_req *r) { return mk(r->host, r->host_len); }

static int api_req_route(nno_req *r, nno_str *pattern, nno_str *scope,
                         nno_str *package) {
  const route_target *t = r->match.target;
  if (!t || !r->route_label || r->route_label != r->match.pattern)
    return NNO_ENOENT;
  if (pattern) *pattern = mk(r->match.pattern, strlen(r->match.pattern));
  if (scope) *scope = mk(t->scope, strlen(t->scope));
  if (package) *package = mk(t->plugin->man.name, strlen(t->plugin->man.name));
  return 0;
}

static int api_limit_take(nno_plugin *p, const char *key, size_t key_len,
                          double rate_per_s, uint32_t burst, uint32_t cost,
                          nno_limit_result *out) {
  plugin *pl = (plugin *)p;
  if (!key || key_len == 0 || !out || !(rate_per_s > 0) || burst == 0)
    return NNO_EINVAL;
  /* Keys are namespaced by plugin: one plugin cannot drain another's. A
   * core plugin's namespace is its name; a feature package's is
   * "{stack id}/{package}", so no stack's package reaches a core plugin's
   * buckets or another stack's (a ':' ends the namespace, and neither ids
   * nor names hold one). */
  char full[LIMIT_KEY_MAX];
  size_t sl = pl->man.kind == NNO_KIND_CORE ? 0 : strlen(pl->stack_id);
  size_t nl = strlen(pl->man.name), at = 0;
  if (sl + 1 + nl + 1 + key_len >= sizeof full) return NNO_ETOOBIG;
  if (pl->man.kind != NNO_KIND_CORE) { /* on every limited request: no printf */
    memcpy(full, pl->stack_id, sl);
    full[sl] = '/';
    at = sl + 1;
  }
  memcpy(full + at, pl->man.name, nl);
  at += nl;
  full[at++] = ':';
  memcpy(full + at, key, key_len);
  return limits_take(full, at + key_len, rate_per_s, burst, cost, out);
}

/* ---- the caller (ABI 1.1) ----------------------------------------------- */

static int api_req_set_caller(nno_plugin *p, nno_req *r, int kind,
                              const char *platform, const char *tenant,
                              const char *subject, const char *scopes,
                              const char *session) {
  plugin *pl = (plugin *)p;
  if (!pl || !r) return NNO_EINVAL;
  if (pl->man.kind != NNO_KIND_CORE || r->stage != NNO_STAGE_AUTHN)
    return NNO_ESTATE;
  if (kind < NNO_CALLER_NONE || kind > NNO_CALLER_USER) return NNO_EINVAL;
  const char *v[4] = {platform, tenant, subject, session};
  size_t len[4], sl = scopes ? strlen(scopes) : 0;
  for (int i = 0; i < 4; i++) {
    len[i] = v[i] ? strlen(v[i]) : 0;
    if (len[i] >= sizeof r->caller[i]) return NNO_ETOOBIG;
  }
  if (sl >= sizeof r->scopes) return NNO_ETOOBIG;
  for (int i = 0; i < 4; i++) {
    if (len[i]) memcpy(r->caller[i], v[i], len[i]);
    r->caller[i][len[i]] = '\0';
    r->caller_len[i] = (uint8_t)len[i];
  }
  if (sl) memcpy(r->scopes, scopes, sl);
  r->scopes[sl] = '\0';
  r->scopes_len = sl;
  r->caller_kind = kind;
  return 0;
}

static int api_req_caller(nno_req *r, nno_caller *out) {
  if (!r || !out) return NNO_EINVAL;
  int k = r->caller_kind;
  out->kind = k;
  out->platform = mk(r->caller[0], k ? r->caller_len[0] : 0);
  out->tenant = mk(r->caller[1], k ? r->caller_len[1] : 0);
  out->subject = mk(r->caller[2], k ? r->caller_len[2] : 0);
  out->session = mk(r->caller[3], k ? r->caller_len[3] : 0);
  out->scopes = mk(r->scopes, k ? r->scopes_len : 0);
  if (!k) out->platform.ptr = out->tenant.ptr = out->subject.ptr =
      out->session.ptr = out->scopes.ptr = "";
  return 0;
}

static nno_str api_req_remote_addr(nno_req *r) {
  if (r->event) return mk("", 0); /* host-made: no client */
  if (!r->peer_len) {
    conn *c = (conn *)((char *)r - offsetof(conn, req));
    struct sockaddr_storage ss;
    int n = sizeof ss;
    r->peer[0] = '\0';
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &n) == 0) {
      if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, r->peer, sizeof r->peer);
      else if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, r->peer, sizeof r->peer);
    }
    r->peer_len = strlen(r->peer);
  }
  return mk(r->peer, r->peer_len);
}

/* ---- ABI 1.2: who is calling, own stack, stack packages ----------------- */

static nno_str api_req_platform(nno_req *r) {
  return mk(r->scope, r->scope_len);
}

static nno_str api_req_tenant_path(nno_req *r) {
  if (!r->caller_kind) return mk("", 0);
  return mk(r->tenant_path, r->tenant_path_len);
}

/* At most 16 '/'-separated tenant ids, none empty. */
#define TENANT_PATH_LEVELS 16

static int api_req_set_tenant_path(nno_plugin *p, nno_req *r,
                                   const char *path) {
  plugin *pl = (plugin *)p;
  if (!pl || !r) return NNO_EINVAL;
  if (pl->man.kind != NNO_KIND_CORE || r->stage != NNO_STAGE_AUTHN)
    return NNO_ESTATE;
  if (!path) path = "";
  size_t n = strnlen(path, sizeof r->tenant_path);
  if (n >= sizeof r->tenant_path) return NNO_ETOOBIG;
  size_t levels = n ? 1 : 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)path[i];
    if (ch < 0x20 || ch == 0x7f) return NNO_EINVAL;
    if (ch == '/') {
      if (i == 0 || i + 1 == n || path[i + 1] == '/') return NNO_EINVAL;
      levels++;
    }
  }
  if (levels > TENANT_PATH_LEVELS) return NNO_ETOOBIG;
  memcpy(r->tenant_path, path, n);
  r->tenant_path[n] = '\0';
  r->tenant_path_len = n;
  return 0;
}

static int api_plugin_stack(nno_plugin *p, nno_str *id, nno_str *version) {
  plugin *pl = (plugin *)p;
  if (!pl) return NNO_EINVAL;
  if (!pl->stack_id[0]) return NNO_ENOENT;
  if (id) *id = mk(pl->stack_id, strlen(pl->stack_id));
  if (version) *version = mk(pl->stack_version, strlen(pl->stack_version));
  return 0;
}

static int api_stack_package_at(nno_plugin *p, nno_stack *s, size_t i,
                                nno_str *name, nno_str *version, nno_str *dir,
                                nno_str *resources_json) {
  plugin *pl = (plugin *)p;
  stack *st = (stack *)s;
  /* Core plugins, and feature packages loaded here (the console composes
   * the UI of the platform's packages from their folders); a sandboxed
   * package's table answers NNO_ESTATE without reaching this. */
  if (!pl) return NNO_ESTATE;
  if (!st) return NNO_EINVAL;
  if (i >= st->nplugins) return NNO_ENOENT;
  const plugin *q = st->plugins[i];
  if (name) *name = mk(q->man.name, strlen(q->man.name));
  if (version) *version = mk(q->man.version, strlen(q->man.version));
  if (dir) *dir = mk(q->absdir, strlen(q->absdir));
  if (resources_json)
    *resources_json = mk(q->man.resources_json, strlen(q->man.resources_json));
  return 0;
}

/* ---- ABI 1.3: installed stacks, uploads --------------------------------
 * Members not implemented yet answer NNO_ENOTSUP. */

static int is_core(nno_plugin *p) {
  return p && ((plugin *)p)->man.kind == NNO_KIND_CORE;
}

static int api_stack_catalogue_at(nno_plugin *p, size_t i,
                                  nno_stack_entry *out) {
  if (!is_core(p)) return NNO_ESTATE;
  return stacks_catalogue_at(i, out);
}

static int api_stack_install(nno_plugin *p, const nno_stack_install *in,
                             nno_stack_install_fn done, void *ud) {
  if (!is_core(p)) return NNO_ESTATE;
  return stacks_install(g_worker, in, done, ud);
}

static int api_stack_install_owned(nno_plugin *p, const nno_stack_install *in,
                                   const char *owner,
                                   nno_stack_install_fn done, void *ud) {
  if (!is_core(p)) return NNO_ESTATE;
  if (!owner) return NNO_EINVAL;
  return stacks_install_owned(g_worker, in, owner, done, ud);
}

static int api_stack_owner(nno_plugin *p, const char *id,
                           const char *version, char *out, size_t cap) {
  if (!is_core(p)) return NNO_ESTATE;
  return stacks_owner(id, version, out, cap);
}

static int api_stack_remove(nno_plugin *p, const char *id, const char *version,
                            char *err, size_t errlen) {
  char tmp[LOADER_ERR_MAX];
  if (!err || errlen == 0) err = tmp, errlen = sizeof tmp;
  if (!is_core(p)) {
    snprintf(err, errlen, "core plugins only");
    return NNO_ESTATE;
  }
  return stacks_remove(g_worker, id, version, err, errlen);
}

/* An upload route is a core plugin's route whose target carries its bound;
 * the loader lists it in the worker's upload router too (loader.c commit). */
static int api_route_add_upload(nno_plugin *p, const char *method,
                                const char *pattern, nno_handler_fn fn,
                                void *ud, uint64_t max_bytes) {
  plugin *pl = (plugin *)p;
  if (!pl) return NNO_EINVAL;
  if (pl->stack_id[0]) return NNO_ESTATE;
  if (max_bytes == 0 || max_bytes > (uint64_t)INT64_MAX) return NNO_EINVAL;
  int rc = api_route_add(p, method, pattern, fn, ud);
  if (rc) return rc;
  pl->routes[pl->nroutes - 1].target.upload_max = max_bytes;
  return 0;
}

static int api_req_body_file(nno_req *r, int *fd, uint64_t *len) {
  if (!r || !fd) return NNO_EINVAL;
  if (r->upload != REQ_UPLOAD_FILE) {
    const route_target *t = r->match.target;
    if (r->event || !t || !t->upload_max || !r->active || r->ended ||
        r->stage || r->upload)
      return NNO_ENOENT;
    /* In the handler, a request without a body (Content-Length: 0) was
     * never spooled: an empty file. (Not from a policy stage: the body is
     * still to come then.) */
    int rc = req_upload_open(r, g_worker->cfg->data_dir, &g_worker->nuploads);
    if (rc) return rc;
  }
  *fd = r->upload_fd;
  if (len) *len = r->upload_len;
  return 0;
}

static int api_req_stack_missing(nno_req *r, const char *id,
                                 const char *version) {
  if (!r || !id || !version || r->stage != NNO_STAGE_RESOLVE)
    return NNO_EINVAL;
  if (!r->missing[0])
    snprintf(r->missing, sizeof r->missing, "%.64s\t%.63s", id, version);
  return 0;
}

static int api_host_config_int(nno_plugin *p, const char *key,
                               int64_t *out) {
  (void)p;
  if (!key || !out) return NNO_EINVAL;
  int rc = config_get_int(g_worker->cfg, key, out);
  return rc == -1 ? NNO_ENOENT : rc ? NNO_EINVAL : NNO_OK;
}

static int api_stack_verify(nno_plugin *p, nno_stack *s, char *err,
                            size_t errlen) {
  plugin *pl = (plugin *)p;
  stack *st = (stack *)s;
  if (!pl || !st || !err || !errlen) return NNO_EINVAL;
  if (pl->man.kind != NNO_KIND_CORE) return NNO_ESTATE;
  err[0] = '\0';
  if (!st->dir[0]) return NNO_OK;
  if (access(st->dir, F_OK) != 0) {
    snprintf(err, errlen, "stack %s %s is no longer installed", st->id,
             st->version);
    return NNO_ENOENT;
  }
  return stacks_verify_installed(st->dir, STACKS_VERIFY_DATA, err, errlen)
             ? NNO_EREFUSED
             : NNO_OK;
}

/* ---- ABI 1.4: containment ---------------------------------------------- */

static int api_req_set_plan(nno_plugin *p, nno_req *r, const char *plan) {
  if (!is_core(p)) return NNO_ESTATE;
  if (!r || !plan || r->stage != NNO_STAGE_RESOLVE) return NNO_EINVAL;
  size_t n = strlen(plan);
  if (n == 0 || n >= sizeof r->plan) return NNO_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!((plan[i] >= 'a' && plan[i] <= 'z') ||
          (plan[i] >= '0' && plan[i] <= '9') || plan[i] == '-'))
      return NNO_EINVAL;
  memcpy(r->plan, plan, n + 1);
  return 0;
}

static int api_stack_isolation(nno_plugin *p, nno_stack *s) {
  (void)p;
  const stack *st = (const stack *)s;
  if (!st) return NNO_EINVAL;
  return st->isolation == NNO_ISOLATION_SANDBOX ? NNO_ISOLATION_SANDBOX
                                                : NNO_ISOLATION_INPROCESS;
}

static int api_quarantine_at(nno_plugin *p, size_t i, nno_quarantine *out) {
  if (!is_core(p)) return NNO_ESTATE;
  if (!out || out->size == 0) return NNO_EINVAL;
  return quarantine_at(i, out);
}

static int api_quarantine_release(nno_plugin *p, const char *platform,
                                  const char *package, const char *version) {
  if (!is_core(p)) return NNO_ESTATE;
  if (!platform || !package || !version) return NNO_EINVAL;
  return quarantine_release(platform, package, version);
}

/* ---- meters (ABI 1.5) ----------------------------------------------------
 * A core plugin's keys live under its name (meter.h): no plugin reads or
 * changes another's. Feature packages have none. */

static int api_meter_add(nno_plugin *p, const char *key, size_t key_len,
                         uint64_t delta, uint64_t cap, uint64_t *after) {
  if (after) *after = 0;
  if (!is_core(p)) return NNO_ESTATE;
  return meter_add(((plugin *)p)->man.name, key, key_len, delta, cap, after);
}

static int api_meter_get(nno_plugin *p, const char *key, size_t key_len,
                         uint64_t *value) {
  if (value) *value = 0;
  if (!is_core(p)) return NNO_ESTATE;
  return meter_get(((plugin *)p)->man.name, key, key_len, value);
}

static int api_meter_next(nno_plugin *p, size_t *cursor, nno_meter_entry *out) {
  if (!is_core(p)) return NNO_ESTATE;
  return meter_next(((plugin *)p)->man.name, cursor, out);
}

static uint64_t api_meter_epoch(nno_plugin *p) {
  return is_core(p) ? meter_epoch() : 0;
}

static int api_meter_handle(nno_plugin *p, const char *key, size_t key_len,
                            nno_meter_handle *h) {
  if (h) memset(h, 0, sizeof *h);
  if (!is_core(p)) return NNO_ESTATE;
  return meter_handle(((plugin *)p)->man.name, key, key_len, h);
}

static int api_meter_add_h(nno_plugin *p, const nno_meter_handle *h,
                           uint64_t delta, uint64_t cap, uint64_t *after) {
  if (after) *after = 0;
  if (!is_core(p)) return NNO_ESTATE;
  return meter_add_h(((plugin *)p)->man.name, h, delta, cap, after);
}

/* ---- a platform's logs (ABI 1.5) ------------------------------------- */

static int api_log_tail(nno_plugin *p, const char *platform, uint64_t since,
                        size_t max,
                        int (*each)(void *ud, uint64_t seq, const char *line,
                                    size_t len),
                        void *ud, uint64_t *next) {
  if (next) *next = since;
  if (!is_core(p)) return NNO_ESTATE;
  size_t n = platform ? strnlen(platform, 65) : 0;
  if (n == 0 || n > 64 || !each || !next) return NNO_EINVAL;
  if (g_worker && g_worker->draining) return NNO_ECANCELED;
  int given = logring_tail(platform, since, max, each, ud, next);
  return given < 0 ? NNO_ENOENT : given;
}

static const nno_host_api table = {
    .size = sizeof(nno_host_api),
    .abi_major = NNO_ABI_MAJOR,
    .abi_minor = NNO_ABI_MINOR,
    .strerror = nno__strerror,
    .err_name = nno__err_name,
    .plugin_name = api_plugin_name,
    .plugin_version = api_plugin_version,
    .plugin_config = api_plugin_config,
    .plugin_set_data = api_plugin_set_data,
    .plugin_data = api_plugin_data,
    .plugin_fail = api_plugin_fail,
    .log = api_log,
    .route_add = api_route_add,
    .req_method = api_req_method,
    .req_path = api_req_path,
    .req_query = api_req_query,
    .req_param = api_req_param,
    .req_query_param = api_req_query_param,
    .req_header = api_req_header,
    .req_header_at = api_req_header_at,
    .req_body = api_req_body,
    .req_id = api_req_id,
    .req_traceparent = api_req_traceparent,
    .req_gone = api_req_gone,
    .req_alloc = api_req_alloc,
    .res_status = api_res_status,
    .res_header = api_res_header,
    .res_write = api_res_write,
    .res_json = api_res_json,
    .res_problem = api_res_problem,
    .res_end = api_res_end,
    .timer_start = api_timer_start,
    .timer_stop = api_timer_stop,
    .work_queue = api_work_queue,
    .http_fetch = api_http_fetch,
    .service_publish = api_service_publish,
    .service_lookup = api_service_lookup,
    .host_data_dir = api_host_data_dir,
    .host_base_domain = api_host_base_domain,
    .counter_get = api_counter_get,
    .counter_add = api_counter_add,
    .gateway_hook_add = api_gateway_hook_add,
    .stack_find = api_stack_find,
    .stack_at = api_stack_at,
    .stack_info = api_stack_info,
    .req_set_scope = api_req_set_scope,
    .req_scope = api_req_scope,
    .req_host = api_req_host,
    .req_route = api_req_route,
    .limit_take = api_limit_take,
    .req_set_caller = api_req_set_caller,
    .req_caller = api_req_caller,
    .res_header_keep = api_res_header_keep,
    .req_remote_addr = api_req_remote_addr,
    .req_platform = api_req_platform,
    .req_tenant_path = api_req_tenant_path,
    .req_set_tenant_path = api_req_set_tenant_path,
    .plugin_stack = api_plugin_stack,
    .sql_open = res_sql_open,
    .sql_exec = res_sql_exec,
    .sql_batch = res_sql_batch,
    .kv_open = res_kv_open,
    .kv_get = res_kv_get,
    .kv_put = res_kv_put,
    .kv_delete = res_kv_delete,
    .kv_list = res_kv_list,
    .blob_open = res_blob_open,
    .blob_put = res_blob_put,
    .blob_head = res_blob_head,
    .blob_delete = res_blob_delete,
    .blob_list = res_blob_list,
    .res_blob = res_blob,
    .platform_event = res_platform_event,
    .stack_package_at = api_stack_package_at,
    .stack_catalogue_at = api_stack_catalogue_at,
    .stack_install = api_stack_install,
    .stack_remove = api_stack_remove,
    .route_add_upload = api_route_add_upload,
    .req_body_file = api_req_body_file,
    .req_stack_missing = api_req_stack_missing,
    .stack_require_at = api_stack_require_at,
    .version_satisfies = api_version_satisfies,
    .host_config_int = api_host_config_int,
    .stack_verify = api_stack_verify,
    .req_set_plan = api_req_set_plan,
    .stack_isolation = api_stack_isolation,
    .quarantine_at = api_quarantine_at,
    .quarantine_release = api_quarantine_release,
    .meter_add = api_meter_add,
    .meter_get = api_meter_get,
    .meter_next = api_meter_next,
    .meter_epoch = api_meter_epoch,
    .gateway_done_add = api_gateway_done_add,
    .req_plan = api_req_plan,
    .stack_install_owned = api_stack_install_owned,
    .log_tail = api_log_tail,
    .meter_handle = api_meter_handle,
    .meter_add_h = api_meter_add_h,
    .stack_owner = api_stack_owner,
};

const nno_host_api *api_table(void) { return &table; }
