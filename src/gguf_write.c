/*
 * gguf_write.c - writes GGUF v3 files: metadata and tensor infos are collected in memory, then
 * lm_gguf_writer_begin_data writes the header, and the tensor data follow in info order, each
 * padded to the alignment (the strict layout llama.cpp requires, FORMATS.md section 1).
 *
 * The file is written to "<path>.tmp" and renamed into place by lm_gguf_writer_finish, so a
 * reader never sees half a model. Output goes through one large buffer and big tensors are
 * written directly, so writing gigabytes is bound by the disk, not by system calls.
 * Depends on libc and the GGUF reader's internals (to copy values).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf_int.h"

#define OUT_BUF_SIZE (8u << 20)

struct wtensor {
    char name[LM__GGUF_MAX_NAME];
    int type;
    int n_dims;
    int64_t ne[4];    /* ggml order, unused dims 1 */
    uint64_t n_bytes; /* data size */
    uint64_t offset;  /* relative to the data section */
};

struct lm_gguf_writer {
    char *path; /* final name */
    char *tmp;  /* "<path>.tmp", written first */
    int fd;
    char err[LM_ERRBUF_SIZE];
    bool broken;   /* an I/O error happened: every later call fails */
    bool begun;    /* header written */
    bool finished; /* renamed into place */
    uint8_t *kv;   /* the encoded key/value section (kv_len bytes) */
    size_t kv_len, kv_cap;
    char **keys; /* (n_kv) for duplicate detection */
    int64_t n_kv, keys_cap;
    uint32_t alignment;
    struct wtensor *t; /* (n_t) declared tensors */
    int64_t n_t, t_cap;
    int64_t next; /* index of the next tensor whose data is expected */
    uint8_t *buf; /* output buffer (OUT_BUF_SIZE) */
    size_t buf_len;
    uint64_t pos; /* bytes of the file produced so far */
};

static int werr(lm_gguf_writer *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int werr(lm_gguf_writer *w, int code, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(w->err, sizeof w->err, "%s: ", w->path);
    if (n >= 0 && (size_t)n < sizeof w->err) {
        va_start(ap, fmt);
        vsnprintf(w->err + n, sizeof w->err - (size_t)n, fmt, ap);
        va_end(ap);
    }
    if (code == LM_EIO) {
        w->broken = true;
    }
    return code;
}

static int io_err(lm_gguf_writer *w, const char *what)
{
    char msg[128];
    snprintf(msg, sizeof msg, "%s", strerror(errno));
    if (msg[0] >= 'A' && msg[0] <= 'Z') {
        msg[0] = (char)(msg[0] - 'A' + 'a');
    }
    return werr(w, LM_EIO, "%s %s: %s", what, w->tmp, msg);
}

const char *lm_gguf_writer_errmsg(const lm_gguf_writer *w)
{
    return w ? w->err : "out of memory";
}

int lm_gguf_writer_open(const char *path, lm_gguf_writer **out, char *errbuf, size_t errlen)
{
    lm_gguf_writer *w = calloc(1, sizeof *w);
    size_t n = strlen(path);
    *out = NULL;
    if (w) {
        w->fd = -1;
        w->alignment = LM__GGUF_DEFAULT_ALIGN;
        w->path = strdup(path);
        w->tmp = malloc(n + 5);
        w->buf = malloc(OUT_BUF_SIZE);
    }
    if (!w || !w->path || !w->tmp || !w->buf) {
        if (errbuf && errlen) {
            snprintf(errbuf, errlen, "%s: out of memory", path);
        }
        lm_gguf_writer_close(w);
        return LM_ENOMEM;
    }
    snprintf(w->tmp, n + 5, "%s.tmp", path);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (w->fd < 0) {
        int rc = io_err(w, "cannot create");
        if (errbuf && errlen) {
            snprintf(errbuf, errlen, "%s", w->err);
        }
        lm_gguf_writer_close(w);
        return rc;
    }
    *out = w;
    return 0;
}

void lm_gguf_writer_close(lm_gguf_writer *w)
{
    if (!w) {
        return;
    }
    if (w->fd >= 0) {
        close(w->fd);
    }
    if (!w->finished && w->tmp && w->fd >= 0) {
        unlink(w->tmp);
    }
    for (int64_t i = 0; i < w->n_kv; i++) {
        free(w->keys[i]);
    }
    free(w->keys);
    free(w->kv);
    free(w->t);
    free(w->buf);
    free(w->tmp);
    free(w->path);
    free(w);
}

/* ---- the key/value section, encoded in memory -------------------------------------------------
 */

static int kv_put(lm_gguf_writer *w, const void *p, size_t n)
{
    if (n == 0) {
        return 0;
    }
    if (n > w->kv_cap - w->kv_len) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap - w->kv_len < n) {
            if (cap > SIZE_MAX / 2) {
                return werr(w, LM_ENOMEM, "out of memory");
            }
            cap *= 2;
        }
        uint8_t *nb = realloc(w->kv, cap);
        if (!nb) {
            return werr(w, LM_ENOMEM, "out of memory");
        }
        w->kv = nb;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return 0;
}

