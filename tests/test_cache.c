/* The compressed cache: append/attend against the oracle, truncate restores exactly, retain == evict,
 * shared use by concurrent queries, positions after compaction, accounting, bad input. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oracle.h"
#include "testutil.h"

enum { L = 2, H = 3, G = 2, D = 64 };

/* K/V of n tokens of one layer, token-major [t][h][d], kept as doubles (rounded to the
 * storage type) for the oracle. */
typedef struct tokens {
    size_t n;
    float *k, *v;
    double *kx, *vx; /* [h][t][d] */
} tokens;

static tokens make_tokens(tu_rng *r, size_t n, kvz_dtype dt)
{
    tokens t = {n, tu_malloc(n * H * D * 4 + 4), tu_malloc(n * H * D * 4 + 4), tu_malloc(n * H * D * 8 + 8),
                tu_malloc(n * H * D * 8 + 8)};
    uint16_t *tmp = tu_malloc(n * H * D * 2 + 2);
    for (size_t i = 0; i < n * H * D; i++) {
        t.k[i] = tu_uniform(r, -1, 1), t.v[i] = tu_uniform(r, -1, 1);
        if (dt != KVZ_DTYPE_F32) { /* what the cache will store */
            kvz_convert(tmp, dt, &t.k[i], KVZ_DTYPE_F32, 1), kvz_convert(&t.k[i], KVZ_DTYPE_F32, tmp, dt, 1);
            kvz_convert(tmp, dt, &t.v[i], KVZ_DTYPE_F32, 1), kvz_convert(&t.v[i], KVZ_DTYPE_F32, tmp, dt, 1);
        }
    }
    for (size_t i = 0; i < n; i++)
        for (size_t h = 0; h < H; h++)
            for (size_t x = 0; x < D; x++) {
                t.kx[(h * n + i) * D + x] = t.k[(i * H + h) * D + x];
                t.vx[(h * n + i) * D + x] = t.v[(i * H + h) * D + x];
            }
    free(tmp);
    return t;
}

static void free_tokens(tokens *t) { free(t->k), free(t->v), free(t->kx), free(t->vx); }

static kvz_cache *make_cache(kvz_dtype dt)
{
    kvz_cache_config cfg = {sizeof cfg, L, H, D, dt, 0, NULL};
    kvz_cache *c = NULL;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    return c;
}

static void append(kvz_cache *c, size_t layer, const tokens *t)
{
    assert_int_equal(kvz_cache_append(c, layer, t->n, t->k, t->v, H * D, D), KVZ_OK);
}

static float *queries(tu_rng *r, size_t n)
{
    float *q = tu_malloc(n * H * G * D * 4);
    for (size_t i = 0; i < n * H * G * D; i++)
        q[i] = tu_uniform(r, -1, 1);
    return q;
}

static kvz_attend_args attend_args(size_t n_q, const float *q, float *out)
{
    kvz_attend_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a, a.group = G, a.n_q = n_q;
    a.q = q, a.q_token_stride = H * G * D, a.q_head_stride = D;
    a.out = out, a.out_token_stride = H * G * D, a.out_head_stride = D;
    return a;
}

/* The oracle over explicit per-head rows ([h] -> rows x D) for n_q queries, bottom-right causal. */
static void expect(const double *const *krows, const double *const *vrows, const size_t *len, size_t n_q,
                   const float *q, double *want)
{
    double *qd = tu_malloc(n_q * D * 8), *od = tu_malloc(n_q * D * 8);
    for (size_t h = 0; h < H; h++)
        for (size_t g = 0; g < G; g++) {
            for (size_t t = 0; t < n_q; t++)
                for (size_t x = 0; x < D; x++)
                    qd[t * D + x] = q[(t * H * G + h * G + g) * D + x];
            oracle_attn(qd, krows[h], vrows[h], n_q, len[h], D, (long)len[h] - (long)n_q, 1.0 / 8.0, od, NULL);
            for (size_t t = 0; t < n_q; t++)
                for (size_t x = 0; x < D; x++)
                    want[(t * H * G + h * G + g) * D + x] = od[t * D + x];
        }
    free(qd), free(od);
}

/* Chunked prefill through the cache equals attention over everything so far. */
static void test_chunked_prefill(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 50);
    for (int dt = 0; dt < 3; dt++) {
        kvz_cache *c = make_cache((kvz_dtype)dt);
        tokens all = make_tokens(&r, 300, (kvz_dtype)dt);
        float *q = queries(&r, 300), *out = tu_malloc(300 * H * G * D * 4);
        double *want = tu_malloc(300 * H * G * D * 8);
        size_t done = 0;
        const size_t chunks[] = {1, 77, 130, 92};
        for (size_t i = 0; i < 4; i++) { /* append a chunk, attend with its queries */
            tokens part = {chunks[i], all.k + done * H * D, all.v + done * H * D, NULL, NULL};
            append(c, 0, &part);
            kvz_attend_args a = attend_args(chunks[i], q + done * H * G * D, out);
            assert_int_equal(kvz_cache_attend(c, 0, &a), KVZ_OK);
            done += chunks[i];
            const double *kr[H], *vr[H];
            size_t len[H];
            double *ks = tu_malloc(H * done * D * 8), *vs = tu_malloc(H * done * D * 8);
            for (size_t h = 0; h < H; h++) {
                memcpy(ks + h * done * D, all.kx + h * 300 * D, done * D * 8);
                memcpy(vs + h * done * D, all.vx + h * 300 * D, done * D * 8);
                kr[h] = ks + h * done * D, vr[h] = vs + h * done * D, len[h] = done;
            }
            expect(kr, vr, len, chunks[i], q + (done - chunks[i]) * H * G * D, want);
            tu_assert_close(out, want, chunks[i] * H * G * D, tu_tol((kvz_dtype)dt), 0, "chunked prefill");
            free(ks), free(vs);
        }
        int64_t p;
        assert_int_equal(kvz_cache_next_position(c, 0, &p), KVZ_OK);
        assert_int_equal(p, 300);
        free_tokens(&all), free(q), free(out), free(want);
        kvz_cache_destroy(c);
    }
}

/* A snapshot of every segment: lengths, positions and K/V bytes. */
typedef struct snap {
    size_t len[L][H];
    void *k[L][H], *v[L][H];
    int64_t *pos[L][H];
    kvz_cache_stats st;
} snap;

