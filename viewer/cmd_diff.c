/*
 * cmd_diff.c - `lltrace diff A.trace B.trace`: where two runs part. A is the reference (b in the
 * metrics), B the candidate. Prints, in this order: the settings that differ, the first
 * divergence (step, layer, op, position, worst element, local or propagated, and its inputs),
 * hints, a layer x op table of the error, a per-step summary of decode steps, and totals.
 * --json prints the same as one JSON object. Exit 0 when the traces agree within tolerance,
 * 1 when they diverge (or on failure), 2 on usage errors. The analysis is in align.c, hints.c
 * and compare.c; this file only formats.
 */
#include "align_int.h"
#include "cmds.h"
#include "hints_int.h"
#include "vw.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: lltrace diff A.trace B.trace [--atol X] [--rtol Y] [--json] [--steps]\n"
    "                    [--color auto|always|never]\n"
    "\n"
    "Aligns the ops of two traces by canonical name and absolute position (a prompt batch of\n"
    "20 rows lines up with 20 decode steps) and compares every op's output of A (the\n"
    "reference) with B's rows at the same positions.\n"
    "\n"
    "  --atol X     absolute tolerance (default 1e-5)\n"
    "  --rtol Y     relative tolerance (default 1e-4)\n"
    "  --json       one JSON object on stdout\n"
    "  --steps      list every step in the per-step summary\n"
    "  --color W    color the table: auto (on a terminal), always, never\n"
    "\n"
    "What compare means, for reference b (A) and candidate a (B), over the elements both hold:\n"
    "bitwise equality first (content hash), then max |a-b|, max relative error |a-b|/|b|,\n"
    "NMSE = sum (a-b)^2 / sum b^2, cosine similarity, max ULP distance. An element fails when\n"
    "|a-b| > atol + rtol*|b| (NaN/Inf must match). An op diverges when an element fails; it is\n"
    "a LOCAL divergence when its inputs agree, else PROPAGATED. The first divergence is the\n"
    "earliest failing op of A in (step, seq) order. The defaults keep two correct f32 engines\n"
    "in agreement (they differ by a few ulps) and still catch one f16 rounding. Imported text\n"
    "dumps hold some elements at 4 decimals: only those are compared, with the print precision\n"
    "added to atol, and the report counts them as partial.\n"
    "\n"
    "Exit status: 0 the traces agree within tolerance, 1 they diverge (or an error), 2 usage.\n";

struct dopts {
    struct vw_cmp_tol tol;
    bool json, steps, color;
};

/* ---- settings -------------------------------------------------------------------------------- */

struct setting {
    char key[24];
    char a[200], b[200];
};

static void str_or_none(char *buf, size_t cap, const char *s)
{
    snprintf(buf, cap, "%s", s && *s ? s : "(none)");
}

/* Known on both sides and different (an import knows few settings: unknown is no difference). */
static bool differ(const char *a, const char *b)
{
    static const char *const unknown[] = {"(none)", "nan", "-1"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        if (strcmp(a, unknown[i]) == 0 || strcmp(b, unknown[i]) == 0) {
            return false;
        }
    }
    return strcmp(a, b) != 0;
}

