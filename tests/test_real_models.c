/* Real quantized models (SmolLM2-135M-Instruct Q4_1, Gemma 3 270M Q4_K_M) against llama.cpp's
 * reference vectors (tests/llama_ref.py, tests/data/ref_*.txt): token ids, greedy
 * continuations, teacher-forced top-1 agreement and KL. The held reference is llama.cpp run on
 * the file's weights dequantized to F32 by the gguf package (ref_<model>_f32.txt), so both sides
 * compute on the same values; llama.cpp on the quantized file itself (ref_<model>.txt) rounds
 * the activations of its products to 8 bits, and its figures are reported beside. The models
 * come from .ci/fetch-models; without them the tests skip (under CI they fail). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/dequant.h"
#include "model/model.h"
#include "model/tokenizer.h"
#include "testutil.h"

#define TOPK   20
#define STEPS  32
#define MAX_TF 2048

/* One reference file, parsed. */
typedef struct refvec {
    size_t n_texts, n_prompts, n_tf;
    char **text;
    size_t *text_len;
    int32_t **ids, **prompt, **greedy;
    size_t *n_ids, *n_prompt;
    double **gap;
    int32_t *tf;
    int32_t (*top_id)[TOPK];
    double (*top_lp)[TOPK];
} refvec;

/* Space-separated integers of a line after its tag into a new array. */
static int32_t *ints(const char *p, size_t *n)
{
    size_t cap = 16, k = 0;
    int32_t *v = tu_malloc(cap * sizeof *v);
    char *end;
    for (;;) {
        const long x = strtol(p, &end, 10);
        if (end == p)
            break;
        if (k == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[k++] = (int32_t)x;
        p = end;
    }
    *n = k;
    return v;
}

static int hexval(int c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

static refvec *ref_load(const char *name, const char *suffix)
{
    char path[512];
    snprintf(path, sizeof path, "%s/ref_%s%s.txt", KVZ_TESTDATA_DIR, name, suffix);
    size_t size;
    char *buf = (char *)tu_slurp(path, &size);
    refvec *r = tu_calloc(1, sizeof *r);
    const size_t cap = 1024;
    r->text = tu_calloc(cap, sizeof *r->text), r->text_len = tu_calloc(cap, sizeof(size_t));
    r->ids = tu_calloc(cap, sizeof *r->ids), r->n_ids = tu_calloc(cap, sizeof(size_t));
    r->prompt = tu_calloc(cap, sizeof *r->prompt), r->n_prompt = tu_calloc(cap, sizeof(size_t));
    r->greedy = tu_calloc(cap, sizeof *r->greedy), r->gap = tu_calloc(cap, sizeof *r->gap);
    r->top_id = tu_calloc(MAX_TF, sizeof *r->top_id), r->top_lp = tu_calloc(MAX_TF, sizeof *r->top_lp);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        size_t n;
        if (!strncmp(line, "text ", 5)) {
            assert_true(r->n_texts < cap);
            const char *h = line + 5;
            const size_t len = strlen(h) / 2;
            char *t = tu_malloc(len + 1);
            for (size_t i = 0; i < len; i++)
                t[i] = (char)(hexval(h[2 * i]) << 4 | hexval(h[2 * i + 1]));
            t[len] = 0;
            r->text[r->n_texts] = t, r->text_len[r->n_texts] = len;
        } else if (!strncmp(line, "ids", 3)) {
            r->ids[r->n_texts] = ints(line + 3, &r->n_ids[r->n_texts]);
            r->n_texts++;
        } else if (!strncmp(line, "prompt ", 7)) {
            assert_true(r->n_prompts < cap);
            r->prompt[r->n_prompts] = ints(line + 7, &r->n_prompt[r->n_prompts]);
        } else if (!strncmp(line, "greedy ", 7)) {
            r->greedy[r->n_prompts] = ints(line + 7, &n);
            assert_int_equal(n, STEPS);
        } else if (!strncmp(line, "gap ", 4)) {
            double *g = r->gap[r->n_prompts] = tu_malloc(STEPS * sizeof *g);
            char *p = line + 4;
            for (size_t i = 0; i < STEPS; i++)
                g[i] = strtod(p, &p);
            r->n_prompts++;
        } else if (!strncmp(line, "tf ", 3)) {
            r->tf = ints(line + 3, &r->n_tf);
            assert_true(r->n_tf <= MAX_TF);
        } else if (!strncmp(line, "top ", 4)) {
            char *p = line + 4;
            const long pos = strtol(p, &p, 10);
            assert_true(pos >= 0 && (size_t)pos < r->n_tf);
            for (size_t k = 0; k < TOPK; k++) {
                r->top_id[pos][k] = (int32_t)strtol(p, &p, 10);
                assert_int_equal(*p, ':');
                r->top_lp[pos][k] = strtod(p + 1, &p);
            }
        }
    }
    free(buf);
    return r;
}

static void ref_free(refvec *r)
{
    for (size_t i = 0; i < r->n_texts; i++)
        free(r->text[i]), free(r->ids[i]);
    for (size_t i = 0; i < r->n_prompts; i++)
        free(r->prompt[i]), free(r->greedy[i]), free(r->gap[i]);
    free(r->text), free(r->text_len), free(r->ids), free(r->n_ids), free(r->prompt), free(r->n_prompt);
    free(r->greedy), free(r->gap), free(r->tf), free(r->top_id), free(r->top_lp), free(r);
}

/* ---- token ids ----------------------------------------------------------------------------- */

static void check_tokens(const char *file, const char *name)
{
    const char *path;
    TU_NEED_MODEL(path, file);
    refvec *r = ref_load(name, "_f32");
    assert_true(r->n_texts >= 200);
    kvz_gguf *g;
    kvz_tokenizer *t;
    assert_int_equal(kvz_gguf_open(path, &g), KVZ_OK);
    assert_int_equal(kvz_tokenizer_from_gguf(g, &t), KVZ_OK);
    kvz_gguf_close(g);
    size_t bad = 0;
    for (size_t i = 0; i < r->n_texts; i++) {
        int32_t *ids;
        size_t n;
        assert_int_equal(kvz_tokenizer_encode(t, r->text[i], r->text_len[i], 1, 1, &ids, &n), KVZ_OK);
        if (n != r->n_ids[i] || memcmp(ids, r->ids[i], n * sizeof *ids)) {
            if (bad++ < 8) {
                fprintf(stderr, "%s text %zu \"%s\":\n  llama.cpp", name, i, r->text[i]);
                for (size_t k = 0; k < r->n_ids[i]; k++)
                    fprintf(stderr, " %d", r->ids[i][k]);
                fprintf(stderr, "\n  libkvz   ");
                for (size_t k = 0; k < n; k++)
                    fprintf(stderr, " %d", ids[k]);
                fprintf(stderr, "\n");
            }
        }
        free(ids);
    }
    fprintf(stderr, "%s: token ids of %zu texts, %zu differ from llama.cpp\n", name, r->n_texts, bad);
    kvz_tokenizer_free(t);
    ref_free(r);
    assert_int_equal(bad, 0);
}

static void test_tokens_smollm2(void **state)
{
    (void)state;
    check_tokens(TU_SMOLLM2, "smollm2");
}

static void test_tokens_gemma3(void **state)
{
    (void)state;
    check_tokens(TU_GEMMA3, "gemma3");
}

/* ---- greedy continuations and teacher-forced distributions ---------------------------------- */

static kvz_model *load(const char *path, int bf16)
{
    kvz_model *m = NULL;
    const kvz_model_opts o = {.bf16_weights = bf16};
    assert_int_equal(kvz_model_load(path, &o, &m), KVZ_OK);
    return m;
}

static int32_t argmax(const float *x, size_t n)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return (int32_t)b;
}

