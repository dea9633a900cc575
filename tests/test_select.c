/* kvz_select_global and kvz_select_topk at every level and several thread counts against a
 * plain sort-based reference. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "testutil.h"

/* ---- the reference: sort every (value, row, position) ------------------------------- */

typedef struct entry {
    float v;
    size_t row, pos;
} entry;

/* descending value (float comparison: -0 == +0), ties by row then position: the documented
 * exact-mode order, and the order in which the strict rule reads its rank */
static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    if (x->row != y->row)
        return x->row < y->row ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static float canon(float x) { return x == 0.0f ? 0.0f : x; }

/* Every (value, row, position) in the order above. */
static entry *ref_sort(const float *const *rows, const size_t *lens, size_t n_rows, size_t *n_out)
{
    size_t n = 0;
    for (size_t r = 0; r < n_rows; r++)
        n += lens[r];
    entry *e = tu_malloc(n * sizeof *e);
    size_t m = 0;
    for (size_t r = 0; r < n_rows; r++)
        for (size_t j = 0; j < lens[r]; j++)
            e[m++] = (entry){rows[r][j], r, j};
    qsort(e, n, sizeof *e, cmp_entry);
    *n_out = n;
    return e;
}

/*
 * The spec's rules written the obvious way on the sorted entries (kvzip.md section 3):
 * K = int(N r) (Python: the double product truncated); strict: thres = sorted[max(K - 1, 0)],
 * keep > thres; exact: the first K of the sorted order; ratio >= 1 keeps all. Threshold as
 * documented in kvz.h.
 */
static void ref_apply(const entry *e, size_t n, const size_t *lens, size_t n_rows, double ratio, int exact,
                      uint8_t **keep, size_t *n_kept, float *thr)
{
    for (size_t r = 0; r < n_rows; r++)
        if (lens[r])
            memset(keep[r], 0, lens[r]);
    *n_kept = 0;
    *thr = -INFINITY;
    if (ratio >= 1.0 || n == 0) {
        for (size_t r = 0; r < n_rows; r++)
            if (lens[r])
                memset(keep[r], 1, lens[r]);
        *n_kept = n;
    } else if (!exact) {
        const size_t k = (size_t)((double)n * ratio);
        *thr = canon(e[k > 1 ? k - 1 : 0].v);
        for (size_t i = 0; i < n; i++)
            if (e[i].v > *thr) {
                keep[e[i].row][e[i].pos] = 1;
                ++*n_kept;
            }
    } else {
        const size_t k = (size_t)((double)n * ratio);
        for (size_t i = 0; i < k; i++)
            keep[e[i].row][e[i].pos] = 1;
        *n_kept = k;
        *thr = k ? canon(e[k - 1].v) : INFINITY;
    }
}

/* ---- score generators ------------------------------------------------------------------ */

enum gen {
    GEN_UNIFORM, /* [0, 1): no ties to speak of */
    GEN_SIGNED,  /* [-1, 1) with +-0 sprinkled in */
    GEN_FEW,     /* 7 levels and both zeros: almost everything tied */
    GEN_BF16,    /* [0, 1) truncated to bf16, like KVzip's scores */
    GEN_WIDE,    /* +-inf, +-FLT_MAX, denormals, +-0, mixed magnitudes: the keys' edge bins */
    GEN_CONST,   /* one value everywhere */
    GEN_COUNT
};
static const char *const gen_name[GEN_COUNT] = {"uniform", "signed", "few", "bf16", "wide", "const"};

