/*
 * kern_avx2_int.h - helpers shared by the AVX2 kernel files (src/kern_*_avx2.c, all built with
 * -mavx2 -mfma -mf16c): the float reductions of the contract in kern_int.h (hsum8, red16), f16
 * loads, and the entry points of the per-family AVX2 files that kern_dot_avx2.c dispatches to.
 * Include only from *_avx2.c files: the inline functions use AVX2 instructions.
 */
#ifndef LM_KERN_AVX2_INT_H
#define LM_KERN_AVX2_INT_H

#include <immintrin.h>
#include <string.h>

#include "kern_int.h"

#define AI static inline __attribute__((always_inline))

/* hsum_float_8: a_i = v_i + v_(i+4), (a0+a2)+(a1+a3). */
AI float lm__hsum8(__m256 v)
{
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* _mm512_reduce_add_ps of the 16 lanes (lo, hi): hsum8 of lo + hi. */
AI float lm__red16(__m256 lo, __m256 hi)
{
    return lm__hsum8(_mm256_add_ps(hi, lo));
}

/* (m0+m2)+(m1+m3) of a 4-lane vector. */
AI float lm__hsum4(__m128 v)
{
    const __m128 r = _mm_add_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)));
}

AI float lm__f16f(uint16_t h)
{
    return _cvtsh_ss(h);
}

AI uint16_t lm__rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* The lane sums of 8 int32 vectors (one per row) as one vector of 8 row sums (exact). */
AI __m256i lm__rowsums8(const __m256i v[8])
{
    const __m256i h01 = _mm256_hadd_epi32(v[0], v[1]), h23 = _mm256_hadd_epi32(v[2], v[3]);
    const __m256i h45 = _mm256_hadd_epi32(v[4], v[5]), h67 = _mm256_hadd_epi32(v[6], v[7]);
    const __m256i g0 = _mm256_hadd_epi32(h01, h23), g1 = _mm256_hadd_epi32(h45, h67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(g0, g1, 0x20),
                            _mm256_permute2x128_si256(g0, g1, 0x31));
}

/* K-quant weights (Q2_K..Q6_K), vec_dot and repacked formulas (kern_kq_avx2.c); 0 if p is not
 * one of them. */
int lm__mm_kq_avx2(const struct lm_mm *p, int64_t r0, int64_t r1);
/* BF16 weights, vec_dot and tinyBLAS formulas (kern_bf16_avx2.c); 0 if p is not BF16. */
int lm__mm_bf16_avx2(const struct lm_mm *p, int64_t r0, int64_t r1);

#endif
