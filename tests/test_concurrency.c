/* Many host threads at once: the first calls of a fresh process racing through the library's
 * once-initialisations, 16 kvz_query objects asking questions of one shared cache (each answer
 * bit-identical to the same question asked alone), kvz_last_error kept per thread under load, and
 * kvz_isa_force switching levels while queries run. Meant for ThreadSanitizer too (.ci/check-all's
 * tsan step), which checks that all of this is free of data races. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { N_THREADS = 16, N_LAYERS = 3, N_KV = 2, GROUP = 2, HEAD_DIM = 64, N_CONTEXT = 300, MAX_TAIL = 12 };

/* Layer 1 is a sliding-window layer, as Gemma 3's local layers are in the cache. */
static const size_t layer_window[N_LAYERS] = {0, 48, 0};

/* One question: its tail tokens' K and V, their queries, and room for the answers of every layer. */
typedef struct question {
    size_t n;                                 /* tail tokens, the last of which are the queries */
    float *k, *v, *q;                         /* [n][N_KV][HEAD_DIM], [n][N_KV * GROUP][HEAD_DIM] */
    float *out;                               /* [N_LAYERS][n][N_KV * GROUP][HEAD_DIM] */
} question;

static size_t q_floats(size_t n) { return n * N_KV * GROUP * HEAD_DIM; }

static void make_question(question *qu, tu_rng *r)
{
    qu->n = tu_range(r, 1, MAX_TAIL);
    const size_t kv = qu->n * N_KV * HEAD_DIM;
    qu->k = tu_fill_kv(r, KVZ_DTYPE_F32, kv, -1, 1, NULL);
    qu->v = tu_fill_kv(r, KVZ_DTYPE_F32, kv, -1, 1, NULL);
    qu->q = tu_fill_kv(r, KVZ_DTYPE_F32, q_floats(qu->n), -1, 1, NULL);
    qu->out = tu_calloc(N_LAYERS * q_floats(qu->n), sizeof(float));
}

static void free_question(question *qu)
{
    free(qu->k), free(qu->v), free(qu->q), free(qu->out);
}

/* Asks one question through its own query: every layer's tail appended and attended; the status of
 * the first failing call, else KVZ_OK. */
static kvz_status ask(const kvz_cache *cache, question *qu)
{
    kvz_query *query;
    kvz_status st = kvz_query_create(cache, &query);
    for (size_t l = 0; st == KVZ_OK && l < N_LAYERS; l++) {
        st = kvz_query_append(query, l, qu->n, qu->k, qu->v, N_KV * HEAD_DIM, HEAD_DIM);
        const kvz_attend_args a = {.struct_size = sizeof a,
                                   .group = GROUP,
                                   .n_q = qu->n,
                                   .q = qu->q,
                                   .q_token_stride = N_KV * GROUP * HEAD_DIM,
                                   .q_head_stride = HEAD_DIM,
                                   .out = qu->out + l * q_floats(qu->n),
                                   .out_token_stride = N_KV * GROUP * HEAD_DIM,
                                   .out_head_stride = HEAD_DIM};
        if (st == KVZ_OK)
            st = kvz_query_attend(query, l, &a);
    }
    kvz_query_destroy(query);
    return st;
}

/* A context's K and V for every layer, made by the test alone (no library call), so that the first
 * test can leave every library call to its racing threads. */
typedef struct context {
    float *k[N_LAYERS], *v[N_LAYERS];
} context;

static void make_context(context *cx, tu_rng *r)
{
    for (size_t l = 0; l < N_LAYERS; l++) {
        cx->k[l] = tu_fill_kv(r, KVZ_DTYPE_F32, N_CONTEXT * N_KV * HEAD_DIM, -1, 1, NULL);
        cx->v[l] = tu_fill_kv(r, KVZ_DTYPE_F32, N_CONTEXT * N_KV * HEAD_DIM, -1, 1, NULL);
    }
}

static void free_context(context *cx)
{
    for (size_t l = 0; l < N_LAYERS; l++)
        free(cx->k[l]), free(cx->v[l]);
}

/* A bf16 cache holding the context (NULL on failure: the status in *st). */
static kvz_cache *cache_of(const context *cx, kvz_status *st)
{
    const kvz_cache_config cfg = {sizeof cfg, N_LAYERS, N_KV, HEAD_DIM, KVZ_DTYPE_BF16, 0, layer_window};
    kvz_cache *c = NULL;
    *st = kvz_cache_create(&cfg, &c);
    for (size_t l = 0; *st == KVZ_OK && l < N_LAYERS; l++)
        *st = kvz_cache_append(c, l, N_CONTEXT, cx->k[l], cx->v[l], N_KV * HEAD_DIM, HEAD_DIM);
    if (*st != KVZ_OK) {
        kvz_cache_destroy(c);
        c = NULL;
    }
    return c;
}

