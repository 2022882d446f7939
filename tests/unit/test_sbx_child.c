/* The sandbox process (`nno sandbox`), driven as a worker drives it: a
 * socketpair on fd 3, a status page on fd 4, frames in, frames and exit
 * statuses out, on the fixture stack sbxprobe. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/landlock.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sbx_proto.h"

#define ROOT NNO_TEST_DIR "/stacks/sbxprobe"
#define DIR ROOT "/sbxprobe/1.0.0"

typedef struct sbx {
  pid_t pid;
  int fd;
  sbx_shared *page;
  char routes[32][64]; /* "METHOD pattern" by index */
  size_t nroutes;
} sbx;

typedef struct frame {
  sbx_frame_head h;
  char *p; /* payload, NUL-terminated beyond len */
} frame;

/* Spawn stack `id` 1.0.0 of `root` (found in `dir`) with the given
 * budgets. */
static void spawn_stack(sbx *s, const char *root, const char *dir,
                        const char *id, const char *cpu_ms,
                        const char *mem_mb) {
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  int mfd = memfd_create("sbx-test", MFD_CLOEXEC);
  assert_true(mfd >= 0);
  assert_int_equal(ftruncate(mfd, 4096), 0);
  s->page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  assert_true(s->page != MAP_FAILED);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(sv[1], 3);
    dup2(mfd, 4);
    char *argv[] = {"nno",
                    "sandbox",
                    (char *)root,
                    (char *)dir,
                    (char *)id,
                    "1.0.0",
                    "acme",
                    "/nonexistent",
                    (char *)cpu_ms,
                    (char *)mem_mb,
                    "warn",
                    "example.test",
                    NULL};
    char *envp[] = {NULL};
    execve(NNO_BIN, argv, envp);
    _exit(127);
  }
  close(sv[1]);
  close(mfd);
  s->pid = pid;
  s->fd = sv[0];
  s->nroutes = 0;
}

/* The fixture sbxprobe; `dir` NULL: its folder. */
static void spawn(sbx *s, const char *dir, const char *cpu_ms,
                  const char *mem_mb) {
  spawn_stack(s, ROOT, dir ? dir : DIR, "sbxprobe", cpu_ms, mem_mb);
}

static int read_full(int fd, void *p, size_t n, int timeout_ms) {
  size_t got = 0;
  while (got < n) {
    struct pollfd pf = {fd, POLLIN, 0};
    int r = poll(&pf, 1, timeout_ms);
    if (r <= 0) return -1;
    ssize_t k = read(fd, (char *)p + got, n - got);
    if (k <= 0) return -1;
    got += (size_t)k;
  }
  return 0;
}

/* The next frame, LOG frames included. 0, or -1 at EOF / timeout. */
static int recv_any(sbx *s, frame *f) {
  if (read_full(s->fd, &f->h, sizeof f->h, 8000)) return -1;
  f->p = malloc((size_t)f->h.len + 1);
  assert_non_null(f->p);
  if (read_full(s->fd, f->p, f->h.len, 8000)) {
    free(f->p);
    return -1;
  }
  f->p[f->h.len] = '\0';
  return 0;
}

/* The next frame that is not a LOG. */
static int recv_frame(sbx *s, frame *f) {
  for (;;) {
    if (recv_any(s, f)) return -1;
    if (f->h.type != SBX_MSG_LOG) return 0;
    free(f->p);
  }
}

static void send_out(sbx *s, sbx_out *o) {
  size_t done = 0;
  while (done < o->len) {
    ssize_t n = write(s->fd, o->p + done, o->len - done);
    assert_true(n > 0);
    done += (size_t)n;
  }
  sbx_out_free(o);
}

