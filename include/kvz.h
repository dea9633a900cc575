/* libkvz public API: KV-cache compression (KVzip, FastKV) for CPU inference, stable C ABI. */
#ifndef KVZ_H
#define KVZ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(KVZ_BUILDING_LIBRARY) && defined(__GNUC__)
#define KVZ_API __attribute__((visibility("default")))
#else
#define KVZ_API
#endif

/*
 * Structs: every public struct but kvz_version_info starts with struct_size (set it to sizeof
 * the struct) and only ever grows at the end. A call accepts any struct_size from the
 * struct's size in the release that introduced it up: fields an older caller's header lacks
 * take their defaults (zero); a larger struct with a field set that this library does not
 * know is refused with KVZ_ERR_UNSUPPORTED; result structs are written only up to the
 * caller's struct_size (doc/api.md, Compatibility).
 */

/** @name Version
 *  Compile-time version of the header; kvz_version() gives the library's at run time.
 *  @{ */
#define KVZ_VERSION_MAJOR  0
#define KVZ_VERSION_MINOR  1
#define KVZ_VERSION_PATCH  0
#define KVZ_VERSION_NUMBER (KVZ_VERSION_MAJOR * 10000 + KVZ_VERSION_MINOR * 100 + KVZ_VERSION_PATCH)
/** @} */

/**
 * Status of every call. The values are pinned forever: new codes are only appended.
 * @since 0.1
 */
typedef enum kvz_status {
    KVZ_OK = 0,                  /**< success */
    KVZ_ERR_NULL = 1,            /**< a required pointer was NULL */
    KVZ_ERR_INVALID_ARG = 2,     /**< a size, stride or option is out of range */
    KVZ_ERR_NOMEM = 3,           /**< memory allocation failed */
    KVZ_ERR_UNSUPPORTED = 4,     /**< valid request this build or CPU cannot do */
    KVZ_ERR_ISA_UNAVAILABLE = 5, /**< the requested ISA level is not supported here */
    KVZ_ERR_IO = 6,              /**< an operating-system I/O call failed */
    KVZ_ERR_FORMAT = 7,          /**< a file is not in the expected format */
    KVZ_ERR_CORRUPT = 8,         /**< a file failed its checksum or bounds checks */
    KVZ_ERR_VERSION = 9,         /**< a file has an unsupported format version */
    KVZ_ERR_MISMATCH = 10,       /**< a file or object belongs to another model/shape */
    KVZ_ERR_TRUNCATED = 11,      /**< a file ends before its declared size */
    KVZ_ERR_STATE = 12           /**< the object is not in a state that allows the call */
} kvz_status;

/** Storage type of K/V rows. @since 0.1 */
typedef enum kvz_dtype {
    KVZ_DTYPE_F32 = 0,  /**< IEEE binary32 */
    KVZ_DTYPE_BF16 = 1, /**< bfloat16 (upper half of binary32) */
    KVZ_DTYPE_F16 = 2   /**< IEEE binary16 */
} kvz_dtype;

/** Instruction-set level of the kernels. @since 0.1 */
typedef enum kvz_isa {
    KVZ_ISA_GENERIC = 0, /**< portable C */
    KVZ_ISA_AVX2 = 1,    /**< x86-64 AVX2 + FMA + F16C */
    KVZ_ISA_AVX512 = 2,  /**< x86-64 AVX-512 F/BW/VL/DQ */
    KVZ_ISA_NEON = 3,    /**< aarch64 Advanced SIMD */
    /** x86-64 AVX-512 plus AVX512_BF16: attention over bf16 K/V rounds the queries and the
     *  probabilities to bf16 for pair dot products with fp32 accumulation (in decode with a
     *  head size that is not a multiple of 32, only the queries; doc/kernels.md). Above
     *  avx512. @since 0.1 */
    KVZ_ISA_AVX512_BF16 = 4,
    /** x86-64 AVX512_BF16 plus AMX-BF16 tiles (Sapphire Rapids and later; on Linux the
     *  process is granted the tile state on first use): the avx512bf16 level with the
     *  products of attention over bf16 K/V in blocks of many query rows (prefill, KVzip
     *  scoring) on tiles, same rounding. Those calls load their own tile configuration and
     *  release the tiles before they return (as oneDNN's kernels do): a caller's tile state
     *  does not survive them. Above avx512bf16. @since 0.1 */
    KVZ_ISA_AMX = 5
} kvz_isa;

/** Runtime library version. @since 0.1 */
typedef struct kvz_version_info {
    int major, minor, patch;
    const char *string; /**< "MAJOR.MINOR.PATCH" */
} kvz_version_info;

/** The version of the linked library. Thread-safe. @since 0.1 */
KVZ_API kvz_version_info kvz_version(void);

/** Static text for a status (never NULL, also for unknown values). Thread-safe. @since 0.1 */
KVZ_API const char *kvz_strerror(kvz_status status);

/**
 * A message about the last failing call made by this thread, with the details the status
 * cannot carry (which argument, which file offset). Empty when nothing failed yet. The
 * pointer stays valid until the thread's next libkvz call. @since 0.1
 */
KVZ_API const char *kvz_last_error(void);

/** @name ISA dispatch
 *  The best level is chosen once per process, on first use; the environment variable
 *  KVZ_ISA=generic|avx2|avx512|avx512bf16|amx|neon forces a lower one (a level the CPU lacks is refused:
 *  the library then stays on the best level, says why on stderr, and kvz_last_error() of
 *  the thread whose call made the choice says it too).
 *  @{ */

/** The level the kernels currently use. Thread-safe. @since 0.1 */
KVZ_API kvz_isa kvz_isa_active(void);

/** Non-zero when this build and this CPU (and OS) can run @p isa. Thread-safe. @since 0.1 */
KVZ_API int kvz_isa_supported(kvz_isa isa);

/**
 * Forces the kernels to @p isa for the rest of the process (or until the next call).
 * Safe to call while other threads compute: each call of theirs uses one level throughout.
 * @return KVZ_OK, KVZ_ERR_INVALID_ARG (unknown value) or KVZ_ERR_ISA_UNAVAILABLE.
 * @since 0.1
 */
