/* The decoder's forward pass (Llama family, Gemma 3), one layer at a time, as a host of the cache
 * API: project, rotate, append K/V to the cache (or a query's tail), attend through the library, FFN. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/pool.h"
#include "model/model.h"

typedef struct rms_job {
    const float *x, *w;
    size_t E;
    float eps;
    float *y;
} rms_job;

static void rms_rows(void *ctx, size_t lo, size_t hi)
{
    const rms_job *j = ctx;
    const size_t E = j->E;
    for (size_t i = lo; i < hi; i++) {
        double ss = 0;
        for (size_t c = 0; c < E; c++)
            ss += (double)j->x[i * E + c] * j->x[i * E + c];
        const float r = (float)(1.0 / sqrt(ss / (double)E + j->eps));
        for (size_t c = 0; c < E; c++)
            j->y[i * E + c] = j->x[i * E + c] * r * j->w[c];
    }
}

static void rmsnorm(const float *x, size_t n, size_t E, const float *w, float eps, float *y)
{
    rms_job j = {x, w, E, eps, y};
    kvz_parallel_for(n, 4, rms_rows, &j);
}

typedef struct rope_job {
    const int64_t *pos;
    const double *freq;
    size_t half;
    float *cs, *sn;
} rope_job;

static void rope_table_rows(void *ctx, size_t lo, size_t hi)
{
    const rope_job *j = ctx;
    for (size_t t = lo; t < hi; t++)
        for (size_t i = 0; i < j->half; i++) {
            const double theta = (double)j->pos[t] * j->freq[i];
            j->cs[t * j->half + i] = (float)cos(theta);
            j->sn[t * j->half + i] = (float)sin(theta);
        }
}

/* cos/sin of every (token, pair): theta = pos / linear_factor * base^(-2i/rope_dim) / factor_i,
 * evaluated in double so long positions keep their precision. */
static void rope_tables(const kvz_model *m, double base, const int64_t *pos, size_t n, float *cs, float *sn)
{
    const size_t half = m->hp.rope_dim / 2;
    double freq[KVZ_KMAX_HEAD_DIM / 2]; /* per pair, once per call: theta = position * freq */
    for (size_t i = 0; i < half; i++) {
        freq[i] = pow(base, -2.0 * (double)i / (double)m->hp.rope_dim) / m->hp.rope_linear_factor;
        if (m->rope_freq_factors)
            freq[i] /= m->rope_freq_factors[i];
    }
    rope_job j = {pos, freq, half, cs, sn};
    kvz_parallel_for(n, 8, rope_table_rows, &j);
}

typedef struct rotate_job {
    size_t half, heads, d;
    int neox;
    const float *cs, *sn;
    float *x;
} rotate_job;

static void rope_heads(void *ctx, size_t lo, size_t hi)
{
    const rotate_job *j = ctx;
    for (size_t th = lo; th < hi; th++) {
        const size_t t = th / j->heads;
        float *r = j->x + th * j->d;
        const float *c = j->cs + t * j->half, *s = j->sn + t * j->half;
        for (size_t i = 0; i < j->half; i++) {
            const size_t a = j->neox ? i : 2 * i, b = j->neox ? i + j->half : 2 * i + 1;
            const float x0 = r[a], x1 = r[b];
            r[a] = x0 * c[i] - x1 * s[i];
            r[b] = x0 * s[i] + x1 * c[i];
        }
    }
}

/* Rotates heads of head_dim elements: n tokens of `heads` heads, rows contiguous. */
static void rope_apply(const kvz_model *m, float *x, size_t n, size_t heads, const float *cs, const float *sn)
{
    rotate_job j = {m->hp.rope_dim / 2, heads, m->hp.head_dim, m->hp.rope_mode == KVZ_ROPE_NEOX, cs, sn, x};
    kvz_parallel_for(n * heads, 32, rope_heads, &j);
}

