/* Quarantine of crashing packages: a table in memory shared by the master
 * and every worker (mapped by the master before forking, like the rate
 * limits), keyed by (platform, package, version).
 *
 * `sandbox.crash_limit` crashes within `sandbox.crash_window_ms` put the
 * key in quarantine for `sandbox.quarantine_ms`, doubled for each level
 * reached before (at most an hour). While quarantined, the package's
 * requests on that platform are answered 503 with Retry-After before its
 * handler runs (gateway dispatch, in-process and sandboxed alike). An
 * entry in quarantine is never evicted to make room: when the table is
 * full of quarantined entries a crash of a new key quarantines... that key
 * too (fail closed), and says so in the log. */
#ifndef NNO_HOST_QUARANTINE_H
#define NNO_HOST_QUARANTINE_H

#include <stddef.h>
#include <stdint.h>

#include <nno/plugin.h>

#include "config.h"

struct worker;

/* Map the table (master, once, before fork). 0 or -1. */
int quarantine_init(size_t slots);

/* What a refused request says. */
typedef struct quarantine_info {
  uint64_t retry_after_s; /* whole seconds, at least 1 */
  uint32_t crashes;
  char reason[64];
} quarantine_info;

/* Is (platform, package, version) quarantined now? 0 no; 1 yes with *out
 * filled. O(1); a single atomic load when nothing is quarantined. */
int quarantine_check(const char *platform, const char *package,
                     const char *version, quarantine_info *out);

/* Count a crash of package@version (stack "id@version") on `platform`
 * ("" when the crash had no platform), with a one-line reason ("SIGSEGV")
 * and the request id ("" if none). Returns 1 when this crash put it in
 * quarantine, 0 when counted only, -1 when not recorded (bad arguments).
 * Async-signal-safe it is not: the master and workers call it from their
 * loops. */
int quarantine_note_crash(const nno_config *cfg, const char *platform,
                          const char *package, const char *version,
                          const char *stack, const char *reason,
                          const char *rid);

/* For the ABI (quarantine_at, quarantine_release): the i-th quarantined
 * key, and an operator's release. */
int quarantine_at(size_t i, nno_quarantine *out);
int quarantine_release(const char *platform, const char *package,
                       const char *version);

/* In a worker: deliver the events not yet delivered (a new quarantine, a
 * release) to core plugins' on_host_event, each exactly once across the
 * workers. Cheap when there is none (one atomic load). */
void quarantine_poll(struct worker *w);

#endif
