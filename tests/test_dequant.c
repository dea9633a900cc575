/* kvz_dequantize and every level's dequant kernel against the gguf package's values
 * (tests/data/dequant_ref.bin, made by tests/dequant_ref.py), and every level's matrix-vector
 * products over those blocks (the Q8_0 kernel, kvz_linear_apply) against products of those values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "model/dequant.h"
#include "model/gguf.h"
#include "model/linear.h"
#include "testutil.h"

#ifndef KVZ_TESTDATA_DIR
#define KVZ_TESTDATA_DIR "tests/data"
#endif

/* Allowed distance from the reference, in f32 ulps: the contract's 1 ulp (a multiply and an add
 * fused where ggml rounds twice). The products of these types are exact in fp32, so every level is
 * expected at 0, which the test prints. */
#define MAX_ULP 1

typedef struct {
    uint32_t type, n_blocks, block, bytes;
    const unsigned char *raw;
    float *ref;
} ref_set;

static unsigned char *file_data;
static ref_set sets[16];
static size_t n_sets;

static uint32_t rd_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int load_refs(void **state)
{
    (void)state;
    size_t n;
    file_data = tu_slurp(KVZ_TESTDATA_DIR "/dequant_ref.bin", &n);
    assert_true(n >= 16 && memcmp(file_data, "KVZDQREF", 8) == 0 && rd_u32(file_data + 8) == 1);
    const uint32_t count = rd_u32(file_data + 12);
    assert_true(count <= sizeof sets / sizeof sets[0]);
    size_t off = 16;
    for (uint32_t i = 0; i < count; i++) {
        assert_true(off + 16 <= n);
        ref_set *s = &sets[n_sets++];
        s->type = rd_u32(file_data + off), s->n_blocks = rd_u32(file_data + off + 4);
        s->block = rd_u32(file_data + off + 8), s->bytes = rd_u32(file_data + off + 12);
        off += 16;
        const kvz_ggml_type *ty = kvz_ggml_type_of(s->type);
        assert_non_null(ty);
        assert_true(ty->block == s->block && ty->bytes == s->bytes);
        const size_t nv = (size_t)s->n_blocks * s->block;
        assert_true(off + (size_t)s->n_blocks * s->bytes + nv * 4 <= n);
        s->raw = file_data + off;
        off += (size_t)s->n_blocks * s->bytes;
        s->ref = tu_malloc(nv * sizeof *s->ref);
        for (size_t j = 0; j < nv; j++) {
            const uint32_t u = rd_u32(file_data + off + 4 * j);
            memcpy(&s->ref[j], &u, 4);
        }
        off += nv * 4;
    }
    assert_int_equal(off, n);
    assert_int_equal(n_sets, 10);
    return 0;
}

static int free_refs(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_sets; i++)
        free(sets[i].ref);
    free(file_data);
    return 0;
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Distance in representable floats (+0 and -0 count as the same point); huge for NaN. */
static uint64_t ulp_dist(float a, float b)
{
    if (isnan(a) || isnan(b))
        return UINT64_MAX;
    const uint32_t ua = bits(a), ub = bits(b);
    const int64_t ka = ua >> 31 ? -(int64_t)(ua & 0x7fffffffu) : (int64_t)ua;
    const int64_t kb = ub >> 31 ? -(int64_t)(ub & 0x7fffffffu) : (int64_t)ub;
    return (uint64_t)(ka > kb ? ka - kb : kb - ka);
}

/* x (finite) rounded to bf16 by the test's own rounding (testutil), as bits; a zero keeps its sign. */
static uint16_t bf16_of(float x) { return (uint16_t)(bits(copysignf((float)tu_round_bf16(x), x)) >> 16); }

static const char *type_name(uint32_t t) { return kvz_ggml_type_of(t)->name; }

/* The largest ulp distance seen per (level, set), and the bf16 outputs that differ from the
 * reference's rounding only because a 1-ulp f32 difference crossed a bf16 rounding boundary. */
