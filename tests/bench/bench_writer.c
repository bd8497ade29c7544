/*
 * bench_writer.c - the tracer's own cost, without an engine: loads the decode steps of a real
 * trace into memory (every op with its tensors, weights and parameters, and which inputs are an
 * earlier op's tensor of the same step), then records them again through the public API
 * (trc_op_record_linked, as lltrace's engine does) into a new trace, a few times. Prints, per
 * step, the process's CPU time (every thread: caller, writer, checkpointer, kernel work they
 * cause), the wall time, and the writer's counters. With no engine competing for the cores,
 * these figures are steadier than `lltrace bench --trace` ratios and show what a change to the
 * writer saves. Not a test (no timing assertion); built by tests/CMakeLists.txt:
 *
 *   build/release/lltrace run -m MODEL.gguf -p "Once upon a time" -n 16 -o /tmp/p.trace
 *   build/release/tests/bench_writer /tmp/p.trace [full|stats] [repeats]
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "trc.h"

enum { MAX_T = 8, MAX_W = 4 };

struct bop {
    char *name, *kind, *params;
    int layer;
    int64_t step, pos0, n_pos;
    int n_t, n_w;
    struct trc_tensor t[MAX_T];
    char *same_as[MAX_T];
    int64_t tid[MAX_T];
    struct trc_weight w[MAX_W];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static char *dup_col(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? strdup((const char *)s) : NULL;
}

static int die(const char *what)
{
    fprintf(stderr, "bench_writer: %s\n", what);
    return 1;
}

/* The tensors of op k (rows of op_tensors), decompressed; an input equal to a tensor an earlier
 * op of the step holds is linked to that op's role, as the engine links them. */
static int load_tensors(trc_reader *r, sqlite3 *db, struct bop *ops, int k, int first)
{
    struct bop *o = &ops[k];
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db,
                       "SELECT ot.role, ot.tensor_id FROM op_tensors ot JOIN ops o ON "
                       "o.id = ot.op_id WHERE o.step = ?1 AND o.seq = ?2",
                       -1, &st, NULL);
    sqlite3_bind_int64(st, 1, o->step);
    sqlite3_bind_int(st, 2, k - first);
    while (sqlite3_step(st) == SQLITE_ROW && o->n_t < MAX_T) {
        struct trc_tensor *t = &o->t[o->n_t];
        struct trc_tensor_info ti;
        int64_t id = sqlite3_column_int64(st, 1);
        if (trc_reader_tensor_info(r, id, &ti) < 0 || !ti.has_data || ti.partial) {
            continue;
        }
        void *data = malloc((size_t)ti.nbytes);
        if (!data || trc_reader_tensor_raw(r, id, data, (size_t)ti.nbytes) < 0) {
            free(data);
            return -1;
        }
        t->role = dup_col(st, 0);
        t->dtype = ti.dtype;
        t->n_dims = ti.n_dims;
        memcpy(t->shape, ti.shape, sizeof t->shape);
        t->data = data;
        o->tid[o->n_t] = id;
        for (int j = first; j < k && !o->same_as[o->n_t]; j++) {
            for (int i = 0; i < ops[j].n_t; i++) {
                if (ops[j].tid[i] == id && strncmp(t->role, "in", 2) == 0) {
                    size_t n = strlen(ops[j].name) + strlen(ops[j].t[i].role) + 2;
                    o->same_as[o->n_t] = malloc(n);
                    snprintf(o->same_as[o->n_t], n, "%s/%s", ops[j].name, ops[j].t[i].role);
                    break;
                }
            }
        }
        o->n_t++;
    }
    sqlite3_finalize(st);
    return 0;
}

static void load_weights(sqlite3 *db, struct bop *o)
{
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db,
                       "SELECT w.role, w.name FROM op_weights w JOIN ops o ON o.id = w.op_id "
                       "WHERE o.step = ?1 AND o.name = ?2",
                       -1, &st, NULL);
    sqlite3_bind_int64(st, 1, o->step);
    sqlite3_bind_text(st, 2, o->name, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW && o->n_w < MAX_W) {
        o->w[o->n_w].role = dup_col(st, 0);
        o->w[o->n_w].name = dup_col(st, 1);
        o->n_w++;
    }
    sqlite3_finalize(st);
}

