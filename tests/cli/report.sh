#!/usr/bin/env bash
# lltrace report from the command line: --help and `help report` (exit 0), usage errors (exit 2),
# a one-run and a two-run report (a trace against one recorded with --inject rope=neox: the
# divergence, the hint, the heatmap and explain are in the HTML, and no script), an existing
# output refused without --force, a report to stdout, and files that are not traces (exit 1,
# "lltrace: <file>: <reason>").
set -u

. "$(dirname "$0")/lib.bash"
lt_cli_init report

# holds FILE TEXT: the file contains the text
holds() {
    grep -qF -- "$2" "$1" || fail "$1 lacks [$2]"
}

"$BIN" mkmodel -o "$TMP/m.gguf" >/dev/null || { echo "cannot make a model" >&2; exit 1; }
run() {
    "$BIN" run -m "$TMP/m.gguf" -p "hello world" -n 3 --temp 0 -o "$TMP/$1.trace" "${@:2}" \
        >/dev/null 2>&1 || fail "run $*"
}
run a
run neox --inject rope=neox

expect 0 "" "$BIN" report --help
grep -qF "usage: lltrace report A.trace [B.trace] -o REPORT.html" "$TMP/out" || fail "--help"
expect 0 "" "$BIN" help report
expect 2 "missing A.trace" "$BIN" report
expect 2 "missing -o REPORT.html" "$BIN" report "$TMP/a.trace"
expect 2 "too many arguments" "$BIN" report "$TMP/a.trace" "$TMP/a.trace" "$TMP/a.trace" -o x
expect 2 "not a step number" "$BIN" report "$TMP/a.trace" -o "$TMP/x.html" --step -1
expect 2 "bad option" "$BIN" report "$TMP/a.trace" -o "$TMP/x.html" --frobnicate

expect 0 "" "$BIN" report "$TMP/a.trace" -o "$TMP/one.html"
holds "$TMP/one.html" "<!DOCTYPE html>"
holds "$TMP/one.html" "Run A: RMS of the residual stream"
holds "$TMP/one.html" "Op time by kind"
holds "$TMP/one.html" "Direct logit attribution"
holds "$TMP/one.html" "</html>"

expect 0 "" "$BIN" report "$TMP/a.trace" "$TMP/neox.trace" -o "$TMP/two.html"
holds "$TMP/two.html" "A and B diverge. First divergence: step 0, layer 0, op <code>blk.0.rope_q</code>"
holds "$TMP/two.html" '<span class="badge">rope-pairing</span>'
holds "$TMP/two.html" '<tr class="diff"><td>rope_mode</td>'
holds "$TMP/two.html" 'aria-label="error per layer and op"'
holds "$TMP/two.html" "B&minus;A"
grep -qi "<script" "$TMP/two.html" && fail "two.html holds a script"
grep -qiE "(src|href)=\"(https?:)?//" "$TMP/two.html" && fail "two.html loads a resource"

expect 1 "two.html: file exists (use --force to overwrite)" \
    "$BIN" report "$TMP/a.trace" -o "$TMP/two.html"
expect 0 "" "$BIN" report "$TMP/a.trace" "$TMP/neox.trace" -o "$TMP/two.html" --force
expect 0 "" "$BIN" report "$TMP/a.trace" -o -
grep -qF "</html>" "$TMP/out" || fail "report to stdout"

printf 'not a trace' >"$TMP/bad.trace"
expect 1 "lltrace: $TMP/bad.trace: " "$BIN" report "$TMP/bad.trace" -o "$TMP/bad.html"
[ -e "$TMP/bad.html" ] && fail "bad.html written for a bad trace"
expect 1 "lltrace: $TMP/bad.trace: " "$BIN" report "$TMP/a.trace" "$TMP/bad.trace" -o "$TMP/b.html"
expect 1 "lltrace: $TMP/none.trace: " "$BIN" report "$TMP/none.trace" -o "$TMP/n.html"

[ "$fails" -eq 0 ] || { echo "$fails failure(s)" >&2; exit 1; }
echo "ok"
