/*
 * attrib_int.h - where a token gets its logit, from a trace: the recorded activations `lltrace
 * explain` reads (struct vw_xrun), the direct logit attribution (attrib.c) and the logit lens
 * (lens.c). Shared by explain, its tests, and any command that wants the same numbers.
 *
 * The math. The residual stream of the explained position is a sum of recorded vectors,
 *     x = e + sum_l (a_l + f_l)           e: tok_embd out, a_l: blk.l.attn_out, f_l: blk.l.ffn_out
 * and the logit of token T is  z_T = W_out[T] . (g * s * x)  with g = output_norm.weight and
 * s = 1 / sqrt(mean(x^2) + eps) the RMSNorm scale. Freezing s at the value the recorded x gives
 * makes z_T linear in x, so it splits exactly into one term per component:
 *     z_T = d . e + sum_l (d . a_l + d . f_l),     d = s * g * W_out[T]            (n_embd)
 * and per head, since a_l = W_o kqv_l and kqv_l is the heads' outputs side by side,
 *     d . a_l = sum_h (W_o^T d)[head h's columns] . kqv_l[head h's columns].
 * With a second token T2, W_out[T] becomes W_out[T] - W_out[T2]: the same split of the logit
 * difference z_T - z_T2. The residual (recorded logit minus the sum) is float rounding plus,
 * for quantized weights, the kernels' quantization of activations (the split itself uses the
 * dequantized weights).
 *
 * The logit lens applies the final RMSNorm (its own scale this time) and the output matrix, with
 * the engine's kernels, to the residual after the embedding and after each layer's attention
 * (ffn_inp) and FFN (l_out); at the final residual it reproduces the recorded logits bit for bit.
 *
 * As in llama.cpp, the last layer's FFN and the output run only on a step's last position: for
 * any other position of a prompt step the last point is the residual after the last layer's
 * attention (computed as l_out of the layer before plus attn_out), and the logit attributed is
 * the lens logit there. Nothing here prints; missing data are described in the structs.
 */
#ifndef VW_ATTRIB_INT_H
#define VW_ATTRIB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm.h"
#include "trc.h"

/* ---- recorded activations of one run at one (step, position) ---------------------------------
 */

/* The rows explain reads: global slots first, then VW_XL_COUNT per layer (vw_xslot_layer). */
enum vw_xslot_global {
    VW_XS_EMBD = 0,   /* tok_embd out: residual after the embedding (n_embd) */
    VW_XS_FINAL = 1,  /* output_norm in0: the final residual x (n_embd) */
    VW_XS_LOGITS = 2, /* output out (n_vocab) */
    VW_XS_COUNT
};

enum vw_xslot_layer_kind {
    VW_XL_ATTN = 0,     /* blk.l.attn_out out: the attention's contribution (n_embd) */
    VW_XL_FFN = 1,      /* blk.l.ffn_out out: the FFN's contribution (n_embd) */
    VW_XL_KQV = 2,      /* blk.l.kqv out: heads before W_o (n_head * head_dim) */
    VW_XL_RES_ATTN = 3, /* blk.l.ffn_inp out: residual after the attention (n_embd) */
    VW_XL_RES_FFN = 4,  /* blk.l.l_out out: residual after the FFN (n_embd) */
    VW_XL_COUNT
};

struct vw_xrun {
    char *path;                                         /* the trace (copy) */
    int64_t run_id;                                     /* the first run of the trace */
    char *source, *model_path, *model_sha256, *faults;  /* runs columns (copies) or NULL */
    int64_t n_layer, n_embd, n_head, head_dim, n_vocab; /* from the model */
    double eps;                    /* output_norm's eps (params), else runs.rms_eps */
    int64_t step, pos;             /* explained step and absolute position */
    int64_t step_pos0, step_n;     /* the step's first position and token count */
    int64_t first_step, last_step; /* completed steps of the run */
    bool last_pos;                 /* pos is the step's last position */
    int64_t n_slots;               /* VW_XS_COUNT + VW_XL_COUNT * n_layer */
    float **row;                   /* (n_slots) rows, NULL when the trace does not hold them */
    int64_t *width;                /* (n_slots) expected row widths */
    char **why; /* (n_slots) why a row is missing ("op 'blk.1.kqv' not in step 0"), or NULL */
    /* The token that follows pos in the run (sampled after the step, or the next prompt
     * token), from the tokens table: id -1 when unknown; prob/logit NaN when not recorded. */
    int32_t next_id;
    double next_prob, next_logit;
};

/* Slot index of the per-layer row `kind` (enum vw_xslot_layer_kind) of layer l. */
int64_t vw_xslot_layer(int64_t l, int kind);
/* Canonical op name and tensor role a slot is read from, e.g. "blk.3.kqv" / "out". */
void vw_xslot_name(const struct vw_xrun *x, int64_t slot, char *buf, size_t cap, const char **role);

/*
 * Reads what explain needs from the first run of an open trace: step `step`, position pos
 * (-1: the step's last position). The model's hyper-parameters give the row widths (the run's
 * own, when recorded, must agree). Rows the trace does not hold are left NULL with a reason (a
 * stats-only op, an op not recorded, a partial tensor of an import). Returns 0, or -1 with a
 * message in err for what makes the request impossible: no run, a step out of range ("step 40
 * out of range: the trace has steps 0..31"), a position outside the step, a corrupt tensor,
 * mismatching hyper-parameters. Release with vw_xrun_release (also after a failure).
 */
