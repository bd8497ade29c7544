/*
 * trc_codec.c - the tensor codec and the small pure helpers around it: dtype table, the lt64
 * content hash, byte shuffle, f16/bf16 conversion, stats, shapes as JSON, and the zstd frame
 * encode/decode with its checks. The format is documented in schema/trace.sql; this file must
 * not depend on anything but libc and zstd (no SQLite here).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_c_literalCompressionMode, see codec_params */
#include <zstd.h>

#include "trc_int.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[TRC_DTYPE_COUNT] = {
    [TRC_DTYPE_F32] = {"f32", 4},
    [TRC_DTYPE_F16] = {"f16", 2},
    [TRC_DTYPE_BF16] = {"bf16", 2},
    [TRC_DTYPE_I32] = {"i32", 4},
};

const char *trc_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define TRC_X_(name, val, text)                                                                    \
    case val:                                                                                      \
        return text;
        TRC_ERRNO_MAP(TRC_X_)
#undef TRC_X_
    default:
        return "unknown error";
    }
}

const char *trc__os_error(int e, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", strerror(e));
    if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z') {
        buf[0] = (char)(buf[0] - 'A' + 'a'); /* "No such file", not "I/O error" */
    }
    return buf;
}

size_t trc__dtype_size(enum trc_dtype dt)
{
    return (dt >= 0 && dt < TRC_DTYPE_COUNT) ? dtypes[dt].size : 0;
}

const char *trc__dtype_name(enum trc_dtype dt)
{
    return (dt >= 0 && dt < TRC_DTYPE_COUNT) ? dtypes[dt].name : "?";
}

int trc__dtype_parse(const char *name, enum trc_dtype *out)
{
    for (int i = 0; name && i < TRC_DTYPE_COUNT; i++) {
        if (strcmp(name, dtypes[i].name) == 0) {
            *out = (enum trc_dtype)i;
            return 0;
        }
    }
    return -1;
}

/* ---- lt64 ---------------------------------------------------------------------------------- */

#define P1 TRC__LT64_P1
#define P2 TRC__LT64_P2
#define P3 TRC__LT64_P3

void trc__hash_init(uint64_t v[4])
{
    v[0] = P1 + P2;
    v[1] = P2;
    v[2] = 0;
    v[3] = (uint64_t)0 - P1;
}

uint64_t trc__hash_end(const uint64_t v0[4], const void *data, size_t n, size_t done)
{
    const uint8_t *p = data;
    uint64_t v[4] = {v0[0], v0[1], v0[2], v0[3]};
    size_t full = n / 32 * 32;
    if (done < full) {
        trc__lanes(v, p + done, (full - done) / 32);
    }
    if (full < n) {
        uint8_t tail[32] = {0}; /* zero padding of the last block */
        memcpy(tail, p + full, n - full);
        trc__lanes_c(v, tail, 1);
    }
    uint64_t h =
        trc__rotl64(v[0], 1) + trc__rotl64(v[1], 7) + trc__rotl64(v[2], 12) + trc__rotl64(v[3], 18);
    h += (uint64_t)n * P3;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

uint64_t trc__hash(const void *data, size_t n)
{
    uint64_t v[4];
    trc__hash_init(v);
    return trc__hash_end(v, data, n, 0);
}

void trc__hash_hex(uint64_t h, char hex[17])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        hex[i] = digits[h & 15];
        h >>= 4;
    }
    hex[16] = '\0';
}

/* ---- shuffle ------------------------------------------------------------------------------- */

void trc__shuffle(uint8_t *restrict dst, const uint8_t *restrict src, size_t n, size_t w)
{
    if (w == 2) {
        for (size_t i = 0; i < n; i++) {
            dst[i] = src[2 * i];
            dst[n + i] = src[2 * i + 1];
        }
        return;
    }
    if (w == 4) {
        for (size_t i = 0; i < n; i++) {
            dst[i] = src[4 * i];
            dst[n + i] = src[4 * i + 1];
            dst[2 * n + i] = src[4 * i + 2];
            dst[3 * n + i] = src[4 * i + 3];
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t b = 0; b < w; b++) {
            dst[b * n + i] = src[i * w + b];
        }
    }
}

