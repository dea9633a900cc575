/* kvz_model.h's token-level calls (kvz_lm_tokenize's flags, kvz_lm_new_cache, kvz_lm_prefill into a
 * cache or a query's tail, kvz_lm_decode, kvz_lm_is_eog, kvz_lm_detokenize's flags) on the shared
 * stories260K model against the tokenizer and greedy vectors the shared README publishes (llama2.c's
 * run.c on the same model), vocab_only, the prompt pieces and question turns on SmolLM2 against the
 * texts spec/kvzip.md gives them, kvz_lm_compress_ids against kvz_lm_compress and the host API's selection,
 * kvz_lm_score_ids against kvz_lm_compress_ids, kvz_lm_prefill_logits against one-id prefills, and the
 * refusals. The model tier: skipped without ../shared. */
#include <stdarg.h>
#include <math.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kvz_model.h"
#include "testutil.h"

/* The shared README's vectors: the ids of "Tom had a red kite. One day" with BOS, greedy ids from BOS
 * alone, and the greedy continuation of that text (f32 keys and values). */
static const int32_t TOM[] = {1, 274, 287, 381, 261, 352, 266, 409, 275, 411, 426, 385, 328};
static const int32_t FROM_BOS[] = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421,
                                   395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292};
static const int32_t TOM_NEXT[] = {432, 281, 272, 277, 264, 261, 370, 432, 352, 266};
#define N_OF(a) (sizeof(a) / sizeof(a)[0])

static kvz_lm *lm;
static kvz_lm_info info;

static int setup(void **state)
{
    (void)state;
    const char *path = tu_shared_file(TU_STORIES);
    if (!path)
        return 0; /* each test skips */
    const kvz_lm_config c = {.struct_size = sizeof c, .weights = KVZ_WEIGHTS_F32};
    if (kvz_lm_open(path, &c, &lm) != KVZ_OK)
        return -1;
    info.struct_size = sizeof info;
    return kvz_lm_get_info(lm, &info) == KVZ_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    kvz_lm_close(lm);
    return 0;
}

#define NEED_MODEL()                                                                                           \
    do {                                                                                                       \
        if (!lm) {                                                                                             \
            skip();                                                                                            \
            return;                                                                                            \
        }                                                                                                      \
    } while (0)

static size_t rows(const kvz_cache *c)
{
    size_t n = 0;
    assert_int_equal(kvz_cache_length(c, 0, 0, &n), KVZ_OK);
    return n;
}

static void test_tokenize_flags(void **state)
{
    (void)state;
    NEED_MODEL();
    const char *text = "Tom had a red kite. One day";
    int32_t ids[32];
    size_t n = 0;
    assert_int_equal(kvz_lm_tokenize(lm, text, KVZ_TOKENIZE_BOS | KVZ_TOKENIZE_SPECIAL, ids, N_OF(ids), &n),
                     KVZ_OK);
    assert_int_equal(n, N_OF(TOM));
    assert_memory_equal(ids, TOM, sizeof TOM);
    assert_int_equal(info.bos, TOM[0]);
    /* without the flag, no BOS */
    assert_int_equal(kvz_lm_tokenize(lm, text, 0, ids, N_OF(ids), &n), KVZ_OK);
    assert_int_equal(n, N_OF(TOM) - 1);
    assert_memory_equal(ids, TOM + 1, sizeof TOM - sizeof TOM[0]);
    /* counting, then too little room: the count and a refusal */
    assert_int_equal(kvz_lm_tokenize(lm, text, KVZ_TOKENIZE_BOS, NULL, 0, &n), KVZ_OK);
    assert_int_equal(n, N_OF(TOM));
    assert_int_equal(kvz_lm_tokenize(lm, text, KVZ_TOKENIZE_BOS, ids, 3, &n), KVZ_ERR_INVALID_ARG);
    assert_int_equal(n, N_OF(TOM));
    assert_int_equal(kvz_lm_tokenize(lm, text, 4, ids, N_OF(ids), &n), KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "flags"));
}

