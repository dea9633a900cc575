/* The tokenizers (stories260K's SentencePiece vocabulary and synthetic byte-level BPE files, each against a
 * naive reference written here, and Qwen2's NFC normalizer; Llama 3's and Qwen2.5's vocabularies against npm
 * packages' ids, given KVZ_BPE_REF_DIR) and the chat-template pieces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/chat_template.h"
#include "model/gguf.h"
#include "model/tokenizer.h"
#include "testutil.h"

static const char *model; /* the shared stories260K model */
static char tmpdir[64];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Prints where got and want part when they differ; returns whether they are equal. */
static int ids_match(const int32_t *got, size_t n_got, const int32_t *want, size_t n_want, const char *what)
{
    size_t i = 0;
    while (i < n_got && i < n_want && got[i] == want[i])
        i++;
    if (i == n_got && i == n_want)
        return 1;
    fprintf(stderr, "%s: %zu ids, want %zu; first difference at %zu:\n  got ", what, n_got, n_want, i);
    for (size_t k = i; k < n_got && k < i + 16; k++)
        fprintf(stderr, " %d", (int)got[k]);
    fprintf(stderr, "\n  want");
    for (size_t k = i; k < n_want && k < i + 16; k++)
        fprintf(stderr, " %d", (int)want[k]);
    fprintf(stderr, "\n");
    return 0;
}

static void assert_ids(const int32_t *got, size_t n_got, const int32_t *want, size_t n_want, const char *what)
{
    if (!ids_match(got, n_got, want, n_want, what))
        fail_msg("token ids differ");
}

/* Length of a well-formed UTF-8 character at s[i] (continuation bytes checked), else 1. */
static size_t ref_char_len(const unsigned char *s, size_t n, size_t i)
{
    const unsigned c = s[i];
    const size_t k = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xC0 && c < 0xE0 ? 2 : 1;
    if (k > n - i)
        return 1;
    for (size_t j = 1; j < k; j++)
        if ((s[i + j] & 0xC0) != 0x80)
            return 1;
    return k;
}

/* ======================================================================================
 * stories260K: SentencePiece-style vocabulary
 * ====================================================================================== */

typedef struct voc {
    kvz_gguf *g;
    kvz_gguf_str *tok;
    float *score;
    int32_t *type;
    size_t n;
} voc;

static void voc_open(voc *v)
{
    assert_int_equal(kvz_gguf_open(model, &v->g), KVZ_OK);
    const kvz_gguf_kv *kv = kvz_gguf_find(v->g, "tokenizer.ggml.tokens");
    assert_non_null(kv);
    v->n = kv->count;
    v->tok = tu_malloc(v->n * sizeof *v->tok);
    assert_int_equal(kvz_gguf_array_strings(kv, v->tok), KVZ_OK);
    v->score = tu_malloc(v->n * sizeof *v->score);
    v->type = tu_malloc(v->n * sizeof *v->type);
    memcpy(v->score, kvz_gguf_find(v->g, "tokenizer.ggml.scores")->data, v->n * 4);
    memcpy(v->type, kvz_gguf_find(v->g, "tokenizer.ggml.token_type")->data, v->n * 4);
}

static void voc_close(voc *v)
{
    free(v->tok), free(v->score), free(v->type);
    kvz_gguf_close(v->g);
}

static int32_t voc_find(const voc *v, const char *p, size_t n, int normal_only)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->tok[i].n == n && !memcmp(v->tok[i].p, p, n) && (!normal_only || v->type[i] == 1))
            return (int32_t)i;
    return -1;
}

/* The naive SentencePiece BPE: escape spaces as U+2581 (one more in front), split into characters, and
 * repeatedly merge the leftmost adjacent pair whose concatenation is the best-scoring normal piece, with a
 * full rescan each time; leftovers become <0xXX> byte pieces. Returns the number of ids. */
static size_t spm_naive(const voc *v, const char *text, size_t len, int32_t *out)
{
    char *buf = tu_malloc(3 * len + 4);
    size_t m = 0;
    memcpy(buf, "\xE2\x96\x81", 3), m = 3;
    for (size_t i = 0; i < len; i++)
        if (text[i] == ' ')
            memcpy(buf + m, "\xE2\x96\x81", 3), m += 3;
        else
            buf[m++] = text[i];
    size_t *st = tu_malloc((m + 1) * sizeof *st), *ln = tu_malloc((m + 1) * sizeof *ln), ns = 0;
    for (size_t i = 0; i < m; i += ln[ns - 1])
        st[ns] = i, ln[ns] = ref_char_len((const unsigned char *)buf, m, i), ns++;
    for (;;) {
        size_t best = SIZE_MAX;
        float best_score = 0;
        for (size_t i = 0; i + 1 < ns; i++) {
            const int32_t id = voc_find(v, buf + st[i], ln[i] + ln[i + 1], 1);
            if (id >= 0 && (best == SIZE_MAX || v->score[id] > best_score))
                best = i, best_score = v->score[id];
        }
        if (best == SIZE_MAX)
            break;
        ln[best] += ln[best + 1];
        memmove(st + best + 1, st + best + 2, (ns - best - 2) * sizeof *st);
        memmove(ln + best + 1, ln + best + 2, (ns - best - 2) * sizeof *ln);
        ns--;
    }
    size_t k = 0;
    for (size_t i = 0; i < ns; i++) {
        const int32_t id = voc_find(v, buf + st[i], ln[i], 1);
        if (id >= 0) {
            out[k++] = id;
            continue;
        }
        for (size_t b = 0; b < ln[i]; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", (unsigned char)buf[st[i] + b]);
            out[k] = voc_find(v, name, 6, 0);
            assert_true(out[k] >= 0);
            k++;
        }
    }
    free(buf), free(st), free(ln);
    return k;
}

static const char *const spm_texts[] = {
    "Tom had a red kite. One day",
    "",
    " ",
    "  two leading spaces",
    "trailing spaces  ",
    "Once upon a time, there was a little girl named Lily.\nShe loved to play outside.\n\n\"Hi!\" she said.",
    "tabs\tand\r\nwindows lines",
    "Zo\xC3\xAB caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x8E\x89 \xCE\xA9", /* Zoë café 日本語
                                                                                                🎉 Ω */
    "\xE2\x80\x9CQuoted\xE2\x80\x9D \xE2\x80\x94 dash\xE2\x80\xA6", /* pieces in the vocab */
    "bad utf8: \xFF\xFE \x80 \xC3 end \xE6\x97",
    "<s> is text here </s>",
    "a",
    "\n",
    "12345 67 8!?",
};

