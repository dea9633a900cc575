/* Selection primitive (score-key radix histogram) at the portable C level (one source: tmpl/select_body.h). */
#include <string.h>

#include "generic/vec_generic.h"
#include "tmpl/select_body.h"

void kvz_key_histogram_generic(const float *x, size_t n, uint32_t prefix, unsigned shift, uint64_t hist[256])
{
    key_histogram_impl(x, n, prefix, shift, hist);
}
