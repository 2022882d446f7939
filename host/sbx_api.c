/* The proxy host table of a sandbox: every member of nno_host_api, over the
 * sandbox's own request (sbx_req). Request getters answer from the REQ
 * snapshot, the response is accumulated and sent once, plugin-local calls
 * run here, storage and outbound HTTP go to the worker as CALL frames, and
 * what only a core plugin may do is refused. Every handle a package passes
 * is looked up in the live set first: a pointer that is not live is
 * refused ("garbage handle"), never dereferenced. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "jsonv.h"
#include "loader.h"
#include "log.h"
#include "sbx_child.h"
#include "worker.h"

static const nno_host_api *host(void) {
  return api_table();
}

static nno_str mk(const char *p, size_t n) {
  nno_str s = {p ? p : "", p ? n : 0};
  return s;
}

#define REQ_OR(r, call, bad)              \
  do {                                    \
    if (!sbx_handle_is((r), SBX_H_REQ)) { \
      sbx_garbage(call);                  \
      return bad;                         \
    }                                     \
  } while (0)

static const nno_str k_empty = {"", 0};

/* ---- log, plugin -------------------------------------------------------- */

static void p_log(nno_plugin *p, int level, const char *fmt, ...) {
  if (!sbx_on_loop()) return;
  if (!log_level_enabled(level)) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sbx_log(level, p ? ((plugin *)p)->man.name : "", msg);
}

static const char *p_host_data_dir(nno_plugin *p) {
  (void)p;
  return ""; /* no file system in a sandbox */
}

/* ---- request getters ---------------------------------------------------- */

#define GETTER(fn, field)           \
  static nno_str fn(nno_req *req) { \
    sbx_req *r = (sbx_req *)req;    \
    if (!sbx_on_loop()) return k_empty; \
    REQ_OR(r, #fn, k_empty);        \
    return r->field;                \
  }
GETTER(q_method, method)
GETTER(q_path, path)
GETTER(q_query, query)
GETTER(q_body, body)
GETTER(q_id, rid)
GETTER(q_traceparent, traceparent)
GETTER(q_scope, platform)
GETTER(q_host, host)
GETTER(q_remote, remote)
GETTER(q_platform, platform)
GETTER(q_tenant_path, tenant_path)
/* The plan is not sent to a sandbox: its packages read "" (ABI 1.5). */
static nno_str q_plan(nno_req *req) {
  sbx_req *r = (sbx_req *)req;
  if (!sbx_on_loop()) return k_empty;
  REQ_OR(r, "req_plan", k_empty);
  return k_empty;
}

static void *q_alloc(nno_req *req, size_t n) {
  if (!sbx_on_loop()) return NULL;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "req_alloc", NULL);
  if (n == 0 || n > REQ_ARENA_MAX || r->arena_total + n > REQ_ARENA_MAX)
    return NULL;
  sbx_chunk *c = malloc(sizeof *c + n);
  if (!c) return NULL;
  c->next = r->chunks;
  r->chunks = c;
  r->arena_total += n;
  return c->data;
}

static void *arena_of(void *r, size_t n) { return q_alloc(r, n); }

static int q_query_param(nno_req *req, const char *name, nno_str *out) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "req_query_param", NNO_EINVAL);
  if (!name || !out) return NNO_EINVAL;
  return query_param_find(r->query.ptr, r->query.len, name, arena_of, r,
                          out);
}

static int q_param(nno_req *req, const char *name, nno_str *out) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "req_param", NNO_EINVAL);
  if (!name || !out) return NNO_EINVAL;
  for (size_t i = 0; i < r->nparams; i++)
    if (strcmp(r->params[i].name.ptr, name) == 0) {
      *out = r->params[i].value;
      return 0;
    }
  return NNO_ENOENT;
}

static int q_header(nno_req *req, const char *name, nno_str *out) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "req_header", NNO_EINVAL);
  if (!name || !out) return NNO_EINVAL;
  const sbx_pair *first = NULL;
  size_t count = 0, total = 0;
  for (size_t i = 0; i < r->nheaders; i++)
    if (strcasecmp(r->headers[i].name.ptr, name) == 0) {
      if (!first) first = &r->headers[i];
      count++;
      total += r->headers[i].value.len + 2;
    }
  if (!first) return NNO_ENOENT;
  if (count == 1) {
    *out = first->value;
    return 0;
  }
  char *d = q_alloc(req, total + 1);
  if (!d) return NNO_ENOMEM;
  size_t j = 0;
  for (size_t i = 0; i < r->nheaders; i++)
    if (strcasecmp(r->headers[i].name.ptr, name) == 0) {
      if (j) {
        d[j++] = ',';
        d[j++] = ' ';
      }
      memcpy(d + j, r->headers[i].value.ptr, r->headers[i].value.len);
      j += r->headers[i].value.len;
    }
  d[j] = '\0';
  *out = mk(d, j);
  return 0;
}

static int q_header_at(nno_req *req, size_t i, nno_str *name, nno_str *value) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "req_header_at", NNO_EINVAL);
  if (i >= r->nheaders) return NNO_ENOENT;
  if (name) *name = r->headers[i].name;
  if (value) *value = r->headers[i].value;
  return 0;
}

static int q_gone(nno_req *req) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "req_gone", 1);
  return r->gone;
}

static int q_route(nno_req *req, nno_str *pattern, nno_str *scope,
                   nno_str *package) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "req_route", NNO_EINVAL);
  if (r->event) return NNO_ENOENT;
  if (pattern) *pattern = r->pattern;
  if (scope) *scope = r->scope;
  if (package) *package = r->package;
  return 0;
}

static int q_caller(nno_req *req, nno_caller *out) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "req_caller", NNO_EINVAL);
  if (!out) return NNO_EINVAL;
  out->kind = r->caller_kind;
  out->platform = r->c_platform;
  out->tenant = r->c_tenant;
  out->subject = r->c_subject;
  out->scopes = r->c_scopes;
  out->session = r->c_session;
  return 0;
}

