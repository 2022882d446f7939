/* Sandbox processes, the worker's side. See sandbox.h. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "api.h"
#include "config.h"
#include "fetch.h"
#include "gateway.h"
#include "loader.h"
#include "log.h"
#include "logring.h"
#include "metrics.h"
#include "pkgcheck.h"
#include "quarantine.h"
#include "req.h"
#include "res.h"
#include "sbx_host.h"
#include "sbx_proto.h"
#include "sbx_wire.h"
#include "watchdog.h"
#include "worker.h"

struct sbx_state S;

/* ---- metrics ------------------------------------------------------------- */

static void label_text(char *out, size_t n, const char *s) {
  size_t j = 0;
  for (; *s && j + 1 < n; s++)
    if (*s != '"' && *s != '\\' && (unsigned char)*s >= 32) out[j++] = *s;
  out[j] = '\0';
}

static void count_crash(const char *platform, const char *package,
                        const char *reason) {
  char k[256], pl[66], pk[66], rs[48];
  label_text(pl, sizeof pl, platform);
  label_text(pk, sizeof pk, package);
  label_text(rs, sizeof rs, reason);
  snprintf(k, sizeof k,
           "nno_sandbox_crashes_total{platform=\"%s\",package=\"%s\","
           "reason=\"%s\"}",
           pl, pk, rs);
  metrics_labelled_add(k, 0, 1);
}

static void count_budget(const char *platform, const char *package,
                         const char *budget) {
  char k[256], pl[66], pk[66];
  label_text(pl, sizeof pl, platform);
  label_text(pk, sizeof pk, package);
  snprintf(k, sizeof k,
           "nno_sandbox_budget_total{platform=\"%s\",package=\"%s\","
           "budget=\"%s\"}",
           pl, pk, budget);
  metrics_labelled_add(k, 0, 1);
}

/* ---- output ----------------------------------------------------------------
 */

void sbx__mark_dirty(sbx_proc *sp) {
  sp->dirty = 1;
  S.dirty = 1;
}

static void on_written(uv_write_t *wr, int status);

/* Write what `out` holds: one try_write, and the rest in the background. */
static void flush_one(sbx_proc *sp) {
  sp->dirty = 0;
  if (sp->writing || !sp->out.len || sp->state == SP_DEAD) return;
  uv_buf_t b = uv_buf_init(sp->out.p, (unsigned)sp->out.len);
  int n = uv_try_write((uv_stream_t *)&sp->sock, &b, 1);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) return; /* the socket is gone: the exit says why */
  sbx_out_consume(&sp->out, (size_t)n);
  if (!sp->out.len) return;
  /* Swap: `out` keeps collecting while `wb` is written. */
  sbx_out t = sp->wb;
  sp->wb = sp->out;
  sp->out = t;
  sp->out.len = 0;
  sp->wb_off = 0;
  b = uv_buf_init(sp->wb.p, (unsigned)sp->wb.len);
  sp->wreq.data = sp;
  if (uv_write(&sp->wreq, (uv_stream_t *)&sp->sock, &b, 1, on_written) == 0)
    sp->writing = 1;
}

static void on_written(uv_write_t *wr, int status) {
  sbx_proc *sp = wr->data;
  sp->writing = 0;
  sp->wb.len = 0;
  if (status == 0 && sp->out.len) flush_one(sp);
}

/* The longest poll granted (sandbox.poll_us), in ns; 0: none. */
static uint64_t poll_grant_ns(void) {
  return (uint64_t)S.w->cfg->sandbox_poll_us * 1000u;
}

/* The end of an idle stretch of `sp` (work sent, or the grant taken): the
 * time it could have polled in it is credited, a grant at most. */
static void idle_end(sbx_proc *sp, uint64_t now) {
  if (!sp->idle_at) return;
  uint64_t grant = poll_grant_ns();
  uint64_t gap = now > sp->idle_at ? now - sp->idle_at : 0;
  sp->poll_cap += gap < grant ? gap : grant;
  sp->idle_at = 0;
}

/* Grant `sp` (NULL: none) the poll before sleeping, and take it from the
 * one that held it. One sandbox of a worker polls at a time: the one that
 * was last sent work, the likeliest to get the next; two polling would
 * take the CPUs the worker and its clients need. */
static void grant_poll(sbx_proc *sp) {
  uint64_t ns = poll_grant_ns();
  if (!ns || S.crowded) sp = NULL;
  if (S.poller == sp) return;
  if (S.poller) idle_end(S.poller, uv_hrtime());
  if (S.poller && S.poller->page)
    atomic_store_explicit(&S.poller->page->poll_grant_ns, 0,
                          memory_order_relaxed);
  S.poller = sp && sp->page ? sp : NULL;
  if (S.poller) {
    atomic_store_explicit(&sp->page->poll_grant_ns, ns, memory_order_relaxed);
    if (!sp->inflight) sp->idle_at = uv_hrtime();
  }
}

/* Work was just written to the polling sandbox: wait for anything to
 * come to the loop (its answer, most likely) polling, not sleeping, within
 * a window adapted to how soon answers come (measured in on_read). The
 * loop then finds it without a wake-up; any event ends the poll, so a
 * busy worker never polls. The time counts as the loop's idle time. */
static void poll_answer(void) {
  uint64_t grant = poll_grant_ns();
  uint64_t t0 = uv_hrtime(), t = t0;
  S.fed_at = t0;
  uint64_t win = S.wwin < grant ? S.wwin : grant;
  if (!win) return;
  struct pollfd pf = {uv_backend_fd(&S.w->loop), POLLIN, 0};
  int ready;
  do {
    ready = poll(&pf, 1, 0) > 0;
    t = uv_hrtime();
  } while (!ready && t - t0 < win);
  watchdog_polled(t0, t);
}

/* Once per loop iteration: every sandbox's frames in one write. */
static void on_check(uv_check_t *h) {
  (void)h;
  if (!S.dirty) return;
  S.dirty = 0;
  sbx_proc *fed = NULL;
  for (sbx_proc *sp = S.head; sp; sp = sp->next)
    if (sp->dirty) {
      if (sp->fed && sp->state == SP_READY) fed = sp;
      /* Its idle stretch ends as the work is written. */
      if (sp->fed && sp->idle_at) idle_end(sp, uv_hrtime());
      sp->fed = 0;
      flush_one(sp);
    }
  if (fed || !S.w->cfg->sandbox_poll_us || S.crowded) grant_poll(fed);
  if (fed && S.poller == fed) poll_answer();
}

/* ---- slots -----------------------------------------------------------------
 */

sbx_slot *sbx__slot_of(sbx_proc *sp, uint64_t id) {
  uint32_t i = (uint32_t)id;
  if (i >= sp->nslots || !sp->slots[i].r || sp->slots[i].id != id) return NULL;
  return &sp->slots[i];
}

static sbx_slot *slot_new(sbx_proc *sp) {
  if (sp->free_head == NO_SLOT) {
    uint32_t n = sp->nslots ? sp->nslots * 2 : 16;
    if (n > 65536) return NULL;
    sbx_slot *v = realloc(sp->slots, n * sizeof *v);
    if (!v) return NULL;
    memset(v + sp->nslots, 0, (n - sp->nslots) * sizeof *v);
    for (uint32_t i = sp->nslots; i < n; i++)
      v[i].next_free = i + 1 < n ? i + 1 : NO_SLOT;
    sp->free_head = sp->nslots;
    sp->slots = v;
    sp->nslots = n;
  }
  uint32_t i = sp->free_head;
  sbx_slot *s = &sp->slots[i];
  sp->free_head = s->next_free;
  uint32_t seq = ++sp->seq ? sp->seq : ++sp->seq;
  s->id = (uint64_t)seq << 32 | i;
  if (!sp->inflight++) sp->busy_at = uv_hrtime();
  return s;
}

void sbx__slot_free(sbx_proc *sp, sbx_slot *s) {
  s->r->sbx = NULL;
  s->r = NULL;
  s->next_free = sp->free_head;
  sp->free_head = (uint32_t)(s - sp->slots);
  sp->inflight--;
  sp->last_used = uv_now(&S.w->loop);
  if (!sp->inflight) {
    uint64_t hr = uv_hrtime();
    if (sp->busy_at && hr > sp->busy_at) sp->busy_wall += hr - sp->busy_at;
    sp->busy_at = 0;
    if (sp == S.poller) sp->idle_at = hr;
  }
}

/* ---- ending requests ----------------------------------------------------- */

/* End `r` with what it holds now (a problem, or the applied response). A
 * request with resource operations pending is ended by the last one. */