KVZ_API kvz_status kvz_isa_force(kvz_isa isa);

/** Lower-case name of a level ("generic", "avx2", "avx512", "avx512bf16", "amx", "neon"), or
 *  "unknown".
 *  @since 0.1 */
KVZ_API const char *kvz_isa_name(kvz_isa isa);

/** Parses a level name as accepted by KVZ_ISA. @return KVZ_OK or KVZ_ERR_INVALID_ARG. @since 0.1 */
KVZ_API kvz_status kvz_isa_from_name(const char *name, kvz_isa *isa);
/** @} */

/** @name Runtime facts
 *  @{ */
/**
 * Threads the library's parallel calls use: the last kvz_set_num_threads() value, else
 * KVZ_NUM_THREADS, else the first value of OMP_NUM_THREADS, else the CPUs this process may
 * run on (its affinity mask). Read, never changed: the host's OpenMP settings.
 * Thread-safe. @since 0.1
 */
KVZ_API int kvz_num_threads(void);
/**
 * Sets the threads the library's parallel calls use, process-wide, from the next call on
 * (@p n = 0: back to the default of kvz_num_threads()). The library runs its parallel work
 * on a pool of its own (n - 1 workers and the calling thread): a call never waits for a
 * worker that has not started, idle workers sleep after a short spin, and a call made while
 * another thread's call holds the pool, or from inside one, runs on the calling thread
 * alone, so a host that calls from several threads of its own does not oversubscribe the
 * machine.
 * @return KVZ_OK, or KVZ_ERR_INVALID_ARG when @p n is negative or above 1024.
 * Thread-safe. @since 0.1
 */
KVZ_API kvz_status kvz_set_num_threads(int n);
/** NUMA nodes visible (1 without libnuma or on a one-node machine). @since 0.1 */
KVZ_API int kvz_numa_nodes(void);
/** Non-zero when the CPU (and OS) support AVX512_BF16. @since 0.1 */
KVZ_API int kvz_cpu_has_avx512_bf16(void);
/** @} */

/** @name Read plan
 *  How the decode kernels over a bf16 cache (levels avx512bf16 and amx, head sizes that are
 *  multiples of 32) stream K/V from memory. Which plan keeps the most reads in flight differs
 *  between CPU designs, so the plan is chosen once per process from the CPU's vendor: Intel
 *  l1x4, every other CPU l2x1. The environment variable KVZ_READ_PLAN=l2x1|l1x4 forces one
 *  (another value is refused: the library says why on stderr and in kvz_last_error() of the
 *  thread whose call made the choice, and keeps the CPU's plan). Both plans give the same
 *  results within rounding (only the order in which the running softmax meets the keys
 *  differs); every other path ignores the plan.
 *  @{ */
/** @since 0.1 */
typedef enum kvz_read_plan {
    KVZ_READ_PLAN_L2X1 = 0, /**< "l2x1": each head's keys as one stream, software prefetch into L2 */
    KVZ_READ_PLAN_L1X4 = 1  /**< "l1x4": four interleaved streams per head, software prefetch into L1 */
} kvz_read_plan;
/** The plan the decode kernels currently use. Thread-safe. @since 0.1 */
KVZ_API kvz_read_plan kvz_read_plan_active(void);
/** Forces @p plan for the rest of the process (or until the next call); calls already
 *  running finish with the plan they started with. @return KVZ_OK or KVZ_ERR_INVALID_ARG
 *  (unknown value). Thread-safe. @since 0.1 */
KVZ_API kvz_status kvz_read_plan_force(kvz_read_plan plan);
/** The plan's name ("l2x1", "l1x4"), or "unknown". @since 0.1 */
KVZ_API const char *kvz_read_plan_name(kvz_read_plan plan);
/** @} */

/** @name Conversions
 *  @{ */
/**
 * Converts @p n elements between storage types (f32 narrowing rounds to nearest even; NaN
 * stays NaN). Source and destination must not overlap unless they are the same pointer
 * with the same type. Neither needs any alignment (a GGUF tensor may start at any byte).
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (unknown dtype). Thread-safe. @since 0.1
 */
KVZ_API kvz_status kvz_convert(void *dst, kvz_dtype dst_dtype, const void *src, kvz_dtype src_dtype, size_t n);
/** @} */

/** @name Attention
 *  Layouts are given by strides counted in elements. One layer at a time; every KV head h
 *  serves query heads h*group .. h*group + group - 1 (GQA without copying K/V). Logits
 *  are scale * <q, k> with scale = 1/sqrt(head_dim) when 0 is given.
 *  @{ */

/**
 * Chunked prefill attention of one layer, optionally in KVzip scoring mode.
 *
 * Query i of query head qh: q + i*q_token_stride + qh*q_head_stride (head_dim floats,
 * post-RoPE). Key j of KV head h: k + h*kv_head_stride + j*kv_row_stride (likewise v), in
 * @c kv_dtype. Query i sees keys j <= q_pos0 + i (q_pos0 = n_k - n_q when the queries'
 * own keys are the last n_q keys). Output i of query head qh at
 * out + i*out_token_stride + qh*out_head_stride.
 *
 * Scoring mode (@c score not NULL; KVzip spec section 2): for each KV head h,
 * score + h*score_head_stride holds chunk_end - chunk_begin floats that receive
 * max(score, max over the group's query heads and all n_q queries of softmax
 * probabilities over the reduced key set [0, sink_end) + [chunk_begin, chunk_end) + own
 * causal keys from q_pos0). Requires sink_end <= chunk_begin <= chunk_end <= q_pos0 and
 * q_pos0 + n_q <= n_k. Initialise the scores to 0 before the first chunk.
 *
 * Accumulated attention (@c accum not NULL; the H2O policy): for each KV head h,
 * accum + h*accum_head_stride holds n_k floats; key j receives += the sum over the group's
 * query heads and the n_q queries that see it of the softmax probability it gets (the
 * ordinary attention probabilities over all keys each query sees). Nothing is reset: zero
 * the rows once, then call chunk after chunk of a chunked prefill, and keys of earlier
 * chunks gather the attention of later chunks' queries. Combines with scoring.
 *
 * Fields are only ever added at the end: any struct_size from the 0.1 layout's,
 * offsetof(kvz_attn_args, accum), up is accepted, the fields it leaves out NULL/0.
 */
