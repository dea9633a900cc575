/* The NEON dequant kernels' block decoding, shared with the NEON matrix-vector kernel: the including file
 * defines put16(dst, dt, i, q, d, m, add) (as simd/x86/dequant_x86.h describes) before including this. */
#ifndef KVZ_DEQUANT_NEON_H
#define KVZ_DEQUANT_NEON_H

#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

#ifndef DQ_INLINE
#define DQ_INLINE static inline __attribute__((always_inline))
#endif

DQ_INLINE float dq_f16(const uint8_t *p)
{
    __fp16 h; /* one exact widening instruction on aarch64, subnormals included */
    memcpy(&h, p, 2);
    return (float)h;
}
DQ_INLINE uint8x16_t dq_ld(const uint8_t *p) { return vld1q_u8(p); }
DQ_INLINE uint8x16_t dq_lo4(uint8x16_t b) { return vandq_u8(b, vdupq_n_u8(15)); }
DQ_INLINE uint8x16_t dq_hi4(uint8x16_t b) { return vshrq_n_u8(b, 4); }
/* bits s.. of every byte, masked to `mask` (a variable right shift is a left shift by -s) */
DQ_INLINE uint8x16_t dq_bits(uint8x16_t b, int s, int mask)
{
    return vandq_u8(vshlq_u8(b, vdupq_n_s8((int8_t)-s)), vdupq_n_u8((uint8_t)mask));
}
/* bit j of a 16-bit mask into byte j as 0 or 16 (the fifth bits of Q5_0/Q5_1) */
DQ_INLINE uint8x16_t dq_mask16(uint32_t m)
{
    static const uint8_t sel[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t v = vcombine_u8(vdup_n_u8((uint8_t)m), vdup_n_u8((uint8_t)(m >> 8)));
    return vandq_u8(vtstq_u8(v, vld1q_u8(sel)), vdupq_n_u8(16));
}
DQ_INLINE int8x16_t dq_sub(uint8x16_t q, int k)
{
    return vsubq_s8(vreinterpretq_s8_u8(q), vdupq_n_s8((int8_t)k));
}
DQ_INLINE int8x16_t dq_s(uint8x16_t q) { return vreinterpretq_s8_u8(q); }
DQ_INLINE uint32_t dq_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

DQ_INLINE void dq_q4_0(void *y, int dt, size_t i, const uint8_t *b)
{
    const float d = dq_f16(b);
    const uint8x16_t v = dq_ld(b + 2);
    put16(y, dt, i, dq_sub(dq_lo4(v), 8), d, 0.0f, 0);
    put16(y, dt, i + 16, dq_sub(dq_hi4(v), 8), d, 0.0f, 0);
}

DQ_INLINE void dq_q4_1(void *y, int dt, size_t i, const uint8_t *b)
{
    const float d = dq_f16(b), m = dq_f16(b + 2);
    const uint8x16_t v = dq_ld(b + 4);
    put16(y, dt, i, dq_s(dq_lo4(v)), d, m, 1);
    put16(y, dt, i + 16, dq_s(dq_hi4(v)), d, m, 1);
}

DQ_INLINE void dq_q5_0(void *y, int dt, size_t i, const uint8_t *b)
{
    const float d = dq_f16(b);
    const uint32_t qh = dq_u32(b + 2);
    const uint8x16_t v = dq_ld(b + 6);
    put16(y, dt, i, dq_sub(vorrq_u8(dq_lo4(v), dq_mask16(qh & 0xffff)), 16), d, 0.0f, 0);
    put16(y, dt, i + 16, dq_sub(vorrq_u8(dq_hi4(v), dq_mask16(qh >> 16)), 16), d, 0.0f, 0);
}

DQ_INLINE void dq_q5_1(void *y, int dt, size_t i, const uint8_t *b)
{
    const float d = dq_f16(b), m = dq_f16(b + 2);
    const uint32_t qh = dq_u32(b + 4);
    const uint8x16_t v = dq_ld(b + 8);
    put16(y, dt, i, dq_s(vorrq_u8(dq_lo4(v), dq_mask16(qh & 0xffff))), d, m, 1);
    put16(y, dt, i + 16, dq_s(vorrq_u8(dq_hi4(v), dq_mask16(qh >> 16))), d, m, 1);
}

DQ_INLINE void dq_q8_0(void *y, int dt, size_t i, const uint8_t *b)
{
    const float d = dq_f16(b);
    put16(y, dt, i, dq_s(dq_ld(b + 2)), d, 0.0f, 0);
    put16(y, dt, i + 16, dq_s(dq_ld(b + 18)), d, 0.0f, 0);
}

/* Q2_K: value 128h + 32s + 16c + l is bits 2s.. of qs[32h + 16c + l]; group g = 8h + 2s + c */
DQ_INLINE void dq_q2_k(void *y, int dt, size_t i, const uint8_t *b)
{
    const uint8_t *sc = b, *qs = b + 16;
    const float d = dq_f16(b + 80), dmin = dq_f16(b + 82);
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < 2; c++) {
            const uint8x16_t v = dq_ld(qs + 32 * h + 16 * c);
            for (int s = 0; s < 4; s++) {
                const int g = 8 * h + 2 * s + c;
                const float dl = d * (float)(sc[g] & 15), ml = dmin * (float)(sc[g] >> 4);
                put16(y, dt, i + 16 * g, dq_s(dq_bits(v, 2 * s, 3)), dl, -ml, 1);
            }
        }
}

/* Q3_K: as Q2_K's low bits; the high bit of value 32k + 16c + l is bit k of hmask[16c + l], and a
 * clear bit subtracts 4 */
DQ_INLINE void dq_q3_k(void *y, int dt, size_t i, const uint8_t *b)
{
    const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
    const float d = dq_f16(b + 108);
    const uint8x16_t hv[2] = {dq_ld(hm), dq_ld(hm + 16)};
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < 2; c++) {
            const uint8x16_t v = dq_ld(qs + 32 * h + 16 * c);
            for (int s = 0; s < 4; s++) {
                const int g = 8 * h + 2 * s + c;
                const int lo = g < 8 ? sc[g] & 15 : sc[g - 8] >> 4, hi = (sc[8 + g % 4] >> (2 * (g / 4))) & 3;
                const float dl = d * (float)((lo | hi << 4) - 32);
                const uint8x16_t hb = vshlq_n_u8(dq_bits(hv[c], g / 2, 1), 2);
                put16(y, dt, i + 16 * g, dq_sub(vorrq_u8(dq_bits(v, 2 * s, 3), hb), 4), dl, 0.0f, 0);
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
            const uint8x16_t v = dq_ld(qs + 32 * (j / 2) + 16 * c);
            uint8x16_t q = j % 2 ? dq_hi4(v) : dq_lo4(v);
            if (qh)
                q = vorrq_u8(q, vshlq_n_u8(dq_bits(dq_ld(qh + 16 * c), j, 1), 4));
            put16(y, dt, i + 32 * j + 16 * c, dq_s(q), d1, -m1, 1);
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
            const uint8x16_t l4 = dq_ld(ql + 64 * h + 16 * (t % 4)), h2 = dq_ld(qh + 32 * h + 16 * (t % 2));
            const uint8x16_t lo = t / 4 ? dq_hi4(l4) : dq_lo4(l4);
            const uint8x16_t q = vorrq_u8(lo, vshlq_n_u8(dq_bits(h2, 2 * (t / 2), 3), 4));
            put16(y, dt, i + 128 * h + 16 * t, dq_sub(q, 32), d * (float)sc[8 * h + t], 0.0f, 0);
        }
}

#include "tmpl/dequant_run.h"

#endif
