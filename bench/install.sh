#!/usr/bin/env bash
# Stack archive installs (summary in bench/README.md, "Version swaps"):
#   1. start nno (2 workers, default logging, iam + registry + provisioning);
#   2. make ROUNDS stack folders "bulk" 1.0.0, 2.0.0, ... from the fixture
#      stack ver 2.0.0 (build/tests/stacks/ver) with SIZE_MB of random
#      bytes added to its package (incompressible: the archive is about
#      SIZE_MB), and pack each with `nno stack pack`;
#   3. install each with `nno stack install FILE` (the archive uploaded):
#      the command's wall time (upload, extraction, checksums, the check in
#      a child, the move into place), then the time until GET
#      /api/v1/stacks/bulk shows the version loaded in 20 answers in a
#      row, each on a new connection (every worker loaded it); medians and maxima.
#
# Needs `nno stack pack` and `nno stack install` (the archive and install
# work of this round).
#
# Environment:
#   ROUNDS=5  SIZE_MB=10  STACKS_DIR=build/tests/stacks/ver
#   NNO=build/bin/nno  NNO_WORKERS=2  KEEP=1 (keep the temp dir)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
load() { python3 "$HERE/registry_load.py" "$@"; }
lib() { python3 "$HERE/benchlib.py" "$@"; }
. "$HERE/lib.sh"

ROUNDS=${ROUNDS:-5}
SIZE_MB=${SIZE_MB:-10}
STACKS_DIR=${STACKS_DIR:-$ROOT/build/tests/stacks/ver}
NNO=${NNO:-$ROOT/build/bin/nno}
NNO_WORKERS=${NNO_WORKERS:-2}
KEEP=${KEEP:-0}

[ -x "$NNO" ] || { echo "install.sh: $NNO not built (run make first)" >&2; exit 1; }
BASE="$STACKS_DIR/ver/2.0.0"
[ -f "$BASE/stack.json" ] ||
  { echo "install.sh: no fixture stack in $BASE (run make first)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nno-bench-install.XXXXXX")
PID=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$PID" ] && stop_tree "$PID"
  finish_tmp install.sh "$rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() { date +%s%3N; }

echo "# nno stack install bench — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -r)"
echo "# $ROUNDS installs of a ${SIZE_MB} MiB archive; $NNO_WORKERS workers"
df -T "$TMP" | awk 'NR == 2 { print "# data on " $2 " (" $1 ")" }'

PORT=$(lib freeport)
URL="http://127.0.0.1:$PORT"
mkdir -p "$TMP/var" "$TMP/src" "$TMP/archives"
printf '%s\n' '{"core_plugins":["iam","registry","provisioning"]}' \
  >"$TMP/nno.json"
"$NNO" serve --listen "127.0.0.1:$PORT" --workers "$NNO_WORKERS" \
  --data "$TMP/var" --config "$TMP/nno.json" >"$TMP/nno.log" 2>&1 &
PID=$!
load ready "$URL"
export NNO_URL="$URL" NNO_DATA="$TMP/var"

for ((r = 1; r <= ROUNDS; r++)); do
  d="$TMP/src/bulk/$r.0.0"
  mkdir -p "$d"
  cp -R "$BASE/packages" "$d/"
  chmod -R go-w "$d"
  printf '{"id": "bulk", "version": "%s", "packages": [{"name": "ver", "version": "2.0.0"}]}\n' \
    "$r.0.0" >"$d/stack.json"
  mkdir -p "$d/packages/ver/ui"
  head -c "$((SIZE_MB * 1048576))" /dev/urandom >"$d/packages/ver/ui/payload.bin"
  "$NNO" stack pack "$d" -o "$TMP/archives" >"$TMP/pack-$r.txt"
done
ls -l "$TMP/archives" | awk 'NR > 1 { printf "  %s %.1f MiB\n", $NF, $5 / 1048576 }'

listed() {  # version: 20 answers in a row, each on a new connection (so
            # from any worker), show it loaded in that worker
  python3 - "$URL" "$(cat "$TMP/var/operator.key")" "$1" <<'PY'
import http.client, json, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
for _ in range(20):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    c.request("GET", "/api/v1/stacks/bulk",
              headers={"Authorization": "Bearer " + sys.argv[2]})
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200:
        sys.exit(1)
    d = json.loads(body).get("details", [])
    if not any(v.get("version") == sys.argv[3] and v.get("state") == "loaded"
               for v in d):
        sys.exit(1)
PY
}

echo
printf '%-6s %12s %14s\n' round "install ms" "all workers ms"
: >"$TMP/results.txt"
for ((r = 1; r <= ROUNDS; r++)); do
  file=$(ls "$TMP"/archives/bulk-"$r".0.0*.tar.gz)
  t0=$(now_ms)
  "$NNO" stack install "$file" >"$TMP/install-$r.txt" 2>&1 ||
    { echo "install.sh: install failed:" >&2; cat "$TMP/install-$r.txt" >&2; exit 1; }
  t1=$(now_ms)
  until listed "$r.0.0"; do sleep 0.01; done
  t2=$(now_ms)
  printf '%-6s %12d %14d\n' "$r" "$((t1 - t0))" "$((t2 - t0))"
  echo "$((t1 - t0)) $((t2 - t0))" >>"$TMP/results.txt"
done
python3 - "$TMP/results.txt" <<'PY'
import statistics, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
for name, f in (("median", statistics.median), ("max", max)):
    print("%-6s %12d %14d" % (name, f(r[0] for r in rows), f(r[1] for r in rows)))
PY
kill -0 "$PID" 2>/dev/null || { echo "install.sh: nno died" >&2; tail -50 "$TMP/nno.log" >&2; exit 1; }
