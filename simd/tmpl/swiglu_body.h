/* One source of the feed-forward gate kernels (SwiGLU, GELU) for every level (see attn_body.h). */
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

/* g[i] = gelu(g[i]) * u[i] with GELU's tanh approximation, 0.5 x (1 + tanh(t)),
 * t = sqrt(2/pi) (x + 0.044715 x^3), evaluated as x / (1 + e^(-2t)): the same function, one exp
 * and no tanh; for x -> -inf, e^(-2t) is inf and the quotient a signed zero (never NaN). */
static inline void geglu_body(float *g, const float *u, size_t n)
{
    const vf one = vf_set1(1.0f), c1 = vf_set1(-1.5957691216057308f), c3 = vf_set1(0.044715f);
    const size_t nv = n / VW * VW;
    size_t i = 0;
    for (; i < nv; i += VW) {
        const vf x = vf_load(g + i);
        const vf t2 = vf_mul(c1, vf_add(x, vf_mul(c3, vf_mul(x, vf_mul(x, x))))); /* -2t */
        vf_store(g + i, vf_mul(vf_div(x, vf_add(one, vf_exp(t2))), vf_load(u + i)));
    }
    for (; i < n; i++) {
        const float x = g[i];
        g[i] = x / (1.0f + expf(-1.5957691216057308f * (x + 0.044715f * (x * (x * x))))) * u[i];
    }
}

#endif
