#!/usr/bin/env bash
# ablate.sh - what one part of the tracer costs, measured by taking it away: builds the checked-out
# commit twice (as it is, and with an ablation patch from tests/bench/ablations/ applied) in
# throw-away worktrees, then runs `lltrace bench --trace` with each build in turns, ROUNDS times,
# and prints the stats and full ratios of every run, the paired differences and their medians.
# The two builds swap places every other round (base first in odd rounds), so that a drift of the
# machine's speed within a round does not favour one of them. On this noisy machine a single pair
# means little: ablations/none.patch (a comment) gives paired differences of -0.011 to +0.015 in
# five rounds, so look at the signs over many rounds, and run more rounds than you think.
# Not a test. Needs a Release-capable toolchain (cmake, ninja) and the model, e.g.
#
#   build/release/lltrace mkmodel --preset tinyllama-1.1b --type q8_0 -o /tmp/tl-q8_0.gguf
#   tests/bench/ablate.sh tests/bench/ablations/noscan.patch 3 /tmp/tl-q8_0.gguf
#
# The patches are written against the commit that added them; `git apply --check` says when one
# no longer applies. Extra bench options can be given in ABLATE_BENCH (default
# "-p 64 -n 32 -t 2 -r 5").
set -euo pipefail

usage() {
    echo "usage: tests/bench/ablate.sh PATCH [ROUNDS] [MODEL]" >&2
    exit 2
}
if [ $# -lt 1 ] || [ $# -gt 3 ]; then usage; fi
patch=$(realpath "$1")
rounds=${2:-3}
model=${3:-/tmp/tl-q8_0.gguf}
bench_opts=${ABLATE_BENCH:--p 64 -n 32 -t 2 -r 5}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "ablate.sh: ROUNDS must be a positive integer, not '$rounds'" >&2; exit 2; }
[ -f "$patch" ] || { echo "ablate.sh: $1: no such patch" >&2; exit 2; }
[ -f "$model" ] || { echo "ablate.sh: $model: no such model (make it with lltrace mkmodel)" >&2; exit 2; }

repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d "${TMPDIR:-/tmp}/lltrace-ablate.XXXXXX")
cleanup() {
    git -C "$repo" worktree remove --force "$work/base" 2>/dev/null || true
    git -C "$repo" worktree remove --force "$work/ablated" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

for side in base ablated; do
    git -C "$repo" worktree add --quiet --detach "$work/$side" HEAD
done
if ! git -C "$work/ablated" apply "$patch"; then
    echo "ablate.sh: $1 does not apply to $(git -C "$repo" rev-parse --short HEAD)" >&2
    exit 1
fi
for side in base ablated; do
    echo "building $side ..." >&2
    cmake -S "$work/$side" -B "$work/$side/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$work/$side/build" --target lltrace >/dev/null
done

# "stats 1.049x" -> 1.049, from the line "tracing cost (tg ..." or "of which the steps ..."
ratio() { sed -n "s/.*$1.* $2 \([0-9.]*\)x.*/\1/p" "$3" | head -1; }

printf '%-6s %-8s %8s %8s %12s %10s\n' round build stats full "stats steps" "close ms"
declare -a diffs=() diffs_steps=()
for ((r = 1; r <= rounds; r++)); do
    declare -A st=() ss=()
    order="base ablated"
    if ((r % 2 == 0)); then order="ablated base"; fi # the other order every other round
    for side in $order; do
        out="$work/$side.out"
        # shellcheck disable=SC2086
        "$work/$side/build/lltrace" bench -m "$model" $bench_opts --trace >"$out" 2>&1 || {
            echo "ablate.sh: the $side bench failed:" >&2
            cat "$out" >&2
            exit 1
        }
        st[$side]=$(ratio "tracing cost (tg" stats "$out")
        ss[$side]=$(ratio "of which the steps" stats "$out")
        full=$(ratio "tracing cost (tg" full "$out")
        close=$(sed -n 's/.*closing the trace.*stats \([0-9.]*\) ms.*/\1/p' "$out" | head -1)
        if [ -z "${st[$side]}" ] || [ -z "${ss[$side]}" ] || [ -z "$full" ]; then
            echo "ablate.sh: no tracing cost in the output of the $side bench:" >&2
            cat "$out" >&2
            exit 1
        fi
        printf '%-6s %-8s %8s %8s %12s %10s\n' "$r" "$side" "${st[$side]}" "$full" "${ss[$side]}" "$close"
    done
    diffs+=("$(awk -v a="${st[ablated]}" -v b="${st[base]}" 'BEGIN {printf "%+.3f", a - b}')")
    diffs_steps+=("$(awk -v a="${ss[ablated]}" -v b="${ss[base]}" 'BEGIN {printf "%+.3f", a - b}')")
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {printf "%+.3f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo
echo "stats, ablated - base, per round: ${diffs[*]}  (median $(median "${diffs[@]}"))"
echo "stats steps only, ablated - base: ${diffs_steps[*]}  (median $(median "${diffs_steps[@]}"))"
