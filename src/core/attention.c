/*
 * The attention entry points of the public API: argument checks, OpenMP work split (heads x
 * query slices for prefill, heads x key slices with a log-sum-exp merge for decode) and
 * per-thread scratch. The arithmetic is in the kernels.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static size_t dtype_size(kvz_dtype dt) { return dt == KVZ_DTYPE_F32 ? 4 : 2; }

static int dtype_ok(kvz_dtype dt) { return dt == KVZ_DTYPE_F32 || dt == KVZ_DTYPE_BF16 || dt == KVZ_DTYPE_F16; }

static float default_scale(float scale, size_t d) { return scale != 0.0f ? scale : 1.0f / sqrtf((float)d); }

static int threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static kvz_status check_shape(const char *fn, size_t heads, size_t group, size_t d)
{
    if (heads == 0 || group == 0)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: n_kv_heads and group must be > 0", fn);
    if (d == 0 || d > KVZ_KMAX_HEAD_DIM)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: head_dim %zu is outside 1..%d", fn, d, KVZ_KMAX_HEAD_DIM);
    return KVZ_OK;
}

/* ---- prefill / scoring -------------------------------------------------------------- */

kvz_status kvz_attn_prefill(const kvz_attn_args *a)
{
    static const char fn[] = "kvz_attn_prefill";
    if (!a)
        return kvz_fail(KVZ_ERR_NULL, "%s: args is NULL", fn);
    if (a->struct_size < sizeof(kvz_attn_args))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: struct_size %zu < %zu (set it to sizeof(kvz_attn_args))", fn,
                        a->struct_size, sizeof(kvz_attn_args));
    kvz_status st = check_shape(fn, a->n_kv_heads, a->group, a->head_dim);
    if (st != KVZ_OK)
        return st;
    if (!dtype_ok(a->kv_dtype))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: unknown kv_dtype %d", fn, (int)a->kv_dtype);
    if (a->n_q == 0)
        return KVZ_OK;
    if (!a->q || !a->out || (a->n_k > 0 && (!a->k || !a->v)))
        return kvz_fail(KVZ_ERR_NULL, "%s: q, k, v and out must not be NULL", fn);
    if (a->score) {
        if (!(a->sink_end <= a->chunk_begin && a->chunk_begin <= a->chunk_end && a->q_pos0 >= 0 &&
              a->chunk_end <= (size_t)a->q_pos0 && (size_t)a->q_pos0 + a->n_q <= a->n_k))
            return kvz_fail(KVZ_ERR_INVALID_ARG,
                            "%s: scoring needs sink_end <= chunk_begin <= chunk_end <= q_pos0 and q_pos0 + n_q "
                            "<= n_k (got %zu, %zu, %zu, %td, n_q %zu, n_k %zu)",
                            fn, a->sink_end, a->chunk_begin, a->chunk_end, a->q_pos0, a->n_q, a->n_k);
    }
    const kvz_kernel_table *kt = kvz_kernels();
    const size_t H = a->n_kv_heads, G = a->group, d = a->head_dim;
    const size_t chunk = a->score ? a->chunk_end - a->chunk_begin : 0;
    const float scale = default_scale(a->scale, d);

    /* Query slices: whole blocks of KVZ_KBLOCK_Q rows, enough slices to feed every thread. */
    const size_t tok_per_block = (KVZ_KBLOCK_Q + G - 1) / G;
    const size_t nthr = (size_t)threads();
    size_t slices = (4 * nthr + H - 1) / H;
    const size_t max_slices = (a->n_q + tok_per_block - 1) / tok_per_block;
    if (slices > max_slices)
        slices = max_slices;
    if (slices == 0)
        slices = 1;
    size_t slice_tok = (a->n_q + slices - 1) / slices;
    slice_tok = (slice_tok + tok_per_block - 1) / tok_per_block * tok_per_block;
    slices = (a->n_q + slice_tok - 1) / slice_tok;
    const size_t tasks = H * slices;

    /* Scoring with several slices of one head: private score rows, max-merged after. */
    float *priv = NULL;
    if (a->score && slices > 1) {
        size_t n;
        if (!kvz_mul_ok(tasks, chunk, &n) || !(priv = calloc(n ? n : 1, sizeof(float))))
            return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory for %zu score rows", fn, tasks);
    }
    const size_t wfloats = kvz_attn_work_floats(d);
    int nomem = 0;
    const size_t esz = dtype_size(a->kv_dtype);

