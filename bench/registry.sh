#!/usr/bin/env bash
# The registry at scale (summary in bench/README.md, "Registry"):
#   1. start nno (2 workers, access log off) on a fresh data dir;
#   2. create N platforms with TENANTS tenants each through the operator API
#      (CREATE_THREADS keep-alive clients): total time, creates/s;
#   3. list every platform in pages of PAGE: pages/s, rows/s;
#   4. VmRSS of the master and each worker before the creates and after;
#   5. activate `default` on platform #1 and #(N-1) (plan "unmetered", one
#      API key each: the feature route goes through IAM), then measure
#      GET /p/<id>/hello on each in turn with wrk -t$THREADS -c$CONNS
#      -d$DURATION --latency, ROUNDS rounds (order alternating): req/s, p50,
#      p99, and the ratios #(N-1) / #1 (1.0: the routing table costs nothing
#      per platform).
#
# Environment:
#   N=10000  TENANTS=10  CREATE_THREADS=8  PAGE=500
#   ROUNDS=3  DURATION=10s  THREADS=2  CONNS=64  WARMUP=2s (0: none)
#   NNO=build/bin/nno  NNO_WORKERS=2  WRK=wrk  KEEP=1 (keep the temp dir)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
load() { python3 "$HERE/registry_load.py" "$@"; }
lib() { python3 "$HERE/benchlib.py" "$@"; }
. "$HERE/lib.sh"

N=${N:-10000}
TENANTS=${TENANTS:-10}
CREATE_THREADS=${CREATE_THREADS:-8}
PAGE=${PAGE:-500}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
WARMUP=${WARMUP:-2s}
NNO=${NNO:-$ROOT/build/bin/nno}
NNO_WORKERS=${NNO_WORKERS:-2}
WRK=${WRK:-wrk}
KEEP=${KEEP:-0}

for tool in "$WRK" python3; do
  command -v "$tool" >/dev/null ||
    { echo "registry.sh: $tool not found (scripts/setup-deps.sh bench)" >&2; exit 1; }
done
[ -x "$NNO" ] || { echo "registry.sh: $NNO not built (run make first)" >&2; exit 1; }
if [ "$N" -lt 2 ]; then echo "registry.sh: N must be at least 2" >&2; exit 2; fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nno-bench-registry.XXXXXX")
PID=
WRK_PID=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$WRK_PID" ] && kill -TERM "$WRK_PID" 2>/dev/null
  [ -n "$PID" ] && stop_tree "$PID"
  finish_tmp registry.sh "$rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

alive() {
  kill -0 "$PID" 2>/dev/null && return 0
  echo "registry.sh: nno died; its log:" >&2
  tail -n 50 "$TMP/nno.log" >&2
  exit 1
}

rss_table() {  # label: VmRSS of the master and every worker
  local label=$1 workers
  workers=$(load workers "$URL")
  echo "RSS ($label):"
  load rss "$PID" | awk '{ printf "  master %-8s %8.1f MiB\n", $1, $2 / 1024 }'
  # shellcheck disable=SC2086
  load rss $workers | awk '{ printf "  worker %-8s %8.1f MiB\n", $1, $2 / 1024 }'
}

echo "# nno registry bench — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -r)"
echo "# N=$N platforms x $TENANTS tenants, $CREATE_THREADS create threads, pages of $PAGE;" \
     "wrk -t$THREADS -c$CONNS -d$DURATION --latency, $ROUNDS round(s)"
echo "# $("$WRK" --version 2>&1 | head -n1 | sed 's/ Copyright.*//' || true)"

PORT=$(lib freeport)
URL="http://127.0.0.1:$PORT"
mkdir -p "$TMP/var"
printf '%s\n' '{"log":{"access":false}}' >"$TMP/nno.json"
"$NNO" serve --listen "127.0.0.1:$PORT" --workers "$NNO_WORKERS" \
  --data "$TMP/var" --config "$TMP/nno.json" >"$TMP/nno.log" 2>&1 &
