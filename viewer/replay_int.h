/*
 * replay_int.h - re-executing one recorded op from its recorded inputs with the engine's own
 * kernels (lm.h "ops"), optionally under changed semantics (a variant): RoPE pairing, theta,
 * position offset, RMS eps, GQA mapping, f16 softmax, KV type, Q/K permute.
 *
 * Inputs come from the trace: the op's in0/in1 (and pos) tensors; for attention, K and V rows
 * gathered from the layer's cache_k / cache_v ops of this and earlier steps (rows = cells =
 * positions); for cache writes, the rope_k / attn_v output of the same step. Weights (matmul,
 * rms_norm, tok_embd) come from the model the trace names, verified by SHA-256 (or from another
 * path given by the caller), opened only when an op needs it. Replaying a trace recorded by the
 * same build reproduces every op bit for bit.
 */
#ifndef VW_REPLAY_INT_H
#define VW_REPLAY_INT_H

#include "align_int.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A replay returned without output because the op cannot be replayed (kind unknown, inputs or
 * weights not recorded): the reason is in vw_replay_errmsg. */
#define VW_REPLAY_SKIP 1

/* Changed semantics; every field "as recorded" after vw_variant_init. */
struct vw_variant {
    int rope_mode;       /* -1, LM_ROPE_NORM or LM_ROPE_NEOX */
    double theta;        /* 0: recorded */
    double eps;          /* 0: recorded */
    int gqa_tile;        /* -1, 0 (group), 1 (tile) */
    int softmax_f16;     /* -1, 0, 1 */
    int kv_type;         /* -1, LM_TYPE_F32, LM_TYPE_F16 */
    int qk_permute;      /* -1, 0, 1 */
    bool has_pos_offset; /* pos_offset replaces the recorded one */
    int64_t pos_offset;
    char label[96]; /* the spec, or "as recorded" */
};

void vw_variant_init(struct vw_variant *v);
/* Parses "KEY=VALUE[,KEY=VALUE...]" with keys rope=norm|neox, theta=X, eps=X, gqa=group|tile,
 * softmax=f32|f16, kv=f32|f16, qk-permute=0|1, pos-offset=N. 0, or -1 with err filled. */
int vw_variant_parse(struct vw_variant *v, const char *spec, char *err, size_t errlen);
/* The keys of a variant that change an op of this kind ("rope", "gqa", ...): true when v
 * changes something kind uses. */
bool vw_variant_applies(const struct vw_variant *v, const char *kind);

typedef struct vw_replay vw_replay;

/* A replayer over trace t (borrowed; must outlive it). model_path NULL: the trace's model. */
int vw_replay_create(struct vw_trace *t, const char *model_path, vw_replay **out, char *err,
                     size_t errlen);
void vw_replay_destroy(vw_replay *rp);
const char *vw_replay_errmsg(const vw_replay *rp);

/* Re-executes op `op` (index into t->ops) under v (NULL: as recorded). *out gets the output in
 * the recorded out tensor's shape (malloc'd: free with free()), *n its length. Returns 0,
 * VW_REPLAY_SKIP, or a negative code (message in vw_replay_errmsg). */
int vw_replay_op(vw_replay *rp, int64_t op, const struct vw_variant *v, float **out, int64_t *n);

#endif
