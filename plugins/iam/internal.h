/* Shared state and private prototypes of the IAM core plugin.
 *
 * One copy runs in each worker process; its state is one static instance
 * per process (`g_iam`), touched only on the worker's loop thread.
 *
 * Hot path: the policy hooks read only memory — the key table, the
 * session cache, the access table, the registry's platform table through
 * nno.registry — plus one atomic load per shared counter. The database is
 * read only when a counter moved (another worker changed something), and
 * on a session-cache miss. */
#ifndef NNO_IAM_INTERNAL_H
#define NNO_IAM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <nno/billing.h>
#include <nno/iam.h>
#include <nno/plugin.h>
#include <nno/registry.h>
#include <sqlite3.h>

#define IAM_COUNTER "iam"
#define IAM_REG_COUNTER "registry"

#define IAM_ID_MAX 33      /* platform and tenant ids, NUL included */
#define IAM_SUBJECT_MAX 65 /* user ids, NUL included */
#define IAM_SCOPES_MAX 512 /* a credential's space-separated scopes */
#define IAM_NAME_MAX 129
#define IAM_ORIGINS_MAX 16

/* ---- configuration (the manifest's "config") ---------------------------- */

typedef struct iam_plan {
  char name[33];
  double platform_rps, key_rps, user_rps, anon_rps;
  uint32_t platform_burst, key_burst, user_burst, anon_burst;
} iam_plan;

typedef struct iam_config {
  iam_plan plans[16];
  size_t nplans;
  size_t default_plan;
  int64_t session_idle_s, session_absolute_s;
  int64_t session_cache_s; /* at most 300 */
  size_t session_cache_max;
  char user_scopes[IAM_SCOPES_MAX]; /* default scopes of a user session */
  /* The device flow (device.c): how long a code lives, the polling
   * interval asked of clients, the pending codes a platform may have (a
   * backstop), and the codes one client address may ask for per window
   * (the bound that keeps one client from blocking a platform's logins). */
  int64_t device_ttl_s, device_interval_s, device_pending_max;
  int64_t device_codes_per_addr, device_codes_window_s;
} iam_config;

/* Parse `json` (the manifest's config) over defaults; 0 or -1 with err. */
int iam_config_parse(const char *json, iam_config *c, char *err, size_t cap);
const iam_plan *iam_plan_find(const iam_config *c, const char *name);

/* ---- scopes (scope.c) ----------------------------------------------------- */

/* 1 if the space-separated `granted` list covers `need`: equal, "*", a
 * granted "prefix:*" covering "prefix:anything", or a granted "x:write"
 * covering "x:read". */
int iam_scope_covers(const char *granted, size_t glen, const char *need);
/* 1 if every scope of `want` is covered by `granted`. */
int iam_scopes_subset(const char *granted, size_t glen, const char *want);
/* What both space-separated lists `a` and `b` grant, into `out` (`cap`
 * bytes): every scope of one list that the other covers ("features:*" and
 * "features:hello:read" give "features:hello:read"). 0, or -1 when it does
 * not fit (out is then unusable). */
int iam_scopes_intersect(const char *a, const char *b, char *out, size_t cap);
/* 1 if `s` (len bytes) is a well-formed scope: 1..64 of [a-z0-9_.*:-]. */
int iam_scope_valid(const char *s, size_t len);

/* ---- rate-limit helpers (limits.c) --------------------------------------- */

/* 1 if `r` is a refusal because the host's rate-limit table had no room
 * for the bucket (limit 0), not the bucket's own refusal: the host's
 * capacity, answered 503, not the caller's use. */
int iam_limit_table_full(const nno_limit_result *r);

/* ---- API keys (keys.c) ---------------------------------------------------- */

typedef struct iam_key {
  char id[17]; /* 16 hex */
  char platform[IAM_ID_MAX];
  char tenant[IAM_ID_MAX];
  char scopes[IAM_SCOPES_MAX];
  unsigned char hash[32]; /* SHA-256 of the whole key */
  int64_t expires;        /* unix seconds; 0: never */
  /* Made by a user: the session that made it (or made the key that made
   * it) and its user, "" otherwise. Such a key is revoked with that
   * session, and its scopes in the table are narrowed to what the
   * platform's users hold now. */
  char session[17];
  char user[IAM_SUBJECT_MAX];
} iam_key;

typedef struct iam_keytab iam_keytab;

iam_keytab *iam_keytab_new(void);
void iam_keytab_free(iam_keytab *t);
/* Add a copy of k; 0 or NNO_ENOMEM. */
int iam_keytab_put(iam_keytab *t, const iam_key *k);
const iam_key *iam_keytab_get(const iam_keytab *t, const char *id);
size_t iam_keytab_count(const iam_keytab *t);

