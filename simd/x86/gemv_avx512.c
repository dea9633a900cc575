/* The matrix-vector kernels at the AVX-512 level (one source: tmpl/gemv_body.h). */
#include "x86/vec_avx512.h"

static inline vf gemv_i8(const int8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}
static inline float gemv_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

#include "tmpl/gemv_body.h"

void kvz_gemv_q8_0_avx512(float *y, size_t ldy, const float *x, size_t m, const void *w, size_t rows, size_t in)
{
    gemv_q8_0_body(y, ldy, x, m, w, rows, in);
}

void kvz_gemv_f32_row_avx512(float *y, size_t ldy, const float *w, const float *x, size_t m, size_t in)
{
    gemv_f32_row_body(y, ldy, w, x, m, in);
}
