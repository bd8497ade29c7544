/*
 * trc_scan.c - the content hash and the stats of a tensor in one pass over its data
 * (trc__hash_stats), for the recording hot path: at level stats it runs on the engine's thread
 * for every tensor. The result is bit for bit trc__hash + trc__stats (trc_codec.c): each block
 * of 8 f32 elements is one 32-byte lt64 block and one step of the 8 stats lanes, so the fused
 * loop only interleaves the two; the tails and the final sums are trc_codec.c's own code.
 * This file holds the portable loops (the fused one, and the hash lanes alone) and the run-time
 * choice; the AVX2 loop is in trc_scan_avx2.c, the AVX-512 ones in trc_scan_avx512.c. Depends on
 * libc only.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "trc_int.h"

/* One element into stats lane j: a non-finite element is counted and adds +0 to the sums, +Inf
 * to lo and -Inf to hi, as the SSE2 loop of trc_codec.c (a lane sum is never -0, so adding +0
 * changes nothing). */
static void lane_add(struct trc__lanes *l, int j, float e)
{
    uint32_t u;
    memcpy(&u, &e, 4);
    int bad = (u & 0x7f800000u) == 0x7f800000u;
    float f = bad ? 0.0f : e;
    float f_lo = bad ? INFINITY : f;
    float f_hi = bad ? -INFINITY : f;
    l->s[j] += (double)f;
    l->q[j] += (double)f * (double)f;
    l->lo[j] = l->lo[j] < f_lo ? l->lo[j] : f_lo; /* as minps/maxps */
    l->hi[j] = l->hi[j] > f_hi ? l->hi[j] : f_hi;
    l->bad += bad;
}

size_t trc__scan_f32_c(const float *x, size_t n, uint64_t v[4], struct trc__lanes *l)
{
    const uint8_t *p = (const uint8_t *)x;
    struct trc__lanes a = *l; /* a local copy: its stores cannot alias x */
    uint64_t h[4] = {v[0], v[1], v[2], v[3]};
    size_t i = 0;
    for (; i + TRC__LANES <= n; i += TRC__LANES) {
        for (int j = 0; j < 4; j++) {
            h[j] = trc__lt64_round(h[j], trc__load_le64(p + 4 * i + 8 * j));
        }
        for (int j = 0; j < TRC__LANES; j++) {
            lane_add(&a, j, x[i + j]);
        }
    }
    memcpy(v, h, sizeof h);
    *l = a;
    return i;
}

void trc__lanes_c(uint64_t v[4], const void *data, size_t n_blocks)
{
    const uint8_t *p = data;
    uint64_t h[4] = {v[0], v[1], v[2], v[3]};
    for (size_t b = 0; b < n_blocks; b++, p += 32) {
        for (int j = 0; j < 4; j++) {
            h[j] = trc__lt64_round(h[j], trc__load_le64(p + 8 * j));
        }
    }
    memcpy(v, h, sizeof h);
}

/* ---- the choice of loop -------------------------------------------------------------------- */

int trc__simd_best(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2")) {
        return TRC__SIMD_SCALAR;
    }
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("avx512dq")
               ? TRC__SIMD_AVX512
               : TRC__SIMD_AVX2;
#else
    return TRC__SIMD_SCALAR;
#endif
}

static atomic_int g_level = -1; /* -1: not chosen yet; set once (a race only repeats it) */

int trc__simd_level(void)
{
    int a = atomic_load_explicit(&g_level, memory_order_relaxed);
    if (a < 0) {
        const char *e = getenv("LLTRACE_SIMD");
        a = trc__simd_best();
        if (e && strcmp(e, "scalar") == 0) {
            a = TRC__SIMD_SCALAR;
        } else if (e && strcmp(e, "avx2") == 0 && a > TRC__SIMD_AVX2) {
            a = TRC__SIMD_AVX2;
        }
        atomic_store_explicit(&g_level, a, memory_order_relaxed);
    }
    return a;
}

void trc__lanes(uint64_t v[4], const void *data, size_t n_blocks)
{
    if (trc__simd_level() == TRC__SIMD_AVX512) {
        trc__lanes_avx512(v, data, n_blocks);
    } else {
        trc__lanes_c(v, data, n_blocks);
    }
}

void trc__hash_stats_simd(const void *data, enum trc_dtype dt, size_t n_elems, uint64_t *hash,
                          struct trc__stats *st, int simd)
{
    if (dt != TRC_DTYPE_F32) {
        *hash = trc__hash(data, n_elems * trc__dtype_size(dt));
        trc__stats(data, dt, n_elems, st);
        return;
    }
    const float *x = data;
    uint64_t v[4];
    struct trc__lanes l;
    trc__hash_init(v);
    trc__lanes_init(&l);
    size_t i = simd == TRC__SIMD_AVX512 ? trc__scan_f32_avx512(x, n_elems, v, &l)
               : simd == TRC__SIMD_AVX2 ? trc__scan_f32_avx2(x, n_elems, v, &l)
                                        : trc__scan_f32_c(x, n_elems, v, &l);
    *hash = trc__hash_end(v, data, 4 * n_elems, 4 * i);
    trc__stats_lanes(&l, x, n_elems, i, st);
}

void trc__hash_stats(const void *data, enum trc_dtype dt, size_t n_elems, uint64_t *hash,
                     struct trc__stats *st)
{
    trc__hash_stats_simd(data, dt, n_elems, hash, st, trc__simd_level());
}
