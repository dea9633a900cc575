/* kvz_attn_decode_varlen at every level and dtype against the double oracle, plus retain == evict. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oracle.h"
#include "testutil.h"

/* One varlen decode case: per-head segment lengths, q_len new tokens, G heads. */
static void check_varlen(tu_rng *r, size_t H, size_t G, size_t d, size_t q_len, const size_t *len, kvz_dtype dt,
                         size_t row_pad)
{
    int32_t *cu = tu_malloc((H + 1) * sizeof(int32_t));
    cu[0] = 0;
    for (size_t h = 0; h < H; h++)
        cu[h + 1] = cu[h] + (int32_t)len[h];
    const size_t rows = (size_t)cu[H], stride = d + row_pad;
    double *kx = tu_malloc((rows * stride + 1) * sizeof(double)),
           *vx = tu_malloc((rows * stride + 1) * sizeof(double));
    void *k = tu_fill_kv(r, dt, rows * stride, -1, 1, kx), *v = tu_fill_kv(r, dt, rows * stride, -1, 1, vx);
    const size_t nq = H * q_len * G * d;
    float *q = tu_malloc(nq * sizeof(float));
    double *qx = tu_malloc(nq * sizeof(double));
    for (size_t i = 0; i < nq; i++)
        qx[i] = q[i] = tu_uniform(r, -1, 1);

    /* oracle: per head and group member, the q_len rows against the head's segment */
    double *want = tu_malloc(nq * sizeof(double));
    double *qg = tu_malloc(q_len * d * sizeof(double)), *og = tu_malloc(q_len * d * sizeof(double));
    double *ks = tu_malloc((rows + 1) * d * sizeof(double)), *vs = tu_malloc((rows + 1) * d * sizeof(double));
    for (size_t h = 0; h < H; h++) {
        for (size_t j = 0; j < len[h]; j++)
            for (size_t x = 0; x < d; x++) {
                ks[j * d + x] = kx[((size_t)cu[h] + j) * stride + x];
                vs[j * d + x] = vx[((size_t)cu[h] + j) * stride + x];
            }
        for (size_t g = 0; g < G; g++) {
            for (size_t t = 0; t < q_len; t++)
                memcpy(qg + t * d, qx + ((h * q_len + t) * G + g) * d, d * sizeof(double));
            oracle_attn(qg, ks, vs, q_len, len[h], d, (long)len[h] - (long)q_len, 1.0 / sqrt((double)d), og,
                        NULL);
            for (size_t t = 0; t < q_len; t++)
                memcpy(want + ((h * q_len + t) * G + g) * d, og + t * d, d * sizeof(double));
        }
    }

    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv);
    float *out = tu_malloc(nq * sizeof(float));
    char what[200];
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        memset(out, 0xff, nq * sizeof(float));
        kvz_varlen_args a;
        memset(&a, 0, sizeof a);
        a.struct_size = sizeof a;
        a.n_kv_heads = H, a.group = G, a.head_dim = d, a.q_len = q_len;
        a.q = q, a.k = k, a.v = v, a.kv_dtype = dt, a.kv_row_stride = (ptrdiff_t)stride, a.cu_len = cu,
        a.out = out;
        const kvz_status st = kvz_attn_decode_varlen(&a);
        if (st != KVZ_OK)
            fail_msg("kvz_attn_decode_varlen: %s (%s)", kvz_strerror(st), kvz_last_error());
        snprintf(what, sizeof what, "%s decode H%zu G%zu d%zu q_len %zu dtype %d rows %zu", kvz_isa_name(lv[l]),
                 H, G, d, q_len, (int)dt, rows);
        tu_assert_close(out, want, nq, tu_tol(dt), 0, what);
    }
    free(cu), free(kx), free(vx), free(k), free(v), free(q), free(qx), free(want), free(qg), free(og), free(ks),
        free(vs), free(out);
}

static void test_random(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 10);
    static const size_t dims[] = {64, 80, 96, 128, 72};
    const int cases = tu_quick() ? 10 : 40;
    for (int t = 0; t < cases; t++) {
        const size_t H = tu_range(&r, 1, 8), G = tu_range(&r, 1, 8), q_len = tu_range(&r, 1, 4);
        size_t len[8];
        for (size_t h = 0; h < H; h++) {
            const size_t kind = tu_range(&r, 0, 5); /* empty, 1, shorter than q_len, odd sizes */
            len[h] = kind == 0 ? 0 : kind == 1 ? 1 : kind == 2 ? tu_range(&r, 0, q_len) : tu_range(&r, 2, 300);
        }
        check_varlen(&r, H, G, dims[tu_range(&r, 0, 4)], q_len, len, (kvz_dtype)(t % 3), t % 4 == 0 ? 16 : 0);
    }
}

/* Long segments: several key slices per head, merged by log-sum-exp, with 4 threads. */
static void test_long_split(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 11);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(4);
    const size_t n = tu_quick() ? 1500 : 5000;
    const size_t len[4] = {n, 7, n / 3, 0};
    for (int dt = 0; dt < 3; dt++)
        check_varlen(&r, 4, 4, 128, 1, len, (kvz_dtype)dt, 0);
    const size_t len2[2] = {n, n / 2 + 3};
    check_varlen(&r, 2, 7, 128, 3, len2, KVZ_DTYPE_BF16, 0);
    omp_set_num_threads(saved);
}

/* spec kvzip.md 4.5 / 9.7: attention through a keep mask on the full segment (retain)
 * equals the kernel on the compacted rows (evict). */
