/* Every tenant of every platform with its parent, in memory: the tenant
 * paths the "nno.registry" service gives (tenant_path) without reading the
 * database. Filled with ttab_add() in any order, then ttab_seal() sorts the
 * entries by (platform, id) and links each to its parent, so a path costs
 * one binary search and then one step per level.
 *
 * OWNERSHIP: ids are copied. THREAD: one thread (the worker's loop). */
#ifndef NNO_REGISTRY_TTAB_H
#define NNO_REGISTRY_TTAB_H

#include <stddef.h>

/* The deepest path given: levels further up are never walked (a tree in
 * the database is never this deep in practice; the bound also ends the
 * walk on a damaged table). */
#define TTAB_DEPTH_MAX 64

enum {
  TTAB_OK = 0,
  TTAB_NOTFOUND = 1, /* no such tenant */
  TTAB_TOOSMALL = 2, /* the path does not fit in `cap` (or is too deep) */
  TTAB_NOMEM = 3,
  TTAB_INVALID = 4, /* an id longer than 32 bytes or empty */
};

typedef struct ttab ttab;

ttab *ttab_new(void);
void ttab_free(ttab *t);
/* Add tenant `id` of `platform` whose parent is `parent` (NULL or "" for
 * a root). Only before ttab_seal(). */
int ttab_add(ttab *t, const char *platform, const char *id, const char *parent);
/* Sort and link parents; a parent that is not in the table makes its
 * child a root. After this the table is read-only. */
int ttab_seal(ttab *t);
/* The path of `tenant` of `platform`: ids from the root down, joined with
 * '/', NUL-terminated in `out` (`cap` bytes). */
int ttab_path(const ttab *t, const char *platform, const char *tenant,
              char *out, size_t cap);
/* Number of tenants in the table. */
size_t ttab_count(const ttab *t);

#endif