/* Greedy continuations of every prompt (the first one only under KVZ_TEST_QUICK): equal to the
 * reference's, except from a step where the reference's top-2 logit gap is below 1e-3 nats on
 * (at most 2 prompts may be exempted that way). */
static size_t check_greedy(kvz_model *m, const refvec *r, const char *what, int strict)
{
    const size_t V = m->hp.n_vocab, prompts = tu_quick() ? 1 : r->n_prompts, steps = tu_quick() ? 4 : STEPS;
    float *logits = tu_malloc(V * 4);
    size_t exempt = 0, equal = 0;
    for (size_t p = 0; p < prompts; p++) {
        kvz_cache *c;
        assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
        const kvz_kv_target kv = {c, NULL};
        assert_int_equal(kvz_model_prefill(m, kv, r->prompt[p], r->n_prompt[p], 0, logits), KVZ_OK);
        size_t s = 0;
        double min_gap = INFINITY;
        for (; s < steps; s++) {
            const int32_t id = argmax(logits, V);
            if (r->gap[p][s] < min_gap)
                min_gap = r->gap[p][s];
            if (id != r->greedy[p][s])
                break;
            assert_int_equal(kvz_model_prefill(m, kv, &id, 1, 0, logits), KVZ_OK);
        }
        kvz_cache_destroy(c);
        if (s == steps) {
            equal++;
            continue;
        }
        fprintf(
            stderr,
            "%s prompt %zu: differs from llama.cpp at step %zu (reference's smallest top-2 gap so far %.3g)\n",
            what, p, s, min_gap);
        if (min_gap < 1e-3)
            exempt++;
        else if (strict)
            fail_msg(
                "%s prompt %zu: greedy continuation differs at step %zu where llama.cpp's top-2 gap is %.3g",
                what, p, s, min_gap);
    }
    fprintf(stderr, "%s: %zu of %zu greedy continuations (%zu steps) equal llama.cpp's, %zu exempt\n", what,
            equal, prompts, steps, exempt);
    if (strict)
        assert_true(exempt <= 2);
    free(logits);
    return equal;
}

