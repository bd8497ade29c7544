/*
 * A recorded trace of stories260K (../shared/models/stories260k-f32.v3.gguf), 16 generated
 * tokens, checked against the model's shape and against mathematics: every canonical op of
 * every layer and step is there exactly once, in execution order, covering the right positions;
 * the RoPE cos/sin rows are the closed form cos/sin(pos * theta^(-2i/n_rot)) for the recorded
 * positions; and every stored tensor decompresses and matches its content hash, and is stored
 * once.
 */
#include <check.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "trc.h"

static const char *const layer_ops[] = {
    "attn_norm", "attn_q", "attn_k",     "attn_v",  "rope_q",   "rope_k",  "cache_k",
    "cache_v",   "kq",     "kq_softmax", "kqv",     "attn_out", "ffn_inp", "ffn_norm",
    "ffn_gate",  "ffn_up", "ffn_act",    "ffn_out", "l_out"};
enum { N_LAYER_OPS = sizeof layer_ops / sizeof layer_ops[0], N_GEN = 16, N_LAYER = 5 };

static char trace[1200];

static void setup(void)
{
    char dir[1024], model[1024];
    ck_assert_ptr_nonnull(lt_shared_path(model, sizeof model, "models/stories260k-f32.v3.gguf"));
    lt_tmp_dir(dir, sizeof dir, "test_ref_trace");
    snprintf(trace, sizeof trace, "%s/s.trace", dir);
    lt_record_trace(model, "Once upon a time", N_GEN, NULL, trace);
}

static trc_reader *open_trace(void)
{
    char err[256];
    trc_reader *r;
    ck_assert_msg(trc_reader_open(trace, &r, err, sizeof err) == 0, "%s", err);
    return r;
}

/* Each step: tok_embd, 19 ops per layer in order, output_norm, output; positions as run. */
START_TEST(test_ref_trace_every_canonical_op)
{
    trc_reader *r = open_trace();
    trc_cursor *cs, *co;
    struct trc_step_info st;
    struct trc_op_info op;
    int64_t n_steps = 0;
    ck_assert_int_eq(trc_reader_steps(r, 1, &cs), 0);
    while (trc_cursor_next_step(cs, &st) == 1) {
        char want[64];
        int i = 0;
        ck_assert_int_eq(trc_reader_ops(r, 1, st.step, &co), 0);
        while (trc_cursor_next_op(co, &op) == 1) {
            if (i == 0) {
                snprintf(want, sizeof want, "tok_embd");
            } else if (i <= N_LAYER * N_LAYER_OPS) {
                snprintf(want, sizeof want, "blk.%d.%s", (i - 1) / N_LAYER_OPS,
                         layer_ops[(i - 1) % N_LAYER_OPS]);
            } else {
                snprintf(want, sizeof want, "%s",
                         i == N_LAYER * N_LAYER_OPS + 1 ? "output_norm" : "output");
            }
            ck_assert_msg(!strcmp(op.name, want), "step %lld op %d: %s, want %s",
                          (long long)st.step, i, op.name, want);
            ck_assert_int_eq(op.seq, i);
            const bool last_row = i > (N_LAYER - 1) * N_LAYER_OPS + 12; /* after blk.4.attn_out */
            ck_assert_int_eq(op.pos0, last_row ? st.pos0 + st.n_tokens - 1 : st.pos0);
            ck_assert_int_eq(op.n_pos, last_row ? 1 : st.n_tokens);
            i++;
        }
        trc_cursor_close(co);
        ck_assert_int_eq(i, 1 + N_LAYER * N_LAYER_OPS + 2);
        ck_assert_int_eq(st.pos0, st.step == 0 ? 0 : 4 + st.step);
        ck_assert_int_eq(st.n_tokens, st.step == 0 ? 5 : 1);
        n_steps++;
    }
    trc_cursor_close(cs);
    ck_assert_int_eq(n_steps, N_GEN); /* the prompt step, then 15 decoded tokens */
    trc_reader_close(r);
}
END_TEST

