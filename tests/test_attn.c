/*
 * kvz_attn_prefill (plain and KVzip scoring mode) at every ISA level and K/V dtype against
 * the double-precision oracle, the KVzip spec's score properties (kvzip.md section 9, items
 * 2-5), the kernel-level contract (lse layout with a group, query slices in scoring mode,
 * keys in two runs) and argument checking. KVZ_TEST_SEED replays a run, KVZ_TEST_QUICK=1
 * shrinks it (sanitizers, emulators), KVZ_TEST_VERBOSE=1 prints each test's time and its
 * worst error relative to the tolerance.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "oracle.h"
#include "testutil.h"

/* Tolerances of the lse and of the KVzip scores (probabilities: relative to their size,
 * since an error in a logit difference is a relative error of exp; see tu_tol for why fp32
 * stays within ~1e-6 of the truth on these inputs). */
#define LSE_ATOL   2e-5
#define LSE_RTOL   2e-6
#define SCORE_ATOL 1e-9
#define SCORE_RTOL 2e-5

/* ---- layouts ---------------------------------------------------------------------- */

/* Rows of d elements for n_tok tokens x n_heads heads: head-major ([head][token]) or
 * token-major ([token][head]); pad_in widens the inner stride, pad_out the outer one. */
typedef struct lay {
    int head_major;
    size_t pad_in, pad_out;
} lay;

typedef struct strides {
    ptrdiff_t tok, head;
    size_t size; /* elements spanned, exactly */
} strides;

static strides lay_strides(lay l, size_t n_tok, size_t n_heads, size_t d)
{
    strides s;
    if (l.head_major) {
        s.tok = (ptrdiff_t)(d + l.pad_in);
        s.head = (ptrdiff_t)n_tok * s.tok + (ptrdiff_t)l.pad_out;
    } else {
        s.head = (ptrdiff_t)(d + l.pad_in);
        s.tok = (ptrdiff_t)n_heads * s.head + (ptrdiff_t)l.pad_out;
    }
    s.size = n_tok && n_heads ? (n_tok - 1) * (size_t)s.tok + (n_heads - 1) * (size_t)s.head + d : 0;
    return s;
}

static size_t lay_index(strides s, size_t tok, size_t head)
{
    return tok * (size_t)s.tok + head * (size_t)s.head;
}

static const char *lay_name(lay l) { return l.head_major ? "head-major" : "token-major"; }

/* NaN of each storage type: padding holds it, so reading padding into the math shows. */
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

/* ---- one prefill case --------------------------------------------------------------- */

typedef struct pcase {
    size_t H, G, d, n_q, n_k;
    long q_pos0;
    kvz_dtype dt;
    lay ql, ol, kl; /* layouts of q, out and K/V */
    float scale;    /* 0: the default 1/sqrt(d) */
    float qamp;     /* queries uniform in [-qamp, qamp) (0: 1) */
    int with_lse;
    int threads; /* the library's threads for the call (kvz_set_num_threads; 0: the default) */
    int scoring;
    size_t sink_end, chunk_begin, chunk_end;
    size_t score_pad;
    int score_prior;  /* scores start from random values in [0, 0.5) instead of 0 */
    double tol_scale; /* every tolerance times this (0: 1) */
} pcase;

typedef struct pdata {
    strides qs, os, ks;
    float *q;
    void *k, *v;     /* NULL when n_k == 0 */
    double *qx;      /* [qh][i][d] */
    double *kx, *vx; /* [h][j][d] */
} pdata;

static double case_scale(const pcase *c)
{
    return c->scale != 0.0f ? (double)c->scale : 1.0 / sqrt((double)c->d);
}

static void describe(char *buf, size_t n, const char *level, const pcase *c, const char *part)
{
    snprintf(
        buf, n,
        "%s %s: H%zu G%zu d%zu n_q %zu n_k %zu q_pos0 %ld dtype %d q %s+%zu/%zu out %s+%zu/%zu kv %s+%zu/%zu "
        "scale %g lse %d threads %d scoring %d [sink %zu chunk %zu..%zu prior %d]",
        level, part, c->H, c->G, c->d, c->n_q, c->n_k, c->q_pos0, (int)c->dt, lay_name(c->ql), c->ql.pad_in,
        c->ql.pad_out, lay_name(c->ol), c->ol.pad_in, c->ol.pad_out, lay_name(c->kl), c->kl.pad_in,
        c->kl.pad_out, (double)c->scale, c->with_lse, c->threads, c->scoring, c->sink_end, c->chunk_begin,
        c->chunk_end, c->score_prior);
}

static pdata make_data(tu_rng *r, const pcase *c)
{
    pdata p;
    const size_t HG = c->H * c->G, d = c->d, es = tu_dtype_size(c->dt);
    const float amp = c->qamp > 0 ? c->qamp : 1.0f;
    p.qs = lay_strides(c->ql, c->n_q, HG, d);
    p.os = lay_strides(c->ol, c->n_q, HG, d);
    p.ks = lay_strides(c->kl, c->n_k, c->H, d);
    p.q = tu_malloc(p.qs.size * sizeof(float));
    fill_nan(p.q, KVZ_DTYPE_F32, p.qs.size);
    p.qx = tu_malloc(HG * c->n_q * d * sizeof(double));
    for (size_t qh = 0; qh < HG; qh++)
        for (size_t i = 0; i < c->n_q; i++)
            for (size_t x = 0; x < d; x++) {
                const float v = tu_query(r, -amp, amp, c->dt);
                p.q[lay_index(p.qs, i, qh) + x] = v;
                p.qx[(qh * c->n_q + i) * d + x] = v;
            }
    const size_t nkv = c->H * c->n_k * d;
    p.kx = tu_malloc(nkv * sizeof(double));
    p.vx = tu_malloc(nkv * sizeof(double));
    void *kd = tu_fill_kv(r, c->dt, nkv, -1.0f, 1.0f, p.kx); /* dense [h][j][d] */
    void *vd = tu_fill_kv(r, c->dt, nkv, -1.0f, 1.0f, p.vx);
    p.k = p.v = NULL;
    if (c->n_k) {
        p.k = tu_malloc(p.ks.size * es);
        p.v = tu_malloc(p.ks.size * es);
        fill_nan(p.k, c->dt, p.ks.size);
        fill_nan(p.v, c->dt, p.ks.size);
        for (size_t h = 0; h < c->H; h++)
            for (size_t j = 0; j < c->n_k; j++) {
                const size_t at = lay_index(p.ks, j, h), from = (h * c->n_k + j) * d;
                memcpy((char *)p.k + at * es, (char *)kd + from * es, d * es);
                memcpy((char *)p.v + at * es, (char *)vd + from * es, d * es);
            }
    }
    free(kd);
    free(vd);
    return p;
}

static void free_data(pdata *p) { free(p->q), free(p->k), free(p->v), free(p->qx), free(p->kx), free(p->vx); }

static kvz_attn_args make_args(const pcase *c, const pdata *p, float *out, float *lse, float *score)
{
    kvz_attn_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.n_kv_heads = c->H, a.group = c->G, a.head_dim = c->d, a.n_q = c->n_q, a.n_k = c->n_k;
    a.q_pos0 = c->q_pos0;
    a.scale = c->scale;
    a.q = p->q, a.q_token_stride = p->qs.tok, a.q_head_stride = p->qs.head;
    a.k = p->k, a.v = p->v, a.kv_dtype = c->dt, a.kv_row_stride = p->ks.tok, a.kv_head_stride = p->ks.head;
    a.out = out, a.out_token_stride = p->os.tok, a.out_head_stride = p->os.head;
    a.lse = lse;
    if (c->scoring) {
        a.score = score;
        a.score_head_stride = (ptrdiff_t)(c->chunk_end - c->chunk_begin + c->score_pad);
        a.sink_end = c->sink_end, a.chunk_begin = c->chunk_begin, a.chunk_end = c->chunk_end;
    }
    return a;
}

static void call_prefill(const kvz_attn_args *a, int threads)
{
    if (threads > 0)
        kvz_set_num_threads(threads);
    const kvz_status st = kvz_attn_prefill(a);
    if (threads > 0)
        kvz_set_num_threads(0);
    if (st != KVZ_OK)
        fail_msg("kvz_attn_prefill: %s (%s)", kvz_strerror(st), kvz_last_error());
}

/* Runs one case at every level; compares outputs, lse and scores with the oracle and checks
 * that nothing outside the outputs' logical elements was written. */
