/* kvz bench: runs benchmark suites and reports each figure with the ratios the targets are stated in. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench_cases.h"
#include "cli/cli.h"
#include "kvz.h"

/* Options of the bench subcommands; each subcommand says which it accepts. */
enum {
    OPT_JSON = 1,
    OPT_FILTER = 2,
    OPT_REPS = 4,
    OPT_MIN_TIME = 8,
    OPT_LENGTHS = 16,
    OPT_LAYERS = 32,
    OPT_MODEL = 64
};
enum { MAX_LENGTHS = 16 };

typedef struct bench_opts {
    int json;
    const char *filter; /* comma-separated substrings; NULL: every case */
    int reps;           /* > 0: exactly this many timed repetitions of every case */
    double min_time;    /* else: repeat until this many seconds (prefill: two repetitions) */
    size_t lengths[MAX_LENGTHS], n_lengths; /* payoff: context lengths */
    size_t layers;                          /* payoff: the model's layers (0: 4) */
    const char *model;                      /* payoff: a GGUF file instead of the synthetic model */
} bench_opts;

typedef struct subcommand {
    const char *name;
    unsigned options;
    int (*run)(const bench_opts *o);
} subcommand;

static void usage(FILE *f)
{
    fprintf(
        f, "usage: kvz bench kernels [--json] [--filter SUBSTR[,SUBSTR...]] [--reps N] [--min-time SECONDS]\n"
           "       kvz bench cache [--json]\n"
           "       kvz bench model [--json] [--reps N]\n"
           "       kvz bench threads [--json]\n"
           "       kvz bench payoff [--json] [--lengths N[,N...]] [--reps N] [--layers N | --model FILE]\n"
           "  kernels     kernel benchmarks beside the machine's read bandwidth and oneDNN's sgemm rate,\n"
           "              then libkvz's performance targets (perf/README.md) as ratios of figures of this run\n"
           "  model       a synthetic 4-layer model with Llama-3.1-8B layer shapes: prefill/decode tokens/s,\n"
           "              KVzip compression / prefill, fused-scoring overhead, FastKV TTFT speedup;\n"
           "              --reps N rounds of every operation (default 3) after a warm-up round, each\n"
           "              ratio taken within a round and the median reported (about 2.5 min a round)\n"
           "  cache       decode over caches compressed by each policy at kept ratios 1, 0.5, 0.3, 0.1;\n"
           "              .kvz save and load speed against the read bandwidth\n"
           "  threads     decode steps over one shared cache from one host thread, then from four at\n"
           "              once: the times (about equal when nothing is oversubscribed) and whether every\n"
           "              answer stayed the same; perf/contention runs it alone and beside a busy core\n"
           "  payoff      the model of `model` at long context (--lengths, default 4096,16384,32768): the\n"
           "              full cache, KVzip at 0.3 and 0.5 and FastKV: build time, K/V bytes, decode ms a\n"
           "              token (the median of --reps N steps, default 16) and ÷ full, beside a model of a\n"
           "              memory-bound step ((weights + K/V) ÷ bandwidth); minutes per length (not CI);\n"
           "              --layers N: N layers of that shape (32: the whole 8B model, 15 GB of bf16 weights);\n"
           "              --model FILE: a GGUF model instead (its shapes; lengths up to its context)\n"
           "  --json      one JSON object per line\n"
           "  --filter    only the cases whose name contains one of the substrings\n"
           "  --reps N    exactly N timed repetitions per case (default: until --min-time, 0.5 s, with at\n"
           "              least 5; the prefill cases 2), each after one untimed warm-up\n"
           "seconds are the median of the timed repetitions; rates are computed from them. stream_read\n"
           "runs interleaved with the decode and dequant cases, sgemm_f32 with the prefill cases.\n");
}

/* Whether name contains one of the comma-separated substrings of filter (NULL: all). */
static int selected(const char *name, const char *filter)
{
    if (!filter)
        return 1;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", filter);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (*tok && strstr(name, tok))
            return 1;
    return 0;
}

