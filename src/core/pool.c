/*
 * The library's own thread pool. OpenMP's teams end in a barrier that waits for every
 * thread of the team, and libgomp's idle threads spin: on a machine where another process
 * holds a core, each of the thousands of small regions of a decode waits a scheduler time
 * slice for a descheduled thread (a 10x slowdown measured, 100x reported). Here a region
 * waits only for the threads that joined it, and the work is claimed item by item, so a
 * late worker finds nothing left and goes back to sleep; idle workers spin briefly, then
 * sleep on a condition variable. The library never changes the host's OpenMP settings.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "core/pool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"

#define MAX_THREADS 1024
/* How long an idle worker looks for the next region before it sleeps: long enough to catch
 * the back-to-back regions of a decode step without a wake-up through the kernel, short
 * enough that a worker sharing its core with another process gives the core up at once
 * (a spinning worker uses up its scheduler share and is then preempted in the middle of
 * its next piece of work, which the caller has to wait for). On the 2-core VMs, spins of
 * 0, 2, 5 and 100 us: idle, the same speed from 5 us on; beside a busy core, 0 to 5 us
 * alike and 100 us 15 % slower (perf/results/2026-12-06-threads.md). */
#define SPIN_NS 5000
/* How many polls the caller makes for a joined worker before it yields its core. */
#define POLLS_BEFORE_YIELD 2048

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The region word: generation in the high 32 bits, CLOSED, then how many workers joined. */
#define CLOSED      ((uint64_t)1 << 31)
#define JOINED_MASK (CLOSED - 1)
#define GEN(w)      ((uint32_t)((w) >> 32))

static struct {
    pthread_mutex_t mu; /* guards the worker list and sleeping */
    pthread_cond_t wake;
    pthread_t *tid;
    unsigned n_workers;
    _Atomic uint64_t word;
    _Atomic unsigned finished; /* workers of the current region that returned from its body */
    _Atomic int sleepers;
    _Atomic int quit;
    atomic_flag busy; /* a region is running */
    /* the current region, written before its generation is published */
    kvz_team_fn fn;
    void *ctx;
    _Atomic unsigned team; /* read before joining, so possibly while the next region is set up */
} pool = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, 0, 0, ATOMIC_FLAG_INIT, NULL, NULL, 0};

static _Atomic int n_threads; /* 0: not yet chosen */
static _Thread_local int in_team;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Tries to join the region of word w as a worker: its slot, or 0 when it is closed or full. */
static unsigned join(uint64_t w)
{
    for (;;) {
        if ((w & CLOSED) || (w & JOINED_MASK) + 1 >= atomic_load(&pool.team))
            return 0;
        if (atomic_compare_exchange_weak(&pool.word, &w, w + 1))
            return (unsigned)(w & JOINED_MASK) + 1;
        if (w & CLOSED)
            return 0;
    }
}

static void *worker(void *arg)
{
    (void)arg;
    in_team = 1; /* a body that starts a region runs it alone */
    uint32_t seen = GEN(atomic_load(&pool.word));
    while (!atomic_load(&pool.quit)) {
        uint64_t w = atomic_load(&pool.word);
        if (GEN(w) == seen) {
            const uint64_t t0 = now_ns();
            for (unsigned i = 1; GEN(w = atomic_load(&pool.word)) == seen; i++) {
                relax();
                if (i % 64 == 0 && now_ns() - t0 > SPIN_NS)
                    break;
            }
        }
        if (GEN(w) == seen) { /* sleep until the next region (or quit) */
            pthread_mutex_lock(&pool.mu);
            atomic_fetch_add(&pool.sleepers, 1);
            while (GEN(atomic_load(&pool.word)) == seen && !atomic_load(&pool.quit))
                pthread_cond_wait(&pool.wake, &pool.mu);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.mu);
            continue;
        }
        seen = GEN(w);
        const unsigned slot = join(w);
        if (!slot)
            continue;
        /* joined: the region stays open for our body, so its fields are stable */
        pool.fn(pool.ctx, slot, atomic_load(&pool.team));
        atomic_fetch_add(&pool.finished, 1);
    }
    return NULL;
}

/* Starts workers up to `want` (under pool.mu); fewer when threads cannot be created. */
static void grow(unsigned want)
{
    if (want <= pool.n_workers)
        return;
    pthread_t *t = realloc(pool.tid, want * sizeof *t);
    if (!t)
        return;
    pool.tid = t;
    while (pool.n_workers < want && pthread_create(&pool.tid[pool.n_workers], NULL, worker, NULL) == 0)
        pool.n_workers++;
}

static void stop_workers(void)
{
    pthread_mutex_lock(&pool.mu);
    atomic_store(&pool.quit, 1);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
    for (unsigned i = 0; i < pool.n_workers; i++)
        pthread_join(pool.tid[i], NULL);
    free(pool.tid);
    pool.tid = NULL;
    pool.n_workers = 0;
    atomic_store(&pool.quit, 0);
}

