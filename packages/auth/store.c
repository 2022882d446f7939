/* The users of one platform, in DATA/platforms/{id}/{id}-default-auth.db.
 *
 * Only pool threads use this file: each job opens the database, does its
 * reads or writes and closes it, so no connection is shared between
 * threads and the loop never waits on the disk. The schema is a list of
 * numbered migrations, applied in order and never edited once released. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <nno/sdk/request.h>

#include "auth.h"

#define DB_STACK "default"

static const char *const migrations[] = {
    /* 1: users */
    "CREATE TABLE users ("
    " id TEXT NOT NULL PRIMARY KEY"
    "  CHECK (length(id) = 16 AND id NOT GLOB '*[^0-9a-f]*'),"
    " email TEXT NOT NULL UNIQUE COLLATE NOCASE"
    "  CHECK (length(email) BETWEEN 3 AND 254),"
    " name TEXT CHECK (name IS NULL OR length(name) BETWEEN 1 AND 128),"
    " password_hash TEXT"
    "  CHECK (password_hash IS NULL OR password_hash GLOB '$argon2id$*'),"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL"
    ") STRICT, WITHOUT ROWID;",
    /* 2: which incarnation of the platform the users belong to */
    "CREATE TABLE meta ("
    " key TEXT NOT NULL PRIMARY KEY,"
    " value TEXT NOT NULL"
    ") STRICT, WITHOUT ROWID;",
};

#define NMIG (sizeof migrations / sizeof migrations[0])

int auth_platform_valid(const char *s, size_t len) {
  return nno_id_valid(s, len, 3, AUTH_PLATFORM_MAX);
}

static int map(int rc) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_DONE:
  case SQLITE_ROW:
    return AUTH_OK;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return AUTH_BUSY;
  default:
    return AUTH_ERR;
  }
}

static void now_iso(char out[21]) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *auth_store_error(sqlite3 *db) {
  return db ? sqlite3_errmsg(db) : "out of memory";
}

static int64_t schema_version(sqlite3 *db) {
  sqlite3_stmt *st;
  int64_t v = -1;
  if (sqlite3_prepare_v2(db,
                         "SELECT coalesce(max(version), 0)"
                         " FROM auth_migrations",
                         -1, &st, NULL) != SQLITE_OK)
    return -1;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* Apply what is missing in one IMMEDIATE transaction: two threads or two
 * workers opening a new database at once serialise on it, and the second
 * finds nothing left to do. */
static int migrate(sqlite3 *db, char *err, size_t cap) {
  int rc = sqlite3_exec(db,
                        "BEGIN IMMEDIATE;"
                        "CREATE TABLE IF NOT EXISTS auth_migrations ("
                        " version INTEGER NOT NULL PRIMARY KEY,"
                        " applied_at TEXT NOT NULL) STRICT;",
                        NULL, NULL, NULL);
  int64_t have = rc == SQLITE_OK ? schema_version(db) : -1;
  if (rc == SQLITE_OK && have < 0) rc = SQLITE_ERROR;
  if (rc == SQLITE_OK && have > (int64_t)NMIG) {
    snprintf(err, cap, "auth database schema %lld is newer than this package",
             (long long)have);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return AUTH_ERR;
  }
  char at[21], sql[128];
  now_iso(at);
  for (size_t v = rc == SQLITE_OK ? (size_t)have : NMIG; v < NMIG; v++) {
    snprintf(sql, sizeof sql, "INSERT INTO auth_migrations VALUES (%zu, '%s')",
             v + 1, at);
    if ((rc = sqlite3_exec(db, migrations[v], NULL, NULL, NULL)) ||
        (rc = sqlite3_exec(db, sql, NULL, NULL, NULL)))
      break;
  }
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, cap, "cannot migrate the auth database: %s",
             sqlite3_errmsg(db));
    if (!sqlite3_get_autocommit(db))
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return map(rc) == AUTH_BUSY ? AUTH_BUSY : AUTH_ERR;
  }
  return AUTH_OK;
}

