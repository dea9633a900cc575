/* The NUMA planner on synthetic 1- to 8-node machines, and cache segments' memory on this machine's nodes. */
#define _GNU_SOURCE /* pthread affinity, CPU_* */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "core/internal.h"
#include "core/numa_alloc.h"
#include "core/segment.h"
#include "testutil.h"

#ifdef KVZ_HAVE_NUMA
#include <numa.h>
#include <numaif.h>
#endif

static void check_plan(tu_rng *r, size_t n_nodes, const size_t *cpus, size_t n_seg, int uneven)
{
    uint64_t *bytes = tu_malloc(n_seg * sizeof *bytes), node_bytes[8], total = 0, largest = 0;
    int *node_of = tu_malloc(n_seg * sizeof *node_of), *again = tu_malloc(n_seg * sizeof *again);
    size_t first[8], cpu_total = 0;
    for (size_t s = 0; s < n_seg; s++) {
        /* KVzip leaves heads with very different lengths */
        bytes[s] = uneven ? 1024 * tu_range(r, 1, 4000) : 1 << 20;
        total += bytes[s];
        largest = bytes[s] > largest ? bytes[s] : largest;
    }
    for (size_t i = 0; i < n_nodes; i++)
        cpu_total += cpus[i];
    kvz_numa_topology t = {sizeof t, n_nodes, cpus, NULL};
    assert_int_equal(kvz_numa_plan(&t, n_seg, bytes, node_of, node_bytes, first), KVZ_OK);
    uint64_t sum[8] = {0};
    for (size_t s = 0; s < n_seg; s++) {
        assert_true(node_of[s] >= 0 && (size_t)node_of[s] < n_nodes);
        sum[node_of[s]] += bytes[s];
    }
    size_t f = 0;
    for (size_t i = 0; i < n_nodes; i++) {
        assert_int_equal(sum[i], node_bytes[i]); /* the reported totals are the placement's */
        assert_int_equal(first[i], f);           /* thread ranges follow the nodes in order */
        f += cpus[i];
        /* balance: bytes per CPU within one largest segment (per CPU) of the ideal */
        const double per_cpu = (double)sum[i] / (double)cpus[i], ideal = (double)total / (double)cpu_total;
        assert_true(per_cpu <= ideal + (double)largest / (double)cpus[i] + 1e-9);
    }
    assert_int_equal(kvz_numa_plan(&t, n_seg, bytes, again, NULL, NULL), KVZ_OK);
    assert_memory_equal(node_of, again, n_seg * sizeof *again); /* deterministic */
    free(bytes), free(node_of), free(again);
}

static void test_synthetic(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 80);
    const size_t one[1] = {2}, two[2] = {16, 16}, four[4] = {8, 8, 8, 8}, eight[8] = {4, 4, 4, 4, 4, 4, 8, 8};
    const size_t het[4] = {2, 6, 4, 4};
    for (int uneven = 0; uneven < 2; uneven++) {
        check_plan(&r, 1, one, 256, uneven);
        check_plan(&r, 2, two, 32 * 8, uneven);
        check_plan(&r, 4, four, 28 * 4, uneven);
        check_plan(&r, 8, eight, 80 * 8, uneven);
        check_plan(&r, 4, het, 100, uneven);
    }
    /* equal segments and equal nodes: exactly even */
    uint64_t b[64];
    int node_of[64];
    uint64_t nb[4];
    for (int i = 0; i < 64; i++)
        b[i] = 4096;
    kvz_numa_topology t = {sizeof t, 4, four, NULL};
    assert_int_equal(kvz_numa_plan(&t, 64, b, node_of, nb, NULL), KVZ_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(nb[i], 16 * 4096);
}

static void test_free_memory(void **state)
{
    (void)state;
    const size_t cpus[2] = {4, 4};
    const uint64_t free_b[2] = {10 * 4096, 100 * 4096};
    uint64_t b[40], nb[2];
    int node_of[40];
    for (int i = 0; i < 40; i++)
        b[i] = 4096;
    kvz_numa_topology t = {sizeof t, 2, cpus, free_b};
    assert_int_equal(kvz_numa_plan(&t, 40, b, node_of, nb, NULL), KVZ_OK);
    assert_true(nb[0] <= free_b[0]);
    assert_int_equal(nb[0] + nb[1], 40 * 4096);
    const uint64_t tiny[2] = {4096, 4096};
    t.free_bytes = tiny;
    assert_int_equal(kvz_numa_plan(&t, 40, b, node_of, nb, NULL), KVZ_ERR_NOMEM);
}

