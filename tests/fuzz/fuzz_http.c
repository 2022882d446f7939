/* The HTTP request reader (host/http.c), fed a byte stream of pipelined
 * requests three ways: whole, split in two at a point the fuzzer chooses,
 * and (for small inputs, when asked) one byte at a time. Every way must
 * produce the same transcript: the same requests, fields, bodies and
 * verdicts, and the same error status at the same place.
 *
 * Input: byte 0 flags (bit 0: small limits, so 413/414/431 are reachable;
 * bit 1: also feed byte by byte), bytes 1-2 the split point (big-endian,
 * taken modulo the stream length + 1), then the stream. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

typedef struct transcript {
  char *p;
  size_t len, cap;
} transcript;

static void put(transcript *t, const void *data, size_t n) {
  if (t->len + n > t->cap) {
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + n) cap *= 2;
    t->p = realloc(t->p, cap);
    FUZZ_ASSERT(t->p != NULL);
    t->cap = cap;
  }
  memcpy(t->p + t->len, data, n);
  t->len += n;
}

static void put_num(transcript *t, uint64_t v) { put(t, &v, sizeof v); }

static void put_str(transcript *t, const char *s, size_t n) {
  put_num(t, n);
  put(t, s, n);
}

static int valid_status(int s) {
  return s == 400 || s == 413 || s == 414 || s == 417 || s == 431 ||
         s == 500 || s == 501 || s == 505;
}

/* A span the reader hands out is NUL-terminated where it says it ends. */
static void check_span(const char *s, size_t n) {
  FUZZ_ASSERT(s != NULL);
  FUZZ_ASSERT(s[n] == '\0');
}

/* The head fields, checked and written to the transcript. */
static void record_head(transcript *t, const http_request *q,
                        const http_limits *lim) {
  check_span(q->method, q->method_len);
  check_span(q->target, q->target_len);
  check_span(q->path, q->path_len);
  check_span(q->query, q->query_len);
  check_span(q->host, q->host_len);
  FUZZ_ASSERT(q->method_len > 0 && q->target_len > 0 && q->path_len > 0);
  FUZZ_ASSERT(q->version_major == 1);
  FUZZ_ASSERT(q->version_minor == 0 || q->version_minor == 1);
  FUZZ_ASSERT(q->keep_alive == 0 || q->keep_alive == 1);
  FUZZ_ASSERT(q->head == 0 || q->head == 1);
  FUZZ_ASSERT(q->nheaders <= lim->max_headers);
  FUZZ_ASSERT(q->path[0] == '/' || (q->path_len == 1 && q->path[0] == '*'));
  /* The head as received fits the limit; the copies made after it do not
   * count. */
  FUZZ_ASSERT(q->method_len + q->target_len < lim->max_header_bytes);
  put_str(t, q->method, q->method_len);
  put_str(t, q->target, q->target_len);
  put_str(t, q->path, q->path_len);
  put_str(t, q->query, q->query_len);
  put_str(t, q->host, q->host_len);
  put_num(t, (uint64_t)q->version_minor);
  put_num(t, (uint64_t)(q->keep_alive | q->expect_continue << 1 |
                        q->head << 2));
  put_num(t, q->nheaders);
  for (size_t i = 0; i < q->nheaders; i++) {
    const http_header *h = &q->headers[i];
    check_span(h->name, h->name_len);
    check_span(h->value, h->value_len);
    FUZZ_ASSERT(h->name_len > 0);
    FUZZ_ASSERT(http_request_header(q, h->name) != NULL);
    put_str(t, h->name, h->name_len);
    put_str(t, h->value, h->value_len);
  }
}

/* Feeds the chunks in order, pipelined requests one after the other, and
 * writes what happened. */
static void run(const http_limits *lim, const uint8_t *const *chunk,
                const size_t *chunk_len, size_t nchunks, transcript *t) {
  http_reader *r = http_reader_new(lim);
  FUZZ_ASSERT(r != NULL);
  size_t requests = 0;
  for (size_t c = 0; c < nchunks; c++) {
    const char *p = (const char *)chunk[c];
    size_t left = chunk_len[c];
    for (;;) {
      size_t used = 0;
      http_event ev = http_reader_feed(r, p, left, &used);
      FUZZ_ASSERT(used <= left);
      p += used;
      left -= used;
      if (ev == HTTP_NEED_MORE) {
        FUZZ_ASSERT(left == 0);
        FUZZ_ASSERT(http_reader_error_status(r) == 0);
        break;
      }
      if (ev == HTTP_ERROR) {
        int st = http_reader_error_status(r);
        const char *d = http_reader_error_detail(r);
        FUZZ_ASSERT(valid_status(st));
        FUZZ_ASSERT(d != NULL && d[0] != '\0');
        put(t, "E", 1);
        put_num(t, (uint64_t)st);
        put_str(t, d, strlen(d));
        goto out;
      }
      const http_request *q = http_reader_request(r);
      FUZZ_ASSERT(q != NULL && http_reader_head_done(r));
      if (ev == HTTP_HEAD_DONE) {
        put(t, "H", 1);
        record_head(t, q, lim);
        continue; /* the body (maybe none) follows: feed again */
      }
      FUZZ_ASSERT(ev == HTTP_MESSAGE_DONE);
      check_span(q->body, q->body_len);
      FUZZ_ASSERT(q->body_len <= lim->max_body_bytes);
      put(t, "M", 1);
      put_str(t, q->body, q->body_len);
      /* A done reader stays done until reset. */
      size_t again = 0;
      FUZZ_ASSERT(http_reader_feed(r, p, left, &again) == HTTP_MESSAGE_DONE);
      FUZZ_ASSERT(again == 0);
      if (!q->keep_alive || ++requests >= 64) goto out;
      http_reader_reset(r);
      FUZZ_ASSERT(!http_reader_head_done(r) && !http_reader_request(r));
    }
  }
  /* The input ended: mid-request or between requests. */
  put(t, http_reader_started(r) ? "S" : "I", 1);
  put_num(t, (uint64_t)http_reader_head_done(r));
out:
  http_reader_free(r);
}

static void compare(const transcript *a, const transcript *b,
                    const char *how) {
  if (a->len == b->len && memcmp(a->p, b->p, a->len) == 0) return;
  fprintf(stderr, "transcripts differ: whole vs %s (%zu vs %zu bytes)\n", how,
          a->len, b->len);
  FUZZ_ASSERT(!"whole and split feeding agree");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  uint8_t flags = data[0];
  size_t at = (size_t)data[1] << 8 | data[2];
  const uint8_t *s = data + 3;
  size_t n = size - 3;
  http_limits lim = {0, 0, 0, 0};
  if (flags & 1) lim = (http_limits){96, 4, 16, 48};
  else lim = (http_limits){32768, 100, 1 << 20, 8192};
  at %= n + 1;

  transcript whole = {0}, split = {0}, bytes = {0};
  {
    const uint8_t *c[1] = {s};
    size_t l[1] = {n};
    run(&lim, c, l, 1, &whole);
  }
  {
    const uint8_t *c[2] = {s, s + at};
    size_t l[2] = {at, n - at};
    run(&lim, c, l, 2, &split);
  }
  compare(&whole, &split, "split");
  if ((flags & 2) && n <= 2048) {
    const uint8_t *c[2048];
    size_t l[2048];
    for (size_t i = 0; i < n; i++) c[i] = s + i, l[i] = 1;
    run(&lim, c, l, n, &bytes);
    compare(&whole, &bytes, "byte by byte");
  }
  free(whole.p);
  free(split.p);
  free(bytes.p);
  return 0;
}
