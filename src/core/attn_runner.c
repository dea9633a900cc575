/*
 * Runs one attention job per KV head across the library's threads. A head with many query rows is
 * split into query slices, each a kernel call over all its keys; a head with few rows (a
 * decode step) is split into key slices whose partial outputs are merged by log-sum-exp, so
 * that even one long head keeps every thread busy (not when scoring or accumulating
 * attention, whose probabilities need the whole row's log-sum-exp). Scratch is per thread
 * and reused.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/numa_alloc.h"
#include "core/pool.h"

/* At most this many rows (queries x group) per head: split along the keys instead. */
#define KEY_SPLIT_MAX_ROWS 32
/* Largest per-thread store of chunk logits for scoring (floats: 16 MiB, a 64 x 65536 chunk). */
#define ZSTORE_MAX ((size_t)1 << 22)
/* Largest per-thread store of V tiles (floats: 32 MiB, 131072 keys of 128 bf16). */
#define VTSTORE_MAX ((size_t)1 << 23)

static size_t esize(int dt) { return dt == KVZ_KDT_F32 ? 4 : 2; }

typedef struct task {
    size_t head;
    size_t a, b; /* query slice [a, b) or key slice [a, b) of the concatenated runs */
} task;

/* ---- query slices ------------------------------------------------------------------- */

/* The floats of a vtstore (kernels.h) for a head's slices of `slice` tokens: bf16 K/V with
 * a head size of whole tiles (32) whose slices have several query blocks to reuse the V
 * tiles (only levels with AMX tiles use them), else 0. */
static size_t vt_floats(const kvz_attn_job *h, size_t slice)
{
    const size_t rows = (slice < h->n_q ? slice : h->n_q) * h->group;
    if (h->dtype != KVZ_KDT_BF16 || h->d % 32 || rows <= KVZ_KBLOCK_Q)
        return 0;
    return (kvz_attn_vt_words(h->n_k, h->n_k2, h->d) + 1) / 2;
}

typedef struct query_run {
    const kvz_kernel_table *kt;
    int reads; /* the call's read plan (kvz_read_plan) */
    const kvz_attn_job *heads;
    const task *tasks;
    float *const *priv, *const *apriv; /* per task: private score and accumulation rows */
    const size_t *slice_tok;
    size_t n_tasks, wfloats, wbase, zbase, zfloats, vtfloats;
    size_t next; /* the next task to run */
    int nomem;
} query_run;

static void query_body(void *ctx, unsigned slot, unsigned team)
{
    (void)slot, (void)team;
    query_run *r = ctx;
    float *work = __atomic_load_n(&r->nomem, __ATOMIC_RELAXED) ? NULL : kvz_thread_scratch(r->wfloats);
    if (!work)
        __atomic_store_n(&r->nomem, 1, __ATOMIC_RELAXED);
    for (size_t x; (x = kvz_team_claim(&r->next, r->n_tasks)) < r->n_tasks;) {
        if (!work || __atomic_load_n(&r->nomem, __ATOMIC_RELAXED))
            continue;
        const kvz_attn_job *hj = &r->heads[r->tasks[x].head];
        const size_t i0 = r->tasks[x].a;
        kvz_attn_job j = *hj;
        j.q = hj->q + (ptrdiff_t)i0 * hj->q_row_stride;
        j.out = hj->out + (ptrdiff_t)i0 * hj->out_row_stride;
        j.n_q = r->tasks[x].b - i0;
        j.q_pos0 = hj->q_pos0 + (ptrdiff_t)i0;
        j.score = r->priv[x] ? r->priv[x] : hj->score;
        j.accum = r->apriv[x] ? r->apriv[x] : hj->accum;
        j.work = work;
        j.reads = r->reads;
        j.zstore = r->zfloats && hj->score ? work + r->wbase : NULL;
        j.vtstore =
            r->vtfloats && vt_floats(hj, r->slice_tok[r->tasks[x].head]) ? (uint16_t *)(work + r->zbase) : NULL;
        if (!hj->lse) {
            j.lse = NULL;
            r->kt->attn(&j);
            continue;
        }
        /* the kernel writes lse[g*n_q_slice + i]; the head's lse is [g][i] over all n_q:
         * run the slice one query head at a time */
        for (size_t g = 0; g < hj->group; g++) {
            kvz_attn_job jg = j;
            jg.group = 1;
            jg.q = j.q + (ptrdiff_t)g * hj->q_head_stride;
            jg.out = j.out + (ptrdiff_t)g * hj->out_head_stride;
            jg.lse = hj->lse + g * hj->n_q + i0;
            r->kt->attn(&jg);
        }
    }
}

