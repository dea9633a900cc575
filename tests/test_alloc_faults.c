/* Allocation failure injection along the main paths: for every n, the n-th allocation fails; each call returns
 * KVZ_OK or KVZ_ERR_NOMEM with a message, leaks nothing and leaves what it was given usable or unchanged. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "fault_alloc.h"
#include "kvz_model.h"
#include "model/fastkv.h"
#include "model/kvzip.h"
#include "testutil.h"

/* ---- the sweep ------------------------------------------------------------------------------ */

/*
 * One path: setup makes the run's objects (not armed), call is the armed call, check looks
 * at the result (not armed) and frees what setup and call made. Objects that outlive the
 * sweep (a model, a shared cache) live in ctx and are warmed up by a first, unarmed run, so
 * that buffers kept from call to call (the model's activations, the threads' scratch) exist
 * before the count of live blocks is taken.
 */
typedef struct fault_path {
    const char *name;
    void (*setup)(void *ctx);
    kvz_status (*call)(void *ctx);
    void (*check)(void *ctx, kvz_status st, int failed);
} fault_path;

/* The thread count of the sweeps: with one, the n-th allocation is the same in every run and the
 * live blocks must return to their count; with more, threads keep scratch buffers of their own
 * once they have run a piece of work, so only LeakSanitizer (in a sanitizer build) judges leaks. */
static int threads = 1;

static void set_threads(int n)
{
    threads = n;
    assert_int_equal(kvz_set_num_threads(n), KVZ_OK);
}

/* A message no call under test writes: after a failure, kvz_last_error must say something else. */
static const char *stale_error(void)
{
    (void)kvz_cache_length(NULL, 0, 0, NULL);
    return kvz_last_error();
}

static void sweep(const fault_path *p, void *ctx)
{
    if (p->setup)
        p->setup(ctx);
    fa_sites_begin();
    fa_arm(0);
    const kvz_status warm = p->call(ctx);
    const unsigned long allocations = fa_count();
    const size_t sites = fa_sites_end();
    if (warm != KVZ_OK)
        fprintf(stderr, "%s without injected failures: %s\n", p->name, kvz_last_error());
    assert_int_equal(warm, KVZ_OK);
    p->check(ctx, warm, 0);

    unsigned long runs = 0, injected = 0, absorbed = 0;
    for (unsigned long n = 1;; n++) {
        const size_t blocks = fa_live_blocks(), mapped = fa_live_mapped();
        if (p->setup)
            p->setup(ctx);
        char stale[256];
        snprintf(stale, sizeof stale, "%s", stale_error());
        fa_arm(n);
        const kvz_status st = p->call(ctx);
        const int fired = fa_disarm();
        runs++;
        if (fired)
            injected++, absorbed += st == KVZ_OK;
        if (st != KVZ_OK && st != KVZ_ERR_NOMEM)
            fprintf(stderr, "%s, allocation %lu failed: status %d: %s\n", p->name, n, (int)st,
                    kvz_last_error());
        assert_true(st == KVZ_OK || (fired && st == KVZ_ERR_NOMEM));
        if (st == KVZ_ERR_NOMEM && (!*kvz_last_error() || !strcmp(kvz_last_error(), stale))) {
            fprintf(stderr, "%s, allocation %lu failed: no message\n", p->name, n);
            fail();
        }
        if (st == KVZ_OK && strcmp(kvz_last_error(), stale)) { /* it is the last *failing* call's message */
            fprintf(stderr, "%s, allocation %lu failed: the call succeeded but wrote \"%s\"\n", p->name, n,
                    kvz_last_error());
            fail();
        }
        p->check(ctx, st, fired);
#if defined(__SANITIZE_ADDRESS__)
        if (threads > 1 && __lsan_do_recoverable_leak_check()) {
            fprintf(stderr, "%s, allocation %lu failed (status %d): leaks\n", p->name, n, (int)st);
            fail();
        }
#endif
        if (threads == 1 && (fa_live_blocks() != blocks || fa_live_mapped() != mapped)) {
            fprintf(stderr, "%s, allocation %lu failed (status %d): %zd blocks and %zd mapped bytes leaked\n",
                    p->name, n, (int)st, (ssize_t)(fa_live_blocks() - blocks),
                    (ssize_t)(fa_live_mapped() - mapped));
            fail();
        }
        if (!fired)
            break;
    }
    printf("alloc faults: %-36s %6lu allocations from %3zu call sites, %6lu failures injected "
           "(%lu absorbed), %6lu runs\n",
           p->name, allocations, sites, injected, absorbed, runs);
    fflush(stdout);
}

/* ---- caches -------------------------------------------------------------------------------- */

enum { L = 3, H = 2, D = 64, MAX_TOK = 400 };

static float kbuf[MAX_TOK * H * D], vbuf[MAX_TOK * H * D];

static void fill_kv(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    for (size_t i = 0; i < MAX_TOK * H * D; i++)
        kbuf[i] = tu_uniform(&r, -1, 1), vbuf[i] = tu_uniform(&r, -1, 1);
}

