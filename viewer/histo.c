/*
 * histo.c - a histogram of tensor values drawn with Unicode block characters, one line per bin,
 * for `lltrace show`. Only finite values are binned (equal-width bins between the smallest and
 * the largest); NaN and Inf are counted and reported on a line of their own, because one Inf
 * would otherwise squash every other bin into one.
 */
#include <math.h>
#include <string.h>

#include "query_int.h"

void vw_histo_compute(const float *x, int64_t n, int n_bins, struct vw_histo *h)
{
    memset(h, 0, sizeof *h);
    h->n_bins = n_bins < 1 ? 1 : n_bins > VW_HISTO_MAX_BINS ? VW_HISTO_MAX_BINS : n_bins;
    h->lo = HUGE_VAL;
    h->hi = -HUGE_VAL;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(x[i])) {
            h->n_nan++;
        } else if (isinf(x[i])) {
            h->n_inf++;
        } else {
            h->n_finite++;
            h->lo = (double)x[i] < h->lo ? (double)x[i] : h->lo;
            h->hi = (double)x[i] > h->hi ? (double)x[i] : h->hi;
        }
    }
    if (h->n_finite == 0) {
        return;
    }
    const double span = h->hi - h->lo;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            continue;
        }
        int b = span > 0 ? (int)(((double)x[i] - h->lo) / span * h->n_bins) : 0;
        h->counts[b >= h->n_bins ? h->n_bins - 1 : b]++;
    }
}

/* A bar of `len` eighths of a character cell. */
static void bar(FILE *f, int64_t len)
{
    static const char *const part[8] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    for (int64_t i = 0; i < len / 8; i++) {
        fputs("█", f);
    }
    fputs(part[len % 8], f);
}

void vw_histo_print(FILE *f, const struct vw_histo *h, const char *indent, int width)
{
    int64_t top = 0;
    for (int b = 0; b < h->n_bins; b++) {
        top = h->counts[b] > top ? h->counts[b] : top;
    }
    if (h->n_finite == 0) {
        fprintf(f, "%s(no finite values)\n", indent);
    }
    const double span = h->hi - h->lo;
    const int n_bins = span > 0 ? h->n_bins : 1;
    for (int b = 0; h->n_finite > 0 && b < n_bins; b++) {
        double a = h->lo + span * b / n_bins, z = h->lo + span * (b + 1) / n_bins;
        fprintf(f, "%s%11.4g .. %-11.4g ", indent, a, z);
        int64_t len = top > 0 ? (h->counts[b] * width * 8 + top - 1) / top : 0;
        bar(f, len);
        fprintf(f, "%*s %lld\n", (int)(width - (len + 7) / 8), "", (long long)h->counts[b]);
    }
    if (h->n_nan > 0 || h->n_inf > 0) {
        fprintf(f, "%snot shown: %lld NaN, %lld Inf\n", indent, (long long)h->n_nan,
                (long long)h->n_inf);
    }
}
