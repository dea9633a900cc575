/*
 * Accumulated attention (the H2O policy's scores, kvz_attn_job.accum) at every ISA level and
 * K/V dtype against the double-precision oracle: the kernel's every path (dot, bp, gemm, AMX
 * tiles, windows, two runs, with scoring), kvz_attn_prefill split over threads into query
 * slices, chunked prefills whose calls add up, kvz_cache_attend, and what is refused.
 * KVZ_TEST_SEED replays a run, KVZ_TEST_QUICK=1 shrinks it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "oracle.h"
#include "testutil.h"

/* Sums of probabilities: relative to their size, as the scoring tests' (an error in a logit
 * is a relative error of its exp), a little looser for the fp32 sums over many rows. */
#define ACC_ATOL 1e-8
#define ACC_RTOL 2e-5
#define LSE_ATOL 2e-5
#define LSE_RTOL 2e-6

static void set_threads(int n) { assert_int_equal(kvz_set_num_threads(n), KVZ_OK); }

/* ---- the kernel, below the API ---------------------------------------------------------- */

typedef struct kcase {
    size_t G, d, n_q, n_k, n_k2; /* n_k2: keys of a second run (accumulated: never) */
    long q_pos0;
    size_t window;
    kvz_dtype dt;
    int scoring; /* also KVzip scores (sink 2, chunk [5, q_pos0 - 3)) */
    int vt;      /* with a vtstore */
} kcase;

