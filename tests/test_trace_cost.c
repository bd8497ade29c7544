/*
 * Tests of what makes recording cheap (issue 4, "Cost"): links between tensors of a step
 * (trc_op_record_linked) store nothing twice (under another shape, a row whose data_of names
 * the bytes' row, which readers verify) and fall back to the data when they cannot be
 * honoured; trc_writer_check_links catches a wrong link; the engine's links (src/record.c) name
 * exactly the data it passes, at every level mix and KV type, also when it records an op
 * beside the next one (and not with LLTRACE_RECORD_SYNC); a token recorded from the
 * engine's on_logits hook is committed with its step; the SIMD stats equal a plain
 * reference, and the fused hash + stats pass (portable and AVX2) equals trc__hash + trc__stats
 * bit for bit; XXH64 matches zstd's checksums; the codec writes one zstd frame per byte plane,
 * Raw frames for random planes, that libzstd and `zstd -d` decode, rejects corrupt, truncated
 * and wrongly sized blobs, decodes version 1 blobs, and compresses like level 3; the two
 * indexes built at close exist only then; and the thread pool's waits (spin, yield, sleep) lose
 * no job, and a function posted to it runs once, on a waiting helper or the caller.
 */
#include <check.h>
#include <pthread.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_frameHeaderSize, ZSTD_findDecompressedSize */
#include <zstd.h>

#include "ctx_int.h"
#include "lm.h"
#include "pool_int.h"
#include "testutil.h"
#include "trc.h"
#include "trc_int.h"

static struct trc_tensor tf(const char *role, int n_dims, int64_t a, int64_t b, const void *x)
{
    struct trc_tensor t = {.role = role, .dtype = TRC_DTYPE_F32, .n_dims = n_dims, .data = x};
    t.shape[0] = a;
    t.shape[1] = b;
    return t;
}

static int rec(trc_writer *w, const char *name, const struct trc_tensor *ts, int n,
               const char *const *same_as)
{
    struct trc_op op = {.name = name,
                        .kind = "test",
                        .layer = -1,
                        .n_pos = 1,
                        .elapsed_ns = -1,
                        .tensors = ts,
                        .n_tensors = n};
    return trc_op_record_linked(w, &op, same_as);
}

static int64_t op_tid(trc_reader *r, const char *op, const char *role)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT tensor_id FROM op_tensors JOIN ops ON ops.id = op_id WHERE name = '%s' AND "
             "role = '%s' ORDER BY op_id DESC LIMIT 1",
             op, role);
    return atoll(lt_sql1(trc_reader_sql_handle(r), sql));
}

/* ---- links through the API ----------------------------------------------------------------- */

static void write_links(const char *p, bool sync)
{
    float a[6] = {1, 2, 3, 4, 5, 6};
    float other[6] = {9, 9, 9, 9, 9, 9};
    trc_writer *w = lt_writer_open(p, sync);
    ck_assert_int_eq(trc_writer_add_rule(w, "stats:s.*"), 0);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    ck_assert_int_eq(trc_step_begin(w, 0, 0, 1), 0);
    struct trc_tensor out = tf("out", 2, 2, 3, a);
    ck_assert_int_eq(rec(w, "a", &out, 1, NULL), 0);
    const char *to_a[1] = {"a/out"};
    struct trc_tensor same = tf("in0", 2, 2, 3, other); /* data ignored: the link wins */
    ck_assert_int_eq(rec(w, "same", &same, 1, to_a), 0);
    struct trc_tensor flat = tf("in0", 1, 6, 0, a); /* another shape: a row of its own, whose */
    /* data_of names a's row: the bytes are stored once */
    ck_assert_int_eq(rec(w, "flat", &flat, 1, to_a), 0);
    const char *to_flat[1] = {"flat/in0"}; /* a link to a linked tensor */
    ck_assert_int_eq(rec(w, "flat2", &flat, 1, to_flat), 0);
    const char *to_none[1] = {"nothing/out"};
    struct trc_tensor own = tf("in0", 2, 2, 3, other);
    ck_assert_int_eq(rec(w, "fallback", &own, 1, to_none), 0);
    struct trc_tensor small = tf("in0", 1, 4, 0, a); /* another size: falls back to data */
    ck_assert_int_eq(rec(w, "size", &small, 1, to_a), 0);
    ck_assert_int_eq(rec(w, "s.stats", &out, 1, NULL), 0);   /* level stats */
    const char *to_s[1] = {"s.stats/out"};                   /* full op: cannot use a stats */
    ck_assert_int_eq(rec(w, "upgrade", &same, 1, to_s), 0);  /* row, takes the data instead */
    ck_assert_int_eq(rec(w, "s.linked", &same, 1, to_a), 0); /* stats op, full source: fine */
    ck_assert_int_eq(trc_step_end(w, -1), 0);
    ck_assert_int_eq(trc_step_begin(w, 1, 1, 1), 0); /* links do not cross steps */
    ck_assert_int_eq(rec(w, "next", &own, 1, to_a), 0);
    float b[6] = {7, 8, 9, 10, 11, 12};
    struct trc_tensor bout = tf("out", 2, 3, 2, b);
    ck_assert_int_eq(rec(w, "b", &bout, 1, NULL), 0);
    struct trc_tensor bflat = tf("in0", 1, 6, 0, b);
    ck_assert_int_eq(rec(w, "s.bflat", &bflat, 1, NULL), 0); /* a stats-only row of that shape */
    const char *to_b[1] = {"b/out"};
    ck_assert_int_eq(rec(w, "bflat", &bflat, 1, to_b), 0); /* ... that gets b's bytes */
    ck_assert_int_eq(trc_step_end(w, -1), 0);
    struct trc_writer_stats st;
    ck_assert_int_eq(trc_writer_get_stats(w, &st), 0);
    ck_assert_int_eq(st.n_linked, 5); /* same, flat, flat2, s.linked, bflat */
    ck_assert_int_eq(st.n_tensors, 13);
    ck_assert_int_eq(trc_writer_close(w), 0);
}

static void check_links_trace(const char *p)
{
    trc_reader *r = NULL;
    char err[TRC_ERRBUF_SIZE];
    ck_assert_msg(trc_reader_open(p, &r, err, sizeof err) == 0, "%s", err);
    int64_t ta = op_tid(r, "a", "out");
    ck_assert_int_eq(op_tid(r, "same", "in0"), ta);
    ck_assert_int_eq(op_tid(r, "s.linked", "in0"), ta);
    int64_t tflat = op_tid(r, "flat", "in0");
    ck_assert_int_ne(tflat, ta);
    ck_assert_int_eq(op_tid(r, "flat2", "in0"), tflat);
    struct trc_tensor_info ia;
    struct trc_tensor_info ib;
    ck_assert_int_eq(trc_reader_tensor_info(r, ta, &ia), 0);
    ck_assert_int_eq(trc_reader_tensor_info(r, tflat, &ib), 0);
    ck_assert_str_eq(ia.hash, ib.hash);
    ck_assert(ib.n_dims == 1 && ib.shape[0] == 6 && ib.has_data && ib.max == 6.0);
    ck_assert(ia.data_of == 0 && ia.stored_bytes > 0);
    ck_assert(ib.data_of == ta && ib.stored_bytes == 0); /* a's bytes, not a copy */
    float x[6];
    ck_assert_int_eq(trc_reader_tensor_f32(r, tflat, x, 6), 0); /* a's frame, verified */
    ck_assert(x[0] == 1.0f && x[5] == 6.0f);
    int64_t tb = op_tid(r, "b", "out");
    int64_t tbflat = op_tid(r, "bflat", "in0");
    ck_assert_int_eq(op_tid(r, "s.bflat", "in0"), tbflat); /* the stats row, upgraded */
    ck_assert_int_eq(trc_reader_tensor_info(r, tbflat, &ib), 0);
    ck_assert(ib.has_data && ib.data_of == tb && ib.n_dims == 1 && ib.shape[0] == 6);
    ck_assert_int_eq(trc_reader_tensor_f32(r, tbflat, x, 6), 0);
    ck_assert(x[0] == 7.0f && x[5] == 12.0f);
    const char *fallbacks[3] = {"fallback", "upgrade", "next"};
    for (int i = 0; i < 3; i++) { /* stored from the given data (all nines) */
        ck_assert_int_eq(trc_reader_tensor_info(r, op_tid(r, fallbacks[i], "in0"), &ib), 0);
        ck_assert(ib.has_data && ib.min == 9.0 && ib.max == 9.0);
    }
    ck_assert_int_eq(trc_reader_tensor_info(r, op_tid(r, "size", "in0"), &ib), 0);
    ck_assert(ib.n_elems == 4 && ib.max == 4.0);
    trc_reader_close(r);
}

