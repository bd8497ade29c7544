/*
 * cmd_report.c - `lltrace report A.trace [B.trace] -o report.html`: one self-contained HTML file
 * about a run, or about two runs and where they part, for people who have never used lltrace
 * (a bug report attachment).
 *
 * This file parses the command line and collects what the report shows (report_int.h): the
 * runs' settings, tokens, steps, residual RMS per stage, op times, NaN/Inf ops; with B the diff
 * engine's results (align_int.h, hints_int.h); and, when the model file is available and
 * matches the traces' sha256, the logit lens and direct logit attribution of one step
 * (attrib_int.h). report_html.c renders it. Numbers come from the traces only; nothing is
 * re-run.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmds.h"
#include "report_int.h"
#include "shacache.h"
#include "vw.h"

static const char usage_text[] =
    "usage: lltrace report A.trace [B.trace] -o REPORT.html [-m MODEL] [--step S] [--token T]\n"
    "                      [--force]\n"
    "\n"
    "Writes one self-contained HTML file (inline CSS and SVG, no script, no network) that\n"
    "describes a run, or two runs A (the reference) and B, for someone who has never used\n"
    "lltrace: attach it to a bug report.\n"
    "\n"
    "It shows the model (path, sha256), the settings, the build, the prompt and the generated\n"
    "tokens of each run; the RMS of the residual stream after each layer's attention and FFN\n"
    "at every step (a line chart), the time spent per op kind (a bar chart) and the ops whose\n"
    "tensors hold NaN or Inf. With B: the settings that differ, the first divergence (as\n"
    "'lltrace diff A B': step, layer, op, position, worst element, local or propagated), the\n"
    "hints, the error per layer x op (log10 NMSE) and a per-step summary. When the model file\n"
    "is available (-m, else the path the trace records; its sha256 must match the trace's), the\n"
    "logit lens and the direct logit attribution of one step (as 'lltrace explain'), for both\n"
    "runs and their difference.\n"
    "\n"
    "options:\n"
    "  -o FILE        the HTML file to write ('-' for stdout); required\n"
    "  -m MODEL       the model file for the explain section (default: the path A records)\n"
    "  --step S       the explained step (default: the first step after which A and B sampled\n"
    "                 different tokens, else 0)\n"
    "  --token T      the explained token, a piece or an id (default: the token B sampled\n"
    "                 after the step, or A's with one trace)\n"
    "  --force        overwrite FILE if it exists\n"
    "  -h, --help     show this help\n"
    "\n"
    "Text taken from the traces (prompts, token pieces, paths) is HTML-escaped: traces are\n"
    "untrusted input.\n"
    "\n"
    "exit codes: 0 written, 1 failure (unreadable trace, model mismatch with -m, cannot write),\n"
    "2 usage\n";

struct rep_args {
    struct vw_report_opts o;
    const char *out;
    bool force;
};

/* ---- arguments --------------------------------------------------------------------------------
 */