/* Greedy from BOS through a cache of our own: the published ids, each fed but the last. */
static void test_greedy_from_bos(void **state)
{
    (void)state;
    NEED_MODEL();
    kvz_cache *c = NULL;
    float *logits = tu_malloc(info.n_vocab * sizeof *logits);
    int32_t out[N_OF(FROM_BOS)];
    size_t n_out = 0;
    assert_int_equal(kvz_lm_new_cache(lm, KVZ_DTYPE_F32, &c), KVZ_OK);
    assert_int_equal(kvz_lm_prefill(lm, c, NULL, TOM, 1, logits), KVZ_OK);
    const kvz_lm_gen_opts go = {.struct_size = sizeof go, .max_tokens = N_OF(out), .no_stop = 1};
    assert_int_equal(kvz_lm_decode(lm, c, NULL, logits, &go, out, &n_out), KVZ_OK);
    assert_int_equal(n_out, N_OF(FROM_BOS));
    assert_memory_equal(out, FROM_BOS, sizeof FROM_BOS);
    assert_int_equal(rows(c), 1 + N_OF(FROM_BOS) - 1);
    /* its text starts the document: no space before "Once" */
    char text[256];
    size_t len = 0;
    assert_int_equal(kvz_lm_detokenize(lm, out, 3, KVZ_DETOKENIZE_START, text, sizeof text, &len), KVZ_OK);
    assert_string_equal(text, "Once upon a");
    assert_int_equal(len, strlen("Once upon a"));
    assert_int_equal(kvz_lm_detokenize(lm, out, 3, 0, text, sizeof text, &len), KVZ_OK);
    assert_string_equal(text, " Once upon a");
    assert_int_equal(kvz_lm_detokenize(lm, out, 3, 4, text, sizeof text, &len), KVZ_ERR_INVALID_ARG);
    /* BOS, a control token, is left out unless asked for; with it, the text's first space stays */
    assert_int_equal(kvz_lm_detokenize(lm, TOM, N_OF(TOM), KVZ_DETOKENIZE_START, text, sizeof text, &len),
                     KVZ_OK);
    assert_string_equal(text, "Tom had a red kite. One day");
    assert_int_equal(kvz_lm_detokenize(lm, TOM, N_OF(TOM), KVZ_DETOKENIZE_START | KVZ_DETOKENIZE_SPECIAL, text,
                                       sizeof text, &len),
                     KVZ_OK);
    assert_string_equal(text, "<s> Tom had a red kite. One day");
    kvz_cache_destroy(c);
    free(logits);
}

/* The text's first ids in a cache, the rest through a query's tail: the published continuation, and the
 * cache as it was. */
static void test_query_tail(void **state)
{
    (void)state;
    NEED_MODEL();
    kvz_cache *c = NULL;
    kvz_query *q = NULL;
    float *logits = tu_malloc(info.n_vocab * sizeof *logits);
    int32_t out[N_OF(TOM_NEXT)];
    size_t n_out = 0;
    const size_t split = 6;
    assert_int_equal(kvz_lm_new_cache(lm, KVZ_DTYPE_F32, &c), KVZ_OK);
    assert_int_equal(kvz_lm_prefill(lm, c, NULL, TOM, split, NULL), KVZ_OK);
    assert_int_equal(kvz_query_create(c, &q), KVZ_OK);
    assert_int_equal(kvz_lm_prefill(lm, NULL, q, TOM + split, N_OF(TOM) - split, logits), KVZ_OK);
    const kvz_lm_gen_opts go = {.struct_size = sizeof go, .max_tokens = N_OF(out), .no_stop = 1};
    assert_int_equal(kvz_lm_decode(lm, NULL, q, logits, &go, out, &n_out), KVZ_OK);
    assert_int_equal(n_out, N_OF(TOM_NEXT));
    assert_memory_equal(out, TOM_NEXT, sizeof TOM_NEXT);
    assert_int_equal(rows(c), split);
    kvz_query_destroy(q);
    kvz_cache_destroy(c);
    free(logits);
}

/* Unless no_stop, decoding ends after the first end-of-turn id, which is returned. */
static void test_stop(void **state)
{
    (void)state;
    NEED_MODEL();
    /* logits that make the end-of-text id the greedy choice */
    int32_t eog = -1;
    for (int32_t id = 0; id < (int32_t)info.n_vocab && eog < 0; id++)
        if (kvz_lm_is_eog(lm, id))
            eog = id;
    assert_true(eog >= 0);
    assert_false(kvz_lm_is_eog(lm, TOM[1]));
    assert_false(kvz_lm_is_eog(NULL, eog));
    float *logits = tu_calloc(info.n_vocab, sizeof *logits);
    logits[eog] = 1;
    kvz_cache *c = NULL;
    int32_t out[4];
    size_t n_out = 9;
    assert_int_equal(kvz_lm_new_cache(lm, KVZ_DTYPE_F32, &c), KVZ_OK);
    assert_int_equal(kvz_lm_prefill(lm, c, NULL, TOM, 1, NULL), KVZ_OK);
    const kvz_lm_gen_opts go = {.struct_size = sizeof go, .max_tokens = N_OF(out)};
    assert_int_equal(kvz_lm_decode(lm, c, NULL, logits, &go, out, &n_out), KVZ_OK);
    assert_int_equal(n_out, 1);
    assert_int_equal(out[0], eog);
    assert_int_equal(rows(c), 1);
    kvz_cache_destroy(c);
    free(logits);
}