/* A copy of the links trace with sql applied: reading flat's data fails, naming the tensor. */
static void expect_bad_data_of(const char *sql, const char *want)
{
    const char *p = lt_tmp_path("trace_cost", "links_bad.trace");
    size_t n;
    char *data = lt_read_file(lt_tmp_path("trace_cost", "links.trace"), &n);
    ck_assert_ptr_nonnull(data);
    ck_assert_int_eq(lt_write_file(p, data, n), 0);
    free(data);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(p, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    trc_reader *r = NULL;
    char err[TRC_ERRBUF_SIZE];
    ck_assert_msg(trc_reader_open(p, &r, err, sizeof err) == 0, "%s", err);
    int64_t tflat = op_tid(r, "flat", "in0");
    float x[6];
    ck_assert_int_eq(trc_reader_tensor_f32(r, tflat, x, 6), TRC_ECORRUPT);
    char tname[32];
    snprintf(tname, sizeof tname, "tensor %lld: ", (long long)tflat);
    ck_assert_msg(strstr(trc_reader_errmsg(r), tname) && strstr(trc_reader_errmsg(r), want),
                  "%s: got '%s', want '%s%s'", sql, trc_reader_errmsg(r), tname, want);
    trc_reader_close(r);
}

#define FLAT  "(SELECT tensor_id FROM op_tensors JOIN ops ON ops.id = op_id WHERE name = 'flat')"
#define A_OUT "(SELECT tensor_id FROM op_tensors JOIN ops ON ops.id = op_id WHERE name = 'a')"

START_TEST(test_trace_cost_links)
{
    write_links(lt_tmp_path("trace_cost", "links.trace"), false);
    check_links_trace(lt_tmp_path("trace_cost", "links.trace"));
    const char *other = "which does not hold this tensor's bytes";
    expect_bad_data_of("UPDATE tensors SET data_of = 999 WHERE id = " FLAT, other);
    expect_bad_data_of("UPDATE tensors SET data_of = -3 WHERE id = " FLAT, "bad data_of -3");
    expect_bad_data_of("UPDATE tensors SET hash = '0123456789abcdef' WHERE id = " A_OUT, other);
    expect_bad_data_of("UPDATE tensors SET dtype = 'i32' WHERE id = " A_OUT, other);
    expect_bad_data_of("UPDATE tensors SET data = NULL, codec = NULL WHERE id = " A_OUT, other);
    expect_bad_data_of("UPDATE tensors SET data_of = " FLAT " WHERE id = " A_OUT, other);
    expect_bad_data_of("UPDATE tensors SET data = x'00' WHERE id = " FLAT, "has both data and");
    expect_bad_data_of("UPDATE tensors SET hash = '0123456789abcdef' WHERE id = " FLAT, other);
    write_links(lt_tmp_path("trace_cost", "links_sync.trace"), true);
    check_links_trace(lt_tmp_path("trace_cost", "links_sync.trace"));
}
END_TEST

START_TEST(test_trace_cost_check_links)
{
    const char *p = lt_tmp_path("trace_cost", "badlink.trace");
    float a[4] = {1, 2, 3, 4};
    float b[4] = {1, 2, 3, 5};
    trc_writer *w = lt_writer_open(p, false);
    ck_assert_int_eq(trc_writer_check_links(w, true), 0);
    ck_assert_int_eq(trc_writer_check_links(NULL, true), TRC_EINVAL);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    ck_assert_int_eq(trc_step_begin(w, 0, 0, 1), 0);
    struct trc_tensor t = tf("out", 1, 4, 0, a);
    ck_assert_int_eq(rec(w, "a", &t, 1, NULL), 0);
    const char *to_a[1] = {"a/out"};
    struct trc_tensor good = tf("in0", 1, 4, 0, a);
    ck_assert_int_eq(rec(w, "good", &good, 1, to_a), 0);
    struct trc_tensor bad = tf("in0", 1, 4, 0, b);
    ck_assert_int_eq(rec(w, "bad", &bad, 1, to_a), 0); /* checked on the writer thread */
    ck_assert_int_eq(trc_step_end(w, -1), TRC_EINVAL);
    ck_assert_ptr_nonnull(strstr(trc_writer_errmsg(w), "'in0' is linked to 'a/out' but its data"));
    ck_assert_ptr_nonnull(strstr(trc_writer_errmsg(w), "op 'bad'"));
    ck_assert_int_eq(trc_writer_close(w), TRC_EINVAL);
}
END_TEST

/* ---- the engine's links -------------------------------------------------------------------- */

/* Every (step, op, role) the engine passed, with the lt64 of its data. */
struct seen {
    char key[1100][256];
    uint64_t hash[1100];
    int n;
    int64_t overlapped; /* ops the engine recorded inside the next kernel's pool job */
};

static void observe(void *user, int64_t step, const struct trc_op *op)
{
    struct seen *s = user;
    for (int k = 0; k < op->n_tensors && s->n < 1100; k++) {
        const struct trc_tensor *t = &op->tensors[k];
        int64_t n = 1;
        for (int d = 0; d < t->n_dims; d++) {
            n *= t->shape[d];
        }
        snprintf(s->key[s->n], sizeof s->key[0], "%lld %s %s", (long long)step, op->name, t->role);
        s->hash[s->n++] = trc__hash(t->data, (size_t)n * trc__dtype_size(t->dtype));
    }
}

/* Runs a 6-token prompt then 3 tokens into w (rule added, run begun) on 2 threads, with the
 * observer s when not NULL; returns the ops the engine recorded beside the next one. */
static int64_t decode_into(const char *model, int kv_type, trc_writer *w, const char *rule,
                           struct seen *s)
{
    char err[512];
    lm_model *m = NULL;
    lm_ctx *c = NULL;
    ck_assert_int_eq(trc_writer_add_rule(w, rule), 0);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    ck_assert_msg(lm_model_open(model, &m, err, sizeof err) == 0, "%s", err);
    struct lm_ctx_opts co = {0};
    lm_faults_init(&co.faults);
    co.n_threads = 2;
    co.kv_type = kv_type;
    co.trace = w;
    co.on_op = s ? observe : NULL;
    co.on_op_user = s;
    ck_assert_msg(lm_ctx_create(m, &co, &c, err, sizeof err) == 0, "%s", err);
    int32_t toks[6] = {1, 17, 42, 99, 7, 300};
    ck_assert_msg(lm_ctx_decode(c, toks, 6) == 0, "%s", lm_ctx_errmsg(c));
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(lm_ctx_decode(c, &toks[i + 1], 1) == 0, "%s", lm_ctx_errmsg(c));
    }
    int64_t overlapped = c->rec_overlapped;
    lm_ctx_destroy(c);
    lm_model_close(m);
    return overlapped;
}

/* Records a 6-token prompt then 3 tokens with links checked, and compares every op tensor of the
 * trace with what the engine passed. */