/* Returns 0, 2 (usage error) or -1 (--help printed). */
static int parse_args(int argc, char **argv, struct rep_args *a)
{
    static const struct option longs[] = {{"step", required_argument, NULL, 's'},
                                          {"token", required_argument, NULL, 't'},
                                          {"force", no_argument, NULL, 'f'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    long long v;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:m:h", longs, NULL)) != -1) {
        if (c == 'o' || c == 'm' || c == 't') {
            *(c == 'o' ? &a->out : c == 'm' ? &a->o.model : &a->o.token) = optarg;
        } else if (c == 's') {
            if (vw_parse_i64(optarg, 0, INT32_MAX, &v) < 0) {
                return vw_usage_error("report", "--step: '%s' is not a step number", optarg);
            }
            a->o.step = v;
        } else if (c == 'f') {
            a->force = true;
        } else if (c == 'h') {
            fputs(usage_text, stdout);
            return -1;
        } else {
            return vw_usage_error("report", "bad option");
        }
    }
    if (argc - optind < 1 || argc - optind > 2) {
        return vw_usage_error("report", argc - optind < 1 ? "missing A.trace"
                                                          : "too many arguments (at most A and B)");
    }
    if (!a->out) {
        return vw_usage_error("report", "missing -o REPORT.html");
    }
    a->o.a = argv[optind];
    a->o.b = argc - optind == 2 ? argv[optind + 1] : NULL;
    return 0;
}

/* ---- settings ---------------------------------------------------------------------------------
 */

/* An import knows few settings: unknown on either side is no difference. */
static bool known(const char *s)
{
    return strcmp(s, "(none)") != 0 && strcmp(s, "nan") != 0 && strcmp(s, "-1") != 0;
}

static void set_add(struct vw_report *r, const char *key, const char *a, const char *b,
                    bool none_known)
{
    if (r->n_set >= VW_REP_MAX_SETTINGS) {
        return;
    }
    struct vw_rep_setting *s = &r->set[r->n_set++];
    snprintf(s->key, sizeof s->key, "%s", key);
    snprintf(s->a, sizeof s->a, "%s", a);
    snprintf(s->b, sizeof s->b, "%s", b);
    s->differs =
        r->n_runs == 2 && strcmp(a, b) != 0 &&
        ((known(a) && known(b)) || (none_known && !strcmp(r->run[0].t->run.source, "lltrace") &&
                                    !strcmp(r->run[1].t->run.source, "lltrace")));
}

static const char *s_or_none(const char *s)
{
    return s && *s ? s : "(none)";
}

#define REP_STR(f, nk) set_add(r, #f, s_or_none(ra->f), s_or_none(rb->f), nk)
#define REP_NUM(f, fmt, cast)                                                                      \
    do {                                                                                           \
        snprintf(x, sizeof x, fmt, (cast)ra->f);                                                   \
        snprintf(y, sizeof y, fmt, (cast)rb->f);                                                   \
        set_add(r, #f, x, y, false);                                                               \
    } while (0)

/* The run settings of A (and B), as `lltrace diff` lists them. Faults recorded by our engine
 * on one side only count as a difference ((none) is a value there, not an unknown). */
static void collect_settings(struct vw_report *r)
{
    const struct trc_run_info *ra = &r->run[0].t->run;
    const struct trc_run_info *rb = &r->run[r->n_runs - 1].t->run;
    char x[64], y[64];
    REP_STR(model_sha256, false);
    REP_STR(model_path, false);
    REP_STR(source, false);
    REP_STR(arch, false);
    REP_NUM(n_layer, "%lld", long long);
    REP_NUM(n_embd, "%lld", long long);
    REP_NUM(n_head, "%lld", long long);
    REP_NUM(n_head_kv, "%lld", long long);
    REP_NUM(head_dim, "%lld", long long);
    REP_NUM(n_rot, "%lld", long long);
    REP_NUM(n_ff, "%lld", long long);
    REP_NUM(n_vocab, "%lld", long long);
    REP_NUM(n_ctx, "%lld", long long);
    REP_NUM(rope_theta, "%.9g", double);
    REP_NUM(rope_freq_scale, "%.9g", double);
    REP_STR(rope_mode, false);
    REP_NUM(rms_eps, "%.9g", double);
    REP_STR(weight_type, false);
    REP_STR(kv_type, false);
    REP_STR(faults, true);
    REP_STR(chat_template, false);
    REP_NUM(temp, "%g", double);
    REP_NUM(top_k, "%lld", long long);
    REP_NUM(top_p, "%g", double);
    REP_NUM(seed, "%lld", long long);
    REP_NUM(n_threads, "%lld", long long);
    REP_STR(build_version, false);
    REP_STR(build_commit, false);
    REP_STR(build_compiler, false);
    REP_STR(build_flags, false);
    REP_STR(simd, false);
    REP_STR(status, false);
}

/* First index where the token sequences differ, or -1 when identical (or one side has none). */
static int64_t tokens_differ(const struct vw_trace *a, const struct vw_trace *b)
{
    const int64_t n = a->n_tok < b->n_tok ? a->n_tok : b->n_tok;
    if (n == 0) {
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        if (a->tok_ids[i] != b->tok_ids[i]) {
            return i;
        }
    }
    return a->n_tok == b->n_tok ? -1 : n;
}

/* ---- per-run facts ----------------------------------------------------------------------------
 */

static int sql_fail(const struct vw_trace *t, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s", t->path, sqlite3_errmsg(trc_reader_sql_handle(t->r)));
    return -1;
}

/* Probability and logit of each sampled token (NaN for prompt tokens). */
static int collect_token_probs(struct vw_rep_run *run, char *err, size_t errlen)
{
    const struct vw_trace *t = run->t;
    sqlite3_stmt *st = NULL;
    const int64_t n = t->n_tok > 0 ? t->n_tok : 1;
    run->tok_prob = malloc((size_t)n * sizeof(double));
    run->tok_logit = malloc((size_t)n * sizeof(double));
    if (!run->tok_prob || !run->tok_logit) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        run->tok_prob[i] = run->tok_logit[i] = (double)NAN;
    }
    if (sqlite3_prepare_v2(trc_reader_sql_handle(t->r),
                           "SELECT prob, logit FROM tokens WHERE run_id = ?1 ORDER BY idx", -1, &st,
                           NULL) != SQLITE_OK) {
        return sql_fail(t, err, errlen);
    }
    sqlite3_bind_int64(st, 1, t->run.id);
    for (int64_t i = 0; i < t->n_tok && sqlite3_step(st) == SQLITE_ROW; i++) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
            run->tok_prob[i] = sqlite3_column_double(st, 0);
        }
        if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
            run->tok_logit[i] = sqlite3_column_double(st, 1);
        }
    }
    sqlite3_finalize(st);
    return 0;
}

