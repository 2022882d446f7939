/* Unit tests for registry/store.c and registry/migrations.c against a
 * temporary database file: migrations (from empty, from the previous
 * schema, concurrently, a newer schema refused), every invariant of the
 * data model enforced by the database itself (rows inserted directly with
 * sqlite3_exec must fail with the right constraint), and the store API. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"

typedef struct fx {
  char dir[64];
  char path[96];
  sqlite3 *db;
} fx;

static void remove_db(const fx *f) {
  char p[128];
  static const char *const sfx[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
    unlink(p);
  }
}

/* A fresh database file, opened but not migrated. */
static int setup_empty(void **state) {
  fx *f = calloc(1, sizeof *f);
  char err[256];
  snprintf(f->dir, sizeof f->dir, "/tmp/nno-regtest-XXXXXX");
  if (!f || !mkdtemp(f->dir)) return -1;
  snprintf(f->path, sizeof f->path, "%s/core.db", f->dir);
  if (store_open(f->path, &f->db, err, sizeof err) != STORE_OK) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  *state = f;
  return 0;
}

/* A fresh database at the newest schema. */
static int setup(void **state) {
  char err[256];
  if (setup_empty(state)) return -1;
  fx *f = *state;
  if (store_migrate(f->db, err, sizeof err) != STORE_OK) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  assert_int_equal(sqlite3_close(f->db), SQLITE_OK); /* all finalized */
  remove_db(f);
  rmdir(f->dir);
  free(f);
  return 0;
}

