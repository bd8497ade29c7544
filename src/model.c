/*
 * Loading a LLaMA-family model from GGUF: hyper-parameters with llama.cpp's key names and
 * defaults, weight pointers into the mapping (checked against the hyper-parameters by
 * lm_gguf_check_llama), and the tokenizer. Norm weights must be f32 (as every converter writes
 * them) so the forward pass can use them directly.
 */
#include "kern_int.h"
#include "model_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get_u32(const lm_gguf *g, const char *key, int64_t *out, bool required, int64_t def)
{
    uint32_t v;
    int rc = lm_gguf_get_u32(g, key, &v);
    if (rc == LM_ENOTFOUND && !required) {
        *out = def;
        return 0;
    }
    if (rc == 0) {
        *out = v;
    }
    return rc;
}

static int get_f32(const lm_gguf *g, const char *key, float *out, bool required, float def)
{
    int rc = lm_gguf_get_f32(g, key, out);
    if (rc == LM_ENOTFOUND && !required) {
        *out = def;
        return 0;
    }
    return rc;
}

static int load_hparams(lm_model *m, char *err, size_t errlen)
{
    const lm_gguf *g = m->gguf;
    struct lm_hparams *hp = &m->hp;
    float scale = 0.0f;
    const char *bad = NULL;
    int rc = 0;
#define REQ_U32(key, field)                                                                        \
    if (!bad && get_u32(g, key, &hp->field, true, 0) < 0) {                                        \
        bad = key;                                                                                 \
    }
    REQ_U32("llama.context_length", n_ctx_train);
    REQ_U32("llama.embedding_length", n_embd);
    REQ_U32("llama.block_count", n_layer);
    REQ_U32("llama.feed_forward_length", n_ff);
    REQ_U32("llama.attention.head_count", n_head);
#undef REQ_U32
    if (!bad && get_u32(g, "llama.attention.head_count_kv", &hp->n_head_kv, false, hp->n_head)) {
        bad = "llama.attention.head_count_kv";
    }
    if (!bad && get_f32(g, "llama.attention.layer_norm_rms_epsilon", &hp->rms_eps, true, 0)) {
        bad = "llama.attention.layer_norm_rms_epsilon";
    }
    if (!bad && get_f32(g, "llama.rope.freq_base", &hp->rope_theta, false, 10000.0f)) {
        bad = "llama.rope.freq_base";
    }
    if (!bad && get_f32(g, "llama.rope.scaling.factor", &scale, false, 0.0f)) {
        bad = "llama.rope.scaling.factor";
    }
    if (bad) {
        snprintf(err, errlen, "%s: metadata key '%s' is missing or has the wrong type", m->path,
                 bad);
        return LM_EFORMAT;
    }
    if (hp->n_head <= 0 || hp->n_embd % hp->n_head != 0 || hp->n_head_kv <= 0 ||
        hp->n_head % hp->n_head_kv != 0) {
        snprintf(err, errlen, "%s: n_head %lld and n_head_kv %lld do not divide n_embd %lld",
                 m->path, (long long)hp->n_head, (long long)hp->n_head_kv, (long long)hp->n_embd);
        return LM_EFORMAT;
    }
    hp->head_dim = hp->n_embd / hp->n_head;
    if (get_u32(g, "llama.rope.dimension_count", &hp->n_rot, false, hp->head_dim) < 0 ||
        hp->n_rot != hp->head_dim) {
        snprintf(err, errlen, "%s: llama.rope.dimension_count must equal head_dim %lld", m->path,
                 (long long)hp->head_dim);
        return LM_EFORMAT;
    }
    hp->rope_freq_scale = scale > 0.0f ? 1.0f / scale : 1.0f;
    hp->rope_mode = LM_ROPE_NORM;
    return rc;
}

