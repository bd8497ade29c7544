/*
 * libFuzzer harness for the parsers of the files `lltrace import` reads, which come from other
 * programs and from users: llama.cpp's eval-callback text (vw_lc_parse) and NumPy .npy
 * (vw_npy_parse_f32), .npz archives (vw_npz_walk, each member parsed as .npy) and token lists
 * (vw_tokens_parse_list). A text dump that parses is also mapped to canonical ops (vw_lc_map).
 * The first byte of an input picks the parser (mod 4: 0 text, 1 .npy, 2 .npz, 3 token list);
 * the rest is the file. Everything a parse returns is walked, so a record or array that claims
 * more than it holds shows up as an ASan report; a failure must leave nothing allocated and
 * name the file. Invariants that fail trap.
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
        struct vw_imp imp;
        vw_imp_init(&imp, "llama.cpp-text");
        const int32_t tokens[3] = {1, 403, 407};
        const struct vw_lc_opts o = {tokens, 3};
        if (vw_lc_map(&d, "fuzz", &o, &imp, err, sizeof err) < 0 && strncmp(err, "fuzz", 4) != 0) {
            __builtin_trap();
        }
        vw_imp_release(&imp);
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

static int npz_member(const char *name, const void *data, size_t len, void *user)
{
    (void)user;
    if (!name || (len > 0 && !data)) {
        __builtin_trap();
    }
    fuzz_npy(data, len);
    return 0;
}

static void fuzz_npz(const uint8_t *data, size_t size)
{
    char err[512] = "";
    if (vw_npz_walk(data, size, "fuzz", npz_member, NULL, err, sizeof err) < 0 &&
        strncmp(err, "fuzz", 4) != 0) {
        __builtin_trap();
    }
}

static void fuzz_tokens(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) {
        return;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    int32_t *ids = NULL;
    int64_t n = -1;
    char err[512] = "";
    if (vw_tokens_parse_list(s, &ids, &n, err, sizeof err) == 0) {
        if (n < 0 || (n > 0 && !ids)) {
            __builtin_trap();
        }
        for (int64_t i = 0; i < n; i++) {
            (void)(volatile int32_t)ids[i];
        }
    } else if (!err[0]) {
        __builtin_trap(); /* a refusal says why */
    }
    free(ids);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    switch (data[0] % 4) {
    case 0:
        fuzz_text(data + 1, size - 1);
        break;
    case 1:
        fuzz_npy(data + 1, size - 1);
        break;
    case 2:
        fuzz_npz(data + 1, size - 1);
        break;
    default:
        fuzz_tokens(data + 1, size - 1);
        break;
    }
    return 0;
}
