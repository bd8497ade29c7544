/*
 * npy.c - NumPy .npy files (see npy.h): version 1.0 written, 1.0 / 2.0 / 3.0 read.
 *
 * Layout: magic "\x93NUMPY", major u8, minor u8, header length (u16 LE in 1.0, u32 LE in 2.0 and
 * 3.0), then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (r, c), }
 * padded with spaces and a final '\n' so the data start is 64-byte aligned, then the raw
 * C-order little-endian data. Files read are untrusted: the header is parsed with a small
 * bounded scanner and the data size must equal what the shape says.
 */
#include "npy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lm.h"
#include "vw.h"

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static int npy_err(char *err, size_t errlen, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int npy_err(char *err, size_t errlen, const char *name, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0) {
        return -1;
    }
    int n = snprintf(err, errlen, "%s: ", name);
    if (n >= 0 && (size_t)n < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- writing ----------------------------------------------------------------------------------
 */

/* The 1.0 header for a float32 array: magic to final '\n', 64-byte aligned. Returns its size. */
static size_t npy_header(char *h, int n_dims, const int64_t *shape)
{
    char dims[128];
    int n = 0;
    for (int d = 0; d < n_dims; d++) {
        n += snprintf(dims + n, sizeof dims - (size_t)n, "%" PRId64 ",%s", shape[d],
                      d + 1 < n_dims ? " " : "");
    }
    if (n_dims > 1) {
        dims[n - 1] = 0; /* numpy writes (3,) for one dimension but (3, 4) for more */
    }
    char dict[256];
    int len = snprintf(dict, sizeof dict,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    size_t total = 10 + (size_t)len + 1;
    size_t padded = (total + 63) / 64 * 64;
    memcpy(h, npy_magic, 6);
    h[6] = 1;
    h[7] = 0;
    h[8] = (char)((padded - 10) & 0xff);
    h[9] = (char)((padded - 10) >> 8);
    memcpy(h + 10, dict, (size_t)len);
    memset(h + 10 + len, ' ', padded - total);
    h[padded - 1] = '\n';
    return padded;
}

int vw_npy_write_f32(const char *path, const float *data, int n_dims, const int64_t *shape,
                     char *err, size_t errlen)
{
    char h[320];
    uint64_t count = 1;
    if (n_dims < 1 || n_dims > 4) {
        return npy_err(err, errlen, path, "n_dims %d is out of range (1..4)", n_dims);
    }
    for (int d = 0; d < n_dims; d++) {
        if (shape[d] < 0 || __builtin_mul_overflow(count, (uint64_t)shape[d], &count) ||
            count > SIZE_MAX / sizeof(float)) {
            return npy_err(err, errlen, path, "bad shape");
        }
    }
    size_t hl = npy_header(h, n_dims, shape);
    FILE *f = fopen(path, "wb");
    if (!f) {
        return npy_err(err, errlen, path, "cannot create: %s", vw_strerror(errno));
    }
    bool ok = fwrite(h, 1, hl, f) == hl;
    ok = ok && (count == 0 || fwrite(data, sizeof(float), (size_t)count, f) == count);
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        return npy_err(err, errlen, path, "write error");
    }
    return 0;
}

/* ---- the header dict --------------------------------------------------------------------------
 */

struct scan {
    const char *p, *end;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
        s->p++;
    }
}

static bool eat(struct scan *s, char c)
{
    skip_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

/* A quoted Python string without escapes into buf; false if malformed or too long. */
static bool scan_str(struct scan *s, char *buf, size_t cap)
{
    skip_ws(s);
    if (s->p >= s->end || (*s->p != '\'' && *s->p != '"')) {
        return false;
    }
    char q = *s->p++;
    size_t n = 0;
    while (s->p < s->end && *s->p != q) {
        if (*s->p == '\\' || n + 1 >= cap) {
            return false;
        }
        buf[n++] = *s->p++;
    }
    if (s->p >= s->end) {
        return false;
    }
    s->p++;
    buf[n] = 0;
    return true;
}

/* (d0, d1, ...): non-negative dims, the first 4 stored; *n_dims = 5 flags "too many". */
static bool scan_shape(struct scan *s, int *n_dims, int64_t shape[4])
{
    *n_dims = 0;
    if (!eat(s, '(')) {
        return false;
    }
    for (;;) {
        if (eat(s, ')')) {
            return true;
        }
        skip_ws(s);
        int64_t v = 0;
        const char *start = s->p;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) {
                return false;
            }
            v = v * 10 + (*s->p++ - '0');
        }
        if (s->p == start) {
            return false;
        }
        if (*n_dims < 4) {
            shape[*n_dims] = v;
        }
        *n_dims += *n_dims < 5; /* 5 stands for "more than 4" */
        if (!eat(s, ',')) {
            return eat(s, ')');
        }
    }
}

