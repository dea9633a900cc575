/* A host of libkvz written only against kvz.h: its own 2-layer transformer with seeded weights
 * prefills a context into a cache, scores it with KVzip's reconstruction passes through the host
 * API (kvz_kvzip_pass, kvz_cache_attend's scoring mode), compresses it, saves and loads it, and
 * answers two questions from both copies with kvz_query, which must agree.
 *
 * usage: toy_host [--ratio R] [--save FILE.kvz] [--scores FILE] [--kept FILE]
 *   --scores writes "layer head token score" lines, --kept "layer head token" lines of the kept
 *   context rows, token counted from the context's start (tests/test_example_host.sh checks the
 *   selection with them). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvz.h"

/* The model: byte tokens (printable ASCII and newline), Llama-like layers. */
enum { VOCAB = 96, DIM = 64, LAYERS = 2, HQ = 4, HK = 2, HD = 16, FF = 128, MAX_TOKENS = 512 };
#define GROUP (HQ / HK)

typedef struct layer_w {
    float norm1[DIM], norm2[DIM];
    float wq[HQ * HD][DIM], wk[HK * HD][DIM], wv[HK * HD][DIM], wo[DIM][HQ * HD];
    float w1[FF][DIM], w3[FF][DIM], w2[DIM][FF];
} layer_w;

typedef struct model {
    float emb[VOCAB][DIM], norm[DIM], out[VOCAB][DIM];
    layer_w layer[LAYERS];
} model;

static uint64_t rng_state = 0x6b767a2d686f7374u; /* "kvz-host" */

