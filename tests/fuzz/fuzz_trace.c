/*
 * libFuzzer harness for the trace reader (trc_reader_*), which opens traces that may come from
 * anyone. At the first input it records a small valid trace through the writer API (one run,
 * two steps, ops at levels full and stats, f32/f16/i32 and a partial tensor, 512-byte pages so
 * that the file is small); each input is a list of byte changes to that file (4-byte offset,
 * little endian, modulo the size, then a byte to xor in). The changed file is opened and every
 * run, step, op and tensor it holds is read, header and data. SQLite finds most damage; what
 * it lets through (a changed number, text or blob inside a record) reaches the reader's own
 * checks. Either the open fails with a message, or everything reads or is refused with one;
 * no crash, no leak. Then the commands that read a trace run on it as a user would run them
 * (`lltrace info`, `ops`, `show`, `diff` against the valid trace, `sql` on the views), their
 * output thrown away. Invariants that fail trap. Run: ./fuzz_trace CORPUS -max_total_time=60.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "fuzz_files.h"
#include "trc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_base[4096], g_path[4200];
static uint8_t *g_image;
static size_t g_size;

static void record(trc_writer *w, const char *name, int layer, const struct trc_tensor *t, int n)
{
    struct trc_weight wt = {"weight", "blk.0.attn_q.weight"};
    struct trc_op op = {name, "matmul", layer, 0, 2, "{\"eps\":1e-05}", 10, t, n, &wt, 1};
    if (trc_op_record(w, &op) < 0) {
        __builtin_trap();
    }
}

static void remove_all(void)
{
    fz_remove_trace(g_path);
    unlink(g_base);
}

/* The valid trace every input changes, into g_image. */
static void make_base(void)
{
    const char *dir = getenv("TMPDIR");
    snprintf(g_base, sizeof g_base, "%s/lltrace-fuzz-trace-%d", dir && *dir ? dir : "/tmp",
             (int)getpid());
    snprintf(g_path, sizeof g_path, "%s.mut", g_base);
    struct trc_writer_opts o = {.overwrite = true, .synchronous = true, .page_size = 512};
    trc_writer *w = NULL;
    char err[256];
    if (trc_writer_open(g_base, &o, &w, err, sizeof err) < 0 ||
        trc_writer_add_rule(w, "stats:blk.1.*") < 0 || trc_run_begin(w, "fuzz", NULL) < 0 ||
        trc_run_set_i64(w, "n_layer", 2) < 0 || trc_run_set_f64(w, "rope_theta", 10000.0) < 0 ||
        trc_run_set_str(w, "prompt", "Once upon a time") < 0) {
        __builtin_trap();
    }
    float x[24];
    uint16_t h[24];
    int32_t ids[4] = {1, 403, 407, 15010};
    int64_t known[3] = {0, 7, 23};
    for (int i = 0; i < 24; i++) {
        x[i] = (float)i * 0.25f - 2.0f;
        h[i] = (uint16_t)(0x3c00 + i);
    }
    for (int s = 0; s < 2; s++) {
        if (trc_step_begin(w, s, s * 4, s ? 1 : 4) < 0 ||
            trc_token_add(w, s, ids[s], "tok", s == 0, s == 0, 0.5f, 1.0f) < 0) {
            __builtin_trap();
        }
        x[0] = (float)s;
        struct trc_tensor t0[3] = {{"in0", TRC_DTYPE_F32, 2, {4, 6, 0, 0}, x, NULL, 0},
                                   {"out", TRC_DTYPE_F16, 1, {24, 0, 0, 0}, h, NULL, 0},
                                   {"pos", TRC_DTYPE_I32, 1, {4, 0, 0, 0}, ids, NULL, 0}};
        struct trc_tensor t1 = {"out", TRC_DTYPE_F32, 2, {4, 6, 0, 0}, x, known, 3};
        record(w, "blk.0.attn_q", 0, t0, 3);
        record(w, "blk.0.kq", 0, &t1, 1);
        record(w, "blk.1.attn_q", 1, t0, 1);
        if (trc_step_end(w, 100) < 0) {
            __builtin_trap();
        }
    }
    if (trc_run_end(w, "complete") < 0 || trc_writer_close(w) < 0) {
        __builtin_trap();
    }
    g_image = fz_slurp(g_base, &g_size);
    atexit(remove_all); /* the valid trace stays for `diff` */
}

