/* The control plane's steps on files and core.db, run on the pool: make
 * a platform's folders, create and undo resources, archive and remove a
 * platform, and recover the intents a crash left open. No host call, so
 * the unit tests drive every half-done state directly. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <nno/plugin.h>

#include "prov.h"

int prov_platform_dir(const char *data, const char *platform, char *out,
                      size_t cap) {
  if (!prov_id_ok(platform, strlen(platform))) return NNO_EINVAL;
  int n = snprintf(out, cap, "%s/platforms/%s", data, platform);
  return n < 0 || (size_t)n >= cap ? NNO_ETOOBIG : 0;
}

int prov_resource_path(const char *data, const char *platform,
                       const char *stack, const char *type, const char *name,
                       char *out, size_t cap) {
  if (!prov_id_ok(platform, strlen(platform)) ||
      !prov_id_ok(stack, strlen(stack)) || !prov_id_ok(name, strlen(name)))
    return NNO_EINVAL;
  const char *ext;
  if (strcmp(type, "sql") == 0 || strcmp(type, "kv") == 0) ext = ".db";
  else if (strcmp(type, "blob") == 0) ext = "";
  else return NNO_EINVAL;
  int n = snprintf(out, cap, "%s/platforms/%s/%s/%s-%s-%s%s", data, platform,
                   type, platform, stack, name, ext);
  return n < 0 || (size_t)n >= cap ? NNO_ETOOBIG : 0;
}

int prov_platform_files(const char *data, const char *platform, char *msg,
                        size_t cap) {
  char pdir[4096], path[4200];
  int rc = prov_platform_dir(data, platform, pdir, sizeof pdir);
  if (rc) {
    snprintf(msg, cap, "not a platform id");
    return rc;
  }
  snprintf(path, sizeof path, "%s/platforms", data);
  if ((rc = prov_mkdir(path, msg, cap)) || (rc = prov_mkdir(pdir, msg, cap)))
    return rc;
  static const char *const sub[] = {"shell", "sql", "kv", "blob"};
  for (size_t i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/%s", pdir, sub[i]);
    if ((rc = prov_mkdir(path, msg, cap))) return rc;
  }
  static const char *const files[] = {".inuse", ".quota"};
  for (size_t i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", pdir, files[i]);
    if (prov_touch(path)) {
      snprintf(msg, cap, "cannot create %s: %s", path, strerror(errno));
      return NNO_EIO;
    }
  }
  return 0;
}

int prov_resource_make(const char *path, const char *type, char *msg,
                       size_t cap) {
  if (strcmp(type, "sql") == 0) return psql_create(path, msg, cap);
  if (strcmp(type, "kv") == 0) return pkv_create(path, msg, cap);
  return pblob_create(path, msg, cap);
}

/* Remove a resource's file (and its WAL and shared memory) or folder. */
int prov_resource_unlink(const char *path) {
  char p[4200];
  int rc = prov_rmtree(path);
  static const char *const ext[] = {"-wal", "-shm", "-journal"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s%s", path, ext[i]);
    if (unlink(p) != 0 && errno != ENOENT) rc = NNO_EIO;
  }
  return rc;
}

int prov_undo_created(sqlite3 *db, const char *data, const char *platform,
                      const char *args) {
  json_t *a = json_loads(args ? args : "{}", 0, NULL);
  json_t *list = json_object_get(a, "created");
  size_t i;
  json_t *it;
  int rc = 0;
  json_array_foreach(list, i, it) {
    const char *type = json_string_value(json_object_get(it, "type"));
    const char *stack = json_string_value(json_object_get(it, "stack"));
    const char *name = json_string_value(json_object_get(it, "name"));
    char path[4096];
    if (!type || !stack || !name ||
        prov_resource_path(data, platform, stack, type, name, path,
                           sizeof path))
      continue;
    if (prov_resource_unlink(path)) rc = NNO_EIO;
    int r = pj_resource_del(db, platform, stack, type, name);
    if (r) rc = r;
  }
  json_decref(a);
  return rc;
}

