/*
 * cmd_show.c - `lltrace show TRACE OP`: one op in detail. Its header (step, layer, positions,
 * params, weights), then each input and output: dtype, shape, sizes, stats, a numpy-like
 * preview and a histogram; for rope ops the positions and the cos/sin rows applied. --pos and
 * --head select rows and heads. Which axis holds positions or heads follows the engine's layouts
 * (schema/trace.sql): activations [n_pos, ...], rope [n_pos, n_heads, head_dim], attention
 * scores and probabilities [n_head, n_pos, n_kv], 2-D [n_pos, n_heads * head_dim] split by the
 * run's head_dim. Partial tensors (imports) list their known elements with their indices.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cmds.h"
#include "query_int.h"
#include "vw.h"

static const char usage_text[] =
    "usage: lltrace show TRACE OP [--step S] [--run R] [--role ROLE] [--pos P] [--head H]\n"
    "                             [--full] [--bins N]\n"
    "\n"
    "Shows one op: OP is an op id (as listed by 'lltrace sql' / ops.id) or a canonical name\n"
    "(blk.0.attn_q, output, ...) looked up at --step (default 0). For each input and output:\n"
    "dtype, shape, raw and stored size, stats (finite elements; NaN/Inf counted), a numpy-like\n"
    "preview (3 items at each end of long dimensions; everything with --full) and a histogram.\n"
    "For rope ops, the positions and the cos/sin rows the engine applied.\n"
    "\n"
    "options:\n"
    "  --step S      step of a named op (default 0: the prompt batch)\n"
    "  --run R       run of a named op (default: the first run)\n"
    "  --role ROLE   only this tensor: in0, in1, out, pos, cos, sin, ...\n"
    "  --pos P       only the row of absolute position P\n"
    "  --head H      only head H: (rows, heads, dim) tensors, [n_head, rows, n_kv] scores, and\n"
    "                [rows, n_heads * head_dim] projections\n"
    "  --full        print every element\n"
    "  --bins N      histogram bins (default 10, 0 = no histogram)\n"
    "  -h, --help    show this help\n"
    "\n"
    "examples:\n"
    "  lltrace show t.trace blk.0.rope_q --pos 2 --head 1\n"
    "  lltrace show t.trace output --step 3 --role out\n"
    "  lltrace show t.trace 42 --full\n"
    "\n"
    "exit codes: 0 success, 1 no such op / role / position, corrupt data, 2 usage\n";

struct show_args {
    const char *trace, *op, *role;
    int64_t run, step, pos, head, bins;
    bool full;
};

/* Everything about the op that the tensors' display needs (strings copied from the reader). */
struct show_ctx {
    trc_reader *r;
    const struct show_args *a;
    struct trc_op_info op;
    char name[160], kind[48], params[512];
    int64_t n_head, n_head_kv, head_dim;
    int32_t *pos;   /* [n_rows] positions of the op's rows */
    int64_t n_rows; /* op.n_pos */
    int64_t row;    /* row selected by --pos, -1 = all */
};

/* A tensor seen through the selection: up to 5 dims, fix[d] >= 0 selects one index. */
struct view {
    int nd;
    int64_t dim[5], fix[5];
    const char *note; /* why a selection did not apply, or NULL */
};

static int parse_num(const char *opt, const char *v, int64_t lo, int64_t *out)
{
    long long x;
    if (vw_parse_i64(v, lo, INT32_MAX, &x) < 0) {
        return vw_usage_error("show", "--%s: '%s' is not a valid number", opt, v);
    }
    *out = x;
    return 0;
}

