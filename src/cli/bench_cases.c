/* Benchmark cases of `kvz bench` and perf/: inputs built once, one library operation per run. */
#include "cli/bench_cases.h"

#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/pool.h"
#include "kvz.h"
#include "model/dequant.h"
#include "model/gguf.h"
#include "model/linear.h"

/* The shapes: one Llama-3.1-8B layer (8 KV heads, G = 4, d = 128); its decode
 * steps over cached bf16 rows, its prefill chunks of 2048 queries against 32768 keys. Each
 * reference runs right before the figures it is compared with, so that the machine's state
 * (other tenants of a shared host) drifts as little as possible between the two. */
#define LLAMA31_8B_LAYER .kv_heads = 8, .group = 4, .head_dim = 128
#define DECODE(ctx)      .kind = KVZ_BENCH_DECODE, LLAMA31_8B_LAYER, .context = (ctx), .dtype = KVZ_DTYPE_BF16
#define DECODE_32K(h, g, d, dt)                                                                                \
    .kind = KVZ_BENCH_DECODE, .kv_heads = (h), .group = (g), .head_dim = (d), .context = 32768, .dtype = (dt)
#define DEQUANT(t)       .kind = KVZ_BENCH_DEQUANT, .qtype = (t), .dtype = KVZ_DTYPE_F32
#define LINEAR(out, in, m, cp)                                                                                 \
    .kind = KVZ_BENCH_LINEAR, .qtype = KVZ_GGML_Q4_K, .context = (out), .head_dim = (in), .queries = (m),      \
    .copy = (cp)
#define PREFILL(dt)                                                                                            \
    .kind = KVZ_BENCH_PREFILL, LLAMA31_8B_LAYER, .context = 32768, .queries = 2048, .dtype = (dt)
static const kvz_bench_case kernel_cases[] = {
    {.name = "stream_read", .kind = KVZ_BENCH_STREAM, .size = (size_t)1 << 30},
    {.name = "decode_bf16_32k", DECODE(32768), .kept = 1.0},
    {.name = "decode_bf16_32k_r0.3", DECODE(32768), .kept = 0.3},
    /* the step at the other shapes and storage of the real models: the f16 cache, Qwen2.5-7B's group of 7,
       SmolLM2's heads of 64 and Gemma 3's of 256 (their K/V per layer, 32K tokens) */
    {.name = "decode_f16_32k", DECODE_32K(8, 4, 128, KVZ_DTYPE_F16), .kept = 1.0},
    {.name = "decode_bf16_32k_g7", DECODE_32K(4, 7, 128, KVZ_DTYPE_BF16), .kept = 1.0},
    {.name = "decode_bf16_32k_d64", DECODE_32K(3, 3, 64, KVZ_DTYPE_BF16), .kept = 1.0},
    {.name = "decode_bf16_32k_d256", DECODE_32K(1, 4, 256, KVZ_DTYPE_BF16), .kept = 1.0},
    /* the same step over 4096 tokens (16 MiB) that stay in a 32 MiB last-level cache: what
       the kernel computes with memory out of the way (a diagnostic; no target) */
    {.name = "decode_bf16_4k_hot", DECODE(4096), .kept = 1.0, .hot = 1},
    /* 512 tokens (2 MiB, 1 MiB a thread at 2 threads) stay in a 2 MiB L2 as well: where the
       4K step reads a shared L3 (the Sapphire-Rapids-class VM), this is the kernel's rate */
    {.name = "decode_bf16_512_hot", DECODE(512), .kept = 1.0, .hot = 1},
    /* GGUF tensors into f32 as a loader or a matrix product without a quantized kernel would,
       one case per block type, from and to memory no cache holds */
    {.name = "dequant_q4_0", DEQUANT(KVZ_GGML_Q4_0)},
    {.name = "dequant_q4_1", DEQUANT(KVZ_GGML_Q4_1)},
    {.name = "dequant_q5_0", DEQUANT(KVZ_GGML_Q5_0)},
    {.name = "dequant_q5_1", DEQUANT(KVZ_GGML_Q5_1)},
    {.name = "dequant_q8_0", DEQUANT(KVZ_GGML_Q8_0)},
    {.name = "dequant_q2_k", DEQUANT(KVZ_GGML_Q2_K)},
    {.name = "dequant_q3_k", DEQUANT(KVZ_GGML_Q3_K)},
    {.name = "dequant_q4_k", DEQUANT(KVZ_GGML_Q4_K)},
    {.name = "dequant_q5_k", DEQUANT(KVZ_GGML_Q5_K)},
    {.name = "dequant_q6_k", DEQUANT(KVZ_GGML_Q6_K)},
    /* decode steps' products over blocks as a GGUF file stores them, through kvz_linear_apply (a
       matrix-vector product reads the blocks once): Gemma 3 270M's LM head (262144 x 640, Q8_0,
       178 MB), and a Llama-3.1-8B feed-forward matrix in a Q4_K_M file (14336 x 4096, Q4_K, 33 MB) */
    {.name = "gemv_q8_0", .kind = KVZ_BENCH_GEMV, .qtype = KVZ_GGML_Q8_0, .context = 262144, .head_dim = 640},
    {.name = "gemv_q4_k", .kind = KVZ_BENCH_GEMV, .qtype = KVZ_GGML_Q4_K, .context = 14336, .head_dim = 4096},
    {.name = "sgemm_f32", .kind = KVZ_BENCH_SGEMM, .size = 2048},
    /* prefill chunks' products over a matrix kept as the file's blocks (converted a panel at a time
       inside the product) and over a copy converted beforehand: an 8B feed-forward matrix times the
       runner's 512-row chunk (a transposed product), its Q matrix times kvz_lm_compress's 2048 */
    {.name = "linear_q4_k_512", LINEAR(14336, 4096, 512, 0)},
    {.name = "linear_copy_512", LINEAR(14336, 4096, 512, 1)},
    {.name = "linear_q4_k_2048", LINEAR(4096, 4096, 2048, 0)},
    {.name = "linear_copy_2048", LINEAR(4096, 4096, 2048, 1)},
    {.name = "prefill_attn_f32", PREFILL(KVZ_DTYPE_F32)},
    {.name = "score_attn_f32", PREFILL(KVZ_DTYPE_F32), .scoring = 1},
    /* the models' cache type: the avx512bf16 level runs it on pair dot products */
    {.name = "prefill_attn_bf16", PREFILL(KVZ_DTYPE_BF16)},
    {.name = "score_attn_bf16", PREFILL(KVZ_DTYPE_BF16), .scoring = 1},
};
#undef DECODE
#undef DEQUANT
#undef PREFILL
#undef LLAMA31_8B_LAYER

