/* Selection of the scores to keep: one global threshold over many rows (KVzip's strict reference rule
 * and a deterministic exact-count rule) and the top k of one row, by radix select without sorting. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/internal.h"

/*
 * How it works. The value of rank r (0-based, descending) among all N scores is found by radix
 * select over the order-preserving 32-bit keys (kvz_score_key): four histogram passes of 8 bits,
 * highest byte first, each over all rows, each narrowing the prefix to the bin holding rank r.
 * Memory is O(1) in N: no copy, no sort. One more pass writes the keep mask with float
 * comparisons against the threshold value.
 *
 * -0.0 and +0.0: the keys differ (the kernel keys -0 just below +0), but they are equal
 * scores. Everything after the radix select compares floats (x > thr, x == thr), which is the
 * reference's torch `>` and treats them as one value; the reported threshold is +0.0 for
 * either. The radix select itself is unaffected: the value at a rank is 0 whichever zero
 * sits there. Only the count of keys above the rank that the histograms give is off when the
 * rank lands on a -0 (it includes the +0s): kvz_select_topk, its one user, recounts then.
 *
 * NaN: the keys of NaNs fall in the top-byte bins 0x00 and 0xff, together with only
 * +-inf and |x| >= 2^127. The first histogram pass (always over everything) therefore
 * doubles as the NaN check: only when those bins are non-empty is the data scanned.
 * The check runs before anything is written, so a failing call leaves keep untouched.
 *
 * Threads: every pass splits the flat index space (rows back to back) into equal parts, one
 * per OpenMP thread, so one long row is split as well as many short ones; the histograms are
 * exact integer counts, so the result never depends on the thread count.
 */

/* Below this many scores one thread does it: a parallel region costs microseconds. */
#define PAR_MIN ((uint64_t)1 << 16)
/* Bound on the team, for the per-thread arrays on the stack. */
#define MAX_TEAM 256

typedef struct score_set {
    const float *const *rows;
    const size_t *lens;
    size_t n_rows;
    uint64_t n; /* sum of lens */
} score_set;

/* A cursor over the pieces (row, first position, count) of a range of the flat index space. */
typedef struct span_iter {
    size_t row, off;
    uint64_t left;
} span_iter;

static void span_begin(const score_set *s, uint64_t lo, uint64_t hi, span_iter *it)
{
    it->left = hi - lo;
    size_t r = 0;
    while (r < s->n_rows && lo >= s->lens[r])
        lo -= s->lens[r++];
    it->row = r;
    it->off = (size_t)lo;
}

/* The next piece: row *r, positions [*j, *j + *m). Returns 0 when the range is done. */
static int span_next(const score_set *s, span_iter *it, size_t *r, size_t *j, size_t *m)
{
    while (it->left) { /* left > 0 implies a row with elements remains, so row < n_rows */
        const size_t len = s->lens[it->row];
        if (it->off < len) {
            const size_t take = (uint64_t)(len - it->off) < it->left ? len - it->off : (size_t)it->left;
            *r = it->row, *j = it->off, *m = take;
            it->off += take;
            it->left -= take;
            return 1;
        }
        it->row++;
        it->off = 0;
    }
    return 0;
}

/* The calling thread's equal part [*lo, *hi) of the n flat indices. */
static void my_part(uint64_t n, uint64_t *lo, uint64_t *hi)
{
    const uint64_t T = (uint64_t)omp_get_num_threads(), t = (uint64_t)omp_get_thread_num();
    const uint64_t q = n / T, rem = n % T;
    *lo = q * t + (t < rem ? t : rem);
    *hi = *lo + q + (t < rem);
}

static int team_for(uint64_t n)
{
    if (n < PAR_MIN)
        return 1;
    const int t = omp_get_max_threads();
    return t < MAX_TEAM ? t : MAX_TEAM;
}

