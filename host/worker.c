/* Worker process: load plugins, accept, serve, drain. */
#include "worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "conn.h"
#include "crash.h"
#include "fetch.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "quarantine.h"
#include "router.h"
#include "sandbox.h"
#include "services.h"
#include "stacks.h"
#include "watchdog.h"

worker *g_worker;

uint64_t worker_rand(worker *w) {
  /* xorshift128+: fast, good enough for trace and span ids (not secrets). */
  uint64_t s1 = w->rng[0];
  const uint64_t s0 = w->rng[1];
  w->rng[0] = s0;
  s1 ^= s1 << 23;
  w->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
  return w->rng[1] + s0;
}

void worker_update_date(worker *w) {
  uint64_t now = uv_now(&w->loop) / 1000;
  if (now == w->date_sec && w->date_len) return;
  /* uv_now is the loop's cached monotonic time; take the wall clock only
   * when the cached second changed. */
  w->date_sec = now;
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  w->date_len = strftime(w->date, sizeof w->date,
                         "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

static void on_connection(uv_stream_t *server, int status) {
  worker *w = server->data;
  if (status < 0) {
    log_warn("accept failed: %s", uv_strerror(status));
    return;
  }
  conn_accept(w, server);
}

/* Called from inside callbacks (the last connection closing, res_end from
 * a plugin's timer): only stop the loop here. Unloading plugins now would
 * return into code that is no longer mapped. */
static void finish(worker *w) {
  uv_timer_stop(&w->drain_timer);
  uv_stop(&w->loop);
}

void worker_maybe_done(worker *w) {
  if (w->draining && w->nconns == 0 && w->nrequests_active == 0) finish(w);
}

static void on_log_timer(uv_timer_t *t) {
  (void)t;
  log_flush();
}

void worker_arm_log_flush(worker *w) {
  /* Once per batch, not per request: the buffer was empty. */
  uv_timer_start(&w->log_timer, on_log_timer, LOG_FLUSH_MS, 0);
}

static void on_drain_timeout(uv_timer_t *t) {
  worker *w = t->data;
  log_warn("drain timeout: %zu connections still open, exiting", w->nconns);
  log_flush();
  /* In-flight handlers did not finish in time: leave without fini, as a
   * crash would; the master does not respawn a stopping worker. */
  _exit(0);
}

void worker_drain(worker *w) {
  if (w->draining) return;
  w->draining = 1;
  metrics_set_ready(0, (int)w->plugins->count);
  if (w->listening) {
    uv_close((uv_handle_t *)&w->listener, NULL);
    w->listening = 0;
  }
  uv_timer_start(&w->drain_timer, on_drain_timeout,
                 (uint64_t)w->cfg->drain_timeout_ms, 0);
  uv_unref((uv_handle_t *)&w->drain_timer);
  conn_drain_all(w);
  worker_maybe_done(w);
}

static void on_signal(uv_signal_t *s, int sig) {
  worker *w = s->data;
  if (sig == SIGTERM) worker_drain(w);
  /* SIGINT and SIGHUP are the master's: a terminal's Ctrl-C reaches the
   * whole process group, and the master decides what the workers do. */
}

void worker_run(const nno_config *cfg, int slot, int fd) {
  static worker w_storage;
  worker *w = &w_storage;
  g_worker = w;
  w->cfg = cfg;
  w->slot = slot;
  log_init("worker", (int)cfg->log_level);
  /* Leave when the master dies, whatever the reason. */
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() == 1) _exit(0);
  signal(SIGPIPE, SIG_IGN);
  metrics_bind(slot);
  /* A fatal signal in plugin code is reported (crash.h). */
  crash_install(slot);
  if (uv_loop_init(&w->loop) != 0) _exit(2);
  w->limits.max_header_bytes = (size_t)cfg->max_header_bytes;
  w->limits.max_headers = (size_t)cfg->max_headers;
  w->limits.max_body_bytes = (size_t)cfg->max_body_bytes;
  w->limits.max_field_bytes = (size_t)cfg->max_field_bytes;
  unsigned char seed[24];
  randombytes_buf(seed, sizeof seed);
  memcpy(w->rng, seed, 16);
  if (!w->rng[0] && !w->rng[1]) w->rng[0] = 1;
  for (int i = 0; i < 8; i++)
    snprintf(w->rid_prefix + 2 * i, 3, "%02x", seed[16 + i]);
  w->router = router_new();
  w->services = services_new();
  w->plugins = calloc(1, sizeof *w->plugins);
  w->fetcher = fetch_new(&w->loop, cfg);
  if (!w->router || !w->services || !w->plugins || !w->fetcher) {
    log_error("out of memory starting the worker");
    _exit(2);
  }
  uv_timer_init(&w->loop, &w->drain_timer);
  w->drain_timer.data = w;
  /* Unreferenced: buffered lines never keep a draining loop alive; they are
   * written after uv_run returns. */
  uv_timer_init(&w->loop, &w->log_timer);
  uv_unref((uv_handle_t *)&w->log_timer);
  uv_signal_init(&w->loop, &w->sig_term);
  uv_signal_init(&w->loop, &w->sig_int);
  uv_signal_init(&w->loop, &w->sig_hup);
  w->sig_term.data = w->sig_int.data = w->sig_hup.data = w;
  uv_signal_start(&w->sig_term, on_signal, SIGTERM);
  uv_signal_start(&w->sig_int, on_signal, SIGINT);
  uv_signal_start(&w->sig_hup, on_signal, SIGHUP);
  uv_unref((uv_handle_t *)&w->sig_term);
  uv_unref((uv_handle_t *)&w->sig_int);
  uv_unref((uv_handle_t *)&w->sig_hup);

  /* Before the stacks: a sandboxed stack's trial load starts a sandbox. */
  sandbox_init(w);
  int loaded = loader_load_all(w);
  if (loaded < 0) {
    log_error("cannot load the core plugins; this worker cannot serve");
    _exit(WORKER_EXIT_FATAL);
  }
  /* Without a core plugin resolving requests to platforms, stacks are
   * served at the root (development, and hosts without a registry). */
  w->dev_mode = w->nhooks[NNO_STAGE_RESOLVE] == 0;
  /* With no core plugin authorising (core_plugins empty, e.g. for
   * development), nothing asks for a credential: say so. */
  if (w->nhooks[NNO_STAGE_AUTHZ] == 0)
    log_warn(
        "no authorization hook: feature routes are served without "
        "credentials");
  uv_tcp_init(&w->loop, &w->listener);
  w->listener.data = w;
  int rc = uv_tcp_open(&w->listener, fd);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&w->listener, 4096, on_connection);
  if (rc != 0) {
    log_error("cannot listen: %s", uv_strerror(rc));
    _exit(2);
  }
  w->listening = 1;
  stacks_start(w);
  /* Without it the worker still serves: the reason is logged. */
  (void)watchdog_start(w, slot);
  quarantine_start(w);
  metrics_set_ready(1, loaded);
  logline l;
  log_begin(&l, NNO_LOG_INFO, "worker ready");
  log_int(&l, "slot", slot);
  log_int(&l, "plugins", loaded);
  size_t routes = router_count(w->router);
  for (stack *st = w->plugins->stacks; st; st = st->next)
    routes += router_count(st->router);
  log_int(&l, "stacks", (long long)w->plugins->nstacks);
  log_int(&l, "routes", (long long)routes);
  log_end(&l);

  uv_run(&w->loop, UV_RUN_DEFAULT);
  /* The loop stops turning now: no watchdog while plugins finish. */
  watchdog_stop();
  /* Drained: every request answered has its access line; write them. */
  log_flush();
  /* Sandboxes go first: their requests are over. */
  sandbox_shutdown(w);
  /* Outside every callback now: plugins can be finalised and unloaded. */
  loader_unload_all(w);
  fetch_free(w->fetcher);
  w->fetcher = NULL;
  /* Close what is left (signals, timers) so nothing leaks at exit. */
  uv_close((uv_handle_t *)&w->sig_term, NULL);
  uv_close((uv_handle_t *)&w->sig_int, NULL);
  uv_close((uv_handle_t *)&w->sig_hup, NULL);
  uv_close((uv_handle_t *)&w->drain_timer, NULL);
  uv_close((uv_handle_t *)&w->log_timer, NULL);
  stacks_stop(w);
  quarantine_stop(w);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  uv_loop_close(&w->loop);
  router_free(w->router);
  if (w->upload_router) router_free(w->upload_router);
  for (int i = 0; i < 6; i++) free(w->hooks[i]);
  free(w->done);
  services_free(w->services);
  free(w->plugins);
  log_info("worker stopped");
  exit(0);
}
