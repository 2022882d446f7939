/* The loop watchdog, worker memory and overload shedding.
 *
 * In a worker: every host->plugin call is timed (callctx.c calls
 * watchdog_stalled for one longer than watchdog.stall_ms); each loop
 * iteration's busy time feeds the lag measures (a 10 s maximum for
 * /metrics, a decaying value for shedding); a thread checks that the loop
 * still turns and, stuck past watchdog.hard_ms, asks the master to replace
 * the worker; the worker's RSS is read once a second and, past
 * limits.worker_max_rss_mb, asks the same.
 *
 * The shared part (a MAP_SHARED segment the master maps before forking,
 * one slot per worker slot of metrics.h) carries those requests to the
 * master and the figures to /metrics. */
#ifndef NNO_HOST_WATCHDOG_H
#define NNO_HOST_WATCHDOG_H

#include <stddef.h>
#include <stdint.h>

#include <nno/plugin.h>

#include "callctx.h"

struct worker;

/* Why a worker asks to be replaced (watchdog_slot_recycle). */
enum {
  WD_RECYCLE_NONE = 0,
  WD_RECYCLE_STUCK = 1, /* its loop is stuck past watchdog.hard_ms */
  WD_RECYCLE_RSS = 2,   /* its RSS is over limits.worker_max_rss_mb */
};

/* Why a request or connection is shed (overload.*). */
enum {
  WD_OVERLOAD_NONE = 0,
  WD_OVERLOAD_CONNECTIONS = 1,
  WD_OVERLOAD_MEMORY = 2,
  WD_OVERLOAD_LAG = 3,
};

/* ---- master side ---- */

/* Map the shared segment (master, once, before the first fork). 0 or -1. */
int watchdog_shm_init(void);
/* A worker is about to start in `slot`, or its process was reaped: clear
 * the slot. */
void watchdog_slot_reset(int slot);
/* What the worker in `slot` asks: WD_RECYCLE_*. */
int watchdog_slot_recycle(int slot);
/* 1 while the worker in `slot` is stuck (its loop has not turned for
 * watchdog.hard_ms); 0 once it turns again. */
int watchdog_slot_stuck(int slot);

/* ---- worker side (the loop thread) ---- */

/* Calls longer than this (watchdog.stall_ms) are reported; UINT64_MAX
 * until watchdog_start. Read by callctx_leave on every call. */
extern uint64_t g_watchdog_stall_ns;

/* Start the measures, the RSS timer and the watchdog thread for worker
 * `w` (its loop not running yet; `slot` its metrics slot). 0, or -1 with
 * the reason logged (the worker serves on without a watchdog). */
int watchdog_start(struct worker *w, int slot);
/* Stop the thread and close the handles (after uv_run returned; the
 * caller runs the loop once more to finish the closes). */
void watchdog_stop(void);

/* A call into plugin code took `dur_ns` (over g_watchdog_stall_ns): log
 * `loop stalled` naming package, platform and request, and count it.
 * `c` is the call's record. */
void watchdog_stalled(const callctx *c, uint64_t dur_ns);

/* When bytes read now reached the worker: the end of the poll that
 * returned them if it waited for them, else the start of the busy stretch
 * that kept them waiting (wd_arrival). In uv_hrtime() nanoseconds. */
uint64_t watchdog_arrival_ns(void);
/* A callback of the loop begins: the first after a poll dates the poll's
 * return (one clock reading an iteration). Called from every callback
 * that may run long or read requests: calls into plugins (callctx.c),
 * connections' reads and accepts, sandboxes' answers; the check hook
 * catches the rest, late by what they took. */
void watchdog_woke(void);
/* When connection `fd`, accepted now, reached the worker (as
 * watchdog_arrival_ns). `*with_bytes`: it waited through a busy stretch
 * of WD_PEEK_NS or more and its first bytes may have come before that
 * stretch ended — its last data did, by more than WD_TICK_NS (the
 * kernel's tick blurs its age), or came in more than one segment (asked
 * of the kernel, two system calls, only then): they are dated with it. */
