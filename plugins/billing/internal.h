/* The billing core plugin's shared state and the seams between its
 * modules. Each module owns its file(s):
 *   plugin.c    start-up and shutdown, the nno.billing vtable
 *   store.c     DATA/billing.db: open and schema
 *   plans.c     plans as data: the in-memory table, /api/v1/plans
 *   meter.c     counting (LIMIT and done hooks), the flush into hourly
 *               buckets, quota enforcement
 *   usage.c     /api/v1/platforms/{p}/usage and the invoice preview
 *   provider.c  customers, subscriptions, usage reporting (the outbox's
 *               jobs) and the payment state of each platform
 *   outbox.c    durable jobs for the provider: retries with backoff
 *   driver_*.c  the provider drivers behind billing_driver
 *   webhook.c   POST /api/v1/billing/webhooks/stripe
 * THREAD: everything runs on the worker's loop unless a function says it
 * runs on the pool. */
#ifndef NNO_BILLING_INTERNAL_H
#define NNO_BILLING_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include <nno/billing.h>
#include <nno/plugin.h>
#include <nno/registry.h>

extern const nno_host_api *api;

typedef struct billing_state {
  nno_plugin *p;
  char db_path[4096];
  const nno_registry_v1 *registry; /* from on_host_ready; NULL if absent */
  /* The plugin's configuration as parsed JSON text (plugin_config): each
   * module reads its own keys ("plans", "metering", "provider",
   * "stripe"...) and refuses unknown ones of its own section. */
  const char *config_json;
} billing_state;

extern billing_state g_bill;

/* ---- store.c ---------------------------------------------------------- */

/* Open DATA/billing.db (created 0600, WAL, busy timeout) and bring its
 * schema up to date. One connection per caller: sqlite handles are not
 * shared between the loop and the pool. 0 or -1 with `err`. */
int billing_store_open(sqlite3 **db, char *err, size_t cap);
int billing_store_migrate(sqlite3 *db, char *err, size_t cap);

/* ---- module lifecycles (each returns 0 or -1 with `err`) --------------- */

int billing_plans_init(char *err, size_t cap);
void billing_plans_ready(void);
void billing_plans_fini(void);
int billing_meter_init(char *err, size_t cap);
void billing_meter_ready(void);
void billing_meter_fini(void);
int billing_usage_init(char *err, size_t cap);
int billing_provider_init(char *err, size_t cap);
void billing_provider_ready(void);
void billing_provider_fini(void);
int billing_webhook_init(char *err, size_t cap);

/* ---- plans.c: the nno.billing members it implements -------------------- */

int billing_plan_limits(const char *name, nno_plan_limits *out);
const char *billing_default_plan(void);
int billing_platform_limits(const char *platform, nno_plan_limits *out);
/* The provider's price of plan `name` ("price_..."; "" when the plan has
 * none: nothing is charged for it). NNO_ENOENT for an unknown plan. */
int billing_plan_price(const char *name, char *out, size_t cap);
/* The plan whose provider price is `price`, for webhooks. NNO_ENOENT. */
int billing_plan_by_price(const char *price, char *out, size_t cap);

/* ---- provider.c ------------------------------------------------------- */

int billing_platform_changed(const char *platform, const char *plan,
                             const char *actor, const char *request_id);

/* ---- plans.c, plans_api.c: the plan table ----------------------------- */

#include <jansson.h>

/* The shared counter moved after every committed change of a plan. */
#define PLANS_COUNTER "billing.plans"
/* Bounds: stored plans, plans of the configuration, a provider price. */
#define PLANS_MAX 256
#define PLANS_CONFIG_MAX 32
#define PLAN_PRICE_MAX 65

/* One plan as every worker holds it. */
typedef struct plan_row {
  nno_plan_limits l;
  char price[PLAN_PRICE_MAX]; /* "price_..." or "" */
  int from_config;            /* set by the host configuration: read-only */
  int64_t version;            /* the stored row's (ETag); 0 from config */
  int64_t created_at, updated_at; /* unix seconds */
} plan_row;

/* Why a plan's JSON was refused: the field ("rates.key.burst") and a
 * message starting `field "...": `. */
typedef struct plan_error {
  char field[64];
  char msg[512];
} plan_error;

typedef struct plans_state {
  sqlite3 *db;      /* this worker's connection, loop thread only */
  plan_row *v;      /* sorted by name */
  size_t n;
  uint64_t seen;    /* PLANS_COUNTER value the table is caught up to */
  plan_row cfg[PLANS_CONFIG_MAX]; /* config.plans, each over the free plan */
  size_t ncfg;
  json_t *cfg_obj;  /* config.plans as given (owned): laid over the table */
  char default_plan[33];
  uint64_t gen;     /* moved by every reload of v: caches of limits compare it */
} plans_state;

extern plans_state g_plans;

/* Lay the members of `obj` (a plan's JSON: requests_per_month,
 * storage_bytes, users, api_keys, rates {platform, key, user, anonymous:
 * {rate, burst}}, soft_pct, grace_pct, grace_days, provider_price; "name"
 * is allowed and ignored) over *r after checking every one: unknown
 * members are refused naming the nearest known one. 0, or -1 with *e set
 * and *r unchanged. */
int plan_apply(const json_t *obj, plan_row *r, plan_error *e);
int plan_name_valid(const char *s);
/* *r = what a plan holds for the fields not given: the free plan's seed
 * values (named "free"). */
void plan_defaults(plan_row *r);
/* "" or price_[A-Za-z0-9]+ shorter than PLAN_PRICE_MAX. */
int plan_price_valid(const char *s);
/* New JSON objects: the limits as stored, and the whole plan as the API
 * shows it. NULL when out of memory. */
json_t *plan_limits_json(const plan_row *r);
json_t *plan_json(const plan_row *r);
/* The plan `name` of the table (caught up first by the caller), or NULL.
 * Borrowed until the next refresh. */
const plan_row *plans_find(const char *name);
/* Catch up with changes committed by any worker (one atomic read when
 * none). */
void plans_refresh(void);
/* After committing a change: move the counter and reload here. */
void plans_committed(void);
/* INSERT (insert != 0) or UPDATE the row of r->l.name. A sqlite code. */
int plans_store_row(sqlite3 *db, const plan_row *r, int insert);
/* nno.billing's plan_at. */
int billing_plan_at(size_t i, char *out, size_t cap);
/* plans_api.c: bind /api/v1/plans. 0 or -1 with err. */
int plans_api_init(char *err, size_t cap);

/* ---- meter.c (metering) ------------------------------------------------- */

/* Calendar months, UTC: the start of the month holding `t` (unix
 * seconds), and the start of the next one. */
int64_t billing_month_start(int64_t t);
int64_t billing_month_next(int64_t t);
/* `t` as "2026-12-05T06:00:00Z" (`cap` >= 21). */
void billing_rfc3339(int64_t t, char *out, size_t cap);
/* Requests of `platform` admitted this month (UTC) up to now, the number
 * its quota is checked against: flushed rows plus what the shared meter
 * counted since. May read billing.db once per platform and month. 0, or
 * NNO_EINVAL / NNO_EIO. */
int billing_meter_month(const char *platform, int64_t now, uint64_t *used);
/* A plan change was committed (plans_committed, after PLANS_COUNTER
 * moved): tell the LIMIT hook of every worker, through the shared meter
 * `g|plans` it reads by handle. */
void billing_meter_plans_moved(void);
/* usage.c's reader is closed at shutdown (from billing_meter_fini). */
void billing_usage_fini(void);

#endif
