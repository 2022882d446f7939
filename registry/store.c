/* The registry's sqlite store (see store.h): shared statement helpers,
 * opening, migrations, transactions, settings, audit, the changes log and
 * idempotency records. The data model's queries are in store_model.c. */
#include "store.h"
#include "store_int.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------- */

/* Map a sqlite result code (extended codes are on) to a store_rc. */
int store__map_rc(sqlite3 *db, int rc) {
  switch (rc) {
  case SQLITE_OK:
  case SQLITE_DONE:
  case SQLITE_ROW: return STORE_OK;
  case SQLITE_CONSTRAINT_PRIMARYKEY:
  case SQLITE_CONSTRAINT_UNIQUE: return STORE_EXISTS;
  case SQLITE_CONSTRAINT_FOREIGNKEY: return STORE_FK;
  case SQLITE_CONSTRAINT_TRIGGER: {
    const char *m = sqlite3_errmsg(db);
    return m && strstr(m, "tenant cycle")     ? STORE_CYCLE
           : m && strstr(m, "tenant retired") ? STORE_RETIRED
                                              : STORE_INVALID;
  }
  default: break;
  }
  switch (rc & 0xff) {
  case SQLITE_CONSTRAINT: return STORE_INVALID;
  case SQLITE_BUSY:
  case SQLITE_LOCKED: return STORE_BUSY;
  default: return STORE_ERROR;
  }
}

int store__prep(sqlite3 *db, const char *sql, sqlite3_stmt **st) {
  *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
  return rc == SQLITE_OK ? STORE_OK : store__map_rc(db, rc);
}

/* Bind by a format: 's' text (NULL binds NULL), 'i' int64. */
static int store__vbind(sqlite3_stmt *st, const char *fmt, va_list ap) {
  for (int i = 0; fmt[i]; i++) {
    int rc;
    if (fmt[i] == 's') {
      const char *s = va_arg(ap, const char *);
      rc = s ? sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT)
             : sqlite3_bind_null(st, i + 1);
    } else {
      rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
    }
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

/* Prepare `sql` and bind its values: the statement is ready to step. */
int store__query(sqlite3 *db, sqlite3_stmt **st, const char *sql,
                 const char *fmt, ...) {
  int rc = store__prep(db, sql, st);
  if (rc) return rc;
  va_list ap;
  va_start(ap, fmt);
  int brc = store__vbind(*st, fmt, ap);
  va_end(ap);
  if (brc != SQLITE_OK) {
    rc = store__map_rc(db, brc);
    sqlite3_finalize(*st);
    *st = NULL;
  }
  return rc;
}

/* Run a statement that returns no rows; *changes (if given) receives the
 * number of rows it changed. */
int store__run(sqlite3 *db, int *changes, const char *sql, const char *fmt,
               ...) {
  sqlite3_stmt *st;
  int rc = store__prep(db, sql, &st);
  if (rc) return rc;
  va_list ap;
  va_start(ap, fmt);
  int src = store__vbind(st, fmt, ap);
  va_end(ap);
  if (src == SQLITE_OK) {
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) src = SQLITE_DONE;
  }
  rc = src == SQLITE_DONE ? STORE_OK : store__map_rc(db, src);
  if (changes) *changes = sqlite3_changes(db);
  sqlite3_finalize(st);
  return rc;
}

/* Step a row query: STORE_OK with a row, STORE_NOTFOUND at the end. */
int store__next_row(sqlite3 *db, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) return STORE_OK;
  if (rc == SQLITE_DONE) return STORE_NOTFOUND;
  return store__map_rc(db, rc);
}

void store__col(sqlite3_stmt *st, int i, char *out, size_t cap) {
  const unsigned char *s = sqlite3_column_text(st, i);
  snprintf(out, cap, "%s", s ? (const char *)s : "");
}

const char *store__col_str(sqlite3_stmt *st, int i) {
  return (const char *)sqlite3_column_text(st, i);
}

