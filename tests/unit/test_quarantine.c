/* The quarantine table: K crashes within T quarantine a (platform,
 * package, version), the window slides, the backoff doubles up to its cap
 * (and a crash on probation quarantines at once), a release ends it, a
 * full neighbourhood fails closed, a flood of other keys never evicts a
 * quarantined one, and each event is claimed by exactly one process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "quarantine.h"

#define T0 1800000000000ull /* a fixed "now", unix ms */

static nno_config cfg;

static void limits(int64_t k, int64_t window_ms, int64_t base_ms) {
  cfg.sandbox_crash_limit = k;
  cfg.sandbox_crash_window_ms = window_ms;
  cfg.sandbox_quarantine_ms = base_ms;
}

static int setup_with(size_t slots) {
  quarantine_fini();
  memset(&cfg, 0, sizeof cfg);
  limits(3, 1000, 5000);
  quarantine_set_now(T0);
  return quarantine_init(slots);
}

static int setup(void **state) {
  (void)state;
  return setup_with(QUARANTINE_SLOTS_DEFAULT);
}

static int setup_tiny(void **state) {
  (void)state;
  return setup_with(QUARANTINE_SLOTS_MIN);
}

static int crash(const char *platform, const char *package) {
  return quarantine_note_crash(&cfg, platform, package, "1.0.0", "st@1.0.0",
                               "SIGSEGV", "rid-1");
}

static int quarantined(const char *platform, const char *package,
                       quarantine_info *qi) {
  quarantine_info tmp;
  return quarantine_check(platform, "st", package, "1.0.0", qi ? qi : &tmp);
}

/* A crash of `package` of stack `stack` (id) on `platform`. */
static int crash_in(const char *stack, const char *platform,
                    const char *package) {
  char label[80];
  snprintf(label, sizeof label, "%s@1.0.0", stack);
  return quarantine_note_crash(&cfg, platform, package, "1.0.0", label,
                               "SIGSEGV", "rid-1");
}

static void test_k_crashes_within_t(void **state) {
  (void)state;
  assert_int_equal(quarantined("acme", "pkg", NULL), 0);
  assert_int_equal(crash("acme", "pkg"), 0);
  quarantine_set_now(T0 + 100);
  assert_int_equal(crash("acme", "pkg"), 0);
  assert_int_equal(quarantined("acme", "pkg", NULL), 0);
  quarantine_set_now(T0 + 200);
  assert_int_equal(crash("acme", "pkg"), 1);
  quarantine_info qi;
  assert_int_equal(quarantined("acme", "pkg", &qi), 1);
  assert_int_equal(qi.crashes, 3);
  assert_int_equal(qi.retry_after_s, 5);
  assert_string_equal(qi.reason, "SIGSEGV");
  /* Only that key: another platform, package or version is served. */
  assert_int_equal(quarantined("other", "pkg", NULL), 0);
  assert_int_equal(quarantined("acme", "pkh", NULL), 0);
  assert_int_equal(quarantine_check("acme", "st", "pkg", "1.0.1", &qi), 0);
  assert_int_equal(quarantine_check("acme", "other", "pkg", "1.0.0", &qi), 0);
  /* It ends when its time has passed. */
  quarantine_set_now(T0 + 200 + 4001);
  assert_int_equal(quarantined("acme", "pkg", &qi), 1);
  assert_int_equal(qi.retry_after_s, 1);
  quarantine_set_now(T0 + 200 + 5000);
  assert_int_equal(quarantined("acme", "pkg", NULL), 0);
  nno_quarantine q = {.size = sizeof q};
  assert_int_equal(quarantine_at(0, &q), NNO_ENOENT);
}

static void test_window_slides(void **state) {
  (void)state;
  /* Three crashes, but never three within a second of each other. */
  assert_int_equal(crash("acme", "pkg"), 0);
  quarantine_set_now(T0 + 600);
  assert_int_equal(crash("acme", "pkg"), 0);
  quarantine_set_now(T0 + 1200);
  assert_int_equal(crash("acme", "pkg"), 0);
  assert_int_equal(quarantined("acme", "pkg", NULL), 0);
  /* The first has left the window; 600, 1200 and 1300 are within it. */
  quarantine_set_now(T0 + 1300);
  assert_int_equal(crash("acme", "pkg"), 1);
  quarantine_info qi;
  assert_int_equal(quarantined("acme", "pkg", &qi), 1);
  assert_int_equal(qi.crashes, 3);
}

