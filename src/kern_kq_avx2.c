/*
 * kern_kq_avx2.c - AVX2 kernels of the K-quant weight types (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)
 * against Q8_K activations: the vec_dot formula of every type, and the repacked formula of Q4_K
 * and Q2_K (the contract in kern_int.h; NUMERICS.md sections 4.4-4.5). A weight super-block is
 * unpacked once into maddubs-ready vectors (struct kblk) and reused for up to KP activation
 * columns; integer lane sums are exact, and the float steps are those of the scalar oracle in
 * kern_dot.c, so both paths give identical bits (tests/test_kern.c). Built with -mavx2 -mfma
 * -mf16c; only called when cpu.c reports AVX2. No allocation; libc only.
 */
#include "kern_avx2_int.h"

#include <math.h>

/* One super-block of one weight row, unpacked. Group g holds elements 32g..32g+31. */
struct kblk {
    __m256i q[8];  /* unsigned quants (Q3_K: the low 2 bits) */
    __m256i h[8];  /* Q3_K only: 4 where the high bit is clear (q = lo - h) */
    __m256i sc[8]; /* int16 scales: lanes 0-7 for elements 32g..+15, lanes 8-15 for 32g+16..+31 */
    __m256i s16;   /* Q6_K: the 16 scales; Q2_K: the 16 mins; Q4_K/Q5_K: the 8 mins (low half) */
    float d, dmin; /* the super-block's f16 scales as floats */
};

/* Per-column state of the vec_dot formula. */
struct kacc {
    __m256 acc;
    __m128 accm; /* Q4_K */
    float summs; /* Q5_K */
};

#define KP 16 /* activation columns per pass over a weight row */

AI __m256i ld256(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

/* sc[g] from 16 signed 8-bit per-16 scales: lanes 0-7 = s[2g], lanes 8-15 = s[2g+1]. */
AI void scales16(__m128i s8, __m256i sc[8])
{
    for (int g = 0; g < 8; g++) {
        const __m128i sh = _mm_set_epi64x((long long)(0x0101010101010101ull * (2u * g + 1)),
                                          (long long)(0x0101010101010101ull * (2u * g)));
        sc[g] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s8, sh));
    }
}

/* The 2-bit fields of 64 bytes qs (Q2_K/Q3_K): group 4j+s = (qs[32j..] >> 2s) & 3. */
AI void unp_2bit(const uint8_t *qs, __m256i q[8])
{
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int j = 0; j < 2; j++) {
        const __m256i bits = ld256(qs + 32 * j);
        q[4 * j] = _mm256_and_si256(bits, m3);
        q[4 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 2), m3);
        q[4 * j + 2] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m3);
        q[4 * j + 3] = _mm256_and_si256(_mm256_srli_epi16(bits, 6), m3);
    }
}

AI void unp_q2k(const uint8_t *b, struct kblk *u)
{
    unp_2bit(b + 16, u->q);
    const __m128i ms = _mm_loadu_si128((const __m128i *)b), m4 = _mm_set1_epi8(0xF);
    scales16(_mm_and_si128(ms, m4), u->sc);
    u->s16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(ms, 4), m4));
    u->d = lm__f16f(lm__rd16(b + 80));
    u->dmin = lm__f16f(lm__rd16(b + 82));
}

AI void unp_q3k(const uint8_t *b, struct kblk *u)
{
    unp_2bit(b + 32, u->q);
    const __m256i hm = ld256(b), four = _mm256_set1_epi8(4);
    for (int g = 0; g < 8; g++) {
        const __m256i bit = _mm256_set1_epi8((char)(1u << g));
        u->h[g] = _mm256_andnot_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), four);
    }
    int8_t s[16];
    lm__q3k_scales(b + 96, s);
    scales16(_mm_loadu_si128((const __m128i *)s), u->sc);
    u->d = lm__f16f(lm__rd16(b + 108));
}

