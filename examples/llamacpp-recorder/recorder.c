/*
 * recorder.c - llamacpp-recorder: runs a GGUF model with llama.cpp itself and records its graph
 * into an lltrace trace, complete and bit-exact, so that `lltrace diff` can compare another engine
 * against llama.cpp on every element instead of the few that llama-eval-callback prints.
 *
 * How: llama.cpp calls llama_context_params.cb_eval for every graph node, first with ask=true
 * ("do you want this one?") and, for the nodes we want, again with ask=false once the node is
 * computed. Node names ("Qcur-3" after ROPE, "ffn_out-3", ...) go through the SAME name map as
 * `lltrace import llamacpp` (viewer/namemap.c, compiled in), so the canonical names, kinds, token
 * axes, KV-cache transforms and kq params are those of the text importer; nodes the map skips
 * (views, reshapes, permutes) are skipped here too. Each recorded tensor is read whole with
 * ggml_backend_tensor_get and gathered through its byte strides nb[], so a view comes out as its
 * logical tensor; f16/bf16 become f32 (exactly). One lltrace step per llama_decode call: step 0
 * is the prompt batch, then one step per generated token, greedy (argmax), as `lltrace run`.
 *
 * Usage: llamacpp-recorder -m MODEL.gguf -p PROMPT [-n N] -o TRACE [--kv f32|f16] [--fa on|off]
 *                          [-t THREADS] [--force]
 * Depends on llama.h/ggml.h (llama.cpp >= b6327, for flash_attn_type), trc.h, lm.h (sha256) and
 * the importer's name map (viewer/import_int.h). It is documentation: read it top to bottom.
 */
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "llama.h" /* includes ggml.h and ggml-backend.h */

#include "import_int.h" /* vw_lcmap_match, vw_lcmap_expand: the text importer's name map */
#include "lm.h"         /* lm_sha256_hex */
#include "trc.h"

#ifndef LLREC_LLAMA_VERSION
#define LLREC_LLAMA_VERSION "unknown"
#endif
#ifndef LLREC_LLAMA_COMMIT
#define LLREC_LLAMA_COMMIT "unknown"
#endif

struct opts {
    const char *model, *prompt, *out;
    int n_predict; /* tokens to generate */
    int n_threads;
    bool kv_f16, flash_attn, force;
};

/* What the eval callback needs: the writer, the decode call in progress and scratch buffers. */
struct rec {
    trc_writer *w;
    int64_t step, pos0, n_tok; /* the llama_decode call being recorded */
    int64_t n_ops, n_skipped, n_unmatched, n_other_type;
    int rc;              /* first tracer error: recording stops, the run ends as "error" */
    bool in_step;        /* a step is open (left open on failure: the writer drops it) */
    char unmatched[256]; /* the first unmatched node names, comma-separated */
    float *f32;          /* (cap_f32) the tensor being recorded, as f32 */
    unsigned char *raw;  /* (cap_raw) its bytes as llama.cpp stores them */
    size_t cap_f32, cap_raw;
};

/* Returns p grown to at least need bytes (*cap updated), or NULL (p is then unchanged). */
static void *grow(void *p, size_t *cap, size_t need)
{
    if (need <= *cap) {
        return p;
    }
    void *np = realloc(p, need);
    *cap = np ? need : *cap;
    return np;
}

static float elem_f32(enum ggml_type type, const unsigned char *p)
{
    float f;
    uint16_t h;
    uint32_t u;
    if (type == GGML_TYPE_F32) {
        memcpy(&f, p, 4);
        return f;
    }
    memcpy(&h, p, 2);
    if (type == GGML_TYPE_F16) {
        return ggml_fp16_to_fp32(h);
    }
    u = (uint32_t)h << 16; /* bf16: the high half of an f32 */
    memcpy(&f, &u, 4);
    return f;
}

/* Copies the elements of t with i1 in [r0, r0 + nr) (all i0, i2, i3), in ggml order (i0
 * fastest), into dst as f32, following t's byte strides: views and permutes come out as the
 * logical tensor. Only the bytes spanned are read (a cache write reads its rows, not the cache). */
