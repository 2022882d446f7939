/* The payment provider kept in step with the registry: the provider's
 * settings, each platform's account (customer, subscription, payment
 * state), the outbox jobs that carry them to the driver, usage buckets
 * reported once closed, and suspension after a failed payment's grace.
 *
 * A platform created gets a customer job and, when its plan has a
 * provider price, a subscription job; a plan change gets a subscription
 * job (create, move the item to the new price, or cancel when the new
 * plan has no price); a platform deleted gets a cancel job. What a
 * subscription job does is decided when it is sent, from the account as
 * it is then. Jobs of a platform go out in order (outbox.c). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include <nno/sdk.h>

#include "driver.h"
#include "internal.h"

billing_provider_cfg g_pcfg;

/* ---- settings ------------------------------------------------------------ */

typedef struct cfg_key {
  const char *name;
  int is_int;
  void *ptr;
  size_t cap;       /* strings: the buffer's size */
  int64_t min, max; /* integers */
} cfg_key;

static void cfg_defaults(billing_provider_cfg *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->provider, sizeof c->provider, "none");
  snprintf(c->api_base, sizeof c->api_base, "https://api.stripe.com");
  snprintf(c->api_version, sizeof c->api_version, "2025-03-31.basil");
  snprintf(c->meter_event, sizeof c->meter_event, "nno_requests");
  c->tolerance_s = 300;
  c->timeout_ms = 10000;
  c->backoff_base_ms = 1000;
  c->backoff_max_ms = 300000;
  c->poll_ms = 1000;
  c->usage_scan_ms = 60000;
  c->grace_check_ms = 60000;
  c->flush_ms = 5000;
}

/* 1 if `s` is one of `prefixes` then one or more of [A-Za-z0-9_]: the
 * shape of Stripe's secrets, so a publishable key (pk_...) or one pasted
 * with spaces is refused at the start, not at the first call. */
static int secret_shape_ok(const char *s, const char *const *prefixes) {
  for (size_t i = 0; prefixes[i]; i++) {
    size_t n = strlen(prefixes[i]);
    if (strncmp(s, prefixes[i], n) != 0 || !s[n]) continue;
    for (const char *p = s + n; *p; p++)
      if (!isalnum((unsigned char)*p) && *p != '_') return 0;
    return 1;
  }
  return 0;
}

/* Parse billing's "provider" and "stripe" settings, then the secrets from
 * the environment (which win). Messages name keys, never values. */
