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
