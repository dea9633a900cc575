/* The perf/ suite's own cases (Qwen2.5-7B shapes, contexts 4K..128K), beside those of `kvz bench kernels`. */
#ifndef KVZ_PERF_CASES_H
#define KVZ_PERF_CASES_H

#include "cli/bench_cases.h"

#ifdef __cplusplus
extern "C" {
#endif

const kvz_bench_case *kvz_perf_cases(size_t *n);

#ifdef __cplusplus
}
#endif

#endif
