/* Unit tests of the provisioning plugin's kv driver (driver_kv.c): get,
 * put, delete, key and value bounds, TTL expiry with an injected clock
 * (expired keys invisible, then swept), cursor paging with prefixes, and
 * the quota with nothing written. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <nno/plugin.h>

#include "prov_fixture.h"

static char g_path[256];
static uint64_t g_now = 1000000;
static uint64_t fake_clock(void) { return g_now; }

static int setup(void **state) {
  if (pfx_setup(state)) return -1;
  pfx *f = *state;
  prov_clock = fake_clock;
  g_now = 1000000;
  pfx_path(f, "kv", "cache", g_path, sizeof g_path);
  return pkv_create(g_path, f->msg, sizeof f->msg);
}

static int kv(pfx *f, int op, const char *key, const char *value,
              uint64_t ttl, prov_out *o) {
  prov_out_init(o);
  return pkv_run(g_path, &f->b, &f->q, op, key, strlen(key), value,
                 value ? strlen(value) : 0, ttl, NULL, 0, o);
}

static int put(pfx *f, const char *key, const char *value, uint64_t ttl) {
  prov_out o;
  int rc = kv(f, 'p', key, value, ttl, &o);
  prov_out_free(&o);
  return rc;
}

/* 1 found (value compared), 0 not found. */
static int get(pfx *f, const char *key, const char *want) {
  prov_out o;
  assert_int_equal(kv(f, 'g', key, NULL, 0, &o), 0);
  int found = o.found;
  if (found && want) {
    assert_int_equal(o.value_len, strlen(want));
    assert_memory_equal(o.value, want, o.value_len);
  }
  prov_out_free(&o);
  return found;
}

static void basics(void **state) {
  pfx *f = *state;
  prov_out o;
  assert_int_equal(get(f, "a", NULL), 0);
  assert_int_equal(put(f, "a", "one", 0), 0);
  assert_int_equal(get(f, "a", "one"), 1);
  assert_int_equal(put(f, "a", "two", 0), 0);
  assert_int_equal(get(f, "a", "two"), 1);
  assert_int_equal(put(f, "empty", "", 0), 0);
  assert_int_equal(get(f, "empty", ""), 1);
  assert_int_equal(kv(f, 'd', "a", NULL, 0, &o), 0);
  assert_int_equal(o.found, 1);
  prov_out_free(&o);
  assert_int_equal(kv(f, 'd', "a", NULL, 0, &o), 0);
  assert_int_equal(o.found, 0);
  prov_out_free(&o);
  assert_int_equal(get(f, "a", NULL), 0);
}

static void key_and_value_bounds(void **state) {
  pfx *f = *state;
  char k[600];
  prov_out o;
  memset(k, 'k', sizeof k);
  k[512] = '\0';
  assert_int_equal(put(f, k, "v", 0), 0);
  k[512] = 'k';
  k[513] = '\0';
  assert_int_equal(put(f, k, "v", 0), NNO_EINVAL);
  assert_int_equal(put(f, "", "v", 0), NNO_EINVAL);
  assert_int_equal(put(f, "a\nb", "v", 0), NNO_EINVAL);
  assert_int_equal(put(f, "bad\xff", "v", 0), NNO_EINVAL);
  assert_int_equal(put(f, "\xc0\xaf", "v", 0), NNO_EINVAL); /* overlong '/' */
  /* a NUL inside the key */
  prov_out_init(&o);
  assert_int_equal(pkv_run(g_path, &f->b, &f->q, 'p', "a\0b", 3, "v", 1, 0,
                           NULL, 0, &o),
                   NNO_EINVAL);
  prov_out_free(&o);
  assert_int_equal(put(f, "caf\xc3\xa9", "v", 0), 0);
  f->b.kv_value_max = 4;
  assert_int_equal(put(f, "big", "12345", 0), NNO_ETOOBIG);
  assert_int_equal(get(f, "big", NULL), 0);
  assert_int_equal(put(f, "big", "1234", 0), 0);
}

