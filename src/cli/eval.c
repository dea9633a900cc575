/* kvz eval and the stories260K demo: KVzip's multi-query protocol over a task file (each context
 * compressed once without the question, every question answered from that one cache) and the
 * query-aware protocol (one question in the cache before compression, as SnapKV runs): answer
 * accuracy, agreement with and KL divergence from the full cache, kept ratio, bytes and time,
 * per policy, kept ratio and task group. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_lm.h"
#include "cli/eval_report.h"
#include "cli/eval_tasks.h"
#include "cli/head_calib.h"
#include "cli/json.h"
#include "cli/npy.h"
#include "cli/recon.h"
#include "kvz_model.h"

#define MAX_CELLS 128

enum { PROTOCOL_MULTI = 1, PROTOCOL_QUERY = 2 };

typedef struct eval_args {
    const char *model, *tasks, *weights, *head_scores, *calibration, *plot, *markdown, *generations;
    kvz_cli_recon recon;
    eval_cell cells[MAX_CELLS];
    size_t n_cells;
    size_t limit, max_tokens, calib_tokens;
    size_t window; /* the window policies' observation window; 0: 16 under 1000 context tokens, else 32 */
    int json, demo; /* demo: the stories260K demo's explanations and verdicts around the table */
    int protocols;  /* PROTOCOL_* bits */
    size_t n_groups; /* of the task set */
    kvz_dtype kv;    /* --kv-dtype (KVZ_CLI_KV_DTYPE_AUTO: the model's) */
    kvz_lm_compress_opts o; /* chunk, kernel, pool; the pieces and the window set per run and context */
} eval_args;

/* What one context shares between its cells: the full cache, the scores, the references. */
typedef struct run_ctx {
    kvz_lm *lm;
    const kvz_lm_compress_opts *o;
    const int32_t *sys; /* the system prompt's ids, which open every cache */
    size_t n_sys;
    size_t rows;  /* layers x KV heads: the rows of a token's scores */
    size_t pairs; /* context rows a selection chooses from: the global layers' KV heads, per token */
    const eval_task *t;
    int text;
    size_t V, max_ref;
    const float *head_scores; /* kvzip-head, [layers][kv heads] */
    int32_t *ref;             /* [query][max_ref]: the full cache's answer (ids tasks: answer_ids) */
    size_t *n_ref;
    float *ref_lp; /* [query][max_ref][V]: the full cache's log-probabilities along ref */
    float *lp;     /* scratch: [max_ref][V] logits */
    double *ls;    /* scratch: V */
    int32_t *gen;  /* scratch: max_ref ids */
    int32_t *ids;  /* scratch: a prefix and ref */
    FILE *gen_out;         /* --generations: every answer as a JSON line, or NULL */
    const eval_cell *cell; /* the cell being answered, for gen_out */
} run_ctx;

/* Greedy answer through a query tail: prefix, then up to max tokens (a text task stops at the end
 * of generation). Decode time and steps (tokens after the first) are added to a when given. */
static kvz_status generate(run_ctx *r, kvz_cache *c, const int32_t *prefix, size_t n_prefix, size_t max, int stop,
                           int32_t *out, size_t *n_out, eval_acc *a)
{
    kvz_query *qq = NULL;
    kvz_status st = kvz_query_create(c, &qq);
    if (st == KVZ_OK)
        st = kvz_lm_prefill(r->lm, NULL, qq, prefix, n_prefix, r->lp);
    const kvz_lm_gen_opts go = {.struct_size = sizeof go, .max_tokens = max, .no_stop = !stop};
    const double t0 = omp_get_wtime();
    *n_out = 0;
    if (st == KVZ_OK)
        st = kvz_lm_decode(r->lm, NULL, qq, r->lp, &go, out, n_out);
    if (a && st == KVZ_OK && *n_out > 1)
        a->decode_s += omp_get_wtime() - t0, a->decode_steps += *n_out - 1;
    kvz_query_destroy(qq);
    return st;
}

/* Teacher-forced logits of the rows predicting each of ref[0..n_ref) after prefix, into r->lp. */
static kvz_status forced(run_ctx *r, kvz_cache *c, const int32_t *prefix, size_t n_prefix, const int32_t *ref,
                         size_t n_ref)
{
    memcpy(r->ids, prefix, n_prefix * sizeof *r->ids);
    memcpy(r->ids + n_prefix, ref, (n_ref - 1) * sizeof *r->ids);
    kvz_query *qq = NULL;
    kvz_status st = kvz_query_create(c, &qq);
    if (st == KVZ_OK)
        st = kvz_lm_prefill_logits(r->lm, NULL, qq, r->ids, n_prefix + n_ref - 1, n_ref, r->lp);
    kvz_query_destroy(qq);
    return st;
}

/* log-softmax of n logits into out */
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

/* The references of query j from the full cache: its answer (a text task's full-cache generation,
 * an ids task's answer_ids) and the log-probabilities along it. */
