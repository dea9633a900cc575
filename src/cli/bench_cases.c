/* Benchmark cases of `kvz bench` and perf/: inputs built once, one library operation per run. */
#include "cli/bench_cases.h"

#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvz.h"

/* The shapes: one Llama-3.1-8B layer (8 KV heads, G = 4, d = 128). */
static const kvz_bench_case kernel_cases[] = {
    {.name = "stream_read", .kind = KVZ_BENCH_STREAM, .size = (size_t)1 << 30},
    {.name = "sgemm_f32", .kind = KVZ_BENCH_SGEMM, .size = 2048},
    {.name = "decode_bf16_32k",
     .kind = KVZ_BENCH_DECODE,
     .kv_heads = 8,
     .group = 4,
     .head_dim = 128,
     .context = 32768,
     .kept = 1.0,
     .dtype = KVZ_DTYPE_BF16},
    {.name = "decode_bf16_32k_r0.3",
     .kind = KVZ_BENCH_DECODE,
     .kv_heads = 8,
     .group = 4,
     .head_dim = 128,
     .context = 32768,
     .kept = 0.3,
     .dtype = KVZ_DTYPE_BF16},
    {.name = "prefill_attn_f32",
     .kind = KVZ_BENCH_PREFILL,
     .kv_heads = 8,
     .group = 4,
     .head_dim = 128,
     .context = 32768,
     .queries = 2048,
     .dtype = KVZ_DTYPE_F32},
    {.name = "score_attn_f32",
     .kind = KVZ_BENCH_PREFILL,
     .kv_heads = 8,
     .group = 4,
     .head_dim = 128,
     .context = 32768,
     .queries = 2048,
     .dtype = KVZ_DTYPE_F32,
     .scoring = 1},
};

const kvz_bench_case *kvz_bench_kernel_cases(size_t *n)
{
    *n = sizeof kernel_cases / sizeof kernel_cases[0];
    return kernel_cases;
}

struct kvz_bench_state {
    const kvz_bench_case *c;
    void *a, *b, *out;
    float *q, *o, *score;
    int32_t *cu;
    double work;
    volatile float sink;
};

static void *xmalloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        fprintf(stderr, "kvz bench: out of memory (%zu bytes)\n", bytes);
        return NULL;
    }
    return p;
}

/* Fills n elements of dtype dt with values in [-1, 1) from a cheap generator, in parallel. */
static void fill(void *dst, int dt, size_t n, unsigned seed)
{
#pragma omp parallel
    {
        float buf[1024];
#pragma omp for schedule(static)
        for (size_t i0 = 0; i0 < n; i0 += 1024) {
            const size_t m = n - i0 < 1024 ? n - i0 : 1024;
            for (size_t i = 0; i < m; i++) {
                uint32_t x = (uint32_t)(i0 + i) * 2654435761u ^ seed;
                x ^= x >> 15, x *= 2246822519u, x ^= x >> 13;
                buf[i] = (float)(x >> 8) * (2.0f / 16777216.0f) - 1.0f;
            }
            kvz_convert((char *)dst + i0 * (dt == KVZ_DTYPE_F32 ? 4 : 2), (kvz_dtype)dt, buf, KVZ_DTYPE_F32, m);
        }
    }
}

/* Kept fraction of head h: non-uniform across heads, as KVzip leaves them; over each 8
 * heads the mean is `kept` as long as kept <= 0.6 (no head above 1). */
static double head_share(size_t h, double kept)
{
    static const double spread[8] = {0.17, 0.33, 0.67, 1.0, 1.17, 1.33, 1.67, 1.67}; /* mean 1 */
    if (kept >= 1.0)
        return 1.0;
    const double s = kept * spread[h % 8];
    return s > 1.0 ? 1.0 : s;
}

