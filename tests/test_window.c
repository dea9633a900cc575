/* kvz_window_score (FastKV, fastkv.md 2.2) at every level and K dtype: the spec's numbers, a double reference,
 * bad args. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oracle.h"
#include "testutil.h"

/* Dense layouts: q [r][qh][d], k [h][j][d], out [h][n - W]. */
static kvz_window_args window_args(size_t H, size_t G, size_t d, size_t n, size_t W, size_t kernel,
                                   kvz_pool pool, const float *q, const void *k, kvz_dtype dt, float *out)
{
    kvz_window_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.n_kv_heads = H, a.group = G, a.head_dim = d, a.n = n, a.window = W, a.kernel = kernel, a.pool = pool;
    a.q = q, a.q_token_stride = (ptrdiff_t)(H * G * d), a.q_head_stride = (ptrdiff_t)d;
    a.k = k, a.k_dtype = dt, a.k_head_stride = (ptrdiff_t)(n * d), a.k_row_stride = (ptrdiff_t)d;
    a.out = out, a.out_head_stride = (ptrdiff_t)(n - W);
    return a;
}

/* f32 keys converted to dt by the library (only used with values every dtype holds exactly). */
static const void *keys_as(const float *k, size_t n, kvz_dtype dt, uint16_t *buf)
{
    if (dt == KVZ_DTYPE_F32)
        return k;
    assert_int_equal(kvz_convert(buf, dt, k, KVZ_DTYPE_F32, n), KVZ_OK);
    for (size_t i = 0; i < n; i++) { /* and back: the values must be exact */
        float f;
        assert_int_equal(kvz_convert(&f, KVZ_DTYPE_F32, buf + i, dt, 1), KVZ_OK);
        assert_true(f == k[i]);
    }
    return buf;
}

static void run_ok(const kvz_window_args *a)
{
    const kvz_status st = kvz_window_score(a);
    if (st != KVZ_OK)
        fail_msg("kvz_window_score: %s (%s)", kvz_strerror(st), kvz_last_error());
}

/* ---- a plain double reference: the W x n probability matrix of each query head, materialised ---- */

/* 1-D pooling, stride 1, padding kernel/2 (avg: zeros, always / kernel; max: in-range only). */
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

/* q with the API's strides (query r of query head qh at q + r*qts + qh*qhs); k exact values,
 * dense [h][j][d]; out dense [h][n - W]. */
static void ref_window(const float *q, ptrdiff_t qts, ptrdiff_t qhs, const double *k, size_t H, size_t G,
                       size_t d, size_t n, size_t W, size_t kernel, int max_pool, double scale, double *out)
{
    const size_t nk = n - W;
    double *P = tu_malloc(W * n * sizeof *P), *a = tu_malloc((nk + 1) * sizeof *a),
           *pooled = tu_malloc((nk + 1) * sizeof *pooled);
    for (size_t h = 0; h < H; h++) {
        double *o = out + h * nk;
        for (size_t j = 0; j < nk; j++)
            o[j] = 0;
        for (size_t g = 0; g < G; g++) {
            for (size_t r = 0; r < W; r++) { /* window row r is query nk + r: sees keys 0 .. nk + r */
                const float *qr = q + (ptrdiff_t)r * qts + (ptrdiff_t)(h * G + g) * qhs;
                double *p = P + r * n, m = -INFINITY, sum = 0;
                for (size_t j = 0; j <= nk + r; j++) {
                    double z = 0;
                    for (size_t x = 0; x < d; x++)
                        z += (double)qr[x] * k[(h * n + j) * d + x];
                    p[j] = scale * z;
                    m = fmax(m, p[j]);
                }
                for (size_t j = 0; j <= nk + r; j++)
                    sum += (p[j] = exp(p[j] - m));
                for (size_t j = 0; j < n; j++)
                    p[j] = j <= nk + r ? p[j] / sum : 0.0;
            }
            for (size_t j = 0; j < nk; j++) {
                a[j] = 0;
                for (size_t r = 0; r < W; r++)
                    a[j] += P[r * n + j];
            }
            pool_ref(a, nk, kernel, max_pool, pooled);
            for (size_t j = 0; j < nk; j++)
                o[j] += pooled[j];
        }
    }
    free(P), free(a), free(pooled);
}

