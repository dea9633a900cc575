/*
 * AVX512_BF16 decode helpers for attn_body.h: dot products of bf16 K/V rows with
 * vdpbf16ps (two bf16 products per lane per instruction, fp32 accumulation), used on the
 * dot path when K/V are bf16 and head_dim is a multiple of 32.
 *
 * To keep fp32 accuracy, each fp32 operand x that is not already bf16 (the queries, the
 * probabilities) is split into hi = bf16(x) and lo = bf16(x - hi): x - hi - lo is below
 * 2^-16 |x|, and bf16 x bf16 products are exact in fp32. Two vdpbf16ps per pair then cost
 * what one fp32 FMA per element costs, without widening K or V first.
 * Included only in files compiled with -mavx512bf16.
 */
#ifndef KVZ_BF16DOT_AVX512_H
#define KVZ_BF16DOT_AVX512_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define KVZ_HAVE_BF16DOT 1

/* hi/lo bf16 halves of n (multiple of 16) floats */
static inline void bf16dot_split(uint16_t *hi, uint16_t *lo, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __m256bh h = _mm512_cvtneps_pbh(v);
        const __m512 hv = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)h), 16));
        const __m256bh l = _mm512_cvtneps_pbh(_mm512_sub_ps(v, hv));
        _mm256_storeu_si256((__m256i *)(hi + i), (__m256i)h);
        _mm256_storeu_si256((__m256i *)(lo + i), (__m256i)l);
    }
}

/* <q, k> lanes (to be summed) of one query row (hi/lo halves) with one bf16 key, any d. */
static inline __m512 bf16dot_key1(const uint16_t *qhi, const uint16_t *qlo, const uint16_t *k, size_t d)
{
    __m512 acc = _mm512_setzero_ps();
    for (size_t x = 0; x < d; x += 32) {
        const __m512bh kv = (__m512bh)_mm512_loadu_si512(k + x);
        acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_loadu_si512(qhi + x), kv);
        acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_loadu_si512(qlo + x), kv);
    }
    return acc;
}

/*
 * Logits lanes of two query rows against n keys (row stride ks), d = 32*NCH: the rows'
 * hi/lo halves stay in registers, each key chunk is loaded once for both rows.
 * out[t] and out[n + t] receive the lanes of rows 0 and 1 for key t. With pf[w] not NULL,
 * row t of pf[w] (stride pfs, pfb bytes) is prefetched alongside key t, spread out so the
 * memory system always has requests queued but never a burst it drops.
 */
#define KVZ_BF16DOT_KEYS2(NCH)                                                                                 \
    static inline void bf16dot_keys2_##NCH(const uint16_t *qh, const uint16_t *ql, size_t qs,                  \
                                           const uint16_t *k, size_t ks, size_t n, __m512 *out,                \
                                           const char *const pf[2], size_t pfs, size_t pfb)                    \
    {                                                                                                          \
        __m512bh h0[NCH], l0[NCH], h1[NCH], l1[NCH];                                                           \
        for (int x = 0; x < NCH; x++) {                                                                        \
            h0[x] = (__m512bh)_mm512_loadu_si512(qh + 32 * x);                                                 \
            l0[x] = (__m512bh)_mm512_loadu_si512(ql + 32 * x);                                                 \
            h1[x] = (__m512bh)_mm512_loadu_si512(qh + qs + 32 * x);                                            \
            l1[x] = (__m512bh)_mm512_loadu_si512(ql + qs + 32 * x);                                            \
        }                                                                                                      \
        for (size_t t = 0; t < n; t++) {                                                                       \
            for (int w = 0; w < 2; w++)                                                                        \
                if (pf[w])                                                                                     \
                    for (size_t b = 0; b < pfb; b += 64)                                                       \
                        __builtin_prefetch(pf[w] + t * pfs + b, 0, 3);                                         \
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();                                         \
            for (int x = 0; x < NCH; x++) {                                                                    \
                const __m512bh kv = (__m512bh)_mm512_loadu_si512(k + t * ks + 32 * x);                         \
                a0 = _mm512_dpbf16_ps(a0, h0[x], kv);                                                          \
                a1 = _mm512_dpbf16_ps(a1, h1[x], kv);                                                          \
                a0 = _mm512_dpbf16_ps(a0, l0[x], kv);                                                          \
                a1 = _mm512_dpbf16_ps(a1, l1[x], kv);                                                          \
            }                                                                                                  \
            out[t] = a0;                                                                                       \
            out[n + t] = a1;                                                                                   \
        }                                                                                                      \
    }
KVZ_BF16DOT_KEYS2(2)
KVZ_BF16DOT_KEYS2(4)

/*
 * O[r] += sum_j P[r][j] v_j with keys in pairs: v_j and v_{j+1} are interleaved by 16-bit
 * unpacks, so each 32-element chunk of an accumulator row is permuted: within 128-bit
 * lane L, its first 16 floats hold elements 8L..8L+3 and its last 16 hold 8L+4..8L+7
 * (bf16dot_unpermute undoes it). ph/pl: hi/lo bf16 of P, row stride ps, zero at index nb
 * when nb is odd. o: rows of stride os floats. Four rows and 64 elements per tile.
 */