typedef struct kvz_attn_args {
    size_t struct_size; /**< sizeof(kvz_attn_args): lets the struct grow compatibly */
    size_t n_kv_heads, group, head_dim;
    size_t n_q, n_k;
    ptrdiff_t q_pos0;
    float scale;
    const float *q;
    ptrdiff_t q_token_stride, q_head_stride;
    const void *k, *v;
    kvz_dtype kv_dtype;
    ptrdiff_t kv_head_stride, kv_row_stride;
    float *out;
    ptrdiff_t out_token_stride, out_head_stride;
    float *lse; /**< optional: n_kv_heads*group*n_q floats, [query head][i] */
    float *score;
    ptrdiff_t score_head_stride;
    size_t sink_end, chunk_begin, chunk_end;
    /** Optional (NULL: none): accumulated attention, n_k floats per KV head, added to (see
     *  above). A struct_size that ends before this field means NULL. @since 0.1 */
    float *accum;
    ptrdiff_t accum_head_stride; /**< floats from one KV head's accum row to the next. @since 0.1 */
} kvz_attn_args;

/**
 * Runs prefill (or scoring, or accumulating) attention on the library's threads over heads
 * and query blocks.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (sizes, head_dim > 256, ranges),
 *         KVZ_ERR_NOMEM. Thread-safe for distinct outputs. @since 0.1
 */
KVZ_API kvz_status kvz_attn_prefill(const kvz_attn_args *args);

/**
 * Decode attention over variable-length KV heads: the CPU form of flash_attn_varlen.
 *
 * K and V are flattened arrays of rows (head_dim elements of kv_dtype, row stride
 * kv_row_stride): KV head h owns rows cu_len[h] .. cu_len[h+1]-1 (cu_len has n_kv_heads+1
 * non-decreasing entries starting at 0). q holds n_kv_heads*q_len*group rows of head_dim
 * floats laid out [h][t][g] (spec kvzip.md section 4.3), and out the same. New token t of
 * head h sees the first len_h - q_len + t + 1 rows of its segment (bottom-right causal
 * alignment); a row that sees nothing gets zeros. Keys are split across threads and
 * merged by log-sum-exp. Only existing rows are read.
 */
typedef struct kvz_varlen_args {
    size_t struct_size; /**< sizeof(kvz_varlen_args) */
    size_t n_kv_heads, group, head_dim, q_len;
    float scale;
    const float *q;
    const void *k, *v;
    kvz_dtype kv_dtype;
    ptrdiff_t kv_row_stride;
    const int32_t *cu_len;
    float *out;
} kvz_varlen_args;

/** @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG, KVZ_ERR_NOMEM. @since 0.1 */
KVZ_API kvz_status kvz_attn_decode_varlen(const kvz_varlen_args *args);

/** Pooling of the FastKV window score. @since 0.1 */
typedef enum kvz_pool { KVZ_POOL_AVG = 0, KVZ_POOL_MAX = 1 } kvz_pool;

/**
 * FastKV window score of one layer (fastkv spec section 2.2): for each KV head, the last
 * @c window queries of its query heads against its n keys, causal inside the window,
 * softmax over all n keys, summed over the window rows, pooled per query head with an odd
 * @c kernel (avg: zero padding, always divided by kernel; max: in-range neighbours), summed
 * over the group. Query r (0..window-1) of query head qh at q + r*q_token_stride +
 * qh*q_head_stride; output of KV head h at out + h*out_head_stride, n - window floats.
 */
typedef struct kvz_window_args {
    size_t struct_size; /**< sizeof(kvz_window_args) */
    size_t n_kv_heads, group, head_dim, n, window, kernel;
    kvz_pool pool;
    float scale;
    const float *q;
    ptrdiff_t q_token_stride, q_head_stride;
    const void *k;
    kvz_dtype k_dtype;
    ptrdiff_t k_head_stride, k_row_stride;
    float *out;
    ptrdiff_t out_head_stride;
} kvz_window_args;

/** @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG, KVZ_ERR_NOMEM. @since 0.1 */
KVZ_API kvz_status kvz_window_score(const kvz_window_args *args);
/** @} */

/** @name Selection
 *  @{ */

/** How a global threshold treats ties. @since 0.1 */
typedef enum kvz_select_mode {
    /** KVzip reference rule: thres = the value at rank max(floor(N*ratio) - 1, 0) (0-based,
     *  descending); keep exactly the scores > thres; ratio >= 1 keeps all. */
    KVZ_SELECT_STRICT = 0,
    /** Keep exactly floor(N*ratio) scores (all when ratio >= 1): the largest, ties broken
     *  by row order and then position (rows are ordered layer-major, then head). */
    KVZ_SELECT_EXACT = 1
} kvz_select_mode;

/**
 * One global threshold over many rows of scores (e.g. every (layer, KV head) of a model).
 * Writes keep[r][j] = 1 for kept, 0 for evicted. N is the sum of lens.
 * @param n_kept    optional: number of kept entries.
 * @param threshold optional: the threshold value (strict: the rank value; exact: the
 *                  smallest kept score; -inf/+inf at the extremes).
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (ratio < 0 or NaN, NaN scores). @since 0.1
 */
KVZ_API kvz_status kvz_select_global(const float *const *rows, const size_t *lens, size_t n_rows, double ratio,
                                     kvz_select_mode mode, uint8_t *const *keep, size_t *n_kept,
                                     float *threshold);

/**
 * The k largest of one row (ties: lower index first), written to idx in ascending index
 * order. k > n is clamped to n. @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG. @since 0.1
 */
KVZ_API kvz_status kvz_select_topk(const float *scores, size_t n, size_t k, uint32_t *idx, size_t *n_out);
/** @} */

