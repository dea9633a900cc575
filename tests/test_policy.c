/* kvz_policy_select: every policy against a plain sort-based reference, ties included, and the spec's numbers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct ent {
    float v;
    size_t r, j;
} ent;

static int cmp_ent(const void *a, const void *b) /* value descending, then row, then position */
{
    const ent *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    if (x->r != y->r)
        return x->r < y->r ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

static int prot(size_t j, size_t n, size_t s, size_t w) { return j < s || j + w >= n; }

/* protected plus the best (k - protected) others of one head */
static void ref_topk(const float *sc, size_t n, size_t k, size_t s, size_t w, uint8_t *keep)
{
    ent *e = tu_malloc((n + 1) * sizeof *e);
    size_t m = 0, p = 0;
    for (size_t j = 0; j < n; j++) {
        keep[j] = (uint8_t)prot(j, n, s, w);
        p += keep[j];
        if (!keep[j])
            e[m++] = (ent){sc[j], 0, j};
    }
    qsort(e, m, sizeof *e, cmp_ent);
    for (size_t i = 0; i + p < k && i < m; i++)
        keep[e[i].j] = 1;
    free(e);
}

/* one global selection of k with protected entries first (+inf), strict or exact */
static void ref_global(const float *const *sc, const float *hv, size_t R, size_t n, uint64_t k, int exact,
                       size_t s, size_t w, uint8_t **keep)
{
    ent *e = tu_malloc((R * n + 1) * sizeof *e);
    for (size_t r = 0; r < R; r++)
        for (size_t j = 0; j < n; j++)
            e[r * n + j] = (ent){prot(j, n, s, w) ? INFINITY : (hv ? hv[r] : sc[r][j]), r, j};
    qsort(e, R * n, sizeof *e, cmp_ent);
    for (size_t r = 0; r < R; r++)
        for (size_t j = 0; j < n; j++)
            keep[r][j] = (uint8_t)prot(j, n, s, w);
    if (k >= R * n) {
        for (size_t r = 0; r < R; r++)
            memset(keep[r], 1, n);
    } else if (exact) {
        for (size_t i = 0; i < k; i++)
            keep[e[i].r][e[i].j] = 1;
    } else {
        const float thr = e[k ? k - 1 : 0].v;
        for (size_t i = 0; i < R * n; i++)
            if (e[i].v > thr)
                keep[e[i].r][e[i].j] = 1;
    }
    free(e);
}

typedef struct world {
    size_t L, H, n;
    float **sc;
    float *hs;
    uint8_t **got, **want;
} world;

static world make_world(tu_rng *r, size_t L, size_t H, size_t n, int levels)
{
    world w = {L,
               H,
               n,
               tu_malloc(L * H * sizeof(float *)),
               tu_malloc(L * H * sizeof(float)),
               tu_malloc(L * H * sizeof(uint8_t *)),
               tu_malloc(L * H * sizeof(uint8_t *))};
    for (size_t i = 0; i < L * H; i++) {
        w.sc[i] = tu_malloc(n * sizeof(float) + 4);
        w.got[i] = tu_malloc(n + 1), w.want[i] = tu_malloc(n + 1);
        for (size_t j = 0; j < n; j++) {
            const float v = tu_uniform(r, 0, 1);
            w.sc[i][j] = levels ? floorf(v * (float)levels) / (float)levels : v;
        }
        w.hs[i] = floorf(tu_uniform(r, 0, 1) * 8.0f) / 8.0f;
    }
    return w;
}

static void free_world(world *w)
{
    for (size_t i = 0; i < w->L * w->H; i++)
        free(w->sc[i]), free(w->got[i]), free(w->want[i]);
    free(w->sc), free(w->hs), free(w->got), free(w->want);
}

static kvz_policy_args base_args(const world *w, kvz_policy p)
{
    kvz_policy_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a, a.policy = p, a.n_layers = w->L, a.n_kv_heads = w->H, a.n_tokens = w->n;
    a.scores = (const float *const *)w->sc, a.head_scores = w->hs;
    return a;
}

static void run(const world *w, const kvz_policy_args *a)
{
    size_t kept;
    const kvz_status st = kvz_policy_select(a, w->got, &kept);
    if (st != KVZ_OK)
        fail_msg("%s: %s (%s)", kvz_policy_name(a->policy), kvz_strerror(st), kvz_last_error());
    size_t c = 0;
    for (size_t i = 0; i < w->L * w->H; i++)
        for (size_t j = 0; j < w->n; j++)
            c += w->got[i][j];
    assert_int_equal(kept, c);
}

static void compare(const world *w, const char *what)
{
    for (size_t i = 0; i < w->L * w->H; i++)
        for (size_t j = 0; j < w->n; j++)
            if (w->got[i][j] != w->want[i][j])
                fail_msg("%s: layer %zu head %zu token %zu: keep %d, want %d", what, i / w->H, i % w->H, j,
                         w->got[i][j], w->want[i][j]);
}

static void test_per_head_policies(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 70);
    const kvz_policy ps[] = {KVZ_POLICY_KVZIP_PAIR_UNIFORM, KVZ_POLICY_FASTKV, KVZ_POLICY_SNAPKV,
                             KVZ_POLICY_H2O};
    for (int t = 0; t < 12; t++) {
        world w = make_world(&r, 3, 4, tu_range(&r, 1, 300), t % 2 ? 16 : 0);
        for (size_t p = 0; p < 4; p++) {
            kvz_policy_args a = base_args(&w, ps[p]);
            a.ratio = tu_uniform(&r, 0, 1.2f);
            a.budget = t % 3 == 0 ? tu_range(&r, 0, w.n + 5) : 0;
            a.sinks = t % 4 == 1 ? tu_range(&r, 0, 6) : 0;
            a.recent = t % 4 >= 2 ? tu_range(&r, 0, 10) : 0;
            run(&w, &a);
            const size_t B = a.budget ? a.budget : (size_t)((double)w.n * a.ratio);
            for (size_t i = 0; i < w.L * w.H; i++)
                ref_topk(w.sc[i], w.n, B < w.n ? B : w.n, a.sinks, a.recent, w.want[i]);
            compare(&w, kvz_policy_name(ps[p]));
        }
        free_world(&w);
    }
}

