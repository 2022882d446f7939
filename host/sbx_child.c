/* The sandbox process: start-up in the order CONTAIN.md gives (confine,
 * load, confine more, READY), then a libuv loop serving the worker's
 * frames on fd 3: requests and events run the packages' handlers through
 * the proxy table, each answered with one RES; host calls that need the
 * worker go out as CALL and come back as RESULT. */
#include "sbx_child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "config.h"
#include "fetch.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "services.h"
#include "worker.h"

/* ---- a map of u64 keys (non-zero) to pointers ------------------------- */

/* Open addressing with linear probing and backward-shift deletion: the
 * live requests by id, the calls in flight by id, the live handles. */
typedef struct u64map {
  uint64_t *keys;
  void **vals;
  size_t cap, n; /* cap a power of two */
} u64map;

static size_t slot_of(const u64map *m, uint64_t k) {
  return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 17) & (m->cap - 1);
}

static int map_grow(u64map *m) {
  size_t cap = m->cap ? m->cap * 2 : 64;
  uint64_t *k = calloc(cap, sizeof *k);
  void **v = calloc(cap, sizeof *v);
  if (!k || !v) {
    free(k);
    free(v);
    return -1;
  }
  u64map o = *m;
  m->keys = k;
  m->vals = v;
  m->cap = cap;
  m->n = 0;
  for (size_t i = 0; i < o.cap; i++)
    if (o.keys[i]) {
      size_t s = slot_of(m, o.keys[i]);
      while (m->keys[s]) s = (s + 1) & (m->cap - 1);
      m->keys[s] = o.keys[i];
      m->vals[s] = o.vals[i];
      m->n++;
    }
  free(o.keys);
  free(o.vals);
  return 0;
}

static int map_put(u64map *m, uint64_t k, void *v) {
  if ((m->n + 1) * 2 > m->cap && map_grow(m)) return -1;
  size_t s = slot_of(m, k);
  while (m->keys[s] && m->keys[s] != k) s = (s + 1) & (m->cap - 1);
  if (!m->keys[s]) m->n++;
  m->keys[s] = k;
  m->vals[s] = v;
  return 0;
}

static void *map_get(const u64map *m, uint64_t k) {
  if (!m->cap || !k) return NULL;
  size_t s = slot_of(m, k);
  while (m->keys[s]) {
    if (m->keys[s] == k) return m->vals[s];
    s = (s + 1) & (m->cap - 1);
  }
  return NULL;
}

static void map_del(u64map *m, uint64_t k) {
  if (!m->cap || !k) return;
  size_t s = slot_of(m, k);
  while (m->keys[s] && m->keys[s] != k) s = (s + 1) & (m->cap - 1);
  if (!m->keys[s]) return;
  m->keys[s] = 0;
  m->vals[s] = NULL;
  m->n--;
  /* Shift back the entries after it that probed past the hole. */
  size_t j = s;
  for (;;) {
    j = (j + 1) & (m->cap - 1);
    if (!m->keys[j]) break;
    size_t h = slot_of(m, m->keys[j]);
    /* Entry j may move to the hole s iff s lies cyclically in [h, j). */
    if ((j > s && (h <= s || h > j)) || (j < s && h <= s && h > j)) {
      m->keys[s] = m->keys[j];
      m->vals[s] = m->vals[j];
      m->keys[j] = 0;
      m->vals[j] = NULL;
      s = j;
    }
  }
}

/* ---- state ------------------------------------------------------------- */

static worker g_w;
static nno_config g_cfg;
static stack *g_stack; /* the stack this sandbox serves */
static char g_platform[65];
static uint64_t g_memory_max;     /* bytes; 0 none */
static uint64_t g_cpu_default_ms; /* a REQ without a CPU budget gets this */
static int g_statm_fd = -1;

static char *g_in; /* bytes read from the worker */
static size_t g_in_off, g_in_len, g_in_cap;
static sbx_out g_out; /* frames to the worker, flushed once per turn */
static uv_poll_t g_poll;
static uv_prepare_t g_prepare;
static uv_idle_t g_idle;
static int g_stopping;
static int g_recycle_sent;

static u64map g_reqs;    /* id -> sbx_req */
static u64map g_calls;   /* call id -> sbx_call_entry */
static u64map g_handles; /* pointer -> type */
static sbx_req *g_live;  /* every live request */
static uint64_t g_next_call = 1;

sbx_req *g_sbx_cur;

typedef struct sbx_call_entry {
  sbx_req *req;
  sbx_result_fn cb;
  void *ud;
} sbx_call_entry;

sbx_out *sbx_output(void) {
  return &g_out;
}

/* ---- handles ----------------------------------------------------------- */

int sbx_handle_add(const void *h, int type) {
  return map_put(&g_handles, (uint64_t)(uintptr_t)h, (void *)(uintptr_t)type)
             ? NNO_ENOMEM
             : 0;
}

void sbx_handle_del(const void *h) {
  map_del(&g_handles, (uint64_t)(uintptr_t)h);
}

int sbx_handle_is(const void *h, int type) {
  return h &&
         (int)(uintptr_t)map_get(&g_handles, (uint64_t)(uintptr_t)h) == type;
}

int sbx_garbage(const char *call) {
  static uint64_t window, count;
  uint64_t now = uv_hrtime() / 1000000000u;
  if (now != window) {
    window = now;
    count = 0;
  }
  if (count++ < 10) {
    char msg[160];
    snprintf(msg, sizeof msg, "garbage handle passed to %s", call);
    sbx_log(NNO_LOG_ERROR,
            g_sbx_cur && g_sbx_cur->plugin ? g_sbx_cur->plugin->man.name : "",
            msg);
  }
  return NNO_EINVAL;
}

