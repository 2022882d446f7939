/* Master: sockets, fork, supervise, drain, reload.
 *
 * Each worker position ("lane") has its own listening socket bound with
 * SO_REUSEPORT, so the kernel spreads connections evenly across workers.
 * The master keeps every socket open: a respawned or reloaded worker takes
 * over its lane's socket, and connections queued meanwhile wait in that
 * socket's backlog instead of being refused. Before binding, the master
 * claims its data folder and its port (instance.c), so that a second host
 * cannot join the reuseport group and share the traffic. */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "instance.h"
#include "log.h"
#include "logring.h"
#include "meter.h"
#include "metrics.h"
#include "quarantine.h"
#include "sbx_refused.h"
#include "ratelimit.h"
#include "stacks.h"
#include "watchdog.h"
#include "worker.h"

#define MAX_LANES 64
#define MAX_PROCS METRICS_MAX_WORKERS

typedef struct proc {
  pid_t pid;
  int slot;
  int lane;
  int stopping;
  uint64_t started_ms;
  /* Replaced at its own request (watchdog.h): WD_RECYCLE_*, 0 if not. */
  int recycle;
  uint64_t recycle_ms;   /* when the replacement was started */
  pid_t replacement;     /* its pid (0: could not be started) */
  int replacement_slot;
  int term_sent;
  uint64_t unstuck_ms;   /* when its loop turned again (stuck ones) */
  /* A memory-ceiling recycle asked within QUICK_RECYCLE_MS of the start
   * waits the lane's respawn backoff before its replacement starts (0: not
   * decided yet). */
  uint64_t recycle_not_before;
  uint64_t recycle_backoff; /* that wait, for the log line */
} proc;

static proc procs[MAX_PROCS];
static int lanes_fd[MAX_LANES];
static int nlanes;
static int lane_quick_deaths[MAX_LANES];
static uint64_t lane_respawn_at[MAX_LANES]; /* 0: none pending */
/* A worker over its memory ceiling this soon after its start (its first
 * readings come a second after it serves) is recycled after the lane's
 * respawn backoff. */
#define QUICK_RECYCLE_MS 3000
static nno_config *cur;
static int fatal; /* a worker could not start: stop the host */
static sigset_t old_mask;
/* log.access_file, opened by the master so that a bad path is refused at
 * once (and a reload reopens it: rename the file, then SIGHUP). Workers
 * inherit the descriptor of their generation; -1 means stderr. */
static int access_fd = -1;
static int access_fd_old = -1; /* the previous generation's, during reload */
static int starting; /* before the first "listening": refusals go to the
                        terminal as one line plus a hint, not as JSON */

/* A refusal to start or to open a socket. While starting, in the CLI's
 * format (`nno: ...` and `hint: ...` on stderr); later, as a log line. */
