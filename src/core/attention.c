/*
 * The attention entry points of the public API on plain buffers: argument checks and one
 * kernel job per KV head; attn_runner.c splits the jobs across threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/pool.h"

static size_t dtype_size(kvz_dtype dt) { return dt == KVZ_DTYPE_F32 ? 4 : 2; }

static int dtype_ok(kvz_dtype dt) { return dt == KVZ_DTYPE_F32 || dt == KVZ_DTYPE_BF16 || dt == KVZ_DTYPE_F16; }

static float default_scale(float scale, size_t d) { return scale != 0.0f ? scale : 1.0f / sqrtf((float)d); }

static kvz_status check_shape(const char *fn, size_t heads, size_t group, size_t d)
{
    if (heads == 0 || group == 0)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: n_kv_heads and group must be > 0", fn);
    if (d == 0 || d > KVZ_KMAX_HEAD_DIM)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "%s: head_dim %zu is outside 1..%d", fn, d, KVZ_KMAX_HEAD_DIM);
    return KVZ_OK;
}

/* ---- prefill / scoring -------------------------------------------------------------- */

kvz_status kvz_attn_prefill(const kvz_attn_args *given)
{
    static const char fn[] = "kvz_attn_prefill";
    if (!given)
        return kvz_fail(KVZ_ERR_NULL, "%s: args is NULL", fn);
    kvz_attn_args args;
    /* the 0.1 layout ended with chunk_end (accum came after it: a shorter struct means NULL) */
    kvz_status st =
        kvz_struct_in(fn, "kvz_attn_args", given, KVZ_SIZE_0_1(kvz_attn_args, chunk_end), &args, sizeof args);
    if (st != KVZ_OK)
        return st;
    const kvz_attn_args *a = &args;
    st = check_shape(fn, a->n_kv_heads, a->group, a->head_dim);
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
    const size_t H = a->n_kv_heads, G = a->group, esz = dtype_size(a->kv_dtype);
    kvz_attn_job *jobs = calloc(H, sizeof *jobs);
    if (!jobs)
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", fn);
    for (size_t h = 0; h < H; h++) {
        kvz_attn_job *j = &jobs[h];
        j->q = a->q + (ptrdiff_t)(h * G) * a->q_head_stride;
        j->q_head_stride = a->q_head_stride;
        j->q_row_stride = a->q_token_stride;
        j->k = a->k ? (const char *)a->k + (ptrdiff_t)h * a->kv_head_stride * (ptrdiff_t)esz : NULL;
        j->v = a->v ? (const char *)a->v + (ptrdiff_t)h * a->kv_head_stride * (ptrdiff_t)esz : NULL;
        j->kv_row_stride = a->kv_row_stride;
        j->dtype = (int)a->kv_dtype;
        j->n_q = a->n_q;
        j->n_k = a->n_k;
        j->d = a->head_dim;
        j->group = G;
        j->q_pos0 = a->q_pos0;
        j->scale = default_scale(a->scale, a->head_dim);
        j->out = a->out + (ptrdiff_t)(h * G) * a->out_head_stride;
        j->out_head_stride = a->out_head_stride;
        j->out_row_stride = a->out_token_stride;
        j->lse = a->lse ? a->lse + h * G * a->n_q : NULL; /* [query head][i] = [g][i] per head */
        if (a->score) {
            j->score = a->score + (ptrdiff_t)h * a->score_head_stride;
            j->sink_end = a->sink_end;
            j->chunk_begin = a->chunk_begin;
            j->chunk_end = a->chunk_end;
            j->own_begin = (size_t)a->q_pos0; /* the repeat input's keys start at its first query */
        }
        if (a->accum)
            j->accum = a->accum + (ptrdiff_t)h * a->accum_head_stride;
    }
    st = kvz_attn_run(jobs, H);
    free(jobs);
    return st;
}

/* ---- decode over variable-length heads ---------------------------------------------- */

