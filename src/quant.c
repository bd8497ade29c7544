/*
 * quant.c - the ggml weight types: the type table, IEEE half / bfloat16 conversions, and the
 * dequantization and reference quantization of every weight type the engine reads.
 *
 * Dequantization is bit-identical to ggml's dequantize_row_* (ggml-base, built without -march:
 * no FMA, plain float multiply then add; FORMATS.md section 4). Quantization follows ggml's
 * quantize_row_*_ref algorithms (used by mkmodel to write models llama.cpp would write). This
 * file is built for baseline x86-64 in ISO C, so the compiler never contracts a*b+c: the float
 * operation order written here is the one executed. Depends on libc and libm only.
 */
#include "kern_int.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

/* ---- type table ------------------------------------------------------------------------------ */

struct type_info {
    const char *name;
    int64_t blck, bytes;
};

static const struct type_info k_types[LM_TYPE_COUNT] = {
    [LM_TYPE_F32] = {"F32", 1, 4},       [LM_TYPE_F16] = {"F16", 1, 2},
    [LM_TYPE_BF16] = {"BF16", 1, 2},     [LM_TYPE_Q4_0] = {"Q4_0", 32, 18},
    [LM_TYPE_Q4_1] = {"Q4_1", 32, 20},   [LM_TYPE_Q5_0] = {"Q5_0", 32, 22},
    [LM_TYPE_Q5_1] = {"Q5_1", 32, 24},   [LM_TYPE_Q8_0] = {"Q8_0", 32, 34},
    [LM_TYPE_Q8_1] = {"Q8_1", 32, 36},   [LM_TYPE_Q2_K] = {"Q2_K", 256, 84},
    [LM_TYPE_Q3_K] = {"Q3_K", 256, 110}, [LM_TYPE_Q4_K] = {"Q4_K", 256, 144},
    [LM_TYPE_Q5_K] = {"Q5_K", 256, 176}, [LM_TYPE_Q6_K] = {"Q6_K", 256, 210},
    [LM_TYPE_Q8_K] = {"Q8_K", 256, 292},
};

bool lm_type_known(int type)
{
    return type >= 0 && type < LM_TYPE_COUNT && k_types[type].name != NULL;
}

const char *lm_type_name(int type)
{
    return lm_type_known(type) ? k_types[type].name : NULL;
}

int lm_type_from_name(const char *name)
{
    if (!name) {
        return -1;
    }
    for (int t = 0; t < LM_TYPE_COUNT; t++) {
        const char *n = k_types[t].name;
        if (!n) {
            continue;
        }
        size_t i = 0;
        while (n[i] && name[i] && toupper((unsigned char)name[i]) == n[i]) {
            i++;
        }
        if (!n[i] && !name[i]) {
            return t;
        }
    }
    return -1;
}

int64_t lm_type_block_size(int type)
{
    return lm_type_known(type) ? k_types[type].blck : 0;
}

int64_t lm_type_block_bytes(int type)
{
    return lm_type_known(type) ? k_types[type].bytes : 0;
}

int64_t lm_type_row_bytes(int type, int64_t n)
{
    if (!lm_type_known(type) || n < 0 || n % k_types[type].blck != 0) {
        return -1;
    }
    const int64_t nb = n / k_types[type].blck;
    if (nb > INT64_MAX / k_types[type].bytes) {
        return -1;
    }
    return nb * k_types[type].bytes;
}

/* ---- half and bfloat16 -------------------------------------------------------------------------
 */

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

float lm_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1F;
    const uint32_t man = h & 0x3FF;
    if (exp == 0x1F) {
        return u2f(sign | 0x7F800000u | (man << 13));
    }
    if (exp != 0) {
        return u2f(sign | ((exp + 112) << 23) | (man << 13));
    }
    /* Subnormal or zero: man * 2^-24 is exact in f32. */
    const float v = (float)man * 0x1p-24f;
    return sign ? -v : v;
}

