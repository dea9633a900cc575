/* kvz_attn_prefill (plain and KVzip scoring mode) at every level and dtype against the double oracle. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oracle.h"
#include "testutil.h"

typedef struct pcase {
    size_t H, G, d, n_q, n_k;
    long q_pos0;
    kvz_dtype dt;
    int head_major; /* q/out [qh][i][d] and K/V [h][j][d]; else token-major [i][qh][d], [j][h][d] */
    int with_lse;
    int scoring;
    size_t sink_end, chunk_begin, chunk_end;
} pcase;

/* Inputs of a case in the layout the case asks for, with their exact values for the oracle. */
typedef struct pdata {
    float *q;
    void *k, *v;
    double *qx, *kx, *vx; /* exact, as [qh][i][d] and [h][j][d] */
} pdata;

static size_t q_index(const pcase *c, size_t qh, size_t i)
{
    return c->head_major ? (qh * c->n_q + i) * c->d : (i * c->H * c->G + qh) * c->d;
}

static size_t kv_index(const pcase *c, size_t h, size_t j)
{
    return c->head_major ? (h * c->n_k + j) * c->d : (j * c->H + h) * c->d;
}

static pdata make_data(tu_rng *r, const pcase *c)
{
    pdata p;
    const size_t HG = c->H * c->G, nq = c->n_q * HG * c->d, nk = c->n_k * c->H * c->d;
    p.q = tu_malloc(nq * sizeof(float));
    p.qx = tu_malloc(nq * sizeof(double));
    for (size_t qh = 0; qh < HG; qh++)
        for (size_t i = 0; i < c->n_q; i++)
            for (size_t x = 0; x < c->d; x++) {
                const float v = tu_uniform(r, -1.0f, 1.0f);
                p.q[q_index(c, qh, i) + x] = v;
                p.qx[(qh * c->n_q + i) * c->d + x] = v;
            }
    double *kt = tu_malloc((nk + 1) * sizeof(double)), *vt = tu_malloc((nk + 1) * sizeof(double));
    p.k = tu_fill_kv(r, c->dt, nk, -1.0f, 1.0f, kt);
    p.v = tu_fill_kv(r, c->dt, nk, -1.0f, 1.0f, vt);
    p.kx = tu_malloc((nk + 1) * sizeof(double));
    p.vx = tu_malloc((nk + 1) * sizeof(double));
    for (size_t h = 0; h < c->H; h++) /* the storage order is the case's layout */
        for (size_t j = 0; j < c->n_k; j++)
            for (size_t x = 0; x < c->d; x++) {
                p.kx[(h * c->n_k + j) * c->d + x] = kt[kv_index(c, h, j) + x];
                p.vx[(h * c->n_k + j) * c->d + x] = vt[kv_index(c, h, j) + x];
            }
    free(kt);
    free(vt);
    return p;
}

static void free_data(pdata *p) { free(p->q), free(p->k), free(p->v), free(p->qx), free(p->kx), free(p->vx); }

static kvz_attn_args make_args(const pcase *c, const pdata *p, float *out, float *lse, float *score)
{
    kvz_attn_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.n_kv_heads = c->H, a.group = c->G, a.head_dim = c->d, a.n_q = c->n_q, a.n_k = c->n_k;
    a.q_pos0 = c->q_pos0;
    a.q = p->q, a.k = p->k, a.v = p->v, a.kv_dtype = c->dt, a.out = out, a.lse = lse;
    const size_t HG = c->H * c->G;
    if (c->head_major) {
        a.q_token_stride = (ptrdiff_t)c->d, a.q_head_stride = (ptrdiff_t)(c->n_q * c->d);
        a.kv_row_stride = (ptrdiff_t)c->d, a.kv_head_stride = (ptrdiff_t)(c->n_k * c->d);
    } else {
        a.q_token_stride = (ptrdiff_t)(HG * c->d), a.q_head_stride = (ptrdiff_t)c->d;
        a.kv_row_stride = (ptrdiff_t)(c->H * c->d), a.kv_head_stride = (ptrdiff_t)c->d;
    }
    a.out_token_stride = a.q_token_stride, a.out_head_stride = a.q_head_stride;
    if (c->scoring) {
        a.score = score;
        a.score_head_stride = (ptrdiff_t)(c->chunk_end - c->chunk_begin);
        a.sink_end = c->sink_end, a.chunk_begin = c->chunk_begin, a.chunk_end = c->chunk_end;
    }
    return a;
}

