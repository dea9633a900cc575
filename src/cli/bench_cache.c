/* kvz bench cache: decode over caches compressed by each policy at several kept ratios, and .kvz save/load
 * speed. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/bench_cases.h"
#include "cli/cache_cases.h"
#include "cli/cli.h"
#include "kvz.h"

enum { H = KVZ_CC_H, G = KVZ_CC_G, D = KVZ_CC_D, N = KVZ_CC_N };

static double now(void) { return omp_get_wtime(); }

/* Median time of one decode step over the cache (-1 on failure), and its spread. */
static double decode_time(const kvz_cache *c, int reps, double *spread)
{
    kvz_cc_decoder *d = kvz_cc_decoder_create(c);
    double *t = malloc((size_t)reps * sizeof *t), median = -1;
    for (int r = -1; d && t && r < reps; r++) { /* r = -1: warm-up */
        const double t0 = now();
        if (kvz_cc_decode_step(d) != 0)
            break;
        if (r >= 0)
            t[r] = now() - t0;
        if (r == reps - 1) {
            median = kvz_bench_median(t, reps);
            *spread = kvz_bench_spread(t, reps);
        }
    }
    free(t);
    kvz_cc_decoder_destroy(d);
    return median;
}

int kvz_bench_cache(int json)
{
    const kvz_policy *policies = kvz_cc_policies;
    const double *ratios = kvz_cc_ratios;
    char cpu[256];
    kvz_bench_cpu_model(cpu, sizeof cpu);
    const char *isa = kvz_isa_name(kvz_isa_active()), *plan = kvz_read_plan_name(kvz_read_plan_active());
    kvz_bench_result stream;
    size_t n_cases;
    const kvz_bench_case *cases = kvz_bench_kernel_cases(&n_cases);
    if (kvz_bench_measure(&cases[0], 0.5, 5, 50, &stream) != 0) /* stream_read */
        return 1;
    if (!json)
        printf("libkvz %s  isa %s  read plan %s  cpu \"%s\"  threads %d  stream_read %.1f GB/s\n"
               "one layer: %d KV heads, G = %d, d = %d, %d tokens, bf16\n%-20s %6s %10s %10s %12s %8s\n",
               kvz_version().string, isa, plan, cpu, kvz_num_threads(), stream.rate, H, G, D, N, "policy",
               "ratio", "kept", "MB read", "decode ms", "vs full");
    enum { REPS = 41 };
    double full_time = 0, full_spread = 0, spread = 0;
    int failed = 0;
    for (size_t p = 0; p < sizeof kvz_cc_policies / sizeof kvz_cc_policies[0] && !failed; p++)
        for (size_t r = 0; r < sizeof kvz_cc_ratios / sizeof kvz_cc_ratios[0] && !failed; r++) {
            if (ratios[r] == 1.0 && p > 0)
                continue; /* one full-cache baseline */
            kvz_cache *c = kvz_cc_build();
            if (!c)
                return kvz_cli_error("bench cache: cannot build the cache");
            const kvz_policy pol = ratios[r] == 1.0 ? KVZ_POLICY_FULL : policies[p];
            size_t kept = 0;
            if (kvz_cc_compress(c, pol, ratios[r], &kept) != 0) {
                fprintf(stderr, "kvz bench cache: %s\n", kvz_last_error());
                failed = 1;
            }
            const double t = failed ? -1 : decode_time(c, REPS, &spread);
            if (t < 0)
                failed = 1;
            if (ratios[r] == 1.0)
                full_time = t, full_spread = spread;
            const double mb = kvz_cc_decode_bytes(kept) / 1e6;
            const char *name = kvz_policy_name(pol);
            if (!failed && json)
                printf(
                    "{\"name\":\"decode_cache/%s/%.1f\",\"seconds\":%.6g,\"rate\":%.4g,\"unit\":\"GB/s\","
                    "\"reps\":%d,\"spread\":%.4g,\"kept_ratio\":%.4f,\"vs_full\":%.4f,\"vs_full_spread\":%.4g,"
                    "\"isa\":\"%s\",\"read_plan\":\"%s\",\"cpu\":\"%s\",\"threads\":%d}\n",
                    name, ratios[r], t, mb / 1e3 / t, REPS, spread, (double)kept / (H * N), t / full_time,
                    sqrt(spread * spread + full_spread * full_spread), isa, plan, cpu, kvz_num_threads());
            else if (!failed)
                printf("%-20s %6.1f %10.3f %10.1f %12.3f %8.3f\n", name, ratios[r], (double)kept / (H * N), mb,
                       t * 1e3, t / full_time);
            kvz_cache_destroy(c);
        }
    /* .kvz save and load of the full layer, against the read bandwidth */
    kvz_cache *c = kvz_cc_build();
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
    return failed;
}