static int parse_args(int argc, char **argv, struct show_args *a)
{
    static const struct option lo[] = {{"step", required_argument, NULL, 's'},
                                       {"run", required_argument, NULL, 'r'},
                                       {"role", required_argument, NULL, 'o'},
                                       {"pos", required_argument, NULL, 'p'},
                                       {"head", required_argument, NULL, 'H'},
                                       {"full", no_argument, NULL, 'f'},
                                       {"bins", required_argument, NULL, 'b'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int c, rc = 0, li = 0;
    optind = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "h", lo, &li)) != -1) {
        const char *opt = lo[li].name;
        if (c == 's' || c == 'r' || c == 'p' || c == 'H') {
            int64_t *dst = c == 's' ? &a->step : c == 'r' ? &a->run : c == 'p' ? &a->pos : &a->head;
            rc = parse_num(opt, optarg, 0, dst);
        } else if (c == 'b') {
            rc = parse_num(opt, optarg, 0, &a->bins);
            rc = rc == 0 && a->bins > VW_HISTO_MAX_BINS
                     ? vw_usage_error("show", "--bins: at most %d", (int)VW_HISTO_MAX_BINS)
                     : rc;
        } else if (c == 'o' || c == 'f') {
            a->role = c == 'o' ? optarg : a->role;
            a->full = a->full || c == 'f';
        } else if (c == 'h') {
            fputs(usage_text, stdout);
            return -1;
        } else {
            return vw_usage_error("show", "bad option");
        }
    }
    if (rc == 0 && optind + 2 != argc) {
        rc = vw_usage_error("show",
                            optind + 2 > argc ? "missing TRACE or OP" : "too many arguments");
    }
    if (rc == 0) {
        a->trace = argv[optind];
        a->op = argv[optind + 1];
    }
    return rc;
}

/* ---- context ------------------------------------------------------------------------------- */

static void run_dims(struct show_ctx *c)
{
    trc_cursor *cur = NULL;
    struct trc_run_info ri;
    c->n_head = c->n_head_kv = c->head_dim = -1;
    if (trc_reader_runs(c->r, &cur) == 0) {
        while (trc_cursor_next_run(cur, &ri) == 1) {
            if (ri.id == c->op.run_id) {
                c->n_head = ri.n_head;
                c->n_head_kv = ri.n_head_kv;
                c->head_dim = ri.head_dim;
            }
        }
    }
    trc_cursor_close(cur);
}

/* The absolute position of each row: the op's 'pos' tensor when stored, else pos0 + row. */
static int load_positions(struct show_ctx *c)
{
    int64_t tid;
    struct trc_tensor_info ti;
    /* n_pos comes from an untrusted file: beyond any context length, treat it as unknown. */
    c->n_rows = c->op.n_pos > 0 && c->op.n_pos <= (1 << 24) ? c->op.n_pos : 0;
    c->pos = calloc((size_t)c->n_rows + 1, sizeof *c->pos);
    if (!c->pos) {
        return vw_error("out of memory");
    }
    for (int64_t i = 0; i < c->n_rows; i++) {
        c->pos[i] = (int32_t)(c->op.pos0 + i);
    }
    if (trc_reader_op_tensor(c->r, c->op.id, "pos", &tid) == 0 &&
        trc_reader_tensor_info(c->r, tid, &ti) == 0 && ti.has_data && !ti.partial &&
        ti.dtype == TRC_DTYPE_I32 && ti.n_elems == c->n_rows) {
        if (trc_reader_tensor_raw(c->r, tid, c->pos, (size_t)c->n_rows * sizeof *c->pos) < 0) {
            return vw_reader_error(c->r);
        }
    }
    return 0;
}

static int select_row(struct show_ctx *c)
{
    c->row = -1;
    if (c->a->pos < 0) {
        return 0;
    }
    for (int64_t i = 0; i < c->n_rows; i++) {
        if (c->pos[i] == c->a->pos) {
            c->row = i;
            return 0;
        }
    }
    if (c->n_rows == 0) {
        return vw_error("%s: op '%s' at step %lld covers no positions", trc_reader_path(c->r),
                        c->name, (long long)c->op.step);
    }
    return vw_error("%s: op '%s' at step %lld covers positions %lld..%lld, not %lld",
                    trc_reader_path(c->r), c->name, (long long)c->op.step, (long long)c->pos[0],
                    (long long)c->pos[c->n_rows - 1], (long long)c->a->pos);
}

static int load_ctx(struct show_ctx *c, int64_t op_id)
{
    if (trc_reader_op(c->r, op_id, &c->op) < 0) {
        return vw_reader_error(c->r);
    }
    snprintf(c->name, sizeof c->name, "%s", c->op.name ? c->op.name : "");
    snprintf(c->kind, sizeof c->kind, "%s", c->op.kind ? c->op.kind : "");
    snprintf(c->params, sizeof c->params, "%s", c->op.params_json ? c->op.params_json : "");
    c->op.name = c->name;
    c->op.kind = c->kind;
    c->op.params_json = c->params;
    run_dims(c);
    int rc = load_positions(c);
    return rc != 0 ? rc : select_row(c);
}

