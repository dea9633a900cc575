/* KVzip for a host's own model: the reconstruction passes' ids and scoring fields (spec/kvzip.md
 * §1.3), the guard that every pass sees the whole prefilled cache, and the selection and
 * compaction of the context rows. */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

static const char *const plan_type = "kvz_kvzip_plan";
#define PLAN_SIZE_0_1 KVZ_SIZE_0_1(kvz_kvzip_plan, prev_tokens)

/* The caller's plan into *p, checked. */
static kvz_status plan_in(const char *fn, const kvz_kvzip_plan *given, kvz_kvzip_plan *p)
{
    if (!given)
        return kvz_fail(KVZ_ERR_NULL, "%s: plan is NULL", fn);
    kvz_status st = kvz_struct_in(fn, plan_type, given, PLAN_SIZE_0_1, p, sizeof *p);
    if (st != KVZ_OK)
        return st;
    if (!p->ctx || (p->n_repeat_first && !p->repeat_first) || (p->n_repeat_next && !p->repeat_next) ||
        (p->n_postfix && !p->postfix))
        return kvz_fail(KVZ_ERR_NULL, "%s: the context or a prompt piece with a length has no ids", fn);
    if (!p->n_ctx || !p->chunk)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: %zu context tokens in chunks of %zu (both must be > 0)", fn,
                        p->n_ctx, p->chunk);
    /* the longest pass must be countable, and its positions must fit */
    const size_t pieces = p->n_repeat_first > p->n_repeat_next ? p->n_repeat_first : p->n_repeat_next;
    size_t sum = 0;
    if (__builtin_add_overflow(pieces, p->n_postfix, &sum) || __builtin_add_overflow(sum, p->chunk, &sum) ||
        __builtin_add_overflow(sum, p->prev_tokens < p->chunk ? p->prev_tokens : p->chunk, &sum) ||
        __builtin_add_overflow(sum, p->n_sys, &sum) || __builtin_add_overflow(sum, p->n_ctx, &sum) ||
        sum > (size_t)INT64_MAX / 2)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: the pieces' lengths overflow", fn);
    return KVZ_OK;
}

static size_t n_passes_of(const kvz_kvzip_plan *p) { return (p->n_ctx - 1) / p->chunk + 1; }

/* Context tokens of chunk t (the last one may be shorter). */
static size_t chunk_len(const kvz_kvzip_plan *p, size_t t)
{
    const size_t left = p->n_ctx - t * p->chunk;
    return left < p->chunk ? left : p->chunk;
}

/* Ids of the previous chunk quoted by pass t. */
static size_t quoted(const kvz_kvzip_plan *p, size_t t)
{
    return t ? (p->prev_tokens < p->chunk ? p->prev_tokens : p->chunk) : 0;
}

static size_t pass_len(const kvz_kvzip_plan *p, size_t t)
{
    return (t ? p->n_repeat_next : p->n_repeat_first) + quoted(p, t) + p->n_postfix + chunk_len(p, t);
}

kvz_status kvz_kvzip_passes(const kvz_kvzip_plan *plan, size_t *n_passes, size_t *max_ids)
{
    static const char fn[] = "kvz_kvzip_passes";
    kvz_kvzip_plan p;
    kvz_status st = plan_in(fn, plan, &p);
    if (st != KVZ_OK)
        return st;
    if (!n_passes)
        return kvz_fail(KVZ_ERR_NULL, "%s: n_passes is NULL", fn);
    size_t m = 0;
    for (size_t t = 0; t < n_passes_of(&p) && max_ids; t++)
        m = pass_len(&p, t) > m ? pass_len(&p, t) : m;
    *n_passes = n_passes_of(&p);
    if (max_ids)
        *max_ids = m;
    return KVZ_OK;
}

kvz_status kvz_kvzip_pass(const kvz_kvzip_plan *plan, size_t t, int32_t *ids, size_t ids_cap,
                          kvz_kvzip_pass_info *pass)
{
    static const char fn[] = "kvz_kvzip_pass";
    kvz_kvzip_plan p;
    kvz_status st = plan_in(fn, plan, &p);
    if (st != KVZ_OK)
        return st;
    if (!pass)
        return kvz_fail(KVZ_ERR_NULL, "%s: pass is NULL", fn);
    if ((st = kvz_struct_out_check(fn, "kvz_kvzip_pass_info", pass,
                                   KVZ_SIZE_0_1(kvz_kvzip_pass_info, chunk_end))) != KVZ_OK)
        return st;
    if (t >= n_passes_of(&p))
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "%s: pass %zu of a %zu-token context in chunks of %zu (%zu passes)", fn, t, p.n_ctx,
                        p.chunk, n_passes_of(&p));
    const size_t b = t * p.chunk, m_t = chunk_len(&p, t), prev = quoted(&p, t), total = pass_len(&p, t);
    kvz_kvzip_pass_info out = {.struct_size = sizeof out,
                               .n_ids = total,
                               .position = (int64_t)(p.n_sys + p.n_ctx),
                               .sink_end = p.n_sys,
                               .chunk_begin = p.n_sys + b,
                               .chunk_end = p.n_sys + b + m_t};
    kvz_struct_out(pass, &out, sizeof out);
    if (!ids)
        return KVZ_OK;
    if (ids_cap < total)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: pass %zu has %zu ids, room for %zu", fn, t, total, ids_cap);
    const int32_t *prompt = t ? p.repeat_next : p.repeat_first;
    const size_t n_prompt = t ? p.n_repeat_next : p.n_repeat_first;
    size_t k = 0;
    if (n_prompt)
        memcpy(ids + k, prompt, n_prompt * sizeof *ids), k += n_prompt;
    if (prev) /* chunk_{t-1}[-prev:] */
        memcpy(ids + k, p.ctx + b - prev, prev * sizeof *ids), k += prev;
    if (p.n_postfix)
        memcpy(ids + k, p.postfix, p.n_postfix * sizeof *ids), k += p.n_postfix;
    memcpy(ids + k, p.ctx + b, m_t * sizeof *ids);
    return KVZ_OK;
}

