#!/usr/bin/env bash
# lltrace info and lltrace mkmodel: --help, usage errors (exit 2), a generated tiny model
# described as text and JSON, one weight exported as .npy, and malformed files rejected with
# "lltrace: <file>: <reason>" (exit 1): missing, not GGUF, truncated, an unknown version, a
# hyper-parameter that contradicts the tensor shapes, a missing tensor.
set -u

. "$(dirname "$0")/lib.bash"
lt_cli_init info

# patch FILE OFFSET BYTES...: overwrite bytes in place (printf escapes)
patch() {
    printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# offset FILE TEXT: byte offset of the first occurrence of TEXT
offset() {
    grep -abo -- "$2" "$1" | head -1 | cut -d: -f1
}

# ---- --version: the version, the git commit and the build, for bug reports -------------------
expect 0 "" "$BIN" --version
hasre '^lltrace [0-9]+\.[0-9]+\.[0-9]+ \([^)]+\)$'
hasre '^built with .+, simd (avx2|scalar)$'

# ---- mkmodel ---------------------------------------------------------------------------------
"$BIN" mkmodel --help >"$TMP/out" 2>&1 || fail "mkmodel --help: exit $?"
has "--preset NAME"
has "tinyllama-1.1b"
expect 2 "missing -o FILE.gguf" "$BIN" mkmodel
expect 2 "unknown type 'q9_9'" "$BIN" mkmodel -o "$TMP/x.gguf" --type q9_9
expect 2 "bad seed '-1'" "$BIN" mkmodel -o "$TMP/x.gguf" --seed -1
expect 2 "unknown preset 'huge'" "$BIN" mkmodel -o "$TMP/x.gguf" --preset huge
expect 2 "cannot write weights of type Q8_K" "$BIN" mkmodel -o "$TMP/x.gguf" --type q8_k
expect 1 "cannot create" "$BIN" mkmodel -o /nonexistent/dir/x.gguf
M=$TMP/tiny.gguf
expect 0 "" "$BIN" mkmodel -o "$M"
has "wrote $M: preset tiny, F32"
expect 1 "lltrace: $M: already exists (use --force to overwrite)" "$BIN" mkmodel -o "$M"
expect 0 "" "$BIN" mkmodel -o "$M" --force --seed 9
"$BIN" mkmodel -o "$TMP/s.gguf" --preset stories --type q8_0 >/dev/null 2>&1 ||
    fail "mkmodel stories q8_0"

# ---- info ------------------------------------------------------------------------------------
"$BIN" info --help >"$TMP/out" 2>&1 || fail "info --help: exit $?"
has "--tensor NAME"
"$BIN" help info >/dev/null 2>&1 || fail "help info: exit $?"
expect 2 "missing MODEL.gguf" "$BIN" info
expect 2 "too many arguments" "$BIN" info "$M" "$M"
expect 2 "--tensor NAME and -o FILE.npy go together" "$BIN" info "$M" --tensor x
expect 2 "--json cannot be combined with --tensor" "$BIN" info "$M" --json --tensor x -o y
expect 2 "unknown option" "$BIN" info "$M" --bogus

expect 0 "" "$BIN" info "$M"
has "gguf          version 3, alignment 32"
has "architecture  llama"
has "n_head_kv    2"
has "n_ff         192"
has "tokens       512"
has "bos          1 <s>"
has "tokenizer.ggml.tokens"
has "[512 strings]"
has "tensors: 21"
has "blk.1.attn_k.weight"
has "32 x 64"

expect 0 "" "$BIN" info "$TMP/s.gguf"
hasre "blk\.4\.ffn_down\.weight +F32 +64 x 172"
hasre "blk\.4\.ffn_up\.weight +Q8_0 +172 x 64"

expect 0 "" "$BIN" info "$M" --json
has '"architecture": "llama"'
has '"n_layer": 2'
has '"shape": [32, 64]'
if command -v python3 >/dev/null; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["tensors"]) == 21' \
        "$TMP/out" || fail "info --json is not valid JSON"
fi

