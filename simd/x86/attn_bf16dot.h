/*
 * The bf16 pair-product paths of the attention kernels at the x86 levels with AVX512_BF16
 * (avx512bf16, amx): over bf16 K/V, the gemm way's Q.K and P.V (logits_gemm_bf16, pv_bf16)
 * and the dot way's "bp" path for decode (logits_dot_bp, pv_dot_bp). The generic stages reach
 * them through the hooks of x86/attn_hooks_x86.h.
 */
#ifndef KVZ_X86_ATTN_BF16DOT_H
#define KVZ_X86_ATTN_BF16DOT_H

/* The row vectors (16-row tiles) the AMX products cover: logits_amx and pv_amx take row tiles
 * in pairs, so an odd last tile gets a partner of zero queries and scratch O rows. */
static inline size_t amx_row_tiles(const blk_ctx *c) { return (c->nrv + 1) / 2 * 2; }

/* The query rows rounded to bf16: on the gemm path unscaled as pairs [x/2][row], on the bp
 * path unscaled in tiles of 4 rows, [tile][x/8][row % 4][4 pairs] (both scale the logits
 * when they store them), on the other dot paths as pre-scaled f32 rows. */
static void load_queries_bf16(blk_ctx *c, const float *q, ptrdiff_t qhs, ptrdiff_t qrs, float scale)
{
    uint32_t *qb = (uint32_t *)c->qt;
    const size_t lanes = c->dot ? c->mq_tile : (c->amx ? amx_row_tiles(c) : c->nrv) * VW;
    /* a row rounded with the level's vector conversion (nearest even, as kvz_f32_to_bf16),
       then placed: decode packs its queries once per key slice, so this is not negligible */
    uint16_t h[KVZ_KMAX_HEAD_DIM];
    for (size_t r = 0; r < lanes; r++) {
        const size_t gr = c->r0 + r;
        if (r < c->mq)
            cvt_from_f32(h, KVZ_KDT_BF16,
                         q + (ptrdiff_t)(gr % c->group) * qhs + (ptrdiff_t)(gr / c->group) * qrs, c->d);
        else
            memset(h, 0, c->d * sizeof *h);
        if (c->bpdot) { /* 4 pairs (16 bytes) per 8 elements */
            uint32_t *dst = qb + r / 4 * (c->d / 8) * 16 + r % 4 * 4;
            for (size_t x = 0; x < c->d; x += 8)
                memcpy(dst + x / 8 * 16, h + x, 8 * sizeof *h);
        } else if (c->dot) {
            float *dst = c->qr + r * c->dp;
            for (size_t x = 0; x < c->dpv * VW; x++)
                dst[x] = x < c->d ? kvz_bf16_to_f32(h[x]) * scale : 0.0f;
        } else { /* d is even here (bdot) */
            for (size_t x = 0; x < c->d; x += 2)
                memcpy(qb + x / 2 * MQ + r, h + x, 2 * sizeof *h);
        }
    }
}

/* acc[a*NB + b] += sum over x < n of pair(a, x) . B(x, b): the register tile of both bf16
 * gemm products (Q.K: keys x row vectors; P.V: rows x vectors of V elements). pair(a, x)
 * is the 32-bit word at byte offset x*astep from ap[a] (read unaligned), broadcast against
 * the nbv <= NB vectors of pairs B(x, b) at bp + x*bstep + b*VW. */
static inline __attribute__((always_inline)) void bp_tile(vf *acc, int NA, int NB, const void *const *ap,
                                                          size_t astep, const uint32_t *bp, size_t bstep,
                                                          size_t n, size_t nbv)
{
    if (nbv == (size_t)NB) {
        for (size_t x = 0; x < n; x++) {
            vbp bv[8];
#pragma GCC unroll 8
            for (int b = 0; b < NB; b++)
                bv[b] = vbp_load(bp + x * bstep + b * VW);
#pragma GCC unroll 8
            for (int a = 0; a < NA; a++) {
                uint32_t pair;
                memcpy(&pair, (const char *)ap[a] + x * astep, sizeof pair);
                const vbp av = vbp_set1(pair);
#pragma GCC unroll 8
                for (int b = 0; b < NB; b++)
                    acc[a * NB + b] = vbp_dot(acc[a * NB + b], av, bv[b]);
            }
        }
    } else { /* the last, partial vectors */
        for (size_t x = 0; x < n; x++)
            for (size_t b = 0; b < nbv; b++) {
                const vbp bv = vbp_load(bp + x * bstep + b * VW);
                for (int a = 0; a < NA; a++) {
                    uint32_t pair;
                    memcpy(&pair, (const char *)ap[a] + x * astep, sizeof pair);
                    acc[a * NB + b] = vbp_dot(acc[a * NB + b], vbp_set1(pair), bv);
                }
            }
    }
}

