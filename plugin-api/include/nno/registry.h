/* The "nno.registry" service, version 1: what the registry core plugin
 * publishes for other plugins (IAM, billing, provisioning...).
 *
 *   const void *vt;
 *   uint32_t ver;
 *   if (api->service_lookup(p, NNO_REGISTRY_SERVICE, 1, &vt, &ver) == NNO_OK) {
 *     const nno_registry_v1 *reg = vt;
 *     char status[16];
 *     if (reg->platform_status("acme", status, sizeof status) == NNO_OK) ...
 *   }
 *
 * Add "requires": {"nno.registry": "^1"} to the package manifest to be
 * refused at load time when the registry is absent.
 *
 * The vtable only grows at the end; test `size` before calling a member
 * added after version 1.
 *
 * THREAD: call from the worker's loop thread only (any hook or callback).
 * OWNERSHIP: the vtable is borrowed until the caller's own fini. */
#ifndef NNO_REGISTRY_H
#define NNO_REGISTRY_H

#include <stddef.h>

#include "plugin.h"

#define NNO_REGISTRY_SERVICE "nno.registry"
#define NNO_REGISTRY_VERSION 1

/* A platform id: NNO_PLATFORM_ID_MIN to NNO_PLATFORM_ID_MAX characters of
 * [a-z0-9-], starting and ending with a letter or digit (the SDK's
 * nno_id_valid; ids become DNS labels and resource names), and neither of
 * the core API's host labels: "api.{baseDomain}" serves the core API and
 * "admin.{baseDomain}" the operator view. The registry refuses the others
 * when a platform is made, and `nno project init` (a project deploys to
 * the platform of its name) before anything is written. */
#define NNO_PLATFORM_ID_MIN 3
#define NNO_PLATFORM_ID_MAX 32
#define NNO_HOST_LABEL_API "api"
#define NNO_HOST_LABEL_ADMIN "admin"