static void check_case(tu_rng *r, const pcase *c)
{
    pdata p = make_data(r, c);
    const size_t HG = c->H * c->G, d = c->d, m = c->chunk_end - c->chunk_begin;
    const size_t nout = HG * c->n_q * d, sstride = m + c->score_pad;
    const size_t ssize = c->scoring ? (c->H - 1) * sstride + m : 0;
    const double scale = case_scale(c), ts = c->tol_scale > 0 ? c->tol_scale : 1.0;

    /* the oracle, in [qh][i][d] order */
    double *want = tu_malloc(nout * sizeof(double)), *want_lse = tu_malloc(HG * c->n_q * sizeof(double));
    for (size_t qh = 0; qh < HG; qh++) {
        const size_t h = qh / c->G;
        oracle_attn(p.qx + qh * c->n_q * d, p.kx + h * c->n_k * d, p.vx + h * c->n_k * d, c->n_q, c->n_k, d,
                    c->q_pos0, scale, want + qh * c->n_q * d, want_lse + qh * c->n_q);
    }
    float *prior = tu_calloc(ssize, sizeof(float));
    double *want_score = tu_calloc(ssize, sizeof(double));
    if (c->scoring) {
        double *sh = tu_malloc((m ? m : 1) * sizeof(double));
        for (size_t h = 0; h < c->H; h++) {
            oracle_kvzip_score(p.qx + h * c->G * c->n_q * d, p.kx + h * c->n_k * d, c->G, c->n_q, c->n_k, d,
                               c->q_pos0, scale, c->sink_end, c->chunk_begin, c->chunk_end, sh);
            for (size_t j = 0; j < m; j++) {
                const size_t at = h * sstride + j;
                prior[at] = c->score_prior ? tu_uniform(r, 0.0f, 0.5f) : 0.0f;
                want_score[at] = fmax(sh[j], (double)prior[at]);
            }
        }
        free(sh);
    }

    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    float *out = tu_malloc(p.os.size * sizeof(float)), *lse = tu_malloc(HG * c->n_q * sizeof(float));
    float *score = tu_malloc((ssize ? ssize : 1) * sizeof(float)), *got = tu_malloc(nout * sizeof(float));
    float *got_score = tu_malloc((c->H * m + 1) * sizeof(float));
    double *want_s = tu_malloc((c->H * m + 1) * sizeof(double));
    unsigned char *logical = tu_calloc(p.os.size, 1);
    for (size_t qh = 0; qh < HG; qh++)
        for (size_t i = 0; i < c->n_q; i++)
            memset(logical + lay_index(p.os, i, qh), 1, d);
    char what[512];
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        const char *ln = kvz_isa_name(lv[l]);
        tu_fill_sentinel(out, p.os.size);
        tu_fill_sentinel(lse, HG * c->n_q);
        tu_fill_sentinel(score, ssize);
        for (size_t h = 0; c->scoring && h < c->H; h++) /* scores start at the prior, padding stays sentinel */
            memcpy(score + h * sstride, prior + h * sstride, m * sizeof(float));
        const kvz_attn_args a = make_args(c, &p, out, c->with_lse ? lse : NULL, score);
        call_prefill(&a, c->threads);

        for (size_t qh = 0; qh < HG; qh++) /* to the oracle's [qh][i][d] order */
            for (size_t i = 0; i < c->n_q; i++)
                memcpy(got + (qh * c->n_q + i) * d, out + lay_index(p.os, i, qh), d * sizeof(float));
        describe(what, sizeof what, ln, c, "out");
        tu_check_close(got, want, nout, tu_tol(c->dt) * ts, tu_tol(c->dt) * ts, what);
        for (size_t x = 0; x < p.os.size; x++)
            if (!logical[x] && !tu_is_sentinel(out + x))
                fail_msg("%s: wrote padding element %zu of out", what, x);
        if (c->with_lse) {
            describe(what, sizeof what, ln, c, "lse");
            tu_check_close(lse, want_lse, HG * c->n_q, LSE_ATOL * ts, LSE_RTOL * ts, what);
        }
        if (c->scoring) {
            for (size_t h = 0; h < c->H; h++) {
                memcpy(got_score + h * m, score + h * sstride, m * sizeof(float));
                for (size_t j = 0; j < m; j++)
                    want_s[h * m + j] = want_score[h * sstride + j];
                for (size_t x = m; h + 1 < c->H && x < sstride; x++)
                    if (!tu_is_sentinel(score + h * sstride + x))
                        fail_msg("%s: wrote score padding of head %zu", what, h);
            }
            describe(what, sizeof what, ln, c, "score");
            tu_check_close(got_score, want_s, c->H * m, SCORE_ATOL * ts, SCORE_RTOL * ts, what);
        }
    }
    free(out), free(lse), free(score), free(got), free(got_score), free(want_s), free(logical);
    free(want), free(want_lse), free(want_score), free(prior);
    free_data(&p);
}

/* ---- plain prefill -------------------------------------------------------------------- */

static const size_t dims[] = {64, 80, 96, 128, 72, 40, 33, 112};

static lay random_lay(tu_rng *r)
{
    lay l;
    l.head_major = (int)tu_range(r, 0, 1);
    l.pad_in = tu_range(r, 0, 2) == 0 ? tu_range(r, 1, 17) : 0;
    l.pad_out = tu_range(r, 0, 2) == 0 ? tu_range(r, 1, 40) : 0;
    return l;
}

/* Random shapes: every dtype, d of whole and partial vectors, groups 1..8, one row, a few
 * rows (the "dot" path), one block and several blocks of KVZ_KBLOCK_Q rows, key counts
 * off the KVZ_KBLOCK_K-key blocks, random layouts, strides and thread counts. */
static void test_prefill_random(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    const int quick = tu_quick(), cases = quick ? 12 : 90;
    for (int t = 0; t < cases; t++) {
        pcase c = {0};
        c.dt = (kvz_dtype)(t % 3);
        c.H = tu_range(&r, 1, quick ? 2 : 3);
        c.G = tu_range(&r, 1, 8);
        c.d = dims[tu_range(&r, 0, sizeof dims / sizeof dims[0] - 1)];
        switch (t % 4) {
        case 0: c.n_q = 1; break;
        case 1: c.n_q = tu_range(&r, 2, 9); break;
        case 2: c.n_q = tu_range(&r, 10, 63); break;
        default: c.n_q = tu_range(&r, 65, quick ? 100 : 160); break;
        }
        /* few rows (n_q x G <= 32, no scoring) run as key slices merged by log-sum-exp:
         * give them more keys than one 256-key slice now and then */
        c.n_k =
            c.n_q + (c.n_q <= 9 && tu_range(&r, 0, 2) == 0 ? tu_range(&r, 257, 1300) : tu_range(&r, 0, 260));
        const size_t kind = tu_range(&r, 0, 9);
        if (kind == 0) /* some rows see nothing */
            c.q_pos0 = -(long)tu_range(&r, 1, c.n_q);
        else if (kind == 1) /* every row sees every key */
            c.q_pos0 = (long)c.n_k + (long)tu_range(&r, 0, 5);
        else
            c.q_pos0 = (long)(c.n_k - c.n_q);
        c.ql = random_lay(&r), c.ol = random_lay(&r), c.kl = random_lay(&r);
        c.qamp = tu_range(&r, 0, 1) ? 3.0f : 1.0f;
        c.scale = tu_range(&r, 0, 4) == 0 ? 0.25f : 0.0f;
        c.with_lse = (int)tu_range(&r, 0, 1);
        c.threads = (int)tu_range(&r, 0, 4);
        check_case(&r, &c);
    }
}

/* Shapes chosen for the two ways a block fills its logits: "dot" (rows = tokens x group,
 * or tokens alone when a query slice with lse runs head by head; at most 8 on AVX-512, 4
 * on AVX2, 2 on NEON) and "gemm", including a multi-block query run whose last block is
 * small enough for the dot path; and for the two work splits of src/core/attn_runner.c:
 * query slices (rows > 32) and key slices merged by log-sum-exp (rows <= 32, here with
 * up to 1500 keys, so several slices: the last six shapes). Every case runs with and without lse, every dtype,
 * d cycling through whole and partial vectors (1, 33, 72 and 256 among them). */
static void test_prefill_paths(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 1);
    static const struct {
        size_t G, n_q, n_k;
    } e[] = {
        {1, 1, 37},   {8, 1, 200},  {4, 1, 130},  {2, 1, 64},   {2, 2, 70},    {4, 2, 100},  {2, 3, 99},
        {3, 3, 77},   {1, 5, 65},   {1, 8, 300},  {1, 9, 50},   {1, 64, 64},   {1, 65, 127}, {1, 70, 200},
        {4, 17, 90},  {5, 13, 40},  {2, 33, 33},  {7, 40, 81},  {1, 130, 250}, {8, 20, 150}, {4, 2, 700},
        {8, 4, 1000}, {1, 1, 1500}, {2, 16, 600}, {3, 11, 900}, {1, 32, 520},
    };
    static const size_t pd[] = {64, 1, 33, 72, 80, 96, 128, 256};
    const size_t n = sizeof e / sizeof e[0], step = tu_quick() ? 3 : 1; /* quick: a third, both splits */
    for (size_t t = 0; t < n; t += step)
        for (int lse = 0; lse < 2; lse++) {
            pcase c = {0};
            c.H = 2, c.G = e[t].G, c.n_q = e[t].n_q, c.n_k = e[t].n_k;
            c.d = pd[(t + (size_t)lse) % (sizeof pd / sizeof pd[0])];
            c.q_pos0 = (long)(c.n_k - c.n_q);
            c.dt = (kvz_dtype)((t + (size_t)lse) % 3);
            c.ql.head_major = c.ol.head_major = c.kl.head_major = (int)t % 2;
            c.qamp = 3.0f;
            c.with_lse = lse;
            check_case(&r, &c);
        }
}

/* The tile shapes of the bf16 gemm path (AMX tiles at the amx level, pair dot products at
 * avx512bf16; plain fp32 elsewhere, checked all the same): every head size that is a
 * multiple of 32, query blocks of 9 .. 160 rows (odd numbers of 16-row tiles; past one
 * KVZ_KBLOCK_Q-row block, a last block of a few rows or of two tiles), key runs ending just
 * before, at and after each 16- and 32-key tile boundary and each KVZ_KBLOCK_K-key block
 * boundary, plain and in scoring mode. */
static void test_bf16_tile_shapes(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 11);
    static const size_t head_dims[] = {32, 64, 96, 128, 256};
    static const struct {
        size_t G, n_q;
    } rows[] = {{1, 9}, {4, 4}, {1, 17}, {3, 11}, {8, 6}, {1, 64}, {5, 13}, {2, 65}, {4, 40}};
    _Static_assert(KVZ_KBLOCK_Q < 130 && KVZ_KBLOCK_Q % 32 == 0, "the rows above span two query blocks");
    enum { BKEYS = KVZ_KBLOCK_K };
    static const size_t before[] = {
        0, 15, 16, 31, 32, 33, 47, 63, 64, 65, 100, BKEYS - 1, BKEYS, BKEYS + 1, 2 * BKEYS + 17};
    const size_t step = tu_quick() ? 3 : 1;
    size_t t = 0;
    for (size_t di = 0; di < sizeof head_dims / sizeof head_dims[0]; di++)
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++, t++) {
            if (t % step)
                continue;
            pcase c = {0};
            c.H = 2, c.G = rows[ri].G, c.n_q = rows[ri].n_q, c.d = head_dims[di], c.dt = KVZ_DTYPE_BF16;
            c.q_pos0 = (long)before[t % (sizeof before / sizeof before[0])];
            c.n_k = (size_t)c.q_pos0 + c.n_q;
            c.qamp = 3.0f;
            c.with_lse = (int)(t % 2);
            c.ql.head_major = c.ol.head_major = c.kl.head_major = (int)(t / 2 % 2);
            if (t % 3 == 1 && c.q_pos0 > 2) { /* scoring: a sink, a chunk, the queries' own keys */
                c.scoring = 1;
                c.sink_end = 1, c.chunk_begin = 2, c.chunk_end = (size_t)c.q_pos0;
            }
            check_case(&r, &c);
        }
}

