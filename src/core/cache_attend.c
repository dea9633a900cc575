/* Attention over a cache layer (and a query's private tail): one job per KV head for the attention runner. */
#include <math.h>
#include <stdlib.h>

#include "core/cache_internal.h"
#include "core/internal.h"

kvz_status kvz_cache_attend_runs(const kvz_cache *c, size_t layer, const kvz_segment *tails,
                                 const kvz_attend_args *given, const char *fn)
{
    if (!c || !given)
        return kvz_fail(KVZ_ERR_NULL, "%s: cache and args must not be NULL", fn);
    kvz_attend_args args; /* the 0.1 layout ended with chunk_end (accum came after it) */
    const kvz_status sa = kvz_struct_in(fn, "kvz_attend_args", given, KVZ_SIZE_0_1(kvz_attend_args, chunk_end),
                                        &args, sizeof args);
    if (sa != KVZ_OK)
        return sa;
    const kvz_attend_args *a = &args;
    if (layer >= c->cfg.n_layers)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: layer %zu of %zu", fn, layer, c->cfg.n_layers);
    if (a->group == 0)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: group must be > 0", fn);
    if (a->n_q == 0)
        return KVZ_OK;
    if (!a->q || !a->out)
        return kvz_fail(KVZ_ERR_NULL, "%s: q and out must not be NULL", fn);
    if (a->score && c->window[layer])
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "%s: layer %zu has a sliding window (%zu): scoring runs on the global layers only", fn,
                        layer, c->window[layer]);
    if (a->accum && c->window[layer])
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "%s: layer %zu has a sliding window (%zu): accumulated attention is collected on the "
                        "global layers only",
                        fn, layer, c->window[layer]);
    if (a->accum && tails)
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "%s: accumulated attention is collected on the cache itself, not on a query", fn);
    const size_t H = c->cfg.n_kv_heads, G = a->group, d = c->cfg.head_dim;
    for (size_t h = 0; h < H; h++) {
        const size_t n = kvz_cache_seg(c, layer, h)->len + (tails ? tails[h].len : 0);
        if (n < a->n_q)
            return kvz_fail(KVZ_ERR_INVALID_ARG,
                            "%s: head %zu holds %zu rows, fewer than the %zu queries (append "
                            "their K/V first)",
                            fn, h, n, a->n_q);
        if (a->score && !(a->sink_end <= a->chunk_begin && a->chunk_begin <= a->chunk_end &&
                          a->chunk_end <= kvz_cache_seg(c, layer, h)->len - a->n_q && !tails))
            return kvz_fail(KVZ_ERR_INVALID_ARG,
                            "%s: scoring needs sink_end <= chunk_begin <= chunk_end <= the rows "
                            "before the queries (head %zu)",
                            fn, h);
    }
    kvz_attn_job *jobs = calloc(H, sizeof *jobs);
    if (!jobs)
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", fn);
    for (size_t h = 0; h < H; h++) {
        const kvz_segment *s = kvz_cache_seg(c, layer, h), *t = tails ? &tails[h] : NULL;
        kvz_attn_job *j = &jobs[h];
        j->q = a->q + (ptrdiff_t)(h * G) * a->q_head_stride;
        j->q_head_stride = a->q_head_stride;
        j->q_row_stride = a->q_token_stride;
        j->k = s->k, j->v = s->v, j->n_k = s->len;
        if (t)
            j->k2 = t->k, j->v2 = t->v, j->n_k2 = t->len;
        j->kv_row_stride = (ptrdiff_t)d;
        j->dtype = (int)c->cfg.dtype;
        j->n_q = a->n_q;
        j->d = d;
        j->group = G;
        j->q_pos0 = (ptrdiff_t)(j->n_k + j->n_k2) - (ptrdiff_t)a->n_q; /* bottom-right alignment */
        j->window = c->window[layer]; /* a window counts rows (kvz_cache_config.layer_window) */
        j->scale = a->scale != 0.0f ? a->scale : 1.0f / sqrtf((float)d);
        j->out = a->out + (ptrdiff_t)(h * G) * a->out_head_stride;
        j->out_head_stride = a->out_head_stride;
        j->out_row_stride = a->out_token_stride;
        if (a->score) {
            j->score = a->score + (ptrdiff_t)h * a->score_head_stride;
            j->sink_end = a->sink_end, j->chunk_begin = a->chunk_begin, j->chunk_end = a->chunk_end;
            j->own_begin = (size_t)j->q_pos0;
        }
        if (a->accum) /* one float per row of the segment */
            j->accum = a->accum + (ptrdiff_t)h * a->accum_head_stride;
    }
    /* the node of each head's shared segment (a query's tail is small and wherever it is);
       a cache is placed whole or not at all, so an unplaced one skips this per call */
    int *node_of = kvz_segment_node(kvz_cache_seg(c, layer, 0)) >= 0 ? malloc(H * sizeof *node_of) : NULL;
    for (size_t h = 0; node_of && h < H; h++)
        node_of[h] = kvz_segment_node(kvz_cache_seg(c, layer, h));
    const kvz_status st = kvz_attn_run_placed(jobs, node_of, H);
    free(node_of), free(jobs);
    return st;
}

kvz_status kvz_cache_attend(const kvz_cache *c, size_t layer, const kvz_attend_args *a)
{
    return kvz_cache_attend_runs(c, layer, NULL, a, "kvz_cache_attend");
}
