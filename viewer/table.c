/*
 * table.c - result sets as an aligned table, CSV or JSON (see table.h). The aligned form escapes
 * control characters (a newline in a prompt must not break the grid), measures widths in UTF-8
 * code points and right-aligns numeric columns. CSV and JSON keep every value exact: reals are
 * written in the shortest form that reads back to the same double. Depends on libc and, for
 * vw_table_print_stmt only, SQLite.
 */
#include "table.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct cell {
    enum vw_cell_type type;
    int64_t i;
    double d;
    char *s; /* TEXT / JSON, malloc'd */
};

struct vw_table {
    int n_cols;
    char **names;       /* [n_cols] */
    struct cell *cells; /* [cap] row-major, n_cells used */
    int64_t n_cells, cap;
};

vw_table *vw_table_create(int n_cols, const char *const *names)
{
    vw_table *t = calloc(1, sizeof *t);
    if (!t) {
        return NULL;
    }
    t->n_cols = n_cols;
    t->names = calloc((size_t)(n_cols > 0 ? n_cols : 1), sizeof *t->names);
    if (!t->names) {
        free(t);
        return NULL;
    }
    for (int c = 0; c < n_cols; c++) {
        t->names[c] = strdup(names[c] ? names[c] : "");
        if (!t->names[c]) {
            vw_table_destroy(t);
            return NULL;
        }
    }
    return t;
}

void vw_table_destroy(vw_table *t)
{
    if (!t) {
        return;
    }
    for (int64_t i = 0; i < t->n_cells; i++) {
        free(t->cells[i].s);
    }
    for (int c = 0; c < t->n_cols; c++) {
        free(t->names[c]);
    }
    free(t->cells);
    free(t->names);
    free(t);
}

static struct cell *push(vw_table *t)
{
    if (t->n_cells == t->cap) {
        int64_t cap = t->cap ? t->cap * 2 : 256;
        struct cell *c = realloc(t->cells, (size_t)cap * sizeof *c);
        if (!c) {
            return NULL;
        }
        t->cells = c;
        t->cap = cap;
    }
    struct cell *c = &t->cells[t->n_cells++];
    memset(c, 0, sizeof *c);
    return c;
}

int vw_table_add_null(vw_table *t)
{
    return push(t) ? 0 : -1;
}

int vw_table_add_i64(vw_table *t, int64_t v)
{
    struct cell *c = push(t);
    if (!c) {
        return -1;
    }
    c->type = VW_CELL_INT;
    c->i = v;
    return 0;
}

int vw_table_add_f64(vw_table *t, double v)
{
    struct cell *c = push(t);
    if (!c) {
        return -1;
    }
    c->type = VW_CELL_REAL;
    c->d = v;
    return 0;
}

int vw_table_add_text(vw_table *t, enum vw_cell_type type, const char *s)
{
    if (!s) {
        return vw_table_add_null(t);
    }
    char *dup = strdup(s);
    struct cell *c = dup ? push(t) : NULL;
    if (!c) {
        free(dup);
        return -1;
    }
    c->type = type == VW_CELL_JSON ? VW_CELL_JSON : VW_CELL_TEXT;
    c->s = dup;
    return 0;
}

int64_t vw_table_n_rows(const vw_table *t)
{
    return t->n_cols > 0 ? t->n_cells / t->n_cols : 0;
}

/* ---- number and string formatting ---------------------------------------------------------- */

char *vw_fmt_real_digits(char *buf, size_t cap, double v, int max_digits)
{
    if (isnan(v)) {
        snprintf(buf, cap, "nan");
        return buf;
    }
    if (isinf(v)) {
        snprintf(buf, cap, v > 0 ? "inf" : "-inf");
        return buf;
    }
    /* Float32 values (all tensor data) read back with up to 9 digits; others need up to 17.
     * Below 6 digits %g would switch to exponent form too early (10 -> 1e+01). */
    const bool is_f32 = fabs(v) <= 3.4e38 && (double)(float)v == v;
    for (int p = max_digits < 6 ? max_digits : 6; p <= max_digits; p++) {
        snprintf(buf, cap, "%.*g", p, v);
        double back = strtod(buf, NULL);
        if (is_f32 ? (float)back == (float)v : back == v) {
            break;
        }
    }
    return buf;
}

char *vw_fmt_real(char *buf, size_t cap, double v)
{
    return vw_fmt_real_digits(buf, cap, v, 17);
}

