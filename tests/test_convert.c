/* kvz_convert at every level and for every pair of dtypes, against references written here from the formats. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- references: exact values in double, round to nearest even by arithmetic -------------- */

static const char *const dt_name[3] = {"f32", "bf16", "f16"};

static float f32_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t bits_of_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Value of a 16-bit pattern. bf16: the upper half of a binary32. f16: (-1)^s 2^(e-15) (1 + m/1024),
 * subnormals 2^-14 m/1024. */
static double ref_value(uint16_t h, kvz_dtype dt)
{
    if (dt == KVZ_DTYPE_BF16)
        return f32_of_bits((uint32_t)h << 16);
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

static int is_nan16(uint16_t h, kvz_dtype dt)
{
    return dt == KVZ_DTYPE_BF16 ? (h & 0x7f80) == 0x7f80 && (h & 0x7f) : (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
}

/*
 * x (not NaN) rounded to bf16 (8 significant bits, exponents -126..127) or f16 (11 bits,
 * -14..15), nearest, ties to even. Overflow: from the midpoint between the largest finite value
 * and 2^(emax+1) up (a tie there goes to infinity: the largest finite mantissa is odd).
 */
static uint16_t ref_narrow(double x, kvz_dtype dt)
{
    const int p = dt == KVZ_DTYPE_BF16 ? 8 : 11, emin = dt == KVZ_DTYPE_BF16 ? -126 : -14;
    const int emax = dt == KVZ_DTYPE_BF16 ? 127 : 15, bias = dt == KVZ_DTYPE_BF16 ? 127 : 15;
    const uint16_t sign = signbit(x) ? 0x8000 : 0, inf = dt == KVZ_DTYPE_BF16 ? 0x7f80 : 0x7c00;
    const double a = fabs(x);
    if (a >= ldexp(2.0 - ldexp(1.0, -p), emax))
        return sign | inf;
    if (a == 0)
        return sign;
    int e;
    (void)frexp(a, &e); /* a = f 2^e, 0.5 <= f < 1: leading bit of weight 2^(e-1) */
    const int lead = e - 1 < emin ? emin : e - 1;
    const double quantum = ldexp(1.0, lead - (p - 1));
    const double m = nearbyint(a / quantum); /* exact division; nearbyint ties to even */
    const double y = m * quantum;
    if (y < ldexp(1.0, emin)) /* subnormal (or zero): the pattern is the multiple of the quantum */
        return (uint16_t)(sign | (uint16_t)m);
    int e2;
    (void)frexp(y, &e2);
    const int E = e2 - 1;
    const double mant = (ldexp(y, -E) - 1.0) * ldexp(1.0, p - 1);
    return (uint16_t)(sign | (uint16_t)((E + bias) << (p - 1)) | (uint16_t)mant);
}

/* The same rounding by brute force: the nearest of all finite patterns (and infinity taken as
 * 2^(emax+1)), ties to the even pattern. Slow; it only vouches for ref_narrow. */
static uint16_t ref_narrow_scan(double x, kvz_dtype dt)
{
    const uint16_t sign = signbit(x) ? 0x8000 : 0;
    uint16_t best = 0;
    double best_err = INFINITY;
    for (uint32_t m = 0; m < 0x7fff; m++) {
        const uint16_t h = (uint16_t)(sign | m);
        double v = ref_value(h, dt);
        if (isnan(v))
            continue;
        if (isinf(v))
            v = copysign(ldexp(1.0, dt == KVZ_DTYPE_BF16 ? 128 : 16), v);
        const double err = fabs(v - x);
        if (err < best_err || (err == best_err && !(h & 1))) {
            best = h;
            best_err = err;
        }
    }
    if (isinf(x))
        best = (uint16_t)(sign | (dt == KVZ_DTYPE_BF16 ? 0x7f80 : 0x7c00));
    return best;
}

/* What converting element i of src (dtype s) to dtype d must give; returns 1 when it must be
 * a NaN (any NaN pattern), else writes the exact bits to *want (4 or 2 bytes). */
static int ref_convert_one(const void *src, kvz_dtype s, size_t i, kvz_dtype d, uint32_t *want)
{
    double x;
    if (s == KVZ_DTYPE_F32) {
        const float f = ((const float *)src)[i];
        if (s == d) { /* a copy keeps every bit, NaN payloads too */
            *want = bits_of_f32(f);
            return 0;
        }
        x = f;
    } else {
        const uint16_t h = ((const uint16_t *)src)[i];
        if (s == d) {
            *want = h;
            return 0;
        }
        x = ref_value(h, s);
    }
    if (isnan(x))
        return 1;
    *want = d == KVZ_DTYPE_F32 ? bits_of_f32((float)x) : ref_narrow(x, d);
    return 0;
}

static int got_is_nan(const void *dst, kvz_dtype d, size_t i)
{
    return d == KVZ_DTYPE_F32 ? isnan(((const float *)dst)[i]) : is_nan16(((const uint16_t *)dst)[i], d);
}

static uint32_t got_bits(const void *dst, kvz_dtype d, size_t i)
{
    return d == KVZ_DTYPE_F32 ? bits_of_f32(((const float *)dst)[i]) : ((const uint16_t *)dst)[i];
}

/* Checks dst[0..n) against the reference conversion of src[0..n). */
static void check_converted(const void *dst, kvz_dtype d, const void *src, kvz_dtype s, size_t n,
                            const char *what)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t want;
        if (ref_convert_one(src, s, i, d, &want)) {
            if (!got_is_nan(dst, d, i))
                fail_msg("%s %s->%s [%zu]: NaN became 0x%x", what, dt_name[s], dt_name[d], i,
                         got_bits(dst, d, i));
        } else if (got_bits(dst, d, i) != want) {
            const uint32_t sb =
                s == KVZ_DTYPE_F32 ? bits_of_f32(((const float *)src)[i]) : ((const uint16_t *)src)[i];
            fail_msg("%s %s->%s [%zu]: 0x%x -> 0x%x, want 0x%x", what, dt_name[s], dt_name[d], i, sb,
                     got_bits(dst, d, i), want);
        }
    }
}

