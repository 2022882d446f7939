/* A temporary DATA folder with one platform ("acme"), shared by the unit
 * tests of the provisioning plugin's drivers, quotas and journal. */
#ifndef NNO_TEST_PROV_FIXTURE_H
#define NNO_TEST_PROV_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prov.h"

typedef struct pfx {
  char data[64];
  char pdir[128];
  char msg[PROV_MSG_MAX];
  prov_bounds b;
  prov_quota q;
} pfx;

static int pfx_setup(void **state) {
  pfx *f = calloc(1, sizeof *f);
  if (!f) return -1;
  snprintf(f->data, sizeof f->data, "/tmp/nno-provtest-XXXXXX");
  if (!mkdtemp(f->data)) return -1;
  if (prov_platform_files(f->data, "acme", f->msg, sizeof f->msg)) return -1;
  snprintf(f->pdir, sizeof f->pdir, "%s/platforms/acme", f->data);
  prov_bounds_default(&f->b);
  f->q.pdir = f->pdir;
  f->q.limit = 0;
  *state = f;
  return 0;
}

static int pfx_teardown(void **state) {
  pfx *f = *state;
  prov_rmtree(f->data);
  prov_conn_clear();
  free(f);
  return 0;
}

/* The path of resource (type, name) of stack "default" on "acme". */
static void pfx_path(const pfx *f, const char *type, const char *name,
                     char *out, size_t cap) {
  prov_resource_path(f->data, "acme", "default", type, name, out, cap);
}

#endif
