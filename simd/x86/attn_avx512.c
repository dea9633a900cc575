/* Attention and FastKV window-score kernels at the AVX-512 level (one source: tmpl/attn_body.h). */
#include "x86/vec_avx512.h"
#include "tmpl/attn_body.h"

void kvz_attn_avx512(const kvz_attn_job *job) { attn_impl(job); }
void kvz_window_score_avx512(const kvz_window_job *job) { window_impl(job); }
