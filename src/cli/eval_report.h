/* What kvz eval measures per policy, ratio and task group, and the ways it reports it: the
 * console table, JSON lines, a Markdown summary and a gnuplot figure. */
#ifndef KVZ_CLI_EVAL_REPORT_H
#define KVZ_CLI_EVAL_REPORT_H

#include <stdio.h>

#include "cli/eval_tasks.h"
#include "kvz.h"

/* Sums over the contexts and queries of one task group. */
typedef struct eval_acc {
    double score;     /* per-query scores: ids tasks 1 when the answer equals answer_ids; text tasks RULER's match */
    size_t answered;  /* queries */
    size_t agree;     /* generations equal to the full cache's (ids tasks: to answer_ids) */
    double kl;        /* KL(full || policy) per answer token, summed */
    size_t kl_terms;
    size_t kept, pairs; /* kept context pairs of the compressed (global) layers, and all of them */
    double bytes;       /* K/V bytes the cache held after compression */
    size_t caches;      /* compressed caches built (contexts, or queries in the query-aware protocol) */
    double build_s;     /* building the compressed cache: prefill, scoring, selection */
    double prefill_s;   /* a plain prefill of the same tokens */
    double decode_s;    /* the generation steps after the first token */
    size_t decode_steps;
} eval_acc;

typedef struct eval_cell {
    kvz_policy policy;
    double ratio;
    int query_aware; /* the question was in the cache before compression */
    eval_acc *g;     /* one per task group */
} eval_cell;

/* The sum of a cell's groups (group SIZE_MAX) or one group. */
eval_acc eval_cell_total(const eval_cell *c, size_t n_groups, size_t group);

/* Accuracy of a sum: mean score per query (0 without queries). */
double eval_accuracy(const eval_acc *a);

/* The console table of text tasks: one row per cell over all groups. */
void eval_report_table(FILE *f, const eval_cell *cells, size_t n_cells, const eval_taskset *s);

/* One JSON object per cell and group, then one per cell over all groups ("task": "all"). */
void eval_report_json(FILE *f, const eval_cell *cells, size_t n_cells, const eval_taskset *s, const char *model);

/* A Markdown summary: the full cache's accuracy per task and length, the accuracy of every cell
 * relative to the full cache's per task, and the mean over the (task, length) groups where the
 * full cache scores at least 0.5. Returns 0 or prints why and returns 1. */
int eval_report_markdown(const char *path, const eval_cell *cells, size_t n_cells, const eval_taskset *s,
                         const char *model);

/* relative accuracy against kept ratio, one panel per task, one line per policy and protocol,
 * drawn by gnuplot into a PNG. Returns 0 or prints why and returns 1. */
int eval_report_plot(const char *path, const eval_cell *cells, size_t n_cells, const eval_taskset *s,
                     const char *model);

#endif