static void refuse(const char *msg, const char *hint) {
  if (starting) {
    fprintf(stderr, "nno: %s\n", msg);
    if (hint) fprintf(stderr, "hint: %s\n", hint);
  } else {
    log_error("%s", msg);
  }
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Bind and listen on one lane's socket. `probe`: first make sure that
 * nothing listens on the address yet (see instance.c). */
static int open_lane(const nno_config *c, int port, int probe,
                     int *bound_port) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  int rc = getaddrinfo(c->listen_host, ps, &hints, &res);
  if (rc != 0) {
    char msg[512];
    snprintf(msg, sizeof msg, "cannot resolve listen address %.255s: %s",
             c->listen_host, gai_strerror(rc));
    refuse(msg, "give --listen a numeric address or a name that resolves");
    return -1;
  }
  instance_refusal why;
  if (probe && instance_probe_address(res->ai_addr, res->ai_addrlen,
                                      c->listen_host, port, &why) != 0) {
    refuse(why.msg, why.hint);
    freeaddrinfo(res);
    return -1;
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
    int e = errno;
    char msg[512];
    snprintf(msg, sizeof msg, "cannot listen on %.255s:%d: %s", c->listen_host,
             port, strerror(e));
    refuse(msg, e == EADDRINUSE ? "choose another port with --listen HOST:PORT"
                                : NULL);
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return -1;
  }
  freeaddrinfo(res);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &sl);
  *bound_port = ntohs(ss.ss_family == AF_INET6
                          ? ((struct sockaddr_in6 *)&ss)->sin6_port
                          : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

static int ensure_lanes(const nno_config *c, int n) {
  while (nlanes < n) {
    int port = c->listen_port, bound;
    if (nlanes > 0) {
      /* Bind the other lanes to the port the first one got (port 0). */
      struct sockaddr_storage ss;
      socklen_t sl = sizeof ss;
      getsockname(lanes_fd[0], (struct sockaddr *)&ss, &sl);
      port = ntohs(ss.ss_family == AF_INET6
                       ? ((struct sockaddr_in6 *)&ss)->sin6_port
                       : ((struct sockaddr_in *)&ss)->sin_port);
    }
    int fd = open_lane(c, port, 0, &bound);
    if (fd < 0) return -1;
    lanes_fd[nlanes++] = fd;
  }
  return 0;
}

/* Open c->access_file for appending into *fd (-1 when it is empty: stderr).
 * Returns -1, the refusal reported, when it cannot be opened. */
static int open_access_file(const nno_config *c, int *fd) {
  *fd = -1;
  if (!c->access_file[0]) return 0;
  *fd = open(c->access_file,
             O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
  if (*fd >= 0) return 0;
  int e = errno;
  char msg[PATH_MAX + 128];
  snprintf(msg, sizeof msg, "cannot open the access log file %s: %s",
           c->access_file, strerror(e));
  refuse(msg, "give log.access_file a path this user can write, or leave it "
              "empty for stderr");
  return -1;
}

/* At start: claim the data folder, then the port, then bind the lanes. */
static int claim_and_listen(const nno_config *c) {
  instance_refusal why;
  int bound;
  if (instance_lock_data(c->data_dir, &why) != 0 ||
      (c->listen_port != 0 && instance_claim_port(c->listen_port, &why) != 0)) {
    refuse(why.msg, why.hint);
    return -1;
  }
  int fd = open_lane(c, c->listen_port, c->listen_port != 0, &bound);
  if (fd < 0) return -1;
  lanes_fd[nlanes++] = fd;
  /* Port 0: the kernel picked a port no socket uses (ephemeral ports are
   * never shared through SO_REUSEPORT); claim it like a chosen one. */
  if (c->listen_port == 0 && instance_claim_port(bound, &why) != 0) {
    refuse(why.msg, why.hint);
    return -1;
  }
  return ensure_lanes(c, (int)c->workers);
}

static int last_spawned = -1; /* procs index of the last spawn() */

static int spawn(int lane) {
  int i;
  for (i = 0; i < MAX_PROCS && procs[i].pid; i++) {}
  int slot = metrics_free_slot();
  if (i == MAX_PROCS || slot < 0) {
    log_error("no free worker slot");
    return -1;
  }
  metrics_worker_started(slot, 0);
  watchdog_slot_reset(slot);
  /* The slot's crash record is the new worker's. */
  quarantine_crash *rec = quarantine_crash_slot(slot);
  if (rec) atomic_store(&rec->state, 0);
  pid_t pid = fork();
  if (pid < 0) {
    log_error("fork failed: %s", strerror(errno));
    metrics_worker_stopped(slot);
    return -1;
  }
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    signal(SIGCHLD, SIG_DFL);
    for (int l = 0; l < nlanes; l++)
      if (l != lane) close(lanes_fd[l]);
    instance_close_in_child();
    if (access_fd_old >= 0 && access_fd_old != access_fd) close(access_fd_old);
    log_access_fd(access_fd);
    worker_run(cur, slot, lanes_fd[lane]);
  }
  metrics_worker_started(slot, pid);
  procs[i].pid = pid;
  procs[i].slot = slot;
  procs[i].lane = lane;
  procs[i].stopping = 0;
  procs[i].started_ms = now_ms();
  procs[i].recycle = 0;
  procs[i].recycle_not_before = 0;
  procs[i].recycle_backoff = 0;
  last_spawned = i;
  logline l;
  log_begin(&l, NNO_LOG_INFO, "worker started");
  log_int(&l, "worker_pid", pid);
  log_int(&l, "lane", lane);
  log_end(&l);
  return 0;
}

static int live_count(int include_stopping) {
  int n = 0;
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i].pid && (include_stopping || !procs[i].stopping)) n++;
  return n;
}

