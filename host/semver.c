/* Semantic versions (semver.org 2.0.0) and npm-style ranges, parsed in one
 * pass over bounded input without allocating. */
#include "semver.h"

#include <string.h>

/* Longest version or range text accepted, in bytes. */
#define SEMVER_TEXT_MAX 256

/* A version as the range code sees it. Numbers are 64-bit so that upper
 * bounds such as "^4294967295" (M+1) cannot overflow. The pre-release is a
 * borrowed slice, empty for a release. */
typedef struct bound {
  uint64_t n[3];
  const char *pre;
  size_t pre_len;
} bound;

/* A partial version from a range: "*", "1", "1.x", "1.2", "1.2.3-rc.1".
 * nnum counts the leading numbers given; the rest are zero. */
typedef struct partial {
  int nnum;
  uint64_t n[3];
  const char *pre;
  size_t pre_len;
} partial;

enum { OP_EQ, OP_LT, OP_LE, OP_GT, OP_GE };

typedef struct comparator {
  int op;
  bound b;
} comparator;

/* What one range token ("^1.2", ">=1.0", "1.x") desugars to: `n`
 * comparators that must all hold (none: any version), or nothing at all. */
typedef struct clause {
  int never;
  int n;
  comparator c[2];
} clause;

/* The operator written before a partial version. */
enum { K_EXACT, K_CARET, K_TILDE, K_GT, K_GE, K_LT, K_LE };

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int is_space(char c) { return c == ' ' || c == '\t'; }

static int is_ident_char(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         c == '-';
}

static int all_digits(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!is_digit(s[i])) return 0;
  return n > 0;
}

static int sign(int c) { return (c > 0) - (c < 0); }

/* Reads a decimal number with no leading zero, at most UINT32_MAX (the
 * width of semver's fields). Returns 0 or -1. */
static int parse_num(const char **pp, const char *end, uint64_t *out) {
  const char *p = *pp;
  uint64_t v = 0;
  if (p == end || !is_digit(*p)) return -1;
  if (*p == '0' && p + 1 < end && is_digit(p[1])) return -1;
  while (p < end && is_digit(*p)) {
    v = v * 10 + (uint64_t)(*p - '0');
    if (v > UINT32_MAX) return -1;
    p++;
  }
  *pp = p;
  *out = v;
  return 0;
}

/* Reads dot-separated, non-empty identifiers of [0-9A-Za-z-]. Pre-release
 * identifiers (strict_num) that are numeric must not have leading zeros;
 * build metadata identifiers may. Returns 0 or -1. */
static int parse_idents(const char **pp, const char *end, int strict_num) {
  const char *p = *pp;
  for (;;) {
    const char *s = p;
    while (p < end && is_ident_char(*p)) p++;
    if (p == s) return -1;
    if (strict_num && p - s > 1 && *s == '0' && all_digits(s, (size_t)(p - s)))
      return -1;
    if (p < end && *p == '.') {
      p++;
      continue;
    }
    break;
  }
  *pp = p;
  return 0;
}

/* Reads the optional "-pre" and "+build" that may follow a full version. */
static int parse_suffix(const char **pp, const char *end, const char **pre,
                        size_t *pre_len) {
  const char *p = *pp;
  *pre = "";
  *pre_len = 0;
  if (p < end && *p == '-') {
    const char *s = ++p;
    if (parse_idents(&p, end, 1) < 0) return -1;
    *pre = s;
    *pre_len = (size_t)(p - s);
  }
  if (p < end && *p == '+') {
    p++;
    if (parse_idents(&p, end, 0) < 0) return -1;
  }
  *pp = p;
  return 0;
}

/* Compares two identifiers per semver §11.4: numbers numerically (no
 * leading zeros, so the longer is the larger), numbers before alphanumerics,
 * alphanumerics in ASCII order. */
static int cmp_ident(const char *a, size_t al, const char *b, size_t bl) {
  int an = all_digits(a, al), bn = all_digits(b, bl);
  if (an != bn) return an ? -1 : 1;
  if (an && al != bl) return al < bl ? -1 : 1;
  int c = memcmp(a, b, al < bl ? al : bl);
  if (c) return sign(c);
  return (al > bl) - (al < bl);
}

/* Compares pre-release strings; an empty one (a release) is the greater, and
 * when one set is a prefix of the other the longer set wins. */
static int cmp_pre(const char *a, size_t alen, const char *b, size_t blen) {
  if (alen == 0 || blen == 0) return (alen == 0) - (blen == 0);
  const char *ae = a + alen, *be = b + blen;
  for (;;) {
    const char *ai = a, *bi = b;
    while (a < ae && *a != '.') a++;
    while (b < be && *b != '.') b++;
    int c = cmp_ident(ai, (size_t)(a - ai), bi, (size_t)(b - bi));
    if (c) return c;
    int amore = a < ae, bmore = b < be;
    if (!amore || !bmore) return amore - bmore;
    a++;
    b++;
  }
}

