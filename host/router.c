/* Route table: a segment trie matched in one walk, without allocating.
 *
 * Each node stands for the path segments consumed so far. It has literal
 * children (a sorted array, found by binary search), at most one "{param}"
 * child and at most one "{rest...}" child, and the routes that end there,
 * one per method. Parameter names belong to the routes, not to the nodes,
 * so "GET /u/{id}" and "DELETE /u/{user}" share a node and each reports its
 * own name.
 *
 * The router matches raw bytes: percent-decoding, dot segments and the query
 * string are the HTTP layer's business, and it must strip the query before
 * calling router_match().
 *
 * THREAD: router_add() and router_free() need exclusive access;
 * router_match() only reads, so a built router may serve several threads.
 */
#include "router.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nno/plugin.h>

#include "manifest.h"

/* Longest pattern accepted; bounds the trie's depth and so the recursion
 * of router_match(). */
#define ROUTE_PATTERN_MAX 1024
/* Longest method token ("GET", "PROPFIND"). */
#define ROUTE_METHOD_MAX 32

typedef struct rroute {
  void *target;
  const char *method; /* NUL-terminated, in text[] */
  size_t method_len;
  const char *pattern; /* NUL-terminated, in text[] */
  size_t nnames;
  const char *names[ROUTER_MAX_PARAMS]; /* NUL-terminated, in text[] */
  size_t name_lens[ROUTER_MAX_PARAMS];
  char text[]; /* method, pattern, then each parameter name */
} rroute;

typedef struct rnode {
  struct rnode **kids; /* literal children, sorted by (length, bytes) */
  uint32_t nkids, capkids;
  struct rnode *param; /* "{name}": any non-empty segment */
  struct rnode *wild;  /* "{name...}": the rest of the path, maybe empty */
  rroute **routes;     /* routes ending here, one per method */
  uint32_t nroutes;
  uint32_t seg_len;
  char seg[]; /* the literal segment leading here */
} rnode;

struct router {
  rnode *root;
  size_t count;
};

/* State of one router_match() call; lives on the caller's stack. */
typedef struct walker {
  const char *method;
  size_t method_len;
  int is_head;
  const char *end; /* end of the path */
  const char *val[ROUTER_MAX_PARAMS];
  size_t val_len[ROUTER_MAX_PARAMS];
  size_t nparams;
  int path_found; /* some route has this path, maybe not this method */
  char *allow;
  size_t allow_len, allow_used;
} walker;

/* ---- pattern validation ------------------------------------------------ */

NNO_PRINTF(3, 4)
static int reason(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

/* RFC 3986 pchar, less '%' (checked apart as a %XX escape). */
static int is_pchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c && strchr("-._~!$&'()*+,;=:@", c));
}

static int is_name_char(char c, int first) {
  return (c >= 'a' && c <= 'z') || c == '_' || (!first && c >= '0' && c <= '9');
}

/* Checks the parameter segment seg[0..n), which starts at byte `at` of the
 * pattern: "{name}", or "{name...}" (then *wild is set). */
static int check_param(const char *seg, size_t n, size_t at, int *wild,
                       const char **name, size_t *name_len, char *err,
                       size_t errlen) {
  *name = seg + 1;
  *name_len = 0;
  *wild = 0;
  if (n < 2 || seg[n - 1] != '}')
    return reason(err, errlen,
                  "a parameter must fill its whole segment (byte %zu)", at);
  *name_len = n - 2;
  *wild = *name_len >= 3 && memcmp(seg + n - 4, "...", 3) == 0;
  if (*wild) *name_len -= 3;
  int ok = *name_len > 0;
  for (size_t i = 0; ok && i < *name_len; i++)
    ok = is_name_char((*name)[i], i == 0);
  if (!ok)
    return reason(err, errlen,
                  "a parameter name must match [a-z_][a-z0-9_]* (byte %zu)",
                  at + 1);
  return 0;
}

