/* A worker process: one libuv loop serving HTTP on its listening socket,
 * with its own copy of the plugins, routes and services. */
#ifndef NNO_HOST_WORKER_H
#define NNO_HOST_WORKER_H

#include <stdint.h>
#include <uv.h>

#include <nno/plugin.h>

#include "config.h"
#include "http.h"

struct conn;
struct router;
struct plugin;

typedef struct gw_hook {
  struct plugin *plugin;
  nno_hook_fn fn;
  void *ud;
} gw_hook;

/* An end-of-request hook (gateway_done_add, ABI 1.5). */
typedef struct gw_done {
  struct plugin *plugin;
  nno_done_hook_fn fn;
  void *ud;
} gw_done;

struct plugin_set;
struct services;
struct fetcher;

typedef struct worker {
  uv_loop_t loop;
  const nno_config *cfg;
  int slot;
  uv_tcp_t listener;
  int listening;
  int draining;
  http_limits limits;
  struct conn *conns; /* every open connection, for draining */
  size_t nconns;
  size_t nclosing; /* of nconns, those closing (conn_close() was called) */
  size_t nrequests_active; /* requests between dispatch and response */
  size_t out_bytes; /* unsent output of every connection (conn.h) */
  size_t in_bytes;  /* request bodies reserved by connections (conn.h) */
  struct router *router; /* core plugins' routes */
  /* The upload routes of core plugins again (route_add_upload), matched
   * when a head announcing a body is complete; NULL when there are none. */
  struct router *upload_router;
  unsigned nuploads; /* upload bodies being spooled or handled now */
  struct gw_hook *hooks[6]; /* per nno_stage, in load order */
  size_t nhooks[6];
  struct gw_done *done; /* end-of-request hooks, in load order */
  size_t ndone;
  int dev_mode; /* no RESOLVE hook: stacks are served at the root */
  struct plugin_set *plugins;
  struct services *services;
  struct fetcher *fetcher;
  /* The "nno.storage" provider resource calls go to (res.c); NULL when no
   * core plugin publishes one. */
  const struct nno_storage_v1 *storage;
  /* Cached "Date:" value, refreshed once a second. */
  char date[64];
  size_t date_len;
  uint64_t date_sec;
  /* Request ids: a random per-process prefix and a counter. */
  char rid_prefix[17];
  uint64_t rid_counter;
  uint64_t rng[2]; /* xorshift128+ state for trace and span ids */
  uv_signal_t sig_term, sig_int, sig_hup;
  uv_timer_t drain_timer;
  uv_timer_t log_timer; /* writes buffered access lines (log.h) */
  /* One shared read buffer: reads are consumed at once by the request
   * reader, so connections need no buffer of their own while idle. */
  char read_slab[64 * 1024];
  int read_slab_busy;
} worker;

/* The worker of this process (one per process). */
extern worker *g_worker;

/* Exit status of a worker that cannot start (a core plugin refused): the
 * master stops the host rather than respawn it forever. */
#define WORKER_EXIT_FATAL 3

/* Serve until drained. `fd` is the listening socket. Never returns. */
void worker_run(const nno_config *cfg, int slot, int fd)
    __attribute__((noreturn));

/* Begin a graceful stop: stop accepting, close idle connections, let
 * in-flight requests finish within cfg->drain_timeout_ms, then exit. */
void worker_drain(worker *w);
/* Called when a connection closes, to finish a drain when none are left. */
void worker_maybe_done(worker *w);

/* Access lines went into an empty buffer: write them within LOG_FLUSH_MS. */
void worker_arm_log_flush(worker *w);

/* Refresh the cached Date header if the second changed. */
void worker_update_date(worker *w);
/* Next pseudo-random 64 bits (not for secrets). */
uint64_t worker_rand(worker *w);

#endif
