/* Log lines: valid JSON whatever the input, bounded, and access lines
 * written in batches of whole lines. */
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "log.h"

static json_t *parse(const logline *l) {
  assert_true(l->len >= 2 && l->len <= LOG_LINE_MAX);
  assert_memory_equal(l->buf + l->len - 2, "}\n", 2);
  json_error_t je;
  json_t *j = json_loadb(l->buf, l->len, JSON_ALLOW_NUL, &je);
  if (!j) fail_msg("not JSON (%s): %.*s", je.text, (int)l->len, l->buf);
  return j;
}

/* log_end's closing bytes, without writing anything. */
static void close_line(logline *l) {
  l->buf[l->len++] = '}';
  l->buf[l->len++] = '\n';
}

static void test_fields(void **st) {
  (void)st;
  log_init("worker", NNO_LOG_INFO);
  logline l;
  log_begin(&l, NNO_LOG_WARN, "m\"sg");
  static const char odd[] = "a\"b\\c\n\x01\x7f\xc3\xa9z";
  log_strn(&l, "s", odd, sizeof odd - 1);
  log_str(&l, "null", NULL);
  log_int(&l, "zero", 0);
  log_int(&l, "neg", -42);
  log_int(&l, "min", LLONG_MIN);
  log_int(&l, "max", LLONG_MAX);
  close_line(&l);
  json_t *j = parse(&l);
  const char *ts = json_string_value(json_object_get(j, "ts"));
  assert_non_null(ts);
  assert_int_equal(strlen(ts), 24); /* 2026-12-04T17:07:19.123Z */
  assert_int_equal(ts[10], 'T');
  assert_int_equal(ts[19], '.');
  assert_int_equal(ts[23], 'Z');
  assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
  assert_string_equal(json_string_value(json_object_get(j, "role")), "worker");
  assert_int_equal(json_integer_value(json_object_get(j, "pid")), getpid());
  assert_string_equal(json_string_value(json_object_get(j, "msg")), "m\"sg");
  assert_string_equal(json_string_value(json_object_get(j, "s")), odd);
  assert_string_equal(json_string_value(json_object_get(j, "null")), "");
  assert_int_equal(json_integer_value(json_object_get(j, "zero")), 0);
  assert_int_equal(json_integer_value(json_object_get(j, "neg")), -42);
  assert_true(json_integer_value(json_object_get(j, "min")) == LLONG_MIN);
  assert_true(json_integer_value(json_object_get(j, "max")) == LLONG_MAX);
  json_decref(j);
}

/* Each ASCII byte, at each offset of a value (inside or across the 8-byte
 * words the escaper scans at once), comes back as it went in; bytes from
 * 0x80 up are copied as they are. */
static void test_every_byte_at_every_offset(void **st) {
  (void)st;
  char v[24];
  for (int b = 0; b < 256; b++) {
    for (size_t off = 0; off < sizeof v; off++) {
      memset(v, 'a', sizeof v);
      v[off] = (char)b;
      logline l;
      log_begin(&l, NNO_LOG_INFO, "access");
      log_strn(&l, "v", v, sizeof v);
      close_line(&l);
      if (b >= 0x80) {
        assert_non_null(memmem(l.buf, l.len, v, sizeof v));
        continue;
      }
      json_t *j = parse(&l);
      json_t *got = json_object_get(j, "v");
      assert_int_equal(json_string_length(got), sizeof v);
      assert_memory_equal(json_string_value(got), v, sizeof v);
      json_decref(j);
    }
  }
}

/* Long values are cut so the line stays within LOG_LINE_MAX and valid,
 * wherever the cut falls: in a plain run or at an escape. */
static void test_truncation_keeps_json(void **st) {
  (void)st;
  static char big[3 * LOG_LINE_MAX];
  for (size_t pattern = 0; pattern < 3; pattern++) {
    for (size_t i = 0; i < sizeof big; i++)
      big[i] = pattern == 0 ? 'x' : pattern == 1 ? '"' : (i % 7 ? 'y' : '\x02');
    for (size_t pre = 0; pre < 40; pre++) {
      logline l;
      log_begin(&l, NNO_LOG_INFO, "access");
      log_strn(&l, "p", big, pre * 97);
      log_strn(&l, "v", big, sizeof big);
      log_int(&l, "after", 7);
      log_strn(&l, "more", big, 100);
      close_line(&l);
      json_decref(parse(&l));
    }
  }
}

