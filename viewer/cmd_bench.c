/*
 * lltrace bench: prompt-processing and generation speed of the engine, with min/median/max over
 * repetitions, the effective weight-read bandwidth of generation next to the machine's measured
 * read bandwidth, and with --trace the cost of recording (full and stats) against the untraced
 * run, the trace size per token and the compression ratio. Numbers only; no assertions.
 */
#include "cmds.h"
#include "run_int.h"
#include "lm.h"
#include "trc.h"
#include "vw.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: lltrace bench -m MODEL.gguf [-p 64] [-n 32] [-t 2] [-r 3] [--kv-type f32|f16]\n"
    "                     [--trace]\n"
    "\n"
    "Measures prompt processing (pp: one batch of -p tokens) and generation (tg: -n tokens one\n"
    "at a time) in tokens/s, min/median/max over -r repetitions. Generation speed times the\n"
    "model's weight bytes is the effective weight-read bandwidth, printed next to this\n"
    "machine's read bandwidth (measured with -t threads). --trace also runs generation while\n"
    "recording (full, and stats only) and reports the slowdown, trace bytes per token, the\n"
    "compression ratio (stored/raw) and the raw tensor throughput in MB/s. In a repetition,\n"
    "three contexts (untraced, full, stats) each decode the prompt, then take turns of 4\n"
    "tokens, so that drift in the machine's load moves all three alike; the slowdown is the\n"
    "median over repetitions of traced/untraced time. A traced turn's time runs until the\n"
    "tracer's threads are idle again (trc_writer_wait_idle), so that none of its work runs\n"
    "while another context is timed. Traced pp includes writing the prompt's trace out\n"
    "(committed and checkpointed into the file); traced tg includes closing the trace, which\n"
    "is also reported apart: the cost of the steps alone, and the time of the close.\n"
    "On a shared or virtual machine one repetition's slowdown can be off by several\n"
    "percent either way; with -r 15, successive runs' medians stayed within 0.025 of\n"
    "each other on the machine README.md's Speed section describes.\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct bench {
    const char *model_path, *tmpdir;
    lm_model *m;
    int64_t pp, tg;
    int threads, reps, kv_type;
};

struct bw_job {
    const uint64_t *buf;
    size_t n;
    int nth, ith;
    uint64_t sum;
};

static void *bw_read(void *arg)
{
    struct bw_job *j = arg;
    size_t a = j->n * (size_t)j->ith / (size_t)j->nth,
           z = j->n * (size_t)(j->ith + 1) / (size_t)j->nth;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = a; i + 4 <= z; i += 4) {
        s0 += j->buf[i];
        s1 += j->buf[i + 1];
        s2 += j->buf[i + 2];
        s3 += j->buf[i + 3];
    }
    j->sum = s0 + s1 + s2 + s3;
    return NULL;
}

/* Read bandwidth in GB/s with nth threads over a 1 GiB buffer (best of 3). */
static double measure_bandwidth(int nth)
{
    const size_t n = ((size_t)1 << 30) / 8;
    uint64_t *buf = malloc(n * 8);
    struct bw_job jobs[64];
    pthread_t th[64];
    double best = 0;
    if (!buf || nth > 64) {
        free(buf);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        buf[i] = i;
    }
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_s();
        for (int i = 0; i < nth; i++) {
            jobs[i] = (struct bw_job){buf, n, nth, i, 0};
            pthread_create(&th[i], NULL, bw_read, &jobs[i]);
        }
        for (int i = 0; i < nth; i++) {
            pthread_join(th[i], NULL);
        }
        double gbs = (double)(n * 8) / (now_s() - t0) / 1e9;
        best = gbs > best ? gbs : best;
    }
    free(buf);
    return best;
}

static double weight_bytes(const lm_model *m)
{
    const lm_gguf *g = lm_model_gguf(m);
    double s = 0;
    for (int64_t i = 0; i < lm_gguf_n_tensors(g); i++) {
        s += (double)lm_gguf_tensor(g, i)->n_bytes;
    }
    return s;
}

struct series {
    double pp[64], tg[64]; /* tokens/s of each repetition, in the order they ran */
    double tg_steps[64];   /* traced: tokens/s of the steps alone, without closing the trace */
    double close_ms[64];   /* traced: ending the run and closing the trace */
};