#define SET_STR(f)                                                                                 \
    do {                                                                                           \
        str_or_none(s[n].a, sizeof s[n].a, ra->f);                                                 \
        str_or_none(s[n].b, sizeof s[n].b, rb->f);                                                 \
        snprintf(s[n].key, sizeof s[n].key, "%s", #f);                                             \
        n += differ(s[n].a, s[n].b) && n < cap - 1;                                                \
    } while (0)
#define SET_NUM(f, fmt, cast)                                                                      \
    do {                                                                                           \
        snprintf(s[n].a, sizeof s[n].a, fmt, (cast)ra->f);                                         \
        snprintf(s[n].b, sizeof s[n].b, fmt, (cast)rb->f);                                         \
        snprintf(s[n].key, sizeof s[n].key, "%s", #f);                                             \
        n += differ(s[n].a, s[n].b) && n < cap - 1;                                                \
    } while (0)

/* The run settings that differ between the two traces. Returns how many. */
static int settings_diff(const struct trc_run_info *ra, const struct trc_run_info *rb,
                         struct setting *s, int cap)
{
    int n = 0;
    SET_STR(model_sha256);
    SET_STR(model_path);
    SET_STR(source);
    SET_NUM(n_layer, "%lld", long long);
    SET_NUM(n_embd, "%lld", long long);
    SET_NUM(n_head, "%lld", long long);
    SET_NUM(n_head_kv, "%lld", long long);
    SET_NUM(head_dim, "%lld", long long);
    SET_NUM(n_rot, "%lld", long long);
    SET_NUM(n_ff, "%lld", long long);
    SET_NUM(n_vocab, "%lld", long long);
    SET_NUM(rope_theta, "%.9g", double);
    SET_NUM(rope_freq_scale, "%.9g", double);
    SET_STR(rope_mode);
    SET_NUM(rms_eps, "%.9g", double);
    SET_STR(weight_type);
    SET_STR(kv_type);
    SET_STR(faults);
    SET_STR(prompt);
    SET_STR(chat_template);
    SET_NUM(temp, "%g", double);
    SET_NUM(top_k, "%lld", long long);
    SET_NUM(top_p, "%g", double);
    SET_NUM(seed, "%lld", long long);
    SET_NUM(n_threads, "%lld", long long);
    SET_STR(build_version);
    SET_STR(build_commit);
    SET_STR(build_compiler);
    SET_STR(build_flags);
    SET_STR(simd);
    return n;
}

/* First index where the token sequences differ, or -1 when identical. */
static int64_t tokens_diff(const struct vw_trace *a, const struct vw_trace *b)
{
    const int64_t n = a->n_tok < b->n_tok ? a->n_tok : b->n_tok;
    if (n == 0) {
        return -1; /* one side recorded no tokens (an import): nothing to compare */
    }
    for (int64_t i = 0; i < n; i++) {
        if (a->tok_ids[i] != b->tok_ids[i]) {
            return i;
        }
    }
    return a->n_tok == b->n_tok ? -1 : n;
}

static void print_tokens(const struct vw_trace *t, int64_t from, const char *label)
{
    printf("    %s:", label);
    for (int64_t i = from; i < t->n_tok && i < from + 8; i++) {
        printf(" %d'%s'", t->tok_ids[i], t->tok_pieces[i] ? t->tok_pieces[i] : "");
    }
    printf("%s (%lld tokens)\n", from + 8 < t->n_tok ? " ..." : "", (long long)t->n_tok);
}

static void print_settings(const struct vw_diff *d)
{
    struct setting s[40];
    const int n = settings_diff(&d->ref.run, &d->cand.run, s, 40);
    const int64_t td = tokens_diff(&d->ref, &d->cand);
    printf("settings that differ:%s\n", n == 0 && td < 0 ? " none" : "");
    for (int i = 0; i < n; i++) {
        printf("  %-16s A %-24s B %s\n", s[i].key, s[i].a, s[i].b);
    }
    if (td >= 0) {
        printf("  %-16s differ from index %lld\n", "tokens", (long long)td);
        print_tokens(&d->ref, td, "A");
        print_tokens(&d->cand, td, "B");
    }
}

/* ---- the first divergence ----------------------------------------------------------------------
 */

static void print_cmp_line(const struct vw_cmp *c, const char *indent)
{
    printf("%smax_abs %.3g  max_rel %.3g  nmse %.3g  cos %.9g  max_ulp %lld  (%lld of %lld "
           "elements fail)\n",
           indent, c->max_abs, c->max_rel, c->nmse, c->cos, (long long)c->max_ulp,
           (long long)c->n_fail, (long long)c->n);
}

static void print_inputs(const struct vw_diff *d)
{
    for (int k = 0; k < d->n_inputs; k++) {
        const struct vw_diff_input *in = &d->inputs[k];
        if (!in->known) {
            printf("    %-4s not recorded in both\n", in->role);
        } else if (in->oc.c.bitwise) {
            printf("    %-4s identical\n", in->role);
        } else {
            printf("    %-4s %s: max_abs %.3g, nmse %.3g, first at position %lld\n", in->role,
                   vw_cmp_pass(&in->oc.c) ? "within tolerance" : "DIFFERS", in->oc.c.max_abs,
                   in->oc.c.nmse, (long long)in->oc.fail_pos);
        }
    }
}

static void print_first(const struct vw_diff *d)
{
    char within[64];
    if (d->first_fail < 0) {
        printf("first divergence: none (every op agrees within atol %g, rtol %g)\n", d->tol.atol,
               d->tol.rtol);
        if (d->first_diff >= 0) {
            const struct vw_top *o = &d->ref.ops[d->first_diff];
            printf("first bitwise difference: step %lld %s (within tolerance, max_abs %.3g)\n",
                   (long long)o->step, o->name, d->ops[d->first_diff].oc.c.max_abs);
        }
        return;
    }
    const struct vw_top *o = &d->ref.ops[d->first_fail];
    const struct vw_opcmp *oc = &d->ops[d->first_fail].oc;
    char layer[16] = "-";
    if (o->layer >= 0) {
        snprintf(layer, sizeof layer, "%d", o->layer);
    }
    printf("first divergence: step %lld, layer %s, %s (%s), position %lld\n", (long long)o->step,
           layer, o->name, o->kind, (long long)oc->fail_pos);
    vw_fmt_within(&d->ref, d->first_fail, oc->worst_within, within, sizeof within);
    printf("  worst element: position %lld %s: A = %.9g  B = %.9g\n", (long long)oc->worst_pos,
           within, (double)oc->c.worst_b, (double)oc->c.worst_a);
    print_cmp_line(&oc->c, "  ");
    printf("  %s%s\n", vw_origin_name(d->origin),
           d->origin == VW_ORIGIN_LOCAL ? ": its inputs agree, its output does not" : "");
    print_inputs(d);
    if (oc->partial) {
        printf("  partial: only the elements both traces hold were compared (atol %g)\n", oc->atol);
    }
    if (d->first_diff >= 0 && d->first_diff != d->first_fail) {
        const struct vw_top *f = &d->ref.ops[d->first_diff];
        printf("  first bitwise difference (within tolerance): step %lld %s, max_abs %.3g\n",
               (long long)f->step, f->name, d->ops[d->first_diff].oc.c.max_abs);
    }
}

/* ---- layer x op table ------------------------------------------------------------------------ */

static const char *const col_names[] = {
    "attn_norm", "attn_q", "attn_k",     "attn_v",  "rope_q",   "rope_k",  "cache_k",
    "cache_v",   "kq",     "kq_softmax", "kqv",     "attn_out", "ffn_inp", "ffn_norm",
    "ffn_gate",  "ffn_up", "ffn_act",    "ffn_out", "l_out"};
static const char *const col_short[] = {"anrm", "q",  "k",   "v",    "rq",  "rk",   "ck",
                                        "cv",   "kq", "sm",  "kqv",  "ao",  "finp", "fnrm",
                                        "gate", "up", "act", "fout", "lout"};
#define N_COLS ((int)(sizeof col_names / sizeof col_names[0]))

struct cell {
    bool any, all_identical, fail;
    double nmse;
};

/* Column of a canonical name "blk.L.<op>", or -1. */
static int column_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (int c = 0; dot && c < N_COLS; c++) {
        if (strcmp(dot + 1, col_names[c]) == 0) {
            return c;
        }
    }
    return -1;
}

static void cell_add(struct cell *c, const struct vw_opdiff *od)
{
    if (!od->compared) {
        return;
    }
    if (!c->any) {
        c->all_identical = true;
    }
    c->any = true;
    c->all_identical = c->all_identical && od->oc.c.bitwise;
    c->fail = c->fail || od->fail;
    const double v = isnan(od->oc.c.nmse) ? (double)INFINITY : od->oc.c.nmse;
    c->nmse = v > c->nmse ? v : c->nmse;
}

static void cell_print(const struct cell *c, bool color)
{
    char t[16];
    if (!c->any) {
        snprintf(t, sizeof t, ".");
    } else if (c->all_identical) {
        snprintf(t, sizeof t, "=");
    } else if (c->nmse <= 0) {
        snprintf(t, sizeof t, "~%s", c->fail ? "!" : "");
    } else if (!isfinite(c->nmse)) {
        snprintf(t, sizeof t, "inf%s", c->fail ? "!" : "");
    } else {
        snprintf(t, sizeof t, "%d%s", (int)floor(log10(c->nmse)), c->fail ? "!" : "");
    }
    if (color) {
        printf(" %s%5s\033[0m", c->fail ? "\033[31m" : (c->all_identical ? "\033[32m" : "\033[33m"),
               t);
    } else {
        printf(" %5s", t);
    }
}

static void print_table(const struct vw_diff *d, bool color)
{
    int64_t n_layer = 0;
    for (int64_t i = 0; i < d->ref.n_ops; i++) {
        n_layer = d->ref.ops[i].layer + 1 > n_layer ? d->ref.ops[i].layer + 1 : n_layer;
    }
    struct cell *cells = calloc((size_t)(n_layer * N_COLS + 3), sizeof *cells);
    if (!cells) {
        return;
    }
    struct cell *other = cells + n_layer * N_COLS; /* tok_embd, output_norm, output */
    /* The step of the first divergence tells most (later steps inherit everything); with no
     * divergence, the worst over all steps. */
    const int64_t step = d->first_fail >= 0 ? d->ref.ops[d->first_fail].step : -1;
    for (int64_t i = 0; i < d->ref.n_ops; i++) {
        const struct vw_top *o = &d->ref.ops[i];
        const int c = column_of(o->name);
        if (step >= 0 && o->step != step) {
            continue;
        }
        if (o->layer >= 0 && c >= 0) {
            cell_add(&cells[o->layer * N_COLS + c], &d->ops[i]);
        } else {
            const int k = !strcmp(o->name, "tok_embd")      ? 0
                          : !strcmp(o->name, "output_norm") ? 1
                                                            : 2;
            cell_add(&other[k], &d->ops[i]);
        }
    }
    if (step >= 0) {
        printf("\nerror per layer x op at step %lld", (long long)step);
    } else {
        printf("\nerror per layer x op, worst step");
    }
    printf(" (log10 NMSE; = identical, ~ NMSE 0 but not bitwise, ! diverges, . not compared):\n"
           "  layer");
    for (int c = 0; c < N_COLS; c++) {
        printf(" %5s", col_short[c]);
    }
    printf("\n");
    for (int64_t l = 0; l < n_layer; l++) {
        printf("  %5lld", (long long)l);
        for (int c = 0; c < N_COLS; c++) {
            cell_print(&cells[l * N_COLS + c], color);
        }
        printf("\n");
    }
    printf("  tok_embd");
    cell_print(&other[0], color);
    printf("   output_norm");
    cell_print(&other[1], color);
    printf("   output");
    cell_print(&other[2], color);
    printf("\n");
    free(cells);
}

/* ---- steps and totals ------------------------------------------------------------------------ */

struct step_sum {
    int64_t step, pos0, n_ops, n_identical, n_fail, first_fail;
    double nmse;
};

/* Per-step sums over the reference's steps (ops are in step order). *n gets the count. */
static struct step_sum *step_sums(const struct vw_diff *d, int64_t *n)
{
    struct step_sum *s = calloc((size_t)(d->ref.n_ops + 1), sizeof *s);
    *n = 0;
    for (int64_t i = 0; s && i < d->ref.n_ops; i++) {
        const struct vw_top *o = &d->ref.ops[i];
        const struct vw_opdiff *od = &d->ops[i];
        if (*n == 0 || s[*n - 1].step != o->step) {
            s[*n] = (struct step_sum){o->step, o->pos0, 0, 0, 0, -1, 0.0};
            (*n)++;
        }
        struct step_sum *x = &s[*n - 1];
        x->pos0 = o->pos0 < x->pos0 ? o->pos0 : x->pos0;
        x->n_ops += od->compared;
        x->n_identical += od->compared && od->oc.c.bitwise;
        x->n_fail += od->fail;
        if (od->fail && x->first_fail < 0) {
            x->first_fail = i;
        }
        x->nmse = od->compared && od->oc.c.nmse > x->nmse ? od->oc.c.nmse : x->nmse;
    }
    return s;
}

static void print_steps(const struct vw_diff *d, bool all)
{
    int64_t n;
    struct step_sum *s = step_sums(d, &n);
    if (!s || n <= 1) {
        free(s);
        return;
    }
    printf("\nper step (step 0 is the prompt batch):\n");
    for (int64_t k = 0; k < n; k++) {
        if (!all && k >= 12 && k < n - 2) {
            if (k == 12) {
                printf("  ... %lld more steps (--steps lists them all)\n", (long long)(n - 14));
            }
            continue;
        }
        printf("  step %3lld pos %4lld: %4lld ops, %4lld identical, %4lld diverge, max nmse "
               "%-9.3g%s%s\n",
               (long long)s[k].step, (long long)s[k].pos0, (long long)s[k].n_ops,
               (long long)s[k].n_identical, (long long)s[k].n_fail, s[k].nmse,
               s[k].first_fail >= 0 ? " first " : "",
               s[k].first_fail >= 0 ? d->ref.ops[s[k].first_fail].name : "");
    }
    free(s);
}

static void print_totals(const struct vw_diff *d)
{
    const double mb = (double)d->bytes / 1e6;
    printf("\n%lld ops compared: %lld identical, %lld within tolerance, %lld diverge",
           (long long)d->n_compared, (long long)d->n_identical,
           (long long)(d->n_compared - d->n_identical - d->n_fail), (long long)d->n_fail);
    if (d->n_partial) {
        printf("; %lld partial (%lld stats only)", (long long)d->n_partial,
               (long long)d->n_stats_only);
    }
    printf("\n");
    if (d->n_ref_only || d->n_cand_only) {
        printf("not aligned: %lld ops only in A, %lld only in B\n", (long long)d->n_ref_only,
               (long long)d->n_cand_only);
    }
    printf("%.1f MB of tensor data compared in %.3f s (%.0f MB/s)\n", mb, d->seconds,
           d->seconds > 0 ? mb / d->seconds : 0.0);
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static void jstr(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        const unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
        } else if (ch < 0x20) {
            printf("\\u%04x", ch);
        } else {
            putchar(ch);
        }
    }
    putchar('"');
}

