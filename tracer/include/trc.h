/*
 * trc.h - the public API of lltrace's tracer: record every op of an inference engine into one
 * compressed SQLite trace file, and read it back.
 *
 * Any engine can use it (ours is one user): open a writer, describe the run, then for each
 * decode call begin a step, record ops with their named tensors, and end the step (the step is
 * committed atomically when trc_step_end returns). Durability: a killed process (SIGKILL,
 * abort, crash) loses at most the step in progress; an OS crash or power loss may also lose the
 * last committed steps (SQLite WAL with synchronous=NORMAL), never the file's integrity. The
 * trace format is defined in schema/trace.sql. This header names no SQLite or zstd type.
 *
 * Errors: functions return 0 or a negative TRC_E* code; detail is available from
 * trc_writer_errmsg / trc_reader_errmsg (owned by the handle, valid until the next call on it).
 * Constructors take (errbuf, errlen). Handles are not thread-safe: use each from one thread
 * (trc_writer_help excepted).
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
    X(ENOTFOUND, -4, "not found")                                                                  \
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
enum trc_level { TRC_LEVEL_NONE = 0, TRC_LEVEL_STATS = 1, TRC_LEVEL_FULL = 2, TRC_LEVEL_COUNT };

/* A tensor handed to the tracer. Shapes are row-major, numpy order: shape[0] is the outermost
 * dimension, shape[n_dims-1] the contiguous one (for activations, rows are positions). */
