/*
 * mkmodel.c - writes deterministic synthetic llama models (lltrace mkmodel): the presets'
 * hyper-parameters, a generated SentencePiece vocabulary, and seeded weights, through the GGUF
 * writer.
 *
 * Every row of every tensor has its own PRNG stream (seed, tensor index, row), so the bytes do
 * not depend on how rows are split between threads. Values are "normal-ish" (the sum of four
 * uniforms) with std 1/sqrt(fan_in) for matrices and 1 + small noise for norms, so a forward
 * pass stays finite. Depends on the GGUF writer, lm_quantize_row and pthreads.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm.h"

#define N_THREADS 2

struct preset {
    const char *name;
    uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    bool chat; /* has the zephyr chat template */
};

static const struct preset presets[] = {
    {"tiny", 64, 2, 4, 2, 192, 512, 256, false},
    {"stories", 64, 5, 8, 4, 172, 512, 512, false},
    {"small", 512, 2, 8, 4, 1408, 512, 512, false},
    {"tinyllama-1.1b", 2048, 22, 32, 4, 5632, 32000, 2048, true},
};

/* TinyLlama-1.1B-Chat-v1.0's template. */
static const char zephyr_template[] = "{% for message in messages %}\n"
                                      "{% if message['role'] == 'user' %}\n"
                                      "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
                                      "{% elif message['role'] == 'system' %}\n"
                                      "{{ '<|system|>\n' + message['content'] + eos_token }}\n"
                                      "{% elif message['role'] == 'assistant' %}\n"
                                      "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
                                      "{% endif %}\n"
                                      "{% if loop.last and add_generation_prompt %}\n"
                                      "{{ '<|assistant|>' }}\n"
                                      "{% endif %}\n"
                                      "{% endfor %}";

/* ---- vocabulary -------------------------------------------------------------------------------
 */

/* Frequent words of simple English stories, most frequent first: their "▁"-prefixed prefixes
 * become pieces, so the score-driven SPM merges build whole words. */
static const char *const words[] = {
    "the",   "a",      "and",   "to",    "was",   "he",    "she",    "it",     "they",   "of",
    "in",    "her",    "his",   "said",  "with",  "on",    "you",    "that",   "had",    "for",
    "day",   "one",    "there", "upon",  "time",  "Once",  "little", "girl",   "boy",    "named",
    "Lily",  "tom",    "big",   "happy", "play",  "went",  "saw",    "wanted", "very",   "mom",
    "dad",   "friend", "dog",   "cat",   "tree",  "park",  "ball",   "toy",    "sun",    "fun",
    "but",   "so",     "not",   "is",    "be",    "at",    "all",    "up",     "out",    "then",
    "when",  "can",    "help",  "look",  "like",  "loved", "go",     "home",   "red",    "blue",
    "small", "new",    "good",  "bird",  "water", "run",   "jump",   "smile",  "sad",    "together",
    "every", "what",   "do",    "no",    "from",  "we",    "my",     "me",     "him",    "them",
    "after", "back",   "down",  "know",  "see",   "come",  "made",   "find",   "thing",  "way",
    "old",   "man",    "king",  "car",   "box",   "cake",  "hat",    "flower", "garden", "bright",
    "The",   "One",    "She",   "He",    "They",  "Tom",   "It",
};

struct vocab {
    char **tok;     /* (n) NUL-terminated pieces */
    float *score;   /* (n) */
    int32_t *type;  /* (n) enum lm_tok_attr */
    int64_t n, cap; /* cap = the preset's n_vocab */
    int64_t *ht;    /* open-addressing set of token indices, -1 = empty */
    uint64_t ht_mask;
    int64_t n_pieces; /* normal pieces so far (their score is -n_pieces) */
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    }
    return h;
}

