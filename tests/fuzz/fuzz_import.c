/*
 * libFuzzer harness for the parsers of the files `lltrace import` reads, which come from other
 * programs and from users: llama.cpp's eval-callback text (vw_lc_parse) and NumPy .npy
 * (vw_npy_parse_f32), .npz archives (vw_npz_walk, each member parsed as .npy), token lists
 * (vw_tokens_parse_list), llama-debug's prompt file (vw_prompt_text_parse) and the name map of
 * `import npy --map` (applied by vw_import_npy_dir to a fixed directory of arrays). A text dump
 * that parses is also mapped to canonical ops (vw_lc_map). The first byte of an input picks the
 * parser (mod 8: 0 and 4 text, 1 and 5 .npy, 2 .npz, 3 token list, 6 name map, 7 prompt file);
 * the rest is the file. Everything a parse returns is walked, so a record or array that claims
 * more than it holds shows up as an ASan report; a failure must leave nothing allocated and
 * name the file. Invariants that fail trap.
 *
 * Seeds: tests/fuzz/import_seeds/ (small hand-written files in both formats). Run:
 * ./fuzz_import CORPUS_DIR tests/fuzz/import_seeds -max_total_time=60.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "import_int.h"
#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a C string (malloc'd, NUL at [size]: the text parsers want text[len] readable). */
static char *cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

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
    char *text = cstr(data, size);
    if (!text) {
        return;
    }
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
    char *s = cstr(data, size);
    if (!s) {
        return;
    }
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

static void fuzz_prompt(const uint8_t *data, size_t size)
{
    char *s = cstr(data, size);
    if (!s) {
        return;
    }
    char *prompt = NULL;
    int32_t *ids = NULL;
    int64_t n = -1;
    char err[512] = "";
    if (vw_prompt_text_parse(s, size, "fuzz", &prompt, &ids, &n, err, sizeof err) == 0) {
        if (!prompt || n <= 0 || !ids || strlen(prompt) > size) {
            __builtin_trap();
        }
        for (int64_t i = 0; i < n; i++) {
            if (ids[i] < 0) {
                __builtin_trap();
            }
        }
    } else if (prompt || ids || strncmp(err, "fuzz", 4) != 0) {
        __builtin_trap(); /* a refusal frees what it made and names the file */
    }
    free(prompt);
    free(ids);
    free(s);
}

/* ---- the name map: a fixed directory of arrays, imported through each input as the map ---- */

static char g_dir[64]; /* the arrays: HF module names, 2 positions x 8 values */
static char g_map[96]; /* the input, written here for each run */

static int write_npy(const char *dir, const char *module)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.npy", dir, module);
    FILE *f = fopen(path, "wb");
    if (!f) {
        return -1;
    }
    char hdr[128];
    memset(hdr, ' ', sizeof hdr);
    static const char dict[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 8), }";
    memcpy(hdr, "\x93NUMPY\x01\x00\x76\x00", 10); /* header length 118: 10 + 118 = 128 */
    memcpy(hdr + 10, dict, sizeof dict - 1);
    hdr[127] = '\n';
    float v[16];
    for (int i = 0; i < 16; i++) {
        v[i] = (float)i * 0.25f - 1.0f;
    }
    int ok = fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr && fwrite(v, 4, 16, f) == 16;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static const char *const modules[] = {
    "model.embed_tokens",
    "model.layers.0.input_layernorm",
    "model.layers.0.self_attn.q_proj",
    "model.layers.1.self_attn.k_proj",
    "model.layers.12.mlp",
    "model.layers.7",
    "model.norm",
    "lm_head",
};

static void map_cleanup(void)
{
    char path[512];
    for (size_t i = 0; i < sizeof modules / sizeof modules[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.npy", g_dir, modules[i]);
        unlink(path);
    }
    unlink(g_map);
    rmdir(g_dir);
}

static int map_setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/fuzz_import_npy.XXXXXX");
    if (!mkdtemp(g_dir)) {
        g_dir[0] = '\0';
        return -1;
    }
    for (size_t i = 0; i < sizeof modules / sizeof modules[0]; i++) {
        if (write_npy(g_dir, modules[i]) < 0) {
            return -1;
        }
    }
    snprintf(g_map, sizeof g_map, "%s.map", g_dir);
    atexit(map_cleanup);
    return 0;
}

static void fuzz_map(const uint8_t *data, size_t size)
{
    static int ready; /* 0 not yet, 1 set up, -1 failed */
    if (ready == 0) {
        ready = map_setup() == 0 ? 1 : -1;
    }
    FILE *f = ready > 0 && size > 0 ? fopen(g_map, "wb") : NULL;
    if (!f) {
        return;
    }
    int ok = fwrite(data + 1, 1, size - 1, f) == size - 1;
    if (fclose(f) != 0 || !ok) {
        return;
    }
    const int32_t tokens[2] = {1, 403};
    struct vw_npy_opts o = {
        g_map, (data[0] & 1) != 0, 1 + (data[0] >> 1) % 4, 1 + (data[0] >> 3) % 4, tokens, 2};
    struct vw_imp imp;
    vw_imp_init(&imp, "hf-npy");
    char err[VW_IMP_ERR_MAX] = "";
    if (vw_import_npy_dir(g_dir, &o, &imp, err, sizeof err) < 0) {
        if (strncmp(err, g_map, strlen(g_map)) != 0 && strncmp(err, g_dir, strlen(g_dir)) != 0) {
            __builtin_trap(); /* a refusal names the map or the directory */
        }
    } else {
        for (int64_t i = 0; i < imp.n_ops; i++) {
            const struct vw_imp_op *op = &imp.ops[i];
            if (!memchr(op->name, '\0', sizeof op->name) || op->n_known != 16 || !op->vals) {
                __builtin_trap();
            }
            (void)(volatile float)op->vals[15];
        }
    }
    vw_imp_release(&imp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    switch (data[0] % 8) {
    case 0:
    case 4:
        fuzz_text(data + 1, size - 1);
        break;
    case 1:
    case 5:
        fuzz_npy(data + 1, size - 1);
        break;
    case 2:
        fuzz_npz(data + 1, size - 1);
        break;
    case 3:
        fuzz_tokens(data + 1, size - 1);
        break;
    case 6:
        fuzz_map(data + 1, size - 1);
        break;
    default:
        fuzz_prompt(data + 1, size - 1);
        break;
    }
    return 0;
}