/* vocab_only: the tokenizer and the file's identity without the weights; the model's calls refused. */
static void test_vocab_only(void **state)
{
    (void)state;
    NEED_MODEL();
    const kvz_lm_config c = {.struct_size = sizeof c, .vocab_only = 1};
    kvz_lm *v = NULL;
    assert_int_equal(kvz_lm_open(tu_shared_file(TU_STORIES), &c, &v), KVZ_OK);
    int32_t ids[32];
    size_t n = 0;
    assert_int_equal(kvz_lm_tokenize(v, "Tom had a red kite. One day", KVZ_TOKENIZE_BOS, ids, N_OF(ids), &n),
                     KVZ_OK);
    assert_int_equal(n, N_OF(TOM));
    assert_memory_equal(ids, TOM, sizeof TOM);
    char text[64];
    size_t len = 0;
    assert_int_equal(kvz_lm_detokenize(v, FROM_BOS, 3, KVZ_DETOKENIZE_START, text, sizeof text, &len), KVZ_OK);
    assert_string_equal(text, "Once upon a");
    kvz_lm_info vi = {.struct_size = sizeof vi};
    assert_int_equal(kvz_lm_get_info(v, &vi), KVZ_OK);
    assert_string_equal(vi.arch, info.arch);
    assert_string_equal(vi.chat, info.chat);
    assert_int_equal(vi.n_vocab, info.n_vocab);
    assert_int_equal(vi.bos, TOM[0]);
    assert_memory_equal(vi.model_fingerprint, info.model_fingerprint, sizeof vi.model_fingerprint);
    assert_int_equal(vi.n_layers, 0);
    assert_int_equal(vi.n_params, 0);
    /* the tensor directory: 48 tensors, all F32 (../shared/models/README.md), with or without the weights */
    for (int k = 0; k < 2; k++) {
        const char *name = NULL;
        size_t tensors = 0, n_types = 0;
        assert_int_equal(kvz_lm_tensor_type(k ? v : lm, 0, &name, &tensors, &n_types), KVZ_OK);
        assert_string_equal(name, "F32");
        assert_int_equal(tensors, 48);
        assert_int_equal(n_types, 1);
        assert_int_equal(kvz_lm_tensor_type(k ? v : lm, 1, &name, &tensors, &n_types), KVZ_ERR_INVALID_ARG);
        assert_int_equal(n_types, 1);
    }
    kvz_cache *cache = NULL;
    assert_int_equal(kvz_lm_new_cache(v, KVZ_DTYPE_F32, &cache), KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "vocab_only"));
    assert_int_equal(kvz_lm_new_cache(lm, KVZ_DTYPE_F32, &cache), KVZ_OK);
    assert_int_equal(kvz_lm_prefill(v, cache, NULL, TOM, 1, NULL), KVZ_ERR_INVALID_ARG);
    char *answer = NULL;
    assert_int_equal(kvz_lm_generate(v, "Tom", NULL, &answer), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_lm_ask(v, cache, "Who?", NULL, &answer), KVZ_ERR_INVALID_ARG);
    assert_null(answer);
    kvz_cache *made = NULL;
    assert_int_equal(kvz_lm_compress(v, "Tom had a red kite.", NULL, &made), KVZ_ERR_INVALID_ARG);
    assert_null(made);
    kvz_cache_destroy(cache);
    kvz_lm_close(v);
}

/* The ids of n tokens of text (SPECIAL or not) in a tu_malloc'ed array. */
static int32_t *ids_of(kvz_lm *m, const char *text, unsigned flags, size_t *n)
{
    assert_int_equal(kvz_lm_tokenize(m, text, flags, NULL, 0, n), KVZ_OK);
    int32_t *ids = tu_malloc((*n + 1) * sizeof *ids);
    assert_int_equal(kvz_lm_tokenize(m, text, flags, ids, *n, n), KVZ_OK);
    return ids;
}

/* SmolLM2's chat template (ChatML) pieces and question turns, against the texts spec/kvzip.md gives them
 * (§1.1, §4.4): each piece encoded on its own. */
