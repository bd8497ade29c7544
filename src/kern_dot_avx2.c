/*
 * kern_dot_avx2.c - AVX2 + FMA + F16C versions of the matmul kernels in kern_dot.c, built with
 * -mavx2 -mfma -mf16c and only called when cpu.c says the CPU has them. Each kernel reproduces
 * the scalar oracle's float operation order exactly (kern_int.h contract): a 16-lane AVX-512
 * accumulator is a pair of __m256 (lanes 0-7, 8-15), integer lane sums are exact, and the
 * reduction trees are those of kern_dot.c. Blocking over rows and columns only changes which
 * element is computed when, never how. No allocation; libc only.
 *
 * Kernels here: F32/F16 (vec_dot and tinyBLAS), Q8_0/Q4_0/Q5_0 x Q8_0, Q4_1/Q5_1 x Q8_1 and the
 * repacked Q4_0; lm__mm_avx2 dispatches BF16 to kern_bf16_avx2.c and the K-quants (Q2_K..Q6_K,
 * vec_dot and repacked) to kern_kq_avx2.c. Every weight type has an AVX2 kernel.
 */
#include "kern_avx2_int.h"

/* ---- f32 / f16 ----------------------------------------------------------------------------------
 */

AI __m256 ld8(const void *p, int f16, int64_t i)
{
    if (f16) {
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    }
    return _mm256_loadu_ps((const float *)p + i);
}

/* ggml_vec_dot_f32 / f16 (AVX-512 structure) of one weight row x (f16 or f32) against one
 * activation row y (f16 when y16, else f32 holding the same values). */
AI float vec_dot(int f16, int y16, int64_t n, const void *x, const void *y)
{
    const int64_t np = n & ~(int64_t)63;
    __m256 s[8];
    for (int j = 0; j < 8; j++) {
        s[j] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < np; i += 64) {
        for (int j = 0; j < 8; j++) {
            s[j] = _mm256_fmadd_ps(ld8(x, f16, i + 8 * j), ld8(y, y16, i + 8 * j), s[j]);
        }
    }
    /* acc j is the pair (s[2j], s[2j+1]); s0 += s2, s1 += s3, s0 += s1, lane-wise. */
    for (int h = 0; h < 2; h++) {
        s[h] = _mm256_add_ps(s[h], s[4 + h]);
        s[2 + h] = _mm256_add_ps(s[2 + h], s[6 + h]);
        s[h] = _mm256_add_ps(s[h], s[2 + h]);
    }
    const float r = lm__red16(s[0], s[1]);
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
        const float yv = y16 ? lm__f16f(((const uint16_t *)y)[i]) : ((const float *)y)[i];
        const float prod = lm__f16f(((const uint16_t *)x)[i]) * yv;
        sumd += (double)prod;
    }
    return (float)sumd;
}

float lm__vdot_avx2(int f16, int64_t n, const void *x, const void *y)
{
    return f16 ? vec_dot(1, 1, n, x, y) : vec_dot(0, 0, n, x, y);
}

float lm__tbdot_avx2(int f16, int64_t n, const void *x, const void *y)
{
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int64_t l = 0; l < n; l += 16) {
        lo = _mm256_fmadd_ps(ld8(x, f16, l), ld8(y, f16, l), lo);
        hi = _mm256_fmadd_ps(ld8(x, f16, l + 8), ld8(y, f16, l + 8), hi);
    }
    return lm__red16(lo, hi);
}

#define VEC_STAGE 16384 /* longest f16 activation row widened once to f32 (64 KiB of stack) */

/* vec_dot per output; an f16 activation row is widened once (exactly) for all weight rows. */
static void mm_vec_float(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    const int f16 = p->wtype == LM_TYPE_F16;
    float stage[VEC_STAGE];
    for (int64_t c = 0; c < p->n; c++) {
        const uint8_t *a = p->act + (size_t)c * p->act_stride;
        float *o = p->out + c * p->ldo;
        if (!f16) {
            for (int64_t r = r0; r < r1; r++) {
                o[r] = vec_dot(0, 0, p->k, p->w + (size_t)r * p->w_stride, a);
            }
        } else if (p->k > VEC_STAGE) {
            for (int64_t r = r0; r < r1; r++) {
                o[r] = vec_dot(1, 1, p->k, p->w + (size_t)r * p->w_stride, a);
            }
        } else {
            int64_t l = 0;
            for (; l + 8 <= p->k; l += 8) {
                _mm256_storeu_ps(stage + l, ld8(a, 1, l));
            }
            for (; l < p->k; l++) {
                stage[l] = lm__f16f(((const uint16_t *)a)[l]);
            }
            for (int64_t r = r0; r < r1; r++) {
                o[r] = vec_dot(1, 0, p->k, p->w + (size_t)r * p->w_stride, stage);
            }
        }
    }
}

