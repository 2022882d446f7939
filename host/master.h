/* The master process: owns the listening sockets, forks and supervises the
 * workers, turns signals into drains, reloads and respawns. It never runs
 * plugin code. */
#ifndef NNO_HOST_MASTER_H
#define NNO_HOST_MASTER_H

#include "config.h"

/* Re-reads the configuration from its sources (for SIGHUP). */
typedef int (*config_loader)(nno_config *out, char *err);

/* Run until SIGTERM/SIGINT. Returns the process exit code. */
int master_run(nno_config *cfg, config_loader reload);

#endif