static int kv_u32(lm_gguf_writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return kv_put(w, b, 4);
}

static int kv_u64(lm_gguf_writer *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    return kv_put(w, b, 8);
}

static int kv_str(lm_gguf_writer *w, const void *s, uint64_t len)
{
    int rc = kv_u64(w, len);
    return rc < 0 ? rc : kv_put(w, s, (size_t)len);
}

/* Checks the key, remembers it, and appends key and value type. */
static int add_key(lm_gguf_writer *w, const char *key, enum lm_gguf_vtype type)
{
    if (w->broken) {
        return LM_EIO;
    }
    if (w->begun) {
        return werr(w, LM_EINVAL, "key '%s' set after the header was written", key ? key : "");
    }
    if (!key || !*key) {
        return werr(w, LM_EINVAL, "empty key");
    }
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->keys[i], key) == 0) {
            return werr(w, LM_EINVAL, "duplicate key '%s'", key);
        }
    }
    if (w->n_kv == w->keys_cap) {
        int64_t cap = w->keys_cap ? w->keys_cap * 2 : 32;
        char **nk = realloc(w->keys, (size_t)cap * sizeof *nk);
        if (!nk) {
            return werr(w, LM_ENOMEM, "out of memory");
        }
        w->keys = nk;
        w->keys_cap = cap;
    }
    w->keys[w->n_kv] = strdup(key);
    if (!w->keys[w->n_kv]) {
        return werr(w, LM_ENOMEM, "out of memory");
    }
    w->n_kv++;
    int rc = kv_str(w, key, strlen(key));
    return rc < 0 ? rc : kv_u32(w, (uint32_t)type);
}

int lm_gguf_writer_set_val(lm_gguf_writer *w, const char *key, enum lm_gguf_vtype type,
                           const void *v)
{
    uint64_t size = lm__gguf_vtype_size(type);
    if (size == 0) {
        return werr(w, LM_EINVAL, "key '%s': %s is not a fixed-size type", key ? key : "",
                    lm__gguf_vtype_name(type));
    }
    if (key && strcmp(key, "general.alignment") == 0) {
        uint32_t a;
        if (type != LM_GGUF_U32) {
            return werr(w, LM_ETYPE, "general.alignment must be u32");
        }
        memcpy(&a, v, 4);
        if (a == 0 || (a & (a - 1)) != 0 || a > LM__GGUF_MAX_ALIGN) {
            return werr(w, LM_EINVAL,
                        "general.alignment %" PRIu32 " is not a power of two up to 1 MiB", a);
        }
    }
    int rc = add_key(w, key, type);
    rc = rc < 0 ? rc : kv_put(w, v, (size_t)size);
    if (rc == 0 && type == LM_GGUF_U32 && strcmp(key, "general.alignment") == 0) {
        memcpy(&w->alignment, v, 4);
    }
    return rc;
}

int lm_gguf_writer_set_u32(lm_gguf_writer *w, const char *key, uint32_t v)
{
    return lm_gguf_writer_set_val(w, key, LM_GGUF_U32, &v);
}

int lm_gguf_writer_set_i32(lm_gguf_writer *w, const char *key, int32_t v)
{
    return lm_gguf_writer_set_val(w, key, LM_GGUF_I32, &v);
}

int lm_gguf_writer_set_f32(lm_gguf_writer *w, const char *key, float v)
{
    return lm_gguf_writer_set_val(w, key, LM_GGUF_F32, &v);
}

