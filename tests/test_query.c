/*
 * Looking inside a trace: `lltrace info/sql/ops/show/export` and what they share (tables, saved
 * queries, histogram, progress bar). Fixture traces are written here with the tracer's writer
 * API: a 2-layer model, two steps (a 3-token prompt at positions 0..2, then position 3), with a
 * NaN planted in blk.1.l_out at step 1, logits whose top tokens are known, and a partial tensor.
 * Commands are called in-process (cmd_*) with stdout/stderr captured into files. Corrupt traces
 * are made by editing a good one with the sqlite3 C API.
 */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmds.h"
#include "progress.h"
#include "query_int.h"
#include "table.h"
#include "testutil.h"
#include "trc.h"

#define N_EMBD   8
#define N_HEAD   2
#define HEAD_DIM 4
#define N_VOCAB  16

static char dir[1024], trace_a[1100], trace_b[1100];

/* ---- fixture ------------------------------------------------------------------------------- */

static void fill(float *x, int64_t n, float seed)
{
    for (int64_t i = 0; i < n; i++) {
        x[i] = sinf((float)i * 0.37f + seed) * (1.0f + seed);
    }
}

static void rec(trc_writer *w, const char *name, const char *kind, int layer, int64_t pos0,
                int64_t n, const struct trc_tensor *ts, int n_ts, const char *weight,
                const char *params)
{
    struct trc_weight wt = {"weight", weight};
    struct trc_op op = {name,
                        kind,
                        layer,
                        pos0,
                        n,
                        params,
                        1500 + layer * 100,
                        ts,
                        n_ts,
                        weight ? &wt : NULL,
                        weight ? 1 : 0};
    ck_assert_msg(trc_op_record(w, &op) == 0, "%s", trc_writer_errmsg(w));
}

static struct trc_tensor t2(const char *role, const float *x, int64_t a, int64_t b)
{
    struct trc_tensor t = {role, TRC_DTYPE_F32, 2, {a, b, 0, 0}, x, NULL, 0};
    return t;
}

static struct trc_tensor t3(const char *role, const float *x, int64_t a, int64_t b, int64_t c)
{
    struct trc_tensor t = {role, TRC_DTYPE_F32, 3, {a, b, c, 0}, x, NULL, 0};
    return t;
}

static void rec_rope(trc_writer *w, int l, int64_t pos0, int64_t n, const float *x)
{
    char name[32];
    int32_t pos[8];
    float cs[16], sn[16];
    for (int64_t i = 0; i < n; i++) {
        pos[i] = (int32_t)(pos0 + i);
        for (int k = 0; k < 2; k++) {
            cs[i * 2 + k] = cosf((float)pos[i] / powf(100.0f, (float)k / 2));
            sn[i * 2 + k] = sinf((float)pos[i] / powf(100.0f, (float)k / 2));
        }
    }
    struct trc_tensor ts[5] = {t3("in0", x, n, N_HEAD, HEAD_DIM),
                               t3("out", x + 1, n, N_HEAD, HEAD_DIM),
                               {"pos", TRC_DTYPE_I32, 1, {n, 0, 0, 0}, pos, NULL, 0},
                               t2("cos", cs, n, 2),
                               t2("sin", sn, n, 2)};
    snprintf(name, sizeof name, "blk.%d.rope_q", l);
    rec(w, name, "rope", l, pos0, n, ts, 5, NULL, "{\"theta\":100,\"mode\":\"norm\",\"n_rot\":4}");
}

static void rec_layer(trc_writer *w, int l, int64_t step, int64_t pos0, int64_t n, float scale)
{
    float x[64], y[64], kq[64];
    char name[32], wname[48];
    fill(x, n * N_EMBD, (float)(l + step));
    fill(y, n * N_EMBD + 1, (float)(l + step) + 0.5f);
    fill(kq, N_HEAD * n * (pos0 + n), 0.25f);
    snprintf(name, sizeof name, "blk.%d.attn_q", l);
    snprintf(wname, sizeof wname, "blk.%d.attn_q.weight", l);
    struct trc_tensor mm[2] = {t2("in0", x, n, N_EMBD), t2("out", y, n, N_EMBD)};
    rec(w, name, "matmul", l, pos0, n, mm, 2, wname, "{\"weight_type\":\"f32\"}");
    rec_rope(w, l, pos0, n, y);
    snprintf(name, sizeof name, "blk.%d.kq", l);
    struct trc_tensor sc[2] = {t3("in0", y, n, N_HEAD, HEAD_DIM),
                               t3("out", kq, N_HEAD, n, pos0 + n)};
    rec(w, name, "attn_scores", l, pos0, n, sc, 2, NULL, NULL);
    snprintf(name, sizeof name, "blk.%d.ffn_inp", l);
    struct trc_tensor add[3] = {t2("in0", x, n, N_EMBD), t2("in1", y, n, N_EMBD),
                                t2("out", y, n, N_EMBD)};
    rec(w, name, "add", l, pos0, n, add, 3, NULL, NULL);
    for (int64_t i = 0; i < n * N_EMBD; i++) {
        y[i] *= 2.0f * scale;
    }
    if (l == 1 && step == 1) {
        y[2] = NAN;
    }
    snprintf(name, sizeof name, "blk.%d.l_out", l);
    rec(w, name, "add", l, pos0, n, add, 3, NULL, NULL);
}

