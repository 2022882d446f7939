#!/usr/bin/env bash
# Local provisioning, timed (summary in bench/README.md, "Provisioning"):
#   1. start nno (2 workers, access log off) on a fresh data dir;
#   2. create BARE platforms with no stack (the platform's folders only),
#      one after another: latency per call;
#   3. create N platforms with STACKS activated in the same call (for the
#      default stack: the auth database and notes' database, namespace and
#      bucket, each migrated): latency per call — the target is a median
#      under 20 ms — then check every platform lists its resources ready;
#   4. VmRSS of the workers before and after, per provisioned platform, and
#      the disk each platform takes;
#   5. delete the N platforms again: latency per call.
#
# Environment:
#   N=1000  BARE=200  STACKS=default
#   NNO=build/bin/nno  NNO_WORKERS=2  KEEP=1 (keep the temp dir)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
load() { python3 "$HERE/registry_load.py" "$@"; }
prov() { python3 "$HERE/provision_load.py" "$@"; }
lib() { python3 "$HERE/benchlib.py" "$@"; }
. "$HERE/lib.sh"

N=${N:-1000}
BARE=${BARE:-200}
STACKS=${STACKS:-default}
NNO=${NNO:-$ROOT/build/bin/nno}
NNO_WORKERS=${NNO_WORKERS:-2}
KEEP=${KEEP:-0}

[ -x "$NNO" ] || { echo "provision.sh: $NNO not built (run make first)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nno-bench-provision.XXXXXX")
PID=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$PID" ] && stop_tree "$PID"
  finish_tmp provision.sh "$rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

worker_rss_kib() {  # sum of the workers' VmRSS
  # shellcheck disable=SC2046
  load rss $(load workers "$URL") | awk '{ s += $2 } END { print s }'
}

echo "# nno provisioning bench — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -r)"
echo "# BARE=$BARE platforms without stacks, N=$N with stacks '$STACKS', $NNO_WORKERS workers"
df -T "$TMP" | awk 'NR == 2 { print "# data on " $2 " (" $1 ")" }'

PORT=$(lib freeport)
URL="http://127.0.0.1:$PORT"
mkdir -p "$TMP/var"
printf '%s\n' '{"log":{"access":false}}' >"$TMP/nno.json"
"$NNO" serve --listen "127.0.0.1:$PORT" --workers "$NNO_WORKERS" \
  --data "$TMP/var" --config "$TMP/nno.json" >"$TMP/nno.log" 2>&1 &
PID=$!
load ready "$URL"
KEYFILE="$TMP/var/operator.key"

echo
echo "== $BARE platforms, no stack =="
(cd "$HERE" && python3 -c '
import sys, provision_load as p
p.pid = lambda i: "bare-%05d" % i
p.create(sys.argv[1], sys.argv[2], int(sys.argv[3]), "")
' "$URL" "$KEYFILE" "$BARE") | grep -v '^RESULT'

RSS0=$(worker_rss_kib)
echo
echo "== $N platforms with '$STACKS' =="
prov create "$URL" "$KEYFILE" "$N" "$STACKS" | tee "$TMP/create.txt" | grep -v '^RESULT'
prov check "$URL" "$KEYFILE" "$N" >"$TMP/check.txt"
echo "  every platform: $(awk '/^RESULT/ { print $2 }' "$TMP/check.txt") resources, all ready"
RSS1=$(worker_rss_kib)
DISK=$(du -sk "$TMP/var/platforms" | awk '{ print $1 }')
awk -v a="$RSS0" -v b="$RSS1" -v n="$N" -v d="$DISK" -v m="$((N + BARE))" 'BEGIN {
  printf "  workers VmRSS %.1f -> %.1f MiB: %.1f KiB per provisioned platform\n", a / 1024, b / 1024, (b - a) / n
  printf "  disk: %.1f MiB for %d platform folders, %.1f KiB each on average\n", d / 1024, m, d / m }'

echo
echo "== delete the $N platforms =="
prov delete "$URL" "$KEYFILE" "$N" | grep -v '^RESULT'
left=$(find "$TMP/var/platforms" -maxdepth 1 -name 'prov-*' | wc -l)
echo "  platform folders left: $left"
kill -0 "$PID" 2>/dev/null || { echo "provision.sh: nno died" >&2; tail -50 "$TMP/nno.log" >&2; exit 1; }
