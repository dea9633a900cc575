/* libkvz-model's public API (include/kvz_model.h): a GGUF model with its tokenizer and chat
 * template, compressing contexts into caches and answering questions from them, over the runner. */
#include "kvz_model.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "model/chat_template.h"
#include "model/fastkv.h"
#include "model/generate.h"
#include "model/h2o_scores.h"
#include "model/kvzip.h"
#include "model/model.h"
#include "model/prompt.h"
#include "model/tokenizer.h"
#include "model/window_scores.h"

struct kvz_lm {
    kvz_model *m;    /* NULL when opened with vocab_only */
    kvz_gguf *vocab; /* the file, when opened with vocab_only */
    kvz_tokenizer *tok;
    int32_t *pieces[4]; /* the chat template's KVzip pieces: system prefix, repeats, postfix */
    size_t n_pieces[4];
    const char *family;
    char arch[16];
    uint8_t fingerprint[32];
    size_t prefill_chunk;
    int prefill_chunk_given; /* compressions prefill in the runner's larger steps unless asked */
};

/* KVZ_ERR_INVALID_ARG when lm was opened with vocab_only, for the calls that run the model. */
static kvz_status need_weights(const kvz_lm *lm, const char *fn)
{
    return lm->m ? KVZ_OK
                 : kvz_fail(KVZ_ERR_INVALID_ARG, "%s: the model was opened with vocab_only (no weights)", fn);
}

/* n ids into ids (room for cap, or NULL to count), as the sized calls hand them out. */
static kvz_status hand_out(const char *fn, const int32_t *src, size_t count, int32_t *ids, size_t cap,
                           size_t *n)
{
    *n = count;
    if (ids && cap < count)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: %zu ids, room for %zu", fn, count, cap);
    if (ids && count)
        memcpy(ids, src, count * sizeof *ids);
    return KVZ_OK;
}

void kvz_lm_free(void *p) { free(p); }

void kvz_lm_close(kvz_lm *lm)
{
    if (!lm)
        return;
    for (int k = 0; k < 4; k++)
        free(lm->pieces[k]);
    kvz_tokenizer_free(lm->tok);
    kvz_model_free(lm->m);
    if (lm->vocab)
        kvz_gguf_close(lm->vocab);
    free(lm);
}

/* vocab_only: the file's tokenizer, chat template and identity, no hyper-parameters checked and no
 * weights read (a vocabulary-only GGUF will do). */
static kvz_status open_vocab(const char *path, kvz_lm *lm)
{
    kvz_status st = kvz_gguf_open(path, &lm->vocab);
    if (st == KVZ_OK)
        st = kvz_tokenizer_from_gguf(lm->vocab, &lm->tok);
    if (st != KVZ_OK)
        return st;
    kvz_gguf_str a = {NULL, 0};
    if (kvz_gguf_find(lm->vocab, "general.architecture") && /* optional here: no message when absent */
        kvz_gguf_get_str(lm->vocab, "general.architecture", &a) == KVZ_OK)
        snprintf(lm->arch, sizeof lm->arch, "%.*s", (int)a.n, a.p);
    lm->family = kvz_chat_family_name(kvz_chat_family_in(lm->vocab, lm->arch));
    kvz_model_fingerprint(lm->vocab, lm->fingerprint);
    return KVZ_OK;
}

kvz_status kvz_lm_open(const char *path, const kvz_lm_config *config, kvz_lm **out)
{
    static const char fn[] = "kvz_lm_open";
    if (!out)
        return kvz_fail(KVZ_ERR_NULL, "%s: lm is NULL", fn);
    *out = NULL;
    if (!path)
        return kvz_fail(KVZ_ERR_NULL, "%s: path is NULL", fn);
    kvz_lm_config c = {.struct_size = sizeof c};
    kvz_status st = config ? kvz_struct_in(fn, "kvz_lm_config", config, KVZ_SIZE_0_1(kvz_lm_config, vocab_only),
                                           &c, sizeof c)
                           : KVZ_OK;
    if (st != KVZ_OK)
        return st;
    if ((unsigned)c.weights > KVZ_WEIGHTS_BF16)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: weights %d is not a kvz_lm_weights", fn, (int)c.weights);
    kvz_lm *lm = calloc(1, sizeof *lm);
    if (!lm)
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", fn);
    lm->prefill_chunk = c.prefill_chunk ? c.prefill_chunk : 512;
    lm->prefill_chunk_given = c.prefill_chunk != 0;
    if (c.vocab_only)
        st = open_vocab(path, lm);
    else {
        const kvz_model_opts mo = {.bf16_weights =
                                       c.weights == KVZ_WEIGHTS_AUTO ? -1 : c.weights == KVZ_WEIGHTS_BF16};
        st = kvz_model_load(path, &mo, &lm->m);
        if (st == KVZ_OK)
            st = kvz_tokenizer_from_gguf(lm->m->gguf, &lm->tok);
        if (st == KVZ_OK)
            st = kvz_prompt_pieces(lm->m, lm->tok, 0, lm->pieces, lm->n_pieces, &lm->family);
        if (st == KVZ_OK) {
            snprintf(lm->arch, sizeof lm->arch, "%s", lm->m->hp.arch);
            memcpy(lm->fingerprint, lm->m->fingerprint, sizeof lm->fingerprint);
        }
    }
    if (st != KVZ_OK) {
        kvz_lm_close(lm);
        return st;
    }
    *out = lm;
    return KVZ_OK;
}

