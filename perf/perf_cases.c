/* The perf/ suite's own cases: decode over 4K..128K contexts, full and kept 0.3, for Llama-3.1-8B
 * and Qwen2.5-7B layer shapes, and prefill/scoring chunks at shorter contexts. */
#include "perf/perf_cases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvz.h"

enum { N_CTX = 6, MAX_CASES = 64 };
static const size_t contexts[N_CTX] = {4096, 8192, 16384, 32768, 65536, 131072};

static kvz_bench_case cases[MAX_CASES];
static char names[MAX_CASES][48];
static size_t n_cases;

static void add(kvz_bench_case c, const char *fmt, const char *model, size_t ctx)
{
    if (n_cases == MAX_CASES)
        return;
    snprintf(names[n_cases], sizeof names[0], fmt, model, ctx / 1024);
    c.name = names[n_cases];
    cases[n_cases++] = c;
}

const kvz_bench_case *kvz_perf_cases(size_t *n)
{
    if (!n_cases) {
        /* name, KV heads, group: one layer of each model, head_dim 128 */
        const struct {
            const char *name;
            size_t heads, group;
        } models[2] = {{"llama31_8b", 8, 4}, {"qwen25_7b", 4, 7}};
        for (int m = 0; m < 2; m++) {
            for (int i = 0; i < N_CTX; i++) {
                kvz_bench_case c = {0};
                c.kind = KVZ_BENCH_DECODE, c.kv_heads = models[m].heads, c.group = models[m].group;
                c.head_dim = 128, c.context = contexts[i], c.dtype = KVZ_DTYPE_BF16, c.kept = 1.0;
                add(c, "decode_bf16/%s/%zuk", models[m].name, contexts[i]);
                c.kept = 0.3;
                add(c, "decode_bf16_r0.3/%s/%zuk", models[m].name, contexts[i]);
            }
            /* a 2048-token chunk at 4K and 16K keys: prefill and KVzip scoring */
            for (int i = 0; i < 3; i += 2) {
                kvz_bench_case c = {0};
                c.kind = KVZ_BENCH_PREFILL, c.kv_heads = models[m].heads, c.group = models[m].group;
                c.head_dim = 128, c.context = contexts[i], c.queries = 2048, c.dtype = KVZ_DTYPE_F32;
                add(c, "prefill_f32/%s/%zuk", models[m].name, contexts[i]);
                c.scoring = 1;
                add(c, "score_f32/%s/%zuk", models[m].name, contexts[i]);
            }
        }
    }
    *n = n_cases;
    return cases;
}
