/* KVzip in a host (kvz_kvzip_passes, kvz_kvzip_pass, kvz_kvzip_check_cache, kvz_kvzip_compress):
 * the pass layout of spec/kvzip.md §1.3 written out by hand for several settings, the scoring
 * fields, the refusals; the #147 guard on a cache; and the compression's plumbing: the policy sees
 * the global layers' context rows, the system prompt and the rows after the context stay, a
 * sliding-window layer is left alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const int32_t RF[3] = {310, 311, 312}, RN[4] = {320, 321, 322, 323}, POST[2] = {330, 331};
enum { MAX_CTX = 64 };
static int32_t CTX[MAX_CTX];

static kvz_kvzip_plan plan_of(size_t n_sys, size_t n_ctx, size_t chunk, size_t prev)
{
    for (size_t i = 0; i < MAX_CTX; i++)
        CTX[i] = 1000 + (int32_t)i;
    return (kvz_kvzip_plan){.struct_size = sizeof(kvz_kvzip_plan),
                            .n_sys = n_sys,
                            .n_ctx = n_ctx,
                            .ctx = CTX,
                            .repeat_first = RF,
                            .n_repeat_first = 3,
                            .repeat_next = RN,
                            .n_repeat_next = 4,
                            .postfix = POST,
                            .n_postfix = 2,
                            .chunk = chunk,
                            .prev_tokens = prev};
}

/* Pass t written out from §1.3: repeat_first ++ postfix ++ chunk_0, then repeat_next ++
 * chunk_{t-1}[-min(prev, chunk):] ++ postfix ++ chunk_t. */
static size_t expected_pass(const kvz_kvzip_plan *p, size_t t, int32_t *v)
{
    size_t k = 0;
    const size_t b = t * p->chunk, end = b + p->chunk < p->n_ctx ? b + p->chunk : p->n_ctx;
    if (t == 0) {
        for (size_t i = 0; i < 3; i++)
            v[k++] = RF[i];
    } else {
        for (size_t i = 0; i < 4; i++)
            v[k++] = RN[i];
        const size_t q = p->prev_tokens < p->chunk ? p->prev_tokens : p->chunk;
        for (size_t i = b - q; i < b; i++)
            v[k++] = CTX[i];
    }
    v[k++] = POST[0], v[k++] = POST[1];
    for (size_t i = b; i < end; i++)
        v[k++] = CTX[i];
    return k;
}

static void test_pass_layout(void **state)
{
    (void)state;
    /* {n_ctx, chunk, prev}: chunks 16, 16, 9; an exact multiple; one pass; prev beyond a chunk; prev 0 */
    static const size_t settings[][3] = {{41, 16, 8}, {48, 16, 8}, {10, 2000, 8}, {20, 3, 8}, {20, 6, 0}};
    for (size_t s = 0; s < sizeof settings / sizeof settings[0]; s++) {
        const kvz_kvzip_plan p = plan_of(4, settings[s][0], settings[s][1], settings[s][2]);
        size_t n_passes = 0, max_ids = 0, want_max = 0;
        assert_int_equal(kvz_kvzip_passes(&p, &n_passes, &max_ids), KVZ_OK);
        assert_int_equal(n_passes, (p.n_ctx + p.chunk - 1) / p.chunk);
        for (size_t t = 0; t < n_passes; t++) {
            int32_t want[MAX_CTX + 16], got[MAX_CTX + 16];
            const size_t nw = expected_pass(&p, t, want);
            want_max = nw > want_max ? nw : want_max;
            kvz_kvzip_pass_info pass = {.struct_size = sizeof pass};
            assert_int_equal(kvz_kvzip_pass(&p, t, got, sizeof got / sizeof got[0], &pass), KVZ_OK);
            assert_int_equal(pass.n_ids, nw);
            assert_memory_equal(got, want, nw * sizeof *want);
            assert_int_equal(pass.position, 4 + p.n_ctx); /* every pass starts after the context */
            assert_int_equal(pass.sink_end, 4);
            assert_int_equal(pass.chunk_begin, 4 + t * p.chunk);
            assert_int_equal(pass.chunk_end,
                             4 + (t * p.chunk + p.chunk < p.n_ctx ? t * p.chunk + p.chunk : p.n_ctx));
            /* the length alone, and too little room: n_ids is set, nothing written */
            kvz_kvzip_pass_info only = {.struct_size = sizeof only};
            assert_int_equal(kvz_kvzip_pass(&p, t, NULL, 0, &only), KVZ_OK);
            assert_int_equal(only.n_ids, nw);
            memset(got, 0x55, sizeof got);
            assert_int_equal(kvz_kvzip_pass(&p, t, got, nw - 1, &only), KVZ_ERR_INVALID_ARG);
            assert_int_equal(only.n_ids, nw);
            assert_int_equal(got[0], 0x55555555);
        }
        assert_int_equal(max_ids, want_max);
        kvz_kvzip_pass_info pass = {.struct_size = sizeof pass};
        assert_int_equal(kvz_kvzip_pass(&p, n_passes, NULL, 0, &pass), KVZ_ERR_INVALID_ARG);
        assert_non_null(strstr(kvz_last_error(), "kvz_kvzip_pass"));
    }
}

