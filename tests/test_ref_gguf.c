/*
 * The GGUF reader on real files from ../shared: every model in models/, models/dequant/ and the
 * reference sets loads and (when it has tensors) passes the llama checks; the published v1
 * stories260K and its v3 rewrite hold identical metadata and tensor bytes; and copying the v1
 * file through the writer reproduces the v3 file byte for byte.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm.h"
#include "testutil.h"

static lm_gguf *open_shared(const char *rel)
{
    char path[1024], err[LM_ERRBUF_SIZE] = "";
    lm_gguf *g = NULL;
    ck_assert_ptr_nonnull(lt_shared_path(path, sizeof path, rel));
    ck_assert_msg(lm_gguf_open(path, &g, err, sizeof err) == 0, "%s", err);
    return g;
}

/* Opens every .gguf directly inside dir (relative to ../shared); returns how many. */
static int check_dir(const char *rel)
{
    char dir[1024], file[1400], err[LM_ERRBUF_SIZE];
    int n = 0;
    ck_assert_ptr_nonnull(lt_shared_path(dir, sizeof dir, rel));
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot list %s", dir);
    for (struct dirent *e = readdir(d); e; e = readdir(d)) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf") != 0) {
            continue;
        }
        snprintf(file, sizeof file, "%s/%s", rel, e->d_name);
        lm_gguf *g = open_shared(file);
        if (lm_gguf_n_tensors(g) > 0) {
            ck_assert_msg(lm_gguf_check_llama(g, err, sizeof err) == 0, "%s", err);
        }
        for (int64_t i = 0; i < lm_gguf_n_tensors(g); i++) {
            const struct lm_gguf_tensor *t = lm_gguf_tensor(g, i);
            ck_assert_int_eq(lm_type_row_bytes(t->type, t->ne[0]) * t->ne[1] * t->ne[2] * t->ne[3],
                             (int64_t)t->n_bytes);
        }
        lm_gguf_close(g);
        n++;
    }
    closedir(d);
    return n;
}

START_TEST(test_ref_gguf_every_model_loads)
{
    static const char *const sets[] = {"refs/stories260k-q8_0-once", "refs/synth256-q8_0-hello",
                                       "refs/synth256-q4_k_m-hello", "refs/tokenize"};
    ck_assert_int_eq(check_dir("models"), 5);
    ck_assert_int_eq(check_dir("models/dequant"), 13);
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        ck_assert_int_eq(check_dir(sets[i]), 1);
    }
}
END_TEST

START_TEST(test_ref_gguf_dequant_types)
{
    static const struct {
        const char *file;
        int type;
    } cases[] = {
        {"models/dequant/dq256-F16.gguf", LM_TYPE_F16},
        {"models/dequant/dq256-BF16.gguf", LM_TYPE_BF16},
        {"models/dequant/dq256-Q8_0.gguf", LM_TYPE_Q8_0},
        {"models/dequant/dq256-Q4_0.gguf", LM_TYPE_Q4_0},
        {"models/dequant/dq256-Q4_1.gguf", LM_TYPE_Q4_1},
        {"models/dequant/dq256-Q5_0.gguf", LM_TYPE_Q5_0},
        {"models/dequant/dq256-Q5_1.gguf", LM_TYPE_Q5_1},
        {"models/dequant/dq256-Q2_K.gguf", LM_TYPE_Q2_K},
        {"models/dequant/dq256-Q3_K_S.gguf", LM_TYPE_Q3_K},
        {"models/dequant/dq256-Q4_K_S.gguf", LM_TYPE_Q4_K},
        {"models/dequant/dq256-Q5_K_S.gguf", LM_TYPE_Q5_K},
        {"models/dequant/dq256-Q6_K.gguf", LM_TYPE_Q6_K},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lm_gguf *g = open_shared(cases[i].file);
        const struct lm_gguf_tensor *t = lm_gguf_find_tensor(g, "blk.0.attn_q.weight");
        ck_assert_ptr_nonnull(t);
        ck_assert_msg(t->type == cases[i].type, "%s: type %d", cases[i].file, t->type);
        ck_assert_int_eq(lm_gguf_find_tensor(g, "blk.0.attn_norm.weight")->type, LM_TYPE_F32);
        lm_gguf_close(g);
    }
}
END_TEST

START_TEST(test_ref_gguf_tiny_random_vocab)
{
    lm_gguf *g = open_shared("models/llama-2-tiny-random.gguf");
    const char *s;
    uint64_t len;
    ck_assert_uint_eq(lm_gguf_version(g), 3);
    ck_assert_uint_eq(lm_gguf_kv_arr_n(g, lm_gguf_find_key(g, "tokenizer.ggml.tokens")), 32000);
    ck_assert_int_eq(lm_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 15010, &s, &len), 0);
    ck_assert_uint_eq(len, 7);
    ck_assert_int_eq(memcmp(s,
                            "\xe2\x96\x81"
                            "drew",
                            7),
                     0);
    ck_assert_int_eq(lm_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 15043, &s, &len), 0);
    ck_assert_int_eq(memcmp(s, "\xe2\x96\x81Hello", len), 0);
    ck_assert_int_eq(lm_gguf_find_tensor(g, "token_embd.weight")->type, LM_TYPE_F16);
    lm_gguf_close(g);
}
END_TEST

