/* The KVzip pipeline on stories260K against the naive fp64 reference (test_kvzip_host checks the
 * pass layout of spec/kvzip.md §1.3): reconstruction scores from the reference's attention
 * probabilities, selection equal up to ties, ratio 1 changes nothing, the compacted cache answers like a
 * masked full cache (§4.5), and the #147 guard; the window scores of the SnapKV family and
 * H2O's accumulated attention, both from the prefill. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/generate.h"
#include "model/h2o_scores.h"
#include "model/kvzip.h"
#include "model/window_scores.h"
#include "ref_llama.h"
#include "testutil.h"

static const char *path; /* the shared stories260K model */
#define NEED_MODEL() TU_NEED_SHARED(path, TU_STORIES)

/* A small fixed setting: system prompt, 3 reconstruction chunks (16, 16, 9 tokens). */
enum { N_SYS = 4, N_C = 41, CHUNK = 16, PREV = 8 };
static const int32_t SYS[N_SYS] = {1, 300, 301, 302};
static const int32_t RF[3] = {310, 311, 312}, RN[4] = {320, 321, 322, 323}, POST[2] = {330, 331};
static int32_t CTX[N_C];

static kvz_kvzip_pieces pieces(void) { return (kvz_kvzip_pieces){SYS, N_SYS, RF, 3, RN, 4, POST, 2}; }

static kvz_kvzip_opts opts(void)
{
    kvz_kvzip_opts o;
    kvz_kvzip_defaults(&o);
    o.chunk = CHUNK, o.prev_tokens = PREV, o.prefill_chunk = 7, o.kv_dtype = KVZ_DTYPE_F32;
    return o;
}

static void make_context(void)
{
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    for (size_t i = 0; i < N_C; i++)
        CTX[i] = (int32_t)tu_range(&r, 259, 511);
}

/* The pass layout written out by hand for this setting (spec/kvzip.md §1.3), for the reference. */
static size_t expected_pass(size_t t, int32_t *v)
{
    size_t k = 0;
    const size_t b = t * CHUNK, m_t = N_C - b < CHUNK ? N_C - b : CHUNK;
    if (t == 0) {
        for (size_t i = 0; i < 3; i++)
            v[k++] = RF[i];
    } else {
        for (size_t i = 0; i < 4; i++)
            v[k++] = RN[i];
        for (size_t i = b - PREV; i < b; i++)
            v[k++] = CTX[i];
    }
    v[k++] = POST[0], v[k++] = POST[1];
    for (size_t i = b; i < b + m_t; i++)
        v[k++] = CTX[i];
    return k;
}

/* Reference scores: for each pass, the fp64 forward of [sys | ctx | pass] gives the full
 * softmax p; the reduced-set probability of key j for query i is p_j / sum over the reduced
 * set (system prompt, the chunk, the pass's own keys up to i) of p. */
static double *reference_scores(ref_llama *r, size_t L, size_t H, size_t Hq)
{
    const size_t G = Hq / H, rows = N_SYS + N_C;
    double *S = tu_calloc(L * H * N_C, 8);
    for (size_t t = 0; t * CHUNK < N_C; t++) {
        int32_t seq[N_SYS + N_C + 64];
        memcpy(seq, SYS, sizeof SYS);
        memcpy(seq + N_SYS, CTX, sizeof CTX);
        const size_t n_in = expected_pass(t, seq + rows), n = rows + n_in;
        const size_t b = t * CHUNK, m_t = N_C - b < CHUNK ? N_C - b : CHUNK;
        double *logits = tu_malloc(n * ref_llama_vocab(r) * 8), *P = tu_malloc(L * Hq * n * n * 8);
        ref_llama_forward(r, seq, n, logits, P);
        for (size_t l = 0; l < L; l++)
            for (size_t qh = 0; qh < Hq; qh++)
                for (size_t i = 0; i < n_in; i++) {
                    const double *p = P + ((l * Hq + qh) * n + rows + i) * n;
                    double z = 0;
                    for (size_t j = 0; j < N_SYS; j++)
                        z += p[j];
                    for (size_t j = N_SYS + b; j < N_SYS + b + m_t; j++)
                        z += p[j];
                    for (size_t j = rows; j <= rows + i; j++)
                        z += p[j];
                    for (size_t j = 0; j < m_t; j++) {
                        double *s = &S[(l * H + qh / G) * N_C + b + j];
                        *s = fmax(*s, p[N_SYS + b + j] / z);
                    }
                }
        free(logits), free(P);
    }
    return S;
}

