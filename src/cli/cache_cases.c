/* Building, compressing and decoding over the benchmark layer of cache_cases.h. */
#include "cli/cache_cases.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const kvz_policy kvz_cc_policies[9] = {KVZ_POLICY_KVZIP_PAIR, KVZ_POLICY_KVZIP_PAIR_UNIFORM, KVZ_POLICY_FASTKV,
                                       KVZ_POLICY_SNAPKV,     KVZ_POLICY_PYRAMIDKV,          KVZ_POLICY_ADAKV,
                                       KVZ_POLICY_H2O,        KVZ_POLICY_STREAMING,          KVZ_POLICY_RANDOM};
const double kvz_cc_ratios[4] = {1.0, 0.5, 0.3, 0.1};

enum { H = KVZ_CC_H, G = KVZ_CC_G, D = KVZ_CC_D, N = KVZ_CC_N };

kvz_cache *kvz_cc_build(void)
{
    kvz_cache_config cfg = {sizeof cfg, 1, H, D, KVZ_DTYPE_BF16, N + 64, NULL};
    kvz_cache *c;
    if (kvz_cache_create(&cfg, &c) != KVZ_OK)
        return NULL;
    const size_t chunk = 1024;
    float *k = malloc(chunk * H * D * sizeof(float)), *v = malloc(chunk * H * D * sizeof(float));
    if (!k || !v) {
        free(k), free(v), kvz_cache_destroy(c);
        return NULL;
    }
    for (size_t i = 0; i < chunk * H * D; i++)
        k[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f,
        v[i] = (float)((i * 40503u) % 1999) / 999.5f - 1.0f;
    for (size_t t = 0; t < N; t += chunk)
        kvz_cache_append(c, 0, chunk, k, v, H * D, D);
    free(k), free(v);
    return c;
}

int kvz_cc_compress(kvz_cache *c, kvz_policy policy, double ratio, size_t *kept)
{
    float *scores[H] = {0};
    uint8_t *keep[H] = {0};
    int rc = 0;
    for (size_t h = 0; h < H && !rc; h++) {
        scores[h] = malloc(N * sizeof(float)), keep[h] = malloc(N);
        if (!scores[h] || !keep[h]) {
            rc = -1;
            break;
        }
        for (size_t j = 0; j < N; j++) /* skewed, different per head, as attention scores are */
            scores[h][j] = (float)(((j + 1) * (h + 3) * 2654435761u) % 100000) / 100000.0f;
        for (size_t j = 0; j < N; j += 97)
            scores[h][j] *= 1.0f + (float)h;
    }
    kvz_policy_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a, a.policy = ratio >= 1.0 ? KVZ_POLICY_FULL : policy;
    a.n_layers = 1, a.n_kv_heads = H, a.n_tokens = N, a.scores = (const float *const *)scores;
    a.ratio = ratio, a.recent = 8, a.sinks = a.policy == KVZ_POLICY_STREAMING ? 4 : 0;
    if (!rc && (kvz_policy_select(&a, keep, kept) != KVZ_OK ||
                kvz_cache_compact(c, (const uint8_t *const *)keep) != KVZ_OK))
        rc = -1;
    for (size_t h = 0; h < H; h++)
        free(scores[h]), free(keep[h]);
    return rc;
}

struct kvz_cc_decoder {
    kvz_query *q;
    float kv[H * D], qv[H * G * D], out[H * G * D];
    kvz_attend_args a;
};

kvz_cc_decoder *kvz_cc_decoder_create(const kvz_cache *c)
{
    kvz_cc_decoder *d = calloc(1, sizeof *d);
    if (!d || kvz_query_create(c, &d->q) != KVZ_OK) {
        free(d);
        return NULL;
    }
    for (size_t i = 0; i < H * D; i++)
        d->kv[i] = 0.01f * (float)(i % 7);
    for (size_t i = 0; i < H * G * D; i++)
        d->qv[i] = 0.01f * (float)(i % 5);
    kvz_attend_args *a = &d->a;
    a->struct_size = sizeof *a, a->group = G, a->n_q = 1;
    a->q = d->qv, a->q_token_stride = H * G * D, a->q_head_stride = D;
    a->out = d->out, a->out_token_stride = H * G * D, a->out_head_stride = D;
    return d;
}

int kvz_cc_decode_step(kvz_cc_decoder *d)
{
    kvz_query_reset(d->q);
    if (kvz_query_append(d->q, 0, 1, d->kv, d->kv, H * D, D) != KVZ_OK)
        return -1;
    return kvz_query_attend(d->q, 0, &d->a) == KVZ_OK ? 0 : -1;
}

const float *kvz_cc_decoder_output(const kvz_cc_decoder *d) { return d->out; }

void kvz_cc_decoder_destroy(kvz_cc_decoder *d)
{
    if (d)
        kvz_query_destroy(d->q);
    free(d);
}

double kvz_cc_decode_bytes(size_t rows) { return (double)rows * 2 * D * 2; }
