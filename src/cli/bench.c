/* kvz bench: placeholder until the benchmark cases land (replaced by the bench work). */
#include "cli/cli.h"
int kvz_cmd_bench(int argc, char **argv) { (void)argc; (void)argv; return kvz_cli_error("bench: not built yet"); }