/* The job of a case: keys [0, n_k) in k/v, [n_k, n_k + n_k2) in k2/v2; q [g][i][d]. */
static void check_kernel_case(tu_rng *r, const kcase *c, const kvz_isa *lv, size_t nl)
{
    const size_t G = c->G, d = c->d, n_q = c->n_q, n_all = c->n_k + c->n_k2, es = tu_dtype_size(c->dt);
    double *kx = tu_malloc(n_all * d * sizeof(double) + 8), *vx = tu_malloc(n_all * d * sizeof(double) + 8);
    char *k = tu_fill_kv(r, c->dt, n_all * d, -1, 1, kx), *v = tu_fill_kv(r, c->dt, n_all * d, -1, 1, vx);
    float *q = tu_malloc(G * n_q * d * sizeof(float));
    double *qx = tu_malloc(G * n_q * d * sizeof(double));
    for (size_t x = 0; x < G * n_q * d; x++)
        qx[x] = q[x] = tu_query(r, -3, 3, c->dt);
    const double scale = 1.0 / sqrt((double)d);
    /* want: a prior in [0, 1) plus the oracle's sums over all keys, of which the first run's count */
    enum { PAD = 5 };
    float *prior = tu_malloc((c->n_k + PAD) * sizeof(float));
    double *want = tu_calloc(n_all + 1, sizeof(double));
    for (size_t j = 0; j < c->n_k; j++)
        prior[j] = tu_uniform(r, 0, 1);
    oracle_attn_accum(qx, kx, G, n_q, n_all, d, c->q_pos0, c->window, scale, want);
    for (size_t j = 0; j < c->n_k; j++)
        want[j] += prior[j];
    double *want_out = tu_malloc(G * n_q * d * sizeof(double)), *want_lse = tu_malloc(G * n_q * sizeof(double));
    for (size_t g = 0; g < G; g++)
        oracle_attn_window(qx + g * n_q * d, kx, vx, n_q, n_all, d, c->q_pos0, c->window, scale,
                           want_out + g * n_q * d, want_lse + g * n_q);
    const size_t sink = 2, cb = 5, ce = c->scoring ? (size_t)c->q_pos0 - 3 : 5;
    double *want_score = tu_calloc(ce - cb + 1, sizeof(double));
    if (c->scoring)
        oracle_kvzip_score(qx, kx, G, n_q, n_all, d, c->q_pos0, scale, sink, cb, ce, want_score);

    float *acc = tu_malloc((c->n_k + PAD) * sizeof(float)), *out = tu_malloc(G * n_q * d * sizeof(float));
    float *lse = tu_malloc(G * n_q * sizeof(float)), *score = tu_calloc(ce - cb + 1, sizeof(float));
    float *work = NULL;
    assert_int_equal(posix_memalign((void **)&work, 64, kvz_attn_work_floats(d) * sizeof(float)), 0);
    const size_t vtw = kvz_attn_vt_words(c->n_k, c->n_k2, d);
    uint16_t *vt = NULL;
    assert_int_equal(posix_memalign((void **)&vt, 64, vtw * 2 + 64), 0);
    char what[256];
    for (size_t l = 0; l < nl; l++) {
        const kvz_kernel_table *kt = kvz_kernels_for(lv[l]);
        assert_non_null(kt);
        snprintf(what, sizeof what,
                 "%s kernel G%zu d%zu n_q %zu n_k %zu + %zu q_pos0 %ld window %zu dtype %d scoring %d vt %d",
                 kvz_isa_name(lv[l]), G, d, n_q, c->n_k, c->n_k2, c->q_pos0, c->window, (int)c->dt, c->scoring,
                 c->vt);
        memcpy(acc, prior, c->n_k * sizeof(float));
        tu_fill_sentinel(acc + c->n_k, PAD);
        tu_fill_sentinel(out, G * n_q * d);
        memset(score, 0, (ce - cb + 1) * sizeof(float));
        kvz_attn_job j;
        memset(&j, 0, sizeof j);
        j.q = q, j.q_head_stride = (ptrdiff_t)(n_q * d), j.q_row_stride = (ptrdiff_t)d;
        j.k = k, j.v = v, j.kv_row_stride = (ptrdiff_t)d, j.dtype = (int)c->dt;
        if (c->n_k2)
            j.k2 = k + c->n_k * d * es, j.v2 = v + c->n_k * d * es;
        j.n_q = n_q, j.n_k = c->n_k, j.n_k2 = c->n_k2, j.d = d, j.group = G, j.q_pos0 = (ptrdiff_t)c->q_pos0;
        j.window = c->window, j.scale = (float)scale;
        j.out = out, j.out_head_stride = (ptrdiff_t)(n_q * d), j.out_row_stride = (ptrdiff_t)d;
        j.lse = lse, j.work = work, j.accum = acc;
        if (c->vt) {
            memset(vt, 0xff, vtw * 2); /* bf16 NaNs: a tile read before it is built shows */
            j.vtstore = vt;
        }
        if (c->scoring)
            j.score = score, j.sink_end = sink, j.chunk_begin = cb, j.chunk_end = ce,
            j.own_begin = (size_t)c->q_pos0;
        kt->attn(&j);
        tu_check_close(acc, want, c->n_k, ACC_ATOL, ACC_RTOL, what);
        for (size_t x = 0; x < PAD; x++)
            if (!tu_is_sentinel(acc + c->n_k + x))
                fail_msg("%s: wrote accum past the first run (element %zu)", what, c->n_k + x);
        /* the attention itself is unchanged by the second visit */
        tu_check_close(out, want_out, G * n_q * d, tu_tol_at(lv[l], c->dt), tu_tol_at(lv[l], c->dt), what);
        tu_check_close(lse, want_lse, G * n_q, LSE_ATOL, LSE_RTOL, what);
        if (c->scoring)
            tu_check_close(score, want_score, ce - cb, 1e-9, 2e-5, what);
    }
    free(work), free(vt), free(kx), free(vx), free(k), free(v), free(q), free(qx), free(prior), free(want);
    free(want_out), free(want_lse), free(want_score), free(acc), free(out), free(lse), free(score);
}

/* Every way a query block fills its logits: few rows (the dot path: up to 8 rows at AVX-512,
 * 4 at AVX2, 2 at NEON; bf16 with d a multiple of 32 the bp path, whose first sweep reads the
 * keys as interleaved streams), one and several gemm blocks (bf16 with d a multiple of 32: AMX
 * tiles at the amx level, pair products at avx512bf16), head sizes of whole and partial
 * vectors; causal offsets where rows see nothing, all keys, or the queries' own keys last;
 * every dtype. */
