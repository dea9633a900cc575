/* The kernel table of the AMX level: its own attention, avx512bf16's dequant, the rest of avx512. */
#include "kernels.h"

const kvz_kernel_table kvz_kernels_amx = {
    .isa = KVZ_KISA_AMX,
    .name = "amx",
    .attn = kvz_attn_amx,
    .window_score = kvz_window_score_amx,
    .to_f32 = kvz_to_f32_avx512,
    .from_f32 = kvz_from_f32_avx512,
    .swiglu = kvz_swiglu_avx512,
    .geglu = kvz_geglu_avx512,
    .key_histogram = kvz_key_histogram_avx512,
    .dequant = kvz_dequant_avx512bf16,
    .gemv_q8_0 = kvz_gemv_q8_0_avx512,
    .gemv_blocks = kvz_gemv_blocks_avx512,
    .crc32c = kvz_crc32c_avx512,
};