/* Adds a piece unless present or the vocabulary is full. Returns 0, or LM_ENOMEM. */
static int voc_add(struct vocab *v, const char *s, int type)
{
    uint64_t h = fnv1a(s) & v->ht_mask;
    while (v->ht[h] >= 0) {
        if (strcmp(v->tok[v->ht[h]], s) == 0) {
            return 0;
        }
        h = (h + 1) & v->ht_mask;
    }
    if (v->n == v->cap) {
        return 0;
    }
    v->tok[v->n] = strdup(s);
    if (!v->tok[v->n]) {
        return LM_ENOMEM;
    }
    v->type[v->n] = type;
    v->score[v->n] = type == LM_TOK_NORMAL ? -(float)(++v->n_pieces) : 0.0f;
    v->ht[h] = v->n++;
    return 0;
}

/* Adds every prefix (2 characters or more) of "▁" + word. */
static int voc_add_word(struct vocab *v, const char *word)
{
    char buf[64];
    size_t len = strlen(word);
    int rc = 0;
    for (size_t k = 1; k <= len && rc == 0; k++) {
        snprintf(buf, sizeof buf, "\xe2\x96\x81%.*s", (int)k, word);
        rc = voc_add(v, buf, LM_TOK_NORMAL);
    }
    return rc;
}

/* Letter n-grams, alone and after "▁", filling what the words left (big vocabularies). */
static int voc_fill_ngrams(struct vocab *v)
{
    char buf[16];
    int rc = 0;
    for (int x = 0; x < 26 && rc == 0; x++) {
        snprintf(buf, sizeof buf, "\xe2\x96\x81%c", 'a' + x);
        rc = voc_add(v, buf, LM_TOK_NORMAL);
    }
    for (int len = 2; len <= 4 && rc == 0 && v->n < v->cap; len++) {
        int64_t count = len == 2 ? 26 * 26 : len == 3 ? 26 * 26 * 26 : 26 * 26 * 26 * 26;
        for (int64_t i = 0; i < count && rc == 0 && v->n < v->cap; i++) {
            char g[8];
            int64_t r = i;
            for (int c = len - 1; c >= 0; c--) {
                g[c] = (char)('a' + r % 26);
                r /= 26;
            }
            g[len] = 0;
            rc = voc_add(v, g, LM_TOK_NORMAL);
            snprintf(buf, sizeof buf, "\xe2\x96\x81%s", g);
            rc = rc < 0 ? rc : voc_add(v, buf, LM_TOK_NORMAL);
        }
    }
    return rc;
}