static void test_global_policies(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 71);
    for (int t = 0; t < 16; t++) {
        world w = make_world(&r, 2, 3, tu_range(&r, 1, 200), t % 2 ? 8 : 0);
        for (int head = 0; head < 2; head++)
            for (int exact = 0; exact < 2; exact++) {
                kvz_policy_args a = base_args(&w, head ? KVZ_POLICY_KVZIP_HEAD : KVZ_POLICY_KVZIP_PAIR);
                a.ratio = t == 0 ? 1.0 : tu_uniform(&r, 0, 1);
                a.mode = exact ? KVZ_SELECT_EXACT : KVZ_SELECT_STRICT;
                a.sinks = t % 3 == 1 ? 2 : 0;
                a.recent = t % 3 == 2 ? 3 : 0;
                run(&w, &a);
                const uint64_t N = (uint64_t)w.L * w.H * w.n;
                const uint64_t k = a.ratio >= 1.0 ? N : (uint64_t)((double)N * a.ratio);
                ref_global((const float *const *)w.sc, head ? w.hs : NULL, w.L * w.H, w.n, k, exact, a.sinks,
                           a.recent, w.want);
                compare(&w, head ? "kvzip-head" : "kvzip-pair");
            }
        free_world(&w);
    }
}

/* spec kvzip.md 9.6: head mode keeps whole heads (no protection, strict rule). */
static void test_kvzip_head_whole_heads(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 72);
    world w = make_world(&r, 2, 4, 50, 0);
    for (size_t i = 0; i < 8; i++)
        w.hs[i] = (float)i / 8.0f; /* distinct */
    kvz_policy_args a = base_args(&w, KVZ_POLICY_KVZIP_HEAD);
    a.ratio = 0.5;
    run(&w, &a);
    for (size_t i = 0; i < 8; i++) {
        size_t c = 0;
        for (size_t j = 0; j < 50; j++)
            c += w.got[i][j];
        assert_true(c == 0 || c == 50);
        assert_int_equal(c == 50, i >= 5); /* rank int(400*0.5)-1 = 199 falls in head 4: strictly above it */
    }
    free_world(&w);
}