/* tinyBLAS KN = 16 tile: one weight row (f32 or f16) against nc activation rows b[j] (f32, or
 * f16 when a16); lane pair (lo, hi) per column. */
AI void tb_tile(int f16, int a16, int64_t k, const void *w, const void *const *b, int nc,
                float *out, int64_t ldo)
{
    __m256 lo[6], hi[6];
    for (int j = 0; j < nc; j++) {
        lo[j] = _mm256_setzero_ps();
        hi[j] = _mm256_setzero_ps();
    }
    for (int64_t l = 0; l < k; l += 16) {
        const __m256 wl = ld8(w, f16, l), wh = ld8(w, f16, l + 8);
        for (int j = 0; j < nc; j++) {
            lo[j] = _mm256_fmadd_ps(wl, ld8(b[j], a16, l), lo[j]);
            hi[j] = _mm256_fmadd_ps(wh, ld8(b[j], a16, l + 8), hi[j]);
        }
    }
    for (int j = 0; j < nc; j++) {
        out[j * ldo] = lm__red16(lo[j], hi[j]);
    }
}

/* tinyBLAS 2 rows x 3 columns: 12 accumulators, the low and high 8 lanes in turn. */
AI void tb_tile23(int f16, int a16, int64_t k, const void *w0, const void *w1, const void *const *b,
                  float *out, int64_t ldo)
{
    __m256 acc[2][3][2];
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 3; j++) {
            acc[i][j][0] = _mm256_setzero_ps();
            acc[i][j][1] = _mm256_setzero_ps();
        }
    }
    for (int64_t l = 0; l < k; l += 16) {
        for (int h = 0; h < 2; h++) {
            const __m256 x0 = ld8(w0, f16, l + 8 * h), x1 = ld8(w1, f16, l + 8 * h);
            for (int j = 0; j < 3; j++) {
                const __m256 y = ld8(b[j], a16, l + 8 * h);
                acc[0][j][h] = _mm256_fmadd_ps(x0, y, acc[0][j][h]);
                acc[1][j][h] = _mm256_fmadd_ps(x1, y, acc[1][j][h]);
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 3; j++) {
            out[j * ldo + i] = lm__red16(acc[i][j][0], acc[i][j][1]);
        }
    }
}

/* tinyBLAS 3 rows x 4 columns of f16 (weights and activations), one 8-lane half of the 16
 * lanes per pass over k: 12 accumulators, 7 conversions per 12 FMAs. Same per-lane order. */
AI void tb_tile34(int64_t k, const void *w0, int64_t ws, const void *const *b, float *out,
                  int64_t ldo)
{
    __m256 half[2][3][4];
    const uint8_t *w[3] = {w0, (const uint8_t *)w0 + ws, (const uint8_t *)w0 + 2 * ws};
    for (int h = 0; h < 2; h++) {
        __m256 acc[3][4];
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 4; j++) {
                acc[i][j] = _mm256_setzero_ps();
            }
        }
        for (int64_t l = 8 * h; l < k; l += 16) {
            const __m256 x0 = ld8(w[0], 1, l), x1 = ld8(w[1], 1, l), x2 = ld8(w[2], 1, l);
            for (int j = 0; j < 4; j++) {
                const __m256 y = ld8(b[j], 1, l);
                acc[0][j] = _mm256_fmadd_ps(x0, y, acc[0][j]);
                acc[1][j] = _mm256_fmadd_ps(x1, y, acc[1][j]);
                acc[2][j] = _mm256_fmadd_ps(x2, y, acc[2][j]);
            }
        }
        memcpy(half[h], acc, sizeof(acc));
    }
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 4; j++) {
            out[j * ldo + i] = lm__red16(half[0][i][j], half[1][i][j]);
        }
    }
}

