/* The model runner on stories260K: greedy ids equal the README's test vectors, logits agree
 * with the naive double-precision reference in ref_llama.c, chunking and query tails change
 * nothing, damaged files are refused. */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/generate.h"
#include "model/model.h"
#include "ref_llama.h"
#include "testutil.h"

static const char *path; /* the shared stories260K model */
#define NEED_MODEL() TU_NEED_SHARED(path, TU_STORIES)

static kvz_model *load(void)
{
    kvz_model *m = NULL;
    const kvz_model_opts o = {.bf16_weights = 0};
    assert_int_equal(kvz_model_load(path, &o, &m), KVZ_OK);
    return m;
}

/* Greedy generation from prompt ids with an f32 cache: the generated ids. */
static size_t greedy(kvz_model *m, const int32_t *prompt, size_t n, size_t steps, size_t chunk, int32_t *out)
{
    kvz_cache *c;
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
    float *logits = tu_malloc(m->hp.n_vocab * 4);
    kvz_kv_target kv = {c, NULL};
    assert_int_equal(kvz_model_prefill(m, kv, prompt, n, chunk, logits), KVZ_OK);
    kvz_gen_opts o = {.max_tokens = steps};
    size_t got = 0;
    assert_int_equal(kvz_model_generate(m, kv, logits, &o, out, &got), KVZ_OK);
    free(logits);
    kvz_cache_destroy(c);
    return got;
}

static void test_hparams(void **state)
{
    (void)state;
    NEED_MODEL();
    kvz_model *m = load();
    assert_string_equal(m->hp.arch, "llama");
    assert_int_equal(m->hp.n_layers, 5);
    assert_int_equal(m->hp.n_embd, 64);
    assert_int_equal(m->hp.n_head, 8);
    assert_int_equal(m->hp.n_head_kv, 4);
    assert_int_equal(m->hp.head_dim, 8);
    assert_int_equal(m->hp.n_ff, 172);
    assert_int_equal(m->hp.n_vocab, 512);
    assert_float_equal(m->hp.rope_base, 10000.0f, 0);
    assert_int_equal(m->hp.rope_mode, KVZ_ROPE_NORM);
    kvz_model_free(m);
}

/* README: prompt [1] gives these 24 greedy ids. */
static void test_greedy_bos(void **state)
{
    (void)state;
    NEED_MODEL();
    static const int32_t want[24] = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421,
                                     395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292};
    kvz_model *m = load();
    int32_t got[24];
    const int32_t bos = 1;
    assert_int_equal(greedy(m, &bos, 1, 24, 0, got), 24);
    assert_memory_equal(got, want, sizeof want);
    kvz_model_free(m);
}

/* README: "Tom had a red kite. One day" continues with these ids; chunked prefill too. */
static void test_greedy_prompt(void **state)
{
    (void)state;
    NEED_MODEL();
    static const int32_t prompt[13] = {1, 274, 287, 381, 261, 352, 266, 409, 275, 411, 426, 385, 328};
    static const int32_t want[10] = {432, 281, 272, 277, 264, 261, 370, 432, 352, 266};
    kvz_model *m = load();
    const size_t chunks[] = {0, 1, 4, 5};
    for (size_t i = 0; i < 4; i++) {
        int32_t got[10];
        assert_int_equal(greedy(m, prompt, 13, 10, chunks[i], got), 10);
        assert_memory_equal(got, want, sizeof want);
    }
    kvz_model_free(m);
}

/* Every position's logits against the reference: a prompt, then decode steps, f32 weights
 * and cache, at every ISA level; 1e-4 relative to the logit scale. */
static void test_logits_vs_reference(void **state)
{
    (void)state;
    NEED_MODEL();
    enum { N = 40 };
    ref_llama *r = ref_llama_open(path);
    assert_non_null(r);
    const size_t V = ref_llama_vocab(r);
    int32_t ids[N];
    tu_rng rng;
    tu_rng_init(&rng, tu_seed());
    ids[0] = 1;
    for (size_t i = 1; i < N; i++)
        ids[i] = (int32_t)tu_range(&rng, 3, V - 1);
    double *want = tu_malloc((size_t)N * V * 8);
    ref_llama_forward(r, ids, N, want, NULL);
    kvz_model *m = load();
    float *got = tu_malloc(V * 4);
    kvz_isa isas[TU_MAX_LEVELS];
    const size_t n_isa = tu_isa_levels(isas);
    for (size_t li = 0; li < n_isa; li++) {
        tu_force(isas[li]);
        kvz_cache *c;
        assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
        kvz_kv_target kv = {c, NULL};
        const size_t n_prompt = 17;
        assert_int_equal(kvz_model_prefill(m, kv, ids, n_prompt, 6, got), KVZ_OK);
        for (size_t t = n_prompt - 1; t < N; t++) {
            if (t >= n_prompt)
                assert_int_equal(kvz_model_step(m, kv, ids[t], got), KVZ_OK);
            double scale = 0;
            for (size_t j = 0; j < V; j++)
                scale = fmax(scale, fabs(want[t * V + j]));
            tu_check_close(got, want + t * V, V, 1e-4 * scale, 1e-4, "logits");
        }
        kvz_cache_destroy(c);
    }
    kvz_isa best = isas[n_isa - 1];
    tu_force(best);
    free(got), free(want);
    kvz_model_free(m);
    ref_llama_close(r);
}

