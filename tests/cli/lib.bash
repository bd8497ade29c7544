# Helpers sourced by the CLI tests in tests/cli/*.sh (this file is not a test itself).
# lt_cli_init NAME sets BIN (the lltrace binary) and TMP (a scratch directory removed at exit);
# fail records a failure; expect checks an exit code and a stderr substring; has and hasre
# check the last command's stdout; lt_cli_finish exits 1 when anything failed.

lt_cli_init() {
    BIN=${LLTRACE_BIN:-lltrace}
    TMP=$(mktemp -d "${LLTRACE_TMP:-/tmp}/cli_$1.XXXXXX" 2>/dev/null || mktemp -d)
    trap 'rm -rf "$TMP"' EXIT
    fails=0
}

fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}

# expect CODE STDERR-SUBSTRING COMMAND...: exit CODE and stderr containing the text
expect() {
    local code=$1 text=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    [ "$rc" -eq "$code" ] || fail "$*: exit $rc, want $code ($(head -c 400 "$TMP/err"))"
    if [ -n "$text" ]; then
        grep -qF -- "$text" "$TMP/err" || fail "$*: stderr [$(cat "$TMP/err")] lacks [$text]"
    fi
}

# has TEXT: the last command's stdout contains TEXT
has() {
    grep -qF -- "$1" "$TMP/out" || fail "stdout lacks [$1]: $(head -c 600 "$TMP/out")"
}

# hasre REGEX: the last command's stdout matches the extended regular expression
hasre() {
    grep -qE -- "$1" "$TMP/out" || fail "stdout does not match [$1]"
}

# lt_cli_finish: a summary line and the exit code
lt_cli_finish() {
    if [ "$fails" -ne 0 ]; then
        echo "$fails failure(s)" >&2
        exit 1
    fi
    echo "all checks passed"
    exit 0
}
