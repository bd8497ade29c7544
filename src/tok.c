/*
 * tok.c - the SentencePiece ("llama") tokenizer, token for token identical to llama.cpp's SPM
 * tokenizer (src/llama-vocab.cpp: llama_vocab::impl::load, tokenizer_st_partition, tokenize,
 * llm_tokenizer_spm_session, token_to_piece, detokenize). /work/shared/FORMATS.md section 5
 * states the rules this file follows; the comments below say where llama.cpp leaves a choice.
 *
 * Encoding: the text is first split at special tokens (longest first), then every raw fragment is
 * escaped (' ' -> U+2581, one leading space when the previous fragment was special), split into
 * UTF-8 characters and merged pairwise, always taking the adjacent pair whose concatenation is
 * the vocabulary string with the highest score (leftmost on ties), until no pair is in the
 * vocabulary. Leftover characters that are not tokens fall back to <0xXX> byte tokens.
 *
 * Depends on libc and, in lm_tok_create only, the GGUF reader API. Never prints or aborts on
 * input. A handle is immutable after creation, so it may be shared between threads.
 */
#include "tok_int.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lm_tok {
    int32_t n_vocab;
    char *arena;    /* all token texts, each NUL-terminated */
    uint64_t *off;  /* (n_vocab) offset of each text in arena */
    uint32_t *len;  /* (n_vocab) byte length of each text */
    float *score;   /* (n_vocab) SentencePiece score */
    uint32_t *attr; /* (n_vocab) llama.cpp attribute bits (LM__ATTR_*) */
    uint8_t *eog;   /* (n_vocab) 1 for end-of-generation tokens */
    int32_t *slots; /* (slot_mask + 1) open-addressing table of ids keyed by text; -1 empty */
    uint64_t slot_mask;
    int32_t *special; /* (n_special) CONTROL/USER_DEFINED/UNKNOWN ids, longest text first */
    int32_t n_special;
    int32_t byte_tok[256]; /* byte-fallback token for each byte value, -1 if none */
    int32_t bos, eos, unk; /* -1 when absent */
    bool add_bos, add_eos, add_space_prefix;
};

#define ATTR_SPECIAL (LM__ATTR_CONTROL | LM__ATTR_USER_DEFINED | LM__ATTR_UNKNOWN)

/* ---- small helpers --------------------------------------------------------------------------- */

static void set_err(char *errbuf, size_t errlen, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_err(char *errbuf, size_t errlen, const char *name, const char *fmt, ...)
{
    if (!errbuf || errlen == 0) {
        return;
    }
    int n = snprintf(errbuf, errlen, "%s: ", name ? name : "tokenizer");
    if (n < 0 || (size_t)n >= errlen) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static const char *tok_str(const lm_tok *t, int32_t id)
{
    return t->arena + t->off[id];
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The id whose text is exactly s[0..n), or -1 (llama_vocab::text_to_token). */
static int32_t find_id(const lm_tok *t, const char *s, size_t n)
{
    uint64_t i = hash_bytes(s, n) & t->slot_mask;
    for (;;) {
        int32_t id = t->slots[i];
        if (id < 0) {
            return -1;
        }
        if (t->len[id] == n && memcmp(tok_str(t, id), s, n) == 0) {
            return id;
        }
        i = (i + 1) & t->slot_mask;
    }
}

static int32_t find_cstr(const lm_tok *t, const char *s)
{
    return find_id(t, s, strlen(s));
}

/* ---- construction ---------------------------------------------------------------------------- */

void lm_tok_destroy(lm_tok *t)
{
    if (!t) {
        return;
    }
    free(t->arena);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->attr);
    free(t->eog);
    free(t->slots);
    free(t->special);
    free(t);
}

/* GGUF token_type -> attribute bits (llama_vocab::impl::load). */
static uint32_t attr_from_type(int32_t type)
{
    switch (type) {
    case LM_TOK_UNKNOWN:
        return LM__ATTR_UNKNOWN;
    case LM_TOK_UNUSED:
        return LM__ATTR_UNUSED;
    case LM_TOK_NORMAL:
        return LM__ATTR_NORMAL;
    case LM_TOK_CONTROL:
        return LM__ATTR_CONTROL;
    case LM_TOK_USER_DEFINED:
        return LM__ATTR_USER_DEFINED;
    case LM_TOK_BYTE:
        return LM__ATTR_BYTE;
    default:
        return 0; /* UNDEFINED */
    }
}

static uint64_t text_len(const struct lm__tok_vocab *v, int32_t i)
{
    return v->lens ? v->lens[i] : strlen(v->texts[i]);
}

/* Allocates the per-token arrays and copies texts (empty ones become "[EMPTY_i]"), scores and
 * attributes. */
static int copy_tokens(lm_tok *t, const struct lm__tok_vocab *v)
{
    size_t n = (size_t)v->n_vocab;
    uint64_t total = 0;
    for (int32_t i = 0; i < v->n_vocab; i++) {
        uint64_t l = text_len(v, i);
        total += (l ? l : 32) + 1;
    }
    t->arena = malloc(total);
    t->off = malloc(n * sizeof *t->off);
    t->len = malloc(n * sizeof *t->len);
    t->score = malloc(n * sizeof *t->score);
    t->attr = malloc(n * sizeof *t->attr);
    t->eog = calloc(n, 1);
    if (!t->arena || !t->off || !t->len || !t->score || !t->attr || !t->eog) {
        return LM_ENOMEM;
    }
    uint64_t pos = 0;
    for (int32_t i = 0; i < v->n_vocab; i++) {
        uint64_t l = text_len(v, i);
        t->off[i] = pos;
        if (l == 0) {
            l = (uint64_t)snprintf(t->arena + pos, 32, "[EMPTY_%d]", (int)i);
        } else {
            memcpy(t->arena + pos, v->texts[i], l);
            t->arena[pos + l] = '\0';
        }
        t->len[i] = (uint32_t)l;
        pos += l + 1;
        t->score[i] = v->scores ? v->scores[i] : 0.0f;
        t->attr[i] = v->types ? attr_from_type(v->types[i]) : LM__ATTR_NORMAL;
    }
    return 0;
}

/* Builds the text -> id table; a text that appears twice is an error, as in llama.cpp. */
static int build_index(lm_tok *t, const char *name, char *errbuf, size_t errlen)
{
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)t->n_vocab) {
        cap *= 2;
    }
    t->slots = malloc(cap * sizeof *t->slots);
    if (!t->slots) {
        return LM_ENOMEM;
    }
    memset(t->slots, 0xff, cap * sizeof *t->slots);
    t->slot_mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        int32_t other = find_id(t, tok_str(t, id), t->len[id]);
        if (other >= 0) {
            set_err(errbuf, errlen, name, "duplicate token in vocabulary: '%.*s' has ids %d and %d",
                    (int)(t->len[id] > 64 ? 64 : t->len[id]), tok_str(t, id), (int)other, (int)id);
            return LM_EFORMAT;
        }
        uint64_t i = hash_bytes(tok_str(t, id), t->len[id]) & t->slot_mask;
        while (t->slots[i] >= 0) {
            i = (i + 1) & t->slot_mask;
        }
        t->slots[i] = id;
    }
    return 0;
}

