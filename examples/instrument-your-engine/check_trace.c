/*
 * check_trace - reads back the trace instrument_your_engine wrote, through the reader API of
 * trc.h only, and checks it means what the engine did: one complete run of 4 steps, 13 ops per
 * step in execution order, every l_out equal to in0 + in1 bit for bit, every ffn_act equal to
 * silu(in0), and each generated token equal to the argmax of the previous step's last logits
 * row (read from the next step's tok_embd input). Exit 0 when all hold.
 *
 * Usage: check_trace TRACE
 *        check_trace --any TRACE   (any trace: every run complete, every op output verified)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trc.h"

#define N_OPS_PER_STEP 13 /* tok_embd + 2 layers x 5 + output_norm + output */
#define N_STEPS        4  /* the prompt batch + 3 single-token steps */

static int fail(const char *what, const trc_reader *r)
{
    fprintf(stderr, "check_trace: %s%s%s\n", what, r ? ": " : "", r ? trc_reader_errmsg(r) : "");
    return 1;
}

/* Loads the tensor an op holds in a role, as f32, into a malloc'd array. */
static float *load(trc_reader *r, int64_t op, const char *role, int64_t *n)
{
    int64_t id;
    struct trc_tensor_info ti;
    if (trc_reader_op_tensor(r, op, role, &id) < 0 || trc_reader_tensor_info(r, id, &ti) < 0) {
        return NULL;
    }
    float *v = malloc((size_t)ti.n_stored * sizeof *v + 1);
    if (v && trc_reader_tensor_f32(r, id, v, ti.n_stored) < 0) {
        free(v);
        return NULL;
    }
    *n = ti.n_stored;
    return v;
}

/* Checks one op's output against its inputs; returns 0 when consistent. */
static int check_op(trc_reader *r, const struct trc_op_info *op)
{
    int64_t n0 = 0;
    int64_t n1 = 0;
    int64_t no = 0;
    int bad = 0;
    bool is_add = strcmp(op->kind, "add") == 0;
    bool is_silu = strcmp(op->kind, "silu") == 0;
    if (!is_add && !is_silu) {
        return 0;
    }
    float *a = load(r, op->id, "in0", &n0);
    float *b = is_add ? load(r, op->id, "in1", &n1) : NULL;
    float *o = load(r, op->id, "out", &no);
    bad = !a || !o || (is_add && !b) || n0 != no;
    for (int64_t i = 0; !bad && i < no; i++) {
        float want = is_add ? a[i] + b[i] : a[i] / (1.0f + expf(-a[i]));
        bad = o[i] != want;
    }
    free(a);
    free(b);
    free(o);
    return bad;
}

/* The argmax of the last row of a (rows, n_vocab) logits tensor. */
static int last_argmax(const float *v, int64_t n, int n_vocab)
{
    const float *row = v + n - n_vocab;
    int best = 0;
    for (int i = 1; i < n_vocab; i++) {
        best = row[i] > row[best] ? i : best;
    }
    return best;
}

static int check_ops(trc_reader *r, int64_t run)
{
    trc_cursor *c = NULL;
    struct trc_op_info op;
    int64_t n_ops = 0;
    int want_next = -1;
    int rc = trc_reader_ops(r, run, -1, &c);
    while (rc == 0 && trc_cursor_next_op(c, &op) == 1) {
        int64_t n;
        if (op.seq != n_ops % N_OPS_PER_STEP || op.step != n_ops / N_OPS_PER_STEP) {
            rc = fail("ops out of execution order", NULL);
        } else if (check_op(r, &op) != 0) {
            fprintf(stderr, "check_trace: op %s of step %lld: output does not match inputs\n",
                    op.name, (long long)op.step);
            rc = 1;
        } else if (strcmp(op.name, "tok_embd") == 0 && want_next >= 0) {
            float *tok = load(r, op.id, "in0", &n);
            rc = tok && (int)tok[0] == want_next ? 0 : fail("token is not the argmax", NULL);
            free(tok);
        } else if (strcmp(op.name, "output") == 0) {
            float *lg = load(r, op.id, "out", &n);
            rc = lg ? 0 : fail("cannot read logits", r);
            want_next = lg ? last_argmax(lg, n, 16) : -1;
            free(lg);
        }
        n_ops++;
    }
    trc_cursor_close(c);
    if (rc == 0 && n_ops != N_STEPS * N_OPS_PER_STEP) {
        fprintf(stderr, "check_trace: %lld ops, want %d\n", (long long)n_ops,
                N_STEPS * N_OPS_PER_STEP);
        rc = 1;
    }
    return rc;
}

/* --any: every run complete, and every op's output decodes and verifies. */
static int check_any(trc_reader *r)
{
    trc_cursor *runs = NULL;
    struct trc_run_info run;
    int rc = trc_reader_runs(r, &runs) < 0;
    int64_t n_ops = 0;
    while (rc == 0 && trc_cursor_next_run(runs, &run) == 1) {
        trc_cursor *ops = NULL;
        struct trc_op_info op;
        rc = strcmp(run.status, "complete") != 0 || trc_reader_ops(r, run.id, -1, &ops) < 0;
        while (rc == 0 && trc_cursor_next_op(ops, &op) == 1) {
            int64_t n;
            float *v = load(r, op.id, "out", &n);
            rc = v ? 0 : fail("cannot read an op output", r);
            free(v);
            n_ops++;
        }
        trc_cursor_close(ops);
    }
    trc_cursor_close(runs);
    if (rc == 0 && n_ops == 0) {
        rc = fail("no ops", NULL);
    }
    return rc;
}

int main(int argc, char **argv)
{
    char err[TRC_ERRBUF_SIZE];
    trc_reader *r = NULL;
    bool any = argc == 3 && strcmp(argv[1], "--any") == 0;
    if (argc != 2 && !any) {
        fprintf(stderr, "usage: check_trace [--any] TRACE\n");
        return 2;
    }
    if (trc_reader_open(argv[argc - 1], &r, err, sizeof err) < 0) {
        fprintf(stderr, "check_trace: %s\n", err);
        return 1;
    }
    if (any) {
        int arc = check_any(r);
        trc_reader_close(r);
        printf("%s: %s\n", argv[2], arc ? "FAILED" : "ok");
        return arc;
    }
    trc_cursor *c = NULL;
    struct trc_run_info run;
    int rc = trc_reader_runs(r, &c) < 0 || trc_cursor_next_run(c, &run) != 1;
    if (rc || strcmp(run.status, "complete") != 0 || run.n_steps != N_STEPS || run.n_layer != 2) {
        rc = fail("want one complete run of 4 steps and 2 layers", NULL);
    }
    int64_t run_id = rc ? 0 : run.id;
    trc_cursor_close(c);
    rc = rc ? rc : check_ops(r, run_id);
    trc_reader_close(r);
    if (rc == 0) {
        printf("%s: ok (4 steps, %d ops each, outputs consistent with inputs)\n", argv[1],
               N_OPS_PER_STEP);
    }
    return rc;
}
