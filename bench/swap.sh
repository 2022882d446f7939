#!/usr/bin/env bash
# Version swaps (summary in bench/README.md, "Version swaps"):
#   1. start nno (2 workers, access log off, iam + registry + provisioning)
#      with the fixture stacks of the version tests (build/tests/stacks/ver:
#      "ver" 1.0.0 and 2.0.0, the same package built twice, answering its
#      version on GET /ver, with a migrated sql database each);
#   2. create the platform `swap` (plan "unmetered") on ver 1.0.0;
#   3. SWAPS swaps 1.0.0 <-> 2.0.0 through the operator API, each timed: the
#      activation call (provisioning and migrations up or down included),
#      and when every worker first answers the new version (one keep-alive
#      connection per worker polling from the moment the call is sent);
#   4. GET /p/swap/ver with wrk -t$THREADS -c$CONNS -d$DURATION --latency,
#      ROUNDS rounds of two runs, order alternating: "steady" (no swap) and
#      "swapping" (a swap every INTERVAL_MS meanwhile): req/s, p50, p99 and
#      the ratios swapping / steady. Any non-2xx answer fails the run.
#
# Environment:
#   SWAPS=20  ROUNDS=3  DURATION=10s  THREADS=2  CONNS=32  INTERVAL_MS=500
#   WARMUP=2s (0: none)  STACKS_DIR=build/tests/stacks/ver
#   NNO=build/bin/nno  NNO_WORKERS=2  WRK=wrk  KEEP=1 (keep the temp dir)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
load() { python3 "$HERE/registry_load.py" "$@"; }
swap() { python3 "$HERE/swap_load.py" "$@"; }
lib() { python3 "$HERE/benchlib.py" "$@"; }
. "$HERE/lib.sh"

SWAPS=${SWAPS:-20}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
INTERVAL_MS=${INTERVAL_MS:-500}
WARMUP=${WARMUP:-2s}
STACKS_DIR=${STACKS_DIR:-$ROOT/build/tests/stacks/ver}
NNO=${NNO:-$ROOT/build/bin/nno}
NNO_WORKERS=${NNO_WORKERS:-2}
WRK=${WRK:-wrk}
KEEP=${KEEP:-0}

for tool in "$WRK" python3; do
  command -v "$tool" >/dev/null ||
    { echo "swap.sh: $tool not found (scripts/setup-deps.sh bench)" >&2; exit 1; }
done
[ -x "$NNO" ] || { echo "swap.sh: $NNO not built (run make first)" >&2; exit 1; }
[ -f "$STACKS_DIR/ver/2.0.0/stack.json" ] ||
  { echo "swap.sh: no fixture stacks in $STACKS_DIR (run make first)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nno-bench-swap.XXXXXX")
PID=
WRK_PID=
SWAPPER_PID=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$WRK_PID" ] && kill -TERM "$WRK_PID" 2>/dev/null
  [ -n "$SWAPPER_PID" ] && kill -TERM "$SWAPPER_PID" 2>/dev/null
  [ -n "$PID" ] && stop_tree "$PID"
  finish_tmp swap.sh "$rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

alive() {
  kill -0 "$PID" 2>/dev/null && return 0
  echo "swap.sh: nno died; its log:" >&2
  tail -n 50 "$TMP/nno.log" >&2
  exit 1
}

echo "# nno version swap bench — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -r)"
echo "# $SWAPS timed swaps; wrk -t$THREADS -c$CONNS -d$DURATION --latency," \
     "$ROUNDS round(s), a swap every $INTERVAL_MS ms while swapping; $NNO_WORKERS workers"
echo "# $("$WRK" --version 2>&1 | head -n1 | sed 's/ Copyright.*//' || true)"

PORT=$(lib freeport)
URL="http://127.0.0.1:$PORT"
mkdir -p "$TMP/var"
printf '{"log":{"access":false},"stacks_dirs":["%s"],"core_plugins":["iam","registry","provisioning"]}\n' \
  "$STACKS_DIR" >"$TMP/nno.json"
