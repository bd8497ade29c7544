/*
 * Tests of the synthetic models (src/mkmodel.c): the tiny and stories presets in every weight
 * type pass the llama checks, with llama-quantize's type fallbacks; the vocabulary has the SPM
 * layout and makes the tokenizer produce whole words; weights have the intended scale and are
 * the same weights in every type; the bytes depend only on the options.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm.h"
#include "testutil.h"

static char tmpdir[512];

static void setup(void)
{
    lt_tmp_dir(tmpdir, sizeof tmpdir, "mkmodel");
}

/* Writes a model into the scratch directory and opens it. */
static lm_gguf *make(const char *file, const char *preset, int type, uint64_t seed)
{
    char path[700], err[LM_ERRBUF_SIZE] = "";
    struct lm_mkmodel_opts o = {preset, type, seed};
    lm_gguf *g = NULL;
    snprintf(path, sizeof path, "%s/%s", tmpdir, file);
    ck_assert_msg(lm_mkmodel_write(path, &o, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(lm_gguf_open(path, &g, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(lm_gguf_check_llama(g, err, sizeof err) == 0, "%s", err);
    return g;
}

/* Dequantized copy of a tensor (malloc'd). */
static float *dequant(const lm_gguf *g, const char *name, int64_t *n)
{
    const struct lm_gguf_tensor *t = lm_gguf_find_tensor(g, name);
    ck_assert_ptr_nonnull(t);
    *n = t->ne[0] * t->ne[1];
    float *x = malloc((size_t)*n * sizeof *x);
    ck_assert_int_eq(lm_dequant_row(t->type, t->data, x, *n), 0);
    return x;
}

static void moments(const float *x, int64_t n, double *mean, double *std)
{
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        ck_assert(isfinite(x[i]));
        s += (double)x[i];
        s2 += (double)x[i] * (double)x[i];
    }
    *mean = s / (double)n;
    *std = sqrt(s2 / (double)n - *mean * *mean);
}

START_TEST(test_mkmodel_tiny_shape_and_keys)
{
    lm_gguf *g = make("tiny.gguf", "tiny", LM_TYPE_F32, 0);
    uint32_t u;
    float f;
    const char *s;
    uint64_t len;
    ck_assert_int_eq(lm_gguf_n_tensors(g), 2 * 9 + 3);
    ck_assert_int_eq(lm_gguf_get_u32(g, "llama.embedding_length", &u), 0);
    ck_assert_uint_eq(u, 64);
    ck_assert_int_eq(lm_gguf_get_u32(g, "llama.attention.head_count_kv", &u), 0);
    ck_assert_uint_eq(u, 2);
    ck_assert_int_eq(lm_gguf_get_u32(g, "llama.feed_forward_length", &u), 0);
    ck_assert_uint_eq(u, 192);
    ck_assert_int_eq(lm_gguf_get_u32(g, "llama.context_length", &u), 0);
    ck_assert_uint_eq(u, 256);
    ck_assert_int_eq(lm_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f), 0);
    ck_assert_int_eq(lm_gguf_get_f32(g, "llama.rope.freq_base", &f), 0);
    ck_assert_int_eq(lm_gguf_get_str(g, "tokenizer.ggml.model", &s, &len), 0);
    ck_assert_int_eq(memcmp(s, "llama", len), 0);
    ck_assert_int_eq(lm_gguf_find_key(g, "tokenizer.chat_template"), -1);
    ck_assert_ptr_nonnull(lm_gguf_find_tensor(g, "output.weight"));
    ck_assert_uint_lt(lm_gguf_file_size(g), 1000000); /* "a few hundred KB" */
    lm_gguf_close(g);
}
END_TEST

START_TEST(test_mkmodel_vocab_layout)
{
    lm_gguf *g = make("v.gguf", "tiny", LM_TYPE_F32, 0);
    const char *s;
    uint64_t len, n;
    const void *p;
    enum lm_gguf_vtype et;
    ck_assert_int_eq(lm_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &n, &p), 0);
    ck_assert_uint_eq(n, 512);
    int32_t types[512];
    float scores[512];
    memcpy(types, p, sizeof types);
    ck_assert_int_eq(lm_gguf_get_arr(g, "tokenizer.ggml.scores", &et, &n, &p), 0);
    memcpy(scores, p, sizeof scores);
    ck_assert_int_eq(types[0], LM_TOK_UNKNOWN);
    ck_assert_int_eq(types[1], LM_TOK_CONTROL);
    ck_assert_int_eq(types[2], LM_TOK_CONTROL);
    ck_assert_int_eq(lm_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 3, &s, &len), 0);
    ck_assert_int_eq(memcmp(s, "<0x00>", len), 0);
    ck_assert_int_eq(lm_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 258, &s, &len), 0);
    ck_assert_int_eq(memcmp(s, "<0xFF>", len), 0);
    for (int i = 3; i < 259; i++) {
        ck_assert_int_eq(types[i], LM_TOK_BYTE);
    }
    for (int i = 260; i < 512; i++) {
        ck_assert_int_eq(types[i], LM_TOK_NORMAL);
        ck_assert_msg(scores[i] < scores[i - 1], "score %d", i);
    }
    lm_gguf_close(g);
}
END_TEST

