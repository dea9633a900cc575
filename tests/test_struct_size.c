/* The struct_size rule of every public struct (kvz.h's; kvz_model.h's on stories260K, in the model
 * tier): each call takes its struct at the first release's size, at the current size and larger (zeros past
 * ours), with the same result; refuses a smaller size and a larger struct with fields set past ours; writes a
 * result struct only up to the caller's struct_size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvz_model.h"
#include "testutil.h"

/* One call on a copy of an argument struct (which it may point at its result): the result
 * bytes go to `result`. */
typedef kvz_status (*run_fn)(void *args, unsigned char *result);

enum { TAIL = 64, RESULT = 4096 };

/* Runs `run` on a copy of args (`cur` bytes, our sizeof) with struct_size = size: the copy
 * is `size` bytes of args (zeros past cur) in a buffer with room to spare, and byte
 * `dirty` (when < size) set to 1. */
static kvz_status run_at(run_fn run, const void *args, size_t cur, size_t size, size_t dirty,
                         unsigned char *result)
{
    unsigned char *buf = tu_calloc(cur + TAIL, 1);
    memcpy(buf, args, size < cur ? size : cur);
    memcpy(buf, &size, sizeof size); /* struct_size is the first member */
    if (dirty < size)
        buf[dirty] = 1;
    memset(result, 0xA5, RESULT);
    const kvz_status st = run(buf, result);
    free(buf);
    return st;
}

/* An argument struct of `cur` bytes whose first release ended at `first` bytes; args has the
 * documented defaults (zeros) in every field past `first`. */
static void check_input(const char *name, run_fn run, const void *args, size_t cur, size_t first)
{
    unsigned char *want = tu_malloc(RESULT), *got = tu_malloc(RESULT);
    assert_int_equal(run_at(run, args, cur, cur, SIZE_MAX, want), KVZ_OK);
    const size_t sizes[] = {first, (first + cur) / 2, cur, cur + 8, cur + TAIL};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const kvz_status st = run_at(run, args, cur, sizes[i], SIZE_MAX, got);
        if (st != KVZ_OK || memcmp(got, want, RESULT))
            fail_msg("%s at struct_size %zu (ours %zu, 0.1's %zu): status %d, result %s", name, sizes[i], cur,
                     first, (int)st, st == KVZ_OK ? "differs" : kvz_last_error());
    }
    /* a field of a later release set: refused, nothing written */
    assert_int_equal(run_at(run, args, cur, cur + 16, cur + 9, got), KVZ_ERR_UNSUPPORTED);
    assert_non_null(strstr(kvz_last_error(), name));
    /* below the first release's size */
    assert_int_equal(run_at(run, args, cur, first - 1, SIZE_MAX, got), KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "struct_size"));
    assert_int_equal(run_at(run, args, cur, 0, SIZE_MAX, got), KVZ_ERR_INVALID_ARG);
    free(want), free(got);
}

/* ---- the calls ------------------------------------------------------------------------ */

enum { HK = 2, G = 2, D = 16, NK = 24, NQ = 3 };
static float q[NQ * HK * G * D], kf[NK * HK * D], vf[NK * HK * D];

static void fill_inputs(void)
{
    tu_rng r;
    tu_rng_init(&r, 7);
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
        q[i] = tu_uniform(&r, -1, 1);
    for (size_t i = 0; i < sizeof kf / sizeof kf[0]; i++)
        kf[i] = tu_uniform(&r, -1, 1), vf[i] = tu_uniform(&r, -1, 1);
}

static kvz_status run_prefill(void *args, unsigned char *result)
{
    float *out = (float *)result; /* NQ x HK x G x D floats */
    memcpy((char *)args + offsetof(kvz_attn_args, out), &out, sizeof out);
    return kvz_attn_prefill(args);
}