static int collect_steps(struct vw_rep_run *run, char *err, size_t errlen)
{
    const struct vw_trace *t = run->t;
    trc_cursor *c = NULL;
    struct trc_step_info si;
    int64_t cap = 0;
    int rc = trc_reader_steps(t->r, t->run.id, &c);
    while (rc >= 0 && (rc = trc_cursor_next_step(c, &si)) == 1) {
        if (run->n_steps == cap) {
            cap = cap ? 2 * cap : 64;
            struct vw_rep_step *s = realloc(run->steps, (size_t)cap * sizeof *s);
            if (!s) {
                trc_cursor_close(c);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            run->steps = s;
        }
        const int64_t next = si.pos0 + si.n_tokens;
        run->steps[run->n_steps++] = (struct vw_rep_step){
            si.step, si.pos0, si.n_tokens, si.elapsed_ns,
            next >= 0 && next < t->n_tok && !t->tok_prompt[next] ? t->tok_ids[next] : -1};
    }
    trc_cursor_close(c);
    if (rc < 0) {
        snprintf(err, errlen, "%s", trc_reader_errmsg(t->r));
        return -1;
    }
    return 0;
}

/* Index of step `step` in the run's steps, or -1. */
static int64_t step_index(const struct vw_rep_run *run, int64_t step)
{
    for (int64_t i = 0; i < run->n_steps; i++) {
        if (run->steps[i].step == step) {
            return i;
        }
    }
    return -1;
}

/* Residual point of an op name: 0 tok_embd, 1 + 2L blk.L.ffn_inp, 2 + 2L blk.L.l_out, else -1. */
static int64_t residual_point(const struct vw_top *o)
{
    const char *dot = strrchr(o->name, '.');
    if (strcmp(o->name, "tok_embd") == 0) {
        return 0;
    }
    if (o->layer < 0 || !dot) {
        return -1;
    }
    if (strcmp(dot, ".ffn_inp") == 0) {
        return 1 + 2 * (int64_t)o->layer;
    }
    return strcmp(dot, ".l_out") == 0 ? 2 + 2 * (int64_t)o->layer : -1;
}

/* RMS of the residual stream after each stage of each step (the recorded stats: all rows of
 * the op, so the whole prompt for step 0). */
static int collect_rms(struct vw_rep_run *run, char *err, size_t errlen)
{
    struct vw_trace *t = run->t;
    struct trc_tensor_info info;
    for (int64_t i = 0; i < t->n_ops; i++) {
        run->n_layer = t->ops[i].layer + 1 > run->n_layer ? t->ops[i].layer + 1 : run->n_layer;
    }
    run->n_points = 1 + 2 * run->n_layer;
    const int64_t n = run->n_steps * run->n_points;
    run->rms = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!run->rms) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        run->rms[i] = (double)NAN;
    }
    for (int64_t i = 0; i < t->n_ops; i++) {
        const int64_t p = residual_point(&t->ops[i]);
        const int64_t s = p >= 0 ? step_index(run, t->ops[i].step) : -1;
        if (s < 0) {
            continue;
        }
        const int rc = vw_trace_tensor_info(t, i, "out", &info);
        if (rc < 0 && rc != TRC_ENOTFOUND) {
            snprintf(err, errlen, "%s", t->err);
            return -1;
        }
        if (rc == 0) {
            run->rms[s * run->n_points + p] = info.rms;
        }
    }
    return 0;
}

