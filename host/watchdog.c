/* The loop watchdog, worker memory and overload shedding (watchdog.h).
 *
 * The loop's iterations are measured from a uv_prepare hook (just before
 * the poll) and the first callback after the poll (watchdog_woke): between
 * two prepares the loop first waited in the poll, then was busy
 * (callbacks, timers) from that first callback until the second prepare.
 * That busy stretch is the iteration's lag: what a request arriving during
 * it waited before the loop could read it.
 *
 * Why not libuv's idle-time metric (UV_METRICS_IDLE_TIME), which measures
 * the poll itself: to do so libuv 1.44 polls once at zero timeout before
 * every poll that would sleep, one more system call on every idle turn of
 * the loop, a cost seen in the in-process throughput where system calls
 * are dear. A clock reading costs a fortieth of it. What the reading
 * cannot tell, whether a quick poll waited at all, is asked of the kernel
 * only after stretches long enough for it to matter (wd_arrival).
 *
 * The watchdog thread wakes every hard_ms/4 (at least 10 ms, at most 1 s)
 * and compares a heartbeat the loop bumps at each prepare and check. If it
 * has not moved, the loop is either idle in its poll or stuck: the thread
 * pokes it (uv_async_send), which an idle loop answers at once with an
 * iteration. Not moving for hard_ms means stuck: the thread logs `loop
 * stuck` with the call running (copied under g_callctx_seq) and raises the
 * slot's recycle flag; the master replaces the worker (master.c). */
#include "watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "callctx.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "req.h"
#include "tcp_age.h"
#include "worker.h"

/* ---- the pure parts -------------------------------------------------- */

uint64_t wd_lag_value(const wd_lag *l, uint64_t now_ns) {
  if (now_ns <= l->at_ns) return l->value_ns;
  uint64_t dt = now_ns - l->at_ns;
  uint64_t halves = dt / WD_LAG_HALF_NS;
  if (halves >= 64) return 0;
  uint64_t v = l->value_ns >> halves;
  /* Between two halvings, linearly down to the next one. */
  uint64_t part = dt % WD_LAG_HALF_NS;
  return v - (v / 2) / (WD_LAG_HALF_NS / 1000) * (part / 1000);
}

void wd_lag_note(wd_lag *l, uint64_t now_ns, uint64_t busy_ns) {
  uint64_t v = wd_lag_value(l, now_ns);
  if (busy_ns > WD_LAG_CAP_NS) busy_ns = WD_LAG_CAP_NS;
  l->value_ns = busy_ns > v ? busy_ns : v;
  l->at_ns = now_ns;
}

int wd_overload_reason(const wd_limits *lim, uint64_t connections,
                       uint64_t rss_bytes, uint64_t lag_ns) {
  if (lim->max_connections && connections > lim->max_connections)
    return WD_OVERLOAD_CONNECTIONS;
  if (lim->max_rss_bytes && rss_bytes > lim->max_rss_bytes)
    return WD_OVERLOAD_MEMORY;
  if (lim->max_lag_ns && lag_ns > lim->max_lag_ns) return WD_OVERLOAD_LAG;
  return WD_OVERLOAD_NONE;
}

/* ---- the shared segment ---------------------------------------------- */

#define WD_MAX_PACKAGES 64
#define WD_NAME_MAX 64
#define WD_NBUCKETS 8
#define WD_LAG_WINDOW 10 /* seconds of nno_loop_lag_seconds */

static const double iter_le[WD_NBUCKETS - 1] = {0.0001, 0.001, 0.005, 0.01,
                                                0.05,   0.1,   1};
/* The same bounds in nanoseconds, for the loop's own comparisons. */
static const uint64_t iter_le_ns[WD_NBUCKETS - 1] = {
    100000, 1000000, 5000000, 10000000, 50000000, 100000000, 1000000000};
static const char *const reason_names[] = {"", "connections", "memory", "lag"};