static snap take(const kvz_cache *c, size_t row_bytes)
{
    snap s;
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < H; h++) {
            const void *k, *v;
            const int64_t *p;
            assert_int_equal(kvz_cache_length(c, l, h, &s.len[l][h]), KVZ_OK);
            assert_int_equal(kvz_cache_rows(c, l, h, &k, &v), KVZ_OK);
            assert_int_equal(kvz_cache_positions(c, l, h, &p), KVZ_OK);
            s.k[l][h] = tu_malloc(s.len[l][h] * row_bytes + 1),
            s.v[l][h] = tu_malloc(s.len[l][h] * row_bytes + 1);
            s.pos[l][h] = tu_malloc(s.len[l][h] * 8 + 8);
            memcpy(s.k[l][h], k, s.len[l][h] * row_bytes), memcpy(s.v[l][h], v, s.len[l][h] * row_bytes);
            memcpy(s.pos[l][h], p, s.len[l][h] * 8);
        }
    s.st.struct_size = sizeof s.st;
    assert_int_equal(kvz_cache_get_stats(c, &s.st), KVZ_OK);
    return s;
}

static void same(const snap *a, const snap *b, size_t row_bytes)
{
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < H; h++) {
            assert_int_equal(a->len[l][h], b->len[l][h]);
            assert_memory_equal(a->k[l][h], b->k[l][h], a->len[l][h] * row_bytes + 0);
            assert_memory_equal(a->v[l][h], b->v[l][h], a->len[l][h] * row_bytes + 0);
            assert_memory_equal(a->pos[l][h], b->pos[l][h], a->len[l][h] * 8);
        }
    assert_int_equal(a->st.rows, b->st.rows);
    assert_int_equal(a->st.full_rows, b->st.full_rows);
}

static void drop(snap *s)
{
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < H; h++)
            free(s->k[l][h]), free(s->v[l][h]), free(s->pos[l][h]);
}

/* Compaction by random masks, then: positions continue from the uncompressed length,
 * append + truncate restores the cache exactly, and retain (masked full rows) == evict. */
static void test_compact_truncate_retain(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 51);
    for (int dt = 0; dt < 3; dt++) {
        const size_t n = 200, rb = D * tu_dtype_size((kvz_dtype)dt);
        kvz_cache *c = make_cache((kvz_dtype)dt);
        tokens ctx[L];
        for (size_t l = 0; l < L; l++)
            ctx[l] = make_tokens(&r, n, (kvz_dtype)dt), append(c, l, &ctx[l]);
        /* keep masks with a different count per head; the first 4 rows ("system prompt") kept */
        uint8_t *keep[L * H];
        for (size_t i = 0; i < L * H; i++) {
            keep[i] = tu_malloc(n);
            for (size_t j = 0; j < n; j++)
                keep[i][j] = j < 4 || tu_uniform(&r, 0, 1) < 0.1f + 0.15f * (float)i;
        }
        assert_int_equal(kvz_cache_compact(c, (const uint8_t *const *)keep), KVZ_OK);
        kvz_cache_stats st = {.struct_size = sizeof st};
        assert_int_equal(kvz_cache_get_stats(c, &st), KVZ_OK);
        size_t kept = 0;
        for (size_t i = 0; i < L * H; i++)
            for (size_t j = 0; j < n; j++)
                kept += keep[i][j] != 0;
        assert_int_equal(st.rows, kept);
        assert_int_equal(st.full_rows, L * H * n);
        assert_float_equal(st.kept_ratio, (double)kept / (double)(L * H * n), 1e-12);
        for (size_t l = 0; l < L; l++)
            for (size_t h = 0; h < H; h++) { /* survivors keep their original positions */
                const int64_t *p;
                size_t len, m = 0;
                assert_int_equal(kvz_cache_positions(c, l, h, &p), KVZ_OK);
                assert_int_equal(kvz_cache_length(c, l, h, &len), KVZ_OK);
                for (size_t j = 0; j < n; j++)
                    if (keep[l * H + h][j])
                        assert_int_equal(p[m++], (int64_t)j);
                assert_int_equal(len, m);
            }

        snap before = take(c, rb);
        /* a question of 5 tokens: positions n.., attention over kept rows + the question */
        const size_t nq = 5;
        tokens qt[L];
        float *q = queries(&r, nq), *out = tu_malloc(nq * H * G * D * 4);
        double *want = tu_malloc(nq * H * G * D * 8);
        for (size_t l = 0; l < L; l++) {
            int64_t p0;
            assert_int_equal(kvz_cache_next_position(c, l, &p0), KVZ_OK);
            assert_int_equal(p0, (int64_t)n);
            qt[l] = make_tokens(&r, nq, (kvz_dtype)dt);
            append(c, l, &qt[l]);
            const int64_t *p;
            size_t len;
            assert_int_equal(kvz_cache_positions(c, l, 1, &p), KVZ_OK);
            assert_int_equal(kvz_cache_length(c, l, 1, &len), KVZ_OK);
            assert_int_equal(p[len - 1], (int64_t)(n + nq - 1));
            kvz_attend_args a = attend_args(nq, q, out);
            assert_int_equal(kvz_cache_attend(c, l, &a), KVZ_OK);
            /* retain: the full rows through the masks, then the question's rows */
            const double *kr[H], *vr[H];
            size_t lens[H];
            double *ks = tu_malloc(H * (n + nq) * D * 8), *vs = tu_malloc(H * (n + nq) * D * 8);
            for (size_t h = 0; h < H; h++) {
                size_t m = 0;
                double *kh = ks + h * (n + nq) * D, *vh = vs + h * (n + nq) * D;
                for (size_t j = 0; j < n + nq; j++)
                    if (j >= n || keep[l * H + h][j]) {
                        const tokens *src = j < n ? &ctx[l] : &qt[l];
                        const size_t jj = j < n ? j : j - n;
                        memcpy(kh + m * D, src->kx + (h * src->n + jj) * D, D * 8);
                        memcpy(vh + m * D, src->vx + (h * src->n + jj) * D, D * 8);
                        m++;
                    }
                kr[h] = kh, vr[h] = vh, lens[h] = m;
            }
            expect(kr, vr, lens, nq, q, want);
            tu_assert_close(out, want, nq * H * G * D, tu_tol((kvz_dtype)dt), 0, "retain == evict");
            free(ks), free(vs);
        }
        assert_int_equal(kvz_cache_truncate(c, nq), KVZ_OK);
        snap after = take(c, rb);
        same(&before, &after, rb);
        /* truncating past the compaction is refused */
        assert_int_equal(kvz_cache_truncate(c, 1), KVZ_ERR_INVALID_ARG);
        drop(&before), drop(&after);
        for (size_t l = 0; l < L; l++)
            free_tokens(&ctx[l]), free_tokens(&qt[l]);
        for (size_t i = 0; i < L * H; i++)
            free(keep[i]);
        free(q), free(out), free(want);
        kvz_cache_destroy(c);
    }
}

