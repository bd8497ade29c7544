/*
 * attrib.c - the recorded activations explain reads from a trace (struct vw_xrun) and the direct
 * logit attribution computed from them (the math is in attrib_int.h).
 *
 * Reading is defensive: a trace may come from an import that holds only some ops, some of them
 * stats only or partial (a printed dump keeps a few elements per row). Every row that cannot be
 * read is left NULL with a reason naming the op, so callers can say exactly what is missing
 * instead of failing on the first gap. Only what makes the request itself impossible (no run, a
 * step out of range, a corrupt tensor) is an error. Uses the tracer's reader API and, for the
 * tokens table, its SQL connection; the model is used through lm.h only.
 */
#include "attrib_int.h"

#include <assert.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ----------------------------------------------------------------------------
 */

static char *fmt_dup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A malloc'd formatted string (NULL when out of memory). */
static char *fmt_dup(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return strdup(buf);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- slots ------------------------------------------------------------------------------------
 */

int64_t vw_xslot_layer(int64_t l, int kind)
{
    assert(kind >= 0 && kind < VW_XL_COUNT);
    return VW_XS_COUNT + l * VW_XL_COUNT + kind;
}

void vw_xslot_name(const struct vw_xrun *x, int64_t slot, char *buf, size_t cap, const char **role)
{
    static const char *const global[VW_XS_COUNT] = {"tok_embd", "output_norm", "output"};
    static const char *const layer[VW_XL_COUNT] = {"attn_out", "ffn_out", "kqv", "ffn_inp",
                                                   "l_out"};
    (void)x;
    *role = slot == VW_XS_FINAL ? "in0" : "out";
    if (slot < VW_XS_COUNT) {
        snprintf(buf, cap, "%s", global[slot]);
        return;
    }
    const int64_t l = (slot - VW_XS_COUNT) / VW_XL_COUNT;
    snprintf(buf, cap, "blk.%lld.%s", (long long)l, layer[(slot - VW_XS_COUNT) % VW_XL_COUNT]);
}

/* True for the slots of the last layer's FFN side, which hold only a step's last position. */
static bool last_layer_tail(const struct vw_xrun *x, int64_t slot)
{
    const int64_t l = x->n_layer - 1;
    return slot == vw_xslot_layer(l, VW_XL_FFN) || slot == vw_xslot_layer(l, VW_XL_RES_ATTN) ||
           slot == vw_xslot_layer(l, VW_XL_RES_FFN) || slot == VW_XS_FINAL || slot == VW_XS_LOGITS;
}

/* ---- the ops of one step ----------------------------------------------------------------------
 */

struct xop {
    int64_t id, pos0, n_pos;
    enum trc_level level;
    char *name;
    char *params; /* NULL when none */
};

struct xops {
    struct xop *v;
    int64_t n, cap;
};

static void xops_release(struct xops *o)
{
    for (int64_t i = 0; o->v && i < o->n; i++) {
        free(o->v[i].name);
        free(o->v[i].params);
    }
    free(o->v);
    memset(o, 0, sizeof *o);
}

static int xops_push(struct xops *o, const struct trc_op_info *in)
{
    if (o->n == o->cap) {
        int64_t cap = o->cap ? o->cap * 2 : 256;
        struct xop *v = realloc(o->v, (size_t)cap * sizeof *v);
        if (!v) {
            return -1;
        }
        o->v = v;
        o->cap = cap;
    }
    struct xop *op = &o->v[o->n];
    op->id = in->id;
    op->pos0 = in->pos0;
    op->n_pos = in->n_pos;
    op->level = in->level;
    op->name = strdup(in->name ? in->name : "");
    op->params = dup_or_null(in->params_json);
    if (!op->name || (in->params_json && !op->params)) {
        free(op->name);
        free(op->params);
        return -1;
    }
    o->n++;
    return 0;
}

static int xops_load(trc_reader *r, int64_t run_id, int64_t step, struct xops *o, char *err,
                     size_t errlen)
{
    trc_cursor *c = NULL;
    struct trc_op_info info;
    int rc = trc_reader_ops(r, run_id, step, &c);
    while (rc >= 0 && (rc = trc_cursor_next_op(c, &info)) > 0) {
        if (xops_push(o, &info) < 0) {
            rc = TRC_ENOMEM;
        }
    }
    trc_cursor_close(c);
    if (rc < 0) {
        set_err(err, errlen, "%s", trc_reader_errmsg(r));
        return -1;
    }
    return 0;
}

/* The op named `name` whose rows cover pos (the last one: a prompt longer than a batch runs the
 * same op once per chunk); *seen tells whether the name occurs at all. */
static const struct xop *xops_find(const struct xops *o, const char *name, int64_t pos,
                                   const struct xop **seen)
{
    const struct xop *found = NULL;
    *seen = NULL;
    for (int64_t i = 0; i < o->n; i++) {
        const struct xop *op = &o->v[i];
        if (strcmp(op->name, name) != 0) {
            continue;
        }
        *seen = op;
        if (pos >= op->pos0 && pos < op->pos0 + op->n_pos) {
            found = op;
        }
    }
    return found;
}

/* ---- reading one row --------------------------------------------------------------------------
 */

/* Row `row` (width floats) of a partial tensor, if all of it is known: the known indices are
 * strictly increasing, so the row is known when its first index is there and the width-1
 * indices after it follow without a gap. Returns the number of its elements known. */
static int64_t partial_row(const int64_t *known, const float *vals, int64_t n, int64_t row,
                           int64_t width, float *dst)
{
    const int64_t lo = row * width, hi = lo + width;
    int64_t a = 0, b = n, cnt = 0;
    while (a < b) {
        int64_t mid = a + (b - a) / 2;
        if (known[mid] < lo) {
            a = mid + 1;
        } else {
            b = mid;
        }
    }
    for (int64_t i = a; i < n && known[i] < hi; i++) {
        dst[known[i] - lo] = vals[i];
        cnt++;
    }
    return cnt;
}

/* Reads the tensor's row into dst. Returns 1 when read, 0 when missing (*why set), -1 on a
 * reading error (err set). */
static int tensor_row(trc_reader *r, const struct trc_tensor_info *ti, const char *name,
                      int64_t row, int64_t width, float *dst, char **why, char *err, size_t errlen)
{
    float *vals = malloc((size_t)(ti->n_stored ? ti->n_stored : 1) * sizeof(float));
    int64_t *known = ti->partial ? malloc((size_t)(ti->n_stored + 1) * sizeof(int64_t)) : NULL;
    int rc = -1;
    if (!vals || (ti->partial && !known)) {
        set_err(err, errlen, "out of memory reading op '%s'", name);
        goto done;
    }
    if (trc_reader_tensor_f32(r, ti->id, vals, ti->n_stored) < 0 ||
        (known && trc_reader_tensor_known(r, ti->id, known, ti->n_stored) < 0)) {
        set_err(err, errlen, "%s", trc_reader_errmsg(r));
        goto done;
    }
    rc = 1;
    if (!ti->partial) {
        memcpy(dst, vals + row * width, (size_t)width * sizeof(float));
    } else {
        int64_t got = partial_row(known, vals, ti->n_stored, row, width, dst);
        if (got < width) {
            *why = fmt_dup("op '%s' holds %lld of the %lld elements of the row (a partial "
                           "dump)",
                           name, (long long)got, (long long)width);
            rc = 0;
        }
    }
done:
    free(vals);
    free(known);
    return rc;
}

/* Checks the op's tensor and reads the row of pos. Same returns as tensor_row. */
static int op_row(trc_reader *r, const struct xop *op, const char *name, const char *role,
                  int64_t pos, int64_t width, float *dst, char **why, char *err, size_t errlen)
{
    struct trc_tensor_info ti;
    int64_t tid;
    int rc = trc_reader_op_tensor(r, op->id, role, &tid);
    if (rc == TRC_ENOTFOUND) {
        *why = fmt_dup("op '%s' has no '%s' tensor", name, role);
        return 0;
    }
    if (rc < 0 || trc_reader_tensor_info(r, tid, &ti) < 0) {
        set_err(err, errlen, "%s", trc_reader_errmsg(r));
        return -1;
    }
    if (!ti.has_data || op->level != TRC_LEVEL_FULL) {
        *why = fmt_dup("op '%s' holds only stats (recorded with --record stats)", name);
        return 0;
    }
    if (ti.n_dims < 1 || ti.shape[0] != op->n_pos || ti.n_elems != op->n_pos * width) {
        *why = fmt_dup("op '%s' has %lld elements for %lld positions, expected rows of %lld", name,
                       (long long)ti.n_elems, (long long)op->n_pos, (long long)width);
        return 0;
    }
    return tensor_row(r, &ti, name, pos - op->pos0, width, dst, why, err, errlen);
}

/* Fills slot `slot` of x (row or why). 0, or -1 on a reading error. */
static int load_slot(trc_reader *r, const struct xops *ops, struct vw_xrun *x, int64_t slot,
                     char *err, size_t errlen)
{
    char name[64];
    const char *role;
    const struct xop *seen;
    vw_xslot_name(x, slot, name, sizeof name, &role);
    const struct xop *op = xops_find(ops, name, x->pos, &seen);
    if (!op && seen && last_layer_tail(x, slot)) {
        x->why[slot] = fmt_dup("op '%s' holds only position %lld: as in llama.cpp, the last "
                               "layer's FFN and the output run on a step's last position",
                               name, (long long)(seen->pos0 + seen->n_pos - 1));
    } else if (!op && seen) {
        x->why[slot] = fmt_dup("op '%s' holds positions %lld..%lld of step %lld, not %lld", name,
                               (long long)seen->pos0, (long long)(seen->pos0 + seen->n_pos - 1),
                               (long long)x->step, (long long)x->pos);
    } else if (!op) {
        x->why[slot] = fmt_dup("op '%s' is not in step %lld of the trace (not recorded, or "
                               "recorded with --record none)",
                               name, (long long)x->step);
    }
    if (!op && !x->why[slot]) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    if (!op) {
        return 0;
    }
    float *row = malloc((size_t)x->width[slot] * sizeof(float));
    if (!row) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    int rc = op_row(r, op, name, role, x->pos, x->width[slot], row, &x->why[slot], err, errlen);
    if (rc == 1) {
        x->row[slot] = row;
        return 0;
    }
    free(row);
    return rc;
}

/* ---- run, step and token ----------------------------------------------------------------------
 */

static int check_dim(const char *path, const char *what, int64_t run_v, int64_t model_v, char *err,
                     size_t errlen)
{
    if (run_v >= 0 && run_v != model_v) {
        set_err(err, errlen, "%s: the trace was recorded with %s %lld but the model has %lld", path,
                what, (long long)run_v, (long long)model_v);
        return -1;
    }
    return 0;
}

static int load_run(trc_reader *r, const struct lm_hparams *hp, struct vw_xrun *x, char *err,
                    size_t errlen)
{
    trc_cursor *c = NULL;
    struct trc_run_info ri;
    int rc = trc_reader_runs(r, &c);
    if (rc >= 0) {
        rc = trc_cursor_next_run(c, &ri);
    }
    if (rc <= 0) {
        set_err(err, errlen, "%s: %s", x->path, rc < 0 ? trc_reader_errmsg(r) : "no run");
        trc_cursor_close(c);
        return -1;
    }
    x->run_id = ri.id;
    x->source = dup_or_null(ri.source);
    x->model_path = dup_or_null(ri.model_path);
    x->model_sha256 = dup_or_null(ri.model_sha256);
    x->faults = dup_or_null(ri.faults);
    x->eps = isfinite(ri.rms_eps) && ri.rms_eps > 0 ? ri.rms_eps : (double)hp->rms_eps;
    rc = check_dim(x->path, "n_layer", ri.n_layer, hp->n_layer, err, errlen);
    rc = rc ? rc : check_dim(x->path, "n_embd", ri.n_embd, hp->n_embd, err, errlen);
    rc = rc ? rc : check_dim(x->path, "n_head", ri.n_head, hp->n_head, err, errlen);
    rc = rc ? rc : check_dim(x->path, "n_vocab", ri.n_vocab, hp->n_vocab, err, errlen);
    trc_cursor_close(c);
    return rc;
}

/* Finds step `step` (first/last steps of the run too) and resolves pos. */
static int load_step(trc_reader *r, struct vw_xrun *x, int64_t step, int64_t pos, char *err,
                     size_t errlen)
{
    trc_cursor *c = NULL;
    struct trc_step_info si;
    bool found = false;
    int rc = trc_reader_steps(r, x->run_id, &c);
    x->first_step = -1;
    while (rc >= 0 && (rc = trc_cursor_next_step(c, &si)) > 0) {
        x->first_step = x->first_step < 0 ? si.step : x->first_step;
        x->last_step = si.step;
        if (si.step == step) {
            found = true;
            x->step_pos0 = si.pos0;
            x->step_n = si.n_tokens;
        }
    }
    trc_cursor_close(c);
    if (rc < 0) {
        set_err(err, errlen, "%s", trc_reader_errmsg(r));
        return -1;
    }
    if (x->first_step < 0) {
        set_err(err, errlen, "%s: the trace has no completed step", x->path);
        return -1;
    }
    if (!found) {
        set_err(err, errlen, "%s: step %lld out of range: the trace has steps %lld..%lld", x->path,
                (long long)step, (long long)x->first_step, (long long)x->last_step);
        return -1;
    }
    x->step = step;
    x->pos = pos < 0 ? x->step_pos0 + x->step_n - 1 : pos;
    if (x->pos < x->step_pos0 || x->pos >= x->step_pos0 + x->step_n) {
        set_err(err, errlen, "%s: position %lld is not in step %lld (positions %lld..%lld)",
                x->path, (long long)pos, (long long)step, (long long)x->step_pos0,
                (long long)(x->step_pos0 + x->step_n - 1));
        return -1;
    }
    x->last_pos = x->pos == x->step_pos0 + x->step_n - 1;
    return 0;
}

/* The token at index pos + 1 of the run: what the model predicted at pos. */
static void load_next_token(trc_reader *r, struct vw_xrun *x)
{
    sqlite3 *db = trc_reader_sql_handle(r);
    sqlite3_stmt *st = NULL;
    x->next_id = -1;
    x->next_prob = (double)NAN;
    x->next_logit = (double)NAN;
    if (sqlite3_prepare_v2(db,
                           "SELECT token_id, prob, logit FROM tokens WHERE run_id = ?1 AND "
                           "idx = ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return;
    }
    sqlite3_bind_int64(st, 1, x->run_id);
    sqlite3_bind_int64(st, 2, x->pos + 1);
    if (sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        x->next_id = id >= 0 && id < x->n_vocab ? (int32_t)id : -1;
        if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
            x->next_prob = sqlite3_column_double(st, 1);
        }
        if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
            x->next_logit = sqlite3_column_double(st, 2);
        }
    }
    sqlite3_finalize(st);
}

