/* The compressed KV cache object: per-(layer, KV head) segments, append, truncate, compaction, accounting. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cache_internal.h"
#include "core/internal.h"
#include "core/numa_alloc.h"

/* Puts every segment on the node the planner gives it on this machine, before any segment
 * has memory, by the rows it is expected to hold (seg_rows, else the reserve: all equal). */
static kvz_status place(kvz_cache *c, size_t n_seg, const uint64_t *seg_rows)
{
    if (kvz_numa_nodes() < 2)
        return KVZ_OK; /* nothing to place: spare the planner's arrays */
    uint64_t *bytes = malloc(n_seg * sizeof *bytes);
    int *node_of = malloc(n_seg * sizeof *node_of);
    kvz_status st = bytes && node_of ? KVZ_OK : kvz_fail(KVZ_ERR_NOMEM, "kvz_cache_create: no memory");
    const uint64_t rb = 2 * c->cfg.head_dim * kvz_dtype_bytes(c->cfg.dtype) + 8, most = UINT64_MAX / n_seg;
    for (size_t i = 0; st == KVZ_OK && i < n_seg; i++) {
        const uint64_t rows = seg_rows ? seg_rows[i] : c->cfg.reserve ? c->cfg.reserve : 1;
        bytes[i] = rows > most / rb ? most : rows * rb; /* estimates: capped so that no sum wraps */
    }
    if (st == KVZ_OK)
        st = kvz_numa_place(n_seg, bytes, node_of);
    for (size_t i = 0; st == KVZ_OK && i < n_seg; i++)
        (void)kvz_segment_place(&c->seg[i], node_of[i]); /* segments without memory yet: cannot fail */
    free(bytes), free(node_of);
    return st;
}

kvz_status kvz_cache_create(const kvz_cache_config *cfg, kvz_cache **out)
{
    return kvz_cache_create_placed(cfg, NULL, out);
}

/* kvz_cache_config in the first release ended with reserve (layer_window came after it). */
#define CONFIG_SIZE_0_1 KVZ_SIZE_0_1(kvz_cache_config, reserve)

kvz_status kvz_cache_create_placed(const kvz_cache_config *given, const uint64_t *seg_rows, kvz_cache **out)
{
    static const char fn[] = "kvz_cache_create";
    if (!given || !out)
        return kvz_fail(KVZ_ERR_NULL, "%s: config and cache must not be NULL", fn);
    *out = NULL;
    kvz_cache_config full;
    const kvz_status sa = kvz_struct_in(fn, "kvz_cache_config", given, CONFIG_SIZE_0_1, &full, sizeof full);
    if (sa != KVZ_OK)
        return sa;
    const kvz_cache_config *cfg = &full;
    if (!cfg->n_layers || !cfg->n_kv_heads || !cfg->head_dim || cfg->head_dim > KVZ_KMAX_HEAD_DIM)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: layers %zu, heads %zu, head_dim %zu (1..%d) must be > 0", fn,
                        cfg->n_layers, cfg->n_kv_heads, cfg->head_dim, KVZ_KMAX_HEAD_DIM);
    if ((unsigned)cfg->dtype > KVZ_DTYPE_F16)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: unknown dtype %d", fn, (int)cfg->dtype);
    size_t n_seg;
    if (!kvz_mul_ok(cfg->n_layers, cfg->n_kv_heads, &n_seg))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: too many segments", fn);
    kvz_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->seg = calloc(n_seg, sizeof *c->seg)) ||
        !(c->next_pos = calloc(cfg->n_layers, sizeof(int64_t))) ||
        !(c->since_compact = calloc(cfg->n_layers, sizeof(size_t))) ||
        !(c->window = calloc(cfg->n_layers, sizeof(size_t))) ||
        !(c->dropped = calloc(cfg->n_layers, sizeof(size_t)))) {
        kvz_cache_destroy(c);
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", fn);
    }
    c->cfg = *cfg;
    c->cfg.struct_size = sizeof c->cfg;
    if (cfg->layer_window)
        memcpy(c->window, cfg->layer_window, cfg->n_layers * sizeof *c->window);
    c->cfg.layer_window = cfg->layer_window ? c->window : NULL; /* the cache's own copy */
    atomic_init(&c->queries, 0);
    kvz_status st = place(c, n_seg, seg_rows);
    for (size_t i = 0; st == KVZ_OK && i < n_seg && cfg->reserve; i++)
        st = kvz_segment_reserve(&c->seg[i], cfg->reserve, cfg->head_dim, cfg->dtype);
    if (st != KVZ_OK) {
        kvz_cache_destroy(c);
        return st;
    }
    *out = c;
    return KVZ_OK;
}

