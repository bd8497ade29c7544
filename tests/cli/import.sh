#!/usr/bin/env bash
# lltrace import: --help, usage errors (exit 2), runtime errors with "lltrace: <file>: <reason>"
# (exit 1: garbage, binary data, an unknown architecture, an existing output without --force),
# a synthetic dump written here, and, when ../shared is present, the real reference dumps: the
# complete cb_eval.txt, the truncated llama-eval-callback stdout (warning, exit 0) and the
# llama-debug logits files. Two imports of the same dump have the same content.
set -u

SHARED=${LLTRACE_SHARED:-../shared}
. "$(dirname "$0")/lib.bash"
lt_cli_init import

"$BIN" import --help >"$TMP/help" 2>&1 || fail "import --help: exit $?"
for form in "import llamacpp DUMP.txt" "--logits FILE.bin" "import npy DIR" "--unpermute-qk"; do
    grep -qF -- "$form" "$TMP/help" || fail "--help lacks '$form'"
done
"$BIN" help import >/dev/null 2>&1 || fail "help import: exit $?"

expect 2 "missing the source kind" "$BIN" import
expect 2 "unknown source kind 'gguf'" "$BIN" import gguf x -o "$TMP/x.trace"
expect 2 "missing -o TRACE" "$BIN" import llamacpp dump.txt
expect 2 "-p needs -m" "$BIN" import llamacpp dump.txt -o "$TMP/x.trace" -p hello
expect 2 "--logits needs --tokens" "$BIN" import llamacpp --logits x.bin -o "$TMP/x.trace"
expect 2 "--unpermute-qk needs --n-head" "$BIN" import npy . -o "$TMP/x.trace" --unpermute-qk

printf 'hello\nnot a dump\n' >"$TMP/garbage.txt"
expect 1 "lltrace: $TMP/garbage.txt: no complete llama.cpp eval-callback record" \
    "$BIN" import llamacpp "$TMP/garbage.txt" -o "$TMP/g.trace"
head -c 3000 /dev/urandom >"$TMP/binary.txt"
printf '\0' >>"$TMP/binary.txt"
expect 1 "lltrace: $TMP/binary.txt: binary data" \
    "$BIN" import llamacpp "$TMP/binary.txt" -o "$TMP/b.trace"
expect 1 "lltrace: $TMP/missing.txt: cannot open: no such file" \
    "$BIN" import llamacpp "$TMP/missing.txt" -o "$TMP/m.trace"
[ ! -e "$TMP/g.trace" ] && [ ! -e "$TMP/b.trace" ] || fail "a failed import left a trace"

# a tiny dump written here: one unknown-architecture node, then a llama one
cat >"$TMP/gpt.txt" <<'EOF'
common_debug_cb_eval:                   wqkv-0 = (f32)    MUL_MAT(blk.0.attn_qkv.weight{4, 12, 1, 1}, x{4, 2, 1, 1}}) = {12, 2, 1, 1}
    [
        [
            [      0.1000,       0.2000,       0.3000,    ...,       1.0000,       1.1000,       1.2000  ],
            [      2.1000,       2.2000,       2.3000,    ...,       3.0000,       3.1000,       3.2000  ],
        ],
    ]
    sum = 20.000000
EOF
expect 1 "no node name matches the llama map" "$BIN" import llamacpp "$TMP/gpt.txt" -o "$TMP/u.trace"
sed 's/wqkv-0/l_out-0/; s/MUL_MAT/    ADD/' "$TMP/gpt.txt" >"$TMP/llama.txt"
"$BIN" import llamacpp "$TMP/llama.txt" -o "$TMP/l.trace" --tokens 1,2 >"$TMP/out" 2>"$TMP/err" ||
    fail "synthetic import: $(cat "$TMP/err")"
grep -q "1 ops (1 partial)" "$TMP/out" || fail "summary: $(cat "$TMP/out")"
expect 1 "lltrace: $TMP/l.trace: file exists (use --force to overwrite)" \
    "$BIN" import llamacpp "$TMP/llama.txt" -o "$TMP/l.trace"
