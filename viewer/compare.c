/*
 * compare.c - the error metrics of DESIGN.md ("What compare means"), in one place: diff,
 * replay, explain and sql use these functions and nothing else to say whether two tensors
 * agree. See compare_int.h for the exact definitions. Pure math: no I/O, no allocation.
 */
#include "compare_int.h"

#include <math.h>
#include <string.h>

void vw_cmp_init(struct vw_cmp *c)
{
    memset(c, 0, sizeof *c);
    c->bitwise = true;
    c->cos = 1.0;
    c->worst_idx = -1;
    c->first_fail_idx = -1;
    c->worst_score = -1.0;
}

/* Maps float bits to integers ordered like the floats (-0 and +0 both map to 0). */
static int64_t ordered(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if (u & 0x80000000u) {
        return -(int64_t)(u & 0x7fffffffu);
    }
    return (int64_t)u;
}

int64_t vw_ulp_dist(float a, float b)
{
    int64_t d = ordered(a) - ordered(b);
    return d < 0 ? -d : d;
}

/* 0 when the non-finite status agrees (both NaN, or the same infinity, or both finite),
 * 1 when it does not. *both_finite tells whether the pair enters the metrics. */
static int nonfinite_mismatch(float a, float b, bool *both_finite)
{
    const bool fa = isfinite(a), fb = isfinite(b);
    *both_finite = fa && fb;
    if (fa && fb) {
        return 0;
    }
    if (isnan(a) && isnan(b)) {
        return 0;
    }
    if (isinf(a) && isinf(b) && signbit(a) == signbit(b)) {
        return 0;
    }
    return 1;
}

bool vw_cmp_elem_ok(float a, float b, const struct vw_cmp_tol *tol)
{
    bool finite;
    if (nonfinite_mismatch(a, b, &finite)) {
        return false;
    }
    if (!finite) {
        return true;
    }
    const double d = fabs((double)a - (double)b);
    return d <= tol->atol + tol->rtol * fabs((double)b);
}

static void note_worst(struct vw_cmp *c, double score, int64_t idx, float a, float b)
{
    if (score > c->worst_score) {
        c->worst_score = score;
        c->worst_idx = idx;
        c->worst_a = a;
        c->worst_b = b;
    }
}

static void count_nonfinite(struct vw_cmp *c, float a, float b)
{
    c->n_nan_a += isnan(a) ? 1 : 0;
    c->n_nan_b += isnan(b) ? 1 : 0;
    c->n_inf_a += isinf(a) ? 1 : 0;
    c->n_inf_b += isinf(b) ? 1 : 0;
}

/* One pair of finite values: accumulators, maxima and the tolerance test. */
static void add_finite(struct vw_cmp *c, float a, float b, int64_t idx,
                       const struct vw_cmp_tol *tol)
{
    const double da = (double)a, db = (double)b, d = fabs(da - db);
    c->s_err += d * d;
    c->s_bb += db * db;
    c->s_aa += da * da;
    c->s_ab += da * db;
    if (d > c->max_abs) {
        c->max_abs = d;
    }
    if (db != 0.0 && d / fabs(db) > c->max_rel) {
        c->max_rel = d / fabs(db);
    }
    const int64_t u = vw_ulp_dist(a, b);
    if (u > c->max_ulp) {
        c->max_ulp = u;
    }
    const double lim = tol->atol + tol->rtol * fabs(db);
    if (d > lim) {
        c->n_fail++;
        if (c->first_fail_idx < 0) {
            c->first_fail_idx = idx;
        }
    }
    if (d > 0) {
        note_worst(c, lim > 0 ? d / lim : (double)INFINITY, idx, a, b);
    }
}

void vw_cmp_add(struct vw_cmp *c, const float *a, const float *b, const uint8_t *known, int64_t n,
                int64_t idx0, const struct vw_cmp_tol *tol)
{
    for (int64_t i = 0; i < n; i++) {
        bool finite;
        if (known && !known[i]) {
            continue;
        }
        c->n++;
        if (c->bitwise && memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            c->bitwise = false;
        }
        count_nonfinite(c, a[i], b[i]);
        if (nonfinite_mismatch(a[i], b[i], &finite)) {
            c->n_nonfinite++;
            c->n_fail++;
            if (c->first_fail_idx < 0) {
                c->first_fail_idx = idx0 + i;
            }
            note_worst(c, (double)INFINITY, idx0 + i, a[i], b[i]);
        } else if (finite) {
            add_finite(c, a[i], b[i], idx0 + i, tol);
        }
    }
}

void vw_cmp_add_identical(struct vw_cmp *c, int64_t n)
{
    c->n += n;
}

void vw_cmp_merge(struct vw_cmp *c, const struct vw_cmp *o)
{
    c->n += o->n;
    c->n_fail += o->n_fail;
    c->n_nonfinite += o->n_nonfinite;
    c->n_nan_a += o->n_nan_a;
    c->n_nan_b += o->n_nan_b;
    c->n_inf_a += o->n_inf_a;
    c->n_inf_b += o->n_inf_b;
    c->bitwise = c->bitwise && o->bitwise;
    c->max_abs = fmax(c->max_abs, o->max_abs);
    c->max_rel = fmax(c->max_rel, o->max_rel);
    c->max_ulp = c->max_ulp > o->max_ulp ? c->max_ulp : o->max_ulp;
    if (c->first_fail_idx < 0) {
        c->first_fail_idx = o->first_fail_idx;
    }
    if (o->worst_idx >= 0) {
        note_worst(c, o->worst_score, o->worst_idx, o->worst_a, o->worst_b);
    }
    c->s_err += o->s_err;
    c->s_bb += o->s_bb;
    c->s_aa += o->s_aa;
    c->s_ab += o->s_ab;
}

void vw_cmp_finish(struct vw_cmp *c)
{
    if (c->s_bb > 0) {
        c->nmse = c->s_err / c->s_bb;
    } else {
        c->nmse = c->s_err > 0 ? (double)INFINITY : 0.0;
    }
    if (c->s_aa > 0 && c->s_bb > 0) {
        c->cos = c->s_ab / sqrt(c->s_aa * c->s_bb);
    } else {
        c->cos = (c->s_aa == 0 && c->s_bb == 0) ? 1.0 : 0.0;
    }
}

bool vw_cmp_pass(const struct vw_cmp *c)
{
    return c->n_fail == 0;
}
