/* The call running now (callctx.h). */
#include "callctx.h"

#include <uv.h>

#include "watchdog.h"

callctx g_callctx;
_Atomic uint64_t g_callctx_seq;

/* A seqlock's writer: this thread is the only one. The odd count is
 * published before the record changes (the release fence keeps the
 * stores in that order), the even one after; on x86 neither is a locked
 * instruction. */
static void set(const callctx *v) {
  uint64_t s = atomic_load_explicit(&g_callctx_seq, memory_order_relaxed);
  atomic_store_explicit(&g_callctx_seq, s + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  g_callctx = *v;
  atomic_store_explicit(&g_callctx_seq, s + 2, memory_order_release);
}

void callctx_enter(struct plugin *p, nno_req *r, callctx *saved) {
  *saved = g_callctx;
  callctx now = {p, r, uv_hrtime()};
  set(&now);
}

void callctx_leave(const callctx *saved) {
  uint64_t dur = uv_hrtime() - g_callctx.since_ns;
  if (dur > g_watchdog_stall_ns) watchdog_stalled(&g_callctx, dur);
  callctx back = *saved;
  /* The call that nested in the outer one is not the outer one's time: a
   * stall is reported once, against the package that made it. */
  if (back.since_ns) back.since_ns += dur;
  set(&back);
}
