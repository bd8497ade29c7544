/*
 * Tests of the weight types (src/quant.c), the activation converters (src/quant_act.c) and
 * SHA-256 (src/sha256.c): the type table and its errors, half/bfloat16 edge cases, activation
 * quantization on hand-computed blocks (ties, all-zero blocks), and quantize -> dequantize error
 * bounds for every type lm_quantize_row supports.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kern_int.h"
#include "lm.h"

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Exact float equality, as bit patterns (Check's float macros promote to double). */
#define ASSERT_BITS(a, b) ck_assert_uint_eq(f2u(a), f2u(b))

/* Deterministic pseudo-random floats (xorshift), roughly normal by summing uniforms. */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static float frand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 11) * 0x1p-53) * 2.0f - 1.0f;
}

static float nrand(void)
{
    return (frand() + frand() + frand() + frand()) * 0.8f;
}

/* ---- core
 * ---------------------------------------------------------------------------------------- */

START_TEST(test_quant_type_table)
{
    ck_assert_str_eq(lm_type_name(LM_TYPE_Q4_K), "Q4_K");
    ck_assert_str_eq(lm_type_name(LM_TYPE_BF16), "BF16");
    ck_assert_ptr_null(lm_type_name(4));
    ck_assert_ptr_null(lm_type_name(-1));
    ck_assert_ptr_null(lm_type_name(LM_TYPE_COUNT));
    ck_assert_int_eq(lm_type_from_name("q8_0"), LM_TYPE_Q8_0);
    ck_assert_int_eq(lm_type_from_name("F16"), LM_TYPE_F16);
    ck_assert_int_eq(lm_type_from_name("q6_k"), LM_TYPE_Q6_K);
    ck_assert_int_eq(lm_type_from_name("q6_"), -1);
    ck_assert_int_eq(lm_type_from_name("q6_kk"), -1);
    ck_assert_int_eq(lm_type_from_name(NULL), -1);
    ck_assert(lm_type_known(LM_TYPE_Q8_K));
    ck_assert(!lm_type_known(5));
    static const struct {
        int t;
        int64_t bs, bb;
    } want[] = {{LM_TYPE_F32, 1, 4},      {LM_TYPE_F16, 1, 2},      {LM_TYPE_BF16, 1, 2},
                {LM_TYPE_Q4_0, 32, 18},   {LM_TYPE_Q4_1, 32, 20},   {LM_TYPE_Q5_0, 32, 22},
                {LM_TYPE_Q5_1, 32, 24},   {LM_TYPE_Q8_0, 32, 34},   {LM_TYPE_Q8_1, 32, 36},
                {LM_TYPE_Q2_K, 256, 84},  {LM_TYPE_Q3_K, 256, 110}, {LM_TYPE_Q4_K, 256, 144},
                {LM_TYPE_Q5_K, 256, 176}, {LM_TYPE_Q6_K, 256, 210}, {LM_TYPE_Q8_K, 256, 292}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        ck_assert_int_eq(lm_type_block_size(want[i].t), want[i].bs);
        ck_assert_int_eq(lm_type_block_bytes(want[i].t), want[i].bb);
        ck_assert_int_eq(lm_type_row_bytes(want[i].t, 4 * want[i].bs), 4 * want[i].bb);
    }
    ck_assert_int_eq(lm_type_block_size(4), 0);
    ck_assert_int_eq(lm_type_block_bytes(99), 0);
}
END_TEST

