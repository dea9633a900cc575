/* The compressed cache's layout, shared by cache.c, query.c and cache_attend.c. */
#ifndef KVZ_CORE_CACHE_INTERNAL_H
#define KVZ_CORE_CACHE_INTERNAL_H

#include <stdatomic.h>

#include "core/segment.h"
#include "kvz.h"

struct kvz_cache {
    kvz_cache_config cfg;
    kvz_segment *seg;      /* [layer][head] */
    int64_t *next_pos;     /* per layer: tokens ever appended (the uncompressed length) */
    size_t *since_compact; /* per layer: tokens appended since the last compaction */
    size_t *window;        /* per layer: the sliding window, 0 for a global layer */
    size_t *dropped;       /* per layer: rows a windowed layer dropped from its front */
    atomic_size_t queries; /* live kvz_query objects reading this cache */
};

/* kvz_cache_create, with the rows each segment is expected to hold for the NUMA placement
 * (seg_rows[layer*n_kv_heads + head]; NULL: cfg->reserve for all, as kvz_cache_create). */
kvz_status kvz_cache_create_placed(const kvz_cache_config *cfg, const uint64_t *seg_rows, kvz_cache **out);

static inline const kvz_segment *kvz_cache_seg(const kvz_cache *c, size_t layer, size_t head)
{
    return &c->seg[layer * c->cfg.n_kv_heads + head];
}

/* Attention of args' queries over each head's cache segment followed by tails[h] (NULL:
 * none); the queries' own keys are the last n_q rows of segment + tail. */
kvz_status kvz_cache_attend_runs(const kvz_cache *c, size_t layer, const kvz_segment *tails,
                                 const kvz_attend_args *a, const char *fn);

#endif
