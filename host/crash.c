/* In-process crash reports (crash.h). Everything the handler calls is
 * async-signal-safe: memory copies, write(2), poll(2), clock_gettime(2),
 * sigaction(2) and raise(3). It reads the request as the interrupted code
 * left it; the request and its connection are the worker's own memory,
 * which a plugin that scribbled over it may have spoilt: the report is
 * then as good as what is left, and the default action ends it anyway. */
#include "crash.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "callctx.h"
#include "conn.h"
#include "gateway.h"
#include "loader.h"
#include "log.h"
#include "logring.h"
#include "quarantine.h"

#define ALTSTACK_BYTES (64 * 1024)

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
static int crash_slot = -1;

const char *crash_signal_name(int sig, char out[16]) {
  const char *n = sig == SIGSEGV   ? "SIGSEGV"
                  : sig == SIGBUS  ? "SIGBUS"
                  : sig == SIGILL  ? "SIGILL"
                  : sig == SIGFPE  ? "SIGFPE"
                  : sig == SIGABRT ? "SIGABRT"
                  : sig == SIGKILL ? "SIGKILL"
                  : sig == SIGTERM ? "SIGTERM"
                  : sig == SIGXCPU ? "SIGXCPU"
                  : sig == SIGSYS  ? "SIGSYS"
                                   : NULL;
  if (n) {
    memcpy(out, n, strlen(n) + 1);
    return out;
  }
  char d[12];
  int k = 0;
  unsigned v = sig < 0 ? 0u : (unsigned)sig;
  do {
    d[k++] = (char)('0' + v % 10);
    v /= 10;
  } while (v && k < 11);
  memcpy(out, "SIG", 3);
  int j = 3;
  while (k) out[j++] = d[--k];
  out[j] = '\0';
  return out;
}

/* Copy s[0..n) into dst[cap], cut to fit, terminated. */
static void cpy(char *dst, size_t cap, const char *s, size_t n) {
  if (!s) n = 0;
  if (n > cap - 1) n = cap - 1;
  for (size_t i = 0; i < n; i++) dst[i] = s[i];
  dst[n] = '\0';
}

static size_t slen(const char *s, size_t max) {
  size_t n = 0;
  while (s && n < max && s[n]) n++;
  return n;
}

/* All of p[0..n) to the non-blocking socket fd, waiting at most 200 ms
 * for room at a time. 0, or -1. */
static int send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      if (poll(&pfd, 1, 200) <= 0) return -1;
    } else {
      return -1;
    }
  }
  return 0;
}

static char *put_s(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return p + n;
}