static void test_invalid(void **state)
{
    (void)state;
    const size_t cpus[2] = {4, 0};
    uint64_t b[1] = {1};
    int n[1];
    kvz_numa_topology t = {sizeof t, 2, cpus, NULL};
    assert_int_equal(kvz_numa_plan(&t, 1, b, n, NULL, NULL), KVZ_ERR_INVALID_ARG);
    t.n_nodes = 0;
    assert_int_equal(kvz_numa_plan(&t, 1, b, n, NULL, NULL), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_numa_plan(NULL, 1, b, n, NULL, NULL), KVZ_ERR_NULL);
    t.n_nodes = 1, t.struct_size = 1;
    assert_int_equal(kvz_numa_plan(&t, 1, b, n, NULL, NULL), KVZ_ERR_INVALID_ARG);
}

/* On this machine: memory libnuma allocates on a node really sits there (move_pages). */
static void test_real_node(void **state)
{
    (void)state;
#ifdef KVZ_HAVE_NUMA
    if (numa_available() < 0) {
        skip();
        return;
    }
    assert_true(kvz_numa_nodes() >= 1);
    const size_t len = 1 << 20;
    for (int node = 0; node < kvz_numa_nodes(); node++) {
        char *p = numa_alloc_onnode(len, node);
        assert_non_null(p);
        memset(p, 1, len);
        void *pages[1] = {p};
        int status[1] = {-1};
        const long rc = move_pages(0, 1, pages, NULL, status, 0);
        numa_free(p, len);
        if (rc != 0 || status[0] < 0) { /* e.g. under qemu-user, which cannot answer for the host */
            skip();
            return;
        }
        assert_int_equal(status[0], node);
    }
#else
    skip();
#endif
}

/* sysfs CPU lists, as the library reads them instead of through libnuma: the parser on made-up
 * lists, then this machine's nodes against what libnuma says of them. */
static int cpu_in(const kvz_cpus *c, unsigned cpu) { return (int)(c->words[cpu / 64] >> (cpu % 64) & 1); }

