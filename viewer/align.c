/*
 * align.c - a trace loaded for comparison (its first run's ops, tokens and a bounded cache of
 * decoded tensors), and the alignment of an op's rows with another trace's rows by canonical
 * name and absolute position (see align_int.h). It reads traces only through the tracer's
 * public reader (plus read-only SQL for tokens); it knows nothing of the engine.
 */
#include "align_int.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_LIMIT ((int64_t)512 << 20)

/* ---- JSON parameters ---------------------------------------------------------------------- */

/* Start of the value of "key": in json, or NULL. */
static const char *json_value(const char *json, const char *key)
{
    char pat[80];
    if (!json) {
        return NULL;
    }
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(json, pat);
    while (p) {
        const char *q = p + strlen(pat);
        while (*q == ' ') {
            q++;
        }
        if (*q == ':') {
            q++;
            while (*q == ' ') {
                q++;
            }
            return q;
        }
        p = strstr(p + 1, pat);
    }
    return NULL;
}

int vw_json_get_num(const char *json, const char *key, double *out)
{
    const char *v = json_value(json, key);
    char *end;
    if (!v) {
        return -1;
    }
    double x = strtod(v, &end);
    if (end == v) {
        return -1;
    }
    *out = x;
    return 0;
}

int vw_json_get_str(const char *json, const char *key, char *buf, size_t cap)
{
    const char *v = json_value(json, key);
    size_t n = 0;
    if (!v || *v != '"' || cap == 0) {
        return -1;
    }
    for (v++; *v && *v != '"' && n + 1 < cap; v++) {
        buf[n++] = *v;
    }
    buf[n] = 0;
    return 0;
}

bool vw_json_get_bool(const char *json, const char *key)
{
    const char *v = json_value(json, key);
    return v && strncmp(v, "true", 4) == 0;
}

int vw_pos_axis(const char *kind, const char *role)
{
    if (strcmp(kind, "softmax") == 0) {
        return 1;
    }
    if (strcmp(kind, "attn_scores") == 0 && strcmp(role, "out") == 0) {
        return 1;
    }
    if (strcmp(kind, "attn_ctx") == 0 && strcmp(role, "in0") == 0) {
        return 1;
    }
    return 0;
}

/* ---- loading ------------------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* clang-format off */
#define RUN_STRINGS(X)                                                                             \
    X(source) X(status) X(started_at) X(ended_at) X(model_path) X(model_sha256) X(arch)            \
    X(rope_mode) X(weight_type) X(kv_type) X(prompt) X(chat_template) X(rendered_prompt)           \
    X(faults) X(build_version) X(build_commit) X(build_compiler) X(build_flags) X(simd)            \
    X(record_rules)
/* clang-format on */

static void run_dup(struct trc_run_info *dst, const struct trc_run_info *src)
{
    *dst = *src;
#define DUP_(f) dst->f = dup_or_null(src->f);
    RUN_STRINGS(DUP_)
#undef DUP_
}

static void run_free(struct trc_run_info *r)
{
#define FREE_(f) free((void *)(uintptr_t)r->f);
    RUN_STRINGS(FREE_)
#undef FREE_
}

static int load_run(struct vw_trace *t)
{
    trc_cursor *c = NULL;
    struct trc_run_info ri;
    int rc = trc_reader_runs(t->r, &c);
    if (rc == 0) {
        rc = trc_cursor_next_run(c, &ri);
    }
    if (rc == 1) {
        run_dup(&t->run, &ri);
        t->n_steps = ri.n_steps;
    } else if (rc == 0) {
        snprintf(t->err, sizeof t->err, "%s: the trace holds no run", t->path);
        rc = TRC_ENOTFOUND;
    } else {
        snprintf(t->err, sizeof t->err, "%s", trc_reader_errmsg(t->r));
    }
    trc_cursor_close(c);
    return rc < 0 ? rc : 0;
}

static int push_op(struct vw_trace *t, const struct trc_op_info *o, int64_t *cap)
{
    if (t->n_ops == *cap) {
        int64_t nc = *cap ? *cap * 2 : 256;
        struct vw_top *p = realloc(t->ops, (size_t)nc * sizeof *p);
        if (!p) {
            return TRC_ENOMEM;
        }
        t->ops = p;
        *cap = nc;
    }
    struct vw_top *d = &t->ops[t->n_ops];
    d->id = o->id;
    d->step = o->step;
    d->seq = o->seq;
    d->pos0 = o->pos0;
    d->n_pos = o->n_pos;
    d->layer = o->layer;
    d->level = o->level;
    d->name = strdup(o->name ? o->name : "");
    d->kind = strdup(o->kind ? o->kind : "");
    d->params = dup_or_null(o->params_json);
    t->n_ops++;
    return (!d->name || !d->kind) ? TRC_ENOMEM : 0;
}

