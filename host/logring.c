/* The log ring in shared memory (see logring.h).
 *
 * Layout: a header (the two reservation counters), an index of slots (one
 * per seq modulo their number: seq word, offset, length), then the data
 * bytes, a ring addressed by a 64-bit offset that only grows. A record in
 * the data: its head (seq again, time, lengths, level), the platform, the
 * package, the request id, the line, padded to 8 bytes; it may wrap around
 * the end of the data.
 *
 * Why a record is never returned torn: a writer reserves its bytes (the
 * fetch-add on next_byte) before a release fence and its first store, so a
 * reader that copied any of those stores and then fences (acquire) sees
 * next_byte past the end of what it copied plus the data size, and skips
 * the record. The index slot is reused by seq + nslots: its seq word is
 * zeroed before the slot is rewritten and set last, and the reader checks
 * it before and after the copy, and the seq in the record's head.
 *
 * One writer the counters cannot catch: one that reserved its bytes, was
 * held (descheduled) while the ring went round, and then writes into bytes
 * that newer records own. The record's checksum catches that: a record
 * whose bytes do not sum to its head's sum is skipped. */
#include "logring.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef struct ring_header {
  _Atomic uint64_t next_seq;  /* the seq the next record takes */
  _Atomic uint64_t next_byte; /* the data offset the next record takes */
  uint64_t nslots;
  uint64_t data_bytes;
} ring_header;

typedef struct ring_slot {
  _Atomic uint64_t seq; /* 0: being written, or never */
  _Atomic uint64_t off;
  _Atomic uint64_t len;
} ring_slot;

typedef struct rec_head {
  uint64_t seq;
  uint64_t sum; /* of the whole record, padding included, with sum 0 */
  uint64_t time_ms;
  uint16_t line_len;
  uint8_t level, platform_len, package_len, rid_len;
  uint8_t pad[2];
} rec_head;

#define REC_MAX                                                 \
  (sizeof(rec_head) + 2 * LOGRING_FIELD_MAX + LOGRING_RID_MAX + \
   LOGRING_LINE_MAX + 8)
/* Unpublished records this close to the head are taken as being written:
 * the walk stops before them. Further back, their writer died: skipped. */
#define INFLIGHT_WINDOW 256

static ring_header *hdr;
static ring_slot *slots;
static unsigned char *data;
static size_t map_len;

int logring_init(size_t bytes) {
  if (hdr || bytes == 0) return 0;
  if (bytes < LOGRING_BYTES_MIN || (int64_t)bytes > LOGRING_BYTES_MAX) {
    errno = EINVAL;
    return -1;
  }
  /* One slot per 256 bytes: more records than the data holds of lines of
   * a usual length, so the data, not the index, bounds what is kept. */
  uint64_t nslots = bytes / 256;
  size_t len = sizeof(ring_header) + nslots * sizeof(ring_slot) + bytes;
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) return -1;
  hdr = p; /* zero-filled: every slot unpublished */
  slots = (ring_slot *)(hdr + 1);
  data = (unsigned char *)(slots + nslots);
  hdr->nslots = nslots;
  hdr->data_bytes = bytes;
  atomic_store(&hdr->next_seq, 1);
  map_len = len;
  return 0;
}

void logring_fini(void) {
  if (!hdr) return;
  munmap(hdr, map_len);
  hdr = NULL;
  slots = NULL;
  data = NULL;
  map_len = 0;
}

int logring_enabled(void) {
  return hdr != NULL;
}

uint64_t logring_head(void) {
  return hdr ? atomic_load_explicit(&hdr->next_seq, memory_order_acquire) : 0;
}

static void put(uint64_t off, const void *src, size_t n) {
  size_t at = (size_t)(off % hdr->data_bytes), first = hdr->data_bytes - at;
  if (first > n) first = n;
  memcpy(data + at, src, first);
  if (n > first) memcpy(data, (const unsigned char *)src + first, n - first);
}

static void get(uint64_t off, void *dst, size_t n) {
  size_t at = (size_t)(off % hdr->data_bytes), first = hdr->data_bytes - at;
  if (first > n) first = n;
  memcpy(dst, data + at, first);
  if (n > first) memcpy((unsigned char *)dst + first, data, n - first);
}

/* A checksum of n bytes (n a multiple of 8), a word at a time. */
static uint64_t checksum(const unsigned char *p, size_t n) {
  uint64_t h = 0x6a09e667f3bcc908ull;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  return h;
}

static size_t field_len(const char *s, size_t n, size_t max) {
  return s ? (n > max ? max : n) : 0;
}

