/* Window scores of a layer held in the cache, and a prefill that scores every layer with the
 * last window of its own queries (the prompt-time statistics of the SnapKV family). */
#include "model/window_scores.h"

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/pool.h"

typedef struct heads_job {
    const kvz_model *m;
    const kvz_cache *c;
    size_t layer, n, window, kernel;
    const float *qt;
    kvz_pool pool;
    kvz_dtype dtype; /* of the cache's rows */
    float *out;
    size_t next; /* the next head */
    int status;  /* the first failure */
} heads_job;

static void heads_body(void *ctx, unsigned slot, unsigned team)
{
    (void)slot, (void)team;
    heads_job *j = ctx;
    const kvz_hparams *hp = &j->m->hp;
    const size_t Hkv = hp->n_head_kv, G = hp->n_head / Hkv, d = hp->head_dim;
    for (size_t h; (h = kvz_team_claim(&j->next, Hkv)) < Hkv;) {
        const void *k = NULL, *v = NULL;
        size_t len = 0;
        kvz_status sh = kvz_cache_length(j->c, j->layer, h, &len);
        if (sh == KVZ_OK)
            sh = kvz_cache_rows(j->c, j->layer, h, &k, &v);
        if (sh == KVZ_OK && len != j->n)
            sh = KVZ_ERR_STATE; /* the callers fill an empty layer with exactly n rows */
        if (sh == KVZ_OK) {
            const kvz_window_args a = {.struct_size = sizeof a,
                                       .n_kv_heads = 1,
                                       .group = G,
                                       .head_dim = d,
                                       .n = j->n,
                                       .window = j->window,
                                       .kernel = j->kernel,
                                       .pool = j->pool,
                                       .scale = 0.0f,
                                       .q = j->qt + h * G * d,
                                       .q_token_stride = (ptrdiff_t)(hp->n_head * d),
                                       .q_head_stride = (ptrdiff_t)d,
                                       .k = k,
                                       .k_dtype = j->dtype,
                                       .k_head_stride = 0,
                                       .k_row_stride = (ptrdiff_t)d,
                                       .out = j->out + h * j->n,
                                       .out_head_stride = 0};
            sh = kvz_window_score(&a);
        }
        if (sh != KVZ_OK) {
            int ok = KVZ_OK;
            __atomic_compare_exchange_n(&j->status, &ok, (int)sh, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        }
    }
}

/* The cache keeps each head in its own segment, so every head is one kvz_window_score call;
 * the heads run in parallel (each call's own region then runs on its thread alone), as
 * kvz_window_score would run them. */
kvz_status kvz_layer_window_scores(const kvz_model *m, const kvz_cache *c, size_t layer, size_t n,
                                   const float *qt, size_t window, size_t kernel, kvz_pool pool, float *out)
{
    kvz_dtype dtype = KVZ_DTYPE_F32;
    const kvz_status ss = kvz_cache_shape(c, NULL, NULL, NULL, &dtype);
    if (ss != KVZ_OK)
        return ss;
    heads_job j = {m, c, layer, n, window, kernel, qt, pool, dtype, out, 0, KVZ_OK};
    kvz_team_run(heads_body, &j, (int)m->hp.n_head_kv);
    const kvz_status st = (kvz_status)j.status;
    if (st != KVZ_OK) /* the worker's message stayed in its thread */
        return kvz_fail(st, "window score of layer %zu (%zu tokens) failed: %s", layer, n, kvz_strerror(st));
    return KVZ_OK;
}

typedef struct prefill_ctx {
    const kvz_model *m;
    const kvz_cache *c;
    size_t n, n_sys, window, kernel;
    kvz_pool pool;
    float *qt, *ws, *scores;
} prefill_ctx;

/* After each layer of the last chunk: that layer's window scores, context part only. */
static kvz_status score_layer(void *ctx, size_t layer)
{
    prefill_ctx *p = ctx;
    const size_t H = p->m->hp.n_head_kv, n_c = p->n - p->n_sys, n_w = p->n - p->window;
    if (kvz_hparams_window(&p->m->hp, layer)) { /* a sliding-window layer is not selected from */
        memset(p->scores + layer * H * n_c, 0, H * n_c * sizeof *p->scores);
        return KVZ_OK;
    }
    kvz_status st =
        kvz_layer_window_scores(p->m, p->c, layer, p->n, p->qt, p->window, p->kernel, p->pool, p->ws);
    for (size_t h = 0; st == KVZ_OK && h < H; h++) {
        float *dst = p->scores + (layer * H + h) * n_c;
        memcpy(dst, p->ws + h * p->n + p->n_sys, (n_w - p->n_sys) * sizeof *dst);
        memset(dst + (n_w - p->n_sys), 0, p->window * sizeof *dst);
    }
    return st;
}

kvz_status kvz_prefill_window_scores(kvz_model *m, kvz_cache *cache, const int32_t *ids, size_t n, size_t n_sys,
                                     size_t chunk, size_t window, size_t kernel, kvz_pool pool, float *scores)
{
    if (!m || !cache || !ids || !scores)
        return kvz_fail(KVZ_ERR_NULL, "kvz_prefill_window_scores: NULL argument");
    if (n_sys >= n || n - n_sys <= window || !window)
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "kvz_prefill_window_scores: %zu context tokens, window %zu (needs more "
                        "context tokens than the window)",
                        n > n_sys ? n - n_sys : 0, window);
    for (size_t l = 0; l < m->hp.n_layers; l++) {
        int64_t next = 0;
        const kvz_status sn = kvz_cache_next_position(cache, l, &next);
        if (sn != KVZ_OK)
            return sn;
        if (next != 0)
            return kvz_fail(KVZ_ERR_STATE, "kvz_prefill_window_scores: the cache is not empty");
    }
    prefill_ctx p = {m, cache, n, n_sys, window, kernel, pool, NULL, NULL, scores};
    p.qt = malloc(window * m->hp.n_head * m->hp.head_dim * sizeof *p.qt);
    p.ws = malloc(m->hp.n_head_kv * n * sizeof *p.ws);
    kvz_status st = p.qt && p.ws ? KVZ_OK : kvz_fail(KVZ_ERR_NOMEM, "kvz_prefill_window_scores: no memory");
    const kvz_prefill_hook hook = {
        .q_tail_rows = window, .q_tail = p.qt, .after_layer = score_layer, .ctx = &p};
    if (st == KVZ_OK)
        st = kvz_model_prefill_ex(m, (kvz_kv_target){cache, NULL}, ids, n, chunk, 0, NULL, &hook);
    free(p.qt), free(p.ws);
    return st;
}
