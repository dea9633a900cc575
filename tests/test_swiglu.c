/* The feed-forward gate kernels (kernel table's swiglu and geglu) at every level, and kvz_swiglu
 * and kvz_geglu over threads, against silu(g) * u and gelu_tanh(g) * u computed in double. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "testutil.h"

/* SLEEF's exp is within 1 ulp; the sum, the division and the product round once each. */
#define RTOL 6e-7
/* Below g = -88.7, e^-g overflows in float and the formula gives a signed zero where the
 * true value is still up to ~2.6e-37 |u| (|u| <= 4 here): the absolute bound covers that (as
 * it does the subnormal results just above), far below anything an activation carries. */
#define ATOL 2e-36

typedef void (*gate_fn_t)(float *g, const float *u, size_t n);

static double ref_swiglu(float g, float u) { return (double)g / (1.0 + exp(-(double)g)) * (double)u; }

/* A gate, its double reference, where its inputs are drawn (one in ten from each tail, the rest
 * from [-mid, mid]) and its relative tolerance. */
typedef struct gate_case {
    const char *name;
    double (*ref)(float g, float u);
    float left_lo, left_hi, right_lo, right_hi, mid;
    double rtol;
} gate_case;

/* One gate kernel on n elements at offset `off` into an array (so that vectors also start
 * unaligned), against the double reference; the elements around the range stay untouched. */
static void check_gate(const gate_case *c, gate_fn_t fn, const char *level, tu_rng *r, size_t n, size_t off)
{
    float *g = tu_malloc((n + off + 8) * sizeof *g), *u = tu_malloc((n + off + 8) * sizeof *u);
    double *want = tu_malloc((n ? n : 1) * sizeof *want);
    for (size_t i = 0; i < n + off + 8; i++) {
        const size_t kind = tu_range(r, 0, 9);
        g[i] = kind == 0   ? tu_uniform(r, c->left_lo, c->left_hi)
               : kind == 1 ? tu_uniform(r, c->right_lo, c->right_hi)
                           : tu_uniform(r, -c->mid, c->mid);
        u[i] = tu_uniform(r, -4.0f, 4.0f);
    }
    for (size_t i = 0; i < n; i++)
        want[i] = c->ref(g[off + i], u[off + i]);
    const float before = g[off + n], first = off ? g[off - 1] : 0.0f;
    fn(g + off, u + off, n);
    char what[96];
    snprintf(what, sizeof what, "%s %s n %zu off %zu", level, c->name, n, off);
    tu_assert_close(g + off, want, n, ATOL, c->rtol, what);
    assert_true(g[off + n] == before);
    if (off)
        assert_true(g[off - 1] == first);
    free(g), free(u), free(want);
}

/* gates over the whole range a model sees, and beyond: silu's left tail underflows */
static const gate_case SWIGLU = {"swiglu", ref_swiglu, -110.0f, -80.0f, 20.0f, 90.0f, 12.0f, RTOL};

/* lengths around every vector width (4, 8, 16 floats) and long runs */
static const size_t lens[] = {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000, 4099};

static void check_level(const kvz_kernel_table *kt, tu_rng *r, size_t n, size_t off)
{
    check_gate(&SWIGLU, kt->swiglu, kt->name, r, n, off);
}

static void test_levels(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 40);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        const kvz_kernel_table *kt = kvz_kernels_for(lv[l]);
        assert_non_null(kt);
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
            for (size_t off = 0; off < 3; off++)
                check_level(kt, &r, lens[i], off);
    }
}

/* Values at the edges: zeros of both signs, the largest gates, where e^-g overflows (g below
 * -88.7: silu is then x / inf, a signed zero, never NaN), infinities and NaN as the formula
 * gives them in IEEE arithmetic. */