/* Runs one case at every level and compares outputs, lse and scores with the oracle. */
static void check_case(tu_rng *r, const pcase *c)
{
    pdata p = make_data(r, c);
    const size_t HG = c->H * c->G, nout = c->n_q * HG * c->d, m = c->chunk_end - c->chunk_begin;
    const double scale = 1.0 / sqrt((double)c->d);
    double *want = tu_malloc(nout * sizeof(double)), *want_lse = tu_malloc(c->n_q * HG * sizeof(double));
    double *want_score = tu_calloc(c->H * m + 1, sizeof(double));
    for (size_t qh = 0; qh < HG; qh++) {
        const size_t h = qh / c->G;
        oracle_attn(p.qx + qh * c->n_q * c->d, p.kx + h * c->n_k * c->d, p.vx + h * c->n_k * c->d, c->n_q,
                    c->n_k, c->d, c->q_pos0, scale, want + qh * c->n_q * c->d, want_lse + qh * c->n_q);
    }
    if (c->scoring)
        for (size_t h = 0; h < c->H; h++)
            oracle_kvzip_score(p.qx + h * c->G * c->n_q * c->d, p.kx + h * c->n_k * c->d, c->G, c->n_q, c->n_k,
                               c->d, c->q_pos0, scale, c->sink_end, c->chunk_begin, c->chunk_end,
                               want_score + h * m);

    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv);
    float *out = tu_malloc(nout * sizeof(float)), *lse = tu_malloc(c->n_q * HG * sizeof(float));
    float *score = tu_calloc(c->H * m + 1, sizeof(float));
    float *got = tu_malloc(nout * sizeof(float));
    char what[256];
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        memset(out, 0xff, nout * sizeof(float)); /* NaN: every element must be written */
        memset(score, 0, (c->H * m + 1) * sizeof(float));
        kvz_attn_args a = make_args(c, &p, out, c->with_lse ? lse : NULL, score);
        const kvz_status st = kvz_attn_prefill(&a);
        if (st != KVZ_OK)
            fail_msg("kvz_attn_prefill: %s (%s)", kvz_strerror(st), kvz_last_error());
        for (size_t qh = 0; qh < HG; qh++) /* to the oracle's [qh][i][d] order */
            for (size_t i = 0; i < c->n_q; i++)
                memcpy(got + (qh * c->n_q + i) * c->d, out + q_index(c, qh, i), c->d * sizeof(float));
        snprintf(what, sizeof what, "%s out H%zu G%zu d%zu nq%zu nk%zu q_pos0 %ld dtype %d %s",
                 kvz_isa_name(lv[l]), c->H, c->G, c->d, c->n_q, c->n_k, c->q_pos0, (int)c->dt,
                 c->head_major ? "head-major" : "token-major");
        tu_assert_close(got, want, nout, tu_tol(c->dt), 0, what);
        if (c->with_lse)
            for (size_t x = 0; x < c->n_q * HG; x++) {
                if (isinf(want_lse[x])) {
                    if (!(isinf(lse[x]) && lse[x] < 0))
                        fail_msg("%s: lse[%zu] = %g, want -inf", what, x, lse[x]);
                } else {
                    tu_assert_close(lse + x, want_lse + x, 1, 5e-5, 1e-5, what);
                }
            }
        if (c->scoring) {
            snprintf(what + strlen(what), sizeof what - strlen(what), " score sink %zu chunk [%zu,%zu)",
                     c->sink_end, c->chunk_begin, c->chunk_end);
            tu_assert_close(score, want_score, c->H * m, 1e-5, 1e-4, what);
        }
    }
    free(out), free(lse), free(score), free(got), free(want), free(want_lse), free(want_score);
    free_data(&p);
}

static const size_t dims[] = {64, 80, 96, 128, 72};

static void test_random_shapes(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    const int cases = tu_quick() ? 12 : 60;
    for (int t = 0; t < cases; t++) {
        pcase c = {0};
        c.H = tu_range(&r, 1, 3);
        c.G = tu_range(&r, 1, 8);
        c.d = dims[tu_range(&r, 0, 4)];
        c.dt = (kvz_dtype)(t % 3);
        /* few rows (the dot path of decode), one block, several blocks */
        c.n_q = t % 3 == 0 ? tu_range(&r, 1, 3) : t % 3 == 1 ? tu_range(&r, 4, 40) : tu_range(&r, 41, 150);
        c.n_k = c.n_q + tu_range(&r, 0, 200);
        c.q_pos0 = (long)(c.n_k - c.n_q);
        c.head_major = t % 2;
        c.with_lse = t % 4 < 2;
        check_case(&r, &c);
    }
}

