/* The IAM core plugin: start-up, the per-worker tables (live API keys,
 * the session cache, access policies) kept in step with the changes log,
 * and registration of the policy hooks and the nno.iam service. See
 * README.md. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "internal.h"

const nno_host_api *api;
iam g_iam;

int64_t iam_now(void) { return (int64_t)time(NULL); }

/* ---- per-worker tables ----------------------------------------------------- */

static int cmp_access(const void *a, const void *b) {
  return strcmp(((const iam_access *)a)->platform,
                ((const iam_access *)b)->platform);
}

typedef struct access_vec {
  iam_access *v;
  size_t n, cap;
} access_vec;

static int put_access(void *ud, const iam_access *a) {
  access_vec *av = ud;
  if (av->n == av->cap) {
    size_t cap = av->cap ? av->cap * 2 : 16;
    iam_access *v = realloc(av->v, cap * sizeof *v);
    if (!v) return 1;
    av->v = v;
    av->cap = cap;
  }
  av->v[av->n++] = *a;
  return 0;
}

/* The policy of `platform` in the sorted `v`, or NULL. */
static const iam_access *access_find(const iam_access *v, size_t n,
                                     const char *platform, size_t len) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    const char *p = v[mid].platform;
    int c = strncmp(p, platform, len);
    if (c == 0 && p[len] != '\0') c = 1;
    if (c == 0) return &v[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

typedef struct keys_st {
  iam_keytab *t;
  const access_vec *av;
} keys_st;

/* A key made by a user holds no more than users hold now: its scopes
 * narrowed to the platform's current user_scopes, as a session's are. */
static int put_key(void *ud, const iam_key *k, const char *name,
                   int64_t created, int64_t revoked) {
  keys_st *ks = ud;
  iam_key nk;
  (void)name, (void)created, (void)revoked;
  if (k->user[0]) {
    const iam_access *a =
        access_find(ks->av->v, ks->av->n, k->platform, strlen(k->platform));
    const char *us =
        a && a->user_scopes[0] ? a->user_scopes : g_iam.cfg.user_scopes;
    nk = *k;
    if (iam_scopes_intersect(k->scopes, us, nk.scopes, sizeof nk.scopes))
      nk.scopes[0] = '\0'; /* too long to hold: no scope, never more */
    k = &nk;
  }
  return iam_keytab_put(ks->t, k) ? 1 : 0;
}

/* Reload the live keys and the access policies (few rows: every key of
 * every platform fits in memory), built off to the side and swapped in;
 * the policies first, as they narrow the keys made by users. */
static int reload_tables(void) {
  iam_keytab *t = iam_keytab_new();
  access_vec av = {0};
  if (!t) return IAM_ERR;
  keys_st ks = {t, &av};
  int rc = iam_store_access_all(g_iam.db, put_access, &av);
  if (!rc && av.n) qsort(av.v, av.n, sizeof *av.v, cmp_access);
  if (!rc) rc = iam_store_keys_live(g_iam.db, iam_now(), put_key, &ks);
  if (rc) {
    iam_keytab_free(t);
    free(av.v);
    return rc;
  }
  iam_keytab_free(g_iam.keys);
  g_iam.keys = t;
  free(g_iam.access);
  g_iam.access = av.v;
  g_iam.naccess = av.n;
  return IAM_OK;
}

/* Everything, the cached sessions forgotten too. */
static int reload_all(void) {
  int rc = reload_tables();
  if (!rc) iam_cache_clear(g_iam.sessions);
  return rc;
}

const iam_access *iam_access_get(const char *platform, size_t len) {
  return access_find(g_iam.access, g_iam.naccess, platform, len);
}

const char *iam_user_scopes(const char *platform) {
  const iam_access *a = iam_access_get(platform, strlen(platform));
  return a && a->user_scopes[0] ? a->user_scopes : g_iam.cfg.user_scopes;
}

typedef struct replay_st {
  int keys, access;
} replay_st;

static int apply_change(void *ud, int64_t seq, const char *kind,
                        const char *platform, const char *ref) {
  replay_st *r = ud;
  if (strcmp(kind, "session") == 0)
    iam_cache_drop(g_iam.sessions, ref);
  else if (strcmp(kind, "key") == 0)
    r->keys = 1;
  else
    r->access = 1;
  g_iam.seq_applied = seq;
  return 0;
}

/* Replay the changes log since what this worker applied: sessions are
 * dropped from the cache one by one; a changed key or policy reloads those
 * tables (small, and rebuilt off to the side, then swapped in). */
static int replay(void) {
  int64_t min = 0, max = 0;
  replay_st r = {0};
  if (!sqlite3_get_autocommit(g_iam.db)) return IAM_BUSY;
  int rc = iam_store_changes(g_iam.db, g_iam.seq_applied, &min, &max, NULL,
                             NULL);
  if (rc) return rc;
  if (min > g_iam.seq_applied + 1) { /* fell behind the retained log */
    rc = reload_all();
    if (!rc) g_iam.seq_applied = max;
    return rc;
  }
  int64_t before = g_iam.seq_applied;
  rc = iam_store_changes(g_iam.db, before, &min, &max, apply_change, &r);
  if (rc) return rc;
  /* reload_all would also clear the session cache: keep it, unless a
   * policy changed: a session's scopes follow its platform's user_scopes
   * (computed when the session is read), so cached ones are dropped. */
  if (r.keys || r.access) rc = reload_tables();
  if (!rc && r.access) iam_cache_clear(g_iam.sessions);
  return rc;
}

void iam_refresh(void) {
  uint64_t vi = 0, vr = 0;
  api->counter_get(g_iam.p, IAM_COUNTER, &vi);
  api->counter_get(g_iam.p, IAM_REG_COUNTER, &vr);
  if (vi == g_iam.seen_iam && vr == g_iam.seen_reg) return;
  if (replay() != IAM_OK) {
    /* Serve from what we have and try again on the next request. */
    api->log(g_iam.p, NNO_LOG_WARN, "cannot catch up with core.db: %s",
             sqlite3_errmsg(g_iam.db));
    return;
  }
  g_iam.seen_iam = vi;
  g_iam.seen_reg = vr;
}

void iam_committed(const char *kind, const char *platform, const char *ref) {
  int rc = api->counter_add(g_iam.p, IAM_COUNTER, 1, NULL);
  if (rc)
    api->log(g_iam.p, NNO_LOG_ERROR,
             "cannot move the \"%s\" counter (%s): other workers will not "
             "see this change",
             IAM_COUNTER, api->err_name(rc));
  /* Our own worker applies it at once. */
  iam_refresh();
}

/* ---- housekeeping ------------------------------------------------------------ */

/* Every few minutes, one statement removes expired sessions (their change
 * rows drop them from every cache) and another keeps the changes log to its
 * last 10,000 rows (a worker further behind reloads everything). Any worker
 * may run them; they are cheap and idempotent. */
static void on_prune(nno_timer *t, void *ud) {
  (void)t, (void)ud;
  char *err = NULL;
  char sql[256];
  long long now = (long long)iam_now();
  snprintf(sql, sizeof sql,
           "DELETE FROM iam_sessions WHERE expires_at <= %lld OR "
           "idle_expires <= %lld",
           now, now);
  if (sqlite3_exec(g_iam.db, sql, NULL, NULL, &err) != SQLITE_OK) {
    api->log(g_iam.p, NNO_LOG_WARN, "cannot prune sessions: %s",
             err ? err : "?");
    sqlite3_free(err);
    return;
  }
  int ended = sqlite3_changes(g_iam.db);
  if (sqlite3_exec(g_iam.db,
                   "DELETE FROM iam_changes WHERE seq <= (SELECT max(seq)"
                   " FROM iam_changes) - 10000",
                   NULL, NULL, &err) != SQLITE_OK) {
    api->log(g_iam.p, NNO_LOG_WARN, "cannot trim the changes log: %s",
             err ? err : "?");
    sqlite3_free(err);
  }
  if (ended > 0) iam_committed("session", "", "");
}

/* ---- init and fini --------------------------------------------------------- */

void iam_plan_limits(const char *platform, nno_plan_limits *out) {
  memset(out, 0, sizeof *out);
  out->size = sizeof *out;
  const nno_billing_v1 *b = g_iam.billing;
  if (b) {
    int rc = platform && *platform ? b->platform_limits(platform, out)
                                   : NNO_ENOENT;
    if (rc) rc = b->plan_limits(b->default_plan(), out);
    if (rc == NNO_OK) return;
    memset(out, 0, sizeof *out);
    out->size = sizeof *out;
  }
  char plan[40];
  if (!platform || !*platform || !g_iam.reg ||
      g_iam.reg->platform_plan(platform, plan, sizeof plan) != NNO_OK)
    snprintf(plan, sizeof plan, "%s",
             g_iam.cfg.plans[g_iam.cfg.default_plan].name);
  const iam_plan *pl = iam_plan_find(&g_iam.cfg, plan);
  snprintf(out->name, sizeof out->name, "%s", pl->name);
  out->platform = (nno_rate){pl->platform_rps, pl->platform_burst};
  out->key = (nno_rate){pl->key_rps, pl->key_burst};
  out->user = (nno_rate){pl->user_rps, pl->user_burst};
  out->anonymous = (nno_rate){pl->anon_rps, pl->anon_burst};
}

static void iam_ready(nno_plugin *p) {
  const void *vt;
  uint32_t ver;
  if (api->service_lookup(p, NNO_BILLING_SERVICE, 1, &vt, &ver) == NNO_OK &&
      ((const nno_billing_v1 *)vt)->size >=
          offsetof(nno_billing_v1, platform_limits) + sizeof(void *))
    g_iam.billing = vt;
  if (api->service_lookup(p, NNO_REGISTRY_SERVICE, 1, &vt, &ver) == NNO_OK &&
      ((const nno_registry_v1 *)vt)->size >=
          offsetof(nno_registry_v1, platform_plan) + sizeof(void *))
    g_iam.reg = vt;
  else
    api->log(p, NNO_LOG_ERROR,
             "the registry (nno.registry with platform_plan) is not loaded: "
             "every request that needs a platform will be refused");
}

static void cleanup(void) {
  iam_keytab_free(g_iam.keys);
  iam_cache_free(g_iam.sessions);
  free(g_iam.access);
  if (g_iam.db) sqlite3_close_v2(g_iam.db);
  memset(&g_iam, 0, sizeof g_iam);
}

static int iam_init(nno_plugin *p, const nno_host_api *host) {
  char err[512], path[PATH_MAX];
  api = host;
  memset(&g_iam, 0, sizeof g_iam);
  g_iam.p = p;
  if (!NNO_HAS(api, req_remote_addr)) {
    api->plugin_fail(p, "this host lacks ABI 1.1 (it provides %u.%u)",
                     api->abi_major, api->abi_minor);
    return NNO_ENOTSUP;
  }
  if (sodium_init() < 0) {
    api->plugin_fail(p, "cannot initialise libsodium");
    return NNO_EIO;
  }
  if (iam_config_parse(api->plugin_config(p), &g_iam.cfg, err, sizeof err)) {
    api->plugin_fail(p, "%s", err);
    return NNO_EINVAL;
  }
  const char *base = api->host_base_domain(p);
  g_iam.base_len = strlen(base) < sizeof g_iam.base_domain ? strlen(base) : 0;
  for (size_t i = 0; i < g_iam.base_len; i++)
    g_iam.base_domain[i] =
        (char)((base[i] >= 'A' && base[i] <= 'Z') ? base[i] + 32 : base[i]);
  const char *data = api->host_data_dir(p);
  if (mkdir(data, 0700) != 0 && errno != EEXIST) {
    api->plugin_fail(p, "cannot create %s: %s", data, strerror(errno));
    return NNO_EIO;
  }
  snprintf(path, sizeof path, "%s/core.db", data);
  int rc = NNO_EIO;
  if (iam_store_open(path, &g_iam.db, err, sizeof err) ||
      iam_store_migrate(g_iam.db, err, sizeof err)) {
    api->plugin_fail(p, "%s", err);
    goto fail;
  }
  rc = NNO_ENOMEM;
  if (!(g_iam.sessions = iam_cache_new(g_iam.cfg.session_cache_max))) {
    api->plugin_fail(p, "out of memory");
    goto fail;
  }
  /* Counters before the snapshot: a later change moves them past it. */
  api->counter_get(p, IAM_COUNTER, &g_iam.seen_iam);
  api->counter_get(p, IAM_REG_COUNTER, &g_iam.seen_reg);
  int64_t min = 0;
  rc = NNO_EIO;
  if (iam_store_changes(g_iam.db, 0, &min, &g_iam.seq_applied, NULL, NULL) ||
      reload_all()) {
    api->plugin_fail(p, "cannot load keys from %s: %s", path,
                     sqlite3_errmsg(g_iam.db));
    goto fail;
  }
  nno_timer *t;
  if ((rc = iam_api_init(p)) || (rc = iam_device_init(p)) ||
      (rc = api->gateway_hook_add(p, NNO_STAGE_CORS, iam_on_cors, NULL)) ||
      (rc = api->gateway_hook_add(p, NNO_STAGE_AUTHN, iam_on_authn, NULL)) ||
      (rc = api->gateway_hook_add(p, NNO_STAGE_AUTHZ, iam_on_authz, NULL)) ||
      (rc = api->gateway_hook_add(p, NNO_STAGE_LIMIT, iam_on_limit, NULL)) ||
      (rc = api->service_publish(p, NNO_IAM_SERVICE, NNO_IAM_VERSION,
                                 &iam_service)) ||
      (rc = api->timer_start(p, 60000 + randombytes_uniform(60000), 300000,
                             on_prune, NULL, &t))) {
    api->plugin_fail(p, "cannot register with the gateway: %s",
                     api->strerror(rc));
    goto fail;
  }
  api->log(p, NNO_LOG_INFO, "iam ready: %zu live keys, %zu access policies",
           iam_keytab_count(g_iam.keys), g_iam.naccess);
  return NNO_OK;
fail:
  cleanup();
  return rc ? rc : NNO_EIO;
}

static void iam_fini(nno_plugin *p) { cleanup(); }

NNO_PLUGIN(.name = "iam", .version = "1.0.0", .kind = NNO_KIND_CORE,
           .on_plugin_init = iam_init, .on_plugin_fini = iam_fini,
           .on_host_ready = iam_ready)
