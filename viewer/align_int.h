/*
 * align_int.h - two traces side by side: loading a trace's ops, decoding its tensors through a
 * bounded cache, and lining up the rows of an op with the other trace's rows for the same
 * canonical name and ABSOLUTE POSITION.
 *
 * Rows of activations are positions, so a prompt batch of 20 rows lines up with 20 decode
 * steps of a token-by-token run, and the last layer's "last row only" ops line up with the
 * other trace's row at that position. The position axis is 0, except for attention scores and
 * probabilities (kq, kq_softmax, and kqv's input), shaped (n_head, n_tokens, n_kv), where it is
 * axis 1; there each head contributes the cells both traces hold. Imported dumps (llama.cpp) may
 * hold partial tensors (known elements only, printed at 4 decimals: their op parameter
 * "print_atol" is added to atol), unscaled scores ("scaled":false: multiplied by 1/sqrt(head
 * dim) here) and unmasked, padded score rows (only cells <= position are compared).
 *
 * Used by diff, replay (--against, --run) and the hints. Not thread-safe: one vw_trace per
 * thread.
 */
#ifndef VW_ALIGN_INT_H
#define VW_ALIGN_INT_H

#include "compare_int.h"
#include "trc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One op of a loaded trace. Strings are owned by the trace. */
struct vw_top {
    int64_t id, step, seq, pos0, n_pos;
    int layer;
    enum trc_level level;
    char *name, *kind, *params; /* params may be NULL */
};

/* A decoded tensor (cache entry). data holds n elements as f32 (i32 converted); known is NULL
 * for a full tensor, else marks the n elements held (the others are NaN in data). */
struct vw_tens {
    int64_t id;
    enum trc_dtype dtype;
    int n_dims;
    int64_t shape[4];
    int64_t n;
    float *data;
    uint8_t *known;
    char hash[17];
    bool partial;
    int64_t raw_bytes; /* stored raw bytes (what "MB of tensor data" counts) */
    uint64_t last_use;
    int next; /* next cache position in the same hash chain, -1 */
};

#define VW_CACHE_SLOTS 4096

struct vw_trace {
    trc_reader *r;
    char *path;
    struct trc_run_info run; /* strings owned by the trace */
    struct vw_top *ops;      /* (n_ops) in (step, seq) order */
    int64_t n_ops;
    int64_t *by_name; /* (n_ops) op indices sorted by (name, pos0, step) */
    int32_t *tok_ids; /* (n_tok) token ids in sequence order */
    char **tok_pieces;
    uint8_t *tok_prompt;
    int64_t n_tok;
    int64_t n_steps;
    /* tensor cache */
    struct vw_tens **cache;   /* entries are heap-allocated: pointers stay put */
    int slot[VW_CACHE_SLOTS]; /* tensor id % slots -> first cache position, or -1 */
    int n_cache, cap_cache;
    int64_t cache_bytes, cache_limit;
    uint64_t clock;
    int64_t bytes_decoded; /* raw bytes decoded so far */
    bool in_txn;           /* a read transaction is open on the reader */
    char err[512];
};

/* Opens a trace read-only and loads its first run's ops and tokens. 0, or -1 with "<path>:
 * <reason>" in err. Release with vw_trace_close (accepts a zeroed struct). */
int vw_trace_open(struct vw_trace *t, const char *path, char *err, size_t errlen);
void vw_trace_close(struct vw_trace *t);

/* Index of the op named `name` whose rows cover absolute position pos, or -1. */
int64_t vw_trace_find(const struct vw_trace *t, const char *name, int64_t pos);
/* Index of the op named `name` in step `step` (-1: the first step holding it), or -1. */
int64_t vw_trace_find_step(const struct vw_trace *t, const char *name, int64_t step);

/* The decoded tensor of op `op` (index) in `role` ("out", "in0", ...): borrowed from the cache,
 * valid until the second next vw_trace_tensor call on t (the two most recently used entries
 * are never evicted), so two tensors of one trace can be held at once. TRC_ENOTFOUND when the op
 * has no such tensor or it was recorded as stats only; other TRC_E* codes with t->err filled. */
int vw_trace_tensor(struct vw_trace *t, int64_t op, const char *role, const struct vw_tens **out);
/* Header only (no decompression): hash, shape, dtype, stats. */
int vw_trace_tensor_info(struct vw_trace *t, int64_t op, const char *role,
                         struct trc_tensor_info *out);

/* The position axis of a tensor of an op kind in a role: 1 for attention scores/probabilities
 * (kq out, kq_softmax in0/out, kqv in0), else 0. */
int vw_pos_axis(const char *kind, const char *role);

/* Small readers of the flat JSON objects in ops.params: 0, or -1 when the key is absent. */
int vw_json_get_num(const char *json, const char *key, double *out);
int vw_json_get_str(const char *json, const char *key, char *buf, size_t cap);
/* True when "key":true is present. */
bool vw_json_get_bool(const char *json, const char *key);