static int cfg_parse(billing_provider_cfg *c, const char *text, char *err,
                     size_t cap) {
  cfg_defaults(c);
  json_error_t jerr;
  json_t *root = json_loads(text && text[0] ? text : "{}", 0, &jerr);
  if (!json_is_object(root)) {
    json_decref(root);
    snprintf(err, cap, "billing: configuration is not a JSON object");
    return -1;
  }
  int rc = 0;
  json_t *v = json_object_get(root, "provider");
  if (v) {
    const char *s = json_string_value(v);
    if (!s || (strcmp(s, "none") && strcmp(s, "stripe"))) {
      snprintf(err, cap, "billing: provider: expected \"none\" or \"stripe\"");
      rc = -1;
    } else {
      snprintf(c->provider, sizeof c->provider, "%s", s);
    }
  }
  const cfg_key keys[] = {
      {"api_base", 0, c->api_base, sizeof c->api_base, 0, 0},
      {"secret_key", 0, c->secret_key, sizeof c->secret_key, 0, 0},
      {"webhook_secret", 0, c->webhook_secret, sizeof c->webhook_secret, 0,
       0},
      {"api_version", 0, c->api_version, sizeof c->api_version, 0, 0},
      {"meter_event", 0, c->meter_event, sizeof c->meter_event, 0, 0},
      {"tolerance_s", 1, &c->tolerance_s, 0, 1, 86400},
      {"timeout_ms", 1, &c->timeout_ms, 0, 100, 120000},
      {"backoff_base_ms", 1, &c->backoff_base_ms, 0, 10, 3600000},
      {"backoff_max_ms", 1, &c->backoff_max_ms, 0, 10, 86400000},
      {"poll_ms", 1, &c->poll_ms, 0, 10, 3600000},
      {"usage_scan_ms", 1, &c->usage_scan_ms, 0, 10, 86400000},
      {"grace_check_ms", 1, &c->grace_check_ms, 0, 10, 86400000},
  };
  json_t *st = json_object_get(root, "stripe");
  if (st && !json_is_object(st)) {
    snprintf(err, cap, "billing: stripe: expected an object");
    rc = -1;
  }
  const char *k;
  json_t *val;
  if (!rc && st) json_object_foreach(st, k, val) {
      const cfg_key *ck = NULL;
      for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strcmp(keys[i].name, k) == 0) ck = &keys[i];
      if (!ck) {
        snprintf(err, cap, "billing: stripe: unknown key \"%.40s\"", k);
        rc = -1;
        break;
      }
      if (ck->is_int) {
        if (!json_is_integer(val) || json_integer_value(val) < ck->min ||
            json_integer_value(val) > ck->max) {
          snprintf(err, cap,
                   "billing: stripe.%s: expected an integer from %lld to %lld",
                   ck->name, (long long)ck->min, (long long)ck->max);
          rc = -1;
          break;
        }
        *(int64_t *)ck->ptr = json_integer_value(val);
      } else {
        const char *s = json_string_value(val);
        if (!s || strlen(s) >= ck->cap || strpbrk(s, "\r\n")) {
          snprintf(err, cap,
                   "billing: stripe.%s: expected a string of at most %zu "
                   "bytes on one line",
                   ck->name, ck->cap - 1);
          rc = -1;
          break;
        }
        snprintf(ck->ptr, ck->cap, "%s", s);
      }
    }
  json_t *m = json_object_get(root, "metering");
  json_t *fl = json_object_get(m, "flush_ms");
  if (json_is_integer(fl) && json_integer_value(fl) > 0)
    c->flush_ms = json_integer_value(fl);
  json_decref(root);
  if (rc) return rc;
  const char *sk_from = "stripe.secret_key", *wh_from = "stripe.webhook_secret";
  const char *env = getenv("NNO_BILLING_STRIPE_SECRET_KEY");
  if (env && env[0]) {
    snprintf(c->secret_key, sizeof c->secret_key, "%s", env);
    sk_from = "NNO_BILLING_STRIPE_SECRET_KEY";
  }
  env = getenv("NNO_BILLING_STRIPE_WEBHOOK_SECRET");
  if (env && env[0]) {
    snprintf(c->webhook_secret, sizeof c->webhook_secret, "%s", env);
    wh_from = "NNO_BILLING_STRIPE_WEBHOOK_SECRET";
  }
  static const char *const sk_prefixes[] = {"sk_test_", "sk_live_",
                                            "rk_test_", "rk_live_", NULL};
  static const char *const wh_prefixes[] = {"whsec_", NULL};
  if (c->secret_key[0] && !secret_shape_ok(c->secret_key, sk_prefixes)) {
    snprintf(err, cap,
             "billing: %s: expected a secret key sk_test_..., sk_live_... "
             "(or rk_test_..., rk_live_...) with no whitespace",
             sk_from);
    return -1;
  }
  if (c->webhook_secret[0] &&
      !secret_shape_ok(c->webhook_secret, wh_prefixes)) {
    snprintf(err, cap,
             "billing: %s: expected a signing secret whsec_... with no "
             "whitespace",
             wh_from);
    return -1;
  }
  size_t n = strlen(c->api_base);
  while (n && c->api_base[n - 1] == '/') c->api_base[--n] = '\0';
  if (strncmp(c->api_base, "https://", 8) && strncmp(c->api_base, "http://", 7)) {
    snprintf(err, cap, "billing: stripe.api_base: expected an http(s) URL");
    return -1;
  }
  if (c->backoff_max_ms < c->backoff_base_ms) {
    snprintf(err, cap, "billing: stripe.backoff_max_ms is below "
                       "stripe.backoff_base_ms");
    return -1;
  }
  if (strcmp(c->provider, "stripe") == 0 && !c->secret_key[0]) {
    snprintf(err, cap,
             "billing: provider \"stripe\" needs stripe.secret_key or "
             "NNO_BILLING_STRIPE_SECRET_KEY");
    return -1;
  }
  return 0;
}

