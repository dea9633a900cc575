/* Answers questions about a document with libkvz-model (kvz_model.h): the document is compressed
 * once into a KVzip cache, which answers every question; --save keeps the cache in a .kvz file and
 * --load answers from one instead.
 *
 * usage: lm_ask MODEL.gguf (DOCUMENT.txt | --load FILE.kvz) [--ratio R] [--max-tokens N] [--save FILE.kvz]
 *               QUESTION...
 * Prints "A<i>: <answer>" per question; exits 1 with the library's message on a failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvz_model.h"

static int fail(const char *what, kvz_status st)
{
    fprintf(stderr, "lm_ask: %s: %s (%s)\n", what, kvz_last_error(), kvz_strerror(st));
    return 1;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)n + 1)) != NULL && fread(text, 1, (size_t)n, f) == (size_t)n)
        text[n] = '\0';
    else
        free(text), text = NULL;
    if (f)
        fclose(f);
    return text;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *document = NULL, *load = NULL, *save = NULL;
    const char *questions[16];
    int n_questions = 0;
    kvz_lm_compress_opts co = {.struct_size = sizeof co, .policy = KVZ_POLICY_KVZIP_PAIR, .ratio = 0.3};
    kvz_lm_gen_opts go = {.struct_size = sizeof go, .max_tokens = 64};
    for (int i = 1; i < argc; i++) {
        const int has_value = i + 1 < argc;
        if (!strcmp(argv[i], "--ratio") && has_value)
            co.ratio = atof(argv[++i]);
        else if (!strcmp(argv[i], "--max-tokens") && has_value)
            go.max_tokens = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--save") && has_value)
            save = argv[++i];
        else if (!strcmp(argv[i], "--load") && has_value)
            load = argv[++i];
        else if (!model)
            model = argv[i];
        else if (!document && !load)
            document = argv[i];
        else if (n_questions < 16)
            questions[n_questions++] = argv[i];
    }
    if (!model || (!document && !load) || !n_questions) {
        fprintf(stderr,
                "usage: lm_ask MODEL.gguf (DOCUMENT.txt | --load FILE.kvz) [--ratio R] [--max-tokens N] "
                "[--save FILE.kvz] QUESTION...\n");
        return 2;
    }
    kvz_lm *lm = NULL;
    kvz_status st = kvz_lm_open(model, NULL, &lm);
    if (st != KVZ_OK)
        return fail(model, st);
    kvz_cache *cache = NULL;
    int rc = 0;
    if (load) {
        if ((st = kvz_lm_load_cache(lm, load, &cache, NULL)) != KVZ_OK)
            rc = fail(load, st);
    } else {
        char *text = read_file(document);
        if (!text) {
            fprintf(stderr, "lm_ask: cannot read %s\n", document);
            rc = 1;
        } else if ((st = kvz_lm_compress(lm, text, &co, &cache)) != KVZ_OK) {
            rc = fail("compress", st);
        }
        free(text);
    }
    if (!rc && save && (st = kvz_lm_save_cache(lm, cache, save, &co)) != KVZ_OK)
        rc = fail(save, st);
    for (int i = 0; i < n_questions && !rc; i++) {
        char *answer = NULL;
        if ((st = kvz_lm_ask(lm, cache, questions[i], &go, &answer)) != KVZ_OK)
            rc = fail("ask", st);
        else
            printf("A%d: %s\n", i + 1, answer);
        kvz_lm_free(answer);
    }
    kvz_cache_destroy(cache);
    kvz_lm_close(lm);
    return rc;
}
