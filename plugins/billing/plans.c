/* Plans as data: the in-memory table every worker answers from, the host
 * configuration's overrides and the parsing of a plan's JSON. The routes
 * (/api/v1/plans) are plans_api.c.
 *
 * The table is the rows of billing.db `plans` with the plans of the
 * configuration (billing's plugin config "plans") laid over them: a plan
 * named there wins over the stored row of that name and cannot be changed
 * through the API. Each worker holds the whole table (at most
 * PLANS_MAX plans) sorted by name; a committed change moves the shared
 * counter PLANS_COUNTER, and every lookup compares it (one atomic read)
 * and reloads the table when it moved: rare, and small. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nno/sdk.h>

#include "internal.h"

/* ---- the seed ------------------------------------------------------------ */

#define MIB (1024ull * 1024ull)

/* What a plan given without a field holds: the free plan's values. */
#define FREE_SEED                                                        \
  {                                                                      \
    .l = {.name = "free",                                                \
          .requests_per_month = 100000,                                  \
          .storage_bytes = 100 * MIB,                                    \
          .users = 1000,                                                 \
          .api_keys = 10,                                                \
          .platform = {200, 400},                                        \
          .key = {50, 100},                                              \
          .user = {20, 40},                                              \
          .anonymous = {20, 60},                                         \
          .soft_pct = 80,                                                \
          .grace_pct = 0,                                                \
          .grace_days = 7},                                              \
  }
static const plan_row free_seed = FREE_SEED;

/* Written into billing.db the first time it has no plan at all. The rates
 * are IAM's and the storage provisioning's of before plans were data. */
static const plan_row seeds[] = {
    FREE_SEED,
    {.l = {.name = "pro",
           .requests_per_month = 10000000,
           .storage_bytes = 10240 * MIB,
           .users = 100000,
           .api_keys = 100,
           .platform = {2000, 4000},
           .key = {500, 1000},
           .user = {100, 200},
           .anonymous = {50, 100},
           .soft_pct = 80,
           .grace_pct = 10,
           .grace_days = 14}},
    {.l = {.name = "unmetered",
           .platform = {10000000, 10000000},
           .key = {10000000, 10000000},
           .user = {10000000, 10000000},
           .anonymous = {10000000, 10000000},
           .soft_pct = 100,
           .grace_pct = 0,
           .grace_days = 30}},
};

void plan_defaults(plan_row *r) { *r = free_seed; }

/* ---- parsing ------------------------------------------------------------- */

/* Bounds of each number of a plan. */
#define MAX_REQUESTS 1000000000000ull   /* 10^12 a month */
#define MAX_STORAGE (1ull << 50)         /* 1 PiB */
#define MAX_USERS 1000000000ull
#define MAX_KEYS 1000000ull
#define MAX_RATE 10000000.0
#define MAX_BURST 100000000ll

static const char *const plan_fields[] = {
    "name",       "requests_per_month", "storage_bytes", "users",
    "api_keys",   "rates",              "soft_pct",      "grace_pct",
    "grace_days", "provider_price",     NULL};
static const char *const rate_fields[] = {"platform", "key", "user",
                                          "anonymous", NULL};
static const char *const pair_fields[] = {"rate", "burst", NULL};

/* Edit distance of `a` and `b` (insertions, deletions, substitutions and
 * swaps of neighbours cost 1), or `cap` + 1 once above `cap`. */
static size_t edit_distance(const char *a, const char *b, size_t cap) {
  enum { W = 40 };
  size_t la = strlen(a), lb = strlen(b);
  if (la >= W || lb >= W || (la > lb ? la - lb : lb - la) > cap)
    return cap + 1;
  size_t d[W][W];
  for (size_t i = 0; i <= la; i++) d[i][0] = i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      size_t v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  return d[la][lb] > cap ? cap + 1 : d[la][lb];
}

/* Refuse a member of `obj` not in `keys`, naming the nearest known one
 * (within 2 edits) or all of them. 0, or -1 with field and msg. */
