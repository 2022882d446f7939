/* IAM's tables in DATA/core.db, beside the registry's (their rows cascade
 * when a platform or tenant is deleted), with their own schema version.
 * Every write to keys, sessions and access policies is logged to
 * iam_changes by triggers, so that deletions made by the registry's
 * cascades reach every worker the same way as IAM's own changes. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "internal.h"

#define LOG_CHANGE(tbl, kind, row, ref)                                        \
  "CREATE TRIGGER " tbl "_log_" #row " AFTER " #row " ON " tbl                 \
  " BEGIN INSERT INTO iam_changes(kind, platform_id, ref) VALUES ('" kind      \
  "', " ref "); END;"

static const char *const migrations[] = {
    /* 1: keys, sessions, access policies, the changes log */
    "CREATE TABLE iam_keys ("
    " id TEXT NOT NULL PRIMARY KEY"
    "  CHECK (length(id) = 16 AND id NOT GLOB '*[^0-9a-f]*'),"
    " platform_id TEXT NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,"
    " tenant_id TEXT,"
    " name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),"
    " scopes TEXT NOT NULL CHECK (length(scopes) BETWEEN 1 AND 511),"
    " token_sha256 BLOB NOT NULL CHECK (length(token_sha256) = 32),"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER,"
    " revoked_at INTEGER,"
    " FOREIGN KEY (platform_id, tenant_id) REFERENCES tenants(platform_id, id)"
    "  ON DELETE CASCADE"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX iam_keys_by_platform ON iam_keys(platform_id, id);"
    "CREATE TABLE iam_sessions ("
    " id TEXT NOT NULL PRIMARY KEY"
    "  CHECK (length(id) = 16 AND id NOT GLOB '*[^0-9a-f]*'),"
    " platform_id TEXT NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,"
    " user_id TEXT NOT NULL CHECK (length(user_id) BETWEEN 1 AND 64),"
    " tenant_id TEXT,"
    " scopes TEXT NOT NULL CHECK (length(scopes) <= 511),"
    " token_sha256 BLOB NOT NULL CHECK (length(token_sha256) = 32),"
    " created_at INTEGER NOT NULL,"
    " idle_expires INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " FOREIGN KEY (platform_id, tenant_id) REFERENCES tenants(platform_id, id)"
    "  ON DELETE CASCADE"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX iam_sessions_by_user ON iam_sessions(platform_id, user_id);"
    "CREATE INDEX iam_sessions_by_expiry ON iam_sessions(expires_at);"
    "CREATE TABLE iam_access ("
    " platform_id TEXT NOT NULL PRIMARY KEY"
    "  REFERENCES platforms(id) ON DELETE CASCADE,"
    " signup INTEGER NOT NULL CHECK (signup IN (0, 1)),"
    " cors_origins TEXT NOT NULL CHECK (json_valid(cors_origins)),"
    " user_scopes TEXT NOT NULL CHECK (length(user_scopes) <= 511),"
    " updated_at INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TABLE iam_changes ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind TEXT NOT NULL CHECK (kind IN ('key', 'session', 'access')),"
    " platform_id TEXT NOT NULL,"
    " ref TEXT NOT NULL"
    ") STRICT;"
    LOG_CHANGE("iam_keys", "key", INSERT, "NEW.platform_id, NEW.id")
    LOG_CHANGE("iam_keys", "key", UPDATE, "NEW.platform_id, NEW.id")
    LOG_CHANGE("iam_keys", "key", DELETE, "OLD.platform_id, OLD.id")
    LOG_CHANGE("iam_sessions", "session", DELETE, "OLD.platform_id, OLD.id")
    LOG_CHANGE("iam_access", "access", INSERT, "NEW.platform_id, ''")
    LOG_CHANGE("iam_access", "access", UPDATE, "NEW.platform_id, ''")
    LOG_CHANGE("iam_access", "access", DELETE, "OLD.platform_id, ''"),
    /* 2: a key made by a user records the session and the user behind it
     * (inherited by the keys such a key makes): ending that session, or
     * every session of the user, revokes it */
    "ALTER TABLE iam_keys ADD COLUMN session_id TEXT"
    " CHECK (session_id IS NULL OR length(session_id) = 16);"
    "ALTER TABLE iam_keys ADD COLUMN user_id TEXT"
    " CHECK (user_id IS NULL OR length(user_id) BETWEEN 1 AND 64);"
    "CREATE INDEX iam_keys_by_session ON iam_keys(platform_id, session_id)"
    " WHERE session_id IS NOT NULL;"
    "CREATE INDEX iam_keys_by_user ON iam_keys(platform_id, user_id)"
    " WHERE user_id IS NOT NULL;",
    /* 3: a key made by a key records that key: revoking a key revokes
     * the keys it made, and theirs (keys made before carry NULL) */
    "ALTER TABLE iam_keys ADD COLUMN creator_key_id TEXT"
    " CHECK (creator_key_id IS NULL OR length(creator_key_id) = 16);"
    "CREATE INDEX iam_keys_by_creator ON iam_keys(platform_id, creator_key_id)"
    " WHERE creator_key_id IS NOT NULL;",
    /* 4: the device-code flow (device.c): a code's secret by its SHA-256,
     * its user code, its state and, once approved, what the key it gives
     * will hold and who approved it */
    "CREATE TABLE iam_device_codes ("
    " code_sha256 BLOB PRIMARY KEY CHECK (length(code_sha256) = 32),"
    " user_code TEXT NOT NULL UNIQUE CHECK (length(user_code) = 9),"
    " platform_id TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " polled_at INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL DEFAULT 'pending'"
    "  CHECK (state IN ('pending', 'approved', 'denied', 'used')),"
    " scopes TEXT,"
    " key_expires INTEGER,"
    " session_id TEXT,"
    " user_id TEXT,"
    " creator_key_id TEXT"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX iam_device_by_platform ON iam_device_codes(platform_id,"
    " expires_at);",
    /* 5: the address the code was asked from, shown to the approver so
     * that a code phished from someone else is recognisable */
    "ALTER TABLE iam_device_codes ADD COLUMN client_addr TEXT"
    " CHECK (client_addr IS NULL OR length(client_addr) BETWEEN 1 AND 64);",
    /* 6: the client group the code was asked from (an IPv6 address by its
     * /56): when a platform's pending codes are at their bound, the group
     * holding the most gives up its oldest */
    "ALTER TABLE iam_device_codes ADD COLUMN client_group TEXT"
    " CHECK (client_group IS NULL OR length(client_group) BETWEEN 1 AND 64);",
};

