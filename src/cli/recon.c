/* Resolving the KVzip reconstruction pieces for the kvz commands (spec/kvzip.md §1.1, §1.3), and the ids of a
 * question turn built from them. */
#include "cli/recon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/json.h"
#include "model/chat_template.h"
#include "model/prompt.h"

static const char *const names[4] = {"--sys-ids", "--repeat-ids", "--repeat-next-ids", "--postfix-ids"};
static const char *const keys[4] = {"sys-ids", "repeat-ids", "repeat-next-ids", "postfix-ids"};

const char kvz_cli_recon_usage[] =
    "  --sys-ids IDS          system prompt (cached before the context, always kept)\n"
    "  --repeat-ids IDS       first chunk's repeat prompt\n"
    "  --repeat-next-ids IDS  later chunks' repeat prompt\n"
    "  --postfix-ids IDS      assistant-turn opener\n"
    "  --prev-tokens N        tokens of the previous chunk quoted in later prompts (8)\n"
    "  --recon FILE.json      the options above as a JSON object (as ../shared/eval/*-recon.json)\n"
    "  (IDS: comma-separated token ids; without them these prompts come from the model's chat template)\n";

int kvz_cli_recon_option(kvz_cli_recon *r, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char **slot = NULL;
    for (int k = 0; k < 4; k++)
        if (!strcmp(a, names[k]))
            slot = &r->ids[k];
    if (!strcmp(a, "--prev-tokens"))
        slot = &r->prev_tokens;
    if (!strcmp(a, "--recon"))
        slot = &r->file;
    if (!slot)
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *slot = argv[++*i];
    return 1;
}

void kvz_cli_pieces_free(kvz_cli_pieces *p)
{
    for (int k = 0; k < 4; k++)
        free(p->own[k]);
    memset(p, 0, sizeof *p);
}

/* The text pieces of the model's chat template, encoded each on its own without BOS. */
static int from_template(const kvz_model *m, const kvz_tokenizer *tok, int gsm, int32_t **ids, size_t *n,
                         const char **source)
{
    const kvz_status st = kvz_prompt_pieces(m, tok, gsm, ids, n, source);
    return st == KVZ_OK ? 0 : kvz_cli_error("chat template: %s (%s)", kvz_last_error(), kvz_strerror(st));
}

int kvz_cli_recon_resolve(const kvz_cli_recon *r, const kvz_model *m, const kvz_tokenizer *tok, int gsm,
                          kvz_cli_pieces *out)
{
    memset(out, 0, sizeof *out);
    size_t n[4] = {0};
    const char *text[4] = {r->ids[0], r->ids[1], r->ids[2], r->ids[3]};
    const char *prev = r->prev_tokens;
    char prev_buf[32];
    kvz_json *j = NULL;
    int rc = 0;
    out->source = "options";
    if (r->file) {
        char *buf;
        size_t len;
        char err[128];
        if (kvz_cli_read_file(r->file, &buf, &len))
            return 1;
        j = kvz_json_parse(buf, len, err, sizeof err);
        free(buf);
        if (!j || j->type != KVZ_JSON_OBJECT) {
            kvz_json_free(j);
            return kvz_cli_error("%s: not a JSON object of options (%s)", r->file, j ? "not an object" : err);
        }
        for (int k = 0; k < 4; k++) {
            const kvz_json *v = kvz_json_get(j, keys[k]);
            if (v && !text[k]) {
                if (v->type != KVZ_JSON_STRING) {
                    kvz_json_free(j);
                    return kvz_cli_error("%s: \"%s\" must be a string of ids", r->file, keys[k]);
                }
                text[k] = v->string;
                out->source = "recon file";
            }
        }
        const kvz_json *pv = kvz_json_get(j, "prev-tokens");
        if (pv && !prev) {
            snprintf(prev_buf, sizeof prev_buf, "%.0f", pv->type == KVZ_JSON_NUMBER ? pv->number : -1.0);
            prev = pv->type == KVZ_JSON_STRING ? pv->string : prev_buf;
        }
    }
    for (int k = 0; k < 4 && !rc; k++)
        if (text[k])
            rc = kvz_cli_parse_ids(text[k], names[k], &out->own[k], &n[k]);
    int missing = 0;
    for (int k = 0; k < 4; k++)
        missing |= !text[k];
    if (!rc && missing) {
        const char *src = NULL;
        rc = from_template(m, tok, gsm, out->own, n, &src);
        if (!rc)
            out->source = src;
    }
    out->prev_tokens = 8;
    if (!rc && prev)
        rc = kvz_cli_parse_size(prev, "--prev-tokens", &out->prev_tokens);
    kvz_json_free(j);
    if (rc) {
        kvz_cli_pieces_free(out);
        return 1;
    }
    out->p = (kvz_kvzip_pieces){out->own[0], n[0], out->own[1], n[1], out->own[2], n[2], out->own[3], n[3]};
    return 0;
}

int kvz_cli_question_ids(const kvz_model *m, const kvz_tokenizer *tok, const kvz_kvzip_pieces *p, const char *q,
                         int32_t **ids, size_t *n)
{
    const kvz_status st = kvz_prompt_question(m, tok, p->postfix, p->n_postfix, q, ids, n);
    return st == KVZ_OK ? 0 : kvz_cli_error("question: %s (%s)", kvz_last_error(), kvz_strerror(st));
}
