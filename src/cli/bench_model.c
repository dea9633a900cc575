/* kvz bench model: the model runner on the synthetic model of model_cases.h: prefill and
 * decode speed, KVzip compression cost against a plain prefill (and what the fused scoring
 * adds over the same passes), FastKV time to first token against a full prefill. Every
 * target is a ratio of two times measured in this run. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/model_cases.h"

static void report(int json, const char *name, double seconds, double rate, const char *unit)
{
    if (json)
        printf("{\"suite\": \"model\", \"name\": \"%s\", \"seconds\": %.6f, \"rate\": %.4f, \"unit\": \"%s\"}\n", name,
               seconds, rate, unit);
    else
        printf("%-28s %12.4f %12.2f %s\n", name, seconds, rate, unit);
}

static void target(int json, const char *name, double value, int at_most, double bound, const char *what)
{
    const int pass = at_most ? value <= bound : value >= bound;
    if (json)
        printf("{\"suite\": \"model\", \"target\": \"%s\", \"value\": %.4f, \"bound\": %.4f, \"at_most\": %s, "
               "\"pass\": %s}\n",
               name, value, bound, at_most ? "true" : "false", pass ? "true" : "false");
    else
        printf("%-26s %8.3f %s %6.2f  %s  %s\n", name, value, at_most ? "<=" : ">=", bound, pass ? "PASS" : "MISS", what);
}

int kvz_bench_model(int json)
{
    kvz_mc *mc = NULL;
    kvz_status st = kvz_mc_create(&mc);
    if (st != KVZ_OK)
        return kvz_cli_error("bench model: %s", kvz_last_error());
    if (!json)
        printf("synthetic model: Llama-3.1-8B layer shapes, %d layers, %s weights, vocabulary %d, context %d tokens, "
               "bf16 cache, %d threads\n%-28s %12s %12s\n",
               KVZ_MC_LAYERS, kvz_mc_weights(mc), KVZ_MC_VOCAB, KVZ_MC_CONTEXT, kvz_num_threads(), "name", "seconds",
               "rate");
    /* Order matters on a shared machine: oneDNN builds a primitive the first time it meets a
       shape and first-touch page faults land on the first run, so every measured operation
       follows an untimed run of the same shapes. */
    double t_prefill = 0, t_step = 0, t_scored = 0, t_unscored = 0, t_build = 0, t_fastkv = 0, t;
    if ((st = kvz_mc_prefill(mc, &t)) == KVZ_OK && (st = kvz_mc_prefill(mc, &t_prefill)) == KVZ_OK &&
        (st = kvz_mc_decode_step(mc, &t)) == KVZ_OK) {
        double sum = 0;
        for (int s = 0; s < 16 && st == KVZ_OK; s++, sum += t)
            st = kvz_mc_decode_step(mc, &t);
        t_step = sum / 16;
    }
    if (st == KVZ_OK && (st = kvz_mc_passes(mc, 0, &t)) == KVZ_OK && (st = kvz_mc_passes(mc, 1, &t_scored)) == KVZ_OK)
        st = kvz_mc_passes(mc, 0, &t_unscored);
    if (st == KVZ_OK)
        st = kvz_mc_kvzip(mc, &t_build);
    if (st == KVZ_OK && (st = kvz_mc_fastkv(mc, &t)) == KVZ_OK)
        st = kvz_mc_fastkv(mc, &t_fastkv);
    int rc = 0;
    if (st == KVZ_OK) {
        const double n = KVZ_MC_CONTEXT;
        report(json, "prefill", t_prefill, n / t_prefill, "tokens/s");
        report(json, "decode_step", t_step, 1.0 / t_step, "tokens/s");
        report(json, "kvzip_compress_r0.3", t_build, n / t_build, "tokens/s");
        report(json, "kvzip_scoring_passes", t_scored, n / t_scored, "tokens/s");
        report(json, "kvzip_passes_unscored", t_unscored, n / t_unscored, "tokens/s");
        report(json, "fastkv_ttft_tsp0.2", t_fastkv, n / t_fastkv, "tokens/s");
        if (!json)
            printf("\ntarget                        value     bound\n");
        target(json, "kvzip_vs_prefill", t_build / t_prefill, 1, 2.2, "KVzip compression time / plain prefill");
        target(json, "scoring_overhead", t_scored / t_unscored - 1.0, 1, 0.10,
               "fused scoring passes / the same passes unscored - 1");
        target(json, "fastkv_ttft_speedup", t_prefill / t_fastkv, 0, 1.6,
               "full prefill / FastKV prefill (TSP at L/2, rate 0.2)");
    } else {
        rc = kvz_cli_error("bench model: %s (%s)", kvz_last_error(), kvz_strerror(st));
    }
    kvz_mc_destroy(mc);
    return rc;
}