static kvz_status reference(run_ctx *r, kvz_cache *fc, size_t j)
{
    const eval_query *q = &r->t->q[j];
    int32_t *ref = r->ref + j * r->max_ref;
    kvz_status st = KVZ_OK;
    if (r->text) {
        st = generate(r, fc, q->prompt, q->n_prompt, r->t->max_tokens, 1, ref, &r->n_ref[j], NULL);
    } else {
        memcpy(ref, q->answer, q->n_answer * sizeof *ref);
        r->n_ref[j] = q->n_answer;
    }
    if (st == KVZ_OK)
        st = forced(r, fc, q->prompt, q->n_prompt, ref, r->n_ref[j]);
    float *dst = r->ref_lp + j * r->max_ref * r->V;
    for (size_t k = 0; st == KVZ_OK && k < r->n_ref[j]; k++) {
        log_softmax(r->lp + k * r->V, r->V, r->ls);
        for (size_t v = 0; v < r->V; v++)
            dst[k * r->V + v] = (float)r->ls[v];
    }
    return st;
}

/* Query j answered from cache c after prefix (the question, or what is left of it): the score, the
 * agreement with the reference and the KL divergence along it, into a. */
static kvz_status ask(run_ctx *r, kvz_cache *c, const int32_t *prefix, size_t n_prefix, size_t j, eval_acc *a)
{
    const eval_query *q = &r->t->q[j];
    const int32_t *ref = r->ref + j * r->max_ref;
    const size_t n_ref = r->n_ref[j];
    size_t n = 0;
    kvz_status st = generate(r, c, prefix, n_prefix, r->text ? r->t->max_tokens : q->n_answer, r->text, r->gen, &n, a);
    if (st != KVZ_OK)
        return st;
    a->answered++;
    const int agree = n == n_ref && !memcmp(r->gen, ref, n * sizeof *ref);
    a->agree += agree;
    char *text = NULL;
    const size_t shown = r->text && n && kvz_lm_is_eog(r->lm, r->gen[n - 1]) ? n - 1 : n;
    if ((r->text || r->gen_out) && (st = kvz_cli_lm_detokenize(r->lm, r->gen, shown, 0, &text)) != KVZ_OK)
        return st;
    const double score = r->text ? eval_match(text, q->answers, q->n_answers, q->match_all)
                                 : n == q->n_answer && !memcmp(r->gen, q->answer, n * sizeof *r->gen);
    a->score += score;
    if (r->gen_out) {
        fprintf(r->gen_out, "{\"id\": ");
        kvz_json_write_string(r->gen_out, r->t->id);
        fprintf(r->gen_out, ", \"query\": %zu, \"protocol\": \"%s\", \"policy\": \"%s\", \"ratio\": %g, \"text\": ", j,
                r->cell->query_aware ? "query" : "multi", kvz_policy_name(r->cell->policy), r->cell->ratio);
        kvz_json_write_string(r->gen_out, text);
        fprintf(r->gen_out, ", \"ids\": ");
        kvz_json_write_ids(r->gen_out, r->gen, n);
        fprintf(r->gen_out, ", \"score\": %g, \"agree\": %d}\n", score, agree);
    }
    free(text);
    if ((st = forced(r, c, prefix, n_prefix, ref, n_ref)) != KVZ_OK)
        return st;
    const float *lf = r->ref_lp + j * r->max_ref * r->V;
    for (size_t k = 0; k < n_ref; k++) {
        log_softmax(r->lp + k * r->V, r->V, r->ls);
        double kl = 0;
        for (size_t v = 0; v < r->V; v++)
            kl += exp(lf[k * r->V + v]) * (lf[k * r->V + v] - r->ls[v]);
        a->kl += kl, a->kl_terms++;
    }
    return KVZ_OK;
}

/* The scores a policy selects by (NULL: it needs none), and the time spent making them. */
typedef struct score_set {
    float *kvzip, *window, *h2o;  /* [layers][kv heads][context tokens] */
    double kvzip_s, window_s, h2o_s; /* scoring passes; the scored prefills, whole */
} score_set;

static const float *scores_for(const score_set *s, kvz_policy p)
{
    const int kind = kvz_cli_policy_scores(p);
    return kind == KVZ_SCORES_KVZIP    ? s->kvzip
           : kind == KVZ_SCORES_WINDOW ? s->window
           : kind == KVZ_SCORES_H2O    ? s->h2o
                                       : NULL;
}

/* A prefill that scores on its way (window or H2O scores) rather than after. */
static int prefill_scored(kvz_policy p)
{
    return kvz_cli_policy_scores(p) == KVZ_SCORES_WINDOW || kvz_cli_policy_scores(p) == KVZ_SCORES_H2O;
}

/* Compacts c (n_c context tokens after the system prompt; rows after them stay) by the cell's
 * policy; build_s receives the time the compressed cache took to build. */
