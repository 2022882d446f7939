/* The registry's sqlite store: opening DATA/core.db, numbered migrations,
 * and every query the plugin makes. Nothing here calls the host ABI, so the
 * unit tests link this file alone against a temporary database.
 *
 * Conventions:
 *   - Every function returns a store_rc. STORE_ERROR (or STORE_BUSY) leaves
 *     the reason in sqlite3_errmsg(db).
 *   - Functions that change rows do not open transactions; the caller wraps
 *     them with store_begin()/store_commit() (or store_rollback() on any
 *     error), so one API call is one transaction, all or nothing.
 *   - Row structs hold copies; list callbacks receive a row borrowed for the
 *     duration of the callback only. A callback returning non-zero stops the
 *     iteration and that value is returned.
 *   - Values are always bound to prepared statements, never formatted into
 *     SQL text.
 *
 * THREAD: a sqlite3 handle is used by one thread (the worker's loop thread).
 * Several worker processes share the file: WAL mode, busy_timeout 5000 ms,
 * and writes in BEGIN IMMEDIATE transactions. */
#ifndef NNO_REGISTRY_STORE_H
#define NNO_REGISTRY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include <nno/registry.h>

typedef enum store_rc {
  STORE_OK = 0,
  STORE_NOTFOUND = 1, /* no such row */
  STORE_EXISTS = 2,   /* a primary key or unique constraint */
  STORE_FK = 3,       /* a foreign key: missing parent, or rows still refer */
  STORE_CYCLE = 4,    /* the tenant cycle trigger refused a parent */
  STORE_INVALID = 5,  /* a CHECK, NOT NULL or type constraint */
  STORE_STALE = 6,    /* the row's version differs from the expected one */
  STORE_BUSY = 7,     /* locked for longer than busy_timeout */
  STORE_ERROR = 8,    /* anything else; sqlite3_errmsg() says what */
  STORE_RETIRED = 9,  /* a tenant id a deleted tenant of the platform had */
} store_rc;

/* Lengths in bytes, without the NUL. Names are up to 128 characters of
 * UTF-8, hence 512 bytes. */
#define STORE_ID_MAX 32
_Static_assert(STORE_ID_MAX == NNO_PLATFORM_ID_MAX,
               "a platform id is an id of the store");
/* Shortest ids: platform ids become DNS labels and resource names, so 3
 * (nno/registry.h); tenant ids are often region or unit codes ("eu"),
 * so 2. */
#define STORE_PLATFORM_ID_MIN NNO_PLATFORM_ID_MIN
#define STORE_TENANT_ID_MIN 2
#define STORE_NAME_MAX 512
#define STORE_STACK_MAX 64
#define STORE_TIME_MAX 20 /* 2026-11-28T10:00:00Z */

/* ---- opening and migrations -------------------------------------------- */

/* One numbered migration: SQL run with sqlite3_exec (no values). */
typedef struct store_migration {
  int version;
  const char *name;
  const char *sql;
} store_migration;

/* The migrations, in ascending order (migrations.c). */
extern const store_migration store_migrations[];
extern const size_t store_nmigrations;

/* The newest schema version this code knows. */
int store_latest_version(void);

/* Open (creating if needed) the database at `path`, switch it to WAL, turn
 * on foreign keys, set busy_timeout to 5000 ms and register the "semver"
 * collation. On failure *out is NULL and `err` says why. */
int store_open(const char *path, sqlite3 **out, char *err, size_t errlen);

/* Apply every migration newer than the database's version, in one BEGIN
 * IMMEDIATE transaction (so concurrent starters apply them once). Refuses a
 * database whose version is newer than store_latest_version() with
 * "core.db schema version N is newer than this host supports (M)". */
int store_migrate(sqlite3 *db, char *err, size_t errlen);

/* The same, stopping at `target` (for tests of upgrades between versions). */
int store_migrate_to(sqlite3 *db, int target, char *err, size_t errlen);

/* The highest applied migration (0 for an empty database). */
int store_schema_version(sqlite3 *db, int *out);

/* ---- transactions and time --------------------------------------------- */

int store_begin(sqlite3 *db);      /* BEGIN IMMEDIATE: takes the write lock */
int store_begin_read(sqlite3 *db); /* BEGIN: a consistent snapshot */
int store_commit(sqlite3 *db);
/* Roll back if a transaction is open; never fails visibly. */
void store_rollback(sqlite3 *db);

/* Now (or `t` seconds since the epoch) as ISO-8601 UTC to the second. */
void store_now(char out[STORE_TIME_MAX + 1]);
void store_time(int64_t t, char out[STORE_TIME_MAX + 1]);

/* ---- settings ---------------------------------------------------------- */

