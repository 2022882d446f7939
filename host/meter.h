/* Meters: keyed 64-bit counters in memory shared by every worker (the ABI's
 * meter_add, meter_get, meter_next, meter_epoch; ABI 1.5).
 *
 * One table the master maps before forking (as the rate-limit table,
 * ratelimit.h), so a worker that dies loses nothing it added and every
 * worker sees one value per key. A key is kept whole in its slot (the
 * namespace, a NUL, then the caller's bytes) and never removed while the
 * host runs: meter_next can hand out borrowed pointers to it, and a slot,
 * once it holds a key, holds it for good. The table's life is its epoch, a
 * random non-zero number drawn when it is mapped: a consumer that keeps
 * marks of values elsewhere (sqlite) knows from a new epoch that every
 * value restarted at 0.
 *
 * Slots are found by a keyed hash of the whole key (SipHash under a secret
 * drawn at mapping, so no caller can choose keys that crowd one place) and
 * linear probing. A slot's state word says what it is: empty (0), being
 * written by the process whose pid it holds (> 0), or holding a key
 * (METER_READY). Claiming an empty slot is one compare-and-swap of that
 * word, so two workers adding a new key at once never make two slots for
 * it: the loser waits for the winner's key and compares. A writer killed
 * mid-claim leaves its pid, which a waiter takes over once that process is
 * gone (nothing was published yet). Values change only by atomic
 * compare-and-swap, so a cap holds exactly across workers. */
#ifndef NNO_HOST_METER_H
#define NNO_HOST_METER_H

#include <stddef.h>
#include <stdint.h>

#include <nno/plugin.h>

#define METER_SLOTS_MIN 64
#define METER_SLOTS_MAX 1048576 /* 256 bytes a slot: 256 MiB */
/* 4 MiB mapped MAP_SHARED|MAP_ANONYMOUS: pages no key touched cost nothing. */
#define METER_SLOTS_DEFAULT 16384
/* The longest namespace (a plugin's name, CONFIG_NAME_MAX). */
#define METER_NS_MAX 64

/* Map a table of `slots` slots (METER_SLOTS_MIN..MAX), draw its hash secret
 * and its epoch (master, once, before fork; workers inherit all three).
 * 0, or -1 with errno set. A second call while mapped does nothing. */
int meter_init(size_t slots);

/* Unmap the table (tests; the master keeps it until exit). */
void meter_fini(void);

/* Add `delta` to key `ns` + '\0' + `key` (created at 0): see the ABI's
 * meter_add for `cap`, *after and the codes. NNO_ESTATE when the table was
 * never mapped; NNO_EINVAL for an empty key or namespace (or one over
 * METER_NS_MAX); NNO_ETOOBIG for a key over NNO_METER_KEY_MAX bytes or no
 * free slot for a new key; NNO_EREFUSED past `cap`, or past UINT64_MAX.
 * THREAD: any process that inherited the table, any thread. */
int meter_add(const char *ns, const char *key, size_t key_len, uint64_t delta,
              uint64_t cap, uint64_t *after);

/* The value of a key: 0, or NNO_ENOENT with *value 0 (and the codes of
 * meter_add for bad arguments). Never creates the key. */
int meter_get(const char *ns, const char *key, size_t key_len,
              uint64_t *value);

/* The next key of namespace `ns` from slot *cursor on (start at 0): 0 with
 * out->key (without the namespace; borrowed for the life of the mapping)
 * and out->value filled and *cursor past it, NNO_ENOENT at the end,
 * NNO_EINVAL for an out->size too small for key and value. */
int meter_next(const char *ns, size_t *cursor, nno_meter_entry *out);

/* Resolve an existing key into *h (zero-filled on failure): 0, NNO_ENOENT
 * when the key does not exist (never creates it), the codes of meter_get
 * for bad arguments. */
int meter_handle(const char *ns, const char *key, size_t key_len,
                 nno_meter_handle *h);

/* meter_add on a resolved key, with no hashing and no probe: the handle's
 * epoch, slot, key hash and namespace are checked against the slot, so a
 * handle of another table, another namespace or a made-up one is refused
 * with NNO_ENOENT (nothing added). A `delta` of 0 only reads the value
 * (NNO_EREFUSED if it is already past `cap`). */
int meter_add_h(const char *ns, const nno_meter_handle *h, uint64_t delta,
                uint64_t cap, uint64_t *after);

/* The table's epoch: random, non-zero; 0 when it is not mapped. */
uint64_t meter_epoch(void);

/* How the table is doing (for /metrics). All zero when not mapped. */
typedef struct meter_stats {
  uint64_t total; /* slots */
  uint64_t used;  /* slots holding a key */
  uint64_t full;  /* new keys refused for want of a slot */
} meter_stats;
void meter_get_stats(meter_stats *out);

/* For tests: the home slot of a key, and setting the hash secret (16
 * bytes) so that keys can be made to collide. */
size_t meter_home(const char *ns, const char *key, size_t key_len);
void meter_set_secret(const unsigned char secret[16]);
/* For tests: claim the slot a new key would take and return without
 * publishing it, as a process that dies mid-claim leaves it. 0, or -1 when
 * no empty slot could be claimed. */
int meter_hold(const char *ns, const char *key, size_t key_len);

#endif
