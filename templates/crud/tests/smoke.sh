#!/bin/sh
# Black-box: create, read, update, list and delete an item through a real
# host. NNO_BASE is the platform's base URL (http://HOST:PORT/p/PLATFORM),
# NNO_KEY a key of it with features:{{name}}:write (or features:*).
set -eu
: "${NNO_BASE:?set NNO_BASE}" "${NNO_KEY:?set NNO_KEY}"

call() { # METHOD PATH [BODY]: the body answered; fails on a 4xx/5xx
  curl -sS --fail-with-body -X "$1" -H "Authorization: Bearer $NNO_KEY" \
    -H 'Content-Type: application/json' ${3:+-d "$3"} "$NNO_BASE$2"
}
expect() { # TEXT WHAT: WHAT must hold TEXT
  case "$2" in *"$1"*) ;; *) echo "expected $1 in: $2" >&2; exit 1 ;; esac
}

item=$(call POST /items '{"name":"smoke"}')
expect '"name":"smoke"' "$item"
id=$(printf '%s' "$item" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
[ -n "$id" ] || { echo "no id in: $item" >&2; exit 1; }
expect '"name":"smoke"' "$(call GET "/items/$id")"
expect '"name":"renamed"' "$(call PATCH "/items/$id" '{"name":"renamed"}')"
expect "\"id\":$id" "$(call GET /items)"
call DELETE "/items/$id" >/dev/null
code=$(curl -sS -o /dev/null -w '%{http_code}' \
  -H "Authorization: Bearer $NNO_KEY" "$NNO_BASE/items/$id")
[ "$code" = 404 ] || { echo "deleted item answered $code" >&2; exit 1; }
echo "ok: items created, read, updated, listed, deleted"
