/* Loading a GGUF decoder (the Llama family and Gemma 3): hyper-parameters from the metadata,
 * every tensor checked for presence, type and shape, weights converted once into what oneDNN
 * multiplies. */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/pool.h"
#include "model/dequant.h"

/* ---- metadata ------------------------------------------------------------------------ */

static kvz_status get_u64(const kvz_gguf *g, const char *arch, const char *suffix, int required, uint64_t dflt,
                          uint64_t *v)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!kvz_gguf_find(g, key)) {
        if (required)
            return kvz_fail(KVZ_ERR_FORMAT, "model: metadata key '%s' is missing", key);
        *v = dflt;
        return KVZ_OK;
    }
    kvz_status st = kvz_gguf_get_u64(g, key, v);
    if (st != KVZ_OK)
        return kvz_fail(KVZ_ERR_FORMAT, "model: metadata key '%s' is not an integer", key);
    return KVZ_OK;
}

static kvz_status get_f32(const kvz_gguf *g, const char *arch, const char *suffix, float dflt, float *v)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!kvz_gguf_find(g, key)) {
        *v = dflt;
        return KVZ_OK;
    }
    if (kvz_gguf_get_f32(g, key, v) != KVZ_OK)
        return kvz_fail(KVZ_ERR_FORMAT, "model: metadata key '%s' is not a float", key);
    return KVZ_OK;
}

/* Gemma 3's additions (spec/models.md section 3, as llama.cpp reads them): the embedding scale,
 * the query scale, GELU, and the sliding-window layers with their own RoPE base. */
static kvz_status gemma3_hparams(const kvz_gguf *g, kvz_hparams *hp)
{
    uint64_t window, period;
    kvz_status st;
    if ((st = get_u64(g, "gemma3", "attention.sliding_window", 0, 0, &window)) ||
        (st = get_u64(g, "gemma3", "attention.sliding_window_pattern", 0, 6, &period)) ||
        (st = get_f32(g, "gemma3", "rope.freq_base_swa", 10000.0f, &hp->rope_base_swa)))
        return st;
    if (kvz_gguf_find(g, "gemma3.final_logit_softcapping"))
        return kvz_fail(KVZ_ERR_UNSUPPORTED, "model: gemma3.final_logit_softcapping is not supported");
    if (hp->rope_linear_factor != 1.0f)
        return kvz_fail(KVZ_ERR_UNSUPPORTED, "model: gemma3 with rope scaling is not supported");
    if (!period || period > hp->n_layers + 1 || !(hp->rope_base_swa > 0))
        return kvz_fail(KVZ_ERR_FORMAT, "model: gemma3 sliding-window period %llu / local rope base %g",
                        (unsigned long long)period, (double)hp->rope_base_swa);
    hp->swa_window = window, hp->swa_period = period;
    hp->embd_scale = sqrtf((float)hp->n_embd);
    /* the 27B model scales queries by 1/sqrt(n_embd / n_head) (its query_pre_attn_scalar), the
       others by 1/sqrt(head_dim); llama.cpp tells the 27B by its 62 layers */
    hp->attn_scale = 1.0f / sqrtf((float)(hp->n_layers == 62 ? hp->n_embd / hp->n_head : hp->head_dim));
    hp->ffn_act = KVZ_FFN_GELU_TANH;
    return KVZ_OK;
}

