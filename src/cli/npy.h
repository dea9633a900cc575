/* NumPy .npy files of float32 arrays (format version 1.0): written atomically, read with checks. */
#ifndef KVZ_CLI_NPY_H
#define KVZ_CLI_NPY_H

#include <stddef.h>

#include "kvz.h"

/* Writes data (C order, shape[0..ndim-1], ndim 1..4) to path through a temporary file beside
 * it, synced and renamed into place (core/atomic_file.h): on failure the file at path, if any,
 * is unchanged and no temporary file remains. The new file gets 0666 less the umask.
 * KVZ_ERR_IO with errno text, KVZ_ERR_INVALID_ARG for a shape of more than SIZE_MAX bytes. */
kvz_status kvz_npy_write_f32(const char *path, const float *data, const size_t *shape, size_t ndim);

/* Reads a little-endian float32 C-order array of 1..4 dims: *data malloc'ed, shape[4] and
 * *ndim filled. KVZ_ERR_FORMAT for another dtype or order, KVZ_ERR_TRUNCATED, KVZ_ERR_IO. */
kvz_status kvz_npy_read_f32(const char *path, float **data, size_t shape[4], size_t *ndim);

/* The element-wise maximum of the [rows, cols] arrays of the comma-separated .npy files in list
 * (kvzip-head's head scores, several calibrations merged) into *out (malloc'ed). KVZ_ERR_MISMATCH
 * for another shape, KVZ_ERR_INVALID_ARG for an empty list, and kvz_npy_read_f32's. */
kvz_status kvz_npy_max_f32(const char *list, size_t rows, size_t cols, float **out);

#endif
