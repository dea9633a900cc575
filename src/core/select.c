/* Selection of the scores to keep: one global threshold over many rows (KVzip's strict reference rule
 * and a deterministic exact-count rule) and the top k of one row, by radix select without sorting. */
#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "core/pool.h"

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
 * Threads: every pass splits the flat index space (rows back to back) into equal parts, a
 * few per thread, which the library's threads take as they come, so one long row is split as
 * well as many short ones; the histograms are exact integer counts, so the result never
 * depends on the thread count.
 */

/* Below this many scores one part does it: a parallel region costs microseconds. */
#define PAR_MIN ((uint64_t)1 << 16)
/* Bound on the parts, for the per-part tie counts on the stack. */
#define MAX_PARTS 1024

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

/* One pass over the parts of the flat index space: what each part does, its inputs and the
 * totals it adds to. */
typedef struct part_job part_job;
typedef void (*part_fn)(part_job *j, size_t part, uint64_t lo, uint64_t hi);
struct part_job {
    part_fn fn;
    const kvz_kernel_table *kt;
    const score_set *s;
    size_t parts;
    uint32_t prefix; /* histogram: the keys counted, and the byte */
    unsigned shift;
    uint64_t *hist;
    uint8_t *const *keep; /* marks */
    int value;
    float thr;
    uint64_t total; /* NaNs, kept or greater entries, added atomically */
    uint64_t *ties; /* mark_exact: entries equal to thr per part */
    uint64_t need;  /* mark_exact: ties to keep, in flat order */
};

static size_t parts_for(uint64_t n)
{
    if (n < PAR_MIN)
        return 1;
    const size_t p = 4 * (size_t)kvz_num_threads();
    return p < MAX_PARTS ? p : MAX_PARTS;
}

static void parts_range(void *ctx, size_t lo, size_t hi)
{
    part_job *j = ctx;
    const uint64_t n = j->s->n, P = j->parts;
    for (size_t p = lo; p < hi; p++) {
        /* part p is [n p / P, n (p + 1) / P), without overflow for any n */
        const uint64_t q = n / P, rem = n % P;
        const uint64_t a = q * p + (p < rem ? p : rem), b = a + q + (p < rem);
        j->fn(j, p, a, b);
    }
}

static void run_parts(part_job *j, part_fn fn)
{
    j->fn = fn;
    kvz_parallel_for(j->parts, 1, parts_range, j);
}

static part_job job_of(const kvz_kernel_table *kt, const score_set *s)
{
    return (part_job){.kt = kt, .s = s, .parts = parts_for(s->n)};
}

static void hist_part(part_job *j, size_t part, uint64_t lo, uint64_t hi)
{
    (void)part;
    uint64_t h[256]; /* per part, merged at the end: the kernel itself is single-threaded */
    memset(h, 0, sizeof h);
    span_iter it;
    span_begin(j->s, lo, hi, &it);
    size_t r, c, m;
    while (span_next(j->s, &it, &r, &c, &m))
        j->kt->key_histogram(j->s->rows[r] + c, m, j->prefix, j->shift, h);
    for (int b = 0; b < 256; b++)
        if (h[b])
            __atomic_fetch_add(&j->hist[b], h[b], __ATOMIC_RELAXED);
}

/* hist = counts of byte shift/8 of the keys that match prefix above it, over all rows. */
static void histogram(const kvz_kernel_table *kt, const score_set *s, uint32_t prefix, unsigned shift,
                      uint64_t hist[256])
{
    memset(hist, 0, 256 * sizeof hist[0]);
    part_job j = job_of(kt, s);
    j.prefix = prefix, j.shift = shift, j.hist = hist;
    run_parts(&j, hist_part);
}

