/* Quarantine of crashing packages: a table in memory shared by the master
 * and every worker (mapped by the master before forking, like the rate
 * limits), keyed by (platform, stack id, package, version): a package of
 * one stack never quarantines another stack's package of the same name.
 * The key's hash is seeded at random when the table is mapped.
 *
 * `sandbox.crash_limit` crashes within `sandbox.crash_window_ms` put the
 * key in quarantine for `sandbox.quarantine_ms`, doubled for each level
 * reached before (at most an hour). While quarantined, the package's
 * requests on that platform are answered 503 with Retry-After before its
 * handler runs (gateway dispatch, in-process and sandboxed alike). When a
 * quarantine ends (its time passes, or the operator releases it) the key
 * is on probation for one crash window: a crash then quarantines it again
 * at once, for twice as long.
 *
 * An entry in quarantine (or with an event not yet delivered) is never
 * evicted to make room. A key may sit in any slot, probing from its home
 * slot; when every slot holds such an entry, the crash quarantines that
 * stack's package version on every platform instead (a wildcard entry,
 * platform "*": fail closed), and says so in the log.
 *
 * Also here, because they live in the same shared segment: one crash
 * record per worker slot (crash.c writes it from its signal handler, the
 * master reads it when it reaps the worker) and the per-package count of
 * worker crashes for /metrics. */
#ifndef NNO_HOST_QUARANTINE_H
#define NNO_HOST_QUARANTINE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <nno/plugin.h>

#include "config.h"

struct worker;

#define QUARANTINE_SLOTS_DEFAULT 1024
#define QUARANTINE_SLOTS_MIN 4
#define QUARANTINE_SLOTS_MAX 65536
#define QUARANTINE_PROBE 32  /* slots a key may use, from its home slot */
#define QUARANTINE_WILD 16   /* package versions quarantined everywhere */
#define QUARANTINE_RING 1000 /* crash times kept: sandbox.crash_limit max */
#define QUARANTINE_MAX_MS 3600000 /* the backoff's cap: an hour */
#define QUARANTINE_PKG_COUNTS 64  /* packages with a worker-crash count */

/* Map the table of `slots` slots (QUARANTINE_SLOTS_MIN..MAX; master, once,
 * before fork; workers inherit it). 0, or -1 with errno set. A second call
 * while mapped does nothing. */
int quarantine_init(size_t slots);
/* Unmap it (tests). */
void quarantine_fini(void);

/* What a refused request says. */
typedef struct quarantine_info {
  uint64_t retry_after_s; /* whole seconds, at least 1 */
  uint32_t crashes;
  char reason[64];
} quarantine_info;

/* Is (platform, stack id `sid`, package, version) quarantined now? 0 no;
 * 1 yes with *out filled. A single atomic load when nothing is
 * quarantined. */
int quarantine_check(const char *platform, const char *sid,
                     const char *package, const char *version,
                     quarantine_info *out);

/* In dispatch (and sandbox_handler): when the request's package (a feature
 * package: r->plugin has a stack) is quarantined on the request's
 * platform, answer it 503 problem+json with Retry-After naming the
 * package, version and crashes, and return 1; else 0, nothing written. */
int quarantine_refuse(nno_req *r);

/* Count a crash of package@version (stack "id@version") on `platform`
 * ("" when the crash had no platform), with a one-line reason ("SIGSEGV")
 * and the request id ("" if none). Returns 1 when this crash put it in
 * quarantine, 0 when counted only, -1 when not recorded (bad arguments, or
 * no table). Async-signal-safe it is not: the master and workers call it
 * from their loops. */
int quarantine_note_crash(const nno_config *cfg, const char *platform,
                          const char *package, const char *version,
                          const char *stack, const char *reason,
                          const char *rid);

/* For the ABI (quarantine_at, quarantine_release): the i-th quarantined
 * key (NNO_ENOENT past the last; views into a per-process copy, valid
 * until the next call), and an operator's release (NNO_ENOENT when the
 * key is not quarantined, NNO_EINVAL for bad arguments). */
int quarantine_at(size_t i, nno_quarantine *out);
int quarantine_release(const char *platform, const char *package,
                       const char *version); /* every stack's entry */

/* An event not yet delivered to core plugins, as claimed. */
typedef struct quarantine_event {
  int kind; /* NNO_HOST_EVENT_QUARANTINE or _RELEASE */
  char platform[33], package[65], version[65], stack[130];
  char reason[64], rid[73];
  uint32_t crashes;
  uint64_t until_ms;
} quarantine_event;

/* Claim one undelivered event: 1 with *out filled (no other process will
 * get it), 0 when there is none (one atomic load). */
int quarantine_claim(quarantine_event *out);

/* In a worker: deliver the events not yet delivered (a new quarantine, a
 * release) to core plugins' on_host_event, each exactly once across the
 * workers. Cheap when there is none (one atomic load). */
void quarantine_poll(struct worker *w);
/* Start polling once a second too (events come from the master's reaping
 * while no request arrives). */
void quarantine_start(struct worker *w);
/* Close that timer (the worker's loop is ending). */
void quarantine_stop(struct worker *w);

/* ---- worker crash records (crash.c writes, master.c reads) ------------ */

typedef struct quarantine_crash {
  _Atomic int state; /* 0 empty, 1 written */
  int signal;
  char platform[33], package[65], version[65], stack[130];
  char rid[73], method[16], path[128];
} quarantine_crash;

/* The record of worker slot `slot` (0..METRICS_MAX_WORKERS-1), NULL when
 * the table is not mapped or the slot is out of range. */
quarantine_crash *quarantine_crash_slot(int slot);

/* Master: count a worker crash of `package` ("" for none: host code). */
void quarantine_count_worker_crash(const char *package);

/* For /metrics. */
typedef struct quarantine_stats {
  uint64_t total; /* quarantines started since boot */
  uint64_t full;  /* crashes that found no slot (wildcard, or lost) */
} quarantine_stats;
void quarantine_get_stats(quarantine_stats *out);
/* The i-th package with a worker-crash count: 0 with name and count, or
 * -1 past the last. `name` holds 65 bytes. */
int quarantine_pkg_crashes_at(size_t i, char *name, uint64_t *count);

/* Tests: the clock the table uses (unix ms); 0 goes back to the real one. */
void quarantine_set_now(uint64_t ms);

#endif
