/*
 * Tests of the GGUF reader and writer (src/gguf*.c). Every malformed file is a fixture built
 * byte by byte here, written to a scratch directory and opened both through mmap and from
 * memory; each test checks the return code and the exact message ("<path>: <reason>").
 * Writer -> reader round trips cover every value type, string arrays and nested arrays, and a
 * GGUF v1 file written by hand must load.
 */
#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lm.h"
#include "testutil.h"

/* ---- a byte builder for fixtures --------------------------------------------------------------
 */

struct bb {
    uint8_t *p;
    size_t n, cap;
    bool v1; /* 32-bit lengths and counts */
};

static void b_raw(struct bb *b, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void b_uint(struct bb *b, uint64_t v, int nbytes)
{
    uint8_t x[8];
    for (int i = 0; i < nbytes; i++) {
        x[i] = (uint8_t)(v >> (8 * i));
    }
    b_raw(b, x, (size_t)nbytes);
}

static void b_u32(struct bb *b, uint32_t v)
{
    b_uint(b, v, 4);
}

static void b_u64(struct bb *b, uint64_t v)
{
    b_uint(b, v, 8);
}

static void b_len(struct bb *b, uint64_t v)
{
    b_uint(b, v, b->v1 ? 4 : 8);
}

static void b_str(struct bb *b, const char *s)
{
    b_len(b, strlen(s));
    b_raw(b, s, strlen(s));
}

static void b_hdr(struct bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    b_raw(b, "GGUF", 4);
    b_u32(b, version);
    b_len(b, n_tensors);
    b_len(b, n_kv);
}

static void b_kv_u32(struct bb *b, const char *key, uint32_t v)
{
    b_str(b, key);
    b_u32(b, LM_GGUF_U32);
    b_u32(b, v);
}

static void b_kv_str(struct bb *b, const char *key, const char *v)
{
    b_str(b, key);
    b_u32(b, LM_GGUF_STRING);
    b_str(b, v);
}

/* Key, ARRAY, element type, count: the caller appends the elements. */
static void b_kv_arr(struct bb *b, const char *key, uint32_t et, uint64_t n)
{
    b_str(b, key);
    b_u32(b, LM_GGUF_ARRAY);
    b_u32(b, et);
    b_len(b, n);
}

static void b_tinfo(struct bb *b, const char *name, uint32_t n_dims, const int64_t *ne,
                    uint32_t type, uint64_t offset)
{
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) {
        b_uint(b, (uint64_t)ne[d], b->v1 ? 4 : 8);
    }
    b_u32(b, type);
    b_u64(b, offset);
}

static void b_pad(struct bb *b, size_t align)
{
    static const uint8_t z[64];
    while (b->n % align) {
        b_raw(b, z, 1);
    }
}

static void b_zeros(struct bb *b, size_t n)
{
    static const uint8_t z[256];
    while (n > 0) {
        size_t k = n > sizeof z ? sizeof z : n;
        b_raw(b, z, k);
        n -= k;
    }
}

/* A valid v3 file: 2 keys, one f32 tensor "a" [8, 2] at offset 0 (64 bytes). */
static void b_valid(struct bb *b)
{
    int64_t ne[2] = {8, 2};
    b_hdr(b, 3, 1, 2);
    b_kv_str(b, "general.architecture", "llama");
    b_kv_u32(b, "general.alignment", 32);
    b_tinfo(b, "a", 2, ne, LM_TYPE_F32, 0);
    b_pad(b, 32);
    b_zeros(b, 64);
}

/* ---- expectations -----------------------------------------------------------------------------
 */

static char tmpdir[512];

static void setup(void)
{
    lt_tmp_dir(tmpdir, sizeof tmpdir, "gguf");
}

/* Opens the bytes as a file and from memory: both must fail with "<name>: <reason>". */
static void expect_reject(struct bb *b, const char *reason)
{
    char path[600], want[1024], err[LM_ERRBUF_SIZE];
    lm_gguf *g = (lm_gguf *)1;
    snprintf(path, sizeof path, "%s/bad.gguf", tmpdir);
    ck_assert_int_eq(lt_write_file(path, b->p, b->n), 0);
    int rc = lm_gguf_open(path, &g, err, sizeof err);
    ck_assert_int_lt(rc, 0);
    ck_assert_ptr_null(g);
    snprintf(want, sizeof want, "%s: %s", path, reason);
    ck_assert_str_eq(err, want);
    g = (lm_gguf *)1;
    rc = lm_gguf_open_mem(b->p, b->n, "mem.gguf", &g, err, sizeof err);
    ck_assert_int_lt(rc, 0);
    ck_assert_ptr_null(g);
    snprintf(want, sizeof want, "mem.gguf: %s", reason);
    ck_assert_str_eq(err, want);
    free(b->p);
}

static lm_gguf *open_ok(const struct bb *b)
{
    char err[LM_ERRBUF_SIZE] = "";
    lm_gguf *g = NULL;
    int rc = lm_gguf_open_mem(b->p, b->n, "ok.gguf", &g, err, sizeof err);
    ck_assert_msg(rc == 0, "open failed: %s", err);
    ck_assert_ptr_nonnull(g);
    return g;
}

/* ---- core -------------------------------------------------------------------------------------
 */

START_TEST(test_gguf_valid_fixture_loads)
{
    struct bb b = {0};
    b_valid(&b);
    lm_gguf *g = open_ok(&b);
    ck_assert_uint_eq(lm_gguf_version(g), 3);
    ck_assert_int_eq(lm_gguf_n_kv(g), 2);
    ck_assert_int_eq(lm_gguf_n_tensors(g), 1);
    ck_assert_uint_eq(lm_gguf_alignment(g), 32);
    ck_assert_uint_eq(lm_gguf_data_offset(g) % 32, 0);
    const struct lm_gguf_tensor *t = lm_gguf_find_tensor(g, "a");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->n_dims, 2);
    ck_assert_int_eq(t->ne[0], 8);
    ck_assert_int_eq(t->ne[1], 2);
    ck_assert_int_eq(t->ne[2], 1);
    ck_assert_uint_eq(t->n_bytes, 64);
    ck_assert_ptr_eq(t->data, (const uint8_t *)b.p + lm_gguf_data_offset(g));
    ck_assert_ptr_null(lm_gguf_find_tensor(g, "b"));
    ck_assert_int_eq(lm_gguf_find_key(g, "general.alignment"), 1);
    ck_assert_int_eq(lm_gguf_find_key(g, "nope"), -1);
    uint32_t u;
    int32_t i;
    ck_assert_int_eq(lm_gguf_get_u32(g, "general.alignment", &u), 0);
    ck_assert_uint_eq(u, 32);
    ck_assert_int_eq(lm_gguf_get_i32(g, "general.alignment", &i), LM_ETYPE);
    ck_assert_int_eq(lm_gguf_get_u32(g, "missing", &u), LM_ENOTFOUND);
    lm_gguf_close(g);
    lm_gguf_close(NULL);
    free(b.p);
}
END_TEST

