/* Configuration: defaults, file, environment, flags, exact messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include <nno/plugin.h>

static char path[64];

static const char *write_file(const char *text) {
  snprintf(path, sizeof path, "/tmp/nno-test-config-%d.json", (int)getpid());
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

static void test_defaults(void **st) {
  nno_config c;
  config_defaults(&c, "/opt/nno/bin");
  assert_string_equal(c.listen_host, "127.0.0.1");
  assert_int_equal(c.listen_port, 8080);
  assert_string_equal(c.data_dir, "./var");
  assert_true(c.workers >= 1);
  /* As generous as nginx (4 x 8k) and Node (16 KiB). */
  assert_int_equal(c.max_header_bytes, 32768);
  assert_int_equal(c.max_field_bytes, 8192);
  assert_int_equal(c.conn_output_bytes, 256 << 10);
  assert_int_equal(c.worker_output_bytes, 32 << 20);
  assert_int_equal(c.worker_input_bytes, 64 << 20);
  assert_int_equal(c.max_body_bytes, 1 << 20);
  assert_string_equal(c.plugin_dir, "/opt/nno/bin/../lib/nno/plugins");
  assert_string_equal(c.builtin_stack_dir, "/opt/nno/bin/../share/nno/stacks");
  char err[CONFIG_ERR_MAX];
  assert_int_equal(config_validate(&c, err), 0);
}

static void test_file_nested_keys(void **st) {
  nno_config c;
  char err[CONFIG_ERR_MAX];
  config_defaults(&c, ".");
  const char *p = write_file(
      "{\"listen\":\"0.0.0.0:9000\",\"workers\":3,"
      "\"limits\":{\"max_body_bytes\":100,\"idle_timeout_ms\":500},"
      "\"log\":{\"level\":\"warn\",\"access\":false},"
      "\"stacks_dirs\":[\"/a\",\"/b\"]}");
  assert_int_equal(config_apply_file(&c, p, err), 0);
  assert_string_equal(c.listen_host, "0.0.0.0");
  assert_int_equal(c.listen_port, 9000);
  assert_int_equal(c.workers, 3);
  assert_int_equal(c.max_body_bytes, 100);
  assert_int_equal(c.idle_timeout_ms, 500);
  assert_int_equal(c.log_level, 2);
  assert_int_equal(c.access_log, 0);
  assert_int_equal(c.nstacks_dirs, 2);
  assert_string_equal(c.stacks_dirs[1], "/b");
  unlink(p);
}

static void expect_file_error(const char *text, const char *want_suffix) {
  nno_config c;
  char err[CONFIG_ERR_MAX];
  config_defaults(&c, ".");
  const char *p = write_file(text);
  assert_int_equal(config_apply_file(&c, p, err), -1);
  char want[CONFIG_ERR_MAX];
  snprintf(want, sizeof want, "%s: %s", p, want_suffix);
  assert_string_equal(err, want);
  unlink(p);
}

#define E1 "\xc3\xa9" /* U+00E9 */
#define E2 E1 E1
#define E4 E2 E2
#define E8 E4 E4
#define E16 E8 E8

static void test_file_errors(void **st) {
  expect_file_error("{\"workers\":\"2\"}",
                    "field \"workers\": expected an integer, got a string");
  expect_file_error("{\"workers\":0}",
                    "workers: expected an integer from 1 to 64, got \"0\"");
  expect_file_error("{\"nope\":1}", "unknown key \"nope\"");
  expect_file_error("{\"limits\":{\"nope\":1}}", "unknown key \"limits.nope\"");
  /* Quoted keys and values keep the message one line of valid UTF-8. */
  expect_file_error("{\"li\\nen\":1}", "unknown key \"li?en\"");
  expect_file_error("{\"data\":\"\"}",
                    "data: expected a string of 1 to 4095 bytes, got 0 bytes");
  /* %.64s of "x" and 32 two-byte characters cuts the last in half. */
  expect_file_error("{\"log\":{\"level\":\"x"
                    E16 E16 "\"}}",
                    "log.level: expected debug, info, warn or error, got "
                    "\"x" E8 E8 E8 E4 E2 E1 "?\"");
  expect_file_error("[1]", "expected a JSON object, got an array");
  expect_file_error("{\"log\":{\"access\":1}}",
                    "field \"log.access\": expected a boolean, got an integer");
  expect_file_error("{\"stacks_dirs\":[\"\"]}",
                    "stacks_dirs: empty or too long path");
  expect_file_error("{\"stacks_dirs\":[\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
                    "\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
                    "\"a\"]}",
                    "stacks_dirs: at most 16 folders");
  expect_file_error("{\"stacks_dirs\":[1]}",
                    "field \"stacks_dirs[0]\": expected a string, got an integer");
  expect_file_error("{\"log\":{\"level\":\"loud\"}}",
                    "log.level: expected debug, info, warn or error, got \"loud\"");
}