typedef struct wd_slot {
  _Atomic int pid;     /* 0: no worker */
  _Atomic int recycle; /* WD_RECYCLE_* */
  _Atomic int stuck;
  _Atomic uint64_t rss_bytes;
  _Atomic uint64_t lag_max_ns; /* the busiest iteration of the window */
  _Atomic uint64_t iter_bucket[WD_NBUCKETS];
  _Atomic uint64_t iter_sum_ns;
} wd_slot;

typedef struct wd_pkg {
  _Atomic int state; /* 0 free, 1 being written, 2 ready */
  char name[WD_NAME_MAX];
  _Atomic uint64_t stalls;
} wd_pkg;

typedef struct wd_shm {
  wd_slot slots[METRICS_MAX_WORKERS];
  wd_pkg pkgs[WD_MAX_PACKAGES];
  _Atomic uint64_t stalls_other; /* packages past the table */
  _Atomic uint64_t rejected[4];  /* by WD_OVERLOAD_* */
} wd_shm;

static wd_shm *g;

int watchdog_shm_init(void) {
  if (g) return 0;
  void *p = mmap(NULL, sizeof(wd_shm), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  g = p;
  return 0;
}

void watchdog_slot_reset(int slot) {
  if (!g || slot < 0 || slot >= METRICS_MAX_WORKERS) return;
  wd_slot *s = &g->slots[slot];
  atomic_store(&s->pid, 0);
  atomic_store(&s->recycle, 0);
  atomic_store(&s->stuck, 0);
  atomic_store(&s->rss_bytes, 0);
  atomic_store(&s->lag_max_ns, 0);
}

int watchdog_slot_recycle(int slot) {
  if (!g || slot < 0 || slot >= METRICS_MAX_WORKERS) return 0;
  return atomic_load(&g->slots[slot].recycle);
}

int watchdog_slot_stuck(int slot) {
  if (!g || slot < 0 || slot >= METRICS_MAX_WORKERS) return 0;
  return atomic_load(&g->slots[slot].stuck);
}

/* The stall counter of package `name`, claimed in the shared table
 * (compare-and-swap, as metrics.c's series); NULL when it is full. */
static _Atomic uint64_t *pkg_counter(const char *name) {
  uint32_t h = 2166136261u;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * 16777619u;
  for (uint32_t i = 0; i < WD_MAX_PACKAGES; i++) {
    wd_pkg *k = &g->pkgs[(h + i) % WD_MAX_PACKAGES];
    int st = atomic_load_explicit(&k->state, memory_order_acquire);
    if (st == 0) {
      int expect = 0;
      if (atomic_compare_exchange_strong(&k->state, &expect, 1)) {
        snprintf(k->name, sizeof k->name, "%s", name);
        atomic_store_explicit(&k->state, 2, memory_order_release);
        return &k->stalls;
      }
      st = expect;
    }
    while (st == 1) st = atomic_load_explicit(&k->state, memory_order_acquire);
    if (strncmp(k->name, name, WD_NAME_MAX - 1) == 0) return &k->stalls;
  }
  return NULL;
}

void watchdog_count_rejected(int reason) {
  if (g && reason > 0 && reason < 4)
    atomic_fetch_add_explicit(&g->rejected[reason], 1, memory_order_relaxed);
}

/* ---- the worker's state (its loop thread, but for hb and the thread's
 * own fields) ---- */

static struct {
  worker *w;
  wd_slot *slot;
  int started;
  uv_prepare_t prepare;
  uv_check_t check;
  uv_timer_t tick;     /* once a second: RSS, the lag window */
  uv_async_t poke;     /* the thread wakes an idle loop */
  uint64_t prep_ns;    /* the last prepare */
  uint64_t woke_ns;    /* the first callback after it, 0: none yet */
  int ready;           /* wd_arrival's: was anything ready at the prepare */
  uint64_t busy_since; /* when the poll before the last prepare returned */
  uint64_t arrival_ns; /* this iteration's watchdog_arrival_ns, 0: unknown */
  int waited;          /* with it: the poll waited for what it returned */
  uint64_t polled_ns;  /* watchdog_polled since the last prepare: its time */
  uint64_t polled_end; /* and when the last ended, 0: none */
  uint64_t iter;       /* prepares so far */
  wd_lag lag;
  uint64_t window[WD_LAG_WINDOW]; /* the busiest iteration of each second */
  unsigned window_i;
  uint64_t lag_shown; /* what the slot shows */
  int statm_fd;
  uint64_t page;
  uint64_t rss;
  int recycling; /* asked the master for a replacement */
  wd_limits limits;
  /* Shared with the thread. */
  _Atomic uint64_t hb;
  uint64_t hard_ns;
  pthread_t thread;
  int thread_on;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop; /* under mu */
} st = {.statm_fd = -1};

uint64_t g_watchdog_stall_ns = UINT64_MAX;

/* Add to a counter this process alone writes. */
static void bump(_Atomic uint64_t *c, uint64_t n) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                        memory_order_relaxed);
}

