/* Durable jobs for the payment provider (table `outbox` in billing.db).
 *
 * Every worker ticks every stripe.poll_ms: in one BEGIN IMMEDIATE
 * transaction it takes up to OUTBOX_INFLIGHT due jobs whose lease has
 * expired and sets their lease (sqlite's write lock serialises the
 * workers, so two of them never send one job at once), then sends them
 * through the driver. A job keeps its id — its Idempotency-Key — across
 * attempts. The outcome is recorded in one transaction with its effect
 * (provider_apply): sent; retried after an exponential backoff with jitter
 * (429, 409, 5xx, network errors, timeouts; Retry-After respected); or
 * failed with the provider's error (other 4xx), listed by
 * GET /api/v1/billing/outbox?state=failed and sent again after
 * POST /api/v1/billing/outbox/{id}/retry. A worker that dies with a lease
 * leaves the job to whoever ticks after the lease ends.
 *
 * Jobs of one platform other than usage go out in the order they were
 * stored, each after the one before was sent: a subscription waits for
 * its customer. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include <nno/sdk/json.h>
#include <nno/sdk/problem.h>
#include <nno/sdk/request.h>

#include "driver.h"
#include "internal.h"

/* Jobs one worker has in flight at most. */
#define OUTBOX_INFLIGHT 8
/* How long the loop waits for billing.db's write lock in a tick (the next
 * tick tries again), and elsewhere. */
#define TICK_BUSY_MS 100
#define BUSY_MS 5000

static sqlite3 *g_db;
static nno_timer *g_tick, *g_scan, *g_grace;
static size_t g_inflight;

int64_t billing_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

sqlite3 *billing_outbox_db(void) { return g_db; }

void billing_outbox_new_id(const char *kind, const char *platform, char *out,
                           size_t cap) {
  snprintf(out, cap, "%s-%s-%" PRId64 "-%08" PRIx32, kind, platform,
           billing_now_ms(), randombytes_random());
}

int billing_outbox_add(sqlite3 *db, const char *id, const char *kind,
                       const char *platform, const char *body_json) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(
      db,
      "INSERT OR IGNORE INTO outbox (id, kind, platform, body, created_at)"
      " VALUES (?1, ?2, ?3, ?4, ?5)",
      -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, platform, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, body_json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, billing_now_ms() / 1000);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

static void job_free(outbox_job *j) {
  if (!j) return;
  free(j->body);
  free(j);
}

