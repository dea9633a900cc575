/* The feed-forward gate kernels (SwiGLU, GELU) at the AVX-512 level (one source: tmpl/swiglu_body.h). */
#include "x86/vec_avx512.h"
#include "tmpl/swiglu_body.h"

void kvz_swiglu_avx512(float *g, const float *u, size_t n) { swiglu_body(g, u, n); }
void kvz_geglu_avx512(float *g, const float *u, size_t n) { geglu_body(g, u, n); }
