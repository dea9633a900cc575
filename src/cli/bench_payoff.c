/* kvz bench payoff: what a compressed cache buys at long context, on the synthetic model of
 * model_cases.h (Llama-3.1-8B layer shapes, 4 layers or --layers N, bf16 cache) or on a model read
 * from a GGUF file (--model: real shapes, e.g. Gemma 3's sliding-window layers). For each context length it
 * builds the full cache, KVzip's at kept ratios 0.3 and 0.5 (one prefill and one set of scored passes, selected
 * twice) and FastKV's, and times decode steps over each, the caches taking turns so that the machine's state is
 * the same for all. Beside each measured decode time ÷ full it prints what a memory-bound step would take: a
 * step reads every weight once and every cached K/V row once, so at one bandwidth its time is (W + KV) / B, and
 * the ratio to full is (W + KV) / (W + KV_full), KV the rows the step reads (a sliding-window layer reads only
 * its window); for the synthetic model the same projected to the whole 32-layer model (W and KV scale with the
 * layers, the LM head does not) says what the proxy's 4 layers understate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/bench_cases.h"
#include "cli/cli.h"
#include "cli/model_cases.h"

enum { N_CACHES = 4, MAX_STEPS = 1000, FULL_LAYERS = 32 };
static const char *const cache_names[N_CACHES] = {"full", "kvzip-0.3", "kvzip-0.5", "fastkv"};

static double peak_rss_mb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0.0;
}

/* The name a file's figures carry: its base name without ".gguf". */
static void model_stem(const char *path, char *buf, size_t size)
{
    snprintf(buf, size, "%s", kvz_cli_basename(path));
    const size_t len = strlen(buf);
    if (len > 5 && !strcmp(buf + len - 5, ".gguf"))
        buf[len - 5] = '\0';
}

/* One context length: every cache built, then steps rounds of one decode step over each. path: the
 * GGUF model, NULL for the synthetic one of `layers` layers. */
