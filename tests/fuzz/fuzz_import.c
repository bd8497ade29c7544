/*
 * libFuzzer harness for the parsers of the files `lltrace import` reads, which come from other
 * programs and from users: llama.cpp's eval-callback text (vw_lc_parse) and NumPy .npy
 * (vw_npy_parse_f32, also what .npz members go through). The first byte of an input picks the
 * parser (odd: .npy, even: text); the rest is the file. Everything a parse returns is walked, so
 * a record or array that claims more than it holds shows up as an ASan report; a failure must
 * leave nothing allocated and name the file. Invariants that fail trap.
 *
 * Seeds: tests/fuzz/import_seeds/ (small hand-written files in both formats). Run:
 * ./fuzz_import CORPUS_DIR tests/fuzz/import_seeds -max_total_time=60.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "import_int.h"
#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_record(const struct vw_lc_record *r)
{
    if (r->n_vals < 0 || (r->n_vals > 0 && (!r->idx || !r->vals)) ||
        memchr(r->name, '\0', sizeof r->name) == NULL ||
        memchr(r->op, '\0', sizeof r->op) == NULL ||
        memchr(r->type, '\0', sizeof r->type) == NULL) {
        __builtin_trap();
    }
    int64_t n = 1;
    for (int d = 0; d < 4; d++) {
        if (r->ne[d] < 0) {
            __builtin_trap();
        }
        n = r->ne[d] > 0 && n > INT64_MAX / r->ne[d] ? INT64_MAX : n * r->ne[d];
    }
    for (int64_t i = 0; i < r->n_vals; i++) {
        if (r->idx[i] < 0 || r->idx[i] >= n) {
            __builtin_trap(); /* a printed element outside the tensor's shape */
        }
        (void)(volatile float)r->vals[i];
    }
}

static void fuzz_text(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1); /* vw_lc_parse wants text[len] readable and NUL */
    if (!text) {
        return;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    struct vw_lc_dump d;
    memset(&d, 0, sizeof d);
    char err[VW_IMP_ERR_MAX] = "";
    if (vw_lc_parse(text, size, "fuzz", &d, err, sizeof err) < 0) {
        if (d.recs || strncmp(err, "fuzz", 4) != 0) {
            __builtin_trap();
        }
    } else {
        if (d.n_recs < 0 || (d.n_recs > 0 && !d.recs) || !d.format) {
            __builtin_trap();
        }
        for (int64_t i = 0; i < d.n_recs; i++) {
            walk_record(&d.recs[i]);
        }
    }
    vw_lc_dump_release(&d);
    free(text);
}

static void fuzz_npy(const uint8_t *data, size_t size)
{
    float *x = NULL;
    int n_dims = 0;
    int64_t shape[4] = {0};
    char err[512] = "";
    if (vw_npy_parse_f32(data, size, "fuzz", &x, &n_dims, shape, err, sizeof err) < 0) {
        if (x || strncmp(err, "fuzz", 4) != 0) {
            __builtin_trap();
        }
        return;
    }
    if (n_dims < 0 || n_dims > 4) {
        __builtin_trap();
    }
    int64_t n = 1;
    for (int d = 0; d < n_dims; d++) {
        if (shape[d] < 0 || (shape[d] > 0 && n > INT64_MAX / shape[d])) {
            __builtin_trap();
        }
        n *= shape[d];
    }
    if (n > 0) {
        if (!x) {
            __builtin_trap();
        }
        (void)(volatile float)x[0];
        (void)(volatile float)x[n - 1];
    }
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    if (data[0] & 1) {
        fuzz_npy(data + 1, size - 1);
    } else {
        fuzz_text(data + 1, size - 1);
    }
    return 0;
}
