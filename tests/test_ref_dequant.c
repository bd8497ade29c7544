/*
 * Dequantization against llama.cpp (../shared/refs/dequant): for every weight type, every tensor
 * of ../shared/models/dequant/dq256-<TYPE>.gguf is read with lm_gguf_open, dequantized row by row
 * with lm_dequant_row, and the SHA-256 of its f32 bytes must equal llama.cpp's in index.tsv; the
 * two tensors stored in full as .npy (read with viewer/npy.h) must match element for element
 * (bit patterns). Prints "dequant <TYPE>: passed/total" per type on stderr. Also: lm_quantize_row
 * requantizes the f32 model's tensors to the bytes llama-quantize wrote.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm.h"
#include "npy.h"
#include "testutil.h"

static const char *const k_sets[] = {"F16",  "BF16", "Q8_0",   "Q4_0",   "Q4_1",   "Q5_0",
                                     "Q5_1", "Q2_K", "Q3_K_S", "Q4_K_S", "Q5_K_S", "Q6_K"};
#define N_SETS (sizeof(k_sets) / sizeof(k_sets[0]))

/* Dequantizes a whole tensor (ne0 x rows) into a malloc'd f32 buffer; NULL on error. */
static float *dequant_tensor(const struct lm_gguf_tensor *t, int64_t *n_out)
{
    const int64_t ne0 = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
    const int64_t rb = lm_type_row_bytes(t->type, ne0);
    if (rb < 0 || (uint64_t)(rb * rows) != t->n_bytes) {
        return NULL;
    }
    float *f = malloc((size_t)(ne0 * rows) * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        if (lm_dequant_row(t->type, (const uint8_t *)t->data + r * rb, f + r * ne0, ne0) != 0) {
            free(f);
            return NULL;
        }
    }
    *n_out = ne0 * rows;
    return f;
}

/* Compares one tensor with its .npy; returns 1 when bit-identical. */
static int npy_matches(const char *set, const char *name, const float *f, int64_t n)
{
    char rel[256], path[1024];
    snprintf(rel, sizeof(rel), "refs/dequant/%s/%s.npy", set, name);
    float *ref = NULL;
    int nd = 0;
    int64_t shape[4] = {0};
    char err[512];
    if (vw_npy_read_f32(lt_shared_path(path, sizeof(path), rel), &ref, &nd, shape, err,
                        sizeof(err)) != 0) {
        fprintf(stderr, "dequant %s: %s\n", set, err);
        return 0;
    }
    int64_t m = 1;
    for (int i = 0; i < nd; i++) {
        m *= shape[i];
    }
    const int ok = m == n && memcmp(ref, f, (size_t)n * sizeof(float)) == 0;
    free(ref);
    return ok;
}

/* Checks one index.tsv line of a set; returns 1 on match. npy_ok counts .npy checks. */
static int check_line(const lm_gguf *g, const char *set, char *line, int *npy_ok, int *npy_n)
{
    char name[128], type[16], sha[65];
    long long ne0, ne1;
    if (sscanf(line, "%127s %15s %lld %lld %64s", name, type, &ne0, &ne1, sha) != 5) {
        return 0;
    }
    const struct lm_gguf_tensor *t = lm_gguf_find_tensor(g, name);
    if (!t || t->type != lm_type_from_name(type) || t->ne[0] != ne0 || t->ne[1] != ne1) {
        fprintf(stderr, "dequant %s: %s: tensor missing or of another type/shape\n", set, name);
        return 0;
    }
    int64_t n = 0;
    float *f = dequant_tensor(t, &n);
    if (!f) {
        return 0;
    }
    char hex[65];
    lm_sha256_hex(f, (size_t)n * sizeof(float), hex);
    const int ok = strcmp(hex, sha) == 0;
    if (strcmp(name, "blk.0.attn_q.weight") == 0 || strcmp(name, "blk.0.ffn_down.weight") == 0) {
        *npy_n += 1;
        *npy_ok += npy_matches(set, name, f, n);
    }
    if (!ok) {
        fprintf(stderr, "dequant %s: %s: sha256 %s, llama.cpp %s\n", set, name, hex, sha);
    }
    free(f);
    return ok;
}

