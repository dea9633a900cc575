/*
 * CPU feature detection. Compiled without ISA flags and without LTO (see Makefile.am) so
 * nothing here can execute an instruction the CPU lacks before the check has run. On Linux
 * it also asks for the AMX tile permission, which is part of what the OS must grant.
 */
#include "core/cpu_features.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#include <string.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

static unsigned long long xgetbv0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

/* Linux hands AMX tile data to a process only on request (since 5.16; the XCR0 bits alone
 * do not suffice: a tile instruction without the permission raises SIGILL). The permission
 * is the whole process's, and asking again is harmless. */
static int os_grants_amx(void)
{
#if defined(__linux__) && defined(SYS_arch_prctl)
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
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
    const int amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
    const int os_tiles = (xcr0 & 0x60000) == 0x60000; /* XTILECFG and XTILEDATA state */
    if (os_ymm && avx2 && fma && f16c)
        f |= KVZ_CPU_AVX2;
    if (os_zmm && (f & KVZ_CPU_AVX2) && avx512f && avx512dq && avx512bw && avx512vl)
        f |= KVZ_CPU_AVX512;
    __cpuid_count(7, 1, a, b, c, d);
    if ((f & KVZ_CPU_AVX512) && ((a >> 5) & 1))
        f |= KVZ_CPU_AVX512_BF16;
    if ((f & KVZ_CPU_AVX512_BF16) && amx_bf16 && amx_tile && os_tiles && os_grants_amx())
        f |= KVZ_CPU_AMX;
    return f;
}

int kvz_cpu_vendor(void)
{
    unsigned a, id[3];
    if (!__get_cpuid(0, &a, &id[0], &id[2], &id[1])) /* EBX, EDX, ECX spell the name */
        return KVZ_VENDOR_OTHER;
    char name[13];
    memcpy(name, id, 12);
    name[12] = '\0';
    return !strcmp(name, "GenuineIntel")   ? KVZ_VENDOR_INTEL
           : !strcmp(name, "AuthenticAMD") ? KVZ_VENDOR_AMD
                                           : KVZ_VENDOR_OTHER;
}

#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif

unsigned kvz_cpu_detect(void) { return (getauxval(AT_HWCAP) & HWCAP_ASIMD) ? KVZ_CPU_NEON : 0; }
int kvz_cpu_vendor(void) { return KVZ_VENDOR_OTHER; }

#else
unsigned kvz_cpu_detect(void) { return 0; }
int kvz_cpu_vendor(void) { return KVZ_VENDOR_OTHER; }
#endif
