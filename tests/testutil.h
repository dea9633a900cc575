/* Helpers shared by the cmocka tests: random numbers, ISA levels, K/V buffers, tolerances. */
#ifndef KVZ_TESTUTIL_H
#define KVZ_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kvz.h"

/* splitmix64: tiny, seedable, the same sequence on every platform. */
typedef struct {
    uint64_t s;
} tu_rng;

void tu_rng_init(tu_rng *r, uint64_t seed);
uint64_t tu_next(tu_rng *r);
/* Uniform float in [lo, hi) (24 random bits). */
float tu_uniform(tu_rng *r, float lo, float hi);
/* Standard normal (Box-Muller). */
double tu_normal(tu_rng *r);

/* KVZ_TEST_SEED (decimal or 0x hex) or a fixed default, printed once to stderr so that a
 * failure can be replayed. */
uint64_t tu_seed(void);

/* Every level kvz_isa_supported() says this build and CPU run, generic first; returns the
 * count (at most TU_MAX_LEVELS). Logs the list once to stderr. */
/* The most kernel levels one build can have (x86: generic, avx2, avx512, avx512bf16, amx). */
#define TU_MAX_LEVELS 6
size_t tu_isa_levels(kvz_isa out[TU_MAX_LEVELS]);
/* kvz_isa_force(isa) and assert that it returned KVZ_OK. */
void tu_force(kvz_isa isa);

size_t tu_dtype_size(kvz_dtype dt);
/* malloc'd array of n elements of dtype dt, uniform in [lo, hi) and rounded (to nearest
 * even) to dt by the test's own encoder, not the library's. exact (n doubles, may be NULL)
 * receives the values exactly as stored, so an oracle sees the inputs the kernel sees. */
void *tu_fill_kv(tu_rng *r, kvz_dtype dt, size_t n, float lo, float hi, double *exact);
/* x rounded to the nearest bf16 (ties to even), by the test's own rounding. */
double tu_round_bf16(double x);
/* A query element uniform in [lo, hi); for bf16 K/V rounded to bf16, which the avx512bf16
 * level's attention reads queries as (simd/kernels.h): every level then reads the same
 * query and one oracle serves them all (test_attn checks the rounding on its own). */
float tu_query(tu_rng *r, float lo, float hi, kvz_dtype dt);
/* Absolute tolerance of attention outputs against the double oracle at the active level,
 * for V in [-1, 1] (reasoning in testutil.c). */
double tu_tol(kvz_dtype dt);
/* The same at level isa (for kernels called through a table, not the active level). */
double tu_tol_at(kvz_isa isa, kvz_dtype dt);

/* Fails on the first i with |got - want| > atol + rtol*|want|, printing what, i and both
 * values. NaN never passes; equal infinities do. */
void tu_assert_close(const float *got, const double *want, size_t n, double atol, double rtol,
                     const char *what);

/* ---- extras used by several test files ---- */
/* Uniform integer in [lo, hi]. */
size_t tu_range(tu_rng *r, size_t lo, size_t hi);
/* Non-zero under KVZ_TEST_QUICK=1 (emulators, sanitizers): tests shrink their loops. */
int tu_quick(void);
/* malloc/calloc that assert success (0 bytes gives a valid 1-byte block). */
/* tu_assert_close that also remembers the current test's worst error / tolerance ratio;
 * tu_setup_clock and tu_teardown_report (cmocka fixtures) print it with the test's time
 * when KVZ_TEST_VERBOSE=1. */
void tu_check_close(const float *got, const double *want, size_t n, double atol, double rtol, const char *what);
int tu_setup_clock(void **state);
int tu_teardown_report(void **state);

/* Output buffers pre-filled with this NaN pattern show what a call did not write. */
void tu_fill_sentinel(float *p, size_t n);
int tu_is_sentinel(const float *p);

/* A whole file into malloc'd memory (size in *n), and bytes into a file. */
unsigned char *tu_slurp(const char *path, size_t *n);
void tu_spit(const char *path, const unsigned char *p, size_t n);

/* Non-zero under CI (the environment variable CI set, not "0" or "false"). */
int tu_in_ci(void);

/* Non-zero in `make check`'s tier (KVZ_TEST_MODELS=0): no model, no shared file, no network. A test
 * that needs only those exits 77 (skipped) then; `make check-models` runs it (KVZ_TEST_MODELS=1). */
int tu_models_tier_off(void);

/* The path of a file under the shared directory (../shared: models, evaluation sets) when it
 * is readable; else NULL, after saying on stderr that the test skips (under CI the test fails
 * instead). The path stays valid until the next call. */
const char *tu_shared_file(const char *relative);

/* The same for a real model fetched by .ci/fetch-models: $KVZ_MODEL_DIR/file, else
 * ${XDG_CACHE_HOME:-$HOME/.cache}/kvz/models/file. */
const char *tu_model_file(const char *file);
/* In a test function: skip the test when the model is absent (fail under CI), else set path to it. */
#define TU_NEED_MODEL(path, file)                                                                                      \
    do {                                                                                                               \
        if (!((path) = tu_model_file(file))) {                                                                         \
            skip();                                                                                                    \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)
#define TU_SMOLLM2 "SmolLM2-135M-Instruct.Q4_1.gguf"
#define TU_GEMMA3  "gemma-3-270m-q4_k_m.gguf"
#define TU_STORIES "models/stories260K.gguf"
/* In a test function: skip the test when the shared file is absent, else set path to it. */
#define TU_NEED_SHARED(path, relative)                                                                                 \
    do {                                                                                                               \
        if (!((path) = tu_shared_file(relative))) {                                                                    \
            skip();                                                                                                    \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

void *tu_malloc(size_t bytes);
void *tu_calloc(size_t n, size_t size);

/* cmocka group fixtures: a fresh directory under /tmp for the group's files, removed with them
 * afterwards; tu_tmpdir names it and tu_tmp_path joins a file name to it. */
int tu_tmpdir_setup(void **state);
int tu_tmpdir_teardown(void **state);
const char *tu_tmpdir(void);
void tu_tmp_path(char *buf, size_t n, const char *name);

/* Runs fn(ctx, i) for i = 0..n-1 on n new threads released together (a barrier), then joins them
 * all. Plain pthreads, so that ThreadSanitizer sees every start and join. */
void tu_run_threads(size_t n, void (*fn)(void *ctx, size_t i), void *ctx);

/* What a fresh process's first libkvz call did (tu_first_call_in_child). */
typedef struct tu_child {
    int ok;    /* the child ran and reported */
    int value; /* what first() returned */
    char last_error[256];  /* kvz_last_error() after it, in the child's thread */
    char stderr_text[512]; /* what the child wrote to stderr */
} tu_child;
/* Forks; the child sets the environment variable var to value (unsets it for NULL), calls first()
 * and reports into *out. Call it from main before anything of libkvz (or OpenMP) has run, so
 * that first() makes the child's first libkvz call. */
void tu_first_call_in_child(const char *var, const char *value, int (*first)(void), tu_child *out);

#endif
