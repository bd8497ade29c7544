/*
 * Result sets printed three ways, shared by `lltrace sql`, `ops`, `info` and the saved queries:
 * an aligned text table (numbers right-aligned, one header line and a rule), CSV (RFC 4180,
 * header row) or JSON (an array of objects, one row per line, like `sqlite3 -json`). A table is
 * built cell by cell and printed once (the aligned form needs every width first);
 * vw_table_print_stmt streams a prepared SQLite statement instead, buffering only for the
 * aligned form. Also the JSON string escaping every JSON-writing command uses.
 */
#ifndef VW_TABLE_H
#define VW_TABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum vw_table_format {
    VW_TABLE_FORMAT_ALIGNED = 0,
    VW_TABLE_FORMAT_CSV = 1,
    VW_TABLE_FORMAT_JSON = 2,
    VW_TABLE_FORMAT_COUNT
};

enum vw_cell_type {
    VW_CELL_NULL = 0,
    VW_CELL_INT = 1,
    VW_CELL_REAL = 2,
    VW_CELL_TEXT = 3,
    VW_CELL_JSON = 4, /* text that is already JSON: embedded as is by the JSON format */
    VW_CELL_COUNT
};

struct vw_table_opts {
    enum vw_table_format format;
    int max_width;         /* aligned: cut cells longer than this (with "..."); 0 = no limit */
    int real_digits;       /* aligned: at most this many significant digits for REAL cells (fewer
                              when they read back exactly); 0 = exact, up to 17 */
    const char *null_text; /* aligned: text of NULL cells; NULL = "NULL" */
};

typedef struct vw_table vw_table;

/* A table with n_cols named columns (names are copied). Returns NULL when out of memory. */
vw_table *vw_table_create(int n_cols, const char *const *names);
void vw_table_destroy(vw_table *t);

/* Append one cell to the current row; the row is complete after n_cols cells. Return 0, or -1
 * when out of memory. Text is copied. */
int vw_table_add_null(vw_table *t);
int vw_table_add_i64(vw_table *t, int64_t v);
int vw_table_add_f64(vw_table *t, double v);
int vw_table_add_text(vw_table *t, enum vw_cell_type type, const char *s);

int64_t vw_table_n_rows(const vw_table *t);

/* Prints the table (opts NULL = aligned with defaults). Returns 0 or -1 on a write error. */
int vw_table_print(const vw_table *t, FILE *f, const struct vw_table_opts *opts);

/*
 * Steps a prepared statement (`sqlite3_stmt *`) to its end and prints its rows. Returns the
 * number of rows (>= 0), or -1 on an SQL error (read sqlite3_errmsg of its connection; nothing
 * of a failed aligned table is printed) or -2 when out of memory. A statement that returns no
 * columns prints nothing.
 */
int64_t vw_table_print_stmt(void *stmt, FILE *f, const struct vw_table_opts *opts);

/* Writes s as a JSON string literal (quotes included); invalid UTF-8 becomes U+FFFD. */
void vw_json_str(FILE *f, const char *s);
/* Writes a double as a JSON number (shortest form that reads back exactly), null if not finite. */
void vw_json_num(FILE *f, double v);
/* Shortest "%.Ng" text of v that reads back exactly (as a float when v is one) into buf. */
char *vw_fmt_real(char *buf, size_t cap, double v);
/* The same with at most max_digits digits (then rounded). */
char *vw_fmt_real_digits(char *buf, size_t cap, double v, int max_digits);

#endif
