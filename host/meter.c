/* Shared meters (policy and layout in meter.h).
 *
 * A slot is 256 bytes: the state word, the key's lengths, its hash, the
 * value and the key itself. The key, its lengths and its hash are written
 * by the one process that claimed the slot (state = its pid) and published
 * by the release store of METER_READY; readers load the state with acquire
 * before they look at them, and they never change after. Only `value`
 * changes after publication, by compare-and-swap.
 *
 * Why probing can stop early: slots go empty -> writing -> ready and never
 * back, and an inserter waits for a slot being written before it passes
 * it. So a key that lies past a slot went there when that slot was already
 * ready: an empty slot ends the search for any key, and a slot still being
 * written ends a lookup (the key is in it, being created now at 0, or
 * nowhere). */
#include "meter.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define METER_READY (-1)
#define FULL_MAX (METER_NS_MAX + 1 + NNO_METER_KEY_MAX)

typedef struct slot {
  _Atomic int32_t state; /* 0 empty, > 0 pid writing, METER_READY */
  uint16_t len;          /* of key[]: namespace, NUL, caller's key */
  uint16_t ns_len;
  uint64_t hash;
  _Atomic uint64_t value;
  char key[232];
} slot;

_Static_assert(sizeof(slot) == 256, "four slots to 1 KiB");
_Static_assert(FULL_MAX <= 232, "a whole key fits its slot");

/* The table's own numbers, on a cache line before the slots. */
typedef struct header {
  uint64_t epoch; /* written once, before any fork */
  _Atomic uint64_t used, full;
  char pad[40];
} header;

_Static_assert(sizeof(header) == 64, "the slots start on a cache line");

static header *hdr;
static slot *table;
static size_t nslots, map_len;
static unsigned char secret[crypto_shorthash_siphash24_KEYBYTES];
/* This process's pid for the state word without a system call; reset in
 * every child by the fork handler. */
static int32_t self_pid;

#define SPIN_YIELD 64   /* spins between sched_yield() */
#define SPIN_CHECK 4096 /* spins between asking if the writer lives */

static void after_fork(void) {
  self_pid = (int32_t)getpid();
}

int meter_init(size_t slots) {
  static int atfork;
  if (table) return 0;
  if (slots < METER_SLOTS_MIN || slots > METER_SLOTS_MAX ||
      sodium_init() < 0) {
    errno = EINVAL;
    return -1;
  }
  if (!atfork && pthread_atfork(NULL, NULL, after_fork) != 0) return -1;
  atfork = 1;
  size_t len = sizeof(header) + sizeof(slot) * slots;
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) return -1;
  hdr = p; /* zero-filled: every slot empty, counters 0 */
  table = (slot *)(hdr + 1);
  nslots = slots;
  map_len = len;
  randombytes_buf(secret, sizeof secret);
  do
    randombytes_buf(&hdr->epoch, sizeof hdr->epoch);
  while (hdr->epoch == 0);
  self_pid = (int32_t)getpid();
  return 0;
}

void meter_fini(void) {
  if (!table) return;
  munmap(hdr, map_len);
  hdr = NULL;
  table = NULL;
  nslots = map_len = 0;
  sodium_memzero(secret, sizeof secret);
}

uint64_t meter_epoch(void) {
  return hdr ? hdr->epoch : 0;
}

/* ---- keys ---------------------------------------------------------------- */

/* Check the arguments and write ns + '\0' + key into full[]: its length, or
 * a negative NNO_E code. */
static int make_key(const char *ns, const char *key, size_t key_len,
                    char full[FULL_MAX], size_t *ns_len) {
  if (!table) return NNO_ESTATE;
  if (!ns || !key || key_len == 0) return NNO_EINVAL;
  size_t nl = strlen(ns);
  if (nl == 0 || nl > METER_NS_MAX) return NNO_EINVAL;
  if (key_len > NNO_METER_KEY_MAX) return NNO_ETOOBIG;
  memcpy(full, ns, nl + 1);
  memcpy(full + nl + 1, key, key_len);
  *ns_len = nl;
  return (int)(nl + 1 + key_len);
}

