/* Unit tests for host/router.c: the segment trie and route_pattern_valid(). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <nno/plugin.h>

#include "manifest.h"
#include "router.h"

#define N(a) (sizeof(a) / sizeof *(a))

/* Distinct targets to tell routes apart. */
static int T[32];

static int setup(void **state) {
  router *r = router_new();
  if (!r) return -1;
  *state = r;
  return 0;
}

static int teardown(void **state) {
  router_free(*state);
  return 0;
}

/* Matches `method path`; returns the code and fills *m. */
static int match(const router *r, const char *method, const char *path,
                 route_match *m) {
  return router_match(r, method, strlen(method), path, strlen(path), m, NULL,
                      0);
}

/* The target a request reaches, or NULL. */
static void *target(const router *r, const char *method, const char *path) {
  route_match m;
  return match(r, method, path, &m) == 0 ? m.target : NULL;
}

/* The value of parameter `name` as a string, or "(none)". */
static const char *param(const route_match *m, const char *name) {
  static char buf[256];
  for (size_t i = 0; i < m->nparams; i++)
    if (strcmp(m->params[i].name, name) == 0) {
      assert_int_equal(m->params[i].name_len, strlen(name));
      snprintf(buf, sizeof buf, "%.*s", (int)m->params[i].value_len,
               m->params[i].value);
      return buf;
    }
  return "(none)";
}

static void test_literals(void **state) {
  router *r = *state;
  assert_int_equal(router_add(r, "GET", "/", &T[0]), 0);
  assert_int_equal(router_add(r, "GET", "/hello", &T[1]), 0);
  assert_int_equal(router_add(r, "GET", "/hello/world", &T[2]), 0);
  assert_int_equal(router_add(r, "GET", "/help", &T[3]), 0);
  assert_int_equal(router_count(r), 4);
  assert_ptr_equal(target(r, "GET", "/"), &T[0]);
  assert_ptr_equal(target(r, "GET", "/hello"), &T[1]);
  assert_ptr_equal(target(r, "GET", "/hello/world"), &T[2]);
  assert_ptr_equal(target(r, "GET", "/help"), &T[3]);
  assert_null(target(r, "GET", "/hel"));
  assert_null(target(r, "GET", "/hello/world/x"));
  assert_null(target(r, "GET", "/Hello"));
  assert_null(target(r, "GET", "//hello"));
  assert_null(target(r, "GET", "hello"));
  assert_null(target(r, "GET", ""));

  route_match m;
  assert_int_equal(match(r, "GET", "/hello/world", &m), 0);
  assert_string_equal(m.pattern, "/hello/world");
  assert_string_equal(m.method, "GET");
  assert_int_equal(m.nparams, 0);
  /* The path need not be NUL-terminated: only path_len bytes count. */
  assert_int_equal(router_match(r, "GET", 3, "/hello/worldXYZ", 6, &m, NULL, 0),
                   0);
  assert_ptr_equal(m.target, &T[1]);
  assert_int_equal(router_match(r, "GETX", 3, "/help", 5, &m, NULL, 0), 0);
}

static void test_params(void **state) {
  router *r = *state;
  route_match m;
  assert_int_equal(router_add(r, "GET", "/users/{id}", &T[0]), 0);
  assert_int_equal(router_add(r, "GET", "/users/{id}/posts/{post_id}", &T[1]),
                   0);
  /* Same node, another method, another name: each route keeps its own. */
  assert_int_equal(router_add(r, "DELETE", "/users/{user}", &T[2]), 0);

  const char *path = "/users/42/posts/abc";
  assert_int_equal(match(r, "GET", path, &m), 0);
  assert_ptr_equal(m.target, &T[1]);
  assert_int_equal(m.nparams, 2);
  assert_string_equal(param(&m, "id"), "42");
  assert_string_equal(param(&m, "post_id"), "abc");
  /* Values point into the path. */
  assert_ptr_equal(m.params[0].value, path + 7);
  assert_ptr_equal(m.params[1].value, path + 16);
  assert_string_equal(m.params[0].name, "id");

  assert_int_equal(match(r, "GET", "/users/7", &m), 0);
  assert_string_equal(param(&m, "id"), "7");
  assert_int_equal(match(r, "DELETE", "/users/7", &m), 0);
  assert_ptr_equal(m.target, &T[2]);
  assert_string_equal(param(&m, "user"), "7");
  assert_string_equal(param(&m, "id"), "(none)");

  /* A parameter never matches an empty segment. */
  assert_null(target(r, "GET", "/users/"));
  assert_null(target(r, "GET", "/users"));
  assert_null(target(r, "GET", "/users//posts/x"));
  /* Raw bytes: %2F is not a separator here. */
  assert_int_equal(match(r, "GET", "/users/a%2Fb", &m), 0);
  assert_string_equal(param(&m, "id"), "a%2Fb");
}

