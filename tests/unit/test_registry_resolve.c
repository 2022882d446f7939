/* Unit tests for registry/resolve.c: the per-worker routing table the
 * RESOLVE hook reads (insert, replace, remove, growth, stack resolution). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "resolve.h"

/* Fake stack handles: distinct addresses, never dereferenced. */
static char stack_a, stack_b;

static nno_stack *find(void *ud, const char *stack, const char *version) {
  int *calls = ud;
  if (calls) (*calls)++;
  if (strcmp(stack, "a") == 0 && strcmp(version, "1.0.0") == 0)
    return (nno_stack *)&stack_a;
  if (strcmp(stack, "b") == 0 && strcmp(version, "2.0.0") == 0)
    return (nno_stack *)&stack_b;
  return NULL;
}

static void put_get_replace_remove(void **state) {
  rtable *t = rt_new();
  assert_non_null(t);
  assert_null(rt_get(t, "acme", 4));
  assert_int_equal(rt_put(t, "acme", RT_ACTIVE, NULL, NULL, 0, NULL, NULL), 0);
  const rt_entry *e = rt_get(t, "acme", 4);
  assert_non_null(e);
  assert_int_equal(e->status, RT_ACTIVE);
  assert_int_equal(e->nstacks, 0);
  assert_string_equal(e->id, "acme");
  /* Lookups take a length: "acme/x" with length 4 is "acme". */
  assert_ptr_equal(rt_get(t, "acme/hello", 4), e);
  assert_null(rt_get(t, "acm", 3));
  assert_null(rt_get(t, "", 0));
  /* Replace: same key, new status and stacks. */
  const char *s[] = {"a", "b", "c"}, *v[] = {"1.0.0", "2.0.0", "3.0.0"};
  assert_int_equal(rt_put(t, "acme", RT_SUSPENDED, s, v, 3, find, NULL), 0);
  assert_int_equal(rt_count(t), 1);
  e = rt_get(t, "acme", 4);
  assert_int_equal(e->status, RT_SUSPENDED);
  assert_int_equal(e->nacts, 3);
  assert_int_equal(e->nstacks, 2); /* "c" is not loaded */
  assert_ptr_equal(e->stacks[0], &stack_a);
  assert_ptr_equal(e->stacks[1], &stack_b);
  rt_remove(t, "acme");
  rt_remove(t, "acme"); /* absent: nothing happens */
  assert_null(rt_get(t, "acme", 4));
  assert_int_equal(rt_count(t), 0);
  /* Bad arguments leave the table as it was. */
  assert_int_equal(rt_put(t, "", RT_ACTIVE, NULL, NULL, 0, NULL, NULL),
                   NNO_EINVAL);
  assert_int_equal(rt_put(t, "x", 9, NULL, NULL, 0, NULL, NULL), NNO_EINVAL);
  const char *many[RT_MAX_STACKS + 1];
  for (int i = 0; i <= RT_MAX_STACKS; i++) many[i] = "a";
  assert_int_equal(
      rt_put(t, "x", RT_ACTIVE, many, many, RT_MAX_STACKS + 1, NULL, NULL),
      NNO_EINVAL);
  assert_int_equal(rt_count(t), 0);
  rt_free(t);
}

static void grows_and_resolves_later(void **state) {
  rtable *t = rt_new();
  char id[33];
  const char *s[] = {"a"}, *v[] = {"1.0.0"};
  /* 20,000 platforms: the buckets double several times. */
  for (int i = 0; i < 20000; i++) {
    snprintf(id, sizeof id, "plat-%05d", i);
    assert_int_equal(rt_put(t, id, i % 3 ? RT_ACTIVE : RT_SUSPENDED, s, v,
                            i % 2, NULL, NULL),
                     0);
  }
  assert_int_equal(rt_count(t), 20000);
  for (int i = 0; i < 20000; i++) {
    snprintf(id, sizeof id, "plat-%05d", i);
    const rt_entry *e = rt_get(t, id, strlen(id));
    assert_non_null(e);
    assert_int_equal(e->status, i % 3 ? RT_ACTIVE : RT_SUSPENDED);
    assert_int_equal(e->nacts, i % 2);
    assert_int_equal(e->nstacks, 0); /* no finder yet */
  }
  /* The host loaded its stacks: resolve every entry once. */
  int calls = 0;
  rt_resolve_all(t, find, &calls);
  assert_int_equal(calls, 10000);
  const rt_entry *e = rt_get(t, "plat-00001", 10);
  assert_int_equal(e->nstacks, 1);
  assert_ptr_equal(e->stacks[0], &stack_a);
  for (int i = 0; i < 20000; i += 2) {
    snprintf(id, sizeof id, "plat-%05d", i);
    rt_remove(t, id);
  }
  assert_int_equal(rt_count(t), 10000);
  assert_null(rt_get(t, "plat-00002", 10));
  assert_non_null(rt_get(t, "plat-00003", 10));
  rt_clear(t);
  assert_int_equal(rt_count(t), 0);
  assert_null(rt_get(t, "plat-00003", 10));
  rt_free(t);
}