static void beat(void) {
  atomic_store_explicit(&st.hb,
                        atomic_load_explicit(&st.hb, memory_order_relaxed) + 1,
                        memory_order_relaxed);
}

static void on_prepare(uv_prepare_t *h) {
  (void)h;
  uint64_t now = uv_hrtime();
  /* Busy from the first callback after the poll (the check hook's at the
   * latest), less a poll in a callback (watchdog_polled): idle time. */
  uint64_t woke = st.woke_ns && st.woke_ns <= now ? st.woke_ns : now;
  uint64_t span = now - woke;
  uint64_t busy = span > st.polled_ns ? span - st.polled_ns : 0;
  st.busy_since = woke;
  /* A poll after the callbacks was the idle stretch last: busy since it
   * ended. */
  if (st.polled_end > st.busy_since && st.polled_end <= now)
    st.busy_since = st.polled_end;
  st.ready = -1;
  if (busy >= WD_PEEK_NS) {
    /* Readable, an epoll descriptor has events ready; nothing is taken. */
    struct pollfd pf = {uv_backend_fd(&st.w->loop), POLLIN, 0};
    st.ready = poll(&pf, 1, 0) > 0;
  }
  st.woke_ns = 0;
  st.polled_ns = 0;
  st.polled_end = 0;
  st.prep_ns = now;
  st.arrival_ns = 0;
  st.iter++;
  beat();
  wd_lag_note(&st.lag, now, busy);
  if (busy > st.window[st.window_i]) {
    st.window[st.window_i] = busy;
    /* A new maximum shows at once; the tick lowers it as it ages out. */
    if (busy > st.lag_shown) {
      st.lag_shown = busy;
      atomic_store_explicit(&st.slot->lag_max_ns, busy, memory_order_relaxed);
    }
  }
  int b = 0;
  while (b < WD_NBUCKETS - 1 && busy > iter_le_ns[b]) b++;
  /* The slot's only writer: plain stores, no locked instruction. */
  bump(&st.slot->iter_bucket[b], 1);
  bump(&st.slot->iter_sum_ns, busy);
}

static void on_check(uv_check_t *h) {
  (void)h;
  watchdog_woke();
  beat();
}

void watchdog_woke(void) {
  if (!st.woke_ns && st.started) st.woke_ns = uv_hrtime();
}

static void on_poke(uv_async_t *h) {
  (void)h;
}

uint64_t wd_arrival(uint64_t prep_ns, uint64_t woke_ns, uint64_t busy_since,
                    int ready, int *waited) {
  *waited = ready != 1 && woke_ns > prep_ns + WD_WAIT_NS;
  if (*waited) return woke_ns;
  return ready == 0 ? prep_ns : busy_since;
}