static void backfill_start(void);

static const billing_driver *driver(void) {
  return strcmp(g_pcfg.provider, "stripe") == 0 ? &billing_driver_stripe
                                                 : &billing_driver_none;
}

const nno_registry_v1 *billing_registry_writer(void) {
  const nno_registry_v1 *r = g_bill.registry;
  if (!r || r->size < offsetof(nno_registry_v1, platform_set_status) +
                          sizeof r->platform_set_status ||
      !r->platform_set_plan || !r->platform_set_status)
    return NULL;
  return r;
}

int billing_provider_init(char *err, size_t cap) {
  nno_sdk_init(g_bill.p, api);
  if (cfg_parse(&g_pcfg, g_bill.config_json, err, cap)) return -1;
  return billing_outbox_init(err, cap);
}

void billing_provider_ready(void) {
  billing_outbox_ready();
  /* Platforms created before billing or under another provider: walked
   * page by page off the start, once per provider (accounts.provider). */
  backfill_start();
  api->log(g_bill.p, NNO_LOG_INFO, "billing: payment provider %s",
           driver()->name);
}

void billing_provider_fini(void) {
  billing_outbox_fini();
  sodium_memzero(&g_pcfg, sizeof g_pcfg);
}

/* ---- the registry's changes ------------------------------------------------ */

static int enqueue(sqlite3 *db, const char *kind, const char *platform,
                   json_t *body) {
  char id[192];
  billing_outbox_new_id(kind, platform, id, sizeof id);
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  if (!text) return SQLITE_NOMEM;
  int rc = billing_outbox_add(db, id, kind, platform, text);
  free(text);
  return rc;
}

static int exec1(sqlite3 *db, const char *sql, const char *a, const char *b,
                 int64_t n) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) {
    if (a) sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b) sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, n);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

