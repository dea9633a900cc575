/* H2O scores from a prefill: the attention kernel accumulates, chunk after chunk, the
 * probabilities every cached row receives; the context rows become the scores. */
#include "model/h2o_scores.h"

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

kvz_status kvz_prefill_h2o_scores(kvz_model *m, kvz_cache *cache, const int32_t *ids, size_t n, size_t n_sys,
                                  size_t chunk, float *scores)
{
    if (!m || !cache || !ids || !scores)
        return kvz_fail(KVZ_ERR_NULL, "kvz_prefill_h2o_scores: NULL argument");
    if (n_sys >= n)
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "kvz_prefill_h2o_scores: %zu tokens, %zu of them the system prompt", n, n_sys);
    for (size_t l = 0; l < m->hp.n_layers; l++) {
        int64_t next = 0;
        const kvz_status sn = kvz_cache_next_position(cache, l, &next);
        if (sn != KVZ_OK)
            return sn;
        if (next != 0) /* the rows must be the ids: accum row j is token j */
            return kvz_fail(KVZ_ERR_STATE, "kvz_prefill_h2o_scores: the cache is not empty");
    }
    const size_t L = m->hp.n_layers, H = m->hp.n_head_kv, n_c = n - n_sys;
    size_t cnt;
    if (!kvz_mul_ok(L * H, n, &cnt))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_prefill_h2o_scores: %zu tokens are too many", n);
    /* every row of the prefill, the system prompt's too: they share the queries' softmax */
    float *acc = calloc(cnt ? cnt : 1, sizeof *acc);
    if (!acc)
        return kvz_fail(KVZ_ERR_NOMEM, "kvz_prefill_h2o_scores: no memory for %zu sums", cnt);
    kvz_prefill_hook hook = {0};
    hook.accum = acc, hook.accum_layer_stride = (ptrdiff_t)(H * n), hook.accum_head_stride = (ptrdiff_t)n;
    const kvz_status st = kvz_model_prefill_ex(m, (kvz_kv_target){cache, NULL}, ids, n, chunk, 0, NULL, &hook);
    for (size_t r = 0; st == KVZ_OK && r < L * H; r++) {
        float *dst = scores + r * n_c;
        if (kvz_hparams_window(&m->hp, r / H)) /* collected nothing, and is not selected from */
            memset(dst, 0, n_c * sizeof *dst);
        else
            memcpy(dst, acc + r * n + n_sys, n_c * sizeof *dst);
    }
    free(acc);
    return st;
}