static kvz_model *load(void)
{
    kvz_model *m = NULL;
    const kvz_model_opts o = {.bf16_weights = 0};
    assert_int_equal(kvz_model_load(path, &o, &m), KVZ_OK);
    return m;
}

static void test_scores_vs_reference(void **state)
{
    (void)state;
    NEED_MODEL();
    make_context();
    kvz_model *m = load();
    const size_t L = m->hp.n_layers, H = m->hp.n_head_kv;
    ref_llama *r = ref_llama_open(path);
    assert_non_null(r);
    double *want = reference_scores(r, L, H, m->hp.n_head);
    const kvz_kvzip_pieces p = pieces();
    const kvz_kvzip_opts o = opts();
    kvz_policy_args pa = {.struct_size = sizeof pa, .policy = KVZ_POLICY_KVZIP_PAIR, .ratio = 1.0};
    kvz_cache *c = NULL;
    float *got = NULL;
    assert_int_equal(kvz_kvzip_build(m, &p, CTX, N_C, &o, &pa, &c, &got, NULL), KVZ_OK);
    assert_non_null(got);
    for (size_t i = 0; i < L * H * N_C; i++)
        assert_true(got[i] >= 0.0f && got[i] <= 1.0f);
    tu_check_close(got, want, L * H * N_C, 2e-5, 1e-4, "kvzip scores");
    /* scoring again on the same compacted-at-ratio-1 (unchanged) cache gives the same scores:
       the passes left nothing behind */
    float *again = tu_malloc(L * H * N_C * 4);
    assert_int_equal(kvz_kvzip_score(m, c, &p, CTX, N_C, &o, again), KVZ_OK);
    assert_memory_equal(again, got, L * H * N_C * 4);
    free(again), free(got), free(want);
    kvz_cache_destroy(c);
    ref_llama_close(r);
    kvz_model_free(m);
}

/* The guard of kvpress #147: scoring a cache that does not hold the whole prefill is refused. */
static void test_guard_full_cache(void **state)
{
    (void)state;
    NEED_MODEL();
    make_context();
    kvz_model *m = load();
    const kvz_kvzip_pieces p = pieces();
    const kvz_kvzip_opts o = opts();
    kvz_cache *c;
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
    float *s = tu_malloc(m->hp.n_layers * m->hp.n_head_kv * N_C * 4);
    assert_int_equal(kvz_kvzip_score(m, c, &p, CTX, N_C, &o, s), KVZ_ERR_STATE); /* empty */
    assert_non_null(strstr(kvz_last_error(), "full prefilled cache"));
    assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){c, NULL}, SYS, N_SYS, 0, NULL), KVZ_OK);
    assert_int_equal(kvz_kvzip_score(m, c, &p, CTX, N_C, &o, s), KVZ_ERR_STATE); /* system prompt only */
    assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){c, NULL}, CTX, N_C, 0, NULL), KVZ_OK);
    assert_int_equal(kvz_kvzip_score(m, c, &p, CTX, N_C, &o, s), KVZ_OK);
    free(s);
    kvz_cache_destroy(c);
    kvz_model_free(m);
}

/* Logits of `question` appended through a query over cache c. */
static void answer_logits(kvz_model *m, kvz_cache *c, const int32_t *question, size_t nq, float *logits)
{
    kvz_query *q;
    assert_int_equal(kvz_query_create(c, &q), KVZ_OK);
    assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){NULL, q}, question, nq, 0, logits), KVZ_OK);
    kvz_query_destroy(q);
}

static const int32_t QUESTION[5] = {400, 401, 402, 403, 404};

