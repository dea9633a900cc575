/* The matrix-vector kernels at the NEON level: Q8_0 rows and rows of any block type (one source:
 * tmpl/gemv_body.h). */
#include "arm/vec_neon.h"

static inline vf gemv_i8(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    const int16x8_t h = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(v)));
    return vcvtq_f32_s32(vmovl_s16(vget_low_s16(h)));
}

/* the state of one row's product, which put16 adds sixteen values times x into */
typedef struct blocks_dot {
    const float *x;
    vf acc;
} blocks_dot;

static inline __attribute__((always_inline)) void put16(void *p, int dt, size_t i, int8x16_t q, float d,
                                                        float m, int add)
{
    (void)dt;
    blocks_dot *c = p;
    const int16x8_t h[2] = {vmovl_s8(vget_low_s8(q)), vmovl_s8(vget_high_s8(q))};
    for (int k = 0; k < 4; k++) {
        const int32x4_t v = k % 2 ? vmovl_high_s16(h[k / 2]) : vmovl_s16(vget_low_s16(h[k / 2]));
        float32x4_t w = vmulq_n_f32(vcvtq_f32_s32(v), d);
        if (add)
            w = vaddq_f32(w, vdupq_n_f32(m));
        c->acc = vfmaq_f32(c->acc, w, vld1q_f32(c->x + i + 4 * k));
    }
}

#include "arm/dequant_neon.h"
#include "tmpl/gemv_body.h"

void kvz_gemv_q8_0_neon(float *y, size_t ldy, const float *x, size_t m, const void *w, size_t rows, size_t in)
{
    gemv_q8_0_body(y, ldy, x, m, w, rows, in);
}

void kvz_gemv_blocks_neon(const kvz_gemv_job *job) { gemv_blocks_body(job); }
