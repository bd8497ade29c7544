/*
 * trc_scan_avx512.c - the four 64-bit hash lanes as one 256-bit register, with AVX-512 (F, VL,
 * DQ): a 32-byte block is one load, and the round v = rotl(v + w * P2, 31) * P1 of the four lanes
 * is two 64-bit multiplies (vpmullq), an add and a rotate (vprolq), where the scalar code needs
 * eight 64-bit multiplies per block on one port. The same round and lane layout serve lt64
 * (trc_codec.c), the stripes of XXH64 (trc_xxh64.c) and the fused hash + stats loop
 * (trc_scan.c), whose stats part is the AVX2 one of trc_scan_avx2.c. On this project's AMD EPYC
 * machines, in cache (tests/bench/bench_scan.c): lanes alone 14.6 -> 18.7 GB/s, the fused loop
 * 14.4 -> 15.6 (its 512-bit variant, one register of eight double sums, ran at 14.6). The
 * functions carry their own target attribute, so the file builds with the baseline flags;
 * callers check trc__simd_best() first. Depends on libc only.
 */
#include <math.h>

#include "trc_int.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>

#include "trc_scan_x86.h"

#define AVX512 __attribute__((target("avx2,avx512f,avx512vl,avx512dq")))

AVX512 static inline __m256i round4(__m256i v, __m256i w, __m256i p1, __m256i p2)
{
    return _mm256_mullo_epi64(_mm256_rol_epi64(_mm256_add_epi64(v, _mm256_mullo_epi64(w, p2)), 31),
                              p1);
}

AVX512 void trc__lanes_avx512(uint64_t v[4], const void *data, size_t n_blocks)
{
    const __m256i p1 = _mm256_set1_epi64x((long long)TRC__LT64_P1);
    const __m256i p2 = _mm256_set1_epi64x((long long)TRC__LT64_P2);
    const uint8_t *p = data;
    __m256i s = _mm256_loadu_si256((const __m256i *)v);
    for (size_t b = 0; b < n_blocks; b++) {
        s = round4(s, _mm256_loadu_si256((const __m256i *)(p + 32 * b)), p1, p2); /* LE: x86 */
    }
    _mm256_storeu_si256((__m256i *)v, s);
}

/* The fused loop: each block through round4 and through the stats step of trc_scan_x86.h. */
AVX512 size_t trc__scan_f32_avx512(const float *x, size_t n, uint64_t v[4], struct trc__lanes *l)
{
    const __m256i p1 = _mm256_set1_epi64x((long long)TRC__LT64_P1);
    const __m256i p2 = _mm256_set1_epi64x((long long)TRC__LT64_P2);
    __m256d s[2] = {_mm256_loadu_pd(l->s), _mm256_loadu_pd(l->s + 4)};
    __m256d q[2] = {_mm256_loadu_pd(l->q), _mm256_loadu_pd(l->q + 4)};
    __m256 lo = _mm256_loadu_ps(l->lo);
    __m256 hi = _mm256_loadu_ps(l->hi);
    __m256i bad = _mm256_setzero_si256();
    __m256i h = _mm256_loadu_si256((const __m256i *)v);
    size_t i = 0;
    for (; i + TRC__LANES <= n; i += TRC__LANES) {
        __m256i raw = _mm256_loadu_si256((const __m256i *)(x + i));
        h = round4(h, raw, p1, p2);
        __m256 e = _mm256_castsi256_ps(raw);
        trc__stats_block(e, s, q, &lo, &hi, &bad);
    }
    _mm256_storeu_si256((__m256i *)v, h);
    trc__lanes_store(l, s, q, lo, hi, bad);
    return i;
}
#else
void trc__lanes_avx512(uint64_t v[4], const void *data, size_t n_blocks)
{
    trc__lanes_c(v, data, n_blocks); /* never chosen: trc__simd_best() is below AVX-512 */
}

size_t trc__scan_f32_avx512(const float *x, size_t n, uint64_t v[4], struct trc__lanes *l)
{
    return trc__scan_f32_c(x, n, v, l);
}
#endif
