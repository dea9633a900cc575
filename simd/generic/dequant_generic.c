/* GGUF block dequantization in portable C: the reference the SIMD levels are held to. */
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "scalar.h"

/* Each type's values, written straight from the block layouts of ggml's ggml-common.h. Bytes
 * are assembled explicitly, so the code reads the little-endian file format on any host. */

static inline float ld_f16(const uint8_t *p) { return kvz_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* y = d * q, and y = d * q + m (m negated by the caller for the types that subtract it: x - m and
 * x + (-m) are the same IEEE operation). Every product here is exact in fp32: an f16 scale has 11
 * significant bits, a sub-block scale at most 7 and a quant at most 5 (powers of two count as one),
 * 23 in all, and no result comes near the subnormals. So the only rounding is that of the sum, the
 * order of the products does not matter, and a compiler that fuses them into an FMA gives the
 * same bits. */
static inline float mul(float d, int q) { return d * (float)q; }
static inline float mul_add(float d, int q, float m) { return d * (float)q + m; }

static void q4_0(float *y, const uint8_t *b)
{
    const float d = ld_f16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = mul(d, (qs[j] & 15) - 8);
        y[j + 16] = mul(d, (qs[j] >> 4) - 8);
    }
}

static void q4_1(float *y, const uint8_t *b)
{
    const float d = ld_f16(b), m = ld_f16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = mul_add(d, qs[j] & 15, m);
        y[j + 16] = mul_add(d, qs[j] >> 4, m);
    }
}

/* the fifth bits of Q5_0/Q5_1: bit j of a little-endian 32-bit word for element j */
static inline uint32_t ld_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void q5_0(float *y, const uint8_t *b)
{
    const float d = ld_f16(b);
    const uint32_t qh = ld_u32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        y[j] = mul(d, (int)((qs[j] & 15) | ((qh >> j) & 1) << 4) - 16);
        y[j + 16] = mul(d, (int)((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16);
    }
}

static void q5_1(float *y, const uint8_t *b)
{
    const float d = ld_f16(b), m = ld_f16(b + 2);
    const uint32_t qh = ld_u32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        y[j] = mul_add(d, (int)((qs[j] & 15) | ((qh >> j) & 1) << 4), m);
        y[j + 16] = mul_add(d, (int)((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4), m);
    }
}

static void q8_0(float *y, const uint8_t *b)
{
    const float d = ld_f16(b);
    for (int j = 0; j < 32; j++)
        y[j] = mul(d, (int8_t)b[2 + j]);
}

/* Q2_K: scales[16] (low nibble scale, high nibble min, per 16 values), qs[64], d, dmin. Value
 * 128h + 32s + l is bits 2s..2s+1 of qs[32h + l]. */
static void q2_k(float *y, const uint8_t *b)
{
    const uint8_t *sc = b, *qs = b + 16;
    const float d = ld_f16(b + 80), dmin = ld_f16(b + 82);
    for (int e = 0; e < 256; e++) {
        const int h = e / 128, s = e % 128 / 32, l = e % 32;
        const float dl = d * (float)(sc[e / 16] & 15), ml = dmin * (float)(sc[e / 16] >> 4);
        y[e] = mul_add(dl, (qs[32 * h + l] >> (2 * s)) & 3, -ml);
    }
}

/* Q3_K: hmask[32], qs[64], scales[12], d. Sixteen 6-bit scales (minus 32): the low nibbles in
 * bytes 0..7 (scale i < 8 low half of byte i, i >= 8 high half of byte i - 8), the high two bits
 * in bytes 8..11 (scale i: bits 2(i/4).. of byte 8 + i%4). Value 32b + l has its high bit at bit
 * b of hmask[l]; a clear bit subtracts 4. */
static void q3_k(float *y, const uint8_t *b)
{
    const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
    const float d = ld_f16(b + 108);
    for (int e = 0; e < 256; e++) {
        const int i = e / 16;
        const int lo = i < 8 ? sc[i] & 15 : sc[i - 8] >> 4, hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
        const float dl = d * (float)((lo | hi << 4) - 32);
        const int h = e / 128, s = e % 128 / 32, l = e % 32;
        const int q = ((qs[32 * h + l] >> (2 * s)) & 3) - (((hm[e % 32] >> (e / 32)) & 1) ? 0 : 4);
        y[e] = mul(dl, q);
    }
}

/* Q4_K/Q5_K's eight 6-bit scales and mins in 12 bytes (ggml's get_scale_min_k4). */
static inline void scale_min_k4(const uint8_t *q, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 15) | (q[j - 4] >> 6) << 4;
        *m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}