static void status_names(void **state) {
  assert_int_equal(rt_status_parse("active"), RT_ACTIVE);
  assert_int_equal(rt_status_parse("suspended"), RT_SUSPENDED);
  assert_int_equal(rt_status_parse("deleting"), RT_DELETING);
  assert_int_equal(rt_status_parse("gone"), 0);
  assert_string_equal(rt_status_name(RT_SUSPENDED), "suspended");
  assert_string_equal(rt_status_name(0), "unknown");
}


/* Which platform a host name belongs to: every name under the base
 * domain is its platform's, the bare {p}.{base} included; the base and
 * api.{base} are the core API's. */
static int host_is(const char *host, const char *want) {
  const char *id = NULL;
  size_t n = 0;
  static const char base[] = "nno.localhost";
  int r = rt_host_platform(host, strlen(host), base, sizeof base - 1, &id, &n);
  if (!want) return r == 0;
  return r == 1 && n == strlen(want) && memcmp(id, want, n) == 0;
}

static void host_names(void **state) {
  assert_true(host_is("acme.nno.localhost", "acme"));
  assert_true(host_is("app.acme.nno.localhost", "acme"));
  assert_true(host_is("console.acme.nno.localhost", "acme"));
  assert_true(host_is("auth.svc.default.acme.nno.localhost", "acme"));
  assert_true(host_is("a.acme.nno.localhost", "acme"));
  /* Claimed, with an id that names no platform: the caller answers 404
   * rather than serve the core API on a name under the base. */
  assert_true(host_is(".nno.localhost", ""));
  assert_true(host_is("x..nno.localhost", ""));
  assert_true(host_is("x.api.nno.localhost", "api"));
  /* The core API's names, and names not under the base. */
  assert_true(host_is("nno.localhost", NULL));
  assert_true(host_is("api.nno.localhost", NULL));
  assert_true(host_is("admin.nno.localhost", NULL));
  assert_true(host_is("x.admin.nno.localhost", "admin"));
  assert_true(host_is("127.0.0.1", NULL));
  assert_true(host_is("localhost", NULL));
  assert_true(host_is("acme.xnno.localhost", NULL));
  assert_true(host_is("acme.nno.localhost.evil.example", NULL));
  assert_true(host_is("nno.localhostx", NULL));
  /* No base domain configured: nothing is claimed. */
  const char *id;
  size_t n;
  assert_int_equal(rt_host_platform("a.b", 3, "", 0, &id, &n), 0);
}

/* admin.{base} alone is the operator view's host. */
static void admin_host(void **state) {
  (void)state;
  static const char base[] = "nno.localhost";
  const size_t bl = sizeof base - 1;
#define IS_ADMIN(h) rt_host_is_admin(h, strlen(h), base, bl)
  assert_int_equal(IS_ADMIN("admin.nno.localhost"), 1);
  assert_int_equal(IS_ADMIN("nno.localhost"), 0);
  assert_int_equal(IS_ADMIN("api.nno.localhost"), 0);
  assert_int_equal(IS_ADMIN("x.admin.nno.localhost"), 0);
  assert_int_equal(IS_ADMIN("admin.nno.localhostx"), 0);
  assert_int_equal(IS_ADMIN("adminx.nno.localhost"), 0);
  assert_int_equal(IS_ADMIN("admin-nno.localhost"), 0);
  assert_int_equal(IS_ADMIN("admin.xnno.localhos"), 0);
  assert_int_equal(IS_ADMIN("admin"), 0);
#undef IS_ADMIN
  assert_int_equal(rt_host_is_admin("admin.", 6, "", 0), 0);
}

static void auth_svc_hosts(void **state) {
  (void)state;
  const char *sid, *id;
  size_t n, idn;
  const char *h = "auth.svc.default.acme.nno.localhost";
  assert_int_equal(
      rt_host_platform(h, strlen(h), "nno.localhost", 13, &id, &idn), 1);
  assert_int_equal(rt_auth_svc_stack(h, strlen(h), (size_t)(id - h), &sid, &n),
                   1);
  assert_int_equal(n, 7);
  assert_memory_equal(sid, "default", 7);
  /* Other names of the platform are not narrowed. */
  const char *other[] = {"acme.nno.localhost", "console.acme.nno.localhost",
                         "auth.svc.acme.nno.localhost",
                         "x.auth.svc.default.acme.nno.localhost",
                         "auth.svc.a.b.acme.nno.localhost",
                         "auth.svc..acme.nno.localhost",
                         "auth.svx.default.acme.nno.localhost"};
  for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
    const char *o = other[i];
    assert_int_equal(
        rt_host_platform(o, strlen(o), "nno.localhost", 13, &id, &idn), 1);
    assert_int_equal(
        rt_auth_svc_stack(o, strlen(o), (size_t)(id - o), &sid, &n), 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(put_get_replace_remove),
      cmocka_unit_test(grows_and_resolves_later),
      cmocka_unit_test(status_names),
      cmocka_unit_test(host_names),
      cmocka_unit_test(admin_host),
      cmocka_unit_test(auth_svc_hosts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