/* One way of running the model in a repetition: untraced (level NULL) or traced at a level,
 * with its own context and trace file. */
struct lane {
    const char *level;
    lm_ctx *c;
    trc_writer *w;
    char path[4096];
    double t_pp, t_tg;                /* seconds */
    double raw_bytes;                 /* tensor bytes handed to the tracer (count_bytes) */
    struct trc_writer_stats after_pp; /* the writer's counters once the prompt step is in */
};

static void count_bytes(void *user, int64_t step, const struct trc_op *op)
{
    static const int esize[] = {4, 2, 2, 4};
    struct lane *ln = user;
    (void)step;
    for (int i = 0; i < op->n_tensors; i++) {
        double n = esize[op->tensors[i].dtype];
        for (int d = 0; d < op->tensors[i].n_dims; d++) {
            n *= (double)op->tensors[i].shape[d];
        }
        ln->raw_bytes += n;
    }
}

/* Opens the lane's trace (if traced) and context. */
static int lane_open(struct bench *b, struct lane *ln)
{
    char err[TRC_ERRBUF_SIZE > LM_ERRBUF_SIZE ? TRC_ERRBUF_SIZE : LM_ERRBUF_SIZE];
    struct lm_ctx_opts co = {0};
    lm_faults_init(&co.faults);
    co.n_threads = b->threads;
    co.kv_type = b->kv_type;
    co.n_ctx = b->pp + b->tg + 1;
    if (ln->level) {
        struct trc_writer_opts wo = {0};
        wo.overwrite = true;
        wo.page_size = vw_trace_page_size(&ln->level, 1); /* as lltrace run would */
        snprintf(ln->path, sizeof ln->path, "%s/lltrace-bench-%d-%s.trace", b->tmpdir,
                 (int)getpid(), ln->level);
        int64_t run_id;
        if (trc_writer_open(ln->path, &wo, &ln->w, err, sizeof err) < 0) {
            return vw_error("%s", err);
        }
        if (trc_writer_add_rule(ln->w, ln->level) < 0 ||
            trc_run_begin(ln->w, "lltrace", &run_id) < 0 ||
            trc_run_set_str(ln->w, "model_path", b->model_path) < 0) {
            return vw_error("%s: %s", ln->path, trc_writer_errmsg(ln->w));
        }
        co.trace = ln->w;
        co.on_op = count_bytes;
        co.on_op_user = ln;
    }
    if (lm_ctx_create(b->m, &co, &ln->c, err, sizeof err) < 0) {
        return vw_error("%s", err);
    }
    return 0;
}

/* Tokens a lane generates in a row before the next lane's turn: short enough that the
 * machine's load changes little within a round of turns, long enough that the tracer's
 * background work (a checkpoint pass every few tokens in full mode) overlaps the engine's as in
 * a real run rather than being waited for after every token. */
#define TURN 4

/* Decodes the n tokens toks[0..n) as one step (prompt), or one step per token (generation), and
 * adds the time to *t. A traced lane's time includes what tracing left running at the end:
 * after the prompt everything written into the file (trc_writer_flush), after a turn of
 * generation the writer's threads finishing (trc_writer_wait_idle), so that none of it runs
 * while another lane is timed. */
static int lane_decode(struct bench *b, struct lane *ln, const int32_t *toks, int64_t n,
                       bool prompt, double *t)
{
    double t0 = now_s();
    for (int64_t i = 0; i < (prompt ? 1 : n); i++) {
        if (lm_ctx_decode(ln->c, toks + i, prompt ? n : 1) < 0) {
            return vw_error("%s: %s", b->model_path, lm_ctx_errmsg(ln->c));
        }
    }
    if (ln->w && (prompt ? trc_writer_flush(ln->w) : trc_writer_wait_idle(ln->w)) < 0) {
        return vw_error("%s", trc_writer_errmsg(ln->w));
    }
    *t += now_s() - t0;
    return 0;
}

/* Subtracts the prompt's share from the writer's counters: generation only. */
static void counters_since(struct trc_writer_stats *s, const struct trc_writer_stats *pp)
{
    s->n_ops -= pp->n_ops;
    s->n_tensors -= pp->n_tensors;
    s->n_dedup -= pp->n_dedup;
    s->raw_bytes -= pp->raw_bytes;
    s->stored_bytes -= pp->stored_bytes;
    s->worker_ns -= pp->worker_ns;
    s->wait_ns -= pp->wait_ns;
    s->record_ns -= pp->record_ns;
    s->n_linked -= pp->n_linked;
    s->ckpt_ns -= pp->ckpt_ns;
    s->compress_ns -= pp->compress_ns;
    s->n_helped -= pp->n_helped;
    s->help_ns -= pp->help_ns;
}

