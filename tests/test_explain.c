/*
 * `lltrace explain` on a generated model (lm_mkmodel_write, preset tiny), with traces recorded
 * by the engine itself (vw_run): a good run, one with the RoPE pairing fault (--inject
 * rope=neox), one recorded with stats only and one without layer 1. Checks the properties the
 * analyses promise: the components add up to the recorded logit, per-head contributions add up
 * to their layer's attention, the logit lens at the final residual reproduces the recorded
 * logits bit for bit, --vs splits the logit difference of the two runs; and the command's
 * messages for bad input (unknown piece with a suggestion, step out of range, wrong model,
 * stats-only trace, a partial reference such as an import).
 */
#include <check.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrib_int.h"
#include "lm.h"
#include "run_int.h"
#include "testutil.h"
#include "trc.h"

static char dir[1024], model[1100], model2[1100], good[1100], bad[1100], stats[1100], nol1[1100],
    partial[1100];

static void record(const char *m, const char *trace, const char *fault, const char *rule)
{
    char err[256];
    struct vw_run_opts o;
    vw_run_opts_init(&o);
    o.model = m;
    o.prompt = "Once upon a time there was a";
    o.n_predict = 4;
    o.quiet = true;
    o.trace = trace;
    o.force = true;
    o.sampler.temp = 0;
    if (fault) {
        ck_assert_msg(lm_faults_parse(&o.faults, fault, err, sizeof err) == 0, "%s", err);
    }
    if (rule) {
        o.rules[0] = rule;
        o.n_rules = 1;
    }
    ck_assert_int_eq(vw_run(&o, NULL), 0);
}

/* Runs once per TCase, in the parent process (unchecked fixture). */
static void setup(void)
{
    lt_tmp_dir(dir, sizeof dir, "test_explain");
    snprintf(model, sizeof model, "%s/tiny.gguf", dir);
    snprintf(model2, sizeof model2, "%s/tiny-seed9.gguf", dir);
    snprintf(good, sizeof good, "%s/good.trace", dir);
    snprintf(bad, sizeof bad, "%s/bad.trace", dir);
    snprintf(stats, sizeof stats, "%s/stats.trace", dir);
    snprintf(nol1, sizeof nol1, "%s/nol1.trace", dir);
    snprintf(partial, sizeof partial, "%s/partial.trace", dir);
    lt_make_tiny_model(model, 0);
    lt_make_tiny_model(model2, 9);
    record(model, good, NULL, NULL);
    record(model, bad, "rope=neox", NULL);
    record(model, stats, NULL, "stats");
    record(model, nol1, NULL, "none:blk.1.*");
}

/* ---- helpers ----------------------------------------------------------------------------------
 */

struct opened {
    lm_model *m;
    trc_reader *r;
    struct vw_xrun x;
};