#define WD_TICK_NS (10ull * 1000 * 1000)
uint64_t watchdog_accepted_ns(int fd, int *with_bytes);
/* The same for the first bytes of a connection accepted at `accepted_ns`
 * in iteration `accepted_iter` (watchdog_accepted_ns): with the accept's
 * `with_bytes`, dated as it is; read at the first poll after the accept,
 * which returned at once, since the busy stretch before that poll began
 * (the look after a long stretch did not include a connection the poll
 * had yet to watch); else as any bytes. */
uint64_t watchdog_first_arrival_ns(uint64_t accepted_ns,
                                   uint64_t accepted_iter, int with_bytes);
/* The loop thread polled for events from `from_ns` to `to_ns`
 * (uv_hrtime()) instead of sleeping in the loop's poll: idle time for the
 * lag measures, and bytes the loop reads next came no earlier than
 * `to_ns` if it polled at all. */
void watchdog_polled(uint64_t from_ns, uint64_t to_ns);
/* The loop iteration running now (counted at each prepare). */
uint64_t watchdog_iteration(void);

/* Overload: WD_OVERLOAD_* for the worker now (connections, RSS, decaying
 * loop lag against overload.*). `detail` (cap bytes) gets the sentence a
 * 503 carries. */
int watchdog_overloaded(const struct worker *w, char *detail, size_t cap);
/* Count a request or connection shed for `reason` (WD_OVERLOAD_*). */
void watchdog_count_rejected(int reason);
/* Answer request `r` 503 "overloaded" with Retry-After: 1 if the worker is
 * overloaded: 1 if it did (the response is ready), 0 otherwise. */
int watchdog_shed(nno_req *r);

/* /metrics: this segment's series as Prometheus text (malloc'ed, the
 * caller frees), or NULL. */
char *watchdog_metrics_text(size_t *len);

/* ---- the pure parts (unit-tested) ---- */

/* The decaying loop lag: the busiest recent iteration (counted as at most
 * WD_LAG_CAP_NS), halving every WD_LAG_HALF_NS after it, so that a host
 * whose load dropped sheds no more within a second: 40 halvings take any
 * lag under 0.1 ms. */
#define WD_LAG_HALF_NS (25ull * 1000 * 1000)
#define WD_LAG_CAP_NS (60ull * 1000 * 1000 * 1000)
typedef struct wd_lag {
  uint64_t value_ns; /* at at_ns */
  uint64_t at_ns;
} wd_lag;
/* An iteration that ended at `now_ns` was busy `busy_ns`. */
void wd_lag_note(wd_lag *l, uint64_t now_ns, uint64_t busy_ns);
/* The decayed lag at `now_ns`. */
uint64_t wd_lag_value(const wd_lag *l, uint64_t now_ns);

/* When the bytes a loop iteration reads reached the worker, from what the
 * loop knows without asking the kernel each time:
 *   prep_ns     the prepare before the poll;
 *   woke_ns     the first callback after it: the poll's return, near
 *               enough (its own work, a few system calls, comes before);
 *   busy_since  when the busy stretch before prep_ns began;
 *   ready       1: something was ready at prep_ns (the poll will not
 *               wait), 0: nothing was, -1: not looked at (a short stretch).
 * Bytes ready at the prepare waited since busy_since at the latest. A
 * poll that returned after more than WD_WAIT_NS waited for its bytes:
 * they came as it returned. A quicker return with nothing ready came
 * during the poll (prep_ns); unlooked-at, it is taken as ready, which is
 * early by at most the short stretch (under WD_PEEK_NS) and WD_WAIT_NS.
 * `*waited` says whether the bytes came after prep_ns. */
#define WD_WAIT_NS (20ull * 1000)
/* A busy stretch this long is followed by a look at the loop's poll
 * descriptor (one poll(2) at zero timeout): bytes waiting behind it are
 * dated exactly. */
#define WD_PEEK_NS (200ull * 1000)
uint64_t wd_arrival(uint64_t prep_ns, uint64_t woke_ns, uint64_t busy_since,
                    int ready, int *waited);

/* overload.* in the units measured; 0: that check is off. */
typedef struct wd_limits {
  uint64_t max_connections;
  uint64_t max_rss_bytes;
  uint64_t max_lag_ns;
} wd_limits;
/* WD_OVERLOAD_* for these figures: the first limit passed, in the order
 * connections, memory, lag. */
int wd_overload_reason(const wd_limits *lim, uint64_t connections,
                       uint64_t rss_bytes, uint64_t lag_ns);

#endif
