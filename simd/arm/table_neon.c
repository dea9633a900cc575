/* The kernel table of the NEON level. */
#include "kernels.h"

const kvz_kernel_table kvz_kernels_neon = {
    .isa = KVZ_KISA_NEON,
    .name = "neon",
    .attn = kvz_attn_neon,
    .window_score = kvz_window_score_neon,
    .to_f32 = kvz_to_f32_neon,
    .from_f32 = kvz_from_f32_neon,
    .swiglu = kvz_swiglu_neon,
    .geglu = kvz_geglu_neon,
    .key_histogram = kvz_key_histogram_neon,
    .dequant = kvz_dequant_neon,
    .gemv_q8_0 = kvz_gemv_q8_0_neon,
    .gemv_blocks = kvz_gemv_blocks_neon,
};
