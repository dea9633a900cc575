/* The GGUF reader on the shared stories260K model (values from ../shared/models/README.md) and on damaged
 * copies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/gguf.h"
#include "model/model.h"
#include "testutil.h"

static const char *model; /* the shared stories260K model */
static char tmpdir[64];


static void test_stories260k(void **state)
{
    (void)state;
    TU_NEED_SHARED(model, TU_STORIES);
    kvz_gguf *g;
    assert_int_equal(kvz_gguf_open(model, &g), KVZ_OK);
    assert_int_equal(g->version, 3);
    assert_int_equal(g->n_tensors, 48);
    assert_int_equal(g->alignment, 32);
    assert_int_equal(g->data_offset, 14176);
    kvz_gguf_str s;
    assert_int_equal(kvz_gguf_get_str(g, "general.architecture", &s), KVZ_OK);
    assert_true(s.n == 5 && !memcmp(s.p, "llama", 5));
    const struct {
        const char *key;
        uint64_t want;
    } ints[] = {{"llama.context_length", 2048},     {"llama.embedding_length", 64},
                {"llama.feed_forward_length", 172}, {"llama.block_count", 5},
                {"llama.attention.head_count", 8},  {"llama.attention.head_count_kv", 4},
                {"llama.rope.dimension_count", 8}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        uint64_t v = 0;
        assert_int_equal(kvz_gguf_get_u64(g, ints[i].key, &v), KVZ_OK);
        assert_int_equal(v, ints[i].want);
    }
    float eps;
    assert_int_equal(kvz_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps), KVZ_OK);
    assert_float_equal(eps, 1e-5f, 1e-12);
    assert_null(kvz_gguf_find(g, "llama.rope.freq_base")); /* absent: the default 10000 applies */
    const kvz_gguf_kv *tok = kvz_gguf_find(g, "tokenizer.ggml.tokens");
    assert_non_null(tok);
    assert_int_equal(tok->count, 512);
    kvz_gguf_str *toks = tu_malloc(512 * sizeof *toks);
    assert_int_equal(kvz_gguf_array_strings(tok, toks), KVZ_OK);
    assert_true(toks[1].n == 3 && !memcmp(toks[1].p, "<s>", 3));
    assert_true(toks[3].n == 6 && !memcmp(toks[3].p, "<0x00>", 6));
    free(toks);
    const kvz_gguf_tensor *emb = kvz_gguf_tensor_find(g, "token_embd.weight");
    const kvz_gguf_tensor *out = kvz_gguf_tensor_find(g, "output.weight");
    const kvz_gguf_tensor *ffn = kvz_gguf_tensor_find(g, "blk.4.ffn_down.weight");
    assert_non_null(emb), assert_non_null(out), assert_non_null(ffn);
    assert_int_equal(emb->type, KVZ_GGML_F32);
    assert_int_equal(emb->n_dims, 2);
    assert_int_equal(emb->dims[0], 64), assert_int_equal(emb->dims[1], 512);
    assert_int_equal(ffn->dims[0], 172), assert_int_equal(ffn->dims[1], 64);
    assert_memory_equal(emb->data, out->data, emb->n_bytes); /* tied embeddings, as the README says */
    assert_null(kvz_gguf_tensor_find(g, "blk.5.attn_q.weight"));
    uint64_t v;
    assert_int_equal(kvz_gguf_get_u64(g, "general.architecture", &v), KVZ_ERR_MISMATCH);
    assert_int_equal(kvz_gguf_get_u64(g, "no.such.key", &v), KVZ_ERR_INVALID_ARG);
    kvz_gguf_close(g);
}

/* Truncated and bit-flipped copies: a clear status or a valid file, never a crash or an
 * out-of-bounds read (ASan watches this test). */
