#!/usr/bin/env bash
# lltrace tokenize / detokenize: output formats, llama.cpp's ids on the shared models, the
# round trip through a pipe, and the exit codes and messages of the error cases. Runs on
# ../shared models when present and on a `lltrace mkmodel --preset tiny` model when that command
# exists; skipped (77) when neither is available.
set -u

SHARED=${LLTRACE_SHARED:-../shared}
. "$(dirname "$0")/lib.bash"
lt_cli_init tokenize
ran=0

# expect_out DESCRIPTION EXPECTED COMMAND...: exit 0 and exactly EXPECTED on stdout
expect_out() {
    local what=$1 want=$2
    shift 2
    local got rc
    got=$("$@" 2>"$TMP/err")
    rc=$?
    [ "$rc" -eq 0 ] || fail "$what: exit $rc ($(cat "$TMP/err"))"
    [ "$got" == "$want" ] || fail "$what: got [$got], want [$want]"
}

# expect_err DESCRIPTION CODE STDERR-PREFIX COMMAND...: exit CODE, stderr starting with PREFIX
expect_err() {
    local what=$1 code=$2 prefix=$3
    shift 3
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    [ "$rc" -eq "$code" ] || fail "$what: exit $rc, want $code"
    case "$(cat "$TMP/err")" in
    "$prefix"*) ;;
    *) fail "$what: stderr [$(cat "$TMP/err")] does not start with [$prefix]" ;;
    esac
}

# Text -> ids -> text through a pipe must give the exact bytes back (no BOS, so the first
# token's space prefix is stripped again).
roundtrip() {
    local model=$1 file=$2
    "$BIN" tokenize -m "$model" --ids --no-bos -f "$file" >"$TMP/ids" || fail "roundtrip: tokenize"
    "$BIN" detokenize -m "$model" --raw <"$TMP/ids" >"$TMP/back" || fail "roundtrip: detokenize"
    cmp -s "$file" "$TMP/back" || fail "roundtrip on $model: $(od -c "$TMP/back" | head -3)"
}

printf 'Hello, world!\n  Two spaces, tabs\tand \xc3\xa9\xe6\x97\xa5\xf0\x9f\xa6\x99 bytes\x01.\n' \
    >"$TMP/text.txt"

L2="$SHARED/models/llama-2-tiny-random.gguf"
if [ -f "$L2" ]; then
    ran=1
    expect_out "ids" "[1, 15043, 3186]" "$BIN" tokenize -m "$L2" --ids "Hello world"
    expect_out "joined args" "[1, 15043, 3186]" "$BIN" tokenize -m "$L2" --ids Hello world
    expect_out "empty text" "[1]" "$BIN" tokenize -m "$L2" --ids ""
    expect_out "no bos" "[15043, 3186]" "$BIN" tokenize -m "$L2" --ids --no-bos "Hello world"
    expect_out "specials" "[1, 1, 29871, 4266, 29871, 2, 29871, 18897]" \
        "$BIN" tokenize -m "$L2" --ids "<s> special </s> tokens"
    expect_out "no parse special" "[1, 529, 29879, 29958]" \
        "$BIN" tokenize -m "$L2" --ids --no-parse-special "<s>"
    expect_out "stdin" "[1, 15043, 13, 11526]" \
        "$BIN" tokenize -m "$L2" --ids --stdin < <(printf 'Hello\nworld')
    printf 'Hello\nworld' >"$TMP/hw.txt"
    expect_out "file" "[1, 15043, 13, 11526]" "$BIN" tokenize -m "$L2" --ids -f "$TMP/hw.txt"
    expect_out "table" "$(printf "1\t'<s>'\n15043\t' Hello'\n13\t'\\\\n'\n3186\t' world'")" \
        "$BIN" tokenize -m "$L2" "Hello
 world"
    expect_out "byte pieces" "$(printf "1\t'<s>'\n29871\t' '\n243\t'\\\\xf0'\n162\t'\\\\x9f'")" \
        bash -c "'$BIN' tokenize -m '$L2' \"\$(printf '\\xf0\\x9f')\""
    expect_out "detokenize args" "Hello world" "$BIN" detokenize -m "$L2" 15043 3186
    expect_out "detokenize list" " Hello world" \
        bash -c "echo '[1, 15043, 3186]' | '$BIN' detokenize -m '$L2'"
    expect_out "keep special" "<s> Hello world</s>" \
        "$BIN" detokenize -m "$L2" --keep-special 1,15043,3186,2
    roundtrip "$L2" "$TMP/text.txt"

    expect_err "id out of range" 1 \
        "lltrace: id 40000 is out of range (the vocabulary has 32000 tokens)" \
        "$BIN" detokenize -m "$L2" 1 40000
    expect_err "negative id" 1 "lltrace: id -5 is out of range" "$BIN" detokenize -m "$L2" -- -5
    expect_err "not an id" 2 "lltrace detokenize: 'abc' is not a token id" \
        "$BIN" detokenize -m "$L2" 1 abc
    expect_err "not an id on stdin" 1 "lltrace: stdin: 'x1' is not a token id" \
        bash -c "echo '[1, x1]' | '$BIN' detokenize -m '$L2'"
    expect_err "no text" 2 "lltrace tokenize: give the text" "$BIN" tokenize -m "$L2"
    expect_err "two sources" 2 "lltrace tokenize: give the text" \
        "$BIN" tokenize -m "$L2" --stdin hello
    expect_err "missing file" 1 "lltrace: $TMP/none.txt:" \
        "$BIN" tokenize -m "$L2" -f "$TMP/none.txt"