/* Round to nearest even, overflow to inf, subnormals kept, NaN -> 0x7E00 with the sign, as
 * ggml_compute_fp32_to_fp16: the value is scaled so that the float adder does the rounding. */
uint16_t lm_f32_to_f16(float f)
{
    const float to_inf = 0x1p+112f;
    const float to_zero = 0x1p-110f;
    float base = (fabsf(f) * to_inf) * to_zero;
    const uint32_t w = f2u(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) {
        bias = 0x71000000u;
    }
    base = u2f((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = f2u(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t man_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + man_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

float lm_bf16_to_f32(uint16_t h)
{
    return u2f((uint32_t)h << 16);
}

uint16_t lm_f32_to_bf16(float f)
{
    const uint32_t u = f2u(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) {
        return (uint16_t)((u >> 16) | 64); /* NaN: force quiet */
    }
    return (uint16_t)((u + (0x7FFFu + ((u >> 16) & 1))) >> 16);
}

/* ---- shared K-quant helpers -------------------------------------------------------------------
 */

void lm__scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void lm__q3k_scales(const uint8_t *b, int8_t out[16])
{
    for (int k = 0; k < 4; k++) {
        out[k] = (int8_t)(((b[k] & 15) | ((b[8 + k] & 3) << 4)) - 32);
        out[4 + k] = (int8_t)(((b[4 + k] & 15) | (((b[8 + k] >> 2) & 3) << 4)) - 32);
        out[8 + k] = (int8_t)(((b[k] >> 4) | (((b[8 + k] >> 4) & 3) << 4)) - 32);
        out[12 + k] = (int8_t)(((b[4 + k] >> 4) | (((b[8 + k] >> 6) & 3) << 4)) - 32);
    }
}

/* ---- dequantization (one block each; y gets the block's elements) ------------------------------
 */

static void dq_q4_0(const struct lm_blk_q4_0 *x, float *y)
{
    const float d = lm_f16_to_f32(x->d);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((x->qs[j] & 0x0F) - 8) * d;
        y[j + 16] = (float)((x->qs[j] >> 4) - 8) * d;
    }
}

static void dq_q4_1(const struct lm_blk_q4_1 *x, float *y)
{
    const float d = lm_f16_to_f32(x->d);
    const float m = lm_f16_to_f32(x->m);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(x->qs[j] & 0x0F) * d + m;
        y[j + 16] = (float)(x->qs[j] >> 4) * d + m;
    }
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void dq_q5_0(const struct lm_blk_q5_0 *x, float *y)
{
    const float d = lm_f16_to_f32(x->d);
    const uint32_t qh = rd32(x->qh);
    for (int j = 0; j < 16; j++) {
        const int h0 = (int)((qh >> j) << 4) & 0x10;
        const int h1 = (int)(qh >> (j + 12)) & 0x10;
        y[j] = (float)(((x->qs[j] & 0x0F) | h0) - 16) * d;
        y[j + 16] = (float)(((x->qs[j] >> 4) | h1) - 16) * d;
    }
}

static void dq_q5_1(const struct lm_blk_q5_1 *x, float *y)
{
    const float d = lm_f16_to_f32(x->d);
    const float m = lm_f16_to_f32(x->m);
    const uint32_t qh = rd32(x->qh);
    for (int j = 0; j < 16; j++) {
        const int h0 = (int)((qh >> j) << 4) & 0x10;
        const int h1 = (int)(qh >> (j + 12)) & 0x10;
        y[j] = (float)((x->qs[j] & 0x0F) | h0) * d + m;
        y[j + 16] = (float)((x->qs[j] >> 4) | h1) * d + m;
    }
}

static void dq_q8_0(const struct lm_blk_q8_0 *x, float *y)
{
    const float d = lm_f16_to_f32(x->d);
    for (int j = 0; j < 32; j++) {
        y[j] = (float)x->qs[j] * d;
    }
}

static void dq_q2_k(const struct lm_blk_q2_k *x, float *y)
{
    const float d = lm_f16_to_f32(x->d);
    const float min = lm_f16_to_f32(x->dmin);
    for (int e = 0; e < 256; e++) {
        const uint8_t sc = x->scales[e / 16];
        const int q = (x->qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
        const float dl = d * (float)(sc & 0xF);
        const float ml = min * (float)(sc >> 4);
        y[e] = dl * (float)q - ml;
    }
}

static void dq_q3_k(const struct lm_blk_q3_k *x, float *y)
{
    const float d_all = lm_f16_to_f32(x->d);
    int8_t s[16];
    lm__q3k_scales(x->scales, s);
    for (int e = 0; e < 256; e++) {
        const int lo = (x->qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
        const int hb = (x->hmask[e % 32] >> (e / 32)) & 1;
        const float dl = d_all * (float)s[e / 16];
        y[e] = dl * (float)(lo - (hb ? 0 : 4));
    }
}

static void dq_q4_k(const struct lm_blk_q4_k *x, float *y)
{
    const float d = lm_f16_to_f32(x->d);
    const float min = lm_f16_to_f32(x->dmin);
    for (int e = 0; e < 256; e++) {
        const int c = e / 64, r = e % 64;
        const int q = r < 32 ? x->qs[32 * c + r] & 0xF : x->qs[32 * c + r - 32] >> 4;
        uint8_t sc, m;
        lm__scale_min_k4(e / 32, x->scales, &sc, &m);
        y[e] = (d * (float)sc) * (float)q - min * (float)m;
    }
}

static void dq_q5_k(const struct lm_blk_q5_k *x, float *y)
{
    const float d = lm_f16_to_f32(x->d);
    const float min = lm_f16_to_f32(x->dmin);
    for (int e = 0; e < 256; e++) {
        const int c = e / 64, r = e % 64;
        int q = r < 32 ? x->qs[32 * c + r] & 0xF : x->qs[32 * c + r - 32] >> 4;
        q += 16 * ((x->qh[e % 32] >> (e / 32)) & 1);
        uint8_t sc, m;
        lm__scale_min_k4(e / 32, x->scales, &sc, &m);
        y[e] = (d * (float)sc) * (float)q - min * (float)m;
    }
}

static void dq_q6_k(const struct lm_blk_q6_k *x, float *y)
{
    const float d = lm_f16_to_f32(x->d);
    for (int e = 0; e < 256; e++) {
        const int h = e / 128, t = e % 128, g = t / 32, l = t % 32;
        const uint8_t b = x->ql[64 * h + l + 32 * (g & 1)];
        const int lo4 = g < 2 ? b & 0xF : b >> 4;
        const int hi2 = (x->qh[32 * h + l] >> (2 * g)) & 3;
        y[e] = (d * (float)x->scales[e / 16]) * (float)((lo4 | hi2 << 4) - 32);
    }
}

static void dq_q8_k(const struct lm_blk_q8_k *x, float *y)
{
    for (int e = 0; e < 256; e++) {
        y[e] = x->d * (float)x->qs[e];
    }
}

static void dq_plain(int type, const void *src, float *dst, int64_t n)
{
    const uint8_t *s = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        if (type == LM_TYPE_F32) {
            memcpy(&dst[i], s + 4 * i, 4);
            continue;
        }
        memcpy(&h, s + 2 * i, 2);
        dst[i] = type == LM_TYPE_F16 ? lm_f16_to_f32(h) : lm_bf16_to_f32(h);
    }
}

/* Dequantizes block b of a row (blocks are read with memcpy: GGUF data may be unaligned). */
static void dq_block(int type, const uint8_t *b, float *y)
{
    union {
        struct lm_blk_q4_0 q4_0;
        struct lm_blk_q4_1 q4_1;
        struct lm_blk_q5_0 q5_0;
        struct lm_blk_q5_1 q5_1;
        struct lm_blk_q8_0 q8_0;
        struct lm_blk_q2_k q2_k;
        struct lm_blk_q3_k q3_k;
        struct lm_blk_q4_k q4_k;
        struct lm_blk_q5_k q5_k;
        struct lm_blk_q6_k q6_k;
        struct lm_blk_q8_k q8_k;
    } u;
    memcpy(&u, b, (size_t)k_types[type].bytes);
    switch (type) {
    case LM_TYPE_Q4_0:
        dq_q4_0(&u.q4_0, y);
        break;
    case LM_TYPE_Q4_1:
        dq_q4_1(&u.q4_1, y);
        break;
    case LM_TYPE_Q5_0:
        dq_q5_0(&u.q5_0, y);
        break;
    case LM_TYPE_Q5_1:
        dq_q5_1(&u.q5_1, y);
        break;
    case LM_TYPE_Q8_0:
        dq_q8_0(&u.q8_0, y);
        break;
    case LM_TYPE_Q2_K:
        dq_q2_k(&u.q2_k, y);
        break;
    case LM_TYPE_Q3_K:
        dq_q3_k(&u.q3_k, y);
        break;
    case LM_TYPE_Q4_K:
        dq_q4_k(&u.q4_k, y);
        break;
    case LM_TYPE_Q5_K:
        dq_q5_k(&u.q5_k, y);
        break;
    case LM_TYPE_Q6_K:
        dq_q6_k(&u.q6_k, y);
        break;
    default:
        dq_q8_k(&u.q8_k, y);
        break;
    }
}

int lm_dequant_row(int type, const void *src, float *dst, int64_t n)
{
    if (!lm_type_known(type) || type == LM_TYPE_Q8_1 || n < 0 || n % k_types[type].blck != 0 ||
        (n > 0 && (!src || !dst))) {
        return LM_EINVAL;
    }
    if (k_types[type].blck == 1) {
        dq_plain(type, src, dst, n);
        return 0;
    }
    const int64_t bs = k_types[type].blck, nb = n / bs;
    for (int64_t i = 0; i < nb; i++) {
        dq_block(type, (const uint8_t *)src + i * k_types[type].bytes, dst + i * bs);
    }
    return 0;
}

/* ---- reference quantization (ggml quantize_row_*_ref) ------------------------------------------
 */

#define GROUP_MAX_EPS 1e-15f

/* Round to nearest, ties to even, for |x| <= 2^22 (the 1.5 * 2^23 magic add). */
static int nearest_int(float fval)
{
    const float val = fval + 12582912.f;
    int32_t i;
    memcpy(&i, &val, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static int imin(int a, int b)
{
    return a < b ? a : b;
}

static int imax(int a, int b)
{
    return a > b ? a : b;
}

static void q_q4_0(const float *x, struct lm_blk_q4_0 *y)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = lm_f32_to_f16(d);
    for (int j = 0; j < 16; j++) {
        const int xi0 = imin(15, (int8_t)(x[j] * id + 8.5f));
        const int xi1 = imin(15, (int8_t)(x[16 + j] * id + 8.5f));
        y->qs[j] = (uint8_t)(xi0 | xi1 << 4);
    }
}

static void q_q4_1(const float *x, struct lm_blk_q4_1 *y)
{
    float min = x[0], max = x[0];
    for (int j = 1; j < 32; j++) {
        min = x[j] < min ? x[j] : min;
        max = x[j] > max ? x[j] : max;
    }
    const float d = (max - min) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = lm_f32_to_f16(d);
    y->m = lm_f32_to_f16(min);
    for (int j = 0; j < 16; j++) {
        const int xi0 = imin(15, (int8_t)((x[j] - min) * id + 0.5f));
        const int xi1 = imin(15, (int8_t)((x[16 + j] - min) * id + 0.5f));
        y->qs[j] = (uint8_t)(xi0 | xi1 << 4);
    }
}

static void put_qh(uint8_t qh[4], uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        qh[i] = (uint8_t)(v >> (8 * i));
    }
}

static void q_q5_0(const float *x, struct lm_blk_q5_0 *y)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint32_t qh = 0;
    y->d = lm_f32_to_f16(d);
    for (int j = 0; j < 16; j++) {
        const int xi0 = imin(31, (int8_t)(x[j] * id + 16.5f));
        const int xi1 = imin(31, (int8_t)(x[16 + j] * id + 16.5f));
        y->qs[j] = (uint8_t)((xi0 & 0x0F) | (xi1 & 0x0F) << 4);
        qh |= (uint32_t)((xi0 & 0x10) >> 4) << j;
        qh |= (uint32_t)((xi1 & 0x10) >> 4) << (j + 16);
    }
    put_qh(y->qh, qh);
}

static void q_q5_1(const float *x, struct lm_blk_q5_1 *y)
{
    float min = x[0], max = x[0];
    for (int j = 1; j < 32; j++) {
        min = x[j] < min ? x[j] : min;
        max = x[j] > max ? x[j] : max;
    }
    const float d = (max - min) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint32_t qh = 0;
    y->d = lm_f32_to_f16(d);
    y->m = lm_f32_to_f16(min);
    for (int j = 0; j < 16; j++) {
        const int xi0 = (uint8_t)((x[j] - min) * id + 0.5f);
        const int xi1 = (uint8_t)((x[16 + j] - min) * id + 0.5f);
        y->qs[j] = (uint8_t)((xi0 & 0x0F) | (xi1 & 0x0F) << 4);
        qh |= (uint32_t)((xi0 & 0x10) >> 4) << j;
        qh |= (uint32_t)((xi1 & 0x10) >> 4) << (j + 16);
    }
    put_qh(y->qh, qh);
}

static void q_q8_0(const float *x, struct lm_blk_q8_0 *y)
{
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) {
        amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    }
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = lm_f32_to_f16(d);
    for (int j = 0; j < 32; j++) {
        y->qs[j] = (int8_t)roundf(x[j] * id);
    }
}

/* ggml make_qx_quants with qw = NULL: signed levels -nmax..nmax-1, stored + nmax in L. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L, int rmse_type)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        const float w = rmse_type == 1 ? x[i] * x[i] : 1;
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) {
            continue;
        }
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
            const float w = rmse_type == 1 ? x[i] * x[i] : 1;
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i]))));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Error of levels L (n) for (scale, min) under weights w: sum w * diff^2 or w * |diff|. */
static float qkx_error(int n, const float *x, const float *w, const uint8_t *L, float scale,
                       float min, int use_mad)
{
    float err = 0;
    for (int i = 0; i < n; i++) {
        float diff = scale * (float)L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        err += w[i] * diff;
    }
    return err;
}

/* ggml make_qkx2_quants: unsigned levels 0..nmax with a min, searched over nstep scales. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                              int use_mad)
{
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        min = x[i] < min ? x[i] : min;
        max = x[i] > max ? x[i] : max;
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    min = min > 0 ? 0 : min;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)imax(0, imin(nmax, nearest_int(iscale * (x[i] - min))));
    }
    float best_error = qkx_error(n, x, w, L, scale, min, use_mad);
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = imax(0, imin(nmax, nearest_int(iscale * (x[i] - min))));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            const float cur = qkx_error(n, x, w, Laux, this_scale, this_min, use_mad);
            if (cur < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Packs 6-bit scale ls and min lm of sub-block j into the 12-byte K-quant scales array. */
static void put_scale_min_k4(uint8_t *s, int j, uint8_t ls, uint8_t lm)
{
    if (j < 4) {
        s[j] = ls;
        s[j + 4] = lm;
    } else {
        s[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        s[j - 4] |= (uint8_t)((ls >> 4) << 6);
        s[j] |= (uint8_t)((lm >> 4) << 6);
    }
}

/* The 4/5-bit K-quants (Q4_K nmax 15, Q5_K nmax 31): per-32 (scale, min) fitted, quantized to
 * 6 bits against the super-block maxima, then the levels L (256) recomputed from them. */
static void q_k45_scales(const float *x, int nmax, float rmin, float rdelta, int nstep,
                         uint8_t *scales12, uint16_t *d, uint16_t *dmin, uint8_t *L)
{
    uint8_t Laux[32];
    float w[32], mins[8], scales[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) {
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        }
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) {
            w[l] = av_x + fabsf(x[32 * j + l]);
        }
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], Laux, rmin,
                                     rdelta, nstep, 0);
        max_scale = scales[j] > max_scale ? scales[j] : max_scale;
        max_min = mins[j] > max_min ? mins[j] : max_min;
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(scales12, 0, 12);
    for (int j = 0; j < 8; j++) {
        const uint8_t ls = (uint8_t)imin(63, (uint8_t)nearest_int(inv_scale * scales[j]));
        const uint8_t lm = (uint8_t)imin(63, (uint8_t)nearest_int(inv_min * mins[j]));
        put_scale_min_k4(scales12, j, ls, lm);
    }
    *d = lm_f32_to_f16(max_scale / 63.f);
    *dmin = lm_f32_to_f16(max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        lm__scale_min_k4(j, scales12, &sc, &m);
        const float dd = lm_f16_to_f32(*d) * (float)sc;
        if (dd == 0.0f) {
            continue;
        }
        const float dm = lm_f16_to_f32(*dmin) * (float)m;
        for (int i = 0; i < 32; i++) {
            L[32 * j + i] = (uint8_t)imax(0, imin(nmax, nearest_int((x[32 * j + i] + dm) / dd)));
        }
    }
}

