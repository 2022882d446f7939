/* Shared token buckets: refill, burst, retry hints, eviction, and exactness
 * across processes (the reason they live in shared memory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ratelimit.h"

static int take(const char *key, double rate, uint32_t burst,
                nno_limit_result *r) {
  assert_int_equal(limits_take(key, strlen(key), rate, burst, 1, r), 0);
  return r->allowed;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void test_burst_then_refill(void **st) {
  nno_limit_result r;
  /* A bucket of 3 refilling one token every 2 s: timing cannot blur it,
   * even under valgrind. */
  for (int i = 0; i < 3; i++) {
    assert_true(take("a", 0.5, 3, &r));
    assert_int_equal(r.remaining, 2 - i);
    assert_int_equal(r.limit, 3);
  }
  assert_false(take("a", 0.5, 3, &r));
  assert_int_equal(r.remaining, 0);
  assert_true(r.retry_after_ms >= 1 && r.retry_after_ms <= 2001);
  assert_true(r.reset_ms <= 6001);
  /* Another key has its own full bucket. */
  assert_true(take("b", 0.5, 3, &r));
  assert_int_equal(r.remaining, 2);
  /* Refill: a bucket of 1 at 20 tokens/s is empty right after a take and
   * full again 120 ms later. */
  assert_true(take("r", 20.0, 1, &r));
  assert_false(take("r", 20.0, 1, &r));
  sleep_ms(120);
  assert_true(take("r", 20.0, 1, &r));
}

static void test_cost_and_bad_input(void **st) {
  nno_limit_result r;
  assert_int_equal(limits_take("c", 1, 1.0, 5, 5, &r), 0);
  assert_true(r.allowed);
  assert_int_equal(limits_take("c", 1, 1.0, 5, 1, &r), 0);
  assert_false(r.allowed);
  assert_true(r.retry_after_ms >= 900 && r.retry_after_ms <= 1001);
  char big[LIMIT_KEY_MAX + 1];
  memset(big, 'k', sizeof big);
  assert_int_equal(limits_take(big, sizeof big, 1.0, 1, 1, &r), NNO_ETOOBIG);
}

static void test_eviction_keeps_working(void **st) {
  nno_limit_result r;
  char key[32];
  /* Far more keys than slots: every call still answers. */
  for (int i = 0; i < LIMIT_BUCKETS * 2; i++) {
    snprintf(key, sizeof key, "evict-%d", i);
    assert_true(take(key, 1.0, 1, &r));
  }
}

static void test_exact_across_processes(void **st) {
  /* 4 processes race for a bucket of 50 that barely refills: exactly 50
   * takes succeed in all. */
  int *allowed = mmap(NULL, sizeof(int) * 4, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(allowed != MAP_FAILED);
  pid_t kids[4];
  for (int k = 0; k < 4; k++) {
    kids[k] = fork();
    assert_true(kids[k] >= 0);
    if (kids[k] == 0) {
      int n = 0;
      nno_limit_result r;
      for (int i = 0; i < 100; i++)
        if (limits_take("shared", 6, 0.0001, 50, 1, &r) == 0 && r.allowed) n++;
      allowed[k] = n;
      _exit(0);
    }
  }
  for (int k = 0; k < 4; k++) {
    int status;
    waitpid(kids[k], &status, 0);
    assert_int_equal(status, 0);
  }
  assert_int_equal(allowed[0] + allowed[1] + allowed[2] + allowed[3], 50);
  munmap(allowed, sizeof(int) * 4);
}

int main(void) {
  if (limits_init() != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_burst_then_refill),
      cmocka_unit_test(test_cost_and_bad_input),
      cmocka_unit_test(test_eviction_keeps_working),
      cmocka_unit_test(test_exact_across_processes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