/* Logits of a step: token 5 + step is best (10), then 7 (8), the rest i * 0.1. */
static void rec_output(trc_writer *w, int64_t step, int64_t last, float scale)
{
    float logits[N_VOCAB];
    for (int i = 0; i < N_VOCAB; i++) {
        logits[i] = (i == 5 + step ? 10.0f : i == 7 ? 8.0f : (float)i * 0.1f) * scale;
    }
    struct trc_tensor out = t2("out", logits, 1, N_VOCAB);
    rec(w, "output", "matmul", -1, last, 1, &out, 1, "output.weight", NULL);
}

static void rec_partial(trc_writer *w, int64_t pos0)
{
    static const int64_t known[3] = {0, 5, 7};
    static const float vals[3] = {1.5f, -2.5f, 3.5f};
    struct trc_tensor t = {"out", TRC_DTYPE_F32, 2, {1, N_EMBD, 0, 0}, vals, known, 3};
    rec(w, "blk.0.attn_k", "matmul", 0, pos0, 1, &t, 1, NULL, NULL);
}

static void describe_run(trc_writer *w)
{
    int64_t run;
    ck_assert_int_eq(trc_run_begin(w, "test", &run), 0);
    ck_assert_int_eq(trc_run_set_str(w, "model_path", "tiny.gguf"), 0);
    ck_assert_int_eq(trc_run_set_str(w, "arch", "llama"), 0);
    ck_assert_int_eq(trc_run_set_i64(w, "n_layer", 2), 0);
    ck_assert_int_eq(trc_run_set_i64(w, "n_embd", N_EMBD), 0);
    ck_assert_int_eq(trc_run_set_i64(w, "n_head", N_HEAD), 0);
    ck_assert_int_eq(trc_run_set_i64(w, "n_head_kv", N_HEAD), 0);
    ck_assert_int_eq(trc_run_set_i64(w, "head_dim", HEAD_DIM), 0);
    ck_assert_int_eq(trc_run_set_i64(w, "n_vocab", N_VOCAB), 0);
    ck_assert_int_eq(trc_run_set_f64(w, "rope_theta", 100.0), 0);
    ck_assert_int_eq(trc_run_set_str(w, "prompt", "hi \"there\""), 0);
    static const char *const pieces[5] = {"<s>", "hi", " there", " five", " six"};
    static const int32_t ids[5] = {1, 9, 11, 5, 6};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(trc_token_add(w, i, ids[i], pieces[i], i < 3, i == 0, i < 3 ? NAN : 0.9f,
                                       i < 3 ? NAN : 10.0f),
                         0);
    }
}

static void write_step(trc_writer *w, int64_t step, float scale)
{
    const int64_t pos0 = step == 0 ? 0 : 3, n = step == 0 ? 3 : 1;
    int32_t toks[3] = {1, 9, 11};
    float e[64];
    fill(e, n * N_EMBD, 3.0f);
    ck_assert_int_eq(trc_step_begin(w, step, pos0, n), 0);
    struct trc_tensor te[2] = {{"in0", TRC_DTYPE_I32, 1, {n, 0, 0, 0}, toks, NULL, 0},
                               t2("out", e, n, N_EMBD)};
    rec(w, "tok_embd", "get_rows", -1, pos0, n, te, 2, "token_embd.weight", NULL);
    for (int l = 0; l < 2; l++) {
        rec_layer(w, l, step, pos0, n, scale);
    }
    if (step == 1) {
        rec_partial(w, pos0);
    }
    rec_output(w, step, pos0 + n - 1, scale);
    ck_assert_int_eq(trc_step_end(w, 50000), 0);
}

/* A complete 2-step trace; crash_after >= 0 leaves the run open after that many steps and
 * exits without closing (a killed engine). */
static void make_trace(const char *path, float scale, int crash_after)
{
    char err[TRC_ERRBUF_SIZE];
    trc_writer *w;
    struct trc_writer_opts o = {.overwrite = true, .synchronous = true};
    ck_assert_msg(trc_writer_open(path, &o, &w, err, sizeof err) == 0, "%s", err);
    describe_run(w);
    for (int64_t s = 0; s < 2; s++) {
        if (crash_after == s) {
            ck_assert_int_eq(trc_step_begin(w, s, 3, 1), 0);
            _exit(0);
        }
        write_step(w, s, scale);
    }
    ck_assert_int_eq(trc_run_end(w, "complete"), 0);
    ck_assert_int_eq(trc_writer_close(w), 0);
}

static void setup(void)
{
    lt_tmp_dir(dir, sizeof dir, "test_query");
    snprintf(trace_a, sizeof trace_a, "%s/a.trace", dir);
    snprintf(trace_b, sizeof trace_b, "%s/b.trace", dir);
    make_trace(trace_a, 1.0f, -1);
}

/* ---- running commands in-process ----------------------------------------------------------- */

struct result {
    int rc;
    char *out, *err;
};

static void result_free(struct result *r)
{
    free(r->out);
    free(r->err);
}

/* Runs fn(argv...) with stdout and stderr captured (and stdin from `in` when not NULL). */
static struct result run_in(int (*fn)(int, char **), const char *in, ...)
{
    char *argv[32], po[1200], pe[1200], pi[1200];
    int argc = 0;
    va_list ap;
    va_start(ap, in);
    for (char *a; argc < 31 && (a = va_arg(ap, char *)) != NULL;) {
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    snprintf(po, sizeof po, "%s/out.txt", dir);
    snprintf(pe, sizeof pe, "%s/err.txt", dir);
    snprintf(pi, sizeof pi, "%s/in.txt", dir);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2), si = dup(0);
    int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert(lt_write_file(pi, in ? in : "", in ? strlen(in) : 0) == 0);
    int fi = open(pi, O_RDONLY);
    dup2(fo, 1);
    dup2(fe, 2);
    dup2(fi, 0);
    struct result r = {fn(argc, argv), NULL, NULL};
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    dup2(si, 0);
    close(fo), close(fe), close(fi), close(so), close(se), close(si);
    clearerr(stdin);
    r.out = lt_read_file(po, NULL);
    r.err = lt_read_file(pe, NULL);
    return r;
}

