/* The synthetic-model operations of model_cases.h, each timed by the wall clock. */
#include "cli/model_cases.h"

#include <omp.h>
#include <stdio.h>
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

/* A kvz_mc around model m (taken: freed on failure too): n token ids of [system | context] spread
 * over its vocabulary, the buffers the operations fill, KVzip's pieces and options. */
static kvz_status mc_wrap(kvz_model *m, size_t n, kvz_mc **out)
{
    const kvz_hparams *hp = &m->hp;
    kvz_mc *mc = calloc(1, sizeof *mc);
    if (mc) {
        mc->m = m, mc->n = n;
        mc->all = malloc(n * sizeof *mc->all);
        mc->logits = malloc(hp->n_vocab * sizeof *mc->logits);
        mc->scores = malloc(hp->n_layers * hp->n_head_kv * n * sizeof *mc->scores);
    }
    if (!mc || !mc->all || !mc->logits || !mc->scores) {
        if (mc)
            kvz_mc_destroy(mc);
        else
            kvz_model_free(m);
        return kvz_fail(KVZ_ERR_NOMEM, "bench model: no memory");
    }
    memcpy(mc->all, sys_ids, sizeof sys_ids);
    for (size_t i = N_SYS; i < n; i++)
        mc->all[i] = (int32_t)((i * 7919u + 13u) % hp->n_vocab);
    mc->pc = (kvz_kvzip_pieces){sys_ids, N_SYS, rf, 8, rn, 12, post, 6};
    kvz_kvzip_defaults(&mc->ko);
    mc->ko.prefill_chunk = KVZ_MC_CHUNK;
    *out = mc;
    return KVZ_OK;
}

static kvz_status check_length(size_t n)
{
    return n <= N_SYS || n > ((size_t)1 << 20)
               ? kvz_fail(KVZ_ERR_INVALID_ARG, "bench model: a context of %zu tokens (5 to 1M)", n)
               : KVZ_OK;
}

kvz_status kvz_mc_create_at(size_t n, size_t n_layers, kvz_mc **out)
{
    *out = NULL;
    kvz_status st = check_length(n);
    if (st != KVZ_OK)
        return st;
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
    const kvz_dtype wt = kvz_cpu_has_avx512_bf16() ? KVZ_DTYPE_BF16 : KVZ_DTYPE_F32;
    kvz_model *m = NULL;
    if ((st = kvz_model_synthetic(&hp, wt, 42, &m)) != KVZ_OK)
        return st;
    return mc_wrap(m, n, out);
}

kvz_status kvz_mc_open(const char *path, size_t n, kvz_mc **out)
{
    *out = NULL;
    kvz_status st = check_length(n);
    if (st != KVZ_OK)
        return st;
    const kvz_model_opts mo = {.bf16_weights = -1}; /* as kvz generate holds them */
    kvz_model *m = NULL;
    if ((st = kvz_model_load(path, &mo, &m)) != KVZ_OK)
        return st;
    const size_t ctx = m->hp.n_ctx_train;
    if (ctx && n > ctx) {
        kvz_model_free(m);
        return kvz_fail(KVZ_ERR_INVALID_ARG, "bench model: %s: a context of %zu tokens is past the model's %zu",
                        path, n, ctx);
    }
    return mc_wrap(m, n, out);
}

void kvz_mc_destroy(kvz_mc *mc)
{
    if (!mc)
        return;
    kvz_cache_destroy(mc->cache);
    kvz_model_free(mc->m);
    free(mc->all), free(mc->logits), free(mc->scores), free(mc);
}

size_t kvz_mc_layers(const kvz_mc *mc) { return mc->m->hp.n_layers; }

void kvz_mc_describe(const kvz_mc *mc, char *buf, size_t size)
{
    const kvz_hparams *hp = &mc->m->hp;
    snprintf(buf, size, "%s, %zu layers, %zu KV heads of %zu, vocabulary %zu, %s weights%s", hp->arch,
             hp->n_layers, hp->n_head_kv, hp->head_dim, hp->n_vocab, kvz_mc_weights(mc),
             mc->m->as_stored ? ", the file's blocks used as stored" : "");
}

const char *kvz_mc_weights(const kvz_mc *mc)
{
    return kvz_linear_dense_format(&mc->m->layers[0].q) == KVZ_WFMT_BF16 ? "bf16" : "f32";
}

void kvz_mc_weight_bytes(const kvz_mc *mc, double *all, double *layers)
{
    *all = kvz_model_matrix_bytes(mc->m, layers);
}

double kvz_mc_step_kv_bytes(const kvz_mc *mc, const kvz_cache *c)
{
    const kvz_hparams *hp = &mc->m->hp;
    double bytes = 0;
    for (size_t l = 0; l < hp->n_layers; l++) {
        size_t window = 0;
        if (kvz_cache_layer_window(c, l, &window) != KVZ_OK)
            return -1.0;
        for (size_t h = 0; h < hp->n_head_kv; h++) {
            size_t seg = 0, len = 0;
            if (kvz_cache_segment_bytes(c, l, h, &seg) != KVZ_OK || kvz_cache_length(c, l, h, &len) != KVZ_OK)
                return -1.0;
            /* a global layer: every row; a windowed one: the last window - 1 rows beside the new token */
            const size_t seen = window && len > window - 1 ? window - 1 : len;
            bytes += len ? (double)seg * (double)seen / (double)len : 0.0;
        }
    }
    return bytes;
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