static void end_req(nno_req *r) {
  if (r->ended) return;
  if (r->res_pending) {
    res_end_when_idle(r);
    return;
  }
  res_req_end(r);
}

static const char *pkg_name(const sbx_proc *sp, uint32_t wpkg) {
  return wpkg < sp->st->nplugins ? sp->st->plugins[wpkg]->man.name : "";
}

/* The line that names a request a sandbox failed. */
static void log_failed(const sbx_proc *sp, const char *msg, nno_req *r,
                       const char *package, const char *reason) {
  logline l;
  log_begin(&l, NNO_LOG_ERROR, msg);
  if (r) {
    log_strn(&l, "rid", r->rid, r->rid_len);
    if (r->hr) {
      log_strn(&l, "method", r->hr->method, r->hr->method_len);
      log_strn(&l, "path", r->hr->path,
               r->hr->path_len > 256 ? 256 : r->hr->path_len);
    }
  }
  log_str(&l, "platform", sp->platform);
  log_str(&l, "package", package);
  log_str(&l, "version", sp->st->version);
  log_str(&l, "stack", sp->st->id);
  log_str(&l, "reason", reason);
  if (sp->exit_sig) log_str(&l, "signal", reason);
  log_int(&l, "pid", sp->pid);
  log_end(&l);
  /* A crash or a budget kill: the platform's developer sees it too. */
  logring_meta lm = {sp->platform, strlen(sp->platform),
                     package,      package ? strlen(package) : 0,
                     r ? r->rid : NULL, r ? r->rid_len : 0,
                     NNO_LOG_ERROR};
  logring_append(&lm, l.buf, l.len);
}

/* ---- lifecycle -------------------------------------------------------------
 */

/* The sandbox outlives its stack (a trial's, an unloaded version's): drop
 * what refers to it; its exit is then cleaned up without a word, and its
 * frames are not read. */
static void forget_stack(sbx_proc *sp) {
  if (sp->route_map && sp->st)
    for (size_t i = 0; i < sp->st->nplugins; i++) free(sp->route_map[i]);
  free(sp->route_map);
  free(sp->pkg_map);
  sp->route_map = NULL;
  sp->pkg_map = NULL;
  sp->st = NULL;
}

static void on_handle_closed(uv_handle_t *h) {
  sbx_proc *sp = h->data;
  if (--sp->nhandles > 0) return;
  sbx_out_free(&sp->out);
  sbx_out_free(&sp->wb);
  free(sp->in);
  free(sp->slots);
  forget_stack(sp);
  free(sp);
}

static void close_handle(sbx_proc *sp, uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, on_handle_closed);
  (void)sp;
}

static void unlink_proc(sbx_proc *sp) {
  if (S.poller == sp) S.poller = NULL;
  if (sp->prev)
    sp->prev->next = sp->next;
  else if (S.head == sp)
    S.head = sp->next;
  if (sp->next) sp->next->prev = sp->prev;
  sp->prev = sp->next = NULL;
}

/* Ask it to leave: no new request; STOP once the last ends. */
static void stop_proc(sbx_proc *sp) {
  if (sp->state == SP_STOPPING || sp->state == SP_DEAD) return;
  if (sp->inflight) {
    sp->state = SP_DRAINING;
    return;
  }
  sp->state = SP_STOPPING;
  size_t at = sbx_begin(&sp->out, SBX_MSG_STOP, 0);
  sbx_end(&sp->out, at);
  sbx__mark_dirty(sp);
  /* A sandbox that does not leave in time is killed (on_tick). */
  sp->stop_at = uv_now(&S.w->loop);
}

static void kill_proc(sbx_proc *sp, const char *reason, int budget) {
  if (sp->state == SP_DEAD || sp->pid <= 0) return;
  if (!sp->kill_reason[0]) {
    snprintf(sp->kill_reason, sizeof sp->kill_reason, "%s", reason);
    sp->kill_budget = budget;
  }
  if (sp->state != SP_STOPPING) sp->state = SP_DRAINING;
  uv_process_kill(&sp->proc, SIGKILL);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig);

/* ---- the wall budget ---------------------------------------------------- */

void sbx__arm_wall(sbx_proc *sp);

static void on_wall(uv_timer_t *t) {
  sbx_proc *sp = t->data;
  uint64_t now = uv_now(&S.w->loop);
  if (sp->state == SP_SPAWNING) {
    /* No READY within sandbox.spawn_timeout_ms. */
    kill_proc(sp, "no READY within sandbox.spawn_timeout_ms", 0);
    return;
  }
  uint64_t busy =
      sp->page ? atomic_load_explicit(&sp->page->busy_req, memory_order_relaxed)
               : 0;
  for (uint32_t i = 0; i < sp->nslots; i++) {
    sbx_slot *s = &sp->slots[i];
    if (!s->r || s->deadline > now) continue;
    nno_req *r = s->r;
    char detail[128];
    snprintf(detail, sizeof detail,
             "the request exceeded its time budget (%u ms)", s->wall_ms);
    const char *pkg = pkg_name(sp, s->wpkg);
    count_budget(sp->platform, pkg, "wall");
    log_failed(sp, "sandbox budget exceeded", r, pkg, "wall budget");
    int inside = busy == s->id;
    if (!inside && sp->state != SP_SPAWNING) {
      size_t at = sbx_begin(&sp->out, SBX_MSG_CANCEL, s->id);
      sbx_end(&sp->out, at);
      sbx__mark_dirty(sp);
    }
    sbx__slot_free(sp, s);
    req_problem(r, 504, "Gateway Timeout", detail);
    end_req(r);
    /* Still inside that request's callback: the loop of the sandbox is
     * held; replace it. */
    if (inside) kill_proc(sp, "wall budget", 1);
  }
  sbx__arm_wall(sp);
}

void sbx__arm_wall(sbx_proc *sp) {
  if (sp->state == SP_DEAD || sp->state == SP_SPAWNING) return;
  uint64_t min = UINT64_MAX;
  for (uint32_t i = 0; i < sp->nslots; i++)
    if (sp->slots[i].r && sp->slots[i].deadline < min)
      min = sp->slots[i].deadline;
  if (min == UINT64_MAX) {
    uv_timer_stop(&sp->timer);
    return;
  }
  uint64_t now = uv_now(&S.w->loop);
  uv_timer_start(&sp->timer, on_wall, min > now ? min - now : 0, 0);
}

/* ---- encoding requests --------------------------------------------------- */

/* The fields from `str method` on, as REQ and EVENT carry them. */
static void put_fields(sbx_out *o, nno_req *r, uint64_t cpu_ms) {
  const nno_host_api *api = api_table();
  const http_request *hr = r->hr;
  sbx_str(o, hr->method, hr->method_len);
  sbx_str(o, hr->path, hr->path_len);
  sbx_str(o, hr->query, hr->query_len);
  sbx_u32(o, (uint32_t)hr->nheaders);
  for (size_t i = 0; i < hr->nheaders; i++) {
    sbx_str(o, hr->headers[i].name, hr->headers[i].name_len);
    sbx_str(o, hr->headers[i].value, hr->headers[i].value_len);
  }
  sbx_u32(o, r->event ? 0 : (uint32_t)r->match.nparams);
  for (size_t i = 0; !r->event && i < r->match.nparams; i++) {
    sbx_str(o, r->match.params[i].name, r->match.params[i].name_len);
    sbx_str(o, r->match.params[i].value, r->match.params[i].value_len);
  }
  sbx_str(o, hr->body ? hr->body : "", hr->body_len);
  sbx_str(o, r->rid, r->rid_len);
  sbx_str(o, gateway_traceparent(r), 55);
  sbx_str(o, r->scope, r->scope_len);
  sbx_str(o, r->host, r->host_len);
  nno_str peer = api->req_remote_addr(r);
  sbx_str(o, peer.ptr, peer.len);
  const route_target *t = r->event ? NULL : r->match.target;
  sbx_cstr(o, t ? r->match.pattern : "");
  sbx_cstr(o, t ? t->scope : "");
  nno_caller c;
  api->req_caller(r, &c);
  sbx_u32(o, (uint32_t)c.kind);
  sbx_str(o, c.platform.ptr, c.platform.len);
  sbx_str(o, c.tenant.ptr, c.tenant.len);
  sbx_str(o, c.subject.ptr, c.subject.len);
  sbx_str(o, c.scopes.ptr, c.scopes.len);
  sbx_str(o, c.session.ptr, c.session.len);
  nno_str tp = api->req_tenant_path(r);
  sbx_str(o, tp.ptr, tp.len);
  sbx_u64(o, cpu_ms);
  sbx_u64(o, (uint64_t)r->max_body);
}