kvz_status kvz_cache_clone(const kvz_cache *src, kvz_cache **out)
{
    static const char fn[] = "kvz_cache_clone";
    if (!src || !out)
        return kvz_fail(KVZ_ERR_NULL, "%s: cache and out must not be NULL", fn);
    *out = NULL;
    const size_t L = src->cfg.n_layers, n_seg = L * src->cfg.n_kv_heads;
    uint64_t *rows = calloc(n_seg ? n_seg : 1, sizeof *rows);
    if (!rows)
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", fn);
    for (size_t i = 0; i < n_seg; i++)
        rows[i] = src->seg[i].len;
    kvz_cache_config cfg = src->cfg;
    cfg.reserve = 0;
    kvz_cache *c = NULL;
    kvz_status st = kvz_cache_create_placed(&cfg, rows, &c); /* placed by the copy's own sizes */
    free(rows);
    const size_t rb = src->cfg.head_dim * kvz_dtype_bytes(src->cfg.dtype);
    for (size_t i = 0; st == KVZ_OK && i < n_seg; i++) {
        const kvz_segment *s = &src->seg[i];
        kvz_segment *d = &c->seg[i];
        if (!s->len || (st = kvz_segment_reserve(d, s->len, src->cfg.head_dim, src->cfg.dtype)) != KVZ_OK)
            continue;
        memcpy(d->k, s->k, s->len * rb);
        memcpy(d->v, s->v, s->len * rb);
        memcpy(d->pos, s->pos, s->len * sizeof *s->pos);
        d->len = s->len;
    }
    if (st != KVZ_OK) {
        kvz_cache_destroy(c);
        return st;
    }
    memcpy(c->next_pos, src->next_pos, L * sizeof *c->next_pos);
    memcpy(c->since_compact, src->since_compact, L * sizeof *c->since_compact);
    memcpy(c->dropped, src->dropped, L * sizeof *c->dropped);
    c->cfg.reserve = src->cfg.reserve;
    *out = c;
    return KVZ_OK;
}

void kvz_cache_destroy(kvz_cache *c)
{
    if (!c)
        return;
    if (c->seg)
        for (size_t i = 0; i < c->cfg.n_layers * c->cfg.n_kv_heads; i++)
            kvz_segment_free(&c->seg[i]);
    free(c->seg), free(c->next_pos), free(c->since_compact), free(c->window), free(c->dropped), free(c);
}

static kvz_status check_writable(const kvz_cache *c, const char *fn)
{
    if (!c)
        return kvz_fail(KVZ_ERR_NULL, "%s: cache is NULL", fn);
    const size_t q = atomic_load(&c->queries);
    if (q)
        return kvz_fail(KVZ_ERR_STATE, "%s: %zu queries still read this cache; destroy them first", fn, q);
    return KVZ_OK;
}

static kvz_status check_where(const kvz_cache *c, size_t layer, size_t head, const char *fn)
{
    if (!c)
        return kvz_fail(KVZ_ERR_NULL, "%s: cache is NULL", fn);
    if (layer >= c->cfg.n_layers || head >= c->cfg.n_kv_heads)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: layer %zu / head %zu outside %zu x %zu", fn, layer, head,
                        c->cfg.n_layers, c->cfg.n_kv_heads);
    return KVZ_OK;
}

