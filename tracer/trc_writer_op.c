/*
 * trc_writer_op.c - trc_op_record on the engine's thread: checks an op, decides per tensor how
 * it travels to the writer thread, and queues one self-contained job (one malloc per op).
 *   - linked (trc_op_record_linked) to a tensor recorded earlier in the step: a slot number,
 *     no copy, no hash;
 *   - level stats: hash and stats computed here, one pass each over the engine's buffer while
 *     it is in cache; nothing is copied;
 *   - level full, and partial tensors: the data are copied; the worker hashes, computes the
 *     stats and compresses.
 * The link list maps "OP/ROLE" to the slot and description of each tensor of the open step.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "trc_writer_int.h"

/* ---- checks -------------------------------------------------------------------------------- */

static int check_tensor(trc_writer *w, const struct trc_op *op, int k, int64_t *n_elems)
{
    const struct trc_tensor *t = &op->tensors[k];
    size_t width = trc__dtype_size(t->dtype);
    int64_t n = 1;
    if (!t->role || !*t->role || !width || t->n_dims < 1 || t->n_dims > 4) {
        return trc__wfail(w, TRC_EINVAL,
                          "%s: op '%s': tensor %d needs a role, a dtype and 1..4 dims", w->path,
                          op->name, k);
    }
    for (int d = 0; d < t->n_dims; d++) {
        if (t->shape[d] < 0 || (t->shape[d] > 0 && n > TRC__MAX_TENSOR_BYTES / t->shape[d])) {
            return trc__wfail(w, TRC_EINVAL, "%s: op '%s': tensor '%s' has a bad shape", w->path,
                              op->name, t->role);
        }
        n *= t->shape[d];
    }
    int64_t n_stored = t->known ? t->n_known : n;
    if (n_stored * (int64_t)width > TRC__MAX_TENSOR_BYTES || (n_stored > 0 && !t->data) ||
        (t->known && (t->n_known < 0 || t->n_known > n))) {
        return trc__wfail(w, TRC_EINVAL, "%s: op '%s': tensor '%s': missing data or too large",
                          w->path, op->name, t->role);
    }
    for (int64_t i = 0; t->known && i < t->n_known; i++) {
        if (t->known[i] < 0 || t->known[i] >= n || (i > 0 && t->known[i] <= t->known[i - 1])) {
            return trc__wfail(
                w, TRC_EINVAL,
                "%s: op '%s': tensor '%s': known indices must increase within [0, %lld)", w->path,
                op->name, t->role, (long long)n);
        }
    }
    for (int j = 0; j < k; j++) {
        if (strcmp(op->tensors[j].role, t->role) == 0) {
            return trc__wfail(w, TRC_EINVAL, "%s: op '%s': role '%s' given twice", w->path,
                              op->name, t->role);
        }
    }
    *n_elems = n;
    return 0;
}

static int check_op(trc_writer *w, const struct trc_op *op)
{
    if (!op || !op->name || !*op->name || !op->kind || !*op->kind) {
        return trc__wfail(w, TRC_EINVAL, "%s: an op needs a name and a kind", w->path);
    }
    if (op->n_tensors < 0 || op->n_weights < 0 || (op->n_tensors > 0 && !op->tensors) ||
        (op->n_weights > 0 && !op->weights)) {
        return trc__wfail(w, TRC_EINVAL, "%s: op '%s': bad tensor or weight list", w->path,
                          op->name);
    }
    for (int k = 0; k < op->n_tensors; k++) {
        int64_t n;
        int rc = check_tensor(w, op, k, &n);
        if (rc < 0) {
            return rc;
        }
    }
    for (int k = 0; k < op->n_weights; k++) {
        const struct trc_weight *wt = &op->weights[k];
        if (!wt->role || !*wt->role || !wt->name || !*wt->name) {
            return trc__wfail(w, TRC_EINVAL, "%s: op '%s': weight %d needs a role and a name",
                              w->path, op->name, k);
        }
        for (int j = 0; j < k; j++) {
            if (strcmp(op->weights[j].role, wt->role) == 0) {
                return trc__wfail(w, TRC_EINVAL, "%s: op '%s': weight role '%s' given twice",
                                  w->path, op->name, wt->role);
            }
        }
    }
    return 0;
}

/* ---- the link list ------------------------------------------------------------------------- */

#define FNV_BASIS 0xcbf29ce484222325ULL

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    }
    return h;
}

void trc__links_reset(struct trc__links *t)
{
    t->n = 0;
    t->keys_len = 0;
    t->n_slots = 0;
}

