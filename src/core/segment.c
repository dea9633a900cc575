/* A growable run of K/V rows with positions: the storage of one (layer, KV head) of a cache or a query tail. */
#include "core/segment.h"

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/numa_alloc.h"

size_t kvz_dtype_bytes(kvz_dtype dt) { return dt == KVZ_DTYPE_F32 ? 4 : 2; }

static void release(kvz_segment *s)
{
    const int node = kvz_segment_node(s);
    kvz_numa_free(s->k, s->kv_bytes, node), kvz_numa_free(s->v, s->kv_bytes, node);
    kvz_numa_free(s->pos, s->cap * sizeof(int64_t), node);
}

/* Moves the rows into new buffers of `rows` rows on the segment's node (on failure the
 * segment is unchanged). */
static kvz_status resize(kvz_segment *s, size_t rows, size_t d, kvz_dtype dt)
{
    size_t row_bytes, bytes, pos_bytes;
    if (!kvz_mul_ok(d, kvz_dtype_bytes(dt), &row_bytes) || !kvz_mul_ok(rows, row_bytes, &bytes) ||
        !kvz_mul_ok(rows, sizeof(int64_t), &pos_bytes))
        return kvz_fail(KVZ_ERR_NOMEM, "cache: segment of %zu rows is too large", rows);
    const int node = kvz_segment_node(s);
    void *k = kvz_numa_alloc(bytes, node), *v = kvz_numa_alloc(bytes, node);
    int64_t *pos = kvz_numa_alloc(pos_bytes, node);
    if (!k || !v || !pos) {
        kvz_numa_free(k, bytes, node), kvz_numa_free(v, bytes, node), kvz_numa_free(pos, pos_bytes, node);
        return kvz_fail(KVZ_ERR_NOMEM, "cache: no memory for a segment of %zu rows", rows);
    }
    if (s->len) {
        memcpy(k, s->k, s->len * row_bytes);
        memcpy(v, s->v, s->len * row_bytes);
        memcpy(pos, s->pos, s->len * sizeof(int64_t));
    }
    release(s);
    s->k = k, s->v = v, s->pos = pos, s->cap = rows, s->kv_bytes = bytes;
    return KVZ_OK;
}

kvz_status kvz_segment_place(kvz_segment *s, int node)
{
    if (s->k || s->v || s->pos)
        return kvz_fail(KVZ_ERR_STATE, "cache: a segment with memory cannot move to another node");
    s->node1 = node < 0 ? 0 : node + 1;
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

kvz_status kvz_segment_reserve_exact(kvz_segment *s, size_t rows, size_t d, kvz_dtype dt)
{
    return rows <= s->cap ? KVZ_OK : resize(s, rows, d, dt);
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
    /* give evicted memory back; without memory for the smaller buffers the rows stay, in
       place, in the larger ones: a compaction that stopped here would leave a cache half done */
    if (s->cap > 64 && 2 * m < s->cap) {
        kvz_error_saved e;
        kvz_error_save(&e);
        if (resize(s, m > 64 ? m : 64, d, dt) != KVZ_OK)
            kvz_error_restore(&e);
    }
    return KVZ_OK;
}

void kvz_segment_drop_front(kvz_segment *s, size_t n, size_t cap_max, size_t d, kvz_dtype dt)
{
    const size_t rb = d * kvz_dtype_bytes(dt), m = s->len - n;
    if (n && m) {
        memmove(s->k, (char *)s->k + n * rb, m * rb);
        memmove(s->v, (char *)s->v + n * rb, m * rb);
        memmove(s->pos, s->pos + n, m * sizeof *s->pos);
    }
    s->len = m;
    if (s->cap > cap_max) {
        kvz_error_saved e;
        kvz_error_save(&e);
        if (resize(s, cap_max, d, dt) != KVZ_OK)
            kvz_error_restore(&e); /* the rows are in place in the larger buffers */
    }
}

void kvz_segment_free(kvz_segment *s)
{
    release(s);
    const int node1 = s->node1;
    memset(s, 0, sizeof *s);
    s->node1 = node1;
}