/* Encode the slot's REQ or EVENT (once READY mapped its indexes). 0, or -1
 * when the frame cannot be built (over SBX_FRAME_MAX, out of memory). */
static int send_slot(sbx_proc *sp, sbx_slot *s) {
  uint32_t pkg = sp->pkg_map[s->wpkg];
  size_t at;
  if (s->event) {
    at = sbx_begin(&sp->out, SBX_MSG_EVENT, s->id);
    sbx_u32(&sp->out, pkg);
    sbx_i32(&sp->out, s->event);
  } else {
    at = sbx_begin(&sp->out, SBX_MSG_REQ, s->id);
    sbx_u32(&sp->out, pkg);
    sbx_u32(&sp->out, sp->route_map[s->wpkg][s->wroute]);
  }
  put_fields(&sp->out, s->r, s->cpu_ms);
  if (sbx_end(&sp->out, at) != 0) return -1;
  s->sent = 1;
  sp->fed = 1;
  sbx__mark_dirty(sp);
  return 0;
}

/* ---- finding or starting the sandbox for a key ----------------------------
 */

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b);
static void on_err_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void on_err_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b);

/* Spawn a sandbox for `st` on `platform`. NULL with err set. The socket
 * end of the worker is left in *fd_out for a trial (fd_out != NULL: not
 * read by the loop), else read by the loop. */
static sbx_proc *spawn(stack *st, const char *platform, config_budget b,
                       int *fd_out, char *err, size_t errlen) {
  worker *w = S.w;
  if (!S.ready) {
    snprintf(err, errlen, "sandboxes cannot be started in this worker");
    return NULL;
  }
  sbx_proc *sp = calloc(1, sizeof *sp);
  int sv[2] = {-1, -1}, mfd = -1;
  if (!sp) goto oom;
  sp->st = st;
  sp->budget = b;
  sp->statm_fd = -1;
  sp->stat_fd = -1;
  sp->free_head = NO_SLOT;
  snprintf(sp->platform, sizeof sp->platform, "%s", platform);
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
      (mfd = memfd_create("nno-sandbox", MFD_CLOEXEC)) < 0 ||
      ftruncate(mfd, S.page_size) != 0) {
    snprintf(err, errlen, "cannot set up a sandbox: %s", strerror(errno));
    goto fail;
  }
  void *pg = mmap(NULL, (size_t)S.page_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                  mfd, 0);
  if (pg == MAP_FAILED) {
    snprintf(err, errlen, "cannot map a sandbox's page: %s", strerror(errno));
    goto fail;
  }
  sp->page = pg;
  char cpu[24], mem[24], lvl[8];
  snprintf(cpu, sizeof cpu, "%lld", (long long)b.cpu_ms);
  snprintf(mem, sizeof mem, "%lld", (long long)b.memory_mb);
  static const char *const levels[] = {"debug", "info", "warn", "error"};
  snprintf(
      lvl, sizeof lvl, "%s",
      levels[w->cfg->log_level >= 0 && w->cfg->log_level < 4 ? w->cfg->log_level
                                                             : 1]);
  char *args[] = {
      S.exe,  "sandbox",   st->root,     st->dir,
      st->id, st->version, sp->platform, (char *)w->cfg->data_dir,
      cpu,    mem,         lvl,          (char *)w->cfg->base_domain,
      NULL};
  /* An empty environment but the sanitizers' options (a sanitizer build
   * only reads them): with them a sandbox dies of its signal as the
   * worker would, and reports its leaks as configured. */
  static const char *const keep[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS",
                                     "LSAN_OPTIONS"};
  char envbuf[3][1024];
  char *env[4];
  size_t ne = 0;
  for (size_t i = 0; i < 3; i++) {
    const char *v = getenv(keep[i]);
    if (!v || strlen(keep[i]) + strlen(v) + 2 > sizeof envbuf[0]) continue;
    snprintf(envbuf[ne], sizeof envbuf[ne], "%s=%s", keep[i], v);
    env[ne] = envbuf[ne];
    ne++;
  }
  env[ne] = NULL;
  uv_stdio_container_t io[5];
  io[0].flags = UV_IGNORE;
  io[1].flags = UV_IGNORE;
  io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  io[2].data.stream = (uv_stream_t *)&sp->err;
  io[3].flags = UV_INHERIT_FD;
  io[3].data.fd = sv[1];
  io[4].flags = UV_INHERIT_FD;
  io[4].data.fd = mfd;
  uv_process_options_t o;
  memset(&o, 0, sizeof o);
  o.file = S.exe;
  o.args = args;
  o.env = env;
  o.stdio = io;
  o.stdio_count = 5;
  o.exit_cb = on_exit_cb;
  uv_pipe_init(&w->loop, &sp->err, 0);
  sp->err.data = sp;
  sp->nhandles = 1;
  int rc = uv_spawn(&w->loop, &sp->proc, &o);
  sp->proc.data = sp;
  if (rc != 0) {
    /* uv_spawn failed: the process handle still needs closing. */
    snprintf(err, errlen, "cannot start a sandbox (%s): %s", S.exe,
             uv_strerror(rc));
    sp->nhandles++;
    sp->state = SP_DEAD;
    close(sv[0]);
    close(sv[1]);
    close(mfd);
    munmap(sp->page, (size_t)S.page_size);
    sp->page = NULL;
    uv_close((uv_handle_t *)&sp->proc, on_handle_closed);
    uv_close((uv_handle_t *)&sp->err, on_handle_closed);
    return NULL;
  }
  sp->nhandles++;
  sp->pid = sp->proc.pid;
  close(sv[1]);
  close(mfd);
  sv[1] = mfd = -1;
  {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)sp->pid);
    sp->statm_fd = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "/proc/%d/stat", (int)sp->pid);
    sp->stat_fd = open(path, O_RDONLY | O_CLOEXEC);
  }
  uv_timer_init(&w->loop, &sp->timer);
  sp->timer.data = sp;
  sp->nhandles++;
  uv_read_start((uv_stream_t *)&sp->err, on_err_alloc, on_err_read);
  uv_pipe_init(&w->loop, &sp->sock, 0);
  sp->sock.data = sp;
  sp->nhandles++;
  if (fd_out) {
    *fd_out = sv[0];
  } else {
    if (uv_pipe_open(&sp->sock, sv[0]) != 0) {
      close(sv[0]);
      kill_proc(sp, "cannot read its socket", 0);
    } else {
      uv_read_start((uv_stream_t *)&sp->sock, on_alloc, on_read);
    }
    uv_timer_start(&sp->timer, on_wall,
                   (uint64_t)w->cfg->sandbox_spawn_timeout_ms, 0);
  }
  sp->state = SP_SPAWNING;
  sp->last_used = uv_now(&w->loop);
  sp->next = S.head;
  if (S.head) S.head->prev = sp;
  S.head = sp;
  S.count++;
  snprintf(sp->stack_id, sizeof sp->stack_id, "%s", st->id);
  snprintf(sp->stack_version, sizeof sp->stack_version, "%s", st->version);
  metrics_labelled_add("nno_sandbox_spawns_total", 0, 1);
  metrics_labelled_add("nno_sandbox_processes", 1, 1);
  {
    char stv[200], pl[66];
    label_text(stv, 130, st->id);
    label_text(pl, sizeof pl, platform);
    snprintf(sp->rss_key, sizeof sp->rss_key,
             "nno_sandbox_rss_bytes{stack=\"%s@%s\",platform=\"%s\"}", stv,
             st->version, pl);
  }
  return sp;
oom:
  snprintf(err, errlen, "out of memory");
fail:
  if (sv[0] >= 0) close(sv[0]);
  if (sv[1] >= 0) close(sv[1]);
  if (mfd >= 0) close(mfd);
  if (sp && sp->page) munmap(sp->page, (size_t)S.page_size);
  free(sp);
  return NULL;
}

/* The least recently used sandbox with nothing in flight, or NULL. */
static sbx_proc *lru_idle(void) {
  sbx_proc *best = NULL;
  for (sbx_proc *sp = S.head; sp; sp = sp->next)
    if (sp->state == SP_READY && !sp->inflight &&
        (!best || sp->last_used <= best->last_used))
      best = sp;
  return best;
}

/* Live (not draining) sandboxes count against sandbox.max_per_worker. */
static size_t live_count(void) {
  size_t n = 0;
  for (sbx_proc *sp = S.head; sp; sp = sp->next)
    if (sp->state == SP_SPAWNING || sp->state == SP_READY) n++;
  return n;
}

/* The sandbox serving (st, platform), started if there is none. NULL with
 * *status and detail set (503 capacity, 502 spawn failure). */