static void jnum(double v)
{
    if (isfinite(v)) {
        printf("%.9g", v);
    } else {
        printf("null");
    }
}

static void json_cmp(const struct vw_cmp *c)
{
    printf("{\"n\":%lld,\"n_fail\":%lld,\"bitwise\":%s,\"max_abs\":", (long long)c->n,
           (long long)c->n_fail, c->bitwise ? "true" : "false");
    jnum(c->max_abs);
    printf(",\"max_rel\":");
    jnum(c->max_rel);
    printf(",\"nmse\":");
    jnum(c->nmse);
    printf(",\"cos\":");
    jnum(c->cos);
    printf(",\"max_ulp\":%lld}", (long long)c->max_ulp);
}

static void json_first(const struct vw_diff *d)
{
    char within[64];
    const struct vw_top *o = &d->ref.ops[d->first_fail];
    const struct vw_opcmp *oc = &d->ops[d->first_fail].oc;
    vw_fmt_within(&d->ref, d->first_fail, oc->worst_within, within, sizeof within);
    printf("{\"step\":%lld,\"layer\":%d,\"op\":", (long long)o->step, o->layer);
    jstr(o->name);
    printf(",\"kind\":");
    jstr(o->kind);
    printf(",\"position\":%lld,\"origin\":", (long long)oc->fail_pos);
    jstr(d->origin == VW_ORIGIN_LOCAL        ? "local"
         : d->origin == VW_ORIGIN_PROPAGATED ? "propagated"
         : d->origin == VW_ORIGIN_TOKENS     ? "tokens"
                                             : "unknown");
    printf(",\"worst\":{\"position\":%lld,\"index\":", (long long)oc->worst_pos);
    jstr(within);
    printf(",\"a\":");
    jnum((double)oc->c.worst_b);
    printf(",\"b\":");
    jnum((double)oc->c.worst_a);
    printf("},\"partial\":%s,\"metrics\":", oc->partial ? "true" : "false");
    json_cmp(&oc->c);
    printf(",\"inputs\":[");
    for (int k = 0; k < d->n_inputs; k++) {
        printf("%s{\"role\":", k ? "," : "");
        jstr(d->inputs[k].role);
        printf(",\"known\":%s,\"agree\":%s}", d->inputs[k].known ? "true" : "false",
               d->inputs[k].known && vw_cmp_pass(&d->inputs[k].oc.c) ? "true" : "false");
    }
    printf("]}");
}

