/* The plugin loader: finds core plugins and stacks, checks every shared
 * object's descriptor against its manifest and this host's ABI before any
 * of its code runs, initialises plugins and commits their routes. */
#ifndef NNO_HOST_LOADER_H
#define NNO_HOST_LOADER_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#include <nno/plugin.h>

#include "config.h"
#include "gateway.h"
#include "manifest.h"

struct worker;

#define LOADER_ERR_MAX 1024

typedef struct plugin_route {
  char *method;
  char *pattern;
  const char *scope; /* from the manifest ("" when none); owned by it */
  route_target target;
} plugin_route;

typedef struct plugin {
  struct plugin *next;
  void *dl;
  int so_fd; /* the object as opened and judged; open while dl is */
  const nno_plugin_desc *desc;
  package_manifest man;
  char dir[PATH_MAX];
  char so_path[PATH_MAX];
  char stack[128]; /* "default@1.0.0", or "" for core plugins */
  char stack_id[65];      /* "default", "" for core plugins */
  char stack_version[64]; /* "1.0.0", "" for core plugins */
  char absdir[PATH_MAX];  /* dir, absolute (stack_package_at) */
  void *data;
  char fail[256];
  int initing;
  int inited;
  plugin_route *routes;
  size_t nroutes;
  struct plugin_timer *timers; /* running timers, stopped before fini */
  size_t pending;              /* queued work and fetches in flight */
  /* The first route init tried to bind that its manifest does not
   * declare ("GET /x"), "" if none: a check refuses the package. */
  char undeclared[160];
  /* A sandboxed package (its stack's isolation is NNO_ISOLATION_SANDBOX):
   * never opened here; its stack and its index in it (sandbox.c). */
  struct stack *sbx_stack;
  uint32_t sbx_index;
} plugin;

/* A loaded stack version: its packages and its own route table. This is
 * what the ABI's opaque nno_stack points at. */
typedef struct stack {
  struct stack *next;
  char id[65];
  char version[64];
  semver ver;
  struct router *router;
  plugin **plugins;
  size_t nplugins;
  int newest; /* the newest loaded version of its id */
  stack_manifest man; /* its stack.json (requires: stack_require_at) */
  char dir[PATH_MAX]; /* the folder it was loaded from */
  /* Requests given it (req_set_scope) and platform_event runs: a removed
   * version is unloaded when this reaches 0 (stacks.c). */
  size_t refs;
  int removed; /* gone from disk: no longer found nor routed */
  /* NNO_ISOLATION_INPROCESS, or NNO_ISOLATION_SANDBOX: its packages were
   * never opened here, their routes lead to sandbox_handler (sandbox.h)
   * and `source` decides with the configuration (config_isolation). */
  int isolation;
  int builtin; /* found beside the binary (builtin_stack_dir) */
  char root[PATH_MAX]; /* the stacks folder `dir` was found in */
} stack;

typedef struct plugin_set {
  plugin *head;  /* every loaded plugin, newest first (unload order) */
  size_t count;
  stack *stacks; /* sorted by id, then version ascending */
  size_t nstacks;
} plugin_set;

/* The stack `id` at `version` (NULL: newest); NULL if not loaded. */
/* Run on_host_ready of every plugin in load order (id NULL), or of the
 * packages of stack id@version only; in a check's child each is announced
 * first, so a crash there is put on its package. */
void loader_host_ready(struct worker *w, const char *id, const char *version);

stack *loader_stack_find(const plugin_set *ps, const char *id,
                         const char *version);

/* Check a shared object's descriptor against the manifest and this host.
 * `fd` >= 0: the object is loaded from that descriptor (the file the
 * loader opened and judged, see trust_open; the caller keeps it open as
 * long as the object is loaded, and closes it); -1: from `so_path`.
 * Messages name so_path either way. On success returns 0 and, if dl_out
 * is not NULL, leaves the object open in *dl_out with *desc_out set;
 * otherwise it is closed. On failure returns -1 with the reason in err,
 * e.g.
 *   incompatible plugin "x/libx.so": built for ABI 2.0, host provides 1.0 */