int prov_remove_data(sqlite3 *db, const char *data, const char *platform,
                     const char *incarnation, char *msg, size_t cap) {
  char pdir[4096], aside[4200];
  int rc = prov_platform_dir(data, platform, pdir, sizeof pdir);
  if (rc) return rc;
  /* Renamed aside first: the folder (and its .inuse) vanishes at once,
   * and a platform of the same id may be made while this one is being
   * removed. */
  snprintf(aside, sizeof aside, "%s/platforms/.removing-%s-%s", data, platform,
           incarnation && *incarnation ? incarnation : "0");
  struct stat st;
  if (lstat(pdir, &st) == 0) {
    if (prov_rmtree(aside) || rename(pdir, aside) != 0) {
      snprintf(msg, cap, "cannot move %s aside: %s", pdir, strerror(errno));
      return NNO_EIO;
    }
  }
  if (prov_failpoint("remove:files")) {
    snprintf(msg, cap, "failpoint remove:files");
    return NNO_EIO;
  }
  if (prov_rmtree(aside)) {
    snprintf(msg, cap, "cannot remove %s", aside);
    return NNO_EIO;
  }
  if ((rc = pj_resource_del_platform(db, platform)))
    snprintf(msg, cap, "cannot forget the resources in core.db");
  return rc;
}

/* ---- archive ------------------------------------------------------------ */

static struct archive *g_ar; /* the archive nftw writes to (one per call) */
static size_t g_skip;        /* bytes of the folder prefix to drop */
static int g_arc_err;

static int add_entry(const char *path, const struct stat *st, int flag,
                     struct FTW *ftw) {
  (void)ftw;
  if (flag != FTW_F && flag != FTW_D) return 0; /* links, others: skipped */
  if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) return 0;
  const char *rel = path + g_skip;
  while (*rel == '/') rel++;
  if (!*rel) return 0;
  if (strcmp(rel, ".inuse") == 0 || strcmp(rel, ".quota") == 0 ||
      strcmp(rel, ".activate") == 0)
    return 0;
  struct archive_entry *e = archive_entry_new();
  if (!e) return g_arc_err = -1;
  archive_entry_set_pathname(e, rel);
  archive_entry_copy_stat(e, st);
  int fd = -1;
  if (S_ISREG(st->st_mode)) {
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      archive_entry_free(e);
      return g_arc_err = -1;
    }
  }
  if (archive_write_header(g_ar, e) != ARCHIVE_OK) g_arc_err = -1;
  char chunk[65536];
  ssize_t r;
  while (!g_arc_err && fd >= 0 && (r = read(fd, chunk, sizeof chunk)) > 0)
    if (archive_write_data(g_ar, chunk, (size_t)r) < 0) g_arc_err = -1;
  if (fd >= 0) close(fd);
  archive_entry_free(e);
  return g_arc_err;
}

int prov_archive(const char *pdir, const char *out, char *msg, size_t cap) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", out);
  unlink(tmp);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    snprintf(msg, cap, "cannot create %s: %s", tmp, strerror(errno));
    return NNO_EIO;
  }
  struct archive *a = archive_write_new();
  int rc = 0;
  if (!a || archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
      archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
      archive_write_open_fd(a, fd) != ARCHIVE_OK) {
    rc = NNO_EIO;
  } else {
    g_ar = a;
    g_skip = strlen(pdir);
    g_arc_err = 0;
    if (nftw(pdir, add_entry, 16, FTW_PHYS) != 0 || g_arc_err) rc = NNO_EIO;
    g_ar = NULL;
    if (archive_write_close(a) != ARCHIVE_OK) rc = NNO_EIO;
  }
  if (a) archive_write_free(a);
  if (!rc && fsync(fd) != 0) rc = NNO_EIO;
  close(fd);
  if (!rc && rename(tmp, out) != 0) rc = NNO_EIO;
  if (rc) {
    snprintf(msg, cap, "cannot archive %s into %s", pdir, out);
    unlink(tmp);
  }
  return rc;
}

/* ---- recovery ----------------------------------------------------------- */