int billing_account_get(sqlite3 *db, const char *platform, billing_account *a) {
  memset(a, 0, sizeof *a);
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(
      db,
      "SELECT platform, plan, customer, subscription, payment, failed_at,"
      " suspended_by_billing, sub_event_at FROM accounts"
      " WHERE platform = ?1",
      -1, &st, NULL);
  if (rc != SQLITE_OK) return rc;
  sqlite3_bind_text(st, 1, platform, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    snprintf(a->platform, sizeof a->platform, "%s",
             sqlite3_column_text(st, 0));
    snprintf(a->plan, sizeof a->plan, "%s", sqlite3_column_text(st, 1));
    snprintf(a->customer, sizeof a->customer, "%s",
             sqlite3_column_text(st, 2));
    snprintf(a->subscription, sizeof a->subscription, "%s",
             sqlite3_column_text(st, 3));
    snprintf(a->payment, sizeof a->payment, "%s", sqlite3_column_text(st, 4));
    a->failed_at = sqlite3_column_int64(st, 5);
    a->suspended_by_billing = sqlite3_column_int(st, 6);
    a->sub_event_at = sqlite3_column_int64(st, 7);
    a->found = 1;
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

static void plan_price(const char *plan, char *out, size_t cap) {
  out[0] = '\0';
  if (billing_plan_price(plan, out, cap) != 0) out[0] = '\0';
}

/* Record that `platform`'s account was queued for the current provider. */
static int set_provider(sqlite3 *db, const char *platform) {
  return exec1(db, "UPDATE accounts SET provider = ?2 WHERE platform = ?1",
               platform, g_pcfg.provider, 0);
}

/* The change itself, inside the caller's transaction. */
static int changed(sqlite3 *db, const char *platform, const char *plan) {
  billing_account a;
  int rc = billing_account_get(db, platform, &a);
  if (rc) return rc;
  int64_t now = billing_now_ms() / 1000;
  char price[128];
  if (plan) {
    plan_price(plan, price, sizeof price);
    if (!a.found) {
      rc = exec1(db,
                 "INSERT INTO accounts (platform, plan, updated_at)"
                 " VALUES (?1, ?2, ?3)",
                 platform, plan, now);
      if (!rc) rc = set_provider(db, platform);
      if (!rc)
        rc = enqueue(db, "customer", platform,
                     json_pack("{s:s}", "platform", platform));
      if (!rc && price[0])
        rc = enqueue(db, "subscription", platform,
                     json_pack("{s:s, s:s}", "plan", plan, "price", price));
    } else if (strcmp(a.plan, plan) != 0) {
      rc = exec1(db,
                 "UPDATE accounts SET plan = ?2, updated_at = ?3"
                 " WHERE platform = ?1",
                 platform, plan, now);
      if (!rc)
        rc = enqueue(db, "subscription", platform,
                     json_pack("{s:s, s:s}", "plan", plan, "price", price));
    }
    return rc;
  }
  if (!a.found) return SQLITE_OK;
  /* Deleted: what was not sent yet goes; a subscription is canceled. */
  rc = exec1(db,
             "DELETE FROM outbox WHERE platform = ?1 AND state != 'sent'"
             " AND kind IN ('customer', 'subscription')"
             " AND lease_until_ms < ?3",
             platform, NULL, billing_now_ms());
  if (!rc && a.subscription[0])
    rc = enqueue(db, "cancel", platform,
                 json_pack("{s:s}", "subscription", a.subscription));
  if (!rc)
    rc = exec1(db, "DELETE FROM accounts WHERE platform = ?1", platform, NULL,
               0);
  return rc;
}

int billing_platform_changed(const char *platform, const char *plan,
                             const char *actor, const char *request_id) {
  sqlite3 *db = billing_outbox_db();
  if (!db) return NNO_ESTATE;
  if (!platform || !nno_id_valid(platform, strlen(platform), 1, 63) ||
      (plan && !nno_id_valid(plan, strlen(plan), 1, 32)))
    return NNO_EINVAL;
  /* The registry may call back while billing changes a plan itself (a
   * webhook, inside its transaction): a savepoint nests. */
  int top = sqlite3_get_autocommit(db);
  int rc = sqlite3_exec(db, top ? "BEGIN IMMEDIATE" : "SAVEPOINT changed",
                        NULL, NULL, NULL);
  if (rc == SQLITE_OK) rc = changed(db, platform, plan);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, top ? "COMMIT" : "RELEASE changed", NULL, NULL,
                      NULL);
  if (rc != SQLITE_OK) {
    api->log(g_bill.p, NNO_LOG_WARN,
             "billing: platform %s: change not stored: %s", platform,
             sqlite3_errmsg(db));
    if (top) {
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    } else {
      sqlite3_exec(db, "ROLLBACK TO changed", NULL, NULL, NULL);
      sqlite3_exec(db, "RELEASE changed", NULL, NULL, NULL);
    }
    return (rc & 0xff) == SQLITE_BUSY ? NNO_EBUSY : NNO_EIO;
  }
  api->log(g_bill.p, NNO_LOG_INFO,
           "billing: platform %s %s%s by %s (request %s)", platform,
           plan ? "on plan " : "deleted", plan ? plan : "",
           actor ? actor : "-", request_id ? request_id : "-");
  return 0;
}

/* ---- platforms without a provider account: the backfill ------------------ */

/* Platforms read from the registry per page, and pages per tick. */
#define BACKFILL_PAGE 200
#define BACKFILL_TICK_MS 20
/* Ticks in a row a page may fail (busy, out of memory) before the walk
 * gives up until the next start: 30 s at one tick each 20 ms. */
#define BACKFILL_TRIES 1500

typedef struct backfill_page {
  char id[BACKFILL_PAGE][64];
  char plan[BACKFILL_PAGE][33];
  size_t n;
} backfill_page;

static struct {
  nno_timer *timer;
  char after[64];     /* the last platform id walked */
  uint64_t queued;    /* platforms queued by this walk */
  unsigned fails;     /* ticks in a row that did not get a page through */
} g_fill;

static int page_add(void *ud, const char *id, const char *plan) {
  backfill_page *pg = ud;
  if (pg->n >= BACKFILL_PAGE || strlen(id) >= sizeof pg->id[0] ||
      strlen(plan) >= sizeof pg->plan[0])
    return NNO_ETOOBIG; /* the registry bounds both below: never */
  snprintf(pg->id[pg->n], sizeof pg->id[0], "%s", id);
  snprintf(pg->plan[pg->n], sizeof pg->plan[0], "%s", plan);
  pg->n++;
  return 0;
}

/* *out = 1 when a customer job of `platform` is still to be sent. A
 * sqlite code. */
static int customer_pending(sqlite3 *db, const char *platform, int *out) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db,
                              "SELECT 1 FROM outbox WHERE platform = ?1"
                              " AND kind = 'customer'"
                              " AND state IN ('pending', 'failed') LIMIT 1",
                              -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, platform, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW;
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
  }
  sqlite3_finalize(st);
  return rc;
}

