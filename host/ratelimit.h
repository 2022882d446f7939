/* Token buckets in shared memory: one table the master maps before forking,
 * used by every worker, so a limit holds across workers exactly.
 *
 * A bucket is found by a keyed hash of its key (SipHash with a secret drawn
 * at boot, before the fork, so every worker agrees and no client can choose
 * keys that land together). A key may sit in any of LIMIT_PROBE slots from
 * its home slot.
 *
 * What gets thrown out, and when. Only a bucket that has refilled to its
 * burst is equivalent to a fresh one; its slot may be reused for another
 * key (counted as an eviction). A bucket that refuses, or has given out a
 * token it has not yet earned back, is never thrown out: that would unlock
 * a lock-out. When no slot near a new key is free or full, the table
 * cannot hold that key, and the answer refuses (allowed 0, remaining 0,
 * limit 0, Retry-After until the first of those buckets refills; counted as
 * "full").
 * Failing closed is the safe side: a client flooding the table with keys it
 * keeps busy can make new keys refuse (its own, and those of others that
 * land beside them, until the busy buckets refill), but it can never free
 * a bucket that is counting someone's failures. With a secret hash it has
 * to fill the whole table, not one neighbourhood: size
 * limits.rate_buckets to several times the keys that are busy at once.
 *
 * Slot locks hold the owner's pid: a worker killed while holding one does
 * not block the slot for ever (see ratelimit.c). */
#ifndef NNO_HOST_RATELIMIT_H
#define NNO_HOST_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include <nno/plugin.h>

#define LIMIT_KEY_MAX 128
#define LIMIT_PROBE 32 /* slots a key may use, from its home slot on */
#define LIMIT_BUCKETS_MIN 64
#define LIMIT_BUCKETS_MAX 4194304 /* 32 bytes a slot: 128 MiB */
/* 8 MiB of shared memory, mapped MAP_SHARED|MAP_ANONYMOUS: pages no key
 * has touched cost nothing. Filling it takes a quarter of a million keys
 * kept busy at once. */
#define LIMIT_BUCKETS_DEFAULT 262144

/* Map a table of `buckets` slots (LIMIT_BUCKETS_MIN..MAX) and draw its hash
 * secret (master, once, before fork; workers inherit both). 0, or -1 with
 * errno set. A second call while mapped does nothing. */
int limits_init(size_t buckets);

/* Unmap the table (tests; the master keeps it until exit). */
void limits_fini(void);

/* Take `cost` tokens from bucket `key` (see the ABI's limit_take). Returns 0
 * with *out filled (refusing when the table cannot hold a new key), or
 * NNO_ESTATE if the table was never mapped, NNO_ETOOBIG for a key of
 * LIMIT_KEY_MAX bytes or more, NNO_EINVAL for a rate that is not positive or
 * a burst of 0. THREAD: any process that inherited the table, one thread
 * each (the lock is per process). No system call unless a slot's lock is
 * contended for long. */
int limits_take(const char *key, size_t key_len, double rate_per_s,
                uint32_t burst, uint32_t cost, nno_limit_result *out);

/* How the table is doing, summed over every process (for /metrics). */
typedef struct limits_stats {
  uint64_t total;     /* slots */
  uint64_t used;      /* slots holding a bucket (slots are never emptied) */
  uint64_t evictions; /* full buckets whose slot went to another key */
  uint64_t full;      /* takes refused because no slot could be had */
  uint64_t steals;    /* slot locks taken over from a dead process */
} limits_stats;

/* Fill *out; all zero when the table is not mapped. */
void limits_get_stats(limits_stats *out);

/* For tests: the home slot of `key` under the current secret, and setting
 * the secret (16 bytes) so keys can be chosen to land together, as they
 * would under a known hash. Not for production use. */
size_t limits_home(const char *key, size_t key_len);
void limits_set_secret(const unsigned char secret[16]);
/* For tests: take `key`'s bucket (creating it) and return with its slot
 * locked, as a process that dies mid-take would leave it. 0, or -1 when no
 * slot could be had. */
int limits_hold(const char *key, size_t key_len);

#endif