/* Many threads answer different questions over one shared cache through queries: the same
 * outputs as one at a time, and the cache bytes never change. */
enum { SHARED_NT = 8, SHARED_STEPS = 4 };
typedef struct shared_run {
    const kvz_cache *c;
    size_t n, nq;
    tokens (*qtok)[L][SHARED_STEPS + 1];
    float *(*qv)[SHARED_STEPS + 1];
    float **dst;
} shared_run;

/* Thread t's question of nq tokens, then SHARED_STEPS decode tokens, all layers; the out layout per
 * step s is the m query rows of the last layer attended. */
static void ask_shared(void *ctx, size_t t)
{
    const shared_run *run = ctx;
    kvz_query *qq = NULL;
    if (kvz_query_create(run->c, &qq) != KVZ_OK)
        return;
    float *dst = run->dst[t];
    size_t off = 0;
    for (size_t s = 0; s <= SHARED_STEPS; s++) {
        const size_t m = s == 0 ? run->nq : 1;
        for (size_t l = 0; l < L; l++) {
            const tokens *tk = &run->qtok[t][l][s];
            kvz_query_append(qq, l, m, tk->k, tk->v, H * D, D);
            kvz_attend_args a = attend_args(m, run->qv[t][s], dst + off);
            kvz_query_attend(qq, l, &a);
        }
        off += m * H * G * D;
    }
    int64_t p;
    kvz_query_next_position(qq, 1, &p);
    if (p != (int64_t)(run->n + run->nq + SHARED_STEPS))
        dst[0] = NAN; /* reported by the comparison */
    kvz_query_destroy(qq);
}

static void test_shared_queries(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 52);
    const size_t n = 400, nq = 3, steps = SHARED_STEPS, NT = SHARED_NT;
    kvz_cache *c = make_cache(KVZ_DTYPE_BF16);
    tokens ctx[L];
    for (size_t l = 0; l < L; l++)
        ctx[l] = make_tokens(&r, n, KVZ_DTYPE_BF16), append(c, l, &ctx[l]);
    const size_t rb = D * 2;
    snap before = take(c, rb);
    tokens qtok[SHARED_NT][L][SHARED_STEPS + 1];
    float *qv[SHARED_NT][SHARED_STEPS + 1], *seq[SHARED_NT], *par[SHARED_NT];
    for (size_t t = 0; t < NT; t++) {
        seq[t] = tu_malloc(steps * L * H * G * D * 4 + (nq - 1) * H * G * D * 4);
        par[t] = tu_malloc(steps * L * H * G * D * 4 + (nq - 1) * H * G * D * 4);
        for (size_t s = 0; s <= steps; s++) {
            const size_t m = s == 0 ? nq : 1;
            qv[t][s] = queries(&r, m);
            for (size_t l = 0; l < L; l++)
                qtok[t][l][s] = make_tokens(&r, m, KVZ_DTYPE_BF16);
        }
    }
    shared_run run = {c, n, nq, qtok, qv, seq};
    for (size_t t = 0; t < NT; t++) /* one at a time */
        ask_shared(&run, t);
    run.dst = par;
    tu_run_threads(NT, ask_shared, &run); /* all at once */
    for (size_t t = 0; t < NT; t++) {
        const size_t len = (nq + steps) * H * G * D;
        double *w = tu_malloc(len * 8);
        for (size_t i = 0; i < len; i++)
            w[i] = seq[t][i];
        tu_assert_close(par[t], w, len, 1e-6, 1e-6, "concurrent queries vs one at a time");
        free(w);
    }
    snap after = take(c, rb);
    same(&before, &after, rb);
    drop(&before), drop(&after);
    for (size_t t = 0; t < NT; t++) {
        for (size_t s = 0; s <= steps; s++) {
            free(qv[t][s]);
            for (size_t l = 0; l < L; l++)
                free_tokens(&qtok[t][l][s]);
        }
        free(seq[t]), free(par[t]);
    }
    for (size_t l = 0; l < L; l++)
        free_tokens(&ctx[l]);
    kvz_cache_destroy(c);
}

/* A query's answer equals the same tokens appended to the cache itself. */
static void test_query_equals_append(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 53);
    kvz_cache *c = make_cache(KVZ_DTYPE_F16);
    tokens ctx = make_tokens(&r, 150, KVZ_DTYPE_F16), qt = make_tokens(&r, 4, KVZ_DTYPE_F16);
    append(c, 0, &ctx);
    float *q = queries(&r, 4), *a1 = tu_malloc(4 * H * G * D * 4), *a2 = tu_malloc(4 * H * G * D * 4);
    kvz_query *qq;
    assert_int_equal(kvz_query_create(c, &qq), KVZ_OK);
    assert_int_equal(kvz_query_append(qq, 0, 4, qt.k, qt.v, H * D, D), KVZ_OK);
    kvz_attend_args a = attend_args(4, q, a1);
    assert_int_equal(kvz_query_attend(qq, 0, &a), KVZ_OK);
    /* the cache refuses changes while a query reads it */
    assert_int_equal(kvz_cache_append(c, 0, 4, qt.k, qt.v, H * D, D), KVZ_ERR_STATE);
    assert_int_equal(kvz_cache_truncate(c, 1), KVZ_ERR_STATE);
    assert_int_equal(kvz_query_reset(qq), KVZ_OK);
    int64_t p;
    assert_int_equal(kvz_query_next_position(qq, 0, &p), KVZ_OK);
    assert_int_equal(p, 150);
    kvz_query_destroy(qq);
    append(c, 0, &qt);
    a.out = a2;
    assert_int_equal(kvz_cache_attend(c, 0, &a), KVZ_OK);
    double *w = tu_malloc(4 * H * G * D * 8);
    for (size_t i = 0; i < 4 * H * G * D; i++)
        w[i] = a2[i];
    tu_assert_close(a1, w, 4 * H * G * D, 1e-6, 1e-6, "query tail == appended");
    free(w), free(q), free(a1), free(a2), free_tokens(&ctx), free_tokens(&qt);
    kvz_cache_destroy(c);
}