typedef struct tf_result {
    double top1, kl;
} tf_result;

/* Teacher-forced text in chunks of 64 positions: top-1 agreement with llama.cpp, and the mean over
 * positions of KL(llama.cpp || libkvz) over llama.cpp's top 20, both renormalized on those 20. */
static tf_result teacher_forced(kvz_model *m, const refvec *r)
{
    const size_t V = m->hp.n_vocab, n = tu_quick() ? 32 : r->n_tf, C = 64;
    assert_true(n <= r->n_tf);
    float *logits = tu_malloc(C * V * 4);
    kvz_cache *c;
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
    const kvz_kv_target kv = {c, NULL};
    size_t agree = 0;
    double kl = 0;
    for (size_t a = 0; a < n; a += C) {
        const size_t nc = n - a < C ? n - a : C;
        assert_int_equal(kvz_model_prefill_logits(m, kv, r->tf + a, nc, 0, nc, logits), KVZ_OK);
        for (size_t i = 0; i < nc; i++) {
            const float *x = logits + i * V;
            const size_t pos = a + i;
            agree += argmax(x, V) == r->top_id[pos][0];
            double mx = -INFINITY, zp = 0, zq = 0, kl_pos = 0;
            for (size_t k = 0; k < TOPK; k++)
                mx = fmax(mx, x[r->top_id[pos][k]]);
            for (size_t k = 0; k < TOPK; k++)
                zp += exp(r->top_lp[pos][k] - r->top_lp[pos][0]), zq += exp(x[r->top_id[pos][k]] - mx);
            for (size_t k = 0; k < TOPK; k++) {
                const double lp = r->top_lp[pos][k] - r->top_lp[pos][0] - log(zp);
                const double lq = x[r->top_id[pos][k]] - mx - log(zq);
                kl_pos += exp(lp) * (lp - lq);
            }
            kl += kl_pos;
        }
    }
    kvz_cache_destroy(c);
    free(logits);
    return (tf_result){(double)agree / (double)n, kl / (double)n};
}