kvz_status kvz_lm_get_info(const kvz_lm *lm, kvz_lm_info *info)
{
    static const char fn[] = "kvz_lm_get_info";
    if (!lm || !info)
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    kvz_status st = kvz_struct_out_check(fn, "kvz_lm_info", info, KVZ_SIZE_0_1(kvz_lm_info, n_window_layers));
    if (st != KVZ_OK)
        return st;
    if (!lm->m) { /* vocab_only: what the file says without the weights */
        kvz_lm_info i = {.struct_size = sizeof i,
                         .n_vocab = kvz_tokenizer_vocab(lm->tok),
                         .bos = kvz_tokenizer_bos(lm->tok)};
        snprintf(i.arch, sizeof i.arch, "%s", lm->arch);
        snprintf(i.chat, sizeof i.chat, "%s", lm->family);
        memcpy(i.model_fingerprint, lm->fingerprint, sizeof i.model_fingerprint);
        kvz_struct_out(info, &i, sizeof i);
        return KVZ_OK;
    }
    const kvz_hparams *hp = &lm->m->hp;
    kvz_lm_info i = {.struct_size = sizeof i,
                     .n_layers = hp->n_layers,
                     .n_heads = hp->n_head,
                     .n_kv_heads = hp->n_head_kv,
                     .head_dim = hp->head_dim,
                     .n_embd = hp->n_embd,
                     .n_vocab = hp->n_vocab,
                     .weights = (kvz_dtype)kvz_linear_dense_format(&lm->m->layers[0].q),
                     .weight_bytes = (size_t)kvz_model_matrix_bytes(lm->m, NULL),
                     .weights_as_stored = lm->m->as_stored,
                     .bos = kvz_tokenizer_bos(lm->tok),
                     .n_ff = hp->n_ff,
                     .n_ctx_train = hp->n_ctx_train,
                     .window = hp->swa_window};
    for (size_t l = 0; l < hp->n_layers; l++)
        i.n_window_layers += kvz_hparams_window(hp, l) != 0;
    snprintf(i.arch, sizeof i.arch, "%s", hp->arch);
    snprintf(i.chat, sizeof i.chat, "%s", lm->family);
    for (uint64_t t = 0; t < lm->m->gguf->n_tensors; t++)
        i.n_params += lm->m->gguf->tensors[t].n_elements;
    i.kv_dtype = kvz_model_kv_dtype(lm->m);
    memcpy(i.model_fingerprint, lm->fingerprint, sizeof i.model_fingerprint);
    kvz_struct_out(info, &i, sizeof i);
    return KVZ_OK;
}

kvz_status kvz_lm_tensor_type(const kvz_lm *lm, size_t i, const char **name, size_t *tensors, size_t *n_types)
{
    if (!lm || !name || !tensors || !n_types)
        return kvz_fail(KVZ_ERR_NULL, "kvz_lm_tensor_type: NULL argument");
    const kvz_gguf *g = lm->m ? lm->m->gguf : lm->vocab;
    enum { N_TYPES = 64 }; /* GGUF's type numbers stay below (the reader refuses others) */
    size_t per_type[N_TYPES] = {0};
    for (uint64_t t = 0; t < g->n_tensors; t++)
        per_type[g->tensors[t].type < N_TYPES ? g->tensors[t].type : N_TYPES - 1]++;
    *n_types = 0;
    for (uint32_t ty = 0; ty < N_TYPES; ty++)
        if (per_type[ty] && (*n_types)++ == i) {
            const kvz_ggml_type *d = kvz_ggml_type_of(ty);
            *name = d ? d->name : "unknown", *tensors = per_type[ty];
        }
    return i < *n_types ? KVZ_OK
                        : kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_lm_tensor_type: type %zu of %zu", i, *n_types);
}

kvz_status kvz_lm_tokenize(const kvz_lm *lm, const char *text, unsigned flags, int32_t *ids, size_t cap,
                           size_t *n)
{
    if (!lm || !text || !n)
        return kvz_fail(KVZ_ERR_NULL, "kvz_lm_tokenize: NULL argument");
    if (flags & ~(unsigned)(KVZ_TOKENIZE_BOS | KVZ_TOKENIZE_SPECIAL))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_lm_tokenize: unknown flags 0x%x", flags);
    int32_t *all = NULL;
    size_t count = 0;
    kvz_status st = kvz_tokenizer_encode(lm->tok, text, strlen(text), !!(flags & KVZ_TOKENIZE_BOS),
                                         !!(flags & KVZ_TOKENIZE_SPECIAL), &all, &count);
    if (st == KVZ_OK)
        st = hand_out("kvz_lm_tokenize", all, count, ids, cap, n);
    free(all);
    return st;
}

