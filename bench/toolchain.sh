#!/usr/bin/env bash
# The developer's toolchain against the same steps done by hand (summary in
# bench/README.md, "Developer's toolchain"). Two figures, each side by side:
#
#   init -> first 200, cold (ROUNDS_INIT rounds, each on fresh hosts):
#     toolchain: in a fresh folder, `nno project init tool` then `nno project
#       dev` (its own host, an empty .nno) until GET /p/tool/hello answers
#       200; timed from the init command, the local host's start included;
#     by hand: on a fresh host already running (nno serve, its own data
#       folder, ready before the clock starts), write package.json and a C
#       file with the same route, compile it with cc and explicit -I/-L to
#       this build's plugin API and SDK (no pkg-config), write stack.json,
#       copy the stack into DATA/stacks/, SIGHUP the master (its pid is in
#       DATA/nno.lock), create a user_project platform (plan unmetered, as
#       dev's), activate the stack (retried while the reloading workers do
#       not know it yet) and make a key with curl, then poll the route
#       until 200.
#   save -> changed response (ROUNDS_SAVE edits):
#     toolchain: with `nno project dev` running, the source saved with a new
#       answer (a new file renamed over the old one, as editors do); timed
#       until the route answers it;
#     by hand: the same save, then recompile with the version bumped, copy
#       the new version into DATA/stacks/, SIGHUP, switch the platform's
#       active version with curl (retried likewise), poll until it answers.
#
# Medians of the rounds. Run by hand, never by `make test`.
#
# Environment:
#   ROUNDS=  sets both counts; ROUNDS_INIT=3  ROUNDS_SAVE=5
#   NNO=build/bin/nno  BUILD=build (its include/ and lib/ for cc)
#   NNO_WORKERS=2 (the by-hand hosts; dev's host has its own default)
#   CC=cc  TIMEOUT=120 (seconds any one wait may take)  KEEP=1 (keep the temp dir)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
lib() { python3 "$HERE/benchlib.py" "$@"; }
. "$HERE/lib.sh"

ROUNDS_INIT=${ROUNDS_INIT:-${ROUNDS:-3}}
ROUNDS_SAVE=${ROUNDS_SAVE:-${ROUNDS:-5}}
BUILD=${BUILD:-$ROOT/build}
NNO=${NNO:-$BUILD/bin/nno}
NNO_WORKERS=${NNO_WORKERS:-2}
CC=${CC:-cc}
TIMEOUT=${TIMEOUT:-120}
KEEP=${KEEP:-0}

[ -x "$NNO" ] || { echo "toolchain.sh: $NNO not built (run make first)" >&2; exit 1; }
[ -f "$BUILD/include/nno/plugin.h" ] && [ -f "$BUILD/lib/libnno_sdk.a" ] ||
  { echo "toolchain.sh: no plugin API in $BUILD/include and $BUILD/lib" >&2; exit 1; }
