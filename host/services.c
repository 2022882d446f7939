/* Service table: a short array; lookups happen at init time, not per
 * request (plugins keep the vtable pointer). */
#include "services.h"

#include <stdlib.h>
#include <string.h>

#include <nno/plugin.h>

typedef struct entry {
  char name[65];
  uint32_t version;
  const void *vtable;
  struct plugin *owner;
} entry;

struct services {
  entry *v;
  size_t n, cap;
};

services *services_new(void) { return calloc(1, sizeof(services)); }

void services_free(services *s) {
  if (!s) return;
  free(s->v);
  free(s);
}

static int name_ok(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len > 64) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = n[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

static entry *find(const services *s, const char *name) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->v[i].name, name) == 0) return &s->v[i];
  return NULL;
}

int services_publish(services *s, struct plugin *owner, const char *name,
                     uint32_t version, const void *vtable) {
  if (!name || !name_ok(name) || version == 0 || !vtable) return NNO_EINVAL;
  if (find(s, name)) return NNO_EEXIST;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    entry *v = realloc(s->v, cap * sizeof *v);
    if (!v) return NNO_ENOMEM;
    s->v = v;
    s->cap = cap;
  }
  entry *e = &s->v[s->n++];
  strcpy(e->name, name);
  e->version = version;
  e->vtable = vtable;
  e->owner = owner;
  return 0;
}

int services_lookup(const services *s, const char *name, uint32_t min_version,
                    const void **vtable, uint32_t *version) {
  const entry *e = name ? find(s, name) : NULL;
  if (!e || e->version < min_version) return NNO_ENOENT;
  if (vtable) *vtable = e->vtable;
  if (version) *version = e->version;
  return 0;
}

uint32_t services_version(const services *s, const char *name) {
  const entry *e = find(s, name);
  return e ? e->version : 0;
}

void services_remove_owner(services *s, struct plugin *owner) {
  size_t j = 0;
  for (size_t i = 0; i < s->n; i++)
    if (s->v[i].owner != owner) s->v[j++] = s->v[i];
  s->n = j;
}