void trc__unshuffle(uint8_t *restrict dst, const uint8_t *restrict src, size_t n, size_t w)
{
    if (w == 2) {
        for (size_t i = 0; i < n; i++) {
            dst[2 * i] = src[i];
            dst[2 * i + 1] = src[n + i];
        }
        return;
    }
    if (w == 4) {
        for (size_t i = 0; i < n; i++) {
            dst[4 * i] = src[i];
            dst[4 * i + 1] = src[n + i];
            dst[4 * i + 2] = src[2 * n + i];
            dst[4 * i + 3] = src[3 * n + i];
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t b = 0; b < w; b++) {
            dst[i * w + b] = src[b * n + i];
        }
    }
}

/* ---- conversion and stats ------------------------------------------------------------------ */

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float trc__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) { /* Inf or NaN: keep the payload */
        return f32_from_bits(sign | 0x7f800000u | (man << 13));
    }
    if (exp != 0) { /* normal */
        return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
    }
    /* zero or subnormal: man * 2^-24, exact in f32 */
    float v = (float)man * 5.9604644775390625e-08f;
    return sign ? -v : v;
}

float trc__bf16_to_f32(uint16_t h)
{
    return f32_from_bits((uint32_t)h << 16);
}

void trc__to_f32(float *dst, const void *src, enum trc_dtype dt, size_t n)
{
    const uint8_t *p = src;
    for (size_t i = 0; i < n; i++) {
        if (dt == TRC_DTYPE_F32) {
            memcpy(&dst[i], p + 4 * i, 4);
        } else if (dt == TRC_DTYPE_I32) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            dst[i] = (float)v;
        } else {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = dt == TRC_DTYPE_F16 ? trc__f16_to_f32(h) : trc__bf16_to_f32(h);
        }
    }
}

/* The f32 loop is the hot one (activations, on the engine's thread at level stats). Element i
 * goes to lane i % 8 of the main loop (the tail to lane 0), a non-finite element adds 0 to the
 * sums, leaves min/max alone and is counted; the lanes are added in order 0..7 at the end. The
 * SSE2 path (every x86-64), the portable one and the fused loops of trc_scan*.c compute
 * exactly the same thing. */
enum { LANES = TRC__LANES };

#if defined(__SSE2__)
#include <emmintrin.h>

