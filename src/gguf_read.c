/*
 * gguf_read.c - parses and validates a GGUF file (v1, v2, v3) held in memory or mmap'd.
 *
 * Every file is hostile. Each count, length and offset is checked against the bytes left before
 * it is used, every multiplication is overflow-checked, and no allocation is made that the file
 * size cannot justify (a count is only trusted after checking that its elements' minimum
 * encoded size fits in the file). Depends on libc and the weight-type table of lm.h only.
 *
 * Layout, little-endian (FORMATS.md section 1; "len" is u32 in v1 and u64 in v2/v3):
 *   magic "GGUF" | version u32 | n_tensors len | n_kv len
 *   n_kv x  { key: len + bytes | value type u32 | value }
 *           value: fixed-size scalar | string (len + bytes) |
 *                  array (element type u32 | count len | elements, strings and arrays nested)
 *   n_tensors x { name: len + bytes | n_dims u32 | ne[n_dims]: u32 (v1) or i64 |
 *                 type u32 | offset u64 (relative to the data section) }
 *   zero padding up to general.alignment (default 32) | tensor data
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gguf_int.h"

/* A cursor over the file plus the context that messages need ("tensor info 3 'x' (n_dims)"). */
struct rd {
    const uint8_t *p;
    uint64_t size;
    uint64_t pos;
    bool v1;
    const char *path;
    char *err;
    size_t errlen;
    const char *sect;  /* "header", "key/value" or "tensor info" */
    int64_t idx;       /* index within the section, -1 for the header */
    const char *name;  /* key or tensor name once read, else NULL */
    const char *field; /* what is being read */
};

