/* Internal entry points of sha256.c: the portable and SHA-extension block functions, so tests
 * can check that both give the same digest. */
#ifndef LM_SHA256_INT_H
#define LM_SHA256_INT_H

#include <stddef.h>
#include <stdint.h>

/* The 64 round constants (FIPS 180-4 section 4.2.2). */
extern const uint32_t lm__sha256_k[64];

/* lm_sha256_hex with the block function chosen by the caller (use_shani needs the CPU's SHA
 * extensions). */
void lm__sha256_hex_impl(const void *data, size_t len, char out[65], int use_shani);
/* n_blocks 64-byte blocks into the state h (sha256_shani.c). */
void lm__sha256_blocks_shani(uint32_t h[8], const uint8_t *p, size_t n_blocks);
/* True when the CPU has the SHA extensions and SSE4.1. */
int lm__sha256_have_shani(void);

#endif