uint64_t watchdog_arrival_ns(void) {
  if (!st.started) return uv_hrtime();
  if (st.arrival_ns) return st.arrival_ns;
  watchdog_woke();
  st.arrival_ns =
      wd_arrival(st.prep_ns, st.woke_ns, st.busy_since, st.ready, &st.waited);
  return st.arrival_ns;
}

uint64_t watchdog_accepted_ns(int fd, int *with_bytes) {
  uint64_t t = watchdog_arrival_ns();
  *with_bytes = 0;
  if (!st.started || st.ready != 1 || fd < 0) return t;
  /* Waiting at the prepare after a long stretch: the connection waited
   * through it. Its bytes did too if they came before the stretch ended.
   * The kernel says when its last data came, to within its clock's tick
   * (TCP_INFO, in ms of jiffies): before the end, all of it waited; after
   * it, in one segment, the client connected during the stretch and sent
   * after it, and is not dated back. Data in several segments, the last
   * after the end, may have begun before: dated back, the bound on the
   * safe side (a pipelining client's late second request must not hide
   * the first one's wait). */
  int n = 0;
  uint32_t age_ms, segs;
  if (ioctl(fd, FIONREAD, &n) != 0 || n <= 0 ||
      tcp_data_age(fd, &age_ms, &segs) != 0)
    return t;
  uint64_t age = (uint64_t)age_ms * 1000000ull;
  uint64_t now = uv_hrtime();
  if ((age <= now && now - age + WD_TICK_NS <= st.prep_ns) || segs > 1)
    *with_bytes = 1;
  return t;
}

uint64_t watchdog_first_arrival_ns(uint64_t accepted_ns,
                                   uint64_t accepted_iter, int with_bytes) {
  uint64_t t = watchdog_arrival_ns();
  if (!st.started) return t;
  if (with_bytes) return accepted_ns < t ? accepted_ns : t;
  if (st.iter == accepted_iter + 1 && !st.waited && st.busy_since < t)
    t = st.busy_since;
  return t;
}

void watchdog_polled(uint64_t from_ns, uint64_t to_ns) {
  if (!st.started || to_ns <= from_ns) return;
  if (!st.woke_ns) st.woke_ns = from_ns; /* awake before it polled */
  st.polled_ns += to_ns - from_ns;
  st.polled_end = to_ns;
}

uint64_t watchdog_iteration(void) {
  return st.iter;
}

/* /proc/self/statm's second field (resident pages), by pread of the
 * descriptor opened at start: no path lookup, no allocation. */
static uint64_t read_rss(void) {
  char b[128];
  ssize_t n = pread(st.statm_fd, b, sizeof b - 1, 0);
  if (n <= 0) return st.rss;
  b[n] = '\0';
  const char *p = strchr(b, ' ');
  if (!p) return st.rss;
  return strtoull(p + 1, NULL, 10) * st.page;
}

static void on_tick(uv_timer_t *t) {
  (void)t;
  if (st.statm_fd >= 0) {
    st.rss = read_rss();
    atomic_store_explicit(&st.slot->rss_bytes, st.rss, memory_order_relaxed);
  }
  uint64_t mx = 0;
  for (unsigned i = 0; i < WD_LAG_WINDOW; i++)
    if (st.window[i] > mx) mx = st.window[i];
  st.lag_shown = mx;
  atomic_store_explicit(&st.slot->lag_max_ns, mx, memory_order_relaxed);
  st.window_i = (st.window_i + 1) % WD_LAG_WINDOW;
  st.window[st.window_i] = 0;
  int64_t ceiling = st.w->cfg->worker_max_rss_mb;
  if (ceiling > 0 && !st.recycling && !st.w->draining &&
      st.rss > (uint64_t)ceiling << 20) {
    st.recycling = 1;
    logline l;
    log_begin(&l, NNO_LOG_WARN, "worker over its memory ceiling; recycling");
    log_int(&l, "rss_mb", (long long)(st.rss >> 20));
    log_int(&l, "limit_mb", (long long)ceiling);
    log_end(&l);
    atomic_store(&st.slot->recycle, WD_RECYCLE_RSS);
  }
}

