/*
 * import_write.c - writes an import (struct vw_imp) into a trace through the tracer's public
 * writer API, and nothing else: the importers never see the tracer.
 *
 * The writer runs synchronously (compression on this thread, no worker), so the content of the
 * trace is a pure function of the struct: importing the same input twice gives the same rows.
 * On any failure the half-written file is removed, so an import leaves a complete trace or none.
 */
#include "import_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "trc.h"

static int run_params(trc_writer *w, const struct vw_imp *imp)
{
    int rc = 0;
    for (int i = 0; i < imp->n_kv && rc == 0; i++) {
        const struct vw_imp_kv *kv = &imp->kv[i];
        if (kv->type == VW_KV_STR) {
            rc = trc_run_set_str(w, kv->key, kv->s);
        } else if (kv->type == VW_KV_I64) {
            rc = trc_run_set_i64(w, kv->key, kv->i);
        } else {
            rc = trc_run_set_f64(w, kv->key, kv->f);
        }
    }
    return rc;
}

static int tokens(trc_writer *w, const struct vw_imp *imp)
{
    int rc = 0;
    for (int64_t i = 0; i < imp->n_tokens && rc == 0; i++) {
        const struct vw_imp_token *t = &imp->tokens[i];
        rc = trc_token_add(w, i, t->id, t->piece[0] ? t->piece : NULL, t->is_prompt, t->is_bos, NAN,
                           NAN);
    }
    return rc;
}

static int one_op(trc_writer *w, const struct vw_imp_op *op)
{
    struct trc_tensor t;
    struct trc_weight wt = {"weight", op->weight};
    struct trc_op o;
    memset(&t, 0, sizeof t);
    memset(&o, 0, sizeof o);
    t.role = "out";
    t.dtype = TRC_DTYPE_F32;
    t.n_dims = op->n_dims;
    memcpy(t.shape, op->shape, sizeof t.shape);
    t.data = op->vals;
    t.known = op->known;
    t.n_known = op->known ? op->n_known : 0;
    o.name = op->name;
    o.kind = op->kind;
    o.layer = op->layer;
    o.pos0 = op->pos0;
    o.n_pos = op->n_pos;
    o.params_json = op->params;
    o.elapsed_ns = -1;
    o.tensors = &t;
    o.n_tensors = 1;
    o.weights = op->weight[0] ? &wt : NULL;
    o.n_weights = op->weight[0] ? 1 : 0;
    return trc_op_record(w, &o);
}

static int steps(trc_writer *w, const struct vw_imp *imp)
{
    int64_t k = 0;
    for (int64_t s = 0; s < imp->n_steps; s++) {
        const struct vw_imp_step *st = &imp->steps[s];
        int rc = trc_step_begin(w, st->step, st->pos0, st->n_tokens);
        for (; rc == 0 && k < imp->n_ops && imp->ops[k].step == st->step; k++) {
            rc = one_op(w, &imp->ops[k]);
        }
        rc = rc ? rc : trc_step_end(w, -1);
        if (rc) {
            return rc;
        }
    }
    return 0;
}

static void remove_trace(const char *path)
{
    char side[4096];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-journal", path);
    unlink(side);
}

int vw_imp_write(const struct vw_imp *imp, const char *path, bool overwrite, char *err,
                 size_t errlen)
{
    struct trc_writer_opts opts = {.overwrite = overwrite, .synchronous = true};
    trc_writer *w = NULL;
    int64_t run_id;
    char eb[TRC_ERRBUF_SIZE];
    int rc = trc_writer_open(path, &opts, &w, eb, sizeof eb);
    if (rc < 0) {
        bool exists = rc == TRC_EEXIST;
        snprintf(err, errlen, "%s: %s", path,
                 exists ? "file exists (use --force to overwrite)" : eb);
        return -1;
    }
    rc = trc_run_begin(w, imp->source, &run_id);
    rc = rc ? rc : run_params(w, imp);
    rc = rc ? rc : tokens(w, imp);
    rc = rc ? rc : steps(w, imp);
    rc = rc ? rc : trc_run_end(w, "complete");
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, trc_writer_errmsg(w));
    }
    int crc = trc_writer_close(w);
    if (rc == 0 && crc < 0) {
        snprintf(err, errlen, "%s: %s", path, trc_strerror(crc));
        rc = crc;
    }
    if (rc < 0) {
        remove_trace(path);
        return -1;
    }
    return 0;
}
