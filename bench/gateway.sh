#!/usr/bin/env bash
# nno's full gateway chain against nginx, side by side in one run (method
# and summary in bench/README.md).
#
# nno runs with its core plugins (registry, iam): GET /p/bench/hello with
# "Authorization: Bearer <API key>" crosses tracing, platform resolution,
# CORS, API-key authn, authz (features:hello:read), the rate limit (plan
# "unmetered": never fires) and the hello package. nginx-gateway checks the
# same header through a map and runs limit_req (never fires either).
#
# Every server listens on its own loopback port; each round measures them in
# turn (the order rotates per round) with
#   wrk -t$THREADS -c$CONNS -d$DURATION --latency
# and reads the server's CPU time (utime+stime of its master and workers,
# from /proc) before and after each run. Prints per round and the medians:
# req/s, p99, server CPU seconds, requests per server CPU-second, and the
# ratios nno / peer.
#
# Environment:
#   PEERS=nno,nginx-bare,nginx-gateway   servers to measure (any subset of
#         nno, nno-log, nno-kernel, nginx-bare, nginx-gateway,
#         nginx-gateway-log, nno-base); nno-kernel is
#         nno without core plugins answering GET /hello (no platform, no IAM):
#         the chain's cost is the ratio nno / nno-kernel; nno-log is the full
#         chain with $NNO_LOG_CONFIG (the access log on): the log's cost is
#         the ratio nno-log / nno, printed when both run; nginx-gateway-log
#         is nginx-gateway with `access_log access.log;` (nginx's default
#         combined format, one write per request): nno-log / nginx-gateway-log
#         compares both with their logs on; nno-base is the full chain
#         (as nno) served by the build $NNO_BASE, e.g. an older commit's,
#         so a change is measured against what it replaces in one run
#   ROUNDS=3  DURATION=10s  THREADS=2  CONNS=64  WARMUP=2s (0: none)
#   NNO=build/bin/nno  NNO_PATH=/p/bench/hello  NNO_WORKERS=2
#   NNO_PLAN=unmetered   the plan of the platform `bench` (created with the
#         default stack active and an API key of scope features:hello:read)
#   NNO_HEADER="Name: value"     replaces nno's "Authorization: Bearer <key>"
#   NNO_CONFIG='{"log":{"access":false}}'   nno's --config file contents
#   NNO_LOG_CONFIG='{"log":{"access":true}}'   nno-log's (stderr: a file)
#   GATEWAY_RATE=1000000r/s  GATEWAY_BURST=100000   nginx-gateway's limit_req
#   NGINX=nginx  WRK=wrk  KEEP=1 (keep the temp dir with logs and configs)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
lib() { python3 "$HERE/benchlib.py" "$@"; }

PEERS=${PEERS:-nno,nginx-bare,nginx-gateway}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
WARMUP=${WARMUP:-2s}
NNO=${NNO:-$ROOT/build/bin/nno}
NNO_BASE=${NNO_BASE:-}
NNO_PATH=${NNO_PATH:-/p/bench/hello}
NNO_WORKERS=${NNO_WORKERS:-2}
NNO_HEADER=${NNO_HEADER:-}
NNO_PLAN=${NNO_PLAN:-unmetered}
NNO_CONFIG=${NNO_CONFIG:-'{"log":{"access":false}}'}
NNO_LOG_CONFIG=${NNO_LOG_CONFIG:-'{"log":{"access":true}}'}
NGINX=${NGINX:-nginx}
WRK=${WRK:-wrk}
KEEP=${KEEP:-0}
GATEWAY_RATE=${GATEWAY_RATE:-1000000r/s}
GATEWAY_BURST=${GATEWAY_BURST:-100000}

