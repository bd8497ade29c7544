/*
 * libFuzzer harness for loading a model and running it: a GGUF file that the reader accepts can
 * still hold hyper-parameters, tensor shapes or types that do not fit together, and `lltrace
 * run` must refuse such a model with a message, not crash in the forward pass. At the first
 * input, `lltrace mkmodel` writes three tiny models (F32, Q8_0 and Q4_K weights); each input
 * picks one (byte 0) and changes its bytes (then 5-byte records: a 4-byte little-endian offset
 * and a byte to xor in). The offset falls in the metadata and tensor records (the part before
 * the tensor data) unless byte 1 is odd. The changed file is opened as a model; when that
 * works, a context is made and two decode calls run (4 prompt tokens, then 1). Every failure
 * must come with a message; logits are read to the last one. Invariants that fail trap.
 * Run: ./fuzz_model CORPUS -max_total_time=60.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { N_BASE = 3 };

static struct {
    uint8_t *bytes;
    size_t size, meta; /* meta: bytes before the first tensor's data */
} g_base[N_BASE];
static char g_path[4200];

static void remove_file(void)
{
    unlink(g_path);
}

static void make_bases(void)
{
    const char *dir = getenv("TMPDIR");
    snprintf(g_path, sizeof g_path, "%s/lltrace-fuzz-model-%d.gguf", dir && *dir ? dir : "/tmp",
             (int)getpid());
    atexit(remove_file);
    const int types[N_BASE] = {LM_TYPE_F32, LM_TYPE_Q8_0, LM_TYPE_Q4_K};
    for (int k = 0; k < N_BASE; k++) {
        struct lm_mkmodel_opts o = {.preset = "tiny", .type = types[k], .seed = (uint64_t)k};
        char err[LM_ERRBUF_SIZE];
        lm_gguf *g = NULL;
        if (lm_mkmodel_write(g_path, &o, err, sizeof err) < 0) {
            fprintf(stderr, "fuzz_model: %s\n", err);
            __builtin_trap();
        }
        FILE *f = fopen(g_path, "rb");
        if (!f || fseek(f, 0, SEEK_END) != 0) {
            __builtin_trap();
        }
        g_base[k].size = (size_t)ftell(f);
        g_base[k].bytes = malloc(g_base[k].size);
        rewind(f);
        if (!g_base[k].bytes || fread(g_base[k].bytes, 1, g_base[k].size, f) != g_base[k].size) {
            __builtin_trap();
        }
        fclose(f);
        if (lm_gguf_open_mem(g_base[k].bytes, g_base[k].size, "base", &g, err, sizeof err) < 0) {
            __builtin_trap();
        }
        g_base[k].meta = g_base[k].size;
        for (int64_t i = 0; i < lm_gguf_n_tensors(g); i++) {
            size_t off = (size_t)((const uint8_t *)lm_gguf_tensor(g, i)->data - g_base[k].bytes);
            g_base[k].meta = off < g_base[k].meta ? off : g_base[k].meta;
        }
        lm_gguf_close(g);
    }
}

static void run(const char *path)
{
    char err[LM_ERRBUF_SIZE] = "";
    lm_model *m = NULL;
    if (lm_model_open(path, &m, err, sizeof err) < 0) {
        if (m || !strstr(err, path)) {
            __builtin_trap(); /* a refused model leaves nothing and names the file */
        }
        return;
    }
    const struct lm_hparams *hp = lm_model_hparams(m);
    struct lm_ctx_opts o = {.n_ctx = 8, .n_threads = 1};
    lm_ctx *c = NULL;
    if (lm_ctx_create(m, &o, &c, err, sizeof err) < 0) {
        if (c || !err[0]) {
            __builtin_trap();
        }
        lm_model_close(m);
        return;
    }
    const int32_t v = (int32_t)(hp->n_vocab > 0 ? hp->n_vocab : 1);
    const int32_t prompt[4] = {1 % v, 7 % v, 42 % v, 300 % v}, next = 5 % v;
    if (lm_ctx_decode(c, prompt, 4) == 0 && lm_ctx_decode(c, &next, 1) == 0) {
        const float *logits = lm_ctx_logits(c);
        if (!logits) {
            __builtin_trap();
        }
        (void)(volatile float)logits[0];
        (void)(volatile float)logits[hp->n_vocab - 1];
    } else if (!lm_ctx_errmsg(c) || !lm_ctx_errmsg(c)[0]) {
        __builtin_trap(); /* a failed decode says why */
    }
    lm_ctx_destroy(c);
    lm_model_close(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    if (!g_base[0].bytes) {
        make_bases();
    }
    const int k = data[0] % N_BASE;
    const size_t span = data[1] & 1 ? g_base[k].size : g_base[k].meta;
    uint8_t *img = malloc(g_base[k].size);
    if (!img) {
        return 0;
    }
    memcpy(img, g_base[k].bytes, g_base[k].size);
    for (size_t i = 2; i + 5 <= size; i += 5) {
        uint32_t off;
        memcpy(&off, data + i, 4);
        img[off % span] ^= data[i + 4];
    }
    FILE *f = fopen(g_path, "wb");
    if (!f || fwrite(img, 1, g_base[k].size, f) != g_base[k].size || fclose(f) != 0) {
        __builtin_trap();
    }
    free(img);
    run(g_path);
    return 0;
}
