/*
 * lltrace bench: prompt-processing and generation speed of the engine, with min/median/max over
 * repetitions, the effective weight-read bandwidth of generation next to the machine's measured
 * read bandwidth, and with --trace the cost of recording (full and stats) against the untraced
 * run, the trace size per token and the compression ratio. Numbers only; no assertions.
 */
#include "cmds.h"
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
    "recording (full, then stats only) and reports the slowdown, trace bytes per token, the\n"
    "compression ratio (stored/raw) and the raw tensor throughput in MB/s. Each repetition\n"
    "runs untraced, full and stats back to back, and the slowdown is the median over\n"
    "repetitions of traced/untraced time, so that drift in the machine's load moves both\n"
    "sides of each ratio. Traced pp includes writing the prompt's trace out (committed and\n"
    "checkpointed into the file); traced tg starts after that and includes closing the trace,\n"
    "which is also reported apart: the cost of the steps alone, and the time of the close.\n";

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
    double raw_bytes;                 /* tensor bytes handed to the tracer in the last traced run */
    struct trc_writer_stats after_pp; /* the writer's counters once the prompt step is in */
};

static void count_bytes(void *user, int64_t step, const struct trc_op *op)
{
    static const int esize[] = {4, 2, 2, 4};
    struct bench *b = user;
    (void)step;
    for (int i = 0; i < op->n_tensors; i++) {
        double n = esize[op->tensors[i].dtype];
        for (int d = 0; d < op->tensors[i].n_dims; d++) {
            n *= (double)op->tensors[i].shape[d];
        }
        b->raw_bytes += n;
    }
}

/* One repetition: pp tokens in one step, then tg single-token steps. Times in seconds. */
static int bench_once(struct bench *b, trc_writer *w, double *t_pp, double *t_tg)
{
    char err[LM_ERRBUF_SIZE];
    struct lm_ctx_opts co = {0};
    lm_ctx *c;
    int32_t *toks = malloc((size_t)(b->pp > 0 ? b->pp : 1) * sizeof *toks);
    const int64_t nv = lm_model_hparams(b->m)->n_vocab;
    lm_faults_init(&co.faults);
    co.n_threads = b->threads;
    co.kv_type = b->kv_type;
    co.n_ctx = b->pp + b->tg + 1;
    co.trace = w;
    if (w) {
        co.on_op = count_bytes;
        co.on_op_user = b;
    }
    if (!toks || lm_ctx_create(b->m, &co, &c, err, sizeof err) < 0) {
        free(toks);
        return vw_error("%s", toks ? err : "out of memory");
    }
    for (int64_t i = 0; i < b->pp; i++) {
        toks[i] = (int32_t)((i * 7919 + 1) % nv);
    }
    double t0 = now_s();
    int rc = lm_ctx_decode(c, toks, b->pp);
    if (w && rc == 0 && trc_writer_flush(w) < 0) { /* the prompt's trace belongs to pp */
        rc = vw_error("%s", trc_writer_errmsg(w));
    }
    *t_pp = now_s() - t0;
    if (w) {
        trc_writer_get_stats(w, &b->after_pp);
    }
    t0 = now_s();
    for (int64_t i = 0; rc == 0 && i < b->tg; i++) {
        int32_t t = (int32_t)((i * 104729 + 3) % nv);
        rc = lm_ctx_decode(c, &t, 1);
    }
    *t_tg = now_s() - t0;
    if (rc < 0) {
        vw_error("%s: %s", b->model_path, lm_ctx_errmsg(c));
    }
    lm_ctx_destroy(c);
    free(toks);
    return rc < 0 ? 1 : 0;
}

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

/* One repetition at a tracing level (NULL: untraced) into s->pp[r], s->tg[r]. The traced time
 * includes ending the run and closing the trace: the flush belongs to the cost of tracing. */
static int run_rep(struct bench *b, const char *level, int r, struct series *s, double *trace_bytes,
                   struct trc_writer_stats *wst)
{
    trc_writer *w = NULL;
    char path[4096], err[TRC_ERRBUF_SIZE];
    double tp = 0, tt = 0;
    if (level) {
        struct trc_writer_opts wo = {0};
        wo.overwrite = true;
        snprintf(path, sizeof path, "%s/lltrace-bench-%d.trace", b->tmpdir, (int)getpid());
        int64_t run_id;
        if (trc_writer_open(path, &wo, &w, err, sizeof err) < 0) {
            return vw_error("%s", err);
        }
        if (trc_writer_add_rule(w, level) < 0 || trc_run_begin(w, "lltrace", &run_id) < 0 ||
            trc_run_set_str(w, "model_path", b->model_path) < 0) {
            vw_error("%s: %s", path, trc_writer_errmsg(w));
            trc_writer_close(w);
            return 1;
        }
        b->raw_bytes = 0;
    }
    int rc = bench_once(b, w, &tp, &tt);
    if (w) {
        double t0 = now_s();
        if (rc == 0 && trc_run_end(w, "complete") < 0) {
            rc = vw_error("%s: %s", path, trc_writer_errmsg(w));
        }
        trc_writer_get_stats(w, wst); /* of the last repetition, generation only */
        wst->n_ops -= b->after_pp.n_ops;
        wst->n_tensors -= b->after_pp.n_tensors;
        wst->n_dedup -= b->after_pp.n_dedup;
        wst->raw_bytes -= b->after_pp.raw_bytes;
        wst->stored_bytes -= b->after_pp.stored_bytes;
        wst->worker_ns -= b->after_pp.worker_ns;
        wst->wait_ns -= b->after_pp.wait_ns;
        wst->record_ns -= b->after_pp.record_ns;
        wst->n_linked -= b->after_pp.n_linked;
        wst->ckpt_ns -= b->after_pp.ckpt_ns;
        wst->compress_ns -= b->after_pp.compress_ns;
        wst->n_helped -= b->after_pp.n_helped;
        wst->help_ns -= b->after_pp.help_ns;
        trc_writer_close(w);
        s->tg_steps[r] = (double)b->tg / tt;
        s->close_ms[r] = (now_s() - t0) * 1e3;
        tt += now_s() - t0;
        struct stat st;
        *trace_bytes = stat(path, &st) == 0 ? (double)st.st_size : 0;
        unlink(path);
    }
    s->pp[r] = (double)b->pp / tp;
    s->tg[r] = (double)b->tg / tt;
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
        "engine thread %.2f ms in trc_op_record + %.2f ms waiting, CPU of the writer thread "
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
    struct series plain, full, stats;
    struct trc_writer_stats ws_full = {0}, ws_stats = {0};
    double tb_full = 0, tb_stats = 0, unused = 0;
    const double wb = weight_bytes(b->m);
    /* untraced, full, stats, then again: interleaved so that the machine's drift is shared */
    for (int r = 0; r < b->reps; r++) {
        int rc = run_rep(b, NULL, r, &plain, &unused, NULL);
        if (rc == 0 && trace) {
            rc = run_rep(b, "full", r, &full, &tb_full, &ws_full);
        }
        if (rc == 0 && trace) {
            rc = run_rep(b, "stats", r, &stats, &tb_stats, &ws_stats);
        }
        if (rc) {
            return rc;
        }
    }
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
    const double raw = b->raw_bytes, toks = (double)(b->pp + b->tg);
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
        case 'r':
            if (vw_parse_i64(optarg, c == 'p' || c == 'n' ? 1 : 1, c == 'r' ? 64 : 1 << 20, &v)) {
                return vw_usage_error("bench", "-%c takes a positive number, not '%s'", c, optarg);
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