struct trc_tensor {
    const char *role; /* "in0", "in1", "out", "pos", "cos", "sin", ... */
    enum trc_dtype dtype;
    int n_dims; /* 1..4 */
    int64_t shape[4];
    const void *data; /* copied by trc_op_record before it returns */
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

/* ---- writer ------------------------------------------------------------------------------------
 */

typedef struct trc_writer trc_writer;

struct trc_writer_opts {
    bool overwrite;   /* replace an existing file (otherwise TRC_EEXIST) */
    int queue_mb;     /* bound on tensor bytes waiting for compression; 0 = default (256) */
    int zstd_level;   /* 0 = default: one zstd frame per byte plane; planes that look random
                         (low mantissa bytes) as frames of raw blocks, the others with zstd's
                         fast matching (level -30, a small hash table) and Huffman-coded literals;
                         else a zstd   level (1..19, negative) for every plane */
    bool synchronous; /* compress on the caller's thread (no worker); default false */
    int page_size;    /* SQLite page size in bytes: 0 = default (65536), else a power of two
                         in 512..65536. Tensor data want large pages; a trace where no op is
                         recorded in full holds no data, and 8192 shrinks the bytes each step's
                         commit writes (lltrace run does so with --record stats, and asks for
                         32768 when only some ops are recorded in full) */
};

/* Creates a new trace file (opts may be NULL). The first call registers a SQLite VFS named
 * "lltrace-walbuf" in the process (never as the default; the writer's own connection uses it to
 * write a commit's WAL frames at once), which an engine that uses SQLite itself may see. */
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

/* Tokens: prompt tokens (prob NaN) and each sampled token with its probability and logit. A
 * token added while a step is open is committed with that step (lltrace run adds the token it
 * samples from a step's logits before ending the step); one added between steps is committed
 * when the next step begins or the run ends. */
int trc_token_add(trc_writer *w, int64_t index, int32_t id, const char *piece, bool is_prompt,
                  bool is_bos, float prob, float logit);

/* Steps: one per decode call; step 0 is the prompt batch. end_step commits the step. */
int trc_step_begin(trc_writer *w, int64_t step, int64_t pos0, int64_t n_tokens);
int trc_step_end(trc_writer *w, int64_t elapsed_ns);

/* Records one op of the current step. The tensors are dealt with before return: at level full
 * their data are copied (the writer thread hashes and compresses the copy), at level stats the
 * hash and stats are computed on the caller's thread and nothing is copied. Ops get their
 * execution order from call order. */
int trc_op_record(trc_writer *w, const struct trc_op *op);

/*
 * trc_op_record for engines that know where their inputs come from. same_as (NULL, or one entry
 * per tensor of op, each NULL or not) names, as "OP/ROLE" (e.g. "blk.0.attn_norm/out"), a tensor
 * recorded earlier in the same step whose data are exactly this tensor's data: same dtype and
 * number of elements (the shape may differ). The tracer then neither copies nor hashes it: the op
 * gets the same stored tensor (when the shape differs, a new tensors row whose data_of names the
 * row holding the bytes: they are stored once). Readers see ordinary op_tensors rows. The
 * tensor's data must still be given: it is used when the link cannot be honoured (no such tensor
 * in this step, e.g. its op was at level none; recorded at a lower level than this op; another
 * dtype or size). The engine must only link when the bytes are truly unchanged:
 * trc_writer_check_links verifies it.
 */
int trc_op_record_linked(trc_writer *w, const struct trc_op *op, const char *const *same_as);
/* Debugging aid: with on, every linked tensor is also hashed and compared with the tensor it
 * names; a difference is a sticky TRC_EINVAL naming the op, the role and the link. Default off. */
int trc_writer_check_links(trc_writer *w, bool on);

/*
 * Lends the calling thread to the writer for a moment: if the oldest job not yet started is an
 * op that needs no compression (level stats, or every tensor linked), runs it on this thread
 * (its SQLite rows; a few microseconds) and returns 1; otherwise returns 0 at once. Never blocks
 * on the writer's threads. For engines whose worker threads spin while they wait for work
 * between two kernels: calling this there gets the rows of level-stats ops written during the
 * step, in time the engine leaves unused, instead of in trc_step_end's wait for the commit (the
 * writer's own threads run only on idle cores, and spinning cores are not idle). Any thread, any
 * time between trc_writer_open and trc_writer_close; jobs still run in order, one at a time.
 */
int trc_writer_help(trc_writer *w);

/* Waits until everything recorded so far is committed and copied from the WAL into the
 * database file: for benchmarks (`lltrace bench` times generation after the prompt's trace is
 * out) and before handing the file to another program. Returns 0 or the sticky error. */
int trc_writer_flush(trc_writer *w);
/* Waits until the writer's threads have nothing in progress: every job recorded so far has run
 * and no checkpoint pass is running or due. Unlike trc_writer_flush it starts no work. For
 * benchmarks that alternate traced and untraced work (`lltrace bench --trace`), so that what
 * tracing left running is counted as its cost. Returns 0 or the sticky error. */
int trc_writer_wait_idle(trc_writer *w);

/* Counters of a writer, for benchmarks (`lltrace bench --trace`). Consistent after
 * trc_step_end; in between they lag behind the queue. */
struct trc_writer_stats {
    int64_t n_ops;        /* ops recorded (level stats or full) */
    int64_t n_tensors;    /* tensors recorded */
    int64_t n_dedup;      /* of which stored once: identical to one already stored, or linked */
    int64_t raw_bytes;    /* raw bytes of the tensors recorded at level full (linked included) */
    int64_t stored_bytes; /* compressed bytes written for them */
    int64_t worker_ns;    /* CPU time of the writer thread: hashing, stats, compressing and
                             SQLite (at level stats the caller computes hash and stats, see
                             record_ns, and engine threads write most rows, see help_ns) */
    int64_t wait_ns;      /* time the caller spent blocked (queue full, trc_step_end),
                             including the step's last jobs it runs itself in trc_step_end */
    int64_t record_ns;    /* time spent in trc_op_record, by whichever thread called it:
                             checks, links, hash and stats at level stats, copies at level
                             full */
    int64_t n_linked;     /* tensors stored through a link (trc_op_record_linked): no copy, no
                             hash; those sharing the linked row also count in n_dedup */
    int64_t ckpt_ns;      /* CPU time of the checkpoint thread (copies from the WAL into the
                             file); 0 when the writer is synchronous */
    int64_t compress_ns;  /* CPU time of the compression thread (hash, stats and codec of the
                             copies at level full, ahead of the writer thread); 0 when
                             synchronous */
    int64_t n_helped;     /* jobs run by threads lent through trc_writer_help */
    int64_t help_ns;      /* their time in those jobs (wall clock: the lent thread is running) */
};
int trc_writer_get_stats(trc_writer *w, struct trc_writer_stats *out);

/* Version of the trace format this library writes and reads (schema/trace.sql, meta table). */
#define TRC_SCHEMA_VERSION 4

/* ---- reader ------------------------------------------------------------------------------- */

/*
 * A trace opened read-only and defensively: the file may come from anyone. SQLite is opened with
 * SQLITE_OPEN_READONLY, SQLITE_DBCONFIG_DEFENSIVE on, trusted_schema off, tight limits (1 GiB
 * strings/blobs, 100 KB statements, 10 attached traces) and query_only; tensor blobs are
 * size-capped by their shape and verified against their hash before anything is returned.
 */
typedef struct trc_reader trc_reader;

/* Opens a trace for reading. Errors: TRC_EIO (cannot open), TRC_EFORMAT ("<path>: not an lltrace
 * trace (no meta table)"), TRC_EVERSION ("<path>: trace schema version 7 is newer than this
 * lltrace supports (1)"). The tensor SQL functions are registered on its connection. */
int trc_reader_open(const char *path, trc_reader **out, char *errbuf, size_t errlen);
/* Closes the reader; cursors must be closed first. Accepts NULL. */
void trc_reader_close(trc_reader *r);
const char *trc_reader_errmsg(const trc_reader *r);
/* The path the reader was opened with (borrowed, valid until close). */
const char *trc_reader_path(const trc_reader *r);

/* Attaches another trace read-only under schema `name` (letters, digits, '_'), after the same
 * checks as trc_reader_open, so SQL can join the two: SELECT ... FROM name.ops. Tensor SQL
 * functions then accept 'name.<id>' for its tensors. */
int trc_reader_attach(trc_reader *r, const char *name, const char *path);

/* The reader's SQLite connection, as `sqlite3 *` (the header names no SQLite type): read-only,
 * defensive, tensor functions registered. Borrowed: valid until trc_reader_close; do not close it,
 * do not change its configuration. Statements prepared on it must be finalized before close. */
void *trc_reader_sql_handle(trc_reader *r);

/* A run. Strings are borrowed from the cursor: valid until its next call or close; NULL when
 * unknown. Numbers are -1 (or NaN) when unknown. */
struct trc_run_info {
    int64_t id;
    const char *source;
    const char *status; /* "complete", "error", "crashed" (no end marker) or "running" (a
                           writer still holds the trace) */
    const char *started_at, *ended_at;
    const char *model_path, *model_sha256, *arch;
    int64_t n_layer, n_embd, n_head, n_head_kv, head_dim, n_rot, n_ff, n_vocab, n_ctx;
    double rope_theta, rope_freq_scale, rms_eps;
    const char *rope_mode, *weight_type, *kv_type;
    const char *prompt, *chat_template, *rendered_prompt;
    double temp, top_p;
    int64_t top_k, seed, n_threads;
    const char *faults, *build_version, *build_commit, *build_compiler, *build_flags, *simd;
    const char *record_rules; /* JSON array */
    int64_t n_steps;          /* completed steps */
    int64_t last_step;        /* last completed step, -1 when none */
};

struct trc_step_info {
    int64_t run_id, step, pos0, n_tokens;
    int64_t elapsed_ns; /* -1 when not measured */
    int64_t n_ops;
};

struct trc_op_info {
    int64_t id, run_id, step, seq;
    int layer; /* -1 when none */
    const char *kind, *name;
    int64_t pos0, n_pos;
    const char *params_json; /* NULL when none */
    int64_t elapsed_ns;      /* -1 when not measured */
    enum trc_level level;
};

/* Iteration: open a cursor, call the matching next until it returns 0 (end); a row gives 1,
 * an error a negative code (message on the reader). Close every cursor (NULL is fine). */
typedef struct trc_cursor trc_cursor;
int trc_reader_runs(trc_reader *r, trc_cursor **out);
int trc_reader_steps(trc_reader *r, int64_t run_id, trc_cursor **out);
/* Ops of a run in (step, seq) order; step -1 = all steps. */
int trc_reader_ops(trc_reader *r, int64_t run_id, int64_t step, trc_cursor **out);
int trc_cursor_next_run(trc_cursor *c, struct trc_run_info *out);
int trc_cursor_next_step(trc_cursor *c, struct trc_step_info *out);
int trc_cursor_next_op(trc_cursor *c, struct trc_op_info *out);
void trc_cursor_close(trc_cursor *c);

/* One op by id (strings borrowed: valid until the next call on the reader). TRC_ENOTFOUND. */
int trc_reader_op(trc_reader *r, int64_t op_id, struct trc_op_info *out);

/* A stored tensor's header: no decompression. */
struct trc_tensor_info {
    int64_t id;
    enum trc_dtype dtype;
    int n_dims;
    int64_t shape[4];
    int64_t n_elems;      /* product of shape */
    int64_t n_stored;     /* elements held: n_elems, or n_known for a partial tensor */
    int64_t nbytes;       /* raw bytes of the stored elements: n_stored * element size */
    int64_t stored_bytes; /* compressed size, 0 when only stats were recorded or data_of */
    int64_t data_of;      /* > 0: the data are stored once, in that tensor's row (the same
                             bytes under another shape); 0 otherwise */
    bool has_data;        /* false: recorded at level stats */
    bool partial;
    char hash[17];              /* lt64 of the raw bytes, hex */
    double min, max, mean, rms; /* over finite elements; NaN when none */
    int64_t n_nan, n_inf;
};

/* The tensor an op holds in a role ("out", "in0", "cos", ...): TRC_ENOTFOUND if none. */
int trc_reader_op_tensor(trc_reader *r, int64_t op_id, const char *role, int64_t *tensor_id);
int trc_reader_tensor_info(trc_reader *r, int64_t tensor_id, struct trc_tensor_info *out);
/*
 * The tensor's data, decompressed and verified (declared size fits the shape, zstd frame and
 * checksum valid, lt64 of the bytes equals the stored hash; else TRC_ECORRUPT naming the tensor).
 * _raw copies info.nbytes bytes in the tensor's own dtype; _f32 converts info.n_stored elements to
 * float. For a partial tensor these are the known elements, and trc_reader_tensor_known gives
 * their flat row-major indices (n_stored of them). cap is the destination size in bytes / elements
 * / indices: too small gives TRC_EINVAL. A stats-only tensor gives TRC_ENOTFOUND.
 */
int trc_reader_tensor_raw(trc_reader *r, int64_t tensor_id, void *dst, size_t cap);
int trc_reader_tensor_f32(trc_reader *r, int64_t tensor_id, float *dst, int64_t cap);
int trc_reader_tensor_known(trc_reader *r, int64_t tensor_id, int64_t *dst, int64_t cap);

/* ---- SQL ---------------------------------------------------------------------------------- */

/* Registers the tensor SQL functions (t_shape, t_stat, t_at, t_slice, t_maxabs, t_nmse, t_cos,
 * t_ulp, t_equal, t_topk, t_dot) on a connection the caller owns; db is a `sqlite3 *`. The
 * functions read the `tensors` table of that connection's main or attached schemas. Returns 0 or
 * TRC_ESQL. The reader and the loadable extension (lltrace_sqlext.so) call it. */
int trc_sql_register(void *db);
/* The functions' documentation with a worked example each (`lltrace sql --help-functions`).
 * Static text. */
const char *trc_sql_functions_help(void);

#ifdef __cplusplus
}
#endif
#endif