int vw_xrun_load(trc_reader *r, const struct lm_hparams *hp, int64_t step, int64_t pos,
                 struct vw_xrun *x, char *err, size_t errlen);
void vw_xrun_release(struct vw_xrun *x);

/* True when the analyses need slot s at x's position: the residual slots are not needed (they
 * can be derived), nor is the last layer's FFN side away from a step's last position. */
bool vw_xslot_needed(const struct vw_xrun *x, int64_t slot);
/* The number of missing rows among the slots attribution and the lens use, and the first
 * reason ("op 'blk.0.attn_out' holds only stats (recorded with --record stats)"), NULL if none. */
int64_t vw_xrun_missing(const struct vw_xrun *x, const char **first);

/* ---- model rows ------------------------------------------------------------------------------ */

/* Dequantizes row `row` of the model's GGUF tensor `name` (n = its row length) into dst.
 * "output.weight" falls back to "token_embd.weight" for tied models. 0 or a negative LM_E*. */
int vw_model_row(const lm_model *m, const char *name, int64_t row, float *dst, int64_t n);

/* ---- direct logit attribution (attrib.c) ------------------------------------------------------
 */

struct vw_attr {
    int64_t n_layer, n_head;
    int32_t tok, tok2;    /* the token explained, and the one it is compared with (-1: none) */
    bool at_final;        /* attributed at the final residual; else after the last attention */
    double scale;         /* s frozen at the recorded residual; NaN when it is unknown */
    double target;        /* z_T (- z_T2) there: recorded logits, else the lens; NaN unknown */
    bool target_recorded; /* target read from the recorded output op */
    double sum;           /* sum of the computed components */
    double residual;      /* target - sum (NaN when either is unknown) */
    int64_t n_comp;       /* 1 + 2 n_layer: [0] embedding, [1+2l] attention l, [2+2l] FFN l */
    double *comp;         /* (n_comp) contributions; NaN when not computable */
    double *head;         /* (n_layer, n_head) per-head attention contributions; NaN unknown */
    int64_t n_unknown;    /* components (heads excluded) that could not be computed */
};

/* Splits the logit of tok (minus that of tok2 when tok2 >= 0) at x's position into
 * contributions. Components whose rows are missing are NaN (n_unknown counts them). Returns 0,
 * or -1 with err (out of memory, a weight the model lacks). Release with vw_attr_release. */
int vw_attr_compute(const lm_model *m, const struct vw_xrun *x, int32_t tok, int32_t tok2,
                    struct vw_attr *out, char *err, size_t errlen);
void vw_attr_release(struct vw_attr *a);
/* Printable name of component i: "embedding", "layer 3 attention", "layer 3 ffn". */
void vw_attr_comp_name(int64_t i, char *buf, size_t cap);

/* ---- logit lens (lens.c) ------------------------------------------------------------------------
 */

#define VW_LENS_TOPK_MAX 64

enum vw_lens_kind {
    VW_LENS_EMBD = 0, /* residual after the embedding */
    VW_LENS_ATTN = 1, /* after layer l's attention (blk.l.ffn_inp) */
    VW_LENS_FFN = 2,  /* after layer l's FFN (blk.l.l_out; the final residual for the last) */
    VW_LENS_KIND_COUNT
};

struct vw_lens_point {
    int layer; /* -1 for the embedding */
    enum vw_lens_kind kind;
    bool known;           /* false: the residual is not available here (why) */
    bool derived;         /* residual computed as previous residual + component */
    bool from_logits;     /* final point without a residual: the recorded logits (imports) */
    const char *why;      /* borrowed from the xrun; NULL when known */
    double logit, logit2; /* z_T and z_T2 (NaN without a second token) */
    double prob;          /* softmax probability of T */
    int64_t rank;         /* 1 = top-1 */
    int n_top;
    int32_t top[VW_LENS_TOPK_MAX]; /* top-K ids, best first */
    float top_logit[VW_LENS_TOPK_MAX];
    double top_prob[VW_LENS_TOPK_MAX];
};

struct vw_lens {
    int64_t n_points; /* 1 + 2 n_layer: embedding, then attention and FFN of each layer */
    struct vw_lens_point *p;
    int k;
    int64_t first_top1, first_topk; /* first point where T is top-1 / in the top-K, or -1 */
    /* max |lens - recorded| over the logits at the final residual; NaN when not both known */
    double final_vs_recorded;
};

/* The logits (n_vocab) of a residual x (n_embd) through the final RMSNorm (the model's
 * output_norm.weight, eps) and the output matrix, with the engine's kernels on one row (the
 * forward pass's bits). 0 or a negative LM_E*. */
int vw_lens_logits(const lm_model *m, const float *x, float eps, float *logits);
/* Runs the lens at every point of x for tok (and tok2 >= 0), keeping the top k (1..64). Returns
 * 0 or -1 with err. Release with vw_lens_release. */
int vw_lens_compute(const lm_model *m, const struct vw_xrun *x, int32_t tok, int32_t tok2, int k,
                    struct vw_lens *out, char *err, size_t errlen);
void vw_lens_release(struct vw_lens *l);
/* The residual at lens point i (n_embd floats into dst): recorded, or derived from the point
 * before plus the component (*derived set). Returns 0, or -1 when unavailable (*why set). */
int vw_lens_resid(const struct vw_xrun *x, int64_t i, float *dst, bool *derived, const char **why);

#endif