#define NMIG (sizeof migrations / sizeof migrations[0])

/* ---- helpers --------------------------------------------------------- */

static int map(int rc) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_DONE:
  case SQLITE_ROW: return IAM_OK;
  case SQLITE_BUSY:
  case SQLITE_LOCKED: return IAM_BUSY;
  case SQLITE_CONSTRAINT:
    return rc == SQLITE_CONSTRAINT_FOREIGNKEY ? IAM_FK : IAM_ERR;
  default: return IAM_ERR;
  }
}

/* Prepare and bind: 's' text (NULL binds NULL), 'i' int64, 'b' 32-byte
 * blob, 'n' int64 where 0 binds NULL. */
static int query(sqlite3 *db, sqlite3_stmt **st, const char *sql,
                 const char *fmt, ...) {
  int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
  if (rc != SQLITE_OK) return map(rc);
  va_list ap;
  va_start(ap, fmt);
  for (int i = 0; fmt[i] && rc == SQLITE_OK; i++) {
    if (fmt[i] == 's') {
      const char *s = va_arg(ap, const char *);
      rc = s ? sqlite3_bind_text(*st, i + 1, s, -1, SQLITE_TRANSIENT)
             : sqlite3_bind_null(*st, i + 1);
    } else if (fmt[i] == 'b') {
      rc = sqlite3_bind_blob(*st, i + 1, va_arg(ap, const void *), 32,
                             SQLITE_TRANSIENT);
    } else {
      int64_t v = va_arg(ap, int64_t);
      rc = fmt[i] == 'n' && v == 0 ? sqlite3_bind_null(*st, i + 1)
                                   : sqlite3_bind_int64(*st, i + 1, v);
    }
  }
  va_end(ap);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(*st);
    *st = NULL;
    return map(rc);
  }
  return IAM_OK;
}

/* Step a statement that returns no rows, finalize it. */
static int run(sqlite3 *db, sqlite3_stmt *st, size_t *changes) {
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (changes) *changes = (size_t)sqlite3_changes(db);
  return rc == SQLITE_DONE ? IAM_OK : map(rc);
}

