// The Google Benchmark shim: registers the C benchmark cases (src/cli/bench_cases.h, perf_cases.h).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "cli/bench_cases.h"
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

} // namespace

int main(int argc, char **argv)
{
    char cpu[256], dnnl[32], llc[32];
    kvz_bench_cpu_model(cpu, sizeof cpu);
    kvz_bench_dnnl_version(dnnl, sizeof dnnl);
    std::snprintf(llc, sizeof llc, "%zu MiB", kvz_bench_llc_bytes() >> 20);
    benchmark::AddCustomContext("libkvz", kvz_version().string);
    benchmark::AddCustomContext("kvz_isa", kvz_isa_name(kvz_isa_active()));
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
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    release_current();
    benchmark::Shutdown();
    return 0;
}
