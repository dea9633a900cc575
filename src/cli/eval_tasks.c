/* Reading kvz eval's task files (ids or text through the chat template) and RULER's string
 * matching of the answers. */
#include "cli/eval_tasks.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_lm.h"
#include "cli/json.h"

static void free_query(eval_query *q)
{
    free(q->prompt), free(q->answer);
    for (size_t i = 0; i < q->n_answers; i++)
        free(q->answers[i]);
    free(q->answers);
}

void eval_tasks_free(eval_taskset *s)
{
    for (size_t i = 0; s->t && i < s->n; i++) {
        for (size_t j = 0; j < s->t[i].n_q; j++)
            free_query(&s->t[i].q[j]);
        free(s->t[i].q), free(s->t[i].ctx), free(s->t[i].id);
    }
    for (size_t g = 0; g < s->n_groups; g++)
        free(s->groups[g].kind);
    free(s->t), free(s->groups);
    memset(s, 0, sizeof *s);
}

/* The index of (kind, length), added when new; SIZE_MAX when out of memory. */
static size_t group_of(eval_taskset *s, const char *kind, size_t length)
{
    for (size_t g = 0; g < s->n_groups; g++)
        if (!strcmp(s->groups[g].kind, kind) && s->groups[g].length == length)
            return g;
    eval_group *ng = realloc(s->groups, (s->n_groups + 1) * sizeof *ng);
    if (!ng)
        return SIZE_MAX;
    s->groups = ng;
    if (!(ng[s->n_groups].kind = strdup(kind)))
        return SIZE_MAX;
    ng[s->n_groups].length = length;
    return s->n_groups++;
}

static const char *string_of(const kvz_json *j) { return j && j->type == KVZ_JSON_STRING ? j->string : NULL; }

/* A whole number >= 0 from an optional member: 0 when absent, -1 when not such a number. */
static int size_of(const kvz_json *j, size_t *v)
{
    if (!j)
        return 0;
    if (j->type != KVZ_JSON_NUMBER || j->number < 0 || j->number > 1e12 || j->number != (double)(size_t)j->number)
        return -1;
    *v = (size_t)j->number;
    return 0;
}

static int ids_query(const kvz_json *jq, eval_query *q)
{
    return kvz_json_int_array(kvz_json_get(jq, "prompt_ids"), &q->prompt, &q->n_prompt) ||
           kvz_json_int_array(kvz_json_get(jq, "answer_ids"), &q->answer, &q->n_answer) || !q->n_prompt ||
           !q->n_answer;
}

/* Returns 0, or 1 with why in err. */
static int text_query(const kvz_json *jq, const eval_encoder *e, eval_query *q, char *err, size_t err_size)
{
    const char *question = string_of(kvz_json_get(jq, "question"));
    const kvz_json *ans = kvz_json_get(jq, "answers");
    const char *match = string_of(kvz_json_get(jq, "match"));
    if (!question || !*question || !ans || ans->type != KVZ_JSON_ARRAY || !ans->n_items) {
        snprintf(err, err_size, "needs a non-empty \"question\" and a non-empty \"answers\" array of strings");
        return 1;
    }
    if (kvz_json_get(jq, "match") && (!match || (strcmp(match, "any") && strcmp(match, "all")))) {
        snprintf(err, err_size, "\"match\" must be \"any\" or \"all\"");
        return 1;
    }
    q->match_all = match && !strcmp(match, "all");
    if (!(q->answers = calloc(ans->n_items, sizeof *q->answers))) {
        snprintf(err, err_size, "out of memory");
        return 1;
    }
    for (size_t k = 0; k < ans->n_items; k++, q->n_answers++) {
        const char *a = string_of(&ans->items[k]);
        if (!a || !*a) {
            snprintf(err, err_size, "answer %zu is not a non-empty string", k);
            return 1;
        }
        if (!(q->answers[k] = strdup(a))) {
            snprintf(err, err_size, "out of memory");
            return 1;
        }
    }
    if (kvz_cli_lm_question(e->lm, question, e->postfix, e->n_postfix, &q->prompt, &q->n_prompt)) {
        snprintf(err, err_size, "cannot encode the question");
        return 1;
    }
    const kvz_json *jp = kvz_json_get(jq, "answer_prefix");
    const char *prefix = string_of(jp);
    if (jp && !prefix) {
        snprintf(err, err_size, "\"answer_prefix\" must be a string");
        return 1;
    }
    if (prefix && *prefix) { /* the start of the answer, after the assistant opener (RULER's answer_prefix) */
        int32_t *ids = NULL, *all;
        size_t n = 0;
        if (kvz_cli_lm_tokenize(e->lm, prefix, 0, &ids, &n) ||
            !(all = realloc(q->prompt, (q->n_prompt + n) * sizeof *all))) {
            free(ids);
            snprintf(err, err_size, "cannot encode the answer prefix");
            return 1;
        }
        memcpy(all + q->n_prompt, ids, n * sizeof *all);
        q->prompt = all, q->n_prompt += n;
        free(ids);
    }
    return 0;
}

