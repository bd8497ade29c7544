/*
 * Tests of the tracer (tracer/): writer/reader roundtrips of every dtype, runs/steps/ops
 * metadata, deduplication, stats, partial tensors, recording rules, the codec and hash, and every
 * error the writer and reader promise (existing file, busy trace, unwritable path, full disk,
 * not a trace, newer schema, corrupt blobs). The kill test is tests/test_trace_kill.c, the SQL
 * functions tests/test_trace_sql.c.
 */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "trc.h"
#include "trc_int.h"

/* lt64 of "", "abc" and bytes 0..99 (also computed by examples/python-reader/read_trace.py) */
#define LT64_EMPTY "9090306c6e91ed59"
#define LT64_ABC   "5241a3c98ca91b2b"
#define LT64_0_99  "b20d857002560cec"

static trc_reader *ropen(const char *path)
{
    trc_reader *r = NULL;
    char err[TRC_ERRBUF_SIZE];
    int rc = trc_reader_open(path, &r, err, sizeof err);
    ck_assert_msg(rc == 0, "reader %s: %s", path, err);
    return r;
}

static struct trc_tensor t1(const char *role, enum trc_dtype dt, int64_t n0, int64_t n1,
                            const void *data)
{
    struct trc_tensor t = {.role = role, .dtype = dt, .n_dims = n1 ? 2 : 1, .data = data};
    t.shape[0] = n0;
    t.shape[1] = n1;
    return t;
}

static int rec(trc_writer *w, const char *name, const struct trc_tensor *ts, int n)
{
    /* ops.weights is JSON: the second weight's role and name need escaping */
    static const struct trc_weight wts[2] = {{"weight", "blk.0.attn_norm.weight"},
                                             {"b\"i\\as", "odd\tname\x01"}};
    struct trc_op op = {.name = name,
                        .kind = "test",
                        .layer = 0,
                        .pos0 = 0,
                        .n_pos = 1,
                        .params_json = "{\"eps\":1e-05}",
                        .elapsed_ns = 42,
                        .tensors = ts,
                        .n_tensors = n,
                        .weights = wts,
                        .n_weights = 2};
    return trc_op_record(w, &op);
}

/* Runs SQL on the file read-write (to corrupt it on purpose). */
static void rw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, err ? err : "");
    sqlite3_close(db);
}

static uint16_t f32_to_f16_simple(float f) /* exact for the small values used below */
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t e = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    if (f == 0.0f) {
        return (uint16_t)sign;
    }
    return (uint16_t)(sign | (uint32_t)(e << 10) | ((u >> 13) & 0x3ff));
}

/* ---- roundtrip ----------------------------------------------------------------------------- */

static void write_all_dtypes(const char *path, bool sync)
{
    float f[6] = {1.5f, -2.25f, 0.0f, 3.0e-3f, NAN, INFINITY};
    uint16_t h[4];
    uint16_t bf[4];
    int32_t iv[3] = {-7, 0, 2147483647};
    float fsrc[4] = {0.5f, -1.0f, 2.0f, 0.125f};
    for (int i = 0; i < 4; i++) {
        uint32_t u;
        memcpy(&u, &fsrc[i], 4);
        h[i] = f32_to_f16_simple(fsrc[i]);
        bf[i] = (uint16_t)(u >> 16);
    }
    trc_writer *w = lt_writer_open(path, sync);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    ck_assert_int_eq(trc_run_set_str(w, "model_path", "/m.gguf"), 0);
    ck_assert_int_eq(trc_run_set_i64(w, "n_layer", 2), 0);
    ck_assert_int_eq(trc_run_set_f64(w, "rope_theta", 10000.0), 0);
    ck_assert_int_eq(trc_run_set_i64(w, "rope_freq_scale", 1), 0); /* integer into a real */
    ck_assert_int_eq(trc_run_set_str(w, "my_custom_key", "hello"), 0);
    ck_assert_int_eq(trc_run_set_f64(w, "my_real", 0.5), 0);
    ck_assert_int_eq(trc_token_add(w, 0, 1, "<s>", true, true, NAN, NAN), 0);
    ck_assert_int_eq(trc_token_add(w, 1, 42, " Once", true, false, NAN, NAN), 0);
    ck_assert_int_eq(trc_step_begin(w, 0, 0, 2), 0);
    struct trc_tensor ts[4] = {t1("out", TRC_DTYPE_F32, 2, 3, f), t1("in0", TRC_DTYPE_F16, 4, 0, h),
                               t1("in1", TRC_DTYPE_BF16, 2, 2, bf),
                               t1("pos", TRC_DTYPE_I32, 3, 0, iv)};
    ck_assert_int_eq(rec(w, "blk.0.attn_norm", ts, 4), 0);
    ck_assert_int_eq(trc_step_end(w, 1000), 0);
    ck_assert_int_eq(trc_token_add(w, 2, 7, " upon", false, false, 0.75f, 11.97f), 0);
    ck_assert_int_eq(trc_writer_close(w), 0);
}

/* Rewrites a version 3 file as version 2 stored it: tables op_tensors and op_weights, no
 * ops.tensors and ops.weights, and version 2's views over the table op_tensors. */
/* Version 3: no tensors.data_of (and v_op_tensors without it; v_nonfinite reads that view). */
static void to_v3_layout(const char *path)
{
    rw_exec(path,
            "DROP VIEW v_nonfinite; DROP VIEW v_op_tensors;"
            "CREATE VIEW v_op_tensors AS SELECT o.run_id, o.step, o.seq, o.layer, o.name, o.id AS "
            "op_id, ot.key AS role, t.id AS tensor_id, t.dtype, t.shape, t.n_elems, t.min, t.max, "
            "t.mean, t.rms, t.n_nan, t.n_inf, t.nbytes, length(t.data) AS stored_bytes, t.hash, "
            "t.partial FROM ops o, json_each(o.tensors) ot JOIN tensors t ON t.id = ot.value;"
            "CREATE VIEW v_nonfinite AS SELECT * FROM v_op_tensors WHERE n_nan > 0 OR n_inf > 0 "
            "ORDER BY run_id, step, seq;"
            "ALTER TABLE tensors DROP COLUMN data_of;"
            "UPDATE meta SET value = '3' WHERE key = 'schema_version'; PRAGMA user_version = 3");
}

