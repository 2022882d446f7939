#!/bin/sh
# Fold what fuzzing found into the committed corpus, minimised.
#
#   tests/fuzz/merge.sh BUILD_DIR TARGET...
#
# For each target, libFuzzer's -set_cover_merge=1 keeps, of BUILD_DIR/fuzz/corpus/
# TARGET, only the inputs that reach coverage the committed seed-* and
# crash-* files do not; those replace the other files of
# tests/fuzz/corpus/TARGET (they are named by content hash). Run it after
# make fuzz, then check the folder stays small (a few hundred files).
set -eu

build=$1
shift
src=$(cd "$(dirname "$0")" && pwd)

for t in "$@"; do
  bin=$build/fuzz/fuzz_$t
  dst=$src/corpus/$t
  work=$build/fuzz/corpus/$t
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir "$tmp/out"
  # Seeds and crash inputs stay as they are; the merge adds to them.
  for f in "$dst"/seed-* "$dst"/crash-*; do
    [ -f "$f" ] && cp "$f" "$tmp/out/"
  done
  before=$(ls "$tmp/out" | wc -l)
  mkdir -p "$work"
  "$bin" -set_cover_merge=1 "$tmp/out" "$work" "$dst" >"$tmp/log" 2>&1 || {
    cat "$tmp/log" >&2
    exit 1
  }
  find "$dst" -maxdepth 1 -type f ! -name 'seed-*' ! -name 'crash-*' -delete
  for f in "$tmp/out"/*; do
    case ${f##*/} in seed-* | crash-*) ;; *) cp "$f" "$dst/" ;; esac
  done
  after=$(ls "$dst" | wc -l)
  echo "merge: $t: $before seeds and crash inputs, $after files in all," \
       "$(du -sk "$dst" | cut -f1) KiB"
  rm -rf "$tmp"
  trap - EXIT
done