static uint64_t hash_of(const char *full, size_t len) {
  uint64_t h;
  crypto_shorthash_siphash24((unsigned char *)&h, (const unsigned char *)full,
                             len, secret);
  return h;
}

/* Maps the hash onto [0, nslots) by multiplication, not a division. */
static size_t home_of(uint64_t h) {
  return (size_t)(((unsigned __int128)h * nslots) >> 64);
}

/* The writer `pid` is gone for good: not a process any more, or this very
 * process (which never waits while it writes a slot, so the claim was left
 * by an earlier process that had our pid). */
static int writer_dead(int32_t pid) {
  if (pid == self_pid) return 1;
  int saved = errno, dead = kill(pid, 0) != 0 && errno == ESRCH;
  errno = saved;
  return dead;
}

/* Fill a slot this process claimed, then publish it. */
static void publish(slot *s, const char *full, size_t len, size_t ns_len,
                    uint64_t h) {
  s->len = (uint16_t)len;
  s->ns_len = (uint16_t)ns_len;
  s->hash = h;
  memcpy(s->key, full, len);
  atomic_store_explicit(&s->value, 0, memory_order_relaxed);
  atomic_store_explicit(&s->state, METER_READY, memory_order_release);
  atomic_fetch_add_explicit(&hdr->used, 1, memory_order_relaxed);
}

/* The slot of a key: found, or (create) claimed and published. NULL with
 * *rc NNO_ENOENT (not there, !create) or NNO_ETOOBIG (no slot left). */
static slot *find(const char *full, size_t len, size_t ns_len, int create,
                  int *rc) {
  uint64_t h = hash_of(full, len);
  size_t i = home_of(h);
  for (size_t k = 0; k < nslots; k++, i = i + 1 == nslots ? 0 : i + 1) {
    slot *s = &table[i];
    for (unsigned spins = 1;; spins++) {
      int32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
      if (st == METER_READY) {
        if (s->hash == h && s->len == len && memcmp(s->key, full, len) == 0)
          return s;
        break; /* another key: probe on */
      }
      if (!create) {
        *rc = NNO_ENOENT; /* empty, or being written: see the top */
        return NULL;
      }
      int32_t expect = st;
      if (st == 0 || (spins % SPIN_CHECK == 0 && writer_dead(st))) {
        if (atomic_compare_exchange_strong_explicit(
                &s->state, &expect, self_pid, memory_order_acquire,
                memory_order_relaxed)) {
          publish(s, full, len, ns_len, h);
          return s;
        }
        continue; /* someone else claimed it: look at what it becomes */
      }
      if (spins % SPIN_YIELD == 0) sched_yield();
    }
  }
  if (!create) {
    *rc = NNO_ENOENT; /* a full table, and not in it */
    return NULL;
  }
  atomic_fetch_add_explicit(&hdr->full, 1, memory_order_relaxed);
  *rc = NNO_ETOOBIG;
  return NULL;
}

/* ---- the calls ----------------------------------------------------------- */

/* Add to the value of a found slot: the compare-and-swap loop of meter_add
 * and meter_add_h. A `delta` of 0 writes nothing. */
static int slot_add(slot *s, uint64_t delta, uint64_t cap, uint64_t *after) {
  uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed), nv;
  do {
    if (delta > UINT64_MAX - v || (cap && v + delta > cap)) {
      if (after) *after = v;
      return NNO_EREFUSED;
    }
    nv = v + delta;
  } while (delta && !atomic_compare_exchange_weak_explicit(
                        &s->value, &v, nv, memory_order_relaxed,
                        memory_order_relaxed));
  if (after) *after = nv;
  return 0;
}

int meter_add(const char *ns, const char *key, size_t key_len, uint64_t delta,
              uint64_t cap, uint64_t *after) {
  char full[FULL_MAX];
  size_t nl;
  int len = make_key(ns, key, key_len, full, &nl), rc = 0;
  if (len < 0) return len;
  slot *s = find(full, (size_t)len, nl, 1, &rc);
  if (!s) return rc;
  return slot_add(s, delta, cap, after);
}

