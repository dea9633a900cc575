/* H2O's scores (the attention each cached token received during the prefill, summed over
 * every later query and the GQA group), collected by the prefill's attention kernel. */
#ifndef KVZ_MODEL_H2O_SCORES_H
#define KVZ_MODEL_H2O_SCORES_H

#include "model/model.h"

/* Prefills ids = [system (n_sys) | context] into an empty cache (in chunks of `chunk` tokens,
 * 0: one, as kvz_model_prefill) and writes, per layer and KV head, the accumulated attention
 * of each context token: scores[(layer*H + head)*n_c + j], n_c = n - n_sys, the sum over the
 * group's query heads and every query i >= n_sys + j of the softmax probability query i gives
 * token n_sys + j (over all the tokens it sees, the system prompt included). Sliding-window
 * layers get zeros (they are not selected from). Needs n > n_sys. */
kvz_status kvz_prefill_h2o_scores(kvz_model *m, kvz_cache *cache, const int32_t *ids, size_t n, size_t n_sys,
                                  size_t chunk, float *scores);

#endif
