/*
 * trc_reader.c - the reading side of trc.h. A trace may come from anyone, so it is opened
 * read-only with SQLite's defensive settings and tight limits, identified by its meta table and
 * schema version before anything else is read, and tensors are returned only after the checks
 * of trc_tload.c. Also the cursors over runs, steps and ops, and trc_reader_attach.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trc_int.h"

struct trc_reader {
    sqlite3 *db;
    char *path;
    bool writer_active;  /* a writer held the trace's lock when we opened it */
    sqlite3_stmt *st_op; /* trc_reader_op's row, kept so its strings stay valid */
    /* statements run once per tensor (a diff reads every op's): prepared once */
    sqlite3_stmt *st_op_tensor, *st_tensor;
    /* Without the index ops_by_step (a trace still being written, or whose writer was killed:
     * it is built at close), the ops of one step are found by id: ids grow with (run, step,
     * seq), so each step's ops lie in [lo, hi], read for a run with one scan (step_spans). */
    bool no_step_index;
    int64_t span_run, n_span;
    struct trc__span {
        int64_t step, lo, hi;
    } * span;
    char msg[TRC__MSG_SIZE];
};

enum cursor_kind { CUR_RUNS, CUR_STEPS, CUR_OPS };

struct trc_cursor {
    trc_reader *r;
    sqlite3_stmt *st;
    enum cursor_kind kind;
};

__attribute__((format(printf, 3, 4))) static int fail(trc_reader *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    return code;
}

const char *trc_reader_errmsg(const trc_reader *r)
{
    return r ? r->msg : "no reader";
}

const char *trc_reader_path(const trc_reader *r)
{
    return r ? r->path : NULL;
}

void *trc_reader_sql_handle(trc_reader *r)
{
    return r ? r->db : NULL;
}

int trc__check_trace(sqlite3 *db, const char *schema, const char *path, char *msg, size_t msglen)
{
    char sql[160];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof sql, "SELECT value FROM \"%s\".meta WHERE key = 'schema_version'", schema);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        int ec = sqlite3_errcode(db);
        const char *em = sqlite3_errmsg(db);
        if (ec == SQLITE_NOTADB) {
            snprintf(msg, msglen, "%s: not an lltrace trace (not an SQLite database)", path);
        } else if (strstr(em, "no such table")) {
            snprintf(msg, msglen, "%s: not an lltrace trace (no meta table)", path);
        } else {
            snprintf(msg, msglen, "%s: cannot read: %s", path, em);
            return TRC_EIO;
        }
        return TRC_EFORMAT;
    }
    int rc = sqlite3_step(st);
    const char *v = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    char *end = NULL;
    long long ver = v ? strtoll(v, &end, 10) : 0;
    int code = 0;
    if (!v || end == v || *end) {
        snprintf(msg, msglen, "%s: not an lltrace trace (no schema_version in its meta table)",
                 path);
        code = rc == SQLITE_ROW || rc == SQLITE_DONE ? TRC_EFORMAT : TRC_EIO;
    } else if (ver > TRC_SCHEMA_VERSION) {
        snprintf(msg, msglen,
                 "%s: trace schema version %lld is newer than this lltrace supports (%d)", path,
                 ver, TRC_SCHEMA_VERSION);
        code = TRC_EVERSION;
    } else if (ver < 1) {
        /* Version 1 is the first. Its tensor blobs are the one-frame case of version 2's codec,
         * version 2's tables op_tensors and op_weights have the columns of version 3's views,
         * and version 4 only adds tensors.data_of, which trc_tload.c reads when it is there
         * (schema/trace.sql), so versions 1..TRC_SCHEMA_VERSION all open as they are. */
        snprintf(msg, msglen,
                 "%s: trace schema version %lld is older than the oldest this lltrace reads (1)",
                 path, ver);
        code = TRC_EVERSION;
    }
    sqlite3_finalize(st);
    return code;
}

/* Read-only, defensive configuration of a connection that will see untrusted files. */
static int harden(sqlite3 *db)
{
    int on = 0;
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1 << 30);
    sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 100000);
    sqlite3_limit(db, SQLITE_LIMIT_COLUMN, 500);
    sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 100);
    sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 50);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 10);
    sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 1000);
    sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, 256);
    sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 16);
    if (!on) {
        return -1;
    }
    return sqlite3_exec(db, "PRAGMA query_only=1; PRAGMA cell_size_check=1; PRAGMA mmap_size=0",
                        NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : -1;
}

