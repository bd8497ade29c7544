/*
 * cmd_ops.c - `lltrace ops TRACE [filters]`: one line per recorded op in execution order, with
 * the shape, dtype and stats of its output, its stored/raw bytes and its time. Reads only
 * headers through the reader API: no tensor is decompressed, so listing a large trace is fast.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "query_int.h"
#include "vw.h"

static const char usage_text[] =
    "usage: lltrace ops TRACE [--step S] [--layer L] [--name GLOB] [--kind K] [--run R]\n"
    "                         [--csv | --json]\n"
    "\n"
    "Lists the recorded ops in execution order, one line each: step, seq (order within the\n"
    "step), layer, canonical name, shape and dtype of the output, its stats over finite\n"
    "elements (min max mean rms) and NaN/Inf counts, stored (compressed) and raw bytes of the\n"
    "output (stored 0: only stats were recorded), and the engine's time in microseconds.\n"
    "\n"
    "options:\n"
    "  --step S      only step S (step 0 is the prompt batch)\n"
    "  --layer L     only layer L\n"
    "  --name GLOB   only names matching GLOB (shell pattern: 'blk.*.rope_?', '*ffn*')\n"
    "  --kind K      only ops of kind K (rms_norm, matmul, rope, attn_scores, softmax,\n"
    "                attn_ctx, add, swiglu, get_rows, cache_write)\n"
    "  --run R       run R (default: the first run)\n"
    "  --csv, --json machine-readable output (exact numbers; JSON shape as an array)\n"
    "  -h, --help    show this help\n"
    "\n"
    "examples:\n"
    "  lltrace ops t.trace --step 0 --layer 0\n"
    "  lltrace ops t.trace --name 'blk.*.l_out' --json\n"
    "  lltrace ops t.trace --kind rope --step 3\n"
    "\n"
    "exit codes: 0 success, 1 unreadable or corrupt trace, 2 usage\n";

struct ops_args {
    const char *trace;
    int64_t run;
    struct vw_op_filter filter;
    struct vw_table_opts topts;
};

static int parse_i64_opt(const char *opt, const char *v, int64_t *out)
{
    long long x;
    if (vw_parse_i64(v, 0, INT64_MAX, &x) < 0) {
        return vw_usage_error("ops", "--%s: '%s' is not a non-negative integer", opt, v);
    }
    *out = x;
    return 0;
}

static int parse_args(int argc, char **argv, struct ops_args *a)
{
    static const struct option longopts[] = {{"step", required_argument, NULL, 's'},
                                             {"layer", required_argument, NULL, 'l'},
                                             {"name", required_argument, NULL, 'n'},
                                             {"kind", required_argument, NULL, 'k'},
                                             {"run", required_argument, NULL, 'r'},
                                             {"csv", no_argument, NULL, 'c'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c, rc = 0, li = 0;
    optind = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "h", longopts, &li)) != -1) {
        if (c == 's' || c == 'l' || c == 'r') {
            int64_t *dst = c == 's' ? &a->filter.step : c == 'l' ? &a->filter.layer : &a->run;
            rc = parse_i64_opt(longopts[li].name, optarg, dst);
        } else if (c == 'n' || c == 'k') {
            *(c == 'n' ? &a->filter.name_glob : &a->filter.kind) = optarg;
        } else if (c == 'c' || c == 'j') {
            a->topts.format = c == 'c' ? VW_TABLE_FORMAT_CSV : VW_TABLE_FORMAT_JSON;
        } else if (c == 'h') {
            fputs(usage_text, stdout);
            return -1;
        } else {
            return vw_usage_error("ops", "bad option");
        }
    }
    if (rc != 0) {
        return rc;
    }
    if (optind + 1 != argc) {
        return vw_usage_error("ops", optind >= argc ? "missing TRACE" : "too many arguments");
    }
    a->trace = argv[optind];
    return 0;
}

static const char *const columns[] = {"step",  "seq", "layer",  "name", "shape",
                                      "dtype", "min", "max",    "mean", "rms",
                                      "nan",   "inf", "stored", "raw",  "time_us"};
enum { N_COLUMNS = (int)(sizeof columns / sizeof columns[0]) };

static int add_real(vw_table *t, double v)
{
    return isnan(v) ? vw_table_add_null(t) : vw_table_add_f64(t, v);
}

/* The output tensor's columns (shape .. raw), NULLs when the op has no output tensor. */
static int add_tensor_cells(trc_reader *r, vw_table *t, int64_t op_id)
{
    struct trc_tensor_info ti;
    int64_t tid;
    char shape[96];
    int rc = trc_reader_op_tensor(r, op_id, "out", &tid);
    if (rc == TRC_ENOTFOUND) {
        int e = 0;
        for (int i = 0; i < 10; i++) {
            e |= vw_table_add_null(t);
        }
        return e;
    }
    if (rc < 0 || trc_reader_tensor_info(r, tid, &ti) < 0) {
        return -2;
    }
    rc = vw_table_add_text(t, VW_CELL_JSON, vw_fmt_shape(shape, sizeof shape, ti.n_dims, ti.shape));
    rc |= vw_table_add_text(t, VW_CELL_TEXT, vw_dtype_name(ti.dtype));
    rc |= add_real(t, ti.min);
    rc |= add_real(t, ti.max);
    rc |= add_real(t, ti.mean);
    rc |= add_real(t, ti.rms);
    rc |= vw_table_add_i64(t, ti.n_nan);
    rc |= vw_table_add_i64(t, ti.n_inf);
    rc |= vw_table_add_i64(t, ti.stored_bytes);
    rc |= vw_table_add_i64(t, ti.nbytes);
    return rc;
}

