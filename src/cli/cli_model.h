/* What the model commands of the kvz tool that use the runner's own headers share: loading a model and its
 * tokenizer, encoding, the warm-up before timed runs (and, through cli_args.h, option values). */
#ifndef KVZ_CLI_MODEL_H
#define KVZ_CLI_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "cli/cli_args.h"
#include "cli/recon.h"
#include "model/kvzip.h"
#include "model/model.h"
#include "model/tokenizer.h"

/* Each returns 0 or prints "kvz: ..." and returns 1. */
int kvz_cli_open_model(const char *path, const char *weights, kvz_model **m, kvz_tokenizer **tok);
/* The parameters of a model: the elements of its tensors. */
size_t kvz_cli_model_params(const kvz_model *m);
/* The KV cache's storage for --kv-dtype `asked`: auto is the type the model computes in, that of its
 * weights in memory (bf16 with --weights auto on CPUs with AVX512_BF16, else f32), so that a cache
 * is half the size where the model runs in bf16 and holds exactly what it computes elsewhere. */
kvz_dtype kvz_cli_kv_dtype(const kvz_model *m, kvz_dtype asked);
/* Text to ids with the model's rules (BOS as the model adds it when add_bos, special tokens
 * recognised when parse_special). */
int kvz_cli_encode(const kvz_tokenizer *tok, const char *text, int add_bos, int parse_special, int32_t **ids,
                   size_t *n);

/* The reconstruction pieces for the runner: the options, a --recon file, then the chat template's
 * (kvz_cli_recon_given, then kvz_prompt_pieces; gsm: the gsm-task instruction, spec §1.1). */
typedef struct kvz_cli_pieces {
    kvz_kvzip_pieces p;
    size_t prev_tokens;
    const char *source; /* "options", "recon file", or the chat template family */
    kvz_cli_recon_ids own;
} kvz_cli_pieces;
/* Returns 0 or prints why and returns 1. */
int kvz_cli_recon_resolve(const kvz_cli_recon *r, const kvz_model *m, const kvz_tokenizer *tok, int gsm,
                          kvz_cli_pieces *out);
void kvz_cli_pieces_free(kvz_cli_pieces *p);

/* The ids of a text question as the reference builds them: enc("\n\n" + question) ++ the
 * assistant opener p->postfix, each encoded on its own (*ids malloc'ed). Returns 0 or prints
 * why and returns 1. */
int kvz_cli_question_ids(const kvz_model *m, const kvz_tokenizer *tok, const kvz_kvzip_pieces *p, const char *q,
                         int32_t **ids, size_t *n);

/* An untimed prefill of the system prompt and the first prefill step of the context (at most 2048 tokens), so
 * that the timings after it do not carry the process's one-time costs (weight pages touched first, thread
 * start-up, oneDNN primitives of that step's shape, the activation buffer's first growth), which otherwise
 * land in whichever step runs first (kvz compress printed a scoring cost of 0.06x or 4.04x a prefill
 * from run to run). */
int kvz_cli_warm_up(kvz_model *m, const kvz_kvzip_pieces *p, const int32_t *ctx, size_t n_c,
                    const kvz_kvzip_opts *o);

#endif
