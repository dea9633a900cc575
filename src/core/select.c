/*
 * Selection: one global threshold over many rows of scores (KVzip's strict reference rule
 * and a deterministic exact-count rule) and per-row top-k, by radix select over the
 * order-preserving 32-bit keys of the scores: four histogram passes, no sort, no O(N)
 * allocation.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

/* -0.0 and +0.0 compare equal as floats, so they must be one key too. */
static inline uint32_t key_of(float x) { return kvz_score_key(x == 0.0f ? 0.0f : x); }

/* Counts of every byte value at one radix position over all rows (see key_histogram). */
static void histogram(const kvz_kernel_table *kt, const float *const *rows, const size_t *lens, size_t n_rows,
                      uint32_t prefix, unsigned shift, uint64_t hist[256])
{
    memset(hist, 0, 256 * sizeof hist[0]);
    for (size_t r = 0; r < n_rows; r++)
        if (lens[r])
            kt->key_histogram(rows[r], lens[r], prefix, shift, hist);
}

/* The key of rank `rank` (0-based, descending) among all scores; *n_greater receives how
 * many keys are strictly greater. The histogram kernel keys -0.0 just below +0.0; the
 * value at a rank is 0 either way, and callers compare with key_of, which joins them. */
static uint32_t key_at_rank(const kvz_kernel_table *kt, const float *const *rows, const size_t *lens,
                            size_t n_rows, uint64_t rank, uint64_t *n_greater)
{
    uint32_t prefix = 0;
    uint64_t above = 0; /* keys greater than every key matching the prefix so far */
    uint64_t hist[256];
    for (int pass = 3; pass >= 0; pass--) {
        const unsigned shift = (unsigned)pass * 8;
        histogram(kt, rows, lens, n_rows, prefix, shift, hist);
        int b = 255;
        for (; b > 0; b--) {
            if (above + hist[b] > rank)
                break;
            above += hist[b];
        }
        prefix |= (uint32_t)b << shift;
    }
    *n_greater = above;
    return prefix;
}

static kvz_status check_rows(const char *fn, const float *const *rows, const size_t *lens, size_t n_rows,
                             uint64_t *total)
{
    uint64_t n = 0;
    for (size_t r = 0; r < n_rows; r++) {
        if (lens[r] == 0)
            continue;
        if (!rows[r])
            return kvz_fail(KVZ_ERR_NULL, "%s: rows[%zu] is NULL with length %zu", fn, r, lens[r]);
        for (size_t j = 0; j < lens[r]; j++)
            if (isnan(rows[r][j]))
                return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: score at row %zu, position %zu is NaN", fn, r, j);
        if (__builtin_add_overflow(n, (uint64_t)lens[r], &n))
            return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: total length overflows", fn);
    }
    *total = n;
    return KVZ_OK;
}

uint64_t kvz_count_of(uint64_t n, double ratio)
{
    const double p = (double)n * ratio;
    return p >= (double)n ? n : (uint64_t)p;
}

kvz_status kvz_select_global(const float *const *rows, const size_t *lens, size_t n_rows, double ratio,
                             kvz_select_mode mode, uint8_t *const *keep, size_t *n_kept, float *threshold)
{
    static const char fn[] = "kvz_select_global";
    if (!(ratio >= 0.0)) /* also refuses NaN */
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: ratio %g must be >= 0", fn, ratio);
    if (n_rows > 0 && !lens)
        return kvz_fail(KVZ_ERR_NULL, "%s: rows, lens and keep must not be NULL", fn);
    uint64_t n = 0;
    for (size_t r = 0; r < n_rows; r++)
        n += lens[r];
    return kvz_select_global_k(rows, lens, n_rows, ratio >= 1.0 ? n : kvz_count_of(n, ratio), mode, keep,
                               n_kept, threshold);
}

