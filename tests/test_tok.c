/*
 * test_tok.c - the SentencePiece tokenizer on small vocabularies built in the test (through the
 * internal array constructor lm__tok_build, and through GGUF files written with the GGUF writer
 * for lm_tok_create): merges by score, the leftmost-wins tie rule, byte fallback, special tokens,
 * the space-prefix rules, detokenization, buffer sizes, invalid UTF-8, the metadata errors, and a
 * randomized comparison of the heap-based merge loop with a naive quadratic one.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm.h"
#include "testutil.h"
#include "tok_int.h"

#define SP "\xe2\x96\x81" /* U+2581, SentencePiece's space */

/* ---- a vocabulary builder ------------------------------------------------------------------- */

struct vb {
    const char *texts[2048];
    float scores[2048];
    int32_t types[2048];
    int32_t n;
};

static char byte_names[256][8];

static int32_t vb_add(struct vb *b, const char *text, float score, int32_t type)
{
    ck_assert_int_lt(b->n, 2048);
    b->texts[b->n] = text;
    b->scores[b->n] = score;
    b->types[b->n] = type;
    return b->n++;
}

/* <unk> <s> </s> and the 256 byte tokens <0x00>..<0xFF> (ids 3..258), as llama vocabularies. */
static void vb_base(struct vb *b, bool bytes)
{
    b->n = 0;
    vb_add(b, "<unk>", 0, LM_TOK_UNKNOWN);
    vb_add(b, "<s>", 0, LM_TOK_CONTROL);
    vb_add(b, "</s>", 0, LM_TOK_CONTROL);
    for (int i = 0; bytes && i < 256; i++) {
        snprintf(byte_names[i], sizeof byte_names[i], "<0x%02X>", i);
        vb_add(b, byte_names[i], 0, LM_TOK_BYTE);
    }
}

static lm_tok *vb_build_opts(struct vb *b, bool add_bos, bool space_prefix, const char *model)
{
    struct lm__tok_vocab v = {0};
    char err[LM_ERRBUF_SIZE] = "";
    lm_tok *t = NULL;
    v.n_vocab = b->n;
    v.texts = b->texts;
    v.scores = b->scores;
    v.types = b->types;
    v.bos = 1;
    v.eos = 2;
    v.unk = 0;
    v.add_bos = add_bos;
    v.add_space_prefix = space_prefix;
    v.model_name = model;
    v.name = "test-vocab";
    int rc = lm__tok_build(&v, &t, err, sizeof err);
    ck_assert_msg(rc == 0, "build: %s", err);
    return t;
}

/* The main test vocabulary. */
enum {
    T_SP = 259,
    T_A,
    T_B,
    T_C,
    T_X,
    T_Y,
    T_Z,
    T_AB,
    T_BC,
    T_XY,
    T_YZ,
    T_SPA,
    T_SPX,
    T_TAG,
    T_IMEND,
    T_TAGX,
};

static lm_tok *small_vocab(bool space_prefix, const char *model)
{
    static struct vb b;
    vb_base(&b, true);
    ck_assert_int_eq(vb_add(&b, SP, -10, LM_TOK_NORMAL), T_SP);
    vb_add(&b, "a", -1, LM_TOK_NORMAL);
    vb_add(&b, "b", -1, LM_TOK_NORMAL);
    vb_add(&b, "c", -1, LM_TOK_NORMAL);
    vb_add(&b, "x", -1, LM_TOK_NORMAL);
    vb_add(&b, "y", -1, LM_TOK_NORMAL);
    vb_add(&b, "z", -1, LM_TOK_NORMAL);
    vb_add(&b, "ab", -3, LM_TOK_NORMAL);
    vb_add(&b, "bc", -2, LM_TOK_NORMAL);
    vb_add(&b, "xy", -2, LM_TOK_NORMAL);
    vb_add(&b, "yz", -2, LM_TOK_NORMAL);
    vb_add(&b, SP "a", -2, LM_TOK_NORMAL);
    vb_add(&b, SP "x", -5, LM_TOK_NORMAL);
    vb_add(&b, "<tag>", 0, LM_TOK_USER_DEFINED);
    vb_add(&b, "<|im_end|>", 0, LM_TOK_NORMAL);
    ck_assert_int_eq(vb_add(&b, "<tag>x", 0, LM_TOK_USER_DEFINED), T_TAGX);
    return vb_build_opts(&b, true, space_prefix, model);
}