/* One platform, inside the page's transaction: an account not yet
 * recorded for the current provider gets its customer job (and a
 * subscription job when its plan has a price) unless it has a customer or
 * one is on its way; then it is recorded, so it is never queued again for
 * this provider. Under `none` only the record is written. *queued = 1
 * when jobs were added. */
static int backfill_one(sqlite3 *db, const char *platform, const char *plan,
                        int *queued) {
  billing_account a;
  *queued = 0;
  int rc = billing_account_get(db, platform, &a);
  if (rc) return rc;
  int sending = strcmp(g_pcfg.provider, "none") != 0;
  if (!a.found) {
    rc = exec1(db,
               "INSERT INTO accounts (platform, plan, updated_at)"
               " VALUES (?1, ?2, ?3)",
               platform, plan, billing_now_ms() / 1000);
  } else {
    char prov[16] = "";
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db,
                            "SELECT provider FROM accounts WHERE platform = ?1",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
      sqlite3_bind_text(st, 1, platform, -1, SQLITE_STATIC);
      if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(prov, sizeof prov, "%s", sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    if (rc) return rc;
    if (strcmp(prov, g_pcfg.provider) == 0) return SQLITE_OK; /* done */
    int pending = 0;
    if (sending && !a.customer[0])
      rc = customer_pending(db, platform, &pending);
    if (rc) return rc;
    if (a.customer[0] || pending) sending = 0;
    plan = a.plan;
  }
  char price[128];
  plan_price(plan, price, sizeof price);
  if (!rc && sending) {
    rc = enqueue(db, "customer", platform,
                 json_pack("{s:s}", "platform", platform));
    if (!rc && price[0] && !a.subscription[0])
      rc = enqueue(db, "subscription", platform,
                   json_pack("{s:s, s:s}", "plan", plan, "price", price));
    *queued = !rc;
  }
  if (!rc) rc = set_provider(db, platform);
  return rc;
}

/* One page of the walk, in one transaction: 0 done with more to come, 1
 * when the walk is over, -1 when the page must be tried again (busy). */
static int backfill_step(void) {
  const nno_registry_v1 *reg = g_bill.registry;
  sqlite3 *db = billing_outbox_db();
  if (!db || !reg ||
      reg->size < offsetof(nno_registry_v1, platform_page) +
                      sizeof reg->platform_page ||
      !reg->platform_page)
    return 1; /* no registry to walk: nothing to backfill */
  backfill_page *pg = calloc(1, sizeof *pg);
  if (!pg) return -1;
  int r = reg->platform_page(g_fill.after, BACKFILL_PAGE, page_add, pg);
  if (r) {
    free(pg);
    if (r == NNO_EBUSY) return -1;
    api->log(g_bill.p, NNO_LOG_WARN,
             "billing: provider backfill stopped after platform \"%s\": %s",
             g_fill.after, api->strerror(r));
    return 1;
  }
  sqlite3_busy_timeout(db, 100);
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  sqlite3_busy_timeout(db, 5000);
  uint64_t queued = 0;
  for (size_t i = 0; rc == SQLITE_OK && i < pg->n; i++) {
    int q = 0;
    rc = backfill_one(db, pg->id[i], pg->plan[i], &q);
    queued += (uint64_t)q;
  }
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    free(pg);
    return -1; /* busy (another worker walks): this page again */
  }
  g_fill.queued += queued;
  int over = pg->n < BACKFILL_PAGE;
  if (pg->n) snprintf(g_fill.after, sizeof g_fill.after, "%s", pg->id[pg->n - 1]);
  free(pg);
  return over;
}

