/* Resources (ABI 1.2): handles, checks, forwarding to "nno.storage",
 * the end of a request, res_blob and platform_event. See res.h. */
#include "res.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "callctx.h"
#include "conn.h"
#include "gateway.h"
#include "jsonv.h"
#include "loader.h"
#include "log.h"
#include "quarantine.h"
#include "services.h"
#include "stacks.h"
#include "worker.h"

#define RES_MAGIC 0x4e4e4f52u /* "NNOR" */

/* What nno_sql, nno_kv and nno_blob point at: in the request's arena. */
typedef struct res_handle {
  uint32_t magic;
  const char *type; /* "sql", "kv" or "blob" (static) */
  nno_req *r;
  plugin *pl; /* the package that opened it */
  char name[MANIFEST_RESOURCE_NAME_MAX + 1];
} res_handle;

/* One operation in flight: what to call back. malloc'ed, freed when the
 * provider completes. */
typedef struct res_op {
  res_handle *h;
  union {
    nno_sql_done_fn sql;
    nno_kv_done_fn kv;
    nno_blob_done_fn blob;
  } fn;
  void *ud;
} res_op;

static const nno_storage_v1 *provider(void) {
  return g_worker ? g_worker->storage : NULL;
}

void res_bind_provider(worker *w) {
  const void *vt = NULL;
  uint32_t version = 0;
  w->storage = NULL;
  if (services_lookup(w->services, NNO_STORAGE_SERVICE, NNO_STORAGE_VERSION,
                      &vt, &version) != 0 || !vt)
    return;
  const nno_storage_v1 *s = vt;
  /* Every member the host calls must be inside the provider's table. */
  if (s->size < offsetof(nno_storage_v1, blob_read) + sizeof s->blob_read ||
      !s->platform_enter || !s->platform_leave || !s->sql_run || !s->kv_run ||
      !s->blob_run || !s->blob_read) {
    log_warn("the \"%s\" service is incomplete: resource calls are refused",
             NNO_STORAGE_SERVICE);
    return;
  }
  w->storage = s;
}

/* ---- the end of a request ---------------------------------------------- */

static void event_step_done(nno_req *r);

/* Send what the response holds: the client's request goes to its
 * connection, a host-made one to its lifecycle event. */
static void req_finish(nno_req *r) {
  if (!r->written) r->status = 204;
  if (r->event) {
    event_step_done(r);
    return;
  }
  conn *c = (conn *)((char *)r - offsetof(conn, req));
  c->w->nrequests_active--;
  conn_request_done(c);
}

int res_req_end(nno_req *r) {
  if (!r || r->ended || !r->active) return NNO_ESTATE;
  if (r->res_pending) return NNO_EBUSY;
  r->ended = 1;
  /* Called from inside the handler or a completion: ended on return. */
  if (r->in_handler || r->in_cb) return 0;
  req_finish(r);
  return 0;
}

void res_end_when_idle(nno_req *r) {
  r->async = 1;
  r->end_when_idle = 1;
}

void res_request_end(nno_req *r) {
  const nno_storage_v1 *s = provider();
  if (r->res_entered && s) s->platform_leave(r->scope);
  r->res_entered = 0;
}

/* Around a completion: a res_end() inside it ends the response only once
 * it returned (the completion may still read `r`), and the last
 * completion of a handler that returned ends it. */
static void cb_enter(nno_req *r) {
  r->res_pending--;
  r->in_cb++;
}

static void cb_leave(nno_req *r) {
  if (--r->in_cb || r->in_handler) return;
  if (r->ended) {
    req_finish(r);
  } else if (r->end_when_idle && !r->res_pending) {
    r->ended = 1;
    req_finish(r);
  }
}

/* ---- handles ----------------------------------------------------------- */

static int resource_name_ok(const char *s) {
  size_t n = 0;
  if (!(s[0] >= 'a' && s[0] <= 'z')) return 0;
  for (; s[n]; n++)
    if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') ||
          s[n] == '-'))
      return 0;
  return n <= MANIFEST_RESOURCE_NAME_MAX;
}

static int platform_id_ok(const char *s);

