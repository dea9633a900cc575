/*
 * The AMX tile paths of the attention kernels at the amx level: the gemm way's Q.K and P.V
 * over bf16 K/V on AMX-BF16 tiles (logits_amx, pv_amx), and the transposed V tiles they read
 * (vt_block). Reached through the hooks of x86/attn_hooks_x86.h.
 */
#ifndef KVZ_X86_ATTN_AMX_TILES_H
#define KVZ_X86_ATTN_AMX_TILES_H

/* S[j][r] = scale * <bf16 q_r, k_j> on AMX tiles. A C tile is 16 keys x 16 rows of S, an A
 * tile 16 key rows (32 elements of x) read in place, a B tile 16 x pairs of qt ([x/2][row]);
 * keys and rows go in pairs of tiles (four C, two A, two B). A last pair of key tiles that
 * runs past nb is copied, zero padded, into the qr scratch: the rows after the block may
 * not exist. The tiles' sums are left unscaled: the softmax scales them as it reads them
 * (s_scale), for free inside its max and its exp's argument, where a pass of its own over
 * S, right after the tile stores, cost 4 % of the kernel. */
static void logits_amx(const blk_ctx *c, const uint16_t *kp, size_t ks, size_t nb)
{
    const size_t d = c->d, nrt2 = amx_row_tiles(c) / 2;
    const uint32_t *qb = (const uint32_t *)c->qt;
    float *S = c->s;
    for (size_t j0 = 0; j0 < nb; j0 += 32) {
        const char *k0 = (const char *)(kp + j0 * ks);
        size_t kst = ks * sizeof(uint16_t);
        if (j0 + 32 > nb) {
            uint16_t *pad = (uint16_t *)c->qr;
            for (size_t j = 0; j < 32; j++)
                if (j0 + j < nb)
                    memcpy(pad + j * d, kp + (j0 + j) * ks, d * sizeof(uint16_t));
                else
                    memset(pad + j * d, 0, d * sizeof(uint16_t));
            k0 = (const char *)pad, kst = d * sizeof(uint16_t);
        }
        for (size_t j = j0; j < j0 + 32; j++)
            prefetch_row(c, j);
        for (size_t rt = 0; rt < nrt2; rt++) {
            AMX_ZERO(0);
            AMX_ZERO(1);
            AMX_ZERO(2);
            AMX_ZERO(3);
            for (size_t x = 0; x < d; x += 32) {
                AMX_LOAD(4, k0 + x * sizeof(uint16_t), kst);
                AMX_LOAD(5, k0 + 16 * kst + x * sizeof(uint16_t), kst);
                AMX_LOAD(6, qb + x / 2 * MQ + rt * 32, MQ * sizeof(uint32_t));
                AMX_LOAD(7, qb + x / 2 * MQ + rt * 32 + 16, MQ * sizeof(uint32_t));
                AMX_DP(0, 4, 6);
                AMX_DP(1, 4, 7);
                AMX_DP(2, 5, 6);
                AMX_DP(3, 5, 7);
            }
            float *s0 = S + j0 * MQ + rt * 32;
            AMX_STORE(0, s0, MQ * sizeof(float));
            AMX_STORE(1, s0 + 16, MQ * sizeof(float));
            AMX_STORE(2, s0 + 16 * MQ, MQ * sizeof(float));
            AMX_STORE(3, s0 + 16 * MQ + 16, MQ * sizeof(float));
        }
    }
}

/* The V rows of a 32-key chunk (n <= 32 of them at vp, zeros after) as pv_amx's A tiles,
 * V transposed: tile t (elements x = 16t .. 16t+15) holds in row x - 16t the chunk's 32
 * values of element x in key order. Zipping pairs of keys per element, then transposing the
 * 16 x 16 words, builds it. The chunk's keys are j0 .. j0+31 of the block: it prefetches
 * those rows of the queue the caller set (the next block's V), as zip_v_pairs does. */
static void vt_chunk(const blk_ctx *c, uint16_t *dst, const uint16_t *vp, size_t vs, size_t n, size_t j0)
{
    for (size_t j = j0; j < j0 + 32; j++)
        prefetch_row(c, j);
    for (size_t t = 0; t < c->d / 16; t++) {
        vbp w[16];
        for (size_t i = 0; i < 16; i++) {
            const uint16_t *v0 = 2 * i < n ? vp + 2 * i * vs + 16 * t : NULL;
            w[i] = v0 ? vbp_zip(v0, 2 * i + 1 < n ? v0 + vs : NULL, 16) : vbp_set1(0);
        }
        vbp_transpose16(w);
        for (size_t x = 0; x < 16; x++)
            vbp_store((uint32_t *)(dst + t * 512 + x * 32), w[x]);
    }
}

/* The rows of a run of n_run that its 32-key chunk ch holds. */
static inline size_t chunk_rows(size_t n_run, size_t ch) { return n_run - ch * 32 < 32 ? n_run - ch * 32 : 32; }

