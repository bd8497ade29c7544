/*
 * trc_tload.c - reads one tensor row back from a trace, trusting nothing: every column is
 * checked against the others (dtype, shape, element count, byte size, known indices) before any
 * allocation, the zstd frame must declare exactly the size the shape implies, and the decoded
 * bytes must hash to the stored lt64. A row whose data_of names the row holding its bytes
 * (version 4) is read through that row, which must hold them itself under the same dtype, size
 * and hash. Shared by the reader API and the SQL functions, so both reject a corrupt trace with
 * the same message ("tensor 12: ...").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trc_int.h"

void trc__tensor_release(struct trc__tensor *t)
{
    free(t->raw);
    free(t->known);
    t->raw = NULL;
    t->known = NULL;
}

static double col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? (double)NAN : sqlite3_column_double(st, i);
}

static int bad(const char *tname, char *msg, size_t msglen, const char *what)
{
    snprintf(msg, msglen, "tensor %s: %s", tname, what);
    return TRC_ECORRUPT;
}

/* The header columns 0..13: dtype, shape, n_elems, nbytes, hash, stats, partial, n_known. */
static int load_header(sqlite3_stmt *st, struct trc__tensor *t, const char *tname, char *msg,
                       size_t msglen)
{
    const char *dt = (const char *)sqlite3_column_text(st, 0);
    const char *shape = (const char *)sqlite3_column_text(st, 1);
    const char *hash = (const char *)sqlite3_column_text(st, 4);
    if (!dt || trc__dtype_parse(dt, &t->dtype) < 0) {
        return bad(tname, msg, msglen, "unknown dtype");
    }
    if (!shape || trc__shape_parse(shape, &t->n_dims, t->shape) < 0) {
        return bad(tname, msg, msglen, "bad shape (want a JSON array of 1..4 sizes)");
    }
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++) {
        if (t->shape[d] > 0 && n > TRC__MAX_TENSOR_BYTES / t->shape[d]) {
            return bad(tname, msg, msglen, "shape too large");
        }
        n *= t->shape[d];
    }
    t->n_elems = n;
    t->partial = sqlite3_column_int(st, 12) != 0;
    t->n_stored = t->partial ? sqlite3_column_int64(st, 13) : n;
    t->nbytes = sqlite3_column_int64(st, 3);
    if (sqlite3_column_int64(st, 2) != n || t->n_stored < 0 || t->n_stored > n ||
        t->nbytes != t->n_stored * (int64_t)trc__dtype_size(t->dtype)) {
        return bad(tname, msg, msglen, "sizes do not fit the shape (n_elems, n_known, nbytes)");
    }
    if (!hash || strlen(hash) != 16 || strspn(hash, "0123456789abcdef") != 16) {
        return bad(tname, msg, msglen, "bad hash (want 16 hex digits)");
    }
    memcpy(t->hash, hash, 17);
    t->st.min = col_real(st, 6);
    t->st.max = col_real(st, 7);
    t->st.mean = col_real(st, 8);
    t->st.rms = col_real(st, 9);
    t->st.n_nan = sqlite3_column_int64(st, 10);
    t->st.n_inf = sqlite3_column_int64(st, 11);
    t->has_data = sqlite3_column_type(st, 15) != SQLITE_NULL;
    t->stored_bytes = sqlite3_column_int64(st, 15);
    if (sqlite3_column_type(st, 17) == SQLITE_NULL) {
        return 0;
    }
    t->data_of = sqlite3_column_int64(st, 17);
    if (t->has_data || t->partial || t->data_of <= 0) {
        char what[96];
        snprintf(what, sizeof what, "%s data_of %lld",
                 t->data_of <= 0 ? "bad"
                 : t->has_data   ? "has both data and"
                                 : "is partial and has",
                 (long long)t->data_of);
        return bad(tname, msg, msglen, what);
    }
    return 0;
}