static int voc_build(struct vocab *v, int64_t n_vocab)
{
    static const char base[] = "abcdefghijklmnopqrstuvwxyz.,!?'\"-";
    static const char more[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    char buf[16];
    uint64_t hcap = 1;
    while (hcap < (uint64_t)n_vocab * 2) {
        hcap *= 2;
    }
    v->cap = n_vocab;
    v->ht_mask = hcap - 1;
    v->tok = calloc((size_t)n_vocab, sizeof *v->tok);
    v->score = calloc((size_t)n_vocab, sizeof *v->score);
    v->type = calloc((size_t)n_vocab, sizeof *v->type);
    v->ht = malloc(hcap * sizeof *v->ht);
    if (!v->tok || !v->score || !v->type || !v->ht) {
        return LM_ENOMEM;
    }
    memset(v->ht, 0xff, hcap * sizeof *v->ht);
    int rc = voc_add(v, "<unk>", LM_TOK_UNKNOWN);
    rc = rc < 0 ? rc : voc_add(v, "<s>", LM_TOK_CONTROL);
    rc = rc < 0 ? rc : voc_add(v, "</s>", LM_TOK_CONTROL);
    for (int b = 0; b < 256 && rc == 0; b++) {
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        rc = voc_add(v, buf, LM_TOK_BYTE);
    }
    rc = rc < 0 ? rc : voc_add(v, "\xe2\x96\x81", LM_TOK_NORMAL);
    for (const char *c = base; *c && rc == 0; c++) {
        rc = voc_add(v, (char[2]){*c, 0}, LM_TOK_NORMAL);
    }
    for (size_t i = 0; i < sizeof words / sizeof words[0] && rc == 0; i++) {
        rc = voc_add_word(v, words[i]);
    }
    for (const char *c = more; *c && rc == 0; c++) {
        rc = voc_add(v, (char[2]){*c, 0}, LM_TOK_NORMAL);
    }
    return rc < 0 ? rc : voc_fill_ngrams(v);
}

static void voc_free(struct vocab *v)
{
    for (int64_t i = 0; v->tok && i < v->n; i++) {
        free(v->tok[i]);
    }
    free(v->tok);
    free(v->score);
    free(v->type);
    free(v->ht);
}

/* ---- tensors ----------------------------------------------------------------------------------
 */

struct tdesc {
    char name[64];
    int n_dims;
    int64_t ne[2]; /* (ne0 = fan_in, ne1 = rows) */
    int type;
    float mean, std;
};

/* The type a matrix with rows of ne0 elements gets when `want` was asked for. */
static int pick_type(int want, int64_t ne0)
{
    if (ne0 % lm_type_block_size(want) == 0) {
        return want;
    }
    switch (want) { /* llama-quantize's fallbacks for rows that do not fill a K-quant block */
    case LM_TYPE_Q4_K:
    case LM_TYPE_Q2_K:
    case LM_TYPE_Q3_K:
        want = LM_TYPE_Q5_0;
        break;
    case LM_TYPE_Q5_K:
        want = LM_TYPE_Q5_1;
        break;
    case LM_TYPE_Q6_K:
        want = LM_TYPE_Q8_0;
        break;
    default:
        break;
    }
    return ne0 % lm_type_block_size(want) == 0 ? want : LM_TYPE_F32;
}

static void tdesc_set(struct tdesc *t, const char *name, int64_t ne0, int64_t ne1, int type)
{
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = ne1 > 0 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1 > 0 ? ne1 : 1;
    t->type = ne1 > 0 ? pick_type(type, ne0) : LM_TYPE_F32;
    t->mean = ne1 > 0 ? 0.0f : 1.0f;
    t->std = ne1 > 0 ? 1.0f / sqrtf((float)ne0) : 0.05f;
}

/* The tensor list in file order: token_embd, the layers, output_norm, output. */
static int64_t tdesc_build(const struct preset *p, int type, struct tdesc *t)
{
    static const char *const names[9] = {"attn_norm", "attn_q",      "attn_k",
                                         "attn_v",    "attn_output", "ffn_norm",
                                         "ffn_gate",  "ffn_up",      "ffn_down"};
    int64_t e = p->n_embd, kv = (int64_t)p->n_head_kv * (p->n_embd / p->n_head), ff = p->n_ff;
    const int64_t shape[9][2] = {{e, 0}, {e, e},  {e, kv}, {e, kv}, {e, e},
                                 {e, 0}, {e, ff}, {e, ff}, {ff, e}};
    int64_t n = 0;
    char name[64];
    tdesc_set(&t[n++], "token_embd.weight", e, p->n_vocab, type);
    t[0].std = 1.0f; /* the embedding dominates the residual stream, as in trained models */
    for (uint32_t l = 0; l < p->n_layer; l++) {
        for (int k = 0; k < 9; k++) {
            snprintf(name, sizeof name, "blk.%" PRIu32 ".%s.weight", l, names[k]);
            tdesc_set(&t[n++], name, shape[k][0], shape[k][1], type);
        }
    }
    tdesc_set(&t[n++], "output_norm.weight", e, 0, type);
    tdesc_set(&t[n++], "output.weight", e, p->n_vocab, type);
    return n;
}

/* ---- weights ----------------------------------------------------------------------------------
 */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Row r of tensor ti: n values, mean + std * (sum of four 16-bit uniforms, standardized). */
static void gen_row(uint64_t seed, int64_t ti, int64_t r, const struct tdesc *t, float *out)
{
    uint64_t s = seed ^ ((uint64_t)(ti + 1) * 0xd1b54a32d192ed03ull) ^
                 ((uint64_t)(r + 1) * 0x8cb92ba72f3d8dd7ull);
    const float k = t->std / 37837.23f; /* std of the sum: 65536 * sqrt(4 / 12) */
    splitmix64(&s);
    for (int64_t i = 0; i < t->ne[0]; i++) {
        uint64_t z = splitmix64(&s);
        int32_t sum = (int32_t)(z & 0xffff) + (int32_t)((z >> 16) & 0xffff) +
                      (int32_t)((z >> 32) & 0xffff) + (int32_t)(z >> 48);
        out[i] = t->mean + (float)(sum - 131070) * k;
    }
}

struct gen_job {
    const struct tdesc *t;
    int64_t ti;
    uint64_t seed;
    uint8_t *out;   /* (ne1, row_bytes) */
    int64_t r0, r1; /* rows [r0, r1) */
    int rc;
};

static void *gen_rows(void *arg)
{
    struct gen_job *j = arg;
    int64_t rb = lm_type_row_bytes(j->t->type, j->t->ne[0]);
    float *row = malloc((size_t)j->t->ne[0] * sizeof *row);
    if (!row) {
        j->rc = LM_ENOMEM;
        return NULL;
    }
    for (int64_t r = j->r0; r < j->r1 && j->rc == 0; r++) {
        gen_row(j->seed, j->ti, r, j->t, row);
        j->rc = lm_quantize_row(j->t->type, row, j->out + r * rb, j->t->ne[0]);
    }
    free(row);
    return NULL;
}

/* Fills buf with tensor ti, split between N_THREADS threads. */
static int gen_tensor(const struct tdesc *t, int64_t ti, uint64_t seed, uint8_t *buf)
{
    struct gen_job jobs[N_THREADS];
    pthread_t th[N_THREADS];
    bool started[N_THREADS] = {false};
    int rc = 0;
    for (int k = 0; k < N_THREADS; k++) {
        jobs[k] = (struct gen_job){
            t, ti, seed, buf, t->ne[1] * k / N_THREADS, t->ne[1] * (k + 1) / N_THREADS, 0};
        if (k > 0 && t->ne[1] >= 64) {
            started[k] = pthread_create(&th[k], NULL, gen_rows, &jobs[k]) == 0;
        }
        if (k > 0 && !started[k]) {
            gen_rows(&jobs[k]); /* small tensor, or no thread: do it here */
        }
    }
    gen_rows(&jobs[0]);
    for (int k = 0; k < N_THREADS; k++) {
        if (started[k]) {
            pthread_join(th[k], NULL);
        }
        rc = rc < 0 ? rc : jobs[k].rc;
    }
    return rc;
}

/* ---- the file ---------------------------------------------------------------------------------
 */

/* llama.cpp's general.file_type (enum llama_ftype) for a matrix type. */
static uint32_t file_type(int type)
{
    switch (type) {
    case LM_TYPE_F16:
        return 1;
    case LM_TYPE_Q4_0:
        return 2;
    case LM_TYPE_Q4_1:
        return 3;
    case LM_TYPE_Q8_0:
        return 7;
    case LM_TYPE_Q5_0:
        return 8;
    case LM_TYPE_Q5_1:
        return 9;
    case LM_TYPE_Q2_K:
        return 10;
    case LM_TYPE_Q3_K:
        return 11;
    case LM_TYPE_Q4_K:
        return 14;
    case LM_TYPE_Q5_K:
        return 16;
    case LM_TYPE_Q6_K:
        return 18;
    case LM_TYPE_BF16:
        return 32;
    default:
        return 0;
    }
}

static int write_hparams(lm_gguf_writer *w, const struct preset *p, int type)
{
    char name[64];
    snprintf(name, sizeof name, "lltrace-synthetic-%s", p->name);
    int rc = lm_gguf_writer_set_str(w, "general.architecture", "llama");
    rc = rc < 0 ? rc : lm_gguf_writer_set_str(w, "general.name", name);
    rc = rc < 0 ? rc : lm_gguf_writer_set_u32(w, "general.file_type", file_type(type));
    if (type != LM_TYPE_F32 && type != LM_TYPE_F16 && type != LM_TYPE_BF16) {
        rc = rc < 0 ? rc : lm_gguf_writer_set_u32(w, "general.quantization_version", 2);
    }
    rc = rc < 0 ? rc : lm_gguf_writer_set_u32(w, "llama.context_length", p->n_ctx);
    rc = rc < 0 ? rc : lm_gguf_writer_set_u32(w, "llama.embedding_length", p->n_embd);
    rc = rc < 0 ? rc : lm_gguf_writer_set_u32(w, "llama.block_count", p->n_layer);
    rc = rc < 0 ? rc : lm_gguf_writer_set_u32(w, "llama.feed_forward_length", p->n_ff);
    rc = rc < 0 ? rc
                : lm_gguf_writer_set_u32(w, "llama.rope.dimension_count", p->n_embd / p->n_head);
    rc = rc < 0 ? rc : lm_gguf_writer_set_u32(w, "llama.attention.head_count", p->n_head);
    rc = rc < 0 ? rc : lm_gguf_writer_set_u32(w, "llama.attention.head_count_kv", p->n_head_kv);
    rc = rc < 0 ? rc : lm_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    rc = rc < 0 ? rc : lm_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    rc = rc < 0 ? rc : lm_gguf_writer_set_u32(w, "llama.vocab_size", p->n_vocab);
    return rc;
}

static int write_vocab(lm_gguf_writer *w, const struct preset *p, const struct vocab *v)
{
    int rc = lm_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    rc = rc < 0 ? rc
                : lm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens",
                                             (const char *const *)v->tok, (uint64_t)v->n);
    rc = rc < 0 ? rc
                : lm_gguf_writer_set_arr(w, "tokenizer.ggml.scores", LM_GGUF_F32, v->score,
                                         (uint64_t)v->n);
    rc = rc < 0 ? rc
                : lm_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", LM_GGUF_I32, v->type,
                                         (uint64_t)v->n);
    rc = rc < 0 ? rc : lm_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    rc = rc < 0 ? rc : lm_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    rc = rc < 0 ? rc : lm_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    rc = rc < 0 ? rc : lm_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    rc = rc < 0 ? rc : lm_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    if (p->chat) {
        rc = rc < 0 ? rc : lm_gguf_writer_set_str(w, "tokenizer.chat_template", zephyr_template);
    }
    return rc;
}

