/*
 * Selection policies behind one interface: per-(layer, KV head) scores of the context tokens
 * in, keep masks out. The rules follow the reference code described in spec/kvzip.md §3 and
 * spec/fastkv.md §2.3 and §8; doc/policies.md states each one.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

const char *kvz_policy_name(kvz_policy p)
{
    switch (p) {
    case KVZ_POLICY_FULL: return "full";
    case KVZ_POLICY_KVZIP_PAIR: return "kvzip-pair";
    case KVZ_POLICY_KVZIP_PAIR_UNIFORM: return "kvzip-pair-uniform";
    case KVZ_POLICY_KVZIP_HEAD: return "kvzip-head";
    case KVZ_POLICY_FASTKV: return "fastkv";
    case KVZ_POLICY_SNAPKV: return "snapkv";
    case KVZ_POLICY_PYRAMIDKV: return "pyramidkv";
    case KVZ_POLICY_ADAKV: return "adakv";
    case KVZ_POLICY_H2O: return "h2o";
    case KVZ_POLICY_STREAMING: return "streaming";
    case KVZ_POLICY_RANDOM: return "random";
    }
    return "unknown";
}

/* Protected positions of a head of n tokens: the first `sinks` and the last `recent`. */
static int is_protected(size_t j, size_t n, size_t sinks, size_t recent)
{
    return j < sinks || j + recent >= n;
}

static size_t n_protected(size_t n, size_t sinks, size_t recent)
{
    return sinks + recent >= n ? n : sinks + recent;
}

