/* Unit tests of the provisioning plugin's control-plane steps and journal
 * (journal.c, steps.c, migrate.c): activation with migrations, failure
 * undoing only what the call made, failpoints, and crash recovery from
 * every half-done state an intent can be left in, each ending with no
 * orphan file and no row naming a missing resource. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nno/plugin.h>
#include <sodium.h>

#include "prov_fixture.h"

typedef struct jfx {
  pfx *f;
  sqlite3 *db;
  char pkgdir[256];
  prov_pkg pkg;
} jfx;

static const char *RES =
    "[{\"type\":\"sql\",\"name\":\"notes\"},{\"type\":\"kv\",\"name\":\"cache\"},"
    "{\"type\":\"blob\",\"name\":\"files\"}]";

static void write_file(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

static void migration(jfx *j, const char *file, const char *sql) {
  char p[512];
  snprintf(p, sizeof p, "%s/migrations/notes/%s", j->pkgdir, file);
  write_file(p, sql);
}

static int setup(void **state) {
  void *fs;
  if (sodium_init() < 0 || pfx_setup(&fs)) return -1;
  jfx *j = calloc(1, sizeof *j);
  j->f = fs;
  char core[256], p[512];
  snprintf(core, sizeof core, "%s/core.db", j->f->data);
  if (pj_open(core, &j->db, j->f->msg, sizeof j->f->msg) ||
      pj_migrate(j->db, j->f->msg, sizeof j->f->msg))
    return -1;
  snprintf(j->pkgdir, sizeof j->pkgdir, "%s/pkg-notes", j->f->data);
  mkdir(j->pkgdir, 0700);
  snprintf(p, sizeof p, "%s/migrations", j->pkgdir);
  mkdir(p, 0700);
  snprintf(p, sizeof p, "%s/migrations/notes", j->pkgdir);
  mkdir(p, 0700);
  snprintf(j->pkg.name, sizeof j->pkg.name, "notes");
  j->pkg.dir = j->pkgdir;
  j->pkg.resources = (char *)RES;
  migration(j, "0001_init.sql",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);");
  *state = j;
  return 0;
}

static int teardown(void **state) {
  jfx *j = *state;
  sqlite3_close(j->db);
  void *fs = j->f;
  pfx_teardown(&fs);
  free(j);
  unsetenv("NNO_FAILPOINT");
  return 0;
}

static int activate(jfx *j, int64_t *intent, char *step) {
  char msg[PROV_MSG_MAX];
  return prov_activate_run(j->db, j->f->data, "acme", "00112233aabbccdd",
                           "default", &j->pkg, 1, intent, step, 96, msg,
                           sizeof msg);
}

static int exists(jfx *j, const char *type, const char *name) {
  char p[512];
  struct stat st;
  pfx_path(j->f, type, name, p, sizeof p);
  return lstat(p, &st) == 0;
}

static long long scalar(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  long long v = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static long long in_resource(jfx *j, const char *sql) {
  char p[512];
  sqlite3 *db;
  pfx_path(j->f, "sql", "notes", p, sizeof p);
  assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
  long long v = scalar(db, sql);
  sqlite3_close(db);
  return v;
}

static const char *state_of(jfx *j, const char *type, const char *name,
                            prov_resource *r) {
  int rc = pj_resource_get(j->db, "acme", "default", type, name, r);
  return rc == 1 ? r->state : rc == 0 ? "none" : "error";
}

/* Every row names an existing resource unless failed (a failure is kept
 * with the resource it concerns); no resource file without a row, none
 * pending; no open intent. */
static void consistent(jfx *j) {
  static const char *const t[][2] = {
      {"sql", "notes"}, {"kv", "cache"}, {"blob", "files"}};
  for (int i = 0; i < 3; i++) {
    prov_resource r;
    const char *s = state_of(j, t[i][0], t[i][1], &r);
    if (exists(j, t[i][0], t[i][1]))
      assert_true(!strcmp(s, "ready") || !strcmp(s, "failed"));
    else
      assert_true(!strcmp(s, "none") || !strcmp(s, "failed"));
  }
  assert_int_equal(scalar(j->db, "SELECT count(*) FROM prov_journal"), 0);
}