static void to_v2_layout(const char *path)
{
    rw_exec(
        path,
        "CREATE TABLE t2 (op_id INTEGER NOT NULL, role TEXT NOT NULL, tensor_id INTEGER NOT "
        "NULL, PRIMARY KEY (op_id, role)) WITHOUT ROWID;"
        "INSERT INTO t2 SELECT op_id, role, tensor_id FROM op_tensors;"
        "CREATE TABLE w2 (op_id INTEGER NOT NULL, role TEXT NOT NULL, name TEXT NOT NULL, "
        "PRIMARY KEY (op_id, role)) WITHOUT ROWID;"
        "INSERT INTO w2 SELECT op_id, role, name FROM op_weights;"
        "DROP VIEW op_tensors; DROP VIEW op_weights; DROP VIEW v_op_stats; DROP VIEW v_op_tensors;"
        "DROP VIEW v_nonfinite; DROP VIEW v_residual_rms; DROP VIEW v_rope;"
        "ALTER TABLE t2 RENAME TO op_tensors; ALTER TABLE w2 RENAME TO op_weights;"
        "ALTER TABLE ops DROP COLUMN weights; ALTER TABLE ops DROP COLUMN tensors;"
        "CREATE VIEW v_op_stats AS SELECT o.run_id, o.step, o.seq, o.layer, o.kind, o.name, "
        "o.id AS op_id, o.pos0, o.n_pos, o.level, o.elapsed_ns, t.id AS tensor_id, t.dtype, "
        "t.shape, t.min, t.max, t.mean, t.rms, t.n_nan, t.n_inf, t.nbytes, length(t.data) AS "
        "stored_bytes FROM ops o LEFT JOIN op_tensors ot ON ot.op_id = o.id AND ot.role = 'out' "
        "LEFT JOIN tensors t ON t.id = ot.tensor_id ORDER BY o.run_id, o.step, o.seq;"
        "CREATE VIEW v_op_tensors AS SELECT o.run_id, o.step, o.seq, o.layer, o.name, o.id AS "
        "op_id, ot.role, t.id AS tensor_id, t.dtype, t.shape, t.n_elems, t.min, t.max, t.mean, "
        "t.rms, t.n_nan, t.n_inf, t.nbytes, length(t.data) AS stored_bytes, t.hash, t.partial "
        "FROM ops o JOIN op_tensors ot ON ot.op_id = o.id JOIN tensors t ON t.id = ot.tensor_id;"
        "CREATE VIEW v_nonfinite AS SELECT * FROM v_op_tensors WHERE n_nan > 0 OR n_inf > 0 "
        "ORDER BY run_id, step, seq;"
        "CREATE VIEW v_residual_rms AS SELECT run_id, step, layer, rms, max(abs(min), abs(max)) "
        "AS maxabs, op_id FROM v_op_stats WHERE name LIKE 'blk.%.l_out' ORDER BY run_id, step, "
        "layer;"
        "CREATE VIEW v_rope AS WITH RECURSIVE rr (op_id, row, n) AS (SELECT id, 0, n_pos FROM ops "
        "WHERE kind = 'rope' AND n_pos > 0 UNION ALL SELECT op_id, row + 1, n FROM rr WHERE row + "
        "1 < n) SELECT o.run_id, o.step, o.layer, o.name, o.id AS op_id, rr.row, "
        "coalesce(t_at(p.tensor_id, rr.row), o.pos0 + rr.row) AS pos, t_slice(c.tensor_id, "
        "rr.row) AS cos, t_slice(s.tensor_id, rr.row) AS sin FROM rr JOIN ops o ON o.id = "
        "rr.op_id LEFT JOIN op_tensors p ON p.op_id = o.id AND p.role = 'pos' LEFT JOIN "
        "op_tensors c ON c.op_id = o.id AND c.role = 'cos' LEFT JOIN op_tensors s ON s.op_id = "
        "o.id AND s.role = 'sin' ORDER BY o.run_id, o.step, o.seq, rr.row;"
        "UPDATE meta SET value = '2' WHERE key = 'schema_version';"
        "PRAGMA user_version = 2");
}

static void check_all_dtypes(const char *path)
{
    trc_reader *r = ropen(path);
    ck_assert_str_eq(lt_sql1(trc_reader_sql_handle(r),
                             "SELECT group_concat(op_id || ':' || role || '=' || name, ';') FROM "
                             "(SELECT * FROM op_weights ORDER BY op_id, role)"),
                     "1:b\"i\\as=odd\tname\x01;1:weight=blk.0.attn_norm.weight");
    ck_assert_str_eq(lt_sql1(trc_reader_sql_handle(r),
                             "SELECT group_concat(role || '=' || tensor_id || ':' || dtype, ';') "
                             "FROM (SELECT * FROM v_op_tensors WHERE op_id = 1 ORDER BY role)"),
                     "in0=2:f16;in1=3:bf16;out=1:f32;pos=4:i32");
    ck_assert_str_eq(lt_sql1(trc_reader_sql_handle(r),
                             "SELECT tensor_id || ',' || shape FROM v_op_stats WHERE op_id = 1"),
                     "1,[2,3]");
    int64_t tid;
    struct trc_tensor_info ti;
    ck_assert_int_eq(trc_reader_op_tensor(r, 1, "out", &tid), 0);
    ck_assert_int_eq(trc_reader_tensor_info(r, tid, &ti), 0);
    ck_assert_int_eq(ti.dtype, TRC_DTYPE_F32);
    ck_assert_int_eq(ti.n_dims, 2);
    ck_assert_int_eq(ti.shape[0], 2);
    ck_assert_int_eq(ti.shape[1], 3);
    ck_assert_int_eq(ti.nbytes, 24);
    ck_assert(ti.has_data);
    float back[6];
    ck_assert_int_eq(trc_reader_tensor_f32(r, tid, back, 6), 0);
    ck_assert(back[0] == 1.5f && back[1] == -2.25f && back[3] == 3.0e-3f);
    ck_assert(isnan(back[4]) && isinf(back[5]));
    ck_assert_int_eq(ti.n_nan, 1);
    ck_assert_int_eq(ti.n_inf, 1);
    /* f16 and bf16 convert exactly for these values; i32 raw is bit-exact */
    const char *roles[3] = {"in0", "in1", "pos"};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(trc_reader_op_tensor(r, 1, roles[k], &tid), 0);
        ck_assert_int_eq(trc_reader_tensor_f32(r, tid, back, 6), 0);
        if (k < 2) {
            ck_assert(back[0] == 0.5f && back[1] == -1.0f && back[2] == 2.0f && back[3] == 0.125f);
        }
    }
    int32_t iv[3];
    ck_assert_int_eq(trc_reader_tensor_raw(r, tid, iv, sizeof iv), 0);
    ck_assert(iv[0] == -7 && iv[1] == 0 && iv[2] == 2147483647);
    ck_assert_int_eq(trc_reader_tensor_raw(r, tid, iv, 8), TRC_EINVAL); /* too small */
    trc_reader_close(r);
}

START_TEST(test_trace_roundtrip_all_dtypes)
{
    const char *p = lt_tmp_path("trace", "dtypes.trace");
    write_all_dtypes(p, false);
    check_all_dtypes(p);
}
END_TEST

START_TEST(test_trace_roundtrip_synchronous_same_content)
{
    const char *a = lt_tmp_path("trace", "async.trace");
    const char *b = lt_tmp_path("trace", "sync.trace");
    write_all_dtypes(a, false);
    write_all_dtypes(b, true);
    check_all_dtypes(b);
    trc_reader *ra = ropen(a);
    trc_reader *rb = ropen(b);
    const char *sql = "SELECT group_concat(hash || dtype || shape || length(data), ';') FROM "
                      "(SELECT * FROM tensors ORDER BY id)";
    char ha[4096];
    snprintf(ha, sizeof ha, "%s", lt_sql1(trc_reader_sql_handle(ra), sql));
    ck_assert_str_eq(ha, lt_sql1(trc_reader_sql_handle(rb), sql));
    trc_reader_close(ra);
    trc_reader_close(rb);
}
END_TEST