static long long rows(void) {
  sqlite3 *db;
  sqlite3_stmt *st;
  long long n = -1;
  assert_int_equal(sqlite3_open(g_path, &db), SQLITE_OK);
  sqlite3_prepare_v2(db, "SELECT count(*) FROM kv", -1, &st, NULL);
  if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

static void ttl(void **state) {
  pfx *f = *state;
  prov_out o;
  assert_int_equal(put(f, "t", "v", 10), 0);
  assert_int_equal(put(f, "keep", "v", 0), 0);
  assert_int_equal(kv(f, 'g', "t", NULL, 0, &o), 0);
  assert_int_equal(o.expires, g_now + 10);
  prov_out_free(&o);
  g_now += 9;
  assert_int_equal(get(f, "t", "v"), 1);
  g_now += 1; /* expires at exactly now: gone */
  assert_int_equal(get(f, "t", NULL), 0);
  prov_out_init(&o);
  assert_int_equal(pkv_run(g_path, &f->b, &f->q, 'l', "", 0, NULL, 0, 0, NULL,
                           10, &o),
                   0);
  assert_string_equal(o.json, "[{\"key\":\"keep\",\"expires\":null}]");
  prov_out_free(&o);
  /* a delete of an expired key finds nothing */
  assert_int_equal(rows(), 2);
  assert_int_equal(kv(f, 'd', "t", NULL, 0, &o), 0);
  assert_int_equal(o.found, 0);
  prov_out_free(&o);
  /* the next write sweeps expired rows */
  assert_int_equal(put(f, "u", "v", 5), 0);
  g_now += 6;
  assert_int_equal(rows(), 2);
  assert_int_equal(put(f, "w", "v", 0), 0);
  assert_int_equal(rows(), 2); /* keep, w */
  assert_int_equal(put(f, "x", "v", 200ull * 366 * 86400), NNO_EINVAL);
}

static void paging(void **state) {
  pfx *f = *state;
  char k[32];
  for (int i = 0; i < 25; i++) {
    snprintf(k, sizeof k, "a/%02d", i);
    assert_int_equal(put(f, k, "v", 0), 0);
  }
  assert_int_equal(put(f, "a", "v", 0), 0);
  assert_int_equal(put(f, "b/00", "v", 0), 0);
  assert_int_equal(put(f, "a0", "v", 0), 0);
  char cursor[2048] = "";
  int pages = 0, total = 0;
  do {
    prov_out o;
    prov_out_init(&o);
    assert_int_equal(pkv_run(g_path, &f->b, &f->q, 'l', "a/", 2,
                             NULL, 0, 0, cursor[0] ? cursor : NULL, 10, &o),
                     0);
    json_t *arr = json_loads(o.json, 0, NULL);
    assert_non_null(arr);
    for (size_t i = 0; i < json_array_size(arr); i++) {
      snprintf(k, sizeof k, "a/%02d", total++);
      assert_string_equal(
          json_string_value(json_object_get(json_array_get(arr, i), "key")), k);
    }
    json_decref(arr);
    snprintf(cursor, sizeof cursor, "%s", o.cursor);
    prov_out_free(&o);
    pages++;
  } while (cursor[0]);
  assert_int_equal(pages, 3);
  assert_int_equal(total, 25);
  prov_out o;
  prov_out_init(&o);
  assert_int_equal(pkv_run(g_path, &f->b, &f->q, 'l', "", 0, NULL, 0, 0,
                           "zz-not-hex", 10, &o),
                   NNO_EINVAL);
  prov_out_free(&o);
  prov_out_init(&o);
  assert_int_equal(pkv_run(g_path, &f->b, &f->q, 'l', "", 0, NULL, 0, 0, NULL,
                           1001, &o),
                   NNO_EINVAL);
  prov_out_free(&o);
}

static void quota(void **state) {
  pfx *f = *state;
  char big[3000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  f->q.limit = prov_usage(f->pdir) + 1000;
  assert_int_equal(put(f, "big", big, 0), NNO_EQUOTA);
  assert_int_equal(get(f, "big", NULL), 0);
  assert_int_equal(put(f, "small", "v", 0), 0);
  prov_out o;
  assert_int_equal(kv(f, 'd', "small", NULL, 0, &o), 0);
  prov_out_free(&o);
  /* not provisioned */
  char path[256];
  pfx_path(f, "kv", "nope", path, sizeof path);
  prov_out_init(&o);
  assert_int_equal(pkv_run(path, &f->b, &f->q, 'g', "a", 1, NULL, 0, 0, NULL,
                           0, &o),
                   NNO_ENOENT);
  prov_out_free(&o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(basics, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(key_and_value_bounds, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(ttl, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(paging, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(quota, setup, pfx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
