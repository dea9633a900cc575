/* The feed-forward gate kernels (SwiGLU, GELU) at the NEON level (one source: tmpl/swiglu_body.h). */
#include "arm/vec_neon.h"
#include "tmpl/swiglu_body.h"

void kvz_swiglu_neon(float *g, const float *u, size_t n) { swiglu_body(g, u, n); }
void kvz_geglu_neon(float *g, const float *u, size_t n) { geglu_body(g, u, n); }
