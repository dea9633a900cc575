/* A growable run of K/V rows with positions: the storage of one (layer, KV head) of a cache or a query tail. */
#include "core/segment.h"

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

size_t kvz_dtype_bytes(kvz_dtype dt) { return dt == KVZ_DTYPE_F32 ? 4 : 2; }

/* Moves the first `keep` rows into new buffers of `rows` rows. */
static kvz_status resize(kvz_segment *s, size_t rows, size_t d, kvz_dtype dt)
{
    size_t row_bytes, bytes;
    if (!kvz_mul_ok(d, kvz_dtype_bytes(dt), &row_bytes) || !kvz_mul_ok(rows, row_bytes, &bytes))
        return kvz_fail(KVZ_ERR_NOMEM, "cache: segment of %zu rows is too large", rows);
    void *k = kvz_aligned_alloc(bytes), *v = kvz_aligned_alloc(bytes);
    int64_t *pos = kvz_aligned_alloc(rows * sizeof(int64_t));
    if (!k || !v || !pos) {
        kvz_aligned_free(k), kvz_aligned_free(v), kvz_aligned_free(pos);
        return kvz_fail(KVZ_ERR_NOMEM, "cache: no memory for a segment of %zu rows", rows);
    }
    if (s->len) {
        memcpy(k, s->k, s->len * row_bytes);
        memcpy(v, s->v, s->len * row_bytes);
        memcpy(pos, s->pos, s->len * sizeof(int64_t));
    }
    kvz_aligned_free(s->k), kvz_aligned_free(s->v), kvz_aligned_free(s->pos);
    s->k = k, s->v = v, s->pos = pos, s->cap = rows;
    return KVZ_OK;
}

kvz_status kvz_segment_reserve(kvz_segment *s, size_t rows, size_t d, kvz_dtype dt)
{
    if (rows <= s->cap)
        return KVZ_OK;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < rows) /* doubling: appends stay amortised O(1) per row */
        cap = cap > ((size_t)-1) / 2 ? rows : 2 * cap;
    return resize(s, cap, d, dt);
}

kvz_status kvz_segment_append(kvz_segment *s, size_t n, const float *k, const float *v, ptrdiff_t stride,
                              size_t d, kvz_dtype dt, int64_t p0)
{
    kvz_status st = kvz_segment_reserve(s, s->len + n, d, dt);
    if (st != KVZ_OK)
        return st;
    const size_t rb = d * kvz_dtype_bytes(dt);
    for (size_t t = 0; t < n; t++) {
        kvz_convert((char *)s->k + (s->len + t) * rb, dt, k + (ptrdiff_t)t * stride, KVZ_DTYPE_F32, d);
        kvz_convert((char *)s->v + (s->len + t) * rb, dt, v + (ptrdiff_t)t * stride, KVZ_DTYPE_F32, d);
        s->pos[s->len + t] = p0 + (int64_t)t;
    }
    s->len += n;
    return KVZ_OK;
}

kvz_status kvz_segment_compact(kvz_segment *s, const uint8_t *keep, size_t d, kvz_dtype dt)
{
    const size_t rb = d * kvz_dtype_bytes(dt);
    size_t m = 0;
    for (size_t j = 0; j < s->len; j++) {
        if (!keep[j])
            continue;
        if (m != j) {
            memcpy((char *)s->k + m * rb, (char *)s->k + j * rb, rb);
            memcpy((char *)s->v + m * rb, (char *)s->v + j * rb, rb);
            s->pos[m] = s->pos[j];
        }
        m++;
    }
    s->len = m;
    if (s->cap > 64 && 2 * m < s->cap) /* give evicted memory back */
        return resize(s, m > 64 ? m : 64, d, dt);
    return KVZ_OK;
}

void kvz_segment_free(kvz_segment *s)
{
    kvz_aligned_free(s->k), kvz_aligned_free(s->v), kvz_aligned_free(s->pos);
    memset(s, 0, sizeof *s);
}
