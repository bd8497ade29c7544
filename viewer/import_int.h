/*
 * import_int.h - internals of `lltrace import`: turning what other engines print or save into
 * an lltrace trace.
 *
 * The importers work in three stages so that each can be tested on its own:
 *   1. parse   the source (llama.cpp eval-callback text, llama-debug logits, .npy/.npz files)
 *              into plain records (struct vw_lc_dump, or tensors read from disk);
 *   2. map     records to canonical ops (DESIGN.md names) through a name map that is data
 *              (viewer/namemap.c for llama.cpp, the embedded/--map text for Hugging Face);
 *              the result is a struct vw_imp: steps, tokens, ops, run parameters;
 *   3. write   the struct vw_imp through the tracer's public writer API (import_write.c).
 * Nothing here prints: diagnostics are returned as text ("<file>: <reason>") and warnings are
 * collected in the vw_imp for the command to show.
 */
#ifndef VW_IMPORT_INT_H
#define VW_IMPORT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VW_IMP_NAME_MAX 160
#define VW_IMP_ERR_MAX  512

/* ---- stage 1: llama.cpp eval-callback text -----------------------------------------------------
 */

/* One graph node as printed by llama.cpp's eval callback (common_debug_cb_eval / ggml_debug). */
struct vw_lc_record {
    char name[VW_IMP_NAME_MAX];   /* "Qcur-0", "cache_k_l0 (view)" */
    char op[32];                  /* ggml_op_desc(): "MUL_MAT", "ROPE", "SWIGLU" */
    char type[16];                /* "f32", "f16", "q8_0" */
    char src[2][VW_IMP_NAME_MAX]; /* source tensor names as printed, "" when absent */
    int64_t ne[4];                /* ggml order: ne[0] is the fastest-varying dimension */
    int64_t line;                 /* 1-based line of the header */
    int64_t n_vals;               /* printed elements */
    int64_t *idx;                 /* (n_vals) flat index i0 + ne0*(i1 + ne1*(i2 + ne2*i3)), which
                                     is the row-major index of numpy shape (ne3, ne2, ne1, ne0) */
    float *vals;                  /* (n_vals) printed values */
    bool has_sum;
    char sum_text[40];    /* the printed `sum = ` value, verbatim */
    char sum_sq_text[40]; /* llama-debug's `sum_sq = ` value, or "" */
    double atol;          /* half a unit in the last printed place (4 decimals: 5e-5) */
};

struct vw_lc_dump {
    struct vw_lc_record *recs; /* complete records, in print order */
    int64_t n_recs;
    int64_t cap;
    const char *format; /* "common_debug_cb_eval" or "ggml_debug" (static) */
    bool truncated;     /* the text ended inside a record */
    int64_t trunc_line; /* line where the truncated record starts */
    char trunc_name[VW_IMP_NAME_MAX];
    int64_t n_lines;
};

/* Parses eval-callback text (len bytes, text[len] must be readable and NUL). path names the
 * input in messages. A record cut off by the end of the text is not an error: it is reported
 * through out->truncated. Returns 0, or -1 with "<path>: <reason>" (garbage, binary data, a
 * malformed record, no record at all) in err. Release out with vw_lc_dump_release. */
int vw_lc_parse(const char *text, size_t len, const char *path, struct vw_lc_dump *out, char *err,
                size_t errlen);
void vw_lc_dump_release(struct vw_lc_dump *d);

/* ---- the llama.cpp name map (namemap.c) ---------------------------------------------------------
 */

/* How a matched node's printed elements become the canonical tensor. */
enum vw_xform {
    VW_XFORM_NONE = 0,    /* same elements, same flat indices */
    VW_XFORM_SKIP,        /* not recorded: a view/alias of another node, or not canonical */
    VW_XFORM_OUT_IDS,     /* not recorded; marks the last layer's reduction to output rows */
    VW_XFORM_CACHE_ROWS,  /* SET_ROWS into the whole cache [kv_size][kv_dim]: keep this step's
                             rows (cell == position) */
    VW_XFORM_CACHE_VT,    /* SET_ROWS into the transposed V cache [kv_dim][kv_size] flattened */
    VW_XFORM_CACHE_FLAT,  /* older CPY into a flat view of the written rows [n_tokens*kv_dim] */
    VW_XFORM_CACHE_TRANS, /* older CPY into a transposed view [kv_dim][n_tokens] of V */
    VW_XFORM_COUNT
};