/* Checks a literal segment seg[0..n) starting at byte `at`. */
static int check_literal(const char *seg, size_t n, size_t at, char *err,
                         size_t errlen) {
  /* Clients and proxies normalise dot segments away, so a route containing
   * one could never be reached. */
  if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
    return reason(err, errlen,
                  "\".\" and \"..\" segments are not allowed (byte %zu)", at);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)seg[i];
    if (c == '{' || c == '}')
      return reason(err, errlen,
                    "a parameter must fill its whole segment (byte %zu)",
                    at + i);
    if (c == '%') {
      if (i + 2 >= n || !is_hex(seg[i + 1]) || !is_hex(seg[i + 2]))
        return reason(err, errlen, "bad %%XX escape at byte %zu", at + i);
      i += 2;
    } else if (!is_pchar((char)c)) {
      if (c > 0x20 && c < 0x7f)
        return reason(err, errlen, "invalid character '%c' at byte %zu",
                      (char)c, at + i);
      return reason(err, errlen, "invalid byte 0x%02x at byte %zu", c, at + i);
    }
  }
  return 0;
}

int route_pattern_valid(const char *pattern, char *err, size_t errlen) {
  const char *names[ROUTER_MAX_PARAMS];
  size_t lens[ROUTER_MAX_PARAMS], nparams = 0;
  if (err && errlen) err[0] = '\0';
  if (!pattern) return reason(err, errlen, "no pattern");
  size_t len = strnlen(pattern, ROUTE_PATTERN_MAX + 1);
  if (len > ROUTE_PATTERN_MAX)
    return reason(err, errlen, "longer than %d bytes", ROUTE_PATTERN_MAX);
  if (pattern[0] != '/') return reason(err, errlen, "must start with \"/\"");
  /* "/a/b/" has the segments "a", "b" and "": only the last may be empty. */
  for (const char *p = pattern + 1, *end = pattern + len;;) {
    const char *e = memchr(p, '/', (size_t)(end - p));
    if (!e) e = end;
    size_t n = (size_t)(e - p), at = (size_t)(p - pattern);
    int last = e == end;
    if (n == 0 && !last)
      return reason(err, errlen, "empty segment at byte %zu", at);
    if (n > 0 && *p == '{') {
      const char *name = NULL;
      size_t name_len = 0;
      int wild = 0;
      if (check_param(p, n, at, &wild, &name, &name_len, err, errlen) < 0)
        return -1;
      if (wild && !last)
        return reason(err, errlen,
                      "a {name...} wildcard must be the last segment "
                      "(byte %zu)",
                      at);
      for (size_t i = 0; i < nparams; i++)
        if (lens[i] == name_len && memcmp(names[i], name, name_len) == 0)
          return reason(err, errlen, "duplicate parameter name at byte %zu",
                        at + 1);
      if (nparams == ROUTER_MAX_PARAMS)
        return reason(err, errlen, "more than %d parameters",
                      ROUTER_MAX_PARAMS);
      names[nparams] = name;
      lens[nparams++] = name_len;
    } else if (check_literal(p, n, at, err, errlen) < 0) {
      return -1;
    }
    if (last) break;
    p = e + 1;
  }
  return 0;
}

/* ---- building ------------------------------------------------------------ */

static int method_valid(const char *m) {
  size_t n = 0;
  if (!m) return 0;
  if (strcmp(m, "*") == 0) return 1;
  for (; m[n]; n++)
    if (m[n] < 'A' || m[n] > 'Z' || n == ROUTE_METHOD_MAX) return 0;
  return n > 0;
}

/* Orders literal children by length, then bytes: cheap to compare, and the
 * length alone usually decides. */
static int seg_cmp(const rnode *k, const char *s, size_t n) {
  if (k->seg_len != n) return k->seg_len < n ? -1 : 1;
  return memcmp(k->seg, s, n);
}

/* Index of the literal child `s` in n->kids, or where it would go (then
 * *found is 0). */