static tf_result report_tf(kvz_model *m, const refvec *r, const char *what)
{
    const tf_result f = teacher_forced(m, r);
    fprintf(stderr,
            "%s: teacher-forced top-1 agreement %.4f, mean KL(llama.cpp || libkvz) over its top %d %.2e nats\n",
            what, f.top1, TOPK, f.kl);
    return f;
}

/* Held to llama.cpp on the dequantized weights with f32 weights; the figures with bf16 weights and
 * against llama.cpp's own quantized products are reported (and held to looser bounds). */
static void check_model(const char *file, const char *name)
{
    const char *path;
    TU_NEED_MODEL(path, file);
    refvec *r = ref_load(name, "_f32");
    assert_true(r->n_prompts >= 8 && r->n_tf == 512);
    char what[160];
    kvz_model *m = load(path, 0);
    snprintf(what, sizeof what, "%s, f32 weights, llama.cpp on dequantized weights", name);
    check_greedy(m, r, what, 1);
    const tf_result f = report_tf(m, r, what);
    assert_true(f.top1 >= 0.99);
    assert_true(f.kl <= 0.01);
    if (tu_quick()) { /* emulators and sanitizers: the held comparison, shortened, only */
        kvz_model_free(m);
        ref_free(r);
        return;
    }
    snprintf(what, sizeof what, "%s, f32 weights, llama.cpp on the quantized file", name);
    refvec *rq = ref_load(name, "");
    check_greedy(m, rq, what, 0);
    const tf_result q = report_tf(m, rq, what);
    kvz_model_free(m);
    assert_true(q.top1 >= 0.9 && q.kl <= 0.05);
    if (kvz_cpu_has_avx512_bf16()) { /* bf16 rounds every weight once more */
        m = load(path, 1);
        snprintf(what, sizeof what, "%s, bf16 weights, llama.cpp on dequantized weights", name);
        check_greedy(m, r, what, 0);
        const tf_result b = report_tf(m, r, what);
        kvz_model_free(m);
        assert_true(b.top1 >= 0.9 && b.kl <= 0.05);
    }
    /* the automatic choice: every matrix (the LM head is Q8_0 in both files) used in place in the
       file's mapping, no converted copy: decode steps read the blocks, prefill converts them to the
       CPU's type (as above) a panel at a time */
    const int bf16 = kvz_cpu_has_avx512_bf16();
    m = load(path, -1);
    assert_true(m->output.wtype == KVZ_WFMT_BLOCKS && m->output.qtype == KVZ_GGML_Q8_0);
    const kvz_gguf_tensor *head = kvz_gguf_tensor_find(m->gguf, "output.weight");
    if (!head)
        head = kvz_gguf_tensor_find(m->gguf, "token_embd.weight");
    double file_bytes = (double)head->n_bytes; /* the matrices' bytes in the file: all the model holds */
    for (size_t l = 0; l < m->hp.n_layers; l++) {
        const kvz_layer_weights *w = &m->layers[l];
        const kvz_linear *mats[] = {&w->q, &w->k, &w->v, &w->o, &w->gate, &w->up, &w->down};
        static const char *names[] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                      "ffn_gate", "ffn_up", "ffn_down"};
        for (size_t i = 0; i < 7; i++) {
            char tn[64];
            snprintf(tn, sizeof tn, "blk.%zu.%s.weight", l, names[i]);
            const kvz_gguf_tensor *t = kvz_gguf_tensor_find(m->gguf, tn);
            assert_non_null(t);
            assert_true(mats[i]->wtype == KVZ_WFMT_BLOCKS && mats[i]->w == NULL && mats[i]->blocks == t->data &&
                        mats[i]->qtype == t->type);
            file_bytes += (double)t->n_bytes;
        }
    }
    assert_true(kvz_model_matrix_bytes(m, NULL) == file_bytes);
    snprintf(what, sizeof what,
             "%s, automatic weights (blocks as stored, %s prefill products), llama.cpp on dequantized weights",
             name, bf16 ? "bf16" : "f32");
    check_greedy(m, r, what, !bf16);
    const tf_result a = report_tf(m, r, what);
    kvz_model_free(m);
    assert_true(bf16 ? a.top1 >= 0.9 && a.kl <= 0.05 : a.top1 >= 0.99 && a.kl <= 0.01);
    ref_free(r), ref_free(rq);
}

