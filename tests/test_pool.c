/* The library's thread pool: every item of a region done exactly once, whatever threads turn
 * up; the thread count setter; regions from many host threads at once, nested, and after fork. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/pool.h"
#include "testutil.h"

/* A parallel loop that counts how often each item was visited and checks its pieces. */
typedef struct visit {
    _Atomic unsigned char *hits;
    size_t n, grain;
    _Atomic int bad_piece;
} visit;

static void visit_range(void *ctx, size_t lo, size_t hi)
{
    visit *v = ctx;
    if (lo >= hi || hi > v->n)
        atomic_store(&v->bad_piece, 1);
    for (size_t i = lo; i < hi && i < v->n; i++)
        atomic_fetch_add(&v->hits[i], 1);
}

/* The first item not visited exactly once (n when all were), or n + 1 for a bad piece. */
static size_t run_loop(size_t n, size_t grain, unsigned *visits)
{
    visit v = {tu_calloc(n ? n : 1, 1), n, grain, 0};
    kvz_parallel_for(n, grain, visit_range, &v);
    size_t i = 0;
    while (i < n && v.hits[i] == 1)
        i++;
    *visits = i < n ? v.hits[i] : 1;
    if (atomic_load(&v.bad_piece))
        i = n + 1;
    free((void *)v.hits);
    return i;
}

static void check_loop(size_t n, size_t grain)
{
    unsigned visits;
    const size_t i = run_loop(n, grain, &visits);
    if (i == n + 1)
        fail_msg("n %zu grain %zu: a piece out of range", n, grain);
    if (i < n)
        fail_msg("n %zu grain %zu: item %zu visited %u times", n, grain, i, visits);
}

static void test_parallel_for(void **state)
{
    (void)state;
    static const size_t ns[] = {0, 1, 2, 3, 7, 64, 1000, 65537};
    static const size_t grains[] = {0, 1, 3, 64, 100000};
    static const int threads[] = {1, 2, 3, 8}; /* 8: more than the cores of the test machines */
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        assert_int_equal(kvz_set_num_threads(threads[t]), KVZ_OK);
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
            for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++)
                check_loop(ns[i], grains[g]);
    }
    assert_int_equal(kvz_set_num_threads(0), KVZ_OK);
}

/* A team body that records which slots ran and claims items from a shared counter. */
typedef struct team_rec {
    _Atomic unsigned slot_runs[16];
    _Atomic unsigned teams_seen; /* bit t: a body ran with team t */
    size_t next, n;
    _Atomic unsigned *hits;
} team_rec;

static void team_body(void *ctx, unsigned slot, unsigned team)
{
    team_rec *r = ctx;
    if (slot >= team || team > 16)
        fail_msg("slot %u of a team of %u", slot, team);
    atomic_fetch_add(&r->slot_runs[slot], 1);
    atomic_fetch_or(&r->teams_seen, 1u << team);
    for (size_t i; (i = kvz_team_claim(&r->next, r->n)) < r->n;)
        atomic_fetch_add(&r->hits[i], 1);
}

static void test_team(void **state)
{
    (void)state;
    for (int t = 1; t <= 4; t++) {
        assert_int_equal(kvz_set_num_threads(t), KVZ_OK);
        assert_int_equal(kvz_num_threads(), t);
        for (int rep = 0; rep < 200; rep++) {
            team_rec r = {.n = 5000};
            r.hits = tu_calloc(r.n, sizeof *r.hits);
            kvz_team_run(team_body, &r, rep % 3 == 0 ? 2 : 0);
            const unsigned want_team = rep % 3 == 0 && t > 2 ? 2 : (unsigned)t;
            assert_int_equal(atomic_load(&r.teams_seen), 1u << want_team); /* the caller's team, no other */
            assert_int_equal(atomic_load(&r.slot_runs[0]), 1);             /* the caller always runs */
            for (unsigned s = 1; s < 16; s++)
                assert_true(atomic_load(&r.slot_runs[s]) <= 1 && (s < want_team || !r.slot_runs[s]));
            for (size_t i = 0; i < r.n; i++)
                assert_int_equal(r.hits[i], 1);
            free((void *)r.hits);
        }
    }
    assert_int_equal(kvz_set_num_threads(0), KVZ_OK);
}

