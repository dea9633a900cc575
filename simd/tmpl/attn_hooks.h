/*
 * The hooks through which the generic stages reach the paths only some levels have: the x86
 * levels with bf16 pair products and AMX tiles define them in simd/x86/attn_hooks_x86.h; at
 * every other level they decline, and since they are inlined the compiler drops the calls.
 * A hook that returns int returns 1 when the level's own path did the work, 0 to leave it to
 * the generic code.
 *
 *   arch_load_queries(c, q, qhs, qrs, scale)  the block's queries in the level's own layout
 *                                             (load_queries has chosen the block's paths)
 *   arch_logits(c, k, kst, kb, nb)            S for the keys [kb, kb+nb) of the run at k
 *   arch_pv_gemm(c, job, run, vr, kn, kb, nb) P.V of a gemm-path block of the run at vr (kn rows)
 *   arch_pv_dot(c, v, vst, kb, j0, n)         P.V of the n keys from j0 of the dot-path block
 *                                             at key kb of the run at v
 *   arch_store_row(c, dst, r, d, inv)         the block's row r of O times inv into dst, where
 *                                             the level keeps O in an order of its own
 *   arch_block_begin(c, held)                 a block starts; *held (0 at first) keeps, for
 *   arch_job_end(held)                        the job's end, state the level took (AMX tiles)
 */
#ifndef KVZ_TMPL_ATTN_HOOKS_H
#define KVZ_TMPL_ATTN_HOOKS_H

#if KVZ_ATTN_BF16DOT
#include "x86/attn_hooks_x86.h"
#else
static inline __attribute__((always_inline)) int arch_load_queries(blk_ctx *c, const float *q, ptrdiff_t qhs,
                                                                   ptrdiff_t qrs, float scale)
{
    (void)c, (void)q, (void)qhs, (void)qrs, (void)scale;
    return 0;
}

static inline __attribute__((always_inline)) int arch_logits(blk_ctx *c, const void *k, ptrdiff_t kst,
                                                             size_t kb, size_t nb)
{
    (void)c, (void)k, (void)kst, (void)kb, (void)nb;
    return 0;
}

static inline __attribute__((always_inline)) int arch_pv_gemm(blk_ctx *c, const kvz_attn_job *job, int run,
                                                              const char *vr, size_t kn, size_t kb, size_t nb)
{
    (void)c, (void)job, (void)run, (void)vr, (void)kn, (void)kb, (void)nb;
    return 0;
}

static inline __attribute__((always_inline)) int arch_pv_dot(blk_ctx *c, const char *v, ptrdiff_t vst,
                                                             size_t kb, size_t j0, size_t n)
{
    (void)c, (void)v, (void)vst, (void)kb, (void)j0, (void)n;
    return 0;
}

static inline __attribute__((always_inline)) int arch_store_row(const blk_ctx *c, float *dst, size_t r,
                                                                size_t d, float inv)
{
    (void)c, (void)dst, (void)r, (void)d, (void)inv;
    return 0;
}

static inline __attribute__((always_inline)) void arch_block_begin(const blk_ctx *c, int *held)
{
    (void)c, (void)held;
}

static inline __attribute__((always_inline)) void arch_job_end(int held) { (void)held; }
#endif

#endif
