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

#include "trc_scan_x86.h"

#define AVX2 __attribute__((target("avx2")))

AVX2 size_t trc__scan_f32_avx2(const float *x, size_t n, uint64_t v[4], struct trc__lanes *l)
{
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
        trc__stats_block(e, s, q, &lo, &hi, &bad);
    }
    v[0] = v0;
    v[1] = v1;
    v[2] = v2;
    v[3] = v3;
    trc__lanes_store(l, s, q, lo, hi, bad);
    return i;
}
#else
size_t trc__scan_f32_avx2(const float *x, size_t n, uint64_t v[4], struct trc__lanes *l)
{
    return trc__scan_f32_c(x, n, v, l); /* never chosen: trc__simd_best() is scalar */
}
#endif