fi

S="$SHARED/models/stories260k-f32.v3.gguf"
if [ -f "$S" ]; then
    ran=1
    expect_out "stories260k" "[1, 346, 306, 414, 263, 304, 341]" \
        "$BIN" tokenize -m "$S" --ids "Hello world"
    roundtrip "$S" "$TMP/text.txt"
fi

# The synthetic model of the mkmodel command, when it exists.
if "$BIN" mkmodel --help >/dev/null 2>&1; then
    if "$BIN" mkmodel --preset tiny -o "$TMP/tiny.gguf" >/dev/null 2>"$TMP/err"; then
        ran=1
        "$BIN" tokenize -m "$TMP/tiny.gguf" --ids "Hello world" >"$TMP/tiny.ids" ||
            fail "tokenize on the tiny model"
        grep -q '^\[[0-9]' "$TMP/tiny.ids" || fail "tiny model ids: $(cat "$TMP/tiny.ids")"
        roundtrip "$TMP/tiny.gguf" "$TMP/text.txt"
    else
        fail "mkmodel --preset tiny: $(cat "$TMP/err")"
    fi
else
    echo "note: 'lltrace mkmodel' is not available; the synthetic-model part is skipped" >&2
fi

[ "$ran" -eq 1 ] || {
    echo "skipped: no model: neither $SHARED/models nor 'lltrace mkmodel' is available" >&2
    exit 77
}

# Usage and help, which need no model.
expect_err "no model" 2 "lltrace tokenize: no model (-m MODEL.gguf)" "$BIN" tokenize hello
expect_err "bad option" 2 "" "$BIN" tokenize --bogus -m x hello
expect_err "detokenize no model" 2 "lltrace detokenize: no model" "$BIN" detokenize 1 2
expect_err "missing model" 1 "lltrace: $TMP/none.gguf:" "$BIN" tokenize -m "$TMP/none.gguf" hi
expect_out "help" "usage: lltrace tokenize -m MODEL.gguf [options] [TEXT...]" \
    bash -c "'$BIN' tokenize --help | head -1"
expect_out "help detokenize" "usage: lltrace detokenize -m MODEL.gguf [options] [ID...]" \
    bash -c "'$BIN' help detokenize | head -1"

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed" >&2
    exit 1
fi
echo "cli tokenize: all checks passed"
