/* Shared pieces of the operator API handlers (see http_util.h). */
#include "http_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "internal.h"

/* ---- problems ---------------------------------------------------------- */

static const char *status_title(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 409: return "Conflict";
  case 412: return "Precondition Failed";
  case 422: return "Unprocessable Content";
  case 503: return "Service Unavailable";
  default: return status >= 500 ? "Internal Server Error" : "Bad Request";
  }
}

int hu_problem(nno_req *req, int status, const char *field, const char *fmt,
               ...) {
  char detail[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  if (!field) {
    api->res_problem(req, status, status_title(status), detail);
    return NNO_OK;
  }
  /* res_problem has no room for "field": build the same object by hand.
   * Handlers add no header before answering a problem, so there is
   * nothing to clear. */
  nno_str rid = api->req_id(req);
  json_t *o =
      json_pack("{s:s, s:s, s:i, s:s, s:s, s:s%}", "type", "about:blank",
                "title", status_title(status), "status", status, "detail",
                detail, "field", field, "request_id", rid.ptr, rid.len);
  char *text = o ? hu_dump(o) : NULL;
  json_decref(o);
  if (!text) {
    api->res_problem(req, status, status_title(status), detail);
    return NNO_OK;
  }
  api->res_status(req, status);
  api->res_header(req, "Content-Type", "application/problem+json");
  api->res_write(req, text, strlen(text));
  free(text);
  return NNO_OK;
}

int hu_store_error(nno_req *req, int rc) {
  const char *msg = g_reg.db ? sqlite3_errmsg(g_reg.db) : "no database";
  if (rc == STORE_BUSY) {
    api->log(g_reg.p, NNO_LOG_WARN, "core.db busy: %s", msg);
    hu_problem(req, 503, NULL,
               "the registry database is busy; retry in a moment");
    api->res_header(req, "Retry-After", "1");
    return NNO_OK;
  }
  api->log(g_reg.p, NNO_LOG_ERROR, "core.db error: %s", msg);
  return hu_problem(req, 500, NULL, "registry database error");
}

/* ---- authentication ---------------------------------------------------- */

int opkey_matches(const char *key, size_t len) {
  if (!g_reg.have_hash) return 0;
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, (const unsigned char *)key, len);
  return sodium_memcmp(h, g_reg.op_hash, sizeof h) == 0;
}

int hu_authorized(nno_req *req) {
  nno_str v;
  nno_caller c;
  /* With IAM loaded, its AUTHN and AUTHZ hooks have already admitted the
   * caller against the route's declared scope: trust that. */
  if (NNO_HAS(api, req_caller) && api->req_caller(req, &c) == NNO_OK &&
      c.kind != NNO_CALLER_NONE)
    return 1;
  reg_refresh(); /* a rotation in another worker changes the hash */
  if (api->req_header(req, "Authorization", &v) == NNO_OK && v.len > 7 &&
      v.len < 512 && strncasecmp(v.ptr, "Bearer ", 7) == 0) {
    const char *t = v.ptr + 7, *end = v.ptr + v.len;
    while (t < end && *t == ' ') t++;
    while (end > t && end[-1] == ' ') end--;
    if (opkey_matches(t, (size_t)(end - t))) return 1;
  }
  hu_problem(req, 401, NULL,
             "send the operator key as \"Authorization: Bearer <key>\" "
             "(the key is in the data directory's operator.key)");
  api->res_header(req, "WWW-Authenticate", "Bearer realm=\"nno\"");
  return 0;
}

/* ---- JSON -------------------------------------------------------------- */

char *hu_dump(const json_t *v) {
  return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

int hu_send_text(nno_req *req, int status, const char *json) {
  return api->res_json(req, status, json, strlen(json));
}

int hu_send(nno_req *req, int status, json_t *v) {
  char *text = v ? hu_dump(v) : NULL;
  json_decref(v);
  if (!text) return NNO_ENOMEM;
  int rc = hu_send_text(req, status, text);
  free(text);
  return rc;
}

static const char *type_name(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER:
  case JSON_REAL: return "a number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  default: return "null";
  }
}