/** @name Compressed KV cache
 *  One segment per (layer, KV head): K rows, V rows (head_dim elements of the storage
 *  type, 64-byte aligned), the original token position of each row, a length and a
 *  capacity. Rows keep RoPE of their original position, so nothing is re-rotated after
 *  eviction and new tokens continue at the uncompressed position. A host inference stack
 *  drives it one layer at a time: append the layer's post-RoPE K/V, then attend.
 *
 *  Thread safety: calls on one cache from several threads need external locking, except
 *  that any number of kvz_query objects (each used by one thread at a time) may read one
 *  cache concurrently; while queries exist the cache refuses changes (KVZ_ERR_STATE).
 *  @{ */

/**
 * Positions are below this bound and a layer's next position is at most it: appends that
 * would pass it are refused (KVZ_ERR_INVALID_ARG) and so is a .kvz file that claims more
 * (KVZ_ERR_CORRUPT). 2^62 leaves every sum of a position and a token count inside int64_t.
 * @since 0.1
 */
#define KVZ_POSITION_LIMIT ((int64_t)1 << 62)

/** A compressed KV cache. @since 0.1 */
typedef struct kvz_cache kvz_cache;
/** A private tail of appended tokens over a shared, read-only cache. @since 0.1 */
typedef struct kvz_query kvz_query;

/**
 * Shape and storage of a cache. Fields are only ever added at the end: any struct_size from
 * the 0.1 layout's, offsetof(kvz_cache_config, layer_window), up is accepted, and the fields
 * a smaller size leaves out take their defaults (layer_window: NULL).
 * @since 0.1
 */
typedef struct kvz_cache_config {
    size_t struct_size; /**< sizeof(kvz_cache_config) */
    size_t n_layers, n_kv_heads, head_dim;
    kvz_dtype dtype; /**< storage type of K/V rows */
    size_t reserve;  /**< rows reserved per segment up front (0: grow on demand) */
    /**
     * Sliding-window (local) layers, such as Gemma 3's: NULL for none, else n_layers
     * entries, layer_window[l] the window of layer l in tokens or 0 for a global layer
     * (copied at creation). A token of a windowed layer sees the last `window` tokens
     * appended to the layer, itself included: the window counts tokens held, not positions.
     * With consecutive positions (every prefill and decode) those are the keys at positions
     * p - window < p' <= p of a token at p; the tokens FastKV propagates past its TSP layer
     * keep their positions, with gaps, and see the last `window` tokens propagated (as the
     * reference's flash attention counts its window by index). A windowed layer holds only
     * the rows its window can still need: an append first drops the rows before the last
     * `window` once there are at least `window` of them (so it holds at most 2 x window rows
     * plus one append's), and it is neither scored nor compacted.
     * @since 0.1
     */
    const size_t *layer_window;
} kvz_cache_config;

/** Creates an empty cache. @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (shape, struct_size below
 *  the 0.1 layout's), KVZ_ERR_NOMEM. @since 0.1 */
KVZ_API kvz_status kvz_cache_create(const kvz_cache_config *config, kvz_cache **cache);

/**
 * An independent copy of a cache: the same rows, positions and next positions, placed on
 * NUMA nodes by its own sizes (e.g. to compress one prefill by several policies or ratios).
 * Only reads the source, so queries may exist on it.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_NOMEM (nothing is left behind). @since 0.1
 */
KVZ_API kvz_status kvz_cache_clone(const kvz_cache *cache, kvz_cache **copy);

/** Frees a cache (NULL is a no-op). Its queries must have been destroyed first. @since 0.1 */
KVZ_API void kvz_cache_destroy(kvz_cache *cache);

/**
 * Appends n_tokens tokens of one layer: K and V as f32, token t of KV head h at
 * k + t*token_stride + h*head_stride (post-RoPE), converted to the storage type. The tokens
 * get the next positions of that layer (kvz_cache_next_position) and are appended to every
 * head's segment, growing it in place when needed. On failure the cache holds the same rows,
 * positions and next positions as before (a KVZ_ERR_NOMEM may leave some segments with more
 * room).
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (layer, next position past
 *         KVZ_POSITION_LIMIT), KVZ_ERR_NOMEM,
 *         KVZ_ERR_STATE (queries exist). @since 0.1
 */
KVZ_API kvz_status kvz_cache_append(kvz_cache *cache, size_t layer, size_t n_tokens, const float *k,
                                    const float *v, ptrdiff_t token_stride, ptrdiff_t head_stride);

/**
 * As kvz_cache_append, with the tokens' original positions given: positions[t] for token t,
 * strictly increasing and not below kvz_cache_next_position of the layer (gaps allowed: the
 * tokens FastKV propagates past its TSP layer keep their original positions; a sliding-window
 * layer's window counts tokens, not positions: kvz_cache_config.layer_window). The layer's
 * next position becomes positions[n_tokens-1] + 1.
 * @return as kvz_cache_append; KVZ_ERR_INVALID_ARG for positions out of order or a position
 *         not below KVZ_POSITION_LIMIT. @since 0.1
 */
KVZ_API kvz_status kvz_cache_append_at(kvz_cache *cache, size_t layer, size_t n_tokens, const float *k,
                                       const float *v, ptrdiff_t token_stride, ptrdiff_t head_stride,
                                       const int64_t *positions);

/**
 * Makes room for n_tokens more tokens in every segment, so that appending them moves no
 * rows: a segment otherwise doubles its capacity as it fills, copying what it holds. A
 * segment that grows gets exactly the room asked for (appends past it double again); one
 * with room enough is left as it is; nothing shrinks and no row changes.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_NOMEM (the segments reserved before the failure
 *         keep their room), KVZ_ERR_STATE (queries exist: they read the rows where they
 *         are). @since 0.1
 */
KVZ_API kvz_status kvz_cache_reserve(kvz_cache *cache, size_t n_tokens);

/**
 * Removes the last n_tokens tokens appended to every layer (they must have been appended
 * after the last compaction): the cache is then exactly as before they were appended,
 * bytes and metadata (after kvz_cache_append_at, a layer's next position becomes the first
 * removed token's position). This is the "drop the query" step of KVzip's multi-query protocol
 * when queries are appended to the cache itself.
 * A sliding-window layer may have dropped old rows at the start of the last append: going
 * back no further than that append's start always works (the layer keeps every row its
 * window needs, though maybe fewer rows than before the append); going further back is
 * refused with KVZ_ERR_STATE, and nothing changes, when rows were dropped and it would leave
 * the layer fewer rows than its window.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (more than were appended since the last
 *         compaction), KVZ_ERR_STATE (queries exist, or a windowed layer's rows are gone).
 *         @since 0.1
 */
