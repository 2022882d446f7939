/* The per-worker routing table (see resolve.h). */
#include "resolve.h"

#include <stdlib.h>
#include <string.h>

struct rtable {
  rt_entry **buckets;
  size_t nbuckets; /* a power of two */
  size_t count;
};

/* FNV-1a: ids are short, so a simple byte hash is as fast as any. */
static uint32_t hash_id(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 16777619u;
  }
  return h;
}

rtable *rt_new(void) {
  rtable *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->nbuckets = 1024;
  t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
  if (!t->buckets) {
    free(t);
    return NULL;
  }
  return t;
}

static void entry_free(rt_entry *e) {
  if (!e) return;
  free(e->acts);
  free(e);
}

void rt_clear(rtable *t) {
  for (size_t i = 0; i < t->nbuckets; i++) {
    rt_entry *e = t->buckets[i];
    while (e) {
      rt_entry *next = e->next;
      entry_free(e);
      e = next;
    }
    t->buckets[i] = NULL;
  }
  t->count = 0;
}

void rt_free(rtable *t) {
  if (!t) return;
  rt_clear(t);
  free(t->buckets);
  free(t);
}

size_t rt_count(const rtable *t) { return t->count; }

static const char *const status_names[] = {NULL, "active", "suspended",
                                           "deleting"};

int rt_status_parse(const char *s) {
  for (int i = 1; i <= RT_DELETING; i++)
    if (strcmp(s, status_names[i]) == 0) return i;
  return 0;
}

const char *rt_status_name(int status) {
  return status >= RT_ACTIVE && status <= RT_DELETING ? status_names[status]
                                                      : "unknown";
}

/* Fill e->stacks from e->acts. */
static void resolve_entry(rt_entry *e, rt_find_fn find, void *ud) {
  e->nstacks = 0;
  if (!find) return;
  const char *a = e->acts;
  for (size_t i = 0; i < e->nacts; i++) {
    const char *ver = a + strlen(a) + 1;
    nno_stack *s = find(ud, a, ver);
    if (s) e->stacks[e->nstacks++] = s;
    a = ver + strlen(ver) + 1;
  }
}

/* Double the buckets; on allocation failure the table stays as it is
 * (longer chains, still correct). */
static void grow(rtable *t) {
  size_t nb = t->nbuckets * 2;
  rt_entry **b = calloc(nb, sizeof *b);
  if (!b) return;
  for (size_t i = 0; i < t->nbuckets; i++) {
    rt_entry *e = t->buckets[i];
    while (e) {
      rt_entry *next = e->next;
      size_t k = e->hash & (nb - 1);
      e->next = b[k];
      b[k] = e;
      e = next;
    }
  }
  free(t->buckets);
  t->buckets = b;
  t->nbuckets = nb;
}

/* The link pointing at the entry for id, or at the chain's end. */
static rt_entry **find_link(const rtable *t, const char *id, size_t n,
                            uint32_t h) {
  rt_entry **link = &t->buckets[h & (t->nbuckets - 1)];
  while (*link && !((*link)->hash == h && (*link)->idlen == n &&
                    memcmp((*link)->id, id, n) == 0))
    link = &(*link)->next;
  return link;
}