static kvz_status read_hparams(const kvz_gguf *g, kvz_hparams *hp)
{
    kvz_gguf_str a;
    if (kvz_gguf_get_str(g, "general.architecture", &a) != KVZ_OK)
        return kvz_fail(KVZ_ERR_FORMAT, "model: general.architecture is missing");
    if (a.n >= sizeof hp->arch)
        return kvz_fail(KVZ_ERR_UNSUPPORTED,
                        "model: architecture '%.*s' is not supported (llama, mistral, qwen2, gemma3)",
                        (int)(a.n > 64 ? 64 : a.n), a.p);
    memcpy(hp->arch, a.p, a.n);
    hp->arch[a.n] = '\0';
    const char *arch = hp->arch;
    const int gemma3 = !strcmp(arch, "gemma3");
    if (strcmp(arch, "llama") && strcmp(arch, "mistral") && strcmp(arch, "qwen2") && !gemma3)
        return kvz_fail(KVZ_ERR_UNSUPPORTED,
                        "model: architecture '%s' is not supported (llama, mistral, qwen2, gemma3)", arch);
    /* llama/mistral rotate adjacent pairs (ggml's normal mode); qwen2 and gemma3 the NeoX halves */
    hp->rope_mode = strcmp(arch, "qwen2") && !gemma3 ? KVZ_ROPE_NORM : KVZ_ROPE_NEOX;
    uint64_t layers, embd, ff, heads, heads_kv, hd, rope_dim, ctx;
    kvz_status st;
    if ((st = get_u64(g, arch, "block_count", 1, 0, &layers)) ||
        (st = get_u64(g, arch, "embedding_length", 1, 0, &embd)) ||
        (st = get_u64(g, arch, "feed_forward_length", 1, 0, &ff)) ||
        (st = get_u64(g, arch, "attention.head_count", 1, 0, &heads)) ||
        (st = get_u64(g, arch, "attention.head_count_kv", 0, heads, &heads_kv)) ||
        (st = get_u64(g, arch, "context_length", 0, 0, &ctx)))
        return st;
    if (!layers || !embd || !ff || !heads || !heads_kv || heads % heads_kv || layers > 4096 ||
        embd > (1u << 20) || ff > (1u << 22) || heads > 1024)
        return kvz_fail(KVZ_ERR_FORMAT,
                        "model: implausible shape: %llu layers, embedding %llu, ffn %llu, heads %llu / kv %llu",
                        (unsigned long long)layers, (unsigned long long)embd, (unsigned long long)ff,
                        (unsigned long long)heads, (unsigned long long)heads_kv);
    if ((st = get_u64(g, arch, "attention.key_length", 0, embd / heads, &hd)))
        return st;
    if ((st = get_u64(g, arch, "rope.dimension_count", 0, hd, &rope_dim)))
        return st;
    if (!hd || hd > 256 || rope_dim > hd || rope_dim % 2)
        return kvz_fail(KVZ_ERR_UNSUPPORTED,
                        "model: head_dim %llu / rope dims %llu (head_dim 1..256, even rope dims)",
                        (unsigned long long)hd, (unsigned long long)rope_dim);
    hp->n_layers = layers, hp->n_embd = embd, hp->n_ff = ff, hp->n_head = heads, hp->n_head_kv = heads_kv;
    hp->head_dim = hd, hp->rope_dim = rope_dim, hp->n_ctx_train = ctx;
    if ((st = get_f32(g, arch, "rope.freq_base", 10000.0f, &hp->rope_base)) ||
        (st = get_f32(g, arch, "attention.layer_norm_rms_epsilon", 1e-5f, &hp->eps)))
        return st;
    hp->rope_linear_factor = 1.0f;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    kvz_gguf_str type;
    if (kvz_gguf_find(g, key) && kvz_gguf_get_str(g, key, &type) == KVZ_OK &&
        !(type.n == 4 && !memcmp(type.p, "none", 4))) {
        if (!(type.n == 6 && !memcmp(type.p, "linear", 6)))
            return kvz_fail(KVZ_ERR_UNSUPPORTED, "model: rope scaling '%.*s' is not supported (none, linear)",
                            (int)(type.n > 32 ? 32 : type.n), type.p);
        if ((st = get_f32(g, arch, "rope.scaling.factor", 1.0f, &hp->rope_linear_factor)))
            return st;
        if (!(hp->rope_linear_factor > 0))
            return kvz_fail(KVZ_ERR_FORMAT, "model: rope scaling factor %g", (double)hp->rope_linear_factor);
    }
    if (!(hp->rope_base > 0) || !(hp->eps > 0))
        return kvz_fail(KVZ_ERR_FORMAT, "model: rope base %g / rms epsilon %g must be positive",
                        (double)hp->rope_base, (double)hp->eps);
    return gemma3 ? gemma3_hparams(g, hp) : KVZ_OK;
}

/* ---- tensors ------------------------------------------------------------------------- */

