/* "Did you mean" (see nno/sdk/request.h): pure, in a file of its own so
 * that a program linking only it (the host's manifest reader) pulls in
 * nothing that needs nno_sdk_init. */
#include <string.h>

#include <nno/sdk/request.h>

/* Edit distance of `a` and `b` (insertions, deletions, substitutions and
 * swaps of neighbours each cost 1), or `cap` + 1 once it exceeds `cap`.
 * Only short words can be within a few edits of a known one: longer ones
 * are cut off before the table is built. */
static size_t edit_distance(const char *a, const char *b, size_t cap) {
  enum { W = 40 };
  size_t la = strlen(a), lb = strlen(b);
  if (la >= W || lb >= W || (la > lb ? la - lb : lb - la) > cap)
    return cap + 1;
  size_t d[W][W];
  for (size_t i = 0; i <= la; i++) d[i][0] = i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      size_t v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  return d[la][lb] > cap ? cap + 1 : d[la][lb];
}

const char *nno_nearest(const char *word, const char *const *known,
                        size_t max_edits) {
  const char *best = NULL;
  size_t bestd = max_edits + 1;
  if (!word || !known) return NULL;
  for (size_t i = 0; known[i]; i++) {
    size_t d = edit_distance(word, known[i], max_edits);
    if (d < bestd) {
      bestd = d;
      best = known[i];
    }
  }
  return best;
}