static void test_core_plugins(void **st) {
  nno_config c;
  char err[CONFIG_ERR_MAX];
  config_defaults(&c, ".");
  /* The build's core plugins are required by default (sorted). */
  assert_int_equal(c.ncore_plugins, 4);
  assert_string_equal(c.core_plugins[0], "billing");
  assert_string_equal(c.core_plugins[1], "iam");
  assert_string_equal(c.core_plugins[2], "provisioning");
  assert_string_equal(c.core_plugins[3], "registry");
  assert_int_equal(config_set(&c, "core_plugins", "", err), 0);
  assert_int_equal(c.ncore_plugins, 0);
  assert_int_equal(config_set(&c, "core_plugins", "registry,iam,iam", err), 0);
  assert_int_equal(c.ncore_plugins, 2);
  assert_string_equal(c.core_plugins[1], "iam");
  assert_int_equal(config_set(&c, "core_plugins", "registry,,iam", err), -1);
  assert_string_equal(err,
                      "core_plugins: expected plugin names matching "
                      "[a-z][a-z0-9-]{0,63}, got \"\"");
  assert_int_equal(config_set(&c, "core_plugins", "a/b", err), -1);
  const char *p = write_file("{\"core_plugins\":[]}");
  assert_int_equal(config_apply_file(&c, p, err), 0);
  assert_int_equal(c.ncore_plugins, 0);
  unlink(p);
  expect_file_error("{\"core_plugins\":\"iam\"}",
                    "field \"core_plugins\": expected an array of strings, "
                    "got a string");
  expect_file_error("{\"core_plugins\":[\"Iam\"]}",
                    "core_plugins: expected plugin names matching "
                    "[a-z][a-z0-9-]{0,63}, got \"Iam\"");
}

