/* Node-local memory for cache segments: the node each segment gets on this machine, and buffers placed there.
 */
#define _GNU_SOURCE /* pthread affinity, CPU_* */
#include "core/numa_alloc.h"

#include <pthread.h>
#include <sched.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "core/internal.h"

#ifdef KVZ_HAVE_NUMA
#include <numa.h>
#include <numaif.h>
#endif

/* ---- placement over the real topology -------------------------------------------------- */

#ifdef KVZ_HAVE_NUMA
/* The planner with each node's free memory as a limit, or, when the segments do not fit
 * that way, without it: free memory leaves out reclaimable page cache and changes all the
 * time, so it steers the plan but must not refuse a cache the machine can hold (pages the
 * preferred node cannot give come from another node). */
static kvz_status plan_nodes(const kvz_numa_topology *t, size_t n_seg, const uint64_t *seg_bytes, int *plan)
{
    char saved[512]; /* a plan that fits after all is no failure of the caller's call */
    snprintf(saved, sizeof saved, "%s", kvz_last_error());
    kvz_status st = kvz_numa_plan(t, n_seg, seg_bytes, plan, NULL, NULL);
    if (st == KVZ_ERR_NOMEM && t->free_bytes) {
        kvz_numa_topology unlimited = *t;
        unlimited.free_bytes = NULL;
        if ((st = kvz_numa_plan(&unlimited, n_seg, seg_bytes, plan, NULL, NULL)) == KVZ_OK)
            (void)kvz_fail(KVZ_OK, "%s", saved);
    }
    return st;
}
#endif

kvz_status kvz_numa_place(size_t n_seg, const uint64_t *seg_bytes, int *node_of)
{
    for (size_t s = 0; s < n_seg; s++)
        node_of[s] = -1;
#ifdef KVZ_HAVE_NUMA
    if (n_seg == 0 || numa_available() < 0 || numa_num_configured_nodes() < 2)
        return KVZ_OK;
    const int max_node = numa_max_node();
    if (max_node < 1)
        return KVZ_OK;
    const size_t n_ids = (size_t)max_node + 1;
    int *ids = malloc(n_ids * sizeof *ids), *plan = malloc(n_seg * sizeof *plan);
    size_t *cpus = malloc(n_ids * sizeof *cpus);
    uint64_t *free_b = malloc(n_ids * sizeof *free_b);
    struct bitmask *node_cpus = numa_allocate_cpumask();
    kvz_status st = KVZ_OK;
    if (!ids || !plan || !cpus || !free_b || !node_cpus)
        st = kvz_fail(KVZ_ERR_NOMEM, "cache: no memory for the NUMA placement");
    size_t n = 0;
    for (int node = 0; st == KVZ_OK && node <= max_node && n < 4096; node++) { /* the planner's limit */
        /* a node qualifies when this process may allocate there and run threads there:
           memory-only nodes (CXL, HBM) have no threads of their own to feed */
        if (!numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)node) ||
            numa_node_to_cpus(node, node_cpus) != 0)
            continue;
        size_t k = 0;
        for (unsigned cpu = 0; cpu < node_cpus->size; cpu++)
            k += numa_bitmask_isbitset(node_cpus, cpu) && numa_bitmask_isbitset(numa_all_cpus_ptr, cpu);
        long long fr = 0;
        if (!k || numa_node_size64(node, &fr) <= 0)
            continue;
        ids[n] = node, cpus[n] = k, free_b[n] = fr > 0 ? (uint64_t)fr : 0;
        n++;
    }
    if (st == KVZ_OK && n >= 2) {
        const kvz_numa_topology t = {sizeof t, n, cpus, free_b};
        if ((st = plan_nodes(&t, n_seg, seg_bytes, plan)) == KVZ_OK)
            for (size_t s = 0; s < n_seg; s++)
                node_of[s] = ids[plan[s]];
    }
    if (node_cpus)
        numa_bitmask_free(node_cpus);
    free(ids), free(plan), free(cpus), free(free_b);
    return st;
#else
    (void)seg_bytes;
    return KVZ_OK;
#endif
}

/* ---- buffers ------------------------------------------------------------------------------ */

/* Node-bound and large buffers are mappings of their own; small unplaced ones come from malloc. */
static int is_mapping(size_t bytes, int node) { return node >= 0 || bytes >= KVZ_HUGE_BYTES; }