/* The reference against brute force, on edge values and random ones. */
static void test_reference_selfcheck(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 29);
    const double fixed[] = {0.0,
                            -0.0,
                            1.0,
                            -1.0,
                            65504.0,
                            65519.0,
                            65520.0,
                            65536.0,
                            1e6,
                            -1e6,
                            ldexp(1.0, -24),
                            ldexp(1.0, -25),
                            ldexp(1.5, -25),
                            ldexp(1.0, -26),
                            ldexp(3.0, -25),
                            ldexp(1.0, -14),
                            ldexp(1023.5, -24),
                            ldexp(1.0, -133),
                            ldexp(1.0, -134),
                            ldexp(1.5, -134),
                            ldexp(255.5, 120),
                            ldexp(2.0 - ldexp(1.0, -8), 127),
                            ldexp(2.0 - ldexp(1.0, -9), 127),
                            FLT_MAX,
                            INFINITY,
                            -INFINITY,
                            1.0 + 1.0 / 256,
                            1.0 + 3.0 / 256,
                            1.0 + 1.0 / 2048,
                            1.0 + 3.0 / 2048};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        for (int dt = 1; dt <= 2; dt++)
            if (ref_narrow(fixed[i], (kvz_dtype)dt) != ref_narrow_scan(fixed[i], (kvz_dtype)dt))
                fail_msg("reference %s(%.17g): 0x%04x, brute force 0x%04x", dt_name[dt], fixed[i],
                         ref_narrow(fixed[i], (kvz_dtype)dt), ref_narrow_scan(fixed[i], (kvz_dtype)dt));
    /* a few spot values written out by hand */
    assert_int_equal(ref_narrow(1.0, KVZ_DTYPE_F16), 0x3c00);
    assert_int_equal(ref_narrow(65504.0, KVZ_DTYPE_F16), 0x7bff);
    assert_int_equal(ref_narrow(65520.0, KVZ_DTYPE_F16), 0x7c00);
    assert_int_equal(ref_narrow(ldexp(1.0, -24), KVZ_DTYPE_F16), 0x0001);
    assert_int_equal(ref_narrow(ldexp(1.0, -25), KVZ_DTYPE_F16), 0x0000); /* tie to even: 0 */
    assert_int_equal(ref_narrow(ldexp(3.0, -25), KVZ_DTYPE_F16), 0x0002); /* tie to even: 2 */
    assert_int_equal(ref_narrow(-2.0, KVZ_DTYPE_BF16), 0xc000);
    assert_int_equal(ref_narrow(1.0 + 1.0 / 256, KVZ_DTYPE_BF16), 0x3f80); /* tie: down to even */
    assert_int_equal(ref_narrow(1.0 + 3.0 / 256, KVZ_DTYPE_BF16), 0x3f82); /* tie: up to even */
    const int n = tu_quick() ? 100 : 400;
    for (int i = 0; i < n; i++) {
        const float x = f32_of_bits((uint32_t)tu_next(&r));
        if (isnan(x))
            continue;
        for (int dt = 1; dt <= 2; dt++)
            if (ref_narrow(x, (kvz_dtype)dt) != ref_narrow_scan(x, (kvz_dtype)dt))
                fail_msg("reference %s(%.9g) disagrees with brute force", dt_name[dt], x);
    }
}

