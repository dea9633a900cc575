/* The matrix-vector kernels at the AVX-512 level: Q8_0 rows and rows of any block type (one source:
 * tmpl/gemv_body.h). */
#include "x86/vec_avx512.h"

static inline vf gemv_i8(const int8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

/* the state of one row's product, which put16 adds sixteen values times x into */
typedef struct blocks_dot {
    const float *x;
    vf acc;
} blocks_dot;

static inline __attribute__((always_inline)) void put16(void *p, int dt, size_t i, __m128i q, float d, float m,
                                                        int add)
{
    (void)dt;
    blocks_dot *c = p;
    __m512 w = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), _mm512_set1_ps(d));
    if (add)
        w = _mm512_add_ps(w, _mm512_set1_ps(m));
    c->acc = _mm512_fmadd_ps(w, _mm512_loadu_ps(c->x + i), c->acc);
}

#include "x86/dequant_x86.h"
#include "tmpl/gemv_body.h"

void kvz_gemv_q8_0_avx512(float *y, size_t ldy, const float *x, size_t m, const void *w, size_t rows, size_t in)
{
    gemv_q8_0_body(y, ldy, x, m, w, rows, in);
}

void kvz_gemv_blocks_avx512(const kvz_gemv_job *job) { gemv_blocks_body(job); }