static uint64_t tensor_bytes(const struct tdesc *t)
{
    return (uint64_t)(lm_type_row_bytes(t->type, t->ne[0]) * t->ne[1]);
}

/* One tensor's data handed to the writer thread. */
struct write_job {
    lm_gguf_writer *w;
    const uint8_t *data;
    uint64_t n_bytes;
    int rc;
};

static void *write_data(void *arg)
{
    struct write_job *j = arg;
    j->rc = lm_gguf_writer_write_tensor_data(j->w, j->data, j->n_bytes);
    return NULL;
}

/* Declares the tensors, then generates tensor i + 1 into one buffer while a thread writes
 * tensor i from the other, so the disk and the generator work at the same time. */
static int write_tensors(lm_gguf_writer *w, const struct tdesc *t, int64_t n, uint64_t seed)
{
    uint64_t max_bytes = 0;
    uint8_t *buf[2] = {NULL, NULL};
    struct write_job job = {.w = w};
    pthread_t th;
    bool writing = false;
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        rc = lm_gguf_writer_add_tensor(w, t[i].name, t[i].type, t[i].n_dims, t[i].ne);
        max_bytes = tensor_bytes(&t[i]) > max_bytes ? tensor_bytes(&t[i]) : max_bytes;
    }
    rc = rc < 0 ? rc : lm_gguf_writer_begin_data(w);
    buf[0] = malloc(max_bytes);
    buf[1] = malloc(max_bytes);
    rc = rc < 0 ? rc : !buf[0] || !buf[1] ? LM_ENOMEM : 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        rc = gen_tensor(&t[i], i, seed, buf[i % 2]);
        if (writing) {
            pthread_join(th, NULL);
            writing = false;
            rc = rc < 0 ? rc : job.rc;
        }
        job = (struct write_job){w, buf[i % 2], tensor_bytes(&t[i]), 0};
        writing = rc == 0 && pthread_create(&th, NULL, write_data, &job) == 0;
        if (rc == 0 && !writing) {
            write_data(&job); /* no thread: write it here */
            rc = job.rc;
        }
    }
    if (writing) {
        pthread_join(th, NULL);
        rc = rc < 0 ? rc : job.rc;
    }
    free(buf[0]);
    free(buf[1]);
    return rc;
}

