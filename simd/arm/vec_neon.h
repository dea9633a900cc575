/* NEON (aarch64 Advanced SIMD) vector of 4 floats for the kernel templates. */
#ifndef KVZ_VEC_NEON_H
#define KVZ_VEC_NEON_H

#include <arm_neon.h>
#include <sleef.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "scalar.h"

typedef float32x4_t vf;
#define VW             4
#define KVZ_ISA_SUFFIX neon
#define KVZ_ISA_ID     KVZ_KISA_NEON
#define TILE_J         4
#define TILE_RV        4
#define PV_RT          4
#define PV_CV          4
#define DOT_MAX_ROWS   2

static inline vf vf_zero(void) { return vdupq_n_f32(0.0f); }
static inline vf vf_set1(float x) { return vdupq_n_f32(x); }
static inline vf vf_load(const float *p) { return vld1q_f32(p); }
static inline void vf_store(float *p, vf v) { vst1q_f32(p, v); }
static inline vf vf_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf vf_div(vf a, vf b) { return vdivq_f32(a, b); }
static inline vf vf_max(vf a, vf b) { return vmaxq_f32(a, b); }
static inline vf vf_exp(vf x) { return Sleef_expf4_u10advsimd(x); }
static inline float vf_hsum(vf v) { return vaddvq_f32(v); }
static inline float vf_hmax(vf v) { return vmaxvq_f32(v); }
/* lane t of the result = horizontal sum of a[t] */
static inline vf vf_hsum_vw(const vf *a) { return vpaddq_f32(vpaddq_f32(a[0], a[1]), vpaddq_f32(a[2], a[3])); }
static inline vf vf_load_n(const float *p, size_t n)
{
    float t[4] = {0, 0, 0, 0};
    memcpy(t, p, n * sizeof(float));
    return vld1q_f32(t);
}
static inline void vf_store_n(float *p, vf v, size_t n)
{
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, n * sizeof(float));
}
static inline vf vf_load_bf16(const uint16_t *p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
static inline vf vf_load_f16(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
static inline void vf_store_bf16(uint16_t *p, vf v)
{
    const uint32x4_t u = vreinterpretq_u32_f32(v);
    const uint32x4_t lsb = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
    uint32x4_t r = vshrq_n_u32(vaddq_u32(u, vaddq_u32(vdupq_n_u32(0x7fff), lsb)), 16);
    const uint32x4_t isnum = vceqq_f32(v, v);
    r = vbslq_u32(isnum, r, vorrq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(0x40)));
    vst1_u16(p, vmovn_u32(r));
}
static inline void vf_store_f16(uint16_t *p, vf v) { vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(v))); }

#endif
