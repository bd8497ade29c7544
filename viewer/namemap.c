/*
 * namemap.c - the llama.cpp graph-node name -> canonical op name map, as data.
 *
 * llama.cpp names its graph nodes per layer ("Qcur-3", "ffn_out-3") and reuses one name for
 * several ops (Qcur-L is the MUL_MAT, then the RESHAPE, then the ROPE), so a row is keyed on
 * (name pattern, ggml op). The first matching row wins. Rows with a canonical name are recorded;
 * the others (views, permutes, reshapes, RMS_NORM without its weight, ...) are known and skipped,
 * and anything matching no row is "unmatched" (reported; too many means the dump is not a llama
 * graph). The table covers the current graphs (SET_ROWS KV writes, with and without flash
 * attention) and the older ones (CPY into k_cache_view / v_cache_view, kq_soft_max_ext,
 * kqv_merged_cont, ffn_silu * ffn_up). The importer stores the rows it used in the trace (run
 * parameter "name_map"), so a trace documents how it was made. This file depends on nothing.
 */
#include "import_int.h"

#include <stdio.h>
#include <string.h>

#define ROW_SKIP(pat, op, note)                                                                    \
    {                                                                                              \
        pat, op, NULL, NULL, 1, VW_XFORM_SKIP, NULL, note                                          \
    }

