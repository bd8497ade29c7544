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
    const char *name; /* NUL-terminated copy */
    int type;         /* enum lm_type */
    int n_dims;       /* 1..4 */
    int64_t ne[4];    /* ggml order: ne[0] is the contiguous dimension; unused dims are 1 */
    uint64_t offset;  /* relative to the data section */
    uint64_t n_bytes; /* size of the data */
    const void *data; /* into the mapping; aligned to the file's alignment */
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
/* What a file was when lm_gguf_open mapped it (fstat): writing or replacing the file changes
 * dev/ino, size, mtime or ctime. A cache of the file's SHA-256 keys on it (viewer/shacache.c). */
struct lm_file_id {
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns; /* last modification, last status change: ns since the epoch */
    int64_t opened_ns;          /* when lm_gguf_open ran (CLOCK_REALTIME, ns since the epoch) */
};
/* The identity of the file g was opened from; false for lm_gguf_open_mem. */
bool lm_gguf_file_id(const lm_gguf *g, struct lm_file_id *id);
/* The identity of the file at path now (opened_ns: the time of the call); false when it cannot
 * be stat'ed. */
bool lm_file_id_of(const char *path, struct lm_file_id *id);

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

/* Checks that g is a llama model: general.architecture "llama"; the hyper-parameters present
 * with llama.cpp's strict types (context_length, embedding_length, block_count,
 * feed_forward_length, attention.head_count: u32; layer_norm_rms_epsilon: f32) and consistent;
 * every required tensor present with the shape they imply (output.weight and rope_freqs.weight
 * optional) and no other tensor. Returns 0, or LM_EFORMAT / LM_ETYPE / LM_EUNSUPPORTED with
 * "<path>: <reason>" in errbuf, e.g. "missing required tensor 'blk.1.ffn_up.weight'". */
int lm_gguf_check_llama(const lm_gguf *g, char *errbuf, size_t errlen);

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
/* A scalar of any fixed-size type (LM_GGUF_U8 ... LM_GGUF_F64; a bool is one byte) read from v. */
int lm_gguf_writer_set_val(lm_gguf_writer *w, const char *key, enum lm_gguf_vtype type,
                           const void *v);
/* Copies key/value i of an open reader, any type including nested arrays (v1 lengths are
 * widened to v3's 64 bits). */
int lm_gguf_writer_copy_kv(lm_gguf_writer *w, const lm_gguf *g, int64_t i);
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

/* Builds the tokenizer from tokenizer.ggml.* metadata (everything is copied: the lm_gguf may be
 * closed afterwards). The handle is immutable, so one lm_tok may be used from several threads.
 * Errors: LM_ENOTFOUND / LM_ETYPE / LM_EFORMAT / LM_EUNSUPPORTED (not a 'llama' vocabulary),
 * with "<path>: <reason>" in errbuf. */
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
/* The SentencePiece score of id (0 if out of range). */
float lm_tok_score(const lm_tok *t, int32_t id);
/* True for end-of-generation tokens as llama.cpp marks them (EOS, "</s>", "<|im_end|>", ...). */
bool lm_tok_is_eog(const lm_tok *t, int32_t id);

/* Tokenizes len bytes of text as llama_tokenize(add_special, parse_special). Writes up to cap
 * ids; *n_out gets the full count. Returns 0, or LM_ERANGE when cap was too small (ids then
 * holds the first cap), LM_ENOTFOUND when a byte has neither a <0xXX> nor a one-byte token. */
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
    LM_CHAT_ZEPHYR = 0,       /* TinyLlama / Zephyr: <|system|> <|user|> <|assistant|> with </s> */
    LM_CHAT_LLAMA2 = 1,       /* [INST] <<SYS>> ... [/INST] (llama.cpp's "llama2-sys") */
    LM_CHAT_CHATML = 2,       /* <|im_start|>role ... <|im_end|> */
    LM_CHAT_LLAMA2_STRIP = 3, /* LLAMA2 with trimmed messages (Llama-2-chat's own template) */
    LM_CHAT_LLAMA2_NOSYS = 4, /* [INST] sys\nmsg [/INST] (llama.cpp's "llama2"; Mistral v0.1) */
    LM_CHAT_TMPL_COUNT
};

