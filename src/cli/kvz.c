/* The kvz command: dispatches to the subcommands (info, bench, ...). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <unistd.h>

#include "cli/cli.h"
#include "kvz.h"

static void usage(FILE *f)
{
    char isa_choices[128] = ""; /* the levels KVZ_ISA takes, as the library names them */
    for (int i = 0; strcmp(kvz_isa_name((kvz_isa)i), "unknown"); i++)
        snprintf(isa_choices + strlen(isa_choices), sizeof isa_choices - strlen(isa_choices), "%s%s",
                 i ? "|" : "", kvz_isa_name((kvz_isa)i));
    /* the text is laid out as it prints */
    /* clang-format off */
    fprintf(f,
            "usage: kvz <command> [options]      (kvz <command> --help: the command's options)\n"
            "\n"
            "commands:\n"
            "  demo [--model M]          SmolLM2-135M-Instruct reads a document, KVzip compresses its\n"
            "                            KV cache to 30 %%, 8 questions are answered from the full and the\n"
            "                            compressed cache side by side (--stories, or without that model: the\n"
            "                            stories260K evaluation of every policy at 50, 30 and 20 %%)\n"
            "  generate --model M ...    prefill a prompt and generate (greedy or sampled)\n"
            "  compress --model M ...    KVzip-compress a context into a .kvz cache file\n"
            "  ask --model M --cache C   answer questions from a compressed cache file\n"
            "  eval --model M --tasks F  multi-query evaluation of policies and ratios\n"
            "  tokenize --model M TEXT   token ids of TEXT (BOS as the model adds it, specials parsed); --json\n"
            "  info [--json]             library version, ISA in use and available, threads, NUMA nodes\n"
            "  info --model M [--json]   a model's architecture, shape, tensor types and parameter count\n"
            "  info --cache F [--json]   a saved .kvz cache: model, policy, storage, shape, rows per layer and head\n"
            "  bench kernels [--json]    kernel benchmarks with the machine's memory bandwidth and GEMM rate\n"
            "  bench cache [--json]      decode over compressed caches per policy and ratio; .kvz save/load\n"
            "  bench model [--json]      a synthetic 8B-shaped model: prefill, decode, KVzip's cost, FastKV\n"
            "  bench threads [--json]    one shared cache asked from one host thread and from four at once\n"
            "  bench payoff [--json]     the 8B-shaped model at long context: full, KVzip and FastKV caches\n"
            "  help                      this text\n"
            "\n"
            "every command: --threads N  the library's threads (default: KVZ_NUM_THREADS, else the first\n"
            "                            value of OMP_NUM_THREADS, else the CPUs this process may use)\n"
            "environment: KVZ_ISA=%s forces a lower kernel level.\n", isa_choices);
    /* clang-format on */
}

/* kvz bench is the program kvz-bench beside this one: its kernel and synthetic-model cases link the
 * library's internals, which the kvz tool does not. argv: kvz's, with --threads still in it. */
static int run_bench(int argc, char **argv)
{
    char path[4096];
    const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 16);
    path[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(path, '/');
    if (slash)
        strcpy(slash + 1, "kvz-bench");
    char **args = malloc((size_t)(argc + 1) * sizeof *args);
    if (!args)
        return kvz_cli_error("out of memory");
    int k = 0, dropped = 0; /* kvz-bench takes what follows the word bench, and --threads wherever it is */
    args[k++] = slash ? path : "kvz-bench";
    for (int i = 1; i < argc; i++)
        if (!dropped && !strcmp(argv[i], "bench"))
            dropped = 1;
        else
            args[k++] = argv[i];
    args[k] = NULL;
    if (slash)
        execv(path, args);
    else
        execvp("kvz-bench", args);
    const int err = errno;
    free(args);
    return kvz_cli_error("bench: cannot run %s: %s (kvz bench is the program kvz-bench, installed beside kvz)",
                         slash ? path : "kvz-bench", strerror(err));
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) /* the command: the first word that is not --threads or its value */
        if (!strcmp(argv[i], "--threads"))
            i++;
        else if (strncmp(argv[i], "--threads=", 10)) {
            if (!strcmp(argv[i], "bench"))
                return run_bench(argc, argv);
            break;
        }
    if (kvz_cli_take_threads(&argc, argv))
        return 2;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "info"))
        return kvz_cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "generate"))
        return kvz_cmd_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "compress"))
        return kvz_cmd_compress(argc - 1, argv + 1);
    if (!strcmp(cmd, "ask"))
        return kvz_cmd_ask(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval"))
        return kvz_cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "demo"))
        return kvz_cmd_demo(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize"))
        return kvz_cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("kvz %s\n", kvz_version().string);
        return 0;
    }
    fprintf(stderr, "kvz: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
