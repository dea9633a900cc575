/* The NUMA planner on synthetic 1-, 2-, 4- and 8-node machines: balance, locality, free memory, determinism. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic),
        cmocka_unit_test(test_free_memory),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_real_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