START_TEST(test_trace_roundtrip_runs_steps_ops)
{
    const char *p = lt_tmp_path("trace", "meta.trace");
    write_all_dtypes(p, false);
    trc_reader *r = ropen(p);
    trc_cursor *c = NULL;
    struct trc_run_info ri;
    ck_assert_int_eq(trc_reader_runs(r, &c), 0);
    ck_assert_int_eq(trc_cursor_next_run(c, &ri), 1);
    ck_assert_int_eq(ri.id, 1);
    ck_assert_str_eq(ri.source, "test");
    ck_assert_str_eq(ri.status, "complete");
    ck_assert_str_eq(ri.model_path, "/m.gguf");
    ck_assert_int_eq(ri.n_layer, 2);
    ck_assert_int_eq(ri.n_embd, -1);
    ck_assert_double_eq(ri.rope_theta, 10000.0);
    ck_assert_double_eq(ri.rope_freq_scale, 1.0);
    ck_assert_int_eq(ri.n_steps, 1);
    ck_assert_int_eq(ri.last_step, 0);
    ck_assert_str_eq(ri.record_rules, "[]");
    ck_assert_int_eq(trc_cursor_next_run(c, &ri), 0);
    trc_cursor_close(c);

    struct trc_step_info si;
    ck_assert_int_eq(trc_reader_steps(r, 1, &c), 0);
    ck_assert_int_eq(trc_cursor_next_step(c, &si), 1);
    ck_assert(si.step == 0 && si.pos0 == 0 && si.n_tokens == 2 && si.elapsed_ns == 1000);
    ck_assert_int_eq(si.n_ops, 1);
    ck_assert_int_eq(trc_cursor_next_step(c, &si), 0);
    trc_cursor_close(c);

    struct trc_op_info oi;
    ck_assert_int_eq(trc_reader_ops(r, 1, -1, &c), 0);
    ck_assert_int_eq(trc_cursor_next_op(c, &oi), 1);
    ck_assert_str_eq(oi.name, "blk.0.attn_norm");
    ck_assert_str_eq(oi.kind, "test");
    ck_assert_str_eq(oi.params_json, "{\"eps\":1e-05}");
    ck_assert(oi.layer == 0 && oi.seq == 0 && oi.elapsed_ns == 42 && oi.level == TRC_LEVEL_FULL);
    ck_assert_int_eq(trc_cursor_next_op(c, &oi), 0);
    trc_cursor_close(c);
    ck_assert_int_eq(trc_reader_op(r, 1, &oi), 0);
    ck_assert_str_eq(oi.name, "blk.0.attn_norm");

    void *db = trc_reader_sql_handle(r);
    ck_assert_str_eq(lt_sql1(db, "SELECT value FROM run_params WHERE key = 'my_custom_key'"),
                     "hello");
    ck_assert_str_eq(lt_sql1(db, "SELECT value FROM run_params WHERE key = 'my_real'"), "0.5");
    ck_assert_str_eq(lt_sql1(db, "SELECT group_concat(piece, '|') FROM v_tokens"),
                     "<s>| Once| upon");
    ck_assert_str_eq(lt_sql1(db, "SELECT prob || ',' || logit FROM tokens WHERE idx = 2"),
                     "0.75,11.9700002670288");
    ck_assert_str_eq(lt_sql1(db, "SELECT status || ',' || n_steps || ',' || generated FROM v_runs"),
                     "complete,1, upon");
    ck_assert_str_eq(lt_sql1(db, "SELECT value FROM meta WHERE key = 'schema_version'"), "4");
    ck_assert_str_eq(lt_sql1(db, "PRAGMA user_version"), "4");
    ck_assert_str_eq(lt_sql1(db, "SELECT tensors FROM ops WHERE id = 1"),
                     "{\"out\":1,\"in0\":2,\"in1\":3,\"pos\":4}");
    ck_assert_str_eq(lt_sql1(db, "SELECT weights FROM ops WHERE id = 1"),
                     "{\"weight\":\"blk.0.attn_norm.weight\",\"b\\\"i\\\\as\":"
                     "\"odd\\u0009name\\u0001\"}");
    ck_assert_str_eq(lt_sql1(db, "PRAGMA integrity_check"), "ok");
    ck_assert_str_eq(lt_sql1(db, "PRAGMA journal_mode"), "delete"); /* closed: one file, no WAL */
    trc_reader_close(r);
    char wal[1300];
    snprintf(wal, sizeof wal, "%s-wal", p);
    ck_assert_int_ne(access(wal, F_OK), 0);
}
END_TEST

START_TEST(test_trace_roundtrip_dedupe)
{
    const char *p = lt_tmp_path("trace", "dedupe.trace");
    float cosv[64];
    float other[64];
    for (int i = 0; i < 64; i++) {
        cosv[i] = cosf((float)i * 0.1f);
        other[i] = (float)i;
    }
    trc_writer *w = lt_writer_open(p, false);
    ck_assert_int_eq(trc_writer_add_rule(w, "stats:blk.0.*"), 0);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    ck_assert_int_eq(trc_step_begin(w, 0, 0, 1), 0);
    struct trc_tensor a = t1("cos", TRC_DTYPE_F32, 2, 32, cosv);
    struct trc_tensor b = t1("out", TRC_DTYPE_F32, 64, 0, cosv); /* same bytes, other shape */
    struct trc_tensor c = t1("out", TRC_DTYPE_F32, 2, 32, other);
    ck_assert_int_eq(rec(w, "blk.0.rope_q", &a, 1), 0); /* stats only: no blob */
    ck_assert_int_eq(rec(w, "blk.1.rope_q", &a, 1), 0); /* full: upgrades the same row */
    ck_assert_int_eq(rec(w, "blk.2.rope_q", &a, 1), 0);
    ck_assert_int_eq(rec(w, "blk.2.x", &b, 1), 0);
    ck_assert_int_eq(rec(w, "blk.2.y", &c, 1), 0);
    ck_assert_int_eq(trc_step_end(w, -1), 0);
    struct trc_writer_stats st;
    ck_assert_int_eq(trc_writer_get_stats(w, &st), 0);
    ck_assert_int_eq(st.n_tensors, 5);
    ck_assert_int_eq(st.n_dedup, 2);
    ck_assert_int_eq(st.n_ops, 5);
    ck_assert_int_eq(st.raw_bytes, 4 * 256);
    ck_assert_int_eq(trc_writer_close(w), 0);
    trc_reader *r = ropen(p);
    void *db = trc_reader_sql_handle(r);
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) FROM tensors"), "3");
    ck_assert_str_eq(lt_sql1(db, "SELECT count(DISTINCT hash || dtype || shape) FROM tensors"),
                     "3");
    ck_assert_str_eq(
        lt_sql1(db, "SELECT count(DISTINCT tensor_id) FROM op_tensors WHERE role='cos'"), "1");
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) FROM tensors WHERE data IS NOT NULL"), "3");
    ck_assert_str_eq(lt_sql1(db, "SELECT group_concat(level) FROM ops WHERE name LIKE '%rope_q'"),
                     "stats,full,full");
    trc_reader_close(r);
}
END_TEST

/* Tensor rows without data wait in a batch and get their ids from the writer; rows with data
 * go in at once. Mixed levels over several steps (more stats rows than a batch holds, and a
 * stats row upgraded to full while its batch waits): ids stay dense and every link resolves. */