/* Scoring through the cache equals kvz_attn_prefill's scoring on the same rows. */
static void test_scoring_through_cache(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 54);
    kvz_cache *c = make_cache(KVZ_DTYPE_F32);
    const size_t n = 120, nq = 30;
    tokens ctx = make_tokens(&r, n + nq, KVZ_DTYPE_F32);
    append(c, 0, &ctx);
    float *q = queries(&r, nq), *out = tu_malloc(nq * H * G * D * 4);
    float s1[H * 50] = {0}, s2[H * 50] = {0};
    kvz_attend_args a = attend_args(nq, q, out);
    a.score = s1, a.score_head_stride = 50, a.sink_end = 5, a.chunk_begin = 40, a.chunk_end = 90;
    assert_int_equal(kvz_cache_attend(c, 0, &a), KVZ_OK);
    kvz_attn_args b;
    memset(&b, 0, sizeof b);
    b.struct_size = sizeof b, b.n_kv_heads = H, b.group = G, b.head_dim = D, b.n_q = nq, b.n_k = n + nq;
    b.q_pos0 = (ptrdiff_t)n, b.q = q, b.q_token_stride = H * G * D, b.q_head_stride = D;
    b.k = ctx.k, b.v = ctx.v, b.kv_dtype = KVZ_DTYPE_F32, b.kv_head_stride = D, b.kv_row_stride = H * D;
    b.out = out, b.out_token_stride = H * G * D, b.out_head_stride = D;
    b.score = s2, b.score_head_stride = 50, b.sink_end = 5, b.chunk_begin = 40, b.chunk_end = 90;
    assert_int_equal(kvz_attn_prefill(&b), KVZ_OK);
    for (size_t i = 0; i < H * 50; i++)
        assert_float_equal(s1[i], s2[i], 1e-6);
    kvz_query *qq;
    assert_int_equal(kvz_query_create(c, &qq), KVZ_OK);
    assert_int_equal(kvz_query_attend(qq, 0, &a), KVZ_ERR_INVALID_ARG); /* no scoring on queries */
    kvz_query_destroy(qq);
    free(q), free(out), free_tokens(&ctx);
    kvz_cache_destroy(c);
}

static void test_invalid(void **state)
{
    (void)state;
    kvz_cache *c = NULL;
    kvz_cache_config cfg = {sizeof cfg, L, H, D, KVZ_DTYPE_BF16, 0, NULL};
    assert_int_equal(kvz_cache_create(NULL, &c), KVZ_ERR_NULL);
    cfg.head_dim = 0;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_ERR_INVALID_ARG);
    assert_null(c);
    cfg.head_dim = D, cfg.dtype = (kvz_dtype)5;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_ERR_INVALID_ARG);
    cfg.dtype = KVZ_DTYPE_BF16, cfg.struct_size = 3;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_ERR_INVALID_ARG);
    cfg.struct_size = sizeof cfg, cfg.reserve = 10;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    float kv[H * D] = {0};
    assert_int_equal(kvz_cache_append(c, L, 1, kv, kv, H * D, D), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_cache_append(c, 0, 1, NULL, kv, H * D, D), KVZ_ERR_NULL);
    assert_int_equal(kvz_cache_append(NULL, 0, 1, kv, kv, H * D, D), KVZ_ERR_NULL);
    assert_int_equal(kvz_cache_truncate(c, 1), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_cache_compact(c, NULL), KVZ_ERR_NULL);
    size_t len;
    assert_int_equal(kvz_cache_length(c, 0, H, &len), KVZ_ERR_INVALID_ARG);
    float q[G * H * D] = {0}, out[G * H * D];
    kvz_attend_args a = attend_args(1, q, out);
    assert_int_equal(kvz_cache_attend(c, 0, &a), KVZ_ERR_INVALID_ARG); /* no rows for the query yet */
    assert_true(strstr(kvz_last_error(), "append") != NULL);
    assert_int_equal(kvz_cache_append(c, 0, 1, kv, kv, H * D, D), KVZ_OK);
    assert_int_equal(kvz_cache_attend(c, 0, &a), KVZ_OK);
    a.struct_size = 1;
    assert_int_equal(kvz_cache_attend(c, 0, &a), KVZ_ERR_INVALID_ARG);
    kvz_cache_stats st = {0};
    assert_int_equal(kvz_cache_get_stats(c, &st), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_query_create(NULL, NULL), KVZ_ERR_NULL);
    kvz_cache_destroy(c);
    kvz_cache_destroy(NULL);
    kvz_query_destroy(NULL);
}

/* Explicit positions (FastKV's propagated tokens): stored as given, the next position follows
 * the last one, attention is still by row order, out-of-order positions are refused. */