static float gen_score(tu_rng *r, enum gen g)
{
    switch (g) {
    case GEN_UNIFORM: return tu_uniform(r, 0.0f, 1.0f);
    case GEN_SIGNED: {
        const float v = tu_uniform(r, -1.0f, 1.0f);
        const size_t c = tu_range(r, 0, 15);
        return c == 0 ? 0.0f : c == 1 ? -0.0f : v;
    }
    case GEN_FEW: {
        static const float lv[] = {-0.5f, -0.0f, 0.0f, 0.125f, 0.25f, 0.5f, 1.0f};
        return lv[tu_range(r, 0, 6)];
    }
    case GEN_BF16: {
        union {
            float f;
            uint32_t u;
        } c = {tu_uniform(r, 0.0f, 1.0f)};
        c.u &= 0xffff0000u;
        return c.f;
    }
    case GEN_WIDE: {
        static const float lv[] = {INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, 1e-45f, -1e-45f, 1e-40f,
                                   0.0f,     -0.0f,     3e38f,   -3e38f,   1.0f,   -1.0f,   1e-30f};
        const size_t c = tu_range(r, 0, 20);
        return c < 14 ? lv[c] : tu_uniform(r, -1.0f, 1.0f) * powf(10.0f, (float)tu_range(r, 0, 60) - 30.0f);
    }
    default: return 0.375f;
    }
}

/* n_rows rows of random lengths in [0, max_len] (every 7th empty; empty rows have NULL
 * pointers, which the API allows) */
typedef struct shape {
    size_t n_rows;
    size_t *lens;
    float **rows;
    uint8_t **keep, **want;
} shape;

static void shape_make(shape *s, tu_rng *r, size_t n_rows, size_t max_len, enum gen g)
{
    s->n_rows = n_rows;
    s->lens = tu_malloc(n_rows * sizeof *s->lens);
    s->rows = tu_malloc(n_rows * sizeof *s->rows);
    s->keep = tu_malloc(n_rows * sizeof *s->keep);
    s->want = tu_malloc(n_rows * sizeof *s->want);
    for (size_t i = 0; i < n_rows; i++) {
        const size_t len = i % 7 == 3 ? 0 : tu_range(r, n_rows == 1 ? 1 : 0, max_len);
        s->lens[i] = len;
        s->rows[i] = len ? tu_malloc(len * sizeof(float)) : NULL;
        s->keep[i] = len ? tu_malloc(len) : NULL;
        s->want[i] = len ? tu_malloc(len) : NULL;
        for (size_t j = 0; j < len; j++)
            s->rows[i][j] = gen_score(r, g);
    }
}

static void shape_free(shape *s)
{
    for (size_t i = 0; i < s->n_rows; i++)
        free(s->rows[i]), free(s->keep[i]), free(s->want[i]);
    free(s->lens), free(s->rows), free(s->keep), free(s->want);
}

static size_t shape_n(const shape *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_rows; i++)
        n += s->lens[i];
    return n;
}

/* One call against the reference result (s->want, want_n, want_thr), plus the spec's
 * invariants on the result. */
static void check_one(const shape *s, double ratio, int exact, size_t want_n, float want_thr, const char *what)
{
    const kvz_select_mode mode = exact ? KVZ_SELECT_EXACT : KVZ_SELECT_STRICT;
    size_t got_n = 12345;
    float thr = 12345.0f;
    const kvz_status st = kvz_select_global((const float *const *)s->rows, s->lens, s->n_rows, ratio, mode,
                                            s->keep, &got_n, &thr);
    if (st != KVZ_OK)
        fail_msg("%s: kvz_select_global: %s (%s)", what, kvz_strerror(st), kvz_last_error());
    const char *m = exact ? "exact" : "strict";
    if (got_n != want_n)
        fail_msg("%s ratio %.17g %s: kept %zu, want %zu", what, ratio, m, got_n, want_n);
    /* the same float, and +0 for a zero threshold (documented choice in select.c) */
    if (!(thr == want_thr) || signbit(thr) != signbit(want_thr))
        fail_msg("%s ratio %.17g %s: threshold %a, want %a", what, ratio, m, (double)thr, (double)want_thr);
    size_t counted = 0;
    for (size_t i = 0; i < s->n_rows; i++)
        for (size_t j = 0; j < s->lens[i]; j++) {
            if (s->keep[i][j] != s->want[i][j])
                fail_msg("%s ratio %.17g %s: row %zu pos %zu (%a) keep %d, want %d", what, ratio, m, i, j,
                         (double)s->rows[i][j], s->keep[i][j], s->want[i][j]);
            counted += s->keep[i][j];
        }
    assert_int_equal(counted, got_n);
    /* kvzip.md 3.3 / 9.6: strict keeps at most max(int(N r) - 1, 0); exact exactly int(N r) */
    const size_t n = shape_n(s);
    const size_t k = ratio >= 1.0 ? n : (size_t)((double)n * ratio);
    if (ratio < 1.0 && !exact)
        assert_true(got_n <= (k > 0 ? k - 1 : 0));
    if (exact || ratio >= 1.0)
        assert_int_equal(got_n, k);
}