static void test_edges(void **state)
{
    (void)state;
    static const float gs[] = {0.0f,    -0.0f,  1e-30f, -1e-30f, 88.0f,  -88.0f,   -89.0f,
                               -100.0f, -1e30f, 1e30f,  3e38f,   -3e38f, INFINITY, NAN};
    enum { N = sizeof gs / sizeof gs[0] };
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        const kvz_kernel_table *kt = kvz_kernels_for(lv[l]);
        /* 2 N + 1 elements: with 16 lanes every value lands once in a vector and once in the
           scalar tail; narrower levels put more of them in vectors */
        float g[2 * N + 1], u[2 * N + 1];
        for (size_t i = 0; i < 2 * N + 1; i++)
            g[i] = gs[i % N], u[i] = i % 3 ? 1.5f : -2.0f;
        kt->swiglu(g, u, 2 * N + 1);
        for (size_t i = 0; i < 2 * N + 1; i++) {
            const float x = gs[i % N], uu = i % 3 ? 1.5f : -2.0f;
            const double want = ref_swiglu(x, uu);
            if (isnan(x)) {
                assert_true(isnan(g[i]));
            } else if (x < -88.8f) { /* e^-x overflows in float: a zero (the double reference is tiny) */
                assert_true(g[i] == 0.0f && !isnan(g[i]));
            } else if (isinf(want) || fabs(want) > 3.4e38) {
                assert_true(isinf(g[i]) && (g[i] > 0) == (want > 0));
            } else if (fabs(g[i] - want) > RTOL * fabs(want) + ATOL) {
                fail_msg("%s swiglu(%g, %g): got %.9g, want %.9g", kt->name, (double)x, (double)uu,
                         (double)g[i], want);
            }
        }
    }
}

/* kvz_swiglu splits a long array over the threads: every element as the kernel gives it. */
static void test_threads(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 41);
    const size_t n = 3 * 16384 + 123;
    float *g = tu_malloc(n * sizeof *g), *u = tu_malloc(n * sizeof *u);
    double *want = tu_malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++) {
        g[i] = tu_uniform(&r, -10.0f, 10.0f), u[i] = tu_uniform(&r, -3.0f, 3.0f);
        want[i] = ref_swiglu(g[i], u[i]);
    }
    kvz_swiglu(g, u, n);
    tu_assert_close(g, want, n, ATOL, RTOL, "kvz_swiglu");
    kvz_swiglu(g, u, 0); /* nothing to do, nothing touched */
    free(g), free(u), free(want);
}

/* ---- GELU (tanh approximation), Gemma's gate ---- */

/* 0.5 x (1 + tanh(t)) = x / (1 + e^(-2t)), t = sqrt(2/pi) (x + 0.044715 x^3), in double (the
 * second form: 1 + tanh(t) cancels for t << 0). */
static double ref_geglu(float g, float u)
{
    const double x = g, t = sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
    return x / (1.0 + exp(-2.0 * t)) * (double)u;
}

/* The kernel rounds t in fp32 (a few ulp), and e^(-2t) carries that error times |2t|: up to
 * 87 where the result is still a normal float, so ~1.6e-5 relative at the far left; ATOL as
 * for silu covers the results that underflow. */
#define GELU_RTOL 2e-5

static const gate_case GEGLU = {"geglu", ref_geglu, -30.0f, -8.0f, 8.0f, 90.0f, 6.0f, GELU_RTOL};

static void test_geglu(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 42);
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    for (size_t l = 0; l < nl; l++) {
        const kvz_kernel_table *kt = kvz_kernels_for(lv[l]);
        assert_non_null(kt);
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
            for (size_t off = 0; off < 3; off++)
                check_gate(&GEGLU, kt->geglu, kt->name, &r, lens[i], off);
        /* the far ends: a signed zero on the left (never NaN), x u on the right, NaN stays NaN */
        float g[4] = {-3e38f, 3e30f, -0.0f, NAN}, u[4] = {2.0f, 1.0f, 1.0f, 1.0f};
        kt->geglu(g, u, 4);
        assert_true(g[0] == 0.0f && !isnan(g[0]));
        assert_true(g[1] == 3e30f);
        assert_true(g[2] == 0.0f);
        assert_true(isnan(g[3]));
    }
    check_gate(&GEGLU, kvz_geglu, "kvz_geglu", &r, 3 * 16384 + 123, 1); /* split over the threads */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_geglu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