kvz_status kvz_kvzip_check_cache(const kvz_cache *cache, size_t n_sys, size_t n_ctx)
{
    static const char fn[] = "kvz_kvzip_check_cache";
    size_t L = 0, H = 0, rows;
    kvz_status st =
        cache ? kvz_cache_shape(cache, &L, &H, NULL, NULL) : kvz_fail(KVZ_ERR_NULL, "%s: cache is NULL", fn);
    if (st == KVZ_OK && __builtin_add_overflow(n_sys, n_ctx, &rows))
        st = kvz_fail(KVZ_ERR_STATE, "%s: %zu + %zu rows overflow", fn, n_sys, n_ctx);
    for (size_t l = 0; l < L && st == KVZ_OK; l++) {
        int64_t next = 0;
        size_t window = 0;
        if ((st = kvz_cache_next_position(cache, l, &next)) != KVZ_OK ||
            (st = kvz_cache_layer_window(cache, l, &window)) != KVZ_OK)
            break;
        for (size_t h = 0; h < H && st == KVZ_OK; h++) {
            size_t len;
            if ((st = kvz_cache_length(cache, l, h, &len)) != KVZ_OK)
                break;
            if ((len != rows && !window) || next != (int64_t)rows)
                st = kvz_fail(
                    KVZ_ERR_STATE,
                    "%s: a KVzip pass must see the full prefilled cache of %zu rows, but layer %zu head "
                    "%zu holds %zu (next position %lld)",
                    fn, rows, l, h, len, (long long)next);
        }
    }
    return st;
}

kvz_status kvz_kvzip_compress(kvz_cache *cache, size_t n_sys, size_t n_ctx, const float *scores,
                              const kvz_policy_args *policy, size_t *n_kept)
{
    static const char fn[] = "kvz_kvzip_compress";
    if (!cache || !policy)
        return kvz_fail(KVZ_ERR_NULL, "%s: cache and policy must not be NULL", fn);
    kvz_policy_args pa;
    size_t L = 0, H = 0, rows;
    kvz_status st =
        kvz_struct_in(fn, "kvz_policy_args", policy, KVZ_SIZE_0_1(kvz_policy_args, seed), &pa, sizeof pa);
    if (st == KVZ_OK)
        st = kvz_cache_shape(cache, &L, &H, NULL, NULL);
    if (st == KVZ_OK && __builtin_add_overflow(n_sys, n_ctx, &rows))
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "%s: %zu + %zu rows overflow", fn, n_sys, n_ctx);
    if (st != KVZ_OK)
        return st;
    /* the policy sees the global layers only: a sliding-window layer keeps its window */
    uint8_t *global = calloc(L ? L : 1, 1);
    size_t n_global = 0;
    for (size_t l = 0; global && l < L && st == KVZ_OK; l++) {
        size_t window;
        st = kvz_cache_layer_window(cache, l, &window);
        global[l] = window == 0, n_global += window == 0;
    }
    const float **row_scores = calloc(n_global * H + 1, sizeof *row_scores);
    uint8_t **keep = calloc(L * H + 1, sizeof *keep), **ctx_keep = calloc(n_global * H + 1, sizeof *ctx_keep);
    float *head_scores = NULL;
    if (!global || !row_scores || !keep || !ctx_keep)
        st = kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", fn);
    if (st == KVZ_OK && pa.head_scores && n_global < L) { /* the global layers' head scores, in order */
        if (!(head_scores = malloc(n_global * H * sizeof *head_scores)))
            st = kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", fn);
        for (size_t l = 0, g = 0; st == KVZ_OK && l < L; l++)
            if (global[l])
                memcpy(head_scores + g++ * H, pa.head_scores + l * H, H * sizeof *head_scores);
        pa.head_scores = head_scores;
    }
    for (size_t r = 0, g = 0; r < L * H && st == KVZ_OK; r++) {
        if (!global[r / H])
            continue; /* a NULL mask: the cache leaves the layer as it is */
        size_t len = 0;
        if ((st = kvz_cache_length(cache, r / H, r % H, &len)) != KVZ_OK)
            break;
        if (len < rows) {
            st = kvz_fail(KVZ_ERR_STATE, "%s: layer %zu head %zu holds %zu rows, fewer than %zu + %zu", fn,
                          r / H, r % H, len, n_sys, n_ctx);
            break;
        }
        if (!(keep[r] = malloc(len ? len : 1))) {
            st = kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", fn);
            break;
        }
        memset(keep[r], 1, len); /* the system prompt and later rows stay */
        ctx_keep[g] = keep[r] + n_sys;
        row_scores[g++] = scores ? scores + r * n_ctx : NULL;
    }
    if (st == KVZ_OK) {
        pa.n_layers = n_global, pa.n_kv_heads = H, pa.n_tokens = n_ctx;
        pa.scores = scores ? row_scores : NULL;
        st = kvz_policy_select(&pa, ctx_keep, n_kept);
    }
    if (st == KVZ_OK)
        st = kvz_cache_compact(cache, (const uint8_t *const *)keep);
    for (size_t r = 0; keep && r < L * H; r++)
        free(keep[r]);
    free(global), free(row_scores), free(keep), free(ctx_keep), free(head_scores);
    return st;
}
