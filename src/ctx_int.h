/*
 * Internal layout of an inference context (KV cache, activation buffers, thread pool, tracer
 * hook), shared by ctx.c, forward.c and record.c. Every buffer is sized at creation for
 * n_ubatch tokens and n_ctx cells; shapes are in the comments, row-major.
 */
#ifndef LM_CTX_INT_H
#define LM_CTX_INT_H

#include "model_int.h"
#include "trc.h"

struct lm_ctx {
    lm_model *m;
    struct lm_faults faults;
    int64_t n_ctx;    /* cells, a multiple of 256 */
    int64_t n_ubatch; /* max tokens per forward pass */
    int kv_type;      /* LM_TYPE_F32 or LM_TYPE_F16 */
    float rms_eps, rope_theta;
    int rope_mode;
    lm_pool *pool;
    struct trc_writer *trace;
    void (*on_op)(void *user, int64_t step, const struct trc_op *op);
    void *on_op_user;
    int (*on_logits)(void *user, const float *logits);
    void *on_logits_user;

    void *k_cache; /* (n_layer, n_ctx, n_head_kv*head_dim) f32 or f16 */
    void *v_cache; /* (n_layer, n_head_kv*head_dim, n_ctx): transposed, f32 or f16 */

    float *x;                   /* (n_ubatch, n_embd) residual stream */
    float *xn;                  /* (n_ubatch, n_embd) normed */
    float *q, *qr;              /* (n_ubatch, n_head*head_dim) before / after RoPE */
    float *k, *kr;              /* (n_ubatch, n_head_kv*head_dim) before / after RoPE */
    float *v;                   /* (n_ubatch, n_head_kv*head_dim) */
    float *kq, *sm;             /* (n_head, n_tokens, n_kv) scores, probabilities */
    float *kqv;                 /* (n_ubatch, n_head*head_dim) */
    float *attn_out;            /* (n_ubatch, n_embd) */
    float *ffn_inp;             /* (n_ubatch, n_embd) */
    float *gate, *up, *act_out; /* (n_ubatch, n_ff) */
    float *ffn_out;             /* (n_ubatch, n_embd) */
    float *logits;              /* (n_vocab) */
    void *act;                  /* (n_ubatch, converted row of max(n_embd, n_ff, q_dim)) */
    int32_t *pos;               /* (n_ubatch) positions used by RoPE */
    float *cos, *sin;           /* (n_ubatch, n_rot/2) */
    float *scratch;             /* (n_threads, scratch_n) per-thread rows */
    int64_t scratch_n;
    float *rec_buf; /* (rec_n) staging for recorded tensors that need reshaping */
    int64_t rec_n;
    struct { /* record.c: "%.9g" of eps, theta, freq_scale and scale, formatted once */
        double v;
        bool ok;
        char s[32];
    } rec_g9[4];

    int64_t n_past, n_steps;
    int rec_err; /* first tracer error, as a TRC_E code */
    /* record.c: an op recorded beside the next op (lm_rec_begin_w); everything
     * trc_op_record_linked reads but the tensor data is copied here */
    struct lm_rec_pending {
        bool on, posted; /* posted: handed to the pool (lm_pool_post), not waited for yet */
        int rc;          /* trc_op_record_linked's, from whichever thread ran it */
        struct trc_op op;
        struct trc_tensor ts[5];
        struct trc_weight w;
        const char *same_as[5];
        char name[48], params[160], links[5][64];
    } rec_pending;
    bool rec_sync; /* LLTRACE_RECORD_SYNC set: every op is recorded before the next one runs */
    int64_t rec_overlapped; /* ops recorded beside the next op (posted to the pool) */
    char errmsg[512];
};

/* The state of one op being recorded (record.c). */
struct lm_rec {
    char name[48];
    const char *kind;
    int layer;
    int64_t pos0, n_pos;
    int level; /* enum trc_level */
    int64_t t0;
};

int lm__forward(lm_ctx *c, const int32_t *tokens, int64_t n, int64_t pos0);

/* record.c: each lm_rec_begin is followed by one lm_rec_<kind> after the op ran. lm_rec_begin
 * first records the op before it, if that was left pending; lm_rec_begin_w instead lets it be
 * recorded beside this op, which must write nothing outside [out, out + out_bytes), c->scratch
 * and c->act (see lm_pool_post). */
void lm_rec_begin_w(lm_ctx *c, struct lm_rec *r, int64_t layer, const char *name, const char *kind,
                    int64_t pos0, int64_t n_pos, const void *out, size_t out_bytes);
/* Records the pending op now, or waits for it: before anything writes a buffer it may read. */
void lm_rec_flush(lm_ctx *c);
void lm_rec_begin(lm_ctx *c, struct lm_rec *r, int64_t layer, const char *name, const char *kind,
                  int64_t pos0, int64_t n_pos);
void lm_rec_embd(lm_ctx *c, struct lm_rec *r, const int32_t *tokens, const float *out, int64_t n);
void lm_rec_norm(lm_ctx *c, struct lm_rec *r, const char *wname, const float *in, const float *out,
                 int64_t n);
void lm_rec_matmul(lm_ctx *c, struct lm_rec *r, const struct lm_weight *w, const float *in,
                   const float *out, int64_t n);
void lm_rec_rope(lm_ctx *c, struct lm_rec *r, const float *in, const float *out, int64_t n,
                 int64_t n_heads);
void lm_rec_cache(lm_ctx *c, struct lm_rec *r, const float *rows, int64_t n, int64_t width);
void lm_rec_scores(lm_ctx *c, struct lm_rec *r, const float *q, const float *kq, int64_t n,
                   int64_t n_kv);
void lm_rec_softmax(lm_ctx *c, struct lm_rec *r, const float *kq, const float *sm, int64_t n,
                    int64_t n_kv);
void lm_rec_context(lm_ctx *c, struct lm_rec *r, const float *sm, const float *kqv, int64_t n,
                    int64_t n_kv, int64_t width);
void lm_rec_add(lm_ctx *c, struct lm_rec *r, const float *a, const float *b, const float *out,
                int64_t n, int64_t width);
int lm_rec_status(lm_ctx *c);
int64_t lm__now_ns(void);

#endif
