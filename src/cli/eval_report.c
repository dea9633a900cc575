/* kvz eval's reports: the console table, JSON lines, the Markdown summary and the gnuplot figure. */
#include "cli/eval_report.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/json.h"
#include "core/atomic_file.h"

eval_acc eval_cell_total(const eval_cell *c, size_t n_groups, size_t group)
{
    eval_acc t = {0};
    for (size_t g = 0; g < n_groups; g++) {
        if (group != SIZE_MAX && g != group)
            continue;
        const eval_acc *a = &c->g[g];
        t.score += a->score, t.answered += a->answered, t.agree += a->agree, t.kl += a->kl;
        t.kl_terms += a->kl_terms, t.kept += a->kept, t.pairs += a->pairs, t.bytes += a->bytes;
        t.caches += a->caches, t.build_s += a->build_s, t.prefill_s += a->prefill_s;
        t.decode_s += a->decode_s, t.decode_steps += a->decode_steps;
    }
    return t;
}

double eval_accuracy(const eval_acc *a) { return a->answered ? a->score / (double)a->answered : 0; }

static double mean_kl(const eval_acc *a) { return a->kl_terms ? a->kl / (double)a->kl_terms : 0; }
static double kept_ratio(const eval_acc *a) { return a->pairs ? (double)a->kept / (double)a->pairs : 0; }
static double agree_share(const eval_acc *a) { return a->answered ? (double)a->agree / (double)a->answered : 0; }
static double decode_ms(const eval_acc *a) { return a->decode_steps ? 1e3 * a->decode_s / (double)a->decode_steps : 0; }
static double per_cache(double x, const eval_acc *a) { return a->caches ? x / (double)a->caches : 0; }

static const char *protocol_name(const eval_cell *c) { return c->query_aware ? "query" : "multi"; }

/* The full cache's cell, or NULL. */
static const eval_cell *full_cell(const eval_cell *cells, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (cells[k].policy == KVZ_POLICY_FULL)
            return &cells[k];
    return NULL;
}

/* The kinds of the groups in their first order: kinds[i] is the group index of a group of the i-th kind. */
static size_t task_kinds(const eval_taskset *s, size_t *first)
{
    size_t n = 0;
    for (size_t g = 0; g < s->n_groups; g++) {
        size_t k = 0;
        while (k < n && strcmp(s->groups[first[k]].kind, s->groups[g].kind))
            k++;
        if (k == n)
            first[n++] = g;
    }
    return n;
}

/* The sum of a cell over the groups of one kind. */
static eval_acc kind_total(const eval_cell *c, const eval_taskset *s, const char *kind)
{
    eval_acc t = {0};
    for (size_t g = 0; g < s->n_groups; g++)
        if (!strcmp(s->groups[g].kind, kind)) {
            const eval_acc one = eval_cell_total(c, s->n_groups, g);
            t.score += one.score, t.answered += one.answered;
        }
    return t;
}

/* acc / the full cache's, as text ("-" when the full cache scored 0 or was not run). */
static void relative(char *buf, size_t size, double acc, double full)
{
    if (full > 0)
        snprintf(buf, size, "%.4f", acc / full);
    else
        snprintf(buf, size, "-");
}

void eval_report_table(FILE *f, const eval_cell *cells, size_t n_cells, const eval_taskset *s)
{
    const eval_cell *full = full_cell(cells, n_cells);
    const eval_acc ft = full ? eval_cell_total(full, s->n_groups, SIZE_MAX) : (eval_acc){0};
    fprintf(f, "%-8s %-18s %5s %6s %8s %8s %6s %8s %8s %8s %9s\n", "protocol", "policy", "ratio", "kept",
            "accuracy", "relative", "agree", "kl", "KV MiB", "build s", "decode ms");
    for (size_t k = 0; k < n_cells; k++) {
        const eval_acc t = eval_cell_total(&cells[k], s->n_groups, SIZE_MAX);
        char rel[32];
        relative(rel, sizeof rel, eval_accuracy(&t), eval_accuracy(&ft));
        fprintf(f, "%-8s %-18s %5.2f %6.4f %8.4f %8s %6.4f %8.5f %8.2f %8.3f %9.2f\n", protocol_name(&cells[k]),
                kvz_policy_name(cells[k].policy), cells[k].ratio, kept_ratio(&t), eval_accuracy(&t), rel,
                agree_share(&t), mean_kl(&t), per_cache(t.bytes, &t) / 1048576.0, per_cache(t.build_s, &t),
                decode_ms(&t));
    }
}

