/*
 * kern_dot_avx2.c - AVX2 + FMA + F16C versions of the matmul kernels in kern_dot.c, built with
 * -mavx2 -mfma -mf16c and only called when cpu.c says the CPU has them. Each kernel reproduces
 * the scalar oracle's float operation order exactly (kern_int.h contract): a 16-lane AVX-512
 * accumulator is a pair of __m256 (lanes 0-7, 8-15), integer lane sums are exact, and the
 * reduction trees are those of kern_dot.c. Blocking over rows and columns only changes which
 * element is computed when, never how. No allocation; libc only.
 *
 * Kernels here: F32/F16 (vec_dot and tinyBLAS), Q8_0/Q4_0/Q5_0 x Q8_0, Q4_1/Q5_1 x Q8_1, the
 * repacked Q4_0 and Q4_K, and Q6_K x Q8_K. The other types fall back to kern_dot.c (exact).
 */
#include "kern_int.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* ---- reductions -------------------------------------------------------------------------------- */

/* hsum_float_8: a_i = v_i + v_(i+4), (a0+a2)+(a1+a3). */
AI float hsum8(__m256 v)
{
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* _mm512_reduce_add_ps of the 16 lanes (lo, hi): hsum8 of lo + hi. */
AI float red16(__m256 lo, __m256 hi)
{
    return hsum8(_mm256_add_ps(hi, lo));
}

AI float f16f(uint16_t h)
{
    return _cvtsh_ss(h);
}

/* ---- f32 / f16 ---------------------------------------------------------------------------------- */

AI __m256 ld8(const void *p, int f16, int64_t i)
{
    if (f16) {
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    }
    return _mm256_loadu_ps((const float *)p + i);
}

/* ggml_vec_dot_f32 / f16 (AVX-512 structure) of one weight row against one activation row. */
AI float vec_dot(int f16, int64_t n, const void *x, const void *y)
{
    const int64_t np = n & ~(int64_t)63;
    __m256 s[8];
    for (int j = 0; j < 8; j++) {
        s[j] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < np; i += 64) {
        for (int j = 0; j < 8; j++) {
            s[j] = _mm256_fmadd_ps(ld8(x, f16, i + 8 * j), ld8(y, f16, i + 8 * j), s[j]);
        }
    }
    /* acc j is the pair (s[2j], s[2j+1]); s0 += s2, s1 += s3, s0 += s1, lane-wise. */
    for (int h = 0; h < 2; h++) {
        s[h] = _mm256_add_ps(s[h], s[4 + h]);
        s[2 + h] = _mm256_add_ps(s[2 + h], s[6 + h]);
        s[h] = _mm256_add_ps(s[h], s[2 + h]);
    }
    const float r = red16(s[0], s[1]);
    if (!f16) {
        float sumf = r;
        for (int64_t i = np; i < n; i++) {
            const float prod = ((const float *)x)[i] * ((const float *)y)[i];
            sumf = sumf + prod;
        }
        return sumf;
    }
    double sumd = (double)r;
    for (int64_t i = np; i < n; i++) {
        const float prod = f16f(((const uint16_t *)x)[i]) * f16f(((const uint16_t *)y)[i]);
        sumd += (double)prod;
    }
    return (float)sumd;
}

float lm__vdot_avx2(int f16, int64_t n, const void *x, const void *y)
{
    return f16 ? vec_dot(1, n, x, y) : vec_dot(0, n, x, y);
}

float lm__tbdot_avx2(int f16, int64_t n, const void *x, const void *y)
{
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int64_t l = 0; l < n; l += 16) {
        lo = _mm256_fmadd_ps(ld8(x, f16, l), ld8(y, f16, l), lo);
        hi = _mm256_fmadd_ps(ld8(x, f16, l + 8), ld8(y, f16, l + 8), hi);
    }
    return red16(lo, hi);
}

static void mm_vec_float(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    const int f16 = p->wtype == LM_TYPE_F16;
    for (int64_t c = 0; c < p->n; c++) {
        const uint8_t *a = p->act + (size_t)c * p->act_stride;
        for (int64_t r = r0; r < r1; r++) {
            p->out[c * p->ldo + r] = vec_dot(f16, p->k, p->w + (size_t)r * p->w_stride, a);
        }
    }
}

