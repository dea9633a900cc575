/* Plain double-precision references that materialise everything: what the kernels must equal. */
#include "oracle.h"

#include <math.h>
#include <stdlib.h>

static double dot(const double *a, const double *b, size_t d)
{
    double s = 0;
    for (size_t x = 0; x < d; x++)
        s += a[x] * b[x];
    return s;
}

void oracle_attn(const double *q, const double *k, const double *v, size_t n_q, size_t n_k, size_t d,
                 long q_pos0, double scale, double *out, double *lse)
{
    double *z = malloc((n_k ? n_k : 1) * sizeof *z);
    for (size_t i = 0; i < n_q; i++) {
        const long last = q_pos0 + (long)i; /* last visible key */
        double mx = -INFINITY;
        for (size_t j = 0; j < n_k; j++) {
            z[j] = (long)j <= last ? scale * dot(q + i * d, k + j * d, d) : -INFINITY;
            if (z[j] > mx)
                mx = z[j];
        }
        double *o = out + i * d;
        for (size_t x = 0; x < d; x++)
            o[x] = 0;
        if (mx == -INFINITY) {
            if (lse)
                lse[i] = -INFINITY;
            continue;
        }
        double sum = 0;
        for (size_t j = 0; j < n_k; j++)
            sum += exp(z[j] - mx);
        for (size_t j = 0; j < n_k; j++) {
            const double p = exp(z[j] - mx) / sum;
            for (size_t x = 0; x < d; x++)
                o[x] += p * v[j * d + x];
        }
        if (lse)
            lse[i] = mx + log(sum);
    }
    free(z);
}

void oracle_kvzip_score(const double *q, const double *k, size_t group, size_t n_q, size_t n_k, size_t d,
                        long q_pos0, double scale, size_t sink_end, size_t chunk_begin, size_t chunk_end,
                        double *score)
{
    /* the whole matrix: rows (g, i) x keys of the reduced set */
    const size_t m = chunk_end - chunk_begin;
    for (size_t j = 0; j < m; j++)
        score[j] = 0;
    double *z = malloc((n_k ? n_k : 1) * sizeof *z);
    for (size_t g = 0; g < group; g++)
        for (size_t i = 0; i < n_q; i++) {
            const double *qi = q + (g * n_q + i) * d;
            double mx = -INFINITY;
            for (size_t j = 0; j < n_k; j++) {
                const int in = j < sink_end || (j >= chunk_begin && j < chunk_end) ||
                               ((long)j >= q_pos0 && (long)j <= q_pos0 + (long)i);
                z[j] = in ? scale * dot(qi, k + j * d, d) : -INFINITY;
                if (z[j] > mx)
                    mx = z[j];
            }
            double sum = 0;
            for (size_t j = 0; j < n_k; j++)
                sum += exp(z[j] - mx);
            for (size_t j = chunk_begin; j < chunk_end; j++) {
                const double p = exp(z[j] - mx) / sum;
                if (p > score[j - chunk_begin])
                    score[j - chunk_begin] = p;
            }
        }
    free(z);
}

void oracle_window_score(const double *q, const double *k, size_t group, size_t window, size_t n, size_t d,
                         double scale, size_t kernel, int max_pool, double *out)
{
    const size_t nk = n - window;
    double *a = calloc(nk ? nk : 1, sizeof *a);
    double *z = malloc(n * sizeof *z);
    for (size_t j = 0; j < nk; j++)
        out[j] = 0;
    for (size_t g = 0; g < group; g++) {
        for (size_t j = 0; j < nk; j++)
            a[j] = 0;
        for (size_t r = 0; r < window; r++) {
            const double *qr = q + (g * window + r) * d;
            const size_t last = n - window + r;
            double mx = -INFINITY;
            for (size_t j = 0; j < n; j++) {
                z[j] = j <= last ? scale * dot(qr, k + j * d, d) : -INFINITY;
                if (z[j] > mx)
                    mx = z[j];
            }
            double sum = 0;
            for (size_t j = 0; j < n; j++)
                sum += exp(z[j] - mx);
            for (size_t j = 0; j < nk; j++)
                a[j] += exp(z[j] - mx) / sum;
        }
        const long h = (long)kernel / 2;
        for (long j = 0; j < (long)nk; j++) {
            double acc = max_pool ? -INFINITY : 0;
            for (long t = j - h; t <= j + h; t++) {
                if (t < 0 || t >= (long)nk)
                    continue; /* avg: zero padding; max: ignored */
                acc = max_pool ? fmax(acc, a[t]) : acc + a[t];
            }
            out[j] += max_pool ? acc : acc / (double)kernel;
        }
    }
    free(a);
    free(z);
}
