/*
 * The online softmax of the block loops: the running max and sum of each query row (and, when
 * the job scores, of the KVzip reduced key set), S turned into probabilities, and, once a
 * row's sums are final, probabilities from its log-sum-exp.
 */
#ifndef KVZ_TMPL_ATTN_SOFTMAX_H
#define KVZ_TMPL_ATTN_SOFTMAX_H

static void stats_reset(blk_ctx *c)
{
    for (size_t r = 0; r < MQ; r++) {
        c->m[r] = c->m2[r] = -INFINITY;
        c->l[r] = c->l2[r] = 0.0f;
    }
}

/* Running max/sum update of statistics (m, l) with the S columns whose key passes `in`;
 * with overwrite set, S becomes the probabilities relative to the new max and alpha the
 * rescale factor of earlier sums. */
static void online_update_dot(blk_ctx *c, float *m, float *l, size_t nb, const unsigned char *in, int overwrite)
{
    const size_t nbv = (nb + VW - 1) / VW * VW; /* the tail is -inf: whole vectors are safe */
    for (size_t r = 0; r < c->mq; r++) {
        float *T = c->s + r * SROW;
        float bm = -INFINITY;
        if (in) {
            for (size_t j = 0; j < nb; j++)
                if (in[j] && T[j] > bm)
                    bm = T[j];
        } else {
            vf mv = vf_set1(-INFINITY);
            for (size_t j = 0; j < nbv; j += VW)
                mv = vf_max(mv, vf_load(T + j));
            bm = vf_hmax(mv);
        }
        const float mnew = m[r] > bm ? m[r] : bm;
        const float muse = mnew > -FLT_MAX ? mnew : -FLT_MAX;
        const float alpha = expf(m[r] - muse);
        float sum = 0.0f;
        if (in) {
            for (size_t j = 0; j < nb; j++)
                if (in[j])
                    sum += expf(T[j] - muse);
        } else {
            const vf mu = vf_set1(muse);
            vf sv = vf_zero();
            for (size_t j = 0; j < nbv; j += VW) {
                const vf p = vf_exp(vf_sub(vf_load(T + j), mu));
                if (overwrite)
                    vf_store(T + j, p);
                sv = vf_add(sv, p);
            }
            sum = vf_hsum(sv);
        }
        l[r] = l[r] * alpha + sum;
        m[r] = mnew;
        if (overwrite)
            c->alpha[r] = alpha;
    }
}

/* The gemm layout's running max (m) is a block's max rounded up to a multiple of 8 (the
 * softmax is the same for any m at or above the true max): a row's m moves only when a
 * block's max passes into a higher step of 8, so that the rescale of O by alpha, costly on
 * the transposed O of the amx path, is skipped by most rows after the first blocks. The
 * probabilities stay at most 1 and lose nothing but terms below e^-79 of the largest.
 * Adding and subtracting 1.5 * 2^26, where floats are 8 apart, rounds to a multiple of 8
 * (below 2^25); the max with x keeps m >= x beyond. */
static inline vf max_step(vf x)
{
    const vf c = vf_set1(100663296.0f);
    return vf_max(x, vf_sub(vf_add(vf_add(x, vf_set1(4.0f)), c), c));
}

/* The max over keys j < nb (those passing `in`, if given) of the gemm layout's row vector at
 * sv: four chains, since each max waits on the one before. */
static inline vf col_max(const float *sv, size_t nb, const unsigned char *in)
{
    vf a = vf_set1(-INFINITY), b = a, e = a, f = a;
    size_t j = 0;
    if (in) {
        for (; j < nb; j++)
            if (in[j])
                a = vf_max(a, vf_load(sv + j * MQ));
        return a;
    }
    for (; j + 4 <= nb; j += 4) {
        a = vf_max(a, vf_load(sv + j * MQ));
        b = vf_max(b, vf_load(sv + (j + 1) * MQ));
        e = vf_max(e, vf_load(sv + (j + 2) * MQ));
        f = vf_max(f, vf_load(sv + (j + 3) * MQ));
    }
    for (; j < nb; j++)
        a = vf_max(a, vf_load(sv + j * MQ));
    return vf_max(vf_max(a, b), vf_max(e, f));
}

static void online_update(blk_ctx *c, float *m, float *l, size_t nb, const unsigned char *in, int overwrite)
{
    if (c->dot) {
        online_update_dot(c, m, l, nb, in, overwrite);
        return;
    }
    const vf sc = vf_set1(c->s_scale); /* > 0: the max of the scaled is the scaled max */
    for (size_t v = 0; v < c->nrv; v++) {
        float *sv = c->s + v * VW;
        const vf bm = vf_mul(col_max(sv, nb, in), sc);
        const vf mold = vf_load(m + v * VW);
        const vf mnew = vf_max(mold, max_step(bm));
        /* a max of -inf (nothing visible yet) must not produce inf - inf */
        const vf muse = vf_max(mnew, vf_set1(-FLT_MAX)), nmu = vf_sub(vf_zero(), muse);
        const vf alpha = vf_exp(vf_sub(mold, muse));
        vf sum = vf_zero();
        for (size_t j = 0; j < nb; j++) {
            if (in && !in[j])
                continue;
            const vf p = vf_exp(vf_fma(vf_load(sv + j * MQ), sc, nmu));
            if (overwrite)
                vf_store(sv + j * MQ, p);
            sum = vf_add(sum, p);
        }
        vf_store(l + v * VW, vf_fma(vf_load(l + v * VW), alpha, sum));
        vf_store(m + v * VW, mnew);
        if (overwrite)
            vf_store(c->alpha + v * VW, alpha);
    }
}

