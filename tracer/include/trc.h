/*
 * trc.h - the public API of lltrace's tracer: record every op of an inference engine into one
 * compressed SQLite trace file, and read it back.
 *
 * Any engine can use it (ours is one user): open a writer, describe the run, then for each
 * decode call begin a step, record ops with their named tensors, and end the step (the step is
 * committed atomically: a crash loses at most the step in progress). The trace format is
 * defined in schema/trace.sql. This header names no SQLite or zstd type.
 *
 * Errors: functions return 0 or a negative TRC_E* code; detail is available from
 * trc_writer_errmsg / trc_reader_errmsg (owned by the handle, valid until the next call on it).
 * Constructors take (errbuf, errlen). Handles are not thread-safe: use each from one thread.
 */
#ifndef TRC_H
#define TRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRC_ERRBUF_SIZE 256

#define TRC_ERRNO_MAP(X)                                                                           \
    X(EIO, -1, "input/output error")                                                               \
    X(EFORMAT, -2, "not a valid trace")                                                            \
    X(ENOMEM, -3, "out of memory")                                                                 \
    X(ENOTFOUND, -4, "not found")                                                              \
    X(EINVAL, -5, "invalid argument")                                                              \
    X(EVERSION, -6, "unsupported trace schema version")                                            \
    X(ECORRUPT, -7, "corrupt tensor data")                                                         \
    X(EEXIST, -8, "file exists")                                                                   \
    X(EBUSY, -9, "trace is in use")                                                                \
    X(ESQL, -10, "SQL error")

enum trc_errno {
#define TRC_X_(name, val, text) TRC_##name = val,
    TRC_ERRNO_MAP(TRC_X_)
#undef TRC_X_
};

const char *trc_strerror(int code);

enum trc_dtype {
    TRC_DTYPE_F32 = 0,
    TRC_DTYPE_F16 = 1,
    TRC_DTYPE_BF16 = 2,
    TRC_DTYPE_I32 = 3,
    TRC_DTYPE_COUNT
};

/* How much of an op is stored: nothing, stats only (min/max/mean/rms/nan/inf), or full data. */
enum trc_level {
    TRC_LEVEL_NONE = 0,
    TRC_LEVEL_STATS = 1,
    TRC_LEVEL_FULL = 2,
    TRC_LEVEL_COUNT
};

/* A tensor handed to the tracer. Shapes are row-major, numpy order: shape[0] is the outermost
 * dimension, shape[n_dims-1] the contiguous one (for activations, rows are positions). */
struct trc_tensor {
    const char *role;     /* "in0", "in1", "out", "pos", "cos", "sin", ... */
    enum trc_dtype dtype;
    int n_dims;           /* 1..4 */
    int64_t shape[4];
    const void *data;     /* copied by trc_op_record before it returns */
    /* Partial tensors (imports of printed dumps): NULL when data holds the whole tensor; else
     * data holds n_known elements whose flat row-major indices are known[0..n_known-1]. */
    const int64_t *known;
    int64_t n_known;
};

/* A weight used by an op, referenced by its GGUF tensor name (never copied). */
struct trc_weight {
    const char *role; /* "weight" */
    const char *name; /* e.g. "blk.0.attn_q.weight" */
};

struct trc_op {
    const char *name;        /* canonical name, e.g. "blk.0.rope_q" (DESIGN.md) */
    const char *kind;        /* rms_norm, matmul, rope, attn_scores, softmax, attn_ctx, add, ... */
    int layer;               /* -1 when the op belongs to no layer */
    int64_t pos0;            /* first absolute position covered by the op's rows */
    int64_t n_pos;           /* number of positions (rows) */
    const char *params_json; /* {"eps":1e-5,...}, or NULL */
    int64_t elapsed_ns;      /* time the engine spent in the op, or -1 */
    const struct trc_tensor *tensors;
    int n_tensors;
    const struct trc_weight *weights;
    int n_weights;
};

/* ---- writer ------------------------------------------------------------------------------------ */

typedef struct trc_writer trc_writer;

struct trc_writer_opts {
    bool overwrite;   /* replace an existing file (otherwise TRC_EEXIST) */
    int queue_mb;     /* bound on tensor bytes waiting for compression; 0 = default (256) */
    int zstd_level;   /* 0 = default (3) */
    bool synchronous; /* compress on the caller's thread (no worker); default false */
};

/* Creates a new trace file (opts may be NULL). */
int trc_writer_open(const char *path, const struct trc_writer_opts *opts, trc_writer **out,
                    char *errbuf, size_t errlen);
/* Flushes, writes the end marker of an open run as "complete" unless ended, and closes.
 * Returns the first error seen, if any. Accepts NULL. */
int trc_writer_close(trc_writer *w);
const char *trc_writer_errmsg(const trc_writer *w);

/* Recording rules, applied in order, later ones win: "LEVEL[:PATTERN]" with LEVEL none|stats|
 * full and PATTERN a glob over canonical names ("blk.0.*", "*rope*") or a step condition
 * ("step>8", "step=0", "step<4"). With no rule, everything is recorded in full. */
int trc_writer_add_rule(trc_writer *w, const char *rule);
/* The level that applies to an op name at a step: engines call this first and skip building
 * tensors for TRC_LEVEL_NONE. Cheap. */
enum trc_level trc_writer_level(trc_writer *w, const char *name, int64_t step);

/* Runs. Between begin and the first step, describe it with set_*: keys are documented in
 * schema/trace.sql (model_path, model_sha256, n_layer, rope_theta, ...); unknown keys are kept
 * too. */
int trc_run_begin(trc_writer *w, const char *source, int64_t *run_id);
int trc_run_set_str(trc_writer *w, const char *key, const char *value);
int trc_run_set_i64(trc_writer *w, const char *key, int64_t value);
int trc_run_set_f64(trc_writer *w, const char *key, double value);
/* status: "complete" (or "error"); a run never ended reads as crashed. */
int trc_run_end(trc_writer *w, const char *status);

/* Tokens: prompt tokens (prob NaN) and each sampled token with its probability and logit. */
int trc_token_add(trc_writer *w, int64_t index, int32_t id, const char *piece, bool is_prompt,
                  bool is_bos, float prob, float logit);

/* Steps: one per decode call; step 0 is the prompt batch. end_step commits the step. */
int trc_step_begin(trc_writer *w, int64_t step, int64_t pos0, int64_t n_tokens);
int trc_step_end(trc_writer *w, int64_t elapsed_ns);

/* Records one op of the current step. Tensor data are copied before return (the level decides
 * whether full data or only stats are kept). Ops get their execution order from call order. */
int trc_op_record(trc_writer *w, const struct trc_op *op);

#ifdef __cplusplus
}
#endif
#endif
