/* Shared state and private prototypes of the registry core plugin.
 *
 * One copy of the plugin runs in each worker process, so its state is one
 * static instance per process (`g_reg`), touched only on the worker's loop
 * thread.
 *
 * BLOCKING: the operator API runs its sqlite statements on the loop thread.
 * They are short (point reads and small transactions on a local WAL
 * database) and the operator API is not on the hot path; the RESOLVE hook
 * never touches the database except to replay the changes log after the
 * shared `registry` counter moved. A busy database (another worker's write
 * lasting longer than busy_timeout) answers 503. */
#ifndef NNO_REGISTRY_INTERNAL_H
#define NNO_REGISTRY_INTERNAL_H

#include <limits.h>
#include <stdint.h>

#include <nno/plugin.h>
#include <sqlite3.h>

#include "resolve.h"
#include "store.h"
#include "ttab.h"
#include <jansson.h>
#include <nno/billing.h>
#include <nno/provisioning.h>

/* The name of the shared counter that moves after every committed change
 * other workers must see (routing, the operator key). */
#define REG_COUNTER "registry"
/* The settings key holding the hex SHA-256 of the operator key. */
#define REG_KEY_SETTING "operator_key_sha256"

typedef struct reg {
  nno_plugin *p;
  sqlite3 *db;
  char db_path[PATH_MAX];
  char key_path[PATH_MAX];
  char base_domain[256];
  size_t base_len;
  unsigned char op_hash[32]; /* SHA-256 of the operator key */
  int have_hash;
  uint64_t counter_seen; /* the counter value this worker caught up to */
  int64_t seq_applied;   /* the last changes row applied */
  rtable *routes;
  int stacks_resolved;  /* stack handles looked up in the routing table */
  int catalogue_synced; /* stacks/stack_versions match what is loaded */
  /* Tenants suspended themselves or under a suspended ancestor, as
   * "platform/tenant" keys sorted by strcmp; reloaded with the routes. */
  char (*suspended)[2 * 33];
  size_t nsuspended;
  /* Every tenant with its parent (tenant paths); reloaded with them. */
  ttab *tenants;
  /* The "nno.provisioning" service, looked up once the host is ready;
   * NULL without the provisioning plugin (then the registry removes a
   * deleted platform's folder itself and activations provision nothing). */
  const nno_provisioning_v1 *prov;
  /* The "nno.billing" service, looked up once the host is ready; NULL
   * without the billing plugin (then any well-formed plan name is taken
   * and no one is told of changes). */
  const nno_billing_v1 *billing;
} reg;

extern const nno_host_api *api;
extern reg g_reg;

/* plugin.c */

/* Catch up with changes committed by any worker if the shared counter
 * moved: replays the changes log into the routing table and reloads the
 * operator key hash. Cheap (one atomic load) when nothing changed. */
void reg_refresh(void);
/* Look up stack handles for the routing table once the host has loaded
 * the stacks (they load after core plugins). */
void reg_resolve_stacks(void);
/* Synchronise the stack catalogue with the stacks this worker loaded, once
 * per worker. Returns a store_rc. */
int reg_catalogue_sync(void);
/* After committing a change other workers must see: move the counter. */
void reg_committed(void);
/* Reload g_reg.suspended and g_reg.tenants from the tenants table.
 * Returns a store_rc. */
int reg_load_suspended(void);

/* opkey.c */

/* First start: create the operator key if none exists (only the worker
 * whose insert wins writes DATA/operator.key). Loads the hash into g_reg.
 * Returns 0 or a negative NNO_E... code after api->plugin_fail(). */
int opkey_init(void);
/* Reload the hash from the settings table. */
int opkey_load(void);
/* 1 if `key` hashes to the current operator key (constant time). */
int opkey_matches(const char *key, size_t len);
/* POST /api/v1/operator-key/rotate */
int opkey_on_rotate(nno_req *req, void *ud);

/* api_platforms.c, api_tenants.c, api_stacks.c, api_audit.c: each binds
 * its routes; returns 0 or an NNO_E... code. */
int api_platforms_init(nno_plugin *p);
int api_tenants_init(nno_plugin *p);
int api_stacks_init(nno_plugin *p);
/* POST /stacks (install), DELETE /stacks/{id}/{version} (api_install.c). */
int api_install_init(nno_plugin *p);
/* Per version of stack `id`: state, error, source, in_use, signed_by,
 * sha256, installed_at (a new JSON array, NULL when out of memory). */