static uint64_t max_ulp[KVZ_KISA_COUNT][16];
static size_t straddles;

/* got (f32, n values) against ref; fails on the first value beyond MAX_ULP. */
static void check_f32(const float *got, const float *ref, size_t n, const char *what, uint64_t *worst)
{
    for (size_t i = 0; i < n; i++) {
        const uint64_t d = ulp_dist(got[i], ref[i]);
        if (d > MAX_ULP)
            fail_msg("%s: value %zu is %.9g, the reference %.9g (%llu ulp)", what, i, (double)got[i],
                     (double)ref[i], (unsigned long long)d);
        if (d > *worst)
            *worst = d;
    }
}

/* got (bf16) must be the reference rounded; or, where the same level's f32 value (got32) is 1 ulp
 * from the reference and rounds differently, that value rounded. */
static void check_bf16(const uint16_t *got, const float *got32, const float *ref, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        const uint16_t want = bf16_of(ref[i]);
        if (got[i] == want)
            continue;
        if (got32 && ulp_dist(got32[i], ref[i]) <= MAX_ULP && got[i] == bf16_of(got32[i])) {
            straddles++;
            continue;
        }
        fail_msg("%s: bf16 value %zu is 0x%04x, want 0x%04x (reference %.9g)", what, i, got[i], want,
                 (double)ref[i]);
    }
}

/* Every set through kvz_dequantize at every level, f32 and bf16, with a guard past the end. */
static void test_reference(void **state)
{
    (void)state;
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (size_t k = 0; k < n_sets; k++) {
            const ref_set *s = &sets[k];
            const size_t nv = (size_t)s->n_blocks * s->block;
            float *y = tu_malloc((nv + 16) * sizeof *y);
            uint16_t *h = tu_malloc((nv + 16) * sizeof *h);
            tu_fill_sentinel(y, nv + 16);
            memset(h, 0xA5, (nv + 16) * sizeof *h);
            char what[96];
            snprintf(what, sizeof what, "%s %s f32", kvz_isa_name(lv[l]), type_name(s->type));
            assert_int_equal(kvz_dequantize(y, KVZ_DTYPE_F32, s->raw, s->type, nv), KVZ_OK);
            check_f32(y, s->ref, nv, what, &max_ulp[lv[l]][k]);
            for (size_t i = nv; i < nv + 16; i++)
                assert_true(tu_is_sentinel(y + i));
            snprintf(what, sizeof what, "%s %s bf16", kvz_isa_name(lv[l]), type_name(s->type));
            assert_int_equal(kvz_dequantize(h, KVZ_DTYPE_BF16, s->raw, s->type, nv), KVZ_OK);
            check_bf16(h, y, s->ref, nv, what);
            for (size_t i = nv; i < nv + 16; i++)
                assert_int_equal(h[i], 0xA5A5);
            free(y), free(h);
        }
    }
    tu_force(lv[nl - 1]);
    fprintf(stderr, "dequant: max ulp from the gguf reference per level:");
    for (size_t k = 0; k < n_sets; k++) {
        fprintf(stderr, "\n  %-5s", type_name(sets[k].type));
        for (size_t l = 0; l < nl; l++)
            fprintf(stderr, " %s %llu", kvz_isa_name(lv[l]), (unsigned long long)max_ulp[lv[l]][k]);
    }
    fprintf(stderr, "\ndequant: bf16 outputs across a rounding boundary from a 1-ulp f32 difference: %zu\n",
            straddles);
}

/* Each level's kernel called directly on runs of 1, 3, 7 and 33 blocks, at the start of a set
 * and at its end (its last block is the last of a row), unaligned destinations included. */