static void test_set_and_listen(void **st) {
  nno_config c;
  char err[CONFIG_ERR_MAX];
  config_defaults(&c, ".");
  assert_int_equal(config_set(&c, "listen", "[::1]:0", err), 0);
  assert_string_equal(c.listen_host, "::1");
  assert_int_equal(c.listen_port, 0);
  assert_int_equal(config_set(&c, "listen", "host:70000", err), -1);
  assert_string_equal(err, "listen: expected HOST:PORT (e.g. 127.0.0.1:8080), "
                           "got \"host:70000\"");
  assert_int_equal(config_set(&c, "listen", ":80", err), -1);
  assert_int_equal(config_set(&c, "limits.max_headers", "7", err), -1);
  assert_string_equal(err, "limits.max_headers: expected an integer from 8 to "
                           "1000, got \"7\"");
  assert_int_equal(config_set(&c, "limits.max_headers", "8", err), 0);
  assert_int_equal(config_set(&c, "limits.max_field_bytes", "255", err), -1);
  assert_int_equal(config_set(&c, "limits.max_field_bytes", "1024", err), 0);
  assert_int_equal(c.max_field_bytes, 1024);
  assert_int_equal(config_set(&c, "limits.conn_output_bytes", "4095", err), -1);
  assert_int_equal(config_set(&c, "limits.conn_output_bytes", "4096", err), 0);
  assert_int_equal(c.conn_output_bytes, 4096);
  assert_int_equal(config_set(&c, "limits.worker_output_bytes", "0", err), -1);
  assert_int_equal(config_set(&c, "limits.worker_output_bytes", "65536", err),
                   0);
  assert_int_equal(c.worker_output_bytes, 65536);
  assert_int_equal(config_set(&c, "limits.worker_input_bytes", "65535", err),
                   -1);
  /* The bodies a worker holds must have room for one of the largest. */
  assert_int_equal(config_set(&c, "limits.worker_input_bytes", "65536", err),
                   0);
  assert_int_equal(c.worker_input_bytes, 65536);
  assert_int_equal(config_validate(&c, err), -1);
  assert_string_equal(err, "limits.worker_input_bytes (65536) must be at "
                           "least limits.max_body_bytes (1048576)");
  assert_int_equal(config_set(&c, "limits.max_body_bytes", "65536", err), 0);
  assert_int_equal(config_validate(&c, err), 0);
  assert_int_equal(config_set(&c, "workers", "2x", err), -1);
  /* Only an optional '-' and digits: no blank, no '+', as strtoll takes. */
  assert_int_equal(config_set(&c, "workers", " 2", err), -1);
  assert_int_equal(config_set(&c, "workers", "+2", err), -1);
  assert_int_equal(config_set(&c, "workers", "\t2", err), -1);
  assert_int_equal(config_set(&c, "listen", "127.0.0.1: 80", err), -1);
  assert_int_equal(config_set(&c, "listen", "127.0.0.1:+80", err), -1);
  assert_int_equal(config_set(&c, "workers", "3", err), 0);
  assert_int_equal(c.workers, 3);
  assert_int_equal(config_set(&c, "log.access", "maybe", err), -1);
  assert_int_equal(config_set(&c, "log.access", "off", err), 0);
  assert_int_equal(c.access_log, 0);
  assert_int_equal(config_set(&c, "stacks_dirs", "/x::/y", err), 0);
  assert_int_equal(c.nstacks_dirs, 2);
  assert_int_equal(config_set(&c, "bogus", "1", err), -1);
  assert_string_equal(err, "unknown configuration key \"bogus\"");
}

/* NNO_CORE_PLUGINS="" (a template's unfilled value) is refused: read as an
 * empty list it would require no core plugin and serve unguarded. */
static void test_env_empty_core_plugins(void **st) {
  nno_config c;
  char err[CONFIG_ERR_MAX];
  config_defaults(&c, ".");
  setenv("NNO_CORE_PLUGINS", "", 1);
  assert_int_equal(config_apply_env(&c, err), -1);
  assert_string_equal(err, "NNO_CORE_PLUGINS: empty; unset it for the "
                           "build's core plugins, or set core_plugins to [] "
                           "in the config file to run without core plugins");
  assert_int_equal(c.ncore_plugins, 4);
  setenv("NNO_CORE_PLUGINS", "registry", 1);
  assert_int_equal(config_apply_env(&c, err), 0);
  assert_int_equal(c.ncore_plugins, 1);
  assert_string_equal(c.core_plugins[0], "registry");
  unsetenv("NNO_CORE_PLUGINS");
}

static void test_env(void **st) {
  nno_config c;
  char err[CONFIG_ERR_MAX];
  config_defaults(&c, ".");
  setenv("NNO_WORKERS", "5", 1);
  setenv("NNO_DATA", "/srv/nno", 1);
  assert_int_equal(config_apply_env(&c, err), 0);
  assert_int_equal(c.workers, 5);
  assert_string_equal(c.data_dir, "/srv/nno");
  setenv("NNO_WORKERS", "500", 1);
  assert_int_equal(config_apply_env(&c, err), -1);
  assert_string_equal(err, "NNO_WORKERS: workers: expected an integer from 1 "
                           "to 64, got \"500\"");
  unsetenv("NNO_WORKERS");
  unsetenv("NNO_DATA");
}

/* Values no worker could live with are refused, each naming the key(s). */
static void expect_invalid(const char *key, const char *value,
                           const char *msg) {
  nno_config c;
  char err[CONFIG_ERR_MAX];
  config_defaults(&c, ".");
  assert_int_equal(config_set(&c, key, value, err), 0);
  assert_int_equal(config_validate(&c, err), -1);
  assert_string_equal(err, msg);
}