static void q_q4_k(const float *x, struct lm_blk_q4_k *y)
{
    uint8_t L[256];
    q_k45_scales(x, 15, -1.f, 0.1f, 20, y->scales, &y->d, &y->dmin, L);
    for (int j = 0; j < 256; j += 64) {
        for (int l = 0; l < 32; l++) {
            y->qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        }
    }
}

static void q_q5_k(const float *x, struct lm_blk_q5_k *y)
{
    uint8_t L[256];
    q_k45_scales(x, 31, -0.5f, 0.1f, 15, y->scales, &y->d, &y->dmin, L);
    memset(y->qh, 0, 32);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < 256; n += 64) {
        for (int j = 0; j < 32; j++) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15) {
                l1 -= 16;
                y->qh[j] |= m1;
            }
            if (l2 > 15) {
                l2 -= 16;
                y->qh[j] |= m2;
            }
            y->qs[n / 2 + j] = (uint8_t)(l1 | (l2 << 4));
        }
        m1 = (uint8_t)(m1 << 2);
        m2 = (uint8_t)(m2 << 2);
    }
}

static void q_q2_k(const float *x, struct lm_blk_q2_k *y)
{
    uint8_t L[256], Laux[16];
    float w[16], mins[16], scales[16], max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; j++) {
        for (int l = 0; l < 16; l++) {
            w[l] = fabsf(x[16 * j + l]);
        }
        scales[j] =
            make_qkx2_quants(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, 1);
        max_scale = scales[j] > max_scale ? scales[j] : max_scale;
        max_min = mins[j] > max_min ? mins[j] : max_min;
    }
    memset(y->scales, 0, 16);
    y->d = lm_f32_to_f16(max_scale > 0 ? max_scale / 15.f : 0.f);
    y->dmin = lm_f32_to_f16(max_min > 0 ? max_min / 15.f : 0.f);
    for (int j = 0; j < 16; j++) {
        const int ls = max_scale > 0 ? nearest_int(15.f / max_scale * scales[j]) : 0;
        const int lm = max_min > 0 ? nearest_int(15.f / max_min * mins[j]) : 0;
        y->scales[j] = (uint8_t)(ls | (lm << 4));
    }
    for (int j = 0; j < 16; j++) {
        const float d = lm_f16_to_f32(y->d) * (float)(y->scales[j] & 0xF);
        if (d == 0.0f) {
            continue;
        }
        const float dm = lm_f16_to_f32(y->dmin) * (float)(y->scales[j] >> 4);
        for (int i = 0; i < 16; i++) {
            L[16 * j + i] = (uint8_t)imax(0, imin(3, nearest_int((x[16 * j + i] + dm) / d)));
        }
    }
    for (int j = 0; j < 256; j += 128) {
        for (int l = 0; l < 32; l++) {
            y->qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                         (L[j + l + 96] << 6));
        }
    }
}