void trc__links_release(struct trc__links *t)
{
    free(t->hash);
    free(t->e);
    free(t->keys);
    memset(t, 0, sizeof *t);
}

/* The newest entry registered under key, or NULL. */
static const struct trc__link *links_find(const struct trc__links *t, const char *key)
{
    const uint64_t h = fnv(FNV_BASIS, key);
    for (size_t i = t->n; i-- > 0;) {
        if (t->hash[i] == h && strcmp(t->keys + t->e[i].key, key) == 0) {
            return &t->e[i];
        }
    }
    return NULL;
}

static int links_grow(struct trc__links *t)
{
    size_t cap = t->cap ? 2 * t->cap : 512;
    uint64_t *hash = realloc(t->hash, cap * sizeof *hash);
    if (!hash) {
        return TRC_ENOMEM;
    }
    t->hash = hash;
    struct trc__link *e = realloc(t->e, cap * sizeof *e);
    if (!e) {
        return TRC_ENOMEM;
    }
    t->e = e;
    t->cap = cap;
    return 0;
}

/* Appends "name/role" -> *d. */
static int links_add(struct trc__links *t, const char *name, const char *role,
                     const struct trc__link *d)
{
    size_t n1 = strlen(name);
    size_t n2 = strlen(role);
    size_t need = t->keys_len + n1 + n2 + 2;
    if ((t->n == t->cap && links_grow(t) < 0) || need > UINT32_MAX) {
        return TRC_ENOMEM;
    }
    if (need > t->keys_cap) {
        size_t cap = need > 2 * t->keys_cap ? need : 2 * t->keys_cap;
        char *k = realloc(t->keys, cap);
        if (!k) {
            return TRC_ENOMEM;
        }
        t->keys = k;
        t->keys_cap = cap;
    }
    char *key = t->keys + t->keys_len;
    memcpy(key, name, n1);
    key[n1] = '/';
    memcpy(key + n1 + 1, role, n2 + 1);
    t->hash[t->n] = fnv(FNV_BASIS, key);
    t->e[t->n] = *d;
    t->e[t->n].key = (uint32_t)t->keys_len;
    t->n++;
    t->keys_len = need;
    return 0;
}

/* ---- one op into a job --------------------------------------------------------------------- */

/* How tensor k travels: linked (src >= 0), summarized here (has_stats) or copied (copy). */
struct plan {
    int32_t src;
    bool same_shape, copy, has_hash, has_stats;
    uint64_t hash;
    struct trc__stats st;
    const char *link;
    int64_t n_elems, n_stored;
};

static void plan_tensor(const trc_writer *w, const struct trc_tensor *t, enum trc_level level,
                        const char *same_as, struct plan *p)
{
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++) {
        n *= t->shape[d];
    }
    *p = (struct plan){.src = -1, .n_elems = n, .n_stored = t->known ? t->n_known : n};
    size_t nbytes = (size_t)p->n_stored * trc__dtype_size(t->dtype);
    const struct trc__link *e = same_as && !t->known ? links_find(&w->links, same_as) : NULL;
    if (e && e->level >= (int8_t)level && e->dtype == (int8_t)t->dtype &&
        e->n_stored == p->n_stored) {
        p->src = e->slot;
        p->link = same_as;
        p->same_shape = e->n_dims == t->n_dims &&
                        memcmp(e->shape, t->shape, (size_t)t->n_dims * sizeof *t->shape) == 0;
        if (w->check_links) {
            p->has_hash = true;
            p->hash = trc__hash(t->data, nbytes);
        }
    } else if (level == TRC_LEVEL_STATS && !t->known) {
        p->has_hash = p->has_stats = true;
        trc__hash_stats(t->data, t->dtype, (size_t)p->n_stored, &p->hash, &p->st);
    } else {
        p->copy = true;
    }
}

/* Bump allocation inside one block; with base NULL it only measures. */
struct arena {
    uint8_t *base;
    size_t off;
};

static void *arena_put(struct arena *a, const void *src, size_t n, size_t align)
{
    a->off = (a->off + align - 1) / align * align;
    void *p = a->base ? a->base + a->off : NULL;
    if (p && src && n) {
        memcpy(p, src, n);
    }
    a->off += n;
    return p;
}

static const char *arena_str(struct arena *a, const char *s)
{
    return s ? arena_put(a, s, strlen(s) + 1, 1) : NULL;
}