static const struct vw_trace *sort_trace; /* qsort has no context argument */

static int by_name_cmp(const void *x, const void *y)
{
    const struct vw_top *a = &sort_trace->ops[*(const int64_t *)x];
    const struct vw_top *b = &sort_trace->ops[*(const int64_t *)y];
    int c = strcmp(a->name, b->name);
    if (c) {
        return c;
    }
    if (a->pos0 != b->pos0) {
        return a->pos0 < b->pos0 ? -1 : 1;
    }
    return a->step < b->step ? -1 : (a->step > b->step);
}

static int load_ops(struct vw_trace *t)
{
    trc_cursor *c = NULL;
    struct trc_op_info o;
    int64_t cap = 0;
    int rc = trc_reader_ops(t->r, t->run.id, -1, &c);
    while (rc >= 0 && (rc = trc_cursor_next_op(c, &o)) == 1) {
        rc = push_op(t, &o, &cap);
    }
    trc_cursor_close(c);
    if (rc < 0) {
        snprintf(t->err, sizeof t->err, "%s", trc_reader_errmsg(t->r));
        return rc;
    }
    t->by_name = malloc((size_t)(t->n_ops + 1) * sizeof *t->by_name);
    if (!t->by_name) {
        return TRC_ENOMEM;
    }
    for (int64_t i = 0; i < t->n_ops; i++) {
        t->by_name[i] = i;
    }
    sort_trace = t;
    qsort(t->by_name, (size_t)t->n_ops, sizeof *t->by_name, by_name_cmp);
    sort_trace = NULL;
    return 0;
}

static int load_tokens(struct vw_trace *t)
{
    sqlite3 *db = trc_reader_sql_handle(t->r);
    sqlite3_stmt *st = NULL;
    int64_t cap = 0;
    const char *sql =
        "SELECT token_id, piece, is_prompt FROM tokens WHERE run_id = ?1 ORDER BY idx";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(t->err, sizeof t->err, "%s: %s", t->path, sqlite3_errmsg(db));
        return TRC_ESQL;
    }
    sqlite3_bind_int64(st, 1, t->run.id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (t->n_tok == cap) {
            cap = cap ? cap * 2 : 64;
            int32_t *ids = realloc(t->tok_ids, (size_t)cap * sizeof *ids);
            t->tok_ids = ids ? ids : t->tok_ids;
            char **pc = realloc(t->tok_pieces, (size_t)cap * sizeof *pc);
            t->tok_pieces = pc ? pc : t->tok_pieces;
            uint8_t *pr = realloc(t->tok_prompt, (size_t)cap);
            t->tok_prompt = pr ? pr : t->tok_prompt;
            if (!ids || !pc || !pr) {
                sqlite3_finalize(st);
                return TRC_ENOMEM;
            }
        }
        t->tok_ids[t->n_tok] = sqlite3_column_int(st, 0);
        t->tok_pieces[t->n_tok] = dup_or_null((const char *)sqlite3_column_text(st, 1));
        t->tok_prompt[t->n_tok] = (uint8_t)sqlite3_column_int(st, 2);
        t->n_tok++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : TRC_ESQL;
}

