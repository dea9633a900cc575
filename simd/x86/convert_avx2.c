/* f32 <-> bf16/f16 conversion kernels at the AVX2 level (one source: tmpl/convert_body.h). */
#include "x86/vec_avx2.h"
#include "tmpl/convert_body.h"

void kvz_to_f32_avx2(float *dst, const void *src, int src_dtype, size_t n)
{
    cvt_to_f32(dst, src, src_dtype, n);
}
void kvz_from_f32_avx2(void *dst, int dst_dtype, const float *src, size_t n)
{
    cvt_from_f32(dst, dst_dtype, src, n);
}