static void *own(kvz_model *m, size_t bytes)
{
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **p = realloc(m->owned, cap * sizeof *p);
        if (!p)
            return NULL;
        m->owned = p, m->cap_owned = cap;
    }
    void *b = kvz_aligned_alloc(bytes ? bytes : 64);
    if (b)
        m->owned[m->n_owned++] = b;
    return b;
}

/* Elements [first, first + n) of a tensor as f32; first and n are whole blocks of its type,
 * which every caller guarantees by whole rows (a row is whole blocks: kvz_gguf_open checks it). */
static kvz_status tensor_to_f32(const kvz_gguf_tensor *t, size_t first, size_t n, float *out)
{
    const kvz_ggml_type *ty = kvz_ggml_type_of(t->type);
    return kvz_dequantize(out, KVZ_DTYPE_F32, (const uint8_t *)t->data + first / ty->block * ty->bytes, t->type,
                          n);
}

static const kvz_gguf_tensor *find(const kvz_model *m, const char *name, uint64_t ne0, uint64_t ne1,
                                   int required, kvz_status *st)
{
    const kvz_gguf_tensor *t = kvz_gguf_tensor_find(m->gguf, name);
    if (!t) {
        if (required)
            *st = kvz_fail(KVZ_ERR_FORMAT, "model: tensor '%s' is missing", name);
        return NULL;
    }
    const uint64_t want_dims = ne1 ? 2 : 1;
    if (t->n_dims != want_dims || t->dims[0] != ne0 || (ne1 && t->dims[1] != ne1)) {
        *st = kvz_fail(KVZ_ERR_FORMAT, "model: tensor '%s' has shape [%llu, %llu], expected [%llu, %llu]", name,
                       (unsigned long long)t->dims[0], (unsigned long long)(t->n_dims > 1 ? t->dims[1] : 1),
                       (unsigned long long)ne0, (unsigned long long)(ne1 ? ne1 : 1));
        return NULL;
    }
    return t;
}

/* A 1-D f32 vector (norm weights, biases, rope factors): the mapping itself when F32. */
static const float *vector_f32(kvz_model *m, const char *name, uint64_t n, int required, kvz_status *st)
{
    const kvz_gguf_tensor *t = find(m, name, n, 0, required, st);
    if (!t)
        return NULL;
    if (t->type == KVZ_GGML_F32)
        return t->data;
    float *f = own(m, n * 4);
    if (!f) {
        *st = kvz_fail(KVZ_ERR_NOMEM, "model: no memory for '%s'", name);
        return NULL;
    }
    if ((*st = tensor_to_f32(t, 0, n, f)) != KVZ_OK)
        return NULL;
    return f;
}

/* Chooses how a tensor's values are held (see kvz_model_opts) and converts when needed, straight
 * into the weights' own buffer (no scratch). Under the automatic choice a block-quantized tensor is
 * used in place in the mapping, with no converted copy: products of few rows (decode) read its
 * blocks, three to four times fewer bytes than bf16, and products of more rows (prefill) convert it
 * a panel at a time just before oneDNN multiplies (model/linear.c). */
static kvz_status make_linear(kvz_model *m, const kvz_gguf_tensor *t, int bf16_mode, int cpu_bf16,
                              kvz_linear *l)
{
    *l = (kvz_linear){.in = t->dims[0], .out = t->dims[1]};
    const size_t n = t->n_elements;
    const kvz_ggml_type *ty = kvz_ggml_type_of(t->type);
    if (bf16_mode < 0 && ty && ty->block >= 32 && l->in % ty->block == 0) {
        l->wtype = KVZ_WFMT_BLOCKS, l->blocks = t->data, l->qtype = t->type;
        m->as_stored = 1;
        return KVZ_OK;
    }
    int want_bf16;
    if (bf16_mode >= 0)
        want_bf16 = bf16_mode;
    else /* F32 and F16 keep f32 (bf16 would drop mantissa bits); brain floats and quantized types need no more
          */
        want_bf16 = cpu_bf16 && t->type != KVZ_GGML_F32 && t->type != KVZ_GGML_F16;
    l->wtype = want_bf16 ? KVZ_WFMT_BF16 : KVZ_WFMT_F32;
    if ((t->type == KVZ_GGML_F32 && !want_bf16) || (t->type == KVZ_GGML_BF16 && want_bf16)) {
        l->w = t->data; /* zero copy from the mapping */
        return KVZ_OK;
    }
    void *w = own(m, n * (want_bf16 ? 2 : 4));
    if (!w)
        return kvz_fail(KVZ_ERR_NOMEM, "model: no memory to convert '%.*s'", (int)t->name.n, t->name.p);
    l->w = w;
    return kvz_dequantize(w, want_bf16 ? KVZ_DTYPE_BF16 : KVZ_DTYPE_F32, t->data, t->type, n);
}