static void test_wildcard(void **state) {
  router *r = *state;
  route_match m;
  assert_int_equal(router_add(r, "GET", "/files/{rest...}", &T[0]), 0);
  assert_int_equal(router_add(r, "GET", "/{all...}", &T[1]), 0);

  assert_int_equal(match(r, "GET", "/files/a/b/c.txt", &m), 0);
  assert_ptr_equal(m.target, &T[0]);
  assert_int_equal(m.nparams, 1);
  assert_string_equal(param(&m, "rest"), "a/b/c.txt");
  /* The rest may be empty, or end in a slash. */
  assert_int_equal(match(r, "GET", "/files/", &m), 0);
  assert_ptr_equal(m.target, &T[0]);
  assert_string_equal(param(&m, "rest"), "");
  assert_int_equal(match(r, "GET", "/files/a/", &m), 0);
  assert_string_equal(param(&m, "rest"), "a/");
  /* "/files" has no slash after it: only the catch-all takes it. */
  assert_int_equal(match(r, "GET", "/files", &m), 0);
  assert_ptr_equal(m.target, &T[1]);
  assert_string_equal(param(&m, "all"), "files");
  assert_int_equal(match(r, "GET", "/", &m), 0);
  assert_ptr_equal(m.target, &T[1]);
  assert_string_equal(param(&m, "all"), "");
  assert_int_equal(match(r, "GET", "/x//y", &m), 0);
  assert_string_equal(param(&m, "all"), "x//y");
}

static void test_precedence(void **state) {
  router *r = *state;
  route_match m;
  assert_int_equal(router_add(r, "GET", "/a/{x}/c", &T[0]), 0);
  assert_int_equal(router_add(r, "GET", "/a/b/d", &T[1]), 0);
  assert_int_equal(router_add(r, "GET", "/a/b/{y}", &T[2]), 0);
  assert_int_equal(router_add(r, "GET", "/a/{x}/{z...}", &T[3]), 0);
  assert_int_equal(router_add(r, "GET", "/a/b", &T[4]), 0);
  assert_int_equal(router_add(r, "GET", "/a/{x}", &T[5]), 0);

  /* Literal first. */
  assert_ptr_equal(target(r, "GET", "/a/b/d"), &T[1]);
  assert_ptr_equal(target(r, "GET", "/a/b"), &T[4]);
  /* Literal "b" leads nowhere for "c", so the walk backtracks to {x}. */
  assert_int_equal(match(r, "GET", "/a/b/c", &m), 0);
  assert_ptr_equal(m.target, &T[2]); /* "/a/b/{y}" is more specific */
  assert_string_equal(param(&m, "y"), "c");
  assert_int_equal(match(r, "GET", "/a/q/c", &m), 0);
  assert_ptr_equal(m.target, &T[0]);
  assert_string_equal(param(&m, "x"), "q");
  /* Deeper: both literal and param fail, the wildcard takes it. */
  assert_int_equal(match(r, "GET", "/a/b/c/d", &m), 0);
  assert_ptr_equal(m.target, &T[3]);
  assert_string_equal(param(&m, "x"), "b");
  assert_string_equal(param(&m, "z"), "c/d");
  assert_int_equal(m.nparams, 2);
  assert_ptr_equal(target(r, "GET", "/a/zz"), &T[5]);
}

