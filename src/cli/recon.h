/* The KVzip reconstruction pieces of the kvz commands: given as ids (--sys-ids, --repeat-ids,
 * --repeat-next-ids, --postfix-ids, --prev-tokens), read from a --recon JSON file, or derived
 * from the model's chat template, in that order of precedence. */
#ifndef KVZ_CLI_RECON_H
#define KVZ_CLI_RECON_H

#include "cli/cli_model.h"
#include "model/kvzip.h"

typedef struct kvz_cli_recon {
    const char *ids[4]; /* sys, repeat, repeat-next, postfix: option text, or NULL */
    const char *prev_tokens;
    const char *file; /* --recon */
} kvz_cli_recon;

/* Consumes argv[*i] (and its value) when it is a reconstruction option: 1 consumed, 0 not
 * one of them, -1 missing value. */
int kvz_cli_recon_option(kvz_cli_recon *r, int argc, char **argv, int *i);

/* Usage lines of those options. */
extern const char kvz_cli_recon_usage[];

/* Resolved pieces; the arrays belong to the struct (kvz_cli_pieces_free). */
typedef struct kvz_cli_pieces {
    kvz_kvzip_pieces p;
    size_t prev_tokens;
    int32_t *own[4];
    const char *source; /* "options", "recon file", or the chat template family */
} kvz_cli_pieces;

/* Returns 0 or prints why and returns 1. gsm: the gsm-task instruction (spec §1.1). */
int kvz_cli_recon_resolve(const kvz_cli_recon *r, const kvz_model *m, const kvz_tokenizer *tok, int gsm,
                          kvz_cli_pieces *out);
void kvz_cli_pieces_free(kvz_cli_pieces *p);

/* The ids of a text question as the reference builds them: enc("\n\n" + question) ++ the
 * assistant opener p->postfix, each encoded on its own (*ids malloc'ed). Returns 0 or prints
 * why and returns 1. */
int kvz_cli_question_ids(const kvz_model *m, const kvz_tokenizer *tok, const kvz_kvzip_pieces *p, const char *q,
                         int32_t **ids, size_t *n);

#endif
