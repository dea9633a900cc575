/* kvz_convert at every level against independent references: exhaustive 16-bit patterns, rounding edges. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* bf16 -> f32 by definition: the upper half of the binary32 pattern. */
static float ref_bf16_to_f32(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* f16 -> f32 from the formula: (-1)^s * 2^(e-15) * (1 + m/1024), subnormals 2^-14 * m/1024. */
static double ref_f16_value(uint16_t h)
{
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0)
        v = ldexp(m / 1024.0, -14);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(1.0 + m / 1024.0, e - 15);
    return s ? -v : v;
}

/* Nearest representable value with ties to the even pattern, by comparing candidates in
 * double. Infinity takes part as the next power of two after the largest finite value, as
 * IEEE rounding treats overflow. */
static uint16_t ref_round(double x, int bf16)
{
    const uint16_t inf = bf16 ? 0x7f80 : 0x7c00;
    if (isinf(x))
        return (uint16_t)((signbit(x) ? 0x8000 : 0) | inf);
    uint16_t best = 0;
    double best_err = INFINITY;
    const uint16_t sign = signbit(x) ? 0x8000 : 0;
    for (uint32_t m = 0; m < 0x7fff; m++) { /* all finite magnitudes and +inf */
        const uint16_t h = (uint16_t)(sign | m);
        double v = bf16 ? ref_bf16_to_f32(h) : ref_f16_value(h);
        if (isnan(v))
            continue;
        if (isinf(v))
            v = copysign(ldexp(1.0, bf16 ? 128 : 16), v);
        const double err = fabs(v - x);
        if (err < best_err || (err == best_err && !(h & 1))) {
            best = h;
            best_err = err;
        }
    }
    return best;
}

static void test_widen_exhaustive(void **state)
{
    (void)state;
    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv);
    uint16_t *all = tu_malloc(65536 * 2);
    float *f = tu_malloc(65536 * sizeof(float));
    for (uint32_t i = 0; i < 65536; i++)
        all[i] = (uint16_t)i;
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        assert_int_equal(kvz_convert(f, KVZ_DTYPE_F32, all, KVZ_DTYPE_BF16, 65536), KVZ_OK);
        for (uint32_t i = 0; i < 65536; i++) {
            const float w = ref_bf16_to_f32((uint16_t)i);
            if (isnan(w))
                assert_true(isnan(f[i]));
            else
                assert_memory_equal(&f[i], &w, 4);
        }
        assert_int_equal(kvz_convert(f, KVZ_DTYPE_F32, all, KVZ_DTYPE_F16, 65536), KVZ_OK);
        for (uint32_t i = 0; i < 65536; i++) {
            const double w = ref_f16_value((uint16_t)i);
            if (isnan(w))
                assert_true(isnan(f[i]));
            else if (f[i] != (float)w || !signbit(f[i]) != !signbit(w))
                fail_msg("%s f16 0x%04x -> %g, want %g", kvz_isa_name(lv[l]), i, f[i], w);
        }
    }
    free(all), free(f);
}

/* Every non-NaN 16-bit pattern survives f32 and back unchanged. */
static void test_roundtrip_exhaustive(void **state)
{
    (void)state;
    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv);
    uint16_t *all = tu_malloc(65536 * 2), *back = tu_malloc(65536 * 2);
    float *f = tu_malloc(65536 * sizeof(float));
    for (uint32_t i = 0; i < 65536; i++)
        all[i] = (uint16_t)i;
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (int dt = 1; dt <= 2; dt++) {
            assert_int_equal(kvz_convert(f, KVZ_DTYPE_F32, all, (kvz_dtype)dt, 65536), KVZ_OK);
            assert_int_equal(kvz_convert(back, (kvz_dtype)dt, f, KVZ_DTYPE_F32, 65536), KVZ_OK);
            for (uint32_t i = 0; i < 65536; i++) {
                if (isnan(f[i])) {
                    const int exp_all_ones =
                        dt == 1 ? ((back[i] & 0x7f80) == 0x7f80) : ((back[i] & 0x7c00) == 0x7c00);
                    const int man_nonzero = dt == 1 ? (back[i] & 0x7f) != 0 : (back[i] & 0x3ff) != 0;
                    assert_true(exp_all_ones && man_nonzero); /* NaN stays NaN */
                    continue;
                }
                if (back[i] != all[i])
                    fail_msg("%s dtype %d: 0x%04x -> %g -> 0x%04x", kvz_isa_name(lv[l]), dt, i, f[i], back[i]);
            }
        }
    }
    free(all), free(back), free(f);
}

