/*
 * trc_sqlfn.c - the tensor SQL functions (t_shape, t_stat, t_at, t_slice, t_maxabs, t_nmse,
 * t_cos, t_ulp, t_equal, t_topk, t_dot), registered on any connection by trc_sql_register: the
 * reader's, the viewer's, or a foreign sqlite3 shell through the loadable extension. They hold no
 * state; each call resolves its tensor arguments through trc_tload.c (the same verified path as
 * the reader) on the calling connection. A tensor argument is an id (integer or text) in the main
 * schema, 'name.id' for a trace attached as `name`, or a blob of raw little-endian f32. NULL
 * arguments, and tensors recorded as stats only, give NULL. trc_sqlhelp.c documents them.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trc_int.h"

/* ---- arguments ----------------------------------------------------------------------------- */

/* Parses "123" or "schema.123". */
static int parse_ref(const char *s, char *schema, size_t cap, int64_t *id)
{
    const char *dot = strrchr(s, '.');
    const char *num = dot ? dot + 1 : s;
    size_t sl = dot ? (size_t)(dot - s) : 0;
    if (dot && (sl == 0 || sl >= cap)) {
        return -1;
    }
    snprintf(schema, cap, "%.*s", dot ? (int)sl : 4, dot ? s : "main");
    char *end;
    long long v = strtoll(num, &end, 10);
    if (end == num || *end || v < 0) {
        return -1;
    }
    *id = v;
    return 0;
}

static int from_blob(sqlite3_value *v, struct trc__tensor *t)
{
    int len = sqlite3_value_bytes(v);
    const void *p = sqlite3_value_blob(v);
    if (len % 4 != 0) {
        return -1;
    }
    t->dtype = TRC_DTYPE_F32;
    t->n_dims = 1;
    t->shape[0] = t->n_elems = t->n_stored = len / 4;
    t->nbytes = len;
    t->has_data = 1;
    t->id = -1;
    t->raw = malloc(len ? (size_t)len : 1);
    if (!t->raw) {
        return -2;
    }
    if (len) {
        memcpy(t->raw, p, (size_t)len);
    }
    trc__hash_hex(trc__hash(t->raw, (size_t)len), t->hash);
    trc__stats(t->raw, TRC_DTYPE_F32, (size_t)t->n_stored, &t->st);
    return 0;
}

/* Resolves argument v: 1 = tensor loaded (release it), 0 = result is NULL, -1 = error set. */
static int get_tensor(sqlite3_context *ctx, const char *fn, sqlite3_value *v, int want_data,
                      struct trc__tensor *t)
{
    char schema[72];
    char msg[TRC__MSG_SIZE + 64];
    int64_t id = 0;
    memset(t, 0, sizeof *t);
    switch (sqlite3_value_type(v)) {
    case SQLITE_NULL:
        return 0;
    case SQLITE_BLOB: {
        int rc = from_blob(v, t);
        if (rc < 0) {
            snprintf(msg, sizeof msg,
                     "%s: a blob argument must hold little-endian f32 values "
                     "(length a multiple of 4)",
                     fn);
            sqlite3_result_error(ctx, msg, -1);
        }
        return rc < 0 ? -1 : 1;
    }
    case SQLITE_INTEGER:
        snprintf(schema, sizeof schema, "main");
        id = sqlite3_value_int64(v);
        break;
    default: {
        const char *s = (const char *)sqlite3_value_text(v);
        if (!s || parse_ref(s, schema, sizeof schema, &id) < 0) {
            snprintf(msg, sizeof msg,
                     "%s: bad tensor reference '%.64s' (want an id, 'schema.id' "
                     "or an f32 blob)",
                     fn, s ? s : "");
            sqlite3_result_error(ctx, msg, -1);
            return -1;
        }
    }
    }
    char m[TRC__MSG_SIZE];
    int rc = trc__tensor_load(sqlite3_context_db_handle(ctx), schema, id, want_data, t, NULL, m,
                              sizeof m);
    if (rc < 0) {
        trc__tensor_release(t);
        snprintf(msg, sizeof msg, "%s: %s", fn, m);
        sqlite3_result_error(ctx, msg, -1);
        return -1;
    }
    if (want_data && !t->has_data) {
        trc__tensor_release(t);
        return 0;
    }
    return 1;
}

