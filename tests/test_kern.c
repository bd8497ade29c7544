/*
 * Tests of the matmul kernels (src/kern_dot*.c, src/cpu.c): the scalar and AVX2 paths give
 * identical bits for every weight type, many k and n (1, 2, 3, 4, 5, 8, 17, 64) and row counts
 * that do and do not select tinyBLAS / repacked formulas; results do not depend on how rows are
 * split (r0/r1); every output is within a tight bound of a double-precision dot product of the
 * dequantized operands; the kernel choice follows llama.cpp's rules; bad arguments are rejected.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kern_int.h"
#include "lm.h"

static uint64_t g_rng = 0x243F6A8885A308D3ull;

static float frand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 11) * 0x1p-53) * 2.0f - 1.0f;
}

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Exact float equality, as bit patterns. */
#define ASSERT_BITS(a, b) ck_assert_uint_eq(f2u(a), f2u(b))

static int have_avx2(void)
{
    return lm_simd_detect() >= LM_SIMD_AVX2;
}

/* Byte offsets of the f16 d and dmin of a K-quant super-block (-1: none). */
static void kq_d_offsets(int t, int *od, int *om)
{
    *od = t == LM_TYPE_Q2_K ? 80 : t == LM_TYPE_Q3_K ? 108 : t == LM_TYPE_Q6_K ? 208 : 0;
    *om = t == LM_TYPE_Q2_K ? 82 : (t == LM_TYPE_Q4_K || t == LM_TYPE_Q5_K) ? 2 : -1;
}

/* K-quant rows of random bytes (every quant, scale and min pattern, extreme ones included) with
 * small f16 super-block scales. */
static void raw_kquant_rows(int t, uint8_t *w, int64_t m, int64_t k)
{
    const int64_t rb = lm_type_row_bytes(t, k), bb = lm_type_block_bytes(t);
    int od, om;
    kq_d_offsets(t, &od, &om);
    for (int64_t i = 0; i < rb * m; i++) {
        w[i] = (uint8_t)(g_rng >> 24);
        frand();
    }
    for (int64_t b = 0; b < rb * m / bb; b++) {
        const uint16_t d = lm_f32_to_f16(0.01f + 0.001f * (float)(b % 13));
        const uint16_t dm = lm_f32_to_f16(0.02f - 0.001f * (float)(b % 7));
        memcpy(w + b * bb + od, &d, 2);
        if (om >= 0) {
            memcpy(w + b * bb + om, &dm, 2);
        }
    }
}

static int g_raw_weights; /* 1: K-quant weights from raw_kquant_rows */

/* A weight matrix (m, k) of type t: quantized from random floats, or (K-quants, when
 * g_raw_weights is set) random bytes with small f16 scales. Caller frees. */
static uint8_t *make_weights(int t, int64_t m, int64_t k)
{
    if (lm_type_block_size(t) == 256 && g_raw_weights) {
        uint8_t *w = malloc((size_t)(lm_type_row_bytes(t, k) * m));
        raw_kquant_rows(t, w, m, k);
        return w;
    }
    const int64_t rb = lm_type_row_bytes(t, k);
    uint8_t *w = malloc((size_t)(rb * m));
    float *x = malloc((size_t)k * sizeof(float));
    for (int64_t r = 0; r < m; r++) {
        for (int64_t i = 0; i < k; i++) {
            x[i] = frand() * (1.0f + (float)(i % 7));
        }
        ck_assert_int_eq(lm_quantize_row(t, x, w + r * rb, k), 0);
    }
    free(x);
    return w;
}

/* The activation values the kernel sees, dequantized (n x k floats). */
static void act_values(int t, const uint8_t *a, size_t stride, int64_t n, int64_t k, float *v)
{
    const int at = lm_act_type(t);
    for (int64_t c = 0; c < n; c++) {
        const uint8_t *row = a + c * stride;
        float *o = v + c * k;
        if (at == LM_TYPE_Q8_K) {
            ck_assert_int_eq(lm_dequant_row(LM_TYPE_Q8_K, row, o, k), 0);
        } else if (at == LM_TYPE_Q8_1) {
            for (int64_t b = 0; b < k / 32; b++) {
                const struct lm_blk_q8_1 *y = (const struct lm_blk_q8_1 *)row + b;
                for (int i = 0; i < 32; i++) {
                    o[32 * b + i] = lm_f16_to_f32(y->d) * (float)y->qs[i];
                }
            }
        } else {
            ck_assert_int_eq(lm_dequant_row(at, row, o, k), 0);
        }
    }
}