IFS=, read -r -a SERVERS <<<"$PEERS"
for s in "${SERVERS[@]}"; do
  case $s in
    nno|nno-log|nno-kernel|nno-base|nginx-bare|nginx-gateway|nginx-gateway-log) ;;
    *) echo "gateway.sh: unknown server '$s' in PEERS" \
            "(known: nno, nno-log, nno-kernel, nginx-bare, nginx-gateway," \
            "nginx-gateway-log, nno-base)" >&2
       exit 2 ;;
  esac
done
for tool in "$WRK" python3; do
  command -v "$tool" >/dev/null ||
    { echo "gateway.sh: $tool not found (scripts/setup-deps.sh bench)" >&2; exit 1; }
done
if [[ ,$PEERS, == *,nginx* ]] && ! command -v "$NGINX" >/dev/null; then
  echo "gateway.sh: $NGINX not found (scripts/setup-deps.sh bench)" >&2; exit 1
fi
if [[ ,$PEERS, == *,nno* ]] && [ ! -x "$NNO" ]; then
  echo "gateway.sh: $NNO not built (run make first)" >&2; exit 1
fi
if [[ ,$PEERS, == *,nno-base,* ]] && [ ! -x "${NNO_BASE:-}" ]; then
  echo "gateway.sh: nno-base needs NNO_BASE=<path of another build's nno>" >&2
  exit 2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nno-bench.XXXXXX")
declare -A PID=() URL=() HDR=() BASE=()
STARTED=()

# --- process management ------------------------------------------------------

