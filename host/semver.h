/* Semantic versions (semver.org 2.0.0) and npm-style ranges. */
#ifndef NNO_HOST_SEMVER_H
#define NNO_HOST_SEMVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct semver {
  uint32_t major, minor, patch;
  char pre[64]; /* pre-release ("rc.1"), "" if none; build metadata dropped */
} semver;

/* Parse "1.2.3", "1.2.3-rc.1", "1.2.3+build". Strict: no "v" prefix, no
 * leading zeros, all three numbers (each at most 4294967295), a pre-release
 * of at most 63 bytes, at most 256 bytes in all. Returns 0 or -1 (then *out
 * is unchanged). */
int semver_parse(const char *s, semver *out);

/* <0, 0, >0 like strcmp, with semver precedence (pre-release < release). */
int semver_cmp(const semver *a, const semver *b);

/* Does `v` satisfy `range`? Ranges: "1.2.3" (exact), "=1.2.3", "^1.2",
 * "^1.2.3", "~1.2", "~1.2.3", ">=1.0", ">1.0.0", "<2.0", "<=2.0.0", "*",
 * "1.x", "1.2.x", and space-separated conjunctions (">=1.0 <2.0"), and "||"
 * between alternatives. Partial versions fill with zeros, except that, as in
 * npm, a partial stands for its whole series where that is the meaning:
 * "1.2" is ">=1.2.0 <1.3.0", ">1.2" is ">=1.3.0", "<=1.2" is "<1.3.0".
 * An operator is glued to its version (">=1.0", not ">= 1.0"); an empty
 * range, or an empty side of "||", is malformed; at most 256 bytes.
 * Pre-release versions only match a comparator with the same
 * major.minor.patch that itself has a pre-release (npm's rule).
 * Returns 1 (satisfies), 0 (does not), -1 (the range is malformed). */
int semver_satisfies(const semver *v, const char *range);

/* 0 if `range` is a well-formed range, -1 otherwise. */
int semver_range_valid(const char *range);

#endif