#pragma omp parallel
    {
        float *work = kvz_thread_scratch(wfloats);
        if (!work) {
#pragma omp atomic write
            nomem = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t t = 0; t < tasks; t++) {
            if (!work)
                continue;
            /* later slices see more keys: hand them out first */
            const size_t h = t % H, s = slices - 1 - t / H;
            const size_t i0 = s * slice_tok, nq = a->n_q - i0 < slice_tok ? a->n_q - i0 : slice_tok;
            kvz_attn_job j = {0};
            j.q = a->q + (ptrdiff_t)i0 * a->q_token_stride + (ptrdiff_t)(h * G) * a->q_head_stride;
            j.q_head_stride = a->q_head_stride;
            j.q_row_stride = a->q_token_stride;
            j.k = (const char *)a->k + (ptrdiff_t)h * a->kv_head_stride * (ptrdiff_t)esz;
            j.v = (const char *)a->v + (ptrdiff_t)h * a->kv_head_stride * (ptrdiff_t)esz;
            j.kv_row_stride = a->kv_row_stride;
            j.dtype = (int)a->kv_dtype;
            j.n_q = nq;
            j.n_k = a->n_k;
            j.d = d;
            j.group = G;
            j.q_pos0 = a->q_pos0 + (ptrdiff_t)i0;
            j.scale = scale;
            j.out = a->out + (ptrdiff_t)i0 * a->out_token_stride + (ptrdiff_t)(h * G) * a->out_head_stride;
            j.out_head_stride = a->out_head_stride;
            j.out_row_stride = a->out_token_stride;
            if (a->score) {
                j.score = priv ? priv + t * chunk : a->score + (ptrdiff_t)h * a->score_head_stride;
                j.sink_end = a->sink_end;
                j.chunk_begin = a->chunk_begin;
                j.chunk_end = a->chunk_end;
                j.own_begin = (size_t)a->q_pos0; /* the whole repeat input, not this slice */
            }
            j.work = work;
            if (a->lse) {
                /* the kernel writes lse[g*n_q_slice + i], the API wants [qh][i] over all n_q:
                 * run the slice one query head at a time */
                for (size_t g = 0; g < G; g++) {
                    kvz_attn_job jg = j;
                    jg.group = 1;
                    jg.q = j.q + (ptrdiff_t)g * a->q_head_stride;
                    jg.out = j.out + (ptrdiff_t)g * a->out_head_stride;
                    jg.lse = a->lse + (h * G + g) * a->n_q + i0;
                    kt->attn(&jg);
                }
            } else {
                kt->attn(&j);
            }
        }
    }
    if (nomem) {
        free(priv);
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory for thread scratch", fn);
    }
    if (priv) {
        for (size_t t = 0; t < tasks; t++) {
            float *dst = a->score + (ptrdiff_t)(t % H) * a->score_head_stride;
            const float *src = priv + t * chunk;
            for (size_t x = 0; x < chunk; x++)
                if (src[x] > dst[x])
                    dst[x] = src[x];
        }
        free(priv);
    }
    return KVZ_OK;
}

/* ---- decode over variable-length heads ---------------------------------------------- */