/* s as the body of a JSON string (quotes, backslashes and control characters escaped). */
static void json_escape(char *dst, size_t size, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < size; s++) {
        const unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            dst[n++] = '\\', dst[n++] = (char)ch;
        else if (ch < 0x20)
            n += (size_t)snprintf(dst + n, size - n, "\\u%04x", ch);
        else
            dst[n++] = (char)ch;
    }
    dst[n] = '\0';
}

/* ---- kernels -------------------------------------------------------------------------- */

/* A target stated as a ratio of two figures measured in the same run. */
typedef struct target {
    const char *name, *num, *den, *what;
    int use_seconds; /* ratio of times instead of rates */
    double bound;
    int at_least;
} target;

static const target targets[] = {
    {"decode_vs_stream", "decode_bf16_32k", "stream_read", "decode bf16 GB/s / stream_read GB/s", 0, 0.85, 1},
    {"decode_f16_vs_stream", "decode_f16_32k", "stream_read", "decode f16 GB/s / stream_read GB/s", 0, 0.85, 1},
    {"decode_g7_vs_stream", "decode_bf16_32k_g7", "stream_read", "decode, group 7, GB/s / stream_read GB/s", 0,
     0.85, 1},
    {"decode_d64_vs_stream", "decode_bf16_32k_d64", "stream_read",
     "decode, head size 64, GB/s / stream_read GB/s", 0, 0.85, 1},
    {"decode_d256_vs_stream", "decode_bf16_32k_d256", "stream_read",
     "decode, head size 256, GB/s / stream_read GB/s", 0, 0.85, 1},
    {"decode_r0.3_vs_full", "decode_bf16_32k_r0.3", "decode_bf16_32k", "decode time at kept 0.3 / full", 1,
     0.35, 0},
    {"gemv_q8_0_vs_stream", "gemv_q8_0", "stream_read", "Q8_0 LM head GB/s / stream_read GB/s", 0, 0.85, 1},
    {"linear_512_vs_copy", "linear_q4_k_512", "linear_copy_512",
     "512-row product time, blocks as stored / a converted copy", 1, 1.10, 0},
    {"linear_2048_vs_copy", "linear_q4_k_2048", "linear_copy_2048",
     "2048-row product time, blocks as stored / a converted copy", 1, 1.10, 0},
    {"prefill_vs_sgemm", "prefill_attn_f32", "sgemm_f32", "prefill GFLOP/s / oneDNN sgemm GFLOP/s", 0, 0.60, 1},
    {"score_vs_prefill", "score_attn_f32", "prefill_attn_f32", "scoring time / plain prefill time", 1, 1.15, 0},
    /* a dequantizing pass moves its input and its output: half the read bandwidth for both */
    {"dequant_q4_0_vs_stream", "dequant_q4_0", "stream_read",
     "dequant Q4_0 GB/s (in + f32 out) / stream_read GB/s", 0, 0.5, 1},
    {"dequant_q4_1_vs_stream", "dequant_q4_1", "stream_read",
     "dequant Q4_1 GB/s (in + f32 out) / stream_read GB/s", 0, 0.5, 1},
    {"dequant_q5_0_vs_stream", "dequant_q5_0", "stream_read",
     "dequant Q5_0 GB/s (in + f32 out) / stream_read GB/s", 0, 0.5, 1},
    {"dequant_q5_1_vs_stream", "dequant_q5_1", "stream_read",
     "dequant Q5_1 GB/s (in + f32 out) / stream_read GB/s", 0, 0.5, 1},
    {"dequant_q8_0_vs_stream", "dequant_q8_0", "stream_read",
     "dequant Q8_0 GB/s (in + f32 out) / stream_read GB/s", 0, 0.5, 1},
    {"dequant_q2_k_vs_stream", "dequant_q2_k", "stream_read",
     "dequant Q2_K GB/s (in + f32 out) / stream_read GB/s", 0, 0.5, 1},
    {"dequant_q3_k_vs_stream", "dequant_q3_k", "stream_read",
     "dequant Q3_K GB/s (in + f32 out) / stream_read GB/s", 0, 0.5, 1},
    {"dequant_q4_k_vs_stream", "dequant_q4_k", "stream_read",
     "dequant Q4_K GB/s (in + f32 out) / stream_read GB/s", 0, 0.5, 1},
    {"dequant_q5_k_vs_stream", "dequant_q5_k", "stream_read",
     "dequant Q5_K GB/s (in + f32 out) / stream_read GB/s", 0, 0.5, 1},
    {"dequant_q6_k_vs_stream", "dequant_q6_k", "stream_read",
     "dequant Q6_K GB/s (in + f32 out) / stream_read GB/s", 0, 0.5, 1},
};