/* True when a writer holds the trace (trc_writer takes flock on the file). Probed before
 * SQLite opens it: closing this descriptor would drop this process' SQLite fcntl locks. */
static bool writer_holds(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool held = false;
    if (fd >= 0) {
        held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
        close(fd);
    }
    return held;
}

static int open_checked(const char *path, sqlite3 **out, char *msg, size_t msglen)
{
    struct stat sb;
    *out = NULL;
    if (stat(path, &sb) < 0) {
        char os[128];
        snprintf(msg, msglen, "%s: cannot open: %s", path, trc__os_error(errno, os, sizeof os));
        return TRC_EIO;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(msg, msglen, "%s: not an lltrace trace (not a regular file)", path);
        return TRC_EFORMAT;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(msg, msglen, "%s: cannot open: %s", path, db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return TRC_EIO;
    }
    if (harden(db) < 0) {
        snprintf(msg, msglen, "%s: cannot configure SQLite defensively: %s", path,
                 sqlite3_errmsg(db));
        sqlite3_close(db);
        return TRC_ESQL;
    }
    int rc = trc__check_trace(db, "main", path, msg, msglen);
    if (rc < 0) {
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

int trc_reader_open(const char *path, trc_reader **out, char *errbuf, size_t errlen)
{
    char msg[TRC__MSG_SIZE];
    *out = NULL;
    trc_reader *r = calloc(1, sizeof *r);
    if (!r || !path || !(r->path = strdup(path))) {
        snprintf(msg, sizeof msg, "%s", path ? "out of memory" : "no trace path");
        free(r);
        if (errbuf && errlen) {
            snprintf(errbuf, errlen, "%s", msg);
        }
        return path ? TRC_ENOMEM : TRC_EINVAL;
    }
    r->writer_active = writer_holds(path);
    int rc = open_checked(path, &r->db, msg, sizeof msg);
    if (rc == 0 && trc_sql_register(r->db) < 0) {
        snprintf(msg, sizeof msg, "%s: cannot register the tensor functions", path);
        rc = TRC_ESQL;
    }
    if (rc < 0) {
        if (errbuf && errlen) {
            snprintf(errbuf, errlen, "%s", msg);
        }
        trc_reader_close(r);
        return rc;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = "
                           "'ops_by_step'",
                           -1, &st, NULL) == SQLITE_OK) {
        r->no_step_index = sqlite3_step(st) != SQLITE_ROW;
    }
    sqlite3_finalize(st);
    *out = r;
    return 0;
}

void trc_reader_close(trc_reader *r)
{
    if (!r) {
        return;
    }
    sqlite3_finalize(r->st_op);
    sqlite3_finalize(r->st_op_tensor);
    sqlite3_finalize(r->st_tensor);
    sqlite3_close_v2(r->db);
    free(r->span);
    free(r->path);
    free(r);
}

int trc_reader_attach(trc_reader *r, const char *name, const char *path)
{
    static const char ident[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    if (!name || !*name || strlen(name) > 64 || strspn(name, ident) != strlen(name) ||
        (name[0] >= '0' && name[0] <= '9') || !path) {
        return fail(r, TRC_EINVAL, "bad attach name '%s' (letters, digits, '_')",
                    name ? name : "(null)");
    }
    struct stat sb;
    if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        char os[128];
        return fail(r, TRC_EIO, "%s: cannot open: %s", path,
                    errno ? trc__os_error(errno, os, sizeof os) : "not a regular file");
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, "ATTACH DATABASE ?1 AS ?2", -1, &st, NULL) != SQLITE_OK) {
        return fail(r, TRC_ESQL, "%s: cannot attach: %s", path, sqlite3_errmsg(r->db));
    }
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        if (sqlite3_extended_errcode(r->db) == SQLITE_NOTADB) {
            return fail(r, TRC_EFORMAT, "%s: not an lltrace trace (not an SQLite database)", path);
        }
        return fail(r, TRC_ESQL, "%s: cannot attach as '%s': %s", path, name,
                    sqlite3_errmsg(r->db));
    }
    rc = trc__check_trace(r->db, name, path, r->msg, sizeof r->msg);
    if (rc < 0) {
        char sql[96];
        snprintf(sql, sizeof sql, "DETACH DATABASE \"%s\"", name);
        sqlite3_exec(r->db, sql, NULL, NULL, NULL);
    }
    return rc;
}

