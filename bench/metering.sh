#!/usr/bin/env bash
# The cost of billing's metering on the full gateway chain: two nno hosts
# side by side in one run, the same build, one with metering on (the
# default) and one with "metering": {"enabled": false} in billing's
# plugin_config. Both serve GET /p/bench/hello with an API key (tracing,
# platform resolution, CORS, API-key authn, authz, billing's LIMIT hook
# and quota, IAM's rate limit, the hello package) with the access log on
# (the host's default).
#
# The platform's plan, "unmetered", is given a monthly quota of 10^12
# requests (checked on every request, never reached) and its rates never
# fire, so the metered host runs the whole quota path: the capped add on
# the shared meter, the end-of-request count by status class and the
# flush every metering.flush_ms.
#
# Each round measures both in turn (the order alternates) with
#   wrk -t$THREADS -c$CONNS -d$DURATION --latency
# and prints req/s, p99 and server CPU; then the medians and the ratio
# metered / unmetered (1.0: free; the target is >= 0.97).
#
# Environment:
#   ROUNDS=3  DURATION=10s  THREADS=2  CONNS=64  WARMUP=2s (0: none)
#   NNO=build/bin/nno  NNO_WORKERS=2  FLUSH_MS=5000
#   WRK=wrk  KEEP=1 (keep the temp dir with logs and configs)
# A quick check that it runs: ROUNDS=1 DURATION=2s WARMUP=0 bench/metering.sh
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
lib() { python3 "$HERE/benchlib.py" "$@"; }
. "$HERE/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
WARMUP=${WARMUP:-2s}
NNO=${NNO:-$ROOT/build/bin/nno}
NNO_WORKERS=${NNO_WORKERS:-2}
FLUSH_MS=${FLUSH_MS:-5000}
WRK=${WRK:-wrk}
KEEP=${KEEP:-0}

for tool in "$WRK" python3; do
  command -v "$tool" >/dev/null ||
    { echo "metering.sh: $tool not found (scripts/setup-deps.sh bench)" >&2; exit 1; }
done
[ -x "$NNO" ] || { echo "metering.sh: $NNO not built (run make first)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nno-metering.XXXXXX")
SERVERS=(metered unmetered)
declare -A PID=() BASE=() HDR=()
WRK_PID=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "${WRK_PID:-}" ] && kill -TERM "$WRK_PID" 2>/dev/null
  for s in "${!PID[@]}"; do stop_tree "${PID[$s]}"; done
  finish_tmp metering.sh "$rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

config() {  # enabled: nno's --config file contents
  printf '{"log": {"access": true}, "plugin_config": {"billing": {"metering": {"enabled": %s, "flush_ms": %s}}}}\n' \
    "$1" "$FLUSH_MS"
}

start() {  # name enabled
  local name=$1 dir="$TMP/$1" port i st
  port=$(lib freeport)
  mkdir -p "$dir/var"
  config "$2" >"$dir/nno.json"
  "$NNO" serve --listen "127.0.0.1:$port" --workers "$NNO_WORKERS" \
    --data "$dir/var" --config "$dir/nno.json" >"$dir/nno.log" 2>&1 &
  PID[$name]=$!
  BASE[$name]="http://127.0.0.1:$port"
  for ((i = 0; i < 150; i++)); do
    kill -0 "${PID[$name]}" 2>/dev/null ||
      { echo "metering.sh: $name exited; its log:" >&2; cat "$dir/nno.log" >&2; exit 1; }
    st=$(lib get "${BASE[$name]}/readyz" 2>/dev/null | head -n1 || true)
    [ "$st" = 200 ] && [ -f "$dir/var/operator.key" ] && break
    sleep 0.1
  done
  [ "$st" = 200 ] || { echo "metering.sh: $name not ready" >&2; exit 1; }
}

cli() { "$NNO" --url "${BASE[$1]}" --data "$TMP/$1/var" "${@:2}"; }