KVZ_API kvz_status kvz_cache_truncate(kvz_cache *cache, size_t n_tokens);

/**
 * Evicts rows: keep[layer*n_kv_heads + head] holds one byte per current row of that
 * segment (non-zero keeps it). Survivors keep their order, data and positions; memory of
 * evicted rows is released when a segment shrinks below half its capacity and memory for its
 * smaller buffers can be had (else the rows stay in the larger ones: a compaction never fails
 * for want of memory). Sliding-window layers are left as they are: their entries of keep are
 * ignored and may be NULL. On failure nothing has changed.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_STATE (queries exist). @since 0.1
 */
KVZ_API kvz_status kvz_cache_compact(kvz_cache *cache, const uint8_t *const *keep);

/** Rows of one segment. @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG. @since 0.1 */
KVZ_API kvz_status kvz_cache_length(const kvz_cache *cache, size_t layer, size_t head, size_t *length);

/** The original positions of a segment's rows (valid until the cache changes). @since 0.1 */
KVZ_API kvz_status kvz_cache_positions(const kvz_cache *cache, size_t layer, size_t head,
                                       const int64_t **positions);

/** Read-only K and V rows of a segment, in the storage type, row stride head_dim. @since 0.1 */
KVZ_API kvz_status kvz_cache_rows(const kvz_cache *cache, size_t layer, size_t head, const void **k,
                                  const void **v);

/** The position the next token appended to a layer gets: the uncompressed length. @since 0.1 */
KVZ_API kvz_status kvz_cache_next_position(const kvz_cache *cache, size_t layer, int64_t *position);

/**
 * The sliding window of a layer (kvz_cache_config.layer_window).
 * @param cache the cache.
 * @param layer a layer of the cache.
 * @param window receives the layer's window in tokens, 0 for a global layer.
 * @return KVZ_OK, KVZ_ERR_NULL (cache or window), KVZ_ERR_INVALID_ARG (layer).
 *         Thread-safe (reads only). @since 0.1
 */
KVZ_API kvz_status kvz_cache_layer_window(const kvz_cache *cache, size_t layer, size_t *window);

/**
 * The shape a cache was created with (kvz_cache_config), so that a loaded cache can be checked
 * against the model or buffers it is used with before any row is read or written.
 * @param cache the cache.
 * @param n_layers receives the layer count (NULL: not wanted).
 * @param n_kv_heads receives the KV heads per layer (NULL: not wanted).
 * @param head_dim receives the elements of a K or V row (NULL: not wanted).
 * @param dtype receives the storage type of the rows (NULL: not wanted).
 * @return KVZ_OK, KVZ_ERR_NULL (cache). Thread-safe (reads only). @since 0.1
 */
KVZ_API kvz_status kvz_cache_shape(const kvz_cache *cache, size_t *n_layers, size_t *n_kv_heads,
                                   size_t *head_dim, kvz_dtype *dtype);

/** Memory accounting. @since 0.1 */
typedef struct kvz_cache_stats {
    size_t struct_size;    /**< sizeof(kvz_cache_stats) */
    size_t rows;           /**< rows held, all segments */
    size_t full_rows;      /**< rows an uncompressed cache would hold: layers x heads x tokens appended */
    double kept_ratio;     /**< rows / full_rows (1 when nothing was appended) */
    size_t bytes_used;     /**< K/V/position bytes of the rows held */
    size_t bytes_reserved; /**< bytes allocated for segments (capacity) */
} kvz_cache_stats;

/** Fills stats. @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (struct_size). @since 0.1 */
KVZ_API kvz_status kvz_cache_get_stats(const kvz_cache *cache, kvz_cache_stats *stats);

/** Bytes of K/V/positions held by one segment. @since 0.1 */
KVZ_API kvz_status kvz_cache_segment_bytes(const kvz_cache *cache, size_t layer, size_t head, size_t *bytes);

/**
 * The NUMA node a segment's memory is placed on, or -1 when it is not placed (one node,
 * or a build without libnuma). kvz_cache_create and kvz_cache_load place segments with
 * kvz_numa_plan over the machine's nodes when there are two or more; the node is a strong
 * preference, so the kernel may still take pages elsewhere when that node runs out.
 * Lets a host hand each (layer, head) to threads running on its node.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG. Thread-safe. @since 0.1
 */
KVZ_API kvz_status kvz_cache_segment_node(const kvz_cache *cache, size_t layer, size_t head, int *node);

/**
 * Attention of one layer's queries over the cache: query t (0..n_q-1) of query head qh at
 * q + t*q_token_stride + qh*q_head_stride; KV head h = qh / group. The queries' own keys
 * are the last n_q rows of each segment (append them first); token t sees the first
 * len_h - n_q + t + 1 rows of head h (bottom-right causal alignment). Optional KVzip
 * scoring: score + h*score_head_stride receives the max-folded probabilities of rows
 * [chunk_begin, chunk_end) of every segment (reduced set: rows [0, sink_end), the chunk, and
 * the queries' own rows), as kvz_attn_prefill describes.
 *
 * Optional accumulated attention (the H2O policy): accum + h*accum_head_stride holds one
 * float per row of head h's segment, n_k = its length with the queries' rows appended (all
 * heads of a layer have the same length during a prefill); each row receives += the
 * attention the n_q queries of the group's query heads give it, as kvz_attn_prefill
 * describes. Refused on a sliding-window layer and by kvz_query_attend.
 *
 * Fields are only ever added at the end: any struct_size from the 0.1 layout's,
 * offsetof(kvz_attend_args, accum), up is accepted, the fields it leaves out NULL/0.
 */
