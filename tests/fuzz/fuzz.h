/* What every fuzz target shares: its entry point and a check that stops
 * the run (libFuzzer and the replay driver alike) with a message.
 *
 * Each target defines LLVMFuzzerTestOneInput(). Built with clang and
 * -fsanitize=fuzzer it is a libFuzzer binary (make fuzz); built with any
 * compiler beside replay.c it is fuzz_replay_<target>, which feeds every
 * file of the target's committed corpus once (make test). */
#ifndef NNO_TESTS_FUZZ_H
#define NNO_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: abort (a crash to libFuzzer, a
 * failure to ctest) naming the file, line and condition. Active in every
 * build type: NDEBUG does not turn it off. */
#define FUZZ_ASSERT(cond)                                                      \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,     \
              #cond);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#endif
