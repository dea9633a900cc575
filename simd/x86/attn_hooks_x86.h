/*
 * The attention hooks (tmpl/attn_hooks.h) of the x86 levels with bf16 pair products
 * (avx512bf16) and AMX tiles (amx): which of their paths a block takes. The flags they test
 * were set by attn_impl (bdot) and load_queries (bpdot, amx).
 */
#ifndef KVZ_X86_ATTN_HOOKS_X86_H
#define KVZ_X86_ATTN_HOOKS_X86_H

#include "x86/attn_bf16dot.h"
#if KVZ_ATTN_AMX
#include "x86/attn_amx_tiles.h"
#endif

static inline __attribute__((always_inline)) int arch_load_queries(blk_ctx *c, const float *q, ptrdiff_t qhs,
                                                                   ptrdiff_t qrs, float scale)
{
    if (!c->bdot)
        return 0;
    load_queries_bf16(c, q, qhs, qrs, scale);
    return 1;
}

static inline __attribute__((always_inline)) int arch_logits(blk_ctx *c, const void *k, ptrdiff_t kst,
                                                             size_t kb, size_t nb)
{
    const uint16_t *kp = (const uint16_t *)k + (ptrdiff_t)kb * kst;
#if KVZ_ATTN_AMX
    if (c->amx) {
        logits_amx(c, kp, (size_t)kst, nb);
        return 1;
    }
#endif
    if (c->bdot && !c->dot) {
        logits_gemm_bf16(c, kp, (size_t)kst, nb);
        return 1;
    }
    if (c->bpdot) {
        logits_dot_bp(c, kp, (size_t)kst, nb);
        return 1;
    }
    return 0;
}

static inline __attribute__((always_inline)) int arch_pv_gemm(blk_ctx *c, const kvz_attn_job *job, int run,
                                                              const char *vr, size_t kn, size_t kb, size_t nb)
{
#if KVZ_ATTN_AMX
    if (c->amx) {
        pv_amx(c, vt_block(c, run, (const uint16_t *)vr, (size_t)job->kv_row_stride, kn, kb, nb), nb);
        return 1;
    }
#else
    (void)run, (void)kn; /* the V tiles' */
#endif
    if (c->bdot) {
        pv_bf16(c, (const uint16_t *)(vr + kb * c->pf_stride), (size_t)job->kv_row_stride, nb);
        return 1;
    }
    return 0;
}

static inline __attribute__((always_inline)) int arch_pv_dot(blk_ctx *c, const char *v, ptrdiff_t vst,
                                                             size_t kb, size_t j0, size_t n)
{
    if (!c->bpdot)
        return 0;
    c->ilv_j0 = j0; /* the piece's rows are found from the block's first (ilv_key) */
    pv_dot_bp(c, (const uint16_t *)(v + kb * c->pf_stride), (size_t)vst, n);
    c->ilv_j0 = 0;
    return 1;
}

/* The bp path keeps O's elements in bp_slot order, the amx path O transposed (pv_amx). */
static inline __attribute__((always_inline)) int arch_store_row(const blk_ctx *c, float *dst, size_t r,
                                                                size_t d, float inv)
{
    if (c->bpdot) {
        for (size_t x = 0; x < d; x++)
            dst[x] = c->o[r * c->dp + bp_slot(x)] * inv;
        return 1;
    }
    if (c->amx) {
        for (size_t x = 0; x < d; x++)
            dst[x] = c->o[x * MQ + r] * inv;
        return 1;
    }
    return 0;
}

/* The tile configuration is per thread: loaded by the job's first block on tiles, released
 * at the job's end. */
static inline __attribute__((always_inline)) void arch_block_begin(const blk_ctx *c, int *held)
{
#if KVZ_ATTN_AMX
    if (c->amx && !*held) {
        amx_begin();
        *held = 1;
    }
#else
    (void)c, (void)held;
#endif
}

static inline __attribute__((always_inline)) void arch_job_end(int held)
{
#if KVZ_ATTN_AMX
    if (held)
        amx_end();
#else
    (void)held;
#endif
}

#endif