static void test_stories_vectors(void **state)
{
    (void)state;
    TU_NEED_SHARED(model, TU_STORIES);
    voc v;
    voc_open(&v);
    kvz_gguf *g;
    kvz_tokenizer *t;
    assert_int_equal(kvz_gguf_open(model, &g), KVZ_OK);
    assert_int_equal(kvz_tokenizer_from_gguf(g, &t), KVZ_OK);
    kvz_gguf_close(g); /* the tokenizer keeps its own copy */
    assert_int_equal(kvz_tokenizer_vocab(t), 512);
    assert_int_equal(kvz_tokenizer_bos(t), 1);
    assert_int_equal(kvz_tokenizer_eos(t), 2);
    assert_true(kvz_tokenizer_is_eog(t, 2));
    assert_false(kvz_tokenizer_is_eog(t, 1));
    assert_false(kvz_tokenizer_is_eog(t, -1));

    /* the README's vector */
    const char *tom = "Tom had a red kite. One day";
    const int32_t want[] = {1, 274, 287, 381, 261, 352, 266, 409, 275, 411, 426, 385, 328};
    int32_t *ids;
    size_t n;
    assert_int_equal(kvz_tokenizer_encode(t, tom, strlen(tom), 1, 1, &ids, &n), KVZ_OK);
    assert_ids(ids, n, want, 13, "stories260K encode");
    free(ids);
    assert_int_equal(kvz_tokenizer_encode(t, tom, strlen(tom), 0, 0, &ids, &n), KVZ_OK);
    assert_ids(ids, n, want + 1, 12, "stories260K encode without BOS");
    free(ids);

    /* the greedy continuation: expected text from the vocabulary itself (▁ -> space) */
    const int32_t greedy[] = {432, 281, 272, 277, 264, 261, 370, 432, 352, 266};
    char expect[256] = "";
    for (size_t i = 0; i < 10; i++) {
        const kvz_gguf_str s = v.tok[greedy[i]];
        assert_int_equal(v.type[greedy[i]], 1);
        for (size_t k = 0; k < s.n;)
            if (s.n - k >= 3 && !memcmp(s.p + k, "\xE2\x96\x81", 3))
                strcat(expect, " "), k += 3;
            else
                strncat(expect, s.p + k, 1), k++;
    }
    assert_string_equal(expect, ", he found a big, red");
    char *text;
    assert_int_equal(kvz_tokenizer_decode(t, greedy, 10, 1, &text), KVZ_OK);
    assert_string_equal(text, expect);
    free(text);
    /* the README's BOS-only greedy ids, 24 of its 80 steps */
    const int32_t story[] = {1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421,
                             395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292};
    assert_int_equal(kvz_tokenizer_decode(t, story, 25, 1, &text), KVZ_OK);
    assert_true(!strncmp(text, "Once upon a time, there was a little girl named Lily. She loved to play", 70));
    free(text);

    /* pieces */
    char buf[16];
    assert_int_equal(kvz_tokenizer_piece(t, 1, 0, buf, sizeof buf), 0);
    assert_int_equal(kvz_tokenizer_piece(t, 1, 1, buf, sizeof buf), 3);
    assert_string_equal(buf, "<s>");
    assert_int_equal(kvz_tokenizer_piece(t, 3 + 0x41, 0, buf, sizeof buf), 1);
    assert_int_equal(buf[0], 'A');
    assert_int_equal(kvz_tokenizer_piece(t, 265, 0, buf, sizeof buf), 4); /* "▁the" */
    assert_string_equal(buf, " the");
    memset(buf, 'x', sizeof buf);
    assert_int_equal(kvz_tokenizer_piece(t, 265, 0, buf, 3), 4); /* does not fit: the size, nothing written */
    assert_int_equal(buf[0], 'x');
    assert_int_equal(kvz_tokenizer_piece(t, 265, 0, buf, 4), 4); /* fits without the NUL */
    assert_memory_equal(buf, " the", 4);
    assert_int_equal(buf[4], 'x');
    assert_int_equal(kvz_tokenizer_piece(t, 512, 1, buf, sizeof buf), 0);
    assert_int_equal(kvz_tokenizer_piece(t, -5, 1, buf, sizeof buf), 0);
    assert_int_equal(kvz_tokenizer_find(t, "\xE2\x96\x81the"), 265);
    assert_int_equal(kvz_tokenizer_find(t, "<0x0A>"), 3 + 10);
    assert_int_equal(kvz_tokenizer_find(t, "no such piece"), -1);
    const int32_t bad[] = {5, 512};
    assert_int_equal(kvz_tokenizer_decode(t, bad, 2, 1, &text), KVZ_ERR_INVALID_ARG);
    assert_null(text);

    /* empty text */
    assert_int_equal(kvz_tokenizer_encode(t, NULL, 0, 1, 1, &ids, &n), KVZ_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    free(ids);
    assert_int_equal(kvz_tokenizer_encode(t, "", 0, 0, 1, &ids, &n), KVZ_OK);
    assert_int_equal(n, 0);
    assert_non_null(ids);
    free(ids);

    /* parse_special: "<s>" is BOS only when asked */
    const char *sp = "Hi<s>there</s>";
    assert_int_equal(kvz_tokenizer_encode(t, sp, strlen(sp), 0, 1, &ids, &n), KVZ_OK);
    size_t found = 0;
    for (size_t i = 0; i < n; i++)
        found += ids[i] == 1 || ids[i] == 2;
    assert_int_equal(found, 2);
    assert_int_equal(ids[0] != 1, 1);
    /* the dummy prefix only in front of the first stretch of text: "there" follows <s> without ▁ */
    char *after;
    assert_int_equal(kvz_tokenizer_decode(t, ids, n, 1, &after), KVZ_OK);
    assert_string_equal(after, "Hithere");
    free(after);
    free(ids);
    assert_int_equal(kvz_tokenizer_encode(t, sp, strlen(sp), 0, 0, &ids, &n), KVZ_OK);
    for (size_t i = 0; i < n; i++)
        assert_true(ids[i] != 1 && ids[i] != 2);
    free(ids);
    voc_close(&v);
    kvz_tokenizer_free(t);
}

static void test_stories_reference(void **state)
{
    (void)state;
    TU_NEED_SHARED(model, TU_STORIES);
    voc v;
    voc_open(&v);
    kvz_tokenizer *t;
    assert_int_equal(kvz_tokenizer_from_gguf(v.g, &t), KVZ_OK);
    int32_t *ref = tu_malloc(4096 * sizeof *ref);
    char *text;
    int32_t *ids;
    size_t n;
    /* chosen texts, then random ones from an alphabet with spaces, pieces, UTF-8 and stray bytes */
    for (size_t i = 0; i < sizeof spm_texts / sizeof spm_texts[0]; i++) {
        const char *x = spm_texts[i];
        assert_int_equal(kvz_tokenizer_encode(t, x, strlen(x), 0, 0, &ids, &n), KVZ_OK);
        const size_t nr = strlen(x) ? spm_naive(&v, x, strlen(x), ref) : 0;
        assert_ids(ids, n, ref, nr, x);
        assert_int_equal(kvz_tokenizer_decode(t, ids, n, 1, &text), KVZ_OK);
        assert_string_equal(text, x);
        free(text), free(ids);
    }
    static const char *const alphabet[] = {"a",
                                           "e",
                                           "t",
                                           " ",
                                           "h",
                                           "T",
                                           "o",
                                           "m",
                                           ".",
                                           ",",
                                           "\n",
                                           "the",
                                           " the",
                                           "!",
                                           "  ",
                                           "ly",
                                           "\xC3\xA9",
                                           "\xE6\x97\xA5",
                                           "\x80",
                                           "ou",
                                           "nd",
                                           "\t",
                                           "Lily",
                                           "'",
                                           "\xE2\x80\x9C",
                                           "q",
                                           "Z"};
    tu_rng r;
    tu_rng_init(&r, tu_seed() ^ 0x70C);
    char x[512];
    for (int iter = 0; iter < (tu_quick() ? 40 : 300); iter++) {
        x[0] = 0;
        const size_t parts = tu_range(&r, 1, 40);
        for (size_t p = 0; p < parts; p++)
            strcat(x, alphabet[tu_range(&r, 0, sizeof alphabet / sizeof alphabet[0] - 1)]);
        assert_int_equal(kvz_tokenizer_encode(t, x, strlen(x), 1, 0, &ids, &n), KVZ_OK);
        assert_true(n >= 1 && ids[0] == 1);
        const size_t nr = spm_naive(&v, x, strlen(x), ref);
        assert_ids(ids + 1, n - 1, ref, nr, x);
        assert_int_equal(kvz_tokenizer_decode(t, ids, n, 1, &text), KVZ_OK);
        assert_string_equal(text, x);
        free(text), free(ids);
    }
    free(ref);

    /* a long text: the merge heap keeps this near-linear (a quadratic rescan would take minutes) */
    const char *line = "Once upon a time, there was a little girl named Lily. She loved to play outside. ";
    const size_t reps = tu_quick() ? 500 : 5000, ll = strlen(line);
    char *big = tu_malloc(reps * ll + 1);
    for (size_t i = 0; i < reps; i++)
        memcpy(big + i * ll, line, ll);
    big[reps * ll] = 0;
    const double t0 = now();
    assert_int_equal(kvz_tokenizer_encode(t, big, reps * ll, 1, 1, &ids, &n), KVZ_OK);
    const double t1 = now();
    assert_int_equal(kvz_tokenizer_decode(t, ids, n, 1, &text), KVZ_OK);
    fprintf(stderr, "stories260K: %zu bytes -> %zu tokens in %.3f s\n", reps * ll, n, t1 - t0);
    assert_string_equal(text, big);
    assert_true(n > reps);
    free(text), free(ids), free(big);
    voc_close(&v);
    kvz_tokenizer_free(t);
}

/* ======================================================================================
 * Synthetic GGUF files
 * ====================================================================================== */

typedef struct gb {
    unsigned char *p;
    size_t n, cap;
    uint64_t n_kv;
} gb;

static void gb_put(gb *b, const void *x, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, x, n);
    b->n += n;
}
static void gb_u32(gb *b, uint32_t v) { gb_put(b, &v, 4); }
static void gb_u64(gb *b, uint64_t v) { gb_put(b, &v, 8); }
static void gb_str(gb *b, const char *s, size_t n)
{
    gb_u64(b, n);
    gb_put(b, s, n);
}
static void gb_key(gb *b, const char *key, uint32_t type)
{
    gb_str(b, key, strlen(key));
    gb_u32(b, type);
    b->n_kv++;
}
static void kv_str(gb *b, const char *key, const char *v)
{
    gb_key(b, key, KVZ_GGUF_STRING);
    gb_str(b, v, strlen(v));
}
static void kv_u32(gb *b, const char *key, uint32_t v)
{
    gb_key(b, key, KVZ_GGUF_U32);
    gb_u32(b, v);
}
static void kv_bool(gb *b, const char *key, int v)
{
    const unsigned char c = (unsigned char)(v != 0);
    gb_key(b, key, KVZ_GGUF_BOOL);
    gb_put(b, &c, 1);
}
static void kv_strs(gb *b, const char *key, char *const *v, size_t n)
{
    gb_key(b, key, KVZ_GGUF_ARRAY);
    gb_u32(b, KVZ_GGUF_STRING);
    gb_u64(b, n);
    for (size_t i = 0; i < n; i++)
        gb_str(b, v[i], strlen(v[i]));
}
static void kv_arr(gb *b, const char *key, uint32_t et, const void *v, size_t n)
{
    gb_key(b, key, KVZ_GGUF_ARRAY);
    gb_u32(b, et);
    gb_u64(b, n);
    gb_put(b, v, 4 * n);
}

/* Writes the metadata (no tensors) as a GGUF v3 file and opens it. */
static kvz_gguf *gb_open(gb *b, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, name);
    gb h = {0};
    gb_put(&h, "GGUF", 4);
    gb_u32(&h, 3);
    gb_u64(&h, 0);
    gb_u64(&h, b->n_kv);
    gb_put(&h, b->p, b->n);
    static const unsigned char zero[32];
    gb_put(&h, zero, (32 - h.n % 32) % 32);
    tu_spit(path, h.p, h.n);
    free(h.p), free(b->p);
    *b = (gb){0};
    kvz_gguf *g = NULL;
    assert_int_equal(kvz_gguf_open(path, &g), KVZ_OK);
    unlink(path);
    return g;
}

/* ---- the byte-level BPE vocabulary ---------------------------------------------------- */

/* GPT-2's byte-to-character table, written from its definition: bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF
 * are their own code points; the remaining 68 take 256, 257, ... in increasing byte order. */
static unsigned byte_char(unsigned char b)
{
    unsigned next = 256;
    for (unsigned c = 0; c < 256; c++) {
        const int self = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
        if (c == b)
            return self ? c : next;
        if (!self)
            next++;
    }
    return 0;
}

/* raw bytes -> their byte-level spelling (malloc'ed) */
static char *bl(const char *raw, size_t n)
{
    char *s = tu_malloc(2 * n + 1);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned c = byte_char((unsigned char)raw[i]);
        if (c < 0x80)
            s[m++] = (char)c;
        else
            s[m++] = (char)(0xC0 | c >> 6), s[m++] = (char)(0x80 | (c & 0x3F));
    }
    s[m] = 0;
    return s;
}

enum { N_SPECIAL = 6 };
static const char *const bpe_special[N_SPECIAL] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>",
                                                   "<|eot_id|>",    "<tool>",       "<to"};
static const int32_t bpe_special_type[N_SPECIAL] = {3, 3, 3, 3, 4, 4};

