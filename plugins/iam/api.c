/* IAM's HTTP API (API keys and access policies of a platform) and the
 * nno.iam service (sessions, for the auth package).
 *
 *   POST   /api/v1/platforms/{platform}/keys        keys:write
 *   GET    /api/v1/platforms/{platform}/keys        keys:read
 *   DELETE /api/v1/platforms/{platform}/keys/{key}  keys:write
 *   GET    /api/v1/platforms/{platform}/access      access:read
 *   PUT    /api/v1/platforms/{platform}/access      access:write
 *
 * The gateway's AUTHZ hook has already checked the caller against the
 * route's scope and platform; the handlers add what depends on the body: a
 * key may only hand out scopes it holds, and a tenant-bound key only keys
 * within its tenant's subtree. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nno/sdk.h>
#include <sodium.h>

#include "internal.h"

#define MAX_EXPIRES_IN (10LL * 365 * 86400)

/* ---- small helpers --------------------------------------------------------- */

/* Problems, bodies, ids, parameters and the actor come from the SDK
 * (nno/sdk.h). IAM's problems carry no "field" member: its details start
 * with the field's name instead. */

static int store_fail(nno_req *req, int rc) {
  if (rc == IAM_BUSY)
    return nno_problem_retry(req, 503, 1,
                             "the database is busy; retry in a moment");
  api->log(g_iam.p, NNO_LOG_ERROR, "core.db: %s", sqlite3_errmsg(g_iam.db));
  return nno_problem(req, 500, NULL, "database error");
}

/* Members other than those of the table are refused: a typo must not
 * silently create a key with less protection than intended. IAM checks
 * each value itself, with messages of its own. 0, or -1 after answering. */
static int only_fields(nno_req *req, json_t *o, const nno_field *f, size_t n) {
  const char *k = nno_fields_unknown(o, f, n);
  if (k) return nno_problem(req, 422, NULL, "unknown field \"%.64s\"", k), -1;
  return 0;
}

static void zcopy_str(char *dst, size_t cap, nno_str s) {
  size_t n = s.len < cap - 1 ? s.len : cap - 1;
  if (n) memcpy(dst, s.ptr, n);
  dst[n] = '\0';
}

/* A platform or tenant id. */
static int id_ok(const char *s) {
  return nno_id_valid(s, strlen(s), 1, IAM_ID_MAX - 1);
}