/* ---- the response ------------------------------------------------------- */

static int header_to(buf *b, sbx_req *r, const char *name, const char *value) {
  if (r->ended) return NNO_EINVAL;
  size_t nl, vl;
  int bad = res_header_check(name, value, &nl, &vl);
  if (bad) return bad;
  if (r->nheaders_out >= RES_HEADERS_MAX) return NNO_ETOOBIG;
  int rc = header_line_add(b, name, nl, value, vl);
  if (!rc) r->nheaders_out++;
  return rc;
}

static int s_status(nno_req *req, int status) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "res_status", NNO_EINVAL);
  if (r->ended || status < 200 || status > 599) return NNO_EINVAL;
  r->status = status;
  r->written = 1;
  return 0;
}

static int s_header(nno_req *req, const char *name, const char *value) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "res_header", NNO_EINVAL);
  return header_to(&r->headers_out, r, name, value);
}

static int s_header_keep(nno_req *req, const char *name, const char *value) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "res_header_keep", NNO_EINVAL);
  return header_to(&r->keep_out, r, name, value);
}

static int s_write(nno_req *req, const void *data, size_t len) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "res_write", NNO_EINVAL);
  if (r->ended) return NNO_ESTATE;
  if (len && !data) return NNO_EINVAL;
  r->written = 1;
  int rc = buf_append(&r->body_out, data, len, r->max_body);
  if (rc == NNO_ETOOBIG) r->body_over = 1;
  return rc;
}

static int s_json(nno_req *req, int status, const char *json, size_t len) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  static const char ct[] = "Content-Type: application/json\r\n";
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "res_json", NNO_EINVAL);
  if (r->ended) return NNO_ESTATE;
  if (status < 200 || status > 599 || !json || !json_valid(json, len))
    return NNO_EINVAL;
  r->status = status;
  r->written = 1;
  r->body_out.len = 0;
  r->body_over = 0;
  int rc = buf_append(&r->headers_out, ct, sizeof ct - 1, 65536);
  if (!rc) rc = buf_append(&r->body_out, json, len, r->max_body);
  if (rc == NNO_ETOOBIG) r->body_over = 1;
  return rc;
}

/* The host's problem body (req_problem), over the sandbox's request. */
void sbx_problem(sbx_req *r, int status, const char *title,
                 const char *detail) {
  r->status = status;
  r->written = 1;
  r->body_over = 0;
  problem_build(&r->headers_out, &r->body_out, status, title, detail,
                r->rid.ptr, r->rid.len);
}

static int s_problem(nno_req *req, int status, const char *title,
                     const char *detail) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "res_problem", NNO_EINVAL);
  if (r->ended) return NNO_ESTATE;
  if (status < 400 || status > 599 || !title) return NNO_EINVAL;
  sbx_problem(r, status, title, detail);
  return 0;
}

static int s_end(nno_req *req) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "res_end", NNO_EINVAL);
  return sbx_req_end(r);
}

/* ---- timers and work: the child's own loop ------------------------------ */

/* A timer: the host's, wrapped so that its callback is entered for the
 * request that started it (status page, CPU budget) while that lives. */
typedef struct sbx_timer {
  struct sbx_timer *next, *prev;
  nno_timer *inner;
  plugin *owner;
  nno_timer_fn fn;
  void *ud;
  sbx_req *req;
  uint64_t req_id;
} sbx_timer;

static sbx_timer *g_timers;

/* The request `r`/`id` if it is still live and the same one. */
static sbx_req *still(sbx_req *r, uint64_t id) {
  return r && sbx_handle_is(r, SBX_H_REQ) && r->id == id && !r->ended ? r
                                                                      : NULL;
}

static void t_fire(nno_timer *inner, void *ud) {
  (void)inner;
  sbx_timer *t = ud;
  sbx_enter_state st;
  sbx_enter(still(t->req, t->req_id), &st);
  t->fn((nno_timer *)t, t->ud); /* may stop (free) t */
  sbx_leave(&st);
}

static int t_start(nno_plugin *p, uint64_t timeout_ms, uint64_t repeat_ms,
                   nno_timer_fn fn, void *ud, nno_timer **out) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  if (!fn || !out) return NNO_EINVAL;
  sbx_timer *t = calloc(1, sizeof *t);
  if (!t) return NNO_ENOMEM;
  t->owner = (plugin *)p;
  t->fn = fn;
  t->ud = ud;
  t->req = g_sbx_cur;
  t->req_id = g_sbx_cur ? g_sbx_cur->id : 0;
  if (sbx_handle_add(t, SBX_H_TIMER)) {
    free(t);
    return NNO_ENOMEM;
  }
  int rc = host()->timer_start(p, timeout_ms, repeat_ms, t_fire, t, &t->inner);
  if (rc != 0) {
    sbx_handle_del(t);
    free(t);
    return rc;
  }
  t->next = g_timers;
  if (g_timers) g_timers->prev = t;
  g_timers = t;
  *out = (nno_timer *)t;
  return 0;
}

static void t_stop(nno_timer *tm) {
  if (!sbx_on_loop()) return;
  sbx_timer *t = (sbx_timer *)tm;
  if (!t) return;
  if (!sbx_handle_is(t, SBX_H_TIMER)) {
    sbx_garbage("timer_stop");
    return;
  }
  host()->timer_stop(t->inner);
  if (t->prev)
    t->prev->next = t->next;
  else
    g_timers = t->next;
  if (t->next) t->next->prev = t->prev;
  sbx_handle_del(t);
  free(t);
}

void sbx_api_stop_timers(plugin *p) {
  for (sbx_timer *t = g_timers, *n; t; t = n) {
    n = t->next;
    if (t->owner == p) t_stop((nno_timer *)t);
  }
}

