#!/usr/bin/env bash
# examples/drew-hunt/run.sh, the main job of the README's first set-up command, end to end: on
# stories260K when ../shared holds it, and on the generated model of its shape that a fresh
# clone without ../shared uses. Each time the script must exit 0 and its steps must say what the
# README says they do: the two runs recorded, the first divergence at blk.0.rope_q with the
# RoPE-pairing hint and the replay that confirms it, and the explanation of the wrong token.
set -u

. "$(dirname "$0")/lib.bash"
lt_cli_init drewhunt
src=${LLTRACE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}

hunt() { # hunt LABEL SHARED_DIR
  LLTRACE="$BIN" LLTRACE_SHARED="$2" sh "$src/examples/drew-hunt/run.sh" "$TMP/$1" \
    >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  [ "$rc" -eq 0 ] || fail "$1: run.sh exited $rc: $(tail -c 600 "$TMP/err")"
  if [ ! -s "$TMP/$1/good.trace" ] || [ ! -s "$TMP/$1/bad.trace" ]; then fail "$1: traces missing"; fi
  has "first divergence: step 0, layer 0, blk.0.rope_q (rope), position 1"
  has "local: its inputs agree, its output does not"
  has "hint [rope-pairing] RoPE pairing (norm = adjacent pairs, neox = half-split)"
  has "with rope=norm reproduces A's output (bit for bit)"
  has "== 4. where does the wrong token get its logit?"
  has "logit lens of "
  has "faults: rope=neox"
}

hunt synthetic "$TMP/no-shared"
has "no stories260K in $TMP/no-shared: generating a model of its shape"
if [ -f "${LLTRACE_SHARED:-}/models/stories260k-f32.v3.gguf" ]; then
  hunt stories "$LLTRACE_SHARED"
  has " named Bobo was playing in the sky. He saw"
else
  echo "skipped the stories260K hunt: no ${LLTRACE_SHARED:-../shared}/models/stories260k-f32.v3.gguf"
fi
lt_cli_finish
