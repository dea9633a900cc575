/* A decoder loaded from GGUF (llama, mistral, qwen2, gemma3): hyper-parameters, weights ready
 * for oneDNN, and the per-layer forward pass that drives the cache API as a host. */
#ifndef KVZ_MODEL_MODEL_H
#define KVZ_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kvz.h"
#include "model/gguf.h"
#include "model/linear.h"

/* How RoPE pairs the elements of a head: llama2.c/ggml "normal" (x[2i], x[2i+1]) or
 * NeoX/HF (x[i], x[i + rope_dim/2]). */
typedef enum kvz_rope_mode { KVZ_ROPE_NORM = 0, KVZ_ROPE_NEOX = 1 } kvz_rope_mode;

/* The gate of the feed-forward layer: SwiGLU (Llama) or GELU with the tanh approximation (Gemma). */
typedef enum kvz_ffn_act { KVZ_FFN_SILU = 0, KVZ_FFN_GELU_TANH = 1 } kvz_ffn_act;

typedef struct kvz_hparams {
    char arch[16];
    size_t n_layers, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx_train;
    size_t rope_dim;          /* rotated elements per head (<= head_dim) */
    float rope_base;          /* theta base (10000 when the file has none) */
    float rope_linear_factor; /* positions divided by it (1 = none) */
    float eps;                /* RMSNorm epsilon */
    kvz_rope_mode rope_mode;
    /* Gemma 3 (all zero for the Llama family, which keeps its behaviour): */
    float embd_scale;     /* token embeddings multiplied by it (0: 1; Gemma: sqrt(n_embd)) */
    float attn_scale;     /* logits scale (0: 1/sqrt(head_dim)) */
    kvz_ffn_act ffn_act;  /* the feed-forward gate */
    size_t swa_window;    /* local layers attend to the last swa_window tokens (0: every layer global) */
    size_t swa_period;    /* layer l is local when l % swa_period < swa_period - 1 */
    float rope_base_swa;  /* the RoPE base of the local layers */
} kvz_hparams;

/* The attention window of a layer: 0 for a global layer, hp->swa_window for a local one. */
static inline size_t kvz_hparams_window(const kvz_hparams *hp, size_t layer)
{
    return hp->swa_window && hp->swa_period && layer % hp->swa_period < hp->swa_period - 1 ? hp->swa_window : 0;
}

typedef struct kvz_layer_weights {
    const float *attn_norm, *ffn_norm; /* n_embd each */
    /* Gemma 3, NULL otherwise: RMSNorm weights of each query and key head (head_dim) and of the
       attention and feed-forward outputs before they join the residual (n_embd) */
    const float *q_norm, *k_norm, *post_attn_norm, *post_ffn_norm;
    kvz_linear q, k, v, o, gate, up, down;
} kvz_layer_weights;

typedef struct kvz_model {
    kvz_gguf *gguf;
    kvz_hparams hp;
    const kvz_gguf_tensor *tok_embd; /* rows fetched (and dequantized) one token at a time */
    kvz_gguf_tensor synth_embd;      /* the embedding of a synthetic model (no file) */
    kvz_layer_weights *layers;
    const float *output_norm;
    kvz_linear output; /* the LM head (token_embd when the file ties them) */
    const float *rope_freq_factors; /* llama3-style per-pair divisors, or NULL */
    kvz_mm *mm;
    /* one layer step's activations, kept from call to call: fresh pages for every layer of
       every chunk cost a page fault and a zeroing per 4 KiB (a few % of a prefill). Like
       mm's buffers, it makes a model usable by one caller at a time. */
    float *act;
    size_t act_floats;
    uint8_t fingerprint[32];
    void **owned; /* converted weights */
    size_t n_owned, cap_owned;
    int as_stored; /* some matrix is used as the file's blocks, with no copy (KVZ_WFMT_BLOCKS) */
} kvz_model;

/* Options of kvz_model_load. */
typedef struct kvz_model_opts {
    int bf16_weights; /* -1 auto (bf16 when the CPU has AVX512_BF16; decode reads quantized blocks as
                         stored), 0 f32, 1 bf16 */
} kvz_model_opts;

/* Opens and validates a GGUF model; unknown architecture, tensor type, missing or
 * mis-shaped tensor → a specific status and message, *out NULL. */
kvz_status kvz_model_load(const char *path, const kvz_model_opts *opts, kvz_model **out);
void kvz_model_free(kvz_model *m);

/* The bytes of the layers' and the head's matrices as a decode step reads them (kvz_linear_bytes):
 * under KVZ_WFMT_BLOCKS also all the model holds of them. *layers (may be NULL) receives the
 * layers' share. */
double kvz_model_matrix_bytes(const kvz_model *m, double *layers);

/* A model file's identity, as .kvz files record it: four FNV-1a lanes over the metadata and tensor
 * directory and the first and last bytes of every tensor, which costs no full read of the weights. */
void kvz_model_fingerprint(const kvz_gguf *g, uint8_t out[32]);

/* A model without a file, for benchmarks: the shape of hp (arch, layers, widths, heads,
 * vocabulary; rope and eps as given), weights drawn uniformly from +-1/sqrt(fan-in) with
 * `seed` in `wtype` (f32 or bf16), norms 1. Its fingerprint is derived from the shape and seed. */