static void test_kernel_runs(void **state)
{
    (void)state;
    static const size_t runs[] = {1, 3, 7, 33};
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        const kvz_kernel_table *kt = kvz_kernels_for(lv[l]);
        assert_non_null(kt);
        for (size_t k = 0; k < n_sets; k++) {
            const ref_set *s = &sets[k];
            for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
                for (int at_end = 0; at_end < 2; at_end++) {
                    const size_t nb = runs[r], b0 = at_end ? s->n_blocks - nb : 0, nv = nb * s->block;
                    const size_t pad = 1 + r; /* an odd element offset: destinations not vector aligned */
                    float *y = tu_malloc((nv + pad + 8) * sizeof *y);
                    uint16_t *h = tu_malloc((nv + pad + 8) * sizeof *h);
                    tu_fill_sentinel(y, nv + pad + 8);
                    memset(h, 0xA5, (nv + pad + 8) * sizeof *h);
                    const unsigned char *src = s->raw + b0 * s->bytes;
                    const float *ref = s->ref + b0 * s->block;
                    char what[96];
                    snprintf(what, sizeof what, "%s kernel %s, %zu blocks from %zu", kt->name,
                             type_name(s->type), nb, b0);
                    kt->dequant(y + pad, KVZ_KDT_F32, src, (int)s->type, nb);
                    check_f32(y + pad, ref, nv, what, &max_ulp[lv[l]][k]);
                    kt->dequant(h + pad, KVZ_KDT_BF16, src, (int)s->type, nb);
                    check_bf16(h + pad, y + pad, ref, nv, what);
                    for (size_t i = 0; i < pad; i++)
                        assert_true(tu_is_sentinel(y + i) && h[i] == 0xA5A5);
                    for (size_t i = nv + pad; i < nv + pad + 8; i++)
                        assert_true(tu_is_sentinel(y + i) && h[i] == 0xA5A5);
                    free(y), free(h);
                }
            }
        }
    }
}

/* A run long enough to be split over the threads (some 300K values): the set repeated, and its
 * values repeated. */
static void test_threads(void **state)
{
    (void)state;
    for (size_t k = 0; k < n_sets; k++) {
        const ref_set *s = &sets[k];
        const size_t reps = (300000 / s->block + s->n_blocks - 1) / s->n_blocks;
        const size_t nb = reps * s->n_blocks, nv = nb * s->block, one = (size_t)s->n_blocks * s->block;
        unsigned char *raw = tu_malloc(nb * s->bytes);
        for (size_t r = 0; r < reps; r++)
            memcpy(raw + r * s->n_blocks * s->bytes, s->raw, (size_t)s->n_blocks * s->bytes);
        float *y = tu_malloc(nv * sizeof *y);
        uint16_t *h = tu_malloc(nv * sizeof *h);
        assert_int_equal(kvz_dequantize(y, KVZ_DTYPE_F32, raw, s->type, nv), KVZ_OK);
        assert_int_equal(kvz_dequantize(h, KVZ_DTYPE_BF16, raw, s->type, nv), KVZ_OK);
        char what[64];
        snprintf(what, sizeof what, "%s threaded", type_name(s->type));
        uint64_t worst = 0;
        for (size_t r = 0; r < reps; r++) {
            check_f32(y + r * one, s->ref, one, what, &worst);
            check_bf16(h + r * one, y + r * one, s->ref, one, what);
        }
        free(raw), free(y), free(h);
    }
}

/* The float types go through kvz_convert: F32 copies, F16 and BF16 widen exactly. */
static void test_float_types(void **state)
{
    (void)state;
    const float f[4] = {1.5f, -0.0f, 3.0e38f, 1.0e-40f};
    const uint16_t f16[4] = {0x3e00, 0x8000, 0x7bff, 0x0001}, b16[4] = {0x3fc0, 0x8000, 0x7f7f, 0x0001};
    float y[4];
    uint16_t h[4];
    assert_int_equal(kvz_dequantize(y, KVZ_DTYPE_F32, f, KVZ_GGML_F32, 4), KVZ_OK);
    assert_memory_equal(y, f, sizeof f);
    assert_int_equal(kvz_dequantize(y, KVZ_DTYPE_F32, f16, KVZ_GGML_F16, 4), KVZ_OK);
    assert_true(y[0] == 1.5f && bits(y[1]) == 0x80000000u && y[2] == 65504.0f && y[3] == ldexpf(1.0f, -24));
    assert_int_equal(kvz_dequantize(h, KVZ_DTYPE_BF16, b16, KVZ_GGML_BF16, 4), KVZ_OK);
    assert_memory_equal(h, b16, sizeof b16);
    assert_int_equal(kvz_dequantize(h, KVZ_DTYPE_BF16, f, KVZ_GGML_F32, 4), KVZ_OK);
    assert_true(h[0] == 0x3fc0 && h[1] == 0x8000);
}