static void test_model_smollm2(void **state)
{
    (void)state;
    check_model(TU_SMOLLM2, "smollm2");
}

static void test_model_gemma3(void **state)
{
    (void)state;
    check_model(TU_GEMMA3, "gemma3");
}

/* Under KVZ_TEST_QUICK (emulated and sanitized runs) the long tests say so and do nothing: the
 * native run covers them. */
static int quick_skips(const char *what)
{
    if (tu_quick())
        fprintf(stderr, "%s: not run under KVZ_TEST_QUICK\n", what);
    return tu_quick();
}

/* Gemma 3 over 1536 tokens, where its local layers see only the last 512: the sliding window in
 * the prefill kernel and the cache, against llama.cpp (too long for the emulated and sanitized runs:
 * the native run covers it). */
static void test_long_gemma3(void **state)
{
    (void)state;
    const char *path;
    TU_NEED_MODEL(path, TU_GEMMA3);
    if (quick_skips("gemma3 long context"))
        return;
    refvec *r = ref_load("gemma3_long", "_f32");
    assert_int_equal(r->n_tf, 1536);
    kvz_model *m = load(path, 0);
    const tf_result f =
        report_tf(m, r, "gemma3 over 1536 tokens, f32 weights, llama.cpp on dequantized weights");
    kvz_model_free(m);
    ref_free(r);
    assert_true(f.top1 >= 0.99);
    assert_true(f.kl <= 0.01);
}

/* Gemma 3's local layers through a query's private tail: a cache prefilled past the window (its local
 * layers holding more rows than the window), and the same after a pass appended and truncated away
 * (KVzip's passes; the local layers then hold just their window), answer a tail's tokens as a prefill
 * into the cache itself does, to rounding; a cache without the windows is refused. Long: not under
 * KVZ_TEST_QUICK. */
static void test_tail_gemma3(void **state)
{
    (void)state;
    const char *path;
    TU_NEED_MODEL(path, TU_GEMMA3);
    if (quick_skips("gemma3 query tails"))
        return;
    refvec *r = ref_load("gemma3_long", "_f32");
    kvz_model *m = load(path, 0);
    { /* a cache of the model's shape without its sliding windows is refused, not misread */
        const kvz_cache_config cfg = {
            sizeof cfg, m->hp.n_layers, m->hp.n_head_kv, m->hp.head_dim, KVZ_DTYPE_F32, 0, NULL};
        kvz_cache *c;
        assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
        assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){c, NULL}, r->tf, 1, 0, NULL), KVZ_ERR_MISMATCH);
        assert_non_null(strstr(kvz_last_error(), "window"));
        kvz_cache_destroy(c);
    }
    const size_t V = m->hp.n_vocab, n0 = 1100, nq = 24;
    float *want = tu_malloc(nq * V * 4), *got = tu_malloc(nq * V * 4);
    for (int mode = 0; mode < 3; mode++) {
        kvz_cache *c;
        assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
        const kvz_kv_target kv = {c, NULL};
        assert_int_equal(kvz_model_prefill(m, kv, r->tf, n0, 2048, NULL), KVZ_OK);
        if (mode == 0) {
            assert_int_equal(kvz_model_prefill_logits(m, kv, r->tf + n0, nq, 0, nq, want), KVZ_OK);
        } else {
            if (mode == 2) {
                assert_int_equal(kvz_model_prefill(m, kv, r->tf + n0, 300, 0, NULL), KVZ_OK);
                assert_int_equal(kvz_cache_truncate(c, 300), KVZ_OK);
            }
            kvz_query *q;
            assert_int_equal(kvz_query_create(c, &q), KVZ_OK);
            assert_int_equal(kvz_model_prefill_logits(m, (kvz_kv_target){NULL, q}, r->tf + n0, nq, 0, nq, got),
                             KVZ_OK);
            double worst = 0;
            for (size_t i = 0; i < nq * V; i++)
                worst = fmax(worst, fabs(want[i] - got[i]));
            fprintf(stderr, "gemma3 query tail%s: largest logit difference from the cache prefill %.3g\n",
                    mode == 2 ? " after a truncated pass" : "", worst);
            assert_true(worst <= 1e-3);
            kvz_query_destroy(q);
        }
        size_t len;
        assert_int_equal(kvz_cache_length(c, 0, 0, &len), KVZ_OK); /* a local layer: bounded by its window */
        assert_true(len <= 2 * 512 + n0);
        kvz_cache_destroy(c);
    }
    free(want), free(got);
    kvz_model_free(m);
    ref_free(r);
}

