/*
 * queries.c - the saved queries of `lltrace sql TRACE --query NAME [KEY=VALUE...]`: the
 * questions people ask a trace every day, as SQL over the schema's tables and views plus the
 * tensor SQL functions. Each one is documented here and printed by `--list-queries`; parameters
 * are SQL named parameters (:k) with defaults.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "query_int.h"
#include "vw.h"

/* clang-format off */
static const struct vw_query queries[] = {
    {"residual",
     "RMS of the residual stream per layer and step: after attention (blk.L.ffn_inp) and after "
     "the FFN (blk.L.l_out), the largest |value| of l_out, and l_out's growth over the previous "
     "layer",
     "SELECT run, step, layer, ffn_inp_rms, l_out_rms, l_out_maxabs,\n"
     "       l_out_rms / lag(l_out_rms) OVER (PARTITION BY run, step ORDER BY layer) AS growth\n"
     "FROM (SELECT o.run_id AS run, o.step, o.layer,\n"
     "             max(CASE WHEN o.name GLOB 'blk.*.ffn_inp' THEN t.rms END) AS ffn_inp_rms,\n"
     "             max(CASE WHEN o.name GLOB 'blk.*.l_out' THEN t.rms END) AS l_out_rms,\n"
     "             max(CASE WHEN o.name GLOB 'blk.*.l_out'\n"
     "                      THEN max(abs(t.min), abs(t.max)) END) AS l_out_maxabs\n"
     "      FROM ops o\n"
     "      JOIN op_tensors ot ON ot.op_id = o.id AND ot.role = 'out'\n"
     "      JOIN tensors t ON t.id = ot.tensor_id\n"
     "      WHERE (o.name GLOB 'blk.*.ffn_inp' OR o.name GLOB 'blk.*.l_out')\n"
     "        AND (:step < 0 OR o.step = :step)\n"
     "      GROUP BY o.run_id, o.step, o.layer)\n"
     "ORDER BY run, step, layer",
     {{"step", "-1", "only this step (-1: every step)"}}},
    {"top_tokens",
     "The k most likely next tokens at every step (t_topk over the logits of op 'output'), with "
     "the token's piece when it occurs in the run and whether it is the token sampled",
     "WITH top AS (\n"
     "  SELECT o.run_id, o.step, o.pos0 + o.n_pos - 1 AS pos, j.key AS k,\n"
     "         json_extract(j.value, '$[0]') % json_extract(t.shape, '$[#-1]') AS token_id,\n"
     "         json_extract(j.value, '$[1]') AS logit\n"
     "  FROM ops o\n"
     "  JOIN op_tensors ot ON ot.op_id = o.id AND ot.role = 'out'\n"
     "  JOIN tensors t ON t.id = ot.tensor_id,\n"
     "       json_each(t_topk(ot.tensor_id, :k)) j\n" /* none for a stats-only tensor */
     "  WHERE o.name = 'output' AND (:step < 0 OR o.step = :step))\n"
     "SELECT run_id AS run, step, pos, k + 1 AS rank, token_id,\n"
     "       (SELECT piece FROM tokens x WHERE x.run_id = top.run_id AND x.token_id = top.token_id\n"
     "        LIMIT 1) AS piece,\n"
     "       logit,\n"
     "       coalesce((SELECT x.token_id = top.token_id FROM tokens x\n"
     "                 WHERE x.run_id = top.run_id AND x.idx = top.pos + 1), 0) AS sampled\n"
     "FROM top ORDER BY run, step, rank",
     {{"k", "5", "how many tokens per step"}, {"step", "-1", "only this step (-1: every step)"}}},
    {"nonfinite",
     "Tensors holding NaN or Inf, in execution order: the first row is where they appear. The "
     "-Inf of the causal mask in attention scores (blk.L.kq output, kq_softmax input) is "
     "expected and not listed; a NaN there is",
     "SELECT run_id AS run, step, seq, layer, name, role, tensor_id, shape, n_nan, n_inf\n"
     "FROM v_nonfinite\n"
     "WHERE n_nan > 0 OR NOT ((name GLOB 'blk.*.kq' AND role = 'out')\n"
     "                        OR (name GLOB 'blk.*.kq_softmax' AND role = 'in0'))",
     {{NULL, NULL, NULL}}},
    {"largest",
     "The n op outputs with the largest |value| (from the recorded stats): where activations "
     "blow up",
     "SELECT run_id AS run, step, seq, layer, name, shape, min, max,\n"
     "       max(abs(min), abs(max)) AS maxabs, rms\n"
     "FROM v_op_tensors WHERE role = 'out' AND min IS NOT NULL\n"
     "ORDER BY maxabs DESC, run, step, seq LIMIT :n",
     {{"n", "10", "how many ops"}}},
    {"rope",
     "The RoPE table at one position: the cos and sin rows each rope op applied there (JSON "
     "arrays of n_rot/2 numbers), from the tables the engine recorded",
     "SELECT run_id AS run, step, layer, name, op_id, pos, cos, sin\n"
     "FROM v_rope WHERE pos = :pos AND (:layer < 0 OR layer = :layer)",
     {{"pos", "0", "absolute position"}, {"layer", "0", "only this layer (-1: every layer)"}}},
    {"tokens",
     "The token sequence: prompt and generated tokens with their sampling probability and logit",
     "SELECT run_id AS run, idx, token_id, piece, is_prompt AS prompt, is_bos AS bos, prob,\n"
     "       logit\n"
     "FROM v_tokens",
     {{NULL, NULL, NULL}}},
    {"time_by_kind",
     "Where the engine's time goes: time per op kind, its share and the mean per call",
     "SELECT kind, count(*) AS calls, round(sum(elapsed_ns) / 1e6, 3) AS total_ms,\n"
     "       round(100.0 * sum(elapsed_ns) / (SELECT sum(elapsed_ns) FROM ops), 1) AS pct,\n"
     "       round(avg(elapsed_ns) / 1e3, 2) AS mean_us\n"
     "FROM ops GROUP BY kind ORDER BY sum(elapsed_ns) DESC",
     {{NULL, NULL, NULL}}},
    {"steps",
     "Every decode step: first position, tokens processed, ops recorded and time",
     "SELECT s.run_id AS run, s.step, s.pos0, s.n_tokens,\n"
     "       (SELECT count(*) FROM ops o WHERE o.run_id = s.run_id AND o.step = s.step) AS ops,\n"
     "       round(s.elapsed_ns / 1e6, 3) AS ms\n"
     "FROM steps s ORDER BY run, step",
     {{NULL, NULL, NULL}}},
};
/* clang-format on */

