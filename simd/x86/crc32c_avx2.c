/* CRC32C kernel at the AVX2 level (SSE4.2 crc32, which the level implies). */
#include "kernels.h"
#include "x86/crc32c_sse42.h"

uint32_t kvz_crc32c_avx2(uint32_t crc, const void *data, size_t n) { return crc32c_sse42(crc, data, n); }
