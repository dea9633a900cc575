/* The compressed-cache benchmark cases shared by `kvz bench cache` and perf/: one
 * Llama-3.1-8B layer (8 KV heads, G = 4, d = 128, 32768 tokens, bf16) compressed by a
 * policy at a kept ratio, a decode step over it, and .kvz save/load of it. */
#ifndef KVZ_CLI_CACHE_CASES_H
#define KVZ_CLI_CACHE_CASES_H

#include <stddef.h>

#include "kvz.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { KVZ_CC_H = 8, KVZ_CC_G = 4, KVZ_CC_D = 128, KVZ_CC_N = 32768 };

/* A fresh one-layer cache of KVZ_CC_N tokens (NULL when memory runs out). */
kvz_cache *kvz_cc_build(void);

/* Compacts the cache by a policy (FULL at ratio >= 1) on skewed per-head synthetic scores;
 * kept receives the kept rows. 0, or -1 with kvz_last_error(). */
int kvz_cc_compress(kvz_cache *c, kvz_policy policy, double ratio, size_t *kept);

/* One decode step (a query appends one token and attends over the cache). */
typedef struct kvz_cc_decoder kvz_cc_decoder;
kvz_cc_decoder *kvz_cc_decoder_create(const kvz_cache *c);
int kvz_cc_decode_step(kvz_cc_decoder *d);
/* The attention output of the last step (KVZ_CC_H * KVZ_CC_G * KVZ_CC_D floats). */
const float *kvz_cc_decoder_output(const kvz_cc_decoder *d);
void kvz_cc_decoder_destroy(kvz_cc_decoder *d);

/* K/V bytes a decode step reads over a cache of `rows` rows in all. */
double kvz_cc_decode_bytes(size_t rows);

/* The policies `kvz bench cache` compares, and the kept ratios. */
extern const kvz_policy kvz_cc_policies[9];
extern const double kvz_cc_ratios[4];

#ifdef __cplusplus
}
#endif

#endif
