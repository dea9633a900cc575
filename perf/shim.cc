// The Google Benchmark shim: registers the C benchmark cases (src/cli/bench_cases.h, perf_cases.h).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "cli/bench_cases.h"
#include "cli/cache_cases.h"
#include "cli/model_cases.h"
#include "kvz.h"
#include "perf/perf_cases.h"

namespace
{

// The prepared inputs of the case being run. Google Benchmark calls a benchmark's function
// several times (to find the iteration count, then per repetition): the inputs are set up
// and warmed up once per case and torn down when the next case starts, so that at most one
// case's buffers are alive.
const kvz_bench_case *current_case = nullptr;
kvz_bench_state *current_state = nullptr;

void release_current()
{
    kvz_bench_teardown(current_state);
    current_state = nullptr;
    current_case = nullptr;
}

kvz_bench_state *prepare(const kvz_bench_case *c)
{
    if (current_case == c && current_state)
        return current_state;
    release_current();
    kvz_bench_state *s = kvz_bench_setup(c);
    if (!s)
        return nullptr;
    if (kvz_bench_run(s) != 0) { // the warm-up: first touch of scratch, oneDNN's JIT
        kvz_bench_teardown(s);
        return nullptr;
    }
    current_case = c;
    current_state = s;
    return s;
}

// Runs one case: each iteration is one library operation, and the rate counter is its bytes
// or flops per second (powers of 1000: GB/s and GFLOP/s as `kvz bench` prints them).
void run_case(benchmark::State &st, const kvz_bench_case *c)
{
    kvz_bench_state *s = prepare(c);
    if (!s) {
        st.SkipWithError("setup or warm-up failed (see stderr)");
        return;
    }
    const char *unit = nullptr;
    const double work = kvz_bench_work(s, &unit);
    for (auto _ : st)
        if (kvz_bench_run(s) != 0) {
            st.SkipWithError("run failed (see stderr)");
            release_current();
            return;
        }
    const bool bytes = std::string(unit) == "GB/s";
    st.counters[bytes ? "bytes" : "flops"] = benchmark::Counter(
        work * static_cast<double>(st.iterations()), benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
    char label[64];
    kvz_bench_label(label, sizeof label);
    st.SetLabel(label);
}

void register_cases(const kvz_bench_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const kvz_bench_case *c = &cases[i];
        // OpenMP runs the operation on every thread: wall time, not this thread's CPU time
        benchmark::RegisterBenchmark(c->name, [c](benchmark::State &st) { run_case(st, c); })
            ->UseRealTime()
            ->Unit(c->kind == KVZ_BENCH_DECODE ? benchmark::kMicrosecond : benchmark::kMillisecond)
            ->MinTime(c->kind == KVZ_BENCH_PREFILL ? 1.0 : 0.5);
    }
}

// Decode over one layer compressed by each policy at each kept ratio (cli/cache_cases.h):
// the cache is built and compressed once per case; an iteration is one decode step, and
// the rate is the K/V bytes of the kept rows per second.
void run_cache_case(benchmark::State &st, kvz_policy policy, double ratio)
{
    release_current(); // at most one case's buffers alive
    kvz_cache *c = kvz_cc_build();
    size_t kept = 0;
    if (!c || kvz_cc_compress(c, policy, ratio, &kept) != 0) {
        kvz_cache_destroy(c);
        st.SkipWithError("cache build or compression failed");
        return;
    }
    kvz_cc_decoder *d = kvz_cc_decoder_create(c);
    if (!d || kvz_cc_decode_step(d) != 0) { // warm-up
        kvz_cc_decoder_destroy(d);
        kvz_cache_destroy(c);
        st.SkipWithError("decode failed");
        return;
    }
    for (auto _ : st)
        if (kvz_cc_decode_step(d) != 0) {
            st.SkipWithError("decode failed");
            break;
        }
    st.counters["bytes"] = benchmark::Counter(kvz_cc_decode_bytes(kept) * static_cast<double>(st.iterations()),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
    st.counters["kept_ratio"] = static_cast<double>(kept) / (KVZ_CC_H * static_cast<double>(KVZ_CC_N));
    kvz_cc_decoder_destroy(d);
    kvz_cache_destroy(c);
}

void register_cache_cases()
{
    for (size_t p = 0; p < sizeof kvz_cc_policies / sizeof kvz_cc_policies[0]; p++)
        for (size_t r = 0; r < sizeof kvz_cc_ratios / sizeof kvz_cc_ratios[0]; r++) {
            const double ratio = kvz_cc_ratios[r];
            if (ratio >= 1.0 && p > 0)
                continue; // one full-cache baseline
            const kvz_policy pol = ratio >= 1.0 ? KVZ_POLICY_FULL : kvz_cc_policies[p];
            char name[64];
            std::snprintf(name, sizeof name, "decode_cache/%s/%.1f", kvz_policy_name(pol), ratio);
            benchmark::RegisterBenchmark(name, [pol, ratio](benchmark::State &st) { run_cache_case(st, pol, ratio); })
                ->UseRealTime()
                ->Unit(benchmark::kMicrosecond)
                ->MinTime(0.5);
        }
}

// The model runner on the synthetic model of cli/model_cases.h. Each operation takes seconds:
// one warm-up (oneDNN primitives, first touch), then timed iterations of one operation each;
// the prefilled cache the decode and pass cases need is made in the warm-up.
kvz_mc *model_cases = nullptr;

using mc_op = kvz_status (*)(kvz_mc *, double *);
kvz_status op_prefill(kvz_mc *mc, double *s) { return kvz_mc_prefill(mc, s); }
kvz_status op_decode(kvz_mc *mc, double *s) { return kvz_mc_decode_step(mc, s); }
kvz_status op_scored(kvz_mc *mc, double *s) { return kvz_mc_passes(mc, 1, s); }
kvz_status op_unscored(kvz_mc *mc, double *s) { return kvz_mc_passes(mc, 0, s); }
kvz_status op_kvzip(kvz_mc *mc, double *s) { return kvz_mc_kvzip(mc, s, nullptr); }
kvz_status op_fastkv(kvz_mc *mc, double *s) { return kvz_mc_fastkv(mc, s); }

void run_model_case(benchmark::State &st, mc_op op)
{
    release_current();
    double t = 0;
    if ((!model_cases && kvz_mc_create(&model_cases) != KVZ_OK) || kvz_mc_prefill(model_cases, &t) != KVZ_OK ||
        op(model_cases, &t) != KVZ_OK) {
        st.SkipWithError(kvz_last_error());
        return;
    }
    for (auto _ : st) {
        if (op(model_cases, &t) != KVZ_OK) {
            st.SkipWithError(kvz_last_error());
            break;
        }
        st.SetIterationTime(t);
    }
    st.counters["tokens"] = benchmark::Counter(KVZ_MC_CONTEXT * static_cast<double>(st.iterations()),
                                               benchmark::Counter::kIsRate);
}

void register_model_cases()
{
    static const struct {
        const char *name;
        mc_op op;
        int iterations;
    } cases[] = {{"model/prefill", op_prefill, 2},
                 {"model/decode_step", op_decode, 16},
                 {"model/kvzip_passes_scored", op_scored, 1},
                 {"model/kvzip_passes_unscored", op_unscored, 1},
                 {"model/kvzip_compress_r0.3", op_kvzip, 1},
                 {"model/fastkv_ttft_tsp0.2", op_fastkv, 2}};
    for (const auto &c : cases)
        benchmark::RegisterBenchmark(c.name, [op = c.op](benchmark::State &st) { run_model_case(st, op); })
            ->UseManualTime()
            ->Iterations(c.iterations)
            ->Unit(benchmark::kMillisecond);
}

} // namespace

int main(int argc, char **argv)
{
    char cpu[256], dnnl[32], llc[32];
    kvz_bench_cpu_model(cpu, sizeof cpu);
    kvz_bench_dnnl_version(dnnl, sizeof dnnl);
    std::snprintf(llc, sizeof llc, "%zu MiB", kvz_bench_llc_bytes() >> 20);
    benchmark::AddCustomContext("libkvz", kvz_version().string);
    benchmark::AddCustomContext("kvz_isa", kvz_isa_name(kvz_isa_active()));
    benchmark::AddCustomContext("kvz_read_plan", kvz_read_plan_name(kvz_read_plan_active()));
    benchmark::AddCustomContext("kvz_threads", std::to_string(kvz_num_threads()));
    benchmark::AddCustomContext("cpu_model", cpu);
    benchmark::AddCustomContext("llc", llc);
    benchmark::AddCustomContext("compiler", kvz_bench_compiler());
    benchmark::AddCustomContext("onednn", dnnl);
    size_t n;
    const kvz_bench_case *k = kvz_bench_kernel_cases(&n);
    register_cases(k, n);
    const kvz_bench_case *p = kvz_perf_cases(&n);
    register_cases(p, n);
    register_cache_cases();
    register_model_cases();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    release_current();
    kvz_mc_destroy(model_cases);
    benchmark::Shutdown();
    return 0;
}
