/*
 * gguf_int.h - the in-memory form of a parsed GGUF file, shared by the reader (gguf_read.c), the
 * accessors (gguf.c), the llama checks (gguf_llama.c) and the writer's copy of values
 * (gguf_write.c). Nothing outside src/gguf*.c (and tests) includes it.
 *
 * After lm_gguf_open* succeeds every offset and length stored here has been checked against the
 * mapping, so the accessors may trust them.
 */
#ifndef LM_GGUF_INT_H
#define LM_GGUF_INT_H

#include <stddef.h>
#include <stdint.h>

#include "lm.h"

#define LM__GGUF_MAX_NAME      64           /* tensor names are shorter (ggml GGML_MAX_NAME) */
#define LM__GGUF_MAX_ALIGN     (1u << 20)   /* larger general.alignment values are rejected */
#define LM__GGUF_MAX_STRING    (1ull << 30) /* llama.cpp GGUF_MAX_STRING_LENGTH */
#define LM__GGUF_MAX_DEPTH     8            /* arrays nested deeper than this are rejected */
#define LM__GGUF_DEFAULT_ALIGN 32

/* One key/value pair. */
struct lm__gguf_kv {
    char *key;                   /* NUL-terminated copy */
    enum lm_gguf_vtype type;     /* value type */
    enum lm_gguf_vtype arr_type; /* arrays: element type; otherwise LM_GGUF_VTYPE_COUNT */
    uint64_t arr_n;              /* arrays: element count; otherwise 0 */
    const uint8_t *val;          /* payload in the mapping: scalar bytes, string bytes, or the
                                    first array element (just after the element type and count) */
    uint64_t val_len;            /* payload bytes (for strings: the string length) */
    uint64_t *str_off;           /* arrays of strings: offset from val of each element's length
                                    prefix (arr_n entries); NULL otherwise */
};

/* One tensor: the public record plus storage for its name. */
struct lm__gguf_tensor {
    struct lm_gguf_tensor pub;
    char name[LM__GGUF_MAX_NAME];
};

struct lm_gguf {
    char *path;          /* the name used in messages */
    const uint8_t *base; /* the whole file */
    uint64_t size;       /* its size in bytes */
    void *map;           /* mmap'd region (NULL for lm_gguf_open_mem) */
    size_t map_len;
    bool has_id;          /* opened from a file (lm_gguf_open) */
    struct lm_file_id id; /* the file when it was mapped */
    uint32_t version;     /* 1, 2 or 3 */
    uint64_t alignment;   /* general.alignment or 32 */
    uint64_t data_offset; /* file offset of the tensor data section */
    int64_t n_kv;
    struct lm__gguf_kv *kv;         /* (n_kv) in file order */
    struct lm__gguf_kv **kv_sorted; /* (n_kv) sorted by key, for lookup */
    int64_t n_tensors;
    struct lm__gguf_tensor *tensors;         /* (n_tensors) in file order */
    struct lm__gguf_tensor **tensors_sorted; /* (n_tensors) sorted by name */
};

/* Size in bytes of a fixed-size value type; 0 for strings, arrays and unknown types. */
uint64_t lm__gguf_vtype_size(int type);
/* Short name of a value type ("u32", "string", "array"); "?" for unknown ones. */
const char *lm__gguf_vtype_name(int type);
/* Bytes of a string's or an array count's length field: 4 in GGUF v1, 8 later. */
static inline uint64_t lm__gguf_len_size(const lm_gguf *g)
{
    return g->version == 1 ? 4 : 8;
}
/* Reads a little-endian length field of lm__gguf_len_size(g) bytes at p. */
uint64_t lm__gguf_read_len(const lm_gguf *g, const uint8_t *p);
/* Bytes taken by one already-validated value of the given type at p (strings and arrays
 * included); used to walk nested arrays. */
uint64_t lm__gguf_value_bytes(const lm_gguf *g, int type, const uint8_t *p);
/* The kv record for a key, or NULL. */
const struct lm__gguf_kv *lm__gguf_kv_get(const lm_gguf *g, const char *key);

#endif
