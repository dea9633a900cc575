/* GGUF block dequantization at the AVX512_BF16 and AMX levels: the AVX-512 kernel with bf16 output by
 * vcvtneps2bf16. */
#include "kernels.h"
#include "x86/vec_avx512bf16.h"

/* values i..i+15 of dst: d*q or d*q + m (exact products: see dequant_x86.h). The instruction
   rounds to nearest even as the other levels do; it would flush subnormal inputs, but no value of
   these types is one (every value is a multiple of 2^-24 or zero). */
static inline __attribute__((always_inline)) void put16(void *dst, int dt, size_t i, __m128i q, float d,
                                                        float m, int add)
{
    __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), _mm512_set1_ps(d));
    if (add)
        y = _mm512_add_ps(y, _mm512_set1_ps(m));
    if (dt == KVZ_KDT_F32)
        _mm512_storeu_ps((float *)dst + i, y);
    else
        _mm256_storeu_si256((__m256i *)((uint16_t *)dst + i), (__m256i)_mm512_cvtneps_pbh(y));
}

#include "x86/dequant_x86.h"

void kvz_dequant_avx512bf16(void *dst, int dst_dtype, const void *src, int type, size_t n_blocks)
{
    dq_run(dst, dst_dtype, src, type, n_blocks);
}
