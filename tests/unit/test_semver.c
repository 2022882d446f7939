/* Unit tests for host/semver.c: parsing, precedence and npm-style ranges. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "semver.h"

#define N(a) (sizeof(a) / sizeof *(a))

/* Valid versions, most from the semver.org regex test list. */
static const char *const valid[] = {
    "0.0.0",
    "0.0.4",
    "1.2.3",
    "10.20.30",
    "1.1.2-prerelease+meta",
    "1.1.2+meta",
    "1.1.2+meta-valid",
    "1.0.0-alpha",
    "1.0.0-beta",
    "1.0.0-alpha.beta",
    "1.0.0-alpha.beta.1",
    "1.0.0-alpha.1",
    "1.0.0-alpha0.valid",
    "1.0.0-alpha.0valid",
    "1.0.0-alpha-a.b-c-somethinglong+build.1-aef.1-its-okay",
    "1.0.0-rc.1+build.1",
    "2.0.0-rc.1+build.123",
    "1.2.3-beta",
    "10.2.3-DEV-SNAPSHOT",
    "1.2.3-SNAPSHOT-123",
    "2.0.0+build.1848",
    "2.0.1-alpha.1227",
    "1.0.0-alpha+beta",
    "1.2.3----RC-SNAPSHOT.12.9.1--.12+788",
    "1.2.3----R-S.12.9.1--.12+meta",
    "1.2.3----RC-SNAPSHOT.12.9.1--.12",
    "1.0.0+0.build.1-rc.10000aaa-kk-0.1",
    "1.0.0-0A.is.legal",
    "1.0.0-0",
    "1.0.0+001", /* build identifiers may have leading zeros */
    "4294967295.4294967295.4294967295",
    /* 63 bytes of pre-release: the most semver.pre holds. */
    "1.0.0-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};

static const char *const invalid[] = {
    "",
    "1",
    "1.2",
    "1.2.3.4",
    "1.2.3-0123",
    "1.2.3-0123.0123",
    "1.1.2+.123",
    "+invalid",
    "-invalid",
    "-invalid+invalid",
    "-invalid.01",
    "alpha",
    "alpha.beta",
    "alpha.1",
    "alpha+beta",
    "alpha_beta",
    "1.0.0-alpha_beta",
    "1.0.0-alpha..",
    "1.0.0-alpha..1",
    "1.0.0-alpha.",
    "01.1.1",
    "1.01.1",
    "1.1.01",
    "1.2.3.DEV",
    "1.2-SNAPSHOT",
    "1.2.31.2.3----RC-SNAPSHOT.12.09.1--..12+788",
    "1.2-RC-SNAPSHOT",
    "-1.0.3-gamma+b7718",
    "+justmeta",
    "9.8.7+meta+meta",
    "9.8.7-whatever+meta+meta",
    "99999999999999999999999.999999999999999999.99999999999999999",
    "4294967296.0.0",
    "0.4294967296.0",
    "v1.2.3",
    "=1.2.3",
    " 1.2.3",
    "1.2.3 ",
    "1.2.3-",
    "1.2.3+",
    "1.2.3-+b",
    "1..3",
    "1.2.x",
    "x.x.x",
    "1.2.3-é",
    /* 64 bytes of pre-release: one too many. */
    "1.0.0-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};

static void test_parse_valid(void **state) {
  (void)state;
  for (size_t i = 0; i < N(valid); i++) {
    semver v;
    if (semver_parse(valid[i], &v) != 0) fail_msg("refused \"%s\"", valid[i]);
  }
}

static void test_parse_invalid(void **state) {
  (void)state;
  for (size_t i = 0; i < N(invalid); i++) {
    semver v;
    if (semver_parse(invalid[i], &v) != -1)
      fail_msg("accepted \"%s\"", invalid[i]);
  }
  semver v;
  assert_int_equal(semver_parse(NULL, &v), -1);
  assert_int_equal(semver_parse("1.0.0", NULL), -1);
}

static void test_parse_fields(void **state) {
  semver v;
  (void)state;
  assert_int_equal(semver_parse("1.22.333-rc.1+build.5", &v), 0);
  assert_int_equal(v.major, 1);
  assert_int_equal(v.minor, 22);
  assert_int_equal(v.patch, 333);
  assert_string_equal(v.pre, "rc.1");
  assert_int_equal(semver_parse("4294967295.0.7+x", &v), 0);
  assert_int_equal(v.major, 4294967295u);
  assert_int_equal(v.patch, 7);
  assert_string_equal(v.pre, "");
}

static void test_parse_length_bound(void **state) {
  char s[400];
  semver v;
  (void)state;
  /* A valid version of 257 bytes (long build metadata) is refused. */
  memset(s, 'b', sizeof s);
  memcpy(s, "1.0.0+", 6);
  s[257] = '\0';
  assert_int_equal(semver_parse(s, &v), -1);
  s[256] = '\0';
  assert_int_equal(semver_parse(s, &v), 0);
}

/* semver.org §11, in increasing order. */
static const char *const order[] = {
    "0.0.0",
    "0.0.1",
    "0.1.0",
    "1.0.0-0",
    "1.0.0-2",
    "1.0.0-10",
    "1.0.0-999",
    "1.0.0-a",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.9.0",
    "1.10.0",
    "1.11.0",
    "2.0.0",
    "2.1.0",
    "2.1.1",
    "10.0.0",
    "4294967295.0.0",
};

static void test_precedence(void **state) {
  (void)state;
  for (size_t i = 0; i < N(order); i++)
    for (size_t j = 0; j < N(order); j++) {
      semver a, b;
      assert_int_equal(semver_parse(order[i], &a), 0);
      assert_int_equal(semver_parse(order[j], &b), 0);
      int c = semver_cmp(&a, &b);
      int want = (i > j) - (i < j);
      if ((c > 0) - (c < 0) != want)
        fail_msg("cmp(%s, %s) = %d, want %d", order[i], order[j], c, want);
    }
}

static void test_precedence_details(void **state) {
  semver a, b;
  (void)state;
  /* Build metadata does not count. */
  semver_parse("1.0.0+a", &a);
  semver_parse("1.0.0+b.2", &b);
  assert_int_equal(semver_cmp(&a, &b), 0);
  /* Alphanumerics compare in ASCII order: "a10" < "a9", "Z" < "a". */
  semver_parse("1.0.0-a10", &a);
  semver_parse("1.0.0-a9", &b);
  assert_true(semver_cmp(&a, &b) < 0);
  semver_parse("1.0.0-Z", &a);
  semver_parse("1.0.0-a", &b);
  assert_true(semver_cmp(&a, &b) < 0);
  /* Numbers longer than any integer still compare numerically. */
  semver_parse("1.0.0-99999999999999999999", &a);
  semver_parse("1.0.0-100000000000000000000", &b);
  assert_true(semver_cmp(&a, &b) < 0);
  /* A numeric identifier is lower than an alphanumeric one. */
  semver_parse("1.0.0-1.2", &a);
  semver_parse("1.0.0-1.a", &b);
  assert_true(semver_cmp(&a, &b) < 0);
}

typedef struct rcase {
  const char *range;
  const char *version;
  int want; /* 1 satisfies, 0 does not */
} rcase;

static const rcase ranges[] = {
    /* exact and "=" */
    {"1.2.3", "1.2.3", 1},
    {"1.2.3", "1.2.4", 0},
    {"1.2.3", "1.2.2", 0},
    {"=1.2.3", "1.2.3", 1},
    {"=1.2.3", "1.2.3-rc.1", 0},
    {"1.2.3+build", "1.2.3", 1},
    {"1.2.3-rc.1", "1.2.3-rc.1", 1},
    {"1.2.3-rc.1", "1.2.3-rc.2", 0},
    {"1.2.3-rc.1", "1.2.3", 0},
    /* partials and x-ranges */
    {"1", "1.0.0", 1},
    {"1", "1.9.9", 1},
    {"1", "2.0.0", 0},
    {"1", "0.9.9", 0},
    {"1.x", "1.5.0", 1},
    {"1.x", "2.0.0", 0},
    {"1.X", "1.5.0", 1},
    {"1.*", "1.5.0", 1},
    {"1.x.x", "1.5.0", 1},
    {"1.2", "1.2.0", 1},
    {"1.2", "1.2.99", 1},
    {"1.2", "1.3.0", 0},
    {"1.2", "1.1.9", 0},
    {"1.2.x", "1.2.7", 1},
    {"1.2.x", "1.3.0", 0},
    {"*", "0.0.0", 1},
    {"*", "99.0.0", 1},
    {"x", "1.2.3", 1},
    {"X", "1.2.3", 1},
    {"=*", "1.2.3", 1},
    {"*", "1.0.0-rc.1", 0},
    /* caret */
    {"^1.2.3", "1.2.3", 1},
    {"^1.2.3", "1.2.2", 0},
    {"^1.2.3", "1.9.9", 1},
    {"^1.2.3", "2.0.0", 0},
    {"^1.2.3", "2.0.0-0", 0},
    {"^0.2.3", "0.2.3", 1},
    {"^0.2.3", "0.2.9", 1},
    {"^0.2.3", "0.3.0", 0},
    {"^0.2.3", "0.2.2", 0},
    {"^0.0.3", "0.0.3", 1},
    {"^0.0.3", "0.0.4", 0},
    {"^0.0.3", "0.0.2", 0},
    {"^1.2", "1.2.0", 1},
    {"^1.2", "1.1.9", 0},
    {"^1.2", "1.99.0", 1},
    {"^1.2", "2.0.0", 0},
    {"^1", "1.0.0", 1},
    {"^1", "1.99.99", 1},
    {"^1", "2.0.0", 0},
    {"^1", "0.9.0", 0},
    {"^0", "0.0.0", 1},
    {"^0", "0.99.0", 1},
    {"^0", "1.0.0", 0},
    {"^0.0", "0.0.9", 1},
    {"^0.0", "0.1.0", 0},
    {"^0.2", "0.2.9", 1},
    {"^0.2", "0.3.0", 0},
    {"^1.x", "1.5.0", 1},
    {"^1.x", "2.0.0", 0},
    {"^*", "3.0.0", 1},
    {"^4294967295", "4294967295.9.9", 1},
    /* tilde */
    {"~1.2.3", "1.2.3", 1},
    {"~1.2.3", "1.2.9", 1},
    {"~1.2.3", "1.3.0", 0},
    {"~1.2.3", "1.2.2", 0},
    {"~1.2", "1.2.0", 1},
    {"~1.2", "1.2.9", 1},
    {"~1.2", "1.3.0", 0},
    {"~1", "1.0.0", 1},
    {"~1", "1.9.9", 1},
    {"~1", "2.0.0", 0},
    {"~0.0.1", "0.0.9", 1},
    {"~0.0.1", "0.1.0", 0},
    {"~*", "5.0.0", 1},
    /* comparison operators at and around their bounds */
    {">1.2.3", "1.2.3", 0},
    {">1.2.3", "1.2.4", 1},
    {">1.2.3", "1.2.3-rc.1", 0},
    {">1.2", "1.2.9", 0},
    {">1.2", "1.3.0", 1},
    {">1", "1.9.9", 0},
    {">1", "2.0.0", 1},
    {">*", "1.0.0", 0},
    {">=1.2.3", "1.2.3", 1},
    {">=1.2.3", "1.2.2", 0},
    {">=1.2.3", "9.0.0", 1},
    {">=1.0", "1.0.0", 1},
    {">=1.0", "0.9.9", 0},
    {">=1", "1.0.0", 1},
    {">=*", "0.0.0", 1},
    {"<1.2.3", "1.2.2", 1},
    {"<1.2.3", "1.2.3", 0},
    {"<1.2", "1.1.9", 1},
    {"<1.2", "1.2.0", 0},
    {"<2.0", "1.99.99", 1},
    {"<2.0", "2.0.0", 0},
    {"<2", "2.0.0", 0},
    {"<*", "0.0.0", 0},
    {"<=1.2.3", "1.2.3", 1},
    {"<=1.2.3", "1.2.4", 0},
    {"<=1.2", "1.2.9", 1},
    {"<=1.2", "1.3.0", 0},
    {"<=2.0.0", "2.0.0", 1},
    {"<=1", "1.9.9", 1},
    {"<=1", "2.0.0", 0},
    {"<=*", "7.0.0", 1},
    /* conjunctions */
    {">=1.0 <2.0", "1.0.0", 1},
    {">=1.0 <2.0", "1.5.0", 1},
    {">=1.0 <2.0", "2.0.0", 0},
    {">=1.0 <2.0", "0.9.0", 0},
    {">=1.0.0  <=1.0.0", "1.0.0", 1},
    {">1.0.0 <1.0.1", "1.0.0", 0},
    {"\t>=1.0\t<2.0 ", "1.5.0", 1},
    {">=1.2.3 <1.2.3", "1.2.3", 0},
    /* alternatives */
    {"1.x || 3.x", "1.5.0", 1},
    {"1.x || 3.x", "2.5.0", 0},
    {"1.x || 3.x", "3.0.0", 1},
    {"1.x||3.x", "3.0.0", 1},
    {"<1.0.0 || >=2.0.0 <3.0.0 || 5.0.0", "2.5.0", 1},
    {"<1.0.0 || >=2.0.0 <3.0.0 || 5.0.0", "5.0.0", 1},
    {"<1.0.0 || >=2.0.0 <3.0.0 || 5.0.0", "4.0.0", 0},
    {"^1.0.0 || ^2.0.0", "2.3.4", 1},
    /* pre-releases only match a comparator of the same tuple that has one */
    {"^1.0.0", "1.5.0-beta", 0},
    {">=1.0.0", "1.5.0-beta", 0},
    {"<2.0.0", "1.5.0-beta", 0},
    {"<2.0.0", "2.0.0-rc.1", 0},
    {">=1.5.0-alpha", "1.5.0-beta", 1},
    {">=1.5.0-alpha", "1.5.0-0", 0},
    {">=1.5.0-alpha", "1.5.1-beta", 0},
    {">=1.5.0-alpha", "1.5.1", 1},
    {"^1.2.3-beta.2", "1.2.3-beta.4", 1},
    {"^1.2.3-beta.2", "1.2.3-beta.1", 0},
    {"^1.2.3-beta.2", "1.2.4-beta.1", 0},
    {"^1.2.3-beta.2", "1.9.0", 1},
    {"~1.2.3-beta.2", "1.2.3-beta.10", 1},
    {"~1.2.3-beta.2", "1.3.0", 0},
    {">1.2.3-alpha.3", "1.2.3-alpha.7", 1},
    {">1.2.3-alpha.3", "3.4.5-alpha.9", 0},
    {"<=1.2.3-rc.2", "1.2.3-rc.1", 1},
    {"<1.2.3-rc.2", "1.2.3-rc.2", 0},
    {">=1.0.0-rc.1 <2.0.0", "1.0.0-rc.2", 1},
    {"1.x || >=2.0.0-rc.1", "2.0.0-rc.3", 1},
    {"1.x || >=2.0.0-rc.1", "1.5.0-rc.3", 0},
};

static void test_ranges(void **state) {
  (void)state;
  for (size_t i = 0; i < N(ranges); i++) {
    semver v;
    if (semver_parse(ranges[i].version, &v) != 0)
      fail_msg("bad test version %s", ranges[i].version);
    int got = semver_satisfies(&v, ranges[i].range);
    if (got != ranges[i].want)
      fail_msg("satisfies(%s, \"%s\") = %d, want %d", ranges[i].version,
               ranges[i].range, got, ranges[i].want);
    if (semver_range_valid(ranges[i].range) != 0)
      fail_msg("range_valid(\"%s\") failed", ranges[i].range);
  }
}

static const char *const bad_ranges[] = {
    "",
    " ",
    "||",
    "1.0.0 ||",
    "|| 1.0.0",
    "1.0.0 || || 2.0.0",
    "1.0.0 | 2.0.0",
    "1.0.0 ||| 2.0.0",
    "v1.0.0",
    "01.0.0",
    "1.01",
    "1.",
    "1..0",
    "1.2.3.4",
    "1.x.3",
    "*.1",
    "1.2.x-rc",
    "1.2-rc",
    "1.2.3-",
    "1.2.3-01",
    "1.2.3+",
    ">",
    ">=",
    "^",
    "~",
    "=",
    "> 1.0.0",
    ">=1.0.0,<2.0.0",
    "=>1.0.0",
    "~>1.0.0",
    "!1.0.0",
    "1.0.0 - 2.0.0",
    "^^1",
    "a.b.c",
    "1.0.0 garbage",
    "4294967296",
    "latest",
};

static void test_bad_ranges(void **state) {
  semver v;
  (void)state;
  semver_parse("1.0.0", &v);
  for (size_t i = 0; i < N(bad_ranges); i++) {
    if (semver_satisfies(&v, bad_ranges[i]) != -1)
      fail_msg("satisfies accepted \"%s\"", bad_ranges[i]);
    if (semver_range_valid(bad_ranges[i]) != -1)
      fail_msg("range_valid accepted \"%s\"", bad_ranges[i]);
  }
  assert_int_equal(semver_satisfies(&v, NULL), -1);
  assert_int_equal(semver_satisfies(NULL, "1.0.0"), -1);
  assert_int_equal(semver_range_valid(NULL), -1);
  /* Malformed even when an earlier alternative already matched. */
  assert_int_equal(semver_satisfies(&v, "1.0.0 || bad"), -1);
}

static void test_range_length_bound(void **state) {
  char s[300];
  semver v;
  (void)state;
  semver_parse("1.0.0", &v);
  /* "1.0.0" followed by spaces: 256 bytes pass, 257 are refused. */
  memset(s, ' ', sizeof s);
  memcpy(s, "1.0.0", 5);
  s[256] = '\0';
  assert_int_equal(semver_satisfies(&v, s), 1);
  s[256] = ' ';
  s[257] = '\0';
  assert_int_equal(semver_satisfies(&v, s), -1);
  assert_int_equal(semver_range_valid(s), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_valid),
      cmocka_unit_test(test_parse_invalid),
      cmocka_unit_test(test_parse_fields),
      cmocka_unit_test(test_parse_length_bound),
      cmocka_unit_test(test_precedence),
      cmocka_unit_test(test_precedence_details),
      cmocka_unit_test(test_ranges),
      cmocka_unit_test(test_bad_ranges),
      cmocka_unit_test(test_range_length_bound),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
