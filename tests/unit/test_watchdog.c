/* Unit tests for host/watchdog.c's pure parts: the decaying loop lag that
 * overload shedding reads, the overload decision, and the dating of
 * arrivals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "callctx.h"
#include "watchdog.h"

#define MS (1000ull * 1000)

/* A busy iteration is the lag at once; a quieter one does not lower it. */
static void test_lag_takes_the_busiest(void **state) {
  (void)state;
  wd_lag l = {0, 0};
  wd_lag_note(&l, 1000 * MS, 300 * MS);
  assert_int_equal(wd_lag_value(&l, 1000 * MS), 300 * MS);
  wd_lag_note(&l, 1000 * MS + 1000, 1 * MS);
  assert_true(wd_lag_value(&l, 1000 * MS + 1000) > 299 * MS);
  /* A busier one replaces it. */
  wd_lag_note(&l, 1001 * MS, 500 * MS);
  assert_int_equal(wd_lag_value(&l, 1001 * MS), 500 * MS);
}

/* It halves every WD_LAG_HALF_NS, steadily in between, and never rises
 * by itself. */
static void test_lag_decays(void **state) {
  (void)state;
  wd_lag l = {0, 0};
  wd_lag_note(&l, 10 * MS, 400 * MS);
  assert_int_equal(wd_lag_value(&l, 10 * MS + WD_LAG_HALF_NS), 200 * MS);
  assert_int_equal(wd_lag_value(&l, 10 * MS + 2 * WD_LAG_HALF_NS), 100 * MS);
  uint64_t mid = wd_lag_value(&l, 10 * MS + WD_LAG_HALF_NS / 2);
  assert_true(mid < 400 * MS && mid > 200 * MS);
  uint64_t prev = UINT64_MAX;
  for (uint64_t t = 10 * MS; t < 10 * MS + 2000 * MS; t += 7 * MS) {
    uint64_t v = wd_lag_value(&l, t);
    assert_true(v <= prev);
    prev = v;
  }
  /* Reading earlier than the last note answers the note. */
  assert_int_equal(wd_lag_value(&l, 5 * MS), 400 * MS);
}

/* The promise behind overload.max_lag_ms: once the load is gone, any lag
 * (an hour's counts as WD_LAG_CAP_NS) is under 1 ms within a second. */
static void test_lag_recovers_within_a_second(void **state) {
  (void)state;
  wd_lag l = {0, 0};
  wd_lag_note(&l, 0, 10000 * MS);
  assert_true(wd_lag_value(&l, 1000 * MS) < 1 * MS);
  wd_lag_note(&l, 0, 3600000 * MS);
  assert_true(wd_lag_value(&l, 1000 * MS) < 1 * MS);
  assert_int_equal(wd_lag_value(&l, 0), WD_LAG_CAP_NS);
  assert_int_equal(wd_lag_value(&l, 64 * WD_LAG_HALF_NS), 0);
  /* Quiet iterations on the way down do not hold it up. */
  wd_lag_note(&l, 0, 500 * MS);
  for (uint64_t t = 0; t <= 1000 * MS; t += MS) wd_lag_note(&l, t, 20000);
  assert_true(wd_lag_value(&l, 1000 * MS) < 1 * MS);
}

static void test_overload_reasons(void **state) {
  (void)state;
  wd_limits off = {0, 0, 0};
  assert_int_equal(wd_overload_reason(&off, 1000000, UINT64_MAX, UINT64_MAX),
                   WD_OVERLOAD_NONE);
  wd_limits lim = {10, 100ull << 20, 200 * MS};
  assert_int_equal(wd_overload_reason(&lim, 10, 100ull << 20, 200 * MS),
                   WD_OVERLOAD_NONE); /* at each limit: not past it */
  assert_int_equal(wd_overload_reason(&lim, 11, 0, 0), WD_OVERLOAD_CONNECTIONS);
  assert_int_equal(wd_overload_reason(&lim, 0, (100ull << 20) + 1, 0),
                   WD_OVERLOAD_MEMORY);
  assert_int_equal(wd_overload_reason(&lim, 0, 0, 200 * MS + 1),
                   WD_OVERLOAD_LAG);
  /* Several past: the first in the order connections, memory, lag. */
  assert_int_equal(wd_overload_reason(&lim, 11, UINT64_MAX, UINT64_MAX),
                   WD_OVERLOAD_CONNECTIONS);
  assert_int_equal(wd_overload_reason(&lim, 1, UINT64_MAX, UINT64_MAX),
                   WD_OVERLOAD_MEMORY);
  /* One check off leaves the others. */
  wd_limits lag_only = {0, 0, 5 * MS};
  assert_int_equal(wd_overload_reason(&lag_only, 1u << 30, UINT64_MAX, 0),
                   WD_OVERLOAD_NONE);
  assert_int_equal(wd_overload_reason(&lag_only, 0, 0, 6 * MS),
                   WD_OVERLOAD_LAG);
}

