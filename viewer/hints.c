/*
 * hints.c - recognizing the patterns of common bugs at the first divergence of a diff: NaN/Inf
 * appearing, an error that starts at a decode step rather than at a layer (KV cache), op
 * parameters that differ, RoPE positions shifted or tables changed, rows equal after a shift of
 * positions (BOS, offsets), values equal up to a permutation within heads (Q/K permute, rope
 * pairing), a constant or per-row scale (norm eps), f16 rounding, and replays of the candidate's
 * op under variants (rope pairing, GQA mapping, f16 softmax, KV type) that reproduce the
 * reference. Each hint has a stable key for scripts and tests. Reads traces through align_int.h
 * and replays through replay_int.h; prints nothing.
 */
#include "hints_int.h"
#include "lm.h"
#include "replay_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hctx {
    struct vw_diff *d;
    struct vw_hint *h;
    int n, cap;
    int64_t fi;              /* first divergence: reference op index */
    const struct vw_top *fo; /* ... and the op */
    const struct vw_top *co; /* the candidate's op at the failing position, or NULL */
    int64_t pos;             /* failing position */
    float *ra, *ca, *tmp;    /* row buffers (cap floats) */
    int64_t cap_row;
};

static void add(struct hctx *x, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add(struct hctx *x, const char *key, const char *fmt, ...)
{
    va_list ap;
    if (x->n >= x->cap) {
        return;
    }
    struct vw_hint *h = &x->h[x->n];
    snprintf(h->key, sizeof h->key, "%s", key);
    va_start(ap, fmt);
    vsnprintf(h->text, sizeof h->text, fmt, ap);
    va_end(ap);
    for (int i = 0; i < x->n; i++) {
        if (strcmp(x->h[i].key, key) == 0 && strcmp(x->h[i].text, h->text) == 0) {
            return; /* said already */
        }
    }
    x->n++;
}

/* ---- whole-diff patterns -------------------------------------------------------------------- */

static void hint_nonfinite(struct hctx *x)
{
    const struct vw_diff *d = x->d;
    for (int64_t i = 0; i < d->ref.n_ops; i++) {
        const struct vw_cmp *c = &d->ops[i].oc.c;
        const int64_t na = c->n_nan_a + c->n_inf_a, nb = c->n_nan_b + c->n_inf_b;
        if (d->ops[i].compared && na != nb && c->n_nonfinite > 0) {
            const struct vw_top *o = &d->ref.ops[i];
            add(x, "nonfinite",
                "%s appears first in %s at step %lld %s: %lld NaN and %lld Inf there in %s, "
                "%lld NaN and %lld Inf in %s",
                c->n_nan_a + c->n_nan_b ? "NaN" : "Inf", na > nb ? "B" : "A", (long long)o->step,
                o->name, (long long)(na > nb ? c->n_nan_a : c->n_nan_b),
                (long long)(na > nb ? c->n_inf_a : c->n_inf_b), na > nb ? "B" : "A",
                (long long)(na > nb ? c->n_nan_b : c->n_nan_a),
                (long long)(na > nb ? c->n_inf_b : c->n_inf_a), na > nb ? "A" : "B");
            return;
        }
    }
}

static void hint_step(struct hctx *x)
{
    const struct vw_diff *d = x->d;
    int64_t n_before = 0;
    if (x->fo->step == 0) {
        return;
    }
    for (int64_t i = 0; i < d->ref.n_ops && d->ref.ops[i].step < x->fo->step; i++) {
        if (d->ops[i].fail) {
            return;
        }
        n_before += d->ops[i].compared ? 1 : 0;
    }
    if (n_before == 0) {
        return;
    }
    add(x, "kv-cache-step",
        "the error starts at a step, not at a layer: all %lld ops of steps 0..%lld agree and step "
        "%lld (position %lld) differs from %s on. What changes between steps is the KV cache "
        "(rows written earlier, the cells read, the mask, n_kv) and the decode path (one row)",
        (long long)n_before, (long long)(x->fo->step - 1), (long long)x->fo->step,
        (long long)x->pos, x->fo->name);
}

/* ---- parameters ---------------------------------------------------------------------------- */

struct pkey {
    const char *json, *hint, *what;
};

static void hint_params(struct hctx *x)
{
    static const struct pkey keys[] = {
        {"mode", "rope-pairing", "RoPE pairing (norm = adjacent pairs, neox = half-split)"},
        {"theta", "rope-theta", "RoPE theta"},
        {"freq_scale", "rope-theta", "RoPE frequency scale"},
        {"pos_offset", "rope-positions", "position offset"},
        {"n_rot", "rope-theta", "rotary dimensions"},
        {"eps", "rms-eps", "RMS norm epsilon"},
        {"gqa", "gqa",
         "GQA head mapping (group: kv head h / (n_head/n_head_kv); tile: h % n_head_kv)"},
        {"kv_type", "kv-type", "KV cache type"},
        {"f16_accum", "softmax-f16", "softmax accumulation in f16"},
        {"qk_permute", "qk-permute", "Q/K rows in Hugging Face order"},
        {"weight_type", "weight-type", "weight type"},
    };
    char va[64], vb[64];
    if (!x->co) {
        return;
    }
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        double na = 0, nb = 0;
        bool ha = vw_json_get_str(x->fo->params, keys[k].json, va, sizeof va) == 0;
        bool hb = vw_json_get_str(x->co->params, keys[k].json, vb, sizeof vb) == 0;
        if (!ha && vw_json_get_num(x->fo->params, keys[k].json, &na) == 0) {
            snprintf(va, sizeof va, "%g", na);
            ha = true;
        }
        if (!hb && vw_json_get_num(x->co->params, keys[k].json, &nb) == 0) {
            snprintf(vb, sizeof vb, "%g", nb);
            hb = true;
        }
        if (!ha && vw_json_get_bool(x->co->params, keys[k].json)) {
            snprintf(va, sizeof va, "false");
            snprintf(vb, sizeof vb, "true");
            ha = hb = true;
        }
        if (ha && hb && strcmp(va, vb) != 0) {
            add(x, keys[k].hint, "%s differs in %s: %s in A, %s in B", keys[k].what, x->fo->name,
                va, vb);
        }
    }
}