/* A question answered through a kvz_query tail equals the same tokens appended to the cache,
 * and leaves the cache untouched. */
static void test_query_tail(void **state)
{
    (void)state;
    NEED_MODEL();
    static const int32_t ctx[13] = {1, 274, 287, 381, 261, 352, 266, 409, 275, 411, 426, 385, 328};
    static const int32_t question[4] = {432, 281, 272, 277};
    kvz_model *m = load();
    const size_t V = m->hp.n_vocab;
    kvz_cache *a, *b;
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_BF16, &a), KVZ_OK);
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_BF16, &b), KVZ_OK);
    float *la = tu_malloc(V * 4), *lb = tu_malloc(V * 4);
    assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){a, NULL}, ctx, 13, 0, la), KVZ_OK);
    assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){b, NULL}, ctx, 13, 0, lb), KVZ_OK);
    kvz_query *q;
    assert_int_equal(kvz_query_create(b, &q), KVZ_OK);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){NULL, q}, question, 4, 0, lb), KVZ_OK);
        if (round == 0)
            assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){a, NULL}, question, 4, 0, la), KVZ_OK);
        double *w = tu_malloc(V * 8);
        for (size_t j = 0; j < V; j++)
            w[j] = la[j];
        tu_check_close(lb, w, V, 1e-5, 1e-5, "query tail vs cache append");
        free(w);
        assert_int_equal(kvz_query_reset(q), KVZ_OK); /* the second round must see the same cache */
    }
    kvz_query_destroy(q);
    kvz_cache_stats st = {.struct_size = sizeof st};
    assert_int_equal(kvz_cache_get_stats(b, &st), KVZ_OK);
    assert_int_equal(st.rows, 13 * m->hp.n_layers * m->hp.n_head_kv);
    free(la), free(lb);
    kvz_cache_destroy(a), kvz_cache_destroy(b);
    kvz_model_free(m);
}

/* A cache or query of another shape than the model's is refused before a row moves: a .kvz
 * carrying a copied fingerprint once read past a segment and wrote past the attention buffer. */
static void test_cache_shape_mismatch(void **state)
{
    (void)state;
    NEED_MODEL();
    kvz_model *m = load();
    const kvz_hparams *hp = &m->hp;
    static const int32_t ids[3] = {1, 274, 287};
    float *logits = tu_malloc(hp->n_vocab * 4);
    const size_t shapes[4][3] = {{hp->n_layers + 1, hp->n_head_kv, hp->head_dim},
                                 {hp->n_layers, hp->n_head_kv + 1, hp->head_dim},
                                 {hp->n_layers, hp->n_head_kv, hp->head_dim * 2},
                                 {hp->n_layers - 1, hp->n_head_kv, hp->head_dim}};
    char tmp[] = "/tmp/kvz_shape_XXXXXX", file[64];
    assert_non_null(mkdtemp(tmp));
    snprintf(file, sizeof file, "%s/c.kvz", tmp);
    for (size_t i = 0; i < 4; i++) {
        const kvz_cache_config cfg = {sizeof cfg, shapes[i][0], shapes[i][1], shapes[i][2], KVZ_DTYPE_F32,
                                      0,          NULL};
        kvz_cache *c, *loaded;
        assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
        /* the file path of `kvz ask`: the model's fingerprint on a cache of another shape */
        kvz_cache_meta meta = {.struct_size = sizeof meta};
        memcpy(meta.model_fingerprint, m->fingerprint, 32);
        assert_int_equal(kvz_cache_save(c, file, &meta), KVZ_OK);
        assert_int_equal(kvz_cache_load(file, m->fingerprint, &loaded, NULL), KVZ_OK);
        kvz_query *q;
        assert_int_equal(kvz_query_create(loaded, &q), KVZ_OK);
        assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){NULL, q}, ids, 3, 0, logits), KVZ_ERR_MISMATCH);
        assert_non_null(strstr(kvz_last_error(), "KV heads"));
        kvz_query_destroy(q);
        assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){loaded, NULL}, ids, 3, 0, logits),
                         KVZ_ERR_MISMATCH);
        /* one layer at a time, as generation and KVzip scoring drive it */
        float *x = tu_malloc(hp->n_embd * 4);
        assert_int_equal(kvz_model_embed(m, ids, 1, x), KVZ_OK);
        const int64_t pos = 0;
        kvz_layer_io io = {.n = 1, .x = x, .pos = &pos};
        assert_int_equal(kvz_model_layer(m, 0, (kvz_kv_target){c, NULL}, &io), KVZ_ERR_MISMATCH);
        size_t len = 1;
        assert_int_equal(kvz_cache_length(c, 0, 0, &len), KVZ_OK);
        assert_int_equal(len, 0); /* nothing was appended */
        free(x);
        kvz_cache_destroy(loaded), kvz_cache_destroy(c);
    }
    /* the model's own shape still runs */
    kvz_cache *c;
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
    size_t L, H, d;
    kvz_dtype dt;
    assert_int_equal(kvz_cache_shape(c, &L, &H, &d, &dt), KVZ_OK);
    assert_int_equal(L, hp->n_layers), assert_int_equal(H, hp->n_head_kv), assert_int_equal(d, hp->head_dim);
    assert_int_equal(dt, KVZ_DTYPE_F32);
    assert_int_equal(kvz_cache_shape(NULL, &L, NULL, NULL, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_query_shape(NULL, &L, NULL, NULL, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){c, NULL}, ids, 3, 0, logits), KVZ_OK);
    kvz_cache_destroy(c);
    unlink(file);
    rmdir(tmp);
    free(logits);
    kvz_model_free(m);
}