static size_t lanes_main(struct trc__lanes *l, const float *x, size_t n)
{
    const __m128i expo = _mm_set1_epi32(0x7f800000);
    const __m128 pinf = _mm_set1_ps(INFINITY);
    const __m128 ninf = _mm_set1_ps(-INFINITY);
    __m128d s[4] = {_mm_setzero_pd(), _mm_setzero_pd(), _mm_setzero_pd(), _mm_setzero_pd()};
    __m128d q[4] = {s[0], s[0], s[0], s[0]};
    __m128 lo[2] = {pinf, pinf};
    __m128 hi[2] = {ninf, ninf};
    __m128i bad = _mm_setzero_si128();
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        for (int h = 0; h < 2; h++) {
            __m128 v = _mm_loadu_ps(x + i + 4 * h);
            __m128 m = _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_and_si128(_mm_castps_si128(v), expo),
                                                        expo)); /* all ones: Inf or NaN */
            __m128 f = _mm_andnot_ps(m, v);
            __m128d a = _mm_cvtps_pd(f);
            __m128d b = _mm_cvtps_pd(_mm_movehl_ps(f, f));
            s[2 * h] = _mm_add_pd(s[2 * h], a);
            s[2 * h + 1] = _mm_add_pd(s[2 * h + 1], b);
            q[2 * h] = _mm_add_pd(q[2 * h], _mm_mul_pd(a, a));
            q[2 * h + 1] = _mm_add_pd(q[2 * h + 1], _mm_mul_pd(b, b));
            lo[h] = _mm_min_ps(lo[h], _mm_or_ps(_mm_and_ps(m, pinf), f));
            hi[h] = _mm_max_ps(hi[h], _mm_or_ps(_mm_and_ps(m, ninf), f));
            bad = _mm_sub_epi32(bad, _mm_castps_si128(m));
        }
    }
    for (int k = 0; k < 4; k++) {
        _mm_storeu_pd(l->s + 2 * k, s[k]);
        _mm_storeu_pd(l->q + 2 * k, q[k]);
    }
    _mm_storeu_ps(l->lo, lo[0]);
    _mm_storeu_ps(l->lo + 4, lo[1]);
    _mm_storeu_ps(l->hi, hi[0]);
    _mm_storeu_ps(l->hi + 4, hi[1]);
    int32_t b4[4];
    _mm_storeu_si128((__m128i *)b4, bad);
    l->bad = (int64_t)b4[0] + b4[1] + b4[2] + b4[3];
    return i;
}
#else
static size_t lanes_main(struct trc__lanes *l, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        for (int j = 0; j < LANES; j++) {
            float v = x[i + j];
            uint32_t u;
            memcpy(&u, &v, 4);
            if ((u & 0x7f800000u) == 0x7f800000u) {
                l->bad++;
                continue;
            }
            l->s[j] += (double)v;
            l->q[j] += (double)v * (double)v;
            l->lo[j] = l->lo[j] < v ? l->lo[j] : v; /* as minps/maxps */
            l->hi[j] = l->hi[j] > v ? l->hi[j] : v;
        }
    }
    return i;
}
#endif

void trc__lanes_init(struct trc__lanes *l)
{
    *l = (struct trc__lanes){.bad = 0};
    for (int j = 0; j < LANES; j++) {
        l->lo[j] = INFINITY;
        l->hi[j] = -INFINITY;
    }
}

/* The raw stats of a run of elements, before the division by the finite count. */
struct acc {
    double sum, sq;
    float lo, hi;
    int64_t n_nan, n_inf;
};

/* Lanes holding x[0..i): adds x[i..n) to lane 0, tells NaN from Inf, adds the lanes up. */
static void lanes_end(struct trc__lanes *l, const float *x, size_t n, size_t i, struct acc *a)
{
    for (; i < n; i++) {
        float v = x[i];
        if (!isfinite(v)) {
            l->bad++;
            continue;
        }
        l->s[0] += (double)v;
        l->q[0] += (double)v * (double)v;
        l->lo[0] = l->lo[0] < v ? l->lo[0] : v;
        l->hi[0] = l->hi[0] > v ? l->hi[0] : v;
    }
    int64_t n_nan = 0;
    for (size_t k = 0; l->bad > 0 && k < n; k++) { /* rare: tell NaN from Inf */
        n_nan += isnan(x[k]) ? 1 : 0;
    }
    *a = (struct acc){.lo = INFINITY, .hi = -INFINITY, .n_nan = n_nan, .n_inf = l->bad - n_nan};
    for (int j = 0; j < LANES; j++) {
        a->sum += l->s[j];
        a->sq += l->q[j];
        a->lo = l->lo[j] < a->lo ? l->lo[j] : a->lo;
        a->hi = l->hi[j] > a->hi ? l->hi[j] : a->hi;
    }
}

static void stats_f32(const float *x, size_t n, struct acc *a)
{
    struct trc__lanes l;
    trc__lanes_init(&l);
    lanes_end(&l, x, n, lanes_main(&l, x, n), a);
}

static void stats_put(const struct acc *a, size_t n, struct trc__stats *out)
{
    int64_t n_fin = (int64_t)n - a->n_nan - a->n_inf;
    double nan = (double)NAN;
    out->n_nan = a->n_nan;
    out->n_inf = a->n_inf;
    out->min = n_fin > 0 ? (double)a->lo : nan;
    out->max = n_fin > 0 ? (double)a->hi : nan;
    out->mean = n_fin > 0 ? a->sum / (double)n_fin : nan;
    out->rms = n_fin > 0 ? sqrt(a->sq / (double)n_fin) : nan;
}