/* Time per op kind (largest first) and the total op and step times. */
static int collect_kinds(struct vw_rep_run *run, char *err, size_t errlen)
{
    const struct vw_trace *t = run->t;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(trc_reader_sql_handle(t->r),
                           "SELECT kind, count(*), sum(CASE WHEN elapsed_ns >= 0 THEN elapsed_ns "
                           "END) AS ns FROM ops WHERE run_id = ?1 GROUP BY kind ORDER BY ns DESC, "
                           "kind",
                           -1, &st, NULL) != SQLITE_OK) {
        return sql_fail(t, err, errlen);
    }
    sqlite3_bind_int64(st, 1, t->run.id);
    run->op_ns = run->step_ns = -1;
    while (sqlite3_step(st) == SQLITE_ROW && run->n_kinds < VW_REP_MAX_KINDS) {
        struct vw_rep_kind *k = &run->kinds[run->n_kinds++];
        const char *kind = (const char *)sqlite3_column_text(st, 0);
        snprintf(k->kind, sizeof k->kind, "%s", kind ? kind : "?");
        k->n_ops = sqlite3_column_int64(st, 1);
        k->ns = sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 2);
        run->op_ns = k->ns >= 0 ? (run->op_ns < 0 ? 0 : run->op_ns) + k->ns : run->op_ns;
    }
    sqlite3_finalize(st);
    for (int64_t i = 0; i < run->n_steps; i++) {
        if (run->steps[i].elapsed_ns >= 0) {
            run->step_ns = (run->step_ns < 0 ? 0 : run->step_ns) + run->steps[i].elapsed_ns;
        }
    }
    return 0;
}

/* True when a tensor's infinities are exactly the causal mask of attention scores: shape
 * (n_head, n_pos, n_kv), no NaN, and one -inf per cell past each row's position. The stats
 * count infinities without their sign, so the count is what is checked. */
static bool only_mask(const char *kind, const char *shape, int64_t pos0, int64_t n_pos,
                      int64_t n_nan, int64_t n_inf)
{
    long long d[3];
    char *end;
    const char *p = shape && shape[0] == '[' ? shape + 1 : NULL;
    for (int i = 0; p && i < 3; i++) {
        d[i] = strtoll(p, &end, 10);
        p = end != p && *end == (i < 2 ? ',' : ']') ? end + 1 : NULL;
    }
    if (!p || !kind || (strcmp(kind, "attn_scores") && strcmp(kind, "softmax")) || n_nan ||
        d[1] != n_pos) {
        return false;
    }
    int64_t masked = 0;
    for (int64_t row = 0; row < n_pos; row++) {
        const int64_t past = d[2] - (pos0 + row + 1);
        masked += past > 0 ? past : 0;
    }
    return n_inf == masked * d[0];
}

