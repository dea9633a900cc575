/* kvz eval and the stories260K demo: the multi-query protocol of the KVzip paper over a task file (each
 * context compressed once, every query answered with the same cache): accuracy against the
 * answers, KL divergence from the full cache, kept ratio, per policy and ratio. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_model.h"
#include "cli/json.h"
#include "cli/recon.h"
#include "model/generate.h"

#define MAX_CELLS 32

typedef struct task_query {
    int32_t *prompt, *answer;
    size_t n_prompt, n_answer;
} task_query;

typedef struct task {
    int32_t *ctx;
    size_t n_c;
    task_query *q;
    size_t n_q;
} task;

typedef struct cell {
    kvz_policy policy;
    double ratio;
    size_t correct, answered, kl_terms, kept, pairs;
    double kl, build_s, prefill_s;
} cell;

static void free_tasks(task *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++) {
        for (size_t j = 0; j < t[i].n_q; j++)
            free(t[i].q[j].prompt), free(t[i].q[j].answer);
        free(t[i].ctx), free(t[i].q);
    }
    free(t);
}

/* One JSON object per line: {"context_ids": [...], "queries": [{"prompt_ids": [...], "answer_ids": [...]}]} */
static int read_tasks(const char *path, size_t limit, task **out, size_t *n_out)
{
    char *text;
    size_t len, n = 0, cap = 0;
    if (kvz_cli_read_file(path, &text, &len))
        return 1;
    task *tasks = NULL;
    int rc = 0;
    size_t line = 0;
    for (char *p = text, *nl; !rc && p < text + len && (!limit || n < limit); p = nl + 1) {
        line++;
        nl = memchr(p, '\n', (size_t)(text + len - p));
        if (!nl)
            nl = text + len;
        if (nl == p)
            continue;
        char err[128];
        kvz_json *j = kvz_json_parse(p, (size_t)(nl - p), err, sizeof err);
        if (!j) {
            rc = kvz_cli_error("%s:%zu: %s", path, line, err);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            task *t = realloc(tasks, cap * sizeof *t);
            if (!t) {
                kvz_json_free(j);
                rc = kvz_cli_error("out of memory");
                break;
            }
            tasks = t;
        }
        task *t = &tasks[n++];
        memset(t, 0, sizeof *t);
        const kvz_json *qs = kvz_json_get(j, "queries");
        if (kvz_json_int_array(kvz_json_get(j, "context_ids"), &t->ctx, &t->n_c) || !t->n_c || !qs ||
            qs->type != KVZ_JSON_ARRAY || !(t->q = calloc(qs->n_items + 1, sizeof *t->q)))
            rc = kvz_cli_error("%s:%zu: needs non-empty \"context_ids\" and a \"queries\" array", path, line);
        for (size_t i = 0; !rc && i < qs->n_items; i++, t->n_q++) {
            task_query *q = &t->q[i];
            if (kvz_json_int_array(kvz_json_get(&qs->items[i], "prompt_ids"), &q->prompt, &q->n_prompt) ||
                kvz_json_int_array(kvz_json_get(&qs->items[i], "answer_ids"), &q->answer, &q->n_answer) ||
                !q->n_prompt || !q->n_answer)
                rc = kvz_cli_error("%s:%zu: query %zu needs non-empty \"prompt_ids\" and \"answer_ids\"", path,
                                   line, i);
        }
        kvz_json_free(j);
    }
    free(text);
    if (!rc && !n)
        rc = kvz_cli_error("%s holds no tasks", path);
    if (rc) {
        free_tasks(tasks, n);
        return 1;
    }
    *out = tasks, *n_out = n;
    return 0;
}

static int check_ids(const kvz_model *m, const int32_t *ids, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= m->hp.n_vocab)
            return kvz_cli_error("%s: token %d is outside the vocabulary of %zu", what, (int)ids[i],
                                 m->hp.n_vocab);
    return 0;
}