static kvz_status compress(run_ctx *r, kvz_cache *c, const eval_cell *cl, const score_set *s, double prefill_s,
                           eval_acc *a)
{
    kvz_policy_args pa = {.struct_size = sizeof pa,
                          .policy = cl->policy,
                          .ratio = cl->ratio,
                          .head_scores = cl->policy == KVZ_POLICY_KVZIP_HEAD ? r->head_scores : NULL};
    if (prefill_scored(cl->policy))
        pa.recent = r->o->window; /* the observation window is always kept */
    const double t0 = omp_get_wtime();
    size_t kept = 0;
    kvz_status st = kvz_kvzip_compress(c, r->n_sys, r->t->n_c, scores_for(s, cl->policy), &pa, &kept);
    double build = omp_get_wtime() - t0;
    const int kind = kvz_cli_policy_scores(cl->policy);
    if (kind == KVZ_SCORES_KVZIP)
        build += prefill_s + s->kvzip_s;
    else if (kind == KVZ_SCORES_WINDOW)
        build += s->window_s;
    else if (kind == KVZ_SCORES_H2O)
        build += s->h2o_s;
    else
        build += prefill_s;
    kvz_cache_stats cs = {.struct_size = sizeof cs};
    if (st == KVZ_OK)
        st = kvz_cache_get_stats(c, &cs);
    a->kept += kept, a->pairs += r->pairs * r->t->n_c;
    a->bytes += (double)cs.bytes_used, a->caches++;
    a->build_s += build, a->prefill_s += prefill_s;
    return st;
}

/* A cache of the system prompt and ids (the context, and the question's head in the query-aware protocol)
 * prefilled with window or H2O scores: the scores of the first n_c of those ids are repacked into out
 * [layers][kv heads][n_c]. */
static kvz_status scored_prefill(run_ctx *r, kvz_lm_scores kind, const int32_t *ids, size_t n, float *out,
                                 kvz_cache **cache, double *secs)
{
    const size_t n_c = r->t->n_c;
    float *all = n == n_c ? out : malloc(r->rows * n * sizeof *all);
    kvz_lm_compress_report rep = {.struct_size = sizeof rep};
    kvz_status st = all ? kvz_lm_score_ids(r->lm, ids, n, kind, r->o, cache, all, &rep) : KVZ_ERR_NOMEM;
    *secs = rep.prefill_s;
    for (size_t i = 0; st == KVZ_OK && all != out && i < r->rows; i++)
        memcpy(out + i * n_c, all + i * n, n_c * sizeof *out);
    if (all != out)
        free(all);
    return st;
}

/* The question's ids but the last: what the query-aware protocol puts in the cache before
 * compressing; the last one is fed after, to start the answer. */
static size_t question_head(const eval_query *q) { return q->n_prompt - 1; }

static int any_cell(const eval_args *a, int query_aware, int (*pred)(kvz_policy))
{
    for (size_t k = 0; k < a->n_cells; k++)
        if (a->cells[k].query_aware == query_aware && pred(a->cells[k].policy))
            return 1;
    return 0;
}
static int is_window(kvz_policy p) { return kvz_cli_policy_scores(p) == KVZ_SCORES_WINDOW; }
static int is_h2o(kvz_policy p) { return kvz_cli_policy_scores(p) == KVZ_SCORES_H2O; }
static int is_kvzip(kvz_policy p) { return kvz_cli_policy_scores(p) == KVZ_SCORES_KVZIP; }

/* The multi-query cells of one context: each compresses a copy of the full cache and answers every query. */
static kvz_status multi_query(eval_args *a, run_ctx *r, kvz_cache *fc, const score_set *s, double prefill_s)
{
    kvz_status st = KVZ_OK;
    for (size_t k = 0; st == KVZ_OK && k < a->n_cells; k++) {
        eval_cell *cl = &a->cells[k];
        if (cl->query_aware)
            continue;
        eval_acc *acc = &cl->g[r->t->group];
        kvz_cache *c = NULL;
        r->cell = cl;
        st = kvz_cache_clone(fc, &c);
        if (st == KVZ_OK)
            st = compress(r, c, cl, s, prefill_s, acc);
        for (size_t j = 0; st == KVZ_OK && j < r->t->n_q; j++)
            st = ask(r, c, r->t->q[j].prompt, r->t->q[j].n_prompt, j, acc);
        kvz_cache_destroy(c);
    }
    return st;
}

/* The query-aware cells of query j: the question (but its last token) is in the cache before the
 * policy selects, so that the window policies observe it and H2O counts its attention. */
