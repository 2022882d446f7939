/* Scope matching. A scope is a colon-separated name ("tenants:write",
 * "features:hello:read"); a granted scope covers a needed one when equal,
 * when it is "*", when it ends in ":*" and the needed one starts with what
 * comes before, or when it is "X:write" and the needed one "X:read". */
#include <string.h>

#include "internal.h"

int iam_scope_valid(const char *s, size_t len) {
  if (len == 0 || len > 64) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '*' || c == ':' || c == '-'))
      return 0;
  }
  return 1;
}

static int one_covers(const char *g, size_t gl, const char *need, size_t nl) {
  if (gl == 1 && g[0] == '*') return 1;
  if (gl == nl && memcmp(g, need, nl) == 0) return 1;
  /* "prefix:*" covers "prefix:anything". */
  if (gl >= 2 && g[gl - 1] == '*' && g[gl - 2] == ':' && nl > gl - 1 &&
      memcmp(g, need, gl - 1) == 0)
    return 1;
  /* "x:write" covers "x:read". */
  if (gl > 6 && nl > 5 && memcmp(g + gl - 6, ":write", 6) == 0 &&
      memcmp(need + nl - 5, ":read", 5) == 0 && gl - 6 == nl - 5 &&
      memcmp(g, need, nl - 5) == 0)
    return 1;
  return 0;
}

int iam_scope_covers(const char *granted, size_t glen, const char *need) {
  size_t nl = strlen(need);
  const char *p = granted, *end = granted + glen;
  while (p < end) {
    while (p < end && *p == ' ') p++;
    const char *q = p;
    while (q < end && *q != ' ') q++;
    if (q > p && one_covers(p, (size_t)(q - p), need, nl)) return 1;
    p = q;
  }
  return 0;
}

int iam_scopes_subset(const char *granted, size_t glen, const char *want) {
  char one[65];
  const char *p = want;
  while (*p) {
    while (*p == ' ') p++;
    const char *q = p;
    while (*q && *q != ' ') q++;
    size_t n = (size_t)(q - p);
    if (n) {
      if (n >= sizeof one) return 0;
      memcpy(one, p, n);
      one[n] = '\0';
      /* A wildcard is only granted by the same or a wider wildcard. */
      if (!iam_scope_covers(granted, glen, one)) return 0;
    }
    p = q;
  }
  return 1;
}

/* Append the scope `s` (n bytes) to the list `out` unless the list already
 * covers it. 0, or -1 when it does not fit. */
static int add_scope(char *out, size_t cap, const char *s, size_t n) {
  char one[65];
  size_t have = strlen(out);
  if (n >= sizeof one) return -1;
  memcpy(one, s, n);
  one[n] = '\0';
  if (iam_scope_covers(out, have, one)) return 0;
  if (have + (have ? 1 : 0) + n + 1 > cap) return -1;
  if (have) out[have++] = ' ';
  memcpy(out + have, s, n);
  out[have + n] = '\0';
  return 0;
}

int iam_scopes_intersect(const char *a, const char *b, char *out,
                         size_t cap) {
  size_t al = strlen(a), bl = strlen(b);
  if (cap == 0) return -1;
  out[0] = '\0';
  /* Each scope of `a` that `b` covers, then each scope of `b` that `a`
   * covers: what both grant, wildcards narrowed to the other side. */
  for (int pass = 0; pass < 2; pass++) {
    const char *p = pass ? b : a, *other = pass ? a : b;
    size_t ol = pass ? al : bl;
    while (*p) {
      while (*p == ' ') p++;
      const char *q = p;
      while (*q && *q != ' ') q++;
      size_t n = (size_t)(q - p);
      char one[65];
      if (n && n < sizeof one) {
        memcpy(one, p, n);
        one[n] = '\0';
        if (iam_scope_covers(other, ol, one) && add_scope(out, cap, p, n))
          return -1;
      }
      p = q;
    }
  }
  return 0;
}