static kvz_status linear(kvz_model *m, const char *name, uint64_t in, uint64_t out, int bf16_mode, int cpu_bf16,
                         kvz_linear *l)
{
    kvz_status st = KVZ_OK;
    const kvz_gguf_tensor *t = find(m, name, in, out, 1, &st);
    return t ? make_linear(m, t, bf16_mode, cpu_bf16, l) : st;
}

void kvz_model_fingerprint(const kvz_gguf *g, uint8_t out[32])
{
    uint64_t h[4] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull, 0x9e3779b97f4a7c15ull,
                     0x243f6a8885a308d3ull};
    const uint64_t prime = 0x100000001b3ull;
#define MIX(ptr, len)                                                                                          \
    do {                                                                                                       \
        const uint8_t *p_ = (const uint8_t *)(ptr);                                                            \
        for (size_t i_ = 0; i_ < (len); i_++)                                                                  \
            for (int l_ = 0; l_ < 4; l_++)                                                                     \
                h[l_] = (h[l_] ^ (uint8_t)(p_[i_] + l_)) * prime;                                              \
    } while (0)
    MIX(g->map, g->data_offset);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const kvz_gguf_tensor *t = &g->tensors[i];
        const size_t k = t->n_bytes < 256 ? t->n_bytes : 256;
        MIX(t->data, k);
        MIX((const uint8_t *)t->data + t->n_bytes - k, k);
    }
#undef MIX
    memcpy(out, h, 32);
}

/* GGUF allows any power-of-two general.alignment, so with 1 or 2 a tensor may start at any
 * byte, while F32 and BF16 weights are used in place (vector_f32, make_linear) and every kernel
 * reads its input as floats, uint16 or blocks holding them. Such files are accepted and each
 * tensor not 4-byte aligned is copied once to aligned memory the model owns: only those files
 * lose the zero-copy mapping. */
static kvz_status align_tensors(kvz_model *m)
{
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++) {
        kvz_gguf_tensor *t = &m->gguf->tensors[i];
        if ((uintptr_t)t->data % 4 == 0)
            continue;
        void *b = own(m, t->n_bytes);
        if (!b)
            return kvz_fail(KVZ_ERR_NOMEM, "model: no memory to align tensor '%.*s'", (int)t->name.n,
                            t->name.p);
        memcpy(b, t->data, t->n_bytes);
        t->data = b;
    }
    return KVZ_OK;
}

