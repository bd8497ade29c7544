/*
 * kern_dot.c - the portable dot-product kernels and the matmul entry point. Every function here
 * spells out, with fmaf and explicit lane arrays, the float operation order of llama.cpp's x86
 * AVX-512 build (the contract in kern_int.h); it is the oracle the AVX2 kernels
 * (kern_dot_avx2.c) must match bit for bit, and the fallback on CPUs without AVX2. Built in ISO C
 * (no FMA contraction), so every rounding written here is the one executed. No allocation, no
 * I/O; libc and libm only.
 */
#include "kern_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ---- reductions --------------------------------------------------------------------------------
 */

/* _mm512_reduce_add_ps of v (16). */
static float red16(const float v[16])
{
    float b[8], c[4];
    for (int i = 0; i < 8; i++) {
        b[i] = v[i + 8] + v[i];
    }
    for (int i = 0; i < 4; i++) {
        c[i] = b[i + 4] + b[i];
    }
    return (c[0] + c[2]) + (c[1] + c[3]);
}

/* hsum_float_8 of v (8). */
static float hsum8(const float v[8])
{
    float a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = v[i + 4] + v[i];
    }
    return (a[0] + a[2]) + (a[1] + a[3]);
}

/* ---- f32 / f16 / bf16 -------------------------------------------------------------------------
 */

/* Element i of a float vector stored as f32, f16 or bf16. */
static float ld(int t, const void *p, int64_t i)
{
    if (t == LM_TYPE_F32) {
        return ((const float *)p)[i];
    }
    const uint16_t h = ((const uint16_t *)p)[i];
    return t == LM_TYPE_F16 ? lm_f16_to_f32(h) : lm_bf16_to_f32(h);
}

/* The 4 x 16-lane ggml_vec_dot_{f32,f16} main loop over the first n & ~63 elements, reduced. */
static float vec_main(int t, int64_t np, const void *x, const void *y)
{
    float s[4][16] = {{0}};
    for (int64_t i = 0; i < np; i += 64) {
        for (int j = 0; j < 4; j++) {
            for (int l = 0; l < 16; l++) {
                const int64_t e = i + 16 * j + l;
                s[j][l] = fmaf(ld(t, x, e), ld(t, y, e), s[j][l]);
            }
        }
    }
    for (int l = 0; l < 16; l++) {
        s[0][l] = s[0][l] + s[2][l];
        s[1][l] = s[1][l] + s[3][l];
        s[0][l] = s[0][l] + s[1][l];
    }
    return red16(s[0]);
}

float lm_dot_f32(int64_t n, const float *x, const float *y)
{
    if (lm_simd_level() >= LM_SIMD_AVX2) {
        return lm__vdot_avx2(0, n, x, y);
    }
    const int64_t np = n & ~(int64_t)63;
    float sumf = vec_main(LM_TYPE_F32, np, x, y);
    for (int64_t i = np; i < n; i++) {
        sumf += x[i] * y[i];
    }
    return sumf;
}

float lm_dot_f16(int64_t n, const uint16_t *x, const uint16_t *y)
{
    if (lm_simd_level() >= LM_SIMD_AVX2) {
        return lm__vdot_avx2(1, n, x, y);
    }
    const int64_t np = n & ~(int64_t)63;
    double sumf = (double)vec_main(LM_TYPE_F16, np, x, y);
    for (int64_t i = np; i < n; i++) {
        sumf += (double)(lm_f16_to_f32(x[i]) * lm_f16_to_f32(y[i]));
    }
    return (float)sumf;
}

/* tinyBLAS per element: one accumulator of 16 lanes, lane j takes elements == j (mod 16). */
static float tb16(int t, int64_t n, const void *x, const void *y)
{
    float acc[16] = {0};
    for (int64_t l = 0; l < n; l++) {
        acc[l % 16] = fmaf(ld(t, x, l), ld(t, y, l), acc[l % 16]);
    }
    return red16(acc);
}

float lm_dot_f32_tb(int64_t n, const float *x, const float *y)
{
    if (n % 16 == 0 && lm_simd_level() >= LM_SIMD_AVX2) {
        return lm__tbdot_avx2(0, n, x, y);
    }
    return tb16(LM_TYPE_F32, n, x, y);
}