static sbx_proc *proc_for(stack *st, const char *platform, const char *plan,
                          int event, int *status, char *detail, size_t dlen) {
  for (sbx_proc *sp = S.head; sp; sp = sp->next)
    if (sp->st == st && (sp->state == SP_READY || sp->state == SP_SPAWNING) &&
        !sp->trial && strcmp(sp->platform, platform) == 0) {
      if (!event && sp->for_event) {
        /* Its budgets are the defaults, not the request's plan's. */
        stop_proc(sp);
        continue;
      }
      if (sp != S.head) { /* most recent first */
        unlink_proc(sp);
        sp->next = S.head;
        S.head->prev = sp;
        S.head = sp;
      }
      return sp;
    }
  if ((int64_t)live_count() >= S.w->cfg->sandbox_max_per_worker) {
    sbx_proc *old = lru_idle();
    if (!old) {
      *status = 503;
      snprintf(detail, dlen,
               "sandbox capacity: %lld sandboxes of this worker are busy "
               "(sandbox.max_per_worker)",
               (long long)S.w->cfg->sandbox_max_per_worker);
      return NULL;
    }
    stop_proc(old);
  }
  char err[256];
  sbx_proc *sp = spawn(st, platform, config_plan_budget(S.w->cfg, plan), NULL,
                       err, sizeof err);
  if (sp) sp->for_event = event != 0;
  if (!sp) {
    *status = 502;
    snprintf(detail, dlen, "%s", err);
    log_error("stack %s@%s on platform \"%s\": %s", st->id, st->version,
              platform, err);
  }
  return sp;
}

/* Give `r` to the sandbox of its stack and platform. NNO_ASYNC, or an
 * answer already in `r` (0). */
static int submit(nno_req *r, plugin *pl, uint32_t wroute, int event) {
  stack *st = pl->sbx_stack;
  int status = 0;
  char detail[320];
  if (!st) {
    req_problem(r, 500, "Internal Server Error", "package not in a stack");
    return 0;
  }
  /* A quarantined package was refused before its handler (dispatch). */
  sbx_proc *sp =
      proc_for(st, r->scope, r->plan, event, &status, detail, sizeof detail);
  static const char ra[] = "Retry-After: 1\r\n";
  if (!sp) {
    req_problem(r, status,
                status == 503 ? "Service Unavailable" : "Bad Gateway", detail);
    /* Capacity frees as the busy sandboxes answer: soon. */
    if (status == 503)
      (void)buf_append(&r->headers, ra, sizeof ra - 1, SIZE_MAX);
    return 0;
  }
  sbx_slot *s = slot_new(sp);
  if (!s) {
    req_problem(r, 503, "Service Unavailable",
                "the package's sandbox has too many requests in flight");
    (void)buf_append(&r->headers, ra, sizeof ra - 1, SIZE_MAX);
    return 0;
  }
  config_budget b = config_plan_budget(S.w->cfg, r->plan);
  s->r = r;
  s->wpkg = pl->sbx_index;
  s->wroute = wroute;
  s->event = event;
  s->sent = 0;
  s->wall_ms = (uint32_t)b.wall_ms;
  s->cpu_ms = (uint64_t)b.cpu_ms;
  s->deadline = uv_now(&S.w->loop) + (uint64_t)b.wall_ms;
  r->sbx = (struct sbx_proc *)sp;
  r->sbx_id = s->id;
  sp->last_used = uv_now(&S.w->loop);
  if (sp->state == SP_READY && send_slot(sp, s) != 0) {
    sbx__slot_free(sp, s);
    req_problem(r, 413, "Content Too Large",
                "the request is too large to hand to the package's sandbox");
    return 0;
  }
  /* The earliest deadline is armed; a later one is found when it fires. */
  if (sp->state == SP_READY &&
      (!uv_is_active((uv_handle_t *)&sp->timer) ||
       uv_timer_get_due_in(&sp->timer) > (uint64_t)b.wall_ms))
    uv_timer_start(&sp->timer, on_wall, (uint64_t)b.wall_ms, 0);
  return NNO_ASYNC;
}

int sandbox_handler(nno_req *r, void *ud) {
  plugin *pl = r->plugin;
  const plugin_route *rt = ud;
  if (!pl || !rt || rt < pl->routes || rt >= pl->routes + pl->nroutes) {
    req_problem(r, 500, "Internal Server Error", "no such sandboxed route");
    return 0;
  }
  return submit(r, pl, (uint32_t)(rt - pl->routes), 0);
}

static int event_hook(nno_plugin *p, int event, nno_req *r) {
  return submit(r, (plugin *)p, 0, event);
}

static int no_init(nno_plugin *p, const nno_host_api *api) {
  (void)p, (void)api;
  return 0;
}

static const nno_plugin_desc proxy_desc = {
    .magic = NNO_PLUGIN_MAGIC,
    .size = sizeof(nno_plugin_desc),
    .abi_major = NNO_ABI_MAJOR,
    .abi_minor = NNO_ABI_MINOR,
    .name = "sandboxed",
    .version = "0.0.0",
    .kind = NNO_KIND_FEATURE,
    .on_plugin_init = no_init,
    .on_platform_event = event_hook,
};

const nno_plugin_desc *sandbox_desc(void) {
  return &proxy_desc;
}

/* ---- READY ----------------------------------------------------------------
 */

/* Compare READY with the stack's manifests and build the index maps. 0, or
 * -1 with err naming the difference. */
static int take_ready(sbx_proc *sp, const sbx_ready *m, char *err,
                      size_t errlen) {
  stack *st = sp->st;
  if (sp->page &&
      atomic_load_explicit(&sp->page->unconfined, memory_order_relaxed)) {
    /* Every sandbox of this worker is alike: one warning, each counted. */
    static int warned;
    metrics_labelled_add("nno_sandbox_unconfined_total", 0, 1);
    if (!warned)
      log_warn("sandbox unconfined: Landlock is not available, the file "
               "system of this worker's sandboxes is not restricted");
    warned = 1;
  }
  if (m->npackages != st->nplugins) {
    snprintf(err, errlen, "the sandbox loaded %u packages, the stack has %zu",
             m->npackages, st->nplugins);
    return -1;
  }
  sp->pkg_map = calloc(st->nplugins ? st->nplugins : 1, sizeof *sp->pkg_map);
  sp->route_map =
      calloc(st->nplugins ? st->nplugins : 1, sizeof *sp->route_map);
  if (!sp->pkg_map || !sp->route_map) goto oom;
  for (size_t i = 0; i < st->nplugins; i++) {
    const plugin *pl = st->plugins[i];
    uint32_t k = 0;
    while (k < m->npackages && strcmp(m->pkgs[k].name, pl->man.name) != 0) k++;
    if (k == m->npackages) {
      snprintf(err, errlen, "package \"%s\" did not load in the sandbox",
               pl->man.name);
      return -1;
    }
    const sbx_ready_pkg *rp = &m->pkgs[k];
    if (strcmp(rp->version, pl->man.version) != 0) {
      snprintf(err, errlen,
               "package \"%s\": the sandbox loaded version %s, "
               "the manifest says %s",
               pl->man.name, rp->version, pl->man.version);
      return -1;
    }
    if (rp->nroutes != pl->nroutes) {
      snprintf(err, errlen,
               "package \"%s\" bound %u routes in the sandbox, "
               "its manifest declares %zu",
               pl->man.name, rp->nroutes, pl->nroutes);
      return -1;
    }
    sp->pkg_map[i] = k;
    sp->route_map[i] = calloc(pl->nroutes ? pl->nroutes : 1, sizeof(uint32_t));
    if (!sp->route_map[i]) goto oom;
    for (size_t j = 0; j < pl->nroutes; j++) {
      uint32_t q = 0;
      while (q < rp->nroutes &&
             !(strcmp(rp->routes[q].method, pl->routes[j].method) == 0 &&
               strcmp(rp->routes[q].pattern, pl->routes[j].pattern) == 0))
        q++;
      if (q == rp->nroutes) {
        snprintf(err, errlen,
                 "package \"%s\" did not bind route %s %s in "
                 "the sandbox",
                 pl->man.name, pl->routes[j].method, pl->routes[j].pattern);
        return -1;
      }
      sp->route_map[i][j] = q;
    }
  }
  return 0;
oom:
  snprintf(err, errlen, "out of memory");
  return -1;
}

/* ---- frames from the sandbox ------------------------------------------ */

static void violation(sbx_proc *sp, const char *what) {
  logline l;
  log_begin(&l, NNO_LOG_ERROR, "sandbox protocol violation");
  log_str(&l, "stack", sp->st ? sp->st->id : "");
  log_str(&l, "version", sp->st ? sp->st->version : "");
  log_str(&l, "platform", sp->platform);
  log_str(&l, "what", what);
  log_int(&l, "pid", sp->pid);
  log_end(&l);
  kill_proc(sp, "protocol violation", 0);
}

