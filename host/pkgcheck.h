/* One decision on whether a package or a stack is loadable, used by every
 * check (`nno check-package`, `nno stack check`, `nno serve --check`,
 * install) and by the loader itself.
 *
 * The static part (manifests read strictly, unknown fields refused with
 * the nearest known one suggested; migrations; the object's descriptor
 * against the manifest and the host's ABI; the stack's version ranges
 * against its packages; the folder's id and version against stack.json;
 * `requires` against the services that will exist) runs in the caller.
 * The dynamic part runs the packages' init in a throw-away child process
 * (fork; the core plugins loaded there with a temporary data folder, so
 * `requires` resolve against the services they really publish), then
 * compares the routes each package bound with those its manifest declares.
 * on_host_ready runs there too, after init, as a worker runs it. A crash,
 * a hang (stacks.check_timeout_ms), an exit before init returned, a
 * process an init leaves running, or an init failure in the child is a
 * problem reported like any other.
 *
 * Every problem names the file, the field (JSON path; "" when about the
 * file as a whole), what was expected and what was found.
 */
#ifndef NNO_HOST_PKGCHECK_H
#define NNO_HOST_PKGCHECK_H

#include <limits.h>
#include <stddef.h>

#include <jansson.h>

#include "config.h"

typedef struct pkgcheck_problem {
  char file[PATH_MAX];
  char field[128];
  char message[1024];
  /* 1: the loader's message began "FILE: " (and "field \"F\": "), cut
   * off into file and field; 0: message is the loader's whole text. */
  int prefixed;
} pkgcheck_problem;

typedef struct pkgcheck_report {
  pkgcheck_problem *v;
  size_t n, cap;
  char id[65];      /* the stack's, once read */
  char version[64];
} pkgcheck_report;

/* Check the stack folder `dir`. `expect_id`/`expect_version` (either may
 * be NULL): what its location says it is ({id}/{version}/ folders). With
 * `run_init`, the dynamic part too. Returns the number of problems (0:
 * loadable), or -1 when the check itself could not run (in rep too). */
int pkgcheck_stack(const nno_config *cfg, const char *dir,
                   const char *expect_id, const char *expect_version,
                   int run_init, pkgcheck_report *rep);

/* The same for one package folder outside any stack. */
int pkgcheck_package(const nno_config *cfg, const char *dir, int run_init,
                     pkgcheck_report *rep);

/* {"ok": bool, "stack": {"id","version"} | null, "problems": [{"file",
 * "field","message"}]}: what `nno stack check --json` prints. */
json_t *pkgcheck_report_json(const pkgcheck_report *rep);
void pkgcheck_report_free(pkgcheck_report *rep);

/* The loader's own text of problem `p` (what its "stack refused" log line
 * says), into buf. */
void pkgcheck_problem_text(const pkgcheck_problem *p, char *buf, size_t cap);

/* Add a problem about `file` from the loader's message `err`: a leading
 * "FILE: " and "field \"F\": " are cut off into file and field. 0, or -1
 * when out of memory. */
int pkgcheck_add(pkgcheck_report *rep, const char *file, const char *err);

/* pkgcheck_stack with the trust checks rooted at `root` (the stacks folder
 * it was found in), as serve --check and the loader see it. */
int pkgcheck_stack_in(const nno_config *cfg, const char *root,
                      const char *dir, const char *expect_id,
                      const char *expect_version, int run_init,
                      pkgcheck_report *rep);

/* ---- the decisions the loader shares -------------------------------- */

struct plugin;
#include "manifest.h"

/* Read the manifest of package folder `dir`, found under `root`, check
 * its migrations/ and open its object, returned in *so_fd with its path in
 * `so` -- after checking that the folder, its package.json and the object
 * are inside `root` and trusted (trust_path), and reading and opening only
 * the files judged (trust_open). 0 (*m then to be freed, *so_fd closed),
 * or -1 with the reason in err. */
int pkgcheck_package_open(const char *root, const char *dir,
                          package_manifest *m, char *so, size_t socap,
                          int *so_fd, char *err, size_t errlen);

/* Read the manifest of stack folder `dir` under `root` after checking the
 * folder and its stack.json (trust_path); with expect_id/expect_version,
 * that they are the manifest's. 0, *sm then to be freed; or -1. */
int pkgcheck_stack_open(const char *root, const char *dir,
                        const char *expect_id, const char *expect_version,
                        stack_manifest *sm, char *err, size_t errlen);

/* Is `m` what the stack `sm` wants as its i-th package (its name, a
 * version in the range)? 0, or -1 with err. */
int pkgcheck_stack_wants(const stack_manifest *sm, size_t i,
                         const package_manifest *m, char *err, size_t errlen);

/* The package's manifest before its object is opened: the kind it is
 * loaded as, the ABI it says it was built for, and for a feature package
 * a name that is none of cfg's core plugins'. 0, or -1 with err. */
int pkgcheck_manifest_fits(const nno_config *cfg, const package_manifest *m,
                           const char *so, int want_kind, char *err,
                           size_t errlen);

/* After a feature package's init: the routes it bound are exactly those
 * its manifest declares (a route bound but not declared, or declared but
 * not bound, is a problem). 0, or -1 with err. */
int pkgcheck_routes(const struct plugin *p, char *err, size_t errlen);

/* Run fn(arg, fd) in a forked child that reports to the parent on `fd`
 * with pkgcheck_child_progress and pkgcheck_child_problem, then _exits.
 * The parent waits cfg->stack_check_timeout_ms at most, then kills the
 * child's process group (it is its own group, so what an init started
 * goes too); a crash (a signal), a hang, or an exit before fn returned
 * (exit(0) in an init) is a problem naming the package whose turn it
 * was. Returns the number of problems added to rep,
 * or -1 when the child could not be started. */
int pkgcheck_fork(const nno_config *cfg, void (*fn)(void *arg, int fd),
                  void *arg, pkgcheck_report *rep);
/* In the child: package `name` (manifest `file`) is loaded next. */
void pkgcheck_child_progress(int fd, const char *file, const char *name);
/* In the child: the loader refused, saying `err` about `file`. */
void pkgcheck_child_problem(int fd, const char *file, const char *err);
/* In the child: on_host_ready of package `name` (manifest `file`) runs
 * next. */
void pkgcheck_child_host_ready(int fd, const char *file, const char *name);
/* In the child: 1 when a process started by what ran so far (an init that
 * forks) is still running, else 0. */
int pkgcheck_child_left(void);
/* The isolation (NNO_ISOLATION_*) a worker gives stack `id` found at
 * `dir` under the stacks folder `root` (root == dir: a folder checked
 * alone, builtin when it lies in the builtin stacks folder): config_isolation
 * as the loader asks it. */
int pkgcheck_isolation(const nno_config *cfg, const char *root,
                       const char *dir, const char *id);
/* "SIGSEGV" for SIGSEGV and the other usual ones, else "signal N" written
 * to buf. */
const char *pkgcheck_signal_name(int sig, char *buf, size_t cap);

#endif