START_TEST(test_gguf_v1_by_hand_loads)
{
    struct bb b = {.v1 = true};
    int64_t ne[2] = {4, 3};
    float data[12];
    b_hdr(&b, 1, 1, 4);
    b_kv_str(&b, "general.architecture", "llama");
    b_kv_u32(&b, "llama.block_count", 5);
    b_kv_arr(&b, "tokenizer.ggml.tokens", LM_GGUF_STRING, 3);
    b_str(&b, "<unk>");
    b_str(&b, "\xe2\x96\x81the");
    b_str(&b, "");
    b_kv_arr(&b, "tokenizer.ggml.scores", LM_GGUF_F32, 3);
    for (int k = 0; k < 3; k++) {
        float f = -(float)k;
        b_raw(&b, &f, 4);
    }
    b_tinfo(&b, "w", 2, ne, LM_TYPE_F32, 0);
    b_pad(&b, 32);
    for (int k = 0; k < 12; k++) {
        data[k] = (float)k * 0.5f;
    }
    b_raw(&b, data, sizeof data);
    lm_gguf *g = open_ok(&b);
    ck_assert_uint_eq(lm_gguf_version(g), 1);
    const char *s;
    uint64_t len;
    ck_assert_int_eq(lm_gguf_get_str(g, "general.architecture", &s, &len), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(memcmp(s, "llama", 5), 0);
    ck_assert_int_eq(lm_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 1, &s, &len), 0);
    ck_assert_uint_eq(len, 6);
    ck_assert_int_eq(memcmp(s, "\xe2\x96\x81the", 6), 0);
    ck_assert_int_eq(lm_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 2, &s, &len), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(lm_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 3, &s, &len), LM_ERANGE);
    enum lm_gguf_vtype et;
    const void *p;
    ck_assert_int_eq(lm_gguf_get_arr(g, "tokenizer.ggml.scores", &et, &len, &p), 0);
    ck_assert_int_eq(et, LM_GGUF_F32);
    ck_assert_uint_eq(len, 3);
    float f2 = -2.0f;
    ck_assert_int_eq(memcmp((const float *)p + 2, &f2, 4), 0);
    ck_assert_int_eq(lm_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &len, &p), LM_ETYPE);
    const struct lm_gguf_tensor *t = lm_gguf_find_tensor(g, "w");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ne[0], 4);
    ck_assert_int_eq(t->ne[1], 3);
    ck_assert_int_eq(memcmp(t->data, data, sizeof data), 0);
    lm_gguf_close(g);
    free(b.p);
}
END_TEST

START_TEST(test_gguf_nested_arrays_parse)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 2);
    b_kv_arr(&b, "x.nested", LM_GGUF_ARRAY, 2);
    b_u32(&b, LM_GGUF_U16); /* [1, 2] */
    b_u64(&b, 2);
    b_uint(&b, 1, 2);
    b_uint(&b, 2, 2);
    b_u32(&b, LM_GGUF_STRING); /* ["a"] */
    b_u64(&b, 1);
    b_str(&b, "a");
    b_kv_u32(&b, "after", 7);
    lm_gguf *g = open_ok(&b);
    int64_t i = lm_gguf_find_key(g, "x.nested");
    ck_assert_int_eq(lm_gguf_kv_type(g, i), LM_GGUF_ARRAY);
    ck_assert_int_eq(lm_gguf_kv_arr_type(g, i), LM_GGUF_ARRAY);
    ck_assert_uint_eq(lm_gguf_kv_arr_n(g, i), 2);
    char buf[128];
    lm_gguf_kv_format(g, i, buf, sizeof buf);
    ck_assert_str_eq(buf, "[[1, 2], [\"a\"]]");
    uint32_t u;
    ck_assert_int_eq(lm_gguf_get_u32(g, "after", &u), 0);
    ck_assert_uint_eq(u, 7);
    enum lm_gguf_vtype et;
    uint64_t n;
    const void *p;
    ck_assert_int_eq(lm_gguf_get_arr(g, "x.nested", &et, &n, &p), LM_ETYPE);
    lm_gguf_close(g);
    free(b.p);
}
END_TEST

START_TEST(test_gguf_kv_format)
{
    struct bb b = {0};
    float f = 1e-5f;
    b_hdr(&b, 3, 0, 5);
    b_kv_str(&b, "s", "a\nb\"c");
    b_str(&b, "f");
    b_u32(&b, LM_GGUF_F32);
    b_raw(&b, &f, 4);
    b_str(&b, "i8");
    b_u32(&b, LM_GGUF_I8);
    b_uint(&b, 0xff, 1);
    b_kv_arr(&b, "big", LM_GGUF_STRING, 10);
    for (int k = 0; k < 10; k++) {
        b_str(&b, "t");
    }
    b_kv_arr(&b, "small", LM_GGUF_I32, 2);
    b_u32(&b, (uint32_t)-3);
    b_u32(&b, 4);
    lm_gguf *g = open_ok(&b);
    char buf[64];
    lm_gguf_kv_format(g, 0, buf, sizeof buf);
    ck_assert_str_eq(buf, "a\\nb\"c");
    lm_gguf_kv_format(g, 1, buf, sizeof buf);
    ck_assert_str_eq(buf, "1e-05");
    lm_gguf_kv_format(g, 2, buf, sizeof buf);
    ck_assert_str_eq(buf, "-1");
    lm_gguf_kv_format(g, 3, buf, sizeof buf);
    ck_assert_str_eq(buf, "[10 strings]");
    int n = lm_gguf_kv_format(g, 4, buf, sizeof buf);
    ck_assert_str_eq(buf, "[-3, 4]");
    ck_assert_int_eq(n, 7);
    n = lm_gguf_kv_format(g, 4, buf, 6); /* cut: "[-..." would not fit, keep it short */
    ck_assert_int_eq((int)strlen(buf), n);
    ck_assert_int_lt(n, 6);
    lm_gguf_close(g);
    free(b.p);
}
END_TEST

/* Reals print in the shortest form that reads back to the same value. */
START_TEST(test_gguf_kv_format_reals)
{
    struct bb b = {0};
    const float fs[4] = {3.40282347e38f, 1e-5f, 0.1f, NAN};
    const double ds[2] = {0.1, 1e300};
    static const char *const want[6] = {"3.402823466e+38", "1e-05", "0.1", "nan", "0.1", "1e+300"};
    b_hdr(&b, 3, 0, 6);
    for (int k = 0; k < 4; k++) {
        char key[16];
        snprintf(key, sizeof key, "f%d", k);
        b_str(&b, key);
        b_u32(&b, LM_GGUF_F32);
        b_raw(&b, &fs[k], 4);
    }
    for (int k = 0; k < 2; k++) {
        char key[16];
        snprintf(key, sizeof key, "d%d", k);
        b_str(&b, key);
        b_u32(&b, LM_GGUF_F64);
        b_raw(&b, &ds[k], 8);
    }
    lm_gguf *g = open_ok(&b);
    char buf[64];
    for (int k = 0; k < 6; k++) {
        lm_gguf_kv_format(g, k, buf, sizeof buf);
        ck_assert_str_eq(buf, want[k]);
    }
    lm_gguf_close(g);
    free(b.p);
}
END_TEST