/* A new second of the sandbox's log lines (20 a second, 512 bytes a
 * line): the lines the last one dropped are said, from relay_log or, when
 * no later line comes, from on_tick. */
static void logs_new_second(sbx_proc *sp) {
  uint64_t sec = uv_now(&S.w->loop) / 1000;
  if (sec == sp->err_sec) return;
  if (sp->err_dropped)
    log_warn("sandbox pid %d on \"%s\": %llu log lines dropped (over 20 "
             "a second)",
             (int)sp->pid, sp->platform, (unsigned long long)sp->err_dropped);
  sp->err_sec = sec;
  sp->err_count = 0;
  sp->err_dropped = 0;
}

static void relay_log(sbx_proc *sp, int level, const char *msg, size_t n,
                      const char *source, const char *package,
                      const nno_req *r) {
  logs_new_second(sp);
  if (++sp->err_count > 20) {
    sp->err_dropped++;
    return;
  }
  if (!log_level_enabled(level)) return;
  logline l;
  log_beginn(&l, level, msg, n > 512 ? 512 : n);
  log_str(&l, "source", source);
  if (r) log_strn(&l, "rid", r->rid, r->rid_len);
  if (package) log_str(&l, "package", package);
  /* A trial's sandbox outlives the judging of its stack: its copies. */
  log_str(&l, "stack", sp->stack_id);
  log_str(&l, "version", sp->stack_version);
  log_str(&l, "platform", sp->platform);
  log_int(&l, "pid", sp->pid);
  log_end(&l);
  logring_meta lm = {sp->platform, strlen(sp->platform),
                     package,      package ? strlen(package) : 0,
                     r ? r->rid : NULL, r ? r->rid_len : 0,
                     level};
  logring_append(&lm, l.buf, l.len);
}

/* A LOG frame: a package's line, or (SBX_LOG_RUNTIME) a JSON line of the
 * sandbox's runtime, logged again at its level with its message. */
static void relay_frame_log(sbx_proc *sp, const sbx_frame_head *h,
                            uint8_t lvl, const char *msg, size_t n,
                            const nno_req *r) {
  if (h->flags != SBX_LOG_RUNTIME) {
    plugin *pl = sbx__flags_pkg(sp, h->flags);
    relay_log(sp, lvl, msg, n, "package", pl ? pl->man.name : NULL, r);
    return;
  }
  static const char *const names[] = {"debug", "info", "warn", "error"};
  json_t *o = json_loadb(msg, n, 0, NULL);
  const char *m = json_string_value(json_object_get(o, "msg"));
  const char *lv = json_string_value(json_object_get(o, "level"));
  int level = NNO_LOG_WARN;
  for (int i = 0; lv && i < 4; i++)
    if (strcmp(lv, names[i]) == 0) level = i;
  if (m)
    relay_log(sp, level, m, strlen(m), "sandbox", NULL, NULL);
  else
    relay_log(sp, NNO_LOG_WARN, msg, n, "sandbox", NULL, NULL);
  json_decref(o);
}

/* Handle one frame. 0, or -1 when the sandbox was killed for it. */
static int frame(sbx_proc *sp, const sbx_frame_head *h, const char *p) {
  if (!sp->st) return 0; /* its stack is gone: nothing it says matters */
  switch (h->type) {
  case SBX_MSG_READY: {
    if (sp->state != SP_SPAWNING) break;
    sbx_ready *m = malloc(sizeof *m);
    char err[512];
    if (!m || sbx_decode_ready(p, h->len, m) != 0) {
      free(m);
      violation(sp, "a malformed READY");
      return -1;
    }
    int rc = take_ready(sp, m, err, sizeof err);
    free(m);
    if (rc) {
      violation(sp, err);
      return -1;
    }
    sp->state = SP_READY;
    uv_timer_stop(&sp->timer);
    for (uint32_t i = 0; i < sp->nslots; i++) {
      sbx_slot *s = &sp->slots[i];
      if (!s->r || s->sent) continue;
      s->deadline = uv_now(&S.w->loop) + s->wall_ms;
      if (send_slot(sp, s) != 0) {
        nno_req *r = s->r;
        sbx__slot_free(sp, s);
        req_problem(r, 413, "Content Too Large",
                    "the request is too large to hand to the sandbox");
        end_req(r);
      }
    }
    sbx__arm_wall(sp);
    return 0;
  }
  case SBX_MSG_FAIL: {
    const char *file, *msg;
    if (sbx_decode_fail(p, h->len, &file, &msg) != 0) {
      violation(sp, "a malformed FAIL");
      return -1;
    }
    log_error("sandbox of %s@%s on \"%s\" could not load: %s%s%s", sp->st->id,
              sp->st->version, sp->platform, file, file[0] ? ": " : "", msg);
    kill_proc(sp, "could not load", 0);
    return -1;
  }
  case SBX_MSG_RES: {
    sbx_res m;
    if (sp->state == SP_SPAWNING || sbx_decode_res(p, h->len, &m) != 0) {
      violation(sp, "a malformed RES");
      return -1;
    }
    sbx_slot *s = sbx__slot_of(sp, h->id);
    if (!s) return 0; /* answered already (time budget, cancel) */
    nno_req *r = s->r;
    int ev = s->event;
    sbx__slot_free(sp, s);
    char why[128];
    if (sbx_res_apply(r, &m, ev, why, sizeof why) != 0)
      log_failed(sp, "sandbox response refused", r,
                 pkg_name(sp, r->plugin ? r->plugin->sbx_index : 0), why);
    end_req(r);
    if ((sp->state == SP_DRAINING || sp->for_event) && !sp->inflight)
      stop_proc(sp);
    return 0;
  }
  case SBX_MSG_CALL: {
    /* Decoded and served before the next frame: one for the worker. */
    static sbx_callmsg m;
    if (sbx_decode_call(p, h->len, &m) != 0) {
      violation(sp, "a malformed CALL");
      return -1;
    }
    sbx__serve_call(sp, h->id, h->flags, &m);
    return 0;
  }
  case SBX_MSG_LOG: {
    uint8_t lvl;
    const char *msg;
    size_t n;
    if (sbx_decode_log(p, h->len, &lvl, &msg, &n) != 0) {
      violation(sp, "a malformed LOG");
      return -1;
    }
    sbx_slot *s = h->id ? sbx__slot_of(sp, h->id) : NULL;
    relay_frame_log(sp, h, lvl, msg, n, s ? s->r : NULL);
    return 0;
  }
  case SBX_MSG_RECYCLE: {
    const char *why;
    if (sbx_decode_recycle(p, h->len, &why) != 0) {
      violation(sp, "a malformed RECYCLE");
      return -1;
    }
    sbx_slot *s = h->id ? sbx__slot_of(sp, h->id) : NULL;
    const char *pkg = pkg_name(sp, s ? s->wpkg : 0);
    log_failed(sp, "sandbox budget exceeded", s ? s->r : NULL, pkg, why);
    count_budget(sp->platform, pkg, "memory");
    stop_proc(sp);
    return 0;
  }
  default:
    break;
  }
  violation(sp, "an unexpected frame");
  return -1;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  sbx_proc *sp = h->data;
  if (sp->in_cap - sp->in_len < 16384) {
    size_t cap = sp->in_cap ? sp->in_cap * 2 : 65536;
    char *v = realloc(sp->in, cap);
    if (!v) {
      *b = uv_buf_init(NULL, 0);
      return;
    }
    sp->in = v;
    sp->in_cap = cap;
  }
  *b = uv_buf_init(sp->in + sp->in_len, (unsigned)(sp->in_cap - sp->in_len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  (void)b;
  watchdog_woke();
  sbx_proc *sp = st->data;
  if (n < 0) {
    uv_read_stop(st);
    if (sp->state != SP_STOPPING) kill_proc(sp, "", 0);
    return;
  }
  sp->in_len += (size_t)n;
  if (sp == S.poller && S.fed_at) {
    /* How soon its answer came after work was sent (poll_answer). */
    S.wwin = sbx_poll_window(S.wwin, poll_grant_ns(), uv_hrtime() - S.fed_at);
    S.fed_at = 0;
  }
  size_t off = 0;
  while (sp->state != SP_DEAD) {
    long fl = sbx_frame_ready(sp->in + off, sp->in_len - off, SBX_FRAME_MAX);
    if (fl == 0) break;
    if (fl < 0) {
      violation(sp, "an oversize frame");
      uv_read_stop(st);
      return;
    }
    sbx_frame_head h;
    memcpy(&h, sp->in + off, sizeof h);
    int rc = frame(sp, &h, sp->in + off + sizeof h);
    off += (size_t)fl;
    if (rc) {
      uv_read_stop(st);
      return;
    }
  }
  memmove(sp->in, sp->in + off, sp->in_len - off);
  sp->in_len -= off;
  /* A large frame's buffer is given back once it is consumed. */
  if (sp->in_cap > (1u << 20) && sp->in_len < 65536) {
    char *v = realloc(sp->in, 65536);
    if (v) {
      sp->in = v;
      sp->in_cap = 65536;
    }
  }
}

static void on_err_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  static char chunk[4096];
  (void)h;
  *b = uv_buf_init(chunk, sizeof chunk);
}

/* One line of the sandbox's stderr: text, whatever it looks like (a
 * package writes there too), as a warning. The runtime's own lines come
 * as LOG frames (relay_runtime). */
static void relay_stderr(sbx_proc *sp) {
  relay_log(sp, NNO_LOG_WARN, sp->errline, sp->errlen, "stderr", NULL, NULL);
}

/* The sandbox's stderr: lines (cut at 512 bytes) as warnings. */
static void on_err_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  sbx_proc *sp = st->data;
  if (n < 0) {
    uv_read_stop(st);
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    char c = b->base[i];
    if (c == '\n' || sp->errlen == 512) {
      if (sp->errlen) relay_stderr(sp);
      sp->errlen = 0;
      if (c == '\n') continue;
    }
    sp->errline[sp->errlen++] = (unsigned char)c < 32 && c != '\t' ? ' ' : c;
  }
}