/* The keys of the first run that the head's queries before query i_end see: the length of
 * a slice's private accumulation row. */
static size_t accum_keys(const kvz_attn_job *h, size_t i_end)
{
    const ptrdiff_t lim = h->q_pos0 + (ptrdiff_t)i_end; /* one past the last row's last key */
    return lim <= 0 ? 0 : ((size_t)lim < h->n_k ? (size_t)lim : h->n_k);
}

static kvz_status run_query_slices(const kvz_kernel_table *kt, int reads, const kvz_attn_job *heads,
                                   size_t n_heads)
{
    const size_t G = heads[0].group, nthr = (size_t)kvz_num_threads();
    const size_t tok_per_block = (KVZ_KBLOCK_Q + G - 1) / G;
    size_t n_tasks = 0;
    /* slices of whole KVZ_KBLOCK_Q-row blocks, about four tasks per thread over all heads */
    size_t *slice_tok = malloc(n_heads * sizeof *slice_tok);
    if (!slice_tok)
        return kvz_fail(KVZ_ERR_NOMEM, "attention: no memory for the work split");
    for (size_t h = 0; h < n_heads; h++) {
        const size_t nq = heads[h].n_q;
        size_t slices = (4 * nthr + n_heads - 1) / n_heads,
               max_slices = (nq + tok_per_block - 1) / tok_per_block;
        if (slices > max_slices)
            slices = max_slices;
        if (slices == 0)
            slices = 1;
        size_t st = (nq + slices - 1) / slices;
        st = (st + tok_per_block - 1) / tok_per_block * tok_per_block;
        slice_tok[h] = st ? st : 1;
        n_tasks += nq ? (nq + slice_tok[h] - 1) / slice_tok[h] : 0;
    }
    task *tasks = malloc((n_tasks ? n_tasks : 1) * sizeof *tasks);
    /* scoring with several slices of one head: private score rows, max-merged after; the
       same for accumulated attention, added up after (in task order: the sums do not depend
       on which thread ran which slice) */
    float **priv = calloc(n_tasks ? n_tasks : 1, sizeof *priv);
    float **apriv = calloc(n_tasks ? n_tasks : 1, sizeof *apriv);
    int nomem = !tasks || !priv || !apriv;
    size_t t = 0;
    for (size_t h = 0; h < n_heads && !nomem; h++) {
        const size_t nq = heads[h].n_q, multi = nq > slice_tok[h];
        /* later slices see more keys: list them first so they start first */
        for (size_t i0 = nq ? (nq - 1) / slice_tok[h] * slice_tok[h] : 0; nq; i0 -= slice_tok[h]) {
            tasks[t] = (task){h, i0, i0 + slice_tok[h] < nq ? i0 + slice_tok[h] : nq};
            const size_t chunk = heads[h].chunk_end - heads[h].chunk_begin;
            if (heads[h].score && multi && !(priv[t] = calloc(chunk ? chunk : 1, sizeof(float))))
                nomem = 1;
            const size_t seen = accum_keys(&heads[h], tasks[t].b);
            if (heads[h].accum && multi && !(apriv[t] = calloc(seen ? seen : 1, sizeof(float))))
                nomem = 1;
            t++;
            if (i0 == 0)
                break;
        }
    }
    /* scoring: room to keep a query block's chunk logits (KVZ_KBLOCK_Q x chunk floats), so
       that the second visit of the chunk does not compute them again; above ZSTORE_MAX
       floats per thread the kernel recomputes them instead */
    size_t zfloats = 0;
    for (size_t h = 0; h < n_heads; h++)
        if (heads[h].score && KVZ_KBLOCK_Q * (heads[h].chunk_end - heads[h].chunk_begin) > zfloats)
            zfloats = KVZ_KBLOCK_Q * (heads[h].chunk_end - heads[h].chunk_begin);
    if (zfloats > ZSTORE_MAX)
        zfloats = 0;
    size_t vtfloats = 0;
    for (size_t h = 0; h < n_heads; h++) {
        const size_t w = vt_floats(&heads[h], slice_tok[h]);
        vtfloats = w > vtfloats ? w : vtfloats;
    }
    if (vtfloats > VTSTORE_MAX) /* each key block then builds its own V tiles */
        vtfloats = 0;
    const size_t wbase = (kvz_attn_work_floats(heads[0].d) + 15) / 16 * 16,
                 zbase = wbase + (zfloats + 15) / 16 * 16;
    const size_t wfloats = zbase + vtfloats;
    query_run r = {kt,      reads, heads, tasks,   priv,     apriv, slice_tok, n_tasks,
                   wfloats, wbase, zbase, zfloats, vtfloats, 0,     nomem};
    kvz_team_run(query_body, &r, 0);
    nomem = r.nomem;
    if (!nomem)
        for (size_t x = 0; x < n_tasks; x++)
            if (priv[x]) {
                const kvz_attn_job *hj = &heads[tasks[x].head];
                for (size_t c = 0; c < hj->chunk_end - hj->chunk_begin; c++)
                    if (priv[x][c] > hj->score[c])
                        hj->score[c] = priv[x][c];
            }
    if (!nomem)
        for (size_t x = 0; x < n_tasks; x++)
            if (apriv[x]) {
                const kvz_attn_job *hj = &heads[tasks[x].head];
                const size_t seen = accum_keys(hj, tasks[x].b);
                for (size_t c = 0; c < seen; c++)
                    hj->accum[c] += apriv[x][c];
            }
    for (size_t x = 0; priv && x < n_tasks; x++)
        free(priv[x]);
    for (size_t x = 0; apriv && x < n_tasks; x++)
        free(apriv[x]);
    free(priv), free(apriv), free(tasks), free(slice_tok);
    return nomem ? kvz_fail(KVZ_ERR_NOMEM, "attention: no memory for scratch or score rows") : KVZ_OK;
}