static void test_attn_args(void **state)
{
    (void)state;
    fill_inputs();
    const kvz_attn_args a = {.struct_size = sizeof a,
                             .n_kv_heads = HK,
                             .group = G,
                             .head_dim = D,
                             .n_q = NQ,
                             .n_k = NK,
                             .q_pos0 = NK - NQ,
                             .q = q,
                             .q_token_stride = HK * G * D,
                             .q_head_stride = D,
                             .k = kf,
                             .v = vf,
                             .kv_dtype = KVZ_DTYPE_F32,
                             .kv_head_stride = D,
                             .kv_row_stride = HK * D,
                             .out_token_stride = HK * G * D,
                             .out_head_stride = D};
    /* accum came after the 0.1 layout: a struct that ends before it means no accumulation */
    check_input("kvz_attn_args", run_prefill, &a, sizeof a, offsetof(kvz_attn_args, accum));
}

static kvz_status run_varlen(void *args, unsigned char *result)
{
    float *out = (float *)result;
    memcpy((char *)args + offsetof(kvz_varlen_args, out), &out, sizeof out);
    return kvz_attn_decode_varlen(args);
}

static void test_varlen_args(void **state)
{
    (void)state;
    fill_inputs();
    static const int32_t cu[HK + 1] = {0, 10, NK};
    const kvz_varlen_args a = {.struct_size = sizeof a,
                               .n_kv_heads = HK,
                               .group = G,
                               .head_dim = D,
                               .q_len = 1,
                               .q = q,
                               .k = kf,
                               .v = vf,
                               .kv_dtype = KVZ_DTYPE_F32,
                               .kv_row_stride = D,
                               .cu_len = cu};
    check_input("kvz_varlen_args", run_varlen, &a, sizeof a, sizeof a);
}

static kvz_status run_window(void *args, unsigned char *result)
{
    float *out = (float *)result;
    memcpy((char *)args + offsetof(kvz_window_args, out), &out, sizeof out);
    return kvz_window_score(args);
}

static void test_window_args(void **state)
{
    (void)state;
    fill_inputs();
    const kvz_window_args a = {.struct_size = sizeof a,
                               .n_kv_heads = HK,
                               .group = G,
                               .head_dim = D,
                               .n = NK,
                               .window = NQ - 1,
                               .kernel = 3,
                               .pool = KVZ_POOL_AVG,
                               .q = q,
                               .q_token_stride = HK * G * D,
                               .q_head_stride = D,
                               .k = kf,
                               .k_dtype = KVZ_DTYPE_F32,
                               .k_head_stride = D,
                               .k_row_stride = HK * D,
                               .out_head_stride = NK};
    check_input("kvz_window_args", run_window, &a, sizeof a, sizeof a);
}

static float score_rows[HK][NK];
static const float *score_ptrs[HK] = {score_rows[0], score_rows[1]};

static kvz_status run_policy(void *args, unsigned char *result)
{
    uint8_t *keep[HK] = {result, result + NK};
    size_t kept = 0;
    const kvz_status st = kvz_policy_select(args, keep, &kept);
    memcpy(result + HK * NK, &kept, sizeof kept);
    return st;
}

static void test_policy_args(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, 3);
    for (size_t h = 0; h < HK; h++)
        for (size_t t = 0; t < NK; t++)
            score_rows[h][t] = tu_uniform(&r, 0, 1);
    const kvz_policy_args a = {.struct_size = sizeof a,
                               .policy = KVZ_POLICY_KVZIP_PAIR,
                               .n_layers = 1,
                               .n_kv_heads = HK,
                               .n_tokens = NK,
                               .scores = score_ptrs,
                               .ratio = 0.3};
    check_input("kvz_policy_args", run_policy, &a, sizeof a, sizeof a);
}

static kvz_status run_numa(void *args, unsigned char *result)
{
    static const uint64_t bytes[5] = {100, 700, 300, 300, 50};
    return kvz_numa_plan(args, 5, bytes, (int *)result, (uint64_t *)(result + 64), NULL);
}

