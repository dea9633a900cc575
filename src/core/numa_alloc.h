/* Node-local memory for cache segments: the node each segment gets on this machine, and buffers placed there.
 */
#ifndef KVZ_CORE_NUMA_ALLOC_H
#define KVZ_CORE_NUMA_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "kvz.h"

/* Buffers of at least this many bytes are mapped on 2 MiB boundaries and advised to use
 * transparent huge pages (a hint: THP may be disabled or refuse). */
#define KVZ_HUGE_BYTES ((size_t)2 << 20)

/* CPUs as a bitmap, bit c in words[c / 64]: as many as a cpu_set_t holds, the most the
 * affinity calls here handle. */
#define KVZ_CPU_BITS 1024
typedef struct kvz_cpus {
    uint64_t words[KVZ_CPU_BITS / 64];
} kvz_cpus;

/* Parses a sysfs CPU list ("0-3,8-11\n"; empty for none) into cpus; CPUs from KVZ_CPU_BITS
 * up are left out. 0, or -1 when the text is malformed. */
int kvz_numa_parse_cpulist(const char *text, kvz_cpus *cpus);

/* The CPUs of a node (sysfs nodeN/cpulist), and its total and free memory in bytes (nodeN/
 * meminfo): 0, or -1 when sysfs does not describe the node. libnuma's numa_node_to_cpus and
 * numa_node_size64 say the same, but can end the process or print (numa_alloc.c says why). */
int kvz_numa_node_cpus(int node, kvz_cpus *cpus);
int kvz_numa_node_memory(int node, uint64_t *total, uint64_t *free_bytes);

/*
 * Where n_seg segments of about seg_bytes[s] bytes go on this machine: kvz_numa_plan over
 * the real nodes (those this process may allocate on and run on, with their CPU counts and
 * free memory). node_of[s] receives a node id, or -1 for every segment when libnuma is
 * missing or fewer than two nodes qualify (nothing to place: plain allocation).
 * Returns KVZ_OK or KVZ_ERR_NOMEM (only for the planner's own small arrays).
 */
kvz_status kvz_numa_place(size_t n_seg, const uint64_t *seg_bytes, int *node_of);

/*
 * A 64-byte aligned buffer of `bytes` bytes (NULL when memory runs out). node >= 0: an
 * anonymous mapping whose pages the kernel prefers to take from that node; node < 0: plain
 * memory. Buffers of KVZ_HUGE_BYTES or more are page mappings on a 2 MiB boundary advised
 * to use huge pages, whatever the node.
 */
void *kvz_numa_alloc(size_t bytes, int node);

/* Releases a buffer of kvz_numa_alloc: bytes and node must be the ones it was made with
 * (together they say whether it is a mapping). NULL is a no-op. */
void kvz_numa_free(void *p, size_t bytes, int node);

/* The CPUs a thread may run on before kvz_numa_bind_thread narrowed them. */
typedef struct kvz_thread_pin {
    int bound;
    unsigned char saved[128]; /* a cpu_set_t */
} kvz_thread_pin;

/* Narrows the calling thread to the CPUs of a node that it may already use (a host's own
 * pinning is respected: only its intersection with the node counts). A hint: without
 * libnuma, for a node this machine lacks, or when the intersection is empty, nothing
 * happens. kvz_numa_unbind_thread restores what was saved. */
void kvz_numa_bind_thread(int node, kvz_thread_pin *pin);
void kvz_numa_unbind_thread(kvz_thread_pin *pin);

#endif