/* Recognizes a Jinja chat template string (or a template name) with llama.cpp's substring
 * heuristics (llm_chat_detect_template); -1 when it matches none of ours. */
int lm_chat_detect(const char *jinja);
/* "zephyr", "llama2" (or "llama2-sys"), "chatml", "llama2-sys-strip", "llama2-nosys"; -1 if
 * unknown. */
int lm_chat_from_name(const char *name);
const char *lm_chat_name(int tmpl);
/* Renders one exchange (system may be NULL) with the assistant turn opened. Returns the full
 * length (or LM_EINVAL for an unknown template or a NULL user); writes at most cap bytes,
 * NUL-terminated if room. Special tokens appear as text (<s>, </s>, ...) and are parsed by
 * lm_tok_encode(parse_special = true); the BOS is not in the text (add_special adds it). */
int64_t lm_chat_render(int tmpl, const char *system, const char *user, char *buf, size_t cap);

/* ---- sha256 ---------------------------------------------------------------------------------- */

/* Hex digest (65 bytes with NUL) of a buffer. */
void lm_sha256_hex(const void *data, size_t len, char out[65]);

/* ---- ops: the engine's kernels, callable on their own (the forward pass and replay) ---------- */

enum lm_rope_mode {
    LM_ROPE_NORM = 0, /* adjacent pairs (2i, 2i+1): llama */
    LM_ROPE_NEOX = 2, /* half-split pairs (i, i + n_rot/2) */
};

/* ggml_v_expf (AVX-512 variant) for one element. */
float lm_expf_ggml(float x);
/* Sum of 16 floats in _mm512_reduce_add_ps order. */
float lm_reduce16(const float a[16]);
/* (n_rows, n) -> (n_rows, n); w (n) or NULL. */
void lm_op_rms_norm(const float *x, const float *w, int64_t n_rows, int64_t n, float eps,
                    float *out);
/* cos/sin (n_rot/2) of one position. */
void lm_op_rope_cache(int64_t pos, int n_rot, float theta_base, float freq_scale, float *cos_out,
                      float *sin_out);
/* x (n_rows, n_heads, head_dim), cs/sn (n_rows, n_rot/2) -> out like x. */
void lm_op_rope(const float *x, int64_t n_rows, int n_heads, int head_dim, int n_rot, int mode,
                const float *cs, const float *sn, float *out);
/* One row of n scaled, masked scores -> probabilities. */
void lm_op_softmax(const float *w, int64_t n, bool f16_accum, float *out);
/* out = silu(g) * u, n elements. */
void lm_op_swiglu(const float *g, const float *u, int64_t n, float *out);
void lm_op_add(const float *a, const float *b, int64_t n, float *out);

/* Attention geometry shared by the two attention ops. */
struct lm_attn_shape {
    int64_t n; /* query rows (tokens) */
    int64_t n_head, n_head_kv, head_dim;
    int64_t pos0;  /* absolute position of query row 0: cells > pos0 + t are masked */
    int64_t n_kv;  /* cells 0..n_kv-1 are visible */
    int kv_type;   /* LM_TYPE_F32 or LM_TYPE_F16: how K/V are stored */
    bool gqa_tile; /* the gqa=tile fault */
};

/* Scores of query head h: out (n, n_kv) = dot(K[cell], Q[t]) / sqrt(head_dim), -inf where
 * masked. q (n, n_head, head_dim); k (n_kv rows of n_head_kv*head_dim, kv_type), row stride
 * k_ld elements. scratch: head_dim floats. As llama.cpp: ggml_vec_dot_f32 (f32 cache) or Q
 * rounded to f16 and ggml_vec_dot_f16 (f16 cache). */
void lm_op_attn_scores_head(const struct lm_attn_shape *a, int64_t h, const float *q, const void *k,
                            int64_t k_ld, float *scratch, float *out);
/* Context of query head h: out[t][h*head_dim + d] = sum over cells of p[t][cell] * V[cell][d].
 * p (n, n_kv) for this head; vt is V transposed: (n_head_kv*head_dim rows, vt_ld cells,
 * kv_type) with zeros from n_kv up to a multiple of 64 cells (vt_ld >= that). out (n,
 * n_head*head_dim). scratch: n_kv rounded up to 64, plus 64, floats. tinyBLAS structure for
 * n >= 2, vec_dot for n == 1, over the padded length (llama.cpp pads to 256 exact zeros). */
