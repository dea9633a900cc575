/*
 * The block loops of the attention kernels: attn_impl walks the job's query blocks, each
 * against the keys of both runs (logits, online softmax, P.V per key block), then writes the
 * output and makes the scoring visits; window_impl computes the FastKV window score.
 */
#ifndef KVZ_TMPL_ATTN_DRIVERS_H
#define KVZ_TMPL_ATTN_DRIVERS_H

/* The keys [from, to) of a run (its rows at kr and vr, kn of them, the first with index kb0
 * in the job's numbering) in contiguous blocks of bk keys: logits, the online softmax (with
 * the reduced set's statistics when the job scores), P.V. */
static void plain_blocks(blk_ctx *c, const kvz_attn_job *job, int run, const char *kr, const char *vr,
                         size_t kb0, size_t kn, size_t from, size_t to, size_t bk, int keep_z)
{
    const int dt = job->dtype;
    unsigned char in[BK_DOT > BK ? BK_DOT : BK]; /* a block's reduced-set marks */
    for (size_t kb = from; kb < to; kb += bk) {
        const size_t nb = to - kb < bk ? to - kb : bk;
        const size_t next = kb + bk < to ? (to - kb - bk < bk ? to - kb - bk : bk) : 0;
        const char *kblk = kr + kb * c->pf_stride, *vblk = vr + kb * c->pf_stride;
        const char *knext = next ? kblk + bk * c->pf_stride : NULL,
                   *vnext = next ? vblk + bk * c->pf_stride : NULL;
        /* the dot path prefetches along its reads (this block's K, its V, the next
         * block's K); the bf16 gemm path, whose blocks take long, the next block's
         * K during the logits and its V during P.V */
        if (c->dot)
            pf_queue(c, kblk, nb, vblk, nb, PF_AHEAD);
        else
            pf_queue(c, knext, c->bdot ? next : 0, NULL, 0, 0);
        logits_block(c, kr, job->kv_row_stride, dt, kb, nb, kb0);
        if (keep_z) /* the chunk's logits, before they become probabilities */
            store_chunk_logits(c, job, kb0 + kb, nb);
        int all_in = 0;
        const int reduced = job->score && reduced_mask(job, kb0 + kb, nb, in, &all_in);
        if (reduced && !c->dot) {
            online_update_scored(c, nb, in, all_in);
        } else {
            if (reduced)
                online_update(c, c->m2, c->l2, nb, in, 0);
            online_update(c, c->m, c->l, nb, NULL, 1);
        }
        if (c->dot) {
            pv_dot(c, vr, job->kv_row_stride, dt, kb, nb, knext, next);
            continue;
        }
        pf_queue(c, vnext, c->bdot ? next : 0, NULL, 0, 0);
        if (!arch_pv_gemm(c, job, run, vr, kn, kb, nb))
            pv_update(c, key_rows(c, c->vf_, vr, job->kv_row_stride, dt, kb, nb), nb);
    }
}

/* The blocks of keys [ilv0, ilv0 + ilv_n) of a run (ilv_n a whole number of rounds of turns,
 * every row of the block sees them) read as ILV_N interleaved streams: block kb takes each
 * region's rows from kb / ILV_N on. */
static inline __attribute__((always_inline)) void interleaved_blocks(blk_ctx *c, const kvz_attn_job *job,
                                                                     const char *kr, const char *vr, size_t kb0,
                                                                     size_t ilv0, size_t ilv_n, size_t bk)
{
    const int dt = job->dtype;
    const char *kri = ilv_n ? kr + ilv0 * c->pf_stride : kr, *vri = ilv_n ? vr + ilv0 * c->pf_stride : vr;
    c->ilv_log2n = ILV_LOG2N, c->ilv_rows = ilv_n / ILV_N;
    for (size_t kb = 0; kb < ilv_n; kb += bk) {
        const size_t nb = ilv_n - kb < bk ? ilv_n - kb : bk;
        const size_t next = ilv_n - kb - nb < bk ? ilv_n - kb - nb : bk;
        const char *kblk = kri + kb / ILV_N * c->pf_stride;
        pf_queue(c, kblk, nb, vri + kb / ILV_N * c->pf_stride, nb, PF_AHEAD);
        logits_block(c, kri, job->kv_row_stride, dt, kb / ILV_N, nb, kb0 + ilv0);
        online_update(c, c->m, c->l, nb, NULL, 1);
        pv_dot(c, vri, job->kv_row_stride, dt, kb / ILV_N, nb, kblk + nb / ILV_N * c->pf_stride, next);
    }
    c->ilv_log2n = 0, c->ilv_rows = 0;
}

/* The current block against the keys of one run (run 0: the shared cache segment, run 1:
 * the private tail) up to the job's key kend, from the window's first key kbeg of the
 * block's first row (kbeg_all: of its last row). */
