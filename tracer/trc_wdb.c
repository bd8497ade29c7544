/*
 * trc_wdb.c - the writer's database side: creates the trace from the embedded schema, and turns
 * each queued job into rows. Runs on the worker thread (or inline in synchronous mode); it is
 * the only code that touches the writer's SQLite connection between open and close.
 * Transactions: one is opened lazily by the first write; STEP_BEGIN commits what precedes the
 * step (run metadata, tokens), STEP_END inserts the steps row and commits the whole step, so a
 * kill at any moment leaves exactly the completed steps. The part of the schema after the
 * at-close marker (indexes whose row-by-row upkeep would cost a random page write or an extra
 * b-tree insert per op) runs at close; dedupe meanwhile uses the in-memory map of
 * trc_writer_dedupe.c. The WAL is checkpointed by the checkpoint thread (trc_ckpt.c), started and
 * stopped here.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "build_info.h"
#include "trc_writer_int.h"

/* runs' columns settable by trc_run_set_*, with their type; '-' = written by the tracer. */
static const struct {
    const char *key;
    char type;
} run_cols[] = {
    {"id", '-'},
    {"source", '-'},
    {"status", '-'},
    {"started_at", '-'},
    {"ended_at", '-'},
    {"record_rules", '-'},
    {"model_path", 'T'},
    {"model_sha256", 'T'},
    {"arch", 'T'},
    {"n_layer", 'I'},
    {"n_embd", 'I'},
    {"n_head", 'I'},
    {"n_head_kv", 'I'},
    {"head_dim", 'I'},
    {"n_rot", 'I'},
    {"n_ff", 'I'},
    {"n_vocab", 'I'},
    {"n_ctx", 'I'},
    {"rope_theta", 'R'},
    {"rope_freq_scale", 'R'},
    {"rope_mode", 'T'},
    {"rms_eps", 'R'},
    {"weight_type", 'T'},
    {"kv_type", 'T'},
    {"prompt", 'T'},
    {"chat_template", 'T'},
    {"rendered_prompt", 'T'},
    {"temp", 'R'},
    {"top_k", 'I'},
    {"top_p", 'R'},
    {"seed", 'I'},
    {"n_threads", 'I'},
    {"faults", 'T'},
    {"build_version", 'T'},
    {"build_commit", 'T'},
    {"build_compiler", 'T'},
    {"build_flags", 'T'},
    {"simd", 'T'},
};

const char *trc__run_column(const char *key, char *type)
{
    for (size_t i = 0; i < sizeof run_cols / sizeof run_cols[0]; i++) {
        if (strcmp(run_cols[i].key, key) == 0) {
            *type = run_cols[i].type;
            return run_cols[i].key;
        }
    }
    return NULL;
}

static int sql_fail(trc_writer *w, const char *what, char *msg, size_t msglen)
{
    snprintf(msg, msglen, "%s: %s", what, w->db ? sqlite3_errmsg(w->db) : "no database");
    return TRC_EIO;
}

static int exec(trc_writer *w, const char *sql, char *msg, size_t msglen)
{
    if (sqlite3_exec(w->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        return sql_fail(w, sql, msg, msglen);
    }
    return 0;
}

/* Runs a prepared statement to completion and resets it. */
static int run(trc_writer *w, sqlite3_stmt *st, const char *what, char *msg, size_t msglen)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sql_fail(w, what, msg, msglen);
}

static int flush_rows(trc_writer *w, char *msg, size_t msglen)
{
    int rc = trc__batch_flush(&w->b_ops, w->db, msg, msglen);
    return rc < 0 ? rc : trc__batch_flush(&w->b_tensors, w->db, msg, msglen);
}

/* After a ROLLBACK: rows not yet inserted belong to the lost step; the map may list its rows. */
static void rolled_back(trc_writer *w)
{
    trc__batch_discard(&w->b_ops);
    trc__batch_discard(&w->b_tensors);
    w->next_tensor_id = w->tx_tensor_id;
    w->dd.stale = true;
}

static int begin_tx(trc_writer *w, char *msg, size_t msglen)
{
    if (w->in_tx) {
        return 0;
    }
    int rc = exec(w, "BEGIN", msg, msglen);
    w->in_tx = rc == 0;
    w->tx_tensor_id = w->next_tensor_id;
    return rc;
}

static int commit_tx(trc_writer *w, char *msg, size_t msglen)
{
    if (!w->in_tx) {
        return 0;
    }
    w->in_tx = false;
    char m[TRC__MSG_SIZE - 64] = "";
    if (flush_rows(w, m, sizeof m) < 0 ||
        sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(msg, msglen, "cannot commit: %s", m[0] ? m : sqlite3_errmsg(w->db));
        sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
        rolled_back(w);
        return TRC_EIO;
    }
    return 0;
}

static int wal_mode(void *arg, int n, char **val, char **col)
{
    (void)n;
    (void)col;
    *(int *)arg = val[0] && strcmp(val[0], "wal") == 0;
    return 0;
}