static char *put_u(char *p, size_t v) {
  char d[24];
  int k = 0;
  do {
    d[k++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (k) *p++ = d[--k];
  return p;
}

/* The canned answer to the crashing request (returns -1 when none went
 * out, else the bytes of its body that did), on its own socket, after
 * any earlier answers still queued on the connection (so answers keep
 * their order); not when a write of the connection is in flight (libuv
 * holds part of it: the client sees the connection close instead). */
static int answer(nno_req *r, const char *signame) {
  if (r->event) return -1; /* host-made (platform_event): no client */
  conn *c = (conn *)((char *)r - offsetof(conn, req));
  uv_os_fd_t fd;
  if (r->gone || c->state == CONN_CLOSING || c->writing ||
      uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
    return -1;
  if (c->out.len && send_all(fd, c->out.p, c->out.len) != 0) return -1;
  char body[512], head[256];
  char *b = body;
  size_t rl = slen(r->rid, sizeof r->rid - 1); /* [A-Za-z0-9._:-]: no escapes */
  static const char b1[] =
      "{\"type\":\"about:blank\",\"title\":\"Bad Gateway\",\"status\":502,"
      "\"detail\":\"the package crashed serving this request (";
  static const char b2[] =
      "); its worker is being replaced\",\"request_id\":\"";
  b = put_s(b, b1, sizeof b1 - 1);
  b = put_s(b, signame, slen(signame, 15));
  b = put_s(b, b2, sizeof b2 - 1);
  b = put_s(b, r->rid, rl);
  b = put_s(b, "\"}", 2);
  size_t blen = (size_t)(b - body);
  static const char h0[] = "HTTP/1.1 502 Bad Gateway\r\n";
  static const char h1[] =
      "Content-Type: application/problem+json\r\nX-Request-Id: ";
  char *h = head;
  h = put_s(h, h0, sizeof h0 - 1);
  /* The worker's cached Date line, as the last answer had it. */
  if (c->w && c->w->date_len < 64) h = put_s(h, c->w->date, c->w->date_len);
  h = put_s(h, h1, sizeof h1 - 1);
  h = put_s(h, r->rid, rl);
  h = put_s(h, "\r\nContent-Length: ", 18);
  h = put_u(h, blen);
  h = put_s(h, "\r\nConnection: close\r\n\r\n", 23);
  if (send_all(fd, head, (size_t)(h - head)) != 0) return -1;
  if (r->hr && r->hr->head) return 0;
  return send_all(fd, body, blen) == 0 ? (int)blen : 0;
}

static void on_fatal(int sig, siginfo_t *si, void *uc) {
  (void)si;
  (void)uc;
  int saved = errno;
  callctx cc = g_callctx;
  const plugin *p = cc.plugin;
  nno_req *r = cc.req;
  char signame[16];
  crash_signal_name(sig, signame);
  const char *platform = r ? r->scope : "";
  const char *package = p && p->man.name ? p->man.name : "";
  const char *version = p && p->man.version ? p->man.version : "";
  const char *stk = p ? p->stack : "";
  const char *method = r && r->hr && r->hr->method ? r->hr->method : "";
  size_t method_len = r && r->hr ? r->hr->method_len : 0;
  const char *path = r && r->hr ? r->hr->path : "";
  size_t path_len = r && r->hr ? r->hr->path_len : 0;
  if (path_len > 256) path_len = 256;
  quarantine_crash *rec = quarantine_crash_slot(crash_slot);
  if (rec) {
    rec->signal = sig;
    cpy(rec->platform, sizeof rec->platform, platform, slen(platform, 64));
    cpy(rec->package, sizeof rec->package, package, slen(package, 64));
    cpy(rec->version, sizeof rec->version, version, slen(version, 64));
    cpy(rec->stack, sizeof rec->stack, stk, slen(stk, 129));
    cpy(rec->rid, sizeof rec->rid, r ? r->rid : "", r ? r->rid_len : 0);
    cpy(rec->method, sizeof rec->method, method, method_len);
    cpy(rec->path, sizeof rec->path, path, path_len);
    atomic_store_explicit(&rec->state, 1, memory_order_release);
  }
  int answered = r ? answer(r, signame) : -1;
  /* Earlier requests' access lines first, then ours. */
  log_flush();
  logline l;
  log_begin_signal(&l, NNO_LOG_ERROR, "worker crashed");
  log_str(&l, "signal", signame);
  log_int(&l, "signo", sig);
  if (r) {
    log_strn(&l, "rid", r->rid, slen(r->rid, sizeof r->rid - 1));
    log_strn(&l, "method", method, method_len);
    log_strn(&l, "path", path, path_len);
  }
  log_str(&l, "platform", platform);
  log_str(&l, "package", package);
  log_str(&l, "version", version);
  log_str(&l, "stack", stk);
  log_end(&l);
  /* The platform's logs tell its developer too (async-signal-safe). */
  logring_meta lm = {platform, slen(platform, 64), package, slen(package, 64),
                     r ? r->rid : "", r ? slen(r->rid, sizeof r->rid - 1) : 0,
                     NNO_LOG_ERROR};
  logring_append(&lm, l.buf, l.len);
  if (r && !r->event) {
    uint64_t dur_us = (uv_hrtime() - r->start_ns) / 1000;
    log_begin_signal(&l, NNO_LOG_INFO, "access");
    log_strn(&l, "rid", r->rid, slen(r->rid, sizeof r->rid - 1));
    log_strn(&l, "method", method, method_len);
    log_strn(&l, "path", path, path_len);
    log_str(&l, "route", r->route_label ? r->route_label : "unmatched");
    log_int(&l, "status", answered >= 0 ? 502 : 499);
    log_int(&l, "bytes", answered > 0 ? answered : 0);
    log_int(&l, "dur_us", (long long)dur_us);
    log_strn(&l, "trace", gateway_traceparent(r) + 3, 32);
    log_end_deferred(&l);
    log_flush();
    lm.level = NNO_LOG_INFO;
    logring_append(&lm, l.buf, l.len);
  }
  /* SA_RESETHAND put the default action back: raised again, the signal
   * is delivered when the handler returns, and ends the process. */
  errno = saved;
  raise(sig);
}

int crash_install(int slot) {
  crash_slot = slot;
  void *mem = mmap(NULL, ALTSTACK_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    log_warn("cannot map the crash handler's stack: %s", strerror(errno));
    return -1;
  }
  stack_t ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_sp = mem;
  ss.ss_size = ALTSTACK_BYTES;
  if (sigaltstack(&ss, NULL) != 0) {
    log_warn("cannot set the crash handler's stack: %s", strerror(errno));
    munmap(mem, ALTSTACK_BYTES);
    return -1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fatal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++)
    if (sigaction(fatal_signals[i], &sa, NULL) != 0) {
      log_warn("cannot install the crash handler: %s", strerror(errno));
      return -1;
    }
  return 0;
}