/* ---- rows ------------------------------------------------------------------------------------ */

static bool rows_of(struct hctx *x, const char *name, const char *role, int64_t pa, int64_t pb,
                    int64_t *n)
{
    int64_t na = 0, nb = 0;
    if (vw_trace_row(&x->d->ref, name, role, pa, x->ra, x->cap_row, &na) < 0 ||
        vw_trace_row(&x->d->cand, name, role, pb, x->ca, x->cap_row, &nb) < 0 || na != nb) {
        return false;
    }
    *n = na;
    return true;
}

static bool rows_agree(const float *a, const float *b, int64_t n, const struct vw_cmp_tol *tol)
{
    for (int64_t i = 0; i < n; i++) {
        if (!vw_cmp_elem_ok(a[i], b[i], tol)) {
            return false;
        }
    }
    return true;
}

static void hint_rope_positions(struct hctx *x)
{
    int64_t n, delta = 0, rows = 0;
    bool constant = true, tables = false;
    if (strcmp(x->fo->kind, "rope") != 0) {
        return;
    }
    for (int64_t p = x->fo->pos0; p < x->fo->pos0 + x->fo->n_pos; p++) {
        if (!rows_of(x, x->fo->name, "pos", p, p, &n) || n != 1) {
            continue;
        }
        const int64_t dd = (int64_t)x->ca[0] - (int64_t)x->ra[0];
        constant = constant && (rows == 0 || dd == delta);
        delta = dd;
        rows++;
        if (dd == 0 && rows_of(x, x->fo->name, "cos", p, p, &n)) {
            tables = tables || !rows_agree(x->ca, x->ra, n, &x->d->tol);
        }
    }
    if (rows > 0 && constant && delta != 0) {
        add(x, "rope-positions",
            "RoPE positions are shifted: B rotates row p by position p%+lld (its pos tensor is "
            "A's %+lld, and its cos/sin rows are A's rows %lld positions later): a position "
            "offset",
            (long long)delta, (long long)delta, (long long)delta);
    } else if (rows > 0 && !constant) {
        add(x, "rope-positions", "RoPE positions differ between A and B, by varying amounts");
    } else if (tables) {
        add(x, "rope-theta",
            "same RoPE positions but different cos/sin tables: the frequencies differ (theta, "
            "freq_scale or n_rot)");
    }
}

