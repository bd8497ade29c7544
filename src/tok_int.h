/*
 * tok_int.h - internals of the SentencePiece ("llama") tokenizer shared by src/tok.c and the
 * tests: a constructor from plain arrays, so the tokenizer can be built and tested without a GGUF
 * file, and llama.cpp's per-token attribute bits.
 *
 * lm_tok_create (src/tok.c) only reads and validates the tokenizer.ggml.* metadata and then calls
 * lm__tok_build; everything llama.cpp derives from the vocabulary at load time (attribute
 * fix-ups, the special-token list, end-of-generation tokens, byte-fallback table) happens in
 * lm__tok_build.
 */
#ifndef LM_TOK_INT_H
#define LM_TOK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm.h"

/* llama.cpp's token attribute bits (include/llama.h, enum llama_token_attr). A token has one of
 * the type bits from its GGUF token_type, plus bits added by load-time fix-ups (e.g. CONTROL on
 * "</s>"-like tokens, RSTRIP for phi-3). */
enum lm__tok_attr_bit {
    LM__ATTR_UNKNOWN = 1u << 0,
    LM__ATTR_UNUSED = 1u << 1,
    LM__ATTR_NORMAL = 1u << 2,
    LM__ATTR_CONTROL = 1u << 3,
    LM__ATTR_USER_DEFINED = 1u << 4,
    LM__ATTR_BYTE = 1u << 5,
    LM__ATTR_NORMALIZED = 1u << 6,
    LM__ATTR_LSTRIP = 1u << 7,
    LM__ATTR_RSTRIP = 1u << 8,
    LM__ATTR_SINGLE_WORD = 1u << 9,
};

/* A vocabulary as plain arrays (everything is copied by lm__tok_build). */
struct lm__tok_vocab {
    int32_t n_vocab;          /* number of tokens, > 0 */
    const char *const *texts; /* (n_vocab) token strings with U+2581 for spaces */
    const uint64_t *lens;     /* (n_vocab) byte lengths, or NULL when texts are NUL-terminated */
    const float *scores;      /* (n_vocab) SentencePiece scores, or NULL for all 0 */
    const int32_t *types;     /* (n_vocab) GGUF token types (1..6), or NULL for all NORMAL */
    int32_t bos, eos, unk;    /* special ids, or -1 for none */
    bool add_bos, add_eos;    /* tokenizer.ggml.add_bos_token / add_eos_token */
    bool add_space_prefix;    /* tokenizer.ggml.add_space_prefix (llama.cpp default: true) */
    const char *model_name;   /* general.name or NULL (llama.cpp's phi-3 RSTRIP rule uses it) */
    const char *name;         /* what error messages name, usually the file path */
};

/* Builds a tokenizer from arrays, exactly as llama.cpp's llama_vocab::impl::load does after
 * reading the metadata. Returns 0, or LM_EINVAL / LM_EFORMAT / LM_ENOMEM with errbuf set to
 * "<name>: <reason>" and *out = NULL. */
int lm__tok_build(const struct lm__tok_vocab *v, lm_tok **out, char *errbuf, size_t errlen);

/* llama.cpp's attribute bits of a token (0 when id is out of range). */
uint32_t lm__tok_attr_bits(const lm_tok *t, int32_t id);

#endif
