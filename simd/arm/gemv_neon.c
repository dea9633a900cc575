/* The matrix-vector kernels at the NEON level (one source: tmpl/gemv_body.h). */
#include "arm/vec_neon.h"

static inline vf gemv_i8(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    const int16x8_t h = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(v)));
    return vcvtq_f32_s32(vmovl_s16(vget_low_s16(h)));
}
static inline float gemv_f16(const uint8_t *p)
{
    __fp16 h; /* one exact widening instruction on aarch64 */
    memcpy(&h, p, 2);
    return (float)h;
}

#include "tmpl/gemv_body.h"

void kvz_gemv_q8_0_neon(float *y, size_t ldy, const float *x, size_t m, const void *w, size_t rows, size_t in)
{
    gemv_q8_0_body(y, ldy, x, m, w, rows, in);
}

void kvz_gemv_f32_row_neon(float *y, size_t ldy, const float *w, const float *x, size_t m, size_t in)
{
    gemv_f32_row_body(y, ldy, w, x, m, in);
}
