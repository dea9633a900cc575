/* kvz_window_score (FastKV) at every level and dtype: the spec's hand-checked numbers and the double oracle. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oracle.h"
#include "testutil.h"

static kvz_window_args window_args(size_t H, size_t G, size_t d, size_t n, size_t W, size_t kernel,
                                   kvz_pool pool, const float *q, const void *k, kvz_dtype dt, float *out)
{
    kvz_window_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.n_kv_heads = H, a.group = G, a.head_dim = d, a.n = n, a.window = W, a.kernel = kernel, a.pool = pool;
    a.q = q, a.q_token_stride = (ptrdiff_t)(H * G * d), a.q_head_stride = (ptrdiff_t)d; /* [r][qh][d] */
    a.k = k, a.k_dtype = dt, a.k_head_stride = (ptrdiff_t)(n * d), a.k_row_stride = (ptrdiff_t)d;
    a.out = out, a.out_head_stride = (ptrdiff_t)(n - W);
    return a;
}

/* fastkv.md 6.1, first example: one head, n = 4, W = 2, scaled logits of window row 0
 * (query 2) [1, 0, 2, masked] and row 1 (query 3) [0, 1, 1, 3]: a = [0.28243, 0.19252].
 * Keys are one-hot in d = 4 and the queries carry the logits, scale 1; kernel 1 avg pooling
 * is the identity. */
static void test_spec_softmax_example(void **state)
{
    (void)state;
    const float k[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    const float q[8] = {1, 0, 2, 7, 0, 1, 1, 3}; /* row 0's 4th logit is masked: any value */
    const double want[2] = {0.28243, 0.19252};
    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (int dt = 0; dt < 3; dt++) {
            uint16_t k16[16];
            const void *kp = k;
            if (dt) {
                assert_int_equal(kvz_convert(k16, (kvz_dtype)dt, k, KVZ_DTYPE_F32, 16), KVZ_OK);
                kp = k16;
            }
            float out[2];
            kvz_window_args a = window_args(1, 1, 4, 4, 2, 1, KVZ_POOL_AVG, q, kp, (kvz_dtype)dt, out);
            a.scale = 1.0f;
            assert_int_equal(kvz_window_score(&a), KVZ_OK);
            tu_assert_close(out, want, 2, 1e-5, 0, kvz_isa_name(lv[l]));
        }
    }
}

/* The rest of 6.1: pooling, GQA aggregation, per-head selection and the TSP set, through a
 * reference of pooling written here, checked against the spec's expected numbers. */
static void pool_ref(const double *a, size_t n, size_t kernel, int max_pool, double *out)
{
    const long h = (long)kernel / 2;
    for (long j = 0; j < (long)n; j++) {
        double acc = max_pool ? -INFINITY : 0;
        for (long t = j - h; t <= j + h; t++)
            if (t >= 0 && t < (long)n)
                acc = max_pool ? fmax(acc, a[t]) : acc + a[t];
        out[j] = max_pool ? acc : acc / (double)kernel;
    }
}

static void topk_ref(const double *s, size_t n, size_t k, int *chosen)
{
    for (size_t j = 0; j < n; j++)
        chosen[j] = 0;
    for (size_t c = 0; c < k; c++) {
        size_t best = n;
        for (size_t j = 0; j < n; j++)
            if (!chosen[j] && (best == n || s[j] > s[best]))
                best = j;
        chosen[best] = 1;
    }
}

