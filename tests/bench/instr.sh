#!/usr/bin/env bash
# instr.sh - the tracer's CPU work counted in instructions, which do not vary from run to run:
# runs `lltrace run` under valgrind's callgrind twice, untraced and with `-o ... --record stats`,
# one thread (no spin-waits, so the counts repeat exactly), and prints where the traced run's
# extra instructions go, per op and per row. It answers what ablate.sh cannot on this noisy
# machine: whether a change to the tracer made it do less. It does not say what that costs in
# time: the engine's matmuls are bound by memory, the tracer's code is not, so a tracer
# instruction costs less than the engine's average one. Not a test. Needs valgrind and a
# Release build; about 3.5 minutes per run (7 in all) for 8 tokens of the TinyLlama-sized model:
#
#   build/release/lltrace mkmodel --preset tinyllama-1.1b --type q8_0 -o /tmp/tl-q8_0.gguf
#   tests/bench/instr.sh /tmp/tl-q8_0.gguf 8
#
# The parts are callgrind's inclusive counts of these functions (static ones may be renamed or
# inlined by another compiler: their rows then say n/a): trc_op_record_linked (the engine
# thread's share, with trc__hash_stats, the fused hash + stats pass), trc__batch_flush (the
# row INSERTs: sqlite3_step and bind_row), commit_tx (the step commits) and trc_writer_close.
set -euo pipefail

usage() {
    echo "usage: tests/bench/instr.sh [MODEL] [TOKENS] [LLTRACE]" >&2
    exit 2
}
if [ $# -gt 3 ]; then usage; fi
model=${1:-/tmp/tl-q8_0.gguf}
tokens=${2:-8}
repo=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
bin=${3:-$repo/build/release/lltrace}
[[ $tokens =~ ^[1-9][0-9]*$ ]] || { echo "instr.sh: TOKENS must be a positive integer, not '$tokens'" >&2; exit 2; }
[ -f "$model" ] || { echo "instr.sh: $model: no such model (make it with lltrace mkmodel)" >&2; exit 2; }
[ -x "$bin" ] || { echo "instr.sh: $bin: no such program (build it: cmake --build build/release)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "instr.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/lltrace-instr.XXXXXX")
trap 'rm -rf "$work"' EXIT
prompt="Once upon a time"

# callgrind_annotate's inclusive count of function $1 in profile $2, or empty
count() {
    awk -v f="$1" '$0 ~ "[?]:" f " " && $1 ~ /^[0-9,]+$/ { gsub(",", "", $1); print $1; exit }' "$2"
}

# A native traced run first stores the model's SHA-256 in a cache of its own, so that neither
# counted run hashes the model (the traced run would otherwise, once per cache).
LLTRACE_CACHE_DIR="$work" "$bin" run -m "$model" -p "$prompt" -n 1 -t 1 -o "$work/warm.trace" \
    --record stats >/dev/null 2>"$work/warm.err" ||
    { echo "instr.sh: lltrace run failed:" >&2; tail -5 "$work/warm.err" >&2; exit 1; }
for side in untraced traced; do
    args=(run -m "$model" -p "$prompt" -n "$tokens" -t 1)
    [ "$side" = traced ] && args+=(-o "$work/t.trace" --record stats)
    echo "running $side under callgrind ..." >&2
    LLTRACE_CACHE_DIR="$work" valgrind --tool=callgrind --callgrind-out-file="$work/$side.cg" \
        "$bin" "${args[@]}" >"$work/$side.out" 2>"$work/$side.err" ||
        { echo "instr.sh: the $side run failed:" >&2; tail -5 "$work/$side.err" >&2; exit 1; }
    callgrind_annotate --inclusive=yes --threshold=100 "$work/$side.cg" >"$work/$side.txt" 2>/dev/null
done
cmp -s "$work/untraced.out" "$work/traced.out" ||
    echo "note: the two runs printed different text; their counts do not compare" >&2

read -r n_ops n_tensors n_steps < <("$bin" sql "$work/t.trace" \
    "SELECT (SELECT count(*) FROM ops), (SELECT count(*) FROM tensors), (SELECT count(*) FROM steps)" \
    --csv | tail -1 | tr ',' ' ')
total_u=$(sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' "$work/untraced.txt" | tr -d ,)
total_t=$(sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' "$work/traced.txt" | tr -d ,)
dec_u=$(count lm_ctx_decode "$work/untraced.txt")
dec_t=$(count lm_ctx_decode "$work/traced.txt")

# row "label" count divisor unit
row() {
    if [ -z "$2" ]; then
        printf '  %-44s %14s\n' "$1" n/a
    else
        awk -v l="$1" -v c="$2" -v d="$3" -v u="$4" 'BEGIN {
            printf "  %-44s %14.1f M  %9.0f per %s\n", l, c / 1e6, c / d, u }'
    fi
}
echo "instructions (callgrind), $tokens generated tokens, -t 1, $n_steps steps, $n_ops ops," \
    "$n_tensors tensor rows:"
awk -v u="$total_u" -v t="$total_t" 'BEGIN {
    printf "  %-44s %14.1f M\n  %-44s %14.1f M  %+.2f%%\n", "whole run, untraced", u / 1e6,
        "whole run, --record stats", t / 1e6, 100 * (t - u) / u }'
if [ -n "$dec_u" ] && [ -n "$dec_t" ]; then
    awk -v u="$dec_u" -v t="$dec_t" 'BEGIN {
        printf "  %-44s %14.1f M\n  %-44s %14.1f M  %+.2f%%\n", "lm_ctx_decode (the steps), untraced",
            u / 1e6, "lm_ctx_decode, --record stats", t / 1e6, 100 * (t - u) / u }'
fi
row "trc_op_record_linked (engine thread)" "$(count trc_op_record_linked "$work/traced.txt")" \
    "$n_ops" op
row "  of which trc__hash_stats (the pass)" "$(count trc__hash_stats "$work/traced.txt")" \
    "$n_ops" op
row "trc__batch_flush (row INSERTs)" "$(count trc__batch_flush "$work/traced.txt")" \
    "$((n_ops + n_tensors))" row
row "  of which sqlite3_step" "$(awk '/[*]  [?]+:trc__batch_flush / { f = 1; next }
    f && /^$/ { exit } f && /sqlite3_step/ { gsub(",", "", $1); print $1; exit }' \
    <(callgrind_annotate --tree=calling --inclusive=yes --threshold=100 "$work/traced.cg" 2>/dev/null))" \
    "$((n_ops + n_tensors))" row
row "commit_tx (step commits)" "$(count commit_tx "$work/traced.txt")" "$n_steps" step
row "trc_writer_close" "$(count trc_writer_close "$work/traced.txt")" 1 trace