/* ---- semver collation -------------------------------------------------- */

/* Compare one dot-separated pre-release identifier. */
static int cmp_ident(const char *a, size_t na, const char *b, size_t nb) {
  int anum = na > 0, bnum = nb > 0;
  for (size_t i = 0; i < na; i++) anum &= a[i] >= '0' && a[i] <= '9';
  for (size_t i = 0; i < nb; i++) bnum &= b[i] >= '0' && b[i] <= '9';
  if (anum && bnum) {
    if (na != nb) return na < nb ? -1 : 1; /* no leading zeros in semver */
  } else if (anum != bnum) {
    return anum ? -1 : 1; /* numeric identifiers sort first */
  }
  int c = memcmp(a, b, na < nb ? na : nb);
  return c ? c : (na < nb ? -1 : na > nb);
}

/* SemVer 2.0 precedence; ties broken bytewise so the order is total. */
static int semver_collate(void *ud, int na, const void *va, int nb,
                          const void *vb) {
  const char *a = va, *b = vb, *ae = a + na, *be = b + nb;
  /* major.minor.patch, numerically */
  for (int part = 0; part < 3; part++) {
    unsigned long long x = 0, y = 0;
    while (a < ae && *a >= '0' && *a <= '9')
      x = x * 10 + (unsigned)(*a++ - '0');
    while (b < be && *b >= '0' && *b <= '9')
      y = y * 10 + (unsigned)(*b++ - '0');
    if (x != y) return x < y ? -1 : 1;
    if (part < 2) {
      if (a < ae && *a == '.') a++;
      if (b < be && *b == '.') b++;
    }
  }
  const char *ap = a < ae && *a == '-' ? a + 1 : NULL;
  const char *bp = b < be && *b == '-' ? b + 1 : NULL;
  if (!ap != !bp) return ap ? -1 : 1; /* a pre-release sorts first */
  while (ap && bp) {
    const char *aend = ap, *bend = bp;
    while (aend < ae && *aend != '.' && *aend != '+') aend++;
    while (bend < be && *bend != '.' && *bend != '+') bend++;
    int c = cmp_ident(ap, (size_t)(aend - ap), bp, (size_t)(bend - bp));
    if (c) return c;
    int amore = aend < ae && *aend == '.', bmore = bend < be && *bend == '.';
    if (amore != bmore) return amore ? 1 : -1;
    ap = amore ? aend + 1 : NULL;
    bp = bmore ? bend + 1 : NULL;
  }
  int c = memcmp(va, vb, (size_t)(na < nb ? na : nb));
  return c ? c : (na < nb ? -1 : na > nb);
}

/* ---- opening and migrations -------------------------------------------- */

int store_latest_version(void) {
  return store_migrations[store_nmigrations - 1].version;
}

