/* FastKV prefill on stories260K: nothing changes when nothing is evicted, kept rows and the
 * TSP set equal those computed here from the naive fp64 reference's attention probabilities
 * (up to near ties), logits and decode steps agree with the reference, the proportional
 * budgets follow Python's arithmetic, and the edge cases and guards of spec/fastkv.md §2.5,
 * §9.2 hold. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/fastkv.h"
#include "model/generate.h"
#include "ref_llama.h"
#include "testutil.h"

static const char *path; /* the shared stories260K model */
#define NEED_MODEL() TU_NEED_SHARED(path, TU_STORIES)

/* Scores closer than this to the selection threshold may flip between the fp32 library and
 * the fp64 reference (window scores are sums of probabilities, O(0.01..10)). */
#define TIE_TOL 2e-5

enum { N = 100, MAXL = 8 };

static kvz_model *load(void)
{
    kvz_model *m = NULL;
    const kvz_model_opts o = {.bf16_weights = 0};
    assert_int_equal(kvz_model_load(path, &o, &m), KVZ_OK);
    assert_true(m->hp.n_layers <= MAXL);
    return m;
}

/* A prompt the model finds natural (so attention has structure, not noise): BOS and a story
 * sampled at temperature 1 from a seeded generator. */
static void story_seeded(kvz_model *m, int32_t *ids, size_t n, uint64_t seed)
{
    kvz_cache *c;
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
    float *lg = tu_malloc(m->hp.n_vocab * 4);
    ids[0] = 1;
    assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){c, NULL}, ids, 1, 0, lg), KVZ_OK);
    kvz_gen_opts g = {.max_tokens = n - 1, .temperature = 1.0f, .seed = seed};
    size_t got = 0;
    assert_int_equal(kvz_model_generate(m, (kvz_kv_target){c, NULL}, lg, &g, ids + 1, &got), KVZ_OK);
    assert_int_equal(got, n - 1);
    free(lg);
    kvz_cache_destroy(c);
}

static void story(kvz_model *m, int32_t *ids, size_t n) { story_seeded(m, ids, n, tu_seed()); }

static kvz_fastkv_opts base_opts(void)
{
    kvz_fastkv_opts o;
    kvz_fastkv_defaults(&o);
    o.tsp_layer = 2, o.tsp_len = 60, o.budget = 40, o.window = 8, o.kernel = 7;
    return o;
}

typedef struct run {
    kvz_cache *c;
    float *logits;
    size_t tokens[MAXL], budget[MAXL], kept[MAXL];
    int64_t P[N + 16];
    kvz_fastkv_stats st;
} run;

static void run_fastkv(kvz_model *m, const int32_t *ids, size_t n, const kvz_fastkv_opts *o, kvz_dtype dt,
                       run *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(kvz_model_cache_create(m, dt, &r->c), KVZ_OK);
    r->logits = tu_malloc(m->hp.n_vocab * 4);
    r->st =
        (kvz_fastkv_stats){.tokens = r->tokens, .budget = r->budget, .kept = r->kept, .tsp_positions = r->P};
    const kvz_status s = kvz_fastkv_prefill(m, r->c, ids, n, o, r->logits, &r->st);
    if (s != KVZ_OK)
        fprintf(stderr, "kvz_fastkv_prefill: %s\n", kvz_last_error());
    assert_int_equal(s, KVZ_OK);
}

static void run_free(run *r)
{
    kvz_cache_destroy(r->c);
    free(r->logits);
}

static size_t seg_len(const kvz_cache *c, size_t l, size_t h)
{
    size_t n;
    assert_int_equal(kvz_cache_length(c, l, h, &n), KVZ_OK);
    return n;
}

static const int64_t *seg_pos(const kvz_cache *c, size_t l, size_t h)
{
    const int64_t *p;
    assert_int_equal(kvz_cache_positions(c, l, h, &p), KVZ_OK);
    return p;
}

/* ---- the reference side: scores, pooling and top-k written out naively ---- */

/* Window scores of layer l from the reference probabilities (attn laid out by original index
 * over n_all tokens): the layer's tokens are live[0..cnt), s[h][jj] for jj < cnt - W. */
