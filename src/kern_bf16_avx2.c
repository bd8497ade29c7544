/*
 * kern_bf16_avx2.c - AVX2 kernels of BF16 weights against BF16 activations: the AVX512-BF16
 * vec_dot formula (n == 1, or when tinyBLAS does not apply) and the tinyBLAS KN = 32 formula,
 * both built on an exact emulation of one VDPBF16PS step as the scalar oracle in kern_dot.c
 * writes it (kern_int.h contract): bf16 inputs with DAZ, one fused multiply-add rounded to
 * nearest, subnormal results flushed to a signed zero; per lane the odd element of the pair
 * first, then the even one. A pair of bf16 read as one 32-bit word gives both elements as f32
 * with a mask (odd) and a shift (even). Built with -mavx2 -mfma -mf16c; only called when cpu.c
 * reports AVX2. No allocation; libc only.
 */
#include "kern_avx2_int.h"

#include <float.h>

#define BF_NC    4    /* activation columns per tinyBLAS tile */
#define BF_STAGE 8192 /* longest row staged as f32 (BF_NC x 32 KiB of stack) */

/* DAZ: lanes whose exponent field is zero become a zero of the same sign. */
AI __m256 daz(__m256i v)
{
    const __m256i e = _mm256_and_si256(v, _mm256_set1_epi32(0x7F800000));
    const __m256i z = _mm256_cmpeq_epi32(e, _mm256_setzero_si256());
    return _mm256_castsi256_ps(
        _mm256_andnot_si256(_mm256_and_si256(z, _mm256_set1_epi32(0x7FFFFFFF)), v));
}

/* The 16 bf16 at p as DAZ f32: lane l of *odd is element 2l+1, lane l of *even element 2l. */
AI void bf_pairs(const uint16_t *p, __m256 *odd, __m256 *even)
{
    const __m256i u = _mm256_loadu_si256((const __m256i *)p);
    *odd = daz(_mm256_and_si256(u, _mm256_set1_epi32((int)0xFFFF0000u)));
    *even = daz(_mm256_slli_epi32(u, 16));
}

/* FTZ: lanes with 0 < |r| < FLT_MIN become a zero of the same sign. */
AI __m256 ftz(__m256 r)
{
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 tiny = _mm256_cmp_ps(_mm256_and_ps(r, absm), _mm256_set1_ps(FLT_MIN), _CMP_LT_OQ);
    return _mm256_andnot_ps(_mm256_and_ps(tiny, absm), r);
}

/* 8 lanes of one VDPBF16PS: the odd products, then the even ones. */
AI __m256 dp8(__m256 acc, __m256 xo, __m256 xe, __m256 yo, __m256 ye)
{
    acc = ftz(_mm256_fmadd_ps(xo, yo, acc));
    return ftz(_mm256_fmadd_ps(xe, ye, acc));
}

AI __m256 dp8_raw(__m256 acc, const uint16_t *x, const uint16_t *y)
{
    __m256 xo, xe, yo, ye;
    bf_pairs(x, &xo, &xe);
    bf_pairs(y, &yo, &ye);
    return dp8(acc, xo, xe, yo, ye);
}

AI float bf16f(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* vec_dot_bf16: c1, c2 of 16 lanes over 64-element steps; double red16(c1) + red16(c2), then
 * the tail in double. */
static float bf16_vec(int64_t n, const uint16_t *x, const uint16_t *y)
{
    __m256 c[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        for (int q = 0; q < 4; q++) {
            c[q] = dp8_raw(c[q], x + i + 16 * q, y + i + 16 * q);
        }
    }
    double sumf = 0;
    sumf += (double)lm__red16(c[0], c[1]);
    sumf += (double)lm__red16(c[2], c[3]);
    for (; i < n; i++) {
        sumf += (double)(bf16f(x[i]) * bf16f(y[i]));
    }
    return (float)sumf;
}

static void mm_bf_vec(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    for (int64_t c = 0; c < p->n; c++) {
        const uint16_t *a = (const uint16_t *)(p->act + (size_t)c * p->act_stride);
        for (int64_t r = r0; r < r1; r++) {
            const uint16_t *w = (const uint16_t *)(p->w + (size_t)r * p->w_stride);
            p->out[c * p->ldo + r] = bf16_vec(p->k, w, a);
        }
    }
}

/* tinyBLAS KN = 32 of one weight row and one activation row, both converted on the fly. */
static float bf16_tb_raw(int64_t k, const uint16_t *w, const uint16_t *a)
{
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int64_t l = 0; l < k; l += 32) {
        lo = dp8_raw(lo, w + l, a + l);
        hi = dp8_raw(hi, w + l + 16, a + l + 16);
    }
    return lm__red16(lo, hi);
}

