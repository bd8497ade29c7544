/*
 * Reporting the forward pass to the tracer (tracer/include/trc.h): one call after each op with
 * its canonical name, inputs, output and parameters. When no trace is attached, or the
 * recording rules say `none` for an op, nothing is built. Tensor data are passed by pointer:
 * the tracer copies (or summarizes) them before returning. That call usually runs beside the
 * next op, on whichever pool thread is free (see "the pending op" below), and always before
 * anything overwrites the buffers it reads. Most inputs are the unchanged output of an earlier
 * op of the step (attn_q reads attn_norm's output): the table below names them, and they go to
 * the tracer as links (trc_op_record_linked), which it stores without copying or hashing
 * anything.
 */
#include "ctx_int.h"
#include "pool_int.h"
#include "trc.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* A bounded string builder: every op builds its name, links and parameters on the engine's
 * thread, so they are put together from pieces rather than with snprintf (a quarter of the
 * recording cost at level stats, when most of it went into formatting the same doubles). */
struct sb {
    char *p, *end; /* end: the last byte, kept for the terminator */
};

static struct sb sb_init(char *buf, size_t cap)
{
    struct sb b = {buf, buf + cap - 1};
    *b.p = '\0';
    return b;
}

static void sb_str(struct sb *b, const char *s)
{
    while (*s && b->p < b->end) {
        *b->p++ = *s++;
    }
    *b->p = '\0';
}

static void sb_i64(struct sb *b, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        tmp[n++] = '-';
    }
    while (n > 0 && b->p < b->end) {
        *b->p++ = tmp[--n];
    }
    *b->p = '\0';
}

/* "%.9g" of v (which round-trips a float), from slot k of the context's cache. */
static const char *g9(lm_ctx *c, int k, double v)
{
    if (!c->rec_g9[k].ok || memcmp(&c->rec_g9[k].v, &v, sizeof v) != 0) {
        snprintf(c->rec_g9[k].s, sizeof c->rec_g9[k].s, "%.9g", v);
        c->rec_g9[k].v = v;
        c->rec_g9[k].ok = true;
    }
    return c->rec_g9[k].s;
}

enum { G9_EPS, G9_THETA, G9_FREQ_SCALE, G9_SCALE };

/* "blk.<layer>.<name>" into buf (64 bytes), or name alone for layer < 0. */
static void op_name(char *buf, size_t cap, int64_t layer, const char *name)
{
    struct sb b = sb_init(buf, cap);
    if (layer >= 0) {
        sb_str(&b, "blk.");
        sb_i64(&b, layer);
        sb_str(&b, ".");
    }
    sb_str(&b, name);
}

/* ---- the pending op ----------------------------------------------------------------------
 * emit() leaves each op's record pending. The next op's lm_rec_begin_w posts it to the thread
 * pool when the next op writes nothing the record reads (lm_pool_post): a waiting helper then
 * hashes and summarizes it while the caller runs the next op, or the caller does so at the
 * start of the op's pool job while the helpers run its first chunks. The next emit waits for it
 * (records stay in order, and the op after next may overwrite its buffers). lm_rec_begin
 * records it at once. Op times are wall times, so an op that ran beside a record can show the
 * time the record took from it. */

static void record_pending(void *arg)
{
    lm_ctx *c = arg;
    struct lm_rec_pending *p = &c->rec_pending;
    p->rc = trc_op_record_linked(c->trace, &p->op, p->same_as);
}

void lm_rec_flush(lm_ctx *c)
{
    struct lm_rec_pending *p = &c->rec_pending;
    if (!p->on) {
        return;
    }
    if (p->posted) {
        lm_pool_post_wait(c->pool);
        c->rec_overlapped++;
    } else {
        record_pending(c);
    }
    p->on = p->posted = false;
    if (p->rc < 0 && !c->rec_err) {
        c->rec_err = p->rc;
    }
}

static int64_t tensor_bytes(const struct trc_tensor *t)
{
    int64_t n = t->known ? t->n_known : 1;
    for (int d = 0; !t->known && d < t->n_dims; d++) {
        n *= t->shape[d];
    }
    return n * (t->dtype == TRC_DTYPE_F16 || t->dtype == TRC_DTYPE_BF16 ? 2 : 4);
}