/* What a repetition leaves of a traced lane for the report. */
struct lane_out {
    double trace_bytes, raw_bytes;
    struct trc_writer_stats ws; /* generation only */
};

/* One repetition: each lane decodes the prompt in one step, then the lanes take turns of TURN
 * tokens (untraced, full, stats, untraced, ...), so that a change in the machine's load moves
 * every lane alike; then the traced lanes end their run and close their trace (the last lane
 * first), timed as part of their generation, and the files are deleted after the last close.
 * Results go to s[lane][r]. */
static int run_rep(struct bench *b, struct lane *lanes, int n_lanes, int r, struct series *s,
                   struct lane_out *out)
{
    int rc = 0;
    int32_t *toks = malloc((size_t)(b->pp + b->tg) * sizeof *toks);
    const int64_t nv = lm_model_hparams(b->m)->n_vocab;
    for (int64_t i = 0; toks && i < b->pp; i++) {
        toks[i] = (int32_t)((i * 7919 + 1) % nv);
    }
    for (int64_t i = 0; toks && i < b->tg; i++) {
        toks[b->pp + i] = (int32_t)((i * 104729 + 3) % nv);
    }
    rc = toks ? 0 : vw_error("out of memory");
    for (int k = 0; rc == 0 && k < n_lanes; k++) {
        rc = lane_open(b, &lanes[k]);
    }
    for (int k = 0; rc == 0 && k < n_lanes; k++) {
        rc = lane_decode(b, &lanes[k], toks, b->pp, true, &lanes[k].t_pp);
        if (rc == 0 && lanes[k].w) {
            trc_writer_get_stats(lanes[k].w, &lanes[k].after_pp);
        }
    }
    for (int64_t i = 0; rc == 0 && i < b->tg; i += TURN) {
        const int64_t n = b->tg - i < TURN ? b->tg - i : TURN;
        for (int k = 0; rc == 0 && k < n_lanes; k++) {
            rc = lane_decode(b, &lanes[k], toks + b->pp + i, n, false, &lanes[k].t_tg);
        }
    }
    for (int k = n_lanes - 1; k >= 0; k--) { /* stats, then full: see below */
        struct lane *ln = &lanes[k];
        double t_close = 0;
        if (ln->w) {
            double t0 = now_s();
            if (rc == 0 && trc_run_end(ln->w, "complete") < 0) {
                rc = vw_error("%s: %s", ln->path, trc_writer_errmsg(ln->w));
            }
            trc_writer_get_stats(ln->w, &out[k].ws);
            counters_since(&out[k].ws, &ln->after_pp);
            if (trc_writer_close(ln->w) < 0 && rc == 0) {
                rc = vw_error("%s: cannot close the trace", ln->path);
            }
            t_close = now_s() - t0;
            struct stat st;
            out[k].trace_bytes = stat(ln->path, &st) == 0 ? (double)st.st_size : 0;
            out[k].raw_bytes = ln->raw_bytes;
        }
        if (rc == 0) {
            s[k].pp[r] = (double)b->pp / ln->t_pp;
            s[k].tg_steps[r] = (double)b->tg / ln->t_tg;
            s[k].close_ms[r] = t_close * 1e3;
            s[k].tg[r] = (double)b->tg / (ln->t_tg + t_close);
        }
    }
    /* Only now, and the full lane closed last: closing a trace of hundreds of MB (the fsyncs
     * of leaving WAL mode) and deleting it leave kernel work (writeback, ext4 freeing the
     * file's blocks, its journal) that slowed the stats lane's close from 14-15 ms to 17-19 ms
     * when it came after them (HISTORY.md, session 18). */
    for (int k = 0; k < n_lanes; k++) {
        struct lane *ln = &lanes[k];
        if (ln->w) {
            unlink(ln->path);
        }
        lm_ctx_destroy(ln->c);
        *ln = (struct lane){.level = ln->level};
    }
    free(toks);
    return rc;
}