static int bind(lm_model *m, struct lm_weight *w, const char *name, char *err, size_t errlen)
{
    const struct lm_gguf_tensor *t = lm_gguf_find_tensor(m->gguf, name);
    if (!t) {
        snprintf(err, errlen, "%s: missing required tensor '%s'", m->path, name);
        return LM_EFORMAT;
    }
    if (lm_type_row_bytes(t->type, t->ne[0]) < 0 || t->n_dims > 2) {
        snprintf(err, errlen, "%s: tensor '%s' has an unsupported type %s or shape", m->path, name,
                 lm_type_name(t->type) ? lm_type_name(t->type) : "?");
        return LM_EUNSUPPORTED;
    }
    w->name = t->name;
    w->type = t->type;
    w->k = t->ne[0];
    w->m = t->n_dims > 1 ? t->ne[1] : 1;
    w->data = t->data;
    return 0;
}

static int bind_norm(lm_model *m, struct lm_weight *w, const char *name, char *err, size_t errlen)
{
    int rc = bind(m, w, name, err, errlen);
    if (rc == 0 && w->type != LM_TYPE_F32) {
        snprintf(err, errlen, "%s: norm weight '%s' is %s; only f32 norms are supported", m->path,
                 name, lm_type_name(w->type));
        return LM_EUNSUPPORTED;
    }
    return rc;
}

static int load_weights(lm_model *m, char *err, size_t errlen)
{
    char name[96];
    int rc;
    if ((rc = bind(m, &m->tok_embd, "token_embd.weight", err, errlen)) < 0 ||
        (rc = bind_norm(m, &m->out_norm, "output_norm.weight", err, errlen)) < 0) {
        return rc;
    }
    m->hp.tied_output = lm_gguf_find_tensor(m->gguf, "output.weight") == NULL;
    if (m->hp.tied_output) {
        m->output = m->tok_embd;
    } else if ((rc = bind(m, &m->output, "output.weight", err, errlen)) < 0) {
        return rc;
    }
    m->hp.n_vocab = m->tok_embd.m;
    m->layers = calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!m->layers) {
        return LM_ENOMEM;
    }
    for (int64_t l = 0; l < m->hp.n_layer; l++) {
        struct lm_layer *L = &m->layers[l];
#define W(field, suffix, norm)                                                                     \
    snprintf(name, sizeof name, "blk.%lld." suffix, (long long)l);                                 \
    rc =                                                                                           \
        norm ? bind_norm(m, &L->field, name, err, errlen) : bind(m, &L->field, name, err, errlen); \
    if (rc < 0) {                                                                                  \
        return rc;                                                                                 \
    }
        W(attn_norm, "attn_norm.weight", 1);
        W(wq, "attn_q.weight", 0);
        W(wk, "attn_k.weight", 0);
        W(wv, "attn_v.weight", 0);
        W(wo, "attn_output.weight", 0);
        W(ffn_norm, "ffn_norm.weight", 1);
        W(w_gate, "ffn_gate.weight", 0);
        W(w_up, "ffn_up.weight", 0);
        W(w_down, "ffn_down.weight", 0);
#undef W
    }
    m->hp.weight_type = m->layers[0].wq.type;
    return 0;
}

static void load_chat_template(lm_model *m)
{
    const char *s;
    uint64_t len;
    if (lm_gguf_get_str(m->gguf, "tokenizer.chat_template", &s, &len) == 0) {
        m->chat_template = malloc(len + 1);
        if (m->chat_template) {
            memcpy(m->chat_template, s, len);
            m->chat_template[len] = 0;
        }
    }
}

