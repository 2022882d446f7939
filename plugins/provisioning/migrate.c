/* SQL migrations of packages: migrations/{name}/NNNN_what.sql in the
 * package folder, applied in order to the sql resource {name}, all of a
 * package's pending ones in one transaction, each recorded in the
 * database's _nno_migrations (package, version, applied_at). Their SQL
 * runs under the same guards as the package's own calls. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nno/plugin.h>

#include "prov.h"

#define MIG_MAX_FILES 1000
#define MIG_MAX_BYTES (1u << 20)

typedef struct mig {
  int version;
  char file[256];
} mig;

static int cmp_mig(const void *a, const void *b) {
  return ((const mig *)a)->version - ((const mig *)b)->version;
}

/* NNNN_[A-Za-z0-9_.-]*.sql: the version, or -1. */
static int mig_version(const char *n) {
  size_t len = strlen(n);
  if (len < 9 || strcmp(n + len - 4, ".sql") != 0 || n[4] != '_') return -1;
  int v = 0;
  for (int i = 0; i < 4; i++) {
    if (n[i] < '0' || n[i] > '9') return -1;
    v = v * 10 + (n[i] - '0');
  }
  for (size_t i = 5; i < len - 4; i++) {
    char c = n[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
      return -1;
  }
  return v;
}

static char *read_file(int dfd, const char *name, char *msg, size_t cap) {
  int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      (uint64_t)st.st_size > MIG_MAX_BYTES) {
    snprintf(msg, cap, "%s: not a regular file of at most %u bytes", name,
             MIG_MAX_BYTES);
    if (fd >= 0) close(fd);
    return NULL;
  }
  char *t = malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (t && got < (size_t)st.st_size) {
    ssize_t r = read(fd, t + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (!t || got != (size_t)st.st_size || memchr(t, '\0', got)) {
    snprintf(msg, cap, "%s: cannot read it (or it holds a NUL byte)", name);
    free(t);
    return NULL;
  }
  t[got] = '\0';
  return t;
}

int prov_migrate(const char *dbpath, int fresh, const char *pkgdir,
                 const char *package,
                 const char *name, char *msg, size_t cap) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/migrations/%s", pkgdir, name);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    if (errno == ENOENT) return 0; /* no migrations */
    snprintf(msg, cap, "cannot read %s: %s", dir, strerror(errno));
    return NNO_EIO;
  }
  mig *v = NULL;
  size_t n = 0;
  int rc = 0;
  int dfd2 = dup(dfd);
  DIR *d = dfd2 >= 0 ? fdopendir(dfd2) : NULL;
  if (!d) {
    if (dfd2 >= 0) close(dfd2);
    close(dfd);
    snprintf(msg, cap, "cannot read %s", dir);
    return NNO_EIO;
  }
  for (struct dirent *e; !rc && (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0) continue;
    int ver = mig_version(e->d_name);
    if (ver < 1 || n >= MIG_MAX_FILES || len >= sizeof v->file) {
      snprintf(msg, cap, "%s/%s: expected NNNN_what.sql", dir, e->d_name);
      rc = NNO_EINVAL;
      break;
    }
    mig *nv = realloc(v, (n + 1) * sizeof *v);
    if (!nv) {
      rc = NNO_ENOMEM;
      snprintf(msg, cap, "out of memory");
      break;
    }
    v = nv;
    v[n].version = ver;
    memcpy(v[n].file, e->d_name, len + 1);
    n++;
  }
  closedir(d);
  if (!rc && n) qsort(v, n, sizeof *v, cmp_mig);
  for (size_t i = 0; !rc && i < n; i++)
    if (v[i].version != (int)i + 1) {
      snprintf(msg, cap, "%s: migrations must be numbered 0001, 0002, ... "
                         "without gaps (found %s)", dir, v[i].file);
      rc = NNO_EINVAL;
    }
  sqlite3 *db = NULL;
  prov_bounds b;
  prov_bounds_default(&b);
  b.time_ms = 5000;
  b.max_sql = MIG_MAX_BYTES;
  if (rc || !n || (rc = psql_open(dbpath, &b, &db, msg, cap))) goto done;
  psql_trust(db, 1);
  /* A database this activation created is discarded whole if it fails or
   * the host dies: no sync per statement, one at the end. */
  if (fresh) sqlite3_exec(db, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
  int src = sqlite3_exec(
      db,
      "CREATE TABLE IF NOT EXISTS _nno_migrations (package TEXT NOT NULL,"
      " version INTEGER NOT NULL, applied_at TEXT NOT NULL,"
      " PRIMARY KEY (package, version));"
      "BEGIN IMMEDIATE",
      NULL, NULL, NULL);
  sqlite3_stmt *st = NULL;
  int64_t have = 0;
  if (src == SQLITE_OK)
    src = sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM"
                                 " _nno_migrations WHERE package = ?1",
                             -1, &st, NULL);
  if (src == SQLITE_OK) {
    sqlite3_bind_text(st, 1, package, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) have = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  psql_trust(db, 0);
  if (src != SQLITE_OK) {
    snprintf(msg, cap, "cannot read _nno_migrations: %s", sqlite3_errmsg(db));
    rc = NNO_EIO;
    goto done;
  }
  for (size_t i = (size_t)(have < 0 ? 0 : have); !rc && i < n; i++) {
    char *sql = read_file(dfd, v[i].file, msg, cap);
    if (!sql) {
      rc = NNO_EINVAL;
      break;
    }
    char *err = NULL;
    src = sqlite3_exec(db, sql, NULL, NULL, &err);
    free(sql);
    if (src != SQLITE_OK) {
      snprintf(msg, cap, "%s: %s", v[i].file,
               (src & 0xff) == SQLITE_AUTH
                   ? "refused (ATTACH, PRAGMA, transactions, _nno_ tables)"
                   : err ? err : sqlite3_errstr(src));
      sqlite3_free(err);
      rc = (src & 0xff) == SQLITE_BUSY ? NNO_EBUSY : NNO_EINVAL;
      break;
    }
    char rec[160];
    snprintf(rec, sizeof rec,
             "INSERT INTO _nno_migrations VALUES (?1, %d, strftime("
             "'%%Y-%%m-%%dT%%H:%%M:%%SZ', 'now'))",
             v[i].version);
    psql_trust(db, 1);
    st = NULL;
    src = sqlite3_prepare_v2(db, rec, -1, &st, NULL);
    if (src == SQLITE_OK) {
      sqlite3_bind_text(st, 1, package, -1, SQLITE_STATIC);
      src = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    psql_trust(db, 0);
    if (src != SQLITE_OK) {
      snprintf(msg, cap, "cannot record %s: %s", v[i].file, sqlite3_errmsg(db));
      rc = NNO_EIO;
    }
  }
  psql_trust(db, 1);
  if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    snprintf(msg, cap, "cannot commit the migrations: %s", sqlite3_errmsg(db));
    rc = NNO_EIO;
  }
  if (rc && !sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  psql_trust(db, 0);
done:
  sqlite3_close_v2(db);
  if (!rc && n && fresh && prov_sync(dbpath)) {
    snprintf(msg, cap, "cannot sync %s: %s", dbpath, strerror(errno));
    rc = NNO_EIO;
  }
  free(v);
  close(dfd);
  return rc;
}
