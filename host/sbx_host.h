/* The parts of the worker's sandbox code (sandbox.c, sbx_call.c) that
 * both files see: a sandbox process, its requests in flight, the CALLs it
 * is owed answers for, and the worker's set of sandboxes. Not for other
 * files: sandbox.h is the interface. */
#ifndef NNO_HOST_SBX_HOST_H
#define NNO_HOST_SBX_HOST_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "config.h"
#include "loader.h"
#include "sbx_proto.h"
#include "sbx_wire.h"
#include "worker.h"

enum { SP_SPAWNING, SP_READY, SP_DRAINING, SP_STOPPING, SP_DEAD };

/* A request (or platform event) in flight in a sandbox. Slots are reused:
 * the id's low 32 bits are the slot, the high bits a sequence, so a late
 * answer for a slot reused since finds no match. */
typedef struct sbx_slot {
  nno_req *r; /* NULL: free */
  uint64_t id;
  uint64_t deadline; /* uv_now() ms the wall budget ends */
  uint32_t wpkg;     /* index of its package in the stack (worker side) */
  uint32_t wroute;   /* index of its route in the package */
  uint32_t wall_ms;
  uint32_t next_free;
  int event;       /* a platform event: 0, else the nno_platform_event */
  int sent;        /* its REQ/EVENT is encoded */
  uint64_t cpu_ms; /* its CPU budget, by its plan */
} sbx_slot;

#define NO_SLOT UINT32_MAX

/* A CALL served asynchronously. Freed by its completion; `sp` is cleared
 * when the sandbox goes first. */
typedef struct sbx_callrec {
  struct sbx_callrec *prev, *next;
  struct sbx_proc *sp;
  uint64_t call_id, req_id;
  uint16_t op;
} sbx_callrec;

typedef struct sbx_proc {
  struct sbx_proc *prev, *next; /* the worker's list, most recent first */
  stack *st;
  char platform[65];
  /* Its stack's id and version, kept for its log lines after the stack
   * is forgotten (a trial's, an unloaded version's). */
  char stack_id[128], stack_version[64];
  /* CPU sampling (on_tick): /proc/PID/stat, and at the last sample its
   * CPU time, the page's callback time and when (ms; 0: none yet). */
  int stat_fd;
  uint64_t cpu_ns, cb_ns, cpu_at;
  int state;
  int trial;
  /* Started for a platform event (no plan known, default budgets): not
   * given requests, stopped once its events are answered. */
  int for_event;
  pid_t pid;
  uv_process_t proc;
  uv_pipe_t sock;
  uv_pipe_t err;
  uv_timer_t timer; /* spawn timeout, then the earliest wall budget */
  int nhandles;     /* open handles: freed when they are all closed */
  sbx_shared *page;
  int statm_fd;
  config_budget budget;
  /* output: frames appended to `out`, written from `wb` */
  sbx_out out, wb;
  size_t wb_off;
  int writing, dirty;
  uv_write_t wreq;
  /* input */
  char *in;
  size_t in_len, in_cap;
  /* in-flight requests */
  sbx_slot *slots;
  uint32_t nslots, free_head;
  size_t inflight;
  uint32_t seq;
  uint64_t last_used; /* uv_now() ms */
  uint64_t stop_at;   /* when STOP was sent */
  int exit_sig;       /* the signal that ended it, for the log */
  /* Polling's credit (cpu_sample), by the worker's clock: since the last
   * CPU sample, the time it could have polled (each stretch it was idle
   * while it held the grant, at most a grant each), when its current
   * idle stretch began (uv_hrtime(); 0: busy or not the poller), and the
   * page's poll_total_ns at the last sample. */
  uint64_t poll_cap, idle_at, poll_at;
  /* The worker's clock of its work: the time it had a request or event in
   * flight since the last CPU sample, and since when (uv_hrtime(); 0:
   * none in flight). */
  uint64_t busy_wall, busy_at;
  int fed; /* work was encoded since the last flush */
  /* READY: for each worker package, its index in READY's list; for each
   * worker route, its index in that package's READY routes */
  uint32_t *pkg_map;
  uint32_t **route_map;
  /* why it ended, when the worker decided (kill, protocol violation) */
  char kill_reason[128];
  int kill_budget; /* the kill was for a budget (wall, memory) */
  int kill_logged; /* its line was logged when decided: not again on exit */
  sbx_callrec *calls;
  uint64_t rss;
  /* stderr relay */
  char errline[513];
  size_t errlen;
  uint64_t err_sec, err_dropped;
  unsigned err_count;
  char rss_key[200];
} sbx_proc;

struct sbx_state {
  worker *w;
  char exe[PATH_MAX];
  int ready;
  sbx_proc *head;
  size_t count;
  uv_check_t check;
  uv_timer_t tick;
  int dirty;    /* some sandbox has output to flush */
  sbx_proc *poller; /* the one granted a poll (sandbox.poll_us), or NULL */
  uint64_t fed_at;  /* uv_hrtime() work was last sent to it, 0: answered */
  uint64_t wwin;    /* the worker's poll window for its answers (ns) */
  /* /proc/pressure/cpu, its `some` total (µs) when last read and when
   * (uv_hrtime()); crowded: the CPUs are, no poll is granted */
  int psi_fd;
  uint64_t psi_total, psi_at;
  int crowded;
  int stopping; /* the worker is leaving: exits are not failures */
  long page_size;
  long clk_tck; /* /proc/PID/stat's unit */
};

/* The worker's sandboxes (one worker per process). */
extern struct sbx_state S;

/* Output for `sp` is waiting: written at the end of the loop iteration. */
void sbx__mark_dirty(sbx_proc *sp);
/* The live slot of request `id`, or NULL. */
sbx_slot *sbx__slot_of(sbx_proc *sp, uint64_t id);
/* The request left the sandbox (answered, or taken by res_blob). */
void sbx__slot_free(sbx_proc *sp, sbx_slot *s);
/* Arm the timer for the earliest wall budget in flight. */
void sbx__arm_wall(sbx_proc *sp);
/* The worker's package a frame's `flags` names (its index in READY + 1;
 * before READY, the load order), NULL when none. */
plugin *sbx__flags_pkg(sbx_proc *sp, uint16_t flags);
/* Serve a CALL made for request `req_id` (0: none) by the package
 * `flags` names; its RESULT goes out now (synchronous ops) or from the
 * operation's completion. */
void sbx__serve_call(sbx_proc *sp, uint64_t req_id, uint16_t flags,
                     const sbx_callmsg *m);
/* The sandbox is gone: its calls in flight complete into nothing. */
void sbx__calls_orphan(sbx_proc *sp);

#endif
