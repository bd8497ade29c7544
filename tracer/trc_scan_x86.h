/*
 * trc_scan_x86.h - what the AVX2 and AVX-512 versions of the fused hash + stats loop share
 * (trc_scan_avx2.c, trc_scan_avx512.c): the step of the eight stats lanes, and putting them
 * back into their struct. Include only under an x86 GCC/Clang guard, after <immintrin.h> and
 * <math.h>.
 */
#ifndef TRC_SCAN_X86_H
#define TRC_SCAN_X86_H

#include "trc_int.h"

/* One block of 8 f32 elements e into the stats lanes, as the portable loop of trc_scan.c: a
 * non-finite element adds +0 to the sums (add, and mul then add for the squares, never FMA),
 * +Inf to lo and -Inf to hi, and counts in bad. */
__attribute__((target("avx2"))) static inline void
trc__stats_block(__m256 e, __m256d s[2], __m256d q[2], __m256 *lo, __m256 *hi, __m256i *bad)
{
    const __m256i expo = _mm256_set1_epi32(0x7f800000);
    __m256 m = _mm256_castsi256_ps(
        _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(e), expo), expo));
    __m256 f = _mm256_andnot_ps(m, e); /* non-finite -> +0 */
    __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(f));
    __m256d b = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
    s[0] = _mm256_add_pd(s[0], a);
    s[1] = _mm256_add_pd(s[1], b);
    q[0] = _mm256_add_pd(q[0], _mm256_mul_pd(a, a));
    q[1] = _mm256_add_pd(q[1], _mm256_mul_pd(b, b));
    *lo = _mm256_min_ps(*lo, _mm256_blendv_ps(f, _mm256_set1_ps(INFINITY), m));
    *hi = _mm256_max_ps(*hi, _mm256_blendv_ps(f, _mm256_set1_ps(-INFINITY), m));
    *bad = _mm256_sub_epi32(*bad, _mm256_castps_si256(m));
}

/* Eight double sums of x and of x*x, eight lows and highs and eight int32 counts of non-finite
 * elements back into the lanes struct. */
__attribute__((target("avx2"))) static inline void trc__lanes_store(struct trc__lanes *l,
                                                                    const __m256d s[2],
                                                                    const __m256d q[2], __m256 lo,
                                                                    __m256 hi, __m256i bad)
{
    _mm256_storeu_pd(l->s, s[0]);
    _mm256_storeu_pd(l->s + 4, s[1]);
    _mm256_storeu_pd(l->q, q[0]);
    _mm256_storeu_pd(l->q + 4, q[1]);
    _mm256_storeu_ps(l->lo, lo);
    _mm256_storeu_ps(l->hi, hi);
    int32_t b8[8];
    _mm256_storeu_si256((__m256i *)b8, bad);
    for (int j = 0; j < 8; j++) {
        l->bad += b8[j];
    }
}

#endif