static int check_ids(const eval_encoder *e, const int32_t *ids, size_t n, char *err, size_t err_size)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= e->n_vocab) {
            snprintf(err, err_size, "token %d is outside the vocabulary of %zu", (int)ids[i], e->n_vocab);
            return 1;
        }
    return 0;
}

/* One parsed line into t; returns 0, or 1 with why in err. */
static int read_task(const kvz_json *j, size_t line, const eval_encoder *e, size_t default_max, eval_taskset *s,
                     eval_task *t, char *err, size_t err_size)
{
    const int text = kvz_json_get(j, "context") != NULL;
    if (s->n > 1 && text != s->text) {
        snprintf(err, err_size, "gives %s, the lines before it %s: one file holds one kind", text ? "text" : "ids",
                 s->text ? "text" : "ids");
        return 1;
    }
    s->text = text;
    const kvz_json *qs = kvz_json_get(j, "queries");
    size_t length = 0, max_tokens = default_max;
    const char *kind = string_of(kvz_json_get(j, "task")), *id = string_of(kvz_json_get(j, "id"));
    if (size_of(kvz_json_get(j, "length"), &length) || size_of(kvz_json_get(j, "max_tokens"), &max_tokens) ||
        (kvz_json_get(j, "max_tokens") && !max_tokens)) {
        snprintf(err, err_size, "\"length\" and \"max_tokens\" must be whole numbers (max_tokens at least 1)");
        return 1;
    }
    if ((kvz_json_get(j, "task") && !kind) || (kvz_json_get(j, "id") && !id)) {
        snprintf(err, err_size, "\"task\" and \"id\" must be strings");
        return 1;
    }
    char line_id[32];
    snprintf(line_id, sizeof line_id, "line %zu", line);
    t->max_tokens = max_tokens;
    if (!(t->id = strdup(id ? id : line_id)) || (t->group = group_of(s, kind ? kind : "tasks", length)) == SIZE_MAX) {
        snprintf(err, err_size, "out of memory");
        return 1;
    }
    if (text) {
        const char *c = string_of(kvz_json_get(j, "context"));
        if (!c || !*c || kvz_cli_lm_tokenize(e->lm, c, 0, &t->ctx, &t->n_c) || !t->n_c) {
            snprintf(err, err_size, "needs a non-empty \"context\" string");
            return 1;
        }
    } else if (kvz_json_int_array(kvz_json_get(j, "context_ids"), &t->ctx, &t->n_c) || !t->n_c) {
        snprintf(err, err_size, "needs non-empty \"context_ids\" (or a \"context\" text)");
        return 1;
    }
    if (check_ids(e, t->ctx, t->n_c, err, err_size))
        return 1;
    if (!qs || qs->type != KVZ_JSON_ARRAY || !qs->n_items) {
        snprintf(err, err_size, "needs a non-empty \"queries\" array");
        return 1;
    }
    if (!(t->q = calloc(qs->n_items, sizeof *t->q))) {
        snprintf(err, err_size, "out of memory");
        return 1;
    }
    for (size_t i = 0; i < qs->n_items; i++, t->n_q++) {
        eval_query *q = &t->q[i];
        char why[160];
        int bad = text ? text_query(&qs->items[i], e, q, why, sizeof why) : ids_query(&qs->items[i], q);
        if (bad && !text)
            snprintf(why, sizeof why, "needs non-empty \"prompt_ids\" and \"answer_ids\"");
        bad = bad || check_ids(e, q->prompt, q->n_prompt, why, sizeof why) ||
              check_ids(e, q->answer, q->n_answer, why, sizeof why);
        if (bad) {
            t->n_q++; /* what it holds is freed with the task */
            snprintf(err, err_size, "query %zu: %s", i, why);
            return 1;
        }
    }
    return 0;
}

