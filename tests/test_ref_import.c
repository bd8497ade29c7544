/*
 * `lltrace import` on the real llama.cpp output in ../shared/refs: every set's cb_eval.txt (all
 * decode steps), the real truncated llama-eval-callback stdout, and llama-debug --save-logits.
 * Printed values are checked against the sets' full .npy dumps (key: the node's seq, which is
 * its order in the dump), cache rows against the K/V they were written from, positions against
 * the sets' tokens, and the truncated dump against the complete one it is a prefix of. Prints
 * per set: ops matched / partial / skipped / unmatched and the import speed in MB/s.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "import_int.h"
#include "npy.h"
#include "testutil.h"

Suite *ref_import_suite(void);

static const char *const sets[] = {"stories260k-once",    "stories260k-q8_0-once",
                                   "small-hello",         "synth256-f32-hello",
                                   "synth256-q8_0-hello", "synth256-q4_k_m-hello"};

/* One row of a set's index.tsv. */
struct idx_row {
    char name[96];
    char npy[128];
    int step;
};

static struct idx_row *read_index(const char *set, int64_t *n)
{
    char rel[256], path[1024];
    size_t len;
    snprintf(rel, sizeof rel, "refs/%s/index.tsv", set);
    char *t = lt_read_file(lt_shared_path(path, sizeof path, rel), &len);
    ck_assert_ptr_nonnull(t);
    struct idx_row *rows = calloc(len / 20 + 1, sizeof *rows);
    *n = 0;
    char *save = NULL;
    for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[16] = {0};
        int nf = 0;
        for (char *p = line; nf < 16; nf++) {
            f[nf] = p;
            p = strchr(p, '\t');
            if (!p) {
                nf++;
                break;
            }
            *p++ = '\0';
        }
        if (nf < 13 || strcmp(f[0], "seq") == 0) {
            continue;
        }
        snprintf(rows[*n].name, sizeof rows[*n].name, "%s", f[1]);
        snprintf(rows[*n].npy, sizeof rows[*n].npy, "%s", f[10]);
        rows[*n].step = (int)strtol(f[12], NULL, 10);
        (*n)++;
    }
    free(t);
    return rows;
}

static int32_t *prompt_tokens(const char *set, int64_t *n)
{
    char rel[256], path[1024];
    size_t len;
    snprintf(rel, sizeof rel, "refs/%s/tokens.txt", set);
    char *t = lt_read_file(lt_shared_path(path, sizeof path, rel), &len);
    ck_assert_ptr_nonnull(t);
    char *nl = strchr(t, '\n');
    if (nl) {
        *nl = '\0';
    }
    int32_t *ids;
    char err[256];
    ck_assert_int_eq(vw_tokens_parse_list(t, &ids, n, err, sizeof err), 0);
    free(t);
    return ids;
}

static int64_t param_i64(const struct vw_imp_op *op, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(op->params, k);
    ck_assert_ptr_nonnull(p);
    return strtoll(p + strlen(k), NULL, 10);
}

static const struct vw_imp_op *find_op(const struct vw_imp *imp, int64_t step, const char *name)
{
    for (int64_t i = 0; i < imp->n_ops; i++) {
        if (imp->ops[i].step == step && strcmp(imp->ops[i].name, name) == 0) {
            return &imp->ops[i];
        }
    }
    return NULL;
}

/* The full .npy of a dump node, or NULL when the set pruned it. */
static float *node_npy(const char *set, const struct idx_row *row, int64_t *n_elems)
{
    char rel[400], path[1024], err[256];
    float *v;
    int nd;
    int64_t shape[4];
    if (!row->npy[0]) {
        return NULL;
    }
    snprintf(rel, sizeof rel, "refs/%s/%s", set, row->npy);
    ck_assert_msg(vw_npy_read_f32(lt_shared_path(path, sizeof path, rel), &v, &nd, shape, err,
                                  sizeof err) == 0,
                  "%s", err);
    *n_elems = 1;
    for (int d = 0; d < nd; d++) {
        *n_elems *= shape[d];
    }
    return v;
}

/* For a cache write, the op whose values were written: rope_k (K) or attn_v (V). */
static const struct vw_imp_op *cache_source(const struct vw_imp *imp, const struct vw_imp_op *op)
{
    char name[64];
    bool k = strstr(op->name, ".cache_k") != NULL;
    snprintf(name, sizeof name, "blk.%d.%s", op->layer, k ? "rope_k" : "attn_v");
    return find_op(imp, op->step, name);
}