static inline __attribute__((always_inline)) void run_blocks(blk_ctx *c, const kvz_attn_job *job, int run,
                                                             size_t kbeg, size_t kbeg_all, size_t kend,
                                                             size_t bk, int keep_z)
{
    const char *kr = run ? job->k2 : job->k, *vr = run ? job->v2 : job->v;
    const size_t kb0 = run ? job->n_k : 0, kn = run ? job->n_k2 : job->n_k;
    const size_t rend = kend < kb0 ? 0 : (kend - kb0 < kn ? kend - kb0 : kn);
    /* the window's first block, at a whole chunk of 32 keys (the amx path's V tiles) */
    size_t rbeg = kbeg <= kb0 ? 0 : (kbeg - kb0) / 32 * 32;
    rbeg = rbeg < rend ? rbeg : rend;
    /* under the read plan KVZ_KREADS_L1X4 the bp path reads the keys [ilv0, ilv0 + ilv_n) of
     * the run as interleaved streams (ILV_N): those that every row sees, so that no block
     * needs a mask, in whole rounds of turns; the rest as one. Not while scoring: its second
     * visit of the chunk's keys reads them in their order. */
    size_t ilv0 = rbeg, ilv_n = 0;
    if (c->bpdot && c->reads == KVZ_KREADS_L1X4 && !job->score) {
        const ptrdiff_t see = row_limit(c, 0) + 1 - (ptrdiff_t)kb0;
        const size_t all = see <= 0 ? 0 : ((size_t)see < rend ? (size_t)see : rend);
        const size_t first = kbeg_all <= kb0 ? 0 : kbeg_all - kb0;
        if (first < all) {
            ilv_n = (all - first) / (ILV_TURN * ILV_N) * (ILV_TURN * ILV_N);
            ilv0 = ilv_n ? first : rbeg;
        }
    }
    plain_blocks(c, job, run, kr, vr, kb0, kn, rbeg, ilv0, bk, keep_z);
    interleaved_blocks(c, job, kr, vr, kb0, ilv0, ilv_n, bk);
    plain_blocks(c, job, run, kr, vr, kb0, kn, ilv0 + ilv_n, rend, bk, keep_z);
}

/* Starts the block of rows [r0, r0+mq): its queries, fresh statistics and a zero O. */
static inline __attribute__((always_inline)) void block_begin(blk_ctx *c, const kvz_attn_job *job, size_t r0,
                                                              size_t mq, int *held)
{
    load_queries(c, job->q, job->q_head_stride, job->q_row_stride, job->scale, r0, mq);
    arch_block_begin(c, held);
    stats_reset(c);
    /* the bf16 P.V runs whole row tiles: their padding rows must hold numbers too; on AMX
       O is transposed, [x][MQ] (see pv_amx), all of its columns zeroed */
    if (c->amx)
        memset(c->o, 0, c->d * MQ * sizeof(float));
    else
        memset(c->o, 0, (c->bdot && !c->dot ? c->nrv * VW : c->mq_tile) * c->dp * sizeof(float));
}

/* Writes the block's rows of the output, O / l, and their log-sum-exp if the job asks. */
static inline __attribute__((always_inline)) void block_store(const blk_ctx *c, const kvz_attn_job *job,
                                                              size_t r0, size_t mq)
{
    for (size_t r = 0; r < mq; r++) {
        const size_t gr = r0 + r, g = gr % job->group, i = gr / job->group;
        float *dst = job->out + (ptrdiff_t)g * job->out_head_stride + (ptrdiff_t)i * job->out_row_stride;
        const float inv = c->l[r] > 0.0f ? 1.0f / c->l[r] : 0.0f;
        if (!arch_store_row(c, dst, r, job->d, inv))
            for (size_t x = 0; x < job->d; x++)
                dst[x] = c->o[r * c->dp + x] * inv;
        if (job->lse)
            job->lse[g * job->n_q + i] = c->l[r] > 0.0f ? c->m[r] + logf(c->l[r]) : -INFINITY;
    }
}