/* sqlite3_exec's result: the extended code (store_open turns them on). */
static int ex(sqlite3 *db, const char *sql) {
  return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int64_t count(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

static int has_table(sqlite3 *db, const char *name) {
  char sql[160];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM sqlite_schema WHERE type='table' AND "
           "name='%s'",
           name);
  return count(db, sql) == 1;
}

#define T0 "'2026-01-01T00:00:00Z'"
#define PLAT(id)                                                               \
  "INSERT INTO platforms (id, name, created_at, updated_at) VALUES (" id       \
  ", 'n', " T0 ", " T0 ")"
#define TENANT(p, id, parent)                                                  \
  "INSERT INTO tenants (platform_id, id, parent_id, name, created_at,"         \
  " updated_at) VALUES (" p ", " id ", " parent ", 'n', " T0 ", " T0 ")"

/* ---- migrations -------------------------------------------------------- */

static void migrate_from_empty(void **state) {
  fx *f = *state;
  int v = -1;
  assert_int_equal(store_schema_version(f->db, &v), STORE_OK);
  assert_int_equal(v, store_latest_version());
  assert_true(store_latest_version() >= 2);
  static const char *const tables[] = {
      "platforms",      "tenants",          "stacks",
      "stack_versions", "activations",      "audit",
      "idempotency",    "changes",          "settings",
      "schema_migrations"};
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
    assert_true(has_table(f->db, tables[i]));
  assert_int_equal(count(f->db, "SELECT count(*) FROM schema_migrations"),
                   (int64_t)store_nmigrations);
  /* Running again changes nothing. */
  char err[256];
  assert_int_equal(store_migrate(f->db, err, sizeof err), STORE_OK);
  assert_int_equal(count(f->db, "SELECT count(*) FROM schema_migrations"),
                   (int64_t)store_nmigrations);
  /* The connection is in WAL mode with foreign keys on. */
  assert_int_equal(count(f->db, "PRAGMA foreign_keys"), 1);
}

static void migrate_from_previous(void **state) {
  fx *f = *state;
  char err[256];
  int v = -1;
  assert_int_equal(store_schema_version(f->db, &v), STORE_OK);
  assert_int_equal(v, 0);
  assert_int_equal(store_migrate_to(f->db, 1, err, sizeof err), STORE_OK);
  assert_int_equal(store_schema_version(f->db, &v), STORE_OK);
  assert_int_equal(v, 1);
  assert_false(has_table(f->db, "idempotency"));
  /* Data written under schema 1 survives the upgrade. */
  assert_int_equal(ex(f->db, PLAT("'acme'")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'eu'", "NULL")), SQLITE_OK);
  assert_int_equal(store_migrate(f->db, err, sizeof err), STORE_OK);
  assert_int_equal(store_schema_version(f->db, &v), STORE_OK);
  assert_int_equal(v, store_latest_version());
  assert_true(has_table(f->db, "idempotency"));
  assert_int_equal(count(f->db, "SELECT count(*) FROM tenants"), 1);
  store_platform p;
  assert_int_equal(store_platform_get(f->db, "acme", &p), STORE_OK);
  assert_string_equal(p.plan, "free");
}

static void newer_schema_refused(void **state) {
  fx *f = *state;
  char err[256], want[128];
  assert_int_equal(ex(f->db,
                      "INSERT INTO schema_migrations VALUES (99, "
                      "'2030-01-01T00:00:00Z')"),
                   SQLITE_OK);
  assert_int_not_equal(store_migrate(f->db, err, sizeof err), STORE_OK);
  snprintf(want, sizeof want,
           "core.db schema version 99 is newer than this host supports (%d)",
           store_latest_version());
  assert_string_equal(err, want);
  /* Nothing was left open or changed. */
  assert_true(sqlite3_get_autocommit(f->db));
  assert_int_equal(count(f->db, "SELECT max(version) FROM schema_migrations"),
                   99);
}

/* Several processes migrating one new file at once: exactly one applies
 * each migration, none fails. */
static void migrate_concurrently(void **state) {
  fx *f = *state;
  enum { N = 4 };
  pid_t pids[N];
  for (int i = 0; i < N; i++) {
    pids[i] = fork();
    assert_true(pids[i] >= 0);
    if (pids[i] == 0) {
      sqlite3 *db;
      char err[256];
      int rc = store_open(f->path, &db, err, sizeof err);
      if (!rc) rc = store_migrate(db, err, sizeof err);
      if (rc) fprintf(stderr, "child: %s\n", err);
      sqlite3_close(db);
      _exit(rc ? 1 : 0);
    }
  }
  for (int i = 0; i < N; i++) {
    int st;
    assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  assert_int_equal(count(f->db, "SELECT count(*) FROM schema_migrations"),
                   (int64_t)store_nmigrations);
}

/* ---- invariants held by the database ----------------------------------- */

static void platform_ids(void **state) {
  fx *f = *state;
  static const char *const bad[] = {
      "'ab'",  "'A!x'", "'-ab'", "'ab-'", "'a_b'",
      "'ABC'", "'a b'", "''",    "NULL",  "'abcdefghijklmnopqrstuvwxyz0123456'",
      "'é12'"};
  char sql[256];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(sql, sizeof sql, PLAT("%s"), bad[i]);
    int rc = ex(f->db, sql);
    assert_int_equal(rc & 0xff, SQLITE_CONSTRAINT);
  }
  assert_int_equal(ex(f->db, PLAT("'abc'")), SQLITE_OK);
  assert_int_equal(ex(f->db, PLAT("'a-1'")), SQLITE_OK);
  assert_int_equal(ex(f->db, PLAT("'abcdefghijklmnopqrstuvwxyz012345'")),
                   SQLITE_OK);
  assert_int_equal(ex(f->db, PLAT("'abc'")), SQLITE_CONSTRAINT_PRIMARYKEY);
  /* Ids never change. */
  assert_int_equal(ex(f->db, "UPDATE platforms SET id='xyz' WHERE id='abc'"),
                   SQLITE_CONSTRAINT_TRIGGER);
}

static void platform_checks(void **state) {
  fx *f = *state;
  static const char *const bad[] = {
      "INSERT INTO platforms (id, name, class, created_at, updated_at)"
      " VALUES ('p1x', 'n', 'other', " T0 ", " T0 ")",
      "INSERT INTO platforms (id, name, status, created_at, updated_at)"
      " VALUES ('p1x', 'n', 'gone', " T0 ", " T0 ")",
      "INSERT INTO platforms (id, name, plan, created_at, updated_at)"
      " VALUES ('p1x', 'n', 'Pro', " T0 ", " T0 ")",
      "INSERT INTO platforms (id, name, plan, created_at, updated_at)"
      " VALUES ('p1x', 'n', '', " T0 ", " T0 ")",
      "INSERT INTO platforms (id, name, created_at, updated_at)"
      " VALUES ('p1x', '', " T0 ", " T0 ")",
      "INSERT INTO platforms (id, name, created_at, updated_at)"
      " VALUES ('p1x', NULL, " T0 ", " T0 ")",
      "INSERT INTO platforms (id, name, created_at, updated_at)"
      " VALUES ('p1x', printf('%.129c', 'x'), " T0 ", " T0 ")",
      "INSERT INTO platforms (id, name, owner, created_at, updated_at)"
      " VALUES ('p1x', 'n', printf('%.129c', 'x'), " T0 ", " T0 ")",
      "INSERT INTO platforms (id, name, created_at, updated_at)"
      " VALUES ('p1x', 'n', 'yesterday', " T0 ")",
      "INSERT INTO platforms (id, name, created_at, updated_at, version)"
      " VALUES ('p1x', 'n', " T0 ", " T0 ", 0)",
      "INSERT INTO platforms (id, name, created_at, updated_at, version)"
      " VALUES ('p1x', 'n', " T0 ", " T0 ", 'abc')", /* STRICT */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = ex(f->db, bad[i]);
    if ((rc & 0xff) != SQLITE_CONSTRAINT) fail_msg("accepted: %s", bad[i]);
  }
  assert_int_equal(count(f->db, "SELECT count(*) FROM platforms"), 0);
  /* 128 characters of UTF-8 are fine, whatever their bytes. */
  assert_int_equal(ex(f->db,
                      "INSERT INTO platforms (id, name, class, status,"
                      " owner, created_at, updated_at) VALUES ('p1x',"
                      " printf('%.128c', 'é'), 'user_project',"
                      " 'suspended', NULL, " T0 ", " T0 ")"),
                   SQLITE_OK);
}

static void tenant_rules(void **state) {
  fx *f = *state;
  assert_int_equal(ex(f->db, PLAT("'acme'")), SQLITE_OK);
  assert_int_equal(ex(f->db, PLAT("'beta'")), SQLITE_OK);
  /* Ids: 2 to 32 of [a-z0-9-]. */
  assert_int_equal(ex(f->db, TENANT("'acme'", "'e'", "NULL")) & 0xff,
                   SQLITE_CONSTRAINT);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'E!'", "NULL")) & 0xff,
                   SQLITE_CONSTRAINT);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'eu-'", "NULL")) & 0xff,
                   SQLITE_CONSTRAINT);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'eu'", "NULL")), SQLITE_OK);
  /* Duplicate within a platform; the same id in another is fine. */
  assert_int_equal(ex(f->db, TENANT("'acme'", "'eu'", "NULL")),
                   SQLITE_CONSTRAINT_PRIMARYKEY);
  assert_int_equal(ex(f->db, TENANT("'beta'", "'eu'", "NULL")), SQLITE_OK);
  /* Foreign keys: the platform and the parent must exist, in the same
   * platform. */
  assert_int_equal(ex(f->db, TENANT("'nope'", "'us'", "NULL")),
                   SQLITE_CONSTRAINT_FOREIGNKEY);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'us'", "'nope'")),
                   SQLITE_CONSTRAINT_FOREIGNKEY);
  assert_int_equal(ex(f->db, PLAT("'gamma'")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'gamma'", "'de'", "'eu'")),
                   SQLITE_CONSTRAINT_FOREIGNKEY);
  /* Tenant statuses exclude "deleting". */
  assert_int_equal(ex(f->db, "UPDATE tenants SET status='deleting'") & 0xff,
                   SQLITE_CONSTRAINT);
  assert_int_equal(ex(f->db, "UPDATE tenants SET status='suspended'"),
                   SQLITE_OK);
  /* A tenant with children cannot be deleted alone. */
  assert_int_equal(ex(f->db, TENANT("'acme'", "'de'", "'eu'")), SQLITE_OK);
  assert_int_equal(
      ex(f->db, "DELETE FROM tenants WHERE platform_id='acme' AND id='eu'"),
      SQLITE_CONSTRAINT_FOREIGNKEY);
  assert_int_equal(ex(f->db,
                      "UPDATE tenants SET id='xx' WHERE platform_id='acme' AND "
                      "id='de'"),
                   SQLITE_CONSTRAINT_TRIGGER);
}

static void tenant_cycles(void **state) {
  fx *f = *state;
  assert_int_equal(ex(f->db, PLAT("'acme'")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'aa'", "NULL")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'bb'", "'aa'")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'cc'", "'bb'")), SQLITE_OK);
  /* Inserting a tenant that is its own parent. */
  assert_int_equal(ex(f->db, TENANT("'acme'", "'dd'", "'dd'")),
                   SQLITE_CONSTRAINT_TRIGGER);
  /* Moving aa under itself, its child, its grandchild. */
  static const char *const cyc[] = {"aa", "bb", "cc"};
  char sql[160];
  for (int i = 0; i < 3; i++) {
    snprintf(sql, sizeof sql,
             "UPDATE tenants SET parent_id='%s' WHERE platform_id='acme' AND "
             "id='aa'",
             cyc[i]);
    assert_int_equal(ex(f->db, sql), SQLITE_CONSTRAINT_TRIGGER);
    assert_non_null(strstr(sqlite3_errmsg(f->db), "tenant cycle"));
  }
  /* Moves that keep a tree are fine: cc to the root, then under aa. */
  assert_int_equal(ex(f->db, "UPDATE tenants SET parent_id=NULL WHERE id='cc'"),
                   SQLITE_OK);
  assert_int_equal(ex(f->db, "UPDATE tenants SET parent_id='aa' WHERE id='cc'"),
                   SQLITE_OK);
  /* Through the store: the trigger maps to STORE_CYCLE. */
  store_tenant t;
  assert_int_equal(store_tenant_get(f->db, "acme", "aa", &t), STORE_OK);
  t.has_parent = 1;
  strcpy(t.parent, "bb");
  assert_int_equal(store_tenant_update(f->db, &t, 0), STORE_CYCLE);
  strcpy(t.parent, "zz");
  assert_int_equal(store_tenant_update(f->db, &t, 0), STORE_FK);
}

static void cascades(void **state) {
  fx *f = *state;
  assert_int_equal(ex(f->db, PLAT("'acme'")), SQLITE_OK);
  assert_int_equal(ex(f->db, PLAT("'beta'")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'aa'", "NULL")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'bb'", "'aa'")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'cc'", "'bb'")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'dd'", "NULL")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'beta'", "'aa'", "NULL")), SQLITE_OK);
  assert_int_equal(store_stack_add(f->db, "default", "1.0.0"), STORE_OK);
  assert_int_equal(
      ex(f->db,
         "INSERT INTO activations VALUES ('acme', 'default', '1.0.0',"
         " " T0 ", 'operator')"),
      SQLITE_OK);
  /* A subtree through the store. */
  assert_int_equal(store_tenant_delete(f->db, "acme", "bb", 0), STORE_FK);
  assert_int_equal(store_tenant_delete(f->db, "acme", "bb", 1), STORE_OK);
  assert_int_equal(
      count(f->db, "SELECT count(*) FROM tenants WHERE platform_id='acme'"), 2);
  assert_int_equal(store_tenant_delete(f->db, "acme", "bb", 1), STORE_NOTFOUND);
  /* A deleted tenant's id is retired: never given again on acme. */
  assert_int_equal(ex(f->db, TENANT("'acme'", "'bb'", "'aa'")),
                   SQLITE_CONSTRAINT_TRIGGER);
  store_tenant nt = {0};
  strcpy(nt.platform, "acme");
  strcpy(nt.id, "cc");
  strcpy(nt.name, "again");
  strcpy(nt.status, "active");
  assert_int_equal(store_tenant_insert(f->db, &nt), STORE_RETIRED);
  assert_int_equal(
      count(f->db, "SELECT count(*) FROM retired_tenants"), 2);
  /* The platform takes its tenants, activations and retired ids with it. */
  assert_int_equal(ex(f->db, TENANT("'acme'", "'ee'", "'aa'")), SQLITE_OK);
  assert_int_equal(store_platform_delete(f->db, "acme"), STORE_OK);
  assert_int_equal(
      count(f->db, "SELECT count(*) FROM tenants WHERE platform_id='acme'"), 0);
  assert_int_equal(count(f->db, "SELECT count(*) FROM activations"), 0);
  assert_int_equal(count(f->db, "SELECT count(*) FROM tenants"), 1);
  assert_int_equal(count(f->db, "SELECT count(*) FROM retired_tenants"), 0);
}

static void catalogue_and_activations(void **state) {
  fx *f = *state;
  assert_int_equal(ex(f->db, PLAT("'acme'")), SQLITE_OK);
  /* An activation must name a catalogued version. */
  assert_int_equal(
      ex(f->db,
         "INSERT INTO activations VALUES ('acme', 'default', '1.0.0',"
         " " T0 ", 'operator')"),
      SQLITE_CONSTRAINT_FOREIGNKEY);
  assert_int_equal(store_stack_add(f->db, "default", "1.0.0"), STORE_OK);
  assert_int_equal(store_stack_add(f->db, "default", "1.0.0"), STORE_OK);
  assert_int_equal(store_stack_add(f->db, "Bad!", "1.0.0"), STORE_INVALID);
  assert_int_equal(store_stack_add(f->db, "default", "latest"), STORE_INVALID);
  store_activation a = {0};
  strcpy(a.platform, "acme");
  strcpy(a.stack, "default");
  strcpy(a.version, "1.0.0");
  strcpy(a.activated_by, "operator");
  assert_int_equal(store_activation_put(f->db, &a), STORE_OK);
  /* One version per stack per platform: a second put replaces. */
  assert_int_equal(store_stack_add(f->db, "default", "1.1.0"), STORE_OK);
  strcpy(a.version, "1.1.0");
  assert_int_equal(store_activation_put(f->db, &a), STORE_OK);
  assert_int_equal(count(f->db, "SELECT count(*) FROM activations"), 1);
  store_activation got;
  assert_int_equal(store_activation_get(f->db, "acme", "default", &got),
                   STORE_OK);
  assert_string_equal(got.version, "1.1.0");
  /* A version in use stays in the catalogue. */
  assert_int_equal(store_stack_remove_unused(f->db, "default", "1.1.0"),
                   STORE_OK);
  assert_int_equal(store_stack_remove_unused(f->db, "default", "1.0.0"),
                   STORE_OK);
  assert_int_equal(count(f->db, "SELECT count(*) FROM stack_versions"), 1);
  assert_int_equal(ex(f->db, "DELETE FROM stack_versions"),
                   SQLITE_CONSTRAINT_FOREIGNKEY);
  assert_int_equal(store_activation_delete(f->db, "acme", "default"), STORE_OK);
  assert_int_equal(store_activation_delete(f->db, "acme", "default"),
                   STORE_NOTFOUND);
  assert_int_equal(store_stack_remove_unused(f->db, "default", "1.1.0"),
                   STORE_OK);
  assert_int_equal(count(f->db, "SELECT count(*) FROM stacks"), 0);
}

static int versions_cb(void *ud, const char *id, const char *const *v,
                       size_t n) {
  char *out = ud;
  for (size_t i = 0; i < n; i++) {
    strcat(out, v[i]);
    strcat(out, " ");
  }
  return 0;
}

static void semver_order(void **state) {
  fx *f = *state;
  static const char *const v[] = {
      "1.10.0",       "1.2.0",         "1.0.0",
      "1.0.0-rc.1",   "1.0.0-alpha",   "1.0.0-alpha.1",
      "1.0.0-beta.2", "1.0.0-beta.11", "0.9.9"};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
    assert_int_equal(store_stack_add(f->db, "s", v[i]), STORE_OK);
  char out[256] = "";
  assert_int_equal(store_stack_get(f->db, "s", versions_cb, out), STORE_OK);
  assert_string_equal(out,
                      "0.9.9 1.0.0-alpha 1.0.0-alpha.1 1.0.0-beta.2 "
                      "1.0.0-beta.11 1.0.0-rc.1 1.0.0 1.2.0 1.10.0 ");
  assert_int_equal(store_stack_get(f->db, "nope", versions_cb, out),
                   STORE_NOTFOUND);
}

/* ---- the store API ----------------------------------------------------- */

static int collect_ids(void *ud, const store_platform *p) {
  strcat(ud, p->id);
  strcat(ud, " ");
  return 0;
}

static void platforms_api(void **state) {
  fx *f = *state;
  store_platform p = {0};
  strcpy(p.id, "acme");
  strcpy(p.name, "Acme");
  strcpy(p.cls, "platform");
  strcpy(p.status, "active");
  strcpy(p.plan, "free");
  assert_int_equal(store_platform_insert(f->db, &p), STORE_OK);
  assert_int_equal(p.version, 1);
  assert_int_equal(store_platform_insert(f->db, &p), STORE_EXISTS);
  strcpy(p.id, "Bad!");
  assert_int_equal(store_platform_insert(f->db, &p), STORE_INVALID);
  for (int i = 0; i < 5; i++) {
    snprintf(p.id, sizeof p.id, "p-%d%d%d", i, i, i);
    strcpy(p.cls, i % 2 ? "user_project" : "platform");
    assert_int_equal(store_platform_insert(f->db, &p), STORE_OK);
  }
  store_platform g;
  assert_int_equal(store_platform_get(f->db, "acme", &g), STORE_OK);
  assert_string_equal(g.name, "Acme");
  assert_false(g.has_owner);
  /* Updates bump the version; a stale expected version is refused. */
  strcpy(g.name, "Acme Inc");
  g.has_owner = 1;
  strcpy(g.owner, "ops");
  assert_int_equal(store_platform_update(f->db, &g, 1), STORE_OK);
  assert_int_equal(g.version, 2);
  assert_string_equal(g.owner, "ops");
  assert_int_equal(store_platform_update(f->db, &g, 1), STORE_STALE);
  strcpy(g.id, "nope");
  assert_int_equal(store_platform_update(f->db, &g, 0), STORE_NOTFOUND);
  assert_int_equal(store_platform_set_status(f->db, "acme", "suspended", &g),
                   STORE_OK);
  assert_string_equal(g.status, "suspended");
  assert_int_equal(g.version, 3);
  assert_int_equal(store_platform_set_status(f->db, "acme", "gone", &g),
                   STORE_INVALID);
  /* Pages in id order, filters. */
  char out[256] = "";
  assert_int_equal(
      store_platform_list(f->db, NULL, NULL, NULL, 3, collect_ids, out),
      STORE_OK);
  assert_string_equal(out, "acme p-000 p-111 ");
  out[0] = '\0';
  assert_int_equal(
      store_platform_list(f->db, NULL, NULL, "p-111", 10, collect_ids, out),
      STORE_OK);
  assert_string_equal(out, "p-222 p-333 p-444 ");
  out[0] = '\0';
  assert_int_equal(store_platform_list(f->db, "user_project", NULL, NULL, 10,
                                       collect_ids, out),
                   STORE_OK);
  assert_string_equal(out, "p-111 p-333 ");
  out[0] = '\0';
  assert_int_equal(
      store_platform_list(f->db, NULL, "suspended", NULL, 10, collect_ids, out),
      STORE_OK);
  assert_string_equal(out, "acme ");
}

static int collect_tenants(void *ud, const store_tenant *t) {
  strcat(ud, t->id);
  strcat(ud, " ");
  return 0;
}

static void tenants_api(void **state) {
  fx *f = *state;
  assert_int_equal(ex(f->db, PLAT("'acme'")), SQLITE_OK);
  static const char *const tree[][2] = {{"eu", NULL},  {"de", "eu"},
                                        {"ber", "de"}, {"fr", "eu"},
                                        {"us", NULL},  {"ny", "us"}};
  for (size_t i = 0; i < 6; i++) {
    store_tenant t = {0};
    strcpy(t.platform, "acme");
    strcpy(t.id, tree[i][0]);
    t.has_parent = tree[i][1] != NULL;
    if (t.has_parent) strcpy(t.parent, tree[i][1]);
    strcpy(t.name, "n");
    strcpy(t.status, "active");
    assert_int_equal(store_tenant_insert(f->db, &t), STORE_OK);
  }
  char out[256] = "";
  assert_int_equal(store_tenant_list(f->db, "acme", "eu", NULL, NULL, 10,
                                     collect_tenants, out),
                   STORE_OK);
  assert_string_equal(out, "de fr ");
  out[0] = '\0';
  assert_int_equal(store_tenant_list(f->db, "acme", NULL, "eu", NULL, 10,
                                     collect_tenants, out),
                   STORE_OK);
  assert_string_equal(out, "ber de fr ");
  out[0] = '\0';
  assert_int_equal(store_tenant_list(f->db, "acme", NULL, NULL, "fr", 2,
                                     collect_tenants, out),
                   STORE_OK);
  assert_string_equal(out, "ny us ");
  int64_t n = -1;
  assert_int_equal(store_tenant_children(f->db, "acme", "eu", &n), STORE_OK);
  assert_int_equal(n, 2);
}

static int collect_changes(void *ud, int64_t seq, const char *platform) {
  strcat(ud, platform);
  strcat(ud, " ");
  return 0;
}

static void changes_log(void **state) {
  fx *f = *state;
  int64_t min = -1, max = -1;
  assert_int_equal(store_change_bounds(f->db, &min, &max), STORE_OK);
  assert_int_equal(min, 0);
  assert_int_equal(max, 0);
  assert_int_equal(store_change_add(f->db, "acme"), STORE_OK);
  assert_int_equal(store_change_add(f->db, "beta"), STORE_OK);
  assert_int_equal(store_change_add(f->db, "acme"), STORE_OK);
  assert_int_equal(store_change_add(f->db, "Bad!"), STORE_INVALID);
  char out[64] = "";
  assert_int_equal(store_change_since(f->db, 1, collect_changes, out),
                   STORE_OK);
  assert_string_equal(out, "beta acme ");
  /* Old rows are pruned, keeping the newest STORE_CHANGES_KEEP. */
  assert_int_equal(store_begin(f->db), STORE_OK);
  for (int i = 0; i < STORE_CHANGES_KEEP + 10; i++)
    assert_int_equal(store_change_add(f->db, "acme"), STORE_OK);
  assert_int_equal(store_commit(f->db), STORE_OK);
  assert_int_equal(store_change_bounds(f->db, &min, &max), STORE_OK);
  assert_int_equal(max - min + 1, STORE_CHANGES_KEEP);
  assert_int_equal(count(f->db, "SELECT count(*) FROM changes"),
                   STORE_CHANGES_KEEP);
}

static int collect_audit(void *ud, const store_audit *a) {
  strcat(ud, a->action);
  strcat(ud, " ");
  return 0;
}

static void audit_and_settings(void **state) {
  fx *f = *state;
  assert_int_equal(store_audit_add(f->db, "operator", "platform.create",
                                   "platform:acme", "rid-1", "{\"a\":1}"),
                   STORE_OK);
  assert_int_equal(store_audit_add(f->db, "operator", "platform.update",
                                   "platform:acme", NULL, NULL),
                   STORE_OK);
  assert_int_equal(store_audit_add(f->db, "operator", "tenant.create",
                                   "tenant:acme/eu", NULL, NULL),
                   STORE_OK);
  assert_int_equal(
      store_audit_add(f->db, "operator", "x", "t", NULL, "not json"),
      STORE_INVALID);
  char out[128] = "";
  assert_int_equal(
      store_audit_list(f->db, "platform:acme", NULL, 0, 10, collect_audit, out),
      STORE_OK);
  assert_string_equal(out, "platform.update platform.create ");
  out[0] = '\0';
  assert_int_equal(
      store_audit_list(f->db, NULL, NULL, 3, 10, collect_audit, out), STORE_OK);
  assert_string_equal(out, "platform.update platform.create ");

  char v[80];
  assert_int_equal(store_setting_get(f->db, "k", v, sizeof v), STORE_NOTFOUND);
  assert_int_equal(store_setting_add(f->db, "k", "one"), STORE_OK);
  assert_int_equal(store_setting_add(f->db, "k", "two"), STORE_EXISTS);
  assert_int_equal(store_setting_put(f->db, "k", "three"), STORE_OK);
  assert_int_equal(store_setting_get(f->db, "k", v, sizeof v), STORE_OK);
  assert_string_equal(v, "three");
}

static void idempotency_records(void **state) {
  fx *f = *state;
  store_idem e = {0}, got;
  strcpy(e.key, "k1");
  strcpy(e.actor, "operator");
  strcpy(e.method, "POST");
  strcpy(e.path, "/api/v1/platforms");
  memset(e.request_hash, 'a', 64);
  e.status = 201;
  e.body = "{\"id\":\"acme\"}";
  e.location = "/api/v1/platforms/acme";
  assert_int_equal(store_idem_put(f->db, &e), STORE_OK);
  assert_int_equal(store_idem_put(f->db, &e), STORE_EXISTS);
  assert_int_equal(store_idem_get(f->db, "k1", "operator", &got), STORE_OK);
  assert_int_equal(got.status, 201);
  assert_string_equal(got.body, "{\"id\":\"acme\"}");
  assert_string_equal(got.location, "/api/v1/platforms/acme");
  store_idem_clear(&got);
  assert_int_equal(store_idem_get(f->db, "k1", "other", &got), STORE_NOTFOUND);
  strcpy(e.key, "k2");
  strcpy(e.request_hash, "not-a-hash");
  assert_int_equal(store_idem_put(f->db, &e), STORE_INVALID);
  /* Records older than the cutoff go. */
  assert_int_equal(store_idem_prune(f->db, "2000-01-01T00:00:00Z"), STORE_OK);
  assert_int_equal(count(f->db, "SELECT count(*) FROM idempotency"), 1);
  assert_int_equal(store_idem_prune(f->db, "2999-01-01T00:00:00Z"), STORE_OK);
  assert_int_equal(count(f->db, "SELECT count(*) FROM idempotency"), 0);
}

static int collect_keys(void *ud, const char *platform, const char *tenant) {
  char *out = ud;
  size_t n = strlen(out);
  snprintf(out + n, 256 - n, "%s/%s ", platform, tenant);
  return 0;
}

/* Each platform gets its own incarnation when created, one that an update
 * cannot change, and a platform created again under the same id a new
 * one; platforms from before the migration get one too. */
static void incarnations(void **state) {
  fx *f = *state;
  char a[32], b[32], c[32];
  assert_int_equal(ex(f->db, PLAT("'acme'")), SQLITE_OK);
  assert_int_equal(ex(f->db, PLAT("'beta'")), SQLITE_OK);
  assert_int_equal(store_platform_incarnation(f->db, "acme", a, sizeof a),
                   STORE_OK);
  assert_int_equal(store_platform_incarnation(f->db, "beta", b, sizeof b),
                   STORE_OK);
  assert_int_equal(strlen(a), 16);
  assert_true(strspn(a, "0123456789abcdef") == 16);
  assert_string_not_equal(a, b);
  assert_int_not_equal(
      ex(f->db, "UPDATE platforms SET incarnation = 'x' WHERE id = 'acme'"),
      SQLITE_OK);
  assert_int_equal(store_platform_delete(f->db, "acme"), STORE_OK);
  assert_int_equal(store_platform_incarnation(f->db, "acme", c, sizeof c),
                   STORE_NOTFOUND);
  assert_int_equal(ex(f->db, PLAT("'acme'")), SQLITE_OK);
  assert_int_equal(store_platform_incarnation(f->db, "acme", c, sizeof c),
                   STORE_OK);
  assert_string_not_equal(a, c);
  assert_int_equal(
      ex(f->db, "UPDATE platforms SET status = 'deleting' WHERE id = 'acme'"),
      SQLITE_OK);
  assert_int_equal(store_platform_incarnation(f->db, "acme", c, sizeof c),
                   STORE_NOTFOUND);
  /* The deletion in progress still knows it (to finish removing it). */
  assert_int_equal(
      store_platform_incarnation_any(f->db, "acme", b, sizeof b), STORE_OK);
  assert_int_equal(strlen(b), 16);
}

static int collect_removals(void *ud, const char *id, int exists,
                            const char *incarnation) {
  char *out = ud;
  size_t n = strlen(out);
  assert_int_equal(strlen(incarnation), 16);
  snprintf(out + n, 256 - n, "%s:%d ", id, exists);
  return 0;
}

/* A deletion leaves a row saying its folder is to be removed, in the same
 * transaction; the row tells whether the id was taken again since. */
static void removals(void **state) {
  fx *f = *state;
  char out[256] = "";
  assert_int_equal(ex(f->db, PLAT("'acme'")), SQLITE_OK);
  assert_int_equal(ex(f->db, PLAT("'beta'")), SQLITE_OK);
  assert_int_equal(store_begin(f->db), STORE_OK);
  assert_int_equal(store_platform_delete(f->db, "acme"), STORE_OK);
  store_rollback(f->db);
  assert_int_equal(store_removal_each(f->db, collect_removals, out), STORE_OK);
  assert_string_equal(out, "");
  assert_int_equal(store_platform_delete(f->db, "acme"), STORE_OK);
  assert_int_equal(store_platform_delete(f->db, "beta"), STORE_OK);
  assert_int_equal(ex(f->db, PLAT("'beta'")), SQLITE_OK);
  assert_int_equal(store_removal_each(f->db, collect_removals, out), STORE_OK);
  assert_string_equal(out, "acme:0 beta:1 ");
  assert_int_equal(store_removal_done(f->db, "acme"), STORE_OK);
  out[0] = '\0';
  assert_int_equal(store_removal_each(f->db, collect_removals, out), STORE_OK);
  assert_string_equal(out, "beta:1 ");
}

static void incarnations_from_previous(void **state) {
  fx *f = *state;
  char err[256], a[32];
  assert_int_equal(store_migrate_to(f->db, 2, err, sizeof err), STORE_OK);
  assert_int_equal(ex(f->db, PLAT("'acme'")), SQLITE_OK);
  assert_int_equal(store_migrate(f->db, err, sizeof err), STORE_OK);
  assert_int_equal(store_platform_incarnation(f->db, "acme", a, sizeof a),
                   STORE_OK);
  assert_int_equal(strlen(a), 16);
}

/* Schema 4 drops the registry's resources table (the provisioning
 * plugin keeps resources), whatever rows a database of schema 3 held. */
static void resources_dropped_from_previous(void **state) {
  fx *f = *state;
  char err[256];
  assert_int_equal(store_migrate_to(f->db, 3, err, sizeof err), STORE_OK);
  assert_true(has_table(f->db, "resources"));
  assert_int_equal(ex(f->db, PLAT("'acme'")), SQLITE_OK);
  assert_int_equal(ex(f->db,
                      "INSERT INTO resources (platform_id, type, name, driver,"
                      " state, created_at, updated_at) VALUES ('acme', 'd1',"
                      " 'main', 'local', 'ready', " T0 ", " T0 ")"),
                   SQLITE_OK);
  assert_int_equal(store_migrate(f->db, err, sizeof err), STORE_OK);
  assert_false(has_table(f->db, "resources"));
  assert_int_equal(count(f->db, "SELECT count(*) FROM platforms"), 1);
  int v = 0;
  assert_int_equal(store_schema_version(f->db, &v), STORE_OK);
  assert_true(v >= 4);
}

/* Suspended tenants and everything under them, nothing else. */
static void suspended_tenants(void **state) {
  fx *f = *state;
  char out[256] = "";
  assert_int_equal(ex(f->db, PLAT("'acme'")), SQLITE_OK);
  assert_int_equal(ex(f->db, PLAT("'beta'")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'eu'", "NULL")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'de'", "'eu'")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'ber'", "'de'")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'acme'", "'us'", "NULL")), SQLITE_OK);
  assert_int_equal(ex(f->db, TENANT("'beta'", "'de'", "NULL")), SQLITE_OK);
  assert_int_equal(store_tenant_suspended_each(f->db, collect_keys, out),
                   STORE_OK);
  assert_string_equal(out, "");
  assert_int_equal(ex(f->db, "UPDATE tenants SET status = 'suspended'"
                             " WHERE platform_id = 'acme' AND id = 'de'"),
                   SQLITE_OK);
  assert_int_equal(store_tenant_suspended_each(f->db, collect_keys, out),
                   STORE_OK);
  assert_string_equal(out, "acme/ber acme/de ");
  out[0] = '\0';
  assert_int_equal(ex(f->db, "UPDATE tenants SET status = 'suspended'"
                             " WHERE platform_id = 'acme' AND id = 'eu'"),
                   SQLITE_OK);
  assert_int_equal(store_tenant_suspended_each(f->db, collect_keys, out),
                   STORE_OK);
  assert_string_equal(out, "acme/ber acme/de acme/eu ");
}