/* The sum over the keys j < nb that pass `in` of the gemm layout's row vector at sv. */
static inline vf masked_sum(const float *sv, size_t nb, const unsigned char *in)
{
    vf sum = vf_zero();
    for (size_t j = 0; j < nb; j++)
        if (in[j])
            sum = vf_add(sum, vf_load(sv + j * MQ));
    return sum;
}

/* Beyond this gap between a row's running max and its reduced-set max, the scored update
 * sums the reduced set's own exps (see online_update_scored). The running max is stepped
 * (max_step), up to 8 above the true one: at 2 most rows took that slower way. */
#define RESCALE_MAX 10.0f

/* Scoring on the gemm path: the statistics over all keys (m, l) and over the reduced key
 * set, the keys that pass `in` (m2, l2), in one sweep; S becomes the probabilities of the
 * first. The reduced sum reuses them, exp(s - m2) = exp(s - m) exp(m - m2): one exp per
 * row instead of one per reduced key. It loses only terms whose exp(s - m) is below the
 * normal floats (s - m < -87), which is below e^-77 of the reduced set's largest term
 * while m - m2 <= RESCALE_MAX; a row vector with a larger gap sums its own exps. all_in:
 * every key of the block is in the reduced set (most blocks are all in or all out). */
static void online_update_scored(blk_ctx *c, size_t nb, const unsigned char *in, int all_in)
{
    const vf sc = vf_set1(c->s_scale);
    for (size_t v = 0; v < c->nrv; v++) {
        float *sv = c->s + v * VW;
        const vf bm = vf_mul(col_max(sv, nb, NULL), sc), bm2 = all_in ? bm : vf_mul(col_max(sv, nb, in), sc);
        /* maxes of -inf (nothing visible yet) must not produce inf - inf */
        const vf mold = vf_load(c->m + v * VW), mnew = vf_max(mold, max_step(bm));
        const vf muse = vf_max(mnew, vf_set1(-FLT_MAX));
        const vf m2old = vf_load(c->m2 + v * VW), m2new = vf_max(m2old, bm2);
        const vf muse2 = vf_max(m2new, vf_set1(-FLT_MAX));
        const vf gap = vf_sub(muse, muse2);
        const int direct = vf_hmax(gap) > RESCALE_MAX;
        vf sum = vf_zero(), sum2 = vf_zero();
        const vf nmu = vf_sub(vf_zero(), muse), nmu2 = vf_sub(vf_zero(), muse2);
        for (size_t j = 0; j < nb; j++) {
            const vf x = vf_load(sv + j * MQ), p = vf_exp(vf_fma(x, sc, nmu));
            vf_store(sv + j * MQ, p);
            sum = vf_add(sum, p);
            if (direct && in[j])
                sum2 = vf_add(sum2, vf_exp(vf_fma(x, sc, nmu2)));
        }
        if (!direct) /* the reduced set's share of the same exps, rescaled to its own max */
            sum2 = vf_mul(all_in ? sum : masked_sum(sv, nb, in), vf_exp(gap));
        const vf alpha = vf_exp(vf_sub(mold, muse));
        vf_store(c->l + v * VW, vf_fma(vf_load(c->l + v * VW), alpha, sum));
        vf_store(c->m + v * VW, mnew);
        vf_store(c->alpha + v * VW, alpha);
        vf_store(c->l2 + v * VW, vf_fma(vf_load(c->l2 + v * VW), vf_exp(vf_sub(m2old, muse2)), sum2));
        vf_store(c->m2 + v * VW, m2new);
    }
}

/* S = p = exp(S - lse2) per row over keys [kb, kb+nb); lse2 = +inf hides a row. */
static void probs_from_lse(blk_ctx *c, size_t nb)
{
    if (c->dot) {
        for (size_t r = 0; r < c->mq; r++) {
            const vf ls = vf_set1(c->lse2[r]);
            float *T = c->s + r * SROW;
            for (size_t j = 0; j < nb; j += VW)
                vf_store(T + j, vf_exp(vf_sub(vf_load(T + j), ls)));
        }
        return;
    }
    const vf sc = vf_set1(c->s_scale);
    for (size_t v = 0; v < c->nrv; v++) {
        const vf ls = vf_load(c->lse2 + v * VW);
        for (size_t j = 0; j < nb; j++)
            vf_store(c->s + j * MQ + v * VW, vf_exp(vf_sub(vf_mul(vf_load(c->s + j * MQ + v * VW), sc), ls)));
    }
}

#endif
