/*
 * libFuzzer harness for the GGUF reader: every input is opened from memory, checked as a llama
 * model, and then everything the reader exposes is walked (keys, typed getters, formatted values,
 * every string of every string array, tensor records and the first and last byte of each
 * tensor's data), so a bad offset shows up as an ASan report. Invariants that fail trap.
 *
 * With -DLLTRACE_FUZZ=ON the whole build carries the fuzzer's coverage instrumentation and the
 * sanitizers, so the reader in liblm.a is fuzzed as it ships. Build: CC=clang cmake
 * -DLLTRACE_FUZZ=ON ...; seeds: tests/fuzz/gguf_seeds.py DIR; run: ./fuzz_gguf DIR
 * -max_total_time=60.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "gguf_int.h"
#include "lm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_kv(const lm_gguf *g, int64_t i)
{
    char buf[256];
    const char *key = lm_gguf_kv_key(g, i), *s;
    uint64_t n, len;
    const void *p;
    enum lm_gguf_vtype et;
    uint32_t u;
    float f;
    bool b;
    if (!key || lm_gguf_find_key(g, key) != i) {
        __builtin_trap();
    }
    if ((size_t)lm_gguf_kv_format(g, i, buf, sizeof buf) != strlen(buf)) {
        __builtin_trap();
    }
    (void)lm_gguf_get_u32(g, key, &u);
    (void)lm_gguf_get_f32(g, key, &f);
    (void)lm_gguf_get_bool(g, key, &b);
    if (lm_gguf_get_str(g, key, &s, &len) == 0 && len > 0) {
        (void)(volatile char)s[len - 1];
    }
    if (lm_gguf_get_arr(g, key, &et, &n, &p) == 0 && n > 0) {
        (void)(volatile uint8_t)((const uint8_t *)p)[n * lm__gguf_vtype_size(et) - 1];
    }
    for (uint64_t k = 0; lm_gguf_get_arr_str(g, key, k, &s, &len) == 0; k++) {
        if (len > 0) {
            (void)(volatile char)s[len - 1];
        }
    }
}

static void walk_tensor(const lm_gguf *g, int64_t i)
{
    const struct lm_gguf_tensor *t = lm_gguf_tensor(g, i);
    if (!t || lm_gguf_find_tensor(g, t->name) != t || t->n_dims < 1 || t->n_dims > 4) {
        __builtin_trap();
    }
    const uint8_t *d = t->data;
    (void)(volatile uint8_t)d[0];
    (void)(volatile uint8_t)d[t->n_bytes - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[LM_ERRBUF_SIZE] = "";
    lm_gguf *g = NULL;
    if (lm_gguf_open_mem(data, size, "fuzz", &g, err, sizeof err) < 0) {
        if (g || strncmp(err, "fuzz: ", 6) != 0) {
            __builtin_trap(); /* failures must leave no handle and name the file */
        }
        return 0;
    }
    if (lm_gguf_check_llama(g, err, sizeof err) < 0 && strncmp(err, "fuzz: ", 6) != 0) {
        __builtin_trap();
    }
    for (int64_t i = 0; i < lm_gguf_n_kv(g); i++) {
        walk_kv(g, i);
    }
    for (int64_t i = 0; i < lm_gguf_n_tensors(g); i++) {
        walk_tensor(g, i);
    }
    lm_gguf_close(g);
    return 0;
}