static kvz_cache *new_cache(kvz_dtype dt, const size_t *window, size_t reserve)
{
    const kvz_cache_config cfg = {sizeof cfg, L, H, D, dt, reserve, window};
    kvz_cache *c = NULL;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    return c;
}

/* Appends tokens [from, from + n) of the K/V buffers to every layer. */
static void append_all(kvz_cache *c, size_t from, size_t n)
{
    for (size_t l = 0; l < L; l++)
        assert_int_equal(kvz_cache_append(c, l, n, kbuf + from * H * D, vbuf + from * H * D, H * D, D), KVZ_OK);
}

static kvz_cache *clone_of(const kvz_cache *c)
{
    kvz_cache *d = NULL;
    assert_int_equal(kvz_cache_clone(c, &d), KVZ_OK);
    return d;
}

/* Fails unless a and b hold the same rows, positions, next positions, windows and statistics
 * (the bytes reserved too when `reserved`: room is not part of a cache's value). */
static void assert_same_cache(const kvz_cache *a, const kvz_cache *b, int reserved)
{
    size_t la, ha, da, lb, hb, db;
    kvz_dtype ta, tb;
    assert_int_equal(kvz_cache_shape(a, &la, &ha, &da, &ta), KVZ_OK);
    assert_int_equal(kvz_cache_shape(b, &lb, &hb, &db, &tb), KVZ_OK);
    assert_true(la == lb && ha == hb && da == db && ta == tb);
    const size_t rb = da * (ta == KVZ_DTYPE_F32 ? 4 : 2);
    for (size_t l = 0; l < la; l++) {
        int64_t pa, pb;
        size_t wa, wb;
        assert_int_equal(kvz_cache_next_position(a, l, &pa), KVZ_OK);
        assert_int_equal(kvz_cache_next_position(b, l, &pb), KVZ_OK);
        assert_int_equal(pa, pb);
        assert_int_equal(kvz_cache_layer_window(a, l, &wa), KVZ_OK);
        assert_int_equal(kvz_cache_layer_window(b, l, &wb), KVZ_OK);
        assert_int_equal(wa, wb);
        for (size_t h = 0; h < ha; h++) {
            size_t na, nb;
            const int64_t *qa, *qb;
            const void *ka, *va, *kb, *vb;
            assert_int_equal(kvz_cache_length(a, l, h, &na), KVZ_OK);
            assert_int_equal(kvz_cache_length(b, l, h, &nb), KVZ_OK);
            assert_int_equal(na, nb);
            if (!na)
                continue;
            assert_int_equal(kvz_cache_positions(a, l, h, &qa), KVZ_OK);
            assert_int_equal(kvz_cache_positions(b, l, h, &qb), KVZ_OK);
            assert_memory_equal(qa, qb, na * sizeof *qa);
            assert_int_equal(kvz_cache_rows(a, l, h, &ka, &va), KVZ_OK);
            assert_int_equal(kvz_cache_rows(b, l, h, &kb, &vb), KVZ_OK);
            assert_memory_equal(ka, kb, na * rb);
            assert_memory_equal(va, vb, na * rb);
        }
    }
    kvz_cache_stats sa = {.struct_size = sizeof sa}, sb = {.struct_size = sizeof sb};
    assert_int_equal(kvz_cache_get_stats(a, &sa), KVZ_OK);
    assert_int_equal(kvz_cache_get_stats(b, &sb), KVZ_OK);
    assert_int_equal(sa.rows, sb.rows);
    assert_int_equal(sa.full_rows, sb.full_rows);
    assert_int_equal(sa.bytes_used, sb.bytes_used);
    if (reserved)
        assert_int_equal(sa.bytes_reserved, sb.bytes_reserved);
}

/* kvz_cache_create and kvz_cache_clone */
typedef struct create_ctx {
    kvz_cache_config cfg;
    kvz_cache *out, *src, *want;
    int clone;
} create_ctx;

static kvz_status create_call(void *v)
{
    create_ctx *x = v;
    x->out = (kvz_cache *)1; /* must become NULL on failure */
    return x->clone ? kvz_cache_clone(x->src, &x->out) : kvz_cache_create(&x->cfg, &x->out);
}

static void create_check(void *v, kvz_status st, int failed)
{
    create_ctx *x = v;
    if (st != KVZ_OK) {
        assert_null(x->out);
        if (x->src)
            assert_same_cache(x->src, x->want, 1);
        return;
    }
    if (x->clone)
        assert_same_cache(x->out, x->src, 0);
    append_all(x->out, 0, 5); /* usable */
    kvz_cache_destroy(x->out);
}

static void test_cache_create(void **state)
{
    (void)state;
    static const size_t window[L] = {0, 8, 0};
    create_ctx x = {.cfg = {sizeof x.cfg, L, H, D, KVZ_DTYPE_F16, 0, NULL}};
    sweep(&(fault_path){"kvz_cache_create", NULL, create_call, create_check}, &x);
    x.cfg.reserve = 100, x.cfg.layer_window = window;
    sweep(&(fault_path){"kvz_cache_create reserve", NULL, create_call, create_check}, &x);
    x.clone = 1;
    x.src = new_cache(KVZ_DTYPE_F16, window, 0);
    append_all(x.src, 0, 70);
    x.want = clone_of(x.src);
    sweep(&(fault_path){"kvz_cache_clone", NULL, create_call, create_check}, &x);
    kvz_cache_destroy(x.src), kvz_cache_destroy(x.want);
}

