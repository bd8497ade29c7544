/*
 * kern_int.h - the engine's internal kernel API: weight/activation block layouts, activation
 * conversion, dot products and the matmul entry point (src/quant*.c, src/kern_dot*.c, src/cpu.c).
 *
 * NUMERIC CONTRACT. Every output element reproduces, bit for bit, the float operation sequence
 * of llama.cpp's CPU backend (commit 050ee92d0) as built for the reference data in ../shared/refs:
 * x86-64 with AVX-512F/BW/VL/DQ/VNNI/VBMI/BF16 and AVX-VNNI, GGML_NATIVE, llamafile sgemm on,
 * weight repacking on, GCC (GNU C: a*b+c in scalar C is contracted to FMA). This machine may only
 * have AVX2: the 16-lane AVX-512 accumulators are emulated with two __m256 (AVX2 path) or with
 * arrays and fmaf (scalar path). Integer parts are exact everywhere, so only the float order
 * matters; both paths implement the same order and give IDENTICAL bits (tests/test_kern.c).
 * Results never depend on how rows are split across threads: each output element is computed by
 * one call with a fixed order. Notation: fma(a,b,c) is one rounding; hsum8(v) with
 * a_i = v_i + v_(i+4) is (a0+a2)+(a1+a3); red16(v) is the _mm512_reduce_add_ps tree:
 * b_i = v_i + v_(i+8), c_i = b_i + b_(i+4), (c0+c2)+(c1+c3).
 *
 * Activation formats (lm_act_type): F32 -> F32, F16 -> F16, BF16 -> BF16, Q4_0/Q5_0/Q8_0 -> Q8_0,
 * Q4_1/Q5_1 -> Q8_1, Q2_K..Q6_K -> Q8_K.
 *   Q8_0/Q8_1 (x86 quantize_row_q8_0/_1): amax = max|x|, d = amax/127.f, id = amax ? 127.f/amax
 *     : 0, q = round-half-even(x*id), stored d = f16 RNE(d); Q8_1 adds s = f16(d * (float)sum q).
 *   Q8_K (quantize_row_q8_K_ref): max = signed value of the first largest |x|, iscale = -127.f/max,
 *     q = min(127, nearest_int(iscale*x)) (ties to even), bsums = sums of 16, d = 1/iscale (f32);
 *     all-zero block: d = 0, q = 0, bsums = 0.
 *   F16: RNE with F16C semantics (NaN keeps its payload, quieted). BF16: ggml_cpu_fp32_to_bf16,
 *     the scalar RNE of ggml_compute_fp32_to_bf16 (NaN quieted, subnormals rounded, not flushed).
 *
 * Kernels, per output element y[row, col] (w = weight row, a = activation column, k = length):
 *   F32/F16 weights, n == 1 (ggml_vec_dot_f32/f16, AVX-512): 4 accumulators x 16 lanes, step 64,
 *     acc[j][l] = fma(w[i+16j+l], a[i+16j+l], acc[j][l]); s0 += s2, s1 += s3, s0 += s1; red16(s0);
 *     tail (k % 64): F32 adds w*a (product rounded, then a float add, in index order; ggml's tail
 *     is compiler-defined); F16 adds (double)(w*a) to a double sum started from red16.
 *   BF16 weights, n == 1 (AVX512-BF16 vec_dot_bf16): two 16-lane accumulators c1, c2, step 64;
 *     dpbf16 per lane l: c = fma(w[2l+1], a[2l+1], c); c = fma(w[2l], a[2l], c) (bf16 inputs
 *     that are subnormal read as 0, subnormal results flush to 0); double s = red16(c1) +
 *     red16(c2) in that order, then the tail in double as F16. [?] AMD CPUs: dpbf16 rounding
 *     per step as Intel documents it; not verified against the reference machine.
 *   F32/F16 weights, n >= 2, k % 16 == 0 and m % 4 == 0 (tinyBLAS KN = 16): one 16-lane
 *     accumulator, lane j takes elements l == j (mod 16) in increasing l with fma; red16. BF16:
 *     KN = 32 with dpbf16 as above (k % 32 == 0). Otherwise the n == 1 kernel.
 *   Q8_0/Q4_0/Q5_0 x Q8_0 (vec_dot and tinyBLAS_Q0): 8 lanes; per block b lane t holds the exact
 *     int sum of elements 4t..4t+3 (dequant order); acc_t = fma(dw*da, (float)isum, acc_t);
 *     hsum8(acc).
 *   Q4_1/Q5_1 x Q8_1: the same 8 lanes on unsigned quants; summs = fma(m_w, s_a, summs) per
 *     block (exact product); result hsum8(acc) + summs.
 *   Q2_K: per super-block acc = fma(-(ya.d*dmin), (float)(mins.bsums lane t = m[2t]b[2t] +
 *     m[2t+1]b[2t+1]), acc), then acc = fma(ya.d*d, (float)lane_t, acc) with lane_t = sum over
 *     elements e with e%32 in [4t,4t+3] of sc[e/16]*q*q8; hsum8. Q3_K: acc = fma(ya.d*d, lane,
 *     acc), same lanes with signed 6-bit scales; hsum8.
 *   Q4_K: lane_t as above with the 6-bit scale of the 32-sub-block; acc = fma(ya.d*d, lane, acc);
 *     4-lane acc_m_i = fma(-(ya.d*dmin), (float)(m[2i]B[2i] + m[2i+1]B[2i+1]), acc_m_i) with
 *     B[j] = bsums[2j] + bsums[2j+1]; result hsum8(acc) + ((m0+m2)+(m1+m3)).
 *   Q5_K: as Q4_K but summs = fma(-(ya.d*dmin), (float)sum_j m[j]B[j], summs) (GCC contracts
 *     this scalar line); result hsum8(acc) + summs.
 *   Q6_K: lane_t = sum sc[e/16]*qu*q8 - 32*(bsums[2t]sc[2t] + bsums[2t+1]sc[2t+1]) with qu the
 *     unsigned 6-bit quant; acc = fma(ya.d*d, lane, acc); hsum8.
 *   REPACK (the reference build repacks Q4_0 and Q4_K (AVX2) and Q2_K (AVX-512) when the weight
 *   has m % 8 == 0; lm_matmul_ex(LM_MM_NO_REPACK) for weights llama.cpp does not repack, e.g.
 *   token_embd used as the output): one float accumulator per output, sequential over blocks:
 *     Q4_0: acc = fma((float)sum_32 q*q8, dw*da, acc).
 *     Q4_K: acc = fma((float)sum_e sc*q*q8, dw*ya.d, acc); accm = fma((float)sum_j m[j]B[j],
 *       dmin*ya.d, accm); result acc - accm.
 *     Q2_K [?]: the same with 16 sub-blocks: acc over sc&15, accm over (sc>>4)*bsums[j]
 *       (derived by analogy with Q4_K; no reference dump uses Q2_K matmuls).
 * These are NUMERICS.md sections 4.2-4.5.
 *
 * Threading: all functions are pure and re-entrant except lm_simd_set (process-wide setting).
 */