static void test_kernel_paths(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 1);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    static const struct {
        size_t G, n_q, n_k;
    } e[] = {
        {1, 1, 37},   {8, 1, 500},   {4, 2, 300},  {2, 3, 200},  {1, 8, 700},   {3, 3, 77},
        {3, 30, 260}, {1, 130, 400}, {4, 70, 300}, {8, 20, 150}, {2, 100, 100}, {5, 13, 140},
    };
    static const size_t ds[] = {64, 128, 80, 32, 256, 72, 33, 96};
    const size_t step = tu_quick() ? 3 : 1;
    size_t t = 0;
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++)
        for (int dt = 0; dt < 3; dt++, t++) {
            if (t % step)
                continue;
            kcase c = {0};
            c.G = e[i].G, c.n_q = e[i].n_q, c.n_k = e[i].n_k, c.dt = (kvz_dtype)dt;
            c.d = ds[(i + (size_t)dt) % (sizeof ds / sizeof ds[0])];
            if (e[i].n_q * e[i].G >= 200 && c.d > 128)
                c.d = 64; /* the oracle's time */
            switch (t % 4) {
            case 0: c.q_pos0 = (long)(c.n_k - c.n_q); break; /* own keys last */
            case 1:
                c.q_pos0 = (long)(c.n_k - c.n_q) - (long)(c.n_q / 2 + 3); /* later keys unseen */
                break;
            case 2: c.q_pos0 = -(long)(c.n_q / 2 + 1); break; /* the first rows see nothing */
            default: c.q_pos0 = (long)c.n_k + 4; break;       /* every row sees every key */
            }
            c.vt = dt == KVZ_DTYPE_BF16 && t % 2;
            check_kernel_case(&r, &c, lv, nl);
        }
}

/* Sliding windows (the kernel accumulates inside them; the cache API refuses it), keys in two
 * runs (the second, a query's private tail, counts in the softmax and is never accumulated),
 * and scoring in the same call. */
static void test_kernel_windows_runs_scoring(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 2);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    const kcase cases[] = {
        /* G d n_q n_k n_k2 q_pos0 window dt scoring vt */
        {4, 64, 2, 300, 0, 298, 7, KVZ_DTYPE_F32, 0, 0},
        {2, 128, 130, 600, 0, 470, 128, KVZ_DTYPE_BF16, 0, 1},
        {1, 80, 40, 400, 0, 360, 129, KVZ_DTYPE_F16, 0, 0},
        {3, 64, 8, 250, 0, 260, 512, KVZ_DTYPE_BF16, 0, 0},
        {2, 64, 5, 200, 30, 225, 0, KVZ_DTYPE_F32, 0, 0},
        {4, 128, 70, 130, 100, 160, 0, KVZ_DTYPE_BF16, 0, 1},
        {1, 72, 20, 97, 3, 80, 0, KVZ_DTYPE_F16, 0, 0},
        {3, 128, 50, 300, 0, 250, 0, KVZ_DTYPE_BF16, 1, 0},
        {2, 64, 3, 200, 0, 197, 0, KVZ_DTYPE_F32, 1, 0},
        {4, 80, 40, 260, 0, 220, 0, KVZ_DTYPE_F16, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!tu_quick() || i % 2 == 0)
            check_kernel_case(&r, &cases[i], lv, nl);
}

/* ---- kvz_attn_prefill ----------------------------------------------------------------------- */

/* A prefill's worth of one layer: H KV heads of G query heads, n keys; q token-major
 * [i][qh][d], K/V head-major [h][j][d] of dtype dt (exact copies in kx, vx). */
typedef struct layer {
    size_t H, G, d, n;
    kvz_dtype dt;
    float *q;
    void *k, *v;
    double *qx, *kx, *vx; /* qx [qh][i][d] */
} layer;

static layer make_layer(tu_rng *r, size_t H, size_t G, size_t d, size_t n, kvz_dtype dt)
{
    layer y = {H, G, d, n, dt, NULL, NULL, NULL, NULL, NULL, NULL};
    y.q = tu_malloc(n * H * G * d * sizeof(float));
    y.qx = tu_malloc(n * H * G * d * sizeof(double));
    for (size_t i = 0; i < n; i++)
        for (size_t qh = 0; qh < H * G; qh++)
            for (size_t x = 0; x < d; x++) {
                const float f = tu_query(r, -3, 3, dt);
                y.q[(i * H * G + qh) * d + x] = f;
                y.qx[(qh * n + i) * d + x] = f;
            }
    y.kx = tu_malloc(H * n * d * sizeof(double));
    y.vx = tu_malloc(H * n * d * sizeof(double));
    y.k = tu_fill_kv(r, dt, H * n * d, -1, 1, y.kx);
    y.v = tu_fill_kv(r, dt, H * n * d, -1, 1, y.vx);
    return y;
}

static void free_layer(layer *y) { free(y->q), free(y->qx), free(y->k), free(y->v), free(y->kx), free(y->vx); }

