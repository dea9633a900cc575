/* Attention kernels at the AVX-512 level with AVX512_BF16 dot products for bf16 K/V (tmpl/attn_body.h +
 * x86/bf16dot_avx512.h). */
#include "x86/vec_avx512.h"
#include "tmpl/attn_body.h"

void kvz_attn_avx512bf16(const kvz_attn_job *job) { attn_impl(job); }
void kvz_window_score_avx512bf16(const kvz_window_job *job) { window_impl(job); }
