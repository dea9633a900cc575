/* The x86 dequant kernels' block decoding, shared by the AVX2 and AVX-512 levels: SSE-width quant unpacking,
 * the level's own put16. */
#ifndef KVZ_DEQUANT_X86_H
#define KVZ_DEQUANT_X86_H

/*
 * Every type decodes, sixteen values at a time, into one vector of signed bytes q (offset already
 * subtracted) that share one scale d and one offset m; the including file defines
 *   put16(dst, dt, i, q, d, m, add): values i..i+15 = d*q (add == 0) or d*q + m, as f32 or bf16.
 * The scales are computed in scalar fp32 as the generic kernel computes them. d*q is exact in fp32
 * (see dequant_generic.c), so whether the compiler fuses it with the sum does not matter.
 */

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

#define DQ_INLINE static inline __attribute__((always_inline))

DQ_INLINE float dq_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}
DQ_INLINE __m128i dq_ld(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }
DQ_INLINE __m128i dq_lo4(__m128i b) { return _mm_and_si128(b, _mm_set1_epi8(15)); }
DQ_INLINE __m128i dq_hi4(__m128i b) { return _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(15)); }
/* bits s, s+1 of every byte (s even, at most 6) */
DQ_INLINE __m128i dq_bits2(__m128i b, int s)
{
    return _mm_and_si128(_mm_srl_epi16(b, _mm_cvtsi32_si128(s)), _mm_set1_epi8(3));
}
/* bit k of every byte, as 0 or 1 */
DQ_INLINE __m128i dq_bit(__m128i b, int k)
{
    return _mm_and_si128(_mm_srl_epi16(b, _mm_cvtsi32_si128(k)), _mm_set1_epi8(1));
}
/* bit j of a 16-bit mask into byte j as 0 or 16 (the fifth bits of Q5_0/Q5_1) */
DQ_INLINE __m128i dq_mask16(uint32_t m)
{
    const __m128i sel = _mm_set1_epi64x((long long)0x8040201008040201ull);
    const __m128i v = _mm_shuffle_epi8(_mm_set1_epi16((short)m),
                                       _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    return _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(v, sel), sel), _mm_set1_epi8(16));
}
DQ_INLINE __m128i dq_sub(__m128i q, int k) { return _mm_sub_epi8(q, _mm_set1_epi8((char)k)); }

DQ_INLINE void dq_q4_0(void *y, int dt, size_t i, const uint8_t *b)
{
    const float d = dq_f16(b);
    const __m128i v = dq_ld(b + 2);
    put16(y, dt, i, dq_sub(dq_lo4(v), 8), d, 0.0f, 0);
    put16(y, dt, i + 16, dq_sub(dq_hi4(v), 8), d, 0.0f, 0);
}

DQ_INLINE void dq_q4_1(void *y, int dt, size_t i, const uint8_t *b)
{
    const float d = dq_f16(b), m = dq_f16(b + 2);
    const __m128i v = dq_ld(b + 4);
    put16(y, dt, i, dq_lo4(v), d, m, 1);
    put16(y, dt, i + 16, dq_hi4(v), d, m, 1);
}

DQ_INLINE void dq_q5_0(void *y, int dt, size_t i, const uint8_t *b)
{
    const float d = dq_f16(b);
    uint32_t qh;
    memcpy(&qh, b + 2, 4);
    const __m128i v = dq_ld(b + 6);
    put16(y, dt, i, dq_sub(_mm_or_si128(dq_lo4(v), dq_mask16(qh & 0xffff)), 16), d, 0.0f, 0);
    put16(y, dt, i + 16, dq_sub(_mm_or_si128(dq_hi4(v), dq_mask16(qh >> 16)), 16), d, 0.0f, 0);
}

DQ_INLINE void dq_q5_1(void *y, int dt, size_t i, const uint8_t *b)
{
    const float d = dq_f16(b), m = dq_f16(b + 2);
    uint32_t qh;
    memcpy(&qh, b + 4, 4);
    const __m128i v = dq_ld(b + 8);
    put16(y, dt, i, _mm_or_si128(dq_lo4(v), dq_mask16(qh & 0xffff)), d, m, 1);
    put16(y, dt, i + 16, _mm_or_si128(dq_hi4(v), dq_mask16(qh >> 16)), d, m, 1);
}

