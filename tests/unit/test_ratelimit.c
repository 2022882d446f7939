/* Shared token buckets: refill, burst, retry hints, exactness across
 * processes (the reason they live in shared memory), what may be thrown out
 * when the table is crowded (only full buckets; never one that refuses), the
 * keyed hash, and slot locks left behind by a dead process. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
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

#include "config.h"
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

static limits_stats stats(void) {
  limits_stats s;
  limits_get_stats(&s);
  return s;
}

/* A fresh table of `n` slots for each test. */
static int table_of(size_t n) {
  limits_fini();
  return limits_init(n);
}
static int setup_small(void **st) {
  return table_of(LIMIT_BUCKETS_MIN);
}
static int setup_mid(void **st) {
  return table_of(4096);
}

/* The secret every test that chooses colliding keys uses: an attacker who
 * knew the hash would choose them the same way. */
static const unsigned char known[16] = "0123456789abcdef";

/* Whether `key`'s window of LIMIT_PROBE slots holds slot `target`. */
static int lands_on(const char *key, size_t target, size_t n) {
  size_t home = limits_home(key, strlen(key));
  return (target + n - home) % n < LIMIT_PROBE;
}

/* The next key "tag-N" (N from *counter on) landing on `target`. */
static void next_near(char *key, size_t cap, const char *tag, int *counter,
                      size_t target, size_t n) {
  do snprintf(key, cap, "%s-%d", tag, (*counter)++);
  while (!lands_on(key, target, n));
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
  /* 6 tokens/s is not a whole number of ns per token: still exact. */
  for (int i = 0; i < 6; i++) {
    assert_true(take("six", 6.0, 6, &r));
    assert_true(r.remaining == (uint32_t)(5 - i) ||
                r.remaining == (uint32_t)(6 - i)); /* a refill in between */
  }
}

static void test_cost_and_bad_input(void **st) {
  nno_limit_result r;
  assert_int_equal(limits_take("c", 1, 1.0, 5, 5, &r), 0);
  assert_true(r.allowed);
  assert_int_equal(limits_take("c", 1, 1.0, 5, 1, &r), 0);
  assert_false(r.allowed);
  assert_true(r.retry_after_ms >= 900 && r.retry_after_ms <= 1001);
  /* A cost-0 take only looks. */
  assert_int_equal(limits_take("d", 1, 1.0, 2, 0, &r), 0);
  assert_true(r.allowed);
  assert_int_equal(r.remaining, 2);
  char big[LIMIT_KEY_MAX + 1];
  memset(big, 'k', sizeof big);
  assert_int_equal(limits_take(big, sizeof big, 1.0, 1, 1, &r), NNO_ETOOBIG);
  assert_int_equal(limits_take("e", 1, 0.0, 1, 1, &r), NNO_EINVAL);
  assert_int_equal(limits_take("e", 1, 1.0, 0, 1, &r), NNO_EINVAL);
  assert_int_equal(limits_take("e", 1, 0.0 / 0.0, 1, 1, &r), NNO_EINVAL);
}

static void test_hash_is_keyed(void **st) {
  /* The same key lands elsewhere under another secret, so nobody can pick
   * keys that crowd a slot without knowing the boot secret. */
  char key[32];
  size_t first[64];
  for (int i = 0; i < 64; i++) {
    snprintf(key, sizeof key, "acct:p:%d@example.com", i);
    first[i] = limits_home(key, strlen(key));
  }
  assert_int_equal(table_of(4096), 0); /* a new boot: a new secret */
  int moved = 0;
  for (int i = 0; i < 64; i++) {
    snprintf(key, sizeof key, "acct:p:%d@example.com", i);
    moved += limits_home(key, strlen(key)) != first[i];
  }
  assert_true(moved > 0);
  /* A known secret gives known homes (what the tests below rely on). */
  static const unsigned char other[16] = "fedcba9876543210";
  size_t mine[64];
  moved = 0;
  limits_set_secret(known);
  for (int i = 0; i < 64; i++) {
    snprintf(key, sizeof key, "k%d", i);
    mine[i] = limits_home(key, strlen(key));
  }
  limits_set_secret(other);
  for (int i = 0; i < 64; i++) {
    snprintf(key, sizeof key, "k%d", i);
    moved += limits_home(key, strlen(key)) != mine[i];
  }
  assert_true(moved > 0);
  limits_set_secret(known);
  for (int i = 0; i < 64; i++) {
    snprintf(key, sizeof key, "k%d", i);
    assert_int_equal(limits_home(key, strlen(key)), mine[i]);
  }
}