static int only_keys(const json_t *obj, const char *path,
                     const char *const *keys, plan_error *e) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)obj, k, v) {
    size_t i = 0, bestd = 3;
    const char *best = NULL;
    while (keys[i] && strcmp(keys[i], k) != 0) i++;
    if (keys[i]) continue;
    for (i = 0; keys[i]; i++) {
      size_t dist = edit_distance(k, keys[i], 2);
      if (dist < bestd) bestd = dist, best = keys[i];
    }
    char q[80];
    snprintf(e->field, sizeof e->field, "%s%s%.40s", path, path[0] ? "." : "",
             k);
    nno_quote(e->field, q, sizeof q);
    if (best) {
      snprintf(e->msg, sizeof e->msg,
               "field %s: unknown field (did you mean \"%s\"?)", q, best);
    } else {
      size_t o = 0;
      o += (size_t)snprintf(e->msg, sizeof e->msg,
                            "field %s: unknown field (expected", q);
      for (i = 0; keys[i] && o < sizeof e->msg; i++)
        o += (size_t)snprintf(e->msg + o, sizeof e->msg - o, "%s %s",
                              i ? "," : "", keys[i]);
      if (o < sizeof e->msg)
        snprintf(e->msg + o, sizeof e->msg - o, ")");
    }
    return -1;
  }
  return 0;
}

static int fail(plan_error *e, const char *field, const char *fmt,
                unsigned long long lo, unsigned long long hi) {
  snprintf(e->field, sizeof e->field, "%s", field);
  char what[160];
  snprintf(what, sizeof what, fmt, lo, hi);
  snprintf(e->msg, sizeof e->msg, "field \"%s\": %s", field, what);
  return -1;
}

/* An unsigned integer member in lo..hi into *out when present. */
static int take_u64(const json_t *o, const char *k, uint64_t lo, uint64_t hi,
                    uint64_t *out, plan_error *e) {
  json_t *v = json_object_get(o, k);
  if (!v) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo ||
      (uint64_t)json_integer_value(v) > hi)
    return fail(e, k, "expected an integer in %llu..%llu", lo, hi);
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

static int take_u32(const json_t *o, const char *k, uint32_t lo, uint32_t hi,
                    uint32_t *out, plan_error *e) {
  uint64_t v = *out;
  if (take_u64(o, k, lo, hi, &v, e)) return -1;
  *out = (uint32_t)v;
  return 0;
}

/* One bucket {"rate": r, "burst": b}, either member optional. */
static int take_pair(const json_t *rates, const char *k, nno_rate *r,
                     plan_error *e) {
  json_t *v = json_object_get(rates, k);
  char path[48];
  snprintf(path, sizeof path, "rates.%s", k);
  if (!v) return 0;
  if (!json_is_object(v)) {
    snprintf(e->field, sizeof e->field, "%s", path);
    snprintf(e->msg, sizeof e->msg,
             "field \"%s\": expected {\"rate\": tokens a second > 0, "
             "\"burst\": 1..%lld}",
             path, MAX_BURST);
    return -1;
  }
  if (only_keys(v, path, pair_fields, e)) return -1;
  json_t *rate = json_object_get(v, "rate"), *burst = json_object_get(v, "burst");
  if (rate) {
    double d = json_number_value(rate);
    if (!json_is_number(rate) || !(d > 0) || d > MAX_RATE) {
      snprintf(e->field, sizeof e->field, "%s.rate", path);
      snprintf(e->msg, sizeof e->msg,
               "field \"%s.rate\": expected a number of tokens a second, "
               "above 0 and at most %.0f",
               path, MAX_RATE);
      return -1;
    }
    r->rate = d;
  }
  if (burst) {
    if (!json_is_integer(burst) || json_integer_value(burst) < 1 ||
        json_integer_value(burst) > MAX_BURST) {
      snprintf(e->field, sizeof e->field, "%s.burst", path);
      snprintf(e->msg, sizeof e->msg,
               "field \"%s.burst\": expected an integer in 1..%lld", path,
               MAX_BURST);
      return -1;
    }
    r->burst = (uint32_t)json_integer_value(burst);
  }
  return 0;
}

int plan_price_valid(const char *s) {
  size_t n = strlen(s);
  if (n == 0) return 1;
  if (n <= 6 || n >= PLAN_PRICE_MAX || strncmp(s, "price_", 6) != 0) return 0;
  for (size_t i = 6; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9')))
      return 0;
  return 1;
}

int plan_name_valid(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 32) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '-'))
      return 0;
  return 1;
}