/* clang-format off */
static const struct vw_map_row rows[] = {
    /* pattern                 op          canonical             kind     tok_axis xform params note */
    {"embd",                   "GET_ROWS", "tok_embd",          "get_rows",   1, VW_XFORM_NONE, NULL,
     "token embeddings [n_tokens][n_embd]"},
    {"inp_embd",               "GET_ROWS", "tok_embd",          "get_rows",   1, VW_XFORM_NONE, NULL,
     "older name of embd"},
    ROW_SKIP("norm-{L}",       "RMS_NORM", "x/rms(x) before the weight; attn_norm-L/ffn_norm-L hold the weighted result"),
    {"attn_norm-{L}",          "MUL",      "blk.{L}.attn_norm", "rms_norm",   1, VW_XFORM_NONE, NULL,
     "rms_norm(x) * attn_norm.weight"},
    {"Qcur-{L}",               "MUL_MAT",  "blk.{L}.attn_q",    "matmul",     1, VW_XFORM_NONE, NULL,
     "Q projection [n_tokens][n_embd]"},
    ROW_SKIP("Qcur-{L}",       "RESHAPE",  "alias of blk.L.attn_q split into heads"),
    {"Qcur-{L}",               "ROPE",     "blk.{L}.rope_q",    "rope",       2, VW_XFORM_NONE, NULL,
     "[n_tokens][n_head][head_dim]"},
    {"Kcur-{L}",               "MUL_MAT",  "blk.{L}.attn_k",    "matmul",     1, VW_XFORM_NONE, NULL,
     "K projection [n_tokens][n_head_kv*head_dim]"},
    ROW_SKIP("Kcur-{L}",       "RESHAPE",  "alias of blk.L.attn_k split into heads"),
    {"Kcur-{L}",               "ROPE",     "blk.{L}.rope_k",    "rope",       2, VW_XFORM_NONE, NULL,
     "[n_tokens][n_head_kv][head_dim]"},
    {"Vcur-{L}",               "MUL_MAT",  "blk.{L}.attn_v",    "matmul",     1, VW_XFORM_NONE, NULL,
     "V projection"},
    ROW_SKIP("Vcur-{L}",       "RESHAPE",  "alias of blk.L.attn_v split into heads"),
    {"cache_k_l{L} (view)",    "SET_ROWS", "blk.{L}.cache_k",   "cache_write",   1, VW_XFORM_CACHE_ROWS,
     "\"from\":\"whole K cache after SET_ROWS; cell == position\"",
     "the whole cache is printed; only this step's rows are kept"},
    {"cache_v_l{L} (view)",    "SET_ROWS", "blk.{L}.cache_v",   "cache_write",   1, VW_XFORM_CACHE_ROWS,
     "\"from\":\"whole V cache after SET_ROWS; cell == position\"",
     "V cache not transposed (flash attention)"},
    {"cache_v_l{L} (reshaped) (view)", "SET_ROWS", "blk.{L}.cache_v", "cache_write", 1, VW_XFORM_CACHE_VT,
     "\"from\":\"whole transposed V cache after SET_ROWS; cell == position\"",
     "V cache transposed (no flash attention): flat index = channel*kv_size + cell"},
    {"k_cache_view-{L} (copy of Kcur-{L})", "CPY", "blk.{L}.cache_k", "cache_write", 1, VW_XFORM_CACHE_FLAT,
     NULL, "older graphs: CPY into a flat view of the written rows"},
    {"v_cache_view-{L} (copy of Vcur-{L})", "CPY", "blk.{L}.cache_v", "cache_write", 1, VW_XFORM_CACHE_TRANS,
     NULL, "older graphs: CPY into a transposed view [kv_dim][n_tokens]"},
    {"kq-{L}",                 "MUL_MAT",  "blk.{L}.kq",        "attn_scores", 1, VW_XFORM_NONE,
     "\"scaled\":false,\"masked\":false",
     "UNSCALED, UNMASKED K*Q over the padded KV window [n_head][n_tokens][n_kv_padded]; the scale is "
     "applied inside SOFT_MAX"},
    {"kq_soft_max-{L}",        "SOFT_MAX", "blk.{L}.kq_softmax", "softmax",   1, VW_XFORM_NONE, NULL,
     "[n_head][n_tokens][n_kv_padded]; masked cells are 0"},
    {"kq_soft_max_ext-{L}",    "SOFT_MAX", "blk.{L}.kq_softmax", "softmax",   1, VW_XFORM_NONE, NULL,
     "older name"},
    ROW_SKIP("kqv-{L}",        "MUL_MAT",  "per-head layout [n_head][n_tokens][head_dim]; kqv_out-L holds it merged"),
    ROW_SKIP("kqv_merged-{L}", "PERMUTE",  "older graphs: alias of kqv_merged_cont-L"),
    {"kqv_merged_cont-{L}",    "CONT",     "blk.{L}.kqv",       "attn_ctx",   1, VW_XFORM_NONE, NULL,
     "older name of kqv_out"},
    {"kqv_out-{L}",            "*",        "blk.{L}.kqv",       "attn_ctx",   1, VW_XFORM_NONE, NULL,
     "heads concatenated: CONT (no flash attention) or RESHAPE of __fattn__-L"},
    ROW_SKIP("__fattn__-{L}",  "FLASH_ATTN_EXT", "flash attention output [n_tokens][n_head][head_dim]; kqv_out-L reshapes it"),
    {"attn_out-{L}",           "MUL_MAT",  "blk.{L}.attn_out",  "matmul",     1, VW_XFORM_NONE, NULL,
     "output projection"},
    {"ffn_inp-{L}",            "ADD",      "blk.{L}.ffn_inp",   "add",        1, VW_XFORM_NONE, NULL,
     "residual after attention"},
    {"ffn_norm-{L}",           "MUL",      "blk.{L}.ffn_norm",  "rms_norm",   1, VW_XFORM_NONE, NULL,
     "rms_norm(x) * ffn_norm.weight"},
    {"ffn_gate-{L}",           "MUL_MAT",  "blk.{L}.ffn_gate",  "matmul",     1, VW_XFORM_NONE, NULL, NULL},
    {"ffn_up-{L}",             "MUL_MAT",  "blk.{L}.ffn_up",    "matmul",     1, VW_XFORM_NONE, NULL, NULL},
    {"ffn_swiglu-{L}",         "*",        "blk.{L}.ffn_act",   "swiglu",     1, VW_XFORM_NONE, NULL,
     "silu(gate) * up (SWIGLU, or GLU in some versions)"},
    ROW_SKIP("ffn_silu-{L}",   "SILU",     "older graphs: silu(gate) alone; ffn_gate_par-L is silu(gate) * up"),
    {"ffn_gate_par-{L}",       "MUL",      "blk.{L}.ffn_act",   "swiglu",     1, VW_XFORM_NONE, NULL,
     "older name of ffn_swiglu"},
    {"ffn_out-{L}",            "MUL_MAT",  "blk.{L}.ffn_out",   "matmul",     1, VW_XFORM_NONE, NULL, NULL},
    {"l_out-{L}",              "ADD",      "blk.{L}.l_out",     "add",        1, VW_XFORM_NONE, NULL,
     "residual after the FFN"},
    ROW_SKIP("norm",           "RMS_NORM", "x/rms(x) before output_norm.weight"),
    {"result_norm",            "MUL",      "output_norm",       "rms_norm",   1, VW_XFORM_NONE, NULL, NULL},
    {"result_output",          "MUL_MAT",  "output",            "matmul",     1, VW_XFORM_NONE, NULL,
     "logits of the output rows"},
    {"node_{N}",               "GET_ROWS", NULL, NULL,                        1, VW_XFORM_OUT_IDS, NULL,
     "last layer: GET_ROWS with inp_out_ids keeps the output rows; later ops cover the last positions"},
    ROW_SKIP("*",              "VIEW",     "layout-only: same values as its source"),
    ROW_SKIP("*",              "PERMUTE",  "layout-only: same values as its source"),
    ROW_SKIP("*",              "RESHAPE",  "layout-only: same values as its source"),
    ROW_SKIP("*",              "TRANSPOSE", "layout-only: same values as its source"),
    ROW_SKIP("*",              "CONT",     "layout-only: same values as its source"),
    ROW_SKIP("*",              "CPY",      "copy/cast of another node"),
};
/* clang-format on */