static void test_backoff_doubles_up_to_its_cap(void **state) {
  (void)state;
  limits(1, 1000, 1000);
  uint64_t t = T0, want = 1000;
  for (int level = 1; level <= 16; level++) {
    quarantine_set_now(t);
    assert_int_equal(crash("acme", "pkg"), 1);
    nno_quarantine q = {.size = sizeof q};
    assert_int_equal(quarantine_at(0, &q), 0);
    assert_int_equal(q.level, (uint32_t)level);
    assert_int_equal(q.until_ms - t, want);
    assert_string_equal(q.platform.ptr, "acme");
    assert_string_equal(q.stack.ptr, "st@1.0.0");
    assert_string_equal(q.request_id.ptr, "rid-1");
    /* A crash while quarantined (a request already running) does not
     * lengthen it. */
    quarantine_set_now(t + 1);
    assert_int_equal(crash("acme", "pkg"), 0);
    assert_int_equal(quarantine_at(0, &q), 0);
    assert_int_equal(q.until_ms - t, want);
    /* Ended; the next crash comes within the crash window after it. */
    t += want + 10;
    want = want * 2 > QUARANTINE_MAX_MS ? QUARANTINE_MAX_MS : want * 2;
  }
  assert_int_equal(want, QUARANTINE_MAX_MS);
}

static void test_probation_then_clean_slate(void **state) {
  (void)state;
  limits(3, 1000, 5000);
  for (int i = 0; i < 3; i++) crash("acme", "pkg");
  assert_int_equal(quarantined("acme", "pkg", NULL), 1);
  /* Within a window after it ends, one crash is enough: twice as long. */
  quarantine_set_now(T0 + 5000 + 500);
  assert_int_equal(crash("acme", "pkg"), 1);
  quarantine_info qi;
  assert_int_equal(quarantined("acme", "pkg", &qi), 1);
  assert_int_equal(qi.retry_after_s, 10);
  /* Past the window after that one, one crash only counts. */
  quarantine_set_now(T0 + 5500 + 10000 + 1001);
  assert_int_equal(crash("acme", "pkg"), 0);
  assert_int_equal(quarantined("acme", "pkg", NULL), 0);
}

static void test_release(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++) crash("acme", "pkg");
  assert_int_equal(quarantine_release("acme", "pkg", "9.9.9"), NNO_ENOENT);
  assert_int_equal(quarantine_release("nope", "pkg", "1.0.0"), NNO_ENOENT);
  assert_int_equal(quarantine_release("acme", "pkg", "1.0.0"), 0);
  assert_int_equal(quarantined("acme", "pkg", NULL), 0);
  assert_int_equal(quarantine_release("acme", "pkg", "1.0.0"), NNO_ENOENT);
  /* Two events, in order: the quarantine, then the release. */
  quarantine_event ev;
  assert_int_equal(quarantine_claim(&ev), 1);
  assert_int_equal(ev.kind, NNO_HOST_EVENT_QUARANTINE);
  assert_string_equal(ev.platform, "acme");
  assert_string_equal(ev.package, "pkg");
  assert_string_equal(ev.version, "1.0.0");
  assert_string_equal(ev.reason, "SIGSEGV");
  assert_string_equal(ev.rid, "rid-1");
  assert_int_equal(ev.crashes, 3);
  assert_int_equal(ev.until_ms, T0 + 5000);
  assert_int_equal(quarantine_claim(&ev), 1);
  assert_int_equal(ev.kind, NNO_HOST_EVENT_RELEASE);
  assert_int_equal(quarantine_claim(&ev), 0);
  /* The backoff level is kept: a crash right after is quarantined for
   * twice as long. */
  quarantine_set_now(T0 + 10);
  assert_int_equal(crash("acme", "pkg"), 1);
  quarantine_info qi;
  assert_int_equal(quarantined("acme", "pkg", &qi), 1);
  assert_int_equal(qi.retry_after_s, 10);
}