static void q_q6_k_pack(const int8_t *L, struct lm_blk_q6_k *y)
{
    for (int j = 0; j < 256; j += 128) {
        uint8_t *ql = y->ql + j / 2;
        uint8_t *qh = y->qh + j / 4;
        for (int l = 0; l < 32; l++) {
            const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
            const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
            ql[l] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                              ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
        }
    }
}

static void q_q6_k(const float *x, struct lm_blk_q6_k *y)
{
    int8_t L[256];
    float scales[16], max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ib++) {
        scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1);
        if (fabsf(scales[ib]) > max_abs_scale) {
            max_abs_scale = fabsf(scales[ib]);
            max_scale = scales[ib];
        }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
        memset(y, 0, sizeof(*y));
        return;
    }
    const float iscale = -128.f / max_scale;
    y->d = lm_f32_to_f16(1 / iscale);
    for (int ib = 0; ib < 16; ib++) {
        y->scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));
    }
    for (int j = 0; j < 16; j++) {
        const float d = lm_f16_to_f32(y->d) * (float)y->scales[j];
        if (d == 0.0f) {
            continue;
        }
        for (int i = 0; i < 16; i++) {
            L[16 * j + i] = (int8_t)(imax(-32, imin(31, nearest_int(x[16 * j + i] / d))) + 32);
        }
    }
    q_q6_k_pack(L, y);
}