static bool overlaps(const void *a, int64_t na, const void *b, int64_t nb)
{
    const uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return na > 0 && nb > 0 && x < y + (uintptr_t)nb && y < x + (uintptr_t)na;
}

/* Whether the pending record reads anything in [out, out + n), c->scratch or c->rec_buf. */
static bool pending_reads(const lm_ctx *c, const void *out, int64_t n)
{
    const struct lm_rec_pending *p = &c->rec_pending;
    const int64_t ns = (int64_t)lm_pool_size(c->pool) * c->scratch_n * (int64_t)sizeof(float);
    for (int k = 0; k < p->op.n_tensors; k++) {
        const struct trc_tensor *t = &p->ts[k];
        const int64_t nt = p->same_as[k] ? 0 : tensor_bytes(t); /* a link reads nothing */
        if (overlaps(t->data, nt, out, n) || overlaps(t->data, nt, c->scratch, ns) ||
            overlaps(t->data, nt, c->rec_buf, c->rec_n * (int64_t)sizeof(float))) {
            return true;
        }
    }
    return false;
}

static void begin(lm_ctx *c, struct lm_rec *r, int64_t layer, const char *name, const char *kind,
                  int64_t pos0, int64_t n_pos);

void lm_rec_begin_w(lm_ctx *c, struct lm_rec *r, int64_t layer, const char *name, const char *kind,
                    int64_t pos0, int64_t n_pos, const void *out, size_t out_bytes)
{
    struct lm_rec_pending *p = &c->rec_pending;
    if (p->posted) { /* posted beside the op before, which recorded nothing (level none) */
        lm_rec_flush(c);
    }
    if (p->on) {
        if (c->rec_sync || pending_reads(c, out, (int64_t)out_bytes)) {
            lm_rec_flush(c);
        } else {
            p->posted = true;
            lm_pool_post(c->pool, record_pending, c);
        }
    }
    begin(c, r, layer, name, kind, pos0, n_pos);
}

void lm_rec_begin(lm_ctx *c, struct lm_rec *r, int64_t layer, const char *name, const char *kind,
                  int64_t pos0, int64_t n_pos)
{
    lm_rec_flush(c);
    begin(c, r, layer, name, kind, pos0, n_pos);
}

static void begin(lm_ctx *c, struct lm_rec *r, int64_t layer, const char *name, const char *kind,
                  int64_t pos0, int64_t n_pos)
{
    r->level = TRC_LEVEL_NONE;
    if ((!c->trace && !c->on_op) || c->rec_err) {
        return;
    }
    op_name(r->name, sizeof r->name, layer, name);
    r->level = c->trace ? trc_writer_level(c->trace, r->name, c->n_steps) : TRC_LEVEL_FULL;
    if (c->on_op && r->level == TRC_LEVEL_NONE) {
        r->level = TRC_LEVEL_STATS; /* the observer sees every op */
    }
    r->kind = kind;
    r->layer = (int)layer;
    r->pos0 = pos0;
    r->n_pos = n_pos;
    r->t0 = lm__now_ns();
}

static struct trc_tensor tensor2(const char *role, int dtype, const void *data, int64_t a,
                                 int64_t b)
{
    struct trc_tensor t = {role, (enum trc_dtype)dtype, 2, {a, b, 0, 0}, data, NULL, 0};
    return t;
}

static struct trc_tensor tensor3(const char *role, const float *data, int64_t a, int64_t b,
                                 int64_t d)
{
    struct trc_tensor t = {role, TRC_DTYPE_F32, 3, {a, b, d, 0}, data, NULL, 0};
    return t;
}

/*
 * Which earlier tensor of the step an input is, from src/forward.c: the output ("out") of op
 * `src` of the same block (dl 0) or of the previous one (dl -1; block 0 reads tok_embd's). Only
 * buffers that nothing rewrites in between are listed: xn holds attn_norm's output until
 * ffn_norm overwrites it, after attn_v and before ffn_gate. Where forward.c changes the data
 * anyway (the last block keeps only the last row of attn_out and x when n > 1) the sizes differ
 * and the tracer falls back to the data; trc_writer_check_links verifies all of it in the tests.
 */