void vw_json_num(FILE *f, double v)
{
    char b[40];
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    fputs(vw_fmt_real(b, sizeof b, v), f);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes are not valid UTF-8. */
static int utf8_len(const unsigned char *s)
{
    int n = 0;
    if (s[0] < 0x80) {
        n = 1;
    } else if (s[0] >= 0xC2 && s[0] < 0xE0) {
        n = 2;
    } else if (s[0] >= 0xE0 && s[0] < 0xF0) {
        n = 3;
    } else if (s[0] >= 0xF0 && s[0] < 0xF5) {
        n = 4;
    }
    for (int k = 1; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return n;
}

void vw_json_str(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    while (*s) {
        int n = utf8_len(s);
        if (n == 0) {
            fputs("\\ufffd", f);
            s++;
        } else if (*s == '"' || *s == '\\') {
            fputc('\\', f);
            fputc(*s++, f);
        } else if (*s < 0x20) {
            const char *esc = *s == '\n' ? "\\n" : *s == '\t' ? "\\t" : *s == '\r' ? "\\r" : NULL;
            if (esc) {
                fputs(esc, f);
            } else {
                fprintf(f, "\\u%04x", *s);
            }
            s++;
        } else {
            fwrite(s, 1, (size_t)n, f);
            s += n;
        }
    }
    fputc('"', f);
}

/* ---- CSV and JSON rows --------------------------------------------------------------------- */

static void csv_field(FILE *f, const char *s)
{
    size_t n = strlen(s);
    bool quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');
    quote = quote || strpbrk(s, ",\"\r\n") != NULL;
    if (!quote) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (const char *p = s; *p; p++) {
        if (*p == '"') {
            fputc('"', f);
        }
        fputc(*p, f);
    }
    fputc('"', f);
}

static void csv_cell(FILE *f, const struct cell *c)
{
    char b[40];
    switch (c->type) {
    case VW_CELL_INT:
        fprintf(f, "%lld", (long long)c->i);
        break;
    case VW_CELL_REAL:
        fputs(vw_fmt_real(b, sizeof b, c->d), f);
        break;
    case VW_CELL_TEXT:
    case VW_CELL_JSON:
        csv_field(f, c->s);
        break;
    default:
        break;
    }
}

static void json_cell(FILE *f, const struct cell *c)
{
    switch (c->type) {
    case VW_CELL_INT:
        fprintf(f, "%lld", (long long)c->i);
        break;
    case VW_CELL_REAL:
        vw_json_num(f, c->d);
        break;
    case VW_CELL_TEXT:
        vw_json_str(f, c->s);
        break;
    case VW_CELL_JSON:
        fputs(c->s, f);
        break;
    default:
        fputs("null", f);
        break;
    }
}

static void csv_header(FILE *f, int n_cols, char *const *names)
{
    for (int c = 0; c < n_cols; c++) {
        if (c > 0) {
            fputc(',', f);
        }
        csv_field(f, names[c]);
    }
    fputs("\r\n", f);
}

/* One row; row is the 0-based row number (JSON needs the separator before every row but one). */
static void stream_row(FILE *f, enum vw_table_format fmt, int n_cols, char *const *names,
                       const struct cell *cells, int64_t row)
{
    if (fmt == VW_TABLE_FORMAT_CSV) {
        for (int c = 0; c < n_cols; c++) {
            if (c > 0) {
                fputc(',', f);
            }
            csv_cell(f, &cells[c]);
        }
        fputs("\r\n", f);
        return;
    }
    fputs(row == 0 ? "[\n{" : ",\n{", f);
    for (int c = 0; c < n_cols; c++) {
        if (c > 0) {
            fputc(',', f);
        }
        vw_json_str(f, names[c]);
        fputc(':', f);
        json_cell(f, &cells[c]);
    }
    fputc('}', f);
}

static void stream_end(FILE *f, enum vw_table_format fmt, int64_t n_rows)
{
    if (fmt == VW_TABLE_FORMAT_JSON) {
        fputs(n_rows == 0 ? "[]\n" : "\n]\n", f);
    }
}

/* ---- aligned ------------------------------------------------------------------------------- */

/* Display width of a UTF-8 string in code points. */
static int disp_width(const char *s)
{
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        w += (*p & 0xC0) != 0x80;
    }
    return w;
}

/* The aligned text of a cell, malloc'd: control characters escaped, cut at max_width. */
static char *aligned_text(const struct cell *c, const struct vw_table_opts *o)
{
    char b[64];
    const char *s = b;
    if (c->type == VW_CELL_NULL) {
        s = o->null_text ? o->null_text : "NULL";
    } else if (c->type == VW_CELL_INT) {
        snprintf(b, sizeof b, "%lld", (long long)c->i);
    } else if (c->type == VW_CELL_REAL && o->real_digits > 0) {
        vw_fmt_real_digits(b, sizeof b, c->d, o->real_digits);
    } else if (c->type == VW_CELL_REAL) {
        vw_fmt_real(b, sizeof b, c->d);
    } else {
        s = c->s;
    }
    size_t n = strlen(s);
    char *out = malloc(n * 4 + 8);
    if (!out) {
        return NULL;
    }
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7F) {
            k += (size_t)snprintf(out + k, 5,
                                  *p == '\n'   ? "\\n"
                                  : *p == '\t' ? "\\t"
                                               : "\\x%02x",
                                  *p);
        } else {
            out[k++] = (char)*p;
        }
    }
    out[k] = 0;
    if (o->max_width > 3 && disp_width(out) > o->max_width) {
        int w = 0;
        for (k = 0; out[k]; k++) {
            w += (out[k] & 0xC0) != 0x80;
            if (w > o->max_width - 3) {
                break;
            }
        }
        memcpy(out + k, "...", 4);
    }
    return out;
}