struct mm_case {
    int t;
    int64_t m, k, n;
};

/* Calls the AVX2 kernel directly (no silent scalar fallback): it must exist for every weight
 * type and reproduce the scalar bits ref (n x m) for the whole range and for odd row pieces. */
static void check_avx2_kernel(const struct mm_case *cs, const uint8_t *w, const uint8_t *a,
                              size_t as, const float *ref)
{
    const int64_t m = cs->m, n = cs->n;
    float *out = malloc((size_t)(n * m) * sizeof(float));
    const struct lm_mm p = {.wtype = cs->t,
                            .kern = lm__kern_choose(cs->t, cs->k, m, n, 0),
                            .k = cs->k,
                            .m = m,
                            .n = n,
                            .ldo = m,
                            .w = w,
                            .w_stride = (size_t)lm_type_row_bytes(cs->t, cs->k),
                            .act = a,
                            .act_stride = as,
                            .out = out};
    const int64_t cuts[] = {0, m > 3 ? 3 : m, m > 11 ? 11 : m, m};
    for (int i = 0; i < 3; i++) {
        if (cuts[i] < cuts[i + 1]) {
            ck_assert_msg(lm__mm_avx2(&p, cuts[i], cuts[i + 1]) != 0, "%s kern %d: no AVX2 kernel",
                          lm_type_name(cs->t), p.kern);
        }
    }
    ck_assert_msg(memcmp(ref, out, (size_t)(n * m) * 4) == 0,
                  "%s m=%lld k=%lld n=%lld kern %d: lm__mm_avx2 differs from scalar",
                  lm_type_name(cs->t), (long long)m, (long long)cs->k, (long long)n, p.kern);
    free(out);
}

/* Runs one case: scalar vs AVX2 bits, split independence, and the double-precision bound. */
static void run_case(const struct mm_case *cs)
{
    const int64_t m = cs->m, k = cs->k, n = cs->n;
    uint8_t *w = make_weights(cs->t, m, k);
    const size_t as = lm_act_row_bytes(cs->t, k);
    uint8_t *a = malloc(as * (size_t)n);
    float *x = malloc((size_t)(n * k) * sizeof(float));
    float *out_s = malloc((size_t)(n * m) * sizeof(float)), *out_v = malloc((size_t)(n * m) * 4);
    for (int64_t i = 0; i < n * k; i++) {
        x[i] = frand() * 3.0f;
    }
    for (int64_t c = 0; c < n; c++) {
        lm_act_convert(cs->t, x + c * k, a + c * as, k);
    }
    ck_assert_int_eq(lm_simd_set(LM_SIMD_SCALAR), 0);
    ck_assert_int_eq(lm_matmul(cs->t, k, m, w, a, as, n, out_s, m, 0, m), 0);
    if (have_avx2()) {
        check_avx2_kernel(cs, w, a, as, out_s);
        ck_assert_int_eq(lm_simd_set(LM_SIMD_AVX2), 0);
        ck_assert_int_eq(lm_matmul(cs->t, k, m, w, a, as, n, out_v, m, 0, m), 0);
        ck_assert_msg(memcmp(out_s, out_v, (size_t)(n * m) * 4) == 0,
                      "%s m=%lld k=%lld n=%lld: scalar and avx2 differ", lm_type_name(cs->t),
                      (long long)m, (long long)k, (long long)n);
    }
    /* Rows computed in odd pieces (1, 3 and the rest) give the same bits. */
    memset(out_v, 0, (size_t)(n * m) * 4);
    const int64_t cut1 = m > 1 ? 1 : m, cut2 = m > 4 ? 4 : m;
    ck_assert_int_eq(lm_matmul(cs->t, k, m, w, a, as, n, out_v, m, 0, cut1), 0);
    ck_assert_int_eq(lm_matmul(cs->t, k, m, w, a, as, n, out_v, m, cut1, cut2), 0);
    ck_assert_int_eq(lm_matmul(cs->t, k, m, w, a, as, n, out_v, m, cut2, m), 0);
    ck_assert_msg(memcmp(out_s, out_v, (size_t)(n * m) * 4) == 0, "%s: split changes bits",
                  lm_type_name(cs->t));
    /* Against double precision on the dequantized operands. */
    float *wv = malloc((size_t)(m * k) * sizeof(float)), *av = malloc((size_t)(n * k) * 4);
    for (int64_t r = 0; r < m; r++) {
        ck_assert_int_eq(lm_dequant_row(cs->t, w + r * lm_type_row_bytes(cs->t, k), wv + r * k, k),
                         0);
    }
    act_values(cs->t, a, as, n, k, av);
    const double tol = (cs->t == LM_TYPE_Q4_1 || cs->t == LM_TYPE_Q5_1) ? 2e-3 : 1e-5;
    for (int64_t c = 0; c < n; c++) {
        for (int64_t r = 0; r < m; r++) {
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < k; i++) {
                const double prod = (double)wv[r * k + i] * (double)av[c * k + i];
                ref += prod;
                mag += fabs(prod);
            }
            ck_assert_msg(fabs((double)out_s[c * m + r] - ref) <= tol * mag + 1e-30,
                          "%s m=%lld k=%lld n=%lld row %lld col %lld: %g vs %g",
                          lm_type_name(cs->t), (long long)m, (long long)k, (long long)n,
                          (long long)r, (long long)c, (double)out_s[c * m + r], ref);
        }
    }
    lm_simd_set(-1);
    free(wv);
    free(av);
    free(w);
    free(a);
    free(x);
    free(out_s);
    free(out_v);
}