/* ---- output ------------------------------------------------------------ */

_Noreturn static void die(int reason) {
  if (g_sbx_shared)
    atomic_store_explicit(&g_sbx_shared->exit_reason, (uint32_t)reason,
                          memory_order_relaxed);
  _exit(reason);
}

/* Write everything buffered, waiting for room if need be: the worker
 * always reads. */
static void flush_out(void) {
  size_t done = 0;
  while (done < g_out.len) {
    ssize_t n = write(SBX_FD_SOCK, g_out.p + done, g_out.len - done);
    if (n > 0) {
      done += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      struct pollfd pf = {SBX_FD_SOCK, POLLOUT, 0};
      if (poll(&pf, 1, -1) < 0 && errno != EINTR) _exit(0);
    } else {
      _exit(0); /* the worker is gone: nothing to answer to */
    }
  }
  g_out.len = 0;
}

/* The loader's progress: the package it opens and initialises (or runs
 * on_host_ready of) now, for the worker to name if the load ends here. */
static void mark_loading(size_t idx, int on_host_ready) {
  if (!g_sbx_shared) return;
  atomic_store_explicit(&g_sbx_shared->load_phase, (uint32_t)on_host_ready,
                        memory_order_relaxed);
  atomic_store_explicit(&g_sbx_shared->load_pkg, (uint32_t)idx + 1,
                        memory_order_relaxed);
}

/* log.c's sink: a runtime line as a LOG frame (SBX_LOG_RUNTIME), written
 * at once (an _exit may follow). Not while a frame is being built: then
 * stderr, relayed as text. */
static int runtime_line(const char *line, size_t n) {
  if (g_out.open || g_out.oom || !sbx_on_loop()) return -1;
  while (n && line[n - 1] == '\n') n--;
  size_t at = sbx_begin(&g_out, SBX_MSG_LOG, 0);
  uint16_t flags = SBX_LOG_RUNTIME;
  if (!g_out.oom)
    memcpy(g_out.p + at + offsetof(sbx_frame_head, flags), &flags,
           sizeof flags);
  sbx_u8(&g_out, NNO_LOG_INFO);
  sbx_str(&g_out, line, n);
  if (sbx_end(&g_out, at) != 0) return -1;
  flush_out();
  return 0;
}

void sbx_log(int level, const char *pkg, const char *msg) {
  /* flags: the package index + 1 (0: the sandbox itself). */
  size_t at = sbx_begin(&g_out, SBX_MSG_LOG, g_sbx_cur ? g_sbx_cur->id : 0);
  uint16_t flags = 0;
  if (g_stack && pkg && *pkg)
    for (size_t i = 0; i < g_stack->nplugins; i++)
      if (strcmp(g_stack->plugins[i]->man.name, pkg) == 0)
        flags = (uint16_t)(i + 1);
  if (!g_out.oom)
    memcpy(g_out.p + at + offsetof(sbx_frame_head, flags), &flags,
           sizeof flags);
  sbx_u8(&g_out, (uint8_t)level);
  size_t n = strlen(msg);
  sbx_str(&g_out, msg, n > 1024 ? 1024 : n);
  sbx_end(&g_out, at);
}

/* ---- input ------------------------------------------------------------- */

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wait until the channel has input, reading it into `dst` (`room` bytes)
 * when it comes while polling. A wake-up from sleep costs a system call on
 * each side and, when the CPU went idle, the time to bring it back (tens
 * of µs in some VMs); at a steady rate of requests most of that is saved
 * by polling a little before sleeping, as the kernel's haltpoll does for
 * idle CPUs. The worker grants the poll (sandbox.poll_us; to one sandbox
 * of its own at a time) and may take it back at any moment; the window
 * adapts to how far apart requests come (sbx_poll_window). The bytes read
 * (> 0); 0: input is there to read; -1: a signal interrupted the sleep;
 * -2: the worker closed its end. */
static ssize_t wait_input(char *dst, size_t room) {
  static uint64_t win;
  sbx_shared *pg = g_sbx_shared;
  uint64_t grant =
      pg ? atomic_load_explicit(&pg->poll_grant_ns, memory_order_relaxed) : 0;
  uint64_t t0 = mono_ns(), t = t0;
  ssize_t n = -1;
  if (grant && win) {
    uint64_t end = t0 + (win < grant ? win : grant);
    /* The socket is non-blocking: a read is the poll, and brings what it
     * finds. */
    do {
      n = read(SBX_FD_SOCK, dst, room);
      t = mono_ns();
    } while (n < 0 && (errno == EAGAIN || errno == EINTR) && t < end &&
             atomic_load_explicit(&pg->poll_grant_ns, memory_order_relaxed));
    atomic_fetch_add_explicit(&pg->poll_total_ns, t - t0,
                              memory_order_relaxed);
  }
  if (n < 0) {
    struct pollfd pf = {SBX_FD_SOCK, POLLIN, 0};
    if (poll(&pf, 1, -1) < 0) return -1;
    t = mono_ns();
    n = 0;
  } else if (n == 0) {
    return -2;
  }
  win = sbx_poll_window(win, grant, t - t0);
  return n;
}

/* Read what is there (non-blocking), after waiting in poll() for some to
 * come if `wait`. 2: the buffer's room was filled (more may wait), 1: a
 * short read (the socket is drained: the next readiness says when more
 * comes, no read to see EAGAIN), 0 nothing now (or a signal came), -1 EOF.
 *
 * poll(), not a blocking read: a reader asleep in read() of a unix socket
 * is woken each time its peer reads what it wrote (the write space freed),
 * finds nothing and sleeps again, a context switch a request more; poll()
 * and epoll wake only for the events asked for. */