/* BYTE tokens must hold a hex byte at offset 3 ("<0xXX>"); llama.cpp's token_to_byte reads
 * text.substr(3, 2), which throws while building its piece cache when the text is shorter. */
static int check_byte_tokens(const lm_tok *t, const char *name, char *errbuf, size_t errlen)
{
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if ((t->attr[id] & LM__ATTR_BYTE) && t->len[id] < 3) {
            set_err(errbuf, errlen, name, "token %d has type BYTE but its text '%s' is not <0xXX>",
                    (int)id, tok_str(t, id));
            return LM_EFORMAT;
        }
    }
    return 0;
}

static int check_ids(lm_tok *t, const struct lm__tok_vocab *v, char *errbuf, size_t errlen)
{
    const int32_t ids[3] = {v->bos, v->eos, v->unk};
    const char *what[3] = {"bos", "eos", "unknown"};
    for (int i = 0; i < 3; i++) {
        if (ids[i] < -1 || ids[i] >= v->n_vocab) {
            set_err(errbuf, errlen, v->name, "%s token id %d is out of range (%d tokens)", what[i],
                    (int)ids[i], (int)v->n_vocab);
            return LM_EINVAL;
        }
    }
    if (v->add_bos && v->bos < 0) {
        set_err(errbuf, errlen, v->name,
                "tokenizer.ggml.add_bos_token is true, but "
                "tokenizer.ggml.bos_token_id is not set");
        return LM_EFORMAT;
    }
    if (v->add_eos && v->eos < 0) {
        set_err(errbuf, errlen, v->name,
                "tokenizer.ggml.add_eos_token is true, but "
                "tokenizer.ggml.eos_token_id is not set");
        return LM_EFORMAT;
    }
    t->bos = v->bos;
    t->eos = v->eos;
    t->unk = v->unk;
    t->add_bos = v->add_bos;
    t->add_eos = v->add_eos;
    t->add_space_prefix = v->add_space_prefix;
    return 0;
}

/* Full-width vertical bar and SentencePiece space, for DeepSeek-style token texts. */
#define FWBAR              "\xef\xbd\x9c"
#define SPACE              "\xe2\x96\x81"
#define DEEPSEEK_EOS       ("<" FWBAR "end" SPACE "of" SPACE "sentence" FWBAR ">")
#define DEEPSEEK_FIM(word) ("<" FWBAR "fim" SPACE word FWBAR ">")

/* Texts that llama.cpp's load() marks as end-of-generation, forcing the CONTROL attribute. */
static const char *const eog_texts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    DEEPSEEK_EOS,
    "[e~[",
};

/* FIM texts: llama.cpp forces CONTROL on the first match of each kind it meets while walking an
 * unordered_map (an unspecified order); we force it on every match, and pad/repo/sep are EOG. */
static const char *const fim_texts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",    DEEPSEEK_FIM("begin"),
    "<PRE>",          SPACE "<PRE>",  "<|code_prefix|>", "<|prefix|>",
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",    DEEPSEEK_FIM("hole"),
    "<SUF>",          SPACE "<SUF>",  "<|code_suffix|>", "<|suffix|>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>",    DEEPSEEK_FIM("end"),
    "<MID>",          SPACE "<MID>",  "<|code_middle|>", "<|middle|>",
};
static const char *const fim_eog_texts[] = {
    "<|fim_pad|>",   "<fim-pad>",  "<fim_pad>", "<PAD>",      "[PAD]",        "<|fim_repo|>",
    "<|repo_name|>", "<fim-repo>", "<REPO>",    "<reponame>", "<|file_sep|>",
};
/* gpt-oss tokens that llama.cpp always renders (attribute forced to USER_DEFINED). */
static const char *const always_rendered[] = {"<|channel|>", "<|message|>", "<|start|>",
                                              "<|constrain|>"};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void mark_texts(lm_tok *t, const char *const *texts, size_t n, bool eog)
{
    for (size_t i = 0; i < n; i++) {
        int32_t id = find_cstr(t, texts[i]);
        if (id >= 0) {
            t->attr[id] |= LM__ATTR_CONTROL;
            t->eog[id] = (uint8_t)(t->eog[id] | eog);
        }
    }
}