struct npy_hdr {
    char descr[16];
    int fortran; /* -1 = missing */
    int n_dims;  /* -1 = missing; 5 = too many */
    int64_t shape[4];
};

static bool scan_entry(struct scan *s, struct npy_hdr *h, char *key, size_t cap)
{
    if (!scan_str(s, key, cap) || !eat(s, ':')) {
        return false;
    }
    if (strcmp(key, "descr") == 0) {
        return scan_str(s, h->descr, sizeof h->descr);
    }
    if (strcmp(key, "fortran_order") == 0) {
        skip_ws(s);
        size_t left = (size_t)(s->end - s->p);
        h->fortran = left >= 4 && memcmp(s->p, "True", 4) == 0    ? 1
                     : left >= 5 && memcmp(s->p, "False", 5) == 0 ? 0
                                                                  : -2;
        s->p += h->fortran == 1 ? 4 : h->fortran == 0 ? 5 : 0;
        return h->fortran >= 0;
    }
    if (strcmp(key, "shape") == 0) {
        return scan_shape(s, &h->n_dims, h->shape);
    }
    return true; /* unknown key: the caller reports it */
}

/* Parses the dict; on error writes the reason into why. */
static bool scan_dict(const char *p, size_t len, struct npy_hdr *h, char *why, size_t wcap)
{
    struct scan s = {p, p + len};
    char key[32];
    *h = (struct npy_hdr){.fortran = -1, .n_dims = -1};
    if (!eat(&s, '{')) {
        snprintf(why, wcap, "header is not a dict");
        return false;
    }
    while (!eat(&s, '}')) {
        if (!scan_entry(&s, h, key, sizeof key)) {
            snprintf(why, wcap, "malformed header");
            return false;
        }
        if (strcmp(key, "descr") && strcmp(key, "fortran_order") && strcmp(key, "shape")) {
            snprintf(why, wcap, "unexpected key '%s' in header", key);
            return false;
        }
        if (eat(&s, ',')) {
            continue;
        }
        skip_ws(&s);
        if (s.p >= s.end || *s.p != '}') {
            snprintf(why, wcap, "malformed header");
            return false;
        }
    }
    if (!h->descr[0] || h->fortran < 0 || h->n_dims < 0) {
        snprintf(why, wcap, "header lacks %s",
                 !h->descr[0]     ? "'descr'"
                 : h->fortran < 0 ? "'fortran_order'"
                                  : "'shape'");
        return false;
    }
    return true;
}

/* ---- reading ----------------------------------------------------------------------------------
 */

/* Element size of a supported dtype, or 0 with the reason in why. */
static size_t dtype_size(const char *descr, char *why, size_t wcap)
{
    static const char *const ok[3] = {"<f4", "<f2", "<f8"};
    static const size_t sizes[3] = {4, 2, 8};
    for (int i = 0; i < 3; i++) {
        if (strcmp(descr, ok[i]) == 0) {
            return sizes[i];
        }
    }
    if (descr[0] == '>') {
        snprintf(why, wcap, "big-endian dtype '%s' is not supported", descr);
    } else {
        snprintf(why, wcap, "dtype '%s' is not supported (float32, float16 or float64)", descr);
    }
    return 0;
}