/* Checks every known element of every op with a .npy; returns the number checked. */
static int64_t check_values(const char *set, const struct vw_imp *imp, const struct idx_row *rows,
                            int64_t n_rows)
{
    int64_t checked = 0;
    for (int64_t i = 0; i < imp->n_ops; i++) {
        const struct vw_imp_op *op = &imp->ops[i];
        const struct vw_imp_op *src = strstr(op->name, ".cache_") ? cache_source(imp, op) : op;
        ck_assert_ptr_nonnull(src);
        int64_t node = param_i64(src, "dump_node"), n_elems;
        ck_assert_int_lt(node, n_rows);
        ck_assert_int_eq(rows[param_i64(op, "dump_node")].step, op->step);
        float *ref = node_npy(set, &rows[node], &n_elems);
        for (int64_t k = 0; ref && k < op->n_known; k++) {
            ck_assert_int_lt(op->known[k], n_elems);
            double want = (double)ref[op->known[k]], got = (double)op->vals[k];
            ck_assert_msg(fabs(got - want) <= 5e-5 + 1e-6 * fabs(want),
                          "%s: %s step %lld element %lld: printed %.6f, npy %.6f", set, op->name,
                          (long long)op->step, (long long)op->known[k], got, want);
            checked++;
        }
        free(ref);
    }
    return checked;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void check_set(const char *set)
{
    char rel[256], path[1024], err[VW_IMP_ERR_MAX];
    int64_t n_rows, n_tok;
    struct idx_row *rows = read_index(set, &n_rows);
    int32_t *tok = prompt_tokens(set, &n_tok);
    struct vw_lc_opts o = {tok, n_tok};
    struct vw_imp imp;
    snprintf(rel, sizeof rel, "refs/%s/cb_eval.txt", set);
    lt_shared_path(path, sizeof path, rel);
    vw_imp_init(&imp, "llama.cpp-text");
    double t0 = now_s();
    ck_assert_msg(vw_import_llamacpp_text(path, &o, &imp, err, sizeof err) == 0, "%s", err);
    double secs = now_s() - t0;
    ck_assert_int_eq(imp.n_records, n_rows);
    ck_assert_int_eq(imp.n_steps, rows[n_rows - 1].step + 1);
    ck_assert_int_eq(imp.n_unmatched, 0);
    ck_assert_ptr_null(imp.warnings);
    ck_assert_int_eq(imp.steps[0].n_tokens, n_tok);
    for (int64_t s = 1; s < imp.n_steps; s++) {
        ck_assert_int_eq(imp.steps[s].pos0, n_tok + s - 1); /* decode step k: position n+k-1 */
    }
    const struct vw_imp_op *out0 = find_op(&imp, 0, "output");
    ck_assert_ptr_nonnull(out0);
    ck_assert_int_eq(out0->pos0, n_tok - 1); /* only the last row gets logits */
    ck_assert_ptr_nonnull(strstr(find_op(&imp, 0, "blk.0.kq")->params, "\"scaled\":false"));
    ck_assert_ptr_nonnull(find_op(&imp, 0, "blk.0.cache_v"));
    int64_t checked = check_values(set, &imp, rows, n_rows);
    ck_assert_int_gt(checked, imp.n_ops);
    const struct vw_imp_kv *bytes = vw_imp_get(&imp, "input_bytes");
    fprintf(stderr,
            "%-22s %4lld nodes, %2lld steps: %4lld ops recorded (%lld partial), %4lld skipped "
            "(views/aliases), %lld unmatched, %3lld without printed rows; %lld printed values "
            "checked against .npy; %.2f MB at %.1f MB/s\n",
            set, (long long)imp.n_records, (long long)imp.n_steps, (long long)imp.n_ops,
            (long long)imp.n_partial, (long long)imp.n_skipped, (long long)imp.n_unmatched,
            (long long)(imp.n_empty + imp.n_nodata), (long long)checked, (double)bytes->i / 1e6,
            (double)bytes->i / 1e6 / secs);
    vw_imp_release(&imp);
    free(rows);
    free(tok);
}

START_TEST(test_ref_import_every_set)
{
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        check_set(sets[i]);
    }
}
END_TEST

/* The real, truncated llama-eval-callback stdout (default settings: f16 KV, flash attention)
 * imports as the prefix of the complete version of the same output. */
