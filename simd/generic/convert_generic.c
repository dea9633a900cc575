/* f32 <-> bf16/f16 conversion kernels at the portable C level (one source: tmpl/convert_body.h). */
#include "generic/vec_generic.h"
#include "tmpl/convert_body.h"

void kvz_to_f32_generic(float *dst, const void *src, int src_dtype, size_t n)
{
    cvt_to_f32(dst, src, src_dtype, n);
}
void kvz_from_f32_generic(void *dst, int dst_dtype, const float *src, size_t n)
{
    cvt_from_f32(dst, dst_dtype, src, n);
}
