/* The feed-forward gate kernels (SwiGLU, GELU) at the portable C level (one source: tmpl/swiglu_body.h). */
#include "generic/vec_generic.h"
#include "tmpl/swiglu_body.h"

void kvz_swiglu_generic(float *g, const float *u, size_t n) { swiglu_body(g, u, n); }
void kvz_geglu_generic(float *g, const float *u, size_t n) { geglu_body(g, u, n); }
