/* Structured logs: one JSON object per line, on stderr.
 *
 * Every line is written whole by one write(2), so lines from the master and
 * the workers never interleave mid-line. Event lines (info, warn, error) are
 * written at once. Access lines are the exception: a worker writes one per
 * request, so they are gathered in a per-process buffer and written in
 * batches of whole lines (log_end_deferred, log_flush), optionally to their
 * own file (log.access_file). */
#ifndef NNO_HOST_LOG_H
#define NNO_HOST_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <nno/plugin.h>

/* A line's maximum size. At most PIPE_BUF (4096 on Linux), so that a line
 * written alone to a pipe is atomic. */
#define LOG_LINE_MAX 4096
/* Access lines buffered per process before a write is forced. */
#define LOG_BUFFER_MAX (64 * 1024)
/* The longest an access line waits in the buffer: the worker's flush timer
 * (worker.c) writes the buffer this long after its first line. */
#define LOG_FLUSH_MS 100

/* Set the process's role ("master", "worker") and the minimum level; takes
 * the pid afresh (call it again in a forked child). */
void log_init(const char *role, int level);
int log_level_enabled(int level);
/* Parse "debug" | "info" | "warn" | "error"; -1 if unknown. */
int log_level_parse(const char *s);
/* The name log_level_parse reads back ("info" for a level out of range);
 * static storage. */
const char *log_level_name(int level);

/* Build a line field by field. Strings are JSON-escaped and truncated so the
 * line never exceeds LOG_LINE_MAX; a field that no longer fits is left out,
 * with every field after it, so the line stays valid JSON. Keys are our own
 * literals: not escaped. */
typedef struct logline {
  char buf[LOG_LINE_MAX];
  size_t len;
  int full; /* a field was left out: add no more */
} logline;

void log_beginn(logline *l, int level, const char *msg, size_t n);
void log_kstrn(logline *l, const char *key, size_t klen, const char *val,
               size_t n);
void log_kint(logline *l, const char *key, size_t klen, long long v);
/* Write the line now (flushing any buffered access lines first when they go
 * to the same place, so one process's lines keep their order). */
void log_end(logline *l);
/* Where log_end's lines go instead of stderr (the sandbox: LOG frames);
 * NULL: stderr. The sink returns 0, or -1 to have the line on stderr. */
void log_set_sink(int (*sink)(const char *line, size_t n));

/* For a thread other than the process's loop thread (the watchdog): a
 * line begun and written without the timestamp cache or the access
 * buffer, so it races with nothing the loop thread touches. log_str and
 * log_int are safe on the line in between (it is the caller's). */
void log_begin_thread(logline *l, int level, const char *msg);
void log_end_thread(logline *l);

/* The usual forms; inline so that a literal's length is a constant. */
static inline void log_begin(logline *l, int level, const char *msg) {
  log_beginn(l, level, msg, strlen(msg));
}
static inline void log_strn(logline *l, const char *key, const char *val,
                            size_t n) {
  log_kstrn(l, key, strlen(key), val, n);
}
static inline void log_str(logline *l, const char *key, const char *val) {
  log_kstrn(l, key, strlen(key), val, val ? strlen(val) : 0);
}
static inline void log_int(logline *l, const char *key, long long v) {
  log_kint(l, key, strlen(key), v);
}

/* Access lines. log_end_deferred() appends the finished line to the
 * process's buffer (writing the buffer first when the line would not fit)
 * and returns 1 when the line went into an empty buffer: the caller then
 * arms a timer that calls log_flush() within LOG_FLUSH_MS. log_flush()
 * writes what is buffered, in writes of whole lines: one write when the
 * destination is a regular file (Linux writes it under the file's lock, so
 * other processes' lines land before or after it, never inside), else
 * writes of at most PIPE_BUF bytes (pipes, sockets, terminals: POSIX keeps
 * those atomic on pipes). Call it before the process exits; lines still
 * buffered when a process is killed (SIGKILL, a crash) are lost, at most
 * LOG_FLUSH_MS worth and never more than LOG_BUFFER_MAX bytes.
 *
 * THREAD: the calling process's one thread (workers are single-threaded). */
int log_end_deferred(logline *l);
void log_flush(void);
/* Send access lines to `fd` (an O_APPEND file the master opened) instead
 * of stderr; -1: back to stderr. The caller keeps ownership of `fd`. */
void log_access_fd(int fd);

/* log_begin for a signal handler (crash.c): async-signal-safe, it formats
 * the time itself (no gmtime_r, no shared cache). Finish the line with
 * log_end, or log_end_deferred and log_flush for an access line. */
void log_begin_signal(logline *l, int level, const char *msg);

/* A line with just a formatted message. */
void log_msg(int level, const char *fmt, ...) NNO_PRINTF(2, 3);

#define log_info(...) log_msg(NNO_LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(NNO_LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(NNO_LOG_ERROR, __VA_ARGS__)

#endif
