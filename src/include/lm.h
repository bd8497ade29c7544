/*
 * lm.h - the public API of lltrace's inference engine (the "lm" library in src/).
 *
 * The engine reads LLaMA-family GGUF models, tokenizes, runs the forward pass with kernels that
 * reproduce llama.cpp's CPU numerics, and reports every op to an optional tracer hook. It is a
 * library: it never prints, exits or aborts because of its input. Fallible functions return 0 or
 * a negative LM_E* code; constructors take (errbuf, errlen) and fill it with a message that names
 * the file and the reason. Handles are not thread-safe: use one per thread unless noted.
 *
 * Sections: errors, weight types, GGUF reader, GGUF writer, tokenizer, chat templates, sha256,
 * model and inference, sampling, synthetic models.
 */
#ifndef LM_H
#define LM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LM_ERRBUF_SIZE 256

/* ---- errors --------------------------------------------------------------------------------- */

#define LM_ERRNO_MAP(X)                                                                            \
    X(EIO, -1, "input/output error")                                                               \
    X(EFORMAT, -2, "malformed file")                                                               \
    X(ENOMEM, -3, "out of memory")                                                                 \
    X(ENOTFOUND, -4, "not found")                                                                  \
    X(ETYPE, -5, "wrong type")                                                                     \
    X(EINVAL, -6, "invalid argument")                                                              \
    X(EUNSUPPORTED, -7, "not supported")                                                           \
    X(ERANGE, -8, "out of range")

enum lm_errno {
#define LM_X_(name, val, text) LM_##name = val,
    LM_ERRNO_MAP(LM_X_)
#undef LM_X_
};

/* Static text for an LM_E* code. */
const char *lm_strerror(int code);

/* ---- weight types (ggml ids) ----------------------------------------------------------------- */

enum lm_type {
    LM_TYPE_F32 = 0,
    LM_TYPE_F16 = 1,
    LM_TYPE_Q4_0 = 2,
    LM_TYPE_Q4_1 = 3,
    LM_TYPE_Q5_0 = 6,
    LM_TYPE_Q5_1 = 7,
    LM_TYPE_Q8_0 = 8,
    LM_TYPE_Q8_1 = 9,
    LM_TYPE_Q2_K = 10,
    LM_TYPE_Q3_K = 11,
    LM_TYPE_Q4_K = 12,
    LM_TYPE_Q5_K = 13,
    LM_TYPE_Q6_K = 14,
    LM_TYPE_Q8_K = 15,
    LM_TYPE_BF16 = 30,
    LM_TYPE_COUNT = 40
};

/* "F32", "Q4_K", ...; NULL for an id that is not a known type. */
const char *lm_type_name(int type);
/* Parses a name case-insensitively ("q8_0", "f16"); -1 if unknown. */
int lm_type_from_name(const char *name);
/* True for the types the engine can read (weights) or use as activations. */
bool lm_type_known(int type);
/* Elements per block (1, 32 or 256) and bytes per block; 0 for unknown types. */
int64_t lm_type_block_size(int type);
int64_t lm_type_block_bytes(int type);
/* Bytes of a row of n elements; -1 if n is not a multiple of the block size or type unknown. */
int64_t lm_type_row_bytes(int type, int64_t n);

/* Dequantizes n elements (a multiple of the block size) to f32, bit-identical to ggml's
 * dequantize_row_*. Returns 0, or LM_EINVAL for an unknown type or a bad n. */
int lm_dequant_row(int type, const void *src, float *dst, int64_t n);

/* Quantizes n floats to a weight type (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K at least), as
 * ggml's quantize_row_*_ref does. Returns 0, or LM_EUNSUPPORTED / LM_EINVAL. */
int lm_quantize_row(int type, const float *src, void *dst, int64_t n);

/* IEEE half and bfloat16 conversions (round to nearest even, as ggml). */
float lm_f16_to_f32(uint16_t h);
uint16_t lm_f32_to_f16(float f);
float lm_bf16_to_f32(uint16_t h);
uint16_t lm_f32_to_bf16(float f);

/* ---- GGUF reader ------------------------------------------------------------------------------
 * Reads GGUF v1, v2 and v3 through mmap. Every file is treated as hostile: all offsets, counts
 * and sizes are checked against the file size before use, and no allocation exceeds what the
 * file size can justify. Pointers returned by getters are borrowed and valid until close. */

typedef struct lm_gguf lm_gguf;

enum lm_gguf_vtype {
    LM_GGUF_U8 = 0,
    LM_GGUF_I8 = 1,
    LM_GGUF_U16 = 2,
    LM_GGUF_I16 = 3,
    LM_GGUF_U32 = 4,
    LM_GGUF_I32 = 5,
    LM_GGUF_F32 = 6,
    LM_GGUF_BOOL = 7,
    LM_GGUF_STRING = 8,
    LM_GGUF_ARRAY = 9,
    LM_GGUF_U64 = 10,
    LM_GGUF_I64 = 11,
    LM_GGUF_F64 = 12,
    LM_GGUF_VTYPE_COUNT
};