typedef struct rec_ctx {
  sqlite3 *db;
  const char *data;
  char *msg;
  size_t cap;
  int n;
} rec_ctx;

static int recover_one(void *ud, const prov_intent *in) {
  rec_ctx *c = ud;
  json_t *a = json_loads(in->args, 0, NULL);
  int rc = 0;
  /* An intent of another live process is in progress, not interrupted
   * (a worker restarted beside others that still run). */
  json_int_t pid = json_integer_value(json_object_get(a, "pid"));
  if (pid > 0 && pid != (json_int_t)getpid() && kill((pid_t)pid, 0) == 0) {
    json_decref(a);
    return 0;
  }
  if (strcmp(in->op, "create") == 0) {
    /* Idempotent: finish it (the registry calls again, or deletes). */
    rc = prov_platform_files(c->data, in->platform, c->msg, c->cap);
  } else if (strcmp(in->op, "activate") == 0) {
    rc = prov_undo_created(c->db, c->data, in->platform, in->args);
  } else if (strcmp(in->op, "remove") == 0) {
    const char *inc = json_string_value(json_object_get(a, "incarnation"));
    int keep = json_is_true(json_object_get(a, "keep_data"));
    char pdir[4096], out[4200];
    if (prov_platform_dir(c->data, in->platform, pdir, sizeof pdir) == 0 &&
        keep && strcmp(in->step, "archived") != 0 &&
        prov_dir_check(pdir, c->msg, c->cap) == 0) {
      snprintf(out, sizeof out, "%s/archive/%s-%s.tar.gz", c->data,
               in->platform, inc ? inc : "0");
      char adir[4096];
      snprintf(adir, sizeof adir, "%s/archive", c->data);
      rc = prov_mkdir(adir, c->msg, c->cap);
      if (!rc) rc = prov_archive(pdir, out, c->msg, c->cap);
    }
    if (!rc)
      rc = prov_remove_data(c->db, c->data, in->platform, inc, c->msg, c->cap);
  }
  json_decref(a);
  if (!rc) rc = pj_intent_close(c->db, in->id);
  if (rc) return rc;
  c->n++;
  return 0;
}

int prov_recover(sqlite3 *db, const char *data, char *msg, size_t cap) {
  rec_ctx c = {db, data, msg, cap, 0};
  int rc = pj_intent_each(db, recover_one, &c);
  return rc ? rc : c.n;
}

/* ---- activation ----------------------------------------------------------- */

/* The intent's args with `created` appended to, as JSON text. */
static int note_created(sqlite3 *db, int64_t id, json_t *args,
                        const char *type, const char *stack,
                        const char *name) {
  json_t *list = json_object_get(args, "created");
  if (!list || json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "type",
                                                     type, "stack", stack,
                                                     "name", name)))
    return NNO_ENOMEM;
  char *t = json_dumps(args, JSON_COMPACT);
  if (!t) return NNO_ENOMEM;
  int rc = pj_intent_step(db, id, "create", t);
  free(t);
  return rc;
}

/* The databases an activation migrates, each with its transaction held
 * open (prov_migrate_begin) until every package has migrated. */
typedef struct mig_txns {
  struct mig_txn {
    char *path;
    int fresh;
    sqlite3 *db;
  } *v;
  size_t n;
} mig_txns;

/* The transaction slot of database `path` (added when new), or NULL. */
static sqlite3 **mig_txn_for(mig_txns *t, const char *path, int fresh) {
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->v[i].path, path) == 0) return &t->v[i].db;
  struct mig_txn *v = realloc(t->v, (t->n + 1) * sizeof *v);
  if (!v) return NULL;
  t->v = v;
  v[t->n].path = strdup(path);
  if (!v[t->n].path) return NULL;
  v[t->n].fresh = fresh;
  v[t->n].db = NULL;
  return &v[t->n++].db;
}

static void mig_txns_abort(mig_txns *t) {
  for (size_t i = 0; i < t->n; i++) {
    prov_migrate_abort(t->v[i].db);
    t->v[i].db = NULL;
  }
}