/* output_norm's recorded eps, when its params hold one. */
static void load_eps(const struct xops *ops, struct vw_xrun *x)
{
    const struct xop *seen;
    const struct xop *op = xops_find(ops, "output_norm", x->step_pos0 + x->step_n - 1, &seen);
    const char *p = op && op->params ? strstr(op->params, "\"eps\":") : NULL;
    if (p) {
        char *end;
        double v = strtod(p + 6, &end);
        if (end != p + 6 && isfinite(v) && v > 0) {
            x->eps = v;
        }
    }
}

/* ---- vw_xrun ----------------------------------------------------------------------------------
 */

static int alloc_slots(struct vw_xrun *x)
{
    x->n_slots = VW_XS_COUNT + VW_XL_COUNT * x->n_layer;
    x->row = calloc((size_t)x->n_slots, sizeof *x->row);
    x->why = calloc((size_t)x->n_slots, sizeof *x->why);
    x->width = calloc((size_t)x->n_slots, sizeof *x->width);
    if (!x->row || !x->why || !x->width) {
        return -1;
    }
    for (int64_t s = 0; s < x->n_slots; s++) {
        x->width[s] = x->n_embd;
    }
    x->width[VW_XS_LOGITS] = x->n_vocab;
    for (int64_t l = 0; l < x->n_layer; l++) {
        x->width[vw_xslot_layer(l, VW_XL_KQV)] = x->n_head * x->head_dim;
    }
    return 0;
}

