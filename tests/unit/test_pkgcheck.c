/* Unit tests for host/pkgcheck.c's report: a loader message cut into file,
 * field and message, put back together unchanged, and the JSON that
 * `nno stack check --json` prints. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pkgcheck.h"

/* Every shape of loader message: the text comes back as it went in. */
static void test_split_and_join(void **state) {
  static const struct {
    const char *file, *err, *field, *message;
    int prefixed;
  } cases[] = {
      {"/s/p/package.json",
       "/s/p/package.json: field \"requries\": unknown field (did you mean "
       "\"requires\"?)",
       "requries", "unknown field (did you mean \"requires\"?)", 1},
      {"/s/stack.json",
       "/s/stack.json: id and version (a 1.0.0) do not match its folder "
       "a/2.0.0",
       "", "id and version (a 1.0.0) do not match its folder a/2.0.0", 1},
      {"/s/p/package.json",
       "plugin \"/s/p/libp.so\": init failed (NNO_EINVAL)", "",
       "plugin \"/s/p/libp.so\": init failed (NNO_EINVAL)", 0},
      /* A file name that is only a prefix of another is not cut. */
      {"/s/p", "/s/p/package.json: x", "", "/s/p/package.json: x", 0},
      /* "field" without its closing quote: left in the message. */
      {"/f", "/f: field \"abc", "", "field \"abc", 1},
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    pkgcheck_report rep;
    char text[2048];
    memset(&rep, 0, sizeof rep);
    assert_int_equal(pkgcheck_add(&rep, cases[i].file, cases[i].err), 0);
    assert_int_equal(rep.n, 1);
    assert_string_equal(rep.v[0].file, cases[i].file);
    assert_string_equal(rep.v[0].field, cases[i].field);
    assert_string_equal(rep.v[0].message, cases[i].message);
    assert_int_equal(rep.v[0].prefixed, cases[i].prefixed);
    pkgcheck_problem_text(&rep.v[0], text, sizeof text);
    assert_string_equal(text, cases[i].err);
    pkgcheck_report_free(&rep);
    assert_null(rep.v);
  }
}

static void test_json(void **state) {
  pkgcheck_report rep;
  (void)state;
  memset(&rep, 0, sizeof rep);
  json_t *j = pkgcheck_report_json(&rep);
  char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(s, "{\"ok\":true,\"problems\":[],\"stack\":null}");
  free(s);
  json_decref(j);
  snprintf(rep.id, sizeof rep.id, "crm");
  snprintf(rep.version, sizeof rep.version, "2.0.0");
  assert_int_equal(pkgcheck_add(&rep, "/c/stack.json",
                                "/c/stack.json: field \"name\": expected a "
                                "string, got 42"),
                   0);
  j = pkgcheck_report_json(&rep);
  s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(
      s, "{\"ok\":false,\"problems\":[{\"field\":\"name\",\"file\":"
         "\"/c/stack.json\",\"message\":\"expected a string, got 42\"}],"
         "\"stack\":{\"id\":\"crm\",\"version\":\"2.0.0\"}}");
  free(s);
  json_decref(j);
  pkgcheck_report_free(&rep);
}

/* A report keeps at most 256 problems; the rest are dropped, not an
 * error. */
static void test_bounded(void **state) {
  pkgcheck_report rep;
  (void)state;
  memset(&rep, 0, sizeof rep);
  for (int i = 0; i < 300; i++)
    assert_int_equal(pkgcheck_add(&rep, "/f", "/f: x"), 0);
  assert_int_equal(rep.n, 256);
  pkgcheck_report_free(&rep);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_split_and_join),
      cmocka_unit_test(test_json),
      cmocka_unit_test(test_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