static int res_open(nno_req *r, const char *type, const char *name,
                    void **out) {
  if (!r || !name || !out) return NNO_EINVAL;
  *out = NULL;
  if (!resource_name_ok(name)) return NNO_EINVAL;
  if (r->ended || !r->active) return NNO_ESTATE;
  plugin *pl = r->plugin;
  /* The calling package: the route's or the lifecycle event's. A core
   * route, a hook, or a package of no stack has no resources. */
  if (!r->scope_len || !platform_id_ok(r->scope) || !pl || !pl->stack_id[0] ||
      !manifest_resource_find(&pl->man, type, name))
    return NNO_ENOENT;
  if (!provider()) return NNO_ENOTSUP;
  res_handle *h = req_arena_alloc(r, sizeof *h);
  if (!h) return NNO_ENOMEM;
  h->magic = RES_MAGIC;
  h->type = type;
  h->r = r;
  h->pl = pl;
  snprintf(h->name, sizeof h->name, "%s", name);
  *out = h;
  return 0;
}

int res_sql_open(nno_req *r, const char *name, nno_sql **out) {
  return res_open(r, "sql", name, (void **)out);
}
int res_kv_open(nno_req *r, const char *name, nno_kv **out) {
  return res_open(r, "kv", name, (void **)out);
}
int res_blob_open(nno_req *r, const char *name, nno_blob **out) {
  return res_open(r, "blob", name, (void **)out);
}

/* The handle behind `p` if it is one of `type` on a live request. */
static res_handle *handle(void *p, const char *type) {
  res_handle *h = p;
  if (!h || h->magic != RES_MAGIC || strcmp(h->type, type) != 0) return NULL;
  return h;
}

static void ref_of(const res_handle *h, nno_resource_ref *ref) {
  ref->platform = h->r->scope;
  ref->stack = h->pl->stack_id;
  ref->package = h->pl->man.name;
  ref->type = h->type;
  ref->name = h->name;
}

/* Before an operation: the request can take one, and has entered its
 * platform (the first operation enters; its error is the operation's). */
static int op_begin(res_handle *h) {
  nno_req *r = h->r;
  const nno_storage_v1 *s = provider();
  if (r->ended || !r->active) return NNO_ESTATE;
  if (!s) return NNO_ENOTSUP;
  if (!r->res_entered) {
    int rc = s->platform_enter(r->scope);
    if (rc) return rc < 0 ? rc : NNO_EIO;
    r->res_entered = 1;
  }
  return 0;
}

static res_op *op_new(res_handle *h, void *ud) {
  res_op *op = malloc(sizeof *op);
  if (!op) return NULL;
  op->h = h;
  op->ud = ud;
  return op;
}

/* The provider's answer to starting an operation: on an error nothing is
 * pending and no completion comes. */
static int op_started(res_op *op, int rc) {
  if (rc == 0) return 0;
  op->h->r->res_pending--;
  free(op);
  return rc > 0 ? NNO_EIO : rc;
}

/* ---- argument rules ------------------------------------------------------ */

/* UTF-8 without control characters. */
static int text_ok(const char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f) return 0;
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t k = json_utf8_len(s + i, n - i);
    if (!k) return 0;
    i += k;
  }
  return 1;
}

int res_kv_key_ok(const char *key, size_t len) {
  return key && len >= 1 && len <= RES_KV_KEY_MAX && text_ok(key, len);
}

int res_blob_key_ok(const char *key, size_t len) {
  if (!key || len < 1 || len > RES_BLOB_KEY_MAX || !text_ok(key, len))
    return 0;
  if (memchr(key, '\\', len)) return 0;
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && key[i] != '/') continue;
    size_t sl = i - start;
    if (sl == 0 || (sl == 1 && key[start] == '.') ||
        (sl == 2 && key[start] == '.' && key[start + 1] == '.'))
      return 0; /* also a leading or doubled '/' */
    start = i + 1;
  }
  return 1;
}

/* NNO_ETOOBIG past the key bound, NNO_EINVAL for any other bad key. */
static int key_check(int blob, const char *key, size_t len) {
  if (!key) return NNO_EINVAL;
  if (len > (blob ? RES_BLOB_KEY_MAX : RES_KV_KEY_MAX)) return NNO_ETOOBIG;
  return (blob ? res_blob_key_ok(key, len) : res_kv_key_ok(key, len))
             ? 0
             : NNO_EINVAL;
}

