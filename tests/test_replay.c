/*
 * replay: re-executing recorded ops with the engine's kernels on a generated model (preset
 * tiny). Every op of a clean trace, and of traces recorded with faults, reproduces bit for bit;
 * a variant changes exactly what it names (rope=neox replayed on a clean trace reproduces a
 * trace recorded with --inject rope=neox, and rope=norm does not); a model whose SHA-256 is not
 * the trace's is refused; `replay --run` re-runs a generation op for op; bad variants are
 * refused with a message.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align_int.h"
#include "lm.h"
#include "replay_int.h"
#include "run_int.h"
#include "testutil.h"

#define PROMPT "hello world"

static char dir[1024], model[1100], other[1100], clean[1100], neox[1100];

static void setup(void)
{
    char err[256];
    struct lm_mkmodel_opts mo = {"tiny", LM_TYPE_Q8_0, 3};
    struct lm_mkmodel_opts mo2 = {"tiny", LM_TYPE_F32, 4};
    lt_tmp_dir(dir, sizeof dir, "test_replay");
    snprintf(model, sizeof model, "%s/tiny.gguf", dir);
    snprintf(other, sizeof other, "%s/other.gguf", dir);
    snprintf(clean, sizeof clean, "%s/clean.trace", dir);
    snprintf(neox, sizeof neox, "%s/neox.trace", dir);
    ck_assert_msg(lm_mkmodel_write(model, &mo, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(lm_mkmodel_write(other, &mo2, err, sizeof err) == 0, "%s", err);
    lt_record_trace(model, PROMPT, 3, NULL, clean);
    lt_record_trace(model, PROMPT, 3, "rope=neox", neox);
}

/* Replays every op of a trace; all must reproduce bit for bit, none may be skipped. */
static void replay_all(const char *path)
{
    struct vw_trace t;
    vw_replay *rp;
    char err[512];
    int64_t n_ok = 0;
    ck_assert_msg(vw_trace_open(&t, path, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(vw_replay_create(&t, NULL, &rp, err, sizeof err), 0);
    for (int64_t i = 0; i < t.n_ops; i++) {
        float *out;
        int64_t n;
        const struct vw_tens *rec;
        int rc = vw_replay_op(rp, i, NULL, &out, &n);
        ck_assert_msg(rc == 0, "%s: %s", t.ops[i].name, vw_replay_errmsg(rp));
        ck_assert_int_eq(vw_trace_tensor(&t, i, "out", &rec), 0);
        ck_assert_int_eq(rec->n, n);
        ck_assert_msg(memcmp(out, rec->data, (size_t)n * sizeof(float)) == 0,
                      "step %lld %s not reproduced", (long long)t.ops[i].step, t.ops[i].name);
        free(out);
        n_ok++;
    }
    ck_assert_int_eq(n_ok, t.n_ops);
    ck_assert_int_gt(n_ok, 100);
    vw_replay_destroy(rp);
    vw_trace_close(&t);
}

START_TEST(test_replay_clean_trace_bit_for_bit)
{
    replay_all(clean);
}
END_TEST

static const char *const faults[] = {"gqa=tile",     "kv=f16",       "softmax=f16", "qk-permute",
                                     "pos-offset=2", "rms-eps=1e-3", "rope=neox"};

START_TEST(test_replay_faulty_trace_bit_for_bit)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/f%d.trace", dir, _i);
    lt_record_trace(model, PROMPT, 3, faults[_i], path);
    replay_all(path);
}
END_TEST

/* Replays the clean trace's rope_q under a variant and compares it with the neox trace. */
static struct vw_cmp rope_variant_vs_neox(const char *spec)
{
    struct vw_trace t, ref;
    struct vw_variant v;
    struct vw_opcmp oc;
    vw_replay *rp;
    float *out;
    int64_t n;
    char err[512];
    const struct vw_cmp_tol tol = {VW_CMP_ATOL, VW_CMP_RTOL};
    ck_assert_int_eq(vw_trace_open(&t, clean, err, sizeof err), 0);
    ck_assert_int_eq(vw_trace_open(&ref, neox, err, sizeof err), 0);
    ck_assert_int_eq(vw_variant_parse(&v, spec, err, sizeof err), 0);
    ck_assert_int_eq(vw_replay_create(&t, NULL, &rp, err, sizeof err), 0);
    /* Layer 0's input is the same in both traces (later layers' already differ). */
    const int64_t i0 = vw_trace_find_step(&t, "blk.0.rope_q", 0);
    ck_assert_int_ge(i0, 0);
    ck_assert_int_eq(vw_replay_op(rp, i0, &v, &out, &n), 0);
    struct vw_override over = {i0, out};
    ck_assert_int_eq(vw_align_compare(&ref, &t, "blk.0.rope_q", "out", t.ops[i0].pos0,
                                      t.ops[i0].pos0 + t.ops[i0].n_pos, &over, &tol, &oc),
                     0);
    ck_assert_int_eq(oc.n_rows, t.ops[i0].n_pos);
    free(out);
    vw_replay_destroy(rp);
    vw_trace_close(&t);
    vw_trace_close(&ref);
    return oc.c;
}

START_TEST(test_replay_variant_identifies_rope_pairing)
{
    struct vw_cmp c = rope_variant_vs_neox("rope=neox");
    ck_assert(c.bitwise);
    c = rope_variant_vs_neox("rope=norm");
    ck_assert(!vw_cmp_pass(&c));
    c = rope_variant_vs_neox("rope=neox,theta=20000");
    ck_assert(!c.bitwise);
}
END_TEST

START_TEST(test_replay_cli_against_ranks_neox_first)
{
    char cmd[4096], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' replay '%s' blk.0.rope_q --against '%s'", lt_bin(), clean,
             neox);
    ck_assert_int_eq(lt_run(cmd, &out, &err), 0);
    const char *first = strstr(out, "  1    ");
    ck_assert_msg(first && strncmp(first + 7, "rope=neox", 9) == 0, "%s", out);
    ck_assert_msg(strstr(first, "identical") != NULL, "%s", out);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_replay_cli_run_is_deterministic)
{
    char cmd[4096], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' replay '%s' --run", lt_bin(), neox);
    ck_assert_int_eq(lt_run(cmd, &out, &err), 0);
    ck_assert_msg(strstr(out, "ops identical") != NULL, "%s%s", out, err);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' replay '%s' --all", lt_bin(), neox);
    ck_assert_int_eq(lt_run(cmd, &out, &err), 0);
    ck_assert_msg(strstr(out, "0 differ, 0 skipped") != NULL, "%s", out);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_replay_wrong_model_refused)
{
    struct vw_trace t;
    vw_replay *rp;
    float *out;
    int64_t n;
    char err[512];
    ck_assert_int_eq(vw_trace_open(&t, clean, err, sizeof err), 0);
    ck_assert_int_eq(vw_replay_create(&t, other, &rp, err, sizeof err), 0);
    const int64_t i = vw_trace_find_step(&t, "blk.0.attn_q", 0);
    ck_assert_int_eq(vw_replay_op(rp, i, NULL, &out, &n), VW_REPLAY_SKIP);
    ck_assert_msg(strstr(vw_replay_errmsg(rp), "is not the model") != NULL, "%s",
                  vw_replay_errmsg(rp));
    /* Ops that need no weight still replay. */
    const int64_t k = vw_trace_find_step(&t, "blk.0.kq_softmax", 0);
    ck_assert_int_eq(vw_replay_op(rp, k, NULL, &out, &n), 0);
    free(out);
    vw_replay_destroy(rp);
    vw_trace_close(&t);
}
END_TEST

