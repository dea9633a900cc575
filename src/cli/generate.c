/* kvz generate: prefill a prompt and sample a continuation (greedy by default), through kvz_model.h alone. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_lm.h"
#include "cli/json.h"

static int usage(FILE *f)
{
    fprintf(
        f,
        "usage: kvz generate --model M (--prompt TEXT | --prompt-ids 1,2,3) --max-tokens N [--json]\n"
        "                    [--temperature T] [--seed S] [--kv-dtype auto|f32|bf16|f16] [--chunk N]\n"
        "                    [--weights auto|f32|bf16] [--stop-at-eos] [--verbose]\n"
        "  --prompt TEXT      the prompt as text, encoded with BOS as the model adds it and special tokens\n"
        "                     recognised (a chat model wants its template, e.g. <|im_start|>user ...)\n"
        "  --prompt-ids IDS   the prompt as comma-separated token ids\n"
        "  --max-tokens N     tokens to generate (0: the prefill only)\n"
        "  --temperature T    0 (default) is greedy argmax; above 0 samples, seeded by --seed S (0)\n"
        "  --stop-at-eos      stop at the model's end-of-text or end-of-turn token\n"
        "  --kv-dtype         the KV cache's storage: auto (default) as the model computes (bf16\n"
        "                     on CPUs with AVX512_BF16 unless the model is stored in f32 or f16, else f32),\n"
        "                     or f32, bf16, f16\n"
        "  --chunk N          prompt tokens per prefill step (512; 0: the whole prompt at once)\n"
        "  --weights          auto (a quantized file's matrices as stored; prefill in bf16 on CPUs with\n"
        "                     AVX512_BF16, else f32), or f32 or bf16 copies made at load\n"
        "  --verbose          on stderr: the weights and KV storage, and the prefill's and decode's tokens/s\n"
        "  --json             prints {\"ids\": [...], \"text\": \"...\"} (the generated ids and their text)\n");
    return f == stdout ? 0 : 2;
}

/* The ids of text with the tokenizer's flags, or of a list of ids (*ids malloc'ed). */
static int prompt_of(const kvz_lm *lm, const char *text, const char *ids_text, int32_t **ids, size_t *n)
{
    if (ids_text)
        return kvz_cli_parse_ids(ids_text, "--prompt-ids", ids, n);
    return kvz_cli_lm_tokenize(lm, text, KVZ_TOKENIZE_BOS | KVZ_TOKENIZE_SPECIAL, ids, n);
}

