/* Linear layers through oneDNN matmul: primitives are built once per (shape, weight type,
 * rows) and reused by every layer of that shape. */
#include "model/linear.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/internal.h"

/* Below this many rows oneDNN's runtime-M gemm (one primitive for every m) beats its
 * fixed-shape brgemm, measured on Zen 4 for decode-sized products; above it the fixed
 * shape wins by ~1.5x, so those primitives are built per m and cached. */
#define SMALL_M 32
#define MAX_PRIMS 64

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
    uint16_t *xbuf; /* bf16 copy of the input rows */
    size_t xbuf_elems;
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
    free(mm);
}

static dnnl_data_type_t dt_of(kvz_dtype t) { return t == KVZ_DTYPE_BF16 ? dnnl_bf16 : dnnl_f32; }

/* src [m][in] in the weight type, weights [in][out] stored transposed ("ba"), dst [m][out] f32. */
static dnnl_status_t descs(size_t in, size_t out, dnnl_dim_t m, kvz_dtype wt, dnnl_memory_desc_t *src,
                           dnnl_memory_desc_t *wei, dnnl_memory_desc_t *dst)
{
    const dnnl_dims_t sd = {m, (dnnl_dim_t)in}, wd = {(dnnl_dim_t)in, (dnnl_dim_t)out}, dd = {m, (dnnl_dim_t)out};
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(src, 2, sd, dt_of(wt), dnnl_ab);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(wei, 2, wd, dt_of(wt), dnnl_ba);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(dst, 2, dd, dnnl_f32, dnnl_ab);
    return s;
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
    dnnl_status_t s = descs(l->in, l->out, key_m ? (dnnl_dim_t)m : DNNL_RUNTIME_DIM_VAL, l->wtype, &src, &wei, &dst);
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

kvz_status kvz_linear_apply(kvz_mm *mm, const kvz_linear *l, size_t m, const float *x, float *y)
{
    if (!mm || !l || !x || !y)
        return kvz_fail(KVZ_ERR_NULL, "kvz_linear_apply: NULL argument");
    if (!m)
        return KVZ_OK;
    dnnl_primitive_t prim = NULL;
    kvz_status st = get_prim(mm, l, m, &prim);
    if (st != KVZ_OK)
        return st;
    const void *src = x;
    if (l->wtype == KVZ_DTYPE_BF16) { /* oneDNN's bf16 matmul wants bf16 activations too */
        size_t elems;
        if (!kvz_mul_ok(m, l->in, &elems))
            return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_linear_apply: %zu x %zu too large", m, l->in);
        if (elems > mm->xbuf_elems) {
            uint16_t *b = realloc(mm->xbuf, elems * sizeof *b);
            if (!b)
                return kvz_fail(KVZ_ERR_NOMEM, "kvz_linear_apply: no memory for %zu activations", elems);
            mm->xbuf = b, mm->xbuf_elems = elems;
        }
        kvz_convert(mm->xbuf, KVZ_DTYPE_BF16, x, KVZ_DTYPE_F32, elems);
        src = mm->xbuf;
    }
    dnnl_memory_desc_t sd, wd, dd;
    dnnl_memory_t ms = NULL, mw = NULL, md = NULL;
    dnnl_status_t s = descs(l->in, l->out, (dnnl_dim_t)m, l->wtype, &sd, &wd, &dd);
    if (s == dnnl_success)
        s = dnnl_memory_create(&ms, &sd, mm->engine, (void *)src);
    if (s == dnnl_success)
        s = dnnl_memory_create(&mw, &wd, mm->engine, (void *)l->w);
    if (s == dnnl_success)
        s = dnnl_memory_create(&md, &dd, mm->engine, y);
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
    if (l->bias)
#pragma omp parallel for schedule(static) if (m * l->out > 65536)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < l->out; j++)
                y[i * l->out + j] += l->bias[j];
    return KVZ_OK;
}
