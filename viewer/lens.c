/*
 * lens.c - the logit lens over a trace: what the model would predict if the residual stream
 * stopped after the embedding, or after any layer's attention or FFN. Each residual goes
 * through the final RMSNorm (the model's output_norm.weight and the run's recorded eps) and the
 * output matrix with the engine's own kernels, on one row as the forward pass does, so the
 * point at the final residual reproduces the recorded logits bit for bit (vw_lens reports the
 * largest difference as a self-check). Residuals come from the trace (ffn_inp, l_out) or, where
 * the trace lacks them, are rebuilt as the previous residual plus the component (the same f32
 * addition the engine performs).
 */
#include "attrib_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vw_lens_logits(const lm_model *m, const float *x, float eps, float *logits)
{
    const int64_t n = lm_model_hparams(m)->n_embd;
    float *g = malloc((size_t)n * 2 * sizeof(float));
    if (!g) {
        return LM_ENOMEM;
    }
    int rc = vw_model_row(m, "output_norm.weight", 0, g, n);
    if (rc == 0) {
        lm_op_rms_norm(x, g, 1, n, eps, g + n);
        rc = lm_model_matmul(m, "output.weight", g + n, 1, logits);
    }
    free(g);
    return rc;
}

/* The residual after component `comp` (a slot) added to the residual at point i - 1. */
static int resid_plus(const struct vw_xrun *x, int64_t i, int64_t comp, float *dst, bool *derived,
                      const char **why)
{
    const float *c = x->row[comp];
    if (!c) {
        *why = x->why[comp];
        return -1;
    }
    if (vw_lens_resid(x, i - 1, dst, derived, why) < 0) {
        return -1;
    }
    for (int64_t j = 0; j < x->n_embd; j++) {
        dst[j] = c[j] + dst[j]; /* as the engine: lm_op_add(component, residual) */
    }
    *derived = true;
    return 0;
}

int vw_lens_resid(const struct vw_xrun *x, int64_t i, float *dst, bool *derived, const char **why)
{
    const float *rec;
    *derived = false;
    *why = NULL;
    if (i == 0) {
        rec = x->row[VW_XS_EMBD];
        *why = rec ? NULL : x->why[VW_XS_EMBD];
    } else {
        const int64_t l = (i - 1) / 2;
        const bool attn = (i - 1) % 2 == 0;
        rec = x->row[vw_xslot_layer(l, attn ? VW_XL_RES_ATTN : VW_XL_RES_FFN)];
        if (!rec && !attn && l == x->n_layer - 1) {
            rec = x->row[VW_XS_FINAL];
        }
        if (!rec) {
            return resid_plus(x, i, vw_xslot_layer(l, attn ? VW_XL_ATTN : VW_XL_FFN), dst, derived,
                              why);
        }
    }
    if (!rec) {
        return -1;
    }
    memcpy(dst, rec, (size_t)x->n_embd * sizeof(float));
    return 0;
}

/* Inserts (id, v) into the best-first list top (n of cap); ties keep the lower id first. */
static void topk_push(int32_t *top, float *val, int *n, int cap, int32_t id, float v)
{
    if (*n == cap && !(v > val[cap - 1])) {
        return;
    }
    int i = *n < cap ? (*n)++ : cap - 1;
    while (i > 0 && v > val[i - 1]) {
        top[i] = top[i - 1];
        val[i] = val[i - 1];
        i--;
    }
    top[i] = id;
    val[i] = v;
}

