/*
 * cmd_explain.c - `lltrace explain TRACE [--token T] [--vs REF]`: where a token gets its logit.
 *
 * For one position of one step it runs the logit lens (the token's logit, probability and rank
 * if the residual stream stopped after the embedding or after any layer's attention or FFN) and
 * the direct logit attribution (the final logit split exactly into the embedding, each layer's
 * attention, each head, and each FFN, with the final RMSNorm's scale frozen at its recorded
 * value); the math is in attrib_int.h. With --vs it does the same on a reference trace and
 * prints the difference per component, names the components that explain it, and adds the
 * first diverging op from `lltrace diff`'s comparison (align_int.h). Everything is computed
 * from the trace plus the model file (verified by sha256): no engine run, no Python.
 */
#include <getopt.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align_int.h"
#include "attrib_int.h"
#include "cmds.h"
#include "table.h"
#include "shacache.h"
#include "vw.h"

static const char usage_text[] =
    "usage: lltrace explain TRACE [--token TOKEN] [--step S] [--pos P] [-m MODEL] [--top K]\n"
    "                             [--vs-token T2] [--vs REF [--no-diff]] [--json]\n"
    "                             [--bars unicode|ascii|none]\n"
    "\n"
    "Explains where a token gets its logit at one position of one step of a trace.\n"
    "\n"
    "Logit lens: the residual stream after the embedding and after each layer's attention\n"
    "(blk.L.ffn_inp) and FFN (blk.L.l_out), put through the final RMSNorm (the model's\n"
    "output_norm.weight, the recorded eps) and the output matrix with the engine's kernels:\n"
    "the token's logit, probability and rank there, the top K tokens, and where the token\n"
    "first enters the top 1 and the top K. At the final residual it reproduces the recorded\n"
    "logits (the largest difference is printed as a check).\n"
    "\n"
    "Direct logit attribution: with s = 1/sqrt(mean(x^2) + eps) frozen at the recorded final\n"
    "residual x, logit = sum over components c of s * (output_norm.weight * W_out[token]) . c,\n"
    "with c = the embedding, each layer's attention output (and each head: W_o restricted to\n"
    "the head's columns of kqv) and each layer's FFN output. The components add up to the\n"
    "recorded logit; the residual of that sum is printed. With --vs-token the same splits\n"
    "logit(TOKEN) - logit(T2): why TOKEN beat T2.\n"
    "\n"
    "With --vs REF (a good run, or an import of llama.cpp or PyTorch data), both traces are\n"
    "decomposed at the same step and position and the difference per component is printed,\n"
    "with the components (and heads) that explain it, and the first op where the two traces\n"
    "diverge (as 'lltrace diff REF TRACE'). Components REF cannot provide (ops it lacks,\n"
    "partial dumps) are listed.\n"
    "\n"
    "As in llama.cpp, the last layer's FFN and the output run only on a step's last position:\n"
    "by default the last position is explained (the one that produced the sampled token);\n"
    "--pos selects another position of a prompt step, where the lens stops after the last\n"
    "layer's attention and the logit attributed is the lens logit there.\n"
    "\n"
    "options:\n"
    "  --token TOKEN   a vocabulary piece ('drew' or '\xe2\x96\x81"
    "drew': a leading space is\n"
    "                  '\xe2\x96\x81') or an id; default: the token sampled after the step (the\n"
    "                  next token of the sequence for --pos)\n"
    "  --step S        the step (0 = the prompt batch); default 0, or with --vs the first\n"
    "                  step where the two runs sampled different tokens\n"
    "  --pos P         absolute position within the step (default: its last)\n"
    "  -m MODEL        the model file (default: the path recorded in the trace); its\n"
    "                  sha256 must match the trace's\n"
    "  --top K         tokens listed per lens point (default 5, at most 64)\n"
    "  --vs-token T2   explain logit(TOKEN) - logit(T2)\n"
    "  --vs REF        compare with a reference trace\n"
    "  --no-diff       with --vs: skip the search for the first diverging op\n"
    "  --json          one JSON object on stdout (numbers exact, null when unknown)\n"
    "  --bars MODE     bars in the tables: unicode (default on a terminal), ascii, none\n"
    "  -h, --help      show this help\n"
    "\n"
    "examples:\n"
    "  lltrace explain t.trace\n"
    "  lltrace explain t.trace --step 3 --token '\xe2\x96\x81"
    "drew' --vs-token 15043\n"
    "  lltrace explain bad.trace --vs good.trace --token drew\n"
    "\n"
    "exit codes: 0 explained, 1 failure (unreadable trace or model, hash mismatch, nothing\n"
    "recorded to explain), 2 usage\n";

enum bars_mode { BARS_NONE = 0, BARS_ASCII = 1, BARS_UNICODE = 2, BARS_COUNT };

struct ex_opts {
    const char *trace, *vs, *model, *token, *vs_token;
    long long step, pos, top;
    bool json, no_diff;
    int bars; /* enum bars_mode, or -1: unicode on a terminal, else none */
};

/* One explained trace. */
struct ex_run {
    const char *path;
    trc_reader *r;
    struct vw_xrun x;
    struct vw_lens lens;
    struct vw_attr attr;
};

/* The first diverging op of `lltrace diff REF TRACE`. */
struct ex_div {
    bool searched, found;
    char name[96];
    int64_t step, pos;
    const char *origin;
    char note[320]; /* why it is unknown, when it is */
};

struct ex {
    struct ex_opts o;
    lm_model *m;
    const lm_tok *tok;
    const char *model_sha; /* the model's sha256 (borrowed from m) */
    int32_t t1, t2;
    int64_t step;
    bool step_differs;    /* --vs picked the first step whose sampled tokens differ */
    bool unverified;      /* a trace records no model hash (imports) */
    struct ex_run run[2]; /* [0] TRACE, [1] REF */
    int n_runs;
    struct ex_div div;
};

/* ---- arguments --------------------------------------------------------------------------------
 */

static int opt_i64(const char *opt, const char *v, long long lo, long long hi, long long *out)
{
    if (vw_parse_i64(v, lo, hi, out) < 0) {
        return vw_usage_error("explain", "%s: '%s' is not an integer in %lld..%lld", opt, v, lo,
                              hi);
    }
    return 0;
}

