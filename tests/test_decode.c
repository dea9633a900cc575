/*
 * kvz_attn_decode_varlen at every ISA level and K/V dtype against the double-precision
 * oracle: many heads of different lengths (empty, shorter than the new tokens, off the
 * key blocks, long enough to be split over threads and merged by log-sum-exp), padded
 * rows, the retain-versus-evict identity (spec kvzip.md sections 4.5 and 9.7) and argument
 * checking.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "oracle.h"
#include "testutil.h"

/* NaN in the storage type: the gaps between padded rows hold it. */
static void fill_nan(void *p, kvz_dtype dt, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (dt == KVZ_DTYPE_F32) {
            const uint32_t u = 0x7fc00000u;
            memcpy((char *)p + 4 * i, &u, 4);
        } else {
            const uint16_t u = dt == KVZ_DTYPE_BF16 ? 0x7fc0u : 0x7e00u;
            memcpy((char *)p + 2 * i, &u, 2);
        }
    }
}

/* Key slice length of kvz_attn_decode_varlen (mirrors run_key_slices in
 * src/core/attn_runner.c, used while q_len x group <= 32): about four slices per thread
 * over all rows, at least 256 keys. */
static size_t api_key_slice(size_t total_rows, size_t nthr)
{
    const size_t s = total_rows / (4 * nthr) + 1;
    return s < 256 ? 256 : s;
}

/* ---- one varlen case ------------------------------------------------------------------- */

typedef struct vcase {
    size_t H, G, d, q_len;
    size_t len[8];
    kvz_dtype dt;
    size_t row_pad; /* kv_row_stride = d + row_pad */
    float scale;    /* 0: 1/sqrt(d) */
    float qamp;     /* queries in [-qamp, qamp) (0: 1) */
    int threads;    /* omp threads for the call (0: unchanged) */
    int needles;    /* plant one dominant key per query (see plant_needles) */
} vcase;

static void describe(char *buf, size_t n, const char *level, const vcase *c)
{
    int at = snprintf(
        buf, n, "%s decode H%zu G%zu d%zu q_len %zu dtype %d row_pad %zu scale %g threads %d needles %d len",
        level, c->H, c->G, c->d, c->q_len, (int)c->dt, c->row_pad, (double)c->scale, c->threads, c->needles);
    for (size_t h = 0; h < c->H && at > 0 && (size_t)at < n; h++)
        at += snprintf(buf + at, n - (size_t)at, " %zu", c->len[h]);
}

static void set_elem(void *p, kvz_dtype dt, size_t i, int negative)
{
    if (dt == KVZ_DTYPE_F32) {
        ((float *)p)[i] = negative ? -1.0f : 1.0f;
    } else {
        const uint16_t one = dt == KVZ_DTYPE_BF16 ? 0x3f80u : 0x3c00u;
        ((uint16_t *)p)[i] = (uint16_t)(one | (negative ? 0x8000u : 0));
    }
}

/*
 * Needles: for every query row (h, t, g), a random sign vector s; the query becomes 2s and
 * one random row of its head that the token sees becomes s (exact in every dtype), so that
 * key's logit is 2*sqrt(d) while the others' are O(1): the output is about that row's V.
 * Spread over the head, the needles sit in different key slices, so a log-sum-exp merge
 * that weights the slices wrongly is off by O(1), not by a little.
 */
static void plant_needles(tu_rng *r, const vcase *c, const int32_t *cu, void *kd, double *kx, float *q,
                          double *qx)
{
    const size_t d = c->d;
    for (size_t h = 0; h < c->H; h++)
        for (size_t t = 0; t < c->q_len; t++)
            for (size_t g = 0; g < c->G; g++) {
                const long vis = (long)c->len[h] - (long)c->q_len + (long)t + 1;
                if (vis <= 0)
                    continue;
                const size_t row = (size_t)cu[h] + tu_range(r, 0, (size_t)vis - 1);
                const size_t qi = ((h * c->q_len + t) * c->G + g) * d;
                for (size_t x = 0; x < d; x++) {
                    const int neg = (int)(tu_next(r) & 1);
                    set_elem(kd, c->dt, row * d + x, neg);
                    kx[row * d + x] = neg ? -1.0 : 1.0;
                    qx[qi + x] = q[qi + x] = neg ? -2.0f : 2.0f;
                }
            }
}