/* merges as raw byte pairs, in rank order */
static const char *const bpe_merges_raw[][2] = {
    {"h", "e"},    {" ", "t"},       {" t", "he"},  {"i", "n"},   {" ", "a"},          {"e", "r"},
    {" ", "w"},    {"o", "r"},       {"l", "l"},    {" w", "or"}, {" wor", "l"},       {" worl", "d"},
    {"H", "e"},    {"He", "ll"},     {"Hell", "o"}, {"1", "2"},   {"12", "3"},         {"2", "0"},
    {"20", "2"},   {"4", "5"},       {" ", "1"},    {"'", "s"},   {"\n", "\n"},        {" ", " "},
    {"  ", " "},   {"\xC3", "\xA9"}, {"c", "a"},    {"ca", "f"},  {"caf", "\xC3\xA9"}, {" ", "caf\xC3\xA9"},
    {"o", "k"},    {" ", "ok"},      {"z", "z"},    {"f", "i"},   {"fi", "n"},         {"fin", "e"},
    {" ", "fine"}, {".", "."},       {"..", "."},   {"\r", "\n"}, {"t", "h"},          {"<", "|"},
    {"us", "er"},  {"u", "s"},       {"h", "i"},    {"  ", "  "}, {"   ", " "},        {"h", "e"},
};
#define N_MERGES (sizeof bpe_merges_raw / sizeof bpe_merges_raw[0])
/* merges whose result is deliberately missing from the vocabulary (they can never apply) */
static int merge_result_missing(size_t i) { return !strcmp(bpe_merges_raw[i][0], "z"); }

typedef struct bpe_voc {
    char **tok; /* byte-level spellings */
    int32_t *type;
    size_t n;
    char *merge_a[N_MERGES], *merge_b[N_MERGES];
} bpe_voc;

static int32_t bv_find(const bpe_voc *v, const char *s)
{
    for (size_t i = 0; i < v->n; i++)
        if (!strcmp(v->tok[i], s))
            return (int32_t)i;
    return -1;
}

static void bv_add(bpe_voc *v, char *s, int32_t type)
{
    if (bv_find(v, s) >= 0) {
        free(s);
        return;
    }
    v->tok = realloc(v->tok, (v->n + 1) * sizeof *v->tok);
    v->type = realloc(v->type, (v->n + 1) * sizeof *v->type);
    assert_non_null(v->tok), assert_non_null(v->type);
    v->tok[v->n] = s, v->type[v->n] = type, v->n++;
}

static void bv_build(bpe_voc *v)
{
    memset(v, 0, sizeof *v);
    for (size_t i = 0; i < N_SPECIAL; i++) {
        char *s = tu_malloc(strlen(bpe_special[i]) + 1);
        strcpy(s, bpe_special[i]);
        bv_add(v, s, bpe_special_type[i]);
    }
    for (unsigned b = 0; b < 256; b++) {
        const char c = (char)b;
        bv_add(v, bl(&c, 1), 1);
    }
    for (size_t i = 0; i < N_MERGES; i++) {
        const char *a = bpe_merges_raw[i][0], *b = bpe_merges_raw[i][1];
        v->merge_a[i] = bl(a, strlen(a)), v->merge_b[i] = bl(b, strlen(b));
        if (merge_result_missing(i))
            continue;
        char joined[64];
        snprintf(joined, sizeof joined, "%s%s", a, b);
        bv_add(v, bl(joined, strlen(joined)), 1);
    }
    bv_add(v, bl("qq", 2), 1); /* reachable only as a whole word (Llama-3's ignore_merges) */
}

static void bv_free(bpe_voc *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->tok[i]);
    for (size_t i = 0; i < N_MERGES; i++)
        free(v->merge_a[i]), free(v->merge_b[i]);
    free(v->tok), free(v->type);
}

/* A gpt2 GGUF of this vocabulary; extra adds more metadata. */
static kvz_gguf *bv_gguf(const bpe_voc *v, const char *pre, int add_bos)
{
    gb b = {0};
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    if (pre)
        kv_str(&b, "tokenizer.ggml.pre", pre);
    kv_strs(&b, "tokenizer.ggml.tokens", v->tok, v->n);
    kv_arr(&b, "tokenizer.ggml.token_type", KVZ_GGUF_I32, v->type, v->n);
    char **m = tu_malloc(N_MERGES * sizeof *m);
    for (size_t i = 0; i < N_MERGES; i++) {
        m[i] = tu_malloc(strlen(v->merge_a[i]) + strlen(v->merge_b[i]) + 2);
        sprintf(m[i], "%s %s", v->merge_a[i], v->merge_b[i]);
    }
    kv_strs(&b, "tokenizer.ggml.merges", m, N_MERGES);
    for (size_t i = 0; i < N_MERGES; i++)
        free(m[i]);
    free(m);
    kv_u32(&b, "tokenizer.ggml.eos_token_id", 0);
    kv_u32(&b, "tokenizer.ggml.bos_token_id", 0);
    kv_u32(&b, "tokenizer.ggml.padding_token_id", 0xFFFFFFFFu);
    if (add_bos >= 0)
        kv_bool(&b, "tokenizer.ggml.add_bos_token", add_bos);
    return gb_open(&b, pre ? pre : "nopre");
}

/* The naive byte-level BPE of one pre-token: characters of its byte-level spelling, then repeatedly the
 * lowest-ranked listed merge whose result is a vocabulary entry, leftmost first, with a full rescan.
 * ignore_merges: a pre-token that is itself a vocabulary entry is that entry. Appends to out. */
static size_t bpe_naive(const bpe_voc *v, const char *raw, size_t n, int ignore_merges, int32_t *out)
{
    char *word = bl(raw, n);
    if (ignore_merges && bv_find(v, word) >= 0) {
        out[0] = bv_find(v, word);
        free(word);
        return 1;
    }
    char **sym = tu_malloc((n + 1) * sizeof *sym);
    size_t ns = 0;
    for (size_t i = 0; i < n; i++)
        sym[ns++] = bl(raw + i, 1);
    free(word);
    for (;;) {
        size_t best = SIZE_MAX, best_rank = SIZE_MAX;
        for (size_t i = 0; i + 1 < ns; i++)
            for (size_t r = 0; r < N_MERGES && r < best_rank; r++) {
                if (strcmp(sym[i], v->merge_a[r]) || strcmp(sym[i + 1], v->merge_b[r]))
                    continue;
                char *j = tu_malloc(strlen(sym[i]) + strlen(sym[i + 1]) + 1);
                strcat(strcpy(j, sym[i]), sym[i + 1]);
                if (bv_find(v, j) >= 0)
                    best = i, best_rank = r;
                free(j);
            }
        if (best == SIZE_MAX)
            break;
        char *j = tu_malloc(strlen(sym[best]) + strlen(sym[best + 1]) + 1);
        strcat(strcpy(j, sym[best]), sym[best + 1]);
        free(sym[best]), free(sym[best + 1]);
        sym[best] = j;
        memmove(sym + best + 1, sym + best + 2, (ns - best - 2) * sizeof *sym);
        ns--;
    }
    for (size_t i = 0; i < ns; i++) {
        out[i] = bv_find(v, sym[i]);
        assert_true(out[i] >= 0);
        free(sym[i]);
    }
    free(sym);
    return ns;
}

/* Chosen texts with their pre-tokenizations worked out by hand from each regex (NULL-terminated). */
typedef struct split_case {
    const char *text;
    const char *llama3[20], *qwen2[20], *gpt2[20], *smollm[20];
} split_case;

static const split_case splits[] = {
    {"Hello world's 12345 ok\n\n  x",
     {"Hello", " world", "'s", " ", "123", "45", " ok", "\n\n", " ", " x", NULL},
     {"Hello", " world", "'s", " ", "1", "2", "3", "4", "5", " ok", "\n\n", " ", " x", NULL},
     {"Hello", " world", "'s", " 12345", " ok", "\n\n ", " x", NULL},
     {"Hello", " world", "'s", " ", "1", "2", "3", "4", "5", " ok", "\n\n ", " x", NULL}},
    {"I'M fine...\r\n\tthe caf\xC3\xA9\xE2\x80\x94na\xC3\xAFve 2024!",
     {"I", "'M", " fine", "...\r\n", "\tthe", " caf\xC3\xA9", "\xE2\x80\x94na\xC3\xAFve", " ", "202", "4", "!",
      NULL},
     {"I", "'M", " fine", "...\r\n", "\tthe", " caf\xC3\xA9", "\xE2\x80\x94na\xC3\xAFve", " ", "2", "0", "2",
      "4", "!", NULL},
     {"I", "'", "M", " fine", "...", "\r\n", "\t", "the", " caf\xC3\xA9", "\xE2\x80\x94", "na\xC3\xAFve",
      " 2024", "!", NULL},
     {"I", "'", "M", " fine", "...", "\r\n", "\t", "the", " caf\xC3\xA9", "\xE2\x80\x94", "na\xC3\xAFve", " ",
      "2", "0", "2", "4", "!", NULL}},
    {"   leading and trailing   ",
     {"  ", " leading", " and", " trailing", "   ", NULL},
     {"  ", " leading", " and", " trailing", "   ", NULL},
     {"  ", " leading", " and", " trailing", "   ", NULL},
     {"  ", " leading", " and", " trailing", "   ", NULL}},
    {"x\n \ny",
     {"x", "\n \n", "y", NULL},
     {"x", "\n \n", "y", NULL},
     {"x", "\n ", "\n", "y", NULL},
     {"x", "\n ", "\n", "y", NULL}},
    {"qq zz the 'll 'LL the'Re",
     {"qq", " zz", " the", " 'll", " 'LL", " the", "'Re", NULL},
     {"qq", " zz", " the", " 'll", " 'LL", " the", "'Re", NULL},
     {"qq", " zz", " the", " '", "ll", " '", "LL", " the", "'", "Re", NULL},
     {"qq", " zz", " the", " '", "ll", " '", "LL", " the", "'", "Re", NULL}},
    {"\xCE\xA9\xCE\xBC\xCE\xAD\xCE\xB3\xCE\xB1 "
     "\xD0\x9C\xD0\xB8\xD1\x80\xE6\x97\xA5\xE6\x9C\xAC\xC2\xBD\xD9\xA3 $5",
     /* Ωμέγα Мир日本½٣ $5: Greek, Cyrillic and CJK are letters; ½ (No) and ٣ (Nd) numbers */
     {"\xCE\xA9\xCE\xBC\xCE\xAD\xCE\xB3\xCE\xB1", " \xD0\x9C\xD0\xB8\xD1\x80\xE6\x97\xA5\xE6\x9C\xAC",
      "\xC2\xBD\xD9\xA3", " $", "5", NULL},
     {"\xCE\xA9\xCE\xBC\xCE\xAD\xCE\xB3\xCE\xB1", " \xD0\x9C\xD0\xB8\xD1\x80\xE6\x97\xA5\xE6\x9C\xAC",
      "\xC2\xBD", "\xD9\xA3", " $", "5", NULL},
     {"\xCE\xA9\xCE\xBC\xCE\xAD\xCE\xB3\xCE\xB1", " \xD0\x9C\xD0\xB8\xD1\x80\xE6\x97\xA5\xE6\x9C\xAC",
      "\xC2\xBD\xD9\xA3", " $", "5", NULL},
     {"\xCE\xA9\xCE\xBC\xCE\xAD\xCE\xB3\xCE\xB1", " \xD0\x9C\xD0\xB8\xD1\x80\xE6\x97\xA5\xE6\x9C\xAC",
      "\xC2\xBD", "\xD9\xA3", " $", "5", NULL}},
};