static void test_refusing_bucket_survives_a_flood(void **st) {
  /* A lock-out: a bucket of 1 that refills in 1000 s, spent. Then keys
   * chosen to land beside it, thousands of them, both kinds an attacker
   * has: keys only looked at (full buckets) and keys it spends (busy). */
  const size_t n = 4096;
  limits_set_secret(known);
  nno_limit_result r;
  assert_true(take("acct:victim", 0.001, 1, &r));
  assert_false(take("acct:victim", 0.001, 1, &r));
  size_t target = limits_home("acct:victim", 11);
  char key[32];
  int counter = 0;
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 1500; i++) {
      next_near(key, sizeof key, "filler", &counter, target, n);
      assert_int_equal(
          limits_take(key, strlen(key), 0.001, 1, round == 0 ? 0 : 1, &r), 0);
    }
    limits_stats before = stats();
    assert_true(before.evictions > 0); /* the fillers did crowd it */
    if (round == 1) assert_true(before.full > 0);
    /* Still refusing, and from its own bucket (not a table-full answer):
     * 1000 s to the next token. */
    assert_false(take("acct:victim", 0.001, 1, &r));
    assert_true(r.retry_after_ms > 990000);
    assert_int_equal(stats().full, before.full);
  }
}

static void test_busy_bucket_is_never_evicted(void **st) {
  /* Not refusing, just not full: 1 of 10 tokens spent keeps it. */
  const size_t n = 4096;
  limits_set_secret(known);
  nno_limit_result r;
  assert_true(take("k:busy", 0.001, 10, &r));
  assert_int_equal(r.remaining, 9);
  size_t target = limits_home("k:busy", 6);
  char key[32];
  int counter = 0;
  for (int i = 0; i < 3000; i++) {
    next_near(key, sizeof key, "other", &counter, target, n);
    assert_int_equal(limits_take(key, strlen(key), 0.001, 5, i % 2, &r), 0);
  }
  assert_true(take("k:busy", 0.001, 10, &r));
  assert_int_equal(r.remaining, 8); /* a recreated bucket would say 9 */
}

/* Fill a table of LIMIT_BUCKETS_MIN slots with busy buckets (a token of
 * two spent, back in 1000 s) until every slot holds one. */
static void fill_busy(void) {
  nno_limit_result r;
  char key[32];
  for (int i = 0; stats().used < LIMIT_BUCKETS_MIN; i++) {
    assert_true(i < 100000);
    snprintf(key, sizeof key, "busy-%d", i);
    assert_int_equal(limits_take(key, strlen(key), 0.001, 2, 1, &r), 0);
  }
}

static void test_full_table_refuses(void **st) {
  fill_busy();
  nno_limit_result r;
  uint64_t full = stats().full;
  /* A new key gets a refusal, whatever it asks, with a retry hint. */
  assert_int_equal(limits_take("new", 3, 100.0, 50, 1, &r), 0);
  assert_false(r.allowed);
  assert_int_equal(r.remaining, 0);
  assert_int_equal(r.limit, 0); /* no bucket: the table is full */
  assert_true(r.retry_after_ms >= 1 && r.retry_after_ms <= 2000001);
  assert_int_equal(limits_take("new", 3, 100.0, 50, 0, &r), 0);
  assert_false(r.allowed); /* a look is refused too: auth reads it as locked */
  assert_int_equal(stats().full, full + 2);
  assert_int_equal(stats().evictions, 0);
  /* Keys that have a bucket are served exactly as before. */
  assert_true(take("busy-0", 0.001, 2, &r));
  assert_int_equal(r.remaining, 0);
  assert_false(take("busy-0", 0.001, 2, &r));
  assert_true(r.retry_after_ms > 990000);
  assert_int_equal(r.limit, 2); /* its own bucket refuses, not the table */
}

static void test_full_bucket_is_reused(void **st) {
  /* On an empty table "short" gets its home slot; its bucket is full again
   * 500 ms after its take, while every other slot fills with busy ones. */
  nno_limit_result r;
  assert_true(take("short", 2.0, 1, &r));
  fill_busy();
  assert_int_equal(stats().evictions, 0);
  assert_false(take("late", 1.0, 1, &r)); /* no room yet */
  sleep_ms(600);
  /* A new key with the same home sees "short" first and takes its slot
   * over: that bucket was as good as new. */
  size_t target = limits_home("short", 5);
  char key[32];
  int counter = 0;
  do snprintf(key, sizeof key, "newcomer-%d", counter++);
  while (limits_home(key, strlen(key)) != target);
  limits_stats before = stats();
  assert_true(take(key, 1.0, 1, &r));
  limits_stats after = stats();
  assert_int_equal(after.evictions, before.evictions + 1);
  assert_int_equal(after.full, before.full);
  assert_int_equal(after.used, LIMIT_BUCKETS_MIN);
  /* "short" is gone, and there is no room for it again. */
  assert_false(take("short", 2.0, 1, &r));
  assert_int_equal(stats().full, after.full + 1);
}

/* ---- locks left by dead processes --------------------------------------- */