int lm_model_open(const char *path, lm_model **out, char *errbuf, size_t errlen)
{
    char tmp[LM_ERRBUF_SIZE];
    char *err = errbuf ? errbuf : tmp;
    size_t elen = errbuf ? errlen : sizeof tmp;
    lm_model *m = calloc(1, sizeof *m);
    int rc;
    *out = NULL;
    if (!m || !(m->path = strdup(path))) {
        free(m);
        snprintf(err, elen, "%s: out of memory", path);
        return LM_ENOMEM;
    }
    if ((rc = lm_gguf_open(path, &m->gguf, err, elen)) < 0 ||
        (rc = lm_gguf_check_llama(m->gguf, err, elen)) < 0 ||
        (rc = load_hparams(m, err, elen)) < 0 || (rc = load_weights(m, err, elen)) < 0 ||
        (rc = lm_tok_create(m->gguf, &m->tok, err, elen)) < 0) {
        if (rc == LM_ENOMEM) {
            snprintf(err, elen, "%s: out of memory", path);
        }
        lm_model_close(m);
        return rc;
    }
    if (lm_tok_n_vocab(m->tok) != m->hp.n_vocab) {
        snprintf(err, elen, "%s: the vocabulary has %d tokens but token_embd has %lld rows", path,
                 lm_tok_n_vocab(m->tok), (long long)m->hp.n_vocab);
        lm_model_close(m);
        return LM_EFORMAT;
    }
    load_chat_template(m);
    *out = m;
    return 0;
}

void lm_model_close(lm_model *m)
{
    if (!m) {
        return;
    }
    lm_tok_destroy(m->tok);
    lm_gguf_close(m->gguf);
    free(m->layers);
    free(m->chat_template);
    free(m->path);
    free(m);
}

const struct lm_hparams *lm_model_hparams(const lm_model *m)
{
    return &m->hp;
}

const lm_tok *lm_model_tok(const lm_model *m)
{
    return m->tok;
}

const lm_gguf *lm_model_gguf(const lm_model *m)
{
    return m->gguf;
}

const char *lm_model_path(const lm_model *m)
{
    return m->path;
}

const char *lm_model_chat_template(const lm_model *m)
{
    return m->chat_template;
}

const char *lm_model_sha256(lm_model *m)
{
    if (!m->sha256[0]) {
        lm_sha256_hex(lm_gguf_bytes(m->gguf), (size_t)lm_gguf_file_size(m->gguf), m->sha256);
    }
    return m->sha256;
}

void lm_model_set_sha256(lm_model *m, const char *hex)
{
    snprintf(m->sha256, sizeof m->sha256, "%s", hex);
}

static const struct lm_weight *find_weight(const lm_model *m, const char *name)
{
    const struct lm_weight *all[] = {&m->tok_embd, &m->out_norm, &m->output};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (all[i]->name && strcmp(all[i]->name, name) == 0) {
            return all[i];
        }
    }
    if (strcmp(name, "output.weight") == 0 && m->hp.tied_output) {
        return &m->output;
    }
    for (int64_t l = 0; l < m->hp.n_layer; l++) {
        const struct lm_layer *L = &m->layers[l];
        const struct lm_weight *ws[] = {&L->attn_norm, &L->wq,     &L->wk,   &L->wv,    &L->wo,
                                        &L->ffn_norm,  &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
            if (strcmp(ws[i]->name, name) == 0) {
                return ws[i];
            }
        }
    }
    return NULL;
}

int lm_model_weight_shape(const lm_model *m, const char *name, int64_t *rows, int64_t *k)
{
    const struct lm_weight *w = find_weight(m, name);
    if (!w) {
        return LM_ENOTFOUND;
    }
    *rows = w->m;
    *k = w->k;
    return 0;
}

int lm_model_matmul(const lm_model *m, const char *name, const float *in, int64_t n, float *out)
{
    const struct lm_weight *w = find_weight(m, name);
    if (!w) {
        return LM_ENOTFOUND;
    }
    const size_t stride = lm_act_row_bytes(w->type, w->k);
    char *act = malloc(stride * (size_t)n + 1);
    if (!act) {
        return LM_ENOMEM;
    }
    for (int64_t r = 0; r < n; r++) {
        lm_act_convert(w->type, in + r * w->k, act + (size_t)r * stride, w->k);
    }
    int rc = lm_matmul_ex(w->type, w->k, w->m, w->data, act, stride, n, out, w->m, 0, w->m,
                          w->data == m->tok_embd.data ? LM_MM_NO_REPACK : 0u);
    free(act);
    return rc;
}
