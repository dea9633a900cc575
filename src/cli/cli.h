/* The kvz tool's subcommands, one function each, and their shared helpers. */
#ifndef KVZ_CLI_H
#define KVZ_CLI_H

#include <stddef.h>
#include <stdio.h>

/* Each returns the process exit status: 0 success, 1 failure, 2 usage error. */
int kvz_cmd_info(int argc, char **argv);
int kvz_cmd_bench(int argc, char **argv);
int kvz_cmd_generate(int argc, char **argv);
int kvz_cmd_compress(int argc, char **argv);
int kvz_cmd_ask(int argc, char **argv);
int kvz_cmd_eval(int argc, char **argv);
int kvz_cmd_demo(int argc, char **argv);
int kvz_cmd_tokenize(int argc, char **argv);
/* The stories260K demo (eval.c): kvz eval of every policy at kept ratios 0.5, 0.3, 0.2 on the
 * shared model and task file; kvz demo's fallback, with the options of its usage. */
int kvz_cli_demo_stories(int argc, char **argv);
/* kvz bench cache (bench_cache.c); returns the exit status. */
int kvz_bench_cache(int json);
int kvz_bench_threads(int json);
/* kvz bench model (bench_model.c); returns the exit status. */
int kvz_bench_model(int json, int rounds);
/* kvz bench payoff (bench_payoff.c): steps decode steps per cache at each context length, on a model of
 * `layers` layers (0: 4). */
int kvz_bench_payoff(int json, const char *model, const size_t *lengths, size_t n_lengths, size_t layers,
                     int steps);

/* The levels this build and CPU run, from generic up (info.c): space-separated names, or
 * with json a list of quoted names for a JSON array. */
void kvz_cli_isa_available(char *buf, size_t size, int json);

/* Whether a command's arguments (argv[0] the command, up to a "--") ask for its help: --help or -h, which
 * print the usage on stdout and exit 0. */
int kvz_cli_wants_help(int argc, char **argv);

/* Prints "kvz <cmd>: <message> (kvz <cmd> --help lists the options)" to stderr; returns 2. */
int kvz_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Takes `--threads N` (or `--threads=N`) out of argv, wherever it stands, and sets the library's thread
 * count. Returns 0, or 2 after a message when N is not a count. */
int kvz_cli_take_threads(int *argc, char **argv);

/* Prints "kvz: <message>" to stderr; returns 1. */
int kvz_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The file name of a path: what follows its last '/', or the path itself. */
const char *kvz_cli_basename(const char *path);

#endif