/* kvz_cache_append, kvz_cache_append_at and kvz_cache_reserve on a fresh cache every run:
 * on failure the cache equals its copy from before; the call repeated then succeeds. */
typedef struct modify_ctx {
    const size_t *window;
    size_t held, layer, n, reserve; /* rows appended first; the call's layer and tokens */
    int op;                         /* 0 append, 1 append_at, 2 reserve */
    kvz_cache *c, *before, *want;
} modify_ctx;

static kvz_cache *modify_fresh(const modify_ctx *x)
{
    kvz_cache *c = new_cache(KVZ_DTYPE_BF16, x->window, 0);
    append_all(c, 0, x->held);
    return c;
}

static kvz_status modify_call(void *v)
{
    modify_ctx *x = v;
    const float *k = kbuf + x->held * H * D, *vv = vbuf + x->held * H * D;
    int64_t pos[MAX_TOK];
    for (size_t t = 0; t < x->n; t++)
        pos[t] = (int64_t)(x->held + t) + (x->window && x->window[x->layer] ? 0 : (int64_t)t);
    switch (x->op) {
    case 0: return kvz_cache_append(x->c, x->layer, x->n, k, vv, H * D, D);
    case 1: return kvz_cache_append_at(x->c, x->layer, x->n, k, vv, H * D, D, pos);
    default: return kvz_cache_reserve(x->c, x->reserve);
    }
}

static void modify_setup(void *v)
{
    modify_ctx *x = v;
    x->c = modify_fresh(x);
    x->before = clone_of(x->c);
}

static void modify_check(void *v, kvz_status st, int failed)
{
    modify_ctx *x = v;
    if (st != KVZ_OK) {
        assert_same_cache(x->c, x->before, 0);    /* some heads may have grown before one could not */
        assert_int_equal(modify_call(x), KVZ_OK); /* the same call works now */
    }
    assert_same_cache(x->c, x->want, !failed && x->op != 2);
    kvz_cache_destroy(x->c), kvz_cache_destroy(x->before);
    x->c = x->before = NULL;
}

static void modify_sweep(const char *name, modify_ctx *x)
{
    x->c = modify_fresh(x);
    assert_int_equal(modify_call(x), KVZ_OK);
    x->want = x->c;
    sweep(&(fault_path){name, modify_setup, modify_call, modify_check}, x);
    kvz_cache_destroy(x->want);
}

static void test_cache_append(void **state)
{
    (void)state;
    static const size_t window[L] = {0, 8, 0};
    /* 64 rows fill a segment's first buffer: the next append moves every head to a larger one */
    modify_sweep("kvz_cache_append grow", &(modify_ctx){.held = 64, .layer = 1, .n = 10});
    modify_sweep("kvz_cache_append_at grow", &(modify_ctx){.held = 64, .layer = 2, .n = 10, .op = 1});
    /* a sliding-window layer drops its old rows first and still needs a larger buffer */
    modify_sweep("kvz_cache_append window", &(modify_ctx){.window = window, .held = 70, .layer = 1, .n = 200});
    /* ... or drops them and shrinks a buffer a long append made (a shrink that fails is no failure) */
    modify_sweep("kvz_cache_append shrink", &(modify_ctx){.window = window, .held = 300, .layer = 1, .n = 1});
    modify_sweep("kvz_cache_reserve", &(modify_ctx){.held = 30, .reserve = 100, .op = 2});
}

/* kvz_cache_compact: on failure the cache is unchanged, on success it equals the reference. */
typedef struct compact_ctx {
    uint8_t *keep[L * H];
    kvz_cache *c, *before, *want;
} compact_ctx;

static void compact_setup(void *v)
{
    compact_ctx *x = v;
    x->c = new_cache(KVZ_DTYPE_F32, NULL, 0);
    append_all(x->c, 0, 200);
    x->before = clone_of(x->c);
}

static kvz_status compact_call(void *v)
{
    compact_ctx *x = v;
    return kvz_cache_compact(x->c, (const uint8_t *const *)x->keep);
}

static void compact_check(void *v, kvz_status st, int failed)
{
    compact_ctx *x = v;
    if (st != KVZ_OK) {
        assert_same_cache(x->c, x->before, 1);
        assert_int_equal(compact_call(x), KVZ_OK);
    }
    if (x->want)
        assert_same_cache(x->c, x->want, !failed);
    else
        x->want = x->c, x->c = NULL; /* the warm-up run's result is the reference */
    kvz_cache_destroy(x->c), kvz_cache_destroy(x->before);
}