START_TEST(test_ref_import_truncated_real)
{
    char path[1024], full[1024], err[VW_IMP_ERR_MAX];
    struct vw_imp a, b;
    lt_shared_path(path, sizeof path, "refs/stories260k-once/eval-callback-real-truncated.txt");
    lt_shared_path(full, sizeof full,
                   "refs/stories260k-once/eval-callback-equivalent-complete-dumper.txt");
    vw_imp_init(&a, "llama.cpp-text");
    vw_imp_init(&b, "llama.cpp-text");
    ck_assert_msg(vw_import_llamacpp_text(path, NULL, &a, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(vw_import_llamacpp_text(full, NULL, &b, err, sizeof err) == 0, "%s", err);
    char want[1200];
    snprintf(want, sizeof want,
             "%s: last record 'attn_out-4' is truncated at line 3513; imported 147 complete "
             "records",
             path);
    ck_assert_str_eq(a.warnings, want);
    ck_assert_int_eq(vw_imp_get(&a, "truncated")->i, 1);
    ck_assert_int_eq(vw_imp_get(&b, "truncated")->i, 0);
    ck_assert_int_eq(vw_imp_get(&a, "flash_attn")->i, 1);
    ck_assert_str_eq(vw_imp_get(&a, "kv_type")->s, "f16");
    ck_assert_int_eq(a.n_unmatched, 0);
    ck_assert_ptr_nonnull(find_op(&a, 0, "blk.4.kqv")); /* kqv_out-4 = RESHAPE(__fattn__-4) */
    ck_assert_ptr_null(find_op(&a, 0, "blk.4.attn_out"));
    ck_assert_ptr_nonnull(find_op(&b, 0, "blk.4.attn_out"));
    ck_assert_int_lt(a.n_ops, b.n_ops);
    for (int64_t i = 0; i < a.n_ops; i++) {
        const struct vw_imp_op *x = &a.ops[i], *y = &b.ops[i];
        ck_assert_str_eq(x->name, y->name);
        ck_assert_int_eq(x->n_known, y->n_known);
        ck_assert(memcmp(x->known, y->known, (size_t)x->n_known * sizeof *x->known) == 0);
        ck_assert(memcmp(x->vals, y->vals, (size_t)x->n_known * sizeof *x->vals) == 0);
    }
    vw_imp_release(&a);
    vw_imp_release(&b);
}
END_TEST

/* llama-debug --save-logits: full-precision logits, bit-identical to the dump's logits_step0. */
START_TEST(test_ref_import_llama_debug_logits)
{
    static const char *const dirs[] = {"llama-debug", "llama-debug-default"};
    for (int d = 0; d < 2; d++) {
        char rel[256], base[1024], bin[1100], tok[1100], pr[1100], ref[1024];
        char err[VW_IMP_ERR_MAX];
        snprintf(rel, sizeof rel, "refs/stories260k-once/%s/llamacpp-stories260k-f32.v3", dirs[d]);
        lt_shared_path(base, sizeof base, rel);
        snprintf(bin, sizeof bin, "%s.bin", base);
        snprintf(tok, sizeof tok, "%s-tokens.bin", base);
        snprintf(pr, sizeof pr, "%s-prompt.txt", base);
        int32_t *ids, *ids2;
        int64_t n, n2;
        char *prompt;
        ck_assert_msg(vw_tokens_read(tok, &ids, &n, err, sizeof err) == 0, "%s", err);
        ck_assert_msg(vw_prompt_file_read(pr, &prompt, &ids2, &n2, err, sizeof err) == 0, "%s",
                      err);
        ck_assert_int_eq(n, 5);
        ck_assert_int_eq(n2, 5);
        ck_assert(memcmp(ids, ids2, sizeof *ids * 5) == 0);
        ck_assert_int_eq(ids[1], 403);
        ck_assert_str_eq(prompt, "Once upon a time");
        struct vw_imp imp;
        vw_imp_init(&imp, "llama.cpp-logits");
        ck_assert_msg(vw_import_llamacpp_logits(bin, ids, n, prompt, &imp, err, sizeof err) == 0,
                      "%s", err);
        ck_assert_int_eq(imp.n_ops, 1);
        ck_assert_int_eq(imp.ops[0].shape[1], 512);
        ck_assert_int_eq(imp.ops[0].pos0, 4);
        if (d == 0) { /* same settings as the dump set: bit-identical to its logits_step0 */
            float *v;
            int nd;
            int64_t shape[4];
            lt_shared_path(ref, sizeof ref, "refs/stories260k-once/logits_step0.npy");
            ck_assert_int_eq(vw_npy_read_f32(ref, &v, &nd, shape, err, sizeof err), 0);
            ck_assert(memcmp(v, imp.ops[0].vals, 512 * sizeof *v) == 0);
            free(v);
        }
        vw_imp_release(&imp);
        free(ids);
        free(ids2);
        free(prompt);
    }
}
END_TEST

Suite *ref_import_suite(void)
{
    Suite *s = suite_create("ref_import");
    TCase *core = tcase_create("core");
    tcase_set_timeout(core, 300);
    tcase_add_test(core, test_ref_import_every_set);
    tcase_add_test(core, test_ref_import_truncated_real);
    tcase_add_test(core, test_ref_import_llama_debug_logits);
    suite_add_tcase(s, core);
    return s;
}