static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t cap) {
  sqlite3_stmt *st;
  int rc = store__prep(db, sql, &st);
  if (rc) return rc;
  rc = store__next_row(db, st);
  if (rc == STORE_OK) store__col(st, 0, out, cap);
  sqlite3_finalize(st);
  return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int store_open(const char *path, sqlite3 **out, char *err, size_t errlen) {
  sqlite3 *db = NULL;
  char mode[16] = "";
  *out = NULL;
  /* Create the file owner-only; sqlite gives -wal and -shm the same mode.
   * O_EXCL: only when it does not exist yet. Closing a descriptor of a file
   * drops every POSIX lock this process holds on it, including those of
   * another connection already open on it (another plugin's): sqlite would
   * then believe nobody uses the WAL, and a closing connection elsewhere
   * would delete it under the running host. */
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) close(fd);
  int rc = sqlite3_open_v2(
      path, &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "cannot open %s: %s", path,
             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    goto fail;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);
  rc =
      sqlite3_create_collation(db, "semver", SQLITE_UTF8, NULL, semver_collate);
  if (rc != SQLITE_OK) goto fail_db;
  /* Switching to WAL takes an exclusive lock for a moment; workers start
   * together, so retry a busy answer for up to the busy timeout. */
  for (int i = 0; i < 100; i++) {
    rc = pragma_text(db, "PRAGMA journal_mode=WAL", mode, sizeof mode);
    if (rc != STORE_BUSY) break;
    usleep(50 * 1000);
  }
  if (rc) goto fail_db;
  if (strcmp(mode, "wal") != 0) {
    snprintf(err, errlen, "cannot open %s: journal_mode is \"%s\", not wal",
             path, mode);
    goto fail;
  }
  if (sqlite3_exec(db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;", NULL,
                   NULL, NULL) != SQLITE_OK)
    goto fail_db;
  if (pragma_text(db, "PRAGMA foreign_keys", mode, sizeof mode) ||
      strcmp(mode, "1") != 0) {
    snprintf(err, errlen, "cannot open %s: foreign keys are unavailable", path);
    goto fail;
  }
  *out = db;
  return STORE_OK;
fail_db:
  snprintf(err, errlen, "cannot open %s: %s", path, sqlite3_errmsg(db));
fail:
  sqlite3_close(db);
  return STORE_ERROR;
}

int store_schema_version(sqlite3 *db, int *out) {
  sqlite3_stmt *st;
  *out = 0;
  /* An empty database has no schema_migrations table: version 0. */
  int rc = store__query(db, &st,
                        "SELECT 1 FROM sqlite_schema WHERE type = 'table'"
                        " AND name = 'schema_migrations'",
                        "");
  if (rc) return rc;
  rc = store__next_row(db, st);
  sqlite3_finalize(st);
  if (rc == STORE_NOTFOUND) return STORE_OK;
  if (rc) return rc;
  rc = store__query(
      db, &st, "SELECT coalesce(max(version), 0) FROM schema_migrations", "");
  if (rc) return rc;
  rc = store__next_row(db, st);
  if (rc == STORE_OK) *out = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return rc;
}

int store_migrate_to(sqlite3 *db, int target, char *err, size_t errlen) {
  char now[STORE_TIME_MAX + 1];
  int cur = 0;
  int rc = store_begin(db);
  if (rc) {
    snprintf(err, errlen, "cannot lock core.db for migrations: %s",
             sqlite3_errmsg(db));
    return rc;
  }
  rc = store__run(db, NULL,
                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  " version INTEGER NOT NULL PRIMARY KEY CHECK (version >= 1),"
                  " applied_at TEXT NOT NULL) STRICT",
                  "");
  if (!rc) rc = store_schema_version(db, &cur);
  if (rc) {
    snprintf(err, errlen, "cannot read the schema version of core.db: %s",
             sqlite3_errmsg(db));
    goto fail;
  }
  if (cur > store_latest_version()) {
    snprintf(err, errlen,
             "core.db schema version %d is newer than this host supports "
             "(%d)",
             cur, store_latest_version());
    rc = STORE_INVALID;
    goto fail;
  }
  store_now(now);
  for (size_t i = 0; i < store_nmigrations; i++) {
    const store_migration *m = &store_migrations[i];
    if (m->version <= cur || m->version > target) continue;
    char *msg = NULL;
    int src = sqlite3_exec(db, m->sql, NULL, NULL, &msg);
    if (src != SQLITE_OK) {
      snprintf(err, errlen, "core.db migration %d (%s) failed: %s", m->version,
               m->name, msg ? msg : sqlite3_errstr(src));
      sqlite3_free(msg);
      rc = store__map_rc(db, src);
      goto fail;
    }
    rc = store__run(db, NULL,
                    "INSERT INTO schema_migrations (version, applied_at)"
                    " VALUES (?, ?)",
                    "is", (int64_t)m->version, now);
    if (rc) {
      snprintf(err, errlen, "core.db migration %d: %s", m->version,
               sqlite3_errmsg(db));
      goto fail;
    }
  }
  rc = store_commit(db);
  if (rc) {
    snprintf(err, errlen, "cannot commit core.db migrations: %s",
             sqlite3_errmsg(db));
    goto fail;
  }
  return STORE_OK;
fail:
  store_rollback(db);
  return rc;
}