START_TEST(test_quant_f16_edges)
{
    ck_assert_uint_eq(lm_f32_to_f16(0.0f), 0x0000);
    ck_assert_uint_eq(lm_f32_to_f16(-0.0f), 0x8000);
    ck_assert_uint_eq(lm_f32_to_f16(1.0f), 0x3C00);
    ck_assert_uint_eq(lm_f32_to_f16(65504.0f), 0x7BFF);
    ck_assert_uint_eq(lm_f32_to_f16(65519.0f), 0x7BFF); /* below the halfway point */
    ck_assert_uint_eq(lm_f32_to_f16(65520.0f), 0x7C00); /* tie rounds to even = inf */
    ck_assert_uint_eq(lm_f32_to_f16(INFINITY), 0x7C00);
    ck_assert_uint_eq(lm_f32_to_f16(-INFINITY), 0xFC00);
    ck_assert_uint_eq(lm_f32_to_f16(NAN), 0x7E00);
    ck_assert_uint_eq(lm_f32_to_f16(-NAN), 0xFE00);
    ck_assert_uint_eq(lm_f32_to_f16(0x1p-24f), 0x0001);        /* smallest subnormal */
    ck_assert_uint_eq(lm_f32_to_f16(0x1p-25f), 0x0000);        /* tie to even: 0 */
    ck_assert_uint_eq(lm_f32_to_f16(0x1.8p-24f), 0x0002);      /* tie to even: 2 */
    ck_assert_uint_eq(lm_f32_to_f16(0x1.004p0f), 0x3C01);      /* 1 + 2^-10, exact */
    ck_assert_uint_eq(lm_f32_to_f16(u2f(0x3F801000)), 0x3C00); /* exact tie, even below */
    ck_assert_uint_eq(lm_f32_to_f16(u2f(0x3F803000)), 0x3C02); /* exact tie, even above */
    ck_assert_uint_eq(lm_f32_to_f16(0x1p-14f), 0x0400);        /* smallest normal */
    ck_assert_uint_eq(f2u(lm_f16_to_f32(0x0001)), f2u(0x1p-24f));
    ck_assert_uint_eq(f2u(lm_f16_to_f32(0x83FF)), f2u(-0x1.ff8p-15f));
    ck_assert_uint_eq(f2u(lm_f16_to_f32(0x7C00)), f2u(INFINITY));
    ck_assert(isnan(lm_f16_to_f32(0x7E00)));
    ck_assert_uint_eq(f2u(lm_f16_to_f32(0x8000)), 0x80000000u);
    /* Every half survives the round trip. */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) {
            continue;
        }
        ck_assert_uint_eq(lm_f32_to_f16(lm_f16_to_f32((uint16_t)h)), h);
    }
    /* The F16C flavour keeps NaN payloads. */
    ck_assert_uint_eq(lm__f32_to_f16_hw(u2f(0x7FC02000)), 0x7E01);
    ck_assert_uint_eq(lm__f32_to_f16_hw(1.0f), 0x3C00);
}
END_TEST

START_TEST(test_quant_bf16_edges)
{
    ck_assert_uint_eq(lm_f32_to_bf16(1.0f), 0x3F80);
    ck_assert_uint_eq(lm_f32_to_bf16(u2f(0x3F808000)), 0x3F80); /* tie, even below */
    ck_assert_uint_eq(lm_f32_to_bf16(u2f(0x3F818000)), 0x3F82); /* tie, even above */
    ck_assert_uint_eq(lm_f32_to_bf16(u2f(0x3F808001)), 0x3F81);
    ck_assert_uint_eq(lm_f32_to_bf16(INFINITY), 0x7F80);
    ck_assert_uint_eq(lm_f32_to_bf16(u2f(0x7F800001)), 0x7FC0); /* signalling NaN quieted */
    ck_assert_uint_eq(lm_f32_to_bf16(u2f(0x00018000)), 0x0002); /* subnormal rounds, no flush */
    ck_assert_uint_eq(lm_f32_to_bf16(u2f(0x7F7FFFFF)), 0x7F80); /* overflow to inf */
    ck_assert_uint_eq(f2u(lm_bf16_to_f32(0xC040)), f2u(-3.0f));
}
END_TEST