kvz_status kvz_model_load(const char *path, const kvz_model_opts *opts, kvz_model **out)
{
    if (!path || !out)
        return kvz_fail(KVZ_ERR_NULL, "kvz_model_load: path and out must not be NULL");
    *out = NULL;
    kvz_model *m = calloc(1, sizeof *m);
    if (!m)
        return kvz_fail(KVZ_ERR_NOMEM, "kvz_model_load: no memory");
    kvz_status st = kvz_gguf_open(path, &m->gguf);
    if (st == KVZ_OK)
        st = read_hparams(m->gguf, &m->hp);
    if (st == KVZ_OK)
        st = align_tensors(m);
    if (st != KVZ_OK)
        goto fail;
    kvz_hparams *hp = &m->hp;
    const int bf16_mode = opts ? opts->bf16_weights : -1;
    const int cpu_bf16 = kvz_cpu_has_avx512_bf16();
    if (bf16_mode == 1 && !cpu_bf16) {
        st = kvz_fail(KVZ_ERR_UNSUPPORTED, "kvz_model_load: bf16 weights need a CPU with AVX512_BF16");
        goto fail;
    }
    const kvz_gguf_tensor *emb = kvz_gguf_tensor_find(m->gguf, "token_embd.weight");
    if (!emb || emb->n_dims != 2 || emb->dims[0] != hp->n_embd || !emb->dims[1]) {
        st = kvz_fail(KVZ_ERR_FORMAT, "model: tensor 'token_embd.weight' is missing or not [%zu, vocab]",
                      hp->n_embd);
        goto fail;
    }
    m->tok_embd = emb;
    hp->n_vocab = emb->dims[1];
    const size_t E = hp->n_embd, QD = hp->n_head * hp->head_dim, KD = hp->n_head_kv * hp->head_dim;
    if (!(m->layers = calloc(hp->n_layers, sizeof *m->layers))) {
        st = kvz_fail(KVZ_ERR_NOMEM, "kvz_model_load: no memory");
        goto fail;
    }
    char name[96];
    for (size_t l = 0; l < hp->n_layers && st == KVZ_OK; l++) {
        kvz_layer_weights *w = &m->layers[l];
#define NAME(s) (snprintf(name, sizeof name, "blk.%zu.%s", l, s), name)
        if (!(w->attn_norm = vector_f32(m, NAME("attn_norm.weight"), E, 1, &st)) ||
            !(w->ffn_norm = vector_f32(m, NAME("ffn_norm.weight"), E, 1, &st)))
            break;
        if ((st = linear(m, NAME("attn_q.weight"), E, QD, bf16_mode, cpu_bf16, &w->q)) ||
            (st = linear(m, NAME("attn_k.weight"), E, KD, bf16_mode, cpu_bf16, &w->k)) ||
            (st = linear(m, NAME("attn_v.weight"), E, KD, bf16_mode, cpu_bf16, &w->v)) ||
            (st = linear(m, NAME("attn_output.weight"), QD, E, bf16_mode, cpu_bf16, &w->o)) ||
            (st = linear(m, NAME("ffn_gate.weight"), E, hp->n_ff, bf16_mode, cpu_bf16, &w->gate)) ||
            (st = linear(m, NAME("ffn_up.weight"), E, hp->n_ff, bf16_mode, cpu_bf16, &w->up)) ||
            (st = linear(m, NAME("ffn_down.weight"), hp->n_ff, E, bf16_mode, cpu_bf16, &w->down)))
            break;
        if (!strcmp(hp->arch, "gemma3") &&
            (!(w->q_norm = vector_f32(m, NAME("attn_q_norm.weight"), hp->head_dim, 1, &st)) ||
             !(w->k_norm = vector_f32(m, NAME("attn_k_norm.weight"), hp->head_dim, 1, &st)) ||
             !(w->post_attn_norm = vector_f32(m, NAME("post_attention_norm.weight"), E, 1, &st)) ||
             !(w->post_ffn_norm = vector_f32(m, NAME("post_ffw_norm.weight"), E, 1, &st))))
            break;
        /* qwen2 has Q/K/V biases; llama files may too (optional everywhere) */
        w->q.bias = vector_f32(m, NAME("attn_q.bias"), QD, 0, &st);
        w->k.bias = vector_f32(m, NAME("attn_k.bias"), KD, 0, &st);
        w->v.bias = vector_f32(m, NAME("attn_v.bias"), KD, 0, &st);
#undef NAME
    }
    if (st != KVZ_OK)
        goto fail;
    if (!(m->output_norm = vector_f32(m, "output_norm.weight", E, 1, &st)))
        goto fail;
    const kvz_gguf_tensor *head = find(m, "output.weight", E, hp->n_vocab, 0, &st);
    if (st != KVZ_OK)
        goto fail;
    if ((st = make_linear(m, head ? head : emb, bf16_mode, cpu_bf16, &m->output)) !=
        KVZ_OK) /* tied when absent */
        goto fail;
    m->rope_freq_factors = vector_f32(m, "rope_freqs.weight", hp->rope_dim / 2, 0, &st);
    if (st != KVZ_OK || (st = kvz_mm_create(&m->mm)) != KVZ_OK)
        goto fail;
    kvz_model_fingerprint(m->gguf, m->fingerprint);
    *out = m;
    return KVZ_OK;
fail:
    kvz_model_free(m);
    return st;
}