#define RUN(...) run_in(__VA_ARGS__, (char *)NULL)

static void expect(const struct result *r, int rc, const char *in_out, const char *in_err)
{
    ck_assert_msg(r->rc == rc, "exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r->rc, rc, r->out,
                  r->err);
    if (in_out) {
        ck_assert_msg(strstr(r->out, in_out), "stdout lacks '%s':\n%s", in_out, r->out);
    }
    if (in_err) {
        ck_assert_msg(strstr(r->err, in_err), "stderr lacks '%s':\n%s", in_err, r->err);
    }
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) {
        n += *s == '\n';
    }
    return n;
}

/* json_valid(text) and json_array_length(text, path) through SQLite. */
static int64_t json_q(const char *sql, const char *text)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v = -1;
    ck_assert_int_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Runs SQL on a copy of the good trace, opened read-write with the plain sqlite3 API. */
static void corrupt_copy(const char *path, const char *sql)
{
    size_t n;
    char *data = lt_read_file(trace_a, &n);
    sqlite3 *db;
    char *err = NULL;
    ck_assert_ptr_nonnull(data);
    ck_assert_int_eq(lt_write_file(path, data, n), 0);
    free(data);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s", err);
    sqlite3_close(db);
}

/* ---- core ---------------------------------------------------------------------------------- */

START_TEST(test_query_table_formats)
{
    static const char *const names[3] = {"id", "name", "value"};
    vw_table *t = vw_table_create(3, names);
    ck_assert_int_eq(vw_table_add_i64(t, 7), 0);
    ck_assert_int_eq(vw_table_add_text(t, VW_CELL_TEXT, "a,\"b\"\nc"), 0);
    ck_assert_int_eq(vw_table_add_f64(t, (double)0.1f), 0);
    ck_assert_int_eq(vw_table_add_i64(t, 12345), 0);
    ck_assert_int_eq(vw_table_add_null(t), 0);
    ck_assert_int_eq(vw_table_add_f64(t, (double)NAN), 0);
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    struct vw_table_opts o = {VW_TABLE_FORMAT_ALIGNED, 0, 0, NULL};
    vw_table_print(t, f, &o);
    o.format = VW_TABLE_FORMAT_CSV;
    vw_table_print(t, f, &o);
    o.format = VW_TABLE_FORMAT_JSON;
    vw_table_print(t, f, &o);
    fclose(f);
    static const char want[] = "   id  name      value\n"
                               "-----  --------  -----\n"
                               "    7  a,\"b\"\\nc    0.1\n"
                               "12345  NULL        nan\n"
                               "id,name,value\r\n7,\"a,\"\"b\"\"\nc\",0.1\r\n12345,,nan\r\n"
                               "[\n{\"id\":7,\"name\":\"a,\\\"b\\\"\\nc\",\"value\":0.1},\n"
                               "{\"id\":12345,\"name\":null,\"value\":null}\n]\n";
    ck_assert_str_eq(buf, want);
    free(buf);
    vw_table_destroy(t);
}
END_TEST

START_TEST(test_query_table_max_width_and_utf8)
{
    static const char *const names[1] = {"piece"};
    vw_table *t = vw_table_create(1, names);
    vw_table_add_text(t, VW_CELL_TEXT, "\xe2\x96\x81hello world, a long cell");
    vw_table_add_text(t, VW_CELL_TEXT, "bad \xff byte");
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    struct vw_table_opts o = {VW_TABLE_FORMAT_ALIGNED, 10, 0, NULL};
    vw_table_print(t, f, &o);
    o.format = VW_TABLE_FORMAT_JSON;
    vw_table_print(t, f, &o);
    fclose(f);
    ck_assert_msg(strstr(buf, "\xe2\x96\x81hello ...\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "\"bad \\ufffd byte\""), "%s", buf);
    free(buf);
    vw_table_destroy(t);
}
END_TEST

START_TEST(test_query_fmt_real_round_trips)
{
    char b[40];
    ck_assert_str_eq(vw_fmt_real(b, sizeof b, (double)0.1f), "0.1");
    ck_assert_str_eq(vw_fmt_real(b, sizeof b, 0.1), "0.1");
    ck_assert_str_eq(vw_fmt_real(b, sizeof b, 1.0 / 3.0), "0.3333333333333333");
    ck_assert_str_eq(vw_fmt_real(b, sizeof b, (double)11.97f), "11.97");
    ck_assert_str_eq(vw_fmt_real(b, sizeof b, -HUGE_VAL), "-inf");
}
END_TEST