typedef struct add_job {
    float *x;
    const float *y;
} add_job;

static void add_range(void *ctx, size_t lo, size_t hi)
{
    const add_job *j = ctx;
    for (size_t i = lo; i < hi; i++)
        j->x[i] += j->y[i];
}

static void add_into(float *x, const float *y, size_t n)
{
    add_job j = {x, y};
    kvz_parallel_for(n, 32768, add_range, &j);
}

int64_t kvz_kv_next_position(kvz_kv_target kv)
{
    int64_t p = 0;
    if (kv.query)
        kvz_query_next_position(kv.query, 0, &p);
    else
        kvz_cache_next_position(kv.cache, 0, &p);
    return p;
}

typedef struct scratch {
    float *xn, *q, *k, *v, *att, *g, *u, *cs, *sn;
} scratch;

/* The activations of a step of c tokens, carved from the model's kept buffer (grown when
 * a step is larger than any before); each holds kvz_linear_rows(c) rows, the room of
 * kvz_linear_apply_padded. */
static kvz_status scratch_get(kvz_model *m, size_t c, scratch *s)
{
    const kvz_hparams *hp = &m->hp;
    const size_t QD = hp->n_head * hp->head_dim, KD = hp->n_head_kv * hp->head_dim, R = hp->rope_dim / 2;
    const size_t per_token = hp->n_embd + 2 * QD + 2 * KD + 2 * hp->n_ff + 2 * R;
    size_t need;
    c = kvz_linear_rows(c);
    if (!kvz_mul_ok(c, per_token, &need) || need > ((size_t)-1) / sizeof(float) - 2)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "model: activations of %zu tokens are too large", c);
    need += 2; /* the rope tables of a rope_dim of 0 still get distinct pointers */
    if (need > m->act_floats) {
        float *a = kvz_aligned_alloc(need * sizeof *a);
        if (!a)
            return kvz_fail(KVZ_ERR_NOMEM, "model: no memory for the activations of %zu tokens", c);
        kvz_aligned_free(m->act);
        m->act = a, m->act_floats = need;
    }
    float *p = m->act;
    s->xn = p, p += c * hp->n_embd;
    s->q = p, p += c * QD;
    s->att = p, p += c * QD;
    s->k = p, p += c * KD;
    s->v = p, p += c * KD;
    s->g = p, p += c * hp->n_ff;
    s->u = p, p += c * hp->n_ff;
    s->cs = p, p += c * R + 1;
    s->sn = p;
    return KVZ_OK;
}

static kvz_status append_kv(kvz_kv_target kv, size_t layer, size_t n, const float *k, const float *v, size_t KD,
                            size_t d, const int64_t *pos, int explicit_pos)
{
    if (kv.query)
        return kvz_query_append(kv.query, layer, n, k, v, (ptrdiff_t)KD, (ptrdiff_t)d);
    if (explicit_pos)
        return kvz_cache_append_at(kv.cache, layer, n, k, v, (ptrdiff_t)KD, (ptrdiff_t)d, pos);
    return kvz_cache_append(kv.cache, layer, n, k, v, (ptrdiff_t)KD, (ptrdiff_t)d);
}

/* The target's layer count, KV heads and head size against the model's. */
static kvz_status check_shape(const kvz_model *m, kvz_kv_target kv, const char *fn)
{
    if (!m || (!kv.cache && !kv.query))
        return kvz_fail(KVZ_ERR_NULL, "%s: NULL argument", fn);
    size_t L, H, d;
    const kvz_status st =
        kv.query ? kvz_query_shape(kv.query, &L, &H, &d, NULL) : kvz_cache_shape(kv.cache, &L, &H, &d, NULL);
    if (st != KVZ_OK)
        return st;
    /* the layer writes n_head_kv x head_dim values a token and the cache reads its own shape
       from them: any difference reads or writes past a buffer (a .kvz whose fingerprint was
       copied from another model's cache) */
    if (L != m->hp.n_layers || H != m->hp.n_head_kv || d != m->hp.head_dim)
        return kvz_fail(
            KVZ_ERR_MISMATCH,
            "%s: the cache has %zu layers x %zu KV heads x head size %zu, the model %zu x %zu x %zu", fn, L, H,
            d, m->hp.n_layers, m->hp.n_head_kv, m->hp.head_dim);
    return KVZ_OK;
}

