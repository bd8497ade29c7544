/*
 * Tests of lending engine threads to the tracer (issue 4, "Cost"): trc_writer_help runs queued
 * jobs on the calling thread, in order, one thread at a time, and the trace it leaves is the
 * same, row for row and id for id, as the one written by the writer's own threads or
 * synchronously; the caller of trc_step_end runs the step's last jobs itself; the thread pool
 * calls its idle function only while one is set, never after lm_pool_set_idle(NULL) returns,
 * and loses no job meanwhile; and the engine's traces do not depend on whether its helpers
 * wrote rows.
 */
#include <check.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lm.h"
#include "pool_int.h"
#include "testutil.h"
#include "trc.h"

enum { N_STEPS = 6, N_OPS = 60, N_ELEMS = 64, N_BIG = 1 << 17 };

static void nap_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    nanosleep(&ts, NULL);
}

/* Threads that call trc_writer_help until told to stop, counting the jobs they ran. */
struct lender {
    trc_writer *w;
    atomic_int stop;
    atomic_long ran;
};

static void *lend_main(void *arg)
{
    struct lender *l = arg;
    while (!atomic_load(&l->stop)) {
        if (trc_writer_help(l->w)) {
            atomic_fetch_add(&l->ran, 1);
        }
    }
    return NULL;
}

static int64_t n_helped(trc_writer *w)
{
    struct trc_writer_stats st;
    ck_assert_int_eq(trc_writer_get_stats(w, &st), 0);
    return st.n_helped;
}

/* Writes the same trace whatever the mode: 0 synchronous, 1 the writer's threads, 2 the same
 * with two threads lending themselves all along. Levels stats and full mixed, links, tokens in
 * and between steps. Returns the jobs the lenders ran. */
static long write_seq(const char *path, int mode)
{
    trc_writer *w = lt_writer_open(path, mode == 0);
    struct lender l = {.w = w};
    pthread_t th[2];
    for (int i = 0; mode == 2 && i < 2; i++) {
        ck_assert_int_eq(pthread_create(&th[i], NULL, lend_main, &l), 0);
    }
    ck_assert_int_eq(trc_writer_add_rule(w, "stats"), 0);
    ck_assert_int_eq(trc_writer_add_rule(w, "full:*.full"), 0);
    ck_assert_int_eq(trc_run_begin(w, "help-test", NULL), 0);
    ck_assert_int_eq(trc_run_set_i64(w, "n_layer", N_OPS), 0);
    float x[N_ELEMS];
    float *big = malloc(N_BIG * sizeof *big);
    for (int s = 0; s < N_STEPS; s++) {
        ck_assert_int_eq(trc_step_begin(w, s, s, 1), 0);
        for (int k = 0; k < N_OPS; k++) {
            for (int i = 0; i < N_ELEMS; i++) {
                x[i] = (float)((s * 7 + k) % 23) * 0.5f + (float)i * 0.25f;
            }
            char name[32], prev[40];
            snprintf(name, sizeof name, "op%d.%s", k, k % 7 == 3 ? "full" : "stats");
            snprintf(prev, sizeof prev, "op%d.%s/out", k - 1, (k - 1) % 7 == 3 ? "full" : "stats");
            struct trc_tensor t[2] = {
                {.role = "in0", .dtype = TRC_DTYPE_F32, .n_dims = 1, .shape = {N_ELEMS}},
                {.role = "out", .dtype = TRC_DTYPE_F32, .n_dims = 1, .shape = {N_ELEMS}, .data = x},
            };
            t[0].data = x; /* the data of the link, when it cannot be honoured */
            struct trc_op op = {
                .name = name, .kind = "test", .layer = k, .tensors = t, .n_tensors = 2};
            const char *same_as[2] = {k > 0 ? prev : NULL, NULL};
            ck_assert_int_eq(trc_op_record_linked(w, &op, same_as), 0);
            if (k == N_OPS / 2) { /* a large copy: the compressor is woken in mid-step, and the
                                     stats ops after it must wait for it */
                for (int i = 0; i < N_BIG; i++) {
                    big[i] = (float)(i % 1000) * 0.001f + (float)s;
                }
                struct trc_tensor bt = {.role = "out",
                                        .dtype = TRC_DTYPE_F32,
                                        .n_dims = 1,
                                        .shape = {N_BIG},
                                        .data = big};
                struct trc_op bop = {.name = "big.full",
                                     .kind = "test",
                                     .layer = -1,
                                     .tensors = &bt,
                                     .n_tensors = 1};
                ck_assert_int_eq(trc_op_record(w, &bop), 0);
            }
        }
        /* Until they have run a job, the lenders get time before each step ends. They can be
         * kept waiting: behind the begin of step 0 (it commits the run's settings: worker's
         * work), and by the writer's SCHED_IDLE threads, which other processes can starve. */
        for (int i = 0; mode == 2 && i < 20000 && n_helped(w) == 0; i++) {
            nap_us(100);
        }
        if (s > 0) {
            ck_assert_int_eq(trc_token_add(w, s, 100 + s, "tok", false, false, 0.5f, 1.5f), 0);
        }
        ck_assert_int_eq(trc_step_end(w, 1000 + s), 0);
        if (s == 3) { /* between steps: committed when the next one begins */
            ck_assert_int_eq(trc_token_add(w, 50, 7, "between", false, false, 0.25f, 2.0f), 0);
        }
    }
    if (mode == 2) {
        ck_assert_int_gt(n_helped(w), 0);
    }
    free(big);
    atomic_store(&l.stop, 1);
    for (int i = 0; mode == 2 && i < 2; i++) {
        pthread_join(th[i], NULL);
    }
    ck_assert_int_eq(trc_writer_close(w), 0);
    return atomic_load(&l.ran);
}

