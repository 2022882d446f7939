#!/usr/bin/env bash
# The notes package through the full gateway chain against the same
# statements in a bare sqlite loop, side by side in one run (summary in
# bench/README.md, "Provisioning"), and whether a heavy write load stalls
# the event loop.
#
#   1. nno with its defaults (access log on), NNO_WORKERS workers; platform
#      `bench` created with the default stack, plan "unmetered", one API key
#      with features:notes:read/write and features:hello:read; PREFILL notes.
#   2. write: wrk POST /p/bench/notes (a 200-byte body) and the same INSERT
#      ... RETURNING in sqlite_bare (THREADS = NNO_WORKERS connections, the
#      driver's pragmas); read: wrk GET /p/bench/notes/{1..PREFILL} and the
#      same SELECT. ROUNDS rounds each; medians and ratios nno / bare.
#   3. loop: a second host with ONE worker; p99 of GET /p/bench/hello alone,
#      then while another wrk posts notes to the same worker; the ratio is
#      what the write load costs the loop (1.0: nothing).
#
# Environment:
#   ROUNDS=3  DURATION=10s  THREADS=2  CONNS=32  PREFILL=1000
#   NNO=build/bin/nno  NNO_WORKERS=2  WRK=wrk  CC=cc  KEEP=1
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
load() { python3 "$HERE/registry_load.py" "$@"; }
lib() { python3 "$HERE/benchlib.py" "$@"; }
. "$HERE/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
PREFILL=${PREFILL:-1000}
NNO=${NNO:-$ROOT/build/bin/nno}
NNO_WORKERS=${NNO_WORKERS:-2}
WRK=${WRK:-wrk}
CC=${CC:-cc}
KEEP=${KEEP:-0}
SECS=${DURATION%s}

for tool in "$WRK" "$CC" python3; do
  command -v "$tool" >/dev/null || { echo "notes.sh: $tool not found" >&2; exit 1; }
done
[ -x "$NNO" ] || { echo "notes.sh: $NNO not built (run make first)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nno-bench-notes.XXXXXX")
PIDS=()
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do stop_tree "$p"; done
  finish_tmp notes.sh "$rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() {  # name workers -> sets URL_name and KEY_name
  local name=$1 workers=$2 port
  port=$(lib freeport)
  mkdir -p "$TMP/$name"
  "$NNO" serve --listen "127.0.0.1:$port" --workers "$workers" \
    --data "$TMP/$name" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  load ready "http://127.0.0.1:$port"
  printf -v "URL_$name" '%s' "http://127.0.0.1:$port"
  python3 - "http://127.0.0.1:$port" "$TMP/$name/operator.key" "$PREFILL" \
    >"$TMP/$name.key" <<'EOF'
import json, sys
sys.path.insert(0, __import__("os").environ["BENCH_HERE"])
import registry_load as rl
url, keyfile, prefill = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = rl.Client(url + "/api/v1", rl.read_key(keyfile))
st, out = c.call("POST", "/platforms", {"id": "bench", "name": "Bench", "stacks": ["default"]})
assert st == 201, (st, out)
st, out = c.call("PATCH", "/platforms/bench", {"plan": "unmetered"})
assert st == 200, (st, out)
st, out = c.call("POST", "/platforms/bench/keys", {"name": "bench", "scopes": [
    "features:notes:read", "features:notes:write", "features:hello:read"]})
assert st == 201, (st, out)
key = json.loads(out)["key"]
n = rl.Client(url, key)
n.key = key
for i in range(prefill):
    st, out = n.call("POST", "/p/bench/notes", {"title": "note %d" % i, "body": "x" * 200})
    assert st == 201, (st, out)
print(key)
EOF
}
export BENCH_HERE=$HERE

cat >"$TMP/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title": "bench", "body": "' .. string.rep("x", 200) .. '"}'
EOF
cat >"$TMP/get.lua" <<EOF
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/p/bench/notes/" .. ((n * 7919) % $PREFILL + 1))
end
EOF

echo "# nno notes bench — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -r)"
echo "# wrk -t$THREADS -c$CONNS -d$DURATION, $ROUNDS round(s); $NNO_WORKERS workers; defaults (access log on)"
df -T "$TMP" | awk 'NR == 2 { print "# data on " $2 " (" $1 ")" }'

"$CC" -O2 -o "$TMP/sqlite_bare" "$HERE/sqlite_bare.c" -lsqlite3 -lpthread
MIG="$ROOT/packages/notes/migrations/notes/0001_notes.sql"
python3 - "$TMP/bare.db" "$MIG" "$PREFILL" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA journal_mode=WAL")
db.executescript(open(sys.argv[2]).read())
for i in range(int(sys.argv[3])):
    db.execute("INSERT INTO notes (tenant_path, title, body, created_by, created_at, updated_at)"
               " VALUES ('', ?, ?, 'key:bench', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
               ("note %d" % i, "x" * 200))
