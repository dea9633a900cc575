/* Growable arrays for the tokenizer's and the NFC normalizer's scratch: capacity doubled as needed. */
#ifndef KVZ_MODEL_GROW_H
#define KVZ_MODEL_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/internal.h"

/* Makes *p (*cap elements of elem bytes, NULL and 0 at first) hold at least need elements, keeping its
 * contents; returns 0, leaving *p and *cap as they were, when the size overflows or memory runs out. */
static inline int kvz_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 1;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c = c > SIZE_MAX / 2 ? need : 2 * c; /* doubling must not wrap around */
    size_t bytes;
    if (!kvz_mul_ok(c, elem, &bytes))
        return 0;
    void *q = realloc(*p, bytes);
    if (!q)
        return 0;
    *p = q, *cap = c;
    return 1;
}

#endif