static int fetch_f32(struct rec *r, const struct ggml_tensor *t, int64_t r0, int64_t nr, float *dst)
{
    const size_t es = t->type == GGML_TYPE_F32 ? 4 : 2;
    const size_t off = (size_t)r0 * t->nb[1];
    if (nr <= 0 || r0 < 0 || r0 + nr > t->ne[1]) {
        return -1;
    }
    size_t span = es + (size_t)(nr - 1) * t->nb[1]; /* as ggml_nbytes, over our rows only */
    for (int d = 0; d < 4; d++) {
        span += d == 1 ? 0 : (size_t)(t->ne[d] - 1) * t->nb[d];
    }
    unsigned char *raw = grow(r->raw, &r->cap_raw, span);
    if (!raw) {
        return -1;
    }
    r->raw = raw;
    ggml_backend_tensor_get(t, r->raw, off, span);
    size_t k = 0;
    for (int64_t i3 = 0; i3 < t->ne[3]; i3++) {
        for (int64_t i2 = 0; i2 < t->ne[2]; i2++) {
            for (int64_t i1 = 0; i1 < nr; i1++) {
                const unsigned char *row = r->raw + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3];
                for (int64_t i0 = 0; i0 < t->ne[0]; i0++) {
                    dst[k++] = elem_f32(t->type, row + i0 * t->nb[0]);
                }
            }
        }
    }
    return 0;
}

/*
 * This step's rows of a KV-cache write, as [n_tok][kv_dim] into r->f32, with the importer's
 * transforms (import_int.h); the cache cell of a position is the position (one sequence decoded
 * from an empty cache). Returns kv_dim, or -1 (out of memory, or a layout not understood).
 */
static int64_t cache_rows(struct rec *r, const struct ggml_tensor *t, enum vw_xform x)
{
    const int64_t n = r->n_tok, nel = ggml_nelements(t);
    int64_t kv_dim = x == VW_XFORM_CACHE_ROWS ? t->ne[0] : x == VW_XFORM_CACHE_TRANS ? t->ne[1] : 0;
    if (x == VW_XFORM_CACHE_VT) { /* src[0] holds the n_tok * kv_dim values being written */
        kv_dim = t->src[0] ? ggml_nelements(t->src[0]) / n : 0;
    } else if (x == VW_XFORM_CACHE_FLAT) {
        kv_dim = nel / n;
    }
    float *buf = kv_dim > 0 ? grow(r->f32, &r->cap_f32, (size_t)(2 * n * kv_dim) * 4) : NULL;
    if (!buf) {
        return -1;
    }
    r->f32 = buf;
    float *tmp = r->f32 + n * kv_dim;
    if (x == VW_XFORM_CACHE_ROWS) { /* the whole cache [kv_size][kv_dim]: read our rows */
        bool ok = t->ne[2] == 1 && t->ne[3] == 1 && r->pos0 + n <= t->ne[1];
        return ok && fetch_f32(r, t, r->pos0, n, r->f32) == 0 ? kv_dim : -1;
    }
    if (x == VW_XFORM_CACHE_FLAT) { /* a flat view of the rows written [n_tok * kv_dim] */
        return fetch_f32(r, t, 0, t->ne[1], r->f32) == 0 ? kv_dim : -1;
    }
    if (x == VW_XFORM_CACHE_VT) { /* transposed V [kv_dim][kv_size] flattened into ne1 */
        const int64_t kv_size = nel / kv_dim;
        for (int64_t ch = 0; ch < kv_dim; ch++) {
            if (t->ne[0] != 1 || r->pos0 + n > kv_size ||
                fetch_f32(r, t, ch * kv_size + r->pos0, n, tmp) < 0) {
                return -1;
            }
            for (int64_t i = 0; i < n; i++) {
                r->f32[i * kv_dim + ch] = tmp[i];
            }
        }
        return kv_dim;
    }
    if (t->ne[0] != n || fetch_f32(r, t, 0, kv_dim, tmp) < 0) { /* CACHE_TRANS [kv_dim][n] */
        return -1;
    }
    for (int64_t i = 0; i < n * kv_dim; i++) {
        r->f32[(i % n) * kv_dim + i / n] = tmp[i];
    }
    return kv_dim;
}

