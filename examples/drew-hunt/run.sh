#!/bin/sh
# examples/drew-hunt/run.sh - the story in ../shared/seed, replayed end to end with lltrace: an
# engine emits a wrong token ("drew", logit 11.97) and the question is where it gets that logit.
# A good run, the same run with the RoPE pairing bug injected (the story's bug: pairs (i, i+n/2)
# instead of (2i, 2i+1)), the first op where the two runs part, and the components that give
# the wrong token its logit.
#
# usage: examples/drew-hunt/run.sh [OUT_DIR]        (default OUT_DIR: $TMPDIR/drew-hunt)
#   LLTRACE=path/to/lltrace   the binary to use; by default it is built with the release preset
#                             (cmake --preset release -> build/release/lltrace) if not there yet
#   LLTRACE_SHARED=DIR        the reference data (default: ../shared beside the source tree).
#                             With stories260K in it the hunt runs on that trained model;
#                             without, on a generated model of the same shape (lltrace mkmodel).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-${TMPDIR:-/tmp}/drew-hunt}
mkdir -p "$out"

if [ -z "${LLTRACE:-}" ]; then
    LLTRACE=$root/build/release/lltrace
    if [ ! -x "$LLTRACE" ]; then
        echo "== building lltrace (cmake --preset release)"
        (cd "$root" && cmake --preset release >/dev/null &&
            cmake --build build/release --target lltrace -j 2 >/dev/null)
    fi
fi

shared=${LLTRACE_SHARED:-$root/../shared}
model=$shared/models/stories260k-f32.v3.gguf
if [ ! -f "$model" ]; then
    model=$out/stories-synthetic.gguf
    echo "== no stories260K in $shared: generating a model of its shape"
    "$LLTRACE" mkmodel --preset stories -o "$model" --force
fi
prompt="One day, a little bird"

echo "== 1. the good run"
"$LLTRACE" run -m "$model" -p "$prompt" -n 16 --temp 0 -o "$out/good.trace" --force
echo
echo "== 2. the buggy build: --inject rope=neox"
"$LLTRACE" run -m "$model" -p "$prompt" -n 16 --temp 0 --inject rope=neox \
    -o "$out/bad.trace" --force
echo
echo "== 3. where do the two runs part?"
"$LLTRACE" diff "$out/good.trace" "$out/bad.trace" || test $? -eq 1 # 1: they differ

echo
echo "== 4. where does the wrong token get its logit?"
"$LLTRACE" explain "$out/bad.trace" --vs "$out/good.trace"

echo
echo "== 5. the wrong token in the bad run alone: logit lens and attribution"
"$LLTRACE" explain "$out/bad.trace"