static void test_cache_compact(void **state)
{
    (void)state;
    compact_ctx x = {0};
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    for (size_t i = 0; i < L * H; i++) { /* few survivors: every segment shrinks */
        x.keep[i] = tu_malloc(200);
        for (size_t j = 0; j < 200; j++)
            x.keep[i][j] = tu_uniform(&r, 0, 1) < 0.1f + 0.05f * (float)i;
    }
    sweep(&(fault_path){"kvz_cache_compact", compact_setup, compact_call, compact_check}, &x);
    kvz_cache_destroy(x.want);
    for (size_t i = 0; i < L * H; i++)
        free(x.keep[i]);
}

/* kvz_cache_save over an earlier file, and kvz_cache_load */
typedef struct file_ctx {
    char dir[64], path[128];
    kvz_cache *c, *old, *loaded, *saved; /* saved: c as a file holds it (a window's last rows) */
    unsigned char *old_bytes;
    size_t old_n;
    kvz_cache_meta meta;
} file_ctx;

/* The names in the directory besides "." and "..". */
static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void save_setup(void *v)
{
    file_ctx *x = v;
    tu_spit(x->path, x->old_bytes, x->old_n);
}

static kvz_status save_call(void *v)
{
    file_ctx *x = v;
    return kvz_cache_save(x->c, x->path, &x->meta);
}

static void save_check(void *v, kvz_status st, int failed)
{
    file_ctx *x = v;
    assert_int_equal(dir_entries(x->dir), 1); /* no temporary file left */
    kvz_cache *got = NULL;
    assert_int_equal(kvz_cache_load(x->path, NULL, &got, NULL), KVZ_OK);
    assert_same_cache(got, st == KVZ_OK ? x->saved : x->old, 0); /* the new file, or the earlier one intact */
    kvz_cache_destroy(got);
}

static kvz_status load_call(void *v)
{
    file_ctx *x = v;
    x->loaded = (kvz_cache *)1;
    kvz_cache_meta m = {.struct_size = sizeof m};
    const kvz_status st = kvz_cache_load(x->path, x->meta.model_fingerprint, &x->loaded, &m);
    if (st == KVZ_OK)
        assert_memory_equal(&m, &x->meta, sizeof m);
    return st;
}

static void load_check(void *v, kvz_status st, int failed)
{
    file_ctx *x = v;
    if (st != KVZ_OK) {
        assert_null(x->loaded);
        return;
    }
    assert_same_cache(x->loaded, x->saved, 1);
    kvz_cache_destroy(x->loaded);
}

static void test_cache_files(void **state)
{
    (void)state;
    static const size_t window[L] = {0, 8, 0};
    file_ctx x = {.meta = {.struct_size = sizeof x.meta, .policy = "kvzip-pair", .ratio = 0.25}};
    for (size_t i = 0; i < sizeof x.meta.model_fingerprint; i++)
        x.meta.model_fingerprint[i] = (uint8_t)(7 * i + 1);
    snprintf(x.dir, sizeof x.dir, "/tmp/kvz-alloc-XXXXXX");
    assert_non_null(mkdtemp(x.dir));
    snprintf(x.path, sizeof x.path, "%s/cache.kvz", x.dir);
    x.old = new_cache(KVZ_DTYPE_F16, NULL, 0);
    append_all(x.old, 0, 9);
    assert_int_equal(kvz_cache_save(x.old, x.path, NULL), KVZ_OK);
    x.old_bytes = tu_slurp(x.path, &x.old_n);
    x.c = new_cache(KVZ_DTYPE_F16, window, 0);
    append_all(x.c, 0, 90);
    assert_int_equal(kvz_cache_save(x.c, x.path, &x.meta), KVZ_OK);
    assert_int_equal(kvz_cache_load(x.path, NULL, &x.saved, NULL), KVZ_OK);
    sweep(&(fault_path){"kvz_cache_save", save_setup, save_call, save_check}, &x);
    assert_int_equal(kvz_cache_save(x.c, x.path, &x.meta), KVZ_OK);
    sweep(&(fault_path){"kvz_cache_load", NULL, load_call, load_check}, &x);
    unlink(x.path);
    rmdir(x.dir);
    free(x.old_bytes);
    kvz_cache_destroy(x.c), kvz_cache_destroy(x.old), kvz_cache_destroy(x.saved);
}

/* Queries: creation (a failed one leaves the cache writable), appends and attention. */
typedef struct query_ctx {
    kvz_cache *base;
    kvz_query *q;
    size_t n_q;
    float *out, *want;
    int op; /* 0 create, 1 append, 2 attend */
} query_ctx;

static kvz_attend_args attend_args(query_ctx *x, float *out)
{
    /* two query heads per KV head, any numbers as queries */
    return (kvz_attend_args){.struct_size = sizeof(kvz_attend_args),
                             .group = 2,
                             .n_q = x->n_q,
                             .q = kbuf,
                             .q_token_stride = 2 * H * D,
                             .q_head_stride = D,
                             .out = out,
                             .out_token_stride = 2 * H * D,
                             .out_head_stride = D};
}

static void query_setup(void *v)
{
    query_ctx *x = v;
    if (x->op == 0)
        return;
    assert_int_equal(kvz_query_create(x->base, &x->q), KVZ_OK);
    if (x->op == 2)
        for (size_t l = 0; l < L; l++)
            assert_int_equal(kvz_query_append(x->q, l, x->n_q, kbuf + 7 * H * D, vbuf, H * D, D), KVZ_OK);
}