typedef struct sbx_work {
  nno_work_fn fn;
  nno_after_work_fn after;
  void *ud;
  sbx_req *req;
  uint64_t req_id;
} sbx_work;

static void w_run(void *ud) {
  sbx_work *w = ud;
  w->fn(w->ud);
}

static void w_after(int status, void *ud) {
  sbx_work *w = ud;
  if (w->after) {
    sbx_enter_state st;
    sbx_enter(still(w->req, w->req_id), &st);
    w->after(status, w->ud);
    sbx_leave(&st);
  }
  free(w);
}

static int w_queue(nno_plugin *p, nno_work_fn fn, nno_after_work_fn after,
                   void *ud) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  if (!fn) return NNO_EINVAL;
  sbx_work *w = malloc(sizeof *w);
  if (!w) return NNO_ENOMEM;
  w->fn = fn;
  w->after = after;
  w->ud = ud;
  w->req = g_sbx_cur;
  w->req_id = g_sbx_cur ? g_sbx_cur->id : 0;
  int rc = host()->work_queue(p, w_run, w_after, w);
  if (rc != 0) free(w);
  return rc;
}

/* ---- proxied calls ------------------------------------------------------ */

/* What an async call remembers: the package's callback and its ud. */
typedef struct pcall {
  void (*done)(void);
  void *ud;
} pcall;

static int start_async(sbx_req *r, plugin *p, uint16_t op,
                       void (*fill)(const void *), const void *args,
                       sbx_result_fn cb, void (*done)(void), void *ud) {
  pcall *pc = malloc(sizeof *pc);
  if (!pc) return NNO_ENOMEM;
  pc->done = done;
  pc->ud = ud;
  uint64_t cid;
  size_t at = sbx_call_begin(r, p, op, &cid);
  fill(args);
  int rc = sbx_call_async(at, cid, r, cb, pc);
  if (rc != 0) free(pc);
  return rc;
}

static void put_str(const char *s, size_t n) {
  sbx_str(sbx_output(), s ? s : "", s ? n : 0);
}
static void put_cstr(const char *s) {
  sbx_cstr(sbx_output(), s);
}

/* -- resources -- */

static int res_open(nno_req *req, const char *type, int htype, const char *name,
                    void **out, const char *call) {
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, call, NNO_EINVAL);
  if (!name || !out) return NNO_EINVAL;
  if (r->ended) return NNO_ESTATE;
  if (!r->platform.len) return NNO_ENOENT;
  if (!manifest_resource_find(&r->plugin->man, type, name)) return NNO_ENOENT;
  sbx_res *h = calloc(1, sizeof *h);
  if (!h) return NNO_ENOMEM;
  h->type = htype;
  h->req = r;
  snprintf(h->name, sizeof h->name, "%s", name);
  if (sbx_handle_add(h, htype)) {
    free(h);
    return NNO_ENOMEM;
  }
  h->next = r->res;
  r->res = h;
  *out = h;
  return 0;
}

void sbx_api_release(sbx_req *r) {
  for (sbx_res *h = r->res, *n; h; h = n) {
    n = h->next;
    sbx_handle_del(h);
    free(h);
  }
  r->res = NULL;
}

/* The live handle `h` of `type` whose request may still start calls. */
static sbx_res *res_live(const void *h, int type, const char *call, int *rc) {
  if (!sbx_handle_is(h, type)) {
    *rc = sbx_garbage(call);
    return NULL;
  }
  sbx_res *s = (sbx_res *)h;
  if (s->req->ended) {
    *rc = NNO_ESTATE;
    return NULL;
  }
  return s;
}

static int o_sql_open(nno_req *r, const char *name, nno_sql **out) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  return res_open(r, "sql", SBX_H_SQL, name, (void **)out, "sql_open");
}
static int o_kv_open(nno_req *r, const char *name, nno_kv **out) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  return res_open(r, "kv", SBX_H_KV, name, (void **)out, "kv_open");
}
static int o_blob_open(nno_req *r, const char *name, nno_blob **out) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  return res_open(r, "blob", SBX_H_BLOB, name, (void **)out, "blob_open");
}

/* sql */

typedef struct sql_args {
  const char *res, *a, *b;
  int batch;
} sql_args;

static void sql_fill(const void *v) {
  const sql_args *x = v;
  put_cstr(x->res);
  put_cstr(x->a);
  if (!x->batch) put_cstr(x->b);
}

static void sql_cb(sbx_req *r, int error, const char *msg, sbx_in *in,
                   void *ud) {
  pcall *pc = ud;
  if (in) {
    nno_sql_result res;
    memset(&res, 0, sizeof res);
    res.error = error;
    res.error_message = error && *msg ? msg : NULL;
    res.rows.ptr = sbx_get_str(in, &res.rows.len);
    res.changes = sbx_get_u64(in);
    res.last_insert_id = sbx_get_i64(in);
    if (error && !res.rows.len) res.rows = mk("[]", 2);
    if (!in->bad) ((nno_sql_done_fn)pc->done)((nno_req *)r, &res, pc->ud);
  }
  free(pc);
}

static int o_sql_exec(nno_sql *db, const char *sql, const char *params,
                      nno_sql_done_fn done, void *ud) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  int rc = 0;
  sbx_res *h = res_live(db, SBX_H_SQL, "sql_exec", &rc);
  if (!h) return rc;
  if (!sql || !done) return NNO_EINVAL;
  sql_args a = {h->name, sql, params ? params : "", 0};
  return start_async(h->req, h->req->plugin, SBX_CALL_SQL_EXEC, sql_fill, &a,
                     sql_cb, (void (*)(void))done, ud);
}

static int o_sql_batch(nno_sql *db, const char *batch, nno_sql_done_fn done,
                       void *ud) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  int rc = 0;
  sbx_res *h = res_live(db, SBX_H_SQL, "sql_batch", &rc);
  if (!h) return rc;
  if (!batch || !done) return NNO_EINVAL;
  sql_args a = {h->name, batch, NULL, 1};
  return start_async(h->req, h->req->plugin, SBX_CALL_SQL_BATCH, sql_fill, &a,
                     sql_cb, (void (*)(void))done, ud);
}