/* Ratio 1 keeps everything: the answer's logits equal those over an uncompressed cache, bit for bit. */
static void test_ratio_one_is_identity(void **state)
{
    (void)state;
    NEED_MODEL();
    make_context();
    kvz_model *m = load();
    const size_t V = m->hp.n_vocab;
    const kvz_kvzip_pieces p = pieces();
    const kvz_kvzip_opts o = opts();
    kvz_policy_args pa = {.struct_size = sizeof pa, .policy = KVZ_POLICY_KVZIP_PAIR, .ratio = 1.0};
    kvz_cache *zc = NULL, *full = NULL;
    size_t kept = 0;
    kvz_kvzip_report rep;
    assert_int_equal(kvz_kvzip_build(m, &p, CTX, N_C, &o, &pa, &zc, NULL, &rep), KVZ_OK);
    kept = rep.n_kept;
    assert_int_equal(rep.passes, 3);
    assert_int_equal(kept, m->hp.n_layers * m->hp.n_head_kv * N_C);
    pa.policy = KVZ_POLICY_FULL;
    assert_int_equal(kvz_kvzip_build(m, &p, CTX, N_C, &o, &pa, &full, NULL, NULL), KVZ_OK);
    float *a = tu_malloc(V * 4), *b = tu_malloc(V * 4);
    answer_logits(m, zc, QUESTION, 5, a);
    answer_logits(m, full, QUESTION, 5, b);
    assert_memory_equal(a, b, V * 4);
    free(a), free(b);
    kvz_cache_destroy(zc), kvz_cache_destroy(full);
    kvz_model_free(m);
}

/* Ratio 0.3: the kept set is the strict-threshold set of the reference scores up to near-ties,
 * and the compacted cache answers exactly like the full cache with the evicted pairs masked. */
static void test_compress_vs_masked_reference(void **state)
{
    (void)state;
    NEED_MODEL();
    make_context();
    kvz_model *m = load();
    const size_t L = m->hp.n_layers, H = m->hp.n_head_kv, V = m->hp.n_vocab, rows = N_SYS + N_C;
    ref_llama *r = ref_llama_open(path);
    double *ref = reference_scores(r, L, H, m->hp.n_head);
    const kvz_kvzip_pieces p = pieces();
    const kvz_kvzip_opts o = opts();
    kvz_policy_args pa = {.struct_size = sizeof pa, .policy = KVZ_POLICY_KVZIP_PAIR, .ratio = 0.3};
    kvz_cache *c = NULL;
    size_t kept = 0;
    kvz_kvzip_report rep;
    assert_int_equal(kvz_kvzip_build(m, &p, CTX, N_C, &o, &pa, &c, NULL, &rep), KVZ_OK);
    kept = rep.n_kept;
    /* the reference's own strict threshold: the value at rank floor(N r) - 1, keep > it */
    const size_t N = L * H * N_C, k = (size_t)((double)N * 0.3);
    double *sorted = tu_malloc(N * 8);
    memcpy(sorted, ref, N * 8);
    for (size_t i = 1; i < N; i++) /* insertion sort, descending: N is small */
        for (size_t j = i; j > 0 && sorted[j] > sorted[j - 1]; j--) {
            const double tmp = sorted[j];
            sorted[j] = sorted[j - 1], sorted[j - 1] = tmp;
        }
    const double thres = sorted[k - 1];
    assert_true(kept <= k);
    /* the masked reference over the kept positions of every (layer, head) */
    const size_t n = rows + 5;
    uint8_t *keep = tu_calloc(L * H * n, 1);
    size_t mismatches = 0;
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < H; h++) {
            size_t len;
            const int64_t *pos;
            assert_int_equal(kvz_cache_length(c, l, h, &len), KVZ_OK);
            assert_int_equal(kvz_cache_positions(c, l, h, &pos), KVZ_OK);
            for (size_t i = 0; i < len; i++)
                keep[(l * H + h) * n + (size_t)pos[i]] = 1;
            for (size_t j = 0; j < N_SYS; j++)
                assert_true(keep[(l * H + h) * n + j]); /* the system prompt stays */
            for (size_t j = 0; j < N_C; j++) {
                const double s = ref[(l * H + h) * N_C + j];
                const int want = s > thres, got = keep[(l * H + h) * n + N_SYS + j];
                if (want != got) {
                    mismatches++;
                    assert_true(fabs(s - thres) < 1e-4); /* only near-ties may differ */
                }
            }
            for (size_t j = rows; j < n; j++)
                keep[(l * H + h) * n + j] = 1;
        }
    fprintf(stderr, "kvzip ratio 0.3: kept %zu of %zu, %zu near-tie differences from the reference\n", kept, N,
            mismatches);
    int32_t seq[N_SYS + N_C + 5];
    memcpy(seq, SYS, sizeof SYS), memcpy(seq + N_SYS, CTX, sizeof CTX),
        memcpy(seq + rows, QUESTION, sizeof QUESTION);
    double *want = tu_malloc(n * V * 8);
    ref_llama_forward_masked(r, seq, n, keep, rows, want, NULL);
    float *got = tu_malloc(V * 4);
    answer_logits(m, c, QUESTION, 5, got);
    double scale = 0;
    for (size_t j = 0; j < V; j++)
        scale = fmax(scale, fabs(want[(n - 1) * V + j]));
    tu_check_close(got, want + (n - 1) * V, V, 1e-4 * scale, 1e-4, "answer over the compacted cache");
    free(got), free(want), free(keep), free(sorted), free(ref);
    kvz_cache_destroy(c);
    ref_llama_close(r);
    kvz_model_free(m);
}