/* ---- exit -------------------------------------------------------------------
 */

static const char *sig_name(int sig) {
  switch (sig) {
  case SIGSEGV:
    return "SIGSEGV";
  case SIGBUS:
    return "SIGBUS";
  case SIGILL:
    return "SIGILL";
  case SIGFPE:
    return "SIGFPE";
  case SIGABRT:
    return "SIGABRT";
  case SIGKILL:
    return "SIGKILL";
  case SIGSYS:
    return "SIGSYS";
  case SIGXCPU:
    return "SIGXCPU";
  case SIGTERM:
    return "SIGTERM";
  default:
    return "signal";
  }
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  sbx_proc *sp = p->data;
  uint32_t why = sp->page ? atomic_load_explicit(&sp->page->exit_reason,
                                                 memory_order_relaxed)
                          : 0;
  uint64_t busy =
      sp->page ? atomic_load_explicit(&sp->page->busy_req, memory_order_relaxed)
               : 0;
  int was = sp->state;
  sp->state = SP_DEAD;
  if (!sp->st || S.stopping) {
    /* A trial's sandbox (its stack was judged already), or the worker is
     * leaving (its requests are over): nothing to answer or report. */
    unlink_proc(sp);
    S.count--;
    metrics_labelled_add("nno_sandbox_processes", 1, -1);
    if (sp->statm_fd >= 0) close(sp->statm_fd);
  if (sp->stat_fd >= 0) close(sp->stat_fd);
    if (sp->stat_fd >= 0) close(sp->stat_fd);
    if (sp->rss) metrics_labelled_add(sp->rss_key, 1, -(int64_t)sp->rss);
    if (sp->page) munmap(sp->page, (size_t)S.page_size);
    sp->page = NULL;
    close_handle(sp, (uv_handle_t *)&sp->proc);
    close_handle(sp, (uv_handle_t *)&sp->sock);
    close_handle(sp, (uv_handle_t *)&sp->err);
    close_handle(sp, (uv_handle_t *)&sp->timer);
    return;
  }
  /* What ended it, and how its requests are answered. */
  char reason[160];
  int st_code = 502, budget = 0, crash = 1;
  const char *title = "Bad Gateway", *budget_name = NULL;
  if (sp->kill_reason[0]) {
    snprintf(reason, sizeof reason, "%s", sp->kill_reason);
    budget = sp->kill_budget;
    crash = !budget && strcmp(sp->kill_reason, "protocol violation") == 0;
    if (budget) budget_name = budget == 2 ? "cpu" : "wall";
  } else if (why == SBX_EXIT_CPU || status == SBX_EXIT_CPU) {
    snprintf(reason, sizeof reason, "cpu budget");
    budget = 1, crash = 0, budget_name = "cpu";
  } else if (why == SBX_EXIT_MEMORY || status == SBX_EXIT_MEMORY) {
    snprintf(reason, sizeof reason, "memory budget");
    budget = 1, crash = 0, budget_name = "memory";
  } else if (why == SBX_EXIT_SYSCALL || status == SBX_EXIT_SYSCALL) {
    snprintf(reason, sizeof reason, "forbidden system call %llu",
             (unsigned long long)(sp->page ? atomic_load(&sp->page->syscall_nr)
                                           : 0));
  } else if (sig) {
    snprintf(reason, sizeof reason, "%s", sig_name(sig));
    sp->exit_sig = sig;
  } else if (was == SP_STOPPING && status == 0) {
    reason[0] = '\0';
    crash = 0;
  } else {
    snprintf(reason, sizeof reason, "exited with status %lld",
             (long long)status);
  }
  if (budget) {
    st_code = 503;
    title = "Service Unavailable";
  }
  /* The package a crash belongs to: the request the status page names,
   * else the first package. */
  uint32_t culprit = 0;
  sbx_slot *bs = busy ? sbx__slot_of(sp, busy) : NULL;
  if (bs) {
    culprit = bs->wpkg;
  } else if (sp->page && atomic_load(&sp->page->busy_since_ns)) {
    /* In a callback of no request (a timer): the page names its package. */
    plugin *pl =
        sbx__flags_pkg(sp, (uint16_t)(atomic_load(&sp->page->busy_pkg) + 1));
    if (pl) culprit = pl->sbx_index;
  }
  if (crash || budget) {
    const char *pkg = pkg_name(sp, culprit);
    /* A budget the worker decided on (wall, cpu outside requests) was
     * counted with its log line; only the sandbox's own verdicts are
     * counted here. */
    if (budget && budget_name && !sp->kill_reason[0])
      count_budget(sp->platform, pkg, budget_name);
    if (crash) {
      count_crash(sp->platform, pkg, reason);
      quarantine_note_crash(S.w->cfg, sp->platform, pkg,
                            culprit < sp->st->nplugins
                                ? sp->st->plugins[culprit]->man.version
                                : sp->st->version,
                            sp->st->id, reason, bs ? bs->r->rid : "");
    }
    /* With no request left to name it; a wall budget was logged with its
     * request when it ran out (on_wall), not again here. */
    if (!sp->inflight && !sp->kill_logged &&
        !(budget_name && !strcmp(budget_name, "wall")))
      log_failed(sp, crash ? "sandbox crashed" : "sandbox budget exceeded",
                 NULL, pkg, reason);
  }
  const char *msg = crash    ? "sandbox crashed"
                    : budget ? "sandbox budget exceeded"
                             : "sandbox failed";
  for (uint32_t i = 0; i < sp->nslots; i++) {
    sbx_slot *s = &sp->slots[i];
    if (!s->r) continue;
    nno_req *r = s->r;
    const char *pkg = pkg_name(sp, s->wpkg);
    char detail[256];
    if (budget && s == bs && budget_name && strcmp(budget_name, "wall"))
      snprintf(detail, sizeof detail, "the request exceeded its %s budget",
               budget_name);
    else
      snprintf(detail, sizeof detail, "the package's sandbox %s (%s)",
               crash ? "crashed" : "was replaced", reason[0] ? reason : "exit");
    log_failed(sp, msg, r, pkg, reason[0] ? reason : "exit");
    sbx__slot_free(sp, s);
    req_problem(r, st_code, title, detail);
    end_req(r);
  }
  sbx__calls_orphan(sp);
  unlink_proc(sp);
  S.count--;
  metrics_labelled_add("nno_sandbox_processes", 1, -1);
  if (sp->rss) metrics_labelled_add(sp->rss_key, 1, -(int64_t)sp->rss);
  if (sp->statm_fd >= 0) close(sp->statm_fd);
  if (sp->stat_fd >= 0) close(sp->stat_fd);
  if (sp->page) munmap(sp->page, (size_t)S.page_size);
  sp->page = NULL;
  close_handle(sp, (uv_handle_t *)&sp->proc);
  close_handle(sp, (uv_handle_t *)&sp->sock);
  close_handle(sp, (uv_handle_t *)&sp->err);
  close_handle(sp, (uv_handle_t *)&sp->timer);
}

/* ---- the tick: memory, idle reaping ------------------------------------- */