static void open_at(struct opened *o, const char *trace, int64_t step, int64_t pos)
{
    char err[512];
    ck_assert_msg(lm_model_open(model, &o->m, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(trc_reader_open(trace, &o->r, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(vw_xrun_load(o->r, lm_model_hparams(o->m), step, pos, &o->x, err, sizeof err) ==
                      0,
                  "%s", err);
}

static void close_all(struct opened *o)
{
    vw_xrun_release(&o->x);
    trc_reader_close(o->r);
    lm_model_close(o->m);
}

/* Runs lltrace with arguments; returns the exit status, output in *out / *err (freed by caller). */
static int cli(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int cli(char **out, char **err, const char *fmt, ...)
{
    char args[4096], cmd[5000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' explain %s", lt_bin(), args);
    int rc = lt_run(cmd, out, err);
    ck_assert_msg(rc >= 0, "cannot run %s", cmd);
    return rc;
}

/* json_extract(doc, path) as a double (NaN when absent or not a number). */
static double json_num(const char *doc, const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    double v = (double)NAN;
    ck_assert_int_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_prepare_v2(db, "SELECT json_valid(?1), json_extract(?1, ?2)", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, doc, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_msg(sqlite3_column_int(st, 0) == 1, "not valid JSON: %.300s", doc);
    if (sqlite3_column_type(st, 1) == SQLITE_FLOAT ||
        sqlite3_column_type(st, 1) == SQLITE_INTEGER) {
        v = sqlite3_column_double(st, 1);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* ---- core: the decomposition ------------------------------------------------------------------
 */

/* Every step of both runs: the components add up to the recorded logit of the sampled token. */
START_TEST(test_explain_components_sum_to_logit)
{
    const char *traces[2] = {good, bad};
    for (int t = 0; t < 2; t++) {
        for (int64_t step = 0, last = 0; step <= last; step++) {
            struct opened o;
            struct vw_attr a;
            char err[512];
            open_at(&o, traces[t], step, -1);
            last = o.x.last_step;
            ck_assert_int_ge(o.x.next_id, 0);
            ck_assert_int_eq(vw_attr_compute(o.m, &o.x, o.x.next_id, -1, &a, err, sizeof err), 0);
            ck_assert(a.at_final && a.target_recorded);
            ck_assert_int_eq(a.n_unknown, 0);
            ck_assert_double_eq_tol(a.target, o.x.next_logit, 1e-6);
            printf("%s step %lld: logit %.5f, sum %.5f, residual %.2g\n", traces[t],
                   (long long)step, a.target, a.sum, a.residual);
            ck_assert_msg(fabs(a.residual) <= 1e-3, "residual %g", a.residual);
            vw_attr_release(&a);
            close_all(&o);
        }
    }
}
END_TEST

START_TEST(test_explain_heads_sum_to_attention)
{
    struct opened o;
    struct vw_attr a;
    char err[512];
    open_at(&o, bad, 0, -1);
    ck_assert_int_eq(vw_attr_compute(o.m, &o.x, o.x.next_id, -1, &a, err, sizeof err), 0);
    for (int64_t l = 0; l < a.n_layer; l++) {
        double s = 0;
        for (int64_t h = 0; h < a.n_head; h++) {
            s += a.head[l * a.n_head + h];
        }
        ck_assert_msg(fabs(s - a.comp[1 + 2 * l]) <= 1e-4, "layer %lld heads %g attention %g",
                      (long long)l, s, a.comp[1 + 2 * l]);
    }
    vw_attr_release(&a);
    close_all(&o);
}
END_TEST

/* The lens at the final residual equals the recorded logits exactly, and ranks the sampled
 * (greedy) token first. */
START_TEST(test_explain_lens_final_equals_recorded_logits)
{
    for (int64_t step = 0, last = 0; step <= last; step++) {
        struct opened o;
        struct vw_lens l;
        char err[512];
        open_at(&o, step % 2 ? good : bad, step, -1);
        last = o.x.last_step;
        ck_assert_int_eq(vw_lens_compute(o.m, &o.x, o.x.next_id, -1, 5, &l, err, sizeof err), 0);
        ck_assert(l.p[l.n_points - 1].known);
        ck_assert_msg(l.final_vs_recorded == 0, "lens vs recorded: %g", l.final_vs_recorded);
        ck_assert_int_eq(l.p[l.n_points - 1].rank, 1);
        ck_assert_int_eq(l.p[l.n_points - 1].top[0], o.x.next_id);
        ck_assert_int_eq(l.first_top1 >= 0, 1);
        for (int64_t i = 0; i < l.n_points; i++) {
            ck_assert(l.p[i].known);
        }
        vw_lens_release(&l);
        close_all(&o);
    }
}
END_TEST

START_TEST(test_explain_vs_token_splits_the_difference)
{
    struct opened o;
    struct vw_attr a;
    char err[512];
    open_at(&o, good, 1, -1);
    const int32_t t2 = o.x.next_id == 300 ? 301 : 300;
    ck_assert_int_eq(vw_attr_compute(o.m, &o.x, o.x.next_id, t2, &a, err, sizeof err), 0);
    const float *lg = o.x.row[VW_XS_LOGITS];
    ck_assert_double_eq_tol(a.target, (double)lg[o.x.next_id] - (double)lg[t2], 1e-9);
    ck_assert_msg(fabs(a.residual) <= 1e-3, "residual %g", a.residual);
    ck_assert(a.target > 0); /* the sampled token beat the other one */
    vw_attr_release(&a);
    close_all(&o);
}
END_TEST

/* A position inside the prompt: no final residual; the lens stops after the last attention,
 * says why, and the attribution of the lens logit there still adds up. */
START_TEST(test_explain_prompt_position)
{
    struct opened o;
    struct vw_attr a;
    struct vw_lens l;
    char err[512];
    open_at(&o, good, 0, 1);
    ck_assert(!o.x.last_pos);
    ck_assert_int_ge(o.x.next_id, 0); /* the next prompt token */
    ck_assert_int_eq(vw_lens_compute(o.m, &o.x, o.x.next_id, -1, 3, &l, err, sizeof err), 0);
    ck_assert(!l.p[l.n_points - 1].known);
    ck_assert_ptr_nonnull(strstr(l.p[l.n_points - 1].why, "last position"));
    ck_assert(l.p[l.n_points - 2].known && l.p[l.n_points - 2].derived);
    ck_assert_int_eq(vw_attr_compute(o.m, &o.x, o.x.next_id, -1, &a, err, sizeof err), 0);
    ck_assert(!a.at_final && !a.target_recorded);
    ck_assert_double_eq_tol(a.target, l.p[l.n_points - 2].logit, 1e-5);
    ck_assert_msg(fabs(a.residual) <= 1e-3, "residual %g", a.residual);
    vw_attr_release(&a);
    vw_lens_release(&l);
    close_all(&o);
}
END_TEST

/* Two runs: per-component differences add up to the difference of the logits. */
START_TEST(test_explain_vs_difference_adds_up)
{
    struct opened ob, og;
    struct vw_attr ab, ag;
    char err[512];
    open_at(&ob, bad, 0, -1);
    open_at(&og, good, 0, -1);
    const int32_t t = ob.x.next_id;
    ck_assert_int_eq(vw_attr_compute(ob.m, &ob.x, t, -1, &ab, err, sizeof err), 0);
    ck_assert_int_eq(vw_attr_compute(og.m, &og.x, t, -1, &ag, err, sizeof err), 0);
    double s = 0;
    for (int64_t i = 0; i < ab.n_comp; i++) {
        s += ab.comp[i] - ag.comp[i];
    }
    ck_assert_msg(fabs(s - (ab.target - ag.target)) <= 2e-3, "%g vs %g", s, ab.target - ag.target);
    /* the embedding is the same in both runs (same prompt); RoPE only moves attention */
    ck_assert_double_eq_tol(ab.comp[0] / ab.scale, ag.comp[0] / ag.scale, 1e-9);
    vw_attr_release(&ab);
    vw_attr_release(&ag);
    close_all(&ob);
    close_all(&og);
}
END_TEST

/* ---- core: the command ---------------------------------------------------------------------- */

START_TEST(test_explain_cli_single_run)
{
    char *out, *err;
    int rc = cli(&out, &err, "'%s' --bars ascii", good);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, err);
    ck_assert_ptr_nonnull(strstr(out, "logit lens"));
    ck_assert_ptr_nonnull(strstr(out, "direct logit attribution"));
    ck_assert_ptr_nonnull(strstr(out, "layer 1 attention"));
    ck_assert_ptr_nonnull(strstr(out, "heads"));
    ck_assert_ptr_nonnull(strstr(out, "gives the recorded logits (max |diff| 0)"));
    ck_assert_ptr_nonnull(strstr(out, "residual"));
    ck_assert_ptr_nonnull(strstr(out, "|#"));
    free(out);
    free(err);
}
END_TEST

START_TEST(test_explain_cli_json)
{
    char *out, *err;
    int rc = cli(&out, &err, "'%s' --step 2 --top 3 --json", bad);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, err);
    double res = json_num(out, "$.run.attribution.residual");
    ck_assert_msg(fabs(res) <= 1e-3, "residual %g", res);
    ck_assert_double_eq(json_num(out, "$.run.step"), 2);
    ck_assert_double_eq(json_num(out, "$.run.lens.final_vs_recorded"), 0);
    ck_assert_double_eq(json_num(out, "$.run.lens.points[4].rank"), 1);
    ck_assert(!isnan(json_num(out, "$.run.lens.points[2].top[2].prob")));
    ck_assert(!isnan(json_num(out, "$.run.attribution.components[1].heads[3]")));
    free(out);
    free(err);
}
END_TEST

START_TEST(test_explain_cli_vs)
{
    char *out, *err;
    int rc = cli(&out, &err, "'%s' --vs '%s' --bars unicode", bad, good);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, err);
    ck_assert_msg(strstr(out, "the extra ") || strstr(out, " lacks were lost in "), "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "first divergence"));
    ck_assert_ptr_nonnull(strstr(out, "run-ref"));
    ck_assert_ptr_nonnull(strstr(out, "\xe2\x94\x82")); /* the bar axis */
    free(out);
    free(err);
    rc = cli(&out, &err, "'%s' --vs '%s' --json", bad, good);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, err);
    double d = json_num(out, "$.diff.logit");
    double a = json_num(out, "$.run.attribution.logit"),
           b = json_num(out, "$.ref.attribution.logit");
    ck_assert_double_eq_tol(d, a - b, 1e-6); /* JSON numbers of float values print as floats */
    free(out);
    free(err);
}
END_TEST

/* A layer missing from the trace: explained as far as possible, with a warning naming it. */
START_TEST(test_explain_cli_missing_layer_warns)
{
    char *out, *err;
    int rc = cli(&out, &err, "'%s'", nol1);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, err);
    ck_assert_msg(strstr(err, "op 'blk.1.attn_out' is not in step 0"), "%s", err);
    ck_assert_ptr_nonnull(strstr(out, "components could not be computed"));
    free(out);
    free(err);
}
END_TEST

/* A reference holding only some ops, one of them partial (as an import of printed dumps). */
static void write_partial_ref(void)
{
    struct opened o;
    trc_writer *w;
    char err[512];
    int64_t run, known[6];
    open_at(&o, good, 0, -1);
    ck_assert_int_eq(
        trc_writer_open(partial, &(struct trc_writer_opts){.overwrite = true, .synchronous = true},
                        &w, err, sizeof err),
        0);
    ck_assert_int_eq(trc_run_begin(w, "npy", &run), 0);
    ck_assert_int_eq(trc_step_begin(w, 0, o.x.step_pos0, o.x.step_n), 0);
    for (int i = 0; i < 6; i++) {
        known[i] = i;
    }
    const int64_t e = o.x.n_embd, p = o.x.pos;
    struct trc_tensor te = {"out", TRC_DTYPE_F32, 2, {1, e}, o.x.row[VW_XS_EMBD], NULL, 0};
    struct trc_tensor ta = {
        "out", TRC_DTYPE_F32, 2, {1, e}, o.x.row[vw_xslot_layer(0, VW_XL_ATTN)], known, 6};
    struct trc_tensor tl = {"out", TRC_DTYPE_F32, 2, {1, o.x.n_vocab}, o.x.row[VW_XS_LOGITS], NULL,
                            0};
    struct trc_tensor tn = {"in0", TRC_DTYPE_F32, 2, {1, e}, o.x.row[VW_XS_FINAL], NULL, 0};
    struct trc_op ops[4] = {
        {"tok_embd", "get_rows", -1, p, 1, NULL, -1, &te, 1, NULL, 0},
        {"blk.0.attn_out", "matmul", 0, p, 1, NULL, -1, &ta, 1, NULL, 0},
        {"output_norm", "rms_norm", -1, p, 1, NULL, -1, &tn, 1, NULL, 0},
        {"output", "matmul", -1, p, 1, NULL, -1, &tl, 1, NULL, 0},
    };
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(trc_op_record(w, &ops[i]) == 0, "%s", trc_writer_errmsg(w));
    }
    ck_assert_int_eq(trc_step_end(w, -1), 0);
    ck_assert_int_eq(trc_run_end(w, "complete"), 0);
    ck_assert_int_eq(trc_writer_close(w), 0);
    close_all(&o);
}

START_TEST(test_explain_cli_vs_partial_reference)
{
    char *out, *err;
    write_partial_ref();
    int rc = cli(&out, &err, "'%s' --vs '%s' -m '%s' --no-diff", bad, partial, model);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, err);
    ck_assert_msg(strstr(out, "components could not be computed"), "%s", out);
    ck_assert_msg(strstr(out, "op 'blk.0.attn_out' holds 6 of the 64 elements of the row"), "%s",
                  out);
    ck_assert_ptr_nonnull(strstr(err, "records no model hash"));
    free(out);
    free(err);
    rc = cli(&out, &err, "'%s' --vs '%s' --no-diff --json", bad, partial);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, err);
    ck_assert_double_eq(json_num(out, "$.ref.attribution.n_unknown"),
                        4); /* attention 0, ffn 0, layer 1 */
    ck_assert(!isnan(json_num(out, "$.ref.attribution.components[0].logit")));
    ck_assert(isnan(json_num(out, "$.ref.attribution.components[1].logit")));
    ck_assert(!isnan(json_num(out, "$.diff.logit")));
    free(out);
    free(err);
}
END_TEST

/* ---- errors -----------------------------------------------------------------------------------
 */

START_TEST(test_explain_unknown_piece_suggests)
{
    char *out, *err, piece[128];
    lm_model *m;
    char e[256];
    ck_assert_int_eq(lm_model_open(model, &m, e, sizeof e), 0);
    /* a vocabulary word with its last letter dropped */
    const lm_tok *t = lm_model_tok(m);
    int32_t id = -1;
    for (int32_t i = 259; i < lm_tok_n_vocab(t) && id < 0; i++) {
        const char *p = lm_tok_text(t, i);
        if (strncmp(p, "\xe2\x96\x81", 3) == 0 && strlen(p) >= 8) {
            id = i;
        }
    }
    ck_assert_int_ge(id, 0);
    snprintf(piece, sizeof piece, "%s", lm_tok_text(t, id));
    piece[strlen(piece) - 1] = 'q';
    int rc = cli(&out, &err, "'%s' --token '%s'", good, piece);
    char want[300];
    snprintf(want, sizeof want, "lltrace: no token '%s' in the vocabulary (did you mean '", piece);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, want), "%s", err);
    free(out);
    free(err);
    lm_model_close(m);
}
END_TEST