/* A cache layer's sliding window against the model's: another would attend to the wrong keys. */
static kvz_status check_window(const kvz_model *m, const kvz_cache *c, size_t layer, const char *fn)
{
    size_t w = 0;
    kvz_cache_layer_window(c, layer, &w);
    if (w != kvz_hparams_window(&m->hp, layer))
        return kvz_fail(KVZ_ERR_MISMATCH,
                        "%s: layer %zu of the cache has a window of %zu tokens, the model's %zu", fn, layer, w,
                        kvz_hparams_window(&m->hp, layer));
    return KVZ_OK;
}

kvz_status kvz_model_kv_check(const kvz_model *m, kvz_kv_target kv, const char *fn)
{
    kvz_status st = check_shape(m, kv, fn);
    for (size_t l = 0; st == KVZ_OK && kv.cache && !kv.query && l < m->hp.n_layers; l++)
        st = check_window(m, kv.cache, l, fn);
    return st;
}

kvz_status kvz_model_layer(kvz_model *m, size_t layer, kvz_kv_target kv, kvz_layer_io *io)
{
    if (!m || !io || !io->x || !io->pos || (!kv.cache && !kv.query))
        return kvz_fail(KVZ_ERR_NULL, "kvz_model_layer: NULL argument");
    const kvz_hparams *hp = &m->hp;
    if (layer >= hp->n_layers || !io->n)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_model_layer: layer %zu of %zu, %zu tokens", layer,
                        hp->n_layers, io->n);
    if (kv.query && (io->explicit_pos || io->score || io->accum))
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "kvz_model_layer: queries take contiguous positions, no scoring and no accumulated "
                        "attention");
    /* this layer's window only: a decode step calls every layer, and the prefill checked them all */
    kvz_status st = check_shape(m, kv, "kvz_model_layer");
    if (st == KVZ_OK && kv.cache && !kv.query)
        st = check_window(m, kv.cache, layer, "kvz_model_layer");
    if (st != KVZ_OK)
        return st;
    const size_t n = io->n, E = hp->n_embd, d = hp->head_dim, Hq = hp->n_head, Hkv = hp->n_head_kv;
    const size_t QD = Hq * d, KD = Hkv * d, F = hp->n_ff;
    /* scoring needs every query of the pass in one attention call (its own-key range is the
       whole pass), so it never splits */
    const size_t c = io->score || !io->chunk || io->chunk > n ? n : io->chunk;
    const kvz_layer_weights *w = &m->layers[layer];
    const size_t window = kvz_hparams_window(hp, layer);
    scratch s = {0};
    st = scratch_get(m, c, &s);
    for (size_t a = 0; a < n && st == KVZ_OK; a += c) {
        const size_t nc = n - a < c ? n - a : c;
        float *x = io->x + a * E;
        const int64_t *pos = io->pos + a;
        rmsnorm(x, nc, E, w->attn_norm, hp->eps, s.xn);
        if ((st = kvz_linear_apply_padded(m->mm, &w->q, nc, s.xn, s.q)) ||
            (st = kvz_linear_apply_padded(m->mm, &w->k, nc, s.xn, s.k)) ||
            (st = kvz_linear_apply_padded(m->mm, &w->v, nc, s.xn, s.v)))
            break;
        if (w->q_norm) { /* Gemma 3 normalizes every query and key head (in place: one row a head) */
            rmsnorm(s.q, nc * Hq, d, w->q_norm, hp->eps, s.q);
            rmsnorm(s.k, nc * Hkv, d, w->k_norm, hp->eps, s.k);
        }
        rope_tables(m, window ? hp->rope_base_swa : hp->rope_base, pos, nc, s.cs, s.sn);
        rope_apply(m, s.q, nc, Hq, s.cs, s.sn);
        rope_apply(m, s.k, nc, Hkv, s.cs, s.sn);
        if (io->q_tail && io->q_tail_rows) { /* keep the queries of the last rows of the whole batch */
            const size_t tail0 = n - (io->q_tail_rows < n ? io->q_tail_rows : n);
            for (size_t t = 0; t < nc; t++)
                if (a + t >= tail0)
                    memcpy(io->q_tail + (a + t - tail0) * QD, s.q + t * QD, QD * 4);
        }
        if ((st = append_kv(kv, layer, nc, s.k, s.v, KD, d, pos, io->explicit_pos)))
            break;
        const kvz_attend_args at = {.struct_size = sizeof at,
                                    .group = Hq / Hkv,
                                    .n_q = nc,
                                    .scale = hp->attn_scale,
                                    .q = s.q,
                                    .q_token_stride = (ptrdiff_t)QD,
                                    .q_head_stride = (ptrdiff_t)d,
                                    .out = s.att,
                                    .out_token_stride = (ptrdiff_t)QD,
                                    .out_head_stride = (ptrdiff_t)d,
                                    .score = io->score,
                                    .score_head_stride = io->score_head_stride,
                                    .sink_end = io->sink_end,
                                    .chunk_begin = io->chunk_begin,
                                    .chunk_end = io->chunk_end,
                                    .accum = io->accum,
                                    .accum_head_stride = io->accum_head_stride};
        st = kv.query ? kvz_query_attend(kv.query, layer, &at) : kvz_cache_attend(kv.cache, layer, &at);
        if (st || (st = kvz_linear_apply_padded(m->mm, &w->o, nc, s.att, s.xn)))
            break;
        if (w->post_attn_norm)
            rmsnorm(s.xn, nc, E, w->post_attn_norm, hp->eps, s.xn);
        add_into(x, s.xn, nc * E);
        rmsnorm(x, nc, E, w->ffn_norm, hp->eps, s.xn);
        if ((st = kvz_linear_apply_padded(m->mm, &w->gate, nc, s.xn, s.g)) ||
            (st = kvz_linear_apply_padded(m->mm, &w->up, nc, s.xn, s.u)))
            break;
        if (hp->ffn_act == KVZ_FFN_GELU_TANH)
            kvz_geglu(s.g, s.u, nc * F);
        else
            kvz_swiglu(s.g, s.u, nc * F);
        if ((st = kvz_linear_apply_padded(m->mm, &w->down, nc, s.g, s.xn)))
            break;
        if (w->post_ffn_norm)
            rmsnorm(s.xn, nc, E, w->post_ffn_norm, hp->eps, s.xn);
        add_into(x, s.xn, nc * E);
    }
    return st;
}

