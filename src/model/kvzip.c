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
    return p == KVZ_POLICY_FASTKV || p == KVZ_POLICY_SNAPKV || p == KVZ_POLICY_PYRAMIDKV || p == KVZ_POLICY_ADAKV;
}

static size_t n_chunks(size_t n_c, size_t m) { return (n_c + m - 1) / m; }

/* Context tokens of chunk t (the last one may be shorter). */
static size_t chunk_len(size_t n_c, size_t m, size_t t) { return n_c - t * m < m ? n_c - t * m : m; }

/* Tokens of the previous chunk quoted in pass t's prompt. */
static size_t quoted(const kvz_kvzip_opts *o, size_t t)
{
    return t ? (o->prev_tokens < o->chunk ? o->prev_tokens : o->chunk) : 0;
}

/* Length of pass t: prompt + quoted tokens + opener + chunk. */
static size_t pass_len(const kvz_kvzip_pieces *p, size_t n_c, const kvz_kvzip_opts *o, size_t t)
{
    return (t ? p->n_repeat_next : p->n_repeat_first) + quoted(o, t) + p->n_postfix + chunk_len(n_c, o->chunk, t);
}

/* The longest pass: the room the cache needs beyond the prefill, since each pass drops its own K/V. */
static size_t longest_pass(const kvz_kvzip_pieces *p, size_t n_c, const kvz_kvzip_opts *o)
{
    size_t m = 0;
    for (size_t t = 0; t < n_chunks(n_c, o->chunk); t++)
        m = pass_len(p, n_c, o, t) > m ? pass_len(p, n_c, o, t) : m;
    return m;
}

kvz_status kvz_kvzip_pass_ids(const kvz_kvzip_pieces *p, const int32_t *ctx, size_t n_c, const kvz_kvzip_opts *o,
                              size_t t, int32_t **ids, size_t *n)
{
    if (!p || !ctx || !o || !ids || !n)
        return kvz_fail(KVZ_ERR_NULL, "kvz_kvzip_pass_ids: NULL argument");
    if (!o->chunk || t >= n_chunks(n_c, o->chunk))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_kvzip_pass_ids: pass %zu of a %zu-token context in chunks of %zu",
                        t, n_c, o->chunk);
    const size_t b = t * o->chunk, m_t = chunk_len(n_c, o->chunk, t), prev = quoted(o, t);
    const int32_t *prompt = t ? p->repeat_next : p->repeat_first;
    const size_t n_prompt = t ? p->n_repeat_next : p->n_repeat_first;
    const size_t total = pass_len(p, n_c, o, t);
    int32_t *v = malloc(total * sizeof *v);
    if (!v)
        return kvz_fail(KVZ_ERR_NOMEM, "kvz_kvzip_pass_ids: no memory");
    size_t k = 0;
    if (n_prompt)
        memcpy(v + k, prompt, n_prompt * sizeof *v), k += n_prompt;
    if (prev) /* chunk_{t-1}[-prev:] */
        memcpy(v + k, ctx + b - prev, prev * sizeof *v), k += prev;
    if (p->n_postfix)
        memcpy(v + k, p->postfix, p->n_postfix * sizeof *v), k += p->n_postfix;
    memcpy(v + k, ctx + b, m_t * sizeof *v);
    *ids = v, *n = total;
    return KVZ_OK;
}

/* The guard of kvpress #147: the scoring passes must see the whole prefilled cache (a
 * sliding-window layer the window's part of it, which its next position vouches for). */
static kvz_status check_full(const kvz_model *m, const kvz_cache *c, size_t rows)
{
    for (size_t l = 0; l < m->hp.n_layers; l++) {
        int64_t next;
        kvz_status st = kvz_cache_next_position(c, l, &next);
        if (st != KVZ_OK)
            return st;
        const int windowed = kvz_hparams_window(&m->hp, l) != 0;
        for (size_t h = 0; h < m->hp.n_head_kv; h++) {
            size_t len;
            if ((st = kvz_cache_length(c, l, h, &len)) != KVZ_OK)
                return st;
            if ((len != rows && !windowed) || next != (int64_t)rows)
                return kvz_fail(KVZ_ERR_STATE,
                                "kvzip: scoring must see the full prefilled cache of %zu rows, but layer %zu head %zu "
                                "holds %zu (next position %lld)",
                                rows, l, h, len, (long long)next);
        }
    }
    return KVZ_OK;
}