int lm_gguf_writer_set_bool(lm_gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return lm_gguf_writer_set_val(w, key, LM_GGUF_BOOL, &b);
}

int lm_gguf_writer_set_str(lm_gguf_writer *w, const char *key, const char *v)
{
    if (!v) {
        return werr(w, LM_EINVAL, "key '%s': NULL string", key ? key : "");
    }
    int rc = add_key(w, key, LM_GGUF_STRING);
    return rc < 0 ? rc : kv_str(w, v, strlen(v));
}

int lm_gguf_writer_set_arr(lm_gguf_writer *w, const char *key, enum lm_gguf_vtype elem,
                           const void *data, uint64_t n)
{
    uint64_t es = lm__gguf_vtype_size(elem);
    if (es == 0 || (n > 0 && !data) || n > SIZE_MAX / es) {
        return werr(w, LM_EINVAL, "key '%s': bad array (element type %s, %" PRIu64 " elements)",
                    key ? key : "", lm__gguf_vtype_name(elem), n);
    }
    int rc = add_key(w, key, LM_GGUF_ARRAY);
    if (rc == 0) {
        rc = kv_u32(w, (uint32_t)elem);
    }
    if (rc == 0) {
        rc = kv_u64(w, n);
    }
    return rc < 0 ? rc : kv_put(w, data, (size_t)(n * es));
}

int lm_gguf_writer_set_arr_str(lm_gguf_writer *w, const char *key, const char *const *v, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        if (!v[i]) {
            return werr(w, LM_EINVAL, "key '%s': string %" PRIu64 " is NULL", key ? key : "", i);
        }
    }
    int rc = add_key(w, key, LM_GGUF_ARRAY);
    if (rc == 0) {
        rc = kv_u32(w, LM_GGUF_STRING);
    }
    if (rc == 0) {
        rc = kv_u64(w, n);
    }
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        rc = kv_str(w, v[i], strlen(v[i]));
    }
    return rc;
}

/* Re-encodes one value of a (validated) reader in v3 form; returns the source bytes consumed. */
static uint64_t copy_value(lm_gguf_writer *w, const lm_gguf *g, int type, const uint8_t *p, int *rc)
{
    uint64_t ls = lm__gguf_len_size(g);
    if (type == LM_GGUF_STRING) {
        uint64_t len = lm__gguf_read_len(g, p);
        *rc = *rc < 0 ? *rc : kv_str(w, p + ls, len);
        return ls + len;
    }
    if (type != LM_GGUF_ARRAY) {
        *rc = *rc < 0 ? *rc : kv_put(w, p, (size_t)lm__gguf_vtype_size(type));
        return lm__gguf_vtype_size(type);
    }
    int et =
        (int)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    uint64_t n = lm__gguf_read_len(g, p + 4), off = 4 + ls;
    *rc = *rc < 0 ? *rc : kv_u32(w, (uint32_t)et);
    *rc = *rc < 0 ? *rc : kv_u64(w, n);
    if (et != LM_GGUF_STRING && et != LM_GGUF_ARRAY) {
        *rc = *rc < 0 ? *rc : kv_put(w, p + off, (size_t)(n * lm__gguf_vtype_size(et)));
        return off + n * lm__gguf_vtype_size(et);
    }
    for (uint64_t i = 0; i < n && *rc == 0; i++) {
        off += copy_value(w, g, et, p + off, rc);
    }
    return off;
}

int lm_gguf_writer_copy_kv(lm_gguf_writer *w, const lm_gguf *g, int64_t i)
{
    if (i < 0 || i >= g->n_kv) {
        return werr(w, LM_ERANGE, "key/value %" PRId64 " is out of range", i);
    }
    const struct lm__gguf_kv *kv = &g->kv[i];
    if (kv->type != LM_GGUF_STRING && kv->type != LM_GGUF_ARRAY) {
        return lm_gguf_writer_set_val(w, kv->key, kv->type, kv->val);
    }
    if (kv->type == LM_GGUF_STRING) {
        int rc = add_key(w, kv->key, LM_GGUF_STRING);
        return rc < 0 ? rc : kv_str(w, kv->val, kv->val_len);
    }
    /* The array header sits just before kv->val: element type, then the count. */
    int rc = add_key(w, kv->key, LM_GGUF_ARRAY);
    copy_value(w, g, LM_GGUF_ARRAY, kv->val - 4 - lm__gguf_len_size(g), &rc);
    return rc;
}

