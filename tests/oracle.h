/*
 * Plain double-precision references that materialise everything (whole logits matrices,
 * explicit softmax): what the kernels must equal. Written from the specs, not from the
 * kernels: no blocking, no online softmax, no shared code with simd/.
 * All arrays are dense and row-major; scale is applied to the logits as given.
 */
#ifndef KVZ_ORACLE_H
#define KVZ_ORACLE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Single-head attention with a causal offset: q is n_q x d, k and v are n_k x d. Query i
 * sees key j iff j <= q_pos0 + i. out: n_q x d; lse (may be NULL): n_q natural
 * log-sum-exps of the visible logits. A query that sees nothing gets a zero output and
 * lse = -inf.
 */
void oracle_attn(const double *q, const double *k, const double *v, size_t n_q, size_t n_k, size_t d,
                 long q_pos0, double scale, double *out, double *lse);

/*
 * oracle_attn with a sliding window (a local layer): query i sees key j iff
 * 0 <= q_pos0 + i - j < window; window 0 is oracle_attn.
 */
void oracle_attn_window(const double *q, const double *k, const double *v, size_t n_q, size_t n_k, size_t d,
                        long q_pos0, size_t window, double scale, double *out, double *lse);

/*
 * Like oracle_attn, with an additional key mask: key j takes part only when keep[j] != 0
 * (the KVzip RetainCache view of a full segment, spec kvzip.md section 4.5).
 */
void oracle_attn_masked(const double *q, const double *k, const double *v, const unsigned char *keep,
                        size_t n_q, size_t n_k, size_t d, long q_pos0, double scale, double *out);

/*
 * KVzip score of one KV head (spec kvzip.md section 2.1). q holds group x n_q rows
 * ([g][i][d]), k holds n_k rows. The logits run over the concatenation K' of the system
 * prompt keys [0, sink_end), the chunk keys [chunk_begin, chunk_end) and the repeat
 * input's own keys [q_pos0, q_pos0 + n_q), with a causal mask on the own keys only (row i
 * sees own key q_pos0 + t iff t <= i); softmax over K'; the chunk columns are kept and
 * score[j - chunk_begin] = max over g and i. Requires sink_end <= chunk_begin <=
 * chunk_end <= q_pos0 and q_pos0 + n_q <= n_k.
 */
void oracle_kvzip_score(const double *q, const double *k, size_t group, size_t n_q, size_t n_k, size_t d,
                        long q_pos0, double scale, size_t sink_end, size_t chunk_begin, size_t chunk_end,
                        double *score);

/*
 * Accumulated attention of one KV head (the H2O policy's score): q holds group x n_q rows
 * ([g][i][d]), k holds n_k rows. Each row's softmax over the keys it sees (j <= q_pos0 + i,
 * and q_pos0 + i - j < window when window > 0), then accum[j] += the sum of the
 * probabilities of key j over all group x n_q rows, for every j < n_k. Adds to accum.
 */
void oracle_attn_accum(const double *q, const double *k, size_t group, size_t n_q, size_t n_k, size_t d,
                       long q_pos0, size_t window, double scale, double *accum);

/*
 * Decode over variable-length KV heads (spec kvzip.md section 4.3, flash_attn_varlen with
 * bottom-right causal alignment). k and v: rows of d values, row r at k + r*kv_row_stride;
 * head h owns rows cu_len[h] .. cu_len[h+1]-1 (len_h rows). q and out: n_heads*q_len*group
 * rows of d, laid out [h][t][g][d]. New token t of head h sees the first
 * len_h - q_len + t + 1 rows of its segment (zeros when that is <= 0).
 */
void oracle_varlen(const double *q, const double *k, const double *v, size_t kv_row_stride,
                   const int32_t *cu_len, size_t n_heads, size_t group, size_t q_len, size_t d, double scale,
                   double *out);

/*
 * FastKV window score of one KV head (spec fastkv.md section 2.2): q holds group x window rows
 * ([g][r][d]); keys [0, n). Softmax of each window row over its visible keys (r sees keys
 * <= n - window + r), summed over rows for keys [0, n - window), pooled per query head
 * (avg: zero padding, divided by kernel; max: in-range), summed over the group into out.
 */
void oracle_window_score(const double *q, const double *k, size_t group, size_t window, size_t n, size_t d,
                         double scale, size_t kernel, int max_pool, double *out);

#endif
