/* The synthetic-model operations of model_cases.h, each timed by the wall clock. */
#include "cli/model_cases.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "model/fastkv.h"
#include "model/generate.h"
#include "model/kvzip.h"

struct kvz_mc {
    kvz_model *m;
    int32_t *all; /* [system | context] */
    float *logits, *scores;
    size_t n;         /* tokens of [system | context] */
    kvz_cache *cache; /* the prefilled cache */
    kvz_kvzip_pieces pc;
    kvz_kvzip_opts ko;
};

enum { N_SYS = 4 };
static const int32_t sys_ids[N_SYS] = {1, 2, 3, 4}, rf[8] = {5, 6, 7, 8, 9, 10, 11, 12};
static const int32_t rn[12] = {5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17}, post[6] = {20, 21, 22, 23, 24, 25};

kvz_status kvz_mc_create(kvz_mc **out) { return kvz_mc_create_at(KVZ_MC_CONTEXT, 0, out); }

kvz_status kvz_mc_create_at(size_t n, size_t n_layers, kvz_mc **out)
{
    *out = NULL;
    if (n <= N_SYS || n > ((size_t)1 << 20))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "bench model: a context of %zu tokens (5 to 1M)", n);
    if (!n_layers)
        n_layers = KVZ_MC_LAYERS;
    kvz_hparams hp = {.arch = "llama",
                      .n_layers = n_layers,
                      .n_embd = 4096,
                      .n_head = 32,
                      .n_head_kv = 8,
                      .head_dim = 128,
                      .n_ff = 14336,
                      .n_vocab = KVZ_MC_VOCAB,
                      .rope_dim = 128,
                      .rope_base = 500000.0f,
                      .rope_linear_factor = 1.0f,
                      .eps = 1e-5f,
                      .rope_mode = KVZ_ROPE_NORM};
    kvz_mc *mc = calloc(1, sizeof *mc);
    if (!mc)
        return kvz_fail(KVZ_ERR_NOMEM, "bench model: no memory");
    const kvz_dtype wt = kvz_cpu_has_avx512_bf16() ? KVZ_DTYPE_BF16 : KVZ_DTYPE_F32;
    kvz_status st = kvz_model_synthetic(&hp, wt, 42, &mc->m);
    mc->n = n;
    mc->all = malloc(n * sizeof *mc->all);
    mc->logits = malloc(KVZ_MC_VOCAB * sizeof *mc->logits);
    mc->scores = malloc(n_layers * 8 * n * sizeof *mc->scores);
    if (st == KVZ_OK && (!mc->all || !mc->logits || !mc->scores))
        st = kvz_fail(KVZ_ERR_NOMEM, "bench model: no memory");
    if (st != KVZ_OK) {
        kvz_mc_destroy(mc);
        return st;
    }
    memcpy(mc->all, sys_ids, sizeof sys_ids);
    for (size_t i = N_SYS; i < n; i++)
        mc->all[i] = (int32_t)((i * 7919u + 13u) % KVZ_MC_VOCAB);
    mc->pc = (kvz_kvzip_pieces){sys_ids, N_SYS, rf, 8, rn, 12, post, 6};
    kvz_kvzip_defaults(&mc->ko);
    mc->ko.prefill_chunk = KVZ_MC_CHUNK;
    *out = mc;
    return KVZ_OK;
}

void kvz_mc_destroy(kvz_mc *mc)
{
    if (!mc)
        return;
    kvz_cache_destroy(mc->cache);
    kvz_model_free(mc->m);
    free(mc->all), free(mc->logits), free(mc->scores), free(mc);
}

const char *kvz_mc_weights(const kvz_mc *mc) { return mc->m->layers[0].q.wtype == KVZ_DTYPE_BF16 ? "bf16" : "f32"; }

void kvz_mc_weight_bytes(const kvz_mc *mc, double *all, double *layers)
{
    const kvz_hparams *hp = &mc->m->hp;
    const double wb = mc->m->layers[0].q.wtype == KVZ_DTYPE_BF16 ? 2.0 : 4.0, E = (double)hp->n_embd;
    const double QD = (double)(hp->n_head * hp->head_dim), KD = (double)(hp->n_head_kv * hp->head_dim);
    *layers = (2.0 * E * QD + 2.0 * E * KD + 3.0 * E * (double)hp->n_ff) * wb * (double)hp->n_layers;
    *all = *layers + (double)hp->n_vocab * E * wb;
}

