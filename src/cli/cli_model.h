/* What the model commands of the kvz tool share: loading a model and its tokenizer, token-id
 * lists, files, option values. */
#ifndef KVZ_CLI_MODEL_H
#define KVZ_CLI_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "model/tokenizer.h"

/* Each returns 0 or prints "kvz: ..." and returns 1. */
int kvz_cli_open_model(const char *path, const char *weights, kvz_model **m, kvz_tokenizer **tok);
/* Ids separated by commas and/or whitespace ("1,2, 3"). */
int kvz_cli_parse_ids(const char *s, const char *what, int32_t **ids, size_t *n);
int kvz_cli_read_file(const char *path, char **text, size_t *n);
int kvz_cli_parse_size(const char *s, const char *what, size_t *v);
int kvz_cli_parse_double(const char *s, const char *what, double *v);
int kvz_cli_parse_dtype(const char *s, kvz_dtype *dt);
int kvz_cli_parse_policy(const char *s, kvz_policy *p);
/* Text to ids with the model's rules (BOS as the model adds it when add_bos, special tokens
 * recognised when parse_special). */
int kvz_cli_encode(const kvz_tokenizer *tok, const char *text, int add_bos, int parse_special, int32_t **ids, size_t *n);

#endif