static const double ratios[] = {0.0, 1e-9, 0.05, 0.29, 0.3, 0.5, 0.7777, 0.999, 0.9999999999999999,
                                1.0, 1.5,  1e300};
#define N_RATIOS (sizeof ratios / sizeof ratios[0])

/* every ratio and both modes (the reference once each), at the given thread counts and
 * every level (all_levels) or only the best one */
static void check_shape(const shape *s, const int *threads, size_t n_threads, int all_levels, const char *what)
{
    kvz_isa lv[TU_MAX_LEVELS];
    size_t nl = tu_isa_levels(lv);
    if (!all_levels) {
        lv[0] = lv[nl - 1];
        nl = 1;
    }
    char buf[160];
    size_t n;
    entry *e = ref_sort((const float *const *)s->rows, s->lens, s->n_rows, &n);
    for (size_t q = 0; q < N_RATIOS; q++)
        for (int exact = 0; exact < 2; exact++) {
            size_t want_n;
            float want_thr;
            ref_apply(e, n, s->lens, s->n_rows, ratios[q], exact, s->want, &want_n, &want_thr);
            for (size_t l = 0; l < nl; l++) {
                tu_force(lv[l]);
                for (size_t t = 0; t < n_threads; t++) {
                    kvz_set_num_threads(threads[t]);
                    snprintf(buf, sizeof buf, "%s [%s, %d threads]", what, kvz_isa_name(lv[l]), threads[t]);
                    check_one(s, ratios[q], exact, want_n, want_thr, buf);
                }
            }
        }
    kvz_set_num_threads(0);
    free(e);
}

/* ---- tests ------------------------------------------------------------------------------- */

/* Small and medium shapes of every kind, one thread (below the parallel cutoff anyway). */
static void test_random(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 40);
    static const size_t shapes[][2] = {{1, 1}, {1, 7}, {3, 2}, {5, 50}, {32, 300}, {100, 40}, {9, 1000}};
    const int one[] = {1};
    char what[96];
    for (int g = 0; g < GEN_COUNT; g++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            shape s;
            shape_make(&s, &r, shapes[i][0], shapes[i][1], (enum gen)g);
            snprintf(what, sizeof what, "%s %zux%zu", gen_name[g], shapes[i][0], shapes[i][1]);
            check_shape(&s, one, 1, 1, what);
            shape_free(&s);
        }
}

/* Above the parallel cutoff: the split of the flat index space across rows, and the exact
 * mode's per-thread tie quotas, at several thread counts (odd ones split unevenly). The
 * split does not depend on the level, so only the best level runs here. */
static void test_threads(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 41);
    const int threads[] = {1, 2, 3};
    static const enum gen gens[] = {GEN_FEW, GEN_BF16, GEN_SIGNED, GEN_CONST};
    for (size_t g = 0; g < sizeof gens / sizeof gens[0]; g++) {
        shape s;
        shape_make(&s, &r, 40, 6000, gens[g]); /* about 100k scores */
        char what[64];
        snprintf(what, sizeof what, "%s 40x6000", gen_name[gens[g]]);
        check_shape(&s, threads, sizeof threads / sizeof threads[0], 0, what);
        shape_free(&s);
    }
    /* one long row, split between threads in the middle of a tie run */
    shape s;
    shape_make(&s, &r, 1, 200000, GEN_FEW);
    check_shape(&s, threads, sizeof threads / sizeof threads[0], 0, "few 1x200000");
    shape_free(&s);
}

