/*
 * trc_writer_int.h - the writer's private state, shared by trc_writer.c (the API side: checks,
 * the bounded job queue and the worker thread), trc_writer_op.c (ops into jobs: links, stats,
 * copies) and trc_wdb.c (the database side: every SQL statement the writer runs, executed on
 * the worker thread, or inline when synchronous).
 */
#ifndef TRC_WRITER_INT_H
#define TRC_WRITER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "trc_int.h"

enum trc__job_kind {
    TRC__JOB_RUN_BEGIN, /* i[0] run id; s[0] source; s[1] rules JSON */
    TRC__JOB_RUN_SET,   /* i[0] run id; s[0] key; s[1] column or NULL; vtype + s[2]/i[1]/f */
    TRC__JOB_RULES,     /* i[0] run id; s[0] rules JSON */
    TRC__JOB_RUN_END,   /* i[0] run id; s[0] status */
    TRC__JOB_TOKEN,     /* i[0] run, i[1] index, i[2] id, i[3] is_prompt, i[4] is_bos; s[0]; f, g */
    TRC__JOB_STEP_BEGIN, /* commits what came before the step */
    TRC__JOB_STEP_END,   /* i[0] run, i[1] step, i[2] pos0, i[3] n_tokens, i[4] elapsed_ns */
    TRC__JOB_STEP_ABORT, /* rolls the open step back (close with a step open) */
    TRC__JOB_SYNC,       /* commits anything pending */
    TRC__JOB_OP,         /* op */
};

/* A tensor of a queued op: data and known point into the job's own allocation. Each tensor of
 * a step has a slot (0, 1, ... in call order) through which later tensors link to it. */
struct trc__jtensor {
    const char *role;
    enum trc_dtype dtype;
    int n_dims;
    int64_t shape[4];
    int64_t n_elems;
    int64_t n_stored;
    const void *data;     /* the copy; NULL when linked, or when the caller computed the stats */
    const int64_t *known; /* NULL unless partial */
    int32_t slot;
    int32_t src;      /* linked: the slot of the tensor it is the same as; else -1 */
    const char *link; /* linked: its "OP/ROLE" (for messages) */
    bool same_shape;  /* linked with the same shape: shares the source's row */
    bool has_hash;    /* hash computed by the caller (level stats, or checked links) */
    bool has_stats;   /* st computed by the caller (level stats) or by the compressor */
    uint64_t hash;
    struct trc__stats st;
    uint8_t *blob; /* the codec's output made ahead by the compressor (malloc'd), or NULL */
    size_t blob_len;
};
struct trc__jop {
    int64_t id, run_id, step, seq, layer, pos0, n_pos, elapsed_ns;
    enum trc_level level;
    const char *name, *kind, *params;
    const char *weights; /* JSON object {"ROLE": "GGUF name", ...} (ops.weights), or NULL */
    int n_tensors;
    struct trc__jtensor *t;
};

/* The caller's list of the tensors recorded in the open step (trc_writer_op.c), in the order
 * they were registered, each under "OP/ROLE". A link almost always names one of the last few
 * tensors, so a lookup scans the keys' hashes from the newest back: it touches a few recent
 * cache lines, where a hash table costs a cache miss per probe (the engine's weights evict it
 * between two ops). A later tensor under the same name hides an earlier one. */
struct trc__link {
    uint32_t key; /* offset of the NUL-terminated "OP/ROLE" in keys */
    int32_t slot;
    int8_t level, dtype, n_dims;
    int64_t n_stored;
    int64_t shape[4];
};

struct trc__links {
    uint64_t *hash;      /* (cap) the hash of each entry's key */
    struct trc__link *e; /* (cap) */
    size_t cap, n;
    char *keys;
    size_t keys_len, keys_cap;
    int32_t n_slots;
};

/* The writer thread's view of a slot: the row it ended in, its hash, stats and data. */
struct trc__slot {
    int64_t id;
    uint64_t hash;
    int64_t data_id; /* the row holding its bytes: id, or the row named by its data_of; 0 when
                        it has no data (level stats) */
    struct trc__stats st;
};

/* The writer thread's map of stored tensors (trc_writer_dedupe.c). */
struct trc__dshape {
    uint64_t h;
    int dtype, n_dims;
    int64_t shape[4];
};

struct trc__dentry {
    uint64_t hash;   /* content hash */
    uint32_t shape;  /* interned (dtype, shape) */
    int64_t id;      /* row id; 0 = empty entry */
    int64_t data_id; /* the row holding its bytes (id, or its data_of); 0 when stats only */
};

struct trc__dedupe {
    struct trc__dentry *e; /* (cap), a power of two */
    size_t cap, n;
    struct trc__dshape *shapes; /* (n_shapes) */
    uint32_t *shape_slot;       /* (shape_cap) open addressing: index + 1, 0 = empty */
    size_t shape_cap;
    uint32_t n_shapes;
    bool stale; /* a rollback happened: the map may list rows that are gone */
};