static void backfill_tick(nno_timer *t, void *ud) {
  (void)ud;
  int r = backfill_step();
  if (r == 0) g_fill.fails = 0;
  if (r == 0 || (r < 0 && ++g_fill.fails < BACKFILL_TRIES)) return;
  if (r < 0)
    api->log(g_bill.p, NNO_LOG_WARN,
             "billing: provider backfill stopped after platform \"%s\": "
             "billing.db or the registry stayed busy; the next start "
             "goes on",
             g_fill.after);
  api->timer_stop(t);
  g_fill.timer = NULL;
  if (g_fill.queued)
    api->log(g_bill.p, NNO_LOG_INFO,
             "billing: provider %s: queued the customer of %llu platform(s) "
             "that had none",
             g_pcfg.provider, (unsigned long long)g_fill.queued);
}

static void backfill_start(void) {
  memset(&g_fill, 0, sizeof g_fill);
  if (api->timer_start(g_bill.p, BACKFILL_TICK_MS, BACKFILL_TICK_MS,
                       backfill_tick, NULL, &g_fill.timer) != 0)
    api->log(g_bill.p, NNO_LOG_WARN,
             "billing: cannot start the provider backfill");
}

/* ---- sending jobs -------------------------------------------------------- */

static void on_driver(const drv_result *res, void *ud) {
  billing_outbox_done(ud, res);
}

static void complete(outbox_job *job, int outcome, const char *error) {
  drv_result res;
  memset(&res, 0, sizeof res);
  res.outcome = outcome;
  snprintf(res.error, sizeof res.error, "%s", error ? error : "");
  billing_outbox_done(job, &res);
}

static const char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