/* One row; returns 0, -1 (out of memory) or -2 (reader error). */
static int add_row(trc_reader *r, vw_table *t, const struct trc_op_info *op)
{
    int rc = vw_table_add_i64(t, op->step);
    rc |= vw_table_add_i64(t, op->seq);
    rc |= op->layer >= 0 ? vw_table_add_i64(t, op->layer) : vw_table_add_null(t);
    rc |= vw_table_add_text(t, VW_CELL_TEXT, op->name);
    if (rc != 0) {
        return -1;
    }
    rc = add_tensor_cells(r, t, op->id);
    if (rc != 0) {
        return rc;
    }
    if (op->elapsed_ns < 0) {
        return vw_table_add_null(t);
    }
    return vw_table_add_f64(t, (double)op->elapsed_ns / 1e3);
}

static int list_ops(trc_reader *r, const struct ops_args *a, vw_table *t)
{
    trc_cursor *c = NULL;
    struct trc_op_info op;
    int rc = trc_reader_ops(r, a->run, a->filter.step, &c);
    while (rc >= 0 && (rc = trc_cursor_next_op(c, &op)) == 1) {
        if (!vw_op_filter_match(&a->filter, &op)) {
            continue;
        }
        int e = add_row(r, t, &op);
        if (e == -1) {
            trc_cursor_close(c);
            return vw_error("out of memory");
        }
        if (e == -2) {
            rc = -1;
        }
    }
    trc_cursor_close(c);
    return rc < 0 ? vw_reader_error(r) : 0;
}

int cmd_ops(int argc, char **argv)
{
    struct ops_args a = {.run = -1, .filter = {-1, -1, NULL, NULL}};
    a.topts = (struct vw_table_opts){VW_TABLE_FORMAT_ALIGNED, 0, 5, "-"};
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    trc_reader *r = NULL;
    if (vw_open_trace_reader(a.trace, &r) != 0) {
        return 1;
    }
    rc = a.run < 0 ? vw_reader_first_run(r, &a.run) : 0;
    rc = rc ? rc : vw_check_selection(r, a.run, a.filter.step, a.filter.layer);
    vw_table *t = rc == 0 ? vw_table_create(N_COLUMNS, columns) : NULL;
    if (rc == 0 && !t) {
        rc = vw_error("out of memory");
    }
    if (rc == 0) {
        rc = list_ops(r, &a, t);
    }
    if (rc == 0 && vw_table_print(t, stdout, &a.topts) < 0) {
        rc = vw_error("stdout: write error");
    }
    vw_table_destroy(t);
    trc_reader_close(r);
    return rc;
}
