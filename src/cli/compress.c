/* kvz compress: prefill a context, score it by reconstruction (KVzip), select by a policy,
 * compact and save the cache as a .kvz file (kvz_model.h's kvz_lm_compress_ids). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_lm.h"
#include "cli/head_calib.h"
#include "cli/json.h"
#include "cli/npy.h"
#include "cli/recon.h"
#include "kvz_model.h"

static int usage(FILE *f)
{
    fprintf(
        f,
        "usage: kvz compress --model M (--context FILE | --context-text TEXT | --context-ids FILE) --out "
        "cache.kvz\n"
        "                    [--policy P] [--ratio R] [--mode strict|exact] [--chunk N]\n"
        "                    [--dump-scores scores.npy] [--head-scores F.npy[,G.npy...]]\n"
        "                    [--save-head-scores F.npy] [--kv-dtype auto|f32|bf16|f16] [--weights "
        "auto|f32|bf16]\n"
        "                    [--tsp-rate R] [--json] [reconstruction options]\n"
        "  Prefills the context after the system prompt, scores every cached key/value pair (KVzip: by the\n"
        "  attention it gets while the model repeats the context), keeps the best R of them and writes the\n"
        "  cache to a .kvz file that kvz ask answers questions from.\n"
        "  --context FILE       a text file holding the context (encoded without BOS: the system prompt\n"
        "                       opens the cache)\n"
        "  --context-text TEXT  the context itself, as text (encoded like --context)\n"
        "  --context-ids FILE   a file of token ids of the context, separated by whitespace or commas\n"
        "  --policy   kvzip-pair (default), kvzip-pair-uniform, kvzip-head, fastkv, snapkv, pyramidkv,\n"
        "             adakv (window scores of the last 8 context tokens, pooled by 7), h2o (the attention\n"
        "             each token received from every later prefill query; keeps the last 8 as well),\n"
        "             streaming, random, full (keeps everything: no ratio)\n"
        "  --ratio    the KEPT fraction of the context's key/value pairs, in (0, 1] (default 0.3: 30 %%)\n"
        "  --mode     how kvzip-pair cuts at the ratio: strict (the paper's rule: the scores strictly above\n"
        "             the cut, so ties at it go) or exact (exactly the ratio's count of pairs)\n"
        "  --chunk    context tokens per reconstruction pass (default 2000)\n"
        "  --dump-scores  float32 [layers, kv_heads, context tokens] (system prompt excluded)\n"
        "  --head-scores  kvzip-head: float32 [layers, kv_heads] files, maximum taken over them\n"
        "  --save-head-scores  the max over tokens of this context's scores, float32 [layers, kv_heads]\n"
        "  --tsp-rate FastKV's own prefill (with --policy fastkv): past the middle layer only the share R\n"
        "             of the tokens runs on (token-selective propagation; with sliding-window layers, past\n"
        "             the global layer nearest the middle); every layer's cache keeps --ratio of its tokens\n"
        "             per KV head (past the middle: ratio / R of the fewer tokens there), a sliding-window\n"
        "             layer its window\n"
        "  --kv-dtype the cache's storage: auto (default) as the model computes (bf16 on CPUs\n"
        "             with AVX512_BF16 unless the model is stored in f32 or f16, else f32; kvz info --model\n"
        "             says which), or f32, bf16, f16\n"
        "  --weights  auto (a quantized file's matrices as stored; prefill in bf16 on CPUs with\n"
        "             AVX512_BF16, else f32), or f32 or bf16 copies made at load\n"
        "  --json     one JSON object with the figures below\n"
        "  Prints the context's size, what was kept, the cache's size and the time of each step. The times\n"
        "  are taken after an untimed warm-up prefill (at most 2048 tokens of the context): the process's\n"
        "  one-time costs would otherwise land in the first timed step.\n"
        "  Reconstruction options: the prompts KVzip's scoring passes use (the chat template's by default)\n"
        "%s",
        kvz_cli_recon_usage);
    return f == stdout ? 0 : 2;
}

/* The kept share of the context in layer l (over its KV heads), or -1 for a sliding-window layer,
 * which keeps its window and is not selected from. */