static void test_edge_offsets(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 1);
    /* rows that see nothing (negative offset), all keys visible (offset past the end),
     * a single key, no keys at all, a key count just past a block */
    const struct {
        size_t G, n_q, n_k;
        long q_pos0;
    } e[] = {{2, 20, 30, -5}, {3, 7, 10, 100}, {1, 1, 1, 0}, {4, 5, 0, 0}, {1, 70, 65, -3}, {8, 1, 129, 128}};
    for (size_t t = 0; t < sizeof e / sizeof e[0]; t++)
        for (int dt = 0; dt < 3; dt++) {
            pcase c = {0};
            c.H = 2, c.G = e[t].G, c.d = 64, c.n_q = e[t].n_q, c.n_k = e[t].n_k, c.q_pos0 = e[t].q_pos0;
            c.dt = (kvz_dtype)dt, c.with_lse = 1, c.head_major = (int)t % 2;
            check_case(&r, &c);
        }
}

static void test_scoring_random(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 2);
    const int cases = tu_quick() ? 6 : 24;
    for (int t = 0; t < cases; t++) {
        pcase c = {0};
        c.H = tu_range(&r, 1, 2);
        c.G = tu_range(&r, 1, 7);
        c.d = dims[tu_range(&r, 0, 4)];
        c.dt = (kvz_dtype)(t % 3);
        c.n_q = t % 4 == 0 ? tu_range(&r, 1, 2) : tu_range(&r, 3, 120);
        c.sink_end = tu_range(&r, 0, 6);
        c.chunk_begin = c.sink_end + tu_range(&r, 0, 40);
        c.chunk_end = c.chunk_begin + tu_range(&r, 1, 150);
        c.q_pos0 = (long)(c.chunk_end + tu_range(&r, 0, 60));
        c.n_k = (size_t)c.q_pos0 + c.n_q;
        c.scoring = 1;
        c.with_lse = t % 2;
        c.head_major = t % 3 == 0;
        check_case(&r, &c);
    }
}

/* Long enough that one head's queries are split into several thread slices, whose private
 * score rows are max-merged. */
static void test_scoring_large(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 3);
    pcase c = {0};
    c.H = 1, c.G = 4, c.d = 64, c.dt = KVZ_DTYPE_BF16;
    c.n_q = tu_quick() ? 160 : 700;
    c.sink_end = 8, c.chunk_begin = 40, c.chunk_end = tu_quick() ? 400 : 1500;
    c.q_pos0 = (long)c.chunk_end + 300;
    c.n_k = (size_t)c.q_pos0 + c.n_q;
    c.scoring = 1;
    check_case(&r, &c);
}

/* ---- spec kvzip.md section 9, items 2-5, on the kernel alone ---------------------- */

typedef struct stest {
    size_t G, n_q, n_k, d, sink, cb, ce;
    long q_pos0;
    float *q, *k, *v, *out;
} stest;

static stest stest_make(tu_rng *r)
{
    stest s;
    s.G = 2, s.n_q = 24, s.d = 64, s.sink = 4, s.cb = 20, s.ce = 60, s.q_pos0 = 90;
    s.n_k = (size_t)s.q_pos0 + s.n_q;
    s.q = tu_malloc(s.G * s.n_q * s.d * sizeof(float));
    s.k = tu_malloc(s.n_k * s.d * sizeof(float));
    s.v = tu_malloc(s.n_k * s.d * sizeof(float));
    s.out = tu_malloc(s.G * s.n_q * s.d * sizeof(float));
    for (size_t i = 0; i < s.G * s.n_q * s.d; i++)
        s.q[i] = tu_uniform(r, -1, 1);
    for (size_t i = 0; i < s.n_k * s.d; i++)
        s.k[i] = tu_uniform(r, -1, 1), s.v[i] = tu_uniform(r, -1, 1);
    return s;
}

static void stest_free(stest *s) { free(s->q), free(s->k), free(s->v), free(s->out); }