static void test_backtrack_params(void **state) {
  router *r = *state;
  route_match m;
  /* A failed branch must not leave its values behind. */
  assert_int_equal(router_add(r, "GET", "/{a}/{b}/x", &T[0]), 0);
  assert_int_equal(router_add(r, "GET", "/p/{c}/y", &T[1]), 0);
  assert_int_equal(match(r, "GET", "/p/q/x", &m), 0);
  assert_ptr_equal(m.target, &T[0]);
  assert_int_equal(m.nparams, 2);
  assert_string_equal(param(&m, "a"), "p");
  assert_string_equal(param(&m, "b"), "q");
  assert_int_equal(match(r, "GET", "/p/q/y", &m), 0);
  assert_ptr_equal(m.target, &T[1]);
  assert_int_equal(m.nparams, 1);
  assert_string_equal(param(&m, "c"), "q");
}

static void test_trailing_slash(void **state) {
  router *r = *state;
  assert_int_equal(router_add(r, "GET", "/hello", &T[0]), 0);
  assert_int_equal(router_add(r, "GET", "/hello/", &T[1]), 0);
  assert_int_equal(router_add(r, "GET", "/only/", &T[2]), 0);
  assert_int_equal(router_add(r, "GET", "/p/{x}/", &T[3]), 0);
  assert_ptr_equal(target(r, "GET", "/hello"), &T[0]);
  assert_ptr_equal(target(r, "GET", "/hello/"), &T[1]);
  assert_ptr_equal(target(r, "GET", "/only/"), &T[2]);
  assert_null(target(r, "GET", "/only"));
  assert_null(target(r, "GET", "/hello//"));
  assert_ptr_equal(target(r, "GET", "/p/1/"), &T[3]);
  assert_null(target(r, "GET", "/p/1"));
}

static void test_methods(void **state) {
  router *r = *state;
  route_match m;
  assert_int_equal(router_add(r, "GET", "/doc", &T[0]), 0);
  assert_int_equal(router_add(r, "POST", "/doc", &T[1]), 0);
  assert_int_equal(router_add(r, "HEAD", "/page", &T[2]), 0);
  assert_int_equal(router_add(r, "GET", "/page", &T[3]), 0);
  assert_int_equal(router_add(r, "*", "/any", &T[4]), 0);
  assert_int_equal(router_add(r, "DELETE", "/any", &T[5]), 0);
  assert_int_equal(router_add(r, "GET", "/x/{id}", &T[6]), 0);
  assert_int_equal(router_add(r, "PUT", "/x/y", &T[7]), 0);

  assert_ptr_equal(target(r, "GET", "/doc"), &T[0]);
  assert_ptr_equal(target(r, "POST", "/doc"), &T[1]);
  /* HEAD falls back to GET, and reports the GET route. */
  assert_int_equal(match(r, "HEAD", "/doc", &m), 0);
  assert_ptr_equal(m.target, &T[0]);
  assert_string_equal(m.method, "GET");
  /* ...unless a HEAD route exists. */
  assert_ptr_equal(target(r, "HEAD", "/page"), &T[2]);
  /* "*" takes any method; an explicit one still wins. */
  assert_ptr_equal(target(r, "PATCH", "/any"), &T[4]);
  assert_ptr_equal(target(r, "HEAD", "/any"), &T[4]);
  assert_ptr_equal(target(r, "DELETE", "/any"), &T[5]);
  assert_int_equal(match(r, "OPTIONS", "/any", &m), 0);
  assert_string_equal(m.method, "*");
  /* Method names are case-sensitive. */
  assert_null(target(r, "get", "/doc"));
  /* A literal route without the method does not hide a param route
   * that has it. */
  assert_ptr_equal(target(r, "GET", "/x/y"), &T[6]);
  assert_ptr_equal(target(r, "PUT", "/x/y"), &T[7]);
}