/* ---- the library ---------------------------------------------------------------------------- */

/* All 65536 patterns of bf16 and f16 to f32, bit-exact (signed zeros, subnormals, infinities). */
static void test_widen_exhaustive(void **state)
{
    (void)state;
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    uint16_t *all = tu_malloc(65536 * 2);
    float *f = tu_malloc(65536 * sizeof(float));
    for (uint32_t i = 0; i < 65536; i++)
        all[i] = (uint16_t)i;
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (int dt = 1; dt <= 2; dt++) {
            assert_int_equal(kvz_convert(f, KVZ_DTYPE_F32, all, (kvz_dtype)dt, 65536), KVZ_OK);
            check_converted(f, KVZ_DTYPE_F32, all, (kvz_dtype)dt, 65536, kvz_isa_name(lv[l]));
        }
    }
    free(all), free(f);
}

/* Every non-NaN 16-bit pattern survives f32 and back unchanged; NaN stays NaN. */
static void test_roundtrip_exhaustive(void **state)
{
    (void)state;
    kvz_isa lv[TU_MAX_LEVELS];
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
                if (is_nan16((uint16_t)i, (kvz_dtype)dt)) {
                    if (!is_nan16(back[i], (kvz_dtype)dt))
                        fail_msg("%s %s NaN 0x%04x -> 0x%04x", kvz_isa_name(lv[l]), dt_name[dt], i, back[i]);
                } else if (back[i] != all[i]) {
                    fail_msg("%s %s: 0x%04x -> %g -> 0x%04x", kvz_isa_name(lv[l]), dt_name[dt], i, f[i],
                             back[i]);
                }
            }
        }
    }
    free(all), free(back), free(f);
}

/* bf16 <-> f16 directly, all 65536 sources each way (f16 -> bf16 rounds, bf16 -> f16 rounds,
 * overflows and goes subnormal). */
static void test_cross_exhaustive(void **state)
{
    (void)state;
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    uint16_t *all = tu_malloc(65536 * 2), *out = tu_malloc(65536 * 2);
    for (uint32_t i = 0; i < 65536; i++)
        all[i] = (uint16_t)i;
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        assert_int_equal(kvz_convert(out, KVZ_DTYPE_F16, all, KVZ_DTYPE_BF16, 65536), KVZ_OK);
        check_converted(out, KVZ_DTYPE_F16, all, KVZ_DTYPE_BF16, 65536, kvz_isa_name(lv[l]));
        assert_int_equal(kvz_convert(out, KVZ_DTYPE_BF16, all, KVZ_DTYPE_F16, 65536), KVZ_OK);
        check_converted(out, KVZ_DTYPE_BF16, all, KVZ_DTYPE_F16, 65536, kvz_isa_name(lv[l]));
    }
    free(all), free(out);
}

