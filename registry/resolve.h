/* The per-worker routing table: platform id -> status and the stack
 * versions of its activations. A chained hash table that the RESOLVE hook
 * reads on every request without touching the database; plugin.c fills it
 * at start and patches it from the changes log. No host calls here: stack
 * handles are looked up through the callback the caller passes. */
#ifndef NNO_REGISTRY_RESOLVE_H
#define NNO_REGISTRY_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include <nno/plugin.h>
#include <nno/registry.h>

/* The most stacks one platform may activate (the host's scope limit). */
#define RT_MAX_STACKS 16

enum { RT_ACTIVE = 1, RT_SUSPENDED = 2, RT_DELETING = 3 };

/* One platform. Borrowed from the table: valid until the next change of
 * that platform (rt_put, rt_remove, rt_clear). */
typedef struct rt_entry {
  struct rt_entry *next;
  uint32_t hash;
  uint8_t status; /* RT_ACTIVE... */
  uint8_t idlen;
  uint8_t nacts;   /* activations */
  uint8_t nstacks; /* of which resolved to a loaded stack, in `stacks` */
  char id[33];
  char plan[33];       /* the platform's plan, "" until set */
  char *acts;          /* nacts pairs "stack\0version\0", by stack id */
  nno_stack *stacks[]; /* nacts slots, the first nstacks used */
} rt_entry;

typedef struct rtable rtable;

/* Looks up a loaded stack version; NULL when it is not loaded. */
typedef nno_stack *(*rt_find_fn)(void *ud, const char *stack,
                                 const char *version);

rtable *rt_new(void);
void rt_free(rtable *t);
/* Remove every entry. */
void rt_clear(rtable *t);
size_t rt_count(const rtable *t);

/* Status name ("active"...) to RT_* (0 when unknown), and back. */
int rt_status_parse(const char *s);
const char *rt_status_name(int status);

/* Insert or replace platform `id` with `status` and `n` activations
 * (parallel arrays, n <= RT_MAX_STACKS). `find` (may be NULL: nothing
 * resolved yet) resolves the stack handles. Returns 0 or NNO_ENOMEM /
 * NNO_EINVAL; on error the table is unchanged. */
int rt_put(rtable *t, const char *id, int status, const char *const *stacks,
           const char *const *versions, size_t n, rt_find_fn find, void *ud);
void rt_remove(rtable *t, const char *id);
/* The entry for `id` (`len` bytes, not NUL-terminated), or NULL. */
/* Set the plan of an entry already put (kept across later rt_puts). */
int rt_set_plan(rtable *t, const char *id, const char *plan);
const rt_entry *rt_get(const rtable *t, const char *id, size_t len);
/* Re-resolve every entry's stacks (after the host has loaded them). */
void rt_resolve_all(rtable *t, rt_find_fn find, void *ud);

/* The platform id that host name `host` (hl bytes, lower-case, no port)
 * belongs to, given the lower-case base domain (bl bytes). Every name
 * under the base domain belongs to the platform named by its label just
 * before the base: "{p}.{base}" and "{anything}.{p}.{base}" are p's (so a
 * cookie with Domain={p}.{base} reaches p's hosts only). The base domain
 * itself, "api.{base}" (RT_CORE_LABEL) and "admin.{base}" (RT_ADMIN_LABEL)
 * belong to no platform: they serve the core API (and, but for the admin
 * host, the /p/{id}/ path form). Returns 1 with the label
 * in *id and *len (possibly empty or not a valid id: the caller answers 404),
 * or 0 when no platform claims the host. */
int rt_host_platform(const char *host, size_t hl, const char *base, size_t bl,
                     const char **id, size_t *len);

/* The stack label of a platform's auth endpoint host
 * "auth.svc.{stackId}.{p}.{base}": `host` (hl bytes, lower-case) whose
 * platform label starts at byte `pstart` (as rt_host_platform found it).
 * Returns 1 with the stack id in *sid and *slen (non-empty, one label),
 * or 0 for any other name of the platform. */
int rt_auth_svc_stack(const char *host, size_t hl, size_t pstart,
                      const char **sid, size_t *slen);

/* 1 when `host` (hl bytes, lower-case, no port) is "admin.{base}": the
 * operator view's own origin, serving the core API and nothing a package
 * controls (no /p/{id}/ path form). 0 otherwise, and with no base. */
int rt_host_is_admin(const char *host, size_t hl, const char *base, size_t bl);

/* The labels of the core API's host names, "api.{base}" and
 * "admin.{base}" (the operator view's origin): never a platform id (the
 * registry refuses to create one so named; nno/registry.h). */
#define RT_CORE_LABEL NNO_HOST_LABEL_API
#define RT_ADMIN_LABEL NNO_HOST_LABEL_ADMIN

#endif
