/* GGUF block dequantization at the AVX-512 level: sixteen values a vector (block decoding in dequant_x86.h). */
#include "kernels.h"
#include "x86/vec_avx512.h"

/* values i..i+15 of dst: d*q or d*q + m (the product is exact: see dequant_x86.h) */
static inline __attribute__((always_inline)) void put16(void *dst, int dt, size_t i, __m128i q, float d,
                                                        float m, int add)
{
    __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), _mm512_set1_ps(d));
    if (add) {
        y = _mm512_add_ps(y, _mm512_set1_ps(m));
    }
    if (dt == KVZ_KDT_F32)
        _mm512_storeu_ps((float *)dst + i, y);
    else
        vf_store_bf16((uint16_t *)dst + i, y);
}

#include "x86/dequant_x86.h"

void kvz_dequant_avx512(void *dst, int dst_dtype, const void *src, int type, size_t n_blocks)
{
    dq_run(dst, dst_dtype, src, type, n_blocks);
}