/* 3e6 bf16-like scores once, default thread count, every level, the default ratio 0.3. */
static void test_large(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 42);
    const size_t rows = 24, len = tu_quick() ? 4000 : 125000; /* 3e6 */
    shape s;
    s.n_rows = rows;
    s.lens = tu_malloc(rows * sizeof *s.lens);
    s.rows = tu_malloc(rows * sizeof *s.rows);
    s.keep = tu_malloc(rows * sizeof *s.keep);
    s.want = tu_malloc(rows * sizeof *s.want);
    for (size_t i = 0; i < rows; i++) {
        s.lens[i] = len;
        s.rows[i] = tu_malloc(len * sizeof(float));
        s.keep[i] = tu_malloc(len);
        s.want[i] = tu_malloc(len);
        for (size_t j = 0; j < len; j++)
            s.rows[i][j] = gen_score(&r, GEN_BF16);
    }
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    char what[64];
    size_t n;
    entry *e = ref_sort((const float *const *)s.rows, s.lens, rows, &n);
    for (int exact = 0; exact < 2; exact++) {
        size_t want_n;
        float want_thr;
        ref_apply(e, n, s.lens, rows, 0.3, exact, s.want, &want_n, &want_thr);
        for (size_t l = 0; l < nl; l++) {
            tu_force(lv[l]);
            snprintf(what, sizeof what, "bf16 3e6 [%s]", kvz_isa_name(lv[l]));
            check_one(&s, 0.3, exact, want_n, want_thr, what);
        }
    }
    free(e);
    shape_free(&s);
}

static void call_global(const float *const *rows, const size_t *lens, size_t n_rows, double ratio, int exact,
                        uint8_t *const *keep, size_t *n, float *thr)
{
    const kvz_status st = kvz_select_global(rows, lens, n_rows, ratio,
                                            exact ? KVZ_SELECT_EXACT : KVZ_SELECT_STRICT, keep, n, thr);
    if (st != KVZ_OK)
        fail_msg("kvz_select_global: %s (%s)", kvz_strerror(st), kvz_last_error());
}

/* kvzip.md 9.6 and 3.3 on handcrafted inputs. */
static void test_spec_ties(void **state)
{
    (void)state;
    float a[10], b[10];
    for (int i = 0; i < 10; i++)
        a[i] = b[i] = 0.5f;
    const float *rows[2] = {a, b};
    const size_t lens[2] = {10, 10};
    uint8_t ka[10], kb[10];
    uint8_t *keep[2] = {ka, kb};
    size_t n;
    float thr;
    /* all equal, r < 1: strict keeps nothing (every entry ties the threshold) */
    call_global(rows, lens, 2, 0.7, 0, keep, &n, &thr);
    assert_int_equal(n, 0);
    assert_true(thr == 0.5f);
    for (int i = 0; i < 10; i++)
        assert_int_equal(ka[i] | kb[i], 0);
    /* exact keeps floor(20 * 0.7) = 14: all of row 0, then row 1's first four */
    call_global(rows, lens, 2, 0.7, 1, keep, &n, &thr);
    assert_int_equal(n, 14);
    assert_true(thr == 0.5f);
    for (int i = 0; i < 10; i++)
        assert_int_equal(ka[i], 1), assert_int_equal(kb[i], i < 4);
    /* distinct values: strict keeps int(N r) - 1 */
    for (int i = 0; i < 10; i++)
        a[i] = (float)i, b[i] = (float)(10 + i);
    call_global(rows, lens, 2, 0.3, 0, keep, &n, &thr);
    assert_int_equal(n, 5); /* int(6.0) - 1: 19..15 kept, 14 is the threshold */
    assert_true(thr == 14.0f);
    call_global(rows, lens, 2, 0.3, 1, keep, &n, &thr);
    assert_int_equal(n, 6);
    assert_true(thr == 14.0f);
    /* ratio 0: strict's rank is max(0 - 1, 0) = 0, the maximum, and nothing is above it */
    call_global(rows, lens, 2, 0.0, 0, keep, &n, &thr);
    assert_int_equal(n, 0);
    assert_true(thr == 19.0f);
    call_global(rows, lens, 2, 0.0, 1, keep, &n, &thr);
    assert_int_equal(n, 0);
    assert_true(thr == INFINITY);
    /* small ratio: int(N r) = 1 gives the same rank 0 */
    call_global(rows, lens, 2, 0.05, 0, keep, &n, &thr);
    assert_int_equal(n, 0);
    call_global(rows, lens, 2, 0.05, 1, keep, &n, &thr);
    assert_int_equal(n, 1);
    assert_int_equal(kb[9], 1);
    /* ratio 1 and above keep everything in both modes, threshold -inf */
    static const double all[] = {1.0, 1.0000001, 7.0, INFINITY};
    for (size_t q = 0; q < 4; q++)
        for (int exact = 0; exact < 2; exact++) {
            call_global(rows, lens, 2, all[q], exact, keep, &n, &thr);
            assert_int_equal(n, 20);
            assert_true(thr == -INFINITY);
            for (int i = 0; i < 10; i++)
                assert_int_equal(ka[i] & kb[i], 1);
        }
    /* int(N r) is Python's: 100 * 0.29 = 28.999999999999996 in double, so 28, not 29 */
    float c[100];
    for (int i = 0; i < 100; i++)
        c[i] = (float)i;
    const float *crow[1] = {c};
    const size_t clen[1] = {100};
    uint8_t kc[100];
    uint8_t *ckeep[1] = {kc};
    assert_int_equal(kvz_count_of(100, 0.29), 28);
    call_global(crow, clen, 1, 0.29, 1, ckeep, &n, &thr);
    assert_int_equal(n, 28);
    assert_true(thr == 72.0f);
    call_global(crow, clen, 1, 0.29, 0, ckeep, &n, &thr);
    assert_int_equal(n, 27);
    assert_true(thr == 72.0f);
    /* optional outputs may be NULL */
    assert_int_equal(kvz_select_global(crow, clen, 1, 0.5, KVZ_SELECT_EXACT, ckeep, NULL, NULL), KVZ_OK);
}