static bool is_eog_text(const lm_tok *t, const char *s)
{
    int32_t id = find_cstr(t, s);
    return id >= 0 && t->eog[id];
}

/* The attribute and EOG fix-ups of llama_vocab::impl::load, in its order. */
static void fix_attrs(lm_tok *t)
{
    mark_texts(t, fim_texts, N_OF(fim_texts), false);
    mark_texts(t, fim_eog_texts, N_OF(fim_eog_texts), true);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if ((t->attr[id] & LM__ATTR_CONTROL) && strstr(tok_str(t, id), "unused")) {
            t->attr[id] |= LM__ATTR_UNUSED;
        }
    }
    mark_texts(t, eog_texts, N_OF(eog_texts), true);
    for (size_t i = 0; i < N_OF(always_rendered); i++) {
        int32_t id = find_cstr(t, always_rendered[i]);
        if (id >= 0) {
            t->attr[id] = LM__ATTR_USER_DEFINED;
        }
    }
    if (t->eos >= 0) {
        t->eog[t->eos] = 1;
    }
    /* o200k_harmony / solar-open: "<|end|>" is not an end of generation there. */
    bool has_call = is_eog_text(t, "<|call|>") || is_eog_text(t, "<|calls|>");
    int32_t end = find_cstr(t, "<|end|>");
    if (end >= 0 && t->eog[end] && has_call &&
        (is_eog_text(t, "<|return|>") || is_eog_text(t, "<|flush|>"))) {
        t->eog[end] = 0;
        t->attr[end] = LM__ATTR_USER_DEFINED;
    }
    /* gemma4 / paddleocr: "</s>" is a normal token when "<|tool_response>" exists. */
    int32_t s_end = find_cstr(t, "</s>");
    if (s_end >= 0 && t->eog[s_end] && is_eog_text(t, "<|tool_response>")) {
        t->eog[s_end] = 0;
        t->attr[s_end] = LM__ATTR_NORMAL;
    }
}

struct len_id {
    uint32_t len;
    int32_t id;
};

/* Longest first; llama.cpp's std::sort leaves equal lengths in an unspecified order, we take
 * the smaller id first. */
static int cmp_len_id(const void *a, const void *b)
{
    const struct len_id *x = a, *y = b;
    if (x->len != y->len) {
        return x->len > y->len ? -1 : 1;
    }
    return (x->id > y->id) - (x->id < y->id);
}

static int build_specials(lm_tok *t)
{
    struct len_id *tmp = malloc((size_t)t->n_vocab * sizeof *tmp);
    t->special = malloc((size_t)t->n_vocab * sizeof *t->special);
    if (!tmp || !t->special) {
        free(tmp);
        return LM_ENOMEM;
    }
    int32_t n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->attr[id] & ATTR_SPECIAL) {
            tmp[n].len = t->len[id];
            tmp[n].id = id;
            n++;
        }
    }
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_len_id);
    for (int32_t i = 0; i < n; i++) {
        t->special[i] = tmp[i].id;
    }
    t->n_special = n;
    free(tmp);
    return 0;
}

/* llama_vocab::byte_to_token for SPM: "<0xXX>" (upper-case hex), else the one-byte string. */
static void build_byte_table(lm_tok *t)
{
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        const char name[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
        const char one = (char)b;
        int32_t id = find_id(t, name, sizeof name);
        t->byte_tok[b] = id >= 0 ? id : find_id(t, &one, 1);
    }
}

/* llama.cpp's per-model attribute rule for SPM-style vocabularies: phi-3 strips the whitespace
 * after special tokens, except after <unk>, <s> and <|endoftext|>. */
static void apply_name_rules(lm_tok *t, const char *model_name)
{
    if (!model_name) {
        return;
    }
    size_t n = strlen(model_name);
    char *low = malloc(n + 1);
    if (!low) {
        return;
    }
    for (size_t i = 0; i <= n; i++) {
        low[i] = (char)tolower((unsigned char)model_name[i]);
    }
    bool phi3 = strstr(low, "phi-3") || strstr(low, "phi3");
    free(low);
    if (!phi3) {
        return;
    }
    for (int32_t i = 0; i < t->n_special; i++) {
        t->attr[t->special[i]] |= LM__ATTR_RSTRIP;
    }
    const char *off[] = {"<unk>", "<s>", "<|endoftext|>"};
    int32_t id = find_cstr(t, "</s>");
    if (id >= 0) {
        t->attr[id] |= LM__ATTR_RSTRIP;
    }
    for (size_t i = 0; i < N_OF(off); i++) {
        id = find_cstr(t, off[i]);
        if (id >= 0) {
            t->attr[id] &= ~(uint32_t)LM__ATTR_RSTRIP;
        }
    }
}

