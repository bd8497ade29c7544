/*
 * The LLaMA forward pass over a KV cache, one decode call at a time, op by op in the order of
 * llama.cpp's graph (see ../shared/NUMERICS.md section 1):
 *
 *   tok_embd -> per layer: attn_norm -> attn_q/k/v -> rope_q/k -> cache_k/v -> kq (scaled,
 *   masked) -> kq_softmax -> kqv -> attn_out -> ffn_inp (+residual) -> ffn_norm -> ffn_gate/up
 *   -> ffn_act (swiglu) -> ffn_out -> l_out (+residual) ; output_norm -> output (logits)
 *
 * As in llama.cpp, the last layer keeps only the last row after attn_out, so its FFN, the final
 * norm and the output projection run on one row (this decides which matmul kernel runs, and so
 * the bits). Buffers are sized once in lm_ctx_create; decoding allocates nothing. Every op is
 * reported to the tracer through record.c when a trace is attached.
 */
#include "ctx_int.h"
#include "kern_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- matmul over the thread pool --------------------------------------------------------------
 */

struct mm_job {
    const struct lm_weight *w;
    const void *act; /* n converted activation rows */
    size_t act_stride;
    int64_t n;
    float *out; /* (n, w->m) */
    unsigned flags;
    int64_t chunk_rows; /* a multiple of 16, so that no kernel block straddles two chunks */
};

static void mm_worker(void *arg, int64_t chunk, int ith)
{
    const struct mm_job *j = arg;
    const int64_t r0 = chunk * j->chunk_rows;
    const int64_t r1 = r0 + j->chunk_rows < j->w->m ? r0 + j->chunk_rows : j->w->m;
    (void)ith;
    if (r0 < r1) {
        lm_matmul_ex(j->w->type, j->w->k, j->w->m, j->w->data, j->act, j->act_stride, j->n, j->out,
                     j->w->m, r0, r1, j->flags);
    }
}

struct conv_job {
    int wtype;
    const float *x;
    int64_t k, n;
    void *dst;
    size_t stride;
};

static void conv_worker(void *arg, int64_t r, int ith)
{
    const struct conv_job *j = arg;
    (void)ith;
    lm_act_convert(j->wtype, j->x + r * j->k, (char *)j->dst + r * j->stride, j->k);
}

/* out (n, w->m) = x (n, w->k) times the weight's rows. */
static void matmul(lm_ctx *c, const struct lm_weight *w, const float *x, int64_t n, float *out)
{
    struct conv_job cj = {w->type, x, w->k, n, c->act, lm_act_row_bytes(w->type, w->k)};
    /* A tied output matrix is token_embd, which llama.cpp never repacks. */
    struct mm_job mj = {
        w, c->act, cj.stride, n, out, w->data == c->m->tok_embd.data ? LM_MM_NO_REPACK : 0u, 0};
    const double work = (double)w->k * (double)w->m * (double)n;
    /* chunks of at least 64 rows: few enough that claiming one costs nothing, enough that a
     * preempted worker's chunk is a small part of the job */
    const int64_t n_chunks = lm_pool_chunks(c->pool, w->m, 64);
    mj.chunk_rows = ((w->m + n_chunks - 1) / n_chunks + 15) / 16 * 16;
    lm_pool_run_sized(c->pool, conv_worker, &cj, n, (double)(w->k * n) * 64.0);
    lm_pool_run_sized(c->pool, mm_worker, &mj, (w->m + mj.chunk_rows - 1) / mj.chunk_rows, work);
}

/* ---- attention --------------------------------------------------------------------------------
 */

struct attn_job {
    lm_ctx *c;
    int64_t layer;
    struct lm_attn_shape a;
};

static void attn_shape(const lm_ctx *c, int64_t n, int64_t pos0, struct lm_attn_shape *a)
{
    const struct lm_hparams *hp = &c->m->hp;
    a->n = n;
    a->n_head = hp->n_head;
    a->n_head_kv = hp->n_head_kv;
    a->head_dim = hp->head_dim;
    a->pos0 = pos0;
    a->n_kv = pos0 + n;
    a->kv_type = c->kv_type;
    a->gqa_tile = c->faults.gqa_tile;
}

/* One chunk per head. */
static void scores_worker(void *arg, int64_t h, int ith)
{
    const struct attn_job *j = arg;
    lm_ctx *c = j->c;
    const int64_t kvd = j->a.n_head_kv * j->a.head_dim;
    const size_t esz = c->kv_type == LM_TYPE_F16 ? 2 : 4;
    const char *k = (const char *)c->k_cache + (size_t)(j->layer * c->n_ctx * kvd) * esz;
    lm_op_attn_scores_head(&j->a, h, c->qr, k, kvd, c->scratch + ith * c->scratch_n,
                           c->kq + h * j->a.n * j->a.n_kv);
}

