/* JSON log lines on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *g_role = "nno";
static int g_level = NNO_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *role, int level) {
  g_role = role;
  g_level = level;
}

int log_level_enabled(int level) { return level >= g_level; }

int log_level_parse(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, level_names[i]) == 0) return i;
  return -1;
}

static void put(logline *l, const char *s, size_t n) {
  /* Keep two bytes for the closing "}\n". */
  if (l->len + n > LOG_LINE_MAX - 2) n = LOG_LINE_MAX - 2 - l->len;
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}

static void put_escaped(logline *l, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  put(l, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    /* Leave room for the worst escape, the closing quote and "}\n". */
    if (l->len + 10 > LOG_LINE_MAX) break;
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put(l, e, 2);
    } else if (c < 0x20 || c == 0x7f) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      put(l, e, 6);
    } else {
      l->buf[l->len++] = (char)c;
    }
  }
  put(l, "\"", 1);
}

void log_begin(logline *l, int level, const char *msg) {
  struct timeval tv;
  struct tm tm;
  char ts[64];
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  int n = snprintf(ts, sizeof ts, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
  l->len = 0;
  put(l, ts, (size_t)n);
  if (level < 0 || level > 3) level = NNO_LOG_INFO;
  log_str(l, "level", level_names[level]);
  log_str(l, "role", g_role);
  log_int(l, "pid", (long long)getpid());
  log_str(l, "msg", msg);
}

void log_strn(logline *l, const char *key, const char *val, size_t n) {
  put(l, ",", 1);
  put_escaped(l, key, strlen(key));
  put(l, ":", 1);
  put_escaped(l, val ? val : "", val ? n : 0);
}

void log_str(logline *l, const char *key, const char *val) {
  log_strn(l, key, val, val ? strlen(val) : 0);
}

void log_int(logline *l, const char *key, long long v) {
  char num[32];
  int n = snprintf(num, sizeof num, "%lld", v);
  put(l, ",", 1);
  put_escaped(l, key, strlen(key));
  put(l, ":", 1);
  put(l, num, (size_t)n);
}

void log_end(logline *l) {
  l->buf[l->len++] = '}';
  l->buf[l->len++] = '\n';
  /* One write so concurrent processes' lines stay whole (O_APPEND pipes
   * and files keep writes under PIPE_BUF atomic). */
  ssize_t r = write(STDERR_FILENO, l->buf, l->len);
  (void)r;
}

void log_msg(int level, const char *fmt, ...) {
  if (!log_level_enabled(level)) return;
  char msg[LOG_LINE_MAX / 2];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  logline l;
  log_begin(&l, level, msg);
  log_end(&l);
}