static void test_spec_pooling_example(void **state)
{
    (void)state;
    const double a[4][10] = {{.50, .05, .02, .01, .30, .02, .01, .01, .40, .03},
                             {.40, .01, .01, .02, .02, .25, .01, .02, .05, .60},
                             {.10, .02, .70, .03, .01, .01, .04, .20, .01, .02},
                             {.20, .01, .35, .02, .01, .03, .09, .01, .15, .02}};
    double p[4][10], s[2][10] = {{0}}, u[10];
    for (int h = 0; h < 4; h++) {
        pool_ref(a[h], 10, 3, 0, p[h]);
        for (int j = 0; j < 10; j++)
            s[h / 2][j] += p[h][j];
    }
    const double p0[10] = {.1833, .19, .0267, .11, .11, .11, .0133, .14, .1467, .1433};
    const double s0[10] = {.32, .33, .04, .1267, .2067, .2033, .1067, .1667, .37, .36};
    const double s1[10] = {.11, .46, .3767, .3733, .0367, .0633, .1267, .1667, .1367, .0667};
    const double uw[10] = {.43, .79, .4167, .5, .2433, .2667, .2333, .3333, .5067, .4267};
    for (int j = 0; j < 10; j++) {
        u[j] = s[0][j] + s[1][j];
        assert_float_equal(p[0][j], p0[j], 1e-4);
        assert_float_equal(s[0][j], s0[j], 1e-4);
        assert_float_equal(s[1][j], s1[j], 1e-4);
        assert_float_equal(u[j], uw[j], 1e-4);
    }
    int c0[10], c1[10], cu[10]; /* B = 6, W = 2: top-4 per KV head; T = 5: top-3 of u */
    topk_ref(s[0], 10, 4, c0);
    topk_ref(s[1], 10, 4, c1);
    topk_ref(u, 10, 3, cu);
    const int k0[] = {0, 1, 8, 9}, k1[] = {1, 2, 3, 7}, kp[] = {1, 3, 8};
    for (int i = 0; i < 4; i++)
        assert_true(c0[k0[i]] && c1[k1[i]]);
    for (int i = 0; i < 3; i++)
        assert_true(cu[kp[i]]);
    /* P = [1, 3, 8, 10, 11] through the library's top-k too */
    float uf[10];
    for (int j = 0; j < 10; j++)
        uf[j] = (float)u[j];
    uint32_t idx[3];
    size_t got;
    assert_int_equal(kvz_select_topk(uf, 10, 3, idx, &got), KVZ_OK);
    assert_int_equal(got, 3);
    assert_int_equal(idx[0], 1), assert_int_equal(idx[1], 3), assert_int_equal(idx[2], 8);
    const double mp0[10] = {.5, .5, .05, .3, .3, .3, .02, .4, .4, .4};
    double mp[10];
    pool_ref(a[0], 10, 3, 1, mp);
    for (int j = 0; j < 10; j++)
        assert_float_equal(mp[j], mp0[j], 1e-12);
}

/* Pooling and the group sum inside the kernel, on the first example's a (computed here from
 * its logits) with kernel 3 over G = 2 identical query heads. */