static int check_opts(const char *path, const struct lm_mkmodel_opts *o, const struct preset **out,
                      char *errbuf, size_t errlen)
{
    const char *name = o->preset ? o->preset : "tiny";
    float zero[256] = {0};
    uint8_t scratch[512];
    *out = NULL;
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(presets[i].name, name) == 0) {
            *out = &presets[i];
        }
    }
    if (!*out) {
        snprintf(errbuf, errlen, "%s: unknown preset '%s' (tiny, stories, small, tinyllama-1.1b)",
                 path, name);
        return LM_EINVAL;
    }
    /* A type is usable when lm_quantize_row can write one block of it. */
    int64_t blk = lm_type_block_size(o->type);
    if (blk <= 0 || lm_quantize_row(o->type, zero, scratch, blk) < 0) {
        snprintf(errbuf, errlen, "%s: cannot write weights of type %s", path,
                 lm_type_name(o->type) ? lm_type_name(o->type) : "(unknown)");
        return LM_EUNSUPPORTED;
    }
    return 0;
}

int lm_mkmodel_write(const char *path, const struct lm_mkmodel_opts *o, char *errbuf, size_t errlen)
{
    static const struct lm_mkmodel_opts defaults = {"tiny", LM_TYPE_F32, 0};
    const struct preset *p;
    struct vocab v = {0};
    lm_gguf_writer *w = NULL;
    char dummy[LM_ERRBUF_SIZE];
    if (!errbuf || errlen == 0) {
        errbuf = dummy;
        errlen = sizeof dummy;
    }
    o = o ? o : &defaults;
    int rc = check_opts(path, o, &p, errbuf, errlen);
    if (rc < 0) {
        return rc;
    }
    struct tdesc *t = calloc((size_t)p->n_layer * 9 + 3, sizeof *t);
    int64_t n_t = t ? tdesc_build(p, o->type, t) : 0;
    rc = t ? voc_build(&v, p->n_vocab) : LM_ENOMEM;
    rc = rc < 0 ? rc : lm_gguf_writer_open(path, &w, errbuf, errlen);
    rc = rc < 0 ? rc : write_hparams(w, p, o->type);
    rc = rc < 0 ? rc : write_vocab(w, p, &v);
    rc = rc < 0 ? rc : write_tensors(w, t, n_t, o->seed);
    rc = rc < 0 ? rc : lm_gguf_writer_finish(w);
    if (rc < 0 && w && lm_gguf_writer_errmsg(w)[0]) {
        snprintf(errbuf, errlen, "%s", lm_gguf_writer_errmsg(w));
    } else if (rc < 0 && (w || rc == LM_ENOMEM)) {
        snprintf(errbuf, errlen, "%s: %s", path, lm_strerror(rc));
    }
    lm_gguf_writer_close(w);
    voc_free(&v);
    free(t);
    return rc;
}
