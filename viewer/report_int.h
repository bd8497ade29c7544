/*
 * report_int.h - `lltrace report`: one self-contained HTML file about one run, or two runs A
 * (the reference) and B, that a person who has never used lltrace can read and attach to a bug
 * report.
 *
 * Two halves. cmd_report.c collects: it opens the traces (through the diff engine of
 * align_int.h when there are two), gathers per-run facts (settings, tokens with their
 * probabilities, steps, the residual stream's RMS after each stage, op time per kind, ops with
 * NaN/Inf), the diff (settings that differ, first divergence, hints, error per layer x op, per
 * step), and the explain data (logit lens and direct logit attribution of attrib_int.h) when the
 * model file is available. report_html.c renders that into HTML with inline CSS and inline SVG:
 * no script, no network. Every number shown comes from the traces (and, for explain, the model
 * the traces were recorded with); every text taken from a trace is escaped.
 */
#ifndef VW_REPORT_INT_H
#define VW_REPORT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "align_int.h"
#include "attrib_int.h"
#include "hints_int.h"
#include "lm.h"

struct vw_report_opts {
    const char *a, *b;  /* the traces; b NULL for a one-run report */
    const char *model;  /* the model file for explain; NULL: the path A records */
    int64_t step;       /* the explained step; -1: the first step whose tokens differ, else 0 */
    const char *token;  /* the explained token (piece or id); NULL: the sampled one */
    const char *argv_s; /* the command line, shown in the footer (may be NULL) */
};

/* One run setting (a runs column) as text in both traces. */
struct vw_rep_setting {
    char key[24];
    char a[200], b[200];
    bool differs; /* known on both sides and different */
};

#define VW_REP_MAX_SETTINGS  40
#define VW_REP_MAX_KINDS     32
#define VW_REP_MAX_NONFINITE 40

struct vw_rep_step {
    int64_t step, pos0, n_tokens;
    int64_t elapsed_ns; /* -1 when not measured */
    int32_t next_id;    /* the token sampled after the step, -1 when none */
};

struct vw_rep_kind {
    char kind[24];
    int64_t n_ops;
    int64_t ns; /* summed elapsed time of the ops that measured it */
};

struct vw_rep_nonfinite {
    int64_t step;
    char name[64], role[16];
    int64_t n_nan, n_inf;
};

/* What one trace says about itself. */
struct vw_rep_run {
    struct vw_trace *t;        /* borrowed from the report (its own or the diff's) */
    double *tok_prob;          /* (t->n_tok) probability of each sampled token, NaN if none */
    double *tok_logit;         /* (t->n_tok) its logit, NaN if none */
    struct vw_rep_step *steps; /* (n_steps) completed steps in order */
    int64_t n_steps;
    int64_t n_layer;  /* 1 + the largest layer of the ops */
    int64_t n_points; /* 1 + 2 n_layer: embedding, then attention and FFN per layer */
    double *rms;      /* (n_steps, n_points) residual RMS after each stage, NaN */
    struct vw_rep_kind kinds[VW_REP_MAX_KINDS]; /* by total time, largest first */
    int n_kinds;
    int64_t op_ns, step_ns; /* summed op and step times (-1 when none measured) */
    struct vw_rep_nonfinite nf[VW_REP_MAX_NONFINITE]; /* the first ones, in (step, seq) order */
    int n_nf;
    int64_t n_nf_total; /* op tensors holding a NaN or an Inf (the mask's -inf apart) */
    int64_t n_mask;     /* attention-score tensors whose only infinities are the causal mask */
};

/* The logit lens and attribution of one step (cmd_explain's numbers). */
struct vw_rep_explain {
    bool available; /* false: why says why (no model, hash mismatch, ...) */
    char why[512];
    lm_model *m;
    const char *model_sha256; /* borrowed from m */
    int64_t step;
    bool step_differs;  /* the step is the first where the runs sampled different tokens */
    int32_t tok;        /* the explained token */
    int32_t sampled[2]; /* the token each run sampled after the step, -1 */
    struct vw_xrun x[2];
    struct vw_lens lens[2];
    struct vw_attr attr[2];
    trc_reader *r[2]; /* readers opened for explain */
};

struct vw_report {
    struct vw_report_opts o;
    int n_runs;             /* 1 or 2 */
    struct vw_trace single; /* the trace of a one-run report */
    struct vw_diff d;       /* two runs: d.ref is A, d.cand is B */
    bool have_diff;
    struct vw_rep_run run[2];
    struct vw_rep_setting set[VW_REP_MAX_SETTINGS];
    int n_set;
    int64_t tokens_differ; /* first token index where A and B differ, -1 */
    struct vw_hint hints[VW_HINT_MAX];
    int n_hints;
    struct vw_rep_explain ex;
};

/* Collects everything a report shows (cmd_report.c). Returns 0, or -1 with "<file>: <reason>"
 * in err for what makes a report impossible (an unreadable trace, an explicit -m that cannot be
 * opened or does not match). A missing recorded model only disables explain (ex.why). Release
 * with vw_report_release, also after a failure. Prints nothing. */
int vw_report_collect(struct vw_report *r, const struct vw_report_opts *o, char *err,
                      size_t errlen);
void vw_report_release(struct vw_report *r);

/* Writes the report as one HTML document (report_html.c). Returns 0, or -1 on a write error. */
int vw_report_html(FILE *f, const struct vw_report *r);

/* Writes s as HTML text (also safe inside a double- or single-quoted attribute): & < > " ' as
 * entities, control bytes as a visible "\xNN", invalid UTF-8 as U+FFFD. NULL writes nothing. */
void vw_html_text(FILE *f, const char *s);

#endif