/* Appends n tokens to every head of a layer; positions NULL means the next contiguous ones. */
static kvz_status append(kvz_cache *c, size_t layer, size_t n, const float *k, const float *v,
                         ptrdiff_t token_stride, ptrdiff_t head_stride, const int64_t *positions,
                         const char *fn)
{
    kvz_status st = check_writable(c, fn);
    if (st == KVZ_OK)
        st = check_where(c, layer, 0, fn);
    if (st != KVZ_OK || n == 0)
        return st;
    if (!k || !v)
        return kvz_fail(KVZ_ERR_NULL, "%s: k and v must not be NULL", fn);
    /* next_pos <= KVZ_POSITION_LIMIT always holds (kvz_cache_load checks it too), so these
       sums cannot overflow */
    if ((uint64_t)n > (uint64_t)(KVZ_POSITION_LIMIT - c->next_pos[layer]))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: %zu tokens after position %lld pass KVZ_POSITION_LIMIT", fn,
                        n, (long long)c->next_pos[layer]);
    if (positions)
        for (size_t t = 0; t < n; t++)
            if (positions[t] < (t ? positions[t - 1] + 1 : c->next_pos[layer]) ||
                positions[t] >= KVZ_POSITION_LIMIT)
                return kvz_fail(
                    KVZ_ERR_INVALID_ARG,
                    "%s: position %lld of token %zu is not above the previous one (%lld) or not below "
                    "KVZ_POSITION_LIMIT",
                    fn, (long long)positions[t], t, (long long)(t ? positions[t - 1] : c->next_pos[layer] - 1));
    const size_t w = c->window[layer];
    const size_t H = c->cfg.n_kv_heads;
    /* a windowed layer first drops the rows no later token can see, once there are at least
       `window` of them beyond the last `window` rows: a move of `window` rows per `window`
       tokens or more appended, and at most 2 x window rows plus this append's held; a
       buffer grown far past that (a long prefill in one append) shrinks with the move */
    const size_t len = c->seg[layer * H].len, drop = w && len > w && len - w >= w ? len - w : 0;
    /* room in every head before anything moves, so that a failure leaves the rows as they
       were: room for the rows that stay after the drop, which a buffer that has to grow
       exceeds, so the rows to drop still fit in it until they go */
    for (size_t h = 0; h < H; h++)
        if ((st = kvz_segment_reserve(&c->seg[layer * H + h], len - drop + n, c->cfg.head_dim, c->cfg.dtype)) !=
            KVZ_OK)
            return st;
    if (drop) {
        const size_t cap_max = 2 * (2 * w + n) > 64 ? 2 * (2 * w + n) : 64; /* >= w + n: the room stays */
        for (size_t h = 0; h < H; h++)
            kvz_segment_drop_front(&c->seg[layer * H + h], drop, cap_max, c->cfg.head_dim, c->cfg.dtype);
        c->dropped[layer] += drop;
    }
    for (size_t h = 0; h < H; h++) {
        kvz_segment *s = &c->seg[layer * H + h];
        kvz_segment_append(s, n, k + (ptrdiff_t)h * head_stride, v + (ptrdiff_t)h * head_stride, token_stride,
                           c->cfg.head_dim, c->cfg.dtype, c->next_pos[layer]);
        if (positions)
            memcpy(s->pos + s->len - n, positions, n * sizeof *positions);
    }
    c->next_pos[layer] = positions ? positions[n - 1] + 1 : c->next_pos[layer] + (int64_t)n;
    c->since_compact[layer] += n;
    return KVZ_OK;
}

kvz_status kvz_cache_append(kvz_cache *c, size_t layer, size_t n, const float *k, const float *v,
                            ptrdiff_t token_stride, ptrdiff_t head_stride)
{
    return append(c, layer, n, k, v, token_stride, head_stride, NULL, "kvz_cache_append");
}

kvz_status kvz_cache_append_at(kvz_cache *c, size_t layer, size_t n, const float *k, const float *v,
                               ptrdiff_t token_stride, ptrdiff_t head_stride, const int64_t *positions)
{
    if (n && !positions)
        return kvz_fail(KVZ_ERR_NULL, "kvz_cache_append_at: positions must not be NULL");
    return append(c, layer, n, k, v, token_stride, head_stride, positions, "kvz_cache_append_at");
}

kvz_status kvz_cache_reserve(kvz_cache *c, size_t n)
{
    kvz_status st = check_writable(c, "kvz_cache_reserve");
    for (size_t i = 0; st == KVZ_OK && i < c->cfg.n_layers * c->cfg.n_kv_heads; i++) {
        kvz_segment *s = &c->seg[i];
        if (n > SIZE_MAX - s->len)
            return kvz_fail(KVZ_ERR_NOMEM, "kvz_cache_reserve: %zu more rows than a segment can hold", n);
        st = kvz_segment_reserve_exact(s, s->len + n, c->cfg.head_dim, c->cfg.dtype);
    }
    return st;
}

