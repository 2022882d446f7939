/* The log ring: records in order with their seq, the platform filter and
 * paging by seq, wraparound (old records gone, the rest whole), bounds,
 * writers in several processes at once losing nothing, and a reader racing
 * writers that never returns a torn record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "logring.h"

static int ring_of(size_t bytes) {
  logring_fini();
  return logring_init(bytes);
}
static int setup_small(void **st) {
  (void)st;
  return ring_of(LOGRING_BYTES_MIN);
}
static int teardown(void **st) {
  (void)st;
  logring_fini();
  return 0;
}

static uint64_t add(const char *platform, const char *package, const char *rid,
                    const char *line) {
  logring_meta m = {platform, platform ? strlen(platform) : 0,
                    package,  package ? strlen(package) : 0,
                    rid,      rid ? strlen(rid) : 0,
                    1};
  return logring_append(&m, line, strlen(line));
}

/* What a walk gave: the seqs and the lines. */
typedef struct got {
  size_t n;
  uint64_t seq[4096];
  char line[4096][128];
} got;

static int collect(void *ud, uint64_t seq, const char *line, size_t len) {
  got *g = ud;
  if (g->n < 4096) {
    g->seq[g->n] = seq;
    snprintf(g->line[g->n], sizeof g->line[g->n], "%.*s", (int)len, line);
    g->n++;
  }
  return 0;
}

static void test_order_filter_paging(void **st) {
  (void)st;
  assert_int_equal(logring_head(), 1);
  assert_int_equal(add("acme", "notes", "r1", "{\"msg\":\"a\"}\n"), 1);
  assert_int_equal(add("other", "notes", "r2", "{\"msg\":\"b\"}"), 2);
  assert_int_equal(add("acme", NULL, NULL, "{\"msg\":\"c\"}"), 3);
  /* No platform, no line, too long a line: not recorded. */
  assert_int_equal(add(NULL, "x", NULL, "{}"), 0);
  assert_int_equal(add("", "x", NULL, "{}"), 0);
  assert_int_equal(add("acme", "x", NULL, ""), 0);
  static char big[LOGRING_LINE_MAX + 2];
  memset(big, 'x', sizeof big - 1);
  assert_int_equal(add("acme", "x", NULL, big), 0);
  big[LOGRING_LINE_MAX] = 0;
  uint64_t seq_big = add("acme", "x", NULL, big);
  assert_int_equal(seq_big, 4);
  assert_int_equal(logring_head(), 5);

  static got g;
  uint64_t next = 99;
  g.n = 0;
  assert_int_equal(logring_tail("acme", 0, 100, collect, &g, &next), 3);
  assert_int_equal(g.seq[0], 1);
  assert_string_equal(g.line[0], "{\"msg\":\"a\"}"); /* newline dropped */
  assert_int_equal(g.seq[1], 3);
  assert_string_equal(g.line[1], "{\"msg\":\"c\"}");
  assert_int_equal(g.seq[2], 4);
  assert_int_equal(next, 4);
  /* Paging: at most max, next continues. */
  g.n = 0;
  assert_int_equal(logring_tail("acme", 0, 1, collect, &g, &next), 1);
  assert_int_equal(next, 1);
  g.n = 0;
  assert_int_equal(logring_tail("acme", next, 1, collect, &g, &next), 1);
  assert_int_equal(g.seq[0], 3);
  assert_int_equal(next, 3);
  g.n = 0;
  assert_int_equal(logring_tail("other", 0, 10, collect, &g, &next), 1);
  assert_string_equal(g.line[0], "{\"msg\":\"b\"}");
  /* Nothing new: next stays; a since past the head comes back to it. */
  g.n = 0;
  assert_int_equal(logring_tail("acme", 4, 10, collect, &g, &next), 0);
  assert_int_equal(next, 4);
  assert_int_equal(logring_tail("acme", 1000, 10, collect, &g, &next), 0);
  assert_int_equal(next, 4);
  assert_int_equal(logring_tail("nobody", 0, 10, collect, &g, &next), 0);
  assert_int_equal(next, 4);
}

static void test_wraparound(void **st) {
  (void)st;
  /* Far more than the ring holds: the newest are whole and in order, the
   * oldest gone. */
  char line[128];
  const int total = 20000;
  for (int i = 1; i <= total; i++) {
    snprintf(line, sizeof line, "{\"msg\":\"line %d\",\"pad\":\"%0*d\"}", i,
             i % 50, 0);
    assert_int_equal(add(i % 2 ? "acme" : "other", "p", "rid", line),
                     (uint64_t)i);
  }
  static got g;
  g.n = 0;
  uint64_t next = 0;
  int n = logring_tail("acme", 0, 4096, collect, &g, &next);
  assert_true(n > 100);
  assert_true(n < total / 2);
  assert_int_equal(next, (uint64_t)total); /* the last one walked */
  for (size_t i = 0; i < g.n; i++) {
    int k = 0;
    assert_int_equal(sscanf(g.line[i], "{\"msg\":\"line %d\"", &k), 1);
    assert_int_equal((uint64_t)k, g.seq[i]);
    assert_true(k % 2 == 1);
    if (i) assert_int_equal(g.seq[i], g.seq[i - 1] + 2);
  }
  /* A since long overwritten starts at the oldest kept. */
  uint64_t first = g.seq[0];
  g.n = 0;
  assert_int_equal(logring_tail("acme", 5, 1, collect, &g, &next), 1);
  assert_int_equal(g.seq[0], first);
}