/* A list's prefix (may be empty), cursor and limit. */
static int list_check(int blob, const char *prefix, size_t prefix_len,
                      const char *cursor, uint32_t limit) {
  if (prefix_len && !prefix) return NNO_EINVAL;
  if (prefix_len > (blob ? RES_BLOB_KEY_MAX : RES_KV_KEY_MAX))
    return NNO_ETOOBIG;
  if (prefix_len && !text_ok(prefix, prefix_len)) return NNO_EINVAL;
  if (limit < 1 || limit > RES_LIST_MAX) return NNO_EINVAL;
  if (cursor) {
    size_t cl = strnlen(cursor, RES_CURSOR_MAX + 1);
    if (cl > RES_CURSOR_MAX) return NNO_ETOOBIG;
    if (!text_ok(cursor, cl)) return NNO_EINVAL;
  }
  return 0;
}

/* ---- sql ------------------------------------------------------------------ */

static void sql_cb(const nno_sql_result *res, void *ud) {
  res_op *op = ud;
  nno_req *r = op->h->r;
  nno_sql_done_fn fn = op->fn.sql;
  void *u = op->ud;
  plugin *pl = op->h->pl;
  free(op);
  cb_enter(r);
  callctx cc;
  callctx_enter(pl, r, &cc);
  fn(r, res, u);
  callctx_leave(&cc);
  cb_leave(r);
}

static int sql_run(nno_sql *db, int batch, const char *text,
                   const char *params, nno_sql_done_fn done, void *ud) {
  res_handle *h = handle(db, "sql");
  if (!h || !text || !done) return NNO_EINVAL;
  size_t n = strnlen(text, (batch ? RES_BATCH_MAX : RES_SQL_MAX) + 1);
  if (n > (batch ? RES_BATCH_MAX : RES_SQL_MAX)) return NNO_ETOOBIG;
  if (n == 0) return NNO_EINVAL;
  if (batch && (text[strspn(text, " \t\r\n")] != '[' || !json_valid(text, n)))
    return NNO_EINVAL;
  if (params) {
    size_t pl = strnlen(params, RES_SQL_MAX + 1);
    if (pl > RES_SQL_MAX) return NNO_ETOOBIG;
    char first = params[strspn(params, " \t\r\n")];
    if ((first != '[' && first != '{') || !json_valid(params, pl))
      return NNO_EINVAL;
  }
  int rc = op_begin(h);
  if (rc) return rc;
  res_op *op = op_new(h, ud);
  if (!op) return NNO_ENOMEM;
  op->fn.sql = done;
  nno_resource_ref ref;
  ref_of(h, &ref);
  h->r->res_pending++;
  return op_started(op, provider()->sql_run(&ref, batch, text, params,
                                            sql_cb, op));
}

int res_sql_exec(nno_sql *db, const char *sql, const char *params,
                 nno_sql_done_fn done, void *ud) {
  return sql_run(db, 0, sql, params, done, ud);
}

int res_sql_batch(nno_sql *db, const char *batch, nno_sql_done_fn done,
                  void *ud) {
  return sql_run(db, 1, batch, NULL, done, ud);
}

/* ---- kv ------------------------------------------------------------------- */

static void kv_cb(const nno_kv_result *res, void *ud) {
  res_op *op = ud;
  nno_req *r = op->h->r;
  nno_kv_done_fn fn = op->fn.kv;
  void *u = op->ud;
  plugin *pl = op->h->pl;
  free(op);
  cb_enter(r);
  callctx cc;
  callctx_enter(pl, r, &cc);
  fn(r, res, u);
  callctx_leave(&cc);
  cb_leave(r);
}

static int kv_run(nno_kv *kv, int opc, const char *key, size_t key_len,
                  const void *value, size_t value_len, uint64_t ttl_s,
                  const char *cursor, uint32_t limit, nno_kv_done_fn done,
                  void *ud) {
  res_handle *h = handle(kv, "kv");
  if (!h || !done) return NNO_EINVAL;
  int rc = opc == 'l' ? list_check(0, key, key_len, cursor, limit)
                      : key_check(0, key, key_len);
  if (rc) return rc;
  if (opc == 'p') {
    if (value_len && !value) return NNO_EINVAL;
    if (value_len > RES_KV_VALUE_MAX) return NNO_ETOOBIG;
  }
  if ((rc = op_begin(h))) return rc;
  res_op *op = op_new(h, ud);
  if (!op) return NNO_ENOMEM;
  op->fn.kv = done;
  nno_resource_ref ref;
  ref_of(h, &ref);
  h->r->res_pending++;
  return op_started(op, provider()->kv_run(&ref, opc, key ? key : "", key_len,
                                           value, value_len, ttl_s, cursor,
                                           limit, kv_cb, op));
}