int plan_apply(const json_t *obj, plan_row *r, plan_error *e) {
  memset(e, 0, sizeof *e);
  if (!json_is_object(obj)) {
    snprintf(e->msg, sizeof e->msg, "a plan is a JSON object");
    return -1;
  }
  if (only_keys(obj, "", plan_fields, e)) return -1;
  plan_row n = *r; /* nothing changes unless everything is valid */
  json_t *rates = json_object_get(obj, "rates");
  if (take_u64(obj, "requests_per_month", 0, MAX_REQUESTS,
               &n.l.requests_per_month, e) ||
      take_u64(obj, "storage_bytes", 0, MAX_STORAGE, &n.l.storage_bytes, e) ||
      take_u64(obj, "users", 0, MAX_USERS, &n.l.users, e) ||
      take_u64(obj, "api_keys", 0, MAX_KEYS, &n.l.api_keys, e) ||
      take_u32(obj, "soft_pct", 1, 100, &n.l.soft_pct, e) ||
      take_u32(obj, "grace_pct", 0, 100, &n.l.grace_pct, e) ||
      take_u32(obj, "grace_days", 0, 90, &n.l.grace_days, e))
    return -1;
  if (rates) {
    if (!json_is_object(rates)) {
      snprintf(e->field, sizeof e->field, "rates");
      snprintf(e->msg, sizeof e->msg,
               "field \"rates\": expected an object of platform, key, user, "
               "anonymous");
      return -1;
    }
    if (only_keys(rates, "rates", rate_fields, e) ||
        take_pair(rates, "platform", &n.l.platform, e) ||
        take_pair(rates, "key", &n.l.key, e) ||
        take_pair(rates, "user", &n.l.user, e) ||
        take_pair(rates, "anonymous", &n.l.anonymous, e))
      return -1;
  }
  json_t *price = json_object_get(obj, "provider_price");
  if (price) {
    if (!json_is_string(price) || !plan_price_valid(json_string_value(price))) {
      char q[64];
      nno_quote(json_is_string(price) ? json_string_value(price) : "", q,
                sizeof q);
      snprintf(e->field, sizeof e->field, "provider_price");
      snprintf(e->msg, sizeof e->msg,
               "field \"provider_price\": expected \"\" or price_ followed by "
               "letters and digits (at most %d bytes), got %s",
               PLAN_PRICE_MAX - 1,
               json_is_string(price) ? q : nno_json_type_name(price));
      return -1;
    }
    snprintf(n.price, sizeof n.price, "%s", json_string_value(price));
  }
  *r = n;
  return 0;
}

static json_t *pair_json(const nno_rate *r) {
  return json_pack("{s:f, s:i}", "rate", r->rate, "burst", (int)r->burst);
}

json_t *plan_limits_json(const plan_row *r) {
  return json_pack(
      "{s:I, s:I, s:I, s:I, s:{s:o, s:o, s:o, s:o}, s:i, s:i, s:i}",
      "requests_per_month", (json_int_t)r->l.requests_per_month,
      "storage_bytes", (json_int_t)r->l.storage_bytes, "users",
      (json_int_t)r->l.users, "api_keys", (json_int_t)r->l.api_keys, "rates",
      "platform", pair_json(&r->l.platform), "key", pair_json(&r->l.key),
      "user", pair_json(&r->l.user), "anonymous", pair_json(&r->l.anonymous),
      "soft_pct", (int)r->l.soft_pct, "grace_pct", (int)r->l.grace_pct,
      "grace_days", (int)r->l.grace_days);
}