/* tinyBLAS KN = 16 tile: one weight row (f32 or f16) against NC activation rows given as f32
 * pointers b[j]; lane pair (lo, hi) per column. */
AI void tb_tile(int f16, int64_t k, const void *w, const float *const *b, int nc, float *out,
                int64_t ldo)
{
    __m256 lo[6], hi[6];
    for (int j = 0; j < nc; j++) {
        lo[j] = _mm256_setzero_ps();
        hi[j] = _mm256_setzero_ps();
    }
    for (int64_t l = 0; l < k; l += 16) {
        const __m256 wl = ld8(w, f16, l), wh = ld8(w, f16, l + 8);
        for (int j = 0; j < nc; j++) {
            lo[j] = _mm256_fmadd_ps(wl, _mm256_loadu_ps(b[j] + l), lo[j]);
            hi[j] = _mm256_fmadd_ps(wh, _mm256_loadu_ps(b[j] + l + 8), hi[j]);
        }
    }
    for (int j = 0; j < nc; j++) {
        out[j * ldo] = red16(lo[j], hi[j]);
    }
}

#define TB_NC    6
#define STAGE_K  8192

/* tinyBLAS over column blocks of TB_NC; f16 activations are widened once per block (exact). */
static void mm_tb_float(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    const int f16 = p->wtype == LM_TYPE_F16;
    float stage[TB_NC * STAGE_K]; /* 192 KiB of stack: f16 activations widened to f32 */
    if (f16 && p->k > STAGE_K) {
        lm__mm_scalar(p, r0, r1);
        return;
    }
    for (int64_t c0 = 0; c0 < p->n; c0 += TB_NC) {
        const int nc = p->n - c0 < TB_NC ? (int)(p->n - c0) : TB_NC;
        const float *b[TB_NC];
        for (int j = 0; j < nc; j++) {
            const uint8_t *a = p->act + (size_t)(c0 + j) * p->act_stride;
            if (!f16) {
                b[j] = (const float *)a;
                continue;
            }
            for (int64_t l = 0; l < p->k; l += 8) {
                _mm256_storeu_ps(stage + j * STAGE_K + l, ld8(a, 1, l));
            }
            b[j] = stage + j * STAGE_K;
        }
        float *o = p->out + c0 * p->ldo;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *w = p->w + (size_t)r * p->w_stride;
            if (nc == TB_NC) {
                tb_tile(f16, p->k, w, b, TB_NC, o + r, p->ldo);
            } else {
                tb_tile(f16, p->k, w, b, nc, o + r, p->ldo);
            }
        }
    }
}

/* ---- 32-element block types -------------------------------------------------------------------- */

/* 32 bits to 32 bytes, 0xFF where the bit is set (ggml bytes_from_bits_32). */
AI __m256i bits32(const uint8_t *qh)
{
    uint32_t x32;
    memcpy(&x32, qh, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x32), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

/* 16 bytes of nibbles to 32 bytes 0..15: low nibbles are elements 0..15, high 16..31. */
AI __m256i nibbles32(const uint8_t *qs)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i b = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(b, _mm256_set1_epi8(0xF));
}

/* The 32 quants of block b (bytes) of a 32-block weight type, in dequant order: signed for
 * Q8_0/Q4_0/Q5_0, unsigned for Q4_1/Q5_1. */
AI __m256i unpack32(int t, const uint8_t *b)
{
    switch (t) {
    case LM_TYPE_Q8_0: return _mm256_loadu_si256((const __m256i *)(b + 2));
    case LM_TYPE_Q4_0: return _mm256_sub_epi8(nibbles32(b + 2), _mm256_set1_epi8(8));
    case LM_TYPE_Q5_0:
        return _mm256_or_si256(nibbles32(b + 6),
                               _mm256_andnot_si256(bits32(b + 2), _mm256_set1_epi8((char)0xF0)));
    case LM_TYPE_Q4_1: return nibbles32(b + 4);
    default:
        return _mm256_or_si256(nibbles32(b + 8),
                               _mm256_and_si256(bits32(b + 4), _mm256_set1_epi8(0x10)));
    }
}

