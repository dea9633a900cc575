/* The task files of kvz eval: contexts with their queries, given as token ids or as text (text
 * goes through the model's chat template), and RULER's answer matching. */
#ifndef KVZ_CLI_EVAL_TASKS_H
#define KVZ_CLI_EVAL_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "kvz_model.h"

typedef struct eval_query {
    int32_t *prompt; /* the question's ids, appended after the context */
    size_t n_prompt;
    int32_t *answer; /* ids tasks: the expected answer, generated to its length without stopping */
    size_t n_answer;
    char **answers; /* text tasks: the expected strings */
    size_t n_answers;
    int match_all; /* text tasks: score the share of answers found (RULER's string_match_all) */
} eval_query;

typedef struct eval_task {
    char *id;        /* "id", or "line N" */
    size_t group;    /* index into the task set's groups: (task kind, length) */
    int32_t *ctx;    /* context ids, after the system prompt */
    size_t n_c;
    size_t max_tokens; /* text tasks: the generation limit (it stops earlier at end of generation) */
    eval_query *q;
    size_t n_q;
} eval_task;

/* A (task kind, target length) pair; tasks without "task" form the kind "tasks", without
 * "length" the length 0. */
typedef struct eval_group {
    char *kind;
    size_t length;
} eval_group;

typedef struct eval_taskset {
    eval_task *t;
    size_t n;
    eval_group *groups;
    size_t n_groups;
    int text; /* 1: every line gives text, 0: every line gives ids */
} eval_taskset;

/* How a task file's text becomes ids: the model, the assistant opener its questions end with, and the
 * vocabulary ids tasks are checked against. */
typedef struct eval_encoder {
    const kvz_lm *lm;
    const int32_t *postfix;
    size_t n_postfix;
    size_t n_vocab;
} eval_encoder;

/*
 * Reads a JSON Lines task file (at most `limit` contexts; 0: all). A line is either
 *   {"context_ids": [...], "queries": [{"prompt_ids": [...], "answer_ids": [...]}, ...]}
 * or
 *   {"context": "...", "queries": [{"question": "...", "answers": ["..."], "match": "any"|"all",
 *    "answer_prefix": "..."}, ...], "max_tokens": N, "task": "kind", "length": N, "id": "..."}
 * (task, length, id, match, answer_prefix and max_tokens optional; max_tokens defaults to
 * default_max). Text contexts are encoded without BOS and without special tokens (the system
 * prompt opens the cache); a question becomes enc("\n\n" + question) ++ the assistant opener
 * (e->postfix), as the reference builds it, ++ enc(answer_prefix) when given (RULER's way of
 * starting the answer, so that the generation is the answer itself). One file holds one kind of line. Returns
 * 0, or prints why
 * ("file:line: ...") and returns 1.
 */
int eval_tasks_read(const char *path, size_t limit, const eval_encoder *e, size_t default_max,
                    eval_taskset *out);
void eval_tasks_free(eval_taskset *s);

/* RULER's scoring of one generation: with match_all the share of answers that occur in text,
 * else 1 when any does, 0 otherwise; both compared lower-cased with every run of whitespace as
 * one space and leading/trailing whitespace dropped. */
double eval_match(const char *text, char *const *answers, size_t n_answers, int match_all);

#endif
