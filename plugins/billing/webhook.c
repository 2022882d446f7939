/* POST /api/v1/billing/webhooks/stripe (scope public): Stripe's events.
 *
 * The raw body (at most WEBHOOK_BODY_MAX bytes, else 413) is verified
 * against the Stripe-Signature header with stripe.webhook_secret
 * (stripe_sig_verify: HMAC-SHA256 over "{t}.{body}", every v1 compared in
 * constant time, t within stripe.tolerance_s). Every refusal is the same
 * 400, so an answer tells a forger nothing. An event id is recorded in
 * webhook_events in the same transaction as its effect: a replay answers
 * 200 and changes nothing. Types not listed below answer 200, ignored.
 *
 *   customer.subscription.created|updated  the price's plan becomes the
 *       platform's (registry platform_set_plan, actor "billing")
 *   customer.subscription.deleted          back to the default plan
 *
 * The account is the one holding the object's customer (metadata is only
 * cross-checked); subscription events act on the tracked subscription
 * only (created adopts one when none is tracked), and one older than the
 * last applied (by the event's `created`) is ignored.
 *   invoice.payment_failed                 payment failed; suspended once
 *       the plan's grace_days have passed (provider_grace_check)
 *   invoice.paid                           payment ok; resumed if billing
 *       suspended it (never a suspension of the operator's)
 *
 * A registry change that fails rolls the event back and answers 503, so
 * Stripe sends it again. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <nno/sdk/json.h>
#include <nno/sdk/problem.h>

#include "driver.h"
#include "internal.h"

#define WEBHOOK_BODY_MAX (256 * 1024)
#define WEBHOOK_REFUSED "the Stripe-Signature header does not verify"

/* What applying an event did, stored as its outcome. */
typedef struct outcome {
  char text[64];
  int registry_failed; /* a registry call failed: roll back, 503 */
} outcome;

static int exec_acct(sqlite3 *db, const char *sql, const char *platform,
                     const char *s, int64_t n) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, platform, -1, SQLITE_STATIC);
    if (s) sqlite3_bind_text(st, 2, s, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, n);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
  }
  sqlite3_finalize(st);
  return rc;
}

/* An id field that may be expanded into an object. */
static const char *id_of(json_t *v) {
  if (json_is_object(v)) v = json_object_get(v, "id");
  return json_string_value(v);
}

/* The account an object belongs to: by its customer only (found 0 when
 * no account has it). metadata[platform] is the sender's word, never
 * enough to pick an account: it only has to agree when given (*mismatch
 * otherwise). */
static int account_of(sqlite3 *db, json_t *obj, billing_account *a,
                      int *mismatch) {
  memset(a, 0, sizeof *a);
  *mismatch = 0;
  const char *cus = id_of(json_object_get(obj, "customer"));
  if (!cus || !cus[0]) return SQLITE_OK;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(
      db, "SELECT platform FROM accounts WHERE customer = ?1 LIMIT 1", -1,
      &st, NULL);
  char platform[64] = "";
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, cus, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
      snprintf(platform, sizeof platform, "%s", sqlite3_column_text(st, 0));
    rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
  }
  sqlite3_finalize(st);
  if (rc || !platform[0]) return rc;
  const char *p = json_string_value(
      json_object_get(json_object_get(obj, "metadata"), "platform"));
  if (p && strcmp(p, platform) != 0) {
    *mismatch = 1;
    return SQLITE_OK;
  }
  return billing_account_get(db, platform, a);
}

/* The account's plan, then the registry's (which tells billing back
 * through platform_changed: the account already holds the plan, so no job
 * is queued for a change that came from the provider). */
static int set_plan(sqlite3 *db, const billing_account *a, const char *plan,
                    const char *reason, outcome *out) {
  int rc = exec_acct(db,
                     "UPDATE accounts SET plan = ?2, updated_at = ?3"
                     " WHERE platform = ?1",
                     a->platform, plan, billing_now_ms() / 1000);
  if (rc) return rc;
  if (strcmp(a->plan, plan) == 0) {
    snprintf(out->text, sizeof out->text, "unchanged");
    return SQLITE_OK;
  }
  const nno_registry_v1 *reg = billing_registry_writer();
  int r = reg ? reg->platform_set_plan(a->platform, plan, "billing", reason)
              : NNO_ENOTSUP;
  if (r != 0) {
    api->log(g_bill.p, NNO_LOG_WARN,
             "billing: platform %s: plan %s not set: %s", a->platform, plan,
             api->strerror(r));
    out->registry_failed = 1;
    return SQLITE_ABORT;
  }
  snprintf(out->text, sizeof out->text, "plan %s", plan);
  return SQLITE_OK;
}

static int subscription_set(sqlite3 *db, const billing_account *a,
                            const char *sub) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(
      db, "UPDATE accounts SET subscription = ?2 WHERE platform = ?1", -1, &st,
      NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, a->platform, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sub, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
  }
  sqlite3_finalize(st);
  return rc;
}

/* The event's `created` is remembered for the account: a subscription
 * event older than the last one applied changes nothing. */