static void ref_scores(const double *attn, size_t l, size_t Hq, size_t Hkv, size_t n_all, const size_t *live,
                       size_t cnt, size_t W, size_t K, kvz_pool pool, double *s)
{
    const size_t G = Hq / Hkv, ns = cnt - W;
    double *a = tu_malloc(ns * 8);
    memset(s, 0, Hkv * ns * 8);
    for (size_t qh = 0; qh < Hq; qh++) {
        for (size_t jj = 0; jj < ns; jj++) {
            a[jj] = 0;
            for (size_t r = 0; r < W; r++)
                a[jj] += attn[((l * Hq + qh) * n_all + live[cnt - W + r]) * n_all + live[jj]];
        }
        for (size_t jj = 0; jj < ns; jj++) {
            double v = pool == KVZ_POOL_AVG ? 0 : -INFINITY;
            for (ptrdiff_t mm = (ptrdiff_t)jj - (ptrdiff_t)(K / 2); mm <= (ptrdiff_t)(jj + K / 2); mm++) {
                if (mm < 0 || mm >= (ptrdiff_t)ns)
                    continue; /* avg: zero padding; max: in-range neighbours only */
                v = pool == KVZ_POOL_AVG ? v + a[mm] : fmax(v, a[mm]);
            }
            s[(qh / G) * ns + jj] += pool == KVZ_POOL_AVG ? v / (double)K : v;
        }
    }
    free(a);
}

/* in[j] = 1 for the k largest of s[0..n) (ties: lower index); returns the k-th largest value. */
static double ref_topk(const double *s, size_t n, size_t k, uint8_t *in)
{
    memset(in, 0, n);
    double kth = INFINITY;
    for (size_t c = 0; c < k && c < n; c++) {
        size_t best = SIZE_MAX;
        for (size_t j = 0; j < n; j++)
            if (!in[j] && (best == SIZE_MAX || s[j] > s[best]))
                best = j;
        in[best] = 1;
        kth = s[best];
    }
    return kth;
}

/* The library's choice got[] against the reference's want[] over n candidates: the same count,
 * and every difference within TIE_TOL of the reference threshold. Returns the differences. */
static size_t same_up_to_ties(const uint8_t *got, const uint8_t *want, const double *s, size_t n, double kth,
                              const char *what)
{
    size_t ng = 0, nw = 0, diff = 0;
    for (size_t j = 0; j < n; j++) {
        ng += got[j] != 0, nw += want[j] != 0;
        if (!got[j] != !want[j]) {
            diff++;
            if (fabs(s[j] - kth) > TIE_TOL) {
                fprintf(stderr, "%s: index %zu %s by the library, score %.9g, threshold %.9g\n", what, j,
                        got[j] ? "kept" : "dropped", s[j], kth);
                fail();
            }
        }
    }
    assert_int_equal(ng, nw);
    return diff;
}

/* The whole check of one FastKV run against the reference: per (layer, head) kept rows, the
 * TSP set, the final logits. */