kvz_status kvz_lm_detokenize(const kvz_lm *lm, const int32_t *ids, size_t n, unsigned flags, char *text,
                             size_t cap, size_t *len)
{
    if (!lm || (!ids && n) || !len)
        return kvz_fail(KVZ_ERR_NULL, "kvz_lm_detokenize: NULL argument");
    if (flags & ~(unsigned)(KVZ_DETOKENIZE_START | KVZ_DETOKENIZE_SPECIAL))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_lm_detokenize: unknown flags 0x%x", flags);
    const size_t vocab = lm->m ? lm->m->hp.n_vocab : kvz_tokenizer_vocab(lm->tok);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= vocab)
            return kvz_fail(KVZ_ERR_INVALID_ARG,
                            "kvz_lm_detokenize: id %zu is %d, outside the vocabulary of %zu", i, (int)ids[i],
                            vocab);
    char *s = NULL;
    kvz_status st = kvz_tokenizer_decode(lm->tok, ids, n,
                                         (flags & KVZ_DETOKENIZE_START ? KVZ_DECODE_START : 0) |
                                             (flags & KVZ_DETOKENIZE_SPECIAL ? KVZ_DECODE_SPECIAL : 0),
                                         &s);
    if (st != KVZ_OK)
        return st;
    *len = strlen(s);
    if (text && cap <= *len)
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_lm_detokenize: %zu bytes and a NUL, room for %zu", *len, cap);
    else if (text)
        memcpy(text, s, *len + 1);
    free(s);
    return st;
}

static kvz_status compress_opts_in(const char *fn, const kvz_lm_compress_opts *given, kvz_lm_compress_opts *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    kvz_status st = given ? kvz_struct_in(fn, "kvz_lm_compress_opts", given,
                                          KVZ_SIZE_0_1(kvz_lm_compress_opts, pool), o, sizeof *o)
                          : KVZ_OK;
    if (st == KVZ_OK && !(o->ratio >= 0 && o->ratio <= 1)) /* NaN too */
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: ratio %g is not in (0, 1]", fn, o->ratio);
    if (st == KVZ_OK && !o->ratio)
        o->ratio = 0.3;
    if (st == KVZ_OK && !strcmp(kvz_policy_name(o->policy), "unknown"))
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: policy %d is not a kvz_policy", fn, (int)o->policy);
    if (st == KVZ_OK && (unsigned)o->kv > KVZ_KV_F16)
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: kv %d is not a kvz_lm_kv", fn, (int)o->kv);
    if (st == KVZ_OK && (unsigned)o->mode > KVZ_SELECT_EXACT)
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: mode %d is not a kvz_select_mode", fn, (int)o->mode);
    if (st == KVZ_OK && (unsigned)o->pool > KVZ_POOL_MAX)
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: pool %d is not a kvz_pool", fn, (int)o->pool);
    if (st == KVZ_OK && o->kernel % 2 == 0 && o->kernel)
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: kernel %zu is not odd", fn, o->kernel);
    return st;
}

/* The pieces of a compression: the caller's where given, else the chat template's. */
static kvz_status pieces_in(const char *fn, const kvz_lm *lm, const kvz_lm_pieces *given, kvz_kvzip_pieces *p,
                            size_t *prev_tokens)
{
    kvz_lm_pieces g = {.struct_size = sizeof g};
    kvz_status st = given ? kvz_struct_in(fn, "kvz_lm_pieces", given, KVZ_SIZE_0_1(kvz_lm_pieces, prev_tokens),
                                          &g, sizeof g)
                          : KVZ_OK;
    if (st != KVZ_OK)
        return st;
    const int32_t *ids[4];
    size_t n[4];
    for (int k = 0; k < 4; k++) {
        ids[k] = g.ids[k] ? g.ids[k] : lm->pieces[k];
        n[k] = g.ids[k] ? g.n[k] : lm->n_pieces[k];
        for (size_t i = 0; i < n[k]; i++)
            if (ids[k][i] < 0 || (size_t)ids[k][i] >= lm->m->hp.n_vocab)
                return kvz_fail(KVZ_ERR_INVALID_ARG,
                                "%s: id %zu of piece %d is %d, outside the vocabulary of %zu", fn, i, k,
                                (int)ids[k][i], lm->m->hp.n_vocab);
    }
    *p = (kvz_kvzip_pieces){ids[0], n[0], ids[1], n[1], ids[2], n[2], ids[3], n[3]};
    *prev_tokens = g.prev_tokens;
    return KVZ_OK;
}

/* The rows' type a kvz_lm_kv asks for (checked to be one): AUTO is what the model computes in. */
static kvz_dtype kv_dtype_of(const kvz_lm *lm, kvz_lm_kv kv)
{
    static const kvz_dtype of[] = {KVZ_DTYPE_F32, KVZ_DTYPE_F32, KVZ_DTYPE_BF16, KVZ_DTYPE_F16};
    return kv == KVZ_KV_AUTO ? kvz_model_kv_dtype(lm->m) : of[kv];
}