kvz_status kvz_kvzip_score(kvz_model *m, kvz_cache *c, const kvz_kvzip_pieces *p, const int32_t *ctx, size_t n_c,
                           const kvz_kvzip_opts *o, float *scores)
{
    if (!m || !c || !p || !ctx || !o || !scores)
        return kvz_fail(KVZ_ERR_NULL, "kvz_kvzip_score: NULL argument");
    if (!n_c || !o->chunk)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_kvzip_score: %zu context tokens, chunk %zu", n_c, o->chunk);
    const size_t L = m->hp.n_layers, H = m->hp.n_head_kv, E = m->hp.n_embd, rows = p->n_sys + n_c;
    memset(scores, 0, L * H * n_c * sizeof *scores); /* probabilities are >= 0: max-folding starts at 0 */
    /* room for the longest pass up front: the first pass would otherwise grow (and copy) every segment */
    kvz_status st = kvz_cache_reserve(c, longest_pass(p, n_c, o));
    for (size_t t = 0; t < n_chunks(n_c, o->chunk) && st == KVZ_OK; t++) {
        if ((st = check_full(m, c, rows)) != KVZ_OK)
            return st;
        int32_t *ids = NULL;
        size_t n_in = 0;
        if ((st = kvz_kvzip_pass_ids(p, ctx, n_c, o, t, &ids, &n_in)) != KVZ_OK)
            return st;
        float *x = malloc(n_in * E * sizeof *x);
        int64_t *pos = malloc(n_in * sizeof *pos);
        if (!x || !pos)
            st = kvz_fail(KVZ_ERR_NOMEM, "kvz_kvzip_score: no memory for a pass of %zu tokens", n_in);
        if (st == KVZ_OK)
            st = kvz_model_embed(m, ids, n_in, x);
        /* every pass starts at the same position n_sys + n_c: the cache is unchanged between passes */
        for (size_t i = 0; i < n_in && st == KVZ_OK; i++)
            pos[i] = (int64_t)(rows + i);
        const size_t b = t * o->chunk, m_t = chunk_len(n_c, o->chunk, t);
        size_t appended = 0;
        for (size_t l = 0; l < L && st == KVZ_OK; l++) {
            kvz_layer_io io = {.n = n_in,
                               .x = x,
                               .pos = pos,
                               /* KVzip scores the global layers (kvpress's KVzipPress on Gemma 3) */
                               .score = o->passes_only || kvz_hparams_window(&m->hp, l) ? NULL
                                                                                        : scores + l * H * n_c + b,
                               .score_head_stride = (ptrdiff_t)n_c,
                               .sink_end = p->n_sys,
                               .chunk_begin = p->n_sys + b,
                               .chunk_end = p->n_sys + b + m_t};
            st = kvz_model_layer(m, l, (kvz_kv_target){c, NULL}, &io);
            if (st == KVZ_OK)
                appended = l + 1;
        }
        /* drop the pass's own K/V: every layer got n_in rows, unless a layer failed */
        if (appended == L) {
            const kvz_status tst = kvz_cache_truncate(c, n_in);
            if (st == KVZ_OK)
                st = tst;
        } else if (st == KVZ_OK) {
            st = kvz_fail(KVZ_ERR_STATE, "kvzip: pass %zu stopped after %zu layers", t, appended);
        }
        free(ids), free(x), free(pos);
    }
    return st;
}

void kvz_kvzip_head_scores(const float *scores, size_t n_rows, size_t n_c, float *out)
{
    for (size_t r = 0; r < n_rows; r++) {
        float mx = 0;
        for (size_t j = 0; j < n_c; j++)
            mx = scores[r * n_c + j] > mx ? scores[r * n_c + j] : mx;
        out[r] = mx;
    }
}