/* Refusals, each with its status, and nothing written. */
static void test_errors(void **state)
{
    (void)state;
    const ref_set *s = &sets[0]; /* Q4_0: blocks of 32 */
    float y[64];
    tu_fill_sentinel(y, 64);
    assert_int_equal(kvz_dequantize(NULL, KVZ_DTYPE_F32, s->raw, s->type, 32), KVZ_ERR_NULL);
    assert_int_equal(kvz_dequantize(y, KVZ_DTYPE_F32, NULL, s->type, 32), KVZ_ERR_NULL);
    assert_int_equal(kvz_dequantize(y, KVZ_DTYPE_F32, s->raw, s->type, 33), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_dequantize(y, KVZ_DTYPE_F32, s->raw, s->type, 16), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_dequantize(y, KVZ_DTYPE_F32, s->raw, KVZ_GGML_Q4_K, 64), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_dequantize(y, KVZ_DTYPE_F16, s->raw, s->type, 32), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_dequantize(y, (kvz_dtype)7, s->raw, s->type, 32), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_dequantize(y, KVZ_DTYPE_F32, s->raw, 9, 32), KVZ_ERR_UNSUPPORTED);    /* Q8_1 */
    assert_int_equal(kvz_dequantize(y, KVZ_DTYPE_F32, s->raw, 15, 256), KVZ_ERR_UNSUPPORTED);  /* Q8_K */
    assert_int_equal(kvz_dequantize(y, KVZ_DTYPE_F32, s->raw, 1000, 32), KVZ_ERR_UNSUPPORTED); /* none */
    assert_non_null(strstr(kvz_last_error(), "1000"));
    for (size_t i = 0; i < 64; i++)
        assert_true(tu_is_sentinel(y + i));
    /* nothing to do is not an error, even without buffers */
    assert_int_equal(kvz_dequantize(NULL, KVZ_DTYPE_F32, NULL, s->type, 0), KVZ_OK);
}

/* Each level's Q8_0 matrix-vector kernel over the Q8_0 set's blocks, read as matrices of 1, 3 and
 * 8 blocks a row, against a double-precision product of the gguf package's values and f32
 * activations: 1 to 9 activation rows (the kernel takes them four at a time), outputs at a stride
 * wider than the matrix (what lies between is left alone). The bound is fp32 accumulation's over a
 * block's 32 products, its scaling and the chain of blocks, on the sum of |w x|. */