"$BIN" import llamacpp "$TMP/llama.txt" -o "$TMP/l.trace" --force -q >"$TMP/out" 2>&1 ||
    fail "--force: $(cat "$TMP/out")"
[ ! -s "$TMP/out" ] || fail "-q printed: $(cat "$TMP/out")"

REFS=$SHARED/refs/stories260k-once
if [ ! -d "$REFS" ]; then
    echo "note: $REFS absent: real-dump checks skipped" >&2
    [ "$fails" -eq 0 ] || exit 1
    exit 0
fi

"$BIN" import llamacpp "$REFS/cb_eval.txt" -o "$TMP/a.trace" --tokens 1,403,407,261,378 \
    >"$TMP/out" 2>"$TMP/err" || fail "cb_eval.txt: $(cat "$TMP/err")"
grep -q "9 steps, 802 ops (802 partial)" "$TMP/out" || fail "cb_eval summary: $(cat "$TMP/out")"
[ ! -s "$TMP/err" ] || fail "cb_eval.txt warned: $(cat "$TMP/err")"
"$BIN" import llamacpp "$REFS/cb_eval.txt" -o "$TMP/a2.trace" --tokens 1,403,407,261,378 -q ||
    fail "second import"
if command -v sqlite3 >/dev/null; then
    q="SELECT step, seq, layer, kind, name, pos0, n_pos, params FROM ops ORDER BY id;
       SELECT t.hash, t.shape, t.n_known, hex(t.known) FROM tensors t ORDER BY id;
       SELECT key, value FROM run_params ORDER BY key; SELECT * FROM tokens ORDER BY idx;"
    [ "$(sqlite3 "$TMP/a.trace" "$q")" == "$(sqlite3 "$TMP/a2.trace" "$q")" ] ||
        fail "two imports of cb_eval.txt differ"
    [ "$(sqlite3 "$TMP/a.trace" "SELECT pos0 FROM steps WHERE step = 8")" == 12 ] ||
        fail "step 8 should start at position 12"
fi

MODEL=$SHARED/models/stories260k-f32.v3.gguf
if [ -f "$MODEL" ] && command -v sqlite3 >/dev/null; then
    "$BIN" import llamacpp "$REFS/cb_eval.txt" -o "$TMP/m.trace" -m "$MODEL" -p "Once upon a time" \
        -q 2>"$TMP/err" || fail "-m/-p: $(cat "$TMP/err")"
    [ "$(sqlite3 "$TMP/m.trace" "SELECT group_concat(token_id) FROM tokens")" == 1,403,407,261,378 ] ||
        fail "-p tokenized differently from llama.cpp"
    [ "$(sqlite3 "$TMP/m.trace" "SELECT arch || ' ' || n_layer FROM runs")" == "llama 5" ] ||
        fail "-m hyper-parameters missing"
fi

expect 0 "lltrace: warning: $REFS/eval-callback-real-truncated.txt: last record 'attn_out-4' is truncated at line 3513; imported 147 complete records" \
    "$BIN" import llamacpp "$REFS/eval-callback-real-truncated.txt" -o "$TMP/t.trace"

D=$REFS/llama-debug/llamacpp-stories260k-f32.v3
"$BIN" import llamacpp --logits "$D.bin" --tokens "$D-tokens.bin" --prompt-file "$D-prompt.txt" \
    -o "$TMP/logits.trace" >"$TMP/out" 2>"$TMP/err" || fail "logits: $(cat "$TMP/err")"
expect 1 "text, not raw float32 logits" \
    "$BIN" import llamacpp --logits "$D.txt" --tokens "$D-tokens.bin" -o "$TMP/l2.trace"
expect 1 "token ids differ" "$BIN" import llamacpp --logits "$D.bin" --tokens 1,2 \
    --prompt-file "$D-prompt.txt" -o "$TMP/l3.trace"

[ "$fails" -eq 0 ] || exit 1
exit 0
