/*
 * gguf_llama.c - checks that a parsed GGUF file is a llama model lltrace can run: the
 * architecture, the hyper-parameters with llama.cpp's strict key types (FORMATS.md section 2),
 * and every tensor present with the shape the hyper-parameters require (section 3, ggml order:
 * ne0 is the contiguous input dimension). Unknown tensors are rejected, as llama.cpp's loader
 * does ("wrong number of tensors").
 *
 * Depends on the GGUF reader only; it knows nothing of kernels or the tokenizer.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_int.h"

#define MAX_LAYERS 512 /* llama.cpp LLAMA_MAX_LAYERS */

struct llama_hp {
    uint32_t n_ctx, n_embd, n_layer, n_ff, n_head, n_head_kv;
    int64_t head_dim, n_vocab; /* n_vocab: -1 when the file has no token list */
    float eps;
};

struct chk {
    const lm_gguf *g;
    char *err;
    size_t errlen;
};

static int ck_fail(struct chk *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ck_fail(struct chk *c, int code, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (c->err && c->errlen) {
        n = snprintf(c->err, c->errlen, "%s: ", c->g->path);
        if (n >= 0 && (size_t)n < c->errlen) {
            va_start(ap, fmt);
            vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

/* A key of a fixed scalar type; missing is an error only when required. */
static int get_key(struct chk *c, const char *key, enum lm_gguf_vtype type, void *out,
                   bool required)
{
    const struct lm__gguf_kv *kv = lm__gguf_kv_get(c->g, key);
    if (!kv) {
        return required ? ck_fail(c, LM_EFORMAT, "missing required key '%s'", key) : LM_ENOTFOUND;
    }
    if (kv->type != type) {
        return ck_fail(c, LM_ETYPE, "key '%s' must be %s, not %s%s", key, lm__gguf_vtype_name(type),
                       kv->type == LM_GGUF_ARRAY ? "an array" : lm__gguf_vtype_name(kv->type),
                       kv->type == LM_GGUF_ARRAY ? " (per-layer values are not supported)" : "");
    }
    memcpy(out, kv->val, lm__gguf_vtype_size(type));
    return 0;
}

static int req_pos_u32(struct chk *c, const char *key, uint32_t *out)
{
    int rc = get_key(c, key, LM_GGUF_U32, out, true);
    if (rc == 0 && *out == 0) {
        return ck_fail(c, LM_EFORMAT, "key '%s' is 0", key);
    }
    return rc;
}

/* An optional u32 that must equal want when present. */
static int opt_equal(struct chk *c, const char *key, int64_t want, const char *what)
{
    uint32_t v;
    int rc = get_key(c, key, LM_GGUF_U32, &v, false);
    if (rc == LM_ENOTFOUND) {
        return 0;
    }
    if (rc == 0 && (int64_t)v != want) {
        return ck_fail(c, LM_EUNSUPPORTED, "key '%s' is %" PRIu32 " but %s is %" PRId64, key, v,
                       what, want);
    }
    return rc;
}

static int check_arch(struct chk *c)
{
    const char *s;
    uint64_t len;
    int rc = lm_gguf_get_str(c->g, "general.architecture", &s, &len);
    if (rc == LM_ENOTFOUND) {
        return ck_fail(c, LM_EFORMAT, "missing required key 'general.architecture'");
    }
    if (rc < 0) {
        return ck_fail(c, LM_ETYPE, "key 'general.architecture' must be a string");
    }
    if (len != 5 || memcmp(s, "llama", 5) != 0) {
        return ck_fail(c, LM_EUNSUPPORTED, "architecture '%.*s' is not supported (only llama)",
                       len > 64 ? 64 : (int)len, s);
    }
    return 0;
}

static int check_counts(struct chk *c, struct llama_hp *hp)
{
    if (hp->n_layer > MAX_LAYERS) {
        return ck_fail(c, LM_EFORMAT, "block_count %" PRIu32 " is larger than %d", hp->n_layer,
                       MAX_LAYERS);
    }
    if (hp->n_embd % hp->n_head != 0) {
        return ck_fail(c, LM_EFORMAT,
                       "embedding_length %" PRIu32 " is not a multiple of head_count %" PRIu32,
                       hp->n_embd, hp->n_head);
    }
    if (hp->n_head_kv == 0 || hp->n_head % hp->n_head_kv != 0) {
        return ck_fail(c, LM_EFORMAT,
                       "head_count %" PRIu32 " is not a multiple of head_count_kv %" PRIu32,
                       hp->n_head, hp->n_head_kv);
    }
    if (!(hp->eps > 0.0f) || !isfinite(hp->eps)) {
        return ck_fail(c, LM_EFORMAT, "layer_norm_rms_epsilon %g is not a positive number",
                       (double)hp->eps);
    }
    hp->head_dim = hp->n_embd / hp->n_head;
    return 0;
}

static int check_hparams(struct chk *c, struct llama_hp *hp)
{
    uint32_t u;
    float f;
    int rc;
    if ((rc = req_pos_u32(c, "llama.context_length", &hp->n_ctx)) < 0 ||
        (rc = req_pos_u32(c, "llama.embedding_length", &hp->n_embd)) < 0 ||
        (rc = req_pos_u32(c, "llama.block_count", &hp->n_layer)) < 0 ||
        (rc = req_pos_u32(c, "llama.feed_forward_length", &hp->n_ff)) < 0 ||
        (rc = req_pos_u32(c, "llama.attention.head_count", &hp->n_head)) < 0 ||
        (rc = get_key(c, "llama.attention.layer_norm_rms_epsilon", LM_GGUF_F32, &hp->eps, true)) <
            0) {
        return rc;
    }
    hp->n_head_kv = hp->n_head;
    rc = get_key(c, "llama.attention.head_count_kv", LM_GGUF_U32, &hp->n_head_kv, false);
    if ((rc < 0 && rc != LM_ENOTFOUND) || (rc = check_counts(c, hp)) < 0) {
        return rc;
    }
    rc = get_key(c, "llama.rope.freq_base", LM_GGUF_F32, &f, false);
    if (rc == 0 && (!(f > 0.0f) || !isfinite(f))) {
        return ck_fail(c, LM_EFORMAT, "rope.freq_base %g is not a positive number", (double)f);
    }
    if ((rc < 0 && rc != LM_ENOTFOUND) ||
        (rc = opt_equal(c, "llama.rope.dimension_count", hp->head_dim, "head_dim")) < 0 ||
        (rc = opt_equal(c, "llama.attention.key_length", hp->head_dim, "head_dim")) < 0 ||
        (rc = opt_equal(c, "llama.attention.value_length", hp->head_dim, "head_dim")) < 0) {
        return rc;
    }
    rc = get_key(c, "llama.expert_count", LM_GGUF_U32, &u, false);
    if (rc == 0 && u > 0) {
        return ck_fail(c, LM_EUNSUPPORTED, "mixture-of-experts models are not supported");
    }
    return rc == LM_ENOTFOUND ? 0 : rc;
}

/* n_vocab from the token list, which must agree with llama.vocab_size. */
static int check_vocab(struct chk *c, struct llama_hp *hp)
{
    const struct lm__gguf_kv *tok = lm__gguf_kv_get(c->g, "tokenizer.ggml.tokens");
    hp->n_vocab = tok ? (int64_t)tok->arr_n : -1;
    if (tok && tok->arr_n == 0) {
        return ck_fail(c, LM_EFORMAT, "tokenizer.ggml.tokens is empty");
    }
    if (tok) {
        return opt_equal(c, "llama.vocab_size", hp->n_vocab, "the token count");
    }
    return 0;
}

/* ---- tensors ----------------------------------------------------------------------------------
 */

static void ck_shape_str(const int64_t *ne, int n_dims, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "[");
    for (int d = 0; d < n_dims && n >= 0 && (size_t)n < cap; d++) {
        n += snprintf(buf + n, cap - (size_t)n, d ? ", %" PRId64 : "%" PRId64, ne[d]);
    }
    if (n >= 0 && (size_t)n < cap) {
        snprintf(buf + n, cap - (size_t)n, "]");
    }
}

/* One tensor's expected shape: ne0 (named n0) and, for matrices, ne1 (named n1; -1 = any). */
static int expect(struct chk *c, const char *name, bool required, const char *n0, int64_t ne0,
                  const char *n1, int64_t ne1, int *n_found)
{
    const struct lm_gguf_tensor *t = lm_gguf_find_tensor(c->g, name);
    char have[96], want[64], why[96];
    if (!t) {
        return required ? ck_fail(c, LM_EFORMAT, "missing required tensor '%s'", name) : 0;
    }
    (*n_found)++;
    int64_t ne[4] = {ne0, n1 ? (ne1 < 0 ? t->ne[1] : ne1) : 1, 1, 1};
    if (memcmp(ne, t->ne, sizeof ne) == 0) {
        return 0;
    }
    ck_shape_str(t->ne, t->n_dims, have, sizeof have);
    ck_shape_str(ne, n1 ? 2 : 1, want, sizeof want);
    if (n1 && ne1 >= 0) {
        snprintf(why, sizeof why, "%s %" PRId64 " and %s %" PRId64 " require", n0, ne0, n1, ne1);
    } else {
        snprintf(why, sizeof why, "%s %" PRId64 " requires", n0, ne0);
    }
    return ck_fail(c, LM_EFORMAT, "tensor '%s' has shape %s but %s %s", name, have, why, want);
}

static const char *const layer_names[] = {
    "attn_norm.weight", "attn_q.weight",   "attn_k.weight", "attn_v.weight",   "attn_output.weight",
    "ffn_norm.weight",  "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight",
};

static int check_layer(struct chk *c, const struct llama_hp *hp, uint32_t l, int *nf)
{
    int64_t e = hp->n_embd, q = hp->n_head * hp->head_dim, kv = hp->n_head_kv * hp->head_dim;
    int64_t ff = hp->n_ff;
    char nm[9][96];
    int rc = 0;
    for (int i = 0; i < 9; i++) {
        snprintf(nm[i], sizeof nm[i], "blk.%" PRIu32 ".%s", l, layer_names[i]);
    }
    if ((rc = expect(c, nm[0], true, "n_embd", e, NULL, 0, nf)) < 0 ||
        (rc = expect(c, nm[1], true, "n_embd", e, "n_head*head_dim", q, nf)) < 0 ||
        (rc = expect(c, nm[2], true, "n_embd", e, "n_head_kv*head_dim", kv, nf)) < 0 ||
        (rc = expect(c, nm[3], true, "n_embd", e, "n_head_kv*head_dim", kv, nf)) < 0 ||
        (rc = expect(c, nm[4], true, "n_head*head_dim", q, "n_embd", e, nf)) < 0 ||
        (rc = expect(c, nm[5], true, "n_embd", e, NULL, 0, nf)) < 0 ||
        (rc = expect(c, nm[6], true, "n_embd", e, "n_ff", ff, nf)) < 0 ||
        (rc = expect(c, nm[7], true, "n_embd", e, "n_ff", ff, nf)) < 0 ||
        (rc = expect(c, nm[8], true, "n_ff", ff, "n_embd", e, nf)) < 0) {
        return rc;
    }
    return 0;
}

/* True when name is one of the tensors checked above (so a count mismatch names the extra). */
static bool known_tensor(const struct llama_hp *hp, const char *name)
{
    static const char *const top[] = {"token_embd.weight", "output_norm.weight", "output.weight",
                                      "rope_freqs.weight"};
    char canon[96];
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
        if (strcmp(name, top[i]) == 0) {
            return true;
        }
    }
    if (strncmp(name, "blk.", 4) != 0 || name[4] < '0' || name[4] > '9') {
        return false;
    }
    char *end;
    unsigned long l = strtoul(name + 4, &end, 10);
    if (*end != '.' || l >= hp->n_layer) {
        return false;
    }
    for (int i = 0; i < 9; i++) {
        snprintf(canon, sizeof canon, "blk.%lu.%s", l, layer_names[i]);
        if (strcmp(canon, name) == 0) {
            return true;
        }
    }
    return false;
}

static int check_tensors(struct chk *c, struct llama_hp *hp)
{
    const struct lm_gguf_tensor *emb = lm_gguf_find_tensor(c->g, "token_embd.weight");
    int nf = 0, rc;
    int64_t nv = hp->n_vocab;
    if (emb && nv < 0) {
        nv = emb->ne[1]; /* no token list: the embedding defines the vocabulary */
    }
    if ((rc = expect(c, "token_embd.weight", true, "n_embd", hp->n_embd, "n_vocab", nv, &nf)) < 0 ||
        (rc = expect(c, "output_norm.weight", true, "n_embd", hp->n_embd, NULL, 0, &nf)) < 0 ||
        (rc = expect(c, "output.weight", false, "n_embd", hp->n_embd, "n_vocab", nv, &nf)) < 0 ||
        (rc = expect(c, "rope_freqs.weight", false, "head_dim/2", hp->head_dim / 2, NULL, 0, &nf)) <
            0) {
        return rc;
    }
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        if ((rc = check_layer(c, hp, l, &nf)) < 0) {
            return rc;
        }
    }
    for (int64_t i = 0; nf != c->g->n_tensors && i < c->g->n_tensors; i++) {
        const char *name = c->g->tensors[i].name;
        if (!known_tensor(hp, name)) {
            return ck_fail(c, LM_EUNSUPPORTED, "unexpected tensor '%s' (not part of a llama model)",
                           name);
        }
    }
    return 0;
}

int lm_gguf_check_llama(const lm_gguf *g, char *errbuf, size_t errlen)
{
    struct chk c = {g, errbuf, errlen};
    struct llama_hp hp = {0};
    int rc;
    if ((rc = check_arch(&c)) < 0 || (rc = check_hparams(&c, &hp)) < 0 ||
        (rc = check_vocab(&c, &hp)) < 0 || (rc = check_tensors(&c, &hp)) < 0) {
        return rc;
    }
    return 0;
}