/* Copies the row of absolute position pos of `name`'s tensor in `role` into dst: all outer
 * blocks (axis 1: head after head, each n_kv cells of the op that holds the row), as stored
 * (imports are neither scaled nor masked here). *n gets the length. 0, TRC_ENOTFOUND (no op
 * or no data holds the row), TRC_EINVAL (cap too small), or another TRC_E* code. */
int vw_trace_row(struct vw_trace *t, const char *name, const char *role, int64_t pos, float *dst,
                 int64_t cap, int64_t *n);

/* ---- comparing one op's rows ------------------------------------------------------------- */

/* Replaces the data of one op of the candidate trace (a replayed output, with that op's
 * recorded shape). */
struct vw_override {
    int64_t op;        /* op index in the candidate trace */
    const float *data; /* its full output, recorded shape */
};

/* The comparison of one role of one op over positions [p0, p1). Row/index conventions:
 * worst_pos is an absolute position, worst_within the element index inside the reference's row
 * (axis 1: head * n_kv_ref + cell). */
struct vw_opcmp {
    struct vw_cmp c;
    int64_t n_rows;      /* positions compared */
    int64_t n_missing;   /* positions the candidate does not hold */
    bool partial;        /* some elements were unknown (imports) or only stats were compared */
    bool stats_only;     /* one side holds stats only: min/max/mean/rms compared */
    bool shape_mismatch; /* rows of different widths: not compared */
    bool hash_equal;     /* decided by content hashes, without decoding */
    double atol;         /* the absolute tolerance used (print precision included) */
    int64_t fail_pos;    /* first position with a failing element, -1 */
    int64_t worst_pos, worst_within;
    int64_t ref_op, cand_op; /* first ops involved (indices), -1 */
    int64_t bytes;           /* raw bytes of both sides compared */
};

/* Compares role `role` of the ops named `name` over positions [p0, p1): the reference's rows
 * (ref) against the candidate's (cand; b = ref in the metrics). over may be NULL. Returns 0, or
 * a negative TRC_E* code with the failing trace's err filled. */
int vw_align_compare(struct vw_trace *ref, struct vw_trace *cand, const char *name,
                     const char *role, int64_t p0, int64_t p1, const struct vw_override *over,
                     const struct vw_cmp_tol *tol, struct vw_opcmp *out);

/* Splits an element index inside a row into coordinates of the reference op's row shape
 * (without the position axis) as text, e.g. "[head 3, dim 17]" or "[head 1, cell 4]". */
void vw_fmt_within(const struct vw_trace *t, int64_t op, int64_t within, char *buf, size_t cap);

/* ---- diffing two traces ------------------------------------------------------------------- */

/* Where the first divergence comes from. */
enum vw_origin {
    VW_ORIGIN_UNKNOWN = 0, /* inputs not recorded (imports) */
    VW_ORIGIN_LOCAL,       /* inputs agree, output does not: the op itself differs */
    VW_ORIGIN_PROPAGATED,  /* an input already differs */
    VW_ORIGIN_TOKENS,      /* the token ids differ (tok_embd) */
    VW_ORIGIN_COUNT
};

#define VW_DIFF_MAX_INPUTS 6

struct vw_opdiff {
    struct vw_opcmp oc; /* role "out" over the reference op's positions */
    bool compared;      /* the candidate holds at least one of the rows */
    bool fail;
};

struct vw_diff_input {
    char role[8];
    bool known; /* both traces hold it */
    struct vw_opcmp oc;
};

struct vw_diff {
    struct vw_trace ref, cand; /* ref = A (the reference, b in the metrics), cand = B */
    struct vw_cmp_tol tol;
    struct vw_opdiff *ops; /* (ref.n_ops) */
    int64_t first_fail;    /* ref op index of the first divergence in (step, seq) order, -1 */
    int64_t first_diff;    /* first op not bit-identical (within tolerance or not), -1 */
    int64_t n_compared, n_identical, n_fail, n_partial, n_stats_only;
    int64_t n_ref_only;  /* reference ops the candidate does not hold at all */
    int64_t n_cand_only; /* candidate ops the reference does not hold at all */
    int64_t bytes;       /* raw tensor bytes compared (both sides; hash-equal tensors count) */
    double seconds;      /* time spent comparing (after loading the op lists) */
    /* the first divergence */
    enum vw_origin origin;
    struct vw_diff_input inputs[VW_DIFF_MAX_INPUTS];
    int n_inputs;
};

/* Opens both traces and compares every op of the reference with the candidate's rows at the
 * same positions, then analyses the first divergence's inputs. 0, or -1 with err filled.
 * Release with vw_diff_release (also after a failure). */
int vw_diff_run(struct vw_diff *d, const char *ref_path, const char *cand_path,
                const struct vw_cmp_tol *tol, char *err, size_t errlen);
void vw_diff_release(struct vw_diff *d);
/* "local", "propagated", "tokens differ", "unknown". */
const char *vw_origin_name(enum vw_origin o);

#endif
