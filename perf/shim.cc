// The Google Benchmark shim: registers the C benchmark cases (src/cli/bench_cases.h, perf_cases.h).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "cli/bench_cases.h"
#include "kvz.h"
#include "perf/perf_cases.h"

namespace
{

// Runs one case: its inputs are built once, each iteration is one library operation, and the
// rate counter is its bytes or flops per second.
void run_case(benchmark::State &st, const kvz_bench_case *c)
{
    kvz_bench_state *s = kvz_bench_setup(c);
    if (!s) {
        st.SkipWithError("setup failed");
        return;
    }
    const char *unit = nullptr;
    const double work = kvz_bench_work(s, &unit);
    for (auto _ : st)
        if (kvz_bench_run(s) != 0) {
            st.SkipWithError("run failed");
            break;
        }
    const bool bytes = std::string(unit) == "GB/s";
    st.counters[bytes ? "bytes" : "flops"] = benchmark::Counter(
        work * (double)st.iterations(), benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
    kvz_bench_teardown(s);
}

void register_cases(const kvz_bench_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const kvz_bench_case *c = &cases[i];
        benchmark::RegisterBenchmark(c->name, [c](benchmark::State &st) { run_case(st, c); })
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond)
            ->MinTime(c->kind == KVZ_BENCH_PREFILL ? 1.0 : 0.5);
    }
}

} // namespace

int main(int argc, char **argv)
{
    char cpu[256];
    kvz_bench_cpu_model(cpu, sizeof cpu);
    benchmark::AddCustomContext("libkvz", kvz_version().string);
    benchmark::AddCustomContext("kvz_isa", kvz_isa_name(kvz_isa_active()));
    benchmark::AddCustomContext("kvz_threads", std::to_string(kvz_num_threads()));
    benchmark::AddCustomContext("cpu_model", cpu);
    benchmark::AddCustomContext("compiler", __VERSION__);
    size_t n;
    const kvz_bench_case *k = kvz_bench_kernel_cases(&n);
    register_cases(k, n);
    const kvz_bench_case *p = kvz_perf_cases(&n);
    register_cases(p, n);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