kvz_status kvz_kvzip_compact(const kvz_model *m, kvz_cache *c, size_t n_sys, size_t n_c, const float *scores,
                             const kvz_policy_args *policy, size_t *n_kept)
{
    if (!m || !c || !policy)
        return kvz_fail(KVZ_ERR_NULL, "kvz_kvzip_compact: NULL argument");
    const size_t L = m->hp.n_layers, H = m->hp.n_head_kv;
    kvz_status st = KVZ_OK;
    /* the policy sees the global layers only: a sliding-window layer keeps its window */
    const size_t n_global = kvz_hparams_global_layers(&m->hp);
    kvz_policy_args pa = *policy;
    pa.n_layers = n_global, pa.n_kv_heads = H, pa.n_tokens = n_c;
    const float **rows = calloc(n_global * H + 1, sizeof *rows);
    uint8_t **keep = calloc(L * H, sizeof *keep);
    uint8_t **ctx_keep = calloc(n_global * H + 1, sizeof *ctx_keep);
    float *head_scores = NULL;
    if (!rows || !keep || !ctx_keep)
        st = kvz_fail(KVZ_ERR_NOMEM, "kvz_kvzip_compact: no memory");
    if (st == KVZ_OK && policy->head_scores && n_global < L) { /* the global layers' head scores, in order */
        if (!(head_scores = malloc(n_global * H * sizeof *head_scores)))
            st = kvz_fail(KVZ_ERR_NOMEM, "kvz_kvzip_compact: no memory");
        for (size_t l = 0, g = 0; st == KVZ_OK && l < L; l++)
            if (kvz_hparams_window(&m->hp, l) == 0)
                memcpy(head_scores + g++ * H, policy->head_scores + l * H, H * sizeof *head_scores);
        pa.head_scores = head_scores;
    }
    for (size_t r = 0, g = 0; r < L * H && st == KVZ_OK; r++) {
        if (kvz_hparams_window(&m->hp, r / H))
            continue;
        size_t seg_len = 0;
        kvz_cache_length(c, r / H, r % H, &seg_len);
        if (seg_len < n_sys + n_c) {
            st = kvz_fail(KVZ_ERR_STATE, "kvz_kvzip_compact: layer %zu head %zu holds %zu rows, fewer than %zu + %zu",
                          r / H, r % H, seg_len, n_sys, n_c);
            break;
        }
        if (!(keep[r] = malloc(seg_len ? seg_len : 1))) {
            st = kvz_fail(KVZ_ERR_NOMEM, "kvz_kvzip_compact: no memory");
            break;
        }
        memset(keep[r], 1, seg_len); /* system prompt and later rows stay */
        ctx_keep[g] = keep[r] + n_sys;
        rows[g++] = scores ? scores + r * n_c : NULL;
    }
    if (st == KVZ_OK) {
        pa.scores = scores ? rows : NULL;
        st = kvz_policy_select(&pa, ctx_keep, n_kept);
    }
    if (st == KVZ_OK) /* a windowed layer's mask is NULL: the cache leaves it as it is */
        st = kvz_cache_compact(c, (const uint8_t *const *)keep);
    for (size_t r = 0; keep && r < L * H; r++)
        free(keep[r]);
    free(rows), free(keep), free(ctx_keep), free(head_scores);
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
    if (st == KVZ_OK && kvz_kvzip_policy_needs_scores(policy->policy) && o->chunk)
        st = kvz_cache_reserve(c, n + longest_pass(p, n_c, o));
    double t0 = omp_get_wtime();
    const size_t pchunk = o->prefill_chunk ? o->prefill_chunk : 2048;
    if (st == KVZ_OK && windowed) {
        const size_t cnt = m->hp.n_layers * m->hp.n_head_kv * n_c;
        if (!(scores = malloc(cnt * sizeof *scores)))
            st = kvz_fail(KVZ_ERR_NOMEM, "kvz_kvzip_build: no memory for %zu scores", cnt);
        else
            st = kvz_prefill_window_scores(m, c, all, n, p->n_sys, pchunk, o->window, o->kernel, o->pool, scores);
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
        rep.passes = n_chunks(n_c, o->chunk);
        for (size_t t = 0; t < rep.passes; t++)
            rep.pass_tokens += pass_len(p, n_c, o, t);
    }
    double t2 = omp_get_wtime();
    rep.score_s = t2 - t1;
    if (st == KVZ_OK)
        st = kvz_kvzip_compact(m, c, p->n_sys, n_c, scores, &pa, &rep.n_kept);
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