/* ---- fastkv.md 6.1 ------------------------------------------------------------------------------ */

static const float onehot4[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};

/* First example: one head, n = 4, W = 2, scaled logits of window row 0 (query 2) [1, 0, 2, masked]
 * and row 1 (query 3) [0, 1, 1, 3]: a = [0.28243, 0.19252]. Keys one-hot in d = 4, the queries
 * carry the logits, scale 1; kernel 1 avg pooling is the identity. The masked logit is 100: a
 * mask that let it through would move every number. */
static void test_spec_softmax_example(void **state)
{
    (void)state;
    const float q[8] = {1, 0, 2, 100, 0, 1, 1, 3};
    const double want[2] = {0.28243, 0.19252};
    /* each softmax row alone (W = 1: the row is the last query): the spec's rows
     * [0.24473, 0.09003, 0.66524, 0] and [0.03770, 0.10249, 0.10249, 0.75731] on the
     * non-window keys */
    const double row0[2] = {0.24473, 0.09003}, row1[3] = {0.03770, 0.10249, 0.10249};
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    char what[64];
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (int dt = 0; dt < 3; dt++) {
            uint16_t k16[16];
            const void *kp = keys_as(onehot4, 16, (kvz_dtype)dt, k16);
            snprintf(what, sizeof what, "%s dtype %d", kvz_isa_name(lv[l]), dt);
            float out[3];
            kvz_window_args a = window_args(1, 1, 4, 4, 2, 1, KVZ_POOL_AVG, q, kp, (kvz_dtype)dt, out);
            a.scale = 1.0f;
            run_ok(&a);
            tu_assert_close(out, want, 2, 1e-5, 0, what);
            a.pool = KVZ_POOL_MAX; /* kernel 1 max pooling is the identity too */
            run_ok(&a);
            tu_assert_close(out, want, 2, 1e-5, 0, what);
            a = window_args(1, 1, 4, 3, 1, 1, KVZ_POOL_AVG, q, kp, (kvz_dtype)dt, out);
            a.scale = 1.0f;
            run_ok(&a);
            tu_assert_close(out, row0, 2, 1e-5, 0, what);
            a = window_args(1, 1, 4, 4, 1, 1, KVZ_POOL_AVG, q + 4, kp, (kvz_dtype)dt, out);
            a.scale = 1.0f;
            run_ok(&a);
            tu_assert_close(out, row1, 3, 1e-5, 0, what);
        }
    }
}

/* Second example: L = 12, W = 2, k = 3 avgpool, Hq = 4, Hkv = 2, G = 2, B = 6, T = 5. */
static const double spec_a[4][10] = {{.50, .05, .02, .01, .30, .02, .01, .01, .40, .03},
                                     {.40, .01, .01, .02, .02, .25, .01, .02, .05, .60},
                                     {.10, .02, .70, .03, .01, .01, .04, .20, .01, .02},
                                     {.20, .01, .35, .02, .01, .03, .09, .01, .15, .02}};
static const double spec_p0[10] = {.1833, .19, .0267, .11, .11, .11, .0133, .14, .1467, .1433};
static const double spec_s[2][10] = {{.32, .33, .04, .1267, .2067, .2033, .1067, .1667, .37, .36},
                                     {.11, .46, .3767, .3733, .0367, .0633, .1267, .1667, .1367, .0667}};
static const double spec_u[10] = {.43, .79, .4167, .5, .2433, .2667, .2333, .3333, .5067, .4267};
static const double spec_maxpool_q0[10] = {.5, .5, .05, .3, .3, .3, .02, .4, .4, .4};

/* Indices of the k largest (no ties in the spec's numbers), as a 0/1 mask. */
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