/* Every op of steps 1.. (decode steps) in (step, seq) order. */
static int load(const char *path, struct bop **out, int *n_out)
{
    char err[256];
    trc_reader *r;
    if (trc_reader_open(path, &r, err, sizeof err) < 0) {
        return die(err);
    }
    sqlite3 *db = trc_reader_sql_handle(r);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db,
                       "SELECT name, kind, params, coalesce(layer, -1), step, pos0, n_pos FROM "
                       "ops WHERE step > 0 ORDER BY step, seq",
                       -1, &st, NULL);
    int n = 0, cap = 0, first = 0;
    struct bop *ops = NULL;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            ops = realloc(ops, (size_t)cap * sizeof *ops);
        }
        struct bop *o = &ops[n];
        memset(o, 0, sizeof *o);
        o->name = dup_col(st, 0);
        o->kind = dup_col(st, 1);
        o->params = dup_col(st, 2);
        o->layer = sqlite3_column_int(st, 3);
        o->step = sqlite3_column_int64(st, 4);
        o->pos0 = sqlite3_column_int64(st, 5);
        o->n_pos = sqlite3_column_int64(st, 6);
        if (n > 0 && ops[n - 1].step != o->step) {
            first = n;
        }
        if (load_tensors(r, db, ops, n, first) < 0) {
            return die("cannot read a tensor");
        }
        load_weights(db, o);
        n++;
    }
    sqlite3_finalize(st);
    trc_reader_close(r);
    *out = ops;
    *n_out = n;
    return n ? 0 : die("no decode step in the trace");
}

static int replay(const struct bop *ops, int n, const char *level, const char *out, double *cpu,
                  double *wall, struct trc_writer_stats *ws, int *n_steps)
{
    char err[256];
    struct trc_writer_opts wo = {.overwrite = true};
    trc_writer *w;
    if (trc_writer_open(out, &wo, &w, err, sizeof err) < 0) {
        return die(err);
    }
    trc_writer_add_rule(w, level);
    trc_run_begin(w, "bench_writer", NULL);
    double c0 = cpu_s(), t0 = now_s();
    int steps = 0;
    for (int k = 0; k < n; k++) {
        const struct bop *o = &ops[k];
        if (k == 0 || ops[k - 1].step != o->step) {
            trc_step_begin(w, o->step, o->pos0, o->n_pos);
        }
        struct trc_op op = {o->name, o->kind, o->layer, o->pos0, o->n_pos, o->params,
                            -1,      o->t,    o->n_t,   o->w,    o->n_w};
        if (trc_op_record_linked(w, &op, (const char *const *)o->same_as) < 0) {
            return die(trc_writer_errmsg(w));
        }
        if (k == n - 1 || ops[k + 1].step != o->step) {
            trc_step_end(w, -1);
            steps++;
        }
    }
    trc_run_end(w, "complete");
    trc_writer_get_stats(w, ws);
    if (trc_writer_close(w) < 0) {
        return die("close failed");
    }
    *cpu = cpu_s() - c0;
    *wall = now_s() - t0;
    *n_steps = steps;
    unlink(out);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_writer TRACE [full|stats] [repeats]\n");
        return 2;
    }
    const char *level = argc > 2 ? argv[2] : "full";
    int reps = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 5;
    struct bop *ops;
    int n;
    if (load(argv[1], &ops, &n) != 0) {
        return 1;
    }
    char out[256];
    snprintf(out, sizeof out, "/tmp/bench_writer.%d.trace", (int)getpid());
    double v[64];
    reps = reps < 1 ? 1 : reps > 64 ? 64 : reps;
    for (int r = 0; r < reps; r++) {
        double cpu, wall;
        struct trc_writer_stats s;
        int steps;
        if (replay(ops, n, level, out, &cpu, &wall, &s, &steps) != 0) {
            return 1;
        }
        double k = 1e3 / steps;
        printf("%s, %d steps, per step: CPU %.2f ms (all threads), wall %.2f ms; caller "
               "%.2f ms recording + %.2f ms waiting; writer thread %.2f ms; compression thread "
               "%.2f ms; checkpointer %.2f ms; stored %.0f KB\n",
               level, steps, cpu * k, wall * k, (double)s.record_ns / 1e6 / steps,
               (double)s.wait_ns / 1e6 / steps, (double)s.worker_ns / 1e6 / steps,
               (double)s.compress_ns / 1e6 / steps, (double)s.ckpt_ns / 1e6 / steps,
               (double)s.stored_bytes / 1024 / steps);
        v[r] = cpu * k;
    }
    qsort(v, (size_t)reps, sizeof v[0], cmp_double);
    printf("CPU per step over %d repeats: min %.2f ms, median %.2f ms\n", reps, v[0], v[reps / 2]);
    return 0;
}