kvz_status kvz_cache_truncate(kvz_cache *c, size_t n)
{
    static const char fn[] = "kvz_cache_truncate";
    kvz_status st = check_writable(c, fn);
    if (st != KVZ_OK)
        return st;
    for (size_t l = 0; l < c->cfg.n_layers; l++)
        if (n > c->since_compact[l])
            return kvz_fail(KVZ_ERR_INVALID_ARG,
                            "%s: layer %zu has only %zu tokens appended since the last compaction, not %zu", fn,
                            l, c->since_compact[l], n);
    for (size_t l = 0; l < c->cfg.n_layers; l++) {
        const size_t len = c->seg[l * c->cfg.n_kv_heads].len;
        if (c->dropped[l] && (n > len || len - n < c->window[l]))
            return kvz_fail(KVZ_ERR_STATE,
                            "%s: layer %zu (sliding window %zu) dropped the rows its window would need "
                            "after removing %zu of its %zu rows",
                            fn, l, c->window[l], n, len);
    }
    for (size_t l = 0; l < c->cfg.n_layers; l++) {
        if (!n)
            continue;
        kvz_segment *s0 = &c->seg[l * c->cfg.n_kv_heads];
        /* the first removed token's position: exact for contiguous appends, and the only
           record left of where explicit positions (kvz_cache_append_at) started */
        c->next_pos[l] = s0->pos[s0->len - n];
        for (size_t h = 0; h < c->cfg.n_kv_heads; h++)
            c->seg[l * c->cfg.n_kv_heads + h].len -= n;
        c->since_compact[l] -= n;
    }
    return KVZ_OK;
}

kvz_status kvz_cache_compact(kvz_cache *c, const uint8_t *const *keep)
{
    static const char fn[] = "kvz_cache_compact";
    kvz_status st = check_writable(c, fn);
    if (st != KVZ_OK)
        return st;
    if (!keep)
        return kvz_fail(KVZ_ERR_NULL, "%s: keep is NULL", fn);
    const size_t n_seg = c->cfg.n_layers * c->cfg.n_kv_heads;
    const size_t H = c->cfg.n_kv_heads;
    for (size_t i = 0; i < n_seg; i++)
        if (c->seg[i].len && !keep[i] && !c->window[i / H])
            return kvz_fail(KVZ_ERR_NULL, "%s: keep[%zu] is NULL for a segment of %zu rows", fn, i,
                            c->seg[i].len);
    for (size_t i = 0; i < n_seg; i++) /* sliding-window layers keep their window */
        if (c->seg[i].len && !c->window[i / H])
            (void)kvz_segment_compact(&c->seg[i], keep[i], c->cfg.head_dim, c->cfg.dtype);
    for (size_t l = 0; l < c->cfg.n_layers; l++)
        c->since_compact[l] = 0;
    return KVZ_OK;
}

kvz_status kvz_cache_length(const kvz_cache *c, size_t layer, size_t head, size_t *len)
{
    kvz_status st = check_where(c, layer, head, "kvz_cache_length");
    if (st != KVZ_OK)
        return st;
    if (!len)
        return kvz_fail(KVZ_ERR_NULL, "kvz_cache_length: length is NULL");
    *len = kvz_cache_seg(c, layer, head)->len;
    return KVZ_OK;
}

kvz_status kvz_cache_positions(const kvz_cache *c, size_t layer, size_t head, const int64_t **pos)
{
    kvz_status st = check_where(c, layer, head, "kvz_cache_positions");
    if (st != KVZ_OK)
        return st;
    if (!pos)
        return kvz_fail(KVZ_ERR_NULL, "kvz_cache_positions: positions is NULL");
    *pos = kvz_cache_seg(c, layer, head)->pos;
    return KVZ_OK;
}

kvz_status kvz_cache_rows(const kvz_cache *c, size_t layer, size_t head, const void **k, const void **v)
{
    kvz_status st = check_where(c, layer, head, "kvz_cache_rows");
    if (st != KVZ_OK)
        return st;
    if (!k || !v)
        return kvz_fail(KVZ_ERR_NULL, "kvz_cache_rows: k and v must not be NULL");
    *k = kvz_cache_seg(c, layer, head)->k;
    *v = kvz_cache_seg(c, layer, head)->v;
    return KVZ_OK;
}