/* ggml make_q3_quants with do_rmse (weights x^2): signed levels -nmax..nmax-1 refined by
 * coordinate descent, stored + nmax in L; returns the least-squares scale. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (!(slx > 0)) {
                continue;
            }
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            const int nl = imax(-nmax, imin(nmax - 1, nearest_int(x[i] * sl2 / slx)));
            if (nl == L[i]) {
                continue;
            }
            slx += w * x[i] * (float)nl;
            sl2 += w * (float)nl * (float)nl;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)nl;
                sumlx = slx;
                suml2 = sl2;
                n_changed++;
            }
        }
        if (n_changed == 0) {
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        L[i] = (int8_t)(L[i] + nmax);
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Q3_K scales: the 16 per-16 scales quantized to 6 bits against the largest |scale|, packed
 * into the 12-byte array (low nibbles in 0..7, high 2 bits in 8..11); returns d. */
static uint16_t q3k_pack_scales(const float *scales, uint8_t *s12)
{
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; j++) {
        if (fabsf(scales[j]) > amax) {
            amax = fabsf(scales[j]);
            max_scale = scales[j];
        }
    }
    memset(s12, 0, 12);
    if (max_scale == 0.0f) {
        return lm_f32_to_f16(0.f);
    }
    const float iscale = -32.f / max_scale;
    for (int j = 0; j < 16; j++) {
        int8_t l = (int8_t)nearest_int(iscale * scales[j]);
        l = (int8_t)(imax(-32, imin(31, l)) + 32);
        if (j < 8) {
            s12[j] = (uint8_t)(l & 0xF);
        } else {
            s12[j - 8] |= (uint8_t)((l & 0xF) << 4);
        }
        s12[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
    }
    return lm_f32_to_f16(1 / iscale);
}

