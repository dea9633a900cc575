/* The perf/ suite's own cases: decode over 4K..128K contexts, full and kept 0.3, for Llama-3.1-8B
 * and Qwen2.5-7B layer shapes, prefill/scoring chunks at 8K and 16K keys, decode at every
 * group size 1..8 (the kernels tile query rows: a group that is not a whole tile shows here), and
 * GGUF dequantization into bf16 (`kvz bench kernels` has it into f32). */
#include "perf/perf_cases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvz.h"
#include "model/gguf.h"

enum { N_CTX = 6, N_PREFILL = 2, MAX_GROUP = 8, MAX_CASES = 64, CHUNK = 2048 };
static const size_t contexts[N_CTX] = {4096, 8192, 16384, 32768, 65536, 131072};
/* keys of the prefill chunks: the 2048 queries are the last of them; a scoring chunk needs
 * the 64-token sink and the 2000-token context chunk before the queries (n_k >= 4112) */
static const size_t prefill_contexts[N_PREFILL] = {8192, 16384};

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

static void add_group(kvz_bench_case c)
{
    if (n_cases == MAX_CASES)
        return;
    snprintf(names[n_cases], sizeof names[0], "decode_bf16_group/%zu/%zuk", c.group, c.context / 1024);
    c.name = names[n_cases];
    cases[n_cases++] = c;
}

/* Not thread-safe on the first call (the table is built then); the shim calls it from main. */
const kvz_bench_case *kvz_perf_cases(size_t *n)
{
    if (!n_cases) {
        /* one layer of each model, head_dim 128 */
        static const struct {
            const char *name;
            size_t heads, group;
        } models[2] = {{"llama31_8b", 8, 4}, {"qwen25_7b", 4, 7}};
        for (int m = 0; m < 2; m++) {
            for (int i = 0; i < N_CTX; i++) {
                kvz_bench_case c;
                memset(&c, 0, sizeof c);
                c.kind = KVZ_BENCH_DECODE, c.kv_heads = models[m].heads, c.group = models[m].group;
                c.head_dim = 128, c.context = contexts[i], c.dtype = KVZ_DTYPE_BF16, c.kept = 1.0;
                add(c, "decode_bf16/%s/%zuk", models[m].name, contexts[i]);
                c.kept = 0.3;
                add(c, "decode_bf16_r0.3/%s/%zuk", models[m].name, contexts[i]);
            }
            for (int i = 0; i < N_PREFILL; i++) {
                kvz_bench_case c;
                memset(&c, 0, sizeof c);
                c.kind = KVZ_BENCH_PREFILL, c.kv_heads = models[m].heads, c.group = models[m].group;
                c.head_dim = 128, c.context = prefill_contexts[i], c.queries = CHUNK, c.dtype = KVZ_DTYPE_F32;
                add(c, "prefill_f32/%s/%zuk", models[m].name, prefill_contexts[i]);
                c.scoring = 1;
                add(c, "score_f32/%s/%zuk", models[m].name, prefill_contexts[i]);
            }
        }
        /* 4 KV heads at 32K tokens, G = 1 .. 8 */
        for (size_t g = 1; g <= MAX_GROUP; g++) {
            kvz_bench_case c;
            memset(&c, 0, sizeof c);
            c.kind = KVZ_BENCH_DECODE, c.kv_heads = 4, c.group = g, c.head_dim = 128, c.context = 32768;
            c.dtype = KVZ_DTYPE_BF16, c.kept = 1.0;
            add_group(c);
        }
        static const unsigned qtypes[] = {KVZ_GGML_Q4_0, KVZ_GGML_Q4_1, KVZ_GGML_Q5_0, KVZ_GGML_Q5_1,
                                          KVZ_GGML_Q8_0, KVZ_GGML_Q2_K, KVZ_GGML_Q3_K, KVZ_GGML_Q4_K,
                                          KVZ_GGML_Q5_K, KVZ_GGML_Q6_K};
        for (size_t t = 0; t < sizeof qtypes / sizeof qtypes[0] && n_cases < MAX_CASES; t++) {
            kvz_bench_case c;
            memset(&c, 0, sizeof c);
            c.kind = KVZ_BENCH_DEQUANT, c.qtype = qtypes[t], c.dtype = KVZ_DTYPE_BF16;
            snprintf(names[n_cases], sizeof names[0], "dequant_bf16/%s", kvz_ggml_type_of(qtypes[t])->name);
            c.name = names[n_cases];
            cases[n_cases++] = c;
        }
    }
    *n = n_cases;
    return cases;
}
