/*
 * trc_int.h - internals shared by the tracer's files: the embedded schema, the tensor codec
 * (byte shuffle + zstd), the lt64 content hash, element conversion and stats, and the verified
 * tensor loader used by both the reader API and the SQL functions. Not installed; tests may
 * include it. Depends on libc, sqlite3 and zstd only.
 */
#ifndef TRC_INT_H
#define TRC_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "trc.h"

/* The DDL of schema/trace.sql as one NUL-terminated string (gen/schema_sql.c). */
extern const char trc__schema_sql[];

/* Largest raw tensor the writer stores and the reader decodes: untrusted traces cannot make us
 * allocate more than this for one tensor. */
#define TRC__MAX_TENSOR_BYTES ((int64_t)1 << 30)
#define TRC__CODEC            "shuffle-zstd"
#define TRC__MSG_SIZE         512

/* Element width in bytes of a dtype (0 for an invalid one), its name ("f32") and the reverse. */
size_t trc__dtype_size(enum trc_dtype dt);
const char *trc__dtype_name(enum trc_dtype dt);
/* strerror(e) as messages write it, lower-case ("no such file or directory"), into buf. */
const char *trc__os_error(int e, char *buf, size_t cap);
int trc__dtype_parse(const char *name, enum trc_dtype *out);

/* 64-bit rotate left (0 < r < 64), and the little-endian 64-bit word at p (any alignment):
 * the building blocks of lt64 (trc_codec.c, trc_scan.c) and XXH64 (trc_xxh64.c). */
static inline uint64_t trc__rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t trc__load_le64(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, 8); /* one load, also without optimization */
    return v;
#else
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
#endif
}

/* lt64 content hash of n bytes (schema/trace.sql documents it byte by byte), and its text form:
 * 16 lower-case hex digits + NUL into hex[17]. */
uint64_t trc__hash(const void *data, size_t n);
void trc__hash_hex(uint64_t h, char hex[17]);

/* lt64 in pieces, for loops that hash while they do something else (trc_scan.c): the four
 * lanes start as trc__hash_init sets them, each full 32-byte block updates lane j with its
 * little-endian word j through trc__lt64_round, and trc__hash_end hashes the rest of the n
 * bytes from offset done (a multiple of 32) and returns the hash. */
#define TRC__LT64_P1 0x9E3779B185EBCA87ULL
#define TRC__LT64_P2 0xC2B2AE3D27D4EB4FULL
#define TRC__LT64_P3 0x165667B19E3779F9ULL
static inline uint64_t trc__lt64_round(uint64_t v, uint64_t w)
{
    return trc__rotl64(v + w * TRC__LT64_P2, 31) * TRC__LT64_P1;
}
void trc__hash_init(uint64_t v[4]);
uint64_t trc__hash_end(const uint64_t v[4], const void *data, size_t n, size_t done);

/* Byte shuffle of n elements of width w: dst[b*n + i] = src[i*w + b]; and its inverse. */
void trc__shuffle(uint8_t *restrict dst, const uint8_t *restrict src, size_t n, size_t w);
void trc__unshuffle(uint8_t *restrict dst, const uint8_t *restrict src, size_t n, size_t w);

/* Converts n elements of dtype dt to f32 (i32 rounds to the nearest float). */
void trc__to_f32(float *dst, const void *src, enum trc_dtype dt, size_t n);
float trc__f16_to_f32(uint16_t h);
float trc__bf16_to_f32(uint16_t h);

struct trc__stats {
    double min, max, mean, rms; /* over finite elements; NaN when there is none */
    int64_t n_nan, n_inf;
};
/* Stats of n elements of dtype dt (schema/trace.sql: finite elements only, NaN/Inf counted). */
void trc__stats(const void *src, enum trc_dtype dt, size_t n, struct trc__stats *out);

/* The f32 stats in pieces: element i of a main loop goes to lane i % TRC__LANES (sums in
 * double, a non-finite element adds 0, leaves lo/hi alone and is counted in bad);
 * trc__stats_lanes takes lanes that hold x[0..i) (i a multiple of TRC__LANES, lanes started by
 * trc__lanes_init), adds the rest of the n elements and writes the stats, exactly as
 * trc__stats(x, TRC_DTYPE_F32, n, out) would. */
enum { TRC__LANES = 8 };
struct trc__lanes {
    double s[TRC__LANES], q[TRC__LANES]; /* sums of x and of x*x (mul then add, no FMA) */
    float lo[TRC__LANES], hi[TRC__LANES];
    int64_t bad; /* non-finite elements */
};
void trc__lanes_init(struct trc__lanes *l);
void trc__stats_lanes(struct trc__lanes *l, const float *x, size_t n, size_t i,
                      struct trc__stats *out);

/* The SIMD paths of the hash and of the fused loop below: trc__simd_best() is what the CPU can
 * run (AVX-512 means F, VL and DQ, with AVX2), trc__simd_level() that level capped by
 * LLTRACE_SIMD=scalar|avx2 (the environment is read once). */
enum trc__simd { TRC__SIMD_SCALAR, TRC__SIMD_AVX2, TRC__SIMD_AVX512 };
int trc__simd_best(void);
int trc__simd_level(void);

/* n_blocks 32-byte blocks through the four 64-bit lanes v: lane j takes the little-endian word j
 * of each block through trc__lt64_round. lt64's main loop and XXH64's stripes both are this.
 * trc__lanes picks a version by trc__simd_level(); trc__lanes_avx512 needs TRC__SIMD_AVX512
 * (trc_scan_avx512.c). */
