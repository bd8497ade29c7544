/*
 * diff: the metrics of compare.c against hand-computed values, and `diff correct faulty` on a
 * generated model (lm_mkmodel_write preset tiny: 4 heads, 2 KV heads) for every fault the engine
 * can inject: the first divergence names the op where the fault acts, says whether it is local,
 * and the hint names the fault. Also: a trace agrees with itself bit for bit, a prompt batch
 * lines up with the same prompt decoded token by token, and bad input is refused.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align_int.h"
#include "compare_int.h"
#include "hints_int.h"
#include "lm.h"
#include "run_int.h"
#include "testutil.h"
#include "trc.h"

#define PROMPT "hello world, once upon a time"

static char dir[1024], model[1100], clean[1100];

static void setup(void)
{
    char err[256];
    struct lm_mkmodel_opts mo = {"tiny", LM_TYPE_F32, 7};
    lt_tmp_dir(dir, sizeof dir, "test_diff");
    snprintf(model, sizeof model, "%s/tiny.gguf", dir);
    snprintf(clean, sizeof clean, "%s/clean.trace", dir);
    ck_assert_msg(lm_mkmodel_write(model, &mo, err, sizeof err) == 0, "%s", err);
    lt_record_trace(model, PROMPT, 3, NULL, clean);
}

/* ---- metrics --------------------------------------------------------------------------------- */

START_TEST(test_diff_metrics_exact)
{
    const float b[4] = {1.0f, -2.0f, 0.0f, 4.0f};
    const float a[4] = {1.0f, -2.5f, 0.001f, 4.0f};
    const struct vw_cmp_tol tol = {1e-2, 0.1};
    struct vw_cmp c;
    vw_cmp_init(&c);
    vw_cmp_add(&c, a, b, NULL, 4, 100, &tol);
    vw_cmp_finish(&c);
    ck_assert_int_eq(c.n, 4);
    ck_assert(!c.bitwise);
    ck_assert_double_eq_tol(c.max_abs, 0.5, 1e-12);
    ck_assert_double_eq_tol(c.max_rel, 0.25, 1e-12);
    /* nmse = (0.25 + 1e-6) / (1 + 4 + 16) */
    ck_assert_double_eq_tol(c.nmse, (0.25 + 1e-6) / 21.0, 1e-9);
    ck_assert_int_eq(c.n_fail, 1); /* |0.5| > 0.01 + 0.1 * 2; 0.001 <= 0.01 */
    ck_assert_int_eq(c.worst_idx, 101);
    ck_assert_int_eq(c.first_fail_idx, 101);
    const double cosv = (1 + 5 + 16) / sqrt((1 + 6.25 + 1e-6 + 16) * 21.0);
    ck_assert_double_eq_tol(c.cos, cosv, 1e-7);
}
END_TEST

START_TEST(test_diff_metrics_nonfinite_and_ulp)
{
    const float b[4] = {-INFINITY, NAN, 1.0f, 2.0f};
    const float a[4] = {-INFINITY, NAN, nextafterf(1.0f, 2.0f), INFINITY};
    const struct vw_cmp_tol tol = {VW_CMP_ATOL, VW_CMP_RTOL};
    struct vw_cmp c;
    vw_cmp_init(&c);
    vw_cmp_add(&c, a, b, NULL, 4, 0, &tol);
    vw_cmp_finish(&c);
    ck_assert_int_eq(c.n_nonfinite, 1); /* inf vs 2 only: -inf/-inf and NaN/NaN agree */
    ck_assert_int_eq(c.n_fail, 1);
    ck_assert_int_eq(c.max_ulp, 1);
    ck_assert_int_eq(c.worst_idx, 3);
    ck_assert_int_eq(vw_ulp_dist(-0.0f, 0.0f), 0);
    ck_assert_int_eq(vw_ulp_dist(-1e-45f, 1e-45f), 2);
    ck_assert(vw_cmp_elem_ok(1.0f, 1.00005f, &tol));
    ck_assert(!vw_cmp_elem_ok(1.0f, 1.001f, &tol));
}
END_TEST

START_TEST(test_diff_metrics_known_mask)
{
    const float b[3] = {1.0f, 2.0f, 3.0f};
    const float a[3] = {1.0f, 9.0f, 3.0f};
    const uint8_t known[3] = {1, 0, 1};
    const struct vw_cmp_tol tol = {0, 0};
    struct vw_cmp c;
    vw_cmp_init(&c);
    vw_cmp_add(&c, a, b, known, 3, 0, &tol);
    vw_cmp_finish(&c);
    ck_assert_int_eq(c.n, 2);
    ck_assert(c.bitwise);
    ck_assert(vw_cmp_pass(&c));
}
END_TEST

/* ---- whole traces ---------------------------------------------------------------------------- */