/* KVzip scoring shape of score_attn_f32 and perf's score cases: a 64-token system prompt
 * (the sink) and a 2000-token context chunk right after it. */
enum { SCORE_SINK = 64, SCORE_CHUNK = 2000 };

const kvz_bench_case *kvz_bench_kernel_cases(size_t *n)
{
    *n = sizeof kernel_cases / sizeof kernel_cases[0];
    return kernel_cases;
}

struct kvz_bench_state {
    const kvz_bench_case *c;
    void *a, *b, *out;
    float *q, *o, *score;
    int32_t *cu;
    size_t bytes;                              /* stream: bytes read per op */
    float (*stream)(const float *x, size_t n); /* stream: the loop stream_pick chose */
    size_t copies, copy_stride;                /* decode: layers' worth of K/V used in turn, elements apart */
    size_t next;                               /* decode: the copy the next run reads */
    size_t n;                                  /* dequant: values per operation */
    kvz_mm *mm;                                /* gemv */
    double work;
    volatile float sink;
};

enum { HUGE_PAGE = 2 << 20 };

/* Aligned allocation; buffers of 2 MiB or more are 2 MiB aligned and advised for huge pages
 * (TLB misses otherwise cost a visible share of the bandwidth, most of all in a VM). */
static void *xmalloc(size_t bytes)
{
    void *p = NULL;
    const int big = bytes >= HUGE_PAGE;
    if (posix_memalign(&p, big ? HUGE_PAGE : 64, bytes ? bytes : 64) != 0) {
        fprintf(stderr, "kvz bench: out of memory (%zu bytes)\n", bytes);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    if (big)
        (void)madvise(p, (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
#endif
    return p;
}

typedef struct fill_job {
    void *dst;
    int dt;
    unsigned seed;
    size_t n;
    int bad;
} fill_job;

static void fill_blocks(void *ctx, size_t lo, size_t hi)
{
    fill_job *j = ctx;
    float buf[1024];
    for (size_t b = lo; b < hi; b++) {
        const size_t i0 = b * 1024, m = j->n - i0 < 1024 ? j->n - i0 : 1024;
        for (size_t i = 0; i < m; i++) {
            uint32_t x = (uint32_t)(i0 + i) * 2654435761u ^ j->seed;
            x ^= x >> 15, x *= 2246822519u, x ^= x >> 13;
            buf[i] = (float)(x >> 8) * (2.0f / 16777216.0f) - 1.0f;
        }
        if (kvz_convert((char *)j->dst + i0 * (j->dt == KVZ_DTYPE_F32 ? 4 : 2), (kvz_dtype)j->dt, buf,
                        KVZ_DTYPE_F32, m) != KVZ_OK)
            __atomic_store_n(&j->bad, 1, __ATOMIC_RELAXED);
    }
}

/* Fills n elements of dtype dt with values in [-1, 1) from a cheap generator, in parallel
 * (which also places the pages where the threads that read them run). */
static int fill(void *dst, int dt, size_t n, unsigned seed)
{
    fill_job j = {dst, dt, seed, n, 0};
    kvz_parallel_for((n + 1023) / 1024, 1, fill_blocks, &j);
    if (j.bad)
        fprintf(stderr, "kvz bench: kvz_convert failed: %s\n", kvz_last_error());
    return j.bad ? -1 : 0;
}

/* Kept fraction of head h of H: non-uniform across heads, as KVzip leaves them: `kept` times
 * a ramp from 1/6 to 11/6 over the heads (mean 1; at 0.3: 0.05 .. 0.55), so the heads' mean
 * is `kept` for any H as long as kept <= 6/11 (no head above 1). */
static double head_share(size_t h, size_t H, double kept)
{
    if (kept >= 1.0)
        return 1.0;
    const double w = H > 1 ? 1.0 / 6 + (5.0 / 3) * (double)h / (double)(H - 1) : 1.0;
    const double s = kept * w;
    return s > 1.0 ? 1.0 : s;
}

static size_t read_size_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long v = 0;
    char suffix = 0;
    const int got = fscanf(f, "%llu%c", &v, &suffix);
    fclose(f);
    if (got < 1)
        return 0;
    return (size_t)v * (suffix == 'K' ? 1024 : suffix == 'M' ? 1024 * 1024 : 1);
}

size_t kvz_bench_llc_bytes(void)
{
    /* sysfs: the largest cache of cpu0, times the number of such caches (CPUs per cache
     * from its shared_cpu_map). glibc's sysconf reports whole-package figures on some AMD
     * parts, so it is only the fallback. */
    size_t best = 0;
    int best_idx = -1;
    for (int i = 0; i < 8; i++) {
        char path[96];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        const size_t sz = read_size_file(path);
        if (sz > best)
            best = sz, best_idx = i;
    }
    if (best) {
        char path[96], map[1024];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/shared_cpu_map", best_idx);
        FILE *f = fopen(path, "r");
        long sharing = 0;
        if (f) {
            if (fgets(map, sizeof map, f))
                for (const char *p = map; *p; p++)
                    if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))
                        sharing += __builtin_popcount((unsigned)(*p <= '9' ? *p - '0' : *p - 'a' + 10));
            fclose(f);
        }
        const long cpus = sysconf(_SC_NPROCESSORS_CONF);
        if (sharing > 0 && cpus > sharing)
            best *= (size_t)((cpus + sharing - 1) / sharing);
        return best;
    }
#ifdef _SC_LEVEL3_CACHE_SIZE
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0)
        return (size_t)l3;