START_TEST(test_quant_sha256)
{
    char hex[65];
    lm_sha256_hex("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    lm_sha256_hex("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *s = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes */
    lm_sha256_hex(s, strlen(s), hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *m = malloc(1000000);
    memset(m, 'a', 1000000);
    lm_sha256_hex(m, 1000000, hex);
    free(m);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

/* Q8_0: amax 127 gives id = 1 exactly, so x*id are the inputs: ties go to even. */
START_TEST(test_quant_act_q8_0_ties)
{
    float x[64] = {0};
    x[0] = 127.0f;
    x[1] = 0.5f;
    x[2] = 1.5f;
    x[3] = 2.5f;
    x[4] = -0.5f;
    x[5] = -1.5f;
    x[6] = -126.5f;
    x[7] = 3.49f;
    struct lm_blk_q8_0 y[2];
    memset(y, 0x55, sizeof(y));
    lm_quantize_q8_0_act(x, y, 64);
    ck_assert_uint_eq(y[0].d, 0x3C00);
    const int want[8] = {127, 0, 2, 2, 0, -2, -126, 3};
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(y[0].qs[i], want[i]);
    }
    /* The all-zero second block: d = 0 and all quants 0. */
    ck_assert_uint_eq(y[1].d, 0);
    for (int i = 0; i < 32; i++) {
        ck_assert_int_eq(y[1].qs[i], 0);
    }
    /* id is 127/amax, not 1/d: amax = 3 gives id = 42.333..., x = 1.5 -> 63.5 -> 64 (even). */
    float z[32] = {3.0f, 1.5f, -3.0f};
    lm_quantize_q8_0_act(z, y, 32);
    ck_assert_int_eq(y[0].qs[0], 127);
    ck_assert_int_eq(y[0].qs[1], (int)rintf(1.5f * (127.f / 3.0f)));
    ck_assert_int_eq(y[0].qs[2], -127);
    ck_assert_uint_eq(y[0].d, lm_f32_to_f16(3.0f / 127.f));
}
END_TEST

START_TEST(test_quant_act_q8_1_sum)
{
    float x[32] = {0};
    x[0] = 127.0f;
    x[1] = -2.0f;
    x[2] = 0.5f;
    struct lm_blk_q8_1 y;
    lm_quantize_q8_1_act(x, &y, 32);
    ck_assert_uint_eq(y.d, 0x3C00);
    ck_assert_int_eq(y.qs[2], 0);
    ck_assert_uint_eq(y.s, lm_f32_to_f16(125.0f));
}
END_TEST

START_TEST(test_quant_act_q8_k)
{
    float x[512] = {0};
    x[0] = -127.0f; /* first largest |x|: max = -127, iscale = +1 */
    x[1] = 127.0f;
    x[2] = 0.5f;
    x[3] = 1.5f;
    x[4] = 2.5f;
    x[17] = -3.5f;
    struct lm_blk_q8_k y[2];
    memset(y, 0x55, sizeof(y));
    lm_quantize_q8_k_act(x, y, 512);
    ASSERT_BITS(y[0].d, 1.0f);
    const int want[5] = {-127, 127, 0, 2, 2};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(y[0].qs[i], want[i]);
    }
    ck_assert_int_eq(y[0].qs[17], -4);
    ck_assert_int_eq(y[0].bsums[0], 4);
    ck_assert_int_eq(y[0].bsums[1], -4);
    /* A positive max gives a negative d and negated quants. */
    float z[256] = {0};
    z[5] = 2.0f;
    z[6] = -1.0f;
    lm_quantize_q8_k_act(z, y, 256);
    ck_assert_int_eq(y[0].qs[5], -127);
    ck_assert_int_eq(y[0].qs[6], 64); /* -63.5 * -1 = 63.5 -> 64 */
    ASSERT_BITS(y[0].d, 1.0f / (-127.f / 2.0f));
    ck_assert(y[0].d < 0);
    /* The all-zero second block of the first call. */
    ASSERT_BITS(y[1].d, 0.0f);
    ck_assert_int_eq(y[1].bsums[3], 0);
}
END_TEST

START_TEST(test_quant_act_types)
{
    ck_assert_int_eq(lm_act_type(LM_TYPE_Q4_0), LM_TYPE_Q8_0);
    ck_assert_int_eq(lm_act_type(LM_TYPE_Q5_1), LM_TYPE_Q8_1);
    ck_assert_int_eq(lm_act_type(LM_TYPE_Q3_K), LM_TYPE_Q8_K);
    ck_assert_int_eq(lm_act_type(LM_TYPE_F16), LM_TYPE_F16);
    ck_assert_int_eq(lm_act_type(LM_TYPE_Q8_K), -1);
    ck_assert_uint_eq(lm_act_row_bytes(LM_TYPE_Q4_0, 64), 68);
    ck_assert_uint_eq(lm_act_row_bytes(LM_TYPE_Q6_K, 512), 584);
    ck_assert_uint_eq(lm_act_row_bytes(LM_TYPE_Q6_K, 100), 0);
    ck_assert_uint_eq(lm_act_row_bytes(LM_TYPE_BF16, 3), 6);
    ck_assert_uint_eq(lm_act_row_bytes(99, 32), 0);
}
END_TEST

/* ---- errors -------------------------------------------------------------------------------------
 */

START_TEST(test_quant_errors)
{
    float f[256] = {0};
    uint8_t b[1024];
    ck_assert_int_eq(lm_type_row_bytes(LM_TYPE_Q4_0, 33), -1);
    ck_assert_int_eq(lm_type_row_bytes(LM_TYPE_Q4_K, 128), -1);
    ck_assert_int_eq(lm_type_row_bytes(4, 32), -1);
    ck_assert_int_eq(lm_type_row_bytes(LM_TYPE_F32, -1), -1);
    ck_assert_int_eq(lm_type_row_bytes(LM_TYPE_Q8_0, INT64_MAX - 31), -1);
    ck_assert_int_eq(lm_dequant_row(LM_TYPE_Q4_0, b, f, 31), LM_EINVAL);
    ck_assert_int_eq(lm_dequant_row(4, b, f, 32), LM_EINVAL);
    ck_assert_int_eq(lm_dequant_row(LM_TYPE_Q8_1, b, f, 32), LM_EINVAL);
    ck_assert_int_eq(lm_dequant_row(LM_TYPE_Q8_0, NULL, f, 32), LM_EINVAL);
    ck_assert_int_eq(lm_dequant_row(LM_TYPE_Q8_0, b, f, 0), 0);
    ck_assert_int_eq(lm_quantize_row(LM_TYPE_Q3_K, f, b, 256), 0);
    ck_assert_int_eq(lm_quantize_row(LM_TYPE_Q3_K, f, b, 128), LM_EINVAL);
    ck_assert_int_eq(lm_quantize_row(LM_TYPE_Q8_K, f, b, 256), LM_EUNSUPPORTED);
    ck_assert_int_eq(lm_quantize_row(LM_TYPE_Q4_K, f, b, 255), LM_EINVAL);
    ck_assert_int_eq(lm_quantize_row(77, f, b, 32), LM_EINVAL);
    ck_assert_int_eq(lm_quantize_row(LM_TYPE_Q8_0, NULL, b, 32), LM_EINVAL);
}
END_TEST

/* ---- roundtrip ----------------------------------------------------------------------------------
 */

/* NMSE of quantize -> dequantize on n normal-ish values (with an outlier per 256). */
static double roundtrip_nmse(int type, int64_t n)
{
    float *x = malloc((size_t)n * sizeof(float)), *y = malloc((size_t)n * sizeof(float));
    uint8_t *q = malloc((size_t)lm_type_row_bytes(type, n));
    for (int64_t i = 0; i < n; i++) {
        x[i] = nrand() * (i % 256 == 7 ? 4.0f : 1.0f);
    }
    ck_assert_int_eq(lm_quantize_row(type, x, q, n), 0);
    ck_assert_int_eq(lm_dequant_row(type, q, y, n), 0);
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        const double dx = (double)x[i], dy = (double)y[i];
        num += (dx - dy) * (dx - dy);
        den += dx * dx;
    }
    free(x);
    free(y);
    free(q);
    return num / den;
}