/* f32 -> bf16/f16 at every rounding boundary: for every finite 16-bit value v and its successor
 * v+, the f32 values v, the midpoint (an exact tie), and the floats just below and above the
 * midpoint, both signs. The top value's successor is 2^(emax+1) (the overflow threshold). */
static void test_narrow_boundaries(void **state)
{
    (void)state;
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    const size_t cap = 0x8000 * 8;
    float *x = tu_malloc(cap * sizeof(float));
    uint16_t *got = tu_malloc(cap * 2);
    for (int dt = 1; dt <= 2; dt++) {
        const uint16_t top = dt == KVZ_DTYPE_BF16 ? 0x7f7f : 0x7bff;
        size_t n = 0;
        for (uint32_t h = 0; h <= top; h++) {
            const double v = ref_value((uint16_t)h, (kvz_dtype)dt);
            const double v1 = h == top ? ldexp(1.0, dt == KVZ_DTYPE_BF16 ? 128 : 16)
                                       : ref_value((uint16_t)(h + 1), (kvz_dtype)dt);
            const double mid = (v + v1) / 2;
            const float mf = (float)mid;
            assert_true((double)mf == mid); /* the tie is a float */
            const float c[4] = {(float)v, mf, nextafterf(mf, 0.0f), nextafterf(mf, INFINITY)};
            for (int i = 0; i < 4; i++) {
                x[n++] = c[i];
                x[n++] = -c[i];
            }
        }
        for (size_t l = 0; l < nl; l++) {
            tu_force(lv[l]);
            assert_int_equal(kvz_convert(got, (kvz_dtype)dt, x, KVZ_DTYPE_F32, n), KVZ_OK);
            check_converted(got, (kvz_dtype)dt, x, KVZ_DTYPE_F32, n, kvz_isa_name(lv[l]));
        }
    }
    free(x), free(got);
}

/* f32 -> bf16/f16 over a sweep of 2^20 bit patterns spread over the whole 32-bit space (every
 * sign, exponent, f32 subnormals, infinities and NaNs), plus the f32 specials. */
static void test_narrow_sweep(void **state)
{
    (void)state;
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    const size_t n = (tu_quick() ? 1u << 16 : 1u << 20) + 12;
    float *x = tu_malloc(n * sizeof(float));
    uint16_t *got = tu_malloc(n * 2);
    size_t i = 0;
    for (; i + 12 < n; i++)
        x[i] = f32_of_bits((uint32_t)i * 0x9e3779b1u); /* odd multiplier: distinct patterns */
    const uint32_t specials[12] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u,
                                   0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x00000001u,
                                   0x807fffffu, 0x7f7fffffu, 0xff7fffffu, 0x7fffffffu};
    for (int s = 0; s < 12; s++)
        x[i++] = f32_of_bits(specials[s]);
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (int dt = 1; dt <= 2; dt++) {
            assert_int_equal(kvz_convert(got, (kvz_dtype)dt, x, KVZ_DTYPE_F32, n), KVZ_OK);
            check_converted(got, (kvz_dtype)dt, x, KVZ_DTYPE_F32, n, kvz_isa_name(lv[l]));
        }
    }
    free(x), free(got);
}