/* ---- hidden states against a naive double-precision forward pass ---------------------------- */

/* A tensor of the file as f32 (kvz_dequantize is held to the gguf package by test_dequant). */
static float *weights(const kvz_gguf *g, const char *fmt, size_t l)
{
    char name[96];
    snprintf(name, sizeof name, fmt, l);
    const kvz_gguf_tensor *t = kvz_gguf_tensor_find(g, name);
    assert_non_null(t);
    float *w = tu_malloc(t->n_elements * 4);
    assert_int_equal(kvz_dequantize(w, KVZ_DTYPE_F32, t->data, t->type, t->n_elements), KVZ_OK);
    return w;
}

static void matvec(const float *W, const double *x, size_t in, size_t out, double *y)
{
    for (size_t o = 0; o < out; o++) {
        double s = 0;
        for (size_t i = 0; i < in; i++)
            s += (double)W[o * in + i] * x[i];
        y[o] = s;
    }
}

static void rmsnorm(double *x, const float *w, size_t n, double eps)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += x[i] * x[i];
    const double r = 1.0 / sqrt(ss / (double)n + eps);
    for (size_t i = 0; i < n; i++)
        x[i] *= r * w[i];
}

static void rope(double *v, size_t d, double pos, double base, int neox)
{
    for (size_t i = 0; i < d / 2; i++) {
        const double th = pos * pow(base, -2.0 * (double)i / (double)d);
        double *a = neox ? v + i : v + 2 * i, *b = neox ? v + i + d / 2 : v + 2 * i + 1;
        const double x0 = *a, x1 = *b;
        *a = x0 * cos(th) - x1 * sin(th), *b = x0 * sin(th) + x1 * cos(th);
    }
}

/* The residual stream x[n][E] after layers 0..L-1, from the equations (spec/models.md sections 3 and
 * 4: Llama, and Gemma 3's norms, scales, GELU and local layers), every tensor dequantized, in double. */
