/*
 * One source of the attention kernels (prefill, KVzip scoring, varlen decode slices, FastKV
 * window score) for every level: an ISA file includes its vec_<isa>.h and then this file,
 * so the levels cannot drift apart. Flash-attention style: blocks of query rows against
 * blocks of keys, online softmax, nothing of size n_q x n_k in memory.
 *
 * Layout of one query block: up to KVZ_KBLOCK_Q rows, row r <-> (token i, head g) with
 * global row index i*group + g, so a decode step (one token, G heads) is one block and
 * K/V are read once for the whole group. The logits block S is [key][row]: row lanes are
 * contiguous, so the softmax statistics of many rows update with whole vectors.
 * Two ways to fill S: "gemm" (Q transposed, broadcast each key element against row
 * vectors: compute bound prefill) and "dot" (few rows, memory bound decode: per row,
 * VW keys' dot products at once, reduced by one transpose-and-add, and S laid out
 * [row][key] so that exp and the running max work on whole vectors of keys).
 * Element (key j, row r) of S is at s[j*sj + r*sr]: gemm sj = MQ, sr = 1; dot sj = 1, sr = SROW.
 * At the avx512bf16 level, bf16 K/V take pair dot products on both ways (logits_gemm_bf16
 * and pv_bf16; logits_dot_bp and pv_dot_bp, the "bp" dot path).
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "tmpl/convert_body.h"

#define MQ  KVZ_KBLOCK_Q
#define BK  KVZ_KBLOCK_K
/* Keys per block on the dot path (decode), which reads K and V in place. Its blocks are
 * long so that memory sees long runs of one stream: the logits read BK_DOT rows of K in a
 * row, then P.V the same rows of V (with blocks of 32 keys, alternating every 8 KiB,
 * decode read about a tenth slower). Where K or V must be converted to f32 first, the
 * block is the scratch's BK rows. */
#define BK_DOT 256
/* dot layout: a row of S, BK_DOT logits padded to whole vectors */
#define SROW (BK_DOT + KVZ_KMAX_VW)
/* P.V on the dot path runs a block in pieces of this many keys, so that a piece's V rows
 * stay in L1 across the sweeps over the head's elements. */
#define BK_PV 32
/* The dot path prefetches this many rows ahead along the order it reads them in (a block's
 * K rows, its V rows, the next block's K rows, ...), one row per key processed, so that
 * the requests are spread over all the work: queued all at once they left the memory idle
 * while P.V ran; 32 rows ahead was too late to hide the latency, 128 no better than 64. */
#define PF_AHEAD 64
/* The bp path reads the keys that every query row sees (in decode: all of them) as ILV_N
 * interleaved streams: the run is cut into ILV_N regions, and a block takes ILV_TURN keys
 * of each region in turn. One core keeps more misses in flight over several streams than
 * over one: 4 regions in turns of 2 keys read about a quarter faster than one stream on the
 * Sapphire-Rapids-class VM, more regions or longer turns no better (the measurements:
 * perf/results/2026-12-07-tuning.md). */
#define ILV_LOG2N 2
#define ILV_N (1u << ILV_LOG2N)
#define ILV_TURN 2
/* the dot layout's rows (at most DOT_MAX_ROWS, rounded up to tiles of 4) fit S's scratch;
 * the prefetch never looks past the next block */
_Static_assert((DOT_MAX_ROWS + 3) / 4 * 4 * SROW <= BK * MQ, "dot-layout S exceeds its scratch");
_Static_assert(PF_AHEAD <= BK && BK_PV <= BK && BK_DOT % BK_PV == 0, "dot path block sizes");
/* Query rows per register tile of the dot path. */
#define DOT_TILE 4
/* Levels with bf16 pair dot products define this to 1 (see kernels.h for what it rounds). */
#ifndef KVZ_ATTN_BF16DOT
#define KVZ_ATTN_BF16DOT 0
#endif
/* Levels with AMX-BF16 tiles define this to 1 (the same rounding as KVZ_ATTN_BF16DOT). */
#ifndef KVZ_ATTN_AMX
#define KVZ_ATTN_AMX 0
#endif