typedef struct pre_case {
    const char *name; /* tokenizer.ggml.pre (NULL: absent) */
    int which;        /* 0 llama3, 1 qwen2, 2 gpt2, 3 smollm */
} pre_case;

static const char *const *split_of(const split_case *c, int which)
{
    return which == 0 ? c->llama3 : which == 1 ? c->qwen2 : which == 2 ? c->gpt2 : c->smollm;
}

static void test_bpe_reference(void **state)
{
    (void)state;
    bpe_voc v;
    bv_build(&v);
    const pre_case pres[] = {{"llama-bpe", 0}, {"llama3", 0}, {"default", 0}, {NULL, 0},
                             {"qwen2", 1},     {"gpt2", 2},   {"smollm", 3}};
    int32_t *ref = tu_malloc(4096 * sizeof *ref);
    for (size_t p = 0; p < sizeof pres / sizeof pres[0]; p++) {
        kvz_gguf *g = bv_gguf(&v, pres[p].name, -1);
        kvz_tokenizer *t;
        assert_int_equal(kvz_tokenizer_from_gguf(g, &t), KVZ_OK);
        kvz_gguf_close(g);
        assert_int_equal(kvz_tokenizer_vocab(t), v.n);
        for (size_t c = 0; c < sizeof splits / sizeof splits[0]; c++) {
            const char *const *pieces = split_of(&splits[c], pres[p].which);
            char joined[256] = "";
            size_t nr = 0;
            for (size_t k = 0; pieces[k]; k++) {
                strcat(joined, pieces[k]);
                nr += bpe_naive(&v, pieces[k], strlen(pieces[k]), pres[p].which == 0, ref + nr);
            }
            assert_string_equal(joined, splits[c].text); /* the hand split covers the text */
            int32_t *ids;
            size_t n;
            char what[160];
            snprintf(what, sizeof what, "pre %s, text %zu", pres[p].name ? pres[p].name : "(absent)", c);
            assert_int_equal(kvz_tokenizer_encode(t, splits[c].text, strlen(splits[c].text), 1, 1, &ids, &n),
                             KVZ_OK);
            assert_ids(ids, n, ref, nr, what); /* no BOS: add_bos_token is unset for gpt2 */
            char *text;
            assert_int_equal(kvz_tokenizer_decode(t, ids, n, 1, &text), KVZ_OK);
            assert_string_equal(text, splits[c].text);
            free(text), free(ids);
        }
        /* random words of letters are single pre-tokens under every rule: the merge engine on its own */
        int32_t *ids;
        size_t n;
        tu_rng r;
        tu_rng_init(&r, tu_seed() ^ (0xB0 + p));
        for (int iter = 0; iter < (tu_quick() ? 30 : 300); iter++) {
            char w[64];
            const size_t len = tu_range(&r, 1, sizeof w - 1);
            for (size_t i = 0; i < len; i++)
                w[i] = "heloHtincrafzqsuwdk"[tu_next(&r) % 19];
            w[len] = 0;
            assert_int_equal(kvz_tokenizer_encode(t, w, len, 0, 0, &ids, &n), KVZ_OK);
            const size_t nw = bpe_naive(&v, w, len, pres[p].which == 0, ref);
            assert_ids(ids, n, ref, nw, w);
            free(ids);
        }
        /* ignore_merges is Llama-3's alone: "qq" is one token there, two elsewhere */
        assert_int_equal(kvz_tokenizer_encode(t, "qq", 2, 0, 0, &ids, &n), KVZ_OK);
        assert_int_equal(n, pres[p].which == 0 ? 1 : 2);
        free(ids);
        kvz_tokenizer_free(t);
    }

    /* long runs: one pre-token of many spaces against the naive merge loop, then a huge one for time */
    kvz_gguf *g = bv_gguf(&v, "qwen2", -1);
    kvz_tokenizer *t;
    assert_int_equal(kvz_tokenizer_from_gguf(g, &t), KVZ_OK);
    kvz_gguf_close(g);
    const size_t ns = 301;
    char *sp = tu_malloc(200001);
    memset(sp, ' ', ns);
    sp[ns] = 'x';
    int32_t *ids;
    size_t n;
    assert_int_equal(kvz_tokenizer_encode(t, sp, ns + 1, 0, 0, &ids, &n), KVZ_OK);
    size_t nr = bpe_naive(&v, sp, ns - 1, 0, ref); /* \s+(?!\S) leaves the last space to " x" */
    nr += bpe_naive(&v, sp + ns - 1, 2, 0, ref + nr);
    assert_ids(ids, n, ref, nr, "301 spaces then x");
    free(ids);
    memset(sp, ' ', 200000);
    const double t0 = now();
    assert_int_equal(kvz_tokenizer_encode(t, sp, 200000, 0, 0, &ids, &n), KVZ_OK);
    fprintf(stderr, "byte-level BPE: one pre-token of 200000 spaces -> %zu tokens in %.3f s\n", n, now() - t0);
    assert_int_equal(n, 50000); /* "    " four at a time */
    free(ids), free(sp), free(ref);
    kvz_tokenizer_free(t);
    bv_free(&v);
}

static void test_bpe_special_and_roundtrip(void **state)
{
    (void)state;
    bpe_voc v;
    bv_build(&v);
    kvz_gguf *g = bv_gguf(&v, "llama-bpe", 1);
    kvz_tokenizer *t;
    assert_int_equal(kvz_tokenizer_from_gguf(g, &t), KVZ_OK);
    kvz_gguf_close(g);
    assert_int_equal(kvz_tokenizer_bos(t), 0);
    assert_int_equal(kvz_tokenizer_eos(t), 0);
    assert_true(kvz_tokenizer_is_eog(t, 0));  /* eos */
    assert_true(kvz_tokenizer_is_eog(t, 2));  /* <|im_end|> */
    assert_true(kvz_tokenizer_is_eog(t, 3));  /* <|eot_id|> */
    assert_false(kvz_tokenizer_is_eog(t, 1)); /* <|im_start|> */
    assert_int_equal(kvz_tokenizer_find(t, "<|im_start|>"), 1);
    char *gthe = bl(" the", 4);
    const int32_t the = kvz_tokenizer_find(t, gthe);
    assert_int_equal(the, bv_find(&v, gthe));
    free(gthe);

    /* control tokens become ids with parse_special; user-defined ones always; the longest wins */
    const char *x = "<|im_start|>user\nhi<|im_end|><tool><to";
    int32_t ref[64];
    size_t nr = 0;
    ref[nr++] = 0; /* add_bos_token = true here */
    ref[nr++] = 1;
    const char *const parts[] = {"user", "\n", "hi"}; /* the Llama-3 split of "user\nhi" */
    for (size_t k = 0; k < 3; k++)
        nr += bpe_naive(&v, parts[k], strlen(parts[k]), 1, ref + nr);
    ref[nr++] = 2, ref[nr++] = 4, ref[nr++] = 5;
    int32_t *ids;
    size_t n;
    assert_int_equal(kvz_tokenizer_encode(t, x, strlen(x), 1, 1, &ids, &n), KVZ_OK);
    assert_ids(ids, n, ref, nr, "parse_special");
    char *text;
    assert_int_equal(kvz_tokenizer_decode(t, ids, n, 1, &text), KVZ_OK);
    assert_string_equal(text, "user\nhi<tool><to"); /* control pieces render empty */
    free(text), free(ids);
    assert_int_equal(kvz_tokenizer_encode(t, x, strlen(x), 0, 0, &ids, &n), KVZ_OK);
    int users = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(ids[i] != 0 && ids[i] != 1 && ids[i] != 2);
        users += ids[i] == 4 || ids[i] == 5;
    }
    assert_int_equal(users, 2);
    assert_int_equal(kvz_tokenizer_decode(t, ids, n, 0, &text), KVZ_OK);
    assert_string_equal(text, x);
    free(text), free(ids);
    char buf[32];
    assert_int_equal(kvz_tokenizer_piece(t, 1, 0, buf, sizeof buf), 0);
    assert_int_equal(kvz_tokenizer_piece(t, 1, 1, buf, sizeof buf), 12);
    assert_string_equal(buf, "<|im_start|>");
    assert_int_equal(kvz_tokenizer_piece(t, 4, 0, buf, sizeof buf), 6);
    assert_string_equal(buf, "<tool>");
    assert_int_equal(kvz_tokenizer_piece(t, the, 0, buf, sizeof buf), 4);
    assert_string_equal(buf, " the");

    /* any bytes survive the round trip, malformed UTF-8 included */
    tu_rng r;
    tu_rng_init(&r, tu_seed() ^ 0xB9E);
    char raw[200];
    for (int iter = 0; iter < (tu_quick() ? 50 : 500); iter++) {
        const size_t len = tu_range(&r, 0, sizeof raw - 1);
        for (size_t i = 0; i < len; i++) {
            const uint64_t k = tu_next(&r) % 4;
            raw[i] = k == 0   ? (char)tu_range(&r, 1, 255)
                     : k == 1 ? " \n\t'"[tu_next(&r) % 4]
                              : (char)"helo wrd0123456789."[tu_next(&r) % 19];
        }
        raw[len] = 0;
        assert_int_equal(kvz_tokenizer_encode(t, raw, len, 0, 0, &ids, &n), KVZ_OK);
        for (size_t i = 0; i < n; i++)
            assert_true(ids[i] >= N_SPECIAL || ids[i] == 4 || ids[i] == 5);
        assert_int_equal(kvz_tokenizer_decode(t, ids, n, 1, &text), KVZ_OK);
        assert_string_equal(text, raw);
        free(text), free(ids);
    }
    kvz_tokenizer_free(t);
    bv_free(&v);
}

