/* One source of the SwiGLU gate kernel for every level (see attn_body.h). */
#ifndef KVZ_TMPL_SWIGLU_BODY_H
#define KVZ_TMPL_SWIGLU_BODY_H

#include <math.h>

#include "kernels.h"

/* g[i] = silu(g[i]) * u[i] with silu(x) = x / (1 + e^-x). The division comes before the
 * product, as the formula has it: for x -> -inf, e^-x is inf and x / inf a signed zero,
 * where (x u) / inf would be NaN once x u overflows. */
static inline void swiglu_body(float *g, const float *u, size_t n)
{
    const vf one = vf_set1(1.0f), zero = vf_zero();
    const size_t nv = n / VW * VW;
    size_t i = 0;
    for (; i < nv; i += VW) {
        const vf x = vf_load(g + i);
        vf_store(g + i, vf_mul(vf_div(x, vf_add(one, vf_exp(vf_sub(zero, x)))), vf_load(u + i)));
    }
    for (; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

#endif