kvz_status kvz_mc_prefill(kvz_mc *mc, double *seconds)
{
    kvz_cache_destroy(mc->cache);
    mc->cache = NULL;
    kvz_status st = kvz_model_cache_create(mc->m, KVZ_DTYPE_BF16, &mc->cache);
    const double t0 = omp_get_wtime();
    if (st == KVZ_OK)
        st = kvz_model_prefill(mc->m, (kvz_kv_target){mc->cache, NULL}, mc->all, mc->n, KVZ_MC_CHUNK, mc->logits);
    *seconds = omp_get_wtime() - t0;
    return st;
}

static kvz_status need_cache(const kvz_mc *mc)
{
    return mc->cache ? KVZ_OK : kvz_fail(KVZ_ERR_STATE, "bench model: prefill first");
}

kvz_status kvz_mc_decode_step(kvz_mc *mc, double *seconds)
{
    const kvz_status st = need_cache(mc);
    return st == KVZ_OK ? kvz_mc_decode_on(mc, mc->cache, seconds) : st; /* the cache as the passes want it */
}

kvz_status kvz_mc_passes(kvz_mc *mc, int scored, double *seconds)
{
    kvz_status st = need_cache(mc);
    kvz_kvzip_opts o = mc->ko;
    o.passes_only = !scored;
    const double t0 = omp_get_wtime();
    if (st == KVZ_OK)
        st = kvz_kvzip_score(mc->m, mc->cache, &mc->pc, mc->all + N_SYS, mc->n - N_SYS, &o, mc->scores);
    *seconds = omp_get_wtime() - t0;
    return st;
}

kvz_status kvz_mc_kvzip(kvz_mc *mc, double *seconds, double *parts)
{
    kvz_policy_args pa = {.struct_size = sizeof pa, .policy = KVZ_POLICY_KVZIP_PAIR, .ratio = 0.3};
    kvz_cache *c = NULL;
    const double t0 = omp_get_wtime();
    kvz_kvzip_report rep = {0};
    const kvz_status st =
        kvz_kvzip_build(mc->m, &mc->pc, mc->all + N_SYS, mc->n - N_SYS, &mc->ko, &pa, &c, NULL, &rep);
    *seconds = omp_get_wtime() - t0;
    if (parts)
        parts[0] = rep.prefill_s, parts[1] = rep.score_s;
    kvz_cache_destroy(c);
    return st;
}

kvz_status kvz_mc_fastkv(kvz_mc *mc, double *seconds) { return kvz_mc_fastkv_cache(mc, seconds, NULL); }

kvz_status kvz_mc_fastkv_cache(kvz_mc *mc, double *seconds, kvz_cache **kept)
{
    kvz_fastkv_opts fo;
    kvz_fastkv_defaults_rate(&fo);
    fo.chunk = KVZ_MC_CHUNK;
    kvz_cache *c = NULL;
    kvz_status st = kvz_model_cache_create(mc->m, KVZ_DTYPE_BF16, &c);
    const double t0 = omp_get_wtime();
    if (st == KVZ_OK)
        st = kvz_fastkv_prefill(mc->m, c, mc->all, mc->n, &fo, mc->logits, NULL);
    *seconds = omp_get_wtime() - t0;
    if (kept && st == KVZ_OK)
        *kept = c, c = NULL;
    kvz_cache_destroy(c);
    return st;
}

kvz_status kvz_mc_kvzip_select(kvz_mc *mc, double ratio, kvz_cache **out, double *seconds)
{
    *out = NULL;
    kvz_status st = need_cache(mc);
    kvz_cache *c = NULL;
    const double t0 = omp_get_wtime();
    if (st == KVZ_OK)
        st = kvz_cache_clone(mc->cache, &c);
    kvz_policy_args pa = {.struct_size = sizeof pa, .policy = KVZ_POLICY_KVZIP_PAIR, .ratio = ratio};
    if (st == KVZ_OK)
        st = kvz_kvzip_compress(c, N_SYS, mc->n - N_SYS, mc->scores, &pa, NULL);
    *seconds = omp_get_wtime() - t0;
    if (st == KVZ_OK)
        *out = c, c = NULL;
    kvz_cache_destroy(c);
    return st;
}

kvz_cache *kvz_mc_cache(const kvz_mc *mc) { return mc->cache; }

kvz_status kvz_mc_decode_on(kvz_mc *mc, kvz_cache *c, double *seconds)
{
    const double t0 = omp_get_wtime();
    kvz_status st = kvz_model_step(mc->m, (kvz_kv_target){c, NULL}, mc->all[N_SYS], mc->logits);
    *seconds = omp_get_wtime() - t0;
    if (st == KVZ_OK)
        st = kvz_cache_truncate(c, 1); /* the cache as it was, for the next step */
    return st;
}