/* kv */

typedef struct kv_args {
  int op;
  const char *res;
  const char *key;
  size_t key_len;
  const void *value;
  size_t value_len;
  uint64_t ttl;
  const char *cursor;
  uint32_t limit;
} kv_args;

static void kv_fill(const void *v) {
  const kv_args *x = v;
  put_cstr(x->res);
  put_str(x->key, x->key_len);
  if (x->op == SBX_CALL_KV_PUT) {
    put_str(x->value, x->value_len);
    sbx_u64(sbx_output(), x->ttl);
  } else if (x->op == SBX_CALL_KV_LIST) {
    put_cstr(x->cursor);
    sbx_u32(sbx_output(), x->limit);
  }
}

/* The op is told by which callback runs: one per reply shape. */
static void kv_reply(sbx_req *r, int error, const char *msg, sbx_in *in,
                     pcall *pc, int op) {
  if (in) {
    nno_kv_result res;
    memset(&res, 0, sizeof res);
    res.error = error;
    res.error_message = error && *msg ? msg : NULL;
    /* keys and cursor are kv_list's: NULL otherwise, as in-process. */
    if (op == SBX_CALL_KV_GET) {
      res.found = sbx_get_u8(in);
      res.value.ptr = sbx_get_str(in, &res.value.len);
      res.expires = sbx_get_u64(in);
    } else if (op == SBX_CALL_KV_DELETE) {
      res.found = sbx_get_u8(in);
    } else if (op == SBX_CALL_KV_LIST) {
      res.keys = mk("[]", 2);
      res.cursor = mk("", 0);
      res.keys.ptr = sbx_get_str(in, &res.keys.len);
      res.cursor.ptr = sbx_get_str(in, &res.cursor.len);
      if (error && !res.keys.len) res.keys = mk("[]", 2);
    }
    if (!in->bad) ((nno_kv_done_fn)pc->done)((nno_req *)r, &res, pc->ud);
  }
  free(pc);
}

#define KV_CB(name, op)                                                      \
  static void name(sbx_req *r, int e, const char *m, sbx_in *in, void *ud) { \
    kv_reply(r, e, m, in, ud, op);                                           \
  }
KV_CB(kv_get_cb, SBX_CALL_KV_GET)
KV_CB(kv_put_cb, SBX_CALL_KV_PUT)
KV_CB(kv_del_cb, SBX_CALL_KV_DELETE)
KV_CB(kv_list_cb, SBX_CALL_KV_LIST)

static int kv_call(nno_kv *kv, kv_args *a, sbx_result_fn cb,
                   nno_kv_done_fn done, void *ud, const char *call) {
  int rc = 0;
  sbx_res *h = res_live(kv, SBX_H_KV, call, &rc);
  if (!h) return rc;
  if (!done || (a->key_len && !a->key)) return NNO_EINVAL;
  a->res = h->name;
  return start_async(h->req, h->req->plugin, (uint16_t)a->op, kv_fill, a, cb,
                     (void (*)(void))done, ud);
}

static int o_kv_get(nno_kv *kv, const char *key, size_t key_len,
                    nno_kv_done_fn done, void *ud) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  kv_args a = {.op = SBX_CALL_KV_GET, .key = key, .key_len = key_len};
  return kv_call(kv, &a, kv_get_cb, done, ud, "kv_get");
}

static int o_kv_put(nno_kv *kv, const char *key, size_t key_len,
                    const void *value, size_t value_len, uint64_t ttl_s,
                    nno_kv_done_fn done, void *ud) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  if (value_len && !value) return NNO_EINVAL;
  kv_args a = {.op = SBX_CALL_KV_PUT,
               .key = key,
               .key_len = key_len,
               .value = value,
               .value_len = value_len,
               .ttl = ttl_s};
  return kv_call(kv, &a, kv_put_cb, done, ud, "kv_put");
}

static int o_kv_delete(nno_kv *kv, const char *key, size_t key_len,
                       nno_kv_done_fn done, void *ud) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  kv_args a = {.op = SBX_CALL_KV_DELETE, .key = key, .key_len = key_len};
  return kv_call(kv, &a, kv_del_cb, done, ud, "kv_delete");
}

static int o_kv_list(nno_kv *kv, const char *prefix, size_t prefix_len,
                     const char *cursor, uint32_t limit, nno_kv_done_fn done,
                     void *ud) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  kv_args a = {.op = SBX_CALL_KV_LIST,
               .key = prefix,
               .key_len = prefix_len,
               .cursor = cursor ? cursor : "",
               .limit = limit};
  return kv_call(kv, &a, kv_list_cb, done, ud, "kv_list");
}

/* blob */

typedef struct blob_args {
  int op;
  const char *res, *key;
  size_t key_len;
  const char *content_type;
  const void *data;
  size_t len;
  const char *cursor;
  uint32_t limit;
} blob_args;

static void blob_fill(const void *v) {
  const blob_args *x = v;
  put_cstr(x->res);
  put_str(x->key, x->key_len);
  if (x->op == SBX_CALL_BLOB_PUT) {
    put_cstr(x->content_type);
    put_str(x->data, x->len);
  } else if (x->op == SBX_CALL_BLOB_LIST) {
    put_cstr(x->cursor);
    sbx_u32(sbx_output(), x->limit);
  }
}