/* log-softmax of n logits into out (double) */
static void log_softmax(const float *z, size_t n, double *out)
{
    double mx = -INFINITY, s = 0;
    for (size_t i = 0; i < n; i++)
        mx = fmax(mx, z[i]);
    for (size_t i = 0; i < n; i++)
        s += exp(z[i] - mx);
    const double lse = mx + log(s);
    for (size_t i = 0; i < n; i++)
        out[i] = z[i] - lse;
}

/* Teacher-forced logits of the rows predicting each answer token: prompt + answer[:-1]. */
static kvz_status forced_logits(kvz_model *m, kvz_cache *c, const task_query *q, float *logits)
{
    const size_t n = q->n_prompt + q->n_answer - 1;
    int32_t *ids = malloc(n * sizeof *ids);
    if (!ids)
        return KVZ_ERR_NOMEM;
    memcpy(ids, q->prompt, q->n_prompt * sizeof *ids);
    memcpy(ids + q->n_prompt, q->answer, (q->n_answer - 1) * sizeof *ids);
    kvz_query *qq = NULL;
    kvz_status st = kvz_query_create(c, &qq);
    if (st == KVZ_OK)
        st = kvz_model_prefill_logits(m, (kvz_kv_target){NULL, qq}, ids, n, 0, q->n_answer, logits);
    kvz_query_destroy(qq);
    free(ids);
    return st;
}

/* Greedy answer of n_answer tokens (no stop at EOS) through a query tail. */
static kvz_status greedy_answer(kvz_model *m, kvz_cache *c, const task_query *q, float *logits, int32_t *out)
{
    kvz_query *qq = NULL;
    size_t got = 0;
    kvz_status st = kvz_query_create(c, &qq);
    if (st == KVZ_OK)
        st = kvz_model_prefill(m, (kvz_kv_target){NULL, qq}, q->prompt, q->n_prompt, 0, logits);
    kvz_gen_opts go = {.max_tokens = q->n_answer};
    if (st == KVZ_OK)
        st = kvz_model_generate(m, (kvz_kv_target){NULL, qq}, logits, &go, out, &got);
    kvz_query_destroy(qq);
    return st;
}

typedef struct eval_args {
    const char *model, *tasks, *weights;
    kvz_cli_recon recon;
    cell cells[MAX_CELLS];
    size_t n_cells;
    size_t limit;
    int json, demo; /* demo: the stories260K demo's explanations and verdicts around the table */
    kvz_kvzip_opts o;
} eval_args;

/* What the stories260K demo does and what its columns mean, before its table. */
static void demo_intro(const eval_args *a, const task *t, size_t n_tasks)
{
    size_t n_q = 0, n_c = 0, n_ans = 0;
    for (size_t i = 0; i < n_tasks; i++) {
        n_q += t[i].n_q, n_c += t[i].n_c;
        for (size_t j = 0; j < t[i].n_q; j++)
            n_ans += t[i].q[j].n_answer;
    }
    printf("libkvz demo: KV-cache compression policies on stories260K, in KVzip's multi-query protocol\n\n"
           "The model: %s\n"
           "(260K parameters trained on children's stories). It writes story-like text, so its answers are\n"
           "judged against its own answers from the full cache, not against facts.\n"
           "The task: %zu stor%s of about %zu tokens, from %s.\n"
           "Each story is prefilled and compressed once, with no question known; then %zu cues per story\n"
           "(%zu in all, such as \" One day,\") are answered greedily from that one compressed cache, about\n"
           "%zu tokens each.\n\n",
           a->model, n_tasks, n_tasks == 1 ? "y" : "ies", n_tasks ? (n_c + n_tasks / 2) / n_tasks : 0, a->tasks,
           n_tasks ? n_q / n_tasks : 0, n_q, n_q ? (n_ans + n_q / 2) / n_q : 0);
    printf("  policy         how the cache is compressed (full: not at all; doc/policies.md has the others)\n"
           "  ratio          the share of each story's key/value pairs the policy is asked to keep\n"
           "  kept           the share it kept, over every layer, KV head and story\n"
           "  answers        of the %zu answers, how many equal the full cache's (accuracy: as a share)\n"
           "  kl (nats)      KL(full || compressed) of the next-token distributions along the answers:\n"
           "                 how far the compressed cache's predictions are from the full cache's (0: none)\n"
           "  build/prefill  the time to build the compressed cache (the prefill, any scoring passes, the\n"
           "                 selection) over the time of a plain prefill of the same story: what compressing\n"
           "                 costs, measured in this run on this machine\n\n",
           n_q);
}