/* Head-level: whole heads keep their context or none of it; the system prompt always stays. */
static void test_head_level(void **state)
{
    (void)state;
    NEED_MODEL();
    make_context();
    kvz_model *m = load();
    const size_t L = m->hp.n_layers, H = m->hp.n_head_kv;
    const kvz_kvzip_pieces p = pieces();
    const kvz_kvzip_opts o = opts();
    kvz_policy_args pa = {.struct_size = sizeof pa, .policy = KVZ_POLICY_KVZIP_PAIR, .ratio = 1.0};
    kvz_cache *c = NULL;
    float *scores = NULL;
    assert_int_equal(kvz_kvzip_build(m, &p, CTX, N_C, &o, &pa, &c, &scores, NULL), KVZ_OK);
    kvz_cache_destroy(c);
    float *head = tu_malloc(L * H * 4);
    for (size_t r = 0; r < L * H; r++) { /* head-level scores (Alg. 1): each head's largest token score */
        head[r] = 0;
        for (size_t j = 0; j < N_C; j++)
            head[r] = fmaxf(head[r], scores[r * N_C + j]);
    }
    pa.policy = KVZ_POLICY_KVZIP_HEAD, pa.head_scores = head, pa.ratio = 0.5;
    assert_int_equal(kvz_kvzip_build(m, &p, CTX, N_C, &o, &pa, &c, NULL, NULL), KVZ_OK);
    size_t whole = 0;
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < H; h++) {
            size_t len;
            assert_int_equal(kvz_cache_length(c, l, h, &len), KVZ_OK);
            assert_true(len == N_SYS || len == N_SYS + N_C);
            whole += len == N_SYS + N_C;
        }
    assert_true(whole > 0 && whole < L * H);
    kvz_cache_destroy(c);
    free(head), free(scores);
    kvz_model_free(m);
}

/* SnapKV-family scores from the prefill: the window score (last 8 queries, softmax over all
 * keys, sum over the window, average pool 7 with zero padding, sum over the group) of every
 * layer against the reference's probabilities; the window policies keep the window. */