kvz_bench_state *kvz_bench_setup(const kvz_bench_case *c)
{
    kvz_bench_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->c = c;
    const size_t es = c->dtype == KVZ_DTYPE_F32 ? 4 : 2;
    switch (c->kind) {
    case KVZ_BENCH_STREAM:
        if (!(s->a = xmalloc(c->size)))
            goto fail;
        fill(s->a, KVZ_DTYPE_F32, c->size / 4, 1);
        s->work = (double)c->size;
        break;
    case KVZ_BENCH_SGEMM: {
        const size_t n = c->size * c->size;
        if (!(s->a = xmalloc(n * 4)) || !(s->b = xmalloc(n * 4)) || !(s->out = xmalloc(n * 4)))
            goto fail;
        fill(s->a, KVZ_DTYPE_F32, n, 2), fill(s->b, KVZ_DTYPE_F32, n, 3);
        s->work = 2.0 * (double)c->size * (double)c->size * (double)c->size;
        break;
    }
    case KVZ_BENCH_DECODE: {
        const size_t H = c->kv_heads, d = c->head_dim;
        if (!(s->cu = malloc((H + 1) * sizeof *s->cu)))
            goto fail;
        s->cu[0] = 0;
        for (size_t h = 0; h < H; h++)
            s->cu[h + 1] = s->cu[h] + (int32_t)llround((double)c->context * head_share(h, c->kept));
        const size_t rows = (size_t)s->cu[H];
        if (!(s->a = xmalloc(rows * d * es)) || !(s->b = xmalloc(rows * d * es)) ||
            !(s->q = xmalloc(H * c->group * d * 4)) || !(s->o = xmalloc(H * c->group * d * 4)))
            goto fail;
        fill(s->a, c->dtype, rows * d, 4), fill(s->b, c->dtype, rows * d, 5);
        fill(s->q, KVZ_DTYPE_F32, H * c->group * d, 6);
        s->work = 2.0 * (double)rows * (double)d * (double)es;
        break;
    }
    case KVZ_BENCH_PREFILL: {
        const size_t H = c->kv_heads, G = c->group, d = c->head_dim, nq = c->queries, nk = c->context;
        if (!(s->a = xmalloc(H * nk * d * es)) || !(s->b = xmalloc(H * nk * d * es)) ||
            !(s->q = xmalloc(nq * H * G * d * 4)) || !(s->o = xmalloc(nq * H * G * d * 4)) ||
            !(s->score = xmalloc(H * 2000 * 4)))
            goto fail;
        fill(s->a, c->dtype, H * nk * d, 7), fill(s->b, c->dtype, H * nk * d, 8);
        fill(s->q, KVZ_DTYPE_F32, nq * H * G * d, 9);
        double pairs = 0; /* visible (query, key) pairs: the chunk's own keys are the last nq */
        for (size_t i = 0; i < nq; i++)
            pairs += (double)(nk - nq + i + 1);
        s->work = 4.0 * (double)d * pairs * (double)(H * G);
        break;
    }
    }
    return s;
fail:
    kvz_bench_teardown(s);
    return NULL;
}