/* The runner's options and pieces of a compression or a scoring. */
static kvz_status runner_opts(const char *fn, const kvz_lm *lm, const kvz_lm_compress_opts *o,
                              kvz_kvzip_opts *ko, kvz_kvzip_pieces *p)
{
    kvz_kvzip_defaults(ko);
    ko->kv_dtype = kv_dtype_of(lm, o->kv);
    if (o->chunk)
        ko->chunk = o->chunk;
    if (o->window)
        ko->window = o->window;
    if (o->kernel)
        ko->kernel = o->kernel;
    ko->pool = o->pool;
    if (lm->prefill_chunk_given)
        ko->prefill_chunk = lm->prefill_chunk;
    size_t prev_tokens = 0;
    const kvz_status st = pieces_in(fn, lm, o->pieces, p, &prev_tokens);
    if (prev_tokens)
        ko->prev_tokens = prev_tokens;
    return st;
}

/* A context: not empty, every id in the vocabulary. */
static kvz_status context_ids_in(const char *fn, const kvz_lm *lm, const int32_t *ids, size_t n)
{
    if (!n)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: the context is empty", fn);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= lm->m->hp.n_vocab)
            return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: context id %zu is %d, outside the vocabulary of %zu", fn,
                            i, (int)ids[i], lm->m->hp.n_vocab);
    return KVZ_OK;
}

/* The checks every call on context ids makes: the arguments, the options, the report's size, the ids. */
static kvz_status context_in(const char *fn, const kvz_lm *lm, const int32_t *ids, size_t n,
                             const kvz_lm_compress_opts *opts, kvz_lm_compress_opts *o,
                             kvz_lm_compress_report *report)
{
    kvz_status st = need_weights(lm, fn);
    if (st == KVZ_OK)
        st = compress_opts_in(fn, opts, o);
    if (st == KVZ_OK && report)
        st = kvz_struct_out_check(fn, "kvz_lm_compress_report", report,
                                  KVZ_SIZE_0_1(kvz_lm_compress_report, select_s));
    if (st != KVZ_OK)
        return st;
    return context_ids_in(fn, lm, ids, n);
}

/* [system | context] in one malloc'ed array (*all), as the prefill runs it. */
static kvz_status with_system(const char *fn, const kvz_kvzip_pieces *p, const int32_t *ids, size_t n,
                              int32_t **all)
{
    if (!(*all = malloc((p->n_sys + n) * sizeof **all)))
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", fn);
    if (p->n_sys)
        memcpy(*all, p->sys, p->n_sys * sizeof **all);
    memcpy(*all + p->n_sys, ids, n * sizeof **all);
    return KVZ_OK;
}

static void report_out(kvz_lm_compress_report *report, const kvz_kvzip_pieces *p, size_t n,
                       const kvz_kvzip_report *rep)
{
    const kvz_lm_compress_report r = {.struct_size = sizeof r,
                                      .n_sys = p->n_sys,
                                      .n_context = n,
                                      .n_kept = rep->n_kept,
                                      .passes = rep->passes,
                                      .pass_tokens = rep->pass_tokens,
                                      .prefill_s = rep->prefill_s,
                                      .score_s = rep->score_s,
                                      .select_s = rep->select_s};
    kvz_struct_out(report, &r, sizeof r);
}

kvz_status kvz_lm_compress_ids(kvz_lm *lm, const int32_t *ids, size_t n, const kvz_lm_compress_opts *opts,
                               kvz_cache **cache, kvz_lm_compress_report *report)
{
    static const char fn[] = "kvz_lm_compress_ids";
    if (!cache)
        return kvz_fail(KVZ_ERR_NULL, "%s: cache is NULL", fn);
    *cache = NULL;
    if (!lm || (!ids && n))
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    kvz_lm_compress_opts o;
    kvz_status st = context_in(fn, lm, ids, n, opts, &o, report);
    if (st != KVZ_OK)
        return st;
    if (o.policy == KVZ_POLICY_KVZIP_HEAD && !o.head_scores)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: policy kvzip-head needs head_scores", fn);
    const int scored = kvz_kvzip_policy_needs_scores(o.policy) || kvz_kvzip_policy_uses_window(o.policy) ||
                       o.policy == KVZ_POLICY_H2O;
    if (o.scores && !scored)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: policy %s scores no tokens (scores must be NULL)", fn,
                        kvz_policy_name(o.policy));
    kvz_kvzip_opts ko;
    kvz_kvzip_pieces p;
    if ((st = runner_opts(fn, lm, &o, &ko, &p)) != KVZ_OK)
        return st;
    const kvz_policy_args pa = {.struct_size = sizeof pa,
                                .policy = o.policy,
                                .ratio = o.policy == KVZ_POLICY_FULL ? 1.0 : o.ratio,
                                .mode = o.mode,
                                .head_scores = o.head_scores};
    float *scores = NULL;
    kvz_kvzip_report rep = {0};
    st = kvz_kvzip_build(lm->m, &p, ids, n, &ko, &pa, cache, o.scores ? &scores : NULL, &rep);
    if (st == KVZ_OK && o.scores) /* the policies that score tokens all return them */
        memcpy(o.scores, scores, lm->m->hp.n_layers * lm->m->hp.n_head_kv * n * sizeof *scores);
    free(scores);
    if (st == KVZ_OK && report)
        report_out(report, &p, n, &rep);
    return st;
}