static void tensor_layout(struct arena *a, const struct trc_tensor *t, const struct plan *p,
                          int32_t slot, struct trc__jtensor *jt)
{
    size_t nb = (size_t)p->n_stored * trc__dtype_size(t->dtype);
    const char *role = arena_str(a, t->role);
    const char *link = arena_str(a, p->link);
    const void *data = p->copy ? arena_put(a, t->data, nb, 64) : NULL;
    const int64_t *known =
        t->known ? arena_put(a, t->known, (size_t)t->n_known * sizeof(int64_t), 8) : NULL;
    if (a->base) {
        *jt = (struct trc__jtensor){.role = role,
                                    .dtype = t->dtype,
                                    .n_dims = t->n_dims,
                                    .n_elems = p->n_elems,
                                    .n_stored = p->n_stored,
                                    .data = data,
                                    .known = known,
                                    .slot = slot,
                                    .src = p->src,
                                    .link = link,
                                    .same_shape = p->same_shape,
                                    .has_hash = p->has_hash,
                                    .has_stats = p->has_stats,
                                    .hash = p->hash,
                                    .st = p->st};
        memcpy(jt->shape, t->shape, sizeof jt->shape);
    }
}

/* The op's weights as the NUL-terminated JSON object {"ROLE": "NAME", ...} of ops.weights, into
 * dst (NULL: only measures); returns its size with the NUL. */
static size_t weights_json(char *dst, const struct trc_op *op)
{
    size_t n = 0;
    for (int k = 0; k < op->n_weights; k++) {
        n += trc__json_key(dst ? dst + n : NULL, k == 0, op->weights[k].role);
        n += trc__json_str(dst ? dst + n : NULL, op->weights[k].name);
    }
    if (dst) {
        dst[n] = '}';
        dst[n + 1] = '\0';
    }
    return n + 2;
}

/* Lays the op out in the arena (twice: measure, then copy). */
static void op_layout(struct arena *a, const struct trc_op *op, const struct plan *pl,
                      int32_t slot0, struct trc__jop **out)
{
    struct trc__jop *jo = arena_put(a, NULL, sizeof *jo, 8);
    struct trc__jtensor *jt = arena_put(a, NULL, (size_t)op->n_tensors * sizeof *jt, 8);
    const char *name = arena_str(a, op->name);
    const char *kind = arena_str(a, op->kind);
    const char *params = arena_str(a, op->params_json);
    char *weights = NULL;
    if (op->n_weights > 0) {
        weights = arena_put(a, NULL, weights_json(NULL, op), 1);
        if (weights) {
            weights_json(weights, op);
        }
    }
    for (int k = 0; k < op->n_tensors; k++) {
        tensor_layout(a, &op->tensors[k], &pl[k], slot0 + k, a->base ? &jt[k] : NULL);
    }
    if (a->base) {
        *jo = (struct trc__jop){.name = name,
                                .kind = kind,
                                .params = params,
                                .weights = weights,
                                .n_tensors = op->n_tensors,
                                .t = jt};
        *out = jo;
    }
}

/* Registers the op's tensors under "OP/ROLE" (partial ones cannot be linked to). */
static int op_register(trc_writer *w, const struct trc_op *op, enum trc_level level)
{
    for (int k = 0; k < op->n_tensors; k++) {
        const struct trc_tensor *t = &op->tensors[k];
        if (t->known) {
            continue;
        }
        struct trc__link d = {.slot = w->links.n_slots + k,
                              .level = (int8_t)level,
                              .dtype = (int8_t)t->dtype,
                              .n_dims = (int8_t)t->n_dims,
                              .n_stored = 1};
        for (int i = 0; i < t->n_dims; i++) {
            d.n_stored *= t->shape[i];
            d.shape[i] = t->shape[i];
        }
        if (links_add(&w->links, op->name, t->role, &d) < 0) {
            return trc__wfail(w, TRC_ENOMEM, "%s: out of memory recording op '%s'", w->path,
                              op->name);
        }
    }
    return 0;
}