kvz_status kvz_attn_decode_varlen(const kvz_varlen_args *a)
{
    static const char fn[] = "kvz_attn_decode_varlen";
    if (!a)
        return kvz_fail(KVZ_ERR_NULL, "%s: args is NULL", fn);
    if (a->struct_size < sizeof(kvz_varlen_args))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: struct_size %zu < %zu", fn, a->struct_size,
                        sizeof(kvz_varlen_args));
    kvz_status st = check_shape(fn, a->n_kv_heads, a->group, a->head_dim);
    if (st != KVZ_OK)
        return st;
    if (!dtype_ok(a->kv_dtype))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: unknown kv_dtype %d", fn, (int)a->kv_dtype);
    if (!a->q || !a->out || !a->cu_len)
        return kvz_fail(KVZ_ERR_NULL, "%s: q, out and cu_len must not be NULL", fn);
    if (a->q_len == 0)
        return KVZ_OK;
    const size_t H = a->n_kv_heads, G = a->group, d = a->head_dim, ql = a->q_len;
    if (a->cu_len[0] != 0)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: cu_len[0] is %d, not 0", fn, (int)a->cu_len[0]);
    for (size_t h = 0; h < H; h++)
        if (a->cu_len[h + 1] < a->cu_len[h])
            return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: cu_len decreases at head %zu (%d < %d)", fn, h + 1,
                            (int)a->cu_len[h + 1], (int)a->cu_len[h]);
    if (a->cu_len[H] > 0 && (!a->k || !a->v))
        return kvz_fail(KVZ_ERR_NULL, "%s: k and v must not be NULL", fn);
    if (a->kv_row_stride < (ptrdiff_t)d)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: kv_row_stride %td < head_dim %zu", fn, a->kv_row_stride, d);

    const kvz_kernel_table *kt = kvz_kernels();
    const float scale = default_scale(a->scale, d);
    const size_t rows = ql * G, esz = dtype_size(a->kv_dtype);
    const size_t total = (size_t)a->cu_len[H];
    /* Key slices: about four per thread over all heads, at least 256 keys each. */
    const size_t nthr = (size_t)threads();
    size_t slice = total / (4 * nthr) + 1;
    if (slice < 256)
        slice = 256;
    size_t *first = malloc((H + 1) * sizeof *first);
    if (!first)
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", fn);
    first[0] = 0;
    for (size_t h = 0; h < H; h++) {
        const size_t len = (size_t)(a->cu_len[h + 1] - a->cu_len[h]);
        first[h + 1] = first[h] + (len + slice - 1) / slice + (len == 0);
    }
    const size_t tasks = first[H];
    float *po = NULL, *pl = NULL;
    size_t n_po;
    if (kvz_mul_ok(tasks, rows * d, &n_po))
        po = malloc(n_po * sizeof(float));
    pl = malloc(tasks * rows * sizeof(float));
    if (!po || !pl) {
        free(po), free(pl), free(first);
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory for %zu partial results", fn, tasks);
    }
    const size_t wfloats = kvz_attn_work_floats(d);
    int nomem = 0;

#pragma omp parallel
    {
        float *work = kvz_thread_scratch(wfloats);
        if (!work) {
#pragma omp atomic write
            nomem = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t t = 0; t < tasks; t++) {
            if (!work)
                continue;
            size_t h = 0;
            while (first[h + 1] <= t)
                h++;
            const size_t len = (size_t)(a->cu_len[h + 1] - a->cu_len[h]);
            const size_t k0 = (t - first[h]) * slice, k1 = k0 + slice < len ? k0 + slice : len;
            kvz_attn_job j = {0};
            j.q = a->q + h * rows * d;
            j.q_head_stride = (ptrdiff_t)d;
            j.q_row_stride = (ptrdiff_t)(G * d);
            const ptrdiff_t off = ((ptrdiff_t)a->cu_len[h] + (ptrdiff_t)k0) * a->kv_row_stride * (ptrdiff_t)esz;
            j.k = a->k ? (const char *)a->k + off : NULL;
            j.v = a->v ? (const char *)a->v + off : NULL;
            j.kv_row_stride = a->kv_row_stride;
            j.dtype = (int)a->kv_dtype;
            j.n_q = ql;
            j.n_k = k1 - k0;
            j.d = d;
            j.group = G;
            j.q_pos0 = (ptrdiff_t)len - (ptrdiff_t)ql - (ptrdiff_t)k0;
            j.scale = scale;
            j.out = po + t * rows * d;
            j.out_head_stride = (ptrdiff_t)d;
            j.out_row_stride = (ptrdiff_t)(G * d);
            j.lse = pl + t * rows; /* [g][i] */
            j.work = work;
            kt->attn(&j);
        }
    }
    if (nomem) {
        free(po), free(pl), free(first);
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory for thread scratch", fn);
    }

    /* Merge the key slices of each head: out = sum_p exp(lse_p - lse) o_p. */
    for (size_t h = 0; h < H; h++)
        for (size_t i = 0; i < ql; i++)
            for (size_t g = 0; g < G; g++) {
                const size_t r = i * G + g; /* row in the [t][g] layout of out and po */
                float mx = -INFINITY;
                for (size_t t = first[h]; t < first[h + 1]; t++)
                    if (pl[t * rows + g * ql + i] > mx)
                        mx = pl[t * rows + g * ql + i];
                float *dst = a->out + (h * rows + r) * d;
                memset(dst, 0, d * sizeof(float));
                if (mx == -INFINITY)
                    continue;
                float wsum = 0.0f;
                for (size_t t = first[h]; t < first[h + 1]; t++)
                    wsum += expf(pl[t * rows + g * ql + i] - mx);
                for (size_t t = first[h]; t < first[h + 1]; t++) {
                    const float w = expf(pl[t * rows + g * ql + i] - mx) / wsum;
                    if (w == 0.0f)
                        continue;
                    const float *src = po + t * rows * d + r * d;
                    for (size_t x = 0; x < d; x++)
                        dst[x] += w * src[x];
                }
            }
    free(po), free(pl), free(first);
    return KVZ_OK;
}

