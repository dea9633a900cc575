/* Option values, id lists and files of the kvz commands, and how they report speed: with kvz.h alone. */
#ifndef KVZ_CLI_ARGS_H
#define KVZ_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "kvz.h"

/* Each returns 0 or prints "kvz: ..." and returns 1. */
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
/* "f32", "bf16", "f16" (or "auto", "unknown"). */
const char *kvz_cli_dtype_name(kvz_dtype dt);
/* A policy by name; "kvzip" and "streamingllm" name kvzip-pair and streaming. */
int kvz_cli_parse_policy(const char *s, kvz_policy *p);
/* --verbose of generate and ask, on stderr: "kvz <cmd>: prefill N tokens in T s (R tokens/s), decode
 * ...". Decode counts forward steps, one per generated token after the first, which the prefill's
 * logits give; n_out is the tokens generated. */
void kvz_cli_print_speed(const char *cmd, size_t n_prefill, double prefill_s, size_t n_out, double decode_s);

#endif
