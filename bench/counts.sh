#!/usr/bin/env bash
# Per-request counts of the full chain, which a shared machine does not blur
# as it blurs req/s and latency (method and figures in bench/README.md,
# "Counts per request"):
#
#   proc       from /proc, no tracer: the worker's (and a sandbox's) CPU
#              time, context switches (voluntary + involuntary) and
#              read-like / write-like system calls (syscr, syscw)
#   strace     strace -c -f on the worker (and a sandbox): every system
#              call, by name
#   callgrind  instructions the worker executes (valgrind's callgrind): two
#              hosts under callgrind, one serving WARM requests, the other
#              WARM + REQS; the difference of the worker's totals (its
#              start-up and set-up cancel out) over REQS
#
# Each host runs one worker and serves GET /p/bench/hello with an API key
# (full chain: RESOLVE, authn, authz, rate limit, the hello package; the
# access log on, the host's default) for REQS requests on one connection,
# one at a time (benchlib.py count: every answer must be 200).
#
# Hosts (HOSTS, comma-separated, measured in this order):
#   nno        this build ($NNO), the default stack in-process
#   nno-base   the same served by $NNO_BASE (e.g. the build before a change)
#   inprocess  this build, a stack `hello` in-process (sandbox.inprocess)
#   sandbox    this build, the stack `hello` in a sandbox process
#   inprocess-base, sandbox-base  the same two served by $NNO_BASE (a
#              build with sandboxes)
#
# Environment:
#   HOSTS=nno,nno-base (nno alone without NNO_BASE)  REQS=20000  WARM=2000
#   TOOLS=proc,strace,callgrind  NNO=build/bin/nno  NNO_BASE=
#   KEEP=1 (keep the temp dir)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
lib() { python3 "$HERE/benchlib.py" "$@"; }
load() { python3 "$HERE/registry_load.py" "$@"; }
. "$HERE/lib.sh"

NNO=${NNO:-$ROOT/build/bin/nno}
NNO_BASE=${NNO_BASE:-}
HOSTS=${HOSTS:-nno${NNO_BASE:+,nno-base}}
REQS=${REQS:-20000}
WARM=${WARM:-2000}
TOOLS=${TOOLS:-proc,strace,callgrind}
KEEP=${KEEP:-0}
HELLO=$ROOT/build/share/nno/stacks/default/1.0.0/packages/hello

for tool in python3; do
  command -v "$tool" >/dev/null ||
    { echo "counts.sh: $tool not found (scripts/setup-deps.sh bench)" >&2; exit 1; }
done
[[ ,$TOOLS, != *,strace,* ]] || command -v strace >/dev/null ||
  { echo "counts.sh: strace not found" >&2; exit 1; }
[[ ,$TOOLS, != *,callgrind,* ]] || command -v callgrind_control >/dev/null ||
  { echo "counts.sh: valgrind (callgrind) not found" >&2; exit 1; }
[ -x "$NNO" ] || { echo "counts.sh: $NNO not built (run make first)" >&2; exit 1; }
if [[ ,$HOSTS, == *-base,* ]] && [ ! -x "$NNO_BASE" ]; then
  echo "counts.sh: a *-base host needs NNO_BASE=<path of another build's nno>" >&2
  exit 2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nno-bench-counts.XXXXXX")
SERVER=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$SERVER" ] && stop_tree "$SERVER"
  finish_tmp counts.sh "$rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The stack `hello`: the default stack's hello package alone.
mkdir -p "$TMP/stacks/hello/1.0.0/packages"
cp -r "$HELLO" "$TMP/stacks/hello/1.0.0/packages/hello"
hv=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
  "$HELLO/package.json")
printf '{"id": "hello", "version": "1.0.0", "packages": [{"name": "hello", "version": "%s"}]}\n' \
  "$hv" >"$TMP/stacks/hello/1.0.0/stack.json"

# requests N: N answers on one connection to $URL, one at a time.
requests() {
  lib count "$1" "$URL" "Authorization: Bearer $KEY"
}