/* Exit status of the sandbox (waits up to 8 s, then kills it). */
static int reap(sbx *s) {
  int st = 0;
  for (int i = 0; i < 800; i++) {
    pid_t r = waitpid(s->pid, &st, WNOHANG);
    if (r == s->pid) {
      close(s->fd);
      return st;
    }
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
  kill(s->pid, SIGKILL);
  waitpid(s->pid, &st, 0);
  close(s->fd);
  fail_msg("the sandbox did not exit");
  return -1;
}

static void expect_ready(sbx *s) {
  frame f;
  assert_int_equal(recv_frame(s, &f), 0);
  if (f.h.type == SBX_MSG_FAIL) {
    sbx_in in = {f.p, f.h.len, 0};
    const char *file = sbx_get_str(&in, NULL);
    fail_msg("FAIL: %s: %s", file, sbx_get_str(&in, NULL));
  }
  assert_int_equal(f.h.type, SBX_MSG_READY);
  sbx_in in = {f.p, f.h.len, 0};
  assert_int_equal(sbx_get_u32(&in), 1);
  assert_string_equal(sbx_get_str(&in, NULL), "sbxprobe");
  assert_string_equal(sbx_get_str(&in, NULL), "1.0.0");
  uint32_t n = sbx_get_u32(&in);
  assert_true(n > 0 && n <= 32);
  for (uint32_t i = 0; i < n; i++) {
    const char *m = sbx_get_str(&in, NULL);
    const char *p = sbx_get_str(&in, NULL);
    snprintf(s->routes[i], sizeof s->routes[i], "%s %s", m, p);
  }
  s->nroutes = n;
  assert_false(in.bad);
  assert_int_equal(in.left, 0);
  free(f.p);
}

static uint32_t route(sbx *s, const char *mp) {
  for (size_t i = 0; i < s->nroutes; i++)
    if (strcmp(s->routes[i], mp) == 0) return (uint32_t)i;
  fail_msg("no route %s", mp);
  return 0;
}

/* The fields of REQ after the route, from `method` on. */
static void req_fields(sbx_out *o, const char *method, const char *path,
                       const char *query, const char *body, uint64_t cpu_ms) {
  sbx_cstr(o, method);
  sbx_cstr(o, path);
  sbx_cstr(o, query);
  sbx_u32(o, 2); /* headers */
  sbx_cstr(o, "Host");
  sbx_cstr(o, "x.acme.nno.localhost");
  sbx_cstr(o, "X-Probe");
  sbx_cstr(o, "yes");
  if (strncmp(path, "/echo/", 6) == 0) {
    sbx_u32(o, 1);
    sbx_cstr(o, "rest");
    sbx_cstr(o, path + 6);
  } else {
    sbx_u32(o, 0);
  }
  sbx_cstr(o, body);
  sbx_cstr(o, "rid-1"); /* rid */
  sbx_cstr(o, "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01");
  sbx_cstr(o, "acme"); /* platform */
  sbx_cstr(o, "x.acme.nno.localhost");
  sbx_cstr(o, "127.0.0.1");
  sbx_cstr(o, "/echo/{rest...}");
  sbx_cstr(o, "");
  sbx_u32(o, 2); /* caller: a key */
  sbx_cstr(o, "acme");
  sbx_cstr(o, "");
  sbx_cstr(o, "key1");
  sbx_cstr(o, "features:*");
  sbx_cstr(o, "");
  sbx_cstr(o, "");
  sbx_u64(o, cpu_ms);
  sbx_u64(o, 1 << 20);
}

static void send_req(sbx *s, uint64_t id, const char *mp, const char *path,
                     const char *query, uint64_t cpu_ms) {
  sbx_out o = {0};
  size_t at = sbx_begin(&o, SBX_MSG_REQ, id);
  sbx_u32(&o, 0);
  sbx_u32(&o, route(s, mp));
  char method[16];
  snprintf(method, sizeof method, "%.*s", (int)strcspn(mp, " "), mp);
  req_fields(&o, strcmp(method, "*") ? method : "POST", path, query, "hi",
             cpu_ms);
  assert_int_equal(sbx_end(&o, at), 0);
  send_out(s, &o);
}

typedef struct res {
  uint64_t id;
  uint32_t status;
  char headers[1024], body[4096];
  int written, rc;
} res;

static void parse_res(const frame *f, res *r) {
  assert_int_equal(f->h.type, SBX_MSG_RES);
  sbx_in in = {f->p, f->h.len, 0};
  r->id = f->h.id;
  r->status = sbx_get_u32(&in);
  snprintf(r->headers, sizeof r->headers, "%s", sbx_get_str(&in, NULL));
  sbx_get_str(&in, NULL);
  snprintf(r->body, sizeof r->body, "%s", sbx_get_str(&in, NULL));
  r->written = sbx_get_u8(&in);
  r->rc = sbx_get_i32(&in);
  assert_false(in.bad);
  assert_int_equal(in.left, 0);
}

static void expect_res(sbx *s, uint64_t id, uint32_t status, const char *has,
                       res *out) {
  frame f;
  res r;
  assert_int_equal(recv_frame(s, &f), 0);
  parse_res(&f, &r);
  free(f.p);
  assert_int_equal(r.id, id);
  assert_int_equal(r.status, status);
  if (has && !strstr(r.body, has)) fail_msg("body %s lacks %s", r.body, has);
  if (out) *out = r;
}

static void stop(sbx *s) {
  sbx_out o = {0};
  sbx_end(&o, sbx_begin(&o, SBX_MSG_STOP, 0));
  send_out(s, &o);
  int st = reap(s);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- tests --------------------------------------------------------------- */

static void test_ready_echo_async_stop(void **state) {
  (void)state;
  sbx s;
  spawn(&s, NULL, "1000", "256");
  expect_ready(&s);
  send_req(&s, 7, "* /echo/{rest...}", "/echo/a/b", "q=x%20y", 0);
  res r;
  expect_res(&s, 7, 200, "\"rest\":\"a/b\"", &r);
  assert_non_null(strstr(r.body, "\"probe\":\"yes\""));
  assert_non_null(strstr(r.body, "\"q\":\"x y\""));
  assert_non_null(strstr(r.body, "\"platform\":\"acme\""));
  assert_non_null(strstr(r.body, "\"body\":\"hi\""));
  /* The worker's base domain; no data folder (no file system). */
  assert_non_null(strstr(r.body, "\"domain\":\"example.test\""));
  assert_non_null(strstr(r.body, "\"data\":\"\""));
  assert_non_null(strstr(r.headers, "X-Echo: 1\r\n"));
  assert_int_equal(r.written, 1);
  /* Async, from the sandbox's own timer; two at once. */
  send_req(&s, 8, "GET /later", "/later", "ms=50", 0);
  send_req(&s, 9, "GET /later", "/later", "ms=1", 0);
  expect_res(&s, 9, 200, "\"later\":1", NULL);
  expect_res(&s, 8, 200, "\"later\":1", NULL);
  /* A handler's error code, nothing written: the worker answers 500. */
  send_req(&s, 10, "GET /fail", "/fail", "", 0);
  expect_res(&s, 10, 200, NULL, &r);
  assert_int_equal(r.written, 0);
  assert_int_equal(r.rc, -9 /* NNO_EIO */);
  assert_int_equal(atomic_load(&s.page->busy_req), 0);
  stop(&s);
}

static void test_confinement(void **state) {
  (void)state;
  sbx s;
  spawn(&s, NULL, "1000", "256");
  expect_ready(&s);
  send_req(&s, 1, "GET /open", "/open", "", 0);
  expect_res(&s, 1, 200, "{\"errno\":13}", NULL);
  send_req(&s, 2, "GET /write", "/write", "", 0);
  expect_res(&s, 2, 200, "{\"errno\":13}", NULL);
  send_req(&s, 3, "GET /fork", "/fork", "", 0);
  expect_res(&s, 3, 200, "{\"errno\":1}", NULL);
  send_req(&s, 4, "GET /socket", "/socket", "", 0);
  expect_res(&s, 4, 200, "{\"errno\":1}", NULL);
  /* Landlock: init could read nothing outside the stack's folder. */
  send_req(&s, 6, "GET /initopen", "/initopen", "", 0);
  expect_res(&s, 6, 200, "{\"errno\":13}", NULL);
  /* The parent-death signal stays. */
  send_req(&s, 7, "GET /pdeath", "/pdeath", "", 0);
  expect_res(&s, 7, 200, "{\"errno\":1}", NULL);
  /* No capability once loaded (as root, the read right kept for the load
   * is gone). */
  send_req(&s, 8, "GET /caps", "/caps", "", 0);
  expect_res(&s, 8, 200, "{\"caps\":0}", NULL);
  assert_int_equal(access("/tmp/sbxprobe-write", F_OK), -1);
  /* A call no filter allows ends it, and says which. */
  send_req(&s, 5, "GET /forbidden", "/forbidden", "", 0);
  int st = reap(&s);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), SBX_EXIT_SYSCALL);
  assert_int_equal(atomic_load(&s.page->exit_reason), SBX_EXIT_SYSCALL);
  assert_int_equal(atomic_load(&s.page->syscall_nr), 306 /* syncfs */);
  /* The status page named the request it died in. */
  assert_int_equal(atomic_load(&s.page->busy_req), 5);
}