static float uniform(float scale) /* splitmix64, uniform in [-scale, scale) */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return scale * (float)((double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill(float *w, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        w[i] = uniform(scale);
}

static void init_model(model *m)
{
    fill(&m->emb[0][0], sizeof m->emb / sizeof(float), 1.0f);
    fill(&m->out[0][0], sizeof m->out / sizeof(float), 1.0f);
    for (size_t i = 0; i < DIM; i++)
        m->norm[i] = 1.0f;
    for (size_t l = 0; l < LAYERS; l++) {
        layer_w *w = &m->layer[l];
        for (size_t i = 0; i < DIM; i++)
            w->norm1[i] = w->norm2[i] = 1.0f;
        const float s = 1.0f / sqrtf((float)DIM);
        fill(&w->wq[0][0], sizeof w->wq / sizeof(float), 2 * s);
        fill(&w->wk[0][0], sizeof w->wk / sizeof(float), 2 * s);
        fill(&w->wv[0][0], sizeof w->wv / sizeof(float), s);
        fill(&w->wo[0][0], sizeof w->wo / sizeof(float), s);
        fill(&w->w1[0][0], sizeof w->w1 / sizeof(float), s);
        fill(&w->w3[0][0], sizeof w->w3 / sizeof(float), s);
        fill(&w->w2[0][0], sizeof w->w2 / sizeof(float), 1.0f / sqrtf((float)FF));
    }
}

static int32_t token_of(char c) { return c == '\n' ? 0 : (c >= 32 && c < 127) ? c - 31 : 1; }
static char char_of(int32_t t) { return t == 0 ? '\n' : (char)(t + 31); }

static size_t tokenize(const char *s, int32_t *ids)
{
    size_t n = 0;
    for (; *s; s++)
        ids[n++] = token_of(*s);
    return n;
}

static void rmsnorm(float *out, const float *x, const float *g)
{
    float ss = 0;
    for (size_t i = 0; i < DIM; i++)
        ss += x[i] * x[i];
    const float r = 1.0f / sqrtf(ss / DIM + 1e-6f);
    for (size_t i = 0; i < DIM; i++)
        out[i] = x[i] * r * g[i];
}

static void matvec(float *out, const float *w, const float *x, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++) {
        float s = 0;
        for (size_t c = 0; c < cols; c++)
            s += w[r * cols + c] * x[c];
        out[r] = s;
    }
}

static void rope(float *v, int64_t pos) /* pairs (i, i + HD/2) of one head */
{
    for (size_t i = 0; i < HD / 2; i++) {
        const double a = (double)pos * pow(10000.0, -2.0 * (double)i / HD);
        const float c = (float)cos(a), s = (float)sin(a), x = v[i], y = v[i + HD / 2];
        v[i] = x * c - y * s, v[i + HD / 2] = x * s + y * c;
    }
}

/* Where a forward writes its K/V and what it attends over: the cache itself (prefill and KVzip
 * passes) or a question's private tail (kvz_query). */
typedef struct target {
    kvz_cache *cache;
    kvz_query *query;
    const kvz_kvzip_pass_info *pass; /* a KVzip pass: the scoring fields */
    float *scores;                   /* [layer][HK][n_ctx], max-folded */
    size_t n_sys, n_ctx;
} target;

static kvz_status check(kvz_status st, const char *what)
{
    if (st != KVZ_OK)
        fprintf(stderr, "toy_host: %s: %s (%s)\n", what, kvz_strerror(st), kvz_last_error());
    return st;
}

/* n tokens at positions pos0.. through every layer; logits of the last token (optional). */
static kvz_status forward(const model *m, const target *t, const int32_t *ids, size_t n, int64_t pos0,
                          float *logits)
{
    static float x[MAX_TOKENS][DIM], h[DIM], q[MAX_TOKENS][HQ * HD], k[MAX_TOKENS][HK * HD],
        v[MAX_TOKENS][HK * HD], att[MAX_TOKENS][HQ * HD];
    if (n > MAX_TOKENS)
        return KVZ_ERR_INVALID_ARG;
    for (size_t i = 0; i < n; i++)
        memcpy(x[i], m->emb[ids[i]], sizeof x[i]);
    kvz_status st = KVZ_OK;
    for (size_t l = 0; l < LAYERS && st == KVZ_OK; l++) {
        const layer_w *w = &m->layer[l];
        for (size_t i = 0; i < n; i++) {
            rmsnorm(h, x[i], w->norm1);
            matvec(q[i], &w->wq[0][0], h, HQ * HD, DIM);
            matvec(k[i], &w->wk[0][0], h, HK * HD, DIM);
            matvec(v[i], &w->wv[0][0], h, HK * HD, DIM);
            for (size_t hh = 0; hh < HQ; hh++)
                rope(q[i] + hh * HD, pos0 + (int64_t)i);
            for (size_t hh = 0; hh < HK; hh++)
                rope(k[i] + hh * HD, pos0 + (int64_t)i);
        }
        kvz_attend_args a = {.struct_size = sizeof a,
                             .group = GROUP,
                             .n_q = n,
                             .q = &q[0][0],
                             .q_token_stride = HQ * HD,
                             .q_head_stride = HD,
                             .out = &att[0][0],
                             .out_token_stride = HQ * HD,
                             .out_head_stride = HD};
        if (t->pass) { /* KVzip: fold this layer's reconstruction scores in */
            a.score = t->scores + l * HK * t->n_ctx + (t->pass->chunk_begin - t->n_sys);
            a.score_head_stride = (ptrdiff_t)t->n_ctx;
            a.sink_end = t->pass->sink_end, a.chunk_begin = t->pass->chunk_begin,
            a.chunk_end = t->pass->chunk_end;
        }
        if (t->query) {
            st = check(kvz_query_append(t->query, l, n, &k[0][0], &v[0][0], HK * HD, HD), "kvz_query_append");
            if (st == KVZ_OK)
                st = check(kvz_query_attend(t->query, l, &a), "kvz_query_attend");
        } else {
            st = check(kvz_cache_append(t->cache, l, n, &k[0][0], &v[0][0], HK * HD, HD), "kvz_cache_append");
            if (st == KVZ_OK)
                st = check(kvz_cache_attend(t->cache, l, &a), "kvz_cache_attend");
        }
        for (size_t i = 0; i < n && st == KVZ_OK; i++) {
            float o[DIM], g[FF], u[FF];
            matvec(o, &w->wo[0][0], att[i], DIM, HQ * HD);
            for (size_t j = 0; j < DIM; j++)
                x[i][j] += o[j];
            rmsnorm(h, x[i], w->norm2);
            matvec(g, &w->w1[0][0], h, FF, DIM);
            matvec(u, &w->w3[0][0], h, FF, DIM);
            for (size_t j = 0; j < FF; j++)
                g[j] = g[j] / (1.0f + expf(-g[j])) * u[j];
            matvec(o, &w->w2[0][0], g, DIM, FF);
            for (size_t j = 0; j < DIM; j++)
                x[i][j] += o[j];
        }
    }
    if (st == KVZ_OK && logits) {
        rmsnorm(h, x[n - 1], m->norm);
        matvec(logits, &m->out[0][0], h, VOCAB, DIM);
    }
    return st;
}

static int32_t argmax(const float *v)
{
    int32_t best = 0;
    for (int32_t i = 1; i < VOCAB; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* A question asked on a cache through a kvz_query: the greedy answer's first n_out tokens and the
 * logits of each (n_out x VOCAB). */
static kvz_status ask(const model *m, const kvz_cache *cache, const char *question, int32_t *out, float *logits,
                      size_t n_out)
{
    kvz_query *q = NULL;
    kvz_status st = check(kvz_query_create(cache, &q), "kvz_query_create");
    int64_t next = 0;
    if (st == KVZ_OK)
        st = check(kvz_query_next_position(q, 0, &next), "kvz_query_next_position");
    int32_t ids[MAX_TOKENS];
    size_t n = tokenize(question, ids);
    const target t = {.query = q};
    for (size_t i = 0; i < n_out && st == KVZ_OK; i++) {
        st = forward(m, &t, ids, n, next, logits + i * VOCAB);
        next += (int64_t)n;
        out[i] = ids[0] = argmax(logits + i * VOCAB), n = 1;
    }
    kvz_query_destroy(q);
    return st;
}

static const char SYSTEM[] = "You are a helpful assistant.\n";
static const char CONTEXT[] =
    "The lighthouse keeper of Varn Island kept three lamps: a red one for storms, a green one for "
    "the ferry from Osk, and a white one that he lit only on the longest night of the year. In the "
    "spring of the flood year the ferry stopped running, the green lamp went dark, and the keeper "
    "walked to the mainland across the sandbar at low tide to buy oil for the red lamp.\n";
static const char REPEAT_FIRST[] = "\n\nRepeat the previous context exactly.";
static const char REPEAT_NEXT[] = "\n\nRepeat the part of the previous context exactly, starting with ";
static const char POSTFIX[] = "\nA: ";
static const char *const QUESTIONS[2] = {"\nQ: Which lamp was lit on the longest night?\nA: ",
                                         "\nQ: Where did the ferry come from?\nA: "};

int main(int argc, char **argv)
{
    double ratio = 0.3;
    const char *save = NULL, *scores_path = NULL, *kept_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ratio") && i + 1 < argc)
            ratio = atof(argv[++i]);
        else if (!strcmp(argv[i], "--save") && i + 1 < argc)
            save = argv[++i];
        else if (!strcmp(argv[i], "--scores") && i + 1 < argc)
            scores_path = argv[++i];
        else if (!strcmp(argv[i], "--kept") && i + 1 < argc)
            kept_path = argv[++i];
        else {
            fprintf(stderr, "usage: toy_host [--ratio R] [--save FILE.kvz] [--scores FILE] [--kept FILE]\n");
            return 2;
        }
    }
    static model m;
    init_model(&m);
    static int32_t sys[64], ctx[MAX_TOKENS], rf[64], rn[96], post[16], all[MAX_TOKENS];
    const size_t n_sys = tokenize(SYSTEM, sys), n_ctx = tokenize(CONTEXT, ctx);
    const size_t n_rf = tokenize(REPEAT_FIRST, rf), n_rn = tokenize(REPEAT_NEXT, rn),
                 n_post = tokenize(POSTFIX, post);

    /* prefill [system | context] */
    const kvz_cache_config cfg = {.struct_size = sizeof cfg,
                                  .n_layers = LAYERS,
                                  .n_kv_heads = HK,
                                  .head_dim = HD,
                                  .dtype = KVZ_DTYPE_F32};
    kvz_cache *cache = NULL;
    if (check(kvz_cache_create(&cfg, &cache), "kvz_cache_create") != KVZ_OK)
        return 1;
    memcpy(all, sys, n_sys * sizeof *all);
    memcpy(all + n_sys, ctx, n_ctx * sizeof *all);
    const target prefill = {.cache = cache};
    kvz_status st = forward(&m, &prefill, all, n_sys + n_ctx, 0, NULL);

    /* KVzip: the reconstruction passes, each scoring its chunk and dropped again */
    const kvz_kvzip_plan plan = {.struct_size = sizeof plan,
                                 .n_sys = n_sys,
                                 .n_ctx = n_ctx,
                                 .ctx = ctx,
                                 .repeat_first = rf,
                                 .n_repeat_first = n_rf,
                                 .repeat_next = rn,
                                 .n_repeat_next = n_rn,
                                 .postfix = post,
                                 .n_postfix = n_post,
                                 .chunk = 128, /* the reference's 2000, scaled to this context */
                                 .prev_tokens = KVZ_KVZIP_PREV_TOKENS};
    size_t n_passes = 0, max_ids = 0;
    if (st == KVZ_OK)
        st = check(kvz_kvzip_passes(&plan, &n_passes, &max_ids), "kvz_kvzip_passes");
    if (st == KVZ_OK)
        st = check(kvz_cache_reserve(cache, max_ids), "kvz_cache_reserve");
    float *scores = calloc(LAYERS * HK * n_ctx, sizeof *scores);
    int32_t *ids = malloc((max_ids ? max_ids : 1) * sizeof *ids);
    if (!scores || !ids)
        st = KVZ_ERR_NOMEM;
    for (size_t p = 0; p < n_passes && st == KVZ_OK; p++) {
        kvz_kvzip_pass_info info = {.struct_size = sizeof info};
        if ((st = check(kvz_kvzip_check_cache(cache, n_sys, n_ctx), "kvz_kvzip_check_cache")) != KVZ_OK ||
            (st = check(kvz_kvzip_pass(&plan, p, ids, max_ids, &info), "kvz_kvzip_pass")) != KVZ_OK)
            break;
        const target pass = {.cache = cache, .pass = &info, .scores = scores, .n_sys = n_sys, .n_ctx = n_ctx};
        if ((st = forward(&m, &pass, ids, info.n_ids, info.position, NULL)) == KVZ_OK)
            st = check(kvz_cache_truncate(cache, info.n_ids), "kvz_cache_truncate");
    }
    kvz_cache_stats before = {.struct_size = sizeof before}, after = {.struct_size = sizeof after};
    const kvz_policy_args policy = {
        .struct_size = sizeof policy, .policy = KVZ_POLICY_KVZIP_PAIR, .ratio = ratio};
    size_t kept = 0;
    if (st == KVZ_OK)
        st = check(kvz_cache_get_stats(cache, &before), "kvz_cache_get_stats");
    if (st == KVZ_OK)
        st = check(kvz_kvzip_compress(cache, n_sys, n_ctx, scores, &policy, &kept), "kvz_kvzip_compress");
    if (st == KVZ_OK)
        st = check(kvz_cache_get_stats(cache, &after), "kvz_cache_get_stats");
    if (st == KVZ_OK)
        printf("context %zu tokens after a %zu-token system prompt; %zu KVzip passes; kept %zu of %zu context "
               "rows (ratio %.2f); cache %zu -> %zu bytes\n",
               n_ctx, n_sys, n_passes, kept, (size_t)LAYERS * HK * n_ctx, ratio, (size_t)before.bytes_used,
               (size_t)after.bytes_used);

    FILE *f = scores_path && st == KVZ_OK ? fopen(scores_path, "w") : NULL;
    for (size_t i = 0; f && i < LAYERS * HK * n_ctx; i++)
        fprintf(f, "%zu %zu %zu %.9g\n", i / (HK * n_ctx), i / n_ctx % HK, i % n_ctx, scores[i]);
    if (f && fclose(f) != 0)
        st = KVZ_ERR_IO;
    f = kept_path && st == KVZ_OK ? fopen(kept_path, "w") : NULL;
    for (size_t l = 0; f && l < LAYERS; l++)
        for (size_t h = 0; h < HK; h++) {
            const int64_t *pos;
            size_t len;
            kvz_cache_length(cache, l, h, &len);
            kvz_cache_positions(cache, l, h, &pos);
            for (size_t j = 0; j < len; j++)
                if (pos[j] >= (int64_t)n_sys && pos[j] < (int64_t)(n_sys + n_ctx))
                    fprintf(f, "%zu %zu %lld\n", l, h, (long long)(pos[j] - (int64_t)n_sys));
        }
    if (f && fclose(f) != 0)
        st = KVZ_ERR_IO;

    /* save, load, and ask both copies */
    char tmp_path[] = "/tmp/toy_host-XXXXXX";
    if (!save && st == KVZ_OK) {
        const int fd = mkstemp(tmp_path);
        if (fd >= 0)
            close(fd), save = tmp_path;
    }
    kvz_cache *loaded = NULL;
    if (st == KVZ_OK)
        st = check(kvz_cache_save(cache, save, NULL), "kvz_cache_save");
    if (st == KVZ_OK)
        st = check(kvz_cache_load(save, NULL, &loaded, NULL), "kvz_cache_load");
    for (size_t i = 0; i < 2 && st == KVZ_OK; i++) {
        int32_t a[12], b[12];
        static float la[12 * VOCAB], lb[12 * VOCAB];
        if ((st = ask(&m, cache, QUESTIONS[i], a, la, 12)) != KVZ_OK ||
            (st = ask(&m, loaded, QUESTIONS[i], b, lb, 12)) != KVZ_OK)
            break;
        printf("question %zu answer (random weights, so noise):", i + 1);
        for (size_t j = 0; j < 12; j++)
            printf(" %d", a[j]);
        printf("  \"");
        for (size_t j = 0; j < 12; j++)
            putchar(char_of(a[j]) == '\n' ? ' ' : char_of(a[j]));
        printf("\"\n");
        if (memcmp(a, b, sizeof a) || memcmp(la, lb, sizeof la)) { /* f32 rows: the file keeps every bit */
            fprintf(stderr, "toy_host: question %zu: the loaded cache answers differently\n", i + 1);
            st = KVZ_ERR_MISMATCH;
        }
    }
    if (st == KVZ_OK)
        printf("the cache saved to and loaded from %s answers both questions the same\n",
               save == tmp_path ? "a .kvz file" : save);
    if (save == tmp_path)
        unlink(tmp_path);
    kvz_cache_destroy(loaded);
    kvz_cache_destroy(cache);
    free(scores), free(ids);
    return st == KVZ_OK ? 0 : 1;
}
