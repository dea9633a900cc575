/*
 * What the attention kernels score besides the output: KVzip's second visit of the chunk's
 * keys (the max over query rows of their probabilities under the reduced key set), H2O's
 * accumulated attention, and the probabilities summed over rows of the FastKV window score.
 */
#ifndef KVZ_TMPL_ATTN_SCORE_H
#define KVZ_TMPL_ATTN_SCORE_H

/* Marks which keys of [kb, kb+nb) belong to the KVzip reduced key set; returns whether any,
 * and sets *all to whether every one does. */
static int reduced_mask(const kvz_attn_job *job, size_t kb, size_t nb, unsigned char *in, int *all)
{
    int any = 0, every = 1;
    for (size_t j = 0; j < nb; j++) {
        const size_t key = kb + j;
        in[j] =
            key < job->sink_end || (key >= job->chunk_begin && key < job->chunk_end) || key >= job->own_begin;
        any |= in[j], every &= in[j];
    }
    *all = every;
    return any;
}

/* The dot path's second visit, after probs_from_lse: dst[j] = max(dst[j], max over the
 * block's rows of P[r][j]) for j < nb. */
static void fold_max_dot(const blk_ctx *c, size_t nb, float *dst)
{
    for (size_t j = 0; j < nb; j++) {
        float mx = c->s[j];
        for (size_t r = 1; r < c->mq; r++)
            mx = c->s[r * SROW + j] > mx ? c->s[r * SROW + j] : mx;
        if (mx > dst[j])
            dst[j] = mx;
    }
}

/* The gemm path's second visit: dst[j] = max(dst[j], max over rows r of exp(z[j][r] -
 * lse2[r])) for j < nb, z in S's layout. exp is monotonic, so the max over rows is taken
 * of the exponents: one exp per key instead of one per key and row. */
static void fold_max_exp(const blk_ctx *c, const float *z, size_t nb, float *dst)
{
    const vf sc = vf_set1(c->s_scale); /* z as S holds them (see logits_amx) */
    float h[VW];
    for (size_t j0 = 0; j0 < nb; j0 += VW) {
        const size_t n = nb - j0 < VW ? nb - j0 : VW;
        for (size_t t = 0; t < VW; t++) {
            if (t >= n) {
                h[t] = -INFINITY;
                continue;
            }
            const float *zj = z + (j0 + t) * MQ;
            vf mx = vf_sub(vf_mul(vf_load(zj), sc), vf_load(c->lse2));
            for (size_t v = 1; v < c->nrv; v++)
                mx = vf_max(mx, vf_sub(vf_mul(vf_load(zj + v * VW), sc), vf_load(c->lse2 + v * VW)));
            h[t] = vf_hmax(mx);
        }
        vf_store(h, vf_exp(vf_load(h)));
        for (size_t t = 0; t < n; t++)
            if (h[t] > dst[j0 + t])
                dst[j0 + t] = h[t];
    }
}

/* dst[j] += sum over the block's rows of P[j][r] for j < nb. */
static void fold_sum(const blk_ctx *c, size_t nb, float *dst)
{
    if (c->dot) {
        for (size_t r = 0; r < c->mq; r++)
            for (size_t j = 0; j < nb; j++)
                dst[j] += c->s[r * SROW + j];
        return;
    }
    for (size_t j = 0; j < nb; j++) {
        vf sv = vf_load(c->s + j * MQ);
        for (size_t v = 1; v < c->nrv; v++)
            sv = vf_add(sv, vf_load(c->s + j * MQ + v * VW));
        dst[j] += vf_hsum(sv);
    }
}

/* The second visit of accumulated attention (H2O): the block's rows' probabilities
 * exp(z - lse) of the first run's keys [from, to), summed over the rows into accum. The
 * logits are computed again, masked as the first sweep masked them (logits_block): keeping
 * them would take KVZ_KBLOCK_Q floats a key, and the first sweep's S already holds P.V's
 * probabilities, relative to running maxima that moved since. */
static void accum_visit(blk_ctx *c, const kvz_attn_job *job, size_t from, size_t to)
{
    for (size_t r = 0; r < c->nrv * VW; r++) /* padding rows and rows that see nothing add 0 */
        c->lse2[r] = (r < c->mq && c->l[r] > 0.0f) ? c->m[r] + logf(c->l[r]) : INFINITY;
    for (size_t kb = from; kb < to; kb += BK) {
        const size_t nb = to - kb < BK ? to - kb : BK;
        logits_block(c, job->k, job->kv_row_stride, job->dtype, kb, nb, 0);
        probs_from_lse(c, nb);
        fold_sum(c, nb, job->accum + kb);
    }
}

/* Copies the logits of the chunk keys among keys [kb, kb+nb) (gemm layout S[j][row]) into
 * the job's store, [key - chunk_begin][row]. */
static void store_chunk_logits(const blk_ctx *c, const kvz_attn_job *job, size_t kb, size_t nb)
{
    const size_t lo = kb > job->chunk_begin ? kb : job->chunk_begin;
    const size_t hi = kb + nb < job->chunk_end ? kb + nb : job->chunk_end;
    if (lo < hi)
        memcpy(job->zstore + (lo - job->chunk_begin) * MQ, c->s + (lo - kb) * MQ,
               (hi - lo) * MQ * sizeof(float));
}

/* KVzip's second visit of the chunk's keys, once the block's statistics are final: score[j] =
 * max(score[j], max over the block's mq rows of exp(z - the reduced set's log-sum-exp)).
 * keep_z: the gemm path kept the chunk's logits (store_chunk_logits), else they are computed
 * again. */
static inline __attribute__((always_inline)) void score_visit(blk_ctx *c, const kvz_attn_job *job, size_t mq,
                                                              int keep_z)
{
    const int dt = job->dtype;
    for (size_t r = 0; r < c->nrv * VW; r++)
        c->lse2[r] = (r < mq && c->l2[r] > 0.0f) ? c->m2[r] + logf(c->l2[r]) : INFINITY;
    for (size_t kb = job->chunk_begin; kb < job->chunk_end; kb += BK) {
        const size_t nb = job->chunk_end - kb < BK ? job->chunk_end - kb : BK;
        /* kept logits: every chunk key is visible to every row, nothing to mask */
        if (!keep_z)
            logits_block(c, job->k, job->kv_row_stride, dt, kb, nb, 0);
        float *const dst = job->score + (kb - job->chunk_begin);
        if (c->dot) {
            probs_from_lse(c, nb);
            fold_max_dot(c, nb, dst);
        } else {
            fold_max_exp(c, keep_z ? job->zstore + (kb - job->chunk_begin) * MQ : c->s, nb, dst);
        }
    }
}

#endif