#ifndef LM_KERN_INT_H
#define LM_KERN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "lm.h"

/* ---- block layouts (ggml-common.h), little-endian, packed by construction -------------------- */

#define LM_QK  32  /* elements per block of the 32-block types */
#define LM_QKK 256 /* elements per K-quant super-block */

struct lm_blk_q4_0 {
    uint16_t d;
    uint8_t qs[16]; /* element j: qs[j] & 15 (j < 16), qs[j-16] >> 4 (j >= 16) */
};
struct lm_blk_q4_1 {
    uint16_t d, m;
    uint8_t qs[16];
};
struct lm_blk_q5_0 {
    uint16_t d;
    uint8_t qh[4]; /* bit j = high bit of element j */
    uint8_t qs[16];
};
struct lm_blk_q5_1 {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[16];
};
struct lm_blk_q8_0 {
    uint16_t d;
    int8_t qs[32];
};
struct lm_blk_q8_1 {
    uint16_t d, s; /* s = f16(d * sum qs) */
    int8_t qs[32];
};
struct lm_blk_q2_k {
    uint8_t scales[16]; /* low nibble scale, high nibble min, per 16 elements */
    uint8_t qs[64];
    uint16_t d, dmin;
};
struct lm_blk_q3_k {
    uint8_t hmask[32];
    uint8_t qs[64];
    uint8_t scales[12];
    uint16_t d;
};
struct lm_blk_q4_k {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[128];
};
struct lm_blk_q5_k {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
};
struct lm_blk_q6_k {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
};
struct lm_blk_q8_k {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
};