command -v curl >/dev/null || { echo "toolchain.sh: needs curl" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nno-bench-toolchain.XXXXXX")
PIDS=()  # dev processes and by-hand hosts still running
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do stop_tree "$p"; done
  finish_tmp toolchain.sh "$rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() { date +%s%3N; }
forget() { local keep=() p; for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; PIDS=("${keep[@]}"); }

# until_answers URL KEY TEXT: poll GET URL (a new connection each time,
# 10 ms apart) until it answers 200 with TEXT in the body; print the time
# of that answer (ms since the epoch). Fails after TIMEOUT seconds.
until_answers() {
  python3 - "$1" "$2" "$3" "$TIMEOUT" <<'PY'
import http.client, sys, time, urllib.parse
url, key, text, limit = sys.argv[1], sys.argv[2], sys.argv[3].encode(), float(sys.argv[4])
u = urllib.parse.urlsplit(url)
deadline = time.time() + limit
last = None
while time.time() < deadline:
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        c.request("GET", u.path, headers={"Authorization": "Bearer " + key})
        r = c.getresponse()
        body = r.read()
        c.close()
        last = (r.status, body[:200])
        if r.status == 200 and text in body:
            print(int(time.time() * 1000))
            sys.exit(0)
    except OSError as e:
        last = repr(e)
    time.sleep(0.01)
sys.exit("toolchain.sh: %s never answered %r (last: %r)" % (url, text.decode(), last))
PY
}

# save FILE: replace FILE as editors do (a new file renamed over it), its
# text on stdin.
save() { cat >"$1.tmp~" && mv "$1.tmp~" "$1"; }

# ---- the toolchain ----------------------------------------------------------

# dev_start DIR: `nno project dev` in DIR, its output in DIR/dev.out; sets
# DEV (pid), DEV_URL (the routes' base) and DEV_KEY once it printed them.
dev_start() {
  : >"$1/dev.out"
  (cd "$1" && exec "$NNO" project dev >dev.out 2>&1) &
  DEV=$!
  PIDS+=("$DEV")
  local i
  DEV_URL= DEV_KEY=
  for ((i = 0; i < TIMEOUT * 100; i++)); do
    DEV_URL=$(awk '$1 == "routes" { print $2 }' "$1/dev.out")
    DEV_KEY=$(awk '$1 == "key" { print $2 }' "$1/dev.out")
    [ -n "$DEV_URL" ] && [ -n "$DEV_KEY" ] && return 0
    kill -0 "$DEV" 2>/dev/null || break
    sleep 0.01
  done
  echo "toolchain.sh: nno project dev did not start:" >&2
  cat "$1/dev.out" >&2
  exit 1
}

# dev_stop: Ctrl-C, as a developer stops it; what is left is killed.
dev_stop() {
  local i
  kill -INT "$DEV" 2>/dev/null || true
  for ((i = 0; i < 3000; i++)); do kill -0 "$DEV" 2>/dev/null || break; sleep 0.01; done
  stop_tree "$DEV"
  forget "$DEV"
}

# tool_source DIR MESSAGE: the template's source answering MESSAGE.
tool_source() {
  sed "s/\"hello from tool\"/\"$2\"/" "$1/tool.c.orig" | save "$1/src/tool.c"
}

# ---- by hand ----------------------------------------------------------------

# host_start DIR: a fresh `nno serve` with data in DIR/var, ready; sets
# HOST (pid), HOST_URL, HOST_DATA, OP_KEY.
host_start() {
  local port
  port=$(lib freeport)
  mkdir -p "$1/var"
  "$NNO" serve --listen "127.0.0.1:$port" --workers "$NNO_WORKERS" \
    --data "$1/var" >"$1/nno.log" 2>&1 &
  HOST=$!
  PIDS+=("$HOST")
  HOST_URL="http://127.0.0.1:$port"
  HOST_DATA="$1/var"
  local i
  for ((i = 0; i < TIMEOUT * 100; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$HOST_URL/readyz")" = 200 ] &&
      [ -s "$HOST_DATA/operator.key" ] && break
    kill -0 "$HOST" 2>/dev/null ||
      { echo "toolchain.sh: nno serve died:" >&2; cat "$1/nno.log" >&2; exit 1; }
    sleep 0.01
  done
  [ -s "$HOST_DATA/operator.key" ] ||
    { echo "toolchain.sh: nno serve not ready in ${TIMEOUT}s:" >&2; cat "$1/nno.log" >&2; exit 1; }
  OP_KEY=$(cat "$HOST_DATA/operator.key")
}

host_stop() { stop_tree "$HOST"; forget "$HOST"; }

# op METHOD PATH [BODY]: an operator API call with curl; prints the status,
# the body in $WORK/api.json.
op() {
  curl -s -o "$WORK/api.json" -w '%{http_code}' -X "$1" \
    -H "Authorization: Bearer $OP_KEY" -H 'Content-Type: application/json' \
    ${3:+-d "$3"} "$HOST_URL/api/v1$2"
}

# op_retry METHOD PATH BODY: the call again every 10 ms while it answers
# 422 (the reloaded workers have not listed the new version yet).
op_retry() {
  local st i
  for ((i = 0; i < TIMEOUT * 100; i++)); do
    st=$(op "$@")
    case $st in
      2??) return 0 ;;
      422) sleep 0.01 ;;
      *) echo "toolchain.sh: $1 $2 answered $st: $(cat "$WORK/api.json")" >&2; exit 1 ;;
    esac
  done
  echo "toolchain.sh: $1 $2 still 422: $(cat "$WORK/api.json")" >&2
  exit 1
}

# hand_source MESSAGE: the C file, written by hand (the same route).
hand_source() {
  save "$WORK/src/hand.c" <<EOF
#include <nno/plugin.h>
#include <nno/sdk.h>

static int on_hello(nno_req *req, void *ud) {
  (void)ud;
  return nno_send_json(req, 200, json_pack("{s:s}", "message", "$1"));
}

static int hand_init(nno_plugin *p, const nno_host_api *host) {
  nno_sdk_init(p, host);
  return host->route_add(p, "GET", "/hello", on_hello, NULL);
}

NNO_PLUGIN(.name = "hand", .version = PACKAGE_VERSION,
           .kind = NNO_KIND_FEATURE, .on_plugin_init = hand_init)
EOF
}

# hand_build_copy VERSION: package.json with VERSION, compile, stack.json,
# copy into DATA/stacks/hand/VERSION, SIGHUP the master.
hand_build_copy() {
  local v=$1 d="$HOST_DATA/stacks/hand/$1"
  cat >"$WORK/src/package.json" <<EOF
{"name": "hand", "version": "$v", "abi": "1.5", "kind": "feature",
 "library": "libhand.so",
 "routes": [{"method": "GET", "path": "/hello", "scope": "read"}]}
EOF
  "$CC" -std=c11 -O1 -fPIC -shared -fvisibility=hidden -I"$BUILD/include" \
    -DPACKAGE_VERSION="\"$v\"" -o "$WORK/src/libhand.so" "$WORK/src/hand.c" \
    -L"$BUILD/lib" -lnno_sdk -ljansson -Wl,--no-undefined
  cat >"$WORK/src/stack.json" <<EOF
{"id": "hand", "version": "$v", "packages": [{"name": "hand", "version": "$v"}]}
EOF
  mkdir -p "$d/packages/hand"
  cp "$WORK/src/package.json" "$WORK/src/libhand.so" "$d/packages/hand/"
  cp "$WORK/src/stack.json" "$d/"
  kill -HUP "$(cat "$HOST_DATA/nno.lock")"
}

