/* Shared token buckets (policy in ratelimit.h).
 *
 * A bucket is one number: `tat`, the CLOCK_MONOTONIC time (ns) at which it
 * is full again (the "theoretical arrival time" of GCRA). Tokens at time t
 * are burst - (tat - t) / interval; taking c tokens moves tat to
 * max(tat, t) + c * interval, allowed while that stays within burst
 * intervals of t. A bucket with tat <= now is full, so reusable. One 64-bit
 * store changes a bucket: there is no half-updated refill.
 *
 * A key is known by a 128-bit SipHash of it under the boot secret: `id`
 * (never 0; 0 marks a slot never used) and `id2`. Without the secret no one
 * can make two keys agree on 128 bits, so the key text is not kept and a
 * slot is 32 bytes, two to a cache line.
 *
 * Finding a key reads `id` of the slots in its window without locking and
 * locks only the slot that matches: one compare-and-swap on the fast path.
 * Slots are never emptied once used (a reused slot changes key, never
 * goes back to 0), so a never-used slot ends the search: the key is not
 * further on. Two first takes of one key racing may create it twice; the
 * copy further along the window is never found again, refills and is
 * reused. That loses the tokens taken from it, never a refusal.
 *
 * Each slot has its own spinlock, a word holding the owner's pid (0 when
 * free): the critical section is a few loads and one store, shorter than
 * any system call a mutex would risk. A waiter that has spun a while asks
 * the kernel whether the owner still exists (kill(pid, 0)) and, if it does
 * not, takes the lock over. What a dead owner can have left behind is sane:
 * - a take writes `tat` only, in one store: old or new, both true states;
 * - a claim of an unused slot writes id2 and tat, then publishes `id`
 *   last: before that the slot is still unused;
 * - a reuse (of a full bucket) writes tat = now (still full), then id2,
 *   then id: in between the slot matches no key and is full, so it is
 *   reused again; the bucket it held was full, as good as absent.
 * A zombie owner counts as alive until the master reaps it; an owner whose
 * pid already went to a new process is waited for (pids are not reused
 * that fast), unless the new process is the waiter itself. */
#include "ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

typedef struct slot {
  _Atomic int32_t owner; /* pid holding the lock, 0 when free */
  uint32_t unused;
  _Atomic uint64_t id;  /* first half of the key's hash; 0: never used */
  uint64_t id2;         /* second half; read and written under the lock */
  _Atomic uint64_t tat; /* when the bucket is full again (ns) */
} slot;

_Static_assert(sizeof(slot) == 32, "two slots to a cache line");

/* Counters, on their own cache line before the slots. */
typedef struct header {
  _Atomic uint64_t used, evictions, full, steals;
  char pad[32];
} header;

_Static_assert(sizeof(header) == 64, "the slots start on a cache line");

static header *hdr;
static slot *table;
static size_t nslots, map_len;
static unsigned probe;
static unsigned char secret[crypto_shorthash_siphashx24_KEYBYTES];
/* This process's pid, for the lock word without a system call; reset in
 * every child by the fork handler. */
static int32_t self_pid;

#define SPIN_YIELD 64         /* spins between sched_yield() */
#define SPIN_CHECK 4096       /* spins between asking if the owner lives */
#define TIME_CAP (1ull << 62) /* ns; 146 years: sums below stay in range */

static void after_fork(void) {
  self_pid = (int32_t)getpid();
}

int limits_init(size_t buckets) {
  static int atfork;
  if (table) return 0;
  if (buckets < LIMIT_BUCKETS_MIN || buckets > LIMIT_BUCKETS_MAX ||
      sodium_init() < 0) {
    errno = EINVAL;
    return -1;
  }
  if (!atfork && pthread_atfork(NULL, NULL, after_fork) != 0) return -1;
  atfork = 1;
  size_t len = sizeof(header) + sizeof(slot) * buckets;
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) return -1;
  /* Zero-filled: every lock free, every slot unused, counters 0. */
  hdr = p;
  table = (slot *)(hdr + 1);
  nslots = buckets;
  map_len = len;
  probe = buckets < LIMIT_PROBE ? (unsigned)buckets : LIMIT_PROBE;
  randombytes_buf(secret, sizeof secret);
  self_pid = (int32_t)getpid();
  return 0;
}

