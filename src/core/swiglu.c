/* kvz_swiglu: the SwiGLU gate of a feed-forward layer through the active level's kernel, over
 * the OpenMP threads. */
#include "core/internal.h"

void kvz_swiglu(float *g, const float *u, size_t n)
{
    const kvz_kernel_table *kt = kvz_kernels();
    /* pieces of 64 KiB of g: whole cache lines, each thread its own, and a gate of one
       decode token (n_ff, some 14336 elements) stays on one thread */
    enum { PIECE = 16384 };
    const size_t pieces = (n + PIECE - 1) / PIECE;
#pragma omp parallel for schedule(static) if (pieces > 1)
    for (size_t p = 0; p < pieces; p++) {
        const size_t a = p * PIECE;
        kt->swiglu(g + a, u + a, n - a < PIECE ? n - a : PIECE);
    }
}