static void json_line(FILE *f, const eval_cell *c, const eval_acc *t, const eval_acc *ft, const char *task,
                      size_t length, const char *model)
{
    fprintf(f, "{\"model\": ");
    kvz_json_write_string(f, model);
    fprintf(f, ", \"protocol\": \"%s\", \"policy\": \"%s\", \"ratio\": %g, \"task\": ", protocol_name(c),
            kvz_policy_name(c->policy), c->ratio);
    kvz_json_write_string(f, task);
    fprintf(f,
            ", \"length\": %zu, \"caches\": %zu, \"queries\": %zu, \"accuracy\": %.6f, \"full_accuracy\": ",
            length, t->caches, t->answered, eval_accuracy(t));
    if (ft)
        fprintf(f, "%.6f", eval_accuracy(ft));
    else
        fprintf(f, "null");
    fprintf(f,
            ", \"agree\": %.6f, \"kl\": %.6g, \"kept_ratio\": %.6f, \"kv_bytes\": %.0f, \"build_s\": %.6f, "
            "\"prefill_s\": %.6f, \"build_over_prefill\": %.4f, \"decode_ms_per_token\": %.4f}\n",
            agree_share(t), mean_kl(t), kept_ratio(t), per_cache(t->bytes, t), per_cache(t->build_s, t), per_cache(t->prefill_s, t),
            t->prefill_s > 0 ? t->build_s / t->prefill_s : 0, decode_ms(t));
}

void eval_report_json(FILE *f, const eval_cell *cells, size_t n_cells, const eval_taskset *s, const char *model)
{
    const eval_cell *full = full_cell(cells, n_cells);
    for (size_t k = 0; k < n_cells; k++) {
        for (size_t g = 0; s->n_groups > 1 && g < s->n_groups; g++) {
            const eval_acc t = eval_cell_total(&cells[k], s->n_groups, g);
            const eval_acc ft = full ? eval_cell_total(full, s->n_groups, g) : (eval_acc){0};
            json_line(f, &cells[k], &t, full ? &ft : NULL, s->groups[g].kind, s->groups[g].length, model);
        }
        const eval_acc t = eval_cell_total(&cells[k], s->n_groups, SIZE_MAX);
        const eval_acc ft = full ? eval_cell_total(full, s->n_groups, SIZE_MAX) : (eval_acc){0};
        json_line(f, &cells[k], &t, full ? &ft : NULL, "all", 0, model);
    }
}

/* Adds x to the n ascending distinct values of v (room for one more) unless it is there; the new count. */
static size_t add_sorted(double *v, size_t n, double x)
{
    size_t i = 0;
    while (i < n && v[i] < x)
        i++;
    if (i < n && v[i] == x)
        return n;
    memmove(v + i + 1, v + i, (n - i) * sizeof *v);
    v[i] = x;
    return n + 1;
}

/* The distinct ratios of the compressing cells, ascending, into r (room for n_cells); their count. */
static size_t ratios_of(const eval_cell *cells, size_t n_cells, double *r)
{
    size_t n = 0;
    for (size_t k = 0; k < n_cells; k++)
        if (cells[k].policy != KVZ_POLICY_FULL)
            n = add_sorted(r, n, cells[k].ratio);
    return n;
}

/* The distinct (policy, protocol) series of the compressing cells in their first order: the index
 * of each one's first cell into first; their count. */
static size_t series_of(const eval_cell *cells, size_t n_cells, size_t *first)
{
    size_t n = 0;
    for (size_t k = 0; k < n_cells; k++) {
        if (cells[k].policy == KVZ_POLICY_FULL)
            continue;
        size_t i = 0;
        while (i < n && (cells[first[i]].policy != cells[k].policy || cells[first[i]].query_aware != cells[k].query_aware))
            i++;
        if (i == n)
            first[n++] = k;
    }
    return n;
}

/* The cell of a series at a ratio, or NULL. */
static const eval_cell *cell_at(const eval_cell *cells, size_t n_cells, const eval_cell *series, double ratio)
{
    for (size_t k = 0; k < n_cells; k++)
        if (cells[k].policy == series->policy && cells[k].query_aware == series->query_aware &&
            cells[k].ratio == ratio)
            return &cells[k];
    return NULL;
}