static void iso_time(int64_t t, char out[32]) {
  struct tm tm;
  time_t tt = (time_t)t;
  gmtime_r(&tt, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The platform of the route, known to exist. 0, or -1 after answering. */
static int route_platform(nno_req *req, char plat[IAM_ID_MAX]) {
  char st[16];
  if (nno_param_copy(req, "platform", plat, IAM_ID_MAX) || !id_ok(plat) ||
      !g_iam.reg || g_iam.reg->platform_status(plat, st, sizeof st) != NNO_OK ||
      strcmp(st, "deleting") == 0)
    return nno_problem(req, 404, NULL, "no platform \"%.32s\"", plat), -1;
  return 0;
}

/* 1 if the caller is bound to a tenant that does not hold `tenant` in its
 * subtree ("" meaning the whole platform). */
static int outside_caller(const nno_caller *c, const char *plat,
                          const char *tenant) {
  if (c->kind == NNO_CALLER_OPERATOR || c->tenant.len == 0) return 0;
  if (!*tenant) return 1;
  char anc[IAM_ID_MAX];
  snprintf(anc, sizeof anc, "%.*s", (int)c->tenant.len, c->tenant.ptr);
  return g_iam.reg->tenant_within(plat, tenant, anc) != 1;
}

/* An audit row in the registry's log (GET /api/v1/audit), after the change
 * committed: a failure is logged, the change stands. */
static void audit(nno_req *req, const char *action, const char *platform,
                  json_t *detail) {
  char actor[NNO_ACTOR_MAX], target[64], rid[65];
  const nno_registry_v1 *reg = g_iam.reg;
  if (!reg || reg->size < offsetof(nno_registry_v1, audit_add) +
                              sizeof reg->audit_add) {
    json_decref(detail);
    return;
  }
  nno_caller_actor(req, actor, sizeof actor);
  snprintf(target, sizeof target, "platform:%s", platform);
  nno_str r = api->req_id(req);
  snprintf(rid, sizeof rid, "%.*s", (int)(r.len < 64 ? r.len : 64), r.ptr);
  char *text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
  json_decref(detail);
  int rc = reg->audit_add(actor, action, target, rid, text);
  if (rc)
    api->log(g_iam.p, NNO_LOG_WARN, "cannot audit %s on %s: %s", action,
             target, api->strerror(rc));
  free(text);
}

/* ---- scopes in bodies ---------------------------------------------------------- */

/* A JSON array of scope strings into a space-separated list. */
static int scopes_from_json(nno_req *req, json_t *v, const char *field,
                            char *out, size_t cap, int allow_empty) {
  size_t n = 0, i;
  json_t *s;
  if (!json_is_array(v) || (!allow_empty && json_array_size(v) == 0))
    return nno_problem(req, 422, NULL, "%s: expected a%s array of scopes",
                       field, allow_empty ? "n" : " non-empty"),
           -1;
  out[0] = '\0';
  json_array_foreach(v, i, s) {
    const char *z = json_string_value(s);
    size_t l = z ? strlen(z) : 0;
    if (!z || !iam_scope_valid(z, l))
      return nno_problem(req, 422, NULL,
                         "%s[%zu]: a scope is 1..64 of a-z 0-9 _ . - : * (e.g. "
                         "\"tenants:read\")",
                         field, i),
             -1;
    if (n + l + 2 > cap)
      return nno_problem(req, 422, NULL,
                         "%s: too many scopes (at most %zu bytes)", field,
                         cap - 1),
             -1;
    if (n) out[n++] = ' ';
    memcpy(out + n, z, l);
    n += l;
    out[n] = '\0';
  }
  return 0;
}

static json_t *scopes_to_json(const char *s) {
  json_t *a = json_array();
  const char *p = s;
  while (a && *p) {
    while (*p == ' ') p++;
    const char *q = p;
    while (*q && *q != ' ') q++;
    if (q > p) json_array_append_new(a, json_stringn(p, (size_t)(q - p)));
    p = q;
  }
  return a;
}

/* ---- keys ---------------------------------------------------------------------- */

static json_t *key_json(const iam_key *k, const char *name, int64_t created,
                        int64_t revoked) {
  char c[32], e[32], r[32];
  iso_time(created, c);
  if (k->expires) iso_time(k->expires, e);
  if (revoked) iso_time(revoked, r);
  return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:o}", "id", k->id,
                   "name", name, "platform", k->platform, "tenant",
                   k->tenant[0] ? json_string(k->tenant) : json_null(),
                   "scopes", scopes_to_json(k->scopes), "created_at", c,
                   "expires_at", k->expires ? json_string(e) : json_null(),
                   "revoked_at", revoked ? json_string(r) : json_null());
}

/* When the credential creating a key stops working: an expiring key's
 * expiry, a session's absolute expiry (its idle expiry moves, so it does
 * not bound), 0 for the operator and keys that never expire. */
static int64_t creator_expiry(const nno_caller *c) {
  char id[IAM_SUBJECT_MAX];
  if (c->kind == NNO_CALLER_KEY) {
    zcopy_str(id, sizeof id, c->subject);
    const iam_key *k = iam_keytab_get(g_iam.keys, id);
    return k ? k->expires : 0;
  }
  if (c->kind == NNO_CALLER_USER) {
    iam_sess s;
    zcopy_str(id, sizeof id, c->session);
    if (iam_store_session_get(g_iam.db, id, &s) == IAM_OK) return s.expires;
    /* Gone since AUTHN: bound the key by the longest a session lives. */
    return iam_now() + g_iam.cfg.session_absolute_s;
  }
  return 0;
}

/* A key made by a user session, or by a key such a session made, records
 * that session and user: it is revoked when the session ends and holds no
 * more than the platform's users hold (iam_key). */
static void key_origin(const nno_caller *c, iam_key *k) {
  char id[17];
  if (c->kind == NNO_CALLER_USER) {
    zcopy_str(k->session, sizeof k->session, c->session);
    zcopy_str(k->user, sizeof k->user, c->subject);
  } else if (c->kind == NNO_CALLER_KEY) {
    zcopy_str(id, sizeof id, c->subject);
    const iam_key *from = iam_keytab_get(g_iam.keys, id);
    if (from) {
      memcpy(k->session, from->session, sizeof k->session);
      memcpy(k->user, from->user, sizeof k->user);
    }
  }
}

