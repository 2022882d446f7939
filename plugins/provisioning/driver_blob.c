/* The local driver's blob buckets: one folder per bucket holding the
 * objects and an index (index.db: key, size, etag, content type,
 * modified). A key never becomes a path: each object is stored under
 * "o" + the hex of a hash of its key, so "../x", "/etc/passwd" or
 * "%2e%2e" are names like any other. Every file is opened relative to
 * the bucket folder with O_NOFOLLOW: a link planted there is never
 * followed. A put writes a temporary file, syncs it and renames it over
 * the object, so a reader sees the old or the new object, never a part. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <nno/plugin.h>
#include <sodium.h>

#include "prov.h"

#define IDX_NAME "index.db"
#define TMP_PREFIX ".tmp-"
#define IDX_SCHEMA                                                           \
  "CREATE TABLE IF NOT EXISTS objects ("                                     \
  " key BLOB NOT NULL PRIMARY KEY,"                                          \
  " name TEXT NOT NULL,"                                                     \
  " size INTEGER NOT NULL,"                                                  \
  " etag TEXT NOT NULL,"                                                     \
  " content_type TEXT NOT NULL,"                                             \
  " modified INTEGER NOT NULL) WITHOUT ROWID;"

/* Keys: 1..1024 bytes of printable UTF-8, '/'-separated segments, none
 * empty, "." or "..", no leading '/', no '\'. */
static int blob_key_ok(const char *k, size_t n) {
  if (!prov_key_ok(k, n, PROV_BLOB_KEY_MAX)) return 0;
  size_t seg = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && k[i] == '\\') return 0;
    if (i == n || k[i] == '/') {
      size_t len = i - seg;
      if (len == 0 || (len == 1 && k[seg] == '.') ||
          (len == 2 && k[seg] == '.' && k[seg + 1] == '.'))
        return 0;
      seg = i + 1;
    }
  }
  return 1;
}

static int ctype_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= PROV_CTYPE_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return 0;
  return 1;
}

/* "o" + hex(generichash(key)): the object's file name. */
static void object_name(const char *key, size_t klen, char out[66]) {
  unsigned char h[32];
  crypto_generichash(h, sizeof h, (const unsigned char *)key, klen, NULL, 0);
  out[0] = 'o';
  prov_hex(h, sizeof h, out + 1, 65);
}

/* The bucket folder, checked, as a descriptor. */
static int bucket_open(const char *dir, prov_out *o) {
  int rc = prov_dir_check(dir, o->msg, sizeof o->msg);
  if (rc == NNO_ENOENT) return prov_fail(o, rc, "not provisioned");
  if (rc) return o->error = rc;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return prov_fail(o, NNO_EIO, "cannot open the bucket: %s",
                               strerror(errno));
  return fd;
}

static int idx_open(const char *dir, int readonly, sqlite3 **db, char *msg,
                    size_t cap) {
  char path[4096];
  *db = NULL;
  snprintf(path, sizeof path, "%s/" IDX_NAME, dir);
  int rc = prov_file_check(path, msg, cap);
  if (rc) return rc;
  if (sqlite3_open_v2(path, db,
                      (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
                          SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                      NULL) != SQLITE_OK) {
    snprintf(msg, cap, "cannot open the bucket's index: %s",
             *db ? sqlite3_errmsg(*db) : "out of memory");
    sqlite3_close_v2(*db);
    *db = NULL;
    return NNO_EIO;
  }
  sqlite3_extended_result_codes(*db, 1);
  sqlite3_busy_timeout(*db, 5000);
  return 0;
}

static int idx_error(sqlite3 *db, int src, prov_out *o) {
  if ((src & 0xff) == SQLITE_BUSY || (src & 0xff) == SQLITE_LOCKED)
    return prov_fail(o, NNO_EBUSY, "the bucket's index stayed locked");
  return prov_fail(o, NNO_EIO, "the bucket's index: %s", sqlite3_errmsg(db));
}

int pblob_create(const char *dir, char *msg, size_t cap) {
  int rc = prov_mkdir(dir, msg, cap);
  if (rc) return rc;
  char path[4096];
  snprintf(path, sizeof path, "%s/" IDX_NAME, dir);
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno != EEXIST) {
    snprintf(msg, cap, "cannot create %s: %s", path, strerror(errno));
    return NNO_EIO;
  }
  if (fd >= 0) close(fd);
  sqlite3 *db;
  if ((rc = idx_open(dir, 0, &db, msg, cap))) return rc;
  int src = sqlite3_exec(db,
                         "PRAGMA synchronous=OFF; PRAGMA journal_mode=WAL;"
                         IDX_SCHEMA, NULL, NULL,
                         NULL);
  if (src != SQLITE_OK)
    snprintf(msg, cap, "cannot create %s: %s", path, sqlite3_errmsg(db));
  sqlite3_close_v2(db);
  /* Built without syncs: made durable once, with the bucket's folder. */
  if (src == SQLITE_OK && (prov_sync(path) || prov_sync(dir))) {
    snprintf(msg, cap, "cannot sync %s: %s", path, strerror(errno));
    return NNO_EIO;
  }
  return src == SQLITE_OK ? 0 : NNO_EIO;
}

