/* GGUF block dequantization at the AVX2 level: eight values a vector (block decoding in dequant_x86.h). */
#include "kernels.h"
#include "x86/vec_avx2.h"

static inline __attribute__((always_inline)) __m256 dq_scale8(__m128i q8, float d, float m, int add)
{
    __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)), _mm256_set1_ps(d));
    if (add) {
        y = _mm256_add_ps(y, _mm256_set1_ps(m));
    }
    return y;
}

/* values i..i+15 of dst: d*q or d*q + m (the product is exact: see dequant_x86.h) */
static inline __attribute__((always_inline)) void put16(void *dst, int dt, size_t i, __m128i q, float d,
                                                        float m, int add)
{
    const __m256 y0 = dq_scale8(q, d, m, add), y1 = dq_scale8(_mm_unpackhi_epi64(q, q), d, m, add);
    if (dt == KVZ_KDT_F32) {
        _mm256_storeu_ps((float *)dst + i, y0);
        _mm256_storeu_ps((float *)dst + i + 8, y1);
    } else {
        vf_store_bf16((uint16_t *)dst + i, y0);
        vf_store_bf16((uint16_t *)dst + i + 8, y1);
    }
}

#include "x86/dequant_x86.h"

void kvz_dequant_avx2(void *dst, int dst_dtype, const void *src, int type, size_t n_blocks)
{
    dq_run(dst, dst_dtype, src, type, n_blocks);
}