/* ---- the watchdog thread --------------------------------------------- */

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Copy a string field of memory the loop thread owns: bounded, and only
 * trusted if g_callctx_seq did not move meanwhile (checked by the
 * caller). */
static void copy_field(char *out, size_t cap, const char *src, size_t n) {
  if (!src) n = 0;
  if (n >= cap) n = cap - 1;
  if (n) memcpy(out, src, n);
  out[n] = '\0';
}

/* The loop has not turned for `dur_ns`: say what it is running. */
static void report_stuck(uint64_t dur_ns) {
  char rid[72] = "", pkg[WD_NAME_MAX] = "", ver[64] = "", platform[65] = "";
  uint64_t since = 0;
  for (int tries = 0; tries < 100; tries++) {
    uint64_t s1 = atomic_load_explicit(&g_callctx_seq, memory_order_acquire);
    if (s1 & 1) continue;
    callctx c;
    memcpy(&c, (const void *)&g_callctx, sizeof c);
    if (c.plugin) {
      plugin *p = (plugin *)c.plugin;
      copy_field(pkg, sizeof pkg, p->man.name,
                 p->man.name ? strnlen(p->man.name, WD_NAME_MAX) : 0);
      copy_field(ver, sizeof ver, p->man.version,
                 p->man.version ? strnlen(p->man.version, 63) : 0);
    }
    if (c.req) {
      copy_field(rid, sizeof rid, c.req->rid, c.req->rid_len);
      copy_field(platform, sizeof platform, c.req->scope, c.req->scope_len);
    }
    since = c.since_ns;
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&g_callctx_seq, memory_order_relaxed) == s1) break;
    rid[0] = pkg[0] = ver[0] = platform[0] = '\0';
  }
  logline l;
  log_begin_thread(&l, NNO_LOG_ERROR, "loop stuck");
  uint64_t now = uv_hrtime();
  log_int(&l, "dur_ms",
          (long long)((since && now > since ? now - since : dur_ns) / 1000000));
  log_int(&l, "hard_ms", (long long)(st.hard_ns / 1000000));
  log_str(&l, "package", pkg[0] ? pkg : "host");
  if (ver[0]) log_str(&l, "version", ver);
  if (platform[0]) log_str(&l, "platform", platform);
  if (rid[0]) log_str(&l, "rid", rid);
  log_str(&l, "action", "recycling the worker");
  log_end_thread(&l);
}