/* Write `data` to a new temporary file of the bucket, synced; its name
 * into tmp, the content's etag into etag. */
static int write_temp(int dfd, const void *data, size_t len, char tmp[40],
                      char etag[72], prov_out *o) {
  unsigned char rnd[12], h[16];
  randombytes_buf(rnd, sizeof rnd);
  memcpy(tmp, TMP_PREFIX, sizeof TMP_PREFIX - 1);
  prov_hex(rnd, sizeof rnd, tmp + sizeof TMP_PREFIX - 1, 40 - sizeof TMP_PREFIX + 1);
  int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
  if (fd < 0)
    return prov_fail(o, NNO_EIO, "cannot write the object: %s", strerror(errno));
  const char *p = data;
  size_t left = len;
  while (left) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = errno;
      close(fd);
      unlinkat(dfd, tmp, 0);
      return prov_fail(o, e == ENOSPC ? NNO_EQUOTA : NNO_EIO,
                       "cannot write the object: %s", strerror(e));
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    unlinkat(dfd, tmp, 0);
    return prov_fail(o, NNO_EIO, "cannot sync the object: %s", strerror(errno));
  }
  crypto_generichash(h, sizeof h, data, len, NULL, 0);
  etag[0] = '"';
  prov_hex(h, sizeof h, etag + 1, 70);
  strcat(etag, "\"");
  return 0;
}

static int blob_put(const char *dir, int dfd, const prov_bounds *b,
                    const prov_quota *q, const char *key, size_t klen,
                    const char *ctype, const void *data, size_t len,
                    prov_out *o) {
  if (len > b->blob_max)
    return prov_fail(o, NNO_ETOOBIG, "an object is at most %zu bytes",
                     b->blob_max);
  if (!ctype || !*ctype) ctype = "application/octet-stream";
  if (!ctype_ok(ctype))
    return prov_fail(o, NNO_EINVAL,
                     "content type: 1 to 255 printable ASCII characters");
  char name[66], tmp[40], etag[72];
  object_name(key, klen, name);
  prov_qlock l = {.fd = -1, .remaining = UINT64_MAX};
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int rc;
  if ((rc = idx_open(dir, 0, &db, o->msg, sizeof o->msg))) return o->error = rc;
  if (q && (rc = prov_quota_begin(q, &l, o->msg, sizeof o->msg))) {
    o->error = rc;
    goto done;
  }
  /* What the put adds: the new size less the old object's. */
  uint64_t old = 0;
  int src = sqlite3_prepare_v2(db, "SELECT size FROM objects WHERE key = ?1",
                               -1, &st, NULL);
  if (src == SQLITE_OK) {
    sqlite3_bind_blob(st, 1, key, (int)klen, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) old = (uint64_t)sqlite3_column_int64(st, 0);
    if (src == SQLITE_ROW || src == SQLITE_DONE) src = SQLITE_OK;
  }
  sqlite3_finalize(st);
  st = NULL;
  if (src != SQLITE_OK) {
    rc = idx_error(db, src, o);
    goto done;
  }
  if (l.remaining != UINT64_MAX && len > old && len - old + 256 > l.remaining) {
    rc = prov_fail(o, NNO_EQUOTA,
                   "the platform's storage quota would be exceeded; nothing "
                   "was written");
    goto done;
  }
  if ((rc = write_temp(dfd, data, len, tmp, etag, o))) goto done;
  if (prov_failpoint("blob:put:rename")) {
    unlinkat(dfd, tmp, 0);
    rc = prov_fail(o, NNO_EIO, "failpoint blob:put:rename");
    goto done;
  }
  if (renameat(dfd, tmp, dfd, name) != 0) {
    unlinkat(dfd, tmp, 0);
    rc = prov_fail(o, NNO_EIO, "cannot store the object: %s", strerror(errno));
    goto done;
  }
  fsync(dfd);
  uint64_t now = prov_clock();
  src = sqlite3_prepare_v2(
      db, "INSERT OR REPLACE INTO objects(key, name, size, etag, content_type,"
          " modified) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      -1, &st, NULL);
  if (src == SQLITE_OK) {
    sqlite3_bind_blob(st, 1, key, (int)klen, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)len);
    sqlite3_bind_text(st, 4, etag, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, ctype, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (int64_t)now);
    src = sqlite3_step(st);
  }
  sqlite3_finalize(st);
  if (src != SQLITE_DONE) {
    /* The object is in place; the next sweep fixes its index row. */
    rc = idx_error(db, src, o);
    goto done;
  }
  o->size = len;
  o->modified = now;
  o->found = 1;
  snprintf(o->etag, sizeof o->etag, "%s", etag);
  snprintf(o->ctype, sizeof o->ctype, "%s", ctype);
done:
  sqlite3_close_v2(db);
  prov_quota_end(&l);
  return rc;
}