/* Every row that carries content, in id order, as one string. */
static char *digest(const char *path)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    static const char *const q[] = {
        "SELECT group_concat(o.id || ' ' || o.step || ' ' || o.seq || ' ' || o.name || ' ' || "
        "o.level || ' ' || ot.role || ' ' || t.id || ' ' || t.hash || ' ' || t.shape || ' ' || "
        "t.min || ' ' || t.max || ' ' || coalesce(length(t.data), -1), ';') FROM (SELECT * "
        "FROM ops ORDER BY id) o JOIN op_tensors ot ON ot.op_id = o.id JOIN tensors t ON "
        "t.id = ot.tensor_id",
        "SELECT group_concat(idx || ' ' || token_id || ' ' || piece, ';') FROM (SELECT * FROM "
        "tokens ORDER BY idx)",
        "SELECT group_concat(step || ' ' || pos0 || ' ' || n_tokens, ';') FROM (SELECT * FROM "
        "steps ORDER BY step)",
        "SELECT (SELECT count(*) FROM ops) || ' ops, ' || (SELECT count(*) FROM op_tensors) || "
        "' op_tensors, ' || (SELECT count(*) FROM steps) || ' steps'",
        "SELECT count(*) || ' tensors, ' || sum(data IS NOT NULL) || ' with data' FROM tensors",
        "PRAGMA integrity_check",
    };
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        const char *v = lt_sql1(db, q[i]);
        ck_assert_ptr_nonnull(v);
        len += (size_t)snprintf(out + len, cap - len, "%s\n", v);
        ck_assert_uint_lt(len, cap);
    }
    sqlite3_close(db);
    return out;
}

START_TEST(test_trace_help_same_trace)
{
    char *paths[3] = {NULL};
    char *d[3];
    for (int mode = 0; mode < 3; mode++) {
        char name[32];
        snprintf(name, sizeof name, "mode%d.trace", mode);
        paths[mode] = strdup(lt_tmp_path("trace_help", name));
        long ran = write_seq(paths[mode], mode);
        ck_assert(mode == 2 ? ran > 0 : ran == 0);
        d[mode] = digest(paths[mode]);
    }
    ck_assert_msg(strstr(d[0], "\n366 ops, 726 op_tensors, 6 steps\n") != NULL, "%s", d[0]);
    ck_assert_msg(strstr(d[0], "\nok\n") != NULL, "integrity: %s", d[0]);
    ck_assert_msg(strstr(d[0], "50 7 between") && strstr(d[0], "5 105 tok"), "%s", d[0]);
    ck_assert_str_eq(d[1], d[0]);
    ck_assert_str_eq(d[2], d[0]);
    for (int mode = 0; mode < 3; mode++) {
        free(d[mode]);
        free(paths[mode]);
    }
}
END_TEST

