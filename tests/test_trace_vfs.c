/*
 * Tests of the writer's VFS (tracer/trc_vfs.c), which gathers what SQLite writes to a WAL file
 * and passes it on at each commit: a second connection on the default VFS (as the checkpoint
 * thread has) sees every committed transaction as soon as COMMIT returns, byte for byte,
 * whatever its size (one row, past the unix VFS's 128 KiB per write, past the 1 MiB buffer);
 * transactions that spill pages to the WAL before their commit, and that roll back, leave
 * nothing behind; a WAL started over after a checkpoint is written as well; and the file passes
 * integrity_check after all of it, with 8 KiB and 64 KiB pages.
 */
#include <check.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "trc_writer_int.h"

/* Deterministic bytes of row `id`: a blob of n bytes from a small generator. */
static void fill(uint8_t *p, size_t n, int64_t id)
{
    uint32_t s = (uint32_t)id * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (uint8_t)(s >> 24);
    }
}

static sqlite3 *open_db(const char *path, const char *vfs)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
                     SQLITE_OK);
    return db;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, err ? err : "?");
}

static int64_t int1(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* A writer on the tracer's VFS and a reader on the default one, on a new WAL file. */
static void open_pair(const char *name, int page_size, sqlite3 **w, sqlite3 **r)
{
    const char *p = lt_tmp_path("trace_vfs", name);
    char sql[160];
    remove(p);
    ck_assert_ptr_nonnull(trc__vfs_name());
    *w = open_db(p, trc__vfs_name());
    snprintf(sql, sizeof sql, "PRAGMA page_size=%d; PRAGMA journal_mode=WAL", page_size);
    exec(*w, sql);
    exec(*w, "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0;"
             "CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)");
    *r = open_db(p, NULL);
}

/* Inserts rows first..first+n-1 of `size` bytes each (no transaction of its own). */
static void insert(sqlite3 *db, int64_t first, int n, size_t size)
{
    uint8_t *buf = malloc(size);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?, ?)", -1, &st, NULL),
                     SQLITE_OK);
    for (int i = 0; i < n; i++) {
        fill(buf, size, first + i);
        sqlite3_bind_int64(st, 1, first + i);
        sqlite3_bind_blob(st, 2, buf, (int)size, SQLITE_STATIC);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    free(buf);
}

