/* Chat-template families and KVzip's prompt pieces, word for word from the reference (model/template.py,
 * ModelKVzip.self_task and apply_template). */
#include "model/chat_template.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "model/model.h"

#define INSTR     "Given the context, answer to the following question or request without explanation.\n\n"
#define INSTR_GSM "Given the context, answer to the following reasoning question.\n\n"

#define LLAMA3_SYS                                                                                             \
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"     \
    "<|start_header_id|>user<|end_header_id|>\n\n"
#define CHATML_SYS "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
#define GEMMA_SYS  "<bos><start_of_turn>user\nYou are a helpful assistant.\n\n"
#define PLAIN_SYS  "<|begin_of_text|>"

#define CHATML_POST "<|im_end|>\n<|im_start|>assistant\n"

static const struct {
    const char *name, *sys, *sys_gsm, *post;
} families[] = {
    [KVZ_CHAT_PLAIN] = {"plain", PLAIN_SYS INSTR, PLAIN_SYS INSTR_GSM, "\n\nAnswer: "},
    [KVZ_CHAT_LLAMA3] = {"llama3", LLAMA3_SYS INSTR, LLAMA3_SYS INSTR_GSM,
                         "\n\n<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    [KVZ_CHAT_CHATML] = {"chatml", CHATML_SYS INSTR, CHATML_SYS INSTR_GSM, CHATML_POST},
    [KVZ_CHAT_QWEN3] = {"qwen3", CHATML_SYS INSTR, CHATML_SYS INSTR_GSM, CHATML_POST "<think>\n\n</think>\n\n"},
    [KVZ_CHAT_GEMMA] = {"gemma", GEMMA_SYS INSTR, GEMMA_SYS INSTR_GSM, "<end_of_turn>\n<start_of_turn>model\n"},
};

#define N_FAMILIES (sizeof families / sizeof families[0])

static int contains(const char *s, size_t n, const char *needle)
{
    const size_t m = strlen(needle);
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (s[i] == needle[0] && !memcmp(s + i, needle, m))
            return 1;
    return 0;
}

kvz_chat_family kvz_chat_detect(const char *template_text, size_t len)
{
    if (!template_text || !len)
        return KVZ_CHAT_PLAIN;
    if (contains(template_text, len, "<|start_header_id|>"))
        return KVZ_CHAT_LLAMA3;
    if (contains(template_text, len, "<|im_start|>"))
        return contains(template_text, len, "<think>") ? KVZ_CHAT_QWEN3 : KVZ_CHAT_CHATML;
    if (contains(template_text, len, "<start_of_turn>"))
        return KVZ_CHAT_GEMMA;
    return KVZ_CHAT_PLAIN;
}

kvz_chat_family kvz_chat_family_in(const kvz_gguf *g, const char *arch)
{
    kvz_gguf_str tmpl = {NULL, 0};
    /* found first: a file without a template is no failure, and leaves no message */
    if (g && kvz_gguf_find(g, "tokenizer.chat_template") &&
        kvz_gguf_get_str(g, "tokenizer.chat_template", &tmpl) == KVZ_OK && tmpl.n)
        return kvz_chat_detect(tmpl.p, tmpl.n);
    return !strcmp(arch, "gemma3") ? KVZ_CHAT_GEMMA : KVZ_CHAT_PLAIN;
}

kvz_chat_family kvz_chat_family_of(const kvz_model *m) { return kvz_chat_family_in(m->gguf, m->hp.arch); }

const char *kvz_chat_family_name(kvz_chat_family f)
{
    return (unsigned)f < N_FAMILIES ? families[f].name : "unknown";
}

kvz_status kvz_chat_pieces_for(kvz_chat_family f, int gsm_task, kvz_chat_pieces *out)
{
    if (!out)
        return kvz_fail(KVZ_ERR_NULL, "chat: pieces_for needs an output");
    if ((unsigned)f >= N_FAMILIES)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "chat: unknown template family %d", (int)f);
    out->sys_prefix = gsm_task ? families[f].sys_gsm : families[f].sys;
    out->postfix = families[f].post;
    out->repeat_first = "\n\nRepeat the previous context exactly.";
    out->repeat_next = "\n\nRepeat the part of the previous context exactly, starting with ";
    return KVZ_OK;
}

static int ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

kvz_status kvz_chat_question(kvz_chat_family f, const char *question, size_t len, int with_postfix, char **text)
{
    if (!text || (!question && len))
        return kvz_fail(KVZ_ERR_NULL, "chat: question needs a question and an output");
    *text = NULL;
    if ((unsigned)f >= N_FAMILIES)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "chat: unknown template family %d", (int)f);
    size_t a = 0, b = len;
    while (a < b && ascii_space(question[a]))
        a++;
    while (b > a && ascii_space(question[b - 1]))
        b--;
    const char *post = with_postfix ? families[f].post : "";
    const size_t np = strlen(post);
    if (b - a > SIZE_MAX - np - 3)
        return kvz_fail(KVZ_ERR_NOMEM, "chat: a question of %zu bytes", len);
    char *s = malloc(2 + (b - a) + np + 1);
    if (!s)
        return kvz_fail(KVZ_ERR_NOMEM, "chat: no memory for a question of %zu bytes", len);
    memcpy(s, "\n\n", 2);
    if (b > a)
        memcpy(s + 2, question + a, b - a);
    memcpy(s + 2 + (b - a), post, np + 1);
    *text = s;
    return KVZ_OK;
}
