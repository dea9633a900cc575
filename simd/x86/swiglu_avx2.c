/* The feed-forward gate kernels (SwiGLU, GELU) at the AVX2 level (one source: tmpl/swiglu_body.h). */
#include "x86/vec_avx2.h"
#include "tmpl/swiglu_body.h"

void kvz_swiglu_avx2(float *g, const float *u, size_t n) { swiglu_body(g, u, n); }
void kvz_geglu_avx2(float *g, const float *u, size_t n) { geglu_body(g, u, n); }
