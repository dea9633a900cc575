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
    KVZ_BENCH_DEQUANT, /* GGUF blocks of qtype into dtype (f32 or bf16): bytes read + bytes written */
    KVZ_BENCH_GEMV,    /* a matrix of `context` rows of head_dim values in qtype blocks times one f32 row:
                          bytes of blocks */
    KVZ_BENCH_LINEAR,  /* the same matrix times `queries` f32 rows (a prefill chunk's product): flops */
} kvz_bench_kind;

typedef struct kvz_bench_case {
    const char *name;
    kvz_bench_kind kind;
    size_t kv_heads, group, head_dim; /* attention shapes */
    size_t context;                   /* cached tokens per KV head (decode), keys (prefill) */
    size_t queries;                   /* prefill chunk */
    double kept;                      /* decode: mean kept ratio over heads (1 = full) */
    int hot;        /* decode: one copy of K/V, read again and again (cache-resident when it fits) */
    int dtype;      /* kvz_dtype of K/V; dequant: of the output */
    unsigned qtype; /* dequant, gemv, linear: the ggml type of the blocks (KVZ_GGML_*) */
    int copy;       /* linear: over a copy converted beforehand (in the type the blocks' products run
                       in, kvz_linear_dense_format) instead of the blocks */
    int scoring;    /* prefill: KVzip scoring mode */
    size_t size;    /* stream bytes (at least; 8x the LLC when larger) or sgemm dimension */
} kvz_bench_case;

typedef struct kvz_bench_result {
    double seconds; /* per operation: median of the timed repetitions */
    double best;    /* per operation: fastest timed repetition */
    double work;    /* bytes or flops per operation */
    double rate;    /* work / seconds / 1e9 (from the median) */
    const char *unit;
    int reps;      /* timed repetitions, after one untimed warm-up */
    double spread; /* the run's noise: interquartile range of the times / their median */
} kvz_bench_result;

/* The cases of `kvz bench kernels`, in run order (stream_read first). */
const kvz_bench_case *kvz_bench_kernel_cases(size_t *n);

/* Opaque prepared inputs of a case. */
typedef struct kvz_bench_state kvz_bench_state;

/* Allocates and fills a case's inputs; NULL (with a message on stderr) on failure. Large
 * buffers are 2 MiB aligned and advised for transparent huge pages, the bandwidth reference
 * and the kernels alike. Decode inputs are several layers' worth of K/V, at least 8x the
 * last-level cache in all, used in turn: every step reads cold memory, as in a model where
 * the other layers run in between. */
kvz_bench_state *kvz_bench_setup(const kvz_bench_case *c);
/* Runs one operation; 0 on success, -1 (with a message on stderr) on failure. */
int kvz_bench_run(kvz_bench_state *s);
/* Bytes or flops per operation, and the unit of its rate ("GB/s" or "GFLOP/s"). */
double kvz_bench_work(const kvz_bench_state *s, const char **unit);
/* The median of v[0..n), n >= 1; sorts v in place. */
double kvz_bench_median(double *v, int n);
/* (q3 - q1) / median of n >= 1 values sorted ascending (quartiles by rank; 0 for one value). */
double kvz_bench_spread(const double *sorted, int n);
void kvz_bench_teardown(kvz_bench_state *s);

/* One warm-up, then repetitions until min_seconds have passed and at least min_reps ran
 * (at most max_reps). Returns 0 or -1 when the case failed (no figure then). */
int kvz_bench_measure(const kvz_bench_case *c, double min_seconds, int min_reps, int max_reps,
                      kvz_bench_result *r);

/* How long to measure a case: until min_seconds of timed runs and at least min_reps runs,
 * or max_reps runs. */
typedef struct kvz_bench_budget {
    double min_seconds;
    int min_reps, max_reps;
} kvz_bench_budget;

/* Measures n cases together: all are set up and warmed up, then they run in rounds, each case
 * about an eighth of its min_seconds per round (at least once), until every budget is spent.
 * A figure and the reference it is divided by thus sample the same stretch of time on a
 * host whose speed drifts. failed[i] is set for the cases that failed (their results are
 * left alone); returns -1 when any did, else 0. */
int kvz_bench_measure_interleaved(const kvz_bench_case *const *cases, const kvz_bench_budget *budgets, size_t n,
                                  kvz_bench_result *results, int *failed);

/* "model name" of /proc/cpuinfo (or "unknown"), into buf. */
void kvz_bench_cpu_model(char *buf, size_t size);

/* Bytes of the last-level cache(s) of the machine (all instances), 32 MiB when unknown. */
size_t kvz_bench_llc_bytes(void);

/* "isa=<level> threads=<n>": what every figure was measured with, for labels. */
void kvz_bench_label(char *buf, size_t size);

/* The compiler that built the benchmarks, e.g. "gcc 12.2.0". */
const char *kvz_bench_compiler(void);

/* The linked oneDNN's version, e.g. "2.6.3". */
void kvz_bench_dnnl_version(char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