static int64_t engine_links(const char *model, int kv_type, const char *rule, const char *p)
{
    char err[512];
    struct seen *s = calloc(1, sizeof *s);
    trc_writer *w = lt_writer_open(p, false);
    ck_assert_int_eq(trc_writer_check_links(w, true), 0);
    s->overlapped = decode_into(model, kv_type, w, rule, s);
    struct trc_writer_stats st;
    ck_assert_int_eq(trc_writer_get_stats(w, &st), 0);
    ck_assert_int_eq(trc_writer_close(w), 0);
    ck_assert_int_gt(st.n_linked, st.n_tensors / 3);
    trc_reader *r = NULL;
    ck_assert_msg(trc_reader_open(p, &r, err, sizeof err) == 0, "%s", err);
    sqlite3_stmt *q = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(trc_reader_sql_handle(r),
                                        "SELECT o.step || ' ' || o.name || ' ' || ot.role, t.hash "
                                        "FROM ops o JOIN op_tensors ot ON ot.op_id = o.id JOIN "
                                        "tensors t ON t.id = ot.tensor_id",
                                        -1, &q, NULL),
                     SQLITE_OK);
    int n = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(q, 0);
        int i = 0;
        while (i < s->n && strcmp(s->key[i], key) != 0) {
            i++;
        }
        ck_assert_msg(i < s->n, "%s: not passed by the engine", key);
        char hex[17];
        trc__hash_hex(s->hash[i], hex);
        ck_assert_msg(strcmp(hex, (const char *)sqlite3_column_text(q, 1)) == 0,
                      "%s (%s): stored %s, engine passed %s", key, rule, sqlite3_column_text(q, 1),
                      hex);
        n++;
    }
    sqlite3_finalize(q);
    ck_assert_int_eq(n, s->n); /* every tensor the engine passed is in the trace */
    trc_reader_close(r);
    int64_t overlapped = s->overlapped;
    free(s);
    return overlapped;
}

START_TEST(test_trace_cost_engine_links)
{
    char model[1200];
    snprintf(model, sizeof model, "%s", lt_tmp_path("trace_cost", "tiny.gguf"));
    lt_make_tiny_model(model, 11);
    engine_links(model, LM_TYPE_F32, "full", lt_tmp_path("trace_cost", "e1.trace"));
    engine_links(model, LM_TYPE_F16, "full", lt_tmp_path("trace_cost", "e2.trace"));
    engine_links(model, LM_TYPE_F32, "stats", lt_tmp_path("trace_cost", "e3.trace"));
    engine_links(model, LM_TYPE_F32, "stats:blk.0.attn_norm",
                 lt_tmp_path("trace_cost", "e4.trace"));
    engine_links(model, LM_TYPE_F32, "stats:blk.1.*", lt_tmp_path("trace_cost", "e5.trace"));
}
END_TEST

/* Records the prompt and tokens of engine_links without an observer, under rule: ops at level
 * none then emit nothing, and a record posted beside one of them waits until the op after. */
static void record_plain(const char *model, const char *rule, const char *p)
{
    trc_writer *w = lt_writer_open(p, false);
    decode_into(model, LM_TYPE_F32, w, rule, NULL);
    ck_assert_int_eq(trc_writer_close(w), 0);
}

#define OP_HASHES                                                                                  \
    "SELECT o.step, o.name, ot.role, t.hash FROM %sops o JOIN %sop_tensors ot ON ot.op_id = "      \
    "o.id JOIN %stensors t ON t.id = ot.tensor_id"

/* Whether traces a and b hold the same (step, op, role, hash) rows, and how many. */
static int same_tensors(const char *a, const char *b)
{
    sqlite3 *db = NULL;
    char sql[2400], q1[400], q2[400];
    ck_assert_int_eq(sqlite3_open_v2(a, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    snprintf(sql, sizeof sql, "ATTACH '%s' AS b", b);
    ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    snprintf(q1, sizeof q1, OP_HASHES, "", "", "");
    snprintf(q2, sizeof q2, OP_HASHES, "b.", "b.", "b.");
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM (%s EXCEPT %s)) + (SELECT count(*) FROM (%s EXCEPT %s))",
             q1, q2, q2, q1);
    int differ = atoi(lt_sql1(db, sql));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM (%s)", q1);
    int n = atoi(lt_sql1(db, sql));
    sqlite3_close(db);
    return differ == 0 ? n : -1;
}

/* The engine records an op while the next op's kernel runs, when that kernel writes nothing the
 * record reads (lm_rec_begin_pool): what is stored is still exactly what the engine passed at
 * the op (engine_links compares every tensor), and LLTRACE_RECORD_SYNC turns the overlap off.
 * The "small" preset's matmuls are large enough to go to the pool even for one token. */
START_TEST(test_trace_cost_engine_overlap)
{
    char model[1200], err[512];
    snprintf(model, sizeof model, "%s", lt_tmp_path("trace_cost", "small.gguf"));
    struct lm_mkmodel_opts mo = {"small", LM_TYPE_Q8_0, 5};
    ck_assert_msg(lm_mkmodel_write(model, &mo, err, sizeof err) == 0, "%s", err);
    int64_t n = engine_links(model, LM_TYPE_F32, "full", lt_tmp_path("trace_cost", "o1.trace"));
    ck_assert_int_ge(n, 4 * 2 * 4); /* at least attn_k, attn_v, ffn_up, ffn_out per block+step */
    n = engine_links(model, LM_TYPE_F16, "stats", lt_tmp_path("trace_cost", "o2.trace"));
    ck_assert_int_ge(n, 4 * 2 * 4);
    ck_assert_int_eq(setenv("LLTRACE_RECORD_SYNC", "1", 1), 0);
    n = engine_links(model, LM_TYPE_F32, "full", lt_tmp_path("trace_cost", "o3.trace"));
    ck_assert_int_eq(n, 0);
    /* ops at level none between recorded ones: the same trace either way */
    const char *rule = "none:*attn_[qv]";
    record_plain(model, rule, lt_tmp_path("trace_cost", "o4.trace"));
    ck_assert_int_eq(unsetenv("LLTRACE_RECORD_SYNC"), 0);
    record_plain(model, rule, lt_tmp_path("trace_cost", "o5.trace"));
    char o4[1200];
    snprintf(o4, sizeof o4, "%s", lt_tmp_path("trace_cost", "o4.trace"));
    ck_assert_int_gt(same_tensors(o4, lt_tmp_path("trace_cost", "o5.trace")), 100);
}
END_TEST

/* The engine's on_logits hook: once per decode call, after its last chunk and before that step
 * is committed; a token recorded there is committed with the step. */
struct logits_seen {
    const char *path;
    int calls, fail;
    int committed[4]; /* steps already in the file (another connection) at each call */
    const float *logits[4];
    trc_writer *w;
};

static int count_steps(const char *path)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    int n = atoi(lt_sql1(db, "SELECT count(*) FROM steps"));
    sqlite3_close(db);
    return n;
}

static int on_logits(void *user, const float *logits)
{
    struct logits_seen *s = user;
    if (s->fail) {
        return -1;
    }
    ck_assert_int_lt(s->calls, 4);
    s->committed[s->calls] = count_steps(s->path);
    s->logits[s->calls] = logits;
    ck_assert_int_eq(
        trc_token_add(s->w, 100 + s->calls, 5 + s->calls, "x", false, false, 0.5f, logits[0]), 0);
    s->calls++;
    return 0;
}

START_TEST(test_trace_cost_token_in_step)
{
    char model[1200], err[512];
    snprintf(model, sizeof model, "%s", lt_tmp_path("trace_cost", "tiny.gguf"));
    lt_make_tiny_model(model, 11);
    const char *p = lt_tmp_path("trace_cost", "tok.trace");
    struct logits_seen s = {.path = p, .w = lt_writer_open(p, false)};
    ck_assert_int_eq(trc_writer_add_rule(s.w, "stats"), 0);
    ck_assert_int_eq(trc_run_begin(s.w, "test", NULL), 0);
    lm_model *m = NULL;
    lm_ctx *c = NULL;
    ck_assert_msg(lm_model_open(model, &m, err, sizeof err) == 0, "%s", err);
    struct lm_ctx_opts co = {.n_threads = 2, .n_ubatch = 4, .trace = s.w};
    lm_faults_init(&co.faults);
    co.on_logits = on_logits;
    co.on_logits_user = &s;
    ck_assert_msg(lm_ctx_create(m, &co, &c, err, sizeof err) == 0, "%s", err);
    int32_t toks[6] = {1, 17, 42, 99, 7, 300};
    ck_assert_msg(lm_ctx_decode(c, toks, 6) == 0, "%s", lm_ctx_errmsg(c)); /* steps 0 and 1 */
    ck_assert_int_eq(s.calls, 1);        /* once per decode call, not per chunk */
    ck_assert_int_eq(s.committed[0], 1); /* step 0 was in, step 1 not yet */
    ck_assert_ptr_eq(s.logits[0], lm_ctx_logits(c));
    ck_assert_msg(lm_ctx_decode(c, &toks[1], 1) == 0, "%s", lm_ctx_errmsg(c)); /* step 2 */
    ck_assert_int_eq(s.calls, 2);
    ck_assert_int_eq(s.committed[1], 2);
    ck_assert_int_eq(count_steps(p), 3);
    s.fail = 1; /* a failing hook fails the decode, and its step is not kept */
    ck_assert_int_eq(lm_ctx_decode(c, &toks[2], 1), LM_EIO);
    ck_assert_str_eq(lm_ctx_errmsg(c), "the logits callback failed");
    lm_ctx_destroy(c);
    lm_model_close(m);
    ck_assert_int_eq(trc_writer_close(s.w), 0);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) FROM steps"), "3");
    ck_assert_str_eq(lt_sql1(db, "SELECT group_concat(token_id) FROM (SELECT token_id FROM "
                                 "tokens ORDER BY idx)"),
                     "5,6");
    sqlite3_close(db);
}
END_TEST