START_TEST(test_explain_step_out_of_range)
{
    char *out, *err;
    int rc = cli(&out, &err, "'%s' --step 99", good);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "step 99 out of range: the trace has steps 0..3"), "%s", err);
    free(out);
    free(err);
    rc = cli(&out, &err, "'%s' --step 1 --pos 0", good);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "position 0 is not in step 1"), "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_explain_model_hash_mismatch)
{
    char *out, *err;
    int rc = cli(&out, &err, "'%s' -m '%s'", good, model2);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "does not match the trace") && strstr(err, "-m"), "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_explain_stats_only_trace)
{
    char *out, *err;
    int rc = cli(&out, &err, "'%s'", stats);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "cannot explain step 0: op 'tok_embd' holds only stats"), "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_explain_usage_errors)
{
    char *out, *err;
    ck_assert_int_eq(cli(&out, &err, "%s", ""), 2);
    ck_assert_ptr_nonnull(strstr(err, "missing TRACE"));
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "'%s' --top 0", good), 2);
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "'%s' --bars fancy", good), 2);
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "'%s' --token 5 --vs-token 5", good), 2);
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "--help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: lltrace explain"));
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "'%s' --token 999999", good), 1);
    ck_assert_ptr_nonnull(strstr(err, "out of range"));
    free(out);
    free(err);
}
END_TEST