static void pad(FILE *f, int n)
{
    for (int i = 0; i < n; i++) {
        fputc(' ', f);
    }
}

/* Prints one row of texts with the given widths; right[c] right-aligns a column. */
static void aligned_row(FILE *f, int n_cols, char *const *texts, const int *width,
                        const bool *right)
{
    for (int c = 0; c < n_cols; c++) {
        int w = disp_width(texts[c]);
        if (c > 0) {
            fputs("  ", f);
        }
        if (right[c]) {
            pad(f, width[c] - w);
        }
        fputs(texts[c], f);
        if (!right[c] && c + 1 < n_cols) {
            pad(f, width[c] - w);
        }
    }
    fputc('\n', f);
}

static int print_aligned(const vw_table *t, FILE *f, const struct vw_table_opts *o)
{
    const int nc = t->n_cols;
    const int64_t n_rows = vw_table_n_rows(t);
    char **txt = calloc((size_t)(t->n_cells + 1), sizeof *txt);
    int *width = calloc((size_t)nc + 1, sizeof *width);
    bool *right = calloc((size_t)nc + 1, sizeof *right);
    int rc = txt && width && right ? 0 : -1;
    for (int c = 0; rc == 0 && c < nc; c++) {
        width[c] = disp_width(t->names[c]);
        right[c] = n_rows > 0;
        for (int64_t r = 0; r < n_rows; r++) {
            enum vw_cell_type ty = t->cells[r * nc + c].type;
            right[c] = right[c] && (ty == VW_CELL_INT || ty == VW_CELL_REAL || ty == VW_CELL_NULL);
        }
    }
    for (int64_t i = 0; rc == 0 && i < t->n_cells; i++) {
        txt[i] = aligned_text(&t->cells[i], o);
        rc = txt[i] ? 0 : -1;
        if (rc == 0 && disp_width(txt[i]) > width[i % nc]) {
            width[i % nc] = disp_width(txt[i]);
        }
    }
    if (rc == 0) {
        aligned_row(f, nc, t->names, width, right);
        for (int c = 0; c < nc; c++) {
            fputs(c > 0 ? "  " : "", f);
            for (int k = 0; k < width[c]; k++) {
                fputc('-', f);
            }
        }
        fputc('\n', f);
        for (int64_t r = 0; r < n_rows; r++) {
            aligned_row(f, nc, txt + r * nc, width, right);
        }
    }
    for (int64_t i = 0; txt && i < t->n_cells; i++) {
        free(txt[i]);
    }
    free(txt);
    free(width);
    free(right);
    return rc;
}