static void test_sysfs_nodes(void **state)
{
    (void)state;
    kvz_cpus c;
    assert_int_equal(kvz_numa_parse_cpulist("0-3,8-11\n", &c), 0);
    for (unsigned cpu = 0; cpu < KVZ_CPU_BITS; cpu++)
        assert_int_equal(cpu_in(&c, cpu), cpu < 4 || (cpu >= 8 && cpu < 12));
    assert_int_equal(kvz_numa_parse_cpulist("\n", &c), 0); /* a node without CPUs */
    assert_int_equal(kvz_numa_parse_cpulist("", &c), 0);
    for (unsigned w = 0; w < KVZ_CPU_BITS / 64; w++)
        assert_true(c.words[w] == 0);
    assert_int_equal(kvz_numa_parse_cpulist("5,1000-99999", &c), 0); /* past KVZ_CPU_BITS: left out */
    assert_true(cpu_in(&c, 5) && !cpu_in(&c, 6) && cpu_in(&c, 1000) && cpu_in(&c, KVZ_CPU_BITS - 1));
    static const char *const bad[] = {"a", "3-1", "1-", "1;2", "-1", "1,,2", " 1", "1-2-3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(kvz_numa_parse_cpulist(bad[i], &c), -1);
    uint64_t total = 0, fr = 0;
    assert_int_equal(kvz_numa_node_cpus(-1, &c), -1);
    assert_int_equal(kvz_numa_node_cpus(1 << 20, &c), -1);
    assert_int_equal(kvz_numa_node_memory(1 << 20, &total, &fr), -1);
#ifdef KVZ_HAVE_NUMA
    if (numa_available() < 0 || kvz_numa_node_cpus(0, &c) != 0) { /* no NUMA in the kernel, or no sysfs */
        skip();
        return;
    }
    struct bitmask *theirs = numa_allocate_cpumask();
    for (int node = 0; node <= numa_max_node(); node++) {
        if (kvz_numa_node_cpus(node, &c) != 0 || numa_node_to_cpus(node, theirs) != 0)
            continue; /* a node number without a node */
        for (unsigned cpu = 0; cpu < KVZ_CPU_BITS; cpu++)
            assert_int_equal(cpu_in(&c, cpu), numa_bitmask_isbitset(theirs, cpu));
        long long their_free = 0;
        const long long their_total = numa_node_size64(node, &their_free);
        assert_int_equal(kvz_numa_node_memory(node, &total, &fr), 0);
        assert_true(their_total >= 0 && total == (uint64_t)their_total);
        assert_true(fr <= total);
    }
    numa_free_cpumask(theirs);
    /* one node: every CPU this thread may run on belongs to it */
    cpu_set_t now;
    assert_int_equal(pthread_getaffinity_np(pthread_self(), sizeof now, &now), 0);
    if (kvz_numa_nodes() == 1 && kvz_numa_node_cpus(0, &c) == 0)
        for (unsigned cpu = 0; cpu < KVZ_CPU_BITS && cpu < CPU_SETSIZE; cpu++)
            if (CPU_ISSET(cpu, &now))
                assert_true(cpu_in(&c, cpu));
#else
    skip();
#endif
}

/* ---- node-local segments ---------------------------------------------------------------- */

#ifdef KVZ_HAVE_NUMA
/* 1 when every page of [p, p + bytes) sits on `node`, 0 when one does not, -1 when the
 * kernel cannot say (no move_pages, e.g. under qemu-user, or a page not present). */
static int pages_on(const void *p, size_t bytes, int node)
{
    if (!bytes)
        return 1;
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const uintptr_t a = (uintptr_t)p / page * page, end = (uintptr_t)p + bytes;
    const size_t n = (end - a + page - 1) / page;
    void **pages = tu_malloc(n * sizeof *pages);
    int *status = tu_malloc(n * sizeof *status), res = 1;
    for (size_t i = 0; i < n; i++)
        pages[i] = (void *)(a + i * page), status[i] = -1;
    if (move_pages(0, (unsigned long)n, pages, NULL, status, 0) != 0)
        res = -1;
    for (size_t i = 0; i < n && res == 1; i++)
        if (status[i] < 0)
            res = -1;
        else if (status[i] != node) {
            print_message("page %zu of %zu at %p is on node %d, not %d\n", i, n, pages[i], status[i], node);
            res = 0;
        }
    free(pages), free(status);
    return res;
}
#endif

/* Every row a segment holds: K, V and positions, on the node its placement says (the only
 * node when it is not placed on a one-node machine). */
static void check_cache_pages(const kvz_cache *c, size_t L, size_t H, size_t d, kvz_dtype dt)
{
#ifdef KVZ_HAVE_NUMA
    if (numa_available() < 0) {
        print_message("libnuma reports no NUMA support: pages not checked\n");
        return;
    }
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < H; h++) {
            int node;
            size_t len;
            const void *k, *v;
            const int64_t *pos;
            assert_int_equal(kvz_cache_segment_node(c, l, h, &node), KVZ_OK);
            assert_int_equal(kvz_cache_length(c, l, h, &len), KVZ_OK);
            assert_int_equal(kvz_cache_rows(c, l, h, &k, &v), KVZ_OK);
            assert_int_equal(kvz_cache_positions(c, l, h, &pos), KVZ_OK);
            if (node < 0 && kvz_numa_nodes() > 1)
                continue; /* not placed on a many-node machine: first touch decides */
            const int want = node < 0 ? 0 : node;
            const size_t rb = d * tu_dtype_size(dt);
            const int got[3] = {pages_on(k, len * rb, want), pages_on(v, len * rb, want),
                                pages_on(pos, len * sizeof *pos, want)};
            for (int i = 0; i < 3; i++) {
                if (got[i] < 0) {
                    print_message("move_pages cannot tell where pages are here: pages not checked\n");
                    return;
                }
                assert_int_equal(got[i], 1);
            }
        }
#else
    (void)c, (void)L, (void)H, (void)d, (void)dt;
    print_message("libnuma not compiled in: pages not checked\n");
#endif
}

/* The placement of a fresh and of a loaded cache agrees with kvz_numa_nodes(), and the rows
 * sit on the planned node. */