int lm__tok_build(const struct lm__tok_vocab *v, lm_tok **out, char *errbuf, size_t errlen)
{
    if (!out) {
        return LM_EINVAL;
    }
    *out = NULL;
    if (!v || v->n_vocab <= 0 || !v->texts) {
        set_err(errbuf, errlen, v ? v->name : NULL, "the vocabulary has no tokens");
        return LM_EINVAL;
    }
    lm_tok *t = calloc(1, sizeof *t);
    if (!t) {
        set_err(errbuf, errlen, v->name, "out of memory");
        return LM_ENOMEM;
    }
    t->n_vocab = v->n_vocab;
    int rc = copy_tokens(t, v);
    if (rc == 0) {
        rc = build_index(t, v->name, errbuf, errlen);
    }
    if (rc == 0) {
        rc = check_byte_tokens(t, v->name, errbuf, errlen);
    }
    if (rc == 0) {
        rc = check_ids(t, v, errbuf, errlen);
    }
    if (rc == 0) {
        fix_attrs(t);
        build_byte_table(t);
        rc = build_specials(t);
    }
    if (rc < 0) {
        if (rc == LM_ENOMEM) {
            set_err(errbuf, errlen, v->name, "out of memory building the tokenizer");
        }
        lm_tok_destroy(t);
        return rc;
    }
    apply_name_rules(t, v->model_name);
    *out = t;
    return 0;
}

/* ---- accessors ------------------------------------------------------------------------------- */

int32_t lm_tok_n_vocab(const lm_tok *t)
{
    return t ? t->n_vocab : 0;
}

int32_t lm_tok_bos(const lm_tok *t)
{
    return t ? t->bos : -1;
}

int32_t lm_tok_eos(const lm_tok *t)
{
    return t ? t->eos : -1;
}

bool lm_tok_add_bos(const lm_tok *t)
{
    return t && t->add_bos;
}

bool lm_tok_add_eos(const lm_tok *t)
{
    return t && t->add_eos;
}

static bool in_range(const lm_tok *t, int32_t id)
{
    return t && id >= 0 && id < t->n_vocab;
}

const char *lm_tok_text(const lm_tok *t, int32_t id)
{
    return in_range(t, id) ? tok_str(t, id) : NULL;
}

uint32_t lm__tok_attr_bits(const lm_tok *t, int32_t id)
{
    return in_range(t, id) ? t->attr[id] : 0;
}

enum lm_tok_attr lm_tok_attr(const lm_tok *t, int32_t id)
{
    static const struct {
        uint32_t bit;
        enum lm_tok_attr attr;
    } order[] = {
        {LM__ATTR_CONTROL, LM_TOK_CONTROL}, {LM__ATTR_USER_DEFINED, LM_TOK_USER_DEFINED},
        {LM__ATTR_UNKNOWN, LM_TOK_UNKNOWN}, {LM__ATTR_BYTE, LM_TOK_BYTE},
        {LM__ATTR_NORMAL, LM_TOK_NORMAL},   {LM__ATTR_UNUSED, LM_TOK_UNUSED},
    };
    uint32_t a = lm__tok_attr_bits(t, id);
    for (size_t i = 0; i < N_OF(order); i++) {
        if (a & order[i].bit) {
            return order[i].attr;
        }
    }
    return LM_TOK_UNDEFINED;
}

bool lm_tok_is_eog(const lm_tok *t, int32_t id)
{
    return in_range(t, id) && t->eog[id];
}

float lm_tok_score(const lm_tok *t, int32_t id)
{
    return in_range(t, id) ? t->score[id] : 0.0f;
}

int32_t lm_tok_find(const lm_tok *t, const char *text)
{
    return t && text ? find_cstr(t, text) : -1;
}

/* ---- encoding: special-token partition (tokenizer_st_partition) ----------------------------- */

/* A piece of the input: a special token (id >= 0) or raw text [off, off + len). */
struct frag {
    int32_t id;
    size_t off, len;
};

struct frags {
    struct frag *v;
    size_t n, cap;
};

static int frags_push(struct frags *f, int32_t id, size_t off, size_t len)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 16;
        struct frag *nv = realloc(f->v, cap * sizeof *nv);
        if (!nv) {
            return LM_ENOMEM;
        }
        f->v = nv;
        f->cap = cap;
    }
    f->v[f->n].id = id;
    f->v[f->n].off = off;
    f->v[f->n].len = len;
    f->n++;
    return 0;
}

/* First occurrence of needle[0..m) in hay[0..n), or NULL. */
static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m)
{
    if (m == 0 || m > n) {
        return NULL;
    }
    const char *last = hay + (n - m);
    for (const char *p = hay; p <= last; p++) {
        p = memchr(p, needle[0], (size_t)(last - p) + 1);
        if (!p) {
            return NULL;
        }
        if (memcmp(p, needle, m) == 0) {
            return p;
        }
    }
    return NULL;
}

/* Splits the raw fragment fr at every occurrence of special token id, left to right, trimming
 * whitespace next to it for LSTRIP/RSTRIP tokens. */
static int split_raw(const lm_tok *t, const char *text, struct frag fr, int32_t id,
                     struct frags *out)
{
    const char *s = tok_str(t, id);
    size_t m = t->len[id];
    uint32_t a = t->attr[id];
    size_t base = fr.off, end = fr.off + fr.len;
    int rc = 0;
    for (;;) {
        const char *p = find_bytes(text + base, end - base, s, m);
        if (!p) {
            break;
        }
        size_t match = (size_t)(p - text);
        size_t left = match - base;
        while ((a & LM__ATTR_LSTRIP) && left > 0 && isspace((unsigned char)text[base + left - 1])) {
            left--;
        }
        if (left > 0) {
            rc |= frags_push(out, -1, base, left);
        }
        rc |= frags_push(out, id, 0, 0);
        base = match + m;
        while ((a & LM__ATTR_RSTRIP) && base < end && isspace((unsigned char)text[base])) {
            base++;
        }
    }
    if (base < end) {
        rc |= frags_push(out, -1, base, end - base);
    }
    return rc ? LM_ENOMEM : 0;
}

