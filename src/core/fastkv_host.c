/* FastKV for a host's own model (spec/fastkv.md §2.3-§2.4): which tokens' hidden states go past
 * the TSP layer, and the per-KV-head compression of one layer's cache, both from window scores. */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

kvz_status kvz_fastkv_propagate(const float *scores, size_t n_kv_heads, ptrdiff_t head_stride, size_t n,
                                size_t window, size_t n_keep, uint32_t *idx)
{
    static const char fn[] = "kvz_fastkv_propagate";
    if (!scores || !idx)
        return kvz_fail(KVZ_ERR_NULL, "%s: scores and idx must not be NULL", fn);
    if (!n_kv_heads || window >= n_keep || n_keep > n || n > UINT32_MAX)
        return kvz_fail(
            KVZ_ERR_INVALID_ARG,
            "%s: %zu KV heads, %zu tokens, window %zu, %zu to keep (want heads > 0, window < keep <= "
            "tokens < 2^32)",
            fn, n_kv_heads, n, window, n_keep);
    float *u = malloc((n - window ? n - window : 1) * sizeof *u);
    if (!u)
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory for %zu summed scores", fn, n - window);
    /* the heads' scores summed: one ranking for the hidden state all heads share */
    for (size_t j = 0; j < n - window; j++) {
        float s = 0;
        for (size_t h = 0; h < n_kv_heads; h++)
            s += scores[(ptrdiff_t)h * head_stride + (ptrdiff_t)j];
        u[j] = s;
    }
    size_t got = 0;
    const kvz_status st = kvz_select_topk(u, n - window, n_keep - window, idx, &got);
    free(u);
    if (st != KVZ_OK)
        return st;
    for (size_t r = 0; r < window; r++) /* the window always goes on */
        idx[got + r] = (uint32_t)(n - window + r);
    return KVZ_OK;
}

kvz_status kvz_fastkv_compress_layer(kvz_cache *cache, size_t layer, const float *scores, ptrdiff_t head_stride,
                                     size_t budget, size_t window)
{
    static const char fn[] = "kvz_fastkv_compress_layer";
    if (!cache || !scores)
        return kvz_fail(KVZ_ERR_NULL, "%s: cache and scores must not be NULL", fn);
    size_t L = 0, H = 0, n = 0, longest = 0, w = 0;
    kvz_status st = kvz_cache_shape(cache, &L, &H, NULL, NULL);
    if (st == KVZ_OK && layer >= L)
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: layer %zu of %zu", fn, layer, L);
    if (st == KVZ_OK && (st = kvz_cache_layer_window(cache, layer, &w)) == KVZ_OK && w)
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: layer %zu is a sliding-window layer", fn, layer);
    for (size_t s = 0; s < L * H && st == KVZ_OK; s++) {
        size_t len;
        if ((st = kvz_cache_length(cache, s / H, s % H, &len)) != KVZ_OK)
            break;
        longest = len > longest ? len : longest;
        if (s / H == layer && s % H == 0)
            n = len;
        else if (s / H == layer && len != n)
            st = kvz_fail(KVZ_ERR_STATE, "%s: layer %zu's heads hold %zu and %zu rows (want one length)", fn,
                          layer, n, len);
    }
    if (st == KVZ_OK && (window >= budget || n > UINT32_MAX))
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: budget %zu must exceed the window %zu (%zu rows)", fn, budget,
                      window, n);
    if (st != KVZ_OK || budget >= n)
        return st; /* a budget of all the rows keeps them all */
    uint8_t *mask = calloc(H * n + longest + 1, 1), *ones = mask ? mask + H * n : NULL;
    const uint8_t **keep = calloc(L * H, sizeof *keep);
    uint32_t *idx = malloc(budget * sizeof *idx);
    if (!mask || !keep || !idx)
        st = kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", fn);
    if (st == KVZ_OK)
        memset(ones, 1, longest);
    /* per KV head: the top (budget - window) of the rows before the window, and the window */
    for (size_t h = 0; h < H && st == KVZ_OK; h++) {
        uint8_t *mk = mask + h * n;
        size_t got = 0;
        if ((st = kvz_select_topk(scores + (ptrdiff_t)h * head_stride, n - window, budget - window, idx,
                                  &got)) != KVZ_OK)
            break;
        memset(mk + n - window, 1, window);
        for (size_t i = 0; i < got; i++)
            mk[idx[i]] = 1;
    }
    for (size_t s = 0; s < L * H && st == KVZ_OK; s++)
        keep[s] = s / H == layer ? mask + (s % H) * n : ones;
    if (st == KVZ_OK)
        st = kvz_cache_compact(cache, keep);
    free(mask), free(keep), free(idx);
    return st;
}