/* ---- header -------------------------------------------------------------------------------- */

static void print_weights(struct show_ctx *c)
{
    sqlite3 *db = trc_reader_sql_handle(c->r);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT role, name FROM op_weights WHERE op_id = ?1 ORDER BY role",
                           -1, &st, NULL) != SQLITE_OK) {
        return;
    }
    sqlite3_bind_int64(st, 1, c->op.id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        printf("  %s %s (in the model file; not stored in the trace)\n",
               (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
}

static void print_header(struct show_ctx *c)
{
    const struct trc_op_info *o = &c->op;
    printf("op %lld  %s  (%s)\n  run %lld  step %lld  seq %lld", (long long)o->id, o->name, o->kind,
           (long long)o->run_id, (long long)o->step, (long long)o->seq);
    if (o->layer >= 0) {
        printf("  layer %d", o->layer);
    }
    if (c->n_rows > 0) {
        printf("  positions %lld..%lld", (long long)c->pos[0], (long long)c->pos[c->n_rows - 1]);
    }
    printf("  level %s", o->level == TRC_LEVEL_FULL ? "full" : "stats");
    if (o->elapsed_ns >= 0) {
        printf("  time %.1f us", (double)o->elapsed_ns / 1e3);
    }
    printf("\n");
    if (c->params[0]) {
        printf("  params %s\n", c->params);
    }
    print_weights(c);
}

/* ---- selection ----------------------------------------------------------------------------- */

static bool heads_first(const struct show_ctx *c, const struct trc_tensor_info *ti,
                        const char *role)
{
    if (ti->n_dims != 3) {
        return false;
    }
    if (ti->shape[0] == c->n_rows && ti->shape[1] != c->n_rows) {
        return false;
    }
    if (ti->shape[1] == c->n_rows && ti->shape[0] != c->n_rows) {
        return true;
    }
    return strcmp(c->kind, "softmax") == 0 ||
           (strcmp(c->kind, "attn_scores") == 0 && strcmp(role, "out") == 0) ||
           (strcmp(c->kind, "attn_ctx") == 0 && strcmp(role, "in0") == 0);
}

/* Splits [rows, n_heads * head_dim] into [rows, n_heads, head_dim] when that fits the run. */
static bool split_heads(const struct show_ctx *c, const struct trc_tensor_info *ti, struct view *v)
{
    if (ti->n_dims != 2 || c->head_dim <= 0 || ti->shape[1] % c->head_dim != 0) {
        return false;
    }
    int64_t h = ti->shape[1] / c->head_dim;
    if (h != c->n_head && h != c->n_head_kv) {
        return false;
    }
    v->nd = 3;
    v->dim[1] = h;
    v->dim[2] = c->head_dim;
    return true;
}

/* Builds the view of a tensor under --pos / --head; 1 (after a message) on a bad head. */
static int make_view(const struct show_ctx *c, const struct trc_tensor_info *ti, const char *role,
                     struct view *v)
{
    memset(v, 0, sizeof *v);
    v->nd = ti->n_dims;
    for (int d = 0; d < 5; d++) {
        v->dim[d] = d < ti->n_dims && d < 4 ? ti->shape[d] : 1;
        v->fix[d] = -1;
    }
    const bool hf = heads_first(c, ti, role);
    const int pos_axis = hf ? 1 : 0;
    if (c->row >= 0 && ti->n_dims > pos_axis && ti->shape[pos_axis] == c->n_rows) {
        v->fix[pos_axis] = c->row;
    } else if (c->row >= 0) {
        v->note = "--pos does not apply to this tensor (no position axis)";
    }
    if (c->a->head < 0) {
        return 0;
    }
    int head_axis = hf ? 0 : 1;
    if (ti->n_dims < 3 && !split_heads(c, ti, v)) {
        v->note = "--head does not apply to this tensor (no head axis)";
        return 0;
    }
    if (c->a->head >= v->dim[head_axis]) {
        return vw_error("%s: --head %lld: the %s tensor of '%s' has %lld heads",
                        trc_reader_path(c->r), (long long)c->a->head, role, c->name,
                        (long long)v->dim[head_axis]);
    }
    v->fix[head_axis] = c->a->head;
    return 0;
}

/* Copies the selected elements of x (dense, shaped by v->dim) into out; returns the count and
 * writes the remaining free dims into shape/nd. */
static int64_t extract(const struct view *v, const float *x, float *out, int64_t *shape, int *nd)
{
    int64_t idx[5] = {0}, n = 0;
    bool empty = false;
    *nd = 0;
    for (int d = 0; d < v->nd; d++) {
        if (v->fix[d] < 0) {
            shape[(*nd)++] = v->dim[d];
        }
        idx[d] = v->fix[d] < 0 ? 0 : v->fix[d];
        empty = empty || v->dim[d] == 0;
    }
    if (empty) {
        return 0; /* an empty dimension: nothing to select */
    }
    for (;;) {
        int64_t flat = 0;
        for (int d = 0; d < v->nd; d++) {
            flat = flat * v->dim[d] + idx[d];
        }
        out[n++] = x[flat];
        int d = v->nd - 1;
        while (d >= 0 && (v->fix[d] >= 0 || ++idx[d] == v->dim[d])) {
            idx[d] = v->fix[d] < 0 ? 0 : v->fix[d];
            d--;
        }
        if (d < 0) {
            return n;
        }
    }
}

/* True when the flat index lies in the selection; writes its multi-index text into buf. */
static bool index_selected(const struct view *v, int64_t flat, char *buf, size_t cap)
{
    int64_t idx[5];
    bool in = true;
    for (int d = v->nd - 1; d >= 0; d--) {
        idx[d] = v->dim[d] > 0 ? flat % v->dim[d] : 0;
        flat = v->dim[d] > 0 ? flat / v->dim[d] : 0;
        in = in && (v->fix[d] < 0 || v->fix[d] == idx[d]);
    }
    size_t k = 0;
    for (int d = 0; d < v->nd && k < cap; d++) {
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "[", (long long)idx[d]);
    }
    if (k < cap) {
        snprintf(buf + k, cap - k, "]");
    }
    return in;
}

/* ---- tensors ------------------------------------------------------------------------------- */

static void print_stats_line(const char *what, double mn, double mx, double mean, double rms,
                             int64_t n_nan, int64_t n_inf)
{
    printf("    %smin %.6g  max %.6g  mean %.6g  rms %.6g  nan %lld  inf %lld\n", what, mn, mx,
           mean, rms, (long long)n_nan, (long long)n_inf);
}

static void print_selection_stats(const float *x, int64_t n)
{
    double mn = HUGE_VAL, mx = -HUGE_VAL, s = 0, s2 = 0;
    int64_t nan = 0, inf = 0, fin = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(x[i]) || isinf(x[i])) {
            nan += isnan(x[i]) != 0;
            inf += isinf(x[i]) != 0;
            continue;
        }
        mn = fmin(mn, (double)x[i]);
        mx = fmax(mx, (double)x[i]);
        s += (double)x[i];
        s2 += (double)x[i] * (double)x[i];
        fin++;
    }
    if (fin == 0) {
        mn = mx = s = s2 = (double)NAN;
        fin = 1;
    }
    print_stats_line("selected: ", mn, mx, s / (double)fin, sqrt(s2 / (double)fin), nan, inf);
}