/* Rows buffered for one multi-row INSERT (trc_writer_batch.c). A value is NULL, an integer
 * (i), a text (s when given; once buffered, at offset i of the batch's text buffer with its
 * length in d) or a real (d). */
#define TRC__BATCH 32
enum { TRC__BV_NULL, TRC__BV_INT, TRC__BV_TEXT, TRC__BV_REAL };
struct trc__bval {
    int type;
    int64_t i;
    const char *s;
    double d;
};

struct trc__batch {
    const char *table;
    int n_cols, n_rows;
    sqlite3_stmt *one, *many; /* INSERT of 1 and of TRC__BATCH rows */
    struct trc__bval *v;      /* (TRC__BATCH, n_cols) */
    char *text;
    size_t text_len, text_cap;
};

struct trc__job {
    struct trc__job *next;
    enum trc__job_kind kind;
    uint64_t seqno; /* submission order, 1, 2, ... */
    size_t bytes;   /* tensor bytes held, counted against the queue bound */
    /* Submitted without waking the worker: ops, a step's begin with nothing before it to commit,
     * a token and the end of a step, which a helper (trc_writer_help) or the caller waiting in
     * trc_step_end runs when it can (trc_writer.c) */
    bool quiet;
    bool spare; /* a block of TRC__JOB_SPARE bytes that trc__job_free recycles (op jobs) */
    int64_t i[5];
    double f, g;
    int vtype; /* RUN_SET: 0 text s[2], 1 integer i[1], 2 real f */
    const char *s[3];
    struct trc__jop *op;
};

/* Op jobs that fit are blocks of this size, recycled: the engine's thread takes them from
 * spare_caller, refilled at once from spare, onto which the thread that ran a job pushes it
 * (a lock-free stack that only one thread empties, with an exchange: no ABA). A helper used to
 * free() the job it ran while holding mu (run_taken), and the engine's trc__submit waited for
 * mu: 1500 cycles per submit at level stats (tinyllama), 300-500 with recycled blocks. */
#define TRC__JOB_SPARE 2048

/* Pages of 64 KiB by default (trc_writer_opts.page_size): tensors of a few KiB to a few hundred
 * KiB go through SQLite, the WAL and the checkpoint in few pages, and a table leaf holds three
 * compressed FFN activations (about 20 KiB each for tinyllama) where a 32 KiB leaf holds one:
 * in a 16-token tinyllama trace, 29% of the tensors table's leaf bytes were unused with 32 KiB
 * pages, 15% with 64 KiB, and the file was 83.4 MB against 72.9. At level full, in four rounds
 * of `lltrace bench --trace` taking turns with 32 KiB pages (session 14): 1.245x / 1.237x /
 * 1.260x / 1.220x against 1.350x / 1.315x / 1.297x / 1.278x. (An earlier session measured the
 * writer thread alone: 16 KiB pages 15-18 ms per token, 32 KiB 12.6-13.3, 64 KiB 11.5-12.9.)
 * Small pages suit a trace with little tensor data: a decode step's commit rewrites the last
 * leaf and the interior pages of each table, at level stats about 23 frames of 8 KiB (184 KiB)
 * instead of 12 of 32 KiB (384 KiB); lltrace run asks for 8 KiB when no op is recorded in full
 * and 32 KiB when only some are. Readers do not care: the page size is in the header. */
#define TRC__PAGE_SIZE 65536