/* ---- key slices ----------------------------------------------------------------------- */

/* Which tasks each thread runs when the heads sit on several NUMA nodes: node k owns
 * threads [k*T/N, (k+1)*T/N) and its heads' slices (in `order`, node by node, from
 * node_first[k]); a thread takes its node's slices through that node's counter, then
 * helps the other nodes. Without a placement every thread shares one list. */
typedef struct node_sched {
    size_t n_nodes;
    int node[64];
    size_t *order, node_first[65];
    size_t next[64]; /* per-node counters, taken with atomic adds */
} node_sched;

static int sched_init(node_sched *ns, const task *tasks, size_t n_tasks, const int *node_of, size_t nthr)
{
    ns->n_nodes = 0;
    ns->order = NULL;
    if (!node_of)
        return 0;
    for (size_t x = 0; x < n_tasks; x++) {
        const int nd = node_of[tasks[x].head];
        size_t k = 0;
        while (k < ns->n_nodes && ns->node[k] != nd)
            k++;
        if (k == ns->n_nodes) {
            if (nd < 0 || k == 64)
                return ns->n_nodes = 0, 0; /* an unplaced head, or too many nodes: one list */
            ns->node[ns->n_nodes++] = nd;
        }
    }
    if (ns->n_nodes < 2 || ns->n_nodes > nthr || !(ns->order = malloc(n_tasks * sizeof *ns->order)))
        return ns->n_nodes = 0, 0;
    size_t t = 0;
    for (size_t k = 0; k < ns->n_nodes; k++) {
        ns->node_first[k] = t, ns->next[k] = 0;
        for (size_t x = 0; x < n_tasks; x++)
            if (node_of[tasks[x].head] == ns->node[k])
                ns->order[t++] = x;
    }
    ns->node_first[ns->n_nodes] = t;
    return 1;
}

