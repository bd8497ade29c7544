/*
 * query_util.c - helpers of the trace-reading commands (query_int.h): open a trace with the
 * house error message, find an op by id or name with an error that says what the trace does
 * hold, filter ops, and format sizes and shapes.
 */
#include <fnmatch.h>
#include <string.h>

#include <sqlite3.h>

#include "query_int.h"
#include "vw.h"

int vw_open_trace_reader(const char *path, trc_reader **out)
{
    char err[TRC_ERRBUF_SIZE];
    if (trc_reader_open(path, out, err, sizeof err) < 0) {
        return vw_error("%s", err);
    }
    return 0;
}

int vw_reader_error(trc_reader *r)
{
    return vw_error("%s", trc_reader_errmsg(r));
}

int vw_reader_first_run(trc_reader *r, int64_t *run)
{
    trc_cursor *c = NULL;
    struct trc_run_info ri;
    int rc = trc_reader_runs(r, &c);
    *run = -1;
    if (rc == 0) {
        rc = trc_cursor_next_run(c, &ri);
    }
    if (rc == 1) {
        *run = ri.id;
    }
    trc_cursor_close(c);
    if (rc < 0) {
        return vw_reader_error(r);
    }
    if (*run < 0) {
        return vw_error("%s: the trace holds no run", trc_reader_path(r));
    }
    return 0;
}

/* One integer from a query with up to two integer parameters; def when no row or NULL. */
static int64_t query_i64(sqlite3 *db, const char *sql, int64_t a, int64_t b, int64_t def)
{
    sqlite3_stmt *st = NULL;
    int64_t v = def;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, a);
        sqlite3_bind_int64(st, 2, b);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
            v = sqlite3_column_int64(st, 0);
        }
    }
    sqlite3_finalize(st);
    return v;
}

int vw_check_selection(trc_reader *r, int64_t run, int64_t step, int64_t layer)
{
    sqlite3 *db = trc_reader_sql_handle(r);
    const char *path = trc_reader_path(r);
    if (query_i64(db, "SELECT count(*) FROM runs WHERE id = ?1", run, 0, 0) == 0) {
        int64_t lo = query_i64(db, "SELECT min(id) FROM runs", 0, 0, -1);
        int64_t hi = query_i64(db, "SELECT max(id) FROM runs", 0, 0, -1);
        if (lo < 0) {
            return vw_error("%s: the trace holds no run", path);
        }
        return lo == hi ? vw_error("%s: no run %lld (the trace holds run %lld)", path,
                                   (long long)run, (long long)lo)
                        : vw_error("%s: no run %lld (the trace holds runs %lld..%lld)", path,
                                   (long long)run, (long long)lo, (long long)hi);
    }
    /* the completed steps (steps whose ops the rules left out count), else the ops' */
    int64_t last = query_i64(db, "SELECT max(step) FROM steps WHERE run_id = ?1", run, 0, -1);
    if (last < 0) {
        last = query_i64(db, "SELECT max(step) FROM ops WHERE run_id = ?1", run, 0, -1);
    }
    if (step >= 0 && last < 0) {
        return vw_error("%s: step %lld out of range: run %lld holds no step", path, (long long)step,
                        (long long)run);
    }
    if (step > last) {
        return vw_error("%s: step %lld out of range: the trace has steps 0..%lld", path,
                        (long long)step, (long long)last);
    }
    int64_t n_layer = query_i64(db, "SELECT n_layer FROM runs WHERE id = ?1", run, 0, -1);
    if (n_layer < 0) {
        n_layer = query_i64(db, "SELECT max(layer) + 1 FROM ops WHERE run_id = ?1", run, 0, 0);
    }
    if (layer >= 0 && layer >= n_layer) {
        return vw_error("%s: layer %lld out of range: the model has %lld layers (0..%lld)", path,
                        (long long)layer, (long long)n_layer, (long long)n_layer - 1);
    }
    return 0;
}

/* The name exists, but not at this step (recording rules), or not at all. */
static int op_elsewhere(trc_reader *r, const char *name, int64_t run, int64_t step)
{
    sqlite3 *db = trc_reader_sql_handle(r);
    const char *path = trc_reader_path(r);
    sqlite3_stmt *st = NULL;
    int64_t lo = -1, hi = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT min(step), max(step) FROM ops WHERE name = ?1 AND run_id = ?2",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, run);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
            lo = sqlite3_column_int64(st, 0);
            hi = sqlite3_column_int64(st, 1);
        }
    }
    sqlite3_finalize(st);
    if (lo >= 0) {
        return vw_error("%s: no op '%s' at step %lld (it is recorded at steps %lld..%lld)", path,
                        name, (long long)step, (long long)lo, (long long)hi);
    }
    return vw_error("%s: no op '%s' at step %lld (see 'lltrace ops %s --step %lld')", path, name,
                    (long long)step, path, (long long)step);
}