static void col(sqlite3_stmt *st, int i, char *out, size_t cap) {
  const unsigned char *t = sqlite3_column_text(st, i);
  snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* ---- open, migrate, transactions ---------------------------------------- */

int iam_store_open(const char *path, sqlite3 **db, char *err, size_t cap) {
  /* Owner-only when it is created here; O_EXCL because closing a
   * descriptor of a file already open in this process would drop the
   * POSIX locks of the connections on it (see registry/store.c). */
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) close(fd);
  int rc = sqlite3_open_v2(path, db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                               SQLITE_OPEN_NOMUTEX,
                           NULL);
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(*db, 1);
    sqlite3_busy_timeout(*db, 5000);
    /* Switching to WAL takes an exclusive lock for a moment and every
     * worker opens core.db at once: retry a busy answer (the busy handler
     * is not consulted for it). */
    for (int i = 0; i < 100; i++) {
      rc = sqlite3_exec(*db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
      if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) break;
      usleep(50 * 1000);
    }
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(*db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
                      NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, cap, "cannot open %s: %s", path,
             *db ? sqlite3_errmsg(*db) : "out of memory");
    sqlite3_close_v2(*db);
    *db = NULL;
    return IAM_ERR;
  }
  return IAM_OK;
}

int iam_store_migrate(sqlite3 *db, char *err, size_t cap) {
  int rc = sqlite3_exec(db,
                        "BEGIN IMMEDIATE;"
                        "CREATE TABLE IF NOT EXISTS iam_schema ("
                        " version INTEGER NOT NULL) STRICT;",
                        NULL, NULL, NULL);
  sqlite3_stmt *st = NULL;
  int64_t have = 0;
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM iam_schema",
                            -1, &st, NULL);
  if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    have = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (rc == SQLITE_OK && have > (int64_t)NMIG) {
    snprintf(err, cap,
             "core.db IAM schema version %lld is newer than this host "
             "supports (%zu)",
             (long long)have, NMIG);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return IAM_ERR;
  }
  for (size_t v = (size_t)have; rc == SQLITE_OK && v < NMIG; v++) {
    rc = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
      char sql[96];
      snprintf(sql, sizeof sql, "INSERT INTO iam_schema VALUES (%zu)", v + 1);
      rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
  }
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, cap, "cannot migrate core.db (IAM): %s", sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return IAM_ERR;
  }
  return IAM_OK;
}