/* ---- cursors ------------------------------------------------------------------------------- */

static const char runs_sql[] =
    "SELECT id, source, status, started_at, ended_at, model_path, model_sha256, arch, n_layer, "
    "n_embd, n_head, n_head_kv, head_dim, n_rot, n_ff, n_vocab, n_ctx, rope_theta, "
    "rope_freq_scale, rms_eps, rope_mode, weight_type, kv_type, prompt, chat_template, "
    "rendered_prompt, temp, top_p, top_k, seed, n_threads, faults, build_version, build_commit, "
    "build_compiler, build_flags, simd, record_rules, "
    "(SELECT count(*) FROM steps s WHERE s.run_id = runs.id), "
    "(SELECT coalesce(max(step), -1) FROM steps s WHERE s.run_id = runs.id) "
    "FROM runs ORDER BY id";

/* The ops are counted in one pass, not once per step: without ops_by_step (see struct
 * trc_reader) that would read the whole table for each step. */
static const char steps_sql[] =
    "SELECT s.run_id, s.step, s.pos0, s.n_tokens, coalesce(s.elapsed_ns, -1), coalesce(c.n, 0) "
    "FROM steps s LEFT JOIN (SELECT step, count(*) AS n FROM ops WHERE run_id = ?1 GROUP BY "
    "step) c ON c.step = s.step WHERE s.run_id = ?1 ORDER BY s.step";

#define OP_COLS                                                                                    \
    "id, run_id, step, seq, coalesce(layer, -1), kind, name, pos0, n_pos, params, "                \
    "coalesce(elapsed_ns, -1), level FROM ops "

static const char ops_sql[] =
    "SELECT " OP_COLS "WHERE run_id = ?1 AND (?2 < 0 OR step = ?2) ORDER BY step, seq";
/* One step's ops by id, for a trace without ops_by_step (op_id_range) */
static const char ops_range_sql[] =
    "SELECT " OP_COLS "WHERE id BETWEEN ?3 AND ?4 AND run_id = ?1 AND step = ?2 ORDER BY seq";

/* Reads [lo, hi] of every step of run_id into r->span (struct trc_reader), in step order. */
static int step_spans(trc_reader *r, int64_t run_id)
{
    sqlite3_stmt *st = NULL;
    r->n_span = 0;
    r->span_run = -1;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT step, min(id), max(id) FROM ops WHERE run_id = ?1 GROUP BY "
                           "step ORDER BY step",
                           -1, &st, NULL) != SQLITE_OK) {
        return fail(r, TRC_ESQL, "%s: %s", r->path, sqlite3_errmsg(r->db));
    }
    sqlite3_bind_int64(st, 1, run_id);
    int64_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (r->n_span == cap) {
            cap = cap ? 2 * cap : 256;
            struct trc__span *p = realloc(r->span, (size_t)cap * sizeof *p);
            if (!p) {
                sqlite3_finalize(st);
                return fail(r, TRC_ENOMEM, "out of memory");
            }
            r->span = p;
        }
        struct trc__span *sp = &r->span[r->n_span++];
        sp->step = sqlite3_column_int64(st, 0);
        sp->lo = sqlite3_column_int64(st, 1);
        sp->hi = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return fail(r, TRC_ESQL, "%s: %s", r->path, sqlite3_errmsg(r->db));
    }
    r->span_run = run_id;
    return 0;
}

/* The ids between which the ops of (run_id, step) lie, from r->span (read again once for a step
 * it lacks: a live trace grows); an empty range for a step the run does not have. */
static int op_id_range(trc_reader *r, int64_t run_id, int64_t step, int64_t *lo, int64_t *hi)
{
    bool fresh = false;
    for (int pass = 0; pass < 2 && !(pass == 1 && fresh); pass++) {
        if (pass == 1 || r->span_run != run_id) {
            int rc = step_spans(r, run_id);
            if (rc < 0) {
                return rc;
            }
            fresh = true;
        }
        int64_t a = 0, b = r->n_span;
        while (a < b) {
            int64_t m = a + (b - a) / 2;
            if (r->span[m].step < step) {
                a = m + 1;
            } else {
                b = m;
            }
        }
        if (a < r->n_span && r->span[a].step == step) {
            *lo = r->span[a].lo;
            *hi = r->span[a].hi;
            return 0;
        }
    }
    *lo = 1; /* no such step: an empty range */
    *hi = 0;
    return 0;
}

