/* DATA/billing.db: opened by each worker (and each pool job that writes)
 * with its own connection; WAL, so readers never wait for the flush. The
 * schema is a list of migrations applied in one transaction each. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "internal.h"

/* Append only: a migration, once released, never changes. */
static const char *const migrations[] = {
    /* 1: the whole first schema */
    /* Plans as data. `limits` is the plan's JSON object as the API takes
     * it; `version` is the ETag of the row. */
    "CREATE TABLE plans ("
    " name TEXT PRIMARY KEY"
    "  CHECK (length(name) BETWEEN 1 AND 32 AND name NOT GLOB '*[^a-z0-9-]*'),"
    " limits TEXT NOT NULL,"
    " provider_price TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " version INTEGER NOT NULL DEFAULT 1) STRICT;"
    /* The last value of each shared meter already counted into `usage`:
     * delta = (meter now) - value, within one epoch of the meter table. */
    "CREATE TABLE meter_marks ("
    " key BLOB PRIMARY KEY,"
    " epoch INTEGER NOT NULL,"
    " value INTEGER NOT NULL) STRICT;"
    /* Hourly buckets. class 0: requests admitted (the quota's count);
     * 1..5: requests ended with a status of that class. tenant and
     * package '' when not applicable. */
    "CREATE TABLE usage ("
    " platform TEXT NOT NULL,"
    " hour INTEGER NOT NULL," /* unix seconds of the hour's start, UTC */
    " tenant TEXT NOT NULL DEFAULT '',"
    " package TEXT NOT NULL DEFAULT '',"
    " class INTEGER NOT NULL,"
    " requests INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (platform, hour, tenant, package, class)) STRICT;"
    /* Storage bytes of each resource, sampled once an hour. */
    "CREATE TABLE storage_samples ("
    " platform TEXT NOT NULL,"
    " resource TEXT NOT NULL," /* "sql:default-notes" */
    " hour INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL,"
    " PRIMARY KEY (platform, resource, hour)) STRICT;"
    /* Users seen signed in per calendar month. */
    "CREATE TABLE active_users ("
    " platform TEXT NOT NULL,"
    " month TEXT NOT NULL," /* "2026-12" */
    " subject TEXT NOT NULL,"
    " first_seen INTEGER NOT NULL,"
    " PRIMARY KEY (platform, month, subject)) STRICT;"
    /* Each platform's account with the payment provider. */
    "CREATE TABLE accounts ("
    " platform TEXT PRIMARY KEY,"
    " plan TEXT NOT NULL,"
    " customer TEXT NOT NULL DEFAULT '',"     /* cus_... */
    " subscription TEXT NOT NULL DEFAULT '',"  /* sub_... */
    " payment TEXT NOT NULL DEFAULT 'ok'"
    "  CHECK (payment IN ('ok', 'failed', 'canceled')),"
    " failed_at INTEGER NOT NULL DEFAULT 0,"
    " suspended_by_billing INTEGER NOT NULL DEFAULT 0,"
    " updated_at INTEGER NOT NULL) STRICT;"
    /* Durable jobs for the provider. `id` is the Idempotency-Key sent with
     * every attempt (a usage bucket's id is also its meter event's
     * identifier), so a retry can never be counted twice. */
    "CREATE TABLE outbox ("
    " id TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL,"   /* customer, subscription, usage, cancel */
    " platform TEXT NOT NULL,"
    " body TEXT NOT NULL,"   /* JSON: what the job sends */
    " state TEXT NOT NULL DEFAULT 'pending'"
    "  CHECK (state IN ('pending', 'sent', 'failed')),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_try_ms INTEGER NOT NULL DEFAULT 0,"
    " lease_until_ms INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL,"
    " sent_at INTEGER NOT NULL DEFAULT 0) STRICT;"
    "CREATE INDEX outbox_due ON outbox (state, next_try_ms);"
    /* Webhook events already handled: a replay is acknowledged and
     * ignored. */
    "CREATE TABLE webhook_events ("
    " id TEXT PRIMARY KEY,"
    " type TEXT NOT NULL,"
    " received_at INTEGER NOT NULL,"
    " outcome TEXT NOT NULL) STRICT;",
    /* 2: the `created` time of the last subscription event applied to an
     * account: an older one arriving late changes nothing. */
    "ALTER TABLE accounts ADD COLUMN sub_event_at INTEGER NOT NULL"
    " DEFAULT 0;",
    /* 3: the provider the account's customer was queued for ("" before
     * this column): a platform created under `none`, or before billing,
     * is queued once for the provider configured later. */
    "ALTER TABLE accounts ADD COLUMN provider TEXT NOT NULL DEFAULT '';",
};

int billing_store_open(sqlite3 **db, char *err, size_t cap) {
  /* Owner-only when created here (see plugins/iam/store.c for O_EXCL). */
  int fd = open(g_bill.db_path,
                O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) close(fd);
  int rc = sqlite3_open_v2(g_bill.db_path, db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                               SQLITE_OPEN_NOMUTEX,
                           NULL);
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(*db, 1);
    sqlite3_busy_timeout(*db, 5000);
    for (int i = 0; i < 100; i++) { /* see plugins/iam/store.c */
      rc = sqlite3_exec(*db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
      if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) break;
      usleep(50 * 1000);
    }
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(*db, "PRAGMA synchronous=FULL;", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, cap, "cannot open %s: %s", g_bill.db_path,
             *db ? sqlite3_errmsg(*db) : "out of memory");
    sqlite3_close_v2(*db);
    *db = NULL;
    return -1;
  }
  return 0;
}

int billing_store_migrate(sqlite3 *db, char *err, size_t cap) {
  int rc = sqlite3_exec(db,
                        "BEGIN IMMEDIATE;"
                        "CREATE TABLE IF NOT EXISTS billing_schema ("
                        " version INTEGER NOT NULL) STRICT;",
                        NULL, NULL, NULL);
  sqlite3_stmt *st = NULL;
  int64_t have = 0;
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(
        db, "SELECT coalesce(max(version), 0) FROM billing_schema", -1, &st,
        NULL);
  if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    have = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  size_t n = sizeof migrations / sizeof *migrations;
  for (size_t i = (size_t)have; rc == SQLITE_OK && i < n; i++) {
    rc = sqlite3_exec(db, migrations[i], NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
      char sql[64];
      snprintf(sql, sizeof sql, "INSERT INTO billing_schema VALUES (%zu)",
               i + 1);
      rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
  }
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, cap, "billing.db: schema: %s", sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
  }
  return 0;
}