# start host-name binary valgrind(0/1) [tag]: a host of one worker; sets SERVER,
# URL, KEY, WORKER and SANDBOX (its sandbox, or empty).
start() {
  local name=$1 bin=$2 vg=$3 dir="$TMP/$1-$3${4:+-$4}" port cfg stack=default
  port=$(lib freeport)
  mkdir -p "$dir/var"
  case $name in
    inprocess*) cfg=',"sandbox":{"inprocess":"hello"}'; stack=hello ;;
    sandbox*) cfg=',"sandbox":{"sandboxed":"hello"}'; stack=hello ;;
    *) cfg= ;;
  esac
  [ -n "$cfg" ] && cfg=",\"stacks_dirs\":[\"$TMP/stacks\"]$cfg"
  printf '{"log":{"access":true}%s}\n' "$cfg" >"$dir/nno.json"
  local pre=()
  [ "$vg" = 1 ] && pre=(valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p")
  "${pre[@]}" "$bin" serve --listen "127.0.0.1:$port" --workers 1 --data "$dir/var" \
    --config "$dir/nno.json" >"$dir/nno.log" 2>&1 &
  SERVER=$!
  local base="http://127.0.0.1:$port" i
  for ((i = 0; i < 600; i++)); do
    load ready "$base" >/dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null ||
      { echo "counts.sh: $name exited; its log:" >&2; tail -n 30 "$dir/nno.log" >&2; exit 1; }
    sleep 0.2
  done
  local cli=("$bin" --url "$base" --data "$dir/var")
  "${cli[@]}" platform create bench --name bench --plan unmetered >/dev/null
  "${cli[@]}" stack activate bench "$stack" >/dev/null
  KEY=$("${cli[@]}" --json key create bench --name bench \
    --scopes features:hello:read | lib jsonget key)
  URL="$base/p/bench/hello"
  requests 1
  WORKER=$(lib tree "$SERVER" | sed -n 2p)
  SANDBOX=$(pgrep -P "$WORKER" -f 'nno sandbox' | head -n1 || true)
  [[ $name != sandbox* || -n $SANDBOX ]] ||
    { echo "counts.sh: $name: no sandbox process under worker $WORKER" >&2; exit 1; }
}

stop() { stop_tree "$SERVER"; SERVER=; }

# snap pid: "cpu_ticks ctxsw syscr syscw"
snap() {
  local pid=$1 cpu sw r w
  cpu=$(awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' \
    "/proc/$pid/stat")
  sw=$(awk '/ctxt_switches/ { n += $2 } END { print n }' "/proc/$pid/status")
  r=$(awk '/^syscr/ { print $2 }' "/proc/$pid/io")
  w=$(awk '/^syscw/ { print $2 }' "/proc/$pid/io")
  echo "$cpu $sw $r $w"
}

per_req() {  # label before after
  local tck
  tck=$(getconf CLK_TCK)
  awk -v l="$1" -v a="$2" -v b="$3" -v n="$REQS" -v t="$tck" 'BEGIN {
    split(a, x, " "); split(b, y, " ");
    printf "  %-22s cpu %6.2f us  ctxsw %5.2f  syscr %5.2f  syscw %5.2f\n", l,
      (y[1] - x[1]) * 1e6 / t / n, (y[2] - x[2]) / n, (y[3] - x[3]) / n,
      (y[4] - x[4]) / n }'
}

echo "# nno counts per request — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores," \
     "load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# GET /p/bench/hello with an API key, one worker, access log on;" \
     "$REQS requests on one connection after $WARM; tools: $TOOLS"

IFS=, read -r -a HS <<<"$HOSTS"
for h in "${HS[@]}"; do
  bin=$NNO
  [[ $h == *-base ]] && bin=$NNO_BASE
  echo
  echo "== $h ($bin)"
  if [[ ,$TOOLS, == *,proc,* || ,$TOOLS, == *,strace,* ]]; then
    start "$h" "$bin" 0
    requests "$WARM"
    if [[ ,$TOOLS, == *,proc,* ]]; then
      w0=$(snap "$WORKER")
      [ -n "$SANDBOX" ] && s0=$(snap "$SANDBOX")
      requests "$REQS"
      per_req "worker (/proc)" "$w0" "$(snap "$WORKER")"
      [ -n "$SANDBOX" ] && per_req "sandbox (/proc)" "$s0" "$(snap "$SANDBOX")"
    fi
    if [[ ,$TOOLS, == *,strace,* ]]; then
      for who in WORKER SANDBOX; do
        pid=${!who}
        [ -n "$pid" ] || continue
        strace -q -c -f -p "$pid" -o "$TMP/strace-$h-$who.txt" &
        spid=$!
        sleep 0.5
        requests "$REQS"
        kill -INT "$spid"
        wait "$spid" 2>/dev/null || true
        echo "  $(tr 'A-Z' 'a-z' <<<"$who") system calls per request (strace -c -f):"
        awk -v n="$REQS" '/^-/ || /^%/ || /total/ { next }
          NF >= 5 { c = $4; name = $NF; if (c / n >= 0.01)
            printf "    %-22s %6.2f\n", name, c / n; t += c }
          END { printf "    %-22s %6.2f\n", "total", t / n }' "$TMP/strace-$h-$who.txt"
      done
    fi
    stop
  fi
  if [[ ,$TOOLS, == *,callgrind,* ]]; then
    ir=()
    for n in "$WARM" "$((WARM + REQS))"; do
      start "$h" "$bin" 1 "$n"
      requests "$n"
      stop
      f="$TMP/$h-1-$n/cg.$WORKER"
      ir+=("$(awk '/^(summary|totals):/ { print $2; exit }' "$f")")
    done
    awk -v a="${ir[0]}" -v b="${ir[1]}" -v n="$REQS" 'BEGIN {
      printf "  worker instructions per request (callgrind): %.0f\n", (b - a) / n }'
  fi
done