static void test_window_scores(void **state)
{
    (void)state;
    NEED_MODEL();
    make_context();
    kvz_model *m = load();
    const size_t L = m->hp.n_layers, H = m->hp.n_head_kv, Hq = m->hp.n_head, G = Hq / H, n = N_SYS + N_C;
    enum { W = 8, KP = 7 };
    ref_llama *r = ref_llama_open(path);
    int32_t seq[N_SYS + N_C];
    memcpy(seq, SYS, sizeof SYS), memcpy(seq + N_SYS, CTX, sizeof CTX);
    double *logits = tu_malloc(n * ref_llama_vocab(r) * 8), *P = tu_malloc(L * Hq * n * n * 8);
    ref_llama_forward(r, seq, n, logits, P);
    double *want = tu_calloc(L * H * N_C, 8), *a = tu_malloc(n * 8);
    for (size_t l = 0; l < L; l++)
        for (size_t qh = 0; qh < Hq; qh++) {
            for (size_t j = 0; j < n - W; j++) {
                a[j] = 0;
                for (size_t i = n - W; i < n; i++)
                    a[j] += P[((l * Hq + qh) * n + i) * n + j];
            }
            for (size_t j = N_SYS; j < n - W; j++) { /* pooled, only the context part is reported */
                double sum = 0;
                for (ptrdiff_t t = (ptrdiff_t)j - KP / 2; t <= (ptrdiff_t)j + KP / 2; t++)
                    if (t >= 0 && t < (ptrdiff_t)(n - W))
                        sum += a[t];
                want[(l * H + qh / G) * N_C + j - N_SYS] += sum / KP;
            }
        }
    kvz_cache *c;
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
    float *got = tu_malloc(L * H * N_C * 4);
    /* chunks of 20 leave 5 tokens for a third chunk: the prefill moves the cut so that the
       window's queries all fall in the last chunk */
    assert_int_equal(kvz_prefill_window_scores(m, c, seq, n, N_SYS, 20, W, KP, KVZ_POOL_AVG, got), KVZ_OK);
    tu_check_close(got, want, L * H * N_C, 2e-5, 1e-4, "window scores");
    /* the prefill itself is the plain one: the cache holds every token at its position */
    size_t len;
    assert_int_equal(kvz_cache_length(c, L - 1, H - 1, &len), KVZ_OK);
    assert_int_equal(len, n);
    kvz_cache_destroy(c);
    /* snapkv at 0.3: every head keeps the budget, the window and the system prompt */
    const kvz_kvzip_pieces p = pieces();
    const kvz_kvzip_opts o = opts();
    kvz_policy_args pa = {.struct_size = sizeof pa, .policy = KVZ_POLICY_SNAPKV, .ratio = 0.3};
    kvz_kvzip_report rep;
    assert_int_equal(kvz_kvzip_build(m, &p, CTX, N_C, &o, &pa, &c, NULL, &rep), KVZ_OK);
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < H; h++) {
            const int64_t *pos;
            assert_int_equal(kvz_cache_length(c, l, h, &len), KVZ_OK);
            assert_int_equal(len, N_SYS + (size_t)(N_C * 0.3));
            assert_int_equal(kvz_cache_positions(c, l, h, &pos), KVZ_OK);
            for (size_t i = 0; i < N_SYS; i++)
                assert_int_equal(pos[i], (int64_t)i);
            for (size_t i = 0; i < W; i++)
                assert_int_equal(pos[len - W + i], (int64_t)(n - W + i));
        }
    kvz_cache_destroy(c);
    free(got), free(want), free(a), free(logits), free(P);
    ref_llama_close(r);
    kvz_model_free(m);
}

/* H2O's scores from the prefill: the attention each context token receives from every query
 * at or after it, summed over the GQA group, against the reference's probabilities; a chunked
 * prefill equals an unchunked one; h2o keeps the budget of each head, its window and the
 * system prompt, and the context tokens it keeps outscore those it drops. */
