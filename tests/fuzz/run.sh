#!/bin/sh
# Run libFuzzer targets one after the other (make fuzz).
#
#   tests/fuzz/run.sh BUILD_DIR TARGET...
#
# Environment: FUZZ_SECONDS (default 60) per target, or FUZZ_RUNS (a number
# of executions; overrides the time); FUZZ_ARGS for extra libFuzzer flags.
# One fuzzing process at a time (no -jobs or -workers): the machine is
# shared.
#
# New interesting inputs go to BUILD_DIR/fuzz/corpus/TARGET (not to the
# committed seeds); crashes to BUILD_DIR/fuzz/crashes/TARGET/. A crash stops
# the run with a non-zero exit.
set -eu

build=$1
shift
src=$(cd "$(dirname "$0")" && pwd)
seconds=${FUZZ_SECONDS:-60}
runs=${FUZZ_RUNS:-}
failed=

for t in "$@"; do
  bin=$build/fuzz/fuzz_$t
  if [ ! -x "$bin" ]; then
    echo "fuzz: no target '$t' ($bin missing)" >&2
    exit 2
  fi
  work=$build/fuzz/corpus/$t
  crashes=$build/fuzz/crashes/$t
  mkdir -p "$work" "$crashes"
  dict=
  [ -f "$src/dict/$t.dict" ] && dict="-dict=$src/dict/$t.dict"
  if [ -n "$runs" ]; then
    limit="-runs=$runs"
  else
    limit="-max_total_time=$seconds"
  fi
  echo "fuzz: $t ($limit)"
  # shellcheck disable=SC2086
  if ! "$bin" $limit -print_final_stats=1 \
       -artifact_prefix="$crashes/" $dict ${FUZZ_ARGS:-} \
       "$work" "$src/corpus/$t"; then
    failed="$failed $t"
    echo "fuzz: $t found a crash; the input is in $crashes/" >&2
    echo "hint: keep it as tests/fuzz/corpus/$t/crash-<what> once fixed" >&2
  fi
done

if [ -n "$failed" ]; then
  echo "fuzz: FAILED:$failed" >&2
  exit 1
fi
echo "fuzz: every target ran clean"
