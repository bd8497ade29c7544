/*
 * import_llamacpp.c - reads what llama.cpp prints or saves, as it really comes out:
 *
 *  - the text of llama-eval-callback / llama-debug --verbose (common_debug_cb_eval, formerly
 *    ggml_debug): one header line per graph node,
 *        <prefix>: <name> = (<type>) <OP>(<src0>{ne}, <src1>{ne}}) = {ne0, ne1, ne2, ne3}
 *    then, for float types, one bracketed block per i3 with the corner values (%12.4f; in each
 *    dimension the first n and last n entries, n = 3, with "..." for the rest; older versions
 *    print only the first n, newer or patched ones may print everything or more digits) and
 *    "sum = %f" (llama-debug adds "sum_sq"). The elision pattern of each dimension is read from
 *    the text itself, so every printed value gets its exact flat index.
 *  - llama-debug --save-logits files (see vw_import_llamacpp_logits).
 *
 * What was printed is what is known: ops hold only the printed elements (partial tensors),
 * with the printed sum and the print precision as op parameters. A dump cut off at the end
 * (llama.cpp's asynchronous logger drops its tail at exit) imports every complete record and
 * reports the truncated one. This file never prints and never touches the tracer.
 */
#include "import_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing ----------------------------------------------------------------------------------
 */

enum { ST_OK = 0, ST_TRUNC = 1, ST_ERR = -1 };

/* A cursor over the text; text[len] is NUL, and the text holds no other NUL. */
struct scan {
    const char *p;
    const char *end;
    int64_t line;
    char *err;
    size_t errlen;
    const char *path;
};

/* Values of the record being parsed, with their position (slot) in each printed list. */
struct block {
    int64_t n, cap;
    float *vals;
    int32_t *slot; /* (cap, 4): slots for dims 0, 1, 2 and the i3 index */
    bool pat_set[3];
    int64_t pat_a[3], pat_b[3]; /* entries before / after the "..." of each dimension */
    bool pat_ell[3];
    double atol;
};

/* Line prefixes of a record header, and the format name each stands for. */
static const char *const markers[] = {"common_debug_cb_eval:", "ggml_debug:"};
static const char *const formats[] = {"common_debug_cb_eval", "ggml_debug"};

static void skip_blank(struct scan *s, bool commas)
{
    for (;;) {
        char c = *s->p;
        if (c == '\n') {
            s->line++;
        } else if (c != ' ' && c != '\t' && c != '\r' && !(commas && c == ',')) {
            return;
        }
        s->p++;
    }
}

/* A malformation on the last line of a text that does not end in a newline is a cut, not an
 * error: the logger stopped mid-line. */
static int fail(struct scan *s, const char *what, const char *name)
{
    if (!memchr(s->p, '\n', (size_t)(s->end - s->p))) {
        return ST_TRUNC;
    }
    snprintf(s->err, s->errlen, "%s:%lld: malformed data of '%s': %s", s->path, (long long)s->line,
             name, what);
    return ST_ERR;
}

/* Half a unit in the last printed place of the number text [b, e). */
static double print_ulp(const char *b, const char *e)
{
    const char *dot = memchr(b, '.', (size_t)(e - b));
    int dec = 0;
    long ex = 0;
    if (dot) {
        for (const char *q = dot + 1; q < e && *q >= '0' && *q <= '9'; q++) {
            dec++;
        }
    }
    for (const char *q = b; q < e; q++) {
        if (*q == 'e' || *q == 'E') {
            ex = strtol(q + 1, NULL, 10);
            break;
        }
    }
    static const double half_ulp[] = {0.5,  0.05, 5e-3, 5e-4,  5e-5,  5e-6,
                                      5e-7, 5e-8, 5e-9, 5e-10, 5e-11, 5e-12};
    if (ex == 0 && dec < (int)(sizeof half_ulp / sizeof half_ulp[0])) {
        return half_ulp[dec]; /* the common case, without pow() */
    }
    return 0.5 * pow(10.0, (double)(ex - dec));
}

/* Characters of a printed number, including nan/inf. */
static bool num_char(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' ||
           c == 'n' || c == 'a' || c == 'i' || c == 'f' || c == 'N' || c == 'A' || c == 'I' ||
           c == 'F';
}

static int block_push(struct block *b, float v, const int32_t slots[4])
{
    if (b->n == b->cap) {
        int64_t ncap = b->cap ? b->cap * 2 : 64;
        float *nv = realloc(b->vals, (size_t)ncap * sizeof *nv);
        if (!nv) {
            return -1;
        }
        b->vals = nv;
        int32_t *ns = realloc(b->slot, (size_t)ncap * 4 * sizeof *ns);
        if (!ns) {
            return -1;
        }
        b->slot = ns;
        b->cap = ncap;
    }
    b->vals[b->n] = v;
    memcpy(&b->slot[b->n * 4], slots, 4 * sizeof *slots);
    b->n++;
    return 0;
}

static int parse_value(struct scan *s, struct block *b, int32_t slots[4], const char *name)
{
    const char *q = s->p;
    while (num_char(*q)) {
        q++;
    }
    if (q == s->end) {
        return ST_TRUNC; /* the number may be cut */
    }
    char *end;
    float v = strtof(s->p, &end);
    if (end == s->p || end > q) {
        return fail(s, "expected a number", name);
    }
    if (isfinite(v)) {
        double ulp = print_ulp(s->p, end);
        b->atol = ulp > b->atol ? ulp : b->atol;
    }
    s->p = end;
    if (block_push(b, v, slots) < 0) {
        snprintf(s->err, s->errlen, "%s: out of memory", s->path);
        return ST_ERR;
    }
    return ST_OK;
}