struct trc_writer {
    char *path;
    int lock_fd;
    sqlite3 *db;
    /* queue (mu protects everything in this block) */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_space, cv_done;
    pthread_t thread;
    bool has_thread, stop, idle; /* idle: the worker waits on cv_work */
    struct trc__job *head, *tail;
    /* busy: a thread runs jobs on the database, the worker (a batch) or a helper (one job, in
     * trc_writer_help); busy_wait: the worker waits on cv_busy for a helper to finish. */
    bool busy, busy_wait;
    pthread_cond_t cv_busy;
    atomic_bool help_hint; /* a job a helper may take was queued since a helper found none */
    /* the compressor (trc_writer_prep.c): jobs go through its queue first when it runs */
    pthread_t prep_thread;
    pthread_cond_t cv_prep;
    bool has_prep, prep_stop, prep_idle;
    struct trc__job *p_head, *p_tail;
    _Atomic int64_t prep_ns; /* its CPU time */
    struct trc__codec_scratch pcs;
    size_t queued_bytes, cap_bytes;
    size_t pending_bytes, pending_jobs; /* submitted since the worker was last woken */
    uint64_t wait_seqno; /* the caller waits on cv_done until done reaches it (0: no) */
    size_t wait_space;   /* the caller waits on cv_space for room for this many bytes */
    uint64_t submitted, done;
    _Atomic int werr;           /* sticky worker error (read without mu on the fast path) */
    char wmsg[TRC__MSG_SIZE];   /* its message */
    struct trc_writer_stats st; /* counters (worker side under mu) */
    /* caller side */
    char msg[TRC__MSG_SIZE];
    int64_t run_id; /* open run, 0 when none */
    int64_t n_runs, n_ops;
    bool in_step, any_step;
    int64_t step, last_step, step_pos0, step_n_tokens, seq;
    uint64_t committed; /* seqno of the last STEP_END: all jobs up to it are committed */
    char **rules;
    int n_rules;
    bool check_links;
    struct trc__links links; /* tensors of the open step, by "OP/ROLE" */
    struct trc__job *spare_caller;
    _Atomic(struct trc__job *) spare; /* pushed by any thread, emptied by the caller */
    /* worker side */
    int page_size; /* set at open */
    int zstd_level;
    bool in_tx;
    int wal_pages;          /* pages in the WAL after the last commit (trc_wdb.c wal_hook) */
    struct trc__ckpt *ckpt; /* the checkpoint thread (trc_ckpt.c), when there is a writer thread */
    struct trc__codec_scratch cs;
    struct trc__slot *slots; /* (slots_cap) by slot of the current step */
    size_t slots_cap;
    struct trc__dedupe dd;       /* every full (not partial) tensor row of the file */
    struct trc_writer_stats wst; /* the worker's counters, copied into st after each job */
    char *schema_at_close;       /* the part of schema/trace.sql run by trc__wdb_close */
    sqlite3_stmt *st_tins, *st_tupd, *st_tborrow, *st_token, *st_step;
    struct trc__batch b_ops;
    char *ojs; /* ops.tensors of the op being written (trc_wdb.c), ojs_cap bytes */
    size_t ojs_cap;
    /* Tensor rows without data (level stats) wait in b_tensors like the rows above, so their
     * ids are the writer's: next_tensor_id, back to tx_tensor_id when a transaction rolls back.
     * The table starts empty (trc_writer_open only creates files). */
    struct trc__batch b_tensors;
    int64_t next_tensor_id, tx_tensor_id;
};

/* Queue and errors (trc_writer.c). trc__wfail formats the caller-side message and returns code;
 * trc__submit hands a malloc'd job to the worker (or runs it, synchronous) and returns its
 * sequence number; trc__sticky is the sticky worker error (message copied to w->msg). */
int64_t trc__now_ns(void);
/* The compressor stage (trc_writer_prep.c): a thread between trc__submit and the worker that
 * hashes and compresses the copied tensors of level-full ops, so that at the end of a step the
 * compression and the SQLite writes run on two cores. _start before the worker may receive
 * jobs; _stop drains it into the worker's queue. trc__forward appends jobs first..last to the
 * worker's queue and wakes it (mu held). trc__job_free frees the blobs made for a job and frees
 * the job, or recycles it (TRC__JOB_SPARE). */
int trc__prep_start(trc_writer *w, char *msg, size_t msglen);
void trc__prep_stop(trc_writer *w);
void trc__forward(trc_writer *w, struct trc__job *first, struct trc__job *last);
/* Waits (mu held) until the queue head..tail has jobs, and takes them all; NULL once *stop is set
 * and the queue is empty. *idle is true while it waits on cv. */
struct trc__job *trc__queue_take(trc_writer *w, struct trc__job **head, struct trc__job **tail,
                                 bool *idle, const bool *stop, pthread_cond_t *cv);
void trc__job_free(trc_writer *w, struct trc__job *job);
int64_t trc__cpu_ns(void); /* CPU time of the calling thread */
__attribute__((format(printf, 3, 4))) int trc__wfail(trc_writer *w, int code, const char *fmt, ...);
uint64_t trc__submit(trc_writer *w, struct trc__job *job);
int trc__sticky(trc_writer *w);

/* The step's link table (trc_writer_op.c): emptied at each trc_step_begin. */
void trc__links_reset(struct trc__links *t);
void trc__links_release(struct trc__links *t);

/* The dedupe map (trc_writer_dedupe.c): find gives 1 and the row, or 0; put adds or updates. */
int trc__dedupe_find(struct trc__dedupe *d, uint64_t hash, enum trc_dtype dt, int n_dims,
                     const int64_t *shape, int64_t *id, int64_t *data_id);
int trc__dedupe_put(struct trc__dedupe *d, uint64_t hash, enum trc_dtype dt, int n_dims,
                    const int64_t *shape, int64_t id, int64_t data_id);
void trc__dedupe_release(struct trc__dedupe *d);
/* Starts loading the entry find and put would probe: the map outgrows the caches, and the
 * engine's weights evict it between two steps, so each probe would miss. */