static int key_create(nno_req *req, void *ud) {
  (void)ud;
  static const nno_field fields[] = {NNO_FIELD("name", NNO_FIELD_ANY, 0),
                                     NNO_FIELD("scopes", NNO_FIELD_ANY, 0),
                                     NNO_FIELD("tenant", NNO_FIELD_ANY, 0),
                                     NNO_FIELD("expires_in", NNO_FIELD_ANY, 0)};
  iam_key k;
  nno_caller c;
  json_t *b, *v;
  memset(&k, 0, sizeof k);
  api->req_caller(req, &c);
  if (route_platform(req, k.platform) || nno_body_object(req, 0, 0, &b))
    return NNO_OK;
  if (only_fields(req, b, fields, sizeof fields / sizeof *fields)) goto done;
  const char *name = json_string_value(json_object_get(b, "name"));
  if (!name || !*name || strlen(name) >= IAM_NAME_MAX) {
    nno_problem(req, 422, NULL, "name: required, 1..128 bytes");
    goto done;
  }
  for (const char *p = name; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) {
      nno_problem(req, 422, NULL, "name: no control characters");
      goto done;
    }
  if (scopes_from_json(req, json_object_get(b, "scopes"), "scopes", k.scopes,
                       sizeof k.scopes, 0))
    goto done;
  if (c.kind != NNO_CALLER_OPERATOR &&
      !iam_scopes_subset(c.scopes.ptr, c.scopes.len, k.scopes)) {
    nno_problem(req, 403, NULL,
                "a key can only grant scopes its creator holds");
    goto done;
  }
  if ((v = json_object_get(b, "tenant")) && !json_is_null(v)) {
    const char *t = json_string_value(v);
    if (!t || !id_ok(t)) {
      nno_problem(req, 422, NULL, "tenant: expected a tenant id or null");
      goto done;
    }
    snprintf(k.tenant, sizeof k.tenant, "%s", t);
    if (g_iam.reg->tenant_within(k.platform, k.tenant, k.tenant) != 1) {
      nno_problem(req, 422, NULL, "tenant: platform %s has no tenant \"%s\"",
                  k.platform, k.tenant);
      goto done;
    }
  } else if (c.tenant.len) { /* a bound creator makes bound keys */
    snprintf(k.tenant, sizeof k.tenant, "%.*s", (int)c.tenant.len,
             c.tenant.ptr);
  }
  if (outside_caller(&c, k.platform, k.tenant)) {
    nno_problem(req, 403, NULL,
                "a tenant-bound credential only makes keys within its "
                "tenant's subtree");
    goto done;
  }
  key_origin(&c, &k);
  int64_t limit = creator_expiry(&c);
  if ((v = json_object_get(b, "expires_in")) && !json_is_null(v)) {
    if (!json_is_integer(v) || json_integer_value(v) < 60 ||
        json_integer_value(v) > MAX_EXPIRES_IN) {
      nno_problem(req, 422, NULL, "expires_in: seconds, 60..%lld",
                  MAX_EXPIRES_IN);
      goto done;
    }
    k.expires = iam_now() + json_integer_value(v);
    if (limit && k.expires > limit) {
      char at[32];
      iso_time(limit, at);
      nno_problem(
          req, 403, NULL,
          "expires_in: a key cannot outlive the credential that creates "
          "it (that one ends at %s)",
          at);
      goto done;
    }
  } else {
    k.expires = limit; /* the creator's remaining life, or never */
  }
  char tok[NNO_IAM_TOKEN_MAX];
  iam_token_new(IAM_KEY_PREFIX, tok, sizeof tok, k.id, k.hash);
  int64_t now = iam_now();
  char creator[17] = "";
  if (c.kind == NNO_CALLER_KEY) zcopy_str(creator, sizeof creator, c.subject);
  /* Checked again in the insert's transaction: a sign-out or revocation
   * that committed since AUTHN (on any worker) wins. */
  /* The plan's bound on live keys (billing's plans; none without
   * billing), checked in the insert's transaction. */
  nno_plan_limits pl = {.size = sizeof pl};
  if (!g_iam.billing || g_iam.billing->platform_limits(k.platform, &pl))
    pl.api_keys = 0;
  uint64_t live = 0;
  int rc = iam_store_key_insert_max(g_iam.db, &k, name, creator, now,
                                    pl.api_keys, &live);
  if (rc) {
    sodium_memzero(tok, sizeof tok);
    if (rc == IAM_FULL)
      nno_problem_limit(req, 409, "api_keys", pl.name,
                        (unsigned long long)live,
                        (unsigned long long)pl.api_keys,
                        "platform %s has %llu live API keys; its plan \"%s\" "
                        "allows %llu (limit \"api_keys\"): revoke one or "
                        "move the platform to a larger plan; no key was made",
                        k.platform, (unsigned long long)live, pl.name,
                        (unsigned long long)pl.api_keys);
    else if (rc == IAM_NOTFOUND)
      nno_problem(req, 401, NULL,
                  "the credential creating this key has ended (signed out, "
                  "revoked or expired); no key was made");
    else
      store_fail(req, rc);
    goto done;
  }
  iam_committed("key", k.platform, k.id);
  audit(req, "key.create", k.platform,
        json_pack("{s:s, s:s, s:o, s:o}", "key", k.id, "name", name,
                  "scopes", scopes_to_json(k.scopes), "tenant",
                  k.tenant[0] ? json_string(k.tenant) : json_null()));
  json_t *out = key_json(&k, name, now, 0);
  if (out) json_object_set_new(out, "key", json_string(tok));
  sodium_memzero(tok, sizeof tok);
  char loc[128];
  snprintf(loc, sizeof loc, "/api/v1/platforms/%s/keys/%s", k.platform, k.id);
  nno_send_json(req, 201, out);
  api->res_header(req, "Location", loc);
  api->res_header(req, "Cache-Control", "no-store");
done:
  json_decref(b);
  return NNO_OK;
}