int kvz_cmd_generate(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL, *prompt_ids = NULL, *weights = "auto";
    size_t max_tokens = 0, chunk = 512;
    double temperature = 0;
    size_t seed = 0;
    int json = 0, have_max = 0, stop_at_eos = 0, verbose = 0;
    kvz_dtype dt = KVZ_CLI_KV_DTYPE_AUTO;
    if (kvz_cli_wants_help(argc, argv))
        return usage(stdout);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "--stop-at-eos"))
            stop_at_eos = 1;
        else if (!strcmp(a, "--verbose"))
            verbose = 1;
        else if (!v)
            return kvz_cli_usage_error("generate", "%s needs a value, or is not an option", a);
        else if (!strcmp(a, "--model"))
            model = v, i++;
        else if (!strcmp(a, "--prompt"))
            prompt = v, i++;
        else if (!strcmp(a, "--prompt-ids"))
            prompt_ids = v, i++;
        else if (!strcmp(a, "--weights"))
            weights = v, i++;
        else if (!strcmp(a, "--max-tokens")) {
            if (kvz_cli_parse_size(v, a, &max_tokens))
                return 2;
            have_max = 1, i++;
        } else if (!strcmp(a, "--chunk")) {
            if (kvz_cli_parse_size(v, a, &chunk))
                return 2;
            i++;
        } else if (!strcmp(a, "--seed")) {
            if (kvz_cli_parse_size(v, a, &seed))
                return 2;
            i++;
        } else if (!strcmp(a, "--temperature")) {
            if (kvz_cli_parse_double(v, a, &temperature) || temperature < 0)
                return kvz_cli_error("--temperature must be >= 0"), 2;
            i++;
        } else if (!strcmp(a, "--kv-dtype")) {
            if (kvz_cli_parse_dtype(v, &dt))
                return 2;
            i++;
        } else
            return kvz_cli_usage_error("generate", "unknown option '%s'", a);
    }
    if (!model || !have_max || !!prompt == !!prompt_ids) {
        if (argc > 1)
            fprintf(stderr,
                    "kvz generate: needs --model, --max-tokens and one of --prompt and --prompt-ids\n\n");
        return usage(stderr);
    }
    kvz_lm *lm = NULL;
    if (kvz_cli_open_lm(model, weights, chunk ? chunk : SIZE_MAX, 0, &lm))
        return 1;
    kvz_lm_info info = {.struct_size = sizeof info};
    kvz_lm_get_info(lm, &info);
    int32_t *ids = NULL, *out = NULL;
    size_t n = 0, n_out = 0;
    float *logits = NULL;
    kvz_cache *cache = NULL;
    int rc = prompt_of(lm, prompt, prompt_ids, &ids, &n);
    if (!rc && !n)
        rc = kvz_cli_error("the prompt is empty");
    kvz_status st = KVZ_OK;
    if (dt == KVZ_CLI_KV_DTYPE_AUTO)
        dt = info.kv_dtype;
    if (!rc) {
        logits = malloc(info.n_vocab * sizeof *logits);
        out = malloc((max_tokens ? max_tokens : 1) * sizeof *out);
        if (!logits || !out)
            rc = kvz_cli_error("out of memory");
    }
    double prefill_s = 0, decode_s = 0;
    if (!rc && (st = kvz_lm_new_cache(lm, dt, &cache)) == KVZ_OK) {
        const double t0 = omp_get_wtime();
        st = kvz_lm_prefill(lm, cache, NULL, ids, n, logits);
        prefill_s = omp_get_wtime() - t0;
    }
    if (!rc && st == KVZ_OK && max_tokens) {
        const kvz_lm_gen_opts go = {.struct_size = sizeof go,
                                    .max_tokens = max_tokens,
                                    .temperature = (float)temperature,
                                    .seed = seed,
                                    .no_stop = !stop_at_eos};
        const double t0 = omp_get_wtime();
        st = kvz_lm_decode(lm, cache, NULL, logits, &go, out, &n_out);
        decode_s = omp_get_wtime() - t0;
    }
    if (!rc && st != KVZ_OK)
        rc = kvz_cli_error("generation failed: %s (%s)", kvz_last_error(), kvz_strerror(st));
    char *text = NULL;
    /* the text starts the document when the prompt was only BOS: drop SentencePiece's dummy-prefix space */
    if (!rc)
        rc = kvz_cli_lm_text(lm, out, n_out, n == 1 && ids[0] == info.bos ? KVZ_DETOKENIZE_START : 0, &text);
    if (!rc && json) {
        printf("{\"ids\": ");
        kvz_json_write_ids(stdout, out, n_out);
        printf(", \"text\": ");
        kvz_json_write_string(stdout, text);
        printf("}\n");
    } else if (!rc) {
        printf("%s\n", text);
    }
    if (!rc && verbose) { /* after the text, which stdout may hold in its buffer until then */
        fflush(stdout);
        fprintf(stderr, "kvz generate: weights %s, KV cache %s, %d threads\n", kvz_cli_weights_name(&info),
                kvz_cli_dtype_name(dt), kvz_num_threads());
        kvz_cli_print_speed("generate", n, prefill_s, n_out, decode_s);
    }
    free(text), free(ids), free(out), free(logits);
    kvz_cache_destroy(cache);
    kvz_lm_close(lm);
    return rc;
}