static const struct {
    const char *op, *role, *src;
    int dl;
} links[] = {
    {"attn_norm", "in0", "l_out", -1}, {"attn_q", "in0", "attn_norm", 0},
    {"attn_k", "in0", "attn_norm", 0}, {"attn_v", "in0", "attn_norm", 0},
    {"rope_q", "in0", "attn_q", 0},    {"rope_k", "in0", "attn_k", 0},
    {"cache_k", "out", "rope_k", 0},   {"cache_v", "out", "attn_v", 0},
    {"kq", "in0", "rope_q", 0},        {"kq_softmax", "in0", "kq", 0},
    {"kqv", "in0", "kq_softmax", 0},   {"attn_out", "in0", "kqv", 0},
    {"ffn_inp", "in0", "attn_out", 0}, {"ffn_inp", "in1", "l_out", -1},
    {"ffn_norm", "in0", "ffn_inp", 0}, {"ffn_gate", "in0", "ffn_norm", 0},
    {"ffn_up", "in0", "ffn_norm", 0},  {"ffn_act", "in0", "ffn_gate", 0},
    {"ffn_act", "in1", "ffn_up", 0},   {"ffn_out", "in0", "ffn_act", 0},
    {"l_out", "in0", "ffn_out", 0},    {"l_out", "in1", "ffn_inp", 0},
};

/* The "OP/ROLE" tensor input `role` of op r is, into buf (64 bytes), or NULL. RoPE's pos, cos
 * and sin tables are computed once per step: every rope op uses blk.0.rope_q's. */
static const char *link_for(const lm_ctx *c, const struct lm_rec *r, const char *role, char *buf)
{
    const int64_t n_layer = c->m->hp.n_layer;
    const char *op = r->layer >= 0 ? strchr(r->name + 4, '.') + 1 : r->name; /* blk.N.<op> */
    if (strcmp(r->kind, "rope") == 0 && strcmp(role, "in0") != 0 && strcmp(role, "out") != 0) {
        if (r->layer == 0 && strcmp(op, "rope_q") == 0) {
            return NULL;
        }
        struct sb b = sb_init(buf, 64);
        sb_str(&b, "blk.0.rope_q/");
        sb_str(&b, role);
        return buf;
    }
    if (strcmp(role, "in0") == 0 && strcmp(op, "output") == 0) {
        return "output_norm/out";
    }
    if (strcmp(role, "in0") == 0 && strcmp(op, "output_norm") == 0) {
        if (n_layer == 0) {
            return "tok_embd/out";
        }
        op_name(buf, 64, n_layer - 1, "l_out/out");
        return buf;
    }
    for (size_t i = 0; r->layer >= 0 && i < sizeof links / sizeof links[0]; i++) {
        /* first bytes first: a strcmp per entry was 40 calls per op */
        if (links[i].op[0] == op[0] && links[i].op[1] == op[1] && strcmp(links[i].op, op) == 0 &&
            strcmp(links[i].role, role) == 0) {
            int64_t l = r->layer + links[i].dl;
            if (l < 0) {
                return "tok_embd/out";
            }
            op_name(buf, 64, l, links[i].src);
            struct sb b = {buf + strlen(buf), buf + 63};
            sb_str(&b, "/out");
            return buf;
        }
    }
    return NULL;
}

static void emit(lm_ctx *c, struct lm_rec *r, const struct trc_tensor *ts, int n_ts,
                 const char *weight, const char *params)
{
    struct trc_weight w = {"weight", weight};
    struct trc_op op = {
        r->name, r->kind, r->layer,           r->pos0,       r->n_pos, params, lm__now_ns() - r->t0,
        ts,      n_ts,    weight ? &w : NULL, weight ? 1 : 0};
    if (c->on_op) {
        c->on_op(c->on_op_user, c->n_steps, &op);
    }
    if (!c->trace) {
        return;
    }
    lm_rec_flush(c); /* the op before: recorded, or waited for */
    struct lm_rec_pending *p = &c->rec_pending;
    if (n_ts > 5) { /* not an op of forward.c */
        int rc = trc_op_record_linked(c->trace, &op, NULL);
        c->rec_err = rc < 0 && !c->rec_err ? rc : c->rec_err;
        return;
    }
    memcpy(p->name, r->name, sizeof p->name);
    struct sb b = sb_init(p->params, sizeof p->params);
    sb_str(&b, params ? params : "");
    for (int k = 0; k < n_ts; k++) {
        p->ts[k] = ts[k];
        p->same_as[k] = link_for(c, r, ts[k].role, p->links[k]);
    }
    p->w = w;
    p->op = op;
    p->op.name = p->name;
    p->op.params_json = params ? p->params : NULL;
    p->op.tensors = p->ts;
    p->op.weights = weight ? &p->w : NULL;
    p->on = true;
    p->posted = false;
}

