/* kvz_linear_apply (src/model/linear.c) against a double-precision product of the values it
 * is given: f32 and bf16 weights, with and without bias, at row counts on both sides of the
 * plain/transposed switch and off every block size, with cached primitives reused; Q8_0 blocks
 * through the matrix-vector kernel and through converted panels. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/gguf.h"
#include "model/linear.h"
#include "testutil.h"

/* y[i][j] = sum_k x[i][k] w[j][k] (+ b[j]), with x rounded as the weight type rounds it, and
 * the bound sum_k |x w| that scales oneDNN's fp32 accumulation error. */
static void reference(size_t m, size_t in, size_t out, const float *x, const double *w, const float *b, int bf16,
                      double *y, double *mag)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < out; j++) {
            double s = b ? b[j] : 0.0, a = b ? fabs(b[j]) : 0.0;
            for (size_t k = 0; k < in; k++) {
                const double xv = bf16 ? tu_round_bf16(x[i * in + k]) : x[i * in + k];
                s += xv * w[j * in + k];
                a += fabs(xv * w[j * in + k]);
            }
            y[i * out + j] = s, mag[i * out + j] = a;
        }
}

/* Every row count of the list up to max_m. */
static void check_shape(kvz_mm *mm, tu_rng *r, kvz_dtype wt, size_t in, size_t out, int with_bias, size_t max_m)
{
    double *w_exact = tu_malloc(in * out * sizeof *w_exact);
    void *w = tu_fill_kv(r, wt, in * out, -1.0f, 1.0f, w_exact);
    float *b = NULL;
    if (with_bias) {
        b = tu_malloc(out * sizeof *b);
        for (size_t j = 0; j < out; j++)
            b[j] = tu_uniform(r, -2.0f, 2.0f);
    }
    const kvz_linear l = {.in = in, .out = out, .wtype = (kvz_wformat)wt, .w = w, .bias = b};
    /* 31/32 and 1023/1024 straddle the switches between oneDNN's runtime-row gemm, the
     * transposed and the plain orientation; 118, 130 and 200 are off oneDNN's row blocks; 118
     * comes back to reuse its cached primitive after others were built; 1030 and 1130 run
     * (in bf16) as 1024 rows and 6 more, 1088 and 42 more (ROW_ALIGN) */
    static const size_t rows[] = {1, 5, 31, 32, 33, 118, 64, 130, 118, 200, 1023, 1024, 1030, 1130};
    /* y has the padded products' room (kvz_linear_rows) */
    float *x = tu_malloc(max_m * in * sizeof *x), *y = tu_malloc(kvz_linear_rows(max_m) * out * sizeof *y);
    double *want = tu_malloc(max_m * out * sizeof *want), *mag = tu_malloc(max_m * out * sizeof *mag);
    for (size_t t = 0; t < sizeof rows / sizeof rows[0]; t++) {
        const size_t m = rows[t];
        if (m > max_m)
            continue;
        for (size_t i = 0; i < m * in; i++)
            x[i] = tu_uniform(r, -1.0f, 1.0f);
        reference(m, in, out, x, w_exact, b, wt == KVZ_DTYPE_BF16, want, mag);
        float *xm = tu_malloc(m * in * sizeof *xm); /* exactly m rows: an over-read shows under ASan */
        memcpy(xm, x, m * in * sizeof *xm);
        for (int padded = 0; padded < 2; padded++) {
            tu_fill_sentinel(y, m * out);
            assert_int_equal(padded ? kvz_linear_apply_padded(mm, &l, m, xm, y) : kvz_linear_apply(mm, &l, m, xm, y),
                             KVZ_OK);
            for (size_t i = 0; i < m * out; i++) {
                const double err = fabs(y[i] - want[i]), tol = 1e-5 * mag[i] + 1e-6;
                if (!(err <= tol))
                    fail_msg("%s weights %zu -> %zu, bias %d, m %zu%s: y[%zu][%zu] = %.9g, want %.9g (tol %.3g)",
                             wt == KVZ_DTYPE_BF16 ? "bf16" : "f32", in, out, with_bias, m, padded ? " (padded)" : "",
                             i / out, i % out, (double)y[i], want[i], tol);
            }
        }
        free(xm);
    }
    free(x), free(y), free(want), free(mag), free(w), free(w_exact), free(b);
}

