/*
 * Tests of the tensor SQL functions (tracer/trc_sqlfn.c) on the reader's connection, across an
 * attached second trace, and through the loadable extension lltrace_sqlext.so; plus the views of
 * schema/trace.sql that use them (v_rope, v_op_stats, v_runs). Each function is checked against
 * values computed here, and each of its errors by message.
 */
#include <check.h>
#include <libgen.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "trc.h"

static char g_dir[1024];
static char g_a[1200];
static char g_b[1200];

/* Tensor ids in trace A (in recording order; dedupe does not apply to these values). */
enum { T_POS = 1, T_COS, T_SIN, T_ROPE_OUT, T_LOGITS, T_STATS, T_HALF, T_PART, T_PART2 };

static float g_logits[2][5] = {{0.5f, -1.0f, 3.0f, 2.0f, 0.0f}, {1.0f, 4.0f, -2.0f, 0.25f, 3.5f}};

static void rope_tables(float cosv[3][2], float sinv[3][2])
{
    for (int p = 0; p < 3; p++) {
        for (int i = 0; i < 2; i++) {
            float th = (float)p * powf(10000.0f, -(float)(2 * i) / 4.0f);
            cosv[p][i] = cosf(th);
            sinv[p][i] = sinf(th);
        }
    }
}

/* Writes a small trace; `delta` perturbs the logits (trace B). */
static void make_trace(const char *path, float delta)
{
    trc_writer *w = NULL;
    char err[256];
    struct trc_writer_opts o = {.overwrite = true};
    ck_assert_int_eq(trc_writer_open(path, &o, &w, err, sizeof err), 0);
    ck_assert_int_eq(trc_writer_add_rule(w, "stats:stats_*"), 0);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    ck_assert_int_eq(trc_step_begin(w, 0, 0, 3), 0);
    int32_t pos[3] = {0, 1, 2};
    float cosv[3][2];
    float sinv[3][2];
    float rope_out[3][4];
    float logits[2][5];
    rope_tables(cosv, sinv);
    for (int i = 0; i < 12; i++) {
        rope_out[i / 4][i % 4] = (float)i * 0.5f;
    }
    for (int i = 0; i < 10; i++) {
        logits[i / 5][i % 5] = g_logits[i / 5][i % 5] + (i == 7 ? delta : 0.0f);
    }
    struct trc_tensor rt[4] = {
        {.role = "pos", .dtype = TRC_DTYPE_I32, .n_dims = 1, .shape = {3}, .data = pos},
        {.role = "cos", .dtype = TRC_DTYPE_F32, .n_dims = 2, .shape = {3, 2}, .data = cosv},
        {.role = "sin", .dtype = TRC_DTYPE_F32, .n_dims = 2, .shape = {3, 2}, .data = sinv},
        {.role = "out", .dtype = TRC_DTYPE_F32, .n_dims = 2, .shape = {3, 4}, .data = rope_out}};
    struct trc_op rope = {.name = "blk.0.rope_q",
                          .kind = "rope",
                          .layer = 0,
                          .pos0 = 0,
                          .n_pos = 3,
                          .elapsed_ns = -1,
                          .tensors = rt,
                          .n_tensors = 4};
    ck_assert_int_eq(trc_op_record(w, &rope), 0);
    struct trc_tensor lt = {
        .role = "out", .dtype = TRC_DTYPE_F32, .n_dims = 2, .shape = {2, 5}, .data = logits};
    struct trc_op out = {.name = "output",
                         .kind = "matmul",
                         .layer = -1,
                         .n_pos = 2,
                         .elapsed_ns = -1,
                         .tensors = &lt,
                         .n_tensors = 1};
    ck_assert_int_eq(trc_op_record(w, &out), 0);
    float sx[4] = {9, 8, 7, 6};
    struct trc_tensor st = {
        .role = "out", .dtype = TRC_DTYPE_F32, .n_dims = 1, .shape = {4}, .data = sx};
    struct trc_op so = {.name = "stats_only",
                        .kind = "add",
                        .layer = -1,
                        .elapsed_ns = -1,
                        .tensors = &st,
                        .n_tensors = 1};
    ck_assert_int_eq(trc_op_record(w, &so), 0);
    uint16_t half[3] = {0x3c00, 0xc000, 0x3800}; /* 1, -2, 0.5 */
    struct trc_tensor ht = {
        .role = "out", .dtype = TRC_DTYPE_F16, .n_dims = 1, .shape = {3}, .data = half};
    struct trc_op ho = {.name = "half",
                        .kind = "add",
                        .layer = -1,
                        .elapsed_ns = -1,
                        .tensors = &ht,
                        .n_tensors = 1};
    ck_assert_int_eq(trc_op_record(w, &ho), 0);
    /* partial copies of the logits: elements 1, 2, 7 and 2, 7, 9 */
    float pv[3] = {logits[0][1], logits[0][2], logits[1][2]};
    int64_t pk[3] = {1, 2, 7};
    float pv2[3] = {logits[0][2] + 1.0f, logits[1][2], logits[1][4]};
    int64_t pk2[3] = {2, 7, 9};
    struct trc_tensor pt[2] = {{.role = "out",
                                .dtype = TRC_DTYPE_F32,
                                .n_dims = 2,
                                .shape = {2, 5},
                                .data = pv,
                                .known = pk,
                                .n_known = 3},
                               {.role = "in0",
                                .dtype = TRC_DTYPE_F32,
                                .n_dims = 2,
                                .shape = {2, 5},
                                .data = pv2,
                                .known = pk2,
                                .n_known = 3}};
    struct trc_op po = {.name = "partial",
                        .kind = "matmul",
                        .layer = -1,
                        .elapsed_ns = -1,
                        .tensors = pt,
                        .n_tensors = 2};
    ck_assert_int_eq(trc_op_record(w, &po), 0);
    ck_assert_int_eq(trc_step_end(w, -1), 0);
    ck_assert_int_eq(trc_writer_close(w), 0);
}

