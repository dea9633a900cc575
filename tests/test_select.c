/* kvz_select_global and kvz_select_topk at every level against a plain sort-based reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct entry {
    float v;
    size_t row, pos;
} entry;

/* descending value; ties by row, then position (the documented exact-mode order) */
static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    if (x->row != y->row)
        return x->row < y->row ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The reference: sort everything. strict: thres = sorted[max(int(N r) - 1, 0)], keep > thres;
 * exact: the first floor(N r) of the sorted order. ratio >= 1 keeps all. */
static void reference(const float *const *rows, const size_t *lens, size_t n_rows, double ratio, int exact,
                      uint8_t **keep, size_t *n_kept)
{
    size_t n = 0;
    for (size_t r = 0; r < n_rows; r++)
        n += lens[r];
    entry *e = tu_malloc((n + 1) * sizeof *e);
    size_t m = 0;
    for (size_t r = 0; r < n_rows; r++)
        for (size_t j = 0; j < lens[r]; j++)
            e[m++] = (entry){rows[r][j], r, j};
    qsort(e, n, sizeof *e, cmp_entry);
    for (size_t r = 0; r < n_rows; r++)
        memset(keep[r], 0, lens[r]);
    *n_kept = 0;
    if (ratio >= 1.0 || n == 0) {
        for (size_t r = 0; r < n_rows; r++)
            memset(keep[r], 1, lens[r]);
        *n_kept = n;
    } else if (!exact) {
        const long k = (long)((double)n * ratio);
        const float thres = e[k - 1 > 0 ? k - 1 : 0].v;
        for (size_t i = 0; i < n; i++)
            if (e[i].v > thres) {
                keep[e[i].row][e[i].pos] = 1;
                ++*n_kept;
            }
    } else {
        const size_t k = (size_t)((double)n * ratio);
        for (size_t i = 0; i < k; i++)
            keep[e[i].row][e[i].pos] = 1;
        *n_kept = k;
    }
    free(e);
}

static float quantize(float x, int levels) { return levels ? floorf(x * (float)levels) / (float)levels : x; }

static void check_rows(tu_rng *r, size_t n_rows, size_t max_len, int levels, int allow_neg)
{
    size_t *lens = tu_malloc(n_rows * sizeof *lens);
    float **rows = tu_malloc(n_rows * sizeof *rows);
    uint8_t **keep = tu_malloc(n_rows * sizeof *keep), **want = tu_malloc(n_rows * sizeof *want);
    for (size_t i = 0; i < n_rows; i++) {
        lens[i] = i % 7 == 3 ? 0 : tu_range(r, 0, max_len);
        rows[i] = tu_malloc((lens[i] + 1) * sizeof(float));
        keep[i] = tu_malloc(lens[i] + 1);
        want[i] = tu_malloc(lens[i] + 1);
        for (size_t j = 0; j < lens[i]; j++) {
            float v = quantize(tu_uniform(r, allow_neg ? -1.0f : 0.0f, 1.0f), levels);
            if (v == 0.0f && (j & 1))
                v = -0.0f; /* -0 and +0 are equal scores */
            rows[i][j] = v;
        }
    }
    static const double ratios[] = {0.0, 0.05, 0.3, 0.5, 0.7777, 0.999, 1.0, 1.5};
    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv);
    for (size_t q = 0; q < sizeof ratios / sizeof ratios[0]; q++)
        for (int exact = 0; exact < 2; exact++) {
            size_t want_n;
            reference((const float *const *)rows, lens, n_rows, ratios[q], exact, want, &want_n);
            for (size_t l = 0; l < nl; l++) {
                tu_force(lv[l]);
                size_t got_n = 12345;
                float thr;
                const kvz_status st =
                    kvz_select_global((const float *const *)rows, lens, n_rows, ratios[q],
                                      exact ? KVZ_SELECT_EXACT : KVZ_SELECT_STRICT, keep, &got_n, &thr);
                if (st != KVZ_OK)
                    fail_msg("kvz_select_global: %s (%s)", kvz_strerror(st), kvz_last_error());
                if (got_n != want_n)
                    fail_msg("%s ratio %g %s: kept %zu, want %zu", kvz_isa_name(lv[l]), ratios[q],
                             exact ? "exact" : "strict", got_n, want_n);
                for (size_t i = 0; i < n_rows; i++)
                    for (size_t j = 0; j < lens[i]; j++)
                        if (keep[i][j] != want[i][j])
                            fail_msg("%s ratio %g %s: row %zu pos %zu (%g) keep %d, want %d",
                                     kvz_isa_name(lv[l]), ratios[q], exact ? "exact" : "strict", i, j,
                                     rows[i][j], keep[i][j], want[i][j]);
            }
        }
    for (size_t i = 0; i < n_rows; i++)
        free(rows[i]), free(keep[i]), free(want[i]);
    free(lens), free(rows), free(keep), free(want);
}

static void test_random(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 40);
    check_rows(&r, 1, 1, 0, 0);
    check_rows(&r, 5, 50, 0, 1);
    check_rows(&r, 32, 300, 0, 0);
    check_rows(&r, 32, 300, 16, 1); /* heavy ties, like bf16 scores */
    check_rows(&r, 8, 1000, 3, 0);  /* almost everything tied */
}

static void test_large(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 41);
    check_rows(&r, 3 * 8, tu_quick() ? 4000 : 125000, 256, 0); /* about 1.5e6 scores */
}