/* Random values of a dtype, with the edge cases of every format mixed in. */
static void fill_mixed(tu_rng *r, void *p, kvz_dtype dt, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float f;
        switch (tu_range(r, 0, 9)) {
        case 0:
            f = ldexpf(tu_uniform(r, 1, 2), (int)tu_range(r, 0, 40) - 30);
            break; /* f16 subnormal .. normal */
        case 1: f = f32_of_bits(((uint32_t)tu_next(r) & 0xffff0000u) | 0x8000u); break; /* exact bf16 ties */
        case 2: f = (float)(1.0 + (2.0 * (double)tu_range(r, 0, 1023) + 1.0) / 2048.0); break; /* f16 ties */
        case 3: f = tu_uniform(r, 60000, 70000); break; /* f16 overflow */
        case 4: f = (i & 1) ? INFINITY : -INFINITY; break;
        case 5: f = (i & 1) ? 0.0f : -0.0f; break;
        case 6: f = f32_of_bits((uint32_t)tu_next(r)); break;               /* anything, NaN included */
        case 7: f = f32_of_bits((uint32_t)tu_next(r) & 0x807fffffu); break; /* f32 subnormal */
        default: f = tu_uniform(r, -3, 3); break;
        }
        if (dt == KVZ_DTYPE_F32)
            ((float *)p)[i] = f;
        else if (tu_range(r, 0, 3) == 0)
            ((uint16_t *)p)[i] = (uint16_t)tu_next(r); /* any pattern, NaNs included */
        else
            ((uint16_t *)p)[i] = isnan(f) ? (dt == KVZ_DTYPE_BF16 ? 0x7fc1 : 0x7e01) : ref_narrow(f, dt);
    }
}

/* Every pair of dtypes, every length 1..67 (vector bodies and every tail of every level), at
 * element offsets 0..3 (unaligned): the values, and nothing written outside dst[0..n). */
static void test_all_pairs_lengths(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 30);
    enum { PAD = 8, MAXN = 67, OFFS = 4 };
    unsigned char src[3][(MAXN + OFFS) * 4], dst[(MAXN + OFFS + 2 * PAD) * 4];
    for (int s = 0; s < 3; s++)
        fill_mixed(&r, src[s], (kvz_dtype)s, MAXN + OFFS);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    char what[64];
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (int s = 0; s < 3; s++)
            for (int d = 0; d < 3; d++) {
                const size_t ss = tu_dtype_size((kvz_dtype)s), ds = tu_dtype_size((kvz_dtype)d);
                for (size_t off = 0; off < OFFS; off++)
                    for (size_t n = 1; n <= MAXN; n++) {
                        memset(dst, 0xa5, sizeof dst);
                        unsigned char *out = dst + (PAD + off) * ds;
                        const unsigned char *in = src[s] + off * ss;
                        assert_int_equal(kvz_convert(out, (kvz_dtype)d, in, (kvz_dtype)s, n), KVZ_OK);
                        snprintf(what, sizeof what, "%s n %zu offset %zu", kvz_isa_name(lv[l]), n, off);
                        check_converted(out, (kvz_dtype)d, in, (kvz_dtype)s, n, what);
                        for (size_t b = 0; b < sizeof dst; b++)
                            if ((dst + b < out || dst + b >= out + n * ds) && dst[b] != 0xa5)
                                fail_msg("%s %s->%s: byte %td outside dst written", what, dt_name[s],
                                         dt_name[d], (ptrdiff_t)(dst + b - out));
                    }
            }
    }
}

/* Buffers at any byte address (GGUF with general.alignment 1 places F16 tensors at odd bytes):
 * every pair, lengths 1..67, source and destination at byte offsets 1..3, on every level. The
 * data is copied to and from aligned arrays so that only the library touches unaligned memory. */
static void test_any_byte_address(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 32);
    enum { MAXN = 67 };
    float src[3][MAXN], dst[MAXN];
    unsigned char in_buf[MAXN * 4 + 8], out_buf[MAXN * 4 + 8];
    for (int s = 0; s < 3; s++)
        fill_mixed(&r, src[s], (kvz_dtype)s, MAXN);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    char what[64];
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (int s = 0; s < 3; s++)
            for (int d = 0; d < 3; d++) {
                const size_t ss = tu_dtype_size((kvz_dtype)s), ds = tu_dtype_size((kvz_dtype)d);
                for (size_t off = 1; off < 4; off++)
                    for (size_t n = 1; n <= MAXN; n++) {
                        memcpy(in_buf + off, src[s], n * ss);
                        assert_int_equal(
                            kvz_convert(out_buf + 4 - off, (kvz_dtype)d, in_buf + off, (kvz_dtype)s, n),
                            KVZ_OK);
                        memcpy(dst, out_buf + 4 - off, n * ds);
                        snprintf(what, sizeof what, "%s n %zu byte offsets %zu/%zu", kvz_isa_name(lv[l]), n,
                                 off, 4 - off);
                        check_converted(dst, (kvz_dtype)d, src[s], (kvz_dtype)s, n, what);
                    }
            }
    }
}

