/* The AVX-512 vector plus AVX512_BF16 pair dot products for the kernel templates; compiled with
 * CFLAGS_AVX512BF16 only. */
#ifndef KVZ_VEC_AVX512BF16_H
#define KVZ_VEC_AVX512BF16_H

#include "x86/vec_avx512.h"

#undef KVZ_ISA_SUFFIX
#undef KVZ_ISA_ID
#define KVZ_ISA_SUFFIX   avx512bf16
#define KVZ_ISA_ID       KVZ_KISA_AVX512_BF16
#define KVZ_ATTN_BF16DOT 1

/* A vector of 16 bf16 pairs: lane i holds two bf16, the lower one in its low half. */
typedef __m512i vbp;

/* acc[i] += a.lo[i]*b.lo[i] + a.hi[i]*b.hi[i], products exact, fp32 accumulation. */
static inline vf vbp_dot(vf acc, vbp a, vbp b) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b); }
static inline vbp vbp_load(const uint32_t *p) { return _mm512_loadu_si512(p); }
static inline void vbp_store(uint32_t *p, vbp v) { _mm512_storeu_si512(p, v); }
static inline vbp vbp_set1(uint32_t pair) { return _mm512_set1_epi32((int)pair); }

/* Pairs (lo[i], hi[i]) rounded to nearest even. */
static inline vbp vbp_pack(vf lo, vf hi)
{
    const __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
    const __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
    return _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
}

/* Pairs (a[i], b[i]) of n <= 16 bf16 elements of two rows (b may be NULL: zeros), zero
 * beyond n. */
static inline vbp vbp_zip(const uint16_t *a, const uint16_t *b, size_t n)
{
    const __mmask16 m = (__mmask16)((1u << n) - 1u);
    const __m512i l = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, a));
    if (!b)
        return l;
    const __m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, b));
    return _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
}

#endif