static const int n_queries = (int)(sizeof queries / sizeof queries[0]);

const struct vw_query *vw_query_at(int i)
{
    return i >= 0 && i < n_queries ? &queries[i] : NULL;
}

const struct vw_query *vw_query_find(const char *name)
{
    for (int i = 0; name && i < n_queries; i++) {
        if (strcmp(queries[i].name, name) == 0) {
            return &queries[i];
        }
    }
    return NULL;
}

void vw_queries_list(FILE *f)
{
    for (int i = 0; i < n_queries; i++) {
        const struct vw_query *q = &queries[i];
        fprintf(f, "%s\n    %s\n", q->name, q->summary);
        for (int p = 0; p < VW_QUERY_MAX_PARAMS && q->params[p].name; p++) {
            fprintf(f, "    %s=%s  %s\n", q->params[p].name, q->params[p].def, q->params[p].help);
        }
        fputs("\n    ", f);
        for (const char *s = q->sql; *s; s++) {
            fputc(*s, f);
            if (*s == '\n') {
                fputs("    ", f);
            }
        }
        fputs("\n\n", f);
    }
}

/* The value given for `name` as KEY=VALUE, the query's default, or NULL. */
static const char *param_value(const char *name, const struct vw_query *q, int n_kv,
                               char *const *kv)
{
    size_t n = strlen(name);
    for (int i = n_kv - 1; i >= 0; i--) {
        if (strncmp(kv[i], name, n) == 0 && kv[i][n] == '=') {
            return kv[i] + n + 1;
        }
    }
    for (int p = 0; q && p < VW_QUERY_MAX_PARAMS && q->params[p].name; p++) {
        if (strcmp(q->params[p].name, name) == 0) {
            return q->params[p].def;
        }
    }
    return NULL;
}

static bool query_takes(const struct vw_query *q, const char *kv)
{
    const char *eq = strchr(kv, '=');
    for (int p = 0; eq && p < VW_QUERY_MAX_PARAMS && q->params[p].name; p++) {
        if (strlen(q->params[p].name) == (size_t)(eq - kv) &&
            strncmp(q->params[p].name, kv, (size_t)(eq - kv)) == 0) {
            return true;
        }
    }
    return false;
}

static void bind_value(sqlite3_stmt *st, int i, const char *v)
{
    long long n;
    double d;
    if (vw_parse_i64(v, INT64_MIN, INT64_MAX, &n) == 0) {
        sqlite3_bind_int64(st, i, n);
    } else if (vw_parse_f64(v, &d) == 0) {
        sqlite3_bind_double(st, i, d);
    } else {
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    }
}

int vw_query_bind(void *stmt, const struct vw_query *q, int n_kv, char *const *kv, char *err,
                  size_t errlen)
{
    sqlite3_stmt *st = stmt;
    for (int i = 0; i < n_kv; i++) {
        if (!strchr(kv[i], '=') || kv[i][0] == '=') {
            snprintf(err, errlen, "'%s': parameters are KEY=VALUE", kv[i]);
            return -1;
        }
        if (q && !query_takes(q, kv[i])) {
            snprintf(err, errlen, "query '%s' has no parameter '%.*s'", q->name,
                     (int)(strchr(kv[i], '=') - kv[i]), kv[i]);
            return -1;
        }
    }
    for (int i = 1; i <= sqlite3_bind_parameter_count(st); i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        const char *v = name && name[0] != '?' ? param_value(name + 1, q, n_kv, kv) : NULL;
        if (!v) {
            snprintf(err, errlen, "missing value for parameter '%s' (give it as %s=VALUE)",
                     name ? name : "?", name && name[0] != '?' ? name + 1 : "NAME");
            return -1;
        }
        bind_value(st, i, v);
    }
    return 0;
}
