/* Unit tests for host/trust.c: which paths the loader and the master
 * trust (owner, mode, staying inside their folder). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trust.h"

static char dir[PATH_MAX]; /* a fresh folder per test */

static int setup(void **state) {
  snprintf(dir, sizeof dir, "/tmp/nno-trust-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* dir/rel, in a static buffer (one of four, so calls can be combined). */
static const char *at(const char *rel) {
  static char buf[4][PATH_MAX];
  static int k;
  char *b = buf[k++ % 4];
  snprintf(b, PATH_MAX, "%s%s%s", dir, *rel ? "/" : "", rel);
  return b;
}

static void touch(const char *rel, mode_t m) {
  FILE *f = fopen(at(rel), "w");
  assert_non_null(f);
  fclose(f);
  assert_int_equal(chmod(at(rel), m), 0);
}

static void modes(void **state) {
  char err[1024];
  assert_int_equal(mkdir(at("stacks"), 0755), 0);
  assert_int_equal(mkdir(at("stacks/pkg"), 0700), 0);
  touch("stacks/pkg/lib.so", 0755);
  assert_int_equal(
      trust_path(at("stacks"), at("stacks/pkg/lib.so"), NULL, err, sizeof err),
      0);
  /* The root itself, a folder between, and the file each count. */
  const char *each[] = {"stacks", "stacks/pkg", "stacks/pkg/lib.so"};
  for (size_t i = 0; i < 3; i++) {
    mode_t was = i == 1 ? 0700 : 0755;
    assert_int_equal(chmod(at(each[i]), was | S_IWGRP), 0);
    assert_int_equal(trust_path(at("stacks"), at("stacks/pkg/lib.so"), NULL,
                                err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "is writable by group or others"));
    assert_non_null(strstr(err, each[i]));
    assert_int_equal(chmod(at(each[i]), was | S_IWOTH), 0);
    assert_int_equal(trust_path(at("stacks"), at("stacks/pkg/lib.so"), NULL,
                                err, sizeof err),
                     -1);
    assert_int_equal(chmod(at(each[i]), was), 0);
  }
  /* A path that does not exist passes: its own open reports it. */
  assert_int_equal(
      trust_path(at("stacks"), at("stacks/pkg/none.so"), NULL, err, sizeof err),
      0);
  /* The root is trusted on its own too. */
  assert_int_equal(
      trust_path(at("stacks"), at("stacks"), NULL, err, sizeof err), 0);
}

static void links(void **state) {
  char err[1024], want[PATH_MAX * 2];
  assert_int_equal(mkdir(at("stacks"), 0755), 0);
  assert_int_equal(mkdir(at("elsewhere"), 0755), 0);
  assert_int_equal(mkdir(at("stacks/real"), 0755), 0);
  touch("elsewhere/lib.so", 0644);
  touch("stacks/real/lib.so", 0644);
  /* Out of the root: refused, naming both. */
  assert_int_equal(symlink(at("elsewhere"), at("stacks/out")), 0);
  assert_int_equal(
      trust_path(at("stacks"), at("stacks/out/lib.so"), NULL, err, sizeof err),
      -1);
  snprintf(want, sizeof want, "\"%s\" leaves its folder", at("stacks/out/lib.so"));
  assert_non_null(strstr(err, want));
  /* A sibling whose name starts like the root is outside it too. */
  assert_int_equal(mkdir(at("stacks2"), 0755), 0);
  touch("stacks2/lib.so", 0644);
  assert_int_equal(symlink(at("stacks2/lib.so"), at("stacks/sib.so")), 0);
  assert_int_equal(
      trust_path(at("stacks"), at("stacks/sib.so"), NULL, err, sizeof err), -1);
  /* Inside the root: fine, and a root reached through a link as well. */
  assert_int_equal(symlink(at("stacks/real"), at("stacks/in")), 0);
  assert_int_equal(
      trust_path(at("stacks"), at("stacks/in/lib.so"), NULL, err, sizeof err),
      0);
  assert_int_equal(symlink(at("stacks"), at("link")), 0);
  assert_int_equal(
      trust_path(at("link"), at("link/in/lib.so"), NULL, err, sizeof err), 0);
  /* "/" as the root holds every absolute path, and every folder on the
   * way counts: /tmp (1777) is writable by others. */
  assert_int_equal(trust_path("/", "/", NULL, err, sizeof err), 0);
  assert_int_equal(
      trust_path("/", at("stacks/real/lib.so"), NULL, err, sizeof err), -1);
  assert_non_null(strstr(err, "\"/tmp\" is writable by group or others"));
}

static void owners(void **state) {
  char err[1024];
  struct stat st = {0};
  st.st_mode = S_IFREG | 0644;
  st.st_uid = geteuid();
  assert_int_equal(trust_stat("f", &st, err, sizeof err), 0);
  st.st_uid = 0; /* root's: packages installed under /usr */
  assert_int_equal(trust_stat("f", &st, err, sizeof err), 0);
  st.st_uid = geteuid() == 65534 ? 65533 : 65534;
  assert_int_equal(trust_stat("f", &st, err, sizeof err), -1);
  assert_non_null(strstr(err, "not to the host's user"));
}

static void data_dir(void **state) {
  char err[1024];
  assert_int_equal(trust_data_dir(at("none"), err, sizeof err), 0);
  assert_int_equal(mkdir(at("var"), 0750), 0);
  assert_int_equal(trust_data_dir(at("var"), err, sizeof err), 0);
  assert_int_equal(chmod(at("var"), 0770), 0);
  assert_int_equal(trust_data_dir(at("var"), err, sizeof err), -1);
  assert_non_null(strstr(err, "(mode 0770)"));
  touch("file", 0600);
  assert_int_equal(trust_data_dir(at("file"), err, sizeof err), -1);
  assert_non_null(strstr(err, "is not a folder"));
}

/* Folders above the root: who may write one may swap what is below it. */
static void ancestors(void **state) {
  char err[1024], rp[PATH_MAX];
  assert_int_equal(mkdir(at("open"), 0755), 0);
  assert_int_equal(mkdir(at("open/stacks"), 0755), 0);
  touch("open/stacks/lib.so", 0644);
  assert_int_equal(trust_path(at("open/stacks"), at("open/stacks/lib.so"), rp,
                              err, sizeof err),
                   0);
  assert_string_equal(rp, at("open/stacks/lib.so"));
  /* Writable by others, not sticky: refused, naming the folder above. */
  assert_int_equal(chmod(at("open"), 0777), 0);
  assert_int_equal(trust_path(at("open/stacks"), at("open/stacks/lib.so"), NULL,
                              err, sizeof err),
                   -1);
  char want[PATH_MAX + 64];
  snprintf(want, sizeof want, "\"%s\" is writable by group or others",
           at("open"));
  assert_non_null(strstr(err, want));
  assert_int_equal(chmod(at("open"), 0775), 0);
  assert_int_equal(trust_path(at("open/stacks"), at("open/stacks/lib.so"), NULL,
                              err, sizeof err),
                   -1);
  /* Sticky (as /tmp): fine while the entry below is this user's or root's. */
  assert_int_equal(chmod(at("open"), 01777), 0);
  assert_int_equal(trust_path(at("open/stacks"), at("open/stacks/lib.so"), NULL,
                              err, sizeof err),
                   0);
  if (geteuid() == 0) {
    assert_int_equal(chown(at("open/stacks"), 65534, 65534), 0);
    assert_int_equal(trust_path(at("open/stacks"), at("open/stacks/lib.so"),
                                NULL, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "belongs to uid 65534"));
    assert_non_null(strstr(err, "which others may write (mode 1777)"));
  }
}

/* trust_open judges the file it opened, not the name. */
static void open_checks(void **state) {
  char err[1024];
  touch("lib.so", 0644);
  int fd = trust_open(at("lib.so"), "shown.so", err, sizeof err);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(chmod(at("lib.so"), 0666), 0);
  assert_int_equal(trust_open(at("lib.so"), "shown.so", err, sizeof err), -1);
  assert_non_null(strstr(err, "is writable by group or others (mode 0666)"));
  assert_int_equal(chmod(at("lib.so"), 0644), 0);
  /* A link swapped in for the file is not followed. */
  assert_int_equal(symlink(at("lib.so"), at("link.so")), 0);
  assert_int_equal(trust_open(at("link.so"), "shown.so", err, sizeof err), -1);
  assert_non_null(strstr(err, "cannot open \"shown.so\""));
  /* Nor a folder or a FIFO read (nor waited on). */
  assert_int_equal(mkdir(at("d"), 0755), 0);
  assert_int_equal(trust_open(at("d"), "d", err, sizeof err), -1);
  assert_non_null(strstr(err, "is not a regular file"));
  assert_int_equal(mkfifo(at("fifo"), 0644), 0);
  assert_int_equal(trust_open(at("fifo"), "fifo", err, sizeof err), -1);
  assert_non_null(strstr(err, "is not a regular file"));
  assert_int_equal(trust_open(at("none"), "none", err, sizeof err), -1);
  assert_non_null(strstr(err, "No such file"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(ancestors, setup, teardown),
      cmocka_unit_test_setup_teardown(open_checks, setup, teardown),
      cmocka_unit_test_setup_teardown(modes, setup, teardown),
      cmocka_unit_test_setup_teardown(links, setup, teardown),
      cmocka_unit_test_setup_teardown(owners, setup, teardown),
      cmocka_unit_test_setup_teardown(data_dir, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
