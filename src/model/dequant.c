/* kvz_dequantize: GGUF tensor data into f32 or bf16 through the active level's kernel, over the OpenMP threads.
 */
#include "model/dequant.h"

#include "core/internal.h"
#include "model/gguf.h"

kvz_status kvz_dequantize(void *dst, kvz_dtype dst_dtype, const void *src, uint32_t type, size_t n)
{
    const kvz_ggml_type *ty = kvz_ggml_type_of(type);
    if (!ty)
        return kvz_fail(KVZ_ERR_UNSUPPORTED,
                        "kvz_dequantize: ggml type %u is not one of F32, F16, BF16, Q4_0, Q4_1, "
                        "Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K",
                        type);
    if (dst_dtype != KVZ_DTYPE_F32 && dst_dtype != KVZ_DTYPE_BF16)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_dequantize: the output dtype must be f32 or bf16 (got %d)",
                        (int)dst_dtype);
    if (n % ty->block)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_dequantize: %zu elements are not whole %s blocks of %u", n,
                        ty->name, ty->block);
    if (n == 0)
        return KVZ_OK;
    if (!dst || !src)
        return kvz_fail(KVZ_ERR_NULL, "kvz_dequantize: dst and src must not be NULL");

    switch (type) {
    case KVZ_GGML_F32: return kvz_convert(dst, dst_dtype, src, KVZ_DTYPE_F32, n);
    case KVZ_GGML_F16: return kvz_convert(dst, dst_dtype, src, KVZ_DTYPE_F16, n);
    case KVZ_GGML_BF16: return kvz_convert(dst, dst_dtype, src, KVZ_DTYPE_BF16, n);
    default: break;
    }

    const kvz_kernel_table *kt = kvz_kernels();
    const size_t n_blocks = n / ty->block, out_size = dst_dtype == KVZ_DTYPE_F32 ? 4 : 2;
    /* pieces of 16K values (64 KiB of f32): a tensor row of a small model stays on one thread,
       a weight matrix spreads over all of them */
    const size_t per = 16384 / ty->block, pieces = (n_blocks + per - 1) / per;
#pragma omp parallel for schedule(static) if (pieces > 4)
    for (size_t p = 0; p < pieces; p++) {
        const size_t a = p * per, m = n_blocks - a < per ? n_blocks - a : per;
        kt->dequant((char *)dst + a * ty->block * out_size, (int)dst_dtype, (const char *)src + a * ty->bytes,
                    (int)type, m);
    }
    return KVZ_OK;
}
