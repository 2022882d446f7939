#!/usr/bin/env bash
# Cached session validation, timed (summary in bench/README.md, "Session
# validation"): builds bench/session_bench.c by hand against the IAM
# plugin's session cache and token code (plugins/iam/session.c, keys.c) and
# libsodium, runs it, and checks the target (< 2 us per validation).
# Needs a C compiler and libsodium's headers (the build's own
# dependencies); not the nno build itself.
#
# Environment:
#   SESSIONS=10000  LOOKUPS=1000000  REPS=5   session_bench's arguments
#   CC=cc  CFLAGS=-O2   the compiler and its flags
#   TARGET_NS=2000  the target, ns per validation (random order, median)
#   KEEP=1          keep the temp dir with the binary and its output
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")

SESSIONS=${SESSIONS:-10000}
LOOKUPS=${LOOKUPS:-1000000}
REPS=${REPS:-5}
CC=${CC:-cc}
CFLAGS=${CFLAGS:--O2}
TARGET_NS=${TARGET_NS:-2000}
KEEP=${KEEP:-0}

command -v "$CC" >/dev/null ||
  { echo "session.sh: $CC not found" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nno-bench-session.XXXXXX")
cleanup() {
  local rc=$?
  if [ "$KEEP" = 1 ] || [ "$rc" -ne 0 ]; then
    echo "session.sh: binary and output kept in $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT

SODIUM_CFLAGS=$(pkg-config --cflags libsodium 2>/dev/null || true)
SODIUM_LIBS=$(pkg-config --libs libsodium 2>/dev/null || echo -lsodium)

# shellcheck disable=SC2086
"$CC" $CFLAGS -Wall -Wextra -std=c11 -D_POSIX_C_SOURCE=200809L \
  -I"$ROOT/plugins/iam" -I"$ROOT/plugin-api/include" $SODIUM_CFLAGS \
  -o "$TMP/session_bench" "$HERE/session_bench.c" \
  "$ROOT/plugins/iam/session.c" "$ROOT/plugins/iam/keys.c" $SODIUM_LIBS

echo "# nno session bench — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores," \
     "$(uname -r), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "# $CC $CFLAGS; libsodium $(pkg-config --modversion libsodium 2>/dev/null || echo '?')"
"$TMP/session_bench" "$SESSIONS" "$LOOKUPS" "$REPS" | tee "$TMP/out.txt"

# the first figure of the "validation" row: random order, median
ns=$(sed -n 's/^validation[^0-9]*\([0-9.]*\).*/\1/p' "$TMP/out.txt")
[ -n "$ns" ] || { echo "session.sh: no validation figure in the output" >&2; exit 1; }
echo
if awk -v n="$ns" -v t="$TARGET_NS" 'BEGIN { exit !(n < t) }'; then
  echo "target: met     a cached validation ${ns} ns < ${TARGET_NS} ns"
else
  echo "target: MISSED  a cached validation ${ns} ns >= ${TARGET_NS} ns"
fi
