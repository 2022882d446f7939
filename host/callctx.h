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

#include <nno/plugin.h>

struct plugin;

typedef struct callctx {
  struct plugin *plugin; /* NULL: host code */
  nno_req *req;          /* NULL: no request (timer, init, work) */
  uint64_t since_ns;     /* uv_hrtime() at entry */
} callctx;

/* The record; `seq` is odd while it is being written, so a reader on
 * another thread (the watchdog) copies it and checks seq did not move. */
extern callctx g_callctx;
extern _Atomic uint64_t g_callctx_seq;

/* Enter plugin `p` for request `r` (NULL if none). `saved` receives the
 * record to restore with callctx_leave. */
void callctx_enter(struct plugin *p, nno_req *r, callctx *saved);
/* Leave: time the call (watchdog.c reports one longer than
 * watchdog.stall_ms) and restore `saved`. */
void callctx_leave(const callctx *saved);

#endif