static void test_cpu_budget(void **state) {
  (void)state;
  sbx s;
  spawn(&s, NULL, "100", "256");
  expect_ready(&s);
  send_req(&s, 11, "GET /spin", "/spin", "", 100);
  int st = reap(&s);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), SBX_EXIT_CPU);
  assert_int_equal(atomic_load(&s.page->exit_reason), SBX_EXIT_CPU);
  assert_int_equal(atomic_load(&s.page->busy_req), 11);
}

static void test_memory_budget(void **state) {
  (void)state;
  sbx s;
  spawn(&s, NULL, "1000", "64");
  expect_ready(&s);
  send_req(&s, 1, "GET /alloc", "/alloc", "mb=1", 0);
  expect_res(&s, 1, 200, "\"alloc\":1", NULL);
  /* Pool threads start and allocate under the address-space cap. */
  for (uint64_t id = 3; id < 11; id++)
    send_req(&s, id, "GET /work", "/work", "", 0);
  for (int i = 0; i < 8; i++) {
    frame f;
    res w;
    assert_int_equal(recv_frame(&s, &f), 0);
    parse_res(&f, &w);
    free(f.p);
    assert_true(w.id >= 3 && w.id < 11);
    assert_int_equal(w.status, 200);
    assert_string_equal(w.body, "{\"work\":12345}");
  }
  send_req(&s, 2, "GET /alloc", "/alloc", "mb=100", 0);
  frame f;
  assert_int_equal(recv_frame(&s, &f), 0);
  assert_int_equal(f.h.type, SBX_MSG_RECYCLE);
  assert_non_null(strstr(f.p + 4, "memory budget exceeded"));
  free(f.p);
  res r;
  expect_res(&s, 2, 503, "memory budget exceeded (", &r);
  assert_non_null(strstr(r.body, " MiB of 64 MiB)"));
  assert_non_null(strstr(r.headers, "application/problem+json"));
  assert_non_null(strstr(r.body, "\"request_id\":\"rid-1\""));
  stop(&s);
}

