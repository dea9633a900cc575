/* The naive reference forward pass: every operation written out in double precision,
 * straight from the llama2.c equations, reading F32 tensors from the GGUF mapping. */
#include "ref_llama.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/gguf.h"

struct ref_llama {
    kvz_gguf *g;
    size_t L, E, Hq, Hkv, d, F, V;
    double base, eps;
    size_t window, period; /* local layers (0: none) */
};

static const float *T(const ref_llama *r, const char *name)
{
    const kvz_gguf_tensor *t = kvz_gguf_tensor_find(r->g, name);
    return t && t->type == KVZ_GGML_F32 ? t->data : NULL;
}

static const float *TL(const ref_llama *r, size_t l, const char *what)
{
    char name[96];
    snprintf(name, sizeof name, "blk.%zu.%s", l, what);
    return T(r, name);
}

ref_llama *ref_llama_open(const char *path)
{
    ref_llama *r = calloc(1, sizeof *r);
    if (!r || kvz_gguf_open(path, &r->g) != KVZ_OK) {
        free(r);
        return NULL;
    }
    uint64_t v;
    kvz_gguf_get_u64(r->g, "llama.block_count", &v), r->L = v;
    kvz_gguf_get_u64(r->g, "llama.embedding_length", &v), r->E = v;
    kvz_gguf_get_u64(r->g, "llama.attention.head_count", &v), r->Hq = v;
    kvz_gguf_get_u64(r->g, "llama.attention.head_count_kv", &v), r->Hkv = v;
    kvz_gguf_get_u64(r->g, "llama.feed_forward_length", &v), r->F = v;
    float f = 10000.0f;
    if (kvz_gguf_find(r->g, "llama.rope.freq_base"))
        kvz_gguf_get_f32(r->g, "llama.rope.freq_base", &f);
    r->base = f;
    kvz_gguf_get_f32(r->g, "llama.attention.layer_norm_rms_epsilon", &f), r->eps = f;
    r->d = r->E / r->Hq;
    r->V = kvz_gguf_tensor_find(r->g, "token_embd.weight")->dims[1];
    return r;
}

void ref_llama_close(ref_llama *r)
{
    if (r)
        kvz_gguf_close(r->g);
    free(r);
}

void ref_llama_set_window(ref_llama *r, size_t window, size_t period)
{
    r->window = window, r->period = period;
}

size_t ref_llama_vocab(const ref_llama *r) { return r->V; }
size_t ref_llama_layers(const ref_llama *r) { return r->L; }
size_t ref_llama_kv_heads(const ref_llama *r) { return r->Hkv; }

/* y[out] = W[out][in] x[in] */
static void matvec(const float *W, const double *x, size_t in, size_t out, double *y)
{
    for (size_t o = 0; o < out; o++) {
        double s = 0;
        for (size_t i = 0; i < in; i++)
            s += (double)W[o * in + i] * x[i];
        y[o] = s;
    }
}

static void rmsnorm(const double *x, const float *w, size_t E, double eps, double *y)
{
    double ss = 0;
    for (size_t i = 0; i < E; i++)
        ss += x[i] * x[i];
    const double s = 1.0 / sqrt(ss / (double)E + eps);
    for (size_t i = 0; i < E; i++)
        y[i] = x[i] * s * w[i];
}

/* llama2.c's rotation: adjacent pairs, theta_i = pos * base^(-2i/d) */
static void rope(double *v, size_t heads, size_t d, double pos, double base)
{
    for (size_t h = 0; h < heads; h++)
        for (size_t i = 0; i < d / 2; i++) {
            const double th = pos * pow(base, -2.0 * (double)i / (double)d);
            double *p = v + h * d + 2 * i;
            const double a = p[0], b = p[1];
            p[0] = a * cos(th) - b * sin(th);
            p[1] = a * sin(th) + b * cos(th);
        }
}