static void test_bad_input(void **state) {
  (void)state;
  char longname[80];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_int_equal(quarantine_note_crash(&cfg, "acme", "", "1.0.0", "", "", ""),
                   -1);
  assert_int_equal(
      quarantine_note_crash(&cfg, "acme", NULL, "1.0.0", "", "", ""), -1);
  assert_int_equal(
      quarantine_note_crash(NULL, "acme", "pkg", "1.0.0", "", "", ""), -1);
  assert_int_equal(
      quarantine_note_crash(&cfg, "acme", longname, "1.0.0", "", "", ""), -1);
  assert_int_equal(quarantine_release("acme", longname, "1.0.0"), NNO_EINVAL);
  nno_quarantine q = {.size = 0};
  assert_int_equal(quarantine_at(0, &q), NNO_EINVAL);
  assert_int_equal(quarantine_check(NULL, "st", "pkg", "1.0.0", NULL), 0);
  assert_int_equal(quarantine_check("acme", NULL, "pkg", "1.0.0", NULL), 0);
}

static void test_full_neighbourhood_fails_closed(void **state) {
  (void)state;
  limits(2, 1000, 60000);
  char p[16];
  for (int i = 0; i < QUARANTINE_SLOTS_MIN; i++) {
    snprintf(p, sizeof p, "p%d", i);
    assert_int_equal(crash(p, "held"), 0);
    assert_int_equal(crash(p, "held"), 1);
  }
  quarantine_stats st;
  quarantine_get_stats(&st);
  assert_int_equal(st.full, 0);
  /* No slot for a new key: its package version is quarantined on every
   * platform at its first crash, rather than not at all. */
  assert_int_equal(crash("fresh", "new"), 1);
  assert_int_equal(quarantined("fresh", "new", NULL), 1);
  assert_int_equal(quarantined("elsewhere", "new", NULL), 1);
  assert_int_equal(quarantined("elsewhere", "held", NULL), 0);
  /* That stack's package only: another stack's "new" is served. */
  assert_int_equal(
      quarantine_check("elsewhere", "default", "new", "1.0.0", NULL), 0);
  quarantine_get_stats(&st);
  assert_int_equal(st.full, 1);
  assert_int_equal(st.total, QUARANTINE_SLOTS_MIN + 1);
  /* Listed and released as platform "*". */
  nno_quarantine q = {.size = sizeof q};
  int found = 0;
  for (size_t i = 0; quarantine_at(i, &q) == 0; i++)
    found +=
        strcmp(q.platform.ptr, "*") == 0 && strcmp(q.package.ptr, "new") == 0;
  assert_int_equal(found, 1);
  for (int i = 0; i < QUARANTINE_SLOTS_MIN; i++) {
    snprintf(p, sizeof p, "p%d", i);
    assert_int_equal(quarantined(p, "held", NULL), 1);
  }
  assert_int_equal(quarantine_release("*", "new", "1.0.0"), 0);
  assert_int_equal(quarantined("fresh", "new", NULL), 0);
}

/* The key holds the stack: stack "shadow"'s package "hello" crashing never
 * quarantines stack "default"'s "hello" on that platform. */
static void test_another_stacks_package_is_another_key(void **state) {
  (void)state;
  limits(2, 1000, 60000);
  quarantine_info qi;
  assert_int_equal(crash_in("shadow", "acme", "hello"), 0);
  assert_int_equal(crash_in("shadow", "acme", "hello"), 1);
  assert_int_equal(
      quarantine_check("acme", "shadow", "hello", "1.0.0", &qi), 1);
  assert_int_equal(
      quarantine_check("acme", "default", "hello", "1.0.0", &qi), 0);
  /* Counted apart: default's first crash does not quarantine it. */
  assert_int_equal(crash_in("default", "acme", "hello"), 0);
  assert_int_equal(
      quarantine_check("acme", "default", "hello", "1.0.0", &qi), 0);
}

/* Keys whose hashes would collide with an unseeded hash are worked out
 * offline; with the table full of them (every slot quarantined), a new
 * key still probes the whole table before failing closed -- and then only
 * for its own stack. */
static void test_probing_covers_the_whole_table(void **state) {
  (void)state;
  limits(1, 1000, 60000);
  char p[16];
  for (int i = 0; i < QUARANTINE_SLOTS_DEFAULT - 1; i++) {
    snprintf(p, sizeof p, "p%d", i);
    assert_int_equal(crash_in("shadow", p, "hello"), 1);
  }
  quarantine_stats st;
  quarantine_get_stats(&st);
  assert_int_equal(st.full, 0); /* every key found a slot */
  /* The last slot; then the table is full: fail closed for shadow only. */
  assert_int_equal(crash_in("shadow", "last", "hello"), 1);
  assert_int_equal(crash_in("shadow", "one-more", "hello"), 1);
  quarantine_get_stats(&st);
  assert_int_equal(st.full, 1);
  assert_int_equal(
      quarantine_check("anywhere", "shadow", "hello", "1.0.0", NULL), 1);
  assert_int_equal(
      quarantine_check("anywhere", "default", "hello", "1.0.0", NULL), 0);
}

