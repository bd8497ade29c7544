/*
 * trc_xxh64.c - XXH64, the 64-bit xxHash, written from the public xxHash specification
 * (doc/xxhash_spec.md of the xxHash project). The codec needs it for the Content_Checksum of
 * the zstd frames it writes by hand (RFC 8878: the low 32 bits of XXH64 of the frame's content
 * with seed 0). Depends on libc only; tests/test_trace_cost.c checks it against known values
 * and against the checksums libzstd writes.
 */
#include <string.h>

#include "trc_int.h"

#define XP1 0x9E3779B185EBCA87ULL
#define XP2 0xC2B2AE3D27D4EB4FULL
#define XP3 0x165667B19E3779F9ULL
#define XP4 0x85EBCA77C2B2AE63ULL
#define XP5 0x27D4EB2F165667C5ULL

static uint32_t xread32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t xround(uint64_t acc, uint64_t lane)
{
    acc += lane * XP2;
    acc = trc__rotl64(acc, 31);
    return acc * XP1;
}

static uint64_t xmerge(uint64_t acc, uint64_t v)
{
    acc ^= xround(0, v);
    return acc * XP1 + XP4;
}

/* Steps 1-3 of the spec: the four accumulators over the 32-byte stripes, converged. */
static uint64_t xstripes(const uint8_t *p, size_t n_stripes, uint64_t seed)
{
    uint64_t v[4] = {seed + XP1 + XP2, seed + XP2, seed, seed - XP1};
    trc__lanes(v, p, n_stripes); /* the stripe round is lt64's (trc_scan.c) */
    uint64_t v1 = v[0], v2 = v[1], v3 = v[2], v4 = v[3];
    uint64_t acc =
        trc__rotl64(v1, 1) + trc__rotl64(v2, 7) + trc__rotl64(v3, 12) + trc__rotl64(v4, 18);
    acc = xmerge(acc, v1);
    acc = xmerge(acc, v2);
    acc = xmerge(acc, v3);
    return xmerge(acc, v4);
}

uint64_t trc__xxh64(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    size_t n_stripes = len / 32;
    uint64_t acc = n_stripes ? xstripes(p, n_stripes, seed) : seed + XP5;
    acc += (uint64_t)len;
    p += n_stripes * 32;
    size_t rest = len % 32; /* step 5: the remaining 0..31 bytes */
    for (; rest >= 8; rest -= 8, p += 8) {
        acc ^= xround(0, trc__load_le64(p));
        acc = trc__rotl64(acc, 27) * XP1 + XP4;
    }
    if (rest >= 4) {
        acc ^= (uint64_t)xread32(p) * XP1;
        acc = trc__rotl64(acc, 23) * XP2 + XP3;
        rest -= 4;
        p += 4;
    }
    for (; rest > 0; rest--, p++) {
        acc ^= (uint64_t)*p * XP5;
        acc = trc__rotl64(acc, 11) * XP1;
    }
    acc ^= acc >> 33; /* step 6: avalanche */
    acc *= XP2;
    acc ^= acc >> 29;
    acc *= XP3;
    acc ^= acc >> 32;
    return acc;
}