_Static_assert(sizeof(struct lm_blk_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(struct lm_blk_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(struct lm_blk_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(struct lm_blk_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(struct lm_blk_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(struct lm_blk_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(struct lm_blk_q2_k) == 84, "q2_K layout");
_Static_assert(sizeof(struct lm_blk_q3_k) == 110, "q3_K layout");
_Static_assert(sizeof(struct lm_blk_q4_k) == 144, "q4_K layout");
_Static_assert(sizeof(struct lm_blk_q5_k) == 176, "q5_K layout");
_Static_assert(sizeof(struct lm_blk_q6_k) == 210, "q6_K layout");
_Static_assert(sizeof(struct lm_blk_q8_k) == 292, "q8_K layout");

/* Unpacks the 6-bit (scale, min) pair j (0..7) of a Q4_K/Q5_K block (get_scale_min_k4). */
void lm__scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m);
/* The 16 signed 6-bit Q3_K scales (minus 32 applied) of a 12-byte scales array. */
void lm__q3k_scales(const uint8_t *b, int8_t out[16]);

/* ---- CPU features (cpu.c) ----------------------------------------------------------------------
 */

enum lm_simd {
    LM_SIMD_SCALAR = 0, /* portable C, always available */
    LM_SIMD_AVX2 = 1,   /* AVX2 + FMA + F16C (kern_dot_avx2.c) */
    LM_SIMD_COUNT
};

/* The best level this CPU and OS support (cpuid/xgetbv). */
int lm_simd_detect(void);
/* The level kernels use: lm_simd_set's choice, else env LLTRACE_SIMD=scalar|avx2 (capped at what
 * the CPU has), else lm_simd_detect(). */
int lm_simd_level(void);
/* Forces a level for the whole process (tests and benchmarks); -1 returns to the default.
 * Returns 0, or LM_EUNSUPPORTED when the CPU lacks it (the setting is then unchanged). Not
 * thread-safe against concurrent matmuls: call it between runs. */
int lm_simd_set(int level);
/* "scalar", "avx2"; NULL for an unknown level. */
const char *lm_simd_name(int level);

/* ---- activations (quant_act.c) ------------------------------------------------------------------
 */

/* The activation format a weight type's dot product consumes (see the contract); -1 if none. */
int lm_act_type(int wtype);
/* Bytes of one converted activation row of k elements; 0 for an unsupported type or bad k. */
size_t lm_act_row_bytes(int wtype, int64_t k);
/* Converts one row x (k) to lm_act_type(wtype) in dst (lm_act_row_bytes bytes). k must be a
 * multiple of the weight's block size. */
void lm_act_convert(int wtype, const float *x, void *dst, int64_t k);

/* The individual converters (k a multiple of 32 / 256 where blocks are involved). */
void lm_quantize_q8_0_act(const float *x, struct lm_blk_q8_0 *y, int64_t k);
void lm_quantize_q8_1_act(const float *x, struct lm_blk_q8_1 *y, int64_t k);
void lm_quantize_q8_k_act(const float *x, struct lm_blk_q8_k *y, int64_t k);
void lm_f32_to_f16_act(const float *x, uint16_t *y, int64_t k);
void lm_f32_to_bf16_act(const float *x, uint16_t *y, int64_t k);
/* F16C-style conversion of one value (NaN payload kept and quieted). */
uint16_t lm__f32_to_f16_hw(float f);

/* ---- dot products for attention (vec_dot / tinyBLAS per-element structure) ---------------------
 */

/* ggml_vec_dot_f32 (AVX-512 structure) of x, y (n). */
float lm_dot_f32(int64_t n, const float *x, const float *y);
/* tinyBLAS per-element structure (KN = 16) of x, y (n); n should be a multiple of 16 (the lanes
 * of a partial last chunk simply start at its first element). */
float lm_dot_f32_tb(int64_t n, const float *x, const float *y);
/* The same on f16 vectors (exact f16 -> f32 loads). */
float lm_dot_f16(int64_t n, const uint16_t *x, const uint16_t *y);
float lm_dot_f16_tb(int64_t n, const uint16_t *x, const uint16_t *y);
/* ggml_vec_dot_bf16 (AVX512-BF16 structure) and tinyBLAS KN = 32 on bf16 vectors. */
float lm_dot_bf16(int64_t n, const uint16_t *x, const uint16_t *y);
float lm_dot_bf16_tb(int64_t n, const uint16_t *x, const uint16_t *y);

/* ---- matmul -------------------------------------------------------------------------------------
 */

#define LM_MM_NO_REPACK                                                                            \
    1u /* the weight is not in llama.cpp's CPU_REPACK buffer (e.g. tied output) */

/*
 * out[col * ldo + row] for row in [r0, r1), col in [0, n) = dot(weight row, activation col).
 *   w:   m rows of k elements of type wtype, rows contiguous (lm_type_row_bytes(wtype, k) each).
 *   act: n rows converted with lm_act_convert(wtype, ...), act_stride bytes apart.
 *   out: (n, ldo) floats, ldo >= m.
 * The kernel is chosen from (wtype, k, m, n) as llama.cpp does (see the contract), never from
 * r0/r1: any 0 <= r0 < r1 <= m gives the same bits for the rows it computes, so callers may split
 * rows freely; multiples of 16 keep the SIMD tiles full. Runs on the calling thread, allocates
 * nothing. Returns 0, or LM_EINVAL (bad arguments) / LM_EUNSUPPORTED (weight type).
 */
int lm_matmul(int wtype, int64_t k, int64_t m, const void *w, const void *act, size_t act_stride,
              int64_t n, float *out, int64_t ldo, int64_t r0, int64_t r1);
/* lm_matmul with flags (LM_MM_NO_REPACK). */
int lm_matmul_ex(int wtype, int64_t k, int64_t m, const void *w, const void *act, size_t act_stride,
                 int64_t n, float *out, int64_t ldo, int64_t r0, int64_t r1, unsigned flags);

/* ---- internal: the kernel families shared by kern_dot.c and kern_dot_avx2.c -------------------
 */

enum lm_kern {
    LM_KERN_VEC = 0,   /* vec_dot / tinyBLAS_Q0 formula */
    LM_KERN_TB = 1,    /* tinyBLAS float formula (F32/F16/BF16, n >= 2) */
    LM_KERN_REPACK = 2 /* per-column sequential formula of the repacked types */
};

/* Which formula computes (wtype, k, m, n, flags). */
int lm__kern_choose(int wtype, int64_t k, int64_t m, int64_t n, unsigned flags);

/* Arguments of one matmul call, already validated. */
struct lm_mm {
    int wtype, kern;
    int64_t k, m, n, ldo;
    const uint8_t *w;
    size_t w_stride; /* bytes per weight row */
    const uint8_t *act;
    size_t act_stride;
    float *out;
};

/* Computes rows [r0, r1) of all columns: the portable reference (kern_dot.c). */
void lm__mm_scalar(const struct lm_mm *p, int64_t r0, int64_t r1);
/* The AVX2 version; returns 0 when it has no kernel for p (the caller then uses the scalar one). */
int lm__mm_avx2(const struct lm_mm *p, int64_t r0, int64_t r1);
/* AVX2 lm_dot_f32/f16 (vec_dot) and lm_dot_*_tb (n % 16 == 0 only); f16 selects the type. */
float lm__vdot_avx2(int f16, int64_t n, const void *x, const void *y);
float lm__tbdot_avx2(int f16, int64_t n, const void *x, const void *y);
/* One output element with the scalar formula (tests use it as the oracle). */
float lm__dot_scalar(int wtype, int kern, int64_t k, const void *wrow, const void *arow);

#endif