int res_kv_get(nno_kv *kv, const char *key, size_t key_len,
               nno_kv_done_fn done, void *ud) {
  return kv_run(kv, 'g', key, key_len, NULL, 0, 0, NULL, 0, done, ud);
}
int res_kv_put(nno_kv *kv, const char *key, size_t key_len, const void *value,
               size_t value_len, uint64_t ttl_s, nno_kv_done_fn done,
               void *ud) {
  return kv_run(kv, 'p', key, key_len, value, value_len, ttl_s, NULL, 0, done,
                ud);
}
int res_kv_delete(nno_kv *kv, const char *key, size_t key_len,
                  nno_kv_done_fn done, void *ud) {
  return kv_run(kv, 'd', key, key_len, NULL, 0, 0, NULL, 0, done, ud);
}
int res_kv_list(nno_kv *kv, const char *prefix, size_t prefix_len,
                const char *cursor, uint32_t limit, nno_kv_done_fn done,
                void *ud) {
  return kv_run(kv, 'l', prefix, prefix_len, NULL, 0, 0, cursor, limit, done,
                ud);
}

/* ---- blob ----------------------------------------------------------------- */

static void blob_cb(const nno_blob_result *res, void *ud) {
  res_op *op = ud;
  nno_req *r = op->h->r;
  nno_blob_done_fn fn = op->fn.blob;
  void *u = op->ud;
  plugin *pl = op->h->pl;
  free(op);
  cb_enter(r);
  callctx cc;
  callctx_enter(pl, r, &cc);
  fn(r, res, u);
  callctx_leave(&cc);
  cb_leave(r);
}

static int blob_run(nno_blob *b, int opc, const char *key, size_t key_len,
                    const char *content_type, const void *data, size_t len,
                    const char *cursor, uint32_t limit, nno_blob_done_fn done,
                    void *ud) {
  res_handle *h = handle(b, "blob");
  if (!h || !done) return NNO_EINVAL;
  int rc = opc == 'l' ? list_check(1, key, key_len, cursor, limit)
                      : key_check(1, key, key_len);
  if (rc) return rc;
  if (opc == 'p') {
    if (len && !data) return NNO_EINVAL;
    if (len > (size_t)g_worker->cfg->max_body_bytes) return NNO_ETOOBIG;
    if (content_type) {
      size_t cl = strnlen(content_type, 256);
      if (cl == 0 || cl > 255 || !text_ok(content_type, cl))
        return NNO_EINVAL;
    }
  }
  if ((rc = op_begin(h))) return rc;
  res_op *op = op_new(h, ud);
  if (!op) return NNO_ENOMEM;
  op->fn.blob = done;
  nno_resource_ref ref;
  ref_of(h, &ref);
  h->r->res_pending++;
  return op_started(op, provider()->blob_run(&ref, opc, key ? key : "",
                                             key_len, content_type, data, len,
                                             cursor, limit, blob_cb, op));
}

int res_blob_put(nno_blob *b, const char *key, size_t key_len,
                 const char *content_type, const void *data, size_t len,
                 nno_blob_done_fn done, void *ud) {
  return blob_run(b, 'p', key, key_len, content_type, data, len, NULL, 0, done,
                  ud);
}
int res_blob_head(nno_blob *b, const char *key, size_t key_len,
                  nno_blob_done_fn done, void *ud) {
  return blob_run(b, 'h', key, key_len, NULL, NULL, 0, NULL, 0, done, ud);
}
int res_blob_delete(nno_blob *b, const char *key, size_t key_len,
                    nno_blob_done_fn done, void *ud) {
  return blob_run(b, 'd', key, key_len, NULL, NULL, 0, NULL, 0, done, ud);
}
int res_blob_list(nno_blob *b, const char *prefix, size_t prefix_len,
                  const char *cursor, uint32_t limit, nno_blob_done_fn done,
                  void *ud) {
  return blob_run(b, 'l', prefix, prefix_len, NULL, NULL, 0, cursor, limit,
                  done, ud);
}

/* ---- res_blob ------------------------------------------------------------- */

/* The status a package answers for a storage error (plugin-api/README.md);
 * res_blob answers the same. */