typedef struct list_st {
  nno_pager pg;
  int err; /* an item could not be added: answer 500, not a short page */
} list_st;

static int list_one(void *ud, const iam_key *k, const char *name,
                    int64_t created, int64_t revoked) {
  list_st *l = ud;
  if (nno_pager_full(&l->pg)) return 1;
  if (nno_pager_add(&l->pg, key_json(k, name, created, revoked), k->id))
    return l->err = 1;
  return 0;
}

/* A page of the platform's keys, revoked ones included; a tenant-bound
 * caller's pages hold (and its cursors point at) only keys bound within
 * its subtree: the store filters before the limit. */
static int key_list(nno_req *req, void *ud) {
  (void)ud;
  char plat[IAM_ID_MAX], after[NNO_PAGE_KEY_MAX], within[IAM_ID_MAX] = "";
  nno_caller c;
  list_st l = {.err = 0};
  api->req_caller(req, &c);
  if (route_platform(req, plat)) return NNO_OK;
  if (nno_pager_start(req, &l.pg, 100, 500, after, sizeof after))
    return NNO_OK;
  if (c.kind != NNO_CALLER_OPERATOR && c.tenant.len)
    zcopy_str(within, sizeof within, c.tenant);
  /* One more than the page: it only tells that there is a next one. */
  int rc = iam_store_keys_list(g_iam.db, plat, within, after,
                               l.pg.limit + 1, list_one, &l);
  if (rc || l.err) {
    nno_pager_free(&l.pg);
    return rc ? store_fail(req, rc)
              : nno_problem(req, 500, NULL, "out of memory");
  }
  return nno_pager_send(req, &l.pg);
}

typedef struct find_st {
  const char *id;
  iam_key k;
  int found;
  int64_t revoked;
} find_st;

static int find_one(void *ud, const iam_key *k, const char *name,
                    int64_t created, int64_t revoked) {
  (void)name, (void)created;
  find_st *f = ud;
  if (strcmp(k->id, f->id) == 0) f->k = *k, f->found = 1, f->revoked = revoked;
  return 1;
}

static int key_revoke(nno_req *req, void *ud) {
  (void)ud;
  char plat[IAM_ID_MAX], id[20];
  nno_caller c;
  api->req_caller(req, &c);
  if (route_platform(req, plat)) return NNO_OK;
  nno_param_copy(req, "key", id, sizeof id); /* checked below */
  if (strlen(id) != 16)
    return nno_problem(req, 404, NULL, "no key \"%.16s\"", id);
  find_st f;
  memset(&f, 0, sizeof f);
  f.id = id;
  int rc = iam_store_key_get(g_iam.db, plat, id, find_one, &f);
  if (rc) return store_fail(req, rc);
  if (!f.found || f.revoked)
    return nno_problem(req, 404, NULL, "no live key \"%s\"", id);
  if (outside_caller(&c, plat, f.k.tenant))
    return nno_problem(req, 403, NULL,
                       "this key belongs outside the caller's tenant");
  size_t made = 0;
  rc = iam_store_key_revoke(g_iam.db, plat, id, iam_now(), &made);
  if (rc == IAM_NOTFOUND)
    return nno_problem(req, 404, NULL, "no live key \"%s\"", id);
  if (rc) return store_fail(req, rc);
  iam_committed("key", plat, id);
  audit(req, "key.revoke", plat,
        json_pack("{s:s, s:I}", "key", id, "keys_it_made", (json_int_t)made));
  api->res_status(req, 204);
  return NNO_OK;
}