static uint32_t kid_find(const rnode *n, const char *s, size_t len,
                         int *found) {
  uint32_t lo = 0, hi = n->nkids;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int c = seg_cmp(n->kids[mid], s, len);
    if (c == 0) {
      *found = 1;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = 0;
  return lo;
}

static rnode *node_new(const char *seg, size_t len) {
  rnode *n = calloc(1, sizeof *n + len + 1);
  if (!n) return NULL;
  memcpy(n->seg, seg, len);
  n->seg_len = (uint32_t)len;
  return n;
}

static void node_free(rnode *n) {
  if (!n) return;
  for (uint32_t i = 0; i < n->nkids; i++) node_free(n->kids[i]);
  for (uint32_t i = 0; i < n->nroutes; i++) free(n->routes[i]);
  node_free(n->param);
  node_free(n->wild);
  free(n->kids);
  free(n->routes);
  free(n);
}

/* The literal child `s` of `n`, created if missing. */
static rnode *kid_get(rnode *n, const char *s, size_t len) {
  int found;
  uint32_t at = kid_find(n, s, len, &found);
  if (found) return n->kids[at];
  if (n->nkids == n->capkids) {
    uint32_t cap = n->capkids ? n->capkids * 2 : 4;
    rnode **kids = realloc(n->kids, cap * sizeof *kids);
    if (!kids) return NULL;
    n->kids = kids;
    n->capkids = cap;
  }
  rnode *k = node_new(s, len);
  if (!k) return NULL;
  memmove(n->kids + at + 1, n->kids + at, (n->nkids - at) * sizeof *n->kids);
  n->kids[at] = k;
  n->nkids++;
  return k;
}

/* Copies method, pattern and parameter names into one block. */
static rroute *route_new(const char *method, const char *pattern,
                         void *target) {
  size_t ml = strlen(method), pl = strlen(pattern);
  /* The names are shorter than the pattern, NULs included. */
  rroute *rt = malloc(sizeof *rt + ml + 1 + 2 * (pl + 1));
  if (!rt) return NULL;
  char *t = rt->text;
  rt->target = target;
  rt->method = t;
  rt->method_len = ml;
  memcpy(t, method, ml + 1);
  t += ml + 1;
  rt->pattern = t;
  memcpy(t, pattern, pl + 1);
  t += pl + 1;
  rt->nnames = 0;
  for (const char *p = pattern; (p = strchr(p, '{')) != NULL;) {
    const char *e = strchr(p, '}');
    size_t n = (size_t)(e - p - 1);
    if (n >= 3 && memcmp(e - 3, "...", 3) == 0) n -= 3;
    rt->names[rt->nnames] = t;
    rt->name_lens[rt->nnames++] = n;
    memcpy(t, p + 1, n);
    t[n] = '\0';
    t += n + 1;
    p = e;
  }
  return rt;
}

router *router_new(void) {
  router *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->root = node_new("", 0);
  if (!r->root) {
    free(r);
    return NULL;
  }
  return r;
}

void router_free(router *r) {
  if (!r) return;
  node_free(r->root);
  free(r);
}

size_t router_count(const router *r) { return r ? r->count : 0; }

int router_add(router *r, const char *method, const char *pattern,
               void *target) {
  rroute *rt = NULL, **routes;
  rnode *n;
  int rc = NNO_EINVAL;
  if (!r || !method_valid(method) || route_pattern_valid(pattern, NULL, 0))
    goto fail;
  rc = NNO_ENOMEM;
  if (!(rt = route_new(method, pattern, target))) goto fail;
  /* Segments of "/a/b/" are "a", "b", "": the same split as router_match()
   * makes of a path. A failure half-way leaves empty nodes behind; they hold
   * no route, so they never match and router_free() reclaims them. */
  n = r->root;
  for (const char *p = pattern + 1;;) {
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len > 0 && *p == '{') {
      /* A validated "{...}" segment is a wildcard iff it ends in "...}". */
      rnode **slot = p[len - 2] == '.' ? &n->wild : &n->param;
      if (!*slot) *slot = node_new("", 0);
      n = *slot;
    } else {
      n = kid_get(n, p, len);
    }
    if (!n) goto fail;
    if (!e) break;
    p = e + 1;
  }
  rc = NNO_EEXIST;
  for (uint32_t i = 0; i < n->nroutes; i++)
    if (strcmp(n->routes[i]->method, method) == 0) goto fail;
  rc = NNO_ENOMEM;
  routes = realloc(n->routes, (n->nroutes + 1) * sizeof *routes);
  if (!routes) goto fail;
  n->routes = routes;
  n->routes[n->nroutes++] = rt;
  r->count++;
  return 0;

fail:
  free(rt);
  return rc;
}

/* ---- matching ------------------------------------------------------------ */

/* Appends `m` to the Allow list unless present or out of room; a method
 * that does not fit whole is left out rather than cut. */
