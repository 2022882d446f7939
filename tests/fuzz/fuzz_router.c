/* The router (host/router.c): a route table built from fuzzed methods and
 * patterns, then fuzzed requests matched against it. Every verdict is
 * compared with a slow reference that tries each route in turn:
 *   - router_add() accepts exactly the valid methods and patterns, once per
 *     method and shape ("/u/{id}" and "/u/{name}" are one shape);
 *   - router_match() picks, among the routes whose pattern matches the
 *     path, the most specific (literal > {param} > {rest...}, segment by
 *     segment from the left) that takes the method (exact, GET for HEAD,
 *     then "*"), with the right parameter values; 405 when only the method
 *     is wrong, 404 when no pattern matches.
 *
 * Input: lines. Up to the first empty line, routes "METHOD PATTERN"; after
 * it, requests "METHOD PATH" (a path may hold any byte but LF). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nno/plugin.h>

#include "fuzz.h"
#include "manifest.h"
#include "router.h"

#define MAX_ROUTES 64
#define MAX_REQUESTS 64

typedef struct ref_route {
  char *method;
  char *pattern;
  struct segs *segs; /* of the pattern */
  int id;            /* the target given to router_add() is &ids[id] */
} ref_route;

static int ids[MAX_ROUTES];

static int ref_method_valid(const char *m) {
  size_t n = strlen(m);
  if (n == 1 && m[0] == '*') return 1;
  if (n == 0 || n > 32) return 0;
  for (size_t i = 0; i < n; i++)
    if (m[i] < 'A' || m[i] > 'Z') return 0;
  return 1;
}

/* The segments of a pattern or path ("/a/b/" has "a", "b", ""), split
 * once so the reference stays linear. */
#define MAX_SEGS 4097
typedef struct segs {
  size_t n;
  const char *s[MAX_SEGS];
  size_t len[MAX_SEGS];
} segs;

static void split(const char *s, size_t len, segs *out) {
  const char *p = s + 1, *end = s + len;
  out->n = 0;
  for (;;) {
    const char *e = memchr(p, '/', (size_t)(end - p));
    if (!e) e = end;
    FUZZ_ASSERT(out->n < MAX_SEGS);
    out->s[out->n] = p;
    out->len[out->n++] = (size_t)(e - p);
    if (e == end) return;
    p = e + 1;
  }
}

/* 0 literal, 1 {param}, 2 {rest...} */
static int seg_kind(const char *seg, size_t n) {
  if (n == 0 || seg[0] != '{') return 0;
  return n >= 5 && memcmp(seg + n - 4, "...}", 4) == 0 ? 2 : 1;
}

/* Does pattern `ps` match path `qs` (path ends at path_end)? Fills the
 * kinds of its segments (for precedence) and the parameter values. */
static int ref_matches(const segs *ps, const segs *qs, const char *path_end,
                       int *kinds, size_t *nkinds, const char **val,
                       size_t *val_len, size_t *nval) {
  *nkinds = *nval = 0;
  for (size_t i = 0;; i++) {
    if (i == ps->n) return i == qs->n;
    if (i == qs->n) return 0;
    int k = seg_kind(ps->s[i], ps->len[i]);
    kinds[(*nkinds)++] = k;
    if (k == 0) {
      if (ps->len[i] != qs->len[i] ||
          memcmp(ps->s[i], qs->s[i], qs->len[i]) != 0)
        return 0;
    } else if (k == 1) {
      if (qs->len[i] == 0) return 0;
      val[*nval] = qs->s[i];
      val_len[(*nval)++] = qs->len[i];
    } else {
      val[*nval] = qs->s[i];
      val_len[(*nval)++] = (size_t)(path_end - qs->s[i]);
      return 1;
    }
  }
}

/* Same node of the trie: the same literal segments and the same kinds. */
static int same_shape(const segs *a, const segs *b) {
  if (a->n != b->n) return 0;
  for (size_t i = 0; i < a->n; i++) {
    int ka = seg_kind(a->s[i], a->len[i]), kb = seg_kind(b->s[i], b->len[i]);
    if (ka != kb) return 0;
    if (ka == 0 && (a->len[i] != b->len[i] ||
                    memcmp(a->s[i], b->s[i], a->len[i]) != 0))
      return 0;
  }
  return 1;
}

/* <0 when kinds a are more specific than b. */
static int kinds_cmp(const int *a, size_t an, const int *b, size_t bn) {
  for (size_t i = 0; i < an && i < bn; i++)
    if (a[i] != b[i]) return a[i] - b[i];
  /* Equal prefixes: both matched the same path, so a shorter one ended in
   * a wildcard where the other still had segments; never both. */
  return 0;
}

/* 3 exact, 2 GET for HEAD, 1 "*", 0 not this method. */
static int method_rank(const char *rm, const char *m, size_t mn) {
  if (strlen(rm) == mn && memcmp(rm, m, mn) == 0) return 3;
  if (strcmp(rm, "GET") == 0 && mn == 4 && memcmp(m, "HEAD", 4) == 0)
    return 2;
  if (strcmp(rm, "*") == 0) return 1;
  return 0;
}