/* The index row of `key` into o (found, size, etag, ctype, modified) and
 * the object's name. */
static int blob_lookup(sqlite3 *db, const char *key, size_t klen,
                       char name[66], prov_out *o) {
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(
      db, "SELECT name, size, etag, content_type, modified FROM objects"
          " WHERE key = ?1",
      -1, &st, NULL);
  if (src == SQLITE_OK) {
    sqlite3_bind_blob(st, 1, key, (int)klen, SQLITE_STATIC);
    src = sqlite3_step(st);
  }
  if (src == SQLITE_ROW) {
    o->found = 1;
    snprintf(name, 66, "%s", (const char *)sqlite3_column_text(st, 0));
    o->size = (uint64_t)sqlite3_column_int64(st, 1);
    snprintf(o->etag, sizeof o->etag, "%s", (const char *)sqlite3_column_text(st, 2));
    snprintf(o->ctype, sizeof o->ctype, "%s", (const char *)sqlite3_column_text(st, 3));
    o->modified = (uint64_t)sqlite3_column_int64(st, 4);
    src = SQLITE_DONE;
  }
  int rc = src == SQLITE_DONE ? 0 : idx_error(db, src, o);
  sqlite3_finalize(st);
  return rc;
}

static int blob_delete(sqlite3 *db, int dfd, const char *key, size_t klen,
                       prov_out *o) {
  sqlite3_stmt *st = NULL;
  char name[66] = "";
  int src = sqlite3_prepare_v2(db, "DELETE FROM objects WHERE key = ?1"
                                   " RETURNING name",
                               -1, &st, NULL);
  if (src == SQLITE_OK) {
    sqlite3_bind_blob(st, 1, key, (int)klen, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
      o->found = 1;
      snprintf(name, sizeof name, "%s", (const char *)sqlite3_column_text(st, 0));
      src = sqlite3_step(st);
    }
  }
  sqlite3_finalize(st);
  if (src != SQLITE_DONE) {
    o->found = 0;
    return idx_error(db, src, o);
  }
  /* After the row: a crash in between leaves an orphan the sweep removes. */
  if (name[0] == 'o') unlinkat(dfd, name, 0);
  return 0;
}