static inline void bf16dot_pv_tile(float *o, size_t os, const uint16_t *ph, const uint16_t *pl, size_t ps,
                                   const uint16_t *v, size_t vs, size_t nb, const float *alpha)
{
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
            acc[r][c] = _mm512_mul_ps(_mm512_loadu_ps(o + r * os + 16 * c), _mm512_set1_ps(alpha[r]));
    for (size_t j = 0; j < nb; j += 2) {
        __m512i pr[4];
#pragma GCC unroll 2
        for (int c = 0; c < 2; c++) {
            const __m512i a = _mm512_loadu_si512(v + j * vs + 32 * c);
            const __m512i b =
                j + 1 < nb ? _mm512_loadu_si512(v + (j + 1) * vs + 32 * c) : _mm512_setzero_si512();
            pr[2 * c] = _mm512_unpacklo_epi16(a, b);
            pr[2 * c + 1] = _mm512_unpackhi_epi16(a, b);
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            int32_t hb, lb;
            memcpy(&hb, ph + r * ps + j, 4);
            memcpy(&lb, pl + r * ps + j, 4);
            const __m512bh h = (__m512bh)_mm512_set1_epi32(hb), l = (__m512bh)_mm512_set1_epi32(lb);
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                acc[r][c] = _mm512_dpbf16_ps(acc[r][c], (__m512bh)pr[c], h);
                acc[r][c] = _mm512_dpbf16_ps(acc[r][c], (__m512bh)pr[c], l);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
            _mm512_storeu_ps(o + r * os + 16 * c, acc[r][c]);
}

/* One row, one 32-element chunk: the remainder cases of the tile above. */
static inline void bf16dot_pv_one(float *o, const uint16_t *ph, const uint16_t *pl, const uint16_t *v,
                                  size_t vs, size_t nb, float alpha)
{
    __m512 lo = _mm512_mul_ps(_mm512_loadu_ps(o), _mm512_set1_ps(alpha));
    __m512 hi = _mm512_mul_ps(_mm512_loadu_ps(o + 16), _mm512_set1_ps(alpha));
    for (size_t j = 0; j < nb; j += 2) {
        const __m512i a = _mm512_loadu_si512(v + j * vs);
        const __m512i b = j + 1 < nb ? _mm512_loadu_si512(v + (j + 1) * vs) : _mm512_setzero_si512();
        int32_t hb, lb;
        memcpy(&hb, ph + j, 4);
        memcpy(&lb, pl + j, 4);
        const __m512bh h = (__m512bh)_mm512_set1_epi32(hb), l = (__m512bh)_mm512_set1_epi32(lb);
        const __m512bh plo = (__m512bh)_mm512_unpacklo_epi16(a, b), phi = (__m512bh)_mm512_unpackhi_epi16(a, b);
        lo = _mm512_dpbf16_ps(_mm512_dpbf16_ps(lo, plo, h), plo, l);
        hi = _mm512_dpbf16_ps(_mm512_dpbf16_ps(hi, phi, h), phi, l);
    }
    _mm512_storeu_ps(o, lo);
    _mm512_storeu_ps(o + 16, hi);
}

static inline void bf16dot_pv(float *o, size_t os, size_t nr, const uint16_t *ph, const uint16_t *pl, size_t ps,
                              const uint16_t *v, size_t vs, size_t nb, size_t d, const float *alpha)
{
    size_t r = 0;
    for (; r + 4 <= nr; r += 4) {
        size_t x = 0;
        for (; x + 64 <= d; x += 64)
            bf16dot_pv_tile(o + r * os + x, os, ph + r * ps, pl + r * ps, ps, v + x, vs, nb, alpha + r);
        for (; x < d; x += 32)
            for (size_t a = 0; a < 4; a++)
                bf16dot_pv_one(o + (r + a) * os + x, ph + (r + a) * ps, pl + (r + a) * ps, v + x, vs, nb,
                               alpha[r + a]);
    }
    for (; r < nr; r++)
        for (size_t x = 0; x < d; x += 32)
            bf16dot_pv_one(o + r * os + x, ph + r * ps, pl + r * ps, v + x, vs, nb, alpha[r]);
}

/* Writes the permuted accumulator row o (d floats) in natural order, times inv. */
static inline void bf16dot_unpermute(float *dst, const float *o, size_t d, float inv)
{
    for (size_t x0 = 0; x0 < d; x0 += 32)
        for (size_t L = 0; L < 4; L++)
            for (size_t m = 0; m < 4; m++) {
                dst[x0 + 8 * L + m] = o[x0 + 4 * L + m] * inv;
                dst[x0 + 8 * L + 4 + m] = o[x0 + 16 + 4 * L + m] * inv;
            }
}

#endif
