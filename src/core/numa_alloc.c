/* Node-local memory for cache segments: the node each segment gets on this machine, and buffers placed there.
 */
#define _GNU_SOURCE /* pthread affinity, CPU_* */
#include "core/numa_alloc.h"

#include <pthread.h>
#include <sched.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "core/internal.h"

/*
 * No call of this library may end the host process, and libnuma ends it on some failures:
 * numa_bitmask_alloc (behind numa_allocate_cpumask and numa_allocate_nodemask) prints "Out of
 * memory allocating bitmask" and calls exit(1); numa_node_to_cpus allocates such a mask on its
 * first call for a node and dereferences an unchecked calloc; numa_error exits when the host
 * sets numa_exit_on_error, and numa_error and numa_warn are weak symbols a host may replace
 * with its own. So the library calls only these, none of which allocates or reaches either:
 *   numa_available             one get_mempolicy system call (runtime.c, here)
 *   numa_num_configured_nodes  counts the bits of a mask made at load time (runtime.c, here)
 *   numa_max_node              returns a number found at load time
 *   numa_bitmask_isbitset      a bounds-checked bit read, here of numa_all_nodes_ptr and
 *                              numa_all_cpus_ptr (the process's nodes and CPUs at load time)
 *   mbind                      numaif.h's thin wrapper of the system call (-1 and errno)
 * and reads sysfs itself for what numa_node_to_cpus and numa_node_size64 (which prints
 * warnings to stderr) would tell. libnuma's own load-time constructor (numa_init) still
 * allocates its masks through numa_bitmask_alloc: out of memory while the library is loaded,
 * it exits, and nothing linked against libnuma can prevent that.
 */
#ifdef KVZ_HAVE_NUMA
#include <numa.h>
#include <numaif.h>
#endif

/* ---- sysfs -------------------------------------------------------------------------------- */

int kvz_numa_parse_cpulist(const char *text, kvz_cpus *cpus)
{
    memset(cpus, 0, sizeof *cpus);
    const char *p = text;
    while (*p && *p != '\n') {
        char *end;
        if (*p < '0' || *p > '9')
            return -1;
        const unsigned long first = strtoul(p, &end, 10);
        unsigned long last = first;
        p = end;
        if (*p == '-') {
            if (p[1] < '0' || p[1] > '9')
                return -1;
            last = strtoul(p + 1, &end, 10);
            p = end;
        }
        if (last < first || (*p && *p != ',' && *p != '\n'))
            return -1;
        for (unsigned long c = first; c <= last && c < KVZ_CPU_BITS; c++)
            cpus->words[c / 64] |= (uint64_t)1 << (c % 64);
        if (*p == ',')
            p++;
    }
    return 0;
}

/* A sysfs file of this node into buf (NUL-terminated): its length, or -1 when it cannot be
 * read or does not fit (the caller then knows nothing about the node). */
static long read_node_file(int node, const char *name, char *buf, size_t size)
{
    char path[96];
    snprintf(path, sizeof path, "/sys/devices/system/node/node%d/%s", node, name);
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    ssize_t k = 0;
    while (n < size - 1 && ((k = read(fd, buf + n, size - 1 - n)) > 0 || (k < 0 && errno == EINTR)))
        n += k > 0 ? (size_t)k : 0;
    close(fd);
    if (k < 0 || n == size - 1) /* a read error, or a file as long as the buffer that may go on */
        return -1;
    buf[n] = '\0';
    return (long)n;
}

int kvz_numa_node_cpus(int node, kvz_cpus *cpus)
{
    char buf[8192]; /* the longest list, every other CPU of 1024, takes under 4 KiB */
    if (node < 0 || read_node_file(node, "cpulist", buf, sizeof buf) < 0)
        return -1;
    return kvz_numa_parse_cpulist(buf, cpus);
}

