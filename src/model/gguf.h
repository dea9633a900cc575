/* A validating GGUF v3 reader (mmap): metadata and tensor directory, every size and offset checked. */
#ifndef KVZ_MODEL_GGUF_H
#define KVZ_MODEL_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "kvz.h"

/* Metadata value types (GGUF's enum). */
enum {
    KVZ_GGUF_U8 = 0,
    KVZ_GGUF_I8 = 1,
    KVZ_GGUF_U16 = 2,
    KVZ_GGUF_I16 = 3,
    KVZ_GGUF_U32 = 4,
    KVZ_GGUF_I32 = 5,
    KVZ_GGUF_F32 = 6,
    KVZ_GGUF_BOOL = 7,
    KVZ_GGUF_STRING = 8,
    KVZ_GGUF_ARRAY = 9,
    KVZ_GGUF_U64 = 10,
    KVZ_GGUF_I64 = 11,
    KVZ_GGUF_F64 = 12
};

/* Tensor types this reader accepts (ggml's numbering). */
enum {
    KVZ_GGML_F32 = 0,
    KVZ_GGML_F16 = 1,
    KVZ_GGML_Q4_0 = 2,
    KVZ_GGML_Q4_1 = 3,
    KVZ_GGML_Q5_0 = 6,
    KVZ_GGML_Q5_1 = 7,
    KVZ_GGML_Q8_0 = 8,
    KVZ_GGML_Q2_K = 10,
    KVZ_GGML_Q3_K = 11,
    KVZ_GGML_Q4_K = 12,
    KVZ_GGML_Q5_K = 13,
    KVZ_GGML_Q6_K = 14,
    KVZ_GGML_BF16 = 30
};

/* A tensor type's name, and its blocks: `block` elements along a row stored in `bytes` bytes
 * (1 element of 4 or 2 bytes for the float types). */
typedef struct kvz_ggml_type {
    const char *name;
    uint32_t block, bytes;
} kvz_ggml_type;

/* The description of a tensor type; NULL for a type this reader does not know. */
const kvz_ggml_type *kvz_ggml_type_of(uint32_t type);

typedef struct kvz_gguf_str {
    const char *p; /* not NUL-terminated: inside the mapping */
    size_t n;
} kvz_gguf_str;

typedef struct kvz_gguf_kv {
    kvz_gguf_str key;
    uint32_t type;       /* KVZ_GGUF_* */
    uint32_t elem_type;  /* for arrays */
    uint64_t count;      /* for arrays */
    const uint8_t *data; /* the value (for arrays: the first element) */
} kvz_gguf_kv;

typedef struct kvz_gguf_tensor {
    kvz_gguf_str name;
    uint32_t n_dims;
    uint64_t dims[4]; /* ne0 first */
    uint32_t type;
    uint64_t n_elements, n_bytes;
    const void *data; /* inside the mapping, at a multiple of general.alignment: any byte when it is 1 */
} kvz_gguf_tensor;

typedef struct kvz_gguf {
    void *map;
    size_t size;
    uint32_t version;
    uint64_t n_kv, n_tensors, alignment, data_offset;
    kvz_gguf_kv *kv;
    kvz_gguf_tensor *tensors;
} kvz_gguf;

/* Maps and validates a GGUF file; on failure *out is NULL and the status says why
 * (KVZ_ERR_IO, KVZ_ERR_FORMAT, KVZ_ERR_VERSION, KVZ_ERR_TRUNCATED, KVZ_ERR_CORRUPT,
 * KVZ_ERR_UNSUPPORTED for an unknown tensor type, KVZ_ERR_NOMEM). */
kvz_status kvz_gguf_open(const char *path, kvz_gguf **out);
void kvz_gguf_close(kvz_gguf *g);

const kvz_gguf_kv *kvz_gguf_find(const kvz_gguf *g, const char *key);
const kvz_gguf_tensor *kvz_gguf_tensor_find(const kvz_gguf *g, const char *name);
/* The value of an integer (or boolean) metadata entry of any width and sign; 0 for another
 * type. A u64 above INT64_MAX reads as -1 (how converters write "none"). */
int kvz_gguf_kv_int(const kvz_gguf_kv *kv, int64_t *v);
/* A non-negative u8/u16/u32/u64/i32/i64 metadata value (KVZ_ERR_MISMATCH for another type or a
 * negative value, KVZ_ERR_INVALID_ARG when absent). */
kvz_status kvz_gguf_get_u64(const kvz_gguf *g, const char *key, uint64_t *v);
kvz_status kvz_gguf_get_f32(const kvz_gguf *g, const char *key, float *v);
kvz_status kvz_gguf_get_str(const kvz_gguf *g, const char *key, kvz_gguf_str *v);
/* All strings of a string array into out[kv->count] (KVZ_ERR_MISMATCH for another type). */
kvz_status kvz_gguf_array_strings(const kvz_gguf_kv *kv, kvz_gguf_str *out);

#endif
