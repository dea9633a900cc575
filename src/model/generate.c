/* Token generation over a cache or a query tail: greedy or temperature sampling, one token per step. */
#include "model/generate.h"

#include <math.h>
#include <stdlib.h>

#include "core/internal.h"

/* splitmix64: a small, seedable generator for sampling */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int32_t kvz_sample(const float *logits, size_t n, float temperature, uint64_t *rng)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++) /* the first of equal maxima, as argmax does */
        if (logits[i] > logits[best])
            best = i;
    if (!(temperature > 0) || !rng)
        return (int32_t)best;
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += exp(((double)logits[i] - logits[best]) / temperature);
    double u = (double)(next_u64(rng) >> 11) * 0x1.0p-53 * total;
    for (size_t i = 0; i < n; i++) {
        u -= exp(((double)logits[i] - logits[best]) / temperature);
        if (u < 0)
            return (int32_t)i;
    }
    return (int32_t)best; /* rounding left u >= 0: the most likely token */
}

kvz_status kvz_model_step(kvz_model *m, kvz_kv_target kv, int32_t id, float *logits)
{
    const size_t E = m->hp.n_embd;
    float *x = malloc(E * 4);
    if (!x)
        return kvz_fail(KVZ_ERR_NOMEM, "kvz_model_step: no memory");
    const int64_t pos = kvz_kv_next_position(kv);
    kvz_status st = kvz_model_embed(m, &id, 1, x);
    for (size_t l = 0; l < m->hp.n_layers && st == KVZ_OK; l++) {
        kvz_layer_io io = {.n = 1, .x = x, .pos = &pos};
        st = kvz_model_layer(m, l, kv, &io);
    }
    if (st == KVZ_OK)
        st = kvz_model_logits(m, x, 1, logits);
    free(x);
    return st;
}

kvz_status kvz_model_generate(kvz_model *m, kvz_kv_target kv, const float *first_logits, const kvz_gen_opts *o,
                              int32_t *out, size_t *n_out)
{
    if (!m || !first_logits || !o || !out || !n_out)
        return kvz_fail(KVZ_ERR_NULL, "kvz_model_generate: NULL argument");
    *n_out = 0;
    const size_t V = m->hp.n_vocab;
    float *logits = malloc(V * 4);
    if (!logits)
        return kvz_fail(KVZ_ERR_NOMEM, "kvz_model_generate: no memory");
    uint64_t rng = o->seed;
    const float *cur = first_logits;
    kvz_status st = KVZ_OK;
    for (size_t i = 0; i < o->max_tokens; i++) {
        const int32_t id = kvz_sample(cur, V, o->temperature, &rng);
        out[(*n_out)++] = id;
        if (o->is_stop && o->is_stop(o->stop_ctx, id))
            break;
        if (i + 1 == o->max_tokens) /* the last token is returned, never fed */
            break;
        if ((st = kvz_model_step(m, kv, id, logits)) != KVZ_OK)
            break;
        cur = logits;
    }
    free(logits);
    return st;
}