/* A cell's accuracy on one kind relative to the full cache's, or NAN. */
static double kind_relative(const eval_cell *c, const eval_cell *full, const eval_taskset *s, const char *kind)
{
    const eval_acc t = kind_total(c, s, kind), ft = kind_total(full, s, kind);
    const double fa = eval_accuracy(&ft);
    return fa > 0 ? eval_accuracy(&t) / fa : NAN;
}

static void md_value(FILE *f, double v)
{
    if (isnan(v))
        fprintf(f, " - |");
    else
        fprintf(f, " %.3f |", v);
}

static void md_ratio_header(FILE *f, const char *first, const double *r, size_t n_r)
{
    fprintf(f, "| %s |", first);
    for (size_t i = 0; i < n_r; i++)
        fprintf(f, " %g |", r[i]);
    fprintf(f, "\n|---|");
    for (size_t i = 0; i < n_r; i++)
        fprintf(f, "---:|");
    fprintf(f, "\n");
}

static int md_write(FILE *f, const eval_cell *cells, size_t n_cells, const eval_taskset *s, const char *model)
{
    const eval_cell *full = full_cell(cells, n_cells);
    size_t *kinds = malloc((s->n_groups + 1) * sizeof *kinds), *series = malloc((n_cells + 1) * sizeof *series);
    double *r = malloc((n_cells + 1) * sizeof *r), *lengths = malloc((s->n_groups + 1) * sizeof *lengths);
    if (!kinds || !series || !r || !lengths) {
        free(kinds), free(series), free(r), free(lengths);
        return kvz_cli_error("out of memory");
    }
    const size_t n_k = task_kinds(s, kinds), n_s = series_of(cells, n_cells, series), n_r = ratios_of(cells, n_cells, r);
    size_t n_l = 0; /* the distinct lengths, ascending */
    for (size_t g = 0; g < s->n_groups; g++)
        n_l = add_sorted(lengths, n_l, (double)s->groups[g].length);
    fprintf(f, "# kvz eval of %s\n\n%zu contexts, %zu task kinds.\n\n", model, s->n, n_k);
    if (full) {
        fprintf(f, "## The full cache's accuracy per task and context length (tokens)\n\n| task |");
        for (size_t i = 0; i < n_l; i++)
            fprintf(f, " %.0f |", lengths[i]);
        fprintf(f, "\n|---|");
        for (size_t i = 0; i < n_l; i++)
            fprintf(f, "---:|");
        fprintf(f, "\n");
        for (size_t k = 0; k < n_k; k++) {
            fprintf(f, "| %s |", s->groups[kinds[k]].kind);
            for (size_t i = 0; i < n_l; i++) {
                double v = NAN;
                for (size_t g = 0; g < s->n_groups; g++)
                    if (!strcmp(s->groups[g].kind, s->groups[kinds[k]].kind) && (double)s->groups[g].length == lengths[i]) {
                        const eval_acc t = eval_cell_total(full, s->n_groups, g);
                        v = eval_accuracy(&t);
                    }
                md_value(f, v);
            }
            fprintf(f, "\n");
        }
        /* the groups the targets are judged on */
        fprintf(f, "\n## Relative accuracy where the full cache scores at least 0.5\n\nThe mean over the (task, "
                   "length) groups where the full cache's accuracy is at least 0.5 of each policy's accuracy over "
                   "the full cache's:");
        size_t n_good = 0;
        for (size_t g = 0; g < s->n_groups; g++) {
            const eval_acc ft = eval_cell_total(full, s->n_groups, g);
            if (eval_accuracy(&ft) >= 0.5)
                fprintf(f, "%s %s/%zu", n_good++ ? "," : "", s->groups[g].kind, s->groups[g].length);
        }
        fprintf(f, "%s.\n\n", n_good ? "" : " none");
        md_ratio_header(f, "policy (protocol)", r, n_r);
        for (size_t i = 0; i < n_s; i++) {
            fprintf(f, "| %s (%s) |", kvz_policy_name(cells[series[i]].policy), protocol_name(&cells[series[i]]));
            for (size_t j = 0; j < n_r; j++) {
                const eval_cell *c = cell_at(cells, n_cells, &cells[series[i]], r[j]);
                double sum = 0;
                size_t cnt = 0;
                for (size_t g = 0; c && g < s->n_groups; g++) {
                    const eval_acc ft = eval_cell_total(full, s->n_groups, g), t = eval_cell_total(c, s->n_groups, g);
                    if (eval_accuracy(&ft) >= 0.5)
                        sum += eval_accuracy(&t) / eval_accuracy(&ft), cnt++;
                }
                md_value(f, cnt ? sum / (double)cnt : NAN);
            }
            fprintf(f, "\n");
        }
        for (size_t k = 0; k < n_k; k++) {
            const char *kind = s->groups[kinds[k]].kind;
            fprintf(f, "\n## %s: accuracy relative to the full cache's, all lengths\n\n", kind);
            md_ratio_header(f, "policy (protocol)", r, n_r);
            for (size_t i = 0; i < n_s; i++) {
                fprintf(f, "| %s (%s) |", kvz_policy_name(cells[series[i]].policy), protocol_name(&cells[series[i]]));
                for (size_t j = 0; j < n_r; j++) {
                    const eval_cell *c = cell_at(cells, n_cells, &cells[series[i]], r[j]);
                    md_value(f, c ? kind_relative(c, full, s, kind) : NAN);
                }
                fprintf(f, "\n");
            }
        }
    }
    fprintf(f, "\n## Efficiency, all tasks\n\n| policy (protocol) | ratio | kept | accuracy | agree | kl | KV MiB | "
               "build s | build / prefill | decode ms/token |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t k = 0; k < n_cells; k++) {
        const eval_acc t = eval_cell_total(&cells[k], s->n_groups, SIZE_MAX);
        fprintf(f, "| %s (%s) | %g | %.4f | %.4f | %.4f | %.5f | %.2f | %.3f | %.2f | %.2f |\n",
                kvz_policy_name(cells[k].policy), protocol_name(&cells[k]), cells[k].ratio, kept_ratio(&t),
                eval_accuracy(&t), agree_share(&t), mean_kl(&t), per_cache(t.bytes, &t) / 1048576.0,
                per_cache(t.build_s, &t), t.prefill_s > 0 ? t.build_s / t.prefill_s : 0, decode_ms(&t));
    }
    free(kinds), free(series), free(r), free(lengths);
    return ferror(f) ? kvz_cli_error("cannot write the summary: %s", strerror(errno)) : 0;
}