kvz_status kvz_lm_score_ids(kvz_lm *lm, const int32_t *ids, size_t n, kvz_lm_scores kind,
                            const kvz_lm_compress_opts *opts, kvz_cache **cache, float *scores,
                            kvz_lm_compress_report *report)
{
    static const char fn[] = "kvz_lm_score_ids";
    if (!cache)
        return kvz_fail(KVZ_ERR_NULL, "%s: cache is NULL", fn);
    *cache = NULL;
    if (!lm || (!ids && n) || !scores)
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    if ((unsigned)kind > KVZ_SCORES_H2O)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: kind %d is not a kvz_lm_scores", fn, (int)kind);
    kvz_lm_compress_opts o;
    kvz_status st = context_in(fn, lm, ids, n, opts, &o, report);
    kvz_kvzip_opts ko;
    kvz_kvzip_pieces p;
    if (st == KVZ_OK)
        st = runner_opts(fn, lm, &o, &ko, &p);
    if (st != KVZ_OK)
        return st;
    kvz_kvzip_report rep = {0};
    kvz_cache *c = NULL;
    if (kind == KVZ_SCORES_KVZIP) { /* the passes run over the prefilled cache, which they leave as it was */
        const kvz_policy_args full = {.struct_size = sizeof full, .policy = KVZ_POLICY_FULL};
        st = kvz_kvzip_build(lm->m, &p, ids, n, &ko, &full, &c, NULL, &rep);
        size_t max_ids = 0;
        if (st == KVZ_OK)
            st = kvz_kvzip_pass_count(&p, ids, n, &ko, &rep.passes, &max_ids, &rep.pass_tokens);
        const double t0 = omp_get_wtime();
        if (st == KVZ_OK)
            st = kvz_kvzip_score(lm->m, c, &p, ids, n, &ko, scores);
        rep.score_s = omp_get_wtime() - t0, rep.select_s = 0;
    } else { /* scored on the prefill's way; scores over [system | context] are the context's */
        const size_t n_all = p.n_sys + n, pchunk = ko.prefill_chunk ? ko.prefill_chunk : 2048;
        int32_t *all = NULL;
        st = with_system(fn, &p, ids, n, &all);
        if (st == KVZ_OK)
            st = kvz_model_cache_create(lm->m, ko.kv_dtype, &c);
        const double t0 = omp_get_wtime();
        if (st == KVZ_OK && kind == KVZ_SCORES_H2O)
            st = kvz_prefill_h2o_scores(lm->m, c, all, n_all, p.n_sys, pchunk, scores);
        else if (st == KVZ_OK)
            st = kvz_prefill_window_scores(lm->m, c, all, n_all, p.n_sys, pchunk, ko.window, ko.kernel, ko.pool,
                                           scores);
        rep.prefill_s = omp_get_wtime() - t0;
        free(all);
    }
    if (st != KVZ_OK) {
        kvz_cache_destroy(c);
        return st;
    }
    *cache = c;
    if (report)
        report_out(report, &p, n, &rep);
    return KVZ_OK;
}

kvz_status kvz_lm_compress(kvz_lm *lm, const char *context, const kvz_lm_compress_opts *opts, kvz_cache **cache)
{
    static const char fn[] = "kvz_lm_compress";
    if (!cache)
        return kvz_fail(KVZ_ERR_NULL, "%s: cache is NULL", fn);
    *cache = NULL;
    if (!lm || !context)
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    kvz_status st = need_weights(lm, fn);
    if (st != KVZ_OK)
        return st;
    int32_t *ctx = NULL;
    size_t n_c = 0;
    if ((st = kvz_tokenizer_encode(lm->tok, context, strlen(context), 0, 0, &ctx, &n_c)) != KVZ_OK)
        return st;
    st = n_c ? kvz_lm_compress_ids(lm, ctx, n_c, opts, cache, NULL)
             : kvz_fail(KVZ_ERR_INVALID_ARG, "%s: the context is empty", fn);
    free(ctx);
    return st;
}