stop_server() {  # name: TERM the master, then KILL whatever of its tree is left
  local name=$1 pid=${PID[$1]:-} tree i
  [ -n "$pid" ] || return 0
  unset "PID[$name]"
  tree=$(lib tree "$pid" 2>/dev/null || true)
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  for p in $tree; do kill -KILL "$p" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "${WRK_PID:-}" ] && kill -TERM "$WRK_PID" 2>/dev/null
  for name in "${STARTED[@]}"; do stop_server "$name"; done
  if [ "$KEEP" = 1 ] || [ "$rc" -ne 0 ]; then
    echo "gateway.sh: logs and configs kept in $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_ready() {  # name url [header]: until the server answers 2xx
  local name=$1 url=$2 hdr=${3:-} st i
  for ((i = 0; i < 150; i++)); do
    if ! kill -0 "${PID[$name]}" 2>/dev/null; then
      echo "gateway.sh: $name exited during start-up; its log:" >&2
      cat "$TMP/$name"/*.log >&2 2>/dev/null || true
      exit 1
    fi
    st=$(lib get "$url" ${hdr:+"$hdr"} 2>/dev/null | head -n1 || true)
    [[ $st == 2?? ]] && return 0
    sleep 0.1
  done
  echo "gateway.sh: $name not answering 2xx at $url (last status: ${st:-none}); log:" >&2
  cat "$TMP/$name"/*.log >&2 2>/dev/null || true
  exit 1
}

# start_nginx name template [rate limit_req-options [access_log]]
start_nginx() {
  local name=$1 tpl=$2 rate=${3:-} opts=${4:-} alog=${5:-off} dir="$TMP/$1"
  local port user=""
  port=$(lib freeport)
  mkdir -p "$dir/tmp" "$dir/www"
  [ "$(id -u)" -eq 0 ] && user="user root;"
  sed -e "s|@PREFIX@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@USER@|$user|g" \
      -e "s|@RATE@|$rate|g" -e "s|@LIMIT_OPTS@|$opts|g" \
      -e "s|@ACCESS_LOG@|$alog|g" \
      "$HERE/$tpl" >"$dir/nginx.conf"
  [ -f "$TMP/keys.map" ] && cp "$TMP/keys.map" "$dir/keys.map"
  if ! "$NGINX" -t -q -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" \
       >"$dir/check.log" 2>&1; then
    echo "gateway.sh: bad nginx config for $name:" >&2
    cat "$dir/check.log" "$dir/error.log" >&2 2>/dev/null || true
    exit 1
  fi
  if [ -s "$dir/check.log" ]; then  # warnings (a map hash that did not fit...)
    echo "gateway.sh: nginx warns about $name's config:" >&2
    cat "$dir/check.log" >&2
  fi
  "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" \
    -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
  PID[$name]=$!
  STARTED+=("$name")
  URL[$name]="http://127.0.0.1:$port/"
  HDR[$name]=""
}

# start_nno name path config [binary]: nno serve on a free port
start_nno() {
  local name=$1 dir="$TMP/$1" port bin=${4:-$NNO}
  port=$(lib freeport)
  mkdir -p "$dir/var"
  printf '%s\n' "$3" >"$dir/nno.json"
  "$bin" serve --listen "127.0.0.1:$port" --workers "$NNO_WORKERS" \
    --data "$dir/var" --config "$dir/nno.json" >"$dir/nno.log" 2>&1 &
  PID[$name]=$!
  STARTED+=("$name")
  URL[$name]="http://127.0.0.1:$port$2"
  HDR[$name]=""
  BASE[$name]="http://127.0.0.1:$port"
}

# nno with no core plugins: the kernel serves the default stack at the root.
kernel_config() {
  mkdir -p "$TMP/no-core-plugins"
  python3 -c 'import json, sys
c = json.loads(sys.argv[1]); c["plugin_dir"] = sys.argv[2]; print(json.dumps(c))' \
    "$NNO_CONFIG" "$TMP/no-core-plugins"
}

# nno_cli server args...: the operator CLI against nno server `server`.
nno_cli() { "$NNO" --url "${BASE[$1]}" --data "$TMP/$1/var" "${@:2}"; }

# nno_platform server platform plan: create it with the default stack active
# and one API key of scope features:hello:read; prints the key.
nno_platform() {
  nno_cli "$1" platform create "$2" --name "$2" --plan "$3" >/dev/null
  nno_cli "$1" stack activate "$2" default >/dev/null
  nno_cli "$1" --json key create "$2" --name bench --scopes features:hello:read |
    lib jsonget key
}

# The feature path lives on a platform: create it through the operator CLI
# (on server $1, nno or nno-log); sets NNO_KEY and the server's header.
setup_nno_platform() {
  local name=$1
  wait_ready "$name" "${BASE[$name]}/readyz"
  if [ ! -f "$TMP/$name/var/operator.key" ]; then
    echo "gateway.sh: no $TMP/$name/var/operator.key: the core plugins" \
         "(registry, iam) did not load" >&2
    exit 1
  fi
  NNO_KEY=$(nno_platform "$name" bench "$NNO_PLAN")
  HDR[$name]=${NNO_HEADER:-"Authorization: Bearer $NNO_KEY"}
}

# --- checks ------------------------------------------------------------------

FAILED=0
check() {  # description condition-result(0/1) detail
  if [ "$2" -eq 0 ]; then
    echo "  ok    $1${3:+: $3}"
  else
    echo "  FAIL  $1${3:+: $3}"
    FAILED=1
  fi
}

has_headers() {  # file: 0 if it has X-Request-Id and CORS
  grep -q '^x-request-id: .' "$1" && grep -q '^access-control-allow-origin: ' "$1"
}

# A well-formed key of nno's shape that no server knows (for nno: the id
# of `key` with another secret, so the check reaches the hash compare).
wrong_key() {
  local k
  k=$(lib keys 1)
  echo "${1:0:22}${k:22}"
}

gateway_checks() {  # name key: the API-key and header contract of a gateway peer
  local name=$1 key=$2 url=${URL[$1]} out="$TMP/$1/get.txt"
  lib get "$url" >"$out"
  check "$name: no key -> 401 with X-Request-Id and CORS" \
    "$({ [ "$(head -n1 "$out")" = 401 ] && has_headers "$out"; } && echo 0 || echo 1)" \
    "status $(head -n1 "$out")"
  lib get "$url" "Authorization: Bearer $(wrong_key "$key")" >"$out"
  check "$name: unknown key -> 401" \
    "$([ "$(head -n1 "$out")" = 401 ] && echo 0 || echo 1)" "status $(head -n1 "$out")"
  lib get "$url" "Authorization: Bearer $key" >"$out"
  check "$name: known key -> 200 with X-Request-Id and CORS" \
    "$({ [ "$(head -n1 "$out")" = 200 ] && has_headers "$out"; } && echo 0 || echo 1)" \
    "status $(head -n1 "$out")"
}

# nno: the chain refuses what it must and answers the key; the limit stage
# runs (RateLimit-* headers) with the plan's limit.
nno_checks() {
  local url=${URL[nno]} out="$TMP/nno/get.txt" st lim
  lib get "$url" >"$out"
  st=$(head -n1 "$out")
  check "nno: no credential -> 401 with X-Request-Id" \
    "$({ [ "$st" = 401 ] && grep -q '^x-request-id: .' "$out"; } && echo 0 || echo 1)" \
    "status $st"
  lib get "$url" "Authorization: Bearer $(wrong_key "$NNO_KEY")" >"$out"
  st=$(head -n1 "$out")
  check "nno: the key's id with a wrong secret -> 401" \
    "$([ "$st" = 401 ] && echo 0 || echo 1)" "status $st"
  lib get "$url" "${HDR[nno]}" >"$out"
  st=$(head -n1 "$out")
  lim=$(sed -n 's/^ratelimit-limit: //p' "$out")
  check "nno: the key -> 200 with X-Request-Id and RateLimit-Limit" \
    "$({ [ "$st" = 200 ] && grep -q '^x-request-id: .' "$out" && [ -n "$lim" ]; } \
       && echo 0 || echo 1)" "status $st, RateLimit-Limit ${lim:-none} (plan $NNO_PLAN)"
}

# nno's limiter fires: a platform on plan "free" (a key's bucket: 50/s,
# burst 100) answers 429 within 150 requests in a row.
nno_limit_check() {
  local key statuses n200 n429
  echo "rate-limit check: nno platform bench-free, plan free (key: 50/s, burst 100)"
  key=$(nno_platform nno bench-free free)
  statuses=$(lib burst 150 "${BASE[nno]}/p/bench-free/hello" "Authorization: Bearer $key")
  n200=$(tr ' ' '\n' <<<"$statuses" | grep -c '^200$' || true)
  n429=$(tr ' ' '\n' <<<"$statuses" | grep -c '^429$' || true)
  check "150 requests in a row with one key -> 200s then 429s" \
    "$([[ $statuses == 200* && $n429 -gt 0 && $((n200 + n429)) -eq 150 ]] \
       && echo 0 || echo 1)" "$n200 x 200, $n429 x 429"
}

# After the runs: nginx logs each refusal of limit_req ("limiting requests").
limit_never_fired() {
  local n
  n=$(grep -c 'limiting requests' "$TMP/nginx-gateway/error.log" 2>/dev/null || true)
  check "nginx-gateway: limit_req never fired during the runs" \
    "$([ "${n:-0}" -eq 0 ] && echo 0 || echo 1)" "${n:-0} refusals logged"
}

limit_check() {  # the same config at rate=1r/s: the limiter must fire
  local key=$1 statuses out="$TMP/nginx-check/get.txt"
  echo "limit_req check: nginx-gateway config with rate=1r/s, no burst"
  start_nginx nginx-check nginx-gateway.conf.in 1r/s ""
  wait_ready nginx-check "${URL[nginx-check]}" "Authorization: Bearer $key"
  sleep 1.1   # the readiness probe itself spent this second's request
  statuses=$(lib burst 5 "${URL[nginx-check]}" "Authorization: Bearer $key")
  check "5 requests in a row with one key -> 200 then 429s" \
    "$([[ $statuses == "200 429 429 429 429" ]] && echo 0 || echo 1)" "$statuses"
  lib get "${URL[nginx-check]}" "Authorization: Bearer $key" >"$out"
  check "429 carries X-Request-Id and CORS" \
    "$({ [ "$(head -n1 "$out")" = 429 ] && has_headers "$out"; } && echo 0 || echo 1)" \
    "status $(head -n1 "$out")"
  stop_server nginx-check
}

# --- set-up --------------------------------------------------------------------

echo "# nno gateway bench — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -r)"
echo "# wrk -t$THREADS -c$CONNS -d$DURATION --latency; $ROUNDS round(s); servers: $PEERS"
command -v "$NGINX" >/dev/null && echo "# $("$NGINX" -v 2>&1)"
echo "# $("$WRK" --version 2>&1 | head -n1 | sed 's/ Copyright.*//' || true)"