/* Known indices of a partial tensor (column 14): n_stored LE int64, increasing, in range. */
static int load_known(sqlite3_stmt *st, struct trc__tensor *t, const char *tname, char *msg,
                      size_t msglen)
{
    const uint8_t *b = sqlite3_column_blob(st, 14);
    int64_t len = sqlite3_column_bytes(st, 14);
    if (len != t->n_stored * 8 || (t->n_stored > 0 && !b)) {
        return bad(tname, msg, msglen, "known-index blob does not hold n_known indices");
    }
    t->known = malloc((size_t)len + 8);
    if (!t->known) {
        snprintf(msg, msglen, "tensor %s: out of memory", tname);
        return TRC_ENOMEM;
    }
    if (len > 0) { /* b is NULL for an empty blob */
        memcpy(t->known, b, (size_t)len);
    }
    for (int64_t i = 0; i < t->n_stored; i++) {
        if (t->known[i] < 0 || t->known[i] >= t->n_elems ||
            (i > 0 && t->known[i] <= t->known[i - 1])) {
            return bad(tname, msg, msglen, "known indices are not increasing within the shape");
        }
    }
    return 0;
}

/* The blob (column blob_col of st, with its codec in codec_col): decode and verify. */
static int load_data(sqlite3_stmt *st, int codec_col, int blob_col, struct trc__tensor *t,
                     const char *tname, char *msg, size_t msglen)
{
    const char *codec = (const char *)sqlite3_column_text(st, codec_col);
    if (!codec || strcmp(codec, TRC__CODEC) != 0) {
        return bad(tname, msg, msglen, "unknown codec (want 'shuffle-zstd')");
    }
    const void *blob = sqlite3_column_blob(st, blob_col);
    size_t blen = (size_t)sqlite3_column_bytes(st, blob_col);
    size_t width = trc__dtype_size(t->dtype);
    t->raw = malloc(t->nbytes ? (size_t)t->nbytes : 1);
    if (!t->raw) {
        snprintf(msg, msglen, "tensor %s: out of memory for %lld bytes", tname,
                 (long long)t->nbytes);
        return TRC_ENOMEM;
    }
    char m[256];
    int rc =
        trc__codec_decode(blob ? blob : "", blen, t->raw, (size_t)t->nbytes, width, m, sizeof m);
    if (rc < 0) {
        snprintf(msg, msglen, "tensor %s: %s", tname, m);
        return rc;
    }
    char hex[17];
    trc__hash_hex(trc__hash(t->raw, (size_t)t->nbytes), hex);
    if (strcmp(hex, t->hash) != 0) {
        snprintf(msg, msglen, "tensor %s: content hash mismatch (stored %s, data hashes to %s)",
                 tname, t->hash, hex);
        return TRC_ECORRUPT;
    }
    return 0;
}

/* A statement kept in a cache is reset for its next use; any other is finalized. */
static void done_with(sqlite3_stmt *st, sqlite3_stmt **cache)
{
    if (cache) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    } else {
        sqlite3_finalize(st);
    }
}

/* The row's query: the header (columns 0..15), the blob when ?2 (16) and data_of (17). Version 3
 * and older have no column data_of: the same query with NULL there. */
#define ROW_SQL(data_of)                                                                           \
    "SELECT dtype, shape, n_elems, nbytes, hash, codec, min, max, mean, rms, n_nan, n_inf, "       \
    "partial, n_known, known, length(data), CASE WHEN ?2 THEN data END, " data_of                  \
    " FROM \"%s\".tensors WHERE id = ?1"

static int prepare_row(sqlite3 *db, const char *schema, unsigned flags, sqlite3_stmt **st)
{
    char sql[400];
    snprintf(sql, sizeof sql, ROW_SQL("data_of"), schema);
    int rc = sqlite3_prepare_v3(db, sql, -1, flags, st, NULL);
    if (rc != SQLITE_OK && strstr(sqlite3_errmsg(db), "no such column: data_of")) {
        snprintf(sql, sizeof sql, ROW_SQL("NULL"), schema);
        rc = sqlite3_prepare_v3(db, sql, -1, flags, st, NULL);
    }
    return rc;
}