/* ---- stats, codec, indexes ----------------------------------------------------------------- */

START_TEST(test_trace_cost_stats_lanes)
{
    static const size_t sizes[] = {0, 1, 7, 8, 9, 17, 1000, 1003};
    float *x = malloc(1003 * sizeof *x);
    uint32_t s = 5;
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        size_t n = sizes[z];
        double sum = 0, sq = 0, lo = HUGE_VAL, hi = -HUGE_VAL;
        int64_t nan = 0, inf = 0;
        for (size_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            x[i] = (float)((int32_t)(s >> 8) - (1 << 23)) / 4096.0f;
            if (i % 97 == 13) {
                x[i] = i % 2 ? NAN : -INFINITY;
            }
            if (isnan(x[i]) || isinf(x[i])) {
                nan += isnan(x[i]) ? 1 : 0;
                inf += isinf(x[i]) ? 1 : 0;
                continue;
            }
            double v = (double)x[i];
            sum += v;
            sq += v * v;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        struct trc__stats st;
        trc__stats(x, TRC_DTYPE_F32, n, &st);
        double k = (double)(n - (size_t)nan - (size_t)inf);
        ck_assert_int_eq(st.n_nan, nan);
        ck_assert_int_eq(st.n_inf, inf);
        if (k == 0) {
            ck_assert(isnan(st.mean) && isnan(st.min));
            continue;
        }
        ck_assert(st.min == lo && st.max == hi);
        ck_assert_double_eq_tol(st.mean, sum / k, 1e-9 * (fabs(sum / k) + 1));
        ck_assert_double_eq_tol(st.rms, sqrt(sq / k), 1e-12 * sqrt(sq / k));
    }
    free(x);
}
END_TEST

/* trc__hash_stats, on each loop the CPU can run and through the dispatch, equals trc__hash +
 * trc__stats exactly (the doubles compared by memcmp). The scalar loop hashes with its own
 * lanes, trc__hash with trc__lanes at the CPU's level: so the hash versions meet here too. */
static void hash_stats_same(const void *p, enum trc_dtype dt, size_t n, const char *what)
{
    uint64_t h0 = trc__hash(p, n * trc__dtype_size(dt));
    struct trc__stats s0;
    trc__stats(p, dt, n, &s0);
    for (int k = 0; k <= TRC__SIMD_AVX512 + 1; k++) { /* each level, then the dispatch */
        uint64_t h1 = ~h0;
        struct trc__stats s1;
        memset(&s1, 0xa5, sizeof s1);
        if (k > TRC__SIMD_AVX512) {
            trc__hash_stats(p, dt, n, &h1, &s1);
        } else if (k <= trc__simd_best()) {
            trc__hash_stats_simd(p, dt, n, &h1, &s1, k);
        } else {
            continue;
        }
        ck_assert_msg(h1 == h0 && memcmp(&s0, &s1, sizeof s0) == 0,
                      "%s: n %zu, loop %d: hash %016llx/%016llx min %g/%g rms %a/%a", what, n, k,
                      (unsigned long long)h1, (unsigned long long)h0, s1.min, s0.min, s1.rms,
                      s0.rms);
    }
}

/* Random f32 of a wide range of magnitudes; with odd > 0, about one element in odd is NaN,
 * +-Inf, -0, +0, a denormal or +-FLT_MAX. */
static void mixed_f32(float *x, size_t n, uint32_t *seed, uint32_t odd)
{
    static const float special[] = {NAN,    INFINITY,  -INFINITY,     -0.0f,         0.0f,
                                    1e-40f, -1.4e-45f, 3.4028235e38f, -3.4028235e38f};
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        uint32_t r = *seed >> 8;
        x[i] = (float)((int32_t)r - (1 << 23)) * ldexpf(1.0f, (int)(r % 41) - 30);
        if (odd > 0 && (r >> 4) % odd == 0) {
            x[i] = special[r % (sizeof special / sizeof special[0])];
        }
    }
}

START_TEST(test_trace_cost_hash_stats_f32)
{
    enum { CAP = 70000 };
    float *buf = malloc((CAP + 8) * sizeof *buf);
    uint32_t seed = 11;
    static const uint32_t odds[] = {0, 3, 13, 1};
    for (size_t n = 0; n <= 300; n++) {
        float *x = buf + n % 8; /* every start within a 32-byte block */
        mixed_f32(x, n, &seed, odds[n % 4]);
        hash_stats_same(x, TRC_DTYPE_F32, n, "f32");
    }
    static const size_t big[] = {1000, 4099, 5632, 32768, CAP};
    for (size_t z = 0; z < sizeof big / sizeof big[0]; z++) {
        for (size_t o = 0; o < 4; o++) {
            float *x = buf + 2 * o + 1; /* odd starts: not 32-byte aligned */
            mixed_f32(x, big[z], &seed, odds[o]);
            hash_stats_same(x, TRC_DTYPE_F32, big[z], "f32 big");
        }
    }
    /* a lone special value in each lane and in the tail; all elements alike */
    static const float one[] = {NAN, -INFINITY, -0.0f, 1e-45f};
    for (size_t v = 0; v < sizeof one / sizeof one[0]; v++) {
        for (size_t at = 0; at < 21; at++) {
            for (size_t i = 0; i < 21; i++) {
                buf[i] = i == at ? one[v] : (v == 2 ? 0.0f : (float)i - 10.0f);
            }
            hash_stats_same(buf, TRC_DTYPE_F32, 21, "f32 one special");
            for (size_t i = 0; i < 21; i++) {
                buf[i] = one[v];
            }
            hash_stats_same(buf, TRC_DTYPE_F32, 1 + at, "f32 all special");
        }
    }
    /* zeros of random signs: min and max keep the zero that minps/maxps keep */
    for (size_t n = 1; n <= 64; n++) {
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1664525u + 1013904223u;
            buf[i] = (seed >> 20) % 7 == 0 ? NAN : (seed >> 28) % 2 ? -0.0f : 0.0f;
        }
        hash_stats_same(buf, TRC_DTYPE_F32, n, "f32 signed zeros");
    }
    free(buf);
}
END_TEST

START_TEST(test_trace_cost_hash_stats_other)
{
    static const enum trc_dtype dts[] = {TRC_DTYPE_F16, TRC_DTYPE_BF16, TRC_DTYPE_I32};
    static const size_t lens[] = {0, 1, 7, 8, 9, 31, 33, 255, 1023, 1024, 1025, 3001};
    uint8_t *buf = malloc(3001 * 4 + 8);
    uint32_t seed = 29;
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        for (size_t z = 0; z < sizeof lens / sizeof lens[0]; z++) {
            uint8_t *p = buf + z % 4 * 2; /* unaligned starts, element-aligned */
            for (size_t i = 0; i < lens[z] * 4; i++) {
                seed = seed * 1664525u + 1013904223u;
                p[i] = (uint8_t)(seed >> 24); /* every bit pattern: NaN, Inf, denormals */
            }
            hash_stats_same(p, dts[d], lens[z], trc__dtype_name(dts[d]));
        }
    }
    free(buf);
}
END_TEST

