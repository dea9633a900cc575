/* libFuzzer harness for kvz_model_load: hyper-parameters, the tensor directory checked against them and
 * the weights dequantized; a model that loads then gets its tokenizer and chat pieces from the file and
 * runs a few tokens through every layer, into a cache and into a query's tail. */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "fuzz_util.h"
#include "model/chat_template.h"
#include "model/model.h"
#include "model/tokenizer.h"

/* Elements the loader may convert per input: each tensor is converted at most once (to f32 at most),
 * and tensors may share their bytes in the file, so a 64 KiB input could otherwise ask for gigabytes
 * of weights, each execution slow and the RSS limit in reach. */
#define MAX_ELEMENTS ((uint64_t)1 << 22)
#define MAX_TOKENS   5

/* Whether the weights of path (when it is a GGUF file at all) are small enough to load quickly; a file
 * the reader refuses goes on to the loader, which must refuse it too, with a message. */
static int small_enough(const char *path)
{
    kvz_gguf *g;
    if (kvz_gguf_open(path, &g) != KVZ_OK)
        return 1;
    uint64_t total = 0;
    for (uint64_t i = 0; i < g->n_tensors && total <= MAX_ELEMENTS; i++)
        total += g->tensors[i].n_elements < MAX_ELEMENTS ? g->tensors[i].n_elements : MAX_ELEMENTS + 1;
    kvz_gguf_close(g);
    return total <= MAX_ELEMENTS;
}

/* A matrix the loader kept has its values: dense ones, or blocks (KVZ_WFMT_BLOCKS). */
static int has_values(const kvz_linear *l)
{
    return l->wtype == KVZ_WFMT_BLOCKS ? l->blocks != NULL : l->w != NULL;
}

static void check_shape(const kvz_model *m)
{
    const kvz_hparams *hp = &m->hp;
    if (!hp->n_layers || !hp->n_embd || !hp->n_head || !hp->n_head_kv || hp->n_head % hp->n_head_kv ||
        !hp->head_dim || hp->head_dim > 256 || hp->rope_dim > hp->head_dim || hp->rope_dim % 2 || !hp->n_ff ||
        !hp->n_vocab || !(hp->eps > 0) || !(hp->rope_base > 0))
        fuzz_fail(
            "a loaded model has an inconsistent shape: %zu layers, embedding %zu, heads %zu / %zu of %zu, "
            "rope %zu, ffn %zu, vocabulary %zu",
            hp->n_layers, hp->n_embd, hp->n_head, hp->n_head_kv, hp->head_dim, hp->rope_dim, hp->n_ff,
            hp->n_vocab);
    if (m->tok_embd->dims[0] != hp->n_embd || m->tok_embd->dims[1] != hp->n_vocab ||
        m->output.in != hp->n_embd || m->output.out != hp->n_vocab)
        fuzz_fail("the embedding or LM head disagrees with the shape");
    for (size_t l = 0; l < hp->n_layers; l++) {
        const kvz_layer_weights *w = &m->layers[l];
        if (!w->attn_norm || !w->ffn_norm || !has_values(&w->q) || !has_values(&w->k) || !has_values(&w->v) ||
            !has_values(&w->o) || !has_values(&w->gate) || !has_values(&w->up) || !has_values(&w->down) ||
            w->q.out != hp->n_head * hp->head_dim || w->k.out != hp->n_head_kv * hp->head_dim ||
            w->down.in != hp->n_ff)
            fuzz_fail("layer %zu of a loaded model lacks weights or has the wrong shape", l);
    }
}

/* Ids for the run: the tokenizer's encoding of the family's system prefix when the file has a
 * tokenizer, else the first ids of the vocabulary. */
static size_t token_ids(const kvz_model *m, int32_t *ids)
{
    kvz_tokenizer *tok;
    size_t n = 0;
    kvz_clear_error();
    if (kvz_tokenizer_from_gguf(m->gguf, &tok) == KVZ_OK) {
        kvz_chat_pieces p;
        if (kvz_chat_pieces_for(kvz_chat_family_of(m), 0, &p) != KVZ_OK)
            fuzz_fail("no chat pieces for the family the model names: %s", kvz_last_error());
        int32_t *enc;
        size_t n_enc;
        const kvz_status st = kvz_tokenizer_encode(tok, p.sys_prefix, strlen(p.sys_prefix), 1, 1, &enc, &n_enc);
        if (st == KVZ_OK) {
            for (; n < n_enc && n < MAX_TOKENS; n++)
                ids[n] = enc[n];
            free(enc);
        } else if (st != KVZ_ERR_UNSUPPORTED) /* a byte the vocabulary cannot spell */
            fuzz_fail("encoding the chat prefix failed: %s", kvz_last_error());
        kvz_tokenizer_free(tok);
    } else if (!*kvz_last_error())
        fuzz_fail("a refused tokenizer has no message");
    for (; n < 2; n++)
        ids[n] = (int32_t)(n % m->hp.n_vocab);
    return n;
}

/* A prefill's outcome: an id outside the model's vocabulary (the tokenizer's may be larger) is refused,
 * and nothing else may be. */
static void check_run(kvz_status st, const char *what)
{
    /* (each call's message was cleared before it) */
    if (st != KVZ_OK && st != KVZ_ERR_INVALID_ARG && st != KVZ_ERR_NOMEM)
        fuzz_fail("%s of a loaded model failed: %s", what, kvz_last_error());
    if (st != KVZ_OK && !*kvz_last_error())
        fuzz_fail("%s failed without a message", what);
}

static void run(kvz_model *m)
{
    int32_t ids[MAX_TOKENS];
    const size_t n = token_ids(m, ids);
    float *logits = malloc(m->hp.n_vocab * sizeof *logits);
    kvz_cache *c;
    if (!logits || kvz_model_cache_create(m, KVZ_DTYPE_F32, &c) != KVZ_OK) {
        free(logits);
        return; /* no memory: nothing the loader did */
    }
    /* chunks of 2: a layer runs more than once, onto rows it appended itself */
    kvz_clear_error();
    check_run(kvz_model_prefill(m, (kvz_kv_target){c, NULL}, ids, n, 2, logits), "a prefill into a cache");
    kvz_query *q;
    if (kvz_query_create(c, &q) == KVZ_OK) {
        kvz_clear_error();
        check_run(kvz_model_prefill(m, (kvz_kv_target){NULL, q}, ids, 1, 0, logits), "a prefill into a query");
        kvz_query_destroy(q);
    }
    kvz_cache_destroy(c);
    free(logits);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kvz_set_num_threads(1);
    const char *path = fuzz_write("in.gguf", data, size);
    if (!small_enough(path))
        return 0;
    kvz_model *m = (kvz_model *)&m; /* not NULL: a refusal must set it to NULL */
    /* odd sizes convert every weight to f32, even ones let the CPU choose (bf16 with AVX512_BF16) */
    const kvz_model_opts opts = {.bf16_weights = size % 2 ? 0 : -1};
    kvz_clear_error(); /* a refusal's message is its own, not one left from an earlier input */
    const kvz_status st = kvz_model_load(path, &opts, &m);
    if (st != KVZ_OK) {
        if (m)
            fuzz_fail("a refused model was returned");
        if (!*kvz_last_error())
            fuzz_fail("kvz_model_load failed (status %d) without a message", (int)st);
        return 0;
    }
    check_shape(m);
    run(m);
    kvz_model_free(m);
    return 0;
}
