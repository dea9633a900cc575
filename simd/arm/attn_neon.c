/* Attention and FastKV window-score kernels at the NEON level (one source: tmpl/attn_body.h). */
#include "arm/vec_neon.h"
#include "tmpl/attn_body.h"

void kvz_attn_neon(const kvz_attn_job *job) { attn_impl(job); }
void kvz_window_score_neon(const kvz_window_job *job) { window_impl(job); }
