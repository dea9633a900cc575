/* Attention and FastKV window-score kernels at the AVX2 level (one source: tmpl/attn_body.h). */
#include "x86/vec_avx2.h"
#include "tmpl/attn_body.h"

void kvz_attn_avx2(const kvz_attn_job *job) { attn_impl(job); }
void kvz_window_score_avx2(const kvz_window_job *job) { window_impl(job); }
