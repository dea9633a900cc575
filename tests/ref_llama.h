/* An independent, naive double-precision Llama forward pass over a GGUF file's F32 tensors:
 * the reference the model runner is tested against (no cache, no oneDNN, no library kernels). */
#ifndef KVZ_TESTS_REF_LLAMA_H
#define KVZ_TESTS_REF_LLAMA_H

#include <stddef.h>
#include <stdint.h>

typedef struct ref_llama ref_llama;

/* NULL when the file cannot be read as an all-F32 llama model (the test then fails). */
ref_llama *ref_llama_open(const char *path);
void ref_llama_close(ref_llama *r);
size_t ref_llama_vocab(const ref_llama *r);
size_t ref_llama_layers(const ref_llama *r);
size_t ref_llama_kv_heads(const ref_llama *r);

/* Makes layer l local when l % period < period - 1 (Gemma 3's pattern): a query there sees only
 * the keys of the last `window` tokens present in the layer, itself included, counted in the
 * layer's tokens (after token-selective propagation too), not in positions. window 0: none. */
void ref_llama_set_window(ref_llama *r, size_t window, size_t period);

/* Logits of every position of ids (positions 0..n-1), causal attention over all earlier
 * tokens: out[n][vocab]. When attn is not NULL it receives, per layer l, query head qh,
 * query i and key j, the softmax probability: attn[((l*Hq + qh)*n + i)*n + j]. */
void ref_llama_forward(const ref_llama *r, const int32_t *ids, size_t n, double *out, double *attn);

/* FastKV's forward: tokens 0..n-1 (positions 0..n-1) run through layers 0..t; after layer t
 * only the tokens sel[0..m-1] (ascending indices; sel NULL: all) run on, with their original
 * positions. In every layer a query attends causally to the tokens present there, except
 * that a query i >= n_ctx (a decode token) sees a key j < n_ctx of KV head h in layer l only
 * if keep[(l*H + h)*n + j] (keep NULL: all), as over a compressed cache. out[n][vocab]
 * receives the logits of the tokens present after the last layer (other rows 0); attn, when
 * not NULL, the probabilities as ref_llama_forward lays them out, by original index (0 for
 * tokens absent from a layer). */
void ref_llama_forward_tsp(const ref_llama *r, const int32_t *ids, size_t n, size_t n_ctx, size_t t,
                           const size_t *sel, size_t m, const uint8_t *keep, double *out, double *attn);

/* As ref_llama_forward, except that a query at index >= mask_from sees a key j < mask_from of
 * KV head h in layer l only if keep[(l*H + h)*n + j]: the cache of the first mask_from tokens
 * was built unmasked and pruned afterwards, as KVzip does. */
void ref_llama_forward_masked(const ref_llama *r, const int32_t *ids, size_t n, const uint8_t *keep,
                              size_t mask_from, double *out, double *attn);

#endif