static void assert_set(const int *chosen, size_t n, const int *want, size_t nw)
{
    size_t c = 0;
    for (size_t j = 0; j < n; j++)
        c += chosen[j] != 0;
    assert_int_equal(c, nw);
    for (size_t i = 0; i < nw; i++)
        assert_true(chosen[want[i]]);
}

/* The pooling reference of this file against the spec's numbers, then selection and TSP. */
static void test_spec_pooling_reference(void **state)
{
    (void)state;
    double p[4][10], s[2][10] = {{0}}, u[10];
    for (int h = 0; h < 4; h++) {
        pool_ref(spec_a[h], 10, 3, 0, p[h]);
        for (int j = 0; j < 10; j++)
            s[h / 2][j] += p[h][j];
    }
    for (int j = 0; j < 10; j++) {
        u[j] = s[0][j] + s[1][j];
        assert_float_equal(p[0][j], spec_p0[j], 5e-5);
        assert_float_equal(s[0][j], spec_s[0][j], 5e-5);
        assert_float_equal(s[1][j], spec_s[1][j], 5e-5);
        assert_float_equal(u[j], spec_u[j], 5e-5);
    }
    int c0[10], c1[10], cu[10]; /* B - W = 4 per KV head; T - W = 3 for TSP */
    topk_ref(s[0], 10, 4, c0);
    topk_ref(s[1], 10, 4, c1);
    topk_ref(u, 10, 3, cu);
    const int k0[] = {0, 1, 8, 9}, k1[] = {1, 2, 3, 7}, kp[] = {1, 3, 8};
    assert_set(c0, 10, k0, 4);
    assert_set(c1, 10, k1, 4);
    assert_set(cu, 10, kp, 3);
    double mp[10];
    pool_ref(spec_a[0], 10, 3, 1, mp);
    for (int j = 0; j < 10; j++)
        assert_float_equal(mp[j], spec_maxpool_q0[j], 1e-12);
}

/*
 * The same example through the kernel. A window-summed row a[0..9] is produced exactly by two
 * window rows over one-hot keys e_0 .. e_11 (d = 12, scale 1): row 0 (query 10, sees keys
 * 0..10) gets probabilities a/2 and the rest on key 10; row 1 (query 11) gets a/2 and the rest
 * split over keys 10 and 11. Logits = log probabilities (the masked logit of row 0 is 100).
 * Then avg pooling k = 3 and the group sum must give s[kv0], s[kv1]; u and P follow, P through
 * the library's top-k. Max pooling on q0 alone gives the spec's maxpool line, and on a group of
 * two it must pool each head before the sum.
 */
static void spec_queries(float *q, size_t H, size_t G, const int *heads)
{
    const size_t d = 12, HG = H * G;
    for (size_t qh = 0; qh < HG; qh++) {
        const double *A = spec_a[heads[qh]];
        double rest = 1;
        for (int j = 0; j < 10; j++)
            rest -= A[j] / 2;
        assert_true(rest > 0);
        float *r0 = q + qh * d, *r1 = q + (HG + qh) * d; /* [r][qh][d] */
        for (int j = 0; j < 10; j++)
            r0[j] = r1[j] = (float)log(A[j] / 2);
        r0[10] = (float)log(rest), r0[11] = 100.0f;
        r1[10] = r1[11] = (float)log(rest / 2);
    }
}

