/* The KVzip pipeline as the reference code runs it (spec/kvzip.md §1-§3): the model is a host
 * of the cache API; the scores come out of the attention kernel's scoring mode. */
#include "model/kvzip.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "model/h2o_scores.h"
#include "model/window_scores.h"

void kvz_kvzip_defaults(kvz_kvzip_opts *o)
{
    memset(o, 0, sizeof *o);
    o->chunk = 2000, o->prev_tokens = 8, o->prefill_chunk = 2048, o->kv_dtype = KVZ_DTYPE_BF16;
    o->window = 8, o->kernel = 7, o->pool = KVZ_POOL_AVG;
}

int kvz_kvzip_policy_needs_scores(kvz_policy p)
{
    return p == KVZ_POLICY_KVZIP_PAIR || p == KVZ_POLICY_KVZIP_PAIR_UNIFORM;
}

int kvz_kvzip_policy_uses_window(kvz_policy p)
{
    return p == KVZ_POLICY_FASTKV || p == KVZ_POLICY_SNAPKV || p == KVZ_POLICY_PYRAMIDKV ||
           p == KVZ_POLICY_ADAKV;
}

/* The pieces and options as the public plan of the passes (kvz_kvzip_pass). */
static kvz_kvzip_plan plan_of(const kvz_kvzip_pieces *p, const int32_t *ctx, size_t n_c,
                              const kvz_kvzip_opts *o)
{
    return (kvz_kvzip_plan){.struct_size = sizeof(kvz_kvzip_plan),
                            .n_sys = p->n_sys,
                            .n_ctx = n_c,
                            .ctx = ctx,
                            .repeat_first = p->repeat_first,
                            .n_repeat_first = p->n_repeat_first,
                            .repeat_next = p->repeat_next,
                            .n_repeat_next = p->n_repeat_next,
                            .postfix = p->postfix,
                            .n_postfix = p->n_postfix,
                            .chunk = o->chunk,
                            .prev_tokens = o->prev_tokens};
}

kvz_status kvz_kvzip_pass_count(const kvz_kvzip_pieces *p, const int32_t *ctx, size_t n_c,
                                const kvz_kvzip_opts *o, size_t *passes, size_t *max_ids, size_t *tokens)
{
    const kvz_kvzip_plan plan = plan_of(p, ctx, n_c, o);
    kvz_status st = kvz_kvzip_passes(&plan, passes, max_ids);
    *tokens = 0;
    for (size_t t = 0; t < *passes && st == KVZ_OK; t++) {
        kvz_kvzip_pass_info pass = {.struct_size = sizeof pass};
        st = kvz_kvzip_pass(&plan, t, NULL, 0, &pass);
        *tokens += pass.n_ids;
    }
    return st;
}

kvz_status kvz_kvzip_score(kvz_model *m, kvz_cache *c, const kvz_kvzip_pieces *p, const int32_t *ctx,
                           size_t n_c, const kvz_kvzip_opts *o, float *scores)
{
    if (!m || !c || !p || !ctx || !o || !scores)
        return kvz_fail(KVZ_ERR_NULL, "kvz_kvzip_score: NULL argument");
    const kvz_kvzip_plan plan = plan_of(p, ctx, n_c, o);
    size_t n_passes = 0, max_ids = 0;
    kvz_status st = kvz_kvzip_passes(&plan, &n_passes, &max_ids);
    if (st != KVZ_OK)
        return st;
    const size_t L = m->hp.n_layers, H = m->hp.n_head_kv, E = m->hp.n_embd;
    memset(scores, 0, L * H * n_c * sizeof *scores); /* probabilities are >= 0: max-folding starts at 0 */
    int32_t *ids = malloc(max_ids * sizeof *ids);
    float *x = malloc(max_ids * E * sizeof *x);
    int64_t *pos = malloc(max_ids * sizeof *pos);
    if (!ids || !x || !pos)
        st = kvz_fail(KVZ_ERR_NOMEM, "kvz_kvzip_score: no memory for a pass of %zu tokens", max_ids);
    /* room for the longest pass up front: the first pass would otherwise grow (and copy) every segment */
    if (st == KVZ_OK)
        st = kvz_cache_reserve(c, max_ids);
    for (size_t t = 0; t < n_passes && st == KVZ_OK; t++) {
        kvz_kvzip_pass_info pass = {.struct_size = sizeof pass};
        if ((st = kvz_kvzip_check_cache(c, p->n_sys, n_c)) != KVZ_OK ||
            (st = kvz_kvzip_pass(&plan, t, ids, max_ids, &pass)) != KVZ_OK ||
            (st = kvz_model_embed(m, ids, pass.n_ids, x)) != KVZ_OK)
            break;
        for (size_t i = 0; i < pass.n_ids; i++)
            pos[i] = pass.position + (int64_t)i;
        size_t appended = 0;
        for (size_t l = 0; l < L && st == KVZ_OK; l++) {
            kvz_layer_io io = {.n = pass.n_ids,
                               .x = x,
                               .pos = pos,
                               /* KVzip scores the global layers (kvpress's KVzipPress on Gemma 3) */
                               .score = o->passes_only || kvz_hparams_window(&m->hp, l)
                                            ? NULL
                                            : scores + l * H * n_c + (pass.chunk_begin - p->n_sys),
                               .score_head_stride = (ptrdiff_t)n_c,
                               .sink_end = pass.sink_end,
                               .chunk_begin = pass.chunk_begin,
                               .chunk_end = pass.chunk_end};
            st = kvz_model_layer(m, l, (kvz_kv_target){c, NULL}, &io);
            if (st == KVZ_OK)
                appended = l + 1;
        }
        /* drop the pass's own K/V: every layer got n_ids rows, unless a layer failed */
        if (appended == L) {
            const kvz_status tst = kvz_cache_truncate(c, pass.n_ids);
            if (st == KVZ_OK)
                st = tst;
        } else if (st == KVZ_OK) {
            st = kvz_fail(KVZ_ERR_STATE, "kvzip: pass %zu stopped after %zu layers", t, appended);
        }
    }
    free(ids), free(x), free(pos);
    return st;
}