/* -0.0 and +0.0 are one value: ties in row/position order whatever the sign, threshold +0. */
static void test_signed_zero(void **state)
{
    (void)state;
    const float a[5] = {-0.0f, 0.0f, -0.0f, 1.0f, 0.0f}, b[3] = {0.0f, -0.0f, -1.0f};
    const float *rows[2] = {a, b};
    const size_t lens[2] = {5, 3};
    uint8_t ka[5], kb[3];
    uint8_t *keep[2] = {ka, kb};
    size_t n;
    float thr;
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        /* N = 8, ratio 0.5: K = 4 = the 1 and the first three zeros (a[0], a[1], a[2]) */
        call_global(rows, lens, 2, 0.5, 1, keep, &n, &thr);
        assert_int_equal(n, 4);
        assert_true(thr == 0.0f && !signbit(thr));
        const uint8_t wa[5] = {1, 1, 1, 1, 0}, wb[3] = {0, 0, 0};
        assert_memory_equal(ka, wa, 5);
        assert_memory_equal(kb, wb, 3);
        /* strict: the rank-3 value is a zero, so only the 1 is above it */
        call_global(rows, lens, 2, 0.5, 0, keep, &n, &thr);
        assert_int_equal(n, 1);
        assert_true(thr == 0.0f && !signbit(thr));
        /* ratio 7/8: K = 7 takes every zero and leaves -1 */
        call_global(rows, lens, 2, 0.875, 1, keep, &n, &thr);
        assert_int_equal(n, 7);
        assert_int_equal(kb[2], 0);
    }
}

static void test_empty(void **state)
{
    (void)state;
    size_t n = 99;
    float thr = 0;
    assert_int_equal(kvz_select_global(NULL, NULL, 0, 0.5, KVZ_SELECT_STRICT, NULL, &n, &thr), KVZ_OK);
    assert_int_equal(n, 0);
    assert_true(thr == -INFINITY);
    /* rows that are all empty, with NULL pointers (allowed for length 0) */
    const float *rows[3] = {NULL, NULL, NULL};
    const size_t lens[3] = {0, 0, 0};
    uint8_t *keep[3] = {NULL, NULL, NULL};
    for (int exact = 0; exact < 2; exact++) {
        n = 99;
        call_global(rows, lens, 3, 0.3, exact, keep, &n, &thr);
        assert_int_equal(n, 0);
    }
    uint32_t idx[1] = {77};
    assert_int_equal(kvz_select_topk(NULL, 0, 5, idx, &n), KVZ_OK);
    assert_int_equal(n, 0);
    assert_int_equal(idx[0], 77);
}

