/* GGUF block dequantization at the NEON level: each type decoded sixteen quants at a time, as the x86 levels do
 * (simd/x86/dequant_x86.h); the decoding in dequant_neon.h. */
#include <string.h>

#include "arm/vec_neon.h"
#include "kernels.h"

#define DQ_INLINE static inline __attribute__((always_inline))

/* values i..i+15 of dst: d*q or d*q + m (the products are exact in fp32: see dequant_generic.c) */
DQ_INLINE void put16(void *dst, int dt, size_t i, int8x16_t q, float d, float m, int add)
{
    const int16x8_t w[2] = {vmovl_s8(vget_low_s8(q)), vmovl_s8(vget_high_s8(q))};
    for (int k = 0; k < 4; k++) {
        const int32x4_t v = k % 2 ? vmovl_high_s16(w[k / 2]) : vmovl_s16(vget_low_s16(w[k / 2]));
        float32x4_t y = vmulq_n_f32(vcvtq_f32_s32(v), d);
        if (add)
            y = vaddq_f32(y, vdupq_n_f32(m));
        if (dt == KVZ_KDT_F32)
            vst1q_f32((float *)dst + i + 4 * k, y);
        else
            vf_store_bf16((uint16_t *)dst + i + 4 * k, y);
    }
}

#include "arm/dequant_neon.h"

void kvz_dequant_neon(void *dst, int dst_dtype, const void *src, int type, size_t n_blocks)
{
    dq_run(dst, dst_dtype, src, type, n_blocks);
}