kvz_status kvz_kvzip_build(kvz_model *m, const kvz_kvzip_pieces *p, const int32_t *ctx, size_t n_c,
                           const kvz_kvzip_opts *o, const kvz_policy_args *policy, kvz_cache **out,
                           float **scores_out, kvz_kvzip_report *report)
{
    kvz_kvzip_report rep = {0};
    if (!m || !p || !ctx || !o || !policy || !out)
        return kvz_fail(KVZ_ERR_NULL, "kvz_kvzip_build: NULL argument");
    *out = NULL;
    if (scores_out)
        *scores_out = NULL;
    if (!n_c)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_kvzip_build: empty context");
    const int windowed = kvz_kvzip_policy_uses_window(policy->policy), h2o = policy->policy == KVZ_POLICY_H2O;
    kvz_policy_args pa = *policy;
    /* the observation window is always kept; H2O keeps its top-(B - W) "plus the window" of
       the latest tokens, whose few later queries have had little chance to attend to them */
    if ((windowed || h2o) && pa.recent < o->window)
        pa.recent = o->window;
    const size_t n = p->n_sys + n_c;
    int32_t *all = malloc(n * sizeof *all);
    kvz_cache *c = NULL;
    float *scores = NULL;
    kvz_status st = all ? KVZ_OK : kvz_fail(KVZ_ERR_NOMEM, "kvz_kvzip_build: no memory");
    if (st == KVZ_OK) {
        if (p->n_sys)
            memcpy(all, p->sys, p->n_sys * sizeof *all);
        memcpy(all + p->n_sys, ctx, n_c * sizeof *all);
        st = kvz_model_cache_create(m, o->kv_dtype, &c);
    }
    /* the prefill and the longest pass in one allocation per segment (scoring policies only) */
    if (st == KVZ_OK && kvz_kvzip_policy_needs_scores(policy->policy)) {
        size_t max_ids = 0;
        if ((st = kvz_kvzip_pass_count(p, ctx, n_c, o, &rep.passes, &max_ids, &rep.pass_tokens)) == KVZ_OK)
            st = kvz_cache_reserve(c, n + max_ids);
    }
    double t0 = omp_get_wtime();
    const size_t pchunk = o->prefill_chunk ? o->prefill_chunk : 2048;
    if (st == KVZ_OK && windowed) {
        const size_t cnt = m->hp.n_layers * m->hp.n_head_kv * n_c;
        if (!(scores = malloc(cnt * sizeof *scores)))
            st = kvz_fail(KVZ_ERR_NOMEM, "kvz_kvzip_build: no memory for %zu scores", cnt);
        else
            st = kvz_prefill_window_scores(m, c, all, n, p->n_sys, pchunk, o->window, o->kernel, o->pool,
                                           scores);
    } else if (st == KVZ_OK && h2o) { /* the prefill's attention kernel sums what each row receives */
        const size_t cnt = m->hp.n_layers * m->hp.n_head_kv * n_c;
        if (!(scores = malloc(cnt * sizeof *scores)))
            st = kvz_fail(KVZ_ERR_NOMEM, "kvz_kvzip_build: no memory for %zu scores", cnt);
        else
            st = kvz_prefill_h2o_scores(m, c, all, n, p->n_sys, pchunk, scores);
    } else if (st == KVZ_OK) {
        st = kvz_model_prefill(m, (kvz_kv_target){c, NULL}, all, n, pchunk, NULL);
    }
    double t1 = omp_get_wtime();
    rep.prefill_s = t1 - t0;
    if (st == KVZ_OK && kvz_kvzip_policy_needs_scores(policy->policy)) {
        const size_t cnt = m->hp.n_layers * m->hp.n_head_kv * n_c;
        if (!(scores = malloc(cnt * sizeof *scores)))
            st = kvz_fail(KVZ_ERR_NOMEM, "kvz_kvzip_build: no memory for %zu scores", cnt);
        else
            st = kvz_kvzip_score(m, c, p, ctx, n_c, o, scores);
    }
    double t2 = omp_get_wtime();
    rep.score_s = t2 - t1;
    if (st == KVZ_OK)
        st = kvz_kvzip_compress(c, p->n_sys, n_c, scores, &pa, &rep.n_kept);
    rep.select_s = omp_get_wtime() - t2;
    if (report)
        *report = rep;
    free(all);
    if (st != KVZ_OK) {
        kvz_cache_destroy(c);
        free(scores);
        return st;
    }
    *out = c;
    if (scores_out)
        *scores_out = scores;
    else
        free(scores);
    return KVZ_OK;
}
