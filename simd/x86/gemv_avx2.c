/* The matrix-vector kernels at the AVX2 level: Q8_0 rows and rows of any block type (one source:
 * tmpl/gemv_body.h). */
#include "x86/vec_avx2.h"

static inline vf gemv_i8(const int8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
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
    const __m256 d8 = _mm256_set1_ps(d);
    __m256 w0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d8);
    __m256 w1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(q, q))), d8);
    if (add) {
        w0 = _mm256_add_ps(w0, _mm256_set1_ps(m));
        w1 = _mm256_add_ps(w1, _mm256_set1_ps(m));
    }
    c->acc = _mm256_fmadd_ps(w0, _mm256_loadu_ps(c->x + i), c->acc);
    c->acc = _mm256_fmadd_ps(w1, _mm256_loadu_ps(c->x + i + 8), c->acc);
}

#include "x86/dequant_x86.h"
#include "tmpl/gemv_body.h"

void kvz_gemv_q8_0_avx2(float *y, size_t ldy, const float *x, size_t m, const void *w, size_t rows, size_t in)
{
    gemv_q8_0_body(y, ldy, x, m, w, rows, in);
}

void kvz_gemv_blocks_avx2(const kvz_gemv_job *job) { gemv_blocks_body(job); }