/* A worker that was not asked to stop is gone: say how, with what its
 * crash handler recorded (crash.h) and when its lane is served again, and
 * count the crash against the package it was running. */
static void exited(const proc *p, pid_t pid, int status, int64_t delay) {
  quarantine_crash *rec = quarantine_crash_slot(p->slot);
  int have = rec && atomic_load(&rec->state) == 1;
  char signame[16] = "";
  logline l;
  log_begin(&l, NNO_LOG_ERROR, "worker exited");
  log_int(&l, "worker_pid", pid);
  if (WIFSIGNALED(status)) {
    log_int(&l, "signal", WTERMSIG(status));
    log_str(&l, "signal_name", crash_signal_name(WTERMSIG(status), signame));
  } else {
    log_int(&l, "exit_status", WEXITSTATUS(status));
  }
  if (delay >= 0) log_int(&l, "respawn_in_ms", (long long)delay);
  if (have) {
    log_str(&l, "rid", rec->rid);
    log_str(&l, "method", rec->method);
    log_str(&l, "path", rec->path);
    log_str(&l, "platform", rec->platform);
    log_str(&l, "package", rec->package);
    log_str(&l, "version", rec->version);
    log_str(&l, "stack", rec->stack);
  }
  log_end(&l);
  if (!have) return;
  char reason[16];
  crash_signal_name(rec->signal, reason);
  quarantine_count_worker_crash(rec->package);
  /* Feature packages only (they have a stack): a core plugin is never
   * refused, so counting it would only say so twice. */
  if (rec->package[0] && rec->stack[0])
    quarantine_note_crash(cur, rec->platform, rec->package, rec->version,
                          rec->stack, reason, rec->rid);
  atomic_store(&rec->state, 0);
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    int i;
    for (i = 0; i < MAX_PROCS && procs[i].pid != pid; i++) {}
    if (i == MAX_PROCS) continue;
    proc p = procs[i];
    procs[i].pid = 0;
    metrics_worker_stopped(p.slot);
    watchdog_slot_reset(p.slot);
    if (p.stopping) {
      /* Draining (a reload, a stop): not replaced, but a crash still
       * counts. */
      quarantine_crash *rec = quarantine_crash_slot(p.slot);
      if (rec && atomic_load(&rec->state) == 1) exited(&p, pid, status, -1);
      continue;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_FATAL) {
      log_error("a worker could not start (see the error above); stopping");
      fatal = 1;
      continue;
    }
    metrics_worker_restart();
    /* A worker that dies right after starting would otherwise spin: back
     * off 100 ms, 200 ms, ... up to 5 s while that keeps happening. */
    uint64_t t = now_ms(), delay = 0;
    if (t - p.started_ms < 1000) {
      int k = ++lane_quick_deaths[p.lane];
      delay = 100ull << (k > 6 ? 6 : k - 1);
      if (delay > 5000) delay = 5000;
    } else {
      lane_quick_deaths[p.lane] = 0;
    }
    lane_respawn_at[p.lane] = t + delay;
    exited(&p, pid, status, (int64_t)delay);
  }
}

/* Workers that asked to be replaced (watchdog.h): a replacement starts at
 * once on the same lane; a worker over its memory ceiling is drained once
 * the replacement is ready; a stuck one is told to drain at once (it does
 * when its loop turns again) and killed if it is still stuck hard_ms later,
 * or not gone drain_timeout_ms after its loop turned. */