static int read_some(int wait) {
  if (g_in_off > 0 && g_in_off == g_in_len) g_in_off = g_in_len = 0;
  if (g_in_cap - g_in_len < 65536) {
    if (g_in_off > 0) {
      memmove(g_in, g_in + g_in_off, g_in_len - g_in_off);
      g_in_len -= g_in_off;
      g_in_off = 0;
    }
    if (g_in_cap - g_in_len < 65536) {
      size_t cap = g_in_cap ? g_in_cap * 2 : 262144;
      if (cap > (size_t)SBX_FRAME_MAX * 2 + 65536) die(SBX_EXIT_MEMORY);
      char *p = realloc(g_in, cap);
      if (!p) die(SBX_EXIT_MEMORY);
      g_in = p;
      g_in_cap = cap;
    }
  }
  for (;;) {
    size_t room = g_in_cap - g_in_len;
    ssize_t n = 0;
    if (wait) {
      n = wait_input(g_in + g_in_len, room);
      if (n == -1) return 0; /* EINTR: back to the loop */
      if (n == -2) return -1;
      /* The loop's clock, for the timers the frames' handlers start. */
      uv_update_time(&g_w.loop);
      wait = 0;
    }
    if (n == 0) n = read(SBX_FD_SOCK, g_in + g_in_len, room);
    if (n > 0) {
      g_in_len += (size_t)n;
      return (size_t)n == room ? 2 : 1;
    }
    if (n == 0) return -1;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return 0;
    return -1;
  }
}

/* The next complete frame at the front, copied out (the caller frees), or
 * NULL when more bytes are needed. Malformed: exit. */
static char *next_frame(size_t *len) {
  long n = sbx_frame_ready(g_in + g_in_off, g_in_len - g_in_off, SBX_FRAME_MAX);
  if (n < 0) die(SBX_EXIT_PROTOCOL);
  if (n == 0) return NULL;
  char *f = malloc((size_t)n + 1);
  if (!f) die(SBX_EXIT_MEMORY);
  memcpy(f, g_in + g_in_off, (size_t)n);
  f[n] = '\0';
  g_in_off += (size_t)n;
  *len = (size_t)n;
  return f;
}

/* ---- requests ---------------------------------------------------------- */

static int g_entered;       /* depth of plugin callbacks */
static uint64_t g_cb_ns;    /* time in callbacks since the memory check */
static uint64_t g_cb_since; /* CLOCK_MONOTONIC the outermost one entered */
/* The outermost callback runs for a request or platform event: its time is
 * what the worker's CPU sampling counts as inside (a timer no live request
 * started, spinning, is outside). */
static int g_cb_for;

/* What the CPU clock's ticks are charged against: the budget left to the
 * request whose callback runs (g_cpu_on), in ns. Written by the loop
 * thread, charged by the signal handler on any thread: lock-free atomics
 * only. */
static _Atomic int64_t g_cpu_left;
static _Atomic int g_cpu_on;
static int64_t g_cpu_set; /* g_cpu_left as last set, for what was charged */

int sbx_cpu_charge(uint64_t ns) {
  if (!atomic_load_explicit(&g_cpu_on, memory_order_relaxed)) return 1;
  int64_t n = ns > INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)ns;
  return atomic_fetch_sub_explicit(&g_cpu_left, n, memory_order_relaxed) > n;
}

/* What r may still be charged (at least 1 ns: an overdrawn request is
 * stopped at its next tick), or 0 for no budget. A tick charges the CPU
 * time of a whole tick, part of which may have gone before the callback
 * began: a request is stopped once charged a tick past its budget, and so
 * measured to within a tick or two. */
static uint64_t cpu_left(const sbx_req *r) {
  if (!r || !r->cpu_budget_ns || !sbx_handle_is(r, SBX_H_REQ)) return 0;
  uint64_t tick = sbx_cpu_tick_ns();
  uint64_t limit = r->cpu_budget_ns > (uint64_t)INT64_MAX - tick
                       ? (uint64_t)INT64_MAX
                       : r->cpu_budget_ns + tick;
  return r->cpu_used_ns < limit ? limit - r->cpu_used_ns : 1;
}

/* Charge `was` (the request the ticks counted for) with the ticks taken
 * since, and count them for `next` from now: no system call. */
static void cpu_switch(sbx_req *was, sbx_req *next) {
  int on = atomic_load_explicit(&g_cpu_on, memory_order_relaxed);
  atomic_store_explicit(&g_cpu_on, 0, memory_order_relaxed);
  if (on && was && sbx_handle_is(was, SBX_H_REQ)) {
    int64_t spent =
        g_cpu_set - atomic_load_explicit(&g_cpu_left, memory_order_relaxed);
    if (spent > 0) was->cpu_used_ns += (uint64_t)spent;
  }
  uint64_t left = cpu_left(next);
  if (!left) return;
  g_cpu_set = (int64_t)left;
  atomic_store_explicit(&g_cpu_left, g_cpu_set, memory_order_relaxed);
  atomic_store_explicit(&g_cpu_on, 1, memory_order_relaxed);
}

void sbx_enter(sbx_req *r, sbx_enter_state *st) {
  st->prev = g_sbx_cur;
  st->mono0 = mono_ns();
  /* The same request nested keeps its arming running. */
  if (r != st->prev) cpu_switch(st->prev, r);
  g_sbx_cur = r;
  if (g_entered++ == 0) {
    g_cb_since = st->mono0;
    g_cb_for = r != NULL;
  }
  if (g_sbx_shared && r) {
    atomic_store_explicit(&g_sbx_shared->busy_pkg, r->pkg,
                          memory_order_relaxed);
    atomic_store_explicit(&g_sbx_shared->busy_since_ns, st->mono0,
                          memory_order_relaxed);
    atomic_store_explicit(&g_sbx_shared->busy_req, r->id, memory_order_relaxed);
  }
}