/* Q4_K/Q5_K (scale, min) pairs: 8 scales then 8 mins, as ggml's utmp shuffle. */
AI void scale_min8(const uint8_t *s12, uint8_t out[16])
{
    uint32_t ut[4];
    memcpy(ut, s12, 12);
    ut[3] = ((ut[2] >> 4) & 0x0f0f0f0fu) | (((ut[1] >> 6) & 0x03030303u) << 4);
    const uint32_t ua = ut[1] & 0x3f3f3f3fu;
    ut[1] = (ut[2] & 0x0f0f0f0fu) | (((ut[0] >> 6) & 0x03030303u) << 4);
    ut[2] = ua;
    ut[0] &= 0x3f3f3f3fu;
    memcpy(out, ut, 16);
}

/* Q4_K (five = 0) or Q5_K (five = 1). */
AI void unp_q45k(const uint8_t *b, struct kblk *u, int five)
{
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const uint8_t *qs = b + (five ? 48 : 16);
    for (int c = 0; c < 4; c++) {
        const __m256i bits = ld256(qs + 32 * c);
        u->q[2 * c] = _mm256_and_si256(bits, m4);
        u->q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
    }
    if (five) {
        const __m256i hb = ld256(b + 16), v16 = _mm256_set1_epi8(0x10);
        for (int g = 0; g < 8; g++) {
            const __m256i bit = _mm256_set1_epi8((char)(1u << g));
            const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit);
            u->q[g] = _mm256_or_si256(u->q[g], _mm256_and_si256(set, v16));
        }
    }
    uint8_t sm[16];
    scale_min8(b + 4, sm);
    for (int g = 0; g < 8; g++) {
        u->sc[g] = _mm256_set1_epi16(sm[g]);
    }
    u->s16 = _mm256_zextsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8))));
    u->d = lm__f16f(lm__rd16(b));
    u->dmin = lm__f16f(lm__rd16(b + 2));
}

AI void unp_q6k(const uint8_t *b, struct kblk *u)
{
    const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(0x30);
    for (int j = 0; j < 2; j++) {
        const __m256i b1 = ld256(b + 64 * j), b2 = ld256(b + 64 * j + 32);
        const __m256i bh = ld256(b + 128 + 32 * j);
        u->q[4 * j] = _mm256_or_si256(_mm256_and_si256(b1, m4),
                                      _mm256_and_si256(_mm256_slli_epi16(bh, 4), m2));
        u->q[4 * j + 1] = _mm256_or_si256(_mm256_and_si256(b2, m4),
                                          _mm256_and_si256(_mm256_slli_epi16(bh, 2), m2));
        u->q[4 * j + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m4),
                                          _mm256_and_si256(bh, m2));
        u->q[4 * j + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m4),
                                          _mm256_and_si256(_mm256_srli_epi16(bh, 2), m2));
    }
    const __m128i s8 = _mm_loadu_si128((const __m128i *)(b + 192));
    scales16(s8, u->sc);
    u->s16 = _mm256_cvtepi8_epi16(s8);
    u->d = lm__f16f(lm__rd16(b + 208));
}

AI void unpack(int t, const uint8_t *b, struct kblk *u)
{
    switch (t) {
    case LM_TYPE_Q2_K:
        unp_q2k(b, u);
        break;
    case LM_TYPE_Q3_K:
        unp_q3k(b, u);
        break;
    case LM_TYPE_Q4_K:
        unp_q45k(b, u, 0);
        break;
    case LM_TYPE_Q5_K:
        unp_q45k(b, u, 1);
        break;
    default:
        unp_q6k(b, u);
        break;
    }
}

/* The 8 exact int32 lanes: lane l = sum over e with e%32 in [4l, 4l+3] of scale * q * q8. */
AI __m256i klanes(const struct kblk *u, const int8_t *qa, int q3)
{
    __m256i s = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) {
        const __m256i a = ld256(qa + 32 * g);
        __m256i p = _mm256_maddubs_epi16(u->q[g], a);
        if (q3) {
            p = _mm256_sub_epi16(p, _mm256_maddubs_epi16(u->h[g], a));
        }
        s = _mm256_add_epi32(s, _mm256_madd_epi16(p, u->sc[g]));
    }
    return s;
}