void lm_op_attn_context_head(const struct lm_attn_shape *a, int64_t h, const float *p,
                             const void *vt, int64_t vt_ld, float *scratch, float *out);

/* ---- model and inference -----------------------------------------------------------------------
 */

typedef struct lm_model lm_model;
typedef struct lm_ctx lm_ctx;
struct trc_writer; /* tracer/include/trc.h */
struct trc_op;

struct lm_hparams {
    int64_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, head_dim, n_rot, n_ff;
    float rms_eps, rope_theta, rope_freq_scale;
    int rope_mode;    /* enum lm_rope_mode */
    int weight_type;  /* type of blk.0.attn_q.weight (the "model type") */
    bool tied_output; /* no output.weight: logits use token_embd */
};

/* Opens a model: GGUF, llama checks, tokenizer. errbuf gets "<path>: <reason>". */
int lm_model_open(const char *path, lm_model **out, char *errbuf, size_t errlen);
void lm_model_close(lm_model *m);
const struct lm_hparams *lm_model_hparams(const lm_model *m);
const lm_tok *lm_model_tok(const lm_model *m);
const lm_gguf *lm_model_gguf(const lm_model *m);
const char *lm_model_path(const lm_model *m);
/* SHA-256 of the model file (computed once, on first call; takes a while on big models). */
const char *lm_model_sha256(lm_model *m);
/* Gives the model its SHA-256 (64 lower-case hex digits) when the caller already knows it (a
 * cache keyed by lm_gguf_file_id), so that lm_model_sha256 does not hash the file. */
void lm_model_set_sha256(lm_model *m, const char *hex);
/* The model's chat template string, or NULL. */
const char *lm_model_chat_template(const lm_model *m);

/* Faults injected on purpose (lltrace run --inject), to reproduce real bugs. Zero = none. */
struct lm_faults {
    int rope_mode;      /* -1: model's; else LM_ROPE_NORM / LM_ROPE_NEOX */
    float rope_theta;   /* 0: model's */
    int64_t pos_offset; /* added to every position */
    int bos;            /* 0 normal, 1 none, 2 double (applied by lm_prompt_tokens) */
    float rms_eps;      /* 0: model's */
    bool gqa_tile;      /* query head h reads KV head h % n_head_kv instead of h / group */
    bool softmax_f16;   /* softmax exps and sum in half precision */
    bool qk_permute;    /* Q/K rows in Hugging Face order (as before GGUF conversion) */
    bool kv_f16;        /* KV cache in f16 (as --kv-type f16) */
};
/* Parses one "--inject" value ("rope=neox", "pos-offset=3", ...) into f. 0 or LM_EINVAL with a
 * message in errbuf. */
int lm_faults_parse(struct lm_faults *f, const char *spec, char *errbuf, size_t errlen);
/* Formats active faults as "rope=neox,kv=f16" ("" if none). Returns length. */
int lm_faults_format(const struct lm_faults *f, char *buf, size_t cap);
void lm_faults_init(struct lm_faults *f);

struct lm_ctx_opts {
    int64_t n_ctx;    /* 0: the model's context length, capped at 4096 */
    int n_threads;    /* 0: 2 */
    int kv_type;      /* LM_TYPE_F32 (default) or LM_TYPE_F16 */
    int64_t n_ubatch; /* max tokens per forward pass; 0: 512 */
    struct lm_faults faults;
    struct trc_writer *trace; /* record ops here (borrowed), or NULL */
    /* Called after every op with the same description the tracer gets (tensors borrowed for
     * the duration of the call), or NULL. For tests and embedders. */
    void (*on_op)(void *user, int64_t step, const struct trc_op *op);
    void *on_op_user;
    /* Called at the end of every decode call, after the forward pass of its last chunk and
     * before that step is committed to the trace, with the last token's logits (borrowed), or
     * NULL. A caller that samples there and records the token (trc_token_add) has it committed
     * with the step that produced it, in the same transaction. A negative return fails the
     * decode (LM_EIO; the step is not committed). */
    int (*on_logits)(void *user, const float *logits);
    void *on_logits_user;
};