/* The next task for a thread of node k, or n_tasks when none is left anywhere. */
static size_t sched_next(node_sched *ns, size_t k, size_t n_tasks)
{
    for (size_t i = 0; i < ns->n_nodes; i++) {
        const size_t kk = (k + i) % ns->n_nodes, n = ns->node_first[kk + 1] - ns->node_first[kk];
        const size_t got = __atomic_fetch_add(&ns->next[kk], 1, __ATOMIC_RELAXED);
        if (got < n)
            return ns->order[ns->node_first[kk] + got];
    }
    return n_tasks;
}

/* One key slice: the kernel over keys [a, b) of the head's runs, partial output and lse. */
static void key_task(const kvz_kernel_table *kt, int reads, const kvz_attn_job *heads, const task *tk,
                     float *out, float *lse, float *work)
{
    const kvz_attn_job *hj = &heads[tk->head];
    const size_t k0 = tk->a, k1 = tk->b, in2 = k0 >= hj->n_k && k1 > k0;
    const size_t local = in2 ? k0 - hj->n_k : k0;
    const ptrdiff_t off = (ptrdiff_t)local * hj->kv_row_stride * (ptrdiff_t)esize(hj->dtype);
    kvz_attn_job j = *hj;
    j.k = in2 ? hj->k2 : hj->k;
    j.v = in2 ? hj->v2 : hj->v;
    if (j.k)
        j.k = (const char *)j.k + off, j.v = (const char *)j.v + off;
    j.n_k = k1 - k0;
    j.k2 = j.v2 = NULL;
    j.n_k2 = 0;
    j.q_pos0 = hj->q_pos0 - (ptrdiff_t)k0;
    j.out = out; /* [g][i][d] */
    j.out_head_stride = (ptrdiff_t)(hj->n_q * hj->d);
    j.out_row_stride = (ptrdiff_t)hj->d;
    j.lse = lse; /* [g][i] */
    j.score = NULL;
    j.accum = NULL; /* accumulating heads run as query slices */
    j.work = work;
    j.reads = reads;
    kt->attn(&j);
}

/* The keys [*lo, *hi) of the runs that some query row of the head sees: all of them without
 * a sliding window, else those of the rows' windows (an empty range as [0, 0)). */
static void visible_keys(const kvz_attn_job *h, size_t *lo, size_t *hi)
{
    const size_t n_all = h->n_k + h->n_k2;
    *lo = 0, *hi = n_all;
    if (!h->window)
        return;
    const ptrdiff_t end = h->q_pos0 + (ptrdiff_t)h->n_q;
    *hi = end <= 0 ? 0 : ((size_t)end < n_all ? (size_t)end : n_all);
    /* the first row's window starts first; a window past key 0, however large, starts there */
    *lo = h->q_pos0 >= 0 && (size_t)h->q_pos0 >= h->window ? (size_t)h->q_pos0 + 1 - h->window : 0;
    if (*lo >= *hi)
        *lo = *hi = 0;
}

/* The keys of run `run` (0: k/v, 1: k2/v2) inside [lo, hi), as [*a, *b) of the concatenation. */
static void run_part(const kvz_attn_job *h, int run, size_t lo, size_t hi, size_t *a, size_t *b)
{
    const size_t base = run ? h->n_k : 0, end = run ? h->n_k + h->n_k2 : h->n_k;
    *a = lo > base ? lo : base;
    *b = hi < end ? hi : end;
    if (*a > *b)
        *a = *b;
}