float lm_dot_f16_tb(int64_t n, const uint16_t *x, const uint16_t *y)
{
    if (n % 16 == 0 && lm_simd_level() >= LM_SIMD_AVX2) {
        return lm__tbdot_avx2(1, n, x, y);
    }
    return tb16(LM_TYPE_F16, n, x, y);
}

/* One fp32 FMA step of VDPBF16PS: bf16 inputs with DAZ, result with FTZ, round to nearest. */
static float dpbf16_step(float acc, uint16_t a, uint16_t b)
{
    const float fa = (a & 0x7F80) ? lm_bf16_to_f32(a) : lm_bf16_to_f32(a & 0x8000);
    const float fb = (b & 0x7F80) ? lm_bf16_to_f32(b) : lm_bf16_to_f32(b & 0x8000);
    const float r = fmaf(fa, fb, acc);
    if (r != 0.0f && fabsf(r) < FLT_MIN) {
        return copysignf(0.0f, r);
    }
    return r;
}

/* acc (16 lanes) = _mm512_dpbf16_ps(acc, x[0..31], y[0..31]): pair 2l+1 first, then 2l. */
static void dpbf16(float acc[16], const uint16_t *x, const uint16_t *y)
{
    for (int l = 0; l < 16; l++) {
        acc[l] = dpbf16_step(acc[l], x[2 * l + 1], y[2 * l + 1]);
        acc[l] = dpbf16_step(acc[l], x[2 * l], y[2 * l]);
    }
}

float lm_dot_bf16(int64_t n, const uint16_t *x, const uint16_t *y)
{
    float c1[16] = {0}, c2[16] = {0};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        dpbf16(c1, x + i, y + i);
        dpbf16(c2, x + i + 32, y + i + 32);
    }
    double sumf = 0;
    sumf += (double)red16(c1);
    sumf += (double)red16(c2);
    for (; i < n; i++) {
        sumf += (double)(lm_bf16_to_f32(x[i]) * lm_bf16_to_f32(y[i]));
    }
    return (float)sumf;
}

float lm_dot_bf16_tb(int64_t n, const uint16_t *x, const uint16_t *y)
{
    float acc[16] = {0};
    for (int64_t l = 0; l + 32 <= n; l += 32) {
        dpbf16(acc, x + l, y + l);
    }
    return red16(acc);
}

/* ---- integer unpacking: the quants of one weight block as small integers --------------------- */

