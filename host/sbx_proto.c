/* Frames between a worker and its sandboxes: see sbx_proto.h. */
#include "sbx_proto.h"

#include <stdlib.h>
#include <string.h>

static int grow(sbx_out *o, size_t need) {
  if (o->oom) return -1;
  if (o->len + need <= o->cap) return 0;
  size_t cap = o->cap ? o->cap : 4096;
  while (cap < o->len + need) {
    if (cap > SIZE_MAX / 2) {
      o->oom = 1;
      return -1;
    }
    cap *= 2;
  }
  char *p = realloc(o->p, cap);
  if (!p) {
    o->oom = 1;
    return -1;
  }
  o->p = p;
  o->cap = cap;
  return 0;
}

static void put(sbx_out *o, const void *v, size_t n) {
  if (grow(o, n)) return;
  memcpy(o->p + o->len, v, n);
  o->len += n;
}

size_t sbx_begin(sbx_out *o, uint16_t type, uint64_t id) {
  size_t at = o->len;
  sbx_frame_head h = {0, type, 0, id};
  put(o, &h, sizeof h);
  o->open++;
  return at;
}

int sbx_end(sbx_out *o, size_t at) {
  size_t n = o->len - at - sizeof(sbx_frame_head);
  if (o->open > 0) o->open--;
  if (o->oom || n > SBX_FRAME_MAX) {
    /* Drop the broken frame; the frames before it stand. */
    if (at <= o->len) o->len = at;
    o->oom = 0;
    return -1;
  }
  uint32_t len = (uint32_t)n;
  memcpy(o->p + at, &len, sizeof len);
  return 0;
}

void sbx_u8(sbx_out *o, uint8_t v) { put(o, &v, 1); }
void sbx_u16(sbx_out *o, uint16_t v) { put(o, &v, sizeof v); }
void sbx_u32(sbx_out *o, uint32_t v) { put(o, &v, sizeof v); }
void sbx_i32(sbx_out *o, int32_t v) { put(o, &v, sizeof v); }
void sbx_u64(sbx_out *o, uint64_t v) { put(o, &v, sizeof v); }
void sbx_i64(sbx_out *o, int64_t v) { put(o, &v, sizeof v); }

void sbx_str(sbx_out *o, const char *s, size_t n) {
  if (n > SBX_FRAME_MAX) {
    o->oom = 1;
    return;
  }
  /* Length, bytes and NUL with one check for room: a request's frame
   * holds a few dozen strings. */
  if (grow(o, sizeof(uint32_t) + n + 1)) return;
  uint32_t len = (uint32_t)n;
  char *p = o->p + o->len;
  memcpy(p, &len, sizeof len);
  if (n) memcpy(p + sizeof len, s, n);
  p[sizeof len + n] = '\0';
  o->len += sizeof len + n + 1;
}

void sbx_cstr(sbx_out *o, const char *s) {
  sbx_str(o, s ? s : "", s ? strlen(s) : 0);
}

void sbx_out_free(sbx_out *o) {
  free(o->p);
  memset(o, 0, sizeof *o);
}

void sbx_out_consume(sbx_out *o, size_t n) {
  if (n >= o->len) {
    o->len = 0;
    return;
  }
  memmove(o->p, o->p + n, o->len - n);
  o->len -= n;
}

static int take(sbx_in *in, void *v, size_t n) {
  if (in->bad || in->left < n) {
    in->bad = 1;
    memset(v, 0, n);
    return -1;
  }
  memcpy(v, in->p, n);
  in->p += n;
  in->left -= n;
  return 0;
}

uint8_t sbx_get_u8(sbx_in *in) {
  uint8_t v;
  take(in, &v, sizeof v);
  return v;
}
uint16_t sbx_get_u16(sbx_in *in) {
  uint16_t v;
  take(in, &v, sizeof v);
  return v;
}
uint32_t sbx_get_u32(sbx_in *in) {
  uint32_t v;
  take(in, &v, sizeof v);
  return v;
}
int32_t sbx_get_i32(sbx_in *in) {
  int32_t v;
  take(in, &v, sizeof v);
  return v;
}
uint64_t sbx_get_u64(sbx_in *in) {
  uint64_t v;
  take(in, &v, sizeof v);
  return v;
}
int64_t sbx_get_i64(sbx_in *in) {
  int64_t v;
  take(in, &v, sizeof v);
  return v;
}

const char *sbx_get_str(sbx_in *in, size_t *len) {
  uint32_t n = sbx_get_u32(in);
  if (len) *len = 0;
  if (in->bad || in->left < (size_t)n + 1 || in->p[n] != '\0') {
    in->bad = 1;
    return "";
  }
  const char *s = in->p;
  in->p += (size_t)n + 1;
  in->left -= (size_t)n + 1;
  if (len) *len = n;
  return s;
}

const char *sbx_get_text(sbx_in *in, size_t *len, size_t max) {
  size_t n;
  const char *s = sbx_get_str(in, &n);
  if (!in->bad && (n > max || memchr(s, '\0', n))) {
    in->bad = 1;
    s = "";
    n = 0;
  }
  if (len) *len = n;
  return s;
}

long sbx_frame_ready(const char *buf, size_t len, uint32_t max) {
  if (len < sizeof(sbx_frame_head)) return 0;
  sbx_frame_head h;
  memcpy(&h, buf, sizeof h);
  if (h.len > max) return -1;
  size_t total = sizeof h + (size_t)h.len;
  return len >= total ? (long)total : 0;
}

uint64_t sbx_poll_window(uint64_t win_ns, uint64_t max_ns, uint64_t gap_ns) {
  if (!max_ns) return 0;
  if (win_ns > max_ns) win_ns = max_ns;
  if (gap_ns <= win_ns) return win_ns;
  if (gap_ns <= max_ns) {
    uint64_t start = max_ns / 8 ? max_ns / 8 : 1;
    if (win_ns < start) return start;
    return win_ns > max_ns / 2 ? max_ns : win_ns * 2;
  }
  win_ns /= 2;
  return win_ns < max_ns / 64 ? 0 : win_ns;
}