/* Splits text into raw fragments and special tokens. With parse_special false only
 * USER_DEFINED tokens are matched (CONTROL and UNKNOWN ones are left as text). */
static int partition(const lm_tok *t, const char *text, size_t len, bool parse_special,
                     struct frags *out)
{
    struct frags cur = {0}, next = {0};
    int rc = len > 0 ? frags_push(&cur, -1, 0, len) : 0;
    for (int32_t k = 0; rc == 0 && k < t->n_special; k++) {
        int32_t id = t->special[k];
        if (!parse_special && (t->attr[id] & (LM__ATTR_CONTROL | LM__ATTR_UNKNOWN))) {
            continue;
        }
        next.n = 0;
        for (size_t i = 0; rc == 0 && i < cur.n; i++) {
            rc = cur.v[i].id >= 0 ? frags_push(&next, cur.v[i].id, 0, 0)
                                  : split_raw(t, text, cur.v[i], id, &next);
        }
        struct frags tmp = cur;
        cur = next;
        next = tmp;
    }
    free(next.v);
    if (rc < 0) {
        free(cur.v);
        return rc;
    }
    *out = cur;
    return 0;
}

/* ---- encoding: the SPM session (llm_tokenizer_spm_session) ---------------------------------- */

struct out_ids {
    int32_t *ids;
    int64_t cap;
    int64_t n;
};

static void out_push(struct out_ids *o, int32_t id)
{
    if (o->n < o->cap) {
        o->ids[o->n] = id;
    }
    o->n++;
}

/* A run of the escaped text; merged symbols have n = 0 and are unlinked. */
struct sym {
    int32_t prev, next;
    int32_t off, n;
};

struct bigram {
    int32_t left, right;
    float score;
    int32_t size;
};

struct spm {
    const lm_tok *t;
    const char *s;       /* (n_s) escaped text */
    struct sym *sym;     /* (n_sym) */
    struct bigram *heap; /* (cap_heap) binary max-heap of candidate merges */
    int32_t n_heap, cap_heap;
};

/* llm_bigram_spm::comparator: a is popped before b when its score is higher, or equal with the
 * pair further left. */
static bool bigram_before(const struct bigram *a, const struct bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(struct spm *p, struct bigram b)
{
    assert(p->n_heap < p->cap_heap);
    int32_t i = p->n_heap++;
    while (i > 0) {
        int32_t parent = (i - 1) / 2;
        if (!bigram_before(&b, &p->heap[parent])) {
            break;
        }
        p->heap[i] = p->heap[parent];
        i = parent;
    }
    p->heap[i] = b;
}

static struct bigram heap_pop(struct spm *p)
{
    struct bigram top = p->heap[0];
    struct bigram last = p->heap[--p->n_heap];
    int32_t i = 0;
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= p->n_heap) {
            break;
        }
        if (c + 1 < p->n_heap && bigram_before(&p->heap[c + 1], &p->heap[c])) {
            c++;
        }
        if (!bigram_before(&p->heap[c], &last)) {
            break;
        }
        p->heap[i] = p->heap[c];
        i = c;
    }
    if (p->n_heap > 0) {
        p->heap[i] = last;
    }
    return top;
}

/* Queues the pair (left, right) if their concatenated text is a vocabulary string. */
static void try_add_bigram(struct spm *p, int32_t left, int32_t right)
{
    if (left < 0 || right < 0) {
        return;
    }
    int32_t size = p->sym[left].n + p->sym[right].n;
    int32_t id = find_id(p->t, p->s + p->sym[left].off, (size_t)size);
    if (id < 0) {
        return;
    }
    struct bigram b = {left, right, p->t->score[id], size};
    heap_push(p, b);
}

/* Splits the escaped text into UTF-8 characters (length from the lead byte's high nibble,
 * truncated at the end: unicode_len_utf8). Returns the number of symbols. */
static int32_t split_utf8(const char *s, int32_t n, struct sym *sym)
{
    static const int8_t len_of_nibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    int32_t k = 0;
    for (int32_t off = 0; off < n; k++) {
        int32_t l = len_of_nibble[(unsigned char)s[off] >> 4];
        if (l > n - off) {
            l = n - off;
        }
        sym[k].off = off;
        sym[k].n = l;
        sym[k].prev = k - 1;
        off += l;
        sym[k].next = off == n ? -1 : k + 1;
    }
    return k;
}

/* Emits one final symbol. A final symbol is either the result of merges (always a vocabulary
 * string) or one original character. llama.cpp then looks the text up in rev_merge, whose keys
 * are concatenations of two symbols; such a concatenation can never equal a single character of
 * the same text (its first symbol would have to be a character truncated by the end of the text,
 * leaving nothing to its right), so the lookup cannot succeed and is omitted: the character goes
 * straight to byte fallback. */
static int resegment(const struct spm *p, const struct sym *y, struct out_ids *o)
{
    int32_t id = find_id(p->t, p->s + y->off, (size_t)y->n);
    if (id >= 0) {
        out_push(o, id);
        return 0;
    }
    for (int32_t j = 0; j < y->n; j++) {
        int32_t b = p->t->byte_tok[(unsigned char)p->s[y->off + j]];
        if (b < 0) {
            return LM_ENOTFOUND; /* llama.cpp throws from token_to_id.at() */
        }
        out_push(o, b);
    }
    return 0;
}

/* Merges the symbols and emits the result. The heap never holds more than 2 * n_sym entries:
 * n_sym - 1 seeds, then each merge pops one and pushes at most two. */
