/*
 * Tests of `lltrace import` on synthetic input written by the tests themselves: the llama.cpp
 * eval-callback text parser (every print style: current common_debug_cb_eval, llama-debug's
 * ggml_debug with sum_sq, the oldest first-n-only style, print-everything), the name map, steps
 * and positions, KV-cache rows, truncation at every byte, garbage / binary / unknown input,
 * llama-debug logits, NumPy dumps (.npy and stored .npz, Q/K unpermute), and determinism of the
 * written trace (importing twice gives the same content).
 */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import_int.h"
#include "npy.h"
#include "testutil.h"

Suite *import_suite(void);

/* ---- a printer that reproduces llama.cpp's common_debug_print_tensor ------------------------- */

enum style { STYLE_CB_EVAL, STYLE_LLAMA_DEBUG, STYLE_OLDEST, STYLE_FULL };

struct sb {
    char *p;
    size_t n, cap;
};

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->n + (size_t)k + 1 > b->cap) {
        b->cap = (b->n + (size_t)k + 1) * 2;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

/* The value printed at flat index f of record number rec: distinct and exact at 4 decimals. */
static float value_at(int rec, int64_t f)
{
    return (float)rec + (float)f / 1024.0f;
}

/* Writes one record the way llama.cpp does (n = corner size; STYLE_FULL prints everything). */
static void emit(struct sb *b, enum style st, int rec, const char *name, const char *op,
                 const char *src0, const int64_t ne[4])
{
    int64_t n = st == STYLE_FULL ? 1 << 30 : 3;
    const char *marker = st == STYLE_CB_EVAL ? "common_debug_cb_eval" : "ggml_debug";
    float sum = 0;
    sb_printf(
        b, "%s: %24s = (f32) %10s(%s{%lld, %lld, %lld, %lld}, }) = {%lld, %lld, %lld, %lld}\n",
        marker, name, op, src0, (long long)ne[0], (long long)ne[1], (long long)ne[2],
        (long long)ne[3], (long long)ne[0], (long long)ne[1], (long long)ne[2], (long long)ne[3]);
    for (int64_t f = 0; f < ne[0] * ne[1] * ne[2] * ne[3]; f++) {
        sum += value_at(rec, f);
    }
    for (int64_t i3 = 0; i3 < ne[3]; i3++) {
        sb_printf(b, "    [\n");
        for (int64_t i2 = 0; i2 < ne[2]; i2++) {
            if (i2 == n && ne[2] > 2 * n) {
                sb_printf(b, "        ..., \n");
                if (st == STYLE_OLDEST) {
                    break;
                }
                i2 = ne[2] - n;
            }
            sb_printf(b, "        [\n");
            for (int64_t i1 = 0; i1 < ne[1]; i1++) {
                if (i1 == n && ne[1] > 2 * n) {
                    sb_printf(b, "            ..., \n");
                    if (st == STYLE_OLDEST) {
                        break;
                    }
                    i1 = ne[1] - n;
                }
                sb_printf(b, "            [");
                for (int64_t i0 = 0; i0 < ne[0]; i0++) {
                    if (i0 == n && ne[0] > 2 * n) {
                        sb_printf(b, "   ..., ");
                        if (st == STYLE_OLDEST) {
                            break;
                        }
                        i0 = ne[0] - n;
                    }
                    int64_t f = i0 + ne[0] * (i1 + ne[1] * (i2 + ne[2] * i3));
                    sb_printf(b, "%12.4f", (double)value_at(rec, f));
                    if (i0 < ne[0] - 1) {
                        sb_printf(b, ", ");
                    }
                }
                sb_printf(b, "  ],\n");
            }
            sb_printf(b, "        ],\n");
        }
        sb_printf(b, "    ]\n");
        if (st == STYLE_LLAMA_DEBUG) {
            sb_printf(b, "    sum    = %f\n    sum_sq = %f\n", (double)sum, 1.0);
        } else if (st != STYLE_OLDEST) {
            sb_printf(b, "    sum = %f\n", (double)sum);
        }
    }
}

/* How many entries of a dimension of size ne a style prints. */
static int64_t printed(enum style st, int64_t ne)
{
    if (st == STYLE_FULL || ne <= 6) {
        return ne;
    }
    return st == STYLE_OLDEST ? 3 : 6;
}

static void check_style(enum style st)
{
    static const int64_t shapes[][4] = {{64, 5, 1, 1}, {8, 8, 5, 1}, {256, 5, 8, 1},
                                        {7, 1, 1, 1},  {3, 9, 2, 2}, {1, 16384, 1, 1}};
    struct sb b = {0};
    int n_shapes = (int)(sizeof shapes / sizeof shapes[0]);
    sb_printf(&b, "llama_model_loader: a log line that is not a record\n");
    for (int k = 0; k < n_shapes; k++) {
        emit(&b, st, k, k == 1 ? "Kcur-0 (view) (permuted)" : "l_out-0", "ADD", "x (view)",
             shapes[k]);
    }
    struct vw_lc_dump d;
    char err[VW_IMP_ERR_MAX];
    int rc = vw_lc_parse(b.p, b.n, "mem.txt", &d, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(d.n_recs, n_shapes);
    ck_assert(!d.truncated);
    for (int k = 0; k < n_shapes; k++) {
        const struct vw_lc_record *r = &d.recs[k];
        int64_t want = 1;
        for (int dd = 0; dd < 3; dd++) {
            want *= printed(st, shapes[k][dd]);
        }
        want *= shapes[k][3];
        ck_assert_int_eq(r->n_vals, want);
        ck_assert_int_eq(r->ne[2], shapes[k][2]);
        for (int64_t j = 0; j < r->n_vals; j++) {
            ck_assert_double_eq_tol((double)r->vals[j], (double)value_at(k, r->idx[j]), 6e-5);
        }
        ck_assert_double_eq_tol(r->atol, 5e-5, 1e-12);
        ck_assert(r->has_sum == (st != STYLE_OLDEST));
    }
    ck_assert_str_eq(d.recs[1].name, "Kcur-0 (view) (permuted)");
    ck_assert_str_eq(d.recs[1].src[0], "x (view)");
    ck_assert_str_eq(d.format, st == STYLE_CB_EVAL ? "common_debug_cb_eval" : "ggml_debug");
    if (st == STYLE_LLAMA_DEBUG) {
        ck_assert_str_eq(d.recs[0].sum_sq_text, "1.000000");
    }
    vw_lc_dump_release(&d);
    free(b.p);
}

START_TEST(test_import_parse_every_style)
{
    check_style(STYLE_CB_EVAL);
    check_style(STYLE_LLAMA_DEBUG);
    check_style(STYLE_OLDEST);
    check_style(STYLE_FULL);
}
END_TEST

START_TEST(test_import_header_fields)
{
    const char *t =
        "common_debug_cb_eval:        cache_k_l0 (view) = (f16)   SET_ROWS(Kcur-0 (view){32, 5, "
        "1, 1}, leaf_8{5, 1, 1, 1}}) = {32, 512, 1, 1}\n"
        "common_debug_cb_eval:            blk.0.w = (q8_0)   NONE(, }) = {32, 2, 1, 1}\n";
    struct vw_lc_dump d;
    char err[VW_IMP_ERR_MAX];
    ck_assert_int_eq(vw_lc_parse(t, strlen(t), "h.txt", &d, err, sizeof err), 0);
    ck_assert_int_eq(d.n_recs, 2);
    ck_assert_str_eq(d.recs[0].name, "cache_k_l0 (view)");
    ck_assert_str_eq(d.recs[0].type, "f16");
    ck_assert_str_eq(d.recs[0].op, "SET_ROWS");
    ck_assert_str_eq(d.recs[0].src[0], "Kcur-0 (view)");
    ck_assert_str_eq(d.recs[0].src[1], "leaf_8");
    ck_assert_int_eq(d.recs[0].ne[1], 512);
    ck_assert_int_eq(d.recs[1].n_vals, 0); /* quantized: header only */
    ck_assert_str_eq(d.recs[1].src[0], "");
    vw_lc_dump_release(&d);
}
END_TEST

START_TEST(test_import_map_rows)
{
    int layer;
    const struct vw_map_row *r = vw_lcmap_match("Qcur-12", "ROPE", &layer);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->canonical, "blk.{L}.rope_q");
    ck_assert_int_eq(layer, 12);
    ck_assert_ptr_null(vw_lcmap_match("Qcur-1", "RESHAPE", &layer)->canonical);
    ck_assert_str_eq(vw_lcmap_match("Qcur-1", "MUL_MAT", &layer)->canonical, "blk.{L}.attn_q");
    ck_assert_str_eq(vw_lcmap_match("kqv_out-3", "RESHAPE", &layer)->canonical, "blk.{L}.kqv");
    ck_assert_int_eq(vw_lcmap_match("cache_v_l2 (reshaped) (view)", "SET_ROWS", &layer)->xform,
                     VW_XFORM_CACHE_VT);
    ck_assert_int_eq(layer, 2);
    r = vw_lcmap_match("k_cache_view-1 (copy of Kcur-1)", "CPY", &layer);
    ck_assert_int_eq(r->xform, VW_XFORM_CACHE_FLAT);
    r = vw_lcmap_match("k_cache_view-1 (copy of Kcur-2)", "CPY", &layer); /* layers differ */
    ck_assert_int_eq(r->xform, VW_XFORM_SKIP);
    ck_assert_int_eq(vw_lcmap_match("node_65", "GET_ROWS", &layer)->xform, VW_XFORM_OUT_IDS);
    ck_assert_ptr_null(vw_lcmap_match("wqkv-0", "MUL_MAT", &layer));
    ck_assert_ptr_null(vw_lcmap_match("Qcur-x", "ROPE", &layer));
    char buf[32];
    ck_assert_int_eq(vw_lcmap_expand("blk.{L}.kq", 7, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "blk.7.kq");
    ck_assert_int_eq(vw_lcmap_expand("blk.{L}.kq", 7, buf, 4), -1);
}
END_TEST

/* A one-layer llama graph with n_tok prompt rows then decode steps of one row. */
static void emit_graph(struct sb *b, int64_t n_tok, int rec0)
{
    int64_t e[4] = {16, n_tok, 1, 1}, q[4] = {4, 4, n_tok, 1}, kq[4] = {32, n_tok, 4, 1};
    int64_t kv[4] = {8, 32, 1, 1}, kv8[4] = {8, n_tok, 1, 1}, vt[4] = {1, 256, 1, 1};
    int64_t last[4] = {16, 1, 1, 1}, logits[4] = {10, 1, 1, 1};
    emit(b, STYLE_CB_EVAL, rec0 + 0, "embd", "GET_ROWS", "token_embd.weight", e);
    emit(b, STYLE_CB_EVAL, rec0 + 1, "norm-0", "RMS_NORM", "embd", e);
    emit(b, STYLE_CB_EVAL, rec0 + 2, "attn_norm-0", "MUL", "norm-0", e);
    emit(b, STYLE_CB_EVAL, rec0 + 3, "Qcur-0", "MUL_MAT", "blk.0.attn_q.weight", e);
    emit(b, STYLE_CB_EVAL, rec0 + 4, "Qcur-0", "ROPE", "Qcur-0", q);
    emit(b, STYLE_CB_EVAL, rec0 + 5, "Vcur-0", "MUL_MAT", "blk.0.attn_v.weight", kv8);
    emit(b, STYLE_CB_EVAL, rec0 + 6, "cache_k_l0 (view)", "SET_ROWS", "Kcur-0 (view)", kv);
    emit(b, STYLE_CB_EVAL, rec0 + 7, "cache_v_l0 (reshaped) (view)", "SET_ROWS", "Vcur-0", vt);
    emit(b, STYLE_CB_EVAL, rec0 + 8, "kq-0", "MUL_MAT", "cache_k_l0 (view) (permuted)", kq);
    emit(b, STYLE_CB_EVAL, rec0 + 9, "Qcur-0 (view)", "VIEW", "Qcur-0", q);
    emit(b, STYLE_CB_EVAL, rec0 + 10, "node_12", "GET_ROWS", "attn_out-0", last);
    emit(b, STYLE_CB_EVAL, rec0 + 11, "ffn_inp-0", "ADD", "node_12", last);
    emit(b, STYLE_CB_EVAL, rec0 + 12, "result_output", "MUL_MAT", "output.weight", logits);
}

static const struct vw_imp_op *find_op(const struct vw_imp *imp, int64_t step, const char *name)
{
    for (int64_t i = 0; i < imp->n_ops; i++) {
        if (imp->ops[i].step == step && strcmp(imp->ops[i].name, name) == 0) {
            return &imp->ops[i];
        }
    }
    return NULL;
}

static int map_text(const struct sb *b, struct vw_imp *imp, char *err, size_t errlen)
{
    struct vw_lc_dump d;
    struct vw_lc_opts o = {NULL, 0};
    vw_imp_init(imp, "llama.cpp-text");
    if (vw_lc_parse(b->p, b->n, "g.txt", &d, err, errlen) < 0) {
        return -1;
    }
    int rc = vw_lc_map(&d, "g.txt", &o, imp, err, errlen);
    vw_lc_dump_release(&d);
    return rc;
}

START_TEST(test_import_steps_and_positions)
{
    struct sb b = {0};
    struct vw_imp imp;
    char err[VW_IMP_ERR_MAX];
    emit_graph(&b, 5, 0);
    emit_graph(&b, 1, 100);
    emit_graph(&b, 1, 200);
    ck_assert_msg(map_text(&b, &imp, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(imp.n_steps, 3);
    ck_assert_int_eq(imp.steps[1].pos0, 5);
    ck_assert_int_eq(imp.steps[2].pos0, 6);
    ck_assert_int_eq(imp.steps[2].n_tokens, 1);
    const struct vw_imp_op *op = find_op(&imp, 0, "blk.0.rope_q");
    ck_assert_ptr_nonnull(op);
    ck_assert_int_eq(op->n_dims, 3);
    ck_assert_int_eq(op->shape[0], 5);
    ck_assert_int_eq(op->n_pos, 5);
    op = find_op(&imp, 0, "blk.0.ffn_inp"); /* after GET_ROWS(inp_out_ids): the last row only */
    ck_assert_int_eq(op->pos0, 4);
    ck_assert_int_eq(op->n_pos, 1);
    ck_assert_ptr_nonnull(strstr(op->params, "\"printed_sum\":"));
    ck_assert_ptr_nonnull(strstr(op->params, "\"print_atol\":5e-05"));
    op = find_op(&imp, 0, "blk.0.kq");
    ck_assert_ptr_nonnull(strstr(op->params, "\"scaled\":false"));
    ck_assert_int_eq(op->shape[0], 4);
    ck_assert_str_eq(find_op(&imp, 0, "blk.0.attn_q")->weight, "blk.0.attn_q.weight");
    ck_assert_int_eq(find_op(&imp, 2, "output")->pos0, 6);
    ck_assert_int_eq(imp.n_unmatched, 0);
    ck_assert_int_eq(imp.n_skipped, 3 * 3); /* norm-0, the VIEW and node_12, per step */
    ck_assert_ptr_nonnull(strstr(vw_imp_get(&imp, "name_map")->s, "\"blk.{L}.rope_q\""));
    vw_imp_release(&imp);
    free(b.p);
}
END_TEST

START_TEST(test_import_cache_rows)
{
    struct sb b = {0};
    struct vw_imp imp;
    char err[VW_IMP_ERR_MAX];
    emit_graph(&b, 5, 0);
    emit_graph(&b, 1, 100);
    ck_assert_msg(map_text(&b, &imp, err, sizeof err) == 0, "%s", err);
    /* K cache [32 cells][8]: printed cells 0,1,2 (written) and 29..31 (not this step's) */
    const struct vw_imp_op *k = find_op(&imp, 0, "blk.0.cache_k");
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(k->shape[0], 5);
    ck_assert_int_eq(k->shape[1], 8);
    ck_assert_int_eq(k->n_known, 3 * 6);
    for (int64_t j = 0; j < k->n_known; j++) {
        ck_assert_int_lt(k->known[j], 3 * 8);
        ck_assert_double_eq_tol((double)k->vals[j], (double)value_at(6, k->known[j]), 6e-5);
    }
    /* transposed V [8 channels][32 cells] flat: printed f = 0,1,2 -> cells 0..2 of channel 0 */
    const struct vw_imp_op *v = find_op(&imp, 0, "blk.0.cache_v");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->n_known, 3);
    ck_assert_int_eq(v->known[1], 1 * 8 + 0);
    ck_assert_double_eq_tol((double)v->vals[1], (double)value_at(7, 1), 6e-5);
    /* the decode step wrote cell 5, which was not printed: nothing is known, no op */
    ck_assert_ptr_null(find_op(&imp, 1, "blk.0.cache_k"));
    ck_assert_int_eq(imp.n_empty, 2);
    vw_imp_release(&imp);
    free(b.p);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------------------- */

static int parse_str(const char *t, size_t len, char *err, size_t errlen)
{
    struct vw_lc_dump d;
    int rc = vw_lc_parse(t, len, "bad.txt", &d, err, errlen);
    if (rc == 0) {
        vw_lc_dump_release(&d);
    }
    return rc;
}

START_TEST(test_import_garbage_and_binary)
{
    char err[VW_IMP_ERR_MAX];
    const char *g = "hello\nthis is not a dump\n[1, 2, 3]\n";
    ck_assert_int_eq(parse_str(g, strlen(g), err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "bad.txt: no complete llama.cpp eval-callback record"));
    const char bin[] = "common_debug_cb_eval: x\0\x01\x02";
    ck_assert_int_eq(parse_str(bin, sizeof bin - 1, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "binary data"));
    const char *h = "common_debug_cb_eval: nonsense here\nmore\n";
    ck_assert_int_eq(parse_str(h, strlen(h), err, sizeof err), -1);
    ck_assert_str_eq(err, "bad.txt:1: malformed record header");
    const char *big = "ggml_debug: x = (f32) ADD(, }) = {1099511627776, 1099511627776, 1, 1}\n";
    ck_assert_int_eq(parse_str(big, strlen(big), err, sizeof err), -1);
    const char *inc = "ggml_debug: x = (f32) ADD(, }) = {2, 2, 1, 1}\n    [\n        [\n"
                      "            [ 1.0000, 2.0000 ],\n            [ 1.0000 ],\n        ],\n"
                      "    ]\n    sum = 5.0\n";
    ck_assert_int_eq(parse_str(inc, strlen(inc), err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "bad.txt:5: malformed data of 'x'"));
    const char *fit = "ggml_debug: x = (f32) ADD(, }) = {3, 1, 1, 1}\n    [\n        [\n"
                      "            [ 1.0000, 2.0000 ],\n        ],\n    ]\n    sum = 3.0\n";
    ck_assert_int_eq(parse_str(fit, strlen(fit), err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "do not fit the shape"));
}
END_TEST

START_TEST(test_import_unknown_architecture)
{
    struct sb b = {0};
    struct vw_imp imp;
    char err[VW_IMP_ERR_MAX];
    int64_t ne[4] = {8, 2, 1, 1};
    emit(&b, STYLE_CB_EVAL, 0, "wqkv-0", "MUL_MAT", "blk.0.attn_qkv.weight", ne);
    emit(&b, STYLE_CB_EVAL, 1, "bqkv-0", "ADD", "wqkv-0", ne);
    ck_assert_int_eq(map_text(&b, &imp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "g.txt: no node name matches the llama map"));
    vw_imp_release(&imp);
    emit(&b, STYLE_CB_EVAL, 2, "l_out-0", "ADD", "x", ne); /* 1 known, 2 unknown */
    ck_assert_int_eq(map_text(&b, &imp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "mostly unknown node names"));
    vw_imp_release(&imp);
    emit(&b, STYLE_CB_EVAL, 3, "ffn_out-0", "MUL_MAT", "x", ne);
    emit(&b, STYLE_CB_EVAL, 4, "ffn_up-0", "MUL_MAT", "x", ne);
    ck_assert_msg(map_text(&b, &imp, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(imp.n_unmatched, 2);
    ck_assert_str_eq(imp.unmatched, "wqkv-0,bqkv-0");
    ck_assert_ptr_nonnull(strstr(imp.warnings, "2 nodes match no map row"));
    vw_imp_release(&imp);
    free(b.p);
}
END_TEST

/* Cutting the text at every byte: complete records are kept, the cut one is reported. */
START_TEST(test_import_truncated_at_every_byte)
{
    struct sb b = {0};
    int64_t ne1[4] = {8, 8, 2, 1}, ne2[4] = {3, 1, 1, 1};
    size_t ends[3];
    emit(&b, STYLE_CB_EVAL, 0, "Qcur-0", "ROPE", "Qcur-0", ne1);
    ends[0] = b.n;
    emit(&b, STYLE_CB_EVAL, 1, "l_out-0", "ADD", "ffn_out-0", ne2);
    ends[1] = b.n;
    emit(&b, STYLE_CB_EVAL, 2, "Qcur-0", "ROPE", "Qcur-0", ne1);
    ends[2] = b.n;
    char *t = malloc(b.n + 1);
    if (getenv("LT_DUMP")) {
        lt_write_file(getenv("LT_DUMP"), b.p, b.n);
    }
    for (size_t cut = 0; cut <= b.n; cut++) {
        memcpy(t, b.p, cut);
        t[cut] = '\0';
        struct vw_lc_dump d;
        char err[VW_IMP_ERR_MAX];
        int complete = (cut >= ends[0]) + (cut >= ends[1]) + (cut >= ends[2]);
        int rc = vw_lc_parse(t, cut, "cut.txt", &d, err, sizeof err);
        if (complete == 0) {
            ck_assert_msg(rc == -1 && strstr(err, "no complete"), "cut %zu: %s", cut, err);
            continue;
        }
        ck_assert_msg(rc == 0, "cut %zu: %s", cut, err);
        ck_assert_int_eq(d.n_recs, complete);
        bool at_end = cut == ends[0] || cut == ends[1] || cut == ends[2];
        ck_assert_msg(d.truncated == !at_end, "cut %zu", cut);
        if (d.truncated) {
            if (strcmp(d.trunc_name, "(header)") != 0) {
                ck_assert_str_eq(d.trunc_name, complete == 1 ? "l_out-0" : "Qcur-0");
            }
        }
        vw_lc_dump_release(&d);
    }
    free(t);
    free(b.p);
}
END_TEST

START_TEST(test_import_token_lists)
{
    int32_t *ids;
    int64_t n;
    char err[VW_IMP_ERR_MAX];
    ck_assert_int_eq(vw_tokens_parse_list("1,403, 407 261", &ids, &n, err, sizeof err), 0);
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(ids[3], 261);
    free(ids);
    ck_assert_int_eq(vw_tokens_parse_list("1,x", &ids, &n, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "bad token id"));
    ck_assert_int_eq(vw_tokens_parse_list(" , ", &ids, &n, err, sizeof err), -1);
    ck_assert_int_eq(vw_tokens_parse_list("99999999999", &ids, &n, err, sizeof err), -1);
}
END_TEST

/* ---- llama-debug logits -----------------------------------------------------------------------
 */

START_TEST(test_import_logits_files)
{
    char dir[512], bin[600], tok[600], pr[600], txt[600];
    char err[VW_IMP_ERR_MAX];
    lt_tmp_dir(dir, sizeof dir, "import_logits");
    snprintf(bin, sizeof bin, "%s/llamacpp-m.bin", dir);
    snprintf(tok, sizeof tok, "%s/llamacpp-m-tokens.bin", dir);
    snprintf(pr, sizeof pr, "%s/llamacpp-m-prompt.txt", dir);
    snprintf(txt, sizeof txt, "%s/llamacpp-m.txt", dir);
    float logits[7] = {-1.5f, 2.25f, 0.0f, 3.0e-8f, -7.0f, 11.97f, 0.5f};
    int32_t ids[3] = {1, 403, 407};
    const char *prompt = "prompt: Once upon\nn_tokens: 3\ntoken ids: 1, 403, 407\n";
    ck_assert_int_eq(lt_write_file(bin, logits, sizeof logits), 0);
    ck_assert_int_eq(lt_write_file(tok, ids, sizeof ids), 0);
    ck_assert_int_eq(lt_write_file(pr, prompt, strlen(prompt)), 0);
    ck_assert_int_eq(lt_write_file(txt, "0: -1.5\n1: 2.25\n", 16), 0);

    int32_t *t;
    int64_t n;
    char *p;
    ck_assert_int_eq(vw_tokens_read(tok, &t, &n, err, sizeof err), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(t[1], 403);
    int32_t *t2;
    int64_t n2;
    ck_assert_int_eq(vw_prompt_file_read(pr, &p, &t2, &n2, err, sizeof err), 0);
    ck_assert_str_eq(p, "Once upon");
    ck_assert_int_eq(n2, 3);
    ck_assert_int_eq(t2[2], 407);
    free(t2);
    /* the parser alone: a multi-line prompt ends at n_tokens or token ids, whichever is first;
     * a refusal names the file and leaves nothing allocated */
    char *p2;
    const char *two = "x\nprompt: a\nb\ntoken ids: 5 6\nn_tokens: 2\n";
    ck_assert_int_eq(
        vw_prompt_text_parse(two, strlen(two), "p.txt", &p2, &t2, &n2, err, sizeof err), 0);
    ck_assert_str_eq(p2, "a\nb");
    ck_assert_int_eq(n2, 2);
    free(p2);
    free(t2);
    const char *bad = "prompt: a\ntoken ids: 5, x\n";
    ck_assert_int_eq(
        vw_prompt_text_parse(bad, strlen(bad), "p.txt", &p2, &t2, &n2, err, sizeof err), -1);
    ck_assert_ptr_null(p2);
    ck_assert_ptr_null(t2);
    ck_assert_msg(strstr(err, "p.txt: bad token id near 'x'"), "%s", err);

    struct vw_imp imp;
    vw_imp_init(&imp, "llama.cpp-logits");
    ck_assert_int_eq(vw_import_llamacpp_logits(bin, t, n, p, &imp, err, sizeof err), 0);
    ck_assert_int_eq(imp.n_ops, 1);
    ck_assert_str_eq(imp.ops[0].name, "output");
    ck_assert_ptr_null(imp.ops[0].known); /* full, exact */
    ck_assert_int_eq(imp.ops[0].shape[1], 7);
    ck_assert_int_eq(imp.ops[0].pos0, 2);
    ck_assert(imp.ops[0].vals[5] == 11.97f);
    ck_assert_int_eq(imp.n_tokens, 3);
    vw_imp_release(&imp);

    vw_imp_init(&imp, "llama.cpp-logits");
    ck_assert_int_eq(vw_import_llamacpp_logits(txt, t, n, p, &imp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "text, not raw float32 logits"));
    vw_imp_release(&imp);
    ck_assert_int_eq(lt_write_file(bin, logits, 5), 0);
    vw_imp_init(&imp, "llama.cpp-logits");
    ck_assert_int_eq(vw_import_llamacpp_logits(bin, t, n, p, &imp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "not a whole number of float32"));
    vw_imp_release(&imp);
    ck_assert_int_eq(lt_write_file(tok, ids, 6), 0);
    ck_assert_int_eq(vw_tokens_read(tok, &t2, &n2, err, sizeof err), -1);
    free(t);
    free(p);
}
END_TEST

/* ---- NumPy dumps ---------------------------------------------------------------------------- */

static void write_npy(const char *dir, const char *name, int64_t seq, int64_t dim, float base)
{
    char path[700];
    float *v = malloc((size_t)(seq * dim) * sizeof *v);
    int64_t shape[3] = {1, seq, dim};
    char err[256];
    for (int64_t k = 0; k < seq * dim; k++) {
        v[k] = base + (float)k;
    }
    ck_assert_int_lt(snprintf(path, sizeof path, "%s/%s.npy", dir, name), (int)sizeof path);
    ck_assert_msg(vw_npy_write_f32(path, v, 3, shape, err, sizeof err) == 0, "%s", err);
    free(v);
}

static void write_hf_dir(const char *dir)
{
    mkdir(dir, 0755);
    write_npy(dir, "model.embed_tokens", 3, 8, 0);
    write_npy(dir, "model.layers.0.self_attn.q_proj", 3, 8, 100);
    write_npy(dir, "model.layers.0.self_attn.k_proj", 3, 4, 200);
    write_npy(dir, "model.layers.0.mlp.act_fn", 3, 16, 300);
    write_npy(dir, "model.layers.0", 3, 8, 400);
    write_npy(dir, "lm_head", 3, 10, 500);
    write_npy(dir, "junk", 3, 10, 600);
}

static const char *const hf_order[] = {"tok_embd", "blk.0.attn_q", "blk.0.attn_k", "blk.0.l_out",
                                       "output"};

START_TEST(test_import_npy_dir)
{
    char dir[512];
    char err[VW_IMP_ERR_MAX];
    struct vw_imp imp;
    struct vw_npy_opts o = {NULL, false, 0, 0, NULL, 0};
    lt_tmp_dir(dir, sizeof dir, "import_npy_dir");
    write_hf_dir(dir);
    vw_imp_init(&imp, "npy");
    ck_assert_msg(vw_import_npy_dir(dir, &o, &imp, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(imp.n_ops, 5);
    for (int k = 0; k < 5; k++) {
        ck_assert_str_eq(imp.ops[k].name, hf_order[k]);
        ck_assert_ptr_null(imp.ops[k].known);
        ck_assert_int_eq(imp.ops[k].shape[0], 3);
    }
    ck_assert_int_eq(imp.ops[1].layer, 0);
    ck_assert_int_eq(imp.ops[4].shape[1], 10);
    ck_assert(imp.ops[1].vals[9] == 109.0f);
    ck_assert_int_eq(imp.n_unmatched, 1);
    ck_assert_str_eq(imp.unmatched, "junk");
    ck_assert_int_eq(imp.n_skipped, 1); /* act_fn */
    ck_assert_int_eq(imp.steps[0].n_tokens, 3);
    vw_imp_release(&imp);
}
END_TEST

START_TEST(test_import_npy_unpermute)
{
    float in[8] = {0, 1, 2, 3, 4, 5, 6, 7}, out[8];
    static const float want[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    ck_assert_int_eq(vw_unpermute_qk_row(in, out, 8, 2), 0);
    for (int k = 0; k < 8; k++) {
        ck_assert(out[k] == want[k]);
    }
    ck_assert_int_eq(vw_unpermute_qk_row(in, out, 8, 3), -1);
    ck_assert_int_eq(vw_unpermute_qk_row(in, out, 6, 3), 0);  /* head_dim 2 */
    ck_assert_int_eq(vw_unpermute_qk_row(in, out, 6, 2), -1); /* head_dim 3: odd */
}
END_TEST

START_TEST(test_import_npy_unpermute_dir)
{
    char dir[512];
    char err[VW_IMP_ERR_MAX];
    struct vw_imp imp;
    struct vw_npy_opts o = {NULL, true, 2, 1, NULL, 0};
    lt_tmp_dir(dir, sizeof dir, "import_npy_unperm");
    write_hf_dir(dir);
    vw_imp_init(&imp, "npy");
    ck_assert_msg(vw_import_npy_dir(dir, &o, &imp, err, sizeof err) == 0, "%s", err);
    /* q: 2 heads of 4 -> row 0 becomes 100,102,101,103,104,106,105,107 */
    ck_assert(imp.ops[1].vals[1] == 102.0f && imp.ops[1].vals[5] == 106.0f);
    ck_assert(imp.ops[1].vals[8 + 1] == 110.0f);
    /* k: 1 KV head of 4 -> 200,202,201,203 */
    ck_assert(imp.ops[2].vals[1] == 202.0f && imp.ops[2].vals[2] == 201.0f);
    ck_assert(imp.ops[3].vals[1] == 401.0f); /* others untouched */
    vw_imp_release(&imp);
    o.n_head = 3;
    vw_imp_init(&imp, "npy");
    ck_assert_int_eq(vw_import_npy_dir(dir, &o, &imp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "do not split into 3 heads"));
    vw_imp_release(&imp);
}
END_TEST

static uint32_t crc32_ref(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? (c >> 1) ^ 0xedb88320u : c >> 1;
        }
    }
    return ~c;
}

static void put16(struct sb *b, unsigned v)
{
    sb_printf(b, "%c%c", v & 0xff, (v >> 8) & 0xff);
}

static void put32(struct sb *b, uint32_t v)
{
    put16(b, v & 0xffff);
    put16(b, v >> 16);
}

/* Appends raw bytes (they may hold NULs, so not through printf). */
static void put_raw(struct sb *b, const void *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* A zip of the .npy files of dir (stored, or marked deflated when method = 8). */
static void write_npz(const char *dir, const char *const *names, int n, const char *out,
                      unsigned method, bool bad_crc)
{
    struct sb z = {0}, cd = {0};
    for (int i = 0; i < n; i++) {
        char path[700], member[256];
        size_t len;
        snprintf(path, sizeof path, "%s/%s.npy", dir, names[i]);
        snprintf(member, sizeof member, "%s.npy", names[i]);
        char *data = lt_read_file(path, &len);
        ck_assert_ptr_nonnull(data);
        uint32_t crc = crc32_ref((const unsigned char *)data, len) ^ (bad_crc ? 1u : 0u);
        size_t off = z.n, nl = strlen(member);
        put32(&z, 0x04034b50u), put16(&z, 20), put16(&z, 0), put16(&z, method);
        put32(&z, 0), put32(&z, crc), put32(&z, (uint32_t)len), put32(&z, (uint32_t)len);
        put16(&z, (unsigned)nl), put16(&z, 0), put_raw(&z, member, nl), put_raw(&z, data, len);
        put32(&cd, 0x02014b50u), put16(&cd, 20), put16(&cd, 20), put16(&cd, 0);
        put16(&cd, method), put32(&cd, 0), put32(&cd, crc), put32(&cd, (uint32_t)len);
        put32(&cd, (uint32_t)len), put16(&cd, (unsigned)nl), put16(&cd, 0), put16(&cd, 0);
        put16(&cd, 0), put16(&cd, 0), put32(&cd, 0), put32(&cd, (uint32_t)off);
        put_raw(&cd, member, nl);
        free(data);
    }
    size_t cd_off = z.n;
    put_raw(&z, cd.p, cd.n);
    put32(&z, 0x06054b50u), put16(&z, 0), put16(&z, 0), put16(&z, (unsigned)n);
    put16(&z, (unsigned)n), put32(&z, (uint32_t)cd.n), put32(&z, (uint32_t)cd_off), put16(&z, 0);
    ck_assert_int_eq(lt_write_file(out, z.p, z.n), 0);
    free(z.p);
    free(cd.p);
}

START_TEST(test_import_npz_stored_and_compressed)
{
    char src[512], dir[512], out[700];
    char err[VW_IMP_ERR_MAX];
    static const char *const names[] = {"lm_head", "model.embed_tokens",
                                        "model.layers.0.self_attn.q_proj"};
    struct vw_imp imp;
    struct vw_npy_opts o = {NULL, false, 0, 0, NULL, 0};
    lt_tmp_dir(src, sizeof src, "import_npz_src");
    write_hf_dir(src);
    lt_tmp_dir(dir, sizeof dir, "import_npz");
    snprintf(out, sizeof out, "%s/all.npz", dir);
    write_npz(src, names, 3, out, 0, false);
    vw_imp_init(&imp, "npy");
    ck_assert_msg(vw_import_npy_dir(dir, &o, &imp, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(imp.n_ops, 3);
    ck_assert_str_eq(imp.ops[0].name, "tok_embd");
    ck_assert_str_eq(imp.ops[2].name, "output");
    ck_assert(imp.ops[2].vals[11] == 511.0f);
    vw_imp_release(&imp);
    write_npz(src, names, 3, out, 8, false);
    vw_imp_init(&imp, "npy");
    ck_assert_int_eq(vw_import_npy_dir(dir, &o, &imp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "is compressed (np.savez_compressed)"));
    vw_imp_release(&imp);
    write_npz(src, names, 3, out, 0, true);
    vw_imp_init(&imp, "npy");
    ck_assert_int_eq(vw_import_npy_dir(dir, &o, &imp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "CRC mismatch"));
    vw_imp_release(&imp);
    ck_assert_int_eq(lt_write_file(out, "PK\x03\x04garbage", 11), 0);
    vw_imp_init(&imp, "npy");
    ck_assert_int_eq(vw_import_npy_dir(dir, &o, &imp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "not a .npz (zip) file"));
    vw_imp_release(&imp);
}
END_TEST

START_TEST(test_import_npy_steps_and_map)
{
    char dir[512], sub[700], map[700];
    char err[VW_IMP_ERR_MAX];
    struct vw_imp imp;
    lt_tmp_dir(dir, sizeof dir, "import_npy_steps");
    snprintf(sub, sizeof sub, "%s/step0", dir);
    mkdir(sub, 0755);
    write_npy(sub, "emb", 4, 8, 0);
    write_npy(sub, "logits", 1, 5, 0);
    snprintf(sub, sizeof sub, "%s/step1", dir);
    mkdir(sub, 0755);
    write_npy(sub, "emb", 1, 8, 0);
    snprintf(map, sizeof map, "%s/my.map", dir);
    const char *m = "# custom\nemb tok_embd get_rows\nlogits output matmul\n";
    ck_assert_int_eq(lt_write_file(map, m, strlen(m)), 0);
    struct vw_npy_opts o = {map, false, 0, 0, NULL, 0};
    vw_imp_init(&imp, "npy");
    ck_assert_msg(vw_import_npy_dir(dir, &o, &imp, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(imp.n_steps, 2);
    ck_assert_int_eq(imp.steps[1].pos0, 4);
    ck_assert_int_eq(imp.ops[1].pos0, 3); /* logits of the last row only */
    ck_assert_int_eq(imp.ops[2].step, 1);
    vw_imp_release(&imp);
    ck_assert_int_eq(lt_write_file(map, "emb\n", 4), 0);
    vw_imp_init(&imp, "npy");
    ck_assert_int_eq(vw_import_npy_dir(dir, &o, &imp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "my.map:1: expected 'MODULE CANONICAL [KIND]'"));
    vw_imp_release(&imp);
}
END_TEST

/* Arrays that no map row names are an error naming the directory and what was found; layers
 * order numerically, however large their numbers (a sort key once packed them into 24 bits). */
START_TEST(test_import_npy_unmatched_and_layer_order)
{
    char dir[512], map[700];
    char err[VW_IMP_ERR_MAX];
    struct vw_imp imp;
    lt_tmp_dir(dir, sizeof dir, "import_npy_order");
    write_npy(dir, "blk99999999", 2, 4, 0);
    write_npy(dir, "blk3", 2, 4, 0);
    write_npy(dir, "logits", 2, 4, 0);
    snprintf(map, sizeof map, "%s.map", dir);
    const char *none = "nothing.{L} blk.{L}.l_out add\n";
    ck_assert_int_eq(lt_write_file(map, none, strlen(none)), 0);
    struct vw_npy_opts o = {map, false, 0, 0, NULL, 0};
    vw_imp_init(&imp, "npy");
    ck_assert_int_eq(vw_import_npy_dir(dir, &o, &imp, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no .npy/.npz array matches the name map; found: ") &&
                      strstr(err, "blk3") && strncmp(err, dir, strlen(dir)) == 0,
                  "%s", err);
    vw_imp_release(&imp);
    const char *m = "blk{L} blk.{L}.l_out add\nlogits output matmul\n";
    ck_assert_int_eq(lt_write_file(map, m, strlen(m)), 0);
    vw_imp_init(&imp, "npy");
    ck_assert_msg(vw_import_npy_dir(dir, &o, &imp, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(imp.n_ops, 3);
    ck_assert_str_eq(imp.ops[0].name, "blk.3.l_out");
    ck_assert_str_eq(imp.ops[1].name, "blk.99999999.l_out");
    ck_assert_str_eq(imp.ops[2].name, "output");
    vw_imp_release(&imp);
    unlink(map);
}
END_TEST

/* ---- roundtrip: the written trace -------------------------------------------------------------
 */

/* Every row of every table, skipping wall-clock columns (*_at) and meta keys *_at: the definition
 * of "identical traces" (the SQLite file header may still differ). */
static char *trace_content(const char *path, size_t *len)
{
    sqlite3 *db;
    sqlite3_stmt *t, *q;
    struct sb out = {0};
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "ORDER BY name",
                                        -1, &t, NULL),
                     SQLITE_OK);
    while (sqlite3_step(t) == SQLITE_ROW) {
        char sql[300];
        const char *name = (const char *)sqlite3_column_text(t, 0);
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", name);
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
        int nc = sqlite3_column_count(q);
        sqlite3_finalize(q);
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" ORDER BY 1, 2%s", name,
                 nc > 2 ? ", 3" : "");
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
        sb_printf(&out, "table %s\n", name);
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *k0 = (const char *)sqlite3_column_text(q, 0);
            size_t l0 = k0 ? strlen(k0) : 0;
            if (strcmp(name, "meta") == 0 && l0 > 3 && strcmp(k0 + l0 - 3, "_at") == 0) {
                continue;
            }
            for (int c = 0; c < nc; c++) {
                const char *cn = sqlite3_column_name(q, c);
                size_t lc = strlen(cn);
                if (lc > 3 && strcmp(cn + lc - 3, "_at") == 0) {
                    continue;
                }
                int nb = sqlite3_column_bytes(q, c);
                const void *blob = sqlite3_column_blob(q, c);
                sb_printf(&out, "|%d:", sqlite3_column_type(q, c));
                put_raw(&out, blob ? blob : "", (size_t)nb);
            }
            sb_printf(&out, "\n");
        }
        sqlite3_finalize(q);
    }
    sqlite3_finalize(t);
    sqlite3_close(db);
    *len = out.n;
    return out.p;
}

START_TEST(test_import_twice_is_identical)
{
    struct sb b = {0};
    struct vw_imp imp;
    char dir[512], a[700], c[700];
    char err[VW_IMP_ERR_MAX];
    lt_tmp_dir(dir, sizeof dir, "import_twice");
    snprintf(a, sizeof a, "%s/a.trace", dir);
    snprintf(c, sizeof c, "%s/b.trace", dir);
    emit_graph(&b, 5, 0);
    emit_graph(&b, 1, 100);
    for (int k = 0; k < 2; k++) {
        ck_assert_msg(map_text(&b, &imp, err, sizeof err) == 0, "%s", err);
        vw_imp_add_token(&imp, 1, true);
        ck_assert_msg(vw_imp_write(&imp, k ? c : a, false, err, sizeof err) == 0, "%s", err);
        if (k == 0) { /* an existing file is refused without overwrite, replaced with it */
            ck_assert_int_eq(vw_imp_write(&imp, a, false, err, sizeof err), -1);
            ck_assert_ptr_nonnull(strstr(err, "file exists (use --force to overwrite)"));
            ck_assert_msg(vw_imp_write(&imp, a, true, err, sizeof err) == 0, "%s", err);
        }
        vw_imp_release(&imp);
    }
    size_t la, lb;
    char *ca = trace_content(a, &la), *cb = trace_content(c, &lb);
    ck_assert_ptr_nonnull(strstr(ca, "table ops"));
    ck_assert_ptr_nonnull(strstr(ca, "blk.0.rope_q"));
    ck_assert_int_eq(la, lb);
    ck_assert(memcmp(ca, cb, la) == 0);
    free(ca);
    free(cb);
    free(b.p);
}
END_TEST

START_TEST(test_import_partial_tensor_stored)
{
    struct sb b = {0};
    struct vw_imp imp;
    char dir[512], a[700];
    char err[VW_IMP_ERR_MAX];
    sqlite3 *db;
    sqlite3_stmt *q;
    lt_tmp_dir(dir, sizeof dir, "import_partial");
    snprintf(a, sizeof a, "%s/p.trace", dir);
    emit_graph(&b, 5, 0);
    ck_assert_msg(map_text(&b, &imp, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(vw_imp_write(&imp, a, true, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(sqlite3_open_v2(a, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    const char *sql = "SELECT t.partial, t.n_known, length(t.known), t.shape, o.pos0, o.n_pos "
                      "FROM ops o JOIN op_tensors ot ON ot.op_id = o.id "
                      "JOIN tensors t ON t.id = ot.tensor_id WHERE o.name = 'blk.0.rope_q'";
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(q, 0), 1);
    ck_assert_int_eq(sqlite3_column_int(q, 1), 4 * 4 * 5); /* 4x4 heads all printed, 5 rows */
    ck_assert_int_eq(sqlite3_column_int(q, 2), 8 * 4 * 4 * 5);
    ck_assert_str_eq((const char *)sqlite3_column_text(q, 3), "[5,4,4]");
    sqlite3_finalize(q);
    sqlite3_close(db);
    vw_imp_release(&imp);
    free(b.p);
}
END_TEST

Suite *import_suite(void)
{
    Suite *s = suite_create("import");
    TCase *core = tcase_create("core");
    tcase_add_test(core, test_import_parse_every_style);
    tcase_add_test(core, test_import_header_fields);
    tcase_add_test(core, test_import_map_rows);
    tcase_add_test(core, test_import_steps_and_positions);
    tcase_add_test(core, test_import_cache_rows);
    tcase_add_test(core, test_import_token_lists);
    tcase_add_test(core, test_import_logits_files);
    tcase_add_test(core, test_import_npy_dir);
    tcase_add_test(core, test_import_npy_unpermute);
    tcase_add_test(core, test_import_npy_unpermute_dir);
    tcase_add_test(core, test_import_npy_steps_and_map);
    tcase_add_test(core, test_import_npy_unmatched_and_layer_order);
    suite_add_tcase(s, core);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, test_import_garbage_and_binary);
    tcase_add_test(errors, test_import_unknown_architecture);
    tcase_add_test(errors, test_import_truncated_at_every_byte);
    tcase_add_test(errors, test_import_npz_stored_and_compressed);
    suite_add_tcase(s, errors);
    TCase *rt = tcase_create("roundtrip");
    tcase_add_test(rt, test_import_twice_is_identical);
    tcase_add_test(rt, test_import_partial_tensor_stored);
    suite_add_tcase(s, rt);
    return s;
}