/* spec fastkv.md 6.1: B = 6, W = 2, the group-summed scores of kv0 and kv1. */
static void test_fastkv_spec_example(void **state)
{
    (void)state;
    float s0[12] = {.32f, .33f, .04f, .1267f, .2067f, .2033f, .1067f, .1667f, .37f, .36f, 0, 0};
    float s1[12] = {.11f, .46f, .3767f, .3733f, .0367f, .0633f, .1267f, .1667f, .1367f, .0667f, 0, 0};
    const float *sc[2] = {s0, s1};
    uint8_t k0[12], k1[12];
    uint8_t *keep[2] = {k0, k1};
    kvz_policy_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a, a.policy = KVZ_POLICY_FASTKV, a.n_layers = 1, a.n_kv_heads = 2, a.n_tokens = 12;
    a.scores = sc, a.budget = 6, a.recent = 2;
    assert_int_equal(kvz_policy_select(&a, keep, NULL), KVZ_OK);
    const int w0[12] = {1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1}, w1[12] = {0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1};
    for (int j = 0; j < 12; j++) {
        assert_int_equal(k0[j], w0[j]);
        assert_int_equal(k1[j], w1[j]);
    }
    /* n <= B: nothing to compress */
    a.budget = 12;
    assert_int_equal(kvz_policy_select(&a, keep, NULL), KVZ_OK);
    for (int j = 0; j < 12; j++)
        assert_true(k0[j] && k1[j]);
}

static void test_pyramid_and_adakv(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 73);
    /* PyramidKV caps for L = 4, W = 8, B = 72 (b = 64), n = 1000: min 3, max 125, step 40 */
    world w = make_world(&r, 4, 2, 1000, 0);
    kvz_policy_args a = base_args(&w, KVZ_POLICY_PYRAMIDKV);
    a.budget = 72, a.recent = 8;
    run(&w, &a);
    const size_t caps[4] = {125 + 8, 85 + 8, 45 + 8, 5 + 8}; /* max - l*step + W */
    for (size_t l = 0; l < 4; l++)
        for (size_t h = 0; h < 2; h++) {
            ref_topk(w.sc[l * 2 + h], 1000, caps[l], 0, 8, w.want[l * 2 + h]);
        }
    compare(&w, "pyramidkv");
    free_world(&w);
    /* AdaKV against a reference of its allocation */
    for (int t = 0; t < 8; t++) {
        world v = make_world(&r, 2, 4, tu_range(&r, 20, 300), t % 2 ? 16 : 0);
        kvz_policy_args b = base_args(&v, KVZ_POLICY_ADAKV);
        b.budget = tu_range(&r, 9, 40), b.recent = 8;
        run(&v, &b);
        for (size_t l = 0; l < 2; l++) {
            const size_t n = v.n, m = n - 8, bb = b.budget - 8;
            if (b.budget >= n) {
                for (size_t h = 0; h < 4; h++)
                    memset(v.want[l * 4 + h], 1, n);
                continue;
            }
            ent *e = tu_malloc(4 * m * sizeof *e);
            for (size_t h = 0; h < 4; h++)
                for (size_t j = 0; j < m; j++)
                    e[h * m + j] = (ent){v.sc[l * 4 + h][j], h, j};
            qsort(e, 4 * m, sizeof *e, cmp_ent);
            size_t cnt[4] = {0};
            for (size_t i = 0; i < 4 * bb && i < 4 * m; i++)
                cnt[e[i].r]++;
            for (size_t h = 0; h < 4; h++) {
                const size_t cap = (size_t)llround((double)cnt[h] * 0.8 + floor((double)bb * 0.2));
                ref_topk(v.sc[l * 4 + h], n, 8 + cap, 0, 8, v.want[l * 4 + h]);
            }
            free(e);
        }
        compare(&v, "adakv");
        free_world(&v);
    }
}