static int spm_run(struct spm *p, int32_t n_sym, struct out_ids *o)
{
    for (int32_t i = 1; i < n_sym; i++) {
        try_add_bigram(p, i - 1, i);
    }
    while (p->n_heap > 0) {
        struct bigram b = heap_pop(p);
        struct sym *l = &p->sym[b.left], *r = &p->sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) {
            continue; /* stale: one side was merged since */
        }
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) {
            p->sym[r->next].prev = b.left;
        }
        try_add_bigram(p, l->prev, b.left);
        try_add_bigram(p, b.left, l->next);
    }
    for (int32_t i = n_sym > 0 ? 0 : -1; i != -1; i = p->sym[i].next) {
        int rc = resegment(p, &p->sym[i], o);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

/* Copies text with an optional leading space, ' ' -> U+2581 (llama_escape_whitespace). */
static void escape_spaces(const char *text, size_t len, bool prefix, char *s)
{
    size_t k = 0;
    if (prefix) {
        memcpy(s, "\xe2\x96\x81", 3);
        k = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(s + k, "\xe2\x96\x81", 3);
            k += 3;
        } else {
            s[k++] = text[i];
        }
    }
}

/* Escapes and tokenizes one raw fragment. */
static int spm_fragment(const lm_tok *t, const char *text, size_t len, bool prefix,
                        struct out_ids *o)
{
    size_t n_sp = prefix ? 1 : 0;
    for (size_t i = 0; i < len; i++) {
        n_sp += text[i] == ' ';
    }
    size_t n = len + 2 * n_sp + (prefix ? 1 : 0);
    if (n > (size_t)INT32_MAX / 4) {
        return LM_EINVAL; /* keeps every index and the heap size inside int32 */
    }
    struct spm p = {t, NULL, NULL, NULL, 0, 0};
    char *s = malloc(n);
    p.sym = malloc(n * sizeof *p.sym);
    int rc = LM_ENOMEM;
    if (s && p.sym) {
        escape_spaces(text, len, prefix, s);
        p.s = s;
        int32_t n_sym = split_utf8(s, (int32_t)n, p.sym);
        p.cap_heap = 2 * n_sym + 1;
        p.heap = malloc((size_t)p.cap_heap * sizeof *p.heap);
        rc = p.heap ? spm_run(&p, n_sym, o) : LM_ENOMEM;
    }
    free(s);
    free(p.sym);
    free(p.heap);
    return rc;
}

int lm_tok_encode(const lm_tok *t, const char *text, size_t len, bool add_special,
                  bool parse_special, int32_t *ids, int64_t cap, int64_t *n_out)
{
    if (n_out) {
        *n_out = 0;
    }
    if (!t || (!text && len > 0) || cap < 0 || (!ids && cap > 0)) {
        return LM_EINVAL;
    }
    struct frags fr = {0};
    int rc = partition(t, text, len, parse_special, &fr);
    if (rc < 0) {
        return rc;
    }
    struct out_ids o = {ids, cap, 0};
    bool prev_special = true; /* the first fragment gets the space prefix too */
    if (add_special && t->add_bos) {
        out_push(&o, t->bos);
    }
    for (size_t i = 0; rc == 0 && i < fr.n; i++) {
        if (fr.v[i].id >= 0) {
            out_push(&o, fr.v[i].id);
            prev_special = true;
        } else {
            bool prefix = t->add_space_prefix && prev_special;
            rc = spm_fragment(t, text + fr.v[i].off, fr.v[i].len, prefix, &o);
            prev_special = false;
        }
    }
    if (add_special && t->add_eos) {
        out_push(&o, t->eos);
    }
    free(fr.v);
    if (rc < 0) {
        return rc;
    }
    if (n_out) {
        *n_out = o.n;
    }
    return o.n > cap ? LM_ERANGE : 0;
}

/* ---- decoding (token_to_piece, detokenize) --------------------------------------------------- */

/* Writes what fits of a byte stream into (buf, cap) and counts every byte. */
struct sink {
    char *buf;
    size_t cap;
    size_t n;
};

static void sink_put(struct sink *k, const char *p, size_t m)
{
    if (k->n < k->cap) {
        size_t room = k->cap - k->n;
        memcpy(k->buf + k->n, p, m < room ? m : room);
    }
    k->n += m;
}

static void sink_end(struct sink *k)
{
    if (k->n < k->cap) {
        k->buf[k->n] = '\0';
    }
}

/* Copies p[0..m) after skipping up to lstrip leading ASCII spaces. */
static void put_stripped(struct sink *k, const char *p, size_t m, int lstrip)
{
    for (; lstrip > 0 && m > 0 && *p == ' '; lstrip--) {
        p++;
        m--;
    }
    sink_put(k, p, m);
}

/* A NORMAL token: U+2581 -> ' ', then the lstrip rule on the result. */
static void put_unescaped(struct sink *k, const char *p, size_t m, int lstrip)
{
    size_t i = 0, start = 0;
    while (i < m) {
        bool is_sp = m - i >= 3 && memcmp(p + i, "\xe2\x96\x81", 3) == 0;
        if (!is_sp && p[i] != ' ') {
            lstrip = 0;
            i++;
            continue;
        }
        sink_put(k, p + start, i - start);
        if (lstrip > 0) {
            lstrip--;
        } else {
            sink_put(k, " ", 1);
        }
        i += is_sp ? 3 : 1;
        start = i;
    }
    sink_put(k, p + start, m - start);
}

