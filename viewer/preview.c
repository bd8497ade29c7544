/*
 * preview.c - a compact, numpy-like text form of an array for `lltrace show`: nested brackets,
 * every element in one common format and width, the middle of long dimensions elided as "..."
 * (edge items kept at both ends), rows wrapped at the line width. Pure formatting: no trace
 * access, libc only.
 */
#include <math.h>
#include <string.h>

#include "query_int.h"

struct numfmt {
    int kind; /* 0 integers, 1 fixed, 2 exponent */
    int width;
};

struct printer {
    FILE *f;
    int col;
    const struct vw_preview_opts *o;
    struct numfmt nf;
};

static void fmt_value(char *buf, size_t cap, const struct numfmt *nf, float v)
{
    if (isnan(v) || isinf(v)) {
        snprintf(buf, cap, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    } else if (nf->kind == 0) {
        snprintf(buf, cap, "%.0f", (double)v);
    } else if (nf->kind == 1) {
        snprintf(buf, cap, "%.4f", (double)v);
    } else {
        snprintf(buf, cap, "%.4e", (double)v);
    }
}

/* One format for the whole array, from its finite range (like numpy's print options). */
static struct numfmt choose_format(const float *x, int64_t n)
{
    struct numfmt nf = {0, 1};
    float lo = INFINITY, hi = -INFINITY;
    bool integral = true, nonfinite = false;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            nonfinite = true;
            continue;
        }
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        integral = integral && x[i] == floorf(x[i]);
    }
    double big = lo <= hi ? fmax(fabs((double)lo), fabs((double)hi)) : 0;
    if (!(integral && big < 1e7)) {
        nf.kind = big >= 1e-4 && big < 1e5 ? 1 : 2;
    }
    char b[64];
    if (lo <= hi) {
        fmt_value(b, sizeof b, &nf, lo);
        nf.width = (int)strlen(b);
        fmt_value(b, sizeof b, &nf, hi);
        nf.width = (int)strlen(b) > nf.width ? (int)strlen(b) : nf.width;
    }
    if (nonfinite && nf.width < 4) {
        nf.width = 4;
    }
    return nf;
}

static void put(struct printer *p, const char *s)
{
    fputs(s, p->f);
    p->col += (int)strlen(s);
}

static void newline(struct printer *p, int depth)
{
    fputc('\n', p->f);
    p->col = 0;
    put(p, p->o->indent ? p->o->indent : "");
    for (int i = 0; i < depth; i++) {
        put(p, " ");
    }
}

static void elem(struct printer *p, float v)
{
    char b[64], padded[80];
    fmt_value(b, sizeof b, &p->nf, v);
    snprintf(padded, sizeof padded, "%*s", p->nf.width, b);
    put(p, padded);
}

/* Separator after an element or sub-array of a dimension with nd dims left, at depth. */
static void sep(struct printer *p, int nd, int depth)
{
    put(p, ",");
    if (nd == 1) {
        if (p->col + p->nf.width + 2 > p->o->line_width) {
            newline(p, depth + 1);
        } else {
            put(p, " ");
        }
        return;
    }
    for (int k = 0; k < nd - 2; k++) {
        fputc('\n', p->f);
    }
    newline(p, depth + 1);
}

static void rec(struct printer *p, const float *x, int nd, const int64_t *shape, int depth)
{
    int64_t inner = 1;
    for (int d = 1; d < nd; d++) {
        inner *= shape[d];
    }
    const int64_t n = shape[0];
    const bool cut = !p->o->full && n > 2 * (int64_t)p->o->edge;
    put(p, "[");
    for (int64_t i = 0; i < n; i++) {
        if (cut && i == p->o->edge) {
            put(p, "...");
            sep(p, nd, depth);
            i = n - p->o->edge;
        }
        if (nd == 1) {
            elem(p, x[i]);
        } else {
            rec(p, x + i * inner, nd - 1, shape + 1, depth + 1);
        }
        if (i + 1 < n) {
            sep(p, nd, depth);
        }
    }
    put(p, "]");
}

void vw_preview_print(FILE *f, const float *x, int nd, const int64_t *shape,
                      const struct vw_preview_opts *o)
{
    int64_t n = 1;
    for (int d = 0; d < nd; d++) {
        n *= shape[d];
    }
    struct printer p = {f, 0, o, choose_format(x, n)};
    put(&p, o->indent ? o->indent : "");
    if (nd == 0) {
        elem(&p, x[0]);
    } else {
        rec(&p, x, nd, shape, 0);
    }
    fputc('\n', f);
}
