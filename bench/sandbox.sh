#!/usr/bin/env bash
# Sandboxed stacks against in-process (summary in bench/README.md,
# "Sandboxed stacks"):
#   a stack `hello` (the default stack's hello package alone, copied from
#   the build) served by two hosts, run in turn in one script run:
#     inprocess  sandbox.inprocess=hello: the package in the worker
#     sandbox    the package in a sandbox process per worker and platform,
#                every request and its answer crossing the wire protocol
#                (sandbox.poll_us as its default: the sandbox polls before
#                it sleeps)
#     sandbox-nopoll  the same with sandbox.poll_us 0 (it sleeps at once);
#                not run with NOPOLL=0
#   each with the full chain (registry RESOLVE, API-key authn, authz, rate
#   limit) on GET /p/bench/hello with an API key, and the access log as
#   LOG says (default: on, the host's default).
#   Per round and host: throughput (wrk -t$THREADS -c$CONNS) and latency
#   at one connection (wrk -t1 -c1 --latency): the p50 difference is the
#   round trip a sandbox adds. Any non-2xx answer fails the run.
#   With NNO_BASE (another build's binary, e.g. the build before a change),
#   the same two hosts of that build (inprocess-base, sandbox-base) run in
#   the same rounds, and both builds' added round trips are printed.
#
# Environment:
#   ROUNDS=3  DURATION=10s  THREADS=2  CONNS=64  WARMUP=2s (0: none)
#   LOG=1 (access log on; 0: off)  NNO=build/bin/nno  NNO_BASE=  NNO_WORKERS=2
#   WRK=wrk  KEEP=1 (keep the temp dir)  NOPOLL=1
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
load() { python3 "$HERE/registry_load.py" "$@"; }
lib() { python3 "$HERE/benchlib.py" "$@"; }
. "$HERE/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
WARMUP=${WARMUP:-2s}
LOG=${LOG:-1}
NNO=${NNO:-$ROOT/build/bin/nno}
NNO_BASE=${NNO_BASE:-}
NNO_WORKERS=${NNO_WORKERS:-2}
WRK=${WRK:-wrk}
KEEP=${KEEP:-0}
NOPOLL=${NOPOLL:-1}
HELLO=$ROOT/build/share/nno/stacks/default/1.0.0/packages/hello

for tool in "$WRK" python3; do
  command -v "$tool" >/dev/null ||
    { echo "sandbox.sh: $tool not found (scripts/setup-deps.sh bench)" >&2; exit 1; }
done
[ -x "$NNO" ] || { echo "sandbox.sh: $NNO not built (run make first)" >&2; exit 1; }
[ -z "$NNO_BASE" ] || [ -x "$NNO_BASE" ] ||
  { echo "sandbox.sh: NNO_BASE=$NNO_BASE is not an executable" >&2; exit 1; }
HOSTS=(inprocess sandbox)
[ "$NOPOLL" = 1 ] && HOSTS+=(sandbox-nopoll)
[ -n "$NNO_BASE" ] && HOSTS+=(inprocess-base sandbox-base)
[ -f "$HELLO/package.json" ] ||
  { echo "sandbox.sh: no $HELLO (run make first)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nno-bench-sandbox.XXXXXX")
declare -A PID BASE KEY
WRK_PID=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$WRK_PID" ] && kill -TERM "$WRK_PID" 2>/dev/null
  for n in "${!PID[@]}"; do stop_tree "${PID[$n]}"; done
  finish_tmp sandbox.sh "$rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

alive() {
  kill -0 "${PID[$1]}" 2>/dev/null && return 0
  echo "sandbox.sh: nno ($1) died; its log:" >&2
  tail -n 50 "$TMP/$1/nno.log" >&2
  exit 1
}

# The stack: hello alone, as its own stack folder.
mkdir -p "$TMP/stacks/hello/1.0.0/packages"
cp -r "$HELLO" "$TMP/stacks/hello/1.0.0/packages/hello"
hv=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
  "$HELLO/package.json")
printf '{"id": "hello", "version": "1.0.0", "packages": [{"name": "hello", "version": "%s"}]}\n' \
  "$hv" >"$TMP/stacks/hello/1.0.0/stack.json"

access=$([ "$LOG" = 1 ] && echo true || echo false)
echo "# nno sandbox bench — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -r)," \
     "load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# GET /p/bench/hello with an API key (full chain); throughput wrk" \
     "-t$THREADS -c$CONNS -d$DURATION, latency wrk -t1 -c1 -d$DURATION;" \
     "$ROUNDS round(s); $NNO_WORKERS workers; access log $access"
echo "# $("$WRK" --version 2>&1 | head -n1 | sed 's/ Copyright.*//' || true)"

start() {  # name extra-config-json [binary]
  local name=$1 dir="$TMP/$1" port bin=${3:-$NNO}
  port=$(lib freeport)
  mkdir -p "$dir/var"
  printf '{"log":{"access":%s},"stacks_dirs":["%s"]%s}\n' "$access" \
    "$TMP/stacks" "$2" >"$dir/nno.json"
  "$bin" serve --listen "127.0.0.1:$port" --workers "$NNO_WORKERS" \
    --data "$dir/var" --config "$dir/nno.json" >"$dir/nno.log" 2>&1 &
  PID[$name]=$!
  BASE[$name]="http://127.0.0.1:$port"
  load ready "${BASE[$name]}" || { alive "$name"; exit 1; }
  local cli=("$bin" --url "${BASE[$name]}" --data "$dir/var")
  "${cli[@]}" platform create bench --name bench --plan unmetered >/dev/null
  "${cli[@]}" stack activate bench hello >/dev/null
  KEY[$name]=$("${cli[@]}" --json key create bench --name bench \
    --scopes features:hello:read | lib jsonget key)
  local st
  st=$(lib get "${BASE[$name]}/p/bench/hello" "Authorization: Bearer ${KEY[$name]}" | sed -n 1p)
  [ "$st" = 200 ] || { echo "sandbox.sh: $name: /p/bench/hello answered $st" >&2; exit 1; }
  echo "$name: ${BASE[$name]} pid ${PID[$name]}"
}