kvz_status kvz_model_synthetic(const kvz_hparams *hp, kvz_dtype wtype, uint64_t seed, kvz_model **out);

/* Where a layer's K/V go and are read from: the cache itself or a query's private tail. */
typedef struct kvz_kv_target {
    kvz_cache *cache; /* used when query is NULL */
    kvz_query *query;
} kvz_kv_target;

/* One layer applied to n tokens in flight. */
typedef struct kvz_layer_io {
    size_t n;
    float *x;           /* [n][n_embd] residual stream, updated in place */
    const int64_t *pos; /* [n] RoPE positions */
    int explicit_pos;   /* append with kvz_cache_append_at (positions with gaps) */
    size_t chunk;       /* tokens per sub-step of projections/attention/FFN; 0: all n */
    /* KVzip scoring (cache target only): score + h*score_head_stride receives the max-folded
     * probabilities of cache rows [chunk_begin, chunk_end) (kvz_cache_attend). Needs chunk 0. */
    float *score;
    ptrdiff_t score_head_stride;
    size_t sink_end, chunk_begin, chunk_end;
    /* FastKV: post-RoPE queries of the last q_tail_rows tokens, [r][n_head][head_dim]. */
    float *q_tail;
    size_t q_tail_rows;
    /* H2O (cache target, global layers only): accum + h*accum_head_stride, one float per row
     * of the segment, receives += the attention the n tokens give each row (kvz_cache_attend). */
    float *accum;
    ptrdiff_t accum_head_stride;
} kvz_layer_io;

/* The token embeddings of ids into x[n][n_embd]. KVZ_ERR_INVALID_ARG for an id outside the vocabulary. */
kvz_status kvz_model_embed(const kvz_model *m, const int32_t *ids, size_t n, float *x);

/* KVZ_ERR_MISMATCH (naming both shapes) unless the target's cache has the model's layer count,
 * KV heads and head size, and (a cache target) each layer's sliding window; the prefills check
 * it, and kvz_model_layer the shape and its own layer's window, before touching a row. */
kvz_status kvz_model_kv_check(const kvz_model *m, kvz_kv_target kv, const char *fn);

/* One decoder layer: RMSNorm, Q/K/V, RoPE, append K/V to the target, attention over it,
 * output projection, residual, RMSNorm, SwiGLU FFN, residual. */
kvz_status kvz_model_layer(kvz_model *m, size_t layer, kvz_kv_target kv, kvz_layer_io *io);

/* Final RMSNorm and LM head of n rows of x: logits[n][n_vocab]. */
kvz_status kvz_model_logits(kvz_model *m, const float *x, size_t n, float *logits);

/* Runs ids through every layer in chunks of `chunk` tokens (0: one chunk) at the target's
 * next positions, appending their K/V; logits (optional) receives the last token's. On
 * failure the target may hold part of the tokens: discard it (or truncate a cache). */
kvz_status kvz_model_prefill(kvz_model *m, kvz_kv_target kv, const int32_t *ids, size_t n, size_t chunk,
                             float *logits);

/* As kvz_model_prefill, with the logits of the last n_last tokens: logits[n_last][n_vocab]. */
kvz_status kvz_model_prefill_logits(kvz_model *m, kvz_kv_target kv, const int32_t *ids, size_t n, size_t chunk,
                                    size_t n_last, float *logits);

/* Where a prefill lets its host look at each layer of the last chunk: the post-RoPE queries
 * of the last q_tail_rows tokens ([r][n_head][head_dim]) are in q_tail when after_layer(ctx,
 * layer) runs, and the layer's K/V of every token are in the target (SnapKV-family window
 * scores). The chunking keeps those rows in the last chunk. after_layer may be NULL, and
 * q_tail too when q_tail_rows is 0.
 * accum (optional, a cache target): every chunk of every global layer l adds the attention
 * its tokens give each row of KV head h to accum + l*accum_layer_stride + h*accum_head_stride
 * (one float per row: n of them for a prefill into an empty cache; zero them first).
 * Sliding-window layers collect none and their rows are not touched (H2O). */
typedef struct kvz_prefill_hook {
    size_t q_tail_rows;
    float *q_tail;
    kvz_status (*after_layer)(void *ctx, size_t layer);
    void *ctx;
    float *accum;
    ptrdiff_t accum_layer_stride, accum_head_stride;
} kvz_prefill_hook;

/* As kvz_model_prefill_logits, with an optional hook. */
kvz_status kvz_model_prefill_ex(kvz_model *m, kvz_kv_target kv, const int32_t *ids, size_t n, size_t chunk,
                                size_t n_last, float *logits, const kvz_prefill_hook *hook);

/* The cache type that follows the type the model's products run in (bf16 with bf16 weights or
 * blocks converted to bf16, else f32): what `--kv-dtype auto` and libkvz-model store. */
static inline kvz_dtype kvz_model_kv_dtype(const kvz_model *m)
{
    return kvz_linear_dense_format(&m->layers[0].q) == KVZ_WFMT_BF16 ? KVZ_DTYPE_BF16 : KVZ_DTYPE_F32;
}

/* A cache shaped for the model. */
kvz_status kvz_model_cache_create(const kvz_model *m, kvz_dtype dtype, kvz_cache **out);

/* The target's next position (layer 0). */
int64_t kvz_kv_next_position(kvz_kv_target kv);

#endif
