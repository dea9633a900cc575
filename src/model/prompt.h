/* The token ids of KVzip's prompt pieces and of a question turn, from a model's chat template
 * (spec/kvzip.md §1.1, §1.3): what the kvz tool and libkvz-model both send the model. */
#ifndef KVZ_MODEL_PROMPT_H
#define KVZ_MODEL_PROMPT_H

#include "model/model.h"
#include "model/tokenizer.h"

/* For each k < 4 with ids[k] NULL, the ids of the chat template's piece k (system prefix, first
 * repeat prompt, later repeat prompt, assistant-turn postfix), each encoded on its own without BOS
 * (ids[k] malloc'ed, n[k] its length). family (optional) receives the template family's name.
 * gsm: the GSM8K system prompt. On failure the pieces it made are freed again. */
kvz_status kvz_prompt_pieces(const kvz_model *m, const kvz_tokenizer *tok, int gsm, int32_t *ids[4],
                             size_t n[4], const char **family);

/* A question as a user turn followed by the postfix ids (enc(turn) ++ postfix, as the reference
 * concatenates them); *ids malloc'ed. */
kvz_status kvz_prompt_question(const kvz_model *m, const kvz_tokenizer *tok, const int32_t *postfix,
                               size_t n_postfix, const char *question, int32_t **ids, size_t *n);

#endif
