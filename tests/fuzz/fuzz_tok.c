/*
 * libFuzzer harness for the tokenizer and the chat templates, which take whatever text a user
 * types: any bytes (invalid UTF-8, NULs, special-token look-alikes) are rendered into a chat
 * template or not, tokenized, and detokenized again, on the vocabulary of a model that
 * `lltrace mkmodel` generates at the first input (SentencePiece pieces with byte fallback, as
 * the real LLaMA vocabulary). Every id must be in the vocabulary, and text tokenized without
 * special tokens must detokenize to itself when it is UTF-8 (a U+2581 in it as a space). Invariants
 * that fail trap.
 *
 * Input: byte 0 the flags (bit 0 add_special, bit 1 parse_special, bit 2 remove_special, bit 3
 * unparse_special, bit 4 render a chat template first), byte 1 the template (mod the number
 * of templates), then the text. Run: ./fuzz_tok CORPUS -max_total_time=60.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lm_tok *g_tok;

static lm_tok *tok_once(void)
{
    if (g_tok) {
        return g_tok;
    }
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/lltrace-fuzz-tok-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        __builtin_trap();
    }
    close(fd);
    char err[LM_ERRBUF_SIZE];
    lm_gguf *g = NULL;
    if (lm_mkmodel_write(path, NULL, err, sizeof err) < 0 ||
        lm_gguf_open(path, &g, err, sizeof err) < 0 ||
        lm_tok_create(g, &g_tok, err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_tok: %s\n", err);
        __builtin_trap();
    }
    lm_gguf_close(g);
    unlink(path);
    return g_tok;
}

enum { CAP = 1 << 14 };

/* Whether s is well-formed UTF-8 as far as lengths go (a lead byte, then its continuation
 * bytes): SentencePiece splits text into characters by the lead bytes, so ill-formed text
 * splits elsewhere, falls back to byte tokens, and its spaces come back as U+2581's bytes, in
 * llama.cpp as here. */
static bool utf8_shaped(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        const size_t k = s[i] < 0x80         ? 1
                         : (s[i] >> 5) == 6  ? 2
                         : (s[i] >> 4) == 14 ? 3
                         : (s[i] >> 3) == 30 ? 4
                                             : 0;
        if (k == 0 || n - i < k) {
            return false;
        }
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] >> 6) != 2) {
                return false;
            }
        }
        i += k;
    }
    return true;
}

/* Whether b is text a after a round trip: byte for byte, except that SentencePiece writes a
 * space as U+2581 (e2 96 81), so a U+2581 in the text comes back as a space. */
static bool same_text(const char *a, size_t na, const char *b, size_t nb)
{
    size_t i = 0, j = 0;
    while (i < na && j < nb) {
        if (na - i >= 3 && memcmp(a + i, "\xe2\x96\x81", 3) == 0 && b[j] == ' ') {
            i += 3;
            j += 1;
        } else if (a[i] == b[j]) {
            i++;
            j++;
        } else {
            return false;
        }
    }
    return i == na && j == nb;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 4096) {
        return 0;
    }
    const lm_tok *t = tok_once();
    const uint8_t flags = data[0];
    const bool add = flags & 1, parse = flags & 2, rm = flags & 4, unparse = flags & 8;
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    static char rendered[CAP], back[CAP + 1];
    static int32_t ids[CAP];
    if (flags & 16) { /* the text as the user's message: it must be a C string */
        char *user = malloc(len + 1);
        if (!user) {
            return 0;
        }
        memcpy(user, text, len);
        user[len] = '\0';
        int64_t n = lm_chat_render(data[1] % LM_CHAT_TMPL_COUNT, NULL, user, rendered, CAP);
        free(user);
        if (n < 0 || n >= CAP || strlen(rendered) != (size_t)n) {
            __builtin_trap(); /* 4 KiB of user text renders well within 16 KiB */
        }
        text = rendered;
        len = (size_t)n;
    }
    int64_t n_ids = 0;
    int rc = lm_tok_encode(t, text, len, add, parse, ids, CAP, &n_ids);
    if (rc != 0 || n_ids < 0 || n_ids > CAP) { /* the vocabulary has all 256 byte tokens */
        __builtin_trap();
    }
    const int32_t n_vocab = lm_tok_n_vocab(t);
    for (int64_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= n_vocab) {
            __builtin_trap();
        }
        char piece[256];
        if (lm_tok_piece(t, ids[i], unparse, piece, sizeof piece) < 0) {
            __builtin_trap();
        }
    }
    int64_t m = lm_tok_decode(t, ids, n_ids, rm, unparse, back, sizeof back);
    if (m < 0 || m > CAP) {
        __builtin_trap();
    }
    if (!add && !parse && !(flags & 16) && utf8_shaped((const uint8_t *)text, len) &&
        !same_text(text, len, back, (size_t)m)) {
        __builtin_trap(); /* plain text comes back */
    }
    return 0;
}
