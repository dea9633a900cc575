/* The one list of kernel signatures: every ISA level fills a kvz_kernel_table with these. */
#ifndef KVZ_SIMD_KERNELS_H
#define KVZ_SIMD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Kernels only compute: they never allocate, start threads or touch global state.
 * Scratch memory comes from the caller (`work`, sized by the *_work_floats helpers,
 * 64-byte aligned). All arithmetic is fp32; K/V may be stored as f32, bf16 or f16.
 * Strides are in elements of the array they describe.
 *
 * One exception, the AVX512_BF16 and AMX levels' attention over bf16 K/V: there the queries are
 * rounded to bf16 (nearest even; before the scale is applied), and the probabilities are
 * rounded to bf16 for P.V too, so that Q.K and P.V run as bf16 pair dot products (products
 * exact, fp32 accumulation), as GPU flash attention does over bf16. Blocks of at most
 * DOT_MAX_ROWS query rows per KV head (decode) keep fp32 probabilities at the AMX level
 * (their P.V runs fp32 FMAs on V widened exactly), and at the AVX512_BF16 level where the
 * head size is not a multiple of 32. The log-sum-exp, the softmax sums and the KVzip scores
 * stay fp32 functions of those logits.
 */

/* Storage dtypes; the values equal the public enum kvz_dtype. */
enum { KVZ_KDT_F32 = 0, KVZ_KDT_BF16 = 1, KVZ_KDT_F16 = 2, KVZ_KDT_COUNT = 3 };

/* GGUF block-quantized tensor types of the dequant kernel; the values are ggml's type ids. */
enum {
    KVZ_KQ_Q4_0 = 2,
    KVZ_KQ_Q4_1 = 3,
    KVZ_KQ_Q5_0 = 6,
    KVZ_KQ_Q5_1 = 7,
    KVZ_KQ_Q8_0 = 8,
    KVZ_KQ_Q2_K = 10,
    KVZ_KQ_Q3_K = 11,
    KVZ_KQ_Q4_K = 12,
    KVZ_KQ_Q5_K = 13,
    KVZ_KQ_Q6_K = 14
};

/* The ISA levels, the one list of them: X(name, ID, value, cpu) gives the level's name (as
 * KVZ_ISA and kvz_isa_name spell it, and the suffix of its kernels and its table), its
 * KVZ_KISA_<ID>, its value (the public enum kvz_isa's, pinned by the ABI: include/kvz.h, and
 * checked against it in src/core/dispatch.c) and the KVZ_CPU_* features it needs
 * (src/core/cpu_features.h; 0: none). In order of preference, lowest first: dispatch takes
 * the last level that both the CPU and the build have. */
#define KVZ_ISA_LIST(X)                                                                                        \
    X(generic, GENERIC, 0, 0)                                                                                  \
    X(neon, NEON, 3, KVZ_CPU_NEON)                                                                             \
    X(avx2, AVX2, 1, KVZ_CPU_AVX2)                                                                             \
    X(avx512, AVX512, 2, KVZ_CPU_AVX512)                                                                       \
    X(avx512bf16, AVX512_BF16, 4, KVZ_CPU_AVX512_BF16)                                                         \
    X(amx, AMX, 5, KVZ_CPU_AMX)

#define KVZ_KISA_ENUM_(name, ID, value, cpu)  KVZ_KISA_##ID = value,
#define KVZ_KISA_COUNT_(name, ID, value, cpu) +1
#define KVZ_KISA_BIT_(name, ID, value, cpu)   | 1u << (value)
enum { KVZ_ISA_LIST(KVZ_KISA_ENUM_) KVZ_KISA_COUNT = 0 KVZ_ISA_LIST(KVZ_KISA_COUNT_) };
/* the values index tables of KVZ_KISA_COUNT entries and bits of a mask */
_Static_assert((0u KVZ_ISA_LIST(KVZ_KISA_BIT_)) == (1u << KVZ_KISA_COUNT) - 1,
               "the levels' values are 0 .. KVZ_KISA_COUNT - 1, each once");

/* Largest head dimension the attention kernels accept. */
#define KVZ_KMAX_HEAD_DIM 256

/* Query rows per block and keys per block of the attention kernels (scratch sizing). */
#define KVZ_KBLOCK_Q 128
#define KVZ_KBLOCK_K 128
/* Widest vector of any level, in floats: padding unit of the scratch rows. */
#define KVZ_KMAX_VW 16

