/* The call running now: which plugin the loop is in, for which request,
 * since when. Set around every call from the host into plugin code that
 * can be long or crash (handlers, hooks, completions, timers, events), so
 * that
 *   - the loop watchdog (watchdog.c) can time each call and name the
 *     package and request that held the loop, and
 *   - the crash handler (crash.c) can name the request a fatal signal
 *     interrupted, and answer it.
 * One per process (a worker runs one loop). Entering saves the previous
 * record, so a plugin that calls the host which calls a plugin nests. */
#ifndef NNO_HOST_CALLCTX_H
#define NNO_HOST_CALLCTX_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <nno/plugin.h>

struct plugin;

typedef struct callctx {
  struct plugin *plugin; /* NULL: host code */
  nno_req *req;          /* NULL: no request (timer, init, work) */
  uint64_t since_ns;     /* CLOCK_MONOTONIC at entry, read with the clock
                          * callctx_use_clock chose (uv_hrtime's epoch) */
} callctx;

/* The record; `seq` is odd while it is being written, so a reader on
 * another thread (the watchdog) copies it and checks seq did not move. */
extern callctx g_callctx;
extern _Atomic uint64_t g_callctx_seq;

/* The clock a call is timed with, for calls reported past `stall_ns`:
 * CLOCK_MONOTONIC_COARSE (read from the vDSO without the time-stamp
 * counter: ~10 ns a reading on the 2-core guest against ~45 for
 * CLOCK_MONOTONIC, and a request makes a dozen calls) when its resolution
 * `coarse_res_ns` is known and stall_ns spans at least
 * CALLCTX_COARSE_TICKS of it, so that a stall is measured to within one
 * of the kernel's ticks (1-10 ms); CLOCK_MONOTONIC otherwise. Pure. */
#define CALLCTX_COARSE_TICKS 10
clockid_t callctx_clock_for(uint64_t stall_ns, uint64_t coarse_res_ns);
/* Time calls from now on with callctx_clock_for(stall_ns, the coarse
 * clock's resolution) (watchdog_start); CLOCK_MONOTONIC until then. */
void callctx_use_clock(uint64_t stall_ns);
/* The clock in use. */
clockid_t callctx_clock(void);

/* Enter plugin `p` for request `r` (NULL if none). `saved` receives the
 * record to restore with callctx_leave. */
void callctx_enter(struct plugin *p, nno_req *r, callctx *saved);
/* Leave: time the call (watchdog.c reports one longer than
 * watchdog.stall_ms) and restore `saved`. */
void callctx_leave(const callctx *saved);

#endif
