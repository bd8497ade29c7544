/*
 * test_ref_tok.c - the tokenizer against llama.cpp's own results (../shared/refs/tokenize):
 *   - <model>.tsv: strings tokenized by llama-tokenize (add_special, parse_special) for
 *     stories260k-f32.v3.gguf and llama-2-tiny-random.gguf;
 *   - ggml-vocab-llama-spm.gguf.inp/.out: llama.cpp's test-tokenizer-0 vectors (no BOS, no
 *     special parsing), run on that vocabulary and on llama-2-tiny-random.gguf (the same vocab).
 * Every case must give llama.cpp's ids. Each case is also detokenized: the text must come back
 * except where llama.cpp itself does not round-trip (explained in roundtrip_expect below). The
 * per-file counts are printed. Also: building the 32000-token vocabulary and encoding a long
 * text are fast.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lm.h"
#include "testutil.h"

#define MAX_IDS 4096

static lm_tok *load_tok(const char *rel)
{
    char path[1024], err[LM_ERRBUF_SIZE] = "";
    lm_gguf *g = NULL;
    lm_tok *t = NULL;
    ck_assert_ptr_nonnull(lt_shared_path(path, sizeof path, rel));
    int rc = lm_gguf_open(path, &g, err, sizeof err);
    ck_assert_msg(rc == 0, "open %s: %s", path, err);
    rc = lm_tok_create(g, &t, err, sizeof err);
    ck_assert_msg(rc == 0, "tokenizer of %s: %s", path, err);
    lm_gguf_close(g);
    return t;
}

/* ---- JSON bits: string literals (with \uXXXX and surrogate pairs) and id lists -------------- */

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static unsigned hex4(const char *p)
{
    char tmp[5] = {p[0], p[1], p[2], p[3], 0};
    char *end = NULL;
    unsigned long v = strtoul(tmp, &end, 16);
    ck_assert_msg(end == tmp + 4, "bad \\u escape '%s'", tmp);
    return (unsigned)v;
}

/* Decodes the JSON string literal at *p (which points at the opening quote) into out; advances
 * *p past the closing quote. Returns the decoded length. */
static size_t json_string(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    size_t n = 0;
    ck_assert_int_eq(*s, '"');
    for (s++; *s != '"'; s++) {
        ck_assert_msg(*s && n + 4 < cap, "unterminated or oversized JSON string");
        if (*s != '\\') {
            out[n++] = *s;
            continue;
        }
        s++;
        const char *simple = *s ? strchr("\"\\/bfnrt", *s) : NULL;
        ck_assert_msg(simple || *s == 'u', "bad escape \\%c", *s);
        if (simple) {
            out[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            continue;
        }
        unsigned cp = hex4(s + 1);
        s += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && s[1] == '\\' && s[2] == 'u') {
            unsigned lo = hex4(s + 3);
            ck_assert_msg(lo >= 0xDC00 && lo < 0xE000, "unpaired surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            s += 6;
        }
        n += put_utf8(out + n, cp);
    }
    *p = s + 1;
    return n;
}

/* Parses "[1, 2, 3]" or " 1 2 3" (ids separated by spaces, commas, brackets) up to the end of
 * the line. Returns the count. */
static int parse_ids(const char *p, int32_t *ids, int cap)
{
    int n = 0;
    while (*p && *p != '\n') {
        if (strchr(" ,[]\t\r", *p)) {
            p++;
            continue;
        }
        char *end = NULL;
        long v = strtol(p, &end, 10);
        ck_assert_msg(end != p, "bad id list at '%.20s'", p);
        ck_assert_int_lt(n, cap);
        ids[n++] = (int32_t)v;
        p = end;
    }
    return n;
}

/* ---- one case ------------------------------------------------------------------------------- */

struct tally {
    const char *file;
    int pass, total;       /* ids equal llama.cpp's */
    int rt_pass, rt_total; /* detokenization gave the text back */
    int rt_explained;      /* differed exactly as llama.cpp's does (see roundtrip_expect) */
};

static void show(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        k += (size_t)snprintf(out + k, cap - k, c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
    }
    out[k] = 0;
}

/* What llama.cpp's detokenizer gives back for x (ids without the leading BOS, special tokens
 * unparsed). It differs from x in two documented ways: U+2581 in the input decodes as ' '
 * (pieces are unescaped), and after a special token parsed out of the text the next raw
 * fragment was tokenized with a space prefix, which stays (only the first token is stripped).
 * Returns the expected length in out. */
static size_t roundtrip_expect(const char *x, size_t n, bool parse_special, char *out)
{
    static const char *const specials[] = {"</s>", "<unk>", "<s>"};
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (n - i >= 3 && memcmp(x + i, "\xe2\x96\x81", 3) == 0) {
            out[k++] = ' ';
            i += 3;
            continue;
        }
        size_t m = 0;
        for (int s = 0; parse_special && s < 3 && m == 0; s++) {
            size_t l = strlen(specials[s]);
            m = n - i >= l && memcmp(x + i, specials[s], l) == 0 ? l : 0;
        }
        if (m > 0) {
            memcpy(out + k, x + i, m);
            k += m;
            i += m;
            out[k] = ' ';
            k += i < n; /* a raw fragment follows */
            continue;
        }
        out[k++] = x[i++];
    }
    return k;
}