kvz_status kvz_model_logits(kvz_model *m, const float *x, size_t n, float *logits)
{
    if (!m || !x || !logits)
        return kvz_fail(KVZ_ERR_NULL, "kvz_model_logits: NULL argument");
    float *xn = malloc(n * m->hp.n_embd * 4 + 4);
    if (!xn)
        return kvz_fail(KVZ_ERR_NOMEM, "kvz_model_logits: no memory");
    rmsnorm(x, n, m->hp.n_embd, m->output_norm, m->hp.eps, xn);
    kvz_status st = kvz_linear_apply(m->mm, &m->output, n, xn, logits);
    free(xn);
    return st;
}

kvz_status kvz_model_prefill(kvz_model *m, kvz_kv_target kv, const int32_t *ids, size_t n, size_t chunk,
                             float *logits)
{
    return kvz_model_prefill_logits(m, kv, ids, n, chunk, logits ? 1 : 0, logits);
}

kvz_status kvz_model_prefill_logits(kvz_model *m, kvz_kv_target kv, const int32_t *ids, size_t n, size_t chunk,
                                    size_t n_last, float *logits)
{
    return kvz_model_prefill_ex(m, kv, ids, n, chunk, n_last, logits, NULL);
}

kvz_status kvz_model_prefill_ex(kvz_model *m, kvz_kv_target kv, const int32_t *ids, size_t n, size_t chunk,
                                size_t n_last, float *logits, const kvz_prefill_hook *hook)
{
    if (!m || !ids || (!kv.cache && !kv.query) || (n_last && !logits))
        return kvz_fail(KVZ_ERR_NULL, "kvz_model_prefill: NULL argument");
    const size_t tail = hook ? hook->q_tail_rows : 0;
    if (!n || n_last > n || tail > n || (tail && !hook->q_tail))
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "kvz_model_prefill: %zu tokens, logits of the last %zu, queries of the last %zu", n,
                        n_last, tail);
    if (hook && hook->accum && kv.query)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_model_prefill: accumulated attention needs a cache target");
    kvz_status st = kvz_model_kv_check(m, kv, "kvz_model_prefill");
    if (st != KVZ_OK)
        return st;
    const size_t c = chunk && chunk < n ? (chunk > tail ? chunk : tail) : n, E = m->hp.n_embd;
    float *x = malloc(c * E * 4), *tailx = malloc((n_last ? n_last : 1) * E * 4);
    int64_t *pos = malloc(c * sizeof *pos);
    st = x && pos && tailx ? KVZ_OK : kvz_fail(KVZ_ERR_NOMEM, "kvz_model_prefill: no memory for %zu tokens", c);
    const int64_t p0 = st == KVZ_OK ? kvz_kv_next_position(kv) : 0;
    if (st == KVZ_OK && (uint64_t)n > (uint64_t)(KVZ_POSITION_LIMIT - p0)) /* p0 is within the limit */
        st = kvz_fail(KVZ_ERR_INVALID_ARG,
                      "kvz_model_prefill: %zu tokens after position %lld pass KVZ_POSITION_LIMIT", n,
                      (long long)p0);
    for (size_t a = 0, nc; a < n && st == KVZ_OK; a += nc) {
        nc = n - a < c ? n - a : c;
        if (n - a - nc > 0 && n - a - nc < tail)
            nc = n - a - tail; /* the hook's query rows all fall in the last chunk */
        const int last = a + nc == n;
        if ((st = kvz_model_embed(m, ids + a, nc, x)))
            break;
        for (size_t i = 0; i < nc; i++)
            pos[i] = p0 + (int64_t)(a + i);
        for (size_t l = 0; l < m->hp.n_layers && st == KVZ_OK; l++) {
            kvz_layer_io io = {.n = nc, .x = x, .pos = pos};
            if (last && tail)
                io.q_tail = hook->q_tail, io.q_tail_rows = tail;
            if (hook && hook->accum && !kvz_hparams_window(&m->hp, l))
                io.accum = hook->accum + (ptrdiff_t)l * hook->accum_layer_stride,
                io.accum_head_stride = hook->accum_head_stride;
            st = kvz_model_layer(m, l, kv, &io);
            if (st == KVZ_OK && last && hook && hook->after_layer)
                st = hook->after_layer(hook->ctx, l);
        }
        for (size_t i = 0; i < nc && st == KVZ_OK; i++) /* the final hidden states of the last n_last tokens */
            if (a + i + n_last >= n)
                memcpy(tailx + (a + i + n_last - n) * E, x + i * E, E * 4);
    }
    if (st == KVZ_OK && n_last)
        st = kvz_model_logits(m, tailx, n_last, logits);
    free(x), free(pos), free(tailx);
    return st;
}