/* A writer with nothing queued, or a synchronous one, has nothing to lend a thread to. */
START_TEST(test_trace_help_nothing_to_do)
{
    const char *p = lt_tmp_path("trace_help", "idle.trace");
    ck_assert_int_eq(trc_writer_help(NULL), 0);
    trc_writer *w = lt_writer_open(p, false);
    ck_assert_int_eq(trc_writer_help(w), 0);
    ck_assert_int_eq(trc_run_begin(w, "t", NULL), 0);
    ck_assert_int_eq(trc_writer_help(w), 0); /* a run's begin is the worker's: it commits */
    ck_assert_int_eq(trc_writer_close(w), 0);
    w = lt_writer_open(p, true);
    ck_assert_int_eq(trc_run_begin(w, "t", NULL), 0);
    ck_assert_int_eq(trc_step_begin(w, 0, 0, 1), 0);
    float x[4] = {1, 2, 3, 4};
    struct trc_tensor t = {
        .role = "out", .dtype = TRC_DTYPE_F32, .n_dims = 1, .shape = {4}, .data = x};
    struct trc_op op = {.name = "a", .kind = "test", .tensors = &t, .n_tensors = 1};
    ck_assert_int_eq(trc_op_record(w, &op), 0);
    ck_assert_int_eq(trc_writer_help(w), 0); /* synchronous: done already */
    ck_assert_int_eq(trc_step_end(w, 1), 0);
    ck_assert_int_eq(trc_writer_close(w), 0);
}
END_TEST

/* ---- the pool's idle function -------------------------------------------------------------- */

struct idle_work {
    atomic_int calls;
    atomic_int left; /* pieces of work to hand out */
    atomic_int inside;
    atomic_int overlap; /* calls that found another inside: must not matter, counted anyway */
};

static int idle_fn(void *arg)
{
    struct idle_work *iw = arg;
    atomic_fetch_add(&iw->inside, 1);
    atomic_fetch_add(&iw->calls, 1);
    int did = 0;
    if (atomic_load(&iw->left) > 0) {
        atomic_fetch_sub(&iw->left, 1);
        nap_us(20); /* a piece of work takes a while */
        did = 1;
    }
    atomic_fetch_sub(&iw->inside, 1);
    return did;
}

enum { CHUNKS = 16 };

struct count_job {
    atomic_int runs[CHUNKS];
};

static void count_fn(void *arg, int64_t chunk, int ith)
{
    (void)ith;
    struct count_job *j = arg;
    atomic_fetch_add(&j->runs[chunk], 1);
}

static void run_jobs(lm_pool *p, int n)
{
    for (int i = 0; i < n; i++) {
        struct count_job j;
        for (int k = 0; k < CHUNKS; k++) {
            atomic_init(&j.runs[k], 0);
        }
        lm_pool_run(p, count_fn, &j, CHUNKS);
        for (int k = 0; k < CHUNKS; k++) {
            ck_assert_int_eq(atomic_load(&j.runs[k]), 1);
        }
        nap_us(i % 4 == 0 ? 300 : 5); /* the helper waits, spinning (and sometimes longer) */
    }
}

START_TEST(test_trace_help_pool_idle)
{
    lm_pool *p = lm_pool_create(2);
    ck_assert_ptr_nonnull(p);
    struct idle_work iw;
    atomic_init(&iw.calls, 0);
    atomic_init(&iw.left, 40);
    atomic_init(&iw.inside, 0);
    atomic_init(&iw.overlap, 0);
    run_jobs(p, 20);
    ck_assert_int_eq(atomic_load(&iw.calls), 0); /* none set */
    lm_pool_set_idle(p, idle_fn, &iw);
    for (int i = 0; i < 200 && atomic_load(&iw.left) > 0; i++) {
        run_jobs(p, 10);
    }
    ck_assert_int_eq(atomic_load(&iw.left), 0); /* the waiting helper did the work */
    lm_pool_set_idle(p, NULL, NULL);
    ck_assert_int_eq(atomic_load(&iw.inside), 0); /* returned once no call was running */
    int calls = atomic_load(&iw.calls);
    run_jobs(p, 20);
    ck_assert_int_eq(atomic_load(&iw.calls), calls); /* never called again */
    lm_pool_destroy(p);
}
END_TEST