/* Creates an inference context (KV cache, buffers, thread pool) for a model. */
int lm_ctx_create(lm_model *m, const struct lm_ctx_opts *o, lm_ctx **out, char *errbuf,
                  size_t errlen);
void lm_ctx_destroy(lm_ctx *c);
const char *lm_ctx_errmsg(const lm_ctx *c);
/* Runs tokens [0, n) at the next positions as one decode call (step), leaving the logits of
 * the last token. Prompts longer than n_ubatch are processed in chunks. */
int lm_ctx_decode(lm_ctx *c, const int32_t *tokens, int64_t n);
/* Logits (n_vocab) of the last decoded token. Borrowed until the next decode. */
const float *lm_ctx_logits(const lm_ctx *c);
/* Number of positions filled so far, and the step counter (decode calls so far). */
int64_t lm_ctx_n_past(const lm_ctx *c);
int64_t lm_ctx_n_steps(const lm_ctx *c);
/* Context size in cells (a multiple of 256). */
int64_t lm_ctx_n_ctx(const lm_ctx *c);
/* The SIMD path the kernels use now ("avx2", "scalar"). */
const char *lm_simd_current(void);

/* out (n, rows) = in (n, k) times the rows of the model's weight `name`, with the engine's
 * kernel (activation conversion included), on the calling thread: the bits equal the forward
 * pass's. Returns 0, LM_ENOTFOUND (no such weight) or LM_EINVAL (k does not match). */
int lm_model_matmul(const lm_model *m, const char *name, const float *in, int64_t n, float *out);
/* Shape of a weight as (rows, k), or LM_ENOTFOUND. */
int lm_model_weight_shape(const lm_model *m, const char *name, int64_t *rows, int64_t *k);

/* Tokenizes a prompt as llama.cpp does (BOS per the vocabulary; parse_special), honouring the
 * bos fault. Writes up to cap ids, *n_out the count. */
int lm_prompt_tokens(const lm_model *m, const struct lm_faults *f, const char *text, int32_t *ids,
                     int64_t cap, int64_t *n_out);

/* ---- sampling ------------------------------------------------------------------------------- */

struct lm_sampler_opts {
    float temp;    /* <= 0: greedy (first maximum wins, as llama.cpp) */
    int top_k;     /* 0: off */
    float top_p;   /* 1: off */
    uint64_t seed; /* reproducible */
};
typedef struct lm_sampler lm_sampler;
lm_sampler *lm_sampler_create(const struct lm_sampler_opts *o, int64_t n_vocab);
void lm_sampler_destroy(lm_sampler *s);
/* Picks a token from logits; *prob gets its probability under the sampler's distribution. */
int32_t lm_sampler_sample(lm_sampler *s, const float *logits, float *prob);

/* ---- synthetic models ------------------------------------------------------------------------ */

struct lm_mkmodel_opts {
    const char *preset; /* "tiny" (NULL: default), "stories", "tinyllama-1.1b" */
    int type;           /* weight type of the matrices (LM_TYPE_F32, F16, BF16, Q8_0, Q4_0, Q4_K,
                           Q6_K, ...); norms stay f32. A matrix whose rows do not fit the type's
                           block falls back as llama-quantize does (Q4_K -> Q5_0, Q6_K -> Q8_0,
                           ...), then to F32 (stories' ffn_down: 172 columns) */
    uint64_t seed;      /* PRNG seed: the same options always give the same bytes */
};

/* Writes a complete, deterministic llama GGUF (v3) that llama.cpp loads: every hyper-parameter
 * key with its strict type, a generated SentencePiece vocabulary (<unk>, <s>, </s>, 256 byte
 * tokens, then word pieces with decreasing scores), a zephyr chat template for tinyllama-1.1b,
 * and seeded weights scaled so activations stay finite (norms ~1, matrices std 1/sqrt(fan_in)).
 * Uses 2 threads. NULL o means defaults (tiny, F32, seed 0). Returns 0, or a negative LM_E*
 * code with "<path>: <reason>" in errbuf. */
int lm_mkmodel_write(const char *path, const struct lm_mkmodel_opts *o, char *errbuf,
                     size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