kvz_status kvz_lm_fastkv(kvz_lm *lm, const int32_t *ids, size_t n, const kvz_lm_fastkv_opts *opts,
                         kvz_cache **cache, float *logits, kvz_lm_fastkv_report *report)
{
    static const char fn[] = "kvz_lm_fastkv";
    if (!cache)
        return kvz_fail(KVZ_ERR_NULL, "%s: cache is NULL", fn);
    *cache = NULL;
    if (!lm || (!ids && n))
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    kvz_lm_fastkv_opts o = {.struct_size = sizeof o};
    kvz_status st = need_weights(lm, fn);
    if (st == KVZ_OK && opts)
        st = kvz_struct_in(fn, "kvz_lm_fastkv_opts", opts, KVZ_SIZE_0_1(kvz_lm_fastkv_opts, pieces), &o,
                           sizeof o);
    if (st == KVZ_OK && report)
        st = kvz_struct_out_check(fn, "kvz_lm_fastkv_report", report,
                                  KVZ_SIZE_0_1(kvz_lm_fastkv_report, prefill_s));
    if (st != KVZ_OK)
        return st;
    const size_t L = lm->m->hp.n_layers;
    if (!(o.tsp_rate >= 0 && o.tsp_rate <= 1) || !(o.retain_rate >= 0 && o.retain_rate <= 1))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: tsp_rate %g and retain_rate %g must be in (0, 1]", fn,
                        o.tsp_rate, o.retain_rate);
    if (o.full_layers > L)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: full_layers %zu of a model of %zu layers", fn, o.full_layers,
                        L);
    if ((unsigned)o.kv > KVZ_KV_F16)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: kv %d is not a kvz_lm_kv", fn, (int)o.kv);
    kvz_kvzip_pieces p;
    size_t prev_tokens;
    if ((st = context_ids_in(fn, lm, ids, n)) != KVZ_OK ||
        (st = pieces_in(fn, lm, o.pieces, &p, &prev_tokens)) != KVZ_OK)
        return st;
    kvz_fastkv_opts fo;
    kvz_fastkv_defaults_rate(&fo); /* proportional budgets, max pooling */
    fo.tsp = !o.no_tsp;
    fo.tsp_layer = o.full_layers ? o.full_layers - 1 : KVZ_FASTKV_TSP_MIDDLE;
    if (o.tsp_rate)
        fo.tsp_rate = o.tsp_rate;
    if (o.retain_rate)
        fo.retain_rate = o.retain_rate;
    if (o.window)
        fo.window = o.window;
    if (o.kernel)
        fo.kernel = o.kernel;
    if (o.avg_pool)
        fo.pool = KVZ_POOL_AVG;
    fo.chunk =
        lm->prefill_chunk_given ? lm->prefill_chunk : 2048; /* bounds the activations, as a prefill does */
    int32_t *all = NULL;
    kvz_cache *c = NULL;
    st = with_system(fn, &p, ids, n, &all);
    if (st == KVZ_OK)
        st = kvz_model_cache_create(lm->m, kv_dtype_of(lm, o.kv), &c);
    kvz_fastkv_stats fs = {0};
    const double t0 = omp_get_wtime();
    if (st == KVZ_OK)
        st = kvz_fastkv_prefill(lm->m, c, all, p.n_sys + n, &fo, logits, &fs);
    const double secs = omp_get_wtime() - t0;
    free(all);
    if (st != KVZ_OK) {
        kvz_cache_destroy(c);
        return st;
    }
    *cache = c;
    if (report) {
        const kvz_lm_fastkv_report r = {.struct_size = sizeof r,
                                        .n_sys = p.n_sys,
                                        .full_layers = fs.tsp_count ? fs.tsp_layer + 1 : L,
                                        .tsp_tokens = fs.tsp_count,
                                        .prefill_s = secs};
        kvz_struct_out(report, &r, sizeof r);
    }
    return KVZ_OK;
}

static int stop_eog(void *ctx, int32_t id) { return kvz_tokenizer_is_eog(ctx, id); }

static kvz_status gen_opts_in(const char *fn, const kvz_lm_gen_opts *given, kvz_lm_gen_opts *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    kvz_status st = given ? kvz_struct_in(fn, "kvz_lm_gen_opts", given, KVZ_SIZE_0_1(kvz_lm_gen_opts, no_stop),
                                          o, sizeof *o)
                          : KVZ_OK;
    if (st == KVZ_OK && !o->max_tokens)
        o->max_tokens = 128;
    return st;
}

static kvz_gen_opts gen_of(const kvz_lm *lm, const kvz_lm_gen_opts *o)
{
    return (kvz_gen_opts){o->max_tokens, o->temperature, o->seed, o->no_stop ? NULL : stop_eog, lm->tok};
}

/* Prefills ids into kv, generates, and decodes the answer (without a final end-of-turn token). */
static kvz_status run(kvz_lm *lm, kvz_kv_target kv, const int32_t *ids, size_t n, const kvz_lm_gen_opts *o,
                      int strip_leading_space, char **text)
{
    float *logits = malloc(lm->m->hp.n_vocab * sizeof *logits);
    int32_t *out = malloc(o->max_tokens * sizeof *out);
    size_t n_out = 0;
    kvz_status st = logits && out ? KVZ_OK : kvz_fail(KVZ_ERR_NOMEM, "no memory for the answer");
    if (st == KVZ_OK)
        st = kvz_model_prefill(lm->m, kv, ids, n, lm->prefill_chunk, logits);
    const kvz_gen_opts go = gen_of(lm, o);
    if (st == KVZ_OK)
        st = kvz_model_generate(lm->m, kv, logits, &go, out, &n_out);
    if (st == KVZ_OK && n_out && !o->no_stop && kvz_tokenizer_is_eog(lm->tok, out[n_out - 1]))
        n_out--; /* the end-of-turn token ends the answer; it is not part of it */
    if (st == KVZ_OK)
        st = kvz_tokenizer_decode(lm->tok, out, n_out, strip_leading_space ? KVZ_DECODE_START : 0, text);
    free(logits), free(out);
    return st;
}

