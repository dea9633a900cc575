/* The matrix-vector kernels at the portable C level (one source: tmpl/gemv_body.h). */
#include "generic/vec_generic.h"

static inline vf gemv_i8(const int8_t *p) { return (float)*p; }
static inline float gemv_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return kvz_f16_to_f32(h);
}

#include "tmpl/gemv_body.h"

void kvz_gemv_q8_0_generic(float *y, size_t ldy, const float *x, size_t m, const void *w, size_t rows,
                           size_t in)
{
    gemv_q8_0_body(y, ldy, x, m, w, rows, in);
}

void kvz_gemv_f32_row_generic(float *y, size_t ldy, const float *w, const float *x, size_t m, size_t in)
{
    gemv_f32_row_body(y, ldy, w, x, m, in);
}
