/* kvz bench cache: decode over caches compressed by each policy at several kept ratios, and .kvz save/load
 * speed. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/bench_cases.h"
#include "cli/cli.h"
#include "kvz.h"

/* One Llama-3.1-8B layer: 8 KV heads, G = 4, d = 128, 32768 context tokens, bf16. */
enum { H = 8, G = 4, D = 128, N = 32768 };

static double now(void) { return omp_get_wtime(); }

/* A fresh one-layer cache of N random tokens. */
static kvz_cache *build(void)
{
    kvz_cache_config cfg = {sizeof cfg, 1, H, D, KVZ_DTYPE_BF16, N + 64};
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

/* Median time of one decode step (a query appends one token and attends) over the cache. */
static double decode_time(const kvz_cache *c, int reps)
{
    kvz_query *q;
    if (kvz_query_create(c, &q) != KVZ_OK)
        return -1;
    float kv[H * D], qv[H * G * D], out[H * G * D];
    for (size_t i = 0; i < H * D; i++)
        kv[i] = 0.01f * (float)(i % 7);
    for (size_t i = 0; i < H * G * D; i++)
        qv[i] = 0.01f * (float)(i % 5);
    kvz_attend_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a, a.group = G, a.n_q = 1;
    a.q = qv, a.q_token_stride = H * G * D, a.q_head_stride = D, a.out = out, a.out_token_stride = H * G * D;
    a.out_head_stride = D;
    double *t = malloc((size_t)reps * sizeof *t), best = -1;
    for (int r = -1; t && r < reps; r++) { /* r = -1: warm-up */
        kvz_query_reset(q);
        const double t0 = now();
        kvz_query_append(q, 0, 1, kv, kv, H * D, D);
        if (kvz_query_attend(q, 0, &a) != KVZ_OK)
            break;
        if (r >= 0)
            t[r] = now() - t0;
        if (r == reps - 1) {
            for (int i = 1; i < reps; i++) /* insertion sort: reps is small */
                for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
                    const double x = t[j];
                    t[j] = t[j - 1], t[j - 1] = x;
                }
            best = t[reps / 2];
        }
    }
    free(t);
    kvz_query_destroy(q);
    return best;
}