/* One line per kept ratio, the policies from the most answers kept to the fewest, then the cost. */
static void demo_verdict(const eval_args *a)
{
    printf("\n");
    for (size_t k = 0; k < a->n_cells; k++) {
        const cell *c = &a->cells[k];
        if (c->policy == KVZ_POLICY_FULL)
            continue;
        size_t first = 0; /* the first cell of this ratio, so that each ratio has one line */
        while (a->cells[first].ratio != c->ratio || a->cells[first].policy == KVZ_POLICY_FULL)
            first++;
        if (first != k)
            continue;
        size_t order[MAX_CELLS], n = 0;
        for (size_t j = 0; j < a->n_cells; j++)
            if (a->cells[j].ratio == c->ratio && a->cells[j].policy != KVZ_POLICY_FULL) {
                size_t at = n++; /* insertion sort, most correct first, ties in the given order */
                while (at && a->cells[order[at - 1]].correct < a->cells[j].correct)
                    order[at] = order[at - 1], at--;
                order[at] = j;
            }
        printf("At %g %% of the cache, %s keeps %zu of %zu answers", 100 * c->ratio,
               kvz_policy_name(a->cells[order[0]].policy), a->cells[order[0]].correct,
               a->cells[order[0]].answered);
        for (size_t j = 1; j < n; j++)
            printf(", %s %zu", kvz_policy_name(a->cells[order[j]].policy), a->cells[order[j]].correct);
        printf(".\n");
    }
    printf("Compressing costs the KVzip policies their scoring passes (build/prefill above); the window\n"
           "policies score during the prefill. On a model this small the passes' fixed costs weigh more than\n"
           "on a large one: kvz bench model measures the cost on an 8B-shaped model.\n");
}

