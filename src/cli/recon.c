/* Resolving the KVzip reconstruction pieces for the kvz commands (spec/kvzip.md §1.1, §1.3): the options, a
 * --recon file, the model's chat template through kvz_model.h. */
#include "cli/recon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_lm.h"
#include "cli/json.h"

static const char *const names[4] = {"--sys-ids", "--repeat-ids", "--repeat-next-ids", "--postfix-ids"};
static const char *const keys[4] = {"sys-ids", "repeat-ids", "repeat-next-ids", "postfix-ids"};

const char kvz_cli_recon_usage[] =
    "  --sys-ids IDS          system prompt (cached before the context, always kept)\n"
    "  --repeat-ids IDS       first chunk's repeat prompt\n"
    "  --repeat-next-ids IDS  later chunks' repeat prompt\n"
    "  --postfix-ids IDS      assistant-turn opener\n"
    "  --prev-tokens N        tokens of the previous chunk quoted in later prompts, at least 1 (8)\n"
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

void kvz_cli_recon_ids_free(kvz_cli_recon_ids *p)
{
    for (int k = 0; k < 4; k++)
        free(p->ids[k]);
    memset(p, 0, sizeof *p);
}

int kvz_cli_recon_given(const kvz_cli_recon *r, kvz_cli_recon_ids *out)
{
    memset(out, 0, sizeof *out);
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
            rc = kvz_cli_parse_ids(text[k], names[k], &out->ids[k], &out->n[k]);
    out->prev_tokens = 8;
    if (!rc && prev)
        rc = kvz_cli_parse_count(prev, "--prev-tokens", &out->prev_tokens);
    kvz_json_free(j);
    if (rc)
        kvz_cli_recon_ids_free(out);
    return rc;
}

int kvz_cli_recon_resolve_lm(const kvz_cli_recon *r, const kvz_lm *lm, kvz_cli_recon_ids *out)
{
    if (kvz_cli_recon_given(r, out))
        return 1;
    int from_template = 0;
    for (int k = 0; k < 4; k++) {
        if (out->ids[k])
            continue;
        if (kvz_cli_lm_piece(lm, (kvz_lm_piece)k, &out->ids[k], &out->n[k])) {
            kvz_cli_recon_ids_free(out);
            return 1;
        }
        from_template = 1;
    }
    if (from_template) {
        kvz_lm_info info = {.struct_size = sizeof info};
        kvz_lm_get_info(lm, &info);
        snprintf(out->family, sizeof out->family, "%s", info.chat);
        out->source = out->family;
    }
    return 0;
}

kvz_lm_pieces kvz_cli_recon_pieces(const kvz_cli_recon_ids *r)
{
    return (kvz_lm_pieces){.struct_size = sizeof(kvz_lm_pieces),
                           .ids = {r->ids[0], r->ids[1], r->ids[2], r->ids[3]},
                           .n = {r->n[0], r->n[1], r->n[2], r->n[3]},
                           .prev_tokens = r->prev_tokens};
}