typedef struct kvz_attend_args {
    size_t struct_size; /**< sizeof(kvz_attend_args) */
    size_t group;       /**< query heads per KV head */
    size_t n_q;
    float scale; /**< 0: 1/sqrt(head_dim) */
    const float *q;
    ptrdiff_t q_token_stride, q_head_stride;
    float *out;
    ptrdiff_t out_token_stride, out_head_stride;
    float *score;
    ptrdiff_t score_head_stride;
    size_t sink_end, chunk_begin, chunk_end;
    /** Optional (NULL: none): accumulated attention, one float per segment row and KV head,
     *  added to (see above). A struct_size that ends before this field means NULL. @since 0.1 */
    float *accum;
    ptrdiff_t accum_head_stride; /**< floats from one KV head's accum row to the next. @since 0.1 */
} kvz_attend_args;

/** On a sliding-window layer each token sees only the rows of its window, and scoring and
 *  accumulated attention are refused (KVzip and H2O select on the global layers only).
 *  @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (also: scoring or accum on a windowed
 *  layer), KVZ_ERR_NOMEM. @since 0.1 */
KVZ_API kvz_status kvz_cache_attend(const kvz_cache *cache, size_t layer, const kvz_attend_args *args);

/**
 * Starts a query over a cache: the cache becomes read-only for as long as the query exists
 * and is never copied or modified by it; any number of queries may share it, each used by
 * one thread at a time. @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_NOMEM. @since 0.1
 */
KVZ_API kvz_status kvz_query_create(const kvz_cache *cache, kvz_query **query);

/** Frees a query (NULL is a no-op). @since 0.1 */
KVZ_API void kvz_query_destroy(kvz_query *query);

/** Appends tokens to the query's private tail of one layer, as kvz_cache_append. @since 0.1 */
KVZ_API kvz_status kvz_query_append(kvz_query *query, size_t layer, size_t n_tokens, const float *k,
                                    const float *v, ptrdiff_t token_stride, ptrdiff_t head_stride);

/** Attention over the shared segment followed by the private tail; the queries' own keys
 *  are the last n_q rows of the tail. As kvz_cache_attend, without scoring or accumulated
 *  attention (KVZ_ERR_INVALID_ARG). @since 0.1 */
KVZ_API kvz_status kvz_query_attend(kvz_query *query, size_t layer, const kvz_attend_args *args);

/** Position of the next token of a layer: the cache's, plus the tail. @since 0.1 */
KVZ_API kvz_status kvz_query_next_position(const kvz_query *query, size_t layer, int64_t *position);

/** The shape of the cache a query reads, which its appends take too (kvz_cache_shape).
 *  @return KVZ_OK, KVZ_ERR_NULL (query). Thread-safe (reads only). @since 0.1 */
KVZ_API kvz_status kvz_query_shape(const kvz_query *query, size_t *n_layers, size_t *n_kv_heads,
                                   size_t *head_dim, kvz_dtype *dtype);

/** Drops the private tail, ready for the next question. @since 0.1 */
KVZ_API kvz_status kvz_query_reset(kvz_query *query);
/** @} */

/** @name Selection policies
 *  Every policy turns per-(layer, KV head) scores of the context tokens into keep masks
 *  (doc/policies.md gives each rule and its source). The budget counts kept context
 *  tokens, protected ones included: `budget` tokens per (layer, head) when non-zero, else
 *  floor(ratio x context tokens) (ratio is the KEPT fraction). Protected tokens (the first
 *  `sinks` and the last `recent` context tokens of every head) are always kept; the system
 *  prompt and appended tokens are outside the context and not the policy's business.
 *  @{ */

/** The policies. @since 0.1 */
typedef enum kvz_policy {
    KVZ_POLICY_FULL = 0,       /**< keep everything */
    KVZ_POLICY_KVZIP_PAIR = 1, /**< one global threshold over all layers, heads and tokens (KVzip default) */
    KVZ_POLICY_KVZIP_PAIR_UNIFORM = 2, /**< the same budget in every (layer, head): per-head top-k */
    KVZ_POLICY_KVZIP_HEAD = 3,         /**< head scores broadcast to tokens, global threshold: whole heads */
    KVZ_POLICY_FASTKV = 4,             /**< per KV head top-(B - W) of the window score plus the window */
    KVZ_POLICY_SNAPKV = 5,             /**< as FastKV, on SnapKV's scores (same budget in every layer) */
    KVZ_POLICY_PYRAMIDKV = 6,          /**< SnapKV with layer budgets decreasing linearly with depth */
    KVZ_POLICY_ADAKV = 7,              /**< per layer: heads share H x (B - W) by score, with a safeguard */
    KVZ_POLICY_H2O = 8,                /**< per head top-(B - W) of accumulated attention plus the window */
    KVZ_POLICY_STREAMING = 9,          /**< StreamingLLM: the first `sinks` and the most recent tokens */
    KVZ_POLICY_RANDOM = 10             /**< a seeded random subset of the budget per head */
} kvz_policy;

/** Inputs of kvz_policy_select. @since 0.1 */
typedef struct kvz_policy_args {
    size_t struct_size; /**< sizeof(kvz_policy_args) */
    kvz_policy policy;
    size_t n_layers, n_kv_heads;
    size_t n_tokens;            /**< context tokens of every (layer, head) */
    const float *const *scores; /**< [layer*n_kv_heads + head] -> n_tokens scores (not needed by FULL,
                                     STREAMING, RANDOM, KVZIP_HEAD) */
    const float *head_scores;   /**< KVZIP_HEAD: n_layers*n_kv_heads head scores */
    double ratio;               /**< kept fraction of the context, when budget is 0 */
    size_t budget;              /**< kept context tokens per (layer, head); 0: use ratio */
    kvz_select_mode mode;       /**< KVZIP_PAIR / KVZIP_HEAD: strict reference rule or exact count */
    size_t sinks, recent; /**< protected first / last context tokens of every head (FastKV's W is `recent`) */
    double adakv_alpha;   /**< ADAKV safeguard fraction (0: the reference 0.2) */
    double pyramid_beta;  /**< PYRAMIDKV beta (0: the reference 20) */
    uint64_t seed;        /**< RANDOM */
} kvz_policy_args;