typedef struct key_run {
    const kvz_kernel_table *kt;
    int reads;
    const kvz_attn_job *heads;
    const task *tasks;
    size_t n_tasks;
    float *po, *pl; /* partial outputs and log-sum-exps, rows_max rows per task */
    size_t rows_max, wfloats;
    node_sched *ns;
    int placed;
    size_t next; /* the next task, without a placement */
    int nomem;
} key_run;

static void key_body(void *ctx, unsigned slot, unsigned team)
{
    key_run *r = ctx;
    const size_t d = r->heads[0].d, rows_max = r->rows_max;
    float *work = kvz_thread_scratch(r->wfloats);
    if (!work)
        __atomic_store_n(&r->nomem, 1, __ATOMIC_RELAXED);
    if (r->placed) {
        const size_t my_node = (size_t)slot * r->ns->n_nodes / team;
        kvz_thread_pin pin;
        kvz_numa_bind_thread(r->ns->node[my_node], &pin);
        for (size_t x; (x = sched_next(r->ns, my_node, r->n_tasks)) < r->n_tasks;)
            if (work)
                key_task(r->kt, r->reads, r->heads, &r->tasks[x], r->po + x * rows_max * d,
                         r->pl + x * rows_max, work);
        kvz_numa_unbind_thread(&pin); /* the thread may be the host's own */
        return;
    }
    for (size_t x; (x = kvz_team_claim(&r->next, r->n_tasks)) < r->n_tasks;)
        if (work)
            key_task(r->kt, r->reads, r->heads, &r->tasks[x], r->po + x * rows_max * d, r->pl + x * rows_max,
                     work);
}