int store_setting_get(sqlite3 *db, const char *key, char *out, size_t cap);
int store_setting_put(sqlite3 *db, const char *key, const char *value);
/* Insert only if absent: STORE_EXISTS when the key is already set. */
int store_setting_add(sqlite3 *db, const char *key, const char *value);

/* ---- platforms --------------------------------------------------------- */

typedef struct store_platform {
  char id[STORE_ID_MAX + 1];
  char name[STORE_NAME_MAX + 1];
  char cls[16];    /* "platform" | "user_project" */
  char status[16]; /* "active" | "suspended" | "deleting" */
  char plan[STORE_ID_MAX + 1];
  char owner[STORE_NAME_MAX + 1];
  int has_owner; /* owner is NULL when 0 */
  char created_at[STORE_TIME_MAX + 1];
  char updated_at[STORE_TIME_MAX + 1];
  int64_t version;
} store_platform;

typedef int (*store_platform_cb)(void *ud, const store_platform *p);
/* For the routing table: just id and status. */
typedef int (*store_status_cb)(void *ud, const char *id, const char *status,
                               const char *plan);

int store_platform_get(sqlite3 *db, const char *id, store_platform *out);
/* Insert with version 1 and both timestamps now; fills them into *p. */
int store_platform_insert(sqlite3 *db, store_platform *p);
/* Write name, plan and owner of *p, bump version and updated_at, and read
 * the row back into *p. `if_version` > 0: STORE_STALE unless the stored
 * version equals it. */
int store_platform_update(sqlite3 *db, store_platform *p, int64_t if_version);
/* Set the status (bumping version) and read the row back into *out. */
int store_platform_set_status(sqlite3 *db, const char *id, const char *status,
                              store_platform *out);
/* Who suspended platform `id` ("" while active; "operator" for the
 * operator API, else the service's actor, e.g. "billing"), copied into
 * by (cap bytes). STORE_NOTFOUND for an unknown platform. */
int store_platform_suspender(sqlite3 *db, const char *id, char *by,
                             size_t cap);
/* Record who suspended `id` and why ("", "" when it is resumed). */
int store_platform_set_suspender(sqlite3 *db, const char *id, const char *by,
                                 const char *reason);
/* Delete the platform; tenants and activations go with it. */
int store_platform_delete(sqlite3 *db, const char *id);
/* Ordered by id, after `after` (NULL: from the start); `cls`/`status`
 * filter when not NULL. At most `limit` rows. */
int store_platform_list(sqlite3 *db, const char *cls, const char *status,
                        const char *after, int limit, store_platform_cb cb,
                        void *ud);
/* Every platform's id and status, ordered by id. */
int store_platform_each(sqlite3 *db, store_status_cb cb, void *ud);
/* Up to `limit` platforms not being deleted whose id sorts after `after`
 * (NULL: from the start), by id: id, status and plan. */
int store_platform_page(sqlite3 *db, const char *after, int limit,
                        store_status_cb cb, void *ud);
/* One platform's status: STORE_NOTFOUND when absent. */
int store_platform_status(sqlite3 *db, const char *id, char *out, size_t cap);
/* 1 if tenant `tenant` of `platform` is `ancestor` or below it, 0 if not
 * (or either is missing); a negative store_rc on error. */
int store_tenant_within(sqlite3 *db, const char *platform, const char *tenant,
                        const char *ancestor);
/* One platform's plan: STORE_NOTFOUND when absent. */
int store_platform_plan(sqlite3 *db, const char *id, char *out, size_t cap);
/* One platform's incarnation (16 hex, drawn when it was created):
 * STORE_NOTFOUND when absent or being deleted. */
int store_platform_incarnation(sqlite3 *db, const char *id, char *out,
                               size_t cap);
/* The same whatever the platform's status ("deleting" included). */
int store_platform_incarnation_any(sqlite3 *db, const char *id, char *out,
                                   size_t cap);
/* The branding of platform `id` (any status): *out is the JSON object's
 * text, malloc'd (the caller frees it), or NULL when none was set.
 * STORE_NOTFOUND when the platform does not exist. */
int store_platform_branding(sqlite3 *db, const char *id, char **out);
/* Set (NULL: clear) the branding of platform `id`, without touching its
 * version: the caller's store_platform_update() bumps it in the same
 * transaction. STORE_NOTFOUND, STORE_INVALID (not a JSON object). */
int store_platform_set_branding(sqlite3 *db, const char *id,
                                const char *json);
/* The tenants of `platform` under `root` (root included; NULL: every
 * tenant), depth first: parents before children, siblings by id, at most
 * `limit`. `path` runs from the platform's root ("eu/fr"). Strings are
 * borrowed for the call. STORE_NOTFOUND when `root` is given and does not
 * exist. */
typedef int (*store_tenant_tree_cb)(void *ud, const char *id,
                                    const char *name, const char *path,
                                    const char *status);