static void expect_valid(const char *key, const char *value) {
  nno_config c;
  char err[CONFIG_ERR_MAX];
  config_defaults(&c, ".");
  assert_int_equal(config_set(&c, key, value, err), 0);
  assert_int_equal(config_validate(&c, err), 0);
}

static void test_containment_limits(void **st) {
  expect_invalid("limits.worker_max_rss_mb", "1",
                 "limits.worker_max_rss_mb: expected 0 (off) or at least "
                 "32, got 1");
  expect_valid("limits.worker_max_rss_mb", "0");
  expect_valid("limits.worker_max_rss_mb", "32");
  expect_invalid("overload.max_rss_mb", "31",
                 "overload.max_rss_mb: expected 0 (off) or at least 32, "
                 "got 31");
  expect_valid("overload.max_rss_mb", "0");
  expect_valid("overload.max_rss_mb", "32");
  /* default wall 30000 ms */
  expect_invalid("sandbox.cpu_ms", "30001",
                 "sandbox.cpu_ms (30001) must not exceed sandbox.wall_ms "
                 "(30000)");
  expect_valid("sandbox.cpu_ms", "30000");
  expect_invalid("sandbox.plans", "free:100/50/64,pro:100/200/64",
                 "sandbox.plans: \"pro:100/200/64\": cpu_ms (200) must not "
                 "exceed wall_ms (100)");
  expect_valid("sandbox.plans", "free:100/50/64,pro:100/100/64");
  expect_invalid("sandbox.sandboxed", "a,,b",
                 "sandbox.sandboxed: expected stack ids separated by commas "
                 "(\"a,b\"), got \"a,,b\"");
  expect_invalid("sandbox.inprocess", ",a",
                 "sandbox.inprocess: expected stack ids separated by commas "
                 "(\"a,b\"), got \",a\"");
}

/* sandbox.cpu_outside_pct: 90 unless set, a share of one core (1..100),
 * from the file's key or the environment. */
static void test_cpu_outside_pct(void **st) {
  nno_config c;
  char err[CONFIG_ERR_MAX];
  config_defaults(&c, ".");
  assert_int_equal(c.sandbox_cpu_outside_pct, 90);
  assert_int_equal(config_set(&c, "sandbox.cpu_outside_pct", "0", err), -1);
  assert_string_equal(err, "sandbox.cpu_outside_pct: expected an integer "
                           "from 1 to 100, got \"0\"");
  assert_int_equal(config_set(&c, "sandbox.cpu_outside_pct", "101", err), -1);
  assert_int_equal(c.sandbox_cpu_outside_pct, 90);
  assert_int_equal(config_set(&c, "sandbox.cpu_outside_pct", "20", err), 0);
  assert_int_equal(c.sandbox_cpu_outside_pct, 20);
  setenv("NNO_SANDBOX_CPU_OUTSIDE_PCT", "35", 1);
  assert_int_equal(config_apply_env(&c, err), 0);
  unsetenv("NNO_SANDBOX_CPU_OUTSIDE_PCT");
  assert_int_equal(c.sandbox_cpu_outside_pct, 35);
  assert_int_equal(config_validate(&c, err), 0);
}

/* sandbox.poll_us: 200 unless set, 0 (off) to 1000, from the file's key or
 * the environment. */
static void test_poll_us(void **st) {
  (void)st;
  nno_config c;
  char err[CONFIG_ERR_MAX];
  config_defaults(&c, ".");
  assert_int_equal(c.sandbox_poll_us, 200);
  assert_int_equal(config_set(&c, "sandbox.poll_us", "1001", err), -1);
  assert_string_equal(err, "sandbox.poll_us: expected an integer "
                           "from 0 to 1000, got \"1001\"");
  assert_int_equal(config_set(&c, "sandbox.poll_us", "-1", err), -1);
  assert_int_equal(c.sandbox_poll_us, 200);
  assert_int_equal(config_set(&c, "sandbox.poll_us", "0", err), 0);
  assert_int_equal(c.sandbox_poll_us, 0);
  setenv("NNO_SANDBOX_POLL_US", "50", 1);
  assert_int_equal(config_apply_env(&c, err), 0);
  unsetenv("NNO_SANDBOX_POLL_US");
  assert_int_equal(c.sandbox_poll_us, 50);
  assert_int_equal(config_validate(&c, err), 0);
}