PID=$!
load ready "$URL" || { alive; exit 1; }
KEYFILE="$TMP/var/operator.key"
[ -s "$KEYFILE" ] || { echo "registry.sh: no $KEYFILE (is the registry loaded?)" >&2; exit 1; }
echo "nno: $URL pid $PID, workers $(load workers "$URL")"
echo
rss_table "empty registry"

echo
echo "== create =="
load create "$URL" "$KEYFILE" "$N" "$TENANTS" "$CREATE_THREADS" | tee "$TMP/create.txt" |
  grep -v '^RESULT'
alive

echo
echo "== list =="
load list "$URL" "$KEYFILE" "$PAGE" "$N" | tee "$TMP/list.txt" | grep -v '^RESULT'
load list "$URL" "$KEYFILE" "$PAGE" "$N" | tee -a "$TMP/list.txt" | grep -v '^RESULT'
alive

echo
rss_table "after $N platforms and $((N * TENANTS)) tenants"
ls -l "$TMP/var"/core.db* 2>/dev/null | awk '{ printf "  %s %.1f MiB\n", $NF, $5 / 1048576 }'

echo
echo "== feature route: first versus last platform =="
FIRST=$(load pid-of 1)
LAST=$(load pid-of $((N - 1)))
load activate "$URL" "$KEYFILE" default "$FIRST" "$LAST" >"$TMP/activate.txt"
grep -v '^KEY ' "$TMP/activate.txt"
declare -A PATHS=([first]="/p/$FIRST/hello" [last]="/p/$LAST/hello")
# The feature route goes through IAM: each platform's own API key.
declare -A AUTH=(
  ["/p/$FIRST/hello"]="Authorization: Bearer $(awk -v p="$FIRST" '$1 == "KEY" && $2 == p { print $3 }' "$TMP/activate.txt")"
  ["/p/$LAST/hello"]="Authorization: Bearer $(awk -v p="$LAST" '$1 == "KEY" && $2 == p { print $3 }' "$TMP/activate.txt")"
)

run_wrk() {  # path duration outfile
  "$WRK" -t"$THREADS" -c"$CONNS" -d"$2" --latency -H "${AUTH[$1]}" "$URL$1" >"$3" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { echo "registry.sh: wrk failed:" >&2; cat "$3" >&2; exit 1; }
  WRK_PID=
}

if [ "$WARMUP" != 0 ]; then
  run_wrk "${PATHS[first]}" "$WARMUP" "$TMP/warmup-first.txt"
  run_wrk "${PATHS[last]}" "$WARMUP" "$TMP/warmup-last.txt"
fi

RESULTS="$TMP/results.txt"
: >"$RESULTS"
ERRORS=0
printf '%-5s %-26s %10s %9s %9s\n' round path req/s "p50 ms" "p99 ms"
for ((r = 1; r <= ROUNDS; r++)); do
  order=(first last)
  ((r % 2 == 0)) && order=(last first)
  for which in "${order[@]}"; do
    out="$TMP/wrk-$which-$r.txt"
    run_wrk "${PATHS[$which]}" "$DURATION" "$out"
    read -r rps p50 p99 reqs non2xx sockerr < <(load wrk "$out")
    echo "$r $which $rps $p50 $p99" >>"$RESULTS"
    printf '%-5s %-26s %9.1fk %9.3f %9.3f' "$r" "${PATHS[$which]}" \
      "$(awk -v x="$rps" 'BEGIN { print x / 1000 }')" "$p50" "$p99"
    if [ "$non2xx" -ne 0 ] || [ "$sockerr" -ne 0 ]; then
      printf '   <-- %s non-2xx, %s socket errors (%s)' "$non2xx" "$sockerr" "$out"
      ERRORS=1
    fi
    echo
    alive
  done
done
# Keep the report's first label "first" whatever order round 1 ran in.
sort -k2,2 -s "$RESULTS" >"$RESULTS.sorted"
echo
load report "$RESULTS.sorted"

if [ "$ERRORS" -ne 0 ]; then
  echo
  echo "registry.sh: WARNING: some runs had non-2xx answers or socket errors" \
       "(marked above); their figures are not comparable" >&2
  exit 1
fi