/* Small even head sizes on the bf16 gemm path (pair products at avx512bf16, and the f32
 * paths elsewhere): a block's probability pairs, KVZ_KBLOCK_K / 2 x KVZ_KBLOCK_Q words,
 * outgrow a converted-K scratch of KVZ_KBLOCK_K rows of a small d, so they have a region of
 * their own; query blocks of 40 and 160 rows against keys spanning several key blocks. */
static void test_bf16_small_heads(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 12);
    static const size_t head_dims[] = {2, 8, 16, 18, 30};
    for (size_t t = 0; t < sizeof head_dims / sizeof head_dims[0]; t++) {
        pcase c = {0};
        c.H = 2, c.G = 4, c.n_q = t % 2 ? 40 : 10, c.d = head_dims[t], c.dt = KVZ_DTYPE_BF16;
        c.q_pos0 = 2 * KVZ_KBLOCK_K + 30;
        c.n_k = (size_t)c.q_pos0 + c.n_q;
        c.qamp = 3.0f;
        c.with_lse = (int)(t % 2);
        check_case(&r, &c);
    }
}

/* Causal offsets: rows that see nothing (zeros, lse -inf), all keys visible, one key, no
 * keys at all (k = v = NULL), blank rows inside a dot block and across gemm blocks; the
 * last four split into key slices of 256+ keys, with rows that see only the first slice,
 * none, or all. */
static void test_prefill_offsets(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 2);
    static const struct {
        size_t G, n_q, n_k;
        long q_pos0;
    } e[] = {
        {2, 20, 30, -5}, {1, 10, 10, -10},  {3, 7, 10, 100},  {1, 1, 1, 0},  {4, 5, 0, 0},
        {1, 70, 65, -3}, {8, 1, 129, 128},  {2, 4, 5, -2},    {1, 3, 9, -2}, {2, 100, 80, -30},
        {1, 1, 50, -1},  {3, 90, 64, 0},    {4, 2, 64, 62},   {1, 6, 6, -5}, {2, 3, 800, 100},
        {4, 8, 900, -4}, {1, 20, 700, 260}, {8, 2, 600, 900},
    };
    for (size_t t = 0; t < sizeof e / sizeof e[0]; t++)
        for (int dt = 0; dt < 3; dt++) {
            pcase c = {0};
            c.H = 2, c.G = e[t].G, c.d = dt == 1 ? 72 : 64, c.n_q = e[t].n_q, c.n_k = e[t].n_k;
            c.q_pos0 = e[t].q_pos0;
            c.dt = (kvz_dtype)dt, c.with_lse = (int)(t + (size_t)dt) % 2;
            c.ql.head_major = c.ol.head_major = c.kl.head_major = (int)t % 2;
            c.qamp = 2.0f;
            check_case(&r, &c);
        }
}

/* Layouts: token-major with the plain strides (q_token_stride = H*G*d, kv_row_stride = H*d),
 * head-major, padded rows and heads, q, out and K/V in different layouts, explicit scales. */
/* Logits spread over thousands (a scale of 40): exp overflows unless every block's running
 * max is at least the max of its keys, on every path (the gemm layout's max runs as several
 * chains, any of which may hold it) and in scoring, where the reduced set's max is far below
 * the full one. Softmax is otherwise blind to which max it subtracts. */
static void test_prefill_wide_logits(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 9);
    static const struct {
        size_t G, n_q, n_k, d;
    } e[] = {
        {2, 40, 300, 64},  {4, 64, 520, 128}, {1, 3, 700, 128},
        {1, 130, 260, 96}, {8, 1, 400, 128},  {2, 70, 900, 128},
    };
    for (size_t t = 0; t < sizeof e / sizeof e[0]; t++)
        for (int scoring = 0; scoring < 2; scoring++) {
            pcase c = {0};
            c.H = 2, c.G = e[t].G, c.n_q = e[t].n_q, c.n_k = e[t].n_k, c.d = e[t].d;
            c.q_pos0 = (long)(c.n_k - c.n_q);
            c.dt = (kvz_dtype)((t + (size_t)scoring) % 3);
            c.scale = 40.0f;
            c.qamp = 3.0f;
            c.with_lse = 1;
            /* exp(z - lse) carries the fp32 rounding of logits in the thousands, a hundred times
               that of the other tests' logits: bounds a hundred times looser, which an overflow
               (inf or nan) still fails by far */
            c.tol_scale = 100.0;
            if (scoring) /* a chunk that starts and ends inside key blocks */
                c.scoring = 1, c.sink_end = 5, c.chunk_begin = 70, c.chunk_end = (size_t)c.q_pos0 - 20;
            check_case(&r, &c);
        }
}

static void test_prefill_layouts(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 3);
    static const lay ls[] = {{0, 0, 0}, {1, 0, 0}, {0, 5, 0}, {0, 0, 9}, {1, 3, 7}, {1, 0, 64}, {0, 16, 3}};
    static const float scales[] = {0.0f, 0.05f, 0.3f, 1.0f};
    const size_t nls = sizeof ls / sizeof ls[0];
    for (size_t t = 0; t < (tu_quick() ? 7u : 21u); t++) {
        pcase c = {0};
        c.H = 3, c.G = 1 + t % 4, c.d = t % 2 ? 80 : 64, c.n_q = t % 3 ? 23 : 3, c.n_k = 140;
        c.q_pos0 = (long)(c.n_k - c.n_q);
        c.dt = (kvz_dtype)(t % 3);
        c.ql = ls[t % nls], c.ol = ls[(t / nls + t) % nls], c.kl = ls[(t * 3) % nls];
        c.scale = scales[t % 4];
        c.qamp = 2.0f;
        c.with_lse = (int)t % 2;
        check_case(&r, &c);
    }
}

/* ---- scoring mode ----------------------------------------------------------------------- */

/* Random scoring cases: ranges with and without a system prompt, chunks adjacent to the
 * system prompt or to the repeat input, an empty chunk, keys after the repeat input,
 * scores that start from earlier values (the result is their max with the new ones),
 * padded score rows, lse on and off, 1..4 threads. */
static void test_scoring_random(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 4);
    const int quick = tu_quick(), cases = quick ? 8 : 40;
    for (int t = 0; t < cases; t++) {
        pcase c = {0};
        c.H = tu_range(&r, 1, quick ? 2 : 3);
        c.G = tu_range(&r, 1, 8);
        c.d = dims[tu_range(&r, 0, sizeof dims / sizeof dims[0] - 1)];
        c.dt = (kvz_dtype)(t % 3);
        c.n_q = t % 5 == 0 ? tu_range(&r, 1, 3) : tu_range(&r, 4, quick ? 80 : 140);
        c.sink_end = tu_range(&r, 0, 3) == 0 ? 0 : tu_range(&r, 1, 8);
        c.chunk_begin = c.sink_end + (tu_range(&r, 0, 3) == 0 ? 0 : tu_range(&r, 1, 70));
        c.chunk_end = c.chunk_begin + (t == 7 ? 0 : tu_range(&r, 1, 200));
        c.q_pos0 = (long)(c.chunk_end + (tu_range(&r, 0, 3) == 0 ? 0 : tu_range(&r, 1, 90)));
        c.n_k = (size_t)c.q_pos0 + c.n_q + (tu_range(&r, 0, 4) == 0 ? tu_range(&r, 1, 30) : 0);
        c.scoring = 1;
        c.score_prior = (int)tu_range(&r, 0, 1);
        c.score_pad = tu_range(&r, 0, 1) ? tu_range(&r, 1, 9) : 0;
        c.ql = random_lay(&r), c.ol = random_lay(&r), c.kl = random_lay(&r);
        c.qamp = tu_range(&r, 0, 1) ? 3.0f : 1.0f;
        c.with_lse = (int)tu_range(&r, 0, 1);
        c.threads = (int)tu_range(&r, 0, 4);
        check_case(&r, &c);
    }
}

/* Query slices per KV head (mirrors run_query_slices in src/core/attn_runner.c): about 4
 * tasks per thread over all heads, whole 64-row blocks per slice. Used to make sure the
 * large cases below really split one head's queries over several tasks. */
static size_t api_slices(size_t n_q, size_t H, size_t G, size_t nthr)
{
    const size_t tpb = (64 + G - 1) / G;
    size_t s = (4 * nthr + H - 1) / H;
    const size_t mx = (n_q + tpb - 1) / tpb;
    if (s > mx)
        s = mx;
    if (s == 0)
        s = 1;
    size_t tok = (n_q + s - 1) / s;
    tok = (tok + tpb - 1) / tpb * tpb;
    return (n_q + tok - 1) / tok;
}

/* A repeat input of thousands of queries: several query slices per head, each with
 * private score rows that are max-merged afterwards, with 4 threads and with 1. */
static void test_scoring_large(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 5);
    const int quick = tu_quick();
    pcase c = {0};
    c.H = 1, c.G = 2, c.d = 64, c.dt = KVZ_DTYPE_BF16;
    c.n_q = quick ? 300 : 2000;
    c.sink_end = 4, c.chunk_begin = 100, c.chunk_end = quick ? 250 : 612;
    c.q_pos0 = quick ? 400 : 1000;
    c.n_k = (size_t)c.q_pos0 + c.n_q;
    c.scoring = 1, c.score_prior = 0, c.qamp = 3.0f;
    c.ql.head_major = 0, c.kl.head_major = 1, c.ol.head_major = 0;
    c.threads = 4;
    assert_true(api_slices(c.n_q, c.H, c.G, 4) > 1);
    assert_true(api_slices(c.n_q, c.H, c.G, 1) > 1);
    check_case(&r, &c);
    c.threads = 1;
    check_case(&r, &c);

    /* two heads, a group of 3 (blocks of 22 tokens = 66 rows), lse, prior scores */
    pcase e = {0};
    e.H = 2, e.G = 3, e.d = 80, e.dt = KVZ_DTYPE_F16;
    e.n_q = quick ? 150 : 700;
    e.sink_end = 0, e.chunk_begin = 0, e.chunk_end = 257;
    e.q_pos0 = 400;
    e.n_k = (size_t)e.q_pos0 + e.n_q;
    e.scoring = 1, e.score_prior = 1, e.score_pad = 3, e.with_lse = 1, e.qamp = 3.0f, e.threads = 3;
    assert_true(api_slices(e.n_q, e.H, e.G, 3) > 1);
    check_case(&r, &e);
}

