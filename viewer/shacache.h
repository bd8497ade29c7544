/*
 * The SHA-256 of a model file, remembered across runs (shacache.c): hashing a 1.1 GB model takes
 * 0.6-0.8 s, as long as a short traced run, and `run -o`, `replay`, `explain`, `report` and
 * `import` all need it.
 */
#ifndef VW_SHACACHE_H
#define VW_SHACACHE_H

#include "lm.h"

/* The SHA-256 (64 lower-case hex digits) of the file g was opened from, from the cache when it
 * holds the file as it was mapped, else hashed (and remembered); of the bytes when g was opened
 * from memory. */
void vw_gguf_sha256(const lm_gguf *g, char out[65]);
/* The same for a model, given to it (lm_model_set_sha256); returns lm_model_sha256(m). */
const char *vw_model_sha256(lm_model *m);
/* The cache's directory: $LLTRACE_CACHE_DIR (empty: no cache), else $XDG_CACHE_HOME/lltrace,
 * else $HOME/.cache/lltrace; NULL when there is none. Malloc'd. */
char *vw_cache_dir(void);

#endif