void trc__stats_lanes(struct trc__lanes *l, const float *x, size_t n, size_t i,
                      struct trc__stats *out)
{
    struct acc a;
    lanes_end(l, x, n, i, &a);
    stats_put(&a, n, out);
}

void trc__stats(const void *src, enum trc_dtype dt, size_t n, struct trc__stats *out)
{
    struct acc a = {.lo = INFINITY, .hi = -INFINITY};
    if (dt == TRC_DTYPE_F32) {
        stats_f32(src, n, &a);
    } else {
        float buf[1024];
        for (size_t i = 0; i < n; i += 1024) {
            size_t k = n - i < 1024 ? n - i : 1024;
            trc__to_f32(buf, (const uint8_t *)src + i * trc__dtype_size(dt), dt, k);
            struct acc c;
            stats_f32(buf, k, &c);
            a.sum += c.sum;
            a.sq += c.sq;
            a.lo = c.lo < a.lo ? c.lo : a.lo;
            a.hi = c.hi > a.hi ? c.hi : a.hi;
            a.n_nan += c.n_nan;
            a.n_inf += c.n_inf;
        }
    }
    stats_put(&a, n, out);
}

/* ---- shapes -------------------------------------------------------------------------------- */

int trc__shape_parse(const char *json, int *n_dims, int64_t shape[4])
{
    const char *p = json;
    int nd = 0;
    if (!p || *p++ != '[') {
        return -1;
    }
    while (*p != ']') {
        char *end;
        if (nd == 4 || *p < '0' || *p > '9') {
            return -1;
        }
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || v > ((long long)1 << 40)) {
            return -1;
        }
        shape[nd++] = v;
        p = end;
        if (*p == ',') {
            p++;
        } else if (*p != ']') {
            return -1;
        }
    }
    if (nd == 0 || p[1] != '\0') {
        return -1;
    }
    *n_dims = nd;
    return 0;
}

/* Appends the decimal form of v (>= 0) at buf + k when it fits below cap; returns the new k. */
static size_t put_dec(char *buf, size_t cap, size_t k, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? 0 : (uint64_t)v; /* shapes are checked non-negative */
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n > 0 && k + 1 < cap) {
        buf[k++] = tmp[--n];
    }
    return k;
}

size_t trc__json_str(char *dst, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
#define PUT(c) (dst ? (void)(dst[n] = (char)(c)) : (void)0, n++)
    PUT('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const unsigned char *q = p; /* a run that needs no escape, copied at once */
        while (*q >= 0x20 && *q != '"' && *q != '\\') {
            q++;
        }
        if (dst) {
            memcpy(dst + n, p, (size_t)(q - p));
        }
        n += (size_t)(q - p);
        p = q;
        if (*p == '\0') {
            break;
        }
        if (*p == '"' || *p == '\\') {
            PUT('\\');
            PUT(*p);
        } else {
            PUT('\\');
            PUT('u');
            PUT('0');
            PUT('0');
            PUT(hex[*p >> 4]);
            PUT(hex[*p & 15]);
        }
    }
    PUT('"');
#undef PUT
    return n;
}

size_t trc__json_key(char *dst, bool first, const char *key)
{
    size_t n = 1;
    if (dst) {
        dst[0] = first ? '{' : ',';
    }
    n += trc__json_str(dst ? dst + n : NULL, key);
    if (dst) {
        dst[n] = ':';
    }
    return n + 1;
}

size_t trc__json_dec(char *dst, int64_t v)
{
    char tmp[24];
    size_t k = put_dec(tmp, sizeof tmp, 0, v);
    if (dst) {
        memcpy(dst, tmp, k);
    }
    return k;
}

/* On the writer's path for every tensor row: no printf. Truncated (still terminated) when
 * cap is too small, which 96 bytes never is for 4 dims. */