/* Parses the entries of a list of dimension dim (after its '['), through its ']'. */
static int parse_list(struct scan *s, int dim, struct block *b, int32_t slots[4], const char *name)
{
    int64_t before = 0, after = 0;
    bool ell = false;
    for (;;) {
        skip_blank(s, true);
        if (s->p >= s->end) {
            return ST_TRUNC;
        }
        if (*s->p == ']') {
            s->p++;
            break;
        }
        if (strncmp(s->p, "...", 3) == 0) {
            if (ell) {
                return fail(s, "two '...' in one list", name);
            }
            ell = true;
            s->p += 3;
            continue;
        }
        slots[dim] = (int32_t)(before + after);
        int rc;
        if (dim > 0) {
            if (*s->p != '[') {
                return fail(s, "expected '['", name);
            }
            s->p++;
            rc = parse_list(s, dim - 1, b, slots, name);
        } else {
            rc = parse_value(s, b, slots, name);
        }
        if (rc != ST_OK) {
            return rc;
        }
        *(ell ? &after : &before) += 1;
    }
    if (!b->pat_set[dim]) {
        b->pat_set[dim] = true;
        b->pat_a[dim] = before;
        b->pat_b[dim] = after;
        b->pat_ell[dim] = ell;
    } else if (b->pat_a[dim] != before || b->pat_b[dim] != after || b->pat_ell[dim] != ell) {
        return fail(s, "rows elided inconsistently", name);
    }
    return ST_OK;
}

/* Reads "sum = X" / "sum_sq = X" at s->p (a line starting with "sum"). */
static int parse_sum_line(struct scan *s, struct vw_lc_record *r)
{
    const char *p = s->p + 3;
    char *dst = r->sum_text;
    if (strncmp(p, "_sq", 3) == 0) {
        p += 3;
        dst = r->sum_sq_text;
    }
    while (*p == ' ') {
        p++;
    }
    const char *eol = memchr(p, '\n', (size_t)(s->end - p));
    if (*p != '=' || !eol) {
        return eol ? fail(s, "bad 'sum =' line", r->name) : ST_TRUNC;
    }
    p++;
    while (*p == ' ') {
        p++;
    }
    const char *e = eol;
    while (e > p && (e[-1] == ' ' || e[-1] == '\r')) {
        e--;
    }
    snprintf(dst, sizeof r->sum_text, "%.*s", (int)(e - p), p);
    if (dst == r->sum_text) {
        r->has_sum = true;
    }
    s->p = eol + 1;
    s->line++;
    return ST_OK;
}

/* Slots -> flat indices, after checking each dimension's elision against ne. */
static int block_finish(struct scan *s, struct block *b, struct vw_lc_record *r)
{
    for (int d = 0; d < 3 && b->n > 0; d++) {
        int64_t a = b->pat_a[d], c = b->pat_b[d];
        bool ok = b->pat_ell[d] ? (a + c < r->ne[d]) : (a == r->ne[d] && c == 0);
        if (!ok) {
            snprintf(s->err, s->errlen,
                     "%s:%lld: malformed data of '%s': printed entries do not "
                     "fit the shape",
                     s->path, (long long)r->line, r->name);
            return ST_ERR;
        }
    }
    r->idx = malloc((size_t)(b->n ? b->n : 1) * sizeof *r->idx);
    r->vals = malloc((size_t)(b->n ? b->n : 1) * sizeof *r->vals);
    if (!r->idx || !r->vals) {
        snprintf(s->err, s->errlen, "%s: out of memory", s->path);
        return ST_ERR;
    }
    for (int64_t k = 0; k < b->n; k++) {
        int64_t ix[4];
        for (int d = 0; d < 3; d++) {
            int64_t sl = b->slot[k * 4 + d];
            ix[d] = sl < b->pat_a[d] ? sl : r->ne[d] - (b->pat_a[d] + b->pat_b[d]) + sl;
        }
        ix[3] = b->slot[k * 4 + 3];
        r->idx[k] = ix[0] + r->ne[0] * (ix[1] + r->ne[1] * (ix[2] + r->ne[2] * ix[3]));
        r->vals[k] = b->vals[k];
    }
    r->n_vals = b->n;
    r->atol = b->atol;
    return ST_OK;
}

