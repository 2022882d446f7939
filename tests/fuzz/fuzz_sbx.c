/* What a worker reads from a sandbox (host/sbx_wire.c, host/sbx_proto.c):
 * a stream of frames as a hostile sandbox could write them, split with
 * sbx_frame_ready and decoded by type (READY, FAIL, RES, CALL, LOG,
 * RECYCLE); every RES, and RES_BLOB's head, applied to a request with
 * sbx_res_apply. Checked:
 *   - sbx_frame_ready never announces more than the bytes given, nor a
 *     frame over its bound, and splitting the stream whole or with a cut
 *     at any point gives the same frames;
 *   - a decoded string lies inside its frame and is NUL-terminated there,
 *     a text field holds no NUL; counts within their bounds;
 *   - an applied response is one the host lets a handler give: status in
 *     200..599, a header block of "Name: value\r\n" lines without a bare
 *     CR or LF in them and none of the reserved names, a body within
 *     max_body; a refused one is a 502 problem naming the request id.
 *
 * Input: one byte of max_body (in KiB, 0: 64 bytes), then the frames. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nno/plugin.h>

#include "fuzz.h"
#include "http.h"
#include "req.h"
#include "sbx_proto.h"
#include "sbx_wire.h"

#define STREAM_MAX (1u << 20)

static const char *lo, *hi; /* the current frame's payload */

static void in_frame(const char *s, size_t n) {
  FUZZ_ASSERT(s >= lo && s + n < hi);
  FUZZ_ASSERT(s[n] == '\0');
}

static void text_in_frame(const char *s) {
  size_t n = strlen(s);
  if (n == 0 && !(s >= lo && s <= hi)) return; /* a static "" */
  in_frame(s, n);
}

/* The header block a request holds: lines, no stray CR/LF, no reserved
 * names. */
static void check_headers(const buf *b) {
  static const char *const reserved[] = {"content-length", "connection", "date",
                                         "transfer-encoding", "x-request-id"};
  size_t i = 0;
  while (i < b->len) {
    const char *l = b->p + i;
    const char *eol = memchr(l, '\r', b->len - i);
    FUZZ_ASSERT(eol && (size_t)(eol - b->p) + 1 < b->len && eol[1] == '\n');
    FUZZ_ASSERT(!memchr(l, '\n', (size_t)(eol - l)));
    const char *colon = memchr(l, ':', (size_t)(eol - l));
    FUZZ_ASSERT(colon && colon > l);
    for (size_t k = 0; k < sizeof reserved / sizeof *reserved; k++)
      FUZZ_ASSERT(!((size_t)(colon - l) == strlen(reserved[k]) &&
                    strncasecmp(l, reserved[k], strlen(reserved[k])) == 0));
    i = (size_t)(eol - b->p) + 2;
  }
}

static nno_req *req;
static http_request hr;

static void apply(const sbx_res *m, int event) {
  req_reset(req);
  req->hr = &hr;
  req->active = 1;
  char why[128];
  int rc = sbx_res_apply(req, m, event, why, sizeof why);
  if (rc != 0) {
    FUZZ_ASSERT(req->status == 502);
    FUZZ_ASSERT(why[0]);
    static const char want[] = "\"request_id\":\"fuzz-rid\"";
    FUZZ_ASSERT(memmem(req->body.p, req->body.len, want, sizeof want - 1));
  }
  if (req->written) FUZZ_ASSERT(req->status >= 200 && req->status <= 599);
  FUZZ_ASSERT(req->body.len <= req->max_body || req->status == 502 ||
              req->status == 500);
  check_headers(&req->headers);
  check_headers(&req->keep);
}

