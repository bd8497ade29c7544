/*
 * SHA-256 block function with the x86 SHA extensions (sha256rnds2 / sha256msg1 / sha256msg2),
 * used by sha256.c when the CPU has them: hashing a 2 GB model drops from seconds to about a
 * second. The state is kept as the (ABEF, CDGH) register pair the instructions expect. Compiled
 * with -msha -msse4.1 (CMake: files named *_shani.c); called only after a cpuid check.
 */
#include "sha256_int.h"

#include <immintrin.h>

void lm__sha256_blocks_shani(uint32_t h[8], const uint8_t *p, size_t n_blocks)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xB1); /* b a d c */
    __m128i st1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1B); /* h g f e */
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8);                                     /* ABEF */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);                                          /* CDGH */

    for (size_t blk = 0; blk < n_blocks; blk++, p += 64) {
        const __m128i save0 = st0, save1 = st1;
        __m128i m[4];
        for (int g = 0; g < 16; g++) {
            __m128i w;
            if (g < 4) {
                w = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), bswap);
            } else {
                /* W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], four words at a time */
                w = _mm_sha256msg1_epu32(m[g % 4], m[(g + 1) % 4]);
                w = _mm_add_epi32(w, _mm_alignr_epi8(m[(g + 3) % 4], m[(g + 2) % 4], 4));
                w = _mm_sha256msg2_epu32(w, m[(g + 3) % 4]);
            }
            m[g % 4] = w;
            __m128i msg = _mm_add_epi32(w, _mm_loadu_si128((const __m128i *)&lm__sha256_k[4 * g]));
            st1 = _mm_sha256rnds2_epu32(st1, st0, msg);
            st0 = _mm_sha256rnds2_epu32(st0, st1, _mm_shuffle_epi32(msg, 0x0E));
        }
        st0 = _mm_add_epi32(st0, save0);
        st1 = _mm_add_epi32(st1, save1);
    }

    tmp = _mm_shuffle_epi32(st0, 0x1B); /* a b e f */
    st1 = _mm_shuffle_epi32(st1, 0xB1); /* g h c d */
    _mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(tmp, st1, 0xF0));
    _mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(st1, tmp, 8));
}