static void blob_reply(sbx_req *r, int error, const char *msg, sbx_in *in,
                       pcall *pc, int op) {
  if (in) {
    nno_blob_result res;
    memset(&res, 0, sizeof res);
    res.error = error;
    res.error_message = error && *msg ? msg : NULL;
    /* objects and cursor are blob_list's: NULL otherwise, as in-process. */
    res.etag = mk("", 0);
    res.content_type = mk("", 0);
    if (op == SBX_CALL_BLOB_PUT) {
      res.size = sbx_get_u64(in);
      res.etag.ptr = sbx_get_str(in, &res.etag.len);
      res.modified = sbx_get_u64(in);
    } else if (op == SBX_CALL_BLOB_HEAD) {
      res.found = sbx_get_u8(in);
      res.size = sbx_get_u64(in);
      res.etag.ptr = sbx_get_str(in, &res.etag.len);
      res.content_type.ptr = sbx_get_str(in, &res.content_type.len);
      res.modified = sbx_get_u64(in);
    } else if (op == SBX_CALL_BLOB_DELETE) {
      res.found = sbx_get_u8(in);
    } else if (op == SBX_CALL_BLOB_LIST) {
      res.objects = mk("[]", 2);
      res.cursor = mk("", 0);
      res.objects.ptr = sbx_get_str(in, &res.objects.len);
      res.cursor.ptr = sbx_get_str(in, &res.cursor.len);
      if (error && !res.objects.len) res.objects = mk("[]", 2);
    }
    if (!in->bad) ((nno_blob_done_fn)pc->done)((nno_req *)r, &res, pc->ud);
  }
  free(pc);
}

#define BLOB_CB(name, op)                                                    \
  static void name(sbx_req *r, int e, const char *m, sbx_in *in, void *ud) { \
    blob_reply(r, e, m, in, ud, op);                                         \
  }
BLOB_CB(blob_put_cb, SBX_CALL_BLOB_PUT)
BLOB_CB(blob_head_cb, SBX_CALL_BLOB_HEAD)
BLOB_CB(blob_del_cb, SBX_CALL_BLOB_DELETE)
BLOB_CB(blob_list_cb, SBX_CALL_BLOB_LIST)

static int blob_call(nno_blob *b, blob_args *a, sbx_result_fn cb,
                     nno_blob_done_fn done, void *ud, const char *call) {
  int rc = 0;
  sbx_res *h = res_live(b, SBX_H_BLOB, call, &rc);
  if (!h) return rc;
  if (!done || (a->key_len && !a->key)) return NNO_EINVAL;
  a->res = h->name;
  return start_async(h->req, h->req->plugin, (uint16_t)a->op, blob_fill, a, cb,
                     (void (*)(void))done, ud);
}

static int o_blob_put(nno_blob *b, const char *key, size_t key_len,
                      const char *content_type, const void *data, size_t len,
                      nno_blob_done_fn done, void *ud) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  if (len && !data) return NNO_EINVAL;
  blob_args a = {.op = SBX_CALL_BLOB_PUT,
                 .key = key,
                 .key_len = key_len,
                 .content_type = content_type ? content_type : "",
                 .data = data,
                 .len = len};
  return blob_call(b, &a, blob_put_cb, done, ud, "blob_put");
}

static int o_blob_head(nno_blob *b, const char *key, size_t key_len,
                       nno_blob_done_fn done, void *ud) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  blob_args a = {.op = SBX_CALL_BLOB_HEAD, .key = key, .key_len = key_len};
  return blob_call(b, &a, blob_head_cb, done, ud, "blob_head");
}

static int o_blob_delete(nno_blob *b, const char *key, size_t key_len,
                         nno_blob_done_fn done, void *ud) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  blob_args a = {.op = SBX_CALL_BLOB_DELETE, .key = key, .key_len = key_len};
  return blob_call(b, &a, blob_del_cb, done, ud, "blob_delete");
}

static int o_blob_list(nno_blob *b, const char *prefix, size_t prefix_len,
                       const char *cursor, uint32_t limit,
                       nno_blob_done_fn done, void *ud) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  blob_args a = {.op = SBX_CALL_BLOB_LIST,
                 .key = prefix,
                 .key_len = prefix_len,
                 .cursor = cursor ? cursor : "",
                 .limit = limit};
  return blob_call(b, &a, blob_list_cb, done, ud, "blob_list");
}

/* res_blob: the worker streams the object and ends the request; the
 * RESULT only says it took it. */
typedef struct rblob_args {
  sbx_res *h;
  const char *key;
  size_t key_len;
} rblob_args;

static void rblob_fill(const void *v) {
  const rblob_args *x = v;
  sbx_req *r = x->h->req;
  put_cstr(x->h->name);
  put_str(x->key, x->key_len);
  sbx_u32(sbx_output(), (uint32_t)r->status);
  put_str(r->headers_out.p, r->headers_out.len);
  put_str(r->keep_out.p, r->keep_out.len);
}

static void rblob_cb(sbx_req *r, int error, const char *msg, sbx_in *in,
                     void *ud) {
  (void)r;
  if (in && error) {
    char line[256];
    snprintf(line, sizeof line, "res_blob refused: %s", msg);
    sbx_log(NNO_LOG_WARN, r && r->plugin ? r->plugin->man.name : "", line);
  }
  free(ud);
}

static int o_res_blob(nno_req *req, nno_blob *b, const char *key,
                      size_t key_len) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  sbx_req *r = (sbx_req *)req;
  REQ_OR(r, "res_blob", NNO_EINVAL);
  int rc = 0;
  sbx_res *h = res_live(b, SBX_H_BLOB, "res_blob", &rc);
  if (!h) return rc;
  if (h->req != r || (key_len && !key)) return NNO_EINVAL;
  if (r->pending) return NNO_EBUSY;
  rblob_args a = {h, key, key_len};
  rc = start_async(r, r->plugin, SBX_CALL_RES_BLOB, rblob_fill, &a, rblob_cb,
                   NULL, NULL);
  if (rc == 0) {
    /* Ended on the worker's side: no RES follows; freed once the RESULT
     * came back. */
    r->ended = 1;
  }
  return rc;
}

/* http_fetch: proxied whole (the worker applies its own address rules). */
typedef struct fetch_args {
  const nno_http_request *rq;
  uint32_t nheaders;
} fetch_args;

