/* The portable "vector" of one float: the generic level compiles the kernel templates with it. */
#ifndef KVZ_VEC_GENERIC_H
#define KVZ_VEC_GENERIC_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "scalar.h"

typedef float vf;
#define VW             1
#define KVZ_ISA_SUFFIX generic
#define KVZ_ISA_ID     KVZ_KISA_GENERIC
/* tile sizes of the templates: keys x row-vectors (logits), rows x d-vectors (P.V) */
#define TILE_J       4
#define TILE_RV      8
#define PV_RT        4
#define PV_CV        8
#define DOT_MAX_ROWS 0

static inline vf vf_zero(void) { return 0.0f; }
static inline vf vf_set1(float x) { return x; }
/* Loads and stores go through memcpy: unaligned like every level's (kvz_convert's buffers may
 * sit at any byte), and the compiler makes plain moves of them. */
static inline vf vf_load(const float *p)
{
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void vf_store(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline vf vf_fma(vf a, vf b, vf c) { return a * b + c; }
static inline vf vf_add(vf a, vf b) { return a + b; }
static inline vf vf_sub(vf a, vf b) { return a - b; }
static inline vf vf_mul(vf a, vf b) { return a * b; }
static inline vf vf_div(vf a, vf b) { return a / b; }
static inline vf vf_max(vf a, vf b) { return a > b ? a : b; }
static inline vf vf_exp(vf x) { return expf(x); }
static inline float vf_hsum(vf v) { return v; }
static inline float vf_hmax(vf v) { return v; }
static inline vf vf_load_n(const float *p, size_t n) { return n ? vf_load(p) : 0.0f; }
static inline void vf_store_n(float *p, vf v, size_t n)
{
    if (n)
        vf_store(p, v);
}
/* lane t of the result = horizontal sum of a[t] (VW vectors in, one out) */
static inline vf vf_hsum_vw(const vf *a) { return a[0]; }
static inline uint16_t vf_ld_u16(const uint16_t *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return h;
}
static inline void vf_st_u16(uint16_t *p, uint16_t h) { memcpy(p, &h, sizeof h); }
static inline vf vf_load_bf16(const uint16_t *p) { return kvz_bf16_to_f32(vf_ld_u16(p)); }
static inline vf vf_load_f16(const uint16_t *p) { return kvz_f16_to_f32(vf_ld_u16(p)); }
static inline void vf_store_bf16(uint16_t *p, vf v) { vf_st_u16(p, kvz_f32_to_bf16(v)); }
static inline void vf_store_f16(uint16_t *p, vf v) { vf_st_u16(p, kvz_f32_to_f16(v)); }

#endif