/* The internal entry point the policies use: k given directly, k >= N keeps all. */
static void test_select_k(void **state)
{
    (void)state;
    const float a[6] = {3, 1, 2, 2, 5, 2};
    const float *rows[1] = {a};
    const size_t lens[1] = {6};
    uint8_t k[6];
    uint8_t *keep[1] = {k};
    size_t n;
    float thr;
    assert_int_equal(kvz_select_global_k(rows, lens, 1, 3, KVZ_SELECT_EXACT, keep, &n, &thr), KVZ_OK);
    assert_int_equal(n, 3);
    assert_true(thr == 2.0f);
    const uint8_t w3[6] = {1, 0, 1, 0, 1, 0};
    assert_memory_equal(k, w3, 6);
    assert_int_equal(kvz_select_global_k(rows, lens, 1, 3, KVZ_SELECT_STRICT, keep, &n, &thr), KVZ_OK);
    assert_int_equal(n, 2);
    assert_int_equal(kvz_select_global_k(rows, lens, 1, 6, KVZ_SELECT_STRICT, keep, &n, &thr), KVZ_OK);
    assert_int_equal(n, 6);
    assert_true(thr == -INFINITY);
    assert_int_equal(kvz_select_global_k(rows, lens, 1, 100, KVZ_SELECT_EXACT, keep, &n, &thr), KVZ_OK);
    assert_int_equal(n, 6);
    assert_int_equal(kvz_count_of(10, 0.0), 0);
    assert_int_equal(kvz_count_of(10, 0.99999), 9);
    assert_int_equal(kvz_count_of(3, 0.9999999999999999), 2);
    assert_int_equal(kvz_count_of(10, 2.0), 10);
}

/* reference top-k: the exact-mode reference on one row */
static void topk_reference(const float *x, size_t n, size_t k, uint32_t *want, size_t *n_want)
{
    entry *e = tu_malloc((n + 1) * sizeof *e);
    for (size_t j = 0; j < n; j++)
        e[j] = (entry){x[j], 0, j};
    qsort(e, n, sizeof *e, cmp_entry);
    uint8_t *sel = tu_calloc(n + 1, 1);
    for (size_t i = 0; i < k && i < n; i++)
        sel[e[i].pos] = 1;
    *n_want = 0;
    for (size_t j = 0; j < n; j++)
        if (sel[j])
            want[(*n_want)++] = (uint32_t)j;
    free(sel), free(e);
}