static void read_tensor(trc_reader *r, int64_t id)
{
    struct trc_tensor_info ti;
    if (trc_reader_tensor_info(r, id, &ti) < 0) {
        return;
    }
    if (ti.n_dims < 1 || ti.n_dims > 4 || ti.n_stored < 0 || ti.n_stored > ti.n_elems ||
        ti.nbytes < 0) {
        __builtin_trap(); /* the header was checked before it was returned */
    }
    if (ti.n_stored > (1 << 20)) {
        return;
    }
    float *v = malloc((size_t)ti.n_stored * sizeof *v + 1);
    int64_t *k = malloc((size_t)ti.n_stored * sizeof *k + 1);
    if (v && k && trc_reader_tensor_f32(r, id, v, ti.n_stored) == 0 && ti.n_stored > 0) {
        (void)(volatile float)v[ti.n_stored - 1];
    }
    if (v && k && ti.partial && trc_reader_tensor_known(r, id, k, ti.n_stored) == 0) {
        for (int64_t i = 0; i < ti.n_stored; i++) {
            if (k[i] < 0 || k[i] >= ti.n_elems || (i > 0 && k[i] <= k[i - 1])) {
                __builtin_trap(); /* known indices were checked */
            }
        }
    }
    free(v);
    free(k);
}

static void walk(trc_reader *r)
{
    trc_cursor *runs = NULL;
    struct trc_run_info ri;
    if (trc_reader_runs(r, &runs) < 0) {
        trc_cursor_close(runs);
        return;
    }
    for (int nr = 0; nr < 8 && trc_cursor_next_run(runs, &ri) == 1; nr++) {
        trc_cursor *steps = NULL, *ops = NULL;
        struct trc_step_info si;
        struct trc_op_info oi;
        if (trc_reader_steps(r, ri.id, &steps) == 0) {
            for (int ns = 0; ns < 64 && trc_cursor_next_step(steps, &si) == 1; ns++) {
            }
        }
        trc_cursor_close(steps);
        if (trc_reader_ops(r, ri.id, -1, &ops) == 0) {
            for (int no = 0; no < 64 && trc_cursor_next_op(ops, &oi) == 1; no++) {
                static const char *roles[] = {"in0", "out", "pos"};
                for (int k = 0; k < 3; k++) {
                    int64_t tid;
                    if (trc_reader_op_tensor(r, oi.id, roles[k], &tid) == 0) {
                        read_tensor(r, tid);
                    }
                }
            }
        }
        trc_cursor_close(ops);
    }
    trc_cursor_close(runs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_image) {
        make_base();
    }
    if (fz_write_changed(g_path, g_image, g_size, data, size) < 0) {
        return 0;
    }
    trc_reader *r = NULL;
    char err[512] = "";
    if (trc_reader_open(g_path, &r, err, sizeof err) < 0) {
        if (r || !err[0]) {
            __builtin_trap(); /* a failed open leaves no reader and says why */
        }
        return 0;
    }
    walk(r);
    trc_reader_close(r);
    char *info[] = {"info", g_path}, *ops[] = {"ops", g_path, "--json"};
    char *show[] = {"show", g_path, "blk.0.attn_q", "--step", "1"};
    char *diff[] = {"diff", g_base, g_path, "--steps"};
    char *sql[] = {"sql", g_path, "SELECT * FROM v_runs; SELECT * FROM v_op_tensors"};
    fz_command(cmd_info, 2, info);
    fz_command(cmd_ops, 3, ops);
    fz_command(cmd_show, 5, show);
    fz_command(cmd_diff, 4, diff);
    fz_command(cmd_sql, 3, sql);
    return 0;
}