START_TEST(test_ref_trace_rope_tables_are_the_closed_form)
{
    trc_reader *r = open_trace();
    sqlite3 *db = trc_reader_sql_handle(r);
    sqlite3_stmt *st;
    int n_ops = 0;
    ck_assert_int_eq(
        sqlite3_prepare_v2(db, "SELECT id FROM ops WHERE kind = 'rope'", -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t op = sqlite3_column_int64(st, 0), tp, tc, ts;
        struct trc_tensor_info ip;
        int32_t pos[16];
        float cs[16 * 4], sn[16 * 4];
        ck_assert_int_eq(trc_reader_op_tensor(r, op, "pos", &tp), 0);
        ck_assert_int_eq(trc_reader_op_tensor(r, op, "cos", &tc), 0);
        ck_assert_int_eq(trc_reader_op_tensor(r, op, "sin", &ts), 0);
        ck_assert_int_eq(trc_reader_tensor_info(r, tp, &ip), 0);
        ck_assert_int_le(ip.n_elems, 16);
        ck_assert_int_eq(trc_reader_tensor_raw(r, tp, pos, sizeof pos), 0);
        ck_assert_int_eq(trc_reader_tensor_f32(r, tc, cs, 64), 0);
        ck_assert_int_eq(trc_reader_tensor_f32(r, ts, sn, 64), 0);
        for (int64_t row = 0; row < ip.n_elems; row++) {
            for (int i = 0; i < 4; i++) { /* n_rot 8: 4 pairs */
                double th = (double)pos[row] * pow(10000.0, -2.0 * i / 8.0);
                ck_assert_double_eq_tol((double)cs[row * 4 + i], cos(th), 2e-6);
                ck_assert_double_eq_tol((double)sn[row * 4 + i], sin(th), 2e-6);
            }
        }
        n_ops++;
    }
    sqlite3_finalize(st);
    ck_assert_int_eq(n_ops, N_GEN * N_LAYER * 2);
    trc_reader_close(r);
}
END_TEST

START_TEST(test_ref_trace_every_tensor_matches_its_hash)
{
    trc_reader *r = open_trace();
    sqlite3 *db = trc_reader_sql_handle(r);
    sqlite3_stmt *st;
    int n = 0;
    ck_assert_int_eq(sqlite3_prepare_v2(
                         db, "SELECT id FROM tensors WHERE data IS NOT NULL OR data_of IS NOT NULL",
                         -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct trc_tensor_info ti;
        int64_t id = sqlite3_column_int64(st, 0);
        ck_assert_int_eq(trc_reader_tensor_info(r, id, &ti), 0);
        void *buf = malloc((size_t)ti.nbytes + 1);
        /* trc_reader_tensor_raw checks the zstd checksum, the size and the content hash */
        ck_assert_msg(trc_reader_tensor_raw(r, id, buf, (size_t)ti.nbytes) == 0, "tensor %lld: %s",
                      (long long)id, trc_reader_errmsg(r));
        free(buf);
        n++;
    }
    sqlite3_finalize(st);
    ck_assert_int_gt(n, 1000);
    /* identical content is stored once: no index enforces it, the writer's map does */
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) FROM (SELECT 1 FROM tensors WHERE partial = 0 "
                                 "GROUP BY hash, dtype, shape HAVING count(*) > 1)"),
                     "0");
    /* ... and so are the same bytes under two shapes (rope's in0 is attn_q/k's out viewed as
     * heads, cache_k's row is rope_k's out flattened): one row holds them, the others name it */
    ck_assert_str_eq(lt_sql1(db, "SELECT count(*) FROM (SELECT 1 FROM tensors WHERE partial = 0 "
                                 "AND data IS NOT NULL GROUP BY hash, dtype, nbytes "
                                 "HAVING count(*) > 1)"),
                     "0");
    ck_assert_int_ge(atoi(lt_sql1(db, "SELECT count(*) FROM tensors t JOIN ops o ON o.kind = "
                                      "'rope' JOIN op_tensors ot ON ot.op_id = o.id AND ot.role = "
                                      "'in0' AND ot.tensor_id = t.id WHERE t.data_of IS NOT NULL")),
                     N_GEN * N_LAYER * 2);
    trc_reader_close(r);
}
END_TEST

Suite *ref_trace_suite(void);

Suite *ref_trace_suite(void)
{
    Suite *s = suite_create("ref_trace");
    TCase *tc = tcase_create("core");
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_ref_trace_every_canonical_op);
    tcase_add_test(tc, test_ref_trace_rope_tables_are_the_closed_form);
    tcase_add_test(tc, test_ref_trace_every_tensor_matches_its_hash);
    suite_add_tcase(s, tc);
    return s;
}