static void test_set_num_threads(void **state)
{
    (void)state;
    assert_int_equal(kvz_set_num_threads(-1), KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "kvz_set_num_threads"));
    assert_int_equal(kvz_set_num_threads(1025), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_set_num_threads(5), KVZ_OK);
    assert_int_equal(kvz_num_threads(), 5);
    assert_int_equal(kvz_set_num_threads(0), KVZ_OK);
    const int def = kvz_num_threads();
    assert_true(def >= 1);
    /* the default reads KVZ_NUM_THREADS first, then OMP_NUM_THREADS's first level */
    setenv("KVZ_NUM_THREADS", "3", 1);
    assert_int_equal(kvz_set_num_threads(0), KVZ_OK);
    assert_int_equal(kvz_num_threads(), 3);
    unsetenv("KVZ_NUM_THREADS");
    const char *omp = getenv("OMP_NUM_THREADS");
    char *saved = omp ? strdup(omp) : NULL;
    setenv("OMP_NUM_THREADS", "6,2", 1);
    assert_int_equal(kvz_set_num_threads(0), KVZ_OK);
    assert_int_equal(kvz_num_threads(), 6);
    setenv("OMP_NUM_THREADS", "junk", 1); /* not a count: the CPUs */
    assert_int_equal(kvz_set_num_threads(0), KVZ_OK);
    assert_true(kvz_num_threads() >= 1);
    if (saved)
        setenv("OMP_NUM_THREADS", saved, 1);
    else
        unsetenv("OMP_NUM_THREADS");
    free(saved);
    assert_int_equal(kvz_set_num_threads(0), KVZ_OK);
    assert_int_equal(kvz_num_threads(), def);
}

/* A region inside a region runs on the inner caller's thread alone. */
static void inner_body(void *ctx, unsigned slot, unsigned team)
{
    if (slot != 0 || team != 1)
        fail_msg("a nested region ran as slot %u of %u", slot, team);
    atomic_fetch_add((_Atomic unsigned *)ctx, 1);
}

static void outer_body(void *ctx, unsigned slot, unsigned team)
{
    (void)slot, (void)team;
    kvz_team_run(inner_body, ctx, 0);
    check_loop(1000, 1);
}

static void test_nested(void **state)
{
    (void)state;
    assert_int_equal(kvz_set_num_threads(2), KVZ_OK);
    for (int rep = 0; rep < 100; rep++) {
        _Atomic unsigned inner = 0;
        kvz_team_run(outer_body, &inner, 0);
        assert_true(atomic_load(&inner) >= 1 && atomic_load(&inner) <= 2);
    }
    assert_int_equal(kvz_set_num_threads(0), KVZ_OK);
}

/* Host threads that all run regions at once: one holds the pool, the others run alone; every
 * region still covers its items exactly once. */
static void *host_thread(void *arg)
{
    (void)arg;
    for (int rep = 0; rep < 300; rep++)
        check_loop(4096 + (size_t)rep, 16);
    return NULL;
}

static void test_host_threads(void **state)
{
    (void)state;
    assert_int_equal(kvz_set_num_threads(4), KVZ_OK);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, host_thread, NULL), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(kvz_set_num_threads(0), KVZ_OK);
}

/* A forked child has none of the parent's workers: it starts its own. */
static void test_fork(void **state)
{
    (void)state;
    const char *runner = getenv("KVZ_RUNNER");
    if (runner && *runner) { /* qemu-user aborts when a multithreaded guest forks */
        print_message("test_fork: skipped under %s\n", runner);
        skip();
    }
#ifdef __SANITIZE_THREAD__ /* ThreadSanitizer refuses to start threads in a multithreaded process's child */
    print_message("test_fork: skipped under ThreadSanitizer\n");
    skip();
#endif
    assert_int_equal(kvz_set_num_threads(2), KVZ_OK);
    check_loop(100000, 1); /* the parent's workers exist now */
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* no cmocka here: a failure is the exit status */
        unsigned visits;
        for (int rep = 0; rep < 50; rep++)
            if (run_loop(100000, 1, &visits) != 100000)
                _exit(1);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(kvz_set_num_threads(0), KVZ_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parallel_for),    cmocka_unit_test(test_team),
        cmocka_unit_test(test_set_num_threads), cmocka_unit_test(test_nested),
        cmocka_unit_test(test_host_threads),    cmocka_unit_test(test_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
