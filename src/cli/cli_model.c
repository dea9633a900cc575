/* Shared plumbing of the kvz model commands that use the runner's own headers: model and tokenizer loading,
 * encoding, the warm-up before timed runs. */
#include "cli/cli_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/prompt.h"

int kvz_cli_open_model(const char *path, const char *weights, kvz_model **m, kvz_tokenizer **tok)
{
    kvz_model_opts o = {.bf16_weights = -1};
    if (weights && !strcmp(weights, "f32"))
        o.bf16_weights = 0;
    else if (weights && !strcmp(weights, "bf16"))
        o.bf16_weights = 1;
    else if (weights && strcmp(weights, "auto"))
        return kvz_cli_error("--weights must be auto, f32 or bf16, not '%s'", weights);
    kvz_status st = kvz_model_load(path, &o, m);
    if (st != KVZ_OK)
        return kvz_cli_error("cannot load model %s: %s (%s)", path, kvz_last_error(), kvz_strerror(st));
    if (tok && (st = kvz_tokenizer_from_gguf((*m)->gguf, tok)) != KVZ_OK) {
        kvz_model_free(*m);
        *m = NULL;
        return kvz_cli_error("model %s: tokenizer: %s (%s)", path, kvz_last_error(), kvz_strerror(st));
    }
    return 0;
}

size_t kvz_cli_model_params(const kvz_model *m)
{
    size_t n = 0;
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++)
        n += m->gguf->tensors[i].n_elements;
    return n;
}

kvz_dtype kvz_cli_kv_dtype(const kvz_model *m, kvz_dtype asked)
{
    return asked != KVZ_CLI_KV_DTYPE_AUTO ? asked : kvz_model_kv_dtype(m);
}

int kvz_cli_encode(const kvz_tokenizer *tok, const char *text, int add_bos, int parse_special, int32_t **ids,
                   size_t *n)
{
    const kvz_status st = kvz_tokenizer_encode(tok, text, strlen(text), add_bos, parse_special, ids, n);
    if (st != KVZ_OK)
        return kvz_cli_error("cannot tokenize: %s (%s)", kvz_last_error(), kvz_strerror(st));
    return 0;
}

int kvz_cli_warm_up(kvz_model *m, const kvz_kvzip_pieces *p, const int32_t *ctx, size_t n_c,
                    const kvz_kvzip_opts *o)
{
    const size_t step = o->prefill_chunk ? o->prefill_chunk : 2048;
    const kvz_policy_args full = {.struct_size = sizeof full, .policy = KVZ_POLICY_FULL};
    kvz_cache *scratch = NULL;
    const kvz_status st = kvz_kvzip_build(m, p, ctx, n_c < step ? n_c : step, o, &full, &scratch, NULL, NULL);
    kvz_cache_destroy(scratch);
    if (st != KVZ_OK)
        return kvz_cli_error("warm-up prefill: %s (%s)", kvz_last_error(), kvz_strerror(st));
    return 0;
}

int kvz_cli_recon_resolve(const kvz_cli_recon *r, const kvz_model *m, const kvz_tokenizer *tok, int gsm,
                          kvz_cli_pieces *out)
{
    memset(out, 0, sizeof *out);
    kvz_cli_recon_ids *own = &out->own;
    if (kvz_cli_recon_given(r, own))
        return 1;
    out->source = own->source;
    out->prev_tokens = own->prev_tokens;
    if (!own->ids[0] || !own->ids[1] || !own->ids[2] || !own->ids[3]) {
        const kvz_status st = kvz_prompt_pieces(m, tok, gsm, own->ids, own->n, &out->source);
        if (st != KVZ_OK) {
            kvz_cli_pieces_free(out);
            return kvz_cli_error("chat template: %s (%s)", kvz_last_error(), kvz_strerror(st));
        }
    }
    out->p = (kvz_kvzip_pieces){own->ids[0], own->n[0], own->ids[1], own->n[1],
                                own->ids[2], own->n[2], own->ids[3], own->n[3]};
    return 0;
}

void kvz_cli_pieces_free(kvz_cli_pieces *p)
{
    kvz_cli_recon_ids_free(&p->own);
    memset(p, 0, sizeof *p);
}

int kvz_cli_question_ids(const kvz_model *m, const kvz_tokenizer *tok, const kvz_kvzip_pieces *p, const char *q,
                         int32_t **ids, size_t *n)
{
    const kvz_status st = kvz_prompt_question(m, tok, p->postfix, p->n_postfix, q, ids, n);
    return st == KVZ_OK ? 0 : kvz_cli_error("question: %s (%s)", kvz_last_error(), kvz_strerror(st));
}