START_TEST(test_quant_roundtrip_bounds)
{
    static const struct {
        int t;
        double bound;
    } cases[] = {
        {LM_TYPE_F32, 0.0},   {LM_TYPE_F16, 1e-7},  {LM_TYPE_BF16, 1e-5}, {LM_TYPE_Q8_0, 1e-4},
        {LM_TYPE_Q5_0, 2e-3}, {LM_TYPE_Q5_1, 2e-3}, {LM_TYPE_Q4_0, 1e-2}, {LM_TYPE_Q4_1, 1e-2},
        {LM_TYPE_Q6_K, 5e-4}, {LM_TYPE_Q5_K, 2e-3}, {LM_TYPE_Q4_K, 8e-3}, {LM_TYPE_Q2_K, 0.15},
        {LM_TYPE_Q3_K, 0.05},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const double e = roundtrip_nmse(cases[i].t, 4096);
        ck_assert_msg(e <= cases[i].bound, "%s: nmse %g > %g", lm_type_name(cases[i].t), e,
                      cases[i].bound);
    }
}
END_TEST

/* Per-element bound of Q8_0: |x - y| <= d/2 (+ f16 rounding of d) within each block. */
START_TEST(test_quant_q8_0_elementwise)
{
    float x[256], y[256];
    struct lm_blk_q8_0 q[8];
    for (int i = 0; i < 256; i++) {
        x[i] = nrand();
    }
    ck_assert_int_eq(lm_quantize_row(LM_TYPE_Q8_0, x, q, 256), 0);
    ck_assert_int_eq(lm_dequant_row(LM_TYPE_Q8_0, q, y, 256), 0);
    for (int i = 0; i < 256; i++) {
        const float d = lm_f16_to_f32(q[i / 32].d);
        ck_assert(fabsf(x[i] - y[i]) <= 0.5f * d + fabsf(x[i]) * 1e-3f);
    }
}
END_TEST

