/* Structured logs: one JSON object per line on stderr, written with a single
 * write(2) so lines from the master and workers never interleave. */
#ifndef NNO_HOST_LOG_H
#define NNO_HOST_LOG_H

#include <stddef.h>
#include <stdint.h>

#include <nno/plugin.h>

#define LOG_LINE_MAX 4096

/* Set the process's role ("master", "worker") and the minimum level. */
void log_init(const char *role, int level);
int log_level_enabled(int level);
/* Parse "debug" | "info" | "warn" | "error"; -1 if unknown. */
int log_level_parse(const char *s);

/* Build a line field by field. Strings are JSON-escaped and truncated so the
 * line never exceeds LOG_LINE_MAX. */
typedef struct logline {
  char buf[LOG_LINE_MAX];
  size_t len;
} logline;

void log_begin(logline *l, int level, const char *msg);
void log_str(logline *l, const char *key, const char *val);
void log_strn(logline *l, const char *key, const char *val, size_t n);
void log_int(logline *l, const char *key, long long v);
void log_end(logline *l);

/* A line with just a formatted message. */
void log_msg(int level, const char *fmt, ...) NNO_PRINTF(2, 3);

#define log_info(...) log_msg(NNO_LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(NNO_LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(NNO_LOG_ERROR, __VA_ARGS__)

#endif