static int error_status(int err, const char **title) {
  switch (err) {
  case NNO_EINVAL: *title = "Bad Request"; return 400;
  case NNO_EREFUSED: *title = "Conflict"; return 409;
  case NNO_ETOOBIG: *title = "Content Too Large"; return 413;
  case NNO_EQUOTA: *title = "Insufficient Storage"; return 507;
  case NNO_ENOENT: *title = "Service Unavailable"; return 503;
  case NNO_EBUSY: *title = "Service Unavailable"; return 503;
  case NNO_ETIMEDOUT: *title = "Gateway Timeout"; return 504;
  }
  *title = "Internal Server Error";
  return 500;
}

int res_status_code(int status) {
  switch (status) {
  case 400: case 422: return NNO_EINVAL;
  case 404: return NNO_ENOENT;
  case 409: return NNO_EREFUSED;
  case 413: return NNO_ETOOBIG;
  case 503: return NNO_EBUSY;
  case 504: return NNO_ETIMEDOUT;
  case 507: return NNO_EQUOTA;
  }
  return NNO_EIO;
}

/* Does If-None-Match (a list of entity tags, or "*") name `etag`? Weak
 * comparison (RFC 9110 13.1.2): a W/ prefix does not count. */
static int none_match(const char *list, size_t n, const char *etag,
                      size_t el) {
  if (el > 2 && etag[0] == 'W' && etag[1] == '/') {
    etag += 2;
    el -= 2;
  }
  size_t i = 0;
  while (i < n) {
    while (i < n && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
      i++;
    size_t s = i;
    if (i < n && list[i] == '*') return 1;
    if (i + 1 < n && list[i] == 'W' && list[i + 1] == '/') s = i += 2;
    if (i < n && list[i] == '"') {
      const char *q = memchr(list + i + 1, '"', n - i - 1);
      if (!q) return 0;
      i = (size_t)(q - list) + 1;
    } else {
      while (i < n && list[i] != ',') i++;
    }
    if (i - s == el && memcmp(list + s, etag, el) == 0) return 1;
  }
  return 0;
}

/* A header from the provider's result, if it is one (quoted etag,
 * printable content type). */
static void add_header(nno_req *r, const char *name, nno_str v) {
  char line[600];
  if (!v.ptr || v.len == 0 || v.len > 512 || !text_ok(v.ptr, v.len)) return;
  int n = snprintf(line, sizeof line, "%s: %.*s\r\n", name, (int)v.len, v.ptr);
  (void)buf_append(&r->headers, line, (size_t)n, 65536);
}

static void blob_read_cb(const nno_blob_result *res, int fd, void *ud) {
  res_op *op = ud;
  nno_req *r = op->h->r;
  free(op);
  cb_enter(r);
  if (!res || res->error || !res->found || fd < 0) {
    if (fd >= 0) close(fd);
    if (res && !res->error) {
      req_problem(r, 404, "Not Found", "no such object");
    } else {
      const char *title;
      int err = res ? res->error : NNO_EIO;
      int st = error_status(err, &title);
      const char *msg = res ? res->error_message : NULL;
      /* A refusal, a bound or a busy resource says why; what failed
       * inside the provider (a file it could not open, its index) is
       * logged, not sent: the client gets the error's name. */
      if (msg && st == 500)
        log_warn("res_blob: %s (request %.*s)", msg, (int)r->rid_len, r->rid);
      req_problem(r, st, title,
                  err == NNO_ENOENT ? "the resource is not provisioned"
                  : msg && st != 500 ? msg
                                     : nno__strerror(err));
    }
  } else {
    nno_str inm = {NULL, 0};
    const http_request *hr = r->hr;
    for (size_t i = 0; hr && i < hr->nheaders; i++)
      if (strcasecmp(hr->headers[i].name, "if-none-match") == 0) {
        inm.ptr = hr->headers[i].value;
        inm.len = hr->headers[i].value_len;
      }
    char date[64];
    time_t t = (time_t)res->modified;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t dl = strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    nno_str ct = res->content_type;
    if (!ct.ptr || !ct.len) {
      ct.ptr = "application/octet-stream";
      ct.len = 24;
    }
    r->written = 1;
    r->body.len = 0;
    add_header(r, "ETag", res->etag);
    add_header(r, "Last-Modified", (nno_str){date, dl});
    if (inm.ptr && res->etag.len &&
        none_match(inm.ptr, inm.len, res->etag.ptr, res->etag.len)) {
      r->status = 304;
      close(fd);
    } else {
      r->status = 200;
      add_header(r, "Content-Type", ct);
      /* The connection streams it after the head (conn.c). */
      r->body_src = 1;
      r->body_fd = fd;
      r->body_left = res->size;
    }
  }
  r->ended = 1;
  cb_leave(r);
}

int res_blob(nno_req *r, nno_blob *b, const char *key, size_t key_len) {
  res_handle *h = handle(b, "blob");
  if (!r || !h || h->r != r) return NNO_EINVAL;
  int rc = key_check(1, key, key_len);
  if (rc) return rc;
  if ((rc = op_begin(h))) return rc;
  res_op *op = op_new(h, NULL);
  if (!op) return NNO_ENOMEM;
  nno_resource_ref ref;
  ref_of(h, &ref);
  r->res_pending++;
  return op_started(op, provider()->blob_read(&ref, key, key_len,
                                              blob_read_cb, op));
}

/* ---- platform_event ------------------------------------------------------- */

/* One run of platform_event: the packages of a stack, one after another,
 * each given a host-made request. */
typedef struct event_run {
  nno_req req; /* reused for each package */
  http_request hr;
  uv_timer_t timer; /* steps run from the loop, never inside a callback */
  stack *st;
  char platform[65];
  int event;
  size_t next; /* index of the next package to try */
  int rc;      /* the running hook's return */
  int code;    /* the first failure, 0 while none */
  int over;
  char msg[512];
  void (*done)(int status, const char *message, void *ud);
  void *ud;
} event_run;

int (*res_event_hook(const nno_plugin_desc *d))(nno_plugin *, int,
                                                 nno_req *) {
  if (!d || d->size < offsetof(nno_plugin_desc, on_platform_event) +
                          sizeof d->on_platform_event)
    return NULL;
  return d->on_platform_event;
}

static void event_free(uv_handle_t *h) {
  event_run *ev = h->data;
  stacks_unref(ev->st);
  req_release(&ev->req);
  free(ev);
}

/* The message of a failed step: the problem's detail or title. */
static void event_message(event_run *ev, const char *pkg) {
  nno_req *r = &ev->req;
  json_t *root = r->body.len ? json_loadb(r->body.p, r->body.len, 0, NULL)
                             : NULL;
  const char *m = NULL;
  if (json_is_object(root)) {
    m = json_string_value(json_object_get(root, "detail"));
    if (!m) m = json_string_value(json_object_get(root, "title"));
  }
  if (m)
    snprintf(ev->msg, sizeof ev->msg, "%s", m);
  else if (ev->rc < 0)
    snprintf(ev->msg, sizeof ev->msg, "on_platform_event of \"%s\" failed: %s",
             pkg, nno__err_name(ev->rc));
  else
    snprintf(ev->msg, sizeof ev->msg, "on_platform_event of \"%s\" answered %d",
             pkg, r->status);
  json_decref(root);
}

static void event_step(uv_timer_t *t);

/* The hook of the current package ended its request. */
static void event_step_done(nno_req *r) {
  event_run *ev = r->event;
  res_request_end(r);
  g_worker->nrequests_active--;
  if (ev->rc < 0 || r->status >= 400) {
    ev->code = ev->rc < 0 ? ev->rc : res_status_code(r->status);
    event_message(ev, r->plugin ? r->plugin->man.name : "?");
  }
  r->active = 0;
  uv_timer_start(&ev->timer, event_step, 0, 0);
  worker_maybe_done(g_worker);
}

static void event_call(event_run *ev, plugin *pl,
                       int (*hook)(nno_plugin *, int, nno_req *)) {
  nno_req *r = &ev->req;
  worker *w = g_worker;
  req_reset(r);
  r->event = ev;
  r->hr = &ev->hr;
  r->active = 1;
  r->plugin = pl;
  r->route_label = "platform_event";
  r->max_body = (size_t)w->cfg->max_response_bytes;
  gateway_prepare_req(w, r, NULL);
  size_t pl_len = strlen(ev->platform);
  memcpy(r->scope, ev->platform, pl_len + 1);
  r->scope_len = pl_len;
  r->scoped = 1;
  /* The operator, on every platform. */
  r->caller_kind = NNO_CALLER_OPERATOR;
  r->caller[0][0] = r->caller[1][0] = r->caller[3][0] = '\0';
  memcpy(r->caller[2], "operator", 9);
  r->caller_len[2] = 8;
  memcpy(r->scopes, "*", 2);
  r->scopes_len = 1;
  w->nrequests_active++;
  r->in_handler = 1;
  callctx cc;
  callctx_enter(pl, r, &cc);
  int rc = hook((nno_plugin *)pl, ev->event, r);
  callctx_leave(&cc);
  r->in_handler = 0;
  ev->rc = rc == NNO_ASYNC ? 0 : rc;
  if (rc == NNO_ASYNC && !r->ended) {
    r->async = 1;
    return; /* res_end() ends it */
  }
  if (!r->ended && r->res_pending) {
    res_end_when_idle(r);
    return;
  }
  r->ended = 1;
  req_finish(r);
}

/* A package quarantined on the event's platform is not called (its
 * crashes would start a sandbox, or end a worker, once per event): an
 * activation is refused naming the quarantine; a deactivation or removal
 * goes on without its hook, logged, so the operator can always take a
 * crashing package away. 1 when the package is skipped or refused. */
static int event_quarantined(event_run *ev, plugin *pl) {
  quarantine_info qi;
  if (quarantine_check(ev->platform, pl->stack_id, pl->man.name,
                       pl->man.version, &qi) != 1)
    return 0;
  if (ev->event == NNO_PLATFORM_ACTIVATED) {
    ev->code = NNO_EBUSY;
    snprintf(ev->msg, sizeof ev->msg,
             "package \"%s\" %s is quarantined on platform \"%s\" after %u "
             "%s (%s); retry in %llu s, or release it (nno quarantine "
             "release %s %s %s)",
             pl->man.name, pl->man.version, ev->platform, qi.crashes,
             qi.crashes == 1 ? "crash" : "crashes", qi.reason, (unsigned long long)qi.retry_after_s, ev->platform,
             pl->man.name, pl->man.version);
    return 1;
  }
  log_warn("platform %s: package %s %s is quarantined: its "
           "on_platform_event is not called for this %s",
           ev->platform, pl->man.name, pl->man.version,
           ev->event == NNO_PLATFORM_DEACTIVATED ? "deactivation" : "removal");
  return 1;
}

static void event_step(uv_timer_t *t) {
  event_run *ev = t->data;
  if (ev->over) return;
  while (!ev->code && ev->next < ev->st->nplugins) {
    plugin *pl = ev->st->plugins[ev->next++];
    int (*hook)(nno_plugin *, int, nno_req *) = res_event_hook(pl->desc);
    if (!hook) continue;
    if (event_quarantined(ev, pl)) continue;
    event_call(ev, pl, hook);
    return;
  }
  ev->over = 1;
  ev->done(ev->code, ev->code ? ev->msg : NULL, ev->ud);
  uv_close((uv_handle_t *)&ev->timer, event_free);
}

static int platform_id_ok(const char *s) {
  size_t n = 0;
  for (; s[n]; n++)
    if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') ||
          s[n] == '-'))
      return 0;
  return n >= 1 && n <= 64;
}