DQ_INLINE void dq_q8_0(void *y, int dt, size_t i, const uint8_t *b)
{
    const float d = dq_f16(b);
    put16(y, dt, i, dq_ld(b + 2), d, 0.0f, 0);
    put16(y, dt, i + 16, dq_ld(b + 18), d, 0.0f, 0);
}

/* Q2_K: value 128h + 32s + 16c + l is bits 2s.. of qs[32h + 16c + l]; group g = 8h + 2s + c */
DQ_INLINE void dq_q2_k(void *y, int dt, size_t i, const uint8_t *b)
{
    const uint8_t *sc = b, *qs = b + 16;
    const float d = dq_f16(b + 80), dmin = dq_f16(b + 82);
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < 2; c++) {
            const __m128i v = dq_ld(qs + 32 * h + 16 * c);
            for (int s = 0; s < 4; s++) {
                const int g = 8 * h + 2 * s + c;
                const float dl = d * (float)(sc[g] & 15), ml = dmin * (float)(sc[g] >> 4);
                put16(y, dt, i + 16 * g, dq_bits2(v, 2 * s), dl, -ml, 1);
            }
        }
}

/* Q3_K: as Q2_K's low bits; the high bit of value 32k + 16c + l is bit k of hmask[16c + l] */
DQ_INLINE void dq_q3_k(void *y, int dt, size_t i, const uint8_t *b)
{
    const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
    const float d = dq_f16(b + 108);
    const __m128i hv[2] = {dq_ld(hm), dq_ld(hm + 16)};
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < 2; c++) {
            const __m128i v = dq_ld(qs + 32 * h + 16 * c);
            for (int s = 0; s < 4; s++) {
                const int g = 8 * h + 2 * s + c;
                const int lo = g < 8 ? sc[g] & 15 : sc[g - 8] >> 4, hi = (sc[8 + g % 4] >> (2 * (g / 4))) & 3;
                const float dl = d * (float)((lo | hi << 4) - 32);
                const __m128i hb = _mm_slli_epi16(dq_bit(hv[c], g / 2), 2);
                put16(y, dt, i + 16 * g, dq_sub(_mm_or_si128(dq_bits2(v, 2 * s), hb), 4), dl, 0.0f, 0);
            }
        }
}

DQ_INLINE void dq_scale_min_k4(const uint8_t *q, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 15) | (q[j - 4] >> 6) << 4;
        *m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}

/* Q4_K (qh == NULL) and Q5_K: sub-block j of 32 is nibble j%2 of qs[32(j/2) ..], its fifth bit bit
 * j of qh[..] */
DQ_INLINE void dq_q45_k(void *y, int dt, size_t i, const uint8_t *b, const uint8_t *qh, const uint8_t *qs)
{
    const float d = dq_f16(b), dmin = dq_f16(b + 2);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        dq_scale_min_k4(b + 4, j, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        for (int c = 0; c < 2; c++) {
            const __m128i v = dq_ld(qs + 32 * (j / 2) + 16 * c);
            __m128i q = j % 2 ? dq_hi4(v) : dq_lo4(v);
            if (qh)
                q = _mm_or_si128(q, _mm_slli_epi16(dq_bit(dq_ld(qh + 16 * c), j), 4));
            put16(y, dt, i + 32 * j + 16 * c, q, d1, -m1, 1);
        }
    }
}

/* Q6_K: value 128h + 16t + l (t < 8): nibble t/4 of ql[64h + 16(t%4) + l], bits 2(t/2).. of
 * qh[32h + 16(t%2) + l], minus 32; scale index 8h + t */
DQ_INLINE void dq_q6_k(void *y, int dt, size_t i, const uint8_t *b)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = dq_f16(b + 208);
    for (int h = 0; h < 2; h++)
        for (int t = 0; t < 8; t++) {
            const __m128i l4 = dq_ld(ql + 64 * h + 16 * (t % 4)), h2 = dq_ld(qh + 32 * h + 16 * (t % 2));
            const __m128i lo = t / 4 ? dq_hi4(l4) : dq_lo4(l4);
            const __m128i q = _mm_or_si128(lo, _mm_slli_epi16(dq_bits2(h2, 2 * (t / 2)), 4));
            put16(y, dt, i + 128 * h + 16 * t, dq_sub(q, 32), d * (float)sc[8 * h + t], 0.0f, 0);
        }
}

#include "tmpl/dequant_run.h"

#endif
