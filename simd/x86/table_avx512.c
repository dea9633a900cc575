/* The kernel table of the AVX-512 level. */
#include "kernels.h"

const kvz_kernel_table kvz_kernels_avx512 = {
    .isa = KVZ_KISA_AVX512,
    .name = "avx512",
    .attn = kvz_attn_avx512,
    .window_score = kvz_window_score_avx512,
    .to_f32 = kvz_to_f32_avx512,
    .from_f32 = kvz_from_f32_avx512,
    .swiglu = kvz_swiglu_avx512,
    .geglu = kvz_geglu_avx512,
    .key_histogram = kvz_key_histogram_avx512,
    .dequant = kvz_dequant_avx512,
    .gemv_q8_0 = kvz_gemv_q8_0_avx512,
    .gemv_blocks = kvz_gemv_blocks_avx512,
    .crc32c = kvz_crc32c_avx512,
};