int meter_handle(const char *ns, const char *key, size_t key_len,
                 nno_meter_handle *h) {
  char full[FULL_MAX];
  size_t nl;
  if (!h) return NNO_EINVAL;
  memset(h, 0, sizeof *h);
  int len = make_key(ns, key, key_len, full, &nl), rc = 0;
  if (len < 0) return len;
  slot *s = find(full, (size_t)len, nl, 0, &rc);
  if (!s) return rc;
  h->epoch = hdr->epoch;
  h->check = s->hash;
  h->slot = (uint32_t)(s - table);
  return 0;
}

int meter_add_h(const char *ns, const nno_meter_handle *h, uint64_t delta,
                uint64_t cap, uint64_t *after) {
  if (after) *after = 0;
  if (!table) return NNO_ESTATE;
  if (!ns || !h) return NNO_EINVAL;
  /* The slot's key, hash and namespace never change once it is ready
   * (meter.c's top), so one look at them proves the handle. */
  if (h->epoch != hdr->epoch || h->slot >= nslots) return NNO_ENOENT;
  slot *s = &table[h->slot];
  size_t nl = strlen(ns);
  if (atomic_load_explicit(&s->state, memory_order_acquire) != METER_READY ||
      s->hash != h->check || s->ns_len != nl || memcmp(s->key, ns, nl) != 0)
    return NNO_ENOENT;
  return slot_add(s, delta, cap, after);
}

int meter_get(const char *ns, const char *key, size_t key_len,
              uint64_t *value) {
  char full[FULL_MAX];
  size_t nl;
  if (value) *value = 0;
  if (!value) return NNO_EINVAL;
  int len = make_key(ns, key, key_len, full, &nl), rc = 0;
  if (len < 0) return len;
  slot *s = find(full, (size_t)len, nl, 0, &rc);
  if (!s) return rc;
  *value = atomic_load_explicit(&s->value, memory_order_relaxed);
  return 0;
}

int meter_next(const char *ns, size_t *cursor, nno_meter_entry *out) {
  if (!table) return NNO_ESTATE;
  if (!ns || !cursor || !out ||
      out->size < offsetof(nno_meter_entry, value) + sizeof out->value)
    return NNO_EINVAL;
  size_t nl = strlen(ns);
  for (size_t i = *cursor; i < nslots; i++) {
    slot *s = &table[i];
    if (atomic_load_explicit(&s->state, memory_order_acquire) != METER_READY ||
        s->ns_len != nl || memcmp(s->key, ns, nl) != 0)
      continue;
    out->key.ptr = s->key + nl + 1;
    out->key.len = (size_t)s->len - nl - 1;
    out->value = atomic_load_explicit(&s->value, memory_order_relaxed);
    *cursor = i + 1;
    return 0;
  }
  *cursor = nslots;
  return NNO_ENOENT;
}

void meter_get_stats(meter_stats *out) {
  memset(out, 0, sizeof *out);
  if (!table) return;
  out->total = nslots;
  out->used = atomic_load_explicit(&hdr->used, memory_order_relaxed);
  out->full = atomic_load_explicit(&hdr->full, memory_order_relaxed);
}

/* ---- test hooks ---------------------------------------------------------- */

size_t meter_home(const char *ns, const char *key, size_t key_len) {
  char full[FULL_MAX];
  size_t nl;
  int len = make_key(ns, key, key_len, full, &nl);
  return len < 0 ? 0 : home_of(hash_of(full, (size_t)len));
}

void meter_set_secret(const unsigned char s[16]) {
  memcpy(secret, s, sizeof secret);
}

int meter_hold(const char *ns, const char *key, size_t key_len) {
  char full[FULL_MAX];
  size_t nl;
  int len = make_key(ns, key, key_len, full, &nl);
  if (len < 0) return -1;
  size_t i = home_of(hash_of(full, (size_t)len));
  for (size_t k = 0; k < nslots; k++, i = i + 1 == nslots ? 0 : i + 1) {
    int32_t expect = 0;
    if (atomic_compare_exchange_strong(&table[i].state, &expect, self_pid))
      return 0;
  }
  return -1;
}
