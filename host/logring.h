/* The log ring: the recent log lines that belong to a platform, in a
 * shared-memory segment the master maps before forking, so that every
 * process appends to it and any worker reads all of it (the logs API).
 *
 * A record: {seq, time, level, platform, package, request id, the JSON
 * line}. seq is a 64-bit counter shared by every process, 1 for the first
 * record, never reused. The ring holds the newest records that fit in its
 * bytes; older ones are overwritten.
 *
 * Writers never wait: two atomic fetch-adds reserve a seq and the bytes,
 * the record is copied in, and its seq word in the index, written last,
 * publishes it. A writer killed in the middle leaves a record nobody
 * publishes: readers skip it. Readers take no lock: they copy a record and
 * check afterwards (seqlock style) that no writer reserved its bytes or its
 * index slot meanwhile; a record overwritten while being read is skipped,
 * never returned torn.
 *
 * THREAD: any process that inherited the segment; the append is
 * async-signal-safe (the crash handler calls it). */
#ifndef NNO_HOST_LOGRING_H
#define NNO_HOST_LOGRING_H

#include <stddef.h>
#include <stdint.h>

/* The line's maximum (log.h's LOG_LINE_MAX) and the fields' maximums;
 * longer fields are cut, a longer line is not recorded. */
#define LOGRING_LINE_MAX 4096
#define LOGRING_FIELD_MAX 64
#define LOGRING_RID_MAX 71
/* Sizes log.ring_bytes may take (0: no ring). */
#define LOGRING_BYTES_MIN (64 * 1024)
#define LOGRING_BYTES_MAX ((int64_t)1 << 30)
#define LOGRING_BYTES_DEFAULT (4 * 1024 * 1024)

/* What a record says besides its line. Strings need not be terminated;
 * NULL or 0 length: empty. */
typedef struct logring_meta {
  const char *platform;
  size_t platform_len;
  const char *package;
  size_t package_len;
  const char *rid;
  size_t rid_len;
  int level;
} logring_meta;

/* Map a ring of `bytes` (LOGRING_BYTES_MIN..MAX; 0 maps nothing and
 * appends are dropped). Master, once, before fork. 0, or -1 with errno. A
 * second call while mapped does nothing. */
int logring_init(size_t bytes);
/* Unmap (tests; the master keeps it until exit). */
void logring_fini(void);
/* 1 when a ring is mapped. */
int logring_enabled(void);

/* Append `line` (n bytes, a trailing newline is dropped) for meta's
 * platform, which must not be empty. Returns the record's seq, or 0 when
 * not recorded (no ring, no platform, a line over LOGRING_LINE_MAX). */
uint64_t logring_append(const logring_meta *m, const char *line, size_t n);

/* Called for each record given: its seq and its line (borrowed until the
 * callback returns, not terminated). Non-zero stops the walk. */
typedef int (*logring_each_fn)(void *ud, uint64_t seq, const char *line,
                               size_t len);

/* Give `each` the records of `platform` (NULL: every platform) with seq >
 * `since`, oldest first, at most `max`. *next receives the seq to pass as
 * `since` to continue (at least `since`): records not yet published by a
 * writer still copying them end the walk there, so a later call gives
 * them. Returns the number given, or -1 when no ring is mapped. */
int logring_tail(const char *platform, uint64_t since, size_t max,
                 logring_each_fn each, void *ud, uint64_t *next);

/* The seq the next record will take (1 on an empty ring; 0: no ring). */
uint64_t logring_head(void);

#endif
