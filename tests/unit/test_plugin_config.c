/* plugin_config: the host's override of core plugins' manifest "config",
 * from the file (nested JSON), NNO_PLUGIN_CONFIG and --set (JSON text),
 * merged plugin by plugin and key by key; the one merge every loader and
 * check uses; bounds; messages that name key paths, never values (they may
 * be secrets); and the round trip of the install check (config_to_json). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "config.h"

static nno_config c;
static char err[CONFIG_ERR_MAX];

static int setup(void **st) {
  (void)st;
  config_defaults(&c, ".");
  err[0] = '\0';
  return 0;
}

/* The config plugin `name` reads, given manifest config `man`. */
static json_t *merged(const char *name, const char *man) {
  char *out;
  assert_int_equal(config_plugin_config(&c, name, man, &out, err), 0);
  json_t *v = json_loads(out ? out : man, 0, NULL);
  free(out);
  assert_non_null(v);
  return v;
}

static void test_sources_merge_key_by_key(void **st) {
  (void)st;
  assert_string_equal(c.plugin_config, "");
  static const char file[] =
      "{\"plugin_config\": {\"billing\": {\"provider\": \"stripe\", "
      "\"stripe\": {\"secret_key\": \"sk_file\", \"timeout_ms\": 5000}}, "
      "\"iam\": {\"x\": 1}}}";
  assert_int_equal(config_apply_json(&c, file, strlen(file), "nno.json", err),
                   0);
  setenv("NNO_PLUGIN_CONFIG", "{\"billing\": {\"default_plan\": \"pro\"}}", 1);
  assert_int_equal(config_apply_env(&c, err), 0);
  unsetenv("NNO_PLUGIN_CONFIG");
  assert_int_equal(config_set(&c, "plugin_config",
                              "{\"billing\": {\"provider\": \"none\"}}", err),
                   0);
  static const char man[] =
      "{\"provider\":\"stripe\",\"plans\":[1],\"default_plan\":\"free\"}";
  json_t *b = merged("billing", man);
  /* The later source wins a key; a key replaces whole (stripe's object is
   * the file's, not merged deeper); the manifest keeps what no one set. */
  assert_string_equal(json_string_value(json_object_get(b, "provider")),
                      "none");
  assert_string_equal(json_string_value(json_object_get(b, "default_plan")),
                      "pro");
  assert_int_equal(json_array_size(json_object_get(b, "plans")), 1);
  json_t *s = json_object_get(b, "stripe");
  assert_string_equal(json_string_value(json_object_get(s, "secret_key")),
                      "sk_file");
  json_decref(b);
  /* A plugin it does not name reads its manifest's. */
  char *out = (char *)1;
  assert_int_equal(config_plugin_config(&c, "registry", "{}", &out, err), 0);
  assert_null(out);
  /* Names: every one must be a core plugin found. */
  const char *have[] = {"billing", "iam", "registry"};
  assert_int_equal(config_plugin_names(&c, have, 3, err), 0);
  assert_int_equal(config_plugin_names(&c, have + 1, 2, err), -1);
  assert_non_null(strstr(err, "plugin_config names \"billing\", which is "
                              "not a core plugin"));
}

static void test_round_trip(void **st) {
  (void)st;
  assert_int_equal(config_set(&c, "plugin_config",
                              "{\"billing\":{\"k\":\"v\",\"n\":[1,2]}}", err),
                   0);
  char *js = config_to_json(&c);
  assert_non_null(js);
  nno_config d;
  config_defaults(&d, ".");
  assert_int_equal(config_apply_json(&d, js, strlen(js), "memfd", err), 0);
  free(js);
  assert_string_equal(d.plugin_config, c.plugin_config);
  /* None given: an empty object, read back as none. */
  config_defaults(&c, ".");
  js = config_to_json(&c);
  config_defaults(&d, ".");
  assert_int_equal(config_apply_json(&d, js, strlen(js), "memfd", err), 0);
  free(js);
  assert_string_equal(d.plugin_config, "{}");
  char *out = (char *)1;
  assert_int_equal(config_plugin_config(&d, "billing", "{}", &out, err), 0);
  assert_null(out);
}

/* Each refusal names the key path and never the value. */
static void test_refusals_name_no_value(void **st) {
  (void)st;
  struct {
    const char *text, *want;
  } bad[] = {
      {"{\"billing\": {\"secret\": \"sk_live_TOPSECRET\"",
       "plugin_config: invalid JSON at line 1 column"},
      {"sk_live_TOPSECRET", "plugin_config: invalid JSON at line 1 column"},
      {"[\"sk_live_TOPSECRET\"]",
       "plugin_config: expected a JSON object, got an array"},
      {"{\"billing\": \"sk_live_TOPSECRET\"}",
       "plugin_config.billing: expected an object, got a string"},
      {"{\"Bad Name\": {\"k\": \"sk_live_TOPSECRET\"}}",
       "plugin_config: expected plugin names matching"},
      {"{\"billing\": {\"k\": 1, \"k\": \"sk_live_TOPSECRET\"}}",
       "plugin_config: invalid JSON at line 1 column"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    config_defaults(&c, ".");
    err[0] = '\0';
    assert_int_equal(config_set(&c, "plugin_config", bad[i].text, err), -1);
    assert_non_null(strstr(err, bad[i].want));
    assert_null(strstr(err, "TOPSECRET"));
    assert_string_equal(c.plugin_config, ""); /* nothing changed */
  }
  /* From the environment: prefixed with the variable, no value either. */
  setenv("NNO_PLUGIN_CONFIG", "{\"billing\": sk_live_TOPSECRET}", 1);
  assert_int_equal(config_apply_env(&c, err), -1);
  unsetenv("NNO_PLUGIN_CONFIG");
  assert_non_null(strstr(err, "NNO_PLUGIN_CONFIG: plugin_config: invalid"));
  assert_null(strstr(err, "TOPSECRET"));
  /* From the file: a value of the wrong type. */
  static const char file[] = "{\"plugin_config\": \"sk_live_TOPSECRET\"}";
  assert_int_equal(config_apply_json(&c, file, strlen(file), "nno.json", err),
                   -1);
  assert_non_null(strstr(err, "field \"plugin_config\": expected an object"));
  assert_null(strstr(err, "TOPSECRET"));
  static const char file2[] =
      "{\"plugin_config\": {\"iam\": [\"sk_live_TOPSECRET\"]}}";
  assert_int_equal(config_apply_json(&c, file2, strlen(file2), "nno.json",
                                     err),
                   -1);
  assert_non_null(strstr(err, "plugin_config.iam: expected an object"));
  assert_null(strstr(err, "TOPSECRET"));
}

static void test_bounded(void **st) {
  (void)st;
  size_t n = CONFIG_PLUGIN_CONFIG_MAX + 100;
  char *big = malloc(n);
  assert_non_null(big);
  int at = snprintf(big, n, "{\"billing\":{\"k\":\"");
  memset(big + at, 'x', n - (size_t)at - 4);
  memcpy(big + n - 4, "\"}}", 4);
  assert_int_equal(config_set(&c, "plugin_config", big, err), -1);
  assert_non_null(strstr(err, "plugin_config: more than"));
  assert_string_equal(c.plugin_config, "");
  free(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_sources_merge_key_by_key, setup),
      cmocka_unit_test_setup(test_round_trip, setup),
      cmocka_unit_test_setup(test_refusals_name_no_value, setup),
      cmocka_unit_test_setup(test_bounded, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