kvz_status kvz_lm_ask(kvz_lm *lm, const kvz_cache *cache, const char *question, const kvz_lm_gen_opts *opts,
                      char **answer)
{
    static const char fn[] = "kvz_lm_ask";
    if (!answer)
        return kvz_fail(KVZ_ERR_NULL, "%s: answer is NULL", fn);
    *answer = NULL;
    if (!lm || !cache || !question)
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    kvz_lm_gen_opts o;
    kvz_status st = need_weights(lm, fn);
    if (st == KVZ_OK)
        st = gen_opts_in(fn, opts, &o);
    if (st == KVZ_OK && !*question)
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: the question is empty", fn);
    if (st == KVZ_OK)
        st = kvz_model_kv_check(lm->m, (kvz_kv_target){(kvz_cache *)cache, NULL}, fn);
    int32_t *ids = NULL;
    size_t n = 0;
    if (st == KVZ_OK)
        st = kvz_prompt_question(lm->m, lm->tok, lm->pieces[3], lm->n_pieces[3], question, &ids, &n);
    kvz_query *q = NULL;
    if (st == KVZ_OK)
        st = kvz_query_create(cache, &q);
    if (st == KVZ_OK)
        st = run(lm, (kvz_kv_target){NULL, q}, ids, n, &o, 0, answer);
    kvz_query_destroy(q);
    free(ids);
    return st;
}

kvz_status kvz_lm_generate(kvz_lm *lm, const char *prompt, const kvz_lm_gen_opts *opts, char **text)
{
    static const char fn[] = "kvz_lm_generate";
    if (!text)
        return kvz_fail(KVZ_ERR_NULL, "%s: text is NULL", fn);
    *text = NULL;
    if (!lm || !prompt)
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    kvz_lm_gen_opts o;
    kvz_status st = need_weights(lm, fn);
    if (st == KVZ_OK)
        st = gen_opts_in(fn, opts, &o);
    int32_t *ids = NULL;
    size_t n = 0;
    if (st == KVZ_OK)
        st = kvz_tokenizer_encode(lm->tok, prompt, strlen(prompt), 1, 1, &ids, &n);
    if (st == KVZ_OK && !*prompt)
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: the prompt is empty", fn);
    kvz_cache *c = NULL;
    if (st == KVZ_OK)
        st = kvz_model_cache_create(lm->m, kvz_model_kv_dtype(lm->m), &c);
    /* the text starts the document when the prompt was only BOS: no SentencePiece dummy-prefix space */
    if (st == KVZ_OK)
        st =
            run(lm, (kvz_kv_target){c, NULL}, ids, n, &o, n == 1 && ids[0] == kvz_tokenizer_bos(lm->tok), text);
    kvz_cache_destroy(c);
    free(ids);
    return st;
}

kvz_status kvz_lm_new_cache(const kvz_lm *lm, kvz_dtype dtype, kvz_cache **cache)
{
    if (!cache)
        return kvz_fail(KVZ_ERR_NULL, "kvz_lm_new_cache: cache is NULL");
    *cache = NULL;
    if (!lm)
        return kvz_fail(KVZ_ERR_NULL, "kvz_lm_new_cache: lm is NULL");
    const kvz_status st = need_weights(lm, "kvz_lm_new_cache");
    return st == KVZ_OK ? kvz_model_cache_create(lm->m, dtype, cache) : st;
}

/* The target of a token-level call: exactly one of cache and query. */
static kvz_status target(const char *fn, kvz_cache *cache, kvz_query *query, kvz_kv_target *kv)
{
    if (!cache == !query)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: give a cache or a query, not %s", fn,
                        cache ? "both" : "neither");
    *kv = (kvz_kv_target){cache, query};
    return KVZ_OK;
}

/* A prefill with the logits after the last n_rows ids (logits NULL: none wanted). */
static kvz_status prefill(const char *fn, kvz_lm *lm, kvz_cache *cache, kvz_query *query, const int32_t *ids,
                          size_t n, size_t n_rows, float *logits)
{
    if (!lm || !ids)
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    kvz_kv_target kv;
    kvz_status st = need_weights(lm, fn);
    if (st == KVZ_OK)
        st = target(fn, cache, query, &kv);
    if (st == KVZ_OK && !n)
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: no ids", fn);
    if (st == KVZ_OK && (!n_rows || n_rows > n))
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: %zu rows of logits after %zu ids", fn, n_rows, n);
    if (st == KVZ_OK) /* without logits, the model's head is not run */
        st = kvz_model_prefill_logits(lm->m, kv, ids, n, lm->prefill_chunk, logits ? n_rows : 0, logits);
    return st;
}

