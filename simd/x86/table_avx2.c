/* The kernel table of the AVX2 level. */
#include "kernels.h"

const kvz_kernel_table kvz_kernels_avx2 = {
    .isa = KVZ_KISA_AVX2,
    .name = "avx2",
    .attn = kvz_attn_avx2,
    .window_score = kvz_window_score_avx2,
    .to_f32 = kvz_to_f32_avx2,
    .from_f32 = kvz_from_f32_avx2,
    .swiglu = kvz_swiglu_avx2,
    .geglu = kvz_geglu_avx2,
    .key_histogram = kvz_key_histogram_avx2,
    .dequant = kvz_dequant_avx2,
    .gemv_q8_0 = kvz_gemv_q8_0_avx2,
    .gemv_blocks = kvz_gemv_blocks_avx2,
    .crc32c = kvz_crc32c_avx2,
};