static void test_plan_refusals(void **state)
{
    (void)state;
    size_t n, m;
    kvz_kvzip_pass_info pass = {.struct_size = sizeof pass};
    kvz_kvzip_plan p = plan_of(0, 10, 4, 8);
    assert_int_equal(kvz_kvzip_passes(NULL, &n, &m), KVZ_ERR_NULL);
    assert_int_equal(kvz_kvzip_passes(&p, NULL, &m), KVZ_ERR_NULL);
    assert_int_equal(kvz_kvzip_passes(&p, &n, NULL), KVZ_OK); /* max_ids is optional */
    assert_int_equal(kvz_kvzip_pass(&p, 0, NULL, 0, NULL), KVZ_ERR_NULL);
    p.ctx = NULL;
    assert_int_equal(kvz_kvzip_passes(&p, &n, &m), KVZ_ERR_NULL);
    p = plan_of(0, 10, 4, 8), p.postfix = NULL;
    assert_int_equal(kvz_kvzip_passes(&p, &n, &m), KVZ_ERR_NULL);
    p = plan_of(0, 10, 4, 8), p.n_postfix = 0, p.postfix = NULL; /* no piece, no ids: fine */
    assert_int_equal(kvz_kvzip_passes(&p, &n, &m), KVZ_OK);
    p = plan_of(0, 0, 4, 8);
    assert_int_equal(kvz_kvzip_passes(&p, &n, &m), KVZ_ERR_INVALID_ARG);
    p = plan_of(0, 10, 0, 8);
    assert_int_equal(kvz_kvzip_pass(&p, 0, NULL, 0, &pass), KVZ_ERR_INVALID_ARG);
    p = plan_of(SIZE_MAX - 4, 10, 4, 8);
    assert_int_equal(kvz_kvzip_passes(&p, &n, &m), KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "overflow"));
    p = plan_of(0, 10, 4, 8), p.struct_size = 8;
    assert_int_equal(kvz_kvzip_passes(&p, &n, &m), KVZ_ERR_INVALID_ARG);
    p = plan_of(0, 10, 4, 8), pass.struct_size = 8;
    assert_int_equal(kvz_kvzip_pass(&p, 0, NULL, 0, &pass), KVZ_ERR_INVALID_ARG);
}

enum { L = 3, H = 2, D = 8, N_SYS = 3, N_CTX = 20, N_TAIL = 2, WINDOW = 4 };
static const size_t windows[L] = {0, WINDOW, 0}; /* layer 1 slides, as Gemma 3's local layers */

/* A cache of [system | context] rows with distinct values in every layer. */
static kvz_cache *new_cache(void)
{
    const kvz_cache_config cfg = {.struct_size = sizeof cfg,
                                  .n_layers = L,
                                  .n_kv_heads = H,
                                  .head_dim = D,
                                  .dtype = KVZ_DTYPE_F32,
                                  .layer_window = windows};
    kvz_cache *c;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    float k[(N_SYS + N_CTX + N_TAIL) * H * D], v[sizeof k / sizeof k[0]];
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        k[i] = (float)i, v[i] = -(float)i;
    for (size_t l = 0; l < L; l++)
        assert_int_equal(kvz_cache_append(c, l, N_SYS + N_CTX, k, v, H * D, D), KVZ_OK);
    return c;
}

static void test_check_cache(void **state)
{
    (void)state;
    kvz_cache *c = new_cache();
    assert_int_equal(kvz_kvzip_check_cache(c, N_SYS, N_CTX), KVZ_OK);
    assert_int_equal(kvz_kvzip_check_cache(c, N_SYS, N_CTX - 1), KVZ_ERR_STATE);
    assert_non_null(strstr(kvz_last_error(), "full prefilled cache"));
    assert_int_equal(kvz_kvzip_check_cache(NULL, N_SYS, N_CTX), KVZ_ERR_NULL);
    /* a pass's rows appended and not dropped: refused until they are truncated */
    float k[2 * H * D] = {0};
    for (size_t l = 0; l < L; l++)
        assert_int_equal(kvz_cache_append(c, l, 2, k, k, H * D, D), KVZ_OK);
    assert_int_equal(kvz_kvzip_check_cache(c, N_SYS, N_CTX), KVZ_ERR_STATE);
    assert_int_equal(kvz_cache_truncate(c, 2), KVZ_OK);
    assert_int_equal(kvz_kvzip_check_cache(c, N_SYS, N_CTX), KVZ_OK);
    kvz_cache_destroy(c);
}

/* Positions of one segment, copied. */
static size_t positions(const kvz_cache *c, size_t l, size_t h, int64_t *out)
{
    size_t n;
    const int64_t *p;
    assert_int_equal(kvz_cache_length(c, l, h, &n), KVZ_OK);
    assert_int_equal(kvz_cache_positions(c, l, h, &p), KVZ_OK);
    memcpy(out, p, n * sizeof *out);
    return n;
}