START_TEST(test_diff_self_is_identical)
{
    struct vw_diff d;
    char err[512];
    const struct vw_cmp_tol tol = {VW_CMP_ATOL, VW_CMP_RTOL};
    ck_assert_msg(vw_diff_run(&d, clean, clean, &tol, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(d.first_fail, -1);
    ck_assert_int_eq(d.first_diff, -1);
    ck_assert_int_gt(d.n_compared, 100);
    ck_assert_int_eq(d.n_identical, d.n_compared);
    ck_assert_int_eq(d.n_cand_only, 0);
    vw_diff_release(&d);
}
END_TEST

/* The clean prompt decoded one token per step: every row lines up with the batch's. */
static void token_by_token(const char *path)
{
    struct vw_trace t;
    char err[512];
    trc_writer *w;
    lm_model *m;
    lm_ctx *c;
    int64_t run_id;
    struct lm_ctx_opts co = {0};
    ck_assert_msg(vw_trace_open(&t, clean, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(lm_model_open(model, &m, err, sizeof err), 0);
    struct trc_writer_opts wo = {.overwrite = true, .synchronous = true};
    ck_assert_int_eq(trc_writer_open(path, &wo, &w, err, sizeof err), 0);
    ck_assert_int_eq(trc_run_begin(w, "test", &run_id), 0);
    trc_run_set_i64(w, "head_dim", lm_model_hparams(m)->head_dim);
    lm_faults_init(&co.faults);
    co.trace = w;
    ck_assert_int_eq(lm_ctx_create(m, &co, &c, err, sizeof err), 0);
    for (int64_t i = 0; i < t.n_tok && t.tok_prompt[i]; i++) {
        ck_assert_int_eq(lm_ctx_decode(c, &t.tok_ids[i], 1), 0);
    }
    lm_ctx_destroy(c);
    ck_assert_int_eq(trc_run_end(w, "complete"), 0);
    ck_assert_int_eq(trc_writer_close(w), 0);
    lm_model_close(m);
    vw_trace_close(&t);
}

START_TEST(test_diff_batch_aligns_with_token_by_token)
{
    struct vw_diff d;
    char err[512], tbt[1200];
    const struct vw_cmp_tol tol = {VW_CMP_ATOL, VW_CMP_RTOL};
    snprintf(tbt, sizeof tbt, "%s/tbt.trace", dir);
    token_by_token(tbt);
    ck_assert_msg(vw_diff_run(&d, clean, tbt, &tol, err, sizeof err) == 0, "%s", err);
    /* Step 0 of the clean trace (the batch) is compared row by row with the decode steps. */
    ck_assert_int_eq(d.ops[0].oc.n_rows, d.ref.ops[0].n_pos);
    ck_assert_int_gt(d.ref.ops[0].n_pos, 4);
    for (int64_t i = 0; i < d.ref.n_ops && d.ref.ops[i].step == 0; i++) {
        ck_assert_msg(d.ops[i].compared, "%s not aligned", d.ref.ops[i].name);
        ck_assert_msg(!d.ops[i].fail, "%s diverges (nmse %g)", d.ref.ops[i].name,
                      d.ops[i].oc.c.nmse);
    }
    vw_diff_release(&d);
}
END_TEST

START_TEST(test_diff_open_not_a_trace)
{
    struct vw_diff d;
    char err[512], bad[1200];
    const struct vw_cmp_tol tol = {VW_CMP_ATOL, VW_CMP_RTOL};
    snprintf(bad, sizeof bad, "%s/bad.trace", dir);
    ck_assert_int_eq(lt_write_file(bad, "not a trace at all", 18), 0);
    ck_assert_int_eq(vw_diff_run(&d, clean, bad, &tol, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "bad.trace") != NULL, "%s", err);
    vw_diff_release(&d);
}
END_TEST

/* ---- faults ---------------------------------------------------------------------------------- */

START_TEST(test_diff_fault_first_op_and_hint)
{
    const struct lt_fault_case *fc = &lt_fault_cases[_i];
    char path[1200];
    snprintf(path, sizeof path, "%s/fault%d.trace", dir, _i);
    lt_record_trace(model, PROMPT, 3, fc->fault, path);
    lt_check_fault_diff(clean, path, fc);
}
END_TEST

Suite *diff_suite(void);

Suite *diff_suite(void)
{
    Suite *s = suite_create("diff");
    TCase *core = tcase_create("core");
    tcase_add_unchecked_fixture(core, setup, NULL);
    tcase_set_timeout(core, 300);
    tcase_add_test(core, test_diff_metrics_exact);
    tcase_add_test(core, test_diff_metrics_nonfinite_and_ulp);
    tcase_add_test(core, test_diff_metrics_known_mask);
    tcase_add_test(core, test_diff_self_is_identical);
    tcase_add_test(core, test_diff_batch_aligns_with_token_by_token);
    tcase_add_loop_test(core, test_diff_fault_first_op_and_hint, 0, lt_n_fault_cases);
    suite_add_tcase(s, core);
    TCase *errors = tcase_create("errors");
    tcase_add_unchecked_fixture(errors, setup, NULL);
    tcase_add_test(errors, test_diff_open_not_a_trace);
    suite_add_tcase(s, errors);
    return s;
}