int eval_tasks_read(const char *path, size_t limit, const eval_encoder *e, size_t default_max,
                    eval_taskset *out)
{
    char *text;
    size_t len, cap = 0, line = 0;
    eval_taskset s = {0};
    if (kvz_cli_read_file(path, &text, &len))
        return 1;
    int rc = 0;
    for (char *at = text, *nl; !rc && at < text + len && (!limit || s.n < limit); at = nl + 1) {
        line++;
        if (!(nl = memchr(at, '\n', (size_t)(text + len - at))))
            nl = text + len;
        if (nl == at)
            continue;
        char err[256];
        kvz_json *j = kvz_json_parse(at, (size_t)(nl - at), err, sizeof err);
        if (!j) {
            rc = kvz_cli_error("%s:%zu: %s", path, line, err);
            break;
        }
        if (s.n == cap) {
            eval_task *nt = realloc(s.t, (cap = cap ? 2 * cap : 16) * sizeof *nt);
            if (!nt) {
                kvz_json_free(j);
                rc = kvz_cli_error("out of memory");
                break;
            }
            s.t = nt;
        }
        eval_task *t = &s.t[s.n++];
        memset(t, 0, sizeof *t);
        if (j->type != KVZ_JSON_OBJECT)
            rc = kvz_cli_error("%s:%zu: a task line is a JSON object", path, line);
        else if (read_task(j, line, e, default_max, &s, t, err, sizeof err))
            rc = kvz_cli_error("%s:%zu: %s", path, line, err);
        kvz_json_free(j);
    }
    free(text);
    if (!rc && !s.n)
        rc = kvz_cli_error("%s holds no tasks", path);
    if (rc) {
        eval_tasks_free(&s);
        return 1;
    }
    *out = s;
    return 0;
}

/* text lower-cased, whitespace runs as one space, trimmed (malloc'ed; NULL when out of memory) */
static char *normalise(const char *text)
{
    char *out = malloc(strlen(text) + 1), *w = out;
    if (!out)
        return NULL;
    int space = 0;
    for (const unsigned char *r = (const unsigned char *)text; *r; r++) {
        if (isspace(*r)) {
            space = w != out;
            continue;
        }
        if (space)
            *w++ = ' ', space = 0;
        *w++ = (char)tolower(*r);
    }
    *w = 0;
    return out;
}

double eval_match(const char *text, char *const *answers, size_t n_answers, int match_all)
{
    char *t = normalise(text);
    size_t found = 0;
    for (size_t i = 0; t && i < n_answers; i++) {
        char *a = normalise(answers[i]);
        found += a && strstr(t, a) != NULL;
        free(a);
    }
    free(t);
    if (match_all)
        return n_answers ? (double)found / (double)n_answers : 0;
    return found ? 1 : 0;
}