/* The op tensors holding a NaN or an Inf (the first VW_REP_MAX_NONFINITE, and how many),
 * apart from the expected -inf of the attention mask (counted in n_mask). */
static int collect_nonfinite(struct vw_rep_run *run, char *err, size_t errlen)
{
    const struct vw_trace *t = run->t;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(trc_reader_sql_handle(t->r),
                           "SELECT v.step, v.name, v.role, v.n_nan, v.n_inf, o.kind, v.shape, "
                           "o.pos0, o.n_pos FROM v_nonfinite v JOIN ops o ON o.id = v.op_id "
                           "WHERE v.run_id = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        return sql_fail(t, err, errlen);
    }
    sqlite3_bind_int64(st, 1, t->run.id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const int64_t n_nan = sqlite3_column_int64(st, 3), n_inf = sqlite3_column_int64(st, 4);
        if (only_mask((const char *)sqlite3_column_text(st, 5),
                      (const char *)sqlite3_column_text(st, 6), sqlite3_column_int64(st, 7),
                      sqlite3_column_int64(st, 8), n_nan, n_inf)) {
            run->n_mask++;
            continue;
        }
        if (run->n_nf < VW_REP_MAX_NONFINITE) {
            struct vw_rep_nonfinite *f = &run->nf[run->n_nf++];
            const char *name = (const char *)sqlite3_column_text(st, 1);
            const char *role = (const char *)sqlite3_column_text(st, 2);
            f->step = sqlite3_column_int64(st, 0);
            snprintf(f->name, sizeof f->name, "%s", name ? name : "?");
            snprintf(f->role, sizeof f->role, "%s", role ? role : "?");
            f->n_nan = n_nan;
            f->n_inf = n_inf;
        }
        run->n_nf_total++;
    }
    sqlite3_finalize(st);
    return 0;
}

static int collect_run(struct vw_rep_run *run, char *err, size_t errlen)
{
    int rc = collect_token_probs(run, err, errlen);
    rc = rc < 0 ? rc : collect_steps(run, err, errlen);
    rc = rc < 0 ? rc : collect_rms(run, err, errlen);
    rc = rc < 0 ? rc : collect_kinds(run, err, errlen);
    return rc < 0 ? rc : collect_nonfinite(run, err, errlen);
}

/* ---- explain ----------------------------------------------------------------------------------
 */

#define SPACE_MARK "\xe2\x96\x81" /* U+2581, SentencePiece's space */

/* A token given as an id or a piece (a leading space may be written as a space or "▁"). */
static int resolve_token(const lm_tok *tok, const char *s, int32_t *out, char *err, size_t errlen)
{
    long long id;
    char q[96];
    if (vw_parse_i64(s, 0, INT32_MAX, &id) == 0) {
        *out = id < lm_tok_n_vocab(tok) ? (int32_t)id : -1;
    } else {
        *out = lm_tok_find(tok, s);
        snprintf(q, sizeof q, SPACE_MARK "%s", s[0] == ' ' ? s + 1 : s);
        *out = *out >= 0 ? *out : lm_tok_find(tok, q);
    }
    if (*out < 0) {
        snprintf(err, errlen, "--token: no token '%s' in the vocabulary of %d tokens", s,
                 (int)lm_tok_n_vocab(tok));
        return -1;
    }
    return 0;
}