static double layer_kept(const kvz_cache *c, size_t l, size_t n_kv_heads, size_t n_sys, size_t n_c)
{
    size_t window = 0;
    kvz_cache_layer_window(c, l, &window);
    if (window)
        return -1;
    size_t rows = 0;
    for (size_t h = 0; h < n_kv_heads; h++) {
        size_t len = 0;
        kvz_cache_length(c, l, h, &len);
        rows += len > n_sys ? len - n_sys : 0;
    }
    return (double)rows / (double)(n_kv_heads * n_c);
}

/* Every layer's kept share: sep between them, none for a sliding-window layer, digits decimals. */
static void print_layer_kept(const kvz_cache *c, const kvz_lm_info *mi, size_t n_sys, size_t n_c,
                             const char *sep, const char *none, int digits)
{
    for (size_t l = 0; l < mi->n_layers; l++) {
        const double k = layer_kept(c, l, mi->n_kv_heads, n_sys, n_c);
        if (k < 0)
            printf("%s%s", l ? sep : "", none);
        else
            printf("%s%.*f", l ? sep : "", digits, k);
    }
}

/* --tsp-rate: FastKV's prefill (kvz_lm_fastkv) into the cache it saves as co says, and what it did. */
static int fastkv(kvz_lm *lm, const kvz_lm_info *mi, const int32_t *ctx, size_t n_c,
                  const kvz_lm_fastkv_opts *fo, const kvz_lm_compress_opts *co, const char *out, int json)
{
    kvz_lm_fastkv_report rep = {.struct_size = sizeof rep};
    kvz_cache *cache = NULL;
    kvz_status st = kvz_lm_fastkv(lm, ctx, n_c, fo, &cache, NULL, &rep);
    if (st == KVZ_OK && (st = kvz_lm_save_cache(lm, cache, out, co)) != KVZ_OK) {
        kvz_cache_destroy(cache);
        return kvz_cli_error("cannot save %s: %s (%s)", out, kvz_last_error(), kvz_strerror(st));
    }
    if (st != KVZ_OK)
        return kvz_cli_error("FastKV failed: %s (%s)", kvz_last_error(), kvz_strerror(st));
    kvz_cache_stats cs = {.struct_size = sizeof cs};
    kvz_cache_get_stats(cache, &cs);
    const size_t n_all = rep.n_sys + n_c; /* FastKV compresses the system prompt with the context */
    if (json) {
        printf("{\"policy\": \"fastkv\", \"ratio\": %g, \"tsp_rate\": %g, \"context_tokens\": %zu, "
               "\"system_tokens\": %zu, \"full_layers\": %zu, \"tsp_tokens\": %zu, \"kept_ratio\": %.6f, "
               "\"cache_bytes\": %zu, \"prefill_s\": %.6f, \"kept_per_layer\": [",
               fo->retain_rate, fo->tsp_rate, n_c, rep.n_sys, rep.full_layers, rep.tsp_tokens, cs.kept_ratio,
               cs.bytes_used, rep.prefill_s);
        print_layer_kept(cache, mi, 0, n_all, ", ", "null", 6);
        printf("], \"out\": ");
        kvz_json_write_string(stdout, out);
        printf("}\n");
    } else {
        printf("context:  %zu tokens, after a system prompt of %zu (compressed with it)\n", n_c, rep.n_sys);
        printf(
            "kept:     %.4f of the key/value pairs (policy fastkv, ratio %g); past layer %zu only %zu of the\n"
            "          %zu tokens ran on (--tsp-rate %g)\n",
            cs.kept_ratio, fo->retain_rate, rep.full_layers, rep.tsp_tokens, n_all, fo->tsp_rate);
        printf("by layer: ");
        print_layer_kept(cache, mi, 0, n_all, " ", "-", 2);
        printf("  (the kept share of each layer's %zu tokens)\n", n_all);
        printf("cache:    %zu bytes\ntime:     prefill %.3f s (to the first token), after an untimed warm-up "
               "prefill\nwrote     %s\n",
               cs.bytes_used, rep.prefill_s, out);
    }
    kvz_cache_destroy(cache);
    return 0;
}