/* One row of the map: pure data. Patterns are exact names where "{L}" matches a layer number
 * and "{N}" any number, and a leading "*" matches any prefix. op "*" matches any op. */
struct vw_map_row {
    const char *pattern;   /* llama.cpp node name, e.g. "Qcur-{L}" */
    const char *op;        /* ggml_op_desc(), e.g. "ROPE" */
    const char *canonical; /* "blk.{L}.rope_q", or NULL when not recorded */
    const char *kind;      /* rms_norm, matmul, rope, ... (NULL when not recorded) */
    int tok_axis;          /* ggml ne index that holds the tokens (rows) */
    enum vw_xform xform;
    const char *params; /* extra JSON members for the op's params, or NULL */
    const char *note;   /* why, for skipped rows and documentation */
};

/* The whole table and its size. The pointer is static. */
const struct vw_map_row *vw_lcmap_rows(int *n_rows);
/* The first row matching (name, op), or NULL; *layer gets the {L} number or -1. */
const struct vw_map_row *vw_lcmap_match(const char *name, const char *op, int *layer);
/* Matches name against one pattern; *num gets the {L}/{N} number or -1. */
bool vw_lcmap_pattern_match(const char *pattern, const char *name, int *num);
/* Expands "blk.{L}.attn_q" for a layer into buf. Returns 0 or -1 if it does not fit. */
int vw_lcmap_expand(const char *tmpl, int layer, char *buf, size_t cap);

/* ---- stage 2: the importable content --------------------------------------------------------- */

struct vw_imp_op {
    char name[64]; /* canonical name */
    char kind[24];
    int layer; /* -1 when none */
    int64_t step;
    int64_t pos0;
    int64_t n_pos;
    int n_dims;
    int64_t shape[4]; /* numpy order */
    int64_t n_known;  /* elements in vals */
    int64_t *known;   /* (n_known) flat row-major indices, or NULL when vals is the full tensor */
    float *vals;      /* (n_known) */
    char *params;     /* JSON object (malloc'd) */
    char weight[VW_IMP_NAME_MAX]; /* GGUF weight name or "" */
};

struct vw_imp_step {
    int64_t step;
    int64_t pos0;
    int64_t n_tokens;
};

struct vw_imp_token {
    int32_t id;
    bool is_prompt;
    bool is_bos;
    char piece[64];
};

enum vw_kv_type { VW_KV_STR, VW_KV_I64, VW_KV_F64 };

struct vw_imp_kv {
    char key[48];
    enum vw_kv_type type;
    char *s; /* malloc'd for VW_KV_STR */
    int64_t i;
    double f;
};

struct vw_imp {
    const char *source; /* "llama.cpp-text", "llama.cpp-logits", "npy" */
    struct vw_imp_op *ops;
    int64_t n_ops, cap_ops;
    struct vw_imp_step *steps;
    int64_t n_steps, cap_steps;
    struct vw_imp_token *tokens;
    int64_t n_tokens, cap_tokens;
    struct vw_imp_kv *kv;
    int n_kv, cap_kv;
    /* accounting (what the closing report and `import` print) */
    int64_t n_records;   /* input records/files considered */
    int64_t n_partial;   /* recorded ops holding only some elements */
    int64_t n_skipped;   /* matched a map row that is not recorded (views, aliases) */
    int64_t n_unmatched; /* matched no map row */
    int64_t n_empty;     /* matched, but no printed element falls in the op's rows */
    int64_t n_nodata;    /* printed without data (quantized types) */
    char *unmatched;     /* malloc'd, comma-separated unique unmatched names (or NULL) */
    char *used_map;      /* malloc'd JSON array of the map rows that matched */
    char *warnings;      /* malloc'd, newline-separated warnings (or NULL) */
};