static void attn_impl(const kvz_attn_job *job)
{
    blk_ctx c;
    scratch_init(&c, job->work, job->d, job->group, job->q_pos0);
    c.window = job->window;
    c.reads = job->reads;
    const size_t rows = job->n_q * job->group;
    const int dt = job->dtype;
    c.bdot = KVZ_ATTN_BF16DOT && dt == KVZ_KDT_BF16 && job->d % 2 == 0;
    if (c.bdot && job->vtstore) /* the runs' V tiles, chunk by chunk (vt_block) */
        c.vt = job->vtstore, c.vt_base[1] = (job->n_k + 31) / 32;
    int held = 0; /* see arch_block_begin */

    for (size_t r0 = 0; r0 < rows; r0 += MQ) {
        const size_t mq = rows - r0 < MQ ? rows - r0 : MQ;
        block_begin(&c, job, r0, mq, &held);
        const ptrdiff_t lim = row_limit(&c, mq - 1);
        const size_t n_all = job->n_k + job->n_k2;
        const size_t kend = lim < 0 ? 0 : ((size_t)lim + 1 < n_all ? (size_t)lim + 1 : n_all);
        /* the dot path reads K/V in place unless they need converting (key_rows) */
        const size_t bk = c.dot ? (c.d % VW == 0 ? BK_DOT : BK) : BK;
        /* scoring on the gemm path keeps the chunk's logits for the second visit */
        const int keep_z = job->score && job->zstore && !c.dot;

        const size_t esz = dt == KVZ_KDT_F32 ? 4 : 2;
        c.pf_stride = (size_t)job->kv_row_stride * esz;
        c.pf_bytes = job->d * esz;
        /* the keys come in two runs (a shared cache segment and a private tail): the online
         * softmax simply continues from one to the other; a sliding window starts at the first
         * key the block's first row sees */
        const size_t kbeg = (size_t)row_first(&c, 0), kbeg_all = (size_t)row_first(&c, mq - 1);
        for (int run = 0; run < 2; run++)
            run_blocks(&c, job, run, kbeg, kbeg_all, kend, bk, keep_z);
        pf_queue(&c, NULL, 0, NULL, 0, 0);
        block_store(&c, job, r0, mq);

        /* Accumulated attention: the keys of the first run that some row of the block sees
         * (from the first row's window on, up to the last row's limit). The first sweep's
         * interleaved streams (bp path) are no matter here: this visit reads keys in order. */
        if (job->accum && kbeg < (kend < job->n_k ? kend : job->n_k))
            accum_visit(&c, job, kbeg, kend < job->n_k ? kend : job->n_k);
        if (job->score)
            score_visit(&c, job, mq, keep_z);
    }
    arch_job_end(held);
}

/* FastKV window score, one query head at a time so each head is pooled on its own. */
static void window_impl(const kvz_window_job *job)
{
    const size_t W = job->window, n = job->n, nk = n - W;
    float *a = job->work + kvz_attn_work_floats(job->d);
    blk_ctx c;
    scratch_init(&c, job->work, job->d, 1, (ptrdiff_t)nk);
    for (size_t j = 0; j < nk; j++)
        job->out[j] = 0.0f;

    for (size_t g = 0; g < job->group; g++) {
        const float *qg = job->q + (ptrdiff_t)g * job->q_head_stride;
        for (size_t j = 0; j < nk; j++)
            a[j] = 0.0f;
        for (size_t r0 = 0; r0 < W; r0 += MQ) {
            const size_t mq = W - r0 < MQ ? W - r0 : MQ;
            load_queries(&c, qg, 0, job->q_row_stride, job->scale, r0, mq);
            stats_reset(&c);
            const size_t kend = nk + r0 + mq; /* the last row sees up to key nk + r0 + mq - 1 */
            for (size_t kb = 0; kb < kend; kb += BK) {
                const size_t nb = kend - kb < BK ? kend - kb : BK;
                logits_block(&c, job->k, job->k_row_stride, job->dtype, kb, nb, 0);
                online_update(&c, c.m, c.l, nb, NULL, 0);
            }
            for (size_t r = 0; r < c.nrv * VW; r++)
                c.lse2[r] = (r < mq && c.l[r] > 0.0f) ? c.m[r] + logf(c.l[r]) : INFINITY;
            for (size_t kb = 0; kb < nk; kb += BK) {
                const size_t nb = nk - kb < BK ? nk - kb : BK;
                logits_block(&c, job->k, job->k_row_stride, job->dtype, kb, nb, 0);
                probs_from_lse(&c, nb);
                fold_sum(&c, nb, a + kb);
            }
        }
        /* 1-D pooling, stride 1, padding kernel/2, then the group sum */
        const ptrdiff_t h = (ptrdiff_t)(job->kernel / 2);
        const float invk = 1.0f / (float)job->kernel;
        for (ptrdiff_t j = 0; j < (ptrdiff_t)nk; j++) {
            const ptrdiff_t lo = j - h < 0 ? 0 : j - h;
            const ptrdiff_t hi = j + h >= (ptrdiff_t)nk ? (ptrdiff_t)nk - 1 : j + h;
            float acc = job->pool == KVZ_KPOOL_MAX ? -INFINITY : 0.0f;
            for (ptrdiff_t t = lo; t <= hi; t++)
                acc = job->pool == KVZ_KPOOL_MAX ? (a[t] > acc ? a[t] : acc) : acc + a[t];
            job->out[j] += job->pool == KVZ_KPOOL_MAX ? acc : acc * invk;
        }
    }
}

#endif