/* How the decode path over bf16 K/V at the levels with pair dot products reads memory
 * (kvz_attn_job.reads; the public kvz_read_plan, same values): one stream per run of keys
 * with software prefetch into L2, or four interleaved streams with prefetch into L1. The
 * core chooses per CPU; every other path ignores it. */
enum { KVZ_KREADS_L2X1 = 0, KVZ_KREADS_L1X4 = 1 };

/*
 * Attention of one KV head and its `group` query heads over a run of keys.
 *
 * Query row (g, i), g < group, i < n_q, is q + g*q_head_stride + i*q_row_stride and sees
 * key j (0 <= j < n_k + n_k2) when j <= q_pos0 + i. Keys 0..n_k-1 are the rows of k/v,
 * keys n_k.. the rows of k2/v2 (a second run: a query's private tail after a shared
 * cache segment; n_k2 = 0 when there is none); both runs have the same row stride (causal with an offset;
 * q_pos0 may be negative or >= n_k, which a caller uses to run a slice of the keys). Softmax over the visible
 * keys with logits scale * <q, k>; out receives the normalised output (zeros for a row
 * that sees no key) and lse, when not NULL, the natural log-sum-exp of the row's logits
 * (-inf when it sees no key), at lse[g*n_q + i].
 *
 * Sliding window (window > 0, a local layer such as Gemma 3's): row i sees key j only when
 * also q_pos0 + i - j < window, both runs counting as one index space. Key blocks outside
 * every row's window are never read, so the work scales with the window, not with n_k.
 * Not combined with scoring: window must be 0 when score != NULL.
 *
 * Scoring mode (score != NULL, KVzip spec section 2): a second log-sum-exp over the reduced
 * key set [0, sink_end) + [chunk_begin, chunk_end) + the row's own causal keys
 * [own_begin, q_pos0 + i] is built in the same sweep; then every chunk key j gets
 * score[j - chunk_begin] = max(score[...], max over rows of exp(z - lse_reduced)).
 * own_begin is where the repeat input's keys start (the first query's position when the
 * caller runs a slice of the queries). Requires sink_end <= chunk_begin <= chunk_end <=
 * own_begin <= q_pos0 and q_pos0 + n_q <= n_k (scoring uses the first run only).
 *
 * Accumulated attention (accum != NULL, H2O): once a query block's log-sum-exps are known,
 * a second visit of the first run's keys that the block sees adds, for every key j < n_k,
 * the sum over the block's rows (g, i) that see j of the softmax probability exp(z - lse)
 * to accum[j] (one float per key of the first run; never reset here). The second run's keys
 * count in every softmax but are not accumulated. Combines with a window and with scoring.
 */
typedef struct kvz_attn_job {
    const float *q;
    ptrdiff_t q_head_stride, q_row_stride;
    const void *k, *v, *k2, *v2;
    ptrdiff_t kv_row_stride;
    int dtype;
    size_t n_q, n_k, n_k2, d, group;
    ptrdiff_t q_pos0;
    size_t window; /* 0: no window */
    float scale;
    float *out;
    ptrdiff_t out_head_stride, out_row_stride;
    float *lse;
    float *score;
    size_t sink_end, chunk_begin, chunk_end, own_begin;
    float *accum; /* NULL: no accumulated attention */
    float *work;  /* kvz_attn_work_floats(d) floats, 64-byte aligned */
    /* Optional, scoring only: KVZ_KBLOCK_Q x (chunk_end - chunk_begin) floats where the first
     * sweep keeps the chunk keys' logits of a query block, so that the second visit does not
     * compute them again (NULL: it recomputes them). */
    float *zstore;
    /* Optional, bf16 K/V: kvz_attn_vt_words(n_k, n_k2, d) 16-bit words, 64-byte aligned,
     * where a level with AMX tiles keeps the V rows transposed into tiles as the job's query
     * blocks first reach them, for its later query blocks (NULL: each key block builds its
     * own). Other levels ignore it. */
    uint16_t *vtstore;
    int reads; /* KVZ_KREADS_* */
} kvz_attn_job;

/*
 * FastKV window score (fastkv spec section 2.2) of one KV head: the last `window` queries
 * of each of the `group` query heads (row (g, r) at q + g*q_head_stride + r*q_row_stride,
 * query position n - window + r) against keys [0, n); causal inside the window; softmax
 * over all n keys; sum over the window rows for keys [0, n - window); 1-D pooling per
 * query head (kernel odd, stride 1, padding kernel/2; avg divides by kernel always, max
 * ignores out-of-range); sum over the group into out[0 .. n - window).
 */