static void test_405(void **state) {
  router *r = *state;
  char allow[64];
  route_match m;
  assert_int_equal(router_add(r, "GET", "/doc", &T[0]), 0);
  assert_int_equal(router_add(r, "POST", "/doc", &T[1]), 0);
  assert_int_equal(router_add(r, "PUT", "/doc/{id}", &T[2]), 0);
  assert_int_equal(router_add(r, "DELETE", "/doc/{id}", &T[3]), 0);
  assert_int_equal(router_add(r, "PATCH", "/doc/{x...}", &T[4]), 0);
  assert_int_equal(router_add(r, "GET", "/doc/1", &T[5]), 0);

  assert_int_equal(
      router_match(r, "DELETE", 6, "/doc", 4, &m, allow, sizeof allow),
      NNO_EINVAL);
  assert_string_equal(allow, "GET, HEAD, POST");
  /* The union over every route with this path, each method once. */
  assert_int_equal(
      router_match(r, "POST", 4, "/doc/1", 6, &m, allow, sizeof allow),
      NNO_EINVAL);
  /* In precedence order, each node's methods in the order added. */
  assert_string_equal(allow, "GET, HEAD, PUT, DELETE, PATCH");
  /* Truncation drops whole methods. */
  assert_int_equal(router_match(r, "POST", 4, "/doc/1", 6, &m, allow, 15),
                   NNO_EINVAL);
  assert_string_equal(allow, "GET, HEAD, PUT");
  assert_int_equal(router_match(r, "POST", 4, "/doc/1", 6, &m, allow, 14),
                   NNO_EINVAL);
  assert_string_equal(allow, "GET, HEAD");
  assert_int_equal(router_match(r, "POST", 4, "/doc/1", 6, &m, allow, 1),
                   NNO_EINVAL);
  assert_string_equal(allow, "");
  /* No buffer is fine too. */
  assert_int_equal(router_match(r, "PUT", 3, "/doc", 4, &m, NULL, 0),
                   NNO_EINVAL);
  /* No route with this path at all. */
  strcpy(allow, "junk");
  assert_int_equal(
      router_match(r, "GET", 3, "/nope", 5, &m, allow, sizeof allow),
      NNO_ENOENT);
  assert_string_equal(allow, "");
  /* A success after a failed branch leaves the buffer empty. */
  assert_int_equal(
      router_match(r, "DELETE", 6, "/doc/1", 6, &m, allow, sizeof allow), 0);
  assert_ptr_equal(m.target, &T[3]);
  assert_string_equal(allow, "");
}

static void test_duplicates(void **state) {
  router *r = *state;
  assert_int_equal(router_add(r, "GET", "/a/{x}", &T[0]), 0);
  assert_int_equal(router_add(r, "GET", "/a/{x}", &T[1]), NNO_EEXIST);
  /* Parameter names do not make routes different. */
  assert_int_equal(router_add(r, "GET", "/a/{y}", &T[1]), NNO_EEXIST);
  assert_int_equal(router_add(r, "POST", "/a/{y}", &T[1]), 0);
  assert_int_equal(router_add(r, "*", "/a/{y}", &T[2]), 0);
  assert_int_equal(router_add(r, "*", "/a/{z}", &T[2]), NNO_EEXIST);
  assert_int_equal(router_add(r, "GET", "/a/{x...}", &T[3]), 0);
  assert_int_equal(router_add(r, "GET", "/a/{y...}", &T[3]), NNO_EEXIST);
  assert_int_equal(router_count(r), 4);
  assert_ptr_equal(target(r, "GET", "/a/1"), &T[0]);
}

