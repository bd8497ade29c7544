#!/usr/bin/env bash
# Installs the Debian packages lltrace needs to build and test: the compiler and build tools,
# SQLite, zstd and Check; with --dev also clang (the fuzzer), clang-format (the format check),
# and the zstd tool and python3-zstandard (independent decoders the codec tests check against).
# Uses sudo when not run as root; installs only what is missing.
# Usage: bash tests/deps.sh [--dev]
set -euo pipefail
pkgs="cmake ninja-build gcc pkg-config libsqlite3-dev libzstd-dev check"
if [ "${1:-}" = "--dev" ]; then
  pkgs="$pkgs clang clang-format zstd python3-zstandard"
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tests/deps.sh: no apt-get here; install these packages by hand: $pkgs" >&2
  exit 1
fi
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -n "$missing" ] || exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