static void allow_add(walker *w, const char *m, size_t n) {
  if (!w->allow || w->allow_len == 0) return;
  for (const char *s = w->allow; *s;) {
    const char *e = strchr(s, ',');
    size_t l = e ? (size_t)(e - s) : strlen(s);
    if (l == n && memcmp(s, m, n) == 0) return;
    s = e ? e + 2 : s + l;
  }
  size_t sep = w->allow_used ? 2 : 0;
  if (w->allow_used + sep + n + 1 > w->allow_len) return;
  memcpy(w->allow + w->allow_used, ", ", sep);
  memcpy(w->allow + w->allow_used + sep, m, n);
  w->allow_used += sep + n;
  w->allow[w->allow_used] = '\0';
}

/* The route of node `n` for the request's method: an exact match, then GET
 * for HEAD, then "*". Records the node's methods for a 405 otherwise. */
static const rroute *pick(const rnode *n, walker *w) {
  const rroute *get = NULL, *any = NULL;
  for (uint32_t i = 0; i < n->nroutes; i++) {
    const rroute *rt = n->routes[i];
    if (rt->method_len == w->method_len &&
        memcmp(rt->method, w->method, w->method_len) == 0)
      return rt;
    if (rt->method_len == 3 && memcmp(rt->method, "GET", 3) == 0) get = rt;
    if (rt->method_len == 1 && rt->method[0] == '*') any = rt;
  }
  if (w->is_head && get) return get;
  if (any) return any;
  if (n->nroutes == 0) return NULL;
  w->path_found = 1;
  for (uint32_t i = 0; i < n->nroutes; i++) {
    allow_add(w, n->routes[i]->method, n->routes[i]->method_len);
    if (n->routes[i] == get) allow_add(w, "HEAD", 4);
  }
  return NULL;
}

/* Matches the segment starting at `seg` (NULL once the path is consumed)
 * against the children of `n`, most specific first, backtracking on
 * failure. Each node is visited at most once per call, so a match costs at
 * most the size of the trie, and usually one node per segment. */
static const rroute *walk(const rnode *n, const char *seg, size_t np,
                          walker *w) {
  const rroute *rt;
  if (!seg) {
    w->nparams = np;
    return pick(n, w);
  }
  const char *e = memchr(seg, '/', (size_t)(w->end - seg));
  if (!e) e = w->end;
  const char *next = e < w->end ? e + 1 : NULL;
  size_t len = (size_t)(e - seg);
  if (n->nkids) {
    int found;
    uint32_t at = kid_find(n, seg, len, &found);
    if (found && (rt = walk(n->kids[at], next, np, w))) return rt;
  }
  /* np stays below the limit: route_pattern_valid() caps the parameters of
   * every pattern, and every trie path is a prefix of some pattern. */
  if (n->param && len > 0 && np < ROUTER_MAX_PARAMS) {
    w->val[np] = seg;
    w->val_len[np] = len;
    if ((rt = walk(n->param, next, np + 1, w))) return rt;
  }
  if (n->wild && np < ROUTER_MAX_PARAMS) {
    w->val[np] = seg;
    w->val_len[np] = (size_t)(w->end - seg);
    w->nparams = np + 1;
    return pick(n->wild, w);
  }
  return NULL;
}

int router_match(const router *r, const char *method, size_t method_len,
                 const char *path, size_t path_len, route_match *m, char *allow,
                 size_t allow_len) {
  walker w;
  if (allow && allow_len) allow[0] = '\0';
  if (!r || !method || !path || path_len == 0 || path[0] != '/')
    return NNO_ENOENT;
  w.method = method;
  w.method_len = method_len;
  w.is_head = method_len == 4 && memcmp(method, "HEAD", 4) == 0;
  w.end = path + path_len;
  w.nparams = 0;
  w.path_found = 0;
  w.allow = allow;
  w.allow_len = allow_len;
  w.allow_used = 0;
  const rroute *rt = walk(r->root, path + 1, 0, &w);
  if (!rt) return w.path_found ? NNO_EINVAL : NNO_ENOENT;
  /* A failed branch may have written the Allow buffer before a later one
   * matched; a success leaves it empty. */
  if (allow && allow_len) allow[0] = '\0';
  if (m) {
    m->target = rt->target;
    m->pattern = rt->pattern;
    m->method = rt->method;
    m->nparams = w.nparams;
    for (size_t i = 0; i < w.nparams; i++) {
      m->params[i].name = rt->names[i];
      m->params[i].name_len = rt->name_lens[i];
      m->params[i].value = w.val[i];
      m->params[i].value_len = w.val_len[i];
    }
  }
  return 0;
}
