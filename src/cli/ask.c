/* kvz ask: answer questions from a compressed cache saved by kvz compress. Every question is
 * appended through its own query tail over the same read-only cache (the multi-query
 * protocol of KVzip), so the answers do not see each other and the file is never changed;
 * with --multi-turn the questions and answers are appended to the cache itself instead, as
 * a conversation (in memory: the file still is not changed). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_lm.h"
#include "cli/json.h"
#include "cli/recon.h"

#define MAX_QUESTIONS 64

static int usage(FILE *f)
{
    fprintf(
        f,
        "usage: kvz ask --model M --cache cache.kvz (--question TEXT | --question-ids IDS)... [--max-tokens "
        "N]\n"
        "               [--json] [--temperature T] [--seed S] [--no-stop] [--multi-turn] [--weights "
        "auto|f32|bf16]\n"
        "               [--verbose]\n"
        "               [reconstruction options: the assistant opener]\n"
        "  Answers questions from a cache written by kvz compress (with the same model).\n"
        "  --question TEXT     a question as text: \"\\n\\n\" + the question, then the assistant opener of "
        "the\n"
        "                      chat template (or --postfix-ids / --recon), each encoded on its own (spec "
        "kvzip.md)\n"
        "  --question-ids IDS  a question as comma-separated token ids, appended verbatim after the context\n"
        "  repeat --question/--question-ids to ask several questions of the same cache\n"
        "  --max-tokens N      answer length limit (64); answers stop at the end-of-turn token unless "
        "--no-stop\n"
        "  --temperature T     0 (default) answers greedily; above 0 samples, seeded by --seed S\n"
        "  --multi-turn        each question sees the earlier questions and answers (a conversation)\n"
        "  --verbose           on stderr: the weights and the cache's storage (the file's: kvz compress\n"
        "                      --kv-dtype chose it), and each question's prefill and decode tokens/s\n"
        "  --json              one {\"question\": i, \"ids\": [...], \"text\": \"...\"} per question\n"
        "  A model without chat training, such as the tiny stories260K, continues the text instead of\n"
        "  answering: its answers need not relate to the question.\n"
        "%s",
        kvz_cli_recon_usage);
    return f == stdout ? 0 : 2;
}

int kvz_cmd_ask(int argc, char **argv)
{
    const char *model = NULL, *cache_path = NULL, *weights = "auto";
    const char *questions[MAX_QUESTIONS];
    int is_ids[MAX_QUESTIONS];
    size_t n_questions = 0, max_tokens = 64, seed = 0;
    double temperature = 0;
    int json = 0, stop = 1, multi_turn = 0, verbose = 0;
    kvz_cli_recon recon = {0};
    if (kvz_cli_wants_help(argc, argv))
        return usage(stdout);
    for (int i = 1; i < argc; i++) {
        const int r = kvz_cli_recon_option(&recon, argc, argv, &i);
        if (r < 0)
            return kvz_cli_usage_error("ask", "%s needs a value", argv[i]);
        if (r)
            continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (!strcmp(a, "--no-stop")) {
            stop = 0;
            continue;
        }
        if (!strcmp(a, "--multi-turn")) {
            multi_turn = 1;
            continue;
        }
        if (!strcmp(a, "--verbose")) {
            verbose = 1;
            continue;
        }
        if (!v)
            return kvz_cli_usage_error("ask", "%s needs a value, or is not an option", a);
        i++;
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--cache"))
            cache_path = v;
        else if (!strcmp(a, "--weights"))
            weights = v;
        else if (!strcmp(a, "--question") || !strcmp(a, "--question-ids")) {
            if (n_questions == MAX_QUESTIONS)
                return kvz_cli_error("at most %d questions", MAX_QUESTIONS), 2;
            is_ids[n_questions] = !strcmp(a, "--question-ids");
            questions[n_questions++] = v;
        } else if (!strcmp(a, "--max-tokens")) {
            if (kvz_cli_parse_count(v, a, &max_tokens))
                return 2;
        } else if (!strcmp(a, "--seed")) {
            if (kvz_cli_parse_size(v, a, &seed))
                return 2;
        } else if (!strcmp(a, "--temperature")) {
            if (kvz_cli_parse_double(v, a, &temperature) || temperature < 0)
                return kvz_cli_error("--temperature must be >= 0"), 2;
        } else
            return kvz_cli_usage_error("ask", "unknown option '%s'", a);
    }
    if (!model || !cache_path || !n_questions) {
        if (argc > 1)
            fprintf(stderr,
                    "kvz ask: needs --model, --cache and at least one --question or --question-ids\n\n");
        return usage(stderr);
    }
    kvz_lm *lm = NULL;
    if (kvz_cli_open_lm(model, weights, 0, 0, &lm))
        return 1;
    kvz_lm_info info = {.struct_size = sizeof info};
    kvz_lm_get_info(lm, &info);
    kvz_cache *cache = NULL;
    kvz_cache_meta meta = {.struct_size = sizeof meta};
    kvz_cli_recon_ids pieces = {0};
    float *logits = malloc(info.n_vocab * sizeof *logits);
    int32_t *out = malloc(max_tokens * sizeof *out);
    int rc = !logits || !out ? kvz_cli_error("out of memory") : 0;
    kvz_status st = KVZ_OK;
    /* the fingerprint, shape and sliding windows against the model's, before any query reads it */
    if (!rc && (st = kvz_lm_load_cache(lm, cache_path, &cache, &meta)) != KVZ_OK)
        rc = kvz_cli_error("cannot use %s: %s (%s)", cache_path, kvz_last_error(), kvz_strerror(st));
    if (!rc)
        rc = kvz_cli_recon_resolve_lm(&recon, lm, &pieces);
    if (!rc && info.n_params < 10000000) /* stories260K: 0.3 M */
        fprintf(stderr,
                "kvz ask: note: this model has %.1f M parameters and no chat training; it continues the text "
                "rather than answering, so its answers need not relate to the questions\n",
                (double)info.n_params / 1e6);
    if (!rc && verbose) {
        kvz_dtype dt = KVZ_DTYPE_F32;
        kvz_cache_shape(cache, NULL, NULL, NULL, &dt);
        fprintf(stderr, "kvz ask: weights %s, KV cache %s (as saved), %d threads\n",
                kvz_cli_weights_name(&info), kvz_cli_dtype_name(dt), kvz_num_threads());
    }
    if (!rc && !json) {
        if (!strcmp(meta.policy, "full")) /* a full cache's stored ratio means nothing */
            printf("cache %s: policy full (every key/value pair kept)\n", cache_path);
        else
            printf("cache %s: policy %s, kept ratio %g\n", cache_path, meta.policy[0] ? meta.policy : "?",
                   meta.ratio);
    }
    const kvz_lm_gen_opts go = {.struct_size = sizeof go,
                                .max_tokens = max_tokens,
                                .temperature = (float)temperature,
                                .seed = seed,
                                .no_stop = !stop};
    for (size_t qi = 0; !rc && qi < n_questions; qi++) {
        int32_t *ids = NULL;
        size_t n = 0, n_out = 0;
        rc = is_ids[qi] ? kvz_cli_parse_ids(questions[qi], "--question-ids", &ids, &n)
                        : kvz_cli_lm_question(lm, questions[qi], pieces.ids[KVZ_PIECE_POSTFIX],
                                              pieces.n[KVZ_PIECE_POSTFIX], &ids, &n);
        if (!rc && !n)
            rc = kvz_cli_error("question %zu is empty", qi + 1);
        kvz_query *q = NULL;
        if (!rc && !multi_turn && (st = kvz_query_create(cache, &q)) != KVZ_OK)
            rc = kvz_cli_error("question %zu: %s (%s)", qi + 1, kvz_last_error(), kvz_strerror(st));
        kvz_cache *own = multi_turn ? cache : NULL; /* a conversation appends to the cache itself */
        double t0 = omp_get_wtime(), prefill_s = 0, decode_s = 0;
        if (!rc && (st = kvz_lm_prefill(lm, own, q, ids, n, logits)) != KVZ_OK)
            rc = kvz_cli_error("question %zu: %s (%s)", qi + 1, kvz_last_error(), kvz_strerror(st));
        prefill_s = omp_get_wtime() - t0;
        if (!rc) {
            t0 = omp_get_wtime();
            if ((st = kvz_lm_decode(lm, own, q, logits, &go, out, &n_out)) != KVZ_OK)
                rc = kvz_cli_error("question %zu: %s (%s)", qi + 1, kvz_last_error(), kvz_strerror(st));
            decode_s = omp_get_wtime() - t0;
        }
        const size_t n_generated = n_out;
        /* a conversation keeps the whole answer: decoding returns its last token unfed */
        if (!rc && multi_turn && n_out &&
            (st = kvz_lm_prefill(lm, own, NULL, &out[n_out - 1], 1, logits)) != KVZ_OK)
            rc = kvz_cli_error("question %zu: %s (%s)", qi + 1, kvz_last_error(), kvz_strerror(st));
        kvz_query_destroy(q);
        char *text = NULL;
        if (!rc && n_out && stop && kvz_lm_is_eog(lm, out[n_out - 1]))
            n_out--; /* the end-of-turn token ends the answer; it is not part of it */
        if (!rc)
            rc = kvz_cli_lm_text(lm, out, n_out, 0, &text);
        if (!rc && json) {
            printf("{\"question\": %zu, \"ids\": ", qi);
            kvz_json_write_ids(stdout, out, n_out);
            printf(", \"text\": ");
            kvz_json_write_string(stdout, text);
            printf("}\n");
        } else if (!rc) {
            printf("Q%zu: %s\nA%zu: %s\n", qi + 1, is_ids[qi] ? "(ids)" : questions[qi], qi + 1, text);
        }
        if (!rc && verbose) { /* after the answer, which stdout may hold in its buffer until then */
            char what[48];
            snprintf(what, sizeof what, "ask: question %zu", qi + 1);
            fflush(stdout);
            kvz_cli_print_speed(what, n, prefill_s, n_generated, decode_s);
        }
        free(text), free(ids);
    }
    free(logits), free(out);
    kvz_cli_recon_ids_free(&pieces);
    kvz_cache_destroy(cache);
    kvz_lm_close(lm);
    return rc;
}
