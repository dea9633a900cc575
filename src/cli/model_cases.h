/* The model-runner benchmark cases shared by `kvz bench model` and perf/: a synthetic model
 * with Llama-3.1-8B layer shapes (4096 wide, 32 query / 8 KV heads of 128, FFN 14336), 4 of
 * its 32 layers, a 32000-token vocabulary and a 4096-token context, bf16 cache, or (kvz bench
 * payoff --model) a model read from a GGUF file. Each call times one operation (wall clock)
 * and returns KVZ_OK or a status with kvz_last_error(). */
#ifndef KVZ_CLI_MODEL_CASES_H
#define KVZ_CLI_MODEL_CASES_H

#include "kvz.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { KVZ_MC_LAYERS = 4, KVZ_MC_CONTEXT = 4096, KVZ_MC_CHUNK = 2048, KVZ_MC_VOCAB = 32000 };

typedef struct kvz_mc kvz_mc;

/* The model (bf16 weights with AVX512_BF16, else f32) and the token ids of KVZ_MC_CONTEXT tokens. */
kvz_status kvz_mc_create(kvz_mc **out);
/* The same with n tokens of [system | context] and n_layers layers (0: KVZ_MC_LAYERS). */
kvz_status kvz_mc_create_at(size_t n, size_t n_layers, kvz_mc **out);
/* A model read from a GGUF file, its weights as kvz generate holds them, with n tokens of [system |
 * context] (ids spread over its vocabulary; n at most the context it was trained for). */
kvz_status kvz_mc_open(const char *path, size_t n, kvz_mc **out);
void kvz_mc_destroy(kvz_mc *mc);
/* "bf16" or "f32". */
const char *kvz_mc_weights(const kvz_mc *mc);
size_t kvz_mc_layers(const kvz_mc *mc);
/* The model's shape in words: "llama, 4 layers, 8 KV heads of 128, vocabulary 32000, bf16 weights". */
void kvz_mc_describe(const kvz_mc *mc, char *buf, size_t size);
/* Bytes of weights one decode step reads, all and those of the layers alone (the LM head's are the rest):
 * Q, K, V, O and the three FFN matrices a layer, the head n_vocab x n_embd, at the weights' width (the
 * norms and one embedding row are negligible). */
void kvz_mc_weight_bytes(const kvz_mc *mc, double *all, double *layers);
/* Bytes of K/V (and positions) one decode step over c reads: every row of a global layer, the last
 * window - 1 rows of a sliding-window layer (Gemma 3's local layers); -1 when c does not fit the model. */
double kvz_mc_step_kv_bytes(const kvz_mc *mc, const kvz_cache *c);

/* A plain prefill of [system | context] into a fresh cache, kept for the calls below. */
kvz_status kvz_mc_prefill(kvz_mc *mc, double *seconds);
/* One decode step over the prefilled cache (the token is removed again afterwards). */
kvz_status kvz_mc_decode_step(kvz_mc *mc, double *seconds);
/* The same over another cache made for the model (a compressed one). */
kvz_status kvz_mc_decode_on(kvz_mc *mc, kvz_cache *c, double *seconds);
/* The prefilled cache (NULL before kvz_mc_prefill); the bench keeps ownership. */
kvz_cache *kvz_mc_cache(const kvz_mc *mc);
/* KVzip's reconstruction passes over the prefilled cache, with the fused scoring or without. */
kvz_status kvz_mc_passes(kvz_mc *mc, int scored, double *seconds);
/* The whole KVzip compression (prefill, passes, selection at ratio 0.3, compaction); parts
 * (NULL or two doubles) receives the seconds of its prefill and of its passes. */
kvz_status kvz_mc_kvzip(kvz_mc *mc, double *seconds, double *parts);
/* KVzip's selection at ratio from the scores of the last scored kvz_mc_passes, applied to a copy of
 * the prefilled cache (*out, the caller's); seconds: the copy and the selection. */
kvz_status kvz_mc_kvzip_select(kvz_mc *mc, double ratio, kvz_cache **out, double *seconds);
/* FastKV prefill: TSP at the middle layer, tsp_rate 0.2, retain 0.1, max pooling. */
kvz_status kvz_mc_fastkv(kvz_mc *mc, double *seconds);
/* The same, its cache kept in *kept (the caller's) when not NULL. */
kvz_status kvz_mc_fastkv_cache(kvz_mc *mc, double *seconds, kvz_cache **kept);

#ifdef __cplusplus
}
#endif

#endif
