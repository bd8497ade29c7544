#!/usr/bin/env bash
# lltrace info/sql/ops/show/export on real traces recorded by the engine (a tiny synthetic model,
# "hello", 4 tokens; and the same with --inject rope=neox): the numbers must agree with each
# other (greedy: the top-1 token of every step is the token sampled; the first op that differs
# between the two traces is blk.0.rope_q), exports must be readable (npy header, JSON), and bad
# input gives "lltrace: <file>: <reason>" with exit 1, bad usage exit 2.
set -u

. "$(dirname "$0")/lib.bash"
lt_cli_init query

# sql1 TRACE QUERY: the single value a query returns (CSV, header dropped)
sql1() {
    "$BIN" sql "$1" --csv "$2" 2>&1 | sed -n 2p | tr -d '\r'
}

cd "$TMP" || exit 1
if ! "$BIN" mkmodel --preset tiny -o m.gguf >/dev/null 2>&1; then
    echo "skipped: lltrace mkmodel is not available" >&2
    exit 77
fi
expect 0 "" "$BIN" run -m m.gguf -p hello -n 4 -o t.trace
expect 0 "" "$BIN" run -m m.gguf -p hello -n 4 -o neox.trace --inject rope=neox

# ---- info ----------------------------------------------------------------------------------
expect 0 "" "$BIN" info t.trace
has "status    complete"
has "steps     4 (0..3)"
has 'prompt    "hello"'
has "recording rules"
expect 0 "" "$BIN" info t.trace --json
n_ops=$(sql1 t.trace "SELECT count(*) FROM ops")
grep -q "\"n_ops\": $n_ops," "$TMP/out" || fail "info --json: n_ops is not $n_ops"
if command -v python3 >/dev/null; then
    python3 -m json.tool "$TMP/out" >/dev/null || fail "info --json is not valid JSON"
fi

# ---- the same bytes under two shapes are stored once (schema 4: tensors.data_of) -------------
# rope's in0 is attn_q/k's out viewed as heads: its row names that row, and reads back verified
n_shared=$(sql1 t.trace "SELECT count(*) FROM tensors WHERE data_of IS NOT NULL")
[ "${n_shared:-0}" -gt 0 ] || fail "no tensor row shares another's data: [$n_shared]"
expect 0 "" "$BIN" info t.trace
has "more that share another's data under their own shape)"
expect 0 "" "$BIN" show t.trace blk.0.rope_q --step 1
hasre '^in0  f32 \[1,[0-9]+,[0-9]+\]  tensor [0-9]+  raw [0-9.]+ [KM]?i?B  stored in tensor [0-9]+  '
[ "$(sql1 t.trace "SELECT t_at(ot.tensor_id, 21) = t_at(q.tensor_id, 21) AND \
      t_shape(ot.tensor_id) != t_shape(q.tensor_id) FROM ops o \
      JOIN op_tensors ot ON ot.op_id = o.id AND ot.role = 'in0' \
      JOIN op_tensors q ON q.op_id = (SELECT id FROM ops WHERE name = 'blk.0.attn_q' AND step = 1) \
      AND q.role = 'out' WHERE o.name = 'blk.0.rope_q' AND o.step = 1")" = 1 ] ||
    fail "rope_q's in0 does not read as attn_q's out"
if command -v python3 >/dev/null && [ -n "${LLTRACE_SRC:-}" ]; then
    python3 "$LLTRACE_SRC/examples/python-reader/read_trace.py" t.trace --check >"$TMP/out" 2>&1 ||
        fail "read_trace.py --check: $(cat "$TMP/out")"
fi