int vw_xrun_load(trc_reader *r, const struct lm_hparams *hp, int64_t step, int64_t pos,
                 struct vw_xrun *x, char *err, size_t errlen)
{
    struct xops ops = {0};
    memset(x, 0, sizeof *x);
    x->next_id = -1;
    x->path = strdup(trc_reader_path(r) ? trc_reader_path(r) : "trace");
    x->n_layer = hp->n_layer;
    x->n_embd = hp->n_embd;
    x->n_head = hp->n_head;
    x->head_dim = hp->head_dim;
    x->n_vocab = hp->n_vocab;
    assert(x->n_layer >= 1 && x->n_head * x->head_dim > 0);
    if (!x->path || alloc_slots(x) < 0) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    if (load_run(r, hp, x, err, errlen) < 0 || load_step(r, x, step, pos, err, errlen) < 0 ||
        xops_load(r, x->run_id, x->step, &ops, err, errlen) < 0) {
        xops_release(&ops);
        return -1;
    }
    load_eps(&ops, x);
    load_next_token(r, x);
    for (int64_t s = 0; s < x->n_slots; s++) {
        if (load_slot(r, &ops, x, s, err, errlen) < 0) {
            xops_release(&ops);
            return -1;
        }
    }
    xops_release(&ops);
    return 0;
}

