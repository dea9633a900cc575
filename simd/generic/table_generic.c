/* The kernel table of the portable C level. */
#include "kernels.h"

const kvz_kernel_table kvz_kernels_generic = {
    .isa = KVZ_KISA_GENERIC,
    .name = "generic",
    .attn = kvz_attn_generic,
    .window_score = kvz_window_score_generic,
    .to_f32 = kvz_to_f32_generic,
    .from_f32 = kvz_from_f32_generic,
    .swiglu = kvz_swiglu_generic,
    .geglu = kvz_geglu_generic,
    .key_histogram = kvz_key_histogram_generic,
    .dequant = kvz_dequant_generic,
    .gemv_q8_0 = kvz_gemv_q8_0_generic,
    .gemv_blocks = kvz_gemv_blocks_generic,
};
