/*
 * Inference contexts: creation (buffers and KV cache sized once), decoding calls, and the step
 * bookkeeping shared with the tracer. The forward pass itself is in forward.c.
 */
#include "ctx_int.h"
#include "kern_int.h"
#include "trc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t lm__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *zalloc(size_t n, size_t size, int *fail)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        *fail = 1;
    }
    return p;
}

static int alloc_buffers(lm_ctx *c)
{
    const struct lm_hparams *hp = &c->m->hp;
    const size_t B = (size_t)c->n_ubatch, e = (size_t)hp->n_embd, f = (size_t)hp->n_ff;
    const size_t qd = (size_t)(hp->n_head * hp->head_dim);
    const size_t kvd = (size_t)(hp->n_head_kv * hp->head_dim);
    const size_t cells = (size_t)hp->n_layer * (size_t)c->n_ctx * kvd;
    const size_t esz = c->kv_type == LM_TYPE_F16 ? 2 : 4;
    const int64_t kmax = hp->n_ff > hp->n_embd
                             ? (hp->n_ff > (int64_t)qd ? hp->n_ff : (int64_t)qd)
                             : (hp->n_embd > (int64_t)qd ? hp->n_embd : (int64_t)qd);
    const size_t scores = (size_t)hp->n_head * B * (size_t)c->n_ctx;
    const int nth = lm_pool_size(c->pool);
    int fail = 0;

    c->k_cache = zalloc(cells, esz, &fail);
    c->v_cache = zalloc(cells, esz, &fail);
    c->x = zalloc(B * e, sizeof(float), &fail);
    c->xn = zalloc(B * e, sizeof(float), &fail);
    c->q = zalloc(B * qd, sizeof(float), &fail);
    c->qr = zalloc(B * qd, sizeof(float), &fail);
    c->k = zalloc(B * kvd, sizeof(float), &fail);
    c->kr = zalloc(B * kvd, sizeof(float), &fail);
    c->v = zalloc(B * kvd, sizeof(float), &fail);
    c->kq = zalloc(scores, sizeof(float), &fail);
    c->sm = zalloc(scores, sizeof(float), &fail);
    c->kqv = zalloc(B * qd, sizeof(float), &fail);
    c->attn_out = zalloc(B * e, sizeof(float), &fail);
    c->ffn_inp = zalloc(B * e, sizeof(float), &fail);
    c->gate = zalloc(B * f, sizeof(float), &fail);
    c->up = zalloc(B * f, sizeof(float), &fail);
    c->act_out = zalloc(B * f, sizeof(float), &fail);
    c->ffn_out = zalloc(B * e, sizeof(float), &fail);
    c->logits = zalloc((size_t)hp->n_vocab, sizeof(float), &fail);
    c->act = zalloc(B, (size_t)kmax * sizeof(float) + 64, &fail);
    c->pos = zalloc(B, sizeof(int32_t), &fail);
    c->cos = zalloc(B * (size_t)(hp->n_rot / 2), sizeof(float), &fail);
    c->sin = zalloc(B * (size_t)(hp->n_rot / 2), sizeof(float), &fail);
    c->scratch_n = c->n_ctx + 64 + (int64_t)qd;
    c->scratch = zalloc((size_t)nth * (size_t)c->scratch_n, sizeof(float), &fail);
    if (c->trace || c->on_op) {
        c->rec_n = (int64_t)(B * kvd);
        c->rec_buf = zalloc((size_t)c->rec_n, sizeof(float), &fail);
    }
    return fail ? LM_ENOMEM : 0;
}

static void apply_faults(lm_ctx *c)
{
    const struct lm_hparams *hp = &c->m->hp;
    c->rms_eps = c->faults.rms_eps > 0 ? c->faults.rms_eps : hp->rms_eps;
    c->rope_theta = c->faults.rope_theta > 0 ? c->faults.rope_theta : hp->rope_theta;
    c->rope_mode = c->faults.rope_mode >= 0 ? c->faults.rope_mode : hp->rope_mode;
    if (c->faults.kv_f16) {
        c->kv_type = LM_TYPE_F16;
    }
}