static int run(eval_args *a)
{
    kvz_model *m = NULL;
    kvz_tokenizer *tok = NULL;
    task *tasks = NULL;
    size_t n_tasks = 0;
    kvz_cli_pieces pc = {0};
    if (kvz_cli_open_model(a->model, a->weights, &m, &tok))
        return 1;
    int rc = read_tasks(a->tasks, a->limit, &tasks, &n_tasks);
    if (!rc)
        rc = kvz_cli_recon_resolve(&a->recon, m, tok, 0, &pc);
    if (!rc && a->demo && !a->json)
        demo_intro(a, tasks, n_tasks);
    const size_t L = m->hp.n_layers, H = m->hp.n_head_kv, V = m->hp.n_vocab;
    a->o.prev_tokens = pc.prev_tokens;
    size_t max_answer = 1;
    for (size_t i = 0; !rc && i < n_tasks; i++) {
        rc = check_ids(m, tasks[i].ctx, tasks[i].n_c, "context_ids");
        for (size_t j = 0; !rc && j < tasks[i].n_q; j++) {
            rc = check_ids(m, tasks[i].q[j].prompt, tasks[i].q[j].n_prompt, "prompt_ids") ||
                 check_ids(m, tasks[i].q[j].answer, tasks[i].q[j].n_answer, "answer_ids");
            max_answer = tasks[i].q[j].n_answer > max_answer ? tasks[i].q[j].n_answer : max_answer;
        }
    }
    float *lp = malloc(max_answer * V * 4);
    double *ls_full = malloc(V * 8), *ls_pol = malloc(V * 8);
    int32_t *ans = malloc(max_answer * sizeof *ans);
    if (!rc && (!lp || !ls_full || !ls_pol || !ans))
        rc = kvz_cli_error("out of memory");
    int need_scores = 0;
    for (size_t k = 0; k < a->n_cells; k++)
        need_scores |= kvz_kvzip_policy_needs_scores(a->cells[k].policy);
    kvz_status st = KVZ_OK;
    for (size_t i = 0; !rc && i < n_tasks; i++) {
        const task *t = &tasks[i];
        /* the full cache: the reference every policy is compared with, and the scores' source */
        kvz_kvzip_report rep_full;
        kvz_policy_args full = {.struct_size = sizeof full, .policy = KVZ_POLICY_FULL};
        kvz_cache *fc = NULL;
        float *scores = NULL;
        if ((st = kvz_kvzip_build(m, &pc.p, t->ctx, t->n_c, &a->o, &full, &fc, NULL, &rep_full)) != KVZ_OK)
            break;
        double score_s = 0, build_s[MAX_CELLS] = {0};
        /* the reference: the faster of two plain prefills, so that one-time costs (first-touch
           pages, oneDNN primitives) do not flatter the policies measured after it */
        double prefill_s = rep_full.prefill_s;
        {
            kvz_cache *scratch = NULL;
            kvz_kvzip_report again;
            st = kvz_kvzip_build(m, &pc.p, t->ctx, t->n_c, &a->o, &full, &scratch, NULL, &again);
            if (st == KVZ_OK && again.prefill_s < prefill_s)
                prefill_s = again.prefill_s;
            kvz_cache_destroy(scratch);
        }
        /* the full cache's teacher-forced distributions: once per query, for every cell's KL */
        float *lf_all = st == KVZ_OK ? malloc((t->n_q ? t->n_q : 1) * max_answer * V * sizeof *lf_all) : NULL;
        if (st == KVZ_OK && !lf_all)
            st = KVZ_ERR_NOMEM;
        if (st == KVZ_OK && need_scores) {
            const double t0 = omp_get_wtime();
            if (!(scores = malloc(L * H * t->n_c * sizeof *scores)))
                st = KVZ_ERR_NOMEM;
            else
                st = kvz_kvzip_score(m, fc, &pc.p, t->ctx, t->n_c, &a->o, scores);
            score_s = omp_get_wtime() - t0;
        }
        /* after the scoring passes, which leave the full cache as it was except that a sliding-window
           layer then holds fewer rows: the policies' copies are made from this state, and so is the
           reference (another row count reorders the attention's sums, which bf16 activations amplify
           to logit differences of ~0.1 on Gemma 3) */
        for (size_t j = 0; st == KVZ_OK && j < t->n_q; j++)
            st = forced_logits(m, fc, &t->q[j], lf_all + j * max_answer * V);
        for (size_t k = 0; st == KVZ_OK && k < a->n_cells; k++) {
            cell *cl = &a->cells[k];
            kvz_cache *pcache = NULL;
            kvz_policy_args pa = {.struct_size = sizeof pa, .policy = cl->policy, .ratio = cl->ratio};
            /* window policies score during their own prefill; the others compact a copy of
               the full cache with the shared reconstruction scores (or none), so their cost is
               that prefill, the scoring passes (KVzip) and the selection */
            const int windowed = kvz_kvzip_policy_uses_window(cl->policy);
            const double t0 = omp_get_wtime();
            kvz_kvzip_report rep;
            size_t kept = 0;
            if (windowed) {
                st = kvz_kvzip_build(m, &pc.p, t->ctx, t->n_c, &a->o, &pa, &pcache, NULL, &rep);
                kept = rep.n_kept;
                build_s[k] = omp_get_wtime() - t0;
            } else {
                st = kvz_cache_clone(fc, &pcache);
                const double t1 = omp_get_wtime();
                if (st == KVZ_OK)
                    st = kvz_kvzip_compact(m, pcache, pc.p.n_sys, t->n_c, scores, &pa, &kept);
                build_s[k] = prefill_s + (kvz_kvzip_policy_needs_scores(cl->policy) ? score_s : 0) +
                             omp_get_wtime() - t1;
            }
            /* kept of the compressed (global) layers: a sliding-window layer keeps its window */
            cl->kept += kept, cl->pairs += kvz_hparams_global_layers(&m->hp) * H * t->n_c;
            for (size_t j = 0; st == KVZ_OK && j < t->n_q; j++) {
                const task_query *q = &t->q[j];
                if ((st = greedy_answer(m, pcache, q, lp, ans)) != KVZ_OK)
                    break;
                cl->answered++;
                cl->correct += !memcmp(ans, q->answer, q->n_answer * sizeof *ans);
                if ((st = forced_logits(m, pcache, q, lp)) != KVZ_OK)
                    break;
                const float *lf = lf_all + j * max_answer * V;
                for (size_t r = 0; r < q->n_answer; r++) {
                    log_softmax(lf + r * V, V, ls_full);
                    log_softmax(lp + r * V, V, ls_pol);
                    double kl = 0;
                    for (size_t v = 0; v < V; v++)
                        kl += exp(ls_full[v]) * (ls_full[v] - ls_pol[v]);
                    cl->kl += kl, cl->kl_terms++;
                }
            }
            kvz_cache_destroy(pcache);
        }
        for (size_t k = 0; st == KVZ_OK && k < a->n_cells; k++) /* every cost against the plain prefill */
            a->cells[k].prefill_s += prefill_s, a->cells[k].build_s += build_s[k];
        free(scores), free(lf_all);
        kvz_cache_destroy(fc);
        if (!a->json && isatty(2)) /* progress only for a person watching */
            fprintf(stderr, "\rcontext %zu/%zu", i + 1, n_tasks);
    }
    if (!a->json && isatty(2))
        fprintf(stderr, "\r%*s\r", 24, "");
    if (!rc && st != KVZ_OK)
        rc = kvz_cli_error("evaluation failed: %s (%s)", kvz_last_error(), kvz_strerror(st));
    if (!rc && !a->json)
        printf("%-20s %6s %10s %9s %10s %10s %14s\n", "policy", "ratio", "kept", "answers", "accuracy",
               "kl (nats)", "build/prefill");
    for (size_t k = 0; !rc && k < a->n_cells; k++) {
        const cell *cl = &a->cells[k];
        const double acc = cl->answered ? (double)cl->correct / (double)cl->answered : 0;
        const double kl = cl->kl_terms ? cl->kl / (double)cl->kl_terms : 0;
        const double kept = cl->pairs ? (double)cl->kept / (double)cl->pairs : 0;
        const double cost = cl->prefill_s > 0 ? cl->build_s / cl->prefill_s : 0;
        if (a->json)
            printf(
                "{\"policy\": \"%s\", \"ratio\": %g, \"kept_ratio\": %.6f, \"accuracy\": %.6f, \"kl\": %.6g, "
                "\"queries\": %zu, \"contexts\": %zu, \"build_over_prefill\": %.4f}\n",
                kvz_policy_name(cl->policy), cl->ratio, kept, acc, kl, cl->answered, n_tasks, cost);
        else
            printf("%-20s %6.2f %10.4f %5zu/%-3zu %10.4f %10.5f %13.2fx\n", kvz_policy_name(cl->policy),
                   cl->ratio, kept, cl->correct, cl->answered, acc, kl, cost);
    }
    if (!rc && a->demo && !a->json)
        demo_verdict(a);
    free(lp), free(ls_full), free(ls_pol), free(ans);
    free_tasks(tasks, n_tasks);
    kvz_cli_pieces_free(&pc);
    kvz_tokenizer_free(tok);
    kvz_model_free(m);
    return rc;
}