# ---- ops -----------------------------------------------------------------------------------
expect 0 "" "$BIN" ops t.trace
[ "$(wc -l <"$TMP/out")" -eq $((n_ops + 2)) ] || fail "ops: want $n_ops lines + header + rule"
expect 0 "" "$BIN" ops t.trace --step 1 --layer 0 --csv
names=$(cut -d, -f4 "$TMP/out" | tail -n +2 | tr -d '\r' | sed 's/^blk\.0\.//' | tr '\n' ' ')
want="attn_norm attn_q attn_k attn_v rope_q rope_k cache_k cache_v kq kq_softmax kqv attn_out \
ffn_inp ffn_norm ffn_gate ffn_up ffn_act ffn_out l_out "
[ "$names" = "$want" ] || fail "ops --layer 0 order: [$names]"
expect 0 "" "$BIN" ops t.trace --kind rope --json
[ "$(grep -c '"name":"blk\.[0-9]*\.rope_[qk]"' "$TMP/out")" -eq 16 ] ||
    fail "ops --kind rope: want 16 rope ops (2 layers x q,k x 4 steps)"
expect 2 "missing TRACE" "$BIN" ops
expect 2 "--step" "$BIN" ops t.trace --step x
# a run, step or layer the trace does not hold is an error, not an empty list
expect 1 "lltrace: t.trace: step 4 out of range: the trace has steps 0..3" "$BIN" ops t.trace --step 4
expect 1 "lltrace: t.trace: layer 2 out of range: the model has 2 layers (0..1)" \
    "$BIN" ops t.trace --layer 2
expect 1 "lltrace: t.trace: no run 2 (the trace holds run 1)" "$BIN" ops t.trace --run 2
expect 1 "lltrace: t.trace: step 9 out of range: the trace has steps 0..3" \
    "$BIN" export t.trace --all dump9 --step 9
[ -e dump9 ] && fail "export --all --step 9 made its directory"
expect 0 "" "$BIN" ops t.trace --name 'blk.9.*'
[ "$(wc -l <"$TMP/out")" -eq 2 ] || fail "ops --name matching nothing: want the header alone"

# ---- show ----------------------------------------------------------------------------------
expect 0 "" "$BIN" show t.trace blk.0.rope_q
has "op 6  blk.0.rope_q  (rope)"
has '"mode":"norm"'
has "rope table"
has "  pos 0     cos [1, 1, 1, 1, 1, 1, 1, 1]"
has "histogram:"
expect 0 "" "$BIN" show t.trace blk.1.rope_k --step 2 --pos 5 --head 1 --role out
has "selected: min"
expect 0 "" "$BIN" show t.trace blk.0.kq --step 0 --head 3 --role out
has "out  f32 [4,4,4]"
has "-inf"
expect 1 "lltrace: t.trace: --head 4: the model has 4 heads (0..3)" "$BIN" show t.trace blk.0.kq --head 4
[ -s "$TMP/out" ] && fail "show --head 4 printed the op before refusing the head"
expect 0 "" "$BIN" show t.trace blk.0.attn_q --role in0 --full
has "weight blk.0.attn_q.weight"
expect 1 "lltrace: t.trace: no op 'blk.9.attn_q' at step 0 (the trace has 2 layers)" \
    "$BIN" show t.trace blk.9.attn_q
expect 1 "(the trace has steps 0..3)" "$BIN" show t.trace output --step 4
expect 1 "covers positions 0..3, not 7" "$BIN" show t.trace blk.0.rope_q --pos 7
expect 2 "missing TRACE or OP" "$BIN" show t.trace

# ---- sql -----------------------------------------------------------------------------------
[ "$(sql1 t.trace "SELECT count(*) FROM steps")" = 4 ] || fail "sql: want 4 steps"
expect 0 "" "$BIN" sql t.trace --csv --query top_tokens k=1
[ "$(tail -n +2 "$TMP/out" | tr -d '\r' | awk -F, '$NF != 1' | wc -l)" -eq 0 ] ||
    fail "greedy: the top-1 token of every step must be the sampled one: $(cat "$TMP/out")"
[ "$(tail -n +2 "$TMP/out" | wc -l)" -eq 4 ] || fail "top_tokens k=1: want 4 rows"
for q in $("$BIN" sql --list-queries | grep -E '^[a-z_]+$'); do
    expect 0 "" "$BIN" sql t.trace --query "$q"
