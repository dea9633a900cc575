/* Linear layers through oneDNN matmul, split by output columns over the library's threads:
 * primitives are built once per (slice shape, weight type, rows) and reused by every layer. A matrix
 * held as GGUF blocks is read by the matrix-vector kernels for few rows and converted a panel at a
 * time just before oneDNN's product for more. */
#include "model/linear.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/internal.h"
#include "core/pool.h"
#include "model/gguf.h"

/* Below this many rows oneDNN's runtime-M gemm (one primitive for every m) beats its
 * fixed-shape brgemm, measured on Zen 4 for decode-sized products; above it the fixed
 * shape wins by ~1.5x, so those primitives are built per m and cached. */
#define SMALL_M   32
#define MAX_PRIMS 128

/* bf16 products of SMALL_M to TRANSPOSED_MAX_M rows run transposed: Y^T[out][m] = W[out][in]
 * . X^T, the weights as oneDNN's source and the activations as its weights operand, then
 * Y^T is transposed back. In the plain orientation oneDNN 2.6's bf16 brgemm is slow for
 * few rows: transposed it is up to 4x faster below 1024 rows, and from about 1024 rows the
 * transposition back costs what it saves (perf/results/2026-12-07-tuning.md). */
#define TRANSPOSED_MAX_M 1024
static int transposed(kvz_wformat wtype, size_t m)
{
    return wtype == KVZ_WFMT_BF16 && m >= SMALL_M && m < TRANSPOSED_MAX_M;
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

/*
 * Threads. oneDNN (Debian's build) runs each product on an OpenMP team, whose barrier
 * waits for every thread and whose idle threads spin: on a machine where another process
 * holds a core that costs a time slice per product. So each product is cut into column
 * slices (whole multiples of SLICE_COLS columns, one per thread), which the library's pool
 * runs, each slice a single-threaded oneDNN primitive: built and executed with the calling
 * thread's OpenMP thread count set to 1 (and put back), on the slot's own stream and
 * scratchpad. The host's OpenMP settings are left as they were.
 */
#define SLICE_COLS 64

typedef struct prim_entry {
    size_t in, cols, ld, m; /* cols of the slice, ld of the plain orientation's dst; m == 0: runtime M */
    kvz_wformat wtype;
    int tr;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t scratch_md;
    uint64_t used;
} prim_entry;

/*
 * Matrices held only as blocks. A product of more rows than KVZ_LINEAR_BLOCK_ROWS converts the
 * matrix into the dense type a panel of rows at a time, each panel into its thread's own buffer just
 * before oneDNN multiplies it: the model keeps no converted copy (a quarter to a third of the bytes
 * of one in bf16). The conversion is one pass of the dequant kernel over the matrix per product,
 * about what one activation row costs the matrix-vector kernels. Panel sizes, measured against
 * the same product over a converted copy (Zen 4, 2 threads, Llama-3.1-8B and Gemma 3 270M layers):
 * transposed products (fewer than TRANSPOSED_MAX_M rows) are as fast on panels of about
 * PANEL_VALUES values (in cache when oneDNN reads them) and up to 1.2x slower on a thread's whole
 * slice; plain ones are about 1.1x slower on any panel narrower than the whole slice, so there a
 * thread converts its whole slice, up to WIDE_PANEL_VALUES values (the cap only splits LM heads).
 */
#define PANEL_VALUES      (2u << 20)
#define WIDE_PANEL_VALUES (64u << 20)

/* What a pool slot executes on. */
typedef struct mm_slot {
    dnnl_stream_t stream;
    void *scratch;
    size_t scratch_bytes;
    void *panel; /* a converted panel of a matrix held as blocks */
    size_t panel_bytes;
} mm_slot;

struct kvz_mm {
    dnnl_engine_t engine;
    mm_slot *slots;
    size_t n_slots;
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
    return kvz_fail(s == dnnl_out_of_memory ? KVZ_ERR_NOMEM : KVZ_ERR_UNSUPPORTED,
                    "oneDNN: %s failed (status %d)", what, (int)s);
}

/* oneDNN's thread count for this thread set to one; returns the value to put back. */
static int one_thread(void)
{
#ifdef _OPENMP
    const int was = omp_get_max_threads();
    if (was != 1)
        omp_set_num_threads(1);
    return was;
#else
    return 1;
#endif
}

static void threads_back(int was)
{
#ifdef _OPENMP
    if (was != 1)
        omp_set_num_threads(was);
#else
    (void)was;
#endif
}

kvz_status kvz_mm_create(kvz_mm **out)
{
    if (!out)
        return kvz_fail(KVZ_ERR_NULL, "kvz_mm_create: NULL");
    kvz_mm *mm = calloc(1, sizeof *mm);
    if (!mm)
        return kvz_fail(KVZ_ERR_NOMEM, "kvz_mm_create: no memory");
    const dnnl_status_t s = dnnl_engine_create(&mm->engine, dnnl_cpu, 0);
    if (s != dnnl_success) {
        kvz_mm_destroy(mm);
        return dnnl_fail(s, "engine creation");
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
    for (size_t i = 0; i < mm->n_slots; i++) {
        if (mm->slots[i].stream)
            dnnl_stream_destroy(mm->slots[i].stream);
        kvz_aligned_free(mm->slots[i].scratch);
        kvz_aligned_free(mm->slots[i].panel);
    }
    free(mm->slots);
    if (mm->engine)
        dnnl_engine_destroy(mm->engine);
    free(mm->xbuf);
    free(mm->ybuf);
    free(mm);
}

/* A buffer of at least `bytes` (64-byte aligned) in *p, which holds *have bytes. */
static int reserve_aligned(void **p, size_t *have, size_t bytes)
{
    if (*have >= bytes)
        return 1;
    void *b = kvz_aligned_alloc(bytes);
    if (!b)
        return 0;
    kvz_aligned_free(*p);
    *p = b, *have = bytes;
    return 1;
}

/* Streams for slots [0, n), each with a scratchpad of at least `bytes` and a panel buffer of at
 * least `panel_bytes`. */
static kvz_status reserve_slots(kvz_mm *mm, size_t n, size_t bytes, size_t panel_bytes)
{
    if (n > mm->n_slots) {
        mm_slot *sl = realloc(mm->slots, n * sizeof *sl);
        if (!sl)
            return kvz_fail(KVZ_ERR_NOMEM, "kvz_linear_apply: no memory for %zu thread slots", n);
        memset(sl + mm->n_slots, 0, (n - mm->n_slots) * sizeof *sl);
        mm->slots = sl;
        for (; mm->n_slots < n; mm->n_slots++) {
            const dnnl_status_t s =
                dnnl_stream_create(&sl[mm->n_slots].stream, mm->engine, dnnl_stream_default_flags);
            if (s != dnnl_success)
                return dnnl_fail(s, "stream creation");
        }
    }
    for (size_t i = 0; i < n; i++) {
        mm_slot *sl = &mm->slots[i];
        if (!reserve_aligned(&sl->scratch, &sl->scratch_bytes, bytes))
            return kvz_fail(KVZ_ERR_NOMEM, "kvz_linear_apply: no memory for a %zu-byte scratchpad", bytes);
        if (!reserve_aligned(&sl->panel, &sl->panel_bytes, panel_bytes))
            return kvz_fail(KVZ_ERR_NOMEM, "kvz_linear_apply: no memory for a %zu-byte panel", panel_bytes);
    }
    return KVZ_OK;
}

static dnnl_data_type_t dt_of(kvz_wformat t) { return t == KVZ_WFMT_BF16 ? dnnl_bf16 : dnnl_f32; }

/* A slice of `cols` output columns. The plain orientation: src [m][in] in the weight type,
 * weights [in][cols] stored transposed ("ba"), dst [m][cols] f32 with rows `ld` apart.
 * Transposed: src W [cols][in], weights X^T [in][m] (X stored [m][in], so "ba"), dst Y^T
 * [cols][m] f32. */
static dnnl_status_t descs(size_t in, size_t cols, size_t ld, dnnl_dim_t m, kvz_wformat wt, int tr,
                           dnnl_memory_desc_t *src, dnnl_memory_desc_t *wei, dnnl_memory_desc_t *dst)
{
    const dnnl_dim_t rows = tr ? (dnnl_dim_t)cols : m, n = tr ? m : (dnnl_dim_t)cols;
    const dnnl_dims_t sd = {rows, (dnnl_dim_t)in}, wd = {(dnnl_dim_t)in, n}, dd = {rows, n};
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(src, 2, sd, dt_of(wt), dnnl_ab);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(wei, 2, wd, dt_of(wt), dnnl_ba);
    if (s == dnnl_success) {
        const dnnl_dims_t strides = {tr ? n : (dnnl_dim_t)ld, 1};
        s = dnnl_memory_desc_init_by_strides(dst, 2, dd, dnnl_f32, strides);
    }
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

static kvz_status get_prim(kvz_mm *mm, const kvz_linear *l, size_t cols, size_t m, int tr, prim_entry **out)
{
    const size_t key_m = m < SMALL_M ? 0 : m, ld = tr ? 0 : l->out;
    mm->clock++;
    for (size_t i = 0; i < mm->n_prims; i++) {
        prim_entry *e = &mm->prims[i];
        if (e->in == l->in && e->cols == cols && e->ld == ld && e->m == key_m && e->wtype == l->wtype &&
            e->tr == tr) {
            e->used = mm->clock;
            *out = e;
            return KVZ_OK;
        }
    }
    dnnl_memory_desc_t src, wei, dst;
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_desc_t scratch_md;
    const int was = one_thread(); /* oneDNN plans the primitive for the threads it sees now */
    dnnl_status_t s = descs(l->in, cols, l->out, key_m ? (dnnl_dim_t)m : DNNL_RUNTIME_DIM_VAL, l->wtype, tr,
                            &src, &wei, &dst);
    if (s == dnnl_success)
        s = dnnl_matmul_desc_init(&md, &src, &wei, NULL, &dst);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(&pd, &md, attr, mm->engine, NULL);
    if (s == dnnl_success) {
        scratch_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        s = dnnl_primitive_create(&prim, pd);
    }
    threads_back(was);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
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
    mm->prims[slot] = (prim_entry){l->in, cols, ld, key_m, l->wtype, tr, prim, scratch_md, mm->clock};
    *out = &mm->prims[slot];
    return KVZ_OK;
}

/* One product cut into column slices of `width` columns (the last one narrower). */
typedef struct mm_run {
    kvz_mm *mm;
    const kvz_linear *l; /* its dense view: wtype the type of the product, w NULL for blocks */
    size_t m, rows, width, n_slices;
    int tr;
    const kvz_ggml_type *qtype; /* blocks: each slice is a panel, converted first */
    const void *src; /* X in the weight type */
    float *dst;      /* Y, or Y^T when transposed */
    float *y;
    prim_entry *full, *last; /* the primitives of a full slice and of the last one */
    size_t next;             /* the next slice */
    int status;              /* the first oneDNN failure */
} mm_run;

/* y[i][j] = yt[j][i] (+ bias[j]) for the columns [j0, j1): square blocks keep both sides'
 * lines in L1. */
#define TBLOCK 32
static void transpose_back(size_t m, size_t n, size_t j0, size_t j1, const float *yt, const float *bias,
                           float *y)
{
    for (size_t jb = j0; jb < j1; jb += TBLOCK)
        for (size_t i0 = 0; i0 < m; i0 += TBLOCK) {
            const size_t je = jb + TBLOCK < j1 ? jb + TBLOCK : j1, i1 = i0 + TBLOCK < m ? i0 + TBLOCK : m;
            for (size_t i = i0; i < i1; i++)
                for (size_t j = jb; j < je; j++)
                    y[i * n + j] = yt[j * m + i] + (bias ? bias[j] : 0.0f);
        }
}

static dnnl_status_t run_slice(const mm_run *r, const mm_slot *sl, size_t k)
{
    const kvz_linear *l = r->l;
    const size_t j0 = k * r->width, cols = j0 + r->width < l->out ? r->width : l->out - j0;
    const prim_entry *e = k + 1 < r->n_slices ? r->full : r->last;
    const size_t wsize = l->wtype == KVZ_WFMT_BF16 ? 2 : 4;
    const void *w = r->qtype ? sl->panel : (const char *)l->w + j0 * l->in * wsize;
    if (r->qtype) { /* the panel of rows [j0, j0 + cols) */
        const size_t per_row = l->in / r->qtype->block;
        kvz_kernels()->dequant(sl->panel, (int)l->wtype,
                               (const char *)l->blocks + j0 * per_row * r->qtype->bytes, (int)l->qtype,
                               cols * per_row);
    }
    float *dst = r->tr ? r->dst + j0 * r->rows : r->dst + j0;
    dnnl_memory_desc_t sd, wd, dd;
    dnnl_memory_t ms = NULL, mw = NULL, md = NULL, mscr = NULL;
    dnnl_status_t s = descs(l->in, cols, l->out, (dnnl_dim_t)r->rows, l->wtype, r->tr, &sd, &wd, &dd);
    if (s == dnnl_success)
        s = dnnl_memory_create(&ms, &sd, r->mm->engine, r->tr ? (void *)w : (void *)r->src);
    if (s == dnnl_success)
        s = dnnl_memory_create(&mw, &wd, r->mm->engine, r->tr ? (void *)r->src : (void *)w);
    if (s == dnnl_success)
        s = dnnl_memory_create(&md, &dd, r->mm->engine, dst);
    const int scratch = dnnl_memory_desc_get_size(&e->scratch_md) > 0;
    if (s == dnnl_success && scratch)
        s = dnnl_memory_create(&mscr, &e->scratch_md, r->mm->engine, sl->scratch);
    if (s == dnnl_success) {
        const dnnl_exec_arg_t args[4] = {
            {DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}, {DNNL_ARG_SCRATCHPAD, mscr}};
        s = dnnl_primitive_execute(e->prim, sl->stream, scratch ? 4 : 3, args);
        if (s == dnnl_success)
            s = dnnl_stream_wait(sl->stream);
    }
    if (ms)
        dnnl_memory_destroy(ms);
    if (mw)
        dnnl_memory_destroy(mw);
    if (md)
        dnnl_memory_destroy(md);
    if (mscr)
        dnnl_memory_destroy(mscr);
    if (s != dnnl_success)
        return s;
    if (r->tr)
        transpose_back(r->m, l->out, j0, j0 + cols, r->dst, l->bias, r->y);
    else if (l->bias)
        for (size_t i = 0; i < r->m; i++)
            for (size_t j = j0; j < j0 + cols; j++)
                r->y[i * l->out + j] += l->bias[j];
    return dnnl_success;
}

static void slices_body(void *ctx, unsigned slot, unsigned team)
{
    (void)team;
    mm_run *r = ctx;
    const int was = one_thread();
    for (size_t k; (k = kvz_team_claim(&r->next, r->n_slices)) < r->n_slices;) {
        const dnnl_status_t s = run_slice(r, &r->mm->slots[slot], k);
        if (s != dnnl_success) {
            int ok = dnnl_success;
            __atomic_compare_exchange_n(&r->status, &ok, (int)s, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        }
    }
    threads_back(was);
}

kvz_wformat kvz_linear_dense_format(const kvz_linear *l)
{
    if (l->wtype != KVZ_WFMT_BLOCKS)
        return l->wtype;
    return kvz_cpu_has_avx512_bf16() ? KVZ_WFMT_BF16 : KVZ_WFMT_F32;
}

/* y[0 .. m) = x[0 .. m) W^T (+ b), the product run on `rows` >= m rows (rows > m: bf16
 * products only, x's rows past m taken as zeros, y with room for `rows` rows). `l` is the matrix's
 * dense view (kvz_linear_dense_format); `qtype`, for a matrix held as blocks, their type. */
static kvz_status apply_rows(kvz_mm *mm, const kvz_linear *l, const kvz_ggml_type *qtype, size_t m, size_t rows,
                             const float *x, float *y)
{
    size_t elems, out_elems;
    if (!kvz_mul_ok(rows, l->in, &elems) || !kvz_mul_ok(rows, l->out, &out_elems))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_linear_apply: %zu rows of %zu -> %zu too large", rows, l->in,
                        l->out);
    const size_t in_elems = m * l->in;
    const int tr = transposed(l->wtype, rows); /* only below 1024 rows, where rows == m */
    /* one slice per thread, of whole SLICE_COLS columns; for blocks, panels of whole SLICE_COLS
       columns and about the panel size or less, as many as that takes and at least one a thread */
    const size_t threads = (size_t)kvz_num_threads(), groups = (l->out + SLICE_COLS - 1) / SLICE_COLS;
    size_t n_slices = groups < threads ? groups : threads;
    if (qtype) {
        const size_t group_values = SLICE_COLS * l->in, limit = tr ? PANEL_VALUES : WIDE_PANEL_VALUES;
        const size_t panel_groups = limit / group_values ? limit / group_values : 1;
        const size_t n_panels = (groups + panel_groups - 1) / panel_groups;
        n_slices = n_panels > n_slices ? n_panels : n_slices;
    }
    const size_t width = (groups + n_slices - 1) / n_slices * SLICE_COLS;
    const size_t n_used = (l->out + width - 1) / width; /* rounding up can leave one slice empty */
    prim_entry *full = NULL, *last = NULL;
    kvz_status st = get_prim(mm, l, width < l->out ? width : l->out, rows, tr, &full);
    if (st == KVZ_OK) /* full is now the most recently used entry: a new one never replaces it */
        st = get_prim(mm, l, l->out - (n_used - 1) * width, rows, tr, &last);
    if (st != KVZ_OK)
        return st;
    size_t scratch = 0;
    const prim_entry *used[2] = {full, last};
    for (int i = 0; i < 2; i++) {
        const size_t b = dnnl_memory_desc_get_size(&used[i]->scratch_md);
        scratch = b > scratch ? b : scratch;
    }
    const size_t team = n_used < threads ? n_used : threads;
    const size_t panel_bytes = qtype ? width * l->in * (l->wtype == KVZ_WFMT_BF16 ? 2 : 4) : 0;
    if ((st = reserve_slots(mm, team, scratch, panel_bytes)) != KVZ_OK)
        return st;
    const void *src = x;
    if (l->wtype == KVZ_WFMT_BF16) { /* oneDNN's bf16 matmul wants bf16 activations too */
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
    mm_run r = {mm, l, m, rows, width, n_used, tr, qtype, src, dst, y, full, last, 0, dnnl_success};
    kvz_team_run(slices_body, &r, (int)team);
    if (r.status != dnnl_success)
        return dnnl_fail((dnnl_status_t)r.status, "matmul execution");
    return KVZ_OK;
}

/* A product over a matrix's blocks: its rows split over the library's threads. Q8_0 rows go to the
 * level's gemv_q8_0 kernel, the other types to gemv_blocks (both read the blocks once). */
typedef struct block_run {
    const kvz_linear *l;
    size_t m, row_bytes, n_blocks;
    const float *x;
    float *y;
    int nomem;
} block_run;

#define BLOCK_ROW_GRAIN 64 /* rows a piece: 64 rows of 4096 Q8_0 values are 272 KiB */

static void block_rows(void *ctx, size_t lo, size_t hi)
{
    block_run *r = ctx;
    const kvz_linear *l = r->l;
    const kvz_kernel_table *kt = kvz_kernels();
    const char *w = (const char *)l->blocks + lo * r->row_bytes;
    if (l->qtype == KVZ_GGML_Q8_0) {
        kt->gemv_q8_0(r->y + lo, l->out, r->x, r->m, w, hi - lo, l->in);
    } else {
        float *work = kvz_thread_scratch(l->in);
        if (!work) {
            __atomic_store_n(&r->nomem, 1, __ATOMIC_RELAXED);
            return;
        }
        const kvz_gemv_job job = {w,    (int)l->qtype, hi - lo,   l->in,  r->n_blocks, r->row_bytes,
                                  r->x, r->m,          r->y + lo, l->out, work};
        kt->gemv_blocks(&job);
    }
    if (l->bias)
        for (size_t i = 0; i < r->m; i++)
            for (size_t j = lo; j < hi; j++)
                r->y[i * l->out + j] += l->bias[j];
}

/* The type of a matrix's blocks, or a refusal: no blocks, not a block type, rows not whole blocks. */
static kvz_status block_type(const kvz_linear *l, const kvz_ggml_type **out)
{
    if (!l->blocks)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_linear_apply: a matrix held as blocks without its blocks");
    const kvz_ggml_type *ty = kvz_ggml_type_of(l->qtype);
    if (!ty || ty->block < 32)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_linear_apply: ggml type %u is not a block-quantized type",
                        l->qtype);
    if (l->in % ty->block)
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "kvz_linear_apply: rows of %zu values are not whole %s blocks of %u", l->in, ty->name,
                        ty->block);
    *out = ty;
    return KVZ_OK;
}

static kvz_status apply_blocks(const kvz_linear *l, size_t m, const float *x, float *y)
{
    const kvz_ggml_type *ty = NULL;
    const kvz_status st = block_type(l, &ty);
    if (st != KVZ_OK)
        return st;
    block_run r = {l, m, l->in / ty->block * ty->bytes, l->in / ty->block, x, y, 0};
    kvz_parallel_for(l->out, BLOCK_ROW_GRAIN, block_rows, &r);
    return r.nomem ? kvz_fail(KVZ_ERR_NOMEM, "kvz_linear_apply: no memory for a row of %zu values", l->in)
                   : KVZ_OK;
}

static int reads_blocks(const kvz_linear *l, size_t m) { return l->blocks && m <= KVZ_LINEAR_BLOCK_ROWS; }

/* What apply_rows multiplies: the matrix itself, or for one held only as blocks its dense view
 * (kvz_linear_dense_format, no values) and the blocks' type in *qtype: apply_rows converts panels. */
static kvz_status dense_view(const kvz_linear *l, kvz_linear *d, const kvz_ggml_type **qtype)
{
    *d = *l, *qtype = NULL;
    if (l->wtype != KVZ_WFMT_BLOCKS)
        return KVZ_OK;
    d->wtype = kvz_linear_dense_format(l);
    return block_type(l, qtype);
}

double kvz_linear_bytes(const kvz_linear *l)
{
    const double n = (double)l->in * (double)l->out;
    const kvz_ggml_type *ty = l->blocks ? kvz_ggml_type_of(l->qtype) : NULL;
    if (ty)
        return n / ty->block * ty->bytes;
    return n * (l->wtype == KVZ_WFMT_BF16 ? 2.0 : 4.0);
}

kvz_status kvz_linear_apply(kvz_mm *mm, const kvz_linear *l, size_t m, const float *x, float *y)
{
    if (!mm || !l || !x || !y)
        return kvz_fail(KVZ_ERR_NULL, "kvz_linear_apply: NULL argument");
    if (!m)
        return KVZ_OK;
    if (reads_blocks(l, m))
        return apply_blocks(l, m, x, y);
    kvz_linear d;
    const kvz_ggml_type *qt;
    kvz_status st = dense_view(l, &d, &qt);
    if (st != KVZ_OK)
        return st;
    if (d.wtype == KVZ_WFMT_BF16 && kvz_linear_rows(m) != m) { /* a multiple of ROW_ALIGN, then the rest */
        const size_t m1 = m - m % ROW_ALIGN;
        st = apply_rows(mm, &d, qt, m1, m1, x, y);
        return st == KVZ_OK ? apply_rows(mm, &d, qt, m - m1, m - m1, x + m1 * l->in, y + m1 * l->out) : st;
    }
    return apply_rows(mm, &d, qt, m, m, x, y);
}

kvz_status kvz_linear_apply_padded(kvz_mm *mm, const kvz_linear *l, size_t m, const float *x, float *y)
{
    if (!mm || !l || !x || !y)
        return kvz_fail(KVZ_ERR_NULL, "kvz_linear_apply_padded: NULL argument");
    if (!m)
        return KVZ_OK;
    if (reads_blocks(l, m))
        return apply_blocks(l, m, x, y);
    kvz_linear d;
    const kvz_ggml_type *qt;
    const kvz_status st = dense_view(l, &d, &qt);
    return st == KVZ_OK ? apply_rows(mm, &d, qt, m, d.wtype == KVZ_WFMT_BF16 ? kvz_linear_rows(m) : m, x, y)
                        : st;
}
