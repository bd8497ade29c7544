/*
 * trc_writer_dedupe.c - the writer thread's index of the tensors it stored: (content hash,
 * dtype, shape) -> (row id, the row holding its bytes). The writer creates every trace from an
 * empty file and is its only writer, so this map knows every row: dedupe needs no SQL lookup,
 * and the file needs no index on hash (schema/trace.sql).
 * Shapes are interned (a decode step has few distinct ones), so an entry is 32 bytes.
 * A rollback marks the map stale; none is followed by more tensors (trc_wdb.c).
 */
#include <stdlib.h>
#include <string.h>

#include "trc_writer_int.h"

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static uint64_t shape_hash(enum trc_dtype dt, int n_dims, const int64_t *shape)
{
    uint64_t h = mix((uint64_t)dt * 31 + (uint64_t)n_dims);
    for (int i = 0; i < n_dims; i++) {
        h = mix(h ^ (uint64_t)shape[i]);
    }
    return h;
}

/* A loop rather than memcmp: at most 4 dims, and a call to memcmp was 3% of the writer. */
static bool shape_eq(const struct trc__dshape *s, enum trc_dtype dt, int n_dims,
                     const int64_t *shape)
{
    if (s->dtype != (int)dt || s->n_dims != n_dims) {
        return false;
    }
    for (int i = 0; i < n_dims; i++) {
        if (s->shape[i] != shape[i]) {
            return false;
        }
    }
    return true;
}

/* Open addressing over the interned shapes; slot values are index + 1 (0 = empty). */
static int shape_grow(struct trc__dedupe *d)
{
    size_t cap = d->shape_cap ? 2 * d->shape_cap : 64;
    struct trc__dshape *s = realloc(d->shapes, cap / 2 * sizeof *s);
    uint32_t *slot = calloc(cap, sizeof *slot);
    if (!s || !slot) {
        if (s) {
            d->shapes = s;
        }
        free(slot);
        return TRC_ENOMEM;
    }
    d->shapes = s;
    for (uint32_t k = 0; k < d->n_shapes; k++) {
        size_t i = d->shapes[k].h & (cap - 1);
        while (slot[i]) {
            i = (i + 1) & (cap - 1);
        }
        slot[i] = k + 1;
    }
    free(d->shape_slot);
    d->shape_slot = slot;
    d->shape_cap = cap;
    return 0;
}

/* The interned index of (dt, shape); with add, creates it. -1 when absent (or out of memory). */
static int64_t shape_index(struct trc__dedupe *d, enum trc_dtype dt, int n_dims,
                           const int64_t *shape, bool add)
{
    uint64_t h = shape_hash(dt, n_dims, shape);
    size_t i = h & (d->shape_cap - 1);
    for (; d->shape_cap && d->shape_slot[i]; i = (i + 1) & (d->shape_cap - 1)) {
        if (shape_eq(&d->shapes[d->shape_slot[i] - 1], dt, n_dims, shape)) {
            return d->shape_slot[i] - 1;
        }
    }
    if (!add) {
        return -1;
    }
    if ((d->n_shapes + 1) * 2 > d->shape_cap) {
        if (shape_grow(d) < 0) {
            return -1;
        }
        return shape_index(d, dt, n_dims, shape, add);
    }
    struct trc__dshape *s = &d->shapes[d->n_shapes];
    *s = (struct trc__dshape){.h = h, .dtype = (int)dt, .n_dims = n_dims};
    memcpy(s->shape, shape, (size_t)n_dims * sizeof *shape);
    d->shape_slot[i] = ++d->n_shapes;
    return d->n_shapes - 1;
}

static size_t entry_pos(const struct trc__dedupe *d, uint64_t hash, uint32_t shape)
{
    return mix(hash ^ ((uint64_t)shape << 40)) & (d->cap - 1);
}

static struct trc__dentry *entry_find(const struct trc__dedupe *d, uint64_t hash, uint32_t shape)
{
    for (size_t i = entry_pos(d, hash, shape); d->cap; i = (i + 1) & (d->cap - 1)) {
        struct trc__dentry *e = &d->e[i];
        if (e->id == 0 || (e->hash == hash && e->shape == shape)) {
            return e;
        }
    }
    return NULL;
}

static int entries_grow(struct trc__dedupe *d)
{
    size_t cap = d->cap ? 2 * d->cap : 4096;
    struct trc__dentry *old = d->e;
    size_t old_cap = d->cap;
    /* Not calloc: its large blocks are fresh zero pages, which a lookup's read maps to the
     * shared zero page and the insert's write then replaces, a second fault per page that
     * interrupts the engine's other threads (TLB shootdown). Writing zeros faults each page in
     * once; through a volatile pointer, or the compiler turns malloc + memset into calloc. */
    static void *(*volatile zero_fill)(void *, int, size_t) = memset;
    if (!(d->e = malloc(cap * sizeof *d->e))) {
        d->e = old;
        return TRC_ENOMEM;
    }
    zero_fill(d->e, 0, cap * sizeof *d->e);
    d->cap = cap;
    for (size_t k = 0; k < old_cap; k++) {
        if (old[k].id) {
            *entry_find(d, old[k].hash, old[k].shape) = old[k];
        }
    }
    free(old);
    return 0;
}

int trc__dedupe_find(struct trc__dedupe *d, uint64_t hash, enum trc_dtype dt, int n_dims,
                     const int64_t *shape, int64_t *id, int64_t *data_id)
{
    int64_t s = shape_index(d, dt, n_dims, shape, false);
    const struct trc__dentry *e = s >= 0 ? entry_find(d, hash, (uint32_t)s) : NULL;
    if (!e || e->id == 0) {
        return 0;
    }
    *id = e->id;
    *data_id = e->data_id;
    return 1;
}

void trc__dedupe_prefetch(struct trc__dedupe *d, uint64_t hash, enum trc_dtype dt, int n_dims,
                          const int64_t *shape)
{
    int64_t s = shape_index(d, dt, n_dims, shape, false);
    if (s >= 0) {
        __builtin_prefetch(&d->e[entry_pos(d, hash, (uint32_t)s)]);
    }
}

int trc__dedupe_put(struct trc__dedupe *d, uint64_t hash, enum trc_dtype dt, int n_dims,
                    const int64_t *shape, int64_t id, int64_t data_id)
{
    int64_t s = shape_index(d, dt, n_dims, shape, true);
    if (s < 0 || s > UINT32_MAX || ((d->n + 1) * 2 > d->cap && entries_grow(d) < 0)) {
        return TRC_ENOMEM;
    }
    struct trc__dentry *e = entry_find(d, hash, (uint32_t)s);
    d->n += e->id == 0;
    *e = (struct trc__dentry){hash, (uint32_t)s, id, data_id};
    return 0;
}

void trc__dedupe_release(struct trc__dedupe *d)
{
    free(d->e);
    free(d->shapes);
    free(d->shape_slot);
    memset(d, 0, sizeof *d);
}