/* CPU outside requests: a sandbox whose CPU over the last second or more
 * exceeds its callbacks' time (the status page) by more than
 * sandbox.cpu_outside_pct of a core (default 90) burns it
 * in threads of its own or in pool work no request's budget sees. It is
 * killed as a budget ("cpu outside requests"). Not judged while a
 * callback runs (its time is not on the page yet). */
static void cpu_sample(sbx_proc *sp, uint64_t now) {
  if (sp->stat_fd < 0 || !sp->page || sp->state != SP_READY) return;
  char b[512];
  ssize_t n = pread(sp->stat_fd, b, sizeof b - 1, 0);
  if (n <= 0) return;
  b[n] = '\0';
  const char *p = strrchr(b, ')');
  unsigned long long ut, st;
  if (!p || sscanf(p + 1,
                   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                   &ut, &st) != 2)
    return;
  uint64_t cpu = (ut + st) * (1000000000ull / (uint64_t)S.clk_tck);
  /* What the sandbox says it spent inside (callbacks for requests and
   * platform events) and polling for the next request is the host's to
   * credit, but its page is the sandbox's to write: never credited beyond
   * what the worker's own clock allows, the time it had work in flight
   * and a grant at most per stretch it was idle holding the grant. While
   * a callback runs (its time not on the page yet), or when the page
   * claims more, the worker's bound is what is credited. */
  uint64_t cb = atomic_load_explicit(&sp->page->cb_total_ns,
                                     memory_order_relaxed);
  uint64_t polled = atomic_load_explicit(&sp->page->poll_total_ns,
                                         memory_order_relaxed);
  int in_cb = atomic_load_explicit(&sp->page->busy_since_ns,
                                   memory_order_relaxed) != 0;
  uint64_t hr = uv_hrtime();
  if (sp->idle_at) {
    idle_end(sp, hr);
    sp->idle_at = hr;
  }
  uint64_t bound = sp->busy_wall + sp->poll_cap;
  if (sp->busy_at && hr > sp->busy_at) bound += hr - sp->busy_at;
  if (sp->cpu_at && now - sp->cpu_at >= 1000) {
    uint64_t wall = (now - sp->cpu_at) * 1000000ull;
    uint64_t used = cpu - sp->cpu_ns;
    uint64_t said = (cb - sp->cb_ns) + (polled - sp->poll_at);
    uint64_t covered = in_cb || said > bound ? bound : said;
    uint64_t pct = (uint64_t)S.w->cfg->sandbox_cpu_outside_pct;
    if (used > covered && (used - covered) * 100 > wall * pct) {
      log_failed(sp, "sandbox budget exceeded", NULL, pkg_name(sp, 0),
                 "cpu outside requests");
      sp->kill_logged = 1;
      count_budget(sp->platform, pkg_name(sp, 0), "cpu");
      kill_proc(sp, "cpu outside requests", 2);
      return;
    }
  }
  if (!sp->cpu_at || now - sp->cpu_at >= 1000) {
    sp->cpu_ns = cpu;
    sp->cb_ns = cb;
    sp->poll_at = polled;
    sp->poll_cap = 0;
    sp->busy_wall = 0;
    if (sp->busy_at) sp->busy_at = hr;
    sp->cpu_at = now ? now : 1;
  }
}

/* Whether the machine's CPUs are crowded: the share of the time some task
 * waited for a CPU (the kernel's pressure stall information, system-wide),
 * measured over at least half a second. Polling saves wake-ups by keeping
 * a CPU busy; where tasks already wait for CPUs it takes their time, so no
 * poll is granted while the share is over half, until it falls under a
 * third. Without the file (a kernel without PSI), never crowded. */
#define CROWDED_ON_PCT 50
#define CROWDED_OFF_PCT 33
static void pressure_check(void) {
  if (S.psi_fd < 0 || !S.w->cfg->sandbox_poll_us) return;
  uint64_t now = uv_hrtime();
  if (S.psi_at && now - S.psi_at < 500000000ull) return;
  char b[256];
  ssize_t n = pread(S.psi_fd, b, sizeof b - 1, 0);
  if (n <= 0) return;
  b[n] = '\0';
  const char *t = strstr(b, "total=");
  if (strncmp(b, "some ", 5) != 0 || !t) return;
  uint64_t total = strtoull(t + 6, NULL, 10); /* µs */
  if (S.psi_at && total >= S.psi_total) {
    uint64_t pct = (total - S.psi_total) * 1000u * 100u / (now - S.psi_at);
    if (!S.crowded && pct > CROWDED_ON_PCT) {
      S.crowded = 1;
      grant_poll(NULL);
    } else if (S.crowded && pct < CROWDED_OFF_PCT) {
      S.crowded = 0;
    }
  }
  S.psi_at = now;
  S.psi_total = total;
}

static void on_tick(uv_timer_t *t) {
  (void)t;
  pressure_check();
  uint64_t now = uv_now(&S.w->loop);
  const nno_config *cfg = S.w->cfg;
  sbx_proc *next;
  for (sbx_proc *sp = S.head; sp; sp = next) {
    next = sp->next;
    logs_new_second(sp);
    if (sp->state == SP_DEAD) continue;
    cpu_sample(sp, now);
    if (sp->statm_fd >= 0) {
      char b[128];
      ssize_t n = pread(sp->statm_fd, b, sizeof b - 1, 0);
      unsigned long long size, res;
      if (n > 0) {
        b[n] = '\0';
        if (sscanf(b, "%llu %llu", &size, &res) == 2) {
          uint64_t rss = res * (uint64_t)S.page_size;
          metrics_labelled_add(sp->rss_key, 1, (int64_t)rss - (int64_t)sp->rss);
          sp->rss = rss;
          uint64_t cap = (uint64_t)sp->budget.memory_mb << 20;
          if (cap && rss > cap && sp->state == SP_READY) {
            log_warn(
                "sandbox of %s@%s on \"%s\" (pid %d) is replaced: "
                "memory budget exceeded (%llu MiB of %lld)",
                sp->st->id, sp->st->version, sp->platform, (int)sp->pid,
                (unsigned long long)(rss >> 20),
                (long long)sp->budget.memory_mb);
            count_budget(sp->platform, pkg_name(sp, 0), "memory");
            stop_proc(sp);
          }
        }
      }
    }
    if (sp->state == SP_READY && !sp->inflight &&
        now - sp->last_used >= (uint64_t)cfg->sandbox_idle_ms)
      stop_proc(sp);
    if (sp->state == SP_STOPPING && !sp->trial && now - sp->stop_at >= 2000)
      kill_proc(sp, "did not stop", 0);
  }
}

/* ---- set-up and shutdown ----------------------------------------------- */

int sandbox_init(worker *w) {
  memset(&S, 0, sizeof S);
  S.w = w;
  S.page_size = sysconf(_SC_PAGESIZE);
  S.clk_tck = sysconf(_SC_CLK_TCK);
  if (S.clk_tck <= 0) S.clk_tck = 100;
  if (S.page_size <= 0) S.page_size = 4096;
  ssize_t n = readlink("/proc/self/exe", S.exe, sizeof S.exe - 1);
  if (n <= 0) {
    log_error(
        "cannot resolve /proc/self/exe: %s; sandboxed stacks are "
        "refused",
        strerror(errno));
    return -1;
  }
  S.exe[n] = '\0';
  S.psi_fd = open("/proc/pressure/cpu", O_RDONLY | O_CLOEXEC);
  uv_check_init(&w->loop, &S.check);
  uv_check_start(&S.check, on_check);
  uv_unref((uv_handle_t *)&S.check);
  uv_timer_init(&w->loop, &S.tick);
  int64_t every = w->cfg->sandbox_idle_ms / 4;
  if (every > 1000) every = 1000;
  if (every < 50) every = 50;
  uv_timer_start(&S.tick, on_tick, (uint64_t)every, (uint64_t)every);
  uv_unref((uv_handle_t *)&S.tick);
  S.ready = 1;
  return 0;
}

void sandbox_shutdown(worker *w) {
  if (!S.ready) return;
  S.stopping = 1;
  for (sbx_proc *sp = S.head; sp; sp = sp->next)
    if (sp->pid > 0) uv_process_kill(&sp->proc, SIGKILL);
  /* Their exits close their handles. */
  while (S.head) uv_run(&w->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&S.check, NULL);
  uv_close((uv_handle_t *)&S.tick, NULL);
  if (S.psi_fd >= 0) close(S.psi_fd);
  S.psi_fd = -1;
  S.ready = 0;
}

void sandbox_stack_gone(stack *st) {
  for (sbx_proc *sp = S.head; sp; sp = sp->next)
    if (sp->st == st) {
      if (sp->state == SP_READY)
        stop_proc(sp);
      else
        kill_proc(sp, "stack unloaded", 0);
      forget_stack(sp); /* freed after this returns */
    }
}