enum { KVZ_KPOOL_AVG = 0, KVZ_KPOOL_MAX = 1 };
typedef struct kvz_window_job {
    const float *q;
    ptrdiff_t q_head_stride, q_row_stride;
    const void *k;
    ptrdiff_t k_row_stride;
    int dtype;
    size_t n, d, group, window, kernel;
    int pool;
    float scale;
    float *out;
    float *work; /* kvz_window_work_floats(n, d) floats, 64-byte aligned */
} kvz_window_job;

/*
 * Rows of GGUF blocks times f32 activation rows: y[r*ldy + j] = sum_k x[r*in + k] w_j[k] for r < m,
 * j < rows, row j of the matrix its n_blocks blocks of `type` (KVZ_KQ_*; in = n_blocks values a
 * block) at w + j*row_bytes (any alignment). Each value w_j[k] is the dequant kernel's (exact), the
 * products summed in fp32 (FMA where the level has it).
 */
typedef struct kvz_gemv_job {
    const void *w;
    int type;
    size_t rows, in, n_blocks, row_bytes;
    const float *x;
    size_t m;
    float *y;
    size_t ldy;
    float *work; /* `in` floats, 64-byte aligned (a level that dequantizes a row first) */
} kvz_gemv_job;

typedef struct kvz_kernel_table {
    int isa;
    const char *name;
    void (*attn)(const kvz_attn_job *job);
    void (*window_score)(const kvz_window_job *job);
    /* dtype conversions of n contiguous elements (round to nearest even on narrowing) */
    void (*to_f32)(float *dst, const void *src, int src_dtype, size_t n);
    void (*from_f32)(void *dst, int dst_dtype, const float *src, size_t n);
    /* The SwiGLU gate of a feed-forward layer in place: g[i] = silu(g[i]) * u[i], silu(x) =
     * x / (1 + e^-x) (vector exp from SLEEF; within a few ulp of the formula in fp32). */
    void (*swiglu)(float *g, const float *u, size_t n);
    /* Gemma's gate in place: g[i] = gelu(g[i]) * u[i], GELU with the tanh approximation
     * (within a few ulp of the formula in fp32, relative error growing with |g|, as e^(2t)'s). */
    void (*geglu)(float *g, const float *u, size_t n);
    /*
     * Selection primitive: radix histogram of the order-preserving 32-bit keys of x
     * (kvz_score_key). Counts, into hist[256], byte `shift/8` of every key whose bits
     * above `shift + 8` equal those of `prefix`.
     */
    void (*key_histogram)(const float *x, size_t n, uint32_t prefix, unsigned shift, uint64_t hist[256]);
    /* CRC32C continued over n bytes (start with 0); NULL where the level has no
     * instruction for it: src/core/crc32c.c then uses its portable tables. */
    uint32_t (*crc32c)(uint32_t crc, const void *data, size_t n);
    /*
     * n_blocks whole blocks of a quantized type (KVZ_KQ_*) from src into dst as KVZ_KDT_F32 or
     * KVZ_KDT_BF16 (the f32 value rounded to nearest even). The f32 values are ggml's
     * dequantize_row_*: f16 scales widened exactly, the same fp32 products and sums. Every product
     * of a scale and a quant is exact in fp32, so the values are the same bits at every level,
     * with or without FMA.
     */
    void (*dequant)(void *dst, int dst_dtype, const void *src, int type, size_t n_blocks);
    /*
     * A matrix of Q8_0 rows times f32 activations: y[r*ldy + j] = sum_k x[r*in + k] w_j[k] for
     * r < m, j < rows, with row j of the matrix `in` values (a multiple of 32) in in/32 ggml
     * Q8_0 blocks of 34 bytes (an f16 scale d, 32 int8 quants q; value d*q), rows back to back
     * from w (any alignment). Each block's 32 products q*x are summed and then scaled by d, in
     * fp32: the sum of the exact values d*q*x up to fp32 rounding.
     */
    void (*gemv_q8_0)(float *y, size_t ldy, const float *x, size_t m, const void *w, size_t rows, size_t in);
    /* The same for rows of any block type the dequant kernel reads (kvz_gemv_job). */
    void (*gemv_blocks)(const kvz_gemv_job *job);
} kvz_kernel_table;

/* Order-preserving map of a float to an unsigned key (larger float, larger key). */
static inline uint32_t kvz_score_key(float x)
{
    union {
        float f;
        uint32_t u;
    } c = {x};
    return (c.u & 0x80000000u) ? ~c.u : (c.u | 0x80000000u);
}

