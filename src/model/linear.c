/* Linear layers through oneDNN matmul: primitives are built once per (shape, weight type,
 * rows) and reused by every layer of that shape. */
#include "model/linear.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

/* Below this many rows oneDNN's runtime-M gemm (one primitive for every m) beats its
 * fixed-shape brgemm, measured on Zen 4 for decode-sized products; above it the fixed
 * shape wins by ~1.5x, so those primitives are built per m and cached. */
#define SMALL_M 32
#define MAX_PRIMS 64

/* bf16 products of SMALL_M to TRANSPOSED_MAX_M rows run transposed: Y^T[out][m] = W[out][in]
 * . X^T, the weights as oneDNN's source and the activations as its weights operand, then
 * Y^T is transposed back. In the plain orientation oneDNN 2.6's bf16 brgemm is slow for
 * few rows. Measured on a Sapphire-Rapids-class VM (AMX), 2 threads, 4096 -> 14336, plain
 * against transposed (without the transposition back): 118 rows 55 ms against 14, 819 rows
 * 120 against 71, 1024 rows 96 against 90, 2048 rows 194 against 176, 4096 rows 377 against
 * 376. Transposing back 2048 x 14336 takes 30 ms, so from about 1024 rows on the plain
 * orientation is as fast or faster. */
#define TRANSPOSED_MAX_M 1024
static int transposed(kvz_dtype wtype, size_t m)
{
    return wtype == KVZ_DTYPE_BF16 && m >= SMALL_M && m < TRANSPOSED_MAX_M;
}

/* oneDNN 2.6's fixed-shape bf16 brgemm is fast for some row counts and 2 to 4x slower for
 * others, with no pattern we could name. On the Sapphire-Rapids-class VM, 4096 -> 4096: 9
 * of the 36 even counts from 1990 to 2060 (1996, 1998, 2006, 2008, 2028, 2030, 2042, 2050,
 * 2052) ran at 580 .. 860 GFLOP/s against 1200 .. 1580; 10 of the odd multiples of 32 from
 * 1024 to 4096 at 310 .. 940 (1696: 300); 4096 -> 14336 at 2030 rows 532 against ~1290.
 * Every multiple of 64 from 1024 to 4096 ran at 1200 .. 1490, in two sweeps. So a bf16
 * product in the plain orientation runs its rows in a multiple of ROW_ALIGN and the rest
 * (fewer than 64 rows) as a product of its own: that costs 0 .. 10 % where the whole count
 * was fast (a second read of the weights), and removes the 2 to 4x. Where the caller has
 * room for the rounded-up rows (kvz_linear_apply_padded), the product runs them all
 * instead, the extra ones on zero inputs: as fast as the multiple of 64 itself. */
#define ROW_ALIGN 64

size_t kvz_linear_rows(size_t m)
{
    const int round = m >= TRANSPOSED_MAX_M && m % ROW_ALIGN && m <= SIZE_MAX - ROW_ALIGN;
    return round ? m + ROW_ALIGN - m % ROW_ALIGN : m;
}

typedef struct prim_entry {
    size_t in, out, m; /* m == 0: runtime-M primitive */
    kvz_dtype wtype;
    dnnl_primitive_t prim;
    uint64_t used;
} prim_entry;

struct kvz_mm {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    prim_entry prims[MAX_PRIMS];
    size_t n_prims;
    uint64_t clock;
    void *xbuf; /* bf16 copy of the input rows */
    size_t xbuf_elems;
    void *ybuf; /* f32 Y^T of a transposed product */
    size_t ybuf_elems;
};

static kvz_status dnnl_fail(dnnl_status_t s, const char *what)
{
    return kvz_fail(s == dnnl_out_of_memory ? KVZ_ERR_NOMEM : KVZ_ERR_UNSUPPORTED, "oneDNN: %s failed (status %d)",
                    what, (int)s);
}

kvz_status kvz_mm_create(kvz_mm **out)
{
    if (!out)
        return kvz_fail(KVZ_ERR_NULL, "kvz_mm_create: NULL");
    kvz_mm *mm = calloc(1, sizeof *mm);
    if (!mm)
        return kvz_fail(KVZ_ERR_NOMEM, "kvz_mm_create: no memory");
    dnnl_status_t s = dnnl_engine_create(&mm->engine, dnnl_cpu, 0);
    if (s == dnnl_success)
        s = dnnl_stream_create(&mm->stream, mm->engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        kvz_mm_destroy(mm);
        return dnnl_fail(s, "engine/stream creation");
    }
    *out = mm;
    return KVZ_OK;
}