/* Access lines go out in writes of whole lines, each at most PIPE_BUF
 * bytes when the destination is not a regular file. A SEQPACKET socket
 * keeps every write a message of its own, so the test sees each write. */
static void test_batches_of_whole_lines(void **st) {
  (void)st;
  int sp[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
  int big = 4 << 20;
  setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  setsockopt(sp[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  log_access_fd(sp[0]);
  char path[300];
  memset(path, 'p', sizeof path);
  int first = 0;
  const int nlines = 300; /* ~100 KiB: one forced flush, one at the end */
  for (int i = 0; i < nlines; i++) {
    logline l;
    log_begin(&l, NNO_LOG_INFO, "access");
    log_strn(&l, "path", path, sizeof path);
    log_int(&l, "n", i);
    first += log_end_deferred(&l);
  }
  assert_true(first >= 2); /* the buffer filled and started again */
  log_flush();
  log_access_fd(-1);
  close(sp[0]);
  static char msg[2 * PIPE_BUF];
  int seen = 0, writes = 0;
  ssize_t n;
  while ((n = recv(sp[1], msg, sizeof msg, 0)) > 0) {
    writes++;
    assert_true(n <= PIPE_BUF);
    assert_int_equal(msg[0], '{');
    assert_int_equal(msg[n - 1], '\n');
    for (char *p = msg; p < msg + n;) {
      char *nl = memchr(p, '\n', (size_t)(msg + n - p));
      json_error_t je;
      json_t *j = json_loadb(p, (size_t)(nl - p), 0, &je);
      assert_non_null(j);
      assert_int_equal(json_integer_value(json_object_get(j, "n")), seen);
      json_decref(j);
      seen++;
      p = nl + 1;
    }
  }
  close(sp[1]);
  assert_int_equal(seen, nlines);
  assert_true(writes < nlines / 4); /* several lines per write */
}

/* Only the first line into an empty buffer asks for the flush timer. */
static void test_first_line_arms_the_timer(void **st) {
  (void)st;
  char tmpl[] = "/tmp/nno-test-log-XXXXXX";
  int fd = mkstemp(tmpl);
  assert_true(fd >= 0);
  unlink(tmpl);
  log_access_fd(fd);
  logline l;
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 3; i++) {
      log_begin(&l, NNO_LOG_INFO, "access");
      assert_int_equal(log_end_deferred(&l), i == 0);
    }
    log_flush();
  }
  log_access_fd(-1);
  char buf[4096];
  ssize_t n = pread(fd, buf, sizeof buf, 0);
  close(fd);
  int lines = 0;
  for (ssize_t i = 0; i < n; i++) lines += buf[i] == '\n';
  assert_int_equal(lines, 6);
}

/* An event line written at once goes after the access lines buffered
 * before it, when both go to stderr: one process's lines keep their
 * order. */
static void test_event_line_flushes_access_lines_first(void **st) {
  (void)st;
  int sp[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  assert_int_equal(dup2(sp[0], STDERR_FILENO), STDERR_FILENO);
  log_access_fd(-1);
  logline l;
  log_begin(&l, NNO_LOG_INFO, "access");
  log_end_deferred(&l);
  log_msg(NNO_LOG_ERROR, "event");
  log_flush();
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(sp[0]);
  char msg[PIPE_BUF];
  ssize_t n = recv(sp[1], msg, sizeof msg, 0);
  assert_true(n > 0 && memmem(msg, (size_t)n, "\"msg\":\"access\"", 14));
  n = recv(sp[1], msg, sizeof msg, 0);
  assert_true(n > 0 && memmem(msg, (size_t)n, "\"msg\":\"event\"", 13));
  assert_true(recv(sp[1], msg, sizeof msg, MSG_DONTWAIT) <= 0);
  close(sp[1]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fields),
      cmocka_unit_test(test_every_byte_at_every_offset),
      cmocka_unit_test(test_truncation_keeps_json),
      cmocka_unit_test(test_batches_of_whole_lines),
      cmocka_unit_test(test_first_line_arms_the_timer),
      cmocka_unit_test(test_event_line_flushes_access_lines_first),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