/* "kvzip-pair,streaming" x "0.5,0.3" -> cells */
static int add_cells(eval_args *a, const char *policies, const char *ratios)
{
    char *pl = strdup(policies), *rl = strdup(ratios);
    int rc = !pl || !rl ? kvz_cli_error("out of memory") : 0;
    char *s1 = NULL;
    for (char *p = pl ? strtok_r(pl, ",", &s1) : NULL; p && !rc; p = strtok_r(NULL, ",", &s1)) {
        kvz_policy pol;
        if ((rc = kvz_cli_parse_policy(p, &pol)))
            break;
        if (pol == KVZ_POLICY_H2O || pol == KVZ_POLICY_KVZIP_HEAD) {
            rc = kvz_cli_error("kvz eval does not offer %s (h2o: no prefill attention sums; kvzip-head: head "
                               "scores come from another context)",
                               p);
            break;
        }
        char *copy = strdup(ratios), *s2 = NULL;
        for (char *r = copy ? strtok_r(copy, ",", &s2) : NULL; r && !rc; r = strtok_r(NULL, ",", &s2)) {
            double v;
            if ((rc = kvz_cli_parse_ratio(r, "--ratio", &v)))
                break;
            if (a->n_cells == MAX_CELLS) {
                rc = kvz_cli_error("at most %d policy x ratio combinations", MAX_CELLS);
                break;
            }
            a->cells[a->n_cells++] = (cell){.policy = pol, .ratio = pol == KVZ_POLICY_FULL ? 1.0 : v};
            if (pol == KVZ_POLICY_FULL)
                break; /* one ratio is enough for the full cache */
        }
        free(copy);
    }
    free(pl), free(rl);
    return rc;
}

