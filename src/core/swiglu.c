/* kvz_swiglu and kvz_geglu: the gate of a feed-forward layer through the active level's kernel,
 * over the library's threads. */
#include "core/internal.h"
#include "core/pool.h"

typedef void (*gate_fn)(float *g, const float *u, size_t n);

/* Items are cache lines of g (16 floats), so that no two threads write the same line. */
enum { LINE = 16 };

typedef struct gate_job {
    gate_fn fn;
    float *g;
    const float *u;
    size_t n;
} gate_job;

static void gate_lines(void *ctx, size_t lo, size_t hi)
{
    const gate_job *j = ctx;
    const size_t a = lo * LINE, b = hi * LINE < j->n ? hi * LINE : j->n;
    j->fn(j->g + a, j->u + a, b - a);
}

static void gate(gate_fn fn, float *g, const float *u, size_t n)
{
    /* pieces of at least 64 KiB of g: a gate of one decode token (n_ff, some 14336
       elements) stays on one thread */
    gate_job j = {fn, g, u, n};
    kvz_parallel_for((n + LINE - 1) / LINE, 16384 / LINE, gate_lines, &j);
}

void kvz_swiglu(float *g, const float *u, size_t n) { gate(kvz_kernels()->swiglu, g, u, n); }

void kvz_geglu(float *g, const float *u, size_t n) { gate(kvz_kernels()->geglu, g, u, n); }