uint64_t logring_append(const logring_meta *m, const char *line, size_t n) {
  if (!hdr || !m || !line) return 0;
  if (n && line[n - 1] == '\n') n--;
  if (n == 0 || n > LOGRING_LINE_MAX) return 0;
  rec_head h = {0};
  h.platform_len =
      (uint8_t)field_len(m->platform, m->platform_len, LOGRING_FIELD_MAX);
  if (!h.platform_len) return 0;
  h.package_len =
      (uint8_t)field_len(m->package, m->package_len, LOGRING_FIELD_MAX);
  h.rid_len = (uint8_t)field_len(m->rid, m->rid_len, LOGRING_RID_MAX);
  h.line_len = (uint16_t)n;
  h.level = (uint8_t)(m->level < 0 || m->level > 3 ? 1 : m->level);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts); /* async-signal-safe */
  h.time_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
  size_t total = sizeof h + h.platform_len + h.package_len + h.rid_len + n;
  total = (total + 7) & ~(size_t)7;

  /* The record is made here, then copied into the ring in one go. */
  unsigned char rec[REC_MAX];
  size_t at = sizeof h;
  memcpy(rec + at, m->platform, h.platform_len);
  at += h.platform_len;
  if (h.package_len) memcpy(rec + at, m->package, h.package_len);
  at += h.package_len;
  if (h.rid_len) memcpy(rec + at, m->rid, h.rid_len);
  at += h.rid_len;
  memcpy(rec + at, line, n);
  memset(rec + at + n, 0, total - at - n);

  h.seq = atomic_fetch_add(&hdr->next_seq, 1);
  uint64_t off = atomic_fetch_add(&hdr->next_byte, total);
  memcpy(rec, &h, sizeof h);
  h.sum = checksum(rec, total);
  memcpy(rec, &h, sizeof h);
  ring_slot *s = &slots[h.seq % hdr->nslots];
  atomic_store_explicit(&s->seq, 0, memory_order_relaxed);
  /* Every store below comes after the reservations (see the top). */
  atomic_thread_fence(memory_order_release);
  put(off, rec, total);
  atomic_store_explicit(&s->off, off, memory_order_relaxed);
  atomic_store_explicit(&s->len, total, memory_order_relaxed);
  atomic_store_explicit(&s->seq, h.seq, memory_order_release);
  return h.seq;
}

enum { REC_OK, REC_OTHER, REC_GONE, REC_INFLIGHT };

/* Are the data bytes from `off` on still those written there? */
static int intact(uint64_t off) {
  uint64_t nb = atomic_load_explicit(&hdr->next_byte, memory_order_relaxed);
  return nb - off <= hdr->data_bytes;
}

/* Copy record `seq` into buf (REC_MAX bytes) when it belongs to
 * `platform`: REC_OK with *line and *len pointing into buf, REC_OTHER (another
 * platform's), REC_GONE (overwritten, or torn while read), REC_INFLIGHT
 * (not published yet). */
static int read_rec(uint64_t seq, const char *platform, size_t plen,
                    unsigned char *buf, const char **line, size_t *len) {
  ring_slot *s = &slots[seq % hdr->nslots];
  uint64_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
  if (s1 != seq) return s1 > seq ? REC_GONE : REC_INFLIGHT;
  uint64_t off = atomic_load_explicit(&s->off, memory_order_relaxed);
  uint64_t total = atomic_load_explicit(&s->len, memory_order_relaxed);
  if (total < sizeof(rec_head) || total > REC_MAX || !intact(off))
    return REC_GONE;
  /* The head and the fields first: most records are someone else's. */
  size_t fields = sizeof(rec_head) + 2 * LOGRING_FIELD_MAX + LOGRING_RID_MAX;
  get(off, buf, total < fields ? total : fields);
  rec_head h;
  memcpy(&h, buf, sizeof h);
  size_t need = sizeof h + (size_t)h.platform_len + h.package_len + h.rid_len +
                h.line_len;
  int mine = h.seq == seq && need <= total &&
             (!platform || (h.platform_len == plen &&
                            memcmp(buf + sizeof h, platform, plen) == 0));
  if (mine && total > fields) get(off, buf, total);
  atomic_thread_fence(memory_order_acquire);
  if (atomic_load_explicit(&s->seq, memory_order_relaxed) != seq ||
      !intact(off) || h.seq != seq || need > total)
    return REC_GONE;
  if (!mine) return REC_OTHER;
  uint64_t sum = h.sum;
  h.sum = 0;
  memcpy(buf, &h, sizeof h);
  if (total % 8 || checksum(buf, total) != sum) return REC_GONE;
  *line = (const char *)buf + need - h.line_len;
  *len = h.line_len;
  return REC_OK;
}

int logring_tail(const char *platform, uint64_t since, size_t max,
                 logring_each_fn each, void *ud, uint64_t *next) {
  if (!hdr) return -1;
  uint64_t head = atomic_load_explicit(&hdr->next_seq, memory_order_acquire);
  /* A `since` past the head (a client of a host that restarted since)
   * continues from the head. */
  if (since >= head) since = head - 1;
  uint64_t seq = since + 1;
  if (head > hdr->nslots && seq < head - hdr->nslots) seq = head - hdr->nslots;
  uint64_t last = seq - 1;
  size_t plen = platform ? strlen(platform) : 0;
  unsigned char buf[REC_MAX];
  int given = 0;
  for (; seq < head && (size_t)given < max; seq++) {
    const char *line = NULL;
    size_t len = 0;
    int rc = read_rec(seq, platform, plen, buf, &line, &len);
    if (rc == REC_INFLIGHT && head - seq <= INFLIGHT_WINDOW) break;
    last = seq;
    if (rc != REC_OK) continue;
    given++;
    if (each && each(ud, seq, line, len)) break;
  }
  if (next) *next = last;
  return given;
}