int hu_body(nno_req *req, json_t **out) {
  nno_str b = api->req_body(req);
  json_error_t e;
  *out = NULL;
  if (b.len == 0) {
    *out = json_object();
    return *out ? 0 : (hu_problem(req, 500, NULL, "out of memory"), -1);
  }
  json_t *v =
      json_loadb(b.ptr, b.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
  if (!v) {
    hu_problem(req, 400, NULL, "invalid JSON at line %d column %d: %s", e.line,
               e.column, e.text);
    return -1;
  }
  if (!json_is_object(v)) {
    hu_problem(req, 422, NULL, "the body must be a JSON object, got %s",
               type_name(v));
    json_decref(v);
    return -1;
  }
  *out = v;
  return 0;
}

int hu_fields(nno_req *req, json_t *obj, const hu_field *f, size_t n) {
  const char *key;
  json_t *val;
  json_object_foreach(obj, key, val) {
    size_t i;
    for (i = 0; i < n && strcmp(f[i].name, key) != 0; i++) {
    }
    if (i == n) {
      char list[256] = "";
      size_t len = 0;
      for (size_t j = 0; j < n && len < sizeof list; j++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                                j ? ", " : "", f[j].name);
      hu_problem(req, 422, key, "field \"%.64s\": unknown field; expected %s",
                 key, list);
      return -1;
    }
    int ok = json_is_string(val) ||
             (f[i].type == HU_STR_OR_NULL && json_is_null(val));
    if (!ok) {
      hu_problem(req, 422, key, "field \"%s\": expected a string%s, got %s",
                 key, f[i].type == HU_STR_OR_NULL ? " or null" : "",
                 type_name(val));
      return -1;
    }
  }
  for (size_t i = 0; i < n; i++)
    if (f[i].required && !json_object_get(obj, f[i].name)) {
      hu_problem(req, 422, f[i].name, "field \"%s\": is required", f[i].name);
      return -1;
    }
  return 0;
}

/* ---- values ------------------------------------------------------------ */

void hu_quote(const char *s, char *out, size_t cap) {
  size_t n = strlen(s), k = 0, cut = n > 40 ? 40 : n;
  while (cut < n && cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80) cut--;
  out[k++] = '"';
  for (size_t i = 0; i < cut && k + 8 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      out[k++] = '\\';
      out[k++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      k += (size_t)snprintf(out + k, cap - k, "\\u%04x", c);
    } else {
      out[k++] = (char)c;
    }
  }
  if (cut < n && k + 4 < cap) {
    memcpy(out + k, "...", 3);
    k += 3;
  }
  out[k++] = '"';
  out[k] = '\0';
}

static int alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int hu_id_ok(const char *s, size_t n, size_t min) {
  if (n < min || n > 32 || !alnum(s[0]) || !alnum(s[n - 1])) return 0;
  for (size_t i = 0; i < n; i++)
    if (!alnum(s[i]) && s[i] != '-') return 0;
  return 1;
}

int hu_id_valid(const char *s, size_t n) {
  return hu_id_ok(s, n, STORE_PLATFORM_ID_MIN);
}

int hu_check_id(nno_req *req, const char *field, const char *s, size_t min) {
  size_t n = strlen(s);
  if (hu_id_ok(s, n, min)) return 0;
  int charset = n >= min && n <= 32;
  for (size_t i = 0; i < n && charset; i++)
    charset = alnum(s[i]) || s[i] == '-';
  char q[256];
  hu_quote(s, q, sizeof q);
  hu_problem(req, 422, field,
             "field \"%s\": expected %zu to 32 characters of [a-z0-9-]%s, "
             "got %s",
             field, min,
             charset ? " starting and ending with a letter or digit" : "", q);
  return -1;
}

int hu_check_name(nno_req *req, const char *field, const char *s) {
  size_t chars = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p < 0x20 || *p == 0x7f) {
      hu_problem(req, 422, field,
                 "field \"%s\": control characters are not allowed", field);
      return -1;
    }
    if ((*p & 0xc0) != 0x80) chars++;
  }
  if (chars >= 1 && chars <= 128) return 0;
  hu_problem(req, 422, field,
             "field \"%s\": expected 1 to 128 characters, got %zu", field,
             chars);
  return -1;
}

int hu_param(nno_req *req, const char *name, char *out, size_t cap) {
  nno_str v;
  if (api->req_param(req, name, &v) != NNO_OK || v.len == 0 || v.len >= cap)
    return -1;
  memcpy(out, v.ptr, v.len);
  out[v.len] = '\0';
  return 0;
}

int hu_query(nno_req *req, const char *name, char *out, size_t cap) {
  nno_str v;
  if (api->req_query_param(req, name, &v) != NNO_OK) return 0;
  if (v.len >= cap || memchr(v.ptr, '\0', v.len)) {
    hu_problem(req, 422, name, "field \"%s\": %s", name,
               v.len >= cap ? "too long" : "contains a NUL byte");
    return -1;
  }
  memcpy(out, v.ptr, v.len);
  out[v.len] = '\0';
  return 1;
}

void hu_random_id(const char *prefix, char *out, size_t cap) {
  static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
  size_t n = (size_t)snprintf(out, cap, "%s", prefix);
  for (int i = 0; i < 10 && n + 1 < cap; i++)
    out[n++] = b32[randombytes_uniform(32)];
  out[n] = '\0';
}

