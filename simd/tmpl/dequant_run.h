/* The loop over a run of GGUF blocks by type, shared by the levels whose block decoders hand sixteen
 * values at a time to put16 (simd/x86/dequant_x86.h, simd/arm/dequant_neon.h): the including file has
 * defined dq_q4_0 .. dq_q6_k and DQ_INLINE. */
#ifndef KVZ_TMPL_DEQUANT_RUN_H
#define KVZ_TMPL_DEQUANT_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

/* All blocks of one type at one output dtype: dt is a constant at each call, so the compiler
 * builds one loop per (type, dtype). dst goes to put16 as it is (an output array, or the state of a
 * product). */
DQ_INLINE void dq_run_dt(void *dst, int dt, const uint8_t *s, int type, size_t nb)
{
    switch (type) {
    case KVZ_KQ_Q4_0:
        for (size_t k = 0; k < nb; k++)
            dq_q4_0(dst, dt, 32 * k, s + 18 * k);
        break;
    case KVZ_KQ_Q4_1:
        for (size_t k = 0; k < nb; k++)
            dq_q4_1(dst, dt, 32 * k, s + 20 * k);
        break;
    case KVZ_KQ_Q5_0:
        for (size_t k = 0; k < nb; k++)
            dq_q5_0(dst, dt, 32 * k, s + 22 * k);
        break;
    case KVZ_KQ_Q5_1:
        for (size_t k = 0; k < nb; k++)
            dq_q5_1(dst, dt, 32 * k, s + 24 * k);
        break;
    case KVZ_KQ_Q8_0:
        for (size_t k = 0; k < nb; k++)
            dq_q8_0(dst, dt, 32 * k, s + 34 * k);
        break;
    case KVZ_KQ_Q2_K:
        for (size_t k = 0; k < nb; k++)
            dq_q2_k(dst, dt, 256 * k, s + 84 * k);
        break;
    case KVZ_KQ_Q3_K:
        for (size_t k = 0; k < nb; k++)
            dq_q3_k(dst, dt, 256 * k, s + 110 * k);
        break;
    case KVZ_KQ_Q4_K:
        for (size_t k = 0; k < nb; k++)
            dq_q45_k(dst, dt, 256 * k, s + 144 * k, NULL, s + 144 * k + 16);
        break;
    case KVZ_KQ_Q5_K:
        for (size_t k = 0; k < nb; k++)
            dq_q45_k(dst, dt, 256 * k, s + 176 * k, s + 176 * k + 16, s + 176 * k + 48);
        break;
    case KVZ_KQ_Q6_K:
        for (size_t k = 0; k < nb; k++)
            dq_q6_k(dst, dt, 256 * k, s + 210 * k);
        break;
    default: break;
    }
}

/* The dequant kernel: a run of blocks into f32 or bf16. */
static inline void dq_run(void *dst, int dt, const void *src, int type, size_t nb)
{
    if (dt == KVZ_KDT_F32)
        dq_run_dt(dst, KVZ_KDT_F32, (const uint8_t *)src, type, nb);
    else
        dq_run_dt(dst, KVZ_KDT_BF16, (const uint8_t *)src, type, nb);
}

#endif