static void test_pieces(void **state)
{
    (void)state;
    const char *path;
    TU_NEED_MODEL(path, TU_SMOLLM2);
    kvz_lm *m = NULL;
    assert_int_equal(kvz_lm_open(path, NULL, &m), KVZ_OK);
    size_t n = 0, nw = 0, nq = 0;
    int32_t got[64];
    int32_t *want = ids_of(m, "<|im_end|>\n<|im_start|>assistant\n", KVZ_TOKENIZE_SPECIAL, &nw);
    assert_int_equal(kvz_lm_piece_ids(m, KVZ_PIECE_POSTFIX, got, 64, &n), KVZ_OK);
    assert_int_equal(n, nw);
    assert_memory_equal(got, want, n * sizeof *got);
    free(want);
    want = ids_of(m, "\n\nRepeat the previous context exactly.", 0, &nw);
    assert_int_equal(kvz_lm_piece_ids(m, KVZ_PIECE_REPEAT_FIRST, got, 64, &n), KVZ_OK);
    assert_int_equal(n, nw);
    assert_memory_equal(got, want, n * sizeof *got);
    free(want);
    /* the system prompt: the ChatML prefix, its instruction after the user turn's opener */
    want = ids_of(m, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n",
                  KVZ_TOKENIZE_SPECIAL, &nw);
    assert_int_equal(kvz_lm_piece_ids(m, KVZ_PIECE_SYSTEM, got, 64, &n), KVZ_OK);
    assert_true(n > nw);
    assert_memory_equal(got, want, nw * sizeof *got);
    free(want);
    /* a question: enc("\n\n" + question) ++ the postfix, or ++ the caller's */
    int32_t *q = ids_of(m, "\n\nWho built the light?", 0, &nq);
    size_t npost = 0;
    assert_int_equal(kvz_lm_piece_ids(m, KVZ_PIECE_POSTFIX, NULL, 0, &npost), KVZ_OK);
    assert_int_equal(kvz_lm_question_ids(m, "Who built the light?", NULL, 0, got, 64, &n), KVZ_OK);
    assert_int_equal(n, nq + npost);
    assert_memory_equal(got, q, nq * sizeof *got);
    const int32_t mine[2] = {5, 6};
    assert_int_equal(kvz_lm_question_ids(m, "Who built the light?", mine, 2, got, 64, &n), KVZ_OK);
    assert_int_equal(n, nq + 2);
    assert_memory_equal(got, q, nq * sizeof *got);
    assert_memory_equal(got + nq, mine, sizeof mine);
    free(q);
    /* refusals */
    assert_int_equal(kvz_lm_piece_ids(m, (kvz_lm_piece)4, got, 64, &n), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_lm_question_ids(m, "Who built the light?", NULL, 0, got, 2, &n), KVZ_ERR_INVALID_ARG);
    assert_int_equal(n, nq + npost);
    assert_int_equal(kvz_lm_question_ids(m, "Who?", NULL, 3, got, 64, &n), KVZ_ERR_NULL);
    kvz_lm_close(m);
}

static void test_refusals(void **state)
{
    (void)state;
    NEED_MODEL();
    kvz_cache *c = NULL, *other = NULL;
    kvz_query *q = NULL;
    float *logits = tu_malloc(info.n_vocab * sizeof *logits);
    int32_t out[4];
    size_t n_out = 0;
    assert_int_equal(kvz_lm_new_cache(lm, KVZ_DTYPE_F32, &c), KVZ_OK);
    assert_int_equal(kvz_query_create(c, &q), KVZ_OK);
    /* both targets, neither */
    assert_int_equal(kvz_lm_prefill(lm, c, q, TOM, 1, logits), KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "both"));
    assert_int_equal(kvz_lm_prefill(lm, NULL, NULL, TOM, 1, logits), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_lm_decode(lm, c, q, logits, NULL, out, &n_out), KVZ_ERR_INVALID_ARG);
    /* no ids, an id outside the vocabulary: nothing appended */
    assert_int_equal(kvz_lm_prefill(lm, c, NULL, TOM, 0, logits), KVZ_ERR_INVALID_ARG);
    const int32_t bad[] = {1, (int32_t)info.n_vocab};
    assert_int_equal(kvz_lm_prefill(lm, c, NULL, bad, 2, logits), KVZ_ERR_INVALID_ARG);
    assert_int_equal(rows(c), 0);
    /* NULLs */
    assert_int_equal(kvz_lm_prefill(NULL, c, NULL, TOM, 1, logits), KVZ_ERR_NULL);
    assert_int_equal(kvz_lm_prefill(lm, c, NULL, NULL, 1, logits), KVZ_ERR_NULL);
    assert_int_equal(kvz_lm_decode(lm, c, NULL, NULL, NULL, out, &n_out), KVZ_ERR_NULL);
    assert_int_equal(kvz_lm_decode(lm, c, NULL, logits, NULL, out, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_lm_new_cache(NULL, KVZ_DTYPE_F32, &other), KVZ_ERR_NULL);
    assert_null(other);
    assert_int_equal(kvz_lm_new_cache(lm, KVZ_DTYPE_F32, NULL), KVZ_ERR_NULL);
    /* a cache of another shape */
    const kvz_cache_config cc = {.struct_size = sizeof cc,
                                 .n_layers = info.n_layers,
                                 .n_kv_heads = info.n_kv_heads,
                                 .head_dim = info.head_dim * 2,
                                 .dtype = KVZ_DTYPE_F32};
    assert_int_equal(kvz_cache_create(&cc, &other), KVZ_OK);
    assert_int_equal(kvz_lm_prefill(lm, other, NULL, TOM, 1, logits), KVZ_ERR_MISMATCH);
    assert_int_equal(kvz_lm_decode(lm, other, NULL, logits, NULL, out, &n_out), KVZ_ERR_MISMATCH);
    assert_int_equal(n_out, 0);
    kvz_cache_destroy(other);
    kvz_query_destroy(q);
    kvz_cache_destroy(c);
    free(logits);
}