/* ---- Qwen2's NFC normalizer on the synthetic vocabulary --------------------------------------------
 * Every byte is a token there, so decode(encode(text)) is the text as the tokenizer normalized it. Each pair is
 * a text and its NFC form (worked out with Python's unicodedata.normalize); the node-driven Qwen2.5 test checks
 * many more against the reference package. */

/* The text this tokenizer's encode turns s into: decode(encode(s)), parsing specials (malloc'ed). */
static char *round_trip(const kvz_tokenizer *t, const char *s, size_t len)
{
    int32_t *ids;
    size_t n;
    char *text;
    assert_int_equal(kvz_tokenizer_encode(t, s, len, 0, 1, &ids, &n), KVZ_OK);
    assert_int_equal(kvz_tokenizer_decode(t, ids, n, 0, &text), KVZ_OK);
    free(ids);
    return text;
}

static void test_bpe_nfc(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"e\xCC\x81 a\xCC\xA3\xCC\x82 a\xCC\x82\xCC\xA3", /* marks join their letter, in class order */
         "\xC3\xA9 \xE1\xBA\xAD \xE1\xBA\xAD"},
        {"Tie\xCC\x82\xCC\x81ng Vie\xCC\xA3\xCC\x82t", "Ti\xE1\xBA\xBFng Vi\xE1\xBB\x87t"},
        /* Hangul jamo become syllables; LV + T joins, LVT + T does not */
        {"\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8 \xEA\xB0\x80\xE1\x86\xA8 \xEA\xB0\x81\xE1\x86\xA8 "
         "\xE1\x84\x92\xE1\x85\xA1",
         "\xEA\xB0\x81 \xEA\xB0\x81 \xEA\xB0\x81\xE1\x86\xA8 \xED\x95\x98"},
        /* singletons: Ohm, Kelvin and Angstrom signs, Greek numeral sign and question mark, en quad */
        {"\xE2\x84\xA6 \xE2\x84\xAA \xE2\x84\xAB \xCD\xB4 \xCD\xBE \xE2\x80\x80",
         "\xCE\xA9 K \xC3\x85 \xCA\xB9 ; \xE2\x80\x82"},
        /* composition exclusions decompose and stay so: U+0958, U+0344, U+0F73 */
        {"\xE0\xA5\x98 \xE0\xA4\x95\xE0\xA4\xBC \xCD\x84 \xE0\xBD\xB3",
         "\xE0\xA4\x95\xE0\xA4\xBC \xE0\xA4\x95\xE0\xA4\xBC \xCC\x88\xCC\x81 \xE0\xBD\xB1\xE0\xBD\xB2"},
        /* two class-0 characters that compose (Oriya, Sinhala, Myanmar) */
        {"\xE0\xAD\x87\xE0\xAC\xBE \xE0\xB7\x99\xE0\xB7\x8F \xE1\x80\xA5\xE1\x80\xAE",
         "\xE0\xAD\x8B \xE0\xB7\x9C \xE1\x80\xA6"},
        {"<\xCC\xB8 =\xCC\xB8 \xCC\x81x", "\xE2\x89\xAE \xE2\x89\xA0 \xCC\x81x"}, /* ASCII + U+0338 */
        {"\xCC\x81\xCC\x96xyz", "\xCC\x96\xCC\x81xyz"}, /* leading marks are ordered, joined to nothing */
        {"\xEF\xA4\x80\xEF\xA7\xBF \xF0\xAF\xA0\x80", "\xE8\xB1\x88\xE5\x88\xBA \xE4\xB8\xBD"}, /* CJK compat */
        {"\xE1\xBE\x82 \xCE\xB1\xCD\x85\xCC\x93\xCC\x80", "\xE1\xBE\x82 \xE1\xBE\x82"}, /* three marks */
        {"\xD7\xA9\xD7\x82\xD6\xBC \xD8\xA7\xD9\x91\xD9\x8E",
         "\xD7\xA9\xD6\xBC\xD7\x82 \xD8\xA7\xD9\x8E\xD9\x91"},
        /* a mark added after Unicode 9.0 (U+07FD, class 220 since 11.0) is class 0 to Hugging Face tokenizers,
         * whose tables are 9.0's, so it keeps the U+0301 from the a (current Unicode: á U+07FD) */
        {"a\xDF\xBD\xCC\x81", "a\xDF\xBD\xCC\x81"},
        /* bytes that are no UTF-8 (overlong, stray, truncated) stay; a mark after one joins nothing */
        {"\xC0\x80o\xCC\x81\xFF\xCC\x81o\xCC", "\xC0\x80\xC3\xB3\xFF\xCC\x81o\xCC"},
    };
    bpe_voc v;
    bv_build(&v);
    kvz_tokenizer *qwen2, *llama3;
    kvz_gguf *g = bv_gguf(&v, "qwen2", -1);
    assert_int_equal(kvz_tokenizer_from_gguf(g, &qwen2), KVZ_OK);
    kvz_gguf_close(g);
    g = bv_gguf(&v, "llama-bpe", -1);
    assert_int_equal(kvz_tokenizer_from_gguf(g, &llama3), KVZ_OK);
    kvz_gguf_close(g);
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char *text = round_trip(qwen2, pairs[i][0], strlen(pairs[i][0]));
        assert_string_equal(text, pairs[i][1]);
        free(text);
        text = round_trip(llama3, pairs[i][0], strlen(pairs[i][0])); /* only Qwen2's tokenizer normalizes */
        assert_string_equal(text, pairs[i][0]);
        free(text);
    }

    /* a long run of marks (sorted by counting, not by insertion): a + (U+0316 U+0301) x 200 is á, the 200
     * U+0316 (class 220), then the other 199 U+0301 (230) */
    char raw[1 + 200 * 4 + 1], want[2 + 200 * 2 + 199 * 2 + 1];
    raw[0] = 'a';
    for (int k = 0; k < 200; k++)
        memcpy(raw + 1 + 4 * k, "\xCC\x96\xCC\x81", 4);
    raw[801] = 0;
    memcpy(want, "\xC3\xA1", 2);
    for (int k = 0; k < 200; k++)
        memcpy(want + 2 + 2 * k, "\xCC\x96", 2);
    for (int k = 0; k < 199; k++)
        memcpy(want + 402 + 2 * k, "\xCC\x81", 2);
    want[800] = 0;
    char *text = round_trip(qwen2, raw, 801);
    assert_string_equal(text, want);
    free(text);

    /* each stretch between special tokens is normalized on its own: the U+0301 after <|im_end|> does not join
     * the e before it */
    int32_t *ids, ref[16];
    size_t n, nr = 0;
    nr += bpe_naive(&v, "e", 1, 0, ref + nr);
    ref[nr++] = 2; /* <|im_end|> */
    nr += bpe_naive(&v, "\xCC\x81", 2, 0, ref + nr);
    assert_int_equal(kvz_tokenizer_encode(qwen2, "e<|im_end|>\xCC\x81", 13, 0, 1, &ids, &n), KVZ_OK);
    assert_ids(ids, n, ref, nr, "e<|im_end|>U+0301");
    free(ids);
    kvz_tokenizer_free(qwen2), kvz_tokenizer_free(llama3);
    bv_free(&v);
}

/* ---- real vocabularies (Llama 3's, Qwen2.5's) against independent implementations ---------------
 * tests/test_bpe_llama3.sh and tests/test_bpe_qwen2.sh have tests/bpe_ref.mjs write a family's vocabulary, its
 * merges, the metadata its GGUF files carry and an npm package's ids for a few hundred texts into
 * $KVZ_BPE_REF_DIR (the file formats are described in tests/bpe_ref.mjs); this builds the GGUF metadata from
 * them and checks every text's ids. Without the directory (no node, npm or network) the test skips. */

/* The lines of a file read whole, in place: each '\n' becomes the NUL ending its line. */
typedef struct lines {
    char *buf;
    char **line;
    size_t n;
} lines;

static int lines_read(lines *l, const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    memset(l, 0, sizeof *l);
    if (access(path, R_OK))
        return 0;
    size_t n, cap = 0;
    l->buf = (char *)tu_slurp(path, &n);
    l->buf[n] = 0;
    for (size_t i = 0; i < n;) {
        if (l->n == cap) {
            cap = cap ? 2 * cap : 1024;
            l->line = realloc(l->line, cap * sizeof *l->line);
            assert_non_null(l->line);
        }
        l->line[l->n++] = l->buf + i;
        char *nl = memchr(l->buf + i, '\n', n - i);
        if (!nl)
            break;
        *nl = 0;
        i = (size_t)(nl - l->buf) + 1;
    }
    return 1;
}

static void lines_free(lines *l) { free(l->buf), free(l->line); }

/* meta.txt: what the family's GGUF files say about the tokenizer */
typedef struct ref_meta {
    char family[32], arch[32], pre[32];
    int bos, eos, add_bos;
} ref_meta;

static ref_meta meta_parse(const lines *meta)
{
    ref_meta m = {"", "", "", -1, -1, -1};
    for (size_t i = 0; i < meta->n; i++) {
        const char *l = meta->line[i];
        if (sscanf(l, "family %31s", m.family) != 1 && sscanf(l, "arch %31s", m.arch) != 1 &&
            sscanf(l, "pre %31s", m.pre) != 1 && sscanf(l, "bos %d", &m.bos) != 1 &&
            sscanf(l, "eos %d", &m.eos) != 1 && sscanf(l, "add_bos %d", &m.add_bos) != 1)
            assert_true(*l == 0); /* a key this test does not know */
    }
    assert_true(*m.family && *m.arch && *m.pre && m.bos >= 0 && m.eos >= 0 && m.add_bos >= 0);
    return m;
}