static void ref_hidden(const kvz_model *m, const int32_t *ids, size_t n, size_t L, double *x)
{
    const kvz_hparams *hp = &m->hp;
    const kvz_gguf *g = m->gguf;
    const size_t E = hp->n_embd, d = hp->head_dim, Hq = hp->n_head, Hkv = hp->n_head_kv, F = hp->n_ff;
    const int gemma = !strcmp(hp->arch, "gemma3");
    const kvz_gguf_tensor *emb = kvz_gguf_tensor_find(g, "token_embd.weight");
    const kvz_ggml_type *ty = kvz_ggml_type_of(emb->type);
    float *row = tu_malloc(E * 4);
    for (size_t t = 0; t < n; t++) {
        const uint8_t *src = (const uint8_t *)emb->data + (size_t)ids[t] * (E / ty->block) * ty->bytes;
        assert_int_equal(kvz_dequantize(row, KVZ_DTYPE_F32, src, emb->type, E), KVZ_OK);
        for (size_t i = 0; i < E; i++)
            x[t * E + i] = row[i] * (gemma ? sqrt((double)E) : 1.0);
    }
    free(row);
    double *h = tu_malloc(E * 8), *q = tu_malloc(n * Hq * d * 8), *k = tu_malloc(n * Hkv * d * 8);
    double *v = tu_malloc(n * Hkv * d * 8), *att = tu_malloc(n * Hq * d * 8), *o = tu_malloc(E * 8);
    double *gt = tu_malloc(F * 8), *up = tu_malloc(F * 8), *p = tu_malloc(n * 8);
    for (size_t l = 0; l < L; l++) {
        float *an = weights(g, "blk.%zu.attn_norm.weight", l), *fn = weights(g, "blk.%zu.ffn_norm.weight", l);
        float *wq = weights(g, "blk.%zu.attn_q.weight", l), *wk = weights(g, "blk.%zu.attn_k.weight", l);
        float *wv = weights(g, "blk.%zu.attn_v.weight", l), *wo = weights(g, "blk.%zu.attn_output.weight", l);
        float *wg = weights(g, "blk.%zu.ffn_gate.weight", l), *wu = weights(g, "blk.%zu.ffn_up.weight", l);
        float *wd = weights(g, "blk.%zu.ffn_down.weight", l);
        float *qn = gemma ? weights(g, "blk.%zu.attn_q_norm.weight", l) : NULL;
        float *kn = gemma ? weights(g, "blk.%zu.attn_k_norm.weight", l) : NULL;
        float *pa = gemma ? weights(g, "blk.%zu.post_attention_norm.weight", l) : NULL;
        float *pf = gemma ? weights(g, "blk.%zu.post_ffw_norm.weight", l) : NULL;
        const int local = gemma && l % 6 < 5;
        const double base = local ? 10000.0 : hp->rope_base, window = local ? 512.0 : INFINITY;
        for (size_t t = 0; t < n; t++) {
            memcpy(h, x + t * E, E * 8);
            rmsnorm(h, an, E, hp->eps);
            matvec(wq, h, E, Hq * d, q + t * Hq * d);
            matvec(wk, h, E, Hkv * d, k + t * Hkv * d);
            matvec(wv, h, E, Hkv * d, v + t * Hkv * d);
            for (size_t hh = 0; hh < Hq; hh++) {
                if (gemma)
                    rmsnorm(q + (t * Hq + hh) * d, qn, d, hp->eps);
                rope(q + (t * Hq + hh) * d, d, (double)t, base, hp->rope_mode == KVZ_ROPE_NEOX);
            }
            for (size_t hh = 0; hh < Hkv; hh++) {
                if (gemma)
                    rmsnorm(k + (t * Hkv + hh) * d, kn, d, hp->eps);
                rope(k + (t * Hkv + hh) * d, d, (double)t, base, hp->rope_mode == KVZ_ROPE_NEOX);
            }
        }
        for (size_t t = 0; t < n; t++)
            for (size_t qh = 0; qh < Hq; qh++) {
                const size_t kh = qh / (Hq / Hkv);
                double mx = -INFINITY, z = 0;
                for (size_t j = 0; j <= t; j++) {
                    double s = 0;
                    for (size_t i = 0; i < d; i++)
                        s += q[(t * Hq + qh) * d + i] * k[(j * Hkv + kh) * d + i];
                    p[j] = (double)(t - j) < window ? s / sqrt((double)d) : -INFINITY;
                    mx = fmax(mx, p[j]);
                }
                for (size_t j = 0; j <= t; j++)
                    z += (p[j] = exp(p[j] - mx));
                for (size_t i = 0; i < d; i++) {
                    double s = 0;
                    for (size_t j = 0; j <= t; j++)
                        s += p[j] / z * v[(j * Hkv + kh) * d + i];
                    att[(t * Hq + qh) * d + i] = s;
                }
            }
        for (size_t t = 0; t < n; t++) {
            double *xt = x + t * E;
            matvec(wo, att + t * Hq * d, Hq * d, E, o);
            if (gemma)
                rmsnorm(o, pa, E, hp->eps);
            for (size_t i = 0; i < E; i++)
                xt[i] += o[i];
            memcpy(h, xt, E * 8);
            rmsnorm(h, fn, E, hp->eps);
            matvec(wg, h, E, F, gt);
            matvec(wu, h, E, F, up);
            for (size_t i = 0; i < F; i++) {
                const double a = gt[i];
                gt[i] = (gemma ? 0.5 * a * (1 + tanh(sqrt(2 / M_PI) * (a + 0.044715 * a * a * a)))
                               : a / (1 + exp(-a))) *
                        up[i];
            }
            matvec(wd, gt, F, E, o);
            if (gemma)
                rmsnorm(o, pf, E, hp->eps);
            for (size_t i = 0; i < E; i++)
                xt[i] += o[i];
        }
        free(an), free(fn), free(wq), free(wk), free(wv), free(wo), free(wg), free(wu), free(wd);
        free(qn), free(kn), free(pa), free(pf);
    }
    free(h), free(q), free(k), free(v), free(att), free(o), free(gt), free(up), free(p);
}

