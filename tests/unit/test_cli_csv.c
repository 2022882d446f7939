/* Unit tests for the CLI's CSV output (host/cli/out.c, cli_csv): RFC
 * 4180 lines, fields quoted exactly when they must be. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* cli_csv's output for `rows` (JSON text) under the columns a, b. */
static char *csv_of(const char *rows) {
  static const cli_col cols[] = {{"A", "a"}, {"B", "b"}};
  json_t *v = json_loads(rows, 0, NULL);
  assert_non_null(v);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  cli_csv(f, cols, 2, v);
  fclose(f);
  json_decref(v);
  return buf;
}

static void plain(void **state) {
  (void)state;
  char *s = csv_of("[{\"a\": \"eu\", \"b\": 60}, {\"a\": \"\", \"b\": 0}]");
  assert_string_equal(s, "a,b\r\neu,60\r\n,0\r\n");
  free(s);
}

static void quoted(void **state) {
  (void)state;
  char *s = csv_of(
      "[{\"a\": \"x,y\", \"b\": \"say \\\"hi\\\"\"},"
      " {\"a\": \"two\\nlines\", \"b\": \" pad \"},"
      " {\"a\": \"cr\\rhere\", \"b\": \"tail \"}]");
  assert_string_equal(s,
                      "a,b\r\n"
                      "\"x,y\",\"say \"\"hi\"\"\"\r\n"
                      "two?lines,\" pad \"\r\n"
                      "cr?here,\"tail \"\r\n");
  free(s);
}

static void nulls_and_absent(void **state) {
  (void)state;
  char *s = csv_of("[{\"a\": null}, {}]");
  assert_string_equal(s, "a,b\r\n,\r\n,\r\n");
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(plain),
      cmocka_unit_test(quoted),
      cmocka_unit_test(nulls_and_absent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