/* Commit every database. A commit that fails after others succeeded
 * cannot be taken back here: the message names the databases committed
 * and the one that failed, and the step stays the failed database's. */
static int mig_txns_commit(mig_txns *t, char *step, size_t scap, char *msg,
                           size_t cap) {
  char m[PROV_MSG_MAX];
  for (size_t i = 0; i < t->n; i++) {
    int rc = prov_migrate_commit(t->v[i].db, t->v[i].path, t->v[i].fresh, m,
                                 sizeof m);
    t->v[i].db = NULL;
    if (!rc) continue;
    for (size_t k = i + 1; k < t->n; k++) {
      prov_migrate_abort(t->v[k].db);
      t->v[k].db = NULL;
    }
    const char *base = strrchr(t->v[i].path, '/');
    snprintf(step, scap, "sql:commit");
    snprintf(msg, cap, "%s: %s%s", base ? base + 1 : t->v[i].path, m,
             i ? "; the databases before it in the stack are committed at "
                 "the new version: activate again to bring them together"
               : "");
    return rc;
  }
  return 0;
}

static void mig_txns_free(mig_txns *t) {
  for (size_t i = 0; i < t->n; i++) free(t->v[i].path);
  free(t->v);
  t->v = NULL;
  t->n = 0;
}

/* 1 if this activation created resource type+name (it is in the intent's
 * "created" list), so nothing but this call has seen it. */
static int made_here(json_t *args, const char *type, const char *name) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(args, "created"), i, c) {
    if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0 &&
        strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
      return 1;
  }
  return 0;
}

static void decls_free(json_t **decl, size_t n) {
  for (size_t i = 0; i < n; i++) json_decref(decl[i]);
  free(decl);
}

