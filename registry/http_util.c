/* Shared pieces of the operator API handlers (see http_util.h). */
#include "http_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "internal.h"

/* ---- problems ---------------------------------------------------------- */

int hu_store_error(nno_req *req, int rc) {
  const char *msg = g_reg.db ? sqlite3_errmsg(g_reg.db) : "no database";
  if (rc == STORE_BUSY) {
    api->log(g_reg.p, NNO_LOG_WARN, "core.db busy: %s", msg);
    nno_problem(req, 503, NULL,
                "the registry database is busy; retry in a moment");
    api->res_header(req, "Retry-After", "1");
    return NNO_OK;
  }
  api->log(g_reg.p, NNO_LOG_ERROR, "core.db error: %s", msg);
  return nno_problem(req, 500, NULL, "registry database error");
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
  /* A 401 problem carries WWW-Authenticate: Bearer realm="nno". */
  nno_problem(req, 401, NULL,
              "send the operator key as \"Authorization: Bearer <key>\" "
              "(the key is in the data directory's operator.key)");
  return 0;
}

/* ---- values ------------------------------------------------------------ */

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
    nno_problem(req, 404, NULL, "no platform \"%s\"", id);
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
    nno_problem(req, 404, NULL, "no platform \"%.*s\"",
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
  return hu_idem_begin_wait(req, ik, 0);
}

int hu_idem_begin_wait(nno_req *req, hu_idem *ik, int can_wait) {
  nno_str k;
  memset(ik, 0, sizeof *ik);
  if (api->req_header(req, "Idempotency-Key", &k) != NNO_OK) return 0;
  int ok = k.len >= 1 && k.len <= 128;
  for (size_t i = 0; i < k.len && ok; i++)
    ok = k.ptr[i] >= 0x20 && k.ptr[i] < 0x7f;
  if (!ok) {
    nno_problem(req, 400, NULL,
                "Idempotency-Key must be 1 to 128 printable ASCII characters");
    return 1;
  }
  nno_str m = api->req_method(req), p = api->req_path(req);
  memcpy(ik->e.key, k.ptr, k.len);
  nno_caller_actor(req, ik->e.actor, sizeof ik->e.actor);
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
  char stale[STORE_TIME_MAX + 1];
  store_time((int64_t)time(NULL) - HU_IDEM_STALE_S, stale);
  if (old.status == HU_IDEM_PENDING && strcmp(old.created_at, stale) < 0) {
    /* Its process died before answering: as if never sent. */
    store_idem_clear(&old);
    rc = store_idem_delete(g_reg.db, ik->e.key, ik->e.actor);
    if (rc) {
      hu_store_error(req, rc);
      return 1;
    }
    ik->active = 1;
    return 0;
  }
  if (strcmp(old.method, ik->e.method) != 0 ||
      strcmp(old.path, ik->e.path) != 0 ||
      strcmp(old.request_hash, ik->e.request_hash) != 0) {
    nno_problem(req, 422, "Idempotency-Key",
                "Idempotency-Key was already used for a different request "
                "(%s %s)",
                old.method, old.path);
  } else if (old.status == HU_IDEM_PENDING) {
    if (can_wait) {
      store_idem_clear(&old);
      return 2;
    }
    nno_problem_retry(req, 409, 1,
                      "a request with this Idempotency-Key is still in "
                      "progress; send it again in a moment");
  } else {
    if (old.location) api->res_header(req, "Location", old.location);
    api->res_header(req, "Idempotent-Replayed", "true");
    nno_send_text(req, old.status, old.body);
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

int hu_idem_pending(hu_idem *ik) {
  return hu_idem_record(ik, HU_IDEM_PENDING, "{}", NULL);
}

int hu_idem_forget(hu_idem *ik) {
  if (!ik->active) return STORE_OK;
  return store_idem_delete(g_reg.db, ik->e.key, ik->e.actor);
}

void hu_idem_clear(hu_idem *ik) { store_idem_clear(&ik->e); }

/* ---- audit ------------------------------------------------------------- */

int hu_audit(nno_req *req, const char *action, const char *target,
             const json_t *detail) {
  nno_str rid = api->req_id(req);
  char id[65];
  snprintf(id, sizeof id, "%.*s", (int)(rid.len < 64 ? rid.len : 64), rid.ptr);
  char *text = detail ? nno_json_text(detail) : NULL;
  if (detail && !text) return STORE_ERROR;
  char actor[160];
  nno_caller_actor(req, actor, sizeof actor);
  int rc = store_audit_add(g_reg.db, actor, action, target, id, text);
  free(text);
  return rc;
}
