/* Unit tests of the provisioning plugin's storage accounting (quota.c):
 * what a platform's resources add up to, plan limits, and the lock that
 * makes two writers of one platform measure one after the other; and of
 * the platforms in use (inuse.c), the lock a removal waits for. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nno/plugin.h>
#include <sodium.h>

#include "prov_fixture.h"

static int setup(void **state) {
  return sodium_init() < 0 ? -1 : pfx_setup(state);
}

static void usage_sums_every_resource(void **state) {
  pfx *f = *state;
  char sql[256], kv[256], bucket[256];
  assert_int_equal(prov_usage(f->pdir), 0);
  pfx_path(f, "sql", "a", sql, sizeof sql);
  pfx_path(f, "kv", "b", kv, sizeof kv);
  pfx_path(f, "blob", "c", bucket, sizeof bucket);
  assert_int_equal(psql_create(sql, f->msg, sizeof f->msg), 0);
  assert_int_equal(pkv_create(kv, f->msg, sizeof f->msg), 0);
  assert_int_equal(pblob_create(bucket, f->msg, sizeof f->msg), 0);
  uint64_t base = prov_usage(f->pdir);
  assert_true(base >= prov_file_size(sql) + prov_file_size(kv));
  prov_out o;
  char data[10000];
  memset(data, 'x', sizeof data);
  prov_out_init(&o);
  assert_int_equal(pblob_run(bucket, &f->b, &f->q, 'p', "k", 1, NULL, data,
                             sizeof data, NULL, 0, &o),
                   0);
  prov_out_free(&o);
  uint64_t after = prov_usage(f->pdir);
  assert_true(after >= base + sizeof data);
  /* files outside the resource folders do not count */
  char shell[256];
  snprintf(shell, sizeof shell, "%s/shell/big", f->pdir);
  FILE *fp = fopen(shell, "w");
  fwrite(data, 1, sizeof data, fp);
  fclose(fp);
  assert_int_equal(prov_usage(f->pdir), after);
}

static void plans(void **state) {
  (void)state;
  prov_plans p;
  memset(&p, 0, sizeof p);
  p.default_mb = 100;
  snprintf(p.v[0].name, sizeof p.v[0].name, "pro");
  p.v[0].storage_mb = 2048;
  snprintf(p.v[1].name, sizeof p.v[1].name, "unmetered");
  p.v[1].storage_mb = 0;
  p.n = 2;
  assert_int_equal(prov_plan_limit(&p, "pro"), 2048ull << 20);
  assert_int_equal(prov_plan_limit(&p, "free"), 100ull << 20);
  assert_int_equal(prov_plan_limit(&p, NULL), 100ull << 20);
  assert_int_equal(prov_plan_limit(&p, "unmetered"), 0);
}

/* Can another process take the platform's quota lock right now? */
static int lock_free_elsewhere(const char *pdir) {
  pid_t pid = fork();
  if (pid == 0) {
    char p[256];
    snprintf(p, sizeof p, "%s/.quota", pdir);
    int fd = open(p, O_RDWR);
    _exit(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : 1);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void the_lock(void **state) {
  pfx *f = *state;
  prov_qlock l;
  f->q.limit = 1000;
  assert_int_equal(prov_quota_begin(&f->q, &l, f->msg, sizeof f->msg), 0);
  assert_int_equal(l.used, 0);
  assert_int_equal(l.remaining, 1000);
  assert_int_equal(lock_free_elsewhere(f->pdir), 0);
  prov_quota_end(&l);
  assert_int_equal(lock_free_elsewhere(f->pdir), 1);
  f->q.limit = 0;
  assert_int_equal(prov_quota_begin(&f->q, &l, f->msg, sizeof f->msg), 0);
  assert_true(l.remaining == UINT64_MAX);
  prov_quota_end(&l);
  /* a platform without a folder */
  prov_quota q = {"/nonexistent/platform", 10};
  assert_int_equal(prov_quota_begin(&q, &l, f->msg, sizeof f->msg), NNO_ENOENT);
}

/* Can another process take `file` exclusive right now? */
static int exclusive_elsewhere(const char *file) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(file, O_RDONLY);
    _exit(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : 1);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void platforms_in_use(void **state) {
  pfx *f = *state;
  prov_inuse_tab t = {0};
  char inuse[256];
  snprintf(inuse, sizeof inuse, "%s/.inuse", f->pdir);
  assert_int_equal(prov_enter(&t, f->data, "acme"), 0);
  assert_int_equal(prov_enter(&t, f->data, "acme"), 0);
  assert_int_equal(t.n, 1);
  assert_int_equal(exclusive_elsewhere(inuse), 0);
  prov_leave(&t, "acme");
  assert_int_equal(exclusive_elsewhere(inuse), 0); /* one still in flight */
  prov_leave(&t, "acme");
  assert_int_equal(t.n, 0);
  assert_int_equal(exclusive_elsewhere(inuse), 1);
  prov_leave(&t, "acme"); /* one too many: ignored */
  /* a removal holds it exclusive: entering is refused, not waited for */
  int pipefd[2];
  assert_int_equal(pipe(pipefd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(inuse, O_RDONLY);
    char c = flock(fd, LOCK_EX) == 0 ? 'y' : 'n';
    if (write(pipefd[1], &c, 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  char c = 0;
  assert_int_equal(read(pipefd[0], &c, 1), 1);
  assert_int_equal(c, 'y');
  assert_int_equal(prov_enter(&t, f->data, "acme"), NNO_EBUSY);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  close(pipefd[0]);
  close(pipefd[1]);
  assert_int_equal(prov_enter(&t, f->data, "acme"), 0);
  prov_leave(&t, "acme");
  /* no folder, a bad id */
  assert_int_equal(prov_enter(&t, f->data, "nope"), NNO_ENOENT);
  assert_int_equal(prov_enter(&t, f->data, "../acme"), NNO_EINVAL);
  assert_int_equal(t.n, 0);
  prov_inuse_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(usage_sums_every_resource, setup,
                                      pfx_teardown),
      cmocka_unit_test_setup_teardown(plans, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(the_lock, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(platforms_in_use, setup, pfx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