/* A reproducible uniform value in [-1, 1) from (seed, index): weights can be filled in parallel. */
static float hash_uniform(uint64_t seed, uint64_t i)
{
    uint64_t z = seed + i * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)(int64_t)(z >> 40) * 0x1.0p-23f - 1.0f;
}

typedef struct synth_job {
    void *w;
    size_t cols;
    kvz_dtype wt;
    uint64_t seed;
    float scale;
} synth_job;

static void synth_rows(void *ctx, size_t lo, size_t hi)
{
    const synth_job *j = ctx;
    const size_t cols = j->cols;
    for (size_t r = lo; r < hi; r++) {
        float row[1024];
        for (size_t c0 = 0; c0 < cols; c0 += 1024) {
            const size_t nc = cols - c0 < 1024 ? cols - c0 : 1024;
            for (size_t c = 0; c < nc; c++)
                row[c] = j->scale * hash_uniform(j->seed, r * cols + c0 + c);
            if (j->wt == KVZ_DTYPE_BF16)
                kvz_convert((uint16_t *)j->w + r * cols + c0, KVZ_DTYPE_BF16, row, KVZ_DTYPE_F32, nc);
            else
                memcpy((float *)j->w + r * cols + c0, row, nc * 4);
        }
    }
}

static void *synth_matrix(kvz_model *m, size_t rows, size_t cols, kvz_dtype wt, uint64_t seed)
{
    const size_t n = rows * cols;
    void *w = own(m, n * (wt == KVZ_DTYPE_BF16 ? 2 : 4));
    if (!w)
        return NULL;
    synth_job j = {w, cols, wt, seed, 1.0f / sqrtf((float)cols)};
    kvz_parallel_for(rows, 1, synth_rows, &j);
    return w;
}

kvz_status kvz_model_synthetic(const kvz_hparams *hp, kvz_dtype wtype, uint64_t seed, kvz_model **out)
{
    if (!hp || !out)
        return kvz_fail(KVZ_ERR_NULL, "kvz_model_synthetic: NULL argument");
    *out = NULL;
    if (!hp->n_layers || !hp->n_embd || !hp->n_head || !hp->n_head_kv || hp->n_head % hp->n_head_kv ||
        !hp->head_dim || hp->head_dim > 256 || !hp->n_ff || !hp->n_vocab || hp->rope_dim > hp->head_dim ||
        hp->rope_dim % 2 || (wtype != KVZ_DTYPE_F32 && wtype != KVZ_DTYPE_BF16) || !(hp->eps > 0) ||
        !(hp->rope_base > 0) || !(hp->rope_linear_factor > 0))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_model_synthetic: inconsistent shape or type");
    if (wtype == KVZ_DTYPE_BF16 && !kvz_cpu_has_avx512_bf16())
        return kvz_fail(KVZ_ERR_UNSUPPORTED, "kvz_model_synthetic: bf16 weights need a CPU with AVX512_BF16");
    kvz_model *m = calloc(1, sizeof *m);
    if (!m)
        return kvz_fail(KVZ_ERR_NOMEM, "kvz_model_synthetic: no memory");
    m->hp = *hp;
    const size_t E = hp->n_embd, QD = hp->n_head * hp->head_dim, KD = hp->n_head_kv * hp->head_dim,
                 F = hp->n_ff;
    kvz_status st = KVZ_OK;
    float *ones = own(m, E * 4);
    m->layers = calloc(hp->n_layers, sizeof *m->layers);
    if (!ones || !m->layers)
        st = kvz_fail(KVZ_ERR_NOMEM, "kvz_model_synthetic: no memory");
    for (size_t i = 0; ones && i < E; i++)
        ones[i] = 1.0f;
    uint64_t s = seed;
#define MAT(lin, in_, out_)                                                                                    \
    do {                                                                                                       \
        (lin).in = (in_), (lin).out = (out_), (lin).wtype = (kvz_wformat)wtype;                                \
        if (!((lin).w = synth_matrix(m, (out_), (in_), wtype, s += 0x1234567)))                                \
            st = kvz_fail(KVZ_ERR_NOMEM, "kvz_model_synthetic: no memory for the weights");                    \
    } while (0)
    for (size_t l = 0; l < hp->n_layers && st == KVZ_OK; l++) {
        kvz_layer_weights *w = &m->layers[l];
        w->attn_norm = w->ffn_norm = ones;
        MAT(w->q, E, QD);
        MAT(w->k, E, KD);
        MAT(w->v, E, KD);
        MAT(w->o, QD, E);
        MAT(w->gate, E, F);
        MAT(w->up, E, F);
        MAT(w->down, F, E);
    }
    if (st == KVZ_OK)
        MAT(m->output, E, hp->n_vocab);
#undef MAT
    m->output_norm = ones;
    if (st == KVZ_OK) { /* the embedding shares the LM head's matrix, as tied models do */
        kvz_gguf_tensor *t = &m->synth_embd;
        t->n_dims = 2, t->dims[0] = E, t->dims[1] = hp->n_vocab, t->n_elements = E * hp->n_vocab;
        t->type = wtype == KVZ_DTYPE_BF16 ? KVZ_GGML_BF16 : KVZ_GGML_F32;
        t->n_bytes = t->n_elements * (wtype == KVZ_DTYPE_BF16 ? 2 : 4);
        t->data = m->output.w;
        m->tok_embd = t;
        st = kvz_mm_create(&m->mm);
    }
    if (st != KVZ_OK) {
        kvz_model_free(m);
        return st;
    }
    memcpy(m->fingerprint, &seed, sizeof seed);
    memcpy(m->fingerprint + 8, &m->hp.n_layers, sizeof m->hp.n_layers);
    *out = m;
    return KVZ_OK;
}