/**
 * Writes keep[layer*n_kv_heads + head][t] (1 keep, 0 evict) for the n_tokens context tokens.
 * @param n_kept optional: kept context tokens over all heads.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (unknown policy, NaN scores, ratio < 0),
 *         KVZ_ERR_NOMEM. @since 0.1
 */
KVZ_API kvz_status kvz_policy_select(const kvz_policy_args *args, uint8_t *const *keep, size_t *n_kept);

/** Lower-case name of a policy ("kvzip-pair", "fastkv", ...), or "unknown". @since 0.1 */
KVZ_API const char *kvz_policy_name(kvz_policy policy);
/** @} */

/** @name KVzip in a host (doc/api.md, "KVzip in a host")
 *  A host that runs its own model scores a context as KVzip does (spec/kvzip.md §1): it
 *  prefills [system | context] into a cache, then runs every reconstruction pass that
 *  kvz_kvzip_pass describes through its own layers, each layer appending the pass's K/V
 *  and calling kvz_cache_attend with the pass's scoring fields, and drops the pass's rows
 *  again (kvz_cache_truncate(cache, n_ids)); kvz_kvzip_check_cache before each pass refuses a
 *  cache that no longer holds exactly [system | context]. kvz_kvzip_compress then selects
 *  with any policy and compacts. The library's own runner does the same through these calls.
 *  @{ */

/** The reference chunk length and quoted-token count (spec/kvzip.md §1.3). @since 0.1 */
#define KVZ_KVZIP_CHUNK       2000
#define KVZ_KVZIP_PREV_TOKENS 8

/** The context and the prompt pieces of the passes, as token ids, each piece tokenized on its
 *  own without special tokens. @since 0.1 */
typedef struct kvz_kvzip_plan {
    size_t struct_size;          /**< sizeof(kvz_kvzip_plan) */
    size_t n_sys;                /**< system-prompt rows before the context (always kept) */
    size_t n_ctx;                /**< context tokens, > 0 */
    const int32_t *ctx;          /**< the context's n_ctx ids */
    const int32_t *repeat_first; /**< "\n\nRepeat the previous context exactly." */
    size_t n_repeat_first;
    const int32_t *repeat_next; /**< "\n\nRepeat the part of the previous context exactly, starting with " */
    size_t n_repeat_next;
    const int32_t *postfix; /**< the chat template's switch to the assistant turn */
    size_t n_postfix;
    size_t chunk;       /**< context tokens per pass, > 0 (reference: KVZ_KVZIP_CHUNK) */
    size_t prev_tokens; /**< previous chunk's last ids quoted by later passes (reference:
                             KVZ_KVZIP_PREV_TOKENS; at most `chunk` are quoted) */
} kvz_kvzip_plan;

/** One reconstruction pass, as kvz_kvzip_pass describes it. @since 0.1 */
typedef struct kvz_kvzip_pass_info {
    size_t struct_size; /**< sizeof(kvz_kvzip_pass_info), set by the caller */
    size_t n_ids;       /**< the pass's tokens */
    int64_t position;   /**< position of its first token, n_sys + n_ctx for every pass */
    /** kvz_attend_args' scoring fields: the sink is rows [0, sink_end), the pass scores cache rows
     *  [chunk_begin, chunk_end); its scores go to column chunk_begin - n_sys of the
     *  [layer][kv_head][n_ctx] score array that kvz_kvzip_compress reads. */
    size_t sink_end, chunk_begin, chunk_end;
} kvz_kvzip_pass_info;

/**
 * How many passes the plan takes, and the most ids one of them holds (the rows a cache must
 * have room for beyond the context: kvz_cache_reserve).
 * @return KVZ_OK, KVZ_ERR_NULL (plan, n_passes, a piece with a length but no ids),
 *         KVZ_ERR_INVALID_ARG (n_ctx or chunk 0, a size that overflows). Thread-safe. @since 0.1
 */
KVZ_API kvz_status kvz_kvzip_passes(const kvz_kvzip_plan *plan, size_t *n_passes, size_t *max_ids);

/**
 * Pass t (0-based) of the plan: its ids into ids[0..n_ids) (official `self_task`):
 * repeat_first ++ postfix ++ chunk 0 for t = 0; repeat_next ++ the last min(prev_tokens,
 * chunk) ids of chunk t-1 ++ postfix ++ chunk t after. Chunk t is ctx[t*chunk ..], chunk
 * tokens or what is left. pass->n_ids is set also when ids_cap is too small.
 * @param ids NULL to learn n_ids only.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (t past the last pass, ids_cap < n_ids,
 *         the plan's own errors). Thread-safe. @since 0.1
 */
KVZ_API kvz_status kvz_kvzip_pass(const kvz_kvzip_plan *plan, size_t t, int32_t *ids, size_t ids_cap,
                                  kvz_kvzip_pass_info *pass);

/**
 * The guard of kvpress issue #147: a pass must see the whole prefilled cache. KVZ_OK when
 * every global layer's segments hold exactly n_sys + n_ctx rows and every layer's next
 * position is n_sys + n_ctx (a sliding-window layer holds its window of them).
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_STATE (with the layer and head that differ).
 *         Thread-safe (reads only). @since 0.1
 */
KVZ_API kvz_status kvz_kvzip_check_cache(const kvz_cache *cache, size_t n_sys, size_t n_ctx);

/**
 * Selects and compacts the context rows of a cache holding [system | context] (rows before
 * n_sys and from n_sys + n_ctx on stay). scores: [layer][kv_head][n_ctx] floats, the passes'
 * max-folded probabilities (start from zeros), NULL for policies that need none. The policy
 * (kvz_policy_select) sees the global layers only, in order, with n_ctx tokens: its
 * n_layers, n_kv_heads, n_tokens and scores are filled in here, and head_scores
 * (KVZIP_HEAD) is read as [layer][kv_head] over all layers. Sliding-window layers keep
 * their rows.
 * @param n_kept optional: kept context rows over all global heads.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (the policy's), KVZ_ERR_STATE (a
 *         segment with fewer than n_sys + n_ctx rows, queries exist), KVZ_ERR_NOMEM; on failure the
 *         cache is unchanged. @since 0.1
 */