/* llama_vocab::impl::token_to_piece for an SPM vocabulary. */
static void put_piece(const lm_tok *t, int32_t id, bool special, int lstrip, struct sink *k)
{
    uint32_t a = t->attr[id];
    const char *s = tok_str(t, id);
    if (!special && (a & (LM__ATTR_UNKNOWN | LM__ATTR_CONTROL))) {
        return;
    }
    if (a & ATTR_SPECIAL) {
        put_stripped(k, s, t->len[id], lstrip);
    } else if (a & LM__ATTR_NORMAL) {
        put_unescaped(k, s, t->len[id], lstrip);
    } else if (a & LM__ATTR_BYTE) {
        /* token_to_byte: strtol(text.substr(3, 2), 16), truncated to a byte */
        char hex[3] = {s[3], s[3] ? s[4] : '\0', '\0'};
        char byte = (char)(uint8_t)strtol(hex, NULL, 16);
        put_stripped(k, &byte, 1, lstrip);
    }
    /* UNUSED and UNDEFINED tokens have an empty piece. */
}

int64_t lm_tok_piece(const lm_tok *t, int32_t id, bool special, char *buf, size_t cap)
{
    if (!in_range(t, id) || (!buf && cap > 0)) {
        return LM_EINVAL;
    }
    struct sink k = {buf, cap, 0};
    put_piece(t, id, special, 0, &k);
    sink_end(&k);
    return (int64_t)k.n;
}

int64_t lm_tok_decode(const lm_tok *t, const int32_t *ids, int64_t n, bool remove_special,
                      bool unparse_special, char *buf, size_t cap)
{
    if (!t || n < 0 || (!ids && n > 0) || (!buf && cap > 0)) {
        return LM_EINVAL;
    }
    for (int64_t i = 0; i < n; i++) {
        if (!in_range(t, ids[i])) {
            return LM_EINVAL;
        }
    }
    bool remove_space = t->add_space_prefix;
    if (remove_special && t->add_bos && n > 0 && ids[0] == t->bos) {
        remove_space = false; /* the BOS consumed the strip */
        ids++;
        n--;
    }
    if (remove_special && t->add_eos && n > 0 && ids[n - 1] == t->eos) {
        n--;
    }
    struct sink k = {buf, cap, 0};
    for (int64_t i = 0; i < n; i++) {
        put_piece(t, ids[i], unparse_special, remove_space ? 1 : 0, &k);
        remove_space = false; /* only the first token, even when its piece is empty */
    }
    sink_end(&k);
    return (int64_t)k.n;
}

/* ---- lm_tok_create: tokenizer.ggml.* metadata (llama_vocab::impl::load) --------------------- */

/* The metadata as read from the file; pointers into the mapping or malloc'd copies. */
struct meta {
    const char *path;
    int32_t n;          /* number of tokens */
    const char **texts; /* (n) into the mapping, not NUL-terminated */
    uint64_t *lens;     /* (n) */
    float *scores;      /* (n) or NULL */
    int32_t *types;     /* (n) or NULL */
    char *model_name;   /* general.name, NUL-terminated copy, or NULL */
    char *errbuf;
    size_t errlen;
};

static int meta_tokens(const lm_gguf *g, struct meta *m)
{
    static const char key[] = "tokenizer.ggml.tokens";
    int64_t k = lm_gguf_find_key(g, key);
    if (k < 0) {
        set_err(m->errbuf, m->errlen, m->path, "%s is missing", key);
        return LM_ENOTFOUND;
    }
    if (lm_gguf_kv_type(g, k) != LM_GGUF_ARRAY || lm_gguf_kv_arr_type(g, k) != LM_GGUF_STRING) {
        set_err(m->errbuf, m->errlen, m->path, "%s must be an array of strings", key);
        return LM_ETYPE;
    }
    uint64_t n = lm_gguf_kv_arr_n(g, k);
    if (n == 0 || n > (uint64_t)INT32_MAX) {
        set_err(m->errbuf, m->errlen, m->path, "%s has %llu entries (expected 1 to %d)", key,
                (unsigned long long)n, (int)INT32_MAX);
        return LM_EFORMAT;
    }
    m->n = (int32_t)n;
    m->texts = malloc(n * sizeof *m->texts);
    m->lens = malloc(n * sizeof *m->lens);
    if (!m->texts || !m->lens) {
        set_err(m->errbuf, m->errlen, m->path, "out of memory reading %s", key);
        return LM_ENOMEM;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (lm_gguf_get_arr_str(g, key, i, &m->texts[i], &m->lens[i]) < 0) {
            set_err(m->errbuf, m->errlen, m->path, "cannot read %s[%llu]", key,
                    (unsigned long long)i);
            return LM_EFORMAT;
        }
    }
    return 0;
}

/* An optional per-token array of 4-byte elements of type want; *out stays NULL if absent. */
static int meta_array(const lm_gguf *g, struct meta *m, const char *key, enum lm_gguf_vtype want,
                      const char *want_name, void **out)
{
    int64_t k = lm_gguf_find_key(g, key);
    if (k < 0) {
        return 0;
    }
    enum lm_gguf_vtype elem = LM_GGUF_VTYPE_COUNT;
    uint64_t n = 0;
    const void *data = NULL;
    if (lm_gguf_kv_type(g, k) != LM_GGUF_ARRAY || lm_gguf_kv_arr_type(g, k) != want ||
        lm_gguf_get_arr(g, key, &elem, &n, &data) < 0 || elem != want) {
        set_err(m->errbuf, m->errlen, m->path, "%s must be an array of %s", key, want_name);
        return LM_ETYPE;
    }
    if (n != (uint64_t)m->n) {
        set_err(m->errbuf, m->errlen, m->path, "%s has %llu entries but there are %d tokens", key,
                (unsigned long long)n, (int)m->n);
        return LM_EFORMAT;
    }
    *out = malloc(n * 4);
    if (!*out) {
        set_err(m->errbuf, m->errlen, m->path, "out of memory reading %s", key);
        return LM_ENOMEM;
    }
    memcpy(*out, data, n * 4); /* the mapping may be unaligned */
    return 0;
}