START_TEST(test_trace_roundtrip_mixed_levels_ids)
{
    const char *p = lt_tmp_path("trace", "mixed.trace");
    trc_writer *w = lt_writer_open(p, false);
    ck_assert_int_eq(trc_writer_add_rule(w, "stats"), 0);
    ck_assert_int_eq(trc_writer_add_rule(w, "full:*.full"), 0);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    float x[16];
    for (int step = 0; step < 3; step++) {
        ck_assert_int_eq(trc_step_begin(w, step, step, 1), 0);
        for (int k = 0; k < 100; k++) {
            for (int i = 0; i < 16; i++) {
                x[i] = (float)(step * 1000 + k * 16 + i);
            }
            char name[32];
            snprintf(name, sizeof name, "op%d.%s", k, k % 7 == 3 ? "full" : "stats");
            struct trc_tensor t = t1("out", TRC_DTYPE_F32, 16, 0, x);
            ck_assert_int_eq(rec(w, name, &t, 1), 0);
        }
        struct trc_tensor same = t1("out", TRC_DTYPE_F32, 16, 0, x); /* op99's bytes */
        ck_assert_int_eq(rec(w, "again.full", &same, 1), 0);         /* upgrades op99's stats row */
        ck_assert_int_eq(trc_step_end(w, -1), 0);
    }
    ck_assert_int_eq(trc_writer_close(w), 0);
    trc_reader *r = ropen(p);
    void *db = trc_reader_sql_handle(r);
    ck_assert_str_eq(
        lt_sql1(db, "SELECT count(*) || ',' || min(id) || ',' || max(id) FROM tensors"),
        "300,1,300");
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) FROM op_tensors WHERE tensor_id NOT IN "
                                 "(SELECT id FROM tensors)"),
                     "0");
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) FROM tensors WHERE data IS NOT NULL"), "45");
    ck_assert_str_eq(lt_sql1(db, "SELECT min || ',' || max || ',' || n_elems FROM tensors t "
                                 "JOIN op_tensors ot ON ot.tensor_id = t.id JOIN ops o ON "
                                 "o.id = ot.op_id WHERE o.name = 'op5.stats' AND o.step = 2"),
                     "2080.0,2095.0,16");
    int64_t tid = 0;
    ck_assert_int_eq(trc_reader_op_tensor(r, 101, "out", &tid), 0); /* step 0, "again.full" */
    float back[16];
    ck_assert_int_eq(trc_reader_tensor_f32(r, tid, back, 16), 0);
    ck_assert(back[0] == 99.0f * 16.0f && back[15] == 99.0f * 16.0f + 15.0f);
    trc_reader_close(r);
}
END_TEST

/* An op with more tensors than the writer keeps on its stack (8): every role reaches
 * ops.tensors in the order given and reads back, at both levels, threaded or synchronous. */
START_TEST(test_trace_roundtrip_many_tensors)
{
    enum { N = 11 };
    for (int sync = 0; sync < 2; sync++) {
        const char *p = lt_tmp_path("trace", sync ? "many_sync.trace" : "many.trace");
        trc_writer *w = lt_writer_open(p, sync);
        ck_assert_int_eq(trc_writer_add_rule(w, "stats"), 0);
        ck_assert_int_eq(trc_writer_add_rule(w, "full:wide.full"), 0);
        ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
        ck_assert_int_eq(trc_step_begin(w, 0, 0, 1), 0);
        float x[N][4];
        char roles[N][8];
        struct trc_tensor ts[N];
        for (int k = 0; k < N; k++) {
            for (int i = 0; i < 4; i++) {
                x[k][i] = (float)(10 * k + i);
            }
            snprintf(roles[k], sizeof roles[k], k ? "in%d" : "out", k - 1);
            ts[k] = t1(roles[k], TRC_DTYPE_F32, 4, 0, x[k]);
        }
        ck_assert_int_eq(rec(w, "wide.stats", ts, N), 0);
        ck_assert_int_eq(rec(w, "wide.full", ts, N), 0);
        ck_assert_int_eq(trc_step_end(w, -1), 0);
        ck_assert_int_eq(trc_writer_close(w), 0);
        trc_reader *r = ropen(p);
        void *db = trc_reader_sql_handle(r);
        ck_assert_str_eq(lt_sql1(db, "SELECT tensors FROM ops WHERE id = 1"),
                         "{\"out\":1,\"in0\":2,\"in1\":3,\"in2\":4,\"in3\":5,\"in4\":6,"
                         "\"in5\":7,\"in6\":8,\"in7\":9,\"in8\":10,\"in9\":11}");
        ck_assert_str_eq(lt_sql1(db, "SELECT group_concat(role, ',') FROM op_tensors WHERE "
                                     "op_id = 2"),
                         "out,in0,in1,in2,in3,in4,in5,in6,in7,in8,in9");
        ck_assert_str_eq(lt_sql1(db, "SELECT count(*) || ',' || sum(data IS NOT NULL) FROM "
                                     "tensors"),
                         "11,11"); /* the same contents: op 2 (full) gave op 1's rows data */
        for (int k = 0; k < N; k++) {
            int64_t tid = 0;
            float back[4];
            ck_assert_int_eq(trc_reader_op_tensor(r, 2, roles[k], &tid), 0);
            ck_assert_int_eq(tid, k + 1);
            ck_assert_int_eq(trc_reader_tensor_f32(r, tid, back, 4), 0);
            ck_assert(back[0] == (float)(10 * k) && back[3] == (float)(10 * k + 3));
        }
        trc_reader_close(r);
    }
}
END_TEST

START_TEST(test_trace_roundtrip_partial)
{
    const char *p = lt_tmp_path("trace", "partial.trace");
    float vals[3] = {0.25f, -1.5f, 3.0f};
    int64_t known[3] = {0, 5, 11};
    trc_writer *w = lt_writer_open(p, false);
    ck_assert_int_eq(trc_run_begin(w, "llama.cpp-text", NULL), 0);
    ck_assert_int_eq(trc_step_begin(w, 0, 0, 3), 0);
    struct trc_tensor t = t1("out", TRC_DTYPE_F32, 3, 4, vals);
    t.known = known;
    t.n_known = 3;
    ck_assert_int_eq(rec(w, "blk.0.kq", &t, 1), 0);
    ck_assert_int_eq(rec(w, "blk.1.kq", &t, 1), 0); /* partial tensors are not deduplicated */
    t.n_known = 0; /* nothing known: an empty index blob (fuzz_tensor found it read as NULL) */
    ck_assert_int_eq(rec(w, "blk.2.kq", &t, 1), 0);
    ck_assert_int_eq(trc_step_end(w, -1), 0);
    ck_assert_int_eq(trc_writer_close(w), 0);
    trc_reader *r = ropen(p);
    struct trc_tensor_info ti;
    ck_assert_int_eq(trc_reader_tensor_info(r, 1, &ti), 0);
    ck_assert(ti.partial && ti.n_elems == 12 && ti.n_stored == 3 && ti.nbytes == 12);
    ck_assert_double_eq(ti.min, -1.5);
    float back[3];
    int64_t kb[3];
    ck_assert_int_eq(trc_reader_tensor_f32(r, 1, back, 3), 0);
    ck_assert_int_eq(trc_reader_tensor_known(r, 1, kb, 3), 0);
    ck_assert(back[1] == -1.5f && kb[0] == 0 && kb[1] == 5 && kb[2] == 11);
    ck_assert_int_eq(trc_reader_tensor_known(r, 1, kb, 2), TRC_EINVAL);
    ck_assert_int_eq(trc_reader_tensor_info(r, 3, &ti), 0);
    ck_assert(ti.partial && ti.n_elems == 12 && ti.n_stored == 0 && ti.nbytes == 0);
    ck_assert_int_eq(trc_reader_tensor_known(r, 3, kb, 0), 0);
    ck_assert_int_eq(trc_reader_tensor_f32(r, 3, back, 0), 0);
    ck_assert_str_eq(lt_sql1(trc_reader_sql_handle(r), "SELECT count(*) FROM tensors"), "3");
    trc_reader_close(r);
}
END_TEST

/* ---- core ---------------------------------------------------------------------------------- */