static int sub_mark(sqlite3 *db, const billing_account *a, int64_t created) {
  if (created <= a->sub_event_at) return SQLITE_OK;
  return exec_acct(db,
                   "UPDATE accounts SET sub_event_at = ?3 WHERE platform = ?1",
                   a->platform, NULL, created);
}

static int sub_deleted(sqlite3 *db, const billing_account *a,
                       outcome *out) {
  int rc = subscription_set(db, a, "");
  if (rc) return rc;
  return set_plan(db, a, billing_default_plan(), "subscription deleted", out);
}

static int sub_changed(sqlite3 *db, json_t *obj, const billing_account *a,
                       outcome *out) {
  const char *status = json_string_value(json_object_get(obj, "status"));
  if (status && (strcmp(status, "canceled") == 0 ||
                 strcmp(status, "incomplete_expired") == 0))
    return sub_deleted(db, a, out);
  const char *sub = id_of(obj);
  json_t *item =
      json_array_get(json_object_get(json_object_get(obj, "items"), "data"), 0);
  const char *price = id_of(json_object_get(item, "price"));
  char plan[33];
  if (!sub || !price || billing_plan_by_price(price, plan, sizeof plan) != 0) {
    snprintf(out->text, sizeof out->text, "unknown price");
    return SQLITE_OK;
  }
  int rc = subscription_set(db, a, sub);
  if (rc) return rc;
  return set_plan(db, a, plan, "subscription updated", out);
}

/* A subscription event acts only on the account's tracked subscription:
 * `created` tracks one when none is; another subscription (a second one
 * created, or updates and deletions of one billing does not track) is
 * logged and ignored, never silently replacing the tracked one (whether
 * to cancel it is the operator's call). */
static int sub_event(sqlite3 *db, const char *type, json_t *obj,
                     int64_t created, const billing_account *a,
                     outcome *out) {
  const char *sub = id_of(obj);
  if (!sub || !sub[0] || strlen(sub) >= sizeof a->subscription) {
    snprintf(out->text, sizeof out->text, "ignored: no subscription id");
    return SQLITE_OK;
  }
  int tracked = a->subscription[0] && strcmp(sub, a->subscription) == 0;
  int adopt = !a->subscription[0] &&
              strcmp(type, "customer.subscription.created") == 0;
  if (!tracked && !adopt) {
    api->log(g_bill.p, NNO_LOG_WARN,
             "billing: platform %s: %s for subscription %.64s, not the one "
             "tracked (%s): ignored",
             a->platform, type, sub,
             a->subscription[0] ? a->subscription : "none");
    snprintf(out->text, sizeof out->text, "ignored: another subscription");
    return SQLITE_OK;
  }
  if (created < a->sub_event_at) {
    snprintf(out->text, sizeof out->text,
             "ignored: older than the last applied");
    return SQLITE_OK;
  }
  int rc = strcmp(type, "customer.subscription.deleted") == 0
               ? sub_deleted(db, a, out)
               : sub_changed(db, obj, a, out);
  if (rc == SQLITE_OK) rc = sub_mark(db, a, created);
  return rc;
}

static int payment_failed(sqlite3 *db, const billing_account *a,
                          outcome *out) {
  snprintf(out->text, sizeof out->text, "payment failed");
  return exec_acct(db,
                   "UPDATE accounts SET payment = 'failed', failed_at ="
                   " CASE WHEN payment = 'failed' AND failed_at > 0"
                   " THEN failed_at ELSE ?3 END, updated_at = ?3"
                   " WHERE platform = ?1",
                   a->platform, NULL, billing_now_ms() / 1000);
}

static int paid(sqlite3 *db, const billing_account *a, outcome *out) {
  int rc = exec_acct(db,
                     "UPDATE accounts SET payment = 'ok', failed_at = 0,"
                     " suspended_by_billing = 0, updated_at = ?3"
                     " WHERE platform = ?1",
                     a->platform, NULL, billing_now_ms() / 1000);
  if (rc || !a->suspended_by_billing) {
    snprintf(out->text, sizeof out->text, "paid");
    return rc;
  }
  const nno_registry_v1 *reg = billing_registry_writer();
  int r = reg ? reg->platform_set_status(a->platform, "active", "billing",
                                         "payment received")
              : NNO_ENOTSUP;
  if (r == NNO_EREFUSED) { /* the operator suspended it since: theirs */
    snprintf(out->text, sizeof out->text,
             "paid; suspended by the operator, left suspended");
    return SQLITE_OK;
  }
  if (r != 0 && r != NNO_ENOENT) {
    api->log(g_bill.p, NNO_LOG_WARN, "billing: platform %s: not resumed: %s",
             a->platform, api->strerror(r));
    out->registry_failed = 1;
    return SQLITE_ABORT;
  }
  snprintf(out->text, sizeof out->text, "paid, resumed");
  return SQLITE_OK;
}