static int write_meta(trc_writer *w, char *msg, size_t msglen)
{
    char now[32];
    trc__now_iso(now);
    const char *kv[][2] = {
        {"tool", "lltrace"},
        {"tool_version", LT_VERSION},
        {"build_git", LT_GIT_DESCRIBE},
        {"build_type", LT_BUILD_TYPE},
        {"build_compiler", LT_COMPILER},
        {"build_flags", LT_CFLAGS},
        {"created_at", now},
        {"zstd_version", ZSTD_versionString()},
        {"sqlite_version", sqlite3_libversion()},
        {"hash", "lt64"},
    };
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(w->db, "INSERT INTO meta (key, value) VALUES (?1, ?2)", -1, &st, NULL) !=
        SQLITE_OK) {
        return sql_fail(w, "cannot write meta", msg, msglen);
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof kv / sizeof kv[0]; i++) {
        sqlite3_bind_text(st, 1, kv[i][0], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, kv[i][1], -1, SQLITE_STATIC);
        rc = run(w, st, "cannot write meta", msg, msglen);
    }
    sqlite3_finalize(st);
    return rc;
}

/* The columns of a tensor row without data, as b_tensors inserts them (tensor_row). */
#define TENSOR_COLS                                                                                \
    "id, dtype, shape, n_elems, nbytes, hash, min, max, mean, rms, n_nan, n_inf, data_of"
#define TENSOR_NCOLS 13

static int prepare_all(trc_writer *w, char *msg, size_t msglen)
{
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } q[] = {
        {&w->st_tins, "INSERT INTO tensors (dtype, shape, n_elems, nbytes, hash, codec, min, max, "
                      "mean, rms, n_nan, n_inf, partial, n_known, known, data, id) VALUES "
                      "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
        {&w->st_tupd, "UPDATE tensors SET codec = ?1, data = ?2 WHERE id = ?3"},
        {&w->st_tborrow, "UPDATE tensors SET data_of = ?1 WHERE id = ?2"},
        {&w->st_token, "INSERT OR REPLACE INTO tokens (run_id, idx, token_id, piece, is_prompt, "
                       "is_bos, prob, logit) VALUES (?,?,?,?,?,?,?,?)"},
        {&w->st_step, "INSERT INTO steps (run_id, step, pos0, n_tokens, elapsed_ns) VALUES "
                      "(?,?,?,?,?)"},
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        if (sqlite3_prepare_v3(w->db, q[i].sql, -1, SQLITE_PREPARE_PERSISTENT, q[i].st, NULL) !=
            SQLITE_OK) {
            return sql_fail(w, "cannot prepare the writer's statements", msg, msglen);
        }
    }
    if (trc__batch_init(&w->b_ops, w->db, "ops",
                        "id, run_id, step, seq, layer, kind, name, pos0, n_pos, params, "
                        "elapsed_ns, level, weights, tensors",
                        14) < 0 ||
        trc__batch_init(&w->b_tensors, w->db, "tensors", TENSOR_COLS, TENSOR_NCOLS) < 0) {
        return sql_fail(w, "cannot prepare the writer's statements", msg, msglen);
    }
    return 0;
}

/* Durability (trc.h, schema/trace.sql): WAL with synchronous=NORMAL survives a killed process
 * with every committed step, and an OS crash without corruption (it may lose the last steps). */
/* The page cache (2 MiB) is small on purpose: pages spill to the WAL during the step instead of
 * all at its commit. */
#define PRAGMAS "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-2048; " /* KiB */

/* The writer checkpoints the WAL itself, after a step's commit has been acknowledged, once the
 * WAL holds this much (SQLite's automatic checkpoint would run inside the commit, while the
 * engine waits for trc_step_end): 8 MiB, or 1 MiB in a trace of small pages (no tensor data:
 * about 20 pages of 8 KiB per decode step of tinyllama). Each pass drops the pages it wrote from
 * the page cache (trc__drop_cached), so the next reuses their frames, and the close copies at
 * most 1 MiB: a stats trace's close took 14.0-15.4 ms against 17.6-19.4 ms with 8 MiB (three
 * pairs of `lltrace bench --trace` runs in turns, session 19). */
#define TRC__CHECKPOINT_BYTES       ((int64_t)8 << 20)
#define TRC__CHECKPOINT_BYTES_SMALL ((int64_t)1 << 20)

static int64_t checkpoint_bytes(const trc_writer *w)
{
    return w->page_size <= 8192 ? TRC__CHECKPOINT_BYTES_SMALL : TRC__CHECKPOINT_BYTES;
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int n_pages)
{
    (void)db;
    (void)name;
    ((trc_writer *)arg)->wal_pages = n_pages;
    return SQLITE_OK;
}

/* Past this size, the WAL is started over before the next step (trc__wdb_before_step). */
#define TRC__WAL_RESET_BYTES ((int64_t)128 << 20)

