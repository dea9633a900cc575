/* SnapKV-family window scores (spec/fastkv.md §2.2) of a layer held in a cache, and a prefill
 * that produces them for every layer of [system | context] (the scores SnapKV, PyramidKV,
 * AdaKV and FastKV's compression rank tokens by). */
#ifndef KVZ_MODEL_WINDOW_SCORES_H
#define KVZ_MODEL_WINDOW_SCORES_H

#include "model/model.h"

/* Window scores of one layer whose every KV head holds exactly n rows: qt holds the post-RoPE
 * queries of the last `window` tokens ([r][n_head][head_dim]); out + h*n receives the n - window
 * scores of KV head h. */
kvz_status kvz_layer_window_scores(const kvz_model *m, const kvz_cache *c, size_t layer, size_t n, const float *qt,
                                   size_t window, size_t kernel, kvz_pool pool, float *out);

/* Prefills ids = [system (n_sys) | context] into an empty cache (chunked, as kvz_model_prefill)
 * and writes, per layer and KV head, the window scores of the context tokens:
 * scores[(layer*H + head)*n_c + j], n_c = n - n_sys; the last `window` context tokens (the
 * window itself, which the policies protect as `recent`) get 0. Needs n_c > window. */
kvz_status kvz_prefill_window_scores(kvz_model *m, kvz_cache *cache, const int32_t *ids, size_t n, size_t n_sys,
                                     size_t chunk, size_t window, size_t kernel, kvz_pool pool, float *scores);

#endif