/* Split a presented token "PREFIX" + 16 hex id + "_" + secret: copies the
 * id (17 bytes). 0 or -1 when malformed. */
int iam_token_split(const char *tok, size_t len, const char *prefix,
                    char id[17]);
/* The token of an Authorization value "Bearer <token>" (scheme in any
 * case, spaces around the token dropped): *tok borrows from v and may be
 * empty. 0, or -1 when the value is not a Bearer credential. */
int iam_bearer_token(const char *v, size_t len, nno_str *tok);
/* The non-empty values of cookie `name` in one Cookie header value
 * ("a=1; b=2"), in the order sent, at most `max`, into out[] (borrowed
 * from v); returns how many. */
size_t iam_cookie_values(const char *v, size_t len, const char *name,
                         nno_str *out, size_t max);
/* A new token: prefix + id + "_" + 43 base64url characters (256 bits);
 * writes the token, its id and its SHA-256. */
void iam_token_new(const char *prefix, char *tok, size_t cap, char id[17],
                   unsigned char hash[32]);

#define IAM_KEY_PREFIX "nnok_"
#define IAM_SESSION_PREFIX "nnos_"

/* ---- the session cache (session.c) ---------------------------------------- */

typedef struct iam_sess {
  char id[17];
  char platform[IAM_ID_MAX];
  char tenant[IAM_ID_MAX];
  char user[IAM_SUBJECT_MAX];
  char scopes[IAM_SCOPES_MAX];
  unsigned char hash[32];
  int64_t expires, idle_expires; /* unix seconds */
  int64_t cached_at;             /* when read from the database */
  int64_t touched_at;            /* last idle extension written */
} iam_sess;

typedef struct iam_cache iam_cache;

iam_cache *iam_cache_new(size_t max);
void iam_cache_free(iam_cache *c);
/* The entry for `id` if cached, not older than `ttl_s` and not expired at
 * `now`, else NULL (an expired or stale entry is dropped). Borrowed until
 * the next put, drop or clear. */
iam_sess *iam_cache_get(iam_cache *c, const char *id, int64_t now,
                        int64_t ttl_s);
/* Insert or replace; evicts the oldest entry when full. */
int iam_cache_put(iam_cache *c, const iam_sess *s);
void iam_cache_drop(iam_cache *c, const char *id);
void iam_cache_clear(iam_cache *c);
size_t iam_cache_count(const iam_cache *c);

/* ---- storage (store.c) ---------------------------------------------------- */

enum { IAM_OK = 0, IAM_NOTFOUND = 1, IAM_FULL = 2, IAM_ERR = -1,
       IAM_BUSY = -2, IAM_FK = -3 };

int iam_store_open(const char *path, sqlite3 **db, char *err, size_t cap);
int iam_store_migrate(sqlite3 *db, char *err, size_t cap);
/* The changes log: rows (kind, platform, ref) after `since`. */
typedef int (*iam_change_cb)(void *ud, int64_t seq, const char *kind,
                             const char *platform, const char *ref);
int iam_store_changes(sqlite3 *db, int64_t since, int64_t *min, int64_t *max,
                      iam_change_cb cb, void *ud);

typedef int (*iam_key_cb)(void *ud, const iam_key *k, const char *name,
                          int64_t created, int64_t revoked);
/* Live keys (not revoked, not expired at `now`) of every platform. */
int iam_store_keys_live(sqlite3 *db, int64_t now, iam_key_cb cb, void *ud);
/* Keys of one platform by id after `after`, at most `limit`; with
 * `within` (NULL or "": all), only keys bound to that tenant or a tenant
 * under it, so that a page and its cursor hold nothing else. */
int iam_store_keys_list(sqlite3 *db, const char *platform, const char *within,
                        const char *after, int limit, iam_key_cb cb, void *ud);
/* The key `id` of `platform`, revoked or not: cb runs once if it exists. */
int iam_store_key_get(sqlite3 *db, const char *platform, const char *id,
                      iam_key_cb cb, void *ud);
/* Insert k, in one write transaction, only while what creates it still
 * works: the session k->session (if any) exists and has not reached its
 * absolute expiry, and the key `creator` (NULL or "": none) is live;
 * `creator` is recorded, so that revoking it revokes k.
 * IAM_NOTFOUND when either has ended (nothing inserted): a sign-out or
 * revocation that commits first always wins. */
int iam_store_key_insert(sqlite3 *db, const iam_key *k, const char *name,
                         const char *creator, int64_t now);
/* iam_store_key_insert, refused with IAM_FULL (nothing inserted, their
 * number in *live_out when not NULL) when the platform already has
 * `max_live` live keys (unrevoked, unexpired at `now`); 0: no bound. */
