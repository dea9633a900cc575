/*
 * Plain double-precision references that materialise everything: what the kernels must equal.
 * Every reference builds the full logits matrix of the rows and keys involved, with an
 * explicit visibility matrix, then runs a textbook softmax row by row. Slow and simple on
 * purpose.
 */
#include "oracle.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

static double dot(const double *a, const double *b, size_t d)
{
    double s = 0;
    for (size_t x = 0; x < d; x++)
        s += a[x] * b[x];
    return s;
}

/* P = softmax(Z) in place for each row of an r x c matrix, over the entries with vis != 0
 * (the others become 0). lse (may be NULL) gets each row's log-sum-exp, -inf when the row
 * has no visible entry (the row then stays all zero). */
static void softmax_rows(double *Z, const unsigned char *vis, size_t rows, size_t cols, double *lse)
{
    for (size_t i = 0; i < rows; i++) {
        double *z = Z + i * cols;
        const unsigned char *m = vis + i * cols;
        double mx = -INFINITY;
        for (size_t j = 0; j < cols; j++)
            if (m[j] && z[j] > mx)
                mx = z[j];
        double sum = 0;
        for (size_t j = 0; j < cols; j++) {
            z[j] = m[j] ? exp(z[j] - mx) : 0.0;
            sum += z[j];
        }
        if (sum > 0)
            for (size_t j = 0; j < cols; j++)
                z[j] /= sum;
        if (lse)
            lse[i] = sum > 0 ? mx + log(sum) : -INFINITY;
    }
}

/* out = softmax(scale Q K^T restricted to vis) V for dense Q (n_q x d), K, V (n_k x d). */
static void dense_attention(const double *q, const double *k, const double *v, const unsigned char *vis,
                            size_t n_q, size_t n_k, size_t d, double scale, double *out, double *lse)
{
    double *Z = xmalloc(n_q * n_k * sizeof *Z);
    for (size_t i = 0; i < n_q; i++)
        for (size_t j = 0; j < n_k; j++)
            Z[i * n_k + j] = scale * dot(q + i * d, k + j * d, d);
    softmax_rows(Z, vis, n_q, n_k, lse);
    memset(out, 0, n_q * d * sizeof *out);
    for (size_t i = 0; i < n_q; i++)
        for (size_t j = 0; j < n_k; j++) {
            const double p = Z[i * n_k + j];
            if (p == 0.0)
                continue;
            for (size_t x = 0; x < d; x++)
                out[i * d + x] += p * v[j * d + x];
        }
    free(Z);
}

/* vis[i][j] = key j visible to query i: causal with offset q_pos0, within the window when
 * there is one (the query's position minus the key's below it), and kept when keep is given */
static unsigned char *causal_vis(size_t n_q, size_t n_k, long q_pos0, size_t window, const unsigned char *keep)
{
    unsigned char *vis = xmalloc(n_q * n_k);
    for (size_t i = 0; i < n_q; i++)
        for (size_t j = 0; j < n_k; j++) {
            const long age = q_pos0 + (long)i - (long)j; /* how far back key j lies */
            vis[i * n_k + j] = age >= 0 && (!window || (size_t)age < window) && (!keep || keep[j]);
        }
    return vis;
}

void oracle_attn(const double *q, const double *k, const double *v, size_t n_q, size_t n_k, size_t d,
                 long q_pos0, double scale, double *out, double *lse)
{
    oracle_attn_window(q, k, v, n_q, n_k, d, q_pos0, 0, scale, out, lse);
}

void oracle_attn_window(const double *q, const double *k, const double *v, size_t n_q, size_t n_k, size_t d,
                        long q_pos0, size_t window, double scale, double *out, double *lse)
{
    unsigned char *vis = causal_vis(n_q, n_k, q_pos0, window, NULL);
    dense_attention(q, k, v, vis, n_q, n_k, d, scale, out, lse);
    free(vis);
}

void oracle_attn_masked(const double *q, const double *k, const double *v, const unsigned char *keep,
                        size_t n_q, size_t n_k, size_t d, long q_pos0, double scale, double *out)
{
    unsigned char *vis = causal_vis(n_q, n_k, q_pos0, 0, keep);
    dense_attention(q, k, v, vis, n_q, n_k, d, scale, out, NULL);
    free(vis);
}