int kvz_bench_cache(int json)
{
    static const kvz_policy policies[] = {
        KVZ_POLICY_KVZIP_PAIR, KVZ_POLICY_KVZIP_PAIR_UNIFORM, KVZ_POLICY_FASTKV,
        KVZ_POLICY_SNAPKV,     KVZ_POLICY_PYRAMIDKV,          KVZ_POLICY_ADAKV,
        KVZ_POLICY_H2O,        KVZ_POLICY_STREAMING,          KVZ_POLICY_RANDOM};
    static const double ratios[] = {1.0, 0.5, 0.3, 0.1};
    char cpu[256];
    kvz_bench_cpu_model(cpu, sizeof cpu);
    const char *isa = kvz_isa_name(kvz_isa_active());
    kvz_bench_result stream;
    size_t n_cases;
    const kvz_bench_case *cases = kvz_bench_kernel_cases(&n_cases);
    if (kvz_bench_measure(&cases[0], 0.5, 5, 50, &stream) != 0) /* stream_read */
        return 1;
    if (!json)
        printf("libkvz %s  isa %s  cpu \"%s\"  threads %d  stream_read %.1f GB/s\n"
               "one layer: %d KV heads, G = %d, d = %d, %d tokens, bf16\n%-20s %6s %10s %10s %12s %8s\n",
               kvz_version().string, isa, cpu, kvz_num_threads(), stream.rate, H, G, D, N, "policy", "ratio",
               "kept", "MB read", "decode ms", "vs full");
    float *scores[H];
    uint8_t *keep[H];
    for (size_t h = 0; h < H; h++) {
        scores[h] = malloc(N * sizeof(float)), keep[h] = malloc(N);
        if (!scores[h] || !keep[h])
            return kvz_cli_error("bench cache: out of memory");
        for (size_t j = 0; j < N; j++) /* skewed, different per head, as attention scores are */
            scores[h][j] = (float)(((j + 1) * (h + 3) * 2654435761u) % 100000) / 100000.0f;
        for (size_t j = 0; j < N; j += 97)
            scores[h][j] *= 1.0f + (float)h;
    }
    double full_time = 0;
    int failed = 0;
    for (size_t p = 0; p < sizeof policies / sizeof policies[0] && !failed; p++)
        for (size_t r = 0; r < sizeof ratios / sizeof ratios[0] && !failed; r++) {
            if (ratios[r] == 1.0 && p > 0)
                continue; /* one full-cache baseline */
            kvz_cache *c = build();
            if (!c)
                return kvz_cli_error("bench cache: cannot build the cache");
            kvz_policy_args a;
            memset(&a, 0, sizeof a);
            a.struct_size = sizeof a, a.policy = ratios[r] == 1.0 ? KVZ_POLICY_FULL : policies[p];
            a.n_layers = 1, a.n_kv_heads = H, a.n_tokens = N, a.scores = (const float *const *)scores;
            a.ratio = ratios[r], a.recent = 8, a.sinks = a.policy == KVZ_POLICY_STREAMING ? 4 : 0;
            size_t kept = 0;
            if (kvz_policy_select(&a, keep, &kept) != KVZ_OK ||
                kvz_cache_compact(c, (const uint8_t *const *)keep) != KVZ_OK) {
                fprintf(stderr, "kvz bench cache: %s\n", kvz_last_error());
                failed = 1;
            }
            const double t = failed ? -1 : decode_time(c, 41);
            if (t < 0)
                failed = 1;
            if (ratios[r] == 1.0)
                full_time = t;
            const double mb = (double)kept * 2 * D * 2 / 1e6;
            const char *name = kvz_policy_name(a.policy);
            if (!failed && json)
                printf("{\"name\":\"decode_cache/%s/%.1f\",\"seconds\":%.6g,\"rate\":%.4g,\"unit\":\"GB/s\","
                       "\"kept_ratio\":%.4f,\"vs_full\":%.4f,\"isa\":\"%s\",\"cpu\":\"%s\",\"threads\":%d}\n",
                       name, ratios[r], t, mb / 1e3 / t, (double)kept / (H * N), t / full_time, isa, cpu,
                       kvz_num_threads());
            else if (!failed)
                printf("%-20s %6.1f %10.3f %10.1f %12.3f %8.3f\n", name, ratios[r], (double)kept / (H * N), mb,
                       t * 1e3, t / full_time);
            kvz_cache_destroy(c);
        }
    /* .kvz save and load of the full layer, against the read bandwidth */
    kvz_cache *c = build();
    char path[] = "/tmp/kvz-bench-XXXXXX";
    const int fd = c ? mkstemp(path) : -1;
    if (fd >= 0) {
        close(fd);
        kvz_cache_stats st = {.struct_size = sizeof st};
        kvz_cache_get_stats(c, &st);
        double ts = 1e9, tl = 1e9;
        for (int r = 0; r < 3 && !failed; r++) {
            double t0 = now();
            failed |= kvz_cache_save(c, path, NULL) != KVZ_OK;
            ts = now() - t0 < ts ? now() - t0 : ts;
            kvz_cache *b = NULL;
            t0 = now();
            failed |= kvz_cache_load(path, NULL, &b, NULL) != KVZ_OK;
            tl = now() - t0 < tl ? now() - t0 : tl;
            kvz_cache_destroy(b);
        }
        unlink(path);
        const double gb = (double)st.bytes_used / 1e9;
        if (!failed && json) {
            printf(
                "{\"name\":\"kvz_save\",\"seconds\":%.6g,\"rate\":%.4g,\"unit\":\"GB/s\",\"vs_stream\":%.4f}\n",
                ts, gb / ts, gb / ts / stream.rate);
            printf(
                "{\"name\":\"kvz_load\",\"seconds\":%.6g,\"rate\":%.4g,\"unit\":\"GB/s\",\"vs_stream\":%.4f}\n",
                tl, gb / tl, gb / tl / stream.rate);
        } else if (!failed) {
            printf("\n.kvz save %.1f MB: %.3f s, %.2f GB/s (%.2f of stream_read; fsync included)\n", gb * 1e3,
                   ts, gb / ts, gb / ts / stream.rate);
            printf(".kvz load %.1f MB: %.3f s, %.2f GB/s (%.2f of stream_read)\n", gb * 1e3, tl, gb / tl,
                   gb / tl / stream.rate);
        }
    }
    kvz_cache_destroy(c);
    for (size_t h = 0; h < H; h++)
        free(scores[h]), free(keep[h]);
    return failed;
}
