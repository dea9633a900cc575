/* kvz tokenize: the token ids a GGUF model's tokenizer gives a text (BOS as the model adds it, special tokens
 * parsed), or with --count-lines the token counts of a stream of texts, one JSON string a line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cli/cli.h"
#include "cli/cli_lm.h"
#include "cli/json.h"

static const char usage[] =
    "usage: kvz tokenize --model M [--json] [--] TEXT\n"
    "       kvz tokenize --model M --count-lines\n"
    "  the token ids of TEXT, BOS as the model adds it, special tokens such as <|im_start|>\n"
    "  recognised; -- before a TEXT that starts with '-'; --json prints {\"ids\": [...]}\n"
    "  --count-lines  reads standard input line by line, each line one JSON string literal (the\n"
    "    text, escaped, so it may hold newlines), and prints for each the number of ids of that\n"
    "    text on its own line, flushed at once: encoded as kvz compress encodes a --context (no\n"
    "    BOS, special-token spellings taken as plain text). A line that is not one JSON string\n"
    "    (or holds \\u0000) stops it with exit status 2 and its line number.\n";

static int usage_error(const char *why, const char *arg)
{
    fprintf(stderr, "kvz tokenize: %s%s\n%s", why, arg ? arg : "", usage);
    return 2;
}

/* Whether the JSON string literal in line escapes a NUL (\u0000), which the parsed, NUL-terminated text
 * would silently end at. */
static int escapes_nul(const char *line, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (line[i] == '\\') {
            if (line[i + 1] == 'u' && len - i >= 6 && !memcmp(line + i + 2, "0000", 4))
                return 1;
            i++; /* the escaped character */
        }
    return 0;
}

/* --count-lines: one count a line of standard input, flushed at once so that a caller can keep the
 * process open and ask again after each answer. */
static int count_lines(const kvz_lm *lm)
{
    char *line = NULL, err[160];
    size_t cap = 0;
    int rc = 0;
    for (size_t no = 1;; no++) {
        const ssize_t got = getline(&line, &cap, stdin);
        if (got < 0)
            break;
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n')
            line[--len] = '\0';
        err[0] = '\0';
        kvz_json *j = kvz_json_parse(line, len, err, sizeof err);
        if (!j || j->type != KVZ_JSON_STRING || escapes_nul(line, len)) {
            fprintf(stderr, "kvz tokenize: line %zu of standard input: %s\n", no,
                    !j                           ? err
                    : j->type != KVZ_JSON_STRING ? "not a JSON string literal"
                                                 : "a \\u0000 in the text");
            kvz_json_free(j);
            rc = 2;
            break;
        }
        size_t n = 0;
        const kvz_status st = kvz_lm_tokenize(lm, j->string, 0, NULL, 0, &n);
        kvz_json_free(j);
        if (st != KVZ_OK) {
            rc = kvz_cli_error("line %zu of standard input: cannot tokenize: %s (%s)", no, kvz_last_error(),
                               kvz_strerror(st));
            break;
        }
        printf("%zu\n", n);
        if (fflush(stdout) != 0) {
            rc = kvz_cli_error("cannot write the counts");
            break;
        }
    }
    if (!rc && ferror(stdin))
        rc = kvz_cli_error("cannot read standard input");
    free(line);
    return rc;
}

int kvz_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *text = NULL;
    int json = 0, count = 0;
    if (kvz_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--count-lines"))
            count = 1;
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
    if (count && text)
        return usage_error("--count-lines reads its texts from standard input, not ", text);
    if (count && json)
        return usage_error("--count-lines prints counts, not --json", NULL);
    if (!text && !count)
        return usage_error("no text given", NULL);

    kvz_lm *lm = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    /* the tokenizer alone: no weights read, and a vocabulary-only GGUF will do */
    int rc = kvz_cli_open_lm(model, "auto", 0, 1, &lm);
    if (!rc && count)
        rc = count_lines(lm);
    else if (!rc && !(rc = kvz_cli_lm_tokenize(lm, text, KVZ_TOKENIZE_BOS | KVZ_TOKENIZE_SPECIAL, &ids, &n))) {
        fputs(json ? "{\"ids\": [" : "", stdout);
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? (json ? ", " : " ") : "", (int)ids[i]);
        fputs(json ? "]}\n" : "\n", stdout);
        if (fflush(stdout) != 0)
            rc = kvz_cli_error("cannot write the ids");
    }
    free(ids);
    kvz_lm_close(lm);
    return rc;
}