size_t sandbox_count(void) {
  return S.count;
}

/* ---- the trial load ----------------------------------------------------- */

/* Read one frame from `fd` (blocking, until `deadline` ms of
 * CLOCK_MONOTONIC). Returns the frame's bytes in *buf (malloc'ed), 0 at
 * the deadline or end, -1 for a malformed or oversize frame. */
/* Bytes read from a trial's socket: one read may bring several frames
 * (a LOG and the FAIL after it), so what follows a frame stays for the
 * next call. */
typedef struct trial_in {
  char *b;
  size_t len, cap;
  size_t used; /* the frame handed out last, dropped on the next call */
} trial_in;

/* The next whole frame of `fd` by `deadline` (CLOCK_MONOTONIC ms): its
 * length, with *out pointing at it in `in` (valid until the next call);
 * 0 at the deadline or the socket's end; -1 for a malformed head or out
 * of memory. */
static long read_frame(int fd, uint64_t deadline, trial_in *in, char **out) {
  if (in->used) {
    memmove(in->b, in->b + in->used, in->len - in->used);
    in->len -= in->used;
    in->used = 0;
  }
  for (;;) {
    long fl = sbx_frame_ready(in->b ? in->b : "", in->len, 1u << 20);
    if (fl != 0) {
      if (fl > 0) {
        *out = in->b;
        in->used = (size_t)fl;
      }
      return fl;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    if (now >= deadline) break;
    struct pollfd pf = {fd, POLLIN, 0};
    int pr = poll(&pf, 1, (int)(deadline - now));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) break;
    if (in->len == in->cap) {
      size_t cap = in->cap ? in->cap * 2 : 4096;
      char *v = cap <= (4u << 20) ? realloc(in->b, cap) : NULL;
      if (!v) return -1;
      in->b = v;
      in->cap = cap;
    }
    ssize_t n = read(fd, in->b + in->len, in->cap - in->len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    in->len += (size_t)n;
  }
  return 0;
}

/* Why a trial's sandbox ended (or hung) before READY, in the words of the
 * in-process trial (pkgcheck_fork) when its status page names the package
 * it was loading: crashed (SIGSEGV), exited, did not finish. Its exit is
 * looked at, not reaped (the loop reaps it). */
static void trial_failure(sbx_proc *sp, int timed_out, long long timeout_ms,
                          char *file, size_t filecap, char *err,
                          size_t errlen) {
  uint32_t k = atomic_load_explicit(&sp->page->load_pkg, memory_order_relaxed);
  const char *phase =
      atomic_load_explicit(&sp->page->load_phase, memory_order_relaxed)
          ? "on_host_ready"
          : "init";
  const char *who = k && k - 1 < sp->st->nplugins
                        ? sp->st->plugins[k - 1]->man.name
                        : NULL;
  if (who)
    snprintf(file, filecap, "%s/package.json", sp->st->plugins[k - 1]->dir);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  /* The socket's end comes just before the exit: wait a little for it. */
  for (int i = 0; !timed_out && i < 500; i++) {
    if (waitid(P_PID, (id_t)sp->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == sp->pid)
      break;
    si.si_pid = 0;
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  char sb[32];
  if (!who && timed_out)
    snprintf(err, errlen,
             "sandbox: no READY within %lld ms (sandbox.spawn_timeout_ms)",
             timeout_ms);
  else if (timed_out)
    snprintf(err, errlen,
             "%s of package \"%s\" did not finish within %lld ms "
             "(sandbox.spawn_timeout_ms)",
             phase, who, timeout_ms);
  else if (!who || !si.si_pid)
    snprintf(err, errlen, "sandbox: it exited before READY");
  else if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED)
    snprintf(err, errlen, "%s of package \"%s\" crashed (%s)", phase, who,
             pkgcheck_signal_name(si.si_status, sb, sizeof sb));
  else if (si.si_status == SBX_EXIT_SYSCALL)
    snprintf(err, errlen,
             "%s of package \"%s\" made a system call the sandbox forbids "
             "(%llu)",
             phase, who,
             (unsigned long long)atomic_load(&sp->page->syscall_nr));
  else
    snprintf(err, errlen, "%s of package \"%s\" exited (status %d) before "
             "it returned", phase, who, si.si_status);
}

int sandbox_trial(worker *w, stack *st, char *file, size_t filecap,
                  char *err, size_t errlen) {
  int fd = -1;
  file[0] = '\0';
  char e[384];
  sbx_proc *sp =
      spawn(st, "", config_plan_budget(w->cfg, NULL), &fd, e, sizeof e);
  if (!sp) {
    snprintf(err, errlen, "sandbox: %s", e);
    return -2;
  }
  sp->trial = 1;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t deadline = (uint64_t)ts.tv_sec * 1000 +
                      (uint64_t)ts.tv_nsec / 1000000 +
                      (uint64_t)w->cfg->sandbox_spawn_timeout_ms;
  int rc = -1;
  char *fb = NULL;
  trial_in tin = {0};
  for (;;) {
    long fl = read_frame(fd, deadline, &tin, &fb);
    if (fl < 0) {
      snprintf(err, errlen, "sandbox: a malformed frame before READY");
      break;
    }
    if (fl == 0) {
      clock_gettime(CLOCK_MONOTONIC, &ts);
      uint64_t now = (uint64_t)ts.tv_sec * 1000 +
                     (uint64_t)ts.tv_nsec / 1000000;
      trial_failure(sp, now >= deadline,
                    (long long)w->cfg->sandbox_spawn_timeout_ms, file,
                    filecap, err, errlen);
      break;
    }
    sbx_frame_head h;
    memcpy(&h, fb, sizeof h);
    const char *p = fb + sizeof h;
    if (h.type == SBX_MSG_LOG) {
      uint8_t lvl;
      const char *msg;
      size_t n;
      if (sbx_decode_log(p, h.len, &lvl, &msg, &n) == 0)
        relay_frame_log(sp, &h, lvl, msg, n, NULL);
      continue;
    }
    if (h.type == SBX_MSG_CALL) {
      /* init and on_host_ready may call the host synchronously. */
      sbx_callmsg *m = malloc(sizeof *m);
      int ok = m && sbx_decode_call(p, h.len, m) == 0;
      if (ok) sbx__serve_call(sp, 0, h.flags, m);
      free(m);
      if (!ok) {
        snprintf(err, errlen, "sandbox: a malformed CALL before READY");
        break;
      }
      size_t off = 0;
      while (off < sp->out.len) {
        ssize_t wn = write(fd, sp->out.p + off, sp->out.len - off);
        if (wn < 0 && errno == EINTR) continue;
        if (wn < 0 && errno == EAGAIN) {
          struct pollfd pf = {fd, POLLOUT, 0};
          poll(&pf, 1, 1000);
          continue;
        }
        if (wn <= 0) break;
        off += (size_t)wn;
      }
      sp->out.len = 0;
      sp->dirty = 0;
      continue;
    }
    if (h.type == SBX_MSG_FAIL) {
      const char *ffile, *msg;
      /* The loader's own message, as an in-process load gives it. */
      if (sbx_decode_fail(p, h.len, &ffile, &msg) == 0) {
        snprintf(err, errlen, "%s", msg);
        snprintf(file, filecap, "%s", ffile);
      } else {
        snprintf(err, errlen, "sandbox: a malformed FAIL");
      }
      break;
    }
    if (h.type != SBX_MSG_READY) {
      snprintf(err, errlen, "sandbox: frame %u before READY", h.type);
      break;
    }
    sbx_ready *m = malloc(sizeof *m);
    if (!m || sbx_decode_ready(p, h.len, m) != 0) {
      snprintf(err, errlen, "sandbox: a malformed READY");
    } else if (take_ready(sp, m, e, sizeof e) != 0) {
      snprintf(err, errlen, "sandbox: %s", e);
    } else {
      rc = 0;
    }
    free(m);
    break;
  }
  free(tin.b);
  if (rc == 0) {
    /* Loaded as it will serve: let it go. */
    sbx_out o = {0};
    size_t at = sbx_begin(&o, SBX_MSG_STOP, 0);
    if (sbx_end(&o, at) == 0 && write(fd, o.p, o.len) < 0) {
      /* It exits on the socket's end as well. */
    }
    sbx_out_free(&o);
    sp->state = SP_STOPPING;
  } else {
    kill_proc(sp, "trial load failed", 0);
  }
  close(fd);
  /* The loop reaps it; its stack may be freed before: forget it. */
  forget_stack(sp);
  return rc;
}
