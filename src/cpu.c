/*
 * cpu.c - run-time CPU feature detection (cpuid and xgetbv) and the choice of kernel level:
 * the AVX2 kernels need AVX2, FMA and F16C from the CPU and YMM state enabled by the OS.
 * LLTRACE_SIMD=scalar|avx2 (environment) or lm_simd_set() force a level, so the scalar path can
 * be tested and benchmarked on any machine. Depends on libc only (GCC's <cpuid.h> on x86).
 */
#include "kern_int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

int lm_simd_detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) {
        return LM_SIMD_SCALAR;
    }
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    const int f16c = (c >> 29) & 1;
    if (!osxsave || !avx || !fma || !f16c || (xgetbv0() & 6) != 6) {
        return LM_SIMD_SCALAR;
    }
    if (__get_cpuid_max(0, NULL) < 7) {
        return LM_SIMD_SCALAR;
    }
    __cpuid_count(7, 0, a, b, c, d);
    return ((b >> 5) & 1) ? LM_SIMD_AVX2 : LM_SIMD_SCALAR;
}
#else
int lm_simd_detect(void)
{
    return LM_SIMD_SCALAR;
}
#endif

/* -1: not forced. Written only by lm_simd_set (documented as process-wide). */
static _Atomic int g_forced = -1;
/* The default level (cpuid + environment), computed once: cpuid traps in virtual machines. */
static _Atomic int g_default = -1;

static int level_from_env(int best)
{
    const char *e = getenv("LLTRACE_SIMD");
    if (!e || !*e) {
        return best;
    }
    if (strcmp(e, "scalar") == 0) {
        return LM_SIMD_SCALAR;
    }
    if (strcmp(e, "avx2") == 0 && best >= LM_SIMD_AVX2) {
        return LM_SIMD_AVX2;
    }
    return best;
}

int lm_simd_level(void)
{
    const int forced = atomic_load(&g_forced);
    if (forced >= 0) {
        return forced;
    }
    int lvl = atomic_load(&g_default);
    if (lvl < 0) {
        lvl = level_from_env(lm_simd_detect());
        atomic_store(&g_default, lvl);
    }
    return lvl;
}

int lm_simd_set(int level)
{
    if (level < 0) {
        atomic_store(&g_forced, -1);
        return 0;
    }
    if (level >= LM_SIMD_COUNT || level > lm_simd_detect()) {
        return LM_EUNSUPPORTED;
    }
    atomic_store(&g_forced, level);
    return 0;
}

const char *lm_simd_name(int level)
{
    switch (level) {
    case LM_SIMD_SCALAR:
        return "scalar";
    case LM_SIMD_AVX2:
        return "avx2";
    default:
        return NULL;
    }
}