static void json_ops(const struct vw_diff *d)
{
    bool first = true;
    printf(",\"ops\":[");
    for (int64_t i = 0; i < d->ref.n_ops; i++) {
        const struct vw_opdiff *od = &d->ops[i];
        if (!od->compared || (od->oc.c.bitwise && !od->fail)) {
            continue; /* identical ops are counted, not listed */
        }
        printf("%s\n{\"step\":%lld,\"op\":", first ? "" : ",", (long long)d->ref.ops[i].step);
        jstr(d->ref.ops[i].name);
        printf(",\"fail\":%s,\"partial\":%s,\"metrics\":", od->fail ? "true" : "false",
               od->oc.partial ? "true" : "false");
        json_cmp(&od->oc.c);
        printf("}");
        first = false;
    }
    printf("]");
}

static void print_json(const struct vw_diff *d, const struct vw_hint *h, int n_hints)
{
    struct setting s[40];
    const int n = settings_diff(&d->ref.run, &d->cand.run, s, 40);
    printf("{\"a\":");
    jstr(d->ref.path);
    printf(",\"b\":");
    jstr(d->cand.path);
    printf(",\"agree\":%s,\"atol\":%.9g,\"rtol\":%.9g,\"settings\":[",
           d->first_fail < 0 ? "true" : "false", d->tol.atol, d->tol.rtol);
    for (int i = 0; i < n; i++) {
        printf("%s{\"key\":", i ? "," : "");
        jstr(s[i].key);
        printf(",\"a\":");
        jstr(s[i].a);
        printf(",\"b\":");
        jstr(s[i].b);
        printf("}");
    }
    printf("],\"tokens_differ_at\":%lld,\"first_divergence\":",
           (long long)tokens_diff(&d->ref, &d->cand));
    if (d->first_fail >= 0) {
        json_first(d);
    } else {
        printf("null");
    }
    printf(",\"first_difference\":");
    if (d->first_diff >= 0) {
        jstr(d->ref.ops[d->first_diff].name);
    } else {
        printf("null");
    }
    printf(",\"hints\":[");
    for (int i = 0; i < n_hints; i++) {
        printf("%s{\"key\":", i ? "," : "");
        jstr(h[i].key);
        printf(",\"text\":");
        jstr(h[i].text);
        printf("}");
    }
    printf("]");
    json_ops(d);
    printf(",\"totals\":{\"compared\":%lld,\"identical\":%lld,\"diverge\":%lld,\"partial\":%lld,"
           "\"stats_only\":%lld,\"only_in_a\":%lld,\"only_in_b\":%lld,\"bytes\":%lld,\"seconds\":",
           (long long)d->n_compared, (long long)d->n_identical, (long long)d->n_fail,
           (long long)d->n_partial, (long long)d->n_stats_only, (long long)d->n_ref_only,
           (long long)d->n_cand_only, (long long)d->bytes);
    jnum(d->seconds);
    printf("}}\n");
}