/* S[j][r] = scale * <bf16 q_r, k_j> for nb bf16 keys at kp read in place: each key's
 * elements (2x, 2x+1) are one 32-bit pair, broadcast against the rows' pairs. */
static void logits_gemm_bf16(const blk_ctx *c, const uint16_t *kp, size_t ks, size_t nb)
{
    const size_t np = c->d / 2, nrv = c->nrv;
    const uint32_t *qb = (const uint32_t *)c->qt;
    const vf sc = vf_set1(c->scale);
    float *S = c->s;
    size_t j = 0;
    for (; j < nb; j += TILE_J) {
        const size_t nj = nb - j < TILE_J ? nb - j : TILE_J;
        const void *kr[TILE_J];
        for (size_t a = 0; a < TILE_J; a++) { /* a short tile repeats its last key */
            kr[a] = kp + (j + (a < nj ? a : nj - 1)) * ks;
            prefetch_row(c, j + a);
        }
        for (size_t v = 0; v < nrv; v += TILE_RV) {
            const size_t nbv = nrv - v < TILE_RV ? nrv - v : TILE_RV;
            vf acc[TILE_J * TILE_RV];
#pragma GCC unroll 16
            for (int e = 0; e < TILE_J * TILE_RV; e++)
                acc[e] = vf_zero();
            /* key pairs 4 bytes apart along a row, row pairs MQ words apart in qt */
            bp_tile(acc, TILE_J, TILE_RV, kr, 4, qb + v * VW, MQ, np, nbv);
            for (size_t a = 0; a < nj; a++)
                for (size_t b = 0; b < nbv; b++)
                    vf_store(S + (j + a) * MQ + (v + b) * VW, vf_mul(acc[a * TILE_RV + b], sc));
        }
    }
}

/* The V rows of nb keys zipped in pairs for P.V by pair products, vz[i][x] = (V[2i][x],
 * V[2i+1][x]) with rows dp words apart (an odd last key pairs with zeros), prefetching
 * along the queue the caller set: the B operand of pv_bf16. */
static void zip_v_pairs(const blk_ctx *c, uint32_t *vz, const uint16_t *vp, size_t vs, size_t nb)
{
    const size_t d = c->d, dp = c->dp, dpv = c->dpv;
    for (size_t i = 0; i < (nb + 1) / 2; i++) {
        const uint16_t *v0 = vp + 2 * i * vs, *v1 = 2 * i + 1 < nb ? v0 + vs : NULL;
        prefetch_row(c, 2 * i), prefetch_row(c, 2 * i + 1);
        size_t x = 0;
        for (; x + 32 <= d; x += 32)
            vbp_zip32(vz + i * dp + x, v0 + x, v1 ? v1 + x : NULL);
        for (; x < dpv * VW; x += VW)
            vbp_store(vz + i * dp + x, vbp_zip(v0 + x, v1 ? v1 + x : NULL, x + VW <= d ? VW : d - x));
    }
}

/* O[r] = O[r]*alpha[r] + sum_j P[j][r] V[j] by pair dot products: the probabilities of keys
 * (2i, 2i+1) become one bf16 pair per row, the two V rows one vector of pairs per 16
 * elements (an odd last key pairs with zeros). */