START_TEST(test_mkmodel_tokenizer_makes_words)
{
    lm_gguf *g = make("w.gguf", "tiny", LM_TYPE_F32, 0);
    char err[LM_ERRBUF_SIZE];
    lm_tok *t = NULL;
    int32_t ids[64];
    int64_t n;
    ck_assert_msg(lm_tok_create(g, &t, err, sizeof err) == 0, "%s", err);
    const char *text = "Once upon a time the little girl";
    ck_assert_int_eq(lm_tok_encode(t, text, strlen(text), true, false, ids, 64, &n), 0);
    ck_assert_int_eq(n, 8); /* <s> and one token per word */
    ck_assert_str_eq(lm_tok_text(t, ids[1]), "\xe2\x96\x81Once");
    ck_assert_str_eq(lm_tok_text(t, ids[7]), "\xe2\x96\x81girl");
    lm_tok_destroy(t);
    lm_gguf_close(g);
}
END_TEST

START_TEST(test_mkmodel_weight_scale)
{
    lm_gguf *g = make("s.gguf", "tiny", LM_TYPE_F32, 3);
    double mean, std;
    int64_t n;
    float *x = dequant(g, "blk.1.attn_q.weight", &n);
    moments(x, n, &mean, &std);
    ck_assert_double_eq_tol(mean, 0.0, 0.01);
    ck_assert_double_eq_tol(std, 1.0 / 8.0, 0.01); /* 1/sqrt(n_embd) */
    free(x);
    x = dequant(g, "blk.0.ffn_down.weight", &n);
    moments(x, n, &mean, &std);
    ck_assert_double_eq_tol(std, 1.0 / sqrt(192.0), 0.005);
    free(x);
    x = dequant(g, "output_norm.weight", &n);
    moments(x, n, &mean, &std);
    ck_assert_double_eq_tol(mean, 1.0, 0.02);
    ck_assert_double_eq_tol(std, 0.05, 0.02);
    free(x);
    lm_gguf_close(g);
}
END_TEST

START_TEST(test_mkmodel_types_and_fallbacks)
{
    static const struct {
        const char *preset;
        int want, q, ffn_down;
    } cases[] = {
        {"tiny", LM_TYPE_F16, LM_TYPE_F16, LM_TYPE_F16},
        {"tiny", LM_TYPE_Q8_0, LM_TYPE_Q8_0, LM_TYPE_Q8_0},
        {"tiny", LM_TYPE_Q4_0, LM_TYPE_Q4_0, LM_TYPE_Q4_0},
        {"tiny", LM_TYPE_Q4_K, LM_TYPE_Q5_0, LM_TYPE_Q5_0}, /* 64 columns: no 256-block */
        {"tiny", LM_TYPE_Q6_K, LM_TYPE_Q8_0, LM_TYPE_Q8_0},
        {"stories", LM_TYPE_Q8_0, LM_TYPE_Q8_0, LM_TYPE_F32}, /* 172 columns */
        {"stories", LM_TYPE_Q4_K, LM_TYPE_Q5_0, LM_TYPE_F32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char file[64];
        snprintf(file, sizeof file, "t%zu.gguf", i);
        lm_gguf *g = make(file, cases[i].preset, cases[i].want, 0);
        ck_assert_int_eq(lm_gguf_find_tensor(g, "blk.0.attn_q.weight")->type, cases[i].q);
        ck_assert_int_eq(lm_gguf_find_tensor(g, "token_embd.weight")->type, cases[i].q);
        ck_assert_int_eq(lm_gguf_find_tensor(g, "blk.0.ffn_down.weight")->type, cases[i].ffn_down);
        ck_assert_int_eq(lm_gguf_find_tensor(g, "blk.0.ffn_norm.weight")->type, LM_TYPE_F32);
        lm_gguf_close(g);
    }
}
END_TEST

/* The quantized model holds the f32 model's weights, up to the quantization error. */
START_TEST(test_mkmodel_same_weights_in_every_type)
{
    static const struct {
        int type;
        double max_rel_rms;
    } cases[] = {{LM_TYPE_F16, 1e-3}, {LM_TYPE_Q8_0, 0.01}, {LM_TYPE_Q4_0, 0.15}};
    lm_gguf *ref = make("ref.gguf", "stories", LM_TYPE_F32, 7);
    int64_t n, m;
    float *a = dequant(ref, "blk.2.ffn_gate.weight", &n);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char file[32];
        snprintf(file, sizeof file, "q%zu.gguf", i);
        lm_gguf *g = make(file, "stories", cases[i].type, 7);
        float *b = dequant(g, "blk.2.ffn_gate.weight", &m);
        ck_assert_int_eq(n, m);
        double e = 0, s = 0;
        for (int64_t k = 0; k < n; k++) {
            e += ((double)a[k] - (double)b[k]) * ((double)a[k] - (double)b[k]);
            s += (double)a[k] * (double)a[k];
        }
        ck_assert_msg(sqrt(e / s) < cases[i].max_rel_rms, "type %d: %g", cases[i].type,
                      sqrt(e / s));
        free(b);
        lm_gguf_close(g);
    }
    free(a);
    lm_gguf_close(ref);
}
END_TEST