/* ---- access policies ------------------------------------------------------------ */

static json_t *access_json(const char *plat) {
  const iam_access *a = iam_access_get(plat, strlen(plat));
  json_t *o = json_array();
  for (size_t i = 0; a && o && i < a->norigins; i++)
    json_array_append_new(o, json_string(a->origins[i]));
  const char *us = a && a->user_scopes[0] ? a->user_scopes
                                          : g_iam.cfg.user_scopes;
  return json_pack("{s:s, s:b, s:o, s:o, s:I, s:I}", "platform", plat,
                   "signup", a ? a->signup : 0, "cors_origins", o,
                   "user_scopes", scopes_to_json(us), "session_idle_s",
                   (json_int_t)g_iam.cfg.session_idle_s, "session_absolute_s",
                   (json_int_t)g_iam.cfg.session_absolute_s);
}

static int access_get(nno_req *req, void *ud) {
  (void)ud;
  char plat[IAM_ID_MAX];
  if (route_platform(req, plat)) return NNO_OK;
  return nno_send_json(req, 200, access_json(plat));
}

/* "scheme://host[:port]": what a browser sends as Origin. */
static int origin_ok(const char *o) {
  size_t n = strlen(o);
  const char *h;
  if (n >= 128) return 0;
  if (strncmp(o, "https://", 8) == 0) h = o + 8;
  else if (strncmp(o, "http://", 7) == 0) h = o + 7;
  else return 0;
  if (!*h) return 0;
  for (const char *p = h; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
          *p == '-' || *p == '.' || *p == ':' || *p == '[' || *p == ']'))
      return 0;
  return 1;
}