static kvz_status query_call(void *v)
{
    query_ctx *x = v;
    switch (x->op) {
    case 0: x->q = (kvz_query *)1; return kvz_query_create(x->base, &x->q);
    case 1: return kvz_query_append(x->q, 1, x->n_q, kbuf + 7 * H * D, vbuf, H * D, D);
    default: {
        const kvz_attend_args a = attend_args(x, x->out);
        return kvz_query_attend(x->q, 1, &a);
    }
    }
}

static void query_check(void *v, kvz_status st, int failed)
{
    query_ctx *x = v;
    if (x->op == 0 && st != KVZ_OK) {
        assert_null(x->q);
        assert_int_equal(kvz_cache_reserve(x->base, 0), KVZ_OK); /* no query holds the cache */
        return;
    }
    int64_t next;
    if (x->op == 1) {
        assert_int_equal(kvz_query_next_position(x->q, 1, &next), KVZ_OK);
        if (st != KVZ_OK) /* nothing appended; the same call works now */
            assert_int_equal(query_call(x), KVZ_OK);
        assert_int_equal(kvz_query_next_position(x->q, 1, &next), KVZ_OK);
        int64_t base_next;
        assert_int_equal(kvz_cache_next_position(x->base, 1, &base_next), KVZ_OK);
        assert_int_equal(next, base_next + (int64_t)x->n_q);
    }
    if (x->op == 2 && st != KVZ_OK)
        assert_int_equal(query_call(x), KVZ_OK);
    if (x->op == 0) /* usable */
        assert_int_equal(kvz_query_append(x->q, 1, x->n_q, kbuf + 7 * H * D, vbuf, H * D, D), KVZ_OK);
    if (x->op == 2) {
        if (x->want)
            assert_memory_equal(x->out, x->want, x->n_q * 2 * H * D * sizeof(float));
        else
            x->want = tu_malloc(x->n_q * 2 * H * D * sizeof(float)),
            memcpy(x->want, x->out, x->n_q * 2 * H * D * sizeof(float));
    }
    kvz_query_destroy(x->q);
    x->q = NULL;
}

static void test_query(void **state)
{
    (void)state;
    query_ctx x = {.n_q = 5};
    x.base = new_cache(KVZ_DTYPE_BF16, NULL, 0);
    append_all(x.base, 0, 100);
    x.out = tu_malloc(x.n_q * 2 * H * D * sizeof(float));
    const char *names[3] = {"kvz_query_create", "kvz_query_append", "kvz_query_attend"};
    for (x.op = 0; x.op < 3; x.op++)
        sweep(&(fault_path){names[x.op], query_setup, query_call, query_check}, &x);
    free(x.want);
    x.want = NULL, x.op = 2;
    set_threads(2);
    sweep(&(fault_path){"kvz_query_attend, 2 threads", query_setup, query_call, query_check}, &x);
    set_threads(1);
    kvz_cache_destroy(x.base);
    free(x.out), free(x.want);
}

/* ---- the model runner on stories260K (and SmolLM2 when not quick) --------------------------- */

typedef struct model_ctx {
    char path[1024];
    kvz_model *m, *loaded;
    uint8_t fingerprint[32];
    /* KVzip */
    kvz_kvzip_pieces p;
    kvz_kvzip_opts ko;
    kvz_policy_args pa;
    int fresh; /* a model loaded for every run: its first use allocates too */
    kvz_cache *c, *want;
    float *scores, *want_scores;
    size_t n_c, n_scores;
    /* FastKV */
    kvz_fastkv_opts fo;
    float *logits, *want_logits;
} model_ctx;

enum { N_SYS = 4, N_C = 41, N_FAST = 100 };
static const int32_t SYS[N_SYS] = {1, 300, 301, 302};
static const int32_t RF[3] = {310, 311, 312}, RN[4] = {320, 321, 322, 323}, POST[2] = {330, 331};
static int32_t ids[N_FAST];

static void make_ids(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    ids[0] = 1;
    for (size_t i = 1; i < N_FAST; i++)
        ids[i] = (int32_t)tu_range(&r, 259, 511);
}

static kvz_status load_model_call(void *v)
{
    model_ctx *x = v;
    x->loaded = (kvz_model *)1;
    const kvz_model_opts o = {.bf16_weights = -1};
    return kvz_model_load(x->path, &o, &x->loaded);
}

static void load_model_check(void *v, kvz_status st, int failed)
{
    model_ctx *x = v;
    if (st != KVZ_OK) {
        assert_null(x->loaded);
        return;
    }
    assert_memory_equal(x->loaded->fingerprint, x->fingerprint, 32);
    kvz_model_free(x->loaded);
}

static void model_load_sweep(const char *name, const char *path)
{
    model_ctx x = {0};
    snprintf(x.path, sizeof x.path, "%s", path);
    kvz_model *m = NULL;
    const kvz_model_opts o = {.bf16_weights = -1};
    assert_int_equal(kvz_model_load(x.path, &o, &m), KVZ_OK);
    memcpy(x.fingerprint, m->fingerprint, 32);
    kvz_model_free(m);
    sweep(&(fault_path){name, NULL, load_model_call, load_model_check}, &x);
}