struct lm_gguf_tensor {
    const char *name;  /* NUL-terminated copy */
    int type;          /* enum lm_type */
    int n_dims;        /* 1..4 */
    int64_t ne[4];     /* ggml order: ne[0] is the contiguous dimension; unused dims are 1 */
    uint64_t offset;   /* relative to the data section */
    uint64_t n_bytes;  /* size of the data */
    const void *data;  /* into the mapping; aligned to the file's alignment */
};

/* Opens and validates a GGUF file (mmap). On failure *out = NULL and errbuf says
 * "<path>: <reason>". */
int lm_gguf_open(const char *path, lm_gguf **out, char *errbuf, size_t errlen);
/* The same on a caller-owned buffer (must outlive the handle); name is used in messages. */
int lm_gguf_open_mem(const void *data, size_t size, const char *name, lm_gguf **out, char *errbuf,
                     size_t errlen);
void lm_gguf_close(lm_gguf *g);

const char *lm_gguf_path(const lm_gguf *g);
uint32_t lm_gguf_version(const lm_gguf *g);
uint64_t lm_gguf_alignment(const lm_gguf *g);
uint64_t lm_gguf_data_offset(const lm_gguf *g);
uint64_t lm_gguf_file_size(const lm_gguf *g);
/* The whole mapped file, e.g. for hashing. */
const void *lm_gguf_bytes(const lm_gguf *g);

/* Metadata key/values, in file order. */
int64_t lm_gguf_n_kv(const lm_gguf *g);
const char *lm_gguf_kv_key(const lm_gguf *g, int64_t i);
enum lm_gguf_vtype lm_gguf_kv_type(const lm_gguf *g, int64_t i);
/* For arrays: the element type and count (0 / LM_GGUF_VTYPE_COUNT for non-arrays). */
enum lm_gguf_vtype lm_gguf_kv_arr_type(const lm_gguf *g, int64_t i);
uint64_t lm_gguf_kv_arr_n(const lm_gguf *g, int64_t i);
/* Index of a key, or -1. */
int64_t lm_gguf_find_key(const lm_gguf *g, const char *key);

/* Typed getters with llama.cpp's strict typing: 0, LM_ENOTFOUND, or LM_ETYPE. */
int lm_gguf_get_u32(const lm_gguf *g, const char *key, uint32_t *out);
int lm_gguf_get_i32(const lm_gguf *g, const char *key, int32_t *out);
int lm_gguf_get_f32(const lm_gguf *g, const char *key, float *out);
int lm_gguf_get_bool(const lm_gguf *g, const char *key, bool *out);
/* String value: pointer into the mapping (not NUL-terminated) and its length. */
int lm_gguf_get_str(const lm_gguf *g, const char *key, const char **s, uint64_t *len);
/* Array of a fixed-size element type: pointer into the mapping (may be unaligned: copy with
 * memcpy), element type and count. Nested arrays are not returned (LM_ETYPE). */
int lm_gguf_get_arr(const lm_gguf *g, const char *key, enum lm_gguf_vtype *elem, uint64_t *n,
                    const void **data);
/* Element i of an array of strings (not NUL-terminated). */
int lm_gguf_get_arr_str(const lm_gguf *g, const char *key, uint64_t i, const char **s,
                        uint64_t *len);
/* Formats value i for people ("llama", "[32000 strings]", "1e-05"); returns the length. */
int lm_gguf_kv_format(const lm_gguf *g, int64_t i, char *buf, size_t cap);

/* Tensors, in file order. */
int64_t lm_gguf_n_tensors(const lm_gguf *g);
const struct lm_gguf_tensor *lm_gguf_tensor(const lm_gguf *g, int64_t i);
const struct lm_gguf_tensor *lm_gguf_find_tensor(const lm_gguf *g, const char *name);

/* ---- GGUF writer (v3) ------------------------------------------------------------------------
 * Builds a GGUF file: metadata first, then tensor infos, then data written in info order, each
 * padded to the alignment (the layout llama.cpp requires). */

typedef struct lm_gguf_writer lm_gguf_writer;

int lm_gguf_writer_open(const char *path, lm_gguf_writer **out, char *errbuf, size_t errlen);
void lm_gguf_writer_close(lm_gguf_writer *w); /* discards an unfinished file */
const char *lm_gguf_writer_errmsg(const lm_gguf_writer *w);
int lm_gguf_writer_set_u32(lm_gguf_writer *w, const char *key, uint32_t v);
int lm_gguf_writer_set_i32(lm_gguf_writer *w, const char *key, int32_t v);
int lm_gguf_writer_set_f32(lm_gguf_writer *w, const char *key, float v);
int lm_gguf_writer_set_bool(lm_gguf_writer *w, const char *key, bool v);
int lm_gguf_writer_set_str(lm_gguf_writer *w, const char *key, const char *v);
/* Array of fixed-size elements (copied). */
int lm_gguf_writer_set_arr(lm_gguf_writer *w, const char *key, enum lm_gguf_vtype elem,
                           const void *data, uint64_t n);
