#!/bin/sh
# record_and_diff.sh RECORDER LLTRACE WORKDIR [MODEL]
# Records stories260K with llama.cpp (llamacpp-recorder), checks the trace is complete and whole
# (every canonical op of every layer, no partial tensor, the KV-cache rows of each step), then
# runs the same prompt with `lltrace run` and diffs the two. MODEL defaults to the reference
# model in ../shared (LLTRACE_SHARED or LLTRACE_SRC/../shared); exit 77 (skipped) without it.
# Needs a llama.cpp build (the recorder is only built with one), so CI here never runs it.
set -u
REC=$1
LLT=$2
WORK=$3
SHARED=${LLTRACE_SHARED:-${LLTRACE_SRC:-.}/../shared}
MODEL=${4:-$SHARED/models/stories260k-f32.v3.gguf}
PROMPT="Once upon a time"
N=4

fail() {
    echo "record_and_diff: $*" >&2
    exit 1
}
sql() { # sql QUERY [TRACE]: the last row of the result, as CSV
    "$LLT" sql "${2:-$WORK/llamacpp.trace}" "$1" --csv 2>/dev/null | tr -d "\r" | tail -n 1
}

[ -f "$MODEL" ] || { echo "record_and_diff: no model $MODEL: skipped" >&2; exit 77; }
rm -rf "$WORK" && mkdir -p "$WORK" || fail "cannot create $WORK"

"$REC" -m "$MODEL" -p "$PROMPT" -n $N -t 2 -o "$WORK/llamacpp.trace" --force \
    > "$WORK/recorder.out" 2> "$WORK/recorder.err" || { cat "$WORK/recorder.err" >&2; fail "recorder failed"; }
"$REC" -m "$MODEL" -p "$PROMPT" -n $N -o "$WORK/llamacpp.trace" 2> /dev/null \
    && fail "recorder overwrote an existing trace without --force"
"$REC" -m "$MODEL" -o "$WORK/x.trace" 2> /dev/null; [ $? -eq 2 ] || fail "missing -p is not a usage error"

[ "$(sql "SELECT source || ' ' || status FROM v_runs")" = "llama.cpp-recorder complete" ] \
    || fail "run is not a complete llama.cpp-recorder run"
[ "$(sql "SELECT count(*) FROM steps")" = "$N" ] || fail "expected $N steps (prompt + $((N - 1)))"
[ "$(sql "SELECT count(*) FROM tensors WHERE partial != 0")" = "0" ] || fail "partial tensors"
L=$(sql "SELECT n_layer FROM runs")
# tok_embd, 19 ops per layer, output_norm, output: in the prompt step and in every decode step
want=$((19 * L + 3))
[ "$(sql "SELECT count(DISTINCT name) FROM ops WHERE step = 0")" = "$want" ] \
    || fail "step 0: expected $want canonical ops"
[ "$(sql "SELECT count(*) FROM ops WHERE step = $((N - 1))")" = "$want" ] \
    || fail "step $((N - 1)): expected $want ops"
# the last layer's FFN covers the last position only; the cache rows of a decode step are its own
[ "$(sql "SELECT pos0 || ' ' || n_pos FROM ops WHERE step = 0 AND name = 'output'")" = "4 1" ] \
    || fail "output of step 0 does not cover the last prompt position"
[ "$(sql "SELECT pos0 || ' ' || n_pos || ' ' || replace(t.shape, ',', ' ') FROM ops o JOIN op_tensors ot ON ot.op_id = o.id
          JOIN tensors t ON t.id = ot.tensor_id WHERE step = 2 AND name = 'blk.0.cache_k'")" \
    = "6 1 [1 $(sql "SELECT n_head_kv * head_dim FROM runs")]" ] || fail "cache_k rows of step 2"

"$LLT" run -m "$MODEL" -p "$PROMPT" -n $N -t 2 -o "$WORK/mine.trace" --force \
    > "$WORK/run.out" 2> "$WORK/run.err" || fail "lltrace run failed"
ids="SELECT group_concat(token_id, ' ') FROM (SELECT token_id FROM tokens ORDER BY idx)"
[ "$(sql "$ids")" = "$(sql "$ids" "$WORK/mine.trace")" ] \
    || fail "llama.cpp and lltrace tokenize or generate differently"
"$LLT" diff "$WORK/llamacpp.trace" "$WORK/mine.trace" --color never > "$WORK/diff.out" 2>&1
rc=$?
cat "$WORK/diff.out"
[ $rc -eq 0 ] || fail "lltrace diff: the traces diverge (exit $rc)"
echo "record_and_diff: ok"