static void test_gemv_q8_0(void **state)
{
    (void)state;
    const ref_set *s = NULL;
    for (size_t k = 0; k < n_sets; k++)
        if (sets[k].type == KVZ_GGML_Q8_0)
            s = &sets[k];
    assert_non_null(s);
    static const size_t per_row[] = {1, 3, 8}, ms[] = {1, 2, 3, 4, 5, 9};
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 77);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        const kvz_kernel_table *kt = kvz_kernels_for(lv[l]);
        for (size_t a = 0; a < sizeof per_row / sizeof per_row[0]; a++)
            for (size_t b = 0; b < sizeof ms / sizeof ms[0]; b++) {
                const size_t nb = per_row[a], in = 32 * nb, rows = s->n_blocks / nb, m = ms[b], ldy = rows + 3;
                float *x = tu_malloc(m * in * sizeof *x), *y = tu_malloc(m * ldy * sizeof *y);
                for (size_t i = 0; i < m * in; i++)
                    x[i] = tu_uniform(&r, -1.0f, 1.0f);
                tu_fill_sentinel(y, m * ldy);
                kt->gemv_q8_0(y, ldy, x, m, s->raw, rows, in);
                const double eps = ldexp(1.0, -24) * (double)(32 + nb + 2);
                for (size_t i = 0; i < m; i++) {
                    for (size_t j = 0; j < rows; j++) {
                        double want = 0, mag = 0;
                        for (size_t k = 0; k < in; k++) {
                            const double p = (double)s->ref[j * in + k] * x[i * in + k];
                            want += p, mag += fabs(p);
                        }
                        const double got = y[i * ldy + j];
                        if (!(fabs(got - want) <= eps * mag))
                            fail_msg("%s gemv_q8_0, %zu values a row, %zu rows: y[%zu][%zu] = %.9g, want %.9g "
                                     "(bound %.3g)",
                                     kt->name, in, m, i, j, got, want, eps * mag);
                    }
                    for (size_t j = rows; j < ldy; j++)
                        assert_true(tu_is_sentinel(y + i * ldy + j));
                }
                free(x), free(y);
            }
    }
}

/* Each level's kernel over rows of every type's reference blocks, called directly: 1 and 3 blocks a
 * row, 1 to 3 activation rows, outputs at a stride wider than the matrix (what lies between is left
 * alone), against the gguf package's values in double precision within fp32 accumulation's bound. */
static void test_gemv_blocks(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 79);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        const kvz_kernel_table *kt = kvz_kernels_for(lv[l]);
        for (size_t k = 0; k < n_sets; k++) {
            const ref_set *s = &sets[k];
            for (size_t per_row = 1; per_row <= 3; per_row += 2)
                for (size_t m = 1; m <= 3; m++) {
                    const size_t in = per_row * s->block, rows = s->n_blocks / per_row, ldy = rows + 2;
                    float *x = tu_malloc(m * in * sizeof *x), *y = tu_malloc(m * ldy * sizeof *y);
                    float *work = tu_malloc(in * sizeof *work);
                    for (size_t i = 0; i < m * in; i++)
                        x[i] = tu_uniform(&r, -1.0f, 1.0f);
                    tu_fill_sentinel(y, m * ldy);
                    const kvz_gemv_job job = {s->raw, (int)s->type, rows, in, per_row, per_row * s->bytes, x, m,
                                              y,      ldy,          work};
                    kt->gemv_blocks(&job);
                    for (size_t i = 0; i < m; i++) {
                        for (size_t j = 0; j < rows; j++) {
                            double want = 0, mag = 0;
                            for (size_t c = 0; c < in; c++) {
                                const double p = (double)s->ref[j * in + c] * x[i * in + c];
                                want += p, mag += fabs(p);
                            }
                            const double got = y[i * ldy + j];
                            if (!(fabs(got - want) <= ldexp(1.0, -24) * (double)(in + 2) * mag))
                                fail_msg("%s gemv_blocks %s, %zu values a row, %zu rows: y[%zu][%zu] = %.9g, "
                                         "want %.9g",
                                         kt->name, type_name(s->type), in, m, i, j, got, want);
                        }
                        for (size_t j = rows; j < ldy; j++)
                            assert_true(tu_is_sentinel(y + i * ldy + j));
                    }
                    free(x), free(y), free(work);
                }
        }
    }
}

/* kvz_linear_apply over every set's blocks (the matrix held as blocks only) at 1, 2, 3 and 5
 * activation rows against the gguf package's values in double precision within fp32 accumulation's
 * bound: up to KVZ_LINEAR_BLOCK_ROWS rows through the matrix-vector kernels, more through oneDNN
 * over the blocks converted a panel at a time (in bf16 on CPUs with AVX512_BF16: weights and
 * activations rounded to bf16, as the reference rounds them). And the choice of representation when
 * a matrix has both: products of up to KVZ_LINEAR_BLOCK_ROWS rows read the blocks, longer ones the
 * dense copy (here zeros, so that the two cannot be mistaken). */