static size_t str_bound(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* At least the bytes op_layout uses, without laying anything out: its strings' lengths, a JSON
 * escape of 6 bytes for every byte of the weights' texts, and the worst alignment padding. When
 * it fits a recycled block, the op is laid out once (the exact measure took a second pass). */
static size_t op_bound(const struct trc_op *op, const struct plan *pl)
{
    size_t n = sizeof(struct trc__job) + 7 + sizeof(struct trc__jop) + 7 +
               (size_t)op->n_tensors * sizeof(struct trc__jtensor) + str_bound(op->name) +
               str_bound(op->kind) + str_bound(op->params_json) + 2;
    for (int k = 0; k < op->n_weights; k++) {
        n += 6 + 6 * (strlen(op->weights[k].role) + strlen(op->weights[k].name));
    }
    for (int k = 0; k < op->n_tensors; k++) {
        const struct trc_tensor *t = &op->tensors[k];
        n += str_bound(t->role) + str_bound(pl[k].link);
        if (pl[k].copy) {
            n += 63 + (size_t)pl[k].n_stored * trc__dtype_size(t->dtype);
        }
        if (t->known) {
            n += 7 + (size_t)t->n_known * sizeof(int64_t);
        }
    }
    return n;
}

/* The job of a checked op at level stats or full (malloc'd), or NULL when out of memory. */
static struct trc__job *op_job(trc_writer *w, const struct trc_op *op, enum trc_level level,
                               const struct plan *pl, int64_t seq)
{
    struct arena a = {NULL, sizeof(struct trc__job)};
    if (op_bound(op, pl) <= TRC__JOB_SPARE) {
        a.off = TRC__JOB_SPARE; /* laid out once, below */
    } else {
        op_layout(&a, op, pl, w->links.n_slots, NULL);
    }
    struct trc__job *job = NULL;
    const bool spare = a.off <= TRC__JOB_SPARE;
    if (spare) {
        if (!w->spare_caller) {
            w->spare_caller = atomic_exchange_explicit(&w->spare, NULL, memory_order_acquire);
        }
        job = w->spare_caller;
        w->spare_caller = job ? job->next : NULL;
    }
    if (!job && !(job = malloc(spare ? TRC__JOB_SPARE : a.off))) {
        return NULL;
    }
    *job = (struct trc__job){.kind = TRC__JOB_OP, .bytes = a.off, .quiet = true, .spare = spare};
    const size_t cap = job->bytes;
    a = (struct arena){(uint8_t *)job, sizeof(struct trc__job)};
    op_layout(&a, op, pl, w->links.n_slots, &job->op);
    assert(a.off <= cap); /* op_bound is an upper bound */
    (void)cap;
    job->bytes = a.off; /* what the queue counts, and wakes the worker by (trc__submit) */
    struct trc__jop *jo = job->op;
    jo->id = ++w->n_ops;
    jo->run_id = w->run_id;
    jo->step = w->step;
    jo->seq = seq;
    jo->layer = op->layer;
    jo->pos0 = op->pos0;
    jo->n_pos = op->n_pos;
    jo->elapsed_ns = op->elapsed_ns;
    jo->level = level;
    return job;
}

static int record(trc_writer *w, const struct trc_op *op, const char *const *same_as)
{
    int rc = trc__sticky(w);
    if (rc < 0) {
        return rc;
    }
    if (!w->in_step) {
        return trc__wfail(w, TRC_EINVAL, "%s: trc_op_record outside a step (call trc_step_begin)",
                          w->path);
    }
    rc = check_op(w, op);
    if (rc < 0) {
        return rc;
    }
    int64_t seq = w->seq++;
    enum trc_level level = trc_writer_level(w, op->name, w->step);
    if (level == TRC_LEVEL_NONE) {
        return 0;
    }
    struct plan stack[8];
    struct plan *pl = op->n_tensors <= 8 ? stack : malloc((size_t)op->n_tensors * sizeof *pl);
    struct trc__job *job = NULL;
    if (pl) {
        for (int k = 0; k < op->n_tensors; k++) {
            plan_tensor(w, &op->tensors[k], level, same_as ? same_as[k] : NULL, &pl[k]);
        }
        job = op_job(w, op, level, pl, seq);
    }
    if (pl != stack) {
        free(pl);
    }
    if (!job) {
        return trc__wfail(w, TRC_ENOMEM, "%s: out of memory copying op '%s'", w->path, op->name);
    }
    if ((rc = op_register(w, op, level)) < 0) {
        free(job);
        return rc;
    }
    w->links.n_slots += op->n_tensors;
    trc__submit(w, job);
    return 0;
}

int trc_op_record_linked(trc_writer *w, const struct trc_op *op, const char *const *same_as)
{
    int64_t t0 = trc__now_ns();
    int rc = record(w, op, same_as);
    w->st.record_ns += trc__now_ns() - t0; /* caller-side field: the worker never writes it */
    return rc;
}

int trc_op_record(trc_writer *w, const struct trc_op *op)
{
    return trc_op_record_linked(w, op, NULL);
}

int trc_writer_check_links(trc_writer *w, bool on)
{
    if (!w) {
        return TRC_EINVAL;
    }
    w->check_links = on;
    return 0;
}