json_t *reg_stack_details(const char *id, const char *const *versions,
                          size_t n);
int api_audit_init(nno_plugin *p);
/* api_quarantine.c: GET/DELETE /api/v1/quarantines, and the audit of a
 * quarantine the host reports (the descriptor's on_host_event). */
int api_quarantine_init(nno_plugin *p);
/* api_logs.c: GET /api/v1/platforms/{platform}/logs. */
int api_logs_init(nno_plugin *p);
void reg_on_host_event(nno_plugin *p, const nno_host_event *ev);

/* ---- whose stack versions a caller sees (stack_owner.c) ---------------- */
/* 1 and its version in v when the catalogue's stack `s` is a version of
 * stack `id` (whose version fits STORE_STACK_MAX), else 0. */
int reg_stack_version_of(nno_stack *s, const char *id,
                         char v[STORE_STACK_MAX + 1]);

/* The caller of req as a viewer of stack versions: 0 for the operator
 * (out ""), 1 for anyone else (out: its platform's id; a value matching
 * no platform when it has none). */
int reg_viewer(nno_req *req, char out[STORE_ID_MAX + 1]);
/* The owner of stack `id` at `version` ("" the operator's; also on a host
 * that records no owners, or for a version it does not know). */
void reg_stack_owner(const char *id, const char *version,
                     char out[STORE_ID_MAX + 1]);
/* 1 if `viewer` (NULL: the operator, who sees all) sees that version: the
 * operator's, or its own platform's. */
int reg_stack_visible(const char *viewer, const char *id, const char *version);
/* 1 if that version may be chosen, without being named, for platform
 * `pid` by `viewer` (NULL: the operator): the operator's, or `pid`'s own
 * when the viewer is the operator or `pid` itself. */
int reg_stack_usable(const char *pid, const char *viewer, const char *id,
                     const char *version);
/* The newest loaded version of `id` visible to `viewer`, or usable on
 * `pid` by `viewer`; NULL when there is none. */
nno_stack *reg_stack_newest_visible(const char *viewer, const char *id);
nno_stack *reg_stack_newest_usable(const char *pid, const char *viewer,
                                   const char *id);

/* ---- stack requirements (stack_requires.c) ----------------------------- */

/* 0 if every stack that `s` requires is active on platform `pid` at a
 * version in range; else -1 with the explanation in msg, e.g.
 *   stack "crm" 2.0.0 requires stack "default" ^2.0; platform "acme" has
 *   default 1.0.0 active (installed: 1.0.0, 2.1.0) */
int reg_requires_met(const char *pid, nno_stack *s, char *msg, size_t cap);
/* As reg_requires_met, against the stacks a creation activates (ids[i]
 * at versions[i], n of them) instead of a platform's activations. */
int reg_requires_among(nno_stack *s, const char *const *ids,
                       const char *const *versions, size_t n, char *msg,
                       size_t cap);
/* The newest loaded version of stack `id` usable on platform `pid` by
 * `viewer` (reg_stack_usable) whose requirements `pid` meets and which
 * the stacks active there that require `id` accept; NULL when none does. */
nno_stack *reg_requires_pick(const char *pid, const char *viewer,
                             const char *id);
/* For a creation's list (ids[i] at vers[i], n of them; pinned[i] zero
 * for an item given without a version): replace the versions of the
 * unpinned items by the newest loaded ones usable on platform `pid` by
 * the operator (reg_stack_usable; earlier items first) with
 * which every item's requirements are met among the list. 0 when such a
 * choice exists (vers updated), -1 when none does (vers unchanged: the
 * caller explains with reg_requires_among). vers[i] holds
 * STORE_STACK_MAX + 1 bytes. */
int reg_requires_choose(const char *pid, const char *const *ids,
                        char (*vers)[STORE_STACK_MAX + 1], const int *pinned,
                        size_t n);
/* 0 if no other stack active on `pid` requires stack `id` in a way that
 * moving it to `version` (NULL: deactivating it) would break; else -1
 * with msg naming both. Stacks whose active version this worker has not
 * loaded cannot be read and are not counted. */
int reg_requires_dependents(const char *pid, const char *id,
                            const char *version, char *msg, size_t cap);
/* Without provisioning: finish removing the folders of platforms deleted
 * before a crash. */
void api_platforms_sweep(void);