static void fetch_fill(const void *v) {
  const fetch_args *x = v;
  const nno_http_request *q = x->rq;
  put_cstr(q->method ? q->method : "GET");
  put_cstr(q->url);
  sbx_u32(sbx_output(), x->nheaders);
  for (uint32_t i = 0; i < x->nheaders; i++) put_cstr(q->headers[i]);
  put_str(q->body, q->body_len);
  sbx_u32(sbx_output(), q->timeout_ms);
  sbx_u64(sbx_output(), (uint64_t)q->max_response_bytes);
}

static void fetch_cb(sbx_req *r, int error, const char *msg, sbx_in *in,
                     void *ud) {
  (void)r;
  pcall *pc = ud;
  if (in) {
    nno_http_response res;
    memset(&res, 0, sizeof res);
    res.error = error;
    res.error_message = error && *msg ? msg : NULL;
    res.status = (int)sbx_get_u32(in);
    res.headers.ptr = sbx_get_str(in, &res.headers.len);
    res.body.ptr = sbx_get_str(in, &res.body.len);
    if (error) res.status = 0;
    if (!in->bad) ((nno_http_done_fn)pc->done)(&res, pc->ud);
  }
  free(pc);
}

static int o_http_fetch(nno_plugin *p, const nno_http_request *rq,
                        nno_http_done_fn done, void *ud) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  /* As the host: a request built before max_response_bytes existed has
   * none (0, the host's default); only what it has is read. */
  if (!rq || !done || rq->size < offsetof(nno_http_request, max_response_bytes))
    return NNO_EINVAL;
  nno_http_request q;
  memset(&q, 0, sizeof q);
  memcpy(&q, rq, rq->size < sizeof q ? rq->size : sizeof q);
  if (!q.url || (q.body_len && !q.body)) return NNO_EINVAL;
  if (strncmp(q.url, "http://", 7) != 0 && strncmp(q.url, "https://", 8) != 0)
    return NNO_EINVAL;
  rq = &q;
  fetch_args a = {rq, 0};
  if (rq->headers)
    while (rq->headers[a.nheaders] && a.nheaders < 256) a.nheaders++;
  if (rq->headers && rq->headers[a.nheaders]) return NNO_ETOOBIG;
  sbx_req *r = g_sbx_cur && !g_sbx_cur->ended ? g_sbx_cur : NULL;
  return start_async(r, (plugin *)p, SBX_CALL_HTTP_FETCH, fetch_fill, &a,
                     fetch_cb, (void (*)(void))done, ud);
}

/* -- synchronous calls -- */

static int sync_call(plugin *p, uint16_t op, void (*fill)(const void *),
                     const void *args, char **frame, sbx_in *in) {
  uint64_t cid;
  size_t at = sbx_call_begin(g_sbx_cur, p, op, &cid);
  fill(args);
  return sbx_call_sync(at, cid, frame, in, NULL, 0);
}

typedef struct limit_args {
  const char *key;
  size_t key_len;
  double rate;
  uint32_t burst, cost;
} limit_args;

static void limit_fill(const void *v) {
  const limit_args *x = v;
  uint64_t bits;
  memcpy(&bits, &x->rate, sizeof bits);
  put_str(x->key, x->key_len);
  sbx_u64(sbx_output(), bits);
  sbx_u32(sbx_output(), x->burst);
  sbx_u32(sbx_output(), x->cost);
}

static int o_limit_take(nno_plugin *p, const char *key, size_t key_len,
                        double rate_per_s, uint32_t burst, uint32_t cost,
                        nno_limit_result *out) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  if (!key || !out) return NNO_EINVAL;
  if (key_len > 120) return NNO_ETOOBIG;
  limit_args a = {key, key_len, rate_per_s, burst, cost};
  char *f;
  sbx_in in;
  int rc = sync_call((plugin *)p, SBX_CALL_LIMIT_TAKE, limit_fill, &a, &f, &in);
  if (f && rc == 0) {
    out->allowed = sbx_get_u8(&in);
    out->limit = sbx_get_u32(&in);
    out->remaining = sbx_get_u32(&in);
    out->retry_after_ms = sbx_get_u64(&in);
    out->reset_ms = sbx_get_u64(&in);
    if (in.bad) rc = NNO_EIO;
  }
  free(f);
  return rc;
}

typedef struct name_args {
  const char *name;
  uint64_t delta;
  int with_delta;
} name_args;

static void name_fill(const void *v) {
  const name_args *x = v;
  put_cstr(x->name);
  if (x->with_delta) sbx_u64(sbx_output(), x->delta);
}

static int one_u64(nno_plugin *p, uint16_t op, const char *name, uint64_t delta,
                   int with_delta, uint64_t *out) {
  if (!name || !out) return NNO_EINVAL;
  name_args a = {name, delta, with_delta};
  char *f;
  sbx_in in;
  int rc = sync_call((plugin *)p, op, name_fill, &a, &f, &in);
  if (f && rc == 0) {
    *out = sbx_get_u64(&in);
    if (in.bad) rc = NNO_EIO;
  }
  free(f);
  return rc;
}

/* The host's shared counters are refused to a sandboxed package: the
 * worker refuses them too (it never trusts this side), so asking is no use. */
static int o_counter_get(nno_plugin *p, const char *name, uint64_t *value) {
  (void)p, (void)name;
  if (value) *value = 0;
  return NNO_EREFUSED;
}

static int o_counter_add(nno_plugin *p, const char *name, uint64_t delta,
                         uint64_t *after) {
  (void)p, (void)name, (void)delta;
  if (after) *after = 0;
  return NNO_EREFUSED;
}

static int o_config_int(nno_plugin *p, const char *key, int64_t *out) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  uint64_t v = 0;
  int rc = one_u64(p, SBX_CALL_CONFIG_INT, key, 0, 0, &v);
  if (rc == 0) *out = (int64_t)v;
  return rc;
}