/* Bytes of the mapping behind a buffer: whole pages (0 on overflow). */
static size_t map_bytes(size_t bytes)
{
    const long ps = sysconf(_SC_PAGESIZE);
    const size_t page = ps > 0 ? (size_t)ps : 4096;
    if (bytes == 0)
        return page;
    return bytes > (size_t)-1 - (page - 1) ? 0 : (bytes + page - 1) / page * page;
}

#ifdef KVZ_HAVE_NUMA
/* MPOL_PREFERRED rather than MPOL_BIND: when the node runs out of memory later (the cache
 * grows, other processes allocate) the kernel then takes pages from another node, which is
 * slower but correct, where a strict binding would wake the OOM killer on a page fault. A
 * refusal (no NUMA support in the kernel, a container's seccomp filter) leaves the default
 * first-touch policy: still correct memory. */
static void prefer_node(void *p, size_t len, int node)
{
    enum { BITS = 8 * sizeof(unsigned long), MAX_NODES = 4096 };
    unsigned long mask[MAX_NODES / BITS];
    if (node >= MAX_NODES)
        return;
    const size_t longs = (size_t)node / BITS + 1;
    memset(mask, 0, longs * sizeof *mask);
    mask[node / BITS] = 1ul << (node % BITS);
    /* maxnode counts one more than the mask's bits: the kernel's historical off-by-one, as libnuma passes it */
    (void)mbind(p, len, MPOL_PREFERRED, mask, longs * BITS + 1, 0);
}
#endif

void *kvz_numa_alloc(size_t bytes, int node)
{
    if (!is_mapping(bytes, node))
        return kvz_aligned_alloc(bytes);
    const size_t len = map_bytes(bytes);
    /* a large buffer gets 2 MiB of slack so that it can start on a huge-page boundary:
       only whole aligned 2 MiB ranges inside a mapping can become huge pages */
    const size_t slack = bytes >= KVZ_HUGE_BYTES ? KVZ_HUGE_BYTES : 0;
    if (!len || len > (size_t)-1 - slack)
        return NULL;
    char *p = mmap(NULL, len + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (slack) {
        char *a = (char *)(((uintptr_t)p + KVZ_HUGE_BYTES - 1) & ~(uintptr_t)(KVZ_HUGE_BYTES - 1));
        const size_t head = (size_t)(a - p), tail = slack - head; /* both whole pages */
        if (head)
            (void)munmap(p, head);
        if (tail)
            (void)munmap(a + len, tail);
        p = a;
#ifdef MADV_HUGEPAGE
        (void)madvise(p, len, MADV_HUGEPAGE); /* a hint: THP may be "never", or give no huge page */
#endif
    }
#ifdef KVZ_HAVE_NUMA
    if (node >= 0) /* before any page is touched: the policy applies to pages faulted in later */
        prefer_node(p, len, node);
#endif
    return p;
}

void kvz_numa_free(void *p, size_t bytes, int node)
{
    if (!p)
        return;
    if (is_mapping(bytes, node))
        (void)munmap(p, map_bytes(bytes));
    else
        kvz_aligned_free(p);
}

void kvz_numa_bind_thread(int node, kvz_thread_pin *pin)
{
    pin->bound = 0;
#ifdef KVZ_HAVE_NUMA
    _Static_assert(sizeof(cpu_set_t) <= sizeof pin->saved, "cpu_set_t fits the pin");
    if (node < 0 || numa_available() < 0 || node > numa_max_node() || !numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)node))
        return;
    cpu_set_t now, want;
    if (pthread_getaffinity_np(pthread_self(), sizeof now, &now) != 0)
        return;
    struct bitmask *cpus = numa_allocate_cpumask();
    if (!cpus)
        return;
    CPU_ZERO(&want);
    if (numa_node_to_cpus(node, cpus) == 0)
        for (unsigned c = 0; c < cpus->size && c < CPU_SETSIZE; c++)
            if (numa_bitmask_isbitset(cpus, c) && CPU_ISSET(c, &now))
                CPU_SET(c, &want);
    numa_free_cpumask(cpus);
    if (CPU_COUNT(&want) == 0 || pthread_setaffinity_np(pthread_self(), sizeof want, &want) != 0)
        return;
    memcpy(pin->saved, &now, sizeof now);
    pin->bound = 1;
#else
    (void)node;
#endif
}

void kvz_numa_unbind_thread(kvz_thread_pin *pin)
{
#ifdef KVZ_HAVE_NUMA
    if (pin->bound) {
        cpu_set_t was;
        memcpy(&was, pin->saved, sizeof was);
        (void)pthread_setaffinity_np(pthread_self(), sizeof was, &was);
    }
#endif
    pin->bound = 0;
}