/* ggml quantize_row_q3_K_ref for one super-block. */
static void q_q3_k(const float *x, struct lm_blk_q3_k *y)
{
    int8_t L[256], sc[16];
    float scales[16];
    for (int j = 0; j < 16; j++) {
        scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
    }
    y->d = q3k_pack_scales(scales, y->scales);
    lm__q3k_scales(y->scales, sc);
    for (int j = 0; j < 16; j++) {
        const float d = lm_f16_to_f32(y->d) * (float)sc[j];
        if (d == 0.0f) {
            continue;
        }
        for (int i = 0; i < 16; i++) {
            L[16 * j + i] = (int8_t)(imax(-4, imin(3, nearest_int(x[16 * j + i] / d))) + 4);
        }
    }
    memset(y->hmask, 0, 32);
    for (int j = 0; j < 256; j++) {
        if (L[j] > 3) {
            y->hmask[j % 32] |= (uint8_t)(1u << (j / 32));
            L[j] = (int8_t)(L[j] - 4);
        }
    }
    for (int j = 0; j < 256; j += 128) {
        for (int l = 0; l < 32; l++) {
            y->qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                         (L[j + l + 96] << 6));
        }
    }
}

/* Quantizes one block of a weight type into bytes b (blocks may be unaligned in the caller). */
static void q_block(int type, const float *x, uint8_t *b)
{
    union {
        struct lm_blk_q4_0 q4_0;
        struct lm_blk_q4_1 q4_1;
        struct lm_blk_q5_0 q5_0;
        struct lm_blk_q5_1 q5_1;
        struct lm_blk_q8_0 q8_0;
        struct lm_blk_q2_k q2_k;
        struct lm_blk_q3_k q3_k;
        struct lm_blk_q4_k q4_k;
        struct lm_blk_q5_k q5_k;
        struct lm_blk_q6_k q6_k;
    } u;
    memset(&u, 0, sizeof(u));
    switch (type) {
    case LM_TYPE_Q4_0:
        q_q4_0(x, &u.q4_0);
        break;
    case LM_TYPE_Q4_1:
        q_q4_1(x, &u.q4_1);
        break;
    case LM_TYPE_Q5_0:
        q_q5_0(x, &u.q5_0);
        break;
    case LM_TYPE_Q5_1:
        q_q5_1(x, &u.q5_1);
        break;
    case LM_TYPE_Q8_0:
        q_q8_0(x, &u.q8_0);
        break;
    case LM_TYPE_Q2_K:
        q_q2_k(x, &u.q2_k);
        break;
    case LM_TYPE_Q3_K:
        q_q3_k(x, &u.q3_k);
        break;
    case LM_TYPE_Q4_K:
        q_q4_k(x, &u.q4_k);
        break;
    case LM_TYPE_Q5_K:
        q_q5_k(x, &u.q5_k);
        break;
    default:
        q_q6_k(x, &u.q6_k);
        break;
    }
    memcpy(b, &u, (size_t)k_types[type].bytes);
}

