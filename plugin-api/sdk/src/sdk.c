/* The SDK's set-up (see nno/sdk/base.h). */
#include "internal.h"

const nno_host_api *nno__sdk_api;
nno_plugin *nno__sdk_plugin;

void nno_sdk_init(nno_plugin *p, const nno_host_api *api) {
  nno__sdk_plugin = p;
  nno__sdk_api = api;
}

const nno_host_api *nno_sdk_api(void) {
  return nno__sdk_api;
}

nno_plugin *nno_sdk_plugin(void) {
  return nno__sdk_plugin;
}
