/* Installed stacks at run time: install (archive or URL) and removal of
 * stack versions under DATA/stacks, the catalogue of every version found,
 * and how each worker follows the changes without a reload.
 *
 * A shared "stacks generation" counter (a named counter of the metrics
 * segment) moves after every install or removal. Every worker compares it
 * with the value it last saw (one atomic load) before the RESOLVE stage
 * and on a 1 s timer; when it moved, the worker rescans the stack folders
 * (loader_sync_stacks): new versions load through the loader's own code,
 * vanished ones are marked removed, every plugin's on_stacks_changed runs,
 * and a removed version is unloaded once no request or platform_event run
 * holds it (stack.refs).
 *
 * On disk: DATA/stacks/{id}/{version}/ holds the archive's files, read
 * only, and `.install.json` {"sha256","signed_by","installed_at","size"};
 * DATA/stacks/.staging/ holds installs in progress and .trash/ removals
 * in progress: both are emptied when the host starts. */
#ifndef NNO_HOST_STACKS_H
#define NNO_HOST_STACKS_H

#include <stddef.h>

#include <nno/plugin.h>

#include "config.h"

struct worker;
struct plugin;
struct stack;

/* The metrics counter every install and removal moves. */
#define STACKS_GEN_COUNTER "host.stacks.generation"
#define STACKS_INSTALL_FILE ".install.json"

/* Master, at start, before the workers: remove what an install or a
 * removal interrupted by a crash left (DATA/stacks/.staging, .trash). */
void stacks_clean_staging(const char *data_dir);

/* Worker: read the generation and start the 1 s timer. 0 or -1. */
int stacks_start(struct worker *w);
/* Worker: stop the timer (before the loop's last run). */
void stacks_stop(struct worker *w);
/* If the generation moved, rescan the stack folders and tell the
 * plugins. Cheap when it did not (one atomic load). */
void stacks_poll(struct worker *w);

/* Hold / release a loaded stack (a request given it, a platform_event
 * run). The last release of a removed stack unloads it from the loop. */
void stacks_ref(struct stack *st);
void stacks_unref(struct stack *st);

/* A sealed memfd copy of the open file `fd` (the object the loader
 * judged): what is loaded cannot change afterwards, whatever happens to
 * the file. The new descriptor, or -1 with err naming `shown`. */
int stacks_sealed_copy(int fd, const char *shown, char *err, size_t errlen);

/* For a folder holding STACKS_INSTALL_FILE (installed from an archive):
 * every file must match CHECKSUMS, none missing, none added. 0 (also for
 * a folder not from an archive), or -1 with err such as
 *   modified after install: packages/x/libx.so */
int stacks_verify_installed(const char *dir, int flags, char *err,
                            size_t errlen);
/* flags: hash only what is read after load (manifests, migrations, UI
 * assets), not the objects, which run from the sealed copies made and
 * checked at load. */
#define STACKS_VERIFY_DATA 1

/* With stacks.trusted_keys set, a folder installed from an archive must
 * have been installed signed by one of its keys (as recorded at install):
 * turning signatures on also stops what was installed unsigned before.
 * 0 (also for a folder not from an archive), or -1 with err. */
int stacks_verify_trusted(const nno_config *cfg, const char *dir, char *err,
                          size_t errlen);

/* The catalogue, rebuilt by each scan (loader_sync_stacks): reset, then
 * one note per version found, `error` NULL when it is loaded. */
void stacks_catalogue_reset(void);
void stacks_catalogue_note(const nno_config *cfg, const char *root,
                           const char *dir, const char *id,
                           const char *version, const char *error);
/* The ABI's stack_catalogue_at. */
int stacks_catalogue_at(size_t i, nno_stack_entry *out);

/* The ABI's stack_owner: the owner recorded for `id` at `version` in the
 * catalogue ("" for the operator's) copied into out. NNO_ENOENT if the
 * catalogue has no such version, NNO_ETOOBIG if out is too small. */
int stacks_owner(const char *id, const char *version, char *out, size_t cap);

/* Why stack `id` (idlen bytes) at `version` is not loaded, for a 503:
 * its refusal, or "it is not installed". Borrowed until the next scan. */
const char *stacks_why_missing(const char *id, size_t idlen,
                               const char *version);

/* The ABI's stack_install and stack_remove (the caller is a core
 * plugin). */
int stacks_install(struct worker *w, const nno_stack_install *in,
                   nno_stack_install_fn done, void *ud);
/* stacks_install for one platform: the stack id must be `owner`, every
 * installed version of it `owner`'s, and fewer than
 * stacks.max_owned_versions of them (409), checked once stack.json is read
 * from the staging folder and before anything is placed (the staging
 * folder removed). */
int stacks_install_owned(struct worker *w, const nno_stack_install *in,
                         const char *owner, nno_stack_install_fn done,
                         void *ud);
int stacks_remove(struct worker *w, const char *id, const char *version,
                  char *err, size_t errlen);

#endif