static void activation(void **state) {
  jfx *j = *state;
  int64_t id;
  char step[96];
  /* migrations twice: nothing applied twice */
  char msg[PROV_MSG_MAX];
  assert_int_equal(pj_migrate(j->db, msg, sizeof msg), 0);
  assert_int_equal(activate(j, &id, step), 0);
  assert_int_equal(prov_activate_end(j->db, j->f->data, "acme", id, 1), 0);
  prov_resource r;
  assert_string_equal(state_of(j, "sql", "notes", &r), "ready");
  assert_string_equal(r.incarnation, "00112233aabbccdd");
  assert_true(exists(j, "kv", "cache") && exists(j, "blob", "files"));
  assert_int_equal(in_resource(j, "SELECT count(*) FROM _nno_migrations"), 1);
  consistent(j);
  /* again, with one more migration: only it runs */
  migration(j, "0002_more.sql", "ALTER TABLE notes ADD COLUMN tag TEXT;");
  assert_int_equal(activate(j, &id, step), 0);
  assert_int_equal(prov_activate_end(j->db, j->f->data, "acme", id, 1), 0);
  assert_int_equal(in_resource(j, "SELECT max(version) FROM _nno_migrations"
                                  " WHERE package = 'notes'"),
                   2);
  assert_int_equal(in_resource(j, "SELECT count(*) FROM pragma_table_info"
                                  "('notes') WHERE name = 'tag'"),
                   1);
  consistent(j);
}

static void failure_undoes_this_call_only(void **state) {
  jfx *j = *state;
  int64_t id;
  char step[96];
  /* a first activation made the sql and kv resources only */
  j->pkg.resources = "[{\"type\":\"sql\",\"name\":\"notes\"},"
                     "{\"type\":\"kv\",\"name\":\"cache\"}]";
  assert_int_equal(activate(j, &id, step), 0);
  assert_int_equal(prov_activate_end(j->db, j->f->data, "acme", id, 1), 0);
  /* then a version adds kv and blob, and a migration that fails */
  j->pkg.resources = (char *)RES;
  migration(j, "0002_bad.sql", "INSERT INTO notes VALUES (1, 'x'); "
                               "CREATE TABLE oops (;");
  assert_int_equal(activate(j, &id, step), NNO_EINVAL);
  assert_string_equal(step, "sql:default-notes:migrate");
  prov_resource r;
  assert_string_equal(state_of(j, "sql", "notes", &r), "failed");
  assert_non_null(strstr(r.error, "0002_bad.sql"));
  assert_true(exists(j, "sql", "notes"));   /* there before: kept */
  assert_true(exists(j, "kv", "cache"));
  assert_string_equal(state_of(j, "kv", "cache", &r), "ready"); /* untouched */
  assert_false(exists(j, "blob", "files")); /* made by this call: gone */
  assert_string_equal(state_of(j, "blob", "files", &r), "none");
  /* the failed migration's transaction left nothing */
  assert_int_equal(in_resource(j, "SELECT count(*) FROM notes"), 0);
  assert_int_equal(in_resource(j, "SELECT max(version) FROM _nno_migrations"),
                   1);
  consistent(j);
  /* the cause gone, a retry succeeds */
  migration(j, "0002_bad.sql", "INSERT INTO notes VALUES (1, 'x');");
  assert_int_equal(activate(j, &id, step), 0);
  assert_int_equal(prov_activate_end(j->db, j->f->data, "acme", id, 1), 0);
  assert_string_equal(state_of(j, "sql", "notes", &r), "ready");
  assert_string_equal(r.error, "");
  consistent(j);
}