#define TB_NC 6  /* activation columns per tile */
#define TB_RB 48 /* weight rows per block: they stay in L2 while all column panels pass */

/* Rows [r0, r1) against the nc columns b (from column c0): 2 x 3 tiles, then single rows. */
AI void tb_rows(const struct lm_mm *p, int f16, const void *const *b, int nc, int64_t c0,
                int64_t r0, int64_t r1)
{
    float *o = p->out + c0 * p->ldo;
    int64_t r = r0;
    if (f16 && nc == 4) {
        for (; r + 3 <= r1; r += 3) {
            const uint8_t *w = p->w + (size_t)r * p->w_stride;
            tb_tile34(p->k, w, (int64_t)p->w_stride, b, o + r, p->ldo);
        }
    }
    if (nc == TB_NC) {
        for (; r + 2 <= r1; r += 2) {
            const uint8_t *w = p->w + (size_t)r * p->w_stride;
            tb_tile23(f16, f16, p->k, w, w + p->w_stride, b, o + r, p->ldo);
            tb_tile23(f16, f16, p->k, w, w + p->w_stride, b + 3, o + 3 * p->ldo + r, p->ldo);
        }
    }
    for (; r < r1; r++) {
        const uint8_t *w = p->w + (size_t)r * p->w_stride;
        if (nc == TB_NC) {
            tb_tile(f16, f16, p->k, w, b, TB_NC, o + r, p->ldo);
        } else {
            tb_tile(f16, f16, p->k, w, b, nc, o + r, p->ldo);
        }
    }
}

/* tinyBLAS in blocks of TB_RB rows, each against all column panels of TB_NC. F16 activations
 * are widened (exactly) at each use: reading half the bytes beats staging them as f32. */
static void mm_tb_float(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    const int f16 = p->wtype == LM_TYPE_F16, pw = f16 ? 4 : TB_NC;
    for (int64_t rb = r0; rb < r1; rb += TB_RB) {
        const int64_t re = r1 - rb < TB_RB ? r1 : rb + TB_RB;
        for (int64_t c0 = 0; c0 < p->n; c0 += pw) {
            const int nc = p->n - c0 < pw ? (int)(p->n - c0) : pw;
            const void *b[TB_NC];
            for (int j = 0; j < nc; j++) {
                b[j] = p->act + (size_t)(c0 + j) * p->act_stride;
            }
            if (f16) {
                tb_rows(p, 1, b, nc, c0, rb, re);
            } else {
                tb_rows(p, 0, b, nc, c0, rb, re);
            }
        }
    }
}

/* ---- 32-element block types --------------------------------------------------------------------
 */

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
    case LM_TYPE_Q8_0:
        return _mm256_loadu_si256((const __m256i *)(b + 2));
    case LM_TYPE_Q4_0:
        return _mm256_sub_epi8(nibbles32(b + 2), _mm256_set1_epi8(8));
    case LM_TYPE_Q5_0:
        return _mm256_or_si256(nibbles32(b + 6),
                               _mm256_andnot_si256(bits32(b + 2), _mm256_set1_epi8((char)0xF0)));
    case LM_TYPE_Q4_1:
        return nibbles32(b + 4);
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

/* lanes32 for signed w with |w| (aw) precomputed once per weight block. */
AI __m256i lanes32_abs(__m256i w, __m256i aw, __m256i a)
{
    const __m256i p16 = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(a, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
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
        __m256i wq[4], aw[4];
        __m256 dw[4];
        for (int i = 0; i < NR; i++) {
            _mm_prefetch((const char *)(w[i] + (b + 8) * bw), _MM_HINT_T0);
            wq[i] = unpack32(t, w[i] + b * bw);
            aw[i] = has_m ? wq[i] : _mm256_sign_epi8(wq[i], wq[i]);
            dw[i] = _mm256_set1_ps(lm__f16f(lm__rd16(w[i] + b * bw)));
        }
        for (int j = 0; j < NC; j++) {
            const uint8_t *ab = a[j] + b * ba;
            const __m256i aq = _mm256_loadu_si256((const __m256i *)(ab + (has_m ? 4 : 2)));
            const __m256 da = _mm256_set1_ps(lm__f16f(lm__rd16(ab)));
            for (int i = 0; i < NR; i++) {
                const __m256i li = has_m ? lanes32(wq[i], aq, 0) : lanes32_abs(wq[i], aw[i], aq);
                const __m256 f = _mm256_cvtepi32_ps(li);
                /* dw * da is exact (two halves), so the vector product equals the scalar one. */
                acc[i][j] = _mm256_fmadd_ps(_mm256_mul_ps(dw[i], da), f, acc[i][j]);
                if (has_m) {
                    const float ms =
                        lm__f16f(lm__rd16(w[i] + b * bw + 2)) * lm__f16f(lm__rd16(ab + 2));
                    summs[i][j] = summs[i][j] + ms;
                }
            }
        }
    }
    for (int i = 0; i < NR; i++) {
        for (int j = 0; j < NC; j++) {
            const float h = lm__hsum8(acc[i][j]);
            p->out[(c + j) * p->ldo + r + i] = has_m ? h + summs[i][j] : h;
        }
    }
}

