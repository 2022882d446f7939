/* Unit tests for the SDK's static files (nno/sdk/static.h), against a
 * fake host table and a folder made in /tmp for each run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <nno/sdk.h>

/* ---- the fake host ------------------------------------------------------- */

struct nno_req {
  const char *if_none_match; /* NULL: absent */
  int status;
  char headers[1024];
  char out[8192];
  size_t out_len;
};

static int f_req_header(nno_req *r, const char *name, nno_str *out) {
  if (strcasecmp(name, "If-None-Match") != 0 || !r->if_none_match)
    return NNO_ENOENT;
  out->ptr = r->if_none_match;
  out->len = strlen(r->if_none_match);
  return NNO_OK;
}

static nno_str f_req_id(nno_req *r) {
  (void)r;
  nno_str v = {"rid-1", 5};
  return v;
}

static int f_res_status(nno_req *r, int status) {
  r->status = status;
  return NNO_OK;
}

static int f_res_header(nno_req *r, const char *name, const char *value) {
  size_t n = strlen(r->headers);
  snprintf(r->headers + n, sizeof r->headers - n, "%s: %s\n", name, value);
  return NNO_OK;
}

static int f_res_write(nno_req *r, const void *data, size_t len) {
  assert_true(r->out_len + len < sizeof r->out);
  memcpy(r->out + r->out_len, data, len);
  r->out_len += len;
  r->out[r->out_len] = '\0';
  return NNO_OK;
}

static int f_res_problem(nno_req *r, int status, const char *title,
                         const char *detail) {
  r->status = status;
  r->headers[0] = '\0';
  f_res_header(r, "Content-Type", "application/problem+json");
  r->out_len = 0;
  snprintf(r->out, sizeof r->out, "%s: %s", title, detail ? detail : "");
  r->out_len = strlen(r->out);
  return NNO_OK;
}

static void f_log(nno_plugin *p, int level, const char *fmt, ...) {
  (void)p, (void)level, (void)fmt;
}

static const char *f_strerror(int err) {
  (void)err;
  return "error";
}

static nno_host_api fake_api(void) {
  nno_host_api api;
  memset(&api, 0, sizeof api);
  api.size = sizeof api;
  api.req_header = f_req_header;
  api.req_id = f_req_id;
  api.res_status = f_res_status;
  api.res_header = f_res_header;
  api.res_write = f_res_write;
  api.res_problem = f_res_problem;
  api.log = f_log;
  api.strerror = f_strerror;
  return api;
}

static nno_host_api api;

/* ---- a folder to serve --------------------------------------------------- */

static char root[64]; /* the folder served: ROOT/ui */
static char top[64];  /* ROOT */

static void write_file(const char *rel, const char *text) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", top, rel);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  char path[256];
  snprintf(top, sizeof top, "/tmp/nno_static_XXXXXX");
  assert_non_null(mkdtemp(top));
  snprintf(root, sizeof root, "%s/ui", top);
  assert_int_equal(mkdir(root, 0700), 0);
  snprintf(path, sizeof path, "%s/ui/js", top);
  assert_int_equal(mkdir(path, 0700), 0);
  write_file("ui/shell.js", "export function mount() {}\n");
  write_file("ui/js/app.mjs", "export {};\n");
  write_file("ui/index.html", "<!doctype html><title>x</title>\n");
  write_file("ui/.hidden", "secret\n");
  write_file("package.json", "{\"name\":\"x\"}\n");
  snprintf(path, sizeof path, "%s/ui/out.js", top);
  assert_int_equal(symlink("../package.json", path), 0);
  snprintf(path, sizeof path, "%s/ui/in.js", top);
  assert_int_equal(symlink("shell.js", path), 0);
  snprintf(path, sizeof path, "%s/ui/dir.js", top);
  assert_int_equal(mkdir(path, 0700), 0);
  api = fake_api();
  nno_sdk_init(NULL, &api);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  nno_static_cache_clear();
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
  assert_int_equal(system(cmd), 0);
  return 0;
}

/* ---- tests --------------------------------------------------------------- */