/* Types llama.cpp prints values for (quantized tensors get a header only). */
static bool has_data(const char *type)
{
    static const char *const t[] = {"f32", "f16", "bf16", "f64", "i8", "i16", "i32", "i64"};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (strcmp(type, t[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* The data of one record: ne[3] blocks "[ ... ]", each followed by sum lines. On return s->p is
 * at the start of the first line that is not part of the record. */
static int parse_data(struct scan *s, struct vw_lc_record *r, struct block *b, bool sums_expected)
{
    int64_t n3 = 0;
    for (;;) {
        const char *save = s->p;
        int64_t save_line = s->line;
        skip_blank(s, false);
        if (s->p >= s->end) {
            bool done =
                n3 == 0 ? !has_data(r->type) : n3 == r->ne[3] && (r->has_sum || !sums_expected);
            return done && s->end[-1] == '\n' ? ST_OK : ST_TRUNC;
        }
        if (*s->p == '[' && n3 < r->ne[3]) {
            int32_t slots[4] = {0, 0, 0, (int32_t)n3};
            s->p++;
            int rc = parse_list(s, 2, b, slots, r->name);
            if (rc != ST_OK) {
                return rc;
            }
            n3++;
            continue;
        }
        if (strncmp(s->p, "sum", 3) == 0 && n3 > 0) {
            int rc = parse_sum_line(s, r);
            if (rc != ST_OK) {
                return rc;
            }
            continue;
        }
        bool last_line = !memchr(s->p, '\n', (size_t)(s->end - s->p));
        if (n3 > 0 && sums_expected && !r->has_sum && last_line) {
            return ST_TRUNC; /* "sum" itself was cut */
        }
        s->p = save;
        s->line = save_line;
        if (n3 != 0 && n3 != r->ne[3]) {
            return fail(s, "fewer blocks than ne[3]", r->name);
        }
        return ST_OK;
    }
}

static const char *find_in(const char *b, const char *e, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = b; p + n <= e; p++) {
        if (memcmp(p, needle, n) == 0) {
            return p;
        }
    }
    return NULL;
}

static const char *rfind_in(const char *b, const char *e, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = e - n; p >= b; p--) {
        if (memcmp(p, needle, n) == 0) {
            return p;
        }
    }
    return NULL;
}

static void copy_trim(char *dst, size_t cap, const char *b, const char *e)
{
    while (b < e && *b == ' ') {
        b++;
    }
    while (e > b && e[-1] == ' ') {
        e--;
    }
    snprintf(dst, cap, "%.*s", (int)(e - b), b);
}

/* "64, 5, 1, 1" up to the closing brace; pads with 1s. Returns the end or NULL. */
static const char *parse_ne(const char *p, const char *e, int64_t ne[4])
{
    int n = 0;
    for (int d = 0; d < 4; d++) {
        ne[d] = 1;
    }
    while (p < e && *p != '}') {
        char *q;
        long long v = strtoll(p, &q, 10);
        if (q == p || v < 0 || n == 4) {
            return NULL;
        }
        ne[n++] = v;
        p = q;
        while (p < e && (*p == ',' || *p == ' ')) {
            p++;
        }
    }
    return (p < e && n > 0) ? p : NULL;
}

/* Element counts beyond 2^48 are not a real tensor (and would overflow flat indices). */
static bool shape_sane(const int64_t ne[4])
{
    int64_t total = 1;
    for (int d = 0; d < 4; d++) {
        if (ne[d] < 1 || ne[d] > ((int64_t)1 << 48) || total > ((int64_t)1 << 48) / ne[d]) {
            return false;
        }
        total *= ne[d];
    }
    return true;
}

/* "src0{ne}, src1{ne}" (either may be empty); sources are informative, so this is lenient. */
static void parse_sources(const char *b, const char *e, struct vw_lc_record *r)
{
    const char *p = b;
    for (int k = 0; k < 2 && p < e; k++) {
        while (p < e && (*p == ' ' || *p == ',')) {
            p++;
        }
        const char *brace = memchr(p, '{', (size_t)(e - p));
        if (!brace) {
            copy_trim(r->src[k], sizeof r->src[k], p, e);
            return;
        }
        copy_trim(r->src[k], sizeof r->src[k], p, brace);
        const char *close = memchr(brace, '}', (size_t)(e - brace));
        if (!close) {
            return;
        }
        p = close + 1;
        if (k == 0 && p + 1 < e && p[0] == ',' && p[1] == ' ' && p + 2 < e && p[2] == ',') {
            return;
        }
    }
}

/* The header after the marker: [b, e) is the rest of the line without the newline. */
static int parse_header(const char *b, const char *e, struct vw_lc_record *r)
{
    while (e > b && (e[-1] == '\r' || e[-1] == ' ')) {
        e--;
    }
    const char *eq = find_in(b, e, " = (");
    const char *tc = eq ? memchr(eq + 4, ')', (size_t)(e - eq - 4)) : NULL;
    if (!eq || !tc) {
        return -1;
    }
    copy_trim(r->name, sizeof r->name, b, eq);
    copy_trim(r->type, sizeof r->type, eq + 4, tc);
    const char *o = tc + 1;
    while (o < e && *o == ' ') {
        o++;
    }
    const char *paren = o;
    while (paren < e && ((*paren >= 'A' && *paren <= 'Z') || (*paren >= '0' && *paren <= '9') ||
                         *paren == '_')) {
        paren++;
    }
    const char *last = rfind_in(paren, e, ") = {");
    if (paren == o || paren >= e || *paren != '(' || !last || r->name[0] == '\0') {
        return -1;
    }
    snprintf(r->op, sizeof r->op, "%.*s", (int)(paren - o), o);
    const char *ne_end = parse_ne(last + 5, e, r->ne);
    if (!ne_end || ne_end + 1 != e || !shape_sane(r->ne)) {
        return -1;
    }
    const char *args_end = last;
    if (args_end > paren + 1 && args_end[-1] == '}') {
        args_end--; /* the format's extra brace: "%s, %s})" */
    }
    parse_sources(paren + 1, args_end, r);
    return 0;
}

/* The marker a line starts with (after blanks), or NULL; *after gets the text behind it. */
static const char *line_marker(const char *p, const char *eol, const char **after)
{
    while (p < eol && (*p == ' ' || *p == '\t')) {
        p++;
    }
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
        size_t n = strlen(markers[i]);
        if ((size_t)(eol - p) > n && memcmp(p, markers[i], n) == 0) {
            *after = p + n;
            return formats[i];
        }
    }
    return NULL;
}

/* True when [p, eol) (blanks skipped) is a non-empty beginning of a marker. */
static bool marker_prefix(const char *p, const char *eol)
{
    while (p < eol && (*p == ' ' || *p == '\t')) {
        p++;
    }
    for (size_t i = 0; i < sizeof markers / sizeof markers[0] && p < eol; i++) {
        size_t n = (size_t)(eol - p);
        if (n <= strlen(markers[i]) && memcmp(p, markers[i], n) == 0) {
            return true;
        }
    }
    return false;
}

static int dump_push(struct vw_lc_dump *d, const struct vw_lc_record *r)
{
    if (d->n_recs == d->cap) {
        int64_t ncap = d->cap ? d->cap * 2 : 256;
        struct vw_lc_record *p = realloc(d->recs, (size_t)ncap * sizeof *p);
        if (!p) {
            return -1;
        }
        d->recs = p;
        d->cap = ncap;
    }
    d->recs[d->n_recs++] = *r;
    return 0;
}

static void record_free(struct vw_lc_record *r)
{
    free(r->idx);
    free(r->vals);
    r->idx = NULL;
    r->vals = NULL;
}

/* One record whose header line is [line_start, eol). Returns ST_OK/ST_TRUNC/ST_ERR. */
static int parse_record(struct scan *s, const char *hdr, const char *eol, struct vw_lc_dump *d)
{
    struct vw_lc_record r;
    struct block b;
    memset(&r, 0, sizeof r);
    memset(&b, 0, sizeof b);
    r.line = s->line;
    int hrc = parse_header(hdr, eol, &r);
    if (eol == s->end) {
        if (hrc < 0) {
            const char *eq = find_in(hdr, eol, " = (");
            if (eq) {
                copy_trim(r.name, sizeof r.name, hdr, eq);
            } else {
                snprintf(r.name, sizeof r.name, "(header)");
            }
        }
        snprintf(d->trunc_name, sizeof d->trunc_name, "%s", r.name);
        return ST_TRUNC;
    }
    if (hrc < 0) {
        snprintf(s->err, s->errlen, "%s:%lld: malformed record header", s->path,
                 (long long)s->line);
        return ST_ERR;
    }
    s->p = eol + 1;
    s->line++;
    /* common_debug_cb_eval always prints "sum ="; older ggml_debug printers did not */
    bool sums = strcmp(d->format, "common_debug_cb_eval") == 0 ||
                (d->n_recs > 0 && d->recs[d->n_recs - 1].has_sum);
    int rc = parse_data(s, &r, &b, sums);
    if (rc == ST_OK) {
        rc = block_finish(s, &b, &r);
    }
    if (rc == ST_OK && dump_push(d, &r) < 0) {
        snprintf(s->err, s->errlen, "%s: out of memory", s->path);
        rc = ST_ERR;
    }
    if (rc != ST_OK) {
        record_free(&r);
        snprintf(d->trunc_name, sizeof d->trunc_name, "%s", r.name);
    }
    free(b.vals);
    free(b.slot);
    return rc;
}

int vw_lc_parse(const char *text, size_t len, const char *path, struct vw_lc_dump *out, char *err,
                size_t errlen)
{
    struct scan s = {text, text + len, 1, err, errlen, path};
    memset(out, 0, sizeof *out);
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "%s: binary data, not a llama.cpp eval-callback text dump", path);
        return -1;
    }
    while (s.p < s.end) {
        const char *eol = memchr(s.p, '\n', (size_t)(s.end - s.p));
        const char *after = NULL;
        eol = eol ? eol : s.end;
        const char *m = line_marker(s.p, eol, &after);
        if (!m && eol == s.end && marker_prefix(s.p, eol)) {
            out->truncated = true; /* the cut fell inside the next record's marker */
            out->trunc_line = s.line;
            snprintf(out->trunc_name, sizeof out->trunc_name, "(header)");
            break;
        }
        if (!m) {
            s.p = eol < s.end ? eol + 1 : s.end;
            s.line++;
            continue;
        }
        out->format = out->format ? out->format : m;
        int64_t hline = s.line;
        int rc = parse_record(&s, after, eol, out);
        if (rc == ST_ERR) {
            vw_lc_dump_release(out);
            return -1;
        }
        if (rc == ST_TRUNC) {
            out->truncated = true;
            out->trunc_line = hline;
            break;
        }
    }
    out->n_lines = s.line;
    if (out->n_recs == 0) {
        snprintf(err, errlen,
                 "%s: no complete llama.cpp eval-callback record (lines starting with "
                 "'common_debug_cb_eval:' or 'ggml_debug:')",
                 path);
        vw_lc_dump_release(out);
        return -1;
    }
    return 0;
}

