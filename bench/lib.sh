# Shell helpers shared by the bench scripts (sourced; bash). Each script
# sets TMP (its temp dir), KEEP, and defines lib() (benchlib.py).

# TERM process $1, give it 10 s to stop, then KILL what is left of its
# process tree (its workers).
stop_tree() {
  local pid=$1 tree i
  tree=$(lib tree "$pid" 2>/dev/null || true)
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  for p in $tree; do kill -KILL "$p" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}

# Remove $TMP, or keep it (and say where) when KEEP=1 or the run failed
# (exit status $2); $1 names the script in the message.
finish_tmp() {
  if [ "$KEEP" = 1 ] || [ "$2" -ne 0 ]; then
    echo "$1: data, logs and raw output kept in $TMP" >&2
  else
    rm -rf "$TMP"
  fi
}
