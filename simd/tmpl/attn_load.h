/*
 * Loading into the block context: the block's query rows (which also chooses the block's
 * path), and the K/V rows of a key block, read in place or converted to f32 in the scratch.
 */
#ifndef KVZ_TMPL_ATTN_LOAD_H
#define KVZ_TMPL_ATTN_LOAD_H

/* Loads the block's query rows, pre-scaled, into the transposed or the row scratch. */
static void load_queries(blk_ctx *c, const float *q, ptrdiff_t qhs, ptrdiff_t qrs, float scale, size_t r0,
                         size_t mq)
{
    c->r0 = r0;
    c->mq = mq;
    c->nrv = (mq + VW - 1) / VW;
    c->dot = mq <= DOT_MAX_ROWS;
    c->bpdot = c->bdot && c->dot && c->d % 32 == 0;
    c->pf_l1 = c->bpdot && c->reads == KVZ_KREADS_L1X4;
    c->amx = KVZ_ATTN_AMX && c->bdot && !c->dot && c->d % 32 == 0;
    c->s_scale = c->amx ? scale : 1.0f;
    if (c->bpdot) /* whole tiles of 4 rows */
        c->mq_tile = (mq + 3) / 4 * 4;
    else
        c->mq_tile = c->dot && mq >= 2 && mq < DOT_TILE ? DOT_TILE : mq;
    c->sj = c->dot ? 1 : MQ;
    c->sr = c->dot ? SROW : 1;
    const size_t lanes = c->nrv * VW;
    c->scale = scale;
    if (arch_load_queries(c, q, qhs, qrs, scale))
        return;
    for (size_t r = 0; r < mq; r++) {
        const size_t gr = r0 + r;
        const float *src = q + (ptrdiff_t)(gr % c->group) * qhs + (ptrdiff_t)(gr / c->group) * qrs;
        if (c->dot) {
            float *dst = c->qr + r * c->dp;
            for (size_t x = 0; x < c->d; x++)
                dst[x] = src[x] * scale;
            for (size_t x = c->d; x < c->dpv * VW; x++)
                dst[x] = 0.0f;
        } else {
            for (size_t x = 0; x < c->d; x++)
                c->qt[x * MQ + r] = src[x] * scale;
        }
    }
    if (!c->dot)
        for (size_t x = 0; x < c->d; x++)
            for (size_t r = mq; r < lanes; r++)
                c->qt[x * MQ + r] = 0.0f;
    for (size_t r = mq; r < c->mq_tile; r++) /* padding rows: their results are never read */
        memset(c->qr + r * c->dp, 0, c->dpv * VW * sizeof(float));
}

/* Vector loaders by storage type: the dot path reads bf16/f16 K/V rows in place and
 * converts in registers (decode reads each K/V element once: a converted copy in memory
 * would only add a store and a load per element). */
typedef vf (*vload_fn)(const void *base, size_t idx);
static inline vf ld_f32(const void *b, size_t i) { return vf_load((const float *)b + i); }
static inline vf ld_bf16(const void *b, size_t i) { return vf_load_bf16((const uint16_t *)b + i); }
static inline vf ld_f16(const void *b, size_t i) { return vf_load_f16((const uint16_t *)b + i); }

/* K or V rows of a key block as the block functions read them. */
typedef struct rows_ref {
    const void *p;
    size_t stride; /* elements */
    int dt;        /* storage type of p: f32 unless read in place by the dot path */
} rows_ref;

/* Converts nrows rows of d elements of dtype dt to f32 rows of stride dst_stride. */
static void rows_to_f32(float *dst, size_t dst_stride, const void *src, ptrdiff_t src_stride, int dt,
                        size_t nrows, size_t d)
{
    const size_t esz = dt == KVZ_KDT_F32 ? 4 : 2;
    for (size_t j = 0; j < nrows; j++) {
        float *o = dst + j * dst_stride;
        cvt_to_f32(o, (const char *)src + (ptrdiff_t)j * src_stride * (ptrdiff_t)esz, dt, d);
        for (size_t x = d; x < dst_stride; x++) /* whole vectors read past d: zeros */
            o[x] = 0.0f;
    }
}

/* Where the rows of keys [kb, kb+nb) are read from: in place when the layout allows
 * (f32, or any type on the dot path, with d a whole number of vectors), else converted
 * to f32 in the scratch (zero padded to whole vectors). */
static rows_ref key_rows(blk_ctx *c, float *scratch, const void *base, ptrdiff_t stride, int dt, size_t kb,
                         size_t nb)
{
    const size_t esz = dt == KVZ_KDT_F32 ? 4 : 2;
    const char *first = (const char *)base + (ptrdiff_t)kb * stride * (ptrdiff_t)esz;
    if (c->d % VW == 0 && (dt == KVZ_KDT_F32 || c->dot)) {
        return (rows_ref){first, (size_t)stride, dt};
    }
    rows_to_f32(scratch, c->dp, first, stride, dt, nb, c->d);
    return (rows_ref){scratch, c->dp, KVZ_KDT_F32};
}

#endif