/* Activation-like rows: a smooth per-channel scale times normal noise. */
static void activations(float *x, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        double u1 = ((seed >> 8) + 1) / 16777217.0;
        seed = seed * 1664525u + 1013904223u;
        double u2 = (seed >> 8) / 16777216.0;
        double g = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        x[i] = (float)(g * (0.5 + 0.4 * sin((double)(i % 2048) * 0.01)));
    }
}

/* The hash lanes: the AVX-512 version equals the portable one on any number of blocks from any
 * start, and trc__lanes equals both. */
START_TEST(test_trace_cost_lanes)
{
    enum { MAXB = 5000 };
    uint8_t *x = malloc(32 * MAXB + 7);
    uint32_t seed = 5;
    for (size_t i = 0; i < 32 * MAXB + 7; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (uint8_t)(seed >> 24);
    }
    const bool avx512 = trc__simd_best() == TRC__SIMD_AVX512;
    if (!avx512) {
        fprintf(stderr, "test_trace_cost_lanes: this CPU has no AVX-512 (F, VL, DQ): only the "
                        "portable lanes are checked\n");
    }
    for (size_t nb = 0; nb <= 100 + 1; nb++) {
        size_t n = nb <= 100 ? nb : MAXB;
        const uint8_t *p = x + nb % 8;
        uint64_t a[4], b[4], c[4];
        trc__hash_init(a);
        a[2] ^= nb; /* any start state */
        memcpy(b, a, sizeof a);
        memcpy(c, a, sizeof a);
        trc__lanes_c(a, p, n);
        trc__lanes(c, p, n);
        ck_assert_msg(memcmp(a, c, sizeof a) == 0, "trc__lanes, %zu blocks", n);
        if (avx512) {
            trc__lanes_avx512(b, p, n);
            ck_assert_msg(memcmp(a, b, sizeof a) == 0, "trc__lanes_avx512, %zu blocks", n);
        }
    }
    free(x);
}
END_TEST

START_TEST(test_trace_cost_xxh64)
{
    ck_assert_uint_eq(trc__xxh64("", 0, 0), 0xEF46DB3751D8E999ULL);
    ck_assert_uint_eq(trc__xxh64("a", 1, 0), 0xD24EC4F1A98C6E5BULL);
    /* zstd's Content_Checksum is the low 32 bits of XXH64(content, 0): compare with libzstd on
     * every length 0..1000 (all tail paths) and a few large ones */
    static const size_t big[] = {4096, 65537, 1000003};
    uint8_t *x = malloc(1000003 + 7);
    uint8_t *z = malloc(ZSTD_compressBound(1000003));
    uint32_t seed = 11;
    for (size_t i = 0; i < 1000003 + 7; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (uint8_t)(seed >> 24);
    }
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    for (size_t k = 0; k < 1001 + 3; k++) {
        size_t n = k < 1001 ? k : big[k - 1001];
        const uint8_t *src = x + (k % 7); /* unaligned starts too */
        size_t r = ZSTD_compress2(c, z, ZSTD_compressBound(1000003), src, n);
        ck_assert(!ZSTD_isError(r) && r >= 4);
        uint32_t want = (uint32_t)z[r - 4] | (uint32_t)z[r - 3] << 8 | (uint32_t)z[r - 2] << 16 |
                        (uint32_t)z[r - 1] << 24;
        ck_assert_msg((uint32_t)trc__xxh64(src, n, 0) == want, "length %zu", n);
    }
    ZSTD_freeCCtx(c);
    free(x);
    free(z);
}
END_TEST

/* The frames of a blob: their count, content sizes in fcs[], and whether each one's first
 * block is Raw (Block_Type 0). */
static int frames_of(const uint8_t *p, size_t len, unsigned long long fcs[8], int raw[8])
{
    int k = 0;
    while (len > 0 && k < 8) {
        size_t fsz = ZSTD_findFrameCompressedSize(p, len);
        size_t hsz = ZSTD_frameHeaderSize(p, len);
        ck_assert(!ZSTD_isError(fsz) && !ZSTD_isError(hsz));
        fcs[k] = ZSTD_getFrameContentSize(p, len);
        raw[k] = ((p[hsz] >> 1) & 3) == 0;
        k++;
        p += fsz;
        len -= fsz;
    }
    ck_assert_uint_eq(len, 0);
    return k;
}

/* What `zstd -d` makes of a blob equals want (skipped, with a note, without the zstd tool). */
static void zstd_cli_decodes(const uint8_t *blob, size_t len, const uint8_t *want, size_t n)
{
    if (lt_run("command -v zstd", NULL, NULL) != 0) {
        fprintf(stderr, "trace_cost: no zstd command, `zstd -d` of blobs not checked\n");
        return;
    }
    char cmd[3000];
    ck_assert_int_eq(lt_write_file(lt_tmp_path("trace_cost", "blob.zst"), blob, len), 0);
    snprintf(cmd, sizeof cmd, "zstd -d -q -f -o '%s' '%s'", lt_tmp_path("trace_cost", "blob.out"),
             lt_tmp_path("trace_cost", "blob.zst"));
    ck_assert_int_eq(lt_run(cmd, NULL, NULL), 0);
    size_t got_len = 0;
    char *got = lt_read_file(lt_tmp_path("trace_cost", "blob.out"), &got_len);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(got_len, n);
    ck_assert_mem_eq(got, want, n);
    free(got);
}

START_TEST(test_trace_cost_codec_roundtrip)
{
    static const size_t sizes[] = {0, 3, 1023, 1024, 2048, 5632, 40000};
    float *x = malloc(40000 * sizeof *x);
    float *back = malloc(40000 * sizeof *back);
    uint8_t *shuf = malloc(40000 * sizeof *x);
    struct trc__codec_scratch cs = {0};
    char msg[256];
    activations(x, 40000, 3);
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        for (size_t width = 2; width <= 4; width += 2) {
            size_t n = sizes[z] * 4 / width;
            const uint8_t *blob;
            size_t len;
            ck_assert_int_eq(trc__codec_encode(&cs, 0, x, n, width, &blob, &len, msg, sizeof msg),
                             0);
            unsigned long long fcs[8];
            int raw[8];
            int n_frames = frames_of(blob, len, fcs, raw);
            size_t planes = n >= 1024 ? width : 1; /* one frame per plane, or one */
            ck_assert_int_eq(n_frames, (int)planes);
            for (int f = 0; f < n_frames; f++) {
                ck_assert_uint_eq(fcs[f], n * width / planes);
            }
            /* libzstd decodes the blob to the shuffled bytes, checksums included */
            trc__shuffle(shuf, (const uint8_t *)x, n, width);
            ck_assert_uint_eq(ZSTD_findDecompressedSize(blob, len), n * width);
            ck_assert_uint_eq(ZSTD_decompress(back, 40000 * sizeof *back, blob, len), n * width);
            ck_assert_mem_eq(back, shuf, n * width);
            ck_assert_int_eq(trc__codec_decode(blob, len, back, n * width, width, msg, sizeof msg),
                             0);
            ck_assert_mem_eq(back, x, n * width);
        }
    }
    trc__codec_scratch_release(&cs);
    free(x);
    free(back);
    free(shuf);
}
END_TEST