static bool quant_supported(int type)
{
    switch (type) {
    case LM_TYPE_F32:
    case LM_TYPE_F16:
    case LM_TYPE_BF16:
    case LM_TYPE_Q4_0:
    case LM_TYPE_Q4_1:
    case LM_TYPE_Q5_0:
    case LM_TYPE_Q5_1:
    case LM_TYPE_Q8_0:
    case LM_TYPE_Q2_K:
    case LM_TYPE_Q3_K:
    case LM_TYPE_Q4_K:
    case LM_TYPE_Q5_K:
    case LM_TYPE_Q6_K:
        return true;
    default:
        return false;
    }
}

int lm_quantize_row(int type, const float *src, void *dst, int64_t n)
{
    if (!lm_type_known(type) || n < 0 || n % k_types[type].blck != 0 || (n > 0 && (!src || !dst))) {
        return lm_type_known(type) && !quant_supported(type) ? LM_EUNSUPPORTED : LM_EINVAL;
    }
    if (!quant_supported(type)) {
        return LM_EUNSUPPORTED;
    }
    uint8_t *d = dst;
    if (k_types[type].blck == 1) {
        for (int64_t i = 0; i < n; i++) {
            if (type == LM_TYPE_F32) {
                memcpy(d + 4 * i, &src[i], 4);
                continue;
            }
            const uint16_t h = type == LM_TYPE_F16 ? lm_f32_to_f16(src[i]) : lm_f32_to_bf16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        return 0;
    }
    const int64_t bs = k_types[type].blck;
    for (int64_t i = 0; i < n / bs; i++) {
        q_block(type, src + i * bs, d + i * k_types[type].bytes);
    }
    return 0;
}
