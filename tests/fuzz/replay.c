/* Replays corpora through a fuzz target without libFuzzer: every regular
 * file of each folder given (or of the target's committed corpus when none
 * is given) is passed once to LLVMFuzzerTestOneInput(), in name order.
 *
 * This is how `make test` (and the ASan and valgrind runs) keep every seed
 * and every crash input found so far passing, with no clang needed. A
 * failed invariant aborts; a clean run prints how many inputs it fed. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#ifndef NNO_FUZZ_CORPUS
#define NNO_FUZZ_CORPUS "."
#endif

/* Larger inputs than any target reads: a corpus file this big is a mistake. */
#define REPLAY_MAX_INPUT (4u << 20)

static int feed_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  /* An exact-size heap copy, so ASan and valgrind see reads past its end. */
  uint8_t *buf = malloc(REPLAY_MAX_INPUT);
  size_t n = buf ? fread(buf, 1, REPLAY_MAX_INPUT, f) : 0;
  int err = !buf || ferror(f) || !feof(f);
  fclose(f);
  if (err) {
    fprintf(stderr, "fuzz_replay: %s: cannot read (or larger than %u bytes)\n",
            path, REPLAY_MAX_INPUT);
    free(buf);
    return -1;
  }
  uint8_t *exact = malloc(n ? n : 1);
  if (!exact) {
    free(buf);
    return -1;
  }
  memcpy(exact, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

static int skip(const struct dirent *e) { return e->d_name[0] != '.'; }

/* Feeds a file, or every regular file of a folder; returns the count or -1. */
static long feed_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) return feed_file(path) == 0 ? 1 : -1;
  struct dirent **list;
  int n = scandir(path, &list, skip, alphasort);
  if (n < 0) {
    fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  long fed = 0;
  for (int i = 0; i < n; i++) {
    char file[4096];
    snprintf(file, sizeof file, "%s/%s", path, list[i]->d_name);
    if (fed >= 0 && stat(file, &st) == 0 && S_ISREG(st.st_mode))
      fed = feed_file(file) == 0 ? fed + 1 : -1;
    free(list[i]);
  }
  free(list);
  return fed;
}

int main(int argc, char **argv) {
  static char *dflt[] = {NULL, NNO_FUZZ_CORPUS};
  if (argc < 2) {
    dflt[0] = argv[0];
    argv = dflt;
    argc = 2;
  }
  long total = 0;
  for (int i = 1; i < argc; i++) {
    long n = feed_path(argv[i]);
    if (n < 0) return 1;
    if (n == 0) {
      fprintf(stderr, "fuzz_replay: %s: no input to replay\n", argv[i]);
      return 1;
    }
    total += n;
  }
  printf("fuzz_replay: %ld input(s) replayed clean\n", total);
  return 0;
}