static void test_append_at(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, 7);
    tokens t = make_tokens(&r, 5, KVZ_DTYPE_F32);
    kvz_cache *c = make_cache(KVZ_DTYPE_F32);
    const int64_t pos[5] = {0, 3, 4, 9, 20};
    assert_int_equal(kvz_cache_append_at(c, 1, 5, t.k, t.v, H * D, D, pos), KVZ_OK);
    int64_t next = -1;
    assert_int_equal(kvz_cache_next_position(c, 1, &next), KVZ_OK);
    assert_int_equal(next, 21);
    assert_int_equal(kvz_cache_next_position(c, 0, &next), KVZ_OK);
    assert_int_equal(next, 0); /* other layers untouched */
    for (size_t h = 0; h < H; h++) {
        const int64_t *p = NULL;
        assert_int_equal(kvz_cache_positions(c, 1, h, &p), KVZ_OK);
        assert_memory_equal(p, pos, sizeof pos);
    }
    const int64_t bad[2] = {21, 21}, low[1] = {20};
    assert_int_equal(kvz_cache_append_at(c, 1, 2, t.k, t.v, H * D, D, bad), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_cache_append_at(c, 1, 1, t.k, t.v, H * D, D, low), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_cache_append_at(c, 1, 1, t.k, t.v, H * D, D, NULL), KVZ_ERR_NULL);
    size_t len;
    assert_int_equal(kvz_cache_length(c, 1, 0, &len), KVZ_OK);
    assert_int_equal(len, 5); /* refused appends changed nothing */
    /* a contiguous append continues at 21; truncating it restores 21, truncating the gap run
       restores the first removed position */
    assert_int_equal(kvz_cache_append(c, 1, 2, t.k, t.v, H * D, D), KVZ_OK);
    const int64_t *p = NULL;
    assert_int_equal(kvz_cache_positions(c, 1, 2, &p), KVZ_OK);
    assert_int_equal(p[5], 21);
    assert_int_equal(p[6], 22);
    /* truncate acts on every layer: layer 0 needs the same count appended */
    assert_int_equal(kvz_cache_append(c, 0, 7, t.k, t.v, 0, D), KVZ_OK);
    assert_int_equal(kvz_cache_truncate(c, 2), KVZ_OK);
    assert_int_equal(kvz_cache_next_position(c, 1, &next), KVZ_OK);
    assert_int_equal(next, 21);
    assert_int_equal(kvz_cache_truncate(c, 3), KVZ_OK);
    assert_int_equal(kvz_cache_next_position(c, 1, &next), KVZ_OK);
    assert_int_equal(next, 4);
    assert_int_equal(kvz_cache_next_position(c, 0, &next), KVZ_OK);
    assert_int_equal(next, 2);
    kvz_cache_destroy(c);
    free_tokens(&t);
}

/* A clone holds the same rows, positions and next positions; it is independent of its
 * source in both directions, and cloning only reads (a query may be alive on the source). */
static void test_clone(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    const kvz_dtype dt = KVZ_DTYPE_BF16;
    const size_t rb = D * 2;
    kvz_cache *c = make_cache(dt);
    tokens t = make_tokens(&r, 50, dt);
    append(c, 0, &t), append(c, 1, &t);
    uint8_t *keep[L * H];
    for (size_t i = 0; i < L * H; i++) { /* different lengths per segment */
        keep[i] = tu_malloc(50);
        for (size_t j = 0; j < 50; j++)
            keep[i][j] = (uint8_t)((j * (i + 2)) % 3 != 0);
    }
    assert_int_equal(kvz_cache_compact(c, (const uint8_t *const *)keep), KVZ_OK);
    append(c, 0, &t), append(c, 1, &t); /* 50 more, appended since the compaction */
    kvz_query *q;
    assert_int_equal(kvz_query_create(c, &q), KVZ_OK);
    kvz_cache *d = NULL;
    assert_int_equal(kvz_cache_clone(c, &d), KVZ_OK);
    kvz_query_destroy(q);
    snap a = take(c, rb), b = take(d, rb);
    same(&a, &b, rb);
    for (size_t l = 0; l < L; l++) {
        int64_t pc, pd;
        assert_int_equal(kvz_cache_next_position(c, l, &pc), KVZ_OK);
        assert_int_equal(kvz_cache_next_position(d, l, &pd), KVZ_OK);
        assert_int_equal(pc, pd);
    }
    /* the clone truncates what was appended since the compaction, the source stays */
    assert_int_equal(kvz_cache_truncate(d, 50), KVZ_OK);
    snap a2 = take(c, rb);
    same(&a, &a2, rb);
    drop(&a2);
    /* and destroying the source leaves the clone intact */
    kvz_cache_destroy(c);
    append(d, 0, &t), append(d, 1, &t);
    snap b2 = take(d, rb);
    same(&b, &b2, rb);
    assert_int_equal(kvz_cache_clone(NULL, &d), KVZ_ERR_NULL);
    drop(&a), drop(&b), drop(&b2);
    for (size_t i = 0; i < L * H; i++)
        free(keep[i]);
    free_tokens(&t);
    kvz_cache_destroy(d);
}

/* kvz_cache_reserve: exactly the room for more tokens, without touching the rows; appends up to
 * it allocate nothing more; refused while queries read the cache, for NULL and for sizes past memory. */
static void test_reserve(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 7);
    const kvz_dtype dt = KVZ_DTYPE_BF16;
    const size_t rb = D * 2;
    kvz_cache *c = make_cache(dt);
    tokens t = make_tokens(&r, 30, dt), more = make_tokens(&r, 200, dt);
    append(c, 0, &t), append(c, 1, &t);
    snap a = take(c, rb);
    kvz_cache_stats st0 = {.struct_size = sizeof st0}, st1 = st0, st2 = st0;
    assert_int_equal(kvz_cache_get_stats(c, &st0), KVZ_OK);
    assert_int_equal(kvz_cache_reserve(c, 0), KVZ_OK);
    assert_int_equal(kvz_cache_reserve(c, 200), KVZ_OK);
    assert_int_equal(kvz_cache_get_stats(c, &st1), KVZ_OK);
    /* every segment holds exactly 230 rows of K, V (rb bytes each) and a position */
    assert_true(st1.bytes_reserved == (size_t)L * H * 230 * (2 * rb + sizeof(int64_t)));
    assert_true(st1.bytes_used == st0.bytes_used);
    snap b = take(c, rb);
    same(&a, &b, rb);
    append(c, 0, &more), append(c, 1, &more);
    assert_int_equal(kvz_cache_get_stats(c, &st2), KVZ_OK);
    assert_true(st2.bytes_reserved == st1.bytes_reserved); /* the appends found their room */
    assert_int_equal(kvz_cache_truncate(c, 200), KVZ_OK);
    snap b2 = take(c, rb);
    same(&a, &b2, rb);
    /* a size no segment can hold: refused, the rows as they were */
    assert_int_equal(kvz_cache_reserve(c, SIZE_MAX), KVZ_ERR_NOMEM);
    assert_int_equal(kvz_cache_reserve(c, SIZE_MAX / 4), KVZ_ERR_NOMEM);
    snap b3 = take(c, rb);
    same(&a, &b3, rb);
    kvz_query *q;
    assert_int_equal(kvz_query_create(c, &q), KVZ_OK);
    assert_int_equal(kvz_cache_reserve(c, 10), KVZ_ERR_STATE);
    kvz_query_destroy(q);
    assert_int_equal(kvz_cache_reserve(NULL, 10), KVZ_ERR_NULL);
    drop(&a), drop(&b), drop(&b2), drop(&b3);
    free_tokens(&t), free_tokens(&more);
    kvz_cache_destroy(c);
}

