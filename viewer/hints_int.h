/*
 * hints_int.h - pattern hints at the first divergence of a diff (see hints.c for the list).
 * Each hint has a stable key (for --json, scripts and tests) and a sentence for people.
 */
#ifndef VW_HINTS_INT_H
#define VW_HINTS_INT_H

#include "align_int.h"

#define VW_HINT_MAX 12

/* Keys: nonfinite, kv-cache-step, rope-pairing, rope-theta, rope-positions, rms-eps, gqa,
 * kv-type, softmax-f16, qk-permute, weight-type, position-shift, permutation, f16-rounding,
 * scale, row-scale. */
struct vw_hint {
    char key[24];
    char text[480];
};

/* Fills up to cap hints about d (after vw_diff_run), the most specific first; returns how many.
 * Reads (and may replay ops of) both traces; never fails: a check that cannot run is skipped. */
int vw_hints_find(struct vw_diff *d, struct vw_hint *out, int cap);

#endif