void lm_rec_embd(lm_ctx *c, struct lm_rec *r, const int32_t *tokens, const float *out, int64_t n)
{
    if (r->level == TRC_LEVEL_NONE) {
        return;
    }
    struct trc_tensor ts[2] = {{"in0", TRC_DTYPE_I32, 1, {n, 0, 0, 0}, tokens, NULL, 0},
                               tensor2("out", TRC_DTYPE_F32, out, n, c->m->hp.n_embd)};
    emit(c, r, ts, 2, c->m->tok_embd.name, NULL);
}

void lm_rec_norm(lm_ctx *c, struct lm_rec *r, const char *wname, const float *in, const float *out,
                 int64_t n)
{
    char params[64];
    if (r->level == TRC_LEVEL_NONE) {
        return;
    }
    const int64_t e = c->m->hp.n_embd;
    struct trc_tensor ts[2] = {tensor2("in0", TRC_DTYPE_F32, in, n, e),
                               tensor2("out", TRC_DTYPE_F32, out, n, e)};
    struct sb b = sb_init(params, sizeof params);
    sb_str(&b, "{\"eps\":");
    sb_str(&b, g9(c, G9_EPS, (double)c->rms_eps));
    sb_str(&b, "}");
    emit(c, r, ts, 2, wname, params);
}

void lm_rec_matmul(lm_ctx *c, struct lm_rec *r, const struct lm_weight *w, const float *in,
                   const float *out, int64_t n)
{
    char params[64];
    if (r->level == TRC_LEVEL_NONE) {
        return;
    }
    struct trc_tensor ts[2] = {tensor2("in0", TRC_DTYPE_F32, in, n, w->k),
                               tensor2("out", TRC_DTYPE_F32, out, n, w->m)};
    struct sb b = sb_init(params, sizeof params);
    sb_str(&b, "{\"weight_type\":\"");
    sb_str(&b, lm_type_name(w->type));
    sb_str(&b, c->faults.qk_permute && (strstr(r->name, "attn_q") || strstr(r->name, "attn_k"))
                   ? "\",\"qk_permute\":true}"
                   : "\"}");
    emit(c, r, ts, 2, w->name, params);
}

void lm_rec_rope(lm_ctx *c, struct lm_rec *r, const float *in, const float *out, int64_t n,
                 int64_t n_heads)
{
    char params[160];
    if (r->level == TRC_LEVEL_NONE) {
        return;
    }
    const struct lm_hparams *hp = &c->m->hp;
    const int64_t half = hp->n_rot / 2;
    struct trc_tensor ts[5] = {
        tensor3("in0", in, n, n_heads, hp->head_dim),
        tensor3("out", out, n, n_heads, hp->head_dim),
        {"pos", TRC_DTYPE_I32, 1, {n, 0, 0, 0}, c->pos, NULL, 0},
        tensor2("cos", TRC_DTYPE_F32, c->cos, n, half),
        tensor2("sin", TRC_DTYPE_F32, c->sin, n, half),
    };
    struct sb b = sb_init(params, sizeof params);
    sb_str(&b, "{\"theta\":");
    sb_str(&b, g9(c, G9_THETA, (double)c->rope_theta));
    sb_str(&b, ",\"freq_scale\":");
    sb_str(&b, g9(c, G9_FREQ_SCALE, (double)hp->rope_freq_scale));
    sb_str(&b, c->rope_mode == LM_ROPE_NEOX ? ",\"mode\":\"neox\",\"n_rot\":"
                                            : ",\"mode\":\"norm\",\"n_rot\":");
    sb_i64(&b, hp->n_rot);
    sb_str(&b, ",\"pos_offset\":");
    sb_i64(&b, c->faults.pos_offset);
    sb_str(&b, "}");
    emit(c, r, ts, 5, NULL, params);
}