"$NNO" serve --listen "127.0.0.1:$PORT" --workers "$NNO_WORKERS" \
  --data "$TMP/var" --config "$TMP/nno.json" >"$TMP/nno.log" 2>&1 &
PID=$!
load ready "$URL" || { alive; exit 1; }
KEYFILE="$TMP/var/operator.key"
[ -s "$KEYFILE" ] || { echo "swap.sh: no $KEYFILE (is the registry loaded?)" >&2; exit 1; }
echo "nno: $URL pid $PID, workers $(load workers "$URL")"
swap setup "$URL" "$KEYFILE" swap 1.0.0

echo
echo "== $SWAPS swaps: the call, and every worker on the new version =="
swap reach "$URL" "$KEYFILE" swap "$SWAPS" | tee "$TMP/reach.txt" | grep -v '^RESULT'
alive

echo
echo "== GET /p/swap/ver: steady versus swapping every $INTERVAL_MS ms =="
run_wrk() {  # duration outfile
  "$WRK" -t"$THREADS" -c"$CONNS" -d"$1" --latency "$URL/p/swap/ver" >"$2" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { echo "swap.sh: wrk failed:" >&2; cat "$2" >&2; exit 1; }
  WRK_PID=
}
secs() { awk -v d="$1" 'BEGIN { n = d + 0; if (d ~ /m$/) n *= 60; print n }'; }

[ "$WARMUP" != 0 ] && run_wrk "$WARMUP" "$TMP/warmup.txt"

RESULTS="$TMP/results.txt"
: >"$RESULTS"
ERRORS=0
printf '%-5s %-9s %10s %9s %9s %7s\n' round run req/s "p50 ms" "p99 ms" swaps
for ((r = 1; r <= ROUNDS; r++)); do
  order=(steady swapping)
  ((r % 2 == 0)) && order=(swapping steady)
  for which in "${order[@]}"; do
    out="$TMP/wrk-$which-$r.txt"
    nswaps=-
    if [ "$which" = swapping ]; then
      swap swapper "$URL" "$KEYFILE" swap "$INTERVAL_MS" "$(secs "$DURATION")" \
        >"$TMP/swapper-$r.txt" 2>&1 &
      SWAPPER_PID=$!
    fi
    run_wrk "$DURATION" "$out"
    if [ -n "$SWAPPER_PID" ]; then
      wait "$SWAPPER_PID" ||
        { echo "swap.sh: swapper failed:" >&2; cat "$TMP/swapper-$r.txt" >&2; exit 1; }
      SWAPPER_PID=
      nswaps=$(awk '/^SWAPS/ { print $2 }' "$TMP/swapper-$r.txt")
    fi
    read -r rps p50 p99 reqs non2xx sockerr < <(load wrk "$out")
    echo "$r $which $rps $p50 $p99" >>"$RESULTS"
    printf '%-5s %-9s %9.1fk %9.3f %9.3f %7s' "$r" "$which" \
      "$(awk -v x="$rps" 'BEGIN { print x / 1000 }')" "$p50" "$p99" "$nswaps"
    if [ "$non2xx" -ne 0 ] || [ "$sockerr" -ne 0 ]; then
      printf '   <-- %s non-2xx, %s socket errors (%s)' "$non2xx" "$sockerr" "$out"
      ERRORS=1
    fi
    echo
    alive
  done
done
# Keep the report's first label "steady" whatever order round 1 ran in.
sort -k2,2 -s "$RESULTS" >"$RESULTS.sorted"
echo
load report "$RESULTS.sorted" |
  sed 's/^platform/run     /; s/no cost for the higher index/swaps cost nothing/'

if [ "$ERRORS" -ne 0 ]; then
  echo
  echo "swap.sh: FAILED: some runs had non-2xx answers or socket errors" \
       "(marked above)" >&2
  exit 1
fi