static void one_frame(const char *f) {
  sbx_frame_head h;
  memcpy(&h, f, sizeof h);
  const char *p = f + sizeof h;
  lo = p;
  hi = p + h.len;
  switch (h.type) {
  case SBX_MSG_READY: {
    static sbx_ready m;
    if (sbx_decode_ready(p, h.len, &m) != 0) break;
    FUZZ_ASSERT(m.npackages <= SBX_READY_PACKAGES_MAX);
    for (uint32_t i = 0; i < m.npackages; i++) {
      text_in_frame(m.pkgs[i].name);
      text_in_frame(m.pkgs[i].version);
      FUZZ_ASSERT(m.pkgs[i].nroutes <= SBX_READY_ROUTES_MAX);
      for (uint32_t j = 0; j < m.pkgs[i].nroutes; j++) {
        text_in_frame(m.pkgs[i].routes[j].method);
        text_in_frame(m.pkgs[i].routes[j].pattern);
      }
    }
    break;
  }
  case SBX_MSG_FAIL: {
    const char *file, *msg;
    if (sbx_decode_fail(p, h.len, &file, &msg) == 0) {
      text_in_frame(file);
      text_in_frame(msg);
    }
    break;
  }
  case SBX_MSG_RES: {
    sbx_res m;
    if (sbx_decode_res(p, h.len, &m) != 0) break;
    in_frame(m.headers, m.headers_len);
    in_frame(m.keep, m.keep_len);
    in_frame(m.body, m.body_len);
    apply(&m, h.flags & 1); /* flag bit 0: as a platform event's */
    break;
  }
  case SBX_MSG_CALL: {
    static sbx_callmsg m;
    if (sbx_decode_call(p, h.len, &m) != 0) break;
    for (int i = 0; i < 4; i++)
      if (m.n[i]) in_frame(m.s[i], m.n[i]);
    FUZZ_ASSERT(m.nhdr <= SBX_FETCH_HEADERS_MAX && !m.hdr[m.nhdr]);
    for (uint32_t i = 0; i < m.nhdr; i++) text_in_frame(m.hdr[i]);
    if (m.op == SBX_CALL_RES_BLOB) apply(&m.res, 0);
    break;
  }
  case SBX_MSG_LOG: {
    uint8_t lvl;
    const char *msg;
    size_t n;
    if (sbx_decode_log(p, h.len, &lvl, &msg, &n) != 0) break;
    FUZZ_ASSERT(n <= SBX_LOG_MAX && lvl <= NNO_LOG_ERROR);
    in_frame(msg, n); /* any bytes: the log writer escapes them */
    break;
  }
  case SBX_MSG_RECYCLE: {
    const char *why;
    if (sbx_decode_recycle(p, h.len, &why) == 0) text_in_frame(why);
    break;
  }
  default:
    break;
  }
}

/* Split `s` into frames; the lengths of those found, in *lens. */
static size_t split(const char *s, size_t n, long *lens, size_t max) {
  size_t off = 0, k = 0;
  while (k < max) {
    long fl = sbx_frame_ready(s + off, n - off, 1u << 20);
    FUZZ_ASSERT(fl <= (long)(n - off));
    if (fl <= 0) break;
    FUZZ_ASSERT((size_t)fl >= sizeof(sbx_frame_head));
    lens[k++] = fl;
    off += (size_t)fl;
  }
  return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > STREAM_MAX) return 0;
  if (!req) {
    req = calloc(1, sizeof *req);
    if (!req) return 0;
    req_reset(req);
    memcpy(req->rid, "fuzz-rid", 9);
    req->rid_len = 8;
    hr.method = "GET";
    hr.method_len = 3;
    hr.path = hr.target = "/";
    hr.path_len = hr.target_len = 1;
    hr.query = hr.host = "";
  }
  req->max_body = data[0] ? (size_t)data[0] << 10 : 64;
  /* Frames are read from an aligned copy, as from the worker's buffer. */
  size_t n = size - 1;
  char *s = malloc(n + 1);
  if (!s) return 0;
  memcpy(s, data + 1, n);
  s[n] = '\0';
  static long lens[4096], lens2[4096];
  size_t k = split(s, n, lens, 4096);
  /* The same frames whatever way the bytes arrive: cut in the middle. */
  size_t cut = n / 2, off = 0, k2 = 0;
  {
    size_t o = 0, i = 0;
    while (i < k && o + (size_t)lens[i] <= cut) o += (size_t)lens[i++];
    k2 = split(s, o, lens2, 4096);
    FUZZ_ASSERT(k2 == i);
    for (size_t j = 0; j < k2; j++) FUZZ_ASSERT(lens2[j] == lens[j]);
  }
  for (size_t i = 0; i < k; i++) {
    one_frame(s + off);
    off += (size_t)lens[i];
  }
  free(s);
  return 0;
}
