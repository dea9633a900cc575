/* One source of the f32 <-> bf16/f16 conversion kernels for every level (see attn_body.h). */
#ifndef KVZ_TMPL_CONVERT_BODY_H
#define KVZ_TMPL_CONVERT_BODY_H

#include <string.h>

#include "kernels.h"

/* kvz_convert promises nothing about alignment (a GGUF with general.alignment 1 puts an F16
 * tensor at any byte), so single elements move through memcpy; the levels' vector loads and
 * stores are unaligned ones already. */
static inline uint16_t cvt_ld16(const void *p, size_t i)
{
    uint16_t v;
    memcpy(&v, (const unsigned char *)p + 2 * i, sizeof v);
    return v;
}
static inline void cvt_st16(void *p, size_t i, uint16_t v) { memcpy((unsigned char *)p + 2 * i, &v, sizeof v); }
static inline float cvt_ldf(const float *p, size_t i)
{
    float v;
    memcpy(&v, (const unsigned char *)p + 4 * i, sizeof v);
    return v;
}
static inline void cvt_stf(float *p, size_t i, float v) { memcpy((unsigned char *)p + 4 * i, &v, sizeof v); }

static inline void cvt_to_f32(float *dst, const void *src, int dt, size_t n)
{
    if (dt == KVZ_KDT_F32) {
        if ((const void *)dst != src)
            memcpy(dst, src, n * sizeof(float));
        return;
    }
    const uint16_t *h = (const uint16_t *)src;
    const size_t nv = n / VW * VW;
    size_t x = 0;
    if (dt == KVZ_KDT_BF16) {
        for (; x < nv; x += VW)
            vf_store(dst + x, vf_load_bf16(h + x));
        for (; x < n; x++)
            cvt_stf(dst, x, kvz_bf16_to_f32(cvt_ld16(src, x)));
    } else {
        for (; x < nv; x += VW)
            vf_store(dst + x, vf_load_f16(h + x));
        for (; x < n; x++)
            cvt_stf(dst, x, kvz_f16_to_f32(cvt_ld16(src, x)));
    }
}

static inline void cvt_from_f32(void *dst, int dt, const float *src, size_t n)
{
    if (dt == KVZ_KDT_F32) {
        if (dst != (const void *)src)
            memcpy(dst, src, n * sizeof(float));
        return;
    }
    uint16_t *h = (uint16_t *)dst;
    const size_t nv = n / VW * VW;
    size_t x = 0;
    if (dt == KVZ_KDT_BF16) {
        for (; x < nv; x += VW)
            vf_store_bf16(h + x, vf_load(src + x));
        for (; x < n; x++)
            cvt_st16(dst, x, kvz_f32_to_bf16(cvt_ldf(src, x)));
    } else {
        for (; x < nv; x += VW)
            vf_store_f16(h + x, vf_load(src + x));
        for (; x < n; x++)
            cvt_st16(dst, x, kvz_f32_to_f16(cvt_ldf(src, x)));
    }
}

#endif