/* Scores of chunk [cb, ce) for queries [0, n_q) (q is [g][i][d], K/V [j][d], one KV head). */
static void stest_score(const stest *s, size_t n_q, size_t cb, size_t ce, float *score)
{
    kvz_attn_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.n_kv_heads = 1, a.group = s->G, a.head_dim = s->d, a.n_q = n_q, a.n_k = (size_t)s->q_pos0 + n_q;
    a.q_pos0 = s->q_pos0;
    a.q = s->q, a.q_token_stride = (ptrdiff_t)s->d, a.q_head_stride = (ptrdiff_t)(s->n_q * s->d);
    a.k = s->k, a.v = s->v, a.kv_dtype = KVZ_DTYPE_F32, a.kv_row_stride = (ptrdiff_t)s->d;
    a.kv_head_stride = 0;
    a.out = s->out, a.out_token_stride = (ptrdiff_t)s->d, a.out_head_stride = (ptrdiff_t)(s->n_q * s->d);
    a.score = score, a.score_head_stride = (ptrdiff_t)(ce - cb);
    a.sink_end = s->sink, a.chunk_begin = cb, a.chunk_end = ce;
    memset(score, 0, (ce - cb) * sizeof(float));
    const kvz_status st = kvz_attn_prefill(&a);
    if (st != KVZ_OK)
        fail_msg("kvz_attn_prefill: %s (%s)", kvz_strerror(st), kvz_last_error());
}

/* 0 <= S <= 1, and scoring two chunks in either order gives the same scores. */
static void test_spec_invariants(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 4);
    stest s = stest_make(&r);
    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv);
    float a[40], b[30], a2[40], b2[30];
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        stest_score(&s, s.n_q, 20, 60, a);
        stest_score(&s, s.n_q, 60, 90, b);
        stest_score(&s, s.n_q, 60, 90, b2); /* the other order */
        stest_score(&s, s.n_q, 20, 60, a2);
        for (size_t j = 0; j < 40; j++) {
            assert_true(a[j] >= 0.0f && a[j] <= 1.0f);
            assert_true(a[j] == a2[j]);
        }
        for (size_t j = 0; j < 30; j++)
            assert_true(b[j] == b2[j] && b[j] >= 0.0f && b[j] <= 1.0f);
    }
    stest_free(&s);
}

/* Keys of other chunks with huge logits leave chunk scores alone; a strong system-prompt
 * key lowers them (it sits in the denominator). */
static void test_spec_reduced_set(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 5);
    stest s = stest_make(&r);
    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv);
    float base[40], other[40], sink[40];
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        stest t = stest_make(&r);
        memcpy(t.q, s.q, s.G * s.n_q * s.d * sizeof(float));
        memcpy(t.k, s.k, s.n_k * s.d * sizeof(float));
        stest_score(&t, t.n_q, 20, 60, base);
        for (size_t j = 60; j < 90; j++) /* another chunk's keys: aligned with every query */
            for (size_t x = 0; x < t.d; x++)
                t.k[j * t.d + x] = 40.0f * t.q[x];
        stest_score(&t, t.n_q, 20, 60, other);
        for (size_t j = 0; j < 40; j++)
            assert_float_equal(other[j], base[j], 1e-6 + 1e-5 * base[j]);
        memcpy(t.k, s.k, s.n_k * s.d * sizeof(float));
        for (size_t i = 0; i < t.G * t.n_q; i++) /* every query leans on dimension 0 ... */
            t.q[i * t.d] = 3.0f;
        /* ... and system-prompt key 1 points there, weakly, then strongly */
        t.k[1 * t.d] = 8.0f;
        stest_score(&t, t.n_q, 20, 60, base);
        t.k[1 * t.d] = 30.0f;
        stest_score(&t, t.n_q, 20, 60, sink);
        for (size_t j = 0; j < 40; j++)
            assert_true(sink[j] < base[j]);
        stest_free(&t);
    }
    stest_free(&s);
}

/* Causality: query i0's row does not see later repeat keys, so changing keys after
 * q_pos0 + i0 leaves the max over rows i <= i0 unchanged. */
