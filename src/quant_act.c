/*
 * quant_act.c - converts f32 activations to the format a weight type's dot product consumes,
 * exactly as llama.cpp's x86 CPU backend does before MUL_MAT (NUMERICS.md section 4.3): Q8_0 and
 * Q8_1 with id = 127/amax and round-half-even (quantize_row_q8_0/_1 of arch/x86/quants.c), Q8_K
 * with the reference rules (quantize_row_q8_K_ref), f16 with F16C semantics and bf16 with ggml's
 * scalar rounding. The contract is in kern_int.h. Activation rows are small (n x k per matmul)
 * next to the weights, so this is plain C. libc and libm only.
 */
#include "kern_int.h"

#include <math.h>
#include <string.h>

/* Round half to even for |v| <= 2^22 (the 1.5 * 2^23 magic add, as ggml's nearest_int and as
 * _mm256_round_ps(_MM_ROUND_NEAREST) under the default rounding mode). */
static int round_even(float v)
{
    const float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static int clamp127(int q)
{
    return q > 127 ? 127 : (q < -128 ? -128 : q);
}

/* One Q8_0-style block: the quants of x (32) into qs; returns d (unrounded); *sum gets sum qs. */
static float q8_block(const float *x, int8_t *qs, int *sum)
{
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) {
        const float a = fabsf(x[j]);
        amax = a > amax ? a : amax;
    }
    const float d = amax / 127.f;
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    int s = 0;
    for (int j = 0; j < 32; j++) {
        const int q = clamp127(round_even(x[j] * id));
        qs[j] = (int8_t)q;
        s += q;
    }
    *sum = s;
    return d;
}

void lm_quantize_q8_0_act(const float *x, struct lm_blk_q8_0 *y, int64_t k)
{
    for (int64_t b = 0; b < k / 32; b++) {
        int sum;
        const float d = q8_block(x + 32 * b, y[b].qs, &sum);
        y[b].d = lm_f32_to_f16(d);
    }
}

void lm_quantize_q8_1_act(const float *x, struct lm_blk_q8_1 *y, int64_t k)
{
    for (int64_t b = 0; b < k / 32; b++) {
        int sum;
        const float d = q8_block(x + 32 * b, y[b].qs, &sum);
        y[b].d = lm_f32_to_f16(d);
        y[b].s = lm_f32_to_f16(d * (float)sum);
    }
}

void lm_quantize_q8_k_act(const float *x, struct lm_blk_q8_k *y, int64_t k)
{
    for (int64_t b = 0; b < k / 256; b++, x += 256) {
        float max = 0, amax = 0;
        for (int j = 0; j < 256; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            memset(&y[b], 0, sizeof(y[b]));
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < 256; j++) {
            const int v = round_even(iscale * x[j]);
            y[b].qs[j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) {
                sum += y[b].qs[16 * j + i];
            }
            y[b].bsums[j] = (int16_t)sum;
        }
        y[b].d = 1 / iscale;
    }
}

uint16_t lm__f32_to_f16_hw(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) {
        /* F16C keeps the top payload bits and sets the quiet bit. */
        return (uint16_t)(((u >> 16) & 0x8000u) | 0x7E00u | ((u >> 13) & 0x3FFu));
    }
    return lm_f32_to_f16(f);
}

void lm_f32_to_f16_act(const float *x, uint16_t *y, int64_t k)
{
    for (int64_t i = 0; i < k; i++) {
        y[i] = lm__f32_to_f16_hw(x[i]);
    }
}

void lm_f32_to_bf16_act(const float *x, uint16_t *y, int64_t k)
{
    for (int64_t i = 0; i < k; i++) {
        y[i] = lm_f32_to_bf16(x[i]);
    }
}

int lm_act_type(int wtype)
{
    switch (wtype) {
    case LM_TYPE_F32:
    case LM_TYPE_F16:
    case LM_TYPE_BF16:
        return wtype;
    case LM_TYPE_Q4_0:
    case LM_TYPE_Q5_0:
    case LM_TYPE_Q8_0:
        return LM_TYPE_Q8_0;
    case LM_TYPE_Q4_1:
    case LM_TYPE_Q5_1:
        return LM_TYPE_Q8_1;
    case LM_TYPE_Q2_K:
    case LM_TYPE_Q3_K:
    case LM_TYPE_Q4_K:
    case LM_TYPE_Q5_K:
    case LM_TYPE_Q6_K:
        return LM_TYPE_Q8_K;
    default:
        return -1;
    }
}

size_t lm_act_row_bytes(int wtype, int64_t k)
{
    const int at = lm_act_type(wtype);
    if (at < 0 || k % lm_type_block_size(wtype) != 0) {
        return 0;
    }
    const int64_t rb = lm_type_row_bytes(at, k);
    return rb < 0 ? 0 : (size_t)rb;
}

void lm_act_convert(int wtype, const float *x, void *dst, int64_t k)
{
    switch (lm_act_type(wtype)) {
    case LM_TYPE_F32:
        memcpy(dst, x, (size_t)k * sizeof(float));
        break;
    case LM_TYPE_F16:
        lm_f32_to_f16_act(x, dst, k);
        break;
    case LM_TYPE_BF16:
        lm_f32_to_bf16_act(x, dst, k);
        break;
    case LM_TYPE_Q8_0:
        lm_quantize_q8_0_act(x, dst, k);
        break;
    case LM_TYPE_Q8_1:
        lm_quantize_q8_1_act(x, dst, k);
        break;
    case LM_TYPE_Q8_K:
        lm_quantize_q8_k_act(x, dst, k);
        break;
    default:
        break;
    }
}