/* A row whose data_of names the row holding its bytes: that row must hold data of its own
 * (no data_of, not partial) under the same dtype, nbytes and hash. Then t has data, decoded from
 * that row's blob when want_data. */
static int load_borrowed(sqlite3 *db, const char *schema, struct trc__tensor *t, int want_data,
                         const char *tname, char *msg, size_t msglen)
{
    char sql[300];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof sql,
             "SELECT dtype = ?3 AND nbytes = ?4 AND hash = ?5 AND partial = 0 AND data_of IS NULL "
             "AND data IS NOT NULL, codec, CASE WHEN ?2 THEN data END FROM \"%s\".tensors "
             "WHERE id = ?1",
             schema);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(msg, msglen, "tensor %s: %s", tname, sqlite3_errmsg(db));
        return TRC_ESQL;
    }
    sqlite3_bind_int64(st, 1, t->data_of);
    sqlite3_bind_int(st, 2, want_data != 0);
    sqlite3_bind_text(st, 3, trc__dtype_name(t->dtype), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, t->nbytes);
    sqlite3_bind_text(st, 5, t->hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        snprintf(msg, msglen, "tensor %s: %s", tname, sqlite3_errmsg(db));
        rc = TRC_ESQL;
    } else if (rc == SQLITE_DONE || !sqlite3_column_int(st, 0)) {
        char what[200];
        snprintf(what, sizeof what,
                 "data_of names tensor %lld, which does not hold this tensor's bytes (it must "
                 "hold data of its own with the same dtype, nbytes and hash)",
                 (long long)t->data_of);
        rc = bad(tname, msg, msglen, what);
    } else {
        t->has_data = 1;
        rc = want_data ? load_data(st, 1, 2, t, tname, msg, msglen) : 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int trc__tensor_load(sqlite3 *db, const char *schema, int64_t id, int want_data,
                     struct trc__tensor *t, sqlite3_stmt **cache, char *msg, size_t msglen)
{
    char tname[96];
    memset(t, 0, sizeof *t);
    t->id = id;
    schema = schema ? schema : "main";
    if (!*schema || strlen(schema) > 64 ||
        strspn(schema, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
            strlen(schema)) {
        snprintf(msg, msglen, "bad schema name '%.64s' (letters, digits, '_')", schema);
        return TRC_EINVAL;
    }
    snprintf(tname, sizeof tname, "%s%s%lld", strcmp(schema, "main") ? schema : "",
             strcmp(schema, "main") ? "." : "", (long long)id);
    sqlite3_stmt *st = cache ? *cache : NULL;
    if (!st && prepare_row(db, schema, cache ? SQLITE_PREPARE_PERSISTENT : 0, &st) != SQLITE_OK) {
        snprintf(msg, msglen, "tensor %s: %s", tname, sqlite3_errmsg(db));
        return TRC_ESQL;
    }
    if (cache) {
        *cache = st;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, want_data != 0);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE) {
            snprintf(msg, msglen, "tensor %s: no such tensor", tname);
        } else {
            snprintf(msg, msglen, "tensor %s: %s", tname, sqlite3_errmsg(db));
        }
        done_with(st, cache);
        return rc == SQLITE_DONE ? TRC_ENOTFOUND : TRC_ESQL;
    }
    rc = load_header(st, t, tname, msg, msglen);
    if (rc == 0 && t->partial) {
        rc = load_known(st, t, tname, msg, msglen);
    }
    if (rc == 0 && t->data_of) {
        rc = load_borrowed(db, schema, t, want_data, tname, msg, msglen);
    } else if (rc == 0 && want_data && t->has_data) {
        rc = load_data(st, 5, 16, t, tname, msg, msglen);
    }
    done_with(st, cache);
    return rc;
}