typedef struct blk_ctx {
    size_t d, dp, dpv; /* head dim, padded scratch row, vectors per row */
    size_t group;
    ptrdiff_t q_pos0;
    size_t window; /* the job's sliding window (0: none) */
    float *qt, *qr, *o, *s, *kf, *vf_, *m, *l, *m2, *l2, *alpha, *lse2;
    uint32_t *pp; /* the probabilities as bf16 pairs, for P.V by pair products or on tiles */
    /* current block; mq_tile: the rows the dot path's tiles cover (2 or 3 rows are padded
       with zero queries to one tile: a single row's loop is latency-bound, a tile is not;
       the bp path pads to whole tiles of 4) */
    size_t r0, mq, nrv, mq_tile;
    int dot;
    /* bf16 K/V on a level with pair dot products: q is rounded to bf16 and, on the gemm
       path, qt holds it as pairs [x/2][row], pp the probabilities as pairs [key/2][row] and
       vf_ the V rows zipped in pairs [key/2][x] */
    int bdot;
    /* bdot on the dot path with d a multiple of 32 (decode): "bp", see logits_dot_bp */
    int bpdot;
    /* bdot on the gemm path with d a multiple of 32 at a level with AMX tiles: the products
       run on tiles (logits_amx, pv_amx) */
    int amx;
    /* the amx path's V tiles (vt_block): the job's store or NULL, the first chunk of each
       run in it and how many chunks of each run it holds so far */
    uint16_t *vt;
    size_t vt_base[2], vt_done[2];
    float scale;
    /* the bp path's interleaved streams: the current block's keys come from 2^ilv_log2n
       regions ilv_rows rows apart (ilv_log2n 0: one run); ilv_j0, the first key of a P.V
       piece (see ilv_key) */
    size_t ilv_log2n, ilv_rows, ilv_j0;
    size_t sj, sr; /* S strides of the current layout */
    float s_scale; /* the factor the gemm layout's S still needs: the scale on AMX tiles, else 1 */
    /* the prefetch queue: rows [0, pf_n[0]) at pf[0], then rows [0, pf_n[1]) at pf[1];
     * processing key j prefetches queue row j + pf_skip (see pf_queue) */
    const char *pf[2];
    size_t pf_n[2], pf_skip, pf_stride, pf_bytes;
} blk_ctx;

static void scratch_init(blk_ctx *c, float *work, size_t d, size_t group, ptrdiff_t q_pos0)
{
    c->pf_n[0] = c->pf_n[1] = 0;
    c->bdot = c->bpdot = c->amx = 0;
    c->vt = NULL;
    c->vt_base[0] = c->vt_base[1] = c->vt_done[0] = c->vt_done[1] = 0;
    c->ilv_log2n = c->ilv_rows = c->ilv_j0 = 0;
    c->d = d;
    c->dp = kvz_kpad(d);
    c->dpv = (d + VW - 1) / VW;
    c->group = group;
    c->q_pos0 = q_pos0;
    c->window = 0;
    float *w = work;
    c->qt = w, w += d * MQ;
    c->qr = w, w += MQ * c->dp;
    c->o = w, w += MQ * c->dp;
    c->s = w, w += BK * MQ;
    c->kf = w, w += BK * c->dp;
    c->vf_ = w, w += BK * c->dp;
    c->pp = (uint32_t *)w, w += BK * MQ / 2;
    c->m = w, w += MQ;
    c->l = w, w += MQ;
    c->m2 = w, w += MQ;
    c->l2 = w, w += MQ;
    c->alpha = w, w += MQ;
    c->lse2 = w, w += MQ;
}

/* The row vectors (16-row tiles) the AMX products cover: logits_amx and pv_amx take row tiles
 * in pairs, so an odd last tile gets a partner of zero queries and scratch O rows. */
static inline size_t amx_row_tiles(const blk_ctx *c) { return (c->nrv + 1) / 2 * 2; }