static kvz_status query_aware(eval_args *a, run_ctx *r, kvz_cache *fc, const score_set *base, double prefill_s,
                              size_t j)
{
    const eval_query *q = &r->t->q[j];
    const size_t n_c = r->t->n_c, n_head = question_head(q);
    int32_t *ids = malloc((n_c + n_head) * sizeof *ids); /* the context and the question's head */
    score_set s = *base;
    s.window = s.h2o = NULL;
    kvz_cache *fq = NULL, *wc = NULL, *hc = NULL;
    kvz_status st = ids ? kvz_cache_clone(fc, &fq) : KVZ_ERR_NOMEM;
    double append_s = 0;
    if (st == KVZ_OK) { /* the full cache with the question: the source of the other policies' copies */
        memcpy(ids, r->t->ctx, n_c * sizeof *ids);
        memcpy(ids + n_c, q->prompt, n_head * sizeof *ids);
        const double t0 = omp_get_wtime();
        if (n_head)
            st = kvz_lm_prefill(r->lm, fq, NULL, q->prompt, n_head, NULL);
        append_s = omp_get_wtime() - t0;
    }
    if (st == KVZ_OK && any_cell(a, 1, is_window)) {
        if (!(s.window = malloc(r->rows * n_c * sizeof *s.window)))
            st = KVZ_ERR_NOMEM;
        else
            st = scored_prefill(r, KVZ_SCORES_WINDOW, ids, n_c + n_head, s.window, &wc, &s.window_s);
    }
    if (st == KVZ_OK && any_cell(a, 1, is_h2o)) {
        if (!(s.h2o = malloc(r->rows * n_c * sizeof *s.h2o)))
            st = KVZ_ERR_NOMEM;
        else
            st = scored_prefill(r, KVZ_SCORES_H2O, ids, n_c + n_head, s.h2o, &hc, &s.h2o_s);
    }
    for (size_t k = 0; st == KVZ_OK && k < a->n_cells; k++) {
        eval_cell *cl = &a->cells[k];
        if (!cl->query_aware)
            continue;
        eval_acc *acc = &cl->g[r->t->group];
        const kvz_cache *src = is_window(cl->policy) ? wc : is_h2o(cl->policy) ? hc : fq;
        kvz_cache *c = NULL;
        r->cell = cl;
        st = kvz_cache_clone(src, &c);
        if (st == KVZ_OK)
            st = compress(r, c, cl, &s, prefill_s + append_s, acc);
        if (st == KVZ_OK)
            st = ask(r, c, q->prompt + n_head, q->n_prompt - n_head, j, acc);
        kvz_cache_destroy(c);
    }
    kvz_cache_destroy(fq), kvz_cache_destroy(wc), kvz_cache_destroy(hc);
    free(s.window), free(s.h2o), free(ids);
    return st;
}

/* One context: the full cache and its references, the scores the cells need, then the cells. */
static kvz_status run_context(eval_args *a, run_ctx *r)
{
    const eval_task *t = r->t;
    kvz_lm_compress_report rep = {.struct_size = sizeof rep};
    score_set s = {0};
    kvz_cache *fc = NULL, *scratch = NULL;
    kvz_status st = KVZ_OK;
    if (any_cell(a, 0, is_kvzip) || any_cell(a, 1, is_kvzip)) { /* the full cache the passes ran over */
        if (!(s.kvzip = malloc(r->rows * t->n_c * sizeof *s.kvzip)))
            st = KVZ_ERR_NOMEM;
        else
            st = kvz_lm_score_ids(r->lm, t->ctx, t->n_c, KVZ_SCORES_KVZIP, r->o, &fc, s.kvzip, &rep);
        s.kvzip_s = rep.score_s;
    } else {
        kvz_lm_compress_opts full = *r->o;
        full.policy = KVZ_POLICY_FULL;
        st = kvz_lm_compress_ids(r->lm, t->ctx, t->n_c, &full, &fc, &rep);
    }
    if (st == KVZ_OK && any_cell(a, 0, is_window)) {
        if (!(s.window = malloc(r->rows * t->n_c * sizeof *s.window)))
            st = KVZ_ERR_NOMEM;
        else
            st = scored_prefill(r, KVZ_SCORES_WINDOW, t->ctx, t->n_c, s.window, &scratch, &s.window_s);
        kvz_cache_destroy(scratch), scratch = NULL;
    }
    if (st == KVZ_OK && any_cell(a, 0, is_h2o)) {
        if (!(s.h2o = malloc(r->rows * t->n_c * sizeof *s.h2o)))
            st = KVZ_ERR_NOMEM;
        else
            st = scored_prefill(r, KVZ_SCORES_H2O, t->ctx, t->n_c, s.h2o, &scratch, &s.h2o_s);
        kvz_cache_destroy(scratch), scratch = NULL;
    }
    /* the references come after the scoring passes, which leave the full cache as it was except
       that a sliding-window layer then holds fewer rows: the policies' copies are made from this
       state, and so are the references (another row count reorders the attention's sums, which
       bf16 activations amplify to logit differences of ~0.1 on Gemma 3) */
    for (size_t j = 0; st == KVZ_OK && j < t->n_q; j++)
        st = reference(r, fc, j);
    if (st == KVZ_OK && (a->protocols & PROTOCOL_MULTI))
        st = multi_query(a, r, fc, &s, rep.prefill_s);
    for (size_t j = 0; st == KVZ_OK && (a->protocols & PROTOCOL_QUERY) && j < t->n_q; j++)
        st = query_aware(a, r, fc, &s, rep.prefill_s, j);
    kvz_cache_destroy(fc);
    free(s.kvzip), free(s.window), free(s.h2o);
    return st;
}

/* "context 3/40 (niah_single, 4096), 2 min 10 s, about 25 min left" on a terminal. */
static void progress(size_t done, size_t n, const eval_taskset *set, double elapsed, double tok_done,
                     double tok_all)
{
    if (!isatty(2))
        return;
    const eval_group *g = done < n ? &set->groups[set->t[done].group] : NULL;
    const double left = tok_done > 0 ? elapsed * (tok_all - tok_done) / tok_done : 0;
    fprintf(stderr, "\r\033[Kcontext %zu/%zu", done, n);
    if (g)
        fprintf(stderr, " (next: %s, %zu)", g->kind, g->length);
    fprintf(stderr, ", %.0f s", elapsed);
    if (done)
        fprintf(stderr, ", about %.0f s left", left);
}