void kvz_mm_destroy(kvz_mm *mm)
{
    if (!mm)
        return;
    for (size_t i = 0; i < mm->n_prims; i++)
        dnnl_primitive_destroy(mm->prims[i].prim);
    if (mm->stream)
        dnnl_stream_destroy(mm->stream);
    if (mm->engine)
        dnnl_engine_destroy(mm->engine);
    free(mm->xbuf);
    free(mm->ybuf);
    free(mm);
}

static dnnl_data_type_t dt_of(kvz_dtype t) { return t == KVZ_DTYPE_BF16 ? dnnl_bf16 : dnnl_f32; }

/* The plain orientation: src [m][in] in the weight type, weights [in][out] stored transposed
 * ("ba"), dst [m][out] f32. Transposed: src W [out][in], weights X^T [in][m] (X stored
 * [m][in], so "ba"), dst Y^T [out][m] f32. */
static dnnl_status_t descs(size_t in, size_t out, dnnl_dim_t m, kvz_dtype wt, int tr, dnnl_memory_desc_t *src,
                           dnnl_memory_desc_t *wei, dnnl_memory_desc_t *dst)
{
    const dnnl_dim_t rows = tr ? (dnnl_dim_t)out : m, cols = tr ? m : (dnnl_dim_t)out;
    const dnnl_dims_t sd = {rows, (dnnl_dim_t)in}, wd = {(dnnl_dim_t)in, cols}, dd = {rows, cols};
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(src, 2, sd, dt_of(wt), dnnl_ab);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(wei, 2, wd, dt_of(wt), dnnl_ba);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(dst, 2, dd, dnnl_f32, dnnl_ab);
    return s;
}

/* A scratch buffer of at least `elems` elements of `size` bytes: *buf itself, or *buf grown. */
static void *reserve(void **buf, size_t *have, size_t elems, size_t size)
{
    if (elems > *have) {
        void *b = elems <= SIZE_MAX / size ? realloc(*buf, elems * size) : NULL;
        if (!b)
            return NULL;
        *buf = b, *have = elems;
    }
    return *buf;
}

/* y[i][j] = yt[j][i] (+ bias[j]): square blocks keep both sides' lines in L1. */
#define TBLOCK 32
static void transpose_back(size_t m, size_t n, const float *yt, const float *bias, float *y)
{
#pragma omp parallel for schedule(static) collapse(2) if (m * n > 65536)
    for (size_t j0 = 0; j0 < n; j0 += TBLOCK)
        for (size_t i0 = 0; i0 < m; i0 += TBLOCK) {
            const size_t j1 = j0 + TBLOCK < n ? j0 + TBLOCK : n, i1 = i0 + TBLOCK < m ? i0 + TBLOCK : m;
            for (size_t i = i0; i < i1; i++)
                for (size_t j = j0; j < j1; j++)
                    y[i * n + j] = yt[j * m + i] + (bias ? bias[j] : 0.0f);
        }
}

static kvz_status get_prim(kvz_mm *mm, const kvz_linear *l, size_t m, dnnl_primitive_t *out)
{
    const size_t key_m = m < SMALL_M ? 0 : m;
    mm->clock++;
    for (size_t i = 0; i < mm->n_prims; i++) {
        prim_entry *e = &mm->prims[i];
        if (e->in == l->in && e->out == l->out && e->m == key_m && e->wtype == l->wtype) {
            e->used = mm->clock;
            *out = e->prim;
            return KVZ_OK;
        }
    }
    dnnl_memory_desc_t src, wei, dst;
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_status_t s = descs(l->in, l->out, key_m ? (dnnl_dim_t)m : DNNL_RUNTIME_DIM_VAL, l->wtype,
                            transposed(l->wtype, m), &src, &wei, &dst);
    if (s == dnnl_success)
        s = dnnl_matmul_desc_init(&md, &src, &wei, NULL, &dst);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(&pd, &md, NULL, mm->engine, NULL);
    if (s == dnnl_success)
        s = dnnl_primitive_create(&prim, pd);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success)
        return dnnl_fail(s, "matmul primitive creation");
    size_t slot = mm->n_prims;
    if (slot == MAX_PRIMS) { /* full: replace the least recently used */
        slot = 0;
        for (size_t i = 1; i < MAX_PRIMS; i++)
            if (mm->prims[i].used < mm->prims[slot].used)
                slot = i;
        dnnl_primitive_destroy(mm->prims[slot].prim);
    } else {
        mm->n_prims++;
    }
    mm->prims[slot] = (prim_entry){l->in, l->out, key_m, l->wtype, prim, mm->clock};
    *out = prim;
    return KVZ_OK;
}