static void test_spec_pooling_through_kernel(void **state)
{
    (void)state;
    const size_t d = 12, n = 12, W = 2, nk = 10;
    float k[12 * 12 * 2] = {0}; /* two KV heads with the same one-hot keys, [h][j][d] */
    for (size_t h = 0; h < 2; h++)
        for (size_t j = 0; j < n; j++)
            k[(h * n + j) * d + j] = 1.0f;
    float q[2 * 4 * 12], q0[2 * 12], q01[2 * 2 * 12];
    const int all[4] = {0, 1, 2, 3}, only0[1] = {0};
    spec_queries(q, 2, 2, all);
    spec_queries(q0, 1, 1, only0);
    spec_queries(q01, 1, 2, all);
    double m0[10], m1[10], want_max_group[10]; /* max pooling of q0 and q1, then the sum */
    pool_ref(spec_a[0], 10, 3, 1, m0);
    pool_ref(spec_a[1], 10, 3, 1, m1);
    for (int j = 0; j < 10; j++)
        want_max_group[j] = m0[j] + m1[j];
    double s_exact[2 * 10] = {0}; /* avg pooling of each head, summed per KV head */
    for (int h = 0; h < 4; h++) {
        pool_ref(spec_a[h], 10, 3, 0, m0);
        for (int j = 0; j < 10; j++)
            s_exact[(h / 2) * 10 + j] += m0[j];
    }
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    char what[64];
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (int dt = 0; dt < 3; dt++) {
            uint16_t k16[sizeof k / sizeof k[0]];
            const void *kp = keys_as(k, sizeof k / sizeof k[0], (kvz_dtype)dt, k16);
            snprintf(what, sizeof what, "%s dtype %d", kvz_isa_name(lv[l]), dt);
            /* kernel 1: the window sums themselves, one query head per KV head */
            float out[2 * 10];
            kvz_window_args a = window_args(1, 1, d, n, W, 1, KVZ_POOL_AVG, q0, kp, (kvz_dtype)dt, out);
            a.scale = 1.0f;
            run_ok(&a);
            tu_assert_close(out, spec_a[0], nk, 1e-6, 0, what);
            /* avg k = 3, G = 2, two KV heads: s[kv0], s[kv1] */
            a = window_args(2, 2, d, n, W, 3, KVZ_POOL_AVG, q, kp, (kvz_dtype)dt, out);
            a.scale = 1.0f;
            run_ok(&a);
            tu_assert_close(out, spec_s[0], nk, 6e-5, 0, what); /* the spec's 4 decimals */
            tu_assert_close(out + nk, spec_s[1], nk, 6e-5, 0, what);
            tu_assert_close(out, s_exact, 2 * nk, 1e-6, 0, what);
            float uf[10];
            for (int j = 0; j < 10; j++) {
                uf[j] = out[j] + out[nk + j];
                assert_float_equal(uf[j], spec_u[j], 1e-4);
            }
            /* per-head keep sets (top B - W = 4) plus the window, and TSP's P */
            uint32_t idx[4];
            size_t got;
            const uint32_t keep0[4] = {0, 1, 8, 9}, keep1[4] = {1, 2, 3, 7};
            assert_int_equal(kvz_select_topk(out, nk, 4, idx, &got), KVZ_OK);
            assert_int_equal(got, 4);
            assert_memory_equal(idx, keep0, sizeof keep0);
            assert_int_equal(kvz_select_topk(out + nk, nk, 4, idx, &got), KVZ_OK);
            assert_memory_equal(idx, keep1, sizeof keep1);
            assert_int_equal(kvz_select_topk(uf, nk, 3, idx, &got), KVZ_OK);
            assert_int_equal(got, 3);
            uint32_t P[5] = {idx[0], idx[1], idx[2], (uint32_t)nk, (uint32_t)nk + 1}; /* + the window */
            const uint32_t wantP[5] = {1, 3, 8, 10, 11};
            assert_memory_equal(P, wantP, sizeof P);
            /* max pooling on q0: the spec's line */
            a = window_args(1, 1, d, n, W, 3, KVZ_POOL_MAX, q0, kp, (kvz_dtype)dt, out);
            a.scale = 1.0f;
            run_ok(&a);
            tu_assert_close(out, spec_maxpool_q0, nk, 1e-6, 0, what);
            /* max pooling per head, then the sum (not the max of the sum) */
            a = window_args(1, 2, d, n, W, 3, KVZ_POOL_MAX, q01, kp, (kvz_dtype)dt, out);
            a.scale = 1.0f;
            run_ok(&a);
            tu_assert_close(out, want_max_group, nk, 2e-6, 0, what);
        }
    }
}

/* ---- random shapes against the reference ------------------------------------------------------- */

static const uint32_t nan32 = 0x7fc00000u;
static const uint16_t nan16[3] = {0, 0x7fc0, 0x7e00};