static void print_histogram(const struct show_ctx *c, const float *x, int64_t n)
{
    struct vw_histo h;
    if (c->a->bins <= 0 || n <= 1) {
        return;
    }
    vw_histo_compute(x, n, (int)c->a->bins, &h);
    printf("    histogram:\n");
    vw_histo_print(stdout, &h, "    ", 40);
}

static int show_partial(const struct show_ctx *c, const struct trc_tensor_info *ti,
                        const struct view *v, const float *x)
{
    int64_t *known = malloc((size_t)ti->n_stored * sizeof *known + 1);
    float *sel = malloc((size_t)ti->n_stored * sizeof *sel + 1);
    int64_t n_sel = 0, shown = 0, limit = c->a->full ? INT64_MAX : 20;
    char idx[128];
    if (!known || !sel || trc_reader_tensor_known(c->r, ti->id, known, ti->n_stored) < 0) {
        free(known);
        free(sel);
        return known && sel ? vw_reader_error(c->r) : vw_error("out of memory");
    }
    printf("    partial: %lld of %lld elements known (an imported dump)\n", (long long)ti->n_stored,
           (long long)ti->n_elems);
    for (int64_t i = 0; i < ti->n_stored; i++) {
        if (!index_selected(v, known[i], idx, sizeof idx)) {
            continue;
        }
        sel[n_sel++] = x[i];
        if (shown++ < limit) {
            printf("    %s = %.6g\n", idx, (double)x[i]);
        }
    }
    if (shown > limit) {
        printf("    ... %lld more (--full shows all)\n", (long long)(shown - limit));
    }
    print_histogram(c, sel, n_sel);
    free(known);
    free(sel);
    return 0;
}