/* What the stories260K demo does and what its columns mean, before its table. */
static void demo_intro(const eval_args *a, const eval_taskset *s)
{
    const eval_task *t = s->t;
    const size_t n_tasks = s->n;
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

/* An ids task set's correct answers and queries of a cell. */
static size_t correct(const eval_args *a, const eval_cell *c)
{
    return (size_t)eval_cell_total(c, a->n_groups, SIZE_MAX).score;
}
static size_t answered(const eval_args *a, const eval_cell *c)
{
    return eval_cell_total(c, a->n_groups, SIZE_MAX).answered;
}

/* The table of ids tasks (the demo's): one row per cell. */
static void ids_table(const eval_args *a)
{
    printf("%-20s %6s %10s %9s %10s %10s %14s\n", "policy", "ratio", "kept", "answers", "accuracy", "kl (nats)",
           "build/prefill");
    for (size_t k = 0; k < a->n_cells; k++) {
        const eval_cell *cl = &a->cells[k];
        const eval_acc t = eval_cell_total(cl, a->n_groups, SIZE_MAX), *g = &t;
        printf("%-20s %6.2f %10.4f %5zu/%-3zu %10.4f %10.5f %13.2fx\n", kvz_policy_name(cl->policy), cl->ratio,
               g->pairs ? (double)g->kept / (double)g->pairs : 0, correct(a, cl), g->answered, eval_accuracy(g),
               g->kl_terms ? g->kl / (double)g->kl_terms : 0, g->prefill_s > 0 ? g->build_s / g->prefill_s : 0);
    }
}

/* One line per kept ratio, the policies from the most answers kept to the fewest, then the cost. */
static void demo_verdict(const eval_args *a)
{
    printf("\n");
    for (size_t k = 0; k < a->n_cells; k++) {
        const eval_cell *c = &a->cells[k];
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
                while (at && correct(a, &a->cells[order[at - 1]]) < correct(a, &a->cells[j]))
                    order[at] = order[at - 1], at--;
                order[at] = j;
            }
        printf("At %g %% of the cache, %s keeps %zu of %zu answers", 100 * c->ratio,
               kvz_policy_name(a->cells[order[0]].policy), correct(a, &a->cells[order[0]]),
               answered(a, &a->cells[order[0]]));
        for (size_t j = 1; j < n; j++)
            printf(", %s %zu", kvz_policy_name(a->cells[order[j]].policy), correct(a, &a->cells[order[j]]));
        printf(".\n");
    }
    printf("Compressing costs the KVzip policies their scoring passes (build/prefill above); the window\n"
           "policies score during the prefill. On a model this small the passes' fixed costs weigh more than\n"
           "on a large one: kvz bench model measures the cost on an 8B-shaped model.\n");
}