static void check_varlen(tu_rng *r, const vcase *c)
{
    const size_t H = c->H, G = c->G, d = c->d, ql = c->q_len, es = tu_dtype_size(c->dt);
    int32_t *cu = tu_malloc((H + 1) * sizeof(int32_t));
    cu[0] = 0;
    for (size_t h = 0; h < H; h++)
        cu[h + 1] = cu[h] + (int32_t)c->len[h];
    const size_t rows = (size_t)cu[H], stride = d + c->row_pad;
    const size_t span = rows ? (rows - 1) * stride + d : 0; /* exactly the rows, no slack */

    /* K/V: dense exact values for the oracle, strided storage with NaN gaps for the kernel */
    double *kx = tu_malloc(rows * d * sizeof(double)), *vx = tu_malloc(rows * d * sizeof(double));
    void *kd = tu_fill_kv(r, c->dt, rows * d, -1, 1, kx), *vd = tu_fill_kv(r, c->dt, rows * d, -1, 1, vx);
    const size_t nq = H * ql * G * d;
    const float amp = c->qamp > 0 ? c->qamp : 1.0f;
    float *q = tu_malloc(nq * sizeof(float));
    double *qx = tu_malloc(nq * sizeof(double)), *want = tu_malloc(nq * sizeof(double));
    for (size_t i = 0; i < nq; i++)
        qx[i] = q[i] = tu_query(r, -amp, amp, c->dt);
    if (c->needles)
        plant_needles(r, c, cu, kd, kx, q, qx);
    void *k = NULL, *v = NULL;
    if (rows) {
        k = tu_malloc(span * es), v = tu_malloc(span * es);
        fill_nan(k, c->dt, span), fill_nan(v, c->dt, span);
        for (size_t j = 0; j < rows; j++) {
            memcpy((char *)k + j * stride * es, (char *)kd + j * d * es, d * es);
            memcpy((char *)v + j * stride * es, (char *)vd + j * d * es, d * es);
        }
    }
    free(kd), free(vd);

    const double scale = c->scale != 0.0f ? (double)c->scale : 1.0 / sqrt((double)d);
    oracle_varlen(qx, kx, vx, d, cu, H, G, ql, d, scale, want);

    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    float *out = tu_malloc(nq * sizeof(float));
    char what[400];
    /* A head's rows in one block of at most 8 (decode) keep fp32 probabilities at the amx
       level (simd/kernels.h): the slack for rounded ones is not theirs there. */
    const int dot_only = ql * G <= 8;
    /* the levels with bf16 pair products read bf16 K/V by the read plan: each case under both */
    const kvz_read_plan plan0 = kvz_read_plan_active();
    for (size_t l = 0; l < nl; l++)
        for (int p = 0; p < 2; p++) {
            const int plans = c->dt == KVZ_DTYPE_BF16 && (lv[l] == KVZ_ISA_AVX512_BF16 || lv[l] == KVZ_ISA_AMX);
            if (p && !plans)
                continue;
            tu_force(lv[l]);
            const kvz_read_plan plan = plans ? (kvz_read_plan)p : plan0;
            assert_int_equal(kvz_read_plan_force(plan), KVZ_OK);
            const double tol =
                dot_only && lv[l] == KVZ_ISA_AMX ? tu_tol_at(KVZ_ISA_AVX512, c->dt) : tu_tol(c->dt);
            tu_fill_sentinel(out, nq);
            kvz_varlen_args a;
            memset(&a, 0, sizeof a);
            a.struct_size = sizeof a;
            a.n_kv_heads = H, a.group = G, a.head_dim = d, a.q_len = ql, a.scale = c->scale;
            a.q = q, a.k = k, a.v = v, a.kv_dtype = c->dt, a.kv_row_stride = (ptrdiff_t)stride, a.cu_len = cu;
            a.out = out;
            if (c->threads > 0)
                kvz_set_num_threads(c->threads);
            const kvz_status st = kvz_attn_decode_varlen(&a);
            kvz_set_num_threads(0);
            char level[40];
            snprintf(level, sizeof level, "%s, read plan %s", kvz_isa_name(lv[l]), kvz_read_plan_name(plan));
            describe(what, sizeof what, level, c);
            if (st != KVZ_OK)
                fail_msg("%s: kvz_attn_decode_varlen: %s (%s)", what, kvz_strerror(st), kvz_last_error());
            tu_check_close(out, want, nq, tol, tol, what);
        }
    assert_int_equal(kvz_read_plan_force(plan0), KVZ_OK);
    free(cu), free(kx), free(vx), free(k), free(v), free(q), free(qx), free(want), free(out);
}