static void names_that_would_share_a_file(void **state) {
  jfx *j = *state;
  int64_t id;
  char step[96], msg[PROV_MSG_MAX];
  /* stack "default" has kv "x-cache"; stack "default-x" wants kv "cache":
   * both are acme-default-x-cache.db */
  j->pkg.resources = "[{\"type\":\"kv\",\"name\":\"x-cache\"}]";
  assert_int_equal(activate(j, &id, step), 0);
  assert_int_equal(prov_activate_end(j->db, j->f->data, "acme", id, 1), 0);
  j->pkg.resources = "[{\"type\":\"kv\",\"name\":\"cache\"}]";
  assert_int_equal(prov_activate_run(j->db, j->f->data, "acme", "", "default-x",
                                     &j->pkg, 1, &id, step, sizeof step, msg,
                                     sizeof msg),
                   NNO_EREFUSED);
  assert_string_equal(step, "kv:default-x-cache:create");
  prov_resource r;
  assert_string_equal(state_of(j, "kv", "x-cache", &r), "ready");
  assert_int_equal(scalar(j->db, "SELECT count(*) FROM prov_journal"), 0);
  assert_int_equal(scalar(j->db, "SELECT count(*) FROM prov_resources"), 1);
  /* the first stack activates again undisturbed */
  j->pkg.resources = "[{\"type\":\"kv\",\"name\":\"x-cache\"}]";
  assert_int_equal(activate(j, &id, step), 0);
  assert_int_equal(prov_activate_end(j->db, j->f->data, "acme", id, 1), 0);
  j->pkg.resources = "[{\"type\":\"kv\",\"name\":\"cache\"}]";
  /* a file made before rows were kept is adopted, not recreated */
  char path[256];
  pfx_path(j->f, "sql", "auth", path, sizeof path);
  assert_int_equal(psql_create(path, msg, sizeof msg), 0);
  j->pkg.resources = "[{\"type\":\"sql\",\"name\":\"auth\"}]";
  assert_int_equal(activate(j, &id, step), 0);
  assert_int_equal(prov_activate_end(j->db, j->f->data, "acme", id, 1), 0);
  assert_string_equal(state_of(j, "sql", "auth", &r), "ready");
  j->pkg.resources = "[{\"type\":\"kv\",\"name\":\"cache\"}]";
  /* a platform without folders gets them */
  char pdir[256];
  snprintf(pdir, sizeof pdir, "%s/platforms/beta", j->f->data);
  assert_int_equal(prov_activate_run(j->db, j->f->data, "beta", "", "default",
                                     &j->pkg, 1, &id, step, sizeof step, msg,
                                     sizeof msg),
                   0);
  assert_int_equal(prov_activate_end(j->db, j->f->data, "beta", id, 1), 0);
  snprintf(pdir, sizeof pdir, "%s/platforms/beta/kv/beta-default-cache.db",
           j->f->data);
  assert_true(prov_file_size(pdir) > 0);
}

static void migrations_refused(void **state) {
  jfx *j = *state;
  int64_t id;
  char step[96];
  static const char *const bad[] = {
      "ATTACH DATABASE '/tmp/x.db' AS x;",
      "CREATE TABLE _nno_mine (a);",
      "DELETE FROM _nno_migrations;",
      "PRAGMA journal_mode = DELETE;",
      "BEGIN; CREATE TABLE t (a); COMMIT;",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    migration(j, "0001_init.sql", bad[i]);
    assert_int_equal(activate(j, &id, step), NNO_EINVAL);
    assert_string_equal(step, "sql:default-notes:migrate");
    consistent(j);
  }
  /* numbering: a gap, a bad name */
  migration(j, "0001_init.sql", "CREATE TABLE t (a);");
  migration(j, "0003_gap.sql", "CREATE TABLE u (a);");
  assert_int_equal(activate(j, &id, step), NNO_EINVAL);
  char p[512];
  snprintf(p, sizeof p, "%s/migrations/notes/0003_gap.sql", j->pkgdir);
  unlink(p);
  migration(j, "1_x.sql", "CREATE TABLE u (a);");
  assert_int_equal(activate(j, &id, step), NNO_EINVAL);
  consistent(j);
}

static void failpoints(void **state) {
  jfx *j = *state;
  int64_t id;
  char step[96];
  static const char *const steps[] = {"sql:default-notes:create",
                                      "kv:default-cache:create",
                                      "blob:default-files:create",
                                      "sql:default-notes:migrate"};
  for (size_t i = 0; i < 4; i++) {
    setenv("NNO_FAILPOINT", steps[i], 1);
    assert_int_equal(activate(j, &id, step), NNO_EIO);
    assert_string_equal(step, steps[i]);
    assert_false(exists(j, "sql", "notes"));
    assert_false(exists(j, "kv", "cache"));
    assert_false(exists(j, "blob", "files"));
    consistent(j);
  }
  unsetenv("NNO_FAILPOINT");
  assert_int_equal(activate(j, &id, step), 0);
  assert_int_equal(prov_activate_end(j->db, j->f->data, "acme", id, 0), 0);
  /* the ACTIVATED event failed: everything this call made is undone */
  assert_false(exists(j, "sql", "notes"));
  consistent(j);
}