static void test_products(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed());
    kvz_mm *mm = NULL;
    assert_int_equal(kvz_mm_create(&mm), KVZ_OK);
    /* bf16 weights are what the model loads only on CPUs with AVX512_BF16 (elsewhere
     * oneDNN has no bf16 matmul to build: KVZ_ERR_UNSUPPORTED) */
    const kvz_dtype types[] = {KVZ_DTYPE_F32, KVZ_DTYPE_BF16};
    const size_t n_types = kvz_cpu_has_avx512_bf16() ? 2 : 1;
    if (n_types == 1)
        fprintf(stderr, "test_linear: no AVX512_BF16 on this CPU: bf16 weights not tested\n");
    /* the padded products' room: whole multiples of 64 from 1024 rows on */
    assert_int_equal(kvz_linear_rows(1), 1);
    assert_int_equal(kvz_linear_rows(1023), 1023);
    assert_int_equal(kvz_linear_rows(1024), 1024);
    assert_int_equal(kvz_linear_rows(1025), 1088);
    assert_int_equal(kvz_linear_rows(1088), 1088);
    assert_int_equal(kvz_linear_rows(1130), 1152);
    for (size_t t = 0; t < n_types; t++) {
        check_shape(mm, &r, types[t], 96, 80, 0, 1130);
        check_shape(mm, &r, types[t], 96, 80, 1, 1130);
        check_shape(mm, &r, types[t], 200, 1030, 1, 200); /* > 65536 outputs: the threaded loops */
    }
    kvz_mm_destroy(mm);
}

/* Q8_0 blocks made here: random int8 quants and power-of-two f16 scales, so that every value d*q is
 * known exactly (in bf16 too: |q| <= 128 and d a power of two). wv receives the values. */
static uint8_t *q8_0_blocks(tu_rng *r, size_t in, size_t out, double *wv)
{
    const size_t nb = in / 32;
    uint8_t *w = tu_malloc(out * nb * 34);
    for (size_t j = 0; j < out; j++)
        for (size_t k = 0; k < nb; k++) {
            uint8_t *b = w + (j * nb + k) * 34;
            const int e = -10 + (int)(tu_uniform(r, 0.0f, 8.99f)); /* 2^-10 .. 2^-2 */
            const uint16_t h = (uint16_t)((e + 15) << 10);
            memcpy(b, &h, 2);
            for (size_t i = 0; i < 32; i++) {
                const int8_t q = (int8_t)(int)floorf(tu_uniform(r, -128.0f, 127.99f));
                b[2 + i] = (uint8_t)q;
                wv[j * in + k * 32 + i] = ldexp((double)q, e);
            }
        }
    return w;
}

/* A matrix of Q8_0 blocks only against a double-precision product at each of `rows`, with and
 * without a bias, plain and padded (both_ways), or once with a bias. Up to KVZ_LINEAR_BLOCK_ROWS rows
 * run the matrix-vector kernel: the fp32 sums of a block's 32 products, its scaling, the chain of
 * blocks and the bias bound the error. More rows run oneDNN over converted panels, in bf16 on CPUs
 * with AVX512_BF16 (activations rounded to bf16 as the reference rounds them) and fp32 sums. */
static void check_q8_0(kvz_mm *mm, tu_rng *r, size_t in, size_t out, const size_t *rows, size_t n_rows,
                       int both_ways)
{
    double *wv = tu_malloc(in * out * sizeof *wv);
    uint8_t *w = q8_0_blocks(r, in, out, wv);
    size_t max_m = 0;
    for (size_t t = 0; t < n_rows; t++)
        max_m = rows[t] > max_m ? rows[t] : max_m;
    const size_t room = kvz_linear_rows(max_m);
    float *bias = tu_malloc(out * sizeof *bias), *x = tu_malloc(max_m * in * sizeof *x);
    float *y = tu_malloc(room * out * sizeof *y);
    double *want = tu_malloc(max_m * out * sizeof *want), *mag = tu_malloc(max_m * out * sizeof *mag);
    for (size_t j = 0; j < out; j++)
        bias[j] = tu_uniform(r, -2.0f, 2.0f);
    const int dense_bf16 = kvz_cpu_has_avx512_bf16();
    for (size_t t = 0; t < n_rows; t++)
        for (int with_bias = !both_ways; with_bias < 2; with_bias++)
            for (int padded = 0; padded < (both_ways ? 2 : 1); padded++) {
                const size_t m = rows[t], nb = in / 32;
                const int panels = m > KVZ_LINEAR_BLOCK_ROWS;
                const kvz_linear l = {.in = in,
                                      .out = out,
                                      .wtype = KVZ_WFMT_BLOCKS,
                                      .bias = with_bias ? bias : NULL,
                                      .blocks = w,
                                      .qtype = KVZ_GGML_Q8_0};
                for (size_t i = 0; i < m * in; i++)
                    x[i] = tu_uniform(r, -1.0f, 1.0f);
                reference(m, in, out, x, wv, l.bias, panels && dense_bf16, want, mag);
                tu_fill_sentinel(y, room * out);
                assert_int_equal(padded ? kvz_linear_apply_padded(mm, &l, m, x, y)
                                        : kvz_linear_apply(mm, &l, m, x, y),
                                 KVZ_OK);
                for (size_t i = 0; i < m * out; i++) {
                    const double got = y[i], tol = panels ? 1e-5 * mag[i] + 1e-6
                                                          : ldexp(1.0, -24) * (double)(32 + nb + 3) * mag[i];
                    if (!(fabs(got - want[i]) <= tol))
                        fail_msg("Q8_0 %zu -> %zu, bias %d, m %zu%s: y[%zu][%zu] = %.9g, want %.9g (tol %.3g)",
                                 in, out, with_bias, m, padded ? " (padded)" : "", i / out, i % out, got,
                                 want[i], tol);
                }
                for (size_t i = (padded ? kvz_linear_rows(m) : m) * out; i < room * out; i++)
                    assert_true(tu_is_sentinel(y + i)); /* no row past m (past the room when padded) written */
            }
    free(w), free(wv), free(bias), free(x), free(y), free(want), free(mag);
}

