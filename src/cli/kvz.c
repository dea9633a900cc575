/* The kvz command: dispatches to the subcommands (info, bench, ...). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels.h"
#include "kvz.h"

/* The levels KVZ_ISA takes, "generic|neon|...", from the list in kernels.h; shown from the
 * second character on. */
#define ISA_NAME_BARRED(name, ID, value, cpu) "|" #name
static const char isa_choices[] = KVZ_ISA_LIST(ISA_NAME_BARRED);

static void usage(FILE *f)
{
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
            "environment: KVZ_ISA=%s forces a lower kernel level.\n", isa_choices + 1);
    /* clang-format on */
}

int kvz_cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kvz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int kvz_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kvz %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (kvz %s --help lists the options)\n", cmd);
    va_end(ap);
    return 2;
}

int kvz_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

/* Takes `--threads N` (or `--threads=N`) out of argv, wherever it stands, and sets the
 * library's thread count. Returns 0, or 2 after a message when N is not a count. */
static int take_threads(int *argc, char **argv)
{
    for (int i = 1; i < *argc; i++) {
        const char *v = NULL;
        int used = 0;
        if (!strcmp(argv[i], "--threads"))
            v = i + 1 < *argc ? argv[i + 1] : "", used = 2;
        else if (!strncmp(argv[i], "--threads=", 10))
            v = argv[i] + 10, used = 1;
        if (!used)
            continue;
        char *end;
        const long n = strtol(v, &end, 10);
        if (!*v || *end || n < 1 || n > 1024 || kvz_set_num_threads((int)n) != KVZ_OK) {
            kvz_cli_error("--threads takes a whole number of threads from 1 to 1024 (got '%s')", v);
            return 2;
        }
        memmove(&argv[i], &argv[i + used], (size_t)(*argc - i - used + 1) * sizeof *argv);
        *argc -= used;
        i--;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (take_threads(&argc, argv))
        return 2;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "info"))
        return kvz_cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return kvz_cmd_bench(argc - 1, argv + 1);
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
