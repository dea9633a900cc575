/* The token ids of KVzip's prompt pieces and of a question turn, from a model's chat template. */
#include "model/prompt.h"

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "model/chat_template.h"

kvz_status kvz_prompt_pieces(const kvz_model *m, const kvz_tokenizer *tok, int gsm, int32_t *ids[4],
                             size_t n[4], const char **family)
{
    const kvz_chat_family fam = kvz_chat_family_of(m);
    kvz_chat_pieces cp;
    kvz_status st = kvz_chat_pieces_for(fam, gsm, &cp);
    if (st != KVZ_OK)
        return st;
    if (family)
        *family = kvz_chat_family_name(fam);
    const char *text[4] = {cp.sys_prefix, cp.repeat_first, cp.repeat_next, cp.postfix};
    int made[4] = {0};
    for (int k = 0; k < 4 && st == KVZ_OK; k++) {
        if (ids[k])
            continue;
        /* the fallback prefix opens with <|begin_of_text|>: a model without that token gets its own BOS */
        static const char bot[] = "<|begin_of_text|>";
        const int swap_bos = !strncmp(text[k], bot, sizeof bot - 1) && kvz_tokenizer_find(tok, bot) < 0;
        const char *t = text[k] + (swap_bos ? sizeof bot - 1 : 0);
        st = kvz_tokenizer_encode(tok, t, strlen(t), swap_bos, 1, &ids[k], &n[k]);
        made[k] = st == KVZ_OK;
    }
    for (int k = 0; k < 4 && st != KVZ_OK; k++)
        if (made[k])
            free(ids[k]), ids[k] = NULL, n[k] = 0;
    return st;
}

kvz_status kvz_prompt_question(const kvz_model *m, const kvz_tokenizer *tok, const int32_t *postfix,
                               size_t n_postfix, const char *question, int32_t **ids, size_t *n)
{
    char *text = NULL;
    int32_t *body = NULL;
    size_t nb = 0;
    kvz_status st = kvz_chat_question(kvz_chat_family_of(m), question, strlen(question), 0, &text);
    if (st == KVZ_OK)
        st = kvz_tokenizer_encode(tok, text, strlen(text), 0, 1, &body, &nb);
    free(text);
    if (st != KVZ_OK)
        return st;
    int32_t *all = realloc(body, (nb + n_postfix + 1) * sizeof *all);
    if (!all) {
        free(body);
        return kvz_fail(KVZ_ERR_NOMEM, "question: no memory for %zu ids", nb + n_postfix);
    }
    if (n_postfix)
        memcpy(all + nb, postfix, n_postfix * sizeof *all);
    *ids = all, *n = nb + n_postfix;
    return KVZ_OK;
}