/* Whether two caches keep the same positions in every (layer, head). */
static void assert_same_rows(const kvz_cache *a, const kvz_cache *b)
{
    for (size_t l = 0; l < info.n_layers; l++)
        for (size_t h = 0; h < info.n_kv_heads; h++) {
            size_t na = 0, nb = 0;
            const int64_t *pa = NULL, *pb = NULL;
            assert_int_equal(kvz_cache_length(a, l, h, &na), KVZ_OK);
            assert_int_equal(kvz_cache_length(b, l, h, &nb), KVZ_OK);
            assert_int_equal(na, nb);
            assert_int_equal(kvz_cache_positions(a, l, h, &pa), KVZ_OK);
            assert_int_equal(kvz_cache_positions(b, l, h, &pb), KVZ_OK);
            assert_memory_equal(pa, pb, na * sizeof *pa);
        }
}

/* The context of the compression tests, and its ids (no BOS: the system prompt opens the cache). */
static const char STORY[] = "Tom had a red kite. One day the wind took it over the big tree and far away.";

static size_t story_ids(int32_t *ids, size_t cap)
{
    size_t n = 0;
    assert_int_equal(kvz_lm_tokenize(lm, STORY, 0, ids, cap, &n), KVZ_OK);
    return n;
}

/* kvz_lm_compress_ids: the same cache as kvz_lm_compress of the text; the scores it hands out are those it
 * selected by (the host API's kvz_kvzip_compress of a full cache by them keeps the same rows); a caller's
 * system prompt; the report. */
static void test_compress_ids(void **state)
{
    (void)state;
    NEED_MODEL();
    int32_t ids[64];
    const size_t n = story_ids(ids, N_OF(ids));
    const size_t L = info.n_layers, H = info.n_kv_heads;
    float *scores = tu_malloc(L * H * n * sizeof *scores);
    kvz_lm_compress_opts o = {.struct_size = sizeof o,
                              .policy = KVZ_POLICY_KVZIP_PAIR,
                              .ratio = 0.4,
                              .kv = KVZ_KV_F32,
                              .chunk = 8,
                              .scores = scores};
    kvz_lm_compress_report rep = {.struct_size = sizeof rep};
    kvz_cache *by_ids = NULL, *by_text = NULL, *full = NULL;
    assert_int_equal(kvz_lm_compress_ids(lm, ids, n, &o, &by_ids, &rep), KVZ_OK);
    assert_int_equal(rep.n_context, n);
    assert_int_equal(rep.passes, (n + 7) / 8);
    for (size_t i = 0; i < L * H * n; i++)
        assert_true(scores[i] >= 0 && scores[i] <= 1); /* maxima of softmax probabilities */
    o.scores = NULL;
    assert_int_equal(kvz_lm_compress(lm, STORY, &o, &by_text), KVZ_OK);
    assert_same_rows(by_ids, by_text);

    const kvz_lm_compress_opts keep_all = {.struct_size = sizeof keep_all, .kv = KVZ_KV_F32};
    assert_int_equal(kvz_lm_compress_ids(lm, ids, n, &keep_all, &full, NULL), KVZ_OK);
    assert_int_equal(rows(full), rep.n_sys + n);
    const kvz_policy_args pa = {.struct_size = sizeof pa, .policy = KVZ_POLICY_KVZIP_PAIR, .ratio = 0.4};
    size_t n_kept = 0;
    assert_int_equal(kvz_kvzip_compress(full, rep.n_sys, n, scores, &pa, &n_kept), KVZ_OK);
    assert_int_equal(n_kept, rep.n_kept);
    assert_same_rows(full, by_ids);
    kvz_cache_destroy(full), kvz_cache_destroy(by_text), kvz_cache_destroy(by_ids);

    /* a system prompt of the caller's: three ids before the context, kept */
    static const int32_t sys[] = {1, 274, 287};
    const kvz_lm_pieces pieces = {.struct_size = sizeof pieces, .ids = {[KVZ_PIECE_SYSTEM] = sys}, .n = {3}};
    o.pieces = &pieces;
    assert_int_equal(kvz_lm_compress_ids(lm, ids, n, &o, &by_ids, &rep), KVZ_OK);
    assert_int_equal(rep.n_sys, 3);
    const int64_t *pos = NULL;
    assert_int_equal(kvz_cache_positions(by_ids, 0, 0, &pos), KVZ_OK);
    assert_true(pos[0] == 0 && pos[1] == 1 && pos[2] == 2);
    kvz_cache_destroy(by_ids);
    free(scores);
}