int vw_trace_open(struct vw_trace *t, const char *path, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    memset(t->slot, 0xff, sizeof t->slot);
    t->cache_limit = CACHE_LIMIT;
    t->path = strdup(path);
    if (!t->path) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (trc_reader_open(path, &t->r, err, errlen) < 0) {
        return -1;
    }
    if (load_run(t) < 0 || load_ops(t) < 0 || load_tokens(t) < 0) {
        snprintf(err, errlen, "%s", t->err[0] ? t->err : "out of memory");
        return -1;
    }
    /* One read transaction for the whole comparison: SQLite then takes its file locks once
     * instead of once per tensor query (a third of the time on large traces). */
    t->in_txn = sqlite3_exec(trc_reader_sql_handle(t->r), "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    return 0;
}

void vw_trace_close(struct vw_trace *t)
{
    for (int64_t i = 0; i < t->n_ops; i++) {
        free(t->ops[i].name);
        free(t->ops[i].kind);
        free(t->ops[i].params);
    }
    for (int64_t i = 0; i < t->n_tok; i++) {
        free(t->tok_pieces[i]);
    }
    for (int i = 0; i < t->n_cache; i++) {
        free(t->cache[i]->data);
        free(t->cache[i]->known);
        free(t->cache[i]);
    }
    if (t->path) {
        run_free(&t->run);
    }
    free(t->cache);
    free(t->ops);
    free(t->by_name);
    free(t->tok_ids);
    free(t->tok_pieces);
    free(t->tok_prompt);
    free(t->path);
    if (t->in_txn) {
        sqlite3_exec(trc_reader_sql_handle(t->r), "COMMIT", NULL, NULL, NULL);
    }
    trc_reader_close(t->r);
    memset(t, 0, sizeof *t);
}

/* ---- finding ops --------------------------------------------------------------------------- */

int64_t vw_trace_find(const struct vw_trace *t, const char *name, int64_t pos)
{
    int64_t lo = 0, hi = t->n_ops; /* first entry with (name, pos0) > (name, pos) */
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        const struct vw_top *o = &t->ops[t->by_name[mid]];
        int c = strcmp(o->name, name);
        if (c < 0 || (c == 0 && o->pos0 <= pos)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    /* Ops of one name do not overlap in a run; a few entries back covers re-decoded chunks. */
    for (int64_t k = lo - 1; k >= 0 && k >= lo - 8; k--) {
        const struct vw_top *o = &t->ops[t->by_name[k]];
        if (strcmp(o->name, name) != 0) {
            break;
        }
        if (pos >= o->pos0 && pos < o->pos0 + o->n_pos) {
            return t->by_name[k];
        }
    }
    return -1;
}

int64_t vw_trace_find_step(const struct vw_trace *t, const char *name, int64_t step)
{
    for (int64_t i = 0; i < t->n_ops; i++) {
        if ((step < 0 || t->ops[i].step == step) && strcmp(t->ops[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

/* ---- the tensor cache ---------------------------------------------------------------------- */

static void index_add(struct vw_trace *t, int at);

static void drop(struct vw_trace *t, struct vw_tens *e)
{
    t->cache_bytes -= e->n * (int64_t)(sizeof(float) + (e->known ? 1 : 0));
    free(e->data);
    free(e->known);
    free(e);
}

static int by_use(const void *x, const void *y)
{
    const struct vw_tens *a = *(struct vw_tens *const *)x, *b = *(struct vw_tens *const *)y;
    return (a->last_use > b->last_use) - (a->last_use < b->last_use);
}

/* Makes room for need bytes: when over the limit, the least recently used entries go until
 * the cache is at half its limit (amortized: one sort per many insertions). The two most
 * recently used entries always stay. */
static void evict(struct vw_trace *t, int64_t need)
{
    if (t->n_cache <= 2 || t->cache_bytes + need <= t->cache_limit) {
        return;
    }
    qsort(t->cache, (size_t)t->n_cache, sizeof *t->cache, by_use);
    int k = 0;
    while (k < t->n_cache - 2 && t->cache_bytes + need > t->cache_limit / 2) {
        drop(t, t->cache[k++]);
    }
    memmove(t->cache, t->cache + k, (size_t)(t->n_cache - k) * sizeof *t->cache);
    t->n_cache -= k;
    memset(t->slot, 0xff, sizeof t->slot); /* positions moved: rebuild the index */
    for (int i = 0; i < t->n_cache; i++) {
        index_add(t, i);
    }
}

/* Decodes tensor `tid` (described by info) into e: dense f32, unknown elements NaN. */
static int decode(struct vw_trace *t, int64_t tid, const struct trc_tensor_info *info,
                  struct vw_tens *e)
{
    int rc;
    e->data = malloc((size_t)(info->n_elems > 0 ? info->n_elems : 1) * sizeof(float));
    if (!e->data) {
        return TRC_ENOMEM;
    }
    if (!info->partial) {
        rc = trc_reader_tensor_f32(t->r, tid, e->data, info->n_elems);
    } else {
        float *vals = malloc((size_t)(info->n_stored + 1) * sizeof *vals);
        int64_t *idx = malloc((size_t)(info->n_stored + 1) * sizeof *idx);
        e->known = calloc((size_t)(info->n_elems > 0 ? info->n_elems : 1), 1);
        rc = (!vals || !idx || !e->known) ? TRC_ENOMEM : 0;
        if (rc == 0 && (rc = trc_reader_tensor_f32(t->r, tid, vals, info->n_stored)) == 0) {
            rc = trc_reader_tensor_known(t->r, tid, idx, info->n_stored);
        }
        for (int64_t i = 0; rc == 0 && i < info->n_elems; i++) {
            e->data[i] = NAN;
        }
        for (int64_t i = 0; rc == 0 && i < info->n_stored; i++) {
            if (idx[i] >= 0 && idx[i] < info->n_elems) {
                e->data[idx[i]] = vals[i];
                e->known[idx[i]] = 1;
            }
        }
        free(vals);
        free(idx);
    }
    return rc;
}

/* Lookup through the chained hash index of positions. */
static struct vw_tens *cache_get(struct vw_trace *t, int64_t tid)
{
    for (int at = t->slot[(size_t)tid % VW_CACHE_SLOTS]; at >= 0; at = t->cache[at]->next) {
        if (t->cache[at]->id == tid) {
            t->cache[at]->last_use = ++t->clock;
            return t->cache[at];
        }
    }
    return NULL;
}

static void index_add(struct vw_trace *t, int at)
{
    const size_t h = (size_t)t->cache[at]->id % VW_CACHE_SLOTS;
    t->cache[at]->next = t->slot[h];
    t->slot[h] = at;
}

static int cache_put(struct vw_trace *t, int64_t tid, const struct trc_tensor_info *info,
                     struct vw_tens **out)
{
    const int64_t need = info->n_elems * (int64_t)(sizeof(float) + (info->partial ? 1 : 0));
    evict(t, need);
    if (t->n_cache == t->cap_cache) {
        int nc = t->cap_cache ? t->cap_cache * 2 : 16;
        struct vw_tens **p = realloc(t->cache, (size_t)nc * sizeof *p);
        if (!p) {
            return TRC_ENOMEM;
        }
        t->cache = p;
        t->cap_cache = nc;
    }
    struct vw_tens *e = calloc(1, sizeof *e);
    if (!e) {
        return TRC_ENOMEM;
    }
    int rc = decode(t, tid, info, e);
    if (rc < 0) {
        snprintf(t->err, sizeof t->err, "%s", trc_reader_errmsg(t->r));
        free(e->data);
        free(e->known);
        free(e);
        return rc;
    }
    e->id = tid;
    e->dtype = info->dtype;
    e->n_dims = info->n_dims;
    memcpy(e->shape, info->shape, sizeof e->shape);
    e->n = info->n_elems;
    memcpy(e->hash, info->hash, sizeof e->hash);
    e->partial = info->partial;
    e->raw_bytes = info->nbytes;
    e->last_use = ++t->clock;
    t->cache[t->n_cache++] = e;
    index_add(t, t->n_cache - 1);
    t->cache_bytes += need;
    t->bytes_decoded += info->nbytes;
    *out = e;
    return 0;
}

int vw_trace_tensor_info(struct vw_trace *t, int64_t op, const char *role,
                         struct trc_tensor_info *out)
{
    int64_t tid;
    int rc = trc_reader_op_tensor(t->r, t->ops[op].id, role, &tid);
    if (rc == 0) {
        rc = trc_reader_tensor_info(t->r, tid, out);
    }
    if (rc < 0 && rc != TRC_ENOTFOUND) {
        snprintf(t->err, sizeof t->err, "%s", trc_reader_errmsg(t->r));
    }
    return rc;
}

int vw_trace_tensor(struct vw_trace *t, int64_t op, const char *role, const struct vw_tens **out)
{
    struct trc_tensor_info info;
    struct vw_tens *e;
    int rc = vw_trace_tensor_info(t, op, role, &info);
    if (rc < 0) {
        return rc;
    }
    if (!info.has_data) {
        return TRC_ENOTFOUND;
    }
    e = cache_get(t, info.id);
    if (!e && (rc = cache_put(t, info.id, &info, &e)) < 0) {
        return rc;
    }
    *out = e;
    return 0;
}

/* ---- comparing rows ------------------------------------------------------------------------ */

/* A tensor seen as rows of positions: element (o, r, i) is data[(o * rows + r) * inner + i]. */
struct geom {
    int64_t outer, rows, inner;
};

static struct geom geom_of(const struct vw_tens *e, int axis)
{
    struct geom g = {1, e->n_dims > 0 ? e->shape[0] : 1, 1};
    if (axis == 1 && e->n_dims >= 3) {
        g.outer = e->shape[0];
        g.rows = e->shape[1];
    }
    g.inner = (g.outer * g.rows) > 0 ? e->n / (g.outer * g.rows) : 0;
    return g;
}

static size_t dtype_size(enum trc_dtype d)
{
    return (d == TRC_DTYPE_F16 || d == TRC_DTYPE_BF16) ? 2 : 4;
}

/* Multiplier that turns an op's stored scores into scaled ones (imports keep them unscaled). */
static float score_scale(const struct vw_trace *t, const struct vw_trace *other,
                         const struct vw_top *o, const char *role)
{
    if (strcmp(role, "out") != 0 || strcmp(o->kind, "attn_scores") != 0 || !o->params ||
        !strstr(o->params, "\"scaled\":false")) {
        return 1.0f;
    }
    int64_t hd = t->run.head_dim > 0 ? t->run.head_dim : other->run.head_dim;
    return hd > 0 ? 1.0f / sqrtf((float)hd) : 1.0f;
}

static bool unmasked(const struct vw_top *o)
{
    return o->params && strstr(o->params, "\"masked\":false");
}

static double print_atol(const struct vw_top *o)
{
    double v = 0;
    return vw_json_get_num(o->params, "print_atol", &v) == 0 && v > 0 ? v : 0.0;
}

/* Both sides of one run of positions. */
struct side {
    struct vw_trace *t;
    int64_t op;
    const struct vw_tens *e;
    struct geom g;
    float scale;
};

/* Copies k cells of outer block o of row r into dst (and its known flags into kn). */
static void gather(const struct side *s, int64_t o, int64_t r, int64_t k, float *dst, uint8_t *kn)
{
    const int64_t off = (o * s->g.rows + r) * s->g.inner;
    for (int64_t i = 0; i < k; i++) {
        dst[i] = s->e->data[off + i] * s->scale;
        kn[i] = s->e->known ? s->e->known[off + i] : 1;
    }
}

/* Compares positions [p, q) held by both sides (tensors loaded). */
static int compare_rows(struct side *rs, struct side *cs, int64_t p, int64_t q, int axis,
                        const struct vw_cmp_tol *tol, struct vw_opcmp *out)
{
    const struct vw_top *ro = &rs->t->ops[rs->op], *co = &cs->t->ops[cs->op];
    int64_t k = rs->g.inner < cs->g.inner ? rs->g.inner : cs->g.inner;
    if (rs->g.outer != cs->g.outer || (axis == 0 && rs->g.inner != cs->g.inner)) {
        out->shape_mismatch = true;
        return 0;
    }
    float *a = malloc((size_t)(k + 1) * sizeof *a), *b = malloc((size_t)(k + 1) * sizeof *b);
    uint8_t *ka = malloc((size_t)k + 1), *kb = malloc((size_t)k + 1);
    int rc = (!a || !b || !ka || !kb) ? TRC_ENOMEM : 0;
    const size_t esz = dtype_size(rs->e->dtype) + dtype_size(cs->e->dtype);
    for (int64_t pos = p; rc == 0 && pos < q; pos++) {
        const int64_t kk =
            (axis == 1 && (unmasked(ro) || unmasked(co)) && pos + 1 < k) ? pos + 1 : k;
        const int64_t fails = out->c.n_fail;
        for (int64_t o = 0; o < rs->g.outer; o++) {
            gather(rs, o, pos - ro->pos0, kk, b, kb);
            gather(cs, o, pos - co->pos0, kk, a, ka);
            bool part = false;
            for (int64_t i = 0; i < kk; i++) {
                ka[i] = ka[i] && kb[i];
                part = part || !ka[i];
            }
            out->partial = out->partial || part;
            vw_cmp_add(&out->c, a, b, ka, kk, (pos << 32) | (o * rs->g.inner), tol);
        }
        out->bytes += (int64_t)((size_t)(kk * rs->g.outer) * esz);
        out->n_rows++;
        if (out->c.n_fail > fails && out->fail_pos < 0) {
            out->fail_pos = pos;
        }
    }
    free(a);
    free(b);
    free(ka);
    free(kb);
    return rc;
}

/* One side holds stats only: compare min, max, mean and rms when both cover the same rows. */
static int compare_stats(struct vw_trace *ref, int64_t ri, struct vw_trace *cand, int64_t ci,
                         const char *role, const struct vw_cmp_tol *tol, struct vw_opcmp *out)
{
    struct trc_tensor_info x, y;
    const struct vw_top *ro = &ref->ops[ri], *co = &cand->ops[ci];
    out->stats_only = true;
    out->partial = true;
    if (ro->pos0 != co->pos0 || ro->n_pos != co->n_pos) {
        return 0;
    }
    if (vw_trace_tensor_info(ref, ri, role, &x) < 0 ||
        vw_trace_tensor_info(cand, ci, role, &y) < 0) {
        return 0;
    }
    const float b[4] = {(float)x.min, (float)x.max, (float)x.mean, (float)x.rms};
    const float a[4] = {(float)y.min, (float)y.max, (float)y.mean, (float)y.rms};
    const int64_t fails = out->c.n_fail;
    vw_cmp_add(&out->c, a, b, NULL, 4, ro->pos0 << 32, tol);
    if (out->c.n_fail > fails && out->fail_pos < 0) {
        out->fail_pos = ro->pos0;
    }
    out->n_rows += ro->n_pos;
    return 0;
}

/* True (and the comparison recorded) when both ops cover exactly [p, q) and hold the same
 * bytes: decided from the content hashes, nothing decoded. */
static bool same_hash(struct vw_trace *ref, int64_t ri, struct vw_trace *cand, int64_t ci,
                      const char *role, int64_t p, int64_t q, struct vw_opcmp *out)
{
    struct trc_tensor_info x, y;
    const struct vw_top *ro = &ref->ops[ri], *co = &cand->ops[ci];
    if (ro->pos0 != p || co->pos0 != p || ro->pos0 + ro->n_pos != q || co->pos0 + co->n_pos != q) {
        return false;
    }
    if (vw_trace_tensor_info(ref, ri, role, &x) < 0 ||
        vw_trace_tensor_info(cand, ci, role, &y) < 0) {
        return false;
    }
    if (!x.has_data || !y.has_data || x.partial || y.partial || x.dtype != y.dtype ||
        x.n_dims != y.n_dims || memcmp(x.shape, y.shape, sizeof x.shape) != 0 ||
        strcmp(x.hash, y.hash) != 0 || score_scale(ref, cand, ro, role) != 1.0f ||
        score_scale(cand, ref, co, role) != 1.0f) {
        return false;
    }
    vw_cmp_add_identical(&out->c, x.n_elems);
    out->n_rows += q - p;
    out->bytes += x.nbytes + y.nbytes;
    out->hash_equal = out->n_rows == q - p || out->hash_equal;
    return true;
}

/* Compares positions [p, q), held by ref op ri and cand op ci. */
static int compare_run(struct vw_trace *ref, int64_t ri, struct vw_trace *cand, int64_t ci,
                       const char *role, int64_t p, int64_t q, const struct vw_override *over,
                       const struct vw_cmp_tol *tol, struct vw_opcmp *out)
{
    const int axis = vw_pos_axis(ref->ops[ri].kind, role);
    struct side rs = {ref, ri, NULL, {0, 0, 0}, 1.0f}, cs = {cand, ci, NULL, {0, 0, 0}, 1.0f};
    struct vw_tens ov;
    struct trc_tensor_info ci_info;
    const bool use_over = over && over->op == ci;
    if (!use_over && same_hash(ref, ri, cand, ci, role, p, q, out)) {
        return 0;
    }
    int rc = vw_trace_tensor(ref, ri, role, &rs.e);
    if (rc == 0 && use_over) {
        rc = vw_trace_tensor_info(cand, ci, role, &ci_info);
        memset(&ov, 0, sizeof ov);
        ov.dtype = TRC_DTYPE_F32;
        ov.n_dims = ci_info.n_dims;
        memcpy(ov.shape, ci_info.shape, sizeof ov.shape);
        ov.n = ci_info.n_elems;
        ov.data = (float *)(uintptr_t)over->data;
        cs.e = &ov;
    } else if (rc == 0) {
        rc = vw_trace_tensor(cand, ci, role, &cs.e);
    }
    if (rc == TRC_ENOTFOUND) {
        return compare_stats(ref, ri, cand, ci, role, tol, out);
    }
    if (rc < 0) {
        return rc;
    }
    rs.g = geom_of(rs.e, axis);
    cs.g = geom_of(cs.e, axis);
    rs.scale = score_scale(ref, cand, &ref->ops[ri], role);
    cs.scale = score_scale(cand, ref, &cand->ops[ci], role);
    return compare_rows(&rs, &cs, p, q, axis, tol, out);
}

int vw_align_compare(struct vw_trace *ref, struct vw_trace *cand, const char *name,
                     const char *role, int64_t p0, int64_t p1, const struct vw_override *over,
                     const struct vw_cmp_tol *tol, struct vw_opcmp *out)
{
    struct vw_cmp_tol t2 = *tol;
    memset(out, 0, sizeof *out);
    vw_cmp_init(&out->c);
    out->fail_pos = out->worst_pos = out->worst_within = -1;
    out->ref_op = out->cand_op = -1;
    out->atol = tol->atol;
    for (int64_t p = p0; p < p1;) {
        const int64_t ri = vw_trace_find(ref, name, p);
        const int64_t ci = vw_trace_find(cand, name, p);
        if (ri < 0 || ci < 0) {
            out->n_missing += ci < 0 ? 1 : 0;
            p++;
            continue;
        }
        const struct vw_top *ro = &ref->ops[ri], *co = &cand->ops[ci];
        int64_t q = ro->pos0 + ro->n_pos < co->pos0 + co->n_pos ? ro->pos0 + ro->n_pos
                                                                : co->pos0 + co->n_pos;
        q = q < p1 ? q : p1;
        if (out->ref_op < 0) {
            out->ref_op = ri;
            out->cand_op = ci;
        }
        t2.atol = tol->atol + print_atol(ro) + print_atol(co);
        out->atol = t2.atol > out->atol ? t2.atol : out->atol;
        int rc = compare_run(ref, ri, cand, ci, role, p, q, over, &t2, out);
        if (rc < 0) {
            return rc;
        }
        p = q;
    }
    vw_cmp_finish(&out->c);
    if (out->c.worst_idx >= 0) {
        out->worst_pos = out->c.worst_idx >> 32;
        out->worst_within = out->c.worst_idx & 0xffffffffLL;
    }
    return 0;
}

void vw_fmt_within(const struct vw_trace *t, int64_t op, int64_t within, char *buf, size_t cap)
{
    struct trc_tensor_info x;
    const struct vw_top *o = &t->ops[op];
    if (trc_reader_op_tensor(t->r, o->id, "out", &x.id) < 0 ||
        trc_reader_tensor_info(t->r, x.id, &x) < 0 || x.n_dims < 1) {
        snprintf(buf, cap, "[%lld]", (long long)within);
        return;
    }
    if (vw_pos_axis(o->kind, "out") == 1 && x.n_dims == 3 && x.shape[2] > 0) {
        snprintf(buf, cap, "[head %lld, cell %lld]", (long long)(within / x.shape[2]),
                 (long long)(within % x.shape[2]));
    } else if (x.n_dims == 3 && x.shape[2] > 0) {
        snprintf(buf, cap, "[head %lld, dim %lld]", (long long)(within / x.shape[2]),
                 (long long)(within % x.shape[2]));
    } else {
        snprintf(buf, cap, "[%lld]", (long long)within);
    }
}

/* ---- diffing two traces -------------------------------------------------------------------- */

const char *vw_origin_name(enum vw_origin o)
{
    static const char *const names[VW_ORIGIN_COUNT] = {"unknown (inputs not recorded)", "local",
                                                       "propagated", "input tokens differ"};
    return (o >= 0 && o < VW_ORIGIN_COUNT) ? names[o] : "unknown";
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int diff_op(struct vw_diff *d, int64_t i)
{
    const struct vw_top *o = &d->ref.ops[i];
    struct vw_opdiff *od = &d->ops[i];
    int rc = vw_align_compare(&d->ref, &d->cand, o->name, "out", o->pos0, o->pos0 + o->n_pos, NULL,
                              &d->tol, &od->oc);
    if (rc < 0) {
        return rc;
    }
    od->compared = od->oc.n_rows > 0;
    od->fail = od->compared && !vw_cmp_pass(&od->oc.c);
    d->bytes += od->oc.bytes;
    if (!od->compared) {
        d->n_ref_only++;
        return 0;
    }
    d->n_compared++;
    d->n_identical += od->oc.c.bitwise && !od->oc.stats_only ? 1 : 0;
    d->n_fail += od->fail ? 1 : 0;
    d->n_partial += od->oc.partial ? 1 : 0;
    d->n_stats_only += od->oc.stats_only ? 1 : 0;
    if (od->fail && d->first_fail < 0) {
        d->first_fail = i;
    }
    if (!od->oc.c.bitwise && d->first_diff < 0) {
        d->first_diff = i;
    }
    return 0;
}

/* The inputs an op kind records, data first. */
static const char *const *input_roles(const char *kind)
{
    static const char *const rope[] = {"in0", "pos", "cos", "sin", NULL};
    static const char *const two[] = {"in0", "in1", NULL};
    static const char *const one[] = {"in0", NULL};
    static const char *const none[] = {NULL};
    if (strcmp(kind, "rope") == 0) {
        return rope;
    }
    if (strcmp(kind, "add") == 0 || strcmp(kind, "swiglu") == 0) {
        return two;
    }
    return strcmp(kind, "cache_write") == 0 || strcmp(kind, "kv_store") == 0 ? none : one;
}

static int analyse_first(struct vw_diff *d)
{
    const struct vw_top *o = &d->ref.ops[d->first_fail];
    const char *const *roles = input_roles(o->kind);
    bool any_known = false, data_fail = false;
    for (int k = 0; roles[k] && d->n_inputs < VW_DIFF_MAX_INPUTS; k++) {
        struct vw_diff_input *in = &d->inputs[d->n_inputs++];
        snprintf(in->role, sizeof in->role, "%s", roles[k]);
        int rc = vw_align_compare(&d->ref, &d->cand, o->name, roles[k], o->pos0, o->pos0 + o->n_pos,
                                  NULL, &d->tol, &in->oc);
        if (rc < 0) {
            return rc;
        }
        in->known = in->oc.n_rows > 0 && !in->oc.stats_only;
        any_known = any_known || in->known;
        if (in->known && !vw_cmp_pass(&in->oc.c) && roles[k][0] == 'i') {
            data_fail = true;
        }
    }
    if (strcmp(o->kind, "cache_write") == 0 || strcmp(o->kind, "kv_store") == 0) {
        d->origin = VW_ORIGIN_LOCAL; /* its sources (rope_k, attn_v) ran earlier and agreed */
    } else if (!any_known) {
        d->origin = VW_ORIGIN_UNKNOWN;
    } else if (data_fail) {
        d->origin = strcmp(o->kind, "get_rows") == 0 ? VW_ORIGIN_TOKENS : VW_ORIGIN_PROPAGATED;
    } else {
        d->origin = VW_ORIGIN_LOCAL;
    }
    return 0;
}

static void count_cand_only(struct vw_diff *d)
{
    for (int64_t i = 0; i < d->cand.n_ops; i++) {
        const struct vw_top *o = &d->cand.ops[i];
        if (vw_trace_find(&d->ref, o->name, o->pos0) < 0) {
            d->n_cand_only++;
        }
    }
}

int vw_diff_run(struct vw_diff *d, const char *ref_path, const char *cand_path,
                const struct vw_cmp_tol *tol, char *err, size_t errlen)
{
    int rc = 0;
    memset(d, 0, sizeof *d);
    d->tol = *tol;
    d->first_fail = d->first_diff = -1;
    if (vw_trace_open(&d->ref, ref_path, err, errlen) < 0 ||
        vw_trace_open(&d->cand, cand_path, err, errlen) < 0) {
        return -1;
    }
    d->ops = calloc((size_t)(d->ref.n_ops + 1), sizeof *d->ops);
    if (!d->ops) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const double t0 = now_s();
    for (int64_t i = 0; i < d->ref.n_ops && rc == 0; i++) {
        rc = diff_op(d, i);
    }
    if (rc == 0 && d->first_fail >= 0) {
        rc = analyse_first(d);
    }
    d->seconds = now_s() - t0;
    count_cand_only(d);
    if (rc < 0) {
        snprintf(err, errlen, "%s", d->ref.err[0] ? d->ref.err : d->cand.err);
        return -1;
    }
    return 0;
}

void vw_diff_release(struct vw_diff *d)
{
    vw_trace_close(&d->ref);
    vw_trace_close(&d->cand);
    free(d->ops);
    memset(d, 0, sizeof *d);
}

int vw_trace_row(struct vw_trace *t, const char *name, const char *role, int64_t pos, float *dst,
                 int64_t cap, int64_t *n)
{
    const struct vw_tens *e;
    const int64_t op = vw_trace_find(t, name, pos);
    if (op < 0) {
        return TRC_ENOTFOUND;
    }
    int rc = vw_trace_tensor(t, op, role, &e);
    if (rc < 0) {
        return rc;
    }
    const struct geom g = geom_of(e, vw_pos_axis(t->ops[op].kind, role));
    const int64_t r = pos - t->ops[op].pos0;
    if (r < 0 || r >= g.rows) {
        return TRC_ENOTFOUND;
    }
    if (g.outer * g.inner > cap) {
        return TRC_EINVAL;
    }
    for (int64_t o = 0; o < g.outer; o++) {
        memcpy(dst + o * g.inner, e->data + (o * g.rows + r) * g.inner,
               (size_t)g.inner * sizeof *dst);
    }
    *n = g.outer * g.inner;
    return 0;
}