/* 8 int32 lanes, lane t = exact sum of w[e]*a[e] for e in 4t..4t+3 (w signed or unsigned). */
AI __m256i lanes32(__m256i w, __m256i a, int w_signed)
{
    __m256i p16;
    if (w_signed) {
        p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
    } else {
        p16 = _mm256_maddubs_epi16(w, a);
    }
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

AI uint16_t rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* NR weight rows x NC activation columns of the vec_dot formula for the 32-block types. */
AI void q32_tile(const struct lm_mm *p, int t, int64_t r, int64_t c, int NR, int NC)
{
    const int has_m = t == LM_TYPE_Q4_1 || t == LM_TYPE_Q5_1;
    const int64_t bw = lm_type_block_bytes(t), ba = has_m ? 36 : 34;
    const uint8_t *w[4], *a[4];
    __m256 acc[4][4];
    float summs[4][4];
    for (int i = 0; i < NR; i++) {
        w[i] = p->w + (size_t)(r + i) * p->w_stride;
        for (int j = 0; j < NC; j++) {
            acc[i][j] = _mm256_setzero_ps();
            summs[i][j] = 0;
        }
    }
    for (int j = 0; j < NC; j++) {
        a[j] = p->act + (size_t)(c + j) * p->act_stride;
    }
    for (int64_t b = 0; b < p->k / 32; b++) {
        __m256i wq[4];
        float dw[4];
        for (int i = 0; i < NR; i++) {
            _mm_prefetch((const char *)(w[i] + (b + 8) * bw), _MM_HINT_T0);
            wq[i] = unpack32(t, w[i] + b * bw);
            dw[i] = f16f(rd16(w[i] + b * bw));
        }
        for (int j = 0; j < NC; j++) {
            const uint8_t *ab = a[j] + b * ba;
            const __m256i aq = _mm256_loadu_si256((const __m256i *)(ab + (has_m ? 4 : 2)));
            const float da = f16f(rd16(ab));
            for (int i = 0; i < NR; i++) {
                const __m256 f = _mm256_cvtepi32_ps(lanes32(wq[i], aq, !has_m));
                acc[i][j] = _mm256_fmadd_ps(_mm256_set1_ps(dw[i] * da), f, acc[i][j]);
                if (has_m) {
                    const float ms = f16f(rd16(w[i] + b * bw + 2)) * f16f(rd16(ab + 2));
                    summs[i][j] = summs[i][j] + ms;
                }
            }
        }
    }
    for (int i = 0; i < NR; i++) {
        for (int j = 0; j < NC; j++) {
            const float h = hsum8(acc[i][j]);
            p->out[(c + j) * p->ldo + r + i] = has_m ? h + summs[i][j] : h;
        }
    }
}

/* Tiles with compile-time shapes and type, so that accumulators stay in registers. */
AI void mm_q32_t(const struct lm_mm *p, int64_t r0, int64_t r1, int t)
{
    int64_t c = 0;
    for (; c + 4 <= p->n; c += 4) {
        int64_t r = r0;
        for (; r + 2 <= r1; r += 2) {
            q32_tile(p, t, r, c, 2, 4);
        }
        for (; r < r1; r++) {
            q32_tile(p, t, r, c, 1, 4);
        }
    }
    for (; c < p->n; c++) {
        int64_t r = r0;
        for (; r + 4 <= r1; r += 4) {
            q32_tile(p, t, r, c, 4, 1);
        }
        for (; r < r1; r++) {
            q32_tile(p, t, r, c, 1, 1);
        }
    }
}

static void mm_q32(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    switch (p->wtype) {
    case LM_TYPE_Q8_0: mm_q32_t(p, r0, r1, LM_TYPE_Q8_0); break;
    case LM_TYPE_Q4_0: mm_q32_t(p, r0, r1, LM_TYPE_Q4_0); break;
    case LM_TYPE_Q5_0: mm_q32_t(p, r0, r1, LM_TYPE_Q5_0); break;
    case LM_TYPE_Q4_1: mm_q32_t(p, r0, r1, LM_TYPE_Q4_1); break;
    default: mm_q32_t(p, r0, r1, LM_TYPE_Q5_1); break;
    }
}

/* ---- repacked types: one accumulator per output, 8 rows per vector ------------------------------ */

/* The lane sums of 8 vectors (one per row) as one vector of 8 row sums (exact integers). */
AI __m256i rowsums8(const __m256i v[8])
{
    const __m256i h01 = _mm256_hadd_epi32(v[0], v[1]), h23 = _mm256_hadd_epi32(v[2], v[3]);
    const __m256i h45 = _mm256_hadd_epi32(v[4], v[5]), h67 = _mm256_hadd_epi32(v[6], v[7]);
    const __m256i g0 = _mm256_hadd_epi32(h01, h23), g1 = _mm256_hadd_epi32(h45, h67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(g0, g1, 0x20),
                            _mm256_permute2x128_si256(g0, g1, 0x31));
}

/* Eight f16 scales at byte offset off of consecutive blocks of 8 rows, as floats. */
AI __m256 d8(const uint8_t *const *w, size_t off)
{
    uint16_t h[8];
    for (int i = 0; i < 8; i++) {
        h[i] = rd16(w[i] + off);
    }
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}

/* Q4_0 repacked: rows r..r+7 against NC columns from c; acc = fma((float)sum32, dw*da, acc). */
AI void q4_0_rep_tile(const struct lm_mm *p, int64_t r, int64_t c, int NC)
{
    const uint8_t *w[8];
    __m256 acc[4];
    for (int i = 0; i < 8; i++) {
        w[i] = p->w + (size_t)(r + i) * p->w_stride;
    }
    for (int j = 0; j < NC; j++) {
        acc[j] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < p->k / 32; b++) {
        __m256i wq[8];
        for (int i = 0; i < 8; i++) {
            _mm_prefetch((const char *)(w[i] + (b + 8) * 18), _MM_HINT_T0);
            wq[i] = unpack32(LM_TYPE_Q4_0, w[i] + b * 18);
        }
        const __m256 dw = d8(w, (size_t)b * 18);
        for (int j = 0; j < NC; j++) {
            const uint8_t *ab = p->act + (size_t)(c + j) * p->act_stride + b * 34;
            const __m256i aq = _mm256_loadu_si256((const __m256i *)(ab + 2));
            __m256i v[8];
            for (int i = 0; i < 8; i++) {
                v[i] = lanes32(wq[i], aq, 1);
            }
            const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(f16f(rd16(ab))));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(rowsums8(v)), d, acc[j]);
        }
    }
    for (int j = 0; j < NC; j++) {
        _mm256_storeu_ps(p->out + (c + j) * p->ldo + r, acc[j]);
    }
}

