/* Attention and FastKV window-score kernels at the portable C level (one source: tmpl/attn_body.h). */
#include "generic/vec_generic.h"
#include "tmpl/attn_body.h"

void kvz_attn_generic(const kvz_attn_job *job) { attn_impl(job); }
void kvz_window_score_generic(const kvz_window_job *job) { window_impl(job); }