/* ---- sliding-window layers ------------------------------------------------------------------ */

static kvz_cache *make_windowed(kvz_dtype dt, const size_t window[L])
{
    kvz_cache_config cfg = {sizeof cfg, L, H, D, dt, 0, window};
    kvz_cache *c = NULL;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    return c;
}

/* The oracle for n_q queries whose keys end token `done` of all, with a window (0: none). */
static void expect_window(const tokens *all, size_t done, size_t n_q, size_t window, const float *q,
                          double *want)
{
    double *qd = tu_malloc(n_q * D * 8), *od = tu_malloc(n_q * D * 8);
    for (size_t h = 0; h < H; h++)
        for (size_t g = 0; g < G; g++) {
            for (size_t t = 0; t < n_q; t++)
                for (size_t x = 0; x < D; x++)
                    qd[t * D + x] = q[(t * H * G + h * G + g) * D + x];
            oracle_attn_window(qd, all->kx + h * all->n * D, all->vx + h * all->n * D, n_q, done, D,
                               (long)(done - n_q), window, 1.0 / 8.0, od, NULL);
            for (size_t t = 0; t < n_q; t++)
                for (size_t x = 0; x < D; x++)
                    want[(t * H * G + h * G + g) * D + x] = od[t * D + x];
        }
    free(qd), free(od);
}

/* Tokens [from, from + n) of all, appended to both layers. */
static void append_part(kvz_cache *c, const tokens *all, size_t from, size_t n)
{
    for (size_t l = 0; l < L; l++)
        assert_int_equal(kvz_cache_append(c, l, n, all->k + from * H * D, all->v + from * H * D, H * D, D),
                         KVZ_OK);
}

/* Both layers' attention for the n queries ending at token `done`, against the oracle. */
static void check_layers(const kvz_cache *c, const tokens *all, size_t done, size_t n, const size_t window[L],
                         const float *q, kvz_dtype dt, const char *what)
{
    float *out = tu_malloc(n * H * G * D * 4);
    double *want = tu_malloc(n * H * G * D * 8);
    for (size_t l = 0; l < L; l++) {
        kvz_attend_args a = attend_args(n, q + (done - n) * H * G * D, out);
        assert_int_equal(kvz_cache_attend(c, l, &a), KVZ_OK);
        expect_window(all, done, n, window[l], q + (done - n) * H * G * D, want);
        char msg[160];
        snprintf(msg, sizeof msg, "%s: layer %zu (window %zu) after %zu tokens, %zu queries", what, l,
                 window[l], done, n);
        tu_assert_close(out, want, n * H * G * D, tu_tol(dt), 0, msg);
    }
    free(out), free(want);
}

/* A windowed layer's rows: consecutive positions ending at done - 1, at least the window's
 * (or all tokens when fewer), at most 2 x window - 1 plus the last append's. */
static void check_window_rows(const kvz_cache *c, size_t layer, size_t window, size_t done, size_t last_append)
{
    for (size_t h = 0; h < H; h++) {
        size_t len;
        const int64_t *pos;
        assert_int_equal(kvz_cache_length(c, layer, h, &len), KVZ_OK);
        assert_int_equal(kvz_cache_positions(c, layer, h, &pos), KVZ_OK);
        assert_true(len >= (done < window ? done : window));
        assert_true(len <= done && len <= 2 * window - 1 + last_append);
        for (size_t j = 0; j < len; j++)
            assert_int_equal(pos[j], (int64_t)(done - len + j));
    }
}

/*
 * A local layer (windows 7, 128, 129) beside a global one through a long stream: prefill
 * chunks shorter and longer than the window, then one-token decode appends, each attended
 * with its own queries against the oracle over everything appended (the window hides what
 * the layer dropped); the rows held stay bounded by the window.
 */
static void test_window_stream(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 57);
    static const size_t windows[] = {7, 128, 129};
    const size_t steps = tu_quick() ? 40 : 300;
    for (size_t wi = 0; wi < 3; wi++) {
        const kvz_dtype dt = (kvz_dtype)wi;
        const size_t w[L] = {windows[wi], 0};
        kvz_cache *c = make_windowed(dt, w);
        size_t got;
        assert_int_equal(kvz_cache_layer_window(c, 0, &got), KVZ_OK);
        assert_int_equal(got, w[0]);
        assert_int_equal(kvz_cache_layer_window(c, 1, &got), KVZ_OK);
        assert_int_equal(got, 0);
        const size_t chunks[] = {1, 77, 300, 130, 5, 400};
        size_t total = steps;
        for (size_t i = 0; i < 6; i++)
            total += chunks[i];
        tokens all = make_tokens(&r, total, dt);
        float *q = queries(&r, total);
        size_t done = 0;
        char what[64];
        snprintf(what, sizeof what, "window %zu dtype %d", w[0], (int)dt);
        for (size_t i = 0; i < 6 + steps; i++) {
            const size_t n = i < 6 ? chunks[i] : 1;
            append_part(c, &all, done, n);
            done += n;
            check_window_rows(c, 0, w[0], done, n);
            if (i < 6 || i % 7 == 0 || i + 1 == 6 + steps) /* the oracle's time */
                check_layers(c, &all, done, n, w, q, dt, what);
        }
        int64_t p;
        assert_int_equal(kvz_cache_next_position(c, 0, &p), KVZ_OK);
        assert_int_equal(p, (int64_t)done);
        size_t len1;
        assert_int_equal(kvz_cache_length(c, 1, 0, &len1), KVZ_OK);
        assert_int_equal(len1, done);
        free_tokens(&all), free(q);
        kvz_cache_destroy(c);
    }
}

/* The memory of windowed layers stays bounded: a long prefill in one append, then many
 * one-token appends; the rows and the bytes reserved (kvz_cache_get_stats) stay within a
 * few windows, not the tokens appended. */