static void check_vs_reference(kvz_model *m, ref_llama *ref, const int32_t *ids, size_t n,
                               const kvz_fastkv_opts *o, run *r)
{
    const size_t L = m->hp.n_layers, Hq = m->hp.n_head, Hkv = m->hp.n_head_kv, V = m->hp.n_vocab;
    const size_t W = o->window, B = o->budget, T = o->tsp_len, t = o->tsp_layer;
    double *attn = tu_malloc(L * Hq * n * n * 8), *out = tu_malloc(n * V * 8), *s = tu_malloc(Hkv * n * 8);
    size_t *live = tu_malloc(n * sizeof *live);
    uint8_t *want = tu_malloc(n), *got = tu_malloc(n);
    int64_t *inv = tu_malloc(n * sizeof *inv);
    size_t ties = 0;
    /* phase 1: layers <= t see every token whatever is selected later */
    ref_llama_forward_tsp(ref, ids, n, n, SIZE_MAX, NULL, 0, NULL, out, attn);
    size_t cnt = n;
    for (size_t i = 0; i < n; i++)
        live[i] = i;
    for (size_t l = 0; l < L; l++) {
        if (l == t + 1) { /* phase 2 on the library's TSP set, checked against the reference's below */
            assert_int_equal(r->st.tsp_count, T);
            for (size_t i = 0; i < T; i++)
                live[i] = (size_t)r->P[i];
            cnt = T;
            ref_llama_forward_tsp(ref, ids, n, n, t, live, T, NULL, out, attn);
        }
        assert_int_equal(r->tokens[l], cnt);
        const size_t lw = kvz_hparams_window(&m->hp, l);
        if (lw) { /* a windowed layer: uncompressed, its last tokens, at least its window of them */
            for (size_t h = 0; h < Hkv; h++) {
                const size_t len = seg_len(r->c, l, h);
                assert_int_equal(len, r->kept[l]);
                assert_true(len >= (cnt < lw ? cnt : lw) && len <= cnt);
                const int64_t *p = seg_pos(r->c, l, h);
                for (size_t i = 0; i < len; i++)
                    assert_int_equal(p[i], (int64_t)live[cnt - len + i]);
            }
            continue;
        }
        const size_t ns = cnt - W, keep_n = B < cnt ? B : cnt;
        ref_scores(attn, l, Hq, Hkv, n, live, cnt, W, o->kernel, o->pool, s);
        for (size_t i = 0; i < n; i++)
            inv[i] = -1;
        for (size_t i = 0; i < cnt; i++)
            inv[live[i]] = (int64_t)i;
        for (size_t h = 0; h < Hkv; h++) {
            char what[64];
            snprintf(what, sizeof what, "layer %zu head %zu", l, h);
            assert_int_equal(seg_len(r->c, l, h), keep_n);
            const int64_t *p = seg_pos(r->c, l, h);
            memset(got, 0, n);
            for (size_t i = 0; i < keep_n; i++) {
                assert_true(p[i] >= 0 && p[i] < (int64_t)n && inv[p[i]] >= 0); /* a token of this layer */
                if (i)
                    assert_true(p[i] > p[i - 1]);
                got[inv[p[i]]] = 1;
            }
            for (size_t i = ns; i < cnt; i++) /* the window is always there */
                assert_true(got[i]);
            const double kth = ref_topk(s + h * ns, ns, keep_n - W, want);
            ties += same_up_to_ties(got, want, s + h * ns, ns, kth, what);
        }
        if (l == t) { /* TSP: u = the sum over heads, top (T - W) plus the window */
            double *u = tu_calloc(ns, 8);
            for (size_t h = 0; h < Hkv; h++)
                for (size_t j = 0; j < ns; j++)
                    u[j] += s[h * ns + j];
            const double kth = ref_topk(u, ns, T - W, want);
            memset(got, 0, n);
            for (size_t i = 0; i < T; i++) {
                if (i)
                    assert_true(r->P[i] > r->P[i - 1]);
                if (i >= T - W)
                    assert_int_equal(r->P[i], (int64_t)(n - T + i)); /* the window ends the set */
                else
                    got[r->P[i]] = 1;
            }
            ties += same_up_to_ties(got, want, u, ns, kth, "TSP set");
            free(u);
        }
    }
    if (ties)
        fprintf(stderr, "note: %zu selections differ from the reference at near ties\n", ties);
    double scale = 0;
    for (size_t j = 0; j < V; j++)
        scale = fmax(scale, fabs(out[(n - 1) * V + j]));
    tu_check_close(r->logits, out + (n - 1) * V, V, 1e-4 * scale, 1e-4, "last-token logits");
    free(attn), free(out), free(s), free(live), free(want), free(got), free(inv);
}

/* (a) TSP off and a budget >= n: bit for bit the plain prefill (logits, rows, positions). The
 * same with TSP on and T >= n; and with TSP off, B < n the logits still do not change (§2.1). */
static void test_nothing_evicted(void **state)
{
    (void)state;
    NEED_MODEL();
    kvz_model *m = load();
    const size_t L = m->hp.n_layers, Hkv = m->hp.n_head_kv, V = m->hp.n_vocab, d = m->hp.head_dim;
    int32_t ids[N];
    story(m, ids, N);
    kvz_cache *plain;
    float *want = tu_malloc(V * 4);
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &plain), KVZ_OK);
    assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){plain, NULL}, ids, N, 0, want), KVZ_OK);
    for (int variant = 0; variant < 4; variant++) {
        kvz_fastkv_opts o = base_opts();
        o.tsp = variant >= 2;
        o.budget = variant == 0 ? N : variant == 3 ? 40 : N + 20;
        o.tsp_len = variant == 2 ? N : 0;
        if (variant == 3)
            o.tsp = 0;
        run r;
        run_fastkv(m, ids, N, &o, KVZ_DTYPE_F32, &r);
        assert_memory_equal(r.logits, want, V * 4);
        assert_int_equal(r.st.tsp_count, 0);
        for (size_t l = 0; l < L; l++) {
            int64_t pa, pb;
            assert_int_equal(kvz_cache_next_position(plain, l, &pa), KVZ_OK);
            assert_int_equal(kvz_cache_next_position(r.c, l, &pb), KVZ_OK);
            assert_int_equal(pa, pb);
            assert_int_equal(r.tokens[l], N);
            assert_int_equal(r.kept[l], variant == 3 ? 40 : N);
            for (size_t h = 0; h < Hkv; h++) {
                if (variant == 3) {
                    assert_int_equal(seg_len(r.c, l, h), 40);
                    continue;
                }
                assert_int_equal(seg_len(r.c, l, h), N);
                assert_memory_equal(seg_pos(r.c, l, h), seg_pos(plain, l, h), N * sizeof(int64_t));
                const void *ka, *va, *kb, *vb;
                assert_int_equal(kvz_cache_rows(plain, l, h, &ka, &va), KVZ_OK);
                assert_int_equal(kvz_cache_rows(r.c, l, h, &kb, &vb), KVZ_OK);
                assert_memory_equal(ka, kb, N * d * 4);
                assert_memory_equal(va, vb, N * d * 4);
            }
        }
        run_free(&r);
    }
    free(want);
    kvz_cache_destroy(plain);
    kvz_model_free(m);
}