START_TEST(test_query_histo_counts)
{
    const float x[8] = {0, 1, 2, 3, 4, NAN, INFINITY, 4};
    struct vw_histo h;
    vw_histo_compute(x, 8, 4, &h);
    ck_assert_int_eq(h.n_finite, 6);
    ck_assert_int_eq(h.n_nan, 1);
    ck_assert_int_eq(h.n_inf, 1);
    ck_assert_int_eq(h.counts[0], 1);
    ck_assert_int_eq(h.counts[1], 1);
    ck_assert_int_eq(h.counts[2], 1);
    ck_assert_int_eq(h.counts[3], 3); /* 3 and both 4s: the top edge belongs to the last bin */
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    vw_histo_print(f, &h, "", 8);
    fclose(f);
    ck_assert_msg(strstr(buf, "████████ 3\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "not shown: 1 NaN, 1 Inf"), "%s", buf);
    free(buf);
}
END_TEST

START_TEST(test_query_progress_silent_when_piped)
{
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    struct vw_progress p;
    vw_progress_init(&p, f, "export", 10);
    ck_assert(!p.on);
    vw_progress_update(&p, 5);
    vw_progress_release(&p);
    fflush(f);
    ck_assert_uint_eq(len, 0);
    vw_progress_init(&p, f, "export", 10);
    p.on = true; /* as on a terminal */
    vw_progress_update(&p, 3);
    vw_progress_update(&p, 10);
    vw_progress_release(&p);
    fclose(f);
    ck_assert_msg(strstr(buf, "export [###"), "%s", buf);
    ck_assert_msg(strstr(buf, "100%  10/10"), "%s", buf);
    free(buf);
}
END_TEST

START_TEST(test_query_preview_elides_middle)
{
    float x[40];
    for (int i = 0; i < 40; i++) {
        x[i] = (float)i * 0.5f;
    }
    int64_t shape[2] = {10, 4};
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    struct vw_preview_opts o = {2, false, "", 100};
    vw_preview_print(f, x, 2, shape, &o);
    fclose(f);
    static const char want[] = "[[ 0.0000,  0.5000,  1.0000,  1.5000],\n"
                               " [ 2.0000,  2.5000,  3.0000,  3.5000],\n"
                               " ...,\n"
                               " [16.0000, 16.5000, 17.0000, 17.5000],\n"
                               " [18.0000, 18.5000, 19.0000, 19.5000]]\n";
    ck_assert_str_eq(buf, want);
    free(buf);
}
END_TEST

START_TEST(test_query_info_describes_run)
{
    struct result r = RUN(vw_info_trace, NULL, "info", trace_a);
    expect(&r, 0, "status    complete", NULL);
    ck_assert_msg(strstr(r.out, "prompt    \"hi \\\"there\\\"\""), "%s", r.out);
    ck_assert_msg(strstr(r.out, "generated \" five six\""), "%s", r.out);
    ck_assert_msg(strstr(r.out, "2 layers, n_embd 8, n_head 2 (kv 2)"), "%s", r.out);
    ck_assert_msg(strstr(r.out, "tokens    3 prompt + 2 generated"), "%s", r.out);
    ck_assert_msg(strstr(r.out, "steps     2 (0..1)"), "%s", r.out);
    result_free(&r);
    r = RUN(vw_info_trace, NULL, "info", trace_a, "--json");
    expect(&r, 0, "\"n_ops\": 25", NULL);
    ck_assert_int_eq(json_q("SELECT json_valid(?1)", r.out), 1);
    ck_assert_int_eq(json_q("SELECT json_extract(?1, '$.runs[0].n_steps')", r.out), 2);
    ck_assert_int_eq(json_q("SELECT json_extract(?1, '$.runs[0].n_generated_tokens')", r.out), 2);
    result_free(&r);
}
END_TEST

START_TEST(test_query_info_crashed_run)
{
    pid_t pid = fork();
    if (pid == 0) {
        make_trace(trace_b, 1.0f, 1);
        _exit(1);
    }
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct result r = RUN(vw_info_trace, NULL, "info", trace_b);
    expect(&r, 0, "crashed at step 1 (steps 0..0 complete)", NULL);
    result_free(&r);
    r = RUN(vw_info_trace, NULL, "info", trace_b, "--json");
    ck_assert_int_eq(json_q("SELECT json_extract(?1, '$.runs[0].crashed_at_step')", r.out), 1);
    result_free(&r);
}
END_TEST

START_TEST(test_query_sql_csv_and_json)
{
    struct result r =
        RUN(cmd_sql, NULL, "sql", trace_a, "--csv",
            "SELECT step, name, t_shape(tensor_id) AS shape FROM v_op_stats WHERE layer = 0 "
            "AND kind = 'rope' ORDER BY step");
    expect(&r, 0, NULL, NULL);
    ck_assert_str_eq(r.out, "step,name,shape\r\n0,blk.0.rope_q,\"[3,2,4]\"\r\n"
                            "1,blk.0.rope_q,\"[1,2,4]\"\r\n");
    result_free(&r);
    r = RUN(cmd_sql, NULL, "sql", trace_a, "--json", "SELECT count(*) AS n FROM ops");
    expect(&r, 0, NULL, NULL);
    ck_assert_str_eq(r.out, "[\n{\"n\":25}\n]\n");
    result_free(&r);
}
END_TEST

START_TEST(test_query_sql_statements_from_stdin)
{
    struct result r =
        RUN(cmd_sql, "SELECT 1 AS a;\n-- comment\nSELECT 'x' AS b;\n", "sql", trace_a);
    expect(&r, 0, NULL, NULL);
    ck_assert_str_eq(r.out, "a\n-\n1\n\nb\n-\nx\n");
    result_free(&r);
}
END_TEST

START_TEST(test_query_sql_attach_nmse)
{
    make_trace(trace_b, 2.0f, -1);
    struct result r = RUN(cmd_sql, NULL, "sql", trace_b, "--attach", "noequals", "SELECT 1");
    expect(&r, 2, NULL, "want NAME=OTHER.trace");
    result_free(&r);
    char att[1200];
    snprintf(att, sizeof att, "ref=%s", trace_a);
    r = RUN(cmd_sql, NULL, "sql", trace_b, "--csv", "--attach", att,
            "SELECT a.step, t_nmse(a.tensor_id, 'ref.' || b.tensor_id) AS nmse "
            "FROM v_op_stats a JOIN ref.v_op_stats b USING (step, name) "
            "WHERE a.name = 'output' ORDER BY a.step");
    expect(&r, 0, NULL, NULL);
    ck_assert_str_eq(r.out, "step,nmse\r\n0,1\r\n1,1\r\n");
    result_free(&r);
}
END_TEST

START_TEST(test_query_saved_queries_all_run)
{
    for (int i = 0; vw_query_at(i); i++) {
        char name[64];
        snprintf(name, sizeof name, "%s", vw_query_at(i)->name);
        struct result r = RUN(cmd_sql, NULL, "sql", trace_a, "--query", name);
        ck_assert_msg(r.rc == 0, "query %s: %s", vw_query_at(i)->name, r.err);
        ck_assert_msg(count_lines(r.out) >= 3, "query %s gave no rows:\n%s", vw_query_at(i)->name,
                      r.out);
        result_free(&r);
    }
    struct result r = RUN(cmd_sql, NULL, "sql", "--list-queries");
    expect(&r, 0, "top_tokens\n", NULL);
    ck_assert_msg(strstr(r.out, "    k=5  how many tokens per step"), "%s", r.out);
    result_free(&r);
}
END_TEST

START_TEST(test_query_saved_query_results)
{
    struct result r = RUN(cmd_sql, NULL, "sql", trace_a, "--csv", "--query", "top_tokens", "k=2");
    expect(&r, 0, NULL, NULL);
    ck_assert_str_eq(r.out, "run,step,pos,rank,token_id,piece,logit,sampled\r\n"
                            "1,0,2,1,5,\" five\",10,1\r\n1,0,2,2,7,,8,0\r\n"
                            "1,1,3,1,6,\" six\",10,1\r\n1,1,3,2,7,,8,0\r\n");
    result_free(&r);
    r = RUN(cmd_sql, NULL, "sql", trace_a, "--csv", "--query", "nonfinite");
    expect(&r, 0, "1,1,", NULL);
    ck_assert_msg(strstr(r.out, ",blk.1.l_out,out,"), "%s", r.out);
    ck_assert_msg(strstr(r.out, ",blk.1.l_out,in1,"), "%s", r.out);
    ck_assert_int_eq(count_lines(r.out), 3);
    result_free(&r);
    r = RUN(cmd_sql, NULL, "sql", trace_a, "--csv", "--query", "rope", "pos=3", "layer=1");
    expect(&r, 0, NULL, NULL);
    ck_assert_int_eq(count_lines(r.out), 2);
    ck_assert_msg(strstr(r.out, ",blk.1.rope_q,"), "%s", r.out);
    ck_assert_msg(strstr(r.out, ",3,\"[-0.98999"), "cos(3) first: %s", r.out);
    result_free(&r);
    r = RUN(cmd_sql, NULL, "sql", trace_a, "--csv", "--query", "residual", "step=0");
    expect(&r, 0, "run,step,layer,ffn_inp_rms,l_out_rms,l_out_maxabs,growth\r\n1,0,0,", NULL);
    ck_assert_int_eq(count_lines(r.out), 3);
    result_free(&r);
}
END_TEST

START_TEST(test_query_ops_filters)
{
    struct result r =
        RUN(cmd_ops, NULL, "ops", trace_a, "--csv", "--name", "blk.*.rope_q", "--layer", "1");
    expect(&r, 0, NULL, NULL);
    ck_assert_int_eq(count_lines(r.out), 3);
    ck_assert_msg(strstr(r.out, "\r\n0,7,1,blk.1.rope_q,\"[3,2,4]\",f32,"), "%s", r.out);
    ck_assert_msg(strstr(r.out, ",1.6\r\n"), "time 1.6 us: %s", r.out);
    result_free(&r);
    r = RUN(cmd_ops, NULL, "ops", trace_a, "--json", "--step", "1", "--kind", "matmul");
    expect(&r, 0, NULL, NULL);
    ck_assert_int_eq(json_q("SELECT json_array_length(?1)", r.out), 4);
    ck_assert_int_eq(json_q("SELECT json_extract(?1, '$[3].shape[1]')", r.out), N_VOCAB);
    result_free(&r);
    r = RUN(cmd_ops, NULL, "ops", trace_a, "--step", "0");
    expect(&r, 0, "step  seq  layer  name", NULL);
    ck_assert_msg(strstr(r.out, "   0    0      -  tok_embd "), "%s", r.out);
    ck_assert_int_eq(count_lines(r.out), 2 + 12);
    result_free(&r);
}
END_TEST

START_TEST(test_query_show_rope)
{
    struct result r = RUN(cmd_show, NULL, "show", trace_a, "blk.0.rope_q");
    expect(&r, 0, "op 3  blk.0.rope_q  (rope)\n  run 1  step 0  seq 2  layer 0  positions 0..2",
           NULL);
    ck_assert_msg(strstr(r.out, "params {\"theta\":100,"), "%s", r.out);
    ck_assert_msg(strstr(r.out, "\nin0  f32 [3,2,4]  tensor "), "%s", r.out);
    ck_assert_msg(strstr(r.out, "rope table"), "%s", r.out);
    ck_assert_msg(strstr(r.out, "  pos 2     cos [-0.4161,  0.9801]"), "%s", r.out);
    ck_assert_msg(strstr(r.out, "histogram:"), "%s", r.out);
    result_free(&r);
    r = RUN(cmd_show, NULL, "show", trace_a, "blk.0.rope_q", "--pos", "1", "--head", "1", "--role",
            "out");
    expect(&r, 0, "selected: min ", NULL);
    ck_assert_msg(!strstr(r.out, "rope table"), "%s", r.out);
    /* out = y + 1 element, y = fill(seed 0.5): row 1, head 1 = elements 13..16 of y */
    char want[64];
    float y[17];
    fill(y, 17, 0.5f);
    snprintf(want, sizeof want, "%.4f, ", (double)y[13]);
    ck_assert_msg(strstr(r.out, want), "want '%s' in:\n%s", want, r.out);
    result_free(&r);
}
END_TEST

START_TEST(test_query_show_heads_of_scores_and_partial)
{
    struct result r = RUN(cmd_show, NULL, "show", trace_a, "blk.1.kq", "--step", "1", "--head", "1",
                          "--role", "out");
    expect(&r, 0, "out  f32 [2,1,4]", NULL);
    ck_assert_msg(strstr(r.out, "selected: "), "%s", r.out);
    result_free(&r);
    r = RUN(cmd_show, NULL, "show", trace_a, "blk.0.attn_k", "--step", "1");
    expect(&r, 0, "partial: 3 of 8 elements known", NULL);
    ck_assert_msg(strstr(r.out, "    [0, 5] = -2.5\n"), "%s", r.out);
    ck_assert_msg(strstr(r.out, "    [0, 7] = 3.5\n"), "%s", r.out);
    result_free(&r);
}
END_TEST

/* Reads a float32 .npy written by vw_npy_write_f32: checks the header, returns the data. */
static float *read_npy(const char *path, const char *want_shape, size_t n)
{
    size_t len;
    char *buf = lt_read_file(path, &len);
    ck_assert_ptr_nonnull(buf);
    ck_assert(memcmp(buf, "\x93NUMPY\x01\x00", 8) == 0);
    size_t hlen = (size_t)(unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8;
    ck_assert_uint_eq((10 + hlen) % 64, 0);
    ck_assert_msg(strstr(buf + 10, "'descr': '<f4'"), "%s", buf + 10);
    ck_assert_msg(strstr(buf + 10, want_shape), "want %s in %s", want_shape, buf + 10);
    ck_assert_uint_eq(len, 10 + hlen + n * 4);
    float *x = malloc(n * 4);
    memcpy(x, buf + 10 + hlen, n * 4);
    free(buf);
    return x;
}

START_TEST(test_query_export_npy)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/q.npy", dir);
    struct result r = RUN(cmd_export, NULL, "export", trace_a, "output", "--step", "1", "-o", path);
    expect(&r, 0, "wrote ", NULL);
    result_free(&r);
    float *x = read_npy(path, "'shape': (1, 16)", N_VOCAB);
    ck_assert_double_eq_tol((double)x[6], 10.0, 1e-9);
    ck_assert_double_eq_tol((double)x[3], 0.3, 1e-7);
    free(x);
    r = RUN(cmd_export, NULL, "export", trace_a, "blk.0.attn_k", "--step", "1", "-o", path);
    expect(&r, 0, NULL, "partial");
    result_free(&r);
    x = read_npy(path, "'shape': (1, 8)", N_EMBD);
    ck_assert(isnan(x[1]));
    ck_assert_double_eq_tol((double)x[5], -2.5, 1e-9);
    free(x);
}
END_TEST

START_TEST(test_query_export_all_and_chrome)
{
    char sub[1200], path[1300];
    snprintf(sub, sizeof sub, "%s/all", dir);
    struct result r = RUN(cmd_export, NULL, "export", trace_a, "--all", sub, "--layer", "0");
    expect(&r, 0, "wrote ", NULL);
    ck_assert_str_eq(r.err, "");
    result_free(&r);
    snprintf(path, sizeof path, "%s/index.tsv", sub);
    char *idx = lt_read_file(path, NULL);
    ck_assert_ptr_nonnull(idx);
    /* layer 0: step 0 has 4 ops (2 + 5 + 2 + 3 + 3 = 15 tensors), step 1 also blk.0.attn_k */
    ck_assert_int_eq(count_lines(idx), 1 + 15 + 16);
    ck_assert_msg(strstr(idx, "s001-0011-blk.0.attn_k-out.npy\t"), "%s", idx);
    free(idx);
    snprintf(path, sizeof path, "%s/s000-0002-blk.0.rope_q-cos.npy", sub);
    free(read_npy(path, "'shape': (3, 2)", 6));
    snprintf(path, sizeof path, "%s/t.json", dir);
    r = RUN(cmd_export, NULL, "export", trace_a, "--chrome-trace", path);
    expect(&r, 0, "wrote ", NULL);
    result_free(&r);
    char *js = lt_read_file(path, NULL);
    ck_assert_int_eq(json_q("SELECT json_valid(?1)", js), 1);
    ck_assert_int_eq(json_q("SELECT count(*) FROM json_each(?1, '$.traceEvents') "
                            "WHERE json_extract(value, '$.ph') = 'X'",
                            js),
                     25 + 2);
    ck_assert_int_eq(json_q("SELECT json_extract(value, '$.dur') * 1000 FROM "
                            "json_each(?1, '$.traceEvents') WHERE json_extract(value, '$.name') "
                            "= 'step 1'",
                            js),
                     50000);
    free(js);
}
END_TEST

/* ---- errors -------------------------------------------------------------------------------- */

START_TEST(test_query_errors_not_a_trace)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/x.txt", dir);
    lt_write_file(path, "hello\n", 6);
    struct result r = RUN(cmd_sql, NULL, "sql", path, "SELECT 1");
    expect(&r, 1, NULL, "not an lltrace trace");
    ck_assert_msg(strstr(r.err, "lltrace: ") == r.err && strstr(r.err, path), "%s", r.err);
    result_free(&r);
    snprintf(path, sizeof path, "%s/empty.db", dir);
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "CREATE TABLE x(a)", NULL, NULL, NULL);
    sqlite3_close(db);
    r = RUN(vw_info_trace, NULL, "info", path);
    expect(&r, 1, NULL, "not an lltrace trace (no meta table)");
    result_free(&r);
    r = RUN(cmd_ops, NULL, "ops", "/nonexistent/t.trace");
    expect(&r, 1, NULL, "/nonexistent/t.trace");
    result_free(&r);
}
END_TEST