static void test_garbage_handles(void **state) {
  (void)state;
  sbx s;
  spawn(&s, NULL, "1000", "256");
  expect_ready(&s);
  send_req(&s, 1, "GET /garbage", "/garbage", "", 0);
  frame f;
  int logged = 0;
  for (;;) {
    assert_int_equal(recv_any(&s, &f), 0);
    if (f.h.type != SBX_MSG_LOG) break;
    if (strstr(f.p + 5, "garbage handle")) logged++;
    free(f.p);
  }
  res r;
  parse_res(&f, &r);
  free(f.p);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"res_status\":-1,\"kv_get\":-1}");
  assert_int_equal(logged, 3);
  stop(&s);
}

/* A CALL frame: its id, op and payload reader. */
static void expect_call(sbx *s, uint64_t req, uint16_t op, frame *f, sbx_in *in,
                        uint64_t *call_id) {
  assert_int_equal(recv_frame(s, f), 0);
  assert_int_equal(f->h.type, SBX_MSG_CALL);
  assert_int_equal(f->h.id, req);
  assert_int_equal(f->h.flags, 1); /* package 0 */
  in->p = f->p;
  in->left = f->h.len;
  in->bad = 0;
  *call_id = sbx_get_u64(in);
  assert_int_equal(sbx_get_u16(in), op);
}

