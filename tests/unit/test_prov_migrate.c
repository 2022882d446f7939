/* Unit tests of migrations forward and back (migrate.c): the inverse of
 * each migration stored when it is applied, a rollback running the stored
 * inverses in one transaction, a missing or failing inverse refusing the
 * rollback with the database unchanged, a table made before inverses were
 * stored, the names a migration folder may hold, the levels an
 * alignment reports and the platform's activation lock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include <nno/plugin.h>

#include "prov_fixture.h"

typedef struct mfx {
  pfx *f;
  char db[256];
  char pkg[3][256]; /* three versions of package "notes" */
} mfx;

static int setup(void **state) {
  void *p = NULL;
  if (pfx_setup(&p)) return -1;
  mfx *m = calloc(1, sizeof *m);
  if (!m) return -1;
  m->f = p;
  pfx_path(m->f, "sql", "notes", m->db, sizeof m->db);
  for (int i = 0; i < 3; i++) {
    snprintf(m->pkg[i], sizeof m->pkg[i], "%s/pkg%d", m->f->data, i + 1);
    if (mkdir(m->pkg[i], 0700)) return -1;
  }
  *state = m;
  return psql_create(m->db, m->f->msg, sizeof m->f->msg);
}

static int teardown(void **state) {
  mfx *m = *state;
  void *p = m->f;
  free(m);
  return pfx_teardown(&p);
}

/* Write migrations/notes/{file} of version v (1..3). */
static void put(mfx *m, int v, const char *file, const char *sql) {
  char path[512];
  snprintf(path, sizeof path, "%s/migrations", m->pkg[v - 1]);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/migrations/notes", m->pkg[v - 1]);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/migrations/notes/%s", m->pkg[v - 1], file);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(sql, fp);
  fclose(fp);
}

static int migrate(mfx *m, int v) {
  m->f->msg[0] = '\0';
  int rc = prov_migrate(m->db, 0, m->pkg[v - 1], "notes", "notes", m->f->msg,
                        sizeof m->f->msg);
  if (rc) print_message("version %d: %s\n", v, m->f->msg);
  return rc;
}

