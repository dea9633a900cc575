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
/* 64 bytes: 16 pairs, or 32 bf16 of one row. */
static inline vbp vbp_load(const void *p) { return _mm512_loadu_si512(p); }
static inline void vbp_store(uint32_t *p, vbp v) { _mm512_storeu_si512(p, v); }
static inline vbp vbp_set1(uint32_t pair) { return _mm512_set1_epi32((int)pair); }

/* The even and the odd elements of 32 bf16 as f32 (a bf16 is the high half of its f32):
 * a shift and a mask, no shuffle. */
static inline vf vbp_even_f32(vbp x) { return _mm512_castsi512_ps(_mm512_slli_epi32(x, 16)); }
static inline vf vbp_odd_f32(vbp x)
{
    return _mm512_castsi512_ps(_mm512_and_si512(x, _mm512_set1_epi32((int)0xffff0000u)));
}

/* Pairs (lo[i], hi[i]) rounded to nearest even: both rounded into one vector (lo's 16 bf16,
 * then hi's), then interleaved by one word permute. */
static inline vbp vbp_pack(vf lo, vf hi)
{
    const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                         22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, both);
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

/* The same for 32 elements, into dst[0..32): two word permutes of whole rows (b NULL:
 * zeros), a third of vbp_zip's work. */
static inline void vbp_zip32(uint32_t *dst, const uint16_t *a, const uint16_t *b)
{
    /* word 2i of the result is a[i] (index i), word 2i+1 is b[i] (index 32 + i) */
    const __m512i i = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i lo = _mm512_or_si512(i, _mm512_slli_epi32(_mm512_add_epi32(i, _mm512_set1_epi32(32)), 16));
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(16 | 16 << 16));
    const __m512i va = _mm512_loadu_si512(a), vb = b ? _mm512_loadu_si512(b) : _mm512_setzero_si512();
    _mm512_storeu_si512(dst, _mm512_permutex2var_epi16(va, lo, vb));
    _mm512_storeu_si512(dst + 16, _mm512_permutex2var_epi16(va, hi, vb));
}

/* The decode path's pieces (x86/attn_bf16dot.h, "bp" dot path). */

/* The 4 pairs (8 bf16) at p in each of the four 128-bit lanes. */
static inline vbp vbp_bcast4(const uint16_t *p)
{
    return _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)p));
}

/* Pairs of two rows' elements, interleaved within each 128-bit lane k: lo holds elements
 * 8k..8k+3 of (a, b), hi elements 8k+4..8k+7 (one instruction each; the caller keeps its
 * sums in that order, see bp_slot in x86/attn_bf16dot.h). */
static inline vbp vbp_zip_lo(vbp a, vbp b) { return _mm512_unpacklo_epi16(a, b); }
static inline vbp vbp_zip_hi(vbp a, vbp b) { return _mm512_unpackhi_epi16(a, b); }

/* k[t] (t < 4) holds in 128-bit lane r four partial sums of row r's dot product with key
 * t; the result holds in lane r the four keys' sums for row r. */
static inline vf vbp_sum_keys4(const vf *k)
{
    /* per lane: [k0: s0+s2, s1+s3, k1: s0+s2, s1+s3], the same for k2, k3 */
    const vf s01 = _mm512_add_ps(_mm512_shuffle_ps(k[0], k[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_ps(k[0], k[1], _MM_SHUFFLE(3, 2, 3, 2)));
    const vf s23 = _mm512_add_ps(_mm512_shuffle_ps(k[2], k[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_ps(k[2], k[3], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_ps(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_ps(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* w[g] holds in lane r row r's sums of keys 4g..4g+3; out[r] lane t = row r, key t: a 4x4
 * transpose of 128-bit lanes. */
static inline void vbp_rows4(const vf *w, vf *out)
{
    const vf t0 = _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(1, 0, 1, 0));
    const vf t1 = _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 2, 3, 2));
    const vf t2 = _mm512_shuffle_f32x4(w[2], w[3], _MM_SHUFFLE(1, 0, 1, 0));
    const vf t3 = _mm512_shuffle_f32x4(w[2], w[3], _MM_SHUFFLE(3, 2, 3, 2));
    out[0] = _mm512_shuffle_f32x4(t0, t2, _MM_SHUFFLE(2, 0, 2, 0));
    out[1] = _mm512_shuffle_f32x4(t0, t2, _MM_SHUFFLE(3, 1, 3, 1));
    out[2] = _mm512_shuffle_f32x4(t1, t3, _MM_SHUFFLE(2, 0, 2, 0));
    out[3] = _mm512_shuffle_f32x4(t1, t3, _MM_SHUFFLE(3, 1, 3, 1));
}

/* dst[0..32) = src[0..n) rounded to bf16 (nearest even; like vbp_pack, denormal inputs
 * become zero), zeros from n on; n <= 32. */
static inline void vbp_pack32(uint16_t *dst, const float *src, size_t n)
{
    const size_t n0 = n < 16 ? n : 16, n1 = n - n0;
    const __m512 lo = _mm512_maskz_loadu_ps(kvz_mask16(n0), src);
    const __m512 hi = n1 ? _mm512_maskz_loadu_ps(kvz_mask16(n1), src + 16) : _mm512_setzero_ps();
    _mm512_storeu_si512(dst, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

#endif