/* The oracle's sums of queries [i0, i0 + n_q) over keys [0, i0 + n_q), head h's at want + h*stride. */
static void layer_oracle(const layer *y, size_t i0, size_t n_q, double *want, size_t stride)
{
    const size_t d = y->d;
    double *q = tu_malloc(y->G * n_q * d * sizeof(double));
    for (size_t h = 0; h < y->H; h++) {
        for (size_t g = 0; g < y->G; g++)
            memcpy(q + g * n_q * d, y->qx + ((h * y->G + g) * y->n + i0) * d, n_q * d * sizeof(double));
        oracle_attn_accum(q, y->kx + h * y->n * d, y->G, n_q, i0 + n_q, d, (long)i0, 0, 1.0 / sqrt((double)d),
                          want + h * stride);
    }
    free(q);
}

/* kvz_attn_prefill of queries [i0, i0 + n_q) over keys [0, i0 + n_q): accum row h at acc + h*stride. */
static void layer_prefill(const layer *y, size_t i0, size_t n_q, float *out, float *acc, size_t stride)
{
    kvz_attn_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.n_kv_heads = y->H, a.group = y->G, a.head_dim = y->d, a.n_q = n_q, a.n_k = i0 + n_q;
    a.q_pos0 = (ptrdiff_t)i0;
    a.q = y->q + i0 * y->H * y->G * y->d, a.q_token_stride = (ptrdiff_t)(y->H * y->G * y->d);
    a.q_head_stride = (ptrdiff_t)y->d;
    a.k = y->k, a.v = y->v, a.kv_dtype = y->dt, a.kv_row_stride = (ptrdiff_t)y->d;
    a.kv_head_stride = (ptrdiff_t)(y->n * y->d);
    a.out = out, a.out_token_stride = a.q_token_stride, a.out_head_stride = a.q_head_stride;
    a.accum = acc, a.accum_head_stride = (ptrdiff_t)stride;
    const kvz_status st = kvz_attn_prefill(&a);
    if (st != KVZ_OK)
        fail_msg("kvz_attn_prefill: %s (%s)", kvz_strerror(st), kvz_last_error());
}

/* Enough queries that each head's are split into several query slices (each with a private
 * row, added up after) on 2 and 4 threads, one slice on 1: the same sums at every level, with
 * padded accum rows left alone; the same thread count gives the same bits twice. */
static void test_prefill_threads(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 3);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    static const struct {
        size_t H, G, d, n;
    } e[] = {{2, 4, 128, 400}, {1, 2, 64, 900}, {3, 3, 80, 300}, {2, 1, 64, 20}};
    static const int threads[] = {1, 2, 4};
    enum { PAD = 3 };
    for (size_t t = 0; t < sizeof e / sizeof e[0]; t++) {
        const kvz_dtype dt = (kvz_dtype)(t % 3);
        const size_t n = tu_quick() ? e[t].n / 3 + 1 : e[t].n, H = e[t].H, stride = n + PAD;
        layer y = make_layer(&r, H, e[t].G, e[t].d, n, dt);
        double *want = tu_calloc(H * stride, sizeof(double));
        layer_oracle(&y, 0, n, want, stride);
        float *acc = tu_malloc(H * stride * sizeof(float)), *again = tu_malloc(H * stride * sizeof(float));
        float *out = tu_malloc(n * H * e[t].G * e[t].d * sizeof(float));
        for (size_t l = 0; l < nl; l++) {
            tu_force(lv[l]);
            for (size_t ti = 0; ti < sizeof threads / sizeof threads[0]; ti++) {
                set_threads(threads[ti]);
                char what[160];
                snprintf(what, sizeof what, "%s prefill H%zu G%zu d%zu n %zu dtype %d, %d threads",
                         kvz_isa_name(lv[l]), H, e[t].G, e[t].d, n, (int)dt, threads[ti]);
                for (int rep = 0; rep < 2; rep++) {
                    float *a = rep ? again : acc;
                    for (size_t h = 0; h < H; h++) {
                        memset(a + h * stride, 0, n * sizeof(float));
                        tu_fill_sentinel(a + h * stride + n, PAD);
                    }
                    layer_prefill(&y, 0, n, out, a, stride);
                }
                for (size_t h = 0; h < H; h++) {
                    tu_check_close(acc + h * stride, want + h * stride, n, ACC_ATOL, ACC_RTOL, what);
                    for (size_t x = 0; x < PAD; x++)
                        if (!tu_is_sentinel(acc + h * stride + n + x))
                            fail_msg("%s: wrote the padding of head %zu's row", what, h);
                }
                if (memcmp(acc, again, H * stride * sizeof(float)))
                    fail_msg("%s: two runs differ", what);
            }
            set_threads(0);
        }
        free(want), free(acc), free(again), free(out);
        free_layer(&y);
    }
}