START_TEST(test_gguf_strerror)
{
    ck_assert_str_eq(lm_strerror(LM_EFORMAT), "malformed file");
    ck_assert_str_eq(lm_strerror(LM_ERANGE), "out of range");
    ck_assert_str_eq(lm_strerror(0), "success");
    ck_assert_str_eq(lm_strerror(-999), "unknown error");
}
END_TEST

/* ---- errors: the header -----------------------------------------------------------------------
 */

START_TEST(test_gguf_bad_magic)
{
    struct bb b = {0};
    b_raw(&b, "GGML", 4);
    b_zeros(&b, 60);
    expect_reject(&b, "bad magic \"GGML\" (not a GGUF file)");
}
END_TEST

START_TEST(test_gguf_empty_file)
{
    struct bb b = {.p = malloc(1)}; /* zero bytes, but a valid pointer for fwrite */
    expect_reject(&b, "empty file");
}
END_TEST

START_TEST(test_gguf_unknown_version)
{
    struct bb b = {0};
    b_hdr(&b, 4, 0, 0);
    expect_reject(&b, "unsupported GGUF version 4 (1, 2 and 3 are supported)");
}
END_TEST

START_TEST(test_gguf_byteswapped_version)
{
    struct bb b = {0};
    b_hdr(&b, 0x03000000u, 0, 0);
    expect_reject(&b, "version 0x03000000 looks byte-swapped (big-endian files are not supported)");
}
END_TEST

START_TEST(test_gguf_truncated_header_boundaries)
{
    static const struct {
        size_t len;
        const char *reason;
    } cases[] = {
        {2, "bad magic \"GG\" (not a GGUF file)"},
        {4, "truncated in header (version)"},
        {8, "truncated in header (n_tensors)"},
        {16, "truncated in header (n_kv)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct bb b = {0};
        b_valid(&b);
        b.n = cases[k].len;
        expect_reject(&b, cases[k].reason);
    }
}
END_TEST

/* Each boundary inside the key/values and tensor infos of the valid file (layout: kv0 key at 24,
 * its string value at 56; kv1 at 69, its type at 94, value at 98; the tensor info at 102, n_dims
 * at 111, ne at 115 and 123, type at 131, offset at 135; data at 160). The counts are lowered
 * so that the short file passes the count check and the cut itself is what gets reported. */
START_TEST(test_gguf_truncated_field_boundaries)
{
    static const struct {
        size_t len;
        uint8_t n_tensors, n_kv;
        const char *reason;
    } cases[] = {
        {56, 0, 1, "truncated in key/value 0 'general.architecture' (value)"},
        {60, 0, 1, "truncated in key/value 0 'general.architecture' (value)"},
        {66, 0, 1,
         "key/value 0 'general.architecture': string length 5 runs past end of file (2 bytes "
         "left)"},
        {69, 0, 2, "truncated in key/value 1 (key)"},
        {94, 0, 2, "truncated in key/value 1 'general.alignment' (value type)"},
        {98, 0, 2, "truncated in key/value 1 'general.alignment' (value)"},
        {102, 1, 2, "truncated in tensor info 0 (name)"},
        {111, 1, 2, "truncated in tensor info 0 'a' (n_dims)"},
        {115, 1, 2, "truncated in tensor info 0 'a' (ne[0])"},
        {123, 1, 2, "truncated in tensor info 0 'a' (ne[1])"},
        {131, 1, 2, "truncated in tensor info 0 'a' (type)"},
        {135, 1, 2, "truncated in tensor info 0 'a' (offset)"},
        {143, 1, 2,
         "tensor 'a': data (offset 0, 64 bytes) runs past end of file (0 bytes of data after "
         "offset 160)"},
        {200, 1, 2,
         "tensor 'a': data (offset 0, 64 bytes) runs past end of file (40 bytes of data after "
         "offset 160)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct bb b = {0};
        b_valid(&b);
        ck_assert_uint_eq(b.n, 224);
        b.n = cases[k].len;
        b.p[8] = cases[k].n_tensors;
        b.p[16] = cases[k].n_kv;
        expect_reject(&b, cases[k].reason);
    }
}
END_TEST

/* Every prefix of a valid file is rejected with a message naming the file. */
START_TEST(test_gguf_truncated_every_prefix)
{
    struct bb b = {0};
    char err[LM_ERRBUF_SIZE];
    b_valid(&b);
    for (size_t len = 0; len < b.n; len++) {
        lm_gguf *g = NULL;
        int rc = lm_gguf_open_mem(b.p, len, "cut.gguf", &g, err, sizeof err);
        ck_assert_msg(rc < 0, "prefix %zu accepted", len);
        ck_assert_ptr_null(g);
        ck_assert_msg(strncmp(err, "cut.gguf: ", 10) == 0, "prefix %zu: %s", len, err);
        ck_assert_msg(strstr(err, "truncated in") || strstr(err, "past end of file") ||
                          strstr(err, "bad magic") || strstr(err, "empty file") ||
                          strstr(err, "larger than the file can hold"),
                      "prefix %zu: %s", len, err);
    }
    free(b.p);
}
END_TEST

START_TEST(test_gguf_n_tensors_absurd)
{
    struct bb b = {0};
    b_hdr(&b, 3, 1ull << 40, 0);
    b_zeros(&b, 100);
    expect_reject(&b, "n_tensors 1099511627776 is larger than the file can hold (124 bytes)");
}
END_TEST

START_TEST(test_gguf_n_kv_absurd)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, UINT64_MAX);
    b_zeros(&b, 100);
    expect_reject(&b, "n_kv 18446744073709551615 is larger than the file can hold (124 bytes)");
}
END_TEST

/* ---- errors: key/values -----------------------------------------------------------------------
 */

START_TEST(test_gguf_key_length_past_eof)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_u64(&b, 1000000);
    b_zeros(&b, 20);
    expect_reject(&b, "key/value 0: key length 1000000 runs past end of file (20 bytes left)");
}
END_TEST

START_TEST(test_gguf_string_length_past_eof)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "general.name");
    b_u32(&b, LM_GGUF_STRING);
    b_u64(&b, UINT64_MAX);
    b_raw(&b, "abc", 3);
    expect_reject(&b, "key/value 0 'general.name': string length 18446744073709551615 runs past "
                      "end of file (3 bytes left)");
}
END_TEST

START_TEST(test_gguf_array_size_overflow)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_kv_arr(&b, "x", LM_GGUF_U32, (1ull << 62) + 1);
    b_zeros(&b, 16);
    expect_reject(&b, "key/value 0 'x': array count 4611686018427387905 x element size 4 overflows "
                      "64 bits");
}
END_TEST

START_TEST(test_gguf_array_past_eof)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_kv_arr(&b, "x", LM_GGUF_F64, 1000);
    b_zeros(&b, 16);
    expect_reject(&b, "key/value 0 'x': array of 1000 x 8 bytes runs past end of file (16 bytes "
                      "left)");
}
END_TEST

START_TEST(test_gguf_string_array_count_absurd)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_kv_arr(&b, "tokenizer.ggml.tokens", LM_GGUF_STRING, 1ull << 60);
    b_zeros(&b, 16);
    expect_reject(&b, "key/value 0 'tokenizer.ggml.tokens': array of 1152921504606846976 strings "
                      "cannot fit in the 16 bytes left");
}
END_TEST