int res_platform_event(nno_plugin *p, nno_stack *s, const char *platform,
                       int event,
                       void (*done)(int status, const char *message, void *ud),
                       void *ud) {
  plugin *pl = (plugin *)p;
  if (!pl || pl->man.kind != NNO_KIND_CORE) return NNO_ESTATE;
  if (!s || !platform || !platform_id_ok(platform) || !done ||
      event < NNO_PLATFORM_ACTIVATED || event > NNO_PLATFORM_REMOVING)
    return NNO_EINVAL;
  event_run *ev = calloc(1, sizeof *ev);
  if (!ev) return NNO_ENOMEM;
  req_reset(&ev->req);
  ev->hr.method = "POST";
  ev->hr.method_len = 4;
  ev->hr.target = ev->hr.path = "/";
  ev->hr.target_len = ev->hr.path_len = 1;
  ev->hr.query = ev->hr.host = "";
  ev->hr.version_major = ev->hr.version_minor = 1;
  ev->st = (stack *)s;
  stacks_ref(ev->st); /* not unloaded while its packages run */
  snprintf(ev->platform, sizeof ev->platform, "%s", platform);
  ev->event = event;
  ev->done = done;
  ev->ud = ud;
  uv_timer_init(&g_worker->loop, &ev->timer);
  ev->timer.data = ev;
  uv_timer_start(&ev->timer, event_step, 0, 0);
  return 0;
}
