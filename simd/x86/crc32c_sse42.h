/* CRC32C with the SSE4.2 crc32 instruction (8 bytes per step), for the x86 levels' kernel tables. */
#ifndef KVZ_CRC32C_SSE42_H
#define KVZ_CRC32C_SSE42_H

#include <nmmintrin.h>
#include <stdint.h>
#include <string.h>

/* Continues a CRC32C (the same value as core/crc32c.c's table-driven one). */
static inline uint32_t crc32c_sse42(uint32_t crc, const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t c = ~crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
    }
    uint32_t c32 = (uint32_t)c;
    for (; n; n--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}

#endif