static void show_dense(const struct show_ctx *c, const struct view *v, const float *x,
                       int64_t n_elems)
{
    int64_t shape[5];
    int nd;
    float *sel = malloc((size_t)n_elems * sizeof *sel + 1);
    bool selected = false;
    for (int d = 0; d < v->nd; d++) {
        selected = selected || v->fix[d] >= 0;
    }
    const float *shown = x;
    int64_t n = n_elems;
    if (selected && sel) {
        n = extract(v, x, sel, shape, &nd);
        shown = sel;
        print_selection_stats(sel, n);
    } else {
        nd = v->nd;
        memcpy(shape, v->dim, sizeof shape);
    }
    struct vw_preview_opts po = {3, c->a->full, "    ", 100};
    vw_preview_print(stdout, shown, nd, shape, &po);
    print_histogram(c, shown, n);
    free(sel);
}

static int show_tensor(const struct show_ctx *c, const char *role, int64_t tid)
{
    struct trc_tensor_info ti;
    struct view v;
    char shape[96], raw[32], stored[48];
    if (trc_reader_tensor_info(c->r, tid, &ti) < 0) {
        return vw_reader_error(c->r);
    }
    if (ti.data_of > 0) { /* the same bytes, stored once in another row */
        snprintf(stored, sizeof stored, "in tensor %lld", (long long)ti.data_of);
    } else {
        vw_fmt_bytes(stored, sizeof stored, ti.stored_bytes);
    }
    printf("\n%s  %s %s  tensor %lld  raw %s  stored %s  hash %s\n", role, vw_dtype_name(ti.dtype),
           vw_fmt_shape(shape, sizeof shape, ti.n_dims, ti.shape), (long long)tid,
           vw_fmt_bytes(raw, sizeof raw, ti.nbytes), ti.has_data ? stored : "-", ti.hash);
    print_stats_line("", ti.min, ti.max, ti.mean, ti.rms, ti.n_nan, ti.n_inf);
    if (!ti.has_data) {
        printf("    (only stats were recorded)\n");
        return 0;
    }
    if (make_view(c, &ti, role, &v) != 0) {
        return 1;
    }
    if (v.note) {
        printf("    (%s)\n", v.note);
    }
    float *x = malloc((size_t)ti.n_stored * sizeof *x + 1);
    if (!x) {
        return vw_error("out of memory");
    }
    int rc = trc_reader_tensor_f32(c->r, tid, x, ti.n_stored) < 0 ? vw_reader_error(c->r) : 0;
    if (rc == 0 && ti.partial) {
        rc = show_partial(c, &ti, &v, x);
    } else if (rc == 0) {
        show_dense(c, &v, x, ti.n_stored);
    }
    free(x);
    return rc;
}

/* ---- rope ---------------------------------------------------------------------------------- */

/* One row of a [n_rows, k] f32 table, or NULL (caller frees). */
static float *table_rows(const struct show_ctx *c, int64_t tid, int64_t *k)
{
    struct trc_tensor_info ti;
    if (trc_reader_tensor_info(c->r, tid, &ti) < 0 || !ti.has_data || ti.partial ||
        ti.n_dims != 2 || ti.shape[0] != c->n_rows) {
        return NULL;
    }
    float *x = malloc((size_t)ti.n_elems * sizeof *x + 1);
    if (x && trc_reader_tensor_f32(c->r, tid, x, ti.n_elems) < 0) {
        free(x);
        return NULL;
    }
    *k = ti.shape[1];
    return x;
}