static const size_t dims[] = {64, 80, 96, 128, 72, 40, 33, 256};

/* Random heads: H and G 1..8, 1..4 new tokens, segments empty, of one row, shorter than
 * (or equal to) q_len, around a key block, or up to 300 rows; padded rows; explicit
 * scales; 1..4 threads. */
static void test_random(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 20);
    const int cases = tu_quick() ? 12 : 70;
    for (int t = 0; t < cases; t++) {
        vcase c = {0};
        c.H = tu_range(&r, 1, 8), c.G = tu_range(&r, 1, 8), c.q_len = tu_range(&r, 1, 4);
        c.d = dims[tu_range(&r, 0, sizeof dims / sizeof dims[0] - 1)];
        c.dt = (kvz_dtype)(t % 3);
        for (size_t h = 0; h < c.H; h++) {
            switch (tu_range(&r, 0, 7)) {
            case 0: c.len[h] = 0; break;
            case 1: c.len[h] = 1; break;
            case 2: c.len[h] = tu_range(&r, 0, c.q_len); break;
            case 3: c.len[h] = 64 + tu_range(&r, 0, 2) - 1; break; /* 63, 64, 65 */
            case 4: c.len[h] = 128 + tu_range(&r, 0, 4); break;
            default: c.len[h] = tu_range(&r, 2, 300); break;
            }
        }
        c.row_pad = tu_range(&r, 0, 3) == 0 ? tu_range(&r, 1, 24) : 0;
        c.scale = tu_range(&r, 0, 5) == 0 ? 0.2f : 0.0f;
        c.qamp = tu_range(&r, 0, 1) ? 3.0f : 1.0f;
        c.threads = (int)tu_range(&r, 0, 4);
        c.needles = tu_range(&r, 0, 2) == 0;
        check_varlen(&r, &c);
    }
}

/* Fixed shapes: decode of one token for every group size (the dot path: G rows), several
 * tokens (rows q_len x G past the dot limit: gemm), every segment shorter than q_len (no
 * row sees anything for the first tokens), all segments empty with K/V NULL. */
static void test_shapes(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 21);
    for (size_t G = 1; G <= 8; G++)
        for (int dt = 0; dt < 3; dt++) {
            vcase c = {0};
            c.H = 3, c.G = G, c.d = G % 2 ? 128 : 72, c.q_len = 1 + (G + (size_t)dt) % 4, c.dt = (kvz_dtype)dt;
            c.len[0] = 100, c.len[1] = 1, c.len[2] = 65;
            c.qamp = 3.0f;
            check_varlen(&r, &c);
        }
    vcase s = {0}; /* every segment shorter than q_len */
    s.H = 4, s.G = 2, s.d = 64, s.q_len = 4, s.len[0] = 0, s.len[1] = 1, s.len[2] = 2, s.len[3] = 3;
    for (int dt = 0; dt < 3; dt++)
        s.dt = (kvz_dtype)dt, check_varlen(&r, &s);

    /* no rows at all: K/V may be NULL, every output is zero */
    float q[2 * 3 * 16], out[2 * 3 * 16];
    int32_t cu[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
        q[i] = 1.0f;
    kvz_varlen_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.n_kv_heads = 3, a.group = 2, a.head_dim = 16, a.q_len = 1, a.q = q, a.kv_row_stride = 16, a.cu_len = cu;
    a.out = out;
    tu_fill_sentinel(out, sizeof out / sizeof out[0]);
    assert_int_equal(kvz_attn_decode_varlen(&a), KVZ_OK);
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
        assert_true(out[i] == 0.0f);
}