/* Narrowing rounds to nearest, ties to even, at all lengths (vector bodies and tails). */
static void test_narrow_rounding(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 30);
    const size_t n = 4096;
    float *x = tu_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        switch (i % 8) {
        case 0: x[i] = tu_uniform(&r, -2, 2); break;
        case 1: x[i] = ldexpf(tu_uniform(&r, 1, 2), (int)tu_range(&r, 0, 40) - 30); break; /* f16 subnormals */
        case 2: { /* exact bf16 ties: lower 16 bits 0x8000 */
            uint32_t u = (uint32_t)tu_next(&r) & 0x7f7f0000u;
            u |= 0x8000u;
            memcpy(&x[i], &u, 4);
            break;
        }
        case 3: { /* exact f16 ties at 1 + (2m+1)/2048 */
            x[i] = (float)(1.0 + (2.0 * (double)tu_range(&r, 0, 1023) + 1.0) / 2048.0);
            break;
        }
        case 4: x[i] = tu_uniform(&r, 60000, 70000); break; /* f16 overflow to inf */
        case 5: x[i] = (i & 16) ? INFINITY : -INFINITY; break;
        case 6: x[i] = (i & 16) ? 0.0f : -0.0f; break;
        default: x[i] = tu_uniform(&r, -1e-3f, 1e-3f); break;
        }
    }
    uint16_t *want_b = tu_malloc(n * 2), *want_h = tu_malloc(n * 2), *got = tu_malloc(n * 2);
    const size_t n_ref = tu_quick() ? 512 : n; /* the reference scans 32768 candidates per value */
    for (size_t i = 0; i < n_ref; i++) {
        want_b[i] = ref_round(x[i], 1);
        want_h[i] = ref_round(x[i], 0);
    }
    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (size_t len = 1; len <= 67; len++) { /* every tail length */
            memset(got, 0xaa, n * 2);
            assert_int_equal(kvz_convert(got, KVZ_DTYPE_BF16, x, KVZ_DTYPE_F32, len), KVZ_OK);
            for (size_t i = 0; i < len; i++)
                assert_int_equal(got[i], want_b[i]);
            assert_int_equal(got[len], 0xaaaa); /* nothing written past n */
        }
        assert_int_equal(kvz_convert(got, KVZ_DTYPE_BF16, x, KVZ_DTYPE_F32, n_ref), KVZ_OK);
        for (size_t i = 0; i < n_ref; i++)
            if (got[i] != want_b[i])
                fail_msg("%s bf16(%.9g) = 0x%04x, want 0x%04x", kvz_isa_name(lv[l]), x[i], got[i], want_b[i]);
        assert_int_equal(kvz_convert(got, KVZ_DTYPE_F16, x, KVZ_DTYPE_F32, n_ref), KVZ_OK);
        for (size_t i = 0; i < n_ref; i++)
            if (got[i] != want_h[i])
                fail_msg("%s f16(%.9g) = 0x%04x, want 0x%04x", kvz_isa_name(lv[l]), x[i], got[i], want_h[i]);
        /* NaN stays NaN */
        const float nan = NAN;
        uint16_t h = 0;
        assert_int_equal(kvz_convert(&h, KVZ_DTYPE_BF16, &nan, KVZ_DTYPE_F32, 1), KVZ_OK);
        assert_true((h & 0x7f80) == 0x7f80 && (h & 0x7f));
        assert_int_equal(kvz_convert(&h, KVZ_DTYPE_F16, &nan, KVZ_DTYPE_F32, 1), KVZ_OK);
        assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff));
    }
    free(x), free(want_b), free(want_h), free(got);
}

/* bf16 <-> f16 goes through f32: the same as two conversions. */
static void test_cross_and_copy(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 31);
    const size_t n = 3000;
    float *x = tu_malloc(n * sizeof(float)), *f = tu_malloc(n * sizeof(float));
    uint16_t *b = tu_malloc(n * 2), *h = tu_malloc(n * 2), *h2 = tu_malloc(n * 2), *c = tu_malloc(n * 2);
    for (size_t i = 0; i < n; i++)
        x[i] = tu_uniform(&r, -100, 100);
    assert_int_equal(kvz_convert(b, KVZ_DTYPE_BF16, x, KVZ_DTYPE_F32, n), KVZ_OK);
    assert_int_equal(kvz_convert(h, KVZ_DTYPE_F16, b, KVZ_DTYPE_BF16, n), KVZ_OK);
    assert_int_equal(kvz_convert(f, KVZ_DTYPE_F32, b, KVZ_DTYPE_BF16, n), KVZ_OK);
    assert_int_equal(kvz_convert(h2, KVZ_DTYPE_F16, f, KVZ_DTYPE_F32, n), KVZ_OK);
    assert_memory_equal(h, h2, n * 2);
    assert_int_equal(kvz_convert(c, KVZ_DTYPE_BF16, b, KVZ_DTYPE_BF16, n), KVZ_OK);
    assert_memory_equal(c, b, n * 2);
    assert_int_equal(kvz_convert(f, KVZ_DTYPE_F32, x, KVZ_DTYPE_F32, n), KVZ_OK);
    assert_memory_equal(f, x, n * 4);
    free(x), free(f), free(b), free(h), free(h2), free(c);
}

static void test_invalid(void **state)
{
    (void)state;
    float f[4] = {0};
    uint16_t h[4] = {0};
    assert_int_equal(kvz_convert(NULL, KVZ_DTYPE_F32, h, KVZ_DTYPE_BF16, 4), KVZ_ERR_NULL);
    assert_int_equal(kvz_convert(f, KVZ_DTYPE_F32, NULL, KVZ_DTYPE_BF16, 4), KVZ_ERR_NULL);
    assert_int_equal(kvz_convert(f, (kvz_dtype)9, h, KVZ_DTYPE_BF16, 4), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_convert(f, KVZ_DTYPE_F32, h, (kvz_dtype)-1, 4), KVZ_ERR_INVALID_ARG);
    assert_true(strlen(kvz_last_error()) > 0);
    assert_int_equal(kvz_convert(NULL, KVZ_DTYPE_F32, NULL, KVZ_DTYPE_BF16, 0), KVZ_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_widen_exhaustive), cmocka_unit_test(test_roundtrip_exhaustive),
        cmocka_unit_test(test_narrow_rounding),  cmocka_unit_test(test_cross_and_copy),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