/* (b) Kept rows per (layer, head), the TSP set and the logits against the reference, both
 * poolings, and chunked sub-steps inside the layers. */
static void test_vs_reference(void **state)
{
    (void)state;
    NEED_MODEL();
    kvz_model *m = load();
    ref_llama *ref = ref_llama_open(path);
    assert_non_null(ref);
    int32_t ids[N];
    story(m, ids, N);
    const struct {
        kvz_pool pool;
        size_t kernel, budget, tsp_len, tsp_layer, chunk;
    } cases[] = {
        {KVZ_POOL_AVG, 7, 40, 60, 2, 0},  /* deeper layers compress again: T > B */
        {KVZ_POOL_MAX, 7, 40, 60, 2, 0},  /* ties are common under maxpool: the same rule on both sides */
        {KVZ_POOL_AVG, 5, 24, 70, 1, 13}, /* chunked layers, another kernel and TSP layer */
        {KVZ_POOL_AVG, 3, 60, 30, 3, 0},  /* B > T: deeper layers keep all T (§2.5) */
        {KVZ_POOL_MAX, 1, 50, 50, 0, 0},  /* kernel 1 (no pooling), TSP at layer 0, T = B */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        kvz_fastkv_opts o = base_opts();
        o.pool = cases[ci].pool, o.kernel = cases[ci].kernel, o.budget = cases[ci].budget;
        o.tsp_len = cases[ci].tsp_len, o.tsp_layer = cases[ci].tsp_layer, o.chunk = cases[ci].chunk;
        run r;
        run_fastkv(m, ids, N, &o, KVZ_DTYPE_F32, &r);
        assert_int_equal(r.st.tsp_layer, o.tsp_layer);
        check_vs_reference(m, ref, ids, N, &o, &r);
        run_free(&r);
    }
    ref_llama_close(ref);
    kvz_model_free(m);
}

/* (c) Proportional budgets: Python's int(n * rate) on doubles, the deeper layers' rate
 * retain / tsp as a double first. The cases are picked where other arithmetic would differ:
 * 100 * 0.57 = 56.99... (exactly 57); 60 * (0.57 / 0.6) = 57 but 60 * 0.57 / 0.6 = 56.99...;
 * 0.15 / 0.2 = 0.7499..., so 20 * (0.15 / 0.2) = 14.99... (exactly, or product first: 15). */
static void test_proportional(void **state)
{
    (void)state;
    NEED_MODEL();
    kvz_model *m = load();
    const size_t L = m->hp.n_layers;
    int32_t ids[N];
    story(m, ids, N);
    const struct {
        double retain, tsp;
        size_t B, T, B_deep;
    } cases[] = {{0.57, 0.6, 56, 60, 57}, {0.15, 0.2, 15, 20, 14}, {0.3, 0.7, 30, 70, 30}};
    for (size_t ci = 0; ci < 3; ci++) {
        kvz_fastkv_opts o;
        kvz_fastkv_defaults_rate(&o);
        o.tsp_layer = 2, o.retain_rate = cases[ci].retain, o.tsp_rate = cases[ci].tsp;
        /* what the test computes the Python way agrees with the table */
        assert_int_equal((size_t)((double)N * o.retain_rate), cases[ci].B);
        assert_int_equal((size_t)((double)N * o.tsp_rate), cases[ci].T);
        assert_int_equal((size_t)((double)cases[ci].T * (o.retain_rate / o.tsp_rate)), cases[ci].B_deep);
        run r;
        run_fastkv(m, ids, N, &o, KVZ_DTYPE_F32, &r);
        assert_int_equal(r.st.tsp_count, cases[ci].T);
        for (size_t l = 0; l < L; l++) {
            const int deep = l > 2;
            assert_int_equal(r.tokens[l], deep ? cases[ci].T : N);
            assert_int_equal(r.budget[l], deep ? cases[ci].B_deep : cases[ci].B);
            assert_int_equal(r.kept[l], deep ? cases[ci].B_deep : cases[ci].B);
            for (size_t h = 0; h < m->hp.n_head_kv; h++)
                assert_int_equal(seg_len(r.c, l, h), r.kept[l]);
        }
        run_free(&r);
    }
    /* spec §6.2 item 7 as arithmetic: L = 100000 gives T = 20000 and B = 10000 everywhere */
    assert_int_equal((size_t)(100000.0 * 0.2), 20000);
    assert_int_equal((size_t)(20000.0 * (0.1 / 0.2)), 10000);
    kvz_model_free(m);
}