static void req_maybe_free(sbx_req *r);

void sbx_leave(const sbx_enter_state *st) {
  sbx_req *r = g_sbx_cur;
  if (r != st->prev) cpu_switch(r, st->prev);
  if (--g_entered == 0) {
    uint64_t spent = mono_ns() - g_cb_since;
    g_cb_ns += spent;
    if (g_sbx_shared && g_cb_for)
      atomic_fetch_add_explicit(&g_sbx_shared->cb_total_ns, spent,
                                memory_order_relaxed);
  }
  g_sbx_cur = st->prev;
  if (g_sbx_shared) {
    sbx_req *p = st->prev;
    atomic_store_explicit(&g_sbx_shared->busy_req, p ? p->id : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&g_sbx_shared->busy_pkg, p ? p->pkg : 0,
                          memory_order_relaxed);
    if (!p)
      atomic_store_explicit(&g_sbx_shared->busy_since_ns, 0,
                            memory_order_relaxed);
  }
  if (r && sbx_handle_is(r, SBX_H_REQ)) req_maybe_free(r);
}

static void req_free(sbx_req *r) {
  sbx_api_release(r);
  if (r->prev)
    r->prev->next = r->next;
  else
    g_live = r->next;
  if (r->next) r->next->prev = r->prev;
  map_del(&g_reqs, r->id);
  sbx_handle_del(r);
  for (sbx_chunk *c = r->chunks, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  buf_free(&r->headers_out);
  buf_free(&r->keep_out);
  buf_free(&r->body_out);
  free(r->headers);
  free(r->params);
  free(r->frame);
  free(r);
}

/* Freed once ended, with no call in flight and no callback on the stack
 * running for it. */
static void req_maybe_free(sbx_req *r) {
  if (!r->ended || r->pending || g_sbx_cur == r) return;
  req_free(r);
}

/* The process's resident set (bytes), from the statm opened at start. */
static uint64_t rss_bytes(void) {
  char b[128];
  if (g_statm_fd < 0) return 0;
  ssize_t n = pread(g_statm_fd, b, sizeof b - 1, 0);
  if (n <= 0) return 0;
  b[n] = '\0';
  unsigned long long size = 0, res = 0;
  if (sscanf(b, "%llu %llu", &size, &res) != 2) return 0;
  return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Whether a request's end should read the resident set. Memory only grows
 * by being touched, and touching it takes time: package code that ran for
 * less than SBX_MEM_CHECK_CB_NS since the last reading can have added at
 * most a few hundred KiB (page faults run at a few GiB/s a core), so the
 * reading is skipped until that much callback time has passed, or
 * SBX_MEM_CHECK_MAX_NS (growth off the request path: threads), or always
 * once the budget was crossed. The request that crosses the budget by
 * more than that slack is the one answered 503. */
#define SBX_MEM_CHECK_CB_NS 50000u      /* 50 us of package code */
#define SBX_MEM_CHECK_MAX_NS 100000000u /* 100 ms */
static uint64_t g_mem_checked_ns;       /* CLOCK_MONOTONIC of the last */

static int memory_check_due(uint64_t now) {
  /* The callback still running (a handler ending its request) counts. */
  uint64_t cb = g_cb_ns + (g_entered ? now - g_cb_since : 0);
  return g_recycle_sent || cb >= SBX_MEM_CHECK_CB_NS ||
         now - g_mem_checked_ns >= SBX_MEM_CHECK_MAX_NS;
}

static void send_res(sbx_req *r, int rc) {
  uint64_t rss = 0, now = mono_ns();
  if (memory_check_due(now)) {
    rss = rss_bytes();
    g_cb_ns = 0;
    g_cb_since = g_mem_checked_ns = now;
    if (g_sbx_shared)
      atomic_store_explicit(&g_sbx_shared->rss_bytes, rss,
                            memory_order_relaxed);
  }
  if (g_memory_max && rss > g_memory_max && !r->event) {
    char detail[128];
    snprintf(detail, sizeof detail,
             "memory budget exceeded (%llu MiB of %llu MiB)",
             (unsigned long long)(rss >> 20),
             (unsigned long long)(g_memory_max >> 20));
    sbx_problem(r, 503, "Service Unavailable", detail);
    rc = 0;
    if (!g_recycle_sent) {
      g_recycle_sent = 1;
      /* Named for the request whose end found it, before that RES. */
      size_t at = sbx_begin(&g_out, SBX_MSG_RECYCLE, r->id);
      char reason[128];
      snprintf(reason, sizeof reason,
               "memory budget exceeded: %llu MiB of "
               "%llu MiB",
               (unsigned long long)(rss >> 20),
               (unsigned long long)(g_memory_max >> 20));
      sbx_cstr(&g_out, reason);
      sbx_end(&g_out, at);
    }
  }
  /* As the worker's req_finish: a body cut at max_response_bytes is a
   * 500 problem, never sent as if whole. */
  if (r->body_over && !r->event) {
    sbx_problem(r, 500, "Internal Server Error",
                "the response is larger than limits.max_response_bytes");
  }
  size_t at = sbx_begin(&g_out, SBX_MSG_RES, r->id);
  if (r->event) {
    /* Events: 0 success, else the failure's code, its message the body. */
    int st = rc < 0 ? rc : (r->written && r->status >= 400 ? NNO_EIO : 0);
    sbx_u32(&g_out, (uint32_t)(int32_t)st);
  } else {
    sbx_u32(&g_out, (uint32_t)r->status);
  }
  sbx_str(&g_out, r->headers_out.p, r->headers_out.len);
  sbx_str(&g_out, r->keep_out.p, r->keep_out.len);
  sbx_str(&g_out, r->body_out.p, r->body_out.len);
  sbx_u8(&g_out, (uint8_t)(r->written != 0));
  sbx_i32(&g_out, rc < 0 ? rc : 0);
  if (sbx_end(&g_out, at) != 0) {
    /* Too big for a frame (or out of memory): a short problem instead. */
    sbx_problem(r, 500, "Internal Server Error", "response too large");
    at = sbx_begin(&g_out, SBX_MSG_RES, r->id);
    sbx_u32(&g_out, r->event ? (uint32_t)(int32_t)NNO_ETOOBIG : 500u);
    sbx_str(&g_out, r->headers_out.p, r->headers_out.len);
    sbx_str(&g_out, "", 0);
    sbx_str(&g_out, r->body_out.p, r->body_out.len);
    sbx_u8(&g_out, 1);
    sbx_i32(&g_out, NNO_ETOOBIG);
    sbx_end(&g_out, at);
  }
}

void sbx_req_finish(sbx_req *r, int rc) {
  if (r->ended) return;
  r->ended = 1;
  /* Every REQ gets its RES, a cancelled one too (the worker drops it):
   * the id is done on both sides. */
  send_res(r, rc);
  req_maybe_free(r);
}

int sbx_req_end(sbx_req *r) {
  if (r->ended) return NNO_ESTATE;
  if (r->pending) return NNO_EBUSY;
  sbx_req_finish(r, 0);
  return 0;
}

/* ---- calls ------------------------------------------------------------- */

static uint16_t pkg_flag(const plugin *p) {
  if (g_stack && p)
    for (size_t i = 0; i < g_stack->nplugins; i++)
      if (g_stack->plugins[i] == p) return (uint16_t)(i + 1);
  return 0;
}

size_t sbx_call_begin(sbx_req *r, plugin *p, uint16_t op, uint64_t *call_id) {
  *call_id = g_next_call++;
  size_t at = sbx_begin(&g_out, SBX_MSG_CALL, r ? r->id : 0);
  /* flags: the calling package's index + 1 (limits are per package). */
  uint16_t flags = pkg_flag(p);
  if (!g_out.oom)
    memcpy(g_out.p + at + offsetof(sbx_frame_head, flags), &flags,
           sizeof flags);
  sbx_u64(&g_out, *call_id);
  sbx_u16(&g_out, op);
  return at;
}

int sbx_call_async(size_t at, uint64_t call_id, sbx_req *r, sbx_result_fn cb,
                   void *ud) {
  sbx_call_entry *e = malloc(sizeof *e);
  if (!e || map_put(&g_calls, call_id, e)) {
    free(e);
    g_out.oom = 1;
    sbx_end(&g_out, at);
    return NNO_ENOMEM;
  }
  if (sbx_end(&g_out, at) != 0) {
    map_del(&g_calls, call_id);
    free(e);
    return NNO_ETOOBIG;
  }
  e->req = r;
  e->cb = cb;
  e->ud = ud;
  if (r) r->pending++;
  return 0;
}

static void kick(void);

int sbx_call_sync(size_t at, uint64_t call_id, char **frame, sbx_in *in,
                  char *msg, size_t msglen) {
  *frame = NULL;
  if (msg && msglen) msg[0] = '\0';
  if (sbx_end(&g_out, at) != 0) return NNO_ETOOBIG;
  flush_out();
  for (;;) {
    /* Look for RESULT call_id among the complete frames; the others stay
     * queued, in order, for the loop. */
    size_t off = g_in_off;
    for (;;) {
      long n = sbx_frame_ready(g_in + off, g_in_len - off, SBX_FRAME_MAX);
      if (n < 0) die(SBX_EXIT_PROTOCOL);
      if (n == 0) break;
      sbx_frame_head h;
      memcpy(&h, g_in + off, sizeof h);
      if (h.type == SBX_MSG_RESULT && h.id == call_id) {
        char *f = malloc((size_t)h.len + 1);
        if (!f) die(SBX_EXIT_MEMORY);
        memcpy(f, g_in + off + sizeof h, h.len);
        f[h.len] = '\0';
        memmove(g_in + off, g_in + off + n, g_in_len - off - (size_t)n);
        g_in_len -= (size_t)n;
        *frame = f;
        in->p = f;
        in->left = h.len;
        in->bad = 0;
        int err = sbx_get_i32(in);
        const char *m = sbx_get_text(in, NULL, 1024);
        if (in->bad) die(SBX_EXIT_PROTOCOL);
        if (msg && msglen) snprintf(msg, msglen, "%s", m);
        kick();
        return err;
      }
      off += (size_t)n;
    }
    struct pollfd pf = {SBX_FD_SOCK, POLLIN, 0};
    if (poll(&pf, 1, -1) < 0 && errno != EINTR) return NNO_EIO;
    if (read_some(0) < 0) _exit(0);
  }
}

/* ---- serving ----------------------------------------------------------- */

static void decode_common(sbx_req *r, sbx_in *in) {
  r->method.ptr = sbx_get_text(in, &r->method.len, 64);
  r->path.ptr = sbx_get_text(in, &r->path.len, SBX_FRAME_MAX);
  r->query.ptr = sbx_get_text(in, &r->query.len, SBX_FRAME_MAX);
  uint32_t nh = sbx_get_u32(in);
  /* Each header takes at least 10 bytes: a bound from what is left. */
  if (nh > in->left / 10) in->bad = 1;
  if (!in->bad && nh) {
    r->headers = calloc(nh, sizeof *r->headers);
    if (!r->headers) die(SBX_EXIT_MEMORY);
    r->nheaders = nh;
    for (uint32_t i = 0; i < nh; i++) {
      r->headers[i].name.ptr = sbx_get_text(in, &r->headers[i].name.len, 8192);
      r->headers[i].value.ptr =
          sbx_get_text(in, &r->headers[i].value.len, SBX_FRAME_MAX);
    }
  }
  uint32_t np = sbx_get_u32(in);
  if (np > in->left / 10) in->bad = 1;
  if (!in->bad && np) {
    r->params = calloc(np, sizeof *r->params);
    if (!r->params) die(SBX_EXIT_MEMORY);
    r->nparams = np;
    for (uint32_t i = 0; i < np; i++) {
      r->params[i].name.ptr = sbx_get_text(in, &r->params[i].name.len, 256);
      r->params[i].value.ptr =
          sbx_get_text(in, &r->params[i].value.len, SBX_FRAME_MAX);
    }
  }
  r->body.ptr = sbx_get_str(in, &r->body.len);
  r->rid.ptr = sbx_get_text(in, &r->rid.len, 128);
  r->traceparent.ptr = sbx_get_text(in, &r->traceparent.len, 128);
  r->platform.ptr = sbx_get_text(in, &r->platform.len, 128);
  r->host.ptr = sbx_get_text(in, &r->host.len, 1024);
  r->remote.ptr = sbx_get_text(in, &r->remote.len, 128);
  r->pattern.ptr = sbx_get_text(in, &r->pattern.len, 4096);
  r->scope.ptr = sbx_get_text(in, &r->scope.len, 4096);
  r->caller_kind = (int)sbx_get_u32(in);
  r->c_platform.ptr = sbx_get_text(in, &r->c_platform.len, 128);
  r->c_tenant.ptr = sbx_get_text(in, &r->c_tenant.len, 128);
  r->c_subject.ptr = sbx_get_text(in, &r->c_subject.len, 128);
  r->c_scopes.ptr = sbx_get_text(in, &r->c_scopes.len, 4096);
  r->c_session.ptr = sbx_get_text(in, &r->c_session.len, 128);
  r->tenant_path.ptr = sbx_get_text(in, &r->tenant_path.len, 4096);
  uint64_t cpu_ms = sbx_get_u64(in);
  r->max_body = sbx_get_u64(in);
  if (cpu_ms > UINT64_MAX / 1000000u) cpu_ms = UINT64_MAX / 1000000u;
  r->cpu_budget_ns = (cpu_ms ? cpu_ms : g_cpu_default_ms) * 1000000u;
  if (in->left != 0) in->bad = 1;
}

/* A REQ or EVENT: decode, run the handler, answer now unless async. */
static void on_request(const sbx_frame_head *h, char *frame) {
  sbx_in in = {frame + sizeof *h, h->len, 0};
  sbx_req *r = calloc(1, sizeof *r);
  if (!r) die(SBX_EXIT_MEMORY);
  r->id = h->id;
  r->event = h->type == SBX_MSG_EVENT;
  r->frame = frame;
  r->status = 200;
  uint32_t pkg = sbx_get_u32(&in);
  uint32_t route = 0;
  int32_t event = 0;
  if (r->event)
    event = sbx_get_i32(&in);
  else
    route = sbx_get_u32(&in);
  decode_common(r, &in);
  if (in.bad || h->id == 0 || map_get(&g_reqs, h->id) ||
      pkg >= g_stack->nplugins ||
      (!r->event && route >= g_stack->plugins[pkg]->nroutes))
    die(SBX_EXIT_PROTOCOL);
  plugin *p = g_stack->plugins[pkg];
  r->pkg = pkg;
  r->plugin = p;
  r->package.ptr = p->man.name;
  r->package.len = strlen(p->man.name);
  if (map_put(&g_reqs, r->id, r) || sbx_handle_add(r, SBX_H_REQ))
    die(SBX_EXIT_MEMORY);
  r->next = g_live;
  if (g_live) g_live->prev = r;
  g_live = r;

  int rc;
  sbx_enter_state st;
  sbx_enter(r, &st);
  if (r->event) {
    const nno_plugin_desc *d = p->desc;
    if (d->size >=
            offsetof(nno_plugin_desc, on_platform_event) + sizeof(void *) &&
        d->on_platform_event)
      rc = d->on_platform_event((nno_plugin *)p, event, (nno_req *)r);
    else
      rc = NNO_OK;
  } else {
    const route_target *t = &p->routes[route].target;
    rc = t->fn((nno_req *)r, t->ud);
  }
  /* The request stays referenced by the enter state until leave. */
  if (rc != NNO_ASYNC) sbx_req_finish(r, rc);
  sbx_leave(&st);
}

static void on_result(const sbx_frame_head *h, char *frame) {
  sbx_call_entry *e = map_get(&g_calls, h->id);
  if (!e) die(SBX_EXIT_PROTOCOL);
  map_del(&g_calls, h->id);
  sbx_in in = {frame + sizeof *h, h->len, 0};
  int err = sbx_get_i32(&in);
  const char *msg = sbx_get_text(&in, NULL, 1024);
  if (in.bad) die(SBX_EXIT_PROTOCOL);
  sbx_req *r = e->req;
  if (r) r->pending--;
  if (!r || !r->ended) {
    sbx_enter_state st;
    sbx_enter(r, &st);
    e->cb(r, err, msg, &in, e->ud);
    sbx_leave(&st);
    if (in.bad) die(SBX_EXIT_PROTOCOL);
  } else {
    e->cb(r, err, msg, NULL, e->ud);
    req_maybe_free(r);
  }
  free(e);
}

_Noreturn static void stop_now(void);

/* Run one frame; owns `frame`. */
static void on_frame(char *frame) {
  sbx_frame_head h;
  memcpy(&h, frame, sizeof h);
  switch (h.type) {
  case SBX_MSG_REQ:
  case SBX_MSG_EVENT:
    on_request(&h, frame); /* the request owns the frame now */
    return;
  case SBX_MSG_CANCEL: {
    sbx_req *r = map_get(&g_reqs, h.id);
    if (r) r->gone = 1;
    break;
  }
  case SBX_MSG_RESULT:
    on_result(&h, frame);
    break;
  case SBX_MSG_STOP:
    g_stopping = 1;
    break;
  default:
    die(SBX_EXIT_PROTOCOL);
  }
  free(frame);
}

static void run_frames(void) {
  size_t len;
  char *f;
  while (!g_stopping && (f = next_frame(&len))) on_frame(f);
  if (g_stopping) stop_now();
}

static void on_idle(uv_idle_t *h) {
  uv_idle_stop(h);
  run_frames();
}

/* Frames read during a synchronous call wait in the buffer: run them from
 * the loop soon. */
static void kick(void) {
  if (sbx_frame_ready(g_in + g_in_off, g_in_len - g_in_off, SBX_FRAME_MAX))
    uv_idle_start(&g_idle, on_idle);
}

/* Read (the first read waiting for input, `wait`) and run in turns, so a
 * burst never holds more than a read's worth beyond the frames being run;
 * the answers go out together before the loop next waits (on_prepare). */
static void read_and_run(int wait) {
  int rc = read_some(wait);
  for (;;) {
    run_frames();
    if (rc != 2) break;
    rc = read_some(0);
  }
  if (rc < 0) {
    /* The worker closed its end: it is gone or drained us. */
    flush_out();
    _exit(0);
  }
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)events;
  if (status < 0) _exit(0);
  read_and_run(0);
}

/* Whether the loop has nothing to do but wait for the channel: no timer,
 * no pool work, no idle callback, pending callback or closing handle, no
 * watcher to (re)register. The sandbox then waits for the channel itself
 * (read_some): no loop iteration between a request and the next. */
static int only_the_channel(void) {
  return !g_stopping && g_w.loop.active_reqs.count == 0 &&
         uv_backend_timeout(&g_w.loop) == -1;
}

/* Before the loop would wait: send what is buffered, then, while nothing
 * but the channel can wake it, wait for the channel and serve here. A
 * handler that starts a timer, pool work or an idle callback ends this at
 * once: the loop takes over again (its clock is brought up to date after
 * each wait, so that a timer a handler starts counts from the request). */
static void on_prepare(uv_prepare_t *h) {
  (void)h;
  if (g_out.len) flush_out();
  while (only_the_channel()) {
    read_and_run(1);
    if (g_out.len) flush_out();
  }
}

/* STOP: fini every package (after its timers), then exit 0. */
_Noreturn static void stop_now(void) {
  flush_out();
  if (g_stack)
    for (size_t i = 0; i < g_stack->nplugins; i++)
      sbx_api_stop_timers(g_stack->plugins[i]);
  loader_unload_all(&g_w);
  while (g_live) req_free(g_live);
  flush_out();
  _exit(0);
}

/* ---- start-up ---------------------------------------------------------- */

static void send_fail(const char *file, const char *message) {
  size_t at = sbx_begin(&g_out, SBX_MSG_FAIL, 0);
  sbx_cstr(&g_out, file);
  sbx_cstr(&g_out, message);
  sbx_end(&g_out, at);
  flush_out();
}

static int send_ready(void) {
  size_t at = sbx_begin(&g_out, SBX_MSG_READY, 0);
  sbx_u32(&g_out, (uint32_t)g_stack->nplugins);
  for (size_t i = 0; i < g_stack->nplugins; i++) {
    plugin *p = g_stack->plugins[i];
    sbx_cstr(&g_out, p->man.name);
    sbx_cstr(&g_out, p->man.version);
    sbx_u32(&g_out, (uint32_t)p->nroutes);
    for (size_t j = 0; j < p->nroutes; j++) {
      sbx_cstr(&g_out, p->routes[j].method);
      sbx_cstr(&g_out, p->routes[j].pattern);
    }
  }
  return sbx_end(&g_out, at);
}

static int parse_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-') return -1;
  *out = v;
  return 0;
}

