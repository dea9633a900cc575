/* One source of the Q8_0 matrix-vector kernel for every level (see attn_body.h): the rows read as the
 * GGUF file stores them, the activations f32. */
#ifndef KVZ_TMPL_GEMV_BODY_H
#define KVZ_TMPL_GEMV_BODY_H

#include <stdint.h>
#include <string.h>

#include "kernels.h"

/* The including file defines gemv_i8(p): VW signed bytes at p widened to a vector of floats
 * (exactly), and dq_f16(p): the f16 at p as a float (exactly), which the levels with block decoders
 * have from them. Where those decoders are included (tmpl/dequant_run.h, with a put16 that adds
 * sixteen values times x into a `blocks_dot` {x, acc} of the including file's), this also gives
 * gemv_blocks_body. */

#define Q8_BLOCK_BYTES 34
#define Q8_ROWS        4 /* activation rows that share one widening of a weight block */
#define Q8_INLINE      static inline __attribute__((always_inline))

/* acc[r] += d (q . x_r) over block b for the first mr rows of x (at xk, rows `in` apart): the
 * block's 32 products summed, then scaled once. */
Q8_INLINE void q8_block(const uint8_t *b, const float *xk, size_t in, vf *acc, const size_t mr)
{
    const vf d = vf_set1(dq_f16(b));
    vf q[32 / VW];
    for (size_t v = 0; v < 32 / VW; v++)
        q[v] = gemv_i8((const int8_t *)b + 2 + v * VW);
    for (size_t r = 0; r < mr; r++) {
        vf s = vf_mul(q[0], vf_load(xk + r * in));
        for (size_t v = 1; v < 32 / VW; v++)
            s = vf_fma(q[v], vf_load(xk + r * in + v * VW), s);
        acc[r] = vf_fma(d, s, acc[r]);
    }
}

/* Rows [0, rows) of the matrix against mr (a constant at each call) activation rows: the
 * accumulators stay in registers, two per row (even and odd blocks) so that consecutive blocks'
 * additions do not wait on each other. */
Q8_INLINE void q8_rows(float *y, size_t ldy, const float *x, const uint8_t *w, size_t rows, size_t in,
                       const size_t mr)
{
    const size_t nb = in / 32;
    for (size_t j = 0; j < rows; j++) {
        const uint8_t *b = w + j * nb * Q8_BLOCK_BYTES;
        vf even[Q8_ROWS], odd[Q8_ROWS];
        for (size_t r = 0; r < mr; r++)
            even[r] = odd[r] = vf_zero();
        size_t k = 0;
        for (; k + 2 <= nb; k += 2, b += 2 * Q8_BLOCK_BYTES) {
            q8_block(b, x + k * 32, in, even, mr);
            q8_block(b + Q8_BLOCK_BYTES, x + k * 32 + 32, in, odd, mr);
        }
        if (k < nb)
            q8_block(b, x + k * 32, in, even, mr);
        for (size_t r = 0; r < mr; r++)
            y[r * ldy + j] = vf_hsum(vf_add(even[r], odd[r]));
    }
}

static inline void gemv_q8_0_body(float *y, size_t ldy, const float *x, size_t m, const void *w, size_t rows,
                                  size_t in)
{
    for (size_t r0 = 0; r0 < m; r0 += Q8_ROWS) {
        float *yr = y + r0 * ldy;
        const float *xr = x + r0 * in;
        switch (m - r0 < Q8_ROWS ? m - r0 : Q8_ROWS) {
        case 1: q8_rows(yr, ldy, xr, w, rows, in, 1); break;
        case 2: q8_rows(yr, ldy, xr, w, rows, in, 2); break;
        case 3: q8_rows(yr, ldy, xr, w, rows, in, 3); break;
        default: q8_rows(yr, ldy, xr, w, rows, in, 4); break;
        }
    }
}

#ifdef KVZ_TMPL_DEQUANT_RUN_H
/* Rows of any block type (kvz_gemv_job): the block decoders hand sixteen values at a time to the
 * level's put16, which multiplies them into the running sum instead of storing them; one
 * activation row at a time. */
static inline void gemv_blocks_body(const kvz_gemv_job *j)
{
    for (size_t r = 0; r < j->rows; r++) {
        const uint8_t *row = (const uint8_t *)j->w + r * j->row_bytes;
        for (size_t i = 0; i < j->m; i++) {
            blocks_dot c = {j->x + i * j->in, vf_zero()};
            dq_run_dt(&c, KVZ_KDT_F32, row, j->type, j->n_blocks);
            j->y[i * j->ldy + r] = vf_hsum(c.acc);
        }
    }
}
#endif

#endif