/* libkvz's residual stream after the first L layers (f32 weights, f32 cache), against ref_hidden:
 * the relative error of every token's vector at most 1e-4. */
static void check_hidden(const char *file, const char *name, size_t L)
{
    const char *path;
    TU_NEED_MODEL(path, file);
    refvec *r = ref_load(name, "_f32");
    kvz_model *m = load(path, 0);
    const size_t n = 24, E = m->hp.n_embd;
    double *want = tu_malloc(n * E * 8);
    ref_hidden(m, r->tf, n, L, want);
    float *x = tu_malloc(n * E * 4);
    int64_t pos[24];
    for (size_t t = 0; t < n; t++)
        pos[t] = (int64_t)t;
    kvz_cache *c;
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
    assert_int_equal(kvz_model_embed(m, r->tf, n, x), KVZ_OK);
    for (size_t l = 0; l < L; l++) {
        kvz_layer_io io = {.n = n, .x = x, .pos = pos};
        assert_int_equal(kvz_model_layer(m, l, (kvz_kv_target){c, NULL}, &io), KVZ_OK);
    }
    double worst = 0;
    for (size_t t = 0; t < n; t++) {
        double e = 0, s = 0;
        for (size_t i = 0; i < E; i++)
            e += (x[t * E + i] - want[t * E + i]) * (x[t * E + i] - want[t * E + i]),
                s += want[t * E + i] * want[t * E + i];
        worst = fmax(worst, sqrt(e / s));
    }
    fprintf(stderr, "%s: hidden states after %zu layers, largest relative error of a token's vector %.3g\n",
            name, L, worst);
    assert_true(worst <= 1e-4);
    kvz_cache_destroy(c);
    kvz_model_free(m);
    free(want), free(x);
    ref_free(r);
}

static void test_hidden_smollm2(void **state)
{
    (void)state;
    check_hidden(TU_SMOLLM2, "smollm2", 4);
}

static void test_hidden_gemma3(void **state)
{
    (void)state;
    check_hidden(TU_GEMMA3, "gemma3", 6); /* five local layers and the first global one */
}

int main(void)
{
    if (tu_models_tier_off()) {
        fprintf(stderr, "test_real_models: a test of the model tier (make check-models runs it)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens_smollm2), cmocka_unit_test(test_tokens_gemma3),
        cmocka_unit_test(test_hidden_smollm2), cmocka_unit_test(test_hidden_gemma3),
        cmocka_unit_test(test_model_smollm2),  cmocka_unit_test(test_model_gemma3),
        cmocka_unit_test(test_long_gemma3),    cmocka_unit_test(test_tail_gemma3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