/* More new tokens than a decode step (chunked append, speculative tokens): q_len x group
 * above 32 rows runs as query slices instead of key slices; segments shorter than q_len,
 * around the query blocks, and long. */
static void test_many_tokens(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 24);
    static const struct {
        size_t H, G, q_len, d;
        size_t len[4];
    } e[] = {
        {2, 8, 5, 64, {40, 3}},           {3, 4, 9, 80, {0, 9, 200}}, {1, 1, 70, 72, {150}},
        {4, 2, 40, 128, {39, 41, 64, 1}}, {2, 8, 16, 64, {1200, 17}}, {1, 3, 33, 96, {33}},
        {2, 4, 40, 128, {45, 300}}, /* 160 rows: a whole query block and a part */
        /* 132 and 133 rows: a query block on the gemm path, then 4 or 5 rows on the dot
           path in the same kernel call (the second always: 19 tokens are one block's) */
        {2, 4, 33, 128, {45, 300}}, {1, 7, 19, 96, {200}},
    };
    for (size_t t = 0; t < sizeof e / sizeof e[0]; t++)
        for (int dt = 0; dt < 3; dt++) {
            vcase c = {0};
            c.H = e[t].H, c.G = e[t].G, c.q_len = e[t].q_len, c.d = e[t].d, c.dt = (kvz_dtype)dt;
            memcpy(c.len, e[t].len, sizeof e[t].len);
            c.qamp = 3.0f, c.needles = dt == 1, c.threads = 1 + (int)(t + (size_t)dt) % 4;
            c.row_pad = t % 2 ? 8 : 0;
            check_varlen(&r, &c);
        }
}

/* Long segments: several key slices per head, merged by log-sum-exp, with 4, 3 and 1
 * threads; slices that some tokens cannot see at all (the last slice of 513 rows with 4
 * new tokens holds row 512, which tokens 0..2 do not see). */
static void test_long_split(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 22);
    const int quick = tu_quick();
    const size_t n = quick ? 1500 : 5000;
    {
        vcase c = {0};
        c.H = 4, c.G = 4, c.d = 128, c.q_len = 1, c.threads = 4, c.qamp = 3.0f, c.needles = 1;
        c.len[0] = n, c.len[1] = 7, c.len[2] = n / 3, c.len[3] = 0;
        assert_true(api_key_slice(n + 7 + n / 3, 4) < n / 3);
        for (int dt = 0; dt < 3; dt++)
            c.dt = (kvz_dtype)dt, check_varlen(&r, &c);
    }
    {
        vcase c = {0};
        c.H = 2, c.G = 7, c.d = 80, c.q_len = 3, c.threads = 3, c.dt = KVZ_DTYPE_BF16, c.row_pad = 8,
        c.needles = 1;
        c.len[0] = n, c.len[1] = n / 2 + 3;
        assert_true(api_key_slice(n + n / 2 + 3, 3) < n / 2);
        check_varlen(&r, &c);
        c.threads = 1, c.dt = KVZ_DTYPE_F16;
        assert_true(api_key_slice(n + n / 2 + 3, 1) < n / 2);
        check_varlen(&r, &c);
    }
    {
        vcase c = {0}; /* slices of 256 rows: [0,256) [256,512) [512,513) and [0,256) [256,257) */
        c.H = 2, c.G = 3, c.d = 64, c.q_len = 4, c.threads = 4, c.qamp = 3.0f;
        c.len[0] = 513, c.len[1] = 257;
        assert_int_equal(api_key_slice(770, 4), 256);
        for (int dt = 0; dt < 3; dt++) {
            c.dt = (kvz_dtype)dt, c.needles = 0;
            check_varlen(&r, &c);
            c.needles = 1;
            check_varlen(&r, &c);
        }
    }
    {
        vcase c = {0}; /* one very long head among short ones, 8 heads */
        c.H = 8, c.G = 1, c.d = 96, c.q_len = 2, c.threads = 4, c.dt = KVZ_DTYPE_F32, c.needles = 1;
        for (size_t h = 0; h < 8; h++)
            c.len[h] = h == 5 ? n : 3 + 40 * h;
        check_varlen(&r, &c);
    }
}

