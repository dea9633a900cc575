/* The KVzip reconstruction pieces of the kvz commands: given as ids (--sys-ids, --repeat-ids,
 * --repeat-next-ids, --postfix-ids, --prev-tokens), read from a --recon JSON file, or derived
 * from the model's chat template, in that order of precedence. */
#ifndef KVZ_CLI_RECON_H
#define KVZ_CLI_RECON_H

#include <stddef.h>
#include <stdint.h>

#include "kvz_model.h"

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

/* Pieces as ids, in kvz_lm_piece order; the arrays belong to the struct (kvz_cli_recon_ids_free). */
typedef struct kvz_cli_recon_ids {
    int32_t *ids[4];
    size_t n[4];
    size_t prev_tokens;
    const char *source; /* "options", "recon file", or the chat template family */
    char family[16];    /* where source points for a family */
} kvz_cli_recon_ids;

/* What the options and the --recon file give: ids[k] NULL where neither gives piece k, source
 * "options" or "recon file". Returns 0 or prints why and returns 1 (nothing left to free). */
int kvz_cli_recon_given(const kvz_cli_recon *r, kvz_cli_recon_ids *out);
/* The same with the missing pieces from the model's chat template (kvz_lm_piece_ids). */
int kvz_cli_recon_resolve_lm(const kvz_cli_recon *r, const kvz_lm *lm, kvz_cli_recon_ids *out);
void kvz_cli_recon_ids_free(kvz_cli_recon_ids *p);
/* The pieces as kvz_lm_compress_opts.pieces takes them (pointing into r). */
kvz_lm_pieces kvz_cli_recon_pieces(const kvz_cli_recon_ids *r);

#endif