__attribute__((format(printf, 2, 3))) static void errorf(sqlite3_context *ctx, const char *fmt, ...)
{
    char msg[TRC__MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sqlite3_result_error(ctx, msg, -1);
}

/* Element at stored position i, exact (i32 stays integral). */
static double stored_at(const struct trc__tensor *t, int64_t i)
{
    const uint8_t *p = t->raw;
    if (t->dtype == TRC_DTYPE_I32) {
        int32_t v;
        memcpy(&v, p + 4 * i, 4);
        return (double)v;
    }
    float f;
    trc__to_f32(&f, p + (size_t)i * trc__dtype_size(t->dtype), t->dtype, 1);
    return (double)f;
}

/* Stored position of flat index `flat`, or -1 when a partial tensor does not hold it. */
static int64_t stored_pos(const struct trc__tensor *t, int64_t flat)
{
    if (!t->partial) {
        return flat;
    }
    int64_t lo = 0;
    int64_t hi = t->n_stored;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (t->known[mid] < flat) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < t->n_stored && t->known[lo] == flat ? lo : -1;
}

/* ---- a growing string for JSON results ----------------------------------------------------- */

struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* A number as JSON: integers exactly, f32 values with 9 significant digits, NaN/Inf as null. */
static void sb_num(struct sbuf *b, double v, int integral)
{
    char tmp[40];
    if (!isfinite(v)) {
        sb_str(b, "null");
        return;
    }
    if (integral) {
        snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    } else {
        snprintf(tmp, sizeof tmp, "%.9g", v);
    }
    sb_str(b, tmp);
}

static void sb_result(sqlite3_context *ctx, struct sbuf *b)
{
    if (b->oom) {
        sqlite3_result_error_nomem(ctx);
        free(b->p);
        return;
    }
    if (!b->p) {
        sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
        return;
    }
    sqlite3_result_text(ctx, b->p, (int)b->n, free);
}

static void shape_json(const struct trc__tensor *t, char *buf, size_t cap)
{
    trc__shape_json(buf, cap, t->n_dims, t->shape);
}

/* ---- header-only functions ----------------------------------------------------------------- */

static void fn_shape(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct trc__tensor t;
    char buf[96];
    (void)argc;
    if (get_tensor(ctx, "t_shape", argv[0], 0, &t) == 1) {
        shape_json(&t, buf, sizeof buf);
        sqlite3_result_text(ctx, buf, -1, SQLITE_TRANSIENT);
    }
    trc__tensor_release(&t);
}

static void fn_stat(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct trc__tensor t;
    (void)argc;
    const char *what = (const char *)sqlite3_value_text(argv[1]);
    static const char *const names[] = {"min", "max", "mean",  "rms",
                                        "nan", "inf", "n_nan", "n_inf"};
    int k = -1;
    for (int i = 0; what && i < 8; i++) {
        if (strcmp(what, names[i]) == 0) {
            k = i;
        }
    }
    if (k < 0) {
        errorf(ctx, "t_stat: unknown statistic '%.32s' (min, max, mean, rms, nan, inf)",
               what ? what : "NULL");
        return;
    }
    if (get_tensor(ctx, "t_stat", argv[0], 0, &t) == 1) {
        double v[4] = {t.st.min, t.st.max, t.st.mean, t.st.rms};
        if (k < 4) {
            if (isnan(v[k])) {
                sqlite3_result_null(ctx);
            } else {
                sqlite3_result_double(ctx, v[k]);
            }
        } else {
            sqlite3_result_int64(ctx, (k % 2 == 0) ? t.st.n_nan : t.st.n_inf);
        }
    }
    trc__tensor_release(&t);
}

static bool same_shape(const struct trc__tensor *a, const struct trc__tensor *b)
{
    if (a->id < 0 || b->id < 0) { /* a blob is 1-D: only the element count must agree */
        return a->n_elems == b->n_elems;
    }
    if (a->n_dims != b->n_dims) {
        return false;
    }
    for (int d = 0; d < a->n_dims; d++) {
        if (a->shape[d] != b->shape[d]) {
            return false;
        }
    }
    return true;
}

static void fn_equal(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct trc__tensor a;
    struct trc__tensor b;
    (void)argc;
    int ra = get_tensor(ctx, "t_equal", argv[0], 0, &a);
    int rb = ra == 1 ? get_tensor(ctx, "t_equal", argv[1], 0, &b) : 0;
    if (ra == 1 && rb == 1) {
        bool eq = a.dtype == b.dtype && same_shape(&a, &b) && a.partial == b.partial &&
                  a.n_stored == b.n_stored && strcmp(a.hash, b.hash) == 0 &&
                  (!a.partial || memcmp(a.known, b.known, (size_t)a.n_stored * 8) == 0);
        sqlite3_result_int(ctx, eq);
    }
    if (ra == 1) {
        trc__tensor_release(&a);
    }
    if (rb == 1) {
        trc__tensor_release(&b);
    }
}

/* ---- element access ------------------------------------------------------------------------ */

/* Normalizes index i (negative counts from the end) into [0, size); -1 when out of range. */
static int64_t norm_index(int64_t i, int64_t size)
{
    if (i < 0) {
        i += size;
    }
    return i >= 0 && i < size ? i : -1;
}

static void result_elem(sqlite3_context *ctx, const struct trc__tensor *t, int64_t flat)
{
    int64_t pos = stored_pos(t, flat);
    if (pos < 0) {
        sqlite3_result_null(ctx);
    } else if (t->dtype == TRC_DTYPE_I32) {
        sqlite3_result_int64(ctx, (int64_t)stored_at(t, pos));
    } else {
        sqlite3_result_double(ctx, stored_at(t, pos)); /* NaN reads back as NULL */
    }
}

static void fn_at(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct trc__tensor t;
    if (argc < 2) {
        errorf(ctx, "t_at: usage t_at(t, i) (flat index) or t_at(t, i0, i1, ...)");
        return;
    }
    if (get_tensor(ctx, "t_at", argv[0], 1, &t) != 1) {
        return;
    }
    int n_idx = argc - 1;
    int64_t flat = 0;
    if (n_idx != 1 && n_idx != t.n_dims) {
        errorf(ctx, "t_at: tensor has %d dimensions; give 1 flat index or %d indices", t.n_dims,
               t.n_dims);
        goto done;
    }
    for (int k = 0; k < n_idx; k++) {
        int64_t size = n_idx == 1 ? t.n_elems : t.shape[k];
        int64_t i = norm_index(sqlite3_value_int64(argv[k + 1]), size);
        if (sqlite3_value_type(argv[k + 1]) == SQLITE_NULL) {
            sqlite3_result_null(ctx);
            goto done;
        }
        if (i < 0) {
            errorf(ctx, "t_at: index %lld out of range for dimension %d of size %lld",
                   (long long)sqlite3_value_int64(argv[k + 1]), n_idx == 1 ? -1 : k,
                   (long long)size);
            goto done;
        }
        flat = flat * (n_idx == 1 ? 1 : t.shape[k]) + i;
    }
    result_elem(ctx, &t, flat);
done:
    trc__tensor_release(&t);
}

/* One dimension of a slice: an index (dimension dropped) or start, step and count. */
struct dimsel {
    int64_t start, step, count;
    int index;
};

/* Parses "a", ":", "a:b", "a:b:s" (python semantics, positive step) for a dimension. */
static int parse_range(const char *s, int64_t size, struct dimsel *d)
{
    int64_t v[3] = {0, size, 1};
    int given[3] = {0, 0, 0};
    int part = 0;
    const char *p = s;
    while (*p == ' ') {
        p++;
    }
    for (;;) {
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (errno == ERANGE) {
            return -1; /* beyond 64 bits: no tensor has such an index or step */
        }
        if (end != p) {
            v[part] = x;
            given[part] = 1;
        }
        p = end;
        while (*p == ' ') {
            p++;
        }
        if (*p != ':' || part == 2) {
            break;
        }
        part++;
        p++;
    }
    if (*p || v[2] <= 0 || (part == 0 && !given[0])) {
        return -1;
    }
    if (part == 0) {
        d->index = 1;
        d->start = norm_index(v[0], size);
        d->count = 1;
        return d->start < 0 ? -1 : 0;
    }
    for (int k = 0; k < 2; k++) {
        v[k] = v[k] < 0 ? v[k] + size : v[k];
        v[k] = v[k] < 0 ? 0 : v[k] > size ? size : v[k];
    }
    d->index = 0;
    d->start = v[0];
    d->step = v[2];
    d->count = v[1] > v[0] ? (v[1] - v[0] - 1) / v[2] + 1 : 0; /* no overflow for any step */
    return 0;
}

static void emit(struct sbuf *b, const struct trc__tensor *t, const struct dimsel *sel, int dim,
                 int64_t base)
{
    if (dim == t->n_dims) {
        int64_t pos = stored_pos(t, base);
        sb_num(b, pos < 0 ? (double)NAN : stored_at(t, pos), t->dtype == TRC_DTYPE_I32);
        return;
    }
    int64_t stride = 1;
    for (int d = dim + 1; d < t->n_dims; d++) {
        stride *= t->shape[d];
    }
    if (sel[dim].index) {
        emit(b, t, sel, dim + 1, base + sel[dim].start * stride);
        return;
    }
    sb_str(b, "[");
    for (int64_t k = 0; k < sel[dim].count && !b->oom; k++) {
        if (k) {
            sb_str(b, ",");
        }
        emit(b, t, sel, dim + 1, base + (sel[dim].start + k * sel[dim].step) * stride);
    }
    sb_str(b, "]");
}

/* The per-dimension specs of t_slice: one argument per dimension, or one text with commas. */
static int slice_specs(sqlite3_context *ctx, int argc, sqlite3_value **argv,
                       const struct trc__tensor *t, struct dimsel sel[4])
{
    char parts[4][64];
    int n = 0;
    if (argc == 2 && sqlite3_value_type(argv[1]) == SQLITE_TEXT &&
        strchr((const char *)sqlite3_value_text(argv[1]), ',')) {
        const char *s = (const char *)sqlite3_value_text(argv[1]);
        while (n < 5 && s) {
            const char *c = strchr(s, ',');
            int len = c ? (int)(c - s) : (int)strlen(s);
            if (n < 4) {
                snprintf(parts[n], sizeof parts[n], "%.*s", len > 63 ? 63 : len, s);
            }
            n++;
            s = c ? c + 1 : NULL;
        }
    } else {
        for (int k = 1; k < argc; k++) {
            const char *s = (const char *)sqlite3_value_text(argv[k]);
            if (k <= 4) {
                snprintf(parts[k - 1], sizeof parts[k - 1], "%.63s", s ? s : ":");
            }
            n++;
        }
    }
    if (n > t->n_dims) {
        errorf(ctx, "t_slice: %d specs for a tensor of %d dimensions", n, t->n_dims);
        return -1;
    }
    for (int d = 0; d < t->n_dims; d++) {
        if (parse_range(d < n ? parts[d] : ":", t->shape[d], &sel[d]) < 0) {
            errorf(ctx,
                   "t_slice: bad spec '%s' for dimension %d of size %lld (want i, a:b or "
                   "a:b:step)",
                   d < n ? parts[d] : ":", d, (long long)t->shape[d]);
            return -1;
        }
    }
    return 0;
}

static void fn_slice(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct trc__tensor t;
    struct dimsel sel[4];
    if (argc < 1) {
        errorf(ctx, "t_slice: usage t_slice(t, spec...)");
        return;
    }
    if (get_tensor(ctx, "t_slice", argv[0], 1, &t) != 1) {
        return;
    }
    if (slice_specs(ctx, argc, argv, &t, sel) == 0) {
        int64_t total = 1;
        for (int d = 0; d < t.n_dims; d++) {
            total *= sel[d].count;
        }
        if (total > 10000000) {
            errorf(ctx, "t_slice: %lld elements is too many for one result (max 10000000)",
                   (long long)total);
        } else {
            struct sbuf b = {0};
            emit(&b, &t, sel, 0, 0);
            sb_result(ctx, &b);
        }
    }
    trc__tensor_release(&t);
}

/* ---- two-tensor comparisons ---------------------------------------------------------------- */

/* The elements both tensors hold, as two aligned float arrays (malloc'd). 1 ok, 0 NULL result,
 * -1 error (set on ctx). Candidate a, reference b. */
static int load_pair(sqlite3_context *ctx, const char *fn, sqlite3_value **argv, float **va,
                     float **vb, int64_t *n)
{
    struct trc__tensor a;
    struct trc__tensor b;
    int rc = get_tensor(ctx, fn, argv[0], 1, &a);
    if (rc != 1) {
        return rc;
    }
    rc = get_tensor(ctx, fn, argv[1], 1, &b);
    if (rc != 1) {
        trc__tensor_release(&a);
        return rc;
    }
    if (!same_shape(&a, &b)) {
        char sa[96];
        char sb2[96];
        shape_json(&a, sa, sizeof sa);
        shape_json(&b, sb2, sizeof sb2);
        errorf(ctx, "%s: shapes differ: %s vs %s", fn, sa, sb2);
        rc = -1;
        goto done;
    }
    /* walk the stored positions of the sparser tensor (all elements when neither is partial) */
    const struct trc__tensor *x = (b.partial && (!a.partial || b.n_stored < a.n_stored)) ? &b : &a;
    const struct trc__tensor *y = x == &a ? &b : &a;
    *va = malloc((size_t)x->n_stored * sizeof(float) + 4);
    *vb = malloc((size_t)x->n_stored * sizeof(float) + 4);
    if (!*va || !*vb) {
        free(*va);
        free(*vb);
        sqlite3_result_error_nomem(ctx);
        rc = -1;
        goto done;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < x->n_stored; i++) {
        int64_t flat = x->partial ? x->known[i] : i;
        int64_t j = stored_pos(y, flat);
        if (j >= 0) {
            float fx = (float)stored_at(x, i);
            float fy = (float)stored_at(y, j);
            (*va)[k] = x == &a ? fx : fy;
            (*vb)[k] = x == &a ? fy : fx;
            k++;
        }
    }
    *n = k;
    rc = 1;
done:
    trc__tensor_release(&a);
    trc__tensor_release(&b);
    return rc;
}

enum metric { M_MAXABS, M_NMSE, M_COS, M_ULP };

/* f32 bits mapped to a monotonic integer line: +0 and -0 meet at 0. */
static int64_t ulp_key(float f)
{
    int32_t i;
    memcpy(&i, &f, 4);
    return i < 0 ? (int64_t)INT32_MIN - i : (int64_t)i;
}

static void metric(sqlite3_context *ctx, const char *fn, sqlite3_value **argv, enum metric m)
{
    float *a = NULL;
    float *b = NULL;
    int64_t n = 0;
    if (load_pair(ctx, fn, argv, &a, &b, &n) != 1) {
        return;
    }
    double s0 = 0.0; /* maxabs | sum d^2 | a.b | max ulp */
    double s1 = 0.0; /* sum b^2 | a.a */
    double s2 = 0.0; /* b.b */
    bool nan = false;
    for (int64_t i = 0; i < n; i++) {
        double x = (double)a[i];
        double y = (double)b[i];
        if (isinf(x) && x == y) {
            continue; /* matching infinities (the causal mask's -inf) agree exactly */
        }
        if (m == M_MAXABS) {
            nan |= isnan(x - y) && !(isnan(x) && isnan(y));
            s0 = fabs(x - y) > s0 ? fabs(x - y) : s0;
        } else if (m == M_NMSE) {
            s0 += (x - y) * (x - y);
            s1 += y * y;
        } else if (m == M_COS) {
            s0 += x * y;
            s1 += x * x;
            s2 += y * y;
        } else {
            int64_t d = ulp_key(a[i]) - ulp_key(b[i]);
            s0 = (double)(d < 0 ? -d : d) > s0 ? (double)(d < 0 ? -d : d) : s0;
        }
    }
    if (n == 0 || (m == M_MAXABS && nan)) {
        sqlite3_result_null(ctx);
    } else if (m == M_ULP) {
        sqlite3_result_int64(ctx, (int64_t)s0);
    } else if (m == M_NMSE) {
        sqlite3_result_double(ctx, s1 > 0.0 ? s0 / s1 : (s0 == 0.0 ? 0.0 : (double)INFINITY));
    } else if (m == M_COS) {
        if (s1 > 0.0 && s2 > 0.0) {
            sqlite3_result_double(ctx, s0 / (sqrt(s1) * sqrt(s2)));
        } else {
            sqlite3_result_null(ctx);
        }
    } else {
        sqlite3_result_double(ctx, s0);
    }
    free(a);
    free(b);
}

static void fn_maxabs(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    metric(ctx, "t_maxabs", argv, M_MAXABS);
}

static void fn_nmse(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    metric(ctx, "t_nmse", argv, M_NMSE);
}

static void fn_cos(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    metric(ctx, "t_cos", argv, M_COS);
}

static void fn_ulp(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    metric(ctx, "t_ulp", argv, M_ULP);
}

/* ---- t_topk, t_dot ------------------------------------------------------------------------- */

struct iv {
    int64_t i;
    double v;
};

static int iv_cmp(const void *pa, const void *pb)
{
    const struct iv *a = pa;
    const struct iv *b = pb;
    if (a->v != b->v) {
        return a->v > b->v ? -1 : 1;
    }
    return a->i < b->i ? -1 : a->i > b->i;
}

static void fn_topk(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct trc__tensor t;
    (void)argc;
    int64_t k = sqlite3_value_int64(argv[1]);
    if (sqlite3_value_type(argv[1]) != SQLITE_INTEGER || k < 1 || k > 1000000) {
        errorf(ctx, "t_topk: k must be an integer in 1..1000000");
        return;
    }
    if (get_tensor(ctx, "t_topk", argv[0], 1, &t) != 1) {
        return;
    }
    struct iv *all = malloc((size_t)t.n_stored * sizeof *all + sizeof *all);
    if (!all) {
        sqlite3_result_error_nomem(ctx);
        trc__tensor_release(&t);
        return;
    }
    int64_t n = 0;
    for (int64_t i = 0; i < t.n_stored; i++) {
        double v = stored_at(&t, i);
        if (!isnan(v)) {
            all[n++] = (struct iv){t.partial ? t.known[i] : i, v};
        }
    }
    qsort(all, (size_t)n, sizeof *all, iv_cmp);
    struct sbuf b = {0};
    sb_str(&b, "[");
    for (int64_t i = 0; i < n && i < k; i++) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%s[%lld,", i ? "," : "", (long long)all[i].i);
        sb_str(&b, tmp);
        sb_num(&b, all[i].v, t.dtype == TRC_DTYPE_I32);
        sb_str(&b, "]");
    }
    sb_str(&b, "]");
    sb_result(ctx, &b);
    free(all);
    trc__tensor_release(&t);
}

/* A JSON array of numbers into a malloc'd double array. */
static int parse_vec(const char *s, double **out, int64_t *n)
{
    int64_t cap = 64;
    int64_t k = 0;
    double *v = malloc((size_t)cap * sizeof *v);
    const char *p = s;
    while (v && (*p == ' ' || *p == '\n' || *p == '\t')) {
        p++;
    }
    if (!v || *p++ != '[') {
        free(v);
        return -1;
    }
    while (*p == ' ') {
        p++;
    }
    while (*p != ']') {
        char *end;
        double x = strtod(p, &end);
        if (end == p || isnan(x) || isinf(x)) {
            free(v);
            return -1;
        }
        if (k == cap) {
            double *nv = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            if (!nv) {
                free(v);
                return -1;
            }
            v = nv;
        }
        v[k++] = x;
        p = end;
        while (*p == ' ') {
            p++;
        }
        if (*p == ',') {
            p++;
        } else if (*p != ']') {
            free(v);
            return -1;
        }
    }
    *out = v;
    *n = k;
    return 0;
}

/* The vector argument of t_dot: JSON text, or a full tensor. 1 ok, 0 NULL, -1 error. */
static int load_vec(sqlite3_context *ctx, sqlite3_value *arg, double **v, int64_t *m)
{
    const char *s = (const char *)sqlite3_value_text(arg);
    if (sqlite3_value_type(arg) == SQLITE_TEXT && s && strchr(s, '[')) {
        if (parse_vec(s, v, m) < 0) {
            errorf(ctx, "t_dot: bad vector (want a JSON array of finite numbers)");
            return -1;
        }
        return 1;
    }
    struct trc__tensor u;
    int rc = get_tensor(ctx, "t_dot", arg, 1, &u);
    if (rc == 1 && u.partial) {
        errorf(ctx, "t_dot: tensor %lld is partial", (long long)u.id);
        rc = -1;
    }
    if (rc == 1) {
        *v = malloc((size_t)u.n_stored * sizeof **v + 8);
        for (int64_t i = 0; *v && i < u.n_stored; i++) {
            (*v)[i] = stored_at(&u, i);
        }
        *m = u.n_stored;
        if (!*v) {
            sqlite3_result_error_nomem(ctx);
            rc = -1;
        }
    }
    trc__tensor_release(&u);
    return rc;
}

static void fn_dot(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct trc__tensor t;
    double *v = NULL;
    int64_t m = 0;
    (void)argc;
    if (get_tensor(ctx, "t_dot", argv[0], 1, &t) != 1) {
        return;
    }
    if (t.partial) {
        errorf(ctx, "t_dot: tensor %lld is partial", (long long)t.id);
    } else if (load_vec(ctx, argv[1], &v, &m) == 1) {
        int64_t last = t.shape[t.n_dims - 1];
        if (m == t.n_elems || (m == last && m > 0)) {
            int64_t rows = m == t.n_elems ? 1 : t.n_elems / m;
            struct sbuf b = {0};
            double r0 = 0.0;
            for (int64_t r = 0; r < rows; r++) {
                double s = 0.0;
                for (int64_t i = 0; i < m; i++) {
                    s += stored_at(&t, r * m + i) * v[i];
                }
                r0 = s;
                sb_str(&b, r ? "," : "[");
                sb_num(&b, s, 0);
            }
            sb_str(&b, "]");
            if (m == t.n_elems) {
                free(b.p);
                sqlite3_result_double(ctx, r0);
            } else {
                sb_result(ctx, &b);
            }
        } else {
            errorf(ctx,
                   "t_dot: vector of %lld values fits neither the tensor (%lld elements) "
                   "nor its rows (%lld)",
                   (long long)m, (long long)t.n_elems, (long long)last);
        }
    }
    free(v);
    trc__tensor_release(&t);
}

/* ---- registration -------------------------------------------------------------------------- */

int trc_sql_register(void *handle)
{
    sqlite3 *db = handle;
    static const struct {
        const char *name;
        int n_arg;
        void (*fn)(sqlite3_context *, int, sqlite3_value **);
    } fns[] = {
        {"t_shape", 1, fn_shape},  {"t_stat", 2, fn_stat},     {"t_at", -1, fn_at},
        {"t_slice", -1, fn_slice}, {"t_maxabs", 2, fn_maxabs}, {"t_nmse", 2, fn_nmse},
        {"t_cos", 2, fn_cos},      {"t_ulp", 2, fn_ulp},       {"t_equal", 2, fn_equal},
        {"t_topk", 2, fn_topk},    {"t_dot", 2, fn_dot},
    };
    if (!db) {
        return TRC_EINVAL;
    }
    /* Innocuous: pure reads of the connection's tensors, so views may use them even with
     * trusted_schema off (schema/trace.sql's v_rope does). */
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        if (sqlite3_create_function_v2(db, fns[i].name, fns[i].n_arg, flags, NULL, fns[i].fn, NULL,
                                       NULL, NULL) != SQLITE_OK) {
            return TRC_ESQL;
        }
    }
    return 0;
}
