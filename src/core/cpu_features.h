/* CPU feature bits as the detection code reports them. */
#ifndef KVZ_CORE_CPU_FEATURES_H
#define KVZ_CORE_CPU_FEATURES_H

enum {
    KVZ_CPU_AVX2 = 1u << 0,        /* AVX2 + FMA + F16C, OS saves YMM */
    KVZ_CPU_AVX512 = 1u << 1,      /* AVX-512 F/BW/VL/DQ, OS saves ZMM and opmasks */
    KVZ_CPU_AVX512_BF16 = 1u << 2, /* AVX512_BF16 */
    KVZ_CPU_NEON = 1u << 3,        /* aarch64 Advanced SIMD */
    KVZ_CPU_AMX = 1u << 4          /* AMX-TILE + AMX-BF16 with AVX512_BF16, tile state granted */
};

/* Reads CPUID/XGETBV (x86) or getauxval (Linux/arm64). No global state of its own; on
 * Linux/x86 it requests the process's AMX tile permission (idempotent). */
unsigned kvz_cpu_detect(void);

/* The CPU's vendor as CPUID leaf 0 names it (x86), else KVZ_VENDOR_OTHER. */
enum { KVZ_VENDOR_OTHER = 0, KVZ_VENDOR_INTEL = 1, KVZ_VENDOR_AMD = 2 };
int kvz_cpu_vendor(void);

#endif