/* A special token id: absent keeps the default, an out-of-range value keeps it too (llama.cpp
 * warns "bad special token" and goes on), a wrong type is an error (strict typing). */
static int meta_id(const lm_gguf *g, struct meta *m, const char *key, int32_t *id)
{
    uint32_t v = 0;
    int rc = lm_gguf_get_u32(g, key, &v);
    if (rc == LM_ENOTFOUND) {
        return 0;
    }
    if (rc < 0) {
        set_err(m->errbuf, m->errlen, m->path, "%s must be a u32", key);
        return LM_ETYPE;
    }
    if (v < (uint32_t)m->n) {
        *id = (int32_t)v;
    }
    return 0;
}

static int meta_bool(const lm_gguf *g, struct meta *m, const char *key, bool *val)
{
    int rc = lm_gguf_get_bool(g, key, val);
    if (rc == LM_ENOTFOUND) {
        return 0;
    }
    if (rc < 0) {
        set_err(m->errbuf, m->errlen, m->path, "%s must be a bool", key);
        return LM_ETYPE;
    }
    return 0;
}

static int meta_model(const lm_gguf *g, struct meta *m)
{
    const char *s = NULL;
    uint64_t n = 0;
    int rc = lm_gguf_get_str(g, "tokenizer.ggml.model", &s, &n);
    if (rc == LM_ENOTFOUND) {
        set_err(m->errbuf, m->errlen, m->path, "tokenizer.ggml.model is missing (no vocabulary)");
        return rc;
    }
    if (rc < 0) {
        set_err(m->errbuf, m->errlen, m->path, "tokenizer.ggml.model must be a string");
        return LM_ETYPE;
    }
    if (n != 5 || memcmp(s, "llama", 5) != 0) {
        set_err(m->errbuf, m->errlen, m->path,
                "tokenizer '%.*s' is not supported (only SentencePiece 'llama' vocabularies)",
                (int)(n > 32 ? 32 : n), s);
        return LM_EUNSUPPORTED;
    }
    if (lm_gguf_get_str(g, "general.name", &s, &n) == 0 && n < 4096) {
        m->model_name = malloc(n + 1);
        if (m->model_name) {
            memcpy(m->model_name, s, n);
            m->model_name[n] = '\0';
        }
    }
    return 0;
}

/* Reads everything into v (defaults as llama.cpp's SPM branch: bos 1, eos 2, unk 0, disabled
 * when out of range; add_bos true, add_eos false, add_space_prefix true). */
static int meta_read(const lm_gguf *g, struct meta *m, struct lm__tok_vocab *v)
{
    int rc = meta_model(g, m);
    if (rc == 0) {
        rc = meta_tokens(g, m);
    }
    if (rc == 0) {
        rc = meta_array(g, m, "tokenizer.ggml.scores", LM_GGUF_F32, "f32", (void **)&m->scores);
    }
    if (rc == 0) {
        rc = meta_array(g, m, "tokenizer.ggml.token_type", LM_GGUF_I32, "i32", (void **)&m->types);
    }
    if (rc < 0) {
        return rc;
    }
    v->n_vocab = m->n;
    v->bos = m->n > 1 ? 1 : -1;
    v->eos = m->n > 2 ? 2 : -1;
    v->unk = 0;
    v->add_bos = true;
    v->add_eos = false;
    v->add_space_prefix = true;
    rc = meta_id(g, m, "tokenizer.ggml.bos_token_id", &v->bos);
    rc = rc < 0 ? rc : meta_id(g, m, "tokenizer.ggml.eos_token_id", &v->eos);
    rc = rc < 0 ? rc : meta_id(g, m, "tokenizer.ggml.unknown_token_id", &v->unk);
    rc = rc < 0 ? rc : meta_bool(g, m, "tokenizer.ggml.add_bos_token", &v->add_bos);
    rc = rc < 0 ? rc : meta_bool(g, m, "tokenizer.ggml.add_eos_token", &v->add_eos);
    rc = rc < 0 ? rc : meta_bool(g, m, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix);
    v->texts = m->texts;
    v->lens = m->lens;
    v->scores = m->scores;
    v->types = m->types;
    v->model_name = m->model_name;
    v->name = m->path;
    return rc;
}

int lm_tok_create(const lm_gguf *g, lm_tok **out, char *errbuf, size_t errlen)
{
    if (!out) {
        return LM_EINVAL;
    }
    *out = NULL;
    if (!g) {
        set_err(errbuf, errlen, NULL, "no model file");
        return LM_EINVAL;
    }
    struct meta m = {0};
    struct lm__tok_vocab v = {0};
    m.path = lm_gguf_path(g);
    m.errbuf = errbuf;
    m.errlen = errlen;
    int rc = meta_read(g, &m, &v);
    if (rc == 0) {
        rc = lm__tok_build(&v, out, errbuf, errlen);
    }
    free(m.texts);
    free(m.lens);
    free(m.scores);
    free(m.types);
    free(m.model_name);
    return rc;
}