static void check_case(const lm_tok *t, struct tally *ty, const char *x, size_t n,
                       const int32_t *want, int n_want, bool special)
{
    int32_t got[MAX_IDS];
    int64_t n_got = 0;
    char shown[512];
    int rc = lm_tok_encode(t, x, n, special, special, got, MAX_IDS, &n_got);
    ck_assert_int_eq(rc, 0);
    ty->total++;
    bool same = n_got == n_want && memcmp(got, want, (size_t)n_want * sizeof *want) == 0;
    ty->pass += same;
    if (!same && ty->total - ty->pass > 5) {
        return; /* the first five differences are enough to see the problem */
    }
    if (!same) {
        show(x, n, shown, sizeof shown);
        fprintf(stderr, "%s: case \"%s\": got %lld ids, want %d\n", ty->file, shown,
                (long long)n_got, n_want);
        return;
    }
    /* detokenize what llama.cpp produced, without the BOS that add_special put in front */
    const int32_t *ids = got;
    if (special && n_got > 0 && ids[0] == lm_tok_bos(t)) {
        ids++;
        n_got--;
    }
    char back[8192], expect[8192];
    int64_t n_back = lm_tok_decode(t, ids, n_got, false, true, back, sizeof back);
    ck_assert_int_ge(n_back, 0);
    ck_assert_int_lt(n_back, (int64_t)sizeof back);
    size_t n_expect = roundtrip_expect(x, n, special, expect);
    ty->rt_total++;
    if ((size_t)n_back == n && memcmp(back, x, n) == 0) {
        ty->rt_pass++;
    } else if ((size_t)n_back == n_expect && memcmp(back, expect, n_expect) == 0) {
        ty->rt_explained++;
    } else {
        show(back, (size_t)n_back, shown, sizeof shown);
        fprintf(stderr, "%s: round trip gave \"%s\"\n", ty->file, shown);
    }
}

static void report(const struct tally *ty)
{
    printf("ref_tok: %-40s ids %d/%d match llama.cpp; round trip %d/%d exact, %d differ as "
           "llama.cpp's do\n",
           ty->file, ty->pass, ty->total, ty->rt_pass, ty->rt_total, ty->rt_explained);
    fflush(stdout);
    ck_assert_int_gt(ty->total, 0);
    ck_assert_msg(ty->pass == ty->total, "%s: %d of %d cases differ from llama.cpp", ty->file,
                  ty->total - ty->pass, ty->total);
    ck_assert_msg(ty->rt_pass + ty->rt_explained == ty->rt_total, "%s: %d round trips are wrong",
                  ty->file, ty->rt_total - ty->rt_pass - ty->rt_explained);
}

/* ---- the files ------------------------------------------------------------------------------ */

static struct tally run_tsv(const char *model_rel, const char *tsv_rel)
{
    char path[1024];
    size_t len = 0;
    struct tally ty = {tsv_rel, 0, 0, 0, 0, 0};
    lm_tok *t = load_tok(model_rel);
    char *data = lt_read_file(lt_shared_path(path, sizeof path, tsv_rel), &len);
    ck_assert_msg(data != NULL, "cannot read %s", path);
    char *line = strchr(data, '\n'); /* skip the header */
    static char text[1 << 16];
    int32_t want[MAX_IDS];
    while (line && line[1]) {
        const char *p = line + 1;
        size_t n = json_string(&p, text, sizeof text);
        ck_assert_int_eq(*p, '\t');
        int n_want = parse_ids(p + 1, want, MAX_IDS);
        check_case(t, &ty, text, n, want, n_want, true);
        line = strchr(p, '\n');
    }
    free(data);
    lm_tok_destroy(t);
    return ty;
}

static struct tally run_vectors(const char *model_rel)
{
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char path[1024];
    size_t n_inp = 0, n_out = 0;
    struct tally ty = {model_rel, 0, 0, 0, 0, 0};
    lm_tok *t = load_tok(model_rel);
    const char *inp_rel = "refs/tokenize/ggml-vocab-llama-spm.gguf.inp";
    char *inp = lt_read_file(lt_shared_path(path, sizeof path, inp_rel), &n_inp);
    char *out = lt_read_file(lt_shared_path(path, sizeof path,
                                            "refs/tokenize/"
                                            "ggml-vocab-llama-spm.gguf.out"),
                             &n_out);
    ck_assert(inp && out);
    int32_t want[MAX_IDS];
    const char *ip = inp, *op = out;
    /* k inputs separated by sep (the last one, after the final separator, is empty) pair with
     * the k lines of .out (the last one empty too), as llama.cpp's test-tokenizer-0 reads them */
    for (;;) {
        const char *end = strstr(ip, sep);
        size_t n = end ? (size_t)(end - ip) : strlen(ip);
        int n_want = parse_ids(op, want, MAX_IDS);
        check_case(t, &ty, ip, n, want, n_want, false);
        const char *nl = strchr(op, '\n');
        if (!end || !nl) {
            ck_assert_msg(!end && !nl, "%s and its .out have different numbers of cases", inp_rel);
            break;
        }
        ip = end + strlen(sep);
        op = nl + 1;
    }
    free(inp);
    free(out);
    lm_tok_destroy(t);
    return ty;
}