static void rfc3339(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *plan_json(const plan_row *r) {
  json_t *o = plan_limits_json(r);
  char c[32], u[32];
  rfc3339(r->created_at, c);
  rfc3339(r->updated_at, u);
  if (o && (json_object_set_new(o, "name", json_string(r->l.name)) ||
            json_object_set_new(o, "provider_price", json_string(r->price)) ||
            json_object_set_new(o, "source",
                                json_string(r->from_config ? "config"
                                                           : "stored")) ||
            json_object_set_new(o, "default",
                                json_boolean(strcmp(r->l.name,
                                                    g_plans.default_plan) ==
                                             0)) ||
            json_object_set_new(o, "version", json_integer(r->version)) ||
            (r->from_config
                 ? 0
                 : json_object_set_new(o, "created_at", json_string(c)) ||
                       json_object_set_new(o, "updated_at", json_string(u))))) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* ---- the table ------------------------------------------------------------- */

plans_state g_plans;

static int cmp_row(const void *a, const void *b) {
  return strcmp(((const plan_row *)a)->l.name, ((const plan_row *)b)->l.name);
}

const plan_row *plans_find(const char *name) {
  plan_row key;
  if (!name || strlen(name) >= sizeof key.l.name) return NULL;
  snprintf(key.l.name, sizeof key.l.name, "%s", name);
  return bsearch(&key, g_plans.v, g_plans.n, sizeof *g_plans.v, cmp_row);
}

/* The stored rows, each parsed over the free seed (a row holds every
 * field; the seed only fills what an older row lacks). */
static int load_rows(plan_row *v, size_t *n, char *err, size_t cap) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(
      g_plans.db,
      "SELECT name, limits, provider_price, created_at, updated_at, version"
      " FROM plans ORDER BY name LIMIT ?",
      -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(st, 1, PLANS_MAX);
  *n = 0;
  while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    plan_row r = free_seed;
    plan_error e;
    snprintf(r.l.name, sizeof r.l.name, "%s",
             (const char *)sqlite3_column_text(st, 0));
    json_t *lim = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
    int bad = plan_apply(lim, &r, &e);
    json_decref(lim);
    if (bad) {
      /* Only this plugin writes the table: log it and keep the seed's
       * values rather than refusing every request. */
      api->log(g_bill.p, NNO_LOG_ERROR, "billing.db: plan \"%s\": %s",
               r.l.name, e.msg);
    }
    snprintf(r.price, sizeof r.price, "%s",
             (const char *)sqlite3_column_text(st, 2));
    r.created_at = sqlite3_column_int64(st, 3);
    r.updated_at = sqlite3_column_int64(st, 4);
    r.version = sqlite3_column_int64(st, 5);
    r.from_config = 0;
    v[(*n)++] = r;
    rc = SQLITE_OK;
  }
  if (rc == SQLITE_DONE) rc = SQLITE_OK;
  if (rc != SQLITE_OK)
    snprintf(err, cap, "billing.db: cannot read plans: %s",
             sqlite3_errmsg(g_plans.db));
  sqlite3_finalize(st);
  return rc == SQLITE_OK ? 0 : -1;
}

/* Rebuild the table off to the side: stored rows, then the configured
 * plans laid over them, sorted; swapped in only when complete. */
static int reload(char *err, size_t cap) {
  plan_row *v = calloc(PLANS_MAX + PLANS_CONFIG_MAX, sizeof *v);
  size_t n = 0;
  if (!v) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  if (load_rows(v, &n, err, cap)) {
    free(v);
    return -1;
  }
  for (size_t i = 0; i < g_plans.ncfg; i++) {
    size_t j = 0;
    while (j < n && strcmp(v[j].l.name, g_plans.cfg[i].l.name) != 0) j++;
    v[j] = g_plans.cfg[i];
    if (j == n) n++;
  }
  qsort(v, n, sizeof *v, cmp_row);
  free(g_plans.v);
  g_plans.v = v;
  g_plans.n = n;
  return 0;
}

void plans_refresh(void) {
  uint64_t now = 0;
  if (!g_plans.db) return;
  api->counter_get(g_bill.p, PLANS_COUNTER, &now);
  if (now == g_plans.seen && g_plans.v) return;
  char err[256];
  if (reload(err, sizeof err)) {
    /* Serve from what we have and try again on the next lookup. */
    api->log(g_bill.p, NNO_LOG_WARN, "%s", err);
    return;
  }
  g_plans.seen = now;
}

void plans_committed(void) {
  int rc = api->counter_add(g_bill.p, PLANS_COUNTER, 1, NULL);
  if (rc)
    api->log(g_bill.p, NNO_LOG_ERROR,
             "cannot move the \"%s\" counter (%s): other workers will not "
             "see this change",
             PLANS_COUNTER, api->err_name(rc));
  g_plans.seen = (uint64_t)-1; /* our own worker reloads at once */
  plans_refresh();
}

/* ---- configuration and seed ---------------------------------------------- */

/* billing's config "plans" ({name: plan}) and "default_plan". */
static int parse_config(char *err, size_t cap) {
  json_error_t je;
  json_t *root = json_loads(g_bill.config_json ? g_bill.config_json : "{}", 0,
                            &je);
  int rc = 0;
  snprintf(g_plans.default_plan, sizeof g_plans.default_plan, "free");
  if (!json_is_object(root)) {
    snprintf(err, cap, "config: not a JSON object");
    json_decref(root);
    return -1;
  }
  json_t *plans = json_object_get(root, "plans"), *pv;
  const char *name;
  if (plans && !json_is_object(plans)) {
    snprintf(err, cap, "config.plans: expected an object {name: plan}");
    rc = -1;
  }
  if (!rc && json_object_size(plans) > PLANS_CONFIG_MAX) {
    snprintf(err, cap, "config.plans: at most %d plans", PLANS_CONFIG_MAX);
    rc = -1;
  }
  if (!rc && plans) json_object_foreach(plans, name, pv) {
      plan_row r = free_seed;
      plan_error e;
      if (!plan_name_valid(name)) {
        char q[64];
        nno_quote(name, q, sizeof q);
        snprintf(err, cap,
                 "config.plans: %s: a plan's name is 1 to 32 characters of "
                 "[a-z0-9-]",
                 q);
        rc = -1;
        break;
      }
      if (json_object_get(pv, "name") ||
          (json_is_object(pv) && plan_apply(pv, &r, &e))) {
        snprintf(err, cap, "config.plans.%s: %s", name,
                 json_object_get(pv, "name")
                     ? "field \"name\": the plan's name is its key"
                     : e.msg);
        rc = -1;
        break;
      }
      if (!json_is_object(pv)) {
        snprintf(err, cap, "config.plans.%s: expected an object", name);
        rc = -1;
        break;
      }
      snprintf(r.l.name, sizeof r.l.name, "%s", name);
      r.from_config = 1;
      g_plans.cfg[g_plans.ncfg++] = r;
    }
  json_t *dp = json_object_get(root, "default_plan");
  if (!rc && dp) {
    if (!json_is_string(dp) || !plan_name_valid(json_string_value(dp))) {
      snprintf(err, cap,
               "config.default_plan: expected a plan's name (1 to 32 "
               "characters of [a-z0-9-])");
      rc = -1;
    } else {
      snprintf(g_plans.default_plan, sizeof g_plans.default_plan, "%s",
               json_string_value(dp));
    }
  }
  json_decref(root);
  return rc;
}

int plans_store_row(sqlite3 *db, const plan_row *r, int insert) {
  json_t *lim = plan_limits_json(r);
  char *text = lim ? json_dumps(lim, JSON_COMPACT) : NULL;
  json_decref(lim);
  if (!text) return SQLITE_NOMEM;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(
      db,
      insert ? "INSERT INTO plans (limits, provider_price, created_at,"
               " updated_at, version, name) VALUES (?, ?, ?, ?, ?, ?)"
             : "UPDATE plans SET limits = ?, provider_price = ?,"
               " created_at = ?, updated_at = ?, version = ? WHERE name = ?",
      -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, r->price, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, r->created_at);
    sqlite3_bind_int64(st, 4, r->updated_at);
    sqlite3_bind_int64(st, 5, r->version);
    sqlite3_bind_text(st, 6, r->l.name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  free(text);
  return rc;
}

/* First start: the three plans of before, once, when billing.db has no
 * plan at all (the default plan cannot be deleted, so that happens only
 * once). Every worker may try; BEGIN IMMEDIATE lets one do it. */
static int seed(char *err, size_t cap) {
  int rc = sqlite3_exec(g_plans.db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  sqlite3_stmt *st = NULL;
  int64_t have = -1;
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(g_plans.db, "SELECT count(*) FROM plans", -1, &st,
                            NULL);
  if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    have = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  int64_t now = (int64_t)time(NULL);
  for (size_t i = 0; rc == SQLITE_OK && have == 0 &&
                     i < sizeof seeds / sizeof *seeds;
       i++) {
    plan_row r = seeds[i];
    r.created_at = r.updated_at = now;
    r.version = 1;
    rc = plans_store_row(g_plans.db, &r, 1);
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(g_plans.db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, cap, "billing.db: cannot seed the plans: %s",
             sqlite3_errmsg(g_plans.db));
    sqlite3_exec(g_plans.db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
  }
  return 0;
}

int billing_plans_init(char *err, size_t cap) {
  nno_sdk_init(g_bill.p, api);
  memset(&g_plans, 0, sizeof g_plans);
  if (parse_config(err, cap) || billing_store_open(&g_plans.db, err, cap) ||
      seed(err, cap))
    goto fail;
  /* The counter before the snapshot: a change after it moves it. */
  api->counter_get(g_bill.p, PLANS_COUNTER, &g_plans.seen);
  if (reload(err, cap)) goto fail;
  if (!plans_find(g_plans.default_plan)) {
    snprintf(err, cap,
             "config.default_plan: no plan \"%s\" (neither stored nor in "
             "config.plans)",
             g_plans.default_plan);
    goto fail;
  }
  if (plans_api_init(err, cap)) goto fail;
  return 0;
fail:
  billing_plans_fini();
  return -1;
}

void billing_plans_ready(void) {}

void billing_plans_fini(void) {
  free(g_plans.v);
  if (g_plans.db) sqlite3_close_v2(g_plans.db);
  memset(&g_plans, 0, sizeof g_plans);
}

/* ---- the nno.billing members --------------------------------------------- */

static void copy_limits(nno_plan_limits *out, const nno_plan_limits *l) {
  size_t size = out->size;
  size_t n = size && size < sizeof *l ? size : sizeof *l;
  memcpy(out, l, n);
  out->size = size ? size : sizeof *l;
}

int billing_plan_limits(const char *name, nno_plan_limits *out) {
  if (!name || !out) return NNO_EINVAL;
  plans_refresh();
  const plan_row *r = plans_find(name);
  if (!r) return NNO_ENOENT;
  copy_limits(out, &r->l);
  return NNO_OK;
}

const char *billing_default_plan(void) {
  return g_plans.default_plan[0] ? g_plans.default_plan : "free";
}

int billing_platform_limits(const char *platform, nno_plan_limits *out) {
  char plan[40];
  if (!platform || !out) return NNO_EINVAL;
  if (!g_bill.registry) return NNO_ENOENT;
  int rc = g_bill.registry->platform_plan(platform, plan, sizeof plan);
  if (rc) return rc;
  plans_refresh();
  const plan_row *r = plans_find(plan);
  if (!r) r = plans_find(billing_default_plan());
  if (!r) return NNO_ENOENT;
  copy_limits(out, &r->l);
  return NNO_OK;
}

int billing_plan_price(const char *name, char *out, size_t cap) {
  if (!name || !out || !cap) return NNO_EINVAL;
  plans_refresh();
  const plan_row *r = plans_find(name);
  if (!r) return NNO_ENOENT;
  if (strlen(r->price) >= cap) return NNO_EINVAL;
  memcpy(out, r->price, strlen(r->price) + 1);
  return NNO_OK;
}

int billing_plan_by_price(const char *price, char *out, size_t cap) {
  if (!price || !*price || !out || !cap) return NNO_EINVAL;
  plans_refresh();
  for (size_t i = 0; i < g_plans.n; i++)
    if (strcmp(g_plans.v[i].price, price) == 0) {
      if (strlen(g_plans.v[i].l.name) >= cap) return NNO_EINVAL;
      memcpy(out, g_plans.v[i].l.name, strlen(g_plans.v[i].l.name) + 1);
      return NNO_OK;
    }
  return NNO_ENOENT;
}

int billing_plan_at(size_t i, char *out, size_t cap) {
  if (!out) return NNO_EINVAL;
  plans_refresh();
  if (i >= g_plans.n) return NNO_ENOENT;
  size_t n = strlen(g_plans.v[i].l.name);
  if (n >= cap) return NNO_EINVAL;
  memcpy(out, g_plans.v[i].l.name, n + 1);
  return NNO_OK;
}