static void test_window_memory(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 58);
    const size_t w[L] = {7, 512}, prefill = 5000, decode = tu_quick() ? 600 : 1500;
    kvz_cache *c = make_windowed(KVZ_DTYPE_BF16, w);
    tokens t = make_tokens(&r, prefill, KVZ_DTYPE_BF16);
    append_part(c, &t, 0, prefill);
    const size_t row_bytes = 2 * D * 2 + 8;
    for (size_t i = 0; i < decode; i++) {
        append_part(c, &t, i % prefill, 1);
        kvz_cache_stats st = {.struct_size = sizeof st};
        assert_int_equal(kvz_cache_get_stats(c, &st), KVZ_OK);
        size_t rows = 0, cap = 0;
        for (size_t l = 0; l < L; l++) {
            size_t len;
            for (size_t h = 0; h < H; h++) {
                assert_int_equal(kvz_cache_length(c, l, h, &len), KVZ_OK);
                assert_true(len >= w[l] && len <= 2 * w[l]);
                rows += len;
            }
            const size_t most = 2 * (2 * w[l] + 1) > 64 ? 2 * (2 * w[l] + 1) : 64; /* twice the rows held */
            cap += H * most * row_bytes;
        }
        assert_int_equal(st.rows, rows);
        assert_int_equal(st.full_rows, L * H * (prefill + i + 1));
        assert_true(st.bytes_used == rows * row_bytes);
        if (!(st.bytes_reserved <= cap))
            fail_msg("after %zu decode appends: %zu bytes reserved, more than %zu", i + 1, st.bytes_reserved,
                     cap);
    }
    free_tokens(&t);
    kvz_cache_destroy(c);
}

/*
 * Truncation, queries, compaction and scoring on a cache with a windowed layer: a pass
 * appended and truncated away leaves the window's rows and the next attention as without
 * the pass; truncating further back than the rows kept is refused and changes nothing;
 * a query's private tail longer than the window; compaction leaves the windowed layer as
 * it is (its masks ignored, NULL allowed) and compacts the global one; scoring refused on
 * the windowed layer only; explicit positions with gaps there, whose window counts tokens.
 */
static void test_window_truncate_query_compact(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 59);
    const size_t w[L] = {64, 0}, n0 = 300, pass = 90, tail = 80;
    const kvz_dtype dt = KVZ_DTYPE_F32;
    kvz_cache *c = make_windowed(dt, w);
    tokens all = make_tokens(&r, n0 + pass + tail, dt);
    float *q = queries(&r, n0 + pass + tail);
    append_part(c, &all, 0, 150);
    append_part(c, &all, 150, n0 - 150 - 1);
    const size_t row_bytes = D * 4;
    snap before = take(c, row_bytes);
    /* a pass whose append drops rows of the windowed layer (it holds 149 >= 2 x 64), then
       truncated: the layer keeps its last 64 rows, the global one is as before */
    append_part(c, &all, n0 - 1, pass);
    check_window_rows(c, 0, w[0], n0 - 1 + pass, pass);
    assert_int_equal(kvz_cache_truncate(c, pass), KVZ_OK);
    check_window_rows(c, 0, w[0], n0 - 1, 0);
    size_t len;
    assert_int_equal(kvz_cache_length(c, 0, 0, &len), KVZ_OK);
    assert_int_equal(len, w[0]);
    int64_t p;
    assert_int_equal(kvz_cache_next_position(c, 0, &p), KVZ_OK);
    assert_int_equal(p, (int64_t)(n0 - 1));
    snap after = take(c, row_bytes);
    for (size_t h = 0; h < H; h++) { /* the global layer exactly as before */
        assert_int_equal(after.len[1][h], before.len[1][h]);
        assert_memory_equal(after.k[1][h], before.k[1][h], before.len[1][h] * row_bytes);
        assert_memory_equal(after.pos[1][h], before.pos[1][h], before.len[1][h] * 8);
    }
    /* further back than the windowed layer's rows: refused, nothing changes */
    assert_int_equal(kvz_cache_truncate(c, 10), KVZ_ERR_STATE);
    assert_non_null(strstr(kvz_last_error(), "window"));
    snap again = take(c, row_bytes);
    same(&after, &again, row_bytes);
    drop(&again);
    /* the next token, appended where the pass was */
    append_part(c, &all, n0 - 1, 1);
    check_layers(c, &all, n0, 1, w, q, dt, "after a truncated pass");

    /* a query: a private tail longer than the window, token by token */
    kvz_query *qu = NULL;
    assert_int_equal(kvz_query_create(c, &qu), KVZ_OK);
    float *out = tu_malloc(H * G * D * 4);
    double *want = tu_malloc(H * G * D * 8);
    for (size_t t = 0; t < tail; t++) {
        const size_t at = n0 + t;
        for (size_t l = 0; l < L; l++) {
            assert_int_equal(kvz_query_append(qu, l, 1, all.k + at * H * D, all.v + at * H * D, H * D, D),
                             KVZ_OK);
            kvz_attend_args a = attend_args(1, q + at * H * G * D, out);
            assert_int_equal(kvz_query_attend(qu, l, &a), KVZ_OK);
            expect_window(&all, at + 1, 1, w[l], q + at * H * G * D, want);
            tu_assert_close(out, want, H * G * D, tu_tol(dt), 0, "query over a windowed cache");
        }
    }
    /* the query's tokens as one block of queries too */
    float *outb = tu_malloc(tail * H * G * D * 4);
    double *wantb = tu_malloc(tail * H * G * D * 8);
    kvz_attend_args ab = attend_args(tail, q + n0 * H * G * D, outb);
    assert_int_equal(kvz_query_attend(qu, 0, &ab), KVZ_OK);
    expect_window(&all, n0 + tail, tail, w[0], q + n0 * H * G * D, wantb);
    tu_assert_close(outb, wantb, tail * H * G * D, tu_tol(dt), 0, "query block over a windowed cache");
    kvz_query_destroy(qu);
    free(outb), free(wantb);

    /* scoring: refused on the windowed layer, not on the global one */
    float score[H * 10];
    kvz_attend_args s = attend_args(1, q + (n0 - 1) * H * G * D, out);
    s.score = score, s.score_head_stride = 10, s.chunk_begin = 0, s.chunk_end = 10;
    assert_int_equal(kvz_cache_attend(c, 0, &s), KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "window"));
    memset(score, 0, sizeof score);
    assert_int_equal(kvz_cache_attend(c, 1, &s), KVZ_OK);

    /* compaction: the windowed layer's masks ignored (NULL or all zero), the global one's kept */
    snap pre = take(c, row_bytes);
    uint8_t *keep[L * H];
    for (size_t h = 0; h < H; h++) {
        keep[h] = h == 0 ? NULL : tu_calloc(pre.len[0][h] + 1, 1);
        keep[H + h] = tu_malloc(pre.len[1][h] + 1);
        for (size_t j = 0; j < pre.len[1][h]; j++)
            keep[H + h][j] = j % 3 != 1;
    }
    assert_int_equal(kvz_cache_compact(c, (const uint8_t *const *)keep), KVZ_OK);
    snap post = take(c, row_bytes);
    for (size_t h = 0; h < H; h++) {
        assert_int_equal(post.len[0][h], pre.len[0][h]);
        assert_memory_equal(post.k[0][h], pre.k[0][h], pre.len[0][h] * row_bytes);
        assert_memory_equal(post.v[0][h], pre.v[0][h], pre.len[0][h] * row_bytes);
        assert_memory_equal(post.pos[0][h], pre.pos[0][h], pre.len[0][h] * 8);
        assert_true(post.len[1][h] < pre.len[1][h]);
        free(keep[h]), free(keep[H + h]);
    }
    /* the windowed layer goes on as before after a compaction */
    append_part(c, &all, n0, 1);
    float *out1 = tu_malloc(H * G * D * 4);
    kvz_attend_args a1 = attend_args(1, q + n0 * H * G * D, out1);
    assert_int_equal(kvz_cache_attend(c, 0, &a1), KVZ_OK);
    expect_window(&all, n0 + 1, 1, w[0], q + n0 * H * G * D, want);
    tu_assert_close(out1, want, H * G * D, tu_tol(dt), 0, "windowed layer after a compaction");

    /* explicit positions with gaps (FastKV's propagated tokens): the window counts tokens, so
       the last token still sees the last `window` tokens appended, as the oracle over the
       tokens in their order has it; out-of-order positions are refused on both layers */
    const int64_t gap[2] = {(int64_t)n0 + 2, (int64_t)n0 + 5}, back[1] = {(int64_t)n0 + 4};
    for (size_t l = 0; l < L; l++)
        assert_int_equal(
            kvz_cache_append_at(c, l, 2, all.k + (n0 + 1) * H * D, all.v + (n0 + 1) * H * D, H * D, D, gap),
            KVZ_OK);
    assert_int_equal(kvz_cache_next_position(c, 0, &p), KVZ_OK);
    assert_int_equal(p, (int64_t)n0 + 6);
    kvz_attend_args a2 = attend_args(1, q + (n0 + 2) * H * G * D, out1);
    assert_int_equal(kvz_cache_attend(c, 0, &a2), KVZ_OK);
    expect_window(&all, n0 + 3, 1, w[0], q + (n0 + 2) * H * G * D, want);
    tu_assert_close(out1, want, H * G * D, tu_tol(dt), 0, "windowed layer after positions with gaps");
    for (size_t l = 0; l < L; l++)
        assert_int_equal(kvz_cache_append_at(c, l, 1, all.k, all.v, H * D, D, back), KVZ_ERR_INVALID_ARG);

    /* a clone keeps the windows */
    kvz_cache *cl = NULL;
    assert_int_equal(kvz_cache_clone(c, &cl), KVZ_OK);
    size_t wc;
    assert_int_equal(kvz_cache_layer_window(cl, 0, &wc), KVZ_OK);
    assert_int_equal(wc, w[0]);
    kvz_cache_destroy(cl);

    drop(&before), drop(&after), drop(&pre), drop(&post);
    free(out), free(out1), free(want), free(q), free_tokens(&all);
    kvz_cache_destroy(c);
}