db.commit()
EOF
COLS="id, tenant_path, title, body, created_by, created_at, updated_at"
NOW="strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
SUB="(?1 = '' OR tenant_path = ?1 OR substr(tenant_path, 1, length(?1) + 1) = ?1 || '/')"
WRITE_SQL="INSERT INTO notes (tenant_path, title, body, created_by, created_at, updated_at) VALUES ('', 'bench', '$(printf 'x%.0s' $(seq 200))', 'key:bench', $NOW, $NOW) RETURNING $COLS"
READ_SQL="SELECT $COLS FROM notes WHERE id = (?2 % $PREFILL) + 1 AND ('' = '' OR tenant_path = '' OR substr(tenant_path, 1, 1) = '/')"

start main "$NNO_WORKERS"
KEY=$(cat "$TMP/main.key")
echo "nno: $URL_main, platform bench with $PREFILL notes"

RESULTS="$TMP/results.txt"
: >"$RESULTS"
wrk_run() {  # label script url out -> "rps p50 p99 reqs non2xx sockerr"
  "$WRK" -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$2" \
    -H "Authorization: Bearer $KEY" "$3" >"$4" 2>&1
  load wrk "$4"
}
printf '%-5s %-12s %10s %9s\n' round case ops/s "p99 ms"
for ((r = 1; r <= ROUNDS; r++)); do
  read -r rps _ p99 _ non2xx sockerr < <(wrk_run write "$TMP/post.lua" "$URL_main/p/bench/notes" "$TMP/w-$r.txt")
  [ "$non2xx" = 0 ] && [ "$sockerr" = 0 ] || echo "  write round $r: $non2xx non-2xx, $sockerr socket errors"
  printf '%-5s %-12s %10.0f %9.2f\n' "$r" nno-write "$rps" "$p99"
  echo "$r nno-write $rps" >>"$RESULTS"
  read -r _ ops < <("$TMP/sqlite_bare" "$TMP/bare.db" "$SECS" "$NNO_WORKERS" 0 "$WRITE_SQL" | awk '/^RESULT/ { print $2, $3 }')
  printf '%-5s %-12s %10.0f\n' "$r" bare-write "$ops"
  echo "$r bare-write $ops" >>"$RESULTS"
  read -r rps _ p99 _ non2xx sockerr < <(wrk_run read "$TMP/get.lua" "$URL_main" "$TMP/r-$r.txt")
  [ "$non2xx" = 0 ] && [ "$sockerr" = 0 ] || echo "  read round $r: $non2xx non-2xx, $sockerr socket errors"
  printf '%-5s %-12s %10.0f %9.2f\n' "$r" nno-read "$rps" "$p99"
  echo "$r nno-read $rps" >>"$RESULTS"
  read -r _ ops < <("$TMP/sqlite_bare" "$TMP/bare.db" "$SECS" "$NNO_WORKERS" 0 "$READ_SQL" | awk '/^RESULT/ { print $2, $3 }')
  printf '%-5s %-12s %10.0f\n' "$r" bare-read "$ops"
  echo "$r bare-read $ops" >>"$RESULTS"
done
python3 - "$RESULTS" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    _, label, v = line.split()
    rows.setdefault(label, []).append(float(v))
med = {k: statistics.median(v) for k, v in rows.items()}
for k in ("write", "read"):
    print("median %-5s nno %8.0f/s  bare sqlite %8.0f/s  ratio nno/bare %.3f"
          % (k, med["nno-" + k], med["bare-" + k], med["nno-" + k] / med["bare-" + k]))
EOF

echo
echo "== one worker: GET /hello alone, then beside a notes write load =="
start one 1
KEY=$(cat "$TMP/one.key")
for ((r = 1; r <= ROUNDS; r++)); do
  "$WRK" -t1 -c16 -d"$DURATION" --latency -H "Authorization: Bearer $KEY" \
    "$URL_one/p/bench/hello" >"$TMP/h-alone-$r.txt" 2>&1
  "$WRK" -t1 -c"$CONNS" -d"$((SECS + 2))s" -s "$TMP/post.lua" \
    -H "Authorization: Bearer $KEY" "$URL_one/p/bench/notes" >"$TMP/h-load-w-$r.txt" 2>&1 &
  WP=$!
  sleep 1
  "$WRK" -t1 -c16 -d"$DURATION" --latency -H "Authorization: Bearer $KEY" \
    "$URL_one/p/bench/hello" >"$TMP/h-busy-$r.txt" 2>&1
  wait "$WP"
  read -r a_rps _ a_p99 _ _ _ < <(load wrk "$TMP/h-alone-$r.txt")
  read -r b_rps _ b_p99 _ _ _ < <(load wrk "$TMP/h-busy-$r.txt")
  read -r w_rps _ _ _ w_bad _ < <(load wrk "$TMP/h-load-w-$r.txt")
  printf 'round %d: /hello alone p99 %.2f ms (%.0f/s); beside %.0f notes writes/s: p99 %.2f ms (%.0f/s); ratio %.2f\n' \
    "$r" "$a_p99" "$a_rps" "$w_rps" "$b_p99" "$b_rps" "$(awk -v a="$a_p99" -v b="$b_p99" 'BEGIN { print b / a }')"
done