static void test_model_load(void **state)
{
    (void)state;
    const char *path;
    TU_NEED_SHARED(path, TU_STORIES);
    model_load_sweep("kvz_model_load stories260K", path);
    if (tu_quick())
        return;
    TU_NEED_MODEL(path, TU_SMOLLM2);
    model_load_sweep("kvz_model_load SmolLM2", path);
}

static kvz_model *load_stories(char *path_out, size_t size)
{
    const char *path = tu_shared_file(TU_STORIES);
    if (!path)
        return NULL;
    snprintf(path_out, size, "%s", path);
    kvz_model *m = NULL;
    const kvz_model_opts o = {.bf16_weights = 0};
    assert_int_equal(kvz_model_load(path_out, &o, &m), KVZ_OK);
    return m;
}

/* kvz_kvzip_build, as kvz compress runs it: the result equals the warm-up run's whenever the call succeeds. */
static void kvzip_setup(void *v)
{
    model_ctx *x = v;
    const kvz_model_opts o = {.bf16_weights = 0};
    if (x->fresh)
        assert_int_equal(kvz_model_load(x->path, &o, &x->m), KVZ_OK);
}

static kvz_status kvzip_call(void *v)
{
    model_ctx *x = v;
    x->c = (kvz_cache *)1;
    return kvz_kvzip_build(x->m, &x->p, ids + N_SYS, x->n_c, &x->ko, &x->pa, &x->c, &x->scores, NULL);
}

static void kvzip_check(void *v, kvz_status st, int failed)
{
    model_ctx *x = v;
    if (st != KVZ_OK) {
        assert_null(x->c);
        assert_null(x->scores);
    } else if (!x->want) {
        x->want = x->c, x->want_scores = x->scores;
    } else {
        assert_same_cache(x->c, x->want, 0);
        assert_true(!x->scores == !x->want_scores);
        if (x->scores)
            assert_memory_equal(x->scores, x->want_scores, x->n_scores * sizeof(float));
        kvz_cache_destroy(x->c), free(x->scores);
    }
    if (x->fresh)
        kvz_model_free(x->m);
}

static void test_kvzip_build(void **state)
{
    (void)state;
    model_ctx x = {0};
    if (!(x.m = load_stories(x.path, sizeof x.path))) {
        skip();
        return;
    }
    make_ids();
    x.p = (kvz_kvzip_pieces){SYS, N_SYS, RF, 3, RN, 4, POST, 2};
    kvz_kvzip_defaults(&x.ko);
    static const struct {
        kvz_policy policy;
        const char *name;
    } policies[] = {{KVZ_POLICY_KVZIP_PAIR, "kvz_kvzip_build kvzip-pair"},
                    {KVZ_POLICY_SNAPKV, "kvz_kvzip_build snapkv"},
                    {KVZ_POLICY_H2O, "kvz_kvzip_build h2o"}};
    /* one thread: three passes and several prefill steps; two threads: one pass and one
       prefill step of more than a query block's tokens, which split into slices with private
       score rows (and H2O's accumulation rows), merged after */
    for (int t = 1; t <= 2; t++) {
        set_threads(t);
        x.n_c = t == 1 ? N_C : N_FAST - N_SYS;
        x.ko.chunk = t == 1 ? 16 : x.n_c, x.ko.prev_tokens = 8, x.ko.prefill_chunk = t == 1 ? 7 : 0;
        x.n_scores = x.m->hp.n_layers * x.m->hp.n_head_kv * x.n_c;
        for (size_t i = 0; i < sizeof policies / sizeof *policies; i++) {
            if (t > 1 && policies[i].policy == KVZ_POLICY_SNAPKV)
                continue;
            char name[64];
            snprintf(name, sizeof name, "%s%s", policies[i].name, t > 1 ? ", 2 threads" : "");
            x.pa = (kvz_policy_args){
                .struct_size = sizeof x.pa, .policy = policies[i].policy, .ratio = 0.4, .sinks = 2};
            sweep(&(fault_path){name, kvzip_setup, kvzip_call, kvzip_check}, &x);
            kvz_cache_destroy(x.want), free(x.want_scores);
            x.want = NULL, x.want_scores = NULL;
            if (t == 1 && i == 0) { /* kvz compress runs it on a model that has not run yet */
                kvz_model *warm = x.m;
                x.fresh = 1;
                sweep(&(fault_path){"kvz_kvzip_build kvzip-pair, fresh model", kvzip_setup, kvzip_call,
                                    kvzip_check},
                      &x);
                kvz_cache_destroy(x.want), free(x.want_scores);
                x.want = NULL, x.want_scores = NULL, x.fresh = 0, x.m = warm;
            }
        }
    }
    set_threads(1);
    kvz_model_free(x.m);
}

/* kvz_fastkv_prefill into a fresh cache: a failed prefill's cache is only destroyed (as documented). */
static void fastkv_setup(void *v)
{
    model_ctx *x = v;
    assert_int_equal(kvz_model_cache_create(x->m, KVZ_DTYPE_BF16, &x->c), KVZ_OK);
}