static kvz_gguf *ref_gguf(const lines *vocab, const lines *merges, const ref_meta *m)
{
    char **tok = tu_malloc(vocab->n * sizeof *tok);
    int32_t *type = tu_malloc(vocab->n * sizeof *type);
    for (size_t i = 0; i < vocab->n; i++) { /* "TYPE TOKEN" */
        char *sp = strchr(vocab->line[i], ' ');
        assert_non_null(sp);
        type[i] = (int32_t)strtol(vocab->line[i], NULL, 10);
        tok[i] = sp + 1;
    }
    gb b = {0};
    kv_str(&b, "general.architecture", m->arch);
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_str(&b, "tokenizer.ggml.pre", m->pre);
    kv_strs(&b, "tokenizer.ggml.tokens", tok, vocab->n);
    kv_arr(&b, "tokenizer.ggml.token_type", KVZ_GGUF_I32, type, vocab->n);
    kv_strs(&b, "tokenizer.ggml.merges", merges->line, merges->n);
    kv_u32(&b, "tokenizer.ggml.bos_token_id", (uint32_t)m->bos);
    kv_u32(&b, "tokenizer.ggml.eos_token_id", (uint32_t)m->eos);
    kv_bool(&b, "tokenizer.ggml.add_bos_token", m->add_bos);
    free(tok), free(type);
    return gb_open(&b, m->family);
}

static int hex_digit(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

/* The bytes hex spells (malloc'ed, NUL-terminated) and their number in *len. */
static char *hex_bytes(const char *hex, size_t *len)
{
    *len = strlen(hex) / 2;
    char *s = tu_malloc(*len + 1);
    for (size_t i = 0; i < *len; i++)
        s[i] = (char)(hex_digit(hex[2 * i]) << 4 | hex_digit(hex[2 * i + 1]));
    s[*len] = 0;
    return s;
}

/* The special-token scan, naively: at each position the longest control (with parse_special) or
 * user-defined token spelled there, the lowest id among equal spellings; -1 for none. */
static int32_t special_naive(const bpe_voc *v, const char *s, size_t len, size_t i, int parse_special)
{
    int32_t best = -1;
    size_t best_len = 0;
    for (size_t k = 0; k < v->n; k++) {
        const size_t n = strlen(v->tok[k]);
        if ((v->type[k] == 4 || (v->type[k] == 3 && parse_special)) && n > best_len && n <= len - i &&
            !memcmp(v->tok[k], s + i, n))
            best = (int32_t)k, best_len = n;
    }
    return best;
}

/* 20000 special tokens sharing their first byte once cost that many comparisons at each '<' of the
 * text (a 1.6 MB GGUF made encoding ~100 us a byte). The scan must give the naive scan's ids and take
 * at most the longest special token's length + 1 trie steps a byte. */
static void test_many_special_tokens(void **state)
{
    (void)state;
    bpe_voc v;
    bv_build(&v);
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 17);
    static const char alpha[] = "ab|>c";
    const size_t n_base = v.n, n_sp = 20000, max_len = 12;
    v.tok = realloc(v.tok, (n_base + n_sp + 2) * sizeof *v.tok);
    v.type = realloc(v.type, (n_base + n_sp + 2) * sizeof *v.type);
    assert_non_null(v.tok), assert_non_null(v.type);
    for (size_t k = 0; k < n_sp; k++) { /* random spellings: some repeat, as control and as user-defined */
        const size_t n = 2 + (size_t)tu_uniform(&r, 0, (float)max_len - 1.999f);
        char *tok = tu_malloc(n + 1);
        tok[0] = '<';
        for (size_t c = 1; c < n; c++)
            tok[c] = alpha[(size_t)tu_uniform(&r, 0, 4.999f)];
        tok[n] = '\0';
        v.tok[v.n] = tok, v.type[v.n++] = tu_uniform(&r, 0, 1) < 0.5f ? 3 : 4;
    }
    char *dup = tu_malloc(6), *dup2 = tu_malloc(6); /* one spelling, control first then user-defined */
    strcpy(dup, "<ab|c"), strcpy(dup2, "<ab|c");
    v.tok[v.n] = dup, v.type[v.n++] = 3;
    v.tok[v.n] = dup2, v.type[v.n++] = 4;
    kvz_gguf *g = bv_gguf(&v, "llama-bpe", 0);
    kvz_tokenizer *t;
    assert_int_equal(kvz_tokenizer_from_gguf(g, &t), KVZ_OK);
    kvz_gguf_close(g);
    const size_t len = 16384;
    char *text = tu_malloc(len);
    for (size_t i = 0; i < len; i++) {
        const float u = tu_uniform(&r, 0, 1);
        text[i] = u < 0.15f ? '<' : u < 0.25f ? ' ' : alpha[(size_t)tu_uniform(&r, 0, 4.999f)];
    }
    memcpy(text + 100, "<ab|c", 5);
    int32_t *want = tu_malloc((len + 1) * sizeof *want);
    for (int parse_special = 0; parse_special < 2; parse_special++) {
        /* the reference: the naive hits, and the ordinary text between them encoded on its own */
        size_t nw = 0, raw = 0, hits = 0;
        for (size_t i = 0; i <= len;) {
            const int32_t hit = i < len && text[i] == '<' ? special_naive(&v, text, len, i, parse_special) : -1;
            if (hit < 0 && i < len) {
                i++;
                continue;
            }
            if (i > raw) {
                int32_t *part;
                size_t np;
                assert_int_equal(kvz_tokenizer_encode(t, text + raw, i - raw, 0, parse_special, &part, &np),
                                 KVZ_OK);
                memcpy(want + nw, part, np * sizeof *part), nw += np;
                free(part);
            }
            if (hit < 0)
                break;
            want[nw++] = hit, hits++;
            i += strlen(v.tok[hit]);
            raw = i;
        }
        assert_true(hits > 100);
        int32_t *ids;
        size_t n, steps = 0;
        assert_int_equal(kvz_tokenizer_encode_counted(t, text, len, 0, parse_special, &ids, &n, &steps),
                         KVZ_OK);
        assert_ids(ids, n, want, nw, parse_special ? "many specials, parse_special" : "many specials");
        assert_true(steps <= len * (max_len + 1));
        free(ids);
    }
    /* a repeated spelling: the lowest id, among user-defined ones only without parse_special */
    for (int parse_special = 0; parse_special < 2; parse_special++) {
        int32_t *ids;
        size_t n;
        assert_int_equal(kvz_tokenizer_encode(t, "<ab|c", 5, 0, parse_special, &ids, &n), KVZ_OK);
        assert_int_equal(n, 1);
        assert_int_equal(ids[0], special_naive(&v, "<ab|c", 5, 0, parse_special));
        assert_true(parse_special || v.type[ids[0]] == 4);
        free(ids);
    }
    free(text), free(want);
    kvz_tokenizer_free(t);
    bv_free(&v);
}

/* The next tab-separated field of a cases.txt line, NUL-terminated in place ("" past the last one). */
static char *next_field(char **p)
{
    char *f = *p, *tab = strchr(f, '\t');
    if (tab)
        *tab = 0, *p = tab + 1;
    else
        *p = f + strlen(f);
    return f;
}

static void test_bpe_vocab_reference(void **state)
{
    (void)state;
    const char *dir = getenv("KVZ_BPE_REF_DIR");
    lines vocab, merges, meta, cases;
    if (!dir || !*dir || !lines_read(&cases, dir, "cases.txt")) {
        fprintf(stderr,
                "KVZ_BPE_REF_DIR %s%s: skipping (tests/test_bpe_llama3.sh and test_bpe_qwen2.sh make it with "
                "node)\n",
                dir && *dir ? dir : "is not set", dir && *dir ? " has no cases.txt" : "");
        skip();
        return;
    }
    assert_true(lines_read(&vocab, dir, "vocab.txt") && lines_read(&merges, dir, "merges.txt") &&
                lines_read(&meta, dir, "meta.txt"));
    const ref_meta m = meta_parse(&meta);
    const double t0 = now();
    kvz_gguf *g = ref_gguf(&vocab, &merges, &m);
    kvz_tokenizer *t;
    assert_int_equal(kvz_tokenizer_from_gguf(g, &t), KVZ_OK);
    kvz_gguf_close(g);
    const double t1 = now();
    assert_int_equal(kvz_tokenizer_vocab(t), vocab.n);
    assert_int_equal(kvz_tokenizer_bos(t), m.bos);
    assert_int_equal(kvz_tokenizer_eos(t), m.eos);
    assert_true(kvz_tokenizer_is_eog(t, m.eos));

    size_t failures = 0, n_tokens = 0, n_bytes = 0;
    double t_encode = 0;
    for (size_t c = 0; c < cases.n; c++) { /* "NAME<TAB>HEX<TAB>IDS<TAB>SPELLED" */
        char *p = cases.line[c];
        const char *name = next_field(&p), *hex = next_field(&p), *idtext = next_field(&p);
        const char *spelled_hex = next_field(&p);
        size_t len, spelled_len;
        char *text = hex_bytes(hex, &len);
        char *spelled = *spelled_hex ? hex_bytes(spelled_hex, &spelled_len) : NULL;
        if (!spelled)
            spelled = text, spelled_len = len;
        int32_t *want = tu_malloc((strlen(idtext) / 2 + 2) * sizeof *want);
        size_t n_want = 0;
        if (m.add_bos)
            want[n_want++] = m.bos;
        const size_t first = n_want;
        int has_control = 0;
        for (char *q = (char *)idtext, *end; *q; q = end) {
            want[n_want] = (int32_t)strtol(q, &end, 10);
            assert_true(end > q);
            has_control |= kvz_tokenizer_piece(t, want[n_want], 0, NULL, 0) == 0; /* decode leaves it out */
            n_want++;
        }
        n_tokens += n_want - first, n_bytes += len;

        /* the packages parse the special tokens in the text, as parse_special does; asked for BOS, the
         * tokenizer adds one only where the file's add_bos_token says so (not Qwen's) */
        int32_t *ids;
        size_t n;
        const double te = now();
        assert_int_equal(kvz_tokenizer_encode(t, text, len, 1, 1, &ids, &n), KVZ_OK);
        t_encode += now() - te;
        char what[256];
        snprintf(what, sizeof what, "%s text %s (BOS asked for)", m.family, name);
        int ok = ids_match(ids, n, want, n_want, what);
        free(ids);
        assert_int_equal(kvz_tokenizer_encode(t, text, len, 0, 1, &ids, &n), KVZ_OK);
        snprintf(what, sizeof what, "%s text %s (without BOS)", m.family, name);
        ok &= ids_match(ids, n, want + first, n_want - first, what);

        /* back to the text (as normalized): the pieces with the specials rendered, and decode where there are
         * none */
        char *back = tu_malloc(spelled_len + 1), piece[512];
        size_t k_back = 0;
        for (size_t i = 0; i < n; i++) {
            const size_t k = kvz_tokenizer_piece(t, ids[i], 1, piece, sizeof piece);
            assert_true(k < sizeof piece);
            if (k_back + k > spelled_len) {
                k_back = spelled_len + 1;
                break;
            }
            memcpy(back + k_back, piece, k), k_back += k;
        }
        if (k_back != spelled_len || memcmp(back, spelled, spelled_len)) {
            fprintf(stderr, "%s text %s: its pieces do not spell it%s\n", m.family, name,
                    spelled != text ? " (normalized)" : "");
            ok = 0;
        }
        free(back);
        if (!has_control) {
            char *dec;
            assert_int_equal(kvz_tokenizer_decode(t, ids, n, 1, &dec), KVZ_OK);
            if (strcmp(dec, spelled)) {
                fprintf(stderr, "%s text %s: decode(encode(text)) differs\n", m.family, name);
                ok = 0;
            }
            free(dec);
        }
        failures += !ok;
        if (spelled != text)
            free(spelled);
        free(ids), free(want), free(text);
    }
    fprintf(stderr,
            "%s vocabulary (%zu tokens, %zu merges): loaded in %.3f s; %zu texts, %zu bytes -> %zu tokens in "
            "%.3f s; %zu differ from the reference\n",
            m.family, vocab.n, merges.n, t1 - t0, cases.n, n_bytes, n_tokens, t_encode, failures);
    kvz_tokenizer_free(t);
    lines_free(&vocab), lines_free(&merges), lines_free(&meta), lines_free(&cases);
    assert_int_equal(failures, 0);
}