static const int k_types[] = {LM_TYPE_F32,  LM_TYPE_F16,  LM_TYPE_BF16, LM_TYPE_Q8_0, LM_TYPE_Q4_0,
                              LM_TYPE_Q4_1, LM_TYPE_Q5_0, LM_TYPE_Q5_1, LM_TYPE_Q2_K, LM_TYPE_Q3_K,
                              LM_TYPE_Q4_K, LM_TYPE_Q5_K, LM_TYPE_Q6_K};
#define N_TYPES (int)(sizeof(k_types) / sizeof(k_types[0]))

/* ---- core
 * ---------------------------------------------------------------------------------------- */

START_TEST(test_kern_scalar_avx2_identical)
{
    const int t = k_types[_i];
    const int64_t bs = lm_type_block_size(t);
    static const int64_t ns[] = {1, 2, 3, 4, 5, 8, 17, 64};
    /* k: one block, several blocks, and (for float types) lengths with tails and no tinyBLAS. */
    int64_t ks[4] = {bs == 256 ? 256 : 32, bs == 256 ? 768 : 96, bs == 256 ? 512 : 320,
                     bs == 1 ? 200 : (bs == 256 ? 1024 : 1024)};
    static const int64_t ms[] = {16, 12, 7};
    for (size_t im = 0; im < 3; im++) {
        for (size_t ik = 0; ik < 4; ik++) {
            for (size_t in = 0; in < sizeof(ns) / sizeof(ns[0]); in++) {
                if (ns[in] == 64 && ks[ik] > 320) {
                    continue; /* keeps the sanitizer run short */
                }
                const struct mm_case cs = {t, ms[im], ks[ik], ns[in]};
                run_case(&cs);
            }
        }
    }
}
END_TEST

/* K-quant weights of random bytes: all quant and scale values, every formula (vec_dot with
 * m = 12, repacked Q2_K/Q4_K with m = 16), one and several columns. */
START_TEST(test_kern_kquant_raw)
{
    static const int kt[] = {LM_TYPE_Q2_K, LM_TYPE_Q3_K, LM_TYPE_Q4_K, LM_TYPE_Q5_K, LM_TYPE_Q6_K};
    static const int64_t ns[] = {1, 3, 17};
    g_raw_weights = 1;
    for (size_t t = 0; t < 5; t++) {
        for (size_t in = 0; in < 3; in++) {
            const struct mm_case c1 = {kt[t], 16, 512, ns[in]}, c2 = {kt[t], 12, 768, ns[in]};
            run_case(&c1);
            run_case(&c2);
        }
    }
    g_raw_weights = 0;
}
END_TEST

