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

#endif