int vw_table_print(const vw_table *t, FILE *f, const struct vw_table_opts *opts)
{
    static const struct vw_table_opts defaults = {VW_TABLE_FORMAT_ALIGNED, 0, 0, NULL};
    const struct vw_table_opts *o = opts ? opts : &defaults;
    if (o->format == VW_TABLE_FORMAT_ALIGNED) {
        if (print_aligned(t, f, o) < 0) {
            return -1;
        }
        return ferror(f) ? -1 : 0;
    }
    const int64_t n_rows = vw_table_n_rows(t);
    if (o->format == VW_TABLE_FORMAT_CSV) {
        csv_header(f, t->n_cols, t->names);
    }
    for (int64_t r = 0; r < n_rows; r++) {
        stream_row(f, o->format, t->n_cols, t->names, t->cells + r * t->n_cols, r);
    }
    stream_end(f, o->format, n_rows);
    return ferror(f) ? -1 : 0;
}

/* ---- SQLite statements --------------------------------------------------------------------- */

/* Column c of the current row as a cell; TEXT and BLOB become text (blobs as x'..' hex). */
static int stmt_cell(sqlite3_stmt *st, int c, struct cell *out)
{
    memset(out, 0, sizeof *out);
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_INTEGER:
        out->type = VW_CELL_INT;
        out->i = sqlite3_column_int64(st, c);
        return 0;
    case SQLITE_FLOAT:
        out->type = VW_CELL_REAL;
        out->d = sqlite3_column_double(st, c);
        return 0;
    case SQLITE_NULL:
        return 0;
    case SQLITE_BLOB: {
        const unsigned char *b = sqlite3_column_blob(st, c);
        int n = sqlite3_column_bytes(st, c);
        out->type = VW_CELL_TEXT;
        out->s = malloc((size_t)n * 2 + 4);
        if (!out->s) {
            return -1;
        }
        int k = snprintf(out->s, 3, "x'");
        for (int i = 0; i < n; i++) {
            k += snprintf(out->s + k, 3, "%02x", b[i]);
        }
        snprintf(out->s + k, 2, "'");
        return 0;
    }
    default: {
        const char *s = (const char *)sqlite3_column_text(st, c);
        out->type = VW_CELL_TEXT;
        out->s = strdup(s ? s : "");
        return out->s ? 0 : -1;
    }
    }
}

static vw_table *stmt_table(sqlite3_stmt *st)
{
    const int nc = sqlite3_column_count(st);
    const char **names = calloc((size_t)nc + 1, sizeof *names);
    if (!names) {
        return NULL;
    }
    for (int c = 0; c < nc; c++) {
        names[c] = sqlite3_column_name(st, c);
    }
    vw_table *t = vw_table_create(nc, names);
    free(names);
    return t;
}

int64_t vw_table_print_stmt(void *stmt, FILE *f, const struct vw_table_opts *opts)
{
    static const struct vw_table_opts defaults = {VW_TABLE_FORMAT_ALIGNED, 0, 0, NULL};
    const struct vw_table_opts *o = opts ? opts : &defaults;
    sqlite3_stmt *st = stmt;
    const int nc = sqlite3_column_count(st);
    vw_table *t = stmt_table(st);
    struct cell *row = calloc((size_t)nc + 1, sizeof *row);
    int64_t n = 0, rc = t && row ? 0 : -2;
    int src = SQLITE_DONE;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < nc && rc == 0; c++) {
            rc = stmt_cell(st, c, &row[c]) < 0 ? -2 : 0;
        }
        if (rc == 0 && o->format == VW_TABLE_FORMAT_ALIGNED) {
            for (int c = 0; c < nc; c++) {
                struct cell *dst = push(t);
                if (!dst) {
                    rc = -2;
                    break;
                }
                *dst = row[c];
                row[c].s = NULL;
            }
        } else if (rc == 0) {
            if (n == 0 && o->format == VW_TABLE_FORMAT_CSV) {
                csv_header(f, nc, t->names);
            }
            stream_row(f, o->format, nc, t->names, row, n);
        }
        for (int c = 0; c < nc; c++) {
            free(row[c].s);
            row[c].s = NULL;
        }
        n++;
    }
    if (rc == 0 && src != SQLITE_DONE) {
        rc = -1;
    }
    if (rc == 0 && nc > 0) {
        if (o->format == VW_TABLE_FORMAT_ALIGNED) {
            rc = print_aligned(t, f, o);
        } else if (n == 0 && o->format == VW_TABLE_FORMAT_CSV) {
            csv_header(f, nc, t->names);
        } else {
            stream_end(f, o->format, n);
        }
    }
    free(row);
    vw_table_destroy(t);
    return rc < 0 ? rc : n;
}