START_TEST(test_trace_stats_values)
{
    const char *p = lt_tmp_path("trace", "stats.trace");
    float x[8] = {1, 2, 3, 4, -4, NAN, -INFINITY, 0};
    trc_writer *w = lt_writer_open(p, false);
    ck_assert_int_eq(trc_writer_add_rule(w, "stats"), 0);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    ck_assert_int_eq(trc_step_begin(w, 0, 0, 1), 0);
    struct trc_tensor t = t1("out", TRC_DTYPE_F32, 8, 0, x);
    ck_assert_int_eq(rec(w, "output", &t, 1), 0);
    ck_assert_int_eq(trc_step_end(w, -1), 0);
    ck_assert_int_eq(trc_writer_close(w), 0);
    trc_reader *r = ropen(p);
    struct trc_tensor_info ti;
    ck_assert_int_eq(trc_reader_tensor_info(r, 1, &ti), 0);
    ck_assert(!ti.has_data);
    ck_assert_double_eq(ti.min, -4.0);
    ck_assert_double_eq(ti.max, 4.0);
    ck_assert_double_eq_tol(ti.mean, 6.0 / 6.0, 1e-12);
    ck_assert_double_eq_tol(ti.rms, sqrt(46.0 / 6.0), 1e-12);
    ck_assert_int_eq(ti.n_nan, 1);
    ck_assert_int_eq(ti.n_inf, 1);
    float back[8];
    ck_assert_int_eq(trc_reader_tensor_f32(r, 1, back, 8), TRC_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(trc_reader_errmsg(r), "only stats"));
    trc_reader_close(r);
}
END_TEST

START_TEST(test_trace_rules_levels)
{
    const char *p = lt_tmp_path("trace", "rules.trace");
    trc_writer *w = lt_writer_open(p, false);
    ck_assert_int_eq(trc_writer_level(w, "blk.0.attn_q", 0), TRC_LEVEL_FULL);
    ck_assert_int_eq(trc_writer_add_rule(w, "stats"), 0);
    ck_assert_int_eq(trc_writer_add_rule(w, "full:blk.0.*"), 0);
    ck_assert_int_eq(trc_writer_add_rule(w, "full:*rope*"), 0);
    ck_assert_int_eq(trc_writer_add_rule(w, "none:step>=2"), 0);
    ck_assert_int_eq(trc_writer_add_rule(w, "none:output_norm"), 0);
    ck_assert_int_eq(trc_writer_level(w, "blk.0.attn_q", 0), TRC_LEVEL_FULL);
    ck_assert_int_eq(trc_writer_level(w, "blk.1.attn_q", 1), TRC_LEVEL_STATS);
    ck_assert_int_eq(trc_writer_level(w, "blk.1.rope_k", 1), TRC_LEVEL_FULL);
    ck_assert_int_eq(trc_writer_level(w, "blk.0.attn_q", 2), TRC_LEVEL_NONE);
    ck_assert_int_eq(trc_writer_level(w, "output_norm", 0), TRC_LEVEL_NONE);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    ck_assert_int_eq(trc_writer_add_rule(w, "full:step=3"), 0); /* while the run is open */
    float x[4] = {1, 2, 3, 4};
    struct trc_tensor t = t1("out", TRC_DTYPE_F32, 4, 0, x);
    const char *names[4] = {"blk.0.attn_q", "blk.1.attn_q", "output_norm", "output"};
    for (int s = 0; s < 4; s++) {
        ck_assert_int_eq(trc_step_begin(w, s, s, 1), 0);
        for (int k = 0; k < 4; k++) {
            ck_assert_int_eq(rec(w, names[k], &t, 1), 0);
        }
        ck_assert_int_eq(trc_step_end(w, -1), 0);
    }
    ck_assert_int_eq(trc_writer_close(w), 0);
    trc_reader *r = ropen(p);
    void *db = trc_reader_sql_handle(r);
    ck_assert_str_eq(lt_sql1(db,
                             "SELECT group_concat(step || ':' || seq || ':' || level, ' ') FROM "
                             "(SELECT * FROM ops ORDER BY id)"),
                     "0:0:full 0:1:stats 0:3:stats 1:0:full 1:1:stats 1:3:stats "
                     "3:0:full 3:1:full 3:2:full 3:3:full");
    ck_assert_str_eq(lt_sql1(db, "SELECT record_rules FROM runs"),
                     "[\"stats\",\"full:blk.0.*\",\"full:*rope*\",\"none:step>=2\","
                     "\"none:output_norm\",\"full:step=3\"]");
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) FROM steps"), "4");
    trc_reader_close(r);
}
END_TEST

START_TEST(test_trace_codec_hash_and_shuffle)
{
    /* lt64 golden values: these pin the format (examples/python-reader checks the same). */
    char hex[17];
    trc__hash_hex(trc__hash("", 0), hex);
    ck_assert_str_eq(hex, LT64_EMPTY);
    trc__hash_hex(trc__hash("abc", 3), hex);
    ck_assert_str_eq(hex, LT64_ABC);
    uint8_t buf[100];
    for (int i = 0; i < 100; i++) {
        buf[i] = (uint8_t)i;
    }
    trc__hash_hex(trc__hash(buf, 100), hex);
    ck_assert_str_eq(hex, LT64_0_99);
    ck_assert(trc__hash(buf, 99) != trc__hash(buf, 100));
    uint8_t z[33] = {0};
    ck_assert(trc__hash(z, 32) != trc__hash(z, 33)); /* zero padding does not collide */
    uint8_t s[100];
    uint8_t u[100];
    for (size_t w = 1; w <= 4; w *= 2) {
        trc__shuffle(s, buf, 100 / w, w);
        trc__unshuffle(u, s, 100 / w, w);
        ck_assert_mem_eq(u, buf, 100);
    }
    trc__shuffle(s, buf, 25, 4);
    ck_assert(s[0] == 0 && s[1] == 4 && s[25] == 1); /* byte 0 of each element first */
    ck_assert(trc__f16_to_f32(0x3c00) == 1.0f);
    ck_assert(trc__f16_to_f32(0xc000) == -2.0f);
    ck_assert(trc__f16_to_f32(0x0001) == 5.9604644775390625e-08f);
    ck_assert(isinf(trc__f16_to_f32(0x7c00)) && isnan(trc__f16_to_f32(0x7e00)));
    ck_assert(trc__bf16_to_f32(0x3f80) == 1.0f);
}
END_TEST

START_TEST(test_trace_queue_bounded)
{
    /* 1 MiB queue, 40 ops of 256 KiB each: the caller waits for the worker, nothing is lost */
    const char *p = lt_tmp_path("trace", "queue.trace");
    trc_writer *w = NULL;
    struct trc_writer_opts o = {.overwrite = true, .queue_mb = 1};
    char err[256];
    ck_assert_int_eq(trc_writer_open(p, &o, &w, err, sizeof err), 0);
    float *x = malloc(65536 * sizeof *x);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    ck_assert_int_eq(trc_step_begin(w, 0, 0, 1), 0);
    for (int k = 0; k < 40; k++) {
        for (int i = 0; i < 65536; i++) {
            x[i] = (float)(i * (k + 1));
        }
        struct trc_tensor t = t1("out", TRC_DTYPE_F32, 256, 256, x);
        ck_assert_int_eq(rec(w, "blk.0.x", &t, 1), 0);
    }
    ck_assert_int_eq(trc_step_end(w, -1), 0);
    ck_assert_int_eq(trc_writer_close(w), 0);
    trc_reader *r = ropen(p);
    ck_assert_int_eq(trc_reader_tensor_f32(r, 40, x, 65536), 0);
    ck_assert(x[65535] == 65535.0f * 40.0f);
    trc_reader_close(r);
    free(x);
}
END_TEST

