/*
 * bench_kern.c - single-thread micro-benchmark of lm_matmul on TinyLlama-1.1B-like shapes
 * (k = 2048, m = 5632, and k = 5632, m = 2048), n = 1 (generation) and n = 64 (prompt), for
 * Q8_0, Q4_0, F16 and more. Prints GFLOP/s (2 m k n / t) and weight GB/s (bytes / t). Not a
 * test (no timing assertion). Build by hand against a Release build of the library:
 *
 *   cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build-rel liblm.a
 *   gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Isrc -Isrc/include tests/bench/bench_kern.c \
 *       build-rel/liblm.a -lm -lpthread -o /tmp/bench_kern
 *   /tmp/bench_kern [scalar|avx2] [types...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kern_int.h"
#include "lm.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t g_rng = 88172645463325252ull;

static float frand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 11) * 0x1p-53) * 2.0f - 1.0f;
}

static void bench(int t, int64_t k, int64_t m, int64_t n)
{
    const int64_t rb = lm_type_row_bytes(t, k);
    uint8_t *w = malloc((size_t)(rb * m));
    float *x = malloc((size_t)k * sizeof(float));
    for (int64_t r = 0; r < m; r++) {
        for (int64_t i = 0; i < k; i++) {
            x[i] = frand();
        }
        lm_quantize_row(t, x, w + r * rb, k);
    }
    const size_t as = lm_act_row_bytes(t, k);
    uint8_t *a = malloc(as * (size_t)n);
    for (int64_t c = 0; c < n; c++) {
        for (int64_t i = 0; i < k; i++) {
            x[i] = frand();
        }
        lm_act_convert(t, x, a + c * as, k);
    }
    float *out = malloc((size_t)(m * n) * sizeof(float));
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
        const double t0 = now();
        lm_matmul(t, k, m, w, a, as, n, out, m, 0, m);
        const double dt = now() - t0;
        best = dt < best ? dt : best;
    }
    printf("%-5s k=%-5lld m=%-5lld n=%-3lld  %8.2f ms  %7.2f GFLOP/s  %6.2f GB/s\n",
           lm_type_name(t), (long long)k, (long long)m, (long long)n, best * 1e3,
           2.0 * (double)m * (double)k * (double)n / best * 1e-9, (double)(rb * m) / best * 1e-9);
    free(w);
    free(x);
    free(a);
    free(out);
}

int main(int argc, char **argv)
{
    int ai = 1;
    if (argc > 1 && (strcmp(argv[1], "scalar") == 0 || strcmp(argv[1], "avx2") == 0)) {
        lm_simd_set(strcmp(argv[1], "scalar") == 0 ? LM_SIMD_SCALAR : LM_SIMD_AVX2);
        ai = 2;
    }
    printf("simd: %s\n", lm_simd_name(lm_simd_level()));
    int types[16], nt = 0;
    for (; ai < argc && nt < 16; ai++) {
        types[nt++] = lm_type_from_name(argv[ai]);
    }
    if (nt == 0) {
        types[nt++] = LM_TYPE_Q8_0;
        types[nt++] = LM_TYPE_Q4_0;
        types[nt++] = LM_TYPE_F16;
    }
    for (int i = 0; i < nt; i++) {
        if (types[i] < 0) {
            continue;
        }
        bench(types[i], 2048, 5632, 1);
        bench(types[i], 5632, 2048, 1);
        bench(types[i], 2048, 5632, 64);
        bench(types[i], 5632, 2048, 64);
    }
    return 0;
}