/* A chunked prefill: each call adds its queries' attention, earlier chunks' keys included, and
 * the calls add up to the whole prefill's (the oracle's, and one unchunked call's). */
static void test_prefill_chunked(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 4);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    static const size_t chunks[][5] = {{1, 255, 300, 144, 0}, {64, 64, 64, 64, 44}, {500, 1, 1, 1, 197}};
    for (size_t t = 0; t < sizeof chunks / sizeof chunks[0]; t++) {
        size_t n = 0;
        for (size_t i = 0; i < 5; i++)
            n += chunks[t][i];
        const size_t H = 2, G = 2 + t, d = t == 1 ? 80 : 64;
        const kvz_dtype dt = (kvz_dtype)t;
        layer y = make_layer(&r, H, G, d, n, dt);
        double *want = tu_calloc(H * n, sizeof(double));
        layer_oracle(&y, 0, n, want, n);
        float *acc = tu_malloc(H * n * sizeof(float)), *whole = tu_malloc(H * n * sizeof(float));
        float *out = tu_malloc(n * H * G * d * sizeof(float));
        double *wd = tu_malloc(H * n * sizeof(double));
        for (size_t l = 0; l < nl; l++) {
            tu_force(lv[l]);
            set_threads(t == 2 ? 1 : 2);
            char what[128];
            snprintf(what, sizeof what, "%s chunked prefill %zu: H%zu G%zu d%zu n %zu dtype %d",
                     kvz_isa_name(lv[l]), t, H, G, d, n, (int)dt);
            memset(acc, 0, H * n * sizeof(float));
            memset(whole, 0, H * n * sizeof(float));
            for (size_t i = 0, done = 0; i < 5; done += chunks[t][i++])
                if (chunks[t][i])
                    layer_prefill(&y, done, chunks[t][i], out, acc, n);
            tu_check_close(acc, want, H * n, ACC_ATOL, ACC_RTOL, what);
            layer_prefill(&y, 0, n, out, whole, n);
            for (size_t x = 0; x < H * n; x++)
                wd[x] = whole[x];
            tu_check_close(acc, wd, H * n, 1e-6, 1e-5, what);
            set_threads(0);
        }
        free(want), free(acc), free(whole), free(out), free(wd);
        free_layer(&y);
    }
}

/* ---- kvz_cache_attend -------------------------------------------------------------------------- */

enum { CL = 2, CH = 2, CG = 3, CD = 64 };

/* A cache of two layers (layer 1 with a sliding window of 16) filled chunk by chunk, each
 * chunk's queries attending with accum: the sums equal the oracle's; the windowed layer and
 * a query refuse accum and write nothing; a struct_size of the 0.1 layout (before accum)
 * leaves whatever lies past it unread. */