/* Q4_K: d, dmin, scales[12], qs[128]; sub-block j (32 values) is the low (j even) or high nibble
 * of qs[32(j/2) ..]. */
static void q4_k(float *y, const uint8_t *b)
{
    const float d = ld_f16(b), dmin = ld_f16(b + 2);
    const uint8_t *qs = b + 16;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        scale_min_k4(b + 4, j, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        for (int l = 0; l < 32; l++)
            y[32 * j + l] = mul_add(d1, (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 15, -m1);
    }
}

/* Q5_K: Q4_K with qh[32] before qs: bit j of qh[l] is the fifth bit of sub-block j's value l. */
static void q5_k(float *y, const uint8_t *b)
{
    const float d = ld_f16(b), dmin = ld_f16(b + 2);
    const uint8_t *qh = b + 16, *qs = b + 48;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        scale_min_k4(b + 4, j, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        for (int l = 0; l < 32; l++) {
            const int q = ((qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 15) | ((qh[l] >> j) & 1) << 4;
            y[32 * j + l] = mul_add(d1, q, -m1);
        }
    }
}

/* Q6_K: ql[128], qh[64], scales[16] (int8, per 16 values), d. Value 128h + r: low four bits are
 * nibble r/64 of ql[64h + r%64], high two bits are bits 2(r/32).. of qh[32h + r%32]; minus 32. */
static void q6_k(float *y, const uint8_t *b)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = ld_f16(b + 208);
    for (int e = 0; e < 256; e++) {
        const int h = e / 128, r = e % 128;
        const int lo = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 15,
                  hi = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
        y[e] = mul(d * (float)sc[e / 16], (lo | hi << 4) - 32);
    }
}

void kvz_dequant_generic(void *dst, int dst_dtype, const void *src, int type, size_t n_blocks)
{
    void (*block)(float *, const uint8_t *);
    size_t qk = 256, bytes;
    switch (type) {
    case KVZ_KQ_Q4_0: block = q4_0, qk = 32, bytes = 18; break;
    case KVZ_KQ_Q4_1: block = q4_1, qk = 32, bytes = 20; break;
    case KVZ_KQ_Q5_0: block = q5_0, qk = 32, bytes = 22; break;
    case KVZ_KQ_Q5_1: block = q5_1, qk = 32, bytes = 24; break;
    case KVZ_KQ_Q8_0: block = q8_0, qk = 32, bytes = 34; break;
    case KVZ_KQ_Q2_K: block = q2_k, bytes = 84; break;
    case KVZ_KQ_Q3_K: block = q3_k, bytes = 110; break;
    case KVZ_KQ_Q4_K: block = q4_k, bytes = 144; break;
    case KVZ_KQ_Q5_K: block = q5_k, bytes = 176; break;
    case KVZ_KQ_Q6_K: block = q6_k, bytes = 210; break;
    default: return;
    }
    const uint8_t *s = (const uint8_t *)src;
    float tmp[256];
    for (size_t i = 0; i < n_blocks; i++, s += bytes) {
        if (dst_dtype == KVZ_KDT_F32) {
            block((float *)dst + i * qk, s);
        } else {
            block(tmp, s);
            uint16_t *h = (uint16_t *)dst + i * qk;
            for (size_t j = 0; j < qk; j++)
                h[j] = kvz_f32_to_bf16(tmp[j]);
        }
    }
}
