#!/bin/sh
# Install the Debian packages nno needs to build and test, and only those
# that are missing. Quiet (prints nothing) when everything is present.
#
#   scripts/setup-deps.sh            build + test packages
#   scripts/setup-deps.sh bench      ... plus nginx-light and wrk (bench/)
#   scripts/setup-deps.sh browser    ... plus chromium, chromium-driver and
#                                    python3-selenium (browser tests)
#   scripts/setup-deps.sh fuzz       ... plus clang and libclang-rt-14-dev
#                                    (libFuzzer targets: make fuzz)
#
# Groups can be combined: `setup-deps.sh bench browser`.
set -eu

BASE="gcc make cmake pkg-config curl libuv1-dev libjansson-dev libsqlite3-dev
      libcurl4-openssl-dev libarchive-dev libsodium-dev zlib1g-dev libseccomp-dev
      libcmocka-dev python3 python3-pytest valgrind"
BENCH="nginx-light wrk"
BROWSER="chromium chromium-driver python3-selenium"
FUZZ="clang libclang-rt-14-dev"

want=$BASE
for group in "$@"; do
  case $group in
    bench) want="$want $BENCH" ;;
    browser) want="$want $BROWSER" ;;
    fuzz) want="$want $FUZZ" ;;
    default|base) ;;
    -h|--help)
      sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
      exit 0 ;;
    *)
      echo "setup-deps.sh: unknown group '$group' (known: bench, browser, fuzz)" >&2
      exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup-deps.sh: dpkg-query not found; this script supports Debian" \
       "and its derivatives only." >&2
  echo "hint: install the equivalents of: $want" >&2
  exit 1
fi

missing=
for p in $want; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case $st in
    *" installed") ;;
    *) missing="$missing $p" ;;
  esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  SUDO=
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "setup-deps.sh: missing Debian packages:$missing" >&2
  echo "hint: not root and no sudo; run as root:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
  exit 1
fi

echo "setup-deps.sh: installing:$missing" >&2
fail() {
  echo "setup-deps.sh: could not install:$missing" >&2
  echo "hint: check network access to the Debian mirrors and /etc/apt/sources.list," \
       "then run: ${SUDO:+$SUDO }apt-get update && ${SUDO:+$SUDO }apt-get install -y$missing" >&2
  exit 1
}
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || fail
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  --no-install-recommends $missing >&2 || fail

# Confirm: apt can "succeed" yet leave a package half-configured.
still=
for p in $missing; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case $st in *" installed") ;; *) still="$still $p" ;; esac
done
if [ -n "$still" ]; then
  missing=$still
  fail
fi
