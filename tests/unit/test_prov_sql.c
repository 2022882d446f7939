/* Unit tests of the provisioning plugin's sql driver (driver_sql.c): the
 * results' shape, the guards (ATTACH, VACUUM, load_extension, PRAGMAs,
 * _nno_ tables, several statements, transactions), every bound, batches
 * all or nothing, constraint failures, and the quota with nothing
 * partial written. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <unistd.h>

#include <nno/plugin.h>

#include "prov_fixture.h"

static char g_path[256];

static int setup(void **state) {
  if (pfx_setup(state)) return -1;
  pfx *f = *state;
  pfx_path(f, "sql", "notes", g_path, sizeof g_path);
  return psql_create(g_path, f->msg, sizeof f->msg);
}

/* Run one statement; the out is left for the caller to read and free. */
static int run(pfx *f, const char *sql, const char *params, prov_out *o) {
  prov_out_init(o);
  return psql_run(g_path, &f->b, &f->q, 0, sql, params, o);
}

static void ok(pfx *f, const char *sql, const char *params) {
  prov_out o;
  int rc = run(f, sql, params, &o);
  if (rc) fail_msg("%s: %s", sql, o.msg);
  prov_out_free(&o);
}

static void expect(pfx *f, const char *sql, const char *params, int err) {
  prov_out o;
  int rc = run(f, sql, params, &o);
  if (rc != err) fail_msg("%s: got %d (%s), expected %d", sql, rc, o.msg, err);
  assert_non_null(o.msg[0] ? o.msg : NULL);
  assert_null(o.json);
  prov_out_free(&o);
}

static long long count(pfx *f, const char *table) {
  char sql[128];
  prov_out o;
  snprintf(sql, sizeof sql, "SELECT count(*) AS n FROM %s", table);
  assert_int_equal(run(f, sql, NULL, &o), 0);
  long long n = -1;
  sscanf(o.json, "[{\"n\":%lld}]", &n);
  prov_out_free(&o);
  return n;
}

static void results(void **state) {
  pfx *f = *state;
  prov_out o;
  ok(f, "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, r REAL, b BLOB)", NULL);
  assert_int_equal(run(f, "INSERT INTO t(s, r, b) VALUES (?, ?, x'00ff')",
                       "[\"a\\\"b\", 1.5]", &o), 0);
  assert_int_equal(o.changes, 1);
  assert_int_equal(o.last_id, 1);
  assert_string_equal(o.json, "[]");
  prov_out_free(&o);
  assert_int_equal(run(f, "INSERT INTO t(s) VALUES (:s)", "{\"s\": null}", &o),
                   0);
  assert_int_equal(o.last_id, 2);
  prov_out_free(&o);
  assert_int_equal(run(f, "SELECT id, s, r, b FROM t WHERE id >= :min ORDER BY id",
                       "{\"min\": 1}", &o), 0);
  assert_string_equal(o.json,
                      "[{\"id\":1,\"s\":\"a\\\"b\",\"r\":1.5,\"b\":\"AP8=\"},"
                      "{\"id\":2,\"s\":null,\"r\":null,\"b\":null}]");
  prov_out_free(&o);
  /* parameters must match the statement */
  expect(f, "SELECT ?1, ?2", "[1]", NNO_EINVAL);
  expect(f, "SELECT :a", "{\"b\": 1}", NNO_EINVAL);
  expect(f, "SELECT ?", NULL, NNO_EINVAL);
  expect(f, "SELECT ?", "[[1]]", NNO_EINVAL);
  expect(f, "SELECT ?", "[1", NNO_EINVAL);
  expect(f, "SELEC 1", NULL, NNO_EINVAL);
}

