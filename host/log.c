/* JSON log lines: events written at once, access lines in batches. */
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Static_assert(LOG_LINE_MAX <= PIPE_BUF,
               "a log line must fit one atomic pipe write");
_Static_assert(LOG_BUFFER_MAX >= 4 * LOG_LINE_MAX,
               "the access buffer holds several lines");

static const char *g_role = "nno";
static int g_level = NNO_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* What follows the timestamp's milliseconds up to the message's value, per
 * level: `Z","level":"info","role":"worker","pid":123,"msg":`. Built by
 * log_init (the pid changes across fork), or on first use. */
static char g_mid[4][128];
static size_t g_mid_len[4];
static int g_mid_ready;

/* `{"ts":"2026-12-04T17:07:19.` for the second in ts_sec: formatted once
 * a second, the milliseconds patched in per line. */
static time_t ts_sec = (time_t)-1;
static char ts_head[48];
static size_t ts_head_len;

/* Access lines waiting to be written, whole lines only. */
static char abuf[LOG_BUFFER_MAX];
static size_t alen;
static int afd = STDERR_FILENO;
static size_t achunk; /* largest write; 0: not chosen yet for afd */

static void build_mid(void) {
  long pid = (long)getpid();
  for (int i = 0; i < 4; i++) {
    int n = snprintf(g_mid[i], sizeof g_mid[i],
                     "Z\",\"level\":\"%s\",\"role\":\"%s\",\"pid\":%ld,"
                     "\"msg\":",
                     level_names[i], g_role, pid);
    g_mid_len[i] = n > 0 && (size_t)n < sizeof g_mid[i] ? (size_t)n : 0;
  }
  g_mid_ready = 1;
}

void log_init(const char *role, int level) {
  g_role = role;
  g_level = level;
  build_mid();
}

int log_level_enabled(int level) {
  return level >= g_level;
}

int log_level_parse(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, level_names[i]) == 0) return i;
  return -1;
}

const char *log_level_name(int level) {
  return level >= 0 && level < 4 ? level_names[level] : "info";
}

static void put(logline *l, const char *s, size_t n) {
  /* Keep two bytes for the closing "}\n". */
  if (l->len + n > LOG_LINE_MAX - 2) n = LOG_LINE_MAX - 2 - l->len;
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}

/* 1 for the bytes a JSON string takes as they are: not a control
 * character, '"', '\\' or DEL. A table: one load per byte of a value. */
static const unsigned char plain_byte[256] = {
    [0x20 ... 0x21] = 1, /* '"' is 0x22 */
    [0x23 ... 0x5b] = 1, /* '\\' is 0x5c */
    [0x5d ... 0x7e] = 1,
    [0x80 ... 0xff] = 1};
#define plain(c) plain_byte[(unsigned char)(c)]

/* The length of the run of plain bytes that starts s[0..n). Eight bytes at
 * a time while none of them can need escaping (the classic "has a byte less
 * than / equal to" word tests: exact about whether one exists, which is all
 * that is asked), then byte by byte from the first word that might. */
static size_t plain_run(const char *s, size_t n) {
  const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x, q, b, d;
    memcpy(&x, s + i, 8);
    q = x ^ (ones * '"');
    b = x ^ (ones * '\\');
    d = x ^ (ones * 0x7f);
    if ((((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b) |
         ((d - ones) & ~d)) &
        high)
      break;
  }
  while (i < n && plain(s[i])) i++;
  return i;
}

static void put_escaped(logline *l, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  put(l, "\"", 1);
  size_t i = 0;
  /* Copy runs of plain bytes at once; keep room for the worst escape (6
   * bytes), the closing quote and "}\n". */
  while (i < n && l->len + 10 <= LOG_LINE_MAX) {
    size_t room = LOG_LINE_MAX - 9 - l->len;
    size_t end = n - i < room ? n : i + room;
    size_t j = i + plain_run(s + i, end - i);
    memcpy(l->buf + l->len, s + i, j - i);
    l->len += j - i;
    i = j;
    if (i == n || i == end || l->len + 10 > LOG_LINE_MAX) break;
    unsigned char c = (unsigned char)s[i++];
    if (c == '"' || c == '\\') {
      l->buf[l->len++] = '\\';
      l->buf[l->len++] = (char)c;
    } else {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      memcpy(l->buf + l->len, e, 6);
      l->len += 6;
    }
  }
  put(l, "\"", 1);
}

/* Start a field: 0, or -1 when the key and the shortest value (an empty
 * string, or a 20-digit number) would not fit before the closing "}\n". */
static int put_key(logline *l, const char *key, size_t klen) {
  if (l->full || l->len + klen + 4 + 21 + 2 > LOG_LINE_MAX) {
    l->full = 1;
    return -1;
  }
  memcpy(l->buf + l->len, ",\"", 2);
  memcpy(l->buf + l->len + 2, key, klen);
  memcpy(l->buf + l->len + 2 + klen, "\":", 2);
  l->len += klen + 4;
  return 0;
}

/* Start a line. `cached`: through the once-a-second timestamp cache
 * (the process's own thread); 0: formatted here alone (another thread). */