/* ---- command -----------------------------------------------------------------------------------
 */

static int parse(int argc, char **argv, struct dopts *o)
{
    static const struct option longs[] = {{"atol", required_argument, NULL, 'a'},
                                          {"rtol", required_argument, NULL, 'r'},
                                          {"json", no_argument, NULL, 'j'},
                                          {"steps", no_argument, NULL, 's'},
                                          {"color", required_argument, NULL, 'c'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    int ch;
    o->tol.atol = VW_CMP_ATOL;
    o->tol.rtol = VW_CMP_RTOL;
    o->color = vw_isatty(stdout);
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        if (ch == 'h') {
            fputs(usage_text, stdout);
            return 0;
        } else if ((ch == 'a' && (vw_parse_f64(optarg, &o->tol.atol) < 0 || o->tol.atol < 0)) ||
                   (ch == 'r' && (vw_parse_f64(optarg, &o->tol.rtol) < 0 || o->tol.rtol < 0))) {
            return vw_usage_error("diff", "'%s' is not a tolerance (a number >= 0)", optarg);
        } else if (ch == 'c' && strcmp(optarg, "auto") && strcmp(optarg, "always") &&
                   strcmp(optarg, "never")) {
            return vw_usage_error("diff", "--color takes auto, always or never, not '%s'", optarg);
        } else if (ch == 'c') {
            o->color = !strcmp(optarg, "always") || (!strcmp(optarg, "auto") && vw_isatty(stdout));
        } else if (ch == 'j' || ch == 's') {
            *(ch == 'j' ? &o->json : &o->steps) = true;
        } else if (ch != 'a' && ch != 'r') {
            return vw_usage_error("diff", "unknown option");
        }
    }
    if (argc - optind > 2) {
        return vw_usage_error("diff", "expected two traces, A (reference) and B; '%s' is a third",
                              argv[optind + 2]);
    }
    if (argc - optind != 2) {
        return vw_usage_error("diff", "expected two traces, A (reference) and B");
    }
    return -1;
}

int cmd_diff(int argc, char **argv)
{
    struct dopts o = {{0, 0}, false, false, false};
    struct vw_diff d;
    struct vw_hint hints[VW_HINT_MAX];
    char err[512];
    int rc = parse(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }
    if (vw_diff_run(&d, argv[optind], argv[optind + 1], &o.tol, err, sizeof err) < 0) {
        vw_diff_release(&d);
        return vw_error("%s", err);
    }
    const int n_hints = vw_hints_find(&d, hints, VW_HINT_MAX);
    if (o.json) {
        print_json(&d, hints, n_hints);
    } else {
        printf("A (reference): %s\nB:             %s\n", d.ref.path, d.cand.path);
        print_settings(&d);
        print_first(&d);
        for (int i = 0; i < n_hints; i++) {
            printf("%s  hint [%s] %s\n", i == 0 ? "hints:\n" : "", hints[i].key, hints[i].text);
        }
        print_table(&d, o.color);
        print_steps(&d, o.steps);
        print_totals(&d);
    }
    rc = d.n_compared == 0
             ? vw_error("%s and %s have no op in common", argv[optind], argv[optind + 1])
             : (d.first_fail >= 0 ? 1 : 0);
    vw_diff_release(&d);
    return rc;
}