/* Runs one setting and checks the per-layer token and kept counts and whether TSP fired. */
static void expect_counts(kvz_model *m, const int32_t *ids, size_t n, const kvz_fastkv_opts *o,
                          size_t tsp_count, size_t kept_upto_t, size_t kept_deep)
{
    run r;
    run_fastkv(m, ids, n, o, KVZ_DTYPE_F32, &r);
    assert_int_equal(r.st.tsp_count, tsp_count);
    for (size_t l = 0; l < m->hp.n_layers; l++) {
        const int deep = l > r.st.tsp_layer;
        assert_int_equal(r.tokens[l], deep && tsp_count ? tsp_count : n);
        assert_int_equal(r.kept[l], deep ? kept_deep : kept_upto_t);
        for (size_t h = 0; h < m->hp.n_head_kv; h++) {
            assert_int_equal(seg_len(r.c, l, h), r.kept[l]);
            const int64_t *p = seg_pos(r.c, l, h);
            const size_t w = o->window < r.kept[l] ? o->window : r.kept[l];
            for (size_t i = 0; i < w; i++) /* the window ends every segment */
                assert_int_equal(p[r.kept[l] - w + i], (int64_t)(n - w + i));
        }
    }
    /* without TSP the prompt's logits never change: compression acts after each layer ran */
    if (!tsp_count) {
        kvz_cache *c;
        float *want = tu_malloc(m->hp.n_vocab * 4);
        assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
        assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){c, NULL}, ids, n, 0, want), KVZ_OK);
        assert_memory_equal(r.logits, want, m->hp.n_vocab * 4);
        kvz_cache_destroy(c);
        free(want);
    }
    run_free(&r);
}

/* (c) §2.5 and §9.2 item 3: n < B: neither compression nor TSP; n <= T: compression only;
 * n == B: everything kept, TSP still fires; proportional guards for B - W <= 0, T - W <= 0. */
static void test_edge_cases(void **state)
{
    (void)state;
    NEED_MODEL();
    kvz_model *m = load();
    int32_t ids[N];
    story(m, ids, N);
    kvz_fastkv_opts o = base_opts(); /* W 8, t 2 */
    o.budget = 120, o.tsp_len = 50;  /* n < B, although n > T */
    expect_counts(m, ids, N, &o, 0, N, N);
    o.budget = 40, o.tsp_len = N; /* n == T: no TSP */
    expect_counts(m, ids, N, &o, 0, 40, 40);
    o.tsp_len = N + 50; /* n < T */
    expect_counts(m, ids, N, &o, 0, 40, 40);
    o.budget = N, o.tsp_len = 50; /* n == B: all kept, TSP fires; deeper layers have T < B */
    expect_counts(m, ids, N, &o, 50, N, 50);
    o.budget = 40, o.tsp_len = 9; /* the smallest T: one token besides the window */
    expect_counts(m, ids, N, &o, 9, 40, 9);
    o.budget = 40;
    expect_counts(m, ids, 5, &o, 0, 5, 5); /* fewer tokens than the window */
    expect_counts(m, ids, 1, &o, 0, 1, 1);
    kvz_fastkv_defaults_rate(&o);
    o.tsp_layer = 2;
    /* retain 0.1: n = 85 and 89 give B = 8 = W (top-0 in the reference): kept whole, no TSP;
       the deeper layers still use their rate 0.1 / 0.2 on all n tokens (§2.7, as the reference
       sets the rates per layer): floor(85 * 0.5) = 42, floor(89 * 0.5) = 44 */
    expect_counts(m, ids, 85, &o, 0, 85, 42);
    expect_counts(m, ids, 89, &o, 0, 89, 44);
    /* n = 90: B = 9, T = 18; deeper layers floor(18 * 0.5) = 9 */
    expect_counts(m, ids, 90, &o, 18, 9, 9);
    /* tsp_rate 0.05: T = 5 <= W, so compression without TSP; the deeper layers' rate 0.1 / 0.05
       = 2 asks for 200 of 100 rows: kept whole */
    o.tsp_rate = 0.05;
    expect_counts(m, ids, N, &o, 0, 10, N);
    /* TSP off in proportional mode: retain_rate in every layer */
    o.tsp = 0;
    expect_counts(m, ids, N, &o, 0, 10, 10);
    kvz_model_free(m);
}