#define Q32_RB 16 /* weight rows per block: they stay in L1/L2 while all columns pass */

/* Tiles with compile-time shapes and type, so that accumulators stay in registers. */
AI void mm_q32_t(const struct lm_mm *p, int64_t r0, int64_t r1, int t)
{
    for (int64_t rb = r0; rb < r1; rb += Q32_RB) {
        const int64_t re = r1 - rb < Q32_RB ? r1 : rb + Q32_RB;
        int64_t c = 0;
        for (; c + 4 <= p->n; c += 4) {
            int64_t r = rb;
            for (; r + 2 <= re; r += 2) {
                q32_tile(p, t, r, c, 2, 4);
            }
            for (; r < re; r++) {
                q32_tile(p, t, r, c, 1, 4);
            }
        }
        for (; c < p->n; c++) {
            int64_t r = rb;
            for (; r + 4 <= re; r += 4) {
                q32_tile(p, t, r, c, 4, 1);
            }
            for (; r < re; r++) {
                q32_tile(p, t, r, c, 1, 1);
            }
        }
    }
}

static void mm_q32(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    switch (p->wtype) {
    case LM_TYPE_Q8_0:
        mm_q32_t(p, r0, r1, LM_TYPE_Q8_0);
        break;
    case LM_TYPE_Q4_0:
        mm_q32_t(p, r0, r1, LM_TYPE_Q4_0);
        break;
    case LM_TYPE_Q5_0:
        mm_q32_t(p, r0, r1, LM_TYPE_Q5_0);
        break;
    case LM_TYPE_Q4_1:
        mm_q32_t(p, r0, r1, LM_TYPE_Q4_1);
        break;
    default:
        mm_q32_t(p, r0, r1, LM_TYPE_Q5_1);
        break;
    }
}

/* ---- repacked types: one accumulator per output, 8 rows per vector ------------------------------
 */

/* Eight f16 scales at byte offset off of consecutive blocks of 8 rows, as floats. */
AI __m256 d8(const uint8_t *const *w, size_t off)
{
    uint16_t h[8];
    for (int i = 0; i < 8; i++) {
        h[i] = lm__rd16(w[i] + off);
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
            const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(lm__f16f(lm__rd16(ab))));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lm__rowsums8(v)), d, acc[j]);
        }
    }
    for (int j = 0; j < NC; j++) {
        _mm256_storeu_ps(p->out + (c + j) * p->ldo + r, acc[j]);
    }
}

/* The exact per-row sums of 8 rows' int16 pair sums p[i] (|p| <= 4080, so the 16-element
 * partial sums fit in int16): lane i = sum of the 16 lanes of p[i]. */
AI __m256i rowsums8_16(const __m256i p[8])
{
    const __m256i h01 = _mm256_hadd_epi16(p[0], p[1]), h23 = _mm256_hadd_epi16(p[2], p[3]);
    const __m256i h45 = _mm256_hadd_epi16(p[4], p[5]), h67 = _mm256_hadd_epi16(p[6], p[7]);
    const __m256i f = _mm256_hadd_epi16(_mm256_hadd_epi16(h01, h23), _mm256_hadd_epi16(h45, h67));
    return _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(f)),
                            _mm256_cvtepi16_epi32(_mm256_extracti128_si256(f, 1)));
}

#define RQ_KMAX 8192 /* longest row the prepared Q4_0 kernel handles (80 KiB of stack) */