int trc__wdb_start_ckpt(trc_writer *w, char *msg, size_t msglen)
{
    return trc__ckpt_start(&w->ckpt, w->path, checkpoint_bytes(w), w->lock_fd, msg, msglen);
}

static int64_t wal_bytes(const trc_writer *w)
{
    return (int64_t)w->wal_pages * w->page_size;
}

/* With the checkpoint thread: report the WAL's size. Without: a passive checkpoint when the WAL
 * has grown past checkpoint_bytes. A failure (disk full) loses nothing: the WAL keeps every
 * committed step, and the next commit reports it. */
void trc__wdb_maybe_checkpoint(trc_writer *w)
{
    if (w->ckpt) {
        trc__ckpt_poke(w->ckpt, wal_bytes(w));
        return;
    }
    if (!w->db || wal_bytes(w) < checkpoint_bytes(w)) {
        return;
    }
    if (sqlite3_wal_checkpoint_v2(w->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) ==
        SQLITE_OK) {
        w->wal_pages = 0;
    }
    trc__drop_cached(w->lock_fd); /* as the checkpoint thread does (trc_ckpt.c) */
}

/* SQLite starts the WAL over at a transaction's first write when every frame has been copied
 * into the database. Once the WAL is large, wait for the checkpointer to get there before the
 * step writes: at once if it is idle (one step's frames to copy), otherwise at a later step,
 * unless the WAL has become very large. */
bool trc__wdb_before_step_is_quick(const trc_writer *w)
{
    return !w->ckpt || wal_bytes(w) < TRC__WAL_RESET_BYTES;
}

void trc__wdb_before_step(trc_writer *w)
{
    const int64_t n = wal_bytes(w);
    if (w->ckpt && n >= TRC__WAL_RESET_BYTES &&
        trc__ckpt_drain(w->ckpt, n >= 8 * TRC__WAL_RESET_BYTES)) {
        w->wal_pages = 0;
    }
}

#define AT_CLOSE_MARKER "\n-- @lltrace:at-close\n" /* a line of its own */

/* Runs the schema up to the at-close marker and keeps the rest for trc__wdb_close. */
static int schema_create(trc_writer *w, char *msg, size_t msglen)
{
    const char *mark = strstr(trc__schema_sql, AT_CLOSE_MARKER);
    size_t n = mark ? (size_t)(mark - trc__schema_sql) : strlen(trc__schema_sql);
    char *now = malloc(n + 1);
    w->schema_at_close = strdup(mark ? mark : "");
    if (!now || !w->schema_at_close) {
        free(now);
        snprintf(msg, msglen, "out of memory");
        return TRC_ENOMEM;
    }
    memcpy(now, trc__schema_sql, n);
    now[n] = '\0';
    int rc = 0;
    if (sqlite3_exec(w->db, now, NULL, NULL, NULL) != SQLITE_OK) {
        rc = sql_fail(w, "cannot create the schema", msg, msglen);
    }
    free(now);
    return rc;
}