/* Rows longer than the prepared repacked-Q4_0 kernel takes (8192) use the other tile. */
START_TEST(test_kern_long_rows)
{
    const struct mm_case c1 = {LM_TYPE_Q4_0, 8, 8192 + 32, 4}, c2 = {LM_TYPE_Q4_0, 16, 8192, 5};
    run_case(&c1);
    run_case(&c2);
}
END_TEST

/* Float lengths that exercise the vec_dot tails (k % 64 != 0) and k % 16 != 0. */
START_TEST(test_kern_float_tails)
{
    static const int64_t ks[] = {1, 15, 17, 63, 65, 100, 129, 1000};
    static const int ts[] = {LM_TYPE_F32, LM_TYPE_F16, LM_TYPE_BF16};
    for (size_t t = 0; t < 3; t++) {
        for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
            const struct mm_case c1 = {ts[t], 8, ks[i], 1}, c2 = {ts[t], 8, ks[i], 3};
            run_case(&c1);
            run_case(&c2);
        }
    }
}
END_TEST

/* A bf16 whose value is near 2^e (random sign and mantissa); e < -126 gives subnormals. */
static uint16_t bf16_near(int e)
{
    const float v = ldexpf(1.0f + fabsf(frand()), e) * (frand() < 0 ? -1.0f : 1.0f);
    return lm_f32_to_bf16(v);
}

/* BF16 with subnormal inputs (read as zero) and subnormal partial sums (flushed to zero): the
 * AVX2 kernels must emulate VDPBF16PS's DAZ/FTZ exactly as the scalar oracle, for vec_dot (n = 1)
 * and tinyBLAS (n = 3), with and without a vec_dot tail. */
START_TEST(test_kern_bf16_subnormal)
{
    if (!have_avx2()) {
        return;
    }
    static const int64_t ks[] = {64, 96, 256};
    for (size_t ik = 0; ik < 3; ik++) {
        const int64_t k = ks[ik], m = 8, n = 3;
        uint16_t *w = malloc((size_t)(m * k) * 2), *a = malloc((size_t)(n * k) * 2);
        /* Even rows: products of normals near 2^-128 (FTZ). Odd rows: huge weights against
         * only the subnormal activations (elements 0-15 of each 32), so DAZ decides the result. */
        for (int64_t i = 0; i < m * k; i++) {
            const int64_t r = i / k, e = i % k;
            w[i] = r % 2 == 0 ? bf16_near(-66 + (int)(g_rng % 8))
                              : ((e / 16) % 2 ? 0 : bf16_near(100));
        }
        for (int64_t i = 0; i < n * k; i++) {
            a[i] = ((i % k) / 16) % 2 == 0 ? (uint16_t)((g_rng >> 8) & 0x807F)
                                           : bf16_near(-66 + (int)(g_rng % 8));
            frand();
        }
        float out_s[24], out_v[24];
        for (int64_t nn = 1; nn <= n; nn += 2) {
            ck_assert_int_eq(lm_simd_set(LM_SIMD_SCALAR), 0);
            ck_assert_int_eq(lm_matmul(LM_TYPE_BF16, k, m, w, a, (size_t)k * 2, nn, out_s, m, 0, m),
                             0);
            const struct lm_mm p = {.wtype = LM_TYPE_BF16,
                                    .kern = lm__kern_choose(LM_TYPE_BF16, k, m, nn, 0),
                                    .k = k,
                                    .m = m,
                                    .n = nn,
                                    .ldo = m,
                                    .w = (const uint8_t *)w,
                                    .w_stride = (size_t)k * 2,
                                    .act = (const uint8_t *)a,
                                    .act_stride = (size_t)k * 2,
                                    .out = out_v};
            ck_assert_int_ne(lm__mm_avx2(&p, 0, m), 0);
            ck_assert_msg(memcmp(out_s, out_v, (size_t)(nn * m) * 4) == 0,
                          "bf16 subnormal k=%lld n=%lld: scalar and avx2 differ", (long long)k,
                          (long long)nn);
        }
        lm_simd_set(-1);
        free(w);
        free(a);
    }
}
END_TEST