START_TEST(test_trace_cost_codec_planes)
{
    enum { N = 300000, RAW_BLOCK = 128 * 1024 }; /* planes of 3 Raw blocks */
    float *x = malloc(N * sizeof *x);
    uint8_t *shuf = malloc(N * sizeof *x);
    struct trc__codec_scratch cs = {0};
    char msg[256];
    const uint8_t *blob;
    size_t len;
    activations(x, N, 3);
    ck_assert_int_eq(trc__codec_encode(&cs, 0, x, N, 4, &blob, &len, msg, sizeof msg), 0);
    unsigned long long fcs[8];
    int raw[8];
    ck_assert_int_eq(frames_of(blob, len, fcs, raw), 4);
    /* the three mantissa planes of normal noise are random: Raw frames, 4 + 1 + 1 + 4 bytes of
     * header, one 3-byte block header per 128 KiB and the checksum around the plane; the sign
     * and exponent plane is compressed */
    size_t f0 = ZSTD_findFrameCompressedSize(blob, len);
    ck_assert(raw[0] && raw[1] && raw[2] && !raw[3]);
    ck_assert_uint_eq(f0, 10 + 3 * ((N + RAW_BLOCK - 1) / RAW_BLOCK) + N + 4);
    size_t f3 = len - 3 * f0;
    ck_assert_msg(f3 < N / 2, "exponent plane %zu of %d bytes", f3, N);
    trc__shuffle(shuf, (const uint8_t *)x, N, 4);
    zstd_cli_decodes(blob, len, shuf, 4 * (size_t)N);
    /* an explicit level compresses every plane with zstd */
    ck_assert_int_eq(trc__codec_encode(&cs, 3, x, N, 4, &blob, &len, msg, sizeof msg), 0);
    ck_assert_int_eq(frames_of(blob, len, fcs, raw), 4);
    size_t total[2] = {0, 0}; /* default vs zstd level 3, tensor by tensor */
    for (int lv = 0; lv < 2; lv++) {
        for (size_t off = 0; off + 2048 <= 40000; off += 2048) {
            ck_assert_int_eq(
                trc__codec_encode(&cs, lv ? 3 : 0, x + off, 2048, 4, &blob, &len, msg, sizeof msg),
                0);
            total[lv] += len;
        }
    }
    ck_assert_msg((double)total[0] <= 1.02 * (double)total[1], "default %zu vs level 3 %zu",
                  total[0], total[1]);
    trc__codec_scratch_release(&cs);
    free(x);
    free(shuf);
}
END_TEST

/* Decoding blob (len bytes) as n f32 fails with TRC_ECORRUPT and a message holding what. */
static void decode_fails(const uint8_t *blob, size_t len, size_t n, const char *what)
{
    char msg[256] = "";
    float *dst = malloc(n * sizeof *dst + 4);
    ck_assert_int_eq(trc__codec_decode(blob, len, dst, n * 4, 4, msg, sizeof msg), TRC_ECORRUPT);
    ck_assert_msg(strstr(msg, what) != NULL, "'%s' lacks '%s'", msg, what);
    free(dst);
}

START_TEST(test_trace_cost_codec_corrupt)
{
    enum { N = 5000 };
    float *x = malloc(N * sizeof *x);
    struct trc__codec_scratch cs = {0};
    char msg[256];
    const uint8_t *b0;
    size_t len;
    activations(x, N, 9);
    ck_assert_int_eq(trc__codec_encode(&cs, 0, x, N, 4, &b0, &len, msg, sizeof msg), 0);
    uint8_t *blob = malloc(len);
    memcpy(blob, b0, len);
    size_t f0 = ZSTD_findFrameCompressedSize(blob, len);
    ck_assert_uint_eq(f0, 10 + 3 + N + 4); /* plane 0 is a Raw frame */
    blob[10 + 3 + 1234] ^= 0x10;           /* one byte of its content: only the checksum can tell */
    decode_fails(blob, len, N, "checksum");
    blob[10 + 3 + 1234] ^= 0x10;
    static const size_t cuts[] = {0, 3, 9, 14, 10 + 3 + N, 10 + 3 + N + 3};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        decode_fails(blob, cuts[k], N, "bad zstd frame");
    }
    decode_fails(blob, f0, N, "declared size"); /* a whole frame: one plane only */
    decode_fails(blob, len - 1, N, "bad zstd frame");
    decode_fails(blob, len, N - 1, "declared size");
    decode_fails(blob, len, N + 1, "declared size");
    blob[6] ^= 1; /* the Raw frame's Frame_Content_Size: 5000 -> 5001 */
    decode_fails(blob, len, N, "declared size");
    blob[6] ^= 1;
    float *back = malloc(N * sizeof *back);
    ck_assert_int_eq(trc__codec_decode(blob, len, back, N * 4, 4, msg, sizeof msg), 0);
    ck_assert_mem_eq(back, x, N * 4);
    /* a frame without checksum is refused although zstd would decode it */
    uint8_t *z = malloc(ZSTD_compressBound(N * 4));
    size_t zl = ZSTD_compress(z, ZSTD_compressBound(N * 4), x, N * 4, 1);
    decode_fails(z, zl, N, "no checksum");
    trc__codec_scratch_release(&cs);
    free(blob);
    free(back);
    free(z);
    free(x);
}
END_TEST

/* A version 1 blob: ONE frame, each byte plane ending a block, as the first encoder wrote. */
START_TEST(test_trace_cost_codec_v1_blob)
{
    enum { N = 3000 };
    float *x = malloc(N * sizeof *x);
    float *back = malloc(N * sizeof *back);
    uint8_t *shuf = malloc(N * 4);
    size_t cap = ZSTD_compressBound(N * 4) + 1024;
    uint8_t *z = malloc(cap);
    char msg[256];
    activations(x, N, 21);
    trc__shuffle(shuf, (const uint8_t *)x, N, 4);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 1);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setPledgedSrcSize(c, N * 4);
    ZSTD_outBuffer ob = {z, cap, 0};
    for (int b = 0; b < 4; b++) {
        ZSTD_inBuffer ib = {shuf + b * N, N, 0};
        size_t r;
        do {
            r = ZSTD_compressStream2(c, &ob, &ib, b < 3 ? ZSTD_e_flush : ZSTD_e_end);
            ck_assert(!ZSTD_isError(r));
        } while (r != 0);
    }
    ZSTD_freeCCtx(c);
    ck_assert_uint_eq(ZSTD_findFrameCompressedSize(z, ob.pos), ob.pos); /* one frame */
    ck_assert_int_eq(trc__codec_decode(z, ob.pos, back, N * 4, 4, msg, sizeof msg), 0);
    ck_assert_mem_eq(back, x, N * 4);
    free(x);
    free(back);
    free(shuf);
    free(z);
}
END_TEST

static int n_indexes(const char *path)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    int n = atoi(lt_sql1(
        db, "SELECT count(*) FROM sqlite_master WHERE name IN ('ops_by_name', 'ops_by_step')"));
    sqlite3_close(db);
    return n;
}

/* Steps 0, 1, 2 of run 1 hold ops x y, z and w: listed per step with their counts. */
static void check_steps_by_id(const char *p)
{
    static const char *const want[3] = {"x y ", "z ", "w "};
    trc_reader *r = NULL;
    char err[TRC_ERRBUF_SIZE];
    ck_assert_msg(trc_reader_open(p, &r, err, sizeof err) == 0, "%s", err);
    trc_cursor *c = NULL;
    struct trc_step_info si;
    ck_assert_int_eq(trc_reader_steps(r, 1, &c), 0);
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(trc_cursor_next_step(c, &si), 1);
        ck_assert_int_eq(si.n_ops, k == 0 ? 2 : 1);
    }
    ck_assert_int_eq(trc_cursor_next_step(c, &si), 0);
    trc_cursor_close(c);
    for (int k = 3; k >= -1; k--) { /* step 3 is not in the trace; -1: every step */
        char got[32] = "";
        struct trc_op_info oi;
        ck_assert_int_eq(trc_reader_ops(r, 1, k, &c), 0);
        while (trc_cursor_next_op(c, &oi) == 1) {
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s ", oi.name);
        }
        trc_cursor_close(c);
        ck_assert_str_eq(got, k == 3 ? "" : k < 0 ? "x y z w " : want[k]);
    }
    trc_reader_close(r);
}