/* Encodes s and compares with the expected ids (terminated by -1). */
static void expect_ids(const lm_tok *t, const char *s, size_t n, bool add_special,
                       bool parse_special, const int32_t *want)
{
    int32_t got[256];
    int64_t n_got = -1;
    int n_want = 0;
    while (want[n_want] >= 0) {
        n_want++;
    }
    ck_assert_int_eq(lm_tok_encode(t, s, n, add_special, parse_special, got, 256, &n_got), 0);
    ck_assert_msg(n_got == n_want, "'%s': %lld ids, want %d", s, (long long)n_got, n_want);
    for (int i = 0; i < n_want; i++) {
        ck_assert_msg(got[i] == want[i], "'%s': id %d is %d, want %d", s, i, got[i], want[i]);
    }
}

#define EXPECT(t, s, add, parse, ...)                                                              \
    do {                                                                                           \
        const int32_t want_[] = {__VA_ARGS__, -1};                                                 \
        expect_ids(t, s, strlen(s), add, parse, want_);                                            \
    } while (0)

static void expect_text(const lm_tok *t, const int32_t *ids, int64_t n, bool remove, bool unparse,
                        const char *want)
{
    char buf[256];
    int64_t len = lm_tok_decode(t, ids, n, remove, unparse, buf, sizeof buf);
    ck_assert_int_eq(len, (int64_t)strlen(want));
    ck_assert_str_eq(buf, want);
}

/* ---- core ----------------------------------------------------------------------------------- */

