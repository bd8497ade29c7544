/*
 * The engine's non-matmul kernels: RMS norm, RoPE, softmax, SwiGLU, residual add. Pure math on
 * caller buffers (libc + libm, no allocation, no I/O), written to reproduce the operation order
 * of llama.cpp's CPU backend as built for the reference data (x86, AVX-512, GCC): see
 * ../shared/NUMERICS.md sections 3, 5, 7.3 and 10. The numeric contract of each kernel is in
 * its comment. The same functions serve the forward pass and `lltrace replay`.
 */
#include "kern_int.h"
#include "lm.h"

#include <math.h>
#include <string.h>

/*
 * ggml_v_expf, AVX-512 variant, one lane at a time: n = round(x*log2e) by the 1.5*2^23 trick,
 * b = x - n*ln2 in two FMAs, a degree-5 polynomial j, result j*2^n (scalef). |n| > 192 gives
 * 0 (n <= 0) or +inf. Lanes are independent, so this equals the vector code bit for bit.
 */
float lm_expf_ggml(float x)
{
    const float r = 0x1.8p23f;
    float z = fmaf(x, 0x1.715476p+0f, r);
    float n = z - r;
    float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    float u = b * b;
    float j = fmaf(
        fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
        u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    if (isnan(n)) {
        return n;
    }
    if (fabsf(n) > 192.0f) {
        return n <= 0.0f ? 0.0f : INFINITY;
    }
    return ldexpf(j, (int)n);
}

void lm__expf_array_avx2(const float *x, float *y, int64_t n);

/* y[i] = lm_expf_ggml(x[i]); x and y may be the same array. */
static void expf_array(const float *x, float *y, int64_t n)
{
    if (lm_simd_level() >= LM_SIMD_AVX2) {
        lm__expf_array_avx2(x, y, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        y[i] = lm_expf_ggml(x[i]);
    }
}

/* _mm512_reduce_add_ps as GCC 12 expands it: halves 8+8, 4+4, then (c0+c2)+(c1+c3). */
float lm_reduce16(const float a[16])
{
    float b[8], c[4];
    for (int i = 0; i < 8; i++) {
        b[i] = a[i] + a[i + 8];
    }
    for (int i = 0; i < 4; i++) {
        c[i] = b[i] + b[i + 4];
    }
    return (c[0] + c[2]) + (c[1] + c[3]);
}

/*
 * y = x * (1/sqrt(mean(x^2) + eps)) * w per row of n. Squares are rounded to float and summed
 * in double in index order; mean = (float)(sum/n); scale = 1.0f/sqrtf(mean + eps); then two
 * float multiplies, (x*scale)*w. w may be NULL (norm only).
 */
void lm_op_rms_norm(const float *x, const float *w, int64_t n_rows, int64_t n, float eps,
                    float *out)
{
    for (int64_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * n;
        float *yr = out + r * n;
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) {
            float sq = xr[i] * xr[i];
            sum += (double)sq;
        }
        float mean = (float)(sum / (double)n);
        float scale = 1.0f / sqrtf(mean + eps);
        for (int64_t i = 0; i < n; i++) {
            float v = xr[i] * scale;
            yr[i] = w ? v * w[i] : v;
        }
    }
}

/*
 * cos/sin of the n_rot/2 rotation angles at one position, as ggml_rope_cache_init: the angle
 * starts at (float)pos and is multiplied by theta_scale = powf(base, -2.0f/n_rot) for each
 * next pair (incremental, in float); each angle is scaled by freq_scale before cosf/sinf.
 */
void lm_op_rope_cache(int64_t pos, int n_rot, float theta_base, float freq_scale, float *cos_out,
                      float *sin_out)
{
    const float theta_scale = powf(theta_base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < n_rot / 2; i++) {
        float t = freq_scale * theta;
        cos_out[i] = cosf(t);
        sin_out[i] = sinf(t);
        theta *= theta_scale;
    }
}

/*
 * Rotates each head of each row: x is (n_rows, n_heads, head_dim); cs/sn are (n_rows, n_rot/2).
 * NORM pairs (2i, 2i+1), NEOX pairs (i, i + n_rot/2); dims >= n_rot are copied.
 * y0 = x0*c - x1*s, y1 = x0*s + x1*c, without contraction.
 */
void lm_op_rope(const float *x, int64_t n_rows, int n_heads, int head_dim, int n_rot, int mode,
                const float *cs, const float *sn, float *out)
{
    const int half = n_rot / 2;
    for (int64_t r = 0; r < n_rows; r++) {
        const float *c = cs + r * half;
        const float *s = sn + r * half;
        for (int h = 0; h < n_heads; h++) {
            const float *xh = x + (r * n_heads + h) * head_dim;
            float *yh = out + (r * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                int i0 = mode == LM_ROPE_NEOX ? i : 2 * i;
                int i1 = mode == LM_ROPE_NEOX ? i + half : 2 * i + 1;
                float x0 = xh[i0], x1 = xh[i1];
                float a = x0 * c[i], b = x1 * s[i];
                float d = x0 * s[i], e = x1 * c[i];
                yh[i0] = a - b;
                yh[i1] = d + e;
            }
            for (int i = n_rot; i < head_dim; i++) {
                yh[i] = xh[i];
            }
        }
    }
}

/*
 * Softmax of one row of scaled, masked scores (-inf where masked), as ggml_soft_max_f32 with
 * ggml_vec_soft_max_f32 on AVX-512: max in index order; e = ggml_v_expf(w - max); sums of
 * groups of 16 in float (reduce tree) added to a double; out = e * (float)(1.0/sum). llama.cpp
 * pads rows to 256 cells whose exps are exactly 0, so the last group is zero-padded here.
 * With f16_accum (the softmax=f16 fault) exps and the running sum are rounded to half.
 */
void lm_op_softmax(const float *w, int64_t n, bool f16_accum, float *out)
{
    float max = -INFINITY;
    double sum = 0.0;
    float lane[16];
    for (int64_t i = 0; i < n; i++) {
        max = w[i] > max ? w[i] : max;
    }
    if (f16_accum) {
        float s = 0.0f;
        for (int64_t i = 0; i < n; i++) {
            out[i] = lm_f16_to_f32(lm_f32_to_f16(lm_expf_ggml(w[i] - max)));
            s = lm_f16_to_f32(lm_f32_to_f16(s + out[i]));
        }
        sum = (double)s;
    } else {
        for (int64_t i = 0; i < n; i++) {
            out[i] = w[i] - max;
        }
        expf_array(out, out, n);
        for (int64_t i0 = 0; i0 < n; i0 += 16) {
            for (int l = 0; l < 16; l++) {
                lane[l] = i0 + l < n ? out[i0 + l] : 0.0f;
            }
            sum += (double)lm_reduce16(lane);
        }
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) {
        out[i] *= inv;
    }
}

/*
 * out = silu(g) * u with silu(x) = x / (1 + exp(-x)): ggml_vec_swiglu_f32 on AVX-512 uses
 * ggml_v_expf for whole groups of 16 and libm expf for the n % 16 tail.
 */
void lm_op_swiglu(const float *g, const float *u, int64_t n, float *out)
{
    const int64_t n16 = n - n % 16;
    for (int64_t i = 0; i < n16; i++) {
        out[i] = 0.0f - g[i];
    }
    expf_array(out, out, n16);
    for (int64_t i = 0; i < n; i++) {
        float e = i < n16 ? out[i] : expf(-g[i]);
        out[i] = (g[i] / (1.0f + e)) * u[i];
    }
}

void lm_op_add(const float *a, const float *b, int64_t n, float *out)
{
    for (int64_t i = 0; i < n; i++) {
        out[i] = a[i] + b[i];
    }
}