static void test_block_products(void **state)
{
    (void)state;
    static const size_t ms[] = {1, 2, 3, 5};
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 78);
    kvz_mm *mm = NULL;
    assert_int_equal(kvz_mm_create(&mm), KVZ_OK);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t lvl = 0; lvl < nl; lvl++) {
        tu_force(lv[lvl]);
        for (size_t k = 0; k < n_sets; k++) {
            const ref_set *s = &sets[k];
            const size_t in = 2 * s->block, rows = s->n_blocks / 2;
            float *zeros = calloc(rows * in, sizeof *zeros);
            assert_non_null(zeros);
            for (size_t b = 0; b < sizeof ms / sizeof ms[0] + 1; b++) {
                const int mixed = b == sizeof ms / sizeof ms[0]; /* dense zeros beside the blocks */
                const size_t m = mixed ? KVZ_LINEAR_BLOCK_ROWS + 1 : ms[b];
                const kvz_linear l = {.in = in,
                                      .out = rows,
                                      .wtype = mixed ? KVZ_WFMT_F32 : KVZ_WFMT_BLOCKS,
                                      .w = mixed ? zeros : NULL,
                                      .blocks = s->raw,
                                      .qtype = s->type};
                float *x = tu_malloc(m * in * sizeof *x), *y = tu_malloc(m * rows * sizeof *y);
                for (size_t i = 0; i < m * in; i++)
                    x[i] = tu_uniform(&r, -1.0f, 1.0f);
                for (int part = 0; part < (mixed ? 2 : 1); part++) {
                    /* mixed: KVZ_LINEAR_BLOCK_ROWS rows read the blocks, then all m rows the zeros */
                    const size_t mm_rows = mixed && part == 0 ? KVZ_LINEAR_BLOCK_ROWS : m;
                    tu_fill_sentinel(y, m * rows);
                    assert_int_equal(kvz_linear_apply(mm, &l, mm_rows, x, y), KVZ_OK);
                    const int bf16 = !mixed && mm_rows > KVZ_LINEAR_BLOCK_ROWS && kvz_cpu_has_avx512_bf16();
                    for (size_t i = 0; i < mm_rows; i++)
                        for (size_t j = 0; j < rows; j++) {
                            double want = 0, mag = 0;
                            for (size_t c = 0; c < in; c++) {
                                const double wv = s->ref[j * in + c], xv = x[i * in + c];
                                const double p = bf16 ? tu_round_bf16(wv) * tu_round_bf16(xv) : wv * xv;
                                want += p, mag += fabs(p);
                            }
                            if (mixed && part == 1)
                                want = 0, mag = 0;
                            const double got = y[i * rows + j],
                                         bound = ldexp(1.0, -24) * (double)(in + 3) * mag;
                            if (!(fabs(got - want) <= bound))
                                fail_msg("%s %s blocks, %zu rows%s: y[%zu][%zu] = %.9g, want %.9g (bound %.3g)",
                                         kvz_isa_name(lv[lvl]), type_name(s->type), mm_rows,
                                         mixed ? " beside a dense copy" : "", i, j, got, want, bound);
                        }
                }
                free(x), free(y);
            }
            free(zeros);
        }
    }
    tu_force(lv[nl - 1]);
    kvz_mm_destroy(mm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference),   cmocka_unit_test(test_kernel_runs),
        cmocka_unit_test(test_threads),     cmocka_unit_test(test_float_types),
        cmocka_unit_test(test_errors),      cmocka_unit_test(test_gemv_q8_0),
        cmocka_unit_test(test_gemv_blocks), cmocka_unit_test(test_block_products),
    };
    return cmocka_run_group_tests(tests, load_refs, free_refs);
}