/* ---- the engine --------------------------------------------------------------------------- */

/* A stats trace of the same tokens with 1 and 2 threads: with 2, the pool's helper writes rows
 * while it waits. Kernels give the same bits for any split, so the traces are the same. With 2
 * threads, generation goes on until the helper has written rows (other processes may keep it
 * from spinning for a while), at most max_gen tokens; the count is returned in *n_gen. */
static char *engine_trace(const char *model, const char *path, int n_threads, int max_gen,
                          int *n_gen)
{
    char err[512];
    trc_writer *w = lt_writer_open(path, false);
    ck_assert_int_eq(trc_writer_add_rule(w, "stats"), 0);
    ck_assert_int_eq(trc_run_begin(w, "test", NULL), 0);
    lm_model *m = NULL;
    lm_ctx *c = NULL;
    ck_assert_msg(lm_model_open(model, &m, err, sizeof err) == 0, "%s", err);
    struct lm_ctx_opts co = {.n_threads = n_threads, .n_ubatch = 8, .trace = w};
    lm_faults_init(&co.faults);
    ck_assert_msg(lm_ctx_create(m, &co, &c, err, sizeof err) == 0, "%s", err);
    int32_t toks[5] = {1, 17, 42, 99, 7};
    ck_assert_msg(lm_ctx_decode(c, toks, 5) == 0, "%s", lm_ctx_errmsg(c));
    int i = 0;
    for (; i < max_gen && (n_threads == 1 || i < 4 || n_helped(w) == 0); i++) {
        int32_t t = 30 + i % 400;
        ck_assert_msg(lm_ctx_decode(c, &t, 1) == 0, "%s", lm_ctx_errmsg(c));
    }
    *n_gen = i;
    lm_ctx_destroy(c);
    lm_model_close(m);
    if (n_threads > 1) { /* the waiting helper wrote rows */
        ck_assert_msg(n_helped(w) > 0, "no row written by the pool's helper in %d steps", i);
    }
    ck_assert_int_eq(trc_writer_close(w), 0);
    return digest(path);
}

START_TEST(test_trace_help_engine_same_trace)
{
    char model[1200], err[256];
    snprintf(model, sizeof model, "%s", lt_tmp_path("trace_help", "small.gguf"));
    struct lm_mkmodel_opts mo = {"small", LM_TYPE_F32, 13}; /* matmuls big enough for 2 threads */
    ck_assert_msg(lm_mkmodel_write(model, &mo, err, sizeof err) == 0, "%s", err);
    int n_gen = 0, n_gen1 = 0;
    char *two = engine_trace(model, lt_tmp_path("trace_help", "t2.trace"), 2, 400, &n_gen);
    char *one = engine_trace(model, lt_tmp_path("trace_help", "t1.trace"), 1, n_gen, &n_gen1);
    char want[64];
    snprintf(want, sizeof want, " %d steps\n", n_gen + 1);
    ck_assert_msg(strstr(one, want) && strstr(one, "\nok\n"), "%s", one);
    ck_assert_str_eq(two, one);
    free(one);
    free(two);
}
END_TEST

Suite *trace_help_suite(void); /* called by check_main.c */
Suite *trace_help_suite(void)
{
    Suite *s = suite_create("trace_help");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_trace_help_same_trace);
    tcase_add_test(tc, test_trace_help_nothing_to_do);
    tcase_add_test(tc, test_trace_help_pool_idle);
    tcase_add_test(tc, test_trace_help_engine_same_trace);
    suite_add_tcase(s, tc);
    return s;
}