START_TEST(test_query_errors_newer_schema)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/new.trace", dir);
    corrupt_copy(path, "UPDATE meta SET value = '7' WHERE key = 'schema_version'");
    struct result r = RUN(vw_info_trace, NULL, "info", path);
    expect(&r, 1, NULL, "version 7 is newer");
    result_free(&r);
}
END_TEST

static void expect_corrupt(const char *sql)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/bad.trace", dir);
    corrupt_copy(path, sql);
    struct result r = RUN(cmd_show, NULL, "show", path, "blk.0.attn_q", "--role", "out");
    expect(&r, 1, NULL, path);
    ck_assert_msg(strstr(r.err, "tensor "), "%s", r.err);
    result_free(&r);
    r = RUN(cmd_export, NULL, "export", path, "--all", dir);
    ck_assert_int_eq(r.rc, 1);
    result_free(&r);
    r = RUN(cmd_sql, NULL, "sql", path,
            "SELECT t_topk(tensor_id, 1) FROM v_op_stats WHERE name = 'blk.0.attn_q'");
    expect(&r, 1, NULL, "tensor ");
    result_free(&r);
}

#define OUT_Q0 "(SELECT tensor_id FROM op_tensors WHERE role = 'out' AND op_id = 2)"

START_TEST(test_query_errors_hash_mismatch)
{
    expect_corrupt("UPDATE tensors SET hash = '0123456789abcdef' WHERE id = " OUT_Q0);
}
END_TEST

