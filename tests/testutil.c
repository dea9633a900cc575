/* Helpers shared by the cmocka tests: random numbers, ISA levels, K/V buffers, tolerances. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tu_rng_init(tu_rng *r, uint64_t seed) { r->s = seed ^ 0x9e3779b97f4a7c15ull; }

uint64_t tu_next(tu_rng *r) /* splitmix64 */
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float tu_uniform(tu_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)((tu_next(r) >> 40) * (1.0 / 16777216.0));
}

double tu_normal(tu_rng *r)
{
    const double u1 = ((tu_next(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    const double u2 = (tu_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

size_t tu_range(tu_rng *r, size_t lo, size_t hi) { return lo + (size_t)(tu_next(r) % (hi - lo + 1)); }

uint64_t tu_seed(void)
{
    static int printed;
    const char *e = getenv("KVZ_TEST_SEED");
    const uint64_t s = e && *e ? strtoull(e, NULL, 0) : 20261123u;
    if (!printed) {
        fprintf(stderr, "test seed %llu (set KVZ_TEST_SEED to replay)\n", (unsigned long long)s);
        printed = 1;
    }
    return s;
}

int tu_quick(void)
{
    const char *e = getenv("KVZ_TEST_QUICK");
    return e && *e && strcmp(e, "0") != 0;
}

size_t tu_isa_levels(kvz_isa out[8])
{
    static const kvz_isa all[] = {KVZ_ISA_GENERIC, KVZ_ISA_AVX2, KVZ_ISA_AVX512, KVZ_ISA_NEON};
    static int printed;
    size_t n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (kvz_isa_supported(all[i]))
            out[n++] = all[i];
    if (!printed) { /* the log says which kernel levels this run checked */
        fprintf(stderr, "kernel levels tested:");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %s", kvz_isa_name(out[i]));
        fprintf(stderr, "\n");
        printed = 1;
    }
    return n;
}

void tu_force(kvz_isa isa)
{
    const kvz_status st = kvz_isa_force(isa);
    if (st != KVZ_OK)
        fail_msg("kvz_isa_force(%s): %s (%s)", kvz_isa_name(isa), kvz_strerror(st), kvz_last_error());
}

size_t tu_dtype_size(kvz_dtype dt) { return dt == KVZ_DTYPE_F32 ? 4 : 2; }

void *tu_malloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}

void *tu_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    assert_non_null(p);
    return p;
}

void *tu_fill_kv(tu_rng *r, kvz_dtype dt, size_t n, float lo, float hi, double *exact)
{
    float *f = tu_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        f[i] = tu_uniform(r, lo, hi);
    void *out = tu_malloc(n * tu_dtype_size(dt));
    assert_int_equal(kvz_convert(out, dt, f, KVZ_DTYPE_F32, n), KVZ_OK);
    if (exact) { /* the stored values, read back exactly */
        assert_int_equal(kvz_convert(f, KVZ_DTYPE_F32, out, dt, n), KVZ_OK);
        for (size_t i = 0; i < n; i++)
            exact[i] = f[i];
    }
    free(f);
    return out;
}

/*
 * The oracle gets exactly the stored K/V values, so the storage type does not change what
 * is compared: the error is fp32 accumulation over d products and up to n_k softmax terms
 * plus SLEEF's 1-ULP exp. With inputs in [-1, 1) and d <= 256, logits are O(1..10) and the
 * outputs are convex combinations of values in [-1, 1): 2e-5 absolute covers fp32 (~1e-7
 * per operation times a few hundred accumulation steps) with margin and still catches any
 * real mistake (a wrong key, a lost rescale, an off-by-one mask all give errors >> 1e-3).
 */
double tu_tol(kvz_dtype dt)
{
    (void)dt;
    return 2e-5;
}

void tu_assert_close(const float *got, const double *want, size_t n, double atol, double rtol, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        const double g = got[i], w = want[i];
        const double err = fabs(g - w);
        if (isnan(g) || isnan(w) || !(err <= atol + rtol * fabs(w)))
            fail_msg("%s: index %zu: got %.9g, want %.9g (error %.3g > %.3g)", what, i, g, w, err,
                     atol + rtol * fabs(w));
    }
}
