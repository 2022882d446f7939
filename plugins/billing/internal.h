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
/* usage.c's reader is closed at shutdown (from billing_meter_fini). */
void billing_usage_fini(void);

#endif