static int opt_bars(const char *v, int *out)
{
    static const char *const names[BARS_COUNT] = {"none", "ascii", "unicode"};
    for (int i = 0; i < BARS_COUNT; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return vw_usage_error("explain", "--bars: '%s' is not unicode, ascii or none", v);
}

/* Returns 0, 2 (usage error) or -1 (--help printed). */
static int parse_args(int argc, char **argv, struct ex_opts *o)
{
    static const struct option longopts[] = {{"token", required_argument, NULL, 't'},
                                             {"vs-token", required_argument, NULL, 'T'},
                                             {"vs", required_argument, NULL, 'v'},
                                             {"step", required_argument, NULL, 's'},
                                             {"pos", required_argument, NULL, 'p'},
                                             {"top", required_argument, NULL, 'k'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"bars", required_argument, NULL, 'b'},
                                             {"no-diff", no_argument, NULL, 'n'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c, rc = 0;
    optind = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "m:h", longopts, NULL)) != -1) {
        if (c == 't' || c == 'T' || c == 'v' || c == 'm') {
            *(c == 't'   ? &o->token
              : c == 'T' ? &o->vs_token
              : c == 'v' ? &o->vs
                         : &o->model) = optarg;
        } else if (c == 's' || c == 'p') {
            rc = opt_i64(c == 's' ? "--step" : "--pos", optarg, 0, INT32_MAX,
                         c == 's' ? &o->step : &o->pos);
        } else if (c == 'k') {
            rc = opt_i64("--top", optarg, 1, VW_LENS_TOPK_MAX, &o->top);
        } else if (c == 'j' || c == 'n') {
            *(c == 'j' ? &o->json : &o->no_diff) = true;
        } else if (c == 'b') {
            rc = opt_bars(optarg, &o->bars);
        } else if (c == 'h') {
            fputs(usage_text, stdout);
            return -1;
        } else {
            return vw_usage_error("explain", "bad option");
        }
    }
    if (rc != 0) {
        return rc;
    }
    if (optind + 1 != argc) {
        return vw_usage_error("explain", optind >= argc ? "missing TRACE" : "too many arguments");
    }
    o->trace = argv[optind];
    return 0;
}

/* ---- tokens ------------------------------------------------------------------------------------
 */

#define SPACE_MARK "\xe2\x96\x81" /* U+2581, SentencePiece's space */

/* Levenshtein distance of two short byte strings (b at most 62 bytes). */
static int edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    int prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = (int)j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(int));
    }
    return prev[lb];
}

/* The vocabulary piece closest to q (or to "▁" + q), or -1. */
static int32_t nearest_piece(const lm_tok *t, const char *q)
{
    char q2[96];
    int best = 1 << 30;
    int32_t best_id = -1;
    snprintf(q2, sizeof q2, SPACE_MARK "%s", q);
    for (int32_t id = 0; id < lm_tok_n_vocab(t); id++) {
        const char *p = lm_tok_text(t, id);
        enum lm_tok_attr at = lm_tok_attr(t, id);
        size_t lp = p ? strlen(p) : 0;
        if (!p || lp > 62 || (at != LM_TOK_NORMAL && at != LM_TOK_USER_DEFINED)) {
            continue;
        }
        int d1 = edit_distance(q, strlen(q), p, lp), d2 = edit_distance(q2, strlen(q2), p, lp);
        int d = d1 < d2 ? d1 : d2;
        if (d < best) {
            best = d;
            best_id = id;
        }
    }
    return best <= 1 + (int)strlen(q) / 2 ? best_id : -1;
}

/* Resolves a token given as an id or a piece: exact piece first (spaces written as "▁"), then
 * with "▁" in front. Returns 0, or 1 with a message. */
static int resolve_token(const lm_tok *t, const char *s, int32_t *out)
{
    long long id;
    char q[80];
    size_t n = 0;
    if (vw_parse_i64(s, 0, INT32_MAX, &id) == 0) {
        if (id >= lm_tok_n_vocab(t)) {
            return vw_error("token id %lld out of range (the vocabulary has %d tokens)", id,
                            (int)lm_tok_n_vocab(t));
        }
        *out = (int32_t)id;
        return 0;
    }
    for (const char *p = s; *p && n + 4 < sizeof q; p++) {
        if (*p == ' ') {
            memcpy(q + n, SPACE_MARK, 3);
            n += 3;
        } else {
            q[n++] = *p;
        }
    }
    q[n] = 0;
    char q2[96];
    snprintf(q2, sizeof q2, SPACE_MARK "%s", q);
    *out = lm_tok_find(t, q);
    *out = *out >= 0 ? *out : lm_tok_find(t, q2);
    if (*out >= 0) {
        return 0;
    }
    int32_t near = nearest_piece(t, q);
    if (near >= 0) {
        return vw_error("no token '%s' in the vocabulary (did you mean '%s' (%d)?)", s,
                        lm_tok_text(t, near), (int)near);
    }
    return vw_error("no token '%s' in the vocabulary", s);
}

/* Writes a piece between quotes, control bytes escaped. */
static void put_piece(FILE *f, const struct ex *e, int32_t id)
{
    const char *p = id >= 0 ? lm_tok_text(e->tok, id) : NULL;
    fputc('\'', f);
    for (; p && *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            fprintf(f, "\\x%02x", (unsigned char)*p);
        } else {
            fputc(*p, f);
        }
    }
    fputc('\'', f);
}

static const char *piece_text(const struct ex *e, int32_t id)
{
    const char *p = id >= 0 ? lm_tok_text(e->tok, id) : NULL;
    return p ? p : "?";
}

/* ---- traces and model -------------------------------------------------------------------------
 */

/* Copies of the model path and sha256 the first run of r records (NULL when absent). */
static int run_model_meta(trc_reader *r, const char *path, char **mpath, char **sha)
{
    trc_cursor *c = NULL;
    struct trc_run_info ri;
    int rc = trc_reader_runs(r, &c);
    rc = rc < 0 ? rc : trc_cursor_next_run(c, &ri);
    if (rc <= 0) {
        trc_cursor_close(c);
        return vw_error("%s: %s", path, rc < 0 ? trc_reader_errmsg(r) : "the trace holds no run");
    }
    *mpath = ri.model_path && *ri.model_path ? strdup(ri.model_path) : NULL;
    *sha = ri.model_sha256 && *ri.model_sha256 ? strdup(ri.model_sha256) : NULL;
    trc_cursor_close(c);
    return 0;
}

static int check_hash(const char *trace, const char *model, const char *want, const char *have,
                      bool *unverified)
{
    if (!want) {
        *unverified = true;
        vw_warn("%s: the trace records no model hash (an import?): assuming it ran '%s'", trace,
                model);
        return 0;
    }
    if (strcmp(want, have) != 0) {
        return vw_error("%s: model '%s' does not match the trace: its sha256 is %.16s..., the "
                        "trace was recorded with %.16s... (pass the right model with -m)",
                        trace, model, have, want);
    }
    return 0;
}

