/* libFuzzer harness for the tokenizers: arbitrary bytes (valid UTF-8 or not) encoded by real vocabularies
 * loaded once, the ids checked against the vocabulary, decoded and spelled piece by piece. The first byte
 * picks the vocabulary and the flags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "cli/model_dir.h"
#include "model/tokenizer.h"

#define MAX_TOK 4

static kvz_tokenizer *toks[MAX_TOK];
static size_t n_toks;

static void load(const char *path)
{
    kvz_gguf *g;
    kvz_tokenizer *t;
    if (n_toks == MAX_TOK || kvz_gguf_open(path, &g) != KVZ_OK)
        return;
    if (kvz_tokenizer_from_gguf(g, &t) != KVZ_OK)
        fuzz_fail("%s has no tokenizer: %s", path, kvz_last_error());
    kvz_gguf_close(g);
    toks[n_toks++] = t;
    fprintf(stderr, "fuzz_tokenizer: vocabulary %zu from %s\n", kvz_tokenizer_vocab(t), path);
}

static void load_model(const char *file) /* from the model cache, where .ci/fetch-models puts them */
{
    char path[1024];
    kvz_model_cache_path(file, path, sizeof path);
    load(path);
}

/* Byte-level BPE (SmolLM2), SentencePiece with byte fallback and many special tokens (Gemma 3) and a
 * small SentencePiece vocabulary (stories260K in ../shared), each when present; none is an error. */
static void init(void)
{
    const char *tier = getenv("KVZ_TEST_MODELS");
    if (tier && !strcmp(tier, "0")) { /* make check's tier reads no model (tests/testutil.h) */
        fprintf(stderr, "fuzz_tokenizer: a test of the model tier (make check-models runs it)\n");
        exit(77);
    }
    load_model("SmolLM2-135M-Instruct.Q4_1.gguf");
    load_model("gemma-3-270m-q4_k_m.gguf");
    const char *shared = getenv("KVZ_SHARED_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", shared && *shared ? shared : KVZ_SHARED_DIR);
    load(path);
    if (!n_toks) {
        fprintf(stderr,
                "fuzz_tokenizer: no model with a tokenizer (run .ci/fetch-models, or set KVZ_SHARED_DIR)\n");
        exit(77);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!n_toks)
        init();
    if (!size)
        return 0;
    const kvz_tokenizer *t = toks[data[0] % n_toks];
    const int add_bos = data[0] >> 4 & 1, parse_special = data[0] >> 5 & 1, render = data[0] >> 6 & 1;
    int32_t *ids;
    size_t n;
    const kvz_status st =
        kvz_tokenizer_encode(t, (const char *)data + 1, size - 1, add_bos, parse_special, &ids, &n);
    if (st == KVZ_ERR_UNSUPPORTED) /* a byte this vocabulary cannot spell */
        return 0;
    if (st != KVZ_OK)
        fuzz_fail("encoding %zu bytes failed: %s", size - 1, kvz_last_error());
    const size_t vocab = kvz_tokenizer_vocab(t);
    char buf[256];
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= vocab)
            fuzz_fail("id %d of a vocabulary of %zu", ids[i], vocab);
        const size_t len = kvz_tokenizer_piece(t, ids[i], render, buf, sizeof buf);
        if (len < sizeof buf && buf[len] != '\0')
            fuzz_fail("piece %d is not terminated", ids[i]);
    }
    char *text;
    if (kvz_tokenizer_decode(t, ids, n, 1, &text) != KVZ_OK)
        fuzz_fail("decoding the ids of an encoding failed: %s", kvz_last_error());
    free(text);
    free(ids);
    return 0;
}