/* 8 repacked Q4_0 rows prepared once for many columns: per block b the signed quants of row i
 * (q[b * 8 + i]), 128 * their sum (c128[b], lane = row) and the row scales (dw[b]). */
struct rq_prep {
    __m256i q[RQ_KMAX / 32 * 8];
    __m256i c128[RQ_KMAX / 32];
    __m256 dw[RQ_KMAX / 32];
};

static void rq_prepare(const struct lm_mm *p, int64_t r, struct rq_prep *u)
{
    const uint8_t *w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = p->w + (size_t)(r + i) * p->w_stride;
    }
    const __m256i k128 = _mm256_set1_epi8((char)0x80);
    for (int64_t b = 0; b < p->k / 32; b++) {
        __m256i c[8];
        for (int i = 0; i < 8; i++) {
            u->q[b * 8 + i] = unpack32(LM_TYPE_Q4_0, w[i] + b * 18);
            c[i] = _mm256_maddubs_epi16(k128, u->q[b * 8 + i]);
        }
        u->c128[b] = rowsums8_16(c);
        u->dw[b] = d8(w, (size_t)b * 18);
    }
}

/* Repacked Q4_0, 8 prepared rows from r against all columns: with a' = a + 128 (unsigned),
 * sum q*a = sum q*a' - 128 * sum q, exact; acc = fma((float)sum, dw*da, acc) per block. */
static void rq_columns(const struct lm_mm *p, int64_t r, const struct rq_prep *u)
{
    const __m256i k128 = _mm256_set1_epi8((char)0x80);
    for (int64_t c = 0; c < p->n; c++) {
        const uint8_t *act = p->act + (size_t)c * p->act_stride;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < p->k / 32; b++) {
            const uint8_t *ab = act + b * 34;
            const __m256i a = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(ab + 2)), k128);
            __m256i pr[8];
            for (int i = 0; i < 8; i++) {
                pr[i] = _mm256_maddubs_epi16(a, u->q[b * 8 + i]);
            }
            const __m256i s = _mm256_sub_epi32(rowsums8_16(pr), u->c128[b]);
            const __m256 d = _mm256_mul_ps(u->dw[b], _mm256_set1_ps(lm__f16f(lm__rd16(ab))));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), d, acc);
        }
        _mm256_storeu_ps(p->out + c * p->ldo + r, acc);
    }
}

/* Repacked Q4_0: whole groups of 8 rows in SIMD, the rows outside them with the scalar oracle
 * (same formula, same bits). */
static void mm_repack_q4_0(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    const int64_t g0 = (r0 + 7) / 8 * 8, g1 = r1 / 8 * 8;
    if (g0 >= g1) {
        lm__mm_scalar(p, r0, r1);
        return;
    }
    if (r0 < g0) {
        lm__mm_scalar(p, r0, g0);
    }
    if (g1 < r1) {
        lm__mm_scalar(p, g1, r1);
    }
    if (p->n >= 4 && p->k <= RQ_KMAX) {
        struct rq_prep u; /* blocks 0..k/32-1 are written before they are read */
        for (int64_t r = g0; r < g1; r += 8) {
            rq_prepare(p, r, &u);
            rq_columns(p, r, &u);
        }
        return;
    }
    for (int64_t r = g0; r < g1; r += 8) {
        int64_t c = 0;
        for (; c + 4 <= p->n; c += 4) {
            q4_0_rep_tile(p, r, c, 4);
        }
        for (; c < p->n; c++) {
            q4_0_rep_tile(p, r, c, 1);
        }
    }
}

/* ---- dispatch ----------------------------------------------------------------------------------
 */

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
    case LM_TYPE_BF16:
        return lm__mm_bf16_avx2(p, r0, r1);
    case LM_TYPE_Q4_0:
        if (p->kern == LM_KERN_REPACK) {
            mm_repack_q4_0(p, r0, r1);
            return 1;
        }
        mm_q32(p, r0, r1);
        return 1;
    case LM_TYPE_Q8_0:
    case LM_TYPE_Q5_0:
    case LM_TYPE_Q4_1:
    case LM_TYPE_Q5_1:
        mm_q32(p, r0, r1);
        return 1;
    default:
        return lm__mm_kq_avx2(p, r0, r1);
    }
}
