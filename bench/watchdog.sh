#!/usr/bin/env bash
# The loop watchdog's cost on the in-process path (bench/README.md, "The
# watchdog's cost"): this tree's committed HEAD built twice, as it is and
# with the watchdog taken out, side by side in one gateway.sh run
# (PEERS=nno,nno-base: the full chain on GET /hello, access log on).
#
# Taken out, in a clone of HEAD (two edits, checked to have applied):
#   host/watchdog.c  watchdog_start returns at once: no prepare and check
#                    hooks, no clock reading after the poll, no look at the
#                    loop's descriptor after long stretches (and, in trees
#                    before that, no libuv idle-time metric), no RSS timer,
#                    no thread; requests are dated when read
#   host/callctx.c   the calls into plugins are not timed (no clock reads)
# What stays is what the crash report needs (the call's record).
#
# Environment: ROUNDS=5 DURATION=5s, and gateway.sh's own; WORK= a folder
# to build in (default: a temp dir, removed unless KEEP=1).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
NNO=${NNO:-$ROOT/build/bin/nno}
KEEP=${KEEP:-0}
export ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-5s}

[ -x "$NNO" ] || { echo "watchdog.sh: $NNO not built (run make first)" >&2; exit 1; }
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
  echo "watchdog.sh: warning: uncommitted changes are in $NNO, not in the" \
       "build without the watchdog (a clone of HEAD)" >&2
fi
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/nno-bench-watchdog.XXXXXX")}
cleanup() { [ "$KEEP" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT

SRC=$WORK/src
rm -rf "$SRC"
git clone -q "$ROOT" "$SRC"
sed -i 's|^int watchdog_start(worker \*w, int slot) {$|&\n  if (w \|\| slot \|\| !w) return -1; /* bench: no watchdog */|' \
  "$SRC/host/watchdog.c"
sed -i 's|^  clock_gettime(g_clock, &ts);$|  ts.tv_sec = 0, ts.tv_nsec = 0; /* bench: calls not timed */|' \
  "$SRC/host/callctx.c"
grep -q 'bench: no watchdog' "$SRC/host/watchdog.c" &&
  grep -q 'bench: calls not timed' "$SRC/host/callctx.c" ||
  { echo "watchdog.sh: the edits did not apply (host/watchdog.c or host/callctx.c changed)" >&2; exit 1; }
echo "# building HEAD without the watchdog in $SRC" >&2
make -s -C "$SRC" build >"$WORK/build.log" 2>&1 ||
  { tail -n 30 "$WORK/build.log" >&2; exit 1; }

echo "# nno = this build; nno-base = HEAD without the watchdog"
NNO="$NNO" NNO_BASE="$SRC/build/bin/nno" PEERS=nno,nno-base \
  NNO_CONFIG=${NNO_CONFIG:-'{"log":{"access":true}}'} "$HERE/gateway.sh"
