/* Unit tests for host/stacks.c: the sealed copy objects are loaded from,
 * and the verification of an installed version against its CHECKSUMS. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "stacks.h"

static char dir[PATH_MAX]; /* a fresh folder per test */

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/nno-stacks-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *rel, const char *text) {
  char p[PATH_MAX + 64];
  snprintf(p, sizeof p, "%s/%s", dir, rel);
  for (char *s = p + strlen(dir) + 1; (s = strchr(s, '/')); s++) {
    *s = '\0';
    mkdir(p, 0755);
    *s = '/';
  }
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* CHECKSUMS of the given files, as the archive has it. */
static void checksums(const char *const *files, size_t n) {
  char text[4096] = "";
  for (size_t i = 0; i < n; i++) {
    char p[PATH_MAX + 64], hex[65];
    unsigned char buf[4096], d[32];
    snprintf(p, sizeof p, "%s/%s", dir, files[i]);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    crypto_hash_sha256(d, buf, len);
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    snprintf(text + strlen(text), sizeof text - strlen(text), "%s  %s\n", hex,
             files[i]);
  }
  put("CHECKSUMS", text);
}

static const char *const files[] = {"packages/x/libx.so",
                                    "packages/x/package.json", "stack.json"};

static void installed(void) {
  put("stack.json", "{}");
  put("packages/x/package.json", "{}");
  put("packages/x/libx.so", "object");
  checksums(files, 3);
  put(STACKS_INSTALL_FILE, "{\"sha256\":\"\"}");
}

static void test_not_from_an_archive_passes(void **state) {
  (void)state;
  char err[512] = "";
  put("stack.json", "{}");
  assert_int_equal(stacks_verify_installed(dir, 0, err, sizeof err), 0);
}

static void test_intact_install_passes(void **state) {
  (void)state;
  char err[512] = "";
  installed();
  assert_int_equal(stacks_verify_installed(dir, 0, err, sizeof err), 0);
}

static void test_modified_file_is_named(void **state) {
  (void)state;
  char err[512] = "";
  installed();
  put("packages/x/libx.so", "objecT");
  assert_int_equal(stacks_verify_installed(dir, 0, err, sizeof err), -1);
  assert_string_equal(err, "modified after install: packages/x/libx.so");
}

static void test_missing_file_is_named(void **state) {
  (void)state;
  char err[512] = "", p[PATH_MAX + 32];
  installed();
  snprintf(p, sizeof p, "%s/packages/x/package.json", dir);
  assert_int_equal(unlink(p), 0);
  assert_int_equal(stacks_verify_installed(dir, 0, err, sizeof err), -1);
  assert_string_equal(err,
                      "modified after install: packages/x/package.json is "
                      "missing");
}

static void test_added_file_is_named(void **state) {
  (void)state;
  char err[512] = "";
  installed();
  put("packages/x/extra.so", "more");
  assert_int_equal(stacks_verify_installed(dir, 0, err, sizeof err), -1);
  assert_string_equal(err,
                      "modified after install: packages/x/extra.so was added");
}

static void test_missing_checksums_refused(void **state) {
  (void)state;
  char err[512] = "", p[PATH_MAX + 32];
  installed();
  snprintf(p, sizeof p, "%s/CHECKSUMS", dir);
  assert_int_equal(unlink(p), 0);
  assert_int_equal(stacks_verify_installed(dir, 0, err, sizeof err), -1);
  assert_non_null(strstr(err, "CHECKSUMS"));
}

static void test_sealed_copy_is_stable_and_read_only(void **state) {
  (void)state;
  char err[512] = "", p[PATH_MAX + 32], buf[16] = "";
  put("obj", "first");
  snprintf(p, sizeof p, "%s/obj", dir);
  int fd = open(p, O_RDONLY);
  assert_true(fd >= 0);
  int m = stacks_sealed_copy(fd, p, err, sizeof err);
  close(fd);
  assert_true(m >= 0);
  put("obj", "SECOND, longer");
  assert_int_equal(pread(m, buf, sizeof buf - 1, 0), 5);
  assert_string_equal(buf, "first");
  errno = 0;
  assert_int_equal(write(m, "x", 1), -1);
  assert_int_equal(errno, EPERM);
  assert_int_equal(ftruncate(m, 1), -1);
  close(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_not_from_an_archive_passes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_intact_install_passes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_modified_file_is_named, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_missing_file_is_named, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_added_file_is_named, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_missing_checksums_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sealed_copy_is_stable_and_read_only,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