static void transactions_roll_back(void **state) {
  fx *f = *state;
  assert_int_equal(store_begin(f->db), STORE_OK);
  assert_int_equal(ex(f->db, PLAT("'acme'")), SQLITE_OK);
  assert_int_equal(store_change_add(f->db, "acme"), STORE_OK);
  store_rollback(f->db);
  assert_true(sqlite3_get_autocommit(f->db));
  assert_int_equal(count(f->db, "SELECT count(*) FROM platforms"), 0);
  assert_int_equal(count(f->db, "SELECT count(*) FROM changes"), 0);
  store_rollback(f->db); /* without a transaction: harmless */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(migrate_from_empty, setup, teardown),
      cmocka_unit_test_setup_teardown(migrate_from_previous, setup_empty,
                                      teardown),
      cmocka_unit_test_setup_teardown(newer_schema_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(migrate_concurrently, setup_empty,
                                      teardown),
      cmocka_unit_test_setup_teardown(platform_ids, setup, teardown),
      cmocka_unit_test_setup_teardown(platform_checks, setup, teardown),
      cmocka_unit_test_setup_teardown(tenant_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(tenant_cycles, setup, teardown),
      cmocka_unit_test_setup_teardown(cascades, setup, teardown),
      cmocka_unit_test_setup_teardown(catalogue_and_activations, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(semver_order, setup, teardown),
      cmocka_unit_test_setup_teardown(platforms_api, setup, teardown),
      cmocka_unit_test_setup_teardown(tenants_api, setup, teardown),
      cmocka_unit_test_setup_teardown(changes_log, setup, teardown),
      cmocka_unit_test_setup_teardown(audit_and_settings, setup, teardown),
      cmocka_unit_test_setup_teardown(idempotency_records, setup, teardown),
      cmocka_unit_test_setup_teardown(transactions_roll_back, setup, teardown),
      cmocka_unit_test_setup_teardown(incarnations, setup, teardown),
      cmocka_unit_test_setup_teardown(incarnations_from_previous, setup_empty,
                                      teardown),
      cmocka_unit_test_setup_teardown(suspended_tenants, setup, teardown),
      cmocka_unit_test_setup_teardown(removals, setup, teardown),
      cmocka_unit_test_setup_teardown(resources_dropped_from_previous,
                                      setup_empty, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
