/**
 * @file kvz_model.h
 * libkvz-model: GGUF language models run on the CPU with libkvz's compressed caches, KVzip and
 * FastKV end to end (pkg-config kvz-model; it links libkvz, whose kvz.h it includes).
 *
 * A kvz_lm is a loaded model with its tokenizer and chat template. kvz_lm_compress turns a
 * context into a compressed kvz_cache (the system prompt of the model's chat template, then the
 * context, scored and selected by a policy); kvz_lm_ask answers a question from such a cache
 * without changing it, as often as wanted; kvz_cache_save / kvz_lm_load_cache keep it in a .kvz
 * file. One call at a time per kvz_lm (it holds the activations); several kvz_lm may run at once.
 * Errors: a kvz_status, and kvz_last_error() says why (doc/api.md).
 */
#ifndef KVZ_MODEL_H
#define KVZ_MODEL_H

#include "kvz.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A loaded model. @since 0.1 */
typedef struct kvz_lm kvz_lm;

/** The weights' type in memory. @since 0.1 */
typedef enum kvz_lm_weights {
    KVZ_WEIGHTS_AUTO = 0, /**< bf16 where the CPU has AVX512_BF16 or AMX, else f32 */
    KVZ_WEIGHTS_F32 = 1,
    KVZ_WEIGHTS_BF16 = 2
} kvz_lm_weights;

/** How to open a model (NULL: every default). @since 0.1 */
typedef struct kvz_lm_config {
    size_t struct_size; /**< sizeof(kvz_lm_config) */
    kvz_lm_weights weights;
} kvz_lm_config;

/**
 * Opens a GGUF file (Llama, Qwen2, Mistral, SmolLM2 and Gemma 3 families; doc/runner.md) with
 * its tokenizer. @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_IO, KVZ_ERR_FORMAT, KVZ_ERR_CORRUPT,
 * KVZ_ERR_TRUNCATED, KVZ_ERR_UNSUPPORTED (architecture, tensor type), KVZ_ERR_INVALID_ARG,
 * KVZ_ERR_NOMEM; *lm is NULL on failure. @since 0.1
 */
KVZ_API kvz_status kvz_lm_open(const char *path, const kvz_lm_config *config, kvz_lm **lm);

/** Frees a model (NULL is a no-op). Caches made with it stay valid. @since 0.1 */
KVZ_API void kvz_lm_close(kvz_lm *lm);

/** What a model is. @since 0.1 */
typedef struct kvz_lm_info {
    size_t struct_size; /**< sizeof(kvz_lm_info), set by the caller */
    char arch[16];      /**< general.architecture */
    char chat[16];      /**< the chat template family ("chatml", "llama3", "gemma", "plain", ...) */
    size_t n_layers, n_heads, n_kv_heads, head_dim, n_embd, n_vocab;
    size_t n_params;               /**< elements of every tensor in the file */
    kvz_dtype weights;             /**< the weights' type in memory */
    kvz_dtype kv_dtype;            /**< the cache type kvz_lm_compress uses by default (as the weights) */
    uint8_t model_fingerprint[32]; /**< identity of the weights, as .kvz files record it */
} kvz_lm_info;

/** @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (struct_size). @since 0.1 */
KVZ_API kvz_status kvz_lm_get_info(const kvz_lm *lm, kvz_lm_info *info);

/**
 * Token ids of a UTF-8 text (no BOS added; special tokens written in the text, such as
 * "<|im_start|>", become their ids). n receives the count; ids (room for cap) may be NULL to
 * learn it. @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (cap too small: *n says how many),
 * KVZ_ERR_NOMEM. @since 0.1
 */
KVZ_API kvz_status kvz_lm_tokenize(const kvz_lm *lm, const char *text, int32_t *ids, size_t cap, size_t *n);

/**
 * The text of token ids (special tokens rendered), NUL-terminated in text (room for cap
 * bytes); len receives its length without the NUL. text may be NULL to learn it.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (an id outside the vocabulary, cap too
 * small: *len says how long), KVZ_ERR_NOMEM. @since 0.1
 */