/* Records 8 MiB of f32 (64 ops of [8, 4096]) and returns stored/raw; prints MB/s raw. */
static double measure_ratio(const char *label, int smooth)
{
    const char *p = lt_tmp_path("trace", "ratio.trace");
    int n = 8 * 4096;
    float *x = malloc((size_t)n * sizeof *x);
    uint32_t s = 7;
    trc_writer *w = lt_writer_open(p, false);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    struct timespec ts0;
    struct timespec ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    ck_assert_int_eq(trc_step_begin(w, 0, 0, 8), 0);
    for (int k = 0; k < 64; k++) {
        for (int i = 0; i < n; i++) { /* normal(0,1) by Box-Muller, or a smooth signal */
            s = s * 1664525u + 1013904223u;
            double u1 = ((s >> 8) + 1) / 16777217.0;
            s = s * 1664525u + 1013904223u;
            double u2 = (s >> 8) / 16777216.0;
            double g = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
            x[i] = smooth ? (float)(3.0 * sin(0.002 * (i + 977 * k))) : (float)g;
        }
        struct trc_tensor t = t1("out", TRC_DTYPE_F32, 8, 4096, x);
        ck_assert_int_eq(rec(w, "blk.0.x", &t, 1), 0);
    }
    ck_assert_int_eq(trc_step_end(w, -1), 0);
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    struct trc_writer_stats st;
    ck_assert_int_eq(trc_writer_get_stats(w, &st), 0);
    ck_assert_int_eq(trc_writer_close(w), 0);
    double secs = (double)(ts1.tv_sec - ts0.tv_sec) + (double)(ts1.tv_nsec - ts0.tv_nsec) * 1e-9;
    double ratio = (double)st.stored_bytes / (double)st.raw_bytes;
    fprintf(stderr, "trace: %s f32: compressed/raw %.3f, %.0f MB/s raw (incl. data generation)\n",
            label, ratio, (double)st.raw_bytes / 1e6 / secs);
    free(x);
    return ratio;
}

START_TEST(test_trace_codec_compresses_floats)
{
    /* random normal floats keep ~23 random mantissa bits: only the exponent bytes compress */
    double rn = measure_ratio("normal(0,1)", 0);
    ck_assert_double_lt(rn, 0.95);
    ck_assert_double_gt(rn, 0.75);
    ck_assert_double_lt(measure_ratio("smooth (sine)", 1), 0.7);
}
END_TEST

/* ---- errors -------------------------------------------------------------------------------- */

static void expect_open_error(const char *path, int code, const char *needle)
{
    trc_reader *r = NULL;
    char err[TRC_ERRBUF_SIZE] = "";
    ck_assert_int_eq(trc_reader_open(path, &r, err, sizeof err), code);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err, needle) != NULL, "'%s' lacks '%s'", err, needle);
    ck_assert_msg(strstr(err, path) != NULL, "'%s' does not name the file", err);
}

START_TEST(test_trace_errors_not_a_trace)
{
    const char *junk = lt_tmp_path("trace", "junk.trace");
    ck_assert_int_eq(lt_write_file(junk, "this is not sqlite, just some text.......", 41), 0);
    expect_open_error(junk, TRC_EFORMAT, "not an lltrace trace (not an SQLite database)");
    const char *other = lt_tmp_path("trace", "other.db");
    unlink(other);
    rw_exec(other, "CREATE TABLE x(a)");
    expect_open_error(other, TRC_EFORMAT, "not an lltrace trace (no meta table)");
    const char *empty = lt_tmp_path("trace", "empty.trace");
    ck_assert_int_eq(lt_write_file(empty, "", 0), 0);
    expect_open_error(empty, TRC_EFORMAT, "no meta table");
    expect_open_error(lt_tmp_path("trace", "missing.trace"), TRC_EIO,
                      "cannot open: no such file or directory");
    expect_open_error(lt_tmp_path("trace", "."), TRC_EFORMAT, "not a regular file");
}
END_TEST

START_TEST(test_trace_errors_schema_versions)
{
    const char *p = lt_tmp_path("trace", "v7.trace");
    write_all_dtypes(p, false);
    char want[1400];
    static const char *const newer[] = {"5", "7"};
    for (int k = 0; k < 2; k++) {
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE meta SET value = '%s' WHERE key = 'schema_version'",
                 newer[k]);
        rw_exec(p, sql);
        snprintf(want, sizeof want,
                 "%s: trace schema version %s is newer than this lltrace supports (4)", p,
                 newer[k]);
        expect_open_error(p, TRC_EVERSION, want);
    }
    /* versions 4, 3 (no tensors.data_of), 2 (op_weights a table) and 1 (also: tensor data always
     * one zstd frame, as these small tensors are) open, and read the same */
    rw_exec(p, "UPDATE meta SET value = '4' WHERE key = 'schema_version'");
    check_all_dtypes(p);
    to_v3_layout(p); /* the reader's query for version 4 would fail here */
    check_all_dtypes(p);
    to_v2_layout(p);
    check_all_dtypes(p);
    rw_exec(p, "UPDATE meta SET value = '1' WHERE key = 'schema_version'");
    rw_exec(p, "PRAGMA user_version = 1");
    check_all_dtypes(p);
    rw_exec(p, "UPDATE meta SET value = '0' WHERE key = 'schema_version'");
    expect_open_error(p, TRC_EVERSION, "version 0 is older than the oldest this lltrace reads (1)");
    rw_exec(p, "UPDATE meta SET value = '-1' WHERE key = 'schema_version'");
    expect_open_error(p, TRC_EVERSION, "version -1 is older than the oldest this lltrace reads");
    rw_exec(p, "DELETE FROM meta WHERE key = 'schema_version'");
    expect_open_error(p, TRC_EFORMAT, "no schema_version");
}
END_TEST

/* Opens the reader and loads tensor 1 of the "out" of op 1, expecting a corruption error. */
static void expect_corrupt(const char *path, const char *sql, const char *needle)
{
    write_all_dtypes(path, false);
    rw_exec(path, sql);
    trc_reader *r = ropen(path);
    float back[6];
    ck_assert_int_eq(trc_reader_tensor_f32(r, 1, back, 6), TRC_ECORRUPT);
    const char *m = trc_reader_errmsg(r);
    ck_assert_msg(strstr(m, needle) && strstr(m, "tensor 1") && strstr(m, path), "got '%s'", m);
    trc_reader_close(r);
}

START_TEST(test_trace_errors_corrupt_blobs)
{
    const char *p = lt_tmp_path("trace", "corrupt.trace");
    /* one flipped byte in the compressed data: the zstd checksum catches it */
    expect_corrupt(p,
                   "UPDATE tensors SET data = substr(data, 1, length(data) - 6) || "
                   "x'5a' || substr(data, length(data) - 4) WHERE id = 1",
                   "bad zstd frame");
    expect_corrupt(p, "UPDATE tensors SET data = x'0102030405060708090a' WHERE id = 1",
                   "bad zstd frame");
    expect_corrupt(p, "UPDATE tensors SET hash = '0123456789abcdef' WHERE id = 1",
                   "content hash mismatch (stored 0123456789abcdef");
    /* consistent columns for 3x3 elements, but the frame declares 24 bytes */
    expect_corrupt(p, "UPDATE tensors SET shape = '[3,3]', n_elems = 9, nbytes = 36 WHERE id = 1",
                   "declared size 24 bytes does not fit the shape (36 bytes)");
    expect_corrupt(p, "UPDATE tensors SET shape = '[3]' WHERE id = 1", "do not fit the shape");
    expect_corrupt(p, "UPDATE tensors SET shape = 'garbage' WHERE id = 1", "bad shape");
    expect_corrupt(p, "UPDATE tensors SET dtype = 'f64' WHERE id = 1", "unknown dtype");
    expect_corrupt(p, "UPDATE tensors SET codec = 'lz4' WHERE id = 1", "unknown codec");
    expect_corrupt(p, "UPDATE tensors SET shape = '[1099511627776,1099511627776]' WHERE id = 1",
                   "shape too large");
    expect_corrupt(p, "UPDATE tensors SET partial = 1, n_known = 6, known = x'00' WHERE id = 1",
                   "known-index blob");
}
END_TEST

