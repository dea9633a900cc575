/* CRC32C (Castagnoli), the checksum of every .kvz section. */
#ifndef KVZ_CORE_CRC32C_H
#define KVZ_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC32C over n bytes; start with crc = 0. */
uint32_t kvz_crc32c(uint32_t crc, const void *data, size_t n);

#endif