/* Q4_K super-block of one row unpacked: quants 0..15 in dequant order, scales and mins. */
struct q4k_unp {
    uint8_t q[256];
    int16_t sc[8], m[8];
};

static void q4k_unpack(const uint8_t *b, struct q4k_unp *u)
{
    for (int c = 0; c < 4; c++) {
        const __m256i bits = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * c));
        const __m256i lo = _mm256_and_si256(bits, _mm256_set1_epi8(0xF));
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), _mm256_set1_epi8(0xF));
        _mm256_storeu_si256((__m256i *)(u->q + 64 * c), lo);
        _mm256_storeu_si256((__m256i *)(u->q + 64 * c + 32), hi);
    }
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        lm__scale_min_k4(j, b + 4, &s, &m);
        u->sc[j] = s;
        u->m[j] = m;
    }
}

/* Q4_K repacked: rows r..r+7 against NC columns; acc/accm per the contract, out = acc - accm. */
AI void q4_k_rep_tile(const struct lm_mm *p, int64_t r, int64_t c, int NC)
{
    const uint8_t *w[8];
    __m256 acc[4], accm[4];
    struct q4k_unp u[8];
    for (int i = 0; i < 8; i++) {
        w[i] = p->w + (size_t)(r + i) * p->w_stride;
    }
    for (int j = 0; j < NC; j++) {
        acc[j] = _mm256_setzero_ps();
        accm[j] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < p->k / 256; b++) {
        for (int i = 0; i < 8; i++) {
            q4k_unpack(w[i] + b * 144, &u[i]);
        }
        const __m256 dw = d8(w, (size_t)b * 144), dmw = d8(w, (size_t)b * 144 + 2);
        for (int j = 0; j < NC; j++) {
            const struct lm_blk_q8_k *y =
                (const struct lm_blk_q8_k *)(p->act + (size_t)(c + j) * p->act_stride) + b;
            __m256i v[8];
            int32_t mn[8];
            for (int i = 0; i < 8; i++) {
                __m256i s = _mm256_setzero_si256();
                mn[i] = 0;
                for (int sb = 0; sb < 8; sb++) {
                    const __m256i q = _mm256_loadu_si256((const __m256i *)(u[i].q + 32 * sb));
                    const __m256i a = _mm256_loadu_si256((const __m256i *)(y->qs + 32 * sb));
                    const __m256i p16 = _mm256_maddubs_epi16(q, a);
                    s = _mm256_add_epi32(s, _mm256_madd_epi16(p16, _mm256_set1_epi16(u[i].sc[sb])));
                    mn[i] += u[i].m[sb] * (y->bsums[2 * sb] + y->bsums[2 * sb + 1]);
                }
                v[i] = s;
            }
            const __m256 yd = _mm256_set1_ps(y->d);
            const __m256 fm = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)mn));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(rowsums8(v)), _mm256_mul_ps(dw, yd), acc[j]);
            accm[j] = _mm256_fmadd_ps(fm, _mm256_mul_ps(dmw, yd), accm[j]);
        }
    }
    for (int j = 0; j < NC; j++) {
        _mm256_storeu_ps(p->out + (c + j) * p->ldo + r, _mm256_sub_ps(acc[j], accm[j]));
    }
}