START_TEST(test_tok_encode_empty_gives_bos)
{
    lm_tok *t = small_vocab(true, NULL);
    int32_t ids[4];
    int64_t n = -1;
    ck_assert_int_eq(lm_tok_encode(t, "", 0, true, true, ids, 4, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(lm_tok_encode(t, NULL, 0, false, true, ids, 4, &n), 0);
    ck_assert_int_eq(n, 0);
    lm_tok_destroy(t);
}
END_TEST

/* The highest score merges first; on equal scores the leftmost pair does. */
START_TEST(test_tok_merge_by_score_then_leftmost)
{
    lm_tok *plain = small_vocab(false, NULL);
    EXPECT(plain, "abc", false, false, T_A, T_BC); /* bc (-2) beats ab (-3) */
    EXPECT(plain, "xyz", false, false, T_XY, T_Z); /* xy and yz tie: leftmost */
    EXPECT(plain, "zxyz", false, false, T_Z, T_XY, T_Z);
    EXPECT(plain, "yzxy", false, false, T_YZ, T_XY);
    lm_tok_destroy(plain);
    lm_tok *t = small_vocab(true, NULL);
    /* " abc" -> ▁ a b c: ▁a and bc tie at -2, ▁a is further left */
    EXPECT(t, "abc", true, true, 1, T_SPA, T_BC);
    EXPECT(t, "a b", false, true, T_SPA, T_SP, T_B);
    lm_tok_destroy(t);
}
END_TEST

START_TEST(test_tok_byte_fallback)
{
    lm_tok *t = small_vocab(false, NULL);
    /* é = C3 A9 is not in the vocabulary: one symbol, two byte tokens */
    EXPECT(t,
           "a\xc3\xa9"
           "b",
           false, false, T_A, 3 + 0xC3, 3 + 0xA9, T_B);
    EXPECT(t, "\n", false, false, 3 + 0x0A);
    lm_tok_destroy(t);
    /* without <0xXX> tokens the one-byte string token is used; with neither it is an error */
    static struct vb b;
    vb_base(&b, false);
    vb_add(&b, "q", 0, LM_TOK_NORMAL);
    vb_add(&b, "\xc3", 0, LM_TOK_NORMAL);
    vb_add(&b, "\xa9", 0, LM_TOK_NORMAL);
    t = vb_build_opts(&b, false, false, NULL);
    EXPECT(t, "q\xc3\xa9", false, false, 3, 4, 5);
    int32_t ids[8];
    int64_t n = 0;
    ck_assert_int_eq(lm_tok_encode(t, "w", 1, false, false, ids, 8, &n), LM_ENOTFOUND);
    lm_tok_destroy(t);
}
END_TEST

/* UTF-8 symbols take their length from the lead byte, valid or not, truncated at the end. */
START_TEST(test_tok_invalid_utf8)
{
    lm_tok *t = small_vocab(false, NULL);
    EXPECT(t, "\xff\xfe", false, false, 3 + 0xFF, 3 + 0xFE);
    EXPECT(t, "a\xe2", false, false, T_A, 3 + 0xE2);
    /* E2 swallows the next two bytes, so "ab" is not merged: three byte tokens */
    EXPECT(t,
           "\xe2"
           "ab",
           false, false, 3 + 0xE2, 3 + 'a', 3 + 'b');
    EXPECT(t,
           "\x80"
           "a",
           false, false, 3 + 0x80, T_A); /* a stray continuation byte */
    lm_tok_destroy(t);
}
END_TEST

START_TEST(test_tok_special_tokens)
{
    lm_tok *t = small_vocab(true, NULL);
    /* parsed: the fragment after a special token gets a space prefix again */
    EXPECT(t, "<s>a</s>a", false, true, 1, T_SPA, 2, T_SPA);
    /* not parsed: CONTROL text is ordinary text (here all bytes and letters) */
    EXPECT(t, "<s>", false, false, T_SP, 3 + '<', 3 + 's', 3 + '>');
    /* USER_DEFINED tokens are matched even when specials are not parsed; longest first */
    EXPECT(t, "<tag>x<tag>", false, false, T_TAGX, T_TAG);
    EXPECT(t, "a<tag>", false, false, T_SPA, T_TAG);
    /* add_special adds BOS (add_bos) but not EOS (add_eos false) */
    EXPECT(t, "<s>", true, true, 1, 1);
    lm_tok_destroy(t);
}
END_TEST

START_TEST(test_tok_space_prefix_rules)
{
    lm_tok *t = small_vocab(true, NULL);
    EXPECT(t, "x", false, false, T_SPX);
    EXPECT(t, " x", false, false, T_SP, T_SPX);
    EXPECT(t, "x ", false, false, T_SPX, T_SP);
    lm_tok_destroy(t);
    t = small_vocab(false, NULL);
    EXPECT(t, "x", false, false, T_X);
    EXPECT(t, " x", false, false, T_SPX);
    lm_tok_destroy(t);
}
END_TEST

START_TEST(test_tok_cap_too_small_gives_full_count)
{
    lm_tok *t = small_vocab(false, NULL);
    int32_t ids[3] = {-7, -7, -7};
    int64_t n = 0;
    ck_assert_int_eq(lm_tok_encode(t, "abcabc", 6, true, true, ids, 2, &n), LM_ERANGE);
    ck_assert_int_eq(n, 5); /* BOS a bc a bc */
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[1], T_A);
    ck_assert_int_eq(ids[2], -7);
    ck_assert_int_eq(lm_tok_encode(t, "abcabc", 6, true, true, NULL, 0, &n), LM_ERANGE);
    ck_assert_int_eq(n, 5);
    lm_tok_destroy(t);
}
END_TEST

START_TEST(test_tok_decode_rules)
{
    lm_tok *t = small_vocab(true, NULL);
    const int32_t a[] = {T_SPA, T_SP, T_B};
    expect_text(t, a, 3, false, false, "a b"); /* the first token loses its leading space */
    const int32_t bos_a[] = {1, T_SPA};
    expect_text(t, bos_a, 2, false, false, " a");   /* BOS (empty piece) consumed the strip */
    expect_text(t, bos_a, 2, true, false, " a");    /* removed BOS: no strip at all */
    expect_text(t, bos_a, 2, false, true, "<s> a"); /* CONTROL shown when unparsing */
    const int32_t eos_a[] = {T_SPA, 2};
    expect_text(t, eos_a, 2, true, false, "a");
    expect_text(t, eos_a, 2, true, true, "a</s>"); /* add_eos is false: EOS stays */
    const int32_t bytes[] = {3 + 0xC3, 3 + 0xA9, 3 + ' ', T_TAG};
    expect_text(t, bytes, 4, false, false, "\xc3\xa9 <tag>"); /* BYTE, USER_DEFINED raw */
    const int32_t sp_byte[] = {3 + ' ', T_A};
    expect_text(t, sp_byte, 2, false, false, "a"); /* lstrip applies to a byte piece too */
    const int32_t unk[] = {0, T_SPA};
    expect_text(t, unk, 2, false, false, " a");
    expect_text(t, unk, 2, false, true, "<unk> a");
    lm_tok_destroy(t);
}
END_TEST

START_TEST(test_tok_piece_and_buffers)
{
    lm_tok *t = small_vocab(true, NULL);
    char buf[8];
    memset(buf, 'Z', sizeof buf);
    ck_assert_int_eq(lm_tok_piece(t, T_SPA, false, buf, sizeof buf), 2);
    ck_assert_str_eq(buf, " a");
    ck_assert_int_eq(lm_tok_piece(t, 1, false, buf, sizeof buf), 0);
    ck_assert_int_eq(lm_tok_piece(t, 1, true, buf, sizeof buf), 3);
    ck_assert_str_eq(buf, "<s>");
    memset(buf, 'Z', sizeof buf);
    ck_assert_int_eq(lm_tok_piece(t, T_IMEND, true, buf, 3), 10); /* truncated, no NUL */
    ck_assert(memcmp(buf, "<|iZ", 4) == 0);
    ck_assert_int_eq(lm_tok_piece(t, T_IMEND, true, NULL, 0), 10);
    const int32_t ids[] = {T_SPA, T_SPA, T_SPA};
    memset(buf, 'Z', sizeof buf);
    ck_assert_int_eq(lm_tok_decode(t, ids, 3, false, false, buf, 4), 5);
    ck_assert(memcmp(buf, "a a Z", 5) == 0);
    ck_assert_int_eq(lm_tok_decode(t, ids, 3, false, false, buf, 6), 5);
    ck_assert_str_eq(buf, "a a a");
    lm_tok_destroy(t);
}
END_TEST

START_TEST(test_tok_accessors_and_fixups)
{
    lm_tok *t = small_vocab(true, NULL);
    ck_assert_int_eq(lm_tok_n_vocab(t), T_TAGX + 1);
    ck_assert_int_eq(lm_tok_bos(t), 1);
    ck_assert_int_eq(lm_tok_eos(t), 2);
    ck_assert(lm_tok_add_bos(t) && !lm_tok_add_eos(t));
    ck_assert_str_eq(lm_tok_text(t, T_SPA), SP "a");
    ck_assert_ptr_null(lm_tok_text(t, -1));
    ck_assert_ptr_null(lm_tok_text(t, T_TAGX + 1));
    ck_assert_int_eq(lm_tok_find(t, "ab"), T_AB);
    ck_assert_int_eq(lm_tok_find(t, "abc"), -1);
    ck_assert_double_eq_tol((double)lm_tok_score(t, T_BC), -2.0, 1e-6);
    ck_assert_int_eq(lm_tok_attr(t, 0), LM_TOK_UNKNOWN);
    ck_assert_int_eq(lm_tok_attr(t, 3), LM_TOK_BYTE);
    ck_assert_int_eq(lm_tok_attr(t, T_TAG), LM_TOK_USER_DEFINED);
    ck_assert_int_eq(lm_tok_attr(t, T_A), LM_TOK_NORMAL);
    /* "<|im_end|>" is end-of-generation text: llama.cpp forces CONTROL on it */
    ck_assert_int_eq(lm_tok_attr(t, T_IMEND), LM_TOK_CONTROL);
    ck_assert(lm_tok_is_eog(t, T_IMEND) && lm_tok_is_eog(t, 2) && !lm_tok_is_eog(t, 1));
    EXPECT(t, "<|im_end|>", false, true, T_IMEND);
    ck_assert_int_eq(lm_tok_attr(t, 99999), LM_TOK_UNDEFINED);
    lm_tok_destroy(t);
}
END_TEST

/* llama.cpp's phi-3 rule: whitespace after special tokens (but not after <s>) is dropped. */
START_TEST(test_tok_phi3_rstrip_rule)
{
    lm_tok *t = small_vocab(false, "Phi-3 mini");
    EXPECT(t, "<tag>  x", false, false, T_TAG, T_X);
    EXPECT(t, "<s> x", false, true, 1, T_SPX);
    lm_tok_destroy(t);
    t = small_vocab(false, "llama");
    EXPECT(t, "<tag> x", false, false, T_TAG, T_SPX);
    lm_tok_destroy(t);
}
END_TEST

/* ---- the merge loop against a naive quadratic implementation ------------------------------- */

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

struct naive_sym {
    size_t off, n;
};

/* The id of s[off..off+n) through the public lookup (tested on its own above), or -1. */
static int32_t naive_find(const lm_tok *t, const char *s, size_t n)
{
    char tmp[600];
    memcpy(tmp, s, n);
    tmp[n] = 0;
    return lm_tok_find(t, tmp);
}

/* Repeatedly merges the best adjacent pair (highest score, leftmost) until none is a token. */
static int naive_encode(const lm_tok *t, const char *s, size_t n, int32_t *out)
{
    struct naive_sym sy[512];
    size_t k = n;
    for (size_t i = 0; i < n; i++) {
        sy[i].off = i;
        sy[i].n = 1;
    }
    for (;;) {
        int best = -1;
        float best_score = 0;
        for (size_t i = 0; i + 1 < k; i++) {
            int32_t id = naive_find(t, s + sy[i].off, sy[i].n + sy[i + 1].n);
            if (id >= 0 && (best < 0 || lm_tok_score(t, id) > best_score)) {
                best = (int)i;
                best_score = lm_tok_score(t, id);
            }
        }
        if (best < 0) {
            break;
        }
        sy[best].n += sy[best + 1].n;
        memmove(&sy[best + 1], &sy[best + 2], (k - (size_t)best - 2) * sizeof *sy);
        k--;
    }
    for (size_t i = 0; i < k; i++) {
        out[i] = naive_find(t, s + sy[i].off, sy[i].n);
    }
    return (int)k;
}

START_TEST(test_tok_heap_matches_naive_merges)
{
    static struct vb b;
    static char words[1024][8];
    uint32_t seed = 12345;
    vb_base(&b, false);
    vb_add(&b, "a", 0, LM_TOK_NORMAL);
    vb_add(&b, "b", 0, LM_TOK_NORMAL);
    vb_add(&b, "c", 0, LM_TOK_NORMAL);
    for (int w = 0; b.n < 400 && w < 1024; w++) { /* words of length 2..6, tied scores */
        int len = 2 + (int)(rng_next(&seed) % 5);
        for (int i = 0; i < len; i++) {
            words[w][i] = (char)('a' + rng_next(&seed) % 3);
        }
        words[w][len] = 0;
        bool dup = false;
        for (int32_t id = 0; id < b.n && !dup; id++) {
            dup = strcmp(b.texts[id], words[w]) == 0;
        }
        if (!dup) {
            vb_add(&b, words[w], -(float)(rng_next(&seed) % 8), LM_TOK_NORMAL);
        }
    }
    lm_tok *t = vb_build_opts(&b, false, false, NULL);
    for (int round = 0; round < 300; round++) {
        char s[300];
        size_t n = 1 + rng_next(&seed) % 299;
        for (size_t i = 0; i < n; i++) {
            s[i] = (char)('a' + rng_next(&seed) % 3);
        }
        int32_t want[512], got[512];
        int n_want = naive_encode(t, s, n, want);
        int64_t n_got = 0;
        ck_assert_int_eq(lm_tok_encode(t, s, n, false, false, got, 512, &n_got), 0);
        ck_assert_int_eq(n_got, n_want);
        ck_assert(memcmp(got, want, (size_t)n_want * sizeof *want) == 0);
    }
    lm_tok_destroy(t);
}
END_TEST

/* ---- errors --------------------------------------------------------------------------------- */

static int build_expect_error(struct lm__tok_vocab *v, const char *want_msg)
{
    char err[LM_ERRBUF_SIZE] = "";
    lm_tok *t = (lm_tok *)1;
    int rc = lm__tok_build(v, &t, err, sizeof err);
    ck_assert_int_lt(rc, 0);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(err, want_msg) != NULL, "message '%s' lacks '%s'", err, want_msg);
    return rc;
}