int rt_put(rtable *t, const char *id, int status, const char *const *stacks,
           const char *const *versions, size_t n, rt_find_fn find, void *ud) {
  size_t idlen = strlen(id), blob = 0;
  if (idlen == 0 || idlen > 32 || n > RT_MAX_STACKS || status < RT_ACTIVE ||
      status > RT_DELETING)
    return NNO_EINVAL;
  for (size_t i = 0; i < n; i++)
    blob += strlen(stacks[i]) + strlen(versions[i]) + 2;
  rt_entry *e = calloc(1, sizeof *e + n * sizeof(nno_stack *));
  if (!e) return NNO_ENOMEM;
  if (n && !(e->acts = malloc(blob))) {
    free(e);
    return NNO_ENOMEM;
  }
  char *w = e->acts;
  for (size_t i = 0; i < n; i++) {
    size_t a = strlen(stacks[i]) + 1, b = strlen(versions[i]) + 1;
    memcpy(w, stacks[i], a);
    memcpy(w + a, versions[i], b);
    w += a + b;
  }
  memcpy(e->id, id, idlen + 1);
  e->idlen = (uint8_t)idlen;
  e->hash = hash_id(id, idlen);
  e->status = (uint8_t)status;
  e->nacts = (uint8_t)n;
  resolve_entry(e, find, ud);

  rt_entry **link = find_link(t, id, idlen, e->hash);
  if (*link) { /* replace in place */
    rt_entry *old = *link;
    memcpy(e->plan, old->plan, sizeof e->plan);
    e->next = old->next;
    *link = e;
    entry_free(old);
    return 0;
  }
  e->next = NULL;
  *link = e;
  if (++t->count > t->nbuckets) grow(t);
  return 0;
}

void rt_remove(rtable *t, const char *id) {
  size_t n = strlen(id);
  rt_entry **link = find_link(t, id, n, hash_id(id, n));
  rt_entry *e = *link;
  if (!e) return;
  *link = e->next;
  entry_free(e);
  t->count--;
}

int rt_set_plan(rtable *t, const char *id, const char *plan) {
  size_t n = strlen(id), pl = strlen(plan);
  rt_entry *e = *find_link(t, id, n, hash_id(id, n));
  if (!e) return NNO_ENOENT;
  if (pl >= sizeof e->plan) return NNO_EINVAL;
  memcpy(e->plan, plan, pl + 1);
  return 0;
}

const rt_entry *rt_get(const rtable *t, const char *id, size_t len) {
  if (len == 0 || len > 32) return NULL;
  return *find_link(t, id, len, hash_id(id, len));
}

void rt_resolve_all(rtable *t, rt_find_fn find, void *ud) {
  for (size_t i = 0; i < t->nbuckets; i++)
    for (rt_entry *e = t->buckets[i]; e; e = e->next)
      resolve_entry(e, find, ud);
}

int rt_host_platform(const char *host, size_t hl, const char *base, size_t bl,
                     const char **id, size_t *len) {
  if (!bl || hl <= bl || host[hl - bl - 1] != '.' ||
      memcmp(host + hl - bl, base, bl) != 0)
    return 0;
  size_t end = hl - bl - 1, start = end;
  while (start > 0 && host[start - 1] != '.') start--;
  if (start == 0 && ((end == sizeof RT_CORE_LABEL - 1 &&
                      memcmp(host, RT_CORE_LABEL, end) == 0) ||
                     (end == sizeof RT_ADMIN_LABEL - 1 &&
                      memcmp(host, RT_ADMIN_LABEL, end) == 0)))
    return 0;
  *id = host + start;
  *len = end - start;
  return 1;
}

int rt_host_is_admin(const char *host, size_t hl, const char *base, size_t bl) {
  const size_t al = sizeof RT_ADMIN_LABEL - 1;
  return bl && hl == al + 1 + bl && memcmp(host, RT_ADMIN_LABEL, al) == 0 &&
         host[al] == '.' && memcmp(host + al + 1, base, bl) == 0;
}

int rt_auth_svc_stack(const char *host, size_t hl, size_t pstart,
                      const char **sid, size_t *slen) {
  static const char pre[] = "auth.svc.";
  const size_t pl = sizeof pre - 1;
  /* "auth.svc." + a label + "." before the platform's label. */
  if (pstart > hl || pstart < pl + 2 || host[pstart - 1] != '.' ||
      memcmp(host, pre, pl) != 0)
    return 0;
  const char *s = host + pl;
  size_t n = pstart - 1 - pl;
  if (memchr(s, '.', n)) return 0;
  *sid = s;
  *slen = n;
  return 1;
}