double kvz_model_matrix_bytes(const kvz_model *m, double *layers)
{
    double sum = 0;
    for (size_t i = 0; i < m->hp.n_layers; i++) {
        const kvz_layer_weights *w = &m->layers[i];
        sum += kvz_linear_bytes(&w->q) + kvz_linear_bytes(&w->k) + kvz_linear_bytes(&w->v) +
               kvz_linear_bytes(&w->o) + kvz_linear_bytes(&w->gate) + kvz_linear_bytes(&w->up) +
               kvz_linear_bytes(&w->down);
    }
    if (layers)
        *layers = sum;
    return sum + kvz_linear_bytes(&m->output);
}

void kvz_model_free(kvz_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_owned; i++)
        kvz_aligned_free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    kvz_aligned_free(m->act);
    kvz_mm_destroy(m->mm);
    if (m->gguf)
        kvz_gguf_close(m->gguf);
    free(m);
}

kvz_status kvz_model_embed(const kvz_model *m, const int32_t *ids, size_t n, float *x)
{
    const size_t E = m->hp.n_embd;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= m->hp.n_vocab)
            return kvz_fail(KVZ_ERR_INVALID_ARG, "model: token id %d outside the vocabulary of %zu",
                            (int)ids[i], m->hp.n_vocab);
        const kvz_status st = tensor_to_f32(m->tok_embd, (size_t)ids[i] * E, E, x + i * E);
        if (st != KVZ_OK)
            return st;
        if (m->hp.embd_scale != 0.0f)
            for (size_t j = 0; j < E; j++)
                x[i * E + j] *= m->hp.embd_scale;
    }
    return KVZ_OK;
}

kvz_status kvz_model_cache_create(const kvz_model *m, kvz_dtype dtype, kvz_cache **out)
{
    kvz_cache_config cfg = {sizeof cfg, m->hp.n_layers, m->hp.n_head_kv, m->hp.head_dim, dtype, 0, NULL};
    size_t *window = NULL;
    if (m->hp.swa_window) { /* Gemma 3's local layers */
        if (!(window = malloc(m->hp.n_layers * sizeof *window)))
            return kvz_fail(KVZ_ERR_NOMEM, "kvz_model_cache_create: no memory");
        for (size_t l = 0; l < m->hp.n_layers; l++)
            window[l] = kvz_hparams_window(&m->hp, l);
        cfg.layer_window = window;
    }
    const kvz_status st = kvz_cache_create(&cfg, out);
    free(window);
    return st;
}