/* One chunk per head: its n rows. */
static void softmax_worker(void *arg, int64_t h, int ith)
{
    const struct attn_job *j = arg;
    (void)ith;
    for (int64_t r = h * j->a.n; r < (h + 1) * j->a.n; r++) {
        lm_op_softmax(j->c->kq + r * j->a.n_kv, j->a.n_kv, j->c->faults.softmax_f16,
                      j->c->sm + r * j->a.n_kv);
    }
}

/* One chunk per head. */
static void context_worker(void *arg, int64_t h, int ith)
{
    const struct attn_job *j = arg;
    lm_ctx *c = j->c;
    const int64_t kvd = j->a.n_head_kv * j->a.head_dim;
    const size_t esz = c->kv_type == LM_TYPE_F16 ? 2 : 4;
    const char *vt = (const char *)c->v_cache + (size_t)(j->layer * kvd * c->n_ctx) * esz;
    lm_op_attn_context_head(&j->a, h, c->sm + h * j->a.n * j->a.n_kv, vt, c->n_ctx,
                            c->scratch + ith * c->scratch_n, c->kqv);
}

/* ---- the pass ---------------------------------------------------------------------------------
 */

/* Writes K (after RoPE) and V rows of n tokens into the cache at cells pos0.. (V transposed). */
static void cache_write(lm_ctx *c, int64_t l, int64_t pos0, int64_t n)
{
    const struct lm_hparams *hp = &c->m->hp;
    const int64_t kvd = hp->n_head_kv * hp->head_dim;
    for (int64_t t = 0; t < n; t++) {
        const int64_t cell = pos0 + t;
        for (int64_t i = 0; i < kvd; i++) {
            const int64_t ki = (l * c->n_ctx + cell) * kvd + i;
            const int64_t vi = (l * kvd + i) * c->n_ctx + cell;
            if (c->kv_type == LM_TYPE_F16) {
                ((uint16_t *)c->k_cache)[ki] = lm_f32_to_f16(c->kr[t * kvd + i]);
                ((uint16_t *)c->v_cache)[vi] = lm_f32_to_f16(c->v[t * kvd + i]);
            } else {
                ((float *)c->k_cache)[ki] = c->kr[t * kvd + i];
                ((float *)c->v_cache)[vi] = c->v[t * kvd + i];
            }
        }
    }
}

/* Hugging Face row order inside each head (the qk-permute fault): row j*hd/2 + i of the HF
 * checkpoint is row 2i + j of GGUF, so the output is read back in that order. */
static void permute_hf(float *x, int64_t n, int64_t n_heads, int64_t hd, float *tmp)
{
    for (int64_t r = 0; r < n * n_heads; r++) {
        float *h = x + r * hd;
        for (int64_t i = 0; i < hd / 2; i++) {
            tmp[i] = h[2 * i];
            tmp[hd / 2 + i] = h[2 * i + 1];
        }
        memcpy(h, tmp, (size_t)hd * sizeof(float));
    }
}

static void rope_tables(lm_ctx *c, int64_t pos0, int64_t n)
{
    const int half = (int)c->m->hp.n_rot / 2;
    for (int64_t t = 0; t < n; t++) {
        c->pos[t] = (int32_t)(pos0 + t + c->faults.pos_offset);
        lm_op_rope_cache(c->pos[t], (int)c->m->hp.n_rot, c->rope_theta, c->m->hp.rope_freq_scale,
                         c->cos + t * half, c->sin + t * half);
    }
}