/* ---- spec kvzip.md section 9, items 2-5 --------------------------------------------------- */

/*
 * A KVzip scoring setting with H KV heads of G query heads: keys [0, n_sys) are the system
 * prompt, [n_sys, n_sys + n_c) the context in chunks of `chunk`, and the repeat input's
 * n_in own keys follow at q_pos0 = n_sys + n_c. q is token-major [i][qh][d]; K/V head-major
 * [h][j][d] in f32, so tests can edit them directly.
 */
typedef struct kctx {
    size_t H, G, d, n_sys, n_c, chunk, n_in, n_k;
    float *q, *k, *v, *out;
} kctx;

static kctx kctx_make(tu_rng *r, size_t H, size_t G, size_t n_in, float qamp)
{
    kctx s;
    s.H = H, s.G = G, s.d = 64, s.n_sys = 4, s.n_c = 300, s.chunk = 64, s.n_in = n_in;
    s.n_k = s.n_sys + s.n_c + s.n_in;
    const size_t nq = n_in * H * G * s.d, nk = H * s.n_k * s.d;
    s.q = tu_malloc(nq * sizeof(float));
    s.out = tu_malloc(nq * sizeof(float));
    s.k = tu_malloc(nk * sizeof(float));
    s.v = tu_malloc(nk * sizeof(float));
    for (size_t i = 0; i < nq; i++)
        s.q[i] = tu_uniform(r, -qamp, qamp);
    for (size_t i = 0; i < nk; i++)
        s.k[i] = tu_uniform(r, -1, 1), s.v[i] = tu_uniform(r, -1, 1);
    return s;
}

static void kctx_free(kctx *s) { free(s->q), free(s->k), free(s->v), free(s->out); }

static size_t kctx_pos0(const kctx *s) { return s->n_sys + s->n_c; }
static float *kctx_key(const kctx *s, size_t h, size_t j) { return s->k + (h * s->n_k + j) * s->d; }
static float *kctx_query(const kctx *s, size_t i, size_t qh) { return s->q + (i * s->H * s->G + qh) * s->d; }

/* Scores keys [cb, ce) with the first n_q repeat queries (keys stay [0, n_k)), system
 * prompt [0, sink), into score (head h at score + h*stride, not reset: max-accumulated). */
static void kctx_score(const kctx *s, size_t n_q, size_t sink, size_t cb, size_t ce, float *score,
                       size_t stride)
{
    kvz_attn_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.n_kv_heads = s->H, a.group = s->G, a.head_dim = s->d, a.n_q = n_q, a.n_k = s->n_k;
    a.q_pos0 = (ptrdiff_t)kctx_pos0(s);
    a.q = s->q, a.q_token_stride = (ptrdiff_t)(s->H * s->G * s->d), a.q_head_stride = (ptrdiff_t)s->d;
    a.k = s->k, a.v = s->v, a.kv_dtype = KVZ_DTYPE_F32, a.kv_row_stride = (ptrdiff_t)s->d;
    a.kv_head_stride = (ptrdiff_t)(s->n_k * s->d);
    a.out = s->out, a.out_token_stride = a.q_token_stride, a.out_head_stride = a.q_head_stride;
    a.score = score, a.score_head_stride = (ptrdiff_t)stride;
    a.sink_end = sink, a.chunk_begin = cb, a.chunk_end = ce;
    call_prefill(&a, 0);
}

/* The oracle's scores of one chunk for every head (n_q first queries), into want[h*m + j]. */
static void kctx_oracle(const kctx *s, size_t n_q, size_t sink, size_t cb, size_t ce, double *want)
{
    const size_t d = s->d, m = ce - cb;
    double *q = tu_malloc(s->G * n_q * d * sizeof(double)), *k = tu_malloc(s->n_k * d * sizeof(double));
    for (size_t h = 0; h < s->H; h++) {
        for (size_t g = 0; g < s->G; g++)
            for (size_t i = 0; i < n_q; i++)
                for (size_t x = 0; x < d; x++)
                    q[(g * n_q + i) * d + x] = kctx_query(s, i, h * s->G + g)[x];
        for (size_t j = 0; j < s->n_k * d; j++)
            k[j] = s->k[h * s->n_k * d + j];
        oracle_kvzip_score(q, k, s->G, n_q, s->n_k, d, (long)kctx_pos0(s), 1.0 / sqrt((double)d), sink, cb, ce,
                           want + h * m);
    }
    free(q), free(k);
}

static size_t max_abs_diff_at(const float *a, const float *b, size_t n, double *diff)
{
    size_t at = 0;
    *diff = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)a[i] - (double)b[i]);
        if (e > *diff || isnan(e))
            *diff = e, at = i;
    }
    return at;
}

/* Item 2: 0 <= S <= 1; scoring the chunks in any order fills the same (H, n_c) score table,
 * bit for bit; re-scoring a chunk changes nothing; and every chunk matches the oracle. */
static void test_spec_bounds_and_order(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 6);
    kctx s = kctx_make(&r, 2, 3, 40, 3.0f);
    const size_t nc = s.n_c, T = (nc + s.chunk - 1) / s.chunk, H = s.H;
    size_t order[3][8];
    for (size_t t = 0; t < T; t++)
        order[0][t] = t, order[1][t] = T - 1 - t, order[2][t] = (t * 3 + 1) % T; /* T = 5: a permutation */
    float *S[3];
    for (int o = 0; o < 3; o++)
        S[o] = tu_malloc(H * nc * sizeof(float));
    double *want = tu_malloc(H * s.chunk * sizeof(double));
    float *tmp = tu_malloc(H * s.chunk * sizeof(float));
    char what[160];
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (int o = 0; o < 3; o++) {
            memset(S[o], 0, H * nc * sizeof(float));
            for (size_t t = 0; t < T; t++) {
                const size_t cb = s.n_sys + order[o][t] * s.chunk,
                             ce = cb + s.chunk < s.n_sys + nc ? cb + s.chunk : s.n_sys + nc;
                kctx_score(&s, s.n_in, s.n_sys, cb, ce, S[o] + (cb - s.n_sys), nc);
            }
        }
        for (size_t x = 0; x < H * nc; x++) {
            if (!(S[0][x] > 0.0f && S[0][x] <= 1.0f)) /* every context key scored, within (0, 1] */
                fail_msg("%s: score %zu = %g outside (0, 1]", kvz_isa_name(lv[l]), x, (double)S[0][x]);
        }
        assert_memory_equal(S[0], S[1], H * nc * sizeof(float));
        assert_memory_equal(S[0], S[2], H * nc * sizeof(float));
        for (size_t t = 0; t < T; t++) {
            const size_t cb = s.n_sys + t * s.chunk,
                         ce = cb + s.chunk < s.n_sys + nc ? cb + s.chunk : s.n_sys + nc;
            const size_t m = ce - cb;
            kctx_oracle(&s, s.n_in, s.n_sys, cb, ce, want);
            for (size_t h = 0; h < H; h++)
                memcpy(tmp + h * m, S[0] + h * nc + (cb - s.n_sys), m * sizeof(float));
            snprintf(what, sizeof what, "%s: chunk %zu vs oracle", kvz_isa_name(lv[l]), t);
            tu_check_close(tmp, want, H * m, SCORE_ATOL, SCORE_RTOL, what);
        }
        /* scoring a chunk again into the filled table: max with itself, unchanged */
        memcpy(S[1], S[0], H * nc * sizeof(float));
        kctx_score(&s, s.n_in, s.n_sys, s.n_sys + s.chunk, s.n_sys + 2 * s.chunk, S[1] + s.chunk, nc);
        assert_memory_equal(S[0], S[1], H * nc * sizeof(float));
    }
    for (int o = 0; o < 3; o++)
        free(S[o]);
    free(want), free(tmp);
    kctx_free(&s);
}

/* Item 3: keys of other chunks with huge dot products (visible to the attention itself,
 * whose output they take over) leave the chunk's scores unchanged; a system-prompt key with
 * a large logit lowers every one of them (it sits in the softmax denominator). */
static void test_spec_reduced_set(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 7);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        const char *ln = kvz_isa_name(lv[l]);
        kctx s = kctx_make(&r, 2, 3, 40, 1.0f);
        const size_t H = s.H, d = s.d, cb = s.n_sys + 2 * s.chunk, ce = cb + s.chunk, m = s.chunk;
        const size_t nout = s.n_in * H * s.G * d;
        for (size_t i = 0; i < s.n_in * H * s.G; i++) /* every query leans on dimension 0 */
            s.q[i * d] = 2.0f + 0.5f * s.q[i * d];
        float *base = tu_calloc(H * m, sizeof(float)), *other = tu_calloc(H * m, sizeof(float));
        float *out0 = tu_malloc(nout * sizeof(float));
        double *want = tu_malloc(H * m * sizeof(double));
        kctx_score(&s, s.n_in, s.n_sys, cb, ce, base, m);
        memcpy(out0, s.out, nout * sizeof(float));

        /* the other chunks' keys, before and after this one, point along dimension 0 */
        float *saved = tu_malloc(H * s.n_k * d * sizeof(float));
        memcpy(saved, s.k, H * s.n_k * d * sizeof(float));
        for (size_t h = 0; h < H; h++)
            for (size_t j = s.n_sys; j < kctx_pos0(&s); j++)
                if (j < cb || j >= ce)
                    kctx_key(&s, h, j)[0] = 100.0f; /* logit >= 2*100/8 = 25 above the rest */
        kctx_score(&s, s.n_in, s.n_sys, cb, ce, other, m);
        double diff;
        size_t at = max_abs_diff_at(s.out, out0, nout, &diff);
        if (!(diff > 1e-2)) /* control: the keys are visible and take over the attention output */
            fail_msg("%s: output moved only by %g at %zu", ln, diff, at);
        /* unchanged up to fp32 rounding: without the loud keys the fused reduced sum reuses
           exp(s - m) with m up to RESCALE_MAX + 8 (tmpl/attn_softmax.h) above the reduced set's max,
           each exp within about 18 * 2^-24 relative; with them it sums its own exps */
        for (size_t x = 0; x < H * m; x++)
            if (!(fabsf(other[x] - base[x]) <= 4e-6f * base[x]))
                fail_msg("%s: chunk score %zu changed from %.9g to %.9g by other chunks' keys", ln, x,
                         (double)base[x], (double)other[x]);
        kctx_oracle(&s, s.n_in, s.n_sys, cb, ce, want);
        tu_check_close(other, want, H * m, SCORE_ATOL, SCORE_RTOL, "scores with loud other chunks");

        /* adding a system-prompt key (key n_sys, moved into the prompt) with a large logit */
        memcpy(s.k, saved, H * s.n_k * d * sizeof(float));
        float *lowered = tu_calloc(H * m, sizeof(float));
        for (size_t h = 0; h < H; h++)
            kctx_key(&s, h, s.n_sys)[0] = 12.0f; /* logit ~ 2*12/8 = 3 above the typical */
        kctx_score(&s, s.n_in, s.n_sys + 1, cb, ce, lowered, m);
        for (size_t x = 0; x < H * m; x++)
            if (!(lowered[x] < base[x]))
                fail_msg("%s: score %zu not lowered by a loud system-prompt key: %.9g -> %.9g", ln, x,
                         (double)base[x], (double)lowered[x]);
        kctx_oracle(&s, s.n_in, s.n_sys + 1, cb, ce, want);
        tu_check_close(lowered, want, H * m, SCORE_ATOL, SCORE_RTOL, "scores with a loud system-prompt key");
        free(base), free(other), free(out0), free(want), free(saved), free(lowered);
        kctx_free(&s);
    }
}

