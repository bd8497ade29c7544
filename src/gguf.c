/*
 * gguf.c - read access to a parsed GGUF file (see gguf_read.c for the parser), value formatting
 * for people, and the engine's error texts (lm_strerror).
 *
 * Everything here runs after validation, so offsets and lengths stored in the handle are trusted;
 * the getters only enforce llama.cpp's strict typing (a u32 key read as i32 is LM_ETYPE).
 * Depends on libc only.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_int.h"

const char *lm_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define LM_X_(name, val, text)                                                                     \
    case val:                                                                                      \
        return text;
        LM_ERRNO_MAP(LM_X_)
#undef LM_X_
    default:
        return "unknown error";
    }
}

/* ---- value types ------------------------------------------------------------------------------
 */

static const struct {
    const char *name;
    uint64_t size;
} vtypes[LM_GGUF_VTYPE_COUNT] = {
    [LM_GGUF_U8] = {"u8", 1},       [LM_GGUF_I8] = {"i8", 1},     [LM_GGUF_U16] = {"u16", 2},
    [LM_GGUF_I16] = {"i16", 2},     [LM_GGUF_U32] = {"u32", 4},   [LM_GGUF_I32] = {"i32", 4},
    [LM_GGUF_F32] = {"f32", 4},     [LM_GGUF_BOOL] = {"bool", 1}, [LM_GGUF_STRING] = {"string", 0},
    [LM_GGUF_ARRAY] = {"array", 0}, [LM_GGUF_U64] = {"u64", 8},   [LM_GGUF_I64] = {"i64", 8},
    [LM_GGUF_F64] = {"f64", 8},
};

uint64_t lm__gguf_vtype_size(int type)
{
    return type >= 0 && type < LM_GGUF_VTYPE_COUNT ? vtypes[type].size : 0;
}

const char *lm__gguf_vtype_name(int type)
{
    return type >= 0 && type < LM_GGUF_VTYPE_COUNT ? vtypes[type].name : "?";
}