int store_migrate(sqlite3 *db, char *err, size_t errlen) {
  return store_migrate_to(db, store_latest_version(), err, errlen);
}

/* ---- transactions and time --------------------------------------------- */

int store_begin(sqlite3 *db) {
  return store__run(db, NULL, "BEGIN IMMEDIATE", "");
}
int store_begin_read(sqlite3 *db) { return store__run(db, NULL, "BEGIN", ""); }
int store_commit(sqlite3 *db) { return store__run(db, NULL, "COMMIT", ""); }

void store_rollback(sqlite3 *db) {
  if (!sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

void store_time(int64_t t, char out[STORE_TIME_MAX + 1]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, STORE_TIME_MAX + 1, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void store_now(char out[STORE_TIME_MAX + 1]) {
  store_time((int64_t)time(NULL), out);
}

/* ---- settings ---------------------------------------------------------- */

int store__scalar(sqlite3 *db, const char *sql, const char *key, char *out,
                  size_t cap) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st, sql, "s", key);
  if (rc) return rc;
  rc = store__next_row(db, st);
  if (rc == STORE_OK) store__col(st, 0, out, cap);
  sqlite3_finalize(st);
  return rc;
}

int store_setting_get(sqlite3 *db, const char *key, char *out, size_t cap) {
  return store__scalar(db, "SELECT value FROM settings WHERE key = ?", key,
                       out, cap);
}

int store_setting_put(sqlite3 *db, const char *key, const char *value) {
  char now[STORE_TIME_MAX + 1];
  store_now(now);
  return store__run(
      db, NULL,
      "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)"
      " ON CONFLICT (key) DO UPDATE SET value = ?2, updated_at = ?3",
      "sss", key, value, now);
}

int store_setting_add(sqlite3 *db, const char *key, const char *value) {
  char now[STORE_TIME_MAX + 1];
  store_now(now);
  return store__run(
      db, NULL,
      "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)", "sss",
      key, value, now);
}

/* ---- audit ------------------------------------------------------------- */

int store_audit_add(sqlite3 *db, const char *actor, const char *action,
                    const char *target, const char *request_id,
                    const char *detail) {
  char now[STORE_TIME_MAX + 1];
  store_now(now);
  return store__run(db, NULL,
                    "INSERT INTO audit (at, actor, action, target, request_id,"
                    " detail) VALUES (?, ?, ?, ?, ?, ?)",
                    "ssssss", now, actor, action, target, request_id, detail);
}

int store_audit_list(sqlite3 *db, const char *target, const char *action,
                     int64_t before, int limit, store_audit_cb cb, void *ud) {
  sqlite3_stmt *st;
  int rc =
      store__query(db, &st,
                   "SELECT seq, at, actor, action, target, request_id, detail"
                   " FROM audit WHERE (?1 IS NULL OR target = ?1)"
                   " AND (?2 IS NULL OR action = ?2)"
                   " AND (?3 <= 0 OR seq < ?3) ORDER BY seq DESC LIMIT ?4",
                   "ssii", target, action, before, (int64_t)limit);
  if (rc) return rc;
  while ((rc = store__next_row(db, st)) == STORE_OK) {
    store_audit a = {
        .seq = sqlite3_column_int64(st, 0),
        .at = store__col_str(st, 1),
        .actor = store__col_str(st, 2),
        .action = store__col_str(st, 3),
        .target = store__col_str(st, 4),
        .request_id = store__col_str(st, 5),
        .detail = store__col_str(st, 6),
    };
    if ((rc = cb(ud, &a)) != 0) break;
  }
  sqlite3_finalize(st);
  return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/* ---- the changes log --------------------------------------------------- */

int store_change_add(sqlite3 *db, const char *platform) {
  char now[STORE_TIME_MAX + 1];
  store_now(now);
  int rc = store__run(db, NULL,
                      "INSERT INTO changes (platform_id, at) VALUES (?, ?)",
                      "ss", platform, now);
  if (rc) return rc;
  int64_t seq = sqlite3_last_insert_rowid(db);
  return store__run(db, NULL, "DELETE FROM changes WHERE seq <= ?", "i",
                    seq - STORE_CHANGES_KEEP);
}

int store_change_bounds(sqlite3 *db, int64_t *min, int64_t *max) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st,
                        "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0)"
                        " FROM changes",
                        "");
  if (rc) return rc;
  rc = store__next_row(db, st);
  if (rc == STORE_OK) {
    *min = sqlite3_column_int64(st, 0);
    *max = sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  return rc;
}

int store_change_since(sqlite3 *db, int64_t after, store_change_cb cb,
                       void *ud) {
  sqlite3_stmt *st;
  int rc = store__query(db, &st,
                        "SELECT seq, platform_id FROM changes WHERE seq > ?"
                        " ORDER BY seq",
                        "i", after);
  if (rc) return rc;
  while ((rc = store__next_row(db, st)) == STORE_OK)
    if ((rc = cb(ud, sqlite3_column_int64(st, 0), store__col_str(st, 1))) != 0)
      break;
  sqlite3_finalize(st);
  return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/* ---- idempotency ------------------------------------------------------- */

int store_idem_get(sqlite3 *db, const char *key, const char *actor,
                   store_idem *out) {
  sqlite3_stmt *st;
  memset(out, 0, sizeof *out);
  int rc = store__query(
      db, &st,
      "SELECT key, actor, method, path, request_hash, status, body,"
      " location, created_at FROM idempotency"
      " WHERE key = ? AND actor = ?",
      "ss", key, actor);
  if (rc) return rc;
  rc = store__next_row(db, st);
  if (rc == STORE_OK) {
    store__col(st, 0, out->key, sizeof out->key);
    store__col(st, 1, out->actor, sizeof out->actor);
    store__col(st, 2, out->method, sizeof out->method);
    store__col(st, 3, out->path, sizeof out->path);
    store__col(st, 4, out->request_hash, sizeof out->request_hash);
    out->status = sqlite3_column_int(st, 5);
    store__col(st, 8, out->created_at, sizeof out->created_at);
    out->body = strdup(store__col_str(st, 6) ? store__col_str(st, 6) : "");
    if (sqlite3_column_type(st, 7) != SQLITE_NULL)
      out->location = strdup(store__col_str(st, 7));
    if (!out->body ||
        (sqlite3_column_type(st, 7) != SQLITE_NULL && !out->location)) {
      store_idem_clear(out);
      rc = STORE_ERROR;
    }
  }
  sqlite3_finalize(st);
  return rc;
}

void store_idem_clear(store_idem *e) {
  free(e->body);
  free(e->location);
  e->body = e->location = NULL;
}

int store_idem_put(sqlite3 *db, const store_idem *e) {
  char now[STORE_TIME_MAX + 1];
  store_now(now);
  return store__run(
      db, NULL,
      "INSERT INTO idempotency (key, actor, method, path, request_hash,"
      " status, body, location, created_at)"
      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      "sssssisss", e->key, e->actor, e->method, e->path, e->request_hash,
      (int64_t)e->status, e->body, e->location, now);
}

int store_idem_delete(sqlite3 *db, const char *key, const char *actor) {
  return store__run(db, NULL,
                    "DELETE FROM idempotency WHERE key = ? AND actor = ?", "ss",
                    key, actor);
}

int store_idem_prune(sqlite3 *db, const char *cutoff) {
  return store__run(db, NULL, "DELETE FROM idempotency WHERE created_at < ?",
                    "s", cutoff);
}