START_TEST(test_trace_errors_not_found)
{
    const char *p = lt_tmp_path("trace", "nf.trace");
    write_all_dtypes(p, false);
    trc_reader *r = ropen(p);
    struct trc_tensor_info ti;
    struct trc_op_info oi;
    int64_t tid;
    ck_assert_int_eq(trc_reader_tensor_info(r, 999, &ti), TRC_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(trc_reader_errmsg(r), "tensor 999: no such tensor"));
    ck_assert_int_eq(trc_reader_op(r, 999, &oi), TRC_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(trc_reader_errmsg(r), "op 999: no such op"));
    ck_assert_int_eq(trc_reader_op_tensor(r, 1, "in7", &tid), TRC_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(trc_reader_errmsg(r), "no tensor with role 'in7'"));
    /* the reader's connection is read-only */
    ck_assert_ptr_nonnull(strstr(lt_sql1(trc_reader_sql_handle(r), "DELETE FROM ops"), "ERROR"));
    ck_assert_ptr_nonnull(
        strstr(lt_sql1(trc_reader_sql_handle(r), "CREATE TABLE evil(x)"), "ERROR"));
    trc_reader_close(r);
}
END_TEST

START_TEST(test_trace_errors_open_for_writing)
{
    const char *p = lt_tmp_path("trace", "exists.trace");
    char err[TRC_ERRBUF_SIZE];
    trc_writer *w = lt_writer_open(p, false);
    trc_writer *w2 = NULL;
    ck_assert_int_eq(trc_writer_open(p, NULL, &w2, err, sizeof err), TRC_EEXIST);
    ck_assert_ptr_null(w2);
    ck_assert_ptr_nonnull(strstr(err, p));
    ck_assert_ptr_nonnull(strstr(err, "file exists"));
    struct trc_writer_opts o = {.overwrite = true};
    ck_assert_int_eq(trc_writer_open(p, &o, &w2, err, sizeof err), TRC_EBUSY);
    ck_assert_ptr_nonnull(strstr(err, "open for writing by another writer"));
    ck_assert_int_eq(trc_writer_close(w), 0);
    ck_assert_int_eq(trc_writer_open(p, &o, &w2, err, sizeof err), 0); /* now free */
    ck_assert_int_eq(trc_writer_close(w2), 0);
    ck_assert_int_eq(trc_writer_open("/nonexistent-dir/x.trace", NULL, &w2, err, sizeof err),
                     TRC_EIO);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/x.trace: cannot create the trace"));
    ck_assert_int_eq(trc_writer_open(lt_tmp_path("trace", "."), &o, &w2, err, sizeof err),
                     TRC_EEXIST);
    ck_assert_ptr_nonnull(strstr(err, "is a directory; refusing to overwrite it"));
    ck_assert_int_eq(trc_writer_open("", NULL, &w2, err, sizeof err), TRC_EINVAL);
}
END_TEST

/* trc_writer_opts.page_size: a power of two in 512..65536 is the file's page size (a trace
 * written with 8 KiB pages reads back the same); anything else is refused at open, by name. */
START_TEST(test_trace_errors_page_size)
{
    const char *p = lt_tmp_path("trace", "pages.trace");
    char err[TRC_ERRBUF_SIZE];
    trc_writer *w = NULL;
    static const int bad[] = {1000, 256, 131072, -4096};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct trc_writer_opts o = {.overwrite = true, .page_size = bad[k]};
        ck_assert_int_eq(trc_writer_open(p, &o, &w, err, sizeof err), TRC_EINVAL);
        ck_assert_ptr_null(w);
        char want[64];
        snprintf(want, sizeof want, "bad page size %d (a power of two in 512..65536", bad[k]);
        ck_assert_msg(strstr(err, p) && strstr(err, want), "%s", err);
    }
    struct trc_writer_opts o = {.overwrite = true, .page_size = 8192};
    ck_assert_int_eq(trc_writer_open(p, &o, &w, err, sizeof err), 0);
    ck_assert_int_eq(trc_writer_add_rule(w, "stats"), 0);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    float x[3] = {1.0f, -2.0f, 4.0f};
    for (int step = 0; step < 3; step++) {
        struct trc_tensor t = t1("out", TRC_DTYPE_F32, 3, 0, x);
        ck_assert_int_eq(trc_step_begin(w, step, step, 1), 0);
        ck_assert_int_eq(rec(w, "blk.0.attn_norm", &t, 1), 0);
        ck_assert_int_eq(trc_step_end(w, -1), 0);
    }
    ck_assert_int_eq(trc_writer_close(w), 0);
    trc_reader *r = ropen(p);
    void *db = trc_reader_sql_handle(r);
    ck_assert_str_eq(lt_sql1(db, "PRAGMA page_size"), "8192");
    ck_assert_str_eq(lt_sql1(db, "PRAGMA integrity_check"), "ok");
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) || ',' || max(rms) FROM v_op_stats"),
                     "3,2.64575131106459");
    trc_reader_close(r);
}
END_TEST

START_TEST(test_trace_errors_api_misuse)
{
    const char *p = lt_tmp_path("trace", "misuse.trace");
    trc_writer *w = lt_writer_open(p, false);
    float x[2] = {1, 2};
    struct trc_tensor t = t1("out", TRC_DTYPE_F32, 2, 0, x);
    ck_assert_int_eq(trc_writer_add_rule(w, "loud:blk.*"), TRC_EINVAL);
    ck_assert_ptr_nonnull(strstr(trc_writer_errmsg(w), "bad recording rule 'loud:blk.*'"));
    ck_assert_int_eq(trc_writer_add_rule(w, "none:step>x"), TRC_EINVAL);
    /* runs.record_rules is a JSON array of the rules as written */
    ck_assert_int_eq(trc_writer_add_rule(w, "stats:a\tb"), TRC_EINVAL);
    ck_assert_ptr_nonnull(strstr(trc_writer_errmsg(w), "no quote, backslash or control character"));
    ck_assert_int_eq(trc_writer_add_rule(w, "stats:a\"b"), TRC_EINVAL);
    ck_assert_int_eq(trc_step_begin(w, 0, 0, 1), TRC_EINVAL); /* no run */
    ck_assert_int_eq(trc_run_set_i64(w, "n_layer", 1), TRC_EINVAL);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), TRC_EINVAL);
    ck_assert_int_eq(trc_run_set_str(w, "n_layer", "2"), TRC_EINVAL);
    ck_assert_ptr_nonnull(strstr(trc_writer_errmsg(w), "use trc_run_set_i64"));
    ck_assert_int_eq(trc_run_set_str(w, "status", "complete"), TRC_EINVAL);
    ck_assert_int_eq(rec(w, "x", &t, 1), TRC_EINVAL); /* outside a step */
    ck_assert_ptr_nonnull(strstr(trc_writer_errmsg(w), "outside a step"));
    ck_assert_int_eq(trc_step_begin(w, 3, 0, 1), 0);
    ck_assert_int_eq(trc_run_end(w, "complete"), TRC_EINVAL); /* step open */
    struct trc_tensor bad[2] = {t, t};
    ck_assert_int_eq(rec(w, "x", bad, 2), TRC_EINVAL);
    ck_assert_ptr_nonnull(strstr(trc_writer_errmsg(w), "role 'out' given twice"));
    bad[0].n_dims = 0;
    ck_assert_int_eq(rec(w, "x", bad, 1), TRC_EINVAL);
    bad[0] = t;
    bad[0].dtype = TRC_DTYPE_COUNT;
    ck_assert_int_eq(rec(w, "x", bad, 1), TRC_EINVAL);
    bad[0] = t;
    int64_t known[2] = {1, 1};
    bad[0].known = known;
    bad[0].n_known = 2;
    ck_assert_int_eq(rec(w, "x", bad, 1), TRC_EINVAL);
    ck_assert_ptr_nonnull(strstr(trc_writer_errmsg(w), "known indices must increase"));
    ck_assert_int_eq(rec(w, NULL, &t, 1), TRC_EINVAL);
    ck_assert_int_eq(trc_step_end(w, -1), 0);
    ck_assert_int_eq(trc_step_begin(w, 3, 0, 1), TRC_EINVAL); /* steps increase */
    ck_assert_int_eq(trc_step_end(w, -1), TRC_EINVAL);
    ck_assert_int_eq(trc_run_end(w, "great"), TRC_EINVAL);
    ck_assert_int_eq(trc_writer_close(w), 0);
    ck_assert_int_eq(trc_writer_close(NULL), 0);
    trc_reader_close(NULL);
    trc_cursor_close(NULL);
    ck_assert_str_eq(trc_strerror(TRC_ECORRUPT), "corrupt tensor data");
}
END_TEST

