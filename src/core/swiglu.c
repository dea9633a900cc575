/* kvz_swiglu and kvz_geglu: the gate of a feed-forward layer through the active level's kernel,
 * over the OpenMP threads. */
#include "core/internal.h"

typedef void (*gate_fn)(float *g, const float *u, size_t n);

static void gate(gate_fn fn, float *g, const float *u, size_t n)
{
    /* pieces of 64 KiB of g: whole cache lines, each thread its own, and a gate of one
       decode token (n_ff, some 14336 elements) stays on one thread */
    enum { PIECE = 16384 };
    const size_t pieces = (n + PIECE - 1) / PIECE;
#pragma omp parallel for schedule(static) if (pieces > 1)
    for (size_t p = 0; p < pieces; p++) {
        const size_t a = p * PIECE;
        fn(g + a, u + a, n - a < PIECE ? n - a : PIECE);
    }
}

void kvz_swiglu(float *g, const float *u, size_t n) { gate(kvz_kernels()->swiglu, g, u, n); }

void kvz_geglu(float *g, const float *u, size_t n) { gate(kvz_kernels()->geglu, g, u, n); }