static int blob_list(sqlite3 *db, const char *prefix, size_t plen,
                     const char *cursor, uint32_t limit, prov_out *o) {
  unsigned char after[PROV_BLOB_KEY_MAX];
  size_t alen = 0;
  int have_after = cursor && *cursor;
  if (prov_page_start(cursor, after, sizeof after, &alen, limit, "bucket", o))
    return o->error;
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(
      db, "SELECT key, size, etag, content_type, modified FROM objects"
          " WHERE key >= ?1 AND key > ?2 ORDER BY key LIMIT ?3",
      -1, &st, NULL);
  if (src != SQLITE_OK) return idx_error(db, src, o);
  sqlite3_bind_blob(st, 1, plen ? prefix : "", (int)plen, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, have_after ? (const void *)after : "", (int)alen,
                    SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, (int64_t)limit + 1);
  json_t *arr = json_array();
  char last[2 * PROV_BLOB_KEY_MAX + 1] = "";
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
    json_t *item = json_pack(
        "{s:s%, s:I, s:s, s:s, s:I}", "key", k ? k : "", kl, "size",
        (json_int_t)sqlite3_column_int64(st, 1), "etag",
        (const char *)sqlite3_column_text(st, 2), "content_type",
        (const char *)sqlite3_column_text(st, 3), "modified",
        (json_int_t)sqlite3_column_int64(st, 4));
    if (!item || json_array_append_new(arr, item)) {
      rc = NNO_ENOMEM;
      break;
    }
    prov_hex(k, kl, last, sizeof last);
    n++;
  }
  if (!rc && src != SQLITE_ROW && src != SQLITE_DONE) rc = idx_error(db, src, o);
  sqlite3_finalize(st);
  return prov_page_end(o, arr, more ? last : "", rc);
}

int pblob_run(const char *dir, const prov_bounds *b, const prov_quota *q,
              int op, const char *key, size_t klen, const char *ctype,
              const void *data, size_t len, const char *cursor,
              uint32_t limit, prov_out *o) {
  if (op == 'l' ? (klen > PROV_BLOB_KEY_MAX ||
                   (klen && !prov_key_ok(key, klen, PROV_BLOB_KEY_MAX)))
                : !blob_key_ok(key, klen))
    return prov_fail(o, NNO_EINVAL,
                     "a key is 1 to %d bytes of printable UTF-8: '/'-separated "
                     "segments, none empty, \".\" or \"..\", no '\\'",
                     PROV_BLOB_KEY_MAX);
  if (op != 'p' && op != 'h' && op != 'd' && op != 'l')
    return prov_fail(o, NNO_EINVAL, "unknown blob operation");
  int dfd = bucket_open(dir, o);
  if (dfd < 0) return o->error;
  int rc;
  if (op == 'p') {
    rc = blob_put(dir, dfd, b, q, key, klen, ctype, data, len, o);
  } else {
    sqlite3 *db;
    char name[66];
    if ((rc = idx_open(dir, op != 'd', &db, o->msg, sizeof o->msg))) {
      o->error = rc;
    } else {
      if (op == 'h') rc = blob_lookup(db, key, klen, name, o);
      else if (op == 'd') rc = blob_delete(db, dfd, key, klen, o);
      else rc = blob_list(db, key, klen, cursor, limit, o);
      sqlite3_close_v2(db);
    }
  }
  close(dfd);
  return rc;
}

int pblob_read(const char *dir, const char *key, size_t klen, prov_out *o) {
  if (!blob_key_ok(key, klen))
    return prov_fail(o, NNO_EINVAL, "not a blob key");
  int dfd = bucket_open(dir, o);
  if (dfd < 0) return o->error;
  sqlite3 *db;
  char name[66] = "";
  int rc = idx_open(dir, 1, &db, o->msg, sizeof o->msg);
  if (rc) {
    o->error = rc;
  } else {
    rc = blob_lookup(db, key, klen, name, o);
    sqlite3_close_v2(db);
  }
  if (!rc && o->found) {
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 && errno == ENOENT) {
      o->found = 0;
    } else if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      rc = prov_fail(o, NNO_EIO, "cannot open the object: %s",
                     fd < 0 ? strerror(errno) : "not a regular file");
      if (fd >= 0) close(fd);
    } else {
      o->fd = fd;
      o->size = (uint64_t)st.st_size;
    }
  }
  close(dfd);
  return rc;
}