static void test_damaged(void **state)
{
    (void)state;
    TU_NEED_SHARED(model, TU_STORIES);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kvz-gguf-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    char bad[128];
    snprintf(bad, sizeof bad, "%s/bad.gguf", tmpdir);
    size_t n;
    unsigned char *good = tu_slurp(model, &n), *buf = tu_malloc(n);
    const size_t head = 14176, step = tu_quick() ? 97 : 7;
    for (size_t len = 0; len < n; len += len < head ? step : 4099) { /* every region, the header densely */
        tu_spit(bad, good, len);
        kvz_gguf *g = (kvz_gguf *)1;
        const kvz_status st = kvz_gguf_open(bad, &g);
        if (!(st == KVZ_ERR_TRUNCATED || st == KVZ_ERR_FORMAT || st == KVZ_ERR_CORRUPT))
            fail_msg("truncated at %zu: status %d (%s)", len, (int)st, kvz_last_error());
        assert_null(g);
    }
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 90);
    const int flips = tu_quick() ? 300 : 3000;
    for (int i = 0; i < flips; i++) {
        memcpy(buf, good, n);
        const size_t at = tu_range(&r, 0, head - 1);
        buf[at] ^= (unsigned char)(1u << tu_range(&r, 0, 7));
        tu_spit(bad, buf, n);
        kvz_gguf *g = NULL;
        const kvz_status st = kvz_gguf_open(bad, &g);
        if (st == KVZ_OK) { /* e.g. a flip inside a token's text: still a well-formed file */
            for (uint64_t t = 0; t < g->n_tensors; t++)
                assert_true((const unsigned char *)g->tensors[t].data + g->tensors[t].n_bytes <=
                            (const unsigned char *)g->map + g->size);
            kvz_gguf_close(g);
        } else {
            assert_null(g);
            assert_true(strlen(kvz_last_error()) > 0);
        }
    }
    tu_spit(bad, (const unsigned char *)"KVZCACHE not a model", 20);
    kvz_gguf *g;
    assert_int_equal(kvz_gguf_open(bad, &g), KVZ_ERR_FORMAT);
    memcpy(buf, good, n);
    buf[4] = 2; /* version 2 */
    tu_spit(bad, buf, n);
    assert_int_equal(kvz_gguf_open(bad, &g), KVZ_ERR_VERSION);
    unlink(bad);
    rmdir(tmpdir);
    assert_int_equal(kvz_gguf_open("/nonexistent/x.gguf", &g), KVZ_ERR_IO);
    assert_int_equal(kvz_gguf_open(NULL, &g), KVZ_ERR_NULL);
    free(good), free(buf);
}

/* A GGUF file of one tensor "w" of dims [ne0, ne1] and type `type` whose data is `data_bytes`
 * bytes (alignment 32), written to path. */
static void write_one_tensor(const char *path, uint32_t type, uint64_t ne0, uint64_t ne1, size_t data_bytes)
{
    unsigned char b[4096] = {0};
    size_t o = 0;
#define PUT(v) (memcpy(b + o, &(v), sizeof(v)), o += sizeof(v))
    const uint32_t version = 3, n_dims = 2;
    const uint64_t n_tensors = 1, n_kv = 0, name_len = 1, offset = 0;
    memcpy(b, "GGUF", 4), o = 4;
    PUT(version), PUT(n_tensors), PUT(n_kv), PUT(name_len);
    b[o++] = 'w';
    PUT(n_dims), PUT(ne0), PUT(ne1), PUT(type), PUT(offset);
#undef PUT
    o = (o + 31) / 32 * 32;
    assert_true(o + data_bytes <= sizeof b);
    tu_spit(path, b, o + data_bytes);
}

/* Writes a metadata entry (key, type, vn value bytes); returns its size. */
static size_t put_kv(unsigned char *b, const char *key, uint64_t key_len, uint32_t type, const void *v,
                     size_t vn)
{
    memcpy(b, &key_len, 8), memcpy(b + 8, key, key_len), memcpy(b + 8 + key_len, &type, 4);
    memcpy(b + 12 + key_len, v, vn);
    return 12 + key_len + vn;
}

/* stories260K rewritten with general.alignment 1 and its tensor data starting at an address
 * that is not 4-byte aligned: the spec allows it, and the F32 weights the model used in place
 * were then read unaligned (UBSan in rmsnorm). They must be copied to aligned memory and give
 * the same logits. */