/* The config of the first release (no layer_window field) is accepted, with no windows; a
 * smaller one and bad arguments of the getter are refused. */
static void test_window_config(void **state)
{
    (void)state;
    const size_t w[L] = {5, 0};
    kvz_cache_config cfg = {offsetof(kvz_cache_config, layer_window), L, H, D, KVZ_DTYPE_F32, 0, w};
    kvz_cache *c = NULL;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK); /* layer_window lies past its size: unread */
    size_t got = 99;
    assert_int_equal(kvz_cache_layer_window(c, 0, &got), KVZ_OK);
    assert_int_equal(got, 0);
    assert_int_equal(kvz_cache_layer_window(c, L, &got), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_cache_layer_window(c, 0, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_cache_layer_window(NULL, 0, &got), KVZ_ERR_NULL);
    kvz_cache_destroy(c);
    cfg.struct_size = offsetof(kvz_cache_config, layer_window) - 1;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_ERR_INVALID_ARG);
    cfg.struct_size = sizeof cfg;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    assert_int_equal(kvz_cache_layer_window(c, 0, &got), KVZ_OK);
    assert_int_equal(got, 5);
    kvz_cache_destroy(c);
    /* a window longer than anything appended, up to the largest size_t: as a global layer */
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 60);
    const size_t huge[L] = {(size_t)-1, 400};
    c = make_windowed(KVZ_DTYPE_F32, huge);
    tokens all = make_tokens(&r, 301, KVZ_DTYPE_F32);
    float *q = queries(&r, 301);
    append_part(c, &all, 0, 300);
    append_part(c, &all, 300, 1);
    const size_t none[L] = {0, 0};
    check_layers(c, &all, 301, 1, none, q, KVZ_DTYPE_F32, "windows past the first token");
    free_tokens(&all), free(q);
    kvz_cache_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_prefill),
        cmocka_unit_test(test_compact_truncate_retain),
        cmocka_unit_test(test_shared_queries),
        cmocka_unit_test(test_query_equals_append),
        cmocka_unit_test(test_scoring_through_cache),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_append_at),
        cmocka_unit_test(test_clone),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_window_stream),
        cmocka_unit_test(test_window_memory),
        cmocka_unit_test(test_window_truncate_query_compact),
        cmocka_unit_test(test_window_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
