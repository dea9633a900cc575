/*
 * The products of the probabilities with V: O = O alpha + P.V for the block's rows, from a
 * register tile shared by both layouts of S; on the dot path in pieces that keep V in L1.
 */
#ifndef KVZ_TMPL_ATTN_PV_H
#define KVZ_TMPL_ATTN_PV_H

/* O[r] = O[r]*alpha[r] + sum_j P[j][r] V[j] for the block's rows. */
static inline __attribute__((always_inline)) void pv_body(blk_ctx *c, const void *vp, size_t vs, size_t nb,
                                                          vload_fn ld)
{
    const size_t mq = c->mq, dpv = c->dpv, dp = c->dp, sj = c->sj, sr = c->sr;
    const float *S = c->s;
    size_t r = 0;
    /* the dot path's padding rows ride along in the tile (their S rows hold logits of zero
       queries, their O rows are scratch): cheaper than the single-row loop */
    const size_t mqt = c->dot && c->mq_tile == PV_RT ? c->mq_tile : mq;
    for (; r + PV_RT <= mqt; r += PV_RT) {
        size_t x = 0;
        for (; x + PV_CV <= dpv; x += PV_CV) {
            vf acc[PV_RT][PV_CV];
#pragma GCC unroll 8
            for (int a = 0; a < PV_RT; a++) {
                const vf al = vf_set1(c->alpha[r + a]);
#pragma GCC unroll 8
                for (int b = 0; b < PV_CV; b++)
                    acc[a][b] = vf_mul(vf_load(c->o + (r + a) * dp + (x + b) * VW), al);
            }
            for (size_t j = 0; j < nb; j++) {
                if (r == 0 && x == 0) /* the dot path's V prefetch (nothing queued on the gemm path) */
                    prefetch_row(c, j);
                vf vv[PV_CV];
#pragma GCC unroll 8
                for (int b = 0; b < PV_CV; b++)
                    vv[b] = ld(vp, j * vs + (x + b) * VW);
#pragma GCC unroll 8
                for (int a = 0; a < PV_RT; a++) {
                    const vf p = vf_set1(S[j * sj + (r + a) * sr]);
#pragma GCC unroll 8
                    for (int b = 0; b < PV_CV; b++)
                        acc[a][b] = vf_fma(p, vv[b], acc[a][b]);
                }
            }
#pragma GCC unroll 8
            for (int a = 0; a < PV_RT; a++)
#pragma GCC unroll 8
                for (int b = 0; b < PV_CV; b++)
                    vf_store(c->o + (r + a) * dp + (x + b) * VW, acc[a][b]);
        }
        for (; x < dpv; x++) {
            vf acc[PV_RT];
#pragma GCC unroll 8
            for (int a = 0; a < PV_RT; a++)
                acc[a] = vf_mul(vf_load(c->o + (r + a) * dp + x * VW), vf_set1(c->alpha[r + a]));
            for (size_t j = 0; j < nb; j++) {
                const vf vv = ld(vp, j * vs + x * VW);
#pragma GCC unroll 8
                for (int a = 0; a < PV_RT; a++)
                    acc[a] = vf_fma(vf_set1(S[j * sj + (r + a) * sr]), vv, acc[a]);
            }
#pragma GCC unroll 8
            for (int a = 0; a < PV_RT; a++)
                vf_store(c->o + (r + a) * dp + x * VW, acc[a]);
        }
    }
    for (; r < mq; r++) /* (row 0 here: no tile ran, the V prefetch is this loop's) */
        for (size_t x = 0; x < dpv; x++) {
            vf acc = vf_mul(vf_load(c->o + r * dp + x * VW), vf_set1(c->alpha[r]));
            for (size_t j = 0; j < nb; j++) {
                if (r == 0 && x == 0)
                    prefetch_row(c, j);
                acc = vf_fma(vf_set1(S[j * sj + r * sr]), ld(vp, j * vs + x * VW), acc);
            }
            vf_store(c->o + r * dp + x * VW, acc);
        }
}

static void pv_update(blk_ctx *c, rows_ref v, size_t nb)
{
    if (v.dt == KVZ_KDT_BF16)
        pv_body(c, v.p, v.stride, nb, ld_bf16);
    else if (v.dt == KVZ_KDT_F16)
        pv_body(c, v.p, v.stride, nb, ld_f16);
    else
        pv_body(c, v.p, v.stride, nb, ld_f32);
}

/* P.V of a dot-path block (keys [kb, kb+nb) of the run at v), in pieces of BK_PV keys: the
 * first piece rescales O by alpha, the later ones add to it. The prefetch queue runs on
 * through the rest of the block's V into the next block's K (nk rows at knext). */
static void pv_dot(blk_ctx *c, const char *v, ptrdiff_t vst, int dt, size_t kb, size_t nb, const char *knext,
                   size_t nk)
{
    float *const s = c->s;
    for (size_t j0 = 0; j0 < nb; j0 += BK_PV) {
        const size_t n = nb - j0 < BK_PV ? nb - j0 : BK_PV;
        pf_queue(c, v + kb * c->pf_stride, nb, knext, nk, PF_AHEAD + j0);
        c->s = s + j0; /* S seen from key j0 on (dot layout: keys are contiguous in a row) */
        if (!arch_pv_dot(c, v, vst, kb, j0, n))
            pv_update(c, key_rows(c, c->vf_, v, vst, dt, kb + j0, n), n);
        for (size_t r = 0; r < c->mq_tile; r++)
            c->alpha[r] = 1.0f;
    }
    c->s = s;
}

#endif
