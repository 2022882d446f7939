/* The in-memory tenant table (see ttab.h). */
#include "ttab.h"

#include <stdlib.h>
#include <string.h>

typedef struct tt_entry {
  char platform[33];
  char id[33];
  char parent_id[33]; /* "" for a root */
  long parent;        /* index of the parent after ttab_seal(), or -1 */
} tt_entry;

struct ttab {
  tt_entry *v;
  size_t n, cap;
  int sealed;
};

ttab *ttab_new(void) {
  return calloc(1, sizeof(ttab));
}

void ttab_free(ttab *t) {
  if (!t) return;
  free(t->v);
  free(t);
}

size_t ttab_count(const ttab *t) {
  return t ? t->n : 0;
}

static int copy_id(char dst[33], const char *s, int may_be_empty) {
  size_t n = s ? strlen(s) : 0;
  if (n > 32 || (!n && !may_be_empty)) return -1;
  memcpy(dst, s ? s : "", n);
  dst[n] = '\0';
  return 0;
}

int ttab_add(ttab *t, const char *platform, const char *id,
             const char *parent) {
  if (!t || t->sealed) return TTAB_INVALID;
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    tt_entry *v = realloc(t->v, cap * sizeof *v);
    if (!v) return TTAB_NOMEM;
    t->v = v;
    t->cap = cap;
  }
  tt_entry *e = &t->v[t->n];
  if (copy_id(e->platform, platform, 0) || copy_id(e->id, id, 0) ||
      copy_id(e->parent_id, parent, 1))
    return TTAB_INVALID;
  e->parent = -1;
  t->n++;
  return TTAB_OK;
}

static int cmp_key(const char *pa, const char *ia, const char *pb,
                   const char *ib) {
  int c = strcmp(pa, pb);
  return c ? c : strcmp(ia, ib);
}

static int cmp_entry(const void *a, const void *b) {
  const tt_entry *x = a, *y = b;
  return cmp_key(x->platform, x->id, y->platform, y->id);
}

static long find(const ttab *t, const char *platform, const char *id) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = cmp_key(platform, id, t->v[mid].platform, t->v[mid].id);
    if (c == 0) return (long)mid;
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return -1;
}

int ttab_seal(ttab *t) {
  if (!t) return TTAB_INVALID;
  if (t->n) qsort(t->v, t->n, sizeof t->v[0], cmp_entry);
  for (size_t i = 0; i < t->n; i++)
    t->v[i].parent = t->v[i].parent_id[0]
                         ? find(t, t->v[i].platform, t->v[i].parent_id)
                         : -1;
  t->sealed = 1;
  return TTAB_OK;
}

int ttab_path(const ttab *t, const char *platform, const char *tenant,
              char *out, size_t cap) {
  if (!t || !platform || !tenant || !out || !cap) return TTAB_INVALID;
  long i = t->sealed ? find(t, platform, tenant) : -1;
  if (i < 0) return TTAB_NOTFOUND;
  /* Walk up once to collect the chain, then write it root first. */
  long chain[TTAB_DEPTH_MAX];
  size_t depth = 0, len = 0;
  for (; i >= 0; i = t->v[i].parent) {
    if (depth == TTAB_DEPTH_MAX) return TTAB_TOOSMALL;
    chain[depth++] = i;
    len += strlen(t->v[i].id) + 1; /* the id and a '/' or the NUL */
  }
  if (len > cap) return TTAB_TOOSMALL;
  char *w = out;
  while (depth--) {
    size_t n = strlen(t->v[chain[depth]].id);
    memcpy(w, t->v[chain[depth]].id, n);
    w += n;
    *w++ = depth ? '/' : '\0';
  }
  return TTAB_OK;
}