static int cmp_bound(const bound *a, const bound *b) {
  for (int i = 0; i < 3; i++)
    if (a->n[i] != b->n[i]) return a->n[i] < b->n[i] ? -1 : 1;
  return cmp_pre(a->pre, a->pre_len, b->pre, b->pre_len);
}

static bound to_bound(const semver *v) {
  bound b = {{v->major, v->minor, v->patch}, v->pre, strlen(v->pre)};
  return b;
}

int semver_parse(const char *s, semver *out) {
  uint64_t n[3];
  const char *pre;
  size_t pre_len;
  if (!s || !out) return -1;
  size_t len = strnlen(s, SEMVER_TEXT_MAX + 1);
  if (len > SEMVER_TEXT_MAX) return -1;
  const char *p = s, *end = s + len;
  for (int i = 0; i < 3; i++) {
    if (parse_num(&p, end, &n[i]) < 0) return -1;
    if (i < 2 && (p == end || *p++ != '.')) return -1;
  }
  if (parse_suffix(&p, end, &pre, &pre_len) < 0 || p != end) return -1;
  if (pre_len >= sizeof out->pre) return -1;
  memset(out, 0, sizeof *out);
  out->major = (uint32_t)n[0];
  out->minor = (uint32_t)n[1];
  out->patch = (uint32_t)n[2];
  memcpy(out->pre, pre, pre_len);
  return 0;
}

int semver_cmp(const semver *a, const semver *b) {
  bound x = to_bound(a), y = to_bound(b);
  return cmp_bound(&x, &y);
}

/* Reads a partial version. "x", "X" or "*" may stand for a number, and then
 * only wildcards may follow ("1.x.3" is refused); a pre-release and build
 * are allowed only after three numbers. */
static int parse_partial(const char **pp, const char *end, partial *out) {
  const char *p = *pp;
  int wild = 0;
  memset(out, 0, sizeof *out);
  out->pre = "";
  for (int i = 0; i < 3; i++) {
    if (p < end && (*p == 'x' || *p == 'X' || *p == '*')) {
      wild = 1;
      p++;
    } else if (wild || parse_num(&p, end, &out->n[i]) < 0) {
      return -1;
    } else {
      out->nnum++;
    }
    if (i == 2 || p == end || *p != '.') break;
    p++; /* a '.' must be followed by another component */
  }
  if (out->nnum == 3 && parse_suffix(&p, end, &out->pre, &out->pre_len) < 0)
    return -1;
  *pp = p;
  return 0;
}

static void add(clause *cl, int op, uint64_t a, uint64_t b, uint64_t c,
                const char *pre, size_t pre_len) {
  comparator *k = &cl->c[cl->n++];
  k->op = op;
  k->b.n[0] = a;
  k->b.n[1] = b;
  k->b.n[2] = c;
  k->b.pre = pre;
  k->b.pre_len = pre_len;
}

/* An exclusive upper bound "<X-0": pre-release "0" is the lowest there is,
 * so the bound also excludes X's own pre-releases (npm does the same). */
static void add_below(clause *cl, uint64_t a, uint64_t b, uint64_t c) {
  add(cl, OP_LT, a, b, c, "0", 1);
}

/* Desugars one token into comparators, following npm:
 *   1.2.3 =1.2.3     =1.2.3          1.2 1.2.x   >=1.2.0 <1.3.0-0
 *   ^1.2.3           >=1.2.3 <2.0.0-0   ^0.2.3   >=0.2.3 <0.3.0-0
 *   ^0.0.3           >=0.0.3 <0.0.4-0   ^1.2     >=1.2.0 <2.0.0-0
 *   ~1.2.3           >=1.2.3 <1.3.0-0   ~1       >=1.0.0 <2.0.0-0
 *   >1.2             >=1.3.0            <1.2     <1.2.0-0
 *   >=1.2            >=1.2.0            <=1.2    <1.3.0-0
 *   * x >=* <=*      any release        >* <*    nothing */