void provider_send(outbox_job *job) {
  const billing_driver *d = driver();
  json_t *b = json_loads(job->body, 0, NULL);
  int rc = 0;
  if (!json_is_object(b)) {
    json_decref(b);
    complete(job, DRV_FAIL, "job body is not a JSON object");
    return;
  }
  if (strcmp(job->kind, "customer") == 0) {
    rc = d->ensure_customer(job->id, job->platform, on_driver, job);
  } else if (strcmp(job->kind, "subscription") == 0) {
    billing_account a;
    const char *price = jstr(b, "price");
    if (billing_account_get(billing_outbox_db(), job->platform, &a)) {
      json_decref(b);
      complete(job, DRV_RETRY, "billing store busy");
      return;
    }
    if (!a.found || (!price[0] && !a.subscription[0])) {
      json_decref(b);
      complete(job, DRV_OK, NULL); /* nothing to keep in step */
      return;
    }
    if (!price[0]) {
      job->cancels = 1;
      rc = d->cancel_subscription(job->id, a.subscription, on_driver, job);
    } else if (!a.customer[0] && d == &billing_driver_stripe) {
      json_decref(b);
      complete(job, DRV_FAIL, "the platform has no customer yet");
      return;
    } else {
      rc = d->ensure_subscription(job->id, job->platform, a.customer,
                                  a.subscription, price, on_driver, job);
    }
  } else if (strcmp(job->kind, "cancel") == 0) {
    job->cancels = 1;
    rc = d->cancel_subscription(job->id, jstr(b, "subscription"), on_driver,
                                job);
  } else if (strcmp(job->kind, "usage") == 0) {
    json_int_t value = json_integer_value(json_object_get(b, "value"));
    json_int_t hour = json_integer_value(json_object_get(b, "hour"));
    rc = d->send_usage(job->id, jstr(b, "customer"),
                       value > 0 ? (uint64_t)value : 0, (int64_t)hour,
                       on_driver, job);
  } else {
    json_decref(b);
    complete(job, DRV_FAIL, "unknown job kind");
    return;
  }
  json_decref(b);
  if (rc) {
    char e[96];
    snprintf(e, sizeof e, "cannot send: %s", api->strerror(rc));
    complete(job, rc == NNO_EINVAL ? DRV_FAIL : DRV_RETRY, e);
  }
}

int provider_apply(sqlite3 *db, const outbox_job *job, const drv_result *res) {
  int64_t now = billing_now_ms() / 1000;
  if (strcmp(job->kind, "customer") == 0 && res->id[0])
    return exec1(db,
                 "UPDATE accounts SET customer = ?2, updated_at = ?3"
                 " WHERE platform = ?1",
                 job->platform, res->id, now);
  if (strcmp(job->kind, "subscription") == 0 && job->cancels)
    return exec1(db,
                 "UPDATE accounts SET subscription = '', updated_at = ?3"
                 " WHERE platform = ?1",
                 job->platform, NULL, now);
  if (strcmp(job->kind, "subscription") == 0 && res->id[0])
    return exec1(db,
                 "UPDATE accounts SET subscription = ?2, updated_at = ?3"
                 " WHERE platform = ?1",
                 job->platform, res->id, now);
  return SQLITE_OK;
}

/* ---- usage buckets -------------------------------------------------------- */

int provider_usage_scan(sqlite3 *db) {
  int64_t now = billing_now_ms() / 1000;
  int64_t close_s = (2 * g_pcfg.flush_ms + 999) / 1000;
  sqlite3_stmt *st = NULL;
  /* A closed hour of admitted requests (class 0) of a platform with a
   * customer is one job; its id is the meter event's identifier. Stripe
   * takes events of the last 35 days. */
  int rc = sqlite3_prepare_v2(
      db,
      "INSERT OR IGNORE INTO outbox (id, kind, platform, body, created_at)"
      " SELECT 'usage-' || u.platform || '-' || u.hour, 'usage', u.platform,"
      "  json_object('hour', u.hour, 'value', sum(u.requests),"
      "   'customer', a.customer), ?1"
      " FROM usage u JOIN accounts a ON a.platform = u.platform"
      " WHERE u.class = 0 AND a.customer != '' AND u.hour >= ?1 - 35 * 86400"
      "  AND u.hour + 3600 + ?2 < ?1"
      " GROUP BY u.platform, u.hour HAVING sum(u.requests) > 0",
      -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, close_s);
    sqlite3_busy_timeout(db, 100);
    rc = sqlite3_step(st);
    sqlite3_busy_timeout(db, 5000);
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  /* Sent jobs are kept 40 days (a usage job is created after its hour, so
   * one pruned is for an hour the scan no longer reads: never sent
   * again); handled webhook events 30 days (Stripe retries for 3 days,
   * and a signature is good for stripe.tolerance_s only). */
  if (rc == SQLITE_OK)
    rc = exec1(db,
               "DELETE FROM outbox WHERE state = 'sent'"
               " AND created_at < ?3 - 40 * 86400",
               NULL, NULL, now);
  if (rc == SQLITE_OK)
    rc = exec1(db,
               "DELETE FROM webhook_events WHERE received_at < ?3 - 30 * 86400",
               NULL, NULL, now);
  return rc;
}

