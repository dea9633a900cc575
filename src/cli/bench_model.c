/* kvz bench model: the model runner on the synthetic model of model_cases.h: prefill and
 * decode speed, KVzip compression cost against a plain prefill (and what the fused scoring
 * adds over the same passes), FastKV time to first token against a full prefill. Every
 * target is the median over rounds of a ratio of two times measured back to back. */
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#include "cli/bench_cases.h"
#include "cli/cli.h"
#include "cli/model_cases.h"

/* What every JSON line records of the run: kernel level, read plan, threads, rounds. */
static char run_facts[128];

/* spread: the rounds' interquartile range over their median (kvz_bench_spread) */
static void report(int json, const char *name, double seconds, double spread, double rate, const char *unit)
{
    if (json)
        printf("{\"suite\": \"model\", \"name\": \"%s\", \"seconds\": %.6f, \"rate\": %.4f, \"unit\": \"%s\", "
               "\"spread\": %.4g, %s}\n",
               name, seconds, rate, unit, spread, run_facts);
    else
        printf("%-28s %12.4f %12.2f %s\n", name, seconds, rate, unit);
}

static void target(int json, const char *name, double value, double spread, int at_most, double bound,
                   const char *what)
{
    const int pass = at_most ? value <= bound : value >= bound;
    if (json)
        printf("{\"suite\": \"model\", \"target\": \"%s\", \"value\": %.4f, \"bound\": %.4f, \"at_most\": %s, "
               "\"pass\": %s, \"spread\": %.4g, %s}\n",
               name, value, bound, at_most ? "true" : "false", pass ? "true" : "false", spread, run_facts);
    else
        printf("%-26s %8.3f %s %6.2f  %s  %s\n", name, value, at_most ? "<=" : ">=", bound,
               pass ? "PASS" : "MISS", what);
}

enum { MAX_ROUNDS = 64 };

/* One round: every operation once, each ratio's two operations back to back so that the
 * machine's state (a shared host drifts by tens of percent within minutes) is the same for
 * both: a prefill before FastKV's and another after KVzip's compression. build_parts: the
 * compression's own prefill and passes, to compare with the separate runs. */
typedef struct round_times {
    double prefill, fastkv, build, build_parts[2], prefill2, unscored, scored, step;
    double kvzip_vs_prefill, scoring_overhead, fastkv_speedup; /* this round's ratios */
} round_times;

static kvz_status one_round(kvz_mc *mc, round_times *r)
{
    kvz_status st = kvz_mc_prefill(mc, &r->prefill);
    if (st == KVZ_OK)
        st = kvz_mc_fastkv(mc, &r->fastkv);
    if (st == KVZ_OK)
        st = kvz_mc_kvzip(mc, &r->build, r->build_parts);
    if (st == KVZ_OK) /* also the cache the passes and decode steps below run over */
        st = kvz_mc_prefill(mc, &r->prefill2);
    if (st == KVZ_OK)
        st = kvz_mc_passes(mc, 0, &r->unscored);
    if (st == KVZ_OK)
        st = kvz_mc_passes(mc, 1, &r->scored);
    double sum = 0, t;
    for (int s = 0; s < 16 && st == KVZ_OK; s++, sum += t)
        st = kvz_mc_decode_step(mc, &t);
    r->step = sum / 16;
    r->kvzip_vs_prefill = r->build / r->prefill2;
    r->scoring_overhead = r->scored / r->unscored - 1.0;
    r->fastkv_speedup = r->prefill / r->fastkv;
    return st;
}

/* The median over n rounds of the double at byte offset `field` of round_times, and its spread. */
typedef struct med {
    double median, spread;
} med;

static med median_of(const round_times *r, int n, size_t field)
{
    double v[MAX_ROUNDS];
    for (int i = 0; i < n; i++)
        memcpy(&v[i], (const char *)&r[i] + field, sizeof v[i]);
    const double m = kvz_bench_median(v, n);
    return (med){m, kvz_bench_spread(v, n)};
}

#define MEDIAN(field) median_of(r, rounds, offsetof(round_times, field))

int kvz_bench_model(int json, int rounds)
{
    if (rounds < 1 || rounds > MAX_ROUNDS)
        return kvz_cli_error("bench model: --reps %d is not in 1..%d", rounds, MAX_ROUNDS);
    kvz_mc *mc = NULL;
    kvz_status st = kvz_mc_create(&mc);
    if (st != KVZ_OK)
        return kvz_cli_error("bench model: %s", kvz_last_error());
    snprintf(
        run_facts, sizeof run_facts, "\"isa\": \"%s\", \"read_plan\": \"%s\", \"threads\": %d, \"rounds\": %d",
        kvz_isa_name(kvz_isa_active()), kvz_read_plan_name(kvz_read_plan_active()), kvz_num_threads(), rounds);
    if (!json)
        printf("synthetic model: Llama-3.1-8B layer shapes, %d layers, %s weights, vocabulary %d, "
               "context %d tokens, bf16 cache, %d threads, %s kernels; medians of %d rounds\n"
               "%-28s %12s %12s\n",
               KVZ_MC_LAYERS, kvz_mc_weights(mc), KVZ_MC_VOCAB, KVZ_MC_CONTEXT, kvz_num_threads(),
               kvz_isa_name(kvz_isa_active()), rounds, "name", "seconds", "rate");
    /* oneDNN builds a primitive the first time it meets a shape and first-touch page faults
       land on the first run: one untimed round first */
    round_times warm, r[MAX_ROUNDS];
    st = one_round(mc, &warm);
    for (int i = 0; i < rounds && st == KVZ_OK; i++)
        st = one_round(mc, &r[i]);
    int rc = 0;
    if (st == KVZ_OK) {
        const double n = KVZ_MC_CONTEXT;
        const struct {
            const char *name;
            med t;
            double per_op; /* tokens per operation */
        } ops[] = {
            {"prefill", MEDIAN(prefill), n},
            {"decode_step", MEDIAN(step), 1},
            {"kvzip_compress_r0.3", MEDIAN(build), n},
            {"kvzip_compress_prefill", MEDIAN(build_parts[0]), n},
            {"kvzip_compress_passes", MEDIAN(build_parts[1]), n},
            {"prefill_after_kvzip", MEDIAN(prefill2), n},
            {"kvzip_scoring_passes", MEDIAN(scored), n},
            {"kvzip_passes_unscored", MEDIAN(unscored), n},
            {"fastkv_ttft_tsp0.2", MEDIAN(fastkv), n},
        };
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
            report(json, ops[i].name, ops[i].t.median, ops[i].t.spread, ops[i].per_op / ops[i].t.median,
                   "tokens/s");
        if (!json)
            printf(
                "\ntarget                        value     bound  (each the median of the rounds' ratios)\n");
        const med kvzip = MEDIAN(kvzip_vs_prefill), overhead = MEDIAN(scoring_overhead);
        const med fastkv = MEDIAN(fastkv_speedup);
        target(json, "kvzip_vs_prefill", kvzip.median, kvzip.spread, 1, 2.2,
               "KVzip compression time / plain prefill");
        target(json, "scoring_overhead", overhead.median, overhead.spread, 1, 0.10,
               "fused scoring passes / the same passes unscored - 1");
        target(json, "fastkv_ttft_speedup", fastkv.median, fastkv.spread, 0, 1.6,
               "full prefill / FastKV prefill (TSP at L/2, rate 0.2)");
    } else {
        rc = kvz_cli_error("bench model: %s (%s)", kvz_last_error(), kvz_strerror(st));
    }
    kvz_mc_destroy(mc);
    return rc;
}