int iam_store_key_insert_max(sqlite3 *db, const iam_key *k, const char *name,
                             const char *creator, int64_t now,
                             uint64_t max_live, uint64_t *live_out);
/* Mark revoked, with every live key it made (recorded at insert), and
 * theirs, in one transaction; *made (may be NULL): how many of those.
 * IAM_NOTFOUND if no live key of that id (nothing changes). */
int iam_store_key_revoke(sqlite3 *db, const char *platform, const char *id,
                         int64_t now, size_t *made);

int iam_store_session_insert(sqlite3 *db, const iam_sess *s, int64_t now);
int iam_store_session_get(sqlite3 *db, const char *id, iam_sess *out);
/* End a session, and revoke the keys it made, in one transaction. */
int iam_store_session_delete(sqlite3 *db, const char *platform,
                             const char *id);
/* End every session of `user` but `keep` (NULL or "": all of them) and
 * revoke the keys those sessions made (also those of sessions that ended
 * before), in one transaction; *count: the sessions ended. */
int iam_store_session_delete_user(sqlite3 *db, const char *platform,
                                  const char *user, const char *keep,
                                  size_t *count);
int iam_store_session_touch(sqlite3 *db, const char *id, int64_t idle_expires);

typedef struct iam_access {
  char platform[IAM_ID_MAX];
  int signup;
  size_t norigins;
  char origins[IAM_ORIGINS_MAX][128];
  char user_scopes[IAM_SCOPES_MAX]; /* "" for the configured default */
} iam_access;

typedef int (*iam_access_cb)(void *ud, const iam_access *a);
int iam_store_access_all(sqlite3 *db, iam_access_cb cb, void *ud);
int iam_store_access_put(sqlite3 *db, const iam_access *a, int64_t now);

int iam_store_begin(sqlite3 *db);
int iam_store_commit(sqlite3 *db);
void iam_store_rollback(sqlite3 *db);

/* ---- the plugin's state (plugin.c) --------------------------------------- */

typedef struct iam {
  nno_plugin *p;
  sqlite3 *db;
  iam_config cfg;
  const nno_registry_v1 *reg;
  /* nno.billing, looked up once the host is ready: the plans' rate limits
   * and API key bound. NULL without billing: then the plans of IAM's own
   * config apply. */
  const nno_billing_v1 *billing;
  iam_keytab *keys;
  iam_cache *sessions;
  iam_access *access; /* every platform with a policy row, sorted by id */
  size_t naccess;
  uint64_t seen_iam, seen_reg; /* counter values caught up to */
  int64_t seq_applied;
  char base_domain[256];
  size_t base_len;
} iam;

extern const nno_host_api *api;
extern iam g_iam;

int64_t iam_now(void);
/* Catch up with changes committed by any worker (cheap when none). */
void iam_refresh(void);
/* After a committed change other workers must see. */
void iam_committed(const char *kind, const char *platform, const char *ref);
/* The access policy of `platform`, or NULL for the defaults. */
const iam_access *iam_access_get(const char *platform, size_t len);
/* The scopes users of `platform` hold now (its user_scopes, or the
 * configured default). Borrowed until the next refresh. */
const char *iam_user_scopes(const char *platform);

/* The limits of `platform`'s plan ("" or unknown: the default plan's):
 * billing's when loaded, else IAM's config. Written into *out (size set);
 * the name of the plan in out->name. */
void iam_plan_limits(const char *platform, nno_plan_limits *out);

/* policy.c: the gateway hooks. */
int iam_on_cors(nno_req *req, void *ud);
int iam_on_authn(nno_req *req, void *ud);
int iam_on_authz(nno_req *req, void *ud);
int iam_on_limit(nno_req *req, void *ud);
/* Validate a session token: fills *out; 0, or -1 when unknown/expired. */
int iam_session_check(const char *tok, size_t len, iam_sess *out);

/* api.c: the keys and access routes; the nno.iam vtable. */
int iam_api_init(nno_plugin *p);
extern const nno_iam_v1 iam_service;
/* api.c's helpers, shared with device.c: the audit row (takes `detail`),
 * a store failure's answer, scopes as a JSON array, when the credential
 * creating a key ends (0: never), and the session/user a key made by `c`
 * records. */
void iam_audit(nno_req *req, const char *action, const char *platform,
               json_t *detail);
int iam_store_fail(nno_req *req, int rc);
json_t *iam_scopes_json(const char *s);
int64_t iam_creator_expiry(const nno_caller *c);
void iam_key_origin(const nno_caller *c, iam_key *k);

/* device.c: the device-code flow's routes (RFC 8628). */
int iam_device_init(nno_plugin *p);
/* nno.iam's device_answer: the same answers on a platform's own route. */
int iam_device_answer(nno_req *req, int what);

#endif
