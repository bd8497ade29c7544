/*
 * instrument_your_engine - a complete, tiny "engine" that records its forward pass into an
 * lltrace trace through tracer/include/trc.h only: the proof that the tracer serves engines
 * other than lltrace's own. Read it top to bottom: model, forward pass, recording, generation.
 *
 * The model is a 2-layer residual MLP language model over a 16-token vocabulary (no attention,
 * so the whole forward pass fits on a screen), with deterministic pseudo-random weights:
 *
 *     x = tok_embd[tokens]                                      (n_tokens, N_EMBD)
 *     for each layer L:  h = rms_norm(x) * ffn_norm_w           blk.L.ffn_norm
 *                        u = h @ W_up                           blk.L.ffn_up   (n_tokens, N_FF)
 *                        a = silu(u)                            blk.L.ffn_act
 *                        d = a @ W_down                         blk.L.ffn_out  (n_tokens, N_EMBD)
 *                        x = x + d                              blk.L.l_out
 *     logits = rms_norm(x) @ W_out                              output_norm, output
 *
 * Usage: instrument_your_engine OUT.trace [--force]
 * It generates 4 tokens greedily after a 3-token prompt: step 0 is the prompt batch, steps 1..3
 * one token each; the 4th token is sampled but never fed back (no KV cache needed: an MLP looks at
 * one position at a time).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trc.h"

#define N_VOCAB    16
#define N_EMBD     8
#define N_FF       16
#define N_LAYER    2
#define MAX_TOKENS 8
#define RMS_EPS    1e-5f

struct model {
    float tok_embd[N_VOCAB][N_EMBD];
    float ffn_norm[N_LAYER][N_EMBD];
    float w_up[N_LAYER][N_EMBD][N_FF];
    float w_down[N_LAYER][N_FF][N_EMBD];
    float out_norm[N_EMBD];
    float w_out[N_EMBD][N_VOCAB];
};

/* Scratch activations, sized once (no allocation in the forward pass). */
struct acts {
    float x[MAX_TOKENS][N_EMBD]; /* residual stream */
    float h[MAX_TOKENS][N_EMBD]; /* normed */
    float u[MAX_TOKENS][N_FF];   /* up projection */
    float a[MAX_TOKENS][N_FF];   /* activation */
    float d[MAX_TOKENS][N_EMBD]; /* down projection */
    float x_in[MAX_TOKENS][N_EMBD];
    float logits[MAX_TOKENS][N_VOCAB];
};

static float frand(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 16777216.0f - 0.5f;
}

static void model_init(struct model *m)
{
    uint32_t s = 42;
    float *all = (float *)m;
    for (size_t i = 0; i < sizeof *m / sizeof(float); i++) {
        all[i] = frand(&s);
    }
    for (int l = 0; l < N_LAYER; l++) {
        for (int i = 0; i < N_EMBD; i++) {
            m->ffn_norm[l][i] += 1.0f;
        }
    }
}

static void rms_norm(float *out, const float *x, const float *w, int n)
{
    float ss = 0.0f;
    for (int i = 0; i < n; i++) {
        ss += x[i] * x[i];
    }
    float scale = 1.0f / sqrtf(ss / (float)n + RMS_EPS);
    for (int i = 0; i < n; i++) {
        out[i] = x[i] * scale * w[i];
    }
}

/* out (n_out) = x (n_in) @ w (n_in, n_out) */
static void matvec(float *out, const float *x, const float *w, int n_in, int n_out)
{
    for (int j = 0; j < n_out; j++) {
        float s = 0.0f;
        for (int i = 0; i < n_in; i++) {
            s += x[i] * w[i * n_out + j];
        }
        out[j] = s;
    }
}

/* ---- recording: everything the tracer sees goes through these two helpers ------------------ */

static struct trc_tensor tensor(const char *role, enum trc_dtype dt, int rows, int cols,
                                const void *data)
{
    struct trc_tensor t = {
        .role = role, .dtype = dt, .n_dims = 2, .shape = {rows, cols}, .data = data};
    return t;
}

/* Where recording goes: the writer and the step in progress. */
struct rec {
    trc_writer *w;
    int64_t step;
    int pos0;
};

/* Records op `name` with its tensors; `weight` names the GGUF-style tensor the op used
 * (referenced, never copied). Returns 0 or a negative TRC_E* code. */
