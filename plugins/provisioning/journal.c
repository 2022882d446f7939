/* Our tables in DATA/core.db: prov_resources (what each platform has,
 * and in which state) and prov_journal (the intent of every control-plane
 * call, written before its first step and removed once it finished or
 * was undone), with their own schema version (prov_schema). */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nno/plugin.h>

#include "prov.h"

#define NOW "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"

static const char *const migrations[] = {
    /* 1: resources and the journal */
    "CREATE TABLE prov_resources ("
    " platform TEXT NOT NULL,"
    " incarnation TEXT NOT NULL DEFAULT '',"
    " stack TEXT NOT NULL,"
    " type TEXT NOT NULL CHECK (type IN ('sql', 'kv', 'blob')),"
    " name TEXT NOT NULL,"
    " driver TEXT NOT NULL DEFAULT 'local',"
    " state TEXT NOT NULL"
    "  CHECK (state IN ('pending', 'ready', 'failed', 'deleting')),"
    " error TEXT,"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL,"
    " PRIMARY KEY (platform, type, stack, name)) WITHOUT ROWID;"
    "CREATE TABLE prov_journal ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " op TEXT NOT NULL,"
    " platform TEXT NOT NULL,"
    " args TEXT NOT NULL,"
    " step TEXT NOT NULL DEFAULT 'intent',"
    " created_at TEXT NOT NULL);",
};
#define NMIG (sizeof migrations / sizeof migrations[0])

int pj_open(const char *path, sqlite3 **db, char *msg, size_t cap) {
  /* O_EXCL: closing a descriptor of a file other connections of this
   * process have open would drop their POSIX locks. */
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) close(fd);
  int rc = sqlite3_open_v2(path, db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                               SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                           NULL);
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(*db, 1);
    sqlite3_busy_timeout(*db, 5000);
    for (int i = 0; i < 100; i++) {
      rc = sqlite3_exec(*db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
      if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) break;
      usleep(50 * 1000);
    }
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(*db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    snprintf(msg, cap, "cannot open %s: %s", path,
             *db ? sqlite3_errmsg(*db) : "out of memory");
    sqlite3_close_v2(*db);
    *db = NULL;
    return NNO_EIO;
  }
  return 0;
}

int pj_migrate(sqlite3 *db, char *msg, size_t cap) {
  int rc = sqlite3_exec(db,
                        "BEGIN IMMEDIATE;"
                        "CREATE TABLE IF NOT EXISTS prov_schema ("
                        " version INTEGER NOT NULL) STRICT;",
                        NULL, NULL, NULL);
  sqlite3_stmt *st = NULL;
  int64_t have = 0;
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(
        db, "SELECT coalesce(max(version), 0) FROM prov_schema", -1, &st, NULL);
  if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    have = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (rc == SQLITE_OK && have > (int64_t)NMIG) {
    snprintf(msg, cap,
             "core.db provisioning schema version %lld is newer than this "
             "host supports (%zu)",
             (long long)have, NMIG);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return NNO_EVERSION;
  }
  for (size_t v = (size_t)have; rc == SQLITE_OK && v < NMIG; v++) {
    rc = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
      char sql[96];
      snprintf(sql, sizeof sql, "INSERT INTO prov_schema VALUES (%zu)", v + 1);
      rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
  }
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    snprintf(msg, cap, "cannot migrate core.db (provisioning): %s",
             sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return NNO_EIO;
  }
  return 0;
}

static int map(int src) {
  switch (src & 0xff) {
  case SQLITE_OK:
  case SQLITE_DONE:
  case SQLITE_ROW: return 0;
  case SQLITE_BUSY:
  case SQLITE_LOCKED: return NNO_EBUSY;
  case SQLITE_CONSTRAINT: return NNO_EINVAL;
  default: return NNO_EIO;
  }
}

