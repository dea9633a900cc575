/* Linear layers y = x W^T (+ b) through oneDNN matmul primitives, shared by every layer of a model. */
#ifndef KVZ_MODEL_LINEAR_H
#define KVZ_MODEL_LINEAR_H

#include <stddef.h>

#include "kvz.h"

/* How a weight matrix is stored: f32 or bf16 values (oneDNN matmul), or ggml Q8_0 blocks as a
 * GGUF file holds them (34 bytes for 32 values; the level's gemv_q8_0 kernel). */
typedef enum kvz_wformat {
    KVZ_WFMT_F32 = KVZ_DTYPE_F32,
    KVZ_WFMT_BF16 = KVZ_DTYPE_BF16,
    KVZ_WFMT_Q8_0 = 100
} kvz_wformat;

/* A weight matrix of `out` rows of `in` elements (PyTorch Linear.weight layout; Q8_0: `in` a
 * multiple of 32) and an optional f32 bias of `out` values. The memory is not owned. */
typedef struct kvz_linear {
    size_t in, out;
    kvz_wformat wtype;
    const void *w;
    const float *bias;
} kvz_linear;

/* The bytes of the matrix (what a product of one row reads). */
double kvz_linear_bytes(const kvz_linear *l);

/* oneDNN engine, a stream and scratchpad per thread of the library's pool, the primitives
 * built so far (keyed by slice shape, weight type and number of rows) and an activation
 * buffer for bf16 inputs. One per model; not thread-safe (each product already runs on all
 * of the library's threads). */
typedef struct kvz_mm kvz_mm;

kvz_status kvz_mm_create(kvz_mm **out);
void kvz_mm_destroy(kvz_mm *mm);

/* y[m][out] = x[m][in] . W^T (+ bias); x and y f32, row-major, not overlapping. bf16
 * weights need a CPU where oneDNN has a bf16 matmul (AVX512_BF16; the model loads them only
 * there): elsewhere KVZ_ERR_UNSUPPORTED. Q8_0 weights run on every CPU, as a matrix-vector
 * product over the rows four at a time: meant for products of few rows (decode, the LM head),
 * where reading the weights is the cost. */
kvz_status kvz_linear_apply(kvz_mm *mm, const kvz_linear *l, size_t m, const float *x, float *y);

/* The rows kvz_linear_apply_padded may write for m rows: m, or for 1024 rows and more m
 * rounded up to a multiple of 64 (see ROW_ALIGN in linear.c). */
size_t kvz_linear_rows(size_t m);

/* kvz_linear_apply where y has room for kvz_linear_rows(m) rows: a bf16 product runs those
 * rows whole, the ones past m on zero inputs, instead of the rest apart (no second read of
 * the weights). x is read for m rows only; what lands in y past row m is unspecified. */
kvz_status kvz_linear_apply_padded(kvz_mm *mm, const kvz_linear *l, size_t m, const float *x, float *y);

#endif