void lm_rec_cache(lm_ctx *c, struct lm_rec *r, const float *rows, int64_t n, int64_t width)
{
    char params[64];
    if (r->level == TRC_LEVEL_NONE) {
        return;
    }
    struct trc_tensor t = tensor2("out", TRC_DTYPE_F32, rows, n, width);
    if (c->kv_type == LM_TYPE_F16) {
        uint16_t *h = (uint16_t *)c->rec_buf;
        for (int64_t i = 0; i < n * width; i++) {
            h[i] = lm_f32_to_f16(rows[i]);
        }
        t = tensor2("out", TRC_DTYPE_F16, h, n, width);
    }
    struct sb b = sb_init(params, sizeof params);
    sb_str(&b, "{\"cell0\":");
    sb_i64(&b, r->pos0);
    sb_str(&b, c->kv_type == LM_TYPE_F16 ? ",\"kv_type\":\"f16\"}" : ",\"kv_type\":\"f32\"}");
    emit(c, r, &t, 1, NULL, params);
}

void lm_rec_scores(lm_ctx *c, struct lm_rec *r, const float *q, const float *kq, int64_t n,
                   int64_t n_kv)
{
    char params[160];
    if (r->level == TRC_LEVEL_NONE) {
        return;
    }
    const struct lm_hparams *hp = &c->m->hp;
    struct trc_tensor ts[2] = {tensor3("in0", q, n, hp->n_head, hp->head_dim),
                               tensor3("out", kq, hp->n_head, n, n_kv)};
    struct sb b = sb_init(params, sizeof params);
    sb_str(&b, "{\"scale\":");
    sb_str(&b, g9(c, G9_SCALE, (double)(1.0f / sqrtf((float)hp->head_dim))));
    sb_str(&b, ",\"n_kv\":");
    sb_i64(&b, n_kv);
    sb_str(&b, c->kv_type == LM_TYPE_F16 ? ",\"kv_type\":\"f16\"" : ",\"kv_type\":\"f32\"");
    sb_str(&b, c->faults.gqa_tile ? ",\"gqa\":\"tile\",\"k\":\"cache\"}"
                                  : ",\"gqa\":\"group\",\"k\":\"cache\"}");
    emit(c, r, ts, 2, NULL, params);
}

void lm_rec_softmax(lm_ctx *c, struct lm_rec *r, const float *kq, const float *sm, int64_t n,
                    int64_t n_kv)
{
    if (r->level == TRC_LEVEL_NONE) {
        return;
    }
    const int64_t h = c->m->hp.n_head;
    struct trc_tensor ts[2] = {tensor3("in0", kq, h, n, n_kv), tensor3("out", sm, h, n, n_kv)};
    emit(c, r, ts, 2, NULL, c->faults.softmax_f16 ? "{\"f16_accum\":true}" : "{}");
}

void lm_rec_context(lm_ctx *c, struct lm_rec *r, const float *sm, const float *kqv, int64_t n,
                    int64_t n_kv, int64_t width)
{
    char params[96];
    if (r->level == TRC_LEVEL_NONE) {
        return;
    }
    const int64_t h = c->m->hp.n_head;
    struct trc_tensor ts[2] = {tensor3("in0", sm, h, n, n_kv),
                               tensor2("out", TRC_DTYPE_F32, kqv, n, width)};
    struct sb b = sb_init(params, sizeof params);
    sb_str(&b, "{\"n_kv\":");
    sb_i64(&b, n_kv);
    sb_str(&b, c->faults.gqa_tile ? ",\"v\":\"cache\",\"gqa\":\"tile\"}"
                                  : ",\"v\":\"cache\",\"gqa\":\"group\"}");
    emit(c, r, ts, 2, NULL, params);
}

void lm_rec_add(lm_ctx *c, struct lm_rec *r, const float *a, const float *b, const float *out,
                int64_t n, int64_t width)
{
    if (r->level == TRC_LEVEL_NONE) {
        return;
    }
    struct trc_tensor ts[3] = {tensor2("in0", TRC_DTYPE_F32, a, n, width),
                               tensor2("in1", TRC_DTYPE_F32, b, n, width),
                               tensor2("out", TRC_DTYPE_F32, out, n, width)};
    emit(c, r, ts, 3, NULL, NULL);
}

int lm_rec_status(lm_ctx *c)
{
    lm_rec_flush(c);
    return c->rec_err;
}
