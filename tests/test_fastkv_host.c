/* FastKV in a host (kvz_fastkv_propagate, kvz_fastkv_compress_layer) against a brute-force ranking
 * written here (spec/fastkv.md §2.3-§2.4): the window always goes on and stays, the rest by score,
 * ties to the lower index; the other layers untouched; the refusals. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { H = 2, N = 40, W = 4, D = 8, L = 3 };

/* The k best of s[0..n) by (score descending, index ascending), as a 0/1 mask. */
static void brute_top(const float *s, size_t n, size_t k, uint8_t *mask)
{
    memset(mask, 0, n);
    for (size_t taken = 0; taken < k && taken < n; taken++) {
        size_t best = SIZE_MAX;
        for (size_t j = 0; j < n; j++)
            if (!mask[j] && (best == SIZE_MAX || s[j] > s[best]))
                best = j;
        mask[best] = 1;
    }
}

static void random_scores(float *s, size_t n, int ties)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed() + (uint64_t)ties);
    for (size_t i = 0; i < n; i++) /* with ties: few distinct values */
        s[i] = ties ? (float)tu_range(&r, 0, 3) : tu_uniform(&r, 0, 1);
}

static void test_propagate(void **state)
{
    (void)state;
    float s[H * N];
    for (int ties = 0; ties < 2; ties++) {
        random_scores(s, H * N, ties);
        for (size_t keep = W + 1; keep <= N; keep += 7) {
            float u[N];
            uint8_t mask[N];
            for (size_t j = 0; j < N; j++)
                u[j] = s[j] + s[N + j];
            brute_top(u, N - W, keep - W, mask);
            memset(mask + N - W, 1, W);
            uint32_t idx[N], want[N];
            size_t m = 0;
            for (size_t j = 0; j < N; j++)
                if (mask[j])
                    want[m++] = (uint32_t)j;
            assert_int_equal(m, keep);
            assert_int_equal(kvz_fastkv_propagate(s, H, N, N, W, keep, idx), KVZ_OK);
            assert_memory_equal(idx, want, keep * sizeof *idx);
        }
    }
    uint32_t idx[N];
    assert_int_equal(kvz_fastkv_propagate(NULL, H, N, N, W, 10, idx), KVZ_ERR_NULL);
    assert_int_equal(kvz_fastkv_propagate(s, H, N, N, W, 10, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_fastkv_propagate(s, 0, N, N, W, 10, idx), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_fastkv_propagate(s, H, N, N, W, W, idx), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_fastkv_propagate(s, H, N, N, W, N + 1, idx), KVZ_ERR_INVALID_ARG);
    s[3] = NAN;
    assert_int_equal(kvz_fastkv_propagate(s, H, N, N, W, 10, idx), KVZ_ERR_INVALID_ARG);
}

static kvz_cache *new_cache(const size_t *windows)
{
    const kvz_cache_config cfg = {.struct_size = sizeof cfg,
                                  .n_layers = L,
                                  .n_kv_heads = H,
                                  .head_dim = D,
                                  .dtype = KVZ_DTYPE_F32,
                                  .layer_window = windows};
    kvz_cache *c;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    static float k[N * H * D];
    for (size_t i = 0; i < N * H * D; i++)
        k[i] = (float)i;
    for (size_t l = 0; l < L; l++)
        assert_int_equal(kvz_cache_append(c, l, N, k, k, H * D, D), KVZ_OK);
    return c;
}

/* The positions of a segment as a 0/1 mask over 0..N-1. */
static void held(const kvz_cache *c, size_t l, size_t h, uint8_t *mask)
{
    size_t n;
    const int64_t *p;
    assert_int_equal(kvz_cache_length(c, l, h, &n), KVZ_OK);
    assert_int_equal(kvz_cache_positions(c, l, h, &p), KVZ_OK);
    memset(mask, 0, N);
    for (size_t j = 0; j < n; j++)
        mask[p[j]] = 1;
}

static void test_compress_layer(void **state)
{
    (void)state;
    float s[H * N];
    for (int ties = 0; ties < 2; ties++) {
        random_scores(s, H * N, ties);
        for (size_t budget = W + 1; budget <= N + 3; budget += 9) {
            kvz_cache *c = new_cache(NULL);
            assert_int_equal(kvz_fastkv_compress_layer(c, 1, s, N, budget, W), KVZ_OK);
            for (size_t l = 0; l < L; l++)
                for (size_t h = 0; h < H; h++) {
                    uint8_t want[N], got[N];
                    if (l == 1 && budget < N) {
                        brute_top(s + h * N, N - W, budget - W, want);
                        memset(want + N - W, 1, W);
                    } else {
                        memset(want, 1, N); /* other layers, and a budget of every row */
                    }
                    held(c, l, h, got);
                    if (memcmp(got, want, N))
                        fail_msg("budget %zu%s: layer %zu head %zu holds other rows", budget,
                                 ties ? " (ties)" : "", l, h);
                }
            kvz_cache_destroy(c);
        }
    }
    /* refusals, with the cache unchanged */
    static const size_t windows[L] = {0, 16, 0};
    kvz_cache *c = new_cache(windows);
    assert_int_equal(kvz_fastkv_compress_layer(NULL, 0, s, N, 10, W), KVZ_ERR_NULL);
    assert_int_equal(kvz_fastkv_compress_layer(c, 0, NULL, N, 10, W), KVZ_ERR_NULL);
    assert_int_equal(kvz_fastkv_compress_layer(c, L, s, N, 10, W), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_fastkv_compress_layer(c, 1, s, N, 10, W), KVZ_ERR_INVALID_ARG); /* sliding window */
    assert_int_equal(kvz_fastkv_compress_layer(c, 0, s, N, W, W), KVZ_ERR_INVALID_ARG);
    /* heads of one layer with different lengths (after another policy's compaction) */
    uint8_t k0[N], k1[N];
    memset(k0, 1, N), memset(k1, 1, N), k1[0] = 0;
    const uint8_t *keep[L * H] = {k0, k1, NULL, NULL, k0, k0};
    assert_int_equal(kvz_cache_compact(c, keep), KVZ_OK);
    assert_int_equal(kvz_fastkv_compress_layer(c, 0, s, N, 10, W), KVZ_ERR_STATE);
    uint8_t got[N];
    held(c, 0, 0, got);
    for (size_t j = 0; j < N; j++)
        assert_int_equal(got[j], 1);
    kvz_cache_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_propagate),
        cmocka_unit_test(test_compress_layer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