/*
 * Spec kvzip.md 4.5 / 9.7: attention through a keep mask over the full segment (retain:
 * [system prompt | context kept by the mask | the q_len new tokens], the oracle on the
 * uncompressed rows) equals the varlen kernel on the compacted rows (evict). Per head
 * kept ratios differ; also all kept and none of the context kept.
 */
static void test_retain_equals_evict(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 23);
    const size_t H = 3, G = 4, d = 64, n_sys = 5, n = tu_quick() ? 200 : 700;
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    char what[200];
    for (int variant = 0; variant < 9; variant++) {
        const kvz_dtype dt = (kvz_dtype)(variant % 3);
        const size_t ql = 1 + (size_t)variant % 3, pad = variant >= 6 ? 8 : 0, stride = d + pad;
        const size_t es = tu_dtype_size(dt);
        /* the full cache, head-major [h][j][d] */
        double *kx = tu_malloc(H * n * d * sizeof(double)), *vx = tu_malloc(H * n * d * sizeof(double));
        void *k = tu_fill_kv(&r, dt, H * n * d, -1, 1, kx), *v = tu_fill_kv(&r, dt, H * n * d, -1, 1, vx);
        unsigned char *keep = tu_malloc(H * n);
        int32_t cu[4] = {0};
        for (size_t h = 0; h < H; h++) {
            /* kept ratio per head: variant 0 keeps everything, variant 1 no context */
            const float ratio = variant == 0 ? 1.0f : variant == 1 ? 0.0f : 0.15f + 0.3f * (float)h;
            size_t kept = 0;
            for (size_t j = 0; j < n; j++) {
                unsigned char kj = j < n_sys || j >= n - ql || tu_uniform(&r, 0, 1) < ratio;
                keep[h * n + j] = kj;
                kept += kj;
            }
            cu[h + 1] = cu[h] + (int32_t)kept;
        }
        /* evict: the kept rows compacted, head after head, with padded rows */
        const size_t rows = (size_t)cu[H];
        char *kc = tu_malloc(rows * stride * es), *vc = tu_malloc(rows * stride * es);
        fill_nan(kc, dt, rows * stride), fill_nan(vc, dt, rows * stride);
        double *kcx = tu_malloc(rows * d * sizeof(double)), *vcx = tu_malloc(rows * d * sizeof(double));
        size_t row = 0;
        for (size_t h = 0; h < H; h++)
            for (size_t j = 0; j < n; j++)
                if (keep[h * n + j]) {
                    memcpy(kc + row * stride * es, (char *)k + (h * n + j) * d * es, d * es);
                    memcpy(vc + row * stride * es, (char *)v + (h * n + j) * d * es, d * es);
                    memcpy(kcx + row * d, kx + (h * n + j) * d, d * sizeof(double));
                    memcpy(vcx + row * d, vx + (h * n + j) * d, d * sizeof(double));
                    row++;
                }
        /* queries [h][t][g][d] */
        const size_t nq = H * ql * G * d;
        float *q = tu_malloc(nq * sizeof(float));
        double *qx = tu_malloc(nq * sizeof(double));
        for (size_t i = 0; i < nq; i++)
            qx[i] = q[i] = tu_query(&r, -3, 3, dt);
        /* retain: masked attention over the full segment; the new tokens are its last q_len rows */
        double *retain = tu_malloc(nq * sizeof(double)), *evict = tu_malloc(nq * sizeof(double));
        double *qg = tu_malloc(ql * d * sizeof(double)), *og = tu_malloc(ql * d * sizeof(double));
        const double scale = 1.0 / sqrt((double)d);
        for (size_t h = 0; h < H; h++)
            for (size_t g = 0; g < G; g++) {
                for (size_t t = 0; t < ql; t++)
                    memcpy(qg + t * d, qx + ((h * ql + t) * G + g) * d, d * sizeof(double));
                oracle_attn_masked(qg, kx + h * n * d, vx + h * n * d, keep + h * n, ql, n, d, (long)(n - ql),
                                   scale, og);
                for (size_t t = 0; t < ql; t++)
                    memcpy(retain + ((h * ql + t) * G + g) * d, og + t * d, d * sizeof(double));
            }
        /* the identity itself, in double: retain == evict */
        oracle_varlen(qx, kcx, vcx, d, cu, H, G, ql, d, scale, evict);
        for (size_t i = 0; i < nq; i++)
            if (!(fabs(retain[i] - evict[i]) <= 1e-12))
                fail_msg("variant %d: retain %.17g != evict %.17g at %zu (oracles)", variant, retain[i],
                         evict[i], i);
        /* and the kernel on the compacted rows equals the retain view */
        float *out = tu_malloc(nq * sizeof(float));
        for (size_t l = 0; l < nl; l++) {
            tu_force(lv[l]);
            kvz_varlen_args a;
            memset(&a, 0, sizeof a);
            a.struct_size = sizeof a;
            a.n_kv_heads = H, a.group = G, a.head_dim = d, a.q_len = ql;
            a.q = q, a.k = kc, a.v = vc, a.kv_dtype = dt, a.kv_row_stride = (ptrdiff_t)stride, a.cu_len = cu;
            a.out = out;
            tu_fill_sentinel(out, nq);
            assert_int_equal(kvz_attn_decode_varlen(&a), KVZ_OK);
            snprintf(what, sizeof what, "%s retain vs evict variant %d dtype %d q_len %zu kept %d/%d/%d of %zu",
                     kvz_isa_name(lv[l]), variant, (int)dt, ql, cu[1], cu[2] - cu[1], cu[3] - cu[2], n);
            tu_check_close(out, retain, nq, tu_tol(dt), tu_tol(dt), what);
        }
        free(kx), free(vx), free(k), free(v), free(keep), free(kc), free(vc), free(kcx), free(vcx);
        free(q), free(qx), free(retain), free(evict), free(qg), free(og), free(out);
    }
}