static void test_retain_equals_evict(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 12);
    const size_t H = 3, G = 4, d = 64, n = 400;
    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv);
    for (int dt = 0; dt < 3; dt++) {
        double *kx = tu_malloc(H * n * d * sizeof(double)), *vx = tu_malloc(H * n * d * sizeof(double));
        void *k = tu_fill_kv(&r, (kvz_dtype)dt, H * n * d, -1, 1, kx),
             *v = tu_fill_kv(&r, (kvz_dtype)dt, H * n * d, -1, 1, vx);
        const size_t es = tu_dtype_size((kvz_dtype)dt);
        /* keep masks with different kept counts per head (non-uniform) */
        unsigned char *keep = tu_malloc(H * n);
        int32_t cu[4] = {0};
        for (size_t h = 0; h < H; h++) {
            size_t kept = 0;
            for (size_t j = 0; j < n; j++) {
                keep[h * n + j] = tu_uniform(&r, 0, 1) < (h + 1) * 0.25f;
                kept += keep[h * n + j];
            }
            cu[h + 1] = cu[h] + (int32_t)kept;
        }
        char *kc = tu_malloc((size_t)cu[H] * d * es + 1), *vc = tu_malloc((size_t)cu[H] * d * es + 1);
        double *want = tu_malloc(H * G * d * sizeof(double));
        float *q = tu_malloc(H * G * d * sizeof(float));
        for (size_t i = 0; i < H * G * d; i++)
            q[i] = tu_uniform(&r, -1, 1);
        size_t row = 0;
        for (size_t h = 0; h < H; h++) {
            double *ks = tu_malloc((n + 1) * d * sizeof(double)), *vs = tu_malloc((n + 1) * d * sizeof(double));
            size_t m = 0;
            for (size_t j = 0; j < n; j++)
                if (keep[h * n + j]) { /* the retained rows, and their compacted copy */
                    memcpy(ks + m * d, kx + (h * n + j) * d, d * sizeof(double));
                    memcpy(vs + m * d, vx + (h * n + j) * d, d * sizeof(double));
                    memcpy(kc + row * d * es, (char *)k + (h * n + j) * d * es, d * es);
                    memcpy(vc + row * d * es, (char *)v + (h * n + j) * d * es, d * es);
                    m++, row++;
                }
            double qd[64], od[64];
            for (size_t g = 0; g < G; g++) {
                for (size_t x = 0; x < d; x++)
                    qd[x] = q[(h * G + g) * d + x];
                oracle_attn(qd, ks, vs, 1, m, d, (long)m - 1, 1.0 / 8.0, od, NULL);
                memcpy(want + (h * G + g) * d, od, sizeof od);
            }
            free(ks), free(vs);
        }
        float *out = tu_malloc(H * G * d * sizeof(float));
        for (size_t l = 0; l < nl; l++) {
            tu_force(lv[l]);
            kvz_varlen_args a;
            memset(&a, 0, sizeof a);
            a.struct_size = sizeof a;
            a.n_kv_heads = H, a.group = G, a.head_dim = d, a.q_len = 1;
            a.q = q, a.k = kc, a.v = vc, a.kv_dtype = (kvz_dtype)dt, a.kv_row_stride = (ptrdiff_t)d,
            a.cu_len = cu;
            a.out = out;
            assert_int_equal(kvz_attn_decode_varlen(&a), KVZ_OK);
            tu_assert_close(out, want, H * G * d, tu_tol((kvz_dtype)dt), 0, kvz_isa_name(lv[l]));
        }
        free(kx), free(vx), free(k), free(v), free(keep), free(kc), free(vc), free(want), free(q), free(out);
    }
}

static void test_invalid(void **state)
{
    (void)state;
    float q[8] = {0}, k[64] = {0}, out[8];
    int32_t cu[3] = {0, 4, 8};
    kvz_varlen_args a;
    assert_int_equal(kvz_attn_decode_varlen(NULL), KVZ_ERR_NULL);
    memset(&a, 0, sizeof a);
    a.struct_size = 8;
    assert_int_equal(kvz_attn_decode_varlen(&a), KVZ_ERR_INVALID_ARG);
    a.struct_size = sizeof a;
    a.n_kv_heads = 2, a.group = 1, a.head_dim = 4, a.q_len = 1;
    a.q = q, a.k = k, a.v = k, a.kv_row_stride = 4, a.cu_len = cu, a.out = out;
    assert_int_equal(kvz_attn_decode_varlen(&a), KVZ_OK);
    cu[0] = 1;
    assert_int_equal(kvz_attn_decode_varlen(&a), KVZ_ERR_INVALID_ARG);
    assert_true(strstr(kvz_last_error(), "cu_len") != NULL);
    cu[0] = 0, cu[2] = 2;
    assert_int_equal(kvz_attn_decode_varlen(&a), KVZ_ERR_INVALID_ARG);
    cu[2] = 8;
    a.kv_row_stride = 3;
    assert_int_equal(kvz_attn_decode_varlen(&a), KVZ_ERR_INVALID_ARG);
    a.kv_row_stride = 4;
    a.cu_len = NULL;
    assert_int_equal(kvz_attn_decode_varlen(&a), KVZ_ERR_NULL);
    a.cu_len = cu;
    a.k = NULL;
    assert_int_equal(kvz_attn_decode_varlen(&a), KVZ_ERR_NULL);
    a.k = k;
    a.group = 0;
    assert_int_equal(kvz_attn_decode_varlen(&a), KVZ_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_long_split),
        cmocka_unit_test(test_retain_equals_evict),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
