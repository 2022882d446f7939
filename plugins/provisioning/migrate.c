/* SQL migrations of packages: migrations/{name}/NNNN_what.sql in the
 * package folder, applied in order to the sql resource {name}, all of a
 * package's pending ones in one transaction, each recorded in the
 * database's _nno_migrations (package, version, applied_at, down) with the
 * text of its inverse NNNN_what.down.sql when the package ships one. A
 * version whose migrations stop before the database's (a rollback) runs
 * the stored inverses, newest first, in one transaction; a migration
 * stored without one refuses the rollback. Their SQL runs under the same
 * guards as the package's own calls. */
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

/* One migration of the folder: NNNN_what.sql and, if shipped, its inverse
 * NNNN_what.down.sql. */
typedef struct mig {
  int version;
  char file[256];
  char down[256]; /* "" when no inverse is shipped */
} mig;

static int cmp_mig(const void *a, const void *b) {
  return ((const mig *)a)->version - ((const mig *)b)->version;
}

/* NNNN_[A-Za-z0-9_.-]*.sql: the version, or -1. *down is set when the name
 * ends in ".down.sql" (an inverse, not a migration of its own). */
static int mig_version(const char *n, int *down) {
  size_t len = strlen(n);
  if (len < 9 || strcmp(n + len - 4, ".sql") != 0 || n[4] != '_') return -1;
  *down = len >= 14 && strcmp(n + len - 9, ".down.sql") == 0;
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

/* Read the folder open on dfd (named `dir` in messages) into *out, sorted
 * and checked: numbered 1..n without gaps, each inverse beside the
 * migration of the same name. 0 (with *out malloc'd, *n set) or a code. */
static int mig_list(int dfd, const char *dir, mig **out, size_t *nout,
                    char *msg, size_t cap) {
  mig *v = NULL;
  size_t n = 0, ndown = 0;
  char (*downs)[256] = NULL;
  int rc = 0;
  int dfd2 = dup(dfd);
  DIR *d = dfd2 >= 0 ? fdopendir(dfd2) : NULL;
  if (!d) {
    if (dfd2 >= 0) close(dfd2);
    snprintf(msg, cap, "cannot read %s", dir);
    return NNO_EIO;
  }
  for (struct dirent *e; !rc && (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0) continue;
    int down = 0, ver = mig_version(e->d_name, &down);
    if (ver < 1 || n + ndown >= MIG_MAX_FILES || len >= sizeof v->file) {
      snprintf(msg, cap, "%s/%s: expected NNNN_what.sql or NNNN_what.down.sql",
               dir, e->d_name);
      rc = NNO_EINVAL;
      break;
    }
    if (down) {
      char(*nd)[256] = realloc(downs, (ndown + 1) * sizeof *downs);
      if (!nd) {
        rc = NNO_ENOMEM;
        break;
      }
      downs = nd;
      memcpy(downs[ndown++], e->d_name, len + 1);
      continue;
    }
    mig *nv = realloc(v, (n + 1) * sizeof *v);
    if (!nv) {
      rc = NNO_ENOMEM;
      break;
    }
    v = nv;
    v[n].version = ver;
    memcpy(v[n].file, e->d_name, len + 1);
    v[n].down[0] = '\0';
    n++;
  }
  closedir(d);
  if (rc == NNO_ENOMEM) snprintf(msg, cap, "out of memory");
  if (!rc && n) qsort(v, n, sizeof *v, cmp_mig);
  for (size_t i = 0; !rc && i < n; i++)
    if (v[i].version != (int)i + 1) {
      snprintf(msg, cap, "%s: migrations must be numbered 0001, 0002, ... "
                         "without gaps (found %s)", dir, v[i].file);
      rc = NNO_EINVAL;
    }
  /* Each inverse pairs with the migration it undoes: "0002_tag.down.sql"
   * with "0002_tag.sql". */
  for (size_t k = 0; !rc && k < ndown; k++) {
    size_t dl = strlen(downs[k]), i = 0;
    for (; i < n; i++) {
      size_t ul = strlen(v[i].file);
      if (ul + 5 == dl && memcmp(v[i].file, downs[k], ul - 4) == 0) break;
    }
    if (i == n) {
      snprintf(msg, cap, "%s/%s: no migration %.*s.sql for it to undo", dir,
               downs[k], (int)(dl - 9), downs[k]);
      rc = NNO_EINVAL;
    } else {
      memcpy(v[i].down, downs[k], dl + 1);
    }
  }
  free(downs);
  if (rc) {
    free(v);
    return rc;
  }
  *out = v;
  *nout = n;
  return 0;
}

/* Run migration text `sql` (under the package guards); 0 or a code, with
 * msg naming `file`. */
static int mig_exec(sqlite3 *db, const char *file, const char *sql, char *msg,
                    size_t cap) {
  char *err = NULL;
  int src = sqlite3_exec(db, sql, NULL, NULL, &err);
  if (src == SQLITE_OK) return 0;
  snprintf(msg, cap, "%s: %s", file,
           (src & 0xff) == SQLITE_AUTH
               ? "refused (ATTACH, PRAGMA, transactions, _nno_ tables)"
           : err ? err
                 : sqlite3_errstr(src));
  sqlite3_free(err);
  return (src & 0xff) == SQLITE_BUSY ? NNO_EBUSY : NNO_EINVAL;
}

/* A trusted statement on the bookkeeping table: `sql` with ?1 the package
 * and ?2 an integer, ?3 a text (each bound when given). For a SELECT, the
 * first row's first column is copied into *text (malloc'd; NULL when the
 * value is NULL or there is no row) and *found set. SQLite's code. */
static int mig_stmt(sqlite3 *db, const char *sql, const char *package,
                    int64_t num, const char *t3, char **text, int *found) {
  sqlite3_stmt *st = NULL;
  psql_trust(db, 1);
  int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (src == SQLITE_OK) {
    sqlite3_bind_text(st, 1, package, -1, SQLITE_STATIC);
    if (sqlite3_bind_parameter_count(st) >= 2) sqlite3_bind_int64(st, 2, num);
    if (sqlite3_bind_parameter_count(st) >= 3)
      sqlite3_bind_text(st, 3, t3, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW && text) {
      const unsigned char *v = sqlite3_column_text(st, 0);
      *found = 1;
      *text = v ? strdup((const char *)v) : NULL;
      if (v && !*text) src = SQLITE_NOMEM;
    } else if (s != SQLITE_DONE && s != SQLITE_ROW) {
      src = s;
    }
  }
  sqlite3_finalize(st);
  psql_trust(db, 0);
  return src;
}

/* Run down migration `down` (file `file`) of migration `up` just applied,
 * then undo it: a down the guards refuse, or that fails, is found when
 * its up is applied, not at the rollback it would poison. 0 or a code
 * with msg. */
static int mig_down_check(sqlite3 *db, const char *up, const char *file,
                          const char *down, char *msg, size_t cap) {
  psql_trust(db, 1);
  int src = sqlite3_exec(db, "SAVEPOINT nno_down_check", NULL, NULL, NULL);
  psql_trust(db, 0);
  if (src != SQLITE_OK) {
    snprintf(msg, cap, "cannot check %s: %s", file, sqlite3_errmsg(db));
    return NNO_EIO;
  }
  char m[PROV_MSG_MAX];
  int rc = mig_exec(db, file, down, m, sizeof m);
  if (rc)
    snprintf(msg, cap,
             "%s cannot be undone: %s (a down migration runs "
             "under the same rules as the migrations)",
             up, m);
  psql_trust(db, 1);
  if (sqlite3_exec(db, "ROLLBACK TO nno_down_check", NULL, NULL, NULL) !=
          SQLITE_OK ||
      sqlite3_exec(db, "RELEASE nno_down_check", NULL, NULL, NULL) !=
          SQLITE_OK) {
    if (!rc)
      snprintf(msg, cap, "cannot check %s: %s", file, sqlite3_errmsg(db));
    rc = rc ? rc : NNO_EIO;
  }
  psql_trust(db, 0);
  return rc;
}

int prov_migrate(const char *dbpath, int fresh, const char *pkgdir,
                 const char *package, const char *name, char *msg, size_t cap) {
  return prov_migrate_to(dbpath, fresh, pkgdir, package, name, NULL, NULL,
                         msg, cap);
}

static int migrate_begin(sqlite3 **dbp, const char *dbpath, int fresh,
                         const char *pkgdir, const char *package,
                         const char *name, int64_t *from, int64_t *to,
                         char *msg, size_t cap);

int prov_migrate_to(const char *dbpath, int fresh, const char *pkgdir,
                    const char *package, const char *name, int64_t *from,
                    int64_t *to, char *msg, size_t cap) {
  sqlite3 *db = NULL;
  int rc = migrate_begin(&db, dbpath, fresh, pkgdir, package, name, from, to,
                         msg, cap);
  if (!rc) rc = prov_migrate_commit(db, dbpath, fresh, msg, cap);
  else prov_migrate_abort(db);
  if (rc && to) *to = -1;
  return rc;
}

int prov_migrate_commit(sqlite3 *db, const char *dbpath, int fresh, char *msg,
                        size_t cap) {
  int rc = 0;
  if (!db) return 0;
  psql_trust(db, 1);
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    snprintf(msg, cap, "cannot commit the migrations: %s", sqlite3_errmsg(db));
    rc = NNO_EIO;
    if (!sqlite3_get_autocommit(db))
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  }
  psql_trust(db, 0);
  sqlite3_close_v2(db);
  if (!rc && fresh && prov_sync(dbpath)) {
    snprintf(msg, cap, "cannot sync %s: %s", dbpath, strerror(errno));
    rc = NNO_EIO;
  }
  return rc;
}

