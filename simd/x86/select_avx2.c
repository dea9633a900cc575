/* Selection primitive (score-key radix histogram) at the AVX2 level (one source: tmpl/select_body.h). */
#include <string.h>

#include "x86/vec_avx2.h"
#include "tmpl/select_body.h"

void kvz_key_histogram_avx2(const float *x, size_t n, uint32_t prefix, unsigned shift, uint64_t hist[256])
{
    key_histogram_impl(x, n, prefix, shift, hist);
}