static void test_invalid(void **state) {
  router *r = *state;
  static const char *const bad[] = {
      "",
      "hello",
      "//",
      "/a//b",
      "/a/{b",
      "/a/b}",
      "/a/x{b}",
      "/a/{b}x",
      "/a/{}",
      "/a/{...}",
      "/a/{B}",
      "/a/{1b}",
      "/a/{b-c}",
      "/a/{b}/{b}",
      "/a/{b}/{b...}",
      "/{rest...}/x",
      "/{rest...}/",
      "/a b",
      "/a?b",
      "/a#b",
      "/a\"b",
      "/a/\x01",
      "/caf\xc3\xa9",
      "/a/%zz",
      "/a/%4",
      "/a/.",
      "/a/../b",
      "/./a",
  };
  for (size_t i = 0; i < N(bad); i++) {
    char err[128] = "";
    if (route_pattern_valid(bad[i], err, sizeof err) != -1)
      fail_msg("accepted \"%s\"", bad[i]);
    if (err[0] == '\0') fail_msg("no reason for \"%s\"", bad[i]);
    if (router_add(r, "GET", bad[i], &T[0]) != NNO_EINVAL)
      fail_msg("router_add accepted \"%s\"", bad[i]);
  }
  static const char *const good[] = {
      "/",
      "/a",
      "/a/",
      "/a.b/c-d_e~f!$&'()*+,;=:@",
      "/%2F%aa",
      "/...",
      "/.well-known/x",
      "/{_x}/{y_2}/{rest...}",
      "/{rest...}",
  };
  for (size_t i = 0; i < N(good); i++) {
    char err[128];
    if (route_pattern_valid(good[i], err, sizeof err) != 0)
      fail_msg("refused \"%s\": %s", good[i], err);
  }
  /* Reasons name the problem and where it is. */
  char err[128];
  route_pattern_valid("/a//b", err, sizeof err);
  assert_string_equal(err, "empty segment at byte 3");
  route_pattern_valid("/a b", err, sizeof err);
  assert_string_equal(err, "invalid byte 0x20 at byte 2");
  route_pattern_valid("/a?b", err, sizeof err);
  assert_string_equal(err, "invalid character '?' at byte 2");
  route_pattern_valid("/a/\x01", err, sizeof err);
  assert_string_equal(err, "invalid byte 0x01 at byte 3");
  route_pattern_valid("hello", err, sizeof err);
  assert_string_equal(err, "must start with \"/\"");
  route_pattern_valid("/x/{B}", err, sizeof err);
  assert_string_equal(err,
                      "a parameter name must match [a-z_][a-z0-9_]* (byte 4)");
  route_pattern_valid("/{r...}/x", err, sizeof err);
  assert_string_equal(err,
                      "a {name...} wildcard must be the last segment (byte 1)");
  assert_int_equal(route_pattern_valid(NULL, NULL, 0), -1);

  /* Bad methods. */
  assert_int_equal(router_add(r, "get", "/a", &T[0]), NNO_EINVAL);
  assert_int_equal(router_add(r, "", "/a", &T[0]), NNO_EINVAL);
  assert_int_equal(router_add(r, "G T", "/a", &T[0]), NNO_EINVAL);
  assert_int_equal(router_add(r, "**", "/a", &T[0]), NNO_EINVAL);
  assert_int_equal(router_add(r, NULL, "/a", &T[0]), NNO_EINVAL);
  assert_int_equal(router_add(r, "GET", NULL, &T[0]), NNO_EINVAL);
  assert_int_equal(
      router_add(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG", "/a", &T[0]),
      NNO_EINVAL);
  assert_int_equal(router_add(NULL, "GET", "/a", &T[0]), NNO_EINVAL);
  assert_int_equal(router_count(r), 0);
}

static void test_pattern_length(void **state) {
  char p[1100];
  (void)state;
  memset(p, 'a', sizeof p);
  p[0] = '/';
  p[1024] = '\0';
  assert_int_equal(route_pattern_valid(p, NULL, 0), 0);
  p[1024] = 'a';
  p[1025] = '\0';
  assert_int_equal(route_pattern_valid(p, NULL, 0), -1);
}

static void test_param_limit(void **state) {
  router *r = *state;
  char pat[512], path[256];
  size_t o = 0, q = 0;
  for (int i = 0; i < ROUTER_MAX_PARAMS; i++) {
    o += (size_t)snprintf(pat + o, sizeof pat - o, "/{p%d}", i);
    q += (size_t)snprintf(path + q, sizeof path - q, "/v%d", i);
  }
  assert_int_equal(router_add(r, "GET", pat, &T[0]), 0);
  route_match m;
  assert_int_equal(match(r, "GET", path, &m), 0);
  assert_int_equal(m.nparams, ROUTER_MAX_PARAMS);
  assert_string_equal(param(&m, "p0"), "v0");
  assert_string_equal(param(&m, "p15"), "v15");
  /* One more, as a parameter or as a wildcard, is refused. */
  char more[600];
  snprintf(more, sizeof more, "%s/{extra}", pat);
  assert_int_equal(router_add(r, "GET", more, &T[1]), NNO_EINVAL);
  snprintf(more, sizeof more, "%s/{extra...}", pat);
  assert_int_equal(router_add(r, "GET", more, &T[1]), NNO_EINVAL);
  char err[64];
  assert_int_equal(route_pattern_valid(more, err, sizeof err), -1);
  assert_string_equal(err, "more than 16 parameters");
  /* A deeper path than any route simply does not match. */
  strcat(path, "/extra");
  assert_int_equal(match(r, "GET", path, &m), NNO_ENOENT);
}

static void test_many_routes(void **state) {
  router *r = *state;
  static int targets[1000];
  char pat[64], path[64];
  for (int i = 0; i < 1000; i++) {
    /* Mixed shapes: literal leaves, params, nested prefixes. */
    if (i % 3 == 0)
      snprintf(pat, sizeof pat, "/api/r%d", i);
    else if (i % 3 == 1)
      snprintf(pat, sizeof pat, "/api/r%d/{id}", i);
    else
      snprintf(pat, sizeof pat, "/svc%d/items/{id}/{rest...}", i);
    if (router_add(r, i % 2 ? "POST" : "GET", pat, &targets[i]) != 0)
      fail_msg("add %s", pat);
  }
  assert_int_equal(router_count(r), 1000);
  for (int i = 0; i < 1000; i++) {
    route_match m;
    const char *method = i % 2 ? "POST" : "GET";
    if (i % 3 == 0)
      snprintf(path, sizeof path, "/api/r%d", i);
    else if (i % 3 == 1)
      snprintf(path, sizeof path, "/api/r%d/x%d", i, i);
    else
      snprintf(path, sizeof path, "/svc%d/items/%d/a/b", i, i);
    if (match(r, method, path, &m) != 0 || m.target != &targets[i])
      fail_msg("%s %s did not reach route %d", method, path, i);
    char id[16];
    snprintf(id, sizeof id, i % 3 == 1 ? "x%d" : "%d", i);
    if (i % 3 && strcmp(param(&m, "id"), id) != 0)
      fail_msg("bad id for %s", path);
    /* The other method gets a 405, a near miss a 404. */
    assert_int_equal(match(r, i % 2 ? "GET" : "POST", path, &m), NNO_EINVAL);
  }
  assert_null(target(r, "GET", "/api/r1000"));
  assert_null(target(r, "GET", "/api/r"));
  assert_null(target(r, "GET", "/api/r01"));
  assert_null(target(r, "GET", "/svc2/items/1"));
}

static void test_free_null(void **state) {
  (void)state;
  router_free(NULL);
  assert_int_equal(router_count(NULL), 0);
  route_match m;
  assert_int_equal(router_match(NULL, "GET", 3, "/", 1, &m, NULL, 0),
                   NNO_ENOENT);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T_(test_literals),         T_(test_params),
      T_(test_wildcard),         T_(test_precedence),
      T_(test_backtrack_params), T_(test_trailing_slash),
      T_(test_methods),          T_(test_405),
      T_(test_duplicates),       T_(test_invalid),
      T_(test_pattern_length),   T_(test_param_limit),
      T_(test_many_routes),      T_(test_free_null),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