void vw_xrun_release(struct vw_xrun *x)
{
    if (!x) {
        return;
    }
    for (int64_t s = 0; s < x->n_slots; s++) {
        free(x->row ? x->row[s] : NULL);
        free(x->why ? x->why[s] : NULL);
    }
    free(x->row);
    free(x->why);
    free(x->width);
    free(x->path);
    free(x->source);
    free(x->model_path);
    free(x->model_sha256);
    free(x->faults);
    memset(x, 0, sizeof *x);
}

bool vw_xslot_needed(const struct vw_xrun *x, int64_t s)
{
    if (s == VW_XS_FINAL) {
        return false;
    }
    if (!x->last_pos && last_layer_tail(x, s)) {
        return false;
    }
    if (s < VW_XS_COUNT) {
        return true;
    }
    const int kind = (int)((s - VW_XS_COUNT) % VW_XL_COUNT);
    return kind == VW_XL_ATTN || kind == VW_XL_FFN || kind == VW_XL_KQV;
}

int64_t vw_xrun_missing(const struct vw_xrun *x, const char **first)
{
    int64_t n = 0;
    *first = NULL;
    for (int64_t s = 0; s < x->n_slots; s++) {
        if (!x->row[s] && vw_xslot_needed(x, s)) {
            *first = *first ? *first : x->why[s];
            n++;
        }
    }
    return n;
}

