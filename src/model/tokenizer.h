/* Text to token ids and back for GGUF models: SentencePiece-style ("llama") and byte-level BPE ("gpt2")
 * vocabularies. */
#ifndef KVZ_MODEL_TOKENIZER_H
#define KVZ_MODEL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "kvz.h"
#include "model/gguf.h"

typedef struct kvz_tokenizer kvz_tokenizer;

/*
 * Builds a tokenizer from the GGUF metadata tokenizer.ggml.{model, tokens, scores, token_type, merges,
 * bos_token_id, eos_token_id, unknown_token_id, eot_token_id, eom_token_id, add_bos_token, add_space_prefix,
 * pre}. The tokenizer copies what it needs: g may be closed afterwards.
 *
 * model "llama": SentencePiece-style BPE (the adjacent pair whose concatenation is the best-scoring
 * vocabulary piece merges first), "▁" for spaces, byte fallback through the <0xXX> pieces.
 * model "gpt2": byte-level BPE by merge rank after a regex pre-tokenizer chosen by tokenizer.ggml.pre:
 *   "llama-bpe", "llama3", "llama-v3", "default", "falcon3", "smaug-bpe" or absent -> the Llama-3 rules
 *   (digits in groups of up to 3; a pre-token that is itself a vocabulary entry is not merged: ignore_merges);
 *   "qwen2", "deepseek-r1-qwen" -> the Qwen2 rules (every digit alone);
 *   "gpt2" -> the GPT-2 rules; "smollm" -> the GPT-2 rules after splitting off every digit.
 * Returns KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_UNSUPPORTED (another model or pre-tokenizer; the message names it),
 * KVZ_ERR_FORMAT (missing or malformed metadata: counts that disagree, ids outside the vocabulary, a
 * merge without its space, wrong value types), KVZ_ERR_NOMEM.
 */
kvz_status kvz_tokenizer_from_gguf(const kvz_gguf *g, kvz_tokenizer **out);
void kvz_tokenizer_free(kvz_tokenizer *t);

/*
 * Encodes len bytes of UTF-8 text (text may be NULL when len is 0) into *ids (malloc'ed, the caller frees;
 * never NULL on success, even for no ids) and *n_ids.
 * add_bos: prepend BOS when the model adds one (tokenizer.ggml.add_bos_token; default true for "llama",
 *   false for "gpt2").
 * parse_special: text spelling a control token (type 3, e.g. "<|eot_id|>", "<|im_start|>", "<s>") becomes
 *   that id. User-defined tokens (type 4) always do, as Hugging Face's added tokens do. At each position the
 *   longest such token wins.
 * "llama": the dummy-prefix space (add_space_prefix, default true) goes once in front of the first stretch of
 *   ordinary text of this call (not again after each special token, unlike llama.cpp).
 * A character (SPM) or byte (BPE) no token spells becomes the unknown token: one per character for SPM
 *   without <0xXX> pieces, one per byte for BPE.
 * Cost: O(n log n) in the text length n (a heap of candidate merges over a linked list of symbols), plus the
 *   special-token scan, a walk of a trie at each byte of at most the longest special token's length (not
 *   the number of special tokens).
 * Returns KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (512 MiB of text or more), KVZ_ERR_NOMEM,
 * KVZ_ERR_UNSUPPORTED (a byte the vocabulary cannot spell and no unknown token to stand for it).
 */
kvz_status kvz_tokenizer_encode(const kvz_tokenizer *t, const char *text, size_t len, int add_bos,
                                int parse_special, int32_t **ids, size_t *n_ids);

/* As kvz_tokenizer_encode, adding to *scan_steps (when not NULL) the trie steps of the special-token scan,
 * so that a test can hold it to its bound (at most the longest special token's length + 1 per byte). */
kvz_status kvz_tokenizer_encode_counted(const kvz_tokenizer *t, const char *text, size_t len, int add_bos,
                                        int parse_special, int32_t **ids, size_t *n_ids, size_t *scan_steps);

/*
 * The text of one token written to buf, snprintf-like: returns its length n in bytes whatever size is; the
 * bytes are written only when n <= size, followed by a NUL when n < size (nothing is written otherwise, so a
 * piece is never cut in half). Control, unknown and unused tokens give "" unless render_special (then their
 * text); user-defined tokens always give their text. "llama": "▁" -> space, <0xXX> -> that byte. "gpt2": the
 * byte-level characters -> the bytes. An id outside the vocabulary gives 0.
 */
size_t kvz_tokenizer_piece(const kvz_tokenizer *t, int32_t id, int render_special, char *buf, size_t size);

/* kvz_tokenizer_decode's flags. */
enum {
    KVZ_DECODE_START = 1,  /* the ids start a text: "llama" with the dummy prefix drops one space at the start
                              of the first non-empty piece, so that decode(encode(x)) == x */
    KVZ_DECODE_SPECIAL = 2 /* control tokens (<|im_start|>, <s>, ...) as their text; else left out */
};

/*
 * The pieces of ids[n] concatenated into *text (malloc'ed, NUL-terminated; bytes as the pieces give them, so
 * possibly not valid UTF-8 when a multi-byte character is cut), as flags (KVZ_DECODE_*) say. Returns KVZ_OK,
 * KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (an id outside the vocabulary), KVZ_ERR_NOMEM.
 */
kvz_status kvz_tokenizer_decode(const kvz_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                                char **text);

size_t kvz_tokenizer_vocab(const kvz_tokenizer *t);
int32_t kvz_tokenizer_bos(const kvz_tokenizer *t); /* -1 if none */
int32_t kvz_tokenizer_eos(const kvz_tokenizer *t); /* -1 if none */
/* End of generation: eos, eot_token_id, eom_token_id, and the tokens spelled <|eot_id|>, <|eom_id|>,
 * <|im_end|>, <end_of_turn>, <|endoftext|>, <|end_of_text|>. */
int kvz_tokenizer_is_eog(const kvz_tokenizer *t, int32_t id);
/* The id of the token whose text is exactly piece (NUL-terminated; the stored spelling, e.g. "▁the" or
 * "Ġthe"), or -1. */
int32_t kvz_tokenizer_find(const kvz_tokenizer *t, const char *piece);

#endif
