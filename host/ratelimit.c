/* Shared token buckets.
 *
 * Each slot has its own spinlock: the critical section is a few arithmetic
 * operations, shorter than any system call a mutex would risk. Time is
 * CLOCK_MONOTONIC, the same clock in every process. Tokens are kept in
 * millionths so refills need no floating point in the table. */
#include "ratelimit.h"

#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define MICRO 1000000ull

typedef struct slot {
  atomic_flag lock;
  uint8_t used;
  uint8_t key_len;
  char key[LIMIT_KEY_MAX];
  uint64_t hash;
  uint64_t tokens_u; /* millionths of a token */
  uint64_t last_ns;  /* last refill */
} slot;

static slot *table;

int limits_init(void) {
  if (table) return 0;
  void *p = mmap(NULL, sizeof(slot) * LIMIT_BUCKETS, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  table = p; /* zero-filled: every lock clear, every slot free */
  return 0;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t fnv(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h ? h : 1;
}

static void lock(slot *s) {
  unsigned spins = 0;
  while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire))
    if (++spins % 64 == 0) sched_yield();
}

static void unlock(slot *s) {
  atomic_flag_clear_explicit(&s->lock, memory_order_release);
}

int limits_take(const char *key, size_t key_len, double rate_per_s,
                uint32_t burst, uint32_t cost, nno_limit_result *out) {
  if (!table) return NNO_ESTATE;
  if (key_len >= LIMIT_KEY_MAX) return NNO_ETOOBIG;
  uint64_t h = fnv(key, key_len), t = now_ns();
  uint64_t cap_u = (uint64_t)burst * MICRO, cost_u = (uint64_t)cost * MICRO;
  double rate_u_per_ns = rate_per_s * (double)MICRO / 1e9;
  slot *s = NULL, *victim = NULL;
  for (unsigned i = 0; i < LIMIT_PROBE && !s; i++) {
    slot *c = &table[(h + i) % LIMIT_BUCKETS];
    lock(c);
    if (c->used && c->hash == h && c->key_len == key_len &&
        memcmp(c->key, key, key_len) == 0) {
      s = c; /* keep it locked */
      break;
    }
    if (!c->used) {
      /* Claim it: a new bucket starts full. */
      c->used = 1;
      c->hash = h;
      c->key_len = (uint8_t)key_len;
      memcpy(c->key, key, key_len);
      c->tokens_u = cap_u;
      c->last_ns = t;
      s = c;
      break;
    }
    if (!victim || c->last_ns < victim->last_ns) victim = c;
    unlock(c);
  }
  if (!s) {
    /* Every candidate is taken: reuse the least recently used one. */
    s = victim;
    lock(s);
    s->hash = h;
    s->key_len = (uint8_t)key_len;
    memcpy(s->key, key, key_len);
    s->tokens_u = cap_u;
    s->last_ns = t;
  }
  if (t > s->last_ns) {
    double add = (double)(t - s->last_ns) * rate_u_per_ns;
    uint64_t tok = s->tokens_u + (add > (double)cap_u ? cap_u : (uint64_t)add);
    s->tokens_u = tok > cap_u ? cap_u : tok;
    s->last_ns = t;
  }
  if (s->tokens_u > cap_u) s->tokens_u = cap_u; /* the burst was lowered */
  out->limit = burst;
  out->allowed = s->tokens_u >= cost_u;
  if (out->allowed) s->tokens_u -= cost_u;
  uint64_t have = s->tokens_u;
  unlock(s);
  out->remaining = (uint32_t)(have / MICRO);
  uint64_t missing = out->allowed || have >= cost_u ? 0 : cost_u - have;
  out->retry_after_ms = (uint64_t)((double)missing / rate_u_per_ns / 1e6) +
                        (missing ? 1 : 0);
  out->reset_ms = (uint64_t)((double)(cap_u - have) / rate_u_per_ns / 1e6);
  return 0;
}