typedef struct wcase {
    size_t H, G, d, n, W, kernel;
    kvz_pool pool;
    kvz_dtype dt;
    int layout;  /* 0 dense; 1 q [qh][r] + K token-major, padded; 2 padded rows and heads */
    float scale; /* 0: default */
} wcase;

/* Builds the case's buffers (padding filled with NaN, so a read of it poisons the result), runs
 * it at every level and compares with the reference. */
static void check_case(tu_rng *r, const wcase *c)
{
    const size_t H = c->H, G = c->G, d = c->d, n = c->n, W = c->W, nk = n - W, HG = H * G;
    const size_t esz = tu_dtype_size(c->dt);
    ptrdiff_t qts, qhs, krs, khs, ohs;
    size_t qlen, klen;
    switch (c->layout) {
    case 1:
        qhs = (ptrdiff_t)(W * (d + 3)), qts = (ptrdiff_t)(d + 3), qlen = HG * W * (d + 3);
        khs = (ptrdiff_t)(d + 5), krs = (ptrdiff_t)(H * (d + 5)), klen = n * H * (d + 5);
        ohs = (ptrdiff_t)(nk + 7);
        break;
    case 2:
        qhs = (ptrdiff_t)d, qts = (ptrdiff_t)(HG * d + 9), qlen = W * (HG * d + 9);
        krs = (ptrdiff_t)(d + 16), khs = (ptrdiff_t)(n * (d + 16) + 32), klen = H * (n * (d + 16) + 32);
        ohs = (ptrdiff_t)(nk + 1);
        break;
    default:
        qhs = (ptrdiff_t)d, qts = (ptrdiff_t)(HG * d), qlen = W * HG * d;
        khs = (ptrdiff_t)(n * d), krs = (ptrdiff_t)d, klen = H * n * d;
        ohs = (ptrdiff_t)nk;
        break;
    }
    double *kx = tu_malloc(H * n * d * sizeof(double));
    unsigned char *kd = tu_fill_kv(r, c->dt, H * n * d, -1, 1, kx); /* dense [h][j][d] */
    /* Random queries; the first query head of each group also points at one window key: for
     * even rows the first masked key (a mask letting it through changes every score by far
     * more than the tolerance), for odd rows the row's own key (the diagonal must be visible). */
    float *q = tu_malloc(qlen * sizeof(float));
    for (size_t i = 0; i < qlen; i++)
        memcpy(q + i, &nan32, 4);
    for (size_t rr = 0; rr < W; rr++)
        for (size_t qh = 0; qh < HG; qh++) {
            const size_t h = qh / G, key = rr % 2 == 0 && rr + 1 < W ? nk + rr + 1 : nk + rr;
            for (size_t x = 0; x < d; x++) {
                float v = tu_uniform(r, -2, 2);
                if (qh % G == 0 && W > 1)
                    v = 0.5f * v + (float)kx[(h * n + key) * d + x];
                q[(ptrdiff_t)rr * qts + (ptrdiff_t)qh * qhs + (ptrdiff_t)x] = v;
            }
        }
    unsigned char *k = tu_malloc(klen * esz);
    for (size_t i = 0; i < klen; i++)
        memcpy(k + i * esz, c->dt == KVZ_DTYPE_F32 ? (const void *)&nan32 : (const void *)&nan16[c->dt], esz);
    for (size_t h = 0; h < H; h++)
        for (size_t j = 0; j < n; j++)
            memcpy(k + ((ptrdiff_t)h * khs + (ptrdiff_t)j * krs) * (ptrdiff_t)esz, kd + (h * n + j) * d * esz,
                   d * esz);
    const double scale = c->scale != 0.0f ? (double)c->scale : 1.0 / sqrt((double)d);
    double *want = tu_malloc((H * nk + 1) * sizeof(double));
    ref_window(q, qts, qhs, kx, H, G, d, n, W, c->kernel, c->pool == KVZ_POOL_MAX, scale, want);

    const size_t olen = H * (size_t)ohs + 8;
    float *out = tu_malloc(olen * sizeof(float)), *got = tu_malloc((H * nk + 1) * sizeof(float));
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    char what[200];
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        kvz_window_args a;
        memset(&a, 0, sizeof a);
        a.struct_size = sizeof a;
        a.n_kv_heads = H, a.group = G, a.head_dim = d, a.n = n, a.window = W, a.kernel = c->kernel;
        a.pool = c->pool, a.scale = c->scale;
        a.q = q, a.q_token_stride = qts, a.q_head_stride = qhs;
        a.k = k, a.k_dtype = c->dt, a.k_head_stride = khs, a.k_row_stride = krs;
        a.out = out, a.out_head_stride = ohs;
        tu_fill_sentinel(out, olen);
        run_ok(&a);
        snprintf(what, sizeof what, "%s H%zu G%zu d%zu n%zu W%zu kernel %zu %s %s layout %d scale %g",
                 kvz_isa_name(lv[l]), H, G, d, n, W, c->kernel, c->pool ? "max" : "avg",
                 c->dt == KVZ_DTYPE_F32    ? "f32"
                 : c->dt == KVZ_DTYPE_BF16 ? "bf16"
                                           : "f16",
                 c->layout, (double)c->scale);
        for (size_t i = 0; i < olen; i++) { /* nothing but out[h][0 .. n - W) is written */
            const int score = ohs > 0 && i < H * (size_t)ohs && i % (size_t)ohs < nk;
            if (!score && !tu_is_sentinel(out + i))
                fail_msg("%s: out[%zu] outside the scores was written", what, i);
        }
        for (size_t h = 0; h < H; h++)
            memcpy(got + h * nk, out + h * (size_t)ohs, nk * sizeof(float));
        /* sums of up to W*G probabilities in fp32: relative tolerance */
        tu_check_close(got, want, H * nk, 1e-7, 1e-4, what);
    }
    free(q), free(kx), free(kd), free(k), free(want), free(out), free(got);
}