static char *dup_n(const char *s, size_t n) {
  char *d = malloc(n + 1);
  FUZZ_ASSERT(d != NULL);
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

static void check_request(router *r, const ref_route *routes, size_t nroutes,
                          const char *m, size_t mn, const char *path,
                          size_t pn) {
  route_match got;
  char allow[64];
  int rc = router_match(r, m, mn, path, pn, &got, allow, sizeof allow);

  /* The reference: best node first, then the best method there. */
  int best = -1, best_rank = 0, path_found = 0;
  int bk[1100], k[1100];
  size_t bnk = 0, nk;
  const char *val[ROUTER_MAX_PARAMS + 1], *bval[ROUTER_MAX_PARAMS + 1];
  size_t vl[ROUTER_MAX_PARAMS + 1], bvl[ROUTER_MAX_PARAMS + 1], nv, bnv = 0;
  int valid_path = pn > 0 && path[0] == '/';
  static segs qs;
  if (valid_path) split(path, pn, &qs);
  for (size_t i = 0; valid_path && i < nroutes; i++) {
    if (!ref_matches(routes[i].segs, &qs, path + pn, k, &nk, val, vl, &nv))
      continue;
    path_found = 1;
    int rank = method_rank(routes[i].method, m, mn);
    if (!rank) continue;
    int c = best < 0 ? -1 : kinds_cmp(k, nk, bk, bnk);
    if (c < 0 || (c == 0 && rank > best_rank)) {
      best = (int)i;
      best_rank = rank;
      memcpy(bk, k, nk * sizeof *k);
      bnk = nk;
      memcpy(bval, val, nv * sizeof *val);
      memcpy(bvl, vl, nv * sizeof *vl);
      bnv = nv;
    }
  }
  if (best < 0) {
    FUZZ_ASSERT(rc == (path_found ? NNO_EINVAL : NNO_ENOENT));
    FUZZ_ASSERT(memchr(allow, '\0', sizeof allow) != NULL);
    if (!path_found) FUZZ_ASSERT(allow[0] == '\0');
    return;
  }
  FUZZ_ASSERT(rc == 0);
  FUZZ_ASSERT(allow[0] == '\0');
  FUZZ_ASSERT(got.target == &ids[routes[best].id]);
  FUZZ_ASSERT(strcmp(got.pattern, routes[best].pattern) == 0);
  FUZZ_ASSERT(strcmp(got.method, routes[best].method) == 0);
  FUZZ_ASSERT(got.nparams == bnv);
  for (size_t i = 0; i < bnv; i++) {
    FUZZ_ASSERT(got.params[i].value == bval[i]);
    FUZZ_ASSERT(got.params[i].value_len == bvl[i]);
    FUZZ_ASSERT(got.params[i].name[got.params[i].name_len] == '\0');
    FUZZ_ASSERT(strstr(routes[best].pattern, got.params[i].name) != NULL);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data, *end = p + size;
  ref_route routes[MAX_ROUTES];
  size_t nroutes = 0, nreq = 0;
  router *r = router_new();
  FUZZ_ASSERT(r != NULL);

  /* Routes, up to an empty line. */
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    if (le == p) {
      p = le + 1;
      break;
    }
    const char *sp = memchr(p, ' ', (size_t)(le - p));
    char *m = sp ? dup_n(p, (size_t)(sp - p)) : dup_n("GET", 3);
    const char *pt = sp ? sp + 1 : p;
    char *pat = dup_n(pt, (size_t)(le - pt)); /* stops at a NUL, as C does */
    int valid = ref_method_valid(m) && route_pattern_valid(pat, NULL, 0) == 0;
    char err[128];
    if (!valid && ref_method_valid(m)) {
      FUZZ_ASSERT(route_pattern_valid(pat, err, sizeof err) == -1);
      FUZZ_ASSERT(err[0] != '\0' && memchr(err, '\0', sizeof err));
    }
    int dup = 0;
    segs *ps = NULL;
    if (valid) {
      ps = malloc(sizeof *ps);
      FUZZ_ASSERT(ps != NULL);
      split(pat, strlen(pat), ps);
    }
    for (size_t i = 0; valid && i < nroutes; i++)
      if (strcmp(routes[i].method, m) == 0 && same_shape(routes[i].segs, ps))
        dup = 1;
    int want = !valid ? NNO_EINVAL : dup ? NNO_EEXIST : 0;
    int rc = nroutes < MAX_ROUTES
                 ? router_add(r, m, pat, &ids[nroutes])
                 : NNO_EINVAL;
    if (nroutes < MAX_ROUTES) FUZZ_ASSERT(rc == want);
    if (rc == 0) {
      routes[nroutes].method = m;
      routes[nroutes].pattern = pat;
      routes[nroutes].segs = ps;
      routes[nroutes].id = (int)nroutes;
      nroutes++;
      FUZZ_ASSERT(router_count(r) == nroutes);
      /* A pattern without parameters matches itself, with its method. */
      if (!strchr(pat, '{') && strcmp(m, "*") != 0) {
        route_match got;
        FUZZ_ASSERT(router_match(r, m, strlen(m), pat, strlen(pat), &got,
                                 NULL, 0) == 0);
        FUZZ_ASSERT(strcmp(got.pattern, pat) == 0);
      }
    } else {
      free(m);
      free(pat);
      free(ps);
    }
    if (!nl) {
      p = end;
      break;
    }
    p = nl + 1;
  }

  /* Requests. */
  while (p < end && nreq++ < MAX_REQUESTS) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    const char *sp = memchr(p, ' ', (size_t)(le - p));
    const char *m = sp ? p : "GET";
    size_t mn = sp ? (size_t)(sp - p) : 3;
    const char *path = sp ? sp + 1 : p;
    check_request(r, routes, nroutes, m, mn, path, (size_t)(le - path));
    p = nl ? nl + 1 : end;
  }

  for (size_t i = 0; i < nroutes; i++) {
    free(routes[i].method);
    free(routes[i].pattern);
    free(routes[i].segs);
  }
  router_free(r);
  return 0;
}