/* Damaged and unsupported files: a status and a message, never a crash or a half model. */
static void test_bad_files(void **state)
{
    (void)state;
    NEED_MODEL();
    size_t n;
    unsigned char *buf = tu_slurp(path, &n);
    char tmp[] = "/tmp/kvz_model_XXXXXX";
    assert_non_null(mkdtemp(tmp));
    char bad[600];
    snprintf(bad, sizeof bad, "%s/m.gguf", tmp);
    kvz_model *m = (kvz_model *)1;
    /* truncated inside the tensor data */
    tu_spit(bad, buf, n - 1000);
    assert_int_not_equal(kvz_model_load(bad, NULL, &m), KVZ_OK);
    assert_null(m);
    /* another architecture name */
    unsigned char *val = memmem(buf, n, "general.architecture", 20);
    assert_non_null(val);
    unsigned char *v = memmem(val, n - (size_t)(val - buf), "llama", 5);
    v[4] = 'x';
    tu_spit(bad, buf, n);
    assert_int_equal(kvz_model_load(bad, NULL, &m), KVZ_ERR_UNSUPPORTED);
    assert_non_null(strstr(kvz_last_error(), "llamx"));
    v[4] = 'a';
    /* a missing tensor */
    unsigned char *t = memmem(buf, n, "output_norm.weight", 18);
    assert_non_null(t);
    t[0] = 'X';
    tu_spit(bad, buf, n);
    assert_int_equal(kvz_model_load(bad, NULL, &m), KVZ_ERR_FORMAT);
    assert_non_null(strstr(kvz_last_error(), "output_norm.weight"));
    t[0] = 'o';
    assert_int_equal(kvz_model_load(NULL, NULL, &m), KVZ_ERR_NULL);
    unlink(bad);
    rmdir(tmp);
    free(buf);
    /* out-of-vocabulary ids */
    m = load();
    kvz_cache *c;
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
    const int32_t ids[2] = {1, 512};
    assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){c, NULL}, ids, 2, 0, NULL), KVZ_ERR_INVALID_ARG);
    kvz_cache_destroy(c);
    kvz_model_free(m);
}

/* Every byte of the metadata and tensor directory flipped in turn (a sample under
 * KVZ_TEST_QUICK): loading gives a model or a status with a message, never a crash, and a
 * model that loads still runs a step (under ASan in CI). */
static void test_flipped_headers(void **state)
{
    (void)state;
    NEED_MODEL();
    size_t n;
    unsigned char *buf = tu_slurp(path, &n);
    char tmp[] = "/tmp/kvz_flip_XXXXXX";
    assert_non_null(mkdtemp(tmp));
    char bad[600];
    snprintf(bad, sizeof bad, "%s/m.gguf", tmp);
    const size_t header = 14176; /* the data offset of stories260K (../shared/models/README.md) */
    const size_t step = tu_quick() ? 97 : 7;
    size_t loaded = 0, refused = 0;
    for (size_t i = 0; i < header && i < n; i += step) {
        buf[i] ^= 0x5a;
        tu_spit(bad, buf, n);
        kvz_model *m = NULL;
        const kvz_status st = kvz_model_load(bad, NULL, &m);
        if (st == KVZ_OK) {
            loaded++;
            kvz_cache *c;
            assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &c), KVZ_OK);
            const int32_t bos = 1;
            kvz_status run = kvz_model_prefill(m, (kvz_kv_target){c, NULL}, &bos, 1, 0, NULL);
            assert_true(run == KVZ_OK || run == KVZ_ERR_INVALID_ARG); /* BOS may fall outside a damaged vocabulary */
            kvz_cache_destroy(c);
            kvz_model_free(m);
        } else {
            refused++;
            assert_null(m);
            assert_true(strlen(kvz_last_error()) > 0);
        }
        buf[i] ^= 0x5a;
    }
    fprintf(stderr, "flipped header bytes: %zu models loaded, %zu refused\n", loaded, refused);
    assert_true(refused > 0);
    unlink(bad);
    rmdir(tmp);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hparams),         cmocka_unit_test(test_greedy_bos),
        cmocka_unit_test(test_greedy_prompt),   cmocka_unit_test(test_logits_vs_reference),
        cmocka_unit_test(test_query_tail),      cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_flipped_headers), cmocka_unit_test(test_cache_shape_mismatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