int lm_gguf_writer_set_arr_str(lm_gguf_writer *w, const char *key, const char *const *v,
                               uint64_t n);
/* Declares a tensor; data are supplied later, in the same order, by write_tensor_data. */
int lm_gguf_writer_add_tensor(lm_gguf_writer *w, const char *name, int type, int n_dims,
                              const int64_t *ne);
/* Writes the header (after all keys and tensor infos are declared). */
int lm_gguf_writer_begin_data(lm_gguf_writer *w);
/* Writes the next tensor's bytes (exactly its size) and its padding. */
int lm_gguf_writer_write_tensor_data(lm_gguf_writer *w, const void *data, uint64_t n_bytes);
/* Completes the file (checks every declared tensor was written) and renames it into place. */
int lm_gguf_writer_finish(lm_gguf_writer *w);

/* ---- tokenizer (SentencePiece "llama" vocabulary, as llama.cpp) ------------------------------ */

typedef struct lm_tok lm_tok;

enum lm_tok_attr {
    LM_TOK_UNDEFINED = 0,
    LM_TOK_NORMAL = 1,
    LM_TOK_UNKNOWN = 2,
    LM_TOK_CONTROL = 3,
    LM_TOK_USER_DEFINED = 4,
    LM_TOK_UNUSED = 5,
    LM_TOK_BYTE = 6,
    LM_TOK_ATTR_COUNT
};

/* Builds the tokenizer from tokenizer.ggml.* metadata. */
int lm_tok_create(const lm_gguf *g, lm_tok **out, char *errbuf, size_t errlen);
void lm_tok_destroy(lm_tok *t);

int32_t lm_tok_n_vocab(const lm_tok *t);
int32_t lm_tok_bos(const lm_tok *t);
int32_t lm_tok_eos(const lm_tok *t);
bool lm_tok_add_bos(const lm_tok *t);
bool lm_tok_add_eos(const lm_tok *t);
/* The vocabulary string of id (with U+2581 for spaces), or NULL if out of range. */
const char *lm_tok_text(const lm_tok *t, int32_t id);
enum lm_tok_attr lm_tok_attr(const lm_tok *t, int32_t id);
/* The id whose vocabulary string is exactly text, or -1. */
int32_t lm_tok_find(const lm_tok *t, const char *text);

/* Tokenizes len bytes of text as llama_tokenize(add_special, parse_special). Writes up to cap
 * ids; *n_out gets the full count. Returns 0, or LM_ERANGE when cap was too small. */
int lm_tok_encode(const lm_tok *t, const char *text, size_t len, bool add_special,
                  bool parse_special, int32_t *ids, int64_t cap, int64_t *n_out);
/* The piece of one token as llama_token_to_piece(lstrip = 0, special); returns the byte length
 * (it may be a partial UTF-8 sequence) and writes at most cap bytes, NUL-terminated if room. */
int64_t lm_tok_piece(const lm_tok *t, int32_t id, bool special, char *buf, size_t cap);
/* Detokenizes as llama_detokenize(remove_special, unparse_special). Returns the full length;
 * writes at most cap bytes, NUL-terminated if room. */
int64_t lm_tok_decode(const lm_tok *t, const int32_t *ids, int64_t n, bool remove_special,
                      bool unparse_special, char *buf, size_t cap);

/* ---- chat templates -------------------------------------------------------------------------- */

enum lm_chat_tmpl {
    LM_CHAT_ZEPHYR = 0, /* TinyLlama / Zephyr: <|system|> <|user|> <|assistant|> with </s> */
    LM_CHAT_LLAMA2 = 1, /* [INST] <<SYS>> ... [/INST] */
    LM_CHAT_CHATML = 2, /* <|im_start|>role ... <|im_end|> */
    LM_CHAT_TMPL_COUNT
};

/* Recognizes a Jinja chat template string; -1 when it matches none of ours. */
int lm_chat_detect(const char *jinja);
/* "zephyr", "llama2", "chatml"; -1 if unknown. */
int lm_chat_from_name(const char *name);
const char *lm_chat_name(int tmpl);
/* Renders one exchange (system may be NULL) with the assistant turn opened. Returns the full
 * length; writes at most cap bytes, NUL-terminated if room. Special tokens appear as text
 * (<s>, </s>, ...) and are parsed by lm_tok_encode(parse_special = true). */
int64_t lm_chat_render(int tmpl, const char *system, const char *user, char *buf, size_t cap);

/* ---- sha256 ---------------------------------------------------------------------------------- */

/* Hex digest (65 bytes with NUL) of a buffer. */
void lm_sha256_hex(const void *data, size_t len, char out[65]);

#ifdef __cplusplus
}
#endif
#endif
