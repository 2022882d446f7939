/* Sandboxed stacks, the worker's side: one sandbox process per (stack
 * version, platform), spawned on the first request for the key, serving
 * the stack's packages through the wire protocol of sbx_proto.h.
 *
 * A sandboxed stack is loaded in the worker from its manifests only (the
 * loader never opens its objects here): each route leads to
 * sandbox_handler, each package's descriptor is sandbox_desc(), whose
 * platform event hook forwards the event to the platform's sandbox. The
 * handler encodes the request, returns NNO_ASYNC, and the sandbox's answer
 * is applied with the host's own res_* functions (sbx_wire.c), so nothing
 * a sandbox says reaches a client unchecked.
 *
 * Containment: a request's wall-clock budget is timed here (504); a sandbox
 * that dies answers each of its in-flight requests (502 for a crash, 503 or
 * 504 for a budget), logs one line per request naming it, and counts the
 * crash for quarantine; its memory is read from /proc every tick; idle
 * sandboxes are reaped; at most sandbox.max_per_worker live at once.
 *
 * THREAD: the worker's loop thread only. */
#ifndef NNO_HOST_SANDBOX_H
#define NNO_HOST_SANDBOX_H

#include <stddef.h>

#include <nno/plugin.h>

struct worker;
struct stack;

/* Resolve the executable to spawn (/proc/self/exe) and set up the
 * worker-wide handles. Called once per worker, before the stacks load.
 * 0, or -1 (logged): sandboxed stacks are then refused. */
int sandbox_init(struct worker *w);

/* Kill every sandbox and close the handles (the worker is leaving, its
 * requests are over). Runs the loop until they are closed. */
void sandbox_shutdown(struct worker *w);

/* The route handler of every sandboxed package (ud: its plugin_route). */
int sandbox_handler(nno_req *r, void *ud);

/* The descriptor given to a sandboxed package in the worker: no init, no
 * fini; on_platform_event forwards to the platform's sandbox. */
const nno_plugin_desc *sandbox_desc(void);

/* The trial load of a sandboxed stack (`st` built from its manifests, not
 * yet committed; st->root the stacks folder it was found in): one real spawn
 * of a sandbox, waiting (without the loop) for READY within
 * sandbox.spawn_timeout_ms; the routes each package bound must be those
 * its manifest declares. 0, or -1 with err set: the loader's own message
 * from the sandbox, a crash, exit or hang named after the package whose
 * init or on_host_ready it was in ("init of package \"x\" crashed
 * (SIGSEGV)", as an in-process trial says it), else "sandbox: ...";
 * `file` then names the file it is about ("" when none). -2 (err set)
 * when no sandbox could be started: the stack was not tried. */
int sandbox_trial(struct worker *w, struct stack *st, char *file,
                  size_t filecap, char *err, size_t errlen);

/* Stack version `st` is being unloaded: stop its sandboxes (they have no
 * request left: a request holds its stack). */
void sandbox_stack_gone(struct stack *st);

/* Live sandboxes of this worker. */
size_t sandbox_count(void);

#endif