/* Writes through a temporary file and a rename (the library's atomic file, which also gives
 * the report the mode a plain fopen would), so that a failure leaves nothing at path. */
typedef int (*report_fn)(FILE *f, const eval_cell *cells, size_t n_cells, const eval_taskset *s, const char *model);
static int write_atomic(const char *path, report_fn fn, const eval_cell *cells, size_t n_cells, const eval_taskset *s,
                        const char *model)
{
    kvz_atomic_file af;
    if (kvz_atomic_file_open(&af, path, "kvz eval") != KVZ_OK)
        return kvz_cli_error("%s", kvz_last_error());
    int rc = fn(af.f, cells, n_cells, s, model);
    if (kvz_atomic_file_close(&af, rc ? KVZ_ERR_IO : KVZ_OK) != KVZ_OK && !rc)
        rc = kvz_cli_error("%s", kvz_last_error());
    return rc;
}

int eval_report_markdown(const char *path, const eval_cell *cells, size_t n_cells, const eval_taskset *s,
                         const char *model)
{
    return write_atomic(path, md_write, cells, n_cells, s, model);
}

/* One colour per policy, in enum order (full, kvzip-pair, kvzip-pair-uniform, kvzip-head, fastkv,
 * snapkv, pyramidkv, adakv, h2o, streaming, random). */
static const char *const colours[] = {"#000000", "#d62728", "#ff9896", "#8c564b", "#1f77b4", "#2ca02c",
                                      "#98df8a", "#17becf", "#9467bd", "#ff7f0e", "#7f7f7f"};

/* The gnuplot script: one panel per task kind, relative accuracy against kept ratio, one line per
 * series, the data inline. */