start inprocess ',"sandbox":{"inprocess":"hello"}'
start sandbox ',"sandbox":{"sandboxed":"hello"}'
[ "$NOPOLL" = 1 ] && start sandbox-nopoll ',"sandbox":{"sandboxed":"hello","poll_us":0}'
if [ -n "$NNO_BASE" ]; then
  start inprocess-base ',"sandbox":{"inprocess":"hello"}' "$NNO_BASE"
  start sandbox-base ',"sandbox":{"sandboxed":"hello"}' "$NNO_BASE"
fi

run_wrk() {  # name threads conns duration outfile
  "$WRK" -t"$2" -c"$3" -d"$4" --latency \
    -H "Authorization: Bearer ${KEY[$1]}" "${BASE[$1]}/p/bench/hello" >"$5" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { echo "sandbox.sh: wrk failed:" >&2; cat "$5" >&2; exit 1; }
  WRK_PID=
}

if [ "$WARMUP" != 0 ]; then
  for n in "${HOSTS[@]}"; do
    run_wrk "$n" "$THREADS" "$CONNS" "$WARMUP" "$TMP/warmup-$n.txt"
  done
fi

THR="$TMP/throughput.txt"
LAT="$TMP/latency.txt"
: >"$THR"
: >"$LAT"
ERRORS=0
printf '%-5s %-14s %-10s %10s %9s %9s\n' round host load req/s "p50 ms" "p99 ms"
for ((r = 1; r <= ROUNDS; r++)); do
  # The order rotates per round.
  order=()
  for ((i = 0; i < ${#HOSTS[@]}; i++)); do
    order+=("${HOSTS[$(((i + r - 1) % ${#HOSTS[@]}))]}")
  done
  for n in "${order[@]}"; do
    for kind in throughput latency; do
      out="$TMP/wrk-$n-$kind-$r.txt"
      if [ "$kind" = throughput ]; then
        run_wrk "$n" "$THREADS" "$CONNS" "$DURATION" "$out"
      else
        run_wrk "$n" 1 1 "$DURATION" "$out"
      fi
      read -r rps p50 p99 reqs non2xx sockerr < <(load wrk "$out")
      echo "$r $n $rps $p50 $p99" >>"$TMP/$kind.txt"
      printf '%-5s %-14s %-10s %9.1fk %9.3f %9.3f' "$r" "$n" "$kind" \
        "$(awk -v x="$rps" 'BEGIN { print x / 1000 }')" "$p50" "$p99"
      if [ "$non2xx" -ne 0 ] || [ "$sockerr" -ne 0 ]; then
        printf '   <-- %s non-2xx, %s socket errors (%s)' "$non2xx" "$sockerr" "$out"
        ERRORS=1
      fi
      echo
      alive "$n"
    done
  done
done

for kind in throughput latency; do
  sort -k2,2 -s "$TMP/$kind.txt" >"$TMP/$kind.sorted"
  echo
  echo "== $kind =="
  # (The ratio the report adds compares its first two hosts: with
  # NNO_BASE, the builds' own comparisons follow below instead.)
  load report "$TMP/$kind.sorted" |
    sed 's/^platform/host    /; s/no cost for the higher index/the sandbox costs nothing/' |
    if [ -n "$NNO_BASE" ]; then sed '/^ratio/,/^median/d'; else cat; fi
done
echo
python3 - "$TMP/latency.txt" "$TMP/throughput.txt" <<'EOF'
import statistics, sys
def rows(path):
    out = {}
    for line in open(path):
        r, name, rps, p50, p99 = line.split()
        out.setdefault(int(r), {})[name] = (float(rps), float(p50))
    return out
lat, thr = rows(sys.argv[1]), rows(sys.argv[2])
for sfx, build in (("", "this build"), ("-nopoll", "this build, poll_us 0"),
                   ("-base", "NNO_BASE")):
    inp = "inprocess" + ("" if sfx == "-nopoll" else sfx)
    d = [v["sandbox" + sfx][1] - v[inp][1]
         for v in lat.values() if "sandbox" + sfx in v]
    t = [v["sandbox" + sfx][0] / v[inp][0]
         for v in thr.values() if "sandbox" + sfx in v]
    if not d:
        continue
    print("%s: added round trip (p50 at one connection, sandbox - inprocess): "
          % build + ", ".join("%.1f us" % (x * 1000) for x in d)
          + "; median %.1f us" % (statistics.median(d) * 1000))
    print("%s: throughput sandbox / inprocess: " % build
          + ", ".join("%.2f" % x for x in t)
          + "; median %.2f" % statistics.median(t))
EOF
echo "sandbox processes: $(pgrep -f 'nno sandbox' -c || true)"

if [ "$ERRORS" -ne 0 ]; then
  echo
  echo "sandbox.sh: FAILED: some runs had non-2xx answers or socket errors" \
       "(marked above)" >&2
  exit 1
fi
