/* The sandbox process (`nno sandbox`): one stack version's packages for
 * one platform of one worker, loaded with the loader's own code behind the
 * proxy host table (sbx_api.c), confined (sbx_confine.c), serving the
 * worker's frames (sbx_proto.h) on fd 3.
 *
 * This header is private to the sandbox's three files. */
#ifndef NNO_HOST_SBX_CHILD_H
#define NNO_HOST_SBX_CHILD_H

#include <stddef.h>
#include <stdint.h>

#include <nno/plugin.h>

#include "req.h"
#include "sbx_proto.h"

struct plugin;

/* The descriptors the worker gives a sandbox. */
#define SBX_FD_SOCK 3
#define SBX_FD_SHARED 4

/* Entry point of `nno sandbox ROOT DIR ID VERSION PLATFORM DATA CPU_MS
 * MEMORY_MB LOG_LEVEL [BASE_DOMAIN]` (main.c): the worker's base domain
 * for host_base_domain, the default when absent. Returns only on bad
 * arguments; every other end is _exit. */
int sbx_child_main(int argc, char **argv);

/* ---- requests (the child's own nno_req) -------------------------------- */

typedef struct sbx_pair {
  nno_str name, value;
} sbx_pair;

typedef struct sbx_chunk {
  struct sbx_chunk *next;
  _Alignas(16) char data[];
} sbx_chunk;

/* A resource handle a package opened for a request (nno_sql, nno_kv,
 * nno_blob): the resource's name as the manifest declares it. */
typedef struct sbx_res {
  struct sbx_res *next;
  int type; /* SBX_H_SQL, SBX_H_KV, SBX_H_BLOB */
  struct sbx_req *req;
  char name[64];
} sbx_res;

/* One request (or platform event) from the worker, as the handler sees it:
 * everything the getters answer is in `frame` (the REQ payload, kept), the
 * response is accumulated here and sent once as RES. */
typedef struct sbx_req {
  struct sbx_req *next, *prev; /* live requests */
  uint64_t id;
  struct plugin *plugin;
  uint32_t pkg;
  int event;   /* a platform event: RES status is 0 or the failure */
  char *frame; /* owned: the payload the views below point into */
  nno_str method, path, query, body, rid, traceparent, platform, host, remote,
      pattern, scope, tenant_path, package;
  sbx_pair *headers, *params;
  size_t nheaders, nparams;
  int caller_kind;
  nno_str c_platform, c_tenant, c_subject, c_scopes, c_session;
  uint64_t cpu_budget_ns; /* 0: none */
  uint64_t cpu_used_ns;
  uint64_t max_body;
  /* the response so far */
  int status;
  int written;
  int body_over;     /* a write went past max_body: answered as a 500 */
  unsigned nheaders_out; /* res_header/res_header_keep calls taken */
  buf headers_out, keep_out, body_out;
  int gone;         /* CANCEL: the worker has dropped it */
  int ended;        /* RES sent (or res_blob handed it over) */
  int in_handler;   /* the handler has not returned yet */
  unsigned pending; /* proxied calls in flight */
  sbx_res *res;     /* resource handles opened for it */
  /* arena (req_alloc): chunks, bounded like the host's */
  sbx_chunk *chunks;
  size_t arena_total;
} sbx_req;

/* ---- what sbx_api.c needs of sbx_child.c ------------------------------- */

/* The handle kinds the live set knows. */
enum { SBX_H_REQ = 1, SBX_H_SQL, SBX_H_KV, SBX_H_BLOB, SBX_H_TIMER };

/* The live set: a handle a package passes is checked here before use. */
int sbx_handle_add(const void *h, int type);
void sbx_handle_del(const void *h);
int sbx_handle_is(const void *h, int type);

/* The host's problem+json body (req_problem) on a sandbox request. */
void sbx_problem(sbx_req *r, int status, const char *title, const char *detail);

/* Log "garbage handle" once per call site kind (rate-bounded) and answer
 * NNO_EINVAL. */
int sbx_garbage(const char *call);

/* Send RES for r (its status, headers, body; or the handler's rc) and
 * release it unless calls are still pending. */
void sbx_req_finish(sbx_req *r, int handler_rc);
/* res_end: finish an async request. */
int sbx_req_end(sbx_req *r);