/* Arrivals: a poll that returned late waited for its bytes; bytes ready
 * at the prepare waited since the busy stretch before it began; a quick
 * return with nothing ready came during the poll; a quick return not
 * looked at is taken as ready. */
static void test_arrival(void **state) {
  (void)state;
  const uint64_t since = 1000 * MS, prep = since + 5 * MS;
  int waited = -1;
  /* Waited 3 ms: dated as the poll returned, whatever the look said. */
  assert_int_equal(wd_arrival(prep, prep + 3 * MS, since, -1, &waited),
                   prep + 3 * MS);
  assert_int_equal(waited, 1);
  assert_int_equal(wd_arrival(prep, prep + 3 * MS, since, 0, &waited),
                   prep + 3 * MS);
  assert_int_equal(waited, 1);
  /* Ready at the prepare: the poll did not wait, however long it took to
   * come back (the process may not have been running). */
  assert_int_equal(wd_arrival(prep, prep + 3 * MS, since, 1, &waited), since);
  assert_int_equal(waited, 0);
  assert_int_equal(wd_arrival(prep, prep + 1000, since, 1, &waited), since);
  assert_int_equal(waited, 0);
  /* Quick, nothing ready: came during the poll. */
  assert_int_equal(wd_arrival(prep, prep + 1000, since, 0, &waited), prep);
  assert_int_equal(waited, 0);
  /* Quick, not looked at: since the stretch began. */
  assert_int_equal(wd_arrival(prep, prep + WD_WAIT_NS, since, -1, &waited),
                   since);
  assert_int_equal(waited, 0);
  assert_int_equal(
      wd_arrival(prep, prep + WD_WAIT_NS + 1, since, -1, &waited),
      prep + WD_WAIT_NS + 1);
  assert_int_equal(waited, 1);
}

/* Calls are timed with the coarse clock (no time-stamp counter read)
 * when the stall threshold spans enough of its ticks, else precisely. */
static void test_call_clock(void **state) {
  (void)state;
  /* The default threshold on a 250 Hz or 1000 Hz kernel: coarse. */
  assert_int_equal(callctx_clock_for(100 * MS, 4 * MS), CLOCK_MONOTONIC_COARSE);
  assert_int_equal(callctx_clock_for(100 * MS, 1 * MS), CLOCK_MONOTONIC_COARSE);
  assert_int_equal(callctx_clock_for(40 * MS, 4 * MS), CLOCK_MONOTONIC_COARSE);
  /* A threshold within a few ticks would be measured too roughly. */
  assert_int_equal(callctx_clock_for(39 * MS, 4 * MS), CLOCK_MONOTONIC);
  assert_int_equal(callctx_clock_for(1 * MS, 1 * MS), CLOCK_MONOTONIC);
  /* No coarse clock known: precise. */
  assert_int_equal(callctx_clock_for(100 * MS, 0), CLOCK_MONOTONIC);
  /* Chosen once, with this kernel's resolution. */
  struct timespec res;
  assert_int_equal(clock_getres(CLOCK_MONOTONIC_COARSE, &res), 0);
  uint64_t r = (uint64_t)res.tv_sec * 1000000000u + (uint64_t)res.tv_nsec;
  assert_int_equal(callctx_clock(), CLOCK_MONOTONIC);
  callctx_use_clock(600000 * MS);
  assert_int_equal(callctx_clock(), callctx_clock_for(600000 * MS, r));
  assert_int_equal(callctx_clock(), CLOCK_MONOTONIC_COARSE);
  callctx_use_clock(1 * MS);
  assert_int_equal(callctx_clock(), CLOCK_MONOTONIC);
}

/* A call's record: who and since when, restored on leaving, and a nested
 * call's time is not counted twice against the outer one. */
static void test_call_record_nests(void **state) {
  (void)state;
  callctx_use_clock(100 * MS);
  callctx outer, inner;
  struct plugin *a = (struct plugin *)0x1000, *b = (struct plugin *)0x2000;
  callctx_enter(a, NULL, &outer);
  assert_ptr_equal(g_callctx.plugin, a);
  uint64_t since = g_callctx.since_ns;
  assert_true(since > 0);
  callctx_enter(b, NULL, &inner);
  assert_ptr_equal(g_callctx.plugin, b);
  assert_true(g_callctx.since_ns >= since);
  callctx_leave(&inner);
  assert_ptr_equal(g_callctx.plugin, a);
  assert_true(g_callctx.since_ns >= since);
  callctx_leave(&outer);
  assert_null(g_callctx.plugin);
  assert_int_equal(g_callctx.since_ns, 0);
  assert_int_equal(atomic_load(&g_callctx_seq) % 2, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lag_takes_the_busiest),
      cmocka_unit_test(test_lag_decays),
      cmocka_unit_test(test_lag_recovers_within_a_second),
      cmocka_unit_test(test_overload_reasons),
      cmocka_unit_test(test_arrival),
      cmocka_unit_test(test_call_clock),
      cmocka_unit_test(test_call_record_nests),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