static int run(eval_args *a)
{
    kvz_lm *lm = NULL;
    eval_taskset set = {0};
    kvz_cli_recon_ids pc = {0};
    float *head_scores = NULL;
    if (kvz_cli_open_lm(a->model, a->weights, 0, 0, &lm))
        return 1;
    kvz_lm_info mi = {.struct_size = sizeof mi};
    kvz_lm_get_info(lm, &mi);
    const kvz_dtype kv = a->kv == KVZ_CLI_KV_DTYPE_AUTO ? mi.kv_dtype : a->kv;
    a->o.kv = kvz_cli_lm_kv(kv);
    fprintf(stderr, "kvz %s: weights %s, KV cache %s\n", a->demo ? "demo" : "eval", kvz_cli_weights_name(&mi),
            kvz_cli_dtype_name(kv));
    int rc = kvz_cli_recon_resolve_lm(&a->recon, lm, &pc);
    const kvz_lm_pieces pieces = kvz_cli_recon_pieces(&pc);
    a->o.pieces = &pieces;
    const eval_encoder enc = {lm, pc.ids[KVZ_PIECE_POSTFIX], pc.n[KVZ_PIECE_POSTFIX], mi.n_vocab};
    if (!rc)
        rc = eval_tasks_read(a->tasks, a->limit, &enc, a->max_tokens, &set);
    const size_t V = mi.n_vocab, L = mi.n_layers, H = mi.n_kv_heads;
    a->n_groups = set.n_groups;
    for (size_t k = 0; !rc && k < a->n_cells; k++)
        if (!(a->cells[k].g = calloc(set.n_groups, sizeof *a->cells[k].g)))
            rc = kvz_cli_error("out of memory");
    int need_heads = 0;
    for (size_t k = 0; k < a->n_cells; k++)
        need_heads |= a->cells[k].policy == KVZ_POLICY_KVZIP_HEAD;
    if (!rc && need_heads && a->head_scores) {
        const kvz_status st = kvz_npy_max_f32(a->head_scores, L, H, &head_scores);
        if (st != KVZ_OK)
            rc = kvz_cli_error("%s (%s)", kvz_last_error(), kvz_strerror(st));
    } else if (!rc && need_heads) {
        char path[4096];
        kvz_lm_compress_opts co = a->o;
        co.window = 0; /* KVzip's scores do not depend on it */
        rc = kvz_cli_calibrate_heads(lm, &co, a->calibration, a->calib_tokens, &head_scores, path, sizeof path);
        if (!rc && !a->json)
            fprintf(stderr, "kvz eval: kvzip-head's head scores: %s\n", path);
    }
    if (!rc && a->demo && !a->json)
        demo_intro(a, &set);
    size_t max_ref = 1, max_prompt = 1;
    double tok_all = 0;
    for (size_t i = 0; i < set.n; i++) {
        tok_all += (double)set.t[i].n_c;
        for (size_t j = 0; j < set.t[i].n_q; j++) {
            const size_t n_ref = set.text ? set.t[i].max_tokens : set.t[i].q[j].n_answer;
            max_ref = n_ref > max_ref ? n_ref : max_ref;
            max_prompt = set.t[i].q[j].n_prompt > max_prompt ? set.t[i].q[j].n_prompt : max_prompt;
        }
    }
    size_t max_q = 1;
    for (size_t i = 0; i < set.n; i++)
        max_q = set.t[i].n_q > max_q ? set.t[i].n_q : max_q;
    run_ctx r = {.lm = lm,
                 .o = &a->o,
                 .sys = pc.ids[KVZ_PIECE_SYSTEM],
                 .n_sys = pc.n[KVZ_PIECE_SYSTEM],
                 .rows = L * H,
                 .pairs = (L - mi.n_window_layers) * H,
                 .text = set.text,
                 .V = V,
                 .max_ref = max_ref,
                 .head_scores = head_scores};
    r.ref = malloc(max_q * max_ref * sizeof *r.ref);
    r.n_ref = calloc(max_q, sizeof *r.n_ref);
    r.ref_lp = malloc(max_q * max_ref * V * sizeof *r.ref_lp);
    r.lp = malloc(max_ref * V * sizeof *r.lp);
    r.ls = malloc(V * sizeof *r.ls);
    r.gen = malloc(max_ref * sizeof *r.gen);
    r.ids = malloc((max_prompt + max_ref) * sizeof *r.ids);
    if (!rc && (!r.ref || !r.n_ref || !r.ref_lp || !r.lp || !r.ls || !r.gen || !r.ids))
        rc = kvz_cli_error("out of memory");
    if (!rc && a->generations && !(r.gen_out = fopen(a->generations, "w")))
        rc = kvz_cli_error("cannot write %s: %s", a->generations, strerror(errno));
    /* one-time costs (first-touch pages, oneDNN primitives, thread start-up) before any timing */
    if (!rc && set.n)
        rc = kvz_cli_lm_warm_up(lm, set.t[0].ctx, set.t[0].n_c, &a->o);
    kvz_status st = KVZ_OK;
    const double t0 = omp_get_wtime();
    double tok_done = 0;
    for (size_t i = 0; !rc && st == KVZ_OK && i < set.n; i++) {
        progress(i, set.n, &set, omp_get_wtime() - t0, tok_done, tok_all);
        r.t = &set.t[i];
        a->o.window = a->window ? a->window : set.t[i].n_c < 1000 ? 16 : 32;
        st = run_context(a, &r);
        if (st != KVZ_OK)
            rc = kvz_cli_error("%s: evaluation failed: %s (%s)", set.t[i].id, kvz_last_error(), kvz_strerror(st));
        tok_done += (double)set.t[i].n_c;
    }
    if (!rc && isatty(2))
        progress(set.n, set.n, &set, omp_get_wtime() - t0, tok_done, tok_all), fputc('\n', stderr);
    if (!rc && a->json)
        eval_report_json(stdout, a->cells, a->n_cells, &set, a->model);
    else if (!rc && set.text)
        eval_report_table(stdout, a->cells, a->n_cells, &set);
    else if (!rc)
        ids_table(a);
    if (!rc && a->demo && !a->json)
        demo_verdict(a);
    if (!rc && a->markdown)
        rc = eval_report_markdown(a->markdown, a->cells, a->n_cells, &set, a->model);
    if (!rc && a->plot)
        rc = eval_report_plot(a->plot, a->cells, a->n_cells, &set, a->model);
    if (r.gen_out && fclose(r.gen_out) != 0 && !rc)
        rc = kvz_cli_error("cannot write %s: %s", a->generations, strerror(errno));
    free(r.ref), free(r.n_ref), free(r.ref_lp), free(r.lp), free(r.ls), free(r.gen), free(r.ids);
    for (size_t k = 0; k < a->n_cells; k++)
        free(a->cells[k].g), a->cells[k].g = NULL;
    free(head_scores);
    eval_tasks_free(&set);
    kvz_cli_recon_ids_free(&pc);
    kvz_lm_close(lm);
    return rc;
}