START_TEST(test_kern_choice)
{
    ck_assert_int_eq(lm__kern_choose(LM_TYPE_F16, 64, 8, 1, 0), LM_KERN_VEC);
    ck_assert_int_eq(lm__kern_choose(LM_TYPE_F16, 64, 8, 2, 0), LM_KERN_TB);
    ck_assert_int_eq(lm__kern_choose(LM_TYPE_F16, 72, 8, 2, 0), LM_KERN_VEC);  /* k % 16 */
    ck_assert_int_eq(lm__kern_choose(LM_TYPE_F32, 64, 6, 2, 0), LM_KERN_VEC);  /* m % 4 */
    ck_assert_int_eq(lm__kern_choose(LM_TYPE_BF16, 48, 8, 2, 0), LM_KERN_VEC); /* k % 32 */
    ck_assert_int_eq(lm__kern_choose(LM_TYPE_BF16, 64, 8, 2, 0), LM_KERN_TB);
    ck_assert_int_eq(lm__kern_choose(LM_TYPE_Q4_0, 64, 8, 1, 0), LM_KERN_REPACK);
    ck_assert_int_eq(lm__kern_choose(LM_TYPE_Q4_0, 64, 12, 1, 0), LM_KERN_VEC);
    ck_assert_int_eq(lm__kern_choose(LM_TYPE_Q4_K, 256, 16, 9, LM_MM_NO_REPACK), LM_KERN_VEC);
    ck_assert_int_eq(lm__kern_choose(LM_TYPE_Q2_K, 256, 16, 9, 0), LM_KERN_REPACK);
    ck_assert_int_eq(lm__kern_choose(LM_TYPE_Q6_K, 256, 16, 9, 0), LM_KERN_VEC);
    ck_assert_int_eq(lm__kern_choose(LM_TYPE_Q8_0, 256, 16, 9, 0), LM_KERN_VEC);
}
END_TEST

/* The vec_dot and tinyBLAS orders are really different, and lm_dot_* follow them. */
START_TEST(test_kern_dot_structures)
{
    float x[256], y[256];
    uint16_t xh[256], yh[256];
    for (int i = 0; i < 256; i++) {
        x[i] = frand() * 100.0f;
        y[i] = frand();
        xh[i] = lm_f32_to_f16(x[i]);
        yh[i] = lm_f32_to_f16(y[i]);
    }
    int differ = 0;
    for (int n = 16; n <= 256; n += 16) {
        ck_assert_int_eq(lm_simd_set(LM_SIMD_SCALAR), 0);
        const float a = lm_dot_f32(n, x, y), b = lm_dot_f32_tb(n, x, y);
        const float c = lm_dot_f16(n, xh, yh), d = lm_dot_f16_tb(n, xh, yh);
        differ += a != b;
        if (have_avx2()) {
            ck_assert_int_eq(lm_simd_set(LM_SIMD_AVX2), 0);
            ASSERT_BITS(lm_dot_f32(n, x, y), a);
            ASSERT_BITS(lm_dot_f32_tb(n, x, y), b);
            ASSERT_BITS(lm_dot_f16(n, xh, yh), c);
            ASSERT_BITS(lm_dot_f16_tb(n, xh, yh), d);
        }
        double ref = 0;
        for (int i = 0; i < n; i++) {
            ref += (double)x[i] * (double)y[i];
        }
        ck_assert(fabs((double)a - ref) <= 1e-3);
        ck_assert(fabs((double)b - ref) <= 1e-3);
    }
    lm_simd_set(-1);
    ck_assert_int_gt(differ, 0);
    /* n = 16: tinyBLAS is red16 of the 16 products; vec_dot has no main loop (all tail). */
    float p[16];
    for (int i = 0; i < 16; i++) {
        p[i] = x[i] * y[i];
    }
    float seq = 0;
    for (int i = 0; i < 16; i++) {
        seq += p[i];
    }
    ASSERT_BITS(lm_dot_f32(16, x, y), seq);
    float b8[8], c4[4];
    for (int i = 0; i < 8; i++) {
        b8[i] = p[i + 8] + p[i];
    }
    for (int i = 0; i < 4; i++) {
        c4[i] = b8[i + 4] + b8[i];
    }
    ASSERT_BITS(lm_dot_f32_tb(16, x, y), (c4[0] + c4[2]) + (c4[1] + c4[3]));
}
END_TEST

