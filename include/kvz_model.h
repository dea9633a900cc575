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

/** How the weights are held in memory (doc/runner.md). @since 0.1 */
typedef enum kvz_lm_weights {
    KVZ_WEIGHTS_AUTO = 0, /**< a block-quantized matrix as the file stores it, no copy (decode steps read
                               its blocks, prefill converts a panel at a time to bf16 where the CPU has
                               AVX512_BF16, else f32); BF16 matrices in place, F32 and F16 ones as f32 */
    KVZ_WEIGHTS_F32 = 1,  /**< every matrix converted to f32 at load */
    KVZ_WEIGHTS_BF16 = 2  /**< every matrix converted to bf16 at load (needs AVX512_BF16) */
} kvz_lm_weights;

/** How to open a model (NULL: every default). @since 0.1 */
typedef struct kvz_lm_config {
    size_t struct_size; /**< sizeof(kvz_lm_config) */
    kvz_lm_weights weights;
    size_t prefill_chunk; /**< tokens a prefill runs through the layers at once (0: 512, and 2048 in
                               kvz_lm_compress): the activations' memory grows with it */
    int vocab_only;       /**< non-zero: the tokenizer and chat template only, no weights read (fast; a
                               vocabulary-only GGUF will do): kvz_lm_tokenize, kvz_lm_detokenize,
                               kvz_lm_is_eog and kvz_lm_get_info work, the calls that run the model
                               return KVZ_ERR_INVALID_ARG */
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

/** What a model is. A model opened with vocab_only has arch, chat, n_vocab (the tokenizer's), bos and
 *  model_fingerprint; its other fields are 0. @since 0.1 */
typedef struct kvz_lm_info {
    size_t struct_size; /**< sizeof(kvz_lm_info), set by the caller */
    char arch[16];      /**< general.architecture */
    char chat[16];      /**< the chat template family ("chatml", "llama3", "gemma", "plain", ...) */
    size_t n_layers, n_heads, n_kv_heads, head_dim, n_embd, n_vocab;
    size_t n_params;               /**< elements of every tensor in the file */
    kvz_dtype weights;             /**< the type the matrix products of prefill run in (f32 or bf16) */
    kvz_dtype kv_dtype;            /**< the cache type kvz_lm_compress uses by default (as the weights) */
    uint8_t model_fingerprint[32]; /**< identity of the weights, as .kvz files record it */
    int32_t bos;                   /**< the id a text starts with (KVZ_TOKENIZE_BOS), or -1 */
    size_t n_ff;                   /**< the feed-forward width */
    size_t n_ctx_train;            /**< the context length the model was trained for */
    size_t window;                 /**< the sliding window of the local layers (0: none) */
    size_t n_window_layers;        /**< how many layers attend through that window */
    size_t weight_bytes;           /**< bytes of the layers' and the head's matrices in memory */
    int32_t weights_as_stored;     /**< non-zero: the file's block-quantized matrices are used as it stores
                                        them, with no converted copy (KVZ_WEIGHTS_AUTO, doc/runner.md) */
} kvz_lm_info;

/** @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (struct_size). @since 0.1 */
KVZ_API kvz_status kvz_lm_get_info(const kvz_lm *lm, kvz_lm_info *info);

/** kvz_lm_tokenize's flags. @since 0.1 */
enum {
    KVZ_TOKENIZE_BOS = 1,    /**< put the model's BOS first, where it has one (as kvz_lm_generate does) */
    KVZ_TOKENIZE_SPECIAL = 2 /**< special tokens written in the text, such as "<|im_start|>", become their
                                  ids (else their text is tokenized as text) */
};

/**
 * The i-th GGUF tensor type of the model file, in ascending type numbers: its name ("F32", "Q4_K",
 * ...) and how many of the file's tensors have it. n_types receives how many types the file has
 * (ask with i = 0 to learn it). Works with vocab_only. @return KVZ_OK, KVZ_ERR_NULL,
 * KVZ_ERR_INVALID_ARG (i >= *n_types). @since 0.1
 */
KVZ_API kvz_status kvz_lm_tensor_type(const kvz_lm *lm, size_t i, const char **name, size_t *tensors,
                                      size_t *n_types);

/**
 * Token ids of a UTF-8 text, as flags (KVZ_TOKENIZE_*) say. n receives the count; ids (room for
 * cap) may be NULL to learn it. @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (unknown flags,
 * cap too small: *n says how many), KVZ_ERR_NOMEM. @since 0.1
 */
KVZ_API kvz_status kvz_lm_tokenize(const kvz_lm *lm, const char *text, unsigned flags, int32_t *ids, size_t cap,
                                   size_t *n);

/** kvz_lm_detokenize's flags. @since 0.1 */
enum {
    KVZ_DETOKENIZE_START = 1,  /**< the ids start a document: no SentencePiece space before the first word */
    KVZ_DETOKENIZE_SPECIAL = 2 /**< control tokens ("<|im_start|>", "<s>", ...) as their text; without it they
                                    are left out, as llama.cpp's detokenizer does by default */
};

/**
 * The text of token ids (control tokens left out unless KVZ_DETOKENIZE_SPECIAL), NUL-terminated in text (room
 * for cap bytes); len receives its length without the NUL. text may be NULL to learn it. flags:
 * KVZ_DETOKENIZE_*. @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (an id outside the
 * vocabulary, unknown flags, cap too small: *len says how long), KVZ_ERR_NOMEM. @since 0.1
 */
KVZ_API kvz_status kvz_lm_detokenize(const kvz_lm *lm, const int32_t *ids, size_t n, unsigned flags, char *text,
                                     size_t cap, size_t *len);

/** The type of a compressed cache's rows. @since 0.1 */
typedef enum kvz_lm_kv {
    KVZ_KV_AUTO = 0, /**< what the model computes in (kvz_lm_info.kv_dtype): bf16 on bf16 CPUs */
    KVZ_KV_F32 = 1,
    KVZ_KV_BF16 = 2,
    KVZ_KV_F16 = 3
} kvz_lm_kv;

/** KVzip's prompt pieces given as ids (kvz_lm_compress_opts.pieces). @since 0.1 */
typedef struct kvz_lm_pieces kvz_lm_pieces;

/** How kvz_lm_compress compresses. Zeros keep the whole context (KVZ_POLICY_FULL is 0): set policy
 *  to KVZ_POLICY_KVZIP_PAIR for KVzip. @since 0.1 */
typedef struct kvz_lm_compress_opts {
    size_t struct_size; /**< sizeof(kvz_lm_compress_opts) */
    kvz_policy policy;  /**< any kvz_policy (KVZIP_PAIR: KVzip; FULL, which is 0: no compression) */
    double ratio;       /**< kept fraction of the context, in (0, 1]; 0: 0.3 */
    kvz_lm_kv kv;       /**< the type of the cache's rows */
    size_t chunk;       /**< KVzip's context tokens per pass (0: KVZ_KVZIP_CHUNK) */
    kvz_select_mode mode;        /**< KVZIP_PAIR and KVZIP_HEAD: the paper's strict cut (ties at the
                                      threshold go) or exactly the ratio's count */
    const float *head_scores;    /**< KVZIP_HEAD (required there): n_layers x n_kv_heads head scores,
                                      such as the maximum over tokens of a context's `scores` */
    const kvz_lm_pieces *pieces; /**< the passes' and the system prompt's pieces (NULL: the chat
                                      template's, kvz_lm_piece_ids) */
    float *scores;               /**< kvz_lm_compress_ids, optional: receives the token scores the
                                      policy selected by, [layer][kv head][context token] (n_layers x
                                      n_kv_heads x n floats); only for the policies that score tokens
                                      (KVzip pair level, FASTKV, SNAPKV, PYRAMIDKV, ADAKV, H2O) */
    size_t window;               /**< FASTKV, SNAPKV, PYRAMIDKV, ADAKV: the prefill queries whose
                                      attention scores the context (the observation window), which are
                                      kept too; H2O: the latest tokens always kept (0: 8) */
    size_t kernel;               /**< the window scores' 1-D pooling width, odd (0: 7) */
    kvz_pool pool;               /**< the window scores' pooling (0: KVZ_POOL_AVG, as SnapKV) */
} kvz_lm_compress_opts;

/**
 * Prefills the model's system prompt and the context (a UTF-8 text, encoded without BOS: the
 * system prompt opens the cache) into a new cache, scores the context as the policy does
 * (KVzip's reconstruction passes; the SnapKV family's window scores and H2O's accumulated
 * attention during the prefill) and keeps the policy's selection; kvz_lm_compress_ids on the
 * text's ids. @param opts NULL: zeros, the whole context kept.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (empty context, ratio, policy),
 * KVZ_ERR_NOMEM; *cache is NULL on failure. @since 0.1
 */
KVZ_API kvz_status kvz_lm_compress(kvz_lm *lm, const char *context, const kvz_lm_compress_opts *opts,
                                   kvz_cache **cache);

/** What kvz_lm_compress_ids did. @since 0.1 */
typedef struct kvz_lm_compress_report {
    size_t struct_size; /**< sizeof(kvz_lm_compress_report), set by the caller */
    size_t n_sys;       /**< system-prompt tokens before the context (always kept) */
    size_t n_context;   /**< context tokens */
    size_t n_kept;      /**< kept context rows over the KV heads of every layer that does not attend
                             through a sliding window (those keep their window) */
    size_t passes;      /**< KVzip's reconstruction passes (0 for the other policies) */
    size_t pass_tokens; /**< their tokens in all */
    double prefill_s;   /**< wall-clock seconds of the prefill (with the SnapKV family's and H2O's scores) */
    double score_s;     /**< of the reconstruction passes */
    double select_s;    /**< of the selection and compaction */
} kvz_lm_compress_report;

/**
 * kvz_lm_compress on context token ids (n of them, each in the vocabulary), with what it did in
 * report (optional, struct_size set).
 * @return as kvz_lm_compress, and KVZ_ERR_INVALID_ARG for scores with a policy that scores no
 * tokens, KVZIP_HEAD without head_scores, a piece id outside the vocabulary. @since 0.1
 */
KVZ_API kvz_status kvz_lm_compress_ids(kvz_lm *lm, const int32_t *ids, size_t n,
                                       const kvz_lm_compress_opts *opts, kvz_cache **cache,
                                       kvz_lm_compress_report *report);

/** The token scores kvz_lm_score_ids computes. @since 0.1 */
typedef enum kvz_lm_scores {
    KVZ_SCORES_KVZIP = 0,  /**< KVzip's reconstruction scores (KVZIP_PAIR, KVZIP_PAIR_UNIFORM) */
    KVZ_SCORES_WINDOW = 1, /**< the window scores of the prefill's last `window` queries (FASTKV, SNAPKV,
                                PYRAMIDKV, ADAKV) */
    KVZ_SCORES_H2O = 2     /**< the attention each token received from every later prefill query (H2O) */
} kvz_lm_scores;

/**
 * Scores a context without selecting: the system prompt and the n context ids prefilled into a new
 * cache (*cache, every row kept), the context scored as `kind` says into scores (n_layers x n_kv_heads
 * x n floats, [layer][kv head][token]), as kvz_lm_compress_ids scores them. kvz_kvzip_compress (kvz.h)
 * then selects by them on copies of the cache (kvz_cache_clone), any policy of the family at any ratio
 * (with `recent` = window for the window policies and H2O): one prefill and one set of passes for many
 * selections, as `kvz eval` compares policies. KVzip's passes leave the cache as the prefill made it,
 * but for the sliding-window layers, which keep their window. opts (NULL: defaults): kv, chunk, pieces,
 * window, kernel and pool are used. report (optional) receives n_sys, n_context and the prefill's and the
 * passes' times. @return as kvz_lm_compress_ids; *cache is NULL on failure. @since 0.1
 */
KVZ_API kvz_status kvz_lm_score_ids(kvz_lm *lm, const int32_t *ids, size_t n, kvz_lm_scores kind,
                                    const kvz_lm_compress_opts *opts, kvz_cache **cache, float *scores,
                                    kvz_lm_compress_report *report);

/** How kvz_lm_fastkv prefills (spec/fastkv.md §2). Zeros are the v2 reference code's settings: token-selective
 *  propagation after the middle layer at tsp_rate 0.2, retain_rate 0.1, window 8, max pooling by 7. @since 0.1
 */
typedef struct kvz_lm_fastkv_opts {
    size_t struct_size;          /**< sizeof(kvz_lm_fastkv_opts) */
    double tsp_rate;             /**< share of the tokens whose hidden states go past the selecting layer, in
                                      (0, 1] (0: 0.2) */
    double retain_rate;          /**< share of its tokens each layer's cache keeps per KV head, in (0, 1] (0:
                                      0.1); past the selecting layer, retain_rate / tsp_rate of the fewer tokens
                                      there */
    size_t full_layers;          /**< layers that run on every token, the last of them selecting, a global
                                      layer (0: n_layers / 2, the reference's layer 15 of 32; on a model with
                                      sliding-window layers, up to the global layer nearest that one) */
    int no_tsp;                  /**< non-zero: every layer runs on every token (the cache compression alone) */
    size_t window;               /**< the observation window: the last tokens, always kept and propagated (0:
                                      8) */
    size_t kernel;               /**< the window scores' pooling width, odd (0: 7) */
    int avg_pool;                /**< non-zero: average pooling (the v1 code's); else max pooling */
    kvz_lm_kv kv;                /**< the type of the cache's rows */
    const kvz_lm_pieces *pieces; /**< its system prompt opens the cache (NULL: the chat template's) */
} kvz_lm_fastkv_opts;

/** What kvz_lm_fastkv did. @since 0.1 */
typedef struct kvz_lm_fastkv_report {
    size_t struct_size; /**< sizeof(kvz_lm_fastkv_report), set by the caller */
    size_t n_sys;       /**< system-prompt tokens before the context (in the cache, compressed with it) */
    size_t full_layers; /**< layers that ran on every token */
    size_t tsp_tokens;  /**< tokens propagated past them (0: the selection did not fire, or no_tsp) */
    double prefill_s;   /**< wall-clock seconds of the prefill: the time to the first token's logits */
} kvz_lm_fastkv_report;

/**
 * FastKV (spec/fastkv.md): prefills the system prompt and the n context ids layer by layer into a new
 * cache, each layer's cache cut right after it ran to the top window-scored rows of every KV head plus
 * the window, and only the tokens the selecting layer's scores choose go deeper: what shortens the time
 * to the first token. logits (optional, n_vocab floats) receives those after the last id; kvz_lm_ask
 * and kvz_lm_prefill go on from the cache. On a model with sliding-window layers (Gemma 3) the
 * windowed layers keep their window, and past the selecting layer their window counts the tokens
 * that went on, not positions. report is optional (struct_size set).
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (rates, window, kernel, full_layers (also: its
 * last layer has a sliding window), ids),
 * KVZ_ERR_NOMEM; *cache is NULL on failure. @since 0.1
 */
KVZ_API kvz_status kvz_lm_fastkv(kvz_lm *lm, const int32_t *ids, size_t n, const kvz_lm_fastkv_opts *opts,
                                 kvz_cache **cache, float *logits, kvz_lm_fastkv_report *report);

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

/*
 * Token-level calls: a host that keeps its own prompts and sampling loop runs the model on ids,
 * into a cache of its own (kvz_lm_new_cache) or into a query's tail over a shared cache
 * (kvz_query_create). Exactly one of cache and query is given.
 */

/**
 * An empty cache shaped for the model: every layer, its KV heads and head size, and the sliding
 * window of its local layers; rows of dtype (kvz_lm_info.kv_dtype is what the model computes in).
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (dtype), KVZ_ERR_NOMEM. @since 0.1
 */
KVZ_API kvz_status kvz_lm_new_cache(const kvz_lm *lm, kvz_dtype dtype, kvz_cache **cache);

/**
 * Runs n ids through the model after what cache (or query) holds, appending their keys and values
 * there, at the positions that follow; logits (n_vocab floats, may be NULL) receive the next-token
 * logits after the last id. @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (n = 0, an id outside
 * the vocabulary, both or neither of cache and query), KVZ_ERR_MISMATCH (a cache of another
 * shape), KVZ_ERR_NOMEM (then the ids appended so far stay). @since 0.1
 */
KVZ_API kvz_status kvz_lm_prefill(kvz_lm *lm, kvz_cache *cache, kvz_query *query, const int32_t *ids, size_t n,
                                  float *logits);

/**
 * kvz_lm_prefill with the next-token logits after each of the last n_rows ids (1 <= n_rows <= n): row
 * i of logits (n_rows x n_vocab floats) follows ids[n - n_rows + i]. Teacher forcing in one call: the
 * probabilities a cache gives a known continuation. @return as kvz_lm_prefill, and KVZ_ERR_INVALID_ARG
 * for n_rows. @since 0.1
 */
KVZ_API kvz_status kvz_lm_prefill_logits(kvz_lm *lm, kvz_cache *cache, kvz_query *query, const int32_t *ids,
                                         size_t n, size_t n_rows, float *logits);

/**
 * Samples up to opts->max_tokens ids (opts NULL or max_tokens 0: 128) into out (room for as many),
 * the first from logits (those of the last prefill), each of the others after feeding its predecessor
 * through the model into cache (or query); the last id is not fed, so that a host can stop or go on
 * (kvz_lm_prefill of it).
 * Unless opts->no_stop, it stops after an end-of-turn id (kvz_lm_is_eog), which is in out.
 * n_out receives the count. @return as kvz_lm_prefill. @since 0.1
 */
KVZ_API kvz_status kvz_lm_decode(kvz_lm *lm, kvz_cache *cache, kvz_query *query, const float *logits,
                                 const kvz_lm_gen_opts *opts, int32_t *out, size_t *n_out);

/** KVzip's prompt pieces (spec/kvzip.md §1.1), as kvz_kvzip_plan takes them. @since 0.1 */
typedef enum kvz_lm_piece {
    KVZ_PIECE_SYSTEM = 0,       /**< the system prompt, cached before the context */
    KVZ_PIECE_REPEAT_FIRST = 1, /**< the first chunk's "repeat the context" prompt */
    KVZ_PIECE_REPEAT_NEXT = 2,  /**< the later chunks' prompt (it quotes the previous chunk's end) */
    KVZ_PIECE_POSTFIX = 3       /**< the assistant turn's opener, after a question or a prompt */
} kvz_lm_piece;

/** KVzip's prompt pieces as the caller gives them: piece k is ids[k] (n[k] ids; non-NULL with n[k]
 *  0 for an empty piece), or the chat template's where ids[k] is NULL. @since 0.1 */
struct kvz_lm_pieces {
    size_t struct_size;    /**< sizeof(kvz_lm_pieces) */
    const int32_t *ids[4]; /**< indexed by kvz_lm_piece */
    size_t n[4];
    size_t prev_tokens; /**< tokens of the previous chunk a later pass quotes (0: 8, spec §1.3) */
};

/**
 * The ids of a prompt piece of the model's chat template (each encoded on its own, no BOS but a
 * system prompt's own), the pieces kvz_lm_compress and kvz_lm_ask use. n receives the count;
 * ids (room for cap) may be NULL to learn it. @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG
 * (piece, cap too small: *n says how many, vocab_only). @since 0.1
 */
KVZ_API kvz_status kvz_lm_piece_ids(const kvz_lm *lm, kvz_lm_piece piece, int32_t *ids, size_t cap, size_t *n);

/**
 * The ids of a question as kvz_lm_ask sends them: the chat template's user turn holding it, then
 * postfix (n_postfix ids), or the template's KVZ_PIECE_POSTFIX when postfix is NULL. n receives the
 * count; ids (room for cap) may be NULL to learn it. @return KVZ_OK, KVZ_ERR_NULL,
 * KVZ_ERR_INVALID_ARG (cap too small: *n says how many, vocab_only), KVZ_ERR_NOMEM. @since 0.1
 */
KVZ_API kvz_status kvz_lm_question_ids(const kvz_lm *lm, const char *question, const int32_t *postfix,
                                       size_t n_postfix, int32_t *ids, size_t cap, size_t *n);

/** Whether id ends a turn or the text (EOS, <|im_end|>, <end_of_turn>, ...); 0 for a NULL lm. @since 0.1 */
KVZ_API int kvz_lm_is_eog(const kvz_lm *lm, int32_t id);

/**
 * Loads a .kvz file and checks it against the model: the fingerprint its kvz_lm_compress
 * recorded, and the cache's shape and windows. meta (optional, struct_size set) receives what the
 * file records (policy, ratio; kvz_cache_load). @return as kvz_cache_load, and KVZ_ERR_MISMATCH.
 * @since 0.1
 */
KVZ_API kvz_status kvz_lm_load_cache(const kvz_lm *lm, const char *path, kvz_cache **cache,
                                     kvz_cache_meta *meta);

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