/* Explains why `name` is not at (run, step): the step, the layer or the name does not exist. */
static int op_missing(trc_reader *r, const char *name, int64_t run, int64_t step)
{
    sqlite3 *db = trc_reader_sql_handle(r);
    const char *path = trc_reader_path(r);
    int64_t last = query_i64(db, "SELECT max(step) FROM steps WHERE run_id = ?1", run, 0, -1);
    int64_t n_layer = query_i64(db, "SELECT n_layer FROM runs WHERE id = ?1", run, 0, -1);
    long long layer = -1;
    if (n_layer < 0) {
        n_layer = query_i64(db, "SELECT max(layer) + 1 FROM ops WHERE run_id = ?1", run, 0, 0);
    }
    if (strncmp(name, "blk.", 4) == 0) {
        const char *dot = strchr(name + 4, '.');
        char num[24] = "";
        if (dot && dot - (name + 4) < (long)sizeof num) {
            memcpy(num, name + 4, (size_t)(dot - (name + 4)));
            num[dot - (name + 4)] = 0;
        }
        if (vw_parse_i64(num, 0, INT32_MAX, &layer) < 0) {
            layer = -1;
        }
    }
    if (step > last) {
        return vw_error("%s: no op '%s' at step %lld (the trace has steps 0..%lld)", path, name,
                        (long long)step, (long long)last);
    }
    if (layer >= n_layer) {
        return vw_error("%s: no op '%s' at step %lld (the trace has %lld layers)", path, name,
                        (long long)step, (long long)n_layer);
    }
    return op_elsewhere(r, name, run, step);
}

int vw_op_find(trc_reader *r, const char *spec, int64_t run, int64_t step, int64_t *op_id)
{
    long long id;
    struct trc_op_info oi;
    if (vw_parse_i64(spec, 1, INT64_MAX, &id) == 0) {
        if (trc_reader_op(r, id, &oi) < 0) {
            return vw_reader_error(r);
        }
        *op_id = id;
        return 0;
    }
    sqlite3 *db = trc_reader_sql_handle(r);
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT id FROM ops WHERE name = ?1 AND run_id = ?2 AND step = ?3 "
                      "ORDER BY seq LIMIT 1";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        return vw_error("%s: %s", trc_reader_path(r), sqlite3_errmsg(db));
    }
    sqlite3_bind_text(st, 1, spec, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, run);
    sqlite3_bind_int64(st, 3, step);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *op_id = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) {
        return 0;
    }
    if (rc != SQLITE_DONE) {
        return vw_error("%s: %s", trc_reader_path(r), sqlite3_errmsg(db));
    }
    return op_missing(r, spec, run, step);
}

int vw_op_roles(trc_reader *r, int64_t op_id, struct vw_role_list *l)
{
    sqlite3 *db = trc_reader_sql_handle(r);
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT role, tensor_id FROM op_tensors WHERE op_id = ?1 ORDER BY "
                      "CASE WHEN role GLOB 'in*' THEN 0 WHEN role = 'out' THEN 1 ELSE 2 END, role";
    l->n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        return vw_error("%s: %s", trc_reader_path(r), sqlite3_errmsg(db));
    }
    sqlite3_bind_int64(st, 1, op_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && l->n < VW_MAX_ROLES) {
        const char *role = (const char *)sqlite3_column_text(st, 0);
        snprintf(l->role[l->n], sizeof l->role[0], "%s", role ? role : "?");
        l->tid[l->n++] = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return vw_error("%s: %s", trc_reader_path(r), sqlite3_errmsg(db));
    }
    return 0;
}

int vw_role_find(const struct vw_role_list *l, const char *role)
{
    for (int i = 0; i < l->n; i++) {
        if (strcmp(l->role[i], role) == 0) {
            return i;
        }
    }
    return -1;
}

bool vw_op_filter_match(const struct vw_op_filter *f, const struct trc_op_info *op)
{
    if (f->step >= 0 && op->step != f->step) {
        return false;
    }
    if (f->layer >= 0 && op->layer != f->layer) {
        return false;
    }
    if (f->kind && (!op->kind || strcmp(f->kind, op->kind) != 0)) {
        return false;
    }
    return !f->name_glob || (op->name && fnmatch(f->name_glob, op->name, 0) == 0);
}

char *vw_fmt_bytes(char *buf, size_t cap, int64_t n)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0) {
        snprintf(buf, cap, "%lld B", (long long)n);
    } else {
        snprintf(buf, cap, "%.1f %s", v, unit[u]);
    }
    return buf;
}

char *vw_fmt_shape(char *buf, size_t cap, int n_dims, const int64_t *shape)
{
    size_t k = 0;
    buf[0] = 0;
    for (int d = 0; d < n_dims && k < cap; d++) {
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? "," : "[", (long long)shape[d]);
    }
    if (k < cap) {
        snprintf(buf + k, cap - k, "%s", n_dims > 0 ? "]" : "[]");
    }
    return buf;
}

const char *vw_dtype_name(enum trc_dtype dt)
{
    static const char *const names[TRC_DTYPE_COUNT] = {"f32", "f16", "bf16", "i32"};
    return dt >= 0 && dt < TRC_DTYPE_COUNT ? names[dt] : "?";
}