START_TEST(test_gguf_unknown_value_type)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, 13);
    b_zeros(&b, 16);
    expect_reject(&b, "key/value 0 'k': unknown value type 13");
}
END_TEST

START_TEST(test_gguf_scores_not_f32)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_kv_arr(&b, "tokenizer.ggml.scores", LM_GGUF_I32, 2);
    b_u32(&b, 0);
    b_u32(&b, 1);
    expect_reject(&b, "key 'tokenizer.ggml.scores' must be an array of f32, not an array of i32");
}
END_TEST

START_TEST(test_gguf_token_type_not_i32)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_kv_arr(&b, "tokenizer.ggml.token_type", LM_GGUF_U8, 2);
    b_zeros(&b, 2);
    expect_reject(&b,
                  "key 'tokenizer.ggml.token_type' must be an array of i32, not an array of u8");
}
END_TEST

START_TEST(test_gguf_tokens_not_strings)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_kv_str(&b, "tokenizer.ggml.tokens", "abc");
    expect_reject(&b, "key 'tokenizer.ggml.tokens' must be an array of string, not string");
}
END_TEST

START_TEST(test_gguf_scores_nested)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_kv_arr(&b, "tokenizer.ggml.scores", LM_GGUF_ARRAY, 1);
    b_u32(&b, LM_GGUF_F32);
    b_u64(&b, 1);
    b_zeros(&b, 4);
    expect_reject(&b, "key 'tokenizer.ggml.scores' must be an array of f32, not an array of "
                      "arrays");
}
END_TEST

START_TEST(test_gguf_tokens_nested)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_kv_arr(&b, "tokenizer.ggml.tokens", LM_GGUF_ARRAY, 1);
    b_u32(&b, LM_GGUF_STRING);
    b_u64(&b, 1);
    b_str(&b, "a");
    expect_reject(&b, "key 'tokenizer.ggml.tokens' must be an array of string, not an array of "
                      "arrays");
}
END_TEST

START_TEST(test_gguf_nested_too_deep)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_kv_arr(&b, "deep", LM_GGUF_ARRAY, 1);
    for (int d = 0; d < 10; d++) {
        b_u32(&b, LM_GGUF_ARRAY);
        b_u64(&b, 1);
    }
    b_zeros(&b, 16);
    expect_reject(&b, "key/value 0 'deep': arrays nested deeper than 8 levels");
}
END_TEST

START_TEST(test_gguf_scores_count_mismatch)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 2);
    b_kv_arr(&b, "tokenizer.ggml.tokens", LM_GGUF_STRING, 2);
    b_str(&b, "a");
    b_str(&b, "b");
    b_kv_arr(&b, "tokenizer.ggml.scores", LM_GGUF_F32, 1);
    b_zeros(&b, 4);
    expect_reject(&b, "tokenizer.ggml.scores has 1 entries but tokenizer.ggml.tokens has 2");
}
END_TEST

START_TEST(test_gguf_alignment_not_u32)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "general.alignment");
    b_u32(&b, LM_GGUF_U64);
    b_u64(&b, 32);
    expect_reject(&b, "key 'general.alignment' must be u32, not u64");
}
END_TEST

START_TEST(test_gguf_alignment_zero)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 0);
    expect_reject(&b, "general.alignment 0 is not a power of two");
}
END_TEST

START_TEST(test_gguf_alignment_not_power_of_two)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 48);
    expect_reject(&b, "general.alignment 48 is not a power of two");
}
END_TEST

START_TEST(test_gguf_alignment_huge)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 1u << 31);
    expect_reject(&b, "general.alignment 2147483648 is larger than 1 MiB");
}
END_TEST

START_TEST(test_gguf_duplicate_key)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 3);
    b_kv_u32(&b, "a", 1);
    b_kv_u32(&b, "b", 1);
    b_kv_u32(&b, "a", 2);
    expect_reject(&b, "duplicate key 'a' (key/values 0 and 2)");
}
END_TEST

START_TEST(test_gguf_empty_key)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "", 1);
    expect_reject(&b, "key/value 0: empty key");
}
END_TEST

START_TEST(test_gguf_key_with_nul)
{
    struct bb b = {0};
    b_hdr(&b, 3, 0, 1);
    b_u64(&b, 3);
    b_raw(&b, "a\0b", 3);
    b_u32(&b, LM_GGUF_U8);
    b_zeros(&b, 1);
    expect_reject(&b, "key/value 0: key contains a NUL byte");
}
END_TEST

/* ---- errors: tensor infos ---------------------------------------------------------------------
 */

/* One tensor info, padding, and data_bytes of zeros. */
static void b_one_tensor(struct bb *b, const char *name, uint32_t n_dims, const int64_t *ne,
                         uint32_t type, uint64_t offset, size_t data_bytes)
{
    b_hdr(b, 3, 1, 0);
    b_tinfo(b, name, n_dims, ne, type, offset);
    b_pad(b, 32);
    b_zeros(b, data_bytes);
}

START_TEST(test_gguf_n_dims_too_many)
{
    struct bb b = {0};
    int64_t ne[5] = {1, 1, 1, 1, 1};
    b_one_tensor(&b, "t", 5, ne, LM_TYPE_F32, 0, 64);
    expect_reject(&b, "tensor info 0 't': n_dims 5 is out of range (1..4)");
}
END_TEST

START_TEST(test_gguf_zero_dim)
{
    struct bb b = {0};
    int64_t ne[2] = {8, 0};
    b_one_tensor(&b, "t", 2, ne, LM_TYPE_F32, 0, 64);
    expect_reject(&b, "tensor info 0 't': dimension ne[1] is 0 (must be positive)");
}
END_TEST

START_TEST(test_gguf_negative_dim)
{
    struct bb b = {0};
    int64_t ne[2] = {-8, 1};
    b_one_tensor(&b, "t", 2, ne, LM_TYPE_F32, 0, 64);
    expect_reject(&b, "tensor info 0 't': dimension ne[0] is -8 (must be positive)");
}
END_TEST

START_TEST(test_gguf_size_overflow)
{
    struct bb b = {0};
    int64_t ne[3] = {1ll << 40, 1ll << 20, 1ll << 10};
    b_one_tensor(&b, "t", 3, ne, LM_TYPE_F32, 0, 64);
    expect_reject(&b, "tensor info 0 't': size of [1099511627776, 1048576, 1024] F32 overflows 64 "
                      "bits");
}
END_TEST

START_TEST(test_gguf_data_past_eof)
{
    struct bb b = {0};
    int64_t ne[2] = {8, 4}; /* 128 bytes, 64 present */
    b_one_tensor(&b, "t", 2, ne, LM_TYPE_F32, 0, 64);
    expect_reject(&b, "tensor 't': data (offset 0, 128 bytes) runs past end of file (64 bytes of "
                      "data after offset 96)");
}
END_TEST

START_TEST(test_gguf_offset_past_eof)
{
    struct bb b = {0};
    int64_t ne[1] = {8};
    b_one_tensor(&b, "t", 1, ne, LM_TYPE_F32, 1ull << 63, 64);
    expect_reject(&b, "tensor 't': data (offset 9223372036854775808, 32 bytes) runs past end of "
                      "file (64 bytes of data after offset 64)");
}
END_TEST