int loader_check_object(const char *so_path, int fd, const package_manifest *m,
                        void **dl_out, const nno_plugin_desc **desc_out,
                        char *err, size_t errlen);

/* Validate a package folder (manifest + object) without running it. */
int loader_check_package(const char *dir, char *err, size_t errlen);

/* Load every core plugin and every stack the configuration names into the
 * worker (its router, services and plugin set). A stack with any bad
 * package is refused whole, with an error log line naming the package and
 * the reason; the others load. A core plugin that fails is fatal: returns
 * -1 (as on allocation failure), else the number of plugins loaded. */
int loader_load_all(struct worker *w);

/* Check the core plugin folder as loading does, without running plugin
 * code (beyond the descriptor function): every plugin in it, and that each
 * name of cfg->core_plugins is among them. Each problem is printed to
 * `out` (when not NULL) as "error: ...\n"; the first is left in err, e.g.
 *   required core plugin "iam" is missing from "/srv/p" (core_plugins)
 * Returns the number of problems. `nno serve` runs it before starting. */
int loader_check_core(const nno_config *cfg, FILE *out, char *err,
                      size_t errlen);

/* loader_check_core, then every discoverable stack with pkgcheck_stack_in
 * (its packages' init run in a child when the core plugins are sound);
 * problems go to stderr as "error: stack ID@VERSION: ...". Returns the
 * number of problems. */
int loader_check_all(const nno_config *cfg);

/* Bring the loaded stacks in line with the stack folders: load versions
 * found and not loaded (a refused one is tried again), mark removed the
 * loaded ones no longer found. Each version found is reported to
 * stacks_catalogue_note (stacks.h). Returns 1 if the set of loaded stacks
 * changed, 0 if not, -1 when the worker cannot go on (out of memory). */
int loader_sync_stacks(struct worker *w);

/* Unload a stack marked removed (its refs at 0): fini its packages, free
 * its routes, take it off the list. */
void loader_stack_unload(struct worker *w, stack *st);

/* Load the core plugins of cfg->plugin_dir into the worker (all or
 * fail), except the folder named `skip` (NULL: none), and check that every
 * name of cfg->core_plugins is among them. 0, or -1 with err (logged). */
int loader_load_core(struct worker *w, const char *skip, char *err,
                     size_t errlen);

/* What a check's child loads with the loader's own code, after the core
 * plugins: the stack folder `dir` found under `root` (id and version, when
 * not NULL, must be its manifest's), or the single package folder `dir` as
 * `kind`. 0, or -1 with err; loader_last_file() then names the file the
 * refusal is about. */
int loader_load_stack_dir(struct worker *w, const char *root, const char *dir,
                          const char *id, const char *version, char *err,
                          size_t errlen);
int loader_load_package_dir(struct worker *w, const char *root,
                            const char *dir, int kind, char *err,
                            size_t errlen);
const char *loader_last_file(void);

/* In a check's child: report each package on `fd` before it is opened
 * (pkgcheck_child_progress). */
void loader_set_reporter(int fd);

/* Call `fn` with a stack's package index before that package is opened
 * (its constructors and init run next; on_host_ready 0) and before its
 * on_host_ready (1): a sandbox marks it on its status page. NULL: none. */
void loader_set_progress(void (*fn)(size_t idx, int on_host_ready));

/* Load the stack folder `dir` (under `root`) as a worker would with the
 * isolation `isolation` (NNO_ISOLATION_*): in-process, or from its
 * manifests with a sandbox's start as its trial (sandbox_init first).
 * What a check's child runs. 0, or -1 with err set. */
int loader_load_stack_as(struct worker *w, const char *root, const char *dir,
                         const char *id, const char *version, int isolation,
                         char *err, size_t errlen);

/* The host table given to every init from now on: a sandbox process
 * passes its proxy (sbx_api.c); NULL restores the host's own. A sandbox
 * that finds a package requiring a service says it cannot reach one. */
void loader_set_api(const nno_host_api *api);

/* fini and dlclose every plugin (reverse load order). */
void loader_unload_all(struct worker *w);

#endif