static int apply(sqlite3 *db, const char *type, json_t *obj, int64_t created,
                 outcome *out) {
  int sub = strncmp(type, "customer.subscription.", 22) == 0;
  int inv = strcmp(type, "invoice.payment_failed") == 0 ||
            strcmp(type, "invoice.paid") == 0;
  if (!sub && !inv) {
    snprintf(out->text, sizeof out->text, "ignored");
    return SQLITE_OK;
  }
  billing_account a;
  int mismatch = 0;
  int rc = account_of(db, obj, &a, &mismatch);
  if (rc) return rc;
  if (mismatch) {
    snprintf(out->text, sizeof out->text,
             "ignored: metadata names another platform");
    return SQLITE_OK;
  }
  if (!a.found) {
    snprintf(out->text, sizeof out->text, "unknown customer");
    return SQLITE_OK;
  }
  if (strcmp(type, "customer.subscription.created") == 0 ||
      strcmp(type, "customer.subscription.updated") == 0 ||
      strcmp(type, "customer.subscription.deleted") == 0)
    return sub_event(db, type, obj, created, &a, out);
  if (strcmp(type, "invoice.payment_failed") == 0)
    return payment_failed(db, &a, out);
  if (strcmp(type, "invoice.paid") == 0) return paid(db, &a, out);
  snprintf(out->text, sizeof out->text, "ignored");
  return SQLITE_OK;
}

static int h_webhook(nno_req *req, void *ud) {
  (void)ud;
  nno_str body = api->req_body(req);
  if (body.len > WEBHOOK_BODY_MAX)
    return nno_problem(req, 413, NULL, "an event is at most %d bytes",
                       WEBHOOK_BODY_MAX);
  if (!g_pcfg.webhook_secret[0])
    return nno_problem(req, 503, NULL, "webhooks are not configured");
  nno_str sig = {"", 0};
  int have = api->req_header(req, "Stripe-Signature", &sig) == 0;
  int v = have ? stripe_sig_verify(sig.ptr, sig.len, g_pcfg.webhook_secret,
                                   body.ptr, body.len,
                                   billing_now_ms() / 1000, g_pcfg.tolerance_s)
               : SIG_MALFORMED;
  if (v != SIG_OK) {
    api->log(g_bill.p, NNO_LOG_INFO, "billing: webhook refused: %s",
             !have                  ? "no signature"
             : v == SIG_EXPIRED     ? "timestamp out of tolerance"
             : v == SIG_MISMATCH    ? "no signature matches"
                                    : "malformed signature");
    return nno_problem(req, 400, NULL, WEBHOOK_REFUSED);
  }
  json_t *ev = json_loadb(body.ptr, body.len, JSON_REJECT_DUPLICATES, NULL);
  const char *id = json_string_value(json_object_get(ev, "id"));
  const char *type = json_string_value(json_object_get(ev, "type"));
  json_t *obj = json_object_get(json_object_get(ev, "data"), "object");
  json_t *cr = json_object_get(ev, "created");
  int64_t created = json_is_integer(cr) ? (int64_t)json_integer_value(cr) : 0;
  if (!id || !type || !json_is_object(obj) || strlen(id) > 255 ||
      strlen(type) > 255) {
    json_decref(ev);
    return nno_problem(req, 400, NULL, "not a Stripe event");
  }
  sqlite3 *db = billing_outbox_db();
  outcome out;
  memset(&out, 0, sizeof out);
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  sqlite3_stmt *st = NULL;
  int replay = 0;
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(db,
                            "INSERT INTO webhook_events (id, type, received_at,"
                            " outcome) VALUES (?1, ?2, ?3, '')",
                            -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, billing_now_ms() / 1000);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
    else if ((rc & 0xff) == SQLITE_CONSTRAINT) replay = 1;
  }
  sqlite3_finalize(st);
  st = NULL;
  if (rc == SQLITE_OK) rc = apply(db, type, obj, created, &out);
  if (rc == SQLITE_OK &&
      sqlite3_prepare_v2(db,
                         "UPDATE webhook_events SET outcome = ?2 WHERE id = ?1",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, out.text, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
  }
  sqlite3_finalize(st);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    if (!replay && !out.registry_failed)
      api->log(g_bill.p, NNO_LOG_WARN, "billing: webhook %s not applied: %s",
               type, sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (replay) {
      json_decref(ev);
      return nno_send_json(req, 200,
                           json_pack("{s:b, s:b}", "received", 1,
                                     "duplicate", 1));
    }
    json_decref(ev);
    return nno_problem_retry(req, 503, 1, "the event could not be applied now");
  }
  api->log(g_bill.p, NNO_LOG_INFO, "billing: webhook %s: %s", type, out.text);
  json_t *ans = json_pack("{s:b, s:s}", "received", 1, "outcome", out.text);
  int failed = strcmp(type, "invoice.payment_failed") == 0;
  json_decref(ev);
  if (failed) provider_grace_check(); /* grace_days 0: at once */
  return nno_send_json(req, 200, ans);
}

int billing_webhook_init(char *err, size_t cap) {
  int rc = api->route_add(g_bill.p, "POST", "/api/v1/billing/webhooks/stripe",
                          h_webhook, NULL);
  if (rc) {
    snprintf(err, cap, "billing: webhook route: %s", api->strerror(rc));
    return -1;
  }
  return 0;
}