static int rd_fail(struct rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int rd_fail(struct rd *r, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (!r->err || r->errlen == 0) {
        return LM_EFORMAT;
    }
    n = snprintf(r->err, r->errlen, "%s: ", r->path);
    if (n >= 0 && (size_t)n < r->errlen) {
        va_start(ap, fmt);
        vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return LM_EFORMAT;
}

/* "header", "key/value 3", "tensor info 2 'blk.0.attn_q.weight'". */
static const char *where(const struct rd *r, char *buf, size_t cap)
{
    if (r->idx < 0) {
        snprintf(buf, cap, "%s", r->sect);
    } else if (r->name) {
        snprintf(buf, cap, "%s %" PRId64 " '%s'", r->sect, r->idx, r->name);
    } else {
        snprintf(buf, cap, "%s %" PRId64, r->sect, r->idx);
    }
    return buf;
}

static uint64_t left(const struct rd *r)
{
    return r->size - r->pos;
}

static int need(struct rd *r, uint64_t n)
{
    char w[160];
    if (n > left(r)) {
        return rd_fail(r, "truncated in %s (%s)", where(r, w, sizeof w), r->field);
    }
    return 0;
}

static uint64_t le_u64(const uint8_t *p, int nbytes)
{
    uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static int rd_uint(struct rd *r, int nbytes, uint64_t *v)
{
    int rc = need(r, (uint64_t)nbytes);
    if (rc < 0) {
        return rc;
    }
    *v = le_u64(r->p + r->pos, nbytes);
    r->pos += (uint64_t)nbytes;
    return 0;
}

static int rd_u32(struct rd *r, uint32_t *v)
{
    uint64_t x;
    int rc = rd_uint(r, 4, &x);
    *v = (uint32_t)x;
    return rc;
}

/* A count or string length: u32 in v1, u64 later. */
static int rd_len(struct rd *r, uint64_t *v)
{
    return rd_uint(r, r->v1 ? 4 : 8, v);
}

/* A length-prefixed string; what names it in messages ("key", "name", "string"). */
static int rd_str(struct rd *r, const uint8_t **s, uint64_t *len, const char *what)
{
    char w[160];
    int rc = rd_len(r, len);
    if (rc < 0) {
        return rc;
    }
    if (*len > left(r)) {
        return rd_fail(r,
                       "%s: %s length %" PRIu64 " runs past end of file (%" PRIu64 " bytes left)",
                       where(r, w, sizeof w), what, *len, left(r));
    }
    if (*len > LM__GGUF_MAX_STRING) {
        return rd_fail(r, "%s: %s length %" PRIu64 " exceeds the 1 GiB limit",
                       where(r, w, sizeof w), what, *len);
    }
    *s = r->p + r->pos;
    r->pos += *len;
    return 0;
}

static int rd_vtype(struct rd *r, const char *what, enum lm_gguf_vtype *t)
{
    char w[160];
    uint32_t v;
    int rc = rd_u32(r, &v);
    if (rc < 0) {
        return rc;
    }
    if (v >= LM_GGUF_VTYPE_COUNT) {
        return rd_fail(r, "%s: unknown %s %" PRIu32, where(r, w, sizeof w), what, v);
    }
    *t = (enum lm_gguf_vtype)v;
    return 0;
}

static int skip_array(struct rd *r, enum lm_gguf_vtype et, uint64_t n, int depth, uint64_t *offs,
                      const uint8_t *base);

/* Skips n fixed-size elements. */
static int skip_fixed(struct rd *r, enum lm_gguf_vtype et, uint64_t n)
{
    char w[160];
    uint64_t es = lm__gguf_vtype_size(et);
    if (n > UINT64_MAX / es) {
        return rd_fail(r,
                       "%s: array count %" PRIu64 " x element size %" PRIu64 " overflows 64 bits",
                       where(r, w, sizeof w), n, es);
    }
    if (n * es > left(r)) {
        return rd_fail(r,
                       "%s: array of %" PRIu64 " x %" PRIu64
                       " bytes runs past end of file (%" PRIu64 " bytes left)",
                       where(r, w, sizeof w), n, es, left(r));
    }
    r->pos += n * es;
    return 0;
}

/* Skips n strings; offs (if not NULL) gets each one's offset from base. */
static int skip_strings(struct rd *r, uint64_t n, uint64_t *offs, const uint8_t *base)
{
    char w[160];
    const uint8_t *s;
    uint64_t len;
    if (n > left(r) / (r->v1 ? 4 : 8)) {
        return rd_fail(r,
                       "%s: array of %" PRIu64 " strings cannot fit in the %" PRIu64 " bytes left",
                       where(r, w, sizeof w), n, left(r));
    }
    for (uint64_t i = 0; i < n; i++) {
        if (offs) {
            offs[i] = (uint64_t)(r->p + r->pos - base);
        }
        int rc = rd_str(r, &s, &len, "string");
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

/* Skips n arrays (each: element type, count, elements). */
static int skip_arrays(struct rd *r, uint64_t n, int depth)
{
    char w[160];
    enum lm_gguf_vtype et;
    uint64_t m;
    if (depth >= LM__GGUF_MAX_DEPTH) {
        return rd_fail(r, "%s: arrays nested deeper than %d levels", where(r, w, sizeof w),
                       LM__GGUF_MAX_DEPTH);
    }
    if (n > left(r) / (r->v1 ? 8 : 12)) {
        return rd_fail(r,
                       "%s: array of %" PRIu64 " arrays cannot fit in the %" PRIu64 " bytes left",
                       where(r, w, sizeof w), n, left(r));
    }
    for (uint64_t i = 0; i < n; i++) {
        int rc = rd_vtype(r, "array element type", &et);
        if (rc == 0) {
            rc = rd_len(r, &m);
        }
        if (rc == 0) {
            rc = skip_array(r, et, m, depth + 1, NULL, NULL);
        }
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

static int skip_array(struct rd *r, enum lm_gguf_vtype et, uint64_t n, int depth, uint64_t *offs,
                      const uint8_t *base)
{
    if (et == LM_GGUF_STRING) {
        return skip_strings(r, n, offs, base);
    }
    if (et == LM_GGUF_ARRAY) {
        return skip_arrays(r, n, depth);
    }
    return skip_fixed(r, et, n);
}

/* The value of key/value kv, of type kv->type. */
static int parse_value(struct rd *r, struct lm__gguf_kv *kv)
{
    int rc;
    if (kv->type == LM_GGUF_STRING) {
        return rd_str(r, &kv->val, &kv->val_len, "string");
    }
    if (kv->type != LM_GGUF_ARRAY) {
        kv->val_len = lm__gguf_vtype_size(kv->type);
        rc = need(r, kv->val_len);
        kv->val = r->p + r->pos;
        r->pos += rc < 0 ? 0 : kv->val_len;
        return rc;
    }
    r->field = "array element type";
    rc = rd_vtype(r, "array element type", &kv->arr_type);
    if (rc < 0) {
        return rc;
    }
    r->field = "array count";
    rc = rd_len(r, &kv->arr_n);
    if (rc < 0) {
        return rc;
    }
    r->field = "value";
    kv->val = r->p + r->pos;
    if (kv->arr_type == LM_GGUF_STRING && kv->arr_n <= left(r) / (r->v1 ? 4 : 8)) {
        /* Bounded by the file size: each string takes at least its length field. */
        kv->str_off = malloc((kv->arr_n ? kv->arr_n : 1) * sizeof *kv->str_off);
        if (!kv->str_off) {
            return LM_ENOMEM;
        }
    }
    rc = skip_array(r, kv->arr_type, kv->arr_n, 1, kv->str_off, kv->val);
    kv->val_len = (uint64_t)(r->p + r->pos - kv->val);
    return rc;
}

static int parse_kv(struct rd *r, struct lm__gguf_kv *kv, int64_t i)
{
    char w[160];
    const uint8_t *s;
    uint64_t len;
    int rc;
    r->sect = "key/value";
    r->idx = i;
    r->name = NULL;
    r->field = "key";
    kv->arr_type = LM_GGUF_VTYPE_COUNT;
    rc = rd_str(r, &s, &len, "key");
    if (rc < 0) {
        return rc;
    }
    if (len == 0) {
        return rd_fail(r, "%s: empty key", where(r, w, sizeof w));
    }
    if (memchr(s, 0, len)) {
        return rd_fail(r, "%s: key contains a NUL byte", where(r, w, sizeof w));
    }
    kv->key = malloc(len + 1);
    if (!kv->key) {
        return LM_ENOMEM;
    }
    memcpy(kv->key, s, len);
    kv->key[len] = 0;
    r->name = kv->key;
    r->field = "value type";
    rc = rd_vtype(r, "value type", &kv->type);
    if (rc < 0) {
        return rc;
    }
    r->field = "value";
    return parse_value(r, kv);
}

/* ---- tensor infos -----------------------------------------------------------------------------
 */

static const char *const ne_field[4] = {"ne[0]", "ne[1]", "ne[2]", "ne[3]"};

static int rd_tensor_name(struct rd *r, struct lm__gguf_tensor *t)
{
    char w[160];
    const uint8_t *s;
    uint64_t len;
    int rc = rd_str(r, &s, &len, "name");
    if (rc < 0) {
        return rc;
    }
    if (len == 0) {
        return rd_fail(r, "%s: empty name", where(r, w, sizeof w));
    }
    if (len >= LM__GGUF_MAX_NAME) {
        return rd_fail(r, "%s: name is %" PRIu64 " bytes long (the limit is %d)",
                       where(r, w, sizeof w), len, LM__GGUF_MAX_NAME - 1);
    }
    if (memchr(s, 0, len)) {
        return rd_fail(r, "%s: name contains a NUL byte", where(r, w, sizeof w));
    }
    memcpy(t->name, s, len);
    t->name[len] = 0;
    t->pub.name = t->name;
    r->name = t->name;
    return 0;
}

static int rd_tensor_dims(struct rd *r, struct lm_gguf_tensor *t)
{
    char w[160];
    uint32_t nd;
    uint64_t v;
    r->field = "n_dims";
    int rc = rd_u32(r, &nd);
    if (rc < 0) {
        return rc;
    }
    if (nd < 1 || nd > 4) {
        return rd_fail(r, "%s: n_dims %" PRIu32 " is out of range (1..4)", where(r, w, sizeof w),
                       nd);
    }
    t->n_dims = (int)nd;
    for (int d = 0; d < 4; d++) {
        t->ne[d] = 1;
    }
    for (int d = 0; d < (int)nd; d++) {
        r->field = ne_field[d];
        rc = rd_uint(r, r->v1 ? 4 : 8, &v);
        if (rc < 0) {
            return rc;
        }
        int64_t ne = (int64_t)v; /* two's complement: i64 on disk */
        if (ne <= 0) {
            return rd_fail(r, "%s: dimension ne[%d] is %" PRId64 " (must be positive)",
                           where(r, w, sizeof w), d, ne);
        }
        t->ne[d] = ne;
    }
    return 0;
}

static void rd_shape_str(const struct lm_gguf_tensor *t, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "[");
    for (int d = 0; d < t->n_dims && n >= 0 && (size_t)n < cap; d++) {
        n += snprintf(buf + n, cap - (size_t)n, d ? ", %" PRId64 : "%" PRId64, t->ne[d]);
    }
    if (n >= 0 && (size_t)n < cap) {
        snprintf(buf + n, cap - (size_t)n, "]");
    }
}

/* Type, block divisibility and byte size (overflow-checked). */
static int check_tensor_type(struct rd *r, struct lm_gguf_tensor *t, uint32_t type)
{
    char w[160], sh[128];
    int64_t blk = lm_type_block_size((int)type);
    int64_t bb = lm_type_block_bytes((int)type);
    uint64_t bytes;
    if (type >= LM_TYPE_COUNT || blk <= 0 || bb <= 0) {
        return rd_fail(r, "%s: unknown tensor type %" PRIu32, where(r, w, sizeof w), type);
    }
    t->type = (int)type;
    if (t->ne[0] % blk != 0) {
        return rd_fail(r, "%s: ne[0] %" PRId64 " is not a multiple of the %s block size %" PRId64,
                       where(r, w, sizeof w), t->ne[0], lm_type_name(t->type), blk);
    }
    bytes = (uint64_t)(t->ne[0] / blk);
    bool ovf = __builtin_mul_overflow(bytes, (uint64_t)bb, &bytes);
    for (int d = 1; d < 4; d++) {
        ovf = ovf || __builtin_mul_overflow(bytes, (uint64_t)t->ne[d], &bytes);
    }
    if (ovf || bytes > (uint64_t)INT64_MAX) {
        rd_shape_str(t, sh, sizeof sh);
        return rd_fail(r, "%s: size of %s %s overflows 64 bits", where(r, w, sizeof w), sh,
                       lm_type_name(t->type));
    }
    t->n_bytes = bytes;
    return 0;
}

static int parse_tensor_info(struct rd *r, struct lm__gguf_tensor *t, int64_t i)
{
    uint32_t type;
    int rc;
    r->sect = "tensor info";
    r->idx = i;
    r->name = NULL;
    r->field = "name";
    rc = rd_tensor_name(r, t);
    if (rc == 0) {
        rc = rd_tensor_dims(r, &t->pub);
    }
    if (rc == 0) {
        r->field = "type";
        rc = rd_u32(r, &type);
    }
    if (rc == 0) {
        r->field = "offset";
        rc = rd_uint(r, 8, &t->pub.offset);
    }
    if (rc == 0) {
        rc = check_tensor_type(r, &t->pub, type);
    }
    return rc;
}

/* ---- whole-file checks ------------------------------------------------------------------------
 */

static int cmp_kv(const void *a, const void *b)
{
    const struct lm__gguf_kv *x = *(const struct lm__gguf_kv *const *)a;
    const struct lm__gguf_kv *y = *(const struct lm__gguf_kv *const *)b;
    return strcmp(x->key, y->key);
}

static int cmp_tensor(const void *a, const void *b)
{
    const struct lm__gguf_tensor *x = *(const struct lm__gguf_tensor *const *)a;
    const struct lm__gguf_tensor *y = *(const struct lm__gguf_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int index_kvs(struct rd *r, lm_gguf *g)
{
    g->kv_sorted = malloc((size_t)(g->n_kv ? g->n_kv : 1) * sizeof *g->kv_sorted);
    if (!g->kv_sorted) {
        return LM_ENOMEM;
    }
    for (int64_t i = 0; i < g->n_kv; i++) {
        g->kv_sorted[i] = &g->kv[i];
    }
    qsort(g->kv_sorted, (size_t)g->n_kv, sizeof *g->kv_sorted, cmp_kv);
    for (int64_t i = 1; i < g->n_kv; i++) {
        if (strcmp(g->kv_sorted[i - 1]->key, g->kv_sorted[i]->key) == 0) {
            int64_t a = g->kv_sorted[i - 1] - g->kv, b = g->kv_sorted[i] - g->kv;
            return rd_fail(r, "duplicate key '%s' (key/values %" PRId64 " and %" PRId64 ")",
                           g->kv_sorted[i]->key, a < b ? a : b, a < b ? b : a);
        }
    }
    return 0;
}

static int index_tensors(struct rd *r, lm_gguf *g)
{
    g->tensors_sorted = malloc((size_t)(g->n_tensors ? g->n_tensors : 1) * sizeof(void *));
    if (!g->tensors_sorted) {
        return LM_ENOMEM;
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        g->tensors_sorted[i] = &g->tensors[i];
    }
    qsort(g->tensors_sorted, (size_t)g->n_tensors, sizeof(void *), cmp_tensor);
    for (int64_t i = 1; i < g->n_tensors; i++) {
        if (strcmp(g->tensors_sorted[i - 1]->name, g->tensors_sorted[i]->name) == 0) {
            int64_t a = g->tensors_sorted[i - 1] - g->tensors;
            int64_t b = g->tensors_sorted[i] - g->tensors;
            return rd_fail(r,
                           "duplicate tensor name '%s' (tensor infos %" PRId64 " and %" PRId64 ")",
                           g->tensors_sorted[i]->name, a < b ? a : b, a < b ? b : a);
        }
    }
    return 0;
}

/* Keys whose type llama.cpp reads without a check (arrays) or checks strictly (scalars). */
static const struct {
    const char *key;
    enum lm_gguf_vtype type, arr_type;
} key_types[] = {
    {"general.alignment", LM_GGUF_U32, LM_GGUF_VTYPE_COUNT},
    {"general.architecture", LM_GGUF_STRING, LM_GGUF_VTYPE_COUNT},
    {"tokenizer.ggml.model", LM_GGUF_STRING, LM_GGUF_VTYPE_COUNT},
    {"tokenizer.ggml.tokens", LM_GGUF_ARRAY, LM_GGUF_STRING},
    {"tokenizer.ggml.scores", LM_GGUF_ARRAY, LM_GGUF_F32},
    {"tokenizer.ggml.token_type", LM_GGUF_ARRAY, LM_GGUF_I32},
    {"tokenizer.ggml.bos_token_id", LM_GGUF_U32, LM_GGUF_VTYPE_COUNT},
    {"tokenizer.ggml.eos_token_id", LM_GGUF_U32, LM_GGUF_VTYPE_COUNT},
    {"tokenizer.ggml.unknown_token_id", LM_GGUF_U32, LM_GGUF_VTYPE_COUNT},
    {"tokenizer.ggml.padding_token_id", LM_GGUF_U32, LM_GGUF_VTYPE_COUNT},
    {"tokenizer.ggml.add_bos_token", LM_GGUF_BOOL, LM_GGUF_VTYPE_COUNT},
    {"tokenizer.ggml.add_eos_token", LM_GGUF_BOOL, LM_GGUF_VTYPE_COUNT},
    {"tokenizer.ggml.add_space_prefix", LM_GGUF_BOOL, LM_GGUF_VTYPE_COUNT},
    {"tokenizer.chat_template", LM_GGUF_STRING, LM_GGUF_VTYPE_COUNT},
};

static int check_key_type(struct rd *r, const struct lm__gguf_kv *kv, enum lm_gguf_vtype type,
                          enum lm_gguf_vtype arr_type)
{
    if (type != LM_GGUF_ARRAY) {
        if (kv->type == type) {
            return 0;
        }
        return rd_fail(r, "key '%s' must be %s, not %s", kv->key, lm__gguf_vtype_name(type),
                       kv->type == LM_GGUF_ARRAY ? "an array" : lm__gguf_vtype_name(kv->type));
    }
    if (kv->type != LM_GGUF_ARRAY) {
        return rd_fail(r, "key '%s' must be an array of %s, not %s", kv->key,
                       lm__gguf_vtype_name(arr_type), lm__gguf_vtype_name(kv->type));
    }
    if (kv->arr_type != arr_type) {
        return rd_fail(r, "key '%s' must be an array of %s, not an array of %s", kv->key,
                       lm__gguf_vtype_name(arr_type),
                       kv->arr_type == LM_GGUF_ARRAY ? "arrays"
                                                     : lm__gguf_vtype_name(kv->arr_type));
    }
    return 0;
}

/* Known keys: types, alignment, and the token arrays' lengths agreeing. */
static int check_keys(struct rd *r, lm_gguf *g)
{
    const struct lm__gguf_kv *kv, *tok;
    for (size_t i = 0; i < sizeof key_types / sizeof key_types[0]; i++) {
        kv = lm__gguf_kv_get(g, key_types[i].key);
        if (kv && check_key_type(r, kv, key_types[i].type, key_types[i].arr_type) < 0) {
            return LM_EFORMAT;
        }
    }
    kv = lm__gguf_kv_get(g, "general.alignment");
    if (kv) {
        uint32_t a = (uint32_t)le_u64(kv->val, 4);
        if (a == 0 || (a & (a - 1)) != 0) {
            return rd_fail(r, "general.alignment %" PRIu32 " is not a power of two", a);
        }
        if (a > LM__GGUF_MAX_ALIGN) {
            return rd_fail(r, "general.alignment %" PRIu32 " is larger than 1 MiB", a);
        }
        g->alignment = a;
    }
    tok = lm__gguf_kv_get(g, "tokenizer.ggml.tokens");
    const char *const per_token[] = {"tokenizer.ggml.scores", "tokenizer.ggml.token_type"};
    for (int i = 0; i < 2 && tok; i++) {
        kv = lm__gguf_kv_get(g, per_token[i]);
        if (kv && kv->arr_n != tok->arr_n) {
            return rd_fail(r, "%s has %" PRIu64 " entries but tokenizer.ggml.tokens has %" PRIu64,
                           per_token[i], kv->arr_n, tok->arr_n);
        }
    }
    return 0;
}

/* Data section start, then each tensor's alignment and extent. */
static int check_tensor_data(struct rd *r, lm_gguf *g)
{
    uint64_t a = g->alignment;
    g->data_offset = r->pos;
    if (g->n_tensors > 0) {
        g->data_offset = (r->pos + a - 1) / a * a;
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        struct lm_gguf_tensor *t = &g->tensors[i].pub;
        uint64_t room = g->size >= g->data_offset ? g->size - g->data_offset : 0;
        if (t->offset % a != 0) {
            return rd_fail(
                r, "tensor '%s': offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
                t->name, t->offset, a);
        }
        if (t->offset > room || t->n_bytes > room - t->offset) {
            return rd_fail(r,
                           "tensor '%s': data (offset %" PRIu64 ", %" PRIu64
                           " bytes) runs past end of file (%" PRIu64
                           " bytes of data after offset %" PRIu64 ")",
                           t->name, t->offset, t->n_bytes, room, g->data_offset);
        }
        t->data = g->base + g->data_offset + t->offset;
    }
    return 0;
}

/* ---- driver -----------------------------------------------------------------------------------
 */

static int parse_header(struct rd *r, lm_gguf *g)
{
    uint64_t v;
    int rc;
    r->sect = "header";
    r->idx = -1;
    r->field = "magic";
    if (r->size == 0) {
        return rd_fail(r, "empty file");
    }
    if (r->size < 4 || memcmp(r->p, "GGUF", 4) != 0) {
        char m[24] = "";
        for (uint64_t i = 0, n = 0; i < 4 && i < r->size; i++) {
            uint8_t c = r->p[i];
            n += (uint64_t)snprintf(m + n, sizeof m - n, c >= 32 && c < 127 ? "%c" : "\\x%02x", c);
        }
        return rd_fail(r, "bad magic \"%s\" (not a GGUF file)", m);
    }
    r->pos = 4;
    r->field = "version";
    rc = rd_uint(r, 4, &v);
    if (rc < 0) {
        return rc;
    }
    if ((v & 0xffff) == 0 && v != 0) {
        return rd_fail(
            r, "version 0x%08" PRIx64 " looks byte-swapped (big-endian files are not supported)",
            v);
    }
    if (v < 1 || v > 3) {
        return rd_fail(r, "unsupported GGUF version %" PRIu64 " (1, 2 and 3 are supported)", v);
    }
    g->version = (uint32_t)v;
    r->v1 = v == 1;
    return 0;
}

static int parse_counts(struct rd *r, lm_gguf *g)
{
    uint64_t nt, nk;
    uint64_t min_ti = r->v1 ? 25 : 33; /* name len + 1 byte, n_dims, one ne, type, offset */
    uint64_t min_kv = r->v1 ? 10 : 14; /* key len + 1 byte, value type, one byte of value */
    int rc;
    r->field = "n_tensors";
    rc = rd_len(r, &nt);
    if (rc < 0) {
        return rc;
    }
    r->field = "n_kv";
    rc = rd_len(r, &nk);
    if (rc < 0) {
        return rc;
    }
    if (nt > left(r) / min_ti) {
        return rd_fail(r,
                       "n_tensors %" PRIu64 " is larger than the file can hold (%" PRIu64 " bytes)",
                       nt, r->size);
    }
    if (nk > (left(r) - nt * min_ti) / min_kv) {
        return rd_fail(r, "n_kv %" PRIu64 " is larger than the file can hold (%" PRIu64 " bytes)",
                       nk, r->size);
    }
    g->n_tensors = (int64_t)nt;
    g->n_kv = (int64_t)nk;
    g->kv = calloc((size_t)(nk ? nk : 1), sizeof *g->kv);
    g->tensors = calloc((size_t)(nt ? nt : 1), sizeof *g->tensors);
    return g->kv && g->tensors ? 0 : LM_ENOMEM;
}

static int parse(lm_gguf *g, char *err, size_t errlen)
{
    struct rd r = {.p = g->base, .size = g->size, .path = g->path, .err = err, .errlen = errlen};
    int rc = parse_header(&r, g);
    if (rc == 0) {
        rc = parse_counts(&r, g);
    }
    for (int64_t i = 0; rc == 0 && i < g->n_kv; i++) {
        rc = parse_kv(&r, &g->kv[i], i);
    }
    if (rc == 0) {
        rc = index_kvs(&r, g);
    }
    if (rc == 0) {
        rc = check_keys(&r, g);
    }
    for (int64_t i = 0; rc == 0 && i < g->n_tensors; i++) {
        rc = parse_tensor_info(&r, &g->tensors[i], i);
    }
    if (rc == 0) {
        rc = index_tensors(&r, g);
    }
    if (rc == 0) {
        rc = check_tensor_data(&r, g);
    }
    if (rc == LM_ENOMEM) {
        rd_fail(&r, "out of memory");
    }
    return rc;
}

static int open_common(lm_gguf *g, const char *name, lm_gguf **out, char *errbuf, size_t errlen)
{
    g->alignment = LM__GGUF_DEFAULT_ALIGN;
    g->path = strdup(name ? name : "(memory)");
    int rc = g->path ? parse(g, errbuf, errlen) : LM_ENOMEM;
    if (rc < 0) {
        if (!g->path && errbuf && errlen) {
            snprintf(errbuf, errlen, "%s: out of memory", name ? name : "(memory)");
        }
        lm_gguf_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

int lm_gguf_open_mem(const void *data, size_t size, const char *name, lm_gguf **out, char *errbuf,
                     size_t errlen)
{
    lm_gguf *g = calloc(1, sizeof *g);
    *out = NULL;
    if (!g) {
        if (errbuf && errlen) {
            snprintf(errbuf, errlen, "%s: out of memory", name ? name : "(memory)");
        }
        return LM_ENOMEM;
    }
    g->base = data;
    g->size = size;
    return open_common(g, name, out, errbuf, errlen);
}

static int os_fail(const char *path, const char *what, int e, char *errbuf, size_t errlen)
{
    if (errbuf && errlen) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s", strerror(e));
        if (msg[0] >= 'A' && msg[0] <= 'Z' && msg[1] >= 'a' && msg[1] <= 'z') {
            msg[0] = (char)(msg[0] - 'A' + 'a');
        }
        snprintf(errbuf, errlen, "%s: %s: %s", path, what, msg);
    }
    return LM_EIO;
}

/* A file's identity from its stat, taken now. */
static struct lm_file_id file_id(const struct stat *st)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (struct lm_file_id){
        .dev = (uint64_t)st->st_dev,
        .ino = (uint64_t)st->st_ino,
        .size = (uint64_t)st->st_size,
        .mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
        .ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec,
        .opened_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec};
}

bool lm_file_id_of(const char *path, struct lm_file_id *id)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return false;
    }
    *id = file_id(&st);
    return true;
}

int lm_gguf_open(const char *path, lm_gguf **out, char *errbuf, size_t errlen)
{
    struct stat st;
    void *map = NULL;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return os_fail(path, "cannot open", errno, errbuf, errlen);
    }
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return os_fail(path, "cannot read", e, errbuf, errlen);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        if (S_ISDIR(st.st_mode)) {
            return os_fail(path, "cannot read", EISDIR, errbuf, errlen);
        }
        if (errbuf && errlen) {
            snprintf(errbuf, errlen, "%s: not a regular file", path);
        }
        return LM_EIO;
    }
    if (st.st_size > 0) {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return os_fail(path, "cannot map", e, errbuf, errlen);
        }
    }
    close(fd);
    lm_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        if (map) {
            munmap(map, (size_t)st.st_size);
        }
        return os_fail(path, "cannot open", ENOMEM, errbuf, errlen);
    }
    g->has_id = true;
    g->id = file_id(&st);
    g->map = map;
    g->map_len = (size_t)st.st_size;
    g->base = map;
    g->size = (uint64_t)st.st_size;
    return open_common(g, path, out, errbuf, errlen);
}

void lm_gguf_close(lm_gguf *g)
{
    if (!g) {
        return;
    }
    for (int64_t i = 0; g->kv && i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str_off);
    }
    free(g->kv);
    free(g->kv_sorted);
    free(g->tensors);
    free(g->tensors_sorted);
    if (g->map) {
        munmap(g->map, g->map_len);
    }
    free(g->path);
    free(g);
}
