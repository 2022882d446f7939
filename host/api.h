/* The nno_host_api table given to every plugin. */
#ifndef NNO_HOST_API_H
#define NNO_HOST_API_H

#include <nno/plugin.h>

struct plugin;

const nno_host_api *api_table(void);
/* Stop every timer a plugin left running (before its fini). */
void api_stop_timers(struct plugin *pl);

#endif