/* Every window size x kernel x pooling x dtype, with random heads, groups, head dims, lengths
 * (up to a few thousand, not multiples of 64, sometimes n = W), layouts and scales. */
static void test_random(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 21);
    static const size_t windows[] = {1, 8, 32, 70}, kernels[] = {1, 3, 7}, dims[] = {64, 80, 96, 128};
    static const float scales[] = {0.0f, 0.0f, 0.5f, 1.0f};
    const int quick = tu_quick();
    int t = 0;
    for (size_t wi = 0; wi < 4; wi++)
        for (size_t ki = 0; ki < 3; ki++)
            for (int pool = 0; pool < 2; pool++)
                for (int dt = 0; dt < 3; dt++, t++) {
                    if (quick && t % 4)
                        continue;
                    wcase c = {0};
                    c.W = windows[wi], c.kernel = kernels[ki], c.pool = (kvz_pool)pool, c.dt = (kvz_dtype)dt;
                    c.H = tu_range(&r, 1, 4), c.G = tu_range(&r, 1, 8), c.d = dims[tu_range(&r, 0, 3)];
                    c.layout = (int)tu_range(&r, 0, 2), c.scale = scales[tu_range(&r, 0, 3)];
                    /* keep the reference's work (H G W n d) to ~50M multiply-adds a case */
                    size_t cap = (size_t)5e7 / (c.H * c.G * c.W * c.d);
                    cap = cap < 3000 ? cap : 3000;
                    cap = cap > c.W + 70 ? cap : c.W + 70;
                    if (t % 9 == 4)
                        c.n = c.W; /* no candidates: nothing to write */
                    else
                        c.n = tu_range(&r, c.W + 1, cap);
                    if (c.n % 64 == 0)
                        c.n++;
                    check_case(&r, &c);
                }
}

/* Shapes the grid above does not reach: head dims off the vector width and the largest one,
 * a kernel wider than the candidates, one candidate, many heads on several threads. */