/* ---- sliding window ----------------------------------------------------------------------- */

/*
 * Decode steps of a local layer through the attention runner's key slices (q_len x G <= 32):
 * windowed jobs over three heads (long, shorter than the window, as short as the new tokens)
 * whose keys come as a shared run and a private tail, against the oracle over each head's
 * keys. The rows more than 31 keys before a head's window hold NaN: a slice or a block that
 * reads them (one the window should have skipped) spoils the output.
 */
static void test_window_decode(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 24);
    static const size_t windows[] = {1, 7, 128, 129, 512}, qls[] = {1, 2, 4}, gs[] = {1, 4, 7},
                        ds[] = {64, 128, 256};
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv), H = 3;
    size_t idx = 0;
    for (size_t wi = 0; wi < sizeof windows / sizeof windows[0]; wi++)
        for (size_t qi = 0; qi < sizeof qls / sizeof qls[0]; qi++, idx++) {
            if (tu_quick() && idx % 3)
                continue;
            const size_t w = windows[wi], ql = qls[qi], G = gs[(idx + wi) % 3], d = ds[idx % 3];
            const kvz_dtype dt = (kvz_dtype)(idx % 3);
            const size_t es = tu_dtype_size(dt), len[3] = {w + 1500 + tu_range(&r, 0, 300), w / 2 + ql, ql};
            const double scale = 1.0 / sqrt((double)d);
            const size_t nq = ql * G * d;
            float *q = tu_malloc(H * nq * sizeof(float)),
                  *out = tu_malloc(H * nq * sizeof(float)); /* [h][g][t][d] */
            double *qx = tu_malloc(H * nq * sizeof(double)), *want = tu_malloc(H * nq * sizeof(double));
            for (size_t x = 0; x < H * nq; x++)
                qx[x] = q[x] = tu_query(&r, -3, 3, dt);
            void *k[3], *v[3];
            kvz_attn_job jobs[3];
            memset(jobs, 0, sizeof jobs);
            for (size_t h = 0; h < H; h++) {
                const size_t n = len[h];
                double *kx = tu_malloc(n * d * sizeof(double)), *vx = tu_malloc(n * d * sizeof(double));
                k[h] = tu_fill_kv(&r, dt, n * d, -1, 1, kx), v[h] = tu_fill_kv(&r, dt, n * d, -1, 1, vx);
                for (size_t g = 0; g < G; g++)
                    oracle_attn_window(qx + h * nq + g * ql * d, kx, vx, ql, n, d, (long)(n - ql), w, scale,
                                       want + h * nq + g * ql * d, NULL);
                const long first = (long)(n - ql) + 1 - (long)w;
                for (long j = 0; j + 32 <= first; j++)
                    fill_nan((char *)k[h] + (size_t)j * d * es, dt, d),
                        fill_nan((char *)v[h] + (size_t)j * d * es, dt, d);
                const size_t tail = tu_range(&r, ql, ql + 5 < n ? ql + 5 : n); /* the query's private keys */
                kvz_attn_job *j = &jobs[h];
                j->q = q + h * nq, j->q_head_stride = (ptrdiff_t)(ql * d), j->q_row_stride = (ptrdiff_t)d;
                j->k = k[h], j->v = v[h], j->n_k = n - tail;
                j->k2 = (char *)k[h] + (n - tail) * d * es, j->v2 = (char *)v[h] + (n - tail) * d * es,
                j->n_k2 = tail;
                j->kv_row_stride = (ptrdiff_t)d, j->dtype = (int)dt;
                j->n_q = ql, j->d = d, j->group = G, j->q_pos0 = (ptrdiff_t)(n - ql), j->window = w;
                j->scale = (float)scale;
                j->out = out + h * nq, j->out_head_stride = (ptrdiff_t)(ql * d),
                j->out_row_stride = (ptrdiff_t)d;
                free(kx), free(vx);
            }
            for (size_t l = 0; l < nl; l++) {
                tu_force(lv[l]);
                /* as check_varlen: few rows keep fp32 probabilities at the amx level */
                const double tol =
                    ql * G <= 8 && lv[l] == KVZ_ISA_AMX ? tu_tol_at(KVZ_ISA_AVX512, dt) : tu_tol(dt);
                tu_fill_sentinel(out, H * nq);
                kvz_set_num_threads(4);
                const kvz_status st = kvz_attn_run(jobs, H);
                kvz_set_num_threads(0);
                assert_int_equal(st, KVZ_OK);
                char what[160];
                snprintf(what, sizeof what,
                         "%s window decode w %zu q_len %zu G%zu d%zu dtype %d len %zu %zu %zu",
                         kvz_isa_name(lv[l]), w, ql, G, d, (int)dt, len[0], len[1], len[2]);
                tu_check_close(out, want, H * nq, tol, tol, what);
            }
            for (size_t h = 0; h < H; h++)
                free(k[h]), free(v[h]);
            free(q), free(out), free(qx), free(want);
        }
}