static void test_path_rules(void **state) {
  (void)state;
  static const char *good[] = {"shell.js", "a/b/c.css", "A-b_c.1.png",
                               "1/2/3/4/5/6/7/8"};
  static const char *bad[] = {
      "",       "/shell.js",         "shell.js/", "a//b",    "..",  "../x",
      "a/../b", ".hidden",           "a/.b",      "./a",     "a b", "a\\b",
      "a%2e",   "1/2/3/4/5/6/7/8/9", "a?b",       "\xc3\xa9"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    assert_true(nno_static_path_ok(good[i], strlen(good[i])));
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_false(nno_static_path_ok(bad[i], strlen(bad[i])));
  char longp[300];
  memset(longp, 'a', sizeof longp);
  assert_true(nno_static_path_ok(longp, 255));
  assert_false(nno_static_path_ok(longp, 256));
  /* A NUL inside the length is refused, not cut. */
  assert_false(nno_static_path_ok("a\0b", 3));
}

static void test_types(void **state) {
  (void)state;
  assert_string_equal(nno_static_type("index.html", 10),
                      "text/html; charset=utf-8");
  assert_string_equal(nno_static_type("a/shell.JS", 10),
                      "text/javascript; charset=utf-8");
  assert_string_equal(nno_static_type("m.mjs", 5),
                      "text/javascript; charset=utf-8");
  assert_string_equal(nno_static_type("s.css", 5), "text/css; charset=utf-8");
  assert_string_equal(nno_static_type("l.svg", 5), "image/svg+xml");
  assert_string_equal(nno_static_type("l.jpeg", 6), "image/jpeg");
  assert_string_equal(nno_static_type("f.woff2", 7), "font/woff2");
  assert_string_equal(nno_static_type("x.so", 4), "application/octet-stream");
  assert_string_equal(nno_static_type("js", 2), "application/octet-stream");
  assert_string_equal(nno_static_type("a.js/x", 6), "application/octet-stream");
}

static void test_serve_and_304(void **state) {
  (void)state;
  nno_req r;
  memset(&r, 0, sizeof r);
  assert_int_equal(nno_static_serve(&r, root, "shell.js", 8, "no-cache"),
                   NNO_OK);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.out, "export function mount() {}\n");
  assert_non_null(
      strstr(r.headers, "Content-Type: text/javascript; charset=utf-8\n"));
  assert_non_null(strstr(r.headers, "Cache-Control: no-cache\n"));
  assert_non_null(strstr(r.headers, "X-Content-Type-Options: nosniff\n"));
  char *et = strstr(r.headers, "ETag: \"");
  assert_non_null(et);
  char etag[NNO_STATIC_ETAG_MAX];
  et += 6;
  size_t n = strcspn(et, "\n");
  assert_true(n < sizeof etag);
  memcpy(etag, et, n);
  etag[n] = '\0';

  /* The same ETag, alone, among others or weak: 304 without a body. */
  char inm[128];
  const char *forms[] = {"%s", "\"zz\", %s", "W/%s", "*"};
  for (size_t i = 0; i < 4; i++) {
    memset(&r, 0, sizeof r);
    snprintf(inm, sizeof inm, forms[i], etag);
    r.if_none_match = inm;
    nno_static_serve(&r, root, "shell.js", 8, "no-cache");
    assert_int_equal(r.status, 304);
    assert_int_equal(r.out_len, 0);
    assert_non_null(strstr(r.headers, etag));
  }
  memset(&r, 0, sizeof r);
  r.if_none_match = "\"other\"";
  nno_static_serve(&r, root, "shell.js", 8, NULL);
  assert_int_equal(r.status, 200);
  assert_null(strstr(r.headers, "Cache-Control"));

  /* Edited in place: served new at once, with another ETag. */
  struct timespec ts = {0, 2000000};
  nanosleep(&ts, NULL);
  write_file("ui/shell.js", "export const v = 2;\n");
  memset(&r, 0, sizeof r);
  r.if_none_match = etag;
  nno_static_serve(&r, root, "shell.js", 8, NULL);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.out, "export const v = 2;\n");
  assert_null(strstr(r.headers, etag));

  memset(&r, 0, sizeof r);
  nno_static_serve(&r, root, "js/app.mjs", 10, NULL);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.out, "export {};\n");
}

static void test_refused(void **state) {
  (void)state;
  static const char *paths[] = {"missing.js", /* absent */
                                ".hidden",    /* a dot-file */
                                "../package.json",
                                "js/../../package.json",
                                "out.js", /* a link leading out of the folder */
                                "in.js",  /* a link, even one staying inside */
                                "dir.js", /* not a regular file */
                                "js",
                                "/etc/passwd"};
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
    nno_req r;
    memset(&r, 0, sizeof r);
    nno_static_serve(&r, root, paths[i], strlen(paths[i]), NULL);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.headers, "application/problem+json"));
    assert_null(strstr(r.out, "secret"));
    assert_null(strstr(r.out, "\"name\""));
  }
  nno_static_file f;
  assert_int_equal(nno_static_open(root, "..", 2, &f), NNO_EINVAL);
  assert_int_equal(nno_static_open(root, "out.js", 6, &f), NNO_ENOENT);
  assert_int_equal(nno_static_open("/nonexistent/x", "a.js", 4, &f),
                   NNO_ENOENT);
}

static void test_too_big(void **state) {
  (void)state;
  char path[256];
  snprintf(path, sizeof path, "%s/ui/big.bin", top);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fseek(f, NNO_STATIC_FILE_MAX, SEEK_SET), 0);
  fputc('x', f);
  fclose(f);
  nno_static_file sf;
  assert_int_equal(nno_static_open(root, "big.bin", 7, &sf), NNO_ETOOBIG);
  assert_int_equal(truncate(path, NNO_STATIC_FILE_MAX), 0);
  assert_int_equal(nno_static_open(root, "big.bin", 7, &sf), 0);
  assert_int_equal(sf.len, NNO_STATIC_FILE_MAX);
  assert_string_equal(sf.type, "application/octet-stream");
  nno_static_cache_clear();
  unlink(path);
}

static void test_etag(void **state) {
  (void)state;
  char a[NNO_STATIC_ETAG_MAX], b[NNO_STATIC_ETAG_MAX];
  nno_static_etag("abc", 3, a, sizeof a);
  nno_static_etag("abd", 3, b, sizeof b);
  assert_int_equal(a[0], '"');
  assert_int_equal(a[strlen(a) - 1], '"');
  assert_string_not_equal(a, b);
  nno_static_etag("abc", 3, b, sizeof b);
  assert_string_equal(a, b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_path_rules),    cmocka_unit_test(test_types),
      cmocka_unit_test(test_serve_and_304), cmocka_unit_test(test_refused),
      cmocka_unit_test(test_too_big),       cmocka_unit_test(test_etag),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