/* The request a callback runs for now (NULL: none), and the frame output. */
extern sbx_req *g_sbx_cur;
sbx_out *sbx_output(void);

/* Enter / leave a callback of plugin code for request r (may be NULL):
 * status page, the CPU clock's ticks charged to r's remaining budget (no
 * system call), CPU time taken. Calls nest (a handler calling a sync proxy
 * is still inside): leaving an inner call charges the outer one's request
 * again. */
typedef struct sbx_enter_state {
  sbx_req *prev;
  uint64_t mono0; /* CLOCK_MONOTONIC at enter (vDSO: no system call) */
} sbx_enter_state;
void sbx_enter(sbx_req *r, sbx_enter_state *st);
void sbx_leave(const sbx_enter_state *st);

/* A proxied call: write CALL (the caller appended the op's arguments after
 * sbx_call_begin) and either wait for its RESULT (sync) or register `cb`
 * for it. sbx_call_begin returns the frame offset. */
typedef void (*sbx_result_fn)(sbx_req *r, int error, const char *message,
                              sbx_in *in, void *ud);
size_t sbx_call_begin(sbx_req *r, struct plugin *p, uint16_t op,
                      uint64_t *call_id);
/* Async: 0, or NNO_E... (nothing sent, cb never called). `r` may be NULL
 * (http_fetch from a timer). When the request ended before the RESULT,
 * cb runs with `in` NULL: only to free what it holds. */
int sbx_call_async(size_t at, uint64_t call_id, sbx_req *r, sbx_result_fn cb,
                   void *ud);
/* Sync: blocks until RESULT `call_id` arrives; the payload is copied to
 * *frame (free it) and *in reads it after the error fields. Returns the
 * call's error (0 ok), or NNO_EIO when the worker is gone. */
int sbx_call_sync(size_t at, uint64_t call_id, char **frame, sbx_in *in,
                  char *msg, size_t msglen);

/* A log line to the worker. */
void sbx_log(int level, const char *pkg, const char *msg);

/* 1 on the sandbox's loop thread, 0 on any other (a work_queue pool
 * thread): every entry of the host table refuses the others (NNO_ESTATE,
 * or an empty value), as the host's calls are the loop's alone. */
int sbx_on_loop(void);

/* ---- the proxy table (sbx_api.c) ---------------------------------------- */

const nno_host_api *sbx_api_table(void);
/* Stop the timers plugin p left running, before its fini. */
void sbx_api_stop_timers(struct plugin *p);
/* Release a request's resource handles. */
void sbx_api_release(sbx_req *r);
/* The platform this sandbox serves, for plugins' own use. */
void sbx_api_set_platform(const char *platform);

/* ---- confinement (sbx_confine.c) ---------------------------------------- */

/* The status page (mapped from fd 4), NULL when none. */
extern sbx_shared *g_sbx_shared;

/* Step 1 and 2 of the start-up: parent-death signal, fds, no new
 * privileges, rlimits. 0, or -1 with err. */
int sbx_confine_early(uint64_t memory_mb, char *err, size_t errlen);
/* Step 3 and 4: drop root, Landlock read-only beneath `stack_dir`. 0, or
 * -1 with err; *landlocked says whether Landlock could be applied. */
int sbx_confine_fs(const char *stack_dir, int *landlocked, char *err,
                   size_t errlen);
/* Step 5 / 7: the seccomp filters. 0, or -1 with err. */
int sbx_confine_phase1(char *err, size_t errlen);
int sbx_confine_phase2(char *err, size_t errlen);
/* The CPU clock: one periodic timer on the process's CPU time (its
 * period the kernel's tick, at which CPU timers are checked), armed once
 * at start, so that a callback costs no system call. Each expiry is
 * charged, with its overruns, through sbx_cpu_charge; SIGXCPU of any other
 * origin (RLIMIT_CPU) ends the process. 0, or -1. */
int sbx_cpu_timer_init(void);
/* The timer's period in ns (0 before sbx_cpu_timer_init). */
uint64_t sbx_cpu_tick_ns(void);
/* From the signal handler (any thread; async-signal-safe): `ns` of
 * process CPU time went by. Charged to the callback running now, if its
 * request has a budget; 0 when that budget is spent (the handler then
 * ends the process as SBX_EXIT_CPU), else 1. */
int sbx_cpu_charge(uint64_t ns);

#endif