/* ---- argument checking ---------------------------------------------------------------- */

static void expect_status(const kvz_varlen_args *a, kvz_status want, const char *word)
{
    kvz_clear_error();
    const kvz_status st = kvz_attn_decode_varlen(a);
    if (st != want)
        fail_msg("kvz_attn_decode_varlen returned %d (%s), want %d; last error \"%s\"", (int)st,
                 kvz_strerror(st), (int)want, kvz_last_error());
    if (want == KVZ_OK)
        return;
    const char *msg = kvz_last_error();
    assert_non_null(msg);
    if (strlen(msg) == 0)
        fail_msg("status %d without a kvz_last_error() message", (int)st);
    if (word && !strstr(msg, word))
        fail_msg("kvz_last_error() \"%s\" does not name \"%s\"", msg, word);
}

static void test_invalid(void **state)
{
    (void)state;
    enum { D = 4, H = 2, G = 1, NQ = H * G * D };
    float q[NQ], k[8 * D], out[NQ];
    for (size_t i = 0; i < NQ; i++)
        q[i] = 0.5f;
    for (size_t i = 0; i < 8 * D; i++)
        k[i] = 0.1f * (float)i;
    int32_t cu[H + 1] = {0, 4, 8};
    kvz_varlen_args a;

    kvz_clear_error();
    assert_int_equal(kvz_attn_decode_varlen(NULL), KVZ_ERR_NULL);
    assert_true(strlen(kvz_last_error()) > 0);
    memset(&a, 0, sizeof a);
    a.struct_size = 8;
    expect_status(&a, KVZ_ERR_INVALID_ARG, "struct_size");
    a.struct_size = sizeof a - 1;
    expect_status(&a, KVZ_ERR_INVALID_ARG, "struct_size");

    a.struct_size = sizeof a;
    a.n_kv_heads = H, a.group = G, a.head_dim = D, a.q_len = 1;
    a.q = q, a.k = k, a.v = k, a.kv_dtype = KVZ_DTYPE_F32, a.kv_row_stride = D, a.cu_len = cu, a.out = out;
    expect_status(&a, KVZ_OK, NULL);
    kvz_varlen_args b;

    b = a, b.head_dim = 0;
    expect_status(&b, KVZ_ERR_INVALID_ARG, "head_dim");
    b = a, b.head_dim = 257, b.kv_row_stride = 257;
    expect_status(&b, KVZ_ERR_INVALID_ARG, "head_dim");
    b = a, b.n_kv_heads = 0;
    expect_status(&b, KVZ_ERR_INVALID_ARG, NULL);
    b = a, b.group = 0;
    expect_status(&b, KVZ_ERR_INVALID_ARG, NULL);
    b = a, b.kv_dtype = (kvz_dtype)5;
    expect_status(&b, KVZ_ERR_INVALID_ARG, "dtype");
    b = a, b.q = NULL;
    expect_status(&b, KVZ_ERR_NULL, NULL);
    b = a, b.out = NULL;
    expect_status(&b, KVZ_ERR_NULL, NULL);
    b = a, b.cu_len = NULL;
    expect_status(&b, KVZ_ERR_NULL, NULL);
    b = a, b.k = NULL;
    expect_status(&b, KVZ_ERR_NULL, NULL);
    b = a, b.v = NULL;
    expect_status(&b, KVZ_ERR_NULL, NULL);
    b = a, b.kv_row_stride = D - 1;
    expect_status(&b, KVZ_ERR_INVALID_ARG, "kv_row_stride");

    /* cu_len must start at 0 and never decrease; a failing call writes nothing */
    int32_t bad0[H + 1] = {1, 4, 8}, dec[H + 1] = {0, 5, 4}, neg[H + 1] = {0, -1, 3};
    tu_fill_sentinel(out, NQ);
    b = a, b.cu_len = bad0;
    expect_status(&b, KVZ_ERR_INVALID_ARG, "cu_len");
    b = a, b.cu_len = dec;
    expect_status(&b, KVZ_ERR_INVALID_ARG, "cu_len");
    b = a, b.cu_len = neg;
    expect_status(&b, KVZ_ERR_INVALID_ARG, "cu_len");
    for (size_t i = 0; i < NQ; i++)
        assert_true(tu_is_sentinel(out + i));

    /* accepted: q_len 0 writes nothing; head_dim 256; stride larger than the row */
    b = a, b.q_len = 0;
    expect_status(&b, KVZ_OK, NULL);
    for (size_t i = 0; i < NQ; i++)
        assert_true(tu_is_sentinel(out + i));
    b = a, b.kv_row_stride = 2 * D, b.cu_len = (int32_t[]){0, 2, 4};
    expect_status(&b, KVZ_OK, NULL);
    for (size_t i = 0; i < NQ; i++)
        assert_false(tu_is_sentinel(out + i));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_random, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_shapes, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_many_tokens, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_long_split, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_retain_equals_evict, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_window_decode, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
