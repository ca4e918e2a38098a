#!/usr/bin/env bash
# Headless Chromium for the browser tests (tests/e2e/alerts): makes sure Debian's `chromium` and
# `chromium-driver` are installed, i.e. /usr/bin/chromium and /usr/bin/chromedriver exist.
# Idempotent: when both are there it does nothing and needs no network. Installing needs root (or
# sudo) and Debian's package sources.
#
#   deploy/local/browser.sh          # install when missing, then print the versions
#   deploy/local/browser.sh check    # only say whether they are there (exit 1 when not)
set -euo pipefail

CHROMIUM=/usr/bin/chromium
DRIVER=/usr/bin/chromedriver

say() { printf '[browser] %s\n' "$*"; }
die() { printf '[browser] ERROR: %s\n' "$*" >&2; exit 1; }
present() { [ -x "$CHROMIUM" ] && [ -x "$DRIVER" ]; }

if [ "${1:-}" = check ]; then
  if present; then say "chromium and chromedriver are installed"; exit 0; fi
  say "missing: run deploy/local/browser.sh to install Debian's chromium and chromium-driver"
  exit 1
fi
[ $# -eq 0 ] || die "usage: $0 [check]"

if ! present; then
  command -v apt-get >/dev/null || die "apt-get not found: install Chromium and chromedriver so that $CHROMIUM and $DRIVER exist"
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "installing chromium needs root (or sudo)"
    SUDO=(sudo)
  fi
  say "installing chromium and chromium-driver with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq chromium chromium-driver >/dev/null
  present || die "apt-get finished but $CHROMIUM or $DRIVER is still missing"
fi
say "$("$CHROMIUM" --version 2>/dev/null || echo chromium), $("$DRIVER" --version 2>/dev/null | cut -d' ' -f1-2)"