START_TEST(test_gguf_misaligned_offset)
{
    struct bb b = {0};
    int64_t ne[1] = {4};
    b_one_tensor(&b, "t", 1, ne, LM_TYPE_F32, 16, 64);
    expect_reject(&b, "tensor 't': offset 16 is not a multiple of the alignment 32");
}
END_TEST

START_TEST(test_gguf_unknown_tensor_type)
{
    struct bb b = {0};
    int64_t ne[1] = {32};
    b_one_tensor(&b, "t", 1, ne, 4 /* the removed Q4_2 */, 0, 64);
    expect_reject(&b, "tensor info 0 't': unknown tensor type 4");
    b = (struct bb){0};
    b_one_tensor(&b, "t", 1, ne, 0x7fffffff, 0, 64);
    expect_reject(&b, "tensor info 0 't': unknown tensor type 2147483647");
}
END_TEST

START_TEST(test_gguf_block_size_mismatch)
{
    struct bb b = {0};
    int64_t ne[2] = {33, 1};
    b_one_tensor(&b, "t", 2, ne, LM_TYPE_Q8_0, 0, 64);
    expect_reject(&b, "tensor info 0 't': ne[0] 33 is not a multiple of the Q8_0 block size 32");
}
END_TEST

START_TEST(test_gguf_duplicate_tensor_name)
{
    struct bb b = {0};
    int64_t ne[1] = {8};
    b_hdr(&b, 3, 2, 0);
    b_tinfo(&b, "t", 1, ne, LM_TYPE_F32, 0);
    b_tinfo(&b, "t", 1, ne, LM_TYPE_F32, 32);
    b_pad(&b, 32);
    b_zeros(&b, 64);
    expect_reject(&b, "duplicate tensor name 't' (tensor infos 0 and 1)");
}
END_TEST

START_TEST(test_gguf_tensor_name_too_long)
{
    struct bb b = {0};
    int64_t ne[1] = {8};
    char name[65];
    memset(name, 'n', 64);
    name[64] = 0;
    b_one_tensor(&b, name, 1, ne, LM_TYPE_F32, 0, 64);
    expect_reject(&b, "tensor info 0: name is 64 bytes long (the limit is 63)");
}
END_TEST

START_TEST(test_gguf_tensor_name_empty)
{
    struct bb b = {0};
    int64_t ne[1] = {8};
    b_one_tensor(&b, "", 1, ne, LM_TYPE_F32, 0, 64);
    expect_reject(&b, "tensor info 0: empty name");
}
END_TEST

START_TEST(test_gguf_open_missing_file)
{
    char err[LM_ERRBUF_SIZE];
    lm_gguf *g = (lm_gguf *)1;
    ck_assert_int_eq(lm_gguf_open("/nonexistent/x.gguf", &g, err, sizeof err), LM_EIO);
    ck_assert_ptr_null(g);
    ck_assert_str_eq(err, "/nonexistent/x.gguf: cannot open: no such file or directory");
    ck_assert_int_eq(lm_gguf_open(tmpdir, &g, err, sizeof err), LM_EIO);
    ck_assert_ptr_nonnull(strstr(err, ": cannot read: is a directory"));
}
END_TEST

/* ---- errors: llama checks ---------------------------------------------------------------------
 */

/* A minimal llama: n_embd 32, 1 layer, 2 heads (head_dim 16), 1 KV head, n_ff 64, vocab 4. A
 * tensor named skip is left out; one named bad gets ne[1] + 1. */
static void b_llama(struct bb *b, const char *skip, const char *bad, const char *extra)
{
    static const struct {
        const char *name;
        int64_t ne0, ne1;
    } ts[] = {
        {"token_embd.weight", 32, 4},         {"output_norm.weight", 32, 1},
        {"blk.0.attn_norm.weight", 32, 1},    {"blk.0.attn_q.weight", 32, 32},
        {"blk.0.attn_k.weight", 32, 16},      {"blk.0.attn_v.weight", 32, 16},
        {"blk.0.attn_output.weight", 32, 32}, {"blk.0.ffn_norm.weight", 32, 1},
        {"blk.0.ffn_gate.weight", 32, 64},    {"blk.0.ffn_up.weight", 32, 64},
        {"blk.0.ffn_down.weight", 64, 32},
    };
    int n = 0;
    uint64_t off = 0;
    float eps = 1e-5f;
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        n += !(skip && strcmp(skip, ts[i].name) == 0);
    }
    b_hdr(b, 3, (uint64_t)n + (extra ? 1 : 0), 9);
    b_kv_str(b, "general.architecture", "llama");
    b_kv_u32(b, "llama.context_length", 64);
    b_kv_u32(b, "llama.embedding_length", 32);
    b_kv_u32(b, "llama.block_count", 1);
    b_kv_u32(b, "llama.feed_forward_length", 64);
    b_kv_u32(b, "llama.attention.head_count", 2);
    b_kv_u32(b, "llama.attention.head_count_kv", 1);
    b_str(b, "llama.attention.layer_norm_rms_epsilon");
    b_u32(b, LM_GGUF_F32);
    b_raw(b, &eps, 4);
    b_kv_arr(b, "tokenizer.ggml.tokens", LM_GGUF_STRING, 4);
    b_str(b, "<unk>");
    b_str(b, "<s>");
    b_str(b, "</s>");
    b_str(b, "a");
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        if (skip && strcmp(skip, ts[i].name) == 0) {
            continue;
        }
        int64_t ne[2] = {ts[i].ne0, ts[i].ne1 + (bad && strcmp(bad, ts[i].name) == 0)};
        b_tinfo(b, ts[i].name, ne[1] == 1 ? 1 : 2, ne, LM_TYPE_F32, off);
        off += (uint64_t)(ne[0] * ne[1] * 4 + 31) / 32 * 32;
    }
    if (extra) {
        int64_t ne[1] = {32};
        b_tinfo(b, extra, 1, ne, LM_TYPE_F32, off);
        off += 128;
    }
    b_pad(b, 32);
    b_zeros(b, off);
}

/* The first occurrence of n bytes of needle in hay, or NULL. */
static uint8_t *find_bytes(uint8_t *hay, size_t len, const char *needle, size_t n)
{
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(hay + i, needle, n) == 0) {
            return hay + i;
        }
    }
    return NULL;
}

/* Opens (must succeed) and runs the llama check, which must fail with reason. */
static void expect_llama_reject(struct bb *b, int code, const char *reason)
{
    char err[LM_ERRBUF_SIZE], want[512];
    lm_gguf *g = open_ok(b);
    ck_assert_int_eq(lm_gguf_check_llama(g, err, sizeof err), code);
    snprintf(want, sizeof want, "ok.gguf: %s", reason);
    ck_assert_str_eq(err, want);
    lm_gguf_close(g);
    free(b->p);
}

START_TEST(test_gguf_llama_minimal_passes)
{
    struct bb b = {0};
    char err[LM_ERRBUF_SIZE] = "";
    b_llama(&b, NULL, NULL, NULL);
    lm_gguf *g = open_ok(&b);
    ck_assert_msg(lm_gguf_check_llama(g, err, sizeof err) == 0, "%s", err);
    lm_gguf_close(g);
    free(b.p);
}
END_TEST