/* prov.c: the registry's side of "nno.provisioning". */

/* Look the service up into g_reg.prov (from on_host_ready). */
void reg_prov_lookup(void);
/* Call fn(ud) on the loop once the current callback has returned (a 0 ms
 * timer): a handler that returned NNO_ASYNC never sees its response end
 * before it returned, whenever provisioning calls back. 0, or an NNO_E...
 * code (then fn is never called). */
int reg_defer(void (*fn)(void *ud), void *ud);
/* A request waiting for the answer of the same request (same
 * Idempotency-Key) still pending: `fn` (the route handler) runs again in a
 * moment with `ud` = the wait, until it answers or goes asynchronous on
 * its own (60 s at most, then 409). Call from the handler when
 * hu_idem_begin_wait() returned 2, passing the handler's `ud` when it is
 * such a wait (NULL on the first call); return what this returns. */
typedef struct reg_wait reg_wait;
int reg_idem_wait(nno_req *req, nno_handler_fn fn, reg_wait *w);
/* Answer `status` with "{what} failed at step \"{step}\": {message}" and,
 * when `after` is not NULL, "; {after}". Returns NNO_OK. */
int reg_prov_problem(nno_req *req, int status, const char *what,
                     const char *step, const char *message,
                     const char *after);
/* Platform `id`'s activations as JSON text [{"stack","version"},...]
 * (malloc'd; free it), NULL on error. */
char *reg_stacks_json(const char *id);
/* Once platform `pid` is deleted: remove every installed version it
 * owns that no platform has active (logged, each); versions active
 * elsewhere stay. */
void reg_platform_stacks_drop(const char *pid);
/* How many installed versions `pid` owns, listed "id version, ..." into
 * `out` (`cap` bytes, cut short when full). */
size_t reg_owned_versions(const char *pid, char *out, size_t cap);
/* Once provisioning removed platform `id`: delete its row (gone already is
 * fine), with an audit row `action` (`req`'s actor, or "system" when NULL)
 * and a changes row, in one transaction; moves the counter. A store_rc. */
int reg_platform_forget(nno_req *req, const char *id, const char *action,
                        json_t *detail);
/* With provisioning, at start: finish the deletion of platforms left
 * "deleting" by a crash and of folders left by earlier deletions. */
void reg_prov_sweep(void);
/* 1 if the provisioning plugin can align databases (stack_align). */
int reg_prov_can_align(void);
/* Bring platform `platform`'s databases of `stack` to the migration level
 * of `version` (the version its activation row names); `done` (NULL: log
 * the outcome only) as stack_align's. 0, or a code (done is not called). */
int reg_prov_align(const char *platform, const char *stack,
                   const char *version, nno_prov_done_fn done, void *ud);

/* ---- plans (plan.c) ------------------------------------------------------ */

/* Look nno.billing up into g_reg.billing (from on_host_ready). */
void reg_billing_lookup(void);
/* The plan of a platform created without one: billing's default plan, or
 * "free" without billing. */
const char *reg_default_plan(void);
/* 0 if `plan` is well-formed and names a plan billing knows; otherwise
 * answers 422 naming the plans that exist and returns -1. */
int reg_plan_check(nno_req *req, const char *plan);
/* After COMMIT: tell billing that platform `id` is on `plan` now (NULL:
 * deleted). A failure is logged. */
void reg_plan_tell(const char *id, const char *plan, const char *actor,
                   const char *request_id);
/* Inside the open transaction: the `platform.plan` audit row. A store_rc. */
int reg_plan_audit(const char *actor, const char *request_id, const char *id,
                   const char *from, const char *to, const char *reason);
/* Inside the open transaction, *p loaded and not "deleting": set the
 * status, record who suspended it (`suspender`: "operator" or the
 * service's actor; cleared on resume) and `reason`, audit
 * platform.suspend or platform.resume {from, to, reason, suspended_by},
 * add the changes row and COMMIT (the caller rolls back on error and
 * calls reg_committed() on success). A store_rc. */
int reg_status_write(const char *id, const char *want, const char *actor,
                     const char *suspender, const char *request_id,
                     const char *reason, store_platform *p);
/* nno.registry's platform_set_plan and platform_set_status. */
int reg_svc_set_plan(const char *id, const char *plan, const char *actor,
                     const char *reason);
int reg_svc_set_status(const char *id, const char *status, const char *actor,
                       const char *reason);

#endif