static void attention(lm_ctx *c, int64_t l, int64_t pos0, int64_t n)
{
    const struct lm_hparams *hp = &c->m->hp;
    const struct lm_layer *L = &c->m->layers[l];
    const int64_t hd = hp->head_dim, qd = hp->n_head * hd, kvd = hp->n_head_kv * hd;
    struct attn_job aj = {c, l, {0}};
    struct lm_rec r;
    attn_shape(c, n, pos0, &aj.a);

    lm_rec_begin_w(c, &r, l, "attn_norm", "rms_norm", pos0, n, c->xn,
                   (size_t)(n * hp->n_embd) * sizeof(float));
    lm_op_rms_norm(c->x, L->attn_norm.data, n, hp->n_embd, c->rms_eps, c->xn);
    lm_rec_norm(c, &r, L->attn_norm.name, c->x, c->xn, n);

    lm_rec_begin_w(c, &r, l, "attn_q", "matmul", pos0, n, c->q, (size_t)(n * qd) * sizeof(float));
    matmul(c, &L->wq, c->xn, n, c->q);
    if (c->faults.qk_permute) {
        permute_hf(c->q, n, hp->n_head, hd, c->scratch);
    }
    lm_rec_matmul(c, &r, &L->wq, c->xn, c->q, n);
    lm_rec_begin_w(c, &r, l, "attn_k", "matmul", pos0, n, c->k, (size_t)(n * kvd) * sizeof(float));
    matmul(c, &L->wk, c->xn, n, c->k);
    if (c->faults.qk_permute) {
        permute_hf(c->k, n, hp->n_head_kv, hd, c->scratch);
    }
    lm_rec_matmul(c, &r, &L->wk, c->xn, c->k, n);
    lm_rec_begin_w(c, &r, l, "attn_v", "matmul", pos0, n, c->v, (size_t)(n * kvd) * sizeof(float));
    matmul(c, &L->wv, c->xn, n, c->v);
    lm_rec_matmul(c, &r, &L->wv, c->xn, c->v, n);

    lm_rec_begin_w(c, &r, l, "rope_q", "rope", pos0, n, c->qr, (size_t)(n * qd) * sizeof(float));
    lm_op_rope(c->q, n, (int)hp->n_head, (int)hd, (int)hp->n_rot, c->rope_mode, c->cos, c->sin,
               c->qr);
    lm_rec_rope(c, &r, c->q, c->qr, n, hp->n_head);
    lm_rec_begin_w(c, &r, l, "rope_k", "rope", pos0, n, c->kr, (size_t)(n * kvd) * sizeof(float));
    lm_op_rope(c->k, n, (int)hp->n_head_kv, (int)hd, (int)hp->n_rot, c->rope_mode, c->cos, c->sin,
               c->kr);
    lm_rec_rope(c, &r, c->k, c->kr, n, hp->n_head_kv);

    lm_rec_begin(c, &r, l, "cache_k", "cache_write", pos0, n);
    cache_write(c, l, pos0, n);
    lm_rec_cache(c, &r, c->kr, n, kvd);
    lm_rec_begin(c, &r, l, "cache_v", "cache_write", pos0, n);
    lm_rec_cache(c, &r, c->v, n, kvd);

    lm_rec_begin_w(c, &r, l, "kq", "attn_scores", pos0, n, c->kq,
                   (size_t)(hp->n_head * n * aj.a.n_kv) * sizeof(float));
    const double attn_work = (double)(hp->n_head * n * aj.a.n_kv * hd);
    lm_pool_run_sized(c->pool, scores_worker, &aj, hp->n_head, attn_work);
    lm_rec_scores(c, &r, c->qr, c->kq, n, aj.a.n_kv);
    lm_rec_begin_w(c, &r, l, "kq_softmax", "softmax", pos0, n, c->sm,
                   (size_t)(hp->n_head * n * aj.a.n_kv) * sizeof(float));
    lm_pool_run_sized(c->pool, softmax_worker, &aj, hp->n_head, attn_work / (double)hd * 16.0);
    lm_rec_softmax(c, &r, c->kq, c->sm, n, aj.a.n_kv);
    lm_rec_begin_w(c, &r, l, "kqv", "attn_ctx", pos0, n, c->kqv, (size_t)(n * qd) * sizeof(float));
    lm_pool_run_sized(c->pool, context_worker, &aj, hp->n_head, attn_work);
    lm_rec_context(c, &r, c->sm, c->kqv, n, aj.a.n_kv, qd);

    lm_rec_begin_w(c, &r, l, "attn_out", "matmul", pos0, n, c->attn_out,
                   (size_t)(n * hp->n_embd) * sizeof(float));
    matmul(c, &L->wo, c->kqv, n, c->attn_out);
    lm_rec_matmul(c, &r, &L->wo, c->kqv, c->attn_out, n);
    lm_rec_flush(c); /* lm__forward may move rows of attn_out next */
}

