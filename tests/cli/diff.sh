#!/usr/bin/env bash
# lltrace diff and lltrace replay from the command line: --help (exit 0), usage errors (exit 2),
# a trace against itself (exit 0, every op identical), against a trace recorded with a fault
# (exit 1, the first divergence and the hint named, in text and in --json), a tolerance wide
# enough to accept an f16 KV cache (exit 0), replay of a clean trace (--all, one op, --run) and
# a file that is not a trace (exit 1, "lltrace: <file>: <reason>").
set -u

. "$(dirname "$0")/lib.bash"
lt_cli_init diff

"$BIN" mkmodel -o "$TMP/m.gguf" >/dev/null || { echo "cannot make a model" >&2; exit 1; }
run() {
    "$BIN" run -m "$TMP/m.gguf" -p "hello world" -n 3 --temp 0 -o "$TMP/$1.trace" "${@:2}" \
        >/dev/null 2>&1 || fail "run $*"
}
run a
run neox --inject rope=neox
run kv --inject kv=f16

expect 0 "" "$BIN" diff --help
has "NMSE = sum (a-b)^2 / sum b^2"
expect 0 "" "$BIN" help diff
expect 2 "expected two traces" "$BIN" diff "$TMP/a.trace"
expect 2 "expected two traces, A (reference) and B; '9' is a third" "$BIN" diff "$TMP/a.trace" "$TMP/a.trace" --step 9
expect 2 "not a tolerance" "$BIN" diff --atol x "$TMP/a.trace" "$TMP/a.trace"
expect 2 "--color takes" "$BIN" diff --color pink "$TMP/a.trace" "$TMP/a.trace"

expect 0 "" "$BIN" diff "$TMP/a.trace" "$TMP/a.trace"
has "first divergence: none"
has "0 within tolerance, 0 diverge"

expect 1 "" "$BIN" diff --color never "$TMP/a.trace" "$TMP/neox.trace"
has "rope_mode        A norm"
has "first divergence: step 0, layer 0, blk.0.rope_q (rope), position 1"
has "local: its inputs agree"
has "hint [rope-pairing]"
has "error per layer x op at step 0"
expect 1 "" "$BIN" diff --json "$TMP/a.trace" "$TMP/neox.trace"
has '"agree":false'
has '"op":"blk.0.rope_q"'
has '"origin":"local"'
if command -v python3 >/dev/null; then
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/out" || fail "invalid JSON"
fi

expect 1 "" "$BIN" diff "$TMP/a.trace" "$TMP/kv.trace"
has "blk.0.cache_k"
expect 0 "" "$BIN" diff --rtol 1e-2 --atol 1e-3 "$TMP/a.trace" "$TMP/kv.trace"

expect 0 "" "$BIN" replay --help
expect 2 "expected TRACE and OP" "$BIN" replay "$TMP/a.trace"
expect 2 "bad value" "$BIN" replay "$TMP/a.trace" blk.0.kq --step x
expect 1 "a.trace: step 99 out of range: the trace has steps 0.." \
    "$BIN" replay "$TMP/a.trace" --all --step 99
expect 1 "a.trace: layer 99 out of range: the model has " "$BIN" replay "$TMP/a.trace" --all --layer 99
expect 0 "" "$BIN" replay "$TMP/a.trace" --all
has "0 differ, 0 skipped"
expect 0 "" "$BIN" replay "$TMP/a.trace" blk.1.kqv --step 1
has "reproduced bit for bit"
expect 1 "no op" "$BIN" replay "$TMP/a.trace" blk.9.kq
expect 0 "" "$BIN" replay "$TMP/a.trace" blk.0.rope_q --against "$TMP/neox.trace"
has "1    rope=neox"
expect 0 "" "$BIN" replay "$TMP/kv.trace" --run
has "ops identical"

printf 'not a trace' >"$TMP/bad.trace"
expect 1 "bad.trace" "$BIN" diff "$TMP/a.trace" "$TMP/bad.trace"
expect 1 "bad.trace" "$BIN" replay "$TMP/bad.trace" --all

[ "$fails" -eq 0 ] || { echo "$fails failure(s)" >&2; exit 1; }
echo "ok"