void ref_llama_forward_tsp(const ref_llama *r, const int32_t *ids, size_t n, size_t n_ctx, size_t t,
                           const size_t *sel, size_t m, const uint8_t *keep, double *out, double *attn)
{
    const size_t E = r->E, d = r->d, Hq = r->Hq, Hkv = r->Hkv, G = Hq / Hkv, F = r->F, V = r->V;
    double *x = calloc(n * E, 8), *xn = malloc(E * 8), *q = malloc(n * Hq * d * 8);
    double *k = malloc(n * Hkv * d * 8), *v = malloc(n * Hkv * d * 8), *att = malloc(Hq * d * 8);
    double *o = malloc(E * 8), *g = malloc(F * 8), *u = malloc(F * 8), *p = malloc(n * 8);
    size_t *live = malloc(n * sizeof *live); /* original indices of the tokens in flight, ascending */
    size_t n_live = n;
    for (size_t i = 0; i < n; i++)
        live[i] = i;
    if (attn)
        memset(attn, 0, r->L * Hq * n * n * 8);
    memset(out, 0, n * V * 8);
    const float *emb = T(r, "token_embd.weight");
    for (size_t t0 = 0; t0 < n; t0++)
        for (size_t i = 0; i < E; i++)
            x[t0 * E + i] = emb[(size_t)ids[t0] * E + i];
    for (size_t l = 0; l < r->L; l++) {
        for (size_t a = 0; a < n_live; a++) {
            const size_t tk = live[a];
            rmsnorm(x + tk * E, TL(r, l, "attn_norm.weight"), E, r->eps, xn);
            matvec(TL(r, l, "attn_q.weight"), xn, E, Hq * d, q + tk * Hq * d);
            matvec(TL(r, l, "attn_k.weight"), xn, E, Hkv * d, k + tk * Hkv * d);
            matvec(TL(r, l, "attn_v.weight"), xn, E, Hkv * d, v + tk * Hkv * d);
            rope(q + tk * Hq * d, Hq, d, (double)tk, r->base); /* the original position */
            rope(k + tk * Hkv * d, Hkv, d, (double)tk, r->base);
        }
        const int local = r->window && r->period && l % r->period < r->period - 1;
        for (size_t a = 0; a < n_live; a++) {
            const size_t tq = live[a];
            for (size_t qh = 0; qh < Hq; qh++) {
                const size_t h = qh / G;
                double mx = -INFINITY;
                for (size_t b = 0; b <= a; b++) {
                    const size_t j = live[b];
                    const int vis = (tq < n_ctx || j >= n_ctx || !keep || keep[(l * Hkv + h) * n + j]) &&
                                    (!local || a - b < r->window);
                    double s = 0;
                    for (size_t i = 0; i < d; i++)
                        s += q[(tq * Hq + qh) * d + i] * k[(j * Hkv + h) * d + i];
                    p[b] = vis ? s / sqrt((double)d) : -INFINITY;
                    if (p[b] > mx)
                        mx = p[b];
                }
                double z = 0;
                for (size_t b = 0; b <= a; b++)
                    z += (p[b] = exp(p[b] - mx));
                for (size_t i = 0; i < d; i++)
                    att[qh * d + i] = 0;
                for (size_t b = 0; b <= a; b++) {
                    const size_t j = live[b];
                    p[b] /= z;
                    if (attn)
                        attn[((l * Hq + qh) * n + tq) * n + j] = p[b];
                    for (size_t i = 0; i < d; i++)
                        att[qh * d + i] += p[b] * v[(j * Hkv + h) * d + i];
                }
            }
            matvec(TL(r, l, "attn_output.weight"), att, Hq * d, E, o);
            for (size_t i = 0; i < E; i++)
                x[tq * E + i] += o[i];
            rmsnorm(x + tq * E, TL(r, l, "ffn_norm.weight"), E, r->eps, xn);
            matvec(TL(r, l, "ffn_gate.weight"), xn, E, F, g);
            matvec(TL(r, l, "ffn_up.weight"), xn, E, F, u);
            for (size_t i = 0; i < F; i++)
                g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
            matvec(TL(r, l, "ffn_down.weight"), g, F, E, o);
            for (size_t i = 0; i < E; i++)
                x[tq * E + i] += o[i];
        }
        if (l == t && sel) { /* token-selective propagation: only sel runs on */
            for (size_t a = 0; a < m; a++)
                live[a] = sel[a];
            n_live = m;
        }
    }
    const float *head = T(r, "output.weight") ? T(r, "output.weight") : emb;
    for (size_t a = 0; a < n_live; a++) {
        rmsnorm(x + live[a] * E, T(r, "output_norm.weight"), E, r->eps, xn);
        matvec(head, xn, E, V, out + live[a] * V);
    }
    free(x), free(xn), free(q), free(k), free(v), free(att), free(o), free(g), free(u), free(p), free(live);
}

void ref_llama_forward(const ref_llama *r, const int32_t *ids, size_t n, double *out, double *attn)
{
    ref_llama_forward_tsp(r, ids, n, n, 0, NULL, n, NULL, out, attn);
}

void ref_llama_forward_masked(const ref_llama *r, const int32_t *ids, size_t n, const uint8_t *keep, size_t mask_from,
                              double *out, double *attn)
{
    ref_llama_forward_tsp(r, ids, n, mask_from, 0, NULL, n, keep, out, attn);
}