static void test_odd_shapes(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 22);
    const wcase cases[] = {
        {1, 1, 1, 10, 3, 3, KVZ_POOL_AVG, KVZ_DTYPE_F32, 0, 0},
        {2, 3, 17, 200, 9, 5, KVZ_POOL_MAX, KVZ_DTYPE_BF16, 1, 0},
        {1, 2, 33, 131, 65, 3, KVZ_POOL_AVG, KVZ_DTYPE_F16, 2, 1.0f},
        {1, 1, 256, 300, 8, 3, KVZ_POOL_AVG, KVZ_DTYPE_F32, 1, 0},
        {2, 1, 200, 150, 20, 7, KVZ_POOL_MAX, KVZ_DTYPE_F16, 0, 0},
        {1, 4, 64, 12, 8, 7, KVZ_POOL_AVG, KVZ_DTYPE_F32, 0, 0},  /* kernel 7 > 4 candidates */
        {1, 4, 64, 12, 8, 9, KVZ_POOL_MAX, KVZ_DTYPE_BF16, 1, 0}, /* kernel 9 > 4 candidates */
        {1, 2, 64, 71, 70, 3, KVZ_POOL_AVG, KVZ_DTYPE_F32, 2, 0}, /* one candidate */
        {8, 2, 64, 500, 16, 3, KVZ_POOL_AVG, KVZ_DTYPE_BF16, 1, 0},
        {1, 1, 128, 4097, 129, 1, KVZ_POOL_MAX, KVZ_DTYPE_F32, 0, 1.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&r, &cases[i]);
}

/* The reference of this file and the shared oracle agree (two independent references). */
static void test_reference_vs_oracle(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 23);
    const size_t G = 3, d = 24, n = 150, W = 11, nk = n - W;
    float *q = tu_malloc(W * G * d * sizeof(float));
    double *qo = tu_malloc(G * W * d * sizeof(double)), *k = tu_malloc(n * d * sizeof(double));
    double mine[139], theirs[139];
    for (size_t i = 0; i < W * G * d; i++)
        q[i] = tu_uniform(&r, -2, 2);
    for (size_t i = 0; i < n * d; i++)
        k[i] = tu_uniform(&r, -1, 1);
    for (size_t g = 0; g < G; g++) /* the oracle wants [g][r][d] */
        for (size_t rr = 0; rr < W; rr++)
            for (size_t x = 0; x < d; x++)
                qo[(g * W + rr) * d + x] = q[(rr * G + g) * d + x];
    for (int pool = 0; pool < 2; pool++)
        for (size_t kernel = 1; kernel <= 7; kernel += 2) {
            ref_window(q, (ptrdiff_t)(G * d), (ptrdiff_t)d, k, 1, G, d, n, W, kernel, pool, 0.7, mine);
            oracle_window_score(qo, k, G, W, n, d, 0.7, kernel, pool, theirs);
            for (size_t j = 0; j < nk; j++)
                assert_float_equal(mine[j], theirs[j], 1e-12);
        }
    free(q), free(qo), free(k);
}

/* Heads are spread over threads: the result does not depend on the thread count. */
static void test_thread_count_invariant(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 24);
    const size_t H = 6, G = 2, d = 64, n = 700, W = 32, nk = n - W;
    float *q = tu_malloc(W * H * G * d * sizeof(float)), *o1 = tu_malloc(H * nk * 4),
          *o2 = tu_malloc(H * nk * 4);
    for (size_t i = 0; i < W * H * G * d; i++)
        q[i] = tu_uniform(&r, -2, 2);
    void *k = tu_fill_kv(&r, KVZ_DTYPE_BF16, H * n * d, -1, 1, NULL);
    kvz_window_args a = window_args(H, G, d, n, W, 3, KVZ_POOL_AVG, q, k, KVZ_DTYPE_BF16, o1);
    const int nt = kvz_num_threads();
    kvz_set_num_threads(1);
    run_ok(&a);
    kvz_set_num_threads(nt > 1 ? nt : 4);
    a.out = o2;
    run_ok(&a);
    kvz_set_num_threads(0);
    assert_memory_equal(o1, o2, H * nk * 4);
    free(q), free(o1), free(o2), free(k);
}

/* ---- invalid arguments ------------------------------------------------------------------------------ */