START_TEST(test_trace_cost_indexes_at_close)
{
    const char *p = lt_tmp_path("trace_cost", "indexes.trace");
    float a[3] = {1, 2, 3};
    trc_writer *w = lt_writer_open(p, false);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    ck_assert_int_eq(trc_step_begin(w, 0, 0, 1), 0);
    struct trc_tensor t = tf("out", 1, 3, 0, a);
    ck_assert_int_eq(rec(w, "x", &t, 1, NULL), 0);
    ck_assert_int_eq(rec(w, "y", &t, 1, NULL), 0); /* deduplicated by the writer's map */
    ck_assert_int_eq(trc_step_end(w, -1), 0);
    for (int k = 1; k <= 2; k++) {
        ck_assert_int_eq(trc_step_begin(w, k, k, 1), 0);
        ck_assert_int_eq(rec(w, k == 1 ? "z" : "w", &t, 1, NULL), 0);
        ck_assert_int_eq(trc_step_end(w, -1), 0);
    }
    ck_assert_int_eq(n_indexes(p), 0); /* a killed writer leaves them out */
    check_steps_by_id(p);              /* what the reader does without ops_by_step */
    ck_assert_int_eq(trc_writer_close(w), 0);
    ck_assert_int_eq(n_indexes(p), 2);
    check_steps_by_id(p);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) FROM tensors"), "1");
    ck_assert_str_eq(lt_sql1(db, "PRAGMA integrity_check"), "ok");
    sqlite3_close(db);
}
END_TEST

static void nap_ms(int ms);

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* The fraction of the file's pages in the kernel's page cache (mincore on a mapping of it). */
static double cached_fraction(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    size_t len = (size_t)file_size(path);
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), n = (len + pg - 1) / pg, in = 0;
    unsigned char *v = malloc(n);
    ck_assert_int_eq(mincore(m, len, v), 0);
    for (size_t i = 0; i < n; i++) {
        in += v[i] & 1;
    }
    free(v);
    munmap(m, len);
    close(fd);
    return (double)in / (double)n;
}

/* Whether the file system of path drops a synced file's pages on POSIX_FADV_DONTNEED (tmpfs,
 * whose pages are the file, does not): a probe file beside it. */
static bool fs_drops_cache(const char *path)
{
    char probe[1300];
    snprintf(probe, sizeof probe, "%s.probe", path);
    int fd = open(probe, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    static char buf[1 << 20];
    memset(buf, 7, sizeof buf);
    ck_assert_int_eq(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    ck_assert_int_eq(fsync(fd), 0);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    bool drops = cached_fraction(probe) < 0.5;
    unlink(probe);
    return drops;
}

/* The checkpoint thread copies committed steps into the database file while the writer goes on
 * (8 MiB of WAL triggers a pass): 24 steps of 1 MiB of random floats each reach the main file
 * before close, the WAL never holds them all, and the closed trace is whole and WAL-free. Each
 * pass drops the pages it wrote from the kernel's page cache (trc__drop_cached): after the
 * flush, little of the file is cached, where all of it would be just after being written. */
START_TEST(test_trace_cost_checkpoint_thread)
{
    const char *p = lt_tmp_path("trace_cost", "ckpt.trace");
    enum { N = 1 << 18, STEPS = 24 };
    float *x = malloc(N * sizeof *x);
    uint32_t r = 12345;
    char wal[1300];
    snprintf(wal, sizeof wal, "%s-wal", p);
    trc_writer *w = lt_writer_open(p, false);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    long long max_wal = 0;
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < N; i++) {
            r = r * 1664525u + 1013904223u;
            x[i] = (float)(r >> 8) * 1e-7f; /* random mantissas: stored raw, 1 MiB per step */
        }
        ck_assert_int_eq(trc_step_begin(w, s, s, 1), 0);
        struct trc_tensor t = tf("out", 1, N, 0, x);
        ck_assert_int_eq(rec(w, "x", &t, 1, NULL), 0);
        ck_assert_int_eq(trc_step_end(w, -1), 0);
        long long ws = file_size(wal);
        max_wal = ws > max_wal ? ws : max_wal;
        nap_ms(5); /* give the checkpointer its turn */
    }
    long long main_before_close = file_size(p);
    ck_assert_msg(main_before_close > 8LL << 20,
                  "the main file holds %lld bytes before close: no checkpoint ran",
                  main_before_close);
    ck_assert_int_eq(trc_writer_flush(w), 0); /* every step is now in the main file */
    long long after_flush = file_size(p);
    double cached = cached_fraction(p);
    if (fs_drops_cache(p)) {
        ck_assert_msg(cached < 0.25, "%.0f%% of the trace's %lld bytes are in the page cache",
                      100 * cached, after_flush);
    } else {
        fprintf(stderr, "trace_cost: not checking that checkpoints drop the trace's cached "
                        "pages: this file system keeps pages on POSIX_FADV_DONTNEED (tmpfs?)\n");
    }
    ck_assert_msg(max_wal > 0 && max_wal < (long long)STEPS << 20, "WAL grew to %lld", max_wal);
    ck_assert_int_eq(trc_writer_close(w), 0);
    ck_assert_int_eq(file_size(wal), -1);
    ck_assert_msg(after_flush >= file_size(p) / 10 * 9, "after flush %lld, closed %lld",
                  after_flush, file_size(p));
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) FROM steps"), "24");
    ck_assert_str_eq(lt_sql1(db, "PRAGMA integrity_check"), "ok");
    ck_assert_str_eq(lt_sql1(db, "PRAGMA page_size"), "65536");
    sqlite3_close(db);
    free(x);
}
END_TEST

/* A trace of small pages (no tensor data: lltrace run uses 8 KiB) is checkpointed every MiB of
 * WAL, not every 8: 100 steps of 40 stats-only ops (about 4 MiB of WAL, each commit rewriting
 * whole pages) are mostly in the main file before close; with 8 MiB, no pass would have run. */
START_TEST(test_trace_cost_checkpoint_small_pages)
{
    const char *p = lt_tmp_path("trace_cost", "ckpt_small.trace");
    trc_writer *w = NULL;
    char err[TRC_ERRBUF_SIZE];
    struct trc_writer_opts o = {.overwrite = true, .page_size = 8192};
    ck_assert_msg(trc_writer_open(p, &o, &w, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(trc_writer_add_rule(w, "stats"), 0);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    float x[64];
    for (int s = 0; s < 100; s++) {
        ck_assert_int_eq(trc_step_begin(w, s, s, 1), 0);
        for (int k = 0; k < 40; k++) {
            for (int i = 0; i < 64; i++) {
                x[i] = (float)(s * 40 + k) + 0.001f * (float)i; /* every tensor new */
            }
            struct trc_tensor t = tf("out", 1, 64, 0, x);
            ck_assert_int_eq(rec(w, "op", &t, 1, NULL), 0);
        }
        ck_assert_int_eq(trc_step_end(w, -1), 0);
    }
    ck_assert_int_eq(trc_writer_wait_idle(w), 0);
    char wal[1300];
    snprintf(wal, sizeof wal, "%s-wal", p);
    long long main_size = file_size(p), wal_size = file_size(wal);
    ck_assert_msg(wal_size > 1LL << 20 && wal_size < 8LL << 20, "WAL %lld bytes", wal_size);
    ck_assert_int_eq(trc_writer_close(w), 0);
    ck_assert_msg(main_size >= file_size(p) / 10 * 7,
                  "main file %lld bytes before close, %lld after: not checkpointed", main_size,
                  file_size(p));
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) FROM ops"), "4000");
    ck_assert_str_eq(lt_sql1(db, "PRAGMA page_size"), "8192");
    sqlite3_close(db);
}
END_TEST

/* trc_writer_wait_idle returns once the checkpoint pass that the last commit made due has
 * run: the pass copies the 8 MiB of WAL that made it due, nearly 8 MiB of pages (without a nap
 * for the checkpointer, the main file is small until then); it starts none when nothing is
 * due. */
START_TEST(test_trace_cost_wait_idle)
{
    const char *p = lt_tmp_path("trace_cost", "idle.trace");
    enum { N = 1 << 18, STEPS = 10 };
    float *x = malloc(N * sizeof *x);
    uint32_t r = 777;
    trc_writer *w = lt_writer_open(p, false);
    ck_assert_int_eq(trc_writer_wait_idle(w), 0);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < N; i++) {
            r = r * 1664525u + 1013904223u;
            x[i] = (float)(r >> 8) * 1e-7f; /* random mantissas: 1 MiB of WAL per step */
        }
        ck_assert_int_eq(trc_step_begin(w, s, s, 1), 0);
        struct trc_tensor t = tf("out", 1, N, 0, x);
        ck_assert_int_eq(rec(w, "x", &t, 1, NULL), 0);
        ck_assert_int_eq(trc_step_end(w, -1), 0);
    }
    ck_assert_int_eq(trc_writer_wait_idle(w), 0);
    long long main_size = file_size(p);
    ck_assert_msg(main_size > 6LL << 20, "the main file holds %lld bytes: the pass did not run",
                  main_size);
    ck_assert_int_eq(trc_writer_wait_idle(w), 0); /* nothing due: returns at once */
    ck_assert_int_eq(trc_writer_close(w), 0);
    free(x);
}
END_TEST