/* Appends s to b as a JSON string. */
static void json_str(char *b, size_t cap, const char *s)
{
    size_t n = strlen(b);
    n += (size_t)snprintf(b + n, n < cap ? cap - n : 0, "\"");
    for (; *s && n + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            n += (size_t)snprintf(b + n, cap - n, "\\%c", c);
        } else if (c < 0x20) {
            n += (size_t)snprintf(b + n, cap - n, "\\u%04x", c);
        } else {
            b[n++] = (char)c;
            b[n] = '\0';
        }
    }
    snprintf(b + n, n < cap ? cap - n : 0, "\"");
}

/* The op's params: where it came from in llama.cpp's graph, plus the map row's own members. */
static void op_params(const struct ggml_tensor *t, const struct vw_map_row *row, char *b,
                      size_t cap)
{
    b[0] = '\0';
    snprintf(b, cap, "{\"llama_name\":");
    json_str(b, cap, t->name);
    size_t n = strlen(b);
    snprintf(b + n, cap - n,
             ",\"llama_op\":\"%s\",\"llama_type\":\"%s\",\"ne\":[%lld,%lld,%lld,%lld]",
             ggml_op_desc(t), ggml_type_name(t->type), (long long)t->ne[0], (long long)t->ne[1],
             (long long)t->ne[2], (long long)t->ne[3]);
    n = strlen(b);
    if (row->params) {
        n += (size_t)snprintf(b + n, n < cap ? cap - n : 0, ",%s", row->params);
    }
    if (row->xform == VW_XFORM_NONE && strcmp(row->kind, "attn_scores") == 0) {
        n += (size_t)snprintf(b + n, n < cap ? cap - n : 0, ",\"n_kv_padded\":%lld",
                              (long long)t->ne[0]);
    }
    snprintf(b + n, n < cap ? cap - n : 0, "}");
}

/* The GGUF weight among t's sources ("blk.0.attn_q.weight"), or NULL. */
static const char *weight_of(const struct ggml_tensor *t)
{
    for (int k = 0; k < GGML_MAX_SRC; k++) {
        size_t n = t->src[k] ? strlen(t->src[k]->name) : 0;
        if (n > 7 && strcmp(t->src[k]->name + n - 7, ".weight") == 0) {
            return t->src[k]->name;
        }
    }
    return NULL;
}

/*
 * Fills the op's tensor from a node mapped without transform: the whole node, numpy shape =
 * reversed ne without its trailing 1s (but keeping the token axis). After the last layer's
 * GET_ROWS(inp_out_ids) a node has fewer rows than the step: they are its last positions.
 */
static int plain_node(struct rec *r, const struct ggml_tensor *t, const struct vw_map_row *row,
                      struct trc_tensor *tt, struct trc_op *op)
{
    float *buf = grow(r->f32, &r->cap_f32, (size_t)ggml_nelements(t) * 4);
    if (!buf) {
        return -1;
    }
    r->f32 = buf;
    if (fetch_f32(r, t, 0, t->ne[1], r->f32) < 0) {
        return -1;
    }
    int nd = 4;
    while (nd > row->tok_axis + 1 && nd > 1 && t->ne[nd - 1] == 1) {
        nd--;
    }
    tt->n_dims = nd;
    for (int k = 0; k < nd; k++) {
        tt->shape[k] = t->ne[nd - 1 - k];
    }
    op->n_pos = t->ne[row->tok_axis];
    op->pos0 = op->n_pos < r->n_tok ? r->pos0 + r->n_tok - op->n_pos : r->pos0;
    return 0;
}

