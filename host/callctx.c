/* The call running now (callctx.h). */
#include "callctx.h"

#include <uv.h>

callctx g_callctx;
_Atomic uint64_t g_callctx_seq;

static void set(const callctx *v) {
  atomic_fetch_add_explicit(&g_callctx_seq, 1, memory_order_acq_rel);
  g_callctx = *v;
  atomic_fetch_add_explicit(&g_callctx_seq, 1, memory_order_acq_rel);
}

void callctx_enter(struct plugin *p, nno_req *r, callctx *saved) {
  *saved = g_callctx;
  callctx now = {p, r, uv_hrtime()};
  set(&now);
}

void callctx_leave(const callctx *saved) {
  /* Timing and stall reports: watchdog.c. */
  set(saved);
}
