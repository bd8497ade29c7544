/*
 * trc_writer_batch.c - rows of one table buffered by the writer thread and inserted
 * TRC__BATCH at a time with one multi-row INSERT: a decode step of tinyllama writes about 420
 * ops rows and 550 tensors rows (level stats), and one
 * statement execution per row costs about twice as much as its share of a batch. Rows wait at most
 * until the step's commit (trc_wdb.c flushes every batch before COMMIT and drops them on ROLLBACK).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trc_writer_int.h"

/* "INSERT INTO t (cols) VALUES (?,..,?),(..)" with n_rows rows of n_cols, malloc'd. */
static char *insert_sql(const char *table, const char *cols, int n_cols, int n_rows)
{
    size_t cap = strlen(table) + strlen(cols) + 40 + (size_t)n_rows * (size_t)(2 * n_cols + 3);
    char *sql = malloc(cap);
    if (!sql) {
        return NULL;
    }
    size_t k = (size_t)snprintf(sql, cap, "INSERT OR FAIL INTO %s (%s) VALUES ", table, cols);
    for (int r = 0; r < n_rows; r++) {
        sql[k++] = r ? ',' : ' ';
        sql[k++] = '(';
        for (int c = 0; c < n_cols; c++) {
            sql[k++] = c ? ',' : '?';
            if (c) {
                sql[k++] = '?';
            }
        }
        sql[k++] = ')';
    }
    sql[k] = '\0';
    return sql;
}

int trc__batch_init(struct trc__batch *b, sqlite3 *db, const char *table, const char *cols,
                    int n_cols)
{
    *b = (struct trc__batch){.table = table, .n_cols = n_cols};
    char *one = insert_sql(table, cols, n_cols, 1);
    char *many = insert_sql(table, cols, n_cols, TRC__BATCH);
    b->v = calloc((size_t)(TRC__BATCH * n_cols), sizeof *b->v);
    int rc = one && many && b->v ? 0 : TRC_ENOMEM;
    if (rc == 0 &&
        (sqlite3_prepare_v3(db, one, -1, SQLITE_PREPARE_PERSISTENT, &b->one, NULL) != SQLITE_OK ||
         sqlite3_prepare_v3(db, many, -1, SQLITE_PREPARE_PERSISTENT, &b->many, NULL) !=
             SQLITE_OK)) {
        rc = TRC_ESQL;
    }
    free(one);
    free(many);
    return rc;
}

void trc__batch_release(struct trc__batch *b)
{
    sqlite3_finalize(b->one);
    sqlite3_finalize(b->many);
    free(b->v);
    free(b->text);
    memset(b, 0, sizeof *b);
}

void trc__batch_discard(struct trc__batch *b)
{
    b->n_rows = 0;
    b->text_len = 0;
}

/* Binds row r of the buffer as parameters base+1.. of st. */
static void bind_row(const struct trc__batch *b, sqlite3_stmt *st, int r, int base)
{
    for (int c = 0; c < b->n_cols; c++) {
        const struct trc__bval *v = &b->v[r * b->n_cols + c];
        if (v->type == TRC__BV_INT) {
            sqlite3_bind_int64(st, base + c + 1, v->i);
        } else if (v->type == TRC__BV_TEXT) { /* its length is in d (batch_add) */
            sqlite3_bind_text(st, base + c + 1, b->text + v->i, (int)v->d, SQLITE_STATIC);
        } else if (v->type == TRC__BV_REAL) {
            sqlite3_bind_double(st, base + c + 1, v->d);
        } else {
            sqlite3_bind_null(st, base + c + 1);
        }
    }
}

static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : TRC_EIO;
}

int trc__batch_flush(struct trc__batch *b, sqlite3 *db, char *msg, size_t msglen)
{
    int rc = 0;
    if (b->n_rows == TRC__BATCH) {
        for (int r = 0; r < TRC__BATCH; r++) {
            bind_row(b, b->many, r, r * b->n_cols);
        }
        rc = step_reset(b->many);
    } else {
        for (int r = 0; rc == 0 && r < b->n_rows; r++) {
            bind_row(b, b->one, r, 0);
            rc = step_reset(b->one);
        }
    }
    if (rc < 0) {
        snprintf(msg, msglen, "cannot write %s rows: %s", b->table, sqlite3_errmsg(db));
    }
    trc__batch_discard(b);
    return rc;
}

int trc__batch_add(struct trc__batch *b, sqlite3 *db, const struct trc__bval *row, char *msg,
                   size_t msglen)
{
    struct trc__bval *dst = &b->v[b->n_rows * b->n_cols];
    for (int c = 0; c < b->n_cols; c++) {
        dst[c] = row[c];
        if (row[c].type != TRC__BV_TEXT) {
            continue;
        }
        size_t n = strlen(row[c].s) + 1;
        if (b->text_len + n > b->text_cap) {
            size_t cap = 2 * b->text_cap + n + 4096;
            char *t = realloc(b->text, cap);
            if (!t) {
                snprintf(msg, msglen, "out of memory");
                return TRC_ENOMEM;
            }
            b->text = t;
            b->text_cap = cap;
        }
        memcpy(b->text + b->text_len, row[c].s, n);
        dst[c].i = (int64_t)b->text_len;
        dst[c].s = NULL;
        dst[c].d = (double)(n - 1);
        b->text_len += n;
    }
    b->n_rows++;
    return b->n_rows == TRC__BATCH ? trc__batch_flush(b, db, msg, msglen) : 0;
}