/* At unload (dlclose or exit) the workers must not outlive the code they run. */
__attribute__((destructor)) static void pool_fini(void) { stop_workers(); }

/* A forked child has only the thread that forked: it starts its own workers when needed. */
static void after_fork_child(void)
{
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pool.tid = NULL; /* the parent's list, not ours to free in a child that may exec */
    pool.n_workers = 0;
    atomic_store(&pool.sleepers, 0);
    atomic_flag_clear(&pool.busy);
}
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void fork_init(void) { pthread_atfork(NULL, NULL, after_fork_child); }

/* The count in a variable like OMP_NUM_THREADS ("4" or "4,2": the first level), or 0. */
static int threads_from_env(const char *name)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    const long v = strtol(s, &end, 10);
    if (errno || end == s || (*end && *end != ',') || v < 1)
        return 0;
    return v > MAX_THREADS ? MAX_THREADS : (int)v;
}

static int default_threads(void)
{
    int n = threads_from_env("KVZ_NUM_THREADS");
    if (!n)
        n = threads_from_env("OMP_NUM_THREADS");
#ifdef CPU_COUNT
    if (!n) {
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof set, &set) == 0)
            n = CPU_COUNT(&set);
    }
#endif
    if (!n) {
        const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
    }
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
}

int kvz_num_threads(void)
{
    int n = atomic_load(&n_threads);
    if (!n) {
        int expected = 0;
        n = default_threads();
        if (!atomic_compare_exchange_strong(&n_threads, &expected, n))
            n = expected;
    }
    return n;
}

kvz_status kvz_set_num_threads(int n)
{
    if (n < 0 || n > MAX_THREADS)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_set_num_threads: %d is not in 0..%d (0: the default)", n,
                        MAX_THREADS);
    atomic_store(&n_threads, n ? n : default_threads());
    return KVZ_OK;
}

void kvz_team_run(kvz_team_fn fn, void *ctx, int team)
{
    const int threads = kvz_num_threads();
    const unsigned t = (unsigned)(team <= 0 || team > threads ? threads : team);
    if (t <= 1 || in_team || atomic_flag_test_and_set(&pool.busy)) {
        const int was = in_team;
        in_team = 1;
        fn(ctx, 0, 1);
        in_team = was;
        return;
    }
    if (pool.n_workers < t - 1) {
        pthread_once(&fork_once, fork_init);
        pthread_mutex_lock(&pool.mu);
        grow(t - 1);
        pthread_mutex_unlock(&pool.mu);
    }
    pool.fn = fn, pool.ctx = ctx;
    atomic_store(&pool.team, t);
    atomic_store(&pool.finished, 0);
    /* publish: the next generation, open, nobody joined */
    const uint64_t next = ((uint64_t)(GEN(atomic_load(&pool.word)) + 1)) << 32;
    atomic_store(&pool.word, next);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mu);
    }
    in_team = 1;
    fn(ctx, 0, t);
    in_team = 0;
    const unsigned joined = (unsigned)(atomic_fetch_or(&pool.word, CLOSED) & JOINED_MASK);
    for (unsigned i = 1; atomic_load(&pool.finished) < joined; i++) {
        relax();
        if (i % POLLS_BEFORE_YIELD == 0)
            sched_yield();
    }
    atomic_flag_clear(&pool.busy);
}

size_t kvz_team_claim(size_t *counter, size_t n)
{
    const size_t i = __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
    return i < n ? i : n;
}

typedef struct range_job {
    kvz_range_fn fn;
    void *ctx;
    size_t n, pieces, next;
} range_job;

static void range_body(void *ctx, unsigned slot, unsigned team)
{
    (void)slot, (void)team;
    range_job *r = ctx;
    for (size_t p; (p = kvz_team_claim(&r->next, r->pieces)) < r->pieces;) {
        const size_t lo = r->n * p / r->pieces, hi = r->n * (p + 1) / r->pieces;
        r->fn(r->ctx, lo, hi);
    }
}

/* Pieces per thread: enough that a thread that starts late or runs slowly leaves its
 * share to the others, few enough that claiming them costs nothing. */
#define PIECES_PER_THREAD 4

void kvz_parallel_for(size_t n, size_t grain, kvz_range_fn fn, void *ctx)
{
    if (!n)
        return;
    const size_t g = grain ? grain : 1, threads = (size_t)kvz_num_threads();
    size_t pieces = n / g;
    if (pieces > threads * PIECES_PER_THREAD)
        pieces = threads * PIECES_PER_THREAD;
    if (pieces < 2 || threads < 2 || in_team) {
        fn(ctx, 0, n);
        return;
    }
    range_job r = {fn, ctx, n, pieces, 0};
    kvz_team_run(range_body, &r, 0);
}