/* Item 4, causality. (a) With queries 0..i0 only (n_k still covering every repeat key),
 * changing the keys after q_pos0 + i0 changes neither the scores (the max over i <= i0) nor
 * the outputs, while with all queries it does change the scores. (b) Inside one block:
 * all repeat queries but the first are zero (their softmax ignores the keys), the first is
 * the row that sets the max; making later own keys huge for it must change nothing, making
 * its own key huge must. Both with a group of 3 (gemm path) and with one head and 6 rows
 * (dot path on AVX2/AVX-512). */
static void test_spec_causality(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 8);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    static const struct {
        size_t G, n_in;
    } shapes[] = {{3, 40}, {1, 6}, {2, 70}};
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        const char *ln = kvz_isa_name(lv[l]);
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
            kctx s = kctx_make(&r, 1, shapes[sh].G, shapes[sh].n_in, 3.0f);
            const size_t d = s.d, cb = s.n_sys + s.chunk, ce = cb + s.chunk, m = s.chunk, P = kctx_pos0(&s);
            const size_t HG = s.H * s.G, nk = s.n_k * d;
            float *a = tu_malloc(m * sizeof(float)), *b = tu_malloc(m * sizeof(float));
            float *oa = tu_malloc(s.n_in * HG * d * sizeof(float));
            float *saved = tu_malloc(nk * sizeof(float));
            double *want = tu_malloc(m * sizeof(double));
            memcpy(saved, s.k, nk * sizeof(float));
            const size_t i0s[] = {0, 2, s.n_in / 2, s.n_in - 2};
            for (size_t u = 0; u < 4; u++) {
                const size_t i0 = i0s[u], nq = i0 + 1;
                memset(a, 0, m * sizeof(float));
                kctx_score(&s, nq, s.n_sys, cb, ce, a, m);
                memcpy(oa, s.out, nq * HG * d * sizeof(float));
                kctx_oracle(&s, nq, s.n_sys, cb, ce, want);
                tu_check_close(a, want, m, SCORE_ATOL, SCORE_RTOL, "scores of queries 0..i0");
                for (size_t j = P + i0 + 1; j < s.n_k; j++) /* later repeat keys: loud for their own row */
                    for (size_t x = 0; x < d; x++)
                        s.k[j * d + x] = 2.0f * kctx_query(&s, j - P, 0)[x];
                memset(b, 0, m * sizeof(float));
                kctx_score(&s, nq, s.n_sys, cb, ce, b, m);
                if (memcmp(a, b, m * sizeof(float)) != 0)
                    fail_msg("%s G%zu: scores over i <= %zu changed by keys after q_pos0 + %zu", ln, s.G, i0,
                             i0);
                if (memcmp(oa, s.out, nq * HG * d * sizeof(float)) != 0)
                    fail_msg("%s G%zu: outputs of i <= %zu changed by later keys", ln, s.G, i0);
                /* control: the later rows do see those keys (their outputs move) */
                float *op = tu_malloc(s.n_in * HG * d * sizeof(float));
                memset(b, 0, m * sizeof(float));
                kctx_score(&s, s.n_in, s.n_sys, cb, ce, b, m);
                memcpy(op, s.out, s.n_in * HG * d * sizeof(float));
                memcpy(s.k, saved, nk * sizeof(float));
                kctx_score(&s, s.n_in, s.n_sys, cb, ce, b, m);
                double diff;
                (void)max_abs_diff_at(op + (i0 + 1) * HG * d, s.out + (i0 + 1) * HG * d,
                                      (s.n_in - i0 - 1) * HG * d, &diff);
                free(op);
                if (!(diff > 1e-3))
                    fail_msg("%s G%zu i0 %zu: control perturbation did not reach the later rows", ln, s.G, i0);
            }

            /* (b) zero queries but the first, per head */
            for (size_t i = 1; i < s.n_in; i++)
                for (size_t qh = 0; qh < HG; qh++)
                    memset(kctx_query(&s, i, qh), 0, d * sizeof(float));
            memset(a, 0, m * sizeof(float));
            kctx_score(&s, s.n_in, s.n_sys, cb, ce, a, m);
            memcpy(oa, s.out, s.n_in * HG * d * sizeof(float));
            kctx_oracle(&s, s.n_in, s.n_sys, cb, ce, want);
            tu_check_close(a, want, m, SCORE_ATOL, SCORE_RTOL, "scores with zero queries after the first");
            for (size_t j = P + 1; j < s.n_k; j++) /* own keys of rows >= 1: huge for row 0 */
                for (size_t x = 0; x < d; x++)
                    s.k[j * d + x] = 2.0f * kctx_query(&s, 0, 0)[x];
            memset(b, 0, m * sizeof(float));
            kctx_score(&s, s.n_in, s.n_sys, cb, ce, b, m);
            if (memcmp(a, b, m * sizeof(float)) != 0)
                fail_msg("%s G%zu: row 0 saw a later own key (scores changed)", ln, s.G);
            if (memcmp(oa, s.out, s.n_in * HG * d * sizeof(float)) != 0) {
                double diff;
                const size_t at = max_abs_diff_at(oa, s.out, s.n_in * HG * d, &diff);
                if (at / d / HG == 0) /* rows >= 1 have zero queries: their outputs cannot move either */
                    fail_msg("%s G%zu: output of row 0 saw a later own key", ln, s.G);
                fail_msg("%s G%zu: output of a zero query moved by %g", ln, s.G, diff);
            }
            for (size_t x = 0; x < d; x++) /* control: row 0's own key, loud */
                s.k[P * d + x] = 2.0f * kctx_query(&s, 0, 0)[x];
            memset(b, 0, m * sizeof(float));
            kctx_score(&s, s.n_in, s.n_sys, cb, ce, b, m);
            double diff;
            (void)max_abs_diff_at(a, b, m, &diff);
            if (!(diff > 1e-3))
                fail_msg("%s G%zu: row 0's own key did not move the scores", ln, s.G);
            free(a), free(b), free(oa), free(saved), free(want);
            kctx_free(&s);
        }
    }
}

/* Item 5, GQA: a group of G identical query heads gives the scores of one head (and each
 * head the one head's output), for repeat inputs of 1 to 70 tokens. The two runs may take
 * different paths (dot vs gemm: other summation orders), hence 1e-5 rather than equality. */
static void test_spec_gqa(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 9);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    static const size_t Gs[] = {2, 3, 4, 8}, nins[] = {1, 2, 5, 40, 70};
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (size_t gi = 0; gi < 4; gi++)
            for (size_t ni = 0; ni < 5; ni++) {
                const size_t G = Gs[gi], n_in = nins[ni];
                kctx one = kctx_make(&r, 1, 1, n_in, 3.0f);
                kctx many = kctx_make(&r, 1, G, n_in, 3.0f);
                memcpy(many.k, one.k, one.n_k * one.d * sizeof(float));
                memcpy(many.v, one.v, one.n_k * one.d * sizeof(float));
                for (size_t i = 0; i < n_in; i++)
                    for (size_t g = 0; g < G; g++)
                        memcpy(kctx_query(&many, i, g), kctx_query(&one, i, 0), one.d * sizeof(float));
                const size_t cb = one.n_sys + 64, ce = cb + 100, m = ce - cb;
                float *s1 = tu_calloc(m, sizeof(float)), *sg = tu_calloc(m, sizeof(float));
                kctx_score(&one, n_in, one.n_sys, cb, ce, s1, m);
                kctx_score(&many, n_in, many.n_sys, cb, ce, sg, m);
                double *w = tu_malloc(m * sizeof(double)), *wo = tu_malloc(n_in * one.d * sizeof(double));
                for (size_t j = 0; j < m; j++)
                    w[j] = s1[j];
                char what[128];
                snprintf(what, sizeof what, "%s G%zu n_in %zu: group scores vs one head", kvz_isa_name(lv[l]),
                         G, n_in);
                tu_check_close(sg, w, m, 1e-9, 1e-5, what);
                for (size_t x = 0; x < n_in * one.d; x++)
                    wo[x] = one.out[x];
                for (size_t g = 0; g < G; g++) {
                    float *og = tu_malloc(n_in * one.d * sizeof(float));
                    for (size_t i = 0; i < n_in; i++)
                        memcpy(og + i * one.d, many.out + (i * G + g) * one.d, one.d * sizeof(float));
                    snprintf(what, sizeof what, "%s G%zu n_in %zu: output of head %zu vs one head",
                             kvz_isa_name(lv[l]), G, n_in, g);
                    tu_check_close(og, wo, n_in * one.d, 1e-5, 1e-5, what);
                    free(og);
                }
                free(s1), free(sg), free(w), free(wo);
                kctx_free(&one);
                kctx_free(&many);
            }
    }
}

/* ---- the kernel contract (kernels.h), below the API ---------------------------------- */

