/*
 * trc_writer_int.h - the writer's private state, shared by trc_writer.c (the API side: checks,
 * copies, the bounded job queue and the worker thread) and trc_wdb.c (the database side: every
 * SQL statement the writer runs, executed on the worker thread, or inline when synchronous).
 */
#ifndef TRC_WRITER_INT_H
#define TRC_WRITER_INT_H

#include <pthread.h>
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

/* A tensor of a queued op: data and known point into the job's own allocation. */
struct trc__jtensor {
    const char *role;
    enum trc_dtype dtype;
    int n_dims;
    int64_t shape[4];
    int64_t n_elems;
    int64_t n_stored;
    const void *data;
    const int64_t *known; /* NULL unless partial */
};

struct trc__jop {
    int64_t id, run_id, step, seq, layer, pos0, n_pos, elapsed_ns;
    enum trc_level level;
    const char *name, *kind, *params;
    int n_tensors, n_weights;
    struct trc__jtensor *t;
    const char **wrole, **wname;
};

struct trc__job {
    struct trc__job *next;
    enum trc__job_kind kind;
    uint64_t seqno; /* submission order, 1, 2, ... */
    size_t bytes;   /* tensor bytes held, counted against the queue bound */
    int64_t i[5];
    double f, g;
    int vtype; /* RUN_SET: 0 text s[2], 1 integer i[1], 2 real f */
    const char *s[3];
    struct trc__jop *op;
};

struct trc_writer {
    char *path;
    int lock_fd;
    sqlite3 *db;
    /* queue (mu protects everything in this block) */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_space, cv_done;
    pthread_t thread;
    bool has_thread, stop;
    struct trc__job *head, *tail;
    size_t queued_bytes, cap_bytes;
    uint64_t submitted, done;
    int werr;                   /* sticky worker error */
    char wmsg[TRC__MSG_SIZE];   /* its message */
    struct trc_writer_stats st; /* counters (worker side under mu) */
    /* caller side */
    char msg[TRC__MSG_SIZE];
    int64_t run_id; /* open run, 0 when none */
    int64_t n_runs, n_ops;
    bool in_step, any_step;
    int64_t step, last_step, step_pos0, step_n_tokens, seq;
    char **rules;
    int n_rules;
    /* worker side */
    int zstd_level;
    bool in_tx;
    struct trc__codec_scratch cs;
    sqlite3_stmt *st_op, *st_tfind, *st_tins, *st_tupd, *st_optensor, *st_opweight, *st_token,
        *st_step;
};

/* Database side (trc_wdb.c). */
int trc__wdb_open(trc_writer *w, char *msg, size_t msglen);
int trc__wdb_job(trc_writer *w, const struct trc__job *job, char *msg, size_t msglen);
/* Commits what is pending, finalizes statements, leaves WAL mode (so the closed trace is one
 * self-contained file) and closes the connection. Returns the first error. */
int trc__wdb_close(trc_writer *w, char *msg, size_t msglen);
/* The column of runs a trc_run_set_* key names, with its SQL type ('T', 'I', 'R'), or NULL. */
const char *trc__run_column(const char *key, char *type);

#endif
