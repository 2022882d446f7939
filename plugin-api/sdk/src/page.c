/* Limits, cursors and pages (see nno/sdk/page.h). */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int nno_limit_parse(const char *s, size_t n, int max, int *out) {
  long v = 0;
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (s[i] - '0');
    if (v > max) return 0; /* also bounds v: no overflow */
  }
  if (v < 1) return 0;
  *out = (int)v;
  return 1;
}

int nno_cursor_encode(const void *key, size_t n, char *out, size_t cap) {
  const unsigned char *k = key;
  size_t need = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
  if (need >= cap) return -1;
  size_t o = 0, i = 0;
  for (; i + 3 <= n; i += 3) {
    unsigned v = (unsigned)k[i] << 16 | (unsigned)k[i + 1] << 8 | k[i + 2];
    out[o++] = b64url[v >> 18 & 63];
    out[o++] = b64url[v >> 12 & 63];
    out[o++] = b64url[v >> 6 & 63];
    out[o++] = b64url[v & 63];
  }
  if (n - i == 1) {
    unsigned v = (unsigned)k[i] << 16;
    out[o++] = b64url[v >> 18 & 63];
    out[o++] = b64url[v >> 12 & 63];
  } else if (n - i == 2) {
    unsigned v = (unsigned)k[i] << 16 | (unsigned)k[i + 1] << 8;
    out[o++] = b64url[v >> 18 & 63];
    out[o++] = b64url[v >> 12 & 63];
    out[o++] = b64url[v >> 6 & 63];
  }
  out[o] = '\0';
  return 0;
}

static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

int nno_cursor_decode(const char *cur, size_t len, char *out, size_t cap,
                      size_t *n) {
  unsigned acc = 0, bits = 0;
  size_t o = 0;
  if (n) *n = 0;
  if (cap) out[0] = '\0';
  if (len == 0 || len % 4 == 1 || cap == 0) return -1;
  for (size_t i = 0; i < len; i++) {
    int d = b64_value(cur[i]);
    if (d < 0) return -1;
    acc = (acc << 6 | (unsigned)d) & 0xffffu;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o + 1 >= cap) return out[0] = '\0', -1;
      out[o++] = (char)(acc >> bits & 0xff);
    }
  }
  /* Canonical only: the bits left over must be zero, so one key has one
   * cursor. */
  if (acc & ((1u << bits) - 1) || o == 0 || memchr(out, '\0', o))
    return out[0] = '\0', -1;
  out[o] = '\0';
  if (n) *n = o;
  return 0;
}

int nno_page_read(nno_req *req, int def, int max, int *limit, char *after,
                  size_t cap) {
  char buf[16], cur[NNO_CURSOR_MAX];
  *limit = def;
  after[0] = '\0';
  int r = nno_query_copy(req, "limit", buf, sizeof buf);
  if (r < 0) return -1;
  if (r > 0 && !nno_limit_parse(buf, strlen(buf), max, limit)) {
    char q[64];
    nno_quote(buf, q, sizeof q);
    nno_problem(req, 422, "limit",
                "field \"limit\": expected an integer from 1 to %d, got %s",
                max, q);
    return -1;
  }
  r = nno_query_copy(req, "cursor", cur, sizeof cur);
  if (r < 0) return -1;
  if (r > 0 && nno_cursor_decode(cur, strlen(cur), after, cap, NULL)) {
    nno_problem(req, 422, "cursor",
                "field \"cursor\": not a cursor this API returned");
    return -1;
  }
  return 0;
}

json_t *nno_page_json(json_t *items, const char *next_key) {
  json_t *cursor = json_null();
  char enc[NNO_CURSOR_MAX];
  if (next_key &&
      nno_cursor_encode(next_key, strlen(next_key), enc, sizeof enc) == 0)
    cursor = json_string(enc);
  return json_pack("{s:o, s:o}", "items", items, "next_cursor", cursor);
}

int nno_pager_start(nno_req *req, nno_pager *pg, int def, int max, char *after,
                    size_t cap) {
  memset(pg, 0, sizeof *pg);
  if (nno_page_read(req, def, max, &pg->limit, after, cap)) return -1;
  if (!(pg->items = json_array())) {
    nno_problem(req, 500, NULL, "out of memory");
    return -1;
  }
  return 0;
}

int nno_pager_full(nno_pager *pg) {
  if (pg->n < pg->limit) return 0;
  pg->more = 1;
  return 1;
}

int nno_pager_add(nno_pager *pg, json_t *item, const char *key) {
  size_t n = strlen(key);
  if (n >= sizeof pg->last) {
    json_decref(item);
    return NNO_ETOOBIG;
  }
  if (!item || json_array_append_new(pg->items, item)) return NNO_ENOMEM;
  memcpy(pg->last, key, n + 1);
  pg->n++;
  return NNO_OK;
}

int nno_pager_send(nno_req *req, nno_pager *pg) {
  json_t *items = pg->items;
  pg->items = NULL;
  return nno_send_json(req, 200,
                       nno_page_json(items, pg->more ? pg->last : NULL));
}

void nno_pager_free(nno_pager *pg) {
  json_decref(pg->items);
  pg->items = NULL;
}