static void test_cache_placement(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 81);
    const size_t L = 3, H = 4, d = 64, n = 300;
    const kvz_dtype dt = KVZ_DTYPE_BF16;
    kvz_cache_config cfg = {sizeof cfg, L, H, d, dt, 0, NULL};
    kvz_cache *c = NULL, *back = NULL;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    float *kv = tu_fill_kv(&r, KVZ_DTYPE_F32, 2 * n * H * d, -1.0f, 1.0f, NULL);
    for (size_t l = 0; l < L; l++)
        for (size_t t0 = 0; t0 < n; t0 += 37) /* a prefill in chunks: segments grow several times */
            assert_int_equal(kvz_cache_append(c, l, t0 + 37 < n ? 37 : n - t0, kv + t0 * H * d,
                                              kv + (n + t0) * H * d, (ptrdiff_t)(H * d), (ptrdiff_t)d),
                             KVZ_OK);
    char path[] = "/tmp/kvz-numa-XXXXXX";
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(kvz_cache_save(c, path, NULL), KVZ_OK);
    assert_int_equal(kvz_cache_load(path, NULL, &back, NULL), KVZ_OK);
    unlink(path);
    const kvz_cache *both[2] = {c, back};
    for (int which = 0; which < 2; which++) {
        int placed = 0, unplaced = 0;
        for (size_t l = 0; l < L; l++)
            for (size_t h = 0; h < H; h++) {
                int node = -7;
                assert_int_equal(kvz_cache_segment_node(both[which], l, h, &node), KVZ_OK);
                if (kvz_numa_nodes() == 1)
                    assert_int_equal(node, -1); /* one node: plain aligned memory */
                else
                    assert_true(node >= -1 && node < 4096);
                placed += node >= 0, unplaced += node < 0;
            }
        assert_true(!placed || !unplaced); /* a cache is placed as a whole or not at all */
        check_cache_pages(both[which], L, H, d, dt);
    }
    int node;
    assert_int_equal(kvz_cache_segment_node(NULL, 0, 0, &node), KVZ_ERR_NULL);
    assert_int_equal(kvz_cache_segment_node(c, 0, 0, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_cache_segment_node(c, L, 0, &node), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_cache_segment_node(c, 0, H, &node), KVZ_ERR_INVALID_ARG);
    kvz_cache_destroy(c), kvz_cache_destroy(back);
    free(kv);
}

/* kvz_numa_place on this machine: nothing is placed with one node. */
static void test_place_here(void **state)
{
    (void)state;
    uint64_t b[16];
    int node_of[16];
    for (int i = 0; i < 16; i++)
        b[i] = 4096, node_of[i] = -7;
    assert_int_equal(kvz_numa_place(16, b, node_of), KVZ_OK);
    for (int i = 0; i < 16; i++)
        if (kvz_numa_nodes() == 1)
            assert_int_equal(node_of[i], -1);
        else
            assert_true(node_of[i] >= -1 && (node_of[i] < 0) == (node_of[0] < 0));
    assert_int_equal(kvz_numa_place(0, NULL, NULL), KVZ_OK);
}

/*
 * The node-bound path on any machine: a segment put on node 0 by hand grows in small steps
 * across the 2 MiB huge-page size, then shrinks; rows, positions and alignment survive
 * every move, and the pages sit on node 0.
 */