kvz_status kvz_attn_decode_varlen(const kvz_varlen_args *given)
{
    static const char fn[] = "kvz_attn_decode_varlen";
    if (!given)
        return kvz_fail(KVZ_ERR_NULL, "%s: args is NULL", fn);
    kvz_varlen_args args;
    kvz_status st =
        kvz_struct_in(fn, "kvz_varlen_args", given, KVZ_SIZE_0_1(kvz_varlen_args, out), &args, sizeof args);
    if (st != KVZ_OK)
        return st;
    const kvz_varlen_args *a = &args;
    st = check_shape(fn, a->n_kv_heads, a->group, a->head_dim);
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

    kvz_attn_job *jobs = calloc(H, sizeof *jobs);
    if (!jobs)
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", fn);
    const size_t esz = dtype_size(a->kv_dtype);
    for (size_t h = 0; h < H; h++) {
        const size_t len = (size_t)(a->cu_len[h + 1] - a->cu_len[h]);
        const ptrdiff_t off = (ptrdiff_t)a->cu_len[h] * a->kv_row_stride * (ptrdiff_t)esz;
        kvz_attn_job *j = &jobs[h];
        j->q = a->q + h * ql * G * d; /* [h][t][g][d] */
        j->q_head_stride = (ptrdiff_t)d;
        j->q_row_stride = (ptrdiff_t)(G * d);
        j->k = len ? (const char *)a->k + off : NULL;
        j->v = len ? (const char *)a->v + off : NULL;
        j->kv_row_stride = a->kv_row_stride;
        j->dtype = (int)a->kv_dtype;
        j->n_q = ql;
        j->n_k = len;
        j->d = d;
        j->group = G;
        j->q_pos0 = (ptrdiff_t)len - (ptrdiff_t)ql; /* bottom-right causal alignment */
        j->scale = default_scale(a->scale, d);
        j->out = a->out + h * ql * G * d;
        j->out_head_stride = (ptrdiff_t)d;
        j->out_row_stride = (ptrdiff_t)(G * d);
    }
    st = kvz_attn_run(jobs, H);
    free(jobs);
    return st;
}

/* ---- FastKV window score ------------------------------------------------------------- */

typedef struct window_run {
    const kvz_window_args *a;
    const kvz_kernel_table *kt;
    size_t wfloats;
    size_t next; /* the next KV head to score */
    int nomem;
} window_run;

/* A thread's share: one KV head at a time until none is left. */
static void window_body(void *ctx, unsigned slot, unsigned team)
{
    (void)slot, (void)team;
    window_run *r = ctx;
    const kvz_window_args *a = r->a;
    const size_t H = a->n_kv_heads, G = a->group, d = a->head_dim, esz = dtype_size(a->k_dtype);
    float *work = NULL;
    for (size_t h; (h = kvz_team_claim(&r->next, H)) < H;) {
        if (!work && !(work = kvz_thread_scratch(r->wfloats))) {
            __atomic_store_n(&r->nomem, 1, __ATOMIC_RELAXED);
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
        r->kt->window_score(&j);
    }
}

kvz_status kvz_window_score(const kvz_window_args *given)
{
    static const char fn[] = "kvz_window_score";
    if (!given)
        return kvz_fail(KVZ_ERR_NULL, "%s: args is NULL", fn);
    kvz_window_args args;
    kvz_status st = kvz_struct_in(fn, "kvz_window_args", given, KVZ_SIZE_0_1(kvz_window_args, out_head_stride),
                                  &args, sizeof args);
    if (st != KVZ_OK)
        return st;
    const kvz_window_args *a = &args;
    st = check_shape(fn, a->n_kv_heads, a->group, a->head_dim);
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
    if (a->window == a->n)
        return KVZ_OK; /* no key outside the window: nothing to score, nothing is read */
    window_run r = {a, kvz_kernels(), kvz_window_work_floats(a->n, a->head_dim), 0, 0};
    kvz_team_run(window_body, &r, (int)a->n_kv_heads);
    if (r.nomem)
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory for thread scratch", fn);
    return KVZ_OK;
}