static void test_spec_causality(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 6);
    stest s = stest_make(&r);
    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv), i0 = 9;
    float a[40], b[40];
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        stest_score(&s, i0 + 1, 20, 60, a);
        float *saved = tu_malloc(s.n_k * s.d * sizeof(float));
        memcpy(saved, s.k, s.n_k * s.d * sizeof(float));
        for (size_t j = (size_t)s.q_pos0 + i0 + 1; j < s.n_k; j++)
            for (size_t x = 0; x < s.d; x++)
                s.k[j * s.d + x] = 50.0f;
        stest_score(&s, i0 + 1, 20, 60, b);
        memcpy(s.k, saved, s.n_k * s.d * sizeof(float));
        free(saved);
        for (size_t j = 0; j < 40; j++)
            assert_true(a[j] == b[j]);
        /* and the perturbation is real: with all rows it does change the scores */
        stest_score(&s, s.n_q, 20, 60, a);
        for (size_t j = (size_t)s.q_pos0 + i0 + 1; j < s.n_k; j++)
            s.k[j * s.d] += 5.0f;
        stest_score(&s, s.n_q, 20, 60, b);
        int changed = 0;
        for (size_t j = 0; j < 40; j++)
            changed |= a[j] != b[j];
        assert_true(changed);
        for (size_t j = (size_t)s.q_pos0 + i0 + 1; j < s.n_k; j++)
            s.k[j * s.d] -= 5.0f;
    }
    stest_free(&s);
}

/* GQA: G identical query heads give the scores of one head. */
static void test_spec_gqa(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 7);
    stest s = stest_make(&r);
    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv);
    float one[40], many[40];
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        const size_t G = s.G;
        for (size_t g = 1; g < G; g++) /* every head a copy of head 0 */
            memcpy(s.q + g * s.n_q * s.d, s.q, s.n_q * s.d * sizeof(float));
        stest_score(&s, s.n_q, 20, 60, many);
        s.G = 1;
        stest_score(&s, s.n_q, 20, 60, one);
        s.G = G;
        for (size_t j = 0; j < 40; j++)
            assert_float_equal(many[j], one[j], 1e-6 + 1e-6 * one[j]);
    }
    stest_free(&s);
}

static void test_invalid(void **state)
{
    (void)state;
    float q[64] = {0}, k[64] = {0}, out[64];
    kvz_attn_args a;
    assert_int_equal(kvz_attn_prefill(NULL), KVZ_ERR_NULL);
    assert_true(strlen(kvz_last_error()) > 0);
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a - 1;
    assert_int_equal(kvz_attn_prefill(&a), KVZ_ERR_INVALID_ARG);
    a.struct_size = sizeof a;
    a.n_kv_heads = 1, a.group = 1, a.head_dim = 0, a.n_q = 1, a.n_k = 1;
    a.q = q, a.k = k, a.v = k, a.out = out, a.q_token_stride = 8, a.kv_row_stride = 8;
    a.out_token_stride = 8;
    assert_int_equal(kvz_attn_prefill(&a), KVZ_ERR_INVALID_ARG);
    a.head_dim = 257;
    assert_int_equal(kvz_attn_prefill(&a), KVZ_ERR_INVALID_ARG);
    a.head_dim = 8;
    a.kv_dtype = (kvz_dtype)7;
    assert_int_equal(kvz_attn_prefill(&a), KVZ_ERR_INVALID_ARG);
    a.kv_dtype = KVZ_DTYPE_F32;
    a.q = NULL;
    assert_int_equal(kvz_attn_prefill(&a), KVZ_ERR_NULL);
    a.q = q;
    assert_int_equal(kvz_attn_prefill(&a), KVZ_OK);
    /* scoring ranges out of order, or queries not at the end of the keys */
    float score[4];
    a.score = score, a.n_k = 8, a.n_q = 1, a.q_pos0 = 7;
    a.sink_end = 3, a.chunk_begin = 2, a.chunk_end = 4;
    assert_int_equal(kvz_attn_prefill(&a), KVZ_ERR_INVALID_ARG);
    a.sink_end = 1, a.chunk_begin = 2, a.chunk_end = 8;
    assert_int_equal(kvz_attn_prefill(&a), KVZ_ERR_INVALID_ARG);
    a.chunk_end = 4, a.q_pos0 = 8;
    assert_int_equal(kvz_attn_prefill(&a), KVZ_ERR_INVALID_ARG);
    assert_true(strstr(kvz_last_error(), "scoring") != NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_shapes),   cmocka_unit_test(test_edge_offsets),
        cmocka_unit_test(test_scoring_random),  cmocka_unit_test(test_scoring_large),
        cmocka_unit_test(test_spec_invariants), cmocka_unit_test(test_spec_reduced_set),
        cmocka_unit_test(test_spec_causality),  cmocka_unit_test(test_spec_gqa),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