/* hist = counts of byte shift/8 of the keys that match prefix above it, over all rows. */
static void histogram(const kvz_kernel_table *kt, const score_set *s, uint32_t prefix, unsigned shift,
                      uint64_t hist[256])
{
    memset(hist, 0, 256 * sizeof hist[0]);
    const int team = team_for(s->n);
#pragma omp parallel num_threads(team) if (team > 1)
    {
        uint64_t h[256]; /* per thread, merged at the end: the kernel itself is single-threaded */
        memset(h, 0, sizeof h);
        uint64_t lo, hi;
        my_part(s->n, &lo, &hi);
        span_iter it;
        span_begin(s, lo, hi, &it);
        size_t r, j, m;
        while (span_next(s, &it, &r, &j, &m))
            kt->key_histogram(s->rows[r] + j, m, prefix, shift, h);
        for (int b = 0; b < 256; b++)
            if (h[b]) {
#pragma omp atomic
                hist[b] += h[b];
            }
    }
}

/*
 * NaN scores are refused, with the place of the first one. hist0 is the top-byte histogram
 * of everything: when its NaN bins are empty nothing is scanned; otherwise (also when the
 * bins hold only infinities, e.g. protected entries set to +inf) a vectorisable parallel
 * count decides, and only a real NaN costs a sequential search for the first one.
 */
static kvz_status check_nan(const char *fn, const score_set *s, const uint64_t hist0[256])
{
    if (hist0[0] == 0 && hist0[255] == 0)
        return KVZ_OK;
    uint64_t nans = 0;
    const int team = team_for(s->n);
#pragma omp parallel num_threads(team) if (team > 1) reduction(+ : nans)
    {
        uint64_t lo, hi;
        my_part(s->n, &lo, &hi);
        span_iter it;
        span_begin(s, lo, hi, &it);
        size_t r, j0, m;
        while (span_next(s, &it, &r, &j0, &m)) {
            const float *x = s->rows[r] + j0;
            for (size_t j = 0; j < m; j++)
                nans += x[j] != x[j]; /* true only for NaN */
        }
    }
    if (nans == 0)
        return KVZ_OK;
    for (size_t r = 0; r < s->n_rows; r++)
        for (size_t j = 0; j < s->lens[r]; j++)
            if (isnan(s->rows[r][j]))
                return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: %llu NaN scores, the first at row %zu, position %zu",
                                fn, (unsigned long long)nans, r, j);
    return KVZ_OK; /* not reached: nans > 0 */
}

/*
 * The key of rank `rank` (0-based, descending; rank < s->n) given the top-byte histogram
 * hist0 of everything. Each pass picks the bin where the running count of larger keys
 * passes the rank and keeps only that bin's keys for the next byte.
 */
