/*
 * The logits of a block, S = Q.K (the queries pre-scaled): by the gemm way (many rows, compute
 * bound) or the dot way (few rows, memory bound), then masked with -inf where a row may not
 * look (causality and the sliding window).
 */
#ifndef KVZ_TMPL_ATTN_LOGITS_H
#define KVZ_TMPL_ATTN_LOGITS_H

/* S[j][r] = <q_r, k_j> (q pre-scaled) for the nb keys at kp, by the gemm way. */
static void logits_gemm(const blk_ctx *c, const float *kp, size_t ks, size_t nb)
{
    const size_t d = c->d, nrv = c->nrv;
    float *S = c->s;
    size_t j = 0;
    for (; j + TILE_J <= nb; j += TILE_J) {
        size_t v = 0;
        for (; v + TILE_RV <= nrv; v += TILE_RV) {
            vf acc[TILE_J][TILE_RV];
#pragma GCC unroll 8
            for (int a = 0; a < TILE_J; a++)
#pragma GCC unroll 8
                for (int b = 0; b < TILE_RV; b++)
                    acc[a][b] = vf_zero();
            for (size_t x = 0; x < d; x++) {
                vf qv[TILE_RV];
#pragma GCC unroll 8
                for (int b = 0; b < TILE_RV; b++)
                    qv[b] = vf_load(c->qt + x * MQ + (v + b) * VW);
#pragma GCC unroll 8
                for (int a = 0; a < TILE_J; a++) {
                    const vf kv = vf_set1(kp[(j + a) * ks + x]);
#pragma GCC unroll 8
                    for (int b = 0; b < TILE_RV; b++)
                        acc[a][b] = vf_fma(kv, qv[b], acc[a][b]);
                }
            }
#pragma GCC unroll 8
            for (int a = 0; a < TILE_J; a++)
#pragma GCC unroll 8
                for (int b = 0; b < TILE_RV; b++)
                    vf_store(S + (j + a) * MQ + (v + b) * VW, acc[a][b]);
        }
        for (; v < nrv; v++) {
            vf acc[TILE_J];
#pragma GCC unroll 8
            for (int a = 0; a < TILE_J; a++)
                acc[a] = vf_zero();
            for (size_t x = 0; x < d; x++) {
                const vf qv = vf_load(c->qt + x * MQ + v * VW);
#pragma GCC unroll 8
                for (int a = 0; a < TILE_J; a++)
                    acc[a] = vf_fma(vf_set1(kp[(j + a) * ks + x]), qv, acc[a]);
            }
#pragma GCC unroll 8
            for (int a = 0; a < TILE_J; a++)
                vf_store(S + (j + a) * MQ + v * VW, acc[a]);
        }
    }
    for (; j < nb; j++)
        for (size_t v = 0; v < nrv; v++) {
            vf acc = vf_zero();
            for (size_t x = 0; x < d; x++)
                acc = vf_fma(vf_set1(kp[j * ks + x]), vf_load(c->qt + x * MQ + v * VW), acc);
            vf_store(S + j * MQ + v * VW, acc);
        }
}

/* Dot products of rows [r0, r0+DOT_TILE) with keys kj0 and kj1, into tmp[r][t] and
 * tmp[r][t+1]: two keys share each query load and give 2 x DOT_TILE independent FMA chains
 * (one key's 4 chains left the FMA latency exposed), and nv, a constant for the common
 * head size, lets the loop unroll completely. */