int lm_ctx_create(lm_model *m, const struct lm_ctx_opts *o, lm_ctx **out, char *errbuf,
                  size_t errlen)
{
    struct lm_ctx_opts def = {0};
    lm_ctx *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!o) {
        def.faults.rope_mode = -1;
        o = &def;
    }
    if (!c) {
        snprintf(errbuf, errlen, "%s: out of memory", m->path);
        return LM_ENOMEM;
    }
    c->m = m;
    c->faults = o->faults;
    c->trace = o->trace;
    c->on_op = o->on_op;
    c->on_op_user = o->on_op_user;
    c->on_logits = o->on_logits;
    c->on_logits_user = o->on_logits_user;
    c->kv_type = o->kv_type == LM_TYPE_F16 ? LM_TYPE_F16 : LM_TYPE_F32;
    if (o->kv_type != LM_TYPE_F32 && o->kv_type != LM_TYPE_F16) {
        snprintf(errbuf, errlen, "KV cache type %s is not supported (f32 or f16)",
                 lm_type_name(o->kv_type) ? lm_type_name(o->kv_type) : "?");
        free(c);
        return LM_EINVAL;
    }
    int64_t n_ctx = o->n_ctx > 0 ? o->n_ctx : (m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096);
    c->n_ctx = (n_ctx + 255) / 256 * 256;
    c->n_ubatch = o->n_ubatch > 0 ? o->n_ubatch : 512;
    if (c->n_ubatch > c->n_ctx) {
        c->n_ubatch = c->n_ctx;
    }
    apply_faults(c);
    c->rec_sync = getenv("LLTRACE_RECORD_SYNC") != NULL; /* for A/B runs of the overlap */
    c->pool = lm_pool_create(o->n_threads > 0 ? o->n_threads : 2);
    if (!c->pool || alloc_buffers(c) < 0) {
        snprintf(errbuf, errlen, "%s: out of memory for a context of %lld cells", m->path,
                 (long long)c->n_ctx);
        lm_ctx_destroy(c);
        return LM_ENOMEM;
    }
    *out = c;
    return 0;
}

void lm_ctx_destroy(lm_ctx *c)
{
    if (!c) {
        return;
    }
    lm_pool_destroy(c->pool);
    void *bufs[] = {c->k_cache, c->v_cache, c->x,        c->xn,      c->q,
                    c->qr,      c->k,       c->kr,       c->v,       c->kq,
                    c->sm,      c->kqv,     c->attn_out, c->ffn_inp, c->gate,
                    c->up,      c->act_out, c->ffn_out,  c->logits,  c->act,
                    c->pos,     c->cos,     c->sin,      c->scratch, c->rec_buf};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        free(bufs[i]);
    }
    free(c);
}

const char *lm_ctx_errmsg(const lm_ctx *c)
{
    return c->errmsg;
}

/* The pool's idle function while a traced step runs (pool_int.h, trc_writer_help). */
static int lend_to_trace(void *trace)
{
    return trc_writer_help(trace);
}

int lm_ctx_decode(lm_ctx *c, const int32_t *tokens, int64_t n)
{
    const int64_t n_vocab = c->m->hp.n_vocab;
    if (n <= 0) {
        snprintf(c->errmsg, sizeof c->errmsg, "nothing to decode");
        return LM_EINVAL;
    }
    if (c->n_past + n > c->n_ctx) {
        snprintf(c->errmsg, sizeof c->errmsg,
                 "%lld tokens do not fit in the context: %lld of %lld positions are used",
                 (long long)n, (long long)c->n_past, (long long)c->n_ctx);
        return LM_ERANGE;
    }
    for (int64_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab) {
            snprintf(c->errmsg, sizeof c->errmsg, "token id %d is out of range (n_vocab %lld)",
                     tokens[i], (long long)n_vocab);
            return LM_EINVAL;
        }
    }
    for (int64_t done = 0; done < n;) {
        const int64_t nb = n - done < c->n_ubatch ? n - done : c->n_ubatch;
        const int64_t t0 = lm__now_ns();
        int rc = 0;
        if (c->trace) {
            rc = trc_step_begin(c->trace, c->n_steps, c->n_past, nb);
        }
        if (rc == 0) {
            if (c->trace) { /* helpers waiting between kernels write the step's rows */
                lm_pool_set_idle(c->pool, lend_to_trace, c->trace);
            }
            rc = lm__forward(c, tokens + done, nb, c->n_past);
            if (c->trace) {
                lm_pool_set_idle(c->pool, NULL, NULL);
            }
        }
        const int64_t elapsed = lm__now_ns() - t0;
        if (rc == 0 && done + nb == n && c->on_logits &&
            c->on_logits(c->on_logits_user, c->logits) < 0) {
            if (c->trace && trc_writer_errmsg(c->trace)[0]) {
                snprintf(c->errmsg, sizeof c->errmsg, "trace: %s", trc_writer_errmsg(c->trace));
            } else {
                snprintf(c->errmsg, sizeof c->errmsg, "the logits callback failed");
            }
            return LM_EIO;
        }
        if (rc == 0 && c->trace) {
            rc = trc_step_end(c->trace, elapsed);
        }
        if (rc < 0) {
            snprintf(c->errmsg, sizeof c->errmsg, "trace: %s", trc_writer_errmsg(c->trace));
            return LM_EIO;
        }
        c->n_past += nb;
        c->n_steps++;
        done += nb;
    }
    return 0;
}

const float *lm_ctx_logits(const lm_ctx *c)
{
    return c->logits;
}

int64_t lm_ctx_n_past(const lm_ctx *c)
{
    return c->n_past;
}

int64_t lm_ctx_n_steps(const lm_ctx *c)
{
    return c->n_steps;
}

int64_t lm_ctx_n_ctx(const lm_ctx *c)
{
    return c->n_ctx;
}

const char *lm_simd_current(void)
{
    return lm_simd_name(lm_simd_level());
}