static void *watch(void *arg) {
  (void)arg;
  uint64_t tick = st.hard_ns / 4;
  if (tick < 10000000ull) tick = 10000000ull;
  if (tick > 1000000000ull) tick = 1000000000ull;
  uint64_t last = atomic_load(&st.hb), moved = mono_ns();
  int poked = 0, stuck = 0;
  pthread_mutex_lock(&st.mu);
  while (!st.stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t due =
        (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + tick;
    ts.tv_sec = (time_t)(due / 1000000000ull);
    ts.tv_nsec = (long)(due % 1000000000ull);
    int rc = pthread_cond_timedwait(&st.cv, &st.mu, &ts);
    if (st.stop) break;
    if (rc != ETIMEDOUT && rc != 0) break;
    uint64_t now = mono_ns(), hb = atomic_load(&st.hb);
    if (hb != last) {
      last = hb;
      moved = now;
      poked = 0;
      if (stuck) {
        stuck = 0;
        atomic_store(&st.slot->stuck, 0);
        logline l;
        log_begin_thread(&l, NNO_LOG_WARN, "loop running again; draining");
        log_end_thread(&l);
      }
      continue;
    }
    if (!poked) {
      /* Idle in its poll, or stuck: an idle loop answers at once. */
      uv_async_send(&st.poke);
      poked = 1;
    }
    if (!stuck && now - moved >= st.hard_ns) {
      stuck = 1;
      report_stuck(now - moved);
      atomic_store(&st.slot->stuck, 1);
      atomic_store(&st.slot->recycle, WD_RECYCLE_STUCK);
    }
  }
  pthread_mutex_unlock(&st.mu);
  return NULL;
}

static int thread_start(void) {
  pthread_condattr_t ca;
  if (pthread_condattr_init(&ca) != 0) return -1;
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&st.cv, &ca);
  pthread_condattr_destroy(&ca);
  if (rc != 0) return -1;
  if (pthread_mutex_init(&st.mu, NULL) != 0) {
    pthread_cond_destroy(&st.cv);
    return -1;
  }
  /* Signals stay the loop thread's: block them all in the new thread. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, 64 * 1024);
  rc = pthread_create(&st.thread, &at, watch, NULL);
  pthread_attr_destroy(&at);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    pthread_mutex_destroy(&st.mu);
    pthread_cond_destroy(&st.cv);
    errno = rc;
    return -1;
  }
  st.thread_on = 1;
  return 0;
}

/* ---- start and stop ---------------------------------------------------- */

int watchdog_start(worker *w, int slot) {
  const nno_config *cfg = w->cfg;
  if (!g || slot < 0 || slot >= METRICS_MAX_WORKERS) {
    log_warn("the loop watchdog has no shared segment; running without it");
    return -1;
  }
  st.w = w;
  st.slot = &g->slots[slot];
  atomic_store(&st.slot->pid, (int)getpid());
  st.hard_ns = (uint64_t)cfg->watchdog_hard_ms * 1000000ull;
  st.limits.max_connections = (uint64_t)cfg->overload_max_connections;
  st.limits.max_rss_bytes = (uint64_t)cfg->overload_max_rss_mb << 20;
  st.limits.max_lag_ns = (uint64_t)cfg->overload_max_lag_ms * 1000000ull;
  long page = sysconf(_SC_PAGESIZE);
  st.page = page > 0 ? (uint64_t)page : 4096;
  st.statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (st.statm_fd < 0)
    log_warn(
        "cannot open /proc/self/statm (%s): worker memory is not "
        "measured",
        strerror(errno));
  uv_prepare_init(&w->loop, &st.prepare);
  uv_check_init(&w->loop, &st.check);
  uv_timer_init(&w->loop, &st.tick);
  uv_async_init(&w->loop, &st.poke, on_poke);
  uv_prepare_start(&st.prepare, on_prepare);
  uv_check_start(&st.check, on_check);
  uv_timer_start(&st.tick, on_tick, 1000, 1000);
  /* None of them keeps a draining loop alive. */
  uv_unref((uv_handle_t *)&st.prepare);
  uv_unref((uv_handle_t *)&st.check);
  uv_unref((uv_handle_t *)&st.tick);
  uv_unref((uv_handle_t *)&st.poke);
  st.prep_ns = st.busy_since = uv_hrtime();
  st.woke_ns = 0;
  st.ready = -1;
  st.started = 1;
  if (st.statm_fd >= 0) {
    st.rss = read_rss();
    atomic_store(&st.slot->rss_bytes, st.rss);
  }
  g_watchdog_stall_ns = (uint64_t)cfg->watchdog_stall_ms * 1000000ull;
  callctx_use_clock(g_watchdog_stall_ns);
  if (thread_start() != 0) {
    log_warn(
        "cannot start the watchdog thread (%s): a stuck loop is not "
        "noticed",
        strerror(errno));
    return -1;
  }
  return 0;
}

void watchdog_stop(void) {
  if (st.thread_on) {
    pthread_mutex_lock(&st.mu);
    st.stop = 1;
    pthread_cond_signal(&st.cv);
    pthread_mutex_unlock(&st.mu);
    pthread_join(st.thread, NULL);
    pthread_mutex_destroy(&st.mu);
    pthread_cond_destroy(&st.cv);
    st.thread_on = 0;
  }
  if (st.started) {
    uv_close((uv_handle_t *)&st.prepare, NULL);
    uv_close((uv_handle_t *)&st.check, NULL);
    uv_close((uv_handle_t *)&st.tick, NULL);
    uv_close((uv_handle_t *)&st.poke, NULL);
    st.started = 0;
  }
  if (st.statm_fd >= 0) close(st.statm_fd);
  st.statm_fd = -1;
  g_watchdog_stall_ns = UINT64_MAX;
}

/* ---- stalls and shedding ---------------------------------------------- */

void watchdog_stalled(const callctx *c, uint64_t dur_ns) {
  const plugin *p = (const plugin *)c->plugin;
  const char *pkg = p && p->man.name ? p->man.name : "host";
  logline l;
  log_begin(&l, NNO_LOG_WARN, "loop stalled");
  log_int(&l, "dur_ms", (long long)(dur_ns / 1000000));
  log_str(&l, "package", pkg);
  if (p && p->man.version) log_str(&l, "version", p->man.version);
  if (c->req) {
    if (c->req->scope_len)
      log_strn(&l, "platform", c->req->scope, c->req->scope_len);
    log_strn(&l, "rid", c->req->rid, c->req->rid_len);
  }
  log_end(&l);
  if (!g) return;
  _Atomic uint64_t *n = pkg_counter(pkg);
  atomic_fetch_add_explicit(n ? n : &g->stalls_other, 1, memory_order_relaxed);
}

int watchdog_overloaded(const worker *w, char *detail, size_t cap) {
  if (!st.started) return WD_OVERLOAD_NONE;
  uint64_t conns = w->nconns - w->nclosing;
  uint64_t lag = 0;
  if (st.limits.max_lag_ns) {
    /* Decayed to now: the loop may have waited in its poll since the last
     * prepare (the loop's time is updated as the poll returns). */
    uint64_t now = uv_now(&w->loop) * 1000000ull;
    lag = wd_lag_value(&st.lag, now > st.prep_ns ? now : st.prep_ns);
  }
  int why = wd_overload_reason(&st.limits, conns, st.rss, lag);
  switch (why) {
  case WD_OVERLOAD_CONNECTIONS:
    snprintf(detail, cap,
             "overloaded: %llu open connections (overload.max_connections "
             "%llu); retry later",
             (unsigned long long)conns,
             (unsigned long long)st.limits.max_connections);
    break;
  case WD_OVERLOAD_MEMORY:
    snprintf(detail, cap,
             "overloaded: the worker holds %llu MiB (overload.max_rss_mb "
             "%llu); retry later",
             (unsigned long long)(st.rss >> 20),
             (unsigned long long)(st.limits.max_rss_bytes >> 20));
    break;
  case WD_OVERLOAD_LAG:
    snprintf(detail, cap,
             "overloaded: the event loop lags %llu ms (overload.max_lag_ms "
             "%llu); retry later",
             (unsigned long long)(lag / 1000000),
             (unsigned long long)(st.limits.max_lag_ns / 1000000));
    break;
  }
  return why;
}

int watchdog_shed(nno_req *r) {
  char detail[192];
  int why = watchdog_overloaded(g_worker, detail, sizeof detail);
  if (!why) return 0;
  static const char ra[] = "Retry-After: 1\r\n";
  req_problem(r, 503, http_reason(503), detail);
  (void)buf_append(&r->headers, ra, sizeof ra - 1, SIZE_MAX);
  r->route_label = "overloaded";
  watchdog_count_rejected(why);
  return 1;
}

/* ---- /metrics ---------------------------------------------------------- */

typedef struct tbuf {
  char *p;
  size_t len, cap;
  int oom;
} tbuf;

static void tb_printf(tbuf *b, const char *fmt, ...) NNO_PRINTF(2, 3);
static void tb_printf(tbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = b->cap * 2 + (size_t)n;
    char *np = realloc(b->p, cap);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
}

char *watchdog_metrics_text(size_t *len) {
  if (!g) return NULL;
  tbuf b = {malloc(4096), 0, 4096, 0};
  if (!b.p) return NULL;
  b.p[0] = '\0';
  tb_printf(&b,
            "# HELP nno_loop_stalls_total Calls into a package that "
            "held the event loop past watchdog.stall_ms.\n"
            "# TYPE nno_loop_stalls_total counter\n");
  for (int i = 0; i < WD_MAX_PACKAGES; i++) {
    wd_pkg *k = &g->pkgs[i];
    if (atomic_load(&k->state) != 2) continue;
    /* Package names are [a-z][a-z0-9-]*, or "host": nothing to escape. */
    tb_printf(&b, "nno_loop_stalls_total{package=\"%s\"} %llu\n", k->name,
              (unsigned long long)atomic_load(&k->stalls));
  }
  uint64_t other = atomic_load(&g->stalls_other);
  if (other)
    tb_printf(&b, "nno_loop_stalls_total{package=\"other\"} %llu\n",
              (unsigned long long)other);
  tb_printf(&b,
            "# HELP nno_loop_lag_seconds The longest event loop "
            "iteration of the last 10 s, per worker.\n"
            "# TYPE nno_loop_lag_seconds gauge\n");
  uint64_t buckets[WD_NBUCKETS] = {0}, sum = 0;
  for (int i = 0; i < METRICS_MAX_WORKERS; i++) {
    wd_slot *s = &g->slots[i];
    for (int j = 0; j < WD_NBUCKETS; j++)
      buckets[j] += atomic_load(&s->iter_bucket[j]);
    sum += atomic_load(&s->iter_sum_ns);
    int pid = atomic_load(&s->pid);
    if (pid)
      tb_printf(&b, "nno_loop_lag_seconds{worker=\"%d\"} %.6f\n", pid,
                (double)atomic_load(&s->lag_max_ns) / 1e9);
  }
  tb_printf(&b,
            "# HELP nno_loop_iteration_seconds Busy time of each event "
            "loop iteration.\n"
            "# TYPE nno_loop_iteration_seconds histogram\n");
  uint64_t cum = 0;
  for (int j = 0; j < WD_NBUCKETS; j++) {
    cum += buckets[j];
    if (j < WD_NBUCKETS - 1)
      tb_printf(&b, "nno_loop_iteration_seconds_bucket{le=\"%g\"} %llu\n",
                iter_le[j], (unsigned long long)cum);
    else
      tb_printf(&b, "nno_loop_iteration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
  }
  tb_printf(&b,
            "nno_loop_iteration_seconds_sum %.6f\n"
            "nno_loop_iteration_seconds_count %llu\n",
            (double)sum / 1e9, (unsigned long long)cum);
  tb_printf(&b,
            "# HELP nno_worker_rss_bytes Resident memory per worker.\n"
            "# TYPE nno_worker_rss_bytes gauge\n");
  for (int i = 0; i < METRICS_MAX_WORKERS; i++) {
    wd_slot *s = &g->slots[i];
    int pid = atomic_load(&s->pid);
    if (pid)
      tb_printf(&b, "nno_worker_rss_bytes{worker=\"%d\"} %llu\n", pid,
                (unsigned long long)atomic_load(&s->rss_bytes));
  }
  tb_printf(&b,
            "# HELP nno_overload_rejected_total Requests and "
            "connections answered 503 overloaded.\n"
            "# TYPE nno_overload_rejected_total counter\n");
  for (int r = 1; r < 4; r++)
    tb_printf(&b, "nno_overload_rejected_total{reason=\"%s\"} %llu\n",
              reason_names[r],
              (unsigned long long)atomic_load(&g->rejected[r]));
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  *len = b.len;
  return b.p;
}