/* spec kvzip.md 9.6: all equal and r < 1 keeps nothing in strict mode; exact keeps floor(N r)
 * and breaks ties by row order then position. */
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
    assert_int_equal(kvz_select_global(rows, lens, 2, 0.7, KVZ_SELECT_STRICT, keep, &n, &thr), KVZ_OK);
    assert_int_equal(n, 0);
    assert_true(thr == 0.5f);
    assert_int_equal(kvz_select_global(rows, lens, 2, 0.7, KVZ_SELECT_EXACT, keep, &n, &thr), KVZ_OK);
    assert_int_equal(n, 14); /* floor(20 * 0.7) */
    for (int i = 0; i < 10; i++)
        assert_int_equal(ka[i], 1);
    for (int i = 0; i < 10; i++)
        assert_int_equal(kb[i], i < 4);
    /* strict keeps at most int(N r) - 1 */
    for (int i = 0; i < 10; i++)
        a[i] = (float)i, b[i] = (float)(10 + i);
    assert_int_equal(kvz_select_global(rows, lens, 2, 0.3, KVZ_SELECT_STRICT, keep, &n, &thr), KVZ_OK);
    assert_int_equal(n, 5); /* int(6.0) - 1 */
    assert_true(thr == 14.0f);
    assert_int_equal(kvz_select_global(rows, lens, 2, 1.0, KVZ_SELECT_STRICT, keep, &n, &thr), KVZ_OK);
    assert_int_equal(n, 20);
    assert_int_equal(kvz_select_global(rows, lens, 2, 0.0, KVZ_SELECT_EXACT, keep, &n, &thr), KVZ_OK);
    assert_int_equal(n, 0);
}

static void test_topk(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 42);
    const float s[8] = {0.1f, 0.9f, 0.5f, 0.9f, 0.5f, 0.5f, -1.0f, 0.0f};
    uint32_t idx[8];
    size_t n;
    assert_int_equal(kvz_select_topk(s, 8, 3, idx, &n), KVZ_OK); /* 0.9, 0.9, then the first 0.5 */
    assert_int_equal(n, 3);
    assert_int_equal(idx[0], 1), assert_int_equal(idx[1], 2), assert_int_equal(idx[2], 3);
    assert_int_equal(kvz_select_topk(s, 8, 20, idx, &n), KVZ_OK);
    assert_int_equal(n, 8);
    for (uint32_t i = 0; i < 8; i++)
        assert_int_equal(idx[i], i);
    assert_int_equal(kvz_select_topk(s, 8, 0, NULL, &n), KVZ_OK);
    assert_int_equal(n, 0);
    /* random rows against the exact-mode reference on one row */
    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (int t = 0; t < 20; t++) {
            const size_t len = tu_range(&r, 1, 500), k = tu_range(&r, 0, len);
            float *x = tu_malloc(len * sizeof(float));
            uint32_t *got = tu_malloc(len * sizeof(uint32_t));
            uint8_t *want = tu_malloc(len);
            for (size_t j = 0; j < len; j++)
                x[j] = quantize(tu_uniform(&r, 0, 1), t % 2 ? 8 : 0);
            const float *rows[1] = {x};
            size_t wn;
            reference(rows, &len, 1, ((double)k + 0.5) / (double)len, 1, &want, &wn); /* floor(len r) = k */
            assert_int_equal(kvz_select_topk(x, len, k, got, &n), KVZ_OK);
            assert_int_equal(n, k);
            size_t m = 0;
            for (size_t j = 0; j < len; j++)
                if (want[j]) {
                    assert_int_equal(got[m], j);
                    m++;
                }
            free(x), free(got), free(want);
        }
    }
}

static void test_invalid(void **state)
{
    (void)state;
    float a[3] = {1, 2, NAN};
    const float *rows[1] = {a};
    size_t lens[1] = {3};
    uint8_t k[3];
    uint8_t *keep[1] = {k};
    assert_int_equal(kvz_select_global(rows, lens, 1, 0.5, KVZ_SELECT_STRICT, keep, NULL, NULL),
                     KVZ_ERR_INVALID_ARG);
    assert_true(strstr(kvz_last_error(), "NaN") != NULL);
    a[2] = 3;
    assert_int_equal(kvz_select_global(rows, lens, 1, -0.1, KVZ_SELECT_STRICT, keep, NULL, NULL),
                     KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_select_global(rows, lens, 1, NAN, KVZ_SELECT_STRICT, keep, NULL, NULL),
                     KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_select_global(rows, lens, 1, 0.5, (kvz_select_mode)3, keep, NULL, NULL),
                     KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_select_global(NULL, lens, 1, 0.5, KVZ_SELECT_STRICT, keep, NULL, NULL), KVZ_ERR_NULL);
    uint8_t *nokeep[1] = {NULL};
    assert_int_equal(kvz_select_global(rows, lens, 1, 0.5, KVZ_SELECT_STRICT, nokeep, NULL, NULL),
                     KVZ_ERR_NULL);
    const float *norow[1] = {NULL};
    assert_int_equal(kvz_select_global(norow, lens, 1, 0.5, KVZ_SELECT_STRICT, keep, NULL, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_select_global(NULL, NULL, 0, 0.5, KVZ_SELECT_STRICT, NULL, NULL, NULL), KVZ_OK);
    uint32_t idx[3];
    assert_int_equal(kvz_select_topk(NULL, 3, 1, idx, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_select_topk(a, 3, 1, NULL, NULL), KVZ_ERR_NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random), cmocka_unit_test(test_large),   cmocka_unit_test(test_spec_ties),
        cmocka_unit_test(test_topk),   cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