static void test_h2o_scores(void **state)
{
    (void)state;
    NEED_MODEL();
    make_context();
    kvz_model *m = load();
    const size_t L = m->hp.n_layers, H = m->hp.n_head_kv, Hq = m->hp.n_head, G = Hq / H, n = N_SYS + N_C;
    ref_llama *r = ref_llama_open(path);
    int32_t seq[N_SYS + N_C];
    memcpy(seq, SYS, sizeof SYS), memcpy(seq + N_SYS, CTX, sizeof CTX);
    double *logits = tu_malloc(n * ref_llama_vocab(r) * 8), *P = tu_malloc(L * Hq * n * n * 8);
    ref_llama_forward(r, seq, n, logits, P);
    double *want = tu_calloc(L * H * N_C, 8);
    for (size_t l = 0; l < L; l++)
        for (size_t qh = 0; qh < Hq; qh++)
            for (size_t i = 0; i < n; i++)
                for (size_t j = N_SYS; j <= i; j++)
                    want[(l * H + qh / G) * N_C + j - N_SYS] += P[((l * Hq + qh) * n + i) * n + j];
    float *chunked = tu_malloc(L * H * N_C * 4), *whole = tu_malloc(L * H * N_C * 4);
    double *wd = tu_malloc(L * H * N_C * 8);
    kvz_cache *c;
    /* chunks of 7, of 20 (a last one of 5) and one chunk */
    static const size_t chunks[] = {7, 20, 0};
    for (size_t t = 0; t < 3; t++) {
        float *got = chunks[t] ? chunked : whole;
        assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
        assert_int_equal(kvz_prefill_h2o_scores(m, c, seq, n, N_SYS, chunks[t], got), KVZ_OK);
        tu_check_close(got, want, L * H * N_C, 2e-5, 1e-4, "h2o scores");
        /* the prefill itself is the plain one: every token in the cache */
        size_t len;
        assert_int_equal(kvz_cache_length(c, L - 1, H - 1, &len), KVZ_OK);
        assert_int_equal(len, n);
        /* a second prefill into the same cache is refused: its rows would not be the ids */
        assert_int_equal(kvz_prefill_h2o_scores(m, c, seq, n, N_SYS, chunks[t], got), KVZ_ERR_STATE);
        kvz_cache_destroy(c);
    }
    for (size_t x = 0; x < L * H * N_C; x++)
        wd[x] = whole[x];
    tu_check_close(chunked, wd, L * H * N_C, 1e-6, 2e-5, "h2o scores, chunked against unchunked");
    /* h2o at 0.3: N_SYS + int(0.3 N_C) rows a head, the window of 8 among them */
    const kvz_kvzip_pieces p = pieces();
    const kvz_kvzip_opts o = opts(); /* prefill chunks of 7 */
    kvz_policy_args pa = {.struct_size = sizeof pa, .policy = KVZ_POLICY_H2O, .ratio = 0.3};
    kvz_kvzip_report rep;
    float *scores = NULL;
    assert_int_equal(kvz_kvzip_build(m, &p, CTX, N_C, &o, &pa, &c, &scores, &rep), KVZ_OK);
    assert_int_equal(rep.passes, 0);
    assert_int_equal(rep.n_kept, L * H * (size_t)(N_C * 0.3));
    for (size_t x = 0; x < L * H * N_C; x++)
        wd[x] = chunked[x];
    tu_check_close(scores, wd, L * H * N_C, 1e-6, 2e-5, "h2o scores of kvz_kvzip_build");
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < H; h++) {
            const int64_t *pos;
            size_t len;
            assert_int_equal(kvz_cache_length(c, l, h, &len), KVZ_OK);
            assert_int_equal(len, N_SYS + (size_t)(N_C * 0.3));
            assert_int_equal(kvz_cache_positions(c, l, h, &pos), KVZ_OK);
            for (size_t i = 0; i < N_SYS; i++)
                assert_int_equal(pos[i], (int64_t)i);
            for (size_t i = 0; i < o.window; i++)
                assert_int_equal(pos[len - o.window + i], (int64_t)(n - o.window + i));
            /* outside the window, every kept token scores at least as much as every dropped one */
            const float *sc = scores + (l * H + h) * N_C;
            uint8_t kept[N_C] = {0};
            for (size_t i = N_SYS; i < len; i++)
                kept[pos[i] - N_SYS] = 1;
            float lo = INFINITY, hi = -INFINITY;
            for (size_t j = 0; j + o.window < N_C; j++)
                if (kept[j])
                    lo = fminf(lo, sc[j]);
                else
                    hi = fmaxf(hi, sc[j]);
            assert_true(lo >= hi);
        }
    kvz_cache_destroy(c);
    free(scores), free(chunked), free(whole), free(wd), free(want), free(logits), free(P);
    ref_llama_close(r);
    kvz_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scores_vs_reference),
        cmocka_unit_test(test_guard_full_cache),
        cmocka_unit_test(test_ratio_one_is_identity),
        cmocka_unit_test(test_compress_vs_masked_reference),
        cmocka_unit_test(test_head_level),
        cmocka_unit_test(test_window_scores),
        cmocka_unit_test(test_h2o_scores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
