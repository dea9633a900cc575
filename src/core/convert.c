/* kvz_convert: dtype conversion of arrays through the active level's kernels. */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

kvz_status kvz_convert(void *dst, kvz_dtype dst_dtype, const void *src, kvz_dtype src_dtype, size_t n)
{
    if (n == 0)
        return KVZ_OK;
    if (!dst || !src)
        return kvz_fail(KVZ_ERR_NULL, "kvz_convert: dst and src must not be NULL");
    if ((unsigned)dst_dtype > KVZ_DTYPE_F16 || (unsigned)src_dtype > KVZ_DTYPE_F16)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_convert: unknown dtype (%d -> %d)", (int)src_dtype,
                        (int)dst_dtype);
    const kvz_kernel_table *kt = kvz_kernels();
    if (src_dtype == KVZ_DTYPE_F32) {
        kt->from_f32(dst, (int)dst_dtype, (const float *)src, n);
    } else if (dst_dtype == KVZ_DTYPE_F32) {
        kt->to_f32((float *)dst, src, (int)src_dtype, n);
    } else if (src_dtype == dst_dtype) {
        if (dst != src)
            memcpy(dst, src, n * sizeof(uint16_t));
    } else { /* bf16 <-> f16 through f32, a block at a time */
        float tmp[1024];
        for (size_t i = 0; i < n; i += 1024) {
            const size_t m = n - i < 1024 ? n - i : 1024;
            kt->to_f32(tmp, (const unsigned char *)src + 2 * i, (int)src_dtype, m);
            kt->from_f32((unsigned char *)dst + 2 * i, (int)dst_dtype, tmp, m);
        }
    }
    return KVZ_OK;
}
