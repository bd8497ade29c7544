#!/usr/bin/env bash
# lltrace run and lltrace bench from the command line: a generation on a generated model (text
# on stdout, timing on stderr, exit 0), --ids, a recorded trace, and each bad input with its
# message: a prompt longer than the context, a missing model, a file that is not a model, a
# chat template that cannot be rendered, an unknown template name, an unknown fault, an
# existing trace without --force, and usage errors (exit 2).
set -u

. "$(dirname "$0")/lib.bash"
lt_cli_init run

"$BIN" mkmodel -o "$TMP/m.gguf" >/dev/null || { echo "cannot make a model" >&2; exit 1; }

expect 0 "" "$BIN" run --help
has "--inject FAULT"
expect 0 "generation:" "$BIN" run -m "$TMP/m.gguf" -p "hello world" -n 8
[ -s "$TMP/out" ] || fail "run printed no text"
expect 0 "" "$BIN" run -m "$TMP/m.gguf" -p "hello world" -n 4 --ids
hasre '^[0-9]+ [0-9]+ [0-9]+ [0-9]+ $'
expect 0 "" "$BIN" run -m "$TMP/m.gguf" -p "hello" -n 4 -o "$TMP/t.trace"
[ -s "$TMP/t.trace" ] || fail "no trace written"
expect 1 "t.trace" "$BIN" run -m "$TMP/m.gguf" -p "hello" -n 4 -o "$TMP/t.trace"
expect 0 "" "$BIN" run -m "$TMP/m.gguf" -p "hello" -n 4 -o "$TMP/t.trace" --force
mkdir -p "$TMP/dir.trace"
expect 1 "dir.trace: is a directory; refusing to overwrite it" \
    "$BIN" run -m "$TMP/m.gguf" -p "hello" -n 4 -o "$TMP/dir.trace"

# Page size: 8 KiB when no op is recorded in full (no tensor data), 32 KiB when some ops are
# recorded in full and others at level stats, else 64 KiB.
page_size() {
  "$BIN" run -m "$TMP/m.gguf" -p "hello" -n 2 -o "$TMP/p.trace" --force "$@" >/dev/null 2>&1 ||
    fail "run $* failed"
  "$BIN" sql "$TMP/p.trace" --csv "PRAGMA page_size" | tail -n 1 | tr -d '\r'
}
[ "$(page_size)" = 65536 ] || fail "default rules: page size $(page_size), want 65536"
[ "$(page_size --record stats)" = 8192 ] || fail "--record stats: page size is not 8192"
[ "$(page_size --record stats --record none:blk.1.*)" = 8192 ] ||
  fail "--record stats --record none:...: page size is not 8192"
[ "$(page_size --record stats --record full:blk.0.*)" = 32768 ] ||
  fail "--record stats --record full:...: page size is not 32768"
[ "$(page_size --record none:step\>0)" = 65536 ] ||
  fail "--record none:step>0 (the rest in full): page size is not 65536"
[ "$(page_size --record stats:blk.0.*)" = 32768 ] ||
  fail "--record stats:blk.0.* (the rest in full): page size is not 32768"

long=$(printf 'a b c d e f g h %.0s' $(seq 1 60))
expect 1 "the context holds 256" "$BIN" run -m "$TMP/m.gguf" -p "$long" -n 4
expect 1 "/nonexistent/m.gguf" "$BIN" run -m /nonexistent/m.gguf -p hi
printf 'not a model' >"$TMP/junk.gguf"
expect 1 "junk.gguf" "$BIN" run -m "$TMP/junk.gguf" -p hi
expect 1 "chat template is missing" "$BIN" run -m "$TMP/m.gguf" -p hi --chat
expect 1 "unknown chat template 'nope'" "$BIN" run -m "$TMP/m.gguf" -p hi --chat-template nope
expect 0 "" "$BIN" run -m "$TMP/m.gguf" -p hi -n 2 --chat-template chatml --verbose-prompt
grep -qF "<|im_start|>user" "$TMP/err" || fail "--verbose-prompt does not show the rendered prompt"

expect 2 "unknown fault 'rope=sideways'" "$BIN" run -m "$TMP/m.gguf" -p hi --inject rope=sideways
expect 2 "a model is required" "$BIN" run -p hi
expect 2 "a prompt is required" "$BIN" run -m "$TMP/m.gguf"
expect 2 "-n takes a count" "$BIN" run -m "$TMP/m.gguf" -p hi -n many
expect 2 "--kv-type takes f32 or f16" "$BIN" run -m "$TMP/m.gguf" -p hi --kv-type q8_0

expect 0 "" "$BIN" bench -m "$TMP/m.gguf" -p 8 -n 4 -r 1
has "pp8"
has "tg4"
expect 2 "a model is required" "$BIN" bench
expect 1 "/nonexistent/m.gguf" "$BIN" bench -m /nonexistent/m.gguf
expect 2 "-r takes a number from 1 to 64, not '65'" "$BIN" bench -m "$TMP/m.gguf" -r 65
expect 2 "-p takes a number from 1 to 1048576, not '0'" "$BIN" bench -m "$TMP/m.gguf" -p 0

lt_cli_finish