static inline float kvz_score_from_key(uint32_t k)
{
    union {
        uint32_t u;
        float f;
    } c = {(k & 0x80000000u) ? (k & 0x7fffffffu) : ~k};
    return c.f;
}

/* Scratch sizes, the same for every level. */
static inline size_t kvz_kpad(size_t d) { return (d + KVZ_KMAX_VW - 1) / KVZ_KMAX_VW * KVZ_KMAX_VW; }
static inline size_t kvz_attn_work_floats(size_t d)
{
    const size_t dp = kvz_kpad(d);
    return d * KVZ_KBLOCK_Q                                  /* Q transposed */
           + KVZ_KBLOCK_Q * dp                               /* Q rows (dot path) and O accumulator */
           + KVZ_KBLOCK_Q * dp + KVZ_KBLOCK_K * KVZ_KBLOCK_Q /* logits / probabilities */
           + 2 * KVZ_KBLOCK_K * dp                           /* K and V converted */
           + KVZ_KBLOCK_K * KVZ_KBLOCK_Q / 2                 /* probabilities as bf16 pairs */
           + 8 * KVZ_KBLOCK_Q                                /* row statistics */
           + 64;
}
/* The 16-bit words of a job's vtstore: each run's keys in whole chunks of 32, d words a key
 * (d rounded up to 32). */
static inline size_t kvz_attn_vt_words(size_t n_k, size_t n_k2, size_t d)
{
    return ((n_k + 31) / 32 + (n_k2 + 31) / 32) * 32 * ((d + 31) / 32 * 32);
}
static inline size_t kvz_window_work_floats(size_t n, size_t d) { return kvz_attn_work_floats(d) + n + 64; }

/* Names of one level's kernels: kvz_<op>_<isa>. */
#define KVZ_KCAT_(a, b) a##b
#define KVZ_KCAT(a, b)  KVZ_KCAT_(a, b)
#define KVZ_KERNEL_DECLS(isa)                                                                                  \
    void kvz_attn_##isa(const kvz_attn_job *job);                                                              \
    void kvz_window_score_##isa(const kvz_window_job *job);                                                    \
    void kvz_to_f32_##isa(float *dst, const void *src, int src_dtype, size_t n);                               \
    void kvz_from_f32_##isa(void *dst, int dst_dtype, const float *src, size_t n);                             \
    void kvz_swiglu_##isa(float *g, const float *u, size_t n);                                                 \
    void kvz_geglu_##isa(float *g, const float *u, size_t n);                                                  \
    void kvz_key_histogram_##isa(const float *x, size_t n, uint32_t prefix, unsigned shift,                    \
                                 uint64_t hist[256]);                                                          \
    void kvz_dequant_##isa(void *dst, int dst_dtype, const void *src, int type, size_t n_blocks);              \
    void kvz_gemv_q8_0_##isa(float *y, size_t ldy, const float *x, size_t m, const void *w, size_t rows,       \
                             size_t in);                                                                       \
    void kvz_gemv_blocks_##isa(const kvz_gemv_job *job);
uint32_t kvz_crc32c_avx2(uint32_t crc, const void *data, size_t n);
uint32_t kvz_crc32c_avx512(uint32_t crc, const void *data, size_t n);
KVZ_KERNEL_DECLS(generic)
KVZ_KERNEL_DECLS(avx2)
KVZ_KERNEL_DECLS(avx512)
KVZ_KERNEL_DECLS(neon)
/* the AVX512_BF16 level has attention and dequant kernels of its own and shares the rest with avx512 */
void kvz_attn_avx512bf16(const kvz_attn_job *job);
void kvz_window_score_avx512bf16(const kvz_window_job *job);
void kvz_dequant_avx512bf16(void *dst, int dst_dtype, const void *src, int type, size_t n_blocks);
/* the AMX level likewise: its attention runs the bf16 gemm path's products on AMX tiles */
void kvz_attn_amx(const kvz_attn_job *job);
void kvz_window_score_amx(const kvz_window_job *job);

/* The levels' tables, kvz_kernels_<name>; only those config.h names (KVZ_HAVE_*) are compiled
 * into a build. */
#define KVZ_KTABLE_DECL_(name, ID, value, cpu) extern const kvz_kernel_table kvz_kernels_##name;
KVZ_ISA_LIST(KVZ_KTABLE_DECL_)

#endif