enum { MAX_CASES = 40 };

static int run_kernels(const bench_opts *o)
{
    size_t n;
    const kvz_bench_case *cases = kvz_bench_kernel_cases(&n);
    if (n > MAX_CASES)
        n = MAX_CASES;
    kvz_bench_result res[MAX_CASES];
    int have[MAX_CASES] = {0};
    char cpu_raw[256], cpu[512], dnnl[32];
    kvz_bench_cpu_model(cpu_raw, sizeof cpu_raw);
    json_escape(cpu, sizeof cpu, cpu_raw);
    kvz_bench_dnnl_version(dnnl, sizeof dnnl);
    const char *isa = kvz_isa_name(kvz_isa_active()), *plan = kvz_read_plan_name(kvz_read_plan_active());
    const int threads = kvz_num_threads();
    const char *version = kvz_version().string;
    if (!o->json) {
        char avail[64];
        kvz_cli_isa_available(avail, sizeof avail, 0);
        printf("libkvz %s  isa %s (available: %s)  read plan %s  threads %d  numa nodes %d\n", version, isa,
               avail, plan, threads, kvz_numa_nodes());
        printf("cpu %s  llc %zu MiB  avx512_bf16 %s\n", cpu_raw, kvz_bench_llc_bytes() >> 20,
               kvz_cpu_has_avx512_bf16() ? "yes" : "no");
        printf("built by %s%s, oneDNN %s\n", kvz_bench_compiler(),
#ifdef __OPTIMIZE__
               " (optimized)",
#else
               " (NOT optimized)",
#endif
               dnnl);
        printf("seconds: median of the timed repetitions after a warm-up; best: the fastest; each reference\n"
               "runs interleaved with the cases compared with it\n\n");
        printf("%-24s %12s %12s %10s %-8s %5s\n", "name", "seconds", "best", "rate", "unit", "reps");
    }
    /* groups measured together (interleaved): a reference (stream_read, sgemm_f32) and the
     * cases after it, up to the next reference */
    int failed = 0;
    for (size_t g0 = 0; g0 < n;) {
        size_t g1 = g0 + 1;
        while (g1 < n && cases[g1].kind != KVZ_BENCH_STREAM && cases[g1].kind != KVZ_BENCH_SGEMM)
            g1++;
        const kvz_bench_case *sel[MAX_CASES];
        kvz_bench_budget budget[MAX_CASES];
        kvz_bench_result out[MAX_CASES];
        int bad[MAX_CASES];
        size_t idx[MAX_CASES], m = 0;
        for (size_t i = g0; i < g1; i++) {
            if (!selected(cases[i].name, o->filter))
                continue;
            /* prefill at 32K is ~1 TFLOP, seconds per operation here: a warm-up and two runs */
            const int slow = cases[i].kind == KVZ_BENCH_PREFILL;
            budget[m] = slow ? (kvz_bench_budget){0.0, 2, 2} : (kvz_bench_budget){o->min_time, 5, 1000};
            if (o->reps > 0)
                budget[m] = (kvz_bench_budget){0.0, o->reps, o->reps};
            sel[m] = &cases[i], idx[m++] = i;
        }
        g0 = g1;
        if (!m)
            continue;
        if (kvz_bench_measure_interleaved(sel, budget, m, out, bad) != 0)
            failed = 1;
        for (size_t j = 0; j < m; j++) {
            const size_t i = idx[j];
            if (bad[j]) {
                if (o->json)
                    printf("{\"name\":\"%s\",\"error\":\"failed (see stderr)\",\"isa\":\"%s\","
                           "\"read_plan\":\"%s\",\"cpu\":\"%s\",\"threads\":%d}\n",
                           cases[i].name, isa, plan, cpu, threads);
                else
                    printf("%-24s %12s\n", cases[i].name, "FAILED");
                continue;
            }
            res[i] = out[j], have[i] = 1;
            if (o->json)
                printf("{\"name\":\"%s\",\"seconds\":%.6g,\"best_seconds\":%.6g,\"rate\":%.4g,\"unit\":\"%s\","
                       "\"work\":%.6g,\"reps\":%d,\"spread\":%.4g,\"libkvz\":\"%s\",\"isa\":\"%s\","
                       "\"read_plan\":\"%s\",\"cpu\":\"%s\",\"threads\":%d,\"compiler\":\"%s\"}\n",
                       cases[i].name, res[i].seconds, res[i].best, res[i].rate, res[i].unit, res[i].work,
                       res[i].reps, res[i].spread, version, isa, plan, cpu, threads, kvz_bench_compiler());
            else
                printf("%-24s %12.6f %12.6f %10.2f %-8s %5d\n", cases[i].name, res[i].seconds, res[i].best,
                       res[i].rate, res[i].unit, res[i].reps);
        }
        fflush(stdout);
    }
    int header = 0;
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        const kvz_bench_result *a = NULL, *b = NULL;
        for (size_t i = 0; i < n; i++) {
            if (have[i] && !strcmp(cases[i].name, targets[t].num))
                a = &res[i];
            if (have[i] && !strcmp(cases[i].name, targets[t].den))
                b = &res[i];
        }
        if (!a || !b)
            continue;
        const double v = targets[t].use_seconds ? a->seconds / b->seconds : a->rate / b->rate;
        const int met = targets[t].at_least ? v >= targets[t].bound : v <= targets[t].bound;
        const char *cmp = targets[t].at_least ? ">=" : "<=";
        if (o->json) { /* the spread of a ratio of two independent figures, to first order */
            printf("{\"name\":\"ratio_%s\",\"value\":%.4f,\"target\":%.2f,\"cmp\":\"%s\",\"met\":%s,"
                   "\"spread\":%.4g,\"reps\":%d,\"isa\":\"%s\",\"read_plan\":\"%s\",\"cpu\":\"%s\","
                   "\"threads\":%d}\n",
                   targets[t].name, v, targets[t].bound, cmp, met ? "true" : "false",
                   sqrt(a->spread * a->spread + b->spread * b->spread), a->reps < b->reps ? a->reps : b->reps,
                   isa, plan, cpu, threads);
            continue;
        }
        if (!header++)
            printf("\n%-22s %8s %9s\n", "target", "value", "bound");
        printf("%-22s %8.3f %s %6.2f  %-4s  %s\n", targets[t].name, v, cmp, targets[t].bound,
               met ? "PASS" : "MISS", targets[t].what);
    }
    return failed;
}