START_TEST(test_tok_build_errors)
{
    static const char *const dup[] = {"<unk>", "<s>", "</s>", "a", "a"};
    static const char *const short_byte[] = {"<unk>", "<s>", "</s>", "<0"};
    static const int32_t byte_types[] = {2, 3, 3, 6};
    struct lm__tok_vocab v = {0};
    v.name = "m.gguf";
    v.texts = dup;
    v.bos = 1;
    v.eos = 2;
    ck_assert_int_eq(build_expect_error(&v, "m.gguf: the vocabulary has no tokens"), LM_EINVAL);
    v.n_vocab = 5;
    ck_assert_int_eq(build_expect_error(&v, "m.gguf: duplicate token in vocabulary: 'a' has ids 3 "
                                            "and 4"),
                     LM_EFORMAT);
    v.n_vocab = 4;
    v.bos = 9;
    ck_assert_int_eq(build_expect_error(&v, "bos token id 9 is out of range (4 tokens)"),
                     LM_EINVAL);
    v.bos = -1;
    v.add_bos = true;
    ck_assert_int_eq(build_expect_error(&v,
                                        "add_bos_token is true, but tokenizer.ggml.bos_token_id "
                                        "is not set"),
                     LM_EFORMAT);
    v.add_bos = false;
    v.texts = short_byte;
    v.types = byte_types;
    ck_assert_int_eq(build_expect_error(&v, "token 3 has type BYTE but its text '<0' is not"),
                     LM_EFORMAT);
}
END_TEST

