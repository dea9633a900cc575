/* The chat-template family of a model and KVzip's prompt pieces for it (spec/kvzip.md §1.1, §1.3, §4.4), as
 * text. */
#ifndef KVZ_MODEL_CHAT_TEMPLATE_H
#define KVZ_MODEL_CHAT_TEMPLATE_H

#include <stddef.h>

#include "kvz.h"
#include "model/gguf.h"

typedef enum kvz_chat_family {
    KVZ_CHAT_PLAIN,  /* no known template: the reference's fallback */
    KVZ_CHAT_LLAMA3, /* <|start_header_id|> ... */
    KVZ_CHAT_CHATML, /* <|im_start|> ... (Qwen2.5 and other ChatML models) */
    KVZ_CHAT_QWEN3,  /* ChatML whose template knows <think>: the assistant opener closes an empty think block */
    KVZ_CHAT_GEMMA   /* <start_of_turn> ... */
} kvz_chat_family;

/*
 * The KVzip pieces (static strings). Encode each piece on its own, with parse_special on and add_bos off:
 * the pieces spell their own special tokens (sys_prefix starts with <|begin_of_text|> / <bos> where the
 * reference has it), and the reference tokenizes every piece separately (add_special_tokens=False).
 *   sys_prefix   system prompt and the opened user turn, ending with the instruction (always kept);
 *                the context follows it directly.
 *   postfix      closes the user turn and opens the assistant turn.
 *   repeat_first "\n\nRepeat the previous context exactly." (scoring pass of chunk 1)
 *   repeat_next  "\n\nRepeat the part of the previous context exactly, starting with " (chunks >= 2; the last 8
 *                ids of the previous chunk follow it, then postfix)
 */
typedef struct kvz_chat_pieces {
    const char *sys_prefix, *postfix, *repeat_first, *repeat_next;
} kvz_chat_pieces;

/*
 * The family of a tokenizer.chat_template string (NULL or len 0 -> PLAIN), by the markers the template
 * text contains, checked in this order: "<|start_header_id|>" -> LLAMA3; "<|im_start|>" -> QWEN3 when the
 * template also mentions "<think>" (Qwen3 templates do, to handle enable_thinking; the reference's Qwen3
 * postfix adds the empty think block that non-thinking mode writes), else CHATML; "<start_of_turn>" -> GEMMA;
 * otherwise PLAIN.
 */
kvz_chat_family kvz_chat_detect(const char *template_text, size_t len);
/* The family of a model: kvz_chat_detect on its tokenizer.chat_template; a file without a template
 * gets its architecture's family where that has one (gemma3: GEMMA, as Gemma 3's base models ship
 * without a template but their vocabulary has the turn markers), else PLAIN. */
struct kvz_model;
kvz_chat_family kvz_chat_family_of(const struct kvz_model *m);
/* The same for a GGUF file of architecture arch (general.architecture) without the weights loaded. */
kvz_chat_family kvz_chat_family_in(const kvz_gguf *g, const char *arch);

/* "plain", "llama3", "chatml", "qwen3", "gemma"; "unknown" for another value. */
const char *kvz_chat_family_name(kvz_chat_family f);

/*
 * The pieces of family f. gsm_task selects the reasoning instruction (the reference uses it for tasks whose
 * name starts with "gsm"). PLAIN is the reference's fallback exactly: "<|begin_of_text|>" + instruction, and
 * "\n\nAnswer: " as postfix; on a vocabulary without a <|begin_of_text|> token that prefix is ordinary text.
 * Returns KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (unknown family).
 */
kvz_status kvz_chat_pieces_for(kvz_chat_family f, int gsm_task, kvz_chat_pieces *out);

/*
 * A question turn as the reference builds it (ModelKVzip.apply_template): "\n\n" + the question with
 * leading and trailing whitespace removed, into *text (malloc'ed, NUL-terminated). The reference encodes this
 * text and the family's postfix SEPARATELY and concatenates the ids (prefill ++ enc(text) ++ enc(postfix));
 * do the same for identical ids. with_postfix appends the postfix to the text instead, for display or one
 * encode (which may merge differently across the seam). Only ASCII whitespace (space, \t \n \v \f \r) is
 * stripped; Python's str.strip() also strips Unicode spaces.
 * Returns KVZ_OK, KVZ_ERR_NULL, KVZ_ERR_INVALID_ARG (unknown family), KVZ_ERR_NOMEM.
 */
kvz_status kvz_chat_question(kvz_chat_family f, const char *question, size_t len, int with_postfix,
                             char **text);

#endif
