/* Queries over a shared compressed cache: each holds a private tail per (layer, KV head) and never touches the
 * cache. */
#include <stdlib.h>

#include "core/cache_internal.h"
#include "core/internal.h"

struct kvz_query {
    const kvz_cache *base;
    kvz_segment *tail; /* [layer][head] */
    size_t *tail_len;  /* per layer: tokens appended to the tail */
};

kvz_status kvz_query_create(const kvz_cache *base, kvz_query **out)
{
    if (!base || !out)
        return kvz_fail(KVZ_ERR_NULL, "kvz_query_create: cache and query must not be NULL");
    kvz_query *q = calloc(1, sizeof *q);
    if (!q || !(q->tail = calloc(base->cfg.n_layers * base->cfg.n_kv_heads, sizeof *q->tail)) ||
        !(q->tail_len = calloc(base->cfg.n_layers, sizeof *q->tail_len))) {
        if (q)
            free(q->tail), free(q->tail_len);
        free(q);
        *out = NULL;
        return kvz_fail(KVZ_ERR_NOMEM, "kvz_query_create: no memory");
    }
    q->base = base;
    /* the count is bookkeeping, not part of the cache's value: it may change through a const view */
    atomic_fetch_add(&((kvz_cache *)base)->queries, 1);
    *out = q;
    return KVZ_OK;
}

void kvz_query_destroy(kvz_query *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->base->cfg.n_layers * q->base->cfg.n_kv_heads; i++)
        kvz_segment_free(&q->tail[i]);
    atomic_fetch_sub(&((kvz_cache *)q->base)->queries, 1);
    free(q->tail), free(q->tail_len), free(q);
}

kvz_status kvz_query_append(kvz_query *q, size_t layer, size_t n, const float *k, const float *v,
                            ptrdiff_t token_stride, ptrdiff_t head_stride)
{
    static const char fn[] = "kvz_query_append";
    if (!q)
        return kvz_fail(KVZ_ERR_NULL, "%s: query is NULL", fn);
    const kvz_cache_config *cfg = &q->base->cfg;
    if (layer >= cfg->n_layers)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: layer %zu of %zu", fn, layer, cfg->n_layers);
    if (n == 0)
        return KVZ_OK;
    if (!k || !v)
        return kvz_fail(KVZ_ERR_NULL, "%s: k and v must not be NULL", fn);
    /* the cache's next position and this tail stay within KVZ_POSITION_LIMIT, so no sum overflows */
    const uint64_t room = (uint64_t)(KVZ_POSITION_LIMIT - q->base->next_pos[layer]) - q->tail_len[layer];
    if ((uint64_t)n > room)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: %zu tokens after position %lld pass KVZ_POSITION_LIMIT", fn,
                        n, (long long)(q->base->next_pos[layer] + (int64_t)q->tail_len[layer]));
    const size_t H = cfg->n_kv_heads;
    kvz_status st;
    for (size_t h = 0; h < H; h++)
        if ((st = kvz_segment_reserve(&q->tail[layer * H + h], q->tail[layer * H + h].len + n, cfg->head_dim,
                                      cfg->dtype)) != KVZ_OK)
            return st;
    const int64_t p0 = q->base->next_pos[layer] + (int64_t)q->tail_len[layer];
    for (size_t h = 0; h < H; h++)
        kvz_segment_append(&q->tail[layer * H + h], n, k + (ptrdiff_t)h * head_stride,
                           v + (ptrdiff_t)h * head_stride, token_stride, cfg->head_dim, cfg->dtype, p0);
    q->tail_len[layer] += n;
    return KVZ_OK;
}

kvz_status kvz_query_attend(kvz_query *q, size_t layer, const kvz_attend_args *a)
{
    if (!q)
        return kvz_fail(KVZ_ERR_NULL, "kvz_query_attend: query is NULL");
    if (a && a->score)
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "kvz_query_attend: scoring runs on the cache itself, not on a query");
    if (layer >= q->base->cfg.n_layers)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_query_attend: layer %zu of %zu", layer,
                        q->base->cfg.n_layers);
    return kvz_cache_attend_runs(q->base, layer, &q->tail[layer * q->base->cfg.n_kv_heads], a,
                                 "kvz_query_attend");
}

kvz_status kvz_query_next_position(const kvz_query *q, size_t layer, int64_t *position)
{
    if (!q || !position)
        return kvz_fail(KVZ_ERR_NULL, "kvz_query_next_position: query and position must not be NULL");
    if (layer >= q->base->cfg.n_layers)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_query_next_position: layer %zu of %zu", layer,
                        q->base->cfg.n_layers);
    *position = q->base->next_pos[layer] + (int64_t)q->tail_len[layer];
    return KVZ_OK;
}

kvz_status kvz_query_shape(const kvz_query *q, size_t *n_layers, size_t *n_kv_heads, size_t *head_dim,
                           kvz_dtype *dtype)
{
    if (!q)
        return kvz_fail(KVZ_ERR_NULL, "kvz_query_shape: query is NULL");
    return kvz_cache_shape(q->base, n_layers, n_kv_heads, head_dim, dtype);
}

kvz_status kvz_query_reset(kvz_query *q)
{
    if (!q)
        return kvz_fail(KVZ_ERR_NULL, "kvz_query_reset: query is NULL");
    for (size_t i = 0; i < q->base->cfg.n_layers * q->base->cfg.n_kv_heads; i++)
        q->tail[i].len = 0; /* the memory stays for the next question */
    for (size_t l = 0; l < q->base->cfg.n_layers; l++)
        q->tail_len[l] = 0;
    return KVZ_OK;
}
