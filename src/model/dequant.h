/* GGUF tensor data (float and block-quantized types) into the f32 or bf16 the matrix products use. */
#ifndef KVZ_MODEL_DEQUANT_H
#define KVZ_MODEL_DEQUANT_H

#include <stddef.h>
#include <stdint.h>

#include "kvz.h"

/*
 * Converts n elements of a tensor of ggml type `type` (KVZ_GGML_*, model/gguf.h) into dst as
 * KVZ_DTYPE_F32 or KVZ_DTYPE_BF16 (rounded to nearest even from the f32 value). src points at
 * the first block of the run and n is a whole number of blocks (kvz_ggml_type_of(type)->block).
 * Values are those of the `gguf` Python package's dequantize (ggml's dequantize_row_*): each
 * block's f16 scales widened exactly, products and sums in fp32. Runs on the active ISA level's
 * kernel, split over the library's threads when n is large.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (n not whole blocks, another dst dtype),
 *         KVZ_ERR_UNSUPPORTED (a type outside the table).
 */
kvz_status kvz_dequantize(void *dst, kvz_dtype dst_dtype, const void *src, uint32_t type, size_t n);

#endif