/* (c) Average and max pooling choose differently on the same prompt. */
static void test_pooling_differs(void **state)
{
    (void)state;
    NEED_MODEL();
    kvz_model *m = load();
    int32_t ids[N];
    story(m, ids, N);
    kvz_fastkv_opts o = base_opts();
    run a, b;
    run_fastkv(m, ids, N, &o, KVZ_DTYPE_F32, &a);
    o.pool = KVZ_POOL_MAX;
    run_fastkv(m, ids, N, &o, KVZ_DTYPE_F32, &b);
    size_t differ = 0;
    for (size_t l = 0; l <= o.tsp_layer; l++) /* the same tokens entered these layers */
        for (size_t h = 0; h < m->hp.n_head_kv; h++)
            differ += memcmp(seg_pos(a.c, l, h), seg_pos(b.c, l, h), 40 * sizeof(int64_t)) != 0;
    fprintf(stderr, "avg vs max pooling: %zu of %zu (layer, head) selections differ; TSP sets %s\n", differ,
            (o.tsp_layer + 1) * m->hp.n_head_kv, memcmp(a.P, b.P, 60 * 8) ? "differ" : "agree");
    assert_true(differ > 0);
    run_free(&a), run_free(&b);
    kvz_model_free(m);
}

/* Decodes S greedy tokens after a FastKV prefill (r, over ids[0..N)), writing them to ids[N..N+S),
 * each step at the next position, and checks the prefill's and every step's logits against the
 * reference's forward over the rows the prefill kept, past the TSP set when TSP fired. */
static void decode_vs_reference(kvz_model *m, ref_llama *ref, int32_t *ids, size_t S, run *r)
{
    const size_t L = m->hp.n_layers, Hkv = m->hp.n_head_kv, V = m->hp.n_vocab, NA = N + S;
    /* the keep mask of the reference: what each segment holds after the prefill */
    uint8_t *keep = tu_calloc(L * Hkv * NA, 1);
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < Hkv; h++) {
            const int64_t *p = seg_pos(r->c, l, h);
            for (size_t i = 0; i < seg_len(r->c, l, h); i++)
                keep[(l * Hkv + h) * NA + (size_t)p[i]] = 1;
        }
    float *lg = tu_malloc(S * V * 4);
    int32_t next = kvz_sample(r->logits, V, 0, NULL);
    for (size_t s = 0; s < S; s++) {
        int64_t np;
        assert_int_equal(kvz_cache_next_position(r->c, L - 1, &np), KVZ_OK);
        assert_int_equal(np, (int64_t)(N + s));
        ids[N + s] = next;
        assert_int_equal(kvz_model_step(m, (kvz_kv_target){r->c, NULL}, next, lg + s * V), KVZ_OK);
        next = kvz_sample(lg + s * V, V, 0, NULL);
    }
    size_t *sel = tu_malloc(NA * sizeof *sel), m_sel = 0;
    for (size_t i = 0; i < r->st.tsp_count; i++)
        sel[m_sel++] = (size_t)r->P[i];
    for (size_t s = 0; r->st.tsp_count && s < S; s++)
        sel[m_sel++] = N + s;
    double *out = tu_malloc(NA * V * 8);
    ref_llama_forward_tsp(ref, ids, NA, N, r->st.tsp_layer, r->st.tsp_count ? sel : NULL, m_sel, keep, out,
                          NULL);
    for (size_t s = 0; s <= S; s++) {
        const float *got = s ? lg + (s - 1) * V : r->logits;
        const double *want = out + (N - 1 + s) * V;
        double scale = 0;
        for (size_t j = 0; j < V; j++)
            scale = fmax(scale, fabs(want[j]));
        tu_check_close(got, want, V, 1e-4 * scale, 1e-4, s ? "decode logits" : "prefill logits");
    }
    free(out), free(sel), free(lg), free(keep);
}

/* (d) Decoding after a FastKV prefill continues at position n, appends to every layer, and its
 * logits equal the reference's decode over the kept rows (TSP on and off; f32 cache). A bf16
 * cache runs the same path on converted keys. */
static void test_decode_after(void **state)
{
    (void)state;
    NEED_MODEL();
    enum { S = 6 };
    kvz_model *m = load();
    ref_llama *ref = ref_llama_open(path);
    assert_non_null(ref);
    const size_t L = m->hp.n_layers, Hkv = m->hp.n_head_kv;
    int32_t ids[N + S];
    story(m, ids, N);
    for (int tsp = 1; tsp >= 0; tsp--) {
        kvz_fastkv_opts o = base_opts();
        o.tsp = tsp;
        run r;
        run_fastkv(m, ids, N, &o, KVZ_DTYPE_F32, &r);
        decode_vs_reference(m, ref, ids, S, &r);
        for (size_t l = 0; l < L; l++)
            for (size_t h = 0; h < Hkv; h++) {
                const size_t len = seg_len(r.c, l, h);
                assert_int_equal(len, r.kept[l] + S);
                const int64_t *p = seg_pos(r.c, l, h);
                for (size_t s = 0; s < S; s++)
                    assert_int_equal(p[len - S + s], (int64_t)(N + s));
            }
        run_free(&r);
    }
    /* bf16 storage: the same structure (scores are computed on the stored keys) */
    kvz_fastkv_opts o = base_opts();
    run r;
    run_fastkv(m, ids, N, &o, KVZ_DTYPE_BF16, &r);
    assert_int_equal(r.st.tsp_count, 60);
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < Hkv; h++)
            assert_int_equal(seg_len(r.c, l, h), 40);
    assert_int_equal(kvz_model_step(m, (kvz_kv_target){r.c, NULL}, ids[N], r.logits), KVZ_OK);
    run_free(&r);
    ref_llama_close(ref);
    kvz_model_free(m);
}