static void refused(void **state) {
  pfx *f = *state;
  char sql[512];
  ok(f, "CREATE TABLE t (x)", NULL);
  snprintf(sql, sizeof sql, "ATTACH DATABASE '%s/other.db' AS o", f->data);
  expect(f, sql, NULL, NNO_EINVAL);
  snprintf(sql, sizeof sql, "%s/other.db", f->data);
  assert_int_equal(access(sql, F_OK), -1); /* nothing made outside */
  expect(f, "DETACH DATABASE main", NULL, NNO_EINVAL);
  expect(f, "VACUUM", NULL, NNO_EINVAL);
  snprintf(sql, sizeof sql, "  /* c */ -- x\n vacuum INTO '%s/copy.db'", f->data);
  expect(f, sql, NULL, NNO_EINVAL);
  snprintf(sql, sizeof sql, "%s/copy.db", f->data);
  assert_int_equal(access(sql, F_OK), -1);
  expect(f, "SELECT load_extension('/tmp/x.so')", NULL, NNO_EINVAL);
  expect(f, "PRAGMA writable_schema = 1", NULL, NNO_EINVAL);
  expect(f, "PRAGMA journal_mode = DELETE", NULL, NNO_EINVAL);
  expect(f, "PRAGMA user_version = 7", NULL, NNO_EINVAL);
  expect(f, "PRAGMA max_page_count = 1000000", NULL, NNO_EINVAL);
  expect(f, "PRAGMA table_info(_nno_migrations)", NULL, NNO_EINVAL);
  ok(f, "PRAGMA user_version", NULL);
  ok(f, "PRAGMA table_info(t)", NULL);
  expect(f, "CREATE TABLE _nno_x (a)", NULL, NNO_EINVAL);
  expect(f, "CREATE TABLE _NNO_x (a)", NULL, NNO_EINVAL);
  /* _nno_migrations exists once migrations ran: made here directly */
  {
    sqlite3 *db;
    assert_int_equal(sqlite3_open(g_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE _nno_migrations (package, "
                                      "version, applied_at)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
  }
  expect(f, "SELECT * FROM _nno_migrations", NULL, NNO_EINVAL);
  expect(f, "DELETE FROM _nno_migrations", NULL, NNO_EINVAL);
  expect(f, "DROP TABLE _nno_migrations", NULL, NNO_EINVAL);
  /* a trigger reaching _nno_ tables is refused when it would fire */
  ok(f, "CREATE TRIGGER tr AFTER INSERT ON t BEGIN "
        "DELETE FROM _nno_migrations; END", NULL);
  expect(f, "INSERT INTO t VALUES (0)", NULL, NNO_EINVAL);
  ok(f, "DROP TRIGGER tr", NULL);
  expect(f, "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", NULL,
         NNO_EINVAL);
  expect(f, "BEGIN", NULL, NNO_EINVAL);
  expect(f, "SAVEPOINT a", NULL, NNO_EINVAL);
  expect(f, "UPDATE sqlite_master SET sql = 'x'", NULL, NNO_EINVAL);
  assert_int_equal(count(f, "t"), 0); /* the refused pair wrote nothing */
  ok(f, "SELECT 1; -- a trailing comment", NULL);
}

static void bounds(void **state) {
  pfx *f = *state;
  prov_out o;
  ok(f, "CREATE TABLE t (x)", NULL);
  ok(f, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
        "WHERE i < 10) INSERT INTO t SELECT i FROM c",
     NULL);
  f->b.max_rows = 5;
  expect(f, "SELECT x FROM t", NULL, NNO_ETOOBIG);
  ok(f, "SELECT x FROM t LIMIT 5", NULL);
  f->b.max_rows = 1000;
  f->b.max_result = 1024;
  expect(f, "SELECT hex(zeroblob(600)) AS h", NULL, NNO_ETOOBIG);
  ok(f, "SELECT hex(zeroblob(100)) AS h", NULL);
  f->b.max_result = 1u << 20;
  f->b.time_ms = 50;
  expect(f, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) "
            "SELECT count(*) FROM c",
         NULL, NNO_ETIMEDOUT);
  f->b.time_ms = 1000;
  f->b.max_sql = 64;
  char big[128];
  memset(big, ' ', sizeof big);
  memcpy(big, "SELECT 1", 8);
  big[sizeof big - 1] = '\0';
  expect(f, big, NULL, NNO_ETOOBIG);
  f->b.max_sql = 100u << 10;
  f->b.max_batch = 2;
  prov_out_init(&o);
  assert_int_equal(psql_run(g_path, &f->b, &f->q, 1,
                            "[{\"sql\":\"SELECT 1\"},{\"sql\":\"SELECT 2\"},"
                            "{\"sql\":\"SELECT 3\"}]",
                            NULL, &o),
                   NNO_ETOOBIG);
  prov_out_free(&o);
}

static void batches(void **state) {
  pfx *f = *state;
  prov_out o;
  ok(f, "CREATE TABLE t (x UNIQUE)", NULL);
  prov_out_init(&o);
  assert_int_equal(
      psql_run(g_path, &f->b, &f->q, 1,
               "[{\"sql\":\"INSERT INTO t VALUES (?)\",\"params\":[1]},"
               "{\"sql\":\"INSERT INTO t VALUES (:v)\",\"params\":{\"v\":2}},"
               "{\"sql\":\"SELECT x FROM t ORDER BY x\"}]",
               NULL, &o),
      0);
  assert_string_equal(o.json, "[[],[],[{\"x\":1},{\"x\":2}]]");
  assert_int_equal(o.changes, 2);
  prov_out_free(&o);
  /* the second fails: the first is undone */
  prov_out_init(&o);
  assert_int_equal(
      psql_run(g_path, &f->b, &f->q, 1,
               "[{\"sql\":\"INSERT INTO t VALUES (3)\"},"
               "{\"sql\":\"INSERT INTO t VALUES (1)\"}]",
               NULL, &o),
      NNO_EREFUSED);
  assert_non_null(strstr(o.msg, "statement 1"));
  prov_out_free(&o);
  assert_int_equal(count(f, "t"), 2);
  /* a refused statement inside a batch also undoes it all */
  prov_out_init(&o);
  assert_int_equal(
      psql_run(g_path, &f->b, &f->q, 1,
               "[{\"sql\":\"INSERT INTO t VALUES (4)\"},"
               "{\"sql\":\"PRAGMA user_version = 1\"}]",
               NULL, &o),
      NNO_EINVAL);
  prov_out_free(&o);
  assert_int_equal(count(f, "t"), 2);
  /* malformed batches */
  static const char *const bad[] = {"{}", "[]", "[1]", "[{\"sql\":1}]",
                                    "[{\"sql\":\"SELECT 1\",\"x\":1}]"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    prov_out_init(&o);
    assert_int_not_equal(psql_run(g_path, &f->b, &f->q, 1, bad[i], NULL, &o), 0);
    prov_out_free(&o);
  }
  /* a single constraint failure */
  expect(f, "INSERT INTO t VALUES (1)", NULL, NNO_EREFUSED);
}

static void files(void **state) {
  pfx *f = *state;
  char path[256], target[256];
  prov_out o;
  pfx_path(f, "sql", "missing", path, sizeof path);
  prov_out_init(&o);
  assert_int_equal(psql_run(path, &f->b, &f->q, 0, "SELECT 1", NULL, &o),
                   NNO_ENOENT);
  assert_string_equal(o.msg, "not provisioned");
  assert_int_equal(access(path, F_OK), -1); /* never created */
  prov_out_free(&o);
  /* a link in place of the file is refused, not followed */
  snprintf(target, sizeof target, "%s/elsewhere.db", f->data);
  assert_int_equal(psql_create(target, f->msg, sizeof f->msg), 0);
  assert_int_equal(symlink(target, path), 0);
  prov_out_init(&o);
  assert_int_equal(psql_run(path, &f->b, &f->q, 0, "CREATE TABLE x (a)", NULL,
                            &o),
                   NNO_EIO);
  prov_out_free(&o);
}

static void quota(void **state) {
  pfx *f = *state;
  prov_out o;
  ok(f, "CREATE TABLE t (b BLOB)", NULL);
  ok(f, "INSERT INTO t VALUES (randomblob(1000))", NULL);
  f->q.limit = prov_usage(f->pdir) + 64 * 1024;
  expect(f, "INSERT INTO t VALUES (randomblob(1000000))", NULL, NNO_EQUOTA);
  assert_int_equal(count(f, "t"), 1);
  prov_out_init(&o);
  assert_int_equal(
      psql_run(g_path, &f->b, &f->q, 1,
               "[{\"sql\":\"INSERT INTO t VALUES (1)\"},"
               "{\"sql\":\"INSERT INTO t VALUES (randomblob(1000000))\"}]",
               NULL, &o),
      NNO_EQUOTA);
  prov_out_free(&o);
  assert_int_equal(count(f, "t"), 1);
  ok(f, "INSERT INTO t VALUES (randomblob(100))", NULL);
  /* over the limit, deleting still works */
  f->q.limit = 1;
  expect(f, "INSERT INTO t VALUES (randomblob(100000))", NULL, NNO_EQUOTA);
  ok(f, "DELETE FROM t", NULL);
  assert_int_equal(count(f, "t"), 0);
}

/* Connections are kept between calls: a database removed and made again
 * at the same path is a new file, never reached through the old
 * connection; and a quota's cap does not outlive the call. */
static void kept_connections(void **state) {
  pfx *f = *state;
  ok(f, "CREATE TABLE old (a)", NULL);
  ok(f, "INSERT INTO old VALUES (1)", NULL);
  assert_int_equal(prov_resource_unlink(g_path), 0);
  assert_int_equal(psql_create(g_path, f->msg, sizeof f->msg), 0);
  expect(f, "SELECT a FROM old", NULL, NNO_EINVAL);
  ok(f, "CREATE TABLE t (b BLOB)", NULL);
  f->q.limit = prov_usage(f->pdir) + 64 * 1024;
  expect(f, "INSERT INTO t VALUES (randomblob(1000000))", NULL, NNO_EQUOTA);
  f->q.limit = 0;
  ok(f, "INSERT INTO t VALUES (randomblob(1000000))", NULL);
  assert_int_equal(count(f, "t"), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(results, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(refused, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(bounds, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(batches, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(files, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(quota, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(kept_connections, setup, pfx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