kvz_status kvz_lm_prefill(kvz_lm *lm, kvz_cache *cache, kvz_query *query, const int32_t *ids, size_t n,
                          float *logits)
{
    return prefill("kvz_lm_prefill", lm, cache, query, ids, n, 1, logits);
}

kvz_status kvz_lm_prefill_logits(kvz_lm *lm, kvz_cache *cache, kvz_query *query, const int32_t *ids, size_t n,
                                 size_t n_rows, float *logits)
{
    if (!logits)
        return kvz_fail(KVZ_ERR_NULL, "kvz_lm_prefill_logits: logits is NULL");
    return prefill("kvz_lm_prefill_logits", lm, cache, query, ids, n, n_rows, logits);
}

kvz_status kvz_lm_decode(kvz_lm *lm, kvz_cache *cache, kvz_query *query, const float *logits,
                         const kvz_lm_gen_opts *opts, int32_t *out, size_t *n_out)
{
    static const char fn[] = "kvz_lm_decode";
    if (!n_out)
        return kvz_fail(KVZ_ERR_NULL, "%s: n_out is NULL", fn);
    *n_out = 0;
    if (!lm || !logits || !out)
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    kvz_kv_target kv;
    kvz_lm_gen_opts o;
    kvz_status st = need_weights(lm, fn);
    if (st == KVZ_OK)
        st = gen_opts_in(fn, opts, &o);
    if (st == KVZ_OK)
        st = target(fn, cache, query, &kv);
    /* before the first sample: a one-token answer feeds nothing, and would not look at the target */
    if (st == KVZ_OK)
        st = kvz_model_kv_check(lm->m, kv, fn);
    const kvz_gen_opts go = gen_of(lm, &o);
    if (st == KVZ_OK)
        st = kvz_model_generate(lm->m, kv, logits, &go, out, n_out);
    return st;
}

kvz_status kvz_lm_piece_ids(const kvz_lm *lm, kvz_lm_piece piece, int32_t *ids, size_t cap, size_t *n)
{
    static const char fn[] = "kvz_lm_piece_ids";
    if (!lm || !n)
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    kvz_status st = need_weights(lm, fn);
    if (st == KVZ_OK && (unsigned)piece > KVZ_PIECE_POSTFIX)
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: piece %d is not a kvz_lm_piece", fn, (int)piece);
    return st == KVZ_OK ? hand_out(fn, lm->pieces[piece], lm->n_pieces[piece], ids, cap, n) : st;
}

kvz_status kvz_lm_question_ids(const kvz_lm *lm, const char *question, const int32_t *postfix, size_t n_postfix,
                               int32_t *ids, size_t cap, size_t *n)
{
    static const char fn[] = "kvz_lm_question_ids";
    if (!lm || !question || !n || (!postfix && n_postfix))
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    kvz_status st = need_weights(lm, fn);
    int32_t *all = NULL;
    size_t count = 0;
    if (st == KVZ_OK)
        st = kvz_prompt_question(lm->m, lm->tok, postfix ? postfix : lm->pieces[KVZ_PIECE_POSTFIX],
                                 postfix ? n_postfix : lm->n_pieces[KVZ_PIECE_POSTFIX], question, &all, &count);
    if (st == KVZ_OK)
        st = hand_out(fn, all, count, ids, cap, n);
    free(all);
    return st;
}

int kvz_lm_is_eog(const kvz_lm *lm, int32_t id) { return lm && kvz_tokenizer_is_eog(lm->tok, id); }

kvz_status kvz_lm_load_cache(const kvz_lm *lm, const char *path, kvz_cache **cache, kvz_cache_meta *meta)
{
    static const char fn[] = "kvz_lm_load_cache";
    if (!cache)
        return kvz_fail(KVZ_ERR_NULL, "%s: cache is NULL", fn);
    *cache = NULL;
    if (!lm || !path)
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    kvz_status st = need_weights(lm, fn);
    if (st == KVZ_OK)
        st = kvz_cache_load(path, lm->fingerprint, cache, meta);
    if (st == KVZ_OK && (st = kvz_model_kv_check(lm->m, (kvz_kv_target){*cache, NULL}, fn)) != KVZ_OK) {
        kvz_cache_destroy(*cache);
        *cache = NULL;
    }
    return st;
}

kvz_status kvz_lm_save_cache(const kvz_lm *lm, const kvz_cache *cache, const char *path,
                             const kvz_lm_compress_opts *opts)
{
    static const char fn[] = "kvz_lm_save_cache";
    if (!lm || !cache || !path)
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    kvz_lm_compress_opts o;
    kvz_status st = compress_opts_in(fn, opts, &o);
    if (st != KVZ_OK)
        return st;
    kvz_cache_meta meta = {.struct_size = sizeof meta, .ratio = o.policy == KVZ_POLICY_FULL ? 1.0 : o.ratio};
    memcpy(meta.model_fingerprint, lm->fingerprint, sizeof meta.model_fingerprint);
    snprintf(meta.policy, sizeof meta.policy, "%s", kvz_policy_name(o.policy));
    return kvz_cache_save(cache, path, &meta);
}