static void test_numa_topology(void **state)
{
    (void)state;
    static const size_t cpus[2] = {4, 2};
    const kvz_numa_topology t = {.struct_size = sizeof t, .n_nodes = 2, .cpus = cpus};
    check_input("kvz_numa_topology", run_numa, &t, sizeof t, sizeof t);
}

/* A cache made from a config, 5 tokens appended to each layer: its shape, windows and stats. */
static kvz_status run_config(void *args, unsigned char *result)
{
    kvz_cache *c = NULL;
    kvz_status st = kvz_cache_create(args, &c);
    if (st != KVZ_OK)
        return st;
    for (size_t l = 0; l < 2 && st == KVZ_OK; l++)
        st = kvz_cache_append(c, l, 5, kf, vf, HK * D, D);
    size_t shape[4] = {0}, *w = (size_t *)(result + 64);
    kvz_cache_stats stats = {.struct_size = sizeof stats};
    if (st == KVZ_OK)
        st = kvz_cache_shape(c, &shape[0], &shape[1], &shape[2], NULL);
    for (size_t l = 0; l < 2 && st == KVZ_OK; l++)
        st = kvz_cache_layer_window(c, l, &w[l]);
    if (st == KVZ_OK)
        st = kvz_cache_get_stats(c, &stats);
    memcpy(result, shape, sizeof shape);
    memcpy(result + 128, &stats, sizeof stats);
    kvz_cache_destroy(c);
    return st;
}

static void test_cache_config(void **state)
{
    (void)state;
    fill_inputs();
    /* layer_window came after the first release: without it every layer is global */
    const kvz_cache_config c = {
        .struct_size = sizeof c, .n_layers = 2, .n_kv_heads = HK, .head_dim = D, .dtype = KVZ_DTYPE_F32};
    check_input("kvz_cache_config", run_config, &c, sizeof c, offsetof(kvz_cache_config, layer_window));
}

static kvz_status run_attend(void *args, unsigned char *result)
{
    static kvz_cache *c;
    if (!c) {
        const kvz_cache_config cfg = {
            .struct_size = sizeof cfg, .n_layers = 1, .n_kv_heads = HK, .head_dim = D, .dtype = KVZ_DTYPE_F32};
        if (kvz_cache_create(&cfg, &c) != KVZ_OK || kvz_cache_append(c, 0, NK, kf, vf, HK * D, D) != KVZ_OK)
            return KVZ_ERR_STATE;
    }
    float *out = (float *)result;
    memcpy((char *)args + offsetof(kvz_attend_args, out), &out, sizeof out);
    return kvz_cache_attend(c, 0, args);
}

static void test_attend_args(void **state)
{
    (void)state;
    fill_inputs();
    const kvz_attend_args a = {.struct_size = sizeof a,
                               .group = G,
                               .n_q = 1,
                               .q = q,
                               .q_token_stride = HK * G * D,
                               .q_head_stride = D,
                               .out_token_stride = HK * G * D,
                               .out_head_stride = D};
    check_input("kvz_attend_args", run_attend, &a, sizeof a, offsetof(kvz_attend_args, accum));
}

static char cache_path[64];

static kvz_status run_meta_save(void *args, unsigned char *result)
{
    const kvz_cache_config cfg = {
        .struct_size = sizeof cfg, .n_layers = 1, .n_kv_heads = HK, .head_dim = D, .dtype = KVZ_DTYPE_F32};
    kvz_cache *c = NULL, *back = NULL;
    kvz_status st = kvz_cache_create(&cfg, &c);
    if (st == KVZ_OK)
        st = kvz_cache_append(c, 0, 4, kf, vf, HK * D, D);
    if (st == KVZ_OK)
        st = kvz_cache_save(c, cache_path, args);
    kvz_cache_meta m = {.struct_size = sizeof m};
    if (st == KVZ_OK)
        st = kvz_cache_load(cache_path, NULL, &back, &m);
    memcpy(result, &m, sizeof m);
    kvz_cache_destroy(c), kvz_cache_destroy(back);
    return st;
}