static int plot_script(FILE *f, const eval_cell *cells, size_t n_cells, const eval_taskset *s, const char *model)
{
    const eval_cell *full = full_cell(cells, n_cells);
    size_t *kinds = malloc((s->n_groups + 1) * sizeof *kinds), *series = malloc((n_cells + 1) * sizeof *series);
    double *r = malloc((n_cells + 1) * sizeof *r);
    if (!kinds || !series || !r || !full) {
        free(kinds), free(series), free(r);
        return kvz_cli_error(full ? "out of memory" : "--plot needs the full policy among --policy (the reference)");
    }
    const size_t n_k = task_kinds(s, kinds), n_s = series_of(cells, n_cells, series), n_r = ratios_of(cells, n_cells, r);
    const size_t cols = n_k < 3 ? n_k : 3, rows = (n_k + cols - 1) / cols;
    const char *base = kvz_cli_basename(model);
    for (size_t k = 0; k < n_k; k++) {
        fprintf(f, "$d%zu << EOD\n", k);
        for (size_t i = 0; i < n_s; i++) {
            for (size_t j = 0; j < n_r; j++) {
                const eval_cell *c = cell_at(cells, n_cells, &cells[series[i]], r[j]);
                const double v = c ? kind_relative(c, full, s, s->groups[kinds[k]].kind) : NAN;
                if (!isnan(v))
                    fprintf(f, "%g %g\n", r[j], v);
            }
            fprintf(f, "\n\n"); /* a new data set per series */
        }
        fprintf(f, "EOD\n");
    }
    fprintf(f, "set terminal pngcairo noenhanced size %zu,%zu font ',9'\nset output '/dev/stdout'\n",
            480 * (cols > 1 ? cols : 2), 360 * rows + 50);
    fprintf(f, "set multiplot layout %zu,%zu title '%s: accuracy relative to the full cache (solid: multi-query, "
               "dashed: query-aware)'\n",
            rows, cols, base);
    fprintf(f, "set xrange [0:1]\nset yrange [0:1.2]\nset key bottom right font ',7'\nset grid\n"
               "set xlabel 'kept ratio'\nset ylabel 'relative accuracy'\n");
    for (size_t k = 0; k < n_k; k++) {
        fprintf(f, "set title '%s'\nplot ", s->groups[kinds[k]].kind);
        for (size_t i = 0; i < n_s; i++)
            fprintf(f, "$d%zu index %zu with linespoints lc rgb '%s' pt %d dt %d title '%s%s'%s", k, i,
                    colours[(size_t)cells[series[i]].policy % (sizeof colours / sizeof *colours)],
                    (int)cells[series[i]].policy + 1,
                    cells[series[i]].query_aware ? 2 : 1, kvz_policy_name(cells[series[i]].policy),
                    cells[series[i]].query_aware ? " (query)" : "", i + 1 < n_s ? ", " : "\n");
        if (!n_s)
            fprintf(f, "1 title 'full'\n");
    }
    fprintf(f, "unset multiplot\n");
    free(kinds), free(series), free(r);
    return 0;
}

/* Runs gnuplot on the script, its PNG on standard output into f. */
static int plot_png(FILE *f, const eval_cell *cells, size_t n_cells, const eval_taskset *s, const char *model)
{
    char script[] = "/tmp/kvz-plot-XXXXXX";
    const int fd = mkstemp(script);
    FILE *sf = fd < 0 ? NULL : fdopen(fd, "w");
    if (!sf) {
        if (fd >= 0)
            close(fd), unlink(script);
        return kvz_cli_error("cannot write a gnuplot script: %s", strerror(errno));
    }
    int rc = plot_script(sf, cells, n_cells, s, model);
    if (fclose(sf) != 0 && !rc)
        rc = kvz_cli_error("cannot write a gnuplot script: %s", strerror(errno));
    if (!rc) {
        fflush(f);
        const pid_t pid = fork();
        if (pid == 0) {
            dup2(fileno(f), 1);
            execlp("gnuplot", "gnuplot", script, (char *)NULL);
            _exit(127);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) < 0)
            rc = kvz_cli_error("cannot run gnuplot: %s", strerror(errno));
        else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            rc = kvz_cli_error("--plot needs gnuplot (Debian: apt-get install gnuplot-nox)");
        else if (!WIFEXITED(status) || WEXITSTATUS(status))
            rc = kvz_cli_error("gnuplot failed on %s", script);
    }
    if (!rc)
        unlink(script);
    return rc;
}

int eval_report_plot(const char *path, const eval_cell *cells, size_t n_cells, const eval_taskset *s,
                     const char *model)
{
    return write_atomic(path, plot_png, cells, n_cells, s, model);
}