static void test_node_path_growth(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 82);
    const size_t d = 96, n = tu_quick() ? 2000 : 6000;
    const kvz_dtype dts[2] = {KVZ_DTYPE_F32, KVZ_DTYPE_F16};
    float *k = tu_fill_kv(&r, KVZ_DTYPE_F32, n * d, -4.0f, 4.0f, NULL);
    float *v = tu_fill_kv(&r, KVZ_DTYPE_F32, n * d, -4.0f, 4.0f, NULL);
    for (int x = 0; x < 2; x++) {
        const kvz_dtype dt = dts[x];
        const size_t rb = d * tu_dtype_size(dt);
        kvz_segment s = {0};
        assert_int_equal(kvz_segment_place(&s, 0), KVZ_OK);
        assert_int_equal(kvz_segment_node(&s), 0);
        int huge_seen = 0;
        for (size_t t = 0; t < n;) {
            size_t step = tu_range(&r, 1, 7);
            step = step < n - t ? step : n - t;
            const size_t cap = s.cap;
            assert_int_equal(
                kvz_segment_append(&s, step, k + t * d, v + t * d, (ptrdiff_t)d, d, dt, (int64_t)t), KVZ_OK);
            t += step;
            assert_int_equal(s.len, t);
            assert_true((uintptr_t)s.k % 64 == 0 && (uintptr_t)s.v % 64 == 0 && (uintptr_t)s.pos % 64 == 0);
            if (s.cap != cap && s.kv_bytes >= KVZ_HUGE_BYTES) { /* huge-page candidates start on 2 MiB */
                assert_true((uintptr_t)s.k % KVZ_HUGE_BYTES == 0 && (uintptr_t)s.v % KVZ_HUGE_BYTES == 0);
                huge_seen = 1;
            }
        }
        assert_true(huge_seen || tu_quick() || dt != KVZ_DTYPE_F32);
        /* contents: what kvz_convert makes of the source, byte for byte */
        unsigned char *want = tu_malloc(n * rb);
        assert_int_equal(kvz_convert(want, dt, k, KVZ_DTYPE_F32, n * d), KVZ_OK);
        assert_memory_equal(s.k, want, n * rb);
        assert_int_equal(kvz_convert(want, dt, v, KVZ_DTYPE_F32, n * d), KVZ_OK);
        assert_memory_equal(s.v, want, n * rb);
        for (size_t t = 0; t < n; t++)
            assert_int_equal(s.pos[t], (int64_t)t);
#ifdef KVZ_HAVE_NUMA
        if (numa_available() >= 0) {
            int mode = -1; /* the policy the allocator asked for, where the kernel can say */
            if (get_mempolicy(&mode, NULL, 0, s.k, MPOL_F_ADDR) == 0)
                assert_int_equal(mode, MPOL_PREFERRED);
            const int on = pages_on(s.k, n * rb, 0);
            if (on < 0)
                print_message("move_pages cannot tell where pages are here: pages not checked\n");
            else
                assert_int_equal(on, 1);
        }
#endif
        /* shrink on the same node: every third row survives, in order */
        uint8_t *keep = tu_malloc(n);
        size_t m = 0;
        for (size_t t = 0; t < n; t++)
            keep[t] = t % 3 == 0, m += keep[t];
        assert_int_equal(kvz_segment_compact(&s, keep, d, dt), KVZ_OK);
        assert_int_equal(s.len, m);
        assert_true(s.cap < n && (uintptr_t)s.k % 64 == 0 && (uintptr_t)s.pos % 64 == 0);
        assert_int_equal(kvz_convert(want, dt, k, KVZ_DTYPE_F32, n * d), KVZ_OK);
        for (size_t j = 0; j < m; j++) {
            assert_int_equal(s.pos[j], (int64_t)(3 * j));
            assert_memory_equal((char *)s.k + j * rb, want + 3 * j * rb, rb);
        }
        /* memory in place: the node stays; after the release it may be set again */
        assert_int_equal(kvz_segment_place(&s, 1), KVZ_ERR_STATE);
        kvz_segment_free(&s);
        assert_int_equal(kvz_segment_node(&s), 0);
        assert_null(s.k);
        assert_int_equal(kvz_segment_place(&s, -1), KVZ_OK);
        assert_int_equal(kvz_segment_node(&s), -1);
        free(want), free(keep);
    }
    free(k), free(v);
}