START_TEST(test_query_errors_bad_zstd_frame)
{
    expect_corrupt("UPDATE tensors SET data = x'28b52ffd0000deadbeef' WHERE id = " OUT_Q0);
}
END_TEST

START_TEST(test_query_errors_size_not_fitting_shape)
{
    expect_corrupt("UPDATE tensors SET shape = '[3,9]', n_elems = 27 WHERE id = " OUT_Q0);
}
END_TEST

START_TEST(test_query_errors_no_such_op)
{
    struct result r = RUN(cmd_show, NULL, "show", trace_a, "blk.9.attn_q");
    ck_assert_int_eq(r.rc, 1);
    char want[1400];
    snprintf(want, sizeof want,
             "lltrace: %s: no op 'blk.9.attn_q' at step 0 (the trace has 2 layers)\n", trace_a);
    ck_assert_str_eq(r.err, want);
    result_free(&r);
    r = RUN(cmd_show, NULL, "show", trace_a, "output", "--step", "5");
    expect(&r, 1, NULL, "no op 'output' at step 5 (the trace has steps 0..1)");
    result_free(&r);
    r = RUN(cmd_show, NULL, "show", trace_a, "blk.0.attn_k", "--step", "0");
    expect(&r, 1, NULL, "no op 'blk.0.attn_k' at step 0 (it is recorded at steps 1..1)");
    result_free(&r);
    r = RUN(cmd_show, NULL, "show", trace_a, "999");
    expect(&r, 1, NULL, "op 999");
    result_free(&r);
    r = RUN(cmd_show, NULL, "show", trace_a, "blk.0.rope_q", "--role", "in7");
    expect(&r, 1, NULL, "has no tensor with role 'in7' (it has in0, out, cos, pos, sin)");
    result_free(&r);
    r = RUN(cmd_show, NULL, "show", trace_a, "blk.0.rope_q", "--pos", "3");
    expect(&r, 1, NULL, "covers positions 0..2, not 3");
    result_free(&r);
    r = RUN(cmd_show, NULL, "show", trace_a, "blk.0.rope_q", "--head", "2");
    expect(&r, 1, NULL, "has 2 heads");
    result_free(&r);
    r = RUN(cmd_export, NULL, "export", trace_a, "blk.0.attn_q", "--role", "cos", "-o", "x.npy");
    expect(&r, 1, NULL, "no tensor with role 'cos'");
    result_free(&r);
}
END_TEST