/* The "Node N Key:   123 kB" line of a node's meminfo, in bytes (0 when absent). */
static uint64_t meminfo_bytes(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    if (!p)
        return 0;
    p += strlen(key);
    while (*p == ' ' || *p == '\t')
        p++;
    const unsigned long long kb = *p >= '0' && *p <= '9' ? strtoull(p, NULL, 10) : 0;
    return kb > UINT64_MAX / 1024 ? UINT64_MAX : (uint64_t)kb * 1024;
}

int kvz_numa_node_memory(int node, uint64_t *total, uint64_t *free_bytes)
{
    char buf[8192];
    if (node < 0 || read_node_file(node, "meminfo", buf, sizeof buf) < 0)
        return -1;
    *total = meminfo_bytes(buf, "MemTotal:"), *free_bytes = meminfo_bytes(buf, "MemFree:");
    return 0;
}

/* ---- placement over the real topology -------------------------------------------------- */

#ifdef KVZ_HAVE_NUMA
/* The planner with each node's free memory as a limit, or, when the segments do not fit
 * that way, without it: free memory leaves out reclaimable page cache and changes all the
 * time, so it steers the plan but must not refuse a cache the machine can hold (pages the
 * preferred node cannot give come from another node). */
static kvz_status plan_nodes(const kvz_numa_topology *t, size_t n_seg, const uint64_t *seg_bytes, int *plan)
{
    kvz_error_saved e; /* a plan that fits after all is no failure of the caller's call */
    kvz_error_save(&e);
    kvz_status st = kvz_numa_plan(t, n_seg, seg_bytes, plan, NULL, NULL);
    if (st == KVZ_ERR_NOMEM && t->free_bytes) {
        kvz_numa_topology unlimited = *t;
        unlimited.free_bytes = NULL;
        if ((st = kvz_numa_plan(&unlimited, n_seg, seg_bytes, plan, NULL, NULL)) == KVZ_OK)
            kvz_error_restore(&e);
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
    kvz_status st = KVZ_OK;
    if (!ids || !plan || !cpus || !free_b)
        st = kvz_fail(KVZ_ERR_NOMEM, "cache: no memory for the NUMA placement");
    size_t n = 0;
    for (int node = 0; st == KVZ_OK && node <= max_node && n < 4096; node++) { /* the planner's limit */
        /* a node qualifies when this process may allocate there and run threads there:
           memory-only nodes (CXL, HBM) have no threads of their own to feed */
        kvz_cpus node_cpus;
        uint64_t total = 0, fr = 0;
        if (!numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)node) ||
            kvz_numa_node_cpus(node, &node_cpus) != 0)
            continue;
        size_t k = 0;
        for (unsigned cpu = 0; cpu < KVZ_CPU_BITS; cpu++)
            k += (node_cpus.words[cpu / 64] >> (cpu % 64) & 1) && numa_bitmask_isbitset(numa_all_cpus_ptr, cpu);
        if (!k || kvz_numa_node_memory(node, &total, &fr) != 0 || total == 0)
            continue;
        ids[n] = node, cpus[n] = k, free_b[n] = fr;
        n++;
    }
    if (st == KVZ_OK && n >= 2) {
        const kvz_numa_topology t = {sizeof t, n, cpus, free_b};
        if ((st = plan_nodes(&t, n_seg, seg_bytes, plan)) == KVZ_OK)
            for (size_t s = 0; s < n_seg; s++)
                node_of[s] = ids[plan[s]];
    }
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
    if (node < 0 || numa_available() < 0 || node > numa_max_node() ||
        !numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)node))
        return;
    cpu_set_t now, want;
    if (pthread_getaffinity_np(pthread_self(), sizeof now, &now) != 0)
        return;
    kvz_cpus cpus;
    if (kvz_numa_node_cpus(node, &cpus) != 0)
        return;
    CPU_ZERO(&want);
    for (unsigned c = 0; c < KVZ_CPU_BITS && c < CPU_SETSIZE; c++)
        if ((cpus.words[c / 64] >> (c % 64) & 1) && CPU_ISSET(c, &now))
            CPU_SET(c, &want);
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
