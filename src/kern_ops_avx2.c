/*
 * AVX2 + FMA version of lm_expf_ggml over arrays (kern_ops.c has the scalar one). The function
 * is element-wise, so eight lanes at a time give exactly the scalar bits: the same FMAs in the
 * same order. The final j * 2^n (AVX-512's scalef) is one exact multiply while 2^n is a normal
 * float and the result cannot be subnormal; lanes outside that range (|n| large, rare: results
 * below ~1e-37 or above ~1e38) are recomputed by the scalar function. x and y may be the same
 * array.
 */
#include "lm.h"

#include <immintrin.h>
#include <stdint.h>

void lm__expf_array_avx2(const float *x, float *y, int64_t n);

void lm__expf_array_avx2(const float *x, float *y, int64_t n)
{
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 z = _mm256_fmadd_ps(v, _mm256_set1_ps(0x1.715476p+0f), r);
        const __m256 nn = _mm256_sub_ps(z, r);
        const __m256 b = _mm256_fnmadd_ps(nn, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                          _mm256_fnmadd_ps(nn, _mm256_set1_ps(0x1.62e4p-1f), v));
        const __m256 u = _mm256_mul_ps(b, b);
        const __m256 j = _mm256_fmadd_ps(
            _mm256_fmadd_ps(
                _mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)),
                u,
                _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
            u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f)));
        /* 2^n for n in [-100, 100] from the exponent bits; other lanes go scalar. */
        const __m256 ok = _mm256_and_ps(_mm256_cmp_ps(nn, _mm256_set1_ps(-100.0f), _CMP_GE_OQ),
                                        _mm256_cmp_ps(nn, _mm256_set1_ps(100.0f), _CMP_LE_OQ));
        const __m256i e =
            _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(nn), _mm256_set1_epi32(127)), 23);
        const int mask = _mm256_movemask_ps(ok);
        float in[8];
        _mm256_storeu_ps(in, v); /* x may be y: keep the inputs for the scalar lanes */
        _mm256_storeu_ps(y + i, _mm256_mul_ps(j, _mm256_castsi256_ps(e)));
        if (mask != 0xff) {
            for (int l = 0; l < 8; l++) {
                if (!(mask & (1 << l))) {
                    y[i + l] = lm_expf_ggml(in[l]);
                }
            }
        }
    }
    for (; i < n; i++) {
        y[i] = lm_expf_ggml(x[i]);
    }
}
