/* The NUMA planner: a pure function from a topology description and segment sizes to a placement. */
#include <stdlib.h>

#include "core/internal.h"

typedef struct item {
    uint64_t bytes;
    size_t index;
} item;

static int by_size_desc(const void *a, const void *b) /* largest first, then by index: deterministic */
{
    const item *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

kvz_status kvz_numa_plan(const kvz_numa_topology *given, size_t n_seg, const uint64_t *seg_bytes, int *node_of,
                         uint64_t *node_bytes, size_t *first_thread)
{
    static const char fn[] = "kvz_numa_plan";
    if (!given || (n_seg && (!seg_bytes || !node_of)))
        return kvz_fail(KVZ_ERR_NULL, "%s: topology, segment_bytes and node_of must not be NULL", fn);
    kvz_numa_topology topo;
    const kvz_status sa = kvz_struct_in(fn, "kvz_numa_topology", given,
                                        KVZ_SIZE_0_1(kvz_numa_topology, free_bytes), &topo, sizeof topo);
    if (sa != KVZ_OK)
        return sa;
    const kvz_numa_topology *t = &topo;
    if (t->n_nodes == 0 || t->n_nodes > 4096 || !t->cpus)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: %zu nodes (need 1..4096 and their CPU counts)", fn,
                        t->n_nodes);
    for (size_t i = 0; i < t->n_nodes; i++)
        if (t->cpus[i] == 0)
            return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: node %zu has no CPUs", fn, i);
    uint64_t *load = calloc(t->n_nodes, sizeof *load);
    item *items = malloc((n_seg ? n_seg : 1) * sizeof *items);
    if (!load || !items) {
        free(load), free(items);
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", fn);
    }
    for (size_t s = 0; s < n_seg; s++)
        items[s] = (item){seg_bytes[s], s};
    qsort(items, n_seg, sizeof *items, by_size_desc);
    kvz_status st = KVZ_OK;
    for (size_t s = 0; s < n_seg && st == KVZ_OK; s++) {
        const uint64_t b = items[s].bytes;
        size_t best = t->n_nodes;
        for (size_t i = 0; i < t->n_nodes; i++) {
            if (t->free_bytes && (load[i] + b < load[i] || load[i] + b > t->free_bytes[i]))
                continue; /* does not fit */
            /* compare (load + b) / cpus without division: cross-multiplied in 128 bits */
            if (best == t->n_nodes || (unsigned __int128)(load[i] + b) * t->cpus[best] <
                                          (unsigned __int128)(load[best] + b) * t->cpus[i])
                best = i;
        }
        if (best == t->n_nodes)
            st = kvz_fail(KVZ_ERR_NOMEM, "%s: segment %zu (%llu bytes) fits no node's free memory", fn,
                          items[s].index, (unsigned long long)b);
        else {
            node_of[items[s].index] = (int)best;
            load[best] += b;
        }
    }
    if (st == KVZ_OK) {
        size_t first = 0;
        for (size_t i = 0; i < t->n_nodes; i++) {
            if (node_bytes)
                node_bytes[i] = load[i];
            if (first_thread)
                first_thread[i] = first;
            first += t->cpus[i];
        }
    }
    free(load), free(items);
    return st;
}