int prov_activate_run(sqlite3 *db, const char *data, const char *platform,
                      const char *incarnation, const char *stack,
                      const prov_pkg *pkgs, size_t n, int64_t *intent,
                      char *step, size_t scap, char *msg, size_t cap) {
  char pdir[4096], path[4096];
  /* Each package's declared resources, parsed once for the three passes
   * below (the manifest was checked at load: entries are well formed). */
  json_t **decl = calloc(n ? n : 1, sizeof *decl);
  if (!decl) {
    snprintf(step, scap, "journal");
    snprintf(msg, cap, "out of memory");
    return NNO_ENOMEM;
  }
  for (size_t i = 0; i < n; i++)
    decl[i] = json_loads(pkgs[i].resources ? pkgs[i].resources : "[]", 0,
                         NULL);
  json_t *args = json_pack("{s:s, s:s, s:I, s:[]}", "stack", stack,
                           "incarnation", incarnation ? incarnation : "", "pid",
                           (json_int_t)getpid(), "created");
  char *t = args ? json_dumps(args, JSON_COMPACT) : NULL;
  int rc = t ? pj_intent_open(db, "activate", platform, t, intent) : NNO_ENOMEM;
  free(t);
  snprintf(step, scap, "journal");
  if (rc) {
    snprintf(msg, cap, "cannot journal the activation in core.db");
    json_decref(args);
    decls_free(decl, n);
    return rc;
  }
  /* The platform's folders, made if missing (a platform older than this
   * plugin): idempotent, never undone. */
  snprintf(step, scap, "platform");
  if ((rc = prov_platform_dir(data, platform, pdir, sizeof pdir)) ||
      (rc = prov_platform_files(data, platform, msg, cap)))
    goto fail;
  /* Every resource once (packages of one stack share a type+name). Those
   * to create are journalled first, all in one transaction: a crash then
   * leaves no orphan, and one sync covers them. */
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    snprintf(msg, cap, "cannot journal the activation in core.db: %s",
             sqlite3_errmsg(db));
    rc = NNO_EBUSY;
    goto fail;
  }
  for (size_t i = 0; i < n && !rc; i++) {
    json_t *res = decl[i];
    size_t j;
    json_t *it;
    json_array_foreach(res, j, it) {
      const char *type = json_string_value(json_object_get(it, "type"));
      const char *name = json_string_value(json_object_get(it, "name"));
      if (!type || !name) continue;
      snprintf(step, scap, "%s:%s-%s:create", type, stack, name);
      if (prov_resource_path(data, platform, stack, type, name, path,
                             sizeof path)) {
        snprintf(msg, cap, "package %s declares a resource the local driver "
                 "cannot hold", pkgs[i].name);
        rc = NNO_EINVAL;
        break;
      }
      /* Names are joined with '-': another stack's resource must not
       * land on the same file ("a-b" + "c" and "a" + "b-c"). */
      int clash = pj_resource_clash(db, platform, stack, type, name);
      if (clash) {
        snprintf(msg, cap, "%s", clash > 0 ? "another stack's resource has "
                 "the same file name: rename one of them" :
                 "cannot read core.db");
        rc = clash > 0 ? NNO_EREFUSED : clash;
        break;
      }
      struct stat st;
      if (lstat(path, &st) != 0) {
        /* Journalled before it exists: a crash leaves no orphan. */
        if ((rc = note_created(db, *intent, args, type, stack, name)) ||
            (rc = pj_resource_put(db, platform, incarnation, stack, type, name,
                                  "pending", NULL))) {
          snprintf(msg, cap, "cannot journal the resource in core.db");
          break;
        }
      } else {
        /* There before: its row stays as it is; a file without a row (made
         * before this plugin kept rows) is adopted. */
        prov_resource r;
        int have = pj_resource_get(db, platform, stack, type, name, &r);
        if (have < 0 ||
            (have == 0 && (rc = pj_resource_put(db, platform, incarnation,
                                                stack, type, name, "ready",
                                                NULL)))) {
          if (have < 0) rc = have;
          snprintf(msg, cap, "cannot record the resource in core.db");
          break;
        }
      }
    }
  }
  if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    snprintf(msg, cap, "cannot journal the resources in core.db: %s",
             sqlite3_errmsg(db));
    rc = NNO_EIO;
  }
  if (rc) {
    if (!sqlite3_get_autocommit(db))
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    goto fail;
  }
  /* Then the files, now that they are journalled. */
  json_t *made = json_object_get(args, "created");
  size_t k;
  json_t *c;
  json_array_foreach(made, k, c) {
    const char *type = json_string_value(json_object_get(c, "type"));
    const char *name = json_string_value(json_object_get(c, "name"));
    snprintf(step, scap, "%s:%s-%s:create", type, stack, name);
    prov_resource_path(data, platform, stack, type, name, path, sizeof path);
    if (prov_failpoint(step)) {
      snprintf(msg, cap, "failpoint %s", step);
      rc = NNO_EIO;
      break;
    }
    if ((rc = prov_resource_make(path, type, msg, cap))) break;
  }
  if (rc) goto fail;
  /* Then the migrations: one transaction per database, every one held
   * open until all the packages have migrated, then committed together
   * (mig_txns_end): a failure in any package leaves every database as it
   * was. */
  mig_txns txns = {0};
  for (size_t i = 0; i < n && !rc; i++) {
    json_t *res = decl[i];
    size_t j;
    json_t *it;
    json_array_foreach(res, j, it) {
      const char *type = json_string_value(json_object_get(it, "type"));
      const char *name = json_string_value(json_object_get(it, "name"));
      if (!type || !name || strcmp(type, "sql") != 0) continue;
      snprintf(step, scap, "sql:%s-%s:migrate", stack, name);
      prov_resource_path(data, platform, stack, type, name, path, sizeof path);
      if (prov_failpoint(step)) {
        snprintf(msg, cap, "failpoint %s", step);
        rc = NNO_EIO;
        break;
      }
      char m[PROV_MSG_MAX];
      sqlite3 **txn = mig_txn_for(&txns, path, made_here(args, "sql", name));
      if (!txn) {
        snprintf(msg, cap, "out of memory");
        rc = NNO_ENOMEM;
        break;
      }
      if ((rc = prov_migrate_begin(txn, path, made_here(args, "sql", name),
                                   pkgs[i].dir, pkgs[i].name, name, m,
                                   sizeof m))) {
        snprintf(msg, cap, "package %s: %s", pkgs[i].name, m);
        break;
      }
    }
  }
  if (!rc) {
    rc = mig_txns_commit(&txns, step, scap, msg, cap);
    /* Committed, with the activation row still naming the version before:
     * a kill from here on is re-aligned at the next start. The failpoint
     * of each database: "sql:{stack}-{name}:migrated". */
    size_t pl = strlen(platform);
    for (size_t i = 0; !rc && i < txns.n; i++) {
      const char *base = strrchr(txns.v[i].path, '/');
      base = base ? base + 1 : txns.v[i].path;
      size_t bl = strlen(base);
      if (bl <= pl + 4 || strncmp(base, platform, pl) || base[pl] != '-')
        continue;
      snprintf(step, scap, "sql:%.*s:migrated", (int)(bl - pl - 4),
               base + pl + 1);
      if (prov_failpoint(step)) {
        snprintf(msg, cap, "failpoint %s", step);
        rc = NNO_EIO;
      }
    }
  } else {
    mig_txns_abort(&txns);
  }
  mig_txns_free(&txns);
  if (rc) goto fail;
  /* Ready: every declared resource exists and is migrated (one
   * transaction with the intent's step). */
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    rc = NNO_EBUSY;
  for (size_t i = 0; i < n && !rc; i++) {
    json_t *res = decl[i];
    size_t j;
    json_t *it;
    json_array_foreach(res, j, it) {
      const char *type = json_string_value(json_object_get(it, "type"));
      const char *name = json_string_value(json_object_get(it, "name"));
      if (type && name &&
          (rc = pj_resource_put(db, platform, incarnation, stack, type, name,
                                "ready", NULL)))
        break;
    }
  }
  if (!rc) rc = pj_intent_step(db, *intent, "migrated", NULL);
  if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    rc = NNO_EIO;
  if (rc && !sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  if (rc) {
    snprintf(step, scap, "journal");
    snprintf(msg, cap, "cannot record the resources in core.db");
    goto fail;
  }
  json_decref(args);
  decls_free(decl, n);
  return 0;
fail: {
  /* Undo what this call made, then record the failure with the resource
   * that failed (its row says why; its file, if this call made it, is
   * gone). */
  char *a = json_dumps(args, JSON_COMPACT);
  prov_undo_created(db, data, platform, a);
  free(a);
  char type[8] = "", name[PROV_ID_MAX] = "", err[PROV_MSG_MAX];
  const char *colon = strchr(step, ':');
  if (colon && (size_t)(colon - step) < sizeof type) {
    memcpy(type, step, (size_t)(colon - step));
    type[colon - step] = '\0';
    size_t sl = strlen(stack);
    const char *nm = colon + 1 + sl + 1;
    const char *end = strrchr(step, ':');
    if (strncmp(colon + 1, stack, sl) == 0 && end > nm &&
        (size_t)(end - nm) < sizeof name) {
      memcpy(name, nm, (size_t)(end - nm));
      name[end - nm] = '\0';
    }
  }
  /* Not for a name clash: that row would be the clashing name. */
  if (type[0] && name[0] && rc != NNO_EREFUSED) {
    snprintf(err, sizeof err, "%s: %s", step, msg);
    pj_resource_put(db, platform, incarnation, stack, type, name, "failed",
                    err);
  }
  pj_intent_close(db, *intent);
  json_decref(args);
  decls_free(decl, n);
  return rc;
}
}

int prov_activate_end(sqlite3 *db, const char *data, const char *platform,
                      int64_t intent, int ok) {
  int rc = 0;
  if (!ok) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT args FROM prov_journal WHERE id = ?1",
                           -1, &st, NULL) == SQLITE_OK) {
      sqlite3_bind_int64(st, 1, intent);
      if (sqlite3_step(st) == SQLITE_ROW)
        rc = prov_undo_created(db, data, platform,
                               (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
  }
  int r = pj_intent_close(db, intent);
  return rc ? rc : r;
}