static int usage(const char *cmd, FILE *f)
{
    if (!strcmp(cmd, "demo"))
        fprintf(
            f,
            "usage: kvz demo --stories [--model M] [--tasks F.jsonl] [--recon F.json] [--policy P[,P...]]\n"
            "                [--ratio R[,R...]] [--limit N] [--json]\n"
            "  kvz eval of every policy at kept ratios 0.5, 0.3 and 0.2 on stories260K, with what it does,\n"
            "  what its columns mean and a verdict per ratio; the options are kvz eval's (kvz eval --help).\n"
            "  defaults: ../shared/models/stories260K.gguf, ../shared/eval/stories-public.jsonl\n"
            "  and ../shared/eval/stories-recon.json: run it from the checkout's root, with the shared\n"
            "  folder (spec/, models/, eval/) beside the checkout as ../shared\n");
    else
        fprintf(
            f,
            "usage: kvz eval --model M --tasks F.jsonl [--policy P[,P...]] [--ratio R[,R...]] [--limit N]\n"
            "                [--chunk N] [--kv-dtype f32|bf16|f16 (f32)] [--weights auto|f32|bf16] [--json]\n"
            "                [reconstruction options]\n"
            "  Compresses each context once per policy and kept ratio and answers every query of it from\n"
            "  that cache (KVzip's multi-query protocol).\n"
            "  task lines: {\"context_ids\": [...], \"queries\": [{\"prompt_ids\": [...], \"answer_ids\": "
            "[...]}]}\n"
            "  --policy   comma-separated (kvzip-pair); full keeps everything and takes no ratio\n"
            "  --ratio    comma-separated kept fractions, each in (0, 1] (0.3: 30 %%)\n"
            "  --limit N  only the first N contexts (0, the default: all)\n"
            "  --chunk N  context tokens per reconstruction pass (2000)\n"
            "  columns: kept: kept context pairs / all context pairs; answers and accuracy: greedy answers\n"
            "  equal to answer_ids, as a count and a share; kl: KL(full || policy) of the teacher-forced\n"
            "  next-token distributions; build/prefill: the time to build the compressed cache over a plain\n"
            "  prefill's\n%s",
            kvz_cli_recon_usage);
    return f == stdout ? 0 : 2;
}

