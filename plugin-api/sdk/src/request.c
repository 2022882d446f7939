/* Ids, names, parameters and the actor (see nno/sdk/request.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* ---- ids and names ------------------------------------------------------- */

static int alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int nno_id_valid(const char *s, size_t n, size_t min, size_t max) {
  if (!s || n < min || n > max || n == 0 || !alnum(s[0]) || !alnum(s[n - 1]))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!alnum(s[i]) && s[i] != '-') return 0;
  return 1;
}

int nno_check_id(nno_req *req, const char *field, const char *s, size_t min,
                 size_t max) {
  size_t n = strlen(s);
  if (nno_id_valid(s, n, min, max)) return 0;
  /* Say "starting and ending..." only when that is what is wrong. */
  int charset = n >= min && n <= max;
  for (size_t i = 0; i < n && charset; i++)
    charset = alnum(s[i]) || s[i] == '-';
  char q[256];
  nno_quote(s, q, sizeof q);
  nno_problem(req, 422, field,
              "field \"%s\": expected %zu to %zu characters of [a-z0-9-]%s, "
              "got %s",
              field, min, max,
              charset ? " starting and ending with a letter or digit" : "", q);
  return -1;
}

int nno_check_name(nno_req *req, const char *field, const char *s,
                   size_t max_chars) {
  size_t chars = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p < 0x20 || *p == 0x7f) {
      nno_problem(req, 422, field,
                  "field \"%s\": control characters are not allowed", field);
      return -1;
    }
    if ((*p & 0xc0) != 0x80) chars++;
  }
  if (chars >= 1 && chars <= max_chars) return 0;
  nno_problem(req, 422, field,
              "field \"%s\": expected 1 to %zu characters, got %zu", field,
              max_chars, chars);
  return -1;
}

void nno_quote(const char *s, char *out, size_t cap) {
  size_t n = strlen(s), k = 0, cut = n > 40 ? 40 : n;
  while (cut < n && cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80) cut--;
  out[k++] = '"';
  for (size_t i = 0; i < cut && k + 8 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      out[k++] = '\\';
      out[k++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      k += (size_t)snprintf(out + k, cap - k, "\\u%04x", c);
    } else {
      out[k++] = (char)c;
    }
  }
  if (cut < n && k + 4 < cap) {
    memcpy(out + k, "...", 3);
    k += 3;
  }
  out[k++] = '"';
  out[k] = '\0';
}

/* ---- parameters ---------------------------------------------------------- */

int nno_param_copy(nno_req *req, const char *name, char *out, size_t cap) {
  nno_str v = {"", 0};
  if (nno__sdk_api->req_param(req, name, &v) != NNO_OK || !v.ptr)
    v.ptr = "", v.len = 0;
  size_t n = v.len < cap - 1 ? v.len : cap - 1;
  memcpy(out, v.ptr, n);
  out[n] = '\0';
  return v.len == 0 || v.len >= cap || memchr(v.ptr, '\0', v.len) ? -1 : 0;
}

int nno_query_copy(nno_req *req, const char *name, char *out, size_t cap) {
  nno_str v;
  out[0] = '\0';
  if (nno__sdk_api->req_query_param(req, name, &v) != NNO_OK) return 0;
  if (v.len >= cap || (v.len && memchr(v.ptr, '\0', v.len))) {
    nno_problem(req, 422, name, "field \"%s\": %s", name,
                v.len >= cap ? "too long" : "contains a NUL byte");
    return -1;
  }
  if (v.len) memcpy(out, v.ptr, v.len);
  out[v.len] = '\0';
  return 1;
}

/* ---- the caller ---------------------------------------------------------- */

void nno_caller_actor(nno_req *req, char *out, size_t cap) {
  const nno_host_api *api = nno__sdk_api;
  nno_caller c;
  if (!NNO_HAS(api, req_caller) || api->req_caller(req, &c) != NNO_OK ||
      c.kind == NNO_CALLER_NONE || c.kind == NNO_CALLER_OPERATOR)
    snprintf(out, cap, "operator");
  else if (c.kind == NNO_CALLER_KEY)
    snprintf(out, cap, "key:%.*s", (int)c.subject.len, c.subject.ptr);
  else
    snprintf(out, cap, "user:%.*s/%.*s", (int)c.platform.len, c.platform.ptr,
             (int)c.subject.len, c.subject.ptr);
}

size_t nno_client_key(const char *addr, size_t len, char *out, size_t cap) {
  char text[INET6_ADDRSTRLEN];
  struct in6_addr a6;
  if (cap == 0) return 0;
  if (!addr) len = 0;
  size_t n = len < sizeof text ? len : sizeof text - 1;
  memcpy(text, addr ? addr : "", n);
  text[n] = '\0';
  /* An IPv6 client holds (at least) a /64: every address in it is the same
   * client. IPv4 and IPv4-mapped addresses stay whole. */
  if (len < sizeof text && memchr(text, ':', n) &&
      inet_pton(AF_INET6, text, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6)) {
    const unsigned char *b = a6.s6_addr;
    int w = snprintf(out, cap, "%x:%x:%x:%x::/64", b[0] << 8 | b[1],
                     b[2] << 8 | b[3], b[4] << 8 | b[5], b[6] << 8 | b[7]);
    if (w > 0 && (size_t)w < cap) return (size_t)w;
    out[0] = '\0';
    return 0;
  }
  if (n >= cap) n = cap - 1;
  memcpy(out, text, n);
  out[n] = '\0';
  return n;
}

/* ---- versions: ETag and If-Match ----------------------------------------- */

void nno_etag(nno_req *req, int64_t version) {
  char tag[32];
  snprintf(tag, sizeof tag, "\"v%lld\"", (long long)version);
  nno__sdk_api->res_header(req, "ETag", tag);
}

int nno_if_match(nno_req *req, int64_t current) {
  nno_str v;
  if (nno__sdk_api->req_header(req, "If-Match", &v) != NNO_OK) return 1;
  char tag[32];
  int tn = snprintf(tag, sizeof tag, "\"v%lld\"", (long long)current);
  const char *p = v.ptr, *end = v.ptr + v.len;
  while (p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *e = comma ? comma : end;
    while (p < e && (*p == ' ' || *p == '\t')) p++;
    const char *te = e;
    while (te > p && (te[-1] == ' ' || te[-1] == '\t')) te--;
    size_t n = (size_t)(te - p);
    if ((n == 1 && *p == '*') || (n == (size_t)tn && memcmp(p, tag, n) == 0))
      return 1;
    p = e + 1;
  }
  return 0;
}