START_TEST(test_query_errors_sql)
{
    struct result r = RUN(cmd_sql, NULL, "sql", trace_a, "SELEC 1");
    expect(&r, 1, NULL, "syntax error");
    ck_assert_msg(strstr(r.err, trace_a), "%s", r.err);
    result_free(&r);
    r = RUN(cmd_sql, NULL, "sql", trace_a, "DELETE FROM ops");
    expect(&r, 1, NULL, "attempt to write a readonly database");
    result_free(&r);
    r = RUN(cmd_sql, NULL, "sql", trace_a, "SELECT count(*) AS n FROM ops; DROP TABLE ops");
    expect(&r, 1, "25", "attempt to write a readonly database");
    result_free(&r);
    r = RUN(cmd_sql, NULL, "sql", trace_a, "--csv", "SELECT count(*) FROM ops");
    expect(&r, 0, "25", NULL);
    result_free(&r);
    r = RUN(cmd_sql, NULL, "sql", trace_a, "--query", "nope");
    expect(&r, 2, NULL, "no saved query 'nope'");
    result_free(&r);
    r = RUN(cmd_sql, NULL, "sql", trace_a, "--query", "rope", "bogus=1");
    expect(&r, 1, NULL, "query 'rope' has no parameter 'bogus'");
    result_free(&r);
    r = RUN(cmd_sql, NULL, "sql", trace_a, "SELECT :x");
    expect(&r, 1, NULL, "missing value for parameter ':x'");
    result_free(&r);
    r = RUN(cmd_sql, NULL, "sql", trace_a, "--param", "x=2.5", "SELECT :x * 2 AS y");
    expect(&r, 0, "y\n-\n5\n", NULL);
    result_free(&r);
}
END_TEST

