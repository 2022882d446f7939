/* Named, versioned service vtables published by plugins (per worker). */
#ifndef NNO_HOST_SERVICES_H
#define NNO_HOST_SERVICES_H

#include <stdint.h>

struct plugin;

typedef struct services services;

services *services_new(void);
void services_free(services *s);

/* NNO_EINVAL for a bad name (1..64 of [a-z0-9._-]) or version 0,
 * NNO_EEXIST if the name is taken, NNO_ENOMEM. */
int services_publish(services *s, struct plugin *owner, const char *name,
                     uint32_t version, const void *vtable);
/* The service `name` with version >= min_version; NNO_ENOENT if none. */
int services_lookup(const services *s, const char *name, uint32_t min_version,
                    const void **vtable, uint32_t *version);
/* Version of `name` or 0 when nobody publishes it. */
uint32_t services_version(const services *s, const char *name);
/* Forget everything `owner` published. */
void services_remove_owner(services *s, struct plugin *owner);

#endif