/* ---- tensors ----------------------------------------------------------------------------------
 */

static int tensor_size(lm_gguf_writer *w, struct wtensor *t)
{
    int64_t blk = lm_type_block_size(t->type), bb = lm_type_block_bytes(t->type);
    uint64_t bytes;
    if (t->type < 0 || t->type >= LM_TYPE_COUNT || blk <= 0 || bb <= 0) {
        return werr(w, LM_EINVAL, "tensor '%s': unknown type %d", t->name, t->type);
    }
    if (t->ne[0] % blk != 0) {
        return werr(w, LM_EINVAL,
                    "tensor '%s': ne[0] %" PRId64
                    " is not a multiple of the %s block size %" PRId64,
                    t->name, t->ne[0], lm_type_name(t->type), blk);
    }
    bytes = (uint64_t)(t->ne[0] / blk);
    bool ovf = __builtin_mul_overflow(bytes, (uint64_t)bb, &bytes);
    for (int d = 1; d < 4; d++) {
        ovf = ovf || __builtin_mul_overflow(bytes, (uint64_t)t->ne[d], &bytes);
    }
    if (ovf || bytes > (uint64_t)INT64_MAX / 2) {
        return werr(w, LM_EINVAL, "tensor '%s': size overflows", t->name);
    }
    t->n_bytes = bytes;
    return 0;
}

static int check_tensor_decl(lm_gguf_writer *w, const char *name, int n_dims, const int64_t *ne)
{
    if (w->broken) {
        return LM_EIO;
    }
    if (w->begun) {
        return werr(w, LM_EINVAL, "tensor '%s' declared after the header was written",
                    name ? name : "");
    }
    if (!name || !*name || strlen(name) >= LM__GGUF_MAX_NAME) {
        return werr(w, LM_EINVAL, "tensor name '%s' must be 1 to %d bytes long", name ? name : "",
                    LM__GGUF_MAX_NAME - 1);
    }
    if (n_dims < 1 || n_dims > 4) {
        return werr(w, LM_EINVAL, "tensor '%s': n_dims %d is out of range (1..4)", name, n_dims);
    }
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] <= 0) {
            return werr(w, LM_EINVAL, "tensor '%s': ne[%d] is %" PRId64 " (must be positive)", name,
                        d, ne[d]);
        }
    }
    for (int64_t i = 0; i < w->n_t; i++) {
        if (strcmp(w->t[i].name, name) == 0) {
            return werr(w, LM_EINVAL, "duplicate tensor name '%s'", name);
        }
    }
    return 0;
}

int lm_gguf_writer_add_tensor(lm_gguf_writer *w, const char *name, int type, int n_dims,
                              const int64_t *ne)
{
    int rc = check_tensor_decl(w, name, n_dims, ne);
    if (rc < 0) {
        return rc;
    }
    if (w->n_t == w->t_cap) {
        int64_t cap = w->t_cap ? w->t_cap * 2 : 64;
        struct wtensor *nt = realloc(w->t, (size_t)cap * sizeof *nt);
        if (!nt) {
            return werr(w, LM_ENOMEM, "out of memory");
        }
        w->t = nt;
        w->t_cap = cap;
    }
    struct wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < 4; d++) {
        t->ne[d] = d < n_dims ? ne[d] : 1;
    }
    rc = tensor_size(w, t);
    if (rc == 0) {
        w->n_t++;
    }
    return rc;
}

/* ---- output -----------------------------------------------------------------------------------
 */