/* The A tiles of the keys [kb, kb+nb) of a run (kb a multiple of 32; the run's n_run rows
 * at vr): from the job's store, which is filled as the job's query blocks first reach each
 * chunk (the later blocks, which see at least as many keys, reuse them), or without a store
 * built into scratch for this block alone. */
static const uint16_t *vt_block(blk_ctx *c, int run, const uint16_t *vr, size_t vs, size_t n_run, size_t kb,
                                size_t nb)
{
    const size_t cw = 32 * c->d, ch0 = kb / 32, ch1 = (kb + nb + 31) / 32;
    if (!c->vt) {
        uint16_t *dst = (uint16_t *)c->vf_;
        for (size_t ch = ch0; ch < ch1; ch++)
            vt_chunk(c, dst + (ch - ch0) * cw, vr + ch * 32 * vs, vs, chunk_rows(n_run, ch), (ch - ch0) * 32);
        return dst;
    }
    uint16_t *base = c->vt + c->vt_base[run] * cw;
    if (c->vt_done[run] < ch0) /* a window's first block: the chunks before it no later block sees */
        c->vt_done[run] = ch0;
    for (size_t ch; (ch = c->vt_done[run]) < ch1; c->vt_done[run]++)
        vt_chunk(c, base + ch * cw, vr + ch * 32 * vs, vs, chunk_rows(n_run, ch), ch * 32 - kb);
    return base + ch0 * cw;
}

/* O^T[x][r] = O^T[x][r]*alpha[r] + sum_j V[j][x] P[j][r] on AMX tiles: at the amx level the
 * block's O is kept transposed, [x][MQ] (written out by rows at the end), so that the
 * probabilities, already [key][row] in S, are the B operand as they stand: a B tile holds in
 * row i the pairs of keys 2i, 2i+1 for 16 rows, one pack per row vector and pair, no
 * transpose. The A tiles are V transposed (vt_block), C tiles 16 elements x 16 rows. Keys
 * past nb are zero pairs up to whole 32-key chunks; tiles go in pairs (four C, two A, two B):
 * an odd last row tile has zero probabilities, and its O^T columns are scratch. */
static void pv_amx(blk_ctx *c, const uint16_t *vt, size_t nb)
{
    const size_t d = c->d, nrt = c->nrv, nra = amx_row_tiles(c), nkc = (nb + 31) / 32, cw = 32 * d;
    uint32_t *pt = c->pp;
    /* B tile (kc, rt) at pt + (kc nra + rt) 256 */
    for (size_t kc = 0; kc < nkc; kc++)
        for (size_t rt = 0; rt < nra; rt++)
            for (size_t i = 0; i < 16; i++) {
                const size_t j = kc * 32 + 2 * i;
                const vf lo = rt < nrt && j < nb ? vf_load(c->s + j * MQ + rt * VW) : vf_zero();
                const vf hi = rt < nrt && j + 1 < nb ? vf_load(c->s + (j + 1) * MQ + rt * VW) : vf_zero();
                vbp_store(pt + (kc * nra + rt) * 256 + i * 16, vbp_pack(lo, hi));
            }
    /* the rescale, a row vector of columns at a time: once the running maxima settle, most
       rows keep alpha = 1 */
    for (size_t rt = 0; rt < nrt; rt++) {
        int ones = 1;
        for (size_t r = 0; r < VW; r++)
            ones &= c->alpha[rt * VW + r] == 1.0f;
        if (ones)
            continue;
        const vf al = vf_load(c->alpha + rt * VW);
        for (size_t x = 0; x < d; x++)
            vf_store(c->o + x * MQ + rt * VW, vf_mul(vf_load(c->o + x * MQ + rt * VW), al));
    }
    const size_t ost = MQ * sizeof(float);
    for (size_t xp = 0; xp < d / 32; xp++)
        for (size_t rp = 0; rp < nra / 2; rp++) {
            float *o0 = c->o + 32 * xp * MQ + 32 * rp, *o1 = o0 + 16 * MQ;
            AMX_LOAD(0, o0, ost);
            AMX_LOAD(1, o0 + 16, ost);
            AMX_LOAD(2, o1, ost);
            AMX_LOAD(3, o1 + 16, ost);
            for (size_t kc = 0; kc < nkc; kc++) {
                AMX_LOAD(4, vt + kc * cw + 2 * xp * 512, 64);
                AMX_LOAD(5, vt + kc * cw + (2 * xp + 1) * 512, 64);
                AMX_LOAD(6, pt + (kc * nra + 2 * rp) * 256, 64);
                AMX_LOAD(7, pt + (kc * nra + 2 * rp + 1) * 256, 64);
                AMX_DP(0, 4, 6);
                AMX_DP(1, 4, 7);
                AMX_DP(2, 5, 6);
                AMX_DP(3, 5, 7);
            }
            AMX_STORE(0, o0, ost);
            AMX_STORE(1, o0 + 16, ost);
            AMX_STORE(2, o1, ost);
            AMX_STORE(3, o1 + 16, ost);
        }
}

#endif