/* B's rows equal A's rows s positions later (B[p] = A[p + s]) for most rows of the op. */
static void hint_shift(struct hctx *x)
{
    static const int shifts[] = {1, -1, 2, -2, 3, -3};
    const int64_t p0 = x->fo->pos0, p1 = x->fo->pos0 + x->fo->n_pos;
    int64_t n;
    for (size_t k = 0; k < sizeof shifts / sizeof shifts[0]; k++) {
        const int s = shifts[k];
        int64_t checked = 0, matched = 0;
        for (int64_t p = p0; p < p1 || (p < p0 + 8 && checked < 2); p++) {
            if (p + s < 0 || !rows_of(x, x->fo->name, "out", p + s, p, &n)) {
                continue;
            }
            checked++;
            matched += rows_agree(x->ca, x->ra, n, &x->d->tol) ? 1 : 0;
        }
        if (checked >= 1 && matched * 3 >= checked * 2 && matched > 0) {
            add(x, "position-shift",
                "B's rows of %s equal A's rows shifted by %d (B[p] = A[p%+d] for %lld of %lld "
                "rows): B has %s tokens at the start than A (%s BOS?), or its positions are "
                "offset",
                x->fo->name, s < 0 ? -s : s, s, (long long)matched, (long long)checked,
                s > 0 ? "fewer" : "more", s > 0 ? "a missing" : "a double");
            return;
        }
    }
}

static int cmp_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Is every head segment of b a rearrangement of a's? */
static bool same_multisets(struct hctx *x, int64_t n, int64_t hd)
{
    float *sa = x->tmp, *sb = x->tmp + hd;
    for (int64_t h = 0; h + hd <= n; h += hd) {
        memcpy(sa, x->ra + h, (size_t)hd * sizeof *sa);
        memcpy(sb, x->ca + h, (size_t)hd * sizeof *sb);
        qsort(sa, (size_t)hd, sizeof *sa, cmp_float);
        qsort(sb, (size_t)hd, sizeof *sb, cmp_float);
        if (memcmp(sa, sb, (size_t)hd * sizeof *sa) != 0) {
            return false;
        }
    }
    return true;
}

/* Element j*hd/2 + i of B's head is element 2i + j of A's (or the other way round). */
static bool hf_order(const float *a, const float *b, int64_t n, int64_t hd)
{
    for (int64_t h = 0; h + hd <= n; h += hd) {
        for (int64_t i = 0; i < hd / 2; i++) {
            for (int64_t j = 0; j < 2; j++) {
                if (memcmp(&b[h + j * hd / 2 + i], &a[h + 2 * i + j], sizeof(float)) != 0) {
                    return false;
                }
            }
        }
    }
    return true;
}