/* min, median, max of n values (sorted copy). */
static void summarize(const double *v, int n, double out[3])
{
    double t[64];
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    out[0] = t[0];
    out[1] = t[n / 2];
    out[2] = t[n - 1];
}

static void print_series(const char *what, const double *v, int reps)
{
    double m[3];
    summarize(v, reps, m);
    printf("%-26s %8.2f %8.2f %8.2f\n", what, m[0], m[1], m[2]);
}

/* The tracer's own counters over the generated tokens of the last repetition: where the cost
 * of recording goes. */
static void print_tracer(const char *level, const struct trc_writer_stats *s, double toks)
{
    printf(
        "tracer %-5s per generated token: %.0f ops, %.0f tensors (%.0f linked, %.0f stored once), "
        "engine threads %.2f ms in trc_op_record + %.2f ms waiting, CPU of the writer thread "
        "%.2f ms, of the compression thread %.2f ms and of the checkpoint thread %.2f ms; "
        "%.0f ops written by waiting engine helpers in %.2f ms\n",
        level, (double)s->n_ops / toks, (double)s->n_tensors / toks, (double)s->n_linked / toks,
        (double)s->n_dedup / toks, (double)s->record_ns / toks / 1e6,
        (double)s->wait_ns / toks / 1e6, (double)s->worker_ns / toks / 1e6,
        (double)s->compress_ns / toks / 1e6, (double)s->ckpt_ns / toks / 1e6,
        (double)s->n_helped / toks, (double)s->help_ns / toks / 1e6);
}

/* Generation time traced / untraced for each repetition (the runs of a repetition are next to
 * each other, so a change in the machine's load moves both), summarized as min, median, max. */
static void cost(const double *plain, const double *traced, int reps, double out[3])
{
    double r[64];
    for (int i = 0; i < reps; i++) {
        r[i] = plain[i] / traced[i];
    }
    summarize(r, reps, out);
}