static int cursor_open(trc_reader *r, enum cursor_kind kind, int64_t run_id, int64_t step,
                       trc_cursor **out)
{
    const bool by_id = kind == CUR_OPS && step >= 0 && r->no_step_index;
    const char *sql = kind == CUR_RUNS    ? runs_sql
                      : kind == CUR_STEPS ? steps_sql
                      : by_id             ? ops_range_sql
                                          : ops_sql;
    *out = NULL;
    trc_cursor *c = calloc(1, sizeof *c);
    if (!c) {
        return fail(r, TRC_ENOMEM, "out of memory");
    }
    if (sqlite3_prepare_v2(r->db, sql, -1, &c->st, NULL) != SQLITE_OK) {
        free(c);
        return fail(r, TRC_ESQL, "%s: %s", r->path, sqlite3_errmsg(r->db));
    }
    if (by_id) {
        int64_t lo, hi;
        int rc = op_id_range(r, run_id, step, &lo, &hi);
        if (rc < 0) {
            sqlite3_finalize(c->st);
            free(c);
            return rc;
        }
        sqlite3_bind_int64(c->st, 3, lo);
        sqlite3_bind_int64(c->st, 4, hi);
    }
    if (kind != CUR_RUNS) {
        sqlite3_bind_int64(c->st, 1, run_id);
        sqlite3_bind_int64(c->st, 2, step);
    }
    c->r = r;
    c->kind = kind;
    *out = c;
    return 0;
}

int trc_reader_runs(trc_reader *r, trc_cursor **out)
{
    return cursor_open(r, CUR_RUNS, 0, 0, out);
}

int trc_reader_steps(trc_reader *r, int64_t run_id, trc_cursor **out)
{
    return cursor_open(r, CUR_STEPS, run_id, 0, out);
}

int trc_reader_ops(trc_reader *r, int64_t run_id, int64_t step, trc_cursor **out)
{
    return cursor_open(r, CUR_OPS, run_id, step, out);
}

void trc_cursor_close(trc_cursor *c)
{
    if (c) {
        sqlite3_finalize(c->st);
        free(c);
    }
}

/* Steps the cursor: 1 row, 0 done, <0 error. */
static int cursor_step(trc_cursor *c, enum cursor_kind kind)
{
    if (!c || c->kind != kind) {
        return TRC_EINVAL;
    }
    int rc = sqlite3_step(c->st);
    if (rc == SQLITE_ROW) {
        return 1;
    }
    if (rc == SQLITE_DONE) {
        return 0;
    }
    return fail(c->r, TRC_ESQL, "%s: %s", c->r->path, sqlite3_errmsg(c->r->db));
}