static void expect_fail(const kvz_window_args *a, kvz_status want, const char *what)
{
    float *out = a ? a->out : NULL;
    if (out)
        tu_fill_sentinel(out, 8);
    const kvz_status st = kvz_window_score(a);
    if (st != want)
        fail_msg("%s: got %s, want %s", what, kvz_strerror(st), kvz_strerror(want));
    if (!strstr(kvz_last_error(), "kvz_window_score"))
        fail_msg("%s: kvz_last_error() = '%s'", what, kvz_last_error());
    if (out)
        for (int i = 0; i < 8; i++)
            assert_true(tu_is_sentinel(out + i)); /* a refused call writes nothing */
}

static void test_invalid(void **state)
{
    (void)state;
    float q[2 * 4] = {0}, k[10 * 4] = {0}, out[8];
    const kvz_window_args ok = window_args(1, 1, 4, 10, 2, 3, KVZ_POOL_AVG, q, k, KVZ_DTYPE_F32, out);
    kvz_window_args a = ok;
    run_ok(&a);
    expect_fail(NULL, KVZ_ERR_NULL, "args NULL");
#define BAD(field, value, st)                                                                                  \
    do {                                                                                                       \
        a = ok;                                                                                                \
        a.field = value;                                                                                       \
        expect_fail(&a, st, #field " = " #value);                                                              \
    } while (0)
    BAD(struct_size, 0, KVZ_ERR_INVALID_ARG);
    BAD(struct_size, sizeof(kvz_window_args) - 1, KVZ_ERR_INVALID_ARG);
    BAD(kernel, 0, KVZ_ERR_INVALID_ARG);
    BAD(kernel, 2, KVZ_ERR_INVALID_ARG);
    BAD(kernel, 4, KVZ_ERR_INVALID_ARG);
    BAD(window, 0, KVZ_ERR_INVALID_ARG);
    BAD(window, 11, KVZ_ERR_INVALID_ARG);
    BAD(n, 1, KVZ_ERR_INVALID_ARG); /* window 2 > n */
    BAD(pool, (kvz_pool)2, KVZ_ERR_INVALID_ARG);
    BAD(pool, (kvz_pool)-1, KVZ_ERR_INVALID_ARG);
    BAD(k_dtype, (kvz_dtype)3, KVZ_ERR_INVALID_ARG);
    BAD(head_dim, 0, KVZ_ERR_INVALID_ARG);
    BAD(head_dim, 257, KVZ_ERR_INVALID_ARG);
    BAD(n_kv_heads, 0, KVZ_ERR_INVALID_ARG);
    BAD(group, 0, KVZ_ERR_INVALID_ARG);
    BAD(q, NULL, KVZ_ERR_NULL);
    BAD(k, NULL, KVZ_ERR_NULL);
#undef BAD
    a = ok;
    a.out = NULL;
    expect_fail(&a, KVZ_ERR_NULL, "out = NULL");
    assert_true(strstr(kvz_last_error(), "NULL") != NULL);
    a = ok;
    a.kernel = 4;
    expect_fail(&a, KVZ_ERR_INVALID_ARG, "even kernel");
    assert_true(strstr(kvz_last_error(), "odd") != NULL);
    /* a larger struct_size (a newer caller's struct) is accepted */
    struct {
        kvz_window_args a;
        char more[32];
    } big;
    memset(&big, 0, sizeof big);
    big.a = ok;
    big.a.struct_size = sizeof big;
    run_ok(&big.a);
    /* window = n: no candidates, success, nothing written */
    a = ok;
    a.window = 10;
    tu_fill_sentinel(out, 8);
    run_ok(&a);
    for (int i = 0; i < 8; i++)
        assert_true(tu_is_sentinel(out + i));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_softmax_example),
        cmocka_unit_test(test_spec_pooling_reference),
        cmocka_unit_test(test_spec_pooling_through_kernel),
        cmocka_unit_test(test_reference_vs_oracle),
        cmocka_unit_test_setup_teardown(test_random, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_odd_shapes, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test(test_thread_count_invariant),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
