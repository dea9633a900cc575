/* FastKV prefill (spec/fastkv.md §2): layer-major over the prompt, each layer's cache cut to
 * the per-KV-head top of its window score right after the layer ran, and token-selective
 * propagation of T hidden states past the TSP layer. */
#include "model/fastkv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "model/window_scores.h"

void kvz_fastkv_defaults(kvz_fastkv_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->tsp = 1;
    o->tsp_layer = KVZ_FASTKV_TSP_MIDDLE;
    o->tsp_len = 2048;
    o->tsp_rate = 0.2;
    o->budget = 512;
    o->retain_rate = 0.1;
    o->window = 8;
    o->kernel = 7;
    o->pool = KVZ_POOL_AVG;
}

void kvz_fastkv_defaults_rate(kvz_fastkv_opts *o)
{
    if (!o)
        return;
    kvz_fastkv_defaults(o);
    o->tsp_len = 0;
    o->budget = 0;
    o->pool = KVZ_POOL_MAX;
}

/* Python's int(n * rate) for rate > 0: the product rounded to double, then truncated. Unlike
 * kvz_count_of it does not clamp at n, so a rate above 1 reports the budget the reference
 * computes (which then means "no compression"). */
static size_t floor_mul(size_t n, double rate)
{
    const double p = (double)n * rate;
    return p >= 0x1p63 ? (size_t)INT64_MAX : (size_t)p;
}

static int rate_ok(double r) { return isfinite(r) && r > 0 && r <= 1; }

/* The TSP layer "in the middle": n_layers / 2 - 1, or on a model with sliding-window layers the
 * global layer nearest to it (the earlier of two as near), since a windowed layer's scores
 * see only its window. A model of local layers only has none: L, which check_opts refuses. */
static size_t middle_global_layer(const kvz_hparams *hp)
{
    const size_t L = hp->n_layers, mid = L >= 2 ? L / 2 - 1 : 0;
    for (size_t dist = 0; dist < L; dist++) {
        if (dist <= mid && !kvz_hparams_window(hp, mid - dist))
            return mid - dist;
        if (mid + dist < L && !kvz_hparams_window(hp, mid + dist))
            return mid + dist;
    }
    return L;
}

static kvz_status check_opts(const kvz_model *m, const kvz_fastkv_opts *o, size_t *t)
{
    static const char fn[] = "kvz_fastkv_prefill";
    const size_t L = m->hp.n_layers;
    if (!o->window)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: window must be at least 1", fn);
    if (!o->kernel || o->kernel % 2 == 0)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: pooling kernel %zu must be odd", fn, o->kernel);
    if (o->pool != KVZ_POOL_AVG && o->pool != KVZ_POOL_MAX)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: unknown pooling %d", fn, (int)o->pool);
    if (o->budget && o->budget <= o->window)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: budget %zu must exceed the window %zu (it includes it)", fn,
                        o->budget, o->window);
    if (!o->budget && !rate_ok(o->retain_rate))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: budget 0 needs a retain_rate in (0, 1], not %g", fn,
                        o->retain_rate);
    *t = 0;
    if (!o->tsp)
        return KVZ_OK;
    *t = o->tsp_layer == KVZ_FASTKV_TSP_MIDDLE ? middle_global_layer(&m->hp) : o->tsp_layer;
    if (*t >= L)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: TSP layer %zu of a %zu-layer model", fn, *t, L);
    if (kvz_hparams_window(&m->hp, *t))
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "%s: TSP layer %zu attends through a sliding window of %zu: its scores cannot "
                        "select among the tokens before it (choose a global layer)",
                        fn, *t, kvz_hparams_window(&m->hp, *t));
    if (o->tsp_len && o->tsp_len <= o->window)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: tsp_len %zu must exceed the window %zu (it includes it)", fn,
                        o->tsp_len, o->window);
    if (!o->tsp_len && !rate_ok(o->tsp_rate))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: tsp_len 0 needs a tsp_rate in (0, 1], not %g", fn,
                        o->tsp_rate);
    /* the reference's proportional mode derives the deeper layers' rate from tsp_rate; with
       an absolute T there is no such rate, so the mix is refused rather than invented */
    if (!o->budget && o->tsp_len)
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "%s: proportional budget (budget 0) needs proportional TSP (tsp_len 0, tsp_rate)", fn);
    return KVZ_OK;
}

static kvz_status check_cache(const kvz_model *m, const kvz_cache *c)
{
    static const char fn[] = "kvz_fastkv_prefill";
    const kvz_hparams *hp = &m->hp;
    size_t L = 0, H = 0, d = 0;
    kvz_status st = kvz_cache_shape(c, &L, &H, &d, NULL);
    if (st != KVZ_OK)
        return st;
    if (L != hp->n_layers || H != hp->n_head_kv || d != hp->head_dim)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: cache of %zu layers x %zu heads x %zu, model %zu x %zu x %zu",
                        fn, L, H, d, hp->n_layers, hp->n_head_kv, hp->head_dim);
    /* (a cache that queries read refuses the first append: kvz_cache_append says so) */
    for (size_t l = 0; l < hp->n_layers; l++) {
        int64_t next = 0;
        if ((st = kvz_cache_next_position(c, l, &next)) != KVZ_OK)
            return st;
        if (next != 0)
            return kvz_fail(KVZ_ERR_STATE, "%s: the cache is not empty (layer %zu holds %lld positions)", fn, l,
                            (long long)next);
    }
    return KVZ_OK;
}

typedef struct work {
    float *x, *qt, *sc;
    int64_t *pos;
    uint32_t *idx;
} work;

static void work_free(work *w) { free(w->x), free(w->qt), free(w->sc), free(w->pos), free(w->idx); }