static void hint_permutation(struct hctx *x)
{
    int64_t n;
    const int64_t hd = x->d->ref.run.head_dim;
    if (hd <= 1 || vw_pos_axis(x->fo->kind, "out") != 0 ||
        !rows_of(x, x->fo->name, "out", x->pos, x->pos, &n) || n % hd != 0 ||
        !same_multisets(x, n, hd)) {
        return;
    }
    if (hf_order(x->ra, x->ca, n, hd) || hf_order(x->ca, x->ra, n, hd)) {
        add(x, "qk-permute",
            "the values of %s equal A's up to a permutation within each head: the Hugging Face "
            "row order (element 2i+j <-> j*head_dim/2+i). The Q/K weight rows are permuted "
            "(a checkpoint converted without the Q/K permute), or the RoPE pairing is the other "
            "one",
            x->fo->name);
    } else {
        add(x, "permutation",
            "the values of %s equal A's up to a permutation within each head (pairing or head "
            "layout)",
            x->fo->name);
    }
}

/* B = c * A over a row: returns c, or NaN when the rows are not proportional. */
static double row_scale(const float *a, const float *b, int64_t n)
{
    double ab = 0, bb = 0, amax = 0, err = 0;
    for (int64_t i = 0; i < n; i++) {
        ab += (double)a[i] * (double)b[i];
        bb += (double)b[i] * (double)b[i];
        amax = fmax(amax, fabs((double)a[i]));
    }
    if (bb == 0 || !isfinite(ab)) {
        return (double)NAN;
    }
    const double c = ab / bb;
    for (int64_t i = 0; i < n; i++) {
        err = fmax(err, fabs((double)a[i] - c * (double)b[i]));
    }
    return err <= 1e-5 * amax ? c : (double)NAN;
}

static void hint_scale(struct hctx *x)
{
    int64_t n;
    double c0 = (double)NAN, lo = (double)INFINITY, hi = -(double)INFINITY;
    int rows = 0;
    for (int64_t p = x->pos; p < x->fo->pos0 + x->fo->n_pos && rows < 4; p++) {
        if (!rows_of(x, x->fo->name, "out", p, p, &n)) {
            continue;
        }
        const double c = row_scale(x->ca, x->ra, n);
        if (isnan(c)) {
            return;
        }
        c0 = rows == 0 ? c : c0;
        lo = fmin(lo, c);
        hi = fmax(hi, c);
        rows++;
    }
    if (rows == 0 || fabs(c0 - 1.0) < 1e-7) {
        return;
    }
    if (hi - lo <= 1e-6 * fabs(c0)) {
        add(x, "scale", "B's %s is A's times a constant %.9g (a missing or extra scale factor)",
            x->fo->name, c0);
    } else {
        add(x, "row-scale",
            "each row of B's %s is A's row times its own factor (%.7g .. %.7g): the normalization "
            "differs (RMS norm eps, or the mean it divides by)",
            x->fo->name, lo, hi);
    }
}

static void hint_f16(struct hctx *x)
{
    int64_t n;
    if (!rows_of(x, x->fo->name, "out", x->pos, x->pos, &n)) {
        return;
    }
    bool b_rounded = true, a_rounded = true;
    for (int64_t i = 0; i < n; i++) {
        b_rounded = b_rounded && x->ca[i] == lm_f16_to_f32(lm_f32_to_f16(x->ra[i]));
        a_rounded = a_rounded && x->ra[i] == lm_f16_to_f32(lm_f32_to_f16(x->ca[i]));
    }
    if (b_rounded || a_rounded) {
        add(x, "f16-rounding",
            "%s's %s holds the other's values rounded to f16: an f16 KV cache or f16 storage",
            b_rounded ? "B" : "A", x->fo->name);
    }
}

/* ---- replays under variants ------------------------------------------------------------------ */

struct try_variant {
    const char *kind, *spec, *key, *what;
};

