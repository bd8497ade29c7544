/*
 * libFuzzer harness for the tensor SQL functions (tracer/trc_sqlfn.c: t_shape, t_stat, t_at,
 * t_slice, t_maxabs, t_nmse, t_cos, t_ulp, t_equal, t_topk, t_dot), which take whatever a user
 * or a script passes in SQL: ids that exist or not, 'schema.id' text, blobs of any length,
 * numbers of any sign and size, NULLs, in any number. At the first input a small trace is
 * written through the C API (f32, f16, bf16 and i32 tensors, a partial one, a level-stats one,
 * one with four dimensions) and opened with the reader, whose connection has the functions.
 * Each input is a call: byte 0 picks the function, byte 1 the number of arguments (0..7), then
 * each argument is a type byte (integer, real, text, blob or NULL) and its bytes. The call must
 * return a value or an SQL error; whatever it returns is read to the end. Invariants that fail
 * trap. Run: ./fuzz_sqlfn CORPUS -max_total_time=60.
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_path[4096];
static trc_reader *g_reader;
static sqlite3 *g_db;

static const char *const g_fns[] = {"t_shape",  "t_stat", "t_at",  "t_slice",
                                    "t_maxabs", "t_nmse", "t_cos", "t_ulp",
                                    "t_equal",  "t_topk", "t_dot", "t_nosuch"};
enum { N_FNS = sizeof g_fns / sizeof g_fns[0] };

static void cleanup(void)
{
    trc_reader_close(g_reader);
    unlink(g_path);
}

static void record(trc_writer *w, const char *name, const struct trc_tensor *t, int n)
{
    struct trc_op op = {name, "op", 0, 0, 4, NULL, 1, t, n, NULL, 0};
    if (trc_op_record(w, &op) < 0) {
        __builtin_trap();
    }
}

static void make_base(void)
{
    const char *dir = getenv("TMPDIR");
    snprintf(g_path, sizeof g_path, "%s/lltrace-fuzz-sqlfn-%d.trace", dir && *dir ? dir : "/tmp",
             (int)getpid());
    struct trc_writer_opts o = {.overwrite = true, .synchronous = true};
    trc_writer *w = NULL;
    char err[256];
    if (trc_writer_open(g_path, &o, &w, err, sizeof err) < 0 ||
        trc_writer_add_rule(w, "stats:stats_only") < 0 || trc_run_begin(w, "fuzz", NULL) < 0 ||
        trc_step_begin(w, 0, 0, 4) < 0) {
        __builtin_trap();
    }
    float x[120];
    uint16_t h[24], b[24];
    int32_t ids[4] = {1, -403, 407, 15010};
    int64_t known[3] = {0, 7, 23};
    for (int i = 0; i < 120; i++) {
        x[i] = (float)i * 0.25f - 2.0f;
    }
    x[5] = 1.0f / 0.0f;
    x[9] = -x[5];
    x[11] = x[5] - x[5]; /* NaN */
    for (int i = 0; i < 24; i++) {
        h[i] = (uint16_t)(0x3c00 + 37 * i);
        b[i] = (uint16_t)(0x3f80 + 11 * i);
    }
    const struct trc_tensor t0[4] = {{"in0", TRC_DTYPE_F32, 2, {4, 6, 0, 0}, x, NULL, 0},
                                     {"in1", TRC_DTYPE_F16, 1, {24, 0, 0, 0}, h, NULL, 0},
                                     {"in2", TRC_DTYPE_BF16, 2, {6, 4, 0, 0}, b, NULL, 0},
                                     {"out", TRC_DTYPE_I32, 1, {4, 0, 0, 0}, ids, NULL, 0}};
    const struct trc_tensor t1 = {"out", TRC_DTYPE_F32, 2, {4, 6, 0, 0}, x + 1, known, 3};
    const struct trc_tensor t2 = {"out", TRC_DTYPE_F32, 4, {2, 3, 4, 5}, x, NULL, 0};
    const struct trc_tensor t3 = {"out", TRC_DTYPE_F32, 1, {24, 0, 0, 0}, x + 2, NULL, 0};
    record(w, "mixed", t0, 4);
    record(w, "partial", &t1, 1);
    record(w, "four_dims", &t2, 1);
    record(w, "stats_only", &t3, 1);
    if (trc_step_end(w, 10) < 0 || trc_run_end(w, "complete") < 0 || trc_writer_close(w) < 0) {
        __builtin_trap();
    }
    if (trc_reader_open(g_path, &g_reader, err, sizeof err) < 0) {
        __builtin_trap();
    }
    g_db = trc_reader_sql_handle(g_reader);
    atexit(cleanup);
}

/* Binds argument k from the input at *p; returns false when the input runs out. */
static bool bind_arg(sqlite3_stmt *st, int k, const uint8_t **p, const uint8_t *end)
{
    if (*p >= end) {
        return false;
    }
    uint8_t type = *(*p)++;
    size_t avail = (size_t)(end - *p);
    switch (type % 6) {
    case 0: { /* a small integer: the ids and indices that exist, and just outside */
        sqlite3_bind_int64(st, k, (int64_t)(type >> 3) - 4);
        return true;
    }
    case 1: { /* any 64-bit integer */
        int64_t v = 0;
        memcpy(&v, *p, avail < 8 ? avail : 8);
        *p += avail < 8 ? avail : 8;
        sqlite3_bind_int64(st, k, v);
        return true;
    }
    case 2: { /* any double */
        double v = 0;
        memcpy(&v, *p, avail < 8 ? avail : 8);
        *p += avail < 8 ? avail : 8;
        sqlite3_bind_double(st, k, v);
        return true;
    }
    case 3:
    case 4: { /* text (ids, 'schema.id', slice specs, stat names) or a blob: length, bytes */
        size_t n = avail ? (size_t) * *p : 0;
        *p += avail ? 1 : 0;
        avail = (size_t)(end - *p);
        n = n < avail ? n : avail;
        if (type % 6 == 3) {
            sqlite3_bind_text(st, k, (const char *)*p, (int)n, SQLITE_TRANSIENT);
        } else {
            sqlite3_bind_blob(st, k, *p, (int)n, SQLITE_TRANSIENT);
        }
        *p += n;
        return true;
    }
    default:
        sqlite3_bind_null(st, k);
        return true;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_db) {
        make_base();
    }
    if (size < 2) {
        return 0;
    }
    const char *fn = g_fns[data[0] % N_FNS];
    int argc = data[1] % 8;
    char sql[128];
    int k = snprintf(sql, sizeof sql, "SELECT %s(", fn);
    for (int i = 0; i < argc; i++) {
        k += snprintf(sql + k, sizeof sql - (size_t)k, "%s?%d", i ? "," : "", i + 1);
    }
    snprintf(sql + k, sizeof sql - (size_t)k, ")");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(g_db, sql, -1, &st, NULL) != SQLITE_OK) {
        if (st) {
            __builtin_trap();
        }
        return 0; /* an unknown function, or a wrong number of arguments */
    }
    const uint8_t *p = data + 2, *end = data + size;
    for (int i = 1; i <= argc; i++) {
        if (!bind_arg(st, i, &p, end)) {
            sqlite3_bind_null(st, i);
        }
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *txt = sqlite3_column_text(st, 0);
        int n = sqlite3_column_bytes(st, 0);
        if (txt && (int)strlen((const char *)txt) > n) {
            __builtin_trap();
        }
    }
    if (rc != SQLITE_DONE && !sqlite3_errmsg(g_db)[0]) {
        __builtin_trap(); /* an error says what it is */
    }
    sqlite3_finalize(st);
    return 0;
}