/* Prepare `sql` and bind the NUL-terminated strings (NULL binds NULL). */
static int prep(sqlite3 *db, sqlite3_stmt **st, const char *sql, int n, ...) {
  int src = sqlite3_prepare_v2(db, sql, -1, st, NULL);
  if (src != SQLITE_OK) return map(src);
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) {
    const char *s = va_arg(ap, const char *);
    if (s) sqlite3_bind_text(*st, i + 1, s, -1, SQLITE_TRANSIENT);
  }
  va_end(ap);
  return 0;
}

static int run(sqlite3_stmt *st) {
  int src = sqlite3_step(st);
  sqlite3_finalize(st);
  return src == SQLITE_DONE ? 0 : map(src);
}

static void col(sqlite3_stmt *st, int i, char *out, size_t cap) {
  const unsigned char *t = sqlite3_column_text(st, i);
  snprintf(out, cap, "%s", t ? (const char *)t : "");
}

#define RES_COLS                                                              \
  "platform, incarnation, stack, type, name, driver, state, error,"          \
  " created_at, updated_at"

static void read_res(sqlite3_stmt *st, prov_resource *r) {
  col(st, 0, r->platform, sizeof r->platform);
  col(st, 1, r->incarnation, sizeof r->incarnation);
  col(st, 2, r->stack, sizeof r->stack);
  col(st, 3, r->type, sizeof r->type);
  col(st, 4, r->name, sizeof r->name);
  col(st, 5, r->driver, sizeof r->driver);
  col(st, 6, r->state, sizeof r->state);
  col(st, 7, r->error, sizeof r->error);
  col(st, 8, r->created_at, sizeof r->created_at);
  col(st, 9, r->updated_at, sizeof r->updated_at);
}

int pj_resource_get(sqlite3 *db, const char *platform, const char *stack,
                    const char *type, const char *name, prov_resource *out) {
  sqlite3_stmt *st;
  int rc = prep(db, &st,
                "SELECT " RES_COLS " FROM prov_resources WHERE platform = ?1"
                " AND stack = ?2 AND type = ?3 AND name = ?4",
                4, platform, stack, type, name);
  if (rc) return rc;
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) read_res(st, out);
  sqlite3_finalize(st);
  return src == SQLITE_ROW ? 1 : src == SQLITE_DONE ? 0 : map(src);
}

int pj_resource_put(sqlite3 *db, const char *platform, const char *incarnation,
                    const char *stack, const char *type, const char *name,
                    const char *state, const char *error) {
  sqlite3_stmt *st;
  int rc = prep(db, &st,
                "INSERT INTO prov_resources(" RES_COLS ") VALUES (?1,"
                " coalesce(?2, ''), ?3, ?4, ?5, 'local', ?6, ?7, " NOW ", " NOW
                ") ON CONFLICT (platform, type, stack, name) DO UPDATE SET"
                " state = excluded.state, error = excluded.error,"
                " incarnation = CASE WHEN excluded.incarnation = '' THEN"
                " incarnation ELSE excluded.incarnation END,"
                " updated_at = excluded.updated_at",
                7, platform, incarnation, stack, type, name, state, error);
  return rc ? rc : run(st);
}

int pj_resource_clash(sqlite3 *db, const char *platform, const char *stack,
                      const char *type, const char *name) {
  sqlite3_stmt *st;
  int rc = prep(db, &st,
                "SELECT 1 FROM prov_resources WHERE platform = ?1 AND type = ?3"
                " AND stack || '-' || name = ?2 || '-' || ?4"
                " AND NOT (stack = ?2 AND name = ?4) LIMIT 1",
                4, platform, stack, type, name);
  if (rc) return rc;
  int src = sqlite3_step(st);
  sqlite3_finalize(st);
  return src == SQLITE_ROW ? 1 : src == SQLITE_DONE ? 0 : map(src);
}

int pj_resource_del(sqlite3 *db, const char *platform, const char *stack,
                    const char *type, const char *name) {
  sqlite3_stmt *st;
  int rc = prep(db, &st,
                "DELETE FROM prov_resources WHERE platform = ?1 AND stack = ?2"
                " AND type = ?3 AND name = ?4",
                4, platform, stack, type, name);
  return rc ? rc : run(st);
}