/* y[0 .. m) = x[0 .. m) W^T (+ b), the product run on `rows` >= m rows (rows > m: bf16
 * weights only, x's rows past m taken as zeros, y with room for `rows` rows). */
static kvz_status apply_rows(kvz_mm *mm, const kvz_linear *l, size_t m, size_t rows, const float *x, float *y)
{
    size_t elems, out_elems;
    if (!kvz_mul_ok(rows, l->in, &elems) || !kvz_mul_ok(rows, l->out, &out_elems))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_linear_apply: %zu rows of %zu -> %zu too large", rows, l->in,
                        l->out);
    const size_t in_elems = m * l->in;
    const int tr = transposed(l->wtype, rows); /* only below 1024 rows, where rows == m */
    dnnl_primitive_t prim = NULL;
    kvz_status st = get_prim(mm, l, rows, &prim);
    if (st != KVZ_OK)
        return st;
    const void *src = x;
    if (l->wtype == KVZ_DTYPE_BF16) { /* oneDNN's bf16 matmul wants bf16 activations too */
        uint16_t *xb = reserve(&mm->xbuf, &mm->xbuf_elems, elems, sizeof *xb);
        if (!xb)
            return kvz_fail(KVZ_ERR_NOMEM, "kvz_linear_apply: no memory for %zu activations", elems);
        kvz_convert(xb, KVZ_DTYPE_BF16, x, KVZ_DTYPE_F32, in_elems);
        memset(xb + in_elems, 0, (elems - in_elems) * sizeof *xb);
        src = xb;
    }
    float *dst = y;
    if (tr) {
        dst = reserve(&mm->ybuf, &mm->ybuf_elems, out_elems, sizeof *dst);
        if (!dst)
            return kvz_fail(KVZ_ERR_NOMEM, "kvz_linear_apply: no memory for %zu outputs", out_elems);
    }
    dnnl_memory_desc_t sd, wd, dd;
    dnnl_memory_t ms = NULL, mw = NULL, md = NULL;
    dnnl_status_t s = descs(l->in, l->out, (dnnl_dim_t)rows, l->wtype, tr, &sd, &wd, &dd);
    if (s == dnnl_success)
        s = dnnl_memory_create(&ms, &sd, mm->engine, tr ? (void *)l->w : (void *)src);
    if (s == dnnl_success)
        s = dnnl_memory_create(&mw, &wd, mm->engine, tr ? (void *)src : (void *)l->w);
    if (s == dnnl_success)
        s = dnnl_memory_create(&md, &dd, mm->engine, dst);
    if (s == dnnl_success) {
        const dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}};
        s = dnnl_primitive_execute(prim, mm->stream, 3, args);
        if (s == dnnl_success)
            s = dnnl_stream_wait(mm->stream);
    }
    if (ms)
        dnnl_memory_destroy(ms);
    if (mw)
        dnnl_memory_destroy(mw);
    if (md)
        dnnl_memory_destroy(md);
    if (s != dnnl_success)
        return dnnl_fail(s, "matmul execution");
    if (tr)
        transpose_back(m, l->out, dst, l->bias, y);
    else if (l->bias)
#pragma omp parallel for schedule(static) if (m * l->out > 65536)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < l->out; j++)
                y[i * l->out + j] += l->bias[j];
    return KVZ_OK;
}

kvz_status kvz_linear_apply(kvz_mm *mm, const kvz_linear *l, size_t m, const float *x, float *y)
{
    if (!mm || !l || !x || !y)
        return kvz_fail(KVZ_ERR_NULL, "kvz_linear_apply: NULL argument");
    if (!m)
        return KVZ_OK;
    if (l->wtype == KVZ_DTYPE_BF16 && kvz_linear_rows(m) != m) { /* a multiple of ROW_ALIGN, then the rest */
        const size_t m1 = m - m % ROW_ALIGN;
        kvz_status st = apply_rows(mm, l, m1, m1, x, y);
        return st == KVZ_OK ? kvz_linear_apply(mm, l, m - m1, x + m1 * l->in, y + m1 * l->out) : st;
    }
    return apply_rows(mm, l, m, m, x, y);
}

kvz_status kvz_linear_apply_padded(kvz_mm *mm, const kvz_linear *l, size_t m, const float *x, float *y)
{
    if (!mm || !l || !x || !y)
        return kvz_fail(KVZ_ERR_NULL, "kvz_linear_apply_padded: NULL argument");
    if (!m)
        return KVZ_OK;
    return apply_rows(mm, l, m, l->wtype == KVZ_DTYPE_BF16 ? kvz_linear_rows(m) : m, x, y);
}