static void test_calls(void **state) {
  (void)state;
  sbx s;
  spawn(&s, NULL, "1000", "256");
  expect_ready(&s);
  /* Async: kv_get goes out as CALL, its RESULT runs the callback. */
  send_req(&s, 1, "GET /kv", "/kv", "", 0);
  frame f;
  sbx_in in;
  uint64_t cid;
  expect_call(&s, 1, SBX_CALL_KV_GET, &f, &in, &cid);
  assert_string_equal(sbx_get_str(&in, NULL), "cache");
  assert_string_equal(sbx_get_str(&in, NULL), "k");
  assert_false(in.bad);
  free(f.p);
  sbx_out o = {0};
  size_t at = sbx_begin(&o, SBX_MSG_RESULT, cid);
  sbx_i32(&o, 0);
  sbx_cstr(&o, "");
  sbx_u8(&o, 1);
  sbx_cstr(&o, "v1");
  sbx_u64(&o, 0);
  sbx_end(&o, at);
  send_out(&s, &o);
  expect_res(&s, 1, 200, "{\"error\":0,\"found\":1,\"value\":\"v1\"}", NULL);

  /* The host's shared counters are refused to a sandboxed package: the
   * proxy answers NNO_EREFUSED itself and sends no CALL (the next frame
   * is the answer, not a CALL). */
  send_req(&s, 2, "GET /counter", "/counter", "name=iam&delta=7", 0);
  {
    char want[64];
    /* -14: NNO_EREFUSED */
    snprintf(want, sizeof want, "{\"rc\":%d,\"after\":0}", -14);
    expect_res(&s, 2, 200, want, NULL);
  }
  send_req(&s, 3, "* /echo/{rest...}", "/echo/z", "", 0);
  expect_res(&s, 3, 200, "\"rest\":\"z\"", NULL);

  /* http_fetch: the whole request goes to the worker, which fetches. */
  send_req(&s, 5, "GET /fetch", "/fetch", "url=http://example.test/x", 0);
  expect_call(&s, 5, SBX_CALL_HTTP_FETCH, &f, &in, &cid);
  assert_string_equal(sbx_get_str(&in, NULL), "GET");
  assert_string_equal(sbx_get_str(&in, NULL), "http://example.test/x");
  assert_int_equal(sbx_get_u32(&in), 1);
  assert_string_equal(sbx_get_str(&in, NULL), "Accept: text/plain");
  assert_string_equal(sbx_get_str(&in, NULL), "");
  assert_int_equal(sbx_get_u32(&in), 500);
  assert_int_equal(sbx_get_u64(&in), 0);
  assert_false(in.bad);
  assert_int_equal(in.left, 0);
  free(f.p);
  at = sbx_begin(&o, SBX_MSG_RESULT, cid);
  sbx_i32(&o, 0);
  sbx_cstr(&o, "");
  sbx_u32(&o, 201);
  sbx_cstr(&o, "Content-Type: text/plain\r\n");
  sbx_cstr(&o, "made");
  sbx_end(&o, at);
  send_out(&s, &o);
  expect_res(&s, 5, 200, "{\"error\":0,\"status\":201,\"body\":\"made\"}",
             NULL);
  /* A URL the host would refuse is refused in the sandbox: no CALL. */
  send_req(&s, 6, "GET /fetch", "/fetch", "url=file:///etc/passwd", 0);
  expect_res(&s, 6, 200, "{\"rc\":-1}", NULL);

  /* A log line goes out tagged with the request and the package. */
  send_req(&s, 4, "GET /log", "/log", "", 0);
  assert_int_equal(recv_any(&s, &f), 0);
  assert_int_equal(f.h.type, SBX_MSG_LOG);
  assert_int_equal(f.h.id, 4);
  assert_int_equal(f.h.flags, 1);
  assert_string_equal(f.p + 5, "sbxprobe says hello");
  free(f.p);
  expect_res(&s, 4, 200, "\"logged\":1", NULL);
  stop(&s);
}

static void test_cancel_and_event(void **state) {
  (void)state;
  sbx s;
  spawn(&s, NULL, "1000", "256");
  expect_ready(&s);
  send_req(&s, 1, "GET /later", "/later", "ms=100", 0);
  sbx_out o = {0};
  sbx_end(&o, sbx_begin(&o, SBX_MSG_CANCEL, 1));
  /* A platform event, answered with RES status 0. */
  size_t at = sbx_begin(&o, SBX_MSG_EVENT, 2);
  sbx_u32(&o, 0);
  sbx_i32(&o, 1 /* NNO_PLATFORM_ACTIVATED */);
  req_fields(&o, "POST", "/", "", "", 0);
  sbx_end(&o, at);
  send_out(&s, &o);
  res r;
  expect_res(&s, 2, 0, "{\"event\":1}", &r);
  send_req(&s, 3, "* /echo/{rest...}", "/echo/after", "", 0);
  expect_res(&s, 3, 200, "\"rest\":\"after\"", NULL);
  /* The cancelled request still ends with its RES (the worker drops it);
   * its handler saw req_gone. */
  expect_res(&s, 1, 200, "\"gone\":1", NULL);
  stop(&s);
}