static void convert(const uint8_t *src, size_t es, uint64_t count, float *dst)
{
    for (uint64_t i = 0; i < count; i++) {
        if (es == 4) {
            memcpy(&dst[i], src + 4 * i, 4);
        } else if (es == 2) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = lm_f16_to_f32(h);
        } else {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
    }
}

/* Magic, version and header bounds: *hdr and *hlen locate the dict. */
static int parse_prefix(const uint8_t *b, size_t len, const char *name, const char **hdr,
                        size_t *hlen, char *err, size_t errlen)
{
    if (len < 10 || memcmp(b, npy_magic, 6) != 0) {
        return npy_err(err, errlen, name, "not a .npy file (%s)",
                       len < 10 ? "too short" : "bad magic");
    }
    size_t start = b[6] == 1 ? 10 : 12;
    if (b[6] < 1 || b[6] > 3) {
        return npy_err(err, errlen, name, "unsupported .npy version %d.%d", b[6], b[7]);
    }
    if (start > len) {
        return npy_err(err, errlen, name, "truncated header");
    }
    *hlen = b[6] == 1
                ? (size_t)b[8] | (size_t)b[9] << 8
                : (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    if (*hlen > len - start) {
        return npy_err(err, errlen, name, "header length %zu runs past end of file", *hlen);
    }
    *hdr = (const char *)b + start;
    return 0;
}

int vw_npy_parse_f32(const void *buf, size_t len, const char *name, float **data, int *n_dims,
                     int64_t shape[4], char *err, size_t errlen)
{
    const char *hdr = NULL;
    size_t hlen = 0, es;
    char why[128];
    struct npy_hdr h;
    uint64_t count = 1;
    *data = NULL;
    if (parse_prefix(buf, len, name, &hdr, &hlen, err, errlen) < 0) {
        return -1;
    }
    if (!scan_dict(hdr, hlen, &h, why, sizeof why) ||
        !(es = dtype_size(h.descr, why, sizeof why))) {
        return npy_err(err, errlen, name, "%s", why);
    }
    if (h.fortran) {
        return npy_err(err, errlen, name, "fortran order is not supported");
    }
    if (h.n_dims > 4) {
        return npy_err(err, errlen, name, "more than 4 dimensions");
    }
    for (int d = 0; d < h.n_dims; d++) {
        if (__builtin_mul_overflow(count, (uint64_t)h.shape[d], &count) || count > UINT64_MAX / 8) {
            return npy_err(err, errlen, name, "shape overflows");
        }
    }
    size_t off = (size_t)(hdr + hlen - (const char *)buf);
    if ((uint64_t)(len - off) != count * es) {
        return npy_err(err, errlen, name, "data is %zu bytes but the shape needs %" PRIu64,
                       len - off, count * es);
    }
    *data = malloc(count ? (size_t)count * sizeof(float) : 1);
    if (!*data) {
        return npy_err(err, errlen, name, "out of memory");
    }
    convert((const uint8_t *)buf + off, es, count, *data);
    *n_dims = h.n_dims;
    for (int d = 0; d < 4; d++) {
        shape[d] = d < h.n_dims ? h.shape[d] : 1;
    }
    return 0;
}

int vw_npy_read_f32(const char *path, float **data, int *n_dims, int64_t shape[4], char *err,
                    size_t errlen)
{
    struct stat st;
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        return npy_err(err, errlen, path, "cannot open: %s", vw_strerror(errno));
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return npy_err(err, errlen, path, "not a regular file");
    }
    size_t len = (size_t)st.st_size;
    uint8_t *b = malloc(len ? len : 1);
    bool ok = b && fread(b, 1, len, f) == len;
    fclose(f);
    int rc = ok ? vw_npy_parse_f32(b, len, path, data, n_dims, shape, err, errlen)
                : npy_err(err, errlen, path, b ? "read error" : "out of memory");
    free(b);
    return rc;
}