/* trc_writer_flush returns when the WAL is small (no pass pending), right after a step, and
 * twice in a row; what it flushed is in the main file. */
START_TEST(test_trace_cost_flush)
{
    const char *p = lt_tmp_path("trace_cost", "flush.trace");
    float a[4096];
    for (int i = 0; i < 4096; i++) {
        a[i] = (float)i;
    }
    trc_writer *w = lt_writer_open(p, false);
    ck_assert_int_eq(trc_writer_flush(w), 0);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    for (int s = 0; s < 3; s++) {
        ck_assert_int_eq(trc_step_begin(w, s, s, 1), 0);
        struct trc_tensor t = tf("out", 1, 4096 - s, 0, a);
        ck_assert_int_eq(rec(w, "x", &t, 1, NULL), 0);
        ck_assert_int_eq(trc_step_end(w, -1), 0);
        ck_assert_int_eq(trc_writer_flush(w), 0);
        ck_assert_int_eq(trc_writer_flush(w), 0);
    }
    sqlite3 *db = NULL; /* a second connection sees the three steps */
    ck_assert_int_eq(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) FROM steps"), "3");
    sqlite3_close(db);
    ck_assert_int_eq(trc_writer_close(w), 0);
}
END_TEST

/* ---- the pool's waits ---------------------------------------------------------------------- */

enum { PJOB_CHUNKS = 6 };

struct pjob {
    _Atomic int runs[PJOB_CHUNKS]; /* times each chunk ran in this job */
    _Atomic int by_helper;         /* chunks the helper ran, over all jobs */
    int slow;                      /* 0: none, 1: chunk 0 naps 3 ms, 2: chunk 5 does */
};

static void nap_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void pjob_fn(void *arg, int64_t chunk, int ith)
{
    struct pjob *j = arg;
    ck_assert(chunk >= 0 && chunk < PJOB_CHUNKS);
    ck_assert(ith == 0 || ith == 1);
    if ((j->slow == 1 && chunk == 0) || (j->slow == 2 && chunk == PJOB_CHUNKS - 1)) {
        nap_ms(3);
    }
    j->runs[chunk]++;
    j->by_helper += ith == 1;
}

/* Every chunk of every job runs exactly once whoever is slow, asleep or late; the helper takes
 * part when it is awake. */
START_TEST(test_trace_cost_pool_waits)
{
    lm_pool *p = lm_pool_create(2);
    ck_assert_ptr_nonnull(p);
    struct pjob j = {.slow = 0};
    for (int i = 0; i < 60; i++) {
        j.slow = i % 3;
        for (int k = 0; k < PJOB_CHUNKS; k++) {
            j.runs[k] = 0;
        }
        lm_pool_run(p, pjob_fn, &j, PJOB_CHUNKS);
        for (int k = 0; k < PJOB_CHUNKS; k++) {
            ck_assert_msg(j.runs[k] == 1, "job %d: chunk %d ran %d times", i, k, (int)j.runs[k]);
        }
        if (i % 5 == 4) {
            nap_ms(5); /* the helper goes through spin and yield to sleep */
        }
    }
    ck_assert_int_gt(j.by_helper, 0);
    lm_pool_destroy(p);
}
END_TEST

static void run_pjob(lm_pool *p, struct pjob *j, int64_t n)
{
    for (int k = 0; k < PJOB_CHUNKS; k++) {
        j->runs[k] = 0;
    }
    lm_pool_run(p, pjob_fn, j, n);
    for (int k = 0; k < n; k++) {
        ck_assert_int_eq(j->runs[k], 1);
    }
}

/* lm_pool_post: the posted function runs exactly once, on a helper that is waiting for a job
 * (awake) or on the caller, and lm_pool_post_wait returns only after it ran; a helper asleep
 * never takes it, nor does a pool without helpers. */
struct post_arg {
    _Atomic int calls;
    _Atomic int on_helper;
    pthread_t caller;
};

static void post_fn(void *arg)
{
    struct post_arg *a = arg;
    a->on_helper += !pthread_equal(pthread_self(), a->caller);
    nap_ms(1); /* lm_pool_post_wait must wait for it */
    a->calls++;
}

START_TEST(test_trace_cost_pool_post)
{
    lm_pool *p = lm_pool_create(2);
    ck_assert_ptr_nonnull(p);
    struct pjob j = {.slow = 0};
    struct post_arg a = {0, 0, pthread_self()};
    for (int i = 0; i < 20; i++) { /* beside a job: either worker */
        lm_pool_post(p, post_fn, &a);
        run_pjob(p, &j, PJOB_CHUNKS);
        lm_pool_post_wait(p);
        ck_assert_int_eq(a.calls, i + 1);
    }
    int taken = 0;
    for (int i = 0; i < 50 && !taken; i++) { /* right after a job the helper spins */
        run_pjob(p, &j, PJOB_CHUNKS);
        int before = a.on_helper;
        lm_pool_post(p, post_fn, &a);
        nap_ms(2);
        lm_pool_post_wait(p);
        taken = a.on_helper > before;
    }
    ck_assert_msg(taken, "a spinning helper never took the posted function");
    nap_ms(20); /* the helper goes to sleep: the caller runs it in lm_pool_post_wait */
    int calls = a.calls, on_helper = a.on_helper;
    lm_pool_post(p, post_fn, &a);
    lm_pool_post_wait(p);
    ck_assert_int_eq(a.calls, calls + 1);
    ck_assert_int_eq(a.on_helper, on_helper);
    lm_pool_post_wait(p); /* nothing posted: returns */
    ck_assert_int_eq(a.calls, calls + 1);
    lm_pool_destroy(p);
    p = lm_pool_create(1);
    ck_assert_ptr_nonnull(p);
    lm_pool_post(p, post_fn, &a);
    run_pjob(p, &j, PJOB_CHUNKS);
    lm_pool_post_wait(p);
    ck_assert_int_eq(a.calls, calls + 2);
    ck_assert_int_eq(a.on_helper, on_helper);
    lm_pool_destroy(p);
}
END_TEST

Suite *trace_cost_suite(void); /* called by check_main.c */
Suite *trace_cost_suite(void)
{
    Suite *s = suite_create("trace_cost");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_trace_cost_links);
    tcase_add_test(tc, test_trace_cost_check_links);
    tcase_add_test(tc, test_trace_cost_engine_links);
    tcase_add_test(tc, test_trace_cost_engine_overlap);
    tcase_add_test(tc, test_trace_cost_token_in_step);
    tcase_add_test(tc, test_trace_cost_stats_lanes);
    tcase_add_test(tc, test_trace_cost_hash_stats_f32);
    tcase_add_test(tc, test_trace_cost_hash_stats_other);
    tcase_add_test(tc, test_trace_cost_lanes);
    tcase_add_test(tc, test_trace_cost_xxh64);
    tcase_add_test(tc, test_trace_cost_codec_roundtrip);
    tcase_add_test(tc, test_trace_cost_codec_planes);
    tcase_add_test(tc, test_trace_cost_codec_corrupt);
    tcase_add_test(tc, test_trace_cost_codec_v1_blob);
    tcase_add_test(tc, test_trace_cost_indexes_at_close);
    tcase_add_test(tc, test_trace_cost_checkpoint_thread);
    tcase_add_test(tc, test_trace_cost_checkpoint_small_pages);
    tcase_add_test(tc, test_trace_cost_wait_idle);
    tcase_add_test(tc, test_trace_cost_flush);
    tcase_add_test(tc, test_trace_cost_pool_waits);
    tcase_add_test(tc, test_trace_cost_pool_post);
    suite_add_tcase(s, tc);
    return s;
}
