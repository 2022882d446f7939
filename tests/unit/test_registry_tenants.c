/* Unit tests for registry/ttab.c: tenant paths from the in-memory table,
 * filled from a real store (registry/store.c) as the plugin fills it, and
 * the table's own edges (unknown tenants, a buffer too small, a parent
 * missing, a cycle in a damaged table, many platforms). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "ttab.h"

typedef struct fx {
  char dir[64];
  char path[96];
  sqlite3 *db;
} fx;

static int setup(void **state) {
  char err[256];
  fx *f = calloc(1, sizeof *f);
  if (!f) return -1;
  snprintf(f->dir, sizeof f->dir, "/tmp/nno-ttabtest-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  snprintf(f->path, sizeof f->path, "%s/core.db", f->dir);
  if (store_open(f->path, &f->db, err, sizeof err) ||
      store_migrate(f->db, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  char p[128];
  static const char *const sfx[] = {"", "-wal", "-shm"};
  assert_int_equal(sqlite3_close(f->db), SQLITE_OK);
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
    unlink(p);
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

static void add_platform(sqlite3 *db, const char *id) {
  store_platform p;
  memset(&p, 0, sizeof p);
  snprintf(p.id, sizeof p.id, "%s", id);
  snprintf(p.name, sizeof p.name, "%s", id);
  snprintf(p.cls, sizeof p.cls, "platform");
  snprintf(p.status, sizeof p.status, "active");
  snprintf(p.plan, sizeof p.plan, "free");
  assert_int_equal(store_platform_insert(db, &p), STORE_OK);
}

static void add_tenant(sqlite3 *db, const char *platform, const char *id,
                       const char *parent) {
  store_tenant t;
  memset(&t, 0, sizeof t);
  snprintf(t.platform, sizeof t.platform, "%s", platform);
  snprintf(t.id, sizeof t.id, "%s", id);
  t.has_parent = parent != NULL;
  if (parent) snprintf(t.parent, sizeof t.parent, "%s", parent);
  snprintf(t.name, sizeof t.name, "%s", id);
  snprintf(t.status, sizeof t.status, "active");
  assert_int_equal(store_tenant_insert(db, &t), STORE_OK);
}

static int put_link(void *ud, const char *platform, const char *tenant,
                    const char *parent) {
  return ttab_add(ud, platform, tenant, parent);
}

/* The table the plugin builds: every tenant row with its parent. */
static ttab *load(sqlite3 *db) {
  ttab *t = ttab_new();
  assert_non_null(t);
  assert_int_equal(store_tenant_link_each(db, put_link, t), STORE_OK);
  assert_int_equal(ttab_seal(t), TTAB_OK);
  return t;
}

static void test_paths_from_the_store(void **state) {
  fx *f = *state;
  char out[1024];
  add_platform(f->db, "acme");
  add_platform(f->db, "beta");
  /* Children inserted with ids that sort before their parents. */
  add_tenant(f->db, "acme", "zz", NULL);
  add_tenant(f->db, "acme", "eu", "zz");
  add_tenant(f->db, "acme", "fr", "eu");
  add_tenant(f->db, "acme", "ab", "fr");
  add_tenant(f->db, "acme", "us", NULL);
  add_tenant(f->db, "beta", "eu", NULL);
  ttab *t = load(f->db);
  assert_int_equal(ttab_count(t), 6);
  assert_int_equal(ttab_path(t, "acme", "zz", out, sizeof out), TTAB_OK);
  assert_string_equal(out, "zz");
  assert_int_equal(ttab_path(t, "acme", "ab", out, sizeof out), TTAB_OK);
  assert_string_equal(out, "zz/eu/fr/ab");
  assert_int_equal(ttab_path(t, "acme", "us", out, sizeof out), TTAB_OK);
  assert_string_equal(out, "us");
  /* The same id on another platform is another tenant. */
  assert_int_equal(ttab_path(t, "beta", "eu", out, sizeof out), TTAB_OK);
  assert_string_equal(out, "eu");
  assert_int_equal(ttab_path(t, "acme", "eu", out, sizeof out), TTAB_OK);
  assert_string_equal(out, "zz/eu");
  ttab_free(t);
}

