/* Credentials as IAM reads them from a request (plugins/iam): the
 * Authorization value, the Cookie header, the token formats, scope lists,
 * and the plugin's "config" object.
 *
 * Input, one per line: an Authorization value, a Cookie value, a granted
 * scope list, a wanted scope list. An input starting with '{' is instead
 * the plugin's configuration. Each parser is checked against a plain
 * reference or against what its contract promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "internal.h"

/* iam_cookie_values' reference: split on ';', drop leading spaces, name
 * up to the first '='; every pair with that name and a non-empty value, in
 * order, at most `max`. */
static size_t ref_cookies(const char *v, size_t len, const char *name,
                          nno_str *out, size_t max) {
  size_t nl = strlen(name), i = 0, k = 0;
  while (i <= len && k < max) {
    size_t j = i;
    while (j < len && v[j] != ';') j++;
    size_t s = i;
    while (s < j && v[s] == ' ') s++;
    const char *eq = memchr(v + s, '=', j - s);
    if (eq && (size_t)(eq - (v + s)) == nl && memcmp(v + s, name, nl) == 0 &&
        v + j > eq + 1)
      out[k++] = (nno_str){eq + 1, (size_t)(v + j - eq - 1)};
    i = j + 1;
  }
  return k;
}

static int is_lhex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void check_token(const char *t, size_t n) {
  static const char *const prefixes[] = {IAM_KEY_PREFIX, IAM_SESSION_PREFIX};
  for (int k = 0; k < 2; k++) {
    char id[17];
    memset(id, 'X', sizeof id);
    if (iam_token_split(t, n, prefixes[k], id) != 0) continue;
    size_t pl = strlen(prefixes[k]);
    FUZZ_ASSERT(n == pl + 16 + 1 + 43);
    FUZZ_ASSERT(memcmp(t, prefixes[k], pl) == 0 && t[pl + 16] == '_');
    FUZZ_ASSERT(id[16] == '\0' && memcmp(id, t + pl, 16) == 0);
    for (int i = 0; i < 16; i++) FUZZ_ASSERT(is_lhex(id[i]));
  }
}

static void check_scopes(const char *g, size_t gl, const char *w) {
  char one[80];
  /* Every well-formed granted scope covers itself, and "*" covers all. */
  for (const char *p = g, *end = g + gl; p < end;) {
    while (p < end && *p == ' ') p++;
    const char *q = p;
    while (q < end && *q != ' ') q++;
    size_t n = (size_t)(q - p);
    if (n && n < sizeof one && !memchr(p, '\0', n)) {
      memcpy(one, p, n);
      one[n] = '\0';
      FUZZ_ASSERT(iam_scope_covers(g, gl, one));
      FUZZ_ASSERT(iam_scope_covers("*", 1, one));
      if (n <= 64) FUZZ_ASSERT(iam_scopes_subset(g, gl, one));
    }
    p = q;
  }
  /* subset() is covers() for each wanted scope of at most 64 bytes. */
  int all = 1, too_long = 0;
  for (const char *p = w; *p;) {
    while (*p == ' ') p++;
    const char *q = p;
    while (*q && *q != ' ') q++;
    size_t n = (size_t)(q - p);
    if (n) {
      if (n > 64) {
        all = 0;
        too_long = 1;
      } else {
        memcpy(one, p, n);
        one[n] = '\0';
        if (!iam_scope_covers(g, gl, one)) all = 0;
      }
    }
    p = q;
  }
  FUZZ_ASSERT(iam_scopes_subset(g, gl, w) == all);
  /* "*" grants every scope that can be named. */
  FUZZ_ASSERT(iam_scopes_subset("*", 1, w) == !too_long);
}

static void check_config(const uint8_t *data, size_t size) {
  char *json = malloc(size + 1), err[256];
  iam_config c;
  FUZZ_ASSERT(json != NULL);
  memcpy(json, data, size);
  json[size] = '\0';
  err[0] = '\0';
  if (iam_config_parse(json, &c, err, sizeof err) == 0) {
    FUZZ_ASSERT(c.nplans >= 1 && c.nplans <= 16);
    FUZZ_ASSERT(c.default_plan < c.nplans);
    FUZZ_ASSERT(c.session_cache_s >= 1 && c.session_cache_s <= 300);
    FUZZ_ASSERT(c.session_cache_max >= 1 && c.session_cache_max <= 1 << 20);
    FUZZ_ASSERT(c.session_idle_s >= 60 && c.session_absolute_s >= 60);
    FUZZ_ASSERT(memchr(c.user_scopes, '\0', sizeof c.user_scopes));
    for (size_t i = 0; i < c.nplans; i++) {
      const iam_plan *p = &c.plans[i];
      FUZZ_ASSERT(memchr(p->name, '\0', sizeof p->name));
      FUZZ_ASSERT(p->platform_rps > 0 && p->key_rps > 0 && p->user_rps > 0 &&
                  p->anon_rps > 0);
      FUZZ_ASSERT(p->platform_burst >= 1 && p->key_burst >= 1 &&
                  p->user_burst >= 1 && p->anon_burst >= 1);
      FUZZ_ASSERT(iam_plan_find(&c, p->name) != NULL);
    }
  } else {
    FUZZ_ASSERT(err[0] != '\0' && memchr(err, '\0', sizeof err));
  }
  free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *line[4] = {"", "", "", ""};
  size_t len[4] = {0, 0, 0, 0};
  if (size && data[0] == '{') {
    check_config(data, size);
    return 0;
  }
  const char *p = (const char *)data, *end = p + size;
  for (int i = 0; i < 4 && p <= end; i++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    line[i] = p;
    len[i] = (size_t)((nl ? nl : end) - p);
    if (!nl) break;
    p = nl + 1;
  }

  /* Authorization */
  nno_str tok = {0};
  if (iam_bearer_token(line[0], len[0], &tok) == 0) {
    FUZZ_ASSERT(len[0] >= 8 && strncasecmp(line[0], "Bearer ", 7) == 0);
    FUZZ_ASSERT(tok.ptr >= line[0] + 7 && tok.ptr + tok.len <= line[0] + len[0]);
    if (tok.len) FUZZ_ASSERT(tok.ptr[0] != ' ' && tok.ptr[tok.len - 1] != ' ');
    check_token(tok.ptr, tok.len);
  } else {
    FUZZ_ASSERT(len[0] < 8 || strncasecmp(line[0], "Bearer ", 7) != 0);
  }
  check_token(line[0], len[0]);

  /* Cookie */
  static const char *const names[] = {"nno_session", "a", ""};
  for (int i = 0; i < 3; i++) {
    nno_str got[4], want[4];
    size_t g = iam_cookie_values(line[1], len[1], names[i], got, 4);
    size_t w = ref_cookies(line[1], len[1], names[i], want, 4);
    FUZZ_ASSERT(g == w && g <= 4);
    for (size_t k = 0; k < g; k++) {
      FUZZ_ASSERT(got[k].ptr == want[k].ptr && got[k].len == want[k].len);
      FUZZ_ASSERT(got[k].len > 0);
      check_token(got[k].ptr, got[k].len);
    }
  }

  /* Scopes: the wanted list is a C string. */
  char *want = malloc(len[3] + 1);
  FUZZ_ASSERT(want != NULL);
  memcpy(want, line[3], len[3]);
  want[len[3]] = '\0';
  check_scopes(line[2], len[2], want);
  FUZZ_ASSERT(iam_scope_valid(line[2], len[2]) == 0 ||
              (len[2] >= 1 && len[2] <= 64));
  free(want);
  return 0;
}