/* (e) A model with sliding-window layers (stories260K made local in layers 0, 2, 4 with a window
 * of 20, as Gemma 3's pattern with period 2): the middle TSP layer is the global one nearest
 * the middle; the global layers select as the reference's scores say, the windowed ones keep
 * their last tokens, whose window past the TSP layer counts the propagated tokens; the prefill
 * and decode logits against the reference with the same windows. A windowed TSP layer is
 * refused. */
static void test_sliding_window(void **state)
{
    (void)state;
    NEED_MODEL();
    enum { S = 24, WIN = 20 };
    kvz_model *m = load();
    m->hp.swa_window = WIN, m->hp.swa_period = 2, m->hp.rope_base_swa = m->hp.rope_base;
    ref_llama *ref = ref_llama_open(path);
    assert_non_null(ref);
    ref_llama_set_window(ref, WIN, 2);
    const size_t L = m->hp.n_layers;
    assert_int_equal(L, 5);
    int32_t ids[N + S];
    kvz_fastkv_opts o = base_opts();
    o.tsp_layer = KVZ_FASTKV_TSP_MIDDLE, o.tsp_len = 24, o.budget = 20;
    run r;
    /* a story whose last WIN propagated tokens span more than WIN positions: a window counted
       in positions would see fewer of them, so the checks below tell the two apart (the
       model attends mostly nearby, so some stories propagate the last WIN tokens whole) */
    int apart = 0;
    for (uint64_t tries = 0; tries < 32 && !apart; tries++) {
        story_seeded(m, ids, N, tu_seed() + tries);
        run_fastkv(m, ids, N, &o, KVZ_DTYPE_F32, &r);
        assert_int_equal(r.st.tsp_layer, 1); /* n_layers / 2 - 1 = 1, a global layer */
        assert_int_equal(r.st.tsp_count, o.tsp_len);
        if (!(apart = r.P[o.tsp_len - WIN] < (int64_t)(N - WIN)))
            run_free(&r);
    }
    assert_true(apart);
    o.tsp_layer = 1;
    check_vs_reference(m, ref, ids, N, &o, &r);
    /* decode S tokens, more than the window: the windowed layers drop what it no longer sees */
    decode_vs_reference(m, ref, ids, S, &r);
    run_free(&r);
    /* a windowed TSP layer: refused before the cache is touched */
    kvz_cache *c;
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
    o.tsp_layer = 2;
    assert_int_equal(kvz_fastkv_prefill(m, c, ids, N, &o, NULL, NULL), KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "sliding window"));
    int64_t np;
    assert_int_equal(kvz_cache_next_position(c, 0, &np), KVZ_OK);
    assert_int_equal(np, 0);
    kvz_cache_destroy(c);
    ref_llama_close(ref);
    kvz_model_free(m);
}