static kvz_status fastkv_call(void *v)
{
    model_ctx *x = v;
    return kvz_fastkv_prefill(x->m, x->c, ids, N_FAST, &x->fo, x->logits, NULL);
}

static void fastkv_check(void *v, kvz_status st, int failed)
{
    model_ctx *x = v;
    if (st == KVZ_OK) {
        if (!x->want) {
            x->want = x->c, x->c = NULL;
            x->want_logits = tu_malloc(x->m->hp.n_vocab * sizeof(float));
            memcpy(x->want_logits, x->logits, x->m->hp.n_vocab * sizeof(float));
            return;
        }
        assert_same_cache(x->c, x->want, 0);
        assert_memory_equal(x->logits, x->want_logits, x->m->hp.n_vocab * sizeof(float));
    }
    kvz_cache_destroy(x->c);
    x->c = NULL;
}

static void test_fastkv_prefill(void **state)
{
    (void)state;
    model_ctx x = {0};
    if (!(x.m = load_stories(x.path, sizeof x.path))) {
        skip();
        return;
    }
    make_ids();
    kvz_fastkv_defaults(&x.fo);
    x.fo.tsp_len = 60, x.fo.budget = 40, x.fo.chunk = 32;
    x.logits = tu_malloc(x.m->hp.n_vocab * sizeof(float));
    sweep(&(fault_path){"kvz_fastkv_prefill", fastkv_setup, fastkv_call, fastkv_check}, &x);
    kvz_cache_destroy(x.want);
    x.want = NULL;
    free(x.want_logits);
    set_threads(2);
    x.fo.chunk = 0; /* all tokens of a layer at once: several slices per head */
    sweep(&(fault_path){"kvz_fastkv_prefill, 2 threads", fastkv_setup, fastkv_call, fastkv_check}, &x);
    set_threads(1);
    kvz_cache_destroy(x.want);
    x.want = NULL;
    free(x.want_logits);
    /* with sliding-window layers (0, 2, 4; window 16): their rows dropped as the chunks go in */
    x.m->hp.swa_window = 16, x.m->hp.swa_period = 2, x.m->hp.rope_base_swa = x.m->hp.rope_base;
    x.fo.chunk = 32, x.fo.tsp_layer = 1;
    sweep(&(fault_path){"kvz_fastkv_prefill, sliding windows", fastkv_setup, fastkv_call, fastkv_check}, &x);
    kvz_cache_destroy(x.want);
    free(x.logits), free(x.want_logits);
    kvz_model_free(x.m);
}

/* ---- libkvz-model: opening a model, and the token-level calls into a query's tail -------------- */

typedef struct lm_ctx {
    char path[1024];
    int vocab_only;
    kvz_lm *lm, *opened;
    uint8_t fingerprint[32];
    kvz_cache *c;
    float *logits;
    int32_t out[4], want[4];
    size_t n_out;
    float *scores, *want_scores; /* kvz_lm_compress_ids's, n_scores of them */
    size_t n_scores, want_kept;
    kvz_cache *made;
} lm_ctx;

static kvz_status lm_open_call(void *v)
{
    lm_ctx *x = v;
    x->opened = (kvz_lm *)1;
    const kvz_lm_config c = {.struct_size = sizeof c, .vocab_only = x->vocab_only};
    return kvz_lm_open(x->path, &c, &x->opened);
}

static void lm_open_check(void *v, kvz_status st, int failed)
{
    (void)failed;
    lm_ctx *x = v;
    if (st != KVZ_OK) {
        assert_null(x->opened);
        return;
    }
    kvz_lm_info i = {.struct_size = sizeof i};
    assert_int_equal(kvz_lm_get_info(x->opened, &i), KVZ_OK);
    assert_memory_equal(i.model_fingerprint, x->fingerprint, 32);
    kvz_lm_close(x->opened);
}

/* A question's ids through a query's tail over the shared cache, and a few ids decoded. */
static kvz_status lm_query_call(void *v)
{
    lm_ctx *x = v;
    kvz_query *q = NULL;
    const kvz_lm_gen_opts go = {.struct_size = sizeof go, .max_tokens = 4, .no_stop = 1};
    kvz_status st = kvz_query_create(x->c, &q);
    if (st == KVZ_OK)
        st = kvz_lm_prefill(x->lm, NULL, q, ids + 8, 6, x->logits);
    if (st == KVZ_OK)
        st = kvz_lm_decode(x->lm, NULL, q, x->logits, &go, x->out, &x->n_out);
    kvz_query_destroy(q);
    return st;
}

static void lm_query_check(void *v, kvz_status st, int failed)
{
    (void)failed;
    lm_ctx *x = v;
    size_t rows = 0;
    assert_int_equal(kvz_cache_length(x->c, 0, 0, &rows), KVZ_OK);
    assert_int_equal(rows, 8); /* the shared cache is never changed */
    if (st != KVZ_OK)
        return;
    assert_int_equal(x->n_out, 4);
    if (!x->want[0])
        memcpy(x->want, x->out, sizeof x->want);
    assert_memory_equal(x->out, x->want, sizeof x->want);
}

