/* libFuzzer harness for the GGUF reader: header, metadata (every accessor), tensor directory, each
 * tensor's data through kvz_dequantize, and the tokenizer built from the metadata. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "model/dequant.h"
#include "model/gguf.h"
#include "model/tokenizer.h"

/* Elements dequantized per call and per input: enough for every block type, small enough that a
 * large tensor in a mutated file does not slow the run down. */
#define CHUNK     4096
#define MAX_ELEMS ((uint64_t)1 << 18)

static void metadata(const kvz_gguf *g)
{
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const kvz_gguf_kv *kv = &g->kv[i];
        char key[256];
        if (kv->key.n >= sizeof key || memchr(kv->key.p, 0, kv->key.n))
            continue; /* the accessors take a C string: a key they could not name */
        memcpy(key, kv->key.p, kv->key.n);
        key[kv->key.n] = '\0';
        int64_t iv;
        uint64_t uv;
        float fv;
        kvz_gguf_str s;
        (void)kvz_gguf_kv_int(kv, &iv);
        (void)kvz_gguf_get_u64(g, key, &uv);
        (void)kvz_gguf_get_f32(g, key, &fv);
        if (kvz_gguf_get_str(g, key, &s) == KVZ_OK && s.n &&
            (s.p < (const char *)g->map || s.p + s.n > (const char *)g->map + g->size))
            fuzz_fail("string %s lies outside the file", key);
        if (kv->type != KVZ_GGUF_ARRAY || kv->elem_type != KVZ_GGUF_STRING)
            continue;
        kvz_gguf_str *strs = malloc((kv->count ? kv->count : 1) * sizeof *strs);
        if (!strs)
            continue;
        if (kvz_gguf_array_strings(kv, strs) != KVZ_OK)
            fuzz_fail("string array %s refused after parsing", key);
        for (uint64_t k = 0; k < kv->count; k++)
            if (strs[k].n &&
                (strs[k].p < (const char *)g->map || strs[k].p + strs[k].n > (const char *)g->map + g->size))
                fuzz_fail("string %llu of %s lies outside the file", (unsigned long long)k, key);
        free(strs);
    }
}

static void tensors(const kvz_gguf *g)
{
    static float f32[CHUNK];
    static uint16_t bf16[CHUNK];
    const uint8_t *lo = (const uint8_t *)g->map + g->data_offset, *hi = (const uint8_t *)g->map + g->size;
    uint64_t budget = MAX_ELEMS;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const kvz_gguf_tensor *t = &g->tensors[i];
        const kvz_ggml_type *ty = kvz_ggml_type_of(t->type);
        const uint8_t *p = t->data;
        if (!ty || p < lo || t->n_bytes > (uint64_t)(hi - p))
            fuzz_fail("tensor %llu (type %u, %llu bytes) was accepted outside the data", (unsigned long long)i,
                      t->type, (unsigned long long)t->n_bytes);
        if (t->n_elements / ty->block * ty->bytes != t->n_bytes)
            fuzz_fail("tensor %llu has %llu bytes for %llu elements", (unsigned long long)i,
                      (unsigned long long)t->n_bytes, (unsigned long long)t->n_elements);
        /* every other tensor to bf16, which rounds through its own path */
        const kvz_dtype dt = i % 2 ? KVZ_DTYPE_BF16 : KVZ_DTYPE_F32;
        for (uint64_t done = 0; done < t->n_elements && budget;) {
            uint64_t n = t->n_elements - done;
            if (n > CHUNK)
                n = CHUNK;
            if (n > budget)
                n = budget;
            n -= n % ty->block;
            if (!n)
                break;
            const kvz_status st =
                kvz_dequantize(dt == KVZ_DTYPE_F32 ? (void *)f32 : (void *)bf16, dt, p, t->type, n);
            if (st != KVZ_OK)
                fuzz_fail("kvz_dequantize refused %s data the reader accepted: %s", ty->name, kvz_last_error());
            p += n / ty->block * ty->bytes;
            done += n, budget -= n;
        }
    }
}

static void tokenizer(const kvz_gguf *g)
{
    kvz_tokenizer *t;
    if (kvz_tokenizer_from_gguf(g, &t) != KVZ_OK)
        return;
    static const char text[] = "Once upon a time, 123 <s> caf\xc3\xa9 \xe2\x96\x81 \xf0\x9f\x99\x82\n";
    int32_t *ids;
    size_t n;
    if (kvz_tokenizer_encode(t, text, sizeof text - 1, 1, 1, &ids, &n) == KVZ_OK) {
        const size_t vocab = kvz_tokenizer_vocab(t);
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || (size_t)ids[i] >= vocab)
                fuzz_fail("the tokenizer gave id %d of a vocabulary of %zu", ids[i], vocab);
        char *back;
        if (kvz_tokenizer_decode(t, ids, n, 1, &back) != KVZ_OK)
            fuzz_fail("the tokenizer cannot decode its own ids: %s", kvz_last_error());
        free(back);
        free(ids);
    }
    kvz_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kvz_set_num_threads(1);
    kvz_gguf *g;
    if (kvz_gguf_open(fuzz_write("in.gguf", data, size), &g) != KVZ_OK)
        return 0;
    metadata(g);
    tensors(g);
    tokenizer(g);
    kvz_gguf_close(g);
    return 0;
}
