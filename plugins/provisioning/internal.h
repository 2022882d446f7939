/* The loop-thread half of the provisioning plugin: its state (one copy
 * per worker process, touched only on the loop thread) and the functions
 * plugin.c, provision.c and api.c share. */
#ifndef NNO_PROV_INTERNAL_H
#define NNO_PROV_INTERNAL_H

#include <nno/billing.h>
#include <nno/plugin.h>
#include <nno/provisioning.h>
#include <nno/registry.h>
#include <nno/storage.h>

#include "prov.h"

typedef struct prov_state {
  nno_plugin *p;
  char data[4096];           /* the host's data folder */
  char core[4200];           /* DATA/core.db */
  prov_bounds bounds;
  prov_plans plans;
  sqlite3 *db;               /* core.db, for the routes (loop thread) */
  const nno_registry_v1 *reg;
  /* nno.billing from on_host_ready: the storage quota is the plan's
   * storage_bytes. NULL without billing: config "plans" apply. */
  const nno_billing_v1 *billing;
  prov_inuse_tab inuse;      /* platforms this worker's requests use */
  int recover_fd;            /* DATA/provisioning.lock when we hold it */
} prov_state;

extern const nno_host_api *api;
extern prov_state g_prov;

/* The storage limit of `platform` in bytes, from its plan. */
uint64_t prov_limit_of(const char *platform);

extern const nno_storage_v1 prov_storage;
extern const nno_provisioning_v1 prov_provisioning;

/* Free the removals still waiting for their lock (at fini, once the host
 * stopped their timers): their callers are going too. */
void prov_provision_fini(void);

/* Register the routes (api.c). */
int prov_api_init(nno_plugin *p);

#endif
