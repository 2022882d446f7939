/* The local driver's kv namespaces: one sqlite file each, a table of
 * (key, value, expires). Expired keys are invisible at once and removed
 * lazily, a few at a time, by the writes that follow. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <nno/plugin.h>

#include "prov.h"

#define KV_SCHEMA                                                            \
  "CREATE TABLE IF NOT EXISTS kv ("                                          \
  " key BLOB NOT NULL PRIMARY KEY,"                                          \
  " value BLOB NOT NULL,"                                                    \
  " expires INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"                      \
  "CREATE INDEX IF NOT EXISTS kv_expiring ON kv(expires) WHERE expires > 0;"

/* Bytes a put adds beyond key and value: the row's and index's overhead. */
#define KV_ROW_OVERHEAD 64
/* Expired rows removed per write. */
#define KV_SWEEP 100
/* A ttl longer than this is refused (100 years). */
#define KV_TTL_MAX (100ull * 366 * 86400)

int pkv_create(const char *path, char *msg, size_t cap) {
  return psql_create_with(path, KV_SCHEMA, msg, cap);
}

static int kv_open(const char *path, const prov_bounds *b, sqlite3 **db,
                   prov_out *o) {
  *db = NULL;
  int rc = prov_file_check(path, o->msg, sizeof o->msg);
  if (rc) return o->error = rc;
  if (sqlite3_open_v2(path, db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                          SQLITE_OPEN_NOFOLLOW,
                      NULL) != SQLITE_OK) {
    prov_fail(o, NNO_EIO, "cannot open the namespace: %s",
              *db ? sqlite3_errmsg(*db) : "out of memory");
    sqlite3_close_v2(*db);
    *db = NULL;
    return o->error;
  }
  sqlite3_extended_result_codes(*db, 1);
  sqlite3_busy_timeout(*db, (int)b->time_ms);
  return 0;
}

static int kv_error(sqlite3 *db, int src, prov_out *o) {
  switch (src & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return prov_fail(o, NNO_EBUSY, "the namespace stayed locked");
  case SQLITE_FULL:
    return prov_fail(o, NNO_EQUOTA,
                     "the platform's storage quota would be exceeded");
  case SQLITE_NOMEM: return prov_fail(o, NNO_ENOMEM, "out of memory");
  default: return prov_fail(o, NNO_EIO, "%s", sqlite3_errmsg(db));
  }
}

static int kv_get(sqlite3 *db, const char *key, size_t klen, uint64_t now,
                  prov_out *o) {
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(
      db, "SELECT value, expires FROM kv WHERE key = ?1 AND"
          " (expires = 0 OR expires > ?2)",
      -1, &st, NULL);
  if (src == SQLITE_OK) {
    sqlite3_bind_blob(st, 1, key, (int)klen, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)now);
    src = sqlite3_step(st);
  }
  if (src == SQLITE_ROW) {
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    o->value = malloc(n ? n : 1);
    if (!o->value) {
      sqlite3_finalize(st);
      return prov_fail(o, NNO_ENOMEM, "out of memory");
    }
    if (n) memcpy(o->value, sqlite3_column_blob(st, 0), n);
    o->value_len = n;
    o->expires = (uint64_t)sqlite3_column_int64(st, 1);
    o->found = 1;
    src = SQLITE_DONE;
  }
  int rc = src == SQLITE_DONE ? 0 : kv_error(db, src, o);
  sqlite3_finalize(st);
  return rc;
}

static int sweep(sqlite3 *db, uint64_t now) {
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(
      db, "DELETE FROM kv WHERE key IN (SELECT key FROM kv WHERE expires"
          " > 0 AND expires <= ?1 LIMIT " "100" ")",
      -1, &st, NULL);
  if (src == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, (int64_t)now);
    src = sqlite3_step(st);
  }
  sqlite3_finalize(st);
  return src == SQLITE_DONE ? SQLITE_OK : src;
}

