/* Helpers shared by the cmocka tests: random numbers, ISA levels, K/V buffers, tolerances. */
#ifndef KVZ_TESTUTIL_H
#define KVZ_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kvz.h"

typedef struct {
    uint64_t s;
} tu_rng;

void tu_rng_init(tu_rng *r, uint64_t seed);
uint64_t tu_next(tu_rng *r);
float tu_uniform(tu_rng *r, float lo, float hi);
double tu_normal(tu_rng *r);
/* Uniform integer in [lo, hi]. */
size_t tu_range(tu_rng *r, size_t lo, size_t hi);

/* KVZ_TEST_SEED or a fixed default, printed once so that a failure can be replayed. */
uint64_t tu_seed(void);
/* Non-zero under KVZ_TEST_QUICK=1 (emulators, sanitizers): tests shrink their loops. */
int tu_quick(void);

/* Every level this build and CPU run (generic first); returns the count (<= 8). */
size_t tu_isa_levels(kvz_isa out[8]);
/* kvz_isa_force(isa) and assert that it worked. */
void tu_force(kvz_isa isa);

size_t tu_dtype_size(kvz_dtype dt);
/* n random elements of dtype dt in [lo, hi), rounded to dt; exact (may be NULL) receives
 * their exact values, so an oracle sees the inputs the kernel sees. malloc'd. */
void *tu_fill_kv(tu_rng *r, kvz_dtype dt, size_t n, float lo, float hi, double *exact);
/* Absolute tolerance of attention outputs against the double oracle (see testutil.c). */
double tu_tol(kvz_dtype dt);

/* Fails on the first i with |got - want| > atol + rtol*|want| (or a NaN), naming what. */
void tu_assert_close(const float *got, const double *want, size_t n, double atol, double rtol,
                     const char *what);

void *tu_malloc(size_t bytes);
void *tu_calloc(size_t n, size_t size);

#endif