/* Metadata of two files compared value by value (all array elements included). */
static void same_metadata(const lm_gguf *a, const lm_gguf *b)
{
    char fa[256], fb[256];
    ck_assert_int_eq(lm_gguf_n_kv(a), lm_gguf_n_kv(b));
    for (int64_t i = 0; i < lm_gguf_n_kv(a); i++) {
        const char *key = lm_gguf_kv_key(a, i);
        ck_assert_str_eq(key, lm_gguf_kv_key(b, i));
        ck_assert_int_eq(lm_gguf_kv_type(a, i), lm_gguf_kv_type(b, i));
        ck_assert_int_eq(lm_gguf_kv_arr_type(a, i), lm_gguf_kv_arr_type(b, i));
        ck_assert_uint_eq(lm_gguf_kv_arr_n(a, i), lm_gguf_kv_arr_n(b, i));
        lm_gguf_kv_format(a, i, fa, sizeof fa);
        lm_gguf_kv_format(b, i, fb, sizeof fb);
        ck_assert_str_eq(fa, fb);
        enum lm_gguf_vtype ea, eb;
        uint64_t na, nb;
        const void *da, *db;
        if (lm_gguf_get_arr(a, key, &ea, &na, &da) == 0) {
            ck_assert_int_eq(lm_gguf_get_arr(b, key, &eb, &nb, &db), 0);
            ck_assert_int_eq(memcmp(da, db, na * (ea == LM_GGUF_F32 || ea == LM_GGUF_I32 ? 4 : 1)),
                             0);
        }
        for (uint64_t k = 0;
             lm_gguf_kv_arr_type(a, i) == LM_GGUF_STRING && k < lm_gguf_kv_arr_n(a, i); k++) {
            const char *sa, *sb;
            ck_assert_int_eq(lm_gguf_get_arr_str(a, key, k, &sa, &na), 0);
            ck_assert_int_eq(lm_gguf_get_arr_str(b, key, k, &sb, &nb), 0);
            ck_assert_uint_eq(na, nb);
            ck_assert_int_eq(memcmp(sa, sb, na), 0);
        }
    }
}

START_TEST(test_ref_gguf_v1_and_v3_identical)
{
    lm_gguf *a = open_shared("models/stories260k-f32.v1.gguf");
    lm_gguf *b = open_shared("models/stories260k-f32.v3.gguf");
    ck_assert_uint_eq(lm_gguf_version(a), 1);
    ck_assert_uint_eq(lm_gguf_version(b), 3);
    same_metadata(a, b);
    ck_assert_int_eq(lm_gguf_n_tensors(a), 48);
    ck_assert_int_eq(lm_gguf_n_tensors(a), lm_gguf_n_tensors(b));
    for (int64_t i = 0; i < lm_gguf_n_tensors(a); i++) {
        const struct lm_gguf_tensor *ta = lm_gguf_tensor(a, i), *tb = lm_gguf_tensor(b, i);
        ck_assert_str_eq(ta->name, tb->name);
        ck_assert_int_eq(ta->type, tb->type);
        ck_assert_int_eq(ta->n_dims, tb->n_dims);
        ck_assert_int_eq(memcmp(ta->ne, tb->ne, sizeof ta->ne), 0);
        ck_assert_uint_eq(ta->n_bytes, tb->n_bytes);
        ck_assert_int_eq(memcmp(ta->data, tb->data, ta->n_bytes), 0);
    }
    lm_gguf_close(a);
    lm_gguf_close(b);
}
END_TEST

START_TEST(test_ref_gguf_v1_rewritten_equals_v3)
{
    char dir[512], out[600], err[LM_ERRBUF_SIZE];
    lm_gguf *a = open_shared("models/stories260k-f32.v1.gguf");
    lm_gguf_writer *w = NULL;
    snprintf(out, sizeof out, "%s/v3.gguf", lt_tmp_dir(dir, sizeof dir, "ref_gguf"));
    ck_assert_int_eq(lm_gguf_writer_open(out, &w, err, sizeof err), 0);
    for (int64_t i = 0; i < lm_gguf_n_kv(a); i++) {
        ck_assert_int_eq(lm_gguf_writer_copy_kv(w, a, i), 0);
    }
    for (int64_t i = 0; i < lm_gguf_n_tensors(a); i++) {
        const struct lm_gguf_tensor *t = lm_gguf_tensor(a, i);
        ck_assert_int_eq(lm_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne), 0);
    }
    ck_assert_int_eq(lm_gguf_writer_begin_data(w), 0);
    for (int64_t i = 0; i < lm_gguf_n_tensors(a); i++) {
        const struct lm_gguf_tensor *t = lm_gguf_tensor(a, i);
        ck_assert_int_eq(lm_gguf_writer_write_tensor_data(w, t->data, t->n_bytes), 0);
    }
    ck_assert_msg(lm_gguf_writer_finish(w) == 0, "%s", lm_gguf_writer_errmsg(w));
    lm_gguf_writer_close(w);
    lm_gguf_close(a);

    char ref[1024];
    size_t n_out, n_ref;
    char *x = lt_read_file(out, &n_out);
    char *y =
        lt_read_file(lt_shared_path(ref, sizeof ref, "models/stories260k-f32.v3.gguf"), &n_ref);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    ck_assert_uint_eq(n_out, n_ref);
    ck_assert_int_eq(memcmp(x, y, n_ref), 0);
    free(x);
    free(y);
}
END_TEST

Suite *ref_gguf_suite(void);

Suite *ref_gguf_suite(void)
{
    Suite *s = suite_create("ref_gguf");
    TCase *core = tcase_create("core");
    tcase_set_timeout(core, 120);
    tcase_add_test(core, test_ref_gguf_every_model_loads);
    tcase_add_test(core, test_ref_gguf_dequant_types);
    tcase_add_test(core, test_ref_gguf_tiny_random_vocab);
    tcase_add_test(core, test_ref_gguf_v1_and_v3_identical);
    suite_add_tcase(s, core);
    TCase *rt = tcase_create("roundtrip");
    tcase_add_test(rt, test_ref_gguf_v1_rewritten_equals_v3);
    suite_add_tcase(s, rt);
    return s;
}
