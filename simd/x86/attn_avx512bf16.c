/* Attention kernels at the AVX-512 + AVX512_BF16 level: bf16 K/V blocks of many query rows
 * use pair dot products (one source: tmpl/attn_body.h). */
#include "x86/vec_avx512bf16.h"
#include "tmpl/attn_body.h"

void kvz_attn_avx512bf16(const kvz_attn_job *job) { attn_impl(job); }
void kvz_window_score_avx512bf16(const kvz_window_job *job) { window_impl(job); }