static void test_small_alignment(void **state)
{
    (void)state;
    TU_NEED_SHARED(model, TU_STORIES);
    kvz_gguf *g;
    assert_int_equal(kvz_gguf_open(model, &g), KVZ_OK);
    const unsigned char *map = g->map;
    const kvz_gguf_tensor *tl = &g->tensors[g->n_tensors - 1];
    const size_t infos = (size_t)((const unsigned char *)g->tensors[0].name.p - 8 - map);
    const size_t head =
        (size_t)((const unsigned char *)tl->name.p + tl->name.n + 4 + 8 * tl->n_dims + 4 + 8 - map);
    unsigned char *b = tu_malloc(g->size + 256);
    memcpy(b, map, infos);
    size_t o = infos;
    uint64_t n_kv = g->n_kv + 1;
    const uint32_t one = 1;
    o += put_kv(b + o, "general.alignment", 17, 4 /* u32 */, &one, 4);
    if ((o + head - infos) % 4 == 0) { /* an odd-sized entry makes the data start unaligned */
        const uint8_t x = 0;
        o += put_kv(b + o, "kv", 2, 0 /* u8 */, &x, 1), n_kv++;
    }
    memcpy(b + 16, &n_kv, 8);
    memcpy(b + o, map + infos, head - infos), o += head - infos;
    assert_true(o % 4 != 0);
    memcpy(b + o, map + g->data_offset, g->size - g->data_offset), o += g->size - g->data_offset;
    kvz_gguf_close(g);
    char dir[] = "/tmp/kvz-align-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/align1.gguf", dir);
    tu_spit(path, b, o);
    free(b);
    assert_int_equal(kvz_gguf_open(path, &g), KVZ_OK);
    assert_int_equal(g->alignment, 1);
    assert_true((uintptr_t)g->tensors[0].data % 4 != 0);
    kvz_gguf_close(g);

    kvz_model *ref, *m;
    const kvz_model_opts o32 = {.bf16_weights = 0};
    assert_int_equal(kvz_model_load(model, &o32, &ref), KVZ_OK);
    assert_int_equal(kvz_model_load(path, &o32, &m), KVZ_OK);
    for (size_t l = 0; l < m->hp.n_layers; l++) {
        assert_int_equal((uintptr_t)m->layers[l].attn_norm % 4, 0);
        assert_int_equal((uintptr_t)m->layers[l].q.w % 4, 0);
    }
    assert_int_equal((uintptr_t)m->output_norm % 4, 0);
    static const int32_t ids[4] = {1, 274, 287, 381};
    const size_t V = m->hp.n_vocab;
    float *a = tu_malloc(V * 4), *c = tu_malloc(V * 4);
    kvz_cache *ca, *cc;
    assert_int_equal(kvz_model_cache_create(ref, KVZ_DTYPE_F32, &ca), KVZ_OK);
    assert_int_equal(kvz_model_cache_create(m, KVZ_DTYPE_F32, &cc), KVZ_OK);
    assert_int_equal(kvz_model_prefill(ref, (kvz_kv_target){ca, NULL}, ids, 4, 0, a), KVZ_OK);
    assert_int_equal(kvz_model_prefill(m, (kvz_kv_target){cc, NULL}, ids, 4, 0, c), KVZ_OK);
    assert_memory_equal(a, c, V * 4);
    kvz_cache_destroy(ca), kvz_cache_destroy(cc);
    free(a), free(c);
    kvz_model_free(ref), kvz_model_free(m);
    unlink(path);
    rmdir(dir);
}

/* Every quantized type is read when its sizes agree; a row that is not whole blocks, data that
 * runs past the file and a type outside the table are refused with the tensor's and the type's
 * names. */
static void test_tensor_types(void **state)
{
    (void)state;
    char dir[] = "/tmp/kvz-gguf-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.gguf", dir);
    static const struct {
        uint32_t type, block, bytes;
        const char *name;
    } types[] = {{KVZ_GGML_Q4_0, 32, 18, "Q4_0"},   {KVZ_GGML_Q4_1, 32, 20, "Q4_1"},
                 {KVZ_GGML_Q5_0, 32, 22, "Q5_0"},   {KVZ_GGML_Q5_1, 32, 24, "Q5_1"},
                 {KVZ_GGML_Q8_0, 32, 34, "Q8_0"},   {KVZ_GGML_Q2_K, 256, 84, "Q2_K"},
                 {KVZ_GGML_Q3_K, 256, 110, "Q3_K"}, {KVZ_GGML_Q4_K, 256, 144, "Q4_K"},
                 {KVZ_GGML_Q5_K, 256, 176, "Q5_K"}, {KVZ_GGML_Q6_K, 256, 210, "Q6_K"}};
    kvz_gguf *g;
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        const uint64_t ne0 = 2 * types[i].block, ne1 = 3; /* six blocks */
        const size_t bytes = 6 * types[i].bytes;
        assert_string_equal(kvz_ggml_type_of(types[i].type)->name, types[i].name);
        write_one_tensor(path, types[i].type, ne0, ne1, bytes);
        assert_int_equal(kvz_gguf_open(path, &g), KVZ_OK);
        assert_int_equal(g->tensors[0].n_bytes, bytes);
        kvz_gguf_close(g);
        write_one_tensor(path, types[i].type, ne0, ne1, bytes - 1); /* the last block cut */
        assert_int_equal(kvz_gguf_open(path, &g), KVZ_ERR_TRUNCATED);
        assert_null(g);
        write_one_tensor(path, types[i].type, ne0 + 16, ne1, bytes + types[i].bytes); /* half a block a row */
        assert_int_equal(kvz_gguf_open(path, &g), KVZ_ERR_CORRUPT);
        assert_non_null(strstr(kvz_last_error(), types[i].name));
    }
    write_one_tensor(path, 16, 256, 1, 66); /* IQ2_XXS: a ggml type this reader does not know */
    assert_int_equal(kvz_gguf_open(path, &g), KVZ_ERR_UNSUPPORTED);
    assert_non_null(strstr(kvz_last_error(), "IQ2_XXS"));
    assert_non_null(strstr(kvz_last_error(), "tensor w"));
    write_one_tensor(path, 77, 32, 1, 64); /* no ggml type at all */
    assert_int_equal(kvz_gguf_open(path, &g), KVZ_ERR_UNSUPPORTED);
    assert_non_null(strstr(kvz_last_error(), "unknown (77)"));
    assert_null(kvz_ggml_type_of(9));
    assert_null(kvz_ggml_type_of(1000));
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_tensor_types),
        cmocka_unit_test(test_small_alignment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