static void desugar(int kind, const partial *v, clause *cl) {
  uint64_t M = v->n[0], m = v->n[1], p = v->n[2];
  int n = v->nnum;
  memset(cl, 0, sizeof *cl);
  /* The next version outside "M" (n == 1) or "M.m" (n == 2). */
  uint64_t uM = n == 1 ? M + 1 : M, um = n == 1 ? 0 : m + 1;
  switch (kind) {
  case K_EXACT:
    if (n == 3) {
      add(cl, OP_EQ, M, m, p, v->pre, v->pre_len);
    } else if (n > 0) {
      add(cl, OP_GE, M, m, 0, "", 0);
      add_below(cl, uM, um, 0);
    }
    break;
  case K_CARET:
    if (n == 0) break;
    add(cl, OP_GE, M, m, p, v->pre, v->pre_len);
    /* The left-most non-zero number given is the one that may not change. */
    if (M > 0 || n == 1)
      add_below(cl, M + 1, 0, 0);
    else if (m > 0 || n == 2)
      add_below(cl, 0, m + 1, 0);
    else
      add_below(cl, 0, 0, p + 1);
    break;
  case K_TILDE:
    if (n == 0) break;
    add(cl, OP_GE, M, m, p, v->pre, v->pre_len);
    add_below(cl, M + (n == 1), n == 1 ? 0 : m + 1, 0);
    break;
  case K_GT:
    if (n == 0)
      cl->never = 1;
    else if (n == 3)
      add(cl, OP_GT, M, m, p, v->pre, v->pre_len);
    else
      add(cl, OP_GE, uM, um, 0, "", 0);
    break;
  case K_GE:
    if (n > 0) add(cl, OP_GE, M, m, p, v->pre, v->pre_len);
    break;
  case K_LT:
    if (n == 0)
      cl->never = 1;
    else if (n == 3)
      add(cl, OP_LT, M, m, p, v->pre, v->pre_len);
    else
      add_below(cl, M, m, 0);
    break;
  case K_LE:
    if (n == 3)
      add(cl, OP_LE, M, m, p, v->pre, v->pre_len);
    else if (n > 0)
      add_below(cl, uM, um, 0);
    break;
  }
}

/* Reads one token: an optional operator glued to a partial version, ending
 * at whitespace, "|" or the end. */
static int parse_token(const char **pp, const char *end, clause *cl) {
  const char *p = *pp;
  int kind = K_EXACT;
  partial v;
  switch (*p) {
  case '^':
    kind = K_CARET;
    p++;
    break;
  case '~':
    kind = K_TILDE;
    p++;
    break;
  case '=': p++; break;
  case '>':
  case '<':
    /* ">=" and "<=" are one operator: no space between. */
    if (p + 1 < end && p[1] == '=')
      kind = *p == '>' ? K_GE : K_LE;
    else
      kind = *p == '>' ? K_GT : K_LT;
    p += kind == K_GE || kind == K_LE ? 2 : 1;
    break;
  default: break;
  }
  if (parse_partial(&p, end, &v) < 0) return -1;
  if (p < end && !is_space(*p) && *p != '|') return -1;
  desugar(kind, &v, cl);
  *pp = p;
  return 0;
}

static int test(const comparator *k, const bound *v) {
  int c = cmp_bound(v, &k->b);
  switch (k->op) {
  case OP_EQ: return c == 0;
  case OP_LT: return c < 0;
  case OP_LE: return c <= 0;
  case OP_GT: return c > 0;
  default: return c >= 0;
  }
}

int semver_satisfies(const semver *v, const char *range) {
  if (!v || !range) return -1;
  size_t len = strnlen(range, SEMVER_TEXT_MAX + 1);
  if (len > SEMVER_TEXT_MAX) return -1;
  const char *p = range, *end = range + len;
  bound bv = to_bound(v);
  int result = 0;
  /* Parse the whole range even after a match, so that a malformed range is
   * always reported as such, whatever version it is tested with. */
  for (;;) {
    int ok = 1, ntokens = 0;
    /* npm's rule: a pre-release only matches when some comparator of the
     * same set names the same major.minor.patch with a pre-release, so
     * "^1.0.0" never pulls in "1.5.0-beta" by accident. The "-0" of a
     * desugared upper bound may count here too, harmlessly: every
     * pre-release of that tuple already fails the bound itself. */
    int pre_ok = bv.pre_len == 0;
    while (p < end && is_space(*p)) p++;
    while (p < end && *p != '|') {
      clause cl;
      if (parse_token(&p, end, &cl) < 0) return -1;
      if (cl.never) ok = 0;
      for (int i = 0; i < cl.n; i++) {
        const bound *b = &cl.c[i].b;
        if (!test(&cl.c[i], &bv)) ok = 0;
        if (b->pre_len && b->n[0] == bv.n[0] && b->n[1] == bv.n[1] &&
            b->n[2] == bv.n[2])
          pre_ok = 1;
      }
      ntokens++;
      while (p < end && is_space(*p)) p++;
    }
    if (ntokens == 0) return -1; /* "", " || 1", "1 ||" */
    if (ok && pre_ok) result = 1;
    if (p == end) break;
    if (p + 1 == end || p[1] != '|') return -1;
    p += 2;
  }
  return result;
}

int semver_range_valid(const char *range) {
  semver zero;
  memset(&zero, 0, sizeof zero);
  return semver_satisfies(&zero, range) < 0 ? -1 : 0;
}