kvz_status kvz_cache_next_position(const kvz_cache *c, size_t layer, int64_t *position)
{
    kvz_status st = check_where(c, layer, 0, "kvz_cache_next_position");
    if (st != KVZ_OK)
        return st;
    if (!position)
        return kvz_fail(KVZ_ERR_NULL, "kvz_cache_next_position: position is NULL");
    *position = c->next_pos[layer];
    return KVZ_OK;
}

kvz_status kvz_cache_layer_window(const kvz_cache *c, size_t layer, size_t *window)
{
    kvz_status st = check_where(c, layer, 0, "kvz_cache_layer_window");
    if (st != KVZ_OK)
        return st;
    if (!window)
        return kvz_fail(KVZ_ERR_NULL, "kvz_cache_layer_window: window is NULL");
    *window = c->window[layer];
    return KVZ_OK;
}

kvz_status kvz_cache_shape(const kvz_cache *c, size_t *n_layers, size_t *n_kv_heads, size_t *head_dim,
                           kvz_dtype *dtype)
{
    if (!c)
        return kvz_fail(KVZ_ERR_NULL, "kvz_cache_shape: cache is NULL");
    if (n_layers)
        *n_layers = c->cfg.n_layers;
    if (n_kv_heads)
        *n_kv_heads = c->cfg.n_kv_heads;
    if (head_dim)
        *head_dim = c->cfg.head_dim;
    if (dtype)
        *dtype = c->cfg.dtype;
    return KVZ_OK;
}

static size_t row_bytes(const kvz_cache *c) { return 2 * c->cfg.head_dim * kvz_dtype_bytes(c->cfg.dtype) + 8; }

kvz_status kvz_cache_get_stats(const kvz_cache *c, kvz_cache_stats *out)
{
    if (!c || !out)
        return kvz_fail(KVZ_ERR_NULL, "kvz_cache_get_stats: cache and stats must not be NULL");
    const kvz_status sa = kvz_struct_out_check("kvz_cache_get_stats", "kvz_cache_stats", out,
                                               KVZ_SIZE_0_1(kvz_cache_stats, bytes_reserved));
    if (sa != KVZ_OK)
        return sa;
    kvz_cache_stats stats = {.struct_size = sizeof stats}, *st = &stats;
    size_t rows = 0, cap = 0, full = 0;
    for (size_t i = 0; i < c->cfg.n_layers * c->cfg.n_kv_heads; i++)
        rows += c->seg[i].len, cap += c->seg[i].cap;
    for (size_t l = 0; l < c->cfg.n_layers; l++)
        full += (size_t)c->next_pos[l] * c->cfg.n_kv_heads;
    st->rows = rows;
    st->full_rows = full;
    st->kept_ratio = full ? (double)rows / (double)full : 1.0;
    st->bytes_used = rows * row_bytes(c);
    st->bytes_reserved = cap * row_bytes(c);
    kvz_struct_out(out, st, sizeof *st);
    return KVZ_OK;
}

kvz_status kvz_cache_segment_bytes(const kvz_cache *c, size_t layer, size_t head, size_t *bytes)
{
    kvz_status st = check_where(c, layer, head, "kvz_cache_segment_bytes");
    if (st != KVZ_OK)
        return st;
    if (!bytes)
        return kvz_fail(KVZ_ERR_NULL, "kvz_cache_segment_bytes: bytes is NULL");
    *bytes = kvz_cache_seg(c, layer, head)->len * row_bytes(c);
    return KVZ_OK;
}

kvz_status kvz_cache_segment_node(const kvz_cache *c, size_t layer, size_t head, int *node)
{
    kvz_status st = check_where(c, layer, head, "kvz_cache_segment_node");
    if (st != KVZ_OK)
        return st;
    if (!node)
        return kvz_fail(KVZ_ERR_NULL, "kvz_cache_segment_node: node is NULL");
    *node = kvz_segment_node(kvz_cache_seg(c, layer, head));
    return KVZ_OK;
}