# 1,000 API keys of nno's shape; wrk sends one from the middle of the map.
lib keys 1000 >"$TMP/keys.txt"
awk '{ printf "\"Bearer %s\" client%d;\n", $1, NR }' "$TMP/keys.txt" >"$TMP/keys.map"
KEY=$(sed -n 500p "$TMP/keys.txt")

for s in "${SERVERS[@]}"; do
  case $s in
    nginx-gateway)
      limit_check "$KEY"
      start_nginx nginx-gateway nginx-gateway.conf.in "$GATEWAY_RATE" \
        "burst=$GATEWAY_BURST nodelay"
      HDR[nginx-gateway]="Authorization: Bearer $KEY"
      wait_ready nginx-gateway "${URL[nginx-gateway]}" "${HDR[nginx-gateway]}"
      echo "nginx-gateway (rate=$GATEWAY_RATE burst=$GATEWAY_BURST):"
      gateway_checks nginx-gateway "$KEY"
      ;;
    nginx-gateway-log)
      start_nginx nginx-gateway-log nginx-gateway.conf.in "$GATEWAY_RATE" \
        "burst=$GATEWAY_BURST nodelay" "$TMP/nginx-gateway-log/access.log"
      HDR[nginx-gateway-log]="Authorization: Bearer $KEY"
      wait_ready nginx-gateway-log "${URL[nginx-gateway-log]}" \
        "${HDR[nginx-gateway-log]}"
      gateway_checks nginx-gateway-log "$KEY"
      ;;
    nginx-bare)
      start_nginx nginx-bare nginx-bare.conf.in
      wait_ready nginx-bare "${URL[nginx-bare]}"
      ;;
    nno)
      start_nno nno "$NNO_PATH" "$NNO_CONFIG"
      setup_nno_platform nno
      wait_ready nno "${URL[nno]}" "${HDR[nno]}"
      echo "nno (full chain, platform bench on plan $NNO_PLAN):"
      nno_checks
      nno_limit_check
      ;;
    nno-log)
      start_nno nno-log "$NNO_PATH" "$NNO_LOG_CONFIG"
      setup_nno_platform nno-log
      wait_ready nno-log "${URL[nno-log]}" "${HDR[nno-log]}"
      ;;
    nno-base)
      start_nno nno-base "$NNO_PATH" "$NNO_CONFIG" "$NNO_BASE"
      setup_nno_platform nno-base
      wait_ready nno-base "${URL[nno-base]}" "${HDR[nno-base]}"
      ;;
    nno-kernel)
      start_nno nno-kernel /hello "$(kernel_config)"
      wait_ready nno-kernel "${URL[nno-kernel]}"
      ;;
  esac
