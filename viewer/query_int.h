/*
 * query_int.h - internals shared by the commands that look inside a trace (info, sql, ops, show,
 * export): opening a trace with the house error message, finding an op by id or canonical name,
 * op filters, the saved queries of `lltrace sql --query`, and the terminal histogram of `show`.
 * Built on the tracer's public reader API (trc.h) and SQLite; not part of any public header.
 */
#ifndef VW_QUERY_INT_H
#define VW_QUERY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "table.h"
#include "trc.h"

/* ---- opening and finding ------------------------------------------------------------------- */

/* Opens a trace for reading; on failure prints "lltrace: <reason naming the file>" and returns 1
 * (the exit code), else 0. */
int vw_open_trace_reader(const char *path, trc_reader **out);
/* Prints "lltrace: <the reader's message>" and returns 1. */
int vw_reader_error(trc_reader *r);

/* The id of the trace's first run (*run = -1 and a message when it has none). Returns 0 or 1. */
int vw_reader_first_run(trc_reader *r, int64_t *run);

/* Checks the selection of --run, --step and --layer (step and layer -1: any) against what the
 * trace holds, so that a command does not print an empty answer to a question about a run,
 * step or layer that is not there. Returns 0, or 1 after printing e.g. "lltrace: t.trace: step 99
 * out of range: the trace has steps 0..15". */
int vw_check_selection(trc_reader *r, int64_t run, int64_t step, int64_t layer);

/*
 * Finds an op: `spec` is an op id ("42") or a canonical name ("blk.3.rope_q") looked up at
 * (run, step). On failure prints a message such as "lltrace: t.trace: no op 'blk.9.attn_q' at
 * step 0 (the trace has 5 layers)" and returns 1, else 0.
 */
int vw_op_find(trc_reader *r, const char *spec, int64_t run, int64_t step, int64_t *op_id);

/* The tensors of an op by role, inputs first ("in0", "in1", ...), then "out", then the others
 * ("cos", "pos", "sin", ...) by name. At most VW_MAX_ROLES. */
#define VW_MAX_ROLES 16
struct vw_role_list {
    char role[VW_MAX_ROLES][16];
    int64_t tid[VW_MAX_ROLES];
    int n;
};
/* Returns 0, or 1 after printing the error. */
int vw_op_roles(trc_reader *r, int64_t op_id, struct vw_role_list *l);
/* Index of role in l, or -1. */
int vw_role_find(const struct vw_role_list *l, const char *role);

/* Op filters of `ops` and `export --all`: -1 / NULL = any. */
struct vw_op_filter {
    int64_t step;
    int64_t layer; /* -1 any; ops outside blocks have layer -1 and match only "any" */
    const char *name_glob;
    const char *kind;
};
bool vw_op_filter_match(const struct vw_op_filter *f, const struct trc_op_info *op);

/* "1.5 KiB" style sizes into buf. */
char *vw_fmt_bytes(char *buf, size_t cap, int64_t n);
/* "[6,64]" into buf. */
char *vw_fmt_shape(char *buf, size_t cap, int n_dims, const int64_t *shape);
const char *vw_dtype_name(enum trc_dtype dt);

/* ---- saved queries (queries.c) ------------------------------------------------------------- */

#define VW_QUERY_MAX_PARAMS 4

struct vw_query_param {
    const char *name; /* bound to :name in the SQL */
    const char *def;  /* default value (text; numbers are bound as numbers) */
    const char *help;
};

struct vw_query {
    const char *name;
    const char *summary; /* one line */
    const char *sql;
    struct vw_query_param params[VW_QUERY_MAX_PARAMS]; /* name NULL ends the list */
};

/* The i-th saved query (0-based), NULL past the end. */
const struct vw_query *vw_query_at(int i);
const struct vw_query *vw_query_find(const char *name);
/* Prints every saved query with its parameters and SQL (`lltrace sql --list-queries`). */
void vw_queries_list(FILE *f);

/*
 * Binds the named parameters (:name) of a prepared statement from "KEY=VALUE" strings, falling
 * back to the defaults of q (NULL for ad-hoc SQL). Values that parse as integers or reals are
 * bound as such, others as text. With q, a KEY the query does not take is an error. Returns 0,
 * or -1 with a message in err ("missing value for parameter ':pos'").
 */
int vw_query_bind(void *stmt, const struct vw_query *q, int n_kv, char *const *kv, char *err,
                  size_t errlen);

/* ---- numpy-like preview (preview.c) ------------------------------------------------------- */

struct vw_preview_opts {
    int edge;           /* items kept at each end of a long dimension (numpy: 3) */
    bool full;          /* print every element */
    const char *indent; /* prefix of every line */
    int line_width;     /* wrap rows longer than this */
};

/* Prints x, shaped (nd dims, row-major; nd 0 = a scalar), in one common number format. */
void vw_preview_print(FILE *f, const float *x, int nd, const int64_t *shape,
                      const struct vw_preview_opts *o);

/* ---- histogram (histo.c) ------------------------------------------------------------------- */

#define VW_HISTO_MAX_BINS 64

struct vw_histo {
    int n_bins;
    int64_t counts[VW_HISTO_MAX_BINS];
    double lo, hi; /* range of the finite values */
    int64_t n_finite, n_nan, n_inf;
};

/* Bins the finite values of x[0..n) into n_bins (1..VW_HISTO_MAX_BINS) equal-width bins. */
void vw_histo_compute(const float *x, int64_t n, int n_bins, struct vw_histo *h);
/* One line per bin, "lo .. hi  <bar>  count", bars up to `width` cells; then NaN/Inf counts. */
void vw_histo_print(FILE *f, const struct vw_histo *h, const char *indent, int width);

#endif