START_TEST(test_gguf_llama_missing_tensor)
{
    struct bb b = {0};
    b_llama(&b, "blk.0.ffn_up.weight", NULL, NULL);
    expect_llama_reject(&b, LM_EFORMAT, "missing required tensor 'blk.0.ffn_up.weight'");
}
END_TEST

START_TEST(test_gguf_llama_shape_contradicts_hparams)
{
    struct bb b = {0};
    b_llama(&b, NULL, "blk.0.attn_q.weight", NULL);
    expect_llama_reject(&b, LM_EFORMAT,
                        "tensor 'blk.0.attn_q.weight' has shape [32, 33] but n_embd 32 and "
                        "n_head*head_dim 32 require [32, 32]");
    b = (struct bb){0};
    b_llama(&b, NULL, "token_embd.weight", NULL);
    expect_llama_reject(&b, LM_EFORMAT,
                        "tensor 'token_embd.weight' has shape [32, 5] but n_embd 32 and n_vocab 4 "
                        "require [32, 4]");
    b = (struct bb){0};
    b_llama(&b, NULL, "output_norm.weight", NULL);
    expect_llama_reject(
        &b, LM_EFORMAT,
        "tensor 'output_norm.weight' has shape [32, 2] but n_embd 32 requires [32]");
}
END_TEST

START_TEST(test_gguf_llama_unexpected_tensor)
{
    struct bb b = {0};
    b_llama(&b, NULL, NULL, "blk.0.attn_q.bias");
    expect_llama_reject(&b, LM_EUNSUPPORTED,
                        "unexpected tensor 'blk.0.attn_q.bias' (not part of a llama model)");
}
END_TEST

START_TEST(test_gguf_llama_wrong_key_type)
{
    struct bb b = {0};
    b_llama(&b, NULL, NULL, NULL);
    /* Turn llama.block_count (u32) into an i32: the type field follows the key. */
    uint8_t *k = find_bytes(b.p, b.n, "llama.block_count", 17);
    ck_assert_ptr_nonnull(k);
    k[17] = LM_GGUF_I32;
    expect_llama_reject(&b, LM_ETYPE, "key 'llama.block_count' must be u32, not i32");
}
END_TEST

START_TEST(test_gguf_llama_missing_key)
{
    struct bb b = {0};
    b_llama(&b, NULL, NULL, NULL);
    uint8_t *k = find_bytes(b.p, b.n, "llama.feed_forward_length", 25);
    ck_assert_ptr_nonnull(k);
    k[0] = 'x'; /* renamed: the required key is gone */
    expect_llama_reject(&b, LM_EFORMAT, "missing required key 'llama.feed_forward_length'");
}
END_TEST

START_TEST(test_gguf_llama_wrong_architecture)
{
    struct bb b = {0};
    b_llama(&b, NULL, NULL, NULL);
    uint8_t *k = find_bytes(b.p, b.n, "llama", 5); /* the value of general.architecture */
    ck_assert_ptr_nonnull(k);
    memcpy(k, "gpt2x", 5);
    expect_llama_reject(&b, LM_EUNSUPPORTED, "architecture 'gpt2x' is not supported (only llama)");
}
END_TEST

/* ---- roundtrip --------------------------------------------------------------------------------
 */