/* 1 if some job may be due at `now` (a read: WAL readers never wait). */
static int due(int64_t now) {
  sqlite3_stmt *st = NULL;
  int found = 0;
  if (sqlite3_prepare_v2(g_db,
                         "SELECT 1 FROM outbox WHERE state = 'pending'"
                         " AND next_try_ms <= ?1 AND lease_until_ms < ?1"
                         " LIMIT 1",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, now);
    found = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  return found;
}

/* Take due jobs under a lease. The lease outlasts the longest send (a
 * subscription change is two calls). */
static size_t lease(outbox_job **out, size_t max) {
  int64_t now = billing_now_ms();
  int64_t lease_ms = 3 * g_pcfg.timeout_ms + 5000;
  size_t n = 0;
  if (!due(now)) return 0; /* the common case: no write lock taken */
  sqlite3_busy_timeout(g_db, TICK_BUSY_MS);
  int rc = sqlite3_exec(g_db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  sqlite3_busy_timeout(g_db, BUSY_MS);
  if (rc != SQLITE_OK) return 0; /* another worker holds it: next tick */
  sqlite3_stmt *sel = NULL, *upd = NULL;
  rc = sqlite3_prepare_v2(
      g_db,
      "SELECT o.id, o.kind, o.platform, o.body FROM outbox o"
      " WHERE o.state = 'pending' AND o.next_try_ms <= ?1"
      "  AND o.lease_until_ms < ?1"
      "  AND (o.kind = 'usage' OR NOT EXISTS (SELECT 1 FROM outbox e"
      "   WHERE e.state IN ('pending', 'failed') AND e.platform = o.platform"
      "   AND e.kind != 'usage' AND e.rowid < o.rowid))"
      " ORDER BY o.next_try_ms, o.rowid LIMIT ?2",
      -1, &sel, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(g_db,
                            "UPDATE outbox SET lease_until_ms = ?2,"
                            " attempts = attempts + 1 WHERE id = ?1",
                            -1, &upd, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(sel, 1, now);
    sqlite3_bind_int64(sel, 2, (sqlite3_int64)max);
    while (n < max && sqlite3_step(sel) == SQLITE_ROW) {
      outbox_job *j = calloc(1, sizeof *j);
      const char *body = (const char *)sqlite3_column_text(sel, 3);
      if (!j || !(j->body = strdup(body ? body : "{}"))) {
        free(j);
        break;
      }
      snprintf(j->id, sizeof j->id, "%s", sqlite3_column_text(sel, 0));
      snprintf(j->kind, sizeof j->kind, "%s", sqlite3_column_text(sel, 1));
      snprintf(j->platform, sizeof j->platform, "%s",
               sqlite3_column_text(sel, 2));
      sqlite3_bind_text(upd, 1, j->id, -1, SQLITE_STATIC);
      sqlite3_bind_int64(upd, 2, now + lease_ms);
      if (sqlite3_step(upd) != SQLITE_DONE) rc = SQLITE_ERROR;
      sqlite3_reset(upd);
      out[n++] = j;
      if (rc != SQLITE_OK) break;
    }
  }
  sqlite3_finalize(sel);
  sqlite3_finalize(upd);
  if (rc == SQLITE_OK) rc = sqlite3_exec(g_db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    sqlite3_exec(g_db, "ROLLBACK", NULL, NULL, NULL);
    for (size_t i = 0; i < n; i++) job_free(out[i]);
    return 0;
  }
  return n;
}

static void tick(nno_timer *t, void *ud) {
  (void)t;
  (void)ud;
  if (!g_db || g_inflight >= OUTBOX_INFLIGHT) return;
  outbox_job *jobs[OUTBOX_INFLIGHT];
  size_t n = lease(jobs, OUTBOX_INFLIGHT - g_inflight);
  for (size_t i = 0; i < n; i++) {
    g_inflight++;
    provider_send(jobs[i]);
  }
}

/* The delay before attempt `attempts` + 1: base·2^(attempts-1), at most
 * max, drawn in [d/2, d]; never less than what the provider asked. */
static int64_t backoff_ms(int64_t attempts, uint64_t retry_after_ms) {
  int64_t d = g_pcfg.backoff_base_ms;
  for (int64_t i = 1; i < attempts && d < g_pcfg.backoff_max_ms; i++) d *= 2;
  if (d > g_pcfg.backoff_max_ms) d = g_pcfg.backoff_max_ms;
  int64_t half = d / 2;
  d = half + (half > 0 ? (int64_t)randombytes_uniform(
                             (uint32_t)(half > 0x7fffffff ? 0x7fffffff
                                                          : half) + 1)
                       : 0);
  if ((int64_t)retry_after_ms > d) d = (int64_t)retry_after_ms;
  return d;
}

void billing_outbox_done(outbox_job *job, const drv_result *res) {
  if (g_inflight) g_inflight--;
  if (!g_db) { /* stopping: the lease runs out, the job is taken again */
    job_free(job);
    return;
  }
  int64_t now = billing_now_ms();
  int rc = sqlite3_exec(g_db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  sqlite3_stmt *st = NULL;
  int64_t attempts = 0;
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(g_db, "SELECT attempts FROM outbox WHERE id = ?1",
                            -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, job->id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) attempts = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  st = NULL;
  int64_t delay = 0;
  if (rc == SQLITE_OK) {
    const char *sql;
    if (res->outcome == DRV_OK)
      sql = "UPDATE outbox SET state = 'sent', sent_at = ?2,"
            " lease_until_ms = 0, last_error = '' WHERE id = ?1";
    else if (res->outcome == DRV_RETRY)
      sql = "UPDATE outbox SET next_try_ms = ?3, lease_until_ms = 0,"
            " last_error = ?4 WHERE id = ?1";
    else
      sql = "UPDATE outbox SET state = 'failed', lease_until_ms = 0,"
            " last_error = ?4 WHERE id = ?1";
    delay = backoff_ms(attempts, res->retry_after_ms);
    rc = sqlite3_prepare_v2(g_db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
      sqlite3_bind_text(st, 1, job->id, -1, SQLITE_STATIC);
      if (res->outcome == DRV_OK) sqlite3_bind_int64(st, 2, now / 1000);
      if (res->outcome == DRV_RETRY) sqlite3_bind_int64(st, 3, now + delay);
      if (res->outcome != DRV_OK)
        sqlite3_bind_text(st, 4, res->error, -1, SQLITE_STATIC);
      rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
  }
  if (rc == SQLITE_OK && res->outcome == DRV_OK)
    rc = provider_apply(g_db, job, res);
  if (rc == SQLITE_OK) rc = sqlite3_exec(g_db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    /* Unrecorded: the lease runs out and the job goes again under the
     * same Idempotency-Key, which the provider answers as the first. */
    api->log(g_bill.p, NNO_LOG_WARN,
             "billing: outbox job %s: outcome not recorded: %s", job->id,
             sqlite3_errmsg(g_db));
    sqlite3_exec(g_db, "ROLLBACK", NULL, NULL, NULL);
  } else if (res->outcome == DRV_RETRY) {
    api->log(g_bill.p, NNO_LOG_INFO,
             "billing: outbox job %s (attempt %" PRId64 ") retried in %" PRId64
             " ms: %s",
             job->id, attempts, delay, res->error);
  } else if (res->outcome == DRV_FAIL) {
    api->log(g_bill.p, NNO_LOG_WARN, "billing: outbox job %s failed: %s",
             job->id, res->error);
  }
  job_free(job);
}

/* ---- the operator API ------------------------------------------------- */

static json_t *job_json(sqlite3_stmt *st) {
  return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:I}", "id",
                   sqlite3_column_text(st, 0), "kind",
                   sqlite3_column_text(st, 1), "platform",
                   sqlite3_column_text(st, 2), "state",
                   sqlite3_column_text(st, 3), "attempts",
                   (json_int_t)sqlite3_column_int64(st, 4), "last_error",
                   sqlite3_column_text(st, 5), "created_at",
                   (json_int_t)sqlite3_column_int64(st, 6), "sent_at",
                   (json_int_t)sqlite3_column_int64(st, 7), "next_try_ms",
                   (json_int_t)sqlite3_column_int64(st, 8));
}

#define JOB_COLUMNS                                                       \
  "id, kind, platform, state, attempts, last_error, created_at, sent_at," \
  " next_try_ms"

/* GET /api/v1/billing/outbox[?state=pending|sent|failed][&limit=N]: the
 * newest jobs first, at most `limit` (100, up to 500). */
static int h_list(nno_req *req, void *ud) {
  (void)ud;
  char state[16], lim[8];
  int has = nno_query_copy(req, "state", state, sizeof state);
  if (has < 0) return NNO_OK;
  if (has && strcmp(state, "pending") && strcmp(state, "sent") &&
      strcmp(state, "failed"))
    return nno_problem(req, 400, "state",
                       "parameter \"state\": expected pending, sent or failed");
  int limit = 100;
  int hl = nno_query_copy(req, "limit", lim, sizeof lim);
  if (hl < 0) return NNO_OK;
  if (hl) {
    char *end;
    long v = strtol(lim, &end, 10);
    if (*end || v < 1 || v > 500)
      return nno_problem(req, 422, "limit",
                         "field \"limit\": expected an integer from 1 to 500");
    limit = (int)v;
  }
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(
      g_db,
      "SELECT " JOB_COLUMNS " FROM outbox WHERE ?1 = '' OR state = ?1"
      " ORDER BY rowid DESC LIMIT ?2",
      -1, &st, NULL);
  json_t *items = json_array();
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, has ? state : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
      json_array_append_new(items, job_json(st));
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) {
    json_decref(items);
    return nno_problem_retry(req, 503, 1, "billing store busy");
  }
  return nno_send_json(req, 200, json_pack("{s:o}", "items", items));
}

/* POST /api/v1/billing/outbox/{id}/retry: a failed job goes again (same
 * id, so the same Idempotency-Key) at the next tick. */
static int h_retry(nno_req *req, void *ud) {
  (void)ud;
  char id[192];
  if (nno_param_copy(req, "id", id, sizeof id) != 0)
    return nno_problem(req, 404, NULL, "no such outbox job");
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(
      g_db,
      "UPDATE outbox SET state = 'pending', attempts = 0, next_try_ms = 0,"
      " lease_until_ms = 0, last_error = '' WHERE id = ?1 AND state = 'failed'",
      -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_OK)
    return nno_problem_retry(req, 503, 1, "billing store busy");
  int changed = sqlite3_changes(g_db);
  st = NULL;
  json_t *job = NULL;
  if (sqlite3_prepare_v2(g_db,
                         "SELECT " JOB_COLUMNS " FROM outbox WHERE id = ?1", -1,
                         &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) job = job_json(st);
  }
  sqlite3_finalize(st);
  if (!job) return nno_problem(req, 404, NULL, "no such outbox job");
  if (!changed) {
    json_decref(job);
    return nno_problem(req, 409, NULL, "only a failed job can be retried");
  }
  char actor[NNO_ACTOR_MAX];
  nno_caller_actor(req, actor, sizeof actor);
  if (g_bill.registry) {
    nno_str rid = api->req_id(req);
    char rids[128];
    snprintf(rids, sizeof rids, "%.*s", (int)rid.len, rid.ptr);
    char target[256];
    snprintf(target, sizeof target, "outbox:%s", id);
    g_bill.registry->audit_add(actor, "billing.outbox.retry", target, rids,
                               NULL);
  }
  return nno_send_json(req, 200, job);
}

/* ---- lifecycle ----------------------------------------------------------- */

static void usage_scan(nno_timer *t, void *ud) {
  (void)t;
  (void)ud;
  if (g_db) provider_usage_scan(g_db);
}

static void grace(nno_timer *t, void *ud) {
  (void)t;
  (void)ud;
  if (g_db) provider_grace_check();
}

int billing_outbox_init(char *err, size_t cap) {
  if (billing_store_open(&g_db, err, cap)) return -1;
  int rc = api->route_add(g_bill.p, "GET", "/api/v1/billing/outbox", h_list,
                          NULL);
  if (!rc)
    rc = api->route_add(g_bill.p, "POST", "/api/v1/billing/outbox/{id}/retry",
                        h_retry, NULL);
  if (rc) {
    snprintf(err, cap, "billing: outbox routes: %s", api->strerror(rc));
    return -1;
  }
  return 0;
}

void billing_outbox_ready(void) {
  /* At a random offset, so the workers do not all tick at once. */
  uint64_t first = (uint64_t)g_pcfg.poll_ms / 2 +
                   randombytes_uniform((uint32_t)g_pcfg.poll_ms);
  api->timer_start(g_bill.p, first, (uint64_t)g_pcfg.poll_ms, tick, NULL,
                   &g_tick);
  api->timer_start(g_bill.p, (uint64_t)g_pcfg.usage_scan_ms / 2,
                   (uint64_t)g_pcfg.usage_scan_ms, usage_scan, NULL, &g_scan);
  api->timer_start(g_bill.p, (uint64_t)g_pcfg.grace_check_ms / 2,
                   (uint64_t)g_pcfg.grace_check_ms, grace, NULL, &g_grace);
}

/* The host has stopped the timers and canceled the calls in flight (their
 * outcomes recorded as retries) before fini. */
void billing_outbox_fini(void) {
  g_tick = g_scan = g_grace = NULL;
  sqlite3_close_v2(g_db);
  g_db = NULL;
}