const struct vw_map_row *vw_lcmap_rows(int *n_rows)
{
    *n_rows = (int)(sizeof rows / sizeof rows[0]);
    return rows;
}

/* Reads a run of decimal digits (at most 9) at s; returns its length, 0 if none. */
static int read_number(const char *s, int *num)
{
    int n = 0;
    int v = 0;
    while (s[n] >= '0' && s[n] <= '9' && n < 9) {
        v = v * 10 + (s[n] - '0');
        n++;
    }
    if (n > 0) {
        *num = v;
    }
    return n;
}

static bool match_from(const char *p, const char *s, int *num)
{
    while (*p) {
        if (p[0] == '{' && (p[1] == 'L' || p[1] == 'N') && p[2] == '}') {
            int v = -1;
            int n = read_number(s, &v);
            if (n == 0 || (*num >= 0 && v != *num)) {
                return false; /* a second {L} must repeat the first ("Kcur-{L}" in copies) */
            }
            *num = v;
            s += n;
            p += 3;
            continue;
        }
        if (*p != *s) {
            return false;
        }
        p++;
        s++;
    }
    return *s == '\0';
}

bool vw_lcmap_pattern_match(const char *pattern, const char *name, int *num)
{
    *num = -1;
    if (pattern[0] == '*') {
        size_t lp = strlen(pattern + 1);
        size_t ln = strlen(name);
        return ln >= lp && strcmp(name + ln - lp, pattern + 1) == 0;
    }
    return match_from(pattern, name, num);
}

const struct vw_map_row *vw_lcmap_match(const char *name, const char *op, int *layer)
{
    int n = (int)(sizeof rows / sizeof rows[0]);
    *layer = -1;
    for (int i = 0; i < n; i++) {
        int num = -1;
        if (strcmp(rows[i].op, "*") != 0 && strcmp(rows[i].op, op) != 0) {
            continue;
        }
        if (vw_lcmap_pattern_match(rows[i].pattern, name, &num)) {
            if (strstr(rows[i].pattern, "{L}")) {
                *layer = num;
            }
            return &rows[i];
        }
    }
    return NULL;
}

int vw_lcmap_expand(const char *tmpl, int layer, char *buf, size_t cap)
{
    const char *at = strstr(tmpl, "{L}");
    int n;
    if (!at) {
        n = snprintf(buf, cap, "%s", tmpl);
    } else {
        n = snprintf(buf, cap, "%.*s%d%s", (int)(at - tmpl), tmpl, layer, at + 3);
    }
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}
