/* Semantic versions and ranges (host/semver.c). The input is up to three
 * NUL- or LF-separated strings A, B and R: A and B are parsed as versions,
 * R as a range, and what must hold whatever they say is checked:
 *   - a parsed version prints back to itself (build metadata aside) and
 *     satisfies its own "=V", "V", "^V", "~V", ">=V" and "<=V", never
 *     ">V" or "<V"; a release also satisfies "*";
 *   - compare is reflexive, antisymmetric and transitive (A, B and the
 *     round-tripped A), and agrees with "=B", ">B", "<B", ">=B", "<=B";
 *   - a range is malformed whatever version is tested against it. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "semver.h"

static int sgn(int c) { return (c > 0) - (c < 0); }

/* "M.m.p[-pre]" of v into buf. */
static void print(const semver *v, char *buf, size_t cap) {
  snprintf(buf, cap, "%u.%u.%u%s%s", v->major, v->minor, v->patch,
           v->pre[0] ? "-" : "", v->pre);
}

static int sat(const semver *v, const char *op, const char *text) {
  char r[300];
  snprintf(r, sizeof r, "%s%s", op, text);
  int rc = semver_satisfies(v, r);
  FUZZ_ASSERT(rc == 0 || rc == 1);
  return rc;
}

static void check_version(const semver *v) {
  char text[300];
  semver back;
  FUZZ_ASSERT(memchr(v->pre, '\0', sizeof v->pre) != NULL);
  print(v, text, sizeof text);
  FUZZ_ASSERT(semver_parse(text, &back) == 0);
  FUZZ_ASSERT(memcmp(&back, v, sizeof back) == 0);
  FUZZ_ASSERT(semver_cmp(v, v) == 0);
  FUZZ_ASSERT(sat(v, "=", text) == 1);
  FUZZ_ASSERT(sat(v, "", text) == 1);
  FUZZ_ASSERT(sat(v, "^", text) == 1);
  FUZZ_ASSERT(sat(v, "~", text) == 1);
  FUZZ_ASSERT(sat(v, ">=", text) == 1);
  FUZZ_ASSERT(sat(v, "<=", text) == 1);
  FUZZ_ASSERT(sat(v, ">", text) == 0);
  FUZZ_ASSERT(sat(v, "<", text) == 0);
  if (!v->pre[0]) FUZZ_ASSERT(semver_satisfies(v, "*") == 1);
  /* A range of alternatives holds when one of them does. */
  char alt[300];
  snprintf(alt, sizeof alt, "<0.0.0 || %s", text);
  FUZZ_ASSERT(semver_satisfies(v, alt) == 1);
}

/* a against b, both parsed. */
static void check_pair(const semver *a, const semver *b, const char *btext) {
  int ab = semver_cmp(a, b), ba = semver_cmp(b, a);
  FUZZ_ASSERT(sgn(ab) == -sgn(ba));
  /* "B" printed without build metadata, which does not order anything. */
  char t[300];
  print(b, t, sizeof t);
  (void)btext;
  int eq = sat(a, "=", t), gt = sat(a, ">", t), lt = sat(a, "<", t);
  int ge = sat(a, ">=", t), le = sat(a, "<=", t);
  if (!a->pre[0]) {
    FUZZ_ASSERT(eq == (ab == 0));
    FUZZ_ASSERT(gt == (ab > 0));
    FUZZ_ASSERT(lt == (ab < 0));
    FUZZ_ASSERT(ge == (ab >= 0));
    FUZZ_ASSERT(le == (ab <= 0));
  } else {
    /* A pre-release satisfies only a comparator that names its own
     * major.minor.patch with a pre-release: fewer, never more. */
    FUZZ_ASSERT(eq == (ab == 0));
    FUZZ_ASSERT(!gt || ab > 0);
    FUZZ_ASSERT(!lt || ab < 0);
    FUZZ_ASSERT(!ge || ab >= 0);
    FUZZ_ASSERT(!le || ab <= 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char part[3][300] = {"", "", ""};
  size_t k = 0, o = 0;
  for (size_t i = 0; i < size && k < 3; i++) {
    if (data[i] == '\0' || data[i] == '\n') {
      k++;
      o = 0;
    } else if (o < sizeof part[0] - 1) {
      part[k][o++] = (char)data[i];
    }
  }
  semver a, b, c;
  int ha = semver_parse(part[0], &a) == 0;
  int hb = semver_parse(part[1], &b) == 0;
  if (ha) check_version(&a);
  if (hb) check_version(&b);
  if (ha && hb) {
    check_pair(&a, &b, part[1]);
    check_pair(&b, &a, part[0]);
    /* Transitivity over a, b and the zero version. */
    memset(&c, 0, sizeof c);
    if (semver_cmp(&a, &b) <= 0 && semver_cmp(&b, &c) <= 0)
      FUZZ_ASSERT(semver_cmp(&a, &c) <= 0);
    if (semver_cmp(&c, &a) <= 0 && semver_cmp(&a, &b) <= 0)
      FUZZ_ASSERT(semver_cmp(&c, &b) <= 0);
  }
  /* The range: the same verdict on malformation for every version. */
  int valid = semver_range_valid(part[2]) == 0;
  memset(&c, 0, sizeof c);
  int rs[3] = {semver_satisfies(&c, part[2]), ha ? semver_satisfies(&a, part[2]) : 0,
               hb ? semver_satisfies(&b, part[2]) : 0};
  for (int i = 0; i < 3; i++) {
    if (i == 1 && !ha) continue;
    if (i == 2 && !hb) continue;
    FUZZ_ASSERT(rs[i] == -1 || rs[i] == 0 || rs[i] == 1);
    FUZZ_ASSERT((rs[i] == -1) == !valid);
  }
  /* "R || anything-valid" holds where R holds. */
  if (valid && ha && rs[1] == 1 && strlen(part[2]) < 240) {
    char alt[300];
    snprintf(alt, sizeof alt, "%s || >99999.0.0", part[2]);
    FUZZ_ASSERT(semver_satisfies(&a, alt) == 1);
  }
  return 0;
}