/* KVzip through kvz_lm_compress_ids on the context ids, with the token scores and the report. */
static kvz_status lm_compress_call(void *v)
{
    lm_ctx *x = v;
    x->made = (kvz_cache *)1;
    const kvz_lm_compress_opts o = {.struct_size = sizeof o,
                                    .policy = KVZ_POLICY_KVZIP_PAIR,
                                    .ratio = 0.5,
                                    .kv = KVZ_KV_F32,
                                    .chunk = 4,
                                    .scores = x->scores};
    kvz_lm_compress_report rep = {.struct_size = sizeof rep};
    const kvz_status st = kvz_lm_compress_ids(x->lm, ids, 8, &o, &x->made, &rep);
    x->n_out = rep.n_kept;
    return st;
}

/* A made cache: none after a failure, else destroyed; whether the call succeeded. */
static int made_ok(lm_ctx *x, kvz_status st)
{
    if (st != KVZ_OK) {
        assert_null(x->made);
        return 0;
    }
    kvz_cache_destroy(x->made);
    return 1;
}

static void lm_compress_check(void *v, kvz_status st, int failed)
{
    (void)failed;
    lm_ctx *x = v;
    if (!made_ok(x, st))
        return;
    if (!x->want_scores) {
        x->want_scores = tu_malloc(x->n_scores * sizeof(float));
        memcpy(x->want_scores, x->scores, x->n_scores * sizeof(float));
        x->want_kept = x->n_out;
    }
    assert_memory_equal(x->scores, x->want_scores, x->n_scores * sizeof(float));
    assert_int_equal(x->n_out, x->want_kept);
}

/* FastKV's prefill through kvz_lm_fastkv, with the logits and the report. */
static kvz_status lm_fastkv_call(void *v)
{
    lm_ctx *x = v;
    x->made = (kvz_cache *)1;
    const kvz_lm_fastkv_opts o = {
        .struct_size = sizeof o, .tsp_rate = 0.5, .retain_rate = 0.5, .window = 2, .kv = KVZ_KV_F32};
    kvz_lm_fastkv_report rep = {.struct_size = sizeof rep};
    const kvz_status st = kvz_lm_fastkv(x->lm, ids, 8, &o, &x->made, x->logits, &rep);
    x->n_out = rep.tsp_tokens;
    return st;
}

static void lm_fastkv_check(void *v, kvz_status st, int failed)
{
    (void)failed;
    lm_ctx *x = v;
    if (made_ok(x, st))
        assert_true(x->n_out > 0);
}

static void test_lm(void **state)
{
    (void)state;
    lm_ctx x = {0};
    const char *path;
    TU_NEED_SHARED(path, TU_STORIES);
    snprintf(x.path, sizeof x.path, "%s", path);
    const kvz_lm_config f32 = {.struct_size = sizeof f32, .weights = KVZ_WEIGHTS_F32};
    assert_int_equal(kvz_lm_open(x.path, &f32, &x.lm), KVZ_OK);
    kvz_lm_info i = {.struct_size = sizeof i};
    assert_int_equal(kvz_lm_get_info(x.lm, &i), KVZ_OK);
    memcpy(x.fingerprint, i.model_fingerprint, 32);
    sweep(&(fault_path){"kvz_lm_open stories260K", NULL, lm_open_call, lm_open_check}, &x);
    x.vocab_only = 1;
    sweep(&(fault_path){"kvz_lm_open stories260K, vocab_only", NULL, lm_open_call, lm_open_check}, &x);

    make_ids();
    x.logits = tu_malloc(i.n_vocab * sizeof(float));
    assert_int_equal(kvz_lm_new_cache(x.lm, KVZ_DTYPE_F32, &x.c), KVZ_OK);
    assert_int_equal(kvz_lm_prefill(x.lm, x.c, NULL, ids, 8, NULL), KVZ_OK);
    sweep(&(fault_path){"kvz_lm_prefill + kvz_lm_decode, query", NULL, lm_query_call, lm_query_check}, &x);
    x.n_scores = i.n_layers * i.n_kv_heads * 8;
    x.scores = tu_malloc(x.n_scores * sizeof(float));
    sweep(&(fault_path){"kvz_lm_compress_ids, KVzip with scores", NULL, lm_compress_call, lm_compress_check},
          &x);
    sweep(&(fault_path){"kvz_lm_fastkv, with TSP", NULL, lm_fastkv_call, lm_fastkv_check}, &x);
    kvz_cache_destroy(x.c);
    free(x.logits), free(x.scores), free(x.want_scores);
    kvz_lm_close(x.lm);
}

int main(void)
{
    set_threads(1);
    fill_kv();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_create),  cmocka_unit_test(test_cache_append),
        cmocka_unit_test(test_cache_compact), cmocka_unit_test(test_cache_files),
        cmocka_unit_test(test_query),         cmocka_unit_test(test_model_load),
        cmocka_unit_test(test_kvzip_build),   cmocka_unit_test(test_fastkv_prefill),
        cmocka_unit_test(test_lm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