static void setup(void)
{
    lt_tmp_dir(g_dir, sizeof g_dir, "trace_sql");
    snprintf(g_a, sizeof g_a, "%s/a.trace", g_dir);
    snprintf(g_b, sizeof g_b, "%s/b.trace", g_dir);
    make_trace(g_a, 0.0f);
    make_trace(g_b, 0.5f);
}

static trc_reader *g_r;

static void open_a(void)
{
    char err[256];
    setup();
    ck_assert_msg(trc_reader_open(g_a, &g_r, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(trc_reader_attach(g_r, "ref", g_b), 0);
}

static void close_a(void)
{
    trc_reader_close(g_r);
    g_r = NULL;
}

/* One value of a query as text, "NULL", or "ERROR: <message>" (static buffer). */
static const char *q(const char *sql)
{
    return lt_sql1(trc_reader_sql_handle(g_r), sql);
}

static double qd(const char *sql)
{
    const char *s = q(sql);
    char *end;
    double v = strtod(s, &end);
    ck_assert_msg(end != s, "%s -> '%s'", sql, s);
    return v;
}

#define CK_ERR(sql, needle)                                                                        \
    do {                                                                                           \
        const char *got_ = q(sql);                                                                 \
        ck_assert_msg(strncmp(got_, "ERROR: ", 7) == 0 && strstr(got_, needle),                    \
                      "%s -> '%s', want error with '%s'", sql, got_, needle);                      \
    } while (0)

/* ---- core ---------------------------------------------------------------------------------- */

START_TEST(test_trace_sql_shape_and_stat)
{
    ck_assert_str_eq(q("SELECT t_shape(5)"), "[2,5]");
    ck_assert_str_eq(q("SELECT t_shape('5')"), "[2,5]");
    ck_assert_str_eq(q("SELECT t_shape('ref.5')"), "[2,5]");
    ck_assert_str_eq(q("SELECT t_shape(x'0000803f00000040')"), "[2]");
    ck_assert_str_eq(q("SELECT t_shape(NULL)"), "NULL");
    ck_assert_str_eq(q("SELECT t_stat(5, 'min')"), "-2.0");
    ck_assert_str_eq(q("SELECT t_stat(5, 'max')"), "4.0");
    ck_assert_double_eq_tol(qd("SELECT t_stat(5, 'mean')"), 11.25 / 10.0, 1e-9);
    ck_assert_double_eq_tol(qd("SELECT t_stat(5, 'rms')"), sqrt(47.5625 / 10.0), 1e-9);
    ck_assert_str_eq(q("SELECT t_stat(5, 'nan') || t_stat(5, 'inf')"), "00");
    ck_assert_str_eq(q("SELECT t_stat(6, 'max')"), "9.0"); /* stats-only: stats are there */
    ck_assert_str_eq(q("SELECT t_stat(x'0000803f00000040', 'mean')"), "1.5");
}
END_TEST

START_TEST(test_trace_sql_at_and_slice)
{
    ck_assert_str_eq(q("SELECT t_at(5, 2)"), "3.0");
    ck_assert_str_eq(q("SELECT t_at(5, 1, 1)"), "4.0");
    ck_assert_str_eq(q("SELECT t_at(5, -1, -1)"), "3.5");
    ck_assert_str_eq(q("SELECT t_at(1, 2)"), "2"); /* i32 stays an integer */
    ck_assert_str_eq(q("SELECT typeof(t_at(1, 2))"), "integer");
    ck_assert_str_eq(q("SELECT t_at(7, 1)"), "-2.0"); /* f16 widened */
    ck_assert_str_eq(q("SELECT t_at(6, 0)"), "NULL"); /* stats only */
    ck_assert_str_eq(q("SELECT t_at(8, 7)"), "-2.0"); /* partial: known */
    ck_assert_str_eq(q("SELECT t_at(8, 0)"), "NULL"); /* partial: not known */
    ck_assert_str_eq(q("SELECT t_slice(5, 1)"), "[1,4,-2,0.25,3.5]");
    ck_assert_str_eq(q("SELECT t_slice(5, ':', '1:3')"), "[[-1,3],[4,-2]]");
    ck_assert_str_eq(q("SELECT t_slice(5, '0, ::2')"), "[0.5,3,0]");
    /* a step of any size (n + step - 1 overflowed); the first element is taken */
    ck_assert_str_eq(q("SELECT t_slice(5, '0, ::9223372036854775807')"), "[0.5]");
    ck_assert_str_eq(q("SELECT t_slice(5, '0, 1::9223372036854775807')"), "[-1]");
    ck_assert_str_eq(q("SELECT t_slice(5, 0, -1)"), "0");
    ck_assert_str_eq(q("SELECT t_slice(1)"), "[0,1,2]");
    ck_assert_str_eq(q("SELECT t_slice(8, 0)"), "[null,-1,3,null,null]");
    ck_assert_str_eq(q("SELECT t_slice('ref.5', 1, 2)"), "-1.5");
    ck_assert_str_eq(q("SELECT json_array_length(t_slice(5))"), "2");
}
END_TEST

static void metrics_ref(double *maxabs, double *nmse, double *cosine)
{
    /* candidate = A's logits, reference = B's: element 7 differs by 0.5 */
    double d2 = 0;
    double b2 = 0;
    double ab = 0;
    double a2 = 0;
    *maxabs = 0;
    for (int i = 0; i < 10; i++) {
        double a = (double)g_logits[i / 5][i % 5];
        double b = a + (i == 7 ? 0.5 : 0.0);
        d2 += (a - b) * (a - b);
        b2 += b * b;
        ab += a * b;
        a2 += a * a;
        *maxabs = fabs(a - b) > *maxabs ? fabs(a - b) : *maxabs;
    }
    *nmse = d2 / b2;
    *cosine = ab / (sqrt(a2) * sqrt(b2));
}

START_TEST(test_trace_sql_compare_across_traces)
{
    double maxabs;
    double nmse;
    double cosine;
    metrics_ref(&maxabs, &nmse, &cosine);
    ck_assert_double_eq_tol(qd("SELECT t_maxabs(5, 'ref.5')"), maxabs, 1e-12);
    ck_assert_double_eq_tol(qd("SELECT t_nmse(5, 'ref.5')"), nmse, 1e-12);
    ck_assert_double_eq_tol(qd("SELECT t_cos(5, 'ref.5')"), cosine, 1e-12);
    /* -2 -> -1.5: f32 exponents differ by one; ulps = 2^22 (from -2 down to -1.5) */
    ck_assert_str_eq(q("SELECT t_ulp(5, 'ref.5')"), "4194304");
    ck_assert_str_eq(q("SELECT t_ulp(5, 5) || t_maxabs(5, 5) || t_nmse(5, 5)"), "00.00.0");
    ck_assert_str_eq(q("SELECT t_equal(5, 5) || t_equal(5, 'ref.5') || t_equal(2, 'ref.2')"),
                     "101");
    ck_assert_str_eq(q("SELECT t_equal(5, 4)"), "0");
    /* the documented join: logits of every step, candidate against reference */
    ck_assert_str_eq(q("SELECT count(*) FROM v_op_stats a JOIN ref.v_op_stats b "
                       "USING (step, name) WHERE a.name = 'output' AND "
                       "t_nmse(a.tensor_id, 'ref.' || b.tensor_id) > 0"),
                     "1");
    /* partial against full: only elements 1, 2, 7 count (7 differs by 0.5) */
    ck_assert_str_eq(q("SELECT t_maxabs(8, 'ref.5')"), "0.5");
    /* partial against partial: common elements 2 and 7; element 2 differs by 1 */
    ck_assert_str_eq(q("SELECT t_maxabs(8, 9)"), "1.0");
    /* a blob argument is an f32 vector of the same element count */
    ck_assert_str_eq(q("SELECT t_maxabs(3, x'0000803f0000803f0000803f0000803f0000803f0000803f')"),
                     q("SELECT 1.0 - t_stat(3, 'min')"));
    ck_assert_str_eq(q("SELECT t_maxabs(6, 5)"), "NULL"); /* stats only */
}
END_TEST

START_TEST(test_trace_sql_topk_and_dot)
{
    ck_assert_str_eq(q("SELECT t_topk(5, 3)"), "[[6,4],[9,3.5],[2,3]]");
    ck_assert_str_eq(q("SELECT t_topk(8, 5)"), "[[2,3],[1,-1],[7,-2]]");
    ck_assert_str_eq(q("SELECT t_dot(5, '[1,1,1,1,1]')"), "[4.5,6.75]");
    ck_assert_str_eq(q("SELECT t_dot(5, '[0,0,0,0,0,0,0,1,0,0]')"), "-2.0");
    ck_assert_str_eq(q("SELECT t_dot(5, 5)"), q("SELECT 4.5 * 0 + 0.25 + 1 + 9 + 4 + 0 + "
                                                "1 + 16 + 4 + 0.0625 + 12.25"));
    ck_assert_str_eq(q("SELECT t_dot(4, '[1,0,0,0]')"), "[0,2,4]");
}
END_TEST

START_TEST(test_trace_sql_views)
{
    ck_assert_str_eq(q("SELECT count(*) FROM v_rope"), "3");
    ck_assert_str_eq(q("SELECT group_concat(pos) FROM v_rope"), "0,1,2");
    float cosv[3][2];
    float sinv[3][2];
    rope_tables(cosv, sinv);
    ck_assert_double_eq_tol(qd("SELECT json_extract(cos, '$[1]') FROM v_rope WHERE pos = 2"),
                            (double)cosv[2][1], 1e-7);
    ck_assert_double_eq_tol(qd("SELECT json_extract(sin, '$[0]') FROM v_rope WHERE pos = 1"),
                            (double)sinv[1][0], 1e-7);
    ck_assert_str_eq(q("SELECT group_concat(name || ':' || (coalesce(stored_bytes, 0) > 0)) FROM "
                       "v_op_stats"),
                     "blk.0.rope_q:1,output:1,stats_only:0,half:1,partial:1");
    ck_assert_str_eq(q("SELECT status || n_steps FROM v_runs"), "complete1");
    ck_assert_str_eq(q("SELECT count(*) FROM v_nonfinite"), "0");
    ck_assert_str_eq(q("SELECT count(*) FROM v_op_tensors"), "9");
}
END_TEST

START_TEST(test_trace_sql_help_documents_every_function)
{
    const char *h = trc_sql_functions_help();
    static const char *const fns[] = {"t_shape(",  "t_stat(", "t_at(",  "t_slice(",
                                      "t_maxabs(", "t_nmse(", "t_cos(", "t_ulp(",
                                      "t_equal(",  "t_topk(", "t_dot("};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        ck_assert_msg(strstr(h, fns[i]), "help lacks %s", fns[i]);
    }
    ck_assert_ptr_nonnull(strstr(h, "'ref.12'"));
}
END_TEST

/* ---- errors -------------------------------------------------------------------------------- */

START_TEST(test_trace_sql_errors)
{
    CK_ERR("SELECT t_shape(999)", "t_shape: tensor 999: no such tensor");
    CK_ERR("SELECT t_shape('ref.999')", "tensor ref.999: no such tensor");
    CK_ERR("SELECT t_shape('nope.1')", "no such table: nope.tensors");
    CK_ERR("SELECT t_shape('abc')", "t_shape: bad tensor reference 'abc'");
    CK_ERR("SELECT t_shape('x\"y.1')", "bad schema name");
    CK_ERR("SELECT t_shape(x'000000')", "multiple of 4");
    CK_ERR("SELECT t_stat(5, 'median')", "t_stat: unknown statistic 'median'");
    CK_ERR("SELECT t_at(5, 10)", "t_at: index 10 out of range");
    CK_ERR("SELECT t_at(5, 0, 5)", "out of range for dimension 1 of size 5");
    CK_ERR("SELECT t_at(5, 0, 0, 0)", "give 1 flat index or 2 indices");
    CK_ERR("SELECT t_at(5)", "usage");
    CK_ERR("SELECT t_slice(5, 'x')", "t_slice: bad spec 'x' for dimension 0");
    CK_ERR("SELECT t_slice(5, '0, ::99999999999999999999')",
           "::99999999999999999999' for dimension 1 of size 5");
    CK_ERR("SELECT t_slice(5, 0, 0, 0)", "3 specs for a tensor of 2 dimensions");
    CK_ERR("SELECT t_slice(5, '::-1')", "bad spec");
    CK_ERR("SELECT t_nmse(5, 4)", "t_nmse: shapes differ: [2,5] vs [3,4]");
    CK_ERR("SELECT t_cos(5, x'0000803f')", "shapes differ");
    CK_ERR("SELECT t_topk(5, 0)", "t_topk: k must be an integer");
    CK_ERR("SELECT t_dot(5, '[1,2,3]')", "t_dot: vector of 3 values fits neither");
    CK_ERR("SELECT t_dot(5, '[1,2,x]')", "t_dot: bad vector");
    CK_ERR("SELECT t_dot(8, '[1,2,3,4,5]')", "t_dot: tensor 8 is partial");
    CK_ERR("SELECT t_nope(1)", "no such function");
    CK_ERR("DELETE FROM tensors", "readonly");
}
END_TEST

START_TEST(test_trace_sql_errors_corrupt_blob)
{
    /* corrupt trace B's logits, then read them through the attached schema */
    trc_reader_close(g_r);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(g_b, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "UPDATE tensors SET hash = '00000000000000ff' WHERE id = 5",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    char err[256];
    ck_assert_int_eq(trc_reader_open(g_a, &g_r, err, sizeof err), 0);
    ck_assert_int_eq(trc_reader_attach(g_r, "ref", g_b), 0);
    CK_ERR("SELECT t_nmse(5, 'ref.5')", "t_nmse: tensor ref.5: content hash mismatch");
    ck_assert_str_eq(q("SELECT t_shape('ref.5')"), "[2,5]"); /* header-only still works */
    /* attaching something that is not a trace is refused and detached again */
    ck_assert_int_eq(trc_reader_attach(g_r, "junk", "/etc/hostname"), TRC_EFORMAT);
    ck_assert_ptr_nonnull(strstr(trc_reader_errmsg(g_r), "/etc/hostname: not an lltrace trace"));
    ck_assert_int_eq(trc_reader_attach(g_r, "bad name", g_b), TRC_EINVAL);
    CK_ERR("SELECT 1 FROM junk.meta", "no such table");
}
END_TEST

/* ---- the loadable extension ---------------------------------------------------------------- */

START_TEST(test_trace_sql_extension_loads)
{
    const char *bin = getenv("LLTRACE_BIN");
    if (!bin || !*bin) {
        fprintf(stderr, "trace_sql: LLTRACE_BIN unset, extension check skipped\n");
        return;
    }
    char so[2048];
    char tmp[2048];
    snprintf(tmp, sizeof tmp, "%s", bin);
    snprintf(so, sizeof so, "%s/lltrace_sqlext.so", dirname(tmp));
    ck_assert_msg(access(so, R_OK) == 0, "%s is not built", so);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(g_a, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_enable_load_extension(db, 1), SQLITE_OK);
    char *msg = NULL;
    ck_assert_msg(sqlite3_load_extension(db, so, NULL, &msg) == SQLITE_OK, "%s", msg);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(
        sqlite3_prepare_v2(db, "SELECT t_topk(5, 1), (SELECT count(*) FROM v_rope)", -1, &st, NULL),
        SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "[[6,4]]");
    ck_assert_int_eq(sqlite3_column_int(st, 1), 3);
    sqlite3_finalize(st);
    sqlite3_close(db);
}
END_TEST

Suite *trace_sql_suite(void); /* called by check_main.c */
Suite *trace_sql_suite(void)
{
    Suite *s = suite_create("trace_sql");
    TCase *core = tcase_create("core");
    tcase_add_checked_fixture(core, open_a, close_a);
    tcase_add_test(core, test_trace_sql_shape_and_stat);
    tcase_add_test(core, test_trace_sql_at_and_slice);
    tcase_add_test(core, test_trace_sql_compare_across_traces);
    tcase_add_test(core, test_trace_sql_topk_and_dot);
    tcase_add_test(core, test_trace_sql_views);
    tcase_add_test(core, test_trace_sql_help_documents_every_function);
    tcase_add_test(core, test_trace_sql_extension_loads);
    suite_add_tcase(s, core);
    TCase *err = tcase_create("errors");
    tcase_add_checked_fixture(err, open_a, close_a);
    tcase_add_test(err, test_trace_sql_errors);
    tcase_add_test(err, test_trace_sql_errors_corrupt_blob);
    suite_add_tcase(s, err);
    return s;
}
