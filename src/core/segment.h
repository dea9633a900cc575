/* A growable run of K/V rows with positions: the storage of one (layer, KV head) of a cache or a query tail. */
#ifndef KVZ_CORE_SEGMENT_H
#define KVZ_CORE_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "kvz.h"

typedef struct kvz_segment {
    void *k, *v;  /* cap rows of d elements of the storage type, 64-byte aligned */
    int64_t *pos; /* cap positions */
    size_t len, cap;
    size_t kv_bytes; /* bytes of each of k and v as allocated: their release needs it */
    /* 1 + the NUMA node the buffers are allocated on; 0, the zeroed default (a query's
       private tail, a cache on one node), is plain memory */
    int node1;
} kvz_segment;

size_t kvz_dtype_bytes(kvz_dtype dt);

/* The node of a segment's memory, or -1 when it is not placed. */
static inline int kvz_segment_node(const kvz_segment *s) { return s->node1 - 1; }

/* Puts the segment's future buffers on a node (-1: plain memory). Only before its first
 * reserve: KVZ_ERR_STATE once it holds buffers, whose release depends on where they are. */
kvz_status kvz_segment_place(kvz_segment *s, int node);

/* Makes room for `rows` rows in total (keeps the contents), doubling the capacity as often as
 * that takes, so that appends row by row stay amortised O(1); KVZ_OK or KVZ_ERR_NOMEM. */
kvz_status kvz_segment_reserve(kvz_segment *s, size_t rows, size_t d, kvz_dtype dt);
/* The same with a capacity of exactly `rows` when it grows: for a caller that knows how many
 * rows will come (a power of two past it would only hold memory, and past 2 MiB would turn
 * the buffers into huge pages, whose first touch costs far more in a VM). */
kvz_status kvz_segment_reserve_exact(kvz_segment *s, size_t rows, size_t d, kvz_dtype dt);

/* Appends n rows of f32 K/V (row t at k + t*stride), converted, with positions p0, p0+1, ... */
kvz_status kvz_segment_append(kvz_segment *s, size_t n, const float *k, const float *v, ptrdiff_t stride,
                              size_t d, kvz_dtype dt, int64_t p0);

/* Keeps the rows with keep[j] != 0, in order; shrinks the allocation below half use when
 * memory allows: always KVZ_OK. */
kvz_status kvz_segment_compact(kvz_segment *s, const uint8_t *keep, size_t d, kvz_dtype dt);

/* Removes the first n rows (n <= len), moving the others to the front; when the capacity
 * is above cap_max (>= len - n), the buffers shrink to cap_max rows if memory allows (a
 * failed shrink keeps the larger buffers). */
void kvz_segment_drop_front(kvz_segment *s, size_t n, size_t cap_max, size_t d, kvz_dtype dt);

/* Releases the buffers; the segment stays on its node for later growth. */
void kvz_segment_free(kvz_segment *s);

#endif
