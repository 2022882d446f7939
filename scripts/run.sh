#!/bin/sh
# `make run`: serve on $LISTEN with data in $DATA, create the demo platform
# with the default stack, sign-up allowed and an API key once (the key goes
# to $DATA/demo.key, mode 0600), and print where to point a browser and
# curl.
set -eu
BIN=${BIN:-build/bin/nno}
LISTEN=${LISTEN:-127.0.0.1:8080}
DATA=${DATA:-var}
PORT=${LISTEN##*:}

"$BIN" serve --listen "$LISTEN" --data "$DATA" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' INT TERM

i=0
until curl -fsS "http://$LISTEN/readyz" >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -gt 150 ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "nno: the host did not become ready (see its log above)" >&2
    kill -TERM "$pid" 2>/dev/null || true
    exit 1
  fi
  sleep 0.1
done

export NNO_URL="http://$LISTEN" NNO_DATA="$DATA"
if ! "$BIN" platform show demo >/dev/null 2>&1; then
  "$BIN" platform create demo --name "Demo" --stack default >/dev/null
  curl -fsS -X PUT -H "Authorization: Bearer $(cat "$DATA/operator.key")" \
       -H "Content-Type: application/json" -d '{"signup": true}' \
       "http://$LISTEN/api/v1/platforms/demo/access" >/dev/null
fi
if [ ! -s "$DATA/demo.key" ]; then
  (umask 077 && "$BIN" key create demo --name "make run demo" \
     --scopes "features:*" --json 2>/dev/null |
     sed -n 's/.*"key": *"\([^"]*\)".*/\1/p' >"$DATA/demo.key")
fi

cat <<MSG

nno is serving on http://$LISTEN/ with data in $DATA/ (Ctrl-C stops it)

In a browser (names under nno.localhost reach this machine with no DNS set-up):
  http://console.demo.nno.localhost:$PORT/     the demo platform's console: create an account, then sign in
  http://admin.nno.localhost:$PORT/admin/      the operator view: paste the key in $DATA/operator.key

With curl:
  curl -H "Authorization: Bearer \$(cat $DATA/demo.key)" http://$LISTEN/p/demo/hello
  curl -H "Authorization: Bearer \$(cat $DATA/demo.key)" http://hello.demo.nno.localhost:$PORT/hello/ada
  curl -i -H 'Content-Type: application/json' -d '{"email":"ada@example.com","password":"correct horse battery"}' \
       http://$LISTEN/p/demo/auth/sign-up     # a user session (cookie + token)
  curl -H "Authorization: Bearer \$(cat $DATA/demo.key)" -H 'Content-Type: application/json' -d '{"title":"first"}' \
       http://$LISTEN/p/demo/notes     # a note, kept in the demo's sql database
  curl http://$LISTEN/metrics
  curl -H "Authorization: Bearer \$(cat $DATA/operator.key)" http://$LISTEN/api/v1/platforms
  http://admin.nno.localhost:$PORT/admin/   # the operator view: sign in with $DATA/operator.key
  $BIN platform list          # the CLI reads the key from $DATA/operator.key
  $BIN resource list demo     # the demo's databases, key-value stores and buckets

MSG
wait "$pid"