Suite *explain_suite(void); /* called by check_main.c */

Suite *explain_suite(void)
{
    Suite *s = suite_create("explain");
    TCase *core = tcase_create("core");
    TCase *errors = tcase_create("errors");
    tcase_add_unchecked_fixture(core, setup, NULL);
    tcase_add_unchecked_fixture(errors, setup, NULL);
    tcase_set_timeout(core, 300);
    tcase_set_timeout(errors, 300);
    tcase_add_test(core, test_explain_components_sum_to_logit);
    tcase_add_test(core, test_explain_heads_sum_to_attention);
    tcase_add_test(core, test_explain_lens_final_equals_recorded_logits);
    tcase_add_test(core, test_explain_vs_token_splits_the_difference);
    tcase_add_test(core, test_explain_prompt_position);
    tcase_add_test(core, test_explain_vs_difference_adds_up);
    tcase_add_test(core, test_explain_cli_single_run);
    tcase_add_test(core, test_explain_cli_json);
    tcase_add_test(core, test_explain_cli_vs);
    tcase_add_test(core, test_explain_cli_missing_layer_warns);
    tcase_add_test(core, test_explain_cli_vs_partial_reference);
    tcase_add_test(errors, test_explain_unknown_piece_suggests);
    tcase_add_test(errors, test_explain_step_out_of_range);
    tcase_add_test(errors, test_explain_model_hash_mismatch);
    tcase_add_test(errors, test_explain_stats_only_trace);
    tcase_add_test(errors, test_explain_usage_errors);
    suite_add_tcase(s, core);
    suite_add_tcase(s, errors);
    return s;
}