/* kvz_cache_meta both ways: saved from any size (an input), loaded into any size (a result). */
static void test_cache_meta(void **state)
{
    (void)state;
    fill_inputs();
    snprintf(cache_path, sizeof cache_path, "test_struct_size_%ld.kvz", (long)getpid());
    kvz_cache_meta m = {.struct_size = sizeof m, .policy = "kvzip-pair", .ratio = 0.3};
    for (int i = 0; i < 32; i++)
        m.model_fingerprint[i] = (uint8_t)(i * 7);
    check_input("kvz_cache_meta", run_meta_save, &m, sizeof m, sizeof m);

    /* loading into a larger struct: our fields, zeros past them, the caller's struct_size kept */
    unsigned char big[sizeof m + 24];
    memset(big, 0x5A, sizeof big);
    const size_t big_size = sizeof big;
    memcpy(big, &big_size, sizeof big_size);
    kvz_cache *c = NULL;
    assert_int_equal(kvz_cache_load(cache_path, NULL, &c, (kvz_cache_meta *)big), KVZ_OK);
    kvz_cache_destroy(c);
    kvz_cache_meta got;
    memcpy(&got, big, sizeof got);
    assert_int_equal(got.struct_size, sizeof big);
    assert_memory_equal(got.model_fingerprint, m.model_fingerprint, 32);
    assert_string_equal(got.policy, "kvzip-pair");
    assert_true(got.ratio == 0.3);
    for (size_t i = sizeof m; i < sizeof big; i++)
        assert_int_equal(big[i], 0);
    /* below the first release's size: refused before anything is read */
    got.struct_size = 8;
    assert_int_equal(kvz_cache_load(cache_path, NULL, &c, &got), KVZ_ERR_INVALID_ARG);
    assert_null(c);
    unlink(cache_path);
}

/* A result struct: `fill` writes `want` (size bytes, our struct, already filled by the caller); at a larger
 * struct_size it writes the same fields, leaves struct_size as given and zeros past ours; at struct_size 4 it
 * refuses. */
typedef kvz_status (*fill_fn)(void *ctx, void *out);

static void check_output(fill_fn fill, void *ctx, const void *want, size_t size)
{
    const size_t big_size = size + 32;
    unsigned char *big = tu_malloc(big_size), *small = tu_calloc(1, size);
    memset(big, 0x5A, big_size);
    memcpy(big, &big_size, sizeof big_size);
    assert_int_equal(fill(ctx, big), KVZ_OK);
    size_t got_size;
    memcpy(&got_size, big, sizeof got_size);
    assert_int_equal(got_size, big_size);
    assert_memory_equal(big + sizeof got_size, (const unsigned char *)want + sizeof got_size,
                        size - sizeof got_size);
    for (size_t i = size; i < big_size; i++)
        assert_int_equal(big[i], 0);
    const size_t small_size = 4;
    memcpy(small, &small_size, sizeof small_size);
    assert_int_equal(fill(ctx, small), KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "struct_size"));
    free(big), free(small);
}

static kvz_status fill_stats(void *cache, void *out) { return kvz_cache_get_stats(cache, out); }

/* kvz_cache_stats: written up to the caller's struct_size and no further. */
static void test_cache_stats(void **state)
{
    (void)state;
    fill_inputs();
    const kvz_cache_config cfg = {
        .struct_size = sizeof cfg, .n_layers = 1, .n_kv_heads = HK, .head_dim = D, .dtype = KVZ_DTYPE_F32};
    kvz_cache *c = NULL;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    assert_int_equal(kvz_cache_append(c, 0, 7, kf, vf, HK * D, D), KVZ_OK);
    kvz_cache_stats want = {.struct_size = sizeof want};
    assert_int_equal(kvz_cache_get_stats(c, &want), KVZ_OK);
    assert_int_equal(want.rows, 7 * HK);
    assert_int_equal(want.full_rows, 7 * HK);

    check_output(fill_stats, c, &want, sizeof want);
    kvz_cache_destroy(c);
}