static char *tmp_path(const char *name)
{
    static char p[700];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

static lm_gguf_writer *writer(const char *path)
{
    char err[LM_ERRBUF_SIZE];
    lm_gguf_writer *w = NULL;
    ck_assert_int_eq(lm_gguf_writer_open(path, &w, err, sizeof err), 0);
    return w;
}

START_TEST(test_gguf_roundtrip_all_value_types)
{
    char path[700];
    snprintf(path, sizeof path, "%s", tmp_path("all.gguf"));
    lm_gguf_writer *w = writer(path);
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    uint64_t u64 = 1ull << 60;
    int64_t i64 = -(1ll << 60);
    double f64 = -2.5e300;
    ck_assert_int_eq(lm_gguf_writer_set_val(w, "v.u8", LM_GGUF_U8, &u8), 0);
    ck_assert_int_eq(lm_gguf_writer_set_val(w, "v.i8", LM_GGUF_I8, &i8), 0);
    ck_assert_int_eq(lm_gguf_writer_set_val(w, "v.u16", LM_GGUF_U16, &u16), 0);
    ck_assert_int_eq(lm_gguf_writer_set_val(w, "v.i16", LM_GGUF_I16, &i16), 0);
    ck_assert_int_eq(lm_gguf_writer_set_u32(w, "v.u32", 4000000000u), 0);
    ck_assert_int_eq(lm_gguf_writer_set_i32(w, "v.i32", -2000000000), 0);
    ck_assert_int_eq(lm_gguf_writer_set_f32(w, "v.f32", 0.25f), 0);
    ck_assert_int_eq(lm_gguf_writer_set_bool(w, "v.bool", true), 0);
    ck_assert_int_eq(lm_gguf_writer_set_str(w, "v.str", "h\xc3\xa9llo"), 0);
    ck_assert_int_eq(lm_gguf_writer_set_val(w, "v.u64", LM_GGUF_U64, &u64), 0);
    ck_assert_int_eq(lm_gguf_writer_set_val(w, "v.i64", LM_GGUF_I64, &i64), 0);
    ck_assert_int_eq(lm_gguf_writer_set_val(w, "v.f64", LM_GGUF_F64, &f64), 0);
    const char *strs[3] = {"<unk>", "", "\xe2\x96\x81the"};
    float fs[3] = {0.0f, -1.5f, 3.0f};
    int16_t ss[2] = {-1, 7};
    ck_assert_int_eq(lm_gguf_writer_set_arr_str(w, "a.str", strs, 3), 0);
    ck_assert_int_eq(lm_gguf_writer_set_arr(w, "a.f32", LM_GGUF_F32, fs, 3), 0);
    ck_assert_int_eq(lm_gguf_writer_set_arr(w, "a.i16", LM_GGUF_I16, ss, 2), 0);
    ck_assert_int_eq(lm_gguf_writer_set_arr(w, "a.empty", LM_GGUF_U8, NULL, 0), 0);
    ck_assert_int_eq(lm_gguf_writer_finish(w), 0);
    lm_gguf_writer_close(w);

    char err[LM_ERRBUF_SIZE];
    lm_gguf *g = NULL;
    ck_assert_msg(lm_gguf_open(path, &g, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(access(tmp_path("all.gguf.tmp"), F_OK), -1);
    ck_assert_int_eq(lm_gguf_n_kv(g), 16);
    ck_assert_int_eq(lm_gguf_n_tensors(g), 0);
    static const char *const want[16] = {"200",
                                         "-100",
                                         "60000",
                                         "-30000",
                                         "4000000000",
                                         "-2000000000",
                                         "0.25",
                                         "true",
                                         "h\xc3\xa9llo",
                                         "1152921504606846976",
                                         "-1152921504606846976",
                                         "-2.5e+300",
                                         "[\"<unk>\", \"\", \"\xe2\x96\x81the\"]",
                                         "[0, -1.5, 3]",
                                         "[-1, 7]",
                                         "[]"};
    char buf[128];
    for (int64_t i = 0; i < 16; i++) {
        lm_gguf_kv_format(g, i, buf, sizeof buf);
        ck_assert_msg(strcmp(buf, want[i]) == 0, "%s: %s", lm_gguf_kv_key(g, i), buf);
    }
    bool bv;
    float fv;
    int32_t iv;
    ck_assert_int_eq(lm_gguf_get_bool(g, "v.bool", &bv), 0);
    ck_assert(bv);
    ck_assert_int_eq(lm_gguf_get_f32(g, "v.f32", &fv), 0);
    ck_assert_int_eq(memcmp(&fv, &(float){0.25f}, 4), 0);
    ck_assert_int_eq(lm_gguf_get_i32(g, "v.i32", &iv), 0);
    ck_assert_int_eq(iv, -2000000000);
    ck_assert_int_eq(lm_gguf_kv_type(g, 0), LM_GGUF_U8);
    ck_assert_int_eq(lm_gguf_kv_arr_type(g, 13), LM_GGUF_F32);
    ck_assert_uint_eq(lm_gguf_kv_arr_n(g, 12), 3);
    lm_gguf_close(g);
}
END_TEST

START_TEST(test_gguf_roundtrip_nested_arrays_and_v1_copy)
{
    /* A hand-written v1 file with a nested array and a string array, copied through the writer
     * into v3: the values must survive the change of length width. */
    struct bb b = {.v1 = true};
    b_hdr(&b, 1, 0, 2);
    b_kv_arr(&b, "n", LM_GGUF_ARRAY, 2);
    b_u32(&b, LM_GGUF_I32);
    b_len(&b, 2);
    b_u32(&b, 5);
    b_u32(&b, (uint32_t)-6);
    b_u32(&b, LM_GGUF_ARRAY);
    b_len(&b, 1);
    b_u32(&b, LM_GGUF_STRING);
    b_len(&b, 2);
    b_str(&b, "x");
    b_str(&b, "yz");
    b_kv_arr(&b, "s", LM_GGUF_STRING, 2);
    b_str(&b, "p");
    b_str(&b, "qr");
    lm_gguf *src = open_ok(&b);
    lm_gguf_writer *w = writer(tmp_path("nested.gguf"));
    for (int64_t i = 0; i < lm_gguf_n_kv(src); i++) {
        ck_assert_int_eq(lm_gguf_writer_copy_kv(w, src, i), 0);
    }
    ck_assert_int_eq(lm_gguf_writer_copy_kv(w, src, 5), LM_ERANGE);
    ck_assert_int_eq(lm_gguf_writer_finish(w), 0);
    lm_gguf_writer_close(w);
    char err[LM_ERRBUF_SIZE], b1[128], b2[128];
    lm_gguf *g = NULL;
    ck_assert_msg(lm_gguf_open(tmp_path("nested.gguf"), &g, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(lm_gguf_version(g), 3);
    for (int64_t i = 0; i < 2; i++) {
        lm_gguf_kv_format(src, i, b1, sizeof b1);
        lm_gguf_kv_format(g, i, b2, sizeof b2);
        ck_assert_str_eq(b1, b2);
    }
    ck_assert_str_eq(b1, "[\"p\", \"qr\"]");
    lm_gguf_kv_format(g, 0, b2, sizeof b2);
    ck_assert_str_eq(b2, "[[5, -6], [[\"x\", \"yz\"]]]");
    lm_gguf_close(g);
    lm_gguf_close(src);
    free(b.p);
}
END_TEST

START_TEST(test_gguf_roundtrip_tensors)
{
    static const int types[4] = {LM_TYPE_F32, LM_TYPE_F16, LM_TYPE_Q8_0, LM_TYPE_Q4_K};
    int64_t ne[4][4] = {{3, 5}, {7, 1, 2}, {64, 3}, {256, 2, 1, 2}};
    int nd[4] = {2, 3, 2, 4};
    uint8_t *data[4];
    uint64_t sz[4];
    lm_gguf_writer *w = writer(tmp_path("t.gguf"));
    ck_assert_int_eq(lm_gguf_writer_set_u32(w, "general.alignment", 64), 0);
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        ck_assert_int_eq(lm_gguf_writer_add_tensor(w, name, types[i], nd[i], ne[i]), 0);
        int64_t rows = 1;
        for (int d = 1; d < nd[i]; d++) {
            rows *= ne[i][d];
        }
        sz[i] = (uint64_t)(lm_type_row_bytes(types[i], ne[i][0]) * rows);
        data[i] = malloc(sz[i]);
        for (uint64_t k = 0; k < sz[i]; k++) {
            data[i][k] = (uint8_t)(k * 7 + (uint64_t)i);
        }
    }
    ck_assert_int_eq(lm_gguf_writer_begin_data(w), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(lm_gguf_writer_write_tensor_data(w, data[i], sz[i]), 0);
    }
    ck_assert_int_eq(lm_gguf_writer_finish(w), 0);
    lm_gguf_writer_close(w);
    char err[LM_ERRBUF_SIZE];
    lm_gguf *g = NULL;
    ck_assert_msg(lm_gguf_open(tmp_path("t.gguf"), &g, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(lm_gguf_alignment(g), 64);
    ck_assert_uint_eq(lm_gguf_data_offset(g) % 64, 0);
    uint64_t expect_off = 0;
    for (int i = 0; i < 4; i++) {
        const struct lm_gguf_tensor *t = lm_gguf_tensor(g, i);
        ck_assert_int_eq(t->type, types[i]);
        ck_assert_int_eq(t->n_dims, nd[i]);
        for (int d = 0; d < 4; d++) {
            ck_assert_int_eq(t->ne[d], d < nd[i] ? ne[i][d] : 1);
        }
        ck_assert_uint_eq(t->offset, expect_off); /* llama.cpp's strict layout */
        ck_assert_uint_eq(t->n_bytes, sz[i]);
        ck_assert_int_eq(memcmp(t->data, data[i], sz[i]), 0);
        expect_off += (sz[i] + 63) / 64 * 64;
        free(data[i]);
    }
    ck_assert_ptr_null(lm_gguf_tensor(g, 4));
    lm_gguf_close(g);
}
END_TEST

START_TEST(test_gguf_writer_errors)
{
    char path[700];
    snprintf(path, sizeof path, "%s", tmp_path("err.gguf"));
    lm_gguf_writer *w = writer(path);
    int64_t ne[2] = {33, 2};
    char want[900];
    ck_assert_int_eq(lm_gguf_writer_set_u32(w, "k", 1), 0);
    ck_assert_int_eq(lm_gguf_writer_set_u32(w, "k", 2), LM_EINVAL);
    snprintf(want, sizeof want, "%s: duplicate key 'k'", path);
    ck_assert_str_eq(lm_gguf_writer_errmsg(w), want);
    ck_assert_int_eq(lm_gguf_writer_set_u32(w, "", 2), LM_EINVAL);
    ck_assert_int_eq(lm_gguf_writer_set_u32(w, "general.alignment", 24), LM_EINVAL);
    ck_assert_int_eq(lm_gguf_writer_set_i32(w, "general.alignment", 32), LM_ETYPE);
    ck_assert_int_eq(lm_gguf_writer_add_tensor(w, "q", LM_TYPE_Q8_0, 2, ne), LM_EINVAL);
    snprintf(want, sizeof want,
             "%s: tensor 'q': ne[0] 33 is not a multiple of the Q8_0 block "
             "size 32",
             path);
    ck_assert_str_eq(lm_gguf_writer_errmsg(w), want);
    ck_assert_int_eq(lm_gguf_writer_add_tensor(w, "f", LM_TYPE_F32, 2, ne), 0);
    ck_assert_int_eq(lm_gguf_writer_add_tensor(w, "f", LM_TYPE_F32, 2, ne), LM_EINVAL);
    ck_assert_int_eq(lm_gguf_writer_add_tensor(w, "g", 4, 2, ne), LM_EINVAL);
    ck_assert_int_eq(lm_gguf_writer_add_tensor(w, "g", LM_TYPE_F32, 5, ne), LM_EINVAL);
    ck_assert_int_eq(lm_gguf_writer_write_tensor_data(w, ne, 8), LM_EINVAL); /* not begun */
    ck_assert_int_eq(lm_gguf_writer_begin_data(w), 0);
    ck_assert_int_eq(lm_gguf_writer_set_u32(w, "late", 1), LM_EINVAL);
    ck_assert_int_eq(lm_gguf_writer_write_tensor_data(w, ne, 8), LM_EINVAL);
    snprintf(want, sizeof want, "%s: tensor 'f': got 8 bytes of data, expected 264", path);
    ck_assert_str_eq(lm_gguf_writer_errmsg(w), want);
    ck_assert_int_eq(lm_gguf_writer_finish(w), LM_EINVAL);
    snprintf(want, sizeof want, "%s: only 0 of 1 tensors were written", path);
    ck_assert_str_eq(lm_gguf_writer_errmsg(w), want);
    lm_gguf_writer_close(w); /* discards the unfinished file */
    ck_assert_int_eq(access(path, F_OK), -1);
    snprintf(want, sizeof want, "%s.tmp", path);
    ck_assert_int_eq(access(want, F_OK), -1);
    lm_gguf_writer_close(NULL);
    char err[LM_ERRBUF_SIZE];
    ck_assert_int_eq(lm_gguf_writer_open("/nonexistent/dir/x.gguf", &w, err, sizeof err), LM_EIO);
    ck_assert_ptr_null(w);
    ck_assert_str_eq(err, "/nonexistent/dir/x.gguf: cannot create /nonexistent/dir/x.gguf.tmp: no "
                          "such file or directory");
}
END_TEST

Suite *gguf_suite(void);

Suite *gguf_suite(void)
{
    Suite *s = suite_create("gguf");
    TCase *core = tcase_create("core");
    tcase_add_checked_fixture(core, setup, NULL);
    tcase_add_test(core, test_gguf_valid_fixture_loads);
    tcase_add_test(core, test_gguf_v1_by_hand_loads);
    tcase_add_test(core, test_gguf_nested_arrays_parse);
    tcase_add_test(core, test_gguf_kv_format);
    tcase_add_test(core, test_gguf_kv_format_reals);
    tcase_add_test(core, test_gguf_strerror);
    tcase_add_test(core, test_gguf_llama_minimal_passes);
    suite_add_tcase(s, core);

    TCase *errors = tcase_create("errors");
    tcase_add_checked_fixture(errors, setup, NULL);
    tcase_add_test(errors, test_gguf_bad_magic);
    tcase_add_test(errors, test_gguf_empty_file);
    tcase_add_test(errors, test_gguf_unknown_version);
    tcase_add_test(errors, test_gguf_byteswapped_version);
    tcase_add_test(errors, test_gguf_truncated_header_boundaries);
    tcase_add_test(errors, test_gguf_truncated_field_boundaries);
    tcase_add_test(errors, test_gguf_truncated_every_prefix);
    tcase_add_test(errors, test_gguf_n_tensors_absurd);
    tcase_add_test(errors, test_gguf_n_kv_absurd);
    tcase_add_test(errors, test_gguf_key_length_past_eof);
    tcase_add_test(errors, test_gguf_string_length_past_eof);
    tcase_add_test(errors, test_gguf_array_size_overflow);
    tcase_add_test(errors, test_gguf_array_past_eof);
    tcase_add_test(errors, test_gguf_string_array_count_absurd);
    tcase_add_test(errors, test_gguf_unknown_value_type);
    tcase_add_test(errors, test_gguf_scores_not_f32);
    tcase_add_test(errors, test_gguf_token_type_not_i32);
    tcase_add_test(errors, test_gguf_tokens_not_strings);
    tcase_add_test(errors, test_gguf_scores_nested);
    tcase_add_test(errors, test_gguf_tokens_nested);
    tcase_add_test(errors, test_gguf_nested_too_deep);
    tcase_add_test(errors, test_gguf_scores_count_mismatch);
    tcase_add_test(errors, test_gguf_alignment_not_u32);
    tcase_add_test(errors, test_gguf_alignment_zero);
    tcase_add_test(errors, test_gguf_alignment_not_power_of_two);
    tcase_add_test(errors, test_gguf_alignment_huge);
    tcase_add_test(errors, test_gguf_duplicate_key);
    tcase_add_test(errors, test_gguf_empty_key);
    tcase_add_test(errors, test_gguf_key_with_nul);
    tcase_add_test(errors, test_gguf_n_dims_too_many);
    tcase_add_test(errors, test_gguf_zero_dim);
    tcase_add_test(errors, test_gguf_negative_dim);
    tcase_add_test(errors, test_gguf_size_overflow);
    tcase_add_test(errors, test_gguf_data_past_eof);
    tcase_add_test(errors, test_gguf_offset_past_eof);
    tcase_add_test(errors, test_gguf_misaligned_offset);
    tcase_add_test(errors, test_gguf_unknown_tensor_type);
    tcase_add_test(errors, test_gguf_block_size_mismatch);
    tcase_add_test(errors, test_gguf_duplicate_tensor_name);
    tcase_add_test(errors, test_gguf_tensor_name_too_long);
    tcase_add_test(errors, test_gguf_tensor_name_empty);
    tcase_add_test(errors, test_gguf_open_missing_file);
    tcase_add_test(errors, test_gguf_llama_missing_tensor);
    tcase_add_test(errors, test_gguf_llama_shape_contradicts_hparams);
    tcase_add_test(errors, test_gguf_llama_unexpected_tensor);
    tcase_add_test(errors, test_gguf_llama_wrong_key_type);
    tcase_add_test(errors, test_gguf_llama_missing_key);
    tcase_add_test(errors, test_gguf_llama_wrong_architecture);
    tcase_add_test(errors, test_gguf_writer_errors);
    suite_add_tcase(s, errors);

    TCase *rt = tcase_create("roundtrip");
    tcase_add_checked_fixture(rt, setup, NULL);
    tcase_add_test(rt, test_gguf_roundtrip_all_value_types);
    tcase_add_test(rt, test_gguf_roundtrip_nested_arrays_and_v1_copy);
    tcase_add_test(rt, test_gguf_roundtrip_tensors);
    suite_add_tcase(s, rt);
    return s;
}