START_TEST(test_query_errors_usage)
{
    struct result r = RUN(cmd_ops, NULL, "ops");
    expect(&r, 2, NULL, "missing TRACE");
    result_free(&r);
    r = RUN(cmd_show, NULL, "show", trace_a, "x", "--pos", "-1");
    expect(&r, 2, NULL, "--pos");
    result_free(&r);
    r = RUN(cmd_export, NULL, "export", trace_a, "output");
    expect(&r, 2, NULL, "give exactly one of");
    result_free(&r);
    r = RUN(cmd_sql, NULL, "sql", "--help");
    expect(&r, 0, "usage: lltrace sql TRACE", NULL);
    result_free(&r);
    r = RUN(cmd_sql, NULL, "sql", "--help-functions");
    expect(&r, 0, "t_nmse", NULL);
    result_free(&r);
    char *cmds[4] = {"ops", "show", "export", "info"};
    int (*fns[4])(int, char **) = {cmd_ops, cmd_show, cmd_export, vw_info_trace};
    for (int i = 0; i < 4; i++) {
        r = RUN(fns[i], NULL, cmds[i], "--help");
        expect(&r, 0, "examples:", NULL);
        result_free(&r);
    }
}
END_TEST

/* The lltrace binary dispatches to these commands, and `info` hands traces to info_trace. */
START_TEST(test_query_binary_dispatch)
{
    char cmd[3000];
    char *out, *err;
    snprintf(cmd, sizeof cmd, "'%s' info '%s' && '%s' sql '%s' 'SELECT 42 AS x'", lt_bin(), trace_a,
             lt_bin(), trace_a);
    int rc = lt_run(cmd, &out, &err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    ck_assert_msg(strstr(out, "status    complete") && strstr(out, "x\n--\n42\n"), "%s", out);
    free(out);
    free(err);
}
END_TEST

Suite *query_suite(void);

Suite *query_suite(void)
{
    Suite *s = suite_create("query");
    TCase *core = tcase_create("core");
    TCase *errors = tcase_create("errors");
    TCase *roundtrip = tcase_create("roundtrip");
    tcase_add_checked_fixture(core, setup, NULL);
    tcase_add_checked_fixture(errors, setup, NULL);
    tcase_add_checked_fixture(roundtrip, setup, NULL);
    tcase_set_timeout(core, 120);
    tcase_set_timeout(errors, 120);
    tcase_set_timeout(roundtrip, 120);
    tcase_add_test(core, test_query_table_formats);
    tcase_add_test(core, test_query_table_max_width_and_utf8);
    tcase_add_test(core, test_query_fmt_real_round_trips);
    tcase_add_test(core, test_query_histo_counts);
    tcase_add_test(core, test_query_progress_silent_when_piped);
    tcase_add_test(core, test_query_preview_elides_middle);
    tcase_add_test(core, test_query_info_describes_run);
    tcase_add_test(core, test_query_info_crashed_run);
    tcase_add_test(core, test_query_sql_csv_and_json);
    tcase_add_test(core, test_query_sql_statements_from_stdin);
    tcase_add_test(core, test_query_sql_attach_nmse);
    tcase_add_test(core, test_query_saved_queries_all_run);
    tcase_add_test(core, test_query_saved_query_results);
    tcase_add_test(core, test_query_ops_filters);
    tcase_add_test(core, test_query_show_rope);
    tcase_add_test(core, test_query_show_heads_of_scores_and_partial);
    tcase_add_test(core, test_query_binary_dispatch);
    tcase_add_test(roundtrip, test_query_export_npy);
    tcase_add_test(roundtrip, test_query_export_all_and_chrome);
    tcase_add_test(errors, test_query_errors_not_a_trace);
    tcase_add_test(errors, test_query_errors_newer_schema);
    tcase_add_test(errors, test_query_errors_hash_mismatch);
    tcase_add_test(errors, test_query_errors_bad_zstd_frame);
    tcase_add_test(errors, test_query_errors_size_not_fitting_shape);
    tcase_add_test(errors, test_query_errors_no_such_op);
    tcase_add_test(errors, test_query_errors_sql);
    tcase_add_test(errors, test_query_errors_usage);
    suite_add_tcase(s, core);
    suite_add_tcase(s, errors);
    suite_add_tcase(s, roundtrip);
    return s;
}
