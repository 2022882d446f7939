/* The "nno.provisioning" service, version 1: what the provisioning core
 * plugin publishes for the registry (and later billing): the control
 * plane that creates, migrates and removes each platform's resources.
 *
 * Every call is idempotent (calling it again once it succeeded changes
 * nothing), compensating (when a step fails, the steps of the same call
 * that succeeded are undone before `done` reports the failure, and the
 * failure is recorded with the resource) and crash-safe (the intent is
 * journalled before any step; after a kill, the next start finishes or
 * undoes it).
 *
 * THREAD: call on the worker's loop thread; `done` runs on the loop,
 * exactly once, unless the call returned an error. `step` and `message`
 * are NUL-terminated and borrowed for the callback (NULL on success):
 * `step` names what failed (e.g. "sql:default-notes:migrate"), `message`
 * why.
 * OWNERSHIP: arguments are copied. The vtable is borrowed until the
 * caller's fini. Test `size` before calling a member added later. */
#ifndef NNO_PROVISIONING_H
#define NNO_PROVISIONING_H

#include <stddef.h>

#define NNO_PROVISIONING_SERVICE "nno.provisioning"
#define NNO_PROVISIONING_VERSION 1

typedef void (*nno_prov_done_fn)(int status, const char *step,
                                 const char *message, void *ud);

typedef struct nno_provisioning_v1 {
  /* sizeof(nno_provisioning_v1) as the plugin was built. */
  size_t size;
  /* What every platform has, whatever its stacks: its data folder and its
   * console shell folder. `incarnation` is the registry's (16 hex). */
  int (*platform_create)(const char *platform, const char *incarnation,
                         nno_prov_done_fn done, void *ud);
  /* The resources the packages of stack `stack` at `version` declare
   * (created if missing, kept if present), their SQL migrations applied,
   * then NNO_PLATFORM_ACTIVATED sent to the packages. Used for a first
   * activation and for an upgrade or rollback alike. */
  int (*stack_activate)(const char *platform, const char *stack,
                        const char *version, nno_prov_done_fn done,
                        void *ud);
  /* NNO_PLATFORM_DEACTIVATED sent to the packages; the resources stay. */
  int (*stack_deactivate)(const char *platform, const char *stack,
                          const char *version, nno_prov_done_fn done,
                          void *ud);
  /* Remove everything platform `platform` has, once the requests using
   * its resources have ended: NNO_PLATFORM_REMOVING is sent to the
   * packages of `stacks` (a JSON array of {"stack", "version"}, or NULL),
   * then the resources are removed and forgotten. With `keep_data` 1, the
   * platform's folder is first archived to
   * DATA/archive/{platform}-{incarnation}.tar.gz (the path is given as
   * `message` on success). Call after the registry stopped routing the
   * platform (status "deleting"). */
  int (*platform_remove)(const char *platform, const char *incarnation,
                         const char *stacks, int keep_data,
                         nno_prov_done_fn done, void *ud);
  /* Added after version 1 (test `size`, and NULL): bring the sql resources
   * platform `platform` has for stack `stack` to the migration level of
   * `version` (the stored down migrations, or the forward ones), creating
   * nothing and telling no package. The registry calls it at start for
   * every activation row, and after an activation that failed for the
   * version that stays: the row is the truth, the databases follow it.
   * NNO_EREFUSED when a database is further and a migration it holds has
   * no down migration (it is left as it is). */
  int (*stack_align)(const char *platform, const char *stack,
                     const char *version, nno_prov_done_fn done, void *ud);
  /* Added after stack_align (test `size`, and NULL): measure the bytes
   * each resource holds on disk (a database with its WAL, a bucket's
   * objects), on the pool, for platform `platform` or, NULL, every
   * platform (at most NNO_PROV_USAGE_MAX resources). On success `message`
   * is a JSON object {platform: {"type:stack-name": bytes, ...}, ...}
   * ("sql:default-notes"), borrowed for the callback. Changes nothing:
   * for usage reports and billing's hourly samples. */
  int (*resource_usage)(const char *platform, nno_prov_done_fn done,
                        void *ud);
} nno_provisioning_v1;

/* The most resources resource_usage() measures in one call. */
#define NNO_PROV_USAGE_MAX 100000

#endif