int store_tenant_tree(sqlite3 *db, const char *platform, const char *root,
                      int limit, store_tenant_tree_cb cb, void *ud);
typedef int (*store_removal_cb)(void *ud, const char *id, int exists,
                                const char *incarnation);
/* Every deleted platform whose folder may still exist, with whether a
 * platform of that id exists again and the deleted one's incarnation. */
int store_removal_each(sqlite3 *db, store_removal_cb cb, void *ud);
/* The folder of deleted platform `id` is gone (or belongs to a new one). */
int store_removal_done(sqlite3 *db, const char *id);
/* Platform `id` is being created by process `pid`, with Idempotency-Key
 * `key` of `actor` pending (both NULL without one). */
int store_creation_put(sqlite3 *db, const char *id, int64_t pid,
                       const char *key, const char *actor);
/* Its creation answered (or was undone); STORE_NOTFOUND if it was not
 * recorded (another worker took it). */
int store_creation_done(sqlite3 *db, const char *id);

/* Inside a transaction: take platform `platform` for moving `stack` to
 * `version` (NULL: deactivating) by worker `pid`. STORE_OK, or
 * STORE_EXISTS with the holder's stack, version and pid in *hs, *hv
 * (caps STORE_STACK_MAX + 1) and *hpid. */
int store_move_take(sqlite3 *db, const char *platform, const char *stack,
                    const char *version, int64_t pid, char *hs, char *hv,
                    int64_t *hpid);
/* Hand the platform over to `pid` whatever holds it (its holder died). */
int store_move_steal(sqlite3 *db, const char *platform, const char *stack,
                     const char *version, int64_t pid);
/* Release the move of `platform` taken by `pid` (absent: STORE_OK). */
int store_move_done(sqlite3 *db, const char *platform, int64_t pid);
/* Forget every move recorded under `pid` (a process starting: none of
 * its moves can be in progress). */
int store_move_forget_pid(sqlite3 *db, int64_t pid);
/* A platform moving a stack to `version` of `stack`: STORE_OK with its id
 * in `platform` (STORE_ID_MAX + 1 bytes), or STORE_NOTFOUND. */
int store_move_to(sqlite3 *db, const char *stack, const char *version,
                  char *platform);
typedef int (*store_creation_cb)(void *ud, const char *id, int64_t pid,
                                 const char *key, const char *actor);
/* Every creation not answered yet. */
int store_creation_each(sqlite3 *db, store_creation_cb cb, void *ud);
typedef int (*store_tenant_key_cb)(void *ud, const char *platform,
                                   const char *tenant);
/* Every tenant that is suspended or lies under a suspended tenant, ordered
 * by platform and tenant id. */
int store_tenant_suspended_each(sqlite3 *db, store_tenant_key_cb cb, void *ud);
typedef int (*store_tenant_link_cb)(void *ud, const char *platform,
                                    const char *tenant, const char *parent);
/* Every tenant with its parent id (NULL for a root), ordered by platform
 * and tenant id: what the tenant paths are built from. */
int store_tenant_link_each(sqlite3 *db, store_tenant_link_cb cb, void *ud);

/* ---- tenants ----------------------------------------------------------- */

typedef struct store_tenant {
  char platform[STORE_ID_MAX + 1];
  char id[STORE_ID_MAX + 1];
  char parent[STORE_ID_MAX + 1];
  int has_parent; /* parent_id is NULL (a root) when 0 */
  char name[STORE_NAME_MAX + 1];
  char status[16]; /* "active" | "suspended" */
  char created_at[STORE_TIME_MAX + 1];
  char updated_at[STORE_TIME_MAX + 1];
  int64_t version;
} store_tenant;

typedef int (*store_tenant_cb)(void *ud, const store_tenant *t);

int store_tenant_get(sqlite3 *db, const char *platform, const char *id,
                     store_tenant *out);
/* STORE_FK: the parent does not exist; STORE_CYCLE: parent == id. */
int store_tenant_insert(sqlite3 *db, store_tenant *t);
/* Write name, parent and status of *t, bump version, read back.
 * STORE_CYCLE when the new parent is the tenant or one of its
 * descendants; STORE_FK when the parent does not exist. */
int store_tenant_update(sqlite3 *db, store_tenant *t, int64_t if_version);
/* Delete one tenant (STORE_FK if it has children), or with `cascade` the
 * tenant and its whole subtree. */
int store_tenant_delete(sqlite3 *db, const char *platform, const char *id,
                        int cascade);
/* Number of direct children (0 or more). */
int store_tenant_children(sqlite3 *db, const char *platform, const char *id,
                          int64_t *count);
/* Ordered by id after `after`. `parent`: only its direct children;
 * `under`: its whole subtree (not itself). Both NULL: every tenant. */
int store_tenant_list(sqlite3 *db, const char *platform, const char *parent,
                      const char *under, const char *after, int limit,
                      store_tenant_cb cb, void *ud);

