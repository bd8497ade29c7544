#!/usr/bin/env bash
# Installs what lltrace needs (Debian packages), builds Release and Debug+ASan+UBSan with
# -Werror, checks formatting, and runs every test in both builds (CTest drives the Check suites
# and the CLI scripts). Reference-data tests read ../shared and are skipped when it is absent.
# The libFuzzer harnesses (tests/fuzz) run for 60 s each when clang is available.
# Usage: bash tests/all.sh        (.ci/run calls exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/deps.sh --dev

echo "== format check"
find src tracer viewer tests examples -name '*.[ch]' -print0 | xargs -0 clang-format --dry-run -Werror

jobs=2
echo "== release build"
cmake --preset release -DWERROR=ON >/dev/null
cmake --build build/release -j "$jobs"
echo "== asan+ubsan build"
cmake --preset asan -DWERROR=ON >/dev/null
cmake --build build/asan -j "$jobs"
if command -v clang >/dev/null 2>&1; then
  echo "== fuzz build (clang)"
  CC=clang cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLLTRACE_FUZZ=ON \
    -DWERROR=ON >/dev/null
  fuzzers=()
  for f in tests/fuzz/fuzz_*.c; do fuzzers+=("$(basename "$f" .c)"); done
  cmake --build build/fuzz -j "$jobs" --target "${fuzzers[@]}"
fi

status=0
echo "== tests (release)"
(cd build/release && ctest --output-on-failure -j "$jobs") || status=1
echo "== tests (asan+ubsan)"
(cd build/asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j "$jobs") || status=1
if [ -x build/fuzz/tests/fuzz_gguf ]; then
  echo "== fuzz (60 s each: GGUF, import parsers, tensor loader, trace reader, model, tokenizer)"
  (cd build/fuzz && ctest --output-on-failure -R '^fuzz_') || status=1
fi
exit $status