static int record(const struct rec *r, const char *name, const char *kind, int layer, int rows,
                  struct trc_tensor *ts, int n_ts, const char *weight, const char *params)
{
    if (trc_writer_level(r->w, name, r->step) == TRC_LEVEL_NONE) {
        return 0; /* skip building anything for ops nobody wants */
    }
    struct trc_weight wt = {.role = "weight", .name = weight};
    struct trc_op op = {.name = name,
                        .kind = kind,
                        .layer = layer,
                        .pos0 = r->pos0,
                        .n_pos = rows,
                        .params_json = params,
                        .elapsed_ns = -1,
                        .tensors = ts,
                        .n_tensors = n_ts,
                        .weights = &wt,
                        .n_weights = weight ? 1 : 0};
    return trc_op_record(r->w, &op);
}

/* ---- the forward pass, recording each op as it completes ------------------------------------ */

static int forward_layer(const struct model *m, struct acts *s, int n, int l, const struct rec *r)
{
    char name[64];
    char wname[64];
    int rc = 0;
    memcpy(s->x_in, s->x, sizeof s->x);
    for (int t = 0; t < n; t++) {
        rms_norm(s->h[t], s->x[t], m->ffn_norm[l], N_EMBD);
        matvec(s->u[t], s->h[t], &m->w_up[l][0][0], N_EMBD, N_FF);
        for (int j = 0; j < N_FF; j++) {
            s->a[t][j] = s->u[t][j] / (1.0f + expf(-s->u[t][j]));
        }
        matvec(s->d[t], s->a[t], &m->w_down[l][0][0], N_FF, N_EMBD);
        for (int i = 0; i < N_EMBD; i++) {
            s->x[t][i] += s->d[t][i];
        }
    }
    struct trc_tensor norm[2] = {tensor("in0", TRC_DTYPE_F32, n, N_EMBD, s->x_in),
                                 tensor("out", TRC_DTYPE_F32, n, N_EMBD, s->h)};
    struct trc_tensor up[2] = {tensor("in0", TRC_DTYPE_F32, n, N_EMBD, s->h),
                               tensor("out", TRC_DTYPE_F32, n, N_FF, s->u)};
    struct trc_tensor act[2] = {tensor("in0", TRC_DTYPE_F32, n, N_FF, s->u),
                                tensor("out", TRC_DTYPE_F32, n, N_FF, s->a)};
    struct trc_tensor down[2] = {tensor("in0", TRC_DTYPE_F32, n, N_FF, s->a),
                                 tensor("out", TRC_DTYPE_F32, n, N_EMBD, s->d)};
    struct trc_tensor add[3] = {tensor("in0", TRC_DTYPE_F32, n, N_EMBD, s->x_in),
                                tensor("in1", TRC_DTYPE_F32, n, N_EMBD, s->d),
                                tensor("out", TRC_DTYPE_F32, n, N_EMBD, s->x)};
    snprintf(name, sizeof name, "blk.%d.ffn_norm", l);
    snprintf(wname, sizeof wname, "blk.%d.ffn_norm.weight", l);
    rc = rc ? rc : record(r, name, "rms_norm", l, n, norm, 2, wname, "{\"eps\":1e-05}");
    snprintf(name, sizeof name, "blk.%d.ffn_up", l);
    snprintf(wname, sizeof wname, "blk.%d.ffn_up.weight", l);
    rc = rc ? rc : record(r, name, "matmul", l, n, up, 2, wname, NULL);
    snprintf(name, sizeof name, "blk.%d.ffn_act", l);
    rc = rc ? rc : record(r, name, "silu", l, n, act, 2, NULL, NULL);
    snprintf(name, sizeof name, "blk.%d.ffn_out", l);
    snprintf(wname, sizeof wname, "blk.%d.ffn_down.weight", l);
    rc = rc ? rc : record(r, name, "matmul", l, n, down, 2, wname, NULL);
    snprintf(name, sizeof name, "blk.%d.l_out", l);
    return rc ? rc : record(r, name, "add", l, n, add, 3, NULL, NULL);
}

/* Runs the model over tokens[0..n-1]; logits of every row land in s->logits. */
static int forward(const struct model *m, struct acts *s, const int32_t *tokens, int n,
                   const struct rec *r)
{
    for (int t = 0; t < n; t++) {
        memcpy(s->x[t], m->tok_embd[tokens[t]], sizeof s->x[t]);
    }
    struct trc_tensor emb[2] = {
        {.role = "in0", .dtype = TRC_DTYPE_I32, .n_dims = 1, .shape = {n}, .data = tokens},
        tensor("out", TRC_DTYPE_F32, n, N_EMBD, s->x)};
    int rc = record(r, "tok_embd", "get_rows", -1, n, emb, 2, "token_embd.weight", NULL);
    for (int l = 0; rc == 0 && l < N_LAYER; l++) {
        rc = forward_layer(m, s, n, l, r);
    }
    for (int t = 0; t < n; t++) {
        rms_norm(s->h[t], s->x[t], m->out_norm, N_EMBD);
        matvec(s->logits[t], s->h[t], &m->w_out[0][0], N_EMBD, N_VOCAB);
    }
    struct trc_tensor norm[2] = {tensor("in0", TRC_DTYPE_F32, n, N_EMBD, s->x),
                                 tensor("out", TRC_DTYPE_F32, n, N_EMBD, s->h)};
    struct trc_tensor out[2] = {tensor("in0", TRC_DTYPE_F32, n, N_EMBD, s->h),
                                tensor("out", TRC_DTYPE_F32, n, N_VOCAB, s->logits)};
    rc = rc ? rc
            : record(r, "output_norm", "rms_norm", -1, n, norm, 2, "output_norm.weight",
                     "{\"eps\":1e-05}");
    return rc ? rc : record(r, "output", "matmul", -1, n, out, 2, "output.weight", NULL);
}