/* The row, counted from the block's first row, of the block's key j (see ILV_N): turn
 * t = j / ILV_TURN reads region t % 2^log2n, whose rows start `rows` rows further on (a
 * power of two: this runs once per key). With one region it is j. Blocks and P.V pieces
 * start at whole rounds of turns, and a turn never splits a pair of keys. */
_Static_assert(BK_DOT % (ILV_TURN * ILV_N) == 0 && BK_PV % (ILV_TURN * ILV_N) == 0 && ILV_TURN % 2 == 0,
               "interleaved turns");
static inline size_t ilv_row(size_t log2n, size_t rows, size_t j)
{
    const size_t t = j / ILV_TURN;
    return (t >> log2n) * ILV_TURN + j % ILV_TURN + (t & ((1u << log2n) - 1)) * rows;
}
static inline size_t ilv_key(const blk_ctx *c, size_t j)
{
    return ilv_row(c->ilv_log2n, c->ilv_rows, c->ilv_j0 + j);
}

/* The key index up to which row r of the current block may look (inclusive). */
static inline ptrdiff_t row_limit(const blk_ctx *c, size_t r)
{
    return c->q_pos0 + (ptrdiff_t)((c->r0 + r) / c->group);
}

/* The first key index row r of the current block may see: 0 without a window (or with
 * one reaching back past key 0, however large). */
static inline ptrdiff_t row_first(const blk_ctx *c, size_t r)
{
    const ptrdiff_t lim = row_limit(c, r);
    return c->window && lim >= 0 && (size_t)lim >= c->window ? lim + 1 - (ptrdiff_t)c->window : 0;
}

#if KVZ_ATTN_BF16DOT
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
            cvt_from_f32(h, KVZ_KDT_BF16, q + (ptrdiff_t)(gr % c->group) * qhs + (ptrdiff_t)(gr / c->group) * qrs,
                         c->d);
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
#endif