typedef struct nno_registry_v1 {
  /* sizeof(nno_registry_v1) as the registry was built. */
  size_t size;
  /*
   * The status of platform `id` (NUL-terminated) as this worker currently
   * routes it: writes "active", "suspended" or "deleting" (NUL-terminated)
   * into `out` (`cap` bytes; 16 is enough). Returns 0, NNO_ENOENT for an
   * unknown platform, NNO_EINVAL for bad arguments or a `cap` too small.
   * O(1), from this worker's table in memory; the database is read only to
   * catch up after another change was committed (the shared counter
   * moved), so a change made by any worker is seen on the next call.
   */
  int (*platform_status)(const char *id, char *out, size_t cap);
  /*
   * 1 if `key` (`len` bytes, not NUL-terminated) is the current operator
   * key, else 0. Constant time in the key's content. The key is hashed and
   * never kept. As platform_status, a rotation in any worker is seen on the
   * next call.
   */
  int (*operator_key_check)(const char *key, size_t len);
  /*
   * Whether tenant `tenant` of platform `platform` is `ancestor` or lies
   * in its subtree: 1 yes, 0 no (or either tenant does not exist), or a
   * negative NNO_E... code. Reads the database (a point query up the
   * tree, at most 16 levels): for core API routes, not the hot path.
   */
  int (*tenant_within)(const char *platform, const char *tenant,
                       const char *ancestor);
  /*
   * The plan of platform `id` ("free" unless set), as platform_status:
   * O(1) from memory. NNO_ENOENT for an unknown platform.
   */
  int (*platform_plan)(const char *id, char *out, size_t cap);
  /*
   * Append a row to the operator audit log (GET /api/v1/audit): `actor`
   * ("operator", "key:{id}", "user:{platform}/{id}"), `action` (e.g.
   * "key.create"), `target` (e.g. "platform:acme"), `request_id` (NULL for
   * none) and `detail_json` (a JSON object as text, or NULL). Never put a
   * secret in it. NNO_EINVAL for bad arguments, NNO_EBUSY, NNO_EIO.
   */
  int (*audit_add)(const char *actor, const char *action, const char *target,
                   const char *request_id, const char *detail_json);
  /*
   * Whether credentials bound to tenant `tenant` of platform `platform`
   * may act: 0 when the tenant or one of its ancestors is suspended, else
   * 1 (an unknown tenant too: its credentials went with it); NNO_EINVAL
   * for bad arguments. O(1)
   * from this worker's memory, caught up like platform_status: a
   * suspension in any worker is seen on the next call. Test `size` first.
   */
  int (*tenant_active)(const char *platform, const char *tenant);
  /*
   * The incarnation of platform `id`: 16 hex characters drawn when the
   * platform was created, so that data kept outside core.db for a deleted
   * platform is never taken for that of a new platform of the same id.
   * Writes it NUL-terminated into `out` (`cap` >= 17). NNO_ENOENT for an
   * unknown platform or one being deleted. Reads the database: call it off
   * the hot path. Test `size` first.
   */
  int (*platform_incarnation)(const char *id, char *out, size_t cap);
  /*
   * The path of tenant `tenant` of platform `platform`: the tenant ids
   * from the root down to it, joined with '/' ("eu/fr"), written
   * NUL-terminated into `out` (`cap` bytes; 1024 is enough). NNO_ENOENT
   * for an unknown tenant, NNO_EINVAL for bad arguments. O(depth) from
   * this worker's memory, caught up like platform_status. Test `size`
   * first.
   */
  int (*tenant_path)(const char *platform, const char *tenant, char *out,
                     size_t cap);
  /*
   * What a platform shows its users: a JSON object, NUL-terminated in
   * `out` (`cap` bytes; NNO_REGISTRY_PROFILE_MAX is enough):
   *   {"id": "acme", "name": "Acme", "class": "platform",
   *    "status": "active", "branding": {...}}
   * "branding" is what the operator set (PATCH /api/v1/platforms/{id}):
   * any of "logo" (a data: URI of an image), "primary", "accent",
   * "background", "foreground" (colours "#rrggbb"); {} when none. Reads
   * the database: once per page, not per request. NNO_ENOENT for an
   * unknown platform or one being deleted, NNO_EINVAL for bad arguments
   * or a `cap` too small, NNO_EBUSY, NNO_EIO. Test `size` first.
   */
  int (*platform_profile)(const char *id, char *out, size_t cap);
  /*
   * The stack versions active on platform `id`, in the order its routes
   * are looked up: i = 0.. until NNO_ENOENT (also for an unknown
   * platform). O(1) from this worker's table, caught up like
   * platform_status. The handle is borrowed as stack_find()'s are (valid
   * until on_stacks_changed). Test `size` first.
   */
  int (*platform_stack_at)(const char *id, size_t i, nno_stack **out);
  /*
   * Call `each` for the tenants of `platform` in the subtree of `root`
   * (root included; NULL or "" for every tenant of the platform), parents
   * before children, siblings by id, at most NNO_REGISTRY_TENANTS_MAX of
   * them. `path` is the tenant's path from the root of the platform
   * ("eu/fr"), `status` "active" or "suspended" (its own). Every string is
   * borrowed for the call. `each` returns 0 to go on, anything else to
   * stop (returned as is). Reads the database: not for the hot path.
   * NNO_ETOOBIG when the subtree holds more than the bound (`each` has
   * seen the first NNO_REGISTRY_TENANTS_MAX: a list cut short, not an
   * error), NNO_ENOENT for an unknown platform or root, NNO_EINVAL,
   * NNO_EBUSY, NNO_EIO. Test `size` first.
   */
  int (*tenant_list)(const char *platform, const char *root,
                     int (*each)(void *ud, const char *id, const char *name,
                                 const char *path, const char *status),
                     void *ud);
  /*
   * Change platform `id`'s plan (1..32 bytes of [a-z0-9-]) or status
   * ("active" or "suspended") on behalf of another core plugin (billing,
   * when the payment provider says so), as the operator API would: stored,
   * audited as `platform.plan` / `platform.suspend` / `platform.resume`
   * with `actor` and `reason` (NULL for none, no secret), and seen by
   * every worker within a second. A status change of a platform being
   * deleted is NNO_ESTATE. A suspension is recorded as `actor`'s, and
   * resuming ("active") lifts only a suspension of the same `actor`: one
   * the operator made (or took over by suspending again) is
   * NNO_EREFUSED, changing nothing. NNO_ENOENT for an unknown platform,
   * NNO_EINVAL, NNO_EBUSY, NNO_EIO. Writes the database: not for the hot
   * path. Test
   * `size` first.
   */
  int (*platform_set_plan)(const char *id, const char *plan,
                           const char *actor, const char *reason);
  int (*platform_set_status)(const char *id, const char *status,
                             const char *actor, const char *reason);
  /*
   * Call `each` for up to `max` platforms (1..NNO_REGISTRY_PAGE_MAX) whose
   * id sorts after `after` (NULL or "" for the first), in id order, with
   * the platform's id and plan ("free" unless set), both borrowed for the
   * call; platforms being deleted are skipped. A caller walks every
   * platform page by page, passing the last id it saw, each page one
   * short read of the database: not for the hot path. `each` returns 0
   * to go on, anything else to stop (returned as is). 0 when the page was
   * walked (fewer than `max` calls: the last page), NNO_EINVAL, NNO_EBUSY,
   * NNO_EIO. Test `size` first.
   */
  int (*platform_page)(const char *after, size_t max,
                       int (*each)(void *ud, const char *id, const char *plan),
                       void *ud);
} nno_registry_v1;

/* Bounds of the members above. */
#define NNO_REGISTRY_PROFILE_MAX 131072
#define NNO_REGISTRY_TENANTS_MAX 1000
#define NNO_REGISTRY_PAGE_MAX 1000

#endif