void vw_imp_init(struct vw_imp *imp, const char *source);
void vw_imp_release(struct vw_imp *imp);
/* Appends; return 0 or -1 (out of memory). */
int vw_imp_add_step(struct vw_imp *imp, int64_t step, int64_t pos0, int64_t n_tokens);
int vw_imp_add_token(struct vw_imp *imp, int32_t id, bool is_prompt);
struct vw_imp_op *vw_imp_add_op(struct vw_imp *imp); /* zeroed slot, or NULL */
int vw_imp_set_str(struct vw_imp *imp, const char *key, const char *value);
int vw_imp_set_i64(struct vw_imp *imp, const char *key, int64_t value);
int vw_imp_set_f64(struct vw_imp *imp, const char *key, double value);
const struct vw_imp_kv *vw_imp_get(const struct vw_imp *imp, const char *key);
int vw_imp_warn(struct vw_imp *imp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends name to the unmatched list unless present. */
int vw_imp_note_unmatched(struct vw_imp *imp, const char *name);

/* Options of the llama.cpp text mapping. */
struct vw_lc_opts {
    const int32_t *tokens; /* prompt token ids (NULL if unknown) */
    int64_t n_tokens;
};

/* Maps a parsed dump to canonical ops. Returns 0, or -1 with "<path>: <reason>" in err when no
 * node matches the llama map (an architecture we do not know). */
int vw_lc_map(const struct vw_lc_dump *d, const char *path, const struct vw_lc_opts *opts,
              struct vw_imp *imp, char *err, size_t errlen);

/* Whole pipeline for a text dump file: read, parse, map. Returns 0 or -1 with err. */
int vw_import_llamacpp_text(const char *path, const struct vw_lc_opts *opts, struct vw_imp *imp,
                            char *err, size_t errlen);

/* llama-debug --save-logits: raw little-endian f32 logits of the last prompt position
 * (logits_path) and the prompt's token ids (n_tokens >= 1). prompt may be NULL. */
int vw_import_llamacpp_logits(const char *logits_path, const int32_t *tokens, int64_t n_tokens,
                              const char *prompt, struct vw_imp *imp, char *err, size_t errlen);

/* Token lists: "1,403,407" (commas and/or spaces), a raw int32 .bin file (llama-debug
 * -tokens.bin), or a text file of ids. *ids is malloc'd. Returns 0 or -1 with err. */
int vw_tokens_parse_list(const char *s, int32_t **ids, int64_t *n, char *err, size_t errlen);
int vw_tokens_read(const char *arg, int32_t **ids, int64_t *n, char *err, size_t errlen);
/* llama-debug's -prompt.txt ("prompt: ...", "n_tokens: N", "token ids: a, b"). *prompt and *ids
 * are malloc'd. */
int vw_prompt_file_read(const char *path, char **prompt, int32_t **ids, int64_t *n, char *err,
                        size_t errlen);
/* The same from text[0..len) (text[len] must be readable and NUL); name is used in messages. */
int vw_prompt_text_parse(const char *text, size_t len, const char *name, char **prompt,
                         int32_t **ids, int64_t *n, char *err, size_t errlen);

/* Reads a whole file (NUL-terminated, malloc'd). Returns 0 or -1 with "<path>: <reason>". */
int vw_file_slurp(const char *path, char **buf, size_t *len, char *err, size_t errlen);

/* ---- NumPy dumps (import_npy.c) -----------------------------------------------------------------
 */

struct vw_npy_opts {
    const char *map_path; /* NULL: the built-in Hugging Face Llama map */
    bool unpermute_qk;
    int n_head;
    int n_head_kv;
    const int32_t *tokens;
    int64_t n_tokens;
};

/* The built-in map text (static). */
const char *vw_hf_default_map(void);

int vw_import_npy_dir(const char *dir, const struct vw_npy_opts *opts, struct vw_imp *imp,
                      char *err, size_t errlen);

/* Undoes the Q/K row permutation of convert_hf_to_gguf.py on one row of n_heads * head_dim
 * values: out[h*hd + 2*i + j] = in[h*hd + j*hd/2 + i]. Returns 0 or -1 if dim does not split. */
int vw_unpermute_qk_row(const float *in, float *out, int64_t dim, int n_heads);

/* Members of a .npz (zip) file: STORED members only (np.savez). The callback gets each member's
 * name and bytes; a non-zero return stops the walk and is returned. Returns 0, the callback's
 * value, or -1 with err. */
typedef int (*vw_npz_member_fn)(const char *name, const void *data, size_t len, void *user);
int vw_npz_walk(const void *buf, size_t len, const char *path, vw_npz_member_fn fn, void *user,
                char *err, size_t errlen);

/* ---- stage 3 (import_write.c) -------------------------------------------------------------------
 */

/* Writes imp to a new trace at path (overwrite: replace an existing file). Synchronous writer,
 * so the content is a pure function of imp. Returns 0 or -1 with err; on failure no partial
 * output file is left behind. */
int vw_imp_write(const struct vw_imp *imp, const char *path, bool overwrite, char *err,
                 size_t errlen);

#endif