int hu_need_platform(nno_req *req, const char *id) {
  char status[16];
  int rc = store_platform_status(g_reg.db, id, status, sizeof status);
  if (rc == STORE_NOTFOUND) {
    hu_problem(req, 404, NULL, "no platform \"%s\"", id);
    return -1;
  }
  if (rc) {
    hu_store_error(req, rc);
    return -1;
  }
  return 0;
}

int hu_platform(nno_req *req, char *id) {
  nno_str v = {"", 0};
  if (api->req_param(req, "platform", &v) != NNO_OK || !hu_id_valid(v.ptr, v.len)) {
    hu_problem(req, 404, NULL, "no platform \"%.*s\"",
               (int)(v.len > 64 ? 64 : v.len), v.ptr);
    return -1;
  }
  memcpy(id, v.ptr, v.len);
  id[v.len] = '\0';
  return hu_need_platform(req, id);
}

int hu_fail(nno_req *req, int rc) {
  hu_store_error(req, rc); /* first: it logs sqlite's message */
  store_rollback(g_reg.db);
  return NNO_OK;
}

/* ---- pages ------------------------------------------------------------- */

int hu_page(nno_req *req, int *limit, char *after, size_t cap) {
  char buf[16], cur[512];
  *limit = 50;
  after[0] = '\0';
  int r = hu_query(req, "limit", buf, sizeof buf);
  if (r < 0) return -1;
  if (r > 0) {
    char *end;
    long v = strtol(buf, &end, 10);
    if (!buf[0] || *end || buf[0] < '0' || buf[0] > '9' || v < 1 || v > 500) {
      char q[64];
      hu_quote(buf, q, sizeof q);
      hu_problem(req, 422, "limit",
                 "field \"limit\": expected an integer from 1 to "
                 "500, got %s",
                 q);
      return -1;
    }
    *limit = (int)v;
  }
  r = hu_query(req, "cursor", cur, sizeof cur);
  if (r < 0) return -1;
  if (r > 0) {
    size_t n = 0;
    if (sodium_base642bin((unsigned char *)after, cap - 1, cur, strlen(cur),
                          NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n == 0 || memchr(after, '\0', n)) {
      after[0] = '\0';
      hu_problem(req, 422, "cursor",
                 "field \"cursor\": not a cursor this API "
                 "returned");
      return -1;
    }
    after[n] = '\0';
  }
  return 0;
}

int hu_pager_start(nno_req *req, hu_pager *pg, char *after, size_t cap) {
  memset(pg, 0, sizeof *pg);
  if (hu_page(req, &pg->limit, after, cap)) return -1;
  if (!(pg->items = json_array())) {
    hu_problem(req, 500, NULL, "out of memory");
    return -1;
  }
  return 0;
}

int hu_pager_full(hu_pager *pg) {
  if (pg->n < pg->limit) return 0;
  pg->more = 1;
  return 1;
}

int hu_pager_add(hu_pager *pg, json_t *item, const char *key) {
  if (!item || json_array_append_new(pg->items, item)) return STORE_ERROR;
  snprintf(pg->last, sizeof pg->last, "%s", key);
  pg->n++;
  return STORE_OK;
}

int hu_pager_send(nno_req *req, hu_pager *pg) {
  json_t *items = pg->items;
  pg->items = NULL;
  return hu_send(req, 200, hu_page_json(items, pg->more ? pg->last : NULL));
}

void hu_pager_free(hu_pager *pg) {
  json_decref(pg->items);
  pg->items = NULL;
}

json_t *hu_page_json(json_t *items, const char *next_key) {
  json_t *cursor = json_null();
  if (next_key) {
    char enc[512];
    size_t n = strlen(next_key);
    if (sodium_base64_ENCODED_LEN(
            n, sodium_base64_VARIANT_URLSAFE_NO_PADDING) <= sizeof enc) {
      sodium_bin2base64(enc, sizeof enc, (const unsigned char *)next_key, n,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING);
      cursor = json_string(enc);
    }
  }
  return json_pack("{s:o, s:o}", "items", items, "next_cursor", cursor);
}

/* ---- ETags ------------------------------------------------------------- */

void hu_etag(nno_req *req, int64_t version) {
  char tag[32];
  snprintf(tag, sizeof tag, "\"v%lld\"", (long long)version);
  api->res_header(req, "ETag", tag);
}

int hu_if_match(nno_req *req, int64_t current) {
  nno_str v;
  if (api->req_header(req, "If-Match", &v) != NNO_OK) return 1;
  char tag[32];
  int tn = snprintf(tag, sizeof tag, "\"v%lld\"", (long long)current);
  const char *p = v.ptr, *end = v.ptr + v.len;
  while (p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *e = comma ? comma : end;
    while (p < e && (*p == ' ' || *p == '\t')) p++;
    const char *te = e;
    while (te > p && (te[-1] == ' ' || te[-1] == '\t')) te--;
    size_t n = (size_t)(te - p);
    if ((n == 1 && *p == '*') || (n == (size_t)tn && memcmp(p, tag, n) == 0))
      return 1;
    p = e + 1;
  }
  return 0;
}

/* ---- idempotency ------------------------------------------------------- */

static void request_hash(nno_req *req, char out[65]) {
  crypto_hash_sha256_state st;
  unsigned char h[crypto_hash_sha256_BYTES];
  nno_str m = api->req_method(req), p = api->req_path(req),
          b = api->req_body(req);
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, (const unsigned char *)m.ptr, m.len);
  crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
  crypto_hash_sha256_update(&st, (const unsigned char *)p.ptr, p.len);
  crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
  crypto_hash_sha256_update(&st, (const unsigned char *)b.ptr, b.len);
  crypto_hash_sha256_final(&st, h);
  sodium_bin2hex(out, 65, h, sizeof h);
}