void limits_fini(void) {
  if (!table) return;
  munmap(hdr, map_len);
  hdr = NULL;
  table = NULL;
  nslots = map_len = 0;
  sodium_memzero(secret, sizeof secret);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no system call */
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void key_hash(const char *key, size_t len, uint64_t h[2]) {
  unsigned char out[crypto_shorthash_siphashx24_BYTES];
  crypto_shorthash_siphashx24(out, (const unsigned char *)key, len, secret);
  memcpy(h, out, sizeof out);
  if (h[0] == 0) h[0] = 1;
}

/* Maps the hash onto [0, nslots) by multiplication, not a division. */
static size_t home_of(uint64_t id) {
  return (size_t)(((unsigned __int128)id * nslots) >> 64);
}

/* ---- slot locks --------------------------------------------------------- */

static int try_lock(slot *s, int32_t expect) {
  return atomic_compare_exchange_strong_explicit(
      &s->owner, &expect, self_pid, memory_order_acquire, memory_order_relaxed);
}

/* The owner `pid` is gone for good: not a process any more, or this very
 * process (which never holds a slot while waiting for one, so the lock was
 * left by an earlier process that had our pid). */
static int owner_dead(int32_t pid) {
  if (pid == self_pid) return 1;
  int saved = errno, dead = kill(pid, 0) != 0 && errno == ESRCH;
  errno = saved;
  return dead;
}

static void lock_slow(slot *s) {
  for (unsigned spins = 1;; spins++) {
    int32_t o = atomic_load_explicit(&s->owner, memory_order_relaxed);
    if (o == 0) {
      if (try_lock(s, 0)) return;
      continue;
    }
    if (spins % SPIN_YIELD == 0) sched_yield();
    if (spins % SPIN_CHECK == 0 && owner_dead(o) && try_lock(s, o)) {
      atomic_fetch_add_explicit(&hdr->steals, 1, memory_order_relaxed);
      return;
    }
  }
}

static inline void lock(slot *s) {
  if (!try_lock(s, 0)) lock_slow(s);
}

static inline void unlock(slot *s) {
  atomic_store_explicit(&s->owner, 0, memory_order_release);
}

/* ---- finding a bucket --------------------------------------------------- */

static int is_key(slot *s, const uint64_t h[2]) {
  return atomic_load_explicit(&s->id, memory_order_relaxed) == h[0] &&
         s->id2 == h[1];
}

/* The slot of bucket `h`, created (full, tat = t) when absent, returned
 * locked; NULL when no slot in its window is unused or full, with *soonest
 * the earliest time one of them will be full. */
static slot *acquire(const uint64_t h[2], uint64_t t, uint64_t *soonest) {
  *soonest = UINT64_MAX;
  for (int attempt = 0; attempt < 4; attempt++) {
    slot *cand = NULL;
    size_t i = home_of(h[0]);
    for (unsigned k = 0; k < probe; k++, i = i + 1 == nslots ? 0 : i + 1) {
      slot *c = &table[i];
      uint64_t id = atomic_load_explicit(&c->id, memory_order_acquire);
      if (id == h[0]) {
        lock(c);
        if (is_key(c, h)) return c;
        unlock(c); /* the other half differs, or it was just reused */
        continue;
      }
      if (id == 0) { /* never used: the key is not further on */
        if (!cand) cand = c;
        break;
      }
      uint64_t full_at = atomic_load_explicit(&c->tat, memory_order_relaxed);
      if (full_at <= t) {
        if (!cand) cand = c;
      } else if (full_at < *soonest) {
        *soonest = full_at;
      }
    }
    if (!cand) return NULL;
    lock(cand);
    /* Look again under the lock: another process may have got there. */
    uint64_t id = atomic_load_explicit(&cand->id, memory_order_relaxed);
    if (id == h[0] && cand->id2 == h[1]) return cand; /* same key, created */
    if (id == 0) {
      atomic_store_explicit(&cand->tat, t, memory_order_relaxed);
      cand->id2 = h[1];
      atomic_store_explicit(&cand->id, h[0], memory_order_release);
      atomic_fetch_add_explicit(&hdr->used, 1, memory_order_relaxed);
      return cand;
    }
    if (atomic_load_explicit(&cand->tat, memory_order_relaxed) <= t) {
      /* Full: the bucket it holds is as good as a fresh one. The order of
       * the stores keeps the slot sane if we die between them (above). */
      atomic_store_explicit(&cand->tat, t, memory_order_relaxed);
      atomic_thread_fence(memory_order_release);
      cand->id2 = h[1];
      atomic_store_explicit(&cand->id, h[0], memory_order_release);
      atomic_fetch_add_explicit(&hdr->evictions, 1, memory_order_relaxed);
      return cand;
    }
    unlock(cand); /* taken by another key meanwhile: look again */
  }
  return NULL;
}

/* ---- taking ------------------------------------------------------------- */

/* x * n in ns, at most TIME_CAP. */
static uint64_t times(uint64_t x, uint64_t n) {
  return n && x > TIME_CAP / n ? TIME_CAP : x * n;
}

static uint64_t ceil_ms(uint64_t ns) {
  return (ns + 999999) / 1000000;
}

int limits_take(const char *key, size_t key_len, double rate_per_s,
                uint32_t burst, uint32_t cost, nno_limit_result *out) {
  if (!table) return NNO_ESTATE;
  if (key_len >= LIMIT_KEY_MAX) return NNO_ETOOBIG;
  if (!(rate_per_s > 0) || burst == 0) return NNO_EINVAL;
  /* Whole nanoseconds per token: exact integer arithmetic from here on. */
  double per_d = 1e9 / rate_per_s;
  uint64_t per = TIME_CAP;
  if (per_d < 1)
    per = 1;
  else if (per_d < (double)TIME_CAP)
    per = (uint64_t)(per_d + 0.5);
  uint64_t tau = times(per, burst), need = times(per, cost);
  uint64_t h[2], t = now_ns(), soonest;
  key_hash(key, key_len, h);
  out->limit = burst;
  slot *s = acquire(h, t, &soonest);
  if (!s) {
    /* Fail closed: see ratelimit.h. limit 0 says why: no bucket answered
     * (one that exists always has limit == burst >= 1), the table is full. */
    atomic_fetch_add_explicit(&hdr->full, 1, memory_order_relaxed);
    uint64_t wait = soonest != UINT64_MAX && soonest > t ? soonest - t : 1;
    out->limit = 0;
    out->allowed = 0;
    out->remaining = 0;
    out->retry_after_ms = ceil_ms(wait);
    out->reset_ms = out->retry_after_ms;
    return 0;
  }
  /* The time is read again under the slot's lock: a worker that read the
   * clock before another but took the lock after it would otherwise see
   * the other's take as lying ahead of its own "now", and count a token
   * fewer (remaining 0 where 1 is left). */
  t = now_ns();
  uint64_t tat = atomic_load_explicit(&s->tat, memory_order_relaxed);
  uint64_t base = tat > t ? tat : t, next = base + need;
  int allowed = next - t <= tau;
  if (allowed && need)
    atomic_store_explicit(&s->tat, next, memory_order_relaxed);
  unlock(s);
  uint64_t debt = (allowed ? next : base) - t; /* until full again */
  out->allowed = allowed;
  out->remaining = debt >= tau ? 0 : (uint32_t)((tau - debt) / per);
  out->retry_after_ms = allowed ? 0 : ceil_ms(next - t - tau);
  out->reset_ms = debt / 1000000;
  return 0;
}

void limits_get_stats(limits_stats *out) {
  memset(out, 0, sizeof *out);
  if (!table) return;
  out->total = nslots;
  out->used = atomic_load_explicit(&hdr->used, memory_order_relaxed);
  out->evictions = atomic_load_explicit(&hdr->evictions, memory_order_relaxed);
  out->full = atomic_load_explicit(&hdr->full, memory_order_relaxed);
  out->steals = atomic_load_explicit(&hdr->steals, memory_order_relaxed);
}

/* ---- test hooks --------------------------------------------------------- */

size_t limits_home(const char *key, size_t key_len) {
  uint64_t h[2];
  key_hash(key, key_len, h);
  return home_of(h[0]);
}

void limits_set_secret(const unsigned char s[16]) {
  memcpy(secret, s, sizeof secret);
}

int limits_hold(const char *key, size_t key_len) {
  uint64_t h[2], soonest;
  if (!table) return -1;
  key_hash(key, key_len, h);
  return acquire(h, now_ns(), &soonest) ? 0 : -1;
}