int pj_resource_del_platform(sqlite3 *db, const char *platform) {
  sqlite3_stmt *st;
  int rc = prep(db, &st, "DELETE FROM prov_resources WHERE platform = ?1", 1,
                platform);
  return rc ? rc : run(st);
}

int pj_resource_list(sqlite3 *db, const char *platform, const char *after,
                     int limit, int (*fn)(void *, const prov_resource *),
                     void *ud) {
  sqlite3_stmt *st;
  int rc = prep(db, &st,
                "SELECT " RES_COLS " FROM prov_resources WHERE platform = ?1"
                " AND type || '/' || stack || '/' || name > ?2"
                " ORDER BY type || '/' || stack || '/' || name LIMIT ?3",
                2, platform, after ? after : "");
  if (rc) return rc;
  sqlite3_bind_int(st, 3, limit);
  int src;
  prov_resource r;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    read_res(st, &r);
    if ((rc = fn(ud, &r))) break;
  }
  sqlite3_finalize(st);
  if (rc) return rc;
  return src == SQLITE_DONE ? 0 : map(src);
}

int pj_intent_open(sqlite3 *db, const char *op, const char *platform,
                   const char *args, int64_t *id) {
  sqlite3_stmt *st;
  int rc = prep(db, &st,
                "INSERT INTO prov_journal(op, platform, args, created_at)"
                " VALUES (?1, ?2, ?3, " NOW ")",
                3, op, platform, args);
  if (rc) return rc;
  rc = run(st);
  if (!rc) *id = sqlite3_last_insert_rowid(db);
  return rc;
}

int pj_intent_step(sqlite3 *db, int64_t id, const char *step,
                   const char *args) {
  sqlite3_stmt *st;
  int rc = prep(db, &st,
                "UPDATE prov_journal SET step = ?1, args = coalesce(?2, args)"
                " WHERE id = ?3",
                2, step, args);
  if (rc) return rc;
  sqlite3_bind_int64(st, 3, id);
  return run(st);
}

int pj_intent_close(sqlite3 *db, int64_t id) {
  sqlite3_stmt *st;
  int rc = prep(db, &st, "DELETE FROM prov_journal WHERE id = ?1", 0);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, id);
  return run(st);
}

int pj_intent_each(sqlite3 *db, int (*fn)(void *, const prov_intent *),
                   void *ud) {
  /* Read them all first: fn closes intents, which must not happen under
   * the open SELECT. */
  sqlite3_stmt *st;
  int rc = prep(db, &st,
                "SELECT id, op, platform, step, args FROM prov_journal"
                " ORDER BY id",
                0);
  if (rc) return rc;
  prov_intent *v = NULL;
  size_t n = 0, cap = 0;
  int src;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == cap) {
      size_t c = cap ? cap * 2 : 8;
      prov_intent *nv = realloc(v, c * sizeof *v);
      if (!nv) {
        rc = NNO_ENOMEM;
        break;
      }
      v = nv;
      cap = c;
    }
    prov_intent *in = &v[n];
    in->id = sqlite3_column_int64(st, 0);
    col(st, 1, in->op, sizeof in->op);
    col(st, 2, in->platform, sizeof in->platform);
    col(st, 3, in->step, sizeof in->step);
    const unsigned char *a = sqlite3_column_text(st, 4);
    in->args = strdup(a ? (const char *)a : "{}");
    if (!in->args) {
      rc = NNO_ENOMEM;
      break;
    }
    n++;
  }
  sqlite3_finalize(st);
  if (!rc && src != SQLITE_DONE) rc = map(src);
  for (size_t i = 0; i < n; i++) {
    if (!rc) rc = fn(ud, &v[i]);
    free(v[i].args);
  }
  free(v);
  return rc;
}