uint64_t pblob_usage(const char *dir) {
  char path[4096];
  uint64_t sum = 0;
  /* Not the -shm: it is shared memory, whose size comes and goes. */
  static const char *const f[] = {IDX_NAME, IDX_NAME "-wal",
                                  IDX_NAME "-journal"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, f[i]);
    sum += prov_file_size(path);
  }
  sqlite3 *db;
  char msg[PROV_MSG_MAX];
  if (idx_open(dir, 0, &db, msg, sizeof msg)) return sum;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, "SELECT coalesce(sum(size), 0) FROM objects", -1,
                         &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    sum += (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close_v2(db);
  return sum;
}

/* Is `name` the object of an index row? */
static int indexed(sqlite3 *db, const char *name) {
  sqlite3_stmt *st = NULL;
  int found = 0;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM objects WHERE name = ?1", -1, &st,
                         NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  return found;
}

int pblob_sweep(const char *dir, const prov_quota *q) {
  prov_out o;
  prov_out_init(&o);
  int dfd = bucket_open(dir, &o);
  if (dfd < 0) return o.error;
  prov_qlock l = {.fd = -1};
  sqlite3 *db = NULL;
  int rc = 0;
  if (q && (rc = prov_quota_begin(q, &l, o.msg, sizeof o.msg))) goto done;
  if ((rc = idx_open(dir, 0, &db, o.msg, sizeof o.msg))) goto done;
  int dfd2 = dup(dfd);
  DIR *d = dfd2 >= 0 ? fdopendir(dfd2) : NULL;
  if (!d) {
    if (dfd2 >= 0) close(dfd2);
    rc = NNO_EIO;
    goto done;
  }
  for (struct dirent *e; (e = readdir(d));) {
    const char *n = e->d_name;
    if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
        strncmp(n, IDX_NAME, sizeof IDX_NAME - 1) == 0)
      continue;
    struct stat st;
    int keep = n[0] == 'o' && strlen(n) == 65 &&
               fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISREG(st.st_mode) && indexed(db, n);
    if (!keep) unlinkat(dfd, n, 0); /* a temp, an orphan, a planted link */
  }
  closedir(d);
  /* Rows whose object is gone (a crash between a rename and its row
   * cannot do this, but a lost file can), and rows whose size differs
   * from their object's (a crash between the rename and the row). */
  sqlite3_stmt *st = NULL;
  sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (sqlite3_prepare_v2(db, "SELECT key, name, size FROM objects", -1, &st,
                         NULL) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      const char *name = (const char *)sqlite3_column_text(st, 1);
      struct stat fs;
      sqlite3_stmt *fix = NULL;
      if (fstatat(dfd, name, &fs, AT_SYMLINK_NOFOLLOW) != 0) {
        if (sqlite3_prepare_v2(db, "DELETE FROM objects WHERE name = ?1", -1,
                               &fix, NULL) == SQLITE_OK) {
          sqlite3_bind_text(fix, 1, name, -1, SQLITE_TRANSIENT);
          sqlite3_step(fix);
        }
      } else if ((int64_t)fs.st_size != sqlite3_column_int64(st, 2)) {
        /* Recompute the etag from the object. */
        int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        crypto_generichash_state hs;
        unsigned char h[16], chunk[65536];
        char etag[72];
        crypto_generichash_init(&hs, NULL, 0, sizeof h);
        ssize_t r;
        while (fd >= 0 && (r = read(fd, chunk, sizeof chunk)) > 0)
          crypto_generichash_update(&hs, chunk, (unsigned long long)r);
        if (fd >= 0) close(fd);
        crypto_generichash_final(&hs, h, sizeof h);
        etag[0] = '"';
        prov_hex(h, sizeof h, etag + 1, 70);
        strcat(etag, "\"");
        if (sqlite3_prepare_v2(db, "UPDATE objects SET size = ?2, etag = ?3"
                                   " WHERE name = ?1",
                               -1, &fix, NULL) == SQLITE_OK) {
          sqlite3_bind_text(fix, 1, name, -1, SQLITE_TRANSIENT);
          sqlite3_bind_int64(fix, 2, (int64_t)fs.st_size);
          sqlite3_bind_text(fix, 3, etag, -1, SQLITE_TRANSIENT);
          sqlite3_step(fix);
        }
      }
      sqlite3_finalize(fix);
    }
  }
  sqlite3_finalize(st);
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    rc = NNO_EIO;
  }
done:
  sqlite3_close_v2(db);
  prov_quota_end(&l);
  close(dfd);
  return rc;
}