/* Where the reconstruction prompts came from, in words (kvz_cli_pieces.source). */
static const char *prompts_origin(const char *source)
{
    if (!strcmp(source, "options"))
        return "from the --sys-ids ... options";
    if (!strcmp(source, "recon file"))
        return "from the --recon file";
    if (!strcmp(source, "plain"))
        return "are the generic ones (the model has no chat template libkvz knows)";
    return "come from the model's chat template";
}

int kvz_cmd_compress(int argc, char **argv)
{
    const char *model = NULL, *context = NULL, *context_text = NULL, *context_ids = NULL, *out = NULL,
               *dump = NULL, *heads = NULL;
    const char *save_heads = NULL, *weights = "auto";
    kvz_cli_recon recon = {0};
    kvz_policy policy = KVZ_POLICY_KVZIP_PAIR;
    double ratio = 0.3;
    int json = 0;
    size_t chunk = 0;
    kvz_dtype kv_asked = KVZ_CLI_KV_DTYPE_AUTO;
    kvz_select_mode mode = KVZ_SELECT_STRICT;
    int ratio_given = 0;
    double tsp_rate = 0;
    if (kvz_cli_wants_help(argc, argv))
        return usage(stdout);
    for (int i = 1; i < argc; i++) {
        const int r = kvz_cli_recon_option(&recon, argc, argv, &i);
        if (r < 0)
            return kvz_cli_usage_error("compress", "%s needs a value", argv[i]);
        if (r)
            continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (!v)
            return kvz_cli_usage_error("compress", "%s needs a value, or is not an option", a);
        i++;
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--context"))
            context = v;
        else if (!strcmp(a, "--context-text"))
            context_text = v;
        else if (!strcmp(a, "--context-ids"))
            context_ids = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--dump-scores"))
            dump = v;
        else if (!strcmp(a, "--head-scores"))
            heads = v;
        else if (!strcmp(a, "--save-head-scores"))
            save_heads = v;
        else if (!strcmp(a, "--weights"))
            weights = v;
        else if (!strcmp(a, "--policy")) {
            if (kvz_cli_parse_policy(v, &policy))
                return 2;
        } else if (!strcmp(a, "--ratio")) {
            if (kvz_cli_parse_ratio(v, a, &ratio))
                return 2;
            ratio_given = 1;
        } else if (!strcmp(a, "--mode")) {
            if (strcmp(v, "strict") && strcmp(v, "exact"))
                return kvz_cli_error("--mode must be strict or exact, not '%s'", v), 2;
            mode = strcmp(v, "strict") ? KVZ_SELECT_EXACT : KVZ_SELECT_STRICT;
        } else if (!strcmp(a, "--tsp-rate")) {
            if (kvz_cli_parse_ratio(v, a, &tsp_rate))
                return 2;
        } else if (!strcmp(a, "--chunk")) {
            if (kvz_cli_parse_count(v, a, &chunk))
                return 2;
        } else if (!strcmp(a, "--kv-dtype")) {
            if (kvz_cli_parse_dtype(v, &kv_asked))
                return 2;
        } else
            return kvz_cli_usage_error("compress", "unknown option '%s'", a);
    }
    if (!model || !out || !!context + !!context_text + !!context_ids != 1) {
        if (argc > 1)
            fprintf(stderr, "kvz compress: needs --model, --out and one of --context, --context-text and "
                            "--context-ids\n\n");
        return usage(stderr);
    }
    if (policy == KVZ_POLICY_FULL) {
        if (ratio_given)
            fprintf(stderr, "kvz compress: --ratio is ignored by policy full, which keeps every pair\n");
        ratio = 1;
    }
    if (tsp_rate && (policy != KVZ_POLICY_FASTKV || dump || save_heads))
        return kvz_cli_error(
                   "--tsp-rate goes with --policy fastkv, without --dump-scores and --save-head-scores"),
               2;
    if (policy == KVZ_POLICY_KVZIP_HEAD && !heads)
        return kvz_cli_error("--policy kvzip-head needs --head-scores"), 2;
    if (dump && kvz_cli_policy_scores(policy) < 0)
        return kvz_cli_error(
                   "--dump-scores needs a policy that scores tokens (KVzip pair level, fastkv, snapkv, "
                   "pyramidkv, adakv, h2o)"),
               2;
    if (save_heads && kvz_cli_policy_scores(policy) != KVZ_SCORES_KVZIP)
        return kvz_cli_error("--save-head-scores needs a pair-level KVzip policy"), 2;

    kvz_lm *lm = NULL;
    if (kvz_cli_open_lm(model, weights, 0, 0, &lm))
        return 1;
    kvz_lm_info mi = {.struct_size = sizeof mi};
    kvz_lm_get_info(lm, &mi);
    const size_t L = mi.n_layers, H = mi.n_kv_heads;
    const kvz_dtype kv_dtype = kv_asked == KVZ_CLI_KV_DTYPE_AUTO ? mi.kv_dtype : kv_asked;
    kvz_cli_recon_ids pc = {0};
    int32_t *ctx = NULL;
    size_t n_c = 0;
    float *head_scores = NULL, *scores = NULL;
    kvz_cache *cache = NULL;
    char *text = NULL;
    size_t len;
    int rc = context_text ? 0 : kvz_cli_read_file(context ? context : context_ids, &text, &len);
    if (!rc)
        rc = context_ids ? kvz_cli_parse_ids(text, context_ids, &ctx, &n_c)
                         : kvz_cli_lm_tokenize(lm, context_text ? context_text : text, 0, &ctx, &n_c);
    if (!rc && !n_c)
        rc = kvz_cli_error("the context is empty");
    for (size_t i = 0; !rc && i < n_c; i++)
        if (ctx[i] < 0 || (size_t)ctx[i] >= mi.n_vocab)
            rc = kvz_cli_error("context token %zu is %d, outside the vocabulary of %zu", i, (int)ctx[i],
                               mi.n_vocab);
    if (!rc)
        rc = kvz_cli_recon_resolve_lm(&recon, lm, &pc);
    if (!rc && heads) {
        const kvz_status st = kvz_npy_max_f32(heads, L, H, &head_scores);
        if (st != KVZ_OK)
            rc = kvz_cli_error("%s (%s)", kvz_last_error(), kvz_strerror(st));
    }
    if (!rc && (dump || save_heads) && !(scores = malloc(L * H * n_c * sizeof *scores)))
        rc = kvz_cli_error("out of memory");
    const kvz_lm_pieces pieces = kvz_cli_recon_pieces(&pc);
    const kvz_lm_compress_opts co = {.struct_size = sizeof co,
                                     .policy = policy,
                                     .ratio = ratio,
                                     .kv = kvz_cli_lm_kv(kv_dtype),
                                     .chunk = chunk,
                                     .mode = mode,
                                     .head_scores = head_scores,
                                     .pieces = &pieces,
                                     .scores = scores};
    kvz_lm_compress_report rep = {.struct_size = sizeof rep};
    if (!rc)
        rc = kvz_cli_lm_warm_up(lm, ctx, n_c, &co);
    if (!rc && tsp_rate) {
        const kvz_lm_fastkv_opts fo = {.struct_size = sizeof fo,
                                       .tsp_rate = tsp_rate,
                                       .retain_rate = ratio,
                                       .kv = co.kv,
                                       .pieces = &pieces};
        rc = fastkv(lm, &mi, ctx, n_c, &fo, &co, out, json);
        free(text), free(ctx), free(head_scores), free(scores);
        kvz_cli_recon_ids_free(&pc);
        kvz_lm_close(lm);
        return rc;
    }
    if (!rc) {
        const kvz_status st = kvz_lm_compress_ids(lm, ctx, n_c, &co, &cache, &rep);
        if (st != KVZ_OK)
            rc = kvz_cli_error("compression failed: %s (%s)", kvz_last_error(), kvz_strerror(st));
    }
    if (!rc && dump) {
        const size_t shape[3] = {L, H, n_c};
        const kvz_status st = kvz_npy_write_f32(dump, scores, shape, 3);
        if (st != KVZ_OK)
            rc = kvz_cli_error("%s", kvz_last_error());
    }
    if (!rc && save_heads) {
        float *hs = malloc(L * H * sizeof *hs);
        const size_t shape[2] = {L, H};
        if (!hs)
            rc = kvz_cli_error("out of memory");
        else
            kvz_cli_head_scores(scores, L * H, n_c, hs);
        if (!rc && kvz_npy_write_f32(save_heads, hs, shape, 2) != KVZ_OK)
            rc = kvz_cli_error("%s", kvz_last_error());
        free(hs);
    }
    if (!rc) {
        const kvz_status st = kvz_lm_save_cache(lm, cache, out, &co);
        if (st != KVZ_OK)
            rc = kvz_cli_error("cannot save %s: %s (%s)", out, kvz_last_error(), kvz_strerror(st));
    }
    if (!rc) {
        kvz_cache_stats cs = {.struct_size = sizeof cs};
        kvz_cache_get_stats(cache, &cs);
        /* of the compressed (global) layers: a sliding-window layer keeps its window */
        const size_t LG = L - mi.n_window_layers;
        const double kept = (double)rep.n_kept / (double)(LG * H * n_c);
        if (json)
            printf("{\"policy\": \"%s\", \"ratio\": %g, \"context_tokens\": %zu, \"system_tokens\": %zu, "
                   "\"passes\": %zu, \"pass_tokens\": %zu, \"kept_context_ratio\": %.6f, \"cache_bytes\": %zu, "
                   "\"kv_dtype\": \"%s\", "
                   "\"prefill_s\": %.6f, \"score_s\": %.6f, \"select_s\": %.6f, \"pieces\": \"%s\", ",
                   kvz_policy_name(policy), ratio, n_c, rep.n_sys, rep.passes, rep.pass_tokens, kept,
                   cs.bytes_used, kvz_cli_dtype_name(kv_dtype), rep.prefill_s, rep.score_s, rep.select_s,
                   pc.source);
        if (json) {
            printf("\"kept_per_layer\": [");
            print_layer_kept(cache, &mi, rep.n_sys, n_c, ", ", "null", 6);
            printf("], \"out\": ");
        } else {
            printf("context:  %zu tokens, after a system prompt of %zu (always kept)\n", n_c, rep.n_sys);
            if (policy == KVZ_POLICY_FULL)
                printf("kept:     every key/value pair (policy full)\n");
            else
                printf("kept:     %.4f of the context's key/value pairs%s (policy %s, ratio %g)\n", kept,
                       LG < L ? " in the global layers (the sliding-window layers keep their window)" : "",
                       kvz_policy_name(policy), ratio);
            if (policy != KVZ_POLICY_FULL) { /* the budget each layer got: KVzip's one threshold shares it unevenly */
                printf("by layer: ");
                print_layer_kept(cache, &mi, rep.n_sys, n_c, " ", "-", 2);
                printf("  (the kept share of each layer%s)\n", LG < L ? "; -: a sliding-window layer" : "");
            }
            printf("cache:    %zu bytes, %s keys and values\ntime:     prefill %.3f s%s", cs.bytes_used,
                   kvz_cli_dtype_name(kv_dtype), rep.prefill_s,
                   kvz_cli_policy_scores(policy) == KVZ_SCORES_WINDOW ? " (window scores included)"
                   : policy == KVZ_POLICY_H2O                         ? " (accumulated attention included)"
                                                                      : "");
            if (rep.passes)
                printf(", %zu reconstruction pass%s (%zu tokens) %.3f s", rep.passes,
                       rep.passes == 1 ? "" : "es", rep.pass_tokens, rep.score_s);
            printf(", selection %.3f s, after an untimed warm-up prefill\n", rep.select_s);
            /* the figure KVzip's cost is quoted in: the whole compression in plain prefills */
            if (rep.passes && rep.prefill_s > 0)
                printf("          in all %.2fx a plain prefill (the passes %.2fx)\n",
                       (rep.prefill_s + rep.score_s + rep.select_s) / rep.prefill_s,
                       rep.score_s / rep.prefill_s);
            if (rep.passes)
                printf("prompts:  the reconstruction passes' prompts %s\n", prompts_origin(pc.source));
            printf("wrote     ");
        }
        if (json) {
            kvz_json_write_string(stdout, out);
            printf("}\n");
        } else {
            printf("%s\n", out);
        }
    }
    free(text), free(ctx), free(head_scores), free(scores);
    kvz_cli_recon_ids_free(&pc);
    kvz_cache_destroy(cache);
    kvz_lm_close(lm);
    return rc;
}