/* ---- payment failed → suspended after the plan's grace ------------------- */

#define GRACE_BATCH 256

void provider_grace_check(void) {
  const nno_registry_v1 *reg = billing_registry_writer();
  sqlite3 *db = billing_outbox_db();
  if (!reg || !db) return;
  int64_t now = billing_now_ms() / 1000;
  sqlite3_stmt *st = NULL;
  int any = 0;
  if (sqlite3_prepare_v2(db,
                         "SELECT 1 FROM accounts WHERE payment = 'failed'"
                         " AND suspended_by_billing = 0 LIMIT 1",
                         -1, &st, NULL) == SQLITE_OK)
    any = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  st = NULL;
  if (!any) return; /* the common case: no write lock taken */
  sqlite3_busy_timeout(db, 100);
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  sqlite3_busy_timeout(db, 5000);
  if (rc != SQLITE_OK) return; /* another worker checks now */
  struct {
    char platform[64], plan[33];
    int64_t failed_at;
  } *due = calloc(GRACE_BATCH, sizeof *due);
  size_t n = 0;
  if (due && sqlite3_prepare_v2(db,
                                "SELECT platform, plan, failed_at FROM accounts"
                                " WHERE payment = 'failed'"
                                " AND suspended_by_billing = 0 LIMIT ?1",
                                -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int(st, 1, GRACE_BATCH);
    while (n < GRACE_BATCH && sqlite3_step(st) == SQLITE_ROW) {
      snprintf(due[n].platform, sizeof due[n].platform, "%s",
               sqlite3_column_text(st, 0));
      snprintf(due[n].plan, sizeof due[n].plan, "%s",
               sqlite3_column_text(st, 1));
      due[n].failed_at = sqlite3_column_int64(st, 2);
      n++;
    }
  }
  sqlite3_finalize(st);
  rc = SQLITE_OK;
  for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
    nno_plan_limits l;
    memset(&l, 0, sizeof l);
    l.size = sizeof l;
    if (billing_plan_limits(due[i].plan, &l) != 0 &&
        billing_plan_limits(billing_default_plan(), &l) != 0)
      continue; /* no plan to read a grace from: never suspended blind */
    if (due[i].failed_at + (int64_t)l.grace_days * 86400 > now) continue;
    char status[16];
    if (reg->platform_status(due[i].platform, status, sizeof status) != 0 ||
        strcmp(status, "active") != 0)
      continue; /* suspended by the operator, or gone: not billing's */
    int r = reg->platform_set_status(due[i].platform, "suspended", "billing",
                                     "payment failed");
    if (r != 0) {
      api->log(g_bill.p, NNO_LOG_WARN,
               "billing: platform %s: cannot suspend: %s", due[i].platform,
               api->strerror(r));
      continue;
    }
    rc = exec1(db,
               "UPDATE accounts SET suspended_by_billing = 1, updated_at = ?3"
               " WHERE platform = ?1",
               due[i].platform, NULL, now);
    api->log(g_bill.p, NNO_LOG_INFO,
             "billing: platform %s suspended: payment failed %u day(s) of "
             "grace ago",
             due[i].platform, l.grace_days);
  }
  free(due);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}
