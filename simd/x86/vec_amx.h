/* The AVX512_BF16 level's vectors plus AMX-BF16 tiles for the kernel templates; compiled with
 * CFLAGS_AMX only. */
#ifndef KVZ_VEC_AMX_H
#define KVZ_VEC_AMX_H

#include "x86/vec_avx512bf16.h"

#undef KVZ_ISA_SUFFIX
#undef KVZ_ISA_ID
#define KVZ_ISA_SUFFIX amx
#define KVZ_ISA_ID     KVZ_KISA_AMX
#define KVZ_ATTN_AMX   1

/* Every tile the kernels use has the same shape: 16 rows of 64 bytes (16 floats, 16 bf16
 * pairs or 32 bf16). ldtilecfg reads all 64 bytes of the configuration, but gcc's
 * _tile_loadconfig tells the compiler of only 8 of them: a constant in read-only data is
 * complete before any instruction runs. */
static const unsigned char amx_tile_cfg[64] __attribute__((aligned(64))) = {
    1, 0, /* palette 1, start row 0 */
    [16] = 64, 0, 64, 0, 64, 0, 64, 0, 64, 0, 64, 0, 64, 0, 64, 0, /* colsb of tiles 0..7 */
    [48] = 16, 16, 16, 16, 16, 16, 16, 16,                           /* rows of tiles 0..7 */
};

static inline void amx_begin(void) { _tile_loadconfig(amx_tile_cfg); }
static inline void amx_end(void) { _tile_release(); }

/* Tile t = 16 rows of 64 bytes at p, `stride` bytes apart. gcc's _tile_loadd does not tell
 * the compiler that it reads memory, so stores to its source could be moved past it: the
 * empty asm before it is a compiler barrier. (_tile_stored declares its write.) */
#define AMX_LOAD(t, p, stride)                                                                                 \
    do {                                                                                                       \
        __asm__ volatile("" ::: "memory");                                                                     \
        _tile_loadd(t, p, (long)(stride));                                                                     \
    } while (0)
#define AMX_STORE(t, p, stride) _tile_stored(t, p, (long)(stride))
#define AMX_ZERO(t)             _tile_zero(t)
/* C[m][n] += sum over k of A[m][2k]*B[k][2n] + A[m][2k+1]*B[k][2n+1] (bf16 products, fp32) */
#define AMX_DP(c, a, b) _tile_dpbf16ps(c, a, b)

/* Transposes the 16 x 16 matrix of 32-bit words whose rows are r[0..15], in place. */
static inline void vbp_transpose16(vbp *r)
{
    vbp t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    /* u[4g + k], 128-bit lane L: column 4L + k of rows 4g .. 4g+3 */
    for (int g = 0; g < 4; g++) {
        u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g + 0], t[4 * g + 2]);
        u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g + 0], t[4 * g + 2]);
        u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int k = 0; k < 4; k++) {
        const vbp v0 = _mm512_shuffle_i32x4(u[k], u[4 + k], 0x88),
                  v1 = _mm512_shuffle_i32x4(u[k], u[4 + k], 0xdd);
        const vbp w0 = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0x88),
                  w1 = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0xdd);
        r[k] = _mm512_shuffle_i32x4(v0, w0, 0x88);
        r[k + 8] = _mm512_shuffle_i32x4(v0, w0, 0xdd);
        r[k + 4] = _mm512_shuffle_i32x4(v1, w1, 0x88);
        r[k + 12] = _mm512_shuffle_i32x4(v1, w1, 0xdd);
    }
}

#endif