static uint32_t key_at_rank(const kvz_kernel_table *kt, const score_set *s, const uint64_t hist0[256],
                            uint64_t rank, uint64_t *n_greater)
{
    uint32_t prefix = 0;
    uint64_t above = 0; /* keys greater than every key with the chosen prefix */
    uint64_t hist[256];
    for (int pass = 3; pass >= 0; pass--) {
        const unsigned shift = (unsigned)pass * 8;
        if (pass == 3)
            memcpy(hist, hist0, sizeof hist);
        else
            histogram(kt, s, prefix, shift, hist);
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

/* +0.0 for either zero (see the top comment), the value itself otherwise. */
static float canon(float x) { return x == 0.0f ? 0.0f : x; }

static void fill_all(const score_set *s, uint8_t *const *keep, int value)
{
    const int team = team_for(s->n);
#pragma omp parallel num_threads(team) if (team > 1)
    {
        uint64_t lo, hi;
        my_part(s->n, &lo, &hi);
        span_iter it;
        span_begin(s, lo, hi, &it);
        size_t r, j, m;
        while (span_next(s, &it, &r, &j, &m))
            memset(keep[r] + j, value, m);
    }
}

/* strict: keep = x > thr; returns the kept count */
static uint64_t mark_greater(const score_set *s, float thr, uint8_t *const *keep)
{
    uint64_t kept = 0;
    const int team = team_for(s->n);
#pragma omp parallel num_threads(team) if (team > 1) reduction(+ : kept)
    {
        uint64_t lo, hi;
        my_part(s->n, &lo, &hi);
        span_iter it;
        span_begin(s, lo, hi, &it);
        size_t r, j0, m;
        while (span_next(s, &it, &r, &j0, &m)) {
            const float *x = s->rows[r] + j0;
            uint8_t *kp = keep[r] + j0;
            size_t c = 0;
            for (size_t j = 0; j < m; j++) {
                kp[j] = x[j] > thr;
                c += kp[j];
            }
            kept += c;
        }
    }
    return kept;
}

/*
 * exact: keep = x > thr, plus the first `k - count(x > thr)` entries equal to thr in flat
 * order (row, then position). Each thread marks its part and counts its ties; after a
 * barrier every thread knows how many ties lie before its part and takes its share.
 */
static void mark_exact(const score_set *s, float thr, uint64_t k, uint8_t *const *keep)
{
    uint64_t ties[MAX_TEAM];
    uint64_t greater = 0;
    const int team = team_for(s->n);
#pragma omp parallel num_threads(team) if (team > 1)
    {
        uint64_t lo, hi;
        my_part(s->n, &lo, &hi);
        span_iter it;
        size_t r, j0, m;
        uint64_t g = 0, e = 0;
        span_begin(s, lo, hi, &it);
        while (span_next(s, &it, &r, &j0, &m)) {
            const float *x = s->rows[r] + j0;
            uint8_t *kp = keep[r] + j0;
            for (size_t j = 0; j < m; j++) {
                kp[j] = x[j] > thr;
                g += kp[j];
                e += x[j] == thr;
            }
        }
        const int t = omp_get_thread_num();
        ties[t] = e;
#pragma omp atomic
        greater += g;
#pragma omp barrier
        /* thr is the value at rank k-1, so greater <= k-1 and greater + all ties >= k */
        const uint64_t need = k - greater;
        uint64_t before = 0;
        for (int u = 0; u < t; u++)
            before += ties[u];
        uint64_t take = need > before ? need - before : 0;
        if (take > e)
            take = e;
        if (take) {
            span_begin(s, lo, hi, &it);
            while (take && span_next(s, &it, &r, &j0, &m)) {
                const float *x = s->rows[r] + j0;
                uint8_t *kp = keep[r] + j0;
                for (size_t j = 0; j < m && take; j++)
                    if (x[j] == thr) {
                        kp[j] = 1;
                        take--;
                    }
            }
        }
    }
}

/* The checks shared by the global entry points; fills *s. */
static kvz_status check_global(const char *fn, const float *const *rows, const size_t *lens, size_t n_rows,
                               kvz_select_mode mode, uint8_t *const *keep, score_set *s)
{
    if (n_rows > 0 && (!rows || !lens || !keep))
        return kvz_fail(KVZ_ERR_NULL, "%s: rows, lens and keep must not be NULL (n_rows %zu)", fn, n_rows);
    if (mode != KVZ_SELECT_STRICT && mode != KVZ_SELECT_EXACT)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: unknown mode %d", fn, (int)mode);
    uint64_t n = 0;
    for (size_t r = 0; r < n_rows; r++) {
        if (lens[r] == 0)
            continue; /* an empty row may have NULL pointers */
        if (!rows[r])
            return kvz_fail(KVZ_ERR_NULL, "%s: rows[%zu] is NULL with length %zu", fn, r, lens[r]);
        if (!keep[r])
            return kvz_fail(KVZ_ERR_NULL, "%s: keep[%zu] is NULL with length %zu", fn, r, lens[r]);
        if (__builtin_add_overflow(n, (uint64_t)lens[r], &n))
            return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: the total length overflows at row %zu", fn, r);
    }
    s->rows = rows, s->lens = lens, s->n_rows = n_rows, s->n = n;
    return KVZ_OK;
}

/* The selection after the checks: keep_all (ratio >= 1, or k >= N) or k = floor(N r) < N. */
static kvz_status select_checked(const char *fn, const score_set *s, int keep_all, uint64_t k,
                                 kvz_select_mode mode, uint8_t *const *keep, size_t *n_kept, float *threshold)
{
    uint64_t kept = 0;
    float thr = -INFINITY; /* keep-all, also when there is nothing (N == 0) */
    if (s->n > 0) {
        const kvz_kernel_table *kt = kvz_kernels();
        uint64_t hist0[256];
        histogram(kt, s, 0, 24, hist0); /* the radix select's first pass and the NaN check */
        const kvz_status st = check_nan(fn, s, hist0);
        if (st != KVZ_OK)
            return st;
        uint64_t greater;
        if (keep_all) {
            fill_all(s, keep, 1);
            kept = s->n;
        } else if (mode == KVZ_SELECT_STRICT) {
            /* the reference rule: thres = sorted_desc[max(k - 1, 0)], keep > thres */
            thr = canon(kvz_score_from_key(key_at_rank(kt, s, hist0, k > 0 ? k - 1 : 0, &greater)));
            kept = mark_greater(s, thr, keep);
        } else if (k == 0) {
            fill_all(s, keep, 0);
            thr = INFINITY;
        } else {
            thr = canon(kvz_score_from_key(key_at_rank(kt, s, hist0, k - 1, &greater)));
            mark_exact(s, thr, k, keep);
            kept = k;
        }
    }
    if (n_kept)
        *n_kept = (size_t)kept;
    if (threshold)
        *threshold = thr;
    return KVZ_OK;
}

uint64_t kvz_count_of(uint64_t n, double ratio)
{
    /* Python's int(n * ratio): the product rounded to double, then truncated (ratio >= 0, so
     * truncation is floor). For ratio < 1 and n < 2^53 the rounded product is always below n. */
    const double p = (double)n * ratio;
    return p >= (double)n ? n : (uint64_t)p;
}

kvz_status kvz_select_global(const float *const *rows, const size_t *lens, size_t n_rows, double ratio,
                             kvz_select_mode mode, uint8_t *const *keep, size_t *n_kept, float *threshold)
{
    static const char fn[] = "kvz_select_global";
    score_set s;
    kvz_status st = check_global(fn, rows, lens, n_rows, mode, keep, &s);
    if (st != KVZ_OK)
        return st;
    if (!(ratio >= 0.0)) /* also refuses NaN */
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: ratio %g must be >= 0", fn, ratio);
    const int keep_all = ratio >= 1.0;
    return select_checked(fn, &s, keep_all, keep_all ? s.n : kvz_count_of(s.n, ratio), mode, keep, n_kept,
                          threshold);
}

kvz_status kvz_select_global_k(const float *const *rows, const size_t *lens, size_t n_rows, uint64_t k,
                               kvz_select_mode mode, uint8_t *const *keep, size_t *n_kept, float *threshold)
{
    static const char fn[] = "kvz_select_global";
    score_set s;
    kvz_status st = check_global(fn, rows, lens, n_rows, mode, keep, &s);
    if (st != KVZ_OK)
        return st;
    return select_checked(fn, &s, k >= s.n, k, mode, keep, n_kept, threshold);
}

kvz_status kvz_select_topk(const float *scores, size_t n, size_t k, uint32_t *idx, size_t *n_out)
{
    static const char fn[] = "kvz_select_topk";
    if (n_out)
        *n_out = 0;
    if (k > n)
        k = n;
    if (n > 0 && !scores)
        return kvz_fail(KVZ_ERR_NULL, "%s: scores is NULL with n %zu", fn, n);
    if (k > 0 && !idx)
        return kvz_fail(KVZ_ERR_NULL, "%s: idx is NULL with k %zu", fn, k);
    if (n > UINT32_MAX)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: n %zu does not fit 32-bit indices", fn, n);
    if (n == 0)
        return KVZ_OK;
    const score_set s = {&scores, &n, 1, n};
    const kvz_kernel_table *kt = kvz_kernels();
    uint64_t hist0[256];
    histogram(kt, &s, 0, 24, hist0);
    kvz_status st = check_nan(fn, &s, hist0); /* also when k is 0 or n: the same contract for every k */
    if (st != KVZ_OK)
        return st;
    size_t m = 0;
    if (k == n) {
        for (size_t j = 0; j < n; j++)
            idx[j] = (uint32_t)j;
        m = n;
    } else if (k > 0) {
        uint64_t greater;
        const uint32_t tk = key_at_rank(kt, &s, hist0, k - 1, &greater);
        const float thr = kvz_score_from_key(tk);
        if (tk == kvz_score_key(-0.0f)) { /* the histogram count includes the +0s: count floats */
            greater = 0;
            for (size_t j = 0; j < n; j++)
                greater += scores[j] > thr;
        }
        uint64_t ties = k - greater; /* entries equal to thr to take, lowest index first */
        for (size_t j = 0; j < n; j++) {
            const float x = scores[j];
            if (x > thr || (x == thr && ties > 0 && ties--))
                idx[m++] = (uint32_t)j;
        }
    }
    if (n_out)
        *n_out = m;
    return KVZ_OK;
}
