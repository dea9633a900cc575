/* FastKV prefill on the model runner: per-KV-head window-score compression of every layer's
 * cache plus token-selective propagation (TSP) past one middle layer (spec/fastkv.md §2). */
#ifndef KVZ_MODEL_FASTKV_H
#define KVZ_MODEL_FASTKV_H

#include <stddef.h>
#include <stdint.h>

#include "kvz.h"
#include "model/model.h"

/* tsp_layer value meaning "the middle": n_layers / 2 - 1 (15 of 32, 17 of 36, 19 of 40: the
 * layers the reference scripts use for Llama-3.1-8B, Ministral-8B and Mistral-Nemo). */
#define KVZ_FASTKV_TSP_MIDDLE ((size_t)-1)

typedef struct kvz_fastkv_opts {
    int tsp;            /* 0: no token-selective propagation (cache compression only) */
    size_t tsp_layer;   /* t, 0-based, < n_layers, a global layer; KVZ_FASTKV_TSP_MIDDLE: the middle
                           (n_layers / 2 - 1) or the global layer nearest it (the earlier of two) */
    size_t tsp_len;     /* T, propagated tokens including the window (> window); 0: floor(L * tsp_rate) */
    double tsp_rate;    /* proportional T, in (0, 1] */
    size_t budget;      /* B, cache rows per KV head including the window (> window); 0: proportional */
    double retain_rate; /* proportional B: floor(n_l * retain_rate) for layers <= t, floor(n_l *
                           (retain_rate / tsp_rate)) deeper (TSP on); in (0, 1] */
    size_t window;      /* W, observation window: the last W tokens (always kept and propagated) */
    size_t kernel;      /* odd pooling kernel */
    kvz_pool pool;      /* v1 code default avg, v2 code default max: always explicit */
    size_t chunk;       /* tokens per sub-step inside a layer (bounds activations); 0: all at once */
} kvz_fastkv_opts;

/* The v1 code's settings (constant budgets): TSP at the middle layer, T = 2048, B = 512,
 * W = 8, kernel 7, average pooling, no chunking. */
void kvz_fastkv_defaults(kvz_fastkv_opts *o);
/* The v2 code's settings (proportional budgets): TSP at the middle layer, tsp_rate 0.2,
 * retain_rate 0.1, W = 8, kernel 7, max pooling, no chunking. */
void kvz_fastkv_defaults_rate(kvz_fastkv_opts *o);

/* What a FastKV prefill did. The arrays are the caller's (NULL: not wanted). */
typedef struct kvz_fastkv_stats {
    size_t *tokens;         /* [n_layers]: tokens that ran through each layer (n_l) */
    size_t *budget;         /* [n_layers]: the layer's B_l as computed (constant B, or the floor of
                               n_l times the layer's rate); a global layer compressed when W < B_l <= n_l; a
                               sliding-window         layer keeps its window */
    size_t *kept;           /* [n_layers]: rows every KV head of the layer holds after the prefill */
    int64_t *tsp_positions; /* room for n: original positions of the propagated tokens, ascending */
    size_t tsp_count;       /* out: tokens propagated past the TSP layer (T); 0 when TSP did not fire */
    size_t tsp_layer;       /* out: the TSP layer used (KVZ_FASTKV_TSP_MIDDLE resolved) */
} kvz_fastkv_stats;

/*
 * Prefills ids (positions 0..n-1) into an empty cache shaped for the model with FastKV,
 * layer by layer: layers <= t run on all n tokens, layer t gathers the hidden states (and
 * original positions) of the T selected tokens, deeper layers run on those only. Each layer
 * attends over all of its own tokens (uncompressed), then its cache keeps, per KV head, the
 * top (B_l - W) window scores plus the window; the layer is compacted before the next one
 * runs. On a model with sliding-window layers (Gemma 3) only the global layers are compressed
 * and select (a windowed layer keeps its window: its tokens see no further), and past the TSP
 * layer a windowed layer's window counts the propagated tokens, not positions (the
 * reference's flash attention counts by index; kvz_cache_config.layer_window). logits
 * (optional, n_vocab floats) receives the last prompt token's logits; stats is optional.
 * Decoding continues at position n (kvz_model_step).
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (options, a windowed TSP layer, ids,
 *         cache shape), KVZ_ERR_STATE (the cache is not empty or has queries), KVZ_ERR_NOMEM. After a
 *         failure past the validation the cache holds a partial prefill: destroy it.
 */
kvz_status kvz_fastkv_prefill(kvz_model *m, kvz_cache *cache, const int32_t *ids, size_t n,
                              const kvz_fastkv_opts *o, float *logits, kvz_fastkv_stats *stats);

#endif
