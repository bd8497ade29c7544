/*
 * compare_int.h - the error metrics of lltrace, defined once (DESIGN.md "What compare means")
 * and shared by diff, replay, explain and sql.
 *
 * For a reference b and a candidate a over the elements both hold:
 *   bitwise   every compared element has the same bits (tensors: the content hash first);
 *   max_abs   max |a - b|;
 *   max_rel   max |a - b| / |b| over the elements with b != 0;
 *   nmse      sum (a - b)^2 / sum b^2 (0 when both sums are 0, +inf when only b's is);
 *   cos       sum a*b / sqrt(sum a^2 * sum b^2) (1 when both are all zeros, 0 when one is);
 *   max_ulp   max distance in f32 units in the last place (ordered bit patterns);
 * all over the pairs where both values are finite. An element FAILS when |a - b| > atol +
 * rtol * |b|, or when exactly one of a, b is non-finite, or both are infinite with different
 * signs (NaN vs NaN and -inf vs -inf agree: masked attention cells are -inf in both). The
 * default tolerances are VW_CMP_ATOL and VW_CMP_RTOL. Pure functions: no I/O, no allocation.
 */
#ifndef VW_COMPARE_INT_H
#define VW_COMPARE_INT_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Default tolerances. Two correct f32 engines agree to NMSE ~1e-10 (our engine and llama.cpp's
 * f32 CPU path are bit-identical; a different summation order moves elements by a few f32 ulps,
 * i.e. ~1e-6 relative, up to ~1e-5 relative after 22 layers). rtol = 1e-4 leaves a 10x margin
 * over that, and still catches one f16 rounding (up to 4.9e-4 relative: an f16 KV cache or an
 * f16 softmax); atol = 1e-5 absorbs the absolute error of elements near zero, which are sums of
 * terms ~1 that cancel. Printed dumps add their print precision (print_atol) to atol.
 */
#define VW_CMP_ATOL 1e-5
#define VW_CMP_RTOL 1e-4

struct vw_cmp_tol {
    double atol, rtol;
};

/* Running comparison of two float sequences: add chunks with vw_cmp_add, read the metrics after
 * vw_cmp_finish. Element indices are the caller's (idx0 + i within a chunk). */
struct vw_cmp {
    int64_t n;           /* elements compared (both known) */
    int64_t n_fail;      /* elements failing the tolerance */
    int64_t n_nonfinite; /* pairs where a and b disagree about NaN/Inf (they fail) */
    int64_t n_nan_a, n_nan_b, n_inf_a, n_inf_b;
    bool bitwise; /* every compared element bit-identical (true when n == 0) */
    double max_abs, max_rel, nmse, cos;
    int64_t max_ulp;
    /* the worst element: the largest |a-b| / (atol + rtol |b|) (non-finite mismatches first) */
    int64_t worst_idx; /* -1 when n_fail == 0 and max_abs == 0 */
    float worst_a, worst_b;
    double worst_score;
    int64_t first_fail_idx; /* -1 when none */
    /* accumulators (double): sum (a-b)^2, sum b^2, sum a^2, sum a*b */
    double s_err, s_bb, s_aa, s_ab;
};

void vw_cmp_init(struct vw_cmp *c);
/* Compares a[i] with b[i] for i < n; known (may be NULL: all known) marks the elements both
 * hold. Indices reported are idx0 + i. */
void vw_cmp_add(struct vw_cmp *c, const float *a, const float *b, const uint8_t *known, int64_t n,
                int64_t idx0, const struct vw_cmp_tol *tol);
/* Records n elements known to be bit-identical (equal content hashes) without reading them. */
void vw_cmp_add_identical(struct vw_cmp *c, int64_t n);
/* Merges another comparison into c (worst and first indices are kept as they are). */
void vw_cmp_merge(struct vw_cmp *c, const struct vw_cmp *o);
/* Computes nmse and cos from the accumulators. */
void vw_cmp_finish(struct vw_cmp *c);
/* True when no element failed. */
bool vw_cmp_pass(const struct vw_cmp *c);

/* Distance between two finite floats in units in the last place (0 for +0 vs -0). */
int64_t vw_ulp_dist(float a, float b);
/* True when a and b agree under the tolerance (the element rule above). */
bool vw_cmp_elem_ok(float a, float b, const struct vw_cmp_tol *tol);

#endif