void trc__dedupe_prefetch(struct trc__dedupe *d, uint64_t hash, enum trc_dtype dt, int n_dims,
                          const int64_t *shape);

/* Batches (trc_writer_batch.c): add copies the row (and its texts) and inserts the batch when
 * it is full; flush inserts what is buffered; discard drops it (after a ROLLBACK). Errors are
 * TRC_EIO with "cannot write <table> rows: <reason>" in msg. */
int trc__batch_init(struct trc__batch *b, sqlite3 *db, const char *table, const char *cols,
                    int n_cols);
void trc__batch_release(struct trc__batch *b);
int trc__batch_add(struct trc__batch *b, sqlite3 *db, const struct trc__bval *row, char *msg,
                   size_t msglen);
int trc__batch_flush(struct trc__batch *b, sqlite3 *db, char *msg, size_t msglen);
void trc__batch_discard(struct trc__batch *b);

/* Database side (trc_wdb.c). */
int trc__wdb_open(trc_writer *w, char *msg, size_t msglen);
/* Prefetches what trc__wdb_job will look up for job (the next one in the batch). */
void trc__wdb_prefetch(trc_writer *w, const struct trc__job *job);
int trc__wdb_job(trc_writer *w, const struct trc__job *job, char *msg, size_t msglen);
/* After a step's commit has been acknowledged: hands the WAL to the checkpointer (or, without
 * one, checkpoints inline) once it has grown. Before a step's first write: lets SQLite start the
 * WAL over when it is large. */
void trc__wdb_maybe_checkpoint(trc_writer *w);
void trc__wdb_before_step(trc_writer *w);
/* Whether trc__wdb_before_step would return at once (no WAL restart to wait for). */
bool trc__wdb_before_step_is_quick(const trc_writer *w);
/* Starts the checkpoint thread (trc_writer_open, once the writer thread runs). */
int trc__wdb_start_ckpt(trc_writer *w, char *msg, size_t msglen);

/* trc_ckpt.c: the checkpoint thread. start opens its own connection to path (cache_fd: an open
 * descriptor of that file, whose cached pages each pass drops, or -1); poke reports the WAL's
 * size after a commit (a pass starts when it reaches threshold); drain waits until a pass has
 * covered every commit so far (returns false at once if one is running and !wait_busy); kick
 * asks for a pass without waiting; wait_idle waits while a pass runs or is due, starting none;
 * stop finishes the pass in progress and closes the connection. drop_cached drops the clean
 * cached pages of the file open as fd (nothing when fd < 0). */
struct trc__ckpt;
int trc__ckpt_start(struct trc__ckpt **out, const char *path, int64_t threshold, int cache_fd,
                    char *msg, size_t msglen);
void trc__drop_cached(int fd);
void trc__ckpt_poke(struct trc__ckpt *c, int64_t wal_bytes);
bool trc__ckpt_drain(struct trc__ckpt *c, bool wait_busy);
void trc__ckpt_kick(struct trc__ckpt *c);
void trc__ckpt_wait_idle(struct trc__ckpt *c);
void trc__ckpt_stop(struct trc__ckpt *c);
int64_t trc__ckpt_cpu_ns(struct trc__ckpt *c); /* CPU time of its thread so far */

/* The tracer's threads run as SCHED_IDLE: only when a core has nothing else to run. An engine
 * that keeps every core busy leaves them the gaps: its threads waiting at the end of an op, and
 * trc_step_end waiting for the commit. Under SCHED_BATCH (and at normal priority) the scheduler
 * gave them time slices in the middle of an op, and the op's end waited for the share of the
 * engine thread they displaced: `lltrace bench --trace` on tinyllama, 2 threads, twice in a row,
 * full 1.311x and 1.285x with SCHED_IDLE against 1.410x and 1.388x with SCHED_BATCH, although
 * the engine then waits ~10 ms per token for the commit instead of ~2 ms. They cannot starve: a
 * full queue and trc_step_end block the engine. trc__lower_priority sets it on the calling
 * thread (no privilege needed), or SCHED_BATCH where SCHED_IDLE is refused. */
void trc__lower_priority(void);
/* trc_vfs.c: the name of the writer's VFS (the default one, with a WAL file's writes gathered
 * into one per transaction), registered at the first call; NULL if SQLite refused it (the
 * writer then uses the default VFS). */
#define TRC__VFS_NAME "lltrace-walbuf"
const char *trc__vfs_name(void);
/* Commits what is pending, finalizes statements, leaves WAL mode (so the closed trace is one
 * self-contained file) and closes the connection. Returns the first error. */
int trc__wdb_close(trc_writer *w, char *msg, size_t msglen);
/* The column of runs a trc_run_set_* key names, with its SQL type ('T', 'I', 'R'), or NULL. */
const char *trc__run_column(const char *key, char *type);

#endif