static int kv_write(sqlite3 *db, const prov_quota *q, int op, const char *key,
                    size_t klen, const void *value, size_t vlen, uint64_t ttl,
                    uint64_t now, prov_out *o) {
  prov_qlock l = {.fd = -1, .remaining = UINT64_MAX};
  sqlite3_stmt *st = NULL;
  int rc = 0, src;
  if (op == 'p' && q && q->limit) { /* no limit: nothing to measure */
    if ((rc = prov_quota_begin(q, &l, o->msg, sizeof o->msg)))
      return o->error = rc;
    if (l.remaining != UINT64_MAX &&
        (uint64_t)klen + vlen + KV_ROW_OVERHEAD > l.remaining) {
      prov_quota_end(&l);
      return prov_fail(o, NNO_EQUOTA,
                       "the platform's storage quota would be exceeded; "
                       "nothing was written");
    }
  }
  src = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (src == SQLITE_OK) src = sweep(db, now);
  if (src == SQLITE_OK && op == 'p') {
    src = sqlite3_prepare_v2(
        db, "INSERT OR REPLACE INTO kv(key, value, expires) VALUES (?1, ?2, ?3)",
        -1, &st, NULL);
    if (src == SQLITE_OK) {
      sqlite3_bind_blob(st, 1, key, (int)klen, SQLITE_STATIC);
      sqlite3_bind_blob(st, 2, vlen ? value : "", (int)vlen, SQLITE_STATIC);
      sqlite3_bind_int64(st, 3, ttl ? (int64_t)(now + ttl) : 0);
      src = sqlite3_step(st);
      if (src == SQLITE_DONE) src = SQLITE_OK;
      o->expires = ttl ? now + ttl : 0;
      o->found = 1;
    }
  } else if (src == SQLITE_OK) {
    src = sqlite3_prepare_v2(db,
                             "DELETE FROM kv WHERE key = ?1 RETURNING expires",
                             -1, &st, NULL);
    if (src == SQLITE_OK) {
      sqlite3_bind_blob(st, 1, key, (int)klen, SQLITE_STATIC);
      src = sqlite3_step(st);
      if (src == SQLITE_ROW) {
        int64_t e = sqlite3_column_int64(st, 0);
        o->found = e == 0 || (uint64_t)e > now;
        src = sqlite3_step(st);
      }
      if (src == SQLITE_DONE) src = SQLITE_OK;
    }
  }
  sqlite3_finalize(st);
  if (src == SQLITE_OK) src = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (src != SQLITE_OK) {
    rc = kv_error(db, src, o);
    if (!sqlite3_get_autocommit(db))
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    o->found = 0;
  }
  prov_quota_end(&l);
  return rc;
}

static int kv_list(sqlite3 *db, const char *prefix, size_t plen,
                   const char *cursor, uint32_t limit, uint64_t now,
                   prov_out *o) {
  unsigned char after[PROV_KV_KEY_MAX];
  size_t alen = 0;
  int have_after = cursor && *cursor;
  if (prov_page_start(cursor, after, sizeof after, &alen, limit, "namespace",
                      o))
    return o->error;
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(
      db, "SELECT key, expires FROM kv WHERE key >= ?1 AND key > ?2 AND"
          " (expires = 0 OR expires > ?3) ORDER BY key LIMIT ?4",
      -1, &st, NULL);
  if (src != SQLITE_OK) return kv_error(db, src, o);
  sqlite3_bind_blob(st, 1, plen ? prefix : "", (int)plen, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, have_after ? (const void *)after : "", (int)alen,
                    SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, (int64_t)now);
  sqlite3_bind_int64(st, 4, (int64_t)limit + 1);
  json_t *arr = json_array();
  char last[2 * PROV_KV_KEY_MAX + 1] = "";
  uint32_t n = 0;
  int more = 0, rc = 0;
  while (arr && (src = sqlite3_step(st)) == SQLITE_ROW) {
    const char *k = sqlite3_column_blob(st, 0);
    size_t kl = (size_t)sqlite3_column_bytes(st, 0);
    if (kl < plen || (plen && memcmp(k, prefix, plen) != 0)) break;
    if (n == limit) {
      more = 1;
      break;
    }
    int64_t e = sqlite3_column_int64(st, 1);
    json_t *item = json_pack("{s:s%, s:o}", "key", k ? k : "", kl, "expires",
                             e ? json_integer(e) : json_null());
    if (!item || json_array_append_new(arr, item)) {
      rc = NNO_ENOMEM;
      break;
    }
    prov_hex(k, kl, last, sizeof last);
    n++;
  }
  if (!rc && src != SQLITE_ROW && src != SQLITE_DONE) rc = kv_error(db, src, o);
  sqlite3_finalize(st);
  return prov_page_end(o, arr, more ? last : "", rc);
}

int pkv_run(const char *path, const prov_bounds *b, const prov_quota *q,
            int op, const char *key, size_t klen, const void *value,
            size_t vlen, uint64_t ttl_s, const char *cursor, uint32_t limit,
            prov_out *o) {
  if (op == 'l' ? (klen > PROV_KV_KEY_MAX ||
                   (klen && !prov_key_ok(key, klen, PROV_KV_KEY_MAX)))
                : !prov_key_ok(key, klen, PROV_KV_KEY_MAX))
    return prov_fail(o, NNO_EINVAL,
                     "a key is 1 to %d bytes of UTF-8 without control "
                     "characters",
                     PROV_KV_KEY_MAX);
  if (op == 'p' && vlen > b->kv_value_max)
    return prov_fail(o, NNO_ETOOBIG, "a value is at most %zu bytes",
                     b->kv_value_max);
  if (op == 'p' && ttl_s > KV_TTL_MAX)
    return prov_fail(o, NNO_EINVAL, "ttl: at most %llu seconds",
                     (unsigned long long)KV_TTL_MAX);
  if (op != 'g' && op != 'p' && op != 'd' && op != 'l')
    return prov_fail(o, NNO_EINVAL, "unknown kv operation");
  sqlite3 *db;
  struct stat fst;
  if (!(db = prov_conn_take(path, &fst)) && kv_open(path, b, &db, o))
    return o->error;
  uint64_t now = prov_clock();
  int rc;
  if (op == 'g')
    rc = kv_get(db, key, klen, now, o);
  else if (op == 'l')
    rc = kv_list(db, key, klen, cursor, limit, now, o);
  else
    rc = kv_write(db, q, op, key, klen, value, vlen, ttl_s, now, o);
  prov_conn_give(path, &fst, db);
  return rc;
}