/* Q4_K/Q5_K mins: 4 lanes m[2i]B[2i] + m[2i+1]B[2i+1], B[j] = bsums[2j] + bsums[2j+1]. */
AI __m128i mins45(const struct kblk *u, __m256i bs)
{
    const __m128i B = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    return _mm_madd_epi16(_mm256_castsi256_si128(u->s16), B);
}

/* One super-block of the vec_dot formula for one column (kern_dot.c dot_k). */
AI void kstep(int t, const struct kblk *u, const struct lm_blk_q8_k *y, struct kacc *s)
{
    const __m256i lane = klanes(u, y->qs, t == LM_TYPE_Q3_K);
    const __m256i bs = ld256(y->bsums);
    const __m256 d = _mm256_set1_ps(y->d * u->d);
    const float dmin = -y->d * u->dmin;
    if (t == LM_TYPE_Q6_K) {
        const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(bs, u->s16), 5);
        s->acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(lane, corr)), s->acc);
        return;
    }
    if (t == LM_TYPE_Q2_K) {
        const __m256 fm = _mm256_cvtepi32_ps(_mm256_madd_epi16(u->s16, bs));
        s->acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), fm, s->acc);
    } else if (t == LM_TYPE_Q4_K) {
        const __m128 fm = _mm_cvtepi32_ps(mins45(u, bs));
        s->accm = _mm_fmadd_ps(_mm_set1_ps(dmin), fm, s->accm);
    } else if (t == LM_TYPE_Q5_K) {
        __m128i pr = mins45(u, bs);
        pr = _mm_add_epi32(pr, _mm_shuffle_epi32(pr, 0x4E));
        pr = _mm_add_epi32(pr, _mm_shuffle_epi32(pr, 0xB1));
        s->summs = fmaf(dmin, (float)_mm_cvtsi128_si32(pr), s->summs);
    }
    s->acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lane), s->acc);
}

AI float kfinal(int t, const struct kacc *s)
{
    if (t == LM_TYPE_Q4_K) {
        return lm__hsum8(s->acc) + lm__hsum4(s->accm);
    }
    return t == LM_TYPE_Q5_K ? lm__hsum8(s->acc) + s->summs : lm__hsum8(s->acc);
}

/* The vec_dot formula: each weight super-block is unpacked once per pass of KP columns. */
AI void mm_kvec_t(const struct lm_mm *p, int t, int64_t r0, int64_t r1)
{
    const int64_t nb = p->k / 256, bw = lm_type_block_bytes(t);
    struct kblk u;
    struct kacc st[KP];
    for (int64_t c0 = 0; c0 < p->n; c0 += KP) {
        const int nc = p->n - c0 < KP ? (int)(p->n - c0) : KP;
        const uint8_t *act = p->act + (size_t)c0 * p->act_stride;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *w = p->w + (size_t)r * p->w_stride;
            for (int j = 0; j < nc; j++) {
                st[j].acc = _mm256_setzero_ps();
                st[j].accm = _mm_setzero_ps();
                st[j].summs = 0.0f;
            }
            for (int64_t b = 0; b < nb; b++) {
                _mm_prefetch((const char *)(w + (b + 2) * bw), _MM_HINT_T0);
                unpack(t, w + b * bw, &u);
                for (int j = 0; j < nc; j++) {
                    const struct lm_blk_q8_k *y =
                        (const struct lm_blk_q8_k *)(act + (size_t)j * p->act_stride) + b;
                    kstep(t, &u, y, &st[j]);
                }
            }
            for (int j = 0; j < nc; j++) {
                p->out[(c0 + j) * p->ldo + r] = kfinal(t, &st[j]);
            }
        }
    }
}

/* Eight f16 scales at byte offset off of the blocks of 8 rows, as floats. */
AI __m256 d8(const uint8_t *const *w, size_t off)
{
    uint16_t h[8];
    for (int i = 0; i < 8; i++) {
        h[i] = lm__rd16(w[i] + off);
    }
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}

/* Repacked Q4_K/Q2_K, rows r..r+7 against columns c0..c0+nc-1: per super-block
 * acc = fma((float)sum sc*q*q8, dw*ya.d, acc), accm = fma((float)sum mins*bsums, dmin*ya.d, accm);
 * out = acc - accm. The 8 rows share one vector (lane i = row r+i). */