/* The FFN half of layer l on rows [row0, row0 + n) of the batch. */
static void feed_forward(lm_ctx *c, int64_t l, int64_t pos0, int64_t row0, int64_t n)
{
    const struct lm_hparams *hp = &c->m->hp;
    const struct lm_layer *L = &c->m->layers[l];
    const int64_t e = hp->n_embd, f = hp->n_ff;
    float *x = c->x + row0 * e, *ao = c->attn_out + row0 * e;
    struct lm_rec r;

    lm_rec_begin_w(c, &r, l, "ffn_inp", "add", pos0 + row0, n, c->ffn_inp,
                   (size_t)(n * e) * sizeof(float));
    lm_op_add(ao, x, n * e, c->ffn_inp);
    lm_rec_add(c, &r, ao, x, c->ffn_inp, n, e);
    lm_rec_begin_w(c, &r, l, "ffn_norm", "rms_norm", pos0 + row0, n, c->xn,
                   (size_t)(n * e) * sizeof(float));
    lm_op_rms_norm(c->ffn_inp, L->ffn_norm.data, n, e, c->rms_eps, c->xn);
    lm_rec_norm(c, &r, L->ffn_norm.name, c->ffn_inp, c->xn, n);
    lm_rec_begin_w(c, &r, l, "ffn_gate", "matmul", pos0 + row0, n, c->gate,
                   (size_t)(n * f) * sizeof(float));
    matmul(c, &L->w_gate, c->xn, n, c->gate);
    lm_rec_matmul(c, &r, &L->w_gate, c->xn, c->gate, n);
    lm_rec_begin_w(c, &r, l, "ffn_up", "matmul", pos0 + row0, n, c->up,
                   (size_t)(n * f) * sizeof(float));
    matmul(c, &L->w_up, c->xn, n, c->up);
    lm_rec_matmul(c, &r, &L->w_up, c->xn, c->up, n);
    lm_rec_begin_w(c, &r, l, "ffn_act", "swiglu", pos0 + row0, n, c->act_out,
                   (size_t)(n * f) * sizeof(float));
    lm_op_swiglu(c->gate, c->up, n * f, c->act_out);
    lm_rec_add(c, &r, c->gate, c->up, c->act_out, n, f);
    lm_rec_begin_w(c, &r, l, "ffn_out", "matmul", pos0 + row0, n, c->ffn_out,
                   (size_t)(n * e) * sizeof(float));
    matmul(c, &L->w_down, c->act_out, n, c->ffn_out);
    lm_rec_matmul(c, &r, &L->w_down, c->act_out, c->ffn_out, n);
    lm_rec_begin_w(c, &r, l, "l_out", "add", pos0 + row0, n, c->x, (size_t)(n * e) * sizeof(float));
    lm_op_add(c->ffn_out, c->ffn_inp, n * e, c->x);
    lm_rec_add(c, &r, c->ffn_out, c->ffn_inp, c->x, n, e);
}

static void embed(lm_ctx *c, const int32_t *tokens, int64_t pos0, int64_t n)
{
    const struct lm_weight *te = &c->m->tok_embd;
    const int64_t rb = lm_type_row_bytes(te->type, te->k);
    struct lm_rec r;
    lm_rec_begin(c, &r, -1, "tok_embd", "get_rows", pos0, n);
    for (int64_t t = 0; t < n; t++) {
        lm_dequant_row(te->type, (const char *)te->data + tokens[t] * rb, c->x + t * te->k, te->k);
    }
    lm_rec_embd(c, &r, tokens, c->x, n);
}

/* One forward pass of n (<= n_ubatch) tokens at positions pos0.. ; logits of the last. */
int lm__forward(lm_ctx *c, const int32_t *tokens, int64_t n, int64_t pos0)
{
    const struct lm_hparams *hp = &c->m->hp;
    const int64_t e = hp->n_embd;
    struct lm_rec r;

    embed(c, tokens, pos0, n);
    rope_tables(c, pos0, n);
    for (int64_t l = 0; l < hp->n_layer; l++) {
        attention(c, l, pos0, n);
        if (l == hp->n_layer - 1 && n > 1) {
            /* llama.cpp's inp_out_ids: only the last row goes on. */
            memmove(c->x, c->x + (n - 1) * e, (size_t)e * sizeof(float));
            memmove(c->attn_out, c->attn_out + (n - 1) * e, (size_t)e * sizeof(float));
            feed_forward(c, l, pos0 + n - 1, 0, 1);
        } else {
            feed_forward(c, l, pos0, 0, n);
        }
    }
    const int64_t last = pos0 + n - 1;
    const int64_t row = hp->n_layer > 0 ? 0 : n - 1;
    lm_rec_begin_w(c, &r, -1, "output_norm", "rms_norm", last, 1, c->xn, (size_t)e * sizeof(float));
    lm_op_rms_norm(c->x + row * e, c->m->out_norm.data, 1, e, c->rms_eps, c->xn);
    lm_rec_norm(c, &r, c->m->out_norm.name, c->x + row * e, c->xn, 1);
    lm_rec_begin_w(c, &r, -1, "output", "matmul", last, 1, c->logits,
                   (size_t)hp->n_vocab * sizeof(float));
    matmul(c, &c->m->output, c->xn, 1, c->logits);
    lm_rec_matmul(c, &r, &c->m->output, c->xn, c->logits, 1);
    return lm_rec_status(c);
}
