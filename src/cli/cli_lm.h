/* What the kvz commands that run on kvz_model.h alone share: opening a model, and token ids to and from
 * text in malloc'ed buffers. */
#ifndef KVZ_CLI_LM_H
#define KVZ_CLI_LM_H

#include <stddef.h>
#include <stdint.h>

#include "kvz_model.h"

/* Each returns 0 or prints "kvz: ..." and returns 1. */
/* Opens path with --weights (auto, f32, bf16) and a prefill chunk (0: the library's default);
 * vocab_only: the tokenizer alone. */
int kvz_cli_open_lm(const char *path, const char *weights, size_t chunk, int vocab_only, kvz_lm **lm);
/* How a model holds its weights, for the commands' --verbose lines: "bf16", "f32", or for a quantized
 * file used as stored "as stored (bf16 prefill)". */
const char *kvz_cli_weights_name(const kvz_lm_info *info);
/* kvz_lm_tokenize into *ids (malloc'ed). */
int kvz_cli_lm_tokenize(const kvz_lm *lm, const char *text, unsigned flags, int32_t **ids, size_t *n);
/* kvz_lm_question_ids into *ids (malloc'ed). */
int kvz_cli_lm_question(const kvz_lm *lm, const char *question, const int32_t *postfix, size_t n_postfix,
                        int32_t **ids, size_t *n);
/* kvz_lm_piece_ids into *ids (malloc'ed). */
int kvz_cli_lm_piece(const kvz_lm *lm, kvz_lm_piece piece, int32_t **ids, size_t *n);
/* kvz_lm_detokenize into *text (malloc'ed, NULL on failure): the status, without a message of its own. */
kvz_status kvz_cli_lm_detokenize(const kvz_lm *lm, const int32_t *ids, size_t n, unsigned flags, char **text);
/* kvz_lm_detokenize into *text (malloc'ed). */
int kvz_cli_lm_text(const kvz_lm *lm, const int32_t *ids, size_t n, unsigned flags, char **text);

/* An untimed compression of the system prompt and the first prefill step of the context (at most 2048
 * tokens, options o, nothing scored), so that the timings after it do not carry the process's one-time
 * costs (weight pages touched first, thread start-up, oneDNN primitives of that step's shape), which
 * otherwise land in whichever step runs first. */
int kvz_cli_lm_warm_up(kvz_lm *lm, const int32_t *ctx, size_t n_c, const kvz_lm_compress_opts *o);

/* The kvz_lm_kv of a storage type; anything else (--kv-dtype auto) is KVZ_KV_AUTO, the model's own. */
kvz_lm_kv kvz_cli_lm_kv(kvz_dtype dt);

/* The scores a policy selects by (a kvz_lm_scores), or -1 for one that needs none (full, kvzip-head,
 * streaming, random). */
int kvz_cli_policy_scores(kvz_policy p);

#endif
