/*
 * CPU feature detection. Compiled without ISA flags and without LTO (see Makefile.am) so
 * nothing here can execute an instruction the CPU lacks before the check has run.
 */
#include "core/cpu_features.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>

static unsigned long long xgetbv0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

unsigned kvz_cpu_detect(void)
{
    unsigned a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    const int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx)
        return 0;
    const unsigned long long xcr0 = xgetbv0();
    const int os_ymm = (xcr0 & 0x6) == 0x6;   /* SSE and AVX state */
    const int os_zmm = (xcr0 & 0xe6) == 0xe6; /* plus opmask and ZMM state */
    if (__get_cpuid_max(0, 0) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1;
    const int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
              avx512vl = (b >> 31) & 1;
    if (os_ymm && avx2 && fma && f16c)
        f |= KVZ_CPU_AVX2;
    if (os_zmm && (f & KVZ_CPU_AVX2) && avx512f && avx512dq && avx512bw && avx512vl)
        f |= KVZ_CPU_AVX512;
    __cpuid_count(7, 1, a, b, c, d);
    if ((f & KVZ_CPU_AVX512) && ((a >> 5) & 1))
        f |= KVZ_CPU_AVX512_BF16;
    return f;
}

#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif

unsigned kvz_cpu_detect(void) { return (getauxval(AT_HWCAP) & HWCAP_ASIMD) ? KVZ_CPU_NEON : 0; }

#else
unsigned kvz_cpu_detect(void) { return 0; }
#endif