START_TEST(test_kern_simd_control)
{
    ck_assert_str_eq(lm_simd_name(LM_SIMD_SCALAR), "scalar");
    ck_assert_str_eq(lm_simd_name(LM_SIMD_AVX2), "avx2");
    ck_assert_ptr_null(lm_simd_name(7));
    ck_assert_int_eq(lm_simd_set(LM_SIMD_SCALAR), 0);
    ck_assert_int_eq(lm_simd_level(), LM_SIMD_SCALAR);
    ck_assert_int_eq(lm_simd_set(LM_SIMD_COUNT), LM_EUNSUPPORTED);
    ck_assert_int_eq(lm_simd_level(), LM_SIMD_SCALAR);
    ck_assert_int_eq(lm_simd_set(-1), 0);
    ck_assert_int_le(lm_simd_level(), lm_simd_detect());
}
END_TEST

/* ---- errors
 * -------------------------------------------------------------------------------------- */

START_TEST(test_kern_errors)
{
    float out[64];
    uint8_t w[4096] = {0}, a[4096] = {0};
    ck_assert_int_eq(lm_matmul(LM_TYPE_Q8_K, 256, 4, w, a, 292, 1, out, 4, 0, 4), LM_EUNSUPPORTED);
    ck_assert_int_eq(lm_matmul(4, 32, 4, w, a, 34, 1, out, 4, 0, 4), LM_EUNSUPPORTED);
    ck_assert_int_eq(lm_matmul(LM_TYPE_Q8_0, 33, 4, w, a, 34, 1, out, 4, 0, 4), LM_EINVAL);
    ck_assert_int_eq(lm_matmul(LM_TYPE_Q8_0, 32, 4, w, a, 34, 1, out, 3, 0, 4), LM_EINVAL);
    ck_assert_int_eq(lm_matmul(LM_TYPE_Q8_0, 32, 4, w, a, 34, 1, out, 4, 2, 1), LM_EINVAL);
    ck_assert_int_eq(lm_matmul(LM_TYPE_Q8_0, 32, 4, w, a, 34, 1, out, 4, 0, 5), LM_EINVAL);
    ck_assert_int_eq(lm_matmul(LM_TYPE_Q8_0, 32, 4, w, a, 10, 2, out, 4, 0, 4), LM_EINVAL);
    ck_assert_int_eq(lm_matmul(LM_TYPE_Q8_0, 32, 4, NULL, a, 34, 1, out, 4, 0, 4), LM_EINVAL);
    ck_assert_int_eq(lm_matmul(LM_TYPE_Q8_0, 32, 4, w, a, 34, 1, out, 4, 2, 2), 0);
    ck_assert_int_eq(lm_matmul(LM_TYPE_Q8_0, 32, 4, w, a, 34, 0, out, 4, 0, 4), LM_EINVAL);
}
END_TEST

Suite *kern_suite(void);
Suite *kern_suite(void)
{
    Suite *s = suite_create("kern");
    TCase *core = tcase_create("core");
    tcase_set_timeout(core, 600);
    tcase_add_loop_test(core, test_kern_scalar_avx2_identical, 0, N_TYPES);
    tcase_add_test(core, test_kern_float_tails);
    tcase_add_test(core, test_kern_bf16_subnormal);
    tcase_add_test(core, test_kern_kquant_raw);
    tcase_add_test(core, test_kern_long_rows);
    tcase_add_test(core, test_kern_choice);
    tcase_add_test(core, test_kern_dot_structures);
    tcase_add_test(core, test_kern_simd_control);
    suite_add_tcase(s, core);
    TCase *err = tcase_create("errors");
    tcase_add_test(err, test_kern_errors);
    suite_add_tcase(s, err);
    return s;
}