/* ---- model rows -------------------------------------------------------------------------------
 */

static const struct lm_gguf_tensor *model_tensor(const lm_model *m, const char *name)
{
    const lm_gguf *g = lm_model_gguf(m);
    const struct lm_gguf_tensor *t = lm_gguf_find_tensor(g, name);
    if (!t && strcmp(name, "output.weight") == 0) {
        t = lm_gguf_find_tensor(g, "token_embd.weight");
    }
    return t;
}

/* Rows [r0, r1) of tensor t, each n floats, into dst ((r1 - r0) * n). */
static int tensor_rows(const struct lm_gguf_tensor *t, int64_t r0, int64_t r1, float *dst,
                       int64_t n)
{
    const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    const int64_t rb = lm_type_row_bytes(t->type, n);
    if (t->ne[0] != n || r0 < 0 || r1 > rows || rb < 0) {
        return LM_EINVAL;
    }
    for (int64_t i = r0; i < r1; i++) {
        int rc = lm_dequant_row(t->type, (const char *)t->data + i * rb, dst + (i - r0) * n, n);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

int vw_model_row(const lm_model *m, const char *name, int64_t row, float *dst, int64_t n)
{
    const struct lm_gguf_tensor *t = model_tensor(m, name);
    return t ? tensor_rows(t, row, row + 1, dst, n) : LM_ENOTFOUND;
}

/* ---- attribution ------------------------------------------------------------------------------
 */

void vw_attr_comp_name(int64_t i, char *buf, size_t cap)
{
    if (i == 0) {
        snprintf(buf, cap, "embedding");
    } else {
        snprintf(buf, cap, "layer %lld %s", (long long)((i - 1) / 2),
                 (i - 1) % 2 == 0 ? "attention" : "ffn");
    }
}

static double dot_d(const double *d, const float *v, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        s += d[i] * (double)v[i];
    }
    return s;
}

/* d = g * (W_out[tok] - W_out[tok2]) (n_embd), before the scale. */
static int direction(const lm_model *m, int64_t n, int32_t tok, int32_t tok2, double *d, char *err,
                     size_t errlen)
{
    float *w = malloc((size_t)n * 3 * sizeof(float));
    int rc = w ? 0 : LM_ENOMEM;
    rc = rc ? rc : vw_model_row(m, "output_norm.weight", 0, w, n);
    rc = rc ? rc : vw_model_row(m, "output.weight", tok, w + n, n);
    rc = rc ? rc : tok2 >= 0 ? vw_model_row(m, "output.weight", tok2, w + 2 * n, n) : 0;
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        const double diff = (double)w[n + i] - (tok2 >= 0 ? (double)w[2 * n + i] : 0.0);
        d[i] = (double)w[i] * diff;
    }
    free(w);
    if (rc < 0) {
        set_err(err, errlen, "%s: cannot read the output weights of tokens %d/%d: %s",
                lm_model_path(m), (int)tok, (int)tok2, lm_strerror(rc));
        return -1;
    }
    return 0;
}