static void test_cache_attend(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 5);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    const size_t n = 300, chunks[] = {1, 130, 100, 69};
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        const kvz_dtype dt = (kvz_dtype)(l % 3);
        layer y = make_layer(&r, CH, CG, CD, n, dt);
        /* the cache appends f32 rows token-major, [t][h][d] */
        float *kt = tu_malloc(n * CH * CD * sizeof(float)), *vt = tu_malloc(n * CH * CD * sizeof(float));
        for (size_t h = 0; h < CH; h++)
            for (size_t t = 0; t < n; t++)
                for (size_t x = 0; x < CD; x++) {
                    kt[(t * CH + h) * CD + x] = (float)y.kx[(h * n + t) * CD + x];
                    vt[(t * CH + h) * CD + x] = (float)y.vx[(h * n + t) * CD + x];
                }
        const size_t win[CL] = {0, 16};
        const kvz_cache_config cfg = {.struct_size = sizeof cfg,
                                      .n_layers = CL,
                                      .n_kv_heads = CH,
                                      .head_dim = CD,
                                      .dtype = dt,
                                      .layer_window = win};
        kvz_cache *c = NULL;
        assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
        double *want = tu_calloc(CH * n, sizeof(double));
        layer_oracle(&y, 0, n, want, n);
        float *acc = tu_calloc(CH * n, sizeof(float)), *out = tu_malloc(n * CH * CG * CD * sizeof(float));
        size_t done = 0;
        for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; done += chunks[i++]) {
            const size_t m = chunks[i];
            for (size_t lay = 0; lay < CL; lay++)
                assert_int_equal(
                    kvz_cache_append(c, lay, m, kt + done * CH * CD, vt + done * CH * CD, CH * CD, CD), KVZ_OK);
            kvz_attend_args a;
            memset(&a, 0, sizeof a);
            a.struct_size = sizeof a, a.group = CG, a.n_q = m;
            a.q = y.q + done * CH * CG * CD, a.q_token_stride = CH * CG * CD, a.q_head_stride = CD;
            a.out = out, a.out_token_stride = CH * CG * CD, a.out_head_stride = CD;
            a.accum = acc, a.accum_head_stride = (ptrdiff_t)n;
            assert_int_equal(kvz_cache_attend(c, 0, &a), KVZ_OK);
            /* the windowed layer: refused, nothing written */
            assert_int_equal(kvz_cache_attend(c, 1, &a), KVZ_ERR_INVALID_ARG);
            assert_non_null(strstr(kvz_last_error(), "sliding window"));
        }
        char what[96];
        snprintf(what, sizeof what, "%s cache attend dtype %d", kvz_isa_name(lv[l]), (int)dt);
        tu_check_close(acc, want, CH * n, ACC_ATOL, ACC_RTOL, what);
        /* a query over the cache: refused */
        kvz_query *qy = NULL;
        assert_int_equal(kvz_query_create(c, &qy), KVZ_OK);
        assert_int_equal(kvz_query_append(qy, 0, 1, kt, vt, CH * CD, CD), KVZ_OK);
        kvz_attend_args a;
        memset(&a, 0, sizeof a);
        a.struct_size = sizeof a, a.group = CG, a.n_q = 1;
        a.q = y.q, a.q_token_stride = CH * CG * CD, a.q_head_stride = CD;
        a.out = out, a.out_token_stride = CH * CG * CD, a.out_head_stride = CD;
        a.accum = acc, a.accum_head_stride = (ptrdiff_t)n;
        assert_int_equal(kvz_query_attend(qy, 0, &a), KVZ_ERR_INVALID_ARG);
        assert_non_null(strstr(kvz_last_error(), "not on a query"));
        kvz_query_destroy(qy);
        /* the 0.1 layout: accum is not read (here it points nowhere valid) */
        a.struct_size = offsetof(kvz_attend_args, accum);
        a.accum = (float *)(uintptr_t)8, a.accum_head_stride = 12345;
        assert_int_equal(kvz_cache_attend(c, 0, &a), KVZ_OK);
        tu_check_close(acc, want, CH * n, ACC_ATOL, ACC_RTOL, what);
        kvz_cache_destroy(c);
        free(kt), free(vt), free(want), free(acc), free(out);
        free_layer(&y);
    }
}

/* kvz_attn_prefill at the 0.1 layout's struct_size reads no accum either. */
static void test_prefill_old_struct(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 6);
    layer y = make_layer(&r, 1, 2, 64, 50, KVZ_DTYPE_F32);
    float *out = tu_malloc(50 * 2 * 64 * sizeof(float));
    kvz_attn_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = offsetof(kvz_attn_args, accum);
    a.n_kv_heads = 1, a.group = 2, a.head_dim = 64, a.n_q = 50, a.n_k = 50;
    a.q = y.q, a.q_token_stride = 128, a.q_head_stride = 64;
    a.k = y.k, a.v = y.v, a.kv_dtype = KVZ_DTYPE_F32, a.kv_row_stride = 64, a.kv_head_stride = 50 * 64;
    a.out = out, a.out_token_stride = 128, a.out_head_stride = 64;
    a.accum = (float *)(uintptr_t)8, a.accum_head_stride = 7;
    assert_int_equal(kvz_attn_prefill(&a), KVZ_OK);
    free(out);
    free_layer(&y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kernel_paths, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_kernel_windows_runs_scoring, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_prefill_threads, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_prefill_chunked, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_cache_attend, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test(test_prefill_old_struct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