/* ---- cache (bench_cache.c) ------------------------------------------------------------- */

static int run_cache(const bench_opts *o) { return kvz_bench_cache(o->json); }

/* ---- model (bench_model.c) ------------------------------------------------------------- */

static int run_model(const bench_opts *o) { return kvz_bench_model(o->json, o->reps > 0 ? o->reps : 3); }

/* ---- threads (bench_threads.c) --------------------------------------------------------- */

static int run_threads(const bench_opts *o) { return kvz_bench_threads(o->json); }

/* ---- payoff (bench_payoff.c) ------------------------------------------------------------ */

static int run_payoff(const bench_opts *o)
{
    static const size_t dflt[] = {4096, 16384, 32768};
    return o->n_lengths ? kvz_bench_payoff(o->json, o->model, o->lengths, o->n_lengths, o->layers,
                                           o->reps > 0 ? o->reps : 16)
                        : kvz_bench_payoff(o->json, o->model, dflt, 3, o->layers, o->reps > 0 ? o->reps : 16);
}

/* Context lengths separated by commas into o; 0 or the count when one is not a whole number from 16
 * to 1M. */
static int parse_lengths(const char *s, bench_opts *o)
{
    o->n_lengths = 0;
    while (*s) {
        char *end;
        const unsigned long long v = strtoull(s, &end, 10);
        if (end == s || (*end && *end != ',') || v < 16 || v > (1ull << 20) || o->n_lengths == MAX_LENGTHS)
            return 0;
        o->lengths[o->n_lengths++] = (size_t)v;
        s = *end ? end + 1 : end;
    }
    return (int)o->n_lengths;
}