uint64_t lm__gguf_read_len(const lm_gguf *g, const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = (int)lm__gguf_len_size(g) - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

uint64_t lm__gguf_value_bytes(const lm_gguf *g, int type, const uint8_t *p)
{
    uint64_t ls = lm__gguf_len_size(g);
    if (type == LM_GGUF_STRING) {
        return ls + lm__gguf_read_len(g, p);
    }
    if (type != LM_GGUF_ARRAY) {
        return lm__gguf_vtype_size(type);
    }
    uint32_t et =
        (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    uint64_t n = lm__gguf_read_len(g, p + 4);
    uint64_t off = 4 + ls;
    if (et != LM_GGUF_STRING && et != LM_GGUF_ARRAY) {
        return off + n * lm__gguf_vtype_size((int)et);
    }
    for (uint64_t i = 0; i < n; i++) {
        off += lm__gguf_value_bytes(g, (int)et, p + off);
    }
    return off;
}

/* ---- handle accessors -------------------------------------------------------------------------
 */

const char *lm_gguf_path(const lm_gguf *g)
{
    return g->path;
}

uint32_t lm_gguf_version(const lm_gguf *g)
{
    return g->version;
}

uint64_t lm_gguf_alignment(const lm_gguf *g)
{
    return g->alignment;
}

uint64_t lm_gguf_data_offset(const lm_gguf *g)
{
    return g->data_offset;
}

uint64_t lm_gguf_file_size(const lm_gguf *g)
{
    return g->size;
}

bool lm_gguf_file_id(const lm_gguf *g, struct lm_file_id *id)
{
    if (g->has_id) {
        *id = g->id;
    }
    return g->has_id;
}

const void *lm_gguf_bytes(const lm_gguf *g)
{
    return g->base;
}

int64_t lm_gguf_n_kv(const lm_gguf *g)
{
    return g->n_kv;
}

static const struct lm__gguf_kv *kv_at(const lm_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

const char *lm_gguf_kv_key(const lm_gguf *g, int64_t i)
{
    const struct lm__gguf_kv *kv = kv_at(g, i);
    return kv ? kv->key : NULL;
}

enum lm_gguf_vtype lm_gguf_kv_type(const lm_gguf *g, int64_t i)
{
    const struct lm__gguf_kv *kv = kv_at(g, i);
    return kv ? kv->type : LM_GGUF_VTYPE_COUNT;
}

enum lm_gguf_vtype lm_gguf_kv_arr_type(const lm_gguf *g, int64_t i)
{
    const struct lm__gguf_kv *kv = kv_at(g, i);
    return kv ? kv->arr_type : LM_GGUF_VTYPE_COUNT;
}

uint64_t lm_gguf_kv_arr_n(const lm_gguf *g, int64_t i)
{
    const struct lm__gguf_kv *kv = kv_at(g, i);
    return kv ? kv->arr_n : 0;
}

static int cmp_key(const void *key, const void *elem)
{
    return strcmp(key, (*(const struct lm__gguf_kv *const *)elem)->key);
}

const struct lm__gguf_kv *lm__gguf_kv_get(const lm_gguf *g, const char *key)
{
    struct lm__gguf_kv *const *p;
    if (!key || g->n_kv == 0) {
        return NULL;
    }
    p = bsearch(key, g->kv_sorted, (size_t)g->n_kv, sizeof *g->kv_sorted, cmp_key);
    return p ? *p : NULL;
}

int64_t lm_gguf_find_key(const lm_gguf *g, const char *key)
{
    const struct lm__gguf_kv *kv = lm__gguf_kv_get(g, key);
    return kv ? kv - g->kv : -1;
}

/* ---- typed getters ----------------------------------------------------------------------------
 */

static int get_scalar(const lm_gguf *g, const char *key, enum lm_gguf_vtype type, void *out)
{
    const struct lm__gguf_kv *kv = lm__gguf_kv_get(g, key);
    if (!kv) {
        return LM_ENOTFOUND;
    }
    if (kv->type != type) {
        return LM_ETYPE;
    }
    memcpy(out, kv->val, lm__gguf_vtype_size(type)); /* the host is little-endian, like GGUF */
    return 0;
}

int lm_gguf_get_u32(const lm_gguf *g, const char *key, uint32_t *out)
{
    return get_scalar(g, key, LM_GGUF_U32, out);
}

int lm_gguf_get_i32(const lm_gguf *g, const char *key, int32_t *out)
{
    return get_scalar(g, key, LM_GGUF_I32, out);
}

int lm_gguf_get_f32(const lm_gguf *g, const char *key, float *out)
{
    return get_scalar(g, key, LM_GGUF_F32, out);
}

int lm_gguf_get_bool(const lm_gguf *g, const char *key, bool *out)
{
    uint8_t b;
    int rc = get_scalar(g, key, LM_GGUF_BOOL, &b);
    if (rc == 0) {
        *out = b != 0;
    }
    return rc;
}

int lm_gguf_get_str(const lm_gguf *g, const char *key, const char **s, uint64_t *len)
{
    const struct lm__gguf_kv *kv = lm__gguf_kv_get(g, key);
    if (!kv) {
        return LM_ENOTFOUND;
    }
    if (kv->type != LM_GGUF_STRING) {
        return LM_ETYPE;
    }
    *s = (const char *)kv->val;
    *len = kv->val_len;
    return 0;
}

int lm_gguf_get_arr(const lm_gguf *g, const char *key, enum lm_gguf_vtype *elem, uint64_t *n,
                    const void **data)
{
    const struct lm__gguf_kv *kv = lm__gguf_kv_get(g, key);
    if (!kv) {
        return LM_ENOTFOUND;
    }
    if (kv->type != LM_GGUF_ARRAY || lm__gguf_vtype_size(kv->arr_type) == 0) {
        return LM_ETYPE;
    }
    *elem = kv->arr_type;
    *n = kv->arr_n;
    *data = kv->val;
    return 0;
}

int lm_gguf_get_arr_str(const lm_gguf *g, const char *key, uint64_t i, const char **s,
                        uint64_t *len)
{
    const struct lm__gguf_kv *kv = lm__gguf_kv_get(g, key);
    if (!kv) {
        return LM_ENOTFOUND;
    }
    if (kv->type != LM_GGUF_ARRAY || kv->arr_type != LM_GGUF_STRING) {
        return LM_ETYPE;
    }
    if (i >= kv->arr_n) {
        return LM_ERANGE;
    }
    const uint8_t *p = kv->val + kv->str_off[i];
    *len = lm__gguf_read_len(g, p);
    *s = (const char *)p + lm__gguf_len_size(g);
    return 0;
}

/* ---- tensors ----------------------------------------------------------------------------------
 */

int64_t lm_gguf_n_tensors(const lm_gguf *g)
{
    return g->n_tensors;
}

const struct lm_gguf_tensor *lm_gguf_tensor(const lm_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_tensors ? &g->tensors[i].pub : NULL;
}

static int cmp_name(const void *key, const void *elem)
{
    return strcmp(key, (*(const struct lm__gguf_tensor *const *)elem)->name);
}

const struct lm_gguf_tensor *lm_gguf_find_tensor(const lm_gguf *g, const char *name)
{
    struct lm__gguf_tensor *const *p;
    if (!name || g->n_tensors == 0) {
        return NULL;
    }
    p = bsearch(name, g->tensors_sorted, (size_t)g->n_tensors, sizeof(void *), cmp_name);
    return p ? &(*p)->pub : NULL;
}

/* ---- formatting for people --------------------------------------------------------------------
 */

/* A bounded output buffer that remembers whether anything was cut. */
struct out {
    char *buf;
    size_t cap, n;
    bool cut;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    char tmp[64];
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    for (int i = 0; i < k && i < (int)sizeof tmp - 1; i++) {
        if (o->n + 4 >= o->cap) { /* keep room for "..." and the NUL */
            o->cut = true;
            return;
        }
        o->buf[o->n++] = tmp[i];
    }
}

/* Escapes control bytes; UTF-8 passes through. */
static void put_str(struct out *o, const uint8_t *s, uint64_t len, bool quoted)
{
    if (quoted) {
        put(o, "\"");
    }
    for (uint64_t i = 0; i < len && !o->cut; i++) {
        uint8_t c = s[i];
        if (c == '\n') {
            put(o, "\\n");
        } else if (c == '\t') {
            put(o, "\\t");
        } else if (c < 32 || c == 127) {
            put(o, "\\x%02x", c);
        } else if (quoted && (c == '"' || c == '\\')) {
            put(o, "\\%c", c);
        } else {
            put(o, "%c", c);
        }
    }
    if (quoted) {
        put(o, "\"");
    }
}

/* The shortest %g form that reads back to the same float (or double): 1e-05, 0.1, 10000. */
static void put_real(struct out *o, double v, bool is_f32)
{
    char tmp[40];
    for (int digits = 6; digits <= 17; digits++) {
        snprintf(tmp, sizeof tmp, "%.*g", digits, v);
        double back = strtod(tmp, NULL);
        if (is_f32 && fabs(back) > (double)FLT_MAX && !isinf(v)) {
            continue; /* rounded past the float range: (float)back would be undefined */
        }
        if (isnan(v) || (is_f32 ? (float)back == (float)v : back == v)) {
            break;
        }
    }
    put(o, "%s", tmp);
}

static void put_scalar(struct out *o, int type, const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = (int)lm__gguf_vtype_size(type) - 1; i >= 0; i--) {
        u = (u << 8) | p[i];
    }
    switch (type) {
    case LM_GGUF_U8:
    case LM_GGUF_U16:
    case LM_GGUF_U32:
    case LM_GGUF_U64:
        put(o, "%" PRIu64, u);
        break;
    case LM_GGUF_I8:
        put(o, "%d", (int)(int8_t)u);
        break;
    case LM_GGUF_I16:
        put(o, "%d", (int)(int16_t)u);
        break;
    case LM_GGUF_I32:
        put(o, "%" PRId32, (int32_t)(uint32_t)u);
        break;
    case LM_GGUF_I64:
        put(o, "%" PRId64, (int64_t)u);
        break;
    case LM_GGUF_F32: {
        float f;
        memcpy(&f, p, 4);
        put_real(o, (double)f, true);
        break;
    }
    case LM_GGUF_F64: {
        double d;
        memcpy(&d, p, 8);
        put_real(o, d, false);
        break;
    }
    default: /* bool */
        put(o, "%s", u ? "true" : "false");
    }
}

static void put_value(struct out *o, const lm_gguf *g, int type, const uint8_t *p, bool quoted);

/* An array value: at most 8 elements are listed, longer arrays are summarized. */
static void put_array(struct out *o, const lm_gguf *g, int et, uint64_t n, const uint8_t *p)
{
    if (n > 8) {
        const char *what = et == LM_GGUF_STRING  ? "strings"
                           : et == LM_GGUF_ARRAY ? "arrays"
                                                 : lm__gguf_vtype_name(et);
        put(o, "[%" PRIu64 " %s]", n, what);
        return;
    }
    put(o, "[");
    for (uint64_t i = 0; i < n && !o->cut; i++) {
        put(o, i ? ", " : "");
        put_value(o, g, et, p, true);
        p += lm__gguf_value_bytes(g, et, p);
    }
    put(o, "]");
}

static void put_value(struct out *o, const lm_gguf *g, int type, const uint8_t *p, bool quoted)
{
    uint64_t ls = lm__gguf_len_size(g);
    if (type == LM_GGUF_STRING) {
        put_str(o, p + ls, lm__gguf_read_len(g, p), quoted);
    } else if (type == LM_GGUF_ARRAY) {
        int et = (int)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 24);
        put_array(o, g, et, lm__gguf_read_len(g, p + 4), p + 4 + ls);
    } else {
        put_scalar(o, type, p);
    }
}

int lm_gguf_kv_format(const lm_gguf *g, int64_t i, char *buf, size_t cap)
{
    const struct lm__gguf_kv *kv = kv_at(g, i);
    struct out o = {.buf = buf, .cap = cap};
    if (!buf || cap < 5) {
        return 0;
    }
    if (!kv) {
        buf[0] = 0;
        return 0;
    }
    if (kv->type == LM_GGUF_STRING) {
        put_str(&o, kv->val, kv->val_len, false);
    } else if (kv->type == LM_GGUF_ARRAY) {
        put_array(&o, g, kv->arr_type, kv->arr_n, kv->val);
    } else {
        put_scalar(&o, kv->type, kv->val);
    }
    if (o.cut) {
        memcpy(buf + o.n, "...", 3);
        o.n += 3;
    }
    buf[o.n] = 0;
    return (int)o.n;
}