static void test_protocol_violation(void **state) {
  (void)state;
  sbx s;
  spawn(&s, NULL, "1000", "256");
  expect_ready(&s);
  /* A REQ whose strings run past its end. */
  sbx_out o = {0};
  size_t at = sbx_begin(&o, SBX_MSG_REQ, 1);
  sbx_u32(&o, 0);
  sbx_u32(&o, 0);
  sbx_u32(&o, 1000);
  sbx_end(&o, at);
  send_out(&s, &o);
  int st = reap(&s);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), SBX_EXIT_PROTOCOL);
}

static void test_load_failure(void **state) {
  (void)state;
  sbx s;
  spawn(&s, ROOT "/nosuch/1.0.0", "1000", "256");
  frame f;
  assert_int_equal(recv_frame(&s, &f), 0);
  assert_int_equal(f.h.type, SBX_MSG_FAIL);
  free(f.p);
  int st = reap(&s);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_service_refused(void **state) {
  (void)state;
  sbx s;
  spawn_stack(&s, NNO_TEST_DIR "/stacks/sbxneeds",
              NNO_TEST_DIR "/stacks/sbxneeds/sbxneeds/1.0.0", "sbxneeds",
              "1000", "256");
  frame f;
  assert_int_equal(recv_frame(&s, &f), 0);
  assert_int_equal(f.h.type, SBX_MSG_FAIL);
  sbx_in in = {f.p, f.h.len, 0};
  sbx_get_str(&in, NULL);
  const char *msg = sbx_get_str(&in, NULL);
  assert_false(in.bad);
  assert_string_equal(msg,
                      "package \"sbxneeds\" requires service \"nno.iam\", "
                      "which a sandboxed stack cannot reach; run stack "
                      "sbxneeds inprocess (sandbox.inprocess)");
  free(f.p);
  int st = reap(&s);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

/* Is Landlock enabled: 1 yes, 0 no, -1 cannot tell (ENOSYS: a kernel
 * without it, or valgrind running this test, which does not know the
 * call). */
static int landlock_available(void) {
  long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
                     LANDLOCK_CREATE_RULESET_VERSION);
  if (abi >= 1) return 1;
  return errno == ENOSYS ? -1 : 0;
}

/* A stack in a folder only root may enter (the data folder is 0750): a
 * sandbox started by root runs as nobody keeping only the right to read
 * (CAP_DAC_READ_SEARCH), which Landlock bounds to the stack and the
 * libraries, so it loads. Without Landlock the right goes, and the sandbox
 * says plainly that it cannot read the folder. */
static void test_unreadable_folder(void **state) {
  (void)state;
  char tmp[] = "/tmp/sbx-test-XXXXXX", cmd[256], root[128], dir[160];
  assert_non_null(mkdtemp(tmp));
  assert_int_equal(chmod(tmp, 0700), 0);
  snprintf(cmd, sizeof cmd, "cp -a '%s' '%s/'", ROOT, tmp);
  assert_int_equal(system(cmd), 0);
  snprintf(root, sizeof root, "%s/sbxprobe", tmp);
  snprintf(dir, sizeof dir, "%s/sbxprobe/1.0.0", root);
  sbx s;
  spawn_stack(&s, root, dir, "sbxprobe", "1000", "256");
  int landlock = landlock_available();
  frame f;
  assert_int_equal(recv_frame(&s, &f), 0);
  if (f.h.type == SBX_MSG_FAIL) {
    /* only as root without Landlock */
    assert_true(geteuid() == 0 && landlock != 1);
    sbx_in in = {f.p, f.h.len, 0};
    sbx_get_str(&in, NULL);
    const char *msg = sbx_get_str(&in, NULL);
    assert_non_null(strstr(msg, "cannot be read by the sandbox's user nobody"));
    free(f.p);
    int st = reap(&s);
    assert_true(WIFEXITED(st));
  } else {
    /* its own user, or nobody with the right to read */
    assert_int_equal(f.h.type, SBX_MSG_READY);
    assert_true(geteuid() != 0 || landlock != 0);
    free(f.p);
    stop(&s);
  }
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ready_echo_async_stop),
      cmocka_unit_test(test_confinement),
      cmocka_unit_test(test_cpu_budget),
      cmocka_unit_test(test_memory_budget),
      cmocka_unit_test(test_garbage_handles),
      cmocka_unit_test(test_calls),
      cmocka_unit_test(test_cancel_and_event),
      cmocka_unit_test(test_protocol_violation),
      cmocka_unit_test(test_load_failure),
      cmocka_unit_test(test_service_refused),
      cmocka_unit_test(test_unreadable_folder),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