char *trc__shape_json(char *buf, size_t cap, int n_dims, const int64_t *shape)
{
    size_t k = 0;
    if (cap == 0) {
        return buf;
    }
    if (k + 1 < cap) {
        buf[k++] = '[';
    }
    for (int i = 0; i < n_dims; i++) {
        if (i && k + 1 < cap) {
            buf[k++] = ',';
        }
        k = put_dec(buf, cap, k, shape[i]);
    }
    if (k + 1 < cap) {
        buf[k++] = ']';
    }
    buf[k] = '\0';
    return buf;
}

/* ---- zstd ---------------------------------------------------------------------------------- */

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (*cap >= need) {
        return 0;
    }
    uint8_t *p = realloc(*buf, need);
    if (!p) {
        return TRC_ENOMEM;
    }
    *buf = p;
    *cap = need;
    return 0;
}

/* The writer's default (zstd_level 0): zstd level TRC__ZSTD_FAST (fast matching) with a hash
 * table of 2^TRC__ZSTD_HASHLOG entries, which the match finder clears for every frame. On the
 * exponent planes of a tinyllama trace (4039 planes of 5.2 KB on average, one core): the
 * default table 13.5 us per plane, compressed/raw 0.365; 2^7 entries 12.2 us, 0.357. Smaller
 * tables or faster levels (9.7 us at the minimum level) lose the repeats of smooth signals
 * (test_trace_codec_compresses_floats: 0.67 of raw here, 0.82 at the minimum level). */
#define TRC__ZSTD_FAST    (-30)
#define TRC__ZSTD_HASHLOG 7
/* Largest Raw block, and the window our Raw frames declare (RFC 8878: Block_Maximum_Size is
 * min(128 KiB, Window_Size)). */
#define RAW_BLOCK (128 * 1024)
/* A plane looks random when RAND_SAMPLE of its bytes (4 evenly spaced runs) hold at least
 * RAND_DISTINCT distinct values: uniform bytes give 101 on average (sd 3.3); 7.4 bits per byte
 * of entropy about 90. Measured on tinyllama activations: the low three planes of f32 look
 * random and compress by 0-2% with Huffman; the exponent plane holds a few dozen values and
 * compresses to ~0.37. The test costs ~100 ns, a small part of copying the plane. */
#define RAND_SAMPLE   128
#define RAND_DISTINCT 92

/* Sets up cctx for the frames of one blob. Level 0 is the default: zstd's fast matching
 * (TRC__ZSTD_FAST, TRC__ZSTD_HASHLOG) with literals always Huffman-coded, which negative levels
 * otherwise skip: shuffled floats compress through their exponent bytes (entropy coding),
 * hardly through repeats. The literal mode is an experimental zstd parameter: if a libzstd
 * refuses it, frames are only larger, never invalid. */
static void codec_params(struct trc__codec_scratch *s, int level)
{
    ZSTD_CCtx *c = s->cctx;
    if (s->cctx_level == level + 1) { /* same parameters: keep them */
        ZSTD_CCtx_reset(c, ZSTD_reset_session_only);
        return;
    }
    s->cctx_level = level + 1;
    ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level ? level : TRC__ZSTD_FAST);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1);
    if (level == 0) {
        ZSTD_CCtx_setParameter(c, ZSTD_c_hashLog, TRC__ZSTD_HASHLOG);
        ZSTD_CCtx_setParameter(c, ZSTD_c_literalCompressionMode, ZSTD_ps_enable);
    }
}

/* 1 when the n bytes at p look incompressible (see RAND_SAMPLE). Byte statistics only: a
 * plane of random bytes that repeats long runs is stored raw too. */