START_TEST(test_tok_call_errors)
{
    lm_tok *t = small_vocab(true, NULL);
    int32_t ids[4];
    int64_t n = 0;
    char buf[8];
    ck_assert_int_eq(lm_tok_encode(NULL, "a", 1, true, true, ids, 4, &n), LM_EINVAL);
    ck_assert_int_eq(lm_tok_encode(t, NULL, 1, true, true, ids, 4, &n), LM_EINVAL);
    ck_assert_int_eq(lm_tok_encode(t, "a", 1, true, true, NULL, 4, &n), LM_EINVAL);
    ck_assert_int_eq(lm_tok_encode(t, "a", 1, true, true, ids, -1, &n), LM_EINVAL);
    const int32_t bad[] = {T_A, 4000};
    ck_assert_int_eq(lm_tok_decode(t, bad, 2, false, false, buf, sizeof buf), LM_EINVAL);
    ck_assert_int_eq(lm_tok_piece(t, -1, false, buf, sizeof buf), LM_EINVAL);
    ck_assert_int_eq(lm_tok_piece(t, T_TAGX + 1, false, buf, sizeof buf), LM_EINVAL);
    lm_tok_destroy(t);
    lm_tok_destroy(NULL);
}
END_TEST

/* ---- lm_tok_create on GGUF files written here ----------------------------------------------- */