static int access_put(nno_req *req, void *ud) {
  (void)ud;
  static const nno_field fields[] = {
      NNO_FIELD("signup", NNO_FIELD_ANY, 0),
      NNO_FIELD("cors_origins", NNO_FIELD_ANY, 0),
      NNO_FIELD("user_scopes", NNO_FIELD_ANY, 0)};
  iam_access a;
  nno_caller c;
  json_t *b, *v;
  memset(&a, 0, sizeof a);
  api->req_caller(req, &c);
  if (route_platform(req, a.platform) || nno_body_object(req, 0, 0, &b))
    return NNO_OK;
  if (only_fields(req, b, fields, sizeof fields / sizeof *fields)) goto done;
  if (c.tenant.len) {
    nno_problem(req, 403, NULL,
                "a tenant-bound credential cannot change the platform's "
                "access policy");
    goto done;
  }
  /* Start from the current policy: PUT replaces the fields it names. */
  const iam_access *cur = iam_access_get(a.platform, strlen(a.platform));
  char was_us[IAM_SCOPES_MAX]; /* what users hold before this change */
  snprintf(was_us, sizeof was_us, "%s", iam_user_scopes(a.platform));
  if (cur) a = *cur;
  if ((v = json_object_get(b, "signup"))) {
    if (!json_is_boolean(v)) {
      nno_problem(req, 422, NULL, "signup: expected true or false");
      goto done;
    }
    a.signup = json_is_true(v);
  }
  if ((v = json_object_get(b, "cors_origins"))) {
    size_t i;
    json_t *o;
    if (!json_is_array(v) || json_array_size(v) > IAM_ORIGINS_MAX) {
      nno_problem(req, 422, NULL,
                  "cors_origins: an array of at most %d origins",
                  IAM_ORIGINS_MAX);
      goto done;
    }
    a.norigins = 0;
    json_array_foreach(v, i, o) {
      const char *s = json_string_value(o);
      if (!s || !origin_ok(s)) {
        nno_problem(
            req, 422, NULL,
            "cors_origins[%zu]: expected \"https://host[:port]\" in lower "
            "case, no path",
            i);
        goto done;
      }
      snprintf(a.origins[a.norigins++], sizeof a.origins[0], "%s", s);
    }
  }
  if ((v = json_object_get(b, "user_scopes"))) {
    if (scopes_from_json(req, v, "user_scopes", a.user_scopes,
                         sizeof a.user_scopes, 1))
      goto done;
    /* As for keys: no handing out more than the caller holds (an empty
     * list means the configured default). */
    const char *us = a.user_scopes[0] ? a.user_scopes : g_iam.cfg.user_scopes;
    if (c.kind != NNO_CALLER_OPERATOR &&
        !iam_scopes_subset(c.scopes.ptr, c.scopes.len, us)) {
      nno_problem(req, 403, NULL,
                  "user_scopes: a credential can only give users scopes "
                  "it holds");
      goto done;
    }
  }
  /* A credential that ends (a session, an expiring key) must not hand out
   * what outlives it: every sign-up is a session (and its keys) made from
   * user_scopes, so it may neither turn sign-up on nor widen them. */
  if (c.kind != NNO_CALLER_OPERATOR &&
      (c.kind == NNO_CALLER_USER || creator_expiry(&c)) &&
      ((a.signup && !(cur && cur->signup)) ||
       !iam_scopes_subset(
           was_us, strlen(was_us),
           a.user_scopes[0] ? a.user_scopes : g_iam.cfg.user_scopes))) {
    nno_problem(req, 403, NULL,
                "a credential that expires (a session, or a key with an "
                "expiry) cannot turn sign-up on or widen user_scopes: "
                "users it lets in would outlive it; use the operator key "
                "or a key that does not expire");
    goto done;
  }
  /* Turning sign-up on hands user_scopes to whoever signs up: the same
   * rule as granting them directly. */
  if (a.signup && !(cur && cur->signup) && c.kind != NNO_CALLER_OPERATOR &&
      !iam_scopes_subset(c.scopes.ptr, c.scopes.len,
                         a.user_scopes[0] ? a.user_scopes
                                          : g_iam.cfg.user_scopes)) {
    nno_problem(req, 403, NULL,
                "signup: turning sign-up on gives every new user the "
                "platform's user_scopes; a credential can only do that "
                "when it holds them");
    goto done;
  }
  int rc = iam_store_access_put(g_iam.db, &a, iam_now());
  if (rc) {
    store_fail(req, rc);
    goto done;
  }
  iam_committed("access", a.platform, "");
  json_t *now = access_json(a.platform);
  audit(req, "access.update", a.platform, json_deep_copy(now));
  nno_send_json(req, 200, now);
done:
  json_decref(b);
  return NNO_OK;
}

/* ---- the nno.iam service ------------------------------------------------------ */

static int user_id_ok(const char *u) {
  size_t n = u ? strlen(u) : 0;
  if (n < 1 || n > 64) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((u[i] >= 'a' && u[i] <= 'z') || (u[i] >= 'A' && u[i] <= 'Z') ||
          (u[i] >= '0' && u[i] <= '9') || u[i] == '_' || u[i] == '.' ||
          u[i] == '-'))
      return 0;
  return 1;
}

static int map_store(int rc) {
  return rc == IAM_OK ? NNO_OK
         : rc == IAM_NOTFOUND ? NNO_ENOENT
         : rc == IAM_BUSY ? NNO_EBUSY
         : rc == IAM_FK ? NNO_ENOENT
                        : NNO_EIO;
}

