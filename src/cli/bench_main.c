/* kvz-bench, which `kvz bench` runs: the benchmark suites (bench.c), apart from the kvz tool because
 * their kernel and synthetic-model cases link the library's internals. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    if (kvz_cli_take_threads(&argc, argv))
        return 2;
    return kvz_cmd_bench(argc, argv);
}