/* ---- a synthetic SentencePiece file: flags and the absence of byte pieces ------------------- */

static kvz_gguf *spm_gguf(int add_bos, int add_space, int with_bytes)
{
    static const char *const pieces[] = {"<unk>",
                                         "<s>",
                                         "</s>",
                                         "\xE2\x96\x81",
                                         "a",
                                         "b",
                                         "\xE2\x96\x81"
                                         "a",
                                         "ab"};
    char *tok[8 + 256];
    float score[8 + 256];
    int32_t type[8 + 256];
    size_t n = 0;
    for (size_t i = 0; i < 8; i++) {
        tok[n] = tu_malloc(16);
        strcpy(tok[n], pieces[i]);
        score[n] = -(float)i;
        type[n] = i == 0 ? 2 : i < 3 ? 3 : 1;
        n++;
    }
    for (int b = 0; with_bytes && b < 256; b++) {
        tok[n] = tu_malloc(8);
        snprintf(tok[n], 8, "<0x%02X>", b);
        score[n] = 0, type[n] = 6;
        n++;
    }
    gb g = {0};
    kv_str(&g, "tokenizer.ggml.model", "llama");
    kv_strs(&g, "tokenizer.ggml.tokens", tok, n);
    kv_arr(&g, "tokenizer.ggml.scores", KVZ_GGUF_F32, score, n);
    kv_arr(&g, "tokenizer.ggml.token_type", KVZ_GGUF_I32, type, n);
    if (add_bos >= 0)
        kv_bool(&g, "tokenizer.ggml.add_bos_token", add_bos);
    if (add_space >= 0)
        kv_bool(&g, "tokenizer.ggml.add_space_prefix", add_space);
    for (size_t i = 0; i < n; i++)
        free(tok[i]);
    return gb_open(&g, "spm");
}

static void test_spm_flags(void **state)
{
    (void)state;
    kvz_tokenizer *t;
    int32_t *ids;
    size_t n;
    char *text;
    /* defaults: BOS and the dummy prefix; "ab a" -> ▁a b ▁a (▁a outranks ab) */
    kvz_gguf *g = spm_gguf(-1, -1, 1);
    assert_int_equal(kvz_tokenizer_from_gguf(g, &t), KVZ_OK);
    kvz_gguf_close(g);
    assert_int_equal(kvz_tokenizer_encode(t, "ab a", 4, 1, 0, &ids, &n), KVZ_OK);
    const int32_t want1[] = {1, 6, 5, 6};
    assert_ids(ids, n, want1, 4, "spm defaults");
    free(ids);
    assert_int_equal(kvz_tokenizer_encode(t, "c", 1, 0, 0, &ids, &n), KVZ_OK); /* ▁ then byte fallback */
    const int32_t want2[] = {3, 8 + 'c'};
    assert_ids(ids, n, want2, 2, "spm byte fallback");
    assert_int_equal(kvz_tokenizer_decode(t, ids, n, 1, &text), KVZ_OK);
    assert_string_equal(text, "c");
    free(text);
    assert_int_equal(kvz_tokenizer_decode(t, ids, n, 0, &text), KVZ_OK);
    assert_string_equal(text, " c");
    free(text), free(ids);
    kvz_tokenizer_free(t);

    /* both off: no BOS, no prefix, nothing stripped */
    g = spm_gguf(0, 0, 1);
    assert_int_equal(kvz_tokenizer_from_gguf(g, &t), KVZ_OK);
    kvz_gguf_close(g);
    assert_int_equal(kvz_tokenizer_encode(t, "ab a", 4, 1, 0, &ids, &n), KVZ_OK);
    const int32_t want3[] = {7, 6};
    assert_ids(ids, n, want3, 2, "spm without BOS and prefix");
    free(ids);
    assert_int_equal(kvz_tokenizer_encode(t, " a", 2, 1, 0, &ids, &n), KVZ_OK);
    assert_int_equal(kvz_tokenizer_decode(t, ids, n, 1, &text), KVZ_OK);
    assert_string_equal(text, " a");
    free(text), free(ids);
    kvz_tokenizer_free(t);

    /* no byte pieces: an unknown character becomes one <unk> */
    g = spm_gguf(0, 1, 0);
    assert_int_equal(kvz_tokenizer_from_gguf(g, &t), KVZ_OK);
    kvz_gguf_close(g);
    assert_int_equal(kvz_tokenizer_encode(t, "a\xC3\xA9", 3, 1, 0, &ids, &n), KVZ_OK);
    const int32_t want4[] = {6, 0}; /* one <unk> for the character */
    assert_ids(ids, n, want4, 2, "spm without byte pieces");
    free(ids);
    kvz_tokenizer_free(t);
}

/* ---- malformed metadata ----------------------------------------------------------------- */

enum {
    BAD_NONE,
    BAD_SCORES_COUNT,
    BAD_BOS,
    BAD_MODEL,
    BAD_PRE,
    BAD_NO_MERGES,
    BAD_MERGE_SPACE,
    BAD_TYPES_COUNT,
    BAD_TYPE_VALUE,
    BAD_NO_TOKENS,
    BAD_TOKENS_TYPE,
    BAD_MODEL_TYPE,
    BAD_SCORES_TYPE,
    BAD_BOS_TYPE,
    BAD_EMPTY_VOCAB,
    BAD_ADD_BOS_TYPE
};

static kvz_gguf *bad_gguf(int bad)
{
    char *tok[5] = {"<unk>", "<s>", "a", "b", "ab"};
    const float score[5] = {0, 0, -1, -2, -3};
    const int32_t type[6] = {2, 3, 1, 1, bad == BAD_TYPE_VALUE ? 9 : 1, 1};
    const int gpt2 = bad == BAD_PRE || bad == BAD_NO_MERGES || bad == BAD_MERGE_SPACE;
    gb g = {0};
    if (bad == BAD_MODEL_TYPE)
        kv_u32(&g, "tokenizer.ggml.model", 1);
    else
        kv_str(&g, "tokenizer.ggml.model", bad == BAD_MODEL ? "bert" : gpt2 ? "gpt2" : "llama");
    if (bad == BAD_PRE)
        kv_str(&g, "tokenizer.ggml.pre", "tekken");
    if (bad == BAD_TOKENS_TYPE)
        kv_u32(&g, "tokenizer.ggml.tokens", 5);
    else if (bad == BAD_EMPTY_VOCAB)
        kv_strs(&g, "tokenizer.ggml.tokens", tok, 0);
    else if (bad != BAD_NO_TOKENS)
        kv_strs(&g, "tokenizer.ggml.tokens", tok, 5);
    if (bad == BAD_SCORES_TYPE)
        kv_arr(&g, "tokenizer.ggml.scores", KVZ_GGUF_I32, type, 5);
    else
        kv_arr(&g, "tokenizer.ggml.scores", KVZ_GGUF_F32, score, bad == BAD_SCORES_COUNT ? 4 : 5);
    kv_arr(&g, "tokenizer.ggml.token_type", KVZ_GGUF_I32, type, bad == BAD_TYPES_COUNT ? 6 : 5);
    if (bad == BAD_BOS_TYPE)
        kv_str(&g, "tokenizer.ggml.bos_token_id", "1");
    else
        kv_u32(&g, "tokenizer.ggml.bos_token_id", bad == BAD_BOS ? 5 : 1);
    if (bad == BAD_ADD_BOS_TYPE)
        kv_str(&g, "tokenizer.ggml.add_bos_token", "yes");
    if (bad == BAD_PRE || bad == BAD_MERGE_SPACE) {
        char *m[2] = {"a b", bad == BAD_MERGE_SPACE ? "ab" : "a b"};
        kv_strs(&g, "tokenizer.ggml.merges", m, 2);
    }
    return gb_open(&g, "bad");
}