/* n (multiple of 16) bf16 to DAZ f32 in dp8 order: per 16 elements the odd lanes, then the even. */
static void bf_stage(const uint16_t *x, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        __m256 o, e;
        bf_pairs(x + i, &o, &e);
        _mm256_storeu_ps(dst + i, o);
        _mm256_storeu_ps(dst + i + 8, e);
    }
}

/* tinyBLAS KN = 32: one weight row against nc staged activation columns b[j]. */
AI void bf_tb_row(int64_t k, const uint16_t *w, const float *const *b, int nc, float *out,
                  int64_t ldo)
{
    __m256 lo[BF_NC], hi[BF_NC];
    for (int j = 0; j < nc; j++) {
        lo[j] = _mm256_setzero_ps();
        hi[j] = _mm256_setzero_ps();
    }
    for (int64_t l = 0; l < k; l += 32) {
        __m256 wo0, we0, wo1, we1;
        bf_pairs(w + l, &wo0, &we0);
        bf_pairs(w + l + 16, &wo1, &we1);
        for (int j = 0; j < nc; j++) {
            const float *s = b[j] + l;
            lo[j] = dp8(lo[j], wo0, we0, _mm256_loadu_ps(s), _mm256_loadu_ps(s + 8));
            hi[j] = dp8(hi[j], wo1, we1, _mm256_loadu_ps(s + 16), _mm256_loadu_ps(s + 24));
        }
    }
    for (int j = 0; j < nc; j++) {
        out[j * ldo] = lm__red16(lo[j], hi[j]);
    }
}

static void mm_bf_tb(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    if (p->k > BF_STAGE) {
        for (int64_t c = 0; c < p->n; c++) {
            const uint16_t *a = (const uint16_t *)(p->act + (size_t)c * p->act_stride);
            for (int64_t r = r0; r < r1; r++) {
                const uint16_t *w = (const uint16_t *)(p->w + (size_t)r * p->w_stride);
                p->out[c * p->ldo + r] = bf16_tb_raw(p->k, w, a);
            }
        }
        return;
    }
    float stage[BF_NC * BF_STAGE];
    for (int64_t c0 = 0; c0 < p->n; c0 += BF_NC) {
        const int nc = p->n - c0 < BF_NC ? (int)(p->n - c0) : BF_NC;
        const float *b[BF_NC];
        for (int j = 0; j < nc; j++) {
            const uint8_t *a = p->act + (size_t)(c0 + j) * p->act_stride;
            bf_stage((const uint16_t *)a, stage + j * BF_STAGE, p->k);
            b[j] = stage + j * BF_STAGE;
        }
        for (int64_t r = r0; r < r1; r++) {
            const uint16_t *w = (const uint16_t *)(p->w + (size_t)r * p->w_stride);
            float *o = p->out + c0 * p->ldo + r;
            if (nc == BF_NC) {
                bf_tb_row(p->k, w, b, BF_NC, o, p->ldo);
            } else {
                bf_tb_row(p->k, w, b, nc, o, p->ldo);
            }
        }
    }
}

int lm__mm_bf16_avx2(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    if (p->wtype != LM_TYPE_BF16) {
        return 0;
    }
    if (p->kern == LM_KERN_TB) {
        mm_bf_tb(p, r0, r1);
    } else {
        mm_bf_vec(p, r0, r1);
    }
    return 1;
}
