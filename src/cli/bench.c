/* kvz bench: runs benchmark suites and reports each figure with the ratios the targets are stated in. */
#include <stdio.h>
#include <string.h>

#include "cli/bench_cases.h"
#include "cli/cli.h"
#include "kvz.h"

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

static void usage(FILE *f)
{
    fprintf(f, "usage: kvz bench kernels [--json] [--filter SUBSTR[,SUBSTR...]] [--min-time SECONDS]\n"
               "       kvz bench cache [--json]\n"
               "  kernels   kernel benchmarks with the machine's read bandwidth and oneDNN sgemm rate\n"
               "  cache     decode over caches compressed by each policy at kept ratios 1, 0.5, 0.3, 0.1;\n"
               "            .kvz save and load speed against the read bandwidth\n"
               "  --json    one JSON object per line\n");
}

/* A target stated as a ratio of two figures measured in the same run. */
typedef struct target {
    const char *name, *num, *den, *what;
    int use_seconds; /* ratio of times instead of rates */
    double bound;
    int at_least;
} target;

static const target targets[] = {
    {"decode_vs_stream", "decode_bf16_32k", "stream_read", "decode bf16 GB/s / stream_read GB/s", 0, 0.85, 1},
    {"decode_r0.3_vs_full", "decode_bf16_32k_r0.3", "decode_bf16_32k", "decode time at kept 0.3 / full", 1,
     0.35, 0},
    {"prefill_vs_sgemm", "prefill_attn_f32", "sgemm_f32", "prefill GFLOP/s / oneDNN sgemm GFLOP/s", 0, 0.60, 1},
    {"score_vs_prefill", "score_attn_f32", "prefill_attn_f32", "scoring time / plain prefill time", 1, 1.15, 0},
};

static int run_kernels(int json, const char *filter, double min_time)
{
    size_t n;
    const kvz_bench_case *cases = kvz_bench_kernel_cases(&n);
    kvz_bench_result res[16];
    int have[16] = {0};
    char cpu[256];
    kvz_bench_cpu_model(cpu, sizeof cpu);
    const char *isa = kvz_isa_name(kvz_isa_active());
    const int threads = kvz_num_threads();
    if (!json) {
        printf("libkvz %s  isa %s  cpu \"%s\"  threads %d\n", kvz_version().string, isa, cpu, threads);
#ifdef __VERSION__
        printf("compiler %s\n", __VERSION__);
#endif
        printf("%-24s %12s %12s %-8s %5s\n", "name", "seconds", "rate", "unit", "reps");
    }
    int failed = 0;
    for (size_t i = 0; i < n && i < 16; i++) {
        if (!selected(cases[i].name, filter))
            continue;
        /* prefill at 32K is ~1 TFLOP: a warm-up and two timed runs are enough */
        const int slow = cases[i].kind == KVZ_BENCH_PREFILL;
        if (kvz_bench_measure(&cases[i], slow ? 0.0 : min_time, slow ? 2 : 5, slow ? 2 : 200, &res[i]) != 0) {
            failed = 1;
            continue;
        }
        have[i] = 1;
        if (json)
            printf("{\"name\":\"%s\",\"seconds\":%.6g,\"rate\":%.4g,\"unit\":\"%s\",\"reps\":%d,\"isa\":\"%s\","
                   "\"cpu\":\"%s\",\"threads\":%d}\n",
                   cases[i].name, res[i].seconds, res[i].rate, res[i].unit, res[i].reps, isa, cpu, threads);
        else
            printf("%-24s %12.6f %12.2f %-8s %5d\n", cases[i].name, res[i].seconds, res[i].rate, res[i].unit,
                   res[i].reps);
        fflush(stdout);
    }
    if (!json)
        printf("\n%-22s %8s %8s  %s\n", "target", "value", "bound", "");
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        const kvz_bench_result *a = NULL, *b = NULL;
        for (size_t i = 0; i < n && i < 16; i++) {
            if (have[i] && !strcmp(cases[i].name, targets[t].num))
                a = &res[i];
            if (have[i] && !strcmp(cases[i].name, targets[t].den))
                b = &res[i];
        }
        if (!a || !b)
            continue;
        const double v = targets[t].use_seconds ? a->seconds / b->seconds : a->rate / b->rate;
        const int met = targets[t].at_least ? v >= targets[t].bound : v <= targets[t].bound;
        if (json)
            printf("{\"name\":\"ratio_%s\",\"value\":%.4f,\"target\":\"%s %.2f\",\"met\":%s,\"isa\":\"%s\","
                   "\"threads\":%d}\n",
                   targets[t].name, v, targets[t].at_least ? ">=" : "<=", targets[t].bound,
                   met ? "true" : "false", isa, threads);
        else
            printf("%-22s %8.3f %s%6.2f  %s  (%s)\n", targets[t].name, v,
                   targets[t].at_least ? ">=" : "<=", targets[t].bound, met ? "met" : "MISSED",
                   targets[t].what);
    }
    return failed;
}

int kvz_cmd_bench(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "kernels") != 0 && strcmp(argv[1], "cache") != 0)) {
        usage(stderr);
        return 2;
    }
    const int cache = !strcmp(argv[1], "cache");
    int json = 0;
    const char *filter = NULL;
    double min_time = 0.5;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc)
            filter = argv[++i];
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc && sscanf(argv[i + 1], "%lf", &min_time) == 1)
            i++;
        else {
            fprintf(stderr, "kvz bench: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    return cache ? kvz_bench_cache(json) : run_kernels(json, filter, min_time);
}