/* Loads the block's query rows, pre-scaled, into the transposed or the row scratch. */
static void load_queries(blk_ctx *c, const float *q, ptrdiff_t qhs, ptrdiff_t qrs, float scale, size_t r0,
                         size_t mq)
{
    c->r0 = r0;
    c->mq = mq;
    c->nrv = (mq + VW - 1) / VW;
    c->dot = mq <= DOT_MAX_ROWS;
    c->bpdot = c->bdot && c->dot && c->d % 32 == 0;
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
#if KVZ_ATTN_BF16DOT
    if (c->bdot) {
        load_queries_bf16(c, q, qhs, qrs, scale);
        return;
    }
#endif
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

/* Sets the prefetch queue: n0 rows at a, then n1 rows at b (stride and row size set per
 * job); processing key j will prefetch queue row j + skip. */
static inline void pf_queue(blk_ctx *c, const void *a, size_t n0, const void *b, size_t n1, size_t skip)
{
    c->pf[0] = (const char *)a, c->pf_n[0] = n0;
    c->pf[1] = (const char *)b, c->pf_n[1] = n1;
    c->pf_skip = skip;
}

/* Prefetches into L2 the queue row that processing key j asks for (see pf_queue). */
static inline __attribute__((always_inline)) void prefetch_row(const blk_ctx *c, size_t j)
{
    size_t t = j + c->pf_skip;
    const char *row;
    if (t < c->pf_n[0])
        row = c->pf[0] + ilv_row(c->ilv_log2n, c->ilv_rows, t) * c->pf_stride;
    else if ((t -= c->pf_n[0]) < c->pf_n[1])
        row = c->pf[1] + ilv_row(c->ilv_log2n, c->ilv_rows, t) * c->pf_stride;
    else
        return;
    /* the bp path (interleaved streams, see ILV_N) into L1, where it read faster than into L2
       (perf/results/2026-12-07-tuning.md); the other paths into L2 */
    if (c->bpdot && c->pf_bytes == 256) { /* the common row (d = 128 at 2 bytes): unrolled */
#pragma GCC unroll 4
        for (size_t b = 0; b < 256; b += 64)
            __builtin_prefetch(row + b, 0, 3);
    } else if (c->bpdot) {
        for (size_t b = 0; b < c->pf_bytes; b += 64)
            __builtin_prefetch(row + b, 0, 3);
    } else {
        for (size_t b = 0; b < c->pf_bytes; b += 64)
            __builtin_prefetch(row + b, 0, 2);
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

#if KVZ_ATTN_BF16DOT
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
#endif

#if KVZ_ATTN_BF16DOT
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

#if KVZ_ATTN_AMX
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

/* S for the keys [kb, kb+nb) of the run at k, by the way the block's layout takes. */
static void logits_fill(blk_ctx *c, const void *k, ptrdiff_t kst, int dt, size_t kb, size_t nb)
{
#if KVZ_ATTN_BF16DOT
#if KVZ_ATTN_AMX
    if (c->amx) {
        logits_amx(c, (const uint16_t *)k + (ptrdiff_t)kb * kst, (size_t)kst, nb);
        return;
    }
#endif
    if (c->bdot && !c->dot) {
        logits_gemm_bf16(c, (const uint16_t *)k + (ptrdiff_t)kb * kst, (size_t)kst, nb);
        return;
    }
    if (c->bpdot) {
        logits_dot_bp(c, (const uint16_t *)k + (ptrdiff_t)kb * kst, (size_t)kst, nb);
        return;
    }
#endif
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

/* Running max/sum update of statistics (m, l) with the S columns whose key passes `in`;
 * with overwrite set, S becomes the probabilities relative to the new max and alpha the
 * rescale factor of earlier sums. */
static void online_update_dot(blk_ctx *c, float *m, float *l, size_t nb, const unsigned char *in, int overwrite)
{
    const size_t nbv = (nb + VW - 1) / VW * VW; /* the tail is -inf: whole vectors are safe */
    for (size_t r = 0; r < c->mq; r++) {
        float *T = c->s + r * SROW;
        float bm = -INFINITY;
        if (in) {
            for (size_t j = 0; j < nb; j++)
                if (in[j] && T[j] > bm)
                    bm = T[j];
        } else {
            vf mv = vf_set1(-INFINITY);
            for (size_t j = 0; j < nbv; j += VW)
                mv = vf_max(mv, vf_load(T + j));
            bm = vf_hmax(mv);
        }
        const float mnew = m[r] > bm ? m[r] : bm;
        const float muse = mnew > -FLT_MAX ? mnew : -FLT_MAX;
        const float alpha = expf(m[r] - muse);
        float sum = 0.0f;
        if (in) {
            for (size_t j = 0; j < nb; j++)
                if (in[j])
                    sum += expf(T[j] - muse);
        } else {
            const vf mu = vf_set1(muse);
            vf sv = vf_zero();
            for (size_t j = 0; j < nbv; j += VW) {
                const vf p = vf_exp(vf_sub(vf_load(T + j), mu));
                if (overwrite)
                    vf_store(T + j, p);
                sv = vf_add(sv, p);
            }
            sum = vf_hsum(sv);
        }
        l[r] = l[r] * alpha + sum;
        m[r] = mnew;
        if (overwrite)
            c->alpha[r] = alpha;
    }
}

/* The gemm layout's running max (m) is a block's max rounded up to a multiple of 8 (the
 * softmax is the same for any m at or above the true max): a row's m moves only when a
 * block's max passes into a higher step of 8, so that the rescale of O by alpha, costly on
 * the transposed O of the amx path, is skipped by most rows after the first blocks. The
 * probabilities stay at most 1 and lose nothing but terms below e^-79 of the largest.
 * Adding and subtracting 1.5 * 2^26, where floats are 8 apart, rounds to a multiple of 8
 * (below 2^25); the max with x keeps m >= x beyond. */
static inline vf max_step(vf x)
{
    const vf c = vf_set1(100663296.0f);
    return vf_max(x, vf_sub(vf_add(vf_add(x, vf_set1(4.0f)), c), c));
}

/* The max over keys j < nb (those passing `in`, if given) of the gemm layout's row vector at
 * sv: four chains, since each max waits on the one before. */
static inline vf col_max(const float *sv, size_t nb, const unsigned char *in)
{
    vf a = vf_set1(-INFINITY), b = a, e = a, f = a;
    size_t j = 0;
    if (in) {
        for (; j < nb; j++)
            if (in[j])
                a = vf_max(a, vf_load(sv + j * MQ));
        return a;
    }
    for (; j + 4 <= nb; j += 4) {
        a = vf_max(a, vf_load(sv + j * MQ));
        b = vf_max(b, vf_load(sv + (j + 1) * MQ));
        e = vf_max(e, vf_load(sv + (j + 2) * MQ));
        f = vf_max(f, vf_load(sv + (j + 3) * MQ));
    }
    for (; j < nb; j++)
        a = vf_max(a, vf_load(sv + j * MQ));
    return vf_max(vf_max(a, b), vf_max(e, f));
}

static void online_update(blk_ctx *c, float *m, float *l, size_t nb, const unsigned char *in, int overwrite)
{
    if (c->dot) {
        online_update_dot(c, m, l, nb, in, overwrite);
        return;
    }
    const vf sc = vf_set1(c->s_scale); /* > 0: the max of the scaled is the scaled max */
    for (size_t v = 0; v < c->nrv; v++) {
        float *sv = c->s + v * VW;
        const vf bm = vf_mul(col_max(sv, nb, in), sc);
        const vf mold = vf_load(m + v * VW);
        const vf mnew = vf_max(mold, max_step(bm));
        /* a max of -inf (nothing visible yet) must not produce inf - inf */
        const vf muse = vf_max(mnew, vf_set1(-FLT_MAX)), nmu = vf_sub(vf_zero(), muse);
        const vf alpha = vf_exp(vf_sub(mold, muse));
        vf sum = vf_zero();
        for (size_t j = 0; j < nb; j++) {
            if (in && !in[j])
                continue;
            const vf p = vf_exp(vf_fma(vf_load(sv + j * MQ), sc, nmu));
            if (overwrite)
                vf_store(sv + j * MQ, p);
            sum = vf_add(sum, p);
        }
        vf_store(l + v * VW, vf_fma(vf_load(l + v * VW), alpha, sum));
        vf_store(m + v * VW, mnew);
        if (overwrite)
            vf_store(c->alpha + v * VW, alpha);
    }
}

/* The sum over the keys j < nb that pass `in` of the gemm layout's row vector at sv. */
static inline vf masked_sum(const float *sv, size_t nb, const unsigned char *in)
{
    vf sum = vf_zero();
    for (size_t j = 0; j < nb; j++)
        if (in[j])
            sum = vf_add(sum, vf_load(sv + j * MQ));
    return sum;
}

/* Beyond this gap between a row's running max and its reduced-set max, the scored update
 * sums the reduced set's own exps (see online_update_scored). The running max is stepped
 * (max_step), up to 8 above the true one: at 2 most rows took that slower way. */
#define RESCALE_MAX 10.0f

/* Scoring on the gemm path: the statistics over all keys (m, l) and over the reduced key
 * set, the keys that pass `in` (m2, l2), in one sweep; S becomes the probabilities of the
 * first. The reduced sum reuses them, exp(s - m2) = exp(s - m) exp(m - m2): one exp per
 * row instead of one per reduced key. It loses only terms whose exp(s - m) is below the
 * normal floats (s - m < -87), which is below e^-77 of the reduced set's largest term
 * while m - m2 <= RESCALE_MAX; a row vector with a larger gap sums its own exps. all_in:
 * every key of the block is in the reduced set (most blocks are all in or all out). */
static void online_update_scored(blk_ctx *c, size_t nb, const unsigned char *in, int all_in)
{
    const vf sc = vf_set1(c->s_scale);
    for (size_t v = 0; v < c->nrv; v++) {
        float *sv = c->s + v * VW;
        const vf bm = vf_mul(col_max(sv, nb, NULL), sc), bm2 = all_in ? bm : vf_mul(col_max(sv, nb, in), sc);
        /* maxes of -inf (nothing visible yet) must not produce inf - inf */
        const vf mold = vf_load(c->m + v * VW), mnew = vf_max(mold, max_step(bm));
        const vf muse = vf_max(mnew, vf_set1(-FLT_MAX));
        const vf m2old = vf_load(c->m2 + v * VW), m2new = vf_max(m2old, bm2);
        const vf muse2 = vf_max(m2new, vf_set1(-FLT_MAX));
        const vf gap = vf_sub(muse, muse2);
        const int direct = vf_hmax(gap) > RESCALE_MAX;
        vf sum = vf_zero(), sum2 = vf_zero();
        const vf nmu = vf_sub(vf_zero(), muse), nmu2 = vf_sub(vf_zero(), muse2);
        for (size_t j = 0; j < nb; j++) {
            const vf x = vf_load(sv + j * MQ), p = vf_exp(vf_fma(x, sc, nmu));
            vf_store(sv + j * MQ, p);
            sum = vf_add(sum, p);
            if (direct && in[j])
                sum2 = vf_add(sum2, vf_exp(vf_fma(x, sc, nmu2)));
        }
        if (!direct) /* the reduced set's share of the same exps, rescaled to its own max */
            sum2 = vf_mul(all_in ? sum : masked_sum(sv, nb, in), vf_exp(gap));
        const vf alpha = vf_exp(vf_sub(mold, muse));
        vf_store(c->l + v * VW, vf_fma(vf_load(c->l + v * VW), alpha, sum));
        vf_store(c->m + v * VW, mnew);
        vf_store(c->alpha + v * VW, alpha);
        vf_store(c->l2 + v * VW, vf_fma(vf_load(c->l2 + v * VW), vf_exp(vf_sub(m2old, muse2)), sum2));
        vf_store(c->m2 + v * VW, m2new);
    }
}

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

#if KVZ_ATTN_BF16DOT
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
#endif

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
#if KVZ_ATTN_BF16DOT
        if (c->bpdot) { /* the piece's rows are found from the block's first (ilv_key) */
            c->ilv_j0 = j0;
            pv_dot_bp(c, (const uint16_t *)(v + kb * c->pf_stride), (size_t)vst, n);
            c->ilv_j0 = 0;
        } else
#endif
            pv_update(c, key_rows(c, c->vf_, v, vst, dt, kb + j0, n), n);
        for (size_t r = 0; r < c->mq_tile; r++)
            c->alpha[r] = 1.0f;
    }
    c->s = s;
}

static void stats_reset(blk_ctx *c)
{
    for (size_t r = 0; r < MQ; r++) {
        c->m[r] = c->m2[r] = -INFINITY;
        c->l[r] = c->l2[r] = 0.0f;
    }
}

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

/* S = p = exp(S - lse2) per row over keys [kb, kb+nb); lse2 = +inf hides a row. */
static void probs_from_lse(blk_ctx *c, size_t nb)
{
    if (c->dot) {
        for (size_t r = 0; r < c->mq; r++) {
            const vf ls = vf_set1(c->lse2[r]);
            float *T = c->s + r * SROW;
            for (size_t j = 0; j < nb; j += VW)
                vf_store(T + j, vf_exp(vf_sub(vf_load(T + j), ls)));
        }
        return;
    }
    const vf sc = vf_set1(c->s_scale);
    for (size_t v = 0; v < c->nrv; v++) {
        const vf ls = vf_load(c->lse2 + v * VW);
        for (size_t j = 0; j < nb; j++)
            vf_store(c->s + j * MQ + v * VW, vf_exp(vf_sub(vf_mul(vf_load(c->s + j * MQ + v * VW), sc), ls)));
    }
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

/* The keys [from, to) of a run (its rows at kr and vr, kn of them, the first with index kb0
 * in the job's numbering) in contiguous blocks of bk keys: logits, the online softmax (with
 * the reduced set's statistics when the job scores), P.V. */
static void plain_blocks(blk_ctx *c, const kvz_attn_job *job, int run, const char *kr, const char *vr,
                         size_t kb0, size_t kn, size_t from, size_t to, size_t bk, int keep_z)
{
    const int dt = job->dtype;
    unsigned char in[BK_DOT > BK ? BK_DOT : BK]; /* a block's reduced-set marks */
    (void)run, (void)kn;                         /* the amx path's */
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
#if KVZ_ATTN_AMX
        if (c->amx) {
            pv_amx(c, vt_block(c, run, (const uint16_t *)vr, (size_t)job->kv_row_stride, kn, kb, nb), nb);
            continue;
        }
#endif
#if KVZ_ATTN_BF16DOT
        if (c->bdot) {
            pv_bf16(c, (const uint16_t *)vblk, (size_t)job->kv_row_stride, nb);
            continue;
        }
#endif
        pv_update(c, key_rows(c, c->vf_, vr, job->kv_row_stride, dt, kb, nb), nb);
    }
}

static void attn_impl(const kvz_attn_job *job)
{
    blk_ctx c;
    scratch_init(&c, job->work, job->d, job->group, job->q_pos0);
    c.window = job->window;
    const size_t rows = job->n_q * job->group;
    const int dt = job->dtype;
    c.bdot = KVZ_ATTN_BF16DOT && dt == KVZ_KDT_BF16 && job->d % 2 == 0;
    if (c.bdot && job->vtstore) /* the runs' V tiles, chunk by chunk (vt_block) */
        c.vt = job->vtstore, c.vt_base[1] = (job->n_k + 31) / 32;
#if KVZ_ATTN_AMX
    int tiles = 0; /* the tile configuration is per thread: loaded by the first block on tiles */
#endif

    for (size_t r0 = 0; r0 < rows; r0 += MQ) {
        const size_t mq = rows - r0 < MQ ? rows - r0 : MQ;
        load_queries(&c, job->q, job->q_head_stride, job->q_row_stride, job->scale, r0, mq);
#if KVZ_ATTN_AMX
        if (c.amx && !tiles) {
            amx_begin();
            tiles = 1;
        }
#endif
        stats_reset(&c);
        /* the bf16 P.V runs whole row tiles: their padding rows must hold numbers too; on AMX
           O is transposed, [x][MQ] (see pv_amx), all of its columns zeroed */
        if (c.amx)
            memset(c.o, 0, c.d * MQ * sizeof(float));
        else
            memset(c.o, 0, (c.bdot && !c.dot ? c.nrv * VW : c.mq_tile) * c.dp * sizeof(float));
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
        for (int run = 0; run < 2; run++) {
            const char *kr = run ? job->k2 : job->k, *vr = run ? job->v2 : job->v;
            const size_t kb0 = run ? job->n_k : 0, kn = run ? job->n_k2 : job->n_k;
            const size_t rend = kend < kb0 ? 0 : (kend - kb0 < kn ? kend - kb0 : kn);
            /* the window's first block, at a whole chunk of 32 keys (the amx path's V tiles) */
            size_t rbeg = kbeg <= kb0 ? 0 : (kbeg - kb0) / 32 * 32;
            rbeg = rbeg < rend ? rbeg : rend;
            /* the bp path reads the keys [ilv0, ilv0 + ilv_n) of the run as interleaved streams
             * (ILV_N): those that every row sees, so that no block needs a mask, in whole
             * rounds of turns; the rest as one. Not while scoring: its second visit of the
             * chunk's keys reads them in their order. */
            size_t ilv0 = rbeg, ilv_n = 0;
            if (c.bpdot && !job->score) {
                const ptrdiff_t see = row_limit(&c, 0) + 1 - (ptrdiff_t)kb0;
                const size_t all = see <= 0 ? 0 : ((size_t)see < rend ? (size_t)see : rend);
                const size_t first = kbeg_all <= kb0 ? 0 : kbeg_all - kb0;
                if (first < all) {
                    ilv_n = (all - first) / (ILV_TURN * ILV_N) * (ILV_TURN * ILV_N);
                    ilv0 = ilv_n ? first : rbeg;
                }
            }
            plain_blocks(&c, job, run, kr, vr, kb0, kn, rbeg, ilv0, bk, keep_z);
            const char *kri = ilv_n ? kr + ilv0 * c.pf_stride : kr, *vri = ilv_n ? vr + ilv0 * c.pf_stride : vr;
            c.ilv_log2n = ILV_LOG2N, c.ilv_rows = ilv_n / ILV_N;
            for (size_t kb = 0; kb < ilv_n; kb += bk) { /* block kb: each region's rows from kb / ILV_N */
                const size_t nb = ilv_n - kb < bk ? ilv_n - kb : bk;
                const size_t next = ilv_n - kb - nb < bk ? ilv_n - kb - nb : bk;
                const char *kblk = kri + kb / ILV_N * c.pf_stride;
                pf_queue(&c, kblk, nb, vri + kb / ILV_N * c.pf_stride, nb, PF_AHEAD);
                logits_block(&c, kri, job->kv_row_stride, dt, kb / ILV_N, nb, kb0 + ilv0);
                online_update(&c, c.m, c.l, nb, NULL, 1);
                pv_dot(&c, vri, job->kv_row_stride, dt, kb / ILV_N, nb, kblk + nb / ILV_N * c.pf_stride, next);
            }
            c.ilv_log2n = 0, c.ilv_rows = 0;
            plain_blocks(&c, job, run, kr, vr, kb0, kn, ilv0 + ilv_n, rend, bk, keep_z);
        }
        pf_queue(&c, NULL, 0, NULL, 0, 0);

        for (size_t r = 0; r < mq; r++) {
            const size_t gr = r0 + r, g = gr % job->group, i = gr / job->group;
            float *dst = job->out + (ptrdiff_t)g * job->out_head_stride + (ptrdiff_t)i * job->out_row_stride;
            const float inv = c.l[r] > 0.0f ? 1.0f / c.l[r] : 0.0f;
#if KVZ_ATTN_BF16DOT
            if (c.bpdot)
                for (size_t x = 0; x < job->d; x++)
                    dst[x] = c.o[r * c.dp + bp_slot(x)] * inv;
            else if (c.amx)
                for (size_t x = 0; x < job->d; x++)
                    dst[x] = c.o[x * MQ + r] * inv;
            else
#endif
                for (size_t x = 0; x < job->d; x++)
                    dst[x] = c.o[r * c.dp + x] * inv;
            if (job->lse)
                job->lse[g * job->n_q + i] = c.l[r] > 0.0f ? c.m[r] + logf(c.l[r]) : -INFINITY;
        }

        /* Accumulated attention: the keys of the first run that some row of the block sees
         * (from the first row's window on, up to the last row's limit). The first sweep's
         * interleaved streams (bp path) are no matter here: this visit reads keys in order. */
        if (job->accum && kbeg < (kend < job->n_k ? kend : job->n_k))
            accum_visit(&c, job, kbeg, kend < job->n_k ? kend : job->n_k);
        if (!job->score)
            continue;
        /* Second visit of the chunk's keys: fold max_rows exp(z - lse_reduced). */
        for (size_t r = 0; r < c.nrv * VW; r++)
            c.lse2[r] = (r < mq && c.l2[r] > 0.0f) ? c.m2[r] + logf(c.l2[r]) : INFINITY;
        for (size_t kb = job->chunk_begin; kb < job->chunk_end; kb += BK) {
            const size_t nb = job->chunk_end - kb < BK ? job->chunk_end - kb : BK;
            /* kept logits: every chunk key is visible to every row, nothing to mask */
            if (!keep_z)
                logits_block(&c, job->k, job->kv_row_stride, dt, kb, nb, 0);
            float *const dst = job->score + (kb - job->chunk_begin);
            if (c.dot) {
                probs_from_lse(&c, nb);
                fold_max_dot(&c, nb, dst);
            } else {
                fold_max_exp(&c, keep_z ? job->zstore + (kb - job->chunk_begin) * MQ : c.s, nb, dst);
            }
        }
    }
#if KVZ_ATTN_AMX
    if (tiles)
        amx_end();
#endif
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
