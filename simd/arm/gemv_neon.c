/* The matrix-vector kernels at the NEON level: Q8_0 rows (one source: tmpl/gemv_body.h) and rows of any
 * block type. */
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

/* Rows of any block type: the dequant decoders (dequant_neon.h) hand over sixteen values at a time
 * to put16, which multiplies them into the running sum instead of storing them. */
typedef struct blocks_dot {
    const float *x;
    float32x4_t acc;
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

void kvz_gemv_blocks_neon(const kvz_gemv_job *j)
{
    for (size_t r = 0; r < j->rows; r++) {
        const uint8_t *row = (const uint8_t *)j->w + r * j->row_bytes;
        for (size_t i = 0; i < j->m; i++) {
            blocks_dot c = {j->x + i * j->in, vdupq_n_f32(0.0f)};
            dq_run_dt(&c, KVZ_KDT_F32, row, j->type, j->n_blocks);
            j->y[i * j->ldy + r] = vaddvq_f32(c.acc);
        }
    }
}