/* kvz_kvzip_plan in, kvz_kvzip_pass_info out: pass 1's ids and fields. */
static const int32_t plan_ctx[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, plan_rf[2] = {20, 21},
                     plan_rn[3] = {30, 31, 32}, plan_post[1] = {40};

static kvz_status run_plan(void *args, unsigned char *result)
{
    kvz_kvzip_pass_info info = {.struct_size = sizeof info};
    size_t n = 0, max_ids = 0;
    kvz_status st = kvz_kvzip_passes(args, &n, &max_ids);
    if (st == KVZ_OK)
        st = kvz_kvzip_pass(args, 1, (int32_t *)(result + 256), 64, &info);
    memcpy(result, &n, sizeof n), memcpy(result + 8, &max_ids, sizeof max_ids);
    memcpy(result + 64, &info, sizeof info);
    return st;
}

static kvz_status fill_pass(void *plan, void *out) { return kvz_kvzip_pass(plan, 1, NULL, 0, out); }

static void test_kvzip_plan(void **state)
{
    (void)state;
    const kvz_kvzip_plan p = {.struct_size = sizeof p,
                              .n_sys = 2,
                              .n_ctx = 10,
                              .ctx = plan_ctx,
                              .repeat_first = plan_rf,
                              .n_repeat_first = 2,
                              .repeat_next = plan_rn,
                              .n_repeat_next = 3,
                              .postfix = plan_post,
                              .n_postfix = 1,
                              .chunk = 4,
                              .prev_tokens = 2};
    check_input("kvz_kvzip_plan", run_plan, &p, sizeof p, sizeof p);

    /* the pass description: written up to the caller's struct_size, zeros past ours */
    kvz_kvzip_pass_info want = {.struct_size = sizeof want};
    assert_int_equal(kvz_kvzip_pass(&p, 1, NULL, 0, &want), KVZ_OK);
    assert_int_equal(want.n_ids, 3 + 2 + 1 + 4);
    assert_int_equal(want.chunk_begin, 2 + 4);
    check_output(fill_pass, (void *)&p, &want, sizeof want);
}

/* ---- kvz_model.h's structs, on the shared stories260K model (the model tier) ---------------- */

static const char *lm_path;
static kvz_lm *lm_model;
/* The end of a struct's last field: its size in the first release when that field is its last (padding after
 * it is not part of the size the library requires). */
#define END_OF(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* kvz_lm_config in: the model it opens, described by kvz_lm_get_info. */
static kvz_status run_lm_config(void *args, unsigned char *result)
{
    kvz_lm *m = NULL;
    kvz_lm_info info = {.struct_size = sizeof info};
    kvz_status st = kvz_lm_open(lm_path, args, &m);
    if (st == KVZ_OK)
        st = kvz_lm_get_info(m, &info);
    memcpy(result, &info, sizeof info);
    kvz_lm_close(m);
    return st;
}

/* kvz_lm_compress_opts in: the cache it makes, its rows and positions. */
static kvz_status run_lm_compress(void *args, unsigned char *result)
{
    kvz_cache *c = NULL;
    kvz_status st = kvz_lm_compress(
        lm_model, "Once upon a time there was a little dog who liked to run in the park.", args, &c);
    kvz_cache_stats stats = {.struct_size = sizeof stats};
    if (st == KVZ_OK)
        st = kvz_cache_get_stats(c, &stats);
    memcpy(result, &stats, sizeof stats);
    const int64_t *pos = NULL;
    size_t n = 0;
    if (st == KVZ_OK && (st = kvz_cache_length(c, 0, 0, &n)) == KVZ_OK &&
        (st = kvz_cache_positions(c, 0, 0, &pos)) == KVZ_OK)
        memcpy(result + 128, pos, (n < 64 ? n : 64) * sizeof *pos);
    kvz_cache_destroy(c);
    return st;
}

/* kvz_lm_pieces in (through kvz_lm_compress_opts.pieces): the cache it makes. */
static kvz_status run_lm_pieces(void *args, unsigned char *result)
{
    const kvz_lm_compress_opts co = {
        .struct_size = sizeof co, .policy = KVZ_POLICY_KVZIP_PAIR, .ratio = 0.5, .chunk = 8, .pieces = args};
    return run_lm_compress((void *)&co, result);
}

static const char lm_context[] = "Once upon a time there was a little dog.";

/* kvz_lm_compress_report out; the times, which differ from run to run, zeroed where written. */
static kvz_status fill_lm_report(void *lm, void *out)
{
    int32_t ids[64];
    size_t n = 0, size;
    kvz_cache *c = NULL;
    const kvz_lm_compress_opts co = {.struct_size = sizeof co, .policy = KVZ_POLICY_KVZIP_PAIR, .chunk = 4};
    kvz_status st = kvz_lm_tokenize(lm, lm_context, 0, ids, 64, &n);
    if (st == KVZ_OK)
        st = kvz_lm_compress_ids(lm, ids, n, &co, &c, out);
    kvz_cache_destroy(c);
    memcpy(&size, out, sizeof size);
    if (st == KVZ_OK && size >= sizeof(kvz_lm_compress_report))
        memset((char *)out + offsetof(kvz_lm_compress_report, prefill_s), 0,
               sizeof(kvz_lm_compress_report) - offsetof(kvz_lm_compress_report, prefill_s));
    return st;
}

/* kvz_lm_fastkv_opts in: the cache it makes, as run_lm_compress describes one. */
static kvz_status run_lm_fastkv(void *args, unsigned char *result)
{
    int32_t ids[64];
    size_t n = 0;
    kvz_cache *c = NULL;
    kvz_status st = kvz_lm_tokenize(
        lm_model, "Once upon a time there was a little dog who liked to run in the park.", 0, ids, 64, &n);
    if (st == KVZ_OK)
        st = kvz_lm_fastkv(lm_model, ids, n, args, &c, NULL, NULL);
    kvz_cache_stats stats = {.struct_size = sizeof stats};
    if (st == KVZ_OK)
        st = kvz_cache_get_stats(c, &stats);
    memcpy(result, &stats, sizeof stats);
    kvz_cache_destroy(c);
    return st;
}

/* kvz_lm_fastkv_report out; the time zeroed where written. */
static kvz_status fill_fastkv_report(void *lm, void *out)
{
    int32_t ids[64];
    size_t n = 0, size;
    kvz_cache *c = NULL;
    const kvz_lm_fastkv_opts o = {.struct_size = sizeof o, .tsp_rate = 0.5, .retain_rate = 0.8, .window = 2};
    kvz_status st = kvz_lm_tokenize(lm, lm_context, 0, ids, 64, &n);
    if (st == KVZ_OK)
        st = kvz_lm_fastkv(lm, ids, n, &o, &c, NULL, out);
    kvz_cache_destroy(c);
    memcpy(&size, out, sizeof size);
    if (st == KVZ_OK && size >= sizeof(kvz_lm_fastkv_report))
        memset((char *)out + offsetof(kvz_lm_fastkv_report, prefill_s), 0, sizeof(double));
    return st;
}

/* kvz_lm_gen_opts in: the text it generates. */
static kvz_status run_lm_gen(void *args, unsigned char *result)
{
    char *text = NULL;
    const kvz_status st = kvz_lm_generate(lm_model, "Once upon a time", args, &text);
    if (st == KVZ_OK)
        snprintf((char *)result, RESULT, "%s", text);
    kvz_lm_free(text);
    return st;
}

static kvz_status fill_lm_info(void *lm, void *out) { return kvz_lm_get_info(lm, out); }

static void test_lm_structs(void **state)
{
    (void)state;
    TU_NEED_SHARED(lm_path, TU_STORIES);
    const kvz_lm_config cfg = {.struct_size = sizeof cfg, .weights = KVZ_WEIGHTS_F32};
    check_input("kvz_lm_config", run_lm_config, &cfg, sizeof cfg, END_OF(kvz_lm_config, vocab_only));
    assert_int_equal(kvz_lm_open(lm_path, &cfg, &lm_model), KVZ_OK);
    const kvz_lm_compress_opts co = {
        .struct_size = sizeof co, .policy = KVZ_POLICY_KVZIP_PAIR, .ratio = 0.5, .chunk = 8};
    check_input("kvz_lm_compress_opts", run_lm_compress, &co, sizeof co, END_OF(kvz_lm_compress_opts, pool));
    static const int32_t sys[] = {1, 2, 3}, repeat[] = {4, 5};
    const kvz_lm_pieces pieces = {.struct_size = sizeof pieces,
                                  .ids = {[KVZ_PIECE_SYSTEM] = sys, [KVZ_PIECE_REPEAT_NEXT] = repeat},
                                  .n = {3, 0, 2, 0},
                                  .prev_tokens = 2};
    check_input("kvz_lm_pieces", run_lm_pieces, &pieces, sizeof pieces, END_OF(kvz_lm_pieces, prev_tokens));
    const kvz_lm_fastkv_opts fo = {
        .struct_size = sizeof fo, .tsp_rate = 0.5, .retain_rate = 0.8, .window = 2, .kv = KVZ_KV_F32};
    check_input("kvz_lm_fastkv_opts", run_lm_fastkv, &fo, sizeof fo, END_OF(kvz_lm_fastkv_opts, pieces));
    const kvz_lm_gen_opts go = {.struct_size = sizeof go, .max_tokens = 6};
    check_input("kvz_lm_gen_opts", run_lm_gen, &go, sizeof go, END_OF(kvz_lm_gen_opts, no_stop));

    /* kvz_lm_info out: written up to the caller's struct_size, zeros past ours */
    kvz_lm_info want = {.struct_size = sizeof want};
    assert_int_equal(kvz_lm_get_info(lm_model, &want), KVZ_OK);
    assert_string_equal(want.arch, "llama");
    check_output(fill_lm_info, lm_model, &want, sizeof want);

    /* kvz_lm_compress_report out: 4 passes of at most 4 context tokens, the system prompt kept */
    kvz_lm_compress_report rep = {.struct_size = sizeof rep};
    assert_int_equal(fill_lm_report(lm_model, &rep), KVZ_OK);
    assert_int_equal(rep.passes, (rep.n_context + 3) / 4);
    assert_true(rep.n_context > 4 && rep.n_kept < rep.n_context * want.n_layers * want.n_kv_heads);
    check_output(fill_lm_report, lm_model, &rep, sizeof rep);
    kvz_lm_fastkv_report frep = {.struct_size = sizeof frep};
    assert_int_equal(fill_fastkv_report(lm_model, &frep), KVZ_OK);
    assert_true(frep.tsp_tokens > 0);
    check_output(fill_fastkv_report, lm_model, &frep, sizeof frep);
    kvz_lm_close(lm_model);
    lm_model = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attn_args),     cmocka_unit_test(test_varlen_args),
        cmocka_unit_test(test_window_args),   cmocka_unit_test(test_policy_args),
        cmocka_unit_test(test_numa_topology), cmocka_unit_test(test_cache_config),
        cmocka_unit_test(test_attend_args),   cmocka_unit_test(test_cache_meta),
        cmocka_unit_test(test_cache_stats),   cmocka_unit_test(test_kvzip_plan),
        cmocka_unit_test(test_lm_structs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