KVZ_API kvz_status kvz_kvzip_compress(kvz_cache *cache, size_t n_sys, size_t n_ctx, const float *scores,
                                      const kvz_policy_args *policy, size_t *n_kept);
/** @} */

/** @name FastKV in a host (doc/api.md, "FastKV in a host")
 *  A host that prefills with FastKV (spec/fastkv.md §2) runs each layer on its tokens, computes
 *  the layer's window scores with kvz_window_score (its last `window` queries against the
 *  layer's keys), compresses the layer with kvz_fastkv_compress_layer, and at the TSP layer
 *  carries on with the hidden states of the tokens kvz_fastkv_propagate names, appending them
 *  to deeper layers at their original positions (kvz_cache_append_at).
 *  @{ */

/**
 * Token-selective propagation (§2.4): from the window scores of one layer's KV heads over n
 * tokens, the last `window` of which are the window (head h's n - window scores at scores +
 * h*head_stride, as kvz_window_score writes them), the n_keep tokens whose hidden states go on:
 * the window, and the top (n_keep - window) of the heads' summed scores (ties: the lower index).
 * idx receives n_keep indices, ascending.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (no heads, window >= n_keep, n_keep > n,
 *         n >= 2^32, NaN scores), KVZ_ERR_NOMEM. Thread-safe. @since 0.1
 */
KVZ_API kvz_status kvz_fastkv_propagate(const float *scores, size_t n_kv_heads, ptrdiff_t head_stride, size_t n,
                                        size_t window, size_t n_keep, uint32_t *idx);

/**
 * FastKV's per-KV-head compression of one layer (§2.3): every segment of the layer holds the
 * same n rows (the layer's own tokens); head h keeps the window (its last `window` rows) and the
 * top (budget - window) of its window scores, the n - window floats at scores + h*head_stride
 * that kvz_window_score writes (ties: the lower index). budget >= n keeps every row. Other
 * layers are not touched.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (layer, a sliding-window layer, budget <=
 *         window), KVZ_ERR_STATE (the layer's heads differ in length, queries exist),
 *         KVZ_ERR_NOMEM; on failure the cache is unchanged. @since 0.1
 */
KVZ_API kvz_status kvz_fastkv_compress_layer(kvz_cache *cache, size_t layer, const float *scores,
                                             ptrdiff_t head_stride, size_t budget, size_t window);
/** @} */

/** @name NUMA placement
 *  A pure planner: from a description of the machine's nodes to a node for every cache
 *  segment, balanced by bytes in proportion to each node's CPUs, within each node's free
 *  memory. Threads [first_thread[i], first_thread[i] + cpus[i]) work on node i's segments.
 *  @{ */

/** The NUMA nodes the planner places segments on. @since 0.1 */
typedef struct kvz_numa_topology {
    size_t struct_size; /**< sizeof(kvz_numa_topology) */
    size_t n_nodes;
    const size_t *cpus;         /**< CPUs (worker threads) per node, each > 0 */
    const uint64_t *free_bytes; /**< free memory per node; NULL: unlimited */
} kvz_numa_topology;

/**
 * Places n_segments segments of segment_bytes[s] bytes: node_of[s] receives the node.
 * Largest segments first, each to the node whose bytes per CPU stay lowest and where it
 * fits (ties: the lower node). node_bytes (optional, n_nodes) receives each node's total
 * and first_thread (optional, n_nodes) the first thread of each node.
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (no nodes, a node without CPUs),
 *         KVZ_ERR_NOMEM (the segments do not fit the free memory). Thread-safe. @since 0.1
 */
KVZ_API kvz_status kvz_numa_plan(const kvz_numa_topology *topology, size_t n_segments,
                                 const uint64_t *segment_bytes, int *node_of, uint64_t *node_bytes,
                                 size_t *first_thread);
/** @} */

/** @name Cache files (.kvz, doc/kvz-format.md)
 *  @{ */

/** What a .kvz file says about where its cache came from. @since 0.1 */
typedef struct kvz_cache_meta {
    size_t struct_size;            /**< sizeof(kvz_cache_meta) */
    uint8_t model_fingerprint[32]; /**< opaque identity of the model (e.g. a hash of its weights) */
    char policy[32];               /**< selection policy name, NUL-terminated */
    double ratio;                  /**< the requested kept ratio */
} kvz_cache_meta;

/**
 * Writes a cache to path atomically: a temporary file in the same directory, fsync, rename,
 * fsync of the directory. On failure nothing is left at path (an earlier file stays as it
 * was) and no temporary file remains; only a failed fsync of the directory comes after the
 * rename: the new file is then in place, complete, but KVZ_ERR_IO warns that a crash may
 * undo the rename. The file gets the mode fopen would give it (0666 less the umask).
 * A sliding-window layer is saved with its window and
 * only its last `window` rows, those later tokens can still see (doc/kvz-format.md).
 * @param meta may be NULL (zero fingerprint, empty policy, ratio 0).
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_IO (with errno text in kvz_last_error), KVZ_ERR_STATE,
 *         KVZ_ERR_NOMEM. @since 0.1
 */
KVZ_API kvz_status kvz_cache_save(const kvz_cache *cache, const char *path, const kvz_cache_meta *meta);

/**
 * Reads a cache written by kvz_cache_save. Every section is checked (bounds, sizes, CRC32C)
 * before the cache is handed out; on any failure *cache is NULL and nothing leaks. Files of
 * format version 1, which predate sliding windows, load with every layer global.
 * @param expect_fingerprint when not NULL, the 32-byte model fingerprint the file must carry.
 * @param meta when not NULL, receives the file's metadata (set its struct_size).
 * @return KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_IO, KVZ_ERR_FORMAT (not a .kvz file), KVZ_ERR_VERSION,
 *         KVZ_ERR_TRUNCATED, KVZ_ERR_CORRUPT (checksum or inconsistent sizes), KVZ_ERR_MISMATCH
 *         (another model), KVZ_ERR_NOMEM. @since 0.1
 */
KVZ_API kvz_status kvz_cache_load(const char *path, const uint8_t *expect_fingerprint, kvz_cache **cache,
                                  kvz_cache_meta *meta);
/** @} */

#ifdef __cplusplus
}
#endif

#endif