/* Logit, probability, rank and top-k of tok (and tok2's logit) from a logits row. */
static void point_stats(const float *lg, int64_t nv, int32_t tok, int32_t tok2, int k,
                        struct vw_lens_point *p)
{
    double mx = -HUGE_VAL, sum = 0;
    int64_t above = 0;
    p->n_top = 0;
    for (int64_t j = 0; j < nv; j++) {
        mx = (double)lg[j] > mx ? (double)lg[j] : mx;
        above += lg[j] > lg[tok] || (lg[j] == lg[tok] && j < tok);
        topk_push(p->top, p->top_logit, &p->n_top, k, (int32_t)j, lg[j]);
    }
    for (int64_t j = 0; j < nv; j++) {
        sum += exp((double)lg[j] - mx);
    }
    p->logit = (double)lg[tok];
    p->logit2 = tok2 >= 0 ? (double)lg[tok2] : (double)NAN;
    p->prob = exp((double)lg[tok] - mx) / sum;
    p->rank = above + 1;
    for (int i = 0; i < p->n_top; i++) {
        p->top_prob[i] = exp((double)p->top_logit[i] - mx) / sum;
    }
}

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        m = d > m || isnan(d) ? d : m;
    }
    return m;
}

static int lens_alloc(const struct vw_xrun *x, int k, struct vw_lens *l)
{
    memset(l, 0, sizeof *l);
    l->n_points = 1 + 2 * x->n_layer;
    l->k = k;
    l->first_top1 = l->first_topk = -1;
    l->final_vs_recorded = (double)NAN;
    l->p = calloc((size_t)l->n_points, sizeof *l->p);
    if (!l->p) {
        return -1;
    }
    for (int64_t i = 0; i < l->n_points; i++) {
        struct vw_lens_point *p = &l->p[i];
        p->layer = i == 0 ? -1 : (int)((i - 1) / 2);
        p->kind = i == 0 ? VW_LENS_EMBD : (i - 1) % 2 == 0 ? VW_LENS_ATTN : VW_LENS_FFN;
        p->logit = p->logit2 = p->prob = (double)NAN;
    }
    return 0;
}

int vw_lens_compute(const lm_model *m, const struct vw_xrun *x, int32_t tok, int32_t tok2, int k,
                    struct vw_lens *out, char *err, size_t errlen)
{
    float *res = malloc((size_t)x->n_embd * sizeof(float));
    float *lg = malloc((size_t)x->n_vocab * sizeof(float));
    int rc = res && lg &&
                     lens_alloc(x,
                                k < 1                  ? 1
                                : k > VW_LENS_TOPK_MAX ? VW_LENS_TOPK_MAX
                                                       : k,
                                out) == 0
                 ? 0
                 : LM_ENOMEM;
    for (int64_t i = 0; rc == 0 && i < out->n_points; i++) {
        struct vw_lens_point *p = &out->p[i];
        const bool final = i == out->n_points - 1 && x->last_pos;
        if (vw_lens_resid(x, i, res, &p->derived, &p->why) < 0) {
            if (!final || !x->row[VW_XS_LOGITS]) {
                continue;
            }
            memcpy(lg, x->row[VW_XS_LOGITS], (size_t)x->n_vocab * sizeof(float));
            p->from_logits = true;
            p->why = NULL;
        } else if ((rc = vw_lens_logits(m, res, (float)x->eps, lg)) < 0) {
            break;
        }
        p->known = true;
        point_stats(lg, x->n_vocab, tok, tok2, out->k, p);
        out->first_top1 = out->first_top1 < 0 && p->rank == 1 ? i : out->first_top1;
        out->first_topk = out->first_topk < 0 && p->rank <= out->k ? i : out->first_topk;
        if (final && !p->from_logits && x->row[VW_XS_LOGITS]) {
            out->final_vs_recorded = max_abs_diff(lg, x->row[VW_XS_LOGITS], x->n_vocab);
        }
    }
    free(res);
    free(lg);
    if (rc < 0) {
        snprintf(err, errlen, "%s: logit lens: %s", lm_model_path(m), lm_strerror(rc));
        return -1;
    }
    return 0;
}

void vw_lens_release(struct vw_lens *l)
{
    if (!l) {
        return;
    }
    free(l->p);
    memset(l, 0, sizeof *l);
}