# The plan "unmetered" given a quota of 10^12 requests a month (through
# the API), the platform `bench` on it with the default stack and a key;
# sets HDR. The plan keeps its name, so IAM's rates (which know it) never
# fire either.
setup() {
  local name=$1 key st
  python3 - "${BASE[$name]}" "$(cat "$TMP/$name/var/operator.key")" <<'EOF'
import json, sys, urllib.request
base, op = sys.argv[1], sys.argv[2]
auth = {"Authorization": "Bearer " + op}
url = base + "/api/v1/plans/unmetered"
with urllib.request.urlopen(urllib.request.Request(url, headers=auth)) as r:
    etag = r.headers["ETag"]
body = {"requests_per_month": 10**12, "soft_pct": 100}
h = dict(auth, **{"Content-Type": "application/json", "If-Match": etag})
urllib.request.urlopen(urllib.request.Request(
    url, json.dumps(body).encode(), h, method="PATCH")).read()
EOF
  cli "$name" platform create bench --name bench --plan unmetered --stack default >/dev/null
  key=$(cli "$name" --json key create bench --name bench \
          --scopes features:hello:read | lib jsonget key)
  HDR[$name]="Authorization: Bearer $key"
  st=$(lib get "${BASE[$name]}/p/bench/hello" "${HDR[$name]}" 2>/dev/null | head -n1 || true)
  [ "$st" = 200 ] || { echo "metering.sh: $name: /p/bench/hello answers $st" >&2; exit 1; }
}

run_wrk() {  # name duration outfile
  "$WRK" -t"$THREADS" -c"$CONNS" -d"$2" --latency -H "${HDR[$1]}" \
    "${BASE[$1]}/p/bench/hello" >"$3" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { echo "metering.sh: wrk failed:" >&2; cat "$3" >&2; exit 1; }
  WRK_PID=
}

echo "# nno metering bench — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -r)"
echo "# wrk -t$THREADS -c$CONNS -d$DURATION --latency; $ROUNDS round(s); flush every ${FLUSH_MS} ms"
start metered true
start unmetered false
for s in "${SERVERS[@]}"; do setup "$s"; done

if [ "$WARMUP" != 0 ]; then
  for s in "${SERVERS[@]}"; do run_wrk "$s" "$WARMUP" "$TMP/warmup-$s.txt"; done
fi

RESULTS="$TMP/results.txt"
: >"$RESULTS"
ERRORS=0
printf '%-5s %-10s %10s %9s %8s %12s\n' round server req/s "p99 ms" "CPU s" req/CPU-s
for ((r = 1; r <= ROUNDS; r++)); do
  for ((i = 0; i < 2; i++)); do
    s=${SERVERS[$(((i + r - 1) % 2))]}
    out="$TMP/wrk-$s-$r.txt"
    c0=$(lib cpu "${PID[$s]}")
    run_wrk "$s" "$DURATION" "$out"
    c1=$(lib cpu "${PID[$s]}")
    read -r reqs secs rps p99 non2xx sockerr < <(lib wrk "$out")
    cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
    rpc=$(awk -v n="$reqs" -v c="$cpu" 'BEGIN { printf "%.0f", (c > 0 ? n / c : 0) }')
    echo "$r $s $rps $p99 $cpu $rpc" >>"$RESULTS"
    printf '%-5s %-10s %9.1fk %9.2f %8.2f %11.1fk' "$r" "$s" \
      "$(awk -v x="$rps" 'BEGIN { print x / 1000 }')" "$p99" "$cpu" \
      "$(awk -v x="$rpc" 'BEGIN { print x / 1000 }')"
    if [ "$non2xx" -ne 0 ] || [ "$sockerr" -ne 0 ]; then
      printf '   <-- %s non-2xx, %s socket errors (%s)' "$non2xx" "$sockerr" "$out"
      ERRORS=1
    fi
    echo
  done
done

echo
lib report "$RESULTS" unmetered metered
echo
echo "metering's cost (metered / unmetered: 1.0 is free, the target >= 0.97):"
lib ratio "$RESULTS" metered unmetered

# The metered host counted what it served (its flush has run meanwhile).
sleep "$(awk -v ms="$FLUSH_MS" 'BEGIN { print 2 * ms / 1000 + 0.5 }')"
echo
echo "metered host's report for platform bench (nno usage):"
cli metered usage --platform bench | tail -n 1
if [ "$ERRORS" -ne 0 ]; then
  echo "metering.sh: WARNING: some runs had non-2xx answers or socket errors" >&2
  exit 1
fi