/* keep = protected tokens plus the top (k - protected) of the others (ties: lower index). */
static kvz_status head_topk(const float *s, size_t n, size_t k, size_t sinks, size_t recent, uint8_t *keep,
                            uint32_t *idx)
{
    for (size_t j = 0; j < n; j++)
        keep[j] = (uint8_t)is_protected(j, n, sinks, recent);
    const size_t p = n_protected(n, sinks, recent);
    if (k <= p || p == n)
        return KVZ_OK;
    /* p < n here, so the unprotected tokens are the run [sinks, n - recent) */
    size_t got;
    const kvz_status st = kvz_select_topk(s + sinks, n - p, k - p, idx, &got);
    for (size_t i = 0; st == KVZ_OK && i < got; i++)
        keep[sinks + idx[i]] = 1;
    return st;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* protected tokens plus a uniformly random (k - protected) of the others: partial Fisher-Yates */
static void head_random(size_t n, size_t k, size_t sinks, size_t recent, uint64_t seed, uint8_t *keep,
                        uint32_t *idx)
{
    for (size_t j = 0; j < n; j++)
        keep[j] = (uint8_t)is_protected(j, n, sinks, recent);
    const size_t p = n_protected(n, sinks, recent);
    if (k <= p || p == n)
        return;
    const size_t m = n - p, want = k - p < m ? k - p : m;
    for (size_t i = 0; i < m; i++)
        idx[i] = (uint32_t)(sinks + i);
    uint64_t state = seed;
    for (size_t i = 0; i < want; i++) {
        state = mix(state);
        const size_t r = i + (size_t)(state % (m - i));
        const uint32_t t = idx[i];
        idx[i] = idx[r], idx[r] = t;
        keep[idx[i]] = 1;
    }
}

/* The budget of a head of n tokens: `budget` or floor(n * ratio), at most n. */
static size_t head_budget(const kvz_policy_args *a)
{
    const size_t b = a->budget ? a->budget : (size_t)kvz_count_of(a->n_tokens, a->ratio);
    return b < a->n_tokens ? b : a->n_tokens;
}

/* One global selection over all heads of rows (protected entries made +inf), with k kept. */
static kvz_status global_select(const kvz_policy_args *a, const float *const *src, const float *head_value,
                                uint64_t k, uint8_t *const *keep)
{
    const size_t R = a->n_layers * a->n_kv_heads, n = a->n_tokens;
    float *buf = malloc(R * n * sizeof(float) + 1);
    const float **rows = malloc(R * sizeof *rows + 1);
    size_t *lens = malloc(R * sizeof *lens + 1);
    kvz_status st = KVZ_OK;
    if (!buf || !rows || !lens)
        st = kvz_fail(KVZ_ERR_NOMEM, "kvz_policy_select: no memory");
    for (size_t r = 0; st == KVZ_OK && r < R; r++) {
        for (size_t j = 0; j < n; j++)
            buf[r * n + j] =
                is_protected(j, n, a->sinks, a->recent) ? INFINITY : (head_value ? head_value[r] : src[r][j]);
        rows[r] = buf + r * n, lens[r] = n;
    }
    if (st == KVZ_OK)
        st = kvz_select_global_k(rows, lens, R, k, a->mode, keep, NULL, NULL);
    for (size_t r = 0; st == KVZ_OK && r < R; r++) /* protected stay, even when the budget is smaller */
        for (size_t j = 0; j < n; j++)
            keep[r][j] |= (uint8_t)is_protected(j, n, a->sinks, a->recent);
    free(buf), free(rows), free(lens);
    return st;
}

/* PyramidKV's layer capacities (KVCache-Factory rule, spec/fastkv.md §8). */
static size_t pyramid_cap(const kvz_policy_args *a, size_t layer, size_t B)
{
    const size_t W = a->recent, n = a->n_tokens, L = a->n_layers;
    if (B <= W || n <= W)
        return B;
    const double beta = a->pyramid_beta > 0 ? a->pyramid_beta : 20.0;
    const long b = (long)(B - W);
    long mn = (long)floor((double)b / beta), mx = 2 * b - mn;
    if (mx >= (long)(n - W)) {
        mx = (long)(n - W);
        mn = 2 * b - mx;
    }
    const long step = L > 1 ? (long)floor((double)(mx - mn) / (double)(L - 1)) : 0;
    const long cap = mx - (long)layer * step + (long)W;
    return cap < (long)W ? W : (size_t)cap;
}

/* AdaKV within one layer: heads share H x (B - W) slots by score, each keeping at least the
 * safeguard share alpha x (B - W) (spec/fastkv.md §8). */
static kvz_status adakv_layer(const kvz_policy_args *a, size_t layer, size_t B, uint8_t *const *keep,
                              uint32_t *idx)
{
    const size_t H = a->n_kv_heads, n = a->n_tokens, W = a->recent, S = a->sinks;
    const double alpha = a->adakv_alpha > 0 ? a->adakv_alpha : 0.2;
    const size_t p = n_protected(n, S, W), m = n - p;
    if (B >= n || m == 0) { /* no compression when the budget covers the head */
        for (size_t h = 0; h < H; h++)
            memset(keep[layer * H + h], 1, n);
        return KVZ_OK;
    }
    const size_t b = B > p ? B - p : 0;
    /* the layer's global top-(H*b) over the unprotected scores, counted per head */
    const float **rows = malloc(H * sizeof *rows);
    size_t *lens = malloc(H * sizeof *lens);
    uint8_t **sel = malloc(H * sizeof *sel), *selbuf = malloc(H * m + 1);
    kvz_status st =
        rows && lens && sel && selbuf ? KVZ_OK : kvz_fail(KVZ_ERR_NOMEM, "kvz_policy_select: no memory");
    for (size_t h = 0; st == KVZ_OK && h < H; h++)
        rows[h] = a->scores[layer * H + h] + S, lens[h] = m, sel[h] = selbuf + h * m;
    if (st == KVZ_OK)
        st = kvz_select_global_k(rows, lens, H, (uint64_t)H * b, KVZ_SELECT_EXACT, sel, NULL, NULL);
    for (size_t h = 0; st == KVZ_OK && h < H; h++) {
        size_t c = 0;
        for (size_t j = 0; j < m; j++)
            c += sel[h][j];
        const size_t cap = (size_t)llround((double)c * (1.0 - alpha) + floor((double)b * alpha));
        st = head_topk(a->scores[layer * H + h], n, p + cap, S, W, keep[layer * H + h], idx);
    }
    free(rows), free(lens), free(sel), free(selbuf);
    return st;
}

kvz_status kvz_policy_select(const kvz_policy_args *given, uint8_t *const *keep, size_t *n_kept)
{
    static const char fn[] = "kvz_policy_select";
    if (!given || !keep)
        return kvz_fail(KVZ_ERR_NULL, "%s: args and keep must not be NULL", fn);
    kvz_policy_args args;
    const kvz_status sa =
        kvz_struct_in(fn, "kvz_policy_args", given, KVZ_SIZE_0_1(kvz_policy_args, seed), &args, sizeof args);
    if (sa != KVZ_OK)
        return sa;
    const kvz_policy_args *a = &args;
    if ((unsigned)a->policy > KVZ_POLICY_RANDOM)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: unknown policy %d", fn, (int)a->policy);
    if (!(a->ratio >= 0.0))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: ratio %g must be >= 0", fn, a->ratio);
    const size_t L = a->n_layers, H = a->n_kv_heads, R = L * H, n = a->n_tokens;
    const int needs_scores = a->policy != KVZ_POLICY_FULL && a->policy != KVZ_POLICY_STREAMING &&
                             a->policy != KVZ_POLICY_RANDOM && a->policy != KVZ_POLICY_KVZIP_HEAD;
    if (needs_scores && n && !a->scores)
        return kvz_fail(KVZ_ERR_NULL, "%s: policy %s needs scores", fn, kvz_policy_name(a->policy));
    if (a->policy == KVZ_POLICY_KVZIP_HEAD && !a->head_scores)
        return kvz_fail(KVZ_ERR_NULL, "%s: kvzip-head needs head_scores", fn);
    for (size_t r = 0; r < R && n; r++) {
        if (!keep[r])
            return kvz_fail(KVZ_ERR_NULL, "%s: keep[%zu] is NULL", fn, r);
        if (needs_scores && !a->scores[r])
            return kvz_fail(KVZ_ERR_NULL, "%s: scores[%zu] is NULL", fn, r);
        if (needs_scores)
            for (size_t j = 0; j < n; j++)
                if (isnan(a->scores[r][j]))
                    return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: score of layer %zu head %zu token %zu is NaN", fn,
                                    r / H, r % H, j);
    }
    if (n == 0 || R == 0) {
        if (n_kept)
            *n_kept = 0;
        return KVZ_OK;
    }
    const size_t B = head_budget(a);
    uint32_t *idx = malloc(n * sizeof *idx);
    if (!idx)
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", fn);
    kvz_status st = KVZ_OK;
    switch (a->policy) {
    case KVZ_POLICY_FULL:
        for (size_t r = 0; r < R; r++)
            memset(keep[r], 1, n);
        break;
    case KVZ_POLICY_KVZIP_PAIR:
    case KVZ_POLICY_KVZIP_HEAD: {
        /* the budget over all (layer, head, token): int(N * ratio), or budget per head */
        const uint64_t N = (uint64_t)R * n;
        const uint64_t k = a->budget ? (uint64_t)B * R : (a->ratio >= 1.0 ? N : kvz_count_of(N, a->ratio));
        st = global_select(a, a->scores, a->policy == KVZ_POLICY_KVZIP_HEAD ? a->head_scores : NULL, k, keep);
        break;
    }
    case KVZ_POLICY_KVZIP_PAIR_UNIFORM:
    case KVZ_POLICY_FASTKV:
    case KVZ_POLICY_SNAPKV:
    case KVZ_POLICY_H2O:
        for (size_t r = 0; st == KVZ_OK && r < R; r++)
            st = head_topk(a->scores[r], n, B, a->sinks, a->recent, keep[r], idx);
        break;
    case KVZ_POLICY_PYRAMIDKV:
        for (size_t r = 0; st == KVZ_OK && r < R; r++)
            st = head_topk(a->scores[r], n, pyramid_cap(a, r / H, B), a->sinks, a->recent, keep[r], idx);
        break;
    case KVZ_POLICY_ADAKV:
        for (size_t l = 0; st == KVZ_OK && l < L; l++)
            st = adakv_layer(a, l, B, keep, idx);
        break;
    case KVZ_POLICY_STREAMING: /* sinks plus the most recent B - sinks */
        for (size_t r = 0; r < R; r++)
            for (size_t j = 0; j < n; j++)
                keep[r][j] = (uint8_t)(j < a->sinks || j + (B > a->sinks ? B - a->sinks : 0) >= n ||
                                       is_protected(j, n, a->sinks, a->recent));
        break;
    case KVZ_POLICY_RANDOM:
        for (size_t r = 0; r < R; r++)
            head_random(n, B, a->sinks, a->recent, mix(a->seed ^ mix(r)), keep[r], idx);
        break;
    }
    free(idx);
    if (st == KVZ_OK && n_kept) {
        size_t c = 0;
        for (size_t r = 0; r < R; r++)
            for (size_t j = 0; j < n; j++)
                c += keep[r][j] != 0;
        *n_kept = c;
    }
    return st;
}
