/* Plans as data: the in-memory table every worker answers from and the
 * host configuration's overrides. A plan's JSON is checked by
 * plan_parse.c; the routes (/api/v1/plans) are plans_api.c.
 *
 * The table is the rows of billing.db `plans` with the plans of the
 * configuration (billing's plugin config "plans") laid over them: a plan
 * named there that is stored too keeps the stored values of the fields it
 * does not give; one new to the table takes the free plan's for those.
 * Either way it cannot be changed through the API. Each worker holds the whole table (at most
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

/* Written into billing.db the first time it has no plan at all, after
 * the free plan (plan_defaults). The rates are IAM's and the storage
 * provisioning's of before plans were data. */
static const plan_row seeds[] = {
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

/* ---- the API's view of a plan ------------------------------------------- */

static void rfc3339(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *plan_json(const plan_row *r) {
  json_t *lim = plan_limits_json(r);
  json_t *o = json_pack("{s:s}", "name", r->l.name);
  if (!lim || !o || json_object_update(o, lim)) {
    json_decref(o);
    o = NULL;
  }
  json_decref(lim);
  char c[32], u[32];
  rfc3339(r->created_at, c);
  rfc3339(r->updated_at, u);
  if (o &&
      (json_object_set_new(o, "provider_price", json_string(r->price)) ||
       json_object_set_new(o, "source",
                           json_string(r->from_config ? "config" : "stored")) ||
       json_object_set_new(
           o, "default",
           json_boolean(strcmp(r->l.name, g_plans.default_plan) == 0)) ||
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

/* ---- the table ----------------------------------------------------------- */

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
    plan_row r;
    plan_error e;
    plan_defaults(&r);
    snprintf(r.l.name, sizeof r.l.name, "%s",
             (const char *)sqlite3_column_text(st, 0));
    json_t *lim = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
    int bad = plan_apply(lim, &r, &e);
    json_decref(lim);
    if (bad) {
      /* Only this plugin writes the table: log it and keep the seed's
       * values rather than refusing every request. */
      api->log(g_bill.p, NNO_LOG_ERROR, "billing.db: plan \"%s\": %s", r.l.name,
               e.msg);
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
    const char *name = g_plans.cfg[i].l.name;
    size_t j = 0;
    while (j < n && strcmp(v[j].l.name, name) != 0) j++;
    if (j == n) {
      v[n++] = g_plans.cfg[i]; /* new: the free plan's values under it */
      continue;
    }
    /* Named like a stored plan: only the fields it gives change. */
    plan_error e;
    if (plan_apply(json_object_get(g_plans.cfg_obj, name), &v[j], &e))
      api->log(g_bill.p, NNO_LOG_ERROR, "config.plans.%s: %s", name, e.msg);
    v[j].from_config = 1;
  }
  qsort(v, n, sizeof *v, cmp_row);
  free(g_plans.v);
  g_plans.v = v;
  g_plans.n = n;
  g_plans.gen++;
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
  billing_meter_plans_moved();
}

/* ---- configuration and seed ---------------------------------------------- */

/* billing's config "plans" ({name: plan}) and "default_plan". */
static int parse_config(char *err, size_t cap) {
  json_error_t je;
  json_t *root =
      json_loads(g_bill.config_json ? g_bill.config_json : "{}", 0, &je);
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
      plan_row r;
      plan_error e;
      plan_defaults(&r);
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
      for (size_t i = 0; i < g_plans.ncfg; i++)
        if (r.price[0] && strcmp(g_plans.cfg[i].price, r.price) == 0) {
          snprintf(err, cap,
                   "config.plans.%s: field \"provider_price\": \"%s\" is "
                   "plan \"%s\"'s already (a price belongs to one plan)",
                   name, r.price, g_plans.cfg[i].l.name);
          rc = -1;
        }
      if (rc) break;
      g_plans.cfg[g_plans.ncfg++] = r;
    }
  if (!rc && plans) g_plans.cfg_obj = json_incref(plans);
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
  for (size_t i = 0;
       rc == SQLITE_OK && have == 0 && i <= sizeof seeds / sizeof *seeds; i++) {
    plan_row r;
    if (i == 0)
      plan_defaults(&r);
    else
      r = seeds[i - 1];
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
  /* A price names one plan: a webhook maps it back to that plan. */
  for (size_t i = 0; i < g_plans.n; i++)
    for (size_t j = i + 1; g_plans.v[i].price[0] && j < g_plans.n; j++)
      if (strcmp(g_plans.v[i].price, g_plans.v[j].price) == 0) {
        snprintf(err, cap,
                 "plans \"%s\" and \"%s\" have one provider_price "
                 "\"%s\" (a price belongs to one plan)",
                 g_plans.v[i].l.name, g_plans.v[j].l.name, g_plans.v[i].price);
        goto fail;
      }
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
  json_decref(g_plans.cfg_obj);
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