/* kvz_lm_prefill_logits: every row as the one-id-at-a-time prefills give it, the last one's argmax the
 * README's greedy continuation. */
static void test_prefill_logits(void **state)
{
    (void)state;
    NEED_MODEL();
    const size_t n = N_OF(TOM), V = info.n_vocab;
    float *rows_at_once = tu_malloc(n * V * sizeof(float)), *one = tu_malloc(V * sizeof(float));
    kvz_cache *a = NULL, *b = NULL;
    assert_int_equal(kvz_lm_new_cache(lm, KVZ_DTYPE_F32, &a), KVZ_OK);
    assert_int_equal(kvz_lm_new_cache(lm, KVZ_DTYPE_F32, &b), KVZ_OK);
    assert_int_equal(kvz_lm_prefill_logits(lm, a, NULL, TOM, n, n, rows_at_once), KVZ_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(kvz_lm_prefill(lm, b, NULL, TOM + i, 1, one), KVZ_OK);
        for (size_t v = 0; v < V; v++)
            assert_float_equal(rows_at_once[i * V + v], one[v], 1e-3);
    }
    size_t best = 0;
    for (size_t v = 1; v < V; v++)
        best = rows_at_once[(n - 1) * V + v] > rows_at_once[(n - 1) * V + best] ? v : best;
    assert_int_equal(best, TOM_NEXT[0]);
    assert_int_equal(kvz_lm_prefill_logits(lm, a, NULL, TOM, 2, 3, one), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_lm_prefill_logits(lm, a, NULL, TOM, 2, 0, one), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_lm_prefill_logits(lm, a, NULL, TOM, 2, 1, NULL), KVZ_ERR_NULL);
    assert_int_equal(rows(a), n);
    kvz_cache_destroy(a), kvz_cache_destroy(b);
    free(rows_at_once), free(one);
}

/* kvz_lm_score_ids: the scores kvz_lm_compress_ids selects by, and a selection on a copy of its cache by
 * kvz.h's kvz_kvzip_compress keeps what kvz_lm_compress_ids keeps, for each family of scores. */