static void nan_part(part_job *j, size_t part, uint64_t lo, uint64_t hi)
{
    (void)part;
    uint64_t nans = 0;
    span_iter it;
    span_begin(j->s, lo, hi, &it);
    size_t r, j0, m;
    while (span_next(j->s, &it, &r, &j0, &m)) {
        const float *x = j->s->rows[r] + j0;
        for (size_t c = 0; c < m; c++)
            nans += x[c] != x[c]; /* true only for NaN */
    }
    __atomic_fetch_add(&j->total, nans, __ATOMIC_RELAXED);
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
    part_job j = job_of(NULL, s);
    run_parts(&j, nan_part);
    const uint64_t nans = j.total;
    if (nans == 0)
        return KVZ_OK;
    for (size_t r = 0; r < s->n_rows; r++)
        for (size_t c = 0; c < s->lens[r]; c++)
            if (isnan(s->rows[r][c]))
                return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: %llu NaN scores, the first at row %zu, position %zu",
                                fn, (unsigned long long)nans, r, c);
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

static void fill_part(part_job *j, size_t part, uint64_t lo, uint64_t hi)
{
    (void)part;
    span_iter it;
    span_begin(j->s, lo, hi, &it);
    size_t r, c, m;
    while (span_next(j->s, &it, &r, &c, &m))
        memset(j->keep[r] + c, j->value, m);
}

static void fill_all(const score_set *s, uint8_t *const *keep, int value)
{
    part_job j = job_of(NULL, s);
    j.keep = keep, j.value = value;
    run_parts(&j, fill_part);
}

/* keep = x > thr over the part; the kept count goes to total, the entries equal to thr to
 * ties[part] when there is a ties array. */
static void greater_part(part_job *j, size_t part, uint64_t lo, uint64_t hi)
{
    uint64_t g = 0, e = 0;
    span_iter it;
    span_begin(j->s, lo, hi, &it);
    size_t r, j0, m;
    while (span_next(j->s, &it, &r, &j0, &m)) {
        const float *x = j->s->rows[r] + j0;
        uint8_t *kp = j->keep[r] + j0;
        for (size_t c = 0; c < m; c++) {
            kp[c] = x[c] > j->thr;
            g += kp[c];
        }
        if (j->ties)
            for (size_t c = 0; c < m; c++)
                e += x[c] == j->thr;
    }
    __atomic_fetch_add(&j->total, g, __ATOMIC_RELAXED);
    if (j->ties)
        j->ties[part] = e;
}

/* strict: keep = x > thr; returns the kept count */
static uint64_t mark_greater(const score_set *s, float thr, uint8_t *const *keep)
{
    part_job j = job_of(NULL, s);
    j.keep = keep, j.thr = thr;
    run_parts(&j, greater_part);
    return j.total;
}

/* mark_exact's second pass: the part's share of the `need` ties, the first in flat order. */
static void ties_part(part_job *j, size_t part, uint64_t lo, uint64_t hi)
{
    uint64_t before = 0;
    for (size_t u = 0; u < part; u++)
        before += j->ties[u];
    uint64_t take = j->need > before ? j->need - before : 0;
    if (take > j->ties[part])
        take = j->ties[part];
    span_iter it;
    span_begin(j->s, lo, hi, &it);
    size_t r, j0, m;
    while (take && span_next(j->s, &it, &r, &j0, &m)) {
        const float *x = j->s->rows[r] + j0;
        uint8_t *kp = j->keep[r] + j0;
        for (size_t c = 0; c < m && take; c++)
            if (x[c] == j->thr) {
                kp[c] = 1;
                take--;
            }
    }
}

/*
 * exact: keep = x > thr, plus the first `k - count(x > thr)` entries equal to thr in flat
 * order (row, then position). A first pass marks each part and counts its ties; a second
 * gives each part the share of the ties that falls to it.
 */
static void mark_exact(const score_set *s, float thr, uint64_t k, uint8_t *const *keep)
{
    uint64_t ties[MAX_PARTS];
    part_job j = job_of(NULL, s);
    j.keep = keep, j.thr = thr, j.ties = ties;
    run_parts(&j, greater_part);
    /* thr is the value at rank k-1, so greater <= k-1 and greater + all ties >= k */
    j.need = k - j.total;
    run_parts(&j, ties_part);
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