kvz_status kvz_select_global_k(const float *const *rows, const size_t *lens, size_t n_rows, uint64_t k,
                               kvz_select_mode mode, uint8_t *const *keep, size_t *n_kept, float *threshold)
{
    static const char fn[] = "kvz_select_global";
    if (n_rows > 0 && (!rows || !lens || !keep))
        return kvz_fail(KVZ_ERR_NULL, "%s: rows, lens and keep must not be NULL", fn);
    if (mode != KVZ_SELECT_STRICT && mode != KVZ_SELECT_EXACT)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: unknown mode %d", fn, (int)mode);
    uint64_t n = 0;
    kvz_status st = check_rows(fn, rows, lens, n_rows, &n);
    if (st != KVZ_OK)
        return st;
    for (size_t r = 0; r < n_rows; r++)
        if (lens[r] && !keep[r])
            return kvz_fail(KVZ_ERR_NULL, "%s: keep[%zu] is NULL with length %zu", fn, r, lens[r]);

    const kvz_kernel_table *kt = kvz_kernels();
    uint64_t kept = 0;
    float thr;
    if (k >= n) { /* keep everything */
        for (size_t r = 0; r < n_rows; r++)
            if (lens[r])
                memset(keep[r], 1, lens[r]);
        kept = n;
        thr = -INFINITY;
    } else if (mode == KVZ_SELECT_STRICT) {
        /* reference rule: the value at rank max(k - 1, 0); keep what is strictly above */
        uint64_t greater;
        const uint32_t tk = key_at_rank(kt, rows, lens, n_rows, k > 0 ? k - 1 : 0, &greater);
        thr = kvz_score_from_key(tk);
        const uint32_t tkey = key_of(thr);
        for (size_t r = 0; r < n_rows; r++)
            for (size_t j = 0; j < lens[r]; j++) {
                keep[r][j] = key_of(rows[r][j]) > tkey;
                kept += keep[r][j];
            }
    } else if (k == 0) {
        for (size_t r = 0; r < n_rows; r++)
            if (lens[r])
                memset(keep[r], 0, lens[r]);
        thr = INFINITY;
    } else {
        /* exact count: all above the k-th largest, then its ties in row and position order */
        uint64_t greater;
        const uint32_t tk = key_at_rank(kt, rows, lens, n_rows, k - 1, &greater);
        thr = kvz_score_from_key(tk);
        const uint32_t tkey = key_of(thr);
        uint64_t ties_left = k;
        /* count what is strictly above with the merged zero key, then fill with ties */
        for (size_t r = 0; r < n_rows; r++)
            for (size_t j = 0; j < lens[r]; j++)
                ties_left -= key_of(rows[r][j]) > tkey;
        for (size_t r = 0; r < n_rows; r++)
            for (size_t j = 0; j < lens[r]; j++) {
                const uint32_t kk = key_of(rows[r][j]);
                keep[r][j] = kk > tkey || (kk == tkey && ties_left > 0 && ties_left--);
            }
        kept = k;
    }
    if (n_kept)
        *n_kept = (size_t)kept;
    if (threshold)
        *threshold = thr;
    return KVZ_OK;
}

kvz_status kvz_select_topk(const float *scores, size_t n, size_t k, uint32_t *idx, size_t *n_out)
{
    static const char fn[] = "kvz_select_topk";
    if (k > n)
        k = n;
    if (n_out)
        *n_out = 0;
    if (k == 0)
        return KVZ_OK;
    if (!scores || !idx)
        return kvz_fail(KVZ_ERR_NULL, "%s: scores and idx must not be NULL", fn);
    if (n > UINT32_MAX)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: n %zu does not fit 32-bit indices", fn, n);
    uint64_t total;
    kvz_status st = check_rows(fn, &scores, &n, 1, &total);
    if (st != KVZ_OK)
        return st;
    uint64_t greater;
    const uint32_t tk = key_at_rank(kvz_kernels(), &scores, &n, 1, k - 1, &greater);
    const uint32_t tkey = key_of(kvz_score_from_key(tk));
    uint64_t ties_left = k;
    for (size_t j = 0; j < n; j++)
        ties_left -= key_of(scores[j]) > tkey;
    size_t m = 0;
    for (size_t j = 0; j < n; j++) {
        const uint32_t kk = key_of(scores[j]);
        if (kk > tkey || (kk == tkey && ties_left > 0 && ties_left--))
            idx[m++] = (uint32_t)j;
    }
    if (n_out)
        *n_out = m;
    return KVZ_OK;
}