static void recycle_due(void) {
  uint64_t t = now_ms();
  for (int i = 0; i < MAX_PROCS; i++) {
    proc *p = &procs[i];
    if (!p->pid) continue;
    if (!p->recycle) {
      int why = p->stopping ? 0 : watchdog_slot_recycle(p->slot);
      if (!why) continue;
      if (why != WD_RECYCLE_STUCK) {
        /* Over its ceiling at its first readings (a second apart, from
         * when it serves): a replacement would be too, so back off as for
         * a worker that dies young. */
        if (!p->recycle_not_before) {
          uint64_t delay = 0;
          if (t - p->started_ms < QUICK_RECYCLE_MS) {
            int k = ++lane_quick_deaths[p->lane];
            delay = 100ull << (k > 6 ? 6 : k - 1);
            if (delay > 5000) delay = 5000;
          } else {
            lane_quick_deaths[p->lane] = 0;
          }
          p->recycle_not_before = t + delay;
          p->recycle_backoff = delay;
        }
        if (t < p->recycle_not_before) continue;
      }
      p->recycle = why;
      p->recycle_ms = t;
      p->stopping = 1; /* not respawned when it exits */
      p->replacement = 0;
      p->replacement_slot = -1;
      p->unstuck_ms = 0;
      if (p->lane < cur->workers && spawn(p->lane) == 0) {
        p->replacement = procs[last_spawned].pid;
        p->replacement_slot = procs[last_spawned].slot;
      }
      logline l;
      log_begin(&l, NNO_LOG_WARN, "worker recycled");
      log_int(&l, "worker_pid", p->pid);
      if (p->recycle_backoff)
        log_int(&l, "backoff_ms", (long long)p->recycle_backoff);
      log_str(&l, "reason",
              why == WD_RECYCLE_STUCK ? "loop stuck" : "memory ceiling");
      if (p->replacement) log_int(&l, "replacement_pid", p->replacement);
      log_end(&l);
      if (why == WD_RECYCLE_STUCK) {
        kill(p->pid, SIGTERM);
        p->term_sent = 1;
      } else {
        p->term_sent = 0;
      }
      continue;
    }
    if (!p->term_sent) {
      /* Replacement first: drain once it serves (or could not start). */
      if (!p->replacement || metrics_slot_ready(p->replacement_slot) ||
          t - p->recycle_ms > 15000) {
        kill(p->pid, SIGTERM);
        p->term_sent = 1;
      }
      continue;
    }
    if (p->recycle != WD_RECYCLE_STUCK) continue;
    const char *why = NULL;
    if (watchdog_slot_stuck(p->slot)) {
      if (t - p->recycle_ms > (uint64_t)cur->watchdog_hard_ms)
        why = "still stuck";
    } else {
      if (!p->unstuck_ms) p->unstuck_ms = t;
      if (t - p->unstuck_ms > (uint64_t)cur->drain_timeout_ms + 1000)
        why = "did not drain in time";
    }
    if (why) {
      logline l;
      log_begin(&l, NNO_LOG_ERROR, "stuck worker killed");
      log_int(&l, "worker_pid", p->pid);
      log_str(&l, "why", why);
      log_end(&l);
      kill(p->pid, SIGKILL);
      p->recycle = -1; /* once */
    }
  }
}

static void respawn_due(void) {
  uint64_t t = now_ms();
  for (int l = 0; l < nlanes; l++)
    if (lane_respawn_at[l] && lane_respawn_at[l] <= t) {
      lane_respawn_at[l] = 0;
      if (l < cur->workers) spawn(l);
    }
}

static void signal_all(int sig, int mark_stopping) {
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i].pid) {
      if (mark_stopping) procs[i].stopping = 1;
      kill(procs[i].pid, sig);
    }
}