void vw_lc_dump_release(struct vw_lc_dump *d)
{
    if (!d) {
        return;
    }
    for (int64_t i = 0; i < d->n_recs; i++) {
        record_free(&d->recs[i]);
    }
    free(d->recs);
    memset(d, 0, sizeof *d);
}

/* ---- mapping to canonical ops -----------------------------------------------------------------
 */

/* A growing string for JSON. On allocation failure it stays NULL and ok is false. */
struct sbuf {
    char *p;
    size_t n, cap;
    bool ok;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    if (!b->ok) {
        return;
    }
    for (;;) {
        size_t room = b->cap - b->n;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, room, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->ok = false;
            return;
        }
        if ((size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t ncap = (b->cap ? b->cap * 2 : 256) + (size_t)k;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->ok = false;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

/* Appends s as a JSON string (with quotes). */
static void sb_json_str(struct sbuf *b, const char *s)
{
    sb_add(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            sb_add(b, "\\%c", c);
        } else if (c < 0x20) {
            sb_add(b, "\\u%04x", c);
        } else {
            sb_add(b, "%c", c);
        }
    }
    sb_add(b, "\"");
}

struct map_state {
    const struct vw_lc_dump *d;
    struct vw_imp *imp;
    int64_t step, pos0, n_tok;
    int64_t first_rec; /* the current step's first record */
    int64_t first_op;  /* the current step's first op in imp */
    int64_t n_matched; /* records that matched a recorded (canonical) row */
    int max_layer;
    double max_atol;
    int *row_uses; /* per map row */
    const char *kv_type;
    bool flash_attn;
};

static bool is_step_start(const struct vw_lc_dump *d, int64_t i)
{
    const struct vw_lc_record *a = &d->recs[0], *r = &d->recs[i];
    return i == 0 || (strcmp(a->name, r->name) == 0 && strcmp(a->op, r->op) == 0);
}

static int begin_step(struct map_state *ms, int64_t i)
{
    const struct vw_lc_record *r = &ms->d->recs[i];
    int layer;
    const struct vw_map_row *row = vw_lcmap_match(r->name, r->op, &layer);
    ms->step++;
    ms->pos0 += ms->n_tok;
    ms->n_tok = r->ne[row ? row->tok_axis : 1];
    ms->first_rec = i;
    ms->first_op = ms->imp->n_ops;
    return vw_imp_add_step(ms->imp, ms->step, ms->pos0, ms->n_tok);
}

/* The numpy shape of ggml ne: reversed, leading 1s dropped but at least min_dims dims. */
static void numpy_shape(const int64_t ne[4], int min_dims, int *n_dims, int64_t shape[4])
{
    int nd = 4;
    while (nd > min_dims && nd > 1 && ne[nd - 1] == 1) {
        nd--;
    }
    *n_dims = nd;
    for (int k = 0; k < nd; k++) {
        shape[k] = ne[nd - 1 - k];
    }
}

static bool is_number(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    return end != s && *end == '\0' && isfinite(v);
}

/* The op's params: where it came from in the dump, what was printed, and how precisely. */
static char *op_params(const struct vw_lc_record *r, int64_t node, const struct vw_map_row *row,
                       bool cache)
{
    struct sbuf b = {NULL, 0, 0, true};
    sb_add(&b, "{\"llama_name\":");
    sb_json_str(&b, r->name);
    sb_add(&b, ",\"llama_op\":");
    sb_json_str(&b, r->op);
    sb_add(&b, ",\"llama_type\":");
    sb_json_str(&b, r->type);
    sb_add(&b,
           ",\"dump_node\":%lld,\"dump_line\":%lld,\"ne\":[%lld,%lld,%lld,%lld],\"n_printed\":%lld",
           (long long)node, (long long)r->line, (long long)r->ne[0], (long long)r->ne[1],
           (long long)r->ne[2], (long long)r->ne[3], (long long)r->n_vals);
    const char *sum_key = cache ? "printed_sum_of_cache" : "printed_sum";
    if (r->has_sum && is_number(r->sum_text)) {
        sb_add(&b, ",\"%s\":%s", sum_key, r->sum_text);
    } else if (r->has_sum) {
        sb_add(&b, ",\"%s\":null,\"printed_sum_text\":", sum_key);
        sb_json_str(&b, r->sum_text);
    }
    if (r->sum_sq_text[0] && is_number(r->sum_sq_text)) {
        sb_add(&b, ",\"printed_sum_sq\":%s", r->sum_sq_text);
    }
    sb_add(&b, ",\"print_atol\":%.3g", r->atol);
    if (row->params) {
        sb_add(&b, ",%s", row->params);
    }
    if (row->xform == VW_XFORM_NONE && strcmp(row->kind, "attn_scores") == 0) {
        sb_add(&b, ",\"n_kv_padded\":%lld", (long long)r->ne[0]);
    }
    sb_add(&b, "}");
    if (!b.ok) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ne[0] of the layer's "<prefix>-L" MUL_MAT in the current step (the K or V width), or -1. */
static int64_t proj_width(const struct map_state *ms, int64_t i, const char *prefix, int layer)
{
    char want[64];
    snprintf(want, sizeof want, "%s-%d", prefix, layer);
    for (int64_t k = i - 1; k >= ms->first_rec; k--) {
        const struct vw_lc_record *r = &ms->d->recs[k];
        if (strcmp(r->name, want) == 0 && strcmp(r->op, "MUL_MAT") == 0) {
            return r->ne[0];
        }
    }
    return -1;
}

/* For a cache write: (cell, channel) of printed element f, given the transform. */
static void cache_coords(enum vw_xform x, const int64_t ne[4], int64_t kv_dim, int64_t pos0,
                         int64_t f, int64_t *cell, int64_t *ch)
{
    int64_t kv_size = ne[0] * ne[1] / kv_dim;
    switch (x) {
    case VW_XFORM_CACHE_VT:
        *ch = f / kv_size;
        *cell = f % kv_size;
        break;
    case VW_XFORM_CACHE_FLAT:
        *cell = pos0 + f / kv_dim;
        *ch = f % kv_dim;
        break;
    case VW_XFORM_CACHE_TRANS:
        *cell = pos0 + f % ne[0];
        *ch = f / ne[0];
        break;
    default:
        *cell = f / kv_dim;
        *ch = f % kv_dim;
        break;
    }
}

/* Keeps the printed cache elements that are this step's rows; returns the kept count or -1. */
static int64_t cache_select(const struct map_state *ms, const struct vw_lc_record *r,
                            enum vw_xform x, int64_t kv_dim, struct vw_imp_op *op)
{
    op->known = malloc((size_t)(r->n_vals ? r->n_vals : 1) * sizeof *op->known);
    op->vals = malloc((size_t)(r->n_vals ? r->n_vals : 1) * sizeof *op->vals);
    if (!op->known || !op->vals) {
        return -1;
    }
    int64_t n = 0;
    for (int64_t k = 0; k < r->n_vals; k++) {
        int64_t cell, ch;
        cache_coords(x, r->ne, kv_dim, ms->pos0, r->idx[k], &cell, &ch);
        if (cell >= ms->pos0 && cell < ms->pos0 + ms->n_tok && ch < kv_dim) {
            op->known[n] = (cell - ms->pos0) * kv_dim + ch;
            op->vals[n] = r->vals[k];
            n++;
        }
    }
    op->n_known = n;
    op->n_dims = 2;
    op->shape[0] = ms->n_tok;
    op->shape[1] = kv_dim;
    op->pos0 = ms->pos0;
    op->n_pos = ms->n_tok;
    return n;
}

static int64_t cache_kv_dim(const struct map_state *ms, int64_t i, const struct vw_lc_record *r,
                            enum vw_xform x, int layer)
{
    switch (x) {
    case VW_XFORM_CACHE_VT:
        return proj_width(ms, i, "Vcur", layer);
    case VW_XFORM_CACHE_FLAT:
        return proj_width(ms, i, "Kcur", layer);
    case VW_XFORM_CACHE_TRANS:
        return r->ne[1];
    default:
        return r->ne[0];
    }
}

/* Fills op from a record mapped without transform: same elements, same indices. */
static int plain_select(const struct map_state *ms, const struct vw_lc_record *r,
                        const struct vw_map_row *row, struct vw_imp_op *op)
{
    int64_t n_rows = r->ne[row->tok_axis];
    size_t n = (size_t)(r->n_vals ? r->n_vals : 1);
    op->known = malloc(n * sizeof *op->known);
    op->vals = malloc(n * sizeof *op->vals);
    if (!op->known || !op->vals) {
        return -1;
    }
    memcpy(op->known, r->idx, (size_t)r->n_vals * sizeof *op->known);
    memcpy(op->vals, r->vals, (size_t)r->n_vals * sizeof *op->vals);
    op->n_known = r->n_vals;
    numpy_shape(r->ne, row->tok_axis + 1, &op->n_dims, op->shape);
    /* after the last layer's GET_ROWS(inp_out_ids) only the output rows remain: the last ones */
    op->pos0 = n_rows < ms->n_tok ? ms->pos0 + ms->n_tok - n_rows : ms->pos0;
    op->n_pos = n_rows;
    return 0;
}

static bool step_has_op(const struct map_state *ms, const char *name)
{
    for (int64_t k = ms->first_op; k < ms->imp->n_ops; k++) {
        if (strcmp(ms->imp->ops[k].name, name) == 0) {
            return true;
        }
    }
    return false;
}

static void weight_name(const struct vw_lc_record *r, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (int k = 0; k < 2; k++) {
        size_t n = strlen(r->src[k]);
        if (n > 7 && strcmp(r->src[k] + n - 7, ".weight") == 0) {
            snprintf(buf, cap, "%s", r->src[k]);
            return;
        }
    }
}

/* Hyper-parameters the shapes reveal (a model given with -m overrides them). */
static int note_dims(struct map_state *ms, const char *name, const struct vw_lc_record *r)
{
    static const struct {
        const char *suffix, *key;
        int ne;
    } dims[] = {{"tok_embd", "n_embd", 0},   {".rope_q", "head_dim", 0}, {".rope_q", "n_head", 1},
                {".rope_k", "n_head_kv", 1}, {".ffn_gate", "n_ff", 0},   {"output", "n_vocab", 0}};
    size_t ln = strlen(name);
    int rc = 0;
    if (ms->step != 0) {
        return 0;
    }
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        size_t ls = strlen(dims[i].suffix);
        bool hit = dims[i].suffix[0] == '.' /* a per-layer suffix, else the exact name */
                       ? ln >= ls && strcmp(name + ln - ls, dims[i].suffix) == 0
                       : strcmp(name, dims[i].suffix) == 0;
        if (hit) {
            rc |= vw_imp_set_i64(ms->imp, dims[i].key, r->ne[dims[i].ne]);
        }
    }
    return rc;
}

/* Records one mapped node as an op. Returns 0, or -1 on out of memory. */
static int map_record(struct map_state *ms, int64_t i, const struct vw_map_row *row, int layer)
{
    const struct vw_lc_record *r = &ms->d->recs[i];
    char name[64];
    if (vw_lcmap_expand(row->canonical, layer, name, sizeof name) < 0) {
        return vw_imp_note_unmatched(ms->imp, r->name);
    }
    if (step_has_op(ms, name)) {
        ms->imp->n_unmatched++;
        return vw_imp_note_unmatched(ms->imp, r->name);
    }
    bool cache = row->xform != VW_XFORM_NONE;
    int64_t kv_dim = cache ? cache_kv_dim(ms, i, r, row->xform, layer) : 0;
    if (cache && kv_dim <= 0) {
        ms->imp->n_empty++;
        return vw_imp_warn(ms->imp, "line %lld: '%s': no K/V projection of layer %d in this step",
                           (long long)r->line, r->name, layer);
    }
    struct vw_imp_op *op = vw_imp_add_op(ms->imp);
    if (!op) {
        return -1;
    }
    snprintf(op->name, sizeof op->name, "%s", name);
    snprintf(op->kind, sizeof op->kind, "%s", row->kind);
    op->layer = layer;
    op->step = ms->step;
    weight_name(r, op->weight, sizeof op->weight);
    int64_t n = cache ? cache_select(ms, r, row->xform, kv_dim, op) : plain_select(ms, r, row, op);
    op->params = n < 0 ? NULL : op_params(r, i, row, cache);
    if (n < 0 || !op->params) {
        return -1;
    }
    if (op->n_known == 0) { /* e.g. a decode step's cache write: its row was not printed */
        free(op->known);
        free(op->vals);
        free(op->params);
        ms->imp->n_ops--;
        ms->imp->n_empty++;
        return 0;
    }
    int64_t total = 1;
    for (int d = 0; d < op->n_dims; d++) {
        total *= op->shape[d];
    }
    ms->imp->n_partial += op->n_known < total;
    ms->max_atol = r->atol > ms->max_atol ? r->atol : ms->max_atol;
    ms->max_layer = layer > ms->max_layer ? layer : ms->max_layer;
    if (cache && !ms->kv_type) {
        ms->kv_type = r->type;
    }
    return note_dims(ms, op->name, r);
}

static int map_one(struct map_state *ms, int64_t i)
{
    const struct vw_lc_record *r = &ms->d->recs[i];
    int layer;
    int nrows;
    const struct vw_map_row *rows = vw_lcmap_rows(&nrows);
    const struct vw_map_row *row = vw_lcmap_match(r->name, r->op, &layer);
    ms->flash_attn |= strcmp(r->op, "FLASH_ATTN_EXT") == 0;
    if (!row) {
        ms->imp->n_unmatched++;
        return vw_imp_note_unmatched(ms->imp, r->name);
    }
    ms->row_uses[row - rows]++;
    if (!row->canonical) {
        ms->imp->n_skipped++;
        return 0;
    }
    ms->n_matched++;
    if (r->n_vals == 0) {
        ms->imp->n_nodata++;
        return 0;
    }
    return map_record(ms, i, row, layer);
}

/* The map rows that matched, as JSON (the trace's record of how it was imported). */
static char *used_map_json(const int *uses)
{
    int n;
    const struct vw_map_row *rows = vw_lcmap_rows(&n);
    static const char *const xf[] = {"none",          "skip",       "out_ids",    "cache_rows",
                                     "cache_v_trans", "cache_flat", "cache_trans"};
    struct sbuf b = {NULL, 0, 0, true};
    sb_add(&b, "[");
    bool first = true;
    for (int i = 0; i < n; i++) {
        if (!uses[i]) {
            continue;
        }
        sb_add(&b, "%s{\"llama\":", first ? "" : ",");
        sb_json_str(&b, rows[i].pattern);
        sb_add(&b, ",\"op\":");
        sb_json_str(&b, rows[i].op);
        sb_add(&b, ",\"canonical\":");
        if (rows[i].canonical) {
            sb_json_str(&b, rows[i].canonical);
        } else {
            sb_add(&b, "null");
        }
        sb_add(&b, ",\"xform\":\"%s\",\"n\":%d}", xf[rows[i].xform], uses[i]);
        first = false;
    }
    sb_add(&b, "]");
    if (!b.ok) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* Rejects dumps that are not a llama graph: nothing matched, or mostly unknown names. */
static int check_arch(const struct map_state *ms, const char *path, char *err, size_t errlen)
{
    const struct vw_imp *imp = ms->imp;
    if (ms->n_matched > 0 && imp->n_unmatched <= ms->n_matched) {
        return 0;
    }
    snprintf(err, errlen,
             "%s: %s (%lld of %lld nodes unknown, e.g. '%.60s'); only the llama architecture's "
             "graph names are known",
             path,
             ms->n_matched ? "mostly unknown node names" : "no node name matches the llama map",
             (long long)imp->n_unmatched, (long long)ms->d->n_recs,
             imp->unmatched ? imp->unmatched : ms->d->recs[0].name);
    return -1;
}

static int set_map_params(struct map_state *ms)
{
    struct vw_imp *imp = ms->imp;
    int rc = 0;
    imp->used_map = used_map_json(ms->row_uses);
    rc |= imp->used_map ? vw_imp_set_str(imp, "name_map", imp->used_map) : -1;
    rc |= vw_imp_set_i64(imp, "n_layer", ms->max_layer + 1);
    rc |= vw_imp_set_i64(imp, "n_steps", imp->n_steps);
    rc |= vw_imp_set_i64(imp, "n_records", ms->d->n_recs);
    rc |= vw_imp_set_f64(imp, "print_atol", ms->max_atol);
    rc |= vw_imp_set_i64(imp, "flash_attn", ms->flash_attn);
    rc |= vw_imp_set_str(imp, "dump_format", ms->d->format);
    if (ms->kv_type) {
        rc |= vw_imp_set_str(imp, "kv_type", ms->kv_type);
    }
    return rc ? -1 : 0;
}

static int add_tokens(struct vw_imp *imp, const struct vw_lc_opts *opts)
{
    int64_t n0 = imp->n_steps ? imp->steps[0].n_tokens : 0;
    for (int64_t k = 0; opts && k < opts->n_tokens; k++) {
        if (vw_imp_add_token(imp, opts->tokens[k], true) < 0) {
            return -1;
        }
    }
    if (opts && opts->n_tokens && opts->n_tokens != n0) {
        return vw_imp_warn(imp,
                           "%lld prompt tokens given, but the dump's first decode call has "
                           "%lld rows",
                           (long long)opts->n_tokens, (long long)n0);
    }
    return vw_imp_set_i64(imp, "n_prompt", opts && opts->n_tokens ? opts->n_tokens : n0);
}

int vw_lc_map(const struct vw_lc_dump *d, const char *path, const struct vw_lc_opts *opts,
              struct vw_imp *imp, char *err, size_t errlen)
{
    int n_rows;
    vw_lcmap_rows(&n_rows);
    struct map_state ms = {d, imp, -1, 0, 0, 0, 0, 0, -1, 0.0, NULL, NULL, false};
    ms.row_uses = calloc((size_t)n_rows, sizeof *ms.row_uses);
    int rc = ms.row_uses ? 0 : -1;
    imp->n_records = d->n_recs;
    for (int64_t i = 0; i < d->n_recs && rc == 0; i++) {
        if (is_step_start(d, i)) {
            rc = begin_step(&ms, i);
        }
        rc = rc ? rc : map_one(&ms, i);
    }
    rc = rc ? rc : set_map_params(&ms);
    rc = rc ? rc : add_tokens(imp, opts);
    if (rc) {
        snprintf(err, errlen, "%s: out of memory", path);
    } else if (check_arch(&ms, path, err, errlen) < 0) {
        rc = -1;
    } else if (imp->n_unmatched > 0) {
        rc = vw_imp_warn(imp, "%s: %lld nodes match no map row and were not imported: %.200s", path,
                         (long long)imp->n_unmatched, imp->unmatched);
    }
    free(ms.row_uses);
    return rc ? -1 : 0;
}

int vw_import_llamacpp_text(const char *path, const struct vw_lc_opts *opts, struct vw_imp *imp,
                            char *err, size_t errlen)
{
    char *text;
    size_t len;
    struct vw_lc_dump d;
    if (vw_file_slurp(path, &text, &len, err, errlen) < 0) {
        return -1;
    }
    int rc = vw_lc_parse(text, len, path, &d, err, errlen);
    free(text);
    if (rc < 0) {
        return -1;
    }
    rc = vw_lc_map(&d, path, opts, imp, err, errlen);
    rc = rc ? rc : vw_imp_set_str(imp, "input_path", path);
    rc = rc ? rc : vw_imp_set_i64(imp, "input_bytes", (int64_t)len);
    rc = rc ? rc : vw_imp_set_i64(imp, "truncated", d.truncated);
    if (rc == 0 && d.truncated) {
        rc = vw_imp_set_i64(imp, "truncated_at_line", d.trunc_line);
        rc = rc ? rc
                : vw_imp_warn(imp,
                              "%s: last record '%s' is truncated at line %lld; imported %lld "
                              "complete records",
                              path, d.trunc_name, (long long)d.trunc_line, (long long)d.n_recs);
    }
    vw_lc_dump_release(&d);
    return rc ? -1 : 0;
}

/* ---- llama-debug --save-logits ----------------------------------------------------------------
 */

/* The .bin is n_vocab raw little-endian float32 logits of the last prompt position (what
 * llama_get_logits_ith(ctx, n_tokens - 1) returned), with no header; the -tokens.bin beside it
 * holds the prompt's int32 token ids. */
int vw_import_llamacpp_logits(const char *logits_path, const int32_t *tokens, int64_t n_tokens,
                              const char *prompt, struct vw_imp *imp, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    if (n_tokens < 1) {
        snprintf(err, errlen, "%s: no prompt tokens given", logits_path);
        return -1;
    }
    if (vw_file_slurp(logits_path, &buf, &len, err, errlen) < 0) {
        return -1;
    }
    size_t printable = 0;
    for (size_t k = 0; k < len; k++) {
        printable += (buf[k] >= 0x20 && buf[k] < 0x7f) || buf[k] == '\n';
    }
    if (len == 0 || len % 4 != 0 || printable == len) {
        snprintf(err, errlen, "%s: %s", logits_path,
                 printable == len && len ? "text, not raw float32 logits (use the .bin file)"
                                         : "size is not a whole number of float32 logits");
        free(buf);
        return -1;
    }
    struct vw_imp_op *op = vw_imp_add_op(imp);
    int rc = (op && vw_imp_add_step(imp, 0, 0, n_tokens) == 0) ? 0 : -1;
    if (rc == 0) {
        snprintf(op->name, sizeof op->name, "output");
        snprintf(op->kind, sizeof op->kind, "matmul");
        op->pos0 = n_tokens - 1;
        op->n_pos = 1;
        op->n_dims = 2;
        op->shape[0] = 1;
        op->shape[1] = (int64_t)(len / 4);
        op->n_known = (int64_t)(len / 4);
        op->vals = malloc(len);
        op->params = strdup("{\"from\":\"llama-debug --save-logits\",\"full_precision\":true}");
        rc = op->vals && op->params ? 0 : -1;
    }
    if (rc == 0) {
        memcpy(op->vals, buf, len);
        imp->n_records = 1;
        for (int64_t k = 0; k < n_tokens && rc == 0; k++) {
            rc = vw_imp_add_token(imp, tokens[k], true);
        }
        rc |= vw_imp_set_str(imp, "input_path", logits_path);
        rc |= vw_imp_set_i64(imp, "n_vocab", (int64_t)(len / 4));
        rc |= vw_imp_set_i64(imp, "n_prompt", n_tokens);
        rc |= prompt ? vw_imp_set_str(imp, "prompt", prompt) : 0;
    }
    if (rc) {
        snprintf(err, errlen, "%s: out of memory", logits_path);
    }
    free(buf);
    return rc ? -1 : 0;
}