static void test_score_ids(void **state)
{
    (void)state;
    NEED_MODEL();
    int32_t ids[64];
    const size_t n = story_ids(ids, N_OF(ids));
    const size_t cnt = info.n_layers * info.n_kv_heads * n;
    float *want = tu_malloc(cnt * sizeof(float)), *got = tu_malloc(cnt * sizeof(float));
    static const struct {
        kvz_lm_scores kind;
        kvz_policy policy;
    } cases[] = {{KVZ_SCORES_KVZIP, KVZ_POLICY_KVZIP_PAIR},
                 {KVZ_SCORES_WINDOW, KVZ_POLICY_SNAPKV},
                 {KVZ_SCORES_H2O, KVZ_POLICY_H2O}};
    for (size_t k = 0; k < N_OF(cases); k++) {
        const kvz_lm_compress_opts o = {.struct_size = sizeof o,
                                        .policy = cases[k].policy,
                                        .ratio = 0.5,
                                        .kv = KVZ_KV_F32,
                                        .chunk = 8,
                                        .window = 4,
                                        .scores = want};
        kvz_lm_compress_report rep = {.struct_size = sizeof rep}, srep = {.struct_size = sizeof srep};
        kvz_cache *made = NULL, *scored = NULL, *copy = NULL;
        assert_int_equal(kvz_lm_compress_ids(lm, ids, n, &o, &made, &rep), KVZ_OK);
        assert_int_equal(kvz_lm_score_ids(lm, ids, n, cases[k].kind, &o, &scored, got, &srep), KVZ_OK);
        assert_memory_equal(got, want, cnt * sizeof(float));
        assert_int_equal(srep.n_sys, rep.n_sys);
        assert_int_equal(srep.passes, rep.passes);
        assert_int_equal(rows(scored), rep.n_sys + n); /* every row kept */
        const kvz_policy_args pa = {.struct_size = sizeof pa,
                                    .policy = cases[k].policy,
                                    .ratio = 0.5,
                                    .recent = cases[k].kind == KVZ_SCORES_KVZIP ? 0 : 4};
        assert_int_equal(kvz_cache_clone(scored, &copy), KVZ_OK);
        assert_int_equal(kvz_kvzip_compress(copy, rep.n_sys, n, got, &pa, NULL), KVZ_OK);
        assert_same_rows(copy, made);
        kvz_cache_destroy(copy), kvz_cache_destroy(scored), kvz_cache_destroy(made);
    }
    kvz_cache *c = (kvz_cache *)1;
    assert_int_equal(kvz_lm_score_ids(lm, ids, n, (kvz_lm_scores)3, NULL, &c, got, NULL), KVZ_ERR_INVALID_ARG);
    assert_null(c);
    assert_int_equal(kvz_lm_score_ids(lm, ids, n, KVZ_SCORES_KVZIP, NULL, &c, NULL, NULL), KVZ_ERR_NULL);
    free(want), free(got);
}

/* kvz_lm_fastkv against spec/fastkv.md's budgets (§2: T = floor(n_t tsp_rate) tokens go past the selecting
 * layer; a layer keeps floor(n_l rho_l) rows per KV head, rho = retain_rate up to it and retain_rate / tsp_rate
 * after; the window in every layer), and, keeping everything without TSP, the logits of a plain prefill. */
static void test_fastkv(void **state)
{
    (void)state;
    NEED_MODEL();
    char text[2048] = "";
    for (int i = 0; i < 12; i++)
        strcat(text, "Tom had a red kite. One day the wind took it over the big tree and far away. ");
    int32_t ids[512];
    size_t n = 0;
    assert_int_equal(kvz_lm_tokenize(lm, text, 0, ids, N_OF(ids), &n), KVZ_OK);
    const size_t L = info.n_layers, H = info.n_kv_heads, V = info.n_vocab;
    const kvz_lm_fastkv_opts o = {
        .struct_size = sizeof o, .tsp_rate = 0.25, .retain_rate = 0.1, .kv = KVZ_KV_F32};
    kvz_lm_fastkv_report rep = {.struct_size = sizeof rep};
    kvz_cache *c = NULL;
    float *logits = tu_malloc(V * sizeof(float)), *want = tu_malloc(V * sizeof(float));
    assert_int_equal(kvz_lm_fastkv(lm, ids, n, &o, &c, logits, &rep), KVZ_OK);
    const size_t n_all = rep.n_sys + n, t = L / 2, T = (size_t)floor((double)n_all * 0.25);
    assert_int_equal(rep.full_layers, t);
    assert_int_equal(rep.tsp_tokens, T);
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < H; h++) {
            size_t len = 0;
            const int64_t *pos = NULL;
            assert_int_equal(kvz_cache_length(c, l, h, &len), KVZ_OK);
            assert_int_equal(len, l < t ? (size_t)floor((double)n_all * 0.1) : (size_t)floor((double)T * 0.4));
            assert_int_equal(kvz_cache_positions(c, l, h, &pos), KVZ_OK);
            for (size_t w = 0; w < 8; w++) /* the window, in order at the end */
                assert_int_equal(pos[len - 8 + w], (int64_t)(n_all - 8 + w));
        }
    kvz_cache_destroy(c);

    /* everything kept, no selection: a plain prefill */
    const kvz_lm_fastkv_opts all = {.struct_size = sizeof all, .retain_rate = 1, .no_tsp = 1, .kv = KVZ_KV_F32};
    assert_int_equal(kvz_lm_fastkv(lm, ids, n, &all, &c, logits, &rep), KVZ_OK);
    assert_int_equal(rep.tsp_tokens, 0);
    assert_int_equal(rows(c), n_all);
    kvz_cache *plain = NULL;
    int32_t *sys_and_ids = tu_malloc(n_all * sizeof(int32_t));
    size_t n_sys = 0;
    assert_int_equal(kvz_lm_piece_ids(lm, KVZ_PIECE_SYSTEM, sys_and_ids, n_all, &n_sys), KVZ_OK);
    assert_int_equal(n_sys, rep.n_sys);
    memcpy(sys_and_ids + n_sys, ids, n * sizeof(int32_t));
    assert_int_equal(kvz_lm_new_cache(lm, KVZ_DTYPE_F32, &plain), KVZ_OK);
    assert_int_equal(kvz_lm_prefill(lm, plain, NULL, sys_and_ids, n_all, want), KVZ_OK);
    for (size_t v = 0; v < V; v++)
        assert_float_equal(logits[v], want[v], 1e-3);
    kvz_cache_destroy(plain), kvz_cache_destroy(c);

    const kvz_lm_fastkv_opts bad = {.struct_size = sizeof bad, .tsp_rate = 1.5};
    assert_int_equal(kvz_lm_fastkv(lm, ids, n, &bad, &c, NULL, NULL), KVZ_ERR_INVALID_ARG);
    const kvz_lm_fastkv_opts deep = {.struct_size = sizeof deep, .full_layers = L + 1};
    assert_int_equal(kvz_lm_fastkv(lm, ids, n, &deep, &c, NULL, NULL), KVZ_ERR_INVALID_ARG);
    assert_null(c);
    free(logits), free(want), free(sys_and_ids);
}