static void test_topk(void **state)
{
    (void)state;
    const float s[8] = {0.1f, 0.9f, 0.5f, 0.9f, 0.5f, 0.5f, -1.0f, 0.0f};
    uint32_t idx[8];
    size_t n;
    assert_int_equal(kvz_select_topk(s, 8, 3, idx, &n), KVZ_OK); /* 0.9, 0.9, then the first 0.5 */
    assert_int_equal(n, 3);
    assert_int_equal(idx[0], 1), assert_int_equal(idx[1], 2), assert_int_equal(idx[2], 3);
    assert_int_equal(kvz_select_topk(s, 8, 5, idx, NULL), KVZ_OK); /* n_out optional */
    const uint32_t w5[5] = {1, 2, 3, 4, 5};
    assert_memory_equal(idx, w5, sizeof w5);
    assert_int_equal(kvz_select_topk(s, 8, 20, idx, &n), KVZ_OK); /* k > n clamps */
    assert_int_equal(n, 8);
    for (uint32_t i = 0; i < 8; i++)
        assert_int_equal(idx[i], i);
    assert_int_equal(kvz_select_topk(s, 8, 0, NULL, &n), KVZ_OK); /* idx may be NULL for k = 0 */
    assert_int_equal(n, 0);
    /* the rank lands on a -0 while a +0 is above it: -0 and +0 tie, lower index first */
    const float z[4] = {-0.0f, 0.0f, -0.0f, 1.0f};
    assert_int_equal(kvz_select_topk(z, 4, 3, idx, &n), KVZ_OK);
    assert_int_equal(n, 3);
    assert_int_equal(idx[0], 0), assert_int_equal(idx[1], 1), assert_int_equal(idx[2], 3);

    /* random rows against the reference, every level, short rows and one above the parallel cutoff */
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 43);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (int t = 0; t < 3 * GEN_COUNT; t++) {
            kvz_set_num_threads(t % 3 + 1);
            const size_t len = t >= 2 * GEN_COUNT ? tu_range(&r, 65536, 150000) : tu_range(&r, 1, 500);
            const size_t k = t % 4 == 0 ? len : tu_range(&r, 0, len);
            float *x = tu_malloc(len * sizeof(float));
            uint32_t *got = tu_malloc(len * sizeof(uint32_t)), *want = tu_malloc(len * sizeof(uint32_t));
            for (size_t j = 0; j < len; j++)
                x[j] = gen_score(&r, (enum gen)(t % GEN_COUNT));
            size_t wn;
            topk_reference(x, len, k, want, &wn);
            assert_int_equal(kvz_select_topk(x, len, k, got, &n), KVZ_OK);
            if (n != wn)
                fail_msg("topk %s len %zu k %zu [%s]: got %zu, want %zu", gen_name[t % GEN_COUNT], len, k,
                         kvz_isa_name(lv[l]), n, wn);
            for (size_t i = 0; i < n; i++)
                if (got[i] != want[i])
                    fail_msg("topk %s len %zu k %zu [%s]: idx[%zu] = %u, want %u", gen_name[t % GEN_COUNT], len,
                             k, kvz_isa_name(lv[l]), i, got[i], want[i]);
            free(x), free(got), free(want);
        }
    }
    kvz_set_num_threads(0);
}

/* The histogram kernel of every level against a plain count, across its 32-bit flush point
 * (one call of more than 4M scores). */
static void test_kernel_histogram(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 44);
    const size_t n = tu_quick() ? 100003 : (size_t)4400001;
    float *x = tu_malloc(n * sizeof(float));
    for (size_t j = 0; j < n; j++)
        x[j] = gen_score(&r, j % 3 ? GEN_BF16 : GEN_WIDE);
    uint64_t got[256], want[256];
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        const kvz_kernel_table *kt = kvz_kernels_for(lv[l]);
        assert_non_null(kt);
        for (int shift = 24; shift >= 0; shift -= 8) {
            const uint32_t prefix = kvz_score_key(x[tu_range(&r, 0, n - 1)]); /* a prefix that occurs */
            const uint32_t mask = shift == 24 ? 0 : ~((1u << (shift + 8)) - 1u);
            memset(want, 0, sizeof want);
            for (size_t j = 0; j < n; j++) {
                const uint32_t key = kvz_score_key(x[j]);
                if ((key & mask) == (prefix & mask))
                    want[(key >> shift) & 0xff]++;
            }
            for (int b = 0; b < 256; b++)
                got[b] = 1000; /* the kernel adds to what is there */
            kt->key_histogram(x, n, prefix, (unsigned)shift, got);
            for (int b = 0; b < 256; b++)
                if (got[b] != want[b] + 1000)
                    fail_msg("%s shift %d bin %d: %llu, want %llu", kt->name, shift, b,
                             (unsigned long long)(got[b] - 1000), (unsigned long long)want[b]);
        }
    }
    free(x);
}