/* Records one computed node that the map names. Errors stop the recording (r->rc). */
static void record_node(struct rec *r, const struct ggml_tensor *t, const struct vw_map_row *row,
                        int layer)
{
    char name[64], params[1024];
    struct trc_tensor tt = {"out", TRC_DTYPE_F32, 2, {0}, NULL, NULL, 0};
    struct trc_weight wt = {"weight", weight_of(t)};
    struct trc_op op = {name, row->kind, layer, r->pos0, r->n_tok, params, -1, &tt, 1, &wt, 1};
    const char *why = NULL;
    if (t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16 && t->type != GGML_TYPE_BF16) {
        r->n_other_type++; /* quantized or integer nodes: not activations we compare */
        return;
    }
    if (vw_lcmap_expand(row->canonical, layer, name, sizeof name) < 0) {
        r->n_unmatched++;
        return;
    }
    op.n_weights = wt.name ? 1 : 0;
    op_params(t, row, params, sizeof params);
    if (row->xform == VW_XFORM_NONE) {
        why = plain_node(r, t, row, &tt, &op) < 0 ? "out of memory" : NULL;
    } else {
        tt.shape[0] = r->n_tok;
        tt.shape[1] = cache_rows(r, t, row->xform);
        why = tt.shape[1] < 0 ? "KV-cache layout not understood (or out of memory)" : NULL;
    }
    tt.data = r->f32;
    r->rc = why ? TRC_EINVAL : trc_op_record(r->w, &op);
    if (r->rc < 0) {
        fprintf(stderr, "llamacpp-recorder: step %lld, node '%s' (%s): %s\n", (long long)r->step,
                t->name, ggml_op_desc(t), why ? why : trc_writer_errmsg(r->w));
        return;
    }
    r->n_ops++;
}

/* llama.cpp's eval callback: want = the map records this node; then record it once computed. */
static bool on_node(struct ggml_tensor *t, bool ask, void *user)
{
    struct rec *r = user;
    int layer;
    const struct vw_map_row *row = vw_lcmap_match(t->name, ggml_op_desc(t), &layer);
    if (ask) {
        if (!row) {
            size_t n = strlen(r->unmatched);
            r->n_unmatched++;
            if (!strstr(r->unmatched, t->name) && n + strlen(t->name) + 2 < sizeof r->unmatched) {
                snprintf(r->unmatched + n, sizeof r->unmatched - n, "%s%s", n ? "," : "", t->name);
            }
        }
        r->n_skipped += row && !row->canonical;
        return r->w && row && row->canonical;
    }
    if (r->rc == 0 && row && row->canonical) {
        record_node(r, t, row, layer);
    }
    return true; /* false would cancel the graph computation */
}

/* ---- the run ----------------------------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* SHA-256 of the model file, as `lltrace run` records it (lm_model_sha256). */
static int file_sha256(const char *path, char hex[65])
{
    struct stat st;
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        return -1;
    }
    lm_sha256_hex(p, (size_t)st.st_size, hex);
    munmap(p, (size_t)st.st_size);
    return 0;
}

/* A numeric GGUF key "<arch>.<suffix>", or NAN when absent. llama.cpp prints floats with 6
 * decimals; they are f32 in the file, so the value is rounded back to f32 (1e-5 stays 1e-5f). */
static double meta_num(const struct llama_model *m, const char *arch, const char *suffix)
{
    char key[128], val[64];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (llama_model_meta_val_str(m, key, val, sizeof val) < 0) {
        return (double)NAN;
    }
    return (double)strtof(val, NULL);
}

