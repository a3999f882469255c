#!/usr/bin/env bash
# The whole test suite, on a fresh machine or an old one: `./test.sh` (the README's test command).
#
# 1. Installs what the suite needs when it is missing, and nothing when it is present:
#    Chromium (tests/browser.rs drives a real browser) and redis-server (tests that need Redis
#    start their own throwaway instance on a free loopback port; none uses a Redis the machine
#    happens to run). Installing needs root (apt-get); without root the script says what to
#    install and stops.
# 2. Runs `cargo test` with any arguments given (`./test.sh --test rooms`), so plain `cargo test`
#    keeps working wherever the tools are already there.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v chromium >/dev/null 2>&1 || [ -x "${RINGCAST_CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "test.sh: installing ${missing[*]} (Debian packages) for the test suite"
  if [ "$(id -u)" != 0 ]; then
    echo "test.sh: not root: run 'sudo apt-get install -y ${missing[*]}' and try again" >&2
    exit 2
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

exec cargo test "$@"