/* The recorded (or lens) logit difference at the attribution point, from residual res. */
static int target_logit(const lm_model *m, const struct vw_xrun *x, const float *res,
                        struct vw_attr *a)
{
    const float *lg = a->at_final ? x->row[VW_XS_LOGITS] : NULL;
    float *tmp = NULL;
    if (!lg && res) {
        tmp = malloc((size_t)x->n_vocab * sizeof(float));
        if (!tmp || vw_lens_logits(m, res, (float)x->eps, tmp) < 0) {
            free(tmp);
            return -1;
        }
        lg = tmp;
    }
    if (lg) {
        a->target = (double)lg[a->tok] - (a->tok2 >= 0 ? (double)lg[a->tok2] : 0.0);
        a->target_recorded = tmp == NULL;
    }
    free(tmp);
    return 0;
}

/* v = W_o^T d for layer l's output projection (rows n_embd, columns n_head * head_dim). */
static int wo_transpose_dot(const lm_model *m, int64_t l, const double *d, int64_t n_embd,
                            int64_t k, double *v)
{
    char name[64];
    snprintf(name, sizeof name, "blk.%lld.attn_output.weight", (long long)l);
    const struct lm_gguf_tensor *t = model_tensor(m, name);
    float *row = malloc((size_t)k * sizeof(float));
    int rc = !t ? LM_ENOTFOUND : !row ? LM_ENOMEM : 0;
    memset(v, 0, (size_t)k * sizeof(double));
    for (int64_t i = 0; rc == 0 && i < n_embd; i++) {
        rc = tensor_rows(t, i, i + 1, row, k);
        for (int64_t j = 0; rc == 0 && j < k; j++) {
            v[j] += d[i] * (double)row[j];
        }
    }
    free(row);
    return rc;
}

/* Per-head contributions of every layer whose kqv row is known. */
static int attr_heads(const lm_model *m, const struct vw_xrun *x, const double *d,
                      struct vw_attr *a, char *err, size_t errlen)
{
    const int64_t hd = x->head_dim, k = x->n_head * hd;
    double *v = malloc((size_t)k * sizeof(double));
    int rc = v ? 0 : LM_ENOMEM;
    for (int64_t l = 0; rc == 0 && l < x->n_layer; l++) {
        const float *kqv = x->row[vw_xslot_layer(l, VW_XL_KQV)];
        if (!kqv) {
            continue;
        }
        rc = wo_transpose_dot(m, l, d, x->n_embd, k, v);
        for (int64_t h = 0; rc == 0 && h < x->n_head; h++) {
            double s = 0;
            for (int64_t j = h * hd; j < (h + 1) * hd; j++) {
                s += v[j] * (double)kqv[j];
            }
            a->head[l * x->n_head + h] = s;
        }
    }
    free(v);
    if (rc < 0) {
        set_err(err, errlen, "%s: cannot read the attention output weights: %s", lm_model_path(m),
                lm_strerror(rc));
        return -1;
    }
    return 0;
}