static void test_streaming_random_full(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 74);
    world w = make_world(&r, 2, 2, 100, 0);
    kvz_policy_args a = base_args(&w, KVZ_POLICY_STREAMING);
    a.scores = NULL, a.budget = 20, a.sinks = 4;
    run(&w, &a);
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 100; j++)
            assert_int_equal(w.got[i][j], j < 4 || j >= 84);
    a.policy = KVZ_POLICY_FULL;
    run(&w, &a);
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 100; j++)
            assert_int_equal(w.got[i][j], 1);
    a.policy = KVZ_POLICY_RANDOM, a.sinks = 2, a.recent = 3, a.budget = 30, a.seed = 7;
    run(&w, &a);
    uint8_t first[4][100];
    for (size_t i = 0; i < 4; i++) {
        size_t c = 0;
        for (size_t j = 0; j < 100; j++)
            c += w.got[i][j];
        assert_int_equal(c, 30);
        assert_true(w.got[i][0] && w.got[i][1] && w.got[i][97] && w.got[i][98] && w.got[i][99]);
        memcpy(first[i], w.got[i], 100);
    }
    run(&w, &a); /* the same seed, the same subset */
    for (size_t i = 0; i < 4; i++)
        assert_memory_equal(first[i], w.got[i], 100);
    a.seed = 8;
    run(&w, &a);
    int differs = 0;
    for (size_t i = 0; i < 4; i++)
        differs |= memcmp(first[i], w.got[i], 100) != 0;
    assert_true(differs);
    assert_memory_not_equal(first[0], first[1], 100); /* heads draw differently */
    free_world(&w);
}

static void test_invalid(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, 1);
    world w = make_world(&r, 1, 1, 10, 0);
    kvz_policy_args a = base_args(&w, (kvz_policy)42);
    assert_int_equal(kvz_policy_select(&a, w.got, NULL), KVZ_ERR_INVALID_ARG);
    a.policy = KVZ_POLICY_SNAPKV, a.ratio = -1;
    assert_int_equal(kvz_policy_select(&a, w.got, NULL), KVZ_ERR_INVALID_ARG);
    a.ratio = 0.5, a.scores = NULL;
    assert_int_equal(kvz_policy_select(&a, w.got, NULL), KVZ_ERR_NULL);
    a.scores = (const float *const *)w.sc;
    w.sc[0][3] = NAN;
    assert_int_equal(kvz_policy_select(&a, w.got, NULL), KVZ_ERR_INVALID_ARG);
    assert_true(strstr(kvz_last_error(), "NaN") != NULL);
    a.struct_size = 8;
    assert_int_equal(kvz_policy_select(&a, w.got, NULL), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_policy_select(NULL, w.got, NULL), KVZ_ERR_NULL);
    assert_string_equal(kvz_policy_name(KVZ_POLICY_KVZIP_PAIR), "kvzip-pair");
    assert_string_equal(kvz_policy_name((kvz_policy)99), "unknown");
    free_world(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_head_policies),
        cmocka_unit_test(test_global_policies),
        cmocka_unit_test(test_kvzip_head_whole_heads),
        cmocka_unit_test(test_fastkv_spec_example),
        cmocka_unit_test(test_pyramid_and_adakv),
        cmocka_unit_test(test_streaming_random_full),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