struct meta_case {
    const char *model;  /* tokenizer.ggml.model, NULL = absent */
    uint64_t n_scores;  /* entries in tokenizer.ggml.scores (0 = absent) */
    bool scores_i32;    /* write the scores as i32 */
    bool tokens_as_i32; /* write tokenizer.ggml.tokens as an i32 array */
    bool bos_as_i32;    /* write bos_token_id as i32 (must be u32) */
    uint32_t bos;       /* bos_token_id value (0 = absent) */
};

static const char *const meta_tokens[] = {"<unk>", "<s>", "</s>", "a", SP "a"};

static void write_vocab(const char *path, const struct meta_case *c)
{
    char err[LM_ERRBUF_SIZE] = "";
    lm_gguf_writer *w = NULL;
    static const float scores[8] = {0, 0, 0, -1, -2, 0, 0, 0};
    static const int32_t iscores[8] = {0};
    ck_assert_msg(lm_gguf_writer_open(path, &w, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(lm_gguf_writer_set_str(w, "general.architecture", "llama"), 0);
    if (c->model) {
        ck_assert_int_eq(lm_gguf_writer_set_str(w, "tokenizer.ggml.model", c->model), 0);
    }
    if (c->tokens_as_i32) {
        ck_assert_int_eq(
            lm_gguf_writer_set_arr(w, "tokenizer.ggml.tokens", LM_GGUF_I32, iscores, 5), 0);
    } else {
        ck_assert_int_eq(lm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", meta_tokens, 5), 0);
    }
    if (c->n_scores) {
        ck_assert_int_eq(lm_gguf_writer_set_arr(
                             w, "tokenizer.ggml.scores", c->scores_i32 ? LM_GGUF_I32 : LM_GGUF_F32,
                             c->scores_i32 ? (const void *)iscores : (const void *)scores,
                             c->n_scores),
                         0);
    }
    if (c->bos && c->bos_as_i32) {
        ck_assert_int_eq(lm_gguf_writer_set_i32(w, "tokenizer.ggml.bos_token_id", (int32_t)c->bos),
                         0);
    } else if (c->bos) {
        ck_assert_int_eq(lm_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", c->bos), 0);
    }
    ck_assert_int_eq(lm_gguf_writer_begin_data(w), 0);
    ck_assert_msg(lm_gguf_writer_finish(w) == 0, "%s", lm_gguf_writer_errmsg(w));
    lm_gguf_writer_close(w);
}

/* Writes a vocabulary file for case c, opens it and returns the first error code (of
 * lm_gguf_open or lm_tok_create); msg gets the message. */
static int create_from(const struct meta_case *c, lm_tok **t, char *msg, size_t cap, char *path,
                       size_t path_cap)
{
    char dir[512];
    lm_gguf *g = NULL;
    lt_tmp_dir(dir, sizeof dir, "tok_meta");
    snprintf(path, path_cap, "%s/v.gguf", dir);
    write_vocab(path, c);
    int rc = lm_gguf_open(path, &g, msg, cap);
    if (rc < 0) {
        *t = NULL;
        return rc; /* the reader may already refuse inconsistent tokenizer arrays */
    }
    msg[0] = 0;
    rc = lm_tok_create(g, t, msg, cap);
    lm_gguf_close(g);
    return rc;
}

START_TEST(test_tok_create_from_gguf)
{
    char msg[LM_ERRBUF_SIZE], path[600];
    lm_tok *t = NULL;
    struct meta_case ok = {"llama", 5, false, false, false, 0};
    ck_assert_msg(create_from(&ok, &t, msg, sizeof msg, path, sizeof path) == 0, "%s", msg);
    ck_assert_int_eq(lm_tok_n_vocab(t), 5);
    ck_assert_int_eq(lm_tok_bos(t), 1); /* llama.cpp's defaults */
    ck_assert_int_eq(lm_tok_eos(t), 2);
    ck_assert(lm_tok_add_bos(t) && !lm_tok_add_eos(t));
    EXPECT(t, "a", true, true, 1, 4); /* default add_space_prefix: " a" -> ▁a */
    lm_tok_destroy(t);
    struct meta_case bad_bos = {"llama", 5, false, false, false, 77}; /* out of range: ignored */
    ck_assert_msg(create_from(&bad_bos, &t, msg, sizeof msg, path, sizeof path) == 0, "%s", msg);
    ck_assert_int_eq(lm_tok_bos(t), 1);
    lm_tok_destroy(t);
}
END_TEST

/* The message must name the file first and contain want_msg. The GGUF reader checks some of
 * these itself (e.g. the scores count), with its own wording: then only want_rc_or_reader and
 * the subject are checked. */
static void create_expect_error(struct meta_case c, int want_rc, const char *want_msg)
{
    char msg[LM_ERRBUF_SIZE], path[600];
    lm_tok *t = (lm_tok *)1;
    int rc = create_from(&c, &t, msg, sizeof msg, path, sizeof path);
    ck_assert_int_lt(rc, 0);
    ck_assert_ptr_null(t);
    ck_assert_msg(strncmp(msg, path, strlen(path)) == 0 && msg[strlen(path)] == ':',
                  "'%s' does not start with the path", msg);
    if (rc == want_rc && strstr(msg, want_msg)) {
        return;
    }
    /* the reader's own wording: the same subject (the key, up to its first space) */
    char subject[128];
    snprintf(subject, sizeof subject, "%s", want_msg);
    *strchr(subject, ' ') = 0;
    ck_assert_msg(strstr(msg, subject) != NULL, "'%s' (code %d) does not mention '%s'", msg, rc,
                  subject);
}

START_TEST(test_tok_create_errors)
{
    create_expect_error((struct meta_case){"llama", 4, false, false, false, 0}, LM_EFORMAT,
                        "tokenizer.ggml.scores has 4 entries but there are 5 tokens");
    create_expect_error((struct meta_case){"llama", 5, true, false, false, 0}, LM_ETYPE,
                        "tokenizer.ggml.scores must be an array of f32");
    create_expect_error((struct meta_case){"llama", 5, false, true, false, 0}, LM_ETYPE,
                        "tokenizer.ggml.tokens must be an array of strings");
    create_expect_error((struct meta_case){NULL, 5, false, false, false, 0}, LM_ENOTFOUND,
                        "tokenizer.ggml.model is missing (no vocabulary)");
    create_expect_error((struct meta_case){"gpt2", 5, false, false, false, 0}, LM_EUNSUPPORTED,
                        "tokenizer 'gpt2' is not supported (only SentencePiece 'llama' "
                        "vocabularies)");
    create_expect_error((struct meta_case){"llama", 5, false, false, true, 1}, LM_ETYPE,
                        "tokenizer.ggml.bos_token_id must be a u32");
}
END_TEST

Suite *tok_suite(void); /* called by check_main.c */
Suite *tok_suite(void)
{
    Suite *s = suite_create("tok");
    TCase *core = tcase_create("core");
    tcase_add_test(core, test_tok_encode_empty_gives_bos);
    tcase_add_test(core, test_tok_merge_by_score_then_leftmost);
    tcase_add_test(core, test_tok_byte_fallback);
    tcase_add_test(core, test_tok_invalid_utf8);
    tcase_add_test(core, test_tok_special_tokens);
    tcase_add_test(core, test_tok_space_prefix_rules);
    tcase_add_test(core, test_tok_cap_too_small_gives_full_count);
    tcase_add_test(core, test_tok_piece_and_buffers);
    tcase_add_test(core, test_tok_accessors_and_fixups);
    tcase_add_test(core, test_tok_phi3_rstrip_rule);
    tcase_add_test(core, test_tok_heap_matches_naive_merges);
    suite_add_tcase(s, core);
    TCase *rt = tcase_create("roundtrip");
    tcase_add_test(rt, test_tok_decode_rules);
    suite_add_tcase(s, rt);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, test_tok_build_errors);
    tcase_add_test(errors, test_tok_call_errors);
    tcase_add_test(errors, test_tok_create_from_gguf);
    tcase_add_test(errors, test_tok_create_errors);
    suite_add_tcase(s, errors);
    return s;
}