/* ---- FastKV window score ------------------------------------------------------------- */

kvz_status kvz_window_score(const kvz_window_args *a)
{
    static const char fn[] = "kvz_window_score";
    if (!a)
        return kvz_fail(KVZ_ERR_NULL, "%s: args is NULL", fn);
    if (a->struct_size < sizeof(kvz_window_args))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: struct_size %zu < %zu", fn, a->struct_size,
                        sizeof(kvz_window_args));
    kvz_status st = check_shape(fn, a->n_kv_heads, a->group, a->head_dim);
    if (st != KVZ_OK)
        return st;
    if (!dtype_ok(a->k_dtype))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: unknown k_dtype %d", fn, (int)a->k_dtype);
    if (a->window == 0 || a->window > a->n)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: window %zu must be in 1..n (n = %zu)", fn, a->window, a->n);
    if (a->kernel == 0 || a->kernel % 2 == 0)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: pooling kernel %zu must be odd", fn, a->kernel);
    if (a->pool != KVZ_POOL_AVG && a->pool != KVZ_POOL_MAX)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: unknown pooling %d", fn, (int)a->pool);
    if (!a->q || !a->k || !a->out)
        return kvz_fail(KVZ_ERR_NULL, "%s: q, k and out must not be NULL", fn);
    const kvz_kernel_table *kt = kvz_kernels();
    const size_t H = a->n_kv_heads, G = a->group, d = a->head_dim, esz = dtype_size(a->k_dtype);
    const size_t wfloats = kvz_window_work_floats(a->n, d);
    int nomem = 0;

#pragma omp parallel
    {
        float *work = NULL;
#pragma omp for schedule(dynamic, 1)
        for (size_t h = 0; h < H; h++) {
            if (!work && !(work = kvz_thread_scratch(wfloats))) {
#pragma omp atomic write
                nomem = 1;
                continue;
            }
            kvz_window_job j = {0};
            j.q = a->q + (ptrdiff_t)(h * G) * a->q_head_stride;
            j.q_head_stride = a->q_head_stride;
            j.q_row_stride = a->q_token_stride;
            j.k = (const char *)a->k + (ptrdiff_t)h * a->k_head_stride * (ptrdiff_t)esz;
            j.k_row_stride = a->k_row_stride;
            j.dtype = (int)a->k_dtype;
            j.n = a->n;
            j.d = d;
            j.group = G;
            j.window = a->window;
            j.kernel = a->kernel;
            j.pool = a->pool == KVZ_POOL_MAX ? KVZ_KPOOL_MAX : KVZ_KPOOL_AVG;
            j.scale = default_scale(a->scale, d);
            j.out = a->out + (ptrdiff_t)h * a->out_head_stride;
            j.work = work;
            kt->window_score(&j);
        }
    }
    if (nomem)
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory for thread scratch", fn);
    return KVZ_OK;
}