/* Opens the model and checks it against the runs' sha256. -1 with err when it cannot serve. */
static int explain_model(struct vw_report *r, char *err, size_t errlen)
{
    struct vw_rep_explain *e = &r->ex;
    const char *path = r->o.model ? r->o.model : r->run[0].t->run.model_path;
    if (!path || !*path) {
        snprintf(err, errlen, "%s: the trace does not name its model (pass it with -m)", r->o.a);
        return -1;
    }
    if (lm_model_open(path, &e->m, err, errlen) < 0) {
        return -1;
    }
    e->model_sha256 = vw_model_sha256(e->m);
    if (!e->model_sha256) {
        snprintf(err, errlen, "%s: cannot hash the model", path);
        return -1;
    }
    for (int i = 0; i < r->n_runs; i++) {
        const char *want = r->run[i].t->run.model_sha256;
        if (want && *want && strcmp(want, e->model_sha256) != 0) {
            snprintf(err, errlen,
                     "%s: model '%s' does not match the trace: its sha256 is %.16s..., the trace "
                     "was recorded with %.16s...",
                     r->run[i].t->path, path, e->model_sha256, want);
            return -1;
        }
    }
    return 0;
}

/* The explained step: --step, else the first step after which the runs sampled different
 * tokens, else 0. */
static void explain_step(struct vw_report *r)
{
    struct vw_rep_explain *e = &r->ex;
    e->step = r->o.step >= 0 ? r->o.step : 0;
    for (int64_t i = 0; r->o.step < 0 && r->n_runs == 2 && i < r->run[0].n_steps; i++) {
        const int64_t j = step_index(&r->run[1], r->run[0].steps[i].step);
        if (j >= 0 && r->run[0].steps[i].next_id != r->run[1].steps[j].next_id) {
            e->step = r->run[0].steps[i].step;
            e->step_differs = true;
            return;
        }
    }
}