void oracle_kvzip_score(const double *q, const double *k, size_t group, size_t n_q, size_t n_k, size_t d,
                        long q_pos0, double scale, size_t sink_end, size_t chunk_begin, size_t chunk_end,
                        double *score)
{
    assert(sink_end <= chunk_begin && chunk_begin <= chunk_end && q_pos0 >= 0 && chunk_end <= (size_t)q_pos0 &&
           (size_t)q_pos0 + n_q <= n_k);
    (void)n_k;
    /* K' = system prompt ++ chunk ++ own keys, as the reference concatenates them */
    const size_t ns = sink_end, m = chunk_end - chunk_begin, nc = ns + m + n_q;
    size_t *col = xmalloc(nc * sizeof *col);
    for (size_t c = 0; c < ns; c++)
        col[c] = c;
    for (size_t c = 0; c < m; c++)
        col[ns + c] = chunk_begin + c;
    for (size_t c = 0; c < n_q; c++)
        col[ns + m + c] = (size_t)q_pos0 + c;
    /* causal mask on the own columns only */
    unsigned char *vis = xmalloc(n_q * nc);
    for (size_t i = 0; i < n_q; i++)
        for (size_t c = 0; c < nc; c++)
            vis[i * nc + c] = c < ns + m || c - (ns + m) <= i;
    double *A = xmalloc(n_q * nc * sizeof *A);
    for (size_t j = 0; j < m; j++)
        score[j] = 0;
    for (size_t g = 0; g < group; g++) {
        for (size_t i = 0; i < n_q; i++)
            for (size_t c = 0; c < nc; c++)
                A[i * nc + c] = scale * dot(q + (g * n_q + i) * d, k + col[c] * d, d);
        softmax_rows(A, vis, n_q, nc, NULL);
        for (size_t i = 0; i < n_q; i++)
            for (size_t j = 0; j < m; j++)
                score[j] = fmax(score[j], A[i * nc + ns + j]);
    }
    free(A);
    free(vis);
    free(col);
}

void oracle_attn_accum(const double *q, const double *k, size_t group, size_t n_q, size_t n_k, size_t d,
                       long q_pos0, size_t window, double scale, double *accum)
{
    unsigned char *vis = causal_vis(n_q, n_k, q_pos0, window, NULL);
    double *Z = xmalloc(n_q * n_k * sizeof *Z);
    for (size_t g = 0; g < group; g++) {
        for (size_t i = 0; i < n_q; i++)
            for (size_t j = 0; j < n_k; j++)
                Z[i * n_k + j] = scale * dot(q + (g * n_q + i) * d, k + j * d, d);
        softmax_rows(Z, vis, n_q, n_k, NULL);
        for (size_t i = 0; i < n_q; i++) /* a column sum of the probability matrix */
            for (size_t j = 0; j < n_k; j++)
                accum[j] += Z[i * n_k + j];
    }
    free(Z);
    free(vis);
}

void oracle_varlen(const double *q, const double *k, const double *v, size_t kv_row_stride,
                   const int32_t *cu_len, size_t n_heads, size_t group, size_t q_len, size_t d, double scale,
                   double *out)
{
    double *qs = xmalloc(q_len * d * sizeof *qs), *os = xmalloc(q_len * d * sizeof *os);
    for (size_t h = 0; h < n_heads; h++) {
        const size_t base = (size_t)cu_len[h], len = (size_t)(cu_len[h + 1] - cu_len[h]);
        /* the head's segment as dense rows */
        double *ks = xmalloc(len * d * sizeof *ks), *vs = xmalloc(len * d * sizeof *vs);
        for (size_t j = 0; j < len; j++) {
            memcpy(ks + j * d, k + (base + j) * kv_row_stride, d * sizeof *ks);
            memcpy(vs + j * d, v + (base + j) * kv_row_stride, d * sizeof *vs);
        }
        unsigned char *vis = xmalloc(q_len * len);
        for (size_t t = 0; t < q_len; t++)
            for (size_t j = 0; j < len; j++) /* the first len - q_len + t + 1 rows */
                vis[t * len + j] = (long)j < (long)len - (long)q_len + (long)t + 1;
        for (size_t g = 0; g < group; g++) {
            for (size_t t = 0; t < q_len; t++)
                memcpy(qs + t * d, q + ((h * q_len + t) * group + g) * d, d * sizeof *qs);
            dense_attention(qs, ks, vs, vis, q_len, len, d, scale, os, NULL);
            for (size_t t = 0; t < q_len; t++)
                memcpy(out + ((h * q_len + t) * group + g) * d, os + t * d, d * sizeof *os);
        }
        free(vis);
        free(ks);
        free(vs);
    }
    free(qs);
    free(os);
}

void oracle_window_score(const double *q, const double *k, size_t group, size_t window, size_t n, size_t d,
                         double scale, size_t kernel, int max_pool, double *out)
{
    const size_t nk = n - window;
    double *Z = xmalloc(window * n * sizeof *Z), *a = xmalloc((nk ? nk : 1) * sizeof *a);
    unsigned char *vis = xmalloc(window * n);
    for (size_t r = 0; r < window; r++)
        for (size_t j = 0; j < n; j++)
            vis[r * n + j] = j <= nk + r;
    for (size_t j = 0; j < nk; j++)
        out[j] = 0;
    for (size_t g = 0; g < group; g++) {
        for (size_t r = 0; r < window; r++)
            for (size_t j = 0; j < n; j++)
                Z[r * n + j] = scale * dot(q + (g * window + r) * d, k + j * d, d);
        softmax_rows(Z, vis, window, n, NULL);
        for (size_t j = 0; j < nk; j++) {
            a[j] = 0;
            for (size_t r = 0; r < window; r++)
                a[j] += Z[r * n + j];
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
    free(Z);
    free(a);
    free(vis);
}