/* ---- generation: a run with its metadata, one step per forward call ------------------------ */

static int describe_run(trc_writer *w)
{
    int rc = trc_run_set_str(w, "arch", "tiny-mlp");
    rc = rc ? rc : trc_run_set_i64(w, "n_layer", N_LAYER);
    rc = rc ? rc : trc_run_set_i64(w, "n_embd", N_EMBD);
    rc = rc ? rc : trc_run_set_i64(w, "n_ff", N_FF);
    rc = rc ? rc : trc_run_set_i64(w, "n_vocab", N_VOCAB);
    rc = rc ? rc : trc_run_set_f64(w, "rms_eps", (double)RMS_EPS);
    rc = rc ? rc : trc_run_set_str(w, "weight_type", "f32");
    rc = rc ? rc : trc_run_set_f64(w, "temp", 0.0);
    rc = rc ? rc : trc_run_set_i64(w, "n_threads", 1);
    rc = rc ? rc : trc_run_set_str(w, "prompt", "abc");
    return rc ? rc : trc_run_set_str(w, "weights_seed", "42"); /* unknown key: run_params */
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++) {
        best = v[i] > v[best] ? i : best;
    }
    return best;
}

static int generate(trc_writer *w, const struct model *m, struct acts *s)
{
    int32_t seq[MAX_TOKENS] = {1, 5, 7}; /* the prompt */
    int n_seq = 3;
    char piece[8];
    int rc = trc_run_begin(w, "example", NULL);
    rc = rc ? rc : describe_run(w);
    for (int i = 0; rc == 0 && i < n_seq; i++) {
        snprintf(piece, sizeof piece, "%c", 'a' + seq[i]);
        rc = trc_token_add(w, i, seq[i], piece, true, i == 0, NAN, NAN);
    }
    for (int step = 0; rc == 0 && n_seq < 7; step++) {
        int pos0 = step == 0 ? 0 : n_seq - 1;
        int n = step == 0 ? n_seq : 1;
        struct rec r = {w, step, pos0};
        int64_t t0 = now_ns();
        rc = trc_step_begin(w, step, pos0, n);
        rc = rc ? rc : forward(m, s, seq + pos0, n, &r);
        int64_t elapsed = now_ns() - t0;
        int next = argmax(s->logits[n - 1], N_VOCAB);
        snprintf(piece, sizeof piece, "%c", 'a' + next);
        /* added before trc_step_end, the token is committed with the step that produced it */
        rc = rc ? rc
                : trc_token_add(w, n_seq, next, piece, false, false, 1.0f, s->logits[n - 1][next]);
        rc = rc ? rc : trc_step_end(w, elapsed);
        seq[n_seq++] = next;
    }
    return rc ? rc : trc_run_end(w, "complete");
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--force") != 0)) {
        fprintf(stderr, "usage: instrument_your_engine OUT.trace [--force]\n");
        return 2;
    }
    static struct model m;
    static struct acts s;
    model_init(&m);
    char err[TRC_ERRBUF_SIZE];
    trc_writer *w = NULL;
    struct trc_writer_opts opts = {.overwrite = argc == 3};
    int rc = trc_writer_open(argv[1], &opts, &w, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "instrument_your_engine: %s\n", err);
        return 1;
    }
    rc = generate(w, &m, &s);
    if (rc < 0) {
        fprintf(stderr, "instrument_your_engine: %s\n", trc_writer_errmsg(w));
    }
    int crc = trc_writer_close(w);
    if (rc == 0 && crc < 0) {
        fprintf(stderr, "instrument_your_engine: closing %s: %s\n", argv[1], trc_strerror(crc));
        rc = crc;
    }
    if (rc == 0) {
        printf("recorded %s\n", argv[1]);
    }
    return rc < 0 ? 1 : 0;
}