/* Rows outside whole groups of 8 use the scalar oracle (same formula, same bits). */
static void rep_rows_scalar(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    if (r0 < r1) {
        lm__mm_scalar(p, r0, r1);
    }
}

static void mm_repack(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    const int64_t g0 = (r0 + 7) / 8 * 8, g1 = r1 / 8 * 8;
    if (g0 >= g1) {
        rep_rows_scalar(p, r0, r1);
        return;
    }
    rep_rows_scalar(p, r0, g0);
    rep_rows_scalar(p, g1, r1);
    const int q4k = p->wtype == LM_TYPE_Q4_K;
    for (int64_t r = g0; r < g1; r += 8) {
        int64_t c = 0;
        for (; c + 4 <= p->n; c += 4) {
            if (q4k) {
                q4_k_rep_tile(p, r, c, 4);
            } else {
                q4_0_rep_tile(p, r, c, 4);
            }
        }
        for (; c < p->n; c++) {
            if (q4k) {
                q4_k_rep_tile(p, r, c, 1);
            } else {
                q4_0_rep_tile(p, r, c, 1);
            }
        }
    }
}

/* ---- dispatch ------------------------------------------------------------------------------------ */

int lm__mm_avx2(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    switch (p->wtype) {
    case LM_TYPE_F32:
    case LM_TYPE_F16:
        if (p->kern == LM_KERN_TB) {
            mm_tb_float(p, r0, r1);
        } else {
            mm_vec_float(p, r0, r1);
        }
        return 1;
    case LM_TYPE_Q4_0:
    case LM_TYPE_Q4_K:
        if (p->kern == LM_KERN_REPACK) {
            mm_repack(p, r0, r1);
            return 1;
        }
        if (p->wtype == LM_TYPE_Q4_K) {
            return 0;
        }
        mm_q32(p, r0, r1);
        return 1;
    case LM_TYPE_Q8_0:
    case LM_TYPE_Q5_0:
    case LM_TYPE_Q4_1:
    case LM_TYPE_Q5_1: mm_q32(p, r0, r1); return 1;
    default: return 0;
    }
}