/* From the first confinement on, every end is _exit: no atexit handler
 * runs in a confined process (a leak checker's clone would be refused). */
/* The work that starts libuv's pool before phase 2 forbids threads. */
static void pool_noop(uv_work_t *w) {
  (void)w;
}
static void pool_started(uv_work_t *w, int status) {
  (void)w, (void)status;
}

/* Set once, on the thread that runs sbx_child_main: the loop thread. */
static __thread int g_on_loop;

int sbx_on_loop(void) {
  return g_on_loop;
}

int sbx_child_main(int argc, char **argv) {
  g_on_loop = 1;
  /* argv: ROOT DIR ID VERSION PLATFORM DATA CPU_MS MEMORY_MB LOG_LEVEL
   * [BASE_DOMAIN] (host_base_domain; the default when absent) */
  if (argc != 9 && argc != 10) {
    fprintf(stderr, "nno sandbox: internal command, started by a worker\n");
    return 2;
  }
  const char *root = argv[0], *dir = argv[1], *id = argv[2], *version = argv[3],
             *platform = argv[4], *data = argv[5];
  uint64_t cpu_ms, memory_mb;
  int level = log_level_parse(argv[8]);
  if (parse_u64(argv[6], &cpu_ms) || parse_u64(argv[7], &memory_mb) ||
      level < 0 || strlen(platform) >= sizeof g_platform) {
    fprintf(stderr, "nno sandbox: bad arguments\n");
    return 2;
  }
  g_cpu_default_ms = cpu_ms > UINT64_MAX / 1000000u ? 0 : cpu_ms;
  log_init("sandbox", level);
  log_set_sink(runtime_line);
  char err[LOADER_ERR_MAX];

  /* 1-2: parent death, descriptors, no new privileges, rlimits. */
  if (sbx_confine_early(memory_mb, err, sizeof err) != 0) {
    send_fail("", err);
    _exit(SBX_EXIT_LOAD);
  }
  void *page = mmap(NULL, sizeof(sbx_shared), PROT_READ | PROT_WRITE,
                    MAP_SHARED, SBX_FD_SHARED, 0);
  g_sbx_shared = page == MAP_FAILED ? NULL : page;
  g_statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  g_memory_max = memory_mb << 20;
  snprintf(g_platform, sizeof g_platform, "%s", platform);
  sbx_api_set_platform(platform);

  config_defaults(&g_cfg, "");
  if (argc == 10 && argv[9][0] && strlen(argv[9]) < sizeof g_cfg.base_domain)
    snprintf(g_cfg.base_domain, sizeof g_cfg.base_domain, "%s", argv[9]);
  snprintf(g_cfg.data_dir, sizeof g_cfg.data_dir, "%s", data);
  g_cfg.builtin_stacks = 0;
  g_cfg.nstacks_dirs = 0;
  g_w.cfg = &g_cfg;
  g_worker = &g_w;
  if (uv_loop_init(&g_w.loop) != 0 || metrics_init() != 0 ||
      !(g_w.router = router_new()) || !(g_w.services = services_new()) ||
      !(g_w.plugins = calloc(1, sizeof *g_w.plugins)) ||
      !(g_w.fetcher = fetch_new(&g_w.loop, &g_cfg)) ||
      sbx_cpu_timer_init() != 0) {
    send_fail("", "cannot set up the sandbox");
    _exit(SBX_EXIT_LOAD);
  }
  metrics_bind(0);
  int fl = fcntl(SBX_FD_SOCK, F_GETFL);
  if (fl < 0 || fcntl(SBX_FD_SOCK, F_SETFL, fl | O_NONBLOCK) < 0) {
    send_fail("", "no socket on fd 3");
    _exit(SBX_EXIT_LOAD);
  }

  /* 3-5: drop root, Landlock, seccomp phase 1. */
  int landlocked = 0;
  if (sbx_confine_fs(dir, &landlocked, err, sizeof err) != 0 ||
      sbx_confine_phase1(err, sizeof err) != 0) {
    send_fail("", err);
    _exit(SBX_EXIT_LOAD);
  }
  /* Said on the status page, not logged: the worker warns once, not once
   * per sandbox, and counts it. */
  if (!landlocked && g_sbx_shared)
    atomic_store_explicit(&g_sbx_shared->unconfined, 1, memory_order_relaxed);

  /* 6: load with the loader's own code, behind the proxy table; the
   * package in hand marked on the status page for the trial's report. */
  loader_set_api(sbx_api_table());
  loader_set_progress(mark_loading);
  /* A crash while loading ends it by its signal, which the trial names as
   * an in-process check does, even in a build whose sanitizers would
   * catch it; their handlers are back for serving. */
  static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
  struct sigaction saved[4], dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int i = 0; i < 4; i++) sigaction(fatal[i], &dfl, &saved[i]);
  if (loader_load_stack_dir(&g_w, root, dir, id, version, err, sizeof err)) {
    send_fail(loader_last_file(), err);
    _exit(0);
  }
  g_stack = loader_stack_find(g_w.plugins, id, version);
  if (!g_stack) {
    send_fail(dir, "the stack did not load");
    _exit(0);
  }
  g_w.listening = 1;
  loader_host_ready(&g_w, id, version);

  loader_set_progress(NULL);
  for (int i = 0; i < 4; i++) sigaction(fatal[i], &saved[i], NULL);
  if (g_sbx_shared)
    atomic_store_explicit(&g_sbx_shared->load_pkg, 0, memory_order_relaxed);

  /* 7: no file system, and no new thread, from here on: the libuv pool
   * (work_queue) starts all its threads at its first work, queued now. */
  static uv_work_t pool_start;
  if (uv_queue_work(&g_w.loop, &pool_start, pool_noop, pool_started) != 0) {
    send_fail("", "cannot start the thread pool");
    _exit(SBX_EXIT_LOAD);
  }
  if (sbx_confine_phase2(err, sizeof err) != 0) {
    send_fail("", err);
    _exit(SBX_EXIT_LOAD);
  }

  /* 8: READY, then serve. */
  if (send_ready() != 0) {
    send_fail(dir, "the route list is too large");
    _exit(SBX_EXIT_LOAD);
  }
  flush_out();
  uv_poll_init(&g_w.loop, &g_poll, SBX_FD_SOCK);
  uv_poll_start(&g_poll, UV_READABLE, on_readable);
  uv_prepare_init(&g_w.loop, &g_prepare);
  uv_prepare_start(&g_prepare, on_prepare);
  uv_idle_init(&g_w.loop, &g_idle);
  /* Frames that came with READY's wait. */
  on_readable(&g_poll, 0, UV_READABLE);
  uv_run(&g_w.loop, UV_RUN_DEFAULT);
  stop_now();
}