static void test_unknown_and_bad_arguments(void **state) {
  fx *f = *state;
  char out[64];
  add_platform(f->db, "acme");
  add_tenant(f->db, "acme", "eu", NULL);
  ttab *t = load(f->db);
  assert_int_equal(ttab_path(t, "acme", "fr", out, sizeof out), TTAB_NOTFOUND);
  assert_int_equal(ttab_path(t, "beta", "eu", out, sizeof out), TTAB_NOTFOUND);
  assert_int_equal(ttab_path(t, "acme", NULL, out, sizeof out), TTAB_INVALID);
  assert_int_equal(ttab_path(t, "acme", "eu", out, 0), TTAB_INVALID);
  assert_int_equal(ttab_path(NULL, "acme", "eu", out, sizeof out),
                   TTAB_INVALID);
  /* Sealed: no more adds. */
  assert_int_equal(ttab_add(t, "acme", "fr", NULL), TTAB_INVALID);
  ttab_free(t);
  /* An empty table knows no tenant. */
  t = ttab_new();
  assert_int_equal(ttab_seal(t), TTAB_OK);
  assert_int_equal(ttab_path(t, "acme", "eu", out, sizeof out), TTAB_NOTFOUND);
  ttab_free(t);
}

static void test_buffer_exactly_or_too_small(void **state) {
  fx *f = *state;
  char out[16];
  add_platform(f->db, "acme");
  add_tenant(f->db, "acme", "eu", NULL);
  add_tenant(f->db, "acme", "fr", "eu");
  ttab *t = load(f->db);
  memset(out, 'x', sizeof out);
  /* "eu/fr" and its NUL: 6 bytes fit, 5 do not and nothing is written. */
  assert_int_equal(ttab_path(t, "acme", "fr", out, 5), TTAB_TOOSMALL);
  assert_int_equal(out[0], 'x');
  assert_int_equal(ttab_path(t, "acme", "fr", out, 6), TTAB_OK);
  assert_string_equal(out, "eu/fr");
  ttab_free(t);
}

static void test_deep_chain_and_bounds(void **state) {
  (void)state;
  char out[4096], id[8], parent[8];
  ttab *t = ttab_new();
  /* 64 levels is the most walked; a 65th is refused, never looped. */
  for (int i = 0; i < 65; i++) {
    snprintf(id, sizeof id, "t%02d", i);
    snprintf(parent, sizeof parent, "t%02d", i - 1);
    assert_int_equal(ttab_add(t, "acme", id, i ? parent : NULL), TTAB_OK);
  }
  assert_int_equal(ttab_add(t, "acme", "", NULL), TTAB_INVALID);
  assert_int_equal(
      ttab_add(t, "acme", "a-very-long-tenant-id-of-33-chars", NULL),
      TTAB_INVALID);
  assert_int_equal(ttab_seal(t), TTAB_OK);
  assert_int_equal(ttab_path(t, "acme", "t63", out, sizeof out), TTAB_OK);
  assert_int_equal(strlen(out), 64 * 4 - 1);
  assert_memory_equal(out, "t00/t01/", 8);
  assert_int_equal(ttab_path(t, "acme", "t64", out, sizeof out), TTAB_TOOSMALL);
  ttab_free(t);
}

static void test_missing_parent_and_cycle(void **state) {
  (void)state;
  char out[256];
  ttab *t = ttab_new();
  assert_int_equal(ttab_add(t, "acme", "fr", "gone"), TTAB_OK);
  /* A damaged table: two tenants each other's parent. */
  assert_int_equal(ttab_add(t, "acme", "aa", "bb"), TTAB_OK);
  assert_int_equal(ttab_add(t, "acme", "bb", "aa"), TTAB_OK);
  assert_int_equal(ttab_seal(t), TTAB_OK);
  assert_int_equal(ttab_path(t, "acme", "fr", out, sizeof out), TTAB_OK);
  assert_string_equal(out, "fr");
  assert_int_equal(ttab_path(t, "acme", "aa", out, sizeof out), TTAB_TOOSMALL);
  ttab_free(t);
}

static void test_many_platforms(void **state) {
  (void)state;
  char out[64], p[16], want[64];
  ttab *t = ttab_new();
  /* Added in reverse order: seal sorts. */
  for (int i = 499; i >= 0; i--) {
    snprintf(p, sizeof p, "p%03d", i);
    assert_int_equal(ttab_add(t, p, "child", "root"), TTAB_OK);
    assert_int_equal(ttab_add(t, p, "root", NULL), TTAB_OK);
  }
  assert_int_equal(ttab_seal(t), TTAB_OK);
  assert_int_equal(ttab_count(t), 1000);
  for (int i = 0; i < 500; i += 37) {
    snprintf(p, sizeof p, "p%03d", i);
    assert_int_equal(ttab_path(t, p, "child", out, sizeof out), TTAB_OK);
    snprintf(want, sizeof want, "root/child");
    assert_string_equal(out, want);
  }
  ttab_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_paths_from_the_store, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_unknown_and_bad_arguments, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_buffer_exactly_or_too_small, setup,
                                      teardown),
      cmocka_unit_test(test_deep_chain_and_bounds),
      cmocka_unit_test(test_missing_parent_and_cycle),
      cmocka_unit_test(test_many_platforms),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