/* kvz_attn_job straight to each level's kernel with a scratch of exactly
 * kvz_attn_work_floats(d) floats: lse of a whole group in the [g][i] layout (the key-slice
 * path's use), scoring split into query slices whose own keys start before the slice
 * (own_begin < q_pos0), max-merged, against the oracle over all queries, and the keys
 * given as two runs (k/v then k2/v2) split at any point, without and with a vtstore (whose
 * tiles the amx level keeps across query blocks: the last cases have several). */
static void test_kernel_contract(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 10);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    static const struct {
        size_t G, n_q, d;
    } e[] = {{1, 1, 64},  {3, 1, 72},   {8, 1, 100},  {2, 2, 64}, {4, 7, 128},
             {3, 30, 80}, {1, 100, 48}, {4, 70, 128}, {3, 90, 64}};
    for (size_t t = 0; t < sizeof e / sizeof e[0]; t++) {
        const size_t G = e[t].G, n_q = e[t].n_q, d = e[t].d, sink = 3, cb = 10, ce = 150, P = 200;
        const size_t n_k = P + n_q;
        const kvz_dtype dt = (kvz_dtype)(1 + t % 2);
        double *kx = tu_malloc(n_k * d * sizeof(double)), *vx = tu_malloc(n_k * d * sizeof(double));
        void *k = tu_fill_kv(&r, dt, n_k * d, -1, 1, kx), *v = tu_fill_kv(&r, dt, n_k * d, -1, 1, vx);
        float *q = tu_malloc(G * n_q * d * sizeof(float)); /* [g][i][d] */
        double *qx = tu_malloc(G * n_q * d * sizeof(double));
        for (size_t x = 0; x < G * n_q * d; x++)
            qx[x] = q[x] = tu_query(&r, -3, 3, dt);
        const double scale = 1.0 / sqrt((double)d);
        double *want = tu_malloc(G * n_q * d * sizeof(double)), *want_lse = tu_malloc(G * n_q * sizeof(double));
        double *want_score = tu_malloc((ce - cb) * sizeof(double));
        for (size_t g = 0; g < G; g++)
            oracle_attn(qx + g * n_q * d, kx, vx, n_q, n_k, d, (long)P, scale, want + g * n_q * d,
                        want_lse + g * n_q);
        oracle_kvzip_score(qx, kx, G, n_q, n_k, d, (long)P, scale, sink, cb, ce, want_score);
        float *out = tu_malloc(G * n_q * d * sizeof(float)), *lse = tu_malloc(G * n_q * sizeof(float));
        float *score = tu_malloc((ce - cb) * sizeof(float)), *part = tu_malloc((ce - cb) * sizeof(float));
        float *work = NULL;
        assert_int_equal(posix_memalign((void **)&work, 64, kvz_attn_work_floats(d) * sizeof(float)), 0);
        for (size_t l = 0; l < nl; l++) {
            const kvz_kernel_table *kt = kvz_kernels_for(lv[l]);
            assert_non_null(kt);
            char what[128];
            snprintf(what, sizeof what, "%s kernel G%zu n_q %zu d%zu dtype %d", kvz_isa_name(lv[l]), G, n_q, d,
                     (int)dt);
            /* the whole run: out, lse [g][i] */
            kvz_attn_job j;
            memset(&j, 0, sizeof j);
            j.q = q, j.q_head_stride = (ptrdiff_t)(n_q * d), j.q_row_stride = (ptrdiff_t)d;
            j.k = k, j.v = v, j.kv_row_stride = (ptrdiff_t)d, j.dtype = (int)dt;
            j.n_q = n_q, j.n_k = n_k, j.d = d, j.group = G, j.q_pos0 = (ptrdiff_t)P, j.scale = (float)scale;
            j.out = out, j.out_head_stride = (ptrdiff_t)(n_q * d), j.out_row_stride = (ptrdiff_t)d;
            j.lse = lse, j.work = work;
            tu_fill_sentinel(out, G * n_q * d);
            tu_fill_sentinel(lse, G * n_q);
            kt->attn(&j);
            tu_check_close(out, want, G * n_q * d, tu_tol_at(lv[l], dt), tu_tol_at(lv[l], dt), what);
            tu_check_close(lse, want_lse, G * n_q, LSE_ATOL, LSE_RTOL, what);
            /* scoring in slices of the queries: [0, s) and [s, n_q) */
            const size_t s = n_q / 2;
            memset(score, 0, (ce - cb) * sizeof(float));
            for (int half = 0; half < 2; half++) {
                const size_t i0 = half ? s : 0, nq = half ? n_q - s : s;
                if (nq == 0)
                    continue;
                kvz_attn_job js = j;
                js.q = q + i0 * d, js.out = out + i0 * d, js.lse = NULL;
                js.n_q = nq, js.q_pos0 = (ptrdiff_t)(P + i0);
                js.score = part, js.sink_end = sink, js.chunk_begin = cb, js.chunk_end = ce, js.own_begin = P;
                memset(part, 0, (ce - cb) * sizeof(float));
                kt->attn(&js);
                for (size_t x = 0; x < ce - cb; x++)
                    score[x] = part[x] > score[x] ? part[x] : score[x];
            }
            tu_check_close(out, want, G * n_q * d, tu_tol_at(lv[l], dt), tu_tol_at(lv[l], dt), what);
            tu_check_close(score, want_score, ce - cb, SCORE_ATOL, SCORE_RTOL, what);
            /* the keys as two runs in separate buffers (a shared segment and a private
             * tail): split anywhere, inside a block, at the ends */
            const size_t splits[] = {0, 1, 63, 100, P, n_k - 1, n_k};
            for (size_t u = 0; u < sizeof splits / sizeof splits[0]; u++) {
                const size_t sp = splits[u], n2 = n_k - sp;
                char *k2 = tu_malloc(n2 * d * 2), *v2 = tu_malloc(n2 * d * 2);
                memcpy(k2, (const char *)k + sp * d * 2, n2 * d * 2);
                memcpy(v2, (const char *)v + sp * d * 2, n2 * d * 2);
                const size_t vtw = kvz_attn_vt_words(sp, n2, d);
                uint16_t *vt = NULL;
                assert_int_equal(posix_memalign((void **)&vt, 64, vtw * 2), 0);
                for (int with_vt = 0; with_vt < 2; with_vt++) {
                    kvz_attn_job j2 = j;
                    j2.n_k = sp, j2.k2 = k2, j2.v2 = v2, j2.n_k2 = n2;
                    if (with_vt) { /* bf16 NaNs: a tile read before it is built shows */
                        memset(vt, 0xff, vtw * 2);
                        j2.vtstore = vt;
                    }
                    tu_fill_sentinel(out, G * n_q * d);
                    tu_fill_sentinel(lse, G * n_q);
                    kt->attn(&j2);
                    snprintf(what, sizeof what, "%s kernel G%zu n_q %zu d%zu dtype %d, two runs split at %zu%s",
                             kvz_isa_name(lv[l]), G, n_q, d, (int)dt, sp, with_vt ? ", vtstore" : "");
                    tu_check_close(out, want, G * n_q * d, tu_tol_at(lv[l], dt), tu_tol_at(lv[l], dt), what);
                    tu_check_close(lse, want_lse, G * n_q, LSE_ATOL, LSE_RTOL, what);
                }
                free(k2), free(v2), free(vt);
            }
        }
        free(work);
        free(kx), free(vx), free(k), free(v), free(q), free(qx), free(want), free(want_lse), free(want_score);
        free(out), free(lse), free(score), free(part);
    }
}

/* kernels.h: the avx512bf16 level reads the queries of attention over bf16 K/V rounded to
 * bf16 (ties to even), with few query rows (decode) and many (prefill) alike: its lse is
 * the oracle's over the rounded queries, measurably apart from the unrounded ones'. */
static void test_bf16_query_rounding(void **state)
{
    (void)state;
    const kvz_kernel_table *kt = kvz_kernels_for(KVZ_ISA_AVX512_BF16);
    if (!kt)
        skip();
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 11);
    static const struct {
        size_t G, n_q, d;
    } e[] = {{4, 1, 128}, {4, 40, 128}, {2, 9, 80}, {7, 3, 64}};
    for (size_t t = 0; t < sizeof e / sizeof e[0]; t++) {
        const size_t G = e[t].G, n_q = e[t].n_q, d = e[t].d, n_k = 300, P = n_k - n_q, nq = G * n_q * d;
        double *kx = tu_malloc(n_k * d * sizeof(double)), *vx = tu_malloc(n_k * d * sizeof(double));
        void *k = tu_fill_kv(&r, KVZ_DTYPE_BF16, n_k * d, -1, 1, kx);
        void *v = tu_fill_kv(&r, KVZ_DTYPE_BF16, n_k * d, -1, 1, vx);
        float *q = tu_malloc(nq * sizeof(float)); /* [g][i][d], not bf16 values */
        double *qx = tu_malloc(nq * sizeof(double)), *qr = tu_malloc(nq * sizeof(double));
        for (size_t x = 0; x < nq; x++) {
            q[x] = tu_uniform(&r, -3, 3);
            qx[x] = q[x], qr[x] = tu_round_bf16(q[x]);
        }
        const double scale = 1.0 / sqrt((double)d);
        double *want = tu_malloc(nq * sizeof(double)), *want_lse = tu_malloc(G * n_q * sizeof(double));
        double *plain = tu_malloc(nq * sizeof(double)), *plain_lse = tu_malloc(G * n_q * sizeof(double));
        for (size_t g = 0; g < G; g++) {
            oracle_attn(qr + g * n_q * d, kx, vx, n_q, n_k, d, (long)P, scale, want + g * n_q * d,
                        want_lse + g * n_q);
            oracle_attn(qx + g * n_q * d, kx, vx, n_q, n_k, d, (long)P, scale, plain + g * n_q * d,
                        plain_lse + g * n_q);
        }
        float *out = tu_malloc(nq * sizeof(float)), *lse = tu_malloc(G * n_q * sizeof(float)), *work = NULL;
        assert_int_equal(posix_memalign((void **)&work, 64, kvz_attn_work_floats(d) * sizeof(float)), 0);
        kvz_attn_job j;
        memset(&j, 0, sizeof j);
        j.q = q, j.q_head_stride = (ptrdiff_t)(n_q * d), j.q_row_stride = (ptrdiff_t)d;
        j.k = k, j.v = v, j.kv_row_stride = (ptrdiff_t)d, j.dtype = KVZ_DTYPE_BF16;
        j.n_q = n_q, j.n_k = n_k, j.d = d, j.group = G, j.q_pos0 = (ptrdiff_t)P, j.scale = (float)scale;
        j.out = out, j.out_head_stride = (ptrdiff_t)(n_q * d), j.out_row_stride = (ptrdiff_t)d;
        j.lse = lse, j.work = work;
        kt->attn(&j);
        char what[96];
        snprintf(what, sizeof what, "avx512bf16 rounded queries G%zu n_q %zu d%zu", G, n_q, d);
        tu_check_close(lse, want_lse, G * n_q, LSE_ATOL, LSE_RTOL, what);
        tu_check_close(out, want, nq, tu_tol_at(KVZ_ISA_AVX512_BF16, KVZ_DTYPE_BF16),
                       tu_tol_at(KVZ_ISA_AVX512_BF16, KVZ_DTYPE_BF16), what);
        double apart = 0.0; /* the test can tell rounded queries from unrounded ones */
        for (size_t i = 0; i < G * n_q; i++)
            apart = fmax(apart, fabs(plain_lse[i] - want_lse[i]) / (LSE_ATOL + LSE_RTOL * fabs(want_lse[i])));
        if (apart < 4.0)
            fail_msg("%s: the unrounded queries' lse is only %.2f tolerances away", what, apart);
        free(work), free(out), free(lse), free(want), free(want_lse), free(plain), free(plain_lse);
        free(kx), free(vx), free(k), free(v), free(q), free(qx), free(qr);
    }
}