static kvz_cache *make_cache(tu_rng *r)
{
    context cx;
    make_context(&cx, r);
    kvz_status st;
    kvz_cache *c = cache_of(&cx, &st);
    assert_int_equal(st, KVZ_OK);
    free_context(&cx);
    return c;
}

/* ---- threads that start together (tu_run_threads) ---------------------------------------------- */

/* What one thread was given and what it found, read by the main thread after the join. */
typedef struct worker {
    const kvz_cache *cache;
    const context *cx; /* first_use only: the context each thread builds its own cache of */
    question *qu;
    kvz_status st;
    int isa;
    char failure[160];
} worker;

static void check_workers(const worker *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (w[i].failure[0])
            fail_msg("thread %zu: %s", i, w[i].failure);
}

/* The process's first library calls, from 16 threads released at once: the ISA choice, the NUMA
 * probe, the per-thread scratch key and the thread pool's start all race. Each thread builds its own
 * cache of one shared context and asks its own question; every thread sees the same level, and each
 * answer is bit-identical to the same work done alone afterwards. Must be the first test: nothing in
 * this process calls the library before it. */
static void first_use(void *ctx, size_t i)
{
    worker *w = (worker *)ctx + i;
    const kvz_isa isa = kvz_isa_active();
    kvz_cache *cache = cache_of(w->cx, &w->st);
    if (cache)
        w->st = ask(cache, w->qu);
    kvz_cache_destroy(cache);
    if (kvz_isa_active() != isa)
        snprintf(w->failure, sizeof w->failure, "the active level changed under it");
    w->isa = (int)isa;
}

static void test_first_use(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    context cx;
    make_context(&cx, &r);
    question qu[N_THREADS];
    worker w[N_THREADS];
    for (size_t i = 0; i < N_THREADS; i++) {
        make_question(&qu[i], &r);
        w[i] = (worker){NULL, &cx, &qu[i], KVZ_ERR_STATE, -1, ""};
    }
    tu_run_threads(N_THREADS, first_use, w);
    check_workers(w, N_THREADS);
    kvz_status st;
    kvz_cache *alone = cache_of(&cx, &st);
    assert_int_equal(st, KVZ_OK);
    for (size_t i = 0; i < N_THREADS; i++) {
        assert_int_equal(w[i].st, KVZ_OK);
        assert_int_equal(w[i].isa, w[0].isa);
        question again = qu[i];
        again.out = tu_calloc(N_LAYERS * q_floats(qu[i].n), sizeof(float));
        assert_int_equal(ask(alone, &again), KVZ_OK);
        if (memcmp(again.out, qu[i].out, N_LAYERS * q_floats(qu[i].n) * sizeof(float)) != 0)
            fail_msg("question %zu: the racing answer differs from the same question asked alone", i);
        free(again.out);
        free_question(&qu[i]);
    }
    assert_int_equal(w[0].isa, (int)kvz_isa_active());
    kvz_cache_destroy(alone);
    free_context(&cx);
}

/* 16 questions asked one after the other, then all at once from 16 threads (three rounds): every
 * answer is bit-identical, since a question's arithmetic does not depend on which threads help. */
static void ask_once(void *ctx, size_t i)
{
    worker *w = (worker *)ctx + i;
    w->st = ask(w->cache, w->qu);
}

static void test_shared_cache(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 1);
    kvz_cache *cache = make_cache(&r);
    question want[N_THREADS], got[N_THREADS];
    for (size_t i = 0; i < N_THREADS; i++) {
        make_question(&want[i], &r);
        assert_int_equal(ask(cache, &want[i]), KVZ_OK);
        got[i] = want[i];
        got[i].out = tu_calloc(N_LAYERS * q_floats(want[i].n), sizeof(float));
    }
    for (int round = 0; round < 3; round++) {
        worker w[N_THREADS];
        for (size_t i = 0; i < N_THREADS; i++) {
            memset(got[i].out, 0xff, N_LAYERS * q_floats(got[i].n) * sizeof(float));
            w[i] = (worker){cache, NULL, &got[i], KVZ_ERR_STATE, -1, ""};
        }
        tu_run_threads(N_THREADS, ask_once, w);
        for (size_t i = 0; i < N_THREADS; i++) {
            assert_int_equal(w[i].st, KVZ_OK);
            if (memcmp(got[i].out, want[i].out, N_LAYERS * q_floats(want[i].n) * sizeof(float)) != 0)
                fail_msg("round %d, question %zu: the answer differs from the same question asked alone", round, i);
        }
    }
    /* the cache is shared, never written: a change is refused while a query exists, and works after */
    kvz_query *q;
    assert_int_equal(kvz_query_create(cache, &q), KVZ_OK);
    assert_int_equal(kvz_cache_append(cache, 0, want[0].n, want[0].k, want[0].v, N_KV * HEAD_DIM, HEAD_DIM),
                     KVZ_ERR_STATE);
    kvz_query_destroy(q);
    assert_int_equal(kvz_cache_append(cache, 0, want[0].n, want[0].k, want[0].v, N_KV * HEAD_DIM, HEAD_DIM),
                     KVZ_OK);
    for (size_t i = 0; i < N_THREADS; i++) {
        free(got[i].out);
        free_question(&want[i]);
    }
    kvz_cache_destroy(cache);
}