/* ---- services, stacks: its own stack only -------------------------------- */

static int o_service_publish(nno_plugin *p, const char *name, uint32_t v,
                             const void *vt) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  (void)p, (void)name, (void)v, (void)vt;
  return NNO_ENOENT;
}

static int o_service_lookup(nno_plugin *p, const char *name, uint32_t min,
                            const void **vt, uint32_t *v) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  (void)p, (void)name, (void)min, (void)vt, (void)v;
  return NNO_ENOENT;
}

static stack *own_stack(void) {
  stack *s = g_worker && g_worker->plugins ? g_worker->plugins->stacks : NULL;
  return s;
}

static int o_stack_find(nno_plugin *p, const char *id, const char *version,
                        nno_stack **out) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  (void)p;
  stack *s = own_stack();
  if (!id || !out) return NNO_EINVAL;
  if (!s || strcmp(s->id, id) != 0 || (version && strcmp(s->version, version)))
    return NNO_ENOENT;
  *out = (nno_stack *)s;
  return 0;
}

static int o_stack_at(nno_plugin *p, size_t i, nno_stack **out) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  (void)p;
  stack *s = own_stack();
  if (!out) return NNO_EINVAL;
  if (!s || i > 0) return NNO_ENOENT;
  *out = (nno_stack *)s;
  return 0;
}

static int o_stack_info(nno_stack *st, nno_str *id, nno_str *version) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  if (!st || (stack *)st != own_stack()) return NNO_EINVAL;
  return host()->stack_info(st, id, version);
}

static int o_stack_require_at(nno_plugin *p, nno_stack *st, size_t i,
                              nno_str *id, nno_str *range) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  if (!st || (stack *)st != own_stack()) return NNO_EINVAL;
  return host()->stack_require_at(p, st, i, id, range);
}

/* ---- refused: core plugins only ------------------------------------------ */

static int x_hook_add(nno_plugin *p, int s, nno_hook_fn f, void *ud) {
  (void)p, (void)s, (void)f, (void)ud;
  return NNO_ESTATE;
}
static int x_set_scope(nno_req *r, const char *s, size_t n, size_t strip,
                       nno_stack *const *st, size_t ns) {
  (void)r, (void)s, (void)n, (void)strip, (void)st, (void)ns;
  return NNO_ESTATE;
}
static int x_set_caller(nno_plugin *p, nno_req *r, int k, const char *a,
                        const char *b, const char *c, const char *d,
                        const char *e) {
  (void)p, (void)r, (void)k, (void)a, (void)b, (void)c, (void)d, (void)e;
  return NNO_ESTATE;
}
static int x_set_tenant_path(nno_plugin *p, nno_req *r, const char *s) {
  (void)p, (void)r, (void)s;
  return NNO_ESTATE;
}
static int x_platform_event(nno_plugin *p, nno_stack *s, const char *pl, int e,
                            void (*done)(int, const char *, void *), void *ud) {
  (void)p, (void)s, (void)pl, (void)e, (void)done, (void)ud;
  return NNO_ESTATE;
}
static int x_package_at(nno_plugin *p, nno_stack *s, size_t i, nno_str *a,
                        nno_str *b, nno_str *c, nno_str *d) {
  (void)p, (void)s, (void)i, (void)a, (void)b, (void)c, (void)d;
  return NNO_ESTATE;
}
static int x_catalogue_at(nno_plugin *p, size_t i, nno_stack_entry *o) {
  (void)p, (void)i, (void)o;
  return NNO_ESTATE;
}
static int x_install(nno_plugin *p, const nno_stack_install *in,
                     nno_stack_install_fn done, void *ud) {
  (void)p, (void)in, (void)done, (void)ud;
  return NNO_ESTATE;
}
static int x_remove(nno_plugin *p, const char *id, const char *v, char *err,
                    size_t n) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  (void)p, (void)id, (void)v;
  if (err && n) snprintf(err, n, "not allowed in a sandbox");
  return NNO_ESTATE;
}
static int x_upload(nno_plugin *p, const char *m, const char *pat,
                    nno_handler_fn fn, void *ud, uint64_t max) {
  (void)p, (void)m, (void)pat, (void)fn, (void)ud, (void)max;
  return NNO_ESTATE;
}
static int x_body_file(nno_req *r, int *fd, uint64_t *len) {
  (void)r, (void)fd, (void)len;
  return NNO_ESTATE;
}
static int x_stack_missing(nno_req *r, const char *id, const char *v) {
  (void)r, (void)id, (void)v;
  return NNO_ESTATE;
}
static int x_verify(nno_plugin *p, nno_stack *s, char *err, size_t n) {
  if (!sbx_on_loop()) return NNO_ESTATE;
  (void)p, (void)s;
  if (err && n) snprintf(err, n, "not allowed in a sandbox");
  return NNO_ESTATE;
}
static int x_set_plan(nno_plugin *p, nno_req *r, const char *plan) {
  (void)p, (void)r, (void)plan;
  return NNO_ESTATE;
}
static int x_isolation(nno_plugin *p, nno_stack *s) {
  (void)p, (void)s;
  return NNO_ESTATE;
}
static int x_quarantine_at(nno_plugin *p, size_t i, nno_quarantine *o) {
  (void)p, (void)i, (void)o;
  return NNO_ESTATE;
}
static int x_quarantine_release(nno_plugin *p, const char *a, const char *b,
                                const char *c) {
  (void)p, (void)a, (void)b, (void)c;
  return NNO_ESTATE;
}

