/* The matrix-vector kernels at the portable C level: Q8_0 rows (one source: tmpl/gemv_body.h) and rows of any
 * block type. */
#include "generic/vec_generic.h"

static inline vf gemv_i8(const int8_t *p) { return (float)*p; }
static inline float dq_f16(const uint8_t *p)
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

/* Rows of any block type, each dequantized into the job's work buffer by the generic dequant kernel,
 * then its dot products: the plain form of what the other levels fuse. */
void kvz_gemv_blocks_generic(const kvz_gemv_job *j)
{
    for (size_t r = 0; r < j->rows; r++) {
        kvz_dequant_generic(j->work, KVZ_KDT_F32, (const uint8_t *)j->w + r * j->row_bytes, j->type,
                            j->n_blocks);
        for (size_t i = 0; i < j->m; i++) {
            const float *x = j->x + i * j->in;
            float s = 0.0f;
            for (size_t k = 0; k < j->in; k++)
                s += j->work[k] * x[k];
            j->y[i * j->ldy + r] = s;
        }
    }
}