int hu_idem_begin(nno_req *req, hu_idem *ik) {
  nno_str k;
  memset(ik, 0, sizeof *ik);
  if (api->req_header(req, "Idempotency-Key", &k) != NNO_OK) return 0;
  int ok = k.len >= 1 && k.len <= 128;
  for (size_t i = 0; i < k.len && ok; i++)
    ok = k.ptr[i] >= 0x20 && k.ptr[i] < 0x7f;
  if (!ok) {
    hu_problem(req, 400, NULL,
               "Idempotency-Key must be 1 to 128 printable ASCII characters");
    return 1;
  }
  nno_str m = api->req_method(req), p = api->req_path(req);
  memcpy(ik->e.key, k.ptr, k.len);
  hu_actor(req, ik->e.actor, sizeof ik->e.actor);
  snprintf(ik->e.method, sizeof ik->e.method, "%.*s", (int)m.len, m.ptr);
  snprintf(ik->e.path, sizeof ik->e.path, "%.*s", (int)p.len, p.ptr);
  request_hash(req, ik->e.request_hash);

  char cutoff[STORE_TIME_MAX + 1];
  store_time((int64_t)time(NULL) - 24 * 3600, cutoff);
  store_idem old;
  int rc = store_idem_prune(g_reg.db, cutoff);
  if (!rc) rc = store_idem_get(g_reg.db, ik->e.key, ik->e.actor, &old);
  if (rc == STORE_NOTFOUND) {
    ik->active = 1;
    return 0;
  }
  if (rc) {
    hu_store_error(req, rc);
    return 1;
  }
  if (strcmp(old.method, ik->e.method) != 0 ||
      strcmp(old.path, ik->e.path) != 0 ||
      strcmp(old.request_hash, ik->e.request_hash) != 0) {
    hu_problem(req, 422, "Idempotency-Key",
               "Idempotency-Key was already used for a different request "
               "(%s %s)",
               old.method, old.path);
  } else {
    if (old.location) api->res_header(req, "Location", old.location);
    api->res_header(req, "Idempotent-Replayed", "true");
    hu_send_text(req, old.status, old.body);
  }
  store_idem_clear(&old);
  return 1;
}

int hu_idem_record(hu_idem *ik, int status, const char *body,
                   const char *location) {
  if (!ik->active) return STORE_OK;
  ik->e.status = status;
  ik->e.body = (char *)body; /* borrowed for the insert only */
  ik->e.location = (char *)location;
  int rc = store_idem_put(g_reg.db, &ik->e);
  ik->e.body = ik->e.location = NULL;
  return rc;
}

void hu_idem_clear(hu_idem *ik) { store_idem_clear(&ik->e); }

/* ---- audit ------------------------------------------------------------- */

void hu_actor(nno_req *req, char *out, size_t cap) {
  nno_caller c;
  if (!NNO_HAS(api, req_caller) || api->req_caller(req, &c) != NNO_OK ||
      c.kind == NNO_CALLER_NONE || c.kind == NNO_CALLER_OPERATOR)
    snprintf(out, cap, "%s", REG_ACTOR);
  else if (c.kind == NNO_CALLER_KEY)
    snprintf(out, cap, "key:%.*s", (int)c.subject.len, c.subject.ptr);
  else
    snprintf(out, cap, "user:%.*s/%.*s", (int)c.platform.len, c.platform.ptr,
             (int)c.subject.len, c.subject.ptr);
}

int hu_audit(nno_req *req, const char *action, const char *target,
             const json_t *detail) {
  nno_str rid = api->req_id(req);
  char id[65];
  snprintf(id, sizeof id, "%.*s", (int)(rid.len < 64 ? rid.len : 64), rid.ptr);
  char *text = detail ? hu_dump(detail) : NULL;
  if (detail && !text) return STORE_ERROR;
  char actor[160];
  hu_actor(req, actor, sizeof actor);
  int rc = store_audit_add(g_reg.db, actor, action, target, id, text);
  free(text);
  return rc;
}