/* Meters are the core plugins' (ABI 1.5): a sandboxed package has none. */
static int x_meter_add(nno_plugin *p, const char *k, size_t n, uint64_t d,
                       uint64_t cap, uint64_t *after) {
  (void)p, (void)k, (void)n, (void)d, (void)cap;
  if (after) *after = 0;
  return NNO_ESTATE;
}
static int x_meter_get(nno_plugin *p, const char *k, size_t n, uint64_t *v) {
  (void)p, (void)k, (void)n;
  if (v) *v = 0;
  return NNO_ESTATE;
}
static int x_meter_next(nno_plugin *p, size_t *cursor, nno_meter_entry *o) {
  (void)p, (void)cursor, (void)o;
  return NNO_ESTATE;
}
static uint64_t x_meter_epoch(nno_plugin *p) {
  (void)p;
  return 0;
}
static int x_meter_handle(nno_plugin *p, const char *k, size_t n,
                          nno_meter_handle *h) {
  (void)p, (void)k, (void)n;
  if (h) memset(h, 0, sizeof *h);
  return NNO_ESTATE;
}
static int x_meter_add_h(nno_plugin *p, const nno_meter_handle *h,
                         uint64_t d, uint64_t cap, uint64_t *after) {
  (void)p, (void)h, (void)d, (void)cap;
  if (after) *after = 0;
  return NNO_ESTATE;
}
static int x_done_add(nno_plugin *p, nno_done_hook_fn f, void *ud) {
  (void)p, (void)f, (void)ud;
  return NNO_ESTATE;
}

static int x_install_owned(nno_plugin *p, const nno_stack_install *in,
                           const char *owner, nno_stack_install_fn done,
                           void *ud) {
  (void)p, (void)in, (void)owner, (void)done, (void)ud;
  return NNO_ESTATE;
}

static int x_stack_owner(nno_plugin *p, const char *id, const char *version,
                         char *out, size_t cap) {
  (void)p, (void)id, (void)version, (void)out, (void)cap;
  return NNO_ESTATE;
}

static int x_log_tail(nno_plugin *p, const char *platform, uint64_t since,
                      size_t max,
                      int (*each)(void *, uint64_t, const char *, size_t),
                      void *ud, uint64_t *next) {
  (void)p, (void)platform, (void)max, (void)each, (void)ud;
  if (next) *next = since;
  return NNO_ESTATE;
}

/* ---- the table ------------------------------------------------------------
 */

static char g_plat[65];

void sbx_api_set_platform(const char *platform) {
  snprintf(g_plat, sizeof g_plat, "%s", platform);
}

const nno_host_api *sbx_api_table(void) {
  static nno_host_api t;
  static int made;
  if (made) return &t;
  const nno_host_api *h = host();
  t = *h; /* size, ABI; then every member replaced or kept on purpose */
  /* local, the host's own code: errors, plugin state, routes at init,
   * semver, the base domain */
  t.log = p_log;
  t.host_data_dir = p_host_data_dir;
  t.req_method = q_method;
  t.req_path = q_path;
  t.req_query = q_query;
  t.req_param = q_param;
  t.req_query_param = q_query_param;
  t.req_header = q_header;
  t.req_header_at = q_header_at;
  t.req_body = q_body;
  t.req_id = q_id;
  t.req_traceparent = q_traceparent;
  t.req_gone = q_gone;
  t.req_alloc = q_alloc;
  t.res_status = s_status;
  t.res_header = s_header;
  t.res_write = s_write;
  t.res_json = s_json;
  t.res_problem = s_problem;
  t.res_end = s_end;
  t.timer_start = t_start;
  t.timer_stop = t_stop;
  t.work_queue = w_queue;
  t.http_fetch = o_http_fetch;
  t.service_publish = o_service_publish;
  t.service_lookup = o_service_lookup;
  t.counter_get = o_counter_get;
  t.counter_add = o_counter_add;
  t.gateway_hook_add = x_hook_add;
  t.stack_find = o_stack_find;
  t.stack_at = o_stack_at;
  t.stack_info = o_stack_info;
  t.req_set_scope = x_set_scope;
  t.req_scope = q_scope;
  t.req_host = q_host;
  t.req_route = q_route;
  t.limit_take = o_limit_take;
  t.req_set_caller = x_set_caller;
  t.req_caller = q_caller;
  t.res_header_keep = s_header_keep;
  t.req_remote_addr = q_remote;
  t.req_platform = q_platform;
  t.req_tenant_path = q_tenant_path;
  t.req_set_tenant_path = x_set_tenant_path;
  t.sql_open = o_sql_open;
  t.sql_exec = o_sql_exec;
  t.sql_batch = o_sql_batch;
  t.kv_open = o_kv_open;
  t.kv_get = o_kv_get;
  t.kv_put = o_kv_put;
  t.kv_delete = o_kv_delete;
  t.kv_list = o_kv_list;
  t.blob_open = o_blob_open;
  t.blob_put = o_blob_put;
  t.blob_head = o_blob_head;
  t.blob_delete = o_blob_delete;
  t.blob_list = o_blob_list;
  t.res_blob = o_res_blob;
  t.platform_event = x_platform_event;
  t.stack_package_at = x_package_at;
  t.stack_catalogue_at = x_catalogue_at;
  t.stack_install = x_install;
  t.stack_remove = x_remove;
  t.route_add_upload = x_upload;
  t.req_body_file = x_body_file;
  t.req_stack_missing = x_stack_missing;
  t.stack_require_at = o_stack_require_at;
  t.host_config_int = o_config_int;
  t.stack_verify = x_verify;
  t.req_set_plan = x_set_plan;
  t.stack_isolation = x_isolation;
  t.quarantine_at = x_quarantine_at;
  t.quarantine_release = x_quarantine_release;
  t.meter_add = x_meter_add;
  t.meter_get = x_meter_get;
  t.meter_next = x_meter_next;
  t.meter_epoch = x_meter_epoch;
  t.gateway_done_add = x_done_add;
  t.req_plan = q_plan;
  t.stack_install_owned = x_install_owned;
  t.log_tail = x_log_tail;
  t.meter_handle = x_meter_handle;
  t.meter_add_h = x_meter_add_h;
  t.stack_owner = x_stack_owner;
  made = 1;
  return &t;
}
