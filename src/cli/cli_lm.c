/* What the kvz commands that run on kvz_model.h alone share: opening a model, and token ids to and from
 * text in malloc'ed buffers. */
#include "cli/cli_lm.h"

#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int kvz_cli_open_lm(const char *path, const char *weights, size_t chunk, int vocab_only, kvz_lm **lm)
{
    kvz_lm_config c = {.struct_size = sizeof c, .prefill_chunk = chunk, .vocab_only = vocab_only};
    if (!strcmp(weights, "f32"))
        c.weights = KVZ_WEIGHTS_F32;
    else if (!strcmp(weights, "bf16"))
        c.weights = KVZ_WEIGHTS_BF16;
    else if (strcmp(weights, "auto"))
        return kvz_cli_error("--weights must be auto, f32 or bf16, not '%s'", weights);
    const kvz_status st = kvz_lm_open(path, &c, lm);
    if (st != KVZ_OK)
        return kvz_cli_error("cannot load model %s: %s (%s)", path, kvz_last_error(), kvz_strerror(st));
    return 0;
}

const char *kvz_cli_weights_name(const kvz_lm_info *info)
{
    const int bf16 = info->weights == KVZ_DTYPE_BF16;
    if (info->weights_as_stored)
        return bf16 ? "as stored (bf16 prefill)" : "as stored (f32 prefill)";
    return bf16 ? "bf16" : "f32";
}

/* A sized call's ids in a malloc'ed buffer: count, allocate, fill (the two calls are those of get). */
typedef kvz_status (*ids_call)(const void *args, int32_t *ids, size_t cap, size_t *n);

static int malloced_ids(ids_call get, const void *args, const char *what, int32_t **ids, size_t *n)
{
    kvz_status st = get(args, NULL, 0, n);
    *ids = st == KVZ_OK ? malloc((*n ? *n : 1) * sizeof **ids) : NULL;
    if (st == KVZ_OK && !*ids)
        return kvz_cli_error("out of memory");
    if (st == KVZ_OK)
        st = get(args, *ids, *n, n);
    if (st != KVZ_OK) {
        free(*ids);
        *ids = NULL;
        return kvz_cli_error("%s: %s (%s)", what, kvz_last_error(), kvz_strerror(st));
    }
    return 0;
}

typedef struct tokenize_args {
    const kvz_lm *lm;
    const char *text;
    unsigned flags;
} tokenize_args;

static kvz_status tokenize(const void *args, int32_t *ids, size_t cap, size_t *n)
{
    const tokenize_args *a = args;
    return kvz_lm_tokenize(a->lm, a->text, a->flags, ids, cap, n);
}

int kvz_cli_lm_tokenize(const kvz_lm *lm, const char *text, unsigned flags, int32_t **ids, size_t *n)
{
    const tokenize_args a = {lm, text, flags};
    return malloced_ids(tokenize, &a, "cannot tokenize", ids, n);
}

typedef struct question_args {
    const kvz_lm *lm;
    const char *question;
    const int32_t *postfix;
    size_t n_postfix;
} question_args;

static kvz_status question(const void *args, int32_t *ids, size_t cap, size_t *n)
{
    const question_args *a = args;
    return kvz_lm_question_ids(a->lm, a->question, a->postfix, a->n_postfix, ids, cap, n);
}

int kvz_cli_lm_question(const kvz_lm *lm, const char *q, const int32_t *postfix, size_t n_postfix,
                        int32_t **ids, size_t *n)
{
    const question_args a = {lm, q, postfix, n_postfix};
    return malloced_ids(question, &a, "question", ids, n);
}

typedef struct piece_args {
    const kvz_lm *lm;
    kvz_lm_piece piece;
} piece_args;

static kvz_status piece(const void *args, int32_t *ids, size_t cap, size_t *n)
{
    const piece_args *a = args;
    return kvz_lm_piece_ids(a->lm, a->piece, ids, cap, n);
}

int kvz_cli_lm_piece(const kvz_lm *lm, kvz_lm_piece p, int32_t **ids, size_t *n)
{
    const piece_args a = {lm, p};
    return malloced_ids(piece, &a, "chat template", ids, n);
}

kvz_status kvz_cli_lm_detokenize(const kvz_lm *lm, const int32_t *ids, size_t n, unsigned flags, char **text)
{
    size_t len = 0;
    kvz_status st = kvz_lm_detokenize(lm, ids, n, flags, NULL, 0, &len);
    *text = st == KVZ_OK ? malloc(len + 1) : NULL;
    if (st == KVZ_OK && !*text)
        return KVZ_ERR_NOMEM;
    if (st == KVZ_OK)
        st = kvz_lm_detokenize(lm, ids, n, flags, *text, len + 1, &len);
    if (st != KVZ_OK) {
        free(*text);
        *text = NULL;
    }
    return st;
}

int kvz_cli_lm_text(const kvz_lm *lm, const int32_t *ids, size_t n, unsigned flags, char **text)
{
    const kvz_status st = kvz_cli_lm_detokenize(lm, ids, n, flags, text);
    if (st == KVZ_ERR_NOMEM)
        return kvz_cli_error("out of memory");
    return st == KVZ_OK ? 0 : kvz_cli_error("cannot decode: %s", kvz_last_error());
}

int kvz_cli_lm_warm_up(kvz_lm *lm, const int32_t *ctx, size_t n_c, const kvz_lm_compress_opts *o)
{
    kvz_lm_compress_opts full = *o;
    full.policy = KVZ_POLICY_FULL, full.head_scores = NULL, full.scores = NULL;
    kvz_cache *scratch = NULL;
    const kvz_status st = kvz_lm_compress_ids(lm, ctx, n_c < 2048 ? n_c : 2048, &full, &scratch, NULL);
    kvz_cache_destroy(scratch);
    if (st != KVZ_OK)
        return kvz_cli_error("warm-up prefill: %s (%s)", kvz_last_error(), kvz_strerror(st));
    return 0;
}

int kvz_cli_policy_scores(kvz_policy p)
{
    switch (p) {
    case KVZ_POLICY_KVZIP_PAIR:
    case KVZ_POLICY_KVZIP_PAIR_UNIFORM: return KVZ_SCORES_KVZIP;
    case KVZ_POLICY_FASTKV:
    case KVZ_POLICY_SNAPKV:
    case KVZ_POLICY_PYRAMIDKV:
    case KVZ_POLICY_ADAKV: return KVZ_SCORES_WINDOW;
    case KVZ_POLICY_H2O: return KVZ_SCORES_H2O;
    default: return -1;
    }
}

kvz_lm_kv kvz_cli_lm_kv(kvz_dtype dt)
{
    return dt == KVZ_DTYPE_F32 ? KVZ_KV_F32 : dt == KVZ_DTYPE_BF16 ? KVZ_KV_BF16 : dt == KVZ_DTYPE_F16 ? KVZ_KV_F16
                                                                                                       : KVZ_KV_AUTO;
}