/* Memory that cannot be had is KVZ_ERR_NOMEM with the segment unchanged, on both paths. */
static void test_alloc_failure(void **state)
{
    (void)state;
    assert_null(kvz_numa_alloc((size_t)1 << 62, 0));
    assert_null(kvz_numa_alloc((size_t)1 << 62, -1));
    assert_null(kvz_numa_alloc((size_t)-1, 0)); /* page rounding would wrap */
    kvz_numa_free(NULL, 123, 0);
    void *p = kvz_numa_alloc(0, 0), *q = kvz_numa_alloc(100, -1);
    assert_non_null(p);
    assert_non_null(q);
    assert_true((uintptr_t)p % 64 == 0 && (uintptr_t)q % 64 == 0);
    kvz_numa_free(p, 0, 0), kvz_numa_free(q, 100, -1);
    const float row[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (int node = -1; node <= 0; node++) {
        kvz_segment s = {0};
        assert_int_equal(kvz_segment_place(&s, node), KVZ_OK);
        assert_int_equal(kvz_segment_append(&s, 1, row, row, 8, 8, KVZ_DTYPE_F32, 5), KVZ_OK);
        const kvz_segment before = s;
        assert_int_equal(kvz_segment_reserve(&s, (size_t)1 << 58, 8, KVZ_DTYPE_F32), KVZ_ERR_NOMEM);
        assert_int_equal(kvz_segment_reserve(&s, (size_t)-1 / 2, 8, KVZ_DTYPE_F32), KVZ_ERR_NOMEM);
        assert_memory_equal(&s, &before, sizeof s);
        assert_memory_equal(s.k, row, sizeof row);
        assert_int_equal(s.pos[0], 5);
        kvz_segment_free(&s);
    }
}

/* Decode key slices scheduled by node (heads on "nodes" 0, 1, 2; binding to a node this
 * machine lacks is a harmless no-op) give the very bytes of the unplaced schedule: the same
 * slices, merged in the same order, whatever thread ran them. Unplaced heads, or more nodes
 * than threads, fall back to the one shared list. */
static void test_node_scheduling(void **state)
{
    (void)state;
    enum { HH = 6, GG = 4, DD = 64 };
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    const size_t n_k[HH] = {300, 2000, 777, 1500, 64, 1029};
    uint16_t *k[HH], *v[HH];
    float q[HH * GG * DD], o1[HH * GG * DD], o2[HH * GG * DD];
    for (size_t i = 0; i < HH * GG * DD; i++)
        q[i] = tu_uniform(&r, -1, 1);
    kvz_attn_job jobs[HH];
    memset(jobs, 0, sizeof jobs);
    for (size_t h = 0; h < HH; h++) {
        k[h] = tu_fill_kv(&r, KVZ_DTYPE_BF16, n_k[h] * DD, -1, 1, NULL);
        v[h] = tu_fill_kv(&r, KVZ_DTYPE_BF16, n_k[h] * DD, -1, 1, NULL);
        kvz_attn_job *j = &jobs[h];
        j->q = q + h * GG * DD, j->q_head_stride = DD, j->q_row_stride = HH * GG * DD;
        j->k = k[h], j->v = v[h], j->n_k = n_k[h], j->kv_row_stride = DD, j->dtype = KVZ_KDT_BF16;
        j->n_q = 1, j->d = DD, j->group = GG, j->q_pos0 = (ptrdiff_t)n_k[h] - 1, j->scale = 0.125f;
        j->out = o1 + h * GG * DD, j->out_head_stride = DD, j->out_row_stride = HH * GG * DD;
    }
    assert_int_equal(kvz_attn_run(jobs, HH), KVZ_OK);
    const int nodes[][HH] = {{0, 1, 0, 1, 2, 2}, {1, 1, 1, 0, 0, 0}, {0, -1, 0, 1, 1, 1}, {0, 1, 2, 3, 4, 5}};
    for (size_t t = 0; t < sizeof nodes / sizeof nodes[0]; t++) {
        for (size_t h = 0; h < HH; h++)
            jobs[h].out = o2 + h * GG * DD;
        tu_fill_sentinel(o2, HH * GG * DD);
        assert_int_equal(kvz_attn_run_placed(jobs, nodes[t], HH), KVZ_OK);
        assert_memory_equal(o1, o2, sizeof o1);
    }
    /* a host's pinning survives: the calling thread pinned to one CPU stays pinned */
    cpu_set_t was, one, after;
    assert_int_equal(pthread_getaffinity_np(pthread_self(), sizeof was, &was), 0);
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &was)) {
            CPU_SET(c, &one);
            break;
        }
    assert_int_equal(pthread_setaffinity_np(pthread_self(), sizeof one, &one), 0);
    assert_int_equal(kvz_attn_run_placed(jobs, nodes[0], HH), KVZ_OK);
    assert_int_equal(pthread_getaffinity_np(pthread_self(), sizeof after, &after), 0);
    assert_true(CPU_EQUAL(&one, &after));
    assert_int_equal(pthread_setaffinity_np(pthread_self(), sizeof was, &was), 0);
    for (size_t h = 0; h < HH; h++)
        free(k[h]), free(v[h]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic),
        cmocka_unit_test(test_free_memory),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_real_node),
        cmocka_unit_test(test_sysfs_nodes),
        cmocka_unit_test(test_place_here),
        cmocka_unit_test(test_cache_placement),
        cmocka_unit_test(test_node_path_growth),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_node_scheduling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
