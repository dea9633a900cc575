/* Attention kernels at the AMX level: the AVX512_BF16 level's, with the products of bf16 K/V
 * blocks of many query rows on AMX tiles (one source: tmpl/attn_body.h). */
#include "x86/vec_amx.h"
#include "tmpl/attn_body.h"

void kvz_attn_amx(const kvz_attn_job *job) { attn_impl(job); }
void kvz_window_score_amx(const kvz_window_job *job) { window_impl(job); }