/* ---- sliding window (kernels.h) ----------------------------------------------------------- */

typedef struct wcase {
    size_t window, n_q, G, d, n_k, split;
    long q_pos0;
    kvz_dtype dt;
} wcase;

/* One windowed job at every level straight to the kernel, against the oracle: all keys in one
 * run, then as two runs split at c->split with a vtstore (bf16 NaNs: a tile read before it is
 * built shows). The K/V rows more than 31 keys before the first row's window hold NaN: a
 * block that reads them (one the window should have skipped) spoils the output. */
static void check_window_case(tu_rng *r, const wcase *c, const kvz_isa *lv, size_t nl)
{
    const size_t G = c->G, n_q = c->n_q, d = c->d, n_k = c->n_k, nq = G * n_q * d, es = tu_dtype_size(c->dt);
    double *kx = tu_malloc(n_k * d * sizeof(double)), *vx = tu_malloc(n_k * d * sizeof(double));
    char *k = tu_fill_kv(r, c->dt, n_k * d, -1, 1, kx), *v = tu_fill_kv(r, c->dt, n_k * d, -1, 1, vx);
    const long first = c->q_pos0 >= 0 && (size_t)c->q_pos0 >= c->window ? c->q_pos0 + 1 - (long)c->window : 0;
    for (long j = 0; j + 32 <= first && j < (long)n_k; j++)
        fill_nan(k + (size_t)j * d * es, c->dt, d), fill_nan(v + (size_t)j * d * es, c->dt, d);
    float *q = tu_malloc(nq * sizeof(float)); /* [g][i][d] */
    double *qx = tu_malloc(nq * sizeof(double));
    for (size_t x = 0; x < nq; x++)
        qx[x] = q[x] = tu_query(r, -3, 3, c->dt);
    const double scale = 1.0 / sqrt((double)d);
    double *want = tu_malloc(nq * sizeof(double)), *want_lse = tu_malloc(G * n_q * sizeof(double));
    for (size_t g = 0; g < G; g++)
        oracle_attn_window(qx + g * n_q * d, kx, vx, n_q, n_k, d, c->q_pos0, c->window, scale,
                           want + g * n_q * d, want_lse + g * n_q);
    float *out = tu_malloc(nq * sizeof(float)), *lse = tu_malloc(G * n_q * sizeof(float)), *work = NULL;
    assert_int_equal(posix_memalign((void **)&work, 64, kvz_attn_work_floats(d) * sizeof(float)), 0);
    const size_t sp = c->split, n2 = n_k - sp, vtw = kvz_attn_vt_words(sp, n2, d);
    char *k2 = tu_malloc(n2 * d * es + 1), *v2 = tu_malloc(n2 * d * es + 1);
    memcpy(k2, k + sp * d * es, n2 * d * es);
    memcpy(v2, v + sp * d * es, n2 * d * es);
    uint16_t *vt = NULL;
    assert_int_equal(posix_memalign((void **)&vt, 64, vtw * 2 + 64), 0);
    for (size_t l = 0; l < nl; l++) {
        const kvz_kernel_table *kt = kvz_kernels_for(lv[l]);
        assert_non_null(kt);
        for (int two = 0; two < 2; two++) {
            kvz_attn_job j;
            memset(&j, 0, sizeof j);
            j.q = q, j.q_head_stride = (ptrdiff_t)(n_q * d), j.q_row_stride = (ptrdiff_t)d;
            j.k = k, j.v = v, j.kv_row_stride = (ptrdiff_t)d, j.dtype = (int)c->dt;
            j.n_q = n_q, j.n_k = n_k, j.d = d, j.group = G, j.q_pos0 = (ptrdiff_t)c->q_pos0;
            j.window = c->window, j.scale = (float)scale;
            j.out = out, j.out_head_stride = (ptrdiff_t)(n_q * d), j.out_row_stride = (ptrdiff_t)d;
            j.lse = lse, j.work = work;
            if (two) {
                j.n_k = sp, j.k2 = k2, j.v2 = v2, j.n_k2 = n2;
                memset(vt, 0xff, vtw * 2);
                j.vtstore = vt;
            }
            tu_fill_sentinel(out, nq);
            tu_fill_sentinel(lse, G * n_q);
            kt->attn(&j);
            char what[192];
            snprintf(what, sizeof what,
                     "%s kernel window %zu G%zu n_q %zu d%zu n_k %zu q_pos0 %ld dtype %d%s (split at %zu)",
                     kvz_isa_name(lv[l]), c->window, G, n_q, d, n_k, c->q_pos0, (int)c->dt,
                     two ? ", two runs, vtstore" : "", sp);
            tu_check_close(out, want, nq, tu_tol_at(lv[l], c->dt), tu_tol_at(lv[l], c->dt), what);
            tu_check_close(lse, want_lse, G * n_q, LSE_ATOL, LSE_RTOL, what);
        }
    }
    free(work), free(vt), free(k2), free(v2), free(out), free(lse), free(want), free(want_lse);
    free(kx), free(vx), free(k), free(v), free(q), free(qx);
}

/* Windows of 1, 7, 128, 129 and 512 keys (Gemma 3's), for 1 (decode), 8, 130 and 600 query
 * tokens, groups of 1, 4 and 7, head sizes 64, 128 and 256, f32, bf16 and f16 K/V, at every
 * level: key runs shorter and longer than the window, the queries at the end of the keys or
 * off by an offset either way, a split into two runs anywhere (often inside the window). */
static void test_window_kernel(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 12);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    static const size_t windows[] = {1, 7, 128, 129, 512}, nqs[] = {1, 8, 130, 600}, gs[] = {1, 4, 7},
                        ds[] = {64, 128, 256};
    size_t idx = 0;
    for (size_t wi = 0; wi < sizeof windows / sizeof windows[0]; wi++)
        for (size_t qi = 0; qi < sizeof nqs / sizeof nqs[0]; qi++)
            for (int dt = 0; dt < 3; dt++, idx++) {
                if (tu_quick() && idx % 4)
                    continue;
                wcase c;
                c.window = windows[wi], c.n_q = nqs[qi], c.dt = (kvz_dtype)dt;
                c.G = gs[idx % 3];
                c.d = c.n_q == 600 ? 64 : ds[(idx / 3 + qi) % 3]; /* the oracle's time */
                const int longer = idx % 2 == 0;
                c.n_k = c.n_q + (longer ? c.window + 37 + tu_range(&r, 0, 300) : c.window / 2);
                c.q_pos0 = (long)(c.n_k - c.n_q);
                if (idx % 4 == 3)
                    c.q_pos0 += (long)tu_range(&r, 0, 80) - 40;
                /* a split inside the window, or anywhere */
                const long in_win = c.q_pos0 - (long)tu_range(&r, 0, c.window);
                c.split = idx % 3 == 0 || in_win < 0 || in_win > (long)c.n_k ? tu_range(&r, 0, c.n_k)
                                                                             : (size_t)in_win;
                check_window_case(&r, &c, lv, nl);
            }
    /* a query tail over a shared run that holds exactly the window (Gemma 3's local layer after
       KVzip's passes trimmed it): the first row's window starts one key into the shared run */
    for (int dt = 0; dt < 3; dt++) {
        const wcase c = {.window = 512, .n_q = 23, .G = 4, .d = 256, .n_k = 535, .split = 512, .q_pos0 = 512,
                         .dt = (kvz_dtype)dt};
        check_window_case(&r, &c, lv, nl);
    }
    /* windows reaching back past the first key, up to the largest size_t: as none */
    static const size_t wide[] = {(size_t)-1, (size_t)PTRDIFF_MAX + 1, 700};
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++) {
        const wcase c = {.window = wide[i],
                         .n_q = 130,
                         .G = 4,
                         .d = 128,
                         .n_k = 650,
                         .split = 300,
                         .q_pos0 = 520,
                         .dt = (kvz_dtype)(i % 3)};
        check_window_case(&r, &c, lv, nl);
    }
}

/* The runner (query slices over threads, lse per query head) with windowed jobs over two
 * heads, and scoring with a window refused. */