static int plane_random(const uint8_t *p, size_t n)
{
    enum { RUNS = 4, RUN = RAND_SAMPLE / RUNS };
    if (n < 256) {
        return 0; /* too few to tell; tiny frames cost little either way */
    }
    uint64_t seen[4] = {0, 0, 0, 0};
    for (size_t k = 0; k < RUNS; k++) {
        const uint8_t *q = p + (n - RUN) * k / (RUNS - 1);
        for (size_t i = 0; i < RUN; i++) {
            seen[q[i] >> 6] |= (uint64_t)1 << (q[i] & 63);
        }
    }
    int distinct = __builtin_popcountll(seen[0]) + __builtin_popcountll(seen[1]) +
                   __builtin_popcountll(seen[2]) + __builtin_popcountll(seen[3]);
    return distinct >= RAND_DISTINCT;
}

static void put_le(uint8_t *d, uint64_t v, int nb)
{
    for (int i = 0; i < nb; i++) {
        d[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Output bound of one frame of n bytes, Raw or compressed. */
static size_t frame_bound(size_t n)
{
    size_t raw = 18 + 3 * (n / RAW_BLOCK + 1) + n;
    size_t z = ZSTD_compressBound(n);
    return raw > z ? raw : z;
}

/* Writes the n bytes at src as one zstd frame of Raw blocks at dst (frame_bound(n) bytes) and
 * returns its size. RFC 8878: magic; descriptor with Single_Segment 0, Content_Checksum 1 and a
 * 4- or 8-byte Frame_Content_Size; Window_Descriptor 128 KiB; blocks of at most 128 KiB
 * (3-byte headers: Last_Block, Block_Type 0 = Raw, Block_Size); the low 32 bits of XXH64. */
static size_t raw_frame(uint8_t *dst, const uint8_t *src, size_t n)
{
    int fcs = (uint64_t)n >> 32 ? 8 : 4;
    put_le(dst, 0xFD2FB528u, 4);
    dst[4] = (uint8_t)((fcs == 8 ? 3u : 2u) << 6 | 1u << 2);
    dst[5] = (uint8_t)((17 - 10) << 3);
    put_le(dst + 6, n, fcs);
    size_t k = 6 + (size_t)fcs;
    size_t off = 0;
    do {
        size_t bs = n - off < RAW_BLOCK ? n - off : RAW_BLOCK;
        put_le(dst + k, (uint64_t)bs << 3 | (off + bs == n ? 1u : 0u), 3);
        memcpy(dst + k + 3, src + off, bs);
        k += 3 + bs;
        off += bs;
    } while (off < n);
    put_le(dst + k, trc__xxh64(src, n, 0) & 0xFFFFFFFFu, 4);
    return k + 4;
}

/* Appends the frame of one plane (n bytes at src) to s->out at *pos: Raw when the level is
 * the default and the plane looks random, else compressed by zstd. */
static int codec_frame(struct trc__codec_scratch *s, int level, const uint8_t *src, size_t n,
                       size_t *pos, char *msg, size_t msglen)
{
    if (level == 0 && plane_random(src, n)) {
        *pos += raw_frame(s->out + *pos, src, n);
        return 0;
    }
    size_t r = ZSTD_compress2(s->cctx, s->out + *pos, s->out_cap - *pos, src, n);
    if (ZSTD_isError(r)) {
        snprintf(msg, msglen, "zstd compression failed: %s", ZSTD_getErrorName(r));
        return TRC_EIO;
    }
    *pos += r;
    return 0;
}

/* Shuffles, then writes one frame per byte plane (tensors of 1024 elements or more), else one
 * frame for all: each plane gets its own literal statistics or no compression at all. */
int trc__codec_encode(struct trc__codec_scratch *s, int level, const void *raw, size_t n,
                      size_t width, const uint8_t **blob, size_t *blob_len, char *msg,
                      size_t msglen)
{
    size_t nbytes = n * width;
    size_t n_planes = width > 1 && n >= 1024 ? width : 1;
    size_t plane = nbytes / n_planes;
    if (!s->cctx) {
        s->cctx = ZSTD_createCCtx();
        s->cctx_level = 0;
        if (!s->cctx) {
            snprintf(msg, msglen, "cannot create a zstd context");
            return TRC_ENOMEM;
        }
    }
    if (grow(&s->shuf, &s->shuf_cap, nbytes ? nbytes : 1) < 0 ||
        grow(&s->out, &s->out_cap, n_planes * frame_bound(plane)) < 0) {
        snprintf(msg, msglen, "out of memory compressing %zu bytes", nbytes);
        return TRC_ENOMEM;
    }
    codec_params(s, level);
    trc__shuffle(s->shuf, raw, n, width);
    size_t pos = 0;
    for (size_t b = 0; b < n_planes; b++) {
        int rc = codec_frame(s, level, s->shuf + b * plane, plane, &pos, msg, msglen);
        if (rc < 0) {
            return rc;
        }
    }
    *blob = s->out;
    *blob_len = pos;
    return 0;
}

void trc__codec_scratch_release(struct trc__codec_scratch *s)
{
    ZSTD_freeCCtx(s->cctx);
    free(s->shuf);
    free(s->out);
    memset(s, 0, sizeof *s);
}

/* Walks the frames of a blob: each must be a zstd frame (not skippable) with a content size and
 * a checksum; returns the sum of their content sizes in *total, or TRC_ECORRUPT. */
static int codec_frames(const uint8_t *p, size_t len, unsigned long long *total, char *msg,
                        size_t msglen)
{
    *total = 0;
    if (len == 0) {
        snprintf(msg, msglen, "bad zstd frame: empty blob");
        return TRC_ECORRUPT;
    }
    for (int k = 0; len > 0; k++) {
        ZSTD_frameHeader fh;
        size_t hr = ZSTD_getFrameHeader(&fh, p, len);
        size_t fsz = hr == 0 ? ZSTD_findFrameCompressedSize(p, len) : 0;
        if (hr != 0 || ZSTD_isError(fsz) || fh.frameType != ZSTD_frame) {
            snprintf(msg, msglen, "bad zstd frame %d: %s", k,
                     ZSTD_isError(hr)    ? "not a zstd frame header"
                     : hr != 0           ? "truncated frame header"
                     : ZSTD_isError(fsz) ? ZSTD_getErrorName(fsz)
                                         : "skippable frame");
            return TRC_ECORRUPT;
        }
        if (fh.frameContentSize == ZSTD_CONTENTSIZE_UNKNOWN || !fh.checksumFlag ||
            fh.frameContentSize > ULLONG_MAX - *total) {
            snprintf(msg, msglen, "bad zstd frame %d: no %s", k,
                     fh.checksumFlag ? "usable content size" : "checksum");
            return TRC_ECORRUPT;
        }
        *total += fh.frameContentSize;
        p += fsz;
        len -= fsz;
    }
    return 0;
}

/* One or more frames (one per byte plane, or one: all version 1 blobs), concatenated. */
int trc__codec_decode(const void *blob, size_t blob_len, void *dst, size_t nbytes, size_t width,
                      char *msg, size_t msglen)
{
    unsigned long long declared;
    int rc = codec_frames(blob, blob_len, &declared, msg, msglen);
    if (rc < 0) {
        return rc;
    }
    if (declared != (unsigned long long)nbytes) {
        snprintf(msg, msglen, "declared size %llu bytes does not fit the shape (%zu bytes)",
                 declared, nbytes);
        return TRC_ECORRUPT;
    }
    uint8_t *tmp = malloc(nbytes ? nbytes : 1);
    if (!tmp) {
        snprintf(msg, msglen, "out of memory decoding %zu bytes", nbytes);
        return TRC_ENOMEM;
    }
    size_t r = ZSTD_decompress(tmp, nbytes, blob, blob_len);
    if (ZSTD_isError(r) || r != nbytes) {
        snprintf(msg, msglen, "bad zstd frame: %s",
                 ZSTD_isError(r) ? ZSTD_getErrorName(r) : "decoded size differs from declared");
        free(tmp);
        return TRC_ECORRUPT;
    }
    trc__unshuffle(dst, tmp, nbytes / width, width);
    free(tmp);
    return 0;
}

void trc__now_iso(char buf[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, 32 - k, ".%03ldZ", ts.tv_nsec / 1000000);
}
