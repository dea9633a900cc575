/* kvz tokenize: the token ids a GGUF model's tokenizer gives a text (BOS as the model adds it, special tokens
 * parsed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kvz.h"
#include "model/gguf.h"
#include "model/tokenizer.h"

static const char usage[] =
    "usage: kvz tokenize --model M [--json] [--] TEXT\n"
    "  the token ids of TEXT, BOS as the model adds it, special tokens such as <|im_start|>\n"
    "  recognised; -- before a TEXT that starts with '-'; --json prints {\"ids\": [...]}\n";

static int usage_error(const char *why, const char *arg)
{
    fprintf(stderr, "kvz tokenize: %s%s\n%s", why, arg ? arg : "", usage);
    return 2;
}

int kvz_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *text = NULL;
    int json = 0;
    if (kvz_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--model")) {
            if (++i >= argc)
                return usage_error("--model needs a file", NULL);
            model = argv[i];
        } else if (!strncmp(argv[i], "--model=", 8))
            model = argv[i] + 8;
        else if (!strcmp(argv[i], "--") && i + 1 < argc && !text)
            text = argv[++i]; /* a text that starts with "--" */
        else if (argv[i][0] == '-' && argv[i][1] == '-')
            return usage_error("unknown option ", argv[i]);
        else if (text)
            return usage_error("more than one text: ", argv[i]);
        else
            text = argv[i];
    }
    if (!model)
        return usage_error("--model is required", NULL);
    if (!text)
        return usage_error("no text given", NULL);

    kvz_gguf *g = NULL;
    kvz_tokenizer *t = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    kvz_status st = kvz_gguf_open(model, &g);
    if (st == KVZ_OK)
        st = kvz_tokenizer_from_gguf(g, &t);
    if (st == KVZ_OK)
        st = kvz_tokenizer_encode(t, text, strlen(text), 1, 1, &ids, &n);
    int rc = 0;
    if (st != KVZ_OK)
        rc = kvz_cli_error("%s", kvz_last_error()[0] ? kvz_last_error() : kvz_strerror(st));
    else {
        fputs(json ? "{\"ids\": [" : "", stdout);
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? (json ? ", " : " ") : "", (int)ids[i]);
        fputs(json ? "]}\n" : "\n", stdout);
        if (fflush(stdout) != 0)
            rc = kvz_cli_error("cannot write the ids");
    }
    free(ids);
    kvz_tokenizer_free(t);
    kvz_gguf_close(g);
    return rc;
}