/* kvz_lm_compress_ids's refusals: nothing made, a message naming what is wrong. */
static void test_compress_refusals(void **state)
{
    (void)state;
    NEED_MODEL();
    const int32_t ids[] = {274, 287, 381, 261};
    float scores[1];
    kvz_cache *c = NULL;
    const kvz_lm_compress_opts none = {.struct_size = sizeof none, .scores = scores};
    assert_int_equal(kvz_lm_compress_ids(lm, ids, 4, &none, &c, NULL), KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "scores no tokens"));
    const kvz_lm_compress_opts head = {.struct_size = sizeof head, .policy = KVZ_POLICY_KVZIP_HEAD};
    assert_int_equal(kvz_lm_compress_ids(lm, ids, 4, &head, &c, NULL), KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "head_scores"));
    const kvz_lm_compress_opts kv = {.struct_size = sizeof kv, .kv = (kvz_lm_kv)9};
    assert_int_equal(kvz_lm_compress_ids(lm, ids, 4, &kv, &c, NULL), KVZ_ERR_INVALID_ARG);
    const kvz_lm_compress_opts mode = {.struct_size = sizeof mode, .mode = (kvz_select_mode)5};
    assert_int_equal(kvz_lm_compress_ids(lm, ids, 4, &mode, &c, NULL), KVZ_ERR_INVALID_ARG);
    const int32_t bad[] = {274, (int32_t)info.n_vocab};
    assert_int_equal(kvz_lm_compress_ids(lm, bad, 2, NULL, &c, NULL), KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "vocabulary"));
    const kvz_lm_pieces pieces = {
        .struct_size = sizeof pieces, .ids = {[KVZ_PIECE_POSTFIX] = bad}, .n = {0, 0, 0, 2}};
    const kvz_lm_compress_opts bad_piece = {.struct_size = sizeof bad_piece, .pieces = &pieces};
    assert_int_equal(kvz_lm_compress_ids(lm, ids, 4, &bad_piece, &c, NULL), KVZ_ERR_INVALID_ARG);
    assert_non_null(strstr(kvz_last_error(), "piece 3"));
    assert_int_equal(kvz_lm_compress_ids(lm, ids, 0, NULL, &c, NULL), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_lm_compress_ids(lm, NULL, 4, NULL, &c, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_lm_compress_ids(NULL, ids, 4, NULL, &c, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_lm_compress_ids(lm, ids, 4, NULL, NULL, NULL), KVZ_ERR_NULL);
    assert_null(c);
}

int main(void)
{
    if (tu_models_tier_off())
        return 77;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenize_flags),    cmocka_unit_test(test_greedy_from_bos),
        cmocka_unit_test(test_query_tail),        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_vocab_only),        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_refusals),          cmocka_unit_test(test_compress_ids),
        cmocka_unit_test(test_compress_refusals), cmocka_unit_test(test_prefill_logits),
        cmocka_unit_test(test_score_ids),         cmocka_unit_test(test_fastkv),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