static void show_rope(const struct show_ctx *c, int64_t cos_id, int64_t sin_id)
{
    int64_t kc = 0, ks = 0;
    float *cs = table_rows(c, cos_id, &kc), *sn = table_rows(c, sin_id, &ks);
    struct vw_preview_opts po = {4, c->a->full, "", 1000};
    printf("\nrope table: the cos and sin the engine applied, one row per position\n");
    const bool cut = !c->a->full && c->row < 0 && c->n_rows > 8;
    for (int64_t i = 0; cs && sn && i < c->n_rows; i++) {
        if (c->row >= 0 && i != c->row) {
            continue;
        }
        if (cut && i == 3) {
            printf("  ... (%lld rows; --full or --pos P shows them)\n", (long long)c->n_rows - 6);
            i = c->n_rows - 3;
        }
        printf("  pos %-5d cos ", c->pos[i]);
        vw_preview_print(stdout, cs + i * kc, 1, &kc, &po);
        printf("            sin ");
        vw_preview_print(stdout, sn + i * ks, 1, &ks, &po);
    }
    if (!cs || !sn) {
        printf("  (cos/sin tables not stored in full)\n");
    }
    free(cs);
    free(sn);
}

/* ---- the op -------------------------------------------------------------------------------- */

static int missing_role(const struct show_ctx *c, const struct vw_role_list *l)
{
    char have[256] = "";
    size_t k = 0;
    for (int i = 0; i < l->n && k < sizeof have; i++) {
        k += (size_t)snprintf(have + k, sizeof have - k, "%s%s", i ? ", " : "", l->role[i]);
    }
    return vw_error("%s: op %lld '%s' has no tensor with role '%s' (it has %s)",
                    trc_reader_path(c->r), (long long)c->op.id, c->name, c->a->role,
                    l->n ? have : "none");
}

static int show_op(struct show_ctx *c)
{
    struct vw_role_list l;
    int rc = vw_op_roles(c->r, c->op.id, &l);
    const bool rope = strcmp(c->kind, "rope") == 0;
    if (rc == 0 && c->a->role && vw_role_find(&l, c->a->role) < 0) {
        return missing_role(c, &l);
    }
    if (rc == 0 && c->a->head >= 0 && c->n_head > 0 && c->a->head >= c->n_head) {
        return vw_error("%s: --head %lld: the model has %lld heads (0..%lld)",
                        trc_reader_path(c->r), (long long)c->a->head, (long long)c->n_head,
                        (long long)c->n_head - 1);
    }
    print_header(c);
    for (int i = 0; rc == 0 && i < l.n; i++) {
        const bool table =
            !strcmp(l.role[i], "pos") || !strcmp(l.role[i], "cos") || !strcmp(l.role[i], "sin");
        if (c->a->role ? strcmp(c->a->role, l.role[i]) != 0 : rope && table) {
            continue;
        }
        rc = show_tensor(c, l.role[i], l.tid[i]);
    }
    int ic = vw_role_find(&l, "cos"), is = vw_role_find(&l, "sin");
    if (rc == 0 && rope && !c->a->role && ic >= 0 && is >= 0) {
        show_rope(c, l.tid[ic], l.tid[is]);
    }
    return rc;
}

int cmd_show(int argc, char **argv)
{
    struct show_args a = {.run = -1, .step = 0, .pos = -1, .head = -1, .bins = 10};
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    struct show_ctx c = {.a = &a};
    int64_t op_id;
    if (vw_open_trace_reader(a.trace, &c.r) != 0) {
        return 1;
    }
    rc = a.run < 0 ? vw_reader_first_run(c.r, &a.run) : 0;
    rc = rc == 0 ? vw_op_find(c.r, a.op, a.run, a.step, &op_id) : rc;
    rc = rc == 0 ? load_ctx(&c, op_id) : rc;
    rc = rc == 0 ? show_op(&c) : rc;
    fflush(stdout);
    free(c.pos);
    trc_reader_close(c.r);
    return rc;
}