START_TEST(test_ref_dequant_matches_llamacpp)
{
    const char *set = k_sets[_i];
    char rel[256], path[1024], err[LM_ERRBUF_SIZE];
    snprintf(rel, sizeof(rel), "refs/dequant/%s/index.tsv", set);
    size_t len;
    char *idx = lt_read_file(lt_shared_path(path, sizeof(path), rel), &len);
    ck_assert_msg(idx != NULL, "cannot read %s", path);
    snprintf(rel, sizeof(rel), "models/dequant/dq256-%s.gguf", set);
    lm_gguf *g = NULL;
    ck_assert_msg(lm_gguf_open(lt_shared_path(path, sizeof(path), rel), &g, err, sizeof(err)) == 0,
                  "%s", err);
    int pass = 0, total = 0, npy_ok = 0, npy_n = 0;
    char *save = NULL;
    for (char *line = strtok_r(idx, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "name\t", 5) == 0) {
            continue;
        }
        total++;
        pass += check_line(g, set, line, &npy_ok, &npy_n);
    }
    fprintf(stderr, "dequant %s: %d/%d tensors, npy %d/%d\n", set, pass, total, npy_ok, npy_n);
    lm_gguf_close(g);
    free(idx);
    ck_assert_int_gt(total, 0);
    ck_assert_int_eq(pass, total);
    ck_assert_int_eq(npy_n, 2);
    ck_assert_int_eq(npy_ok, npy_n);
}
END_TEST

/* Quantizes tensor f (f32, same shape as q) row by row with lm_quantize_row; returns the number
 * of rows whose bytes equal q's. */
static int64_t quantize_rows_equal(const struct lm_gguf_tensor *f, const struct lm_gguf_tensor *q)
{
    const int64_t ne0 = q->ne[0], rows = q->ne[1] * q->ne[2] * q->ne[3];
    const int64_t rb = lm_type_row_bytes(q->type, ne0);
    uint8_t *buf = malloc((size_t)rb);
    int64_t same = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *src = (const float *)f->data + r * ne0;
        ck_assert_int_eq(lm_quantize_row(q->type, src, buf, ne0), 0);
        same += memcmp(buf, (const uint8_t *)q->data + r * rb, (size_t)rb) == 0;
    }
    free(buf);
    return same;
}

/* lm_quantize_row reproduces llama-quantize (no imatrix: the quantize_row_*_ref functions) byte
 * for byte: every tensor of a quantized dq256 model whose type we quantize, requantized from
 * the same tensor of dq256-f32.gguf. Prints "quantize <SET>: rows equal/total" per set. */
START_TEST(test_ref_quantize_matches_llamacpp)
{
    static const char *const sets[] = {"Q8_0", "Q4_0",   "Q4_1",   "Q5_0",   "Q5_1",
                                       "Q2_K", "Q3_K_S", "Q4_K_S", "Q5_K_S", "Q6_K"};
    const char *set = sets[_i];
    char rel[256], path[1024], err[LM_ERRBUF_SIZE];
    lm_gguf *gf = NULL, *gq = NULL;
    ck_assert_msg(lm_gguf_open(lt_shared_path(path, sizeof(path), "models/dequant/dq256-f32.gguf"),
                               &gf, err, sizeof(err)) == 0,
                  "%s", err);
    snprintf(rel, sizeof(rel), "models/dequant/dq256-%s.gguf", set);
    ck_assert_msg(lm_gguf_open(lt_shared_path(path, sizeof(path), rel), &gq, err, sizeof(err)) == 0,
                  "%s", err);
    int64_t same = 0, total = 0, checked = 0;
    for (int64_t i = 0; i < lm_gguf_n_tensors(gq); i++) {
        const struct lm_gguf_tensor *q = lm_gguf_tensor(gq, i);
        const struct lm_gguf_tensor *f = lm_gguf_find_tensor(gf, q->name);
        if (lm_type_block_size(q->type) < 32 || !f || f->type != LM_TYPE_F32 ||
            f->ne[0] != q->ne[0] || f->ne[1] != q->ne[1]) {
            continue;
        }
        checked++;
        total += q->ne[1] * q->ne[2] * q->ne[3];
        same += quantize_rows_equal(f, q);
    }
    fprintf(stderr, "quantize %s: %lld/%lld rows equal in %lld tensors\n", set, (long long)same,
            (long long)total, (long long)checked);
    lm_gguf_close(gq);
    lm_gguf_close(gf);
    ck_assert_int_gt(checked, 0);
    ck_assert_int_eq(same, total);
}
END_TEST

Suite *ref_dequant_suite(void);
Suite *ref_dequant_suite(void)
{
    Suite *s = suite_create("ref_dequant");
    TCase *core = tcase_create("core");
    tcase_set_timeout(core, 120);
    tcase_add_loop_test(core, test_ref_dequant_matches_llamacpp, 0, (int)N_SETS);
    tcase_add_loop_test(core, test_ref_quantize_matches_llamacpp, 0, 10);
    suite_add_tcase(s, core);
    return s;
}