/* ---- the stack catalogue ----------------------------------------------- */

/* Versions of one stack, ascending by semver precedence. Borrowed. */
typedef int (*store_stack_cb)(void *ud, const char *id,
                              const char *const *versions, size_t n);
typedef int (*store_stack_version_cb)(void *ud, const char *id,
                                      const char *version);

/* Add a stack version (and the stack) if absent. */
int store_stack_add(sqlite3 *db, const char *id, const char *version);
/* Remove a version unless an activation uses it; then the stack if it has
 * no version left. STORE_OK also when kept. */
int store_stack_remove_unused(sqlite3 *db, const char *id, const char *version);
/* Is the version in the catalogue? STORE_OK or STORE_NOTFOUND. */
int store_stack_version_exists(sqlite3 *db, const char *id,
                               const char *version);
/* Every (id, version) of the catalogue. */
int store_stack_each(sqlite3 *db, store_stack_version_cb cb, void *ud);
/* Stacks ordered by id after `after`, at most `limit`. */
int store_stack_list(sqlite3 *db, const char *after, int limit,
                     store_stack_cb cb, void *ud);
/* One stack: STORE_NOTFOUND if unknown. */
int store_stack_get(sqlite3 *db, const char *id, store_stack_cb cb, void *ud);

/* ---- activations ------------------------------------------------------- */

typedef struct store_activation {
  char platform[STORE_ID_MAX + 1];
  char stack[STORE_STACK_MAX + 1];
  char version[STORE_STACK_MAX + 1];
  char activated_at[STORE_TIME_MAX + 1];
  char activated_by[129];
} store_activation;

typedef int (*store_activation_cb)(void *ud, const store_activation *a);

int store_activation_get(sqlite3 *db, const char *platform, const char *stack,
                         store_activation *out);
/* Insert or replace the platform's activation of a->stack; fills
 * activated_at. */
int store_activation_put(sqlite3 *db, store_activation *a);
int store_activation_delete(sqlite3 *db, const char *platform,
                            const char *stack);
/* One platform's activations by stack id, after `after`, at most `limit`
 * (limit <= 0: all). `platform` NULL: every platform, ordered by platform
 * then stack. */
int store_activation_list(sqlite3 *db, const char *platform, const char *after,
                          int limit, store_activation_cb cb, void *ud);

/* ---- audit ------------------------------------------------------------- */

typedef struct store_audit {
  int64_t seq;
  const char *at, *actor, *action, *target, *request_id; /* borrowed */
  const char *detail; /* JSON text or NULL; borrowed */
} store_audit;

typedef int (*store_audit_cb)(void *ud, const store_audit *a);

/* `detail` must be JSON text (or NULL); `request_id` may be NULL. */
int store_audit_add(sqlite3 *db, const char *actor, const char *action,
                    const char *target, const char *request_id,
                    const char *detail);
/* Newest first, seq < before (before <= 0: from the newest). */
int store_audit_list(sqlite3 *db, const char *target, const char *action,
                     int64_t before, int limit, store_audit_cb cb, void *ud);

/* ---- the changes log (what workers replay) ----------------------------- */

/* Rows kept in the log; a worker further behind reloads everything. */
#define STORE_CHANGES_KEEP 10000

/* Record that routing of `platform` changed, and drop rows older than the
 * last STORE_CHANGES_KEEP. */
int store_change_add(sqlite3 *db, const char *platform);
/* Lowest and highest seq in the log (0, 0 when empty). */
int store_change_bounds(sqlite3 *db, int64_t *min, int64_t *max);
/* Rows with seq > after, ascending. */
typedef int (*store_change_cb)(void *ud, int64_t seq, const char *platform);
int store_change_since(sqlite3 *db, int64_t after, store_change_cb cb,
                       void *ud);

/* ---- idempotency ------------------------------------------------------- */

typedef struct store_idem {
  char key[129];
  char actor[129];
  char method[16];
  char path[1024];
  char request_hash[65];
  int status;
  char *body;     /* owned: free() it (store_idem_get allocates) */
  char *location; /* owned, or NULL */
  char created_at[STORE_TIME_MAX + 1];
} store_idem;

/* STORE_NOTFOUND if absent; otherwise *out is filled and its body and
 * location must be freed with store_idem_clear(). */
int store_idem_get(sqlite3 *db, const char *key, const char *actor,
                   store_idem *out);
void store_idem_clear(store_idem *e);
/* Insert a record (created_at now). */
int store_idem_put(sqlite3 *db, const store_idem *e);
/* Drop the record of (key, actor), if any. */
int store_idem_delete(sqlite3 *db, const char *key, const char *actor);
/* Drop records created before `cutoff` (ISO time). */
int store_idem_prune(sqlite3 *db, const char *cutoff);

#endif
