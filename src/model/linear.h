/* Linear layers y = x W^T (+ b): oneDNN matmul primitives shared by every layer of a model, and
 * matrix-vector kernels over GGUF blocks. */
#ifndef KVZ_MODEL_LINEAR_H
#define KVZ_MODEL_LINEAR_H

#include <stddef.h>
#include <stdint.h>

#include "kvz.h"

/* How a matrix's values are held: f32 or bf16 (oneDNN matmul), or only as the GGUF file's blocks. */
typedef enum kvz_wformat {
    KVZ_WFMT_F32 = KVZ_DTYPE_F32,
    KVZ_WFMT_BF16 = KVZ_DTYPE_BF16,
    KVZ_WFMT_BLOCKS = 100 /* no dense copy: products of many rows convert `blocks` a panel at a time */
} kvz_wformat;

/* Products of at most this many rows read a matrix's blocks when it has them (see kvz_linear): the
 * block kernels decode a row once per activation row, so from about three rows oneDNN's bf16
 * product over dense values is faster (SmolLM2's and Gemma 3's layers on Zen 4). */
#define KVZ_LINEAR_BLOCK_ROWS 2

/* A weight matrix of `out` rows of `in` elements (PyTorch Linear.weight layout) and an optional f32
 * bias of `out` values. `w` holds its values as f32 or bf16 (NULL for KVZ_WFMT_BLOCKS); `blocks`,
 * when not NULL, holds them as a GGUF file stores them (ggml block type `qtype`, one of the ten that
 * kvz_dequantize reads; `in` whole blocks a row), and products of few rows read those instead: they
 * are bound by the bytes of the matrix, which blocks have three to four times fewer of than bf16.
 * A KVZ_WFMT_BLOCKS matrix has no dense values at all: products of more rows convert its blocks
 * a panel of rows at a time (kvz_linear_dense_format), so the model holds only the file's bytes.
 * The memory is not owned. */
typedef struct kvz_linear {
    size_t in, out;
    kvz_wformat wtype;
    const void *w;
    const float *bias;
    const void *blocks;
    uint32_t qtype;
} kvz_linear;

/* The bytes a product of one row reads: the blocks' when the matrix has them, else the dense values'. */
double kvz_linear_bytes(const kvz_linear *l);

/* The type products of more than KVZ_LINEAR_BLOCK_ROWS rows run in: the matrix's own, or for one
 * held only as blocks bf16 where oneDNN has a bf16 matmul (AVX512_BF16), else f32. */
kvz_wformat kvz_linear_dense_format(const kvz_linear *l);

/* oneDNN engine, a stream and scratchpad per thread of the library's pool, the primitives
 * built so far (keyed by slice shape, weight type and number of rows) and an activation
 * buffer for bf16 inputs. One per model; not thread-safe (each product already runs on all
 * of the library's threads). */
typedef struct kvz_mm kvz_mm;

kvz_status kvz_mm_create(kvz_mm **out);
void kvz_mm_destroy(kvz_mm *mm);

/* y[m][out] = x[m][in] . W^T (+ bias); x and y f32, row-major, not overlapping. bf16
 * weights need a CPU where oneDNN has a bf16 matmul (AVX512_BF16; the model loads them only
 * there): elsewhere KVZ_ERR_UNSUPPORTED. Blocks run on every CPU: up to KVZ_LINEAR_BLOCK_ROWS rows
 * as matrix-vector products over the library's threads (the level's gemv_q8_0 kernel for Q8_0,
 * gemv_blocks for the other types); more rows of a KVZ_WFMT_BLOCKS matrix as oneDNN products in
 * kvz_linear_dense_format over panels converted by the level's dequant kernel, each value rounded
 * as kvz_dequantize rounds it. */
kvz_status kvz_linear_apply(kvz_mm *mm, const kvz_linear *l, size_t m, const float *x, float *y);

/* The rows kvz_linear_apply_padded may write for m rows: m, or for 1024 rows and more m
 * rounded up to a multiple of 64 (see ROW_ALIGN in linear.c). */
size_t kvz_linear_rows(size_t m);

/* kvz_linear_apply where y has room for kvz_linear_rows(m) rows: a bf16 product runs those
 * rows whole, the ones past m on zero inputs, instead of the rest apart (no second read of
 * the weights). x is read for m rows only; what lands in y past row m is unspecified. */
kvz_status kvz_linear_apply_padded(kvz_mm *mm, const kvz_linear *l, size_t m, const float *x, float *y);

#endif