/* Bad options, ids and caches: a status and a message, the cache untouched. */
static void test_bad_input(void **state)
{
    (void)state;
    NEED_MODEL();
    kvz_model *m = load();
    int32_t ids[N];
    for (size_t i = 0; i < N; i++)
        ids[i] = (int32_t)(1 + i % 300);
    kvz_cache *c;
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
    float *lg = tu_malloc(m->hp.n_vocab * 4);
    const kvz_fastkv_opts good = base_opts();
    kvz_fastkv_opts o;
#define BAD(status, change)                                                                                    \
    do {                                                                                                       \
        o = good;                                                                                              \
        change;                                                                                                \
        assert_int_equal(kvz_fastkv_prefill(m, c, ids, N, &o, lg, NULL), status);                              \
        assert_true(kvz_last_error()[0] != '\0');                                                              \
        int64_t np;                                                                                            \
        assert_int_equal(kvz_cache_next_position(c, 0, &np), KVZ_OK);                                          \
        assert_int_equal(np, 0);                                                                               \
    } while (0)
    BAD(KVZ_ERR_INVALID_ARG, o.kernel = 6);
    BAD(KVZ_ERR_INVALID_ARG, o.kernel = 0);
    BAD(KVZ_ERR_INVALID_ARG, o.window = 0);
    BAD(KVZ_ERR_INVALID_ARG, o.pool = (kvz_pool)7);
    BAD(KVZ_ERR_INVALID_ARG, o.budget = 8);
    BAD(KVZ_ERR_INVALID_ARG, o.tsp_len = 8);
    BAD(KVZ_ERR_INVALID_ARG, o.tsp_layer = m->hp.n_layers);
    BAD(KVZ_ERR_INVALID_ARG, (o.budget = 0, o.retain_rate = 0));
    BAD(KVZ_ERR_INVALID_ARG, (o.budget = 0, o.retain_rate = NAN));
    BAD(KVZ_ERR_INVALID_ARG, (o.budget = 0, o.retain_rate = 1.5));
    BAD(KVZ_ERR_INVALID_ARG, (o.tsp_len = 0, o.tsp_rate = -0.2));
    BAD(KVZ_ERR_INVALID_ARG, (o.budget = 0, o.retain_rate = 0.1)); /* proportional B, absolute T */
    o = good;
    assert_int_equal(kvz_fastkv_prefill(NULL, c, ids, N, &o, lg, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_fastkv_prefill(m, NULL, ids, N, &o, lg, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_fastkv_prefill(m, c, NULL, N, &o, lg, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_fastkv_prefill(m, c, ids, N, NULL, lg, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_fastkv_prefill(m, c, ids, 0, &o, lg, NULL), KVZ_ERR_INVALID_ARG);
    /* the tsp options are not looked at with TSP off */
    o.tsp = 0, o.tsp_len = 3, o.tsp_layer = 99;
    assert_int_equal(kvz_fastkv_prefill(m, c, ids, N, &o, NULL, NULL), KVZ_OK);
    /* a cache that is not empty */
    o = good;
    assert_int_equal(kvz_fastkv_prefill(m, c, ids, N, &o, lg, NULL), KVZ_ERR_STATE);
    kvz_cache_destroy(c);
    /* a cache of another shape */
    const kvz_cache_config cfg = {sizeof cfg,         m->hp.n_layers, m->hp.n_head_kv,
                                  m->hp.head_dim * 2, KVZ_DTYPE_F32,  0, NULL};
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    assert_int_equal(kvz_fastkv_prefill(m, c, ids, N, &o, lg, NULL), KVZ_ERR_INVALID_ARG);
    kvz_cache_destroy(c);
    /* a cache read by a query */
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
    kvz_query *q;
    assert_int_equal(kvz_query_create(c, &q), KVZ_OK);
    assert_int_equal(kvz_fastkv_prefill(m, c, ids, N, &o, lg, NULL), KVZ_ERR_STATE);
    kvz_query_destroy(q);
    /* an id outside the vocabulary */
    ids[7] = (int32_t)m->hp.n_vocab;
    assert_int_equal(kvz_fastkv_prefill(m, c, ids, N, &o, lg, NULL), KVZ_ERR_INVALID_ARG);
    ids[7] = -1;
    assert_int_equal(kvz_fastkv_prefill(m, c, ids, N, &o, lg, NULL), KVZ_ERR_INVALID_ARG);
    int64_t np;
    assert_int_equal(kvz_cache_next_position(c, 0, &np), KVZ_OK);
    assert_int_equal(np, 0);
    kvz_cache_destroy(c);
    /* the defaults: the middle layer (5 layers: 1), and the two code versions' pooling */
    kvz_fastkv_defaults(&o);
    assert_int_equal(o.pool, KVZ_POOL_AVG);
    assert_int_equal(o.budget, 512);
    assert_int_equal(o.tsp_len, 2048);
    kvz_fastkv_defaults_rate(&o);
    assert_int_equal(o.pool, KVZ_POOL_MAX);
    assert_int_equal(o.budget, 0);
    assert_int_equal(o.tsp_len, 0);
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
    kvz_fastkv_stats st = {0};
    for (size_t i = 0; i < N; i++)
        ids[i] = (int32_t)(1 + i % 300);
    assert_int_equal(kvz_fastkv_prefill(m, c, ids, N, &o, lg, &st), KVZ_OK);
    assert_int_equal(st.tsp_layer, 1);
    assert_int_equal(st.tsp_count, 20);
    kvz_cache_destroy(c);
    free(lg);
    kvz_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_evicted), cmocka_unit_test(test_vs_reference),
        cmocka_unit_test(test_proportional),    cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_pooling_differs), cmocka_unit_test(test_decode_after),
        cmocka_unit_test(test_sliding_window),  cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