static void test_flood_never_evicts_a_quarantine(void **state) {
  (void)state;
  limits(2, 1000, 60000);
  crash("acme", "victim");
  assert_int_equal(crash("acme", "victim"), 1);
  /* Its event delivered: only the quarantine itself keeps its slot. */
  quarantine_event ev;
  assert_int_equal(quarantine_claim(&ev), 1);
  /* Far more keys than slots, each crashing once (counted, not
   * quarantined): they take each other's slots, never the quarantined
   * one's. */
  char p[32];
  for (int i = 0; i < 20000; i++) {
    snprintf(p, sizeof p, "flood%d", i);
    assert_true(crash(p, "victim") >= 0);
    if (i % 1000 == 0) quarantine_set_now(T0 + (uint64_t)i);
  }
  assert_int_equal(quarantined("acme", "victim", NULL), 1);
  quarantine_stats st;
  quarantine_get_stats(&st);
  assert_int_equal(st.total, 1);
  assert_int_equal(st.full, 0);
}

static void test_one_delivery_per_event_across_workers(void **state) {
  (void)state;
  enum { EVENTS = 40, WORKERS = 2 };
  limits(1, 1000, 60000);
  char p[16];
  for (int i = 0; i < EVENTS; i++) {
    snprintf(p, sizeof p, "p%d", i);
    assert_int_equal(crash(p, "pkg"), 1);
  }
  /* Each "worker" marks what it claimed in shared memory. */
  int *seen = mmap(NULL, sizeof(int) * EVENTS * WORKERS, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(seen != MAP_FAILED);
  memset(seen, 0, sizeof(int) * EVENTS * WORKERS);
  pid_t kids[WORKERS];
  for (int k = 0; k < WORKERS; k++) {
    kids[k] = fork();
    assert_true(kids[k] >= 0);
    if (kids[k] == 0) {
      quarantine_event ev;
      while (quarantine_claim(&ev)) {
        int i = -1;
        if (sscanf(ev.platform, "p%d", &i) != 1 || i < 0 || i >= EVENTS ||
            ev.kind != NNO_HOST_EVENT_QUARANTINE)
          _exit(2);
        seen[k * EVENTS + i]++;
      }
      _exit(0);
    }
  }
  for (int k = 0; k < WORKERS; k++) {
    int status;
    assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  for (int i = 0; i < EVENTS; i++)
    assert_int_equal(seen[i] + seen[EVENTS + i], 1);
  quarantine_event ev;
  assert_int_equal(quarantine_claim(&ev), 0);
  munmap(seen, sizeof(int) * EVENTS * WORKERS);
}

static void test_worker_crash_counts(void **state) {
  (void)state;
  quarantine_count_worker_crash("faulty");
  quarantine_count_worker_crash("faulty");
  quarantine_count_worker_crash("");
  char name[65];
  uint64_t n;
  assert_int_equal(quarantine_pkg_crashes_at(0, name, &n), 0);
  assert_string_equal(name, "faulty");
  assert_int_equal(n, 2);
  assert_int_equal(quarantine_pkg_crashes_at(1, name, &n), 0);
  assert_string_equal(name, "(none)");
  assert_int_equal(n, 1);
  assert_int_equal(quarantine_pkg_crashes_at(2, name, &n), -1);
  quarantine_crash *rec = quarantine_crash_slot(0);
  assert_non_null(rec);
  assert_null(quarantine_crash_slot(-1));
  assert_null(quarantine_crash_slot(100000));
}

static int teardown(void **state) {
  (void)state;
  quarantine_set_now(0);
  quarantine_fini();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_k_crashes_within_t, setup, teardown),
      cmocka_unit_test_setup_teardown(test_window_slides, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backoff_doubles_up_to_its_cap, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_probation_then_clean_slate, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_release, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_full_neighbourhood_fails_closed,
                                      setup_tiny, teardown),
      cmocka_unit_test_setup_teardown(test_another_stacks_package_is_another_key,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_probing_covers_the_whole_table,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_flood_never_evicts_a_quarantine,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_one_delivery_per_event_across_workers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_crash_counts, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
