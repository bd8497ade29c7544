/*
 * Internal layout of a loaded model and an inference context, shared by model.c (loading),
 * forward.c (the forward pass) and record.c (tracing). Weights are pointers into the GGUF
 * mapping: nothing is copied at load time.
 */
#ifndef LM_MODEL_INT_H
#define LM_MODEL_INT_H

#include "lm.h"
#include "pool_int.h"

struct lm_weight {
    const char *name; /* GGUF tensor name (borrowed from the reader) */
    int type;         /* enum lm_type */
    int64_t k;        /* elements per row (ne[0]) */
    int64_t m;        /* rows (ne[1]) */
    const void *data; /* m rows of lm_type_row_bytes(type, k) */
};

struct lm_layer {
    struct lm_weight attn_norm; /* (n_embd) f32 */
    struct lm_weight wq;        /* (n_head*head_dim rows, n_embd) */
    struct lm_weight wk;        /* (n_head_kv*head_dim rows, n_embd) */
    struct lm_weight wv;        /* (n_head_kv*head_dim rows, n_embd) */
    struct lm_weight wo;        /* (n_embd rows, n_head*head_dim) */
    struct lm_weight ffn_norm;  /* (n_embd) f32 */
    struct lm_weight w_gate;    /* (n_ff rows, n_embd) */
    struct lm_weight w_up;      /* (n_ff rows, n_embd) */
    struct lm_weight w_down;    /* (n_embd rows, n_ff) */
};

struct lm_model {
    char *path;
    lm_gguf *gguf;
    lm_tok *tok;
    struct lm_hparams hp;
    struct lm_weight tok_embd; /* (n_vocab rows, n_embd) */
    struct lm_weight out_norm; /* (n_embd) */
    struct lm_weight output;   /* (n_vocab rows, n_embd); = tok_embd when tied */
    struct lm_layer *layers;   /* (n_layer) */
    char *chat_template;
    char sha256[65];
};

#endif