#endif
    return (size_t)32 << 20;
}

/* Bytes that no cache can hold between two uses: 8x the LLC, within [256 MiB, 2 GiB]. */
static size_t cold_bytes(void)
{
    size_t b = 8 * kvz_bench_llc_bytes();
    if (b < ((size_t)256 << 20))
        b = (size_t)256 << 20;
    if (b > ((size_t)2 << 30))
        b = (size_t)2 << 30;
    return b;
}

/* ---- stream_read ------------------------------------------------------------------------
 * The reference bandwidth: a sum over the array with 8 independent vector accumulators per
 * thread, so the adds never wait on each other and only memory limits the rate. The same
 * body is compiled (with 16-byte vectors) for the baseline and, on x86, for AVX2 and AVX-512
 * (32- and 64-byte vectors, functions with a target attribute, called only when
 * kvz_isa_supported says the CPU and OS run them). Which width reads faster depends on the
 * machine (256-bit loads on the Zen 4 VM, 512-bit on the Sapphire-Rapids-class one, by a
 * quarter there), so the setup times one pass of each and keeps the faster. */
typedef float v4f __attribute__((vector_size(16)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v16f __attribute__((vector_size(64)));

/* Each thread sums the pieces it claims in its own accumulators and adds its total to its
 * slot's; the body is a macro so that each vector width gets its own target attribute. */
#define STREAM_PIECES_PER_THREAD 4
typedef struct stream_job {
    const float *x;
    size_t iters, pieces, next;
    float total[1024]; /* per slot */
} stream_job;

#define STREAM_FN(ATTR, NAME, VT)                                                                              \
    enum { NAME##_W = 8 * (int)(sizeof(VT) / sizeof(float)) }; /* floats per iteration */                      \
    ATTR static void NAME##_body(void *ctx, unsigned slot, unsigned team)                                      \
    {                                                                                                          \
        (void)team;                                                                                            \
        stream_job *j = ctx;                                                                                   \
        VT a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};                     \
        for (size_t p; (p = kvz_team_claim(&j->next, j->pieces)) < j->pieces;)                                 \
            for (size_t i = j->iters * p / j->pieces; i < j->iters * (p + 1) / j->pieces; i++) {               \
                const VT *v = (const VT *)(j->x + i * NAME##_W); /* x is 64-byte aligned */                    \
                a0 += v[0], a1 += v[1], a2 += v[2], a3 += v[3];                                                \
                a4 += v[4], a5 += v[5], a6 += v[6], a7 += v[7];                                                \
            }                                                                                                  \
        const VT t = (a0 + a1) + (a2 + a3) + ((a4 + a5) + (a6 + a7));                                          \
        for (size_t l = 0; l < NAME##_W / 8; l++)                                                              \
            j->total[slot] += t[l];                                                                            \
    }                                                                                                          \
    static float NAME(const float *x, size_t n)                                                                \
    {                                                                                                          \
        stream_job j = {                                                                                       \
            .x = x, .iters = n / NAME##_W, .pieces = STREAM_PIECES_PER_THREAD * kvz_num_threads()};            \
        kvz_team_run(NAME##_body, &j, 0);                                                                      \
        float total = 0;                                                                                       \
        for (size_t s = 0; s < 1024; s++)                                                                      \
            total += j.total[s];                                                                               \
        return total;                                                                                          \
    }

STREAM_FN(, stream_base, v4f)
#if defined(__x86_64__) && defined(__GNUC__)
STREAM_FN(__attribute__((target("avx2"))), stream_avx2, v8f)
STREAM_FN(__attribute__((target("avx512f"))), stream_avx512, v16f)
#endif

typedef float (*stream_fn)(const float *x, size_t n);

/* The loops this CPU runs, widest first (the baseline only where there is no other). */
static size_t stream_candidates(stream_fn out[2])
{
    size_t k = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (kvz_isa_supported(KVZ_ISA_AVX512))
        out[k++] = stream_avx512;
    if (kvz_isa_supported(KVZ_ISA_AVX2))
        out[k++] = stream_avx2;
#endif
    if (!k)
        out[k++] = stream_base;
    return k;
}

/* The candidate whose second pass over x (the first one warms the pages) is the fastest. */
static stream_fn stream_pick(const float *x, size_t n, volatile float *sink)
{
    stream_fn f[2];
    const size_t k = stream_candidates(f);
    if (k == 1)
        return f[0];
    stream_fn best = f[0];
    double best_s = 0;
    for (size_t i = 0; i < k; i++) {
        *sink = f[i](x, n);
        const double t0 = omp_get_wtime();
        *sink = f[i](x, n);
        const double t = omp_get_wtime() - t0;
        if (i == 0 || t < best_s)
            best = f[i], best_s = t;
    }
    return best;
}

/* ---- dequant -----------------------------------------------------------------------------
 * The cases of a group are set up together, so the dequant cases share one input and one output
 * buffer (their own would take ten times the memory): half the cold size in all, the output f32,
 * the input random bytes enough for the largest blocks per value (Q8_0's 34 bytes for 32). */
static struct {
    void *in, *out;
    size_t n, users;
} dq_pool;

static void random_bytes(void *ctx, size_t lo, size_t hi)
{
    unsigned char *p = ctx;
    for (size_t i = lo; i < hi; i++) {
        uint32_t x = (uint32_t)i * 2654435761u ^ 0x9e3779b9u;
        x ^= x >> 15, x *= 2246822519u, x ^= x >> 13;
        p[i] = (unsigned char)(x >> 24);
    }
}

static int dq_pool_get(size_t *n)
{
    if (!dq_pool.users) {
        const size_t total = cold_bytes() / 2, n_val = total / (4 + 2) / 256 * 256;
        const size_t in_bytes = n_val / 32 * 34;
        if (!(dq_pool.in = xmalloc(in_bytes)) || !(dq_pool.out = xmalloc(n_val * 4))) {
            free(dq_pool.in), free(dq_pool.out);
            dq_pool.in = dq_pool.out = NULL;
            return -1;
        }
        kvz_parallel_for(in_bytes, 65536, random_bytes, dq_pool.in);
        dq_pool.n = n_val;
    }
    dq_pool.users++;
    *n = dq_pool.n;
    return 0;
}

static void dq_pool_put(void)
{
    if (dq_pool.users && !--dq_pool.users) {
        free(dq_pool.in), free(dq_pool.out);
        dq_pool.in = dq_pool.out = NULL;
    }
}

/* ---- setup / run / teardown --------------------------------------------------------------- */

kvz_bench_state *kvz_bench_setup(const kvz_bench_case *c)
{
    kvz_bench_state *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "kvz bench: out of memory\n");
        return NULL;
    }
    s->c = c;
    const size_t es = c->dtype == KVZ_DTYPE_F32 ? 4 : 2;
    switch (c->kind) {
    case KVZ_BENCH_STREAM: {
        size_t bytes = c->size > 8 * kvz_bench_llc_bytes() ? c->size : 8 * kvz_bench_llc_bytes();
        bytes = bytes / 256 * 256; /* whole iterations of the sum */
        if (!(s->a = xmalloc(bytes)) || fill(s->a, KVZ_DTYPE_F32, bytes / 4, 1) != 0)
            goto fail;
        s->bytes = bytes;
        s->work = (double)bytes;
        s->stream = stream_pick(s->a, bytes / 4, &s->sink);
        break;
    }
    case KVZ_BENCH_SGEMM: {
        const size_t n = c->size * c->size;
        if (!(s->a = xmalloc(n * 4)) || !(s->b = xmalloc(n * 4)) || !(s->out = xmalloc(n * 4)) ||
            fill(s->a, KVZ_DTYPE_F32, n, 2) != 0 || fill(s->b, KVZ_DTYPE_F32, n, 3) != 0)
            goto fail;
        s->work = 2.0 * (double)c->size * (double)c->size * (double)c->size;
        break;
    }
    case KVZ_BENCH_DECODE: {
        const size_t H = c->kv_heads, d = c->head_dim;
        if (!(s->cu = malloc((H + 1) * sizeof *s->cu)))
            goto fail;
        s->cu[0] = 0;
        for (size_t h = 0; h < H; h++)
            s->cu[h + 1] = s->cu[h] + (int32_t)llround((double)c->context * head_share(h, H, c->kept));
        const size_t rows = (size_t)s->cu[H];
        /* copies of the layer's K/V, each starting on a 4 KiB boundary, used in turn */
        const size_t layer_bytes = 2 * rows * d * es;
        s->copies = layer_bytes && !c->hot ? (cold_bytes() + layer_bytes - 1) / layer_bytes : 1;
        if (s->copies < 1)
            s->copies = 1;
        s->copy_stride = (rows * d * es + 4095) / 4096 * 4096 / es;
        const size_t n = s->copies * s->copy_stride;
        if (!(s->a = xmalloc(n * es)) || !(s->b = xmalloc(n * es)) || !(s->q = xmalloc(H * c->group * d * 4)) ||
            !(s->o = xmalloc(H * c->group * d * 4)) || fill(s->a, c->dtype, n, 4) != 0 ||
            fill(s->b, c->dtype, n, 5) != 0 || fill(s->q, KVZ_DTYPE_F32, H * c->group * d, 6) != 0)
            goto fail;
        s->work = 2.0 * (double)rows * (double)d * (double)es;
        break;
    }
    case KVZ_BENCH_PREFILL: {
        const size_t H = c->kv_heads, G = c->group, d = c->head_dim, nq = c->queries, nk = c->context;
        if (nq > nk || (c->scoring && SCORE_SINK + SCORE_CHUNK > nk - nq)) {
            fprintf(stderr, "kvz bench: %s: %zu keys cannot hold %s%zu queries\n", c->name, nk,
                    c->scoring ? "the 64-token sink, the 2000-token scored chunk and " : "", nq);
            goto fail;
        }
        if (!(s->a = xmalloc(H * nk * d * es)) || !(s->b = xmalloc(H * nk * d * es)) ||
            !(s->q = xmalloc(nq * H * G * d * 4)) || !(s->o = xmalloc(nq * H * G * d * 4)) ||
            !(s->score = xmalloc(H * SCORE_CHUNK * 4)) || fill(s->a, c->dtype, H * nk * d, 7) != 0 ||
            fill(s->b, c->dtype, H * nk * d, 8) != 0 || fill(s->q, KVZ_DTYPE_F32, nq * H * G * d, 9) != 0)
            goto fail;
        double pairs = 0; /* visible (query, key) pairs: the chunk's own keys are the last nq */
        for (size_t i = 0; i < nq; i++)
            pairs += (double)(nk - nq + i + 1);
        s->work = 4.0 * (double)d * pairs * (double)(H * G);
        break;
    }
    case KVZ_BENCH_DEQUANT: {
        const kvz_ggml_type *ty = kvz_ggml_type_of(c->qtype);
        if (!ty || ty->block < 32 || dq_pool_get(&s->n) != 0)
            goto fail;
        s->work = (double)s->n * (double)es + (double)(s->n / ty->block) * (double)ty->bytes;
        break;
    }
    case KVZ_BENCH_GEMV:
    case KVZ_BENCH_LINEAR: {
        /* gemv: copies of the matrix used in turn, as decode's K/V: every product reads cold
           memory; linear: one (a product of many rows is bound by its arithmetic) */
        const kvz_ggml_type *ty = kvz_ggml_type_of(c->qtype);
        if (!ty || ty->block < 32 || c->head_dim % ty->block)
            goto fail;
        const int gemv = c->kind == KVZ_BENCH_GEMV;
        const size_t n_blocks = c->context * (c->head_dim / ty->block), mat = n_blocks * ty->bytes;
        const size_t m = gemv ? 1 : c->queries;
        s->copies = gemv ? (cold_bytes() + mat - 1) / mat : 1;
        s->copy_stride = (mat + 4095) / 4096 * 4096;
        if (!(s->a = xmalloc(s->copies * s->copy_stride)) || !(s->q = xmalloc(m * c->head_dim * 4)) ||
            !(s->o = xmalloc(m * c->context * 4)) || fill(s->q, KVZ_DTYPE_F32, m * c->head_dim, 10) != 0 ||
            kvz_mm_create(&s->mm) != KVZ_OK)
            goto fail;
        /* random quants; a block's first two f16 fields (Q8_0's scale and two quants, Q4_K's scale
           and min) 1/128: no f16 NaN, no f32 subnormal product */
        kvz_parallel_for(s->copies * s->copy_stride, 65536, random_bytes, s->a);
        const uint16_t scale[2] = {0x2000, 0x2000};
        for (size_t k = 0; k < s->copies; k++)
            for (size_t b = 0; b < n_blocks; b++)
                memcpy((char *)s->a + k * s->copy_stride + b * ty->bytes, scale, sizeof scale);
        s->work = gemv ? (double)mat : 2.0 * (double)m * (double)c->head_dim * (double)c->context;
        if (c->copy) {
            const kvz_linear blocks = {.wtype = KVZ_WFMT_BLOCKS};
            const kvz_dtype dt = (kvz_dtype)kvz_linear_dense_format(&blocks);
            const size_t n = c->context * c->head_dim;
            if (!(s->b = xmalloc(n * (dt == KVZ_DTYPE_BF16 ? 2 : 4))) ||
                kvz_dequantize(s->b, dt, s->a, c->qtype, n) != KVZ_OK)
                goto fail;
        }
        break;
    }
    default: fprintf(stderr, "kvz bench: %s: unknown case kind %d\n", c->name, (int)c->kind); goto fail;
    }
    return s;
fail:
    fprintf(stderr, "kvz bench: %s: setup failed\n", c->name);
    kvz_bench_teardown(s);
    return NULL;
}

int kvz_bench_run(kvz_bench_state *s)
{
    const kvz_bench_case *c = s->c;
    kvz_status st = KVZ_OK;
    switch (c->kind) {
    case KVZ_BENCH_STREAM: s->sink = s->stream(s->a, s->bytes / 4); return 0;
    case KVZ_BENCH_SGEMM: {
        const dnnl_dim_t m = (dnnl_dim_t)c->size;
        const dnnl_status_t ds = dnnl_sgemm('N', 'N', m, m, m, 1.0f, s->a, m, s->b, m, 0.0f, s->out, m);
        if (ds != dnnl_success) {
            fprintf(stderr, "kvz bench: %s: dnnl_sgemm failed (dnnl status %d)\n", c->name, (int)ds);
            return -1;
        }
        return 0;
    }
    case KVZ_BENCH_DECODE: {
        const size_t es = c->dtype == KVZ_DTYPE_F32 ? 4 : 2, off = s->next * s->copy_stride * es;
        s->next = (s->next + 1) % s->copies;
        kvz_varlen_args a;
        memset(&a, 0, sizeof a);
        a.struct_size = sizeof a;
        a.n_kv_heads = c->kv_heads, a.group = c->group, a.head_dim = c->head_dim, a.q_len = 1;
        a.q = s->q, a.k = (const char *)s->a + off, a.v = (const char *)s->b + off;
        a.kv_dtype = (kvz_dtype)c->dtype;
        a.kv_row_stride = (ptrdiff_t)c->head_dim, a.cu_len = s->cu, a.out = s->o;
        st = kvz_attn_decode_varlen(&a);
        break;
    }
    case KVZ_BENCH_PREFILL: {
        const size_t H = c->kv_heads, G = c->group, d = c->head_dim;
        kvz_attn_args a;
        memset(&a, 0, sizeof a);
        a.struct_size = sizeof a;
        a.n_kv_heads = H, a.group = G, a.head_dim = d, a.n_q = c->queries, a.n_k = c->context;
        a.q_pos0 = (ptrdiff_t)(c->context - c->queries);
        a.q = s->q, a.q_token_stride = (ptrdiff_t)(H * G * d), a.q_head_stride = (ptrdiff_t)d;
        a.k = s->a, a.v = s->b, a.kv_dtype = (kvz_dtype)c->dtype;
        a.kv_head_stride = (ptrdiff_t)(c->context * d), a.kv_row_stride = (ptrdiff_t)d;
        a.out = s->o, a.out_token_stride = a.q_token_stride, a.out_head_stride = a.q_head_stride;
        if (c->scoring) { /* the queries are the repeated context at the end, as KVzip scores */
            memset(s->score, 0, H * SCORE_CHUNK * 4);
            a.score = s->score, a.score_head_stride = SCORE_CHUNK;
            a.sink_end = SCORE_SINK, a.chunk_begin = SCORE_SINK, a.chunk_end = SCORE_SINK + SCORE_CHUNK;
        }
        st = kvz_attn_prefill(&a);
        break;
    }
    case KVZ_BENCH_DEQUANT:
        st = kvz_dequantize(dq_pool.out, (kvz_dtype)c->dtype, dq_pool.in, c->qtype, s->n);
        break;
    case KVZ_BENCH_GEMV: {
        const kvz_linear l = {.in = c->head_dim,
                              .out = c->context,
                              .wtype = KVZ_WFMT_BLOCKS,
                              .blocks = (const char *)s->a + s->next * s->copy_stride,
                              .qtype = c->qtype};
        s->next = (s->next + 1) % s->copies;
        st = kvz_linear_apply(s->mm, &l, 1, s->q, s->o);
        break;
    }
    case KVZ_BENCH_LINEAR: {
        const kvz_linear blocks = {
            .in = c->head_dim, .out = c->context, .wtype = KVZ_WFMT_BLOCKS, .blocks = s->a, .qtype = c->qtype};
        const kvz_linear copy = {
            .in = c->head_dim, .out = c->context, .wtype = kvz_linear_dense_format(&blocks), .w = s->b};
        st = kvz_linear_apply(s->mm, c->copy ? &copy : &blocks, c->queries, s->q, s->o);
        break;
    }
    }
    if (st != KVZ_OK) {
        fprintf(stderr, "kvz bench: %s: %s (%s)\n", c->name, kvz_strerror(st), kvz_last_error());
        return -1;
    }
    return 0;
}

double kvz_bench_work(const kvz_bench_state *s, const char **unit)
{
    const kvz_bench_kind k = s->c->kind;
    if (unit)
        *unit = k == KVZ_BENCH_SGEMM || k == KVZ_BENCH_PREFILL || k == KVZ_BENCH_LINEAR ? "GFLOP/s" : "GB/s";
    return s->work;
}

void kvz_bench_teardown(kvz_bench_state *s)
{
    if (!s)
        return;
    if (s->c->kind == KVZ_BENCH_DEQUANT && s->n)
        dq_pool_put();
    kvz_mm_destroy(s->mm);
    free(s->a), free(s->b), free(s->out), free(s->q), free(s->o), free(s->score), free(s->cu);
    free(s);
}

/* ---- measurement -------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double kvz_bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double kvz_bench_spread(const double *sorted, int n)
{
    const double q1 = sorted[(n - 1) / 4], q3 = sorted[n - 1 - (n - 1) / 4];
    const double med = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    return med > 0 ? (q3 - q1) / med : 0;
}

/* Median, best and spread of n sorted-in-place times into r. */
static void summarize(kvz_bench_state *s, double *t, int n, kvz_bench_result *r)
{
    r->seconds = kvz_bench_median(t, n);
    r->spread = kvz_bench_spread(t, n);
    r->best = t[0];
    r->work = kvz_bench_work(s, &r->unit);
    r->rate = r->work / r->seconds / 1e9;
    r->reps = n;
}

typedef struct slot {
    kvz_bench_state *s;
    double *t, spent;
    int n, done;
} slot;

int kvz_bench_measure_interleaved(const kvz_bench_case *const *cases, const kvz_bench_budget *budgets, size_t n,
                                  kvz_bench_result *results, int *failed)
{
    slot *sl = calloc(n ? n : 1, sizeof *sl);
    if (!sl) {
        fprintf(stderr, "kvz bench: out of memory\n");
        for (size_t i = 0; i < n; i++)
            failed[i] = 1;
        return -1;
    }
    int any_failed = 0;
    for (size_t i = 0; i < n; i++) {
        const int max_reps = budgets[i].max_reps > 0 ? budgets[i].max_reps : 1;
        failed[i] = 0;
        sl[i].s = kvz_bench_setup(cases[i]);
        sl[i].t = sl[i].s ? malloc((size_t)max_reps * sizeof(double)) : NULL;
        /* the warm-up: first touch of scratch, oneDNN's JIT */
        if (!sl[i].t || kvz_bench_run(sl[i].s) != 0)
            failed[i] = 1, sl[i].done = 1, any_failed = 1;
    }
    /* rounds: each unfinished case runs for about an eighth of its time budget (at least
     * once), so that every case is sampled across the same stretch of wall time */
    for (int pending = 1; pending;) {
        pending = 0;
        for (size_t i = 0; i < n; i++) {
            slot *x = &sl[i];
            const kvz_bench_budget *b = &budgets[i];
            const int max_reps = b->max_reps > 0 ? b->max_reps : 1;
            if (x->done)
                continue;
            double round = 0;
            do {
                const double t0 = omp_get_wtime();
                if (kvz_bench_run(x->s) != 0) {
                    failed[i] = 1, x->done = 1, any_failed = 1;
                    break;
                }
                x->t[x->n] = omp_get_wtime() - t0;
                round += x->t[x->n], x->spent += x->t[x->n++];
            } while (x->n < max_reps && round < b->min_seconds / 8);
            if (!x->done && (x->n >= max_reps || (x->n >= b->min_reps && x->spent >= b->min_seconds)))
                x->done = 1;
            pending |= !x->done;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!failed[i])
            summarize(sl[i].s, sl[i].t, sl[i].n, &results[i]);
        free(sl[i].t);
        kvz_bench_teardown(sl[i].s);
    }
    free(sl);
    return any_failed ? -1 : 0;
}

int kvz_bench_measure(const kvz_bench_case *c, double min_seconds, int min_reps, int max_reps,
                      kvz_bench_result *r)
{
    const kvz_bench_budget b = {min_seconds, min_reps, max_reps};
    int failed = 0;
    return kvz_bench_measure_interleaved(&c, &b, 1, r, &failed);
}

/* ---- environment -------------------------------------------------------------------------- */

void kvz_bench_cpu_model(char *buf, size_t size)
{
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *v = strchr(line, ':');
            if (v) {
                v++;
                while (*v == ' ' || *v == '\t')
                    v++;
                snprintf(buf, size, "%s", v);
                buf[strcspn(buf, "\n")] = '\0';
            }
            break;
        }
    }
    fclose(f);
}

void kvz_bench_label(char *buf, size_t size)
{
    snprintf(buf, size, "isa=%s threads=%d", kvz_isa_name(kvz_isa_active()), kvz_num_threads());
}

const char *kvz_bench_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown compiler";
#endif
}

void kvz_bench_dnnl_version(char *buf, size_t size)
{
    const dnnl_version_t *v = dnnl_version();
    if (v)
        snprintf(buf, size, "%d.%d.%d", v->major, v->minor, v->patch);
    else
        snprintf(buf, size, "unknown");
}