/* Opens the model (-m, else the path TRACE records) and checks it against both traces. */
static int open_model(struct ex *e)
{
    char err[LM_ERRBUF_SIZE];
    char *mpath[2] = {NULL, NULL}, *sha[2] = {NULL, NULL};
    int rc = 0;
    for (int i = 0; rc == 0 && i < e->n_runs; i++) {
        rc = run_model_meta(e->run[i].r, e->run[i].path, &mpath[i], &sha[i]);
    }
    const char *path = e->o.model ? e->o.model : mpath[0];
    if (rc == 0 && !path) {
        rc = vw_error("%s: the trace does not name its model: pass it with -m MODEL", e->o.trace);
    }
    if (rc == 0 && lm_model_open(path, &e->m, err, sizeof err) < 0) {
        rc = vw_error("%s%s", err,
                      e->o.model ? ""
                                 : " (the model path recorded in the trace; "
                                   "pass another with -m)");
    }
    if (rc == 0) {
        e->tok = lm_model_tok(e->m);
        e->model_sha = vw_model_sha256(e->m);
        rc = e->model_sha ? check_hash(e->o.trace, path, sha[0], e->model_sha, &e->unverified)
                          : vw_error("%s: cannot hash the model", path);
    }
    if (rc == 0 && e->n_runs == 2) {
        rc = check_hash(e->o.vs, path, sha[1], e->model_sha, &e->unverified);
    }
    for (int i = 0; i < 2; i++) {
        free(mpath[i]);
        free(sha[i]);
    }
    return rc;
}

static int open_traces(struct ex *e)
{
    char err[TRC_ERRBUF_SIZE];
    e->run[0].path = e->o.trace;
    e->run[1].path = e->o.vs;
    e->n_runs = e->o.vs ? 2 : 1;
    for (int i = 0; i < e->n_runs; i++) {
        if (trc_reader_open(e->run[i].path, &e->run[i].r, err, sizeof err) < 0) {
            return vw_error("%s", err);
        }
    }
    return 0;
}

/* ---- step, position, tokens -------------------------------------------------------------------
 */

/* The token sampled after step `step` of r's first run, or -1. */
static int64_t sampled_after(trc_reader *r, int64_t step)
{
    sqlite3 *db = trc_reader_sql_handle(r);
    sqlite3_stmt *st = NULL;
    int64_t id = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT t.token_id FROM steps s JOIN tokens t ON t.run_id = s.run_id "
                           "AND t.idx = s.pos0 + s.n_tokens WHERE s.run_id = (SELECT min(id) "
                           "FROM runs) AND s.step = ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, step);
        if (sqlite3_step(st) == SQLITE_ROW) {
            id = sqlite3_column_int64(st, 0);
        }
    }
    sqlite3_finalize(st);
    return id;
}

/* With --vs and no --step: the first step after which the runs sampled different tokens. */
static void pick_step(struct ex *e)
{
    e->step = e->o.step;
    if (e->step >= 0) {
        return;
    }
    e->step = 0;
    for (int64_t s = 0; e->n_runs == 2; s++) {
        int64_t a = sampled_after(e->run[0].r, s), b = sampled_after(e->run[1].r, s);
        if (a < 0 || b < 0) {
            break;
        }
        if (a != b) {
            e->step = s;
            e->step_differs = true;
            break;
        }
    }
}

static int load_runs(struct ex *e)
{
    char err[512];
    const struct lm_hparams *hp = lm_model_hparams(e->m);
    for (int i = 0; i < e->n_runs; i++) {
        int64_t pos = i == 0 ? e->o.pos : e->run[0].x.pos;
        if (vw_xrun_load(e->run[i].r, hp, e->step, pos, &e->run[i].x, err, sizeof err) < 0) {
            return vw_error("%s", err);
        }
    }
    return 0;
}

/* The argmax of the recorded logits (first maximum, as greedy sampling), or -1. */
static int32_t recorded_top(const struct vw_xrun *x)
{
    const float *lg = x->row[VW_XS_LOGITS];
    int32_t best = -1;
    for (int64_t i = 0; lg && i < x->n_vocab; i++) {
        best = best < 0 || lg[i] > lg[best] ? (int32_t)i : best;
    }
    return best;
}

static int pick_tokens(struct ex *e)
{
    const struct vw_xrun *x = &e->run[0].x;
    e->t2 = -1;
    if (e->o.token && resolve_token(e->tok, e->o.token, &e->t1) != 0) {
        return 1;
    }
    if (!e->o.token) {
        e->t1 = x->next_id >= 0 ? x->next_id : recorded_top(x);
    }
    if (e->t1 < 0) {
        return vw_error("%s: no token follows position %lld of step %lld in the trace: name one "
                        "with --token",
                        e->o.trace, (long long)x->pos, (long long)x->step);
    }
    if (e->o.vs_token && resolve_token(e->tok, e->o.vs_token, &e->t2) != 0) {
        return 1;
    }
    if (e->t2 == e->t1) {
        return vw_usage_error("explain", "--vs-token names the same token as --token (%d)",
                              (int)e->t1);
    }
    return 0;
}

/* ---- computing --------------------------------------------------------------------------------
 */

/* Warns about each op a run lacks (at most 4, then a count). Returns the number missing. */
static int64_t warn_missing(const struct ex_run *run)
{
    const char *first;
    int64_t n = vw_xrun_missing(&run->x, &first), shown = 0;
    for (int64_t s = 0; s < run->x.n_slots && shown < 4; s++) {
        if (!run->x.row[s] && vw_xslot_needed(&run->x, s) && run->x.why[s]) {
            vw_warn("%s: %s", run->path, run->x.why[s]);
            shown++;
        }
    }
    if (n > shown) {
        vw_warn("%s: ... and %lld more ops missing", run->path, (long long)(n - shown));
    }
    return n;
}

static bool nothing_known(const struct ex_run *run)
{
    for (int64_t i = 0; i < run->lens.n_points; i++) {
        if (run->lens.p[i].known) {
            return false;
        }
    }
    return isnan(run->attr.sum);
}

static int compute(struct ex *e)
{
    char err[512];
    const int k = e->o.top > 0 ? (int)e->o.top : 5;
    for (int i = 0; i < e->n_runs; i++) {
        struct ex_run *run = &e->run[i];
        if (vw_lens_compute(e->m, &run->x, e->t1, e->t2, k, &run->lens, err, sizeof err) < 0 ||
            vw_attr_compute(e->m, &run->x, e->t1, e->t2, &run->attr, err, sizeof err) < 0) {
            return vw_error("%s", err);
        }
        if (warn_missing(run) > 0 && i == 0 && nothing_known(run)) {
            const char *first;
            vw_xrun_missing(&run->x, &first);
            return vw_error("%s: cannot explain step %lld: %s (record the run with --record "
                            "full, the default)",
                            run->path, (long long)run->x.step, first ? first : "no data");
        }
    }
    return 0;
}