static void test_lock_of_an_exited_process_is_taken_over(void **st) {
  nno_limit_result r;
  pid_t kid = fork();
  assert_true(kid >= 0);
  if (kid == 0) _exit(limits_hold("held", 4) == 0 ? 0 : 1); /* still locked */
  int status;
  assert_int_equal(waitpid(kid, &status, 0), kid);
  assert_int_equal(status, 0);
  alarm(60); /* a lock never freed would hang here: fail instead */
  assert_true(take("held", 1.0, 2, &r));
  assert_int_equal(r.remaining, 1);
  alarm(0);
  assert_int_equal(stats().steals, 1);
  /* And the lock works normally afterwards. */
  assert_true(take("held", 1.0, 2, &r));
  assert_false(take("held", 1.0, 2, &r));
}

static int wait_readable(int fd, int ms) {
  struct pollfd p = {fd, POLLIN, 0};
  int n;
  do n = poll(&p, 1, ms);
  while (n < 0 && errno == EINTR);
  return n;
}

static void test_lock_of_a_killed_worker_is_taken_over(void **st) {
  /* A worker holds a slot and is killed with SIGKILL; another one waiting
   * for that slot goes on, but not while the holder lives. */
  int held[2], done[2];
  assert_int_equal(pipe(held), 0);
  assert_int_equal(pipe(done), 0);
  pid_t holder = fork();
  assert_true(holder >= 0);
  if (holder == 0) {
    char c = limits_hold("w", 1) == 0 ? 'h' : 'x';
    if (write(held[1], &c, 1) != 1) _exit(1);
    for (;;) pause();
  }
  char c = 0;
  assert_int_equal(wait_readable(held[0], 30000), 1);
  assert_int_equal(read(held[0], &c, 1), 1);
  assert_int_equal(c, 'h');
  pid_t waiter = fork();
  assert_true(waiter >= 0);
  if (waiter == 0) {
    nno_limit_result r;
    int rc = limits_take("w", 1, 1.0, 3, 1, &r);
    c = rc == 0 && r.allowed && r.remaining == 2 ? 'y' : 'n';
    _exit(write(done[1], &c, 1) == 1 ? 0 : 1);
  }
  assert_int_equal(wait_readable(done[0], 300), 0); /* the holder lives */
  assert_int_equal(kill(holder, SIGKILL), 0);
  int status;
  assert_int_equal(waitpid(holder, &status, 0), holder);
  assert_int_equal(wait_readable(done[0], 60000), 1);
  assert_int_equal(read(done[0], &c, 1), 1);
  assert_int_equal(c, 'y');
  assert_int_equal(waitpid(waiter, &status, 0), waiter);
  assert_int_equal(status, 0);
  assert_int_equal(stats().steals, 1);
  close(held[0]), close(held[1]), close(done[0]), close(done[1]);
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
  assert_int_equal(stats().steals, 0);
  munmap(allowed, sizeof(int) * 4);
}

static void test_size_from_configuration(void **st) {
  nno_config c;
  char err[CONFIG_ERR_MAX];
  config_defaults(&c, ".");
  assert_int_equal(c.rate_buckets, LIMIT_BUCKETS_DEFAULT);
  assert_int_equal(config_set(&c, "limits.rate_buckets", "100", err), 0);
  assert_int_equal(table_of((size_t)c.rate_buckets), 0);
  assert_int_equal(stats().total, 100);
  assert_int_equal(stats().used, 0);
  /* Every slot is usable, the last one's window wrapping to the first. */
  nno_limit_result r;
  char key[32];
  for (int i = 0; stats().used < 100; i++) {
    assert_true(i < 100000);
    snprintf(key, sizeof key, "fill-%d", i);
    assert_int_equal(limits_take(key, strlen(key), 0.001, 2, 1, &r), 0);
  }
  /* Out of bounds: refused by both. */
  limits_fini();
  assert_int_equal(limits_init(LIMIT_BUCKETS_MIN - 1), -1);
  assert_int_equal(limits_init(LIMIT_BUCKETS_MAX + 1), -1);
  assert_int_equal(limits_take("x", 1, 1.0, 1, 1, &r), NNO_ESTATE);
  assert_int_equal(config_set(&c, "limits.rate_buckets", "63", err), -1);
  assert_string_equal(err,
                      "limits.rate_buckets: expected an integer from 64 "
                      "to 4194304, got \"63\"");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_burst_then_refill, setup_mid),
      cmocka_unit_test_setup(test_cost_and_bad_input, setup_mid),
      cmocka_unit_test_setup(test_hash_is_keyed, setup_mid),
      cmocka_unit_test_setup(test_refusing_bucket_survives_a_flood, setup_mid),
      cmocka_unit_test_setup(test_busy_bucket_is_never_evicted, setup_mid),
      cmocka_unit_test_setup(test_full_table_refuses, setup_small),
      cmocka_unit_test_setup(test_full_bucket_is_reused, setup_small),
      cmocka_unit_test_setup(test_lock_of_an_exited_process_is_taken_over,
                             setup_mid),
      cmocka_unit_test_setup(test_lock_of_a_killed_worker_is_taken_over,
                             setup_mid),
      cmocka_unit_test_setup(test_exact_across_processes, setup_mid),
      cmocka_unit_test(test_size_from_configuration),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  limits_fini();
  return rc;
}
