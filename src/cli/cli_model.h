/* What the model commands of the kvz tool share: loading a model and its tokenizer, token-id
 * lists, files, option values, the warm-up before timed runs. */
#ifndef KVZ_CLI_MODEL_H
#define KVZ_CLI_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model/kvzip.h"
#include "model/model.h"
#include "model/tokenizer.h"

/* Each returns 0 or prints "kvz: ..." and returns 1. */
int kvz_cli_open_model(const char *path, const char *weights, kvz_model **m, kvz_tokenizer **tok);
/* The parameters of a model: the elements of its tensors. */
size_t kvz_cli_model_params(const kvz_model *m);
/* Ids separated by commas and/or whitespace ("1,2, 3"). */
int kvz_cli_parse_ids(const char *s, const char *what, int32_t **ids, size_t *n);
int kvz_cli_read_file(const char *path, char **text, size_t *n);
int kvz_cli_parse_size(const char *s, const char *what, size_t *v);
/* A whole number of at least 1 (chunk sizes, counts). */
int kvz_cli_parse_count(const char *s, const char *what, size_t *v);
int kvz_cli_parse_double(const char *s, const char *what, double *v);
/* A kept fraction in (0, 1]; 30 (a percentage) is refused. */
int kvz_cli_parse_ratio(const char *s, const char *what, double *v);
/* --kv-dtype: f32, bf16, f16 or auto (KVZ_CLI_KV_DTYPE_AUTO, resolved by kvz_cli_kv_dtype once the
 * model is loaded). */
int kvz_cli_parse_dtype(const char *s, kvz_dtype *dt);
/* --kv-dtype auto, the model commands' default: not a storage type the library knows. */
#define KVZ_CLI_KV_DTYPE_AUTO ((kvz_dtype)0x7f)
/* The KV cache's storage for --kv-dtype `asked`: auto is the type the model computes in, that of its
 * weights in memory (bf16 with --weights auto on CPUs with AVX512_BF16, else f32), so that a cache
 * is half the size where the model runs in bf16 and holds exactly what it computes elsewhere. */
kvz_dtype kvz_cli_kv_dtype(const kvz_model *m, kvz_dtype asked);
/* "f32", "bf16", "f16" (or "auto", "unknown"). */
const char *kvz_cli_dtype_name(kvz_dtype dt);
/* A policy by name; "kvzip" and "streamingllm" name kvzip-pair and streaming. */
int kvz_cli_parse_policy(const char *s, kvz_policy *p);
/* Text to ids with the model's rules (BOS as the model adds it when add_bos, special tokens
 * recognised when parse_special). */
int kvz_cli_encode(const kvz_tokenizer *tok, const char *text, int add_bos, int parse_special, int32_t **ids,
                   size_t *n);

/* --verbose of generate and ask, on stderr: "kvz <cmd>: prefill N tokens in T s (R tokens/s), decode
 * ...". Decode counts forward steps, one per generated token after the first, which the prefill's
 * logits give; n_out is the tokens generated. */
void kvz_cli_print_speed(const char *cmd, size_t n_prefill, double prefill_s, size_t n_out, double decode_s);

/* An untimed prefill of the system prompt and the first prefill step of the context (at most 2048 tokens), so
 * that the timings after it do not carry the process's one-time costs (weight pages touched first, thread
 * start-up, oneDNN primitives of that step's shape, the activation buffer's first growth), which otherwise
 * land in whichever step runs first (kvz compress printed a scoring cost of 0.06x or 4.04x a prefill
 * from run to run). */
int kvz_cli_warm_up(kvz_model *m, const kvz_kvzip_pieces *p, const int32_t *ctx, size_t n_c,
                    const kvz_kvzip_opts *o);

#endif