/* Returns 0, or 2 after saying what is wrong. */
static int parse(eval_args *a, int argc, char **argv, const char **policies, const char **ratios)
{
    const char *cmd = a->demo ? "demo --stories" : "eval";
    for (int i = 1; i < argc; i++) {
        const int r = kvz_cli_recon_option(&a->recon, argc, argv, &i);
        if (r < 0)
            return kvz_cli_usage_error(cmd, "%s needs a value", argv[i]);
        if (r)
            continue;
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--json")) {
            a->json = 1;
            continue;
        }
        if (!v)
            return kvz_cli_usage_error(cmd, "%s needs a value, or is not an option", o);
        i++;
        if (!strcmp(o, "--model"))
            a->model = v;
        else if (!strcmp(o, "--tasks"))
            a->tasks = v;
        else if (!strcmp(o, "--weights"))
            a->weights = v;
        else if (!strcmp(o, "--policy"))
            *policies = v;
        else if (!strcmp(o, "--ratio"))
            *ratios = v;
        else if (!strcmp(o, "--limit")) {
            if (kvz_cli_parse_size(v, o, &a->limit))
                return 2;
        } else if (!strcmp(o, "--chunk")) {
            if (kvz_cli_parse_count(v, o, &a->o.chunk))
                return 2;
        } else if (!strcmp(o, "--kv-dtype")) {
            if (kvz_cli_parse_dtype(v, &a->o.kv_dtype))
                return 2;
        } else
            return kvz_cli_usage_error(cmd, "unknown option '%s'", o);
    }
    return 0;
}

int kvz_cmd_eval(int argc, char **argv)
{
    eval_args a = {.weights = "auto"};
    kvz_kvzip_defaults(&a.o);
    a.o.kv_dtype = KVZ_DTYPE_F32; /* fidelity is measured against an fp64 reference: store K/V exactly */
    const char *policies = "kvzip-pair", *ratios = "0.3";
    if (kvz_cli_wants_help(argc, argv))
        return usage("eval", stdout);
    int rc = parse(&a, argc, argv, &policies, &ratios);
    if (rc)
        return rc;
    if (!a.model || !a.tasks) {
        if (argc > 1)
            fprintf(stderr, "kvz eval: needs --model and --tasks\n\n");
        return usage("eval", stderr);
    }
    if (add_cells(&a, policies, ratios))
        return 2;
    return run(&a);
}

int kvz_cli_demo_stories(int argc, char **argv)
{
    eval_args a = {.weights = "auto",
                   .model = "../shared/models/stories260K.gguf",
                   .tasks = "../shared/eval/stories-public.jsonl",
                   .demo = 1};
    kvz_kvzip_defaults(&a.o);
    a.o.kv_dtype = KVZ_DTYPE_F32;
    a.recon.file = "../shared/eval/stories-recon.json";
    const char *policies = "full,kvzip-pair,kvzip-pair-uniform,snapkv,pyramidkv,adakv,streaming,random";
    const char *ratios = "0.5,0.3,0.2";
    if (kvz_cli_wants_help(argc, argv))
        return usage("demo", stdout);
    const int rc = parse(&a, argc, argv, &policies, &ratios);
    if (rc)
        return rc;
    const char *need[3] = {a.model, a.tasks, a.recon.file};
    for (int i = 0; i < 3; i++)
        if (need[i] && access(need[i], R_OK) != 0)
            return kvz_cli_error(
                "demo: %s is absent (the demo reads the shared model and task files: run it from "
                "the checkout's root with the shared folder beside it as ../shared, or give "
                "--model/--tasks/--recon)",
                need[i]);
    if (add_cells(&a, policies, ratios))
        return 2;
    return run(&a);
}