/* "kvzip-pair,streaming" x "0.5,0.3" x protocols -> cells; "all" names every policy */
static int add_cells(eval_args *a, const char *policies, const char *ratios)
{
    static const char every[] = "full,kvzip-pair,kvzip-pair-uniform,kvzip-head,fastkv,snapkv,pyramidkv,adakv,h2o,"
                                "streaming,random";
    char *pl = strdup(strcmp(policies, "all") ? policies : every);
    int rc = !pl ? kvz_cli_error("out of memory") : 0;
    for (int proto = PROTOCOL_MULTI; proto <= PROTOCOL_QUERY && !rc; proto <<= 1) {
        if (!(a->protocols & proto))
            continue;
        char *s1 = NULL;
        char *copy = strdup(pl);
        for (char *p = copy ? strtok_r(copy, ",", &s1) : NULL; p && !rc; p = strtok_r(NULL, ",", &s1)) {
            kvz_policy pol;
            if ((rc = kvz_cli_parse_policy(p, &pol)))
                break;
            if (pol == KVZ_POLICY_FULL && proto == PROTOCOL_QUERY)
                continue; /* the full cache is the same in both protocols */
            char *rl = strdup(ratios), *s2 = NULL;
            for (char *q = rl ? strtok_r(rl, ",", &s2) : NULL; q && !rc; q = strtok_r(NULL, ",", &s2)) {
                double v;
                if ((rc = kvz_cli_parse_ratio(q, "--ratio", &v)))
                    break;
                if (a->n_cells == MAX_CELLS) {
                    rc = kvz_cli_error("at most %d policy x ratio x protocol combinations", MAX_CELLS);
                    break;
                }
                a->cells[a->n_cells++] = (eval_cell){.policy = pol,
                                                     .ratio = pol == KVZ_POLICY_FULL ? 1.0 : v,
                                                     .query_aware = proto == PROTOCOL_QUERY};
                if (pol == KVZ_POLICY_FULL)
                    break; /* one ratio is enough for the full cache */
            }
            free(rl);
        }
        free(copy);
    }
    free(pl);
    /* relative accuracy, the summaries and the plot compare with the full cache, so it is evaluated
       whether or not the list names it (a run without it would report nothing relative) */
    int has_full = 0;
    for (size_t k = 0; k < a->n_cells; k++)
        has_full |= a->cells[k].policy == KVZ_POLICY_FULL;
    if (!rc && !has_full) {
        if (a->n_cells == MAX_CELLS)
            return kvz_cli_error("at most %d policy x ratio x protocol combinations, the full cache included",
                                 MAX_CELLS);
        memmove(a->cells + 1, a->cells, a->n_cells * sizeof *a->cells);
        a->cells[0] = (eval_cell){.policy = KVZ_POLICY_FULL, .ratio = 1.0};
        a->n_cells++;
        fprintf(stderr, "kvz eval: the full cache is evaluated too (relative accuracy compares with it)\n");
    }
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
            "usage: kvz eval --model M --tasks F.jsonl [--policy P[,P...]|all] [--ratio R[,R...]]\n"
            "                [--protocol multi|query|both] [--limit N] [--max-tokens N] [--chunk N]\n"
            "                [--window N] [--kernel N] [--pool avg|max]\n"
            "                [--kv-dtype auto|f32|bf16|f16] [--weights auto|f32|bf16] [--head-scores F.npy[,...]]\n"
            "                [--calibration FILE] [--calibration-tokens N] [--json] [--markdown F.md]\n"
            "                [--plot F.png] [--generations F.jsonl] [reconstruction options]\n"
            "  Compresses each context once per policy and kept ratio and answers every query of it from\n"
            "  that cache (KVzip's multi-query protocol), or, with --protocol query, puts each question in\n"
            "  the cache before compressing (the query-aware protocol SnapKV is meant for).\n"
            "  task lines, ids: {\"context_ids\": [...], \"queries\": [{\"prompt_ids\": [...], \"answer_ids\": [...]}]}\n"
            "  or text: {\"context\": \"...\", \"queries\": [{\"question\": \"...\", \"answers\": [\"...\"],\n"
            "  \"match\": \"any\"|\"all\", \"answer_prefix\": \"...\"}], \"max_tokens\": N, \"task\": \"kind\",\n"
            "  \"length\": N, \"id\": \"...\"}\n"
            "  (eval/gen_tasks.py writes such files); the context goes in the user turn of the chat template,\n"
            "  each question after it as \"\\n\\n\" + question + the assistant opener (spec/kvzip.md 1.1)\n"
            "  + the answer prefix, when given\n"
            "  --policy   comma-separated (kvzip-pair), or all; kvzip and streamingllm are accepted for\n"
            "             kvzip-pair and streaming; full keeps everything and takes no ratio, and is\n"
            "             evaluated whether listed or not (the reference of relative accuracy)\n"
            "  --ratio    comma-separated kept fractions, each in (0, 1] (0.3: 30 %%)\n"
            "  --protocol multi (default): compress without the question; query: with it; both\n"
            "  --limit N  only the first N contexts (0, the default: all)\n"
            "  --max-tokens N  text tasks without max_tokens: tokens generated at most (32); generation\n"
            "             stops at the end of the turn\n"
            "  --chunk N  context tokens per reconstruction pass (2000)\n"
            "  --kv-dtype the caches' storage: auto (default) as the model computes (bf16 on CPUs\n"
            "             with AVX512_BF16 unless the model is stored in f32 or f16, else f32), or f32, bf16,\n"
            "             f16; the full cache the policies are compared with is stored the same way\n"
            "  --window N, --kernel N, --pool avg|max  the window policies' (fastkv, snapkv, pyramidkv, adakv)\n"
            "             observation window, kept always, and the pooling of their scores; by default as\n"
            "             the KVzip paper ran them: window 32 (16 for contexts under 1000 tokens), max pooling\n"
            "             by 7\n"
            "  --head-scores  kvzip-head: float32 [layers, kv_heads] .npy files, maximum taken; without it\n"
            "             the heads are scored once per model on --calibration (eval/calibration.txt, its\n"
            "             first --calibration-tokens tokens, 8192) and kept in ~/.cache/kvz/heads\n"
            "  --markdown F.md  a summary: the full cache's accuracy per task and length, and every policy's\n"
            "             accuracy relative to it per task\n"
            "  --plot F.png  relative accuracy against kept ratio, a panel per task (needs gnuplot)\n"
            "  --generations F.jsonl  every answer: {\"id\", \"query\", \"protocol\", \"policy\", \"ratio\",\n"
            "             \"text\", \"ids\", \"score\", \"agree\"}\n"
            "  scores: ids tasks: the greedy answer equals answer_ids; text tasks: RULER's string match (any\n"
            "  expected answer in the generated text, case and whitespace normalised; \"all\": the share found);\n"
            "  agree: the generation equals the full cache's; kl: KL(full || policy) of the next-token\n"
            "  distributions along the full cache's answer; build/prefill: the time to build the compressed\n"
            "  cache over a plain prefill's; decode: ms per generated token after the first\n%s",
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
        else if (!strcmp(o, "--head-scores"))
            a->head_scores = v;
        else if (!strcmp(o, "--calibration"))
            a->calibration = v;
        else if (!strcmp(o, "--markdown"))
            a->markdown = v;
        else if (!strcmp(o, "--plot"))
            a->plot = v;
        else if (!strcmp(o, "--generations"))
            a->generations = v;
        else if (!strcmp(o, "--protocol")) {
            if (!strcmp(v, "multi"))
                a->protocols = PROTOCOL_MULTI;
            else if (!strcmp(v, "query"))
                a->protocols = PROTOCOL_QUERY;
            else if (!strcmp(v, "both"))
                a->protocols = PROTOCOL_MULTI | PROTOCOL_QUERY;
            else
                return kvz_cli_usage_error(cmd, "--protocol must be multi, query or both, not '%s'", v);
        } else if (!strcmp(o, "--limit")) {
            if (kvz_cli_parse_size(v, o, &a->limit))
                return 2;
        } else if (!strcmp(o, "--max-tokens")) {
            if (kvz_cli_parse_count(v, o, &a->max_tokens))
                return 2;
        } else if (!strcmp(o, "--calibration-tokens")) {
            if (kvz_cli_parse_count(v, o, &a->calib_tokens))
                return 2;
        } else if (!strcmp(o, "--window")) {
            if (kvz_cli_parse_count(v, o, &a->window))
                return 2;
        } else if (!strcmp(o, "--kernel")) {
            if (kvz_cli_parse_count(v, o, &a->o.kernel))
                return 2;
            if (a->o.kernel % 2 == 0)
                return kvz_cli_usage_error(cmd, "--kernel must be odd, not %zu", a->o.kernel);
        } else if (!strcmp(o, "--pool")) {
            if (!strcmp(v, "avg") || !strcmp(v, "max"))
                a->o.pool = !strcmp(v, "avg") ? KVZ_POOL_AVG : KVZ_POOL_MAX;
            else
                return kvz_cli_usage_error(cmd, "--pool must be avg or max, not '%s'", v);
        } else if (!strcmp(o, "--chunk")) {
            if (kvz_cli_parse_count(v, o, &a->o.chunk))
                return 2;
        } else if (!strcmp(o, "--kv-dtype")) {
            if (kvz_cli_parse_dtype(v, &a->kv))
                return 2;
        } else
            return kvz_cli_usage_error(cmd, "unknown option '%s'", o);
    }
    return 0;
}

static void defaults(eval_args *a)
{
    memset(a, 0, sizeof *a);
    a->weights = "auto", a->calibration = "eval/calibration.txt";
    a->max_tokens = 32, a->calib_tokens = 8192, a->protocols = PROTOCOL_MULTI;
    a->o.struct_size = sizeof a->o;
    /* the storage users run with: agreement and KL are measured against the full cache, in the same storage */
    a->kv = KVZ_CLI_KV_DTYPE_AUTO;
    /* the window policies as the KVzip paper ran its baselines (App. A): max pooling by 7 over the
       window scores of the last 32 tokens (16 for contexts under 1K tokens) */
    a->o.pool = KVZ_POOL_MAX, a->o.kernel = 7;
}

int kvz_cmd_eval(int argc, char **argv)
{
    eval_args a;
    defaults(&a);
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
    eval_args a;
    defaults(&a);
    a.model = "../shared/models/stories260K.gguf", a.tasks = "../shared/eval/stories-public.jsonl", a.demo = 1;
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