done
if [ "$FAILED" -ne 0 ]; then
  echo "gateway.sh: a peer check failed; its figures would mean nothing" >&2
  exit 1
fi
for s in "${SERVERS[@]}"; do
  echo "$s: ${URL[$s]}${HDR[$s]:+ (${HDR[$s]%%:*}: ...)} pid ${PID[$s]}"
done

# --- runs ----------------------------------------------------------------------

WRK_PID=
run_wrk() {  # name duration outfile
  local name=$1
  # In the background so that a signal's trap runs at once, not after wrk.
  "$WRK" -t"$THREADS" -c"$CONNS" -d"$2" --latency \
    ${HDR[$name]:+-H "${HDR[$name]}"} "${URL[$name]}" >"$3" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { echo "gateway.sh: wrk failed:" >&2; cat "$3" >&2; exit 1; }
  WRK_PID=
}

if [ "$WARMUP" != 0 ]; then
  for s in "${SERVERS[@]}"; do run_wrk "$s" "$WARMUP" "$TMP/warmup-$s.txt"; done
fi

RESULTS="$TMP/results.txt"
: >"$RESULTS"
ERRORS=0
n=${#SERVERS[@]}
echo
printf '%-5s %-14s %10s %9s %8s %12s\n' round server req/s "p99 ms" "CPU s" req/CPU-s
for ((r = 1; r <= ROUNDS; r++)); do
  for ((i = 0; i < n; i++)); do
    s=${SERVERS[$(((i + r - 1) % n))]}
    out="$TMP/wrk-$s-$r.txt"
    c0=$(lib cpu "${PID[$s]}")
    run_wrk "$s" "$DURATION" "$out"
    c1=$(lib cpu "${PID[$s]}")
    read -r reqs secs rps p99 non2xx sockerr < <(lib wrk "$out")
    cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
    rpc=$(awk -v n="$reqs" -v c="$cpu" 'BEGIN { printf "%.0f", (c > 0 ? n / c : 0) }')
    echo "$r $s $rps $p99 $cpu $rpc" >>"$RESULTS"
    printf '%-5s %-14s %9.1fk %9.2f %8.2f %11.1fk' "$r" "$s" \
      "$(awk -v x="$rps" 'BEGIN { print x / 1000 }')" "$p99" "$cpu" \
      "$(awk -v x="$rpc" 'BEGIN { print x / 1000 }')"
    if [ "$non2xx" -ne 0 ] || [ "$sockerr" -ne 0 ]; then
      printf '   <-- %s non-2xx, %s socket errors (%s)' "$non2xx" "$sockerr" "$out"
      ERRORS=1
    fi
    echo
    kill -0 "${PID[$s]}" 2>/dev/null ||
      { echo "gateway.sh: $s died during the run" >&2; exit 1; }
  done
done

echo
base=nno
[[ ,$PEERS, == *,nno,* ]] || base=${SERVERS[0]}
lib report "$RESULTS" "$base" "${SERVERS[@]}"
if [[ ,$PEERS, == *,nno,* && ,$PEERS, == *,nno-base,* ]]; then
  echo
  echo "this build against $NNO_BASE (nno / nno-base: 1.0 is the same):"
  lib ratio "$RESULTS" nno nno-base
fi
if [[ ,$PEERS, == *,nno,* && ,$PEERS, == *,nno-log,* ]]; then
  echo
  echo "the access log's cost (nno-log / nno: 1.0 is free):"
  lib ratio "$RESULTS" nno-log nno
fi
if [[ ,$PEERS, == *,nno-log,* && ,$PEERS, == *,nginx-gateway-log,* ]]; then
  echo
  echo "both with their access logs on (nno-log / nginx-gateway-log):"
  lib ratio "$RESULTS" nno-log nginx-gateway-log
fi
if [[ ,$PEERS, == *,nno,* && ,$PEERS, == *,nginx-gateway,* ]]; then
  echo
  lib targets "$RESULTS" nno nginx-gateway
fi
if [[ ,$PEERS, == *,nginx-gateway,* ]]; then
  echo
  limit_never_fired
  [ "$FAILED" -eq 0 ] || exit 1
fi

if [ "$ERRORS" -ne 0 ]; then
  echo
  echo "gateway.sh: WARNING: some runs had non-2xx answers or socket errors" \
       "(marked above); their figures are not comparable" >&2
  exit 1
fi