/* Zero input quantizes to zero output for every type, and all-equal blocks stay exact in Q8_0. */
START_TEST(test_quant_zero_and_constant)
{
    static const int types[] = {LM_TYPE_Q4_0, LM_TYPE_Q4_1, LM_TYPE_Q5_0, LM_TYPE_Q5_1,
                                LM_TYPE_Q8_0, LM_TYPE_Q2_K, LM_TYPE_Q3_K, LM_TYPE_Q4_K,
                                LM_TYPE_Q5_K, LM_TYPE_Q6_K};
    float x[256] = {0}, y[256];
    uint8_t q[512];
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        ck_assert_int_eq(lm_quantize_row(types[t], x, q, 256), 0);
        ck_assert_int_eq(lm_dequant_row(types[t], q, y, 256), 0);
        for (int i = 0; i < 256; i++) {
            ck_assert(y[i] == 0.0f);
        }
    }
    for (int i = 0; i < 32; i++) {
        x[i] = 0.25f;
    }
    ck_assert_int_eq(lm_quantize_row(LM_TYPE_Q8_0, x, q, 32), 0);
    ck_assert_int_eq(lm_dequant_row(LM_TYPE_Q8_0, q, y, 32), 0);
    for (int i = 0; i < 32; i++) {
        ck_assert(fabsf(y[i] - 0.25f) <= 1e-4f);
    }
}
END_TEST

Suite *quant_suite(void);
Suite *quant_suite(void)
{
    Suite *s = suite_create("quant");
    TCase *core = tcase_create("core");
    tcase_add_test(core, test_quant_type_table);
    tcase_add_test(core, test_quant_f16_edges);
    tcase_add_test(core, test_quant_bf16_edges);
    tcase_add_test(core, test_quant_sha256);
    tcase_add_test(core, test_quant_act_q8_0_ties);
    tcase_add_test(core, test_quant_act_q8_1_sum);
    tcase_add_test(core, test_quant_act_q8_k);
    tcase_add_test(core, test_quant_act_types);
    suite_add_tcase(s, core);
    TCase *err = tcase_create("errors");
    tcase_add_test(err, test_quant_errors);
    suite_add_tcase(s, err);
    TCase *rt = tcase_create("roundtrip");
    tcase_add_test(rt, test_quant_roundtrip_bounds);
    tcase_add_test(rt, test_quant_q8_0_elementwise);
    tcase_add_test(rt, test_quant_zero_and_constant);
    suite_add_tcase(s, rt);
    return s;
}