int trc__wdb_open(trc_writer *w, char *msg, size_t msglen)
{
    int is_wal = 0;
    /* NOMUTEX: one thread at a time uses this connection (the caller until the writer thread
     * starts and after it ends, the writer thread in between), so SQLite's per-call mutex,
     * taken by every sqlite3_bind_*, is pure cost: 11% of the writer's instructions. The VFS
     * is the default one with the WAL's writes gathered into one per commit (trc_vfs.c). */
    if (sqlite3_open_v2(w->path, &w->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        trc__vfs_name()) != SQLITE_OK) {
        snprintf(msg, msglen, "%s: cannot open: %s", w->path,
                 w->db ? sqlite3_errmsg(w->db) : "out of memory");
        return TRC_EIO;
    }
    sqlite3_extended_result_codes(w->db, 1);
    /* before WAL mode and the first table: the page size is fixed from then on */
    char sql[40];
    snprintf(sql, sizeof sql, "PRAGMA page_size=%d", w->page_size);
    if (sqlite3_exec(w->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(msg, msglen, "%s: cannot set the page size: %s", w->path, sqlite3_errmsg(w->db));
        return TRC_EIO;
    }
    if (sqlite3_exec(w->db, "PRAGMA journal_mode=WAL", wal_mode, &is_wal, NULL) != SQLITE_OK ||
        !is_wal) {
        snprintf(msg, msglen, "%s: cannot switch to WAL mode: %s", w->path, sqlite3_errmsg(w->db));
        return TRC_EIO;
    }
    sqlite3_wal_hook(w->db, wal_hook, w); /* replaces SQLite's automatic checkpoints */
    char m[TRC__MSG_SIZE] = "";
    int rc = exec(w, PRAGMAS "BEGIN", m, sizeof m);
    if (rc == 0) {
        rc = schema_create(w, m, sizeof m);
    }
    if (rc == 0) {
        rc = write_meta(w, m, sizeof m);
    }
    if (rc == 0) {
        rc = exec(w, "COMMIT", m, sizeof m);
    }
    if (rc == 0) {
        rc = prepare_all(w, m, sizeof m);
    }
    w->next_tensor_id = w->tx_tensor_id = 1;
    if (rc < 0) {
        snprintf(msg, msglen, "%s: %s", w->path, m);
    }
    return rc;
}

int trc__wdb_close(trc_writer *w, char *msg, size_t msglen)
{
    int rc = 0;
    if (w->db && w->in_tx) {
        rc = commit_tx(w, msg, msglen);
    }
    if (w->ckpt) { /* copies the steps into the file while this thread builds the indexes */
        trc__ckpt_kick(w->ckpt);
    }
    if (w->db && w->schema_at_close && *w->schema_at_close) { /* the indexes, in one tx */
        char m[TRC__MSG_SIZE - 64];
        int rc2 = exec(w, "BEGIN", m, sizeof m);
        if (rc2 == 0 && sqlite3_exec(w->db, w->schema_at_close, NULL, NULL, NULL) != SQLITE_OK) {
            rc2 = sql_fail(w, "cannot build the indexes", m, sizeof m);
        }
        rc2 = rc2 < 0 ? rc2 : exec(w, "COMMIT", m, sizeof m);
        if (rc2 < 0) {
            sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
            if (rc == 0) {
                snprintf(msg, msglen, "%s: %s", w->path, m);
                rc = rc2;
            }
        }
    }
    free(w->schema_at_close);
    w->schema_at_close = NULL;
    trc__ckpt_stop(w->ckpt); /* before leaving WAL mode, which needs the only connection */
    w->ckpt = NULL;
    if (!w->db) {
        return rc;
    }
    sqlite3_stmt *all[] = {w->st_tins, w->st_tupd, w->st_tborrow, w->st_token, w->st_step};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        sqlite3_finalize(all[i]);
    }
    trc__batch_release(&w->b_ops);
    trc__batch_release(&w->b_tensors);
    /* Leaving WAL checkpoints and removes the -wal file: the closed trace is one file. If it
     * fails (disk full), the WAL stays and still holds every committed step. */
    sqlite3_exec(w->db, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    if (sqlite3_close(w->db) != SQLITE_OK && rc == 0) {
        snprintf(msg, msglen, "%s: cannot close the trace", w->path);
        rc = TRC_EIO;
    }
    w->db = NULL;
    return rc;
}

/* ---- jobs ---------------------------------------------------------------------------------- */

static void bind_real_or_null(sqlite3_stmt *st, int i, double v)
{
    if (isnan(v)) {
        sqlite3_bind_null(st, i);
    } else {
        sqlite3_bind_double(st, i, v);
    }
}

static int run_begin(trc_writer *w, const struct trc__job *j, char *msg, size_t msglen)
{
    char now[32];
    sqlite3_stmt *st = NULL;
    trc__now_iso(now);
    if (sqlite3_prepare_v2(w->db,
                           "INSERT INTO runs (id, source, status, started_at, record_rules) "
                           "VALUES (?1, ?2, 'running', ?3, ?4)",
                           -1, &st, NULL) != SQLITE_OK) {
        return sql_fail(w, "cannot begin the run", msg, msglen);
    }
    sqlite3_bind_int64(st, 1, j->i[0]);
    sqlite3_bind_text(st, 2, j->s[0], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, j->s[1], -1, SQLITE_STATIC);
    int rc = run(w, st, "cannot begin the run", msg, msglen);
    sqlite3_finalize(st);
    return rc;
}

/* RUN_SET, RULES and RUN_END: one UPDATE (or an INSERT into run_params). */
static int run_update(trc_writer *w, const struct trc__job *j, char *msg, size_t msglen)
{
    char sql[160];
    char now[32];
    trc__now_iso(now);
    if (j->kind == TRC__JOB_RUN_END) {
        snprintf(sql, sizeof sql, "UPDATE runs SET status = ?1, ended_at = ?2 WHERE id = ?3");
    } else if (j->kind == TRC__JOB_RULES) {
        snprintf(sql, sizeof sql, "UPDATE runs SET record_rules = ?1 WHERE id = ?3");
    } else if (j->s[1]) { /* a known column: its name comes from run_cols, never from input */
        snprintf(sql, sizeof sql, "UPDATE runs SET %s = ?1 WHERE id = ?3", j->s[1]);
    } else {
        snprintf(sql, sizeof sql,
                 "INSERT OR REPLACE INTO run_params (run_id, key, value) VALUES (?3, ?2, ?1)");
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(w->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return sql_fail(w, "cannot update the run", msg, msglen);
    }
    if (j->kind != TRC__JOB_RUN_SET || j->vtype == 0) {
        sqlite3_bind_text(st, 1, j->kind == TRC__JOB_RUN_SET ? j->s[2] : j->s[0], -1,
                          SQLITE_STATIC);
    } else if (j->vtype == 1) {
        sqlite3_bind_int64(st, 1, j->i[1]);
    } else {
        bind_real_or_null(st, 1, j->f);
    }
    if (j->kind == TRC__JOB_RUN_END) {
        sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
    } else if (j->kind == TRC__JOB_RUN_SET && !j->s[1]) {
        sqlite3_bind_text(st, 2, j->s[0], -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 3, j->i[0]);
    int rc = run(w, st, "cannot update the run", msg, msglen);
    sqlite3_finalize(st);
    return rc;
}

static int token_insert(trc_writer *w, const struct trc__job *j, char *msg, size_t msglen)
{
    sqlite3_stmt *st = w->st_token;
    sqlite3_bind_int64(st, 1, j->i[0]);
    sqlite3_bind_int64(st, 2, j->i[1]);
    sqlite3_bind_int64(st, 3, j->i[2]);
    sqlite3_bind_text(st, 4, j->s[0], -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, j->i[3] != 0);
    sqlite3_bind_int(st, 6, j->i[4] != 0);
    if (!j->i[3]) {
        bind_real_or_null(st, 7, j->f);
        bind_real_or_null(st, 8, j->g);
    }
    return run(w, st, "cannot write a token", msg, msglen);
}

static int step_insert(trc_writer *w, const struct trc__job *j, char *msg, size_t msglen)
{
    sqlite3_stmt *st = w->st_step;
    for (int k = 0; k < 4; k++) {
        sqlite3_bind_int64(st, k + 1, j->i[k]);
    }
    if (j->i[4] >= 0) {
        sqlite3_bind_int64(st, 5, j->i[4]);
    }
    return run(w, st, "cannot write the step", msg, msglen);
}

static int op_insert(trc_writer *w, const struct trc__jop *op, char *msg, size_t msglen);

static int dispatch(trc_writer *w, const struct trc__job *job, char *msg, size_t msglen)
{
    int rc = 0;
    switch (job->kind) {
    case TRC__JOB_STEP_BEGIN:
        rc = commit_tx(w, msg, msglen);
        trc__wdb_before_step(w);
        return rc;
    case TRC__JOB_SYNC:
        return commit_tx(w, msg, msglen);
    case TRC__JOB_STEP_ABORT:
        if (w->in_tx) {
            w->in_tx = false;
            rolled_back(w);
            return exec(w, "ROLLBACK", msg, msglen);
        }
        return 0;
    default:
        break;
    }
    rc = begin_tx(w, msg, msglen);
    if (rc < 0) {
        return rc;
    }
    switch (job->kind) {
    case TRC__JOB_RUN_BEGIN: /* committed at once: a run that began is visible, if crashed */
        rc = run_begin(w, job, msg, msglen);
        return rc < 0 ? rc : commit_tx(w, msg, msglen);
    case TRC__JOB_RUN_SET:
    case TRC__JOB_RULES:
        return run_update(w, job, msg, msglen);
    case TRC__JOB_RUN_END:
        rc = run_update(w, job, msg, msglen);
        return rc < 0 ? rc : commit_tx(w, msg, msglen);
    case TRC__JOB_TOKEN:
        return token_insert(w, job, msg, msglen);
    case TRC__JOB_STEP_END: {
        char m[TRC__MSG_SIZE - 160];
        rc = step_insert(w, job, m, sizeof m);
        rc = rc < 0 ? rc : commit_tx(w, m, sizeof m);
        if (rc < 0) {
            snprintf(msg, msglen, "step %lld: %s", (long long)job->i[1], m);
        }
        return rc;
    }
    case TRC__JOB_OP:
        return op_insert(w, job->op, msg, msglen);
    default:
        return 0;
    }
}

void trc__wdb_prefetch(trc_writer *w, const struct trc__job *job)
{
    if (job->kind != TRC__JOB_OP || w->dd.stale) {
        return;
    }
    for (int k = 0; k < job->op->n_tensors; k++) {
        const struct trc__jtensor *t = &job->op->t[k];
        if (t->has_hash && t->src < 0 && !t->known) {
            trc__dedupe_prefetch(&w->dd, t->hash, t->dtype, t->n_dims, t->shape);
        }
    }
}

int trc__wdb_job(trc_writer *w, const struct trc__job *job, char *msg, size_t msglen)
{
    int rc = dispatch(w, job, msg, msglen);
    if (rc < 0 && w->in_tx) { /* the step in progress is lost; committed steps stay */
        w->in_tx = false;
        sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
        rolled_back(w);
    }
    return rc;
}

/* ---- ops and tensors ----------------------------------------------------------------------- */

static void count(trc_writer *w, int64_t raw, int64_t stored, bool dedup, bool linked)
{
    w->wst.n_tensors++; /* published by job_process */
    w->wst.n_dedup += dedup;
    w->wst.n_linked += linked;
    w->wst.raw_bytes += raw;
    w->wst.stored_bytes += stored;
}

/* Remembers where the tensor in `slot` of this step went, for the tensors linked to it. */
static int slot_set(trc_writer *w, int32_t slot, const struct trc__slot *v)
{
    if ((size_t)slot >= w->slots_cap) {
        size_t cap = (size_t)slot + 1 > 2 * w->slots_cap ? (size_t)slot + 1 : 2 * w->slots_cap;
        struct trc__slot *s = realloc(w->slots, cap * sizeof *s);
        if (!s) {
            return TRC_ENOMEM;
        }
        w->slots = s;
        w->slots_cap = cap;
    }
    w->slots[slot] = *v;
    return 0;
}

/* Finds an identical tensor: 1 found (*data_id: the row holding its bytes, 0 when none), 0 not.
 * A rollback happens on an error (sticky: no job runs after it) or at close, so the map never
 * has to answer for rows that were rolled back. */
static int tensor_find(trc_writer *w, uint64_t h, const struct trc__jtensor *t, int64_t *id,
                       int64_t *data_id)
{
    assert(!w->dd.stale);
    return trc__dedupe_find(&w->dd, h, t->dtype, t->n_dims, t->shape, id, data_id);
}

static int dedupe_put(trc_writer *w, uint64_t h, const struct trc__jtensor *t,
                      const struct trc__slot *v, char *msg, size_t msglen)
{
    if (t->known) {
        return 0; /* partial tensors are never deduplicated */
    }
    if (trc__dedupe_put(&w->dd, h, t->dtype, t->n_dims, t->shape, v->id, v->data_id) < 0) {
        snprintf(msg, msglen, "out of memory");
        return TRC_ENOMEM;
    }
    return 0;
}

static struct trc__bval real_or_null(double v)
{
    return isnan(v) ? (struct trc__bval){TRC__BV_NULL, 0, NULL, 0}
                    : (struct trc__bval){TRC__BV_REAL, 0, NULL, v};
}

/* A tensor row without a blob (not partial) into b_tensors: stats only (data_of 0), or the
 * bytes of row data_of under another shape. */
static int tensor_row(trc_writer *w, const struct trc__jtensor *t, const char *hex,
                      const char *shape, const struct trc__stats *s, int64_t id, int64_t data_of,
                      char *msg, size_t msglen)
{
    const struct trc__bval row[TENSOR_NCOLS] = {
        {TRC__BV_INT, id, NULL, 0},
        {TRC__BV_TEXT, 0, trc__dtype_name(t->dtype), 0},
        {TRC__BV_TEXT, 0, shape, 0},
        {TRC__BV_INT, t->n_elems, NULL, 0},
        {TRC__BV_INT, t->n_stored * (int64_t)trc__dtype_size(t->dtype), NULL, 0},
        {TRC__BV_TEXT, 0, hex, 0},
        real_or_null(s->min),
        real_or_null(s->max),
        real_or_null(s->mean),
        real_or_null(s->rms),
        {TRC__BV_INT, s->n_nan, NULL, 0},
        {TRC__BV_INT, s->n_inf, NULL, 0},
        data_of ? (struct trc__bval){TRC__BV_INT, data_of, NULL, 0}
                : (struct trc__bval){TRC__BV_NULL, 0, NULL, 0},
    };
    return trc__batch_add(&w->b_tensors, w->db, row, msg, msglen);
}

/* Inserts the tensor rows waiting in b_tensors: before a statement reads or updates a row. */
static int tensors_flush(trc_writer *w, char *msg, size_t msglen)
{
    return w->b_tensors.n_rows ? trc__batch_flush(&w->b_tensors, w->db, msg, msglen) : 0;
}

/* A new row; its data are the blob, or row data_of's (0: none, or the blob). */
static int tensor_insert(trc_writer *w, const struct trc__jtensor *t, uint64_t h,
                         const struct trc__stats *s, const void *blob, size_t blob_len,
                         int64_t data_of, int64_t *id, char *msg, size_t msglen)
{
    size_t width = trc__dtype_size(t->dtype);
    char hex[17];
    char shape[96];
    trc__hash_hex(h, hex);
    trc__shape_json(shape, sizeof shape, t->n_dims, t->shape);
    *id = w->next_tensor_id++;
    if (!blob && !t->known) {
        return tensor_row(w, t, hex, shape, s, *id, data_of, msg, msglen);
    }
    int rc = tensors_flush(w, msg, msglen); /* the rows stay in id order */
    if (rc < 0) {
        return rc;
    }
    sqlite3_stmt *st = w->st_tins;
    sqlite3_bind_text(st, 1, trc__dtype_name(t->dtype), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, shape, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, t->n_elems);
    sqlite3_bind_int64(st, 4, t->n_stored * (int64_t)width);
    sqlite3_bind_text(st, 5, hex, -1, SQLITE_STATIC);
    if (blob) {
        sqlite3_bind_text(st, 6, TRC__CODEC, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(st, 16, blob, blob_len, SQLITE_STATIC);
    }
    bind_real_or_null(st, 7, s->min);
    bind_real_or_null(st, 8, s->max);
    bind_real_or_null(st, 9, s->mean);
    bind_real_or_null(st, 10, s->rms);
    sqlite3_bind_int64(st, 11, s->n_nan);
    sqlite3_bind_int64(st, 12, s->n_inf);
    sqlite3_bind_int(st, 13, t->known != NULL);
    if (t->known) {
        sqlite3_bind_int64(st, 14, t->n_stored);
        /* little-endian int64 on the (little-endian) platforms we build for */
        sqlite3_bind_blob64(st, 15, t->known, (sqlite3_uint64)t->n_stored * 8, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 17, *id);
    return run(w, st, "cannot write a tensor", msg, msglen);
}

/* A linked tensor with another shape than its source: the row of (hash, dtype, shape), made
 * from the source's stats and, at level full, naming the row that holds the bytes (data_of):
 * the bytes are stored once whatever the shape they are seen under. */
static int tensor_reshape(trc_writer *w, bool full, const struct trc__jtensor *t,
                          const struct trc__slot *src, struct trc__slot *me, char *msg,
                          size_t msglen)
{
    int64_t raw = full ? t->n_stored * (int64_t)trc__dtype_size(t->dtype) : 0;
    int found = tensor_find(w, src->hash, t, &me->id, &me->data_id);
    if (found && (!full || me->data_id)) {
        count(w, raw, 0, true, true);
        return 0;
    }
    int64_t data_of = full ? src->data_id : 0; /* 0 only when linked across levels */
    int rc = 0;
    if (found && data_of) { /* a stats-only row gets the data */
        if ((rc = tensors_flush(w, msg, msglen)) == 0) {
            sqlite3_bind_int64(w->st_tborrow, 1, data_of);
            sqlite3_bind_int64(w->st_tborrow, 2, me->id);
            rc = run(w, w->st_tborrow, "cannot write a tensor", msg, msglen);
        }
    } else if (!found) {
        rc = tensor_insert(w, t, src->hash, &src->st, NULL, 0, data_of, &me->id, msg, msglen);
    }
    me->data_id = data_of;
    count(w, raw, 0, found, true);
    return rc < 0 ? rc : dedupe_put(w, src->hash, t, me, msg, msglen);
}

/* A linked tensor: its source's row when the shape is the same, else tensor_reshape. */
static int tensor_link(trc_writer *w, enum trc_level level, const struct trc__jtensor *t,
                       int64_t *id, char *msg, size_t msglen)
{
    if ((size_t)t->src >= w->slots_cap) {
        snprintf(msg, msglen, "tensor '%s': link '%s' to an unknown slot", t->role, t->link);
        return TRC_EINVAL;
    }
    const struct trc__slot src = w->slots[t->src];
    if (t->has_hash && t->hash != src.hash) {
        snprintf(msg, msglen, "tensor '%s' is linked to '%s' but its data differ", t->role,
                 t->link);
        return TRC_EINVAL;
    }
    bool full = level == TRC_LEVEL_FULL;
    struct trc__slot me = src;
    int rc = 0;
    if (t->same_shape) {
        count(w, full ? t->n_stored * (int64_t)trc__dtype_size(t->dtype) : 0, 0, true, true);
    } else {
        rc = tensor_reshape(w, full, t, &src, &me, msg, msglen);
    }
    *id = me.id;
    return rc < 0 ? rc : slot_set(w, t->slot, &me);
}

/* Stores one tensor (deduplicated unless partial) and returns its id. */
static int tensor_store(trc_writer *w, enum trc_level level, const struct trc__jtensor *t,
                        int64_t *id, char *msg, size_t msglen)
{
    if (t->src >= 0) {
        return tensor_link(w, level, t, id, msg, msglen);
    }
    size_t width = trc__dtype_size(t->dtype);
    size_t nbytes = (size_t)t->n_stored * width;
    struct trc__slot me = {.hash = t->hash, .st = t->st};
    bool has_stats = t->has_stats;
    if (!t->has_hash && !has_stats) { /* one pass for both: as fast as the hash alone */
        trc__hash_stats(t->data, t->dtype, (size_t)t->n_stored, &me.hash, &me.st);
        has_stats = true;
    } else if (!t->has_hash) {
        me.hash = trc__hash(t->data, nbytes);
    }
    int found = t->known ? 0 : tensor_find(w, me.hash, t, &me.id, &me.data_id);
    bool want_blob = level == TRC_LEVEL_FULL && !(found && me.data_id);
    const uint8_t *blob = NULL;
    size_t blob_len = 0;
    if (want_blob && t->blob) { /* made by the compressor (trc_writer_prep.c) */
        blob = t->blob;
        blob_len = t->blob_len;
    } else if (want_blob) {
        int rc = trc__codec_encode(&w->cs, w->zstd_level, t->data, (size_t)t->n_stored, width,
                                   &blob, &blob_len, msg, msglen);
        if (rc < 0) {
            return rc;
        }
    }
    if (!has_stats && !found) {
        trc__stats(t->data, t->dtype, (size_t)t->n_stored, &me.st);
    }
    count(w, level == TRC_LEVEL_FULL ? (int64_t)nbytes : 0, (int64_t)blob_len, found, false);
    int rc = 0;
    if (!found) {
        rc = tensor_insert(w, t, me.hash, &me.st, blob, blob_len, 0, &me.id, msg, msglen);
    } else if (want_blob && (rc = tensors_flush(w, msg, msglen)) == 0) {
        sqlite3_stmt *st = w->st_tupd; /* upgrade a stats-only row to full */
        sqlite3_bind_text(st, 1, TRC__CODEC, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(st, 2, blob, blob_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, me.id);
        rc = run(w, st, "cannot write a tensor", msg, msglen);
    }
    if (want_blob) {
        me.data_id = me.id;
    }
    if (rc == 0 && (!found || want_blob)) {
        rc = dedupe_put(w, me.hash, t, &me, msg, msglen);
    }
    *id = me.id;
    return rc < 0 ? rc : slot_set(w, t->slot, &me);
}

static int op_row(trc_writer *w, const struct trc__jop *op, const char *tensors, char *msg,
                  size_t msglen)
{
    const struct trc__bval none = {TRC__BV_NULL, 0, NULL, 0};
    struct trc__bval row[14] = {
        {TRC__BV_INT, op->id, NULL, 0},
        {TRC__BV_INT, op->run_id, NULL, 0},
        {TRC__BV_INT, op->step, NULL, 0},
        {TRC__BV_INT, op->seq, NULL, 0},
        op->layer >= 0 ? (struct trc__bval){TRC__BV_INT, op->layer, NULL, 0} : none,
        {TRC__BV_TEXT, 0, op->kind, 0},
        {TRC__BV_TEXT, 0, op->name, 0},
        {TRC__BV_INT, op->pos0, NULL, 0},
        {TRC__BV_INT, op->n_pos, NULL, 0},
        op->params ? (struct trc__bval){TRC__BV_TEXT, 0, op->params, 0} : none,
        op->elapsed_ns >= 0 ? (struct trc__bval){TRC__BV_INT, op->elapsed_ns, NULL, 0} : none,
        {TRC__BV_TEXT, 0, op->level == TRC_LEVEL_FULL ? "full" : "stats", 0},
        op->weights ? (struct trc__bval){TRC__BV_TEXT, 0, op->weights, 0} : none,
        tensors ? (struct trc__bval){TRC__BV_TEXT, 0, tensors, 0} : none,
    };
    return trc__batch_add(&w->b_ops, w->db, row, msg, msglen);
}

/* tids[k] is the tensor id of the op's tensor k: the ops.tensors JSON object, role -> id in the
 * order given, into the writer's buffer (NULL when out of memory). */
static const char *tensors_json(trc_writer *w, const struct trc__jop *op, const int64_t *tids)
{
    size_t n = 2;
    for (int k = 0; k < op->n_tensors; k++) {
        n += trc__json_key(NULL, k == 0, op->t[k].role) + trc__json_dec(NULL, tids[k]);
    }
    if (n > w->ojs_cap) {
        char *b = realloc(w->ojs, n);
        if (!b) {
            return NULL;
        }
        w->ojs = b;
        w->ojs_cap = n;
    }
    char *p = w->ojs;
    for (int k = 0; k < op->n_tensors; k++) {
        p += trc__json_key(p, k == 0, op->t[k].role);
        p += trc__json_dec(p, tids[k]);
    }
    *p++ = '}';
    *p = '\0';
    return w->ojs;
}

static int op_insert(trc_writer *w, const struct trc__jop *op, char *msg, size_t msglen)
{
    char m[TRC__MSG_SIZE];
    int64_t stack[8];
    int64_t *tids = op->n_tensors <= 8 ? stack : malloc((size_t)op->n_tensors * sizeof *tids);
    int rc = tids ? 0 : TRC_ENOMEM;
    if (rc < 0) {
        snprintf(m, sizeof m, "out of memory");
    }
    for (int k = 0; rc == 0 && k < op->n_tensors; k++) {
        rc = tensor_store(w, op->level, &op->t[k], &tids[k], m, sizeof m);
    }
    if (rc == 0) {
        const char *js = op->n_tensors > 0 ? tensors_json(w, op, tids) : NULL;
        if (op->n_tensors > 0 && !js) {
            rc = TRC_ENOMEM;
            snprintf(m, sizeof m, "out of memory");
        } else {
            rc = op_row(w, op, js, m, sizeof m);
        }
    }
    if (tids != stack) {
        free(tids);
    }
    if (rc < 0) {
        snprintf(msg, msglen, "op '%s' (step %lld): %s", op->name, (long long)op->step, m);
        return rc;
    }
    w->wst.n_ops++;
    return 0;
}
