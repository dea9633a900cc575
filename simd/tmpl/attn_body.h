/*
 * The attention kernels (prefill, KVzip scoring, varlen decode slices, FastKV window score),
 * one source for every level: an ISA file includes its vec_<isa>.h and then this file, which
 * includes the stages in the order each builds on the ones before, so the levels cannot
 * drift apart. Flash-attention style: blocks of query rows against blocks of keys, online
 * softmax, nothing of size n_q x n_k in memory.
 *
 * The paths only some levels have (the x86 bf16 pair products and AMX tiles, in simd/x86/)
 * are reached through the hooks of tmpl/attn_hooks.h, never through #if inside the stages.
 */
#ifndef KVZ_TMPL_ATTN_BODY_H
#define KVZ_TMPL_ATTN_BODY_H

#include "tmpl/attn_ctx.h"     /* the block context: constants, scratch, visibility, prefetch */
#include "tmpl/attn_hooks.h"   /* the level's own paths, or hooks that decline */
#include "tmpl/attn_load.h"    /* queries into the scratch; K/V row loaders */
#include "tmpl/attn_logits.h"  /* S = Q.K by the gemm and the dot ways, masked */
#include "tmpl/attn_softmax.h" /* the online max and sum, and the scoring statistics */
#include "tmpl/attn_pv.h"      /* O = O alpha + P.V */
#include "tmpl/attn_score.h"   /* KVzip scores, accumulated attention, window scores */
#include "tmpl/attn_drivers.h" /* the block loops: attn_impl and window_impl */

#endif
