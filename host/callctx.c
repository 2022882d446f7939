/* The call running now (callctx.h). */
#include "callctx.h"

#include "watchdog.h"

callctx g_callctx;
_Atomic uint64_t g_callctx_seq;

static clockid_t g_clock = CLOCK_MONOTONIC;

clockid_t callctx_clock_for(uint64_t stall_ns, uint64_t coarse_res_ns) {
  if (coarse_res_ns == 0 || stall_ns / CALLCTX_COARSE_TICKS < coarse_res_ns)
    return CLOCK_MONOTONIC;
  return CLOCK_MONOTONIC_COARSE;
}

void callctx_use_clock(uint64_t stall_ns) {
  struct timespec res;
  uint64_t r = 0;
  if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0)
    r = (uint64_t)res.tv_sec * 1000000000u + (uint64_t)res.tv_nsec;
  g_clock = callctx_clock_for(stall_ns, r);
}

clockid_t callctx_clock(void) {
  return g_clock;
}

/* Now, on the clock in use. */
static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(g_clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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
  watchdog_woke();
  *saved = g_callctx;
  callctx now = {p, r, now_ns()};
  set(&now);
}

void callctx_leave(const callctx *saved) {
  uint64_t t = now_ns();
  /* The coarse clock may be read behind a precise reading another code
   * path took: never a negative duration. */
  uint64_t dur = t > g_callctx.since_ns ? t - g_callctx.since_ns : 0;
  if (dur > g_watchdog_stall_ns) watchdog_stalled(&g_callctx, dur);
  callctx back = *saved;
  /* The call that nested in the outer one is not the outer one's time: a
   * stall is reported once, against the package that made it. */
  if (back.since_ns) back.since_ns += dur;
  set(&back);
}