void trc__lanes(uint64_t v[4], const void *data, size_t n_blocks);
void trc__lanes_c(uint64_t v[4], const void *data, size_t n_blocks);
void trc__lanes_avx512(uint64_t v[4], const void *data, size_t n_blocks);

/* One pass over n_elems elements of dtype dt: *hash = trc__hash(data, n_elems * width) and
 * *st = trc__stats(data, dt, n_elems), bit for bit, for less than the two cost (trc_scan.c).
 * f32 runs a fused loop at trc__simd_level(); other dtypes call the two functions.
 * trc__hash_stats_simd forces the loop's level (enum trc__simd, at most trc__simd_best()). */
void trc__hash_stats(const void *data, enum trc_dtype dt, size_t n_elems, uint64_t *hash,
                     struct trc__stats *st);
void trc__hash_stats_simd(const void *data, enum trc_dtype dt, size_t n_elems, uint64_t *hash,
                          struct trc__stats *st, int simd);
/* The fused loop's versions: fold the full blocks of 8 elements x[0..i) into the lt64 lanes v
 * (one block = one 32-byte hash block) and the stats lanes l; return i. */
size_t trc__scan_f32_c(const float *x, size_t n, uint64_t v[4], struct trc__lanes *l);
size_t trc__scan_f32_avx2(const float *x, size_t n, uint64_t v[4], struct trc__lanes *l);
size_t trc__scan_f32_avx512(const float *x, size_t n, uint64_t v[4], struct trc__lanes *l);

/* Parses a JSON shape "[2,3]" into 1..4 non-negative dims; returns 0 or -1. Writes the
 * canonical form of a shape into buf (returns buf). */
int trc__shape_parse(const char *json, int *n_dims, int64_t shape[4]);
char *trc__shape_json(char *buf, size_t cap, int n_dims, const int64_t *shape);
/* Write at dst, unterminated, s as a JSON string (quoted, escaped; UTF-8 kept), the member
 * opening `{"key":` (first) or `,"key":`, or the non-negative v in decimal; dst NULL only
 * measures. Return the length. A JSON object is its members, then '}'. */
size_t trc__json_str(char *dst, const char *s);
size_t trc__json_key(char *dst, bool first, const char *key);
size_t trc__json_dec(char *dst, int64_t v);

/* A tensor read back from a trace: header columns always; raw (unshuffled, verified) data and
 * known indices only when loaded with data. */
struct trc__tensor {
    int64_t id;
    enum trc_dtype dtype;
    int n_dims;
    int64_t shape[4];
    int64_t n_elems;      /* product of shape */
    int64_t n_stored;     /* elements held: n_elems, or n_known for a partial tensor */
    int64_t nbytes;       /* n_stored * width */
    int64_t stored_bytes; /* size of the compressed blob, 0 when none */
    int64_t data_of;      /* the row holding the data (tensors.data_of), 0 when none */
    char hash[17];
    int has_data;
    int partial;
    struct trc__stats st;
    void *raw;      /* nbytes bytes, malloc'd (loaded with data and has_data), else NULL */
    int64_t *known; /* n_stored indices, malloc'd (partial only), else NULL */
};

/* Loads tensor `id` of schema `schema` ("main" or an attached name; NULL = main) from db. With
 * want_data, decompresses and verifies the data (schema/trace.sql lists the checks). Returns 0,
 * TRC_ENOTFOUND, TRC_ECORRUPT, TRC_ENOMEM or TRC_ESQL with a message in msg ("tensor 12: ...").
 * Release with trc__tensor_release (also after a failure). With cache, the statement is kept in
 * *cache for the next call with the same db and schema (the caller finalizes it). */
int trc__tensor_load(sqlite3 *db, const char *schema, int64_t id, int want_data,
                     struct trc__tensor *t, sqlite3_stmt **cache, char *msg, size_t msglen);
void trc__tensor_release(struct trc__tensor *t);

/* Compresses n_stored elements (raw bytes) into a blob held by the scratch (valid until its next
 * use): shuffle, then one zstd frame per byte plane (n >= 1024 and width > 1) or one frame, each
 * with content size and checksum; at level 0 a plane whose bytes look random is a frame of Raw
 * blocks. Scratch buffers are the caller's to reuse (grown with realloc). Returns 0 or a code. */
struct trc__codec_scratch {
    void *cctx;     /* ZSTD_CCtx */
    int cctx_level; /* 1 + the level its parameters are set for (codec_params); 0: none */
    uint8_t *shuf;
    size_t shuf_cap;
    uint8_t *out;
    size_t out_cap;
};
int trc__codec_encode(struct trc__codec_scratch *s, int level, const void *raw, size_t n,
                      size_t width, const uint8_t **blob, size_t *blob_len, char *msg,
                      size_t msglen);
void trc__codec_scratch_release(struct trc__codec_scratch *s);

/* XXH64 of len bytes with seed (the xxHash specification; zstd's Content_Checksum is the low
 * 32 bits of XXH64(content, 0)). trc_xxh64.c. */
uint64_t trc__xxh64(const void *data, size_t len, uint64_t seed);

/* Decodes a blob of the codec (one or more frames: version 1 and 2 blobs) into dst (exactly
 * nbytes). Verifies that every frame has content size and checksum, that the sizes add up to
 * nbytes, and the checksums; TRC_ECORRUPT with a message otherwise. */
int trc__codec_decode(const void *blob, size_t blob_len, void *dst, size_t nbytes, size_t width,
                      char *msg, size_t msglen);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf[32]. */
void trc__now_iso(char buf[32]);

/* Opens path read-only and defensively and checks it is a trace of a supported version; used
 * by the reader and by trc_reader_attach. */
int trc__check_trace(sqlite3 *db, const char *schema, const char *path, char *msg, size_t msglen);

#endif