KVZ_API kvz_status kvz_lm_detokenize(const kvz_lm *lm, const int32_t *ids, size_t n, char *text, size_t cap,
                                     size_t *len);

/** How kvz_lm_compress compresses. Zeros keep the whole context (KVZ_POLICY_FULL is 0): set policy
 *  to KVZ_POLICY_KVZIP_PAIR for KVzip. @since 0.1 */
typedef struct kvz_lm_compress_opts {
    size_t struct_size; /**< sizeof(kvz_lm_compress_opts) */
    kvz_policy policy;  /**< any kvz_policy (KVZIP_PAIR: KVzip; FULL, which is 0: no compression) */
    double ratio;       /**< kept fraction of the context, in (0, 1]; 0: 0.3 */
    int f32_cache;      /**< non-zero: store f32 rows (default: kvz_lm_info.kv_dtype) */
    size_t chunk;       /**< KVzip's context tokens per pass (0: KVZ_KVZIP_CHUNK) */
} kvz_lm_compress_opts;

/**
 * Prefills the model's system prompt and the context (a UTF-8 text) into a new cache, scores
 * the context as the policy does (KVzip's reconstruction passes; the SnapKV family's window
 * scores and H2O's accumulated attention during the prefill) and keeps the policy's selection.
 * @param opts NULL: zeros, the whole context kept.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (empty context, ratio, policy),
 * KVZ_ERR_NOMEM; *cache is NULL on failure. @since 0.1
 */
KVZ_API kvz_status kvz_lm_compress(kvz_lm *lm, const char *context, const kvz_lm_compress_opts *opts,
                                   kvz_cache **cache);

/** How an answer is generated (zeros: greedy, up to 128 tokens, stop at the end of the turn). @since 0.1 */
typedef struct kvz_lm_gen_opts {
    size_t struct_size; /**< sizeof(kvz_lm_gen_opts) */
    size_t max_tokens;  /**< 0: 128 */
    float temperature;  /**< <= 0: greedy */
    uint64_t seed;      /**< for temperature > 0 */
    int no_stop;        /**< non-zero: go on past the end-of-turn tokens */
} kvz_lm_gen_opts;

/**
 * Answers a question from a cache made by kvz_lm_compress (or loaded), through a kvz_query: the
 * cache is not changed, and other threads may read it meanwhile. The question becomes a user
 * turn of the chat template and the answer the assistant's reply, without its end-of-turn
 * token. *answer is malloc'ed (free it with kvz_lm_free). The same as `kvz ask`.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (empty question), KVZ_ERR_MISMATCH (a cache
 * of another shape), KVZ_ERR_NOMEM. @since 0.1
 */
KVZ_API kvz_status kvz_lm_ask(kvz_lm *lm, const kvz_cache *cache, const char *question,
                              const kvz_lm_gen_opts *opts, char **answer);

/**
 * Continues a text as it is (no chat template, a BOS first where the model has one) with a
 * full cache of its own; the same as `kvz generate`. *text is malloc'ed (kvz_lm_free).
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (empty prompt), KVZ_ERR_NOMEM. @since 0.1
 */
KVZ_API kvz_status kvz_lm_generate(kvz_lm *lm, const char *prompt, const kvz_lm_gen_opts *opts, char **text);

/**
 * Loads a .kvz file and checks it against the model: the fingerprint its kvz_lm_compress
 * recorded, and the cache's shape and windows. @return as kvz_cache_load, and KVZ_ERR_MISMATCH.
 * @since 0.1
 */
KVZ_API kvz_status kvz_lm_load_cache(const kvz_lm *lm, const char *path, kvz_cache **cache);

/**
 * Saves a cache made with this model to a .kvz file with the model's fingerprint and the
 * policy and ratio it was compressed with (kvz_cache_save). @since 0.1
 */
KVZ_API kvz_status kvz_lm_save_cache(const kvz_lm *lm, const kvz_cache *cache, const char *path,
                                     const kvz_lm_compress_opts *opts);

/** Frees what kvz_lm_ask and kvz_lm_generate returned (NULL is a no-op). @since 0.1 */
KVZ_API void kvz_lm_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
