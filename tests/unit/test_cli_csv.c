/* Unit tests for the CLI's output (host/cli/out.c): CSV (cli_csv) as RFC
 * 4180 lines, fields quoted exactly when they must be; the sanitiser
 * (cli_defang, cli_put_safe) for what a host sends to a terminal. */
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

/* C0, DEL, C1 (as UTF-8) and bytes that are not well-formed UTF-8 become
 * '?', one each; other characters pass whole. */
static void defang(void **state) {
  (void)state;
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"plain text", "plain text"},
      {"a\x1b]0;x\x07"
       "b",
       "a?]0;x?b"},
      {"del\x7f", "del?"},
      {"csi\xc2\x9b"
       "1m",
       "csi?1m"},
      {"bare\x9b"
       "1m",
       "bare?1m"},
      {"cut\xc3", "cut?"},
      {"over\xc0\xafx", "over??x"},
      {"caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x99\x82",
       "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x99\x82"},
      {"nbsp\xc2\xa0", "nbsp\xc2\xa0"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", cases[i].in);
    cli_defang(buf);
    assert_string_equal(buf, cases[i].out);
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    assert_non_null(f);
    cli_put_safe(f, cases[i].in);
    fclose(f);
    assert_string_equal(mem, cases[i].out);
    free(mem);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(plain),
      cmocka_unit_test(quoted),
      cmocka_unit_test(nulls_and_absent),
      cmocka_unit_test(defang),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