static void pv_bf16(blk_ctx *c, const uint16_t *vp, size_t vs, size_t nb)
{
    const size_t np = (nb + 1) / 2, nrv = c->nrv, dp = c->dp, dpv = c->dpv;
    uint32_t *pb = c->pp, *vz = (uint32_t *)c->vf_;
    for (size_t i = 0; i < np; i++) {
        const int pair = 2 * i + 1 < nb;
        for (size_t v = 0; v < nrv; v++)
            vbp_store(pb + i * MQ + v * VW,
                      vbp_pack(vf_load(c->s + 2 * i * MQ + v * VW),
                               pair ? vf_load(c->s + (2 * i + 1) * MQ + v * VW) : vf_zero()));
    }
    zip_v_pairs(c, vz, vp, vs, nb);
    /* whole tiles of PV_RT rows: rows past mq up to the row vectors are scratch */
    const size_t mqt = (c->mq + PV_RT - 1) / PV_RT * PV_RT;
    for (size_t r = 0; r < mqt; r += PV_RT) {
        for (size_t x = 0; x < dpv; x += PV_CV) {
            const size_t ncv = dpv - x < PV_CV ? dpv - x : PV_CV;
            vf acc[PV_RT * PV_CV];
            const void *pr[PV_RT];
#pragma GCC unroll 8
            for (int a = 0; a < PV_RT; a++) {
                const vf al = vf_set1(c->alpha[r + a]);
                pr[a] = pb + r + a;
#pragma GCC unroll 8
                for (int b = 0; b < PV_CV; b++)
                    acc[a * PV_CV + b] =
                        (size_t)b < ncv ? vf_mul(vf_load(c->o + (r + a) * dp + (x + b) * VW), al) : vf_zero();
            }
            /* a row's probability pairs MQ words apart, the zipped V rows dp words apart */
            bp_tile(acc, PV_RT, PV_CV, pr, MQ * sizeof(uint32_t), vz + x * VW, dp, np, ncv);
            for (int a = 0; a < PV_RT; a++)
                for (size_t b = 0; b < ncv; b++)
                    vf_store(c->o + (r + a) * dp + (x + b) * VW, acc[a * PV_CV + b]);
        }
    }
}

/* Decode logits over bf16 K by pair dot products, into S[r][j]. A query tile holds 4 rows'
 * pairs in the four 128-bit lanes of a vector (8 elements of d per vector) and a key's
 * matching 8 elements are broadcast to all four lanes, so one pair dot product serves 4
 * rows; 4 keys' vectors then reduce to one vector (lane r: row r) in a few shuffles, and 4
 * of those to 4 rows of 16 logits (the f32 dot path needs a 16x16 transpose per row). */

/* Row sums of keys k[0..3] against NT query tiles (tile t at qt + t*qts): w[t] holds in
 * lane r row r's sums of the four keys. Each key's broadcast serves every tile, and two
 * partial sums per key and tile (even and odd chunks) keep 8 or more dot-product chains in
 * flight. */
static inline __attribute__((always_inline)) void
logits_bp_keys4(const uint32_t *qt, size_t qts, const uint16_t *const *k, size_t nch, int NT, vf *w)
{
    vf a[2][4][2];
#pragma GCC unroll 2
    for (int u = 0; u < NT; u++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            a[u][t][0] = a[u][t][1] = vf_zero();
#pragma GCC unroll 16
    for (size_t ch = 0; ch < nch; ch += 2)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            vbp qv[2];
#pragma GCC unroll 2
            for (int u = 0; u < NT; u++)
                qv[u] = vbp_load(qt + u * qts + (ch + h) * 16);
#pragma GCC unroll 4
            for (int t = 0; t < 4; t++) {
                const vbp kv = vbp_bcast4(k[t] + (ch + h) * 8);
#pragma GCC unroll 2
                for (int u = 0; u < NT; u++)
                    a[u][t][h] = vbp_dot(a[u][t][h], kv, qv[u]);
            }
        }
#pragma GCC unroll 2
    for (int u = 0; u < NT; u++) {
        vf s[4];
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            s[t] = vf_add(a[u][t][0], a[u][t][1]);
        w[u] = vbp_sum_keys4(s);
    }
}