static void begin(logline *l, int level, const char *msg, size_t msg_len,
                  int cached) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (!cached) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(l->buf, sizeof l->buf,
                     "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
    l->len = n > 0 && n < 48 ? (size_t)n : 0;
  } else if (ts.tv_sec != ts_sec) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n =
        snprintf(ts_head, sizeof ts_head,
                 "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    ts_head_len = n > 0 && (size_t)n < sizeof ts_head ? (size_t)n : 0;
    ts_sec = ts.tv_sec;
  }
  if (!g_mid_ready) build_mid();
  if (level < 0 || level > 3) level = NNO_LOG_INFO;
  int ms = (int)(ts.tv_nsec / 1000000);
  if (cached) {
    memcpy(l->buf, ts_head, ts_head_len);
    l->len = ts_head_len;
  }
  l->full = 0;
  l->buf[l->len++] = (char)('0' + ms / 100);
  l->buf[l->len++] = (char)('0' + ms / 10 % 10);
  l->buf[l->len++] = (char)('0' + ms % 10);
  memcpy(l->buf + l->len, g_mid[level], g_mid_len[level]);
  l->len += g_mid_len[level];
  put_escaped(l, msg, msg_len);
}

void log_beginn(logline *l, int level, const char *msg, size_t msg_len) {
  begin(l, level, msg, msg_len, 1);
}

void log_begin_thread(logline *l, int level, const char *msg) {
  begin(l, level, msg, strlen(msg), 0);
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm): pure
 * arithmetic, for log_begin_signal. */
static void civil(int64_t days, int *y, int *m, int *d) {
  days += 719468;
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  int64_t doe = days - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

static char *digits(char *p, int v, int n) {
  for (int i = n - 1; i >= 0; i--, v /= 10) p[i] = (char)('0' + v % 10);
  return p + n;
}

void log_begin_signal(logline *l, int level, const char *msg) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t s = (int64_t)ts.tv_sec, days = s / 86400, rem = s % 86400;
  int y, mo, d;
  civil(days, &y, &mo, &d);
  char *p = l->buf;
  memcpy(p, "{\"ts\":\"", 7);
  p = digits(p + 7, y, 4);
  *p++ = '-';
  p = digits(p, mo, 2);
  *p++ = '-';
  p = digits(p, d, 2);
  *p++ = 'T';
  p = digits(p, (int)(rem / 3600), 2);
  *p++ = ':';
  p = digits(p, (int)(rem / 60 % 60), 2);
  *p++ = ':';
  p = digits(p, (int)(rem % 60), 2);
  *p++ = '.';
  p = digits(p, (int)(ts.tv_nsec / 1000000), 3);
  l->len = (size_t)(p - l->buf);
  l->full = 0;
  if (level < 0 || level > 3) level = NNO_LOG_INFO;
  /* Built by log_init, before any signal handler is installed. */
  memcpy(l->buf + l->len, g_mid[level], g_mid_len[level]);
  l->len += g_mid_len[level];
  put_escaped(l, msg, strlen(msg));
}

void log_kstrn(logline *l, const char *key, size_t klen, const char *val,
               size_t n) {
  if (put_key(l, key, klen) == 0) put_escaped(l, val ? val : "", val ? n : 0);
}

void log_kint(logline *l, const char *key, size_t klen, long long v) {
  char num[24];
  size_t n = sizeof num;
  unsigned long long u =
      v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
  do {
    num[--n] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) num[--n] = '-';
  if (put_key(l, key, klen) == 0) put(l, num + n, sizeof num - n);
}

static void finish(logline *l) {
  l->buf[l->len++] = '}';
  l->buf[l->len++] = '\n';
}

/* Write all of p[0..n), retrying interrupted and partial writes; a
 * non-blocking descriptor that is full is waited for up to a second. On
 * any other failure the bytes are dropped: logging never stops serving. */
static void write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      if (poll(&pfd, 1, 1000) <= 0) return;
    } else {
      return;
    }
  }
}

static int (*g_sink)(const char *line, size_t n);

void log_set_sink(int (*sink)(const char *line, size_t n)) {
  g_sink = sink;
}

void log_end(logline *l) {
  finish(l);
  if (alen && afd == STDERR_FILENO) log_flush();
  if (g_sink && g_sink(l->buf, l->len) == 0) return;
  write_all(STDERR_FILENO, l->buf, l->len);
}

void log_access_fd(int fd) {
  log_flush();
  afd = fd >= 0 ? fd : STDERR_FILENO;
  achunk = 0;
}

int log_end_deferred(logline *l) {
  finish(l);
  if (alen + l->len > sizeof abuf) log_flush();
  memcpy(abuf + alen, l->buf, l->len);
  alen += l->len;
  return alen == l->len;
}

void log_flush(void) {
  if (!alen) return;
  if (!achunk) {
    /* Regular files take the whole buffer in one write; anything else
     * (a pipe to a log collector, a socket, a terminal) writes of at most
     * PIPE_BUF bytes, the size POSIX keeps whole on a pipe. */
    struct stat st;
    achunk =
        fstat(afd, &st) == 0 && S_ISREG(st.st_mode) ? sizeof abuf : PIPE_BUF;
  }
  size_t off = 0;
  while (off < alen) {
    size_t n = alen - off;
    if (n > achunk) {
      /* Cut after the last whole line that fits; every line is at most
       * LOG_LINE_MAX <= PIPE_BUF bytes, so there is one. */
      const char *nl = memrchr(abuf + off, '\n', achunk);
      n = nl ? (size_t)(nl - (abuf + off)) + 1 : achunk;
    }
    write_all(afd, abuf + off, n);
    off += n;
  }
  alen = 0;
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

void log_end_thread(logline *l) {
  finish(l);
  write_all(STDERR_FILENO, l->buf, l->len);
}