static int attr_alloc(const struct vw_xrun *x, int32_t tok, int32_t tok2, struct vw_attr *a)
{
    memset(a, 0, sizeof *a);
    a->n_layer = x->n_layer;
    a->n_head = x->n_head;
    a->tok = tok;
    a->tok2 = tok2;
    a->at_final = x->last_pos;
    a->scale = a->target = a->sum = a->residual = (double)NAN;
    a->n_comp = 1 + 2 * x->n_layer;
    a->comp = malloc((size_t)a->n_comp * sizeof(double));
    a->head = malloc((size_t)(x->n_layer * x->n_head) * sizeof(double));
    if (!a->comp || !a->head) {
        return -1;
    }
    for (int64_t i = 0; i < a->n_comp; i++) {
        a->comp[i] = (double)NAN;
    }
    for (int64_t i = 0; i < x->n_layer * x->n_head; i++) {
        a->head[i] = (double)NAN;
    }
    return 0;
}

/* The slot holding component i (0 embedding, 1+2l attention l, 2+2l FFN l). */
static int64_t comp_slot(int64_t i)
{
    return i == 0 ? VW_XS_EMBD : vw_xslot_layer((i - 1) / 2, (i - 1) % 2 ? VW_XL_FFN : VW_XL_ATTN);
}

/* s = 1 / sqrt(mean(res^2) + eps), in double. */
static double rms_scale(const float *res, int64_t n, double eps)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++) {
        ss += (double)res[i] * (double)res[i];
    }
    return 1.0 / sqrt(ss / (double)n + eps);
}

int vw_attr_compute(const lm_model *m, const struct vw_xrun *x, int32_t tok, int32_t tok2,
                    struct vw_attr *out, char *err, size_t errlen)
{
    const int64_t n = x->n_embd;
    /* the lens point attributed: the final residual, or the one after the last attention */
    const int64_t point = x->last_pos ? 2 * x->n_layer : 2 * x->n_layer - 1;
    double *d = malloc((size_t)n * sizeof(double));
    float *res = malloc((size_t)n * sizeof(float));
    bool derived;
    const char *why;
    int rc = -1;
    if (!d || !res || attr_alloc(x, tok, tok2, out) < 0) {
        set_err(err, errlen, "out of memory");
        goto done;
    }
    if (direction(m, n, tok, tok2, d, err, errlen) < 0) {
        goto done;
    }
    const bool have_res = vw_lens_resid(x, point, res, &derived, &why) == 0;
    if (target_logit(m, x, have_res ? res : NULL, out) < 0) {
        set_err(err, errlen, "out of memory");
        goto done;
    }
    rc = 0;
    if (!have_res) {
        out->n_unknown = point + 1; /* without the residual there is no scale */
        goto done;
    }
    out->scale = rms_scale(res, n, x->eps);
    for (int64_t i = 0; i < n; i++) {
        d[i] *= out->scale;
    }
    out->sum = 0;
    for (int64_t i = 0; i <= point; i++) {
        const float *row = x->row[comp_slot(i)];
        out->comp[i] = row ? dot_d(d, row, n) : (double)NAN;
        out->sum += row ? out->comp[i] : 0.0;
        out->n_unknown += row ? 0 : 1;
    }
    out->residual = out->target - out->sum;
    rc = attr_heads(m, x, d, out, err, errlen);
done:
    free(d);
    free(res);
    return rc;
}

void vw_attr_release(struct vw_attr *a)
{
    if (!a) {
        return;
    }
    free(a->comp);
    free(a->head);
    memset(a, 0, sizeof *a);
}