START_TEST(test_replay_bad_variant)
{
    struct vw_variant v;
    char err[256];
    ck_assert_int_eq(vw_variant_parse(&v, "rope=sideways", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "rope=sideways") != NULL, "%s", err);
    ck_assert_int_eq(vw_variant_parse(&v, "theta=-3", err, sizeof err), -1);
    ck_assert_int_eq(vw_variant_parse(&v, "gqa", err, sizeof err), -1);
    ck_assert_int_eq(vw_variant_parse(&v, "theta=inf", err, sizeof err), -1);
    ck_assert_int_eq(vw_variant_parse(&v, "", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "empty variant"));
    ck_assert_int_eq(vw_variant_parse(&v, "gqa=tile,kv=f16", err, sizeof err), 0);
    ck_assert_int_eq(v.gqa_tile, 1);
    ck_assert_int_eq(v.kv_type, LM_TYPE_F16);
}
END_TEST

Suite *replay_suite(void);

Suite *replay_suite(void)
{
    Suite *s = suite_create("replay");
    TCase *core = tcase_create("core");
    tcase_add_unchecked_fixture(core, setup, NULL);
    tcase_set_timeout(core, 300);
    tcase_add_test(core, test_replay_clean_trace_bit_for_bit);
    tcase_add_loop_test(core, test_replay_faulty_trace_bit_for_bit, 0,
                        (int)(sizeof faults / sizeof faults[0]));
    tcase_add_test(core, test_replay_variant_identifies_rope_pairing);
    tcase_add_test(core, test_replay_cli_against_ranks_neox_first);
    tcase_add_test(core, test_replay_cli_run_is_deterministic);
    suite_add_tcase(s, core);
    TCase *errors = tcase_create("errors");
    tcase_add_unchecked_fixture(errors, setup, NULL);
    tcase_set_timeout(errors, 120);
    tcase_add_test(errors, test_replay_wrong_model_refused);
    tcase_add_test(errors, test_replay_bad_variant);
    suite_add_tcase(s, errors);
    return s;
}