static int describe_run(trc_writer *w, const struct llama_model *m, const struct llama_context *ctx,
                        const struct opts *o, const char *sha)
{
    char arch[64] = "llama";
    llama_model_meta_val_str(m, "general.architecture", arch, sizeof arch);
    const int64_t n_embd = llama_model_n_embd(m), n_head = llama_model_n_head(m);
    const double kl = meta_num(m, arch, "attention.key_length");
    const double rot = meta_num(m, arch, "rope.dimension_count");
    const double theta = meta_num(m, arch, "rope.freq_base");
    const double eps = meta_num(m, arch, "attention.layer_norm_rms_epsilon");
    const double n_ff = meta_num(m, arch, "feed_forward_length");
    const int64_t head_dim = isnan(kl) ? n_embd / n_head : (int64_t)kl;
    int rc = trc_run_set_str(w, "model_path", o->model);
    rc |= trc_run_set_str(w, "model_sha256", sha);
    rc |= trc_run_set_str(w, "arch", arch);
    rc |= trc_run_set_i64(w, "n_layer", llama_model_n_layer(m));
    rc |= trc_run_set_i64(w, "n_embd", n_embd);
    rc |= trc_run_set_i64(w, "n_head", n_head);
    rc |= trc_run_set_i64(w, "n_head_kv", llama_model_n_head_kv(m));
    rc |= trc_run_set_i64(w, "head_dim", head_dim);
    rc |= trc_run_set_i64(w, "n_rot", isnan(rot) ? head_dim : (int64_t)rot);
    rc |= isnan(n_ff) ? 0 : trc_run_set_i64(w, "n_ff", (int64_t)n_ff);
    rc |= trc_run_set_i64(w, "n_vocab", llama_vocab_n_tokens(llama_model_get_vocab(m)));
    rc |= trc_run_set_i64(w, "n_ctx", llama_n_ctx(ctx));
    rc |= isnan(theta) ? 0 : trc_run_set_f64(w, "rope_theta", theta);
    rc |= isnan(eps) ? 0 : trc_run_set_f64(w, "rms_eps", eps);
    rc |= trc_run_set_f64(w, "rope_freq_scale", (double)llama_model_rope_freq_scale_train(m));
    rc |= trc_run_set_str(w, "rope_mode",
                          llama_model_rope_type(m) == LLAMA_ROPE_TYPE_NEOX ? "neox" : "norm");
    rc |= trc_run_set_str(w, "kv_type", o->kv_f16 ? "f16" : "f32");
    rc |= trc_run_set_str(w, "prompt", o->prompt);
    rc |= trc_run_set_f64(w, "temp", 0.0);
    rc |= trc_run_set_i64(w, "n_threads", o->n_threads);
    rc |= trc_run_set_i64(w, "n_predict", o->n_predict);
    rc |= trc_run_set_i64(w, "flash_attn", o->flash_attn);
    rc |= trc_run_set_str(w, "build_version", "llama.cpp " LLREC_LLAMA_VERSION);
    rc |= trc_run_set_str(w, "build_commit", LLREC_LLAMA_COMMIT);
    rc |= trc_run_set_str(w, "llama_system_info", llama_print_system_info());
    return rc ? -1 : 0;
}

static int add_token(trc_writer *w, const struct llama_vocab *v, int64_t i, llama_token id,
                     bool prompt, float prob, float logit)
{
    char piece[256];
    int32_t n = llama_token_to_piece(v, id, piece, (int32_t)sizeof piece - 1, 0, true);
    piece[n > 0 ? n : 0] = '\0';
    return trc_token_add(w, i, id, piece, prompt, prompt && i == 0 && id == llama_vocab_bos(v),
                         prob, logit);
}

/* One llama_decode call as one lltrace step; the eval callback records its ops. */
static int decode_step(struct rec *r, struct llama_context *ctx, llama_token *ids, int64_t n,
                       int64_t step, int64_t pos0)
{
    r->step = step;
    r->pos0 = pos0;
    r->n_tok = n;
    int rc = trc_step_begin(r->w, step, pos0, n);
    int64_t t0 = now_ns();
    r->in_step = rc == 0;
    if (rc == 0 && llama_decode(ctx, llama_batch_get_one(ids, (int32_t)n)) != 0) {
        fprintf(stderr, "llamacpp-recorder: llama_decode failed at step %lld\n", (long long)step);
        return -1;
    }
    rc = rc ? rc : r->rc;
    rc = rc ? rc : trc_step_end(r->w, now_ns() - t0);
    r->in_step = r->in_step && rc != 0;
    if (rc < 0 && r->rc == 0) {
        fprintf(stderr, "llamacpp-recorder: %s\n", trc_writer_errmsg(r->w));
    }
    return rc < 0 ? -1 : 0;
}

/* Greedy: the first maximum of the last position's logits, with its softmax probability. */
static llama_token argmax(const float *logits, int32_t n_vocab, float *prob)
{
    llama_token best = 0;
    double sum = 0.0;
    for (int32_t i = 1; i < n_vocab; i++) {
        best = logits[i] > logits[best] ? i : best;
    }
    for (int32_t i = 0; i < n_vocab; i++) {
        sum += exp((double)logits[i] - (double)logits[best]);
    }
    *prob = (float)(1.0 / sum);
    return best;
}