int iam_store_begin(sqlite3 *db) {
  return map(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL));
}
int iam_store_commit(sqlite3 *db) {
  return map(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL));
}
void iam_store_rollback(sqlite3 *db) {
  if (!sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- the changes log ----------------------------------------------------- */

int iam_store_changes(sqlite3 *db, int64_t since, int64_t *min, int64_t *max,
                      iam_change_cb cb, void *ud) {
  sqlite3_stmt *st;
  int rc = query(db, &st,
                 "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0)"
                 " FROM iam_changes", "");
  if (rc) return rc;
  if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    *min = sqlite3_column_int64(st, 0);
    *max = sqlite3_column_int64(st, 1);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) return map(rc);
  if (!cb) return IAM_OK;
  rc = query(db, &st,
             "SELECT seq, kind, platform_id, ref FROM iam_changes"
             " WHERE seq > ? ORDER BY seq", "i", since);
  if (rc) return rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    if (cb(ud, sqlite3_column_int64(st, 0),
           (const char *)sqlite3_column_text(st, 1),
           (const char *)sqlite3_column_text(st, 2),
           (const char *)sqlite3_column_text(st, 3)))
      break;
  sqlite3_finalize(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? IAM_OK : map(rc);
}

/* ---- keys ---------------------------------------------------------------- */

#define KEY_COLS                                                               \
  "id, platform_id, coalesce(tenant_id, ''), name, scopes, token_sha256,"      \
  " created_at, coalesce(expires_at, 0), coalesce(revoked_at, 0),"          \
  " coalesce(session_id, ''), coalesce(user_id, '')"

static int each_key(sqlite3 *db, sqlite3_stmt *st, iam_key_cb cb, void *ud) {
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    iam_key k;
    char name[IAM_NAME_MAX];
    memset(&k, 0, sizeof k);
    col(st, 0, k.id, sizeof k.id);
    col(st, 1, k.platform, sizeof k.platform);
    col(st, 2, k.tenant, sizeof k.tenant);
    col(st, 3, name, sizeof name);
    col(st, 4, k.scopes, sizeof k.scopes);
    if (sqlite3_column_bytes(st, 5) == 32)
      memcpy(k.hash, sqlite3_column_blob(st, 5), 32);
    k.expires = sqlite3_column_int64(st, 7);
    col(st, 9, k.session, sizeof k.session);
    col(st, 10, k.user, sizeof k.user);
    if (cb(ud, &k, name, sqlite3_column_int64(st, 6),
           sqlite3_column_int64(st, 8))) {
      rc = SQLITE_DONE;
      break;
    }
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? IAM_OK : map(rc);
}

int iam_store_keys_live(sqlite3 *db, int64_t now, iam_key_cb cb, void *ud) {
  sqlite3_stmt *st;
  int rc = query(db, &st,
                 "SELECT " KEY_COLS " FROM iam_keys WHERE revoked_at IS NULL"
                 " AND (expires_at IS NULL OR expires_at > ?)", "i", now);
  return rc ? rc : each_key(db, st, cb, ud);
}

int iam_store_keys_list(sqlite3 *db, const char *platform, const char *within,
                        const char *after, int limit, iam_key_cb cb, void *ud) {
  sqlite3_stmt *st;
  /* The subtree down from `within` in the registry's tenants table (the
   * one iam_keys already references); UNION ends the walk on any tree. */
  int rc = query(db, &st,
                 "WITH RECURSIVE sub(id) AS (SELECT ?4 WHERE ?4 IS NOT NULL"
                 " UNION SELECT t.id FROM tenants t JOIN sub"
                 "  ON t.platform_id = ?1 AND t.parent_id = sub.id)"
                 " SELECT " KEY_COLS " FROM iam_keys WHERE platform_id = ?1"
                 " AND id > ?2"
                 " AND (?4 IS NULL OR tenant_id IN (SELECT id FROM sub))"
                 " ORDER BY id LIMIT ?3", "ssis", platform,
                 after ? after : "", (int64_t)limit,
                 within && *within ? within : NULL);
  return rc ? rc : each_key(db, st, cb, ud);
}

int iam_store_key_get(sqlite3 *db, const char *platform, const char *id,
                      iam_key_cb cb, void *ud) {
  sqlite3_stmt *st;
  int rc = query(db, &st,
                 "SELECT " KEY_COLS " FROM iam_keys WHERE platform_id = ?"
                 " AND id = ?", "ss", platform, id);
  return rc ? rc : each_key(db, st, cb, ud);
}

int iam_store_key_insert(sqlite3 *db, const iam_key *k, const char *name,
                         const char *creator, int64_t now) {
  return iam_store_key_insert_max(db, k, name, creator, now, 0, NULL);
}

int iam_store_key_insert_max(sqlite3 *db, const iam_key *k, const char *name,
                             const char *creator, int64_t now,
                             uint64_t max_live, uint64_t *live_out) {
  sqlite3_stmt *st;
  size_t n = 0;
  const char *sid = k->session[0] ? k->session : NULL;
  const char *kid = creator && *creator ? creator : NULL;
  /* The write lock first: the creator is checked on the newest snapshot,
   * and no sign-out or revocation can commit between the check and the
   * insert. A session is checked for existence and its absolute expiry
   * (its idle expiry in the table moves only once a minute; AUTHN checked
   * it). */
  int rc = iam_store_begin(db);
  if (rc) return rc;
  /* The plan's bound on live keys, counted under the write lock: two
   * workers creating the last key at once cannot both pass. */
  if (max_live) {
    sqlite3_stmt *cs = NULL;
    int64_t live = -1;
    rc = query(db, &cs,
               "SELECT count(*) FROM iam_keys WHERE platform_id = ?"
               " AND revoked_at IS NULL AND (expires_at IS NULL OR"
               " expires_at > ?)",
               "si", k->platform, now);
    if (!rc && sqlite3_step(cs) == SQLITE_ROW)
      live = sqlite3_column_int64(cs, 0);
    sqlite3_finalize(cs);
    if (!rc && live < 0) rc = IAM_ERR;
    if (!rc && (uint64_t)live >= max_live) {
      if (live_out) *live_out = (uint64_t)live;
      iam_store_rollback(db);
      return IAM_FULL;
    }
    if (rc) {
      iam_store_rollback(db);
      return rc;
    }
  }
  rc = query(db, &st,
             "INSERT INTO iam_keys(id, platform_id, tenant_id, name,"
             " scopes, token_sha256, created_at, expires_at, session_id,"
             " user_id, creator_key_id)"
             " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11"
             " WHERE (?9 IS NULL OR EXISTS (SELECT 1 FROM iam_sessions"
             "  WHERE id = ?9 AND platform_id = ?2 AND expires_at > ?7))"
             " AND (?11 IS NULL OR EXISTS (SELECT 1 FROM iam_keys"
             "  WHERE id = ?11 AND platform_id = ?2 AND revoked_at IS NULL"
             "  AND (expires_at IS NULL OR expires_at > ?7)))",
             "sssssbinsss", k->id, k->platform,
             k->tenant[0] ? k->tenant : NULL, name, k->scopes, k->hash, now,
             k->expires, sid, k->user[0] ? k->user : NULL, kid);
  if (!rc) rc = run(db, st, &n);
  if (!rc) rc = iam_store_commit(db);
  if (rc) {
    iam_store_rollback(db);
    return rc;
  }
  return n ? IAM_OK : IAM_NOTFOUND;
}

int iam_store_key_revoke(sqlite3 *db, const char *platform, const char *id,
                         int64_t now, size_t *made) {
  sqlite3_stmt *st;
  size_t n = 0, m = 0;
  int rc = iam_store_begin(db);
  if (rc) return rc;
  rc = query(db, &st,
             "UPDATE iam_keys SET revoked_at = ? WHERE platform_id = ?"
             " AND id = ? AND revoked_at IS NULL", "iss", now, platform, id);
  if (!rc) rc = run(db, st, &n);
  /* Down the keys it made, through revoked ones too (a key made before
   * its creator was revoked, by a worker that had not seen it yet, is
   * refused at insert; this is for every key made earlier). UNION ends
   * the walk on any graph. */
  if (!rc && n)
    rc = query(db, &st,
               "WITH RECURSIVE down(id) AS (SELECT ?3 UNION"
               " SELECT k.id FROM iam_keys k JOIN down"
               "  ON k.platform_id = ?2 AND k.creator_key_id = down.id)"
               " UPDATE iam_keys SET revoked_at = ?1 WHERE platform_id = ?2"
               " AND revoked_at IS NULL AND id IN (SELECT id FROM down)",
               "iss", now, platform, id);
  if (!rc && n) rc = run(db, st, &m);
  if (!rc) rc = iam_store_commit(db);
  if (rc) {
    iam_store_rollback(db);
    return rc;
  }
  if (made) *made = m;
  return n ? IAM_OK : IAM_NOTFOUND;
}

/* ---- sessions -------------------------------------------------------------- */

int iam_store_session_insert(sqlite3 *db, const iam_sess *s, int64_t now) {
  sqlite3_stmt *st;
  int rc = query(db, &st,
                 "INSERT INTO iam_sessions(id, platform_id, user_id,"
                 " tenant_id, scopes, token_sha256, created_at, idle_expires,"
                 " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 "sssssbiii", s->id, s->platform, s->user,
                 s->tenant[0] ? s->tenant : NULL, s->scopes, s->hash, now,
                 s->idle_expires, s->expires);
  return rc ? rc : run(db, st, NULL);
}

int iam_store_session_get(sqlite3 *db, const char *id, iam_sess *out) {
  sqlite3_stmt *st;
  int rc = query(db, &st,
                 "SELECT id, platform_id, user_id, coalesce(tenant_id, ''),"
                 " scopes, token_sha256, idle_expires, expires_at"
                 " FROM iam_sessions WHERE id = ?", "s", id);
  if (rc) return rc;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    memset(out, 0, sizeof *out);
    col(st, 0, out->id, sizeof out->id);
    col(st, 1, out->platform, sizeof out->platform);
    col(st, 2, out->user, sizeof out->user);
    col(st, 3, out->tenant, sizeof out->tenant);
    col(st, 4, out->scopes, sizeof out->scopes);
    if (sqlite3_column_bytes(st, 5) == 32)
      memcpy(out->hash, sqlite3_column_blob(st, 5), 32);
    out->idle_expires = sqlite3_column_int64(st, 6);
    out->expires = sqlite3_column_int64(st, 7);
  }
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? IAM_OK : rc == SQLITE_DONE ? IAM_NOTFOUND : map(rc);
}

/* Revoke the live keys of `platform` made (directly or through keys it
 * made) by session `sid`, or, with `user`, by any session of that user but
 * `keep`. Their change rows reach every worker like any revocation. */
static int revoke_made_by(sqlite3 *db, const char *platform, const char *sid,
                          const char *user, const char *keep) {
  sqlite3_stmt *st;
  int64_t now = (int64_t)time(NULL);
  int rc = sid ? query(db, &st,
                       "UPDATE iam_keys SET revoked_at = ? WHERE platform_id = ?"
                       " AND session_id = ? AND revoked_at IS NULL",
                       "iss", now, platform, sid)
               : query(db, &st,
                       "UPDATE iam_keys SET revoked_at = ? WHERE platform_id = ?"
                       " AND user_id = ? AND session_id IS NOT ?"
                       " AND revoked_at IS NULL",
                       "isss", now, platform, user,
                       keep && *keep ? keep : NULL);
  return rc ? rc : run(db, st, NULL);
}

int iam_store_session_delete(sqlite3 *db, const char *platform,
                             const char *id) {
  sqlite3_stmt *st;
  size_t n = 0;
  int rc = iam_store_begin(db);
  if (rc) return rc;
  rc = query(db, &st,
             "DELETE FROM iam_sessions WHERE platform_id = ? AND id = ?",
             "ss", platform, id);
  if (!rc) rc = run(db, st, &n);
  if (!rc && n) rc = revoke_made_by(db, platform, id, NULL, NULL);
  if (!rc) rc = iam_store_commit(db);
  if (rc) {
    iam_store_rollback(db);
    return rc;
  }
  return n ? IAM_OK : IAM_NOTFOUND;
}

int iam_store_session_delete_user(sqlite3 *db, const char *platform,
                                  const char *user, const char *keep,
                                  size_t *count) {
  sqlite3_stmt *st;
  int rc = iam_store_begin(db);
  if (rc) return rc;
  rc = query(db, &st,
             "DELETE FROM iam_sessions WHERE platform_id = ?"
             " AND user_id = ? AND id IS NOT ?", "sss", platform, user,
             keep && *keep ? keep : NULL);
  if (!rc) rc = run(db, st, count);
  if (!rc) rc = revoke_made_by(db, platform, NULL, user, keep);
  if (!rc) rc = iam_store_commit(db);
  if (rc) iam_store_rollback(db);
  return rc;
}

int iam_store_session_touch(sqlite3 *db, const char *id, int64_t idle_expires) {
  sqlite3_stmt *st;
  int rc = query(db, &st,
                 "UPDATE iam_sessions SET idle_expires = max(idle_expires, ?)"
                 " WHERE id = ?", "is", idle_expires, id);
  return rc ? rc : run(db, st, NULL);
}

/* ---- access policies -------------------------------------------------------- */

int iam_store_access_all(sqlite3 *db, iam_access_cb cb, void *ud) {
  sqlite3_stmt *st;
  int rc = query(db, &st,
                 "SELECT a.platform_id, a.signup, a.user_scopes, j.value"
                 " FROM iam_access a LEFT JOIN json_each(a.cors_origins) j"
                 " ORDER BY a.platform_id, j.key", "");
  if (rc) return rc;
  iam_access a;
  int have = 0, stop = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *pid = (const char *)sqlite3_column_text(st, 0);
    if (!have || strcmp(a.platform, pid) != 0) {
      if (have && cb(ud, &a)) stop = 1;
      memset(&a, 0, sizeof a);
      snprintf(a.platform, sizeof a.platform, "%s", pid);
      a.signup = sqlite3_column_int(st, 1);
      col(st, 2, a.user_scopes, sizeof a.user_scopes);
      have = 1;
    }
    if (sqlite3_column_type(st, 3) == SQLITE_TEXT &&
        a.norigins < IAM_ORIGINS_MAX)
      col(st, 3, a.origins[a.norigins++], sizeof a.origins[0]);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE && !stop) return map(rc);
  if (have && !stop) cb(ud, &a);
  return IAM_OK;
}

int iam_store_access_put(sqlite3 *db, const iam_access *a, int64_t now) {
  char json[IAM_ORIGINS_MAX * 140 + 8];
  size_t n = 0;
  json[n++] = '[';
  for (size_t i = 0; i < a->norigins; i++)
    /* Origins were checked to hold no quote or backslash. */
    n += (size_t)snprintf(json + n, sizeof json - n, "%s\"%s\"", i ? "," : "",
                          a->origins[i]);
  snprintf(json + n, sizeof json - n, "]");
  sqlite3_stmt *st;
  int rc = query(db, &st,
                 "INSERT INTO iam_access(platform_id, signup, cors_origins,"
                 " user_scopes, updated_at) VALUES (?, ?, ?, ?, ?)"
                 " ON CONFLICT(platform_id) DO UPDATE SET signup ="
                 " excluded.signup, cors_origins = excluded.cors_origins,"
                 " user_scopes = excluded.user_scopes,"
                 " updated_at = excluded.updated_at",
                 "sissi", a->platform, (int64_t)a->signup, json,
                 a->user_scopes, now);
  return rc ? rc : run(db, st, NULL);
}
