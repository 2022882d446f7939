/* Shared meters: values and caps, exactness across processes (the reason
 * they live in shared memory: several workers adding to one key, and
 * several creating one new key at once), a full table, key bounds,
 * namespaces and the walk, the epoch, and the size from configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "meter.h"

static meter_stats stats(void) {
  meter_stats s;
  meter_get_stats(&s);
  return s;
}

static uint64_t value_of(const char *ns, const char *key) {
  uint64_t v = 12345;
  int rc = meter_get(ns, key, strlen(key), &v);
  assert_true(rc == 0 || (rc == NNO_ENOENT && v == 0));
  return v;
}

/* A fresh table of `n` slots for each test. */
static int table_of(size_t n) {
  meter_fini();
  return meter_init(n);
}
static int setup_small(void **st) {
  (void)st;
  return table_of(METER_SLOTS_MIN);
}
static int setup_default(void **st) {
  (void)st;
  return table_of(METER_SLOTS_DEFAULT);
}

static void test_add_and_get(void **st) {
  (void)st;
  uint64_t v = 7, after = 7;
  assert_int_equal(meter_get("billing", "a|acme", 6, &v), NNO_ENOENT);
  assert_int_equal(v, 0);
  assert_int_equal(meter_add("billing", "a|acme", 6, 5, 0, &after), 0);
  assert_int_equal(after, 5);
  assert_int_equal(meter_add("billing", "a|acme", 6, 0, 0, &after), 0);
  assert_int_equal(after, 5);
  assert_int_equal(meter_add("billing", "a|acme", 6, 3, 0, NULL), 0);
  assert_int_equal(value_of("billing", "a|acme"), 8);
  /* Any bytes, NUL included, are part of the key. */
  assert_int_equal(meter_add("billing", "a\0b", 3, 1, 0, NULL), 0);
  assert_int_equal(meter_add("billing", "a\0c", 3, 2, 0, NULL), 0);
  assert_int_equal(meter_get("billing", "a\0b", 3, &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(stats().used, 3);
  /* A get never creates. */
  assert_int_equal(meter_get("billing", "nothing", 7, &v), NNO_ENOENT);
  assert_int_equal(stats().used, 3);
}

static void test_cap_is_exact(void **st) {
  (void)st;
  uint64_t after = 0;
  for (int i = 1; i <= 10; i++) {
    assert_int_equal(meter_add("b", "q", 1, 1, 10, &after), 0);
    assert_int_equal(after, (uint64_t)i);
  }
  /* Past the cap: nothing added, the value as it is. */
  assert_int_equal(meter_add("b", "q", 1, 1, 10, &after), NNO_EREFUSED);
  assert_int_equal(after, 10);
  assert_int_equal(value_of("b", "q"), 10);
  /* A delta larger than what is left is refused whole, not cut. */
  assert_int_equal(meter_add("b", "r", 1, 7, 10, &after), 0);
  assert_int_equal(meter_add("b", "r", 1, 4, 10, &after), NNO_EREFUSED);
  assert_int_equal(after, 7);
  assert_int_equal(meter_add("b", "r", 1, 3, 10, &after), 0);
  assert_int_equal(after, 10);
  /* A value already past a lower cap: even 0 is refused. */
  assert_int_equal(meter_add("b", "r", 1, 0, 5, &after), NNO_EREFUSED);
  assert_int_equal(after, 10);
  /* Without a cap, a value never wraps round. */
  assert_int_equal(meter_add("b", "s", 1, UINT64_MAX - 1, 0, &after), 0);
  assert_int_equal(meter_add("b", "s", 1, 1, 0, &after), 0);
  assert_true(after == UINT64_MAX);
  assert_int_equal(meter_add("b", "s", 1, 1, 0, &after), NNO_EREFUSED);
  assert_true(after == UINT64_MAX);
}

#define KIDS 4
#define TRIES 3000
#define CAP 5000
#define NEWKEYS 300

/* KIDS processes hammer one key with a cap, and all create the same
 * NEWKEYS fresh keys at once: the cap holds exactly (successes == cap ==
 * the final value), and every new key has one slot holding every add. */
static void test_exact_across_processes(void **st) {
  (void)st;
  int *ok = mmap(NULL, sizeof(int) * KIDS, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(ok != MAP_FAILED);
  pid_t kids[KIDS];
  for (int k = 0; k < KIDS; k++) {
    kids[k] = fork();
    assert_true(kids[k] >= 0);
    if (kids[k] == 0) {
      int n = 0, bad = 0;
      char key[32];
      for (int i = 0; i < TRIES; i++) {
        uint64_t after;
        int rc = meter_add("billing", "hot", 3, 1, CAP, &after);
        if (rc == 0) n++;
        else if (rc != NNO_EREFUSED || after != CAP) bad = 1;
        if (i < NEWKEYS) {
          snprintf(key, sizeof key, "new-%d", i);
          if (meter_add("billing", key, strlen(key), 1, 0, NULL) != 0) bad = 1;
        }
      }
      ok[k] = n;
      _exit(bad);
    }
  }
  for (int k = 0; k < KIDS; k++) {
    int status;
    assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
    assert_int_equal(status, 0);
  }
  int sum = 0;
  for (int k = 0; k < KIDS; k++) sum += ok[k];
  assert_int_equal(sum, CAP);
  assert_int_equal(value_of("billing", "hot"), CAP);
  char key[32];
  for (int i = 0; i < NEWKEYS; i++) {
    snprintf(key, sizeof key, "new-%d", i);
    assert_int_equal(value_of("billing", key), KIDS);
  }
  /* One slot per key: no key was created twice. */
  assert_int_equal(stats().used, 1 + NEWKEYS);
  size_t cursor = 0, seen = 0;
  nno_meter_entry e = {.size = sizeof e};
  while (meter_next("billing", &cursor, &e) == 0) seen++;
  assert_int_equal(seen, 1 + NEWKEYS);
  munmap(ok, sizeof(int) * KIDS);
}

static void test_table_full(void **st) {
  (void)st;
  char key[32];
  for (int i = 0; i < METER_SLOTS_MIN; i++) {
    snprintf(key, sizeof key, "k%d", i);
    assert_int_equal(meter_add("p", key, strlen(key), (uint64_t)i, 0, NULL),
                     0);
  }
  assert_int_equal(stats().used, METER_SLOTS_MIN);
  /* No slot for a new key: refused, nothing added, counted. */
  uint64_t after = 9;
  assert_int_equal(meter_add("p", "one-more", 8, 1, 0, &after), NNO_ETOOBIG);
  assert_int_equal(stats().full, 1);
  assert_int_equal(value_of("p", "one-more"), 0);
  /* Every key already there still counts, and is found. */
  for (int i = 0; i < METER_SLOTS_MIN; i++) {
    snprintf(key, sizeof key, "k%d", i);
    assert_int_equal(meter_add("p", key, strlen(key), 1, 0, &after), 0);
    assert_int_equal(after, (uint64_t)i + 1);
  }
  assert_int_equal(stats().used, METER_SLOTS_MIN);
}

static void test_key_bounds(void **st) {
  (void)st;
  char big[NNO_METER_KEY_MAX + 1];
  memset(big, 'x', sizeof big);
  uint64_t v;
  assert_int_equal(meter_add("p", big, NNO_METER_KEY_MAX, 1, 0, NULL), 0);
  assert_int_equal(meter_get("p", big, NNO_METER_KEY_MAX, &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(meter_add("p", big, sizeof big, 1, 0, NULL), NNO_ETOOBIG);
  assert_int_equal(meter_get("p", big, sizeof big, &v), NNO_ETOOBIG);
  assert_int_equal(meter_add("p", "", 0, 1, 0, NULL), NNO_EINVAL);
  assert_int_equal(meter_add("p", NULL, 1, 1, 0, NULL), NNO_EINVAL);
  assert_int_equal(meter_add("", "k", 1, 1, 0, NULL), NNO_EINVAL);
  assert_int_equal(meter_get("p", "k", 1, NULL), NNO_EINVAL);
  /* The longest namespace (a plugin name) with the longest key fits. */
  char ns[METER_NS_MAX + 2];
  memset(ns, 'n', sizeof ns);
  ns[METER_NS_MAX] = '\0';
  assert_int_equal(meter_add(ns, big, NNO_METER_KEY_MAX, 2, 0, NULL), 0);
  nno_meter_entry e = {.size = sizeof e};
  size_t cursor = 0;
  assert_int_equal(meter_next(ns, &cursor, &e), 0);
  assert_int_equal(e.key.len, NNO_METER_KEY_MAX);
  assert_memory_equal(e.key.ptr, big, NNO_METER_KEY_MAX);
  assert_int_equal(e.value, 2);
  ns[METER_NS_MAX] = 'n';
  ns[METER_NS_MAX + 1] = '\0';
  assert_int_equal(meter_add(ns, "k", 1, 1, 0, NULL), NNO_EINVAL);
  /* A walk with an entry too small to hold the value is refused. */
  e.size = offsetof(nno_meter_entry, value);
  cursor = 0;
  assert_int_equal(meter_next("p", &cursor, &e), NNO_EINVAL);
  /* Not mapped: every call says so. */
  meter_fini();
  assert_int_equal(meter_add("p", "k", 1, 1, 0, NULL), NNO_ESTATE);
  assert_int_equal(meter_get("p", "k", 1, &v), NNO_ESTATE);
  e.size = sizeof e;
  assert_int_equal(meter_next("p", &cursor, &e), NNO_ESTATE);
  assert_int_equal(meter_epoch(), 0);
  assert_int_equal(meter_init(METER_SLOTS_MIN), 0);
}

static void test_namespaces(void **st) {
  (void)st;
  /* The same bytes under two plugins are two keys; and neither a
   * namespace that is a prefix of another nor a key that starts like one
   * mixes them ("a"+"bx" vs "ab"+"x"). */
  assert_int_equal(meter_add("a", "x", 1, 1, 0, NULL), 0);
  assert_int_equal(meter_add("b", "x", 1, 2, 0, NULL), 0);
  assert_int_equal(meter_add("a", "bx", 2, 3, 0, NULL), 0);
  assert_int_equal(meter_add("ab", "x", 1, 4, 0, NULL), 0);
  assert_int_equal(value_of("a", "x"), 1);
  assert_int_equal(value_of("b", "x"), 2);
  assert_int_equal(value_of("a", "bx"), 3);
  assert_int_equal(value_of("ab", "x"), 4);
  assert_int_equal(value_of("c", "x"), 0);
  /* The walk gives a namespace's own keys, without the namespace. */
  size_t cursor = 0;
  nno_meter_entry e = {.size = sizeof e};
  uint64_t sum = 0;
  int n = 0;
  while (meter_next("a", &cursor, &e) == 0) {
    assert_true((e.key.len == 1 && memcmp(e.key.ptr, "x", 1) == 0) ||
                (e.key.len == 2 && memcmp(e.key.ptr, "bx", 2) == 0));
    sum += e.value;
    n++;
  }
  assert_int_equal(n, 2);
  assert_int_equal(sum, 4);
  assert_int_equal(meter_next("a", &cursor, &e), NNO_ENOENT);
  cursor = 0;
  assert_int_equal(meter_next("zz", &cursor, &e), NNO_ENOENT);
}

/* Keys made to share a home slot (a known secret) are each kept and found,
 * past one another. */
static void test_collisions(void **st) {
  (void)st;
  unsigned char s[16] = {1, 2, 3};
  meter_set_secret(s);
  char keys[4][16];
  int n = 0;
  size_t home = meter_home("p", "c0", 2);
  snprintf(keys[n++], sizeof keys[0], "c0");
  for (int i = 1; n < 4 && i < 100000; i++) {
    char k[16];
    snprintf(k, sizeof k, "c%d", i);
    if (meter_home("p", k, strlen(k)) == home) snprintf(keys[n++], 16, "%s", k);
  }
  assert_int_equal(n, 4);
  for (int i = 0; i < 4; i++)
    assert_int_equal(meter_add("p", keys[i], strlen(keys[i]), (uint64_t)i + 1,
                               0, NULL),
                     0);
  for (int i = 0; i < 4; i++)
    assert_int_equal(value_of("p", keys[i]), (uint64_t)i + 1);
  assert_int_equal(stats().used, 4);
}

/* A process killed between claiming a slot and publishing its key leaves
 * its pid in the slot's state: the next process wanting a key there waits
 * until that pid is gone, takes the slot over and publishes its own key;
 * a lookup meanwhile answers "not there" at once. */
static void test_dead_writer_taken_over(void **st) {
  (void)st;
  int fd[2];
  assert_int_equal(pipe(fd), 0);
  pid_t kid = fork();
  assert_true(kid >= 0);
  if (kid == 0) {
    char ok = meter_hold("p", "k", 1) == 0 ? 'y' : 'n';
    (void)!write(fd[1], &ok, 1);
    _exit(0);
  }
  char ok = 0;
  assert_int_equal(read(fd[0], &ok, 1), 1);
  assert_int_equal(ok, 'y');
  int status;
  assert_int_equal(waitpid(kid, &status, 0), kid);
  uint64_t v = 7;
  assert_int_equal(meter_get("p", "k", 1, &v), NNO_ENOENT);
  assert_int_equal(v, 0);
  assert_int_equal(stats().used, 0);
  uint64_t after = 0;
  assert_int_equal(meter_add("p", "k", 1, 3, 0, &after), 0);
  assert_int_equal(after, 3);
  assert_int_equal(value_of("p", "k"), 3);
  assert_int_equal(stats().used, 1);
  close(fd[0]);
  close(fd[1]);
}

static void test_epoch(void **st) {
  (void)st;
  uint64_t e = meter_epoch();
  assert_true(e != 0);
  /* A forked worker sees the same table, epoch and values. */
  assert_int_equal(meter_add("p", "k", 1, 1, 0, NULL), 0);
  pid_t kid = fork();
  assert_true(kid >= 0);
  if (kid == 0)
    _exit(meter_epoch() == e && meter_add("p", "k", 1, 1, 0, NULL) == 0 ? 0
                                                                        : 1);
  int status;
  assert_int_equal(waitpid(kid, &status, 0), kid);
  assert_int_equal(status, 0);
  assert_int_equal(value_of("p", "k"), 2);
  /* A new table is a new life: a new epoch, every value back at 0. */
  assert_int_equal(table_of(METER_SLOTS_MIN), 0);
  assert_true(meter_epoch() != 0);
  assert_true(meter_epoch() != e);
  assert_int_equal(value_of("p", "k"), 0);
}

/* Handles: a key resolved once is added to by its slot, exactly as by
 * name (caps included), from any process of the table; resolving never
 * creates a key; a handle of another namespace, a zero-filled one or a
 * made-up one adds nothing. */
static void test_handle(void **st) {
  (void)st;
  nno_meter_handle h, z;
  uint64_t after = 7;
  memset(&z, 0, sizeof z);
  assert_int_equal(meter_handle("billing", "a|acme", 6, &h), NNO_ENOENT);
  assert_int_equal(h.epoch, 0);
  assert_int_equal(stats().used, 0); /* not created */
  assert_int_equal(meter_add("billing", "a|acme", 6, 2, 0, NULL), 0);
  assert_int_equal(meter_handle("billing", "a|acme", 6, &h), 0);
  assert_true(h.epoch == meter_epoch());
  assert_int_equal(meter_add_h("billing", &h, 3, 0, &after), 0);
  assert_int_equal(after, 5);
  assert_int_equal(value_of("billing", "a|acme"), 5);
  /* The cap as meter_add's: refused adds change nothing. */
  assert_int_equal(meter_add_h("billing", &h, 1, 6, &after), 0);
  assert_int_equal(after, 6);
  assert_int_equal(meter_add_h("billing", &h, 1, 6, &after), NNO_EREFUSED);
  assert_int_equal(after, 6);
  /* A delta of 0 reads. */
  assert_int_equal(meter_add_h("billing", &h, 0, 0, &after), 0);
  assert_int_equal(after, 6);
  /* Another process adds through the same handle. */
  pid_t kid = fork();
  assert_true(kid >= 0);
  if (kid == 0) _exit(meter_add_h("billing", &h, 4, 0, NULL) == 0 ? 0 : 1);
  int status;
  assert_int_equal(waitpid(kid, &status, 0), kid);
  assert_int_equal(status, 0);
  assert_int_equal(value_of("billing", "a|acme"), 10);
  /* Not another plugin's key, nor a made-up or zero-filled handle. */
  assert_int_equal(meter_add_h("iam", &h, 1, 0, &after), NNO_ENOENT);
  assert_int_equal(after, 0);
  assert_int_equal(meter_add_h("billing", &z, 1, 0, NULL), NNO_ENOENT);
  nno_meter_handle bad = h;
  bad.check ^= 1;
  assert_int_equal(meter_add_h("billing", &bad, 1, 0, NULL), NNO_ENOENT);
  bad = h;
  bad.slot = METER_SLOTS_MIN; /* past the table */
  assert_int_equal(meter_add_h("billing", &bad, 1, 0, NULL), NNO_ENOENT);
  bad = h;
  bad.slot = (h.slot + 1) % METER_SLOTS_MIN; /* an empty slot */
  assert_int_equal(meter_add_h("billing", &bad, 1, 0, NULL), NNO_ENOENT);
  assert_int_equal(value_of("billing", "a|acme"), 10);
  assert_int_equal(stats().used, 1);
  /* Bad arguments as meter_get's. */
  assert_int_equal(meter_handle("billing", "", 0, &h), NNO_EINVAL);
  assert_int_equal(meter_handle("billing", "k", 1, NULL), NNO_EINVAL);
  assert_int_equal(meter_add_h("billing", NULL, 1, 0, NULL), NNO_EINVAL);
}

/* A handle outlives its table: after a new table (a host restart: new
 * epoch) it is refused, even where its slot now holds the same key or
 * another key; a handle given the new epoch still fails on the other key
 * its slot holds now. */
static void test_handle_stale(void **st) {
  (void)st;
  static const unsigned char fixed[16] = {1, 2, 3, 4, 5, 6, 7, 8,
                                          9, 10, 11, 12, 13, 14, 15, 16};
  meter_set_secret(fixed);
  /* Two keys with one home slot. */
  char other[16];
  size_t home = meter_home("p", "k", 1);
  int found = 0;
  for (int i = 0; i < 10000 && !found; i++) {
    snprintf(other, sizeof other, "o%d", i);
    found = meter_home("p", other, strlen(other)) == home;
  }
  assert_true(found);
  nno_meter_handle h;
  assert_int_equal(meter_add("p", "k", 1, 5, 0, NULL), 0);
  assert_int_equal(meter_handle("p", "k", 1, &h), 0);
  assert_int_equal(h.slot, home);

  /* The same key in the same slot of a new table: another epoch. */
  assert_int_equal(table_of(METER_SLOTS_MIN), 0);
  meter_set_secret(fixed);
  assert_int_equal(meter_add("p", "k", 1, 1, 0, NULL), 0);
  uint64_t after = 9;
  assert_int_equal(meter_add_h("p", &h, 1, 0, &after), NNO_ENOENT);
  assert_int_equal(after, 0);
  assert_int_equal(value_of("p", "k"), 1);

  /* Another key in that slot now: refused under either epoch. */
  assert_int_equal(table_of(METER_SLOTS_MIN), 0);
  meter_set_secret(fixed);
  assert_int_equal(meter_add("p", other, strlen(other), 1, 0, NULL), 0);
  nno_meter_handle o;
  assert_int_equal(meter_handle("p", other, strlen(other), &o), 0);
  assert_int_equal(o.slot, h.slot);
  assert_int_equal(meter_add_h("p", &h, 1, 0, NULL), NNO_ENOENT);
  h.epoch = meter_epoch();
  assert_int_equal(meter_add_h("p", &h, 1, 0, NULL), NNO_ENOENT);
  assert_int_equal(value_of("p", other), 1);
  /* Resolved again, it is good. */
  assert_int_equal(meter_add("p", "k", 1, 1, 0, NULL), 0);
  assert_int_equal(meter_handle("p", "k", 1, &h), 0);
  assert_int_equal(meter_add_h("p", &h, 1, 0, &after), 0);
  assert_int_equal(after, 2);

  /* No table at all. */
  meter_fini();
  assert_int_equal(meter_add_h("p", &h, 1, 0, NULL), NNO_ESTATE);
  assert_int_equal(meter_handle("p", "k", 1, &h), NNO_ESTATE);
  assert_int_equal(table_of(METER_SLOTS_MIN), 0);
}

static void test_size_from_configuration(void **st) {
  (void)st;
  nno_config c;
  char err[CONFIG_ERR_MAX];
  config_defaults(&c, ".");
  assert_int_equal(c.meter_slots, 16384);
  assert_int_equal(config_set(&c, "limits.meter_slots", "100", err), 0);
  assert_int_equal(table_of((size_t)c.meter_slots), 0);
  assert_int_equal(stats().total, 100);
  assert_int_equal(config_set(&c, "limits.meter_slots", "63", err), -1);
  assert_non_null(strstr(err, "limits.meter_slots"));
  setenv("NNO_METER_SLOTS", "2048", 1);
  assert_int_equal(config_apply_env(&c, err), 0);
  unsetenv("NNO_METER_SLOTS");
  assert_int_equal(c.meter_slots, 2048);
  meter_fini();
  assert_int_equal(meter_init(METER_SLOTS_MIN - 1), -1);
  assert_int_equal(meter_init(METER_SLOTS_MAX + 1), -1);
  assert_int_equal(meter_init(METER_SLOTS_MIN), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_add_and_get, setup_small),
      cmocka_unit_test_setup(test_cap_is_exact, setup_small),
      cmocka_unit_test_setup(test_exact_across_processes, setup_default),
      cmocka_unit_test_setup(test_table_full, setup_small),
      cmocka_unit_test_setup(test_key_bounds, setup_small),
      cmocka_unit_test_setup(test_namespaces, setup_small),
      cmocka_unit_test_setup(test_collisions, setup_default),
      cmocka_unit_test_setup(test_dead_writer_taken_over, setup_small),
      cmocka_unit_test_setup(test_epoch, setup_small),
      cmocka_unit_test_setup(test_handle, setup_small),
      cmocka_unit_test_setup(test_handle_stale, setup_small),
      cmocka_unit_test_setup(test_size_from_configuration, setup_small),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  meter_fini();
  return rc;
}