/* Prompt step, then one step per generated token, until N tokens or an end-of-generation one. */
static int generate(struct rec *r, struct llama_context *ctx, const struct llama_vocab *v,
                    llama_token *ids, int64_t n_prompt, int n_predict)
{
    for (int64_t i = 0; i < n_prompt; i++) {
        if (add_token(r->w, v, i, ids[i], true, NAN, NAN) < 0) {
            return -1;
        }
    }
    if (decode_step(r, ctx, ids, n_prompt, 0, 0) < 0) {
        return -1;
    }
    for (int64_t g = 0; g < n_predict; g++) {
        float prob;
        const float *logits = llama_get_logits_ith(ctx, -1);
        if (!logits) {
            return -1;
        }
        llama_token id = argmax(logits, llama_vocab_n_tokens(v), &prob);
        ids[n_prompt + g] = id;
        if (add_token(r->w, v, n_prompt + g, id, false, prob, logits[id]) < 0) {
            return -1;
        }
        char piece[256];
        int32_t n = llama_token_to_piece(v, id, piece, (int32_t)sizeof piece, 0, false);
        fwrite(piece, 1, n > 0 ? (size_t)n : 0, stdout);
        fflush(stdout);
        if (llama_vocab_is_eog(v, id) || g + 1 == n_predict) {
            break;
        }
        if (decode_step(r, ctx, &ids[n_prompt + g], 1, g + 1, n_prompt + g) < 0) {
            return -1;
        }
    }
    printf("\n");
    return 0;
}

/* ---- main ---------------------------------------------------------------------------------- */

