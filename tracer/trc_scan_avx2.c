/*
 * trc_scan_avx2.c - the AVX2 version of the fused hash + stats loop of trc_scan.c. Each block of
 * 8 f32 elements is one 256-bit register for the stats (lanes 0..3 and 4..7 widened to two
 * registers of doubles: add, and mul then add for the squares, never FMA, so the sums are those
 * of trc_codec.c) and the same 32 bytes as four 64-bit words for the lt64 lanes, which stay
 * scalar: AVX2 has no 64-bit multiply, and the four independent integer chains run beside the
 * vector ones. (Emulating it with three 32-bit multiplies, for the whole round or only w * P2,
 * ran at 7.5 GB/s in bench_scan on Zen 3, against 12.5 for this loop.) The function carries its
 * own target attribute, so the file builds with the baseline flags and is called only after
 * trc__simd_best() says AVX2. Depends on libc only.
 */
#include <math.h>
#include <string.h>

#include "trc_int.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))

/* Four doubles, four floats and eight int32 back into the lanes struct. */
AVX2 static void lanes_store(struct trc__lanes *l, const __m256d s[2], const __m256d q[2],
                             __m256 lo, __m256 hi, __m256i bad)
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

AVX2 size_t trc__scan_f32_avx2(const float *x, size_t n, uint64_t v[4], struct trc__lanes *l)
{
    const __m256i expo = _mm256_set1_epi32(0x7f800000);
    const __m256 pinf = _mm256_set1_ps(INFINITY);
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256d s[2] = {_mm256_loadu_pd(l->s), _mm256_loadu_pd(l->s + 4)};
    __m256d q[2] = {_mm256_loadu_pd(l->q), _mm256_loadu_pd(l->q + 4)};
    __m256 lo = _mm256_loadu_ps(l->lo);
    __m256 hi = _mm256_loadu_ps(l->hi);
    __m256i bad = _mm256_setzero_si256();
    uint64_t v0 = v[0], v1 = v[1], v2 = v[2], v3 = v[3];
    const uint8_t *p = (const uint8_t *)x;
    size_t i = 0;
    for (; i + TRC__LANES <= n; i += TRC__LANES) {
        uint64_t w0, w1, w2, w3;
        memcpy(&w0, p + 4 * i, 8); /* little-endian: x86 */
        memcpy(&w1, p + 4 * i + 8, 8);
        memcpy(&w2, p + 4 * i + 16, 8);
        memcpy(&w3, p + 4 * i + 24, 8);
        v0 = trc__lt64_round(v0, w0);
        v1 = trc__lt64_round(v1, w1);
        v2 = trc__lt64_round(v2, w2);
        v3 = trc__lt64_round(v3, w3);
        __asm__("" : "+r"(v0), "+r"(v1), "+r"(v2), "+r"(v3)); /* keep them scalar */
        __m256 e = _mm256_loadu_ps(x + i);
        __m256 m = _mm256_castsi256_ps(
            _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(e), expo), expo));
        __m256 f = _mm256_andnot_ps(m, e); /* non-finite -> +0 */
        __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(f));
        __m256d b = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
        s[0] = _mm256_add_pd(s[0], a);
        s[1] = _mm256_add_pd(s[1], b);
        q[0] = _mm256_add_pd(q[0], _mm256_mul_pd(a, a));
        q[1] = _mm256_add_pd(q[1], _mm256_mul_pd(b, b));
        lo = _mm256_min_ps(lo, _mm256_blendv_ps(f, pinf, m));
        hi = _mm256_max_ps(hi, _mm256_blendv_ps(f, ninf, m));
        bad = _mm256_sub_epi32(bad, _mm256_castps_si256(m));
    }
    v[0] = v0;
    v[1] = v1;
    v[2] = v2;
    v[3] = v3;
    lanes_store(l, s, q, lo, hi, bad);
    return i;
}
#else
size_t trc__scan_f32_avx2(const float *x, size_t n, uint64_t v[4], struct trc__lanes *l)
{
    return trc__scan_f32_c(x, n, v, l); /* never chosen: trc__simd_best() is scalar */
}
#endif
