/*
 * replay.c - re-executing a recorded op with the engine's kernels (see replay_int.h). Each op
 * kind has one function that gathers the recorded inputs, calls the same lm_op_* / lm_model_*
 * function the forward pass called, and writes the output in the recorded shape. Nothing here
 * prints; failures carry a message naming the op and the reason.
 */
#include "replay_int.h"
#include "lm.h"
#include "shacache.h"
#include "vw.h"

#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vw_replay {
    struct vw_trace *t;
    char *model_path;
    lm_model *m;
    bool model_tried;
    int64_t n_head, n_head_kv, head_dim;
    char err[512];
};

/* One replay call: the op, its variant, and its output. */
struct rcall {
    vw_replay *rp;
    int64_t op;
    const struct vw_top *o;
    const struct vw_variant *v;
    struct trc_tensor_info out_info;
    float *out; /* (out_info.n_elems) */
};

static int fail(vw_replay *rp, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(vw_replay *rp, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rp->err, sizeof rp->err, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- variants ------------------------------------------------------------------------------- */

void vw_variant_init(struct vw_variant *v)
{
    memset(v, 0, sizeof *v);
    v->rope_mode = v->gqa_tile = v->softmax_f16 = v->kv_type = v->qk_permute = -1;
    snprintf(v->label, sizeof v->label, "as recorded");
}

static int parse_pos(const char *s, double *out)
{
    double x;
    if (vw_parse_f64(s, &x) < 0 || !(x > 0) || !isfinite(x)) {
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_pair(struct vw_variant *v, const char *k, const char *val)
{
    long long n;
    if (!strcmp(k, "rope") && (!strcmp(val, "norm") || !strcmp(val, "neox"))) {
        v->rope_mode = !strcmp(val, "neox") ? LM_ROPE_NEOX : LM_ROPE_NORM;
    } else if (!strcmp(k, "theta") || !strcmp(k, "rope-theta")) {
        return parse_pos(val, &v->theta);
    } else if (!strcmp(k, "eps") || !strcmp(k, "rms-eps")) {
        return parse_pos(val, &v->eps);
    } else if (!strcmp(k, "gqa") && (!strcmp(val, "group") || !strcmp(val, "tile"))) {
        v->gqa_tile = !strcmp(val, "tile");
    } else if (!strcmp(k, "softmax") && (!strcmp(val, "f32") || !strcmp(val, "f16"))) {
        v->softmax_f16 = !strcmp(val, "f16");
    } else if (!strcmp(k, "kv") && (!strcmp(val, "f32") || !strcmp(val, "f16"))) {
        v->kv_type = !strcmp(val, "f16") ? LM_TYPE_F16 : LM_TYPE_F32;
    } else if (!strcmp(k, "qk-permute") && (!strcmp(val, "0") || !strcmp(val, "1"))) {
        v->qk_permute = val[0] == '1';
    } else if (!strcmp(k, "pos-offset") && vw_parse_i64(val, -1000000, 1000000, &n) == 0) {
        v->has_pos_offset = true;
        v->pos_offset = n;
    } else {
        return -1;
    }
    return 0;
}

int vw_variant_parse(struct vw_variant *v, const char *spec, char *err, size_t errlen)
{
    char buf[256];
    vw_variant_init(v);
    snprintf(v->label, sizeof v->label, "%s", spec);
    snprintf(buf, sizeof buf, "%s", spec);
    if (!*spec) {
        snprintf(err, errlen, "empty variant (give K=V[,K=V]...)");
        return -1;
    }
    for (char *tok = buf, *next; tok && *tok; tok = next) {
        next = strchr(tok, ',');
        if (next) {
            *next++ = 0;
        }
        char *eq = strchr(tok, '=');
        if (eq) {
            *eq = 0;
        }
        if (!eq || parse_pair(v, tok, eq + 1) < 0) {
            snprintf(err, errlen,
                     "bad variant '%s' (known: rope=norm|neox, theta=X, eps=X, gqa=group|tile, "
                     "softmax=f32|f16, kv=f32|f16, qk-permute=0|1, pos-offset=N)",
                     spec);
            return -1;
        }
    }
    return 0;
}

bool vw_variant_applies(const struct vw_variant *v, const char *kind)
{
    if (!strcmp(kind, "rope")) {
        return v->rope_mode >= 0 || v->theta > 0 || v->has_pos_offset;
    }
    if (!strcmp(kind, "rms_norm")) {
        return v->eps > 0;
    }
    if (!strcmp(kind, "attn_scores") || !strcmp(kind, "attn_ctx")) {
        return v->gqa_tile >= 0 || v->kv_type >= 0;
    }
    if (!strcmp(kind, "softmax")) {
        return v->softmax_f16 >= 0;
    }
    if (!strcmp(kind, "cache_write")) {
        return v->kv_type >= 0;
    }
    if (!strcmp(kind, "matmul")) {
        return v->qk_permute >= 0;
    }
    return false;
}

/* ---- handle and inputs ---------------------------------------------------------------------- */

int vw_replay_create(struct vw_trace *t, const char *model_path, vw_replay **out, char *err,
                     size_t errlen)
{
    vw_replay *rp = calloc(1, sizeof *rp);
    *out = NULL;
    if (!rp || (model_path && !(rp->model_path = strdup(model_path)))) {
        free(rp);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rp->t = t;
    rp->n_head = t->run.n_head;
    rp->n_head_kv = t->run.n_head_kv;
    rp->head_dim = t->run.head_dim;
    *out = rp;
    return 0;
}

void vw_replay_destroy(vw_replay *rp)
{
    if (rp) {
        lm_model_close(rp->m);
        free(rp->model_path);
        free(rp);
    }
}

const char *vw_replay_errmsg(const vw_replay *rp)
{
    return rp->err;
}

/* Opens the model once, checking its SHA-256 against the trace's. */
static int model(vw_replay *rp, lm_model **m)
{
    char err[LM_ERRBUF_SIZE];
    const char *path = rp->model_path ? rp->model_path : rp->t->run.model_path;
    const char *want = rp->t->run.model_sha256;
    if (!rp->model_tried) {
        rp->model_tried = true;
        if (!path) {
            return fail(rp, VW_REPLAY_SKIP, "%s: the trace names no model; use -m", rp->t->path);
        }
        if (lm_model_open(path, &rp->m, err, sizeof err) < 0) {
            return fail(rp, VW_REPLAY_SKIP, "%s", err);
        }
        const char *have = vw_model_sha256(rp->m);
        if (want && *want && (!have || strcmp(have, want) != 0)) {
            fail(rp, VW_REPLAY_SKIP,
                 "%s: sha256 %.16s... is not the model the trace was recorded with (%.16s...)",
                 path, have ? have : "?", want);
            lm_model_close(rp->m);
            rp->m = NULL;
            return VW_REPLAY_SKIP;
        }
    }
    if (!rp->m) {
        return rp->err[0] ? VW_REPLAY_SKIP : fail(rp, VW_REPLAY_SKIP, "no model");
    }
    *m = rp->m;
    return 0;
}

/* A recorded input tensor, copied (the trace's cache may evict it). */
static int input(struct rcall *c, const char *role, float **data, struct trc_tensor_info *info)
{
    const struct vw_tens *e;
    int rc = vw_trace_tensor(c->rp->t, c->op, role, &e);
    if (rc == TRC_ENOTFOUND) {
        return fail(c->rp, VW_REPLAY_SKIP, "%s: input '%s' not recorded in full", c->o->name, role);
    }
    if (rc < 0) {
        return fail(c->rp, rc, "%s", c->rp->t->err);
    }
    if (e->partial) {
        return fail(c->rp, VW_REPLAY_SKIP, "%s: input '%s' is partial", c->o->name, role);
    }
    *data = malloc((size_t)(e->n + 1) * sizeof **data);
    if (!*data) {
        return fail(c->rp, TRC_ENOMEM, "out of memory");
    }
    memcpy(*data, e->data, (size_t)e->n * sizeof **data);
    if (info) {
        memset(info, 0, sizeof *info);
        info->n_dims = e->n_dims;
        memcpy(info->shape, e->shape, sizeof info->shape);
        info->n_elems = e->n;
        info->dtype = e->dtype;
    }
    return 0;
}

/* The GGUF name of the op's weight (op_weights), into buf. */
static int weight_name(struct rcall *c, char *buf, size_t cap)
{
    sqlite3 *db = trc_reader_sql_handle(c->rp->t->r);
    sqlite3_stmt *st = NULL;
    int rc = VW_REPLAY_SKIP;
    if (sqlite3_prepare_v2(db, "SELECT name FROM op_weights WHERE op_id = ?1 AND role = 'weight'",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, c->o->id);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
            snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
            rc = 0;
        }
    }
    sqlite3_finalize(st);
    return rc == 0 ? 0 : fail(c->rp, VW_REPLAY_SKIP, "%s: no weight recorded", c->o->name);
}

/* The f32 data of a small weight (norms): the mapping, or dequantized into *tmp. */
static int weight_f32(struct rcall *c, lm_model *m, const char *name, int64_t n, const float **w,
                      float **tmp)
{
    const struct lm_gguf_tensor *gt = lm_gguf_find_tensor(lm_model_gguf(m), name);
    if (!gt || gt->ne[0] != n) {
        return fail(c->rp, VW_REPLAY_SKIP, "%s: weight '%s' missing or of another width",
                    c->o->name, name);
    }
    if (gt->type == LM_TYPE_F32) {
        *w = gt->data;
        return 0;
    }
    *tmp = malloc((size_t)n * sizeof **tmp);
    if (!*tmp || lm_dequant_row(gt->type, gt->data, *tmp, n) < 0) {
        return fail(c->rp, TRC_ENOMEM, "%s: cannot read weight '%s'", c->o->name, name);
    }
    *w = *tmp;
    return 0;
}

/* ---- per kind ------------------------------------------------------------------------------- */

/* tok_embd: rows of token_embd for the recorded token ids, dequantized as the engine does. */
static int r_get_rows(struct rcall *c)
{
    lm_model *m;
    float *ids = NULL;
    struct trc_tensor_info in;
    char wn[128] = "token_embd.weight";
    int rc = model(c->rp, &m);
    if (rc == 0 && weight_name(c, wn, sizeof wn) != 0) {
        snprintf(wn, sizeof wn, "token_embd.weight");
    }
    if (rc != 0 || (rc = input(c, "in0", &ids, &in)) != 0) {
        return rc;
    }
    const struct lm_gguf_tensor *gt = lm_gguf_find_tensor(lm_model_gguf(m), wn);
    const int64_t e = gt ? gt->ne[0] : 0;
    if (!gt || in.n_elems * e != c->out_info.n_elems) {
        free(ids);
        return fail(c->rp, VW_REPLAY_SKIP, "%s: '%s' does not match the output", c->o->name, wn);
    }
    const int64_t rb = lm_type_row_bytes(gt->type, e);
    for (int64_t t = 0; t < in.n_elems && rc == 0; t++) {
        const int64_t id = (int64_t)ids[t];
        if (id < 0 || id >= gt->ne[1]) {
            rc = fail(c->rp, VW_REPLAY_SKIP, "%s: token id %lld out of range", c->o->name,
                      (long long)id);
        } else {
            lm_dequant_row(gt->type, (const char *)gt->data + id * rb, c->out + t * e, e);
        }
    }
    free(ids);
    return rc;
}

static int r_rms_norm(struct rcall *c)
{
    lm_model *m;
    float *x = NULL, *tmp = NULL;
    const float *w = NULL;
    struct trc_tensor_info in;
    char wn[128];
    double eps = 0;
    int rc = model(c->rp, &m);
    if (rc != 0 || (rc = weight_name(c, wn, sizeof wn)) != 0 ||
        (rc = input(c, "in0", &x, &in)) != 0) {
        return rc;
    }
    const int64_t e = in.shape[in.n_dims - 1], rows = in.n_elems / (e ? e : 1);
    if (c->v->eps > 0) {
        eps = c->v->eps;
    } else if (vw_json_get_num(c->o->params, "eps", &eps) < 0) {
        eps = c->rp->t->run.rms_eps;
    }
    if ((rc = weight_f32(c, m, wn, e, &w, &tmp)) == 0) {
        lm_op_rms_norm(x, w, rows, e, (float)eps, c->out);
    }
    free(x);
    free(tmp);
    return rc;
}

/* The qk-permute fault's row order within each head (as forward.c's permute_hf). */
static void permute_hf(float *x, int64_t n_rows, int64_t hd, float *tmp)
{
    for (int64_t r = 0; r < n_rows; r++) {
        float *h = x + r * hd;
        for (int64_t i = 0; i < hd / 2; i++) {
            tmp[i] = h[2 * i];
            tmp[hd / 2 + i] = h[2 * i + 1];
        }
        memcpy(h, tmp, (size_t)hd * sizeof(float));
    }
}

static int r_matmul(struct rcall *c)
{
    lm_model *m;
    float *x = NULL;
    struct trc_tensor_info in;
    char wn[128];
    int64_t rows, k;
    int rc = model(c->rp, &m);
    if (rc != 0 || (rc = weight_name(c, wn, sizeof wn)) != 0 ||
        (rc = input(c, "in0", &x, &in)) != 0) {
        return rc;
    }
    const int64_t n = in.n_elems / (in.shape[in.n_dims - 1] ? in.shape[in.n_dims - 1] : 1);
    if (lm_model_weight_shape(m, wn, &rows, &k) < 0 || n * rows != c->out_info.n_elems ||
        lm_model_matmul(m, wn, x, n, c->out) < 0) {
        free(x);
        return fail(c->rp, VW_REPLAY_SKIP, "%s: cannot multiply by '%s'", c->o->name, wn);
    }
    const bool perm = c->v->qk_permute >= 0 ? c->v->qk_permute == 1
                                            : vw_json_get_bool(c->o->params, "qk_permute");
    const int64_t hd = c->rp->head_dim;
    if (perm && hd > 1 && rows % hd == 0) {
        float *tmp = malloc((size_t)hd * sizeof *tmp);
        if (tmp) {
            permute_hf(c->out, n * rows / hd, hd, tmp);
        }
        free(tmp);
    }
    free(x);
    return 0;
}

static int r_rope(struct rcall *c)
{
    float *x = NULL, *pos = NULL, *cs = NULL, *sn = NULL;
    struct trc_tensor_info in;
    double theta = 0, fs = 1, nrot = 0, off = 0;
    char mode[16] = "";
    int rc = input(c, "in0", &x, &in);
    if (rc != 0 || in.n_dims != 3) {
        free(x);
        return rc ? rc : fail(c->rp, VW_REPLAY_SKIP, "%s: in0 is not (n, heads, dim)", c->o->name);
    }
    vw_json_get_num(c->o->params, "theta", &theta);
    vw_json_get_num(c->o->params, "freq_scale", &fs);
    vw_json_get_num(c->o->params, "pos_offset", &off);
    vw_json_get_str(c->o->params, "mode", mode, sizeof mode);
    if (vw_json_get_num(c->o->params, "n_rot", &nrot) < 0) {
        nrot = (double)in.shape[2];
    }
    theta = c->v->theta > 0 ? c->v->theta : theta;
    int rmode = !strcmp(mode, "neox") ? LM_ROPE_NEOX : LM_ROPE_NORM;
    rmode = c->v->rope_mode >= 0 ? c->v->rope_mode : rmode;
    const int64_t n = in.shape[0], half = (int64_t)nrot / 2;
    if (!c->v->has_pos_offset && (rc = input(c, "pos", &pos, NULL)) < 0) {
        free(x);
        return rc;
    }
    cs = malloc((size_t)(n * half + 1) * sizeof *cs);
    sn = malloc((size_t)(n * half + 1) * sizeof *sn);
    for (int64_t t = 0; cs && sn && t < n; t++) {
        const int64_t p =
            (pos && rc == 0)
                ? (int64_t)pos[t]
                : c->o->pos0 + t + (c->v->has_pos_offset ? c->v->pos_offset : (int64_t)off);
        lm_op_rope_cache(p, (int)nrot, (float)theta, (float)fs, cs + t * half, sn + t * half);
    }
    if (cs && sn) {
        lm_op_rope(x, n, (int)in.shape[1], (int)in.shape[2], (int)nrot, rmode, cs, sn, c->out);
    }
    rc = (cs && sn) ? 0 : fail(c->rp, TRC_ENOMEM, "out of memory");
    free(x);
    free(pos);
    free(cs);
    free(sn);
    return rc;
}

static int r_add(struct rcall *c, bool swiglu)
{
    float *a = NULL, *b = NULL;
    struct trc_tensor_info ia, ib;
    int rc = input(c, "in0", &a, &ia);
    if (rc == 0) {
        rc = input(c, "in1", &b, &ib);
    }
    if (rc == 0 && (ia.n_elems != ib.n_elems || ia.n_elems != c->out_info.n_elems)) {
        rc = fail(c->rp, VW_REPLAY_SKIP, "%s: inputs and output differ in size", c->o->name);
    }
    if (rc == 0 && swiglu) {
        lm_op_swiglu(a, b, ia.n_elems, c->out);
    } else if (rc == 0) {
        lm_op_add(a, b, ia.n_elems, c->out);
    }
    free(a);
    free(b);
    return rc;
}

/* Rows of cells 0..n_kv-1 of the layer's cache op `which` ("cache_k" / "cache_v") written in
 * steps <= this op's step: *rows (n_kv, kvd) f32, *f16 when they were stored as f16. */
static int gather_cache(struct rcall *c, const char *which, int64_t n_kv, int64_t kvd, float **rows,
                        bool *f16)
{
    struct vw_trace *t = c->rp->t;
    char name[64];
    const struct vw_tens *e;
    snprintf(name, sizeof name, "blk.%d.%s", c->o->layer, which);
    *rows = malloc((size_t)(n_kv * kvd + 1) * sizeof **rows);
    if (!*rows) {
        return fail(c->rp, TRC_ENOMEM, "out of memory");
    }
    *f16 = false;
    for (int64_t cell = 0; cell < n_kv; cell++) {
        const int64_t op = vw_trace_find(t, name, cell);
        int rc = op < 0 || t->ops[op].step > c->o->step ? TRC_ENOTFOUND
                                                        : vw_trace_tensor(t, op, "out", &e);
        if (rc == 0 && e->n != t->ops[op].n_pos * kvd) {
            rc = TRC_EINVAL;
        }
        if (rc < 0) {
            return fail(c->rp, rc == TRC_ENOTFOUND || rc == TRC_EINVAL ? VW_REPLAY_SKIP : rc,
                        "%s: cell %lld of %s is not recorded in full", c->o->name, (long long)cell,
                        name);
        }
        *f16 = e->dtype == TRC_DTYPE_F16;
        memcpy(*rows + cell * kvd, e->data + (cell - t->ops[op].pos0) * kvd,
               (size_t)kvd * sizeof **rows);
    }
    return 0;
}

/* The attention geometry of the op, with the variant applied. */
static int attn_geometry(struct rcall *c, int64_t n, int64_t n_kv, bool f16,
                         struct lm_attn_shape *a)
{
    char gqa[16] = "";
    vw_json_get_str(c->o->params, "gqa", gqa, sizeof gqa);
    a->n = n;
    a->n_head = c->rp->n_head;
    a->n_head_kv = c->rp->n_head_kv;
    a->head_dim = c->rp->head_dim;
    a->pos0 = c->o->pos0;
    a->n_kv = n_kv;
    a->kv_type = c->v->kv_type >= 0 ? c->v->kv_type : (f16 ? LM_TYPE_F16 : LM_TYPE_F32);
    a->gqa_tile = c->v->gqa_tile >= 0 ? c->v->gqa_tile == 1 : strcmp(gqa, "tile") == 0;
    if (a->n_head <= 0 || a->n_head_kv <= 0 || a->head_dim <= 0 || a->n_head % a->n_head_kv) {
        return fail(c->rp, VW_REPLAY_SKIP, "%s: the trace lacks the head counts", c->o->name);
    }
    return 0;
}

/* K or V rows as the kernels read them: f32 as is, f16 converted. *buf is malloc'd. */
static void *kv_buffer(const float *rows, int64_t n, int kv_type)
{
    if (kv_type != LM_TYPE_F16) {
        float *b = malloc((size_t)(n + 1) * sizeof *b);
        if (b) {
            memcpy(b, rows, (size_t)n * sizeof *b);
        }
        return b;
    }
    uint16_t *h = malloc((size_t)(n + 1) * sizeof *h);
    for (int64_t i = 0; h && i < n; i++) {
        h[i] = lm_f32_to_f16(rows[i]);
    }
    return h;
}

static int r_scores(struct rcall *c)
{
    float *q = NULL, *rows = NULL, *scratch = NULL;
    void *k = NULL;
    struct trc_tensor_info in;
    struct lm_attn_shape a;
    bool f16;
    int rc = input(c, "in0", &q, &in);
    const int64_t n_kv = c->out_info.n_dims == 3 ? c->out_info.shape[2] : 0;
    const int64_t kvd = c->rp->n_head_kv * c->rp->head_dim;
    if (rc == 0 && (rc = gather_cache(c, "cache_k", n_kv, kvd, &rows, &f16)) == 0) {
        rc = attn_geometry(c, in.shape[0], n_kv, f16, &a);
    }
    if (rc == 0) {
        k = kv_buffer(rows, n_kv * kvd, a.kv_type);
        scratch = malloc((size_t)(a.head_dim + 64) * sizeof *scratch);
        rc = k && scratch ? 0 : fail(c->rp, TRC_ENOMEM, "out of memory");
    }
    for (int64_t h = 0; rc == 0 && h < a.n_head; h++) {
        lm_op_attn_scores_head(&a, h, q, k, kvd, scratch, c->out + h * a.n * n_kv);
    }
    free(q);
    free(rows);
    free(k);
    free(scratch);
    return rc;
}

static int r_context(struct rcall *c)
{
    float *p = NULL, *rows = NULL, *scratch = NULL;
    void *vt = NULL;
    struct trc_tensor_info in;
    struct lm_attn_shape a;
    bool f16;
    int rc = input(c, "in0", &p, &in);
    const int64_t n_kv = in.n_dims == 3 ? in.shape[2] : 0, ld = (n_kv + 63) / 64 * 64;
    const int64_t kvd = c->rp->n_head_kv * c->rp->head_dim;
    if (rc == 0 && (rc = gather_cache(c, "cache_v", n_kv, kvd, &rows, &f16)) == 0) {
        rc = attn_geometry(c, in.shape[1], n_kv, f16, &a);
    }
    if (rc == 0) {
        /* V transposed, (kvd, ld) with zeros from n_kv on: the layout of the engine's cache. */
        float *t = calloc((size_t)(kvd * ld + 1), sizeof *t);
        for (int64_t cell = 0; t && cell < n_kv; cell++) {
            for (int64_t i = 0; i < kvd; i++) {
                t[i * ld + cell] = rows[cell * kvd + i];
            }
        }
        vt = t ? kv_buffer(t, kvd * ld, a.kv_type) : NULL;
        free(t);
        scratch = malloc((size_t)(ld + 64) * sizeof *scratch);
        rc = vt && scratch ? 0 : fail(c->rp, TRC_ENOMEM, "out of memory");
    }
    for (int64_t h = 0; rc == 0 && h < a.n_head; h++) {
        lm_op_attn_context_head(&a, h, p + h * a.n * n_kv, vt, ld, scratch, c->out);
    }
    free(p);
    free(rows);
    free(vt);
    free(scratch);
    return rc;
}

static int r_softmax(struct rcall *c)
{
    float *w = NULL;
    struct trc_tensor_info in;
    int rc = input(c, "in0", &w, &in);
    if (rc != 0) {
        return rc;
    }
    const int64_t n_kv = in.shape[in.n_dims - 1];
    const bool f16 = c->v->softmax_f16 >= 0 ? c->v->softmax_f16 == 1
                                            : vw_json_get_bool(c->o->params, "f16_accum");
    for (int64_t r = 0; n_kv > 0 && r < in.n_elems / n_kv; r++) {
        lm_op_softmax(w + r * n_kv, n_kv, f16, c->out + r * n_kv);
    }
    free(w);
    return 0;
}

/* cache_k / cache_v: the rows of rope_k / attn_v of the same step, stored in the KV type. */
static int r_cache(struct rcall *c)
{
    struct vw_trace *t = c->rp->t;
    const struct vw_tens *e;
    char name[64];
    const bool is_k = strstr(c->o->name, "cache_k") != NULL;
    snprintf(name, sizeof name, "blk.%d.%s", c->o->layer, is_k ? "rope_k" : "attn_v");
    const int64_t op = vw_trace_find(t, name, c->o->pos0);
    if (op < 0 || t->ops[op].step != c->o->step || vw_trace_tensor(t, op, "out", &e) < 0 ||
        e->n < c->out_info.n_elems) {
        return fail(c->rp, VW_REPLAY_SKIP, "%s: its source %s is not recorded in full", c->o->name,
                    name);
    }
    const int64_t off = (c->o->pos0 - t->ops[op].pos0) * (e->n / t->ops[op].n_pos);
    const bool f16 =
        c->v->kv_type >= 0 ? c->v->kv_type == LM_TYPE_F16 : c->out_info.dtype == TRC_DTYPE_F16;
    for (int64_t i = 0; i < c->out_info.n_elems; i++) {
        const float x = e->data[off + i];
        c->out[i] = f16 ? lm_f16_to_f32(lm_f32_to_f16(x)) : x;
    }
    return 0;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static int dispatch(struct rcall *c)
{
    const char *k = c->o->kind;
    if (!strcmp(k, "get_rows")) {
        return r_get_rows(c);
    }
    if (!strcmp(k, "rms_norm")) {
        return r_rms_norm(c);
    }
    if (!strcmp(k, "matmul")) {
        return r_matmul(c);
    }
    if (!strcmp(k, "rope")) {
        return r_rope(c);
    }
    if (!strcmp(k, "cache_write")) {
        return r_cache(c);
    }
    if (!strcmp(k, "attn_scores")) {
        return r_scores(c);
    }
    if (!strcmp(k, "softmax")) {
        return r_softmax(c);
    }
    if (!strcmp(k, "attn_ctx")) {
        return r_context(c);
    }
    if (!strcmp(k, "add") || !strcmp(k, "swiglu")) {
        return r_add(c, !strcmp(k, "swiglu"));
    }
    return fail(c->rp, VW_REPLAY_SKIP, "%s: ops of kind '%s' cannot be replayed", c->o->name, k);
}

int vw_replay_op(vw_replay *rp, int64_t op, const struct vw_variant *v, float **out, int64_t *n)
{
    struct vw_variant asrec;
    struct rcall c = {rp, op, &rp->t->ops[op], v, {0}, NULL};
    *out = NULL;
    *n = 0;
    if (!v) {
        vw_variant_init(&asrec);
        c.v = &asrec;
    }
    int rc = vw_trace_tensor_info(rp->t, op, "out", &c.out_info);
    if (rc < 0) {
        return fail(rp, rc == TRC_ENOTFOUND ? VW_REPLAY_SKIP : rc, "%s: no output recorded",
                    c.o->name);
    }
    if (c.out_info.partial || c.out_info.n_elems <= 0) {
        return fail(rp, VW_REPLAY_SKIP, "%s: the output is partial", c.o->name);
    }
    c.out = malloc((size_t)c.out_info.n_elems * sizeof *c.out);
    if (!c.out) {
        return fail(rp, TRC_ENOMEM, "out of memory");
    }
    rc = dispatch(&c);
    if (rc != 0) {
        free(c.out);
        return rc;
    }
    *out = c.out;
    *n = c.out_info.n_elems;
    return 0;
}
