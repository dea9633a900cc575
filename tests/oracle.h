/* Plain double-precision references that materialise everything: what the kernels must equal. */
#ifndef KVZ_ORACLE_H
#define KVZ_ORACLE_H

#include <stddef.h>

/*
 * Attention of n_q queries (rows of q, stride d) against n_k keys/values (stride d): query i
 * sees key j when j <= q_pos0 + i. out: n_q x d; lse: n_q (may be NULL). A query that sees
 * nothing gets zeros and lse = -inf.
 */
void oracle_attn(const double *q, const double *k, const double *v, size_t n_q, size_t n_k, size_t d,
                 long q_pos0, double scale, double *out, double *lse);

/*
 * KVzip score of one KV head (spec kvzip.md section 2.1): q holds group x n_q rows
 * ([g][i][d]); keys [0, n_k). For every query row, the softmax runs over the reduced set
 * [0, sink_end) + [chunk_begin, chunk_end) + [q_pos0, q_pos0 + i]; score[j - chunk_begin]
 * = max over g, i of the probability of chunk key j.
 */
void oracle_kvzip_score(const double *q, const double *k, size_t group, size_t n_q, size_t n_k, size_t d,
                        long q_pos0, double scale, size_t sink_end, size_t chunk_begin, size_t chunk_end,
                        double *score);

/*
 * FastKV window score of one KV head (spec fastkv.md section 2.2): q holds group x window rows
 * ([g][r][d]); keys [0, n). Softmax of each window row over its visible keys (r sees keys
 * <= n - window + r), summed over rows for keys [0, n - window), pooled per query head
 * (avg: zero padding, divided by kernel; max: in-range), summed over the group into out.
 */
void oracle_window_score(const double *q, const double *k, size_t group, size_t window, size_t n, size_t d,
                         double scale, size_t kernel, int max_pool, double *out);

#endif