int auth_store_open(const char *data_dir, const char *platform, sqlite3 **db,
                    char *err, size_t cap) {
  char path[PATH_MAX];
  *db = NULL;
  if (!auth_platform_valid(platform, strlen(platform))) {
    snprintf(err, cap, "invalid platform id");
    return AUTH_ERR;
  }
  int rc = auth_files_prepare(data_dir, platform, path, sizeof path, err, cap);
  if (rc != AUTH_OK) return rc;
  rc = sqlite3_open_v2(path, db,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                           SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                       NULL);
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(*db, 1);
    sqlite3_busy_timeout(*db, 2000);
    rc = sqlite3_exec(*db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                      NULL, NULL, NULL);
  }
  if (rc != SQLITE_OK) {
    snprintf(err, cap, "cannot open the auth database of %s: %s", platform,
             auth_store_error(*db));
    auth_store_close(*db);
    *db = NULL;
    return map(rc) == AUTH_BUSY ? AUTH_BUSY : AUTH_ERR;
  }
  /* The common case, an up-to-date schema, costs one read. */
  if (schema_version(*db) == (int64_t)NMIG) return AUTH_OK;
  rc = migrate(*db, err, cap);
  if (rc != AUTH_OK) {
    auth_store_close(*db);
    *db = NULL;
  }
  return rc;
}

/* The stored incarnation into out (17 bytes): 1 found, 0 none, -1 error. */
static int stored_incarnation(sqlite3 *db, char out[17]) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'incarnation'",
                         -1, &st, NULL) != SQLITE_OK)
    return -1;
  int rc = sqlite3_step(st), found = 0;
  if (rc == SQLITE_ROW) {
    const unsigned char *v = sqlite3_column_text(st, 0);
    snprintf(out, 17, "%s", v ? (const char *)v : "");
    found = 1;
  }
  sqlite3_finalize(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : -1;
}

int auth_store_claim(sqlite3 *db, const char *incarnation) {
  char have[17];
  if (!incarnation || !*incarnation) return AUTH_OK;
  int f = stored_incarnation(db, have);
  if (f == 1 && strcmp(have, incarnation) == 0) return AUTH_OK;
  if (f < 0) return map(sqlite3_errcode(db)) == AUTH_BUSY ? AUTH_BUSY : AUTH_ERR;
  /* Decide again under the write lock: another thread may have claimed
   * it. A database of an older incarnation keeps no user; one with no
   * incarnation yet (new, or written before incarnations) is adopted. */
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK) {
    f = stored_incarnation(db, have);
    if (f < 0) rc = SQLITE_ERROR;
  }
  if (rc == SQLITE_OK && f == 1 && strcmp(have, incarnation) != 0)
    rc = sqlite3_exec(db, "DELETE FROM users", NULL, NULL, NULL);
  if (rc == SQLITE_OK && !(f == 1 && strcmp(have, incarnation) == 0)) {
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(db,
                            "INSERT INTO meta (key, value) VALUES"
                            " ('incarnation', ?) ON CONFLICT (key)"
                            " DO UPDATE SET value = excluded.value",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
      sqlite3_bind_text(st, 1, incarnation, -1, SQLITE_TRANSIENT);
      rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
      sqlite3_finalize(st);
    }
  }
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    int code = sqlite3_extended_errcode(db);
    if (!sqlite3_get_autocommit(db))
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return map(code) == AUTH_BUSY ? AUTH_BUSY : AUTH_ERR;
  }
  return AUTH_OK;
}

void auth_store_close(sqlite3 *db) {
  if (db) sqlite3_close_v2(db);
}