/* SIGHUP: new configuration, new workers, old ones drained. */
static void reload(config_loader loader) {
  nno_config *nc = malloc(sizeof *nc);
  char err[CONFIG_ERR_MAX];
  if (!nc) return;
  if (loader(nc, err) != 0) {
    log_error("reload refused, keeping the running configuration: %s", err);
    free(nc);
    return;
  }
  if (strcmp(nc->listen_host, cur->listen_host) != 0 ||
      nc->listen_port != cur->listen_port) {
    log_warn("the listen address changes only on restart; keeping %s:%d",
             cur->listen_host, cur->listen_port);
    memcpy(nc->listen_host, cur->listen_host, sizeof nc->listen_host);
    nc->listen_port = cur->listen_port;
  }
  if (nc->rate_buckets != cur->rate_buckets) {
    /* Workers share the one table mapped before the first fork. */
    log_warn("limits.rate_buckets changes only on restart; keeping %lld",
             (long long)cur->rate_buckets);
    nc->rate_buckets = cur->rate_buckets;
  }
  if (nc->meter_slots != cur->meter_slots) {
    log_warn("limits.meter_slots changes only on restart; keeping %lld",
             (long long)cur->meter_slots);
    nc->meter_slots = cur->meter_slots;
  }
  int nfd;
  if (ensure_lanes(nc, (int)nc->workers) != 0 ||
      open_access_file(nc, &nfd) != 0) {
    log_error("reload refused, keeping the running configuration");
    free(nc);
    return;
  }
  access_fd_old = access_fd;
  access_fd = nfd;
  /* A reload tries every stack again, those refused before included. */
  sbx_refused_clear();
  int old_pids[MAX_PROCS], nold = 0;
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i].pid && !procs[i].stopping) old_pids[nold++] = procs[i].pid;
  nno_config *prev = cur;
  cur = nc; /* children fork with the new configuration */
  for (int l = 0; l < nlanes; l++) lane_respawn_at[l] = 0;
  int started = 0;
  for (int l = 0; l < (int)nc->workers; l++)
    if (spawn(l) == 0) started++;
  /* Wait for the new generation to be ready before draining the old one,
   * so there is never a moment with nobody accepting. */
  uint64_t deadline = now_ms() + 15000;
  int ready = 0;
  while (now_ms() < deadline) {
    ready = 1;
    for (int i = 0; i < MAX_PROCS; i++) {
      if (!procs[i].pid || procs[i].stopping) continue;
      int old = 0;
      for (int j = 0; j < nold; j++) old |= procs[i].pid == old_pids[j];
      if (!old && !metrics_slot_ready(procs[i].slot)) ready = 0;
    }
    if (ready) break;
    reap();
    if (live_count(0) - nold < started) {
      ready = 0;
      break;
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (!ready || started < (int)nc->workers) {
    log_error("reload failed: new workers did not become ready; keeping the "
              "old ones");
    fatal = 0; /* the running generation is fine */
    for (int i = 0; i < MAX_PROCS; i++) {
      if (!procs[i].pid) continue;
      int old = 0;
      for (int j = 0; j < nold; j++) old |= procs[i].pid == old_pids[j];
      if (!old) {
        procs[i].stopping = 1;
        kill(procs[i].pid, SIGKILL);
      }
    }
    cur = prev;
    free(nc);
    if (access_fd >= 0) close(access_fd);
    access_fd = access_fd_old;
    access_fd_old = -1;
    /* Make sure every lane of the running generation is served. */
    for (int l = 0; l < nlanes; l++) lane_respawn_at[l] = 0;
    for (int l = 0; l < (int)cur->workers; l++) {
      int served = 0;
      for (int i = 0; i < MAX_PROCS; i++)
        served |= procs[i].pid && !procs[i].stopping && procs[i].lane == l;
      if (!served) spawn(l);
    }
    return;
  }
  for (int i = 0; i < MAX_PROCS; i++)
    for (int j = 0; j < nold; j++)
      if (procs[i].pid == old_pids[j]) {
        procs[i].stopping = 1;
        kill(procs[i].pid, SIGTERM);
      }
  /* The old workers keep their own copy of the old access file. */
  if (access_fd_old >= 0) close(access_fd_old);
  access_fd_old = -1;
  /* Lanes beyond the new worker count stay open but unserved; their
   * sockets keep the port's backlog sane until a later reload uses them. */
  log_info("reloaded: %d workers", started);
  /* `prev` may still be referenced by nothing in the master; the forked
   * children have their own copies. */
  free(prev);
}

int master_run(nno_config *cfg, config_loader loader) {
  cur = cfg;
  log_init("master", (int)cfg->log_level);
  if (metrics_init() != 0) {
    log_error("cannot map the shared metrics segment: %s", strerror(errno));
    return 1;
  }
  if (watchdog_shm_init() != 0) {
    log_error("cannot map the shared watchdog segment: %s", strerror(errno));
    return 1;
  }
  if (quarantine_init(QUARANTINE_SLOTS_DEFAULT) != 0) {
    log_error("cannot map the quarantine table: %s", strerror(errno));
    return 1;
  }
  if (sbx_refused_init() != 0) {
    log_error("cannot map the refused-stacks table: %s", strerror(errno));
    return 1;
  }
  if (limits_init((size_t)cfg->rate_buckets) != 0) {
    log_error("cannot map the rate-limit table (%lld slots): %s",
              (long long)cfg->rate_buckets, strerror(errno));
    return 1;
  }
  if (meter_init((size_t)cfg->meter_slots) != 0) {
    log_error("cannot map the meter table (%lld slots): %s",
              (long long)cfg->meter_slots, strerror(errno));
    return 1;
  }
  if (logring_init((size_t)cfg->log_ring_bytes) != 0) {
    char msg[160];
    snprintf(msg, sizeof msg, "cannot map the log ring (%lld bytes): %s",
             (long long)cfg->log_ring_bytes, strerror(errno));
    refuse(msg, "set log.ring_bytes to 0 (off) or 65536..1073741824");
    return 1;
  }
  starting = 1;
  if (mkdir(cfg->data_dir, 0750) != 0 && errno != EEXIST) {
    char msg[PATH_MAX + 128];
    snprintf(msg, sizeof msg, "cannot create data folder %s: %s",
             cfg->data_dir, strerror(errno));
    refuse(msg, "give --data a folder this user can create or write");
    return 1;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_BLOCK, &set, &old_mask);
  signal(SIGPIPE, SIG_IGN);
  if (claim_and_listen(cfg) != 0 || open_access_file(cfg, &access_fd) != 0)
    return 1;
  starting = 0;
  /* Ours alone now: what a crash interrupted in DATA/stacks goes. */
  stacks_clean_staging(cfg->data_dir);
  {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(lanes_fd[0], (struct sockaddr *)&ss, &sl);
    int port = ntohs(ss.ss_family == AF_INET6
                         ? ((struct sockaddr_in6 *)&ss)->sin6_port
                         : ((struct sockaddr_in *)&ss)->sin_port);
    logline l;
    log_begin(&l, NNO_LOG_INFO, "listening");
    log_str(&l, "host", cfg->listen_host);
    log_int(&l, "port", port);
    log_int(&l, "workers", cfg->workers);
    log_str(&l, "data", cfg->data_dir);
    log_end(&l);
  }
  for (int l = 0; l < (int)cfg->workers; l++)
    if (spawn(l) != 0) {
      signal_all(SIGKILL, 1);
      return 1;
    }
  int stopping = 0;
  uint64_t stop_deadline = 0;
  for (;;) {
    struct timespec to = {0, 100 * 1000 * 1000};
    siginfo_t si;
    int sig = sigtimedwait(&set, &si, &to);
    if (sig == SIGCHLD || sig < 0) reap();
    instance_answer_probes();
    if (fatal && !stopping) {
      stopping = 1;
      stop_deadline = now_ms() + (uint64_t)cur->drain_timeout_ms + 2000;
      signal_all(SIGTERM, 1);
    }
    if (sig == SIGTERM || sig == SIGINT) {
      if (stopping) {
        log_warn("second stop signal: killing workers");
        signal_all(SIGKILL, 1);
      } else {
        log_info("stopping: draining workers");
        stopping = 1;
        stop_deadline = now_ms() + (uint64_t)cur->drain_timeout_ms + 2000;
        signal_all(SIGTERM, 1);
      }
    } else if (sig == SIGHUP && !stopping) {
      log_info("reloading configuration and plugins");
      reload(loader);
    }
    if (stopping) {
      reap();
      if (live_count(1) == 0) break;
      if (now_ms() > stop_deadline) {
        log_warn("workers did not drain in time: killing them");
        signal_all(SIGKILL, 1);
        stop_deadline = now_ms() + 5000;
      }
      continue;
    }
    respawn_due();
    recycle_due();
  }
  for (int l = 0; l < nlanes; l++) close(lanes_fd[l]);
  if (access_fd >= 0) close(access_fd);
  log_info("stopped");
  return fatal ? 1 : 0;
}
