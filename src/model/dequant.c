/* kvz_dequantize: GGUF tensor data into f32 or bf16 through the active level's kernel, over the library's
 * threads. */
#include "model/dequant.h"

#include "core/internal.h"
#include "core/pool.h"
#include "model/gguf.h"

typedef struct dequant_job {
    const kvz_kernel_table *kt;
    const kvz_ggml_type *ty;
    uint32_t type;
    void *dst;
    size_t out_size;
    int dst_dtype;
    const void *src;
} dequant_job;

static void dequant_blocks(void *ctx, size_t lo, size_t hi)
{
    const dequant_job *j = ctx;
    j->kt->dequant((char *)j->dst + lo * j->ty->block * j->out_size, j->dst_dtype,
                   (const char *)j->src + lo * j->ty->bytes, (int)j->type, hi - lo);
}

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

    /* pieces of 16K values (64 KiB of f32): a tensor row of a small model stays on one thread,
       a weight matrix spreads over all of them */
    dequant_job j = {kvz_kernels(), ty, type, dst, dst_dtype == KVZ_DTYPE_F32 ? 4 : 2, (int)dst_dtype, src};
    kvz_parallel_for(n / ty->block, 16384 / ty->block, dequant_blocks, &j);
    return KVZ_OK;
}