/* The first diverging op of `lltrace diff REF TRACE` (REF is the reference). */
static void find_divergence(struct ex *e)
{
    struct vw_diff d;
    const struct vw_cmp_tol tol = {VW_CMP_ATOL, VW_CMP_RTOL};
    memset(&d, 0, sizeof d);
    e->div.searched = true;
    if (vw_diff_run(&d, e->o.vs, e->o.trace, &tol, e->div.note, sizeof e->div.note) < 0) {
        vw_diff_release(&d);
        return;
    }
    if (d.first_fail < 0) {
        snprintf(e->div.note, sizeof e->div.note,
                 "no op differs beyond the tolerance (atol %g, rtol %g)", tol.atol, tol.rtol);
    } else {
        const struct vw_top *op = &d.ref.ops[d.first_fail];
        const struct vw_opdiff *od = &d.ops[d.first_fail];
        e->div.found = true;
        snprintf(e->div.name, sizeof e->div.name, "%s", op->name);
        e->div.step = op->step;
        e->div.pos = od->oc.fail_pos >= 0 ? od->oc.fail_pos : op->pos0;
        e->div.origin = vw_origin_name(d.origin);
    }
    vw_diff_release(&d);
}

/* ---- text output helpers ----------------------------------------------------------------------
 */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Probability as "12.34%", or "1e-05%" style when tiny. */
static const char *fmt_prob(char *buf, size_t cap, double p)
{
    if (isnan(p)) {
        snprintf(buf, cap, "n/a");
    } else if (p >= 1e-4) {
        snprintf(buf, cap, "%.2f%%", p * 100);
    } else {
        snprintf(buf, cap, "%.0e%%", p * 100);
    }
    return buf;
}

/* A bar of v on a scale where |v| = vmax fills `half` cells: negative values grow left of the
 * axis (half-cell steps), positive ones right of it (eighths in unicode). */
static void put_bar(FILE *f, double v, double vmax, int half, int mode)
{
    static const char *const eighths[8] = {"",
                                           "\xe2\x96\x8f",
                                           "\xe2\x96\x8e",
                                           "\xe2\x96\x8d",
                                           "\xe2\x96\x8c",
                                           "\xe2\x96\x8b",
                                           "\xe2\x96\x8a",
                                           "\xe2\x96\x89"};
    const char *full = mode == BARS_UNICODE ? "\xe2\x96\x88" : "#";
    double cells = isnan(v) || vmax <= 0 ? 0 : fabs(v) / vmax * half;
    cells = cells > half ? half : cells;
    if (mode == BARS_NONE) {
        return;
    }
    int h2 = v < 0 ? (int)lround(cells * 2) : 0;
    fprintf(f, "  %*s", half - (h2 + 1) / 2, "");
    fputs(h2 % 2 ? (mode == BARS_UNICODE ? "\xe2\x96\x90" : "#") : "", f);
    for (int i = 0; i < h2 / 2; i++) {
        fputs(full, f);
    }
    fputs(mode == BARS_UNICODE ? "\xe2\x94\x82" : "|", f);
    int e8 = v > 0 ? (int)lround(cells * 8) : 0;
    for (int i = 0; i < e8 / 8; i++) {
        fputs(full, f);
    }
    fputs(mode == BARS_UNICODE ? eighths[e8 % 8] : (e8 % 8 >= 4 ? "#" : ""), f);
}

static void put_num(FILE *f, int width, double v, bool sign)
{
    if (isnan(v)) {
        fprintf(f, "%*s", width, "n/a");
    } else {
        fprintf(f, sign ? "%+*.3f" : "%*.3f", width, v);
    }
}

/* Writes s padded with spaces to `width` terminal columns (UTF-8 code points). */
static void put_cell(FILE *f, const char *s, int width)
{
    int cols = 0;
    for (const char *p = s; *p; p++) {
        cols += ((unsigned char)*p & 0xC0) != 0x80;
    }
    fprintf(f, "%s%*s", s, cols < width ? width - cols : 0, "");
}

static double comp_max(const double *v, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        m = !isnan(v[i]) && fabs(v[i]) > m ? fabs(v[i]) : m;
    }
    return m;
}

/* Indices of the n values sorted by key (sign * v, or |v| when sign is 0), best first; NaN
 * values last. */
static void sort_idx(const double *v, int64_t n, double sign, int64_t *idx)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t j = i;
        const double ki = isnan(v[i]) ? -(double)INFINITY : sign != 0 ? sign * v[i] : fabs(v[i]);
        while (j > 0) {
            const int64_t p = idx[j - 1];
            const double kp = isnan(v[p]) ? -(double)INFINITY
                              : sign != 0 ? sign * v[p]
                                          : fabs(v[p]);
            if (!(ki > kp)) {
                break;
            }
            idx[j] = p;
            j--;
        }
        idx[j] = i;
    }
}

/* A growing text buffer (truncates silently past its size). */
struct sbuf {
    char b[2048];
    size_t n;
};

