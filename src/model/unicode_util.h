/* The small Unicode helpers that the tokenizer (tokenizer.c) and the NFC normalizer (unicode_nfc.c) share:
 * UTF-8 decoding and encoding, and the binary search over sorted code-point tables. */
#ifndef KVZ_MODEL_UNICODE_UTIL_H
#define KVZ_MODEL_UNICODE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* The number of rows of a table (an array, not a pointer). */
#define KVZ_N_ROWS(a) (sizeof(a) / sizeof(a)[0])

/* Code point at s[i] (i < n) and its length in *l. Malformed or truncated sequences, surrogates and values
 * above U+10FFFF decode as U+FFFD of length 1, so every byte is consumed exactly once. Overlong forms are
 * not rejected (they only affect how a pre-token is classified; the bytes are kept either way; the NFC
 * normalizer tells them by encoding the code point again). */
static inline uint32_t kvz_utf8_at(const unsigned char *s, size_t n, size_t i, size_t *l)
{
    const unsigned c = s[i];
    size_t k;
    uint32_t v;
    if (c < 0x80) {
        *l = 1;
        return c;
    } else if ((c & 0xE0) == 0xC0)
        k = 2, v = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
        k = 3, v = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
        k = 4, v = c & 0x07;
    else {
        *l = 1;
        return 0xFFFD;
    }
    if (k > n - i) {
        *l = 1;
        return 0xFFFD;
    }
    for (size_t j = 1; j < k; j++) {
        if ((s[i + j] & 0xC0) != 0x80) {
            *l = 1;
            return 0xFFFD;
        }
        v = v << 6 | (s[i + j] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *l = 1;
        return 0xFFFD;
    }
    *l = k;
    return v;
}

/* The UTF-8 encoding of v (at most U+10FFFF) into d, 1 to 4 bytes; returns their number. */
static inline size_t kvz_utf8_put(uint32_t v, char *d)
{
    if (v < 0x80) {
        d[0] = (char)v;
        return 1;
    }
    if (v < 0x800) {
        d[0] = (char)(0xC0 | v >> 6), d[1] = (char)(0x80 | (v & 0x3F));
        return 2;
    }
    if (v < 0x10000) {
        d[0] = (char)(0xE0 | v >> 12), d[1] = (char)(0x80 | (v >> 6 & 0x3F)), d[2] = (char)(0x80 | (v & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | v >> 18), d[1] = (char)(0x80 | (v >> 12 & 0x3F)),
    d[2] = (char)(0x80 | (v >> 6 & 0x3F));
    d[3] = (char)(0x80 | (v & 0x3F));
    return 4;
}

/* The row of a table sorted by its column 0 that holds c, or NULL: rows of width columns, each the range
 * [row[0], row[last]] (last 0: the code point row[0]). */
static inline const uint32_t *kvz_row_of(const uint32_t *rows, size_t n, size_t width, size_t last, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        const uint32_t *r = rows + mid * width;
        if (c < r[0])
            hi = mid;
        else if (c > r[last])
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

#endif