static void recover_activation(void **state) {
  jfx *j = *state;
  int64_t id;
  char step[96], msg[PROV_MSG_MAX];
  /* killed after the migrations, before the event's end */
  assert_int_equal(activate(j, &id, step), 0);
  assert_true(exists(j, "sql", "notes"));
  assert_int_equal(prov_recover(j->db, j->f->data, msg, sizeof msg), 1);
  assert_false(exists(j, "sql", "notes"));
  assert_false(exists(j, "blob", "files"));
  consistent(j);
  /* killed between journalling a resource and making it: no file yet */
  assert_int_equal(
      pj_intent_open(j->db, "activate", "acme",
                     "{\"stack\":\"default\",\"created\":[{\"type\":\"kv\","
                     "\"stack\":\"default\",\"name\":\"cache\"}]}",
                     &id),
      0);
  assert_int_equal(pj_resource_put(j->db, "acme", "", "default", "kv", "cache",
                                   "pending", NULL),
                   0);
  assert_int_equal(prov_recover(j->db, j->f->data, msg, sizeof msg), 1);
  consistent(j);
  /* an intent of another live process is left alone */
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  char args[128];
  snprintf(args, sizeof args, "{\"stack\":\"default\",\"pid\":%d,\"created\":[]}",
           (int)child);
  assert_int_equal(pj_intent_open(j->db, "activate", "acme", args, &id), 0);
  assert_int_equal(prov_recover(j->db, j->f->data, msg, sizeof msg), 0);
  assert_int_equal(scalar(j->db, "SELECT count(*) FROM prov_journal"), 1);
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  assert_int_equal(prov_recover(j->db, j->f->data, msg, sizeof msg), 1);
  consistent(j);
}

static void recover_removal(void **state) {
  jfx *j = *state;
  int64_t id;
  char step[96], msg[PROV_MSG_MAX], p[512];
  assert_int_equal(activate(j, &id, step), 0);
  assert_int_equal(prov_activate_end(j->db, j->f->data, "acme", id, 1), 0);
  /* killed before archiving, with keep_data */
  assert_int_equal(pj_intent_open(j->db, "remove", "acme",
                                  "{\"incarnation\":\"00112233aabbccdd\","
                                  "\"keep_data\":true}",
                                  &id),
                   0);
  assert_int_equal(prov_recover(j->db, j->f->data, msg, sizeof msg), 1);
  snprintf(p, sizeof p, "%s/archive/acme-00112233aabbccdd.tar.gz", j->f->data);
  assert_true(prov_file_size(p) > 0);
  assert_int_equal(access(j->f->pdir, F_OK), -1);
  assert_int_equal(scalar(j->db, "SELECT count(*) FROM prov_resources"), 0);
  consistent(j);
  /* killed after moving the folder aside */
  assert_int_equal(prov_platform_files(j->f->data, "acme", msg, sizeof msg), 0);
  char aside[512];
  snprintf(aside, sizeof aside, "%s/platforms/.removing-acme-0", j->f->data);
  assert_int_equal(rename(j->f->pdir, aside), 0);
  assert_int_equal(pj_intent_open(j->db, "remove", "acme",
                                  "{\"incarnation\":\"\",\"keep_data\":false}",
                                  &id),
                   0);
  assert_int_equal(pj_intent_step(j->db, id, "remove", NULL), 0);
  assert_int_equal(prov_recover(j->db, j->f->data, msg, sizeof msg), 1);
  assert_int_equal(access(aside, F_OK), -1);
  consistent(j);
  /* killed in the middle of a create: finished */
  assert_int_equal(pj_intent_open(j->db, "create", "acme", "{}", &id), 0);
  assert_int_equal(prov_recover(j->db, j->f->data, msg, sizeof msg), 1);
  snprintf(p, sizeof p, "%s/shell", j->f->pdir);
  assert_int_equal(prov_dir_check(p, msg, sizeof msg), 0);
  consistent(j);
}

static void removal_never_follows_links(void **state) {
  jfx *j = *state;
  char msg[PROV_MSG_MAX], p[512], outside[512];
  snprintf(outside, sizeof outside, "%s/outside", j->f->data);
  mkdir(outside, 0700);
  snprintf(p, sizeof p, "%s/keep", outside);
  write_file(p, "x");
  snprintf(p, sizeof p, "%s/shell/link", j->f->pdir);
  assert_int_equal(symlink(outside, p), 0);
  assert_int_equal(prov_archive(j->f->pdir, "/dev/null/x", msg, sizeof msg),
                   NNO_EIO);
  assert_int_equal(prov_remove_data(j->db, j->f->data, "acme", "", msg,
                                    sizeof msg),
                   0);
  assert_int_equal(access(j->f->pdir, F_OK), -1);
  snprintf(p, sizeof p, "%s/keep", outside);
  assert_int_equal(access(p, F_OK), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(activation, setup, teardown),
      cmocka_unit_test_setup_teardown(failure_undoes_this_call_only, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(migrations_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(names_that_would_share_a_file, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(failpoints, setup, teardown),
      cmocka_unit_test_setup_teardown(recover_activation, setup, teardown),
      cmocka_unit_test_setup_teardown(recover_removal, setup, teardown),
      cmocka_unit_test_setup_teardown(removal_never_follows_links, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
