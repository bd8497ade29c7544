/*
 * The two attention products of a llama layer, per query head, as llama.cpp's non-flash graph
 * computes them with an f32 or f16 KV cache (../shared/NUMERICS.md section 7):
 *   scores  kq[t][cell]  = vec_dot(K[cell], Q[t]) * (1/sqrt(head_dim)), -inf for future cells;
 *   context kqv[t][d]    = sum over cells of P[t][cell] * V[cell][d], computed as a dot of P's
 *                          row with V's transposed row, tinyBLAS for >= 2 rows, vec_dot for 1.
 * With an f16 cache, Q (for scores) and P (for context) are rounded to f16 first, as ggml does
 * when the weight side is f16. Pure math on caller buffers; the forward pass and replay share
 * these functions.
 */
#include "kern_int.h"
#include "lm.h"

#include <math.h>
#include <string.h>

/* KV head read by query head h: llama.cpp uses h / (n_head / n_head_kv); gqa=tile breaks it. */
static int64_t kv_head(const struct lm_attn_shape *a, int64_t h)
{
    return a->gqa_tile ? h % a->n_head_kv : h / (a->n_head / a->n_head_kv);
}

void lm_op_attn_scores_head(const struct lm_attn_shape *a, int64_t h, const float *q, const void *k,
                            int64_t k_ld, float *scratch, float *out)
{
    const int64_t hd = a->head_dim, kvh = kv_head(a, h);
    const float scale = 1.0f / sqrtf((float)hd);
    uint16_t *q16 = (uint16_t *)scratch;
    for (int64_t t = 0; t < a->n; t++) {
        const float *qt = q + (t * a->n_head + h) * hd;
        float *row = out + t * a->n_kv;
        if (a->kv_type == LM_TYPE_F16) {
            for (int64_t d = 0; d < hd; d++) {
                q16[d] = lm_f32_to_f16(qt[d]);
            }
        }
        for (int64_t cell = 0; cell < a->n_kv; cell++) {
            float s;
            if (cell > a->pos0 + t) {
                row[cell] = -INFINITY;
                continue;
            }
            if (a->kv_type == LM_TYPE_F16) {
                s = lm_dot_f16(hd, (const uint16_t *)k + cell * k_ld + kvh * hd, q16);
            } else {
                s = lm_dot_f32(hd, (const float *)k + cell * k_ld + kvh * hd, qt);
            }
            row[cell] = s * scale;
        }
    }
}

void lm_op_attn_context_head(const struct lm_attn_shape *a, int64_t h, const float *p,
                             const void *vt, int64_t vt_ld, float *scratch, float *out)
{
    const int64_t hd = a->head_dim, kvh = kv_head(a, h);
    const int64_t n_pad = (a->n_kv + 63) / 64 * 64;
    for (int64_t t = 0; t < a->n; t++) {
        const float *pt = p + t * a->n_kv;
        float *o = out + (t * a->n_head + h) * hd;
        if (a->kv_type == LM_TYPE_F16) {
            uint16_t *p16 = (uint16_t *)scratch;
            for (int64_t i = 0; i < n_pad; i++) {
                p16[i] = i < a->n_kv ? lm_f32_to_f16(pt[i]) : 0;
            }
        } else {
            memcpy(scratch, pt, (size_t)a->n_kv * sizeof(float));
            memset(scratch + a->n_kv, 0, (size_t)(n_pad - a->n_kv) * sizeof(float));
        }
        for (int64_t d = 0; d < hd; d++) {
            const int64_t vrow = (kvh * hd + d) * vt_ld;
            if (a->kv_type == LM_TYPE_F16) {
                const uint16_t *v = (const uint16_t *)vt + vrow;
                const uint16_t *p16 = (const uint16_t *)scratch;
                o[d] = a->n >= 2 ? lm_dot_f16_tb(n_pad, v, p16) : lm_dot_f16(n_pad, v, p16);
            } else {
                const float *v = (const float *)vt + vrow;
                o[d] = a->n >= 2 ? lm_dot_f32_tb(n_pad, v, scratch) : lm_dot_f32(n_pad, v, scratch);
            }
        }
    }
}