/* The configuration given to another process (the check an install
 * runs): every key, of every type, read back as it was, however it was
 * set, and a host's defaults (plugin folder...) never taking its place. */
static void test_to_json_round_trip(void **st) {
  nno_config a, b;
  char err[CONFIG_ERR_MAX];
  config_defaults(&a, "/opt/one/bin");
  static const char *const set[][2] = {
      {"listen", "[::1]:0"},
      {"workers", "3"},
      {"log.level", "warn"},
      {"log.access", "false"},
      {"stacks_dirs", "/s/one:/s/two"},
      {"core_plugins", ""},
      {"sandbox.mode", "inprocess"},
      {"sandbox.inprocess", "default,crm"},
      {"sandbox.sandboxed", "shop"},
      {"sandbox.spawn_timeout_ms", "1234"},
      {"sandbox.plans", "free:100/50/64"},
      {"stacks.check_timeout_ms", "4321"},
      {"base_domain", "example.test"},
  };
  for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
    assert_int_equal(config_set(&a, set[i][0], set[i][1], err), 0);
  char *js = config_to_json(&a);
  assert_non_null(js);
  assert_non_null(strstr(js, "\"sandbox.inprocess\":\"default,crm\""));
  assert_non_null(strstr(js, "\"listen\":\"[::1]:0\""));
  assert_non_null(strstr(js, "\"core_plugins\":[]"));
  assert_non_null(strstr(js, "\"log.level\":\"warn\""));
  assert_non_null(
      strstr(js, "\"plugin_dir\":\"/opt/one/bin/../lib/nno/plugins\""));

  config_defaults(&b, "/opt/two/bin");
  assert_int_equal(config_apply_json(&b, js, strlen(js), "given", err), 0);
  assert_int_equal(config_validate(&b, err), 0);
  assert_string_equal(b.listen_host, "::1");
  assert_int_equal(b.listen_port, 0);
  assert_int_equal(b.workers, 3);
  assert_int_equal(b.log_level, a.log_level);
  assert_int_equal(b.access_log, 0);
  assert_int_equal(b.nstacks_dirs, 2);
  assert_string_equal(b.stacks_dirs[1], "/s/two");
  assert_int_equal(b.ncore_plugins, 0);
  assert_string_equal(b.plugin_dir, a.plugin_dir);
  assert_string_equal(b.sandbox_mode, "inprocess");
  assert_string_equal(b.sandbox_inprocess, "default,crm");
  assert_string_equal(b.sandbox_sandboxed, "shop");
  assert_int_equal(b.sandbox_spawn_timeout_ms, 1234);
  assert_string_equal(b.sandbox_plans, "free:100/50/64");
  assert_int_equal(b.stack_check_timeout_ms, 4321);
  assert_string_equal(b.base_domain, "example.test");
  assert_int_equal(config_isolation(&b, "crm", 0), NNO_ISOLATION_INPROCESS);
  assert_int_equal(config_isolation(&b, "shop", 1), NNO_ISOLATION_SANDBOX);
  /* And the whole of it, key by key: the same text again. */
  char *again = config_to_json(&b);
  assert_non_null(again);
  assert_string_equal(again, js);
  free(again);
  free(js);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_cpu_outside_pct),
      cmocka_unit_test(test_poll_us),
      cmocka_unit_test(test_file_nested_keys),
      cmocka_unit_test(test_file_errors),
      cmocka_unit_test(test_set_and_listen),
      cmocka_unit_test(test_env),
      cmocka_unit_test(test_env_empty_core_plugins),
      cmocka_unit_test(test_core_plugins),
      cmocka_unit_test(test_containment_limits),
      cmocka_unit_test(test_to_json_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