/* Q8_0/Q4_0/Q5_0 (signed) and Q4_1/Q5_1 (unsigned) block b: the 32 quants in dequant order. */
static void unpack32(int t, const uint8_t *b, int *q)
{
    if (t == LM_TYPE_Q8_0) {
        for (int j = 0; j < 32; j++) {
            q[j] = ((const int8_t *)b)[2 + j];
        }
        return;
    }
    const int has_m = t == LM_TYPE_Q4_1 || t == LM_TYPE_Q5_1;
    const int five = t == LM_TYPE_Q5_0 || t == LM_TYPE_Q5_1;
    const uint8_t *qh = b + (has_m ? 4 : 2);
    const uint8_t *qs = qh + (five ? 4 : 0);
    const uint32_t h = five ? (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 |
                                  (uint32_t)qh[3] << 24
                            : 0;
    const int off = has_m ? 0 : (five ? 16 : 8);
    for (int j = 0; j < 16; j++) {
        q[j] = ((qs[j] & 15) | (int)(((h >> j) & 1) << 4)) - off;
        q[j + 16] = ((qs[j] >> 4) | (int)(((h >> (j + 16)) & 1) << 4)) - off;
    }
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* K-quant super-block: quants q (256, Q2_K 0..3, Q3_K -4..3, Q4_K 0..15, Q5_K 0..31, Q6_K 0..63
 * unsigned) and the per-16 scales sc16 (Q2_K low nibbles, Q3_K signed, Q6_K int8) or per-32 sc32
 * and mins m32 (Q4_K/Q5_K). */
static void unpack_k(int t, const uint8_t *b, int *q, int *sc16, int *sc32, int *m32)
{
    for (int e = 0; e < 256; e++) {
        const int sh = 2 * ((e / 32) % 4);
        if (t == LM_TYPE_Q2_K) {
            q[e] = (b[16 + 32 * (e / 128) + e % 32] >> sh) & 3;
        } else if (t == LM_TYPE_Q3_K) {
            const int lo = (b[32 + 32 * (e / 128) + e % 32] >> sh) & 3;
            q[e] = lo - (((b[e % 32] >> (e / 32)) & 1) ? 0 : 4);
        } else if (t == LM_TYPE_Q6_K) {
            const int h = e / 128, tt = e % 128, g = tt / 32, l = tt % 32;
            const uint8_t lb = b[64 * h + l + 32 * (g & 1)];
            q[e] = (g < 2 ? lb & 15 : lb >> 4) | (((b[128 + 32 * h + l] >> (2 * g)) & 3) << 4);
        } else {
            const int c = e / 64, r = e % 64;
            const uint8_t *qs = b + (t == LM_TYPE_Q5_K ? 48 : 16);
            q[e] = r < 32 ? qs[32 * c + r] & 15 : qs[32 * c + r - 32] >> 4;
            if (t == LM_TYPE_Q5_K) {
                q[e] += 16 * ((b[16 + e % 32] >> (e / 32)) & 1);
            }
        }
    }
    if (t == LM_TYPE_Q2_K || t == LM_TYPE_Q6_K || t == LM_TYPE_Q3_K) {
        int8_t s3[16] = {0};
        if (t == LM_TYPE_Q3_K) {
            lm__q3k_scales(b + 96, s3);
        }
        for (int j = 0; j < 16; j++) {
            sc16[j] = t == LM_TYPE_Q2_K   ? (b[j] & 15)
                      : t == LM_TYPE_Q3_K ? s3[j]
                                          : (int8_t)b[192 + j];
            m32[j % 8] = 0;
        }
        return;
    }
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        lm__scale_min_k4(j, b + 4, &s, &m);
        sc32[j] = s;
        m32[j] = m;
    }
}

/* ---- quantized dot products (one weight row against one activation row) ---------------------- */

/* Q8_0/Q4_0/Q5_0 x Q8_0 and Q4_1/Q5_1 x Q8_1, vec_dot (and tinyBLAS_Q0) order. */
static float dot_q32(int t, int64_t k, const uint8_t *w, const uint8_t *a)
{
    const int64_t bw = lm_type_block_bytes(t);
    const int has_m = t == LM_TYPE_Q4_1 || t == LM_TYPE_Q5_1;
    const int64_t ba = has_m ? 36 : 34;
    float acc[8] = {0}, summs = 0;
    int q[32];
    for (int64_t b = 0; b < k / 32; b++, w += bw, a += ba) {
        const int8_t *qa = (const int8_t *)a + (has_m ? 4 : 2);
        unpack32(t, w, q);
        const float d = lm_f16_to_f32(rd16(w)) * lm_f16_to_f32(rd16(a));
        for (int l = 0; l < 8; l++) {
            int s = 0;
            for (int e = 4 * l; e < 4 * l + 4; e++) {
                s += q[e] * qa[e];
            }
            acc[l] = fmaf(d, (float)s, acc[l]);
        }
        if (has_m) {
            summs = summs + lm_f16_to_f32(rd16(w + 2)) * lm_f16_to_f32(rd16(a + 2));
        }
    }
    return has_m ? hsum8(acc) + summs : hsum8(acc);
}

/* The 8 integer lanes of one K super-block: lane l = sum over e with e%32 in [4l, 4l+3] of
 * scale(e) * q(e) * q8(e), scale per 16 (sc16) or per 32 (sc32). */
static void k_lanes(const int *q, const int8_t *q8, const int *sc16, const int *sc32, int per16,
                    int lane[8])
{
    memset(lane, 0, 8 * sizeof(int));
    for (int e = 0; e < 256; e++) {
        const int sc = per16 ? sc16[e / 16] : sc32[e / 32];
        lane[(e % 32) / 4] += sc * q[e] * q8[e];
    }
}

static float dot_k(int t, int64_t k, const uint8_t *w, const uint8_t *a)
{
    const int64_t bw = lm_type_block_bytes(t);
    float acc[8] = {0}, accm[4] = {0}, summs = 0;
    int q[256], sc16[16], sc32[8], m32[8], lane[8];
    for (int64_t b = 0; b < k / 256; b++, w += bw, a += sizeof(struct lm_blk_q8_k)) {
        const struct lm_blk_q8_k *y = (const struct lm_blk_q8_k *)a;
        unpack_k(t, w, q, sc16, sc32, m32);
        k_lanes(q, y->qs, sc16, sc32, t != LM_TYPE_Q4_K && t != LM_TYPE_Q5_K, lane);
        const uint16_t xd = rd16(w + (t == LM_TYPE_Q2_K   ? 80
                                      : t == LM_TYPE_Q3_K ? 108
                                      : t == LM_TYPE_Q6_K ? 208
                                                          : 0));
        const float d = y->d * lm_f16_to_f32(xd);
        if (t == LM_TYPE_Q2_K) {
            const float dmin = -y->d * lm_f16_to_f32(rd16(w + 82));
            for (int l = 0; l < 8; l++) {
                const int mb =
                    (w[2 * l] >> 4) * y->bsums[2 * l] + (w[2 * l + 1] >> 4) * y->bsums[2 * l + 1];
                acc[l] = fmaf(dmin, (float)mb, acc[l]);
            }
        } else if (t == LM_TYPE_Q6_K) {
            for (int l = 0; l < 8; l++) {
                lane[l] -=
                    32 * (y->bsums[2 * l] * sc16[2 * l] + y->bsums[2 * l + 1] * sc16[2 * l + 1]);
            }
        } else if (t == LM_TYPE_Q4_K || t == LM_TYPE_Q5_K) {
            const float dmin = -y->d * lm_f16_to_f32(rd16(w + 2));
            int B[8], tot = 0;
            for (int j = 0; j < 8; j++) {
                B[j] = y->bsums[2 * j] + y->bsums[2 * j + 1];
            }
            for (int i = 0; i < 4; i++) {
                const int prod = m32[2 * i] * B[2 * i] + m32[2 * i + 1] * B[2 * i + 1];
                accm[i] = fmaf(dmin, (float)prod, accm[i]);
                tot += prod;
            }
            summs = fmaf(dmin, (float)tot, summs);
        }
        for (int l = 0; l < 8; l++) {
            acc[l] = fmaf(d, (float)lane[l], acc[l]);
        }
    }
    if (t == LM_TYPE_Q4_K) {
        return hsum8(acc) + ((accm[0] + accm[2]) + (accm[1] + accm[3]));
    }
    return t == LM_TYPE_Q5_K ? hsum8(acc) + summs : hsum8(acc);
}

/* The repacked types: one accumulator per output, sequential over blocks. */
static float dot_repack(int t, int64_t k, const uint8_t *w, const uint8_t *a)
{
    float acc = 0, accm = 0;
    if (t == LM_TYPE_Q4_0) {
        int q[32];
        for (int64_t b = 0; b < k / 32; b++, w += 18, a += 34) {
            unpack32(t, w, q);
            int s = 0;
            for (int e = 0; e < 32; e++) {
                s += q[e] * ((const int8_t *)a)[2 + e];
            }
            acc = fmaf((float)s, lm_f16_to_f32(rd16(w)) * lm_f16_to_f32(rd16(a)), acc);
        }
        return acc;
    }
    const int64_t bw = lm_type_block_bytes(t);
    int q[256], sc16[16], sc32[8], m32[8];
    for (int64_t b = 0; b < k / 256; b++, w += bw, a += sizeof(struct lm_blk_q8_k)) {
        const struct lm_blk_q8_k *y = (const struct lm_blk_q8_k *)a;
        const int q2 = t == LM_TYPE_Q2_K;
        unpack_k(t, w, q, sc16, sc32, m32);
        int s = 0, mn = 0;
        for (int e = 0; e < 256; e++) {
            s += (q2 ? sc16[e / 16] : sc32[e / 32]) * q[e] * y->qs[e];
        }
        for (int j = 0; j < (q2 ? 16 : 8); j++) {
            mn += q2 ? (w[j] >> 4) * y->bsums[j] : m32[j] * (y->bsums[2 * j] + y->bsums[2 * j + 1]);
        }
        const float dw = lm_f16_to_f32(rd16(w + (q2 ? 80 : 0)));
        const float dmw = lm_f16_to_f32(rd16(w + (q2 ? 82 : 2)));
        acc = fmaf((float)s, dw * y->d, acc);
        accm = fmaf((float)mn, dmw * y->d, accm);
    }
    return acc - accm;
}

float lm__dot_scalar(int wtype, int kern, int64_t k, const void *wrow, const void *arow)
{
    switch (wtype) {
    case LM_TYPE_F32:
        return kern == LM_KERN_TB ? lm_dot_f32_tb(k, wrow, arow) : lm_dot_f32(k, wrow, arow);
    case LM_TYPE_F16:
        return kern == LM_KERN_TB ? lm_dot_f16_tb(k, wrow, arow) : lm_dot_f16(k, wrow, arow);
    case LM_TYPE_BF16:
        return kern == LM_KERN_TB ? lm_dot_bf16_tb(k, wrow, arow) : lm_dot_bf16(k, wrow, arow);
    case LM_TYPE_Q4_0:
    case LM_TYPE_Q4_K:
    case LM_TYPE_Q2_K:
        if (kern == LM_KERN_REPACK) {
            return dot_repack(wtype, k, wrow, arow);
        }
        return wtype == LM_TYPE_Q4_0 ? dot_q32(wtype, k, wrow, arow) : dot_k(wtype, k, wrow, arow);
    case LM_TYPE_Q4_1:
    case LM_TYPE_Q5_0:
    case LM_TYPE_Q5_1:
    case LM_TYPE_Q8_0:
        return dot_q32(wtype, k, wrow, arow);
    default:
        return dot_k(wtype, k, wrow, arow);
    }
}

/* ---- matmul -------------------------------------------------------------------------------------
 */

int lm__kern_choose(int wtype, int64_t k, int64_t m, int64_t n, unsigned flags)
{
    switch (wtype) {
    case LM_TYPE_F32:
    case LM_TYPE_F16:
        return n >= 2 && k % 16 == 0 && m % 4 == 0 ? LM_KERN_TB : LM_KERN_VEC;
    case LM_TYPE_BF16:
        return n >= 2 && k % 32 == 0 && m % 4 == 0 ? LM_KERN_TB : LM_KERN_VEC;
    case LM_TYPE_Q4_0:
    case LM_TYPE_Q4_K:
    case LM_TYPE_Q2_K:
        return m % 8 == 0 && !(flags & LM_MM_NO_REPACK) ? LM_KERN_REPACK : LM_KERN_VEC;
    default:
        return LM_KERN_VEC;
    }
}

void lm__mm_scalar(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    for (int64_t c = 0; c < p->n; c++) {
        const uint8_t *arow = p->act + (size_t)c * p->act_stride;
        for (int64_t r = r0; r < r1; r++) {
            p->out[c * p->ldo + r] =
                lm__dot_scalar(p->wtype, p->kern, p->k, p->w + (size_t)r * p->w_stride, arow);
        }
    }
}

int lm_matmul_ex(int wtype, int64_t k, int64_t m, const void *w, const void *act, size_t act_stride,
                 int64_t n, float *out, int64_t ldo, int64_t r0, int64_t r1, unsigned flags)
{
    if (lm_act_type(wtype) < 0) {
        return LM_EUNSUPPORTED;
    }
    const size_t arb = lm_act_row_bytes(wtype, k);
    if (k <= 0 || arb == 0 || m <= 0 || n <= 0 || ldo < m || r0 < 0 || r1 > m || r0 > r1 || !w ||
        !act || !out || (n > 1 && act_stride < arb)) {
        return LM_EINVAL;
    }
    const struct lm_mm p = {
        .wtype = wtype,
        .kern = lm__kern_choose(wtype, k, m, n, flags),
        .k = k,
        .m = m,
        .n = n,
        .ldo = ldo,
        .w = w,
        .w_stride = (size_t)lm_type_row_bytes(wtype, k),
        .act = act,
        .act_stride = act_stride,
        .out = out,
    };
    if (r0 == r1) {
        return 0;
    }
    if (lm_simd_level() >= LM_SIMD_AVX2 && lm__mm_avx2(&p, r0, r1)) {
        return 0;
    }
    lm__mm_scalar(&p, r0, r1);
    return 0;
}

int lm_matmul(int wtype, int64_t k, int64_t m, const void *w, const void *act, size_t act_stride,
              int64_t n, float *out, int64_t ldo, int64_t r0, int64_t r1)
{
    return lm_matmul_ex(wtype, k, m, w, act, act_stride, n, out, ldo, r0, r1, 0);
}
