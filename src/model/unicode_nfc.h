/* Unicode Normalization Form C (UAX #15) with Unicode 9.0's tables, as Hugging Face tokenizers computes it: the
 * normalizer of Qwen2's tokenizer.json. */
#ifndef KVZ_MODEL_UNICODE_NFC_H
#define KVZ_MODEL_UNICODE_NFC_H

#include <stddef.h>
#include <stdint.h>

#include "kvz.h"

/* The buffers kvz_nfc_normalize grows and reuses from call to call: zero-initialize, release with
 * kvz_nfc_buf_free. One buffer serves one thread at a time; the tables behind it are shared and read-only. */
typedef struct kvz_nfc_buf {
    char *text; /* the normalized text of the last call that wrote one */
    size_t text_cap;
    uint32_t *cps, *tmp; /* a chunk of the text as code points with their classes, and scratch */
    size_t cps_cap, tmp_cap;
} kvz_nfc_buf;

/*
 * The NFC form of s[0..n): *out is s itself when no character there is U+0300 or above (such text is its own
 * NFC form), else b->text, valid until the next call with b; *out_n is its length in bytes. Bytes that are no
 * UTF-8 (malformed, truncated or overlong) pass through unchanged, and marks after them join nothing.
 * Fails only with KVZ_ERR_NOMEM, leaving *out and *out_n as s and n.
 */
kvz_status kvz_nfc_normalize(kvz_nfc_buf *b, const char *s, size_t n, const char **out, size_t *out_n);

void kvz_nfc_buf_free(kvz_nfc_buf *b);

#endif