static int explain_compute(struct vw_report *r, char *err, size_t errlen)
{
    struct vw_rep_explain *e = &r->ex;
    const struct lm_hparams *hp = lm_model_hparams(e->m);
    for (int i = 0; i < r->n_runs; i++) {
        /* each run at the step's last position: the one that produced its sampled token (the
         * runs' positions differ when their prompts do, e.g. a double BOS) */
        if (vw_xrun_load(r->run[i].t->r, hp, e->step, -1, &e->x[i], err, errlen) < 0) {
            return -1;
        }
        e->sampled[i] = e->x[i].next_id;
    }
    if (r->o.token && resolve_token(lm_model_tok(e->m), r->o.token, &e->tok, err, errlen) < 0) {
        return -1;
    }
    if (!r->o.token) {
        e->tok = e->sampled[r->n_runs - 1] >= 0 ? e->sampled[r->n_runs - 1] : e->sampled[0];
    }
    if (e->tok < 0) {
        snprintf(err, errlen, "%s: no token follows step %lld (name one with --token)", r->o.a,
                 (long long)e->step);
        return -1;
    }
    for (int i = 0; i < r->n_runs; i++) {
        if (vw_lens_compute(e->m, &e->x[i], e->tok, -1, 5, &e->lens[i], err, errlen) < 0 ||
            vw_attr_compute(e->m, &e->x[i], e->tok, -1, &e->attr[i], err, errlen) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Explain is optional: without an explicit -m, --step or --token a failure only leaves the
 * section's reason; with one it fails the report. */
static int collect_explain(struct vw_report *r, char *err, size_t errlen)
{
    struct vw_rep_explain *e = &r->ex;
    e->tok = e->sampled[0] = e->sampled[1] = -1;
    int rc = explain_model(r, e->why, sizeof e->why);
    if (rc == 0) {
        explain_step(r);
        rc = explain_compute(r, e->why, sizeof e->why);
    }
    e->available = rc == 0;
    if (rc < 0 && (r->o.model || r->o.step >= 0 || r->o.token)) {
        snprintf(err, errlen, "%s", e->why);
        return -1;
    }
    return 0;
}

/* ---- collecting -------------------------------------------------------------------------------
 */

int vw_report_collect(struct vw_report *r, const struct vw_report_opts *o, char *err, size_t errlen)
{
    const struct vw_cmp_tol tol = {VW_CMP_ATOL, VW_CMP_RTOL};
    memset(r, 0, sizeof *r);
    r->o = *o;
    r->n_runs = o->b ? 2 : 1;
    r->tokens_differ = -1;
    if (o->b) {
        r->have_diff = true;
        if (vw_diff_run(&r->d, o->a, o->b, &tol, err, errlen) < 0) {
            return -1;
        }
        r->run[0].t = &r->d.ref;
        r->run[1].t = &r->d.cand;
        r->n_hints = vw_hints_find(&r->d, r->hints, VW_HINT_MAX);
        r->tokens_differ = tokens_differ(&r->d.ref, &r->d.cand);
    } else {
        if (vw_trace_open(&r->single, o->a, err, errlen) < 0) {
            return -1;
        }
        r->run[0].t = &r->single;
    }
    for (int i = 0; i < r->n_runs; i++) {
        if (collect_run(&r->run[i], err, errlen) < 0) {
            return -1;
        }
    }
    collect_settings(r);
    return collect_explain(r, err, errlen);
}

void vw_report_release(struct vw_report *r)
{
    for (int i = 0; i < 2; i++) {
        free(r->run[i].tok_prob);
        free(r->run[i].tok_logit);
        free(r->run[i].steps);
        free(r->run[i].rms);
        vw_lens_release(&r->ex.lens[i]);
        vw_attr_release(&r->ex.attr[i]);
        vw_xrun_release(&r->ex.x[i]);
    }
    lm_model_close(r->ex.m);
    if (r->have_diff) {
        vw_diff_release(&r->d);
    } else {
        vw_trace_close(&r->single);
    }
    memset(r, 0, sizeof *r);
}

/* ---- the command ------------------------------------------------------------------------------
 */

/* The command line as one string, for the report's footer. */
static void join_argv(int argc, char **argv, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < argc && n + 1 < cap; i++) {
        const int k = snprintf(buf + n, cap - n, "%s%s", i ? " " : "lltrace ", argv[i]);
        n = k < 0 ? n : n + (size_t)k < cap ? n + (size_t)k : cap - 1;
    }
}

static int write_report(const struct rep_args *a, const struct vw_report *r)
{
    const bool std = strcmp(a->out, "-") == 0;
    FILE *f = std ? stdout : fopen(a->out, a->force ? "w" : "wx");
    if (!f) {
        return vw_error("%s: cannot write: %s", a->out, vw_strerror(errno));
    }
    int rc = vw_report_html(f, r);
    if (std) {
        rc = fflush(f) != 0 ? -1 : rc;
    } else {
        rc = fclose(f) != 0 ? -1 : rc;
    }
    if (rc < 0) {
        struct stat sb;
        if (!std && lstat(a->out, &sb) == 0 && S_ISREG(sb.st_mode)) {
            remove(a->out); /* a partial report; never a device such as /dev/full */
        }
        return vw_error("%s: write error", a->out);
    }
    return 0;
}

int cmd_report(int argc, char **argv)
{
    struct rep_args a;
    struct vw_report r;
    struct stat sb;
    char err[1024], cmdline[2048];
    memset(&a, 0, sizeof a);
    a.o.step = -1;
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    if (strcmp(a.out, "-") != 0 && !a.force && stat(a.out, &sb) == 0) {
        return vw_error("%s: file exists (use --force to overwrite)", a.out);
    }
    join_argv(argc, argv, cmdline, sizeof cmdline);
    a.o.argv_s = cmdline;
    if (vw_report_collect(&r, &a.o, err, sizeof err) < 0) {
        vw_report_release(&r);
        return vw_error("%s", err);
    }
    if (!r.ex.available) {
        vw_warn("explain section skipped: %s", r.ex.why);
    }
    rc = write_report(&a, &r);
    vw_report_release(&r);
    return rc;
}