START_TEST(test_ref_tok_stories260k_tsv)
{
    struct tally ty =
        run_tsv("models/stories260k-f32.v3.gguf", "refs/tokenize/stories260k-f32.v3.tsv");
    report(&ty);
}
END_TEST

START_TEST(test_ref_tok_llama2_tiny_tsv)
{
    struct tally ty =
        run_tsv("models/llama-2-tiny-random.gguf", "refs/tokenize/llama-2-tiny-random.tsv");
    report(&ty);
}
END_TEST

START_TEST(test_ref_tok_vocab_vectors_spm)
{
    struct tally ty = run_vectors("refs/tokenize/ggml-vocab-llama-spm.gguf");
    report(&ty);
}
END_TEST

START_TEST(test_ref_tok_vocab_vectors_llama2_tiny)
{
    struct tally ty = run_vectors("models/llama-2-tiny-random.gguf");
    report(&ty);
}
END_TEST

/* The v1 file has the same vocabulary; it must tokenize exactly like the v3 one. */
START_TEST(test_ref_tok_stories260k_v1_same_vocab)
{
    struct tally ty =
        run_tsv("models/stories260k-f32.v1.gguf", "refs/tokenize/stories260k-f32.v3.tsv");
    ty.file = "stories260k-f32.v3.tsv on the v1 file";
    report(&ty);
}
END_TEST

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Building the 32000-token tokenizer takes milliseconds and a long text encodes in linear-ish
 * time (the bounds are loose enough for an ASan build on a busy machine). */
START_TEST(test_ref_tok_fast_on_32000_vocab)
{
    double t0 = now_ms();
    lm_tok *t = load_tok("models/llama-2-tiny-random.gguf");
    double t1 = now_ms();
    ck_assert_int_eq(lm_tok_n_vocab(t), 32000);
    static const char unit[] = "Once upon a time, there was a little girl named Lily. "
                               "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\xa6\x99 drew 3.14159\n";
    size_t n_unit = sizeof unit - 1, n = 0;
    char *text = malloc(1 << 20);
    int32_t *ids = malloc((1 << 20) * sizeof *ids);
    ck_assert(text && ids);
    while (n + n_unit < (1 << 20)) {
        memcpy(text + n, unit, n_unit);
        n += n_unit;
    }
    int64_t n_ids = 0;
    ck_assert_int_eq(lm_tok_encode(t, text, n, true, true, ids, 1 << 20, &n_ids), 0);
    double t2 = now_ms();
    ck_assert_int_gt(n_ids, (int64_t)(n / 8));
    char *back = malloc(n + 1);
    ck_assert_ptr_nonnull(back);
    ck_assert_int_eq(lm_tok_decode(t, ids + 1, n_ids - 1, false, false, back, n + 1), (int64_t)n);
    ck_assert(memcmp(back, text, n) == 0);
    free(back);
    printf("ref_tok: 32000-token vocabulary built in %.1f ms; %zu bytes -> %lld tokens in %.0f "
           "ms\n",
           t1 - t0, n, (long long)n_ids, t2 - t1);
    fflush(stdout);
    ck_assert_msg(t1 - t0 < 500, "building took %.1f ms", t1 - t0);
    ck_assert_msg(t2 - t1 < 20000, "encoding 1 MiB took %.0f ms", t2 - t1);
    free(text);
    free(ids);
    lm_tok_destroy(t);
}
END_TEST

Suite *ref_tok_suite(void); /* called by check_main.c */
Suite *ref_tok_suite(void)
{
    Suite *s = suite_create("ref_tok");
    TCase *core = tcase_create("core");
    tcase_set_timeout(core, 300);
    tcase_add_test(core, test_ref_tok_stories260k_tsv);
    tcase_add_test(core, test_ref_tok_llama2_tiny_tsv);
    tcase_add_test(core, test_ref_tok_vocab_vectors_spm);
    tcase_add_test(core, test_ref_tok_vocab_vectors_llama2_tiny);
    tcase_add_test(core, test_ref_tok_stories260k_v1_same_vocab);
    tcase_add_test(core, test_ref_tok_fast_on_32000_vocab);
    suite_add_tcase(s, core);
    return s;
}