static void hint_variants(struct hctx *x)
{
    static const struct try_variant tries[] = {
        {"rope", "rope=norm", "rope-pairing", "RoPE pairing"},
        {"rope", "rope=neox", "rope-pairing", "RoPE pairing"},
        {"attn_scores", "gqa=group", "gqa", "GQA head mapping"},
        {"attn_scores", "gqa=tile", "gqa", "GQA head mapping"},
        {"attn_ctx", "gqa=group", "gqa", "GQA head mapping"},
        {"attn_ctx", "gqa=tile", "gqa", "GQA head mapping"},
        {"softmax", "softmax=f32", "softmax-f16", "softmax accumulation"},
        {"softmax", "softmax=f16", "softmax-f16", "softmax accumulation"},
        {"attn_scores", "kv=f32", "kv-type", "KV cache type"},
        {"attn_scores", "kv=f16", "kv-type", "KV cache type"},
    };
    char err[256];
    vw_replay *rp = NULL;
    if (!x->co || vw_replay_create(&x->d->cand, NULL, &rp, err, sizeof err) < 0) {
        return;
    }
    const int64_t ci = x->co - x->d->cand.ops;
    for (size_t k = 0; k < sizeof tries / sizeof tries[0]; k++) {
        struct vw_variant v;
        float *out = NULL;
        int64_t n;
        struct vw_opcmp oc;
        if (strcmp(tries[k].kind, x->fo->kind) != 0 ||
            vw_variant_parse(&v, tries[k].spec, err, sizeof err) < 0 ||
            vw_replay_op(rp, ci, &v, &out, &n) != 0) {
            continue;
        }
        struct vw_override over = {ci, out};
        if (vw_align_compare(&x->d->ref, &x->d->cand, x->co->name, "out", x->co->pos0,
                             x->co->pos0 + x->co->n_pos, &over, &x->d->tol, &oc) == 0 &&
            oc.n_rows > 0 && vw_cmp_pass(&oc.c)) {
            add(x, tries[k].key,
                "replaying B's %s (step %lld) with %s reproduces A's output (%s): the two differ "
                "in their %s",
                x->co->name, (long long)x->co->step, tries[k].spec,
                oc.c.bitwise ? "bit for bit" : "within tolerance", tries[k].what);
        }
        free(out);
    }
    vw_replay_destroy(rp);
}

/* ---- entry point ----------------------------------------------------------------------------- */

static int64_t row_cap(struct vw_diff *d, int64_t i)
{
    struct trc_tensor_info a, b;
    int64_t cap = 0;
    if (vw_trace_tensor_info(&d->ref, i, "out", &a) == 0) {
        cap = a.n_elems;
    }
    const int64_t ci = d->ops[i].oc.cand_op;
    if (ci >= 0 && vw_trace_tensor_info(&d->cand, ci, "out", &b) == 0 && b.n_elems > cap) {
        cap = b.n_elems;
    }
    return cap + 64;
}

int vw_hints_find(struct vw_diff *d, struct vw_hint *out, int cap)
{
    struct hctx x = {d, out, 0, cap, d->first_fail, NULL, NULL, -1, NULL, NULL, NULL, 0};
    hint_nonfinite(&x);
    if (d->first_fail < 0) {
        return x.n;
    }
    x.fo = &d->ref.ops[x.fi];
    x.pos = d->ops[x.fi].oc.fail_pos >= 0 ? d->ops[x.fi].oc.fail_pos : x.fo->pos0;
    const int64_t ci = vw_trace_find(&d->cand, x.fo->name, x.pos);
    x.co = ci >= 0 ? &d->cand.ops[ci] : NULL;
    x.cap_row = row_cap(d, x.fi);
    x.ra = malloc((size_t)x.cap_row * sizeof(float));
    x.ca = malloc((size_t)x.cap_row * sizeof(float));
    x.tmp = malloc((size_t)x.cap_row * 2 * sizeof(float));
    if (x.ra && x.ca && x.tmp) {
        hint_step(&x);
        hint_params(&x);
        hint_rope_positions(&x);
        hint_variants(&x);
        hint_shift(&x);
        hint_permutation(&x);
        hint_f16(&x);
        hint_scale(&x);
    }
    free(x.ra);
    free(x.ca);
    free(x.tmp);
    return x.n;
}