/* Writers in forked processes: every record is there, once, in seq order,
 * none of them mixed with another. */
static void test_concurrent_writers(void **st) {
  (void)st;
  assert_int_equal(ring_of(LOGRING_BYTES_DEFAULT), 0);
  enum { PROCS = 4, EACH = 2000 };
  pid_t pids[PROCS];
  for (int p = 0; p < PROCS; p++) {
    pids[p] = fork();
    assert_true(pids[p] >= 0);
    if (pids[p] == 0) {
      char line[96];
      for (int i = 0; i < EACH; i++) {
        snprintf(line, sizeof line, "{\"proc\":%d,\"i\":%d}", p, i);
        if (!add("acme", "p", "r", line)) _exit(1);
      }
      _exit(0);
    }
  }
  for (int p = 0; p < PROCS; p++) {
    int status = 0;
    assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  assert_int_equal(logring_head(), PROCS * EACH + 1);
  static got g;
  int last[PROCS];
  for (int p = 0; p < PROCS; p++) last[p] = -1;
  uint64_t since = 0, next = 0;
  size_t seen = 0;
  for (;;) {
    g.n = 0;
    int n = logring_tail("acme", since, 4096, collect, &g, &next);
    assert_true(n >= 0);
    for (size_t i = 0; i < g.n; i++) {
      int p = -1, k = -1;
      assert_int_equal(sscanf(g.line[i], "{\"proc\":%d,\"i\":%d}", &p, &k), 2);
      assert_true(p >= 0 && p < PROCS);
      assert_int_equal(k, last[p] + 1); /* each writer's in its order */
      last[p] = k;
    }
    seen += g.n;
    if (n == 0) break;
    since = next;
  }
  assert_int_equal(seen, PROCS * EACH);
  for (int p = 0; p < PROCS; p++) assert_int_equal(last[p], EACH - 1);
}

/* Writers overwrite the ring over and over while a reader walks it: every
 * record it is given is a whole one (its body repeats its seq, and its
 * length says which seq it is). */
static int check_whole(void *ud, uint64_t seq, const char *line, size_t len) {
  size_t *bad = ud;
  char want[LOGRING_LINE_MAX], text[LOGRING_LINE_MAX + 1];
  unsigned long long s = 0;
  memcpy(text, line, len);
  text[len] = 0;
  if (sscanf(text, "{\"s\":%llu", &s) != 1) {
    (*bad)++;
    return 0;
  }
  /* The line is {"s":S,"b":"XXXX..."} with S% 300 + 1 copies of a letter
   * named by S: a torn record breaks one of these. */
  int n = snprintf(want, sizeof want, "{\"s\":%llu,\"b\":\"", s);
  size_t body = (size_t)(s % 300) + 1;
  memset(want + n, 'a' + (int)(s % 26), body);
  memcpy(want + n + body, "\"}", 3);
  if (len != (size_t)n + body + 2 || memcmp(want, line, len) != 0) (*bad)++;
  (void)seq;
  return 0;
}

static void test_reader_racing_writers(void **st) {
  (void)st;
  assert_int_equal(ring_of(LOGRING_BYTES_MIN), 0);
  enum { PROCS = 2 };
  /* Each writer numbers its lines with a counter of its own, set so the
   * values never meet: the check needs only the line. */
  pid_t pids[PROCS];
  for (int p = 0; p < PROCS; p++) {
    pids[p] = fork();
    assert_true(pids[p] >= 0);
    if (pids[p] == 0) {
      char line[LOGRING_LINE_MAX];
      for (unsigned long long s = (unsigned long long)p; s < 300000;
           s += PROCS) {
        int n = snprintf(line, sizeof line, "{\"s\":%llu,\"b\":\"", s);
        size_t body = (size_t)(s % 300) + 1;
        memset(line + n, 'a' + (int)(s % 26), body);
        memcpy(line + n + body, "\"}", 3);
        add("acme", "p", "r", line);
      }
      _exit(0);
    }
  }
  size_t bad = 0, walks = 0, given = 0;
  uint64_t next = 0;
  int running = PROCS;
  while (running) {
    /* From the oldest each time: the records most likely overwritten
     * while being read. */
    int n = logring_tail("acme", 0, 4096, check_whole, &bad, &next);
    assert_true(n >= 0);
    given += (size_t)n;
    walks++;
    int status;
    while (waitpid(-1, &status, WNOHANG) > 0) running--;
  }
  assert_true(walks > 0 && given > 0);
  assert_int_equal(bad, 0);
  assert_int_equal(logring_head(), 300001);
}

static void test_bounds(void **st) {
  (void)st;
  logring_fini();
  assert_int_equal(logring_init(0), 0); /* off */
  assert_false(logring_enabled());
  assert_int_equal(add("acme", "p", "r", "{}"), 0);
  uint64_t next = 7;
  assert_int_equal(logring_tail("acme", 0, 10, NULL, NULL, &next), -1);
  assert_int_equal(logring_init(LOGRING_BYTES_MIN - 1), -1);
  assert_false(logring_enabled());
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_order_filter_paging, setup_small,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_wraparound, setup_small, teardown),
      cmocka_unit_test_teardown(test_concurrent_writers, teardown),
      cmocka_unit_test_teardown(test_reader_racing_writers, teardown),
      cmocka_unit_test(test_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