int kvz_bench_run(kvz_bench_state *s)
{
    const kvz_bench_case *c = s->c;
    kvz_status st = KVZ_OK;
    switch (c->kind) {
    case KVZ_BENCH_STREAM: {
        const float *x = s->a;
        const size_t n = c->size / 4;
        float total = 0;
        /* independent partial sums per thread: limited by memory, not by the add latency */
#pragma omp parallel reduction(+ : total)
        {
            float acc[16] = {0};
#pragma omp for schedule(static)
            for (size_t i = 0; i < n; i += 16)
#pragma omp simd
                for (size_t j = 0; j < 16; j++)
                    acc[j] += x[i + j];
            for (int j = 0; j < 16; j++)
                total += acc[j];
        }
        s->sink = total;
        return 0;
    }
    case KVZ_BENCH_SGEMM: {
        const dnnl_dim_t m = (dnnl_dim_t)c->size;
        if (dnnl_sgemm('N', 'N', m, m, m, 1.0f, s->a, m, s->b, m, 0.0f, s->out, m) != dnnl_success) {
            fprintf(stderr, "kvz bench: dnnl_sgemm failed\n");
            return -1;
        }
        return 0;
    }
    case KVZ_BENCH_DECODE: {
        kvz_varlen_args a;
        memset(&a, 0, sizeof a);
        a.struct_size = sizeof a;
        a.n_kv_heads = c->kv_heads, a.group = c->group, a.head_dim = c->head_dim, a.q_len = 1;
        a.q = s->q, a.k = s->a, a.v = s->b, a.kv_dtype = (kvz_dtype)c->dtype;
        a.kv_row_stride = (ptrdiff_t)c->head_dim, a.cu_len = s->cu, a.out = s->o;
        st = kvz_attn_decode_varlen(&a);
        break;
    }
    case KVZ_BENCH_PREFILL: {
        const size_t H = c->kv_heads, G = c->group, d = c->head_dim;
        kvz_attn_args a;
        memset(&a, 0, sizeof a);
        a.struct_size = sizeof a;
        a.n_kv_heads = H, a.group = G, a.head_dim = d, a.n_q = c->queries, a.n_k = c->context;
        a.q_pos0 = (ptrdiff_t)(c->context - c->queries);
        a.q = s->q, a.q_token_stride = (ptrdiff_t)(H * G * d), a.q_head_stride = (ptrdiff_t)d;
        a.k = s->a, a.v = s->b, a.kv_dtype = (kvz_dtype)c->dtype;
        a.kv_head_stride = (ptrdiff_t)(c->context * d), a.kv_row_stride = (ptrdiff_t)d;
        a.out = s->o, a.out_token_stride = a.q_token_stride, a.out_head_stride = a.q_head_stride;
        if (c->scoring) { /* a 64-token system prompt and a 2000-token chunk, as KVzip scores */
            memset(s->score, 0, H * 2000 * 4);
            a.score = s->score, a.score_head_stride = 2000;
            a.sink_end = 64, a.chunk_begin = 64, a.chunk_end = 2064;
        }
        st = kvz_attn_prefill(&a);
        break;
    }
    }
    if (st != KVZ_OK) {
        fprintf(stderr, "kvz bench: %s: %s (%s)\n", c->name, kvz_strerror(st), kvz_last_error());
        return -1;
    }
    return 0;
}

double kvz_bench_work(const kvz_bench_state *s, const char **unit)
{
    if (unit)
        *unit = s->c->kind == KVZ_BENCH_SGEMM || s->c->kind == KVZ_BENCH_PREFILL ? "GFLOP/s" : "GB/s";
    return s->work;
}

void kvz_bench_teardown(kvz_bench_state *s)
{
    if (!s)
        return;
    free(s->a), free(s->b), free(s->out), free(s->q), free(s->o), free(s->score), free(s->cu);
    free(s);
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int kvz_bench_measure(const kvz_bench_case *c, double min_seconds, int min_reps, int max_reps,
                      kvz_bench_result *r)
{
    kvz_bench_state *s = kvz_bench_setup(c);
    if (!s)
        return -1;
    double *t = malloc((size_t)max_reps * sizeof *t);
    int n = 0, rc = t ? kvz_bench_run(s) : -1; /* the warm-up */
    double spent = 0;
    while (rc == 0 && n < max_reps && (n < min_reps || spent < min_seconds)) {
        const double t0 = omp_get_wtime();
        rc = kvz_bench_run(s);
        t[n] = omp_get_wtime() - t0;
        spent += t[n++];
    }
    if (rc == 0) {
        qsort(t, (size_t)n, sizeof *t, cmp_double);
        r->seconds = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
        r->work = kvz_bench_work(s, &r->unit);
        r->rate = r->work / r->seconds / 1e9;
        r->reps = n;
    }
    free(t);
    kvz_bench_teardown(s);
    return rc;
}

void kvz_bench_cpu_model(char *buf, size_t size)
{
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *v = strchr(line, ':');
            if (v) {
                v++;
                while (*v == ' ' || *v == '\t')
                    v++;
                snprintf(buf, size, "%s", v);
                buf[strcspn(buf, "\n")] = '\0';
            }
            break;
        }
    }
    fclose(f);
}
