/*
 * bench_scan.c - single-thread benchmark of the per-tensor hash + stats of the tracer
 * (tracer/trc_scan.c): the old two passes (trc__hash then trc__stats), each of them alone, and
 * the fused trc__hash_stats with the portable loop, the AVX2 one and the AVX-512 one, the hash
 * lanes alone (trc__lanes_c, trc__lanes_avx512) and the SIMD loops' stats step alone
 * (trc_scan_x86.h: what the fused loop would run at with a free hash), on f32 activation-like
 * buffers of 8 KiB, 22 KiB and 128 KiB that stay in cache; levels the CPU lacks print 0. Prints
 * GB/s (best of 5 runs of about 64 MB each) and the speed-up of the fused pass over the two;
 * checks that the fused results equal the two-pass ones bit for bit. Not a test (no timing
 * assertion). Built by tests/CMakeLists.txt (build/release/tests/bench_scan), or by hand against
 * a Release build of the tracer:
 *
 *   cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build-rel trc
 *   gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Itracer -Itracer/include \
 *       tests/bench/bench_scan.c build-rel/libtrc.a -lzstd -lsqlite3 -lm -o /tmp/bench_scan
 *   /tmp/bench_scan
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trc_int.h"

enum { RUNS = 5, MODES = 9 };
static const char *const mode_names[MODES] = {"hash",    "stats",        "hash+stats",
                                              "fused-c", "fused-avx2",   "fused-avx512",
                                              "lanes-c", "lanes-avx512", "stats-avx2"};
/* The SIMD level a mode needs (modes 3..8). */
static int mode_simd(int m)
{
    return m == 4 || m == 8   ? TRC__SIMD_AVX2
           : m == 5 || m == 7 ? TRC__SIMD_AVX512
                              : TRC__SIMD_SCALAR;
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>

#include "trc_scan_x86.h"

/* The stats step of the SIMD fused loops over n elements (a multiple of 8), without the hash. */
__attribute__((target("avx2"))) static void stats_avx2(const float *x, size_t n,
                                                       struct trc__lanes *l)
{
    __m256d s[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()};
    __m256d q[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()};
    __m256 lo = _mm256_set1_ps(INFINITY);
    __m256 hi = _mm256_set1_ps(-INFINITY);
    __m256i bad = _mm256_setzero_si256();
    for (size_t i = 0; i + 8 <= n; i += 8) {
        trc__stats_block(_mm256_loadu_ps(x + i), s, q, &lo, &hi, &bad);
    }
    trc__lanes_store(l, s, q, lo, hi, bad);
}
#else
static void stats_avx2(const float *x, size_t n, struct trc__lanes *l)
{
    (void)x, (void)n, (void)l; /* never run: mode_simd(8) is above trc__simd_best() */
}
#endif
static volatile uint64_t g_sink;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void activations(float *x, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        double u1 = ((seed >> 8) + 1) / 16777217.0;
        seed = seed * 1664525u + 1013904223u;
        double u2 = (seed >> 8) / 16777216.0;
        double g = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        x[i] = (float)(g * (0.5 + 0.4 * sin((double)(i % 2048) * 0.01)));
    }
}

static void run_mode(int mode, const float *x, size_t n, uint64_t *h, struct trc__stats *st)
{
    switch (mode) {
    case 0:
        *h = trc__hash(x, 4 * n);
        break;
    case 1:
        trc__stats(x, TRC_DTYPE_F32, n, st);
        break;
    case 2:
        *h = trc__hash(x, 4 * n);
        trc__stats(x, TRC_DTYPE_F32, n, st);
        break;
    case 6:
    case 7: {
        uint64_t v[4];
        trc__hash_init(v);
        (mode == 6 ? trc__lanes_c : trc__lanes_avx512)(v, x, 4 * n / 32);
        *h = v[0] ^ v[1] ^ v[2] ^ v[3];
        break;
    }
    case 8: {
        struct trc__lanes l = {0};
        stats_avx2(x, n, &l);
        *h = (uint64_t)l.bad + (uint64_t)(l.s[0] != 0.0);
        break;
    }
    default:
        trc__hash_stats_simd(x, TRC_DTYPE_F32, n, h, st, mode_simd(mode));
        break;
    }
}

/* Best GB/s of RUNS runs of reps calls. */
static double gbps(int mode, const float *x, size_t n, int reps)
{
    double best = 0.0;
    for (int r = 0; r < RUNS; r++) {
        uint64_t h = 0;
        struct trc__stats st = {0};
        double t0 = now_s();
        for (int k = 0; k < reps; k++) {
            run_mode(mode, x, n, &h, &st);
            g_sink += h + (uint64_t)st.n_nan;
        }
        double gb = (double)reps * 4.0 * (double)n / 1e9 / (now_s() - t0);
        best = gb > best ? gb : best;
    }
    return best;
}

int main(void)
{
    static const size_t kib[] = {8, 22, 128};
    const int best = trc__simd_best();
    printf("%-8s", "size");
    for (int m = 0; m < MODES; m++) {
        printf(" %12s", mode_names[m]);
    }
    printf("  (GB/s)  fused/two-pass\n");
    for (size_t z = 0; z < sizeof kib / sizeof kib[0]; z++) {
        size_t n = kib[z] * 1024 / 4;
        float *x = malloc(n * sizeof *x);
        if (!x) {
            return 1;
        }
        activations(x, n, (uint32_t)z + 1);
        uint64_t h0, h1;
        struct trc__stats s0, s1;
        h0 = trc__hash(x, 4 * n);
        trc__stats(x, TRC_DTYPE_F32, n, &s0);
        for (int m = 3; m < 6; m++) {
            if (mode_simd(m) > best) {
                continue;
            }
            trc__hash_stats_simd(x, TRC_DTYPE_F32, n, &h1, &s1, mode_simd(m));
            if (h1 != h0 || memcmp(&s0, &s1, sizeof s0) != 0) {
                fprintf(stderr, "bench_scan: %s differs from the two passes\n", mode_names[m]);
                return 1;
            }
        }
        int reps = (int)(64e6 / (4.0 * (double)n));
        double g[MODES] = {0};
        printf("%4zu KiB", kib[z]);
        for (int m = 0; m < MODES; m++) {
            g[m] = mode_simd(m) > best ? 0.0 : gbps(m, x, n, reps);
            printf(" %12.2f", g[m]);
        }
        printf("  x%.2f (c)  x%.2f (avx2)  x%.2f (avx512)\n", g[3] / g[2], g[4] / g[2],
               g[5] / g[2]);
        free(x);
    }
    return 0;
}
