/*
 * The block context of the attention kernels: their constants, the scratch layout, which keys
 * a query row may see, and the prefetch queue that every stage feeds from.
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
 * and pv_bf16; logits_dot_bp and pv_dot_bp, the "bp" dot path: simd/x86/attn_bf16dot.h).
 */
#ifndef KVZ_TMPL_ATTN_CTX_H
#define KVZ_TMPL_ATTN_CTX_H

#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "tmpl/convert_body.h"

#define MQ KVZ_KBLOCK_Q
#define BK KVZ_KBLOCK_K
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
/* Under the read plan KVZ_KREADS_L1X4 the bp path reads the keys that every query row sees
 * (in decode: all of them) as ILV_N interleaved streams: the run is cut into ILV_N regions,
 * and a block takes ILV_TURN keys of each region in turn. Where the plan fits (Intel cores)
 * one core keeps more misses in flight over several streams than over one: 4 regions in
 * turns of 2 keys read about a quarter faster than one stream on the Sapphire-Rapids-class
 * VM, more regions or longer turns no better; on Zen 4 one stream is faster (the
 * measurements: perf/results/2026-12-07-tuning.md). */
#define ILV_LOG2N 2
#define ILV_N     (1u << ILV_LOG2N)
#define ILV_TURN  2
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
    int reads;     /* the job's read plan (KVZ_KREADS_*) */
    int pf_l1;     /* the block prefetches into L1: the bp path under KVZ_KREADS_L1X4 (else L2) */
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
    c->bdot = c->bpdot = c->amx = c->pf_l1 = 0;
    c->reads = KVZ_KREADS_L2X1;
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
    /* into L1 on the bp path under the plan that wants it (its interleaved streams read faster
       so on Intel; on Zen 4 a prefetch into L1 read a third slower than into L2), else into L2
       (perf/results/2026-12-07-tuning.md); the common row (d = 128 at 2 bytes) unrolled */
    if (c->pf_l1 && c->pf_bytes == 256) {
#pragma GCC unroll 4
        for (size_t b = 0; b < 256; b += 64)
            __builtin_prefetch(row + b, 0, 3);
    } else if (c->pf_l1) {
        for (size_t b = 0; b < c->pf_bytes; b += 64)
            __builtin_prefetch(row + b, 0, 3);
    } else if (c->pf_bytes == 256) {
#pragma GCC unroll 4
        for (size_t b = 0; b < 256; b += 64)
            __builtin_prefetch(row + b, 0, 2);
    } else {
        for (size_t b = 0; b < c->pf_bytes; b += 64)
            __builtin_prefetch(row + b, 0, 2);
    }
}

#endif