/* Q8_0 blocks: the matrix-vector kernel over the threads' split of the rows at row counts on both
 * sides of its four rows at a time, and oneDNN over panels: one panel a thread (96 values a row),
 * several a thread with a narrower last one (1024 values a row, 4480 rows: three panels of about
 * PANEL_VALUES in a transposed product), whole slices in a plain one (1030 rows). Then the refusals. */
static void test_q8_0(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 5);
    kvz_mm *mm = NULL;
    assert_int_equal(kvz_mm_create(&mm), KVZ_OK);
    static const size_t rows[] = {1, 2, 3, 4, 5, 33}, wide[] = {40}, plain[] = {1030};
    check_q8_0(mm, &r, 96, 1030, rows, sizeof rows / sizeof rows[0], 1);
    check_q8_0(mm, &r, 1024, 4480, wide, 1, 0);
    check_q8_0(mm, &r, 64, 200, plain, 1, 1);
    /* rows that are not whole blocks: refused, nothing written; so are the two below, at every row count */
    enum { IN = 96, OUT = 1030 };
    uint8_t w[IN / 32 * 34] = {0};
    float *x = tu_malloc(5 * IN * sizeof *x), *y = tu_malloc(5 * OUT * sizeof *y);
    memset(x, 0, 5 * IN * sizeof *x);
    const kvz_linear odd = {
        .in = IN - 16, .out = OUT, .wtype = KVZ_WFMT_BLOCKS, .blocks = w, .qtype = KVZ_GGML_Q8_0};
    /* blocks of no block-quantized type (F16), and a matrix held as blocks without them */
    const kvz_linear f16 = {.in = IN, .out = OUT, .wtype = KVZ_WFMT_BLOCKS, .blocks = w, .qtype = KVZ_GGML_F16};
    const kvz_linear none = {.in = IN, .out = OUT, .wtype = KVZ_WFMT_BLOCKS};
    for (size_t m = 1; m <= 5; m += 4) {
        tu_fill_sentinel(y, m * OUT);
        assert_int_equal(kvz_linear_apply(mm, &odd, m, x, y), KVZ_ERR_INVALID_ARG);
        assert_int_equal(kvz_linear_apply(mm, &f16, m, x, y), KVZ_ERR_INVALID_ARG);
        assert_int_equal(kvz_linear_apply(mm, &none, m, x, y), KVZ_ERR_INVALID_ARG);
        assert_int_equal(kvz_linear_apply_padded(mm, &none, m, x, y), KVZ_ERR_INVALID_ARG);
        assert_true(tu_is_sentinel(y) && tu_is_sentinel(y + m * OUT - 1));
    }
    kvz_mm_destroy(mm);
    free(x), free(y);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    kvz_mm *mm = NULL;
    assert_int_equal(kvz_mm_create(&mm), KVZ_OK);
    float x[4] = {0}, y[4] = {0};
    const uint16_t w[4] = {0};
    const kvz_linear l = {.in = 2, .out = 2, .wtype = KVZ_WFMT_BF16, .w = w};
    assert_int_equal(kvz_linear_apply(NULL, &l, 1, x, y), KVZ_ERR_NULL);
    assert_int_equal(kvz_linear_apply(mm, NULL, 1, x, y), KVZ_ERR_NULL);
    assert_int_equal(kvz_linear_apply(mm, &l, 1, NULL, y), KVZ_ERR_NULL);
    assert_int_equal(kvz_linear_apply(mm, &l, 1, x, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_linear_apply(mm, &l, 0, x, y), KVZ_OK); /* nothing to do */
    const kvz_linear huge = {.in = (size_t)1 << 40, .out = (size_t)1 << 40, .wtype = KVZ_WFMT_BF16, .w = w};
    assert_int_equal(kvz_linear_apply(mm, &huge, (size_t)1 << 40, x, y), KVZ_ERR_INVALID_ARG);
    kvz_mm_destroy(mm);
    assert_int_equal(kvz_mm_create(NULL), KVZ_ERR_NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_products),
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
