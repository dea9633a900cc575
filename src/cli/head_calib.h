/* The head scores of the kvzip-head policy: given as .npy files, or computed once per model on a
 * calibration text (the paper scores heads once per model on one long context) and kept in the
 * cache directory under the model's fingerprint. */
#ifndef KVZ_CLI_HEAD_CALIB_H
#define KVZ_CLI_HEAD_CALIB_H

#include <stddef.h>

#include "kvz_model.h"

/* Head-level scores (spec/kvzip.md §2.5): out[r] = the maximum of row r's n token scores. */
void kvz_cli_head_scores(const float *scores, size_t n_rows, size_t n, float *out);

/*
 * The head scores of the model from the calibration text at calib_path: its first
 * min(max_tokens, the model's training context - the system prompt) tokens are prefilled and
 * scored (KVzip pair-level scores, kvz_lm_score_ids with o, whose pieces must be given), and each
 * (layer, KV head) gets the maximum of its scores. Kept in $XDG_CACHE_HOME/kvz/heads
 * (~/.cache/kvz/heads) as <model fingerprint>-<hash of the calibration ids and reconstruction
 * prompts>.npy and read from there the next time. *out malloc'ed [n_layers * n_kv_heads];
 * *path_out (optional) receives the file's path. Returns 0, or prints why and returns 1.
 */
int kvz_cli_calibrate_heads(kvz_lm *lm, const kvz_lm_compress_opts *o, const char *calib_path,
                            size_t max_tokens, float **out, char *path_out, size_t path_size);

#endif