AI void krep_tile(const struct lm_mm *p, int t, int64_t r, int64_t c0, int nc)
{
    const int64_t nb = p->k / 256, bw = lm_type_block_bytes(t);
    const size_t doff = t == LM_TYPE_Q2_K ? 80 : 0;
    const uint8_t *w[8];
    struct kblk u[8];
    __m256 acc[KP], accm[KP];
    for (int i = 0; i < 8; i++) {
        w[i] = p->w + (size_t)(r + i) * p->w_stride;
    }
    for (int j = 0; j < nc; j++) {
        acc[j] = _mm256_setzero_ps();
        accm[j] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        for (int i = 0; i < 8; i++) {
            unpack(t, w[i] + b * bw, &u[i]);
        }
        const __m256 dw = d8(w, (size_t)(b * bw) + doff), dmw = d8(w, (size_t)(b * bw) + doff + 2);
        for (int j = 0; j < nc; j++) {
            const struct lm_blk_q8_k *y =
                (const struct lm_blk_q8_k *)(p->act + (size_t)(c0 + j) * p->act_stride) + b;
            const __m256i bs = ld256(y->bsums);
            __m256i v[8], mv[8];
            for (int i = 0; i < 8; i++) {
                v[i] = klanes(&u[i], y->qs, 0);
                mv[i] = t == LM_TYPE_Q2_K ? _mm256_madd_epi16(u[i].s16, bs)
                                          : _mm256_zextsi128_si256(mins45(&u[i], bs));
            }
            const __m256 yd = _mm256_set1_ps(y->d);
            const __m256 fs = _mm256_cvtepi32_ps(lm__rowsums8(v));
            const __m256 fm = _mm256_cvtepi32_ps(lm__rowsums8(mv));
            acc[j] = _mm256_fmadd_ps(fs, _mm256_mul_ps(dw, yd), acc[j]);
            accm[j] = _mm256_fmadd_ps(fm, _mm256_mul_ps(dmw, yd), accm[j]);
        }
    }
    for (int j = 0; j < nc; j++) {
        _mm256_storeu_ps(p->out + (c0 + j) * p->ldo + r, _mm256_sub_ps(acc[j], accm[j]));
    }
}

/* Whole groups of 8 rows in SIMD; rows outside them use the scalar oracle (same bits). */
static void mm_krep(const struct lm_mm *p, int t, int64_t r0, int64_t r1)
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
    for (int64_t r = g0; r < g1; r += 8) {
        for (int64_t c0 = 0; c0 < p->n; c0 += KP) {
            const int nc = p->n - c0 < KP ? (int)(p->n - c0) : KP;
            if (t == LM_TYPE_Q2_K) {
                krep_tile(p, LM_TYPE_Q2_K, r, c0, nc);
            } else {
                krep_tile(p, LM_TYPE_Q4_K, r, c0, nc);
            }
        }
    }
}

int lm__mm_kq_avx2(const struct lm_mm *p, int64_t r0, int64_t r1)
{
    if (p->kern == LM_KERN_REPACK && (p->wtype == LM_TYPE_Q4_K || p->wtype == LM_TYPE_Q2_K)) {
        mm_krep(p, p->wtype, r0, r1);
        return 1;
    }
    switch (p->wtype) {
    case LM_TYPE_Q2_K:
        mm_kvec_t(p, LM_TYPE_Q2_K, r0, r1);
        return 1;
    case LM_TYPE_Q3_K:
        mm_kvec_t(p, LM_TYPE_Q3_K, r0, r1);
        return 1;
    case LM_TYPE_Q4_K:
        mm_kvec_t(p, LM_TYPE_Q4_K, r0, r1);
        return 1;
    case LM_TYPE_Q5_K:
        mm_kvec_t(p, LM_TYPE_Q5_K, r0, r1);
        return 1;
    case LM_TYPE_Q6_K:
        mm_kvec_t(p, LM_TYPE_Q6_K, r0, r1);
        return 1;
    default:
        return 0;
    }
}