static kvz_status run_key_slices(const kvz_kernel_table *kt, int reads, const kvz_attn_job *heads,
                                 const int *node_of, size_t n_heads)
{
    const size_t nthr = (size_t)kvz_num_threads();
    size_t total = 0;
    for (size_t h = 0; h < n_heads; h++) {
        size_t lo, hi;
        visible_keys(&heads[h], &lo, &hi);
        total += hi - lo;
    }
    size_t slice = total / (4 * nthr) + 1;
    if (slice < 256)
        slice = 256;
    /* tasks: key slices of the visible keys that never straddle the two runs; a head that
       sees nothing still gets one */
    size_t n_tasks = 0;
    for (size_t h = 0; h < n_heads; h++) {
        size_t lo, hi, a0, a1, b0, b1;
        visible_keys(&heads[h], &lo, &hi);
        run_part(&heads[h], 0, lo, hi, &a0, &a1);
        run_part(&heads[h], 1, lo, hi, &b0, &b1);
        const size_t a = a1 - a0, b = b1 - b0;
        n_tasks += (a + slice - 1) / slice + (b + slice - 1) / slice + (a + b == 0);
    }
    task *tasks = malloc(n_tasks * sizeof *tasks);
    size_t *first = malloc((n_heads + 1) * sizeof *first);
    size_t rows_max = 0;
    for (size_t h = 0; h < n_heads; h++)
        if (heads[h].n_q * heads[h].group > rows_max)
            rows_max = heads[h].n_q * heads[h].group;
    const size_t d = heads[0].d;
    float *po = NULL, *pl = NULL;
    size_t n_po = 0;
    if (kvz_mul_ok(n_tasks, rows_max * d, &n_po))
        po = malloc((n_po ? n_po : 1) * sizeof(float));
    pl = malloc((n_tasks * rows_max + 1) * sizeof(float));
    if (!tasks || !first || !po || !pl) {
        free(tasks), free(first), free(po), free(pl);
        return kvz_fail(KVZ_ERR_NOMEM, "attention: no memory for %zu partial results", n_tasks);
    }
    size_t t = 0;
    for (size_t h = 0; h < n_heads; h++) {
        first[h] = t;
        size_t lo, hi;
        visible_keys(&heads[h], &lo, &hi);
        if (lo == hi)
            tasks[t++] = (task){h, 0, 0};
        for (int run = 0; run < 2; run++) {
            size_t k0, end;
            run_part(&heads[h], run, lo, hi, &k0, &end);
            for (; k0 < end; k0 += slice)
                tasks[t++] = (task){h, k0, k0 + slice < end ? k0 + slice : end};
        }
    }
    first[n_heads] = t;
    const size_t wfloats = kvz_attn_work_floats(d);
    int nomem;
    node_sched ns;
    const int placed = sched_init(&ns, tasks, n_tasks, node_of, nthr);
    key_run run = {kt, reads, heads, tasks, n_tasks, po, pl, rows_max, wfloats, &ns, placed, 0, 0};
    kvz_team_run(key_body, &run, 0);
    nomem = run.nomem;
    free(ns.order);
    if (!nomem) /* out = sum_p exp(lse_p - lse) o_p, slice by slice */
        for (size_t h = 0; h < n_heads; h++) {
            const kvz_attn_job *hj = &heads[h];
            for (size_t g = 0; g < hj->group; g++)
                for (size_t i = 0; i < hj->n_q; i++) {
                    const size_t r = g * hj->n_q + i;
                    float mx = -INFINITY;
                    for (size_t x = first[h]; x < first[h + 1]; x++)
                        mx = pl[x * rows_max + r] > mx ? pl[x * rows_max + r] : mx;
                    float *dst =
                        hj->out + (ptrdiff_t)g * hj->out_head_stride + (ptrdiff_t)i * hj->out_row_stride;
                    memset(dst, 0, d * sizeof(float));
                    if (mx == -INFINITY) {
                        if (hj->lse)
                            hj->lse[r] = -INFINITY;
                        continue;
                    }
                    float wsum = 0.0f;
                    for (size_t x = first[h]; x < first[h + 1]; x++)
                        wsum += expf(pl[x * rows_max + r] - mx);
                    for (size_t x = first[h]; x < first[h + 1]; x++) {
                        const float w = expf(pl[x * rows_max + r] - mx) / wsum;
                        if (w == 0.0f)
                            continue;
                        const float *src = po + x * rows_max * d + r * d;
                        for (size_t c = 0; c < d; c++)
                            dst[c] += w * src[c];
                    }
                    if (hj->lse)
                        hj->lse[r] = mx + logf(wsum);
                }
        }
    free(tasks), free(first), free(po), free(pl);
    return nomem ? kvz_fail(KVZ_ERR_NOMEM, "attention: no memory for thread scratch") : KVZ_OK;
}

kvz_status kvz_attn_run(const kvz_attn_job *heads, size_t n_heads)
{
    return kvz_attn_run_placed(heads, NULL, n_heads);
}

kvz_status kvz_attn_run_placed(const kvz_attn_job *heads, const int *node_of, size_t n_heads)
{
    if (n_heads == 0)
        return KVZ_OK;
    const kvz_kernel_table *kt = kvz_kernels();
    size_t rows = 0;
    int scoring = 0; /* or accumulating: a key slice's probabilities are relative to its own lse */
    for (size_t h = 0; h < n_heads; h++) {
        rows = heads[h].n_q * heads[h].group > rows ? heads[h].n_q * heads[h].group : rows;
        scoring |= heads[h].score != NULL || heads[h].accum != NULL;
    }
    if (rows == 0)
        return KVZ_OK;
    for (size_t h = 0; h < n_heads; h++)
        if (heads[h].score && heads[h].window)
            return kvz_fail(KVZ_ERR_INVALID_ARG,
                            "attention: scoring runs on global layers only, not with a sliding window (%zu)",
                            heads[h].window);
    const int reads = (int)kvz_read_plan_active();
    return rows <= KEY_SPLIT_MAX_ROWS && !scoring ? run_key_slices(kt, reads, heads, node_of, n_heads)
                                                  : run_query_slices(kt, reads, heads, n_heads);
}
