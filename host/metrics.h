/* Shared-memory state the master maps before forking: per-worker request
 * counters (each worker writes only its own slot, so the hot path takes no
 * shared cache line), worker pids and readiness, restart counts.
 * Any worker renders the sum for /metrics. */
#ifndef NNO_HOST_METRICS_H
#define NNO_HOST_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define METRICS_MAX_WORKERS 128 /* slots: a reload overlaps two generations */
#define METRICS_MAX_SERIES 512  /* distinct (route, status) pairs */
#define METRICS_ROUTE_MAX 96
#define METRICS_NBUCKETS 14

/* Map the segment (master, once, before fork). 0 or -1. */
int metrics_init(void);

/* Master side. */
void metrics_worker_started(int slot, pid_t pid);
void metrics_worker_stopped(int slot);
void metrics_worker_restart(void);
int metrics_free_slot(void); /* -1 if none */

/* Worker side: bind this process to its slot. */
void metrics_bind(int slot);
void metrics_set_ready(int ready, int plugins_loaded);
/* Count one request. `route` is the matched pattern or a fixed label. */
void metrics_request(const char *route, int status, uint64_t dur_us);

/* 1 if the worker in `slot` has loaded its plugins and accepts. */
int metrics_slot_ready(int slot);
/* 1 if every live worker has loaded its plugins. */
int metrics_all_ready(void);
/* Pids of the live workers; returns how many (at most max). */
size_t metrics_worker_pids(pid_t *out, size_t max);

/* Named shared counters (see the ABI's counter_get/counter_add). */
#define METRICS_MAX_COUNTERS 64
#define METRICS_COUNTER_NAME 32
/* 0, NNO_EINVAL (bad name) or NNO_ETOOBIG (table full, only when adding). */
int metrics_counter(const char *name, int create, _Atomic uint64_t **out);

/* Labelled series any subsystem adds to (sandboxes): `key` is the whole
 * series name with its labels, already escaped
 * ("nno_sandbox_crashes_total{platform=\"a\"}", < METRICS_LABELLED_KEY
 * bytes). A counter (gauge 0) is one value for the host; a gauge is kept
 * per worker slot and cleared when that worker stops, so a dead worker's
 * processes are not counted. Rendered summed by key. Dropped silently
 * when the table is full. */
#define METRICS_MAX_LABELLED 512
#define METRICS_LABELLED_KEY 200
void metrics_labelled_add(const char *key, int gauge, int64_t delta);

/* Render Prometheus text format. Caller frees *out. 0 or -1. */
int metrics_render(char **out, size_t *len);

#endif