static int one_length(int json, const char *path, size_t n, size_t layers, int steps)
{
    kvz_mc *mc = NULL;
    kvz_cache *caches[N_CACHES] = {NULL};
    double build[N_CACHES] = {0}, prefill = 0, passes = 0, sel;
    static double t[N_CACHES][MAX_STEPS];
    kvz_status st = path ? kvz_mc_open(path, n, &mc) : kvz_mc_create_at(n, layers, &mc);
    if (st == KVZ_OK)
        st = kvz_mc_prefill(mc, &prefill);
    if (st == KVZ_OK)
        st = kvz_mc_passes(mc, 1, &passes);
    if (st == KVZ_OK)
        st = kvz_mc_kvzip_select(mc, 0.3, &caches[1], &sel), build[1] = prefill + passes + sel;
    if (st == KVZ_OK)
        st = kvz_mc_kvzip_select(mc, 0.5, &caches[2], &sel), build[2] = prefill + passes + sel;
    if (st == KVZ_OK)
        st = kvz_mc_fastkv_cache(mc, &build[3], &caches[3]);
    caches[0] = st == KVZ_OK ? kvz_mc_cache(mc) : NULL, build[0] = prefill;
    for (int s = 0; s <= steps && st == KVZ_OK; s++) /* step 0 warms up every cache */
        for (int k = 0; k < N_CACHES && st == KVZ_OK; k++)
            st = kvz_mc_decode_on(mc, caches[k], &t[k][s ? s - 1 : 0]);
    if (st != KVZ_OK) {
        fprintf(stderr, "kvz bench payoff: %zu tokens: %s (%s)\n", n, kvz_last_error(), kvz_strerror(st));
        for (int k = 1; k < N_CACHES; k++)
            kvz_cache_destroy(caches[k]);
        kvz_mc_destroy(mc);
        return 1;
    }
    double w_all, w_layers, kv[N_CACHES], kv_read[N_CACHES], med[N_CACHES], spread[N_CACHES];
    kvz_mc_weight_bytes(mc, &w_all, &w_layers);
    for (int k = 0; k < N_CACHES; k++) {
        kvz_cache_stats cs = {.struct_size = sizeof cs};
        kvz_cache_get_stats(caches[k], &cs);
        kv[k] = (double)cs.bytes_used;
        kv_read[k] = kvz_mc_step_kv_bytes(mc, caches[k]); /* >= 0: each cache was made for mc */
        med[k] = kvz_bench_median(t[k], steps); /* sorts t[k] */
        spread[k] = kvz_bench_spread(t[k], steps);
    }
    const double bandwidth = (w_all + kv_read[0]) / med[0], rss = peak_rss_mb();
    char cpu[128], shape[160], stem[128], prefix[140] = "";
    kvz_bench_cpu_model(cpu, sizeof cpu);
    kvz_mc_describe(mc, shape, sizeof shape);
    if (path) {
        model_stem(path, stem, sizeof stem);
        snprintf(prefix, sizeof prefix, "%s/", stem);
    }
    /* the 32-layer projection is the synthetic model's (a file's model is already whole) */
    const double w32 = path ? 0 : w_layers * FULL_LAYERS / (double)layers + (w_all - w_layers),
                 kv_scale = path ? 0 : FULL_LAYERS / (double)layers;
    if (!json)
        printf(
            "\n%zu tokens (%s): prefill %.2f s, KVzip's scored passes %.2f s; a step of the full cache reads "
            "%.0f MB of weights and %.0f MB of K/V (%.1f GB/s)\n%-10s %9s %10s %8s %11s %9s %9s %9s\n",
            n, shape, prefill, passes, w_all / 1e6, kv_read[0] / 1e6, bandwidth / 1e9, "cache", "build s",
            "KV MB", "KV/full", "decode ms", "÷ full", "model", "model 32L");
    for (int k = 0; k < N_CACHES; k++) {
        const double model = (w_all + kv_read[k]) / (w_all + kv_read[0]);
        const double model32 = (w32 + kv_scale * kv_read[k]) / (w32 + kv_scale * kv_read[0]);
        char m32[48] = "", col32[16] = "-";
        if (!path) {
            snprintf(m32, sizeof m32, "\"model32_vs_full\": %.4f, ", model32);
            snprintf(col32, sizeof col32, "%.3f", model32);
        }
        if (json)
            printf(
                "{\"suite\": \"payoff\", \"name\": \"%s%s/%zu\", \"model\": \"%s\", \"context\": %zu, "
                "\"cache\": \"%s\", \"build_s\": %.4f, \"kv_bytes\": %.0f, \"kv_vs_full\": %.4f, "
                "\"kv_read_bytes\": %.0f, \"decode_s\": %.6g, \"spread\": %.4g, \"reps\": %d, \"vs_full\": "
                "%.4f, "
                "\"model_vs_full\": %.4f, %s\"weight_bytes\": %.0f, \"bandwidth\": %.4g, \"peak_rss_mb\": "
                "%.0f, "
                "\"weights\": \"%s\", \"layers\": %zu, \"threads\": %d, \"libkvz\": \"%s\", \"isa\": \"%s\", "
                "\"read_plan\": \"%s\", \"cpu\": \"%s\"}\n",
                prefix, cache_names[k], n, path ? stem : "synthetic", n, cache_names[k], build[k], kv[k],
                kv[k] / kv[0], kv_read[k], med[k], spread[k], steps, med[k] / med[0], model, m32, w_all,
                bandwidth, rss, kvz_mc_weights(mc), kvz_mc_layers(mc), kvz_num_threads(), kvz_version().string,
                kvz_isa_name(kvz_isa_active()), kvz_read_plan_name(kvz_read_plan_active()), cpu);
        else
            printf("%-10s %9.2f %10.1f %8.3f %11.3f %9.3f %9.3f %9s\n", cache_names[k], build[k], kv[k] / 1e6,
                   kv[k] / kv[0], med[k] * 1e3, med[k] / med[0], model, col32);
    }
    if (!json)
        printf("peak RSS so far %.0f MB\n", rss);
    fflush(stdout);
    for (int k = 1; k < N_CACHES; k++)
        kvz_cache_destroy(caches[k]);
    kvz_mc_destroy(mc);
    return 0;
}

int kvz_bench_payoff(int json, const char *model, const size_t *lengths, size_t n_lengths, size_t layers,
                     int steps)
{
    if (!layers)
        layers = KVZ_MC_LAYERS;
    if (steps < 1 || steps > MAX_STEPS)
        return kvz_cli_error("bench payoff: --reps %d is not in 1..%d", steps, MAX_STEPS);
    if (!json && model)
        printf("kvz bench payoff: %s, bf16 cache, %d threads; decode: median of %d steps per cache, the caches "
               "taking turns\n",
               model, kvz_num_threads(), steps);
    else if (!json)
        printf(
            "kvz bench payoff: synthetic Llama-3.1-8B-shaped model (%zu layers, vocabulary %d), bf16 cache, %d "
            "threads; decode: median of %d steps per cache, the caches taking turns\n",
            layers, KVZ_MC_VOCAB, kvz_num_threads(), steps);
    if (!json)
        printf(
            "build s: full = its prefill; KVzip = prefill + scored passes + selection; FastKV = its prefill\n"
            "model: (W + KV) / (W + KV_full), a step's bytes at one bandwidth (KV: the rows the step "
            "reads)%s\n",
            model ? "" : "; model 32L: the same for all 32 layers");
    int rc = 0;
    for (size_t i = 0; i < n_lengths && !rc; i++)
        rc = one_length(json, model, lengths[i], layers, steps);
    return rc;
}