/* The first column of the first row of `sql` as an integer (-1: none). */
static long long q(mfx *m, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  long long v = -1;
  assert_int_equal(sqlite3_open_v2(m->db, &db, SQLITE_OPEN_READONLY, NULL),
                   SQLITE_OK);
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  else
    print_message("%s: %s\n", sql, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static long long level(mfx *m) {
  return q(m, "SELECT coalesce(max(version), 0) FROM _nno_migrations"
              " WHERE package = 'notes'");
}

static long long has(mfx *m, const char *name) {
  char sql[160];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM sqlite_master WHERE name = '%s'", name);
  return q(m, sql);
}

/* Version 1: a table; 2: another; 3: an index. Each with its inverse. */
static void three_versions(mfx *m, int with_down2) {
  for (int v = 1; v <= 3; v++) {
    put(m, v, "0001_notes.sql", "CREATE TABLE notes (id INTEGER PRIMARY KEY,"
                                " body TEXT);");
    put(m, v, "0001_notes.down.sql", "DROP TABLE notes;");
  }
  for (int v = 2; v <= 3; v++) {
    put(m, v, "0002_tag.sql", "CREATE TABLE tags (note INTEGER, tag TEXT);");
    if (with_down2) put(m, v, "0002_tag.down.sql", "DROP TABLE tags;");
  }
  put(m, 3, "0003_by_tag.sql", "CREATE INDEX notes_tag ON tags (tag);");
  put(m, 3, "0003_by_tag.down.sql", "DROP INDEX notes_tag;");
}

static void up_then_back(void **state) {
  mfx *m = *state;
  three_versions(m, 1);
  assert_int_equal(migrate(m, 3), 0);
  assert_int_equal(level(m), 3);
  /* the inverse is stored with the migration */
  assert_int_equal(q(m, "SELECT count(*) FROM _nno_migrations WHERE down IS"
                        " NOT NULL"),
                   3);
  assert_int_equal(has(m, "notes_tag"),
                   1);
  /* back to version 1: 0003 then 0002 undone */
  assert_int_equal(migrate(m, 1), 0);
  assert_int_equal(level(m), 1);
  assert_int_equal(has(m, "tags"), 0);
  assert_int_equal(has(m, "notes_tag"),
                   0);
  /* forward again: the same text runs again */
  assert_int_equal(migrate(m, 3), 0);
  assert_int_equal(level(m), 3);
  assert_int_equal(has(m, "tags"), 1);
  /* a version with no migrations folder at all: back to 0 */
  char empty[300];
  snprintf(empty, sizeof empty, "%s/empty", m->f->data);
  assert_int_equal(mkdir(empty, 0700), 0);
  assert_int_equal(prov_migrate(m->db, 0, empty, "notes", "notes", m->f->msg,
                                sizeof m->f->msg),
                   0);
  assert_int_equal(level(m), 0);
  assert_int_equal(has(m, "notes"),
                   0);
}

static void missing_down_refuses(void **state) {
  mfx *m = *state;
  three_versions(m, 0); /* 0002 ships no inverse */
  assert_int_equal(migrate(m, 3), 0);
  assert_int_equal(migrate(m, 1), NNO_EREFUSED);
  assert_non_null(strstr(m->f->msg, "migration 0002 was applied without a "
                                    "down migration"));
  /* nothing changed: 0003 was undone inside the rolled back transaction */
  assert_int_equal(level(m), 3);
  assert_int_equal(has(m, "tags"), 1);
  assert_int_equal(has(m, "notes_tag"),
                   1);
  /* back to 2 needs only 0003's: fine */
  assert_int_equal(migrate(m, 2), 0);
  assert_int_equal(level(m), 2);
}

static void failing_down_changes_nothing(void **state) {
  mfx *m = *state;
  three_versions(m, 1);
  /* a down that fails is refused with its up: nothing applied */
  put(m, 3, "0002_tag.down.sql", "DROP TABLE nowhere;");
  assert_int_equal(migrate(m, 3), NNO_EINVAL);
  assert_non_null(strstr(m->f->msg,
                         "0002_tag.sql cannot be undone: "
                         "0002_tag.down.sql: no such table"));
  assert_int_equal(has(m, "_nno_migrations"), 0);
  assert_int_equal(has(m, "notes"), 0);
  /* one the guards refuse too */
  put(m, 3, "0002_tag.down.sql", "ATTACH DATABASE ':memory:' AS other;");
  assert_int_equal(migrate(m, 3), NNO_EINVAL);
  assert_non_null(strstr(m->f->msg, "0002_tag.down.sql: refused"));
  assert_int_equal(has(m, "_nno_migrations"), 0);
  put(m, 3, "0002_tag.down.sql", "DROP TABLE tags;");
  assert_int_equal(migrate(m, 3), 0);
  /* a stored down that fails when it runs changes nothing */
  sqlite3 *db0 = NULL;
  assert_int_equal(sqlite3_open(m->db, &db0), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db0,
                                "UPDATE _nno_migrations SET down ="
                                " 'DROP TABLE nowhere;' WHERE version = 2",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db0);
  assert_int_equal(migrate(m, 1), NNO_EINVAL);
  assert_non_null(strstr(m->f->msg, "down of migration 0002"));
  assert_int_equal(level(m), 3);
  assert_int_equal(has(m, "notes_tag"),
                   1);
  /* an inverse runs under the package guards */
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(m->db, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "UPDATE _nno_migrations SET down ="
                                    " 'DELETE FROM _nno_migrations;'"
                                    " WHERE version = 3",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  assert_int_equal(migrate(m, 2), NNO_EINVAL);
  assert_non_null(strstr(m->f->msg, "refused"));
  assert_int_equal(level(m), 3);
}

static void table_without_down_column(void **state) {
  mfx *m = *state;
  /* a database migrated before inverses were stored */
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(m->db, &db), SQLITE_OK);
  assert_int_equal(
      sqlite3_exec(db,
                   "CREATE TABLE _nno_migrations (package TEXT NOT NULL,"
                   " version INTEGER NOT NULL, applied_at TEXT NOT NULL,"
                   " PRIMARY KEY (package, version));"
                   "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
                   "INSERT INTO _nno_migrations VALUES ('notes', 1, 'x');",
                   NULL, NULL, NULL),
      SQLITE_OK);
  sqlite3_close(db);
  three_versions(m, 1);
  assert_int_equal(migrate(m, 2), 0);
  assert_int_equal(level(m), 2);
  assert_int_equal(q(m, "SELECT count(*) FROM _nno_migrations WHERE down IS"
                        " NULL"),
                   1);
  assert_int_equal(migrate(m, 1), 0);
  assert_int_equal(has(m, "tags"), 0);
  /* 0001 came without its inverse: no way back to 0 */
  char empty[300];
  snprintf(empty, sizeof empty, "%s/empty", m->f->data);
  assert_int_equal(mkdir(empty, 0700), 0);
  assert_int_equal(prov_migrate(m->db, 0, empty, "notes", "notes", m->f->msg,
                                sizeof m->f->msg),
                   NNO_EREFUSED);
  assert_int_equal(level(m), 1);
}

static void names(void **state) {
  mfx *m = *state;
  put(m, 1, "0001_notes.sql", "CREATE TABLE notes (id INTEGER);");
  put(m, 1, "0002_tag.down.sql", "SELECT 1;");
  assert_int_equal(migrate(m, 1), NNO_EINVAL);
  assert_non_null(strstr(m->f->msg, "0002_tag.down.sql: no migration "
                                    "0002_tag.sql for it to undo"));
  assert_int_equal(q(m, "SELECT count(*) FROM sqlite_master"), 0);
  put(m, 2, "0001_notes.sql", "CREATE TABLE notes (id INTEGER);");
  put(m, 2, "0001_other.down.sql", "SELECT 1;");
  assert_int_equal(migrate(m, 2), NNO_EINVAL);
  assert_non_null(strstr(m->f->msg, "0001_other.down.sql"));
  put(m, 3, "0001_notes.sql", "CREATE TABLE notes (id INTEGER);");
  put(m, 3, "0001_notes.down.sql", "DROP TABLE notes;");
  put(m, 3, "0002_x.sql", "CREATE TABLE x (a);");
  assert_int_equal(migrate(m, 3), 0);
  assert_int_equal(level(m), 2);
}

/* prov_migrate_to tells the level before and after (what an alignment
 * logs), and a second call to the same version moves nothing. */
static void levels_reported(void **state) {
  mfx *m = *state;
  three_versions(m, 1);
  int64_t from = 7, to = 7;
  assert_int_equal(prov_migrate_to(m->db, 0, m->pkg[1], "notes", "notes",
                                   &from, &to, m->f->msg, sizeof m->f->msg),
                   0);
  assert_int_equal(from, 0);
  assert_int_equal(to, 2);
  assert_int_equal(prov_migrate_to(m->db, 0, m->pkg[1], "notes", "notes",
                                   &from, &to, m->f->msg, sizeof m->f->msg),
                   0);
  assert_int_equal(from, 2);
  assert_int_equal(to, 2);
  assert_int_equal(prov_migrate_to(m->db, 0, m->pkg[0], "notes", "notes",
                                   &from, &to, m->f->msg, sizeof m->f->msg),
                   0);
  assert_int_equal(from, 2);
  assert_int_equal(to, 1);
  assert_int_equal(level(m), 1);
}

/* The activation lock: one holder at a time (another open file is
 * refused, waited for or not), free again once closed; a platform without
 * a folder has nothing to guard. */
static void activation_lock(void **state) {
  mfx *m = *state;
  int a = -1, b = -1;
  assert_int_equal(prov_activation_lock(m->f->data, "acme", 0, &a), 0);
  assert_true(a >= 0);
  assert_int_equal(prov_activation_lock(m->f->data, "acme", 0, &b), NNO_EBUSY);
  assert_int_equal(b, -1);
  assert_int_equal(prov_activation_lock(m->f->data, "acme", 30, &b), NNO_EBUSY);
  close(a);
  assert_int_equal(prov_activation_lock(m->f->data, "acme", 0, &b), 0);
  assert_true(b >= 0);
  close(b);
  assert_int_equal(prov_activation_lock(m->f->data, "nope", 0, &b), 0);
  assert_int_equal(b, -1);
  assert_int_equal(prov_activation_lock(m->f->data, "../x", 0, &b),
                   NNO_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(up_then_back, setup, teardown),
      cmocka_unit_test_setup_teardown(missing_down_refuses, setup, teardown),
      cmocka_unit_test_setup_teardown(failing_down_changes_nothing, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(table_without_down_column, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(names, setup, teardown),
      cmocka_unit_test_setup_teardown(levels_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(activation_lock, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