done
expect 0 "" "$BIN" sql t.trace --json "SELECT name, t_shape(tensor_id) AS shape FROM v_op_stats \
WHERE step = 0 AND name = 'output'"
has '[
{"name":"output","shape":"[1,512]"}
]'
echo "SELECT count(*) AS n FROM steps; SELECT 2 AS two;" | "$BIN" sql t.trace >"$TMP/out" 2>&1 ||
    fail "sql from stdin"
has "two"
expect 1 "lltrace: t.trace: attempt to write a readonly database" \
    "$BIN" sql t.trace "UPDATE runs SET prompt = 'x'"
expect 1 "syntax error" "$BIN" sql t.trace "SELEKT 1"
[ "$(sql1 t.trace "SELECT prompt FROM runs")" = hello ] || fail "the trace was modified"
expect 0 "" "$BIN" sql --help-functions
has "t_nmse(A, B)"
# the first op where the rope=neox build differs from the reference is the rope itself
first=$("$BIN" sql neox.trace --csv --attach ref=t.trace "SELECT a.name FROM v_op_stats a
    JOIN ref.v_op_stats b USING (step, name)
    WHERE NOT t_equal(a.tensor_id, 'ref.' || b.tensor_id) ORDER BY a.step, a.seq LIMIT 1" |
    sed -n 2p | tr -d '\r')
[ "$first" = blk.0.rope_q ] || fail "first divergence: [$first], want blk.0.rope_q"
expect 0 "" "$BIN" sql neox.trace --attach ref=t.trace --csv "SELECT t_nmse(a.tensor_id,
    'ref.' || b.tensor_id) > 0 AS d FROM v_op_stats a JOIN ref.v_op_stats b USING (step, name)
    WHERE a.name = 'output' AND a.step = 0"
has "1"
expect 1 "lltrace: missing.trace: cannot open" "$BIN" sql t.trace --attach ref=missing.trace "SELECT 1"

# ---- export --------------------------------------------------------------------------------
expect 0 "" "$BIN" export t.trace blk.0.attn_q --step 1 -o q.npy
[ "$(head -c 6 q.npy | tail -c 5)" = NUMPY ] || fail "q.npy: no npy magic"
grep -aq "'shape': (1, 64)" q.npy || fail "q.npy: want shape (1, 64)"
if python3 -c "import numpy" 2>/dev/null; then
    python3 -c "import numpy; a = numpy.load('q.npy'); assert a.shape == (1, 64), a.shape" ||
        fail "numpy cannot load q.npy"
fi
expect 0 "" "$BIN" export t.trace --all dump
[ -s "$TMP/err" ] && fail "export --all: progress bar drawn into a pipe: $(cat "$TMP/err")"
n_refs=$(sql1 t.trace "SELECT count(*) FROM op_tensors")
[ "$(wc -l <dump/index.tsv)" -eq $((n_refs + 1)) ] || fail "index.tsv: want $n_refs rows"
[ "$(find dump -name '*.npy' | wc -l)" -eq "$n_refs" ] || fail "export --all: want $n_refs files"
expect 0 "" "$BIN" export t.trace --chrome-trace tl.json
n_steps=4
[ "$(grep -o '"ph":"X"' tl.json | wc -l)" -eq $((n_ops + n_steps)) ] ||
    fail "chrome trace: want one X event per op and step"
if command -v python3 >/dev/null; then
    python3 -c "import json; d = json.load(open('tl.json')); assert d['traceEvents']" ||
        fail "tl.json is not valid JSON"
fi
expect 1 "no tensor with role 'cos'" "$BIN" export t.trace blk.0.attn_q --role cos -o x.npy
expect 2 "give exactly one of" "$BIN" export t.trace blk.0.attn_q

# ---- bad files -----------------------------------------------------------------------------
echo "not a trace" >x.trace
expect 1 "lltrace: x.trace: not an lltrace trace" "$BIN" sql x.trace "SELECT 1"
expect 1 "x.trace" "$BIN" info x.trace
expect 1 "missing.trace" "$BIN" ops missing.trace
for c in sql ops show export; do
    expect 0 "" "$BIN" "$c" --help
    has "examples:"
    expect 0 "" "$BIN" help "$c"
done

[ "$fails" -eq 0 ] || exit 1
echo "ok"