static kvz_status work_alloc(const kvz_hparams *hp, size_t n, size_t W, work *w)
{
    memset(w, 0, sizeof *w);
    const size_t E = hp->n_embd, Hkv = hp->n_head_kv, QD = hp->n_head * hp->head_dim;
    size_t xb, sb;
    if (!kvz_mul_ok(n, E * sizeof(float), &xb) || !kvz_mul_ok(n, Hkv * sizeof(float), &sb) || n > UINT32_MAX)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_fastkv_prefill: %zu tokens is too many", n);
    w->x = malloc(xb), w->qt = malloc(W * QD * sizeof(float)), w->sc = malloc(sb);
    w->pos = malloc(n * sizeof(int64_t)), w->idx = malloc(n * sizeof(uint32_t));
    if (!w->x || !w->qt || !w->sc || !w->pos || !w->idx) {
        work_free(w);
        return kvz_fail(KVZ_ERR_NOMEM, "kvz_fastkv_prefill: no memory for %zu tokens", n);
    }
    return KVZ_OK;
}

/* TSP (§2.4): the tokens kvz_fastkv_propagate names, their hidden states and positions gathered to
 * the front. */
static kvz_status propagate(const kvz_model *m, size_t n, size_t T, size_t W, work *w)
{
    const size_t E = m->hp.n_embd;
    const kvz_status st = kvz_fastkv_propagate(w->sc, m->hp.n_head_kv, (ptrdiff_t)n, n, W, T, w->idx);
    if (st != KVZ_OK)
        return st;
    /* idx is ascending and idx[i] >= i, so the gather can run in place from the front */
    for (size_t i = 0; i < T; i++)
        if (w->idx[i] != i) {
            memcpy(w->x + i * E, w->x + (size_t)w->idx[i] * E, E * sizeof(float));
            w->pos[i] = w->pos[w->idx[i]];
        }
    return KVZ_OK;
}

kvz_status kvz_fastkv_prefill(kvz_model *m, kvz_cache *cache, const int32_t *ids, size_t n,
                              const kvz_fastkv_opts *o, float *logits, kvz_fastkv_stats *stats)
{
    static const char fn[] = "kvz_fastkv_prefill";
    if (!m || !cache || !ids || !o)
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    if (!n)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: no tokens", fn);
    size_t t = 0;
    kvz_status st = check_opts(m, o, &t);
    if (st == KVZ_OK)
        st = check_cache(m, cache);
    if (st != KVZ_OK)
        return st;
    const kvz_hparams *hp = &m->hp;
    const size_t L = hp->n_layers, E = hp->n_embd, W = o->window;
    work w;
    if ((st = work_alloc(hp, n, W, &w)) != KVZ_OK)
        return st;
    if (stats)
        stats->tsp_count = 0, stats->tsp_layer = t;
    if ((st = kvz_model_embed(m, ids, n, w.x)) != KVZ_OK) {
        work_free(&w);
        return st;
    }
    for (size_t i = 0; i < n; i++)
        w.pos[i] = (int64_t)i;
    const kvz_kv_target kv = {cache, NULL};
    size_t cur = n; /* tokens in flight */
    for (size_t l = 0; l < L && st == KVZ_OK; l++) {
        /* the layer attends over all of its own tokens before anything is evicted (§2.1) */
        kvz_layer_io io = {.n = cur,
                           .x = w.x,
                           .pos = w.pos,
                           .explicit_pos = 1,
                           .chunk = o->chunk,
                           .q_tail = w.qt,
                           .q_tail_rows = W};
        if ((st = kvz_model_layer(m, l, kv, &io)) != KVZ_OK)
            break;
        size_t B = o->budget;
        if (!B) /* §2.7: recomputed from the layer's own length; deeper layers use retain / tsp */
            B = floor_mul(cur, o->tsp && l > t ? o->retain_rate / o->tsp_rate : o->retain_rate);
        /* §2.5: no compression (and so no TSP) when n < B; §9.2 item 3: nor when B - W <= 0; a
           sliding-window layer keeps its window (its tokens see no further), as with KVzip */
        const int compress = B > W && cur >= B && !kvz_hparams_window(hp, l);
        size_t T = 0;
        if (o->tsp && l == t)
            T = o->tsp_len ? o->tsp_len : floor_mul(cur, o->tsp_rate);
        const int tsp_here = compress && o->tsp && l == t && cur > T && T > W;
        if (compress && (B < cur || tsp_here)) { /* B == n_l without TSP keeps all: nothing to score */
            if ((st = kvz_layer_window_scores(m, cache, l, cur, w.qt, o->window, o->kernel, o->pool, w.sc)) !=
                KVZ_OK)
                break;
            if (B < cur && (st = kvz_fastkv_compress_layer(cache, l, w.sc, (ptrdiff_t)cur, B, W)) != KVZ_OK)
                break;
            if (tsp_here && (st = propagate(m, cur, T, W, &w)) != KVZ_OK)
                break;
        }
        if (stats) {
            if (stats->tokens)
                stats->tokens[l] = cur;
            if (stats->budget)
                stats->budget[l] = B;
            if (stats->kept) {
                stats->kept[l] = compress ? B : cur;
                if (kvz_hparams_window(hp, l)) /* what its window left */
                    st = kvz_cache_length(cache, l, 0, &stats->kept[l]);
            }
        }
        if (tsp_here) {
            cur = T;
            if (stats) {
                stats->tsp_count = T;
                if (stats->tsp_positions)
                    memcpy(stats->tsp_positions, w.pos, T * sizeof(int64_t));
            }
        }
    }
    /* the last prompt token is always in flight: it is the end of the window */
    if (st == KVZ_OK && logits)
        st = kvz_model_logits(m, w.x + (cur - 1) * E, 1, logits);
    work_free(&w);
    return st;
}