/* NT tiles of 4 rows (mq_tile = 4 NT). */
static inline __attribute__((always_inline)) void logits_bp_body(const blk_ctx *c, const uint16_t *kp,
                                                                 size_t ks, size_t nb, size_t nch, int NT)
{
    const uint32_t *qt = (const uint32_t *)c->qt;
    const vf sc = vf_set1(c->scale);
    size_t j = 0;
    for (; j < nb; j += VW) {
        const size_t nk = nb - j < VW ? nb - j : VW;
        vf w[4][2], out[4];
        for (size_t g = 0; g < 4; g++) {
            if (4 * g >= nk) {
                w[g][0] = w[g][1] = vf_zero();
                continue;
            }
            const uint16_t *k[4];
            for (size_t t = 0; t < 4; t++) { /* a short group repeats its last key */
                const size_t jt = 4 * g + t < nk ? 4 * g + t : nk - 1;
                k[t] = kp + ilv_key(c, j + jt) * ks;
                prefetch_row(c, j + 4 * g + t);
            }
            logits_bp_keys4(qt, nch * 16, k, nch, NT, w[g]);
        }
        for (int u = 0; u < NT; u++) {
            const vf wu[4] = {w[0][u], w[1][u], w[2][u], w[3][u]};
            vbp_rows4(wu, out);
            for (int a = 0; a < 4; a++)
                vf_store(c->s + (u * 4 + a) * SROW + j, vf_mul(out[a], sc));
        }
    }
    for (size_t r = 0; r < c->mq; r++) /* keys past nb: -inf up to whole vectors */
        for (size_t jj = nb; jj < j; jj++)
            c->s[r * SROW + jj] = -INFINITY;
}

/* Head size 128 gets a chunk loop of constant length; one tile or two (5 to 8 rows). */
static void logits_dot_bp(const blk_ctx *c, const uint16_t *kp, size_t ks, size_t nb)
{
    const int two = c->mq_tile > 4;
    if (c->d == 128)
        two ? logits_bp_body(c, kp, ks, nb, 16, 2) : logits_bp_body(c, kp, ks, nb, 16, 1);
    else
        two ? logits_bp_body(c, kp, ks, nb, c->d / 8, 2) : logits_bp_body(c, kp, ks, nb, c->d / 8, 1);
}

/* P.V on the bp path takes one of two ways. At the amx level (Intel cores with AMX, where a
 * vdpbf16ps (32 products) issues once per 2.1 cycles and an fp32 FMA (16) every 0.5) it
 * runs fp32 FMAs: each 32 bf16 of a V row split into their even and odd elements as f32 (a
 * shift and a mask, no shuffle; exact), against the fp32 probabilities. At avx512bf16 (Zen
 * 4, say, where a vdpbf16ps issues as often as an FMA and does twice its products) it runs
 * pair products: the probabilities rounded to bf16 pairs (keys 2i, 2i+1) against two V
 * rows interleaved by vpunpck{l,h}wd. bp_slot(x): where element x of an O row lives in
 * the way's order, until the job's output is written. */
#if KVZ_ATTN_AMX
/* in each 32 elements, the 16 even ones, then the 16 odd ones */
static inline size_t bp_slot(size_t x)
{
    const size_t y = x % 32;
    return x - y + (y % 2 ? 16 + y / 2 : y / 2);
}
#else
/* in each 32 elements, the 16 of the zip_lo halves (8k..8k+3 at 4k..4k+3), then the 16 of
 * the zip_hi halves */
static inline size_t bp_slot(size_t x)
{
    const size_t y = x % 32, k = y / 8, i = y % 8;
    return x - y + (i < 4 ? 4 * k + i : 16 + 4 * k + i - 4);
}
#endif

/* O rows [0, R), elements [x0, x0 + 32 NB) (bp_slot order) += P.V, with R x 2NB <= 16
 * accumulators; rows past mq start from zero (their alpha is not set). */