static void col(sqlite3_stmt *st, int i, char *out, size_t cap) {
  const unsigned char *t = sqlite3_column_text(st, i);
  snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static int user_by(sqlite3 *db, const char *sql, const char *arg,
                   auth_user *out) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) return map(rc);
  rc = sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    col(st, 0, out->id, sizeof out->id);
    col(st, 1, out->email, sizeof out->email);
    out->has_name = sqlite3_column_type(st, 2) != SQLITE_NULL;
    col(st, 2, out->name, sizeof out->name);
    col(st, 3, out->hash, sizeof out->hash);
    rc = AUTH_OK;
  } else {
    rc = rc == SQLITE_DONE ? AUTH_NOTFOUND : map(rc);
  }
  sqlite3_finalize(st);
  return rc;
}

int auth_store_by_email(sqlite3 *db, const char *email, auth_user *out) {
  return user_by(db,
                 "SELECT id, email, name, password_hash FROM users"
                 " WHERE email = ?1",
                 email, out);
}

int auth_store_by_id(sqlite3 *db, const char *id, auth_user *out) {
  return user_by(db,
                 "SELECT id, email, name, password_hash FROM users"
                 " WHERE id = ?1",
                 id, out);
}

static void new_id(char out[AUTH_USER_ID_LEN + 1]) {
  unsigned char b[AUTH_USER_ID_LEN / 2];
  randombytes_buf(b, sizeof b);
  sodium_bin2hex(out, AUTH_USER_ID_LEN + 1, b, sizeof b);
}

static int insert_once(sqlite3 *db, const auth_user *u, const char *at) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db,
                              "INSERT INTO users (id, email, name,"
                              " password_hash, created_at, updated_at)"
                              " VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                              -1, &st, NULL);
  if (rc != SQLITE_OK) return map(rc);
  if ((rc = sqlite3_bind_text(st, 1, u->id, -1, SQLITE_STATIC)) ||
      (rc = sqlite3_bind_text(st, 2, u->email, -1, SQLITE_STATIC)) ||
      (rc = u->has_name ? sqlite3_bind_text(st, 3, u->name, -1, SQLITE_STATIC)
                        : sqlite3_bind_null(st, 3)) ||
      (rc = u->hash[0] ? sqlite3_bind_text(st, 4, u->hash, -1, SQLITE_STATIC)
                       : sqlite3_bind_null(st, 4)) ||
      (rc = sqlite3_bind_text(st, 5, at, -1, SQLITE_STATIC))) {
    sqlite3_finalize(st);
    return map(rc);
  }
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc == SQLITE_DONE) return AUTH_OK;
  if (rc == SQLITE_CONSTRAINT_UNIQUE) return AUTH_EXISTS;
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) return AUTH_NOTFOUND; /* id taken */
  return map(rc);
}

int auth_store_insert(sqlite3 *db, auth_user *u) {
  char at[21];
  now_iso(at);
  /* A 64-bit random id collides about never; retry a few times anyway
   * rather than fail a sign-up on it. */
  for (int i = 0; i < 4; i++) {
    new_id(u->id);
    int rc = insert_once(db, u, at);
    if (rc != AUTH_NOTFOUND) return rc;
  }
  return AUTH_ERR;
}

int auth_store_set_hash(sqlite3 *db, const char *id, const char *old_hash,
                        const char *new_hash) {
  char at[21];
  now_iso(at);
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db,
                              "UPDATE users SET password_hash = ?1,"
                              " updated_at = ?2"
                              " WHERE id = ?3 AND password_hash IS ?4",
                              -1, &st, NULL);
  if (rc != SQLITE_OK) return map(rc);
  if ((rc = sqlite3_bind_text(st, 1, new_hash, -1, SQLITE_STATIC)) ||
      (rc = sqlite3_bind_text(st, 2, at, -1, SQLITE_STATIC)) ||
      (rc = sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC)) ||
      (rc = old_hash[0] ? sqlite3_bind_text(st, 4, old_hash, -1, SQLITE_STATIC)
                        : sqlite3_bind_null(st, 4))) {
    sqlite3_finalize(st);
    return map(rc);
  }
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return map(rc);
  return sqlite3_changes(db) == 1 ? AUTH_OK : AUTH_NOTFOUND;
}
