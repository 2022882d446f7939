/* Unit tests for plugins/billing/plan_parse.c: a plan's JSON checked
 * field by field (bounds, types, unknown members with the nearest known
 * one), laid over a plan only when all of it is valid, and written back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "internal.h"

/* plan_apply of `text` over the free plan: 0 or -1 with *e. */
static int apply(const char *text, plan_row *r, plan_error *e) {
  json_error_t je;
  json_t *o = json_loads(text, 0, &je);
  assert_non_null(o);
  plan_defaults(r);
  int rc = plan_apply(o, r, e);
  json_decref(o);
  return rc;
}

static void defaults_are_the_free_plan(void **state) {
  (void)state;
  plan_row r;
  plan_defaults(&r);
  assert_string_equal(r.l.name, "free");
  assert_int_equal(r.l.requests_per_month, 100000);
  assert_int_equal(r.l.storage_bytes, 100u << 20);
  assert_int_equal(r.l.users, 1000);
  assert_int_equal(r.l.api_keys, 10);
  assert_int_equal(r.l.key.burst, 100);
  assert_true(r.l.anonymous.rate == 20.0 && r.l.anonymous.burst == 60);
  assert_string_equal(r.price, "");
}

static void fields_are_laid_over(void **state) {
  (void)state;
  plan_row r;
  plan_error e;
  assert_int_equal(apply("{\"users\": 0, \"api_keys\": 1000000, "
                         "\"requests_per_month\": 1000000000000, "
                         "\"storage_bytes\": 1125899906842624, "
                         "\"rates\": {\"key\": {\"burst\": 3}, "
                         "\"user\": {\"rate\": 0.5}}, \"soft_pct\": 100, "
                         "\"grace_pct\": 0, \"grace_days\": 90, "
                         "\"provider_price\": \"price_1AbC\"}",
                         &r, &e),
                   0);
  assert_int_equal(r.l.users, 0);
  assert_int_equal(r.l.api_keys, 1000000);
  assert_int_equal(r.l.requests_per_month, 1000000000000ull);
  assert_int_equal(r.l.storage_bytes, 1ull << 50);
  assert_true(r.l.key.rate == 50.0 && r.l.key.burst == 3); /* rate kept */
  assert_true(r.l.user.rate == 0.5 && r.l.user.burst == 40);
  assert_int_equal(r.l.soft_pct, 100);
  assert_int_equal(r.l.grace_days, 90);
  assert_string_equal(r.price, "price_1AbC");
  /* and back: the stored limits hold every field, no name nor price */
  json_t *j = plan_limits_json(&r);
  assert_non_null(j);
  assert_int_equal(json_integer_value(json_object_get(j, "api_keys")), 1000000);
  assert_null(json_object_get(j, "name"));
  assert_null(json_object_get(j, "provider_price"));
  plan_row back;
  plan_defaults(&back);
  assert_int_equal(plan_apply(j, &back, &e), 0);
  json_decref(j);
  back.price[0] = '\0';
  r.price[0] = '\0';
  assert_memory_equal(&back.l, &r.l, sizeof r.l);
}

