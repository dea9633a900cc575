/* Benchmark cases of `kvz bench` and perf/: each sets up its inputs once and runs one operation per call. */
#ifndef KVZ_BENCH_CASES_H
#define KVZ_BENCH_CASES_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a case measures: one operation per run(), `work` units (bytes or flops) per operation. */
typedef enum kvz_bench_kind {
    KVZ_BENCH_STREAM,  /* read a large array: bytes */
    KVZ_BENCH_SGEMM,   /* oneDNN sgemm m = n = k = size: flops */
    KVZ_BENCH_DECODE,  /* one decode step over all KV heads of a layer: K/V bytes read */
    KVZ_BENCH_PREFILL, /* a query chunk against the cache (optionally KVzip scoring): flops */
} kvz_bench_kind;

typedef struct kvz_bench_case {
    const char *name;
    kvz_bench_kind kind;
    size_t kv_heads, group, head_dim; /* attention shapes */
    size_t context;                   /* cached tokens per KV head (decode), keys (prefill) */
    size_t queries;                   /* prefill chunk */
    double kept;                      /* decode: mean kept ratio over heads (1 = full) */
    int dtype;                        /* kvz_dtype of K/V */
    int scoring;                      /* prefill: KVzip scoring mode */
    size_t size;                      /* stream bytes or sgemm dimension */
} kvz_bench_case;

typedef struct kvz_bench_result {
    double seconds; /* per operation: median of the timed repetitions */
    double work;    /* bytes or flops per operation */
    double rate;    /* work / seconds / 1e9 */
    const char *unit;
    int reps;
} kvz_bench_result;

/* The cases of `kvz bench kernels`, in run order. */
const kvz_bench_case *kvz_bench_kernel_cases(size_t *n);

/* Opaque prepared inputs of a case. */
typedef struct kvz_bench_state kvz_bench_state;

/* Allocates and fills a case's inputs; NULL (with a message on stderr) on failure. */
kvz_bench_state *kvz_bench_setup(const kvz_bench_case *c);
/* Runs one operation; 0 on success, -1 (with a message on stderr) on failure. */
int kvz_bench_run(kvz_bench_state *s);
/* Bytes or flops per operation, and the unit of its rate ("GB/s" or "GFLOP/s"). */
double kvz_bench_work(const kvz_bench_state *s, const char **unit);
void kvz_bench_teardown(kvz_bench_state *s);

/* One warm-up, then repetitions until min_seconds have passed and at least min_reps ran
 * (at most max_reps). Returns 0 or -1 when the case failed. */
int kvz_bench_measure(const kvz_bench_case *c, double min_seconds, int min_reps, int max_reps,
                      kvz_bench_result *r);

/* "model name" of /proc/cpuinfo (or "unknown"), into buf. */
void kvz_bench_cpu_model(char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