# ---- the runs ---------------------------------------------------------------

echo "# nno toolchain bench — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -r)"
echo "# load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $ROUNDS_INIT cold starts, $ROUNDS_SAVE saves; $("$CC" --version | head -n 1)"
RES="$TMP/results.txt"
: >"$RES"

for ((r = 1; r <= ROUNDS_INIT; r++)); do
  # toolchain: init -> dev -> first 200
  P="$TMP/tool-init-$r"
  mkdir -p "$P"
  t0=$(now_ms)
  (cd "$P" && "$NNO" project init tool >/dev/null)
  dev_start "$P/tool"
  t1=$(until_answers "$DEV_URL"hello "$DEV_KEY" "hello from tool")
  echo "init toolchain $r $((t1 - t0))" >>"$RES"
  dev_stop

  # by hand, on a fresh host
  WORK="$TMP/hand-init-$r"
  mkdir -p "$WORK/src"
  host_start "$WORK"
  t0=$(now_ms)
  hand_source "hello by hand"
  hand_build_copy 0.1.0
  op_retry POST /platforms '{"id": "hand", "name": "hand", "class": "user_project", "plan": "unmetered"}'
  op_retry POST /platforms/hand/stacks '{"stack": "hand", "version": "0.1.0"}'
  op_retry POST /platforms/hand/keys '{"name": "bench", "scopes": ["features:*"]}'
  key=$(lib jsonget key <"$WORK/api.json")
  t1=$(until_answers "$HOST_URL/p/hand/hello" "$key" "hello by hand")
  echo "init by-hand $r $((t1 - t0))" >>"$RES"
  host_stop
  printf 'init round %d: toolchain %s ms, by hand %s ms\n' "$r" \
    "$(awk -v r="$r" '$1 == "init" && $2 == "toolchain" && $3 == r { print $4 }' "$RES")" \
    "$(awk -v r="$r" '$1 == "init" && $2 == "by-hand" && $3 == r { print $4 }' "$RES")"
done

# save -> changed, toolchain: one dev, ROUNDS_SAVE saves.
P="$TMP/tool-save"
mkdir -p "$P"
(cd "$P" && "$NNO" project init tool >/dev/null)
cp "$P/tool/src/tool.c" "$P/tool/tool.c.orig"
dev_start "$P/tool"
until_answers "$DEV_URL"hello "$DEV_KEY" "hello from tool" >/dev/null
for ((r = 1; r <= ROUNDS_SAVE; r++)); do
  t0=$(now_ms)
  tool_source "$P/tool" "saved $r"
  t1=$(until_answers "$DEV_URL"hello "$DEV_KEY" "saved $r")
  echo "save toolchain $r $((t1 - t0))" >>"$RES"
done
dev_stop

# save -> changed, by hand: one host, a version per save.
WORK="$TMP/hand-save"
mkdir -p "$WORK/src"
host_start "$WORK"
hand_source "hello by hand"
hand_build_copy 0.1.0
op_retry POST /platforms '{"id": "hand", "name": "hand", "class": "user_project", "plan": "unmetered", "stacks": ["hand"]}'
op POST /platforms/hand/keys '{"name": "bench", "scopes": ["features:*"]}' >/dev/null
key=$(lib jsonget key <"$WORK/api.json")
until_answers "$HOST_URL/p/hand/hello" "$key" "hello by hand" >/dev/null
for ((r = 1; r <= ROUNDS_SAVE; r++)); do
  t0=$(now_ms)
  hand_source "saved $r"
  hand_build_copy "0.1.$r"
  op_retry POST /platforms/hand/stacks "{\"stack\": \"hand\", \"version\": \"0.1.$r\"}"
  t1=$(until_answers "$HOST_URL/p/hand/hello" "$key" "saved $r")
  echo "save by-hand $r $((t1 - t0))" >>"$RES"
done
host_stop
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
python3 - "$RES" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    what, how, rnd, ms = line.split()
    rows.setdefault((what, how), []).append(int(ms) / 1000.0)
print("%-28s %10s %10s %8s   rounds (s)" % ("median, seconds", "toolchain",
                                          "by hand", "ratio"))
for what, label in (("init", "init -> first 200 (cold)"),
                    ("save", "save -> changed response")):
    tool, hand = rows.get((what, "toolchain"), []), rows.get((what, "by-hand"), [])
    if not tool or not hand:
        continue
    a, b = statistics.median(tool), statistics.median(hand)
    print("%-28s %10.3f %10.3f %8.2f   %s | %s" % (
        label, a, b, a / b if b else float("nan"),
        " ".join("%.3f" % x for x in tool), " ".join("%.3f" % x for x in hand)))
print("(ratio: toolchain / by hand; < 1 favours the toolchain)")
PY