static int write_all(lm_gguf_writer *w, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        ssize_t k = write(w->fd, p, chunk);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return io_err(w, "cannot write");
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int flush(lm_gguf_writer *w)
{
    int rc = write_all(w, w->buf, w->buf_len);
    w->buf_len = 0;
    return rc;
}

/* Buffered output; big blocks bypass the buffer. */
static int out(lm_gguf_writer *w, const void *p, uint64_t n)
{
    int rc = 0;
    w->pos += n;
    if (n > OUT_BUF_SIZE - w->buf_len) {
        rc = flush(w);
        if (rc == 0 && n >= OUT_BUF_SIZE / 2) {
            return write_all(w, p, (size_t)n);
        }
    }
    if (rc == 0) {
        memcpy(w->buf + w->buf_len, p, (size_t)n);
        w->buf_len += (size_t)n;
    }
    return rc;
}

static int out_u64(lm_gguf_writer *w, uint64_t v, int nbytes)
{
    uint8_t b[8];
    for (int i = 0; i < nbytes; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    return out(w, b, (uint64_t)nbytes);
}

static int out_pad(lm_gguf_writer *w)
{
    static const uint8_t zeros[4096];
    uint64_t n = (w->alignment - w->pos % w->alignment) % w->alignment;
    int rc = 0;
    while (rc == 0 && n > 0) {
        uint64_t k = n > sizeof zeros ? sizeof zeros : n;
        rc = out(w, zeros, k);
        n -= k;
    }
    return rc;
}

static int out_tensor_info(lm_gguf_writer *w, const struct wtensor *t)
{
    size_t len = strlen(t->name);
    int rc = out_u64(w, len, 8);
    rc = rc < 0 ? rc : out(w, t->name, len);
    rc = rc < 0 ? rc : out_u64(w, (uint64_t)t->n_dims, 4);
    for (int d = 0; d < t->n_dims && rc == 0; d++) {
        rc = out_u64(w, (uint64_t)t->ne[d], 8);
    }
    rc = rc < 0 ? rc : out_u64(w, (uint64_t)t->type, 4);
    return rc < 0 ? rc : out_u64(w, t->offset, 8);
}

int lm_gguf_writer_begin_data(lm_gguf_writer *w)
{
    uint64_t off = 0;
    int rc;
    if (w->broken) {
        return LM_EIO;
    }
    if (w->begun) {
        return werr(w, LM_EINVAL, "begin_data called twice");
    }
    w->begun = true;
    for (int64_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        off += (w->t[i].n_bytes + w->alignment - 1) / w->alignment * w->alignment;
    }
    rc = out(w, "GGUF", 4);
    rc = rc < 0 ? rc : out_u64(w, 3, 4);
    rc = rc < 0 ? rc : out_u64(w, (uint64_t)w->n_t, 8);
    rc = rc < 0 ? rc : out_u64(w, (uint64_t)w->n_kv, 8);
    rc = rc < 0 ? rc : out(w, w->kv, w->kv_len);
    for (int64_t i = 0; i < w->n_t && rc == 0; i++) {
        rc = out_tensor_info(w, &w->t[i]);
    }
    if (rc == 0 && w->n_t > 0) {
        rc = out_pad(w);
    }
    return rc;
}

int lm_gguf_writer_write_tensor_data(lm_gguf_writer *w, const void *data, uint64_t n_bytes)
{
    if (w->broken) {
        return LM_EIO;
    }
    if (!w->begun) {
        return werr(w, LM_EINVAL, "tensor data written before begin_data");
    }
    if (w->next >= w->n_t) {
        return werr(w, LM_EINVAL, "more tensor data than the %" PRId64 " declared tensors", w->n_t);
    }
    const struct wtensor *t = &w->t[w->next];
    if (n_bytes != t->n_bytes) {
        return werr(w, LM_EINVAL, "tensor '%s': got %" PRIu64 " bytes of data, expected %" PRIu64,
                    t->name, n_bytes, t->n_bytes);
    }
    w->next++;
    int rc = out(w, data, n_bytes);
    return rc < 0 ? rc : out_pad(w);
}

int lm_gguf_writer_finish(lm_gguf_writer *w)
{
    int rc = 0;
    if (w->broken) {
        return LM_EIO;
    }
    if (!w->begun) {
        rc = lm_gguf_writer_begin_data(w);
    }
    if (rc == 0 && w->next != w->n_t) {
        return werr(w, LM_EINVAL, "only %" PRId64 " of %" PRId64 " tensors were written", w->next,
                    w->n_t);
    }
    rc = rc < 0 ? rc : flush(w);
    if (rc < 0) {
        return rc;
    }
    if (close(w->fd) != 0) {
        w->fd = -1;
        unlink(w->tmp);
        return io_err(w, "cannot close");
    }
    w->fd = -1;
    if (rename(w->tmp, w->path) != 0) {
        rc = io_err(w, "cannot rename");
        unlink(w->tmp);
        return rc;
    }
    w->finished = true;
    return 0;
}