static const char *ctext(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static int64_t cint(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

static double col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? (double)NAN : sqlite3_column_double(st, i);
}

int trc_cursor_next_run(trc_cursor *c, struct trc_run_info *o)
{
    int rc = cursor_step(c, CUR_RUNS);
    if (rc <= 0) {
        return rc;
    }
    sqlite3_stmt *s = c->st;
    *o = (struct trc_run_info){.id = cint(s, 0),
                               .source = ctext(s, 1),
                               .status = ctext(s, 2),
                               .started_at = ctext(s, 3),
                               .ended_at = ctext(s, 4),
                               .model_path = ctext(s, 5),
                               .model_sha256 = ctext(s, 6),
                               .arch = ctext(s, 7),
                               .n_layer = cint(s, 8),
                               .n_embd = cint(s, 9),
                               .n_head = cint(s, 10),
                               .n_head_kv = cint(s, 11),
                               .head_dim = cint(s, 12),
                               .n_rot = cint(s, 13),
                               .n_ff = cint(s, 14),
                               .n_vocab = cint(s, 15),
                               .n_ctx = cint(s, 16),
                               .rope_theta = col_real(s, 17),
                               .rope_freq_scale = col_real(s, 18),
                               .rms_eps = col_real(s, 19),
                               .rope_mode = ctext(s, 20),
                               .weight_type = ctext(s, 21),
                               .kv_type = ctext(s, 22),
                               .prompt = ctext(s, 23),
                               .chat_template = ctext(s, 24),
                               .rendered_prompt = ctext(s, 25),
                               .temp = col_real(s, 26),
                               .top_p = col_real(s, 27),
                               .top_k = cint(s, 28),
                               .seed = cint(s, 29),
                               .n_threads = cint(s, 30),
                               .faults = ctext(s, 31),
                               .build_version = ctext(s, 32),
                               .build_commit = ctext(s, 33),
                               .build_compiler = ctext(s, 34),
                               .build_flags = ctext(s, 35),
                               .simd = ctext(s, 36),
                               .record_rules = ctext(s, 37),
                               .n_steps = cint(s, 38),
                               .last_step = cint(s, 39)};
    if (!o->ended_at) {
        o->status = c->r->writer_active ? "running" : "crashed";
    }
    return 1;
}

int trc_cursor_next_step(trc_cursor *c, struct trc_step_info *o)
{
    int rc = cursor_step(c, CUR_STEPS);
    if (rc <= 0) {
        return rc;
    }
    sqlite3_stmt *s = c->st;
    *o = (struct trc_step_info){cint(s, 0), cint(s, 1), cint(s, 2),
                                cint(s, 3), cint(s, 4), cint(s, 5)};
    return 1;
}

static void op_fill(sqlite3_stmt *s, struct trc_op_info *o)
{
    const char *lvl = ctext(s, 11);
    *o = (struct trc_op_info){.id = cint(s, 0),
                              .run_id = cint(s, 1),
                              .step = cint(s, 2),
                              .seq = cint(s, 3),
                              .layer = (int)cint(s, 4),
                              .kind = ctext(s, 5),
                              .name = ctext(s, 6),
                              .pos0 = cint(s, 7),
                              .n_pos = cint(s, 8),
                              .params_json = ctext(s, 9),
                              .elapsed_ns = cint(s, 10),
                              .level = lvl && strcmp(lvl, "full") == 0 ? TRC_LEVEL_FULL
                                                                       : TRC_LEVEL_STATS};
}

int trc_cursor_next_op(trc_cursor *c, struct trc_op_info *o)
{
    int rc = cursor_step(c, CUR_OPS);
    if (rc == 1) {
        op_fill(c->st, o);
    }
    return rc;
}

int trc_reader_op(trc_reader *r, int64_t op_id, struct trc_op_info *out)
{
    if (!r->st_op && sqlite3_prepare_v2(r->db, "SELECT " OP_COLS "WHERE id = ?1", -1, &r->st_op,
                                        NULL) != SQLITE_OK) {
        return fail(r, TRC_ESQL, "%s: %s", r->path, sqlite3_errmsg(r->db));
    }
    sqlite3_reset(r->st_op);
    sqlite3_bind_int64(r->st_op, 1, op_id);
    int rc = sqlite3_step(r->st_op);
    if (rc == SQLITE_ROW) {
        op_fill(r->st_op, out);
        return 0;
    }
    if (rc == SQLITE_DONE) {
        return fail(r, TRC_ENOTFOUND, "%s: op %lld: no such op", r->path, (long long)op_id);
    }
    return fail(r, TRC_ESQL, "%s: %s", r->path, sqlite3_errmsg(r->db));
}

/* ---- tensors ------------------------------------------------------------------------------- */

int trc_reader_op_tensor(trc_reader *r, int64_t op_id, const char *role, int64_t *tensor_id)
{
    if (!r->st_op_tensor &&
        sqlite3_prepare_v3(r->db, "SELECT tensor_id FROM op_tensors WHERE op_id = ?1 AND role = ?2",
                           -1, SQLITE_PREPARE_PERSISTENT, &r->st_op_tensor, NULL) != SQLITE_OK) {
        return fail(r, TRC_ESQL, "%s: %s", r->path, sqlite3_errmsg(r->db));
    }
    sqlite3_stmt *st = r->st_op_tensor;
    sqlite3_bind_int64(st, 1, op_id);
    sqlite3_bind_text(st, 2, role ? role : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *tensor_id = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_ROW) {
        return 0;
    }
    if (rc == SQLITE_DONE) {
        return fail(r, TRC_ENOTFOUND, "%s: op %lld has no tensor with role '%s'", r->path,
                    (long long)op_id, role ? role : "");
    }
    return fail(r, TRC_ESQL, "%s: %s", r->path, sqlite3_errmsg(r->db));
}

/* Loads through trc_tload.c; on failure the message names the file and the tensor. */
static int load(trc_reader *r, int64_t id, int want_data, struct trc__tensor *t)
{
    char m[TRC__MSG_SIZE];
    int rc = trc__tensor_load(r->db, "main", id, want_data, t, &r->st_tensor, m, sizeof m);
    if (rc < 0) {
        trc__tensor_release(t);
        return fail(r, rc, "%s: %s", r->path, m);
    }
    if (want_data && !t->has_data) {
        trc__tensor_release(t);
        return fail(r, TRC_ENOTFOUND, "%s: tensor %lld: only stats were recorded", r->path,
                    (long long)id);
    }
    return 0;
}

int trc_reader_tensor_info(trc_reader *r, int64_t tensor_id, struct trc_tensor_info *o)
{
    struct trc__tensor t;
    int rc = load(r, tensor_id, 0, &t);
    if (rc < 0) {
        return rc;
    }
    *o = (struct trc_tensor_info){.id = tensor_id,
                                  .dtype = t.dtype,
                                  .n_dims = t.n_dims,
                                  .n_elems = t.n_elems,
                                  .n_stored = t.n_stored,
                                  .nbytes = t.nbytes,
                                  .stored_bytes = t.stored_bytes,
                                  .data_of = t.data_of,
                                  .has_data = t.has_data,
                                  .partial = t.partial,
                                  .min = t.st.min,
                                  .max = t.st.max,
                                  .mean = t.st.mean,
                                  .rms = t.st.rms,
                                  .n_nan = t.st.n_nan,
                                  .n_inf = t.st.n_inf};
    memcpy(o->shape, t.shape, sizeof o->shape);
    memcpy(o->hash, t.hash, sizeof o->hash);
    trc__tensor_release(&t);
    return 0;
}

int trc_reader_tensor_raw(trc_reader *r, int64_t tensor_id, void *dst, size_t cap)
{
    struct trc__tensor t;
    int rc = load(r, tensor_id, 1, &t);
    if (rc == 0 && cap < (size_t)t.nbytes) {
        rc = fail(r, TRC_EINVAL, "%s: tensor %lld: needs %lld bytes, buffer has %zu", r->path,
                  (long long)tensor_id, (long long)t.nbytes, cap);
    }
    if (rc == 0) {
        memcpy(dst, t.raw, (size_t)t.nbytes);
    }
    trc__tensor_release(&t);
    return rc;
}

int trc_reader_tensor_f32(trc_reader *r, int64_t tensor_id, float *dst, int64_t cap)
{
    struct trc__tensor t;
    int rc = load(r, tensor_id, 1, &t);
    if (rc == 0 && cap < t.n_stored) {
        rc = fail(r, TRC_EINVAL, "%s: tensor %lld: needs %lld elements, buffer has %lld", r->path,
                  (long long)tensor_id, (long long)t.n_stored, (long long)cap);
    }
    if (rc == 0) {
        trc__to_f32(dst, t.raw, t.dtype, (size_t)t.n_stored);
    }
    trc__tensor_release(&t);
    return rc;
}

int trc_reader_tensor_known(trc_reader *r, int64_t tensor_id, int64_t *dst, int64_t cap)
{
    struct trc__tensor t;
    int rc = load(r, tensor_id, 0, &t);
    if (rc == 0 && !t.partial) {
        rc = fail(r, TRC_EINVAL, "%s: tensor %lld is not partial", r->path, (long long)tensor_id);
    }
    if (rc == 0 && cap < t.n_stored) {
        rc = fail(r, TRC_EINVAL, "%s: tensor %lld: needs %lld indices, buffer has %lld", r->path,
                  (long long)tensor_id, (long long)t.n_stored, (long long)cap);
    }
    if (rc == 0) {
        memcpy(dst, t.known, (size_t)t.n_stored * sizeof *dst);
    }
    trc__tensor_release(&t);
    return rc;
}