START_TEST(test_mkmodel_deterministic)
{
    char p[3][700];
    size_t len[3];
    char *bytes[3];
    const uint64_t seeds[3] = {5, 5, 6};
    for (int i = 0; i < 3; i++) {
        char err[LM_ERRBUF_SIZE];
        struct lm_mkmodel_opts o = {"tiny", LM_TYPE_Q8_0, seeds[i]};
        snprintf(p[i], sizeof p[i], "%s/d%d.gguf", tmpdir, i);
        ck_assert_msg(lm_mkmodel_write(p[i], &o, err, sizeof err) == 0, "%s", err);
        bytes[i] = lt_read_file(p[i], &len[i]);
    }
    ck_assert_uint_eq(len[0], len[1]);
    ck_assert_int_eq(memcmp(bytes[0], bytes[1], len[0]), 0);
    ck_assert_uint_eq(len[0], len[2]);
    ck_assert_int_ne(memcmp(bytes[0], bytes[2], len[0]), 0);
    for (int i = 0; i < 3; i++) {
        free(bytes[i]);
    }
}
END_TEST

START_TEST(test_mkmodel_errors)
{
    char path[700], err[LM_ERRBUF_SIZE], want[800];
    snprintf(path, sizeof path, "%s/e.gguf", tmpdir);
    struct lm_mkmodel_opts o = {"huge", LM_TYPE_F32, 0};
    ck_assert_int_eq(lm_mkmodel_write(path, &o, err, sizeof err), LM_EINVAL);
    snprintf(want, sizeof want, "%s: unknown preset 'huge' (tiny, stories, small, tinyllama-1.1b)",
             path);
    ck_assert_str_eq(err, want);
    o = (struct lm_mkmodel_opts){"tiny", LM_TYPE_Q8_K, 0};
    ck_assert_int_eq(lm_mkmodel_write(path, &o, err, sizeof err), LM_EUNSUPPORTED);
    snprintf(want, sizeof want, "%s: cannot write weights of type Q8_K", path);
    ck_assert_str_eq(err, want);
    o.type = LM_TYPE_F32;
    ck_assert_int_eq(lm_mkmodel_write("/nonexistent/m.gguf", &o, err, sizeof err), LM_EIO);
    ck_assert_str_eq(err, "/nonexistent/m.gguf: cannot create /nonexistent/m.gguf.tmp: no such "
                          "file or directory");
}
END_TEST

Suite *mkmodel_suite(void);

Suite *mkmodel_suite(void)
{
    Suite *s = suite_create("mkmodel");
    TCase *core = tcase_create("core");
    tcase_add_checked_fixture(core, setup, NULL);
    tcase_set_timeout(core, 120);
    tcase_add_test(core, test_mkmodel_tiny_shape_and_keys);
    tcase_add_test(core, test_mkmodel_vocab_layout);
    tcase_add_test(core, test_mkmodel_tokenizer_makes_words);
    tcase_add_test(core, test_mkmodel_weight_scale);
    tcase_add_test(core, test_mkmodel_types_and_fallbacks);
    tcase_add_test(core, test_mkmodel_same_weights_in_every_type);
    suite_add_tcase(s, core);
    TCase *errors = tcase_create("errors");
    tcase_add_checked_fixture(errors, setup, NULL);
    tcase_add_test(errors, test_mkmodel_errors);
    suite_add_tcase(s, errors);
    TCase *rt = tcase_create("roundtrip");
    tcase_add_checked_fixture(rt, setup, NULL);
    tcase_add_test(rt, test_mkmodel_deterministic);
    suite_add_tcase(s, rt);
    return s;
}