static int bench_main(struct bench *b, bool trace)
{
    struct series sr[3];
    struct lane lanes[3] = {{.level = NULL}, {.level = "full"}, {.level = "stats"}};
    struct lane_out lo[3] = {{0}};
    const int n_lanes = trace ? 3 : 1;
    const double wb = weight_bytes(b->m);
    for (int r = 0; r < b->reps; r++) {
        int rc = run_rep(b, lanes, n_lanes, r, sr, lo);
        if (rc) {
            return rc;
        }
    }
    const struct series plain = sr[0], full = sr[1], stats = sr[2];
    const struct trc_writer_stats ws_full = lo[1].ws, ws_stats = lo[2].ws;
    const double tb_full = lo[1].trace_bytes, tb_stats = lo[2].trace_bytes;
    printf("model: %s (%s, %.1f MB of weights), threads %d, simd %s, kv %s\n", b->model_path,
           lm_type_name(lm_model_hparams(b->m)->weight_type), wb / 1e6, b->threads,
           lm_simd_current(), b->kv_type == LM_TYPE_F16 ? "f16" : "f32");
    printf("%-26s %8s %8s %8s   (tokens/s over %d runs)\n", "", "min", "median", "max", b->reps);
    char what[64];
    snprintf(what, sizeof what, "pp%lld", (long long)b->pp);
    print_series(what, plain.pp, b->reps);
    snprintf(what, sizeof what, "tg%lld", (long long)b->tg);
    print_series(what, plain.tg, b->reps);
    double bw = measure_bandwidth(b->threads), m[3];
    summarize(plain.tg, b->reps, m);
    printf("weight-read bandwidth of tg: %.2f GB/s (median); machine read bandwidth: %.2f GB/s "
           "(%d threads)\n",
           wb * m[1] / 1e9, bw, b->threads);
    if (!trace) {
        return 0;
    }
    const double raw = lo[1].raw_bytes, toks = (double)(b->pp + b->tg);
    snprintf(what, sizeof what, "tg%lld traced full", (long long)b->tg);
    print_series(what, full.tg, b->reps);
    snprintf(what, sizeof what, "tg%lld traced stats", (long long)b->tg);
    print_series(what, stats.tg, b->reps);
    snprintf(what, sizeof what, "pp%lld traced full", (long long)b->pp);
    print_series(what, full.pp, b->reps);
    snprintf(what, sizeof what, "pp%lld traced stats", (long long)b->pp);
    print_series(what, stats.pp, b->reps);
    double cf[3], cs[3], pf[3], ps[3];
    cost(plain.tg, full.tg, b->reps, cf);
    cost(plain.tg, stats.tg, b->reps, cs);
    cost(plain.pp, full.pp, b->reps, pf);
    cost(plain.pp, stats.pp, b->reps, ps);
    printf("tracing cost (tg time traced/untraced per repetition, median (min-max)): full %.3fx "
           "(%.3f-%.3f), stats %.3fx (%.3f-%.3f)\n",
           cf[1], cf[0], cf[2], cs[1], cs[0], cs[2]);
    printf("tracing cost of the prompt (pp time, its trace written out): full %.3fx, stats "
           "%.3fx\n",
           pf[1], ps[1]);
    double sf[3], ss[3], kf[3], ks[3];
    cost(plain.tg, full.tg_steps, b->reps, sf);
    cost(plain.tg, stats.tg_steps, b->reps, ss);
    summarize(full.close_ms, b->reps, kf);
    summarize(stats.close_ms, b->reps, ks);
    printf("of which the steps (tg time up to the last step's commit): full %.3fx (%.3f-%.3f), "
           "stats %.3fx (%.3f-%.3f); closing the trace (at-close indexes, last checkpoint): "
           "full %.1f ms, stats %.1f ms (median)\n",
           sf[1], sf[0], sf[2], ss[1], ss[0], ss[2], kf[1], ks[1]);
    printf("full trace: %.2f MB for %.0f tokens (%.1f KB/token), raw tensor data %.2f MB, "
           "compression ratio stored/raw %.3f\n",
           tb_full / 1e6, toks, tb_full / toks / 1e3, raw / 1e6, raw > 0 ? tb_full / raw : 0);
    const double graw = (double)ws_full.raw_bytes, gst = (double)ws_full.stored_bytes;
    summarize(full.tg, b->reps, m);
    printf("generated tokens: %.1f KB of tensor data per token (%.1f KB after dedupe and "
           "compression), %.1f MB/s while generating\n",
           graw / (double)b->tg / 1e3, gst / (double)b->tg / 1e3,
           graw / (double)b->tg * m[1] / 1e6);
    printf("stats-only trace: %.2f MB\n", tb_stats / 1e6);
    print_tracer("full", &ws_full, (double)b->tg);
    print_tracer("stats", &ws_stats, (double)b->tg);
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'},
                                         {"kv-type", required_argument, NULL, 'k'},
                                         {"trace", no_argument, NULL, 'T'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct bench b = {0};
    bool trace = false;
    long long v;
    int c;
    char err[LM_ERRBUF_SIZE];
    b.pp = 64;
    b.tg = 32;
    b.threads = 2;
    b.reps = 3;
    b.kv_type = LM_TYPE_F32;
    b.tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:n:t:r:", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            b.model_path = optarg;
            break;
        case 'p':
        case 'n':
        case 't':
        case 'r': {
            const int max = c == 'r' ? 64 : 1 << 20; /* -r: the series arrays hold 64 */
            if (vw_parse_i64(optarg, 1, max, &v)) {
                return vw_usage_error("bench", "-%c takes a number from 1 to %d, not '%s'", c, max,
                                      optarg);
            }
            if (c == 'p') {
                b.pp = v;
            } else if (c == 'n') {
                b.tg = v;
            } else if (c == 't') {
                b.threads = (int)v;
            } else {
                b.reps = (int)v;
            }
            break;
        }
        case 'k':
            if (strcmp(optarg, "f32") && strcmp(optarg, "f16")) {
                return vw_usage_error("bench", "--kv-type takes f32 or f16");
            }
            b.kv_type = strcmp(optarg, "f16") ? LM_TYPE_F32 : LM_TYPE_F16;
            break;
        case 'T':
            trace = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return vw_usage_error("bench", "unknown option");
        }
    }
    if (!b.model_path) {
        return vw_usage_error("bench", "a model is required (-m MODEL.gguf)");
    }
    if (optind < argc) {
        return vw_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    }
    if (lm_model_open(b.model_path, &b.m, err, sizeof err) < 0) {
        return vw_error("%s", err);
    }
    int rc = bench_main(&b, trace);
    lm_model_close(b.m);
    return rc;
}