/* One policy through kvz_kvzip_compress against kvz_policy_select on the global layers' rows. */
static void compress_case(kvz_policy policy, const float *scores, const float *head_scores)
{
    kvz_cache *c = new_cache();
    float k[N_TAIL * H * D] = {0}; /* two rows after the context, e.g. a question's */
    for (size_t l = 0; l < L; l++)
        assert_int_equal(kvz_cache_append(c, l, N_TAIL, k, k, H * D, D), KVZ_OK);
    int64_t before[L * H][2 * (N_SYS + N_CTX + N_TAIL)];
    size_t n_before[L * H];
    for (size_t r = 0; r < L * H; r++)
        n_before[r] = positions(c, r / H, r % H, before[r]);

    const kvz_policy_args pa = {
        .struct_size = sizeof pa, .policy = policy, .ratio = 0.3, .head_scores = head_scores};
    size_t kept = 0;
    assert_int_equal(kvz_kvzip_compress(c, N_SYS, N_CTX, scores, &pa, &kept), KVZ_OK);

    /* the same selection on the global layers (0 and 2), in order */
    const float *rows[2 * H];
    uint8_t mask[2 * H][N_CTX], *masks[2 * H];
    float hs[2 * H];
    for (size_t g = 0; g < 2; g++)
        for (size_t h = 0; h < H; h++) {
            const size_t l = g ? 2 : 0;
            rows[g * H + h] = scores ? scores + (l * H + h) * N_CTX : NULL;
            masks[g * H + h] = mask[g * H + h];
            if (head_scores)
                hs[g * H + h] = head_scores[l * H + h];
        }
    kvz_policy_args want_args = pa;
    want_args.n_layers = 2, want_args.n_kv_heads = H, want_args.n_tokens = N_CTX;
    want_args.scores = scores ? rows : NULL, want_args.head_scores = head_scores ? hs : NULL;
    size_t want_kept = 0;
    assert_int_equal(kvz_policy_select(&want_args, masks, &want_kept), KVZ_OK);
    assert_int_equal(kept, want_kept);
    assert_true(kept > 0 && kept < 2 * H * N_CTX);

    for (size_t r = 0; r < L * H; r++) {
        int64_t got[2 * (N_SYS + N_CTX + N_TAIL)], want[2 * (N_SYS + N_CTX + N_TAIL)];
        const size_t n = positions(c, r / H, r % H, got);
        size_t m = 0;
        if (r / H == 1) { /* the sliding-window layer: untouched */
            memcpy(want, before[r], n_before[r] * sizeof *want), m = n_before[r];
        } else {
            const uint8_t *keep = mask[(r / H ? 1 : 0) * H + r % H];
            for (size_t j = 0; j < N_SYS; j++)
                want[m++] = (int64_t)j;
            for (size_t j = 0; j < N_CTX; j++)
                if (keep[j])
                    want[m++] = (int64_t)(N_SYS + j);
            for (size_t j = 0; j < N_TAIL; j++)
                want[m++] = (int64_t)(N_SYS + N_CTX + j);
        }
        if (n != m || memcmp(got, want, m * sizeof *got))
            fail_msg("%s: layer %zu head %zu keeps %zu rows, want %zu (or other positions)",
                     kvz_policy_name(policy), r / H, r % H, n, m);
    }
    kvz_cache_destroy(c);
}

static void test_compress(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    float scores[L * H * N_CTX], head_scores[L * H];
    for (size_t i = 0; i < L * H * N_CTX; i++)
        scores[i] = tu_uniform(&r, 0, 1);
    for (size_t i = 0; i < L * H; i++)
        head_scores[i] = tu_uniform(&r, 0, 1);
    compress_case(KVZ_POLICY_KVZIP_PAIR, scores, NULL);
    compress_case(KVZ_POLICY_SNAPKV, scores, NULL);
    compress_case(KVZ_POLICY_KVZIP_HEAD, NULL, head_scores);
    compress_case(KVZ_POLICY_STREAMING, NULL, NULL);

    /* refusals leave the cache as it was */
    kvz_cache *c = new_cache();
    const kvz_policy_args pa = {.struct_size = sizeof pa, .policy = KVZ_POLICY_KVZIP_PAIR, .ratio = 0.3};
    assert_int_equal(kvz_kvzip_compress(c, N_SYS, N_CTX, NULL, &pa, NULL), KVZ_ERR_NULL); /* it needs scores */
    assert_int_equal(kvz_kvzip_compress(c, N_SYS, N_CTX + 1, scores, &pa, NULL), KVZ_ERR_STATE);
    assert_int_equal(kvz_kvzip_compress(NULL, N_SYS, N_CTX, scores, &pa, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_kvzip_compress(c, N_SYS, N_CTX, scores, NULL, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_kvzip_check_cache(c, N_SYS, N_CTX), KVZ_OK);
    kvz_cache_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass_layout),
        cmocka_unit_test(test_plan_refusals),
        cmocka_unit_test(test_check_cache),
        cmocka_unit_test(test_compress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