static void test_pooling_in_kernel(void **state)
{
    (void)state;
    const size_t d = 4, n = 4, W = 2;
    const float k[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    float q[16]; /* [r][qh][d], two query heads with the same rows */
    const float rows[2][4] = {{1, 0, 2, 7}, {0, 1, 1, 3}};
    for (int rr = 0; rr < 2; rr++)
        for (int h = 0; h < 2; h++)
            memcpy(q + (rr * 2 + h) * 4, rows[rr], sizeof rows[rr]);
    const double e = exp(1.0), e2 = exp(2.0), e3 = exp(3.0);
    const double a[2] = {e / (e + 1 + e2) + 1 / (1 + 2 * e + e3), 1 / (e + 1 + e2) + e / (1 + 2 * e + e3)};
    for (int pool = 0; pool < 2; pool++) {
        float out[2];
        kvz_window_args args = window_args(1, 2, d, n, W, 3, (kvz_pool)pool, q, k, KVZ_DTYPE_F32, out);
        args.scale = 1.0f;
        assert_int_equal(kvz_window_score(&args), KVZ_OK);
        const double want[2] = {pool ? 2 * fmax(a[0], a[1]) : 2 * (a[0] + a[1]) / 3,
                                pool ? 2 * fmax(a[0], a[1]) : 2 * (a[0] + a[1]) / 3};
        tu_assert_close(out, want, 2, 2e-5, 0, pool ? "max pool" : "avg pool");
    }
}

static void check_random(tu_rng *r, size_t H, size_t G, size_t d, size_t n, size_t W, size_t kernel,
                         kvz_pool pool, kvz_dtype dt)
{
    const size_t nq = W * H * G * d, nk = H * n * d;
    float *q = tu_malloc(nq * sizeof(float));
    double *kx = tu_malloc(nk * sizeof(double));
    for (size_t i = 0; i < nq; i++)
        q[i] = tu_uniform(r, -1, 1);
    void *k = tu_fill_kv(r, dt, nk, -1, 1, kx);
    /* the oracle wants [g][r][d] per KV head */
    double *qh = tu_malloc(G * W * d * sizeof(double)), *want = tu_malloc(H * (n - W) * sizeof(double));
    for (size_t h = 0; h < H; h++) {
        for (size_t g = 0; g < G; g++)
            for (size_t rr = 0; rr < W; rr++)
                for (size_t x = 0; x < d; x++)
                    qh[(g * W + rr) * d + x] = q[(rr * H * G + h * G + g) * d + x];
        oracle_window_score(qh, kx + h * n * d, G, W, n, d, 1.0 / sqrt((double)d), kernel, pool == KVZ_POOL_MAX,
                            want + h * (n - W));
    }
    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv);
    float *out = tu_malloc(H * (n - W) * sizeof(float) + 1);
    char what[160];
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        kvz_window_args a = window_args(H, G, d, n, W, kernel, pool, q, k, dt, out);
        const kvz_status st = kvz_window_score(&a);
        if (st != KVZ_OK)
            fail_msg("kvz_window_score: %s (%s)", kvz_strerror(st), kvz_last_error());
        snprintf(what, sizeof what, "%s window H%zu G%zu d%zu n%zu W%zu kernel %zu %s dtype %d",
                 kvz_isa_name(lv[l]), H, G, d, n, W, kernel, pool ? "max" : "avg", (int)dt);
        /* sums of up to W*G probabilities: relative tolerance */
        tu_assert_close(out, want, H * (n - W), 1e-6, 1e-4, what);
    }
    free(q), free(kx), free(k), free(qh), free(want), free(out);
}

static void test_random(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 21);
    static const size_t dims[] = {64, 80, 96, 128};
    static const size_t windows[] = {1, 8, 32, 70};
    static const size_t kernels[] = {1, 3, 7};
    const int cases = tu_quick() ? 8 : 30;
    for (int t = 0; t < cases; t++) {
        const size_t W = windows[t % 4];
        const size_t n = W + (t % 5 == 0 ? 0 : tu_range(&r, 1, tu_quick() ? 300 : 1500));
        check_random(&r, tu_range(&r, 1, 2), tu_range(&r, 1, 8), dims[tu_range(&r, 0, 3)], n, W,
                     kernels[tu_range(&r, 0, 2)], (kvz_pool)(t % 2), (kvz_dtype)(t % 3));
    }
}

static void test_invalid(void **state)
{
    (void)state;
    float q[64] = {0}, k[64] = {0}, out[8];
    kvz_window_args a = window_args(1, 1, 4, 8, 2, 3, KVZ_POOL_AVG, q, k, KVZ_DTYPE_F32, out);
    assert_int_equal(kvz_window_score(&a), KVZ_OK);
    a.kernel = 4;
    assert_int_equal(kvz_window_score(&a), KVZ_ERR_INVALID_ARG);
    assert_true(strstr(kvz_last_error(), "odd") != NULL);
    a.kernel = 3, a.window = 0;
    assert_int_equal(kvz_window_score(&a), KVZ_ERR_INVALID_ARG);
    a.window = 9;
    assert_int_equal(kvz_window_score(&a), KVZ_ERR_INVALID_ARG);
    a.window = 2, a.pool = (kvz_pool)5;
    assert_int_equal(kvz_window_score(&a), KVZ_ERR_INVALID_ARG);
    a.pool = KVZ_POOL_MAX, a.q = NULL;
    assert_int_equal(kvz_window_score(&a), KVZ_ERR_NULL);
    a.q = q, a.struct_size = 4;
    assert_int_equal(kvz_window_score(&a), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_window_score(NULL), KVZ_ERR_NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_softmax_example),
        cmocka_unit_test(test_spec_pooling_example),
        cmocka_unit_test(test_pooling_in_kernel),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