static const subcommand subcommands[] = {
    {"kernels", OPT_JSON | OPT_FILTER | OPT_REPS | OPT_MIN_TIME, run_kernels},
    {"cache", OPT_JSON, run_cache},
    {"model", OPT_JSON | OPT_REPS, run_model},
    {"threads", OPT_JSON, run_threads},
    {"payoff", OPT_JSON | OPT_REPS | OPT_LENGTHS | OPT_LAYERS | OPT_MODEL, run_payoff},
};

/* Parses a positive integer; 0 when s is not one. */
static int parse_reps(const char *s)
{
    char *end;
    const long v = strtol(s, &end, 10);
    return *s && !*end && v > 0 && v <= 1000000 ? (int)v : 0;
}

int kvz_cmd_bench(int argc, char **argv)
{
    if (kvz_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const subcommand *sc = NULL;
    for (size_t i = 0; argc >= 2 && i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (!strcmp(argv[1], subcommands[i].name))
            sc = &subcommands[i];
    if (!sc) {
        if (argc >= 2)
            fprintf(stderr, "kvz bench: unknown suite '%s' (kernels, cache, model, threads or payoff)\n", argv[1]);
        usage(stderr);
        return 2;
    }
    bench_opts o = {.json = 0, .filter = NULL, .reps = 0, .min_time = 0.5};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        const char *bad = NULL; /* what the value must be, when it is not */
        if ((sc->options & OPT_JSON) && !strcmp(a, "--json")) {
            o.json = 1;
            continue;
        }
        if ((sc->options & OPT_FILTER) && !strcmp(a, "--filter") && val)
            o.filter = val;
        else if ((sc->options & OPT_REPS) && !strcmp(a, "--reps") && val)
            bad = (o.reps = parse_reps(val)) > 0 ? NULL : "a whole number from 1 to 1000000";
        else if ((sc->options & OPT_LENGTHS) && !strcmp(a, "--lengths") && val)
            bad = parse_lengths(val, &o) ? NULL : "up to 16 whole numbers from 16 to 1048576, separated by commas";
        else if ((sc->options & OPT_LAYERS) && !strcmp(a, "--layers") && val)
            bad = (o.layers = strtoul(val, &end, 10)) >= 1 && o.layers <= 128 && end != val && !*end &&
                          *val != '-'
                      ? NULL
                      : "a whole number from 1 to 128";
        else if ((sc->options & OPT_MODEL) && !strcmp(a, "--model") && val)
            o.model = val;
        else if ((sc->options & OPT_MIN_TIME) && !strcmp(a, "--min-time") && val)
            bad = (o.min_time = strtod(val, &end)) >= 0 && end != val && !*end ? NULL
                                                                               : "a number of seconds >= 0";
        else {
            const int takes_value = !strcmp(a, "--filter") || !strcmp(a, "--reps") ||
                                    !strcmp(a, "--min-time") || !strcmp(a, "--lengths") ||
                                    !strcmp(a, "--layers") || !strcmp(a, "--model");
            fprintf(stderr,
                    takes_value && !val ? "kvz bench %s: %s needs a value\n"
                                        : "kvz bench %s: '%s' is not an option of this suite\n",
                    sc->name, a);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "kvz bench %s: %s must be %s, not '%s'\n", sc->name, a, bad, val);
            return 2;
        }
        i++;
    }
    if (o.model && o.layers) {
        fprintf(stderr, "kvz bench %s: --layers is the synthetic model's; a --model file has its own\n",
                sc->name);
        return 2;
    }
    return sc->run(&o);
}