static const char usage[] =
    "usage: llamacpp-recorder -m MODEL.gguf -p PROMPT [-n N] -o TRACE\n"
    "                         [--kv f32|f16] [--fa on|off] [-t THREADS] [--force]\n"
    "Runs MODEL with llama.cpp (the prompt, then N greedy tokens; default 8) and records every\n"
    "graph node that lltrace's llama.cpp name map knows, complete and exact, into TRACE: one\n"
    "step per llama_decode call. Defaults: --kv f32 --fa off -t 4.\n"
    "Then compare: lltrace diff TRACE YOURS.trace\n";

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {{"kv", 1, NULL, 'k'},
                                       {"fa", 1, NULL, 'f'},
                                       {"force", 0, NULL, 'F'},
                                       {"help", 0, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int c;
    char *end;
    *o = (struct opts){NULL, NULL, NULL, 8, 4, false, false, false};
    while ((c = getopt_long(argc, argv, "m:p:n:o:t:h", lo, NULL)) != -1) {
        if (c == 'm' || c == 'p' || c == 'o') {
            *(c == 'm' ? &o->model : c == 'p' ? &o->prompt : &o->out) = optarg;
        } else if (c == 'n' || c == 't') {
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < (c == 'n' ? 0 : 1) || v > 1000000) {
                fprintf(stderr, "llamacpp-recorder: bad -%c '%s'\n", c, optarg);
                return 2;
            }
            *(c == 'n' ? &o->n_predict : &o->n_threads) = (int)v;
        } else if (c == 'k' && (!strcmp(optarg, "f32") || !strcmp(optarg, "f16"))) {
            o->kv_f16 = !strcmp(optarg, "f16");
        } else if (c == 'f' && (!strcmp(optarg, "on") || !strcmp(optarg, "off"))) {
            o->flash_attn = !strcmp(optarg, "on");
        } else if (c == 'F') {
            o->force = true;
        } else {
            fputs(usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? 1 : 2;
        }
    }
    if (optind != argc || !o->model || !o->prompt || !o->out) {
        fputs(usage, stderr);
        return 2;
    }
    return 0;
}

/* llama.cpp's own log: warnings and errors only. */
static void on_log(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static llama_token *tokenize(const struct llama_vocab *v, const char *text, int extra, int64_t *n)
{
    int32_t len = (int32_t)strlen(text);
    int32_t k = llama_tokenize(v, text, len, NULL, 0, true, true); /* -(tokens needed) */
    k = k < 0 && k != INT32_MIN ? -k : 0;
    llama_token *ids = k > 0 ? malloc((size_t)(k + extra) * sizeof *ids) : NULL;
    if (ids && llama_tokenize(v, text, len, ids, k, true, true) != k) {
        free(ids);
        ids = NULL;
    }
    *n = k;
    return ids;
}

static struct llama_context *make_context(struct llama_model *m, const struct opts *o,
                                          int64_t n_prompt, struct rec *r)
{
    struct llama_context_params cp = llama_context_default_params();
    /* the whole prompt in one ubatch: one graph, so one lltrace step, per llama_decode */
    cp.n_ctx = (uint32_t)(n_prompt + o->n_predict + 1);
    cp.n_batch = cp.n_ctx;
    cp.n_ubatch = cp.n_ctx;
    cp.n_threads = o->n_threads;
    cp.n_threads_batch = o->n_threads;
    cp.type_k = o->kv_f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
    cp.type_v = cp.type_k;
    cp.flash_attn_type =
        o->flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.cb_eval = on_node;
    cp.cb_eval_user_data = r;
    return llama_init_from_model(m, cp);
}

/* Opens the trace, describes the run, generates, ends the run. Returns an exit code. */
static int record(struct rec *r, struct llama_model *m, struct llama_context *ctx,
                  const struct opts *o, llama_token *ids, int64_t n_prompt, const char *sha)
{
    char eb[TRC_ERRBUF_SIZE];
    struct trc_writer_opts wo = {.overwrite = o->force};
    int64_t run_id;
    if (trc_writer_open(o->out, &wo, &r->w, eb, sizeof eb) < 0) {
        fprintf(stderr, "llamacpp-recorder: %s\n", eb);
        return 1;
    }
    int rc = trc_run_begin(r->w, "llama.cpp-recorder", &run_id);
    rc = rc ? rc : describe_run(r->w, m, ctx, o, sha);
    if (rc < 0) {
        fprintf(stderr, "llamacpp-recorder: %s\n", trc_writer_errmsg(r->w));
    }
    rc = rc ? rc : generate(r, ctx, llama_model_get_vocab(m), ids, n_prompt, o->n_predict);
    trc_run_set_i64(r->w, "n_skipped_nodes", r->n_skipped);
    trc_run_set_i64(r->w, "n_unmatched_nodes", r->n_unmatched);
    trc_run_set_str(r->w, "unmatched_nodes", r->unmatched);
    if (!r->in_step) { /* else trc_writer_close drops the step and ends the run as "error" */
        trc_run_end(r->w, rc == 0 ? "complete" : "error");
    }
    if (trc_writer_close(r->w) < 0 && rc == 0) {
        fprintf(stderr, "llamacpp-recorder: %s: could not finish the trace\n", o->out);
        rc = -1;
    }
    fprintf(stderr,
            "llamacpp-recorder: %s: %lld ops recorded; %lld nodes skipped (views, aliases), %lld "
            "unmatched%s%s, %lld of other types\n",
            o->out, (long long)r->n_ops, (long long)r->n_skipped, (long long)r->n_unmatched,
            r->unmatched[0] ? ": " : "", r->unmatched, (long long)r->n_other_type);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct rec r;
    char sha[65];
    int64_t n_prompt = 0;
    int rc = parse_opts(argc, argv, &o);
    if (rc) {
        return rc == 1 ? 0 : rc;
    }
    if (file_sha256(o.model, sha) < 0) {
        fprintf(stderr, "llamacpp-recorder: %s: cannot read the model file\n", o.model);
        return 1;
    }
    memset(&r, 0, sizeof r);
    llama_log_set(on_log, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *m = llama_model_load_from_file(o.model, mp);
    llama_token *ids =
        m ? tokenize(llama_model_get_vocab(m), o.prompt, o.n_predict, &n_prompt) : NULL;
    struct llama_context *ctx = ids ? make_context(m, &o, n_prompt, &r) : NULL;
    if (!ctx) {
        fprintf(stderr, "llamacpp-recorder: %s: %s\n", o.model,
                !m     ? "llama.cpp cannot load this model"
                : !ids ? "the prompt gives no tokens"
                       : "llama.cpp cannot create a context");
        rc = 1;
    } else {
        rc = record(&r, m, ctx, &o, ids, n_prompt, sha);
    }
    llama_free(ctx);
    llama_model_free(m);
    llama_backend_free();
    free(ids);
    free(r.f32);
    free(r.raw);
    return rc;
}