/* Long arrays of every pair (bf16 <-> f16 goes through a bounded buffer in blocks). */
static void test_all_pairs_long(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 31);
    const size_t n = 5000;
    void *src[3], *dst = tu_malloc(n * 4);
    for (int s = 0; s < 3; s++) {
        src[s] = tu_malloc(n * 4);
        fill_mixed(&r, src[s], (kvz_dtype)s, n);
    }
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (int s = 0; s < 3; s++)
            for (int d = 0; d < 3; d++) {
                assert_int_equal(kvz_convert(dst, (kvz_dtype)d, src[s], (kvz_dtype)s, n), KVZ_OK);
                check_converted(dst, (kvz_dtype)d, src[s], (kvz_dtype)s, n, kvz_isa_name(lv[l]));
            }
    }
    for (int s = 0; s < 3; s++)
        free(src[s]);
    free(dst);
}

/* The same pointer with the same type (allowed) leaves the data as it was, NaN payloads too. */
static void test_in_place(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 32);
    const size_t n = 300;
    unsigned char a[300 * 4], b[300 * 4];
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        for (int dt = 0; dt < 3; dt++) {
            fill_mixed(&r, a, (kvz_dtype)dt, n);
            memcpy(b, a, sizeof a);
            assert_int_equal(kvz_convert(a, (kvz_dtype)dt, a, (kvz_dtype)dt, n), KVZ_OK);
            assert_memory_equal(a, b, n * tu_dtype_size((kvz_dtype)dt));
        }
    }
}

static void test_invalid(void **state)
{
    (void)state;
    float f[4] = {1, 2, 3, 4};
    uint16_t h[4] = {0x3f80, 0x4000, 0x4040, 0x4080};
    const float f0[4] = {1, 2, 3, 4};
    assert_int_equal(kvz_convert(NULL, KVZ_DTYPE_F32, h, KVZ_DTYPE_BF16, 4), KVZ_ERR_NULL);
    assert_true(strlen(kvz_last_error()) > 0);
    assert_int_equal(kvz_convert(f, KVZ_DTYPE_F32, NULL, KVZ_DTYPE_BF16, 4), KVZ_ERR_NULL);
    assert_int_equal(kvz_convert(NULL, KVZ_DTYPE_F16, NULL, KVZ_DTYPE_F32, 1), KVZ_ERR_NULL);
    assert_int_equal(kvz_convert(f, (kvz_dtype)3, h, KVZ_DTYPE_BF16, 4), KVZ_ERR_INVALID_ARG);
    assert_true(strstr(kvz_last_error(), "kvz_convert") != NULL);
    assert_int_equal(kvz_convert(f, KVZ_DTYPE_F32, h, (kvz_dtype)-1, 4), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_convert(f, KVZ_DTYPE_F32, h, (kvz_dtype)99, 4), KVZ_ERR_INVALID_ARG);
    assert_memory_equal(f, f0, sizeof f); /* a refused call writes nothing */
    /* n = 0 is a no-op that succeeds, whatever the pointers */
    assert_int_equal(kvz_convert(NULL, KVZ_DTYPE_F32, NULL, KVZ_DTYPE_BF16, 0), KVZ_OK);
    assert_int_equal(kvz_convert(f, KVZ_DTYPE_BF16, f0, KVZ_DTYPE_F32, 0), KVZ_OK);
    assert_memory_equal(f, f0, sizeof f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_selfcheck),
        cmocka_unit_test(test_widen_exhaustive),
        cmocka_unit_test(test_roundtrip_exhaustive),
        cmocka_unit_test(test_cross_exhaustive),
        cmocka_unit_test(test_narrow_boundaries),
        cmocka_unit_test(test_narrow_sweep),
        cmocka_unit_test(test_all_pairs_lengths),
        cmocka_unit_test(test_all_pairs_long),
        cmocka_unit_test(test_any_byte_address),
        cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
