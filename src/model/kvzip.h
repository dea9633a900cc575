/* KVzip end to end (spec/kvzip.md): prefill [system | context], score every context KV pair by
 * teacher-forced reconstruction chunk by chunk, select by a policy, compact the cache. */
#ifndef KVZ_MODEL_KVZIP_H
#define KVZ_MODEL_KVZIP_H

#include "model/model.h"

/* The pieces of the reconstruction input as token ids (§1.1, §1.3): each text piece is
 * tokenized on its own, without special tokens added. */
typedef struct kvz_kvzip_pieces {
    const int32_t *sys;          /* system-prompt prefix, cached before the context, always kept */
    size_t n_sys;
    const int32_t *repeat_first; /* "\n\nRepeat the previous context exactly." */
    size_t n_repeat_first;
    const int32_t *repeat_next;  /* "\n\nRepeat the part of the previous context exactly, starting with " */
    size_t n_repeat_next;
    const int32_t *postfix;      /* the assistant-turn opener */
    size_t n_postfix;
} kvz_kvzip_pieces;

typedef struct kvz_kvzip_opts {
    size_t chunk;         /* context tokens per scoring pass (reference: 2000) */
    size_t prev_tokens;   /* tokens of the previous chunk quoted in later prompts (reference: 8) */
    size_t prefill_chunk; /* tokens per prefill step, only a memory bound (0: 2048) */
    kvz_dtype kv_dtype;   /* cache storage type */
    int passes_only;      /* run the passes without folding scores: the baseline that
                             measures what the fused scoring costs (scores stay 0) */
    /* The window scores of the SnapKV-family policies (fastkv, snapkv, pyramidkv, adakv),
       computed during the prefill from its last `window` queries: 8, 7, average pooling. */
    size_t window, kernel;
    kvz_pool pool;
} kvz_kvzip_opts;

/* chunk 2000, prev_tokens 8, prefill_chunk 2048, bf16 storage, window 8, kernel 7, avg pooling. */
void kvz_kvzip_defaults(kvz_kvzip_opts *o);

/* Reconstruction scores of a cache that holds exactly [system | context] in every segment
 * (kvz_kvzip_check_cache before every pass: KVZ_ERR_STATE otherwise — the kvpress #147 guard):
 * every pass (kvz_kvzip_pass) runs through every layer at positions n_sys + n_c.., attends over the whole cache
 * and folds, inside the attention kernel, max over its queries and the GQA group of the
 * softmax over the reduced key set into scores[(layer*H + head)*n_c + j]; its own K/V are
 * dropped afterwards. scores are overwritten. */
kvz_status kvz_kvzip_score(kvz_model *m, kvz_cache *cache, const kvz_kvzip_pieces *p, const int32_t *ctx, size_t n_c,
                           const kvz_kvzip_opts *o, float *scores);

/* The passes kvz_kvzip_score runs on a context: their count, the ids of the longest, and their ids in all. */
kvz_status kvz_kvzip_pass_count(const kvz_kvzip_pieces *p, const int32_t *ctx, size_t n_c,
                                const kvz_kvzip_opts *o, size_t *passes, size_t *max_ids, size_t *tokens);

/* What kvz_kvzip_build did: wall-clock seconds of each phase and the passes run. */
typedef struct kvz_kvzip_report {
    double prefill_s, score_s, select_s;
    size_t passes, pass_tokens; /* scoring passes and their tokens in all */
    size_t n_kept;              /* kept context rows over all heads */
} kvz_kvzip_report;

/* The whole pipeline: a new cache of [system | context], scored (reconstruction passes for
 * the KVzip policies, window scores during the prefill for the SnapKV family, the attention
 * each token received during the prefill for H2O, none for the others), selected and
 * compacted; the window policies and H2O always keep the last `window` context tokens.
 * scores_out (optional) receives the malloc'ed
 * [layers][kv_heads][n_c] scores (NULL when none were computed); report is optional. */
kvz_status kvz_kvzip_build(kvz_model *m, const kvz_kvzip_pieces *p, const int32_t *ctx, size_t n_c,
                           const kvz_kvzip_opts *o, const kvz_policy_args *policy, kvz_cache **out,
                           float **scores_out, kvz_kvzip_report *report);

/* Whether a policy ranks tokens by KVzip reconstruction scores. */
int kvz_kvzip_policy_needs_scores(kvz_policy p);
/* Whether a policy ranks tokens by prefill window scores (fastkv, snapkv, pyramidkv, adakv). */
int kvz_kvzip_policy_uses_window(kvz_policy p);

#endif