static void refusals_name_the_field_and_change_nothing(void **state) {
  (void)state;
  static const struct {
    const char *json, *field, *says;
  } bad[] = {
      {"{\"userz\": 1}", "userz", "did you mean \"users\""},
      {"{\"grace_dayz\": 1}", "grace_dayz", "did you mean \"grace_days\""},
      {"{\"rates\": {\"keys\": {}}}", "rates.keys", "did you mean \"key\""},
      {"{\"rates\": {\"key\": {\"brust\": 2}}}", "rates.key.brust",
       "did you mean \"burst\""},
      {"{\"zzzzzzzz\": 1}", "zzzzzzzz", "expected name, requests_per_month"},
      {"{\"users\": -1}", "users", "0..1000000000"},
      {"{\"users\": 1000000001}", "users", "0..1000000000"},
      {"{\"users\": 2.5}", "users", "an integer"},
      {"{\"api_keys\": \"3\"}", "api_keys", "an integer"},
      {"{\"requests_per_month\": 1000000000001}", "requests_per_month", NULL},
      {"{\"storage_bytes\": 1125899906842625}", "storage_bytes", NULL},
      {"{\"soft_pct\": 0}", "soft_pct", "1..100"},
      {"{\"soft_pct\": 101}", "soft_pct", "1..100"},
      {"{\"grace_pct\": 101}", "grace_pct", "0..100"},
      {"{\"grace_days\": 91}", "grace_days", "0..90"},
      {"{\"rates\": {\"key\": {\"rate\": 0}}}", "rates.key.rate", NULL},
      {"{\"rates\": {\"key\": {\"rate\": 1e-300}}}", "rates.key.rate",
       "from 0.001 to 10000000"},
      {"{\"rates\": {\"anonymous\": {\"rate\": 0.0009}}}",
       "rates.anonymous.rate", NULL},
      {"{\"rates\": {\"key\": {\"rate\": 10000001}}}", "rates.key.rate", NULL},
      {"{\"rates\": {\"key\": {\"rate\": \"1\"}}}", "rates.key.rate", NULL},
      {"{\"rates\": {\"user\": {\"burst\": 0}}}", "rates.user.burst", NULL},
      {"{\"rates\": {\"user\": {\"burst\": 100000001}}}", "rates.user.burst",
       NULL},
      {"{\"rates\": {\"user\": [1, 2]}}", "rates.user", NULL},
      {"{\"rates\": 5}", "rates", NULL},
      {"{\"provider_price\": \"price_\"}", "provider_price", NULL},
      {"{\"provider_price\": \"prod_1\"}", "provider_price", NULL},
      {"{\"provider_price\": \"price_a b\"}", "provider_price", NULL},
      {"{\"provider_price\": 5}", "provider_price", "a number"},
      /* a valid field before a bad one is not applied either */
      {"{\"users\": 5, \"grace_days\": 100}", "grace_days", NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    plan_row r, before;
    plan_error e;
    assert_int_equal(apply(bad[i].json, &r, &e), -1);
    plan_defaults(&before);
    assert_memory_equal(&r, &before, sizeof r);
    assert_string_equal(e.field, bad[i].field);
    if (bad[i].says && !strstr(e.msg, bad[i].says))
      fail_msg("%s: \"%s\" does not say \"%s\"", bad[i].json, e.msg,
               bad[i].says);
    assert_non_null(strstr(e.msg, "field \""));
  }
  plan_row r;
  plan_error e;
  plan_defaults(&r);
  json_t *arr = json_array();
  assert_int_equal(plan_apply(arr, &r, &e), -1);
  json_decref(arr);
}

static void names_and_prices(void **state) {
  (void)state;
  assert_true(plan_name_valid("free"));
  assert_true(plan_name_valid("a-1"));
  assert_true(plan_name_valid("abcdefghijklmnopqrstuvwxyz012345"));
  assert_false(plan_name_valid(""));
  assert_false(plan_name_valid("Free"));
  assert_false(plan_name_valid("a_b"));
  assert_false(plan_name_valid("abcdefghijklmnopqrstuvwxyz0123456"));
  assert_true(plan_price_valid(""));
  assert_true(plan_price_valid("price_1"));
  assert_false(plan_price_valid("price_"));
  assert_false(plan_price_valid("price_-"));
  char long_price[PLAN_PRICE_MAX + 1];
  memset(long_price, 'a', sizeof long_price);
  memcpy(long_price, "price_", 6);
  long_price[PLAN_PRICE_MAX - 1] = '\0'; /* 64 bytes: fits */
  assert_true(plan_price_valid(long_price));
  long_price[PLAN_PRICE_MAX - 1] = 'a';
  long_price[PLAN_PRICE_MAX] = '\0'; /* 65 bytes: does not */
  assert_false(plan_price_valid(long_price));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults_are_the_free_plan),
      cmocka_unit_test(fields_are_laid_over),
      cmocka_unit_test(refusals_name_the_field_and_change_nothing),
      cmocka_unit_test(names_and_prices),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