static void test_invalid(void **state)
{
    (void)state;
    float a[3] = {1, 2, 3}, b[4] = {INFINITY, 0, NAN, NAN};
    const float *rows[2] = {a, b};
    size_t lens[2] = {3, 4};
    uint8_t ka[3], kb[4];
    uint8_t *keep[2] = {ka, kb};
    memset(ka, 0xaa, 3), memset(kb, 0xaa, 4);
    size_t n = 777;
    float thr = 7.0f;
    /* NaN scores: the first one's place in the message; nothing written */
    assert_int_equal(kvz_select_global(rows, lens, 2, 0.5, KVZ_SELECT_STRICT, keep, &n, &thr),
                     KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "NaN"));
    assert_non_null(strstr(kvz_last_error(), "row 1, position 2"));
    assert_int_equal(n, 777);
    assert_true(thr == 7.0f);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ka[i], 0xaa);
    /* also when nothing would be selected, everything kept, or the NaN is negative */
    assert_int_equal(kvz_select_global(rows, lens, 2, 0.0, KVZ_SELECT_EXACT, keep, NULL, NULL),
                     KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_select_global(rows, lens, 2, 1.0, KVZ_SELECT_STRICT, keep, NULL, NULL),
                     KVZ_ERR_INVALID_ARG);
    b[2] = -NAN, b[3] = 0;
    assert_int_equal(kvz_select_global(rows, lens, 2, 0.5, KVZ_SELECT_EXACT, keep, NULL, NULL),
                     KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "row 1, position 2"));
    b[2] = 0;
    /* ratio */
    static const double bad[] = {-0.1, -INFINITY, NAN, -1e-300};
    for (size_t q = 0; q < 4; q++) {
        assert_int_equal(kvz_select_global(rows, lens, 2, bad[q], KVZ_SELECT_STRICT, keep, NULL, NULL),
                         KVZ_ERR_INVALID_ARG);
        assert_non_null(strstr(kvz_last_error(), "ratio"));
    }
    assert_int_equal(kvz_select_global(rows, lens, 2, -0.0, KVZ_SELECT_STRICT, keep, &n, NULL), KVZ_OK);
    assert_int_equal(n, 0);
    /* mode */
    assert_int_equal(kvz_select_global(rows, lens, 2, 0.5, (kvz_select_mode)3, keep, NULL, NULL),
                     KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "mode"));
    /* NULL arrays, NULL rows and keep entries with a length */
    assert_int_equal(kvz_select_global(NULL, lens, 2, 0.5, KVZ_SELECT_STRICT, keep, NULL, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_select_global(rows, NULL, 2, 0.5, KVZ_SELECT_STRICT, keep, NULL, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_select_global(rows, lens, 2, 0.5, KVZ_SELECT_STRICT, NULL, NULL, NULL), KVZ_ERR_NULL);
    const float *norow[2] = {a, NULL};
    assert_int_equal(kvz_select_global(norow, lens, 2, 0.5, KVZ_SELECT_STRICT, keep, NULL, NULL), KVZ_ERR_NULL);
    assert_non_null(strstr(kvz_last_error(), "rows[1]"));
    uint8_t *nokeep[2] = {ka, NULL};
    assert_int_equal(kvz_select_global(rows, lens, 2, 0.5, KVZ_SELECT_STRICT, nokeep, NULL, NULL),
                     KVZ_ERR_NULL);
    assert_non_null(strstr(kvz_last_error(), "keep[1]"));
    /* a total length that overflows (checked before anything is read) */
    size_t huge[2] = {SIZE_MAX, 2};
    assert_int_equal(kvz_select_global(rows, huge, 2, 0.5, KVZ_SELECT_STRICT, keep, NULL, NULL),
                     KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_select_global_k(rows, huge, 2, 1, KVZ_SELECT_EXACT, keep, NULL, NULL),
                     KVZ_ERR_INVALID_ARG);

    /* topk */
    uint32_t idx[4];
    n = 5;
    assert_int_equal(kvz_select_topk(NULL, 3, 1, idx, &n), KVZ_ERR_NULL);
    assert_int_equal(n, 0);
    assert_int_equal(kvz_select_topk(a, 3, 1, NULL, NULL), KVZ_ERR_NULL);
    assert_non_null(strstr(kvz_last_error(), "idx"));
    b[1] = NAN;
    assert_int_equal(kvz_select_topk(b, 4, 2, idx, NULL), KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "position 1"));
    assert_int_equal(kvz_select_topk(b, 4, 0, NULL, NULL), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_select_topk(a, (size_t)UINT32_MAX + 1, 1, idx, NULL), KVZ_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_random, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_threads, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_large, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_spec_ties, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_signed_zero, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_empty, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_select_k, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_topk, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_kernel_histogram, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_invalid, tu_setup_clock, tu_teardown_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