static inline __attribute__((always_inline)) void dot_key_tile2(const blk_ctx *c, size_t r0, const void *kb,
                                                                size_t kj0, size_t kj1, vload_fn ld, vf *tmp,
                                                                size_t t, size_t nv)
{
    vf a0[DOT_TILE], a1[DOT_TILE];
#pragma GCC unroll 4
    for (int r = 0; r < DOT_TILE; r++)
        a0[r] = a1[r] = vf_zero();
    const float *q0 = c->qr + r0 * c->dp;
#pragma GCC unroll 16
    for (size_t x = 0; x < nv * VW; x += VW) {
        const vf k0 = ld(kb, kj0 + x), k1 = ld(kb, kj1 + x);
#pragma GCC unroll 4
        for (int r = 0; r < DOT_TILE; r++) {
            const vf q = vf_load(q0 + r * c->dp + x);
            a0[r] = vf_fma(q, k0, a0[r]);
            a1[r] = vf_fma(q, k1, a1[r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < DOT_TILE; r++) {
        tmp[r * VW + t] = a0[r];
        tmp[r * VW + t + 1] = a1[r];
    }
}

/* The same by the dot way, into S[r][j]: VW keys at a time, reduced by one
 * transpose-and-add per row; the row's tail up to whole vectors is -inf. */
static inline __attribute__((always_inline)) void logits_dot_body(const blk_ctx *c, const void *kp, size_t ks,
                                                                  size_t nb, vload_fn ld, size_t nv)
{
    const size_t mq = c->mq;
    /* one spare slot: with VW == 1 (a level without vectors) the pair's second key repeats
       the first, its row-r result lands where row r+1's is written next, the last in the spare */
    vf tmp[DOT_TILE * VW + 1];
    size_t j = 0;
    for (; j + VW <= nb; j += VW) {
        size_t r = 0;
        for (; r + DOT_TILE <= c->mq_tile; r += DOT_TILE) {
            for (size_t t = 0; t < VW; t += 2) {
                const size_t t1 = t + 1 < VW ? t + 1 : t;
                if (r == 0)
                    prefetch_row(c, j + t), prefetch_row(c, j + t1);
                dot_key_tile2(c, r, kp, (j + t) * ks, (j + t1) * ks, ld, tmp, t, nv);
            }
#pragma GCC unroll 4
            for (int a = 0; a < DOT_TILE; a++)
                vf_store(c->s + (r + a) * SROW + j, vf_hsum_vw(tmp + a * VW));
        }
        for (; r < mq; r++) {
            const float *qr = c->qr + r * c->dp;
            for (size_t t = 0; t < VW; t++) {
                vf a0 = vf_zero();
                for (size_t x = 0; x < nv * VW; x += VW)
                    a0 = vf_fma(vf_load(qr + x), ld(kp, (j + t) * ks + x), a0);
                tmp[t] = a0;
            }
            vf_store(c->s + r * SROW + j, vf_hsum_vw(tmp));
        }
    }
    for (size_t r = 0; r < mq; r++) {
        const float *qr = c->qr + r * c->dp;
        float *T = c->s + r * SROW;
        size_t jj = j;
        for (; jj < nb; jj++) {
            vf a0 = vf_zero();
            for (size_t x = 0; x < nv * VW; x += VW)
                a0 = vf_fma(vf_load(qr + x), ld(kp, jj * ks + x), a0);
            T[jj] = vf_hsum(a0);
        }
        for (; jj < (nb + VW - 1) / VW * VW; jj++)
            T[jj] = -INFINITY;
    }
}

/* Head size 128 (Llama, Qwen, Mistral) gets a loop of constant length. */
#define LOGITS_DOT(c, kp, ks, nb, ld)                                                                          \
    ((c)->dpv == 128 / VW ? logits_dot_body(c, kp, ks, nb, ld, 128 / VW)                                       \
                          : logits_dot_body(c, kp, ks, nb, ld, (c)->dpv))

static void logits_dot_f32(const blk_ctx *c, const void *kp, size_t ks, size_t nb)
{
    LOGITS_DOT(c, kp, ks, nb, ld_f32);
}
static void logits_dot_bf16(const blk_ctx *c, const void *kp, size_t ks, size_t nb)
{
    LOGITS_DOT(c, kp, ks, nb, ld_bf16);
}
static void logits_dot_f16(const blk_ctx *c, const void *kp, size_t ks, size_t nb)
{
    LOGITS_DOT(c, kp, ks, nb, ld_f16);
}

/* S for the keys [kb, kb+nb) of the run at k, by the way the block's layout takes. */
static void logits_fill(blk_ctx *c, const void *k, ptrdiff_t kst, int dt, size_t kb, size_t nb)
{
    if (arch_logits(c, k, kst, kb, nb))
        return;
    const rows_ref kr = key_rows(c, c->kf, k, kst, dt, kb, nb);
    if (!c->dot)
        logits_gemm(c, kr.p, kr.stride, nb);
    else if (kr.dt == KVZ_KDT_BF16)
        logits_dot_bf16(c, kr.p, kr.stride, nb);
    else if (kr.dt == KVZ_KDT_F16)
        logits_dot_f16(c, kr.p, kr.stride, nb);
    else
        logits_dot_f32(c, kr.p, kr.stride, nb);
}

/* Fills S for the keys [kb, kb+nb) of the run at k, whose first key has index kb0 in the
 * job's key numbering, and masks what each row may not see with -inf. */
static void logits_block(blk_ctx *c, const void *k, ptrdiff_t kst, int dt, size_t kb, size_t nb, size_t kb0)
{
    logits_fill(c, k, kst, dt, kb, nb);
    kb += kb0;
    const ptrdiff_t last = (ptrdiff_t)(kb + nb) - 1;
    if (last > row_limit(c, 0))
        for (size_t r = 0; r < c->mq; r++) {
            const ptrdiff_t lim = row_limit(c, r);
            for (ptrdiff_t j = lim + 1 - (ptrdiff_t)kb; j < (ptrdiff_t)nb; j++)
                if (j >= 0)
                    c->s[(size_t)j * c->sj + r * c->sr] = -INFINITY;
        }
    /* a sliding window's lower edge: the last row starts latest */
    if ((ptrdiff_t)kb < row_first(c, c->mq - 1))
        for (size_t r = 0; r < c->mq; r++) {
            const ptrdiff_t end = row_first(c, r) - (ptrdiff_t)kb;
            for (ptrdiff_t j = 0; j < end && j < (ptrdiff_t)nb; j++)
                c->s[(size_t)j * c->sj + r * c->sr] = -INFINITY;
        }
}

#endif