static void test_malformed(void **state)
{
    (void)state;
    const struct {
        int bad;
        kvz_status want;
    } cases[] = {
        {BAD_NONE, KVZ_OK},
        {BAD_SCORES_COUNT, KVZ_ERR_FORMAT},
        {BAD_BOS, KVZ_ERR_FORMAT},
        {BAD_MODEL, KVZ_ERR_UNSUPPORTED},
        {BAD_PRE, KVZ_ERR_UNSUPPORTED},
        {BAD_NO_MERGES, KVZ_ERR_FORMAT},
        {BAD_MERGE_SPACE, KVZ_ERR_FORMAT},
        {BAD_TYPES_COUNT, KVZ_ERR_FORMAT},
        {BAD_TYPE_VALUE, KVZ_ERR_FORMAT},
        {BAD_NO_TOKENS, KVZ_ERR_FORMAT},
        {BAD_TOKENS_TYPE, KVZ_ERR_FORMAT},
        {BAD_MODEL_TYPE, KVZ_ERR_FORMAT},
        {BAD_SCORES_TYPE, KVZ_ERR_FORMAT},
        {BAD_BOS_TYPE, KVZ_ERR_FORMAT},
        {BAD_EMPTY_VOCAB, KVZ_ERR_FORMAT},
        {BAD_ADD_BOS_TYPE, KVZ_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kvz_gguf *g = bad_gguf(cases[i].bad);
        kvz_tokenizer *t = NULL;
        const kvz_status st = kvz_tokenizer_from_gguf(g, &t);
        if (st != cases[i].want)
            fail_msg("case %d: status %d, want %d (%s)", cases[i].bad, st, cases[i].want, kvz_last_error());
        if (st == KVZ_OK) {
            int32_t *ids;
            size_t n;
            assert_int_equal(kvz_tokenizer_encode(t, "ab", 2, 1, 0, &ids, &n), KVZ_OK);
            const int32_t want[] = {1, 0, 4}; /* BOS, ▁ (no such piece nor byte pieces: <unk>), ab */
            assert_ids(ids, n, want, 3, "minimal llama vocabulary");
            free(ids);
        } else {
            assert_null(t);
            assert_true(kvz_last_error()[0] != '\0');
            if (cases[i].bad == BAD_MODEL)
                assert_non_null(strstr(kvz_last_error(), "bert"));
            if (cases[i].bad == BAD_PRE)
                assert_non_null(strstr(kvz_last_error(), "tekken"));
        }
        kvz_tokenizer_free(t);
        kvz_gguf_close(g);
    }
    kvz_tokenizer *t;
    assert_int_equal(kvz_tokenizer_from_gguf(NULL, &t), KVZ_ERR_NULL);
    int32_t *ids;
    size_t n;
    assert_int_equal(kvz_tokenizer_encode(NULL, "a", 1, 1, 1, &ids, &n), KVZ_ERR_NULL);
    kvz_tokenizer_free(NULL);
    assert_int_equal(kvz_tokenizer_vocab(NULL), 0);
    assert_int_equal(kvz_tokenizer_find(NULL, "a"), -1);
}

/* ======================================================================================
 * Chat templates
 * ====================================================================================== */

static void test_chat_templates(void **state)
{
    (void)state;
    const struct {
        const char *tmpl;
        kvz_chat_family want;
    } samples[] = {
        {"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
         "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
         "'<|eot_id|>' %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
         "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
         KVZ_CHAT_LLAMA3},
        {"{%- for message in messages %}{{- '<|im_start|>' + message.role + '\n' + message.content + "
         "'<|im_end|>' + '\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}"
         "{%- endif %}",
         KVZ_CHAT_CHATML},
        {"{%- for message in messages %}{{- '<|im_start|>' + message.role + '\n' + message.content }}"
         "{%- endfor %}{%- if enable_thinking is defined and enable_thinking is false %}"
         "{{- '<think>\n\n</think>\n\n' }}{%- endif %}",
         KVZ_CHAT_QWEN3},
        {"{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\n' + message['content'] "
         "| trim "
         "+ '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif "
         "%}",
         KVZ_CHAT_GEMMA},
        {"{{ bos_token }}{% for message in messages %}[INST] {{ message['content'] }} [/INST]{% endfor %}",
         KVZ_CHAT_PLAIN},
        {"", KVZ_CHAT_PLAIN},
    };
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
        assert_int_equal(kvz_chat_detect(samples[i].tmpl, strlen(samples[i].tmpl)), samples[i].want);
    assert_int_equal(kvz_chat_detect(NULL, 0), KVZ_CHAT_PLAIN);
    assert_int_equal(kvz_chat_detect("xx<|im_start|>", 5), KVZ_CHAT_PLAIN); /* len is respected */
    assert_int_equal(kvz_chat_detect("<|im_start|><think>", 12), KVZ_CHAT_CHATML);
    assert_string_equal(kvz_chat_family_name(KVZ_CHAT_LLAMA3), "llama3");
    assert_string_equal(kvz_chat_family_name(KVZ_CHAT_QWEN3), "qwen3");
    assert_string_equal(kvz_chat_family_name((kvz_chat_family)99), "unknown");

    /* spec/kvzip.md §1.1 and §1.3, character for character */
    const char *instr =
        "Given the context, answer to the following question or request without explanation.\n\n";
    const char *instr_gsm = "Given the context, answer to the following reasoning question.\n\n";
    const struct {
        kvz_chat_family f;
        const char *sys, *post;
    } want[] = {
        {KVZ_CHAT_LLAMA3,
         "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
         "<|start_header_id|>user<|end_header_id|>\n\n",
         "\n\n<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
        {KVZ_CHAT_CHATML, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n",
         "<|im_end|>\n<|im_start|>assistant\n"},
        {KVZ_CHAT_QWEN3, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n",
         "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"},
        {KVZ_CHAT_GEMMA, "<bos><start_of_turn>user\nYou are a helpful assistant.\n\n",
         "<end_of_turn>\n<start_of_turn>model\n"},
        {KVZ_CHAT_PLAIN, "<|begin_of_text|>", "\n\nAnswer: "},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        for (int gsm = 0; gsm < 2; gsm++) {
            kvz_chat_pieces p;
            assert_int_equal(kvz_chat_pieces_for(want[i].f, gsm, &p), KVZ_OK);
            char sys[512];
            snprintf(sys, sizeof sys, "%s%s", want[i].sys, gsm ? instr_gsm : instr);
            assert_string_equal(p.sys_prefix, sys);
            assert_string_equal(p.postfix, want[i].post);
            assert_string_equal(p.repeat_first, "\n\nRepeat the previous context exactly.");
            assert_string_equal(p.repeat_next,
                                "\n\nRepeat the part of the previous context exactly, starting with ");
        }
    kvz_chat_pieces p;
    assert_int_equal(kvz_chat_pieces_for((kvz_chat_family)7, 0, &p), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_chat_pieces_for(KVZ_CHAT_PLAIN, 0, NULL), KVZ_ERR_NULL);

    /* the question turn: "\n\n" + q.strip(), the postfix encoded apart (or appended on request) */
    char *q;
    const char *ask = " \t What color was the kite?\n ";
    assert_int_equal(kvz_chat_question(KVZ_CHAT_CHATML, ask, strlen(ask), 0, &q), KVZ_OK);
    assert_string_equal(q, "\n\nWhat color was the kite?");
    free(q);
    assert_int_equal(kvz_chat_question(KVZ_CHAT_LLAMA3, ask, strlen(ask), 1, &q), KVZ_OK);
    assert_string_equal(
        q, "\n\nWhat color was the kite?\n\n<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    free(q);
    assert_int_equal(kvz_chat_question(KVZ_CHAT_PLAIN, "   ", 3, 0, &q), KVZ_OK);
    assert_string_equal(q, "\n\n");
    free(q);
    assert_int_equal(kvz_chat_question(KVZ_CHAT_PLAIN, NULL, 0, 1, &q), KVZ_OK);
    assert_string_equal(q, "\n\n\n\nAnswer: ");
    free(q);
    assert_int_equal(kvz_chat_question((kvz_chat_family)-1, "a", 1, 0, &q), KVZ_ERR_INVALID_ARG);
    assert_null(q);
}

/* The pieces through the stories260K tokenizer: the plain family's prefix is ordinary text there. */
static void test_chat_on_stories(void **state)
{
    (void)state;
    TU_NEED_SHARED(model, TU_STORIES);
    kvz_gguf *g;
    kvz_tokenizer *t;
    assert_int_equal(kvz_gguf_open(model, &g), KVZ_OK);
    assert_int_equal(kvz_tokenizer_from_gguf(g, &t), KVZ_OK);
    assert_null(kvz_gguf_find(g, "tokenizer.chat_template")); /* README: no template */
    kvz_gguf_close(g);
    kvz_chat_pieces p;
    assert_int_equal(kvz_chat_pieces_for(kvz_chat_detect(NULL, 0), 0, &p), KVZ_OK);
    const char *texts[] = {p.sys_prefix, p.postfix, p.repeat_first, p.repeat_next};
    for (size_t i = 0; i < 4; i++) {
        int32_t *ids;
        size_t n;
        char *text;
        assert_int_equal(kvz_tokenizer_encode(t, texts[i], strlen(texts[i]), 0, 1, &ids, &n), KVZ_OK);
        assert_true(n > 0);
        assert_int_equal(kvz_tokenizer_decode(t, ids, n, 1, &text), KVZ_OK);
        assert_string_equal(text, texts[i]);
        free(text), free(ids);
    }
    kvz_tokenizer_free(t);
}

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kvz-tok-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    rmdir(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories_vectors),
        cmocka_unit_test(test_stories_reference),
        cmocka_unit_test(test_bpe_reference),
        cmocka_unit_test(test_bpe_special_and_roundtrip),
        cmocka_unit_test(test_spm_flags),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_chat_templates),
        cmocka_unit_test(test_chat_on_stories),
        cmocka_unit_test(test_bpe_nfc),
        cmocka_unit_test(test_bpe_vocab_reference),
        cmocka_unit_test(test_many_special_tokens),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