static int svc_session_create(const char *platform, const char *user,
                              const char *tenant, const char *scopes,
                              nno_iam_session *out) {
  iam_sess s;
  char st[16];
  if (!platform || !id_ok(platform) || !user_id_ok(user) || !out)
    return NNO_EINVAL;
  if (tenant && *tenant && !id_ok(tenant)) return NNO_EINVAL;
  if (!g_iam.reg || g_iam.reg->platform_status(platform, st, sizeof st))
    return NNO_ENOENT;
  memset(&s, 0, sizeof s);
  snprintf(s.platform, sizeof s.platform, "%s", platform);
  snprintf(s.user, sizeof s.user, "%s", user);
  snprintf(s.tenant, sizeof s.tenant, "%s", tenant ? tenant : "");
  if (!scopes) {
    const iam_access *a = iam_access_get(platform, strlen(platform));
    scopes = a && a->user_scopes[0] ? a->user_scopes : g_iam.cfg.user_scopes;
  }
  if (strlen(scopes) >= sizeof s.scopes) return NNO_EINVAL;
  snprintf(s.scopes, sizeof s.scopes, "%s", scopes);
  int64_t now = iam_now();
  s.expires = now + g_iam.cfg.session_absolute_s;
  s.idle_expires = now + g_iam.cfg.session_idle_s;
  if (s.idle_expires > s.expires) s.idle_expires = s.expires;
  memset(out, 0, sizeof *out);
  iam_token_new(IAM_SESSION_PREFIX, out->token, sizeof out->token, s.id,
                s.hash);
  int rc = iam_store_session_insert(g_iam.db, &s, now);
  if (rc) {
    sodium_memzero(out, sizeof *out);
    return map_store(rc);
  }
  memcpy(out->id, s.id, sizeof out->id);
  out->expires = s.expires;
  out->idle_expires = s.idle_expires;
  return NNO_OK;
}

static int svc_session_revoke(const char *platform, const char *id) {
  if (!platform || !id) return NNO_EINVAL;
  int rc = iam_store_session_delete(g_iam.db, platform, id);
  if (rc) return map_store(rc);
  iam_committed("session", platform, id);
  return NNO_OK;
}

static int svc_session_revoke_user(const char *platform, const char *user,
                                   const char *keep, size_t *count) {
  size_t n = 0;
  if (!platform || !user_id_ok(user)) return NNO_EINVAL;
  int rc = iam_store_session_delete_user(g_iam.db, platform, user, keep, &n);
  if (rc) return map_store(rc);
  if (count) *count = n;
  /* Keys the user's sessions made may be revoked even when no session
   * was left to end. */
  iam_committed("session", platform, user);
  return NNO_OK;
}

static int svc_platform_access(const char *platform, nno_iam_access *out) {
  char st[16];
  if (!platform || !out) return NNO_EINVAL;
  iam_refresh();
  if (!g_iam.reg || g_iam.reg->platform_status(platform, st, sizeof st))
    return NNO_ENOENT;
  const iam_access *a = iam_access_get(platform, strlen(platform));
  out->signup = a ? a->signup : 0;
  out->idle_s = g_iam.cfg.session_idle_s;
  out->absolute_s = g_iam.cfg.session_absolute_s;
  return NNO_OK;
}

/* The matcher authz applies to routes (scope.c), for the console's
 * composition: no second copy of the rules. */
static int svc_scope_allows(const char *granted, size_t len,
                            const char *needed) {
  if (!granted || !needed || !iam_scope_valid(needed, strlen(needed)))
    return 0;
  return iam_scope_covers(granted, len, needed);
}

const nno_iam_v1 iam_service = {
    .size = sizeof(nno_iam_v1),
    .session_create = svc_session_create,
    .session_revoke = svc_session_revoke,
    .session_revoke_user = svc_session_revoke_user,
    .platform_access = svc_platform_access,
    .scope_allows = svc_scope_allows,
    .device_answer = iam_device_answer,
};

int iam_api_init(nno_plugin *p) {
  nno_sdk_init(p, api);
  static const struct {
    const char *m, *path;
    nno_handler_fn fn;
  } routes[] = {
      {"POST", "/api/v1/platforms/{platform}/keys", key_create},
      {"GET", "/api/v1/platforms/{platform}/keys", key_list},
      {"DELETE", "/api/v1/platforms/{platform}/keys/{key}", key_revoke},
      {"GET", "/api/v1/platforms/{platform}/access", access_get},
      {"PUT", "/api/v1/platforms/{platform}/access", access_put},
  };
  for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
    int rc = api->route_add(p, routes[i].m, routes[i].path, routes[i].fn, NULL);
    if (rc) return rc;
  }
  return NNO_OK;
}

/* ---- for device.c ------------------------------------------------------------ */

void iam_audit(nno_req *req, const char *action, const char *platform,
               json_t *detail) {
  audit(req, action, platform, detail);
}
int iam_store_fail(nno_req *req, int rc) { return store_fail(req, rc); }
json_t *iam_scopes_json(const char *s) { return scopes_to_json(s); }
int64_t iam_creator_expiry(const nno_caller *c) { return creator_expiry(c); }
void iam_key_origin(const nno_caller *c, iam_key *k) { key_origin(c, k); }
