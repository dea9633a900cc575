/* The library's own thread pool: parallel regions that never wait for a thread that has not started. */
#ifndef KVZ_CORE_POOL_H
#define KVZ_CORE_POOL_H

#include <stddef.h>

#include "core/internal.h"

/*
 * A team body: run by the calling thread (slot 0) and by every pool worker that joins the
 * region while the caller is still in it (slots 1 .. team - 1, not necessarily all of
 * them). Bodies share their work out dynamically (kvz_team_claim), so that whichever
 * threads turn up do all of it: a worker that is descheduled never holds the caller back,
 * and on a busy machine the caller may well do everything itself.
 */
typedef void (*kvz_team_fn)(void *ctx, unsigned slot, unsigned team);

/*
 * Runs fn on this thread and on up to team - 1 pool workers (team <= 0: the thread count),
 * and returns when every thread that joined has returned from fn. Runs fn alone on this
 * thread, with team 1, when called from inside a team body, when another thread's region
 * holds the pool, or when the thread count is 1.
 */
KVZ_PRIVATE_API void kvz_team_run(kvz_team_fn fn, void *ctx, int team);

/* Takes the next of n items from a shared counter (start it at 0): the item, or n when
 * none is left. */
KVZ_PRIVATE_API size_t kvz_team_claim(size_t *counter, size_t n);

/* A range body: items [lo, hi) of a parallel loop. */
typedef void (*kvz_range_fn)(void *ctx, size_t lo, size_t hi);

/*
 * Runs fn over [0, n) in contiguous pieces of at least `grain` items (a few per thread),
 * on the pool; a loop of fewer than 2 * grain items runs here in one piece.
 */
KVZ_PRIVATE_API void kvz_parallel_for(size_t n, size_t grain, kvz_range_fn fn, void *ctx);

#endif