expect 0 "" "$BIN" info "$M" --tensor blk.0.attn_k.weight -o "$TMP/k.npy"
has "wrote $TMP/k.npy: 'blk.0.attn_k.weight' (F32) as float32, shape (32, 64)"
[ "$(stat -c %s "$TMP/k.npy")" -eq $((128 + 32 * 64 * 4)) ] || fail "k.npy has the wrong size"
head -c 128 "$TMP/k.npy" | grep -qaF "'shape': (32, 64)" || fail "k.npy header lacks the shape"
expect 0 "" "$BIN" info "$TMP/s.gguf" --tensor output_norm.weight -o "$TMP/n.npy"
has "shape (64,)"
expect 1 "lltrace: $M: no tensor named 'nope'" "$BIN" info "$M" --tensor nope -o "$TMP/x.npy"
expect 1 "lltrace: /nonexistent/x.npy: cannot create" \
    "$BIN" info "$M" --tensor output.weight -o /nonexistent/x.npy

# ---- malformed files -------------------------------------------------------------------------
expect 1 "lltrace: /nonexistent.gguf: cannot open: no such file or directory" \
    "$BIN" info /nonexistent.gguf
echo "hello" >"$TMP/text.txt"
expect 1 "lltrace: $TMP/text.txt: not " "$BIN" info "$TMP/text.txt" # not GGUF, not a trace
expect 1 "lltrace: $TMP: cannot read" "$BIN" info "$TMP"

head -c 5000 "$M" >"$TMP/cut.gguf"
expect 1 "lltrace: $TMP/cut.gguf: truncated in key/value 14 'tokenizer.ggml.tokens' (value)" \
    "$BIN" info "$TMP/cut.gguf"
head -c 20 "$M" >"$TMP/cut2.gguf"
expect 1 "lltrace: $TMP/cut2.gguf: truncated in header (n_kv)" "$BIN" info "$TMP/cut2.gguf"
size=$(stat -c %s "$M")
head -c $((size - 100)) "$M" >"$TMP/cut3.gguf"
expect 1 "lltrace: $TMP/cut3.gguf: tensor 'output.weight': data (offset" "$BIN" info "$TMP/cut3.gguf"

cp "$M" "$TMP/v7.gguf"
patch "$TMP/v7.gguf" 4 '\007'
expect 1 "lltrace: $TMP/v7.gguf: unsupported GGUF version 7 (1, 2 and 3 are supported)" \
    "$BIN" info "$TMP/v7.gguf"

cp "$M" "$TMP/ff.gguf" # llama.feed_forward_length 192 -> 128: the shapes contradict it
o=$(offset "$TMP/ff.gguf" "llama.feed_forward_length")
patch "$TMP/ff.gguf" $((o + 25 + 4)) '\200'
expect 1 "lltrace: $TMP/ff.gguf: tensor 'blk.0.ffn_gate.weight' has shape [64, 192] but n_embd 64 and n_ff 128 require [64, 128]" \
    "$BIN" info "$TMP/ff.gguf"

cp "$M" "$TMP/miss.gguf" # the tensor info of blk.1.ffn_up.weight renamed
o=$(offset "$TMP/miss.gguf" "blk.1.ffn_up.weight")
patch "$TMP/miss.gguf" $((o + 18)) 'X'
expect 1 "lltrace: $TMP/miss.gguf: missing required tensor 'blk.1.ffn_up.weight'" \
    "$BIN" info "$TMP/miss.gguf"

cp "$M" "$TMP/scores.gguf" # tokenizer.ggml.scores as an array of i32
o=$(offset "$TMP/scores.gguf" "tokenizer.ggml.scores")
patch "$TMP/scores.gguf" $((o + 21 + 4)) '\005'
expect 1 "lltrace: $TMP/scores.gguf: key 'tokenizer.ggml.scores' must be an array of f32, not an array of i32" \
    "$BIN" info "$TMP/scores.gguf"

if [ "$fails" -ne 0 ]; then
    echo "$fails failure(s)" >&2
    exit 1
fi
echo "cli_info: all passed"