/* The reader sees exactly rows 1..n, and row `id` has its bytes. */
static void check_rows(sqlite3 *r, int64_t n, int64_t id)
{
    ck_assert_int_eq(int1(r, "SELECT count(*) FROM t"), n);
    ck_assert_int_eq(int1(r, "SELECT coalesce(max(id), 0) FROM t"), n);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(r, "SELECT data FROM t WHERE id = ?", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    size_t size = (size_t)sqlite3_column_bytes(st, 0);
    uint8_t *want = malloc(size + 1);
    fill(want, size, id);
    ck_assert_int_eq(memcmp(sqlite3_column_blob(st, 0), want, size), 0);
    free(want);
    sqlite3_finalize(st);
}

static void commits_visible(int page_size)
{
    sqlite3 *w = NULL, *r = NULL;
    char name[32];
    snprintf(name, sizeof name, "visible%d.db", page_size);
    open_pair(name, page_size, &w, &r);
    /* one small row, a few pages, past 128 KiB, past the 1 MiB buffer */
    static const struct {
        int n;
        size_t size;
    } tx[] = {{1, 100}, {3, 5000}, {20, 9000}, {40, 16384}, {90, 16000}, {2, 300000}, {1, 10}};
    int64_t n = 0;
    for (int round = 0; round < 4; round++) {
        for (size_t k = 0; k < sizeof tx / sizeof tx[0]; k++) {
            exec(w, "BEGIN");
            insert(w, n + 1, tx[k].n, tx[k].size);
            exec(w, "COMMIT");
            n += tx[k].n;
            check_rows(r, n, n); /* as soon as COMMIT returned */
            check_rows(r, n, n - tx[k].n + 1);
        }
        exec(r, "PRAGMA wal_checkpoint(PASSIVE)"); /* as the checkpoint thread does */
    }
    ck_assert_int_eq(int1(r, "SELECT count(*) FROM pragma_integrity_check WHERE "
                             "integrity_check <> 'ok'"),
                     0);
    sqlite3_close(r);
    ck_assert_int_eq(sqlite3_close(w), SQLITE_OK);
}

START_TEST(test_trace_vfs_commits_visible_8k)
{
    commits_visible(8192);
}
END_TEST

START_TEST(test_trace_vfs_commits_visible_64k)
{
    commits_visible(65536);
}
END_TEST

/* A page cache of 8 pages makes SQLite write most pages of a large transaction to the WAL
 * before its commit, and read some back: a rolled-back one must leave nothing, the next ones
 * must commit whole. */
START_TEST(test_trace_vfs_spill_and_rollback)
{
    sqlite3 *w = NULL, *r = NULL;
    open_pair("spill.db", 8192, &w, &r);
    exec(w, "PRAGMA cache_size=8");
    exec(w, "BEGIN");
    insert(w, 1, 5, 1000);
    exec(w, "COMMIT");
    check_rows(r, 5, 3);
    exec(w, "BEGIN");
    insert(w, 6, 300, 10000);                                 /* 3 MB, mostly spilled */
    ck_assert_int_eq(int1(w, "SELECT count(*) FROM t"), 305); /* read back in the transaction */
    exec(w, "ROLLBACK");
    check_rows(r, 5, 5);
    ck_assert_int_eq(int1(w, "SELECT count(*) FROM t"), 5);
    exec(w, "BEGIN");
    insert(w, 6, 2, 700);
    exec(w, "COMMIT");
    check_rows(r, 7, 6);
    exec(w, "BEGIN");
    insert(w, 8, 400, 9000);
    exec(w, "COMMIT");
    check_rows(r, 407, 8);
    check_rows(r, 407, 300);
    check_rows(r, 407, 407);
    ck_assert_int_eq(int1(r, "SELECT count(*) FROM pragma_integrity_check WHERE "
                             "integrity_check <> 'ok'"),
                     0);
    sqlite3_close(r);
    ck_assert_int_eq(sqlite3_close(w), SQLITE_OK);
}
END_TEST

/* After a checkpoint that copied every frame, the writer starts the WAL over from its header
 * (RESTART), or from an empty file (TRUNCATE): the frames written then must reach the file. */
START_TEST(test_trace_vfs_wal_started_over)
{
    sqlite3 *w = NULL, *r = NULL;
    open_pair("restart.db", 8192, &w, &r);
    int64_t n = 0;
    for (int round = 0; round < 6; round++) {
        exec(w, "BEGIN");
        insert(w, n + 1, 30, 3000);
        exec(w, "COMMIT");
        n += 30;
        check_rows(r, n, n - 7);
        exec(r, round % 2 ? "PRAGMA wal_checkpoint(TRUNCATE)" : "PRAGMA wal_checkpoint(RESTART)");
        check_rows(r, n, n);
    }
    sqlite3_close(r);
    ck_assert_int_eq(sqlite3_close(w), SQLITE_OK);
    sqlite3 *db = open_db(lt_tmp_path("trace_vfs", "restart.db"), NULL);
    check_rows(db, n, 1);
    ck_assert_int_eq(int1(db, "SELECT count(*) FROM pragma_integrity_check WHERE "
                              "integrity_check <> 'ok'"),
                     0);
    sqlite3_close(db);
}
END_TEST

/* Files that are not a WAL are the default VFS's own: a rollback-journal database works. */
START_TEST(test_trace_vfs_other_files)
{
    const char *p = lt_tmp_path("trace_vfs", "journal.db");
    remove(p);
    sqlite3 *w = open_db(p, trc__vfs_name());
    exec(w, "PRAGMA journal_mode=DELETE; CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB)");
    exec(w, "BEGIN");
    insert(w, 1, 50, 2000);
    exec(w, "COMMIT");
    exec(w, "BEGIN");
    insert(w, 51, 5, 2000);
    exec(w, "ROLLBACK");
    sqlite3 *r = open_db(p, NULL);
    check_rows(r, 50, 50);
    sqlite3_close(r);
    ck_assert_int_eq(sqlite3_close(w), SQLITE_OK);
}
END_TEST

Suite *trace_vfs_suite(void); /* called by check_main.c */

Suite *trace_vfs_suite(void)
{
    Suite *s = suite_create("trace_vfs");
    TCase *c = tcase_create("core");
    tcase_add_test(c, test_trace_vfs_commits_visible_8k);
    tcase_add_test(c, test_trace_vfs_commits_visible_64k);
    tcase_add_test(c, test_trace_vfs_spill_and_rollback);
    tcase_add_test(c, test_trace_vfs_wal_started_over);
    tcase_add_test(c, test_trace_vfs_other_files);
    suite_add_tcase(s, c);
    return s;
}