void prov_migrate_abort(sqlite3 *db) {
  if (!db) return;
  psql_trust(db, 1);
  if (!sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  psql_trust(db, 0);
  sqlite3_close_v2(db);
}

int prov_migrate_begin(sqlite3 **dbp, const char *dbpath, int fresh,
                       const char *pkgdir, const char *package,
                       const char *name, char *msg, size_t cap) {
  return migrate_begin(dbp, dbpath, fresh, pkgdir, package, name, NULL, NULL,
                       msg, cap);
}

static int migrate_begin(sqlite3 **dbp, const char *dbpath, int fresh,
                         const char *pkgdir, const char *package,
                         const char *name, int64_t *from, int64_t *to,
                         char *msg, size_t cap) {
  if (from) *from = -1;
  if (to) *to = -1;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/migrations/%s", pkgdir, name);
  mig *v = NULL;
  size_t n = 0;
  int rc = 0;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0 && errno != ENOENT) {
    snprintf(msg, cap, "cannot read %s: %s", dir, strerror(errno));
    return NNO_EIO;
  }
  /* No folder: no migrations, which for a database migrated by an older
   * version of the package is a rollback to 0. */
  if (dfd >= 0 && (rc = mig_list(dfd, dir, &v, &n, msg, cap))) goto done0;
  /* A database this activation made has nothing to undo. */
  if (!n && fresh) goto done0;
  sqlite3 *db = *dbp;
  int src = SQLITE_OK;
  if (!db) {
    /* The first package on this database: open it, one transaction. */
    prov_bounds b;
    prov_bounds_default(&b);
    b.time_ms = 5000;
    b.max_sql = MIG_MAX_BYTES;
    if ((rc = psql_open(dbpath, &b, &db, msg, cap))) goto done0;
    *dbp = db;
    psql_trust(db, 1);
    /* A database this activation created is discarded whole if it fails
     * or the host dies: no sync per statement, one at the end. */
    if (fresh) sqlite3_exec(db, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
    src = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  }
  psql_trust(db, 1);
  /* The table, and its column "down" (the inverse stored with each
   * migration applied) in a table made before it existed. */
  int has_table = 0, has_down = 0;
  sqlite3_stmt *st = NULL;
  if (src == SQLITE_OK)
    src = sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info("
                                 "'_nno_migrations')", -1, &st, NULL);
  while (src == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    has_table = 1;
    const unsigned char *c = sqlite3_column_text(st, 0);
    if (c && strcmp((const char *)c, "down") == 0) has_down = 1;
  }
  sqlite3_finalize(st);
  if (src == SQLITE_OK && !has_table && n)
    src = sqlite3_exec(
        db,
        "CREATE TABLE _nno_migrations (package TEXT NOT NULL,"
        " version INTEGER NOT NULL, applied_at TEXT NOT NULL, down TEXT,"
        " PRIMARY KEY (package, version))",
        NULL, NULL, NULL);
  else if (src == SQLITE_OK && has_table && !has_down)
    src = sqlite3_exec(db, "ALTER TABLE _nno_migrations ADD COLUMN down TEXT",
                       NULL, NULL, NULL);
  psql_trust(db, 0);
  if (src != SQLITE_OK) {
    snprintf(msg, cap, "cannot read _nno_migrations: %s", sqlite3_errmsg(db));
    rc = (src & 0xff) == SQLITE_BUSY ? NNO_EBUSY : NNO_EIO;
    goto done0;
  }
  int64_t have = 0;
  if (has_table || n) {
    char *t = NULL;
    int found = 0;
    src = mig_stmt(db,
                   "SELECT coalesce(max(version), 0) FROM _nno_migrations"
                   " WHERE package = ?1",
                   package, 0, NULL, &t, &found);
    have = t ? strtoll(t, NULL, 10) : 0;
    free(t);
    if (src != SQLITE_OK) {
      snprintf(msg, cap, "cannot read _nno_migrations: %s",
               sqlite3_errmsg(db));
      rc = NNO_EIO;
      goto done0;
    }
  }
  if (from) *from = have;
  /* A rollback: this version stops at n, the database is further. Undo
   * have..n+1 with the inverses stored when they were applied, newest
   * first, in this one transaction. */
  for (int64_t k = have; !rc && k > (int64_t)n; k--) {
    char *down = NULL, file[64];
    int found = 0;
    snprintf(file, sizeof file, "down of migration %04lld", (long long)k);
    src = mig_stmt(db,
                   "SELECT down FROM _nno_migrations WHERE package = ?1"
                   " AND version = ?2",
                   package, k, NULL, &down, &found);
    if (src != SQLITE_OK) {
      snprintf(msg, cap, "cannot read _nno_migrations: %s",
               sqlite3_errmsg(db));
      rc = NNO_EIO;
    } else if (!down) {
      snprintf(msg, cap,
               "cannot roll back migrations/%s from %04lld to %04zu: "
               "migration %04lld was applied without a down migration "
               "(NNNN_what.down.sql); the database is left as it was",
               name, (long long)have, n, (long long)k);
      rc = NNO_EREFUSED;
    } else if (!(rc = mig_exec(db, file, down, msg, cap))) {
      src = mig_stmt(db,
                     "DELETE FROM _nno_migrations WHERE package = ?1 AND"
                     " version = ?2",
                     package, k, NULL, NULL, NULL);
      if (src != SQLITE_OK) {
        snprintf(msg, cap, "cannot record the rollback of %04lld: %s",
                 (long long)k, sqlite3_errmsg(db));
        rc = NNO_EIO;
      }
    }
    free(down);
  }
  for (size_t i = (size_t)(have < 0 ? 0 : have); !rc && i < n; i++) {
    char *sql = read_file(dfd, v[i].file, msg, cap);
    char *down = NULL;
    if (sql && v[i].down[0]) down = read_file(dfd, v[i].down, msg, cap);
    if (!sql || (v[i].down[0] && !down)) {
      free(sql);
      rc = NNO_EINVAL;
      break;
    }
    rc = mig_exec(db, v[i].file, sql, msg, cap);
    free(sql);
    if (!rc && down)
      rc = mig_down_check(db, v[i].file, v[i].down, down, msg, cap);
    if (!rc) {
      char rec[200];
      snprintf(rec, sizeof rec,
               "INSERT INTO _nno_migrations VALUES (?1, ?2, strftime("
               "'%%Y-%%m-%%dT%%H:%%M:%%SZ', 'now'), ?3)");
      src = mig_stmt(db, rec, package, v[i].version, down, NULL, NULL);
      if (src != SQLITE_OK) {
        snprintf(msg, cap, "cannot record %s: %s", v[i].file,
                 sqlite3_errmsg(db));
        rc = NNO_EIO;
      }
    }
    free(down);
  }
  /* A kill here, inside the transaction, leaves the database as it was
   * (SQLite rolls the transaction back at the next open). */
  if (!rc && have > (int64_t)n && prov_failpoint("migrate:down")) {
    snprintf(msg, cap, "failpoint migrate:down");
    rc = NNO_EIO;
  }
  if (!rc && have < (int64_t)n && prov_failpoint("migrate:up")) {
    snprintf(msg, cap, "failpoint migrate:up");
    rc = NNO_EIO;
  }
done0:
  if (!rc && to) *to = (int64_t)n;
  free(v);
  if (dfd >= 0) close(dfd);
  return rc;
}