static void test_window_runner(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 13);
    static const struct {
        size_t window, n_q, G, d, n_k;
        kvz_dtype dt;
    } e[] = {{128, 600, 4, 128, 900, KVZ_DTYPE_BF16},
             {512, 130, 7, 64, 2000, KVZ_DTYPE_F32},
             {129, 300, 1, 256, 300, KVZ_DTYPE_F16},
             {7, 64, 4, 128, 1000, KVZ_DTYPE_BF16}};
    const size_t H = 2;
    for (size_t t = 0; t < sizeof e / sizeof e[0]; t++) {
        const size_t G = e[t].G, n_q = e[t].n_q, d = e[t].d, n_k = e[t].n_k, nq = G * n_q * d;
        const kvz_dtype dt = e[t].dt;
        double *kx = tu_malloc(H * n_k * d * sizeof(double)), *vx = tu_malloc(H * n_k * d * sizeof(double));
        char *k = tu_fill_kv(&r, dt, H * n_k * d, -1, 1, kx), *v = tu_fill_kv(&r, dt, H * n_k * d, -1, 1, vx);
        float *q = tu_malloc(H * nq * sizeof(float)); /* [h][g][i][d] */
        double *qx = tu_malloc(H * nq * sizeof(double));
        for (size_t x = 0; x < H * nq; x++)
            qx[x] = q[x] = tu_query(&r, -3, 3, dt);
        const double scale = 1.0 / sqrt((double)d);
        double *want = tu_malloc(H * nq * sizeof(double)), *want_lse = tu_malloc(H * G * n_q * sizeof(double));
        for (size_t h = 0; h < H; h++)
            for (size_t g = 0; g < G; g++)
                oracle_attn_window(qx + (h * G + g) * n_q * d, kx + h * n_k * d, vx + h * n_k * d, n_q, n_k, d,
                                   (long)(n_k - n_q), e[t].window, scale, want + (h * G + g) * n_q * d,
                                   want_lse + (h * G + g) * n_q);
        float *out = tu_malloc(H * nq * sizeof(float)), *lse = tu_malloc(H * G * n_q * sizeof(float));
        kvz_attn_job jobs[2];
        memset(jobs, 0, sizeof jobs);
        for (size_t h = 0; h < H; h++) {
            kvz_attn_job *j = &jobs[h];
            j->q = q + h * nq, j->q_head_stride = (ptrdiff_t)(n_q * d), j->q_row_stride = (ptrdiff_t)d;
            j->k = k + h * n_k * d * tu_dtype_size(dt), j->v = v + h * n_k * d * tu_dtype_size(dt);
            j->kv_row_stride = (ptrdiff_t)d, j->dtype = (int)dt;
            j->n_q = n_q, j->n_k = n_k, j->d = d, j->group = G, j->q_pos0 = (ptrdiff_t)(n_k - n_q);
            j->window = e[t].window, j->scale = (float)scale;
            j->out = out + h * nq, j->out_head_stride = (ptrdiff_t)(n_q * d), j->out_row_stride = (ptrdiff_t)d;
            j->lse = lse + h * G * n_q;
        }
        kvz_isa lv[TU_MAX_LEVELS];
        const size_t nl = tu_isa_levels(lv);
        for (size_t l = 0; l < nl; l++) {
            tu_force(lv[l]);
            tu_fill_sentinel(out, H * nq);
            assert_int_equal(kvz_attn_run(jobs, H), KVZ_OK);
            char what[128];
            snprintf(what, sizeof what, "%s runner window %zu G%zu n_q %zu d%zu n_k %zu dtype %d",
                     kvz_isa_name(lv[l]), e[t].window, G, n_q, d, n_k, (int)dt);
            tu_check_close(out, want, H * nq, tu_tol_at(lv[l], dt), tu_tol_at(lv[l], dt), what);
            tu_check_close(lse, want_lse, H * G * n_q, LSE_ATOL, LSE_RTOL, what);
        }
        float score[16] = {0};
        jobs[1].score = score, jobs[1].chunk_begin = 0, jobs[1].chunk_end = 16, jobs[1].own_begin = n_k - n_q;
        kvz_clear_error();
        assert_int_equal(kvz_attn_run(jobs, H), KVZ_ERR_INVALID_ARG);
        assert_non_null(strstr(kvz_last_error(), "window"));
        free(out), free(lse), free(want), free(want_lse), free(kx), free(vx), free(k), free(v), free(q),
            free(qx);
    }
}

/* ---- argument checking ------------------------------------------------------------------- */

static void expect_status(const kvz_attn_args *a, kvz_status want, const char *word)
{
    kvz_clear_error();
    const kvz_status st = kvz_attn_prefill(a);
    if (st != want)
        fail_msg("kvz_attn_prefill returned %d (%s), want %d; last error \"%s\"", (int)st, kvz_strerror(st),
                 (int)want, kvz_last_error());
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
    enum { D = 8, NQ = 2, NK = 12 };
    float q[NQ * D], k[NK * D], out[NQ * D], lse[NQ], score[NK];
    for (size_t i = 0; i < NQ * D; i++)
        q[i] = 0.1f * (float)i;
    for (size_t i = 0; i < NK * D; i++)
        k[i] = 0.01f * (float)i;
    kvz_attn_args a;

    kvz_clear_error();
    assert_int_equal(kvz_attn_prefill(NULL), KVZ_ERR_NULL);
    assert_true(strlen(kvz_last_error()) > 0);

    memset(&a, 0, sizeof a);
    a.struct_size = offsetof(kvz_attn_args, accum) - 1; /* below the 0.1 layout */
    expect_status(&a, KVZ_ERR_INVALID_ARG, "struct_size");
    a.struct_size = 0;
    expect_status(&a, KVZ_ERR_INVALID_ARG, "struct_size");

    /* a valid call to start from */
    a.struct_size = sizeof a;
    a.n_kv_heads = 1, a.group = 1, a.head_dim = D, a.n_q = NQ, a.n_k = NK, a.q_pos0 = NK - NQ;
    a.q = q, a.k = k, a.v = k, a.kv_dtype = KVZ_DTYPE_F32, a.out = out, a.lse = lse;
    a.q_token_stride = D, a.kv_row_stride = D, a.out_token_stride = D;
    expect_status(&a, KVZ_OK, NULL);
    kvz_attn_args b = a;

    b.head_dim = 0;
    expect_status(&b, KVZ_ERR_INVALID_ARG, "head_dim");
    b.head_dim = 257;
    expect_status(&b, KVZ_ERR_INVALID_ARG, "head_dim");
    b = a, b.n_kv_heads = 0;
    expect_status(&b, KVZ_ERR_INVALID_ARG, NULL);
    b = a, b.group = 0;
    expect_status(&b, KVZ_ERR_INVALID_ARG, NULL);
    b = a, b.kv_dtype = (kvz_dtype)3;
    expect_status(&b, KVZ_ERR_INVALID_ARG, "dtype");
    b = a, b.kv_dtype = (kvz_dtype)-1;
    expect_status(&b, KVZ_ERR_INVALID_ARG, "dtype");
    b = a, b.q = NULL;
    expect_status(&b, KVZ_ERR_NULL, NULL);
    b = a, b.k = NULL;
    expect_status(&b, KVZ_ERR_NULL, NULL);
    b = a, b.v = NULL;
    expect_status(&b, KVZ_ERR_NULL, NULL);
    b = a, b.out = NULL;
    expect_status(&b, KVZ_ERR_NULL, NULL);

    /* accepted edge cases: head_dim 256; no keys with K/V NULL; no queries writes nothing */
    float q256[256], k256[256], o256[256];
    for (size_t i = 0; i < 256; i++)
        q256[i] = k256[i] = 0.01f * (float)(i % 7);
    b = a, b.head_dim = 256, b.n_q = 1, b.n_k = 1, b.q_pos0 = 0, b.q = q256, b.k = k256, b.v = k256,
    b.out = o256;
    b.q_token_stride = b.kv_row_stride = b.out_token_stride = 256, b.lse = NULL;
    expect_status(&b, KVZ_OK, NULL);
    for (size_t i = 0; i < 256; i++)
        assert_float_equal(o256[i], k256[i], 1e-7);
    b = a, b.n_k = 0, b.k = NULL, b.v = NULL, b.q_pos0 = 0;
    expect_status(&b, KVZ_OK, NULL);
    for (size_t i = 0; i < NQ * D; i++)
        assert_true(out[i] == 0.0f);
    b = a, b.n_q = 0, b.q = NULL, b.out = NULL, b.k = NULL, b.v = NULL, b.lse = NULL;
    expect_status(&b, KVZ_OK, NULL);

    /* scoring ranges: sink_end <= chunk_begin <= chunk_end <= q_pos0, q_pos0 + n_q <= n_k */
    kvz_attn_args s = a;
    s.score = score, s.score_head_stride = NK;
    s.sink_end = 1, s.chunk_begin = 2, s.chunk_end = 6, s.q_pos0 = 10;
    expect_status(&s, KVZ_OK, NULL);
    b = s, b.sink_end = 3; /* sink past the chunk start */
    expect_status(&b, KVZ_ERR_INVALID_ARG, "scoring");
    b = s, b.chunk_begin = 7; /* chunk_begin > chunk_end */
    expect_status(&b, KVZ_ERR_INVALID_ARG, "scoring");
    b = s, b.chunk_end = 11; /* chunk into the repeat input */
    expect_status(&b, KVZ_ERR_INVALID_ARG, "scoring");
    b = s, b.q_pos0 = 11; /* queries past the keys */
    expect_status(&b, KVZ_ERR_INVALID_ARG, "scoring");
    b = s, b.q_pos0 = -1, b.sink_end = 0, b.chunk_begin = 0, b.chunk_end = 0; /* negative offset */
    expect_status(&b, KVZ_ERR_INVALID_ARG, "scoring");
    b = s, b.n_k = 11; /* n_q = 2 queries from 10 need 12 keys */
    expect_status(&b, KVZ_ERR_INVALID_ARG, "scoring");
    /* a failing call writes nothing */
    tu_fill_sentinel(out, NQ * D);
    tu_fill_sentinel(score, NK);
    b = s, b.chunk_end = 11;
    expect_status(&b, KVZ_ERR_INVALID_ARG, "scoring");
    for (size_t i = 0; i < NQ * D; i++)
        assert_true(tu_is_sentinel(out + i));
    for (size_t i = 0; i < NK; i++)
        assert_true(tu_is_sentinel(score + i));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prefill_random, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_prefill_paths, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_prefill_offsets, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_bf16_tile_shapes, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_bf16_small_heads, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_prefill_wide_logits, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_prefill_layouts, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_scoring_random, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_scoring_large, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_spec_bounds_and_order, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_spec_reduced_set, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_spec_causality, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_spec_gqa, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_kernel_contract, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_bf16_query_rounding, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_window_kernel, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test_setup_teardown(test_window_runner, tu_setup_clock, tu_teardown_report),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