START_TEST(test_trace_errors_close_with_open_step)
{
    /* an incomplete step is rolled back; the run ends as an error */
    const char *p = lt_tmp_path("trace", "openstep.trace");
    trc_writer *w = lt_writer_open(p, false);
    float x[2] = {1, 2};
    struct trc_tensor t = t1("out", TRC_DTYPE_F32, 2, 0, x);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    ck_assert_int_eq(trc_step_begin(w, 0, 0, 1), 0);
    ck_assert_int_eq(rec(w, "x", &t, 1), 0);
    ck_assert_int_eq(trc_step_end(w, -1), 0);
    ck_assert_int_eq(trc_step_begin(w, 1, 1, 1), 0);
    ck_assert_int_eq(rec(w, "x", &t, 1), 0);
    ck_assert_int_eq(trc_writer_close(w), 0);
    trc_reader *r = ropen(p);
    void *db = trc_reader_sql_handle(r);
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) || ',' || max(step) FROM ops"), "1,0");
    ck_assert_str_eq(lt_sql1(db, "SELECT status FROM v_runs"), "error");
    trc_reader_close(r);
}
END_TEST

/* The child records 1 MiB tensors with file writes capped at 2 MiB (RLIMIT_FSIZE), as a full
 * disk would: the error must come back from the API with a message, and what was committed
 * stays readable. The child reports "<rc> <completed steps> <message>" on fd. */
static void full_disk_child(const char *p, int fd)
{
    struct rlimit rl = {2 << 20, 2 << 20};
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &rl);
    trc_writer *w = NULL;
    char err[256];
    struct trc_writer_opts o = {.overwrite = true, .zstd_level = 1};
    int rc = trc_writer_open(p, &o, &w, err, sizeof err);
    float *x = malloc(262144 * sizeof *x);
    int done = 0;
    uint32_t s = 1;
    rc = rc ? rc : trc_run_begin(w, "test", NULL);
    for (int step = 0; rc == 0 && step < 100; step++) {
        for (int i = 0; i < 262144; i++) {
            s = s * 1664525u + 1013904223u;
            x[i] = (float)(s >> 8); /* incompressible */
        }
        struct trc_tensor t = t1("out", TRC_DTYPE_F32, 262144, 0, x);
        rc = trc_step_begin(w, step, step, 1);
        rc = rc ? rc : rec(w, "x", &t, 1);
        rc = rc ? rc : trc_step_end(w, -1);
        done += rc == 0;
    }
    char out[600];
    int n = snprintf(out, sizeof out, "%d %d %s", rc, done, rc ? trc_writer_errmsg(w) : "");
    trc_writer_close(w);
    ck_assert_int_eq(write(fd, out, (size_t)n), n);
    free(x);
}

START_TEST(test_trace_errors_full_disk)
{
    const char *p = lt_tmp_path("trace", "full.trace");
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        full_disk_child(p, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    char buf[700] = "";
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    ck_assert_int_gt(n, 0);
    int rc = 0;
    int done = 0;
    int off = 0;
    ck_assert_int_eq(sscanf(buf, "%d %d %n", &rc, &done, &off), 2);
    ck_assert_int_eq(rc, TRC_EIO);
    ck_assert_msg(strstr(buf + off, p) &&
                      (strstr(buf + off, "op 'x'") || strstr(buf + off, "cannot commit")),
                  "message: %s", buf + off);
    ck_assert_int_ge(done, 0);
    ck_assert_int_lt(done, 3);
    trc_reader *r = ropen(p);
    void *db = trc_reader_sql_handle(r);
    ck_assert_str_eq(lt_sql1(db, "PRAGMA integrity_check"), "ok");
    char want[16];
    snprintf(want, sizeof want, "%d", done);
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) FROM steps"), want);
    for (int i = 1; i <= done; i++) {
        float *x = malloc(262144 * sizeof *x);
        ck_assert_int_eq(trc_reader_tensor_f32(r, i, x, 262144), 0);
        free(x);
    }
    trc_reader_close(r);
}
END_TEST

Suite *trace_suite(void); /* called by check_main.c */
Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *rt = tcase_create("roundtrip");
    tcase_add_test(rt, test_trace_roundtrip_all_dtypes);
    tcase_add_test(rt, test_trace_roundtrip_synchronous_same_content);
    tcase_add_test(rt, test_trace_roundtrip_runs_steps_ops);
    tcase_add_test(rt, test_trace_roundtrip_dedupe);
    tcase_add_test(rt, test_trace_roundtrip_partial);
    tcase_add_test(rt, test_trace_roundtrip_many_tensors);
    tcase_add_test(rt, test_trace_roundtrip_mixed_levels_ids);
    suite_add_tcase(s, rt);
    TCase *core = tcase_create("core");
    tcase_add_test(core, test_trace_stats_values);
    tcase_add_test(core, test_trace_rules_levels);
    tcase_add_test(core, test_trace_codec_hash_and_shuffle);
    tcase_add_test(core, test_trace_queue_bounded);
    tcase_add_test(core, test_trace_codec_compresses_floats);
    suite_add_tcase(s, core);
    TCase *err = tcase_create("errors");
    tcase_set_timeout(err, 60);
    tcase_add_test(err, test_trace_errors_not_a_trace);
    tcase_add_test(err, test_trace_errors_schema_versions);
    tcase_add_test(err, test_trace_errors_corrupt_blobs);
    tcase_add_test(err, test_trace_errors_not_found);
    tcase_add_test(err, test_trace_errors_open_for_writing);
    tcase_add_test(err, test_trace_errors_api_misuse);
    tcase_add_test(err, test_trace_errors_page_size);
    tcase_add_test(err, test_trace_errors_close_with_open_step);
    tcase_add_test(err, test_trace_errors_full_disk);
    suite_add_tcase(s, err);
    return s;
}