static void sb_add(struct sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(struct sbuf *s, const char *fmt, ...)
{
    va_list ap;
    if (s->n >= sizeof s->b - 1) {
        return;
    }
    va_start(ap, fmt);
    int k = vsnprintf(s->b + s->n, sizeof s->b - s->n, fmt, ap);
    va_end(ap);
    s->n = k < 0 ? s->n : s->n + (size_t)k < sizeof s->b ? s->n + (size_t)k : sizeof s->b - 1;
}

/* "logit('▁drew')" or "logit('▁drew') - logit('▁Hello')". */
static void sb_what(struct sbuf *s, const struct ex *e)
{
    sb_add(s, "logit('%s')", piece_text(e, e->t1));
    if (e->t2 >= 0) {
        sb_add(s, " - logit('%s')", piece_text(e, e->t2));
    }
}

/* Heads of layer l (values v, n_head) in the direction `sign` worth at least a quarter of
 * `total`, as "heads 3, 7: +5.10, +2.05". */
static void sb_heads(struct sbuf *s, const double *v, int64_t n_head, double sign, double total)
{
    int64_t idx[VW_LENS_TOPK_MAX * 4], k = 0;
    int64_t n = n_head < (int64_t)(sizeof idx / sizeof idx[0]) ? n_head : 0;
    sort_idx(v, n, sign, idx);
    while (k < n && k < 3 && !isnan(v[idx[k]]) && sign * v[idx[k]] >= 0.25 * fabs(total)) {
        k++;
    }
    if (k == 0) {
        return;
    }
    sb_add(s, "; head%s ", k > 1 ? "s" : "");
    for (int64_t i = 0; i < k; i++) {
        sb_add(s, "%s%lld", i ? ", " : "", (long long)idx[i]);
    }
    sb_add(s, ": ");
    for (int64_t i = 0; i < k; i++) {
        sb_add(s, "%s%+.2f", i ? ", " : "", v[idx[i]]);
    }
}

/* The components (values v, NaN unknown) that make up most of `total`, in its direction:
 * "layer 0 attention (+8.10; heads 3, 7: +5.10, +2.05) and layer 3 ffn (+2.20)". heads is
 * (n_layer, n_head) per-head values in the same sense as v. */
static void sb_components(struct sbuf *s, const double *v, int64_t n, const double *heads,
                          int64_t n_head, double total)
{
    int64_t idx[1 + 2 * 256];
    const double sign = total >= 0 ? 1 : -1;
    double acc = 0;
    int64_t k = 0;
    n = n < (int64_t)(sizeof idx / sizeof idx[0]) ? n : (int64_t)(sizeof idx / sizeof idx[0]);
    sort_idx(v, n, sign, idx);
    while (k < n && k < 3 && !isnan(v[idx[k]]) && sign * v[idx[k]] > 0 &&
           (k == 0 || acc < 0.8 * fabs(total))) {
        acc += sign * v[idx[k]];
        k++;
    }
    for (int64_t i = 0; i < k; i++) {
        char name[48];
        const int64_t c = idx[i];
        vw_attr_comp_name(c, name, sizeof name);
        sb_add(s, "%s%s (%+.2f", i == 0 ? "" : i + 1 == k ? " and " : ", ", name, v[c]);
        if (c > 0 && (c - 1) % 2 == 0) {
            sb_heads(s, heads + ((c - 1) / 2) * n_head, n_head, sign, v[c]);
        }
        sb_add(s, ")");
    }
    if (k == 0) {
        sb_add(s, "no single component (contributions cancel)");
    } else if (acc < 0.8 * fabs(total)) {
        sb_add(s, "; together %+.2f of %+.2f, the rest is spread over the other components",
               sign * acc, total);
    }
}

/* ---- text: one run ----------------------------------------------------------------------------
 */

static void print_token_line(FILE *f, const struct ex *e)
{
    fprintf(f, "token ");
    put_piece(f, e, e->t1);
    fprintf(f, " (%d)", (int)e->t1);
    if (e->t2 >= 0) {
        fprintf(f, " against ");
        put_piece(f, e, e->t2);
        fprintf(f, " (%d): the logit difference", (int)e->t2);
    }
}

static void print_header(FILE *f, const struct ex *e)
{
    const struct vw_xrun *x = &e->run[0].x;
    print_token_line(f, e);
    fprintf(f, "\nat step %lld, position %lld of %s", (long long)x->step, (long long)x->pos,
            e->o.trace);
    if (e->n_runs == 2) {
        fprintf(f, " (run), against %s (ref)", e->o.vs);
    }
    fprintf(f, "\nmodel %s, sha256 %.12s... %s\n", lm_model_path(e->m), e->model_sha,
            e->unverified ? "(not verified: a trace records no model hash)" : "matches");
    for (int i = 0; i < e->n_runs; i++) {
        const struct vw_xrun *xi = &e->run[i].x;
        fprintf(f, "%s", e->n_runs == 2 ? (i == 0 ? "run: " : "ref: ") : "");
        if (xi->next_id < 0) {
            fprintf(f, "no token recorded after position %lld", (long long)xi->pos);
        } else {
            fprintf(f, xi->last_pos ? "sampled after the step: " : "next in the sequence: ");
            put_piece(f, e, xi->next_id);
            fprintf(f, " (%d)", (int)xi->next_id);
            if (!isnan(xi->next_prob)) {
                fprintf(f, ", p %.4f, logit %.3f", xi->next_prob, xi->next_logit);
            }
        }
        fprintf(f, "%s%s\n", xi->faults && *xi->faults ? "; faults: " : "",
                xi->faults ? xi->faults : "");
    }
}

/* Top-k pieces of a lens point with their probabilities. */
static void print_topk(FILE *f, const struct ex *e, const struct vw_lens_point *p, int k)
{
    char pb[32];
    for (int i = 0; i < p->n_top && i < k; i++) {
        fputs(i ? " " : "", f);
        put_piece(f, e, p->top[i]);
        fprintf(f, " %s", fmt_prob(pb, sizeof pb, p->top_prob[i]));
    }
}

static void print_lens_marks(FILE *f, const struct ex *e, const struct vw_lens *l)
{
    char a[48], b[48];
    vw_attr_comp_name(l->first_topk, a, sizeof a);
    vw_attr_comp_name(l->first_top1, b, sizeof b);
    fprintf(f, "  ");
    put_piece(f, e, e->t1);
    if (l->first_topk < 0) {
        fprintf(f, " never enters the top %d", l->k);
    } else {
        fprintf(f, " first enters the top %d after %s", l->k, a);
        fprintf(f, l->first_top1 < 0 ? ", never the top 1" : ", the top 1 after %s", b);
    }
    fputc('\n', f);
    if (!isnan(l->final_vs_recorded)) {
        fprintf(f,
                "  check: at the final residual the lens gives the recorded logits (max |diff| "
                "%.3g)\n",
                l->final_vs_recorded);
    }
}

static void print_lens(FILE *f, const struct ex *e, const struct ex_run *run)
{
    const struct vw_lens *l = &run->lens;
    char name[48], pb[32];
    fprintf(f, "\nlogit lens: the residual after each stage, through output_norm and output\n");
    fprintf(f, "  %-20s %9s %9s %7s%s  top %d\n", "after", "logit", "prob", "rank",
            e->t2 >= 0 ? "  vs logit" : "", l->k);
    for (int64_t i = 0; i < l->n_points; i++) {
        const struct vw_lens_point *p = &l->p[i];
        vw_attr_comp_name(i, name, sizeof name);
        fprintf(f, "  %-20s ", name);
        if (!p->known) {
            fprintf(f, "%9s  %s\n", "n/a", p->why ? p->why : "");
            continue;
        }
        fprintf(f, "%9.3f %9s %7lld", p->logit, fmt_prob(pb, sizeof pb, p->prob),
                (long long)p->rank);
        if (e->t2 >= 0) {
            fprintf(f, " %+9.3f", p->logit - p->logit2);
        }
        fputs("  ", f);
        print_topk(f, e, p, l->k);
        if (i == l->first_top1 || i == l->first_topk) {
            fprintf(f, "  <- top %d", i == l->first_top1 ? 1 : l->k);
        }
        fputc('\n', f);
    }
    print_lens_marks(f, e, l);
}

/* "    heads 3 +5.100  7 +2.050  1 +0.600  (5 others +0.350)" for layer l. */
static void print_heads(FILE *f, const double *v, int64_t n_head)
{
    int64_t idx[256];
    const int64_t n = n_head < 256 ? n_head : 256;
    const int64_t shown = n <= 4 ? n : 3;
    double rest = 0;
    sort_idx(v, n, 0, idx);
    fprintf(f, "  %-20s", "  heads");
    for (int64_t i = 0; i < shown; i++) {
        fprintf(f, " %2lld %+.3f", (long long)idx[i], v[idx[i]]);
    }
    for (int64_t i = shown; i < n; i++) {
        rest += isnan(v[idx[i]]) ? 0 : v[idx[i]];
    }
    if (n > shown) {
        fprintf(f, "  (%lld others %+.3f)", (long long)(n - shown), rest);
    }
    fputc('\n', f);
}

static void print_attr_title(FILE *f, const struct ex *e, const struct vw_attr *a, double eps)
{
    struct sbuf w = {{0}, 0};
    sb_what(&w, e);
    fprintf(f, "\ndirect logit attribution of %s %s\n", w.b,
            a->at_final ? "at the final residual"
                        : "after the last layer's attention (its FFN ran only on the step's "
                          "last position)");
    fprintf(f, "  (final RMSNorm scale frozen at s = %.6g from the recorded residual, eps %g)\n",
            a->scale, eps);
}

static void print_attr(FILE *f, const struct ex *e, const struct ex_run *run, int bars)
{
    const struct vw_attr *a = &run->attr;
    const double vmax = comp_max(a->comp, a->n_comp);
    char name[48];
    print_attr_title(f, e, a, run->x.eps);
    fprintf(f, "  %-20s %9s\n", "component", "logit");
    for (int64_t i = 0; i < a->n_comp; i++) {
        if (!a->at_final && i == a->n_comp - 1) {
            break;
        }
        vw_attr_comp_name(i, name, sizeof name);
        fprintf(f, "  %-20s ", name);
        put_num(f, 9, a->comp[i], true);
        put_bar(f, a->comp[i], vmax, 20, bars);
        fputc('\n', f);
        if (i % 2 == 1 && !isnan(a->head[((i - 1) / 2) * a->n_head])) {
            print_heads(f, a->head + ((i - 1) / 2) * a->n_head, a->n_head);
        }
    }
    fprintf(f, "  %-20s %9.4f\n", "sum of components", a->sum);
    fprintf(f, "  %-20s %9.4f   residual %+.2g\n",
            a->target_recorded ? "recorded logit" : "lens logit", a->target, a->residual);
    if (a->n_unknown > 0) {
        fprintf(f, "  %lld components could not be computed (missing ops above)\n",
                (long long)a->n_unknown);
    }
    struct sbuf s = {{0}, 0};
    sb_components(&s, a->comp, a->n_comp, a->head, a->n_head, a->sum);
    fprintf(f, "  largest: %s\n", s.b);
}

/* ---- text: two runs ---------------------------------------------------------------------------
 */

static void print_divergence(FILE *f, const struct ex *e)
{
    if (!e->div.searched) {
        return;
    }
    fprintf(f, "first divergence (lltrace diff %s %s): ", e->o.vs, e->o.trace);
    if (e->div.found) {
        fprintf(f, "op '%s' at step %lld, position %lld (%s)\n", e->div.name,
                (long long)e->div.step, (long long)e->div.pos, e->div.origin);
    } else {
        fprintf(f, "%s\n", e->div.note);
    }
}

static void print_vs_lens(FILE *f, const struct ex *e)
{
    const struct vw_lens *a = &e->run[0].lens, *b = &e->run[1].lens;
    char name[48];
    fprintf(f, "\nlogit lens of ");
    put_piece(f, e, e->t1);
    fprintf(f, ": logit and rank after each stage, and the top token there\n");
    fprintf(f, "  %-20s %9s %7s  %-14s %9s %7s  %s\n", "after", "run", "rank", "run top 1", "ref",
            "rank", "ref top 1");
    for (int64_t i = 0; i < a->n_points; i++) {
        vw_attr_comp_name(i, name, sizeof name);
        fprintf(f, "  %-20s", name);
        for (int r = 0; r < 2; r++) {
            const struct vw_lens_point *p = r == 0 ? &a->p[i] : &b->p[i];
            if (!p->known) {
                fprintf(f, " %9s %7s  %-14s", "n/a", "", "");
                continue;
            }
            char top[64];
            snprintf(top, sizeof top, "'%s'", piece_text(e, p->n_top ? p->top[0] : -1));
            fprintf(f, " %9.3f %7lld  ", p->logit, (long long)p->rank);
            put_cell(f, top, 14);
        }
        fputc('\n', f);
    }
}

/* The per-component difference run - ref (NaN when either is unknown), heads too. */
static void vs_deltas(const struct ex *e, double *dc, double *dh)
{
    const struct vw_attr *a = &e->run[0].attr, *b = &e->run[1].attr;
    for (int64_t i = 0; i < a->n_comp; i++) {
        dc[i] = a->comp[i] - b->comp[i];
    }
    for (int64_t i = 0; i < a->n_layer * a->n_head; i++) {
        dh[i] = a->head[i] - b->head[i];
    }
}

static void print_vs_table(FILE *f, const struct ex *e, const double *dc, const double *dh,
                           int bars)
{
    const struct vw_attr *a = &e->run[0].attr, *b = &e->run[1].attr;
    const double vmax = comp_max(dc, a->n_comp);
    char name[48];
    fprintf(f, "  %-20s %9s %9s %9s\n", "component", "run", "ref", "run-ref");
    for (int64_t i = 0; i < a->n_comp; i++) {
        if (!a->at_final && i == a->n_comp - 1) {
            break;
        }
        vw_attr_comp_name(i, name, sizeof name);
        fprintf(f, "  %-20s ", name);
        put_num(f, 9, a->comp[i], true);
        put_num(f, 10, b->comp[i], true);
        put_num(f, 10, dc[i], true);
        put_bar(f, dc[i], vmax, 20, bars);
        fputc('\n', f);
        if (i % 2 == 1 && !isnan(dh[((i - 1) / 2) * a->n_head])) {
            print_heads(f, dh + ((i - 1) / 2) * a->n_head, a->n_head);
        }
    }
    const double rows[3][2] = {
        {a->sum, b->sum}, {a->target, b->target}, {a->residual, b->residual}};
    static const char *const labels[3] = {"sum of components", "logit", "residual"};
    for (int r = 0; r < 3; r++) {
        fprintf(f, "  %-20s ", labels[r]);
        for (int c = 0; c < 2; c++) {
            if (r == 2 && !isnan(rows[r][c])) {
                fprintf(f, c ? " %+9.1e" : "%+9.1e", rows[r][c]);
            } else {
                put_num(f, c ? 10 : 9, rows[r][c], false);
            }
        }
        if (r < 2) {
            put_num(f, 10, rows[r][0] - rows[r][1], true);
        }
        fputc('\n', f);
    }
    if (!isnan(a->scale) && !isnan(b->scale) && fabs(a->scale / b->scale - 1) > 1e-3) {
        fprintf(f,
                "  (each run's contributions use its own frozen scale; s run/ref = %.4f, so "
                "identical vectors such as the embedding still differ by that factor)\n",
                a->scale / b->scale);
    }
}

/* Which of REF's components could not be computed, with the first reason. */
static void print_ref_missing(FILE *f, const struct ex *e)
{
    const struct ex_run *ref = &e->run[1];
    const char *first;
    int64_t n = vw_xrun_missing(&ref->x, &first);
    if (ref->attr.n_unknown == 0 && n == 0) {
        return;
    }
    fprintf(f,
            "  %s: %lld of %lld components could not be computed (%lld ops missing; first: "
            "%s)\n",
            ref->path, (long long)ref->attr.n_unknown, (long long)ref->attr.n_comp, (long long)n,
            first ? first : "-");
}

/* The sentence that answers the question. */
static void vs_summary(const struct ex *e, const double *dc, const double *dh, struct sbuf *s)
{
    const struct vw_attr *a = &e->run[0].attr, *b = &e->run[1].attr;
    const double total = a->target - b->target;
    struct sbuf w = {{0}, 0};
    sb_what(&w, e);
    if (isnan(total)) {
        sb_add(s, "%s is unknown in %s", w.b, isnan(a->target) ? e->o.trace : e->o.vs);
        return;
    }
    if (fabs(total) < 1e-6) {
        sb_add(s, "%s is the same in both runs (%.3f)", w.b, a->target);
        return;
    }
    if (comp_max(dc, a->n_comp) == 0 && (a->n_unknown > 0 || b->n_unknown > 0)) {
        sb_add(s,
               "%s is %.3f in %s and %.3f in %s (%+.2f); the difference cannot be split: %s "
               "lacks the components (see the missing ops)",
               w.b, a->target, base_name(e->o.trace), b->target, base_name(e->o.vs), total,
               base_name(b->n_unknown > 0 ? e->o.vs : e->o.trace));
        return;
    }
    if (e->t2 < 0) {
        w.n = 0;
        sb_add(&w, "logits of '%s'", piece_text(e, e->t1));
    }
    if (total > 0) {
        sb_add(s, "the extra %.2f %s%s in %s come from ", total, e->t2 < 0 ? "" : "of ", w.b,
               base_name(e->o.trace));
    } else {
        sb_add(s, "the %.2f %s%s that %s lacks were lost in ", -total, e->t2 < 0 ? "" : "of ", w.b,
               base_name(e->o.trace));
    }
    sb_components(s, dc, a->n_comp, dh, a->n_head, total);
    if (b->n_unknown > 0 || a->n_unknown > 0) {
        sb_add(s, " (%lld components could not be compared)",
               (long long)(a->n_unknown > b->n_unknown ? a->n_unknown : b->n_unknown));
    }
}

static int print_vs(FILE *f, const struct ex *e, int bars)
{
    const struct vw_attr *a = &e->run[0].attr;
    double *dc = malloc((size_t)a->n_comp * sizeof(double));
    double *dh = malloc((size_t)(a->n_layer * a->n_head) * sizeof(double));
    struct sbuf s = {{0}, 0}, w = {{0}, 0};
    if (!dc || !dh) {
        free(dc);
        free(dh);
        return vw_error("out of memory");
    }
    vs_deltas(e, dc, dh);
    print_header(f, e);
    if (e->step_differs) {
        fprintf(f, "step %lld is the first step after which the runs sampled different tokens\n",
                (long long)e->step);
    }
    print_divergence(f, e);
    print_vs_lens(f, e);
    sb_what(&w, e);
    fprintf(f,
            "\ndirect logit attribution of %s in both runs (final RMSNorm scale frozen per "
            "run)\n",
            w.b);
    print_vs_table(f, e, dc, dh, bars);
    print_ref_missing(f, e);
    vs_summary(e, dc, dh, &s);
    fprintf(f, "\n%s\n", s.b);
    free(dc);
    free(dh);
    return 0;
}

/* ---- JSON -------------------------------------------------------------------------------------
 */

static void json_tok(FILE *f, const struct ex *e, int32_t id)
{
    if (id < 0) {
        fputs("null", f);
        return;
    }
    fprintf(f, "{\"id\":%d,\"piece\":", (int)id);
    vw_json_str(f, piece_text(e, id));
    fputc('}', f);
}

static void json_key_num(FILE *f, const char *key, double v)
{
    fprintf(f, ",\"%s\":", key);
    vw_json_num(f, v);
}

static void json_stage(FILE *f, int64_t i)
{
    fprintf(f, "\"layer\":%lld,\"stage\":\"%s\"", (long long)(i == 0 ? -1 : (i - 1) / 2),
            i == 0             ? "embedding"
            : (i - 1) % 2 == 0 ? "attention"
                               : "ffn");
}

static void json_point(FILE *f, const struct ex *e, int64_t i, const struct vw_lens_point *p)
{
    fputc('{', f);
    json_stage(f, i);
    fprintf(f, ",\"known\":%s,\"derived\":%s,\"from_logits\":%s", p->known ? "true" : "false",
            p->derived ? "true" : "false", p->from_logits ? "true" : "false");
    if (!p->known) {
        fputs(",\"missing\":", f);
        vw_json_str(f, p->why ? p->why : "");
        fputc('}', f);
        return;
    }
    json_key_num(f, "logit", p->logit);
    json_key_num(f, "vs_logit", p->logit2);
    json_key_num(f, "prob", p->prob);
    fprintf(f, ",\"rank\":%lld,\"top\":[", (long long)p->rank);
    for (int j = 0; j < p->n_top; j++) {
        fprintf(f, "%s{\"id\":%d,\"piece\":", j ? "," : "", (int)p->top[j]);
        vw_json_str(f, piece_text(e, p->top[j]));
        json_key_num(f, "logit", (double)p->top_logit[j]);
        json_key_num(f, "prob", p->top_prob[j]);
        fputc('}', f);
    }
    fputs("]}", f);
}

static void json_point_ref(FILE *f, const char *key, int64_t i)
{
    fprintf(f, ",\"%s\":", key);
    if (i < 0) {
        fputs("null", f);
        return;
    }
    fputc('{', f);
    json_stage(f, i);
    fputc('}', f);
}

static void json_lens(FILE *f, const struct ex *e, const struct vw_lens *l)
{
    fprintf(f, "{\"k\":%d", l->k);
    json_point_ref(f, "first_top1", l->first_top1);
    json_point_ref(f, "first_topk", l->first_topk);
    json_key_num(f, "final_vs_recorded", l->final_vs_recorded);
    fputs(",\"points\":[", f);
    for (int64_t i = 0; i < l->n_points; i++) {
        fputs(i ? ",\n" : "\n", f);
        json_point(f, e, i, &l->p[i]);
    }
    fputs("]}", f);
}

/* Components (values v; heads h per layer) as a JSON array; why gives a missing reason. */
static void json_comps(FILE *f, const struct vw_xrun *x, const struct vw_attr *a, const double *v,
                       const double *h)
{
    fputc('[', f);
    for (int64_t i = 0; i < a->n_comp - (a->at_final ? 0 : 1); i++) {
        char name[48];
        vw_attr_comp_name(i, name, sizeof name);
        fprintf(f, "%s\n{\"name\":\"%s\",", i ? "," : "", name);
        json_stage(f, i);
        json_key_num(f, "logit", v[i]);
        if (i % 2 == 1) {
            fputs(",\"heads\":[", f);
            for (int64_t k = 0; k < a->n_head; k++) {
                fputs(k ? "," : "", f);
                vw_json_num(f, h[((i - 1) / 2) * a->n_head + k]);
            }
            fputc(']', f);
        }
        const int64_t slot =
            i == 0 ? VW_XS_EMBD : vw_xslot_layer((i - 1) / 2, i % 2 ? VW_XL_ATTN : VW_XL_FFN);
        if (x && x->why[slot]) {
            fputs(",\"missing\":", f);
            vw_json_str(f, x->why[slot]);
        }
        fputc('}', f);
    }
    fputc(']', f);
}

static void json_attr(FILE *f, const struct ex_run *run)
{
    const struct vw_attr *a = &run->attr;
    fprintf(f, "{\"at\":\"%s\"", a->at_final ? "final" : "last_attention");
    json_key_num(f, "scale", a->scale);
    json_key_num(f, "eps", run->x.eps);
    json_key_num(f, "logit", a->target);
    fprintf(f, ",\"logit_recorded\":%s", a->target_recorded ? "true" : "false");
    json_key_num(f, "sum", a->sum);
    json_key_num(f, "residual", a->residual);
    fprintf(f, ",\"n_unknown\":%lld,\"components\":", (long long)a->n_unknown);
    json_comps(f, &run->x, a, a->comp, a->head);
    fputc('}', f);
}

static void json_run(FILE *f, const struct ex *e, const struct ex_run *run)
{
    const struct vw_xrun *x = &run->x;
    fputs("{\"trace\":", f);
    vw_json_str(f, run->path);
    fputs(",\"source\":", f);
    x->source ? vw_json_str(f, x->source) : (void)fputs("null", f);
    fputs(",\"faults\":", f);
    x->faults ? vw_json_str(f, x->faults) : (void)fputs("null", f);
    fprintf(f, ",\"step\":%lld,\"pos\":%lld,\"last_pos\":%s,\"next\":", (long long)x->step,
            (long long)x->pos, x->last_pos ? "true" : "false");
    json_tok(f, e, x->next_id);
    json_key_num(f, "next_prob", x->next_prob);
    json_key_num(f, "next_logit", x->next_logit);
    fputs(",\n\"lens\":", f);
    json_lens(f, e, &run->lens);
    fputs(",\n\"attribution\":", f);
    json_attr(f, run);
    fputs(",\n\"missing\":[", f);
    for (int64_t s = 0, n = 0; s < x->n_slots; s++) {
        if (!x->row[s] && vw_xslot_needed(x, s) && x->why[s]) {
            fputs(n++ ? "," : "", f);
            vw_json_str(f, x->why[s]);
        }
    }
    fputs("]}", f);
}

static void json_diff(FILE *f, const struct ex *e, const double *dc, const double *dh)
{
    struct sbuf s = {{0}, 0};
    const struct vw_attr *a = &e->run[0].attr, *b = &e->run[1].attr;
    vs_summary(e, dc, dh, &s);
    fputs(",\n\"diff\":{", f);
    fputs("\"logit\":", f);
    vw_json_num(f, a->target - b->target);
    fputs(",\"summary\":", f);
    vw_json_str(f, s.b);
    fputs(",\"components\":", f);
    json_comps(f, NULL, a, dc, dh);
    fputs("},\n\"first_divergence\":", f);
    if (!e->div.searched || !e->div.found) {
        fputs(e->div.searched ? "{\"found\":false,\"note\":" : "null", f);
        if (e->div.searched) {
            vw_json_str(f, e->div.note);
            fputc('}', f);
        }
        return;
    }
    fputs("{\"found\":true,\"op\":", f);
    vw_json_str(f, e->div.name);
    fprintf(f, ",\"step\":%lld,\"pos\":%lld,\"origin\":", (long long)e->div.step,
            (long long)e->div.pos);
    vw_json_str(f, e->div.origin ? e->div.origin : "");
    fputc('}', f);
}

static int print_json(FILE *f, const struct ex *e)
{
    const struct vw_attr *a = &e->run[0].attr;
    double *dc = malloc((size_t)a->n_comp * sizeof(double));
    double *dh = malloc((size_t)(a->n_layer * a->n_head) * sizeof(double));
    if (!dc || !dh) {
        free(dc);
        free(dh);
        return vw_error("out of memory");
    }
    fputs("{\"token\":", f);
    json_tok(f, e, e->t1);
    fputs(",\"vs_token\":", f);
    json_tok(f, e, e->t2);
    fputs(",\"model\":{\"path\":", f);
    vw_json_str(f, lm_model_path(e->m));
    fputs(",\"sha256\":", f);
    vw_json_str(f, e->model_sha);
    fputs("},\n\"run\":", f);
    json_run(f, e, &e->run[0]);
    if (e->n_runs == 2) {
        fputs(",\n\"ref\":", f);
        json_run(f, e, &e->run[1]);
        vs_deltas(e, dc, dh);
        json_diff(f, e, dc, dh);
    }
    fputs("}\n", f);
    free(dc);
    free(dh);
    return 0;
}

/* ---- the command ------------------------------------------------------------------------------
 */

static void ex_release(struct ex *e)
{
    for (int i = 0; i < 2; i++) {
        vw_lens_release(&e->run[i].lens);
        vw_attr_release(&e->run[i].attr);
        vw_xrun_release(&e->run[i].x);
        trc_reader_close(e->run[i].r);
    }
    lm_model_close(e->m);
}

static int explain(struct ex *e)
{
    int rc = open_traces(e);
    rc = rc ? rc : open_model(e);
    if (rc == 0) {
        pick_step(e);
    }
    rc = rc ? rc : load_runs(e);
    rc = rc ? rc : pick_tokens(e);
    rc = rc ? rc : compute(e);
    if (rc == 0 && e->n_runs == 2 && !e->o.no_diff) {
        find_divergence(e);
    }
    if (rc != 0) {
        return rc;
    }
    if (e->o.json) {
        return print_json(stdout, e);
    }
    const int bars = e->o.bars >= 0 ? e->o.bars : vw_isatty(stdout) ? BARS_UNICODE : BARS_NONE;
    if (e->n_runs == 2) {
        return print_vs(stdout, e, bars);
    }
    print_header(stdout, e);
    print_lens(stdout, e, &e->run[0]);
    print_attr(stdout, e, &e->run[0], bars);
    return 0;
}

int cmd_explain(int argc, char **argv)
{
    struct ex e;
    memset(&e, 0, sizeof e);
    e.o.step = e.o.pos = -1;
    e.o.bars = -1;
    int rc = parse_args(argc, argv, &e.o);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    rc = explain(&e);
    ex_release(&e);
    return rc;
}