static inline __attribute__((always_inline)) void pv_bp_tile(blk_ctx *c, const uint16_t *vp, size_t vs,
                                                             size_t nb, size_t x0, int R, int NB)
{
    const size_t dp = c->dp;
    vf acc[8][4];
#pragma GCC unroll 8
    for (int a = 0; a < R; a++) {
        const vf al = vf_set1((size_t)a < c->mq ? c->alpha[a] : 0.0f);
#pragma GCC unroll 4
        for (int e = 0; e < 2 * NB; e++)
            acc[a][e] = vf_mul(vf_load(c->o + a * dp + x0 + e * 16), al);
    }
#if KVZ_ATTN_AMX
    for (size_t j = 0; j < nb; j++) {
        const uint16_t *v = vp + ilv_key(c, j) * vs;
        if (x0 == 0)
            prefetch_row(c, j);
        vf z[4];
#pragma GCC unroll 2
        for (int b = 0; b < NB; b++) {
            const vbp a = vbp_load(v + x0 + 32 * b);
            z[2 * b] = vbp_even_f32(a);
            z[2 * b + 1] = vbp_odd_f32(a);
        }
#pragma GCC unroll 8
        for (int a = 0; a < R; a++) {
            /* padding rows (a >= mq) read row 0's probabilities: their O is never read */
            const vf p = vf_set1(c->s[((size_t)a < c->mq ? a : 0) * SROW + j]);
#pragma GCC unroll 4
            for (int e = 0; e < 2 * NB; e++)
                acc[a][e] = vf_fma(p, z[e], acc[a][e]);
        }
    }
#else
    const uint32_t *pb = c->pp; /* the pairs of pv_dot_bp */
    for (size_t i = 0; i < (nb + 1) / 2; i++) {
        /* an odd last key pairs with itself under a probability of zero */
        const uint16_t *v0 = vp + ilv_key(c, 2 * i) * vs, *v1 = 2 * i + 1 < nb ? v0 + vs : v0;
        if (x0 == 0)
            prefetch_row(c, 2 * i), prefetch_row(c, 2 * i + 1);
        vbp z[4];
#pragma GCC unroll 2
        for (int b = 0; b < NB; b++) {
            const vbp a0 = vbp_load(v0 + x0 + 32 * b), a1 = vbp_load(v1 + x0 + 32 * b);
            z[2 * b] = vbp_zip_lo(a0, a1);
            z[2 * b + 1] = vbp_zip_hi(a0, a1);
        }
#pragma GCC unroll 8
        for (int a = 0; a < R; a++) {
            const vbp p = vbp_set1(pb[a * (BK / 2) + i]);
#pragma GCC unroll 4
            for (int e = 0; e < 2 * NB; e++)
                acc[a][e] = vbp_dot(acc[a][e], p, z[e]);
        }
    }
#endif
#pragma GCC unroll 8
    for (int a = 0; a < R; a++)
#pragma GCC unroll 4
        for (int e = 0; e < 2 * NB; e++)
            vf_store(c->o + a * dp + x0 + e * 16, acc[a][e]);
}

/* O[r] = O[r]*alpha[r] + sum_j P[r][j] V[j] over bf16 V on the bp path (see pv_bp_tile). All
 * rows (4 or 8) share each V vector's split or interleave: 4 rows take 64 elements per
 * sweep, 8 rows 32. */
static void pv_dot_bp(blk_ctx *c, const uint16_t *vp, size_t vs, size_t nb)
{
#if !KVZ_ATTN_AMX
    for (size_t r = 0; r < c->mq_tile; r++)
        for (size_t j = 0; j < nb; j += 32)
            vbp_pack32((uint16_t *)(c->pp + r * (BK / 2) + j / 2), c->s + r * SROW + j,
                       r < c->mq ? (nb - j < 32 ? nb - j : 32) : 0);
#endif
    if (c->mq_tile > 4) {
        for (size_t x0 = 0; x0 < c->d; x0 += 32)
            pv_bp_tile(c, vp, vs, nb, x0, 8, 1);
        return;
    }
    for (size_t x0 = 0; x0 < c->d; x0 += 64) {
        if (x0 + 64 <= c->d)
            pv_bp_tile(c, vp, vs, nb, x0, 4, 2);
        else
            pv_bp_tile(c, vp, vs, nb, x0, 4, 1);
    }
}

#endif