/* Each thread fails calls with its own argument many times while the others do the same: the message
 * it reads back is always its own. */
static void own_errors(void *ctx, size_t i)
{
    worker *w = (worker *)ctx + i;
    for (int it = 0; it < 2000 && !w->failure[0]; it++) {
        char name[48];
        snprintf(name, sizeof name, "no-such-level-%zu-%d", i, it);
        kvz_isa isa;
        if (kvz_isa_from_name(name, &isa) != KVZ_ERR_INVALID_ARG || !strstr(kvz_last_error(), name))
            snprintf(w->failure, sizeof w->failure, "iteration %d read \"%.80s\"", it, kvz_last_error());
    }
}

static void test_last_error(void **state)
{
    (void)state;
    worker w[N_THREADS];
    memset(w, 0, sizeof w);
    tu_run_threads(N_THREADS, own_errors, w);
    check_workers(w, N_THREADS);
}

/* One thread switches the kernel level round the supported ones while 8 threads ask questions: every
 * call succeeds and each answer is the generic level's to rounding (a call reads the kernel table
 * once; which level it got is not fixed). The level in force before the test is restored after it. */
enum { N_ASK = 8, ASK_REPEATS = 20 };
typedef struct switching {
    worker w[N_ASK];
    atomic_int asking; /* threads still asking */
    kvz_isa levels[TU_MAX_LEVELS];
    size_t n_levels;
    unsigned switches;
} switching;

static void switch_or_ask(void *ctx, size_t i)
{
    switching *s = ctx;
    if (i == N_ASK) {
        for (size_t k = 0; atomic_load(&s->asking) > 0; k++, s->switches++)
            if (kvz_isa_force(s->levels[k % s->n_levels]) != KVZ_OK)
                break;
        return;
    }
    worker *w = &s->w[i];
    for (int it = 0; it < ASK_REPEATS && w->st == KVZ_OK; it++)
        w->st = ask(w->cache, w->qu);
    atomic_fetch_sub(&s->asking, 1);
}

static void test_isa_switch(void **state)
{
    (void)state;
    const kvz_isa before = kvz_isa_active();
    switching *s = tu_calloc(1, sizeof *s);
    s->n_levels = tu_isa_levels(s->levels);
    atomic_store(&s->asking, N_ASK);
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 2);
    kvz_cache *cache = make_cache(&r);
    question want[N_ASK], got[N_ASK];
    double tol = 0;
    for (size_t i = 0; i < s->n_levels; i++)
        tol = fmax(tol, tu_tol_at(s->levels[i], KVZ_DTYPE_BF16));
    tu_force(KVZ_ISA_GENERIC);
    for (size_t i = 0; i < N_ASK; i++) {
        make_question(&want[i], &r);
        assert_int_equal(ask(cache, &want[i]), KVZ_OK);
        got[i] = want[i];
        got[i].out = tu_calloc(N_LAYERS * q_floats(want[i].n), sizeof(float));
        s->w[i] = (worker){cache, NULL, &got[i], KVZ_OK, -1, ""};
    }
    tu_run_threads(N_ASK + 1, switch_or_ask, s);
    fprintf(stderr, "isa switch: %u level switches over %zu levels during %d questions\n", s->switches,
            s->n_levels, N_ASK * ASK_REPEATS);
    for (size_t i = 0; i < N_ASK; i++) {
        assert_int_equal(s->w[i].st, KVZ_OK);
        const size_t n = N_LAYERS * q_floats(want[i].n);
        double *exact = tu_malloc(n * sizeof(double));
        for (size_t j = 0; j < n; j++)
            exact[j] = want[i].out[j];
        tu_assert_close(got[i].out, exact, n, 2 * tol, 0, "an answer while the level switches");
        free(exact);
        free(got[i].out);
        free_question(&want[i]);
    }
    kvz_cache_destroy(cache);
    free(s);
    tu_force(before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_use), /* first: the process's first calls into the library */
        cmocka_unit_test(test_shared_cache),
        cmocka_unit_test(test_last_error),
        cmocka_unit_test(test_isa_switch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
