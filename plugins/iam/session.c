/* The per-worker session cache: validations read from the database are
 * kept at most `ttl` seconds (the configured session_cache_s, never more
 * than 5 minutes), at most `max` entries, the oldest evicted first.
 * Revocations do not wait for the ttl: they arrive through the changes log
 * and drop the entry at once (iam_cache_drop). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

typedef struct node {
  struct node *hnext;       /* hash chain */
  struct node *older, *newer; /* insertion order */
  iam_sess s;
} node;

struct iam_cache {
  node **buckets;
  size_t nbuckets, n, max;
  node *oldest, *newest;
};

static size_t bucket_of(const iam_cache *c, const char *id) {
  uint64_t h = 0;
  for (int i = 0; i < 16 && id[i]; i++) h = h * 31 + (unsigned char)id[i];
  return (size_t)(h ^ (h >> 31)) & (c->nbuckets - 1);
}

iam_cache *iam_cache_new(size_t max) {
  iam_cache *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->max = max ? max : 1;
  c->nbuckets = 16;
  while (c->nbuckets < c->max && c->nbuckets < (1u << 20)) c->nbuckets <<= 1;
  if (!(c->buckets = calloc(c->nbuckets, sizeof *c->buckets))) {
    free(c);
    return NULL;
  }
  return c;
}

static node **find(iam_cache *c, const char *id) {
  node **l = &c->buckets[bucket_of(c, id)];
  while (*l && strcmp((*l)->s.id, id) != 0) l = &(*l)->hnext;
  return l;
}

static void unlink_node(iam_cache *c, node **l) {
  node *e = *l;
  *l = e->hnext;
  if (e->older) e->older->newer = e->newer;
  else c->oldest = e->newer;
  if (e->newer) e->newer->older = e->older;
  else c->newest = e->older;
  sodium_memzero(e, sizeof *e);
  free(e);
  c->n--;
}

void iam_cache_drop(iam_cache *c, const char *id) {
  node **l = find(c, id);
  if (*l) unlink_node(c, l);
}

void iam_cache_clear(iam_cache *c) {
  while (c->oldest) iam_cache_drop(c, c->oldest->s.id);
}

void iam_cache_free(iam_cache *c) {
  if (!c) return;
  iam_cache_clear(c);
  free(c->buckets);
  free(c);
}

iam_sess *iam_cache_get(iam_cache *c, const char *id, int64_t now,
                        int64_t ttl_s) {
  node **l = find(c, id);
  if (!*l) return NULL;
  iam_sess *s = &(*l)->s;
  if (now - s->cached_at >= ttl_s || now >= s->expires ||
      now >= s->idle_expires) {
    unlink_node(c, l);
    return NULL;
  }
  return s;
}

int iam_cache_put(iam_cache *c, const iam_sess *s) {
  iam_cache_drop(c, s->id);
  while (c->n >= c->max && c->oldest) iam_cache_drop(c, c->oldest->s.id);
  node *e = calloc(1, sizeof *e);
  if (!e) return NNO_ENOMEM;
  e->s = *s;
  size_t b = bucket_of(c, s->id);
  e->hnext = c->buckets[b];
  c->buckets[b] = e;
  e->older = c->newest;
  if (c->newest) c->newest->newer = e;
  else c->oldest = e;
  c->newest = e;
  c->n++;
  return 0;
}

size_t iam_cache_count(const iam_cache *c) { return c->n; }
