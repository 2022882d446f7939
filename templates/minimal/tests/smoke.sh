#!/bin/sh
# Black-box: the route answers through a real host. NNO_BASE is the
# platform's base URL (http://HOST:PORT/p/PLATFORM), NNO_KEY a key of it.
set -eu
: "${NNO_BASE:?set NNO_BASE}" "${NNO_KEY:?set NNO_KEY}"

body=$(curl -sS --fail-with-body -H "Authorization: Bearer $NNO_KEY" \
  "$NNO_BASE/hello")
case "$body" in
  *'"message"'*'hello from {{name}}'*) echo "ok: GET /hello" ;;
  *) echo "GET /hello answered: $body" >&2; exit 1 ;;
esac
