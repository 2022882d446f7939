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
 * A crash, a hang (stacks.check_timeout_ms) or an init failure in the
 * child is a problem reported like any other.
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

#endif
