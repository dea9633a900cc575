/* Helpers shared by the cmocka tests: random numbers, ISA levels, K/V buffers, tolerances. */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/model_dir.h"

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
    const double u = (double)(tu_next(r) >> 40) * (1.0 / 16777216.0); /* [0, 1), 24 bits */
    float f = (float)((double)lo + ((double)hi - (double)lo) * u);
    if (f >= hi && hi > lo)
        f = nextafterf(hi, lo);
    return f;
}

double tu_normal(tu_rng *r)
{
    const double u1 = ((double)(tu_next(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0); /* (0, 1] */
    const double u2 = (double)(tu_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

size_t tu_range(tu_rng *r, size_t lo, size_t hi) { return lo + (size_t)(tu_next(r) % (uint64_t)(hi - lo + 1)); }

uint64_t tu_seed(void)
{
    static int printed;
    const char *e = getenv("KVZ_TEST_SEED");
    const uint64_t s = e && *e ? (uint64_t)strtoull(e, NULL, 0) : 20261123u;
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

size_t tu_isa_levels(kvz_isa out[TU_MAX_LEVELS])
{
    static const kvz_isa all[TU_MAX_LEVELS] = {KVZ_ISA_GENERIC,     KVZ_ISA_AVX2, KVZ_ISA_AVX512,
                                               KVZ_ISA_AVX512_BF16, KVZ_ISA_AMX,  KVZ_ISA_NEON};
    static int printed;
    size_t n = 0;
    for (size_t i = 0; i < TU_MAX_LEVELS; i++)
        if (kvz_isa_supported(all[i]))
            out[n++] = all[i];
    assert_true(n >= 1 && out[0] == KVZ_ISA_GENERIC); /* the portable level always runs */
    if (!printed) {                                   /* the log says which kernel levels this run checked */
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
    assert_int_equal(st, KVZ_OK);
    assert_int_equal(kvz_isa_active(), isa);
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

/*
 * Rounding to a binary format with p significant bits and smallest normal exponent emin,
 * to nearest even, in double (exact: the scalings are powers of two and nearbyint rounds
 * to even in the default mode). Written independently of the library's converters so the
 * kernels' in-register bf16/f16 loads are checked against a second implementation.
 */
static double round_sig(double x, int p, int emin)
{
    if (x == 0.0)
        return 0.0;
    int e;
    (void)frexp(x, &e); /* x = m 2^e, 0.5 <= |m| < 1: the leading bit has weight 2^(e-1) */
    const int lead = e - 1 < emin ? emin : e - 1;
    const double quantum = ldexp(1.0, lead - (p - 1));
    return nearbyint(x / quantum) * quantum;
}

double tu_round_bf16(double x) { return round_sig(x, 8, -126); }

static uint16_t encode_bf16(double y)
{
    const float f = (float)y;
    uint32_t u;
    memcpy(&u, &f, 4);
    assert_true((u & 0xffffu) == 0); /* y is representable */
    return (uint16_t)(u >> 16);
}

static uint16_t encode_f16(double y)
{
    const uint16_t sign = y < 0 || (y == 0 && signbit(y)) ? 0x8000u : 0;
    const double a = fabs(y);
    assert_true(a <= 65504.0);
    if (a == 0.0)
        return sign;
    if (a < ldexp(1.0, -14)) { /* subnormal: multiples of 2^-24 */
        const double m = a * 16777216.0;
        assert_true(m == floor(m) && m < 1024.0);
        return (uint16_t)(sign | (uint16_t)m);
    }
    int e;
    (void)frexp(a, &e);
    const int E = e - 1;
    const double mant = (ldexp(a, -E) - 1.0) * 1024.0;
    assert_true(mant == floor(mant) && mant >= 0 && mant < 1024.0);
    return (uint16_t)(sign | (uint16_t)((E + 15) << 10) | (uint16_t)mant);
}

void *tu_fill_kv(tu_rng *r, kvz_dtype dt, size_t n, float lo, float hi, double *exact)
{
    void *out = tu_malloc(n * tu_dtype_size(dt));
    for (size_t i = 0; i < n; i++) {
        const float x = tu_uniform(r, lo, hi);
        double y;
        switch (dt) {
        case KVZ_DTYPE_F32:
            y = x;
            ((float *)out)[i] = x;
            break;
        case KVZ_DTYPE_BF16:
            y = round_sig(x, 8, -126);
            ((uint16_t *)out)[i] = encode_bf16(y);
            break;
        case KVZ_DTYPE_F16:
            y = round_sig(x, 11, -14);
            ((uint16_t *)out)[i] = encode_f16(y);
            break;
        default: fail_msg("tu_fill_kv: unknown dtype %d", (int)dt); return NULL;
        }
        if (exact)
            exact[i] = y;
    }
    return out;
}

/*
 * Tolerance of attention outputs (and of the decode outputs) against the double oracle.
 *
 * The oracle reads exactly the values the kernel reads (tu_fill_kv hands it the stored
 * bf16/f16/f32 values), so the storage type adds no error and the same tolerance serves
 * every dtype. What remains is the kernel's fp32 arithmetic: the logits are d-term fp32
 * dot products (relative error ~ sqrt(d) * 6e-8, i.e. ~1e-6 absolute for the logits of at
 * most ~10 the tests use), SLEEF's expf is within 1 ULP (1.2e-7 relative), and the softmax
 * sum and P.V accumulate up to a few thousand terms blockwise in fp32 (~sqrt(n) * 6e-8
 * relative, a few 1e-6). The outputs are convex combinations of V rows in [-1, 1], so
 * these relative errors are also absolute errors in units of max|V| = 1: the observed
 * error stays below ~3e-6, and 2e-5 leaves a wide margin. Real mistakes are far larger:
 * dropping one key of a key block, a missing rescale, an off-by-one causal mask or a
 * bf16-rounded query change outputs by 1e-4 .. 1e-1 (the tests shape their inputs so that
 * softmaxes are peaked enough for this to hold).
 */
double tu_tol_at(kvz_isa isa, kvz_dtype dt)
{
    /* The avx512bf16 and amx levels round the probabilities to bf16 for P.V over bf16 V
     * (relative error at most 2^-8 each): the output, a weighted mean of V rows, moves by at
     * most 2^-8 max|V|. */
    const int bf16_level = isa == KVZ_ISA_AVX512_BF16 || isa == KVZ_ISA_AMX;
    const double p_rounding = bf16_level && dt == KVZ_DTYPE_BF16 ? 1.0 / 256 : 0.0;
    return 2e-5 + p_rounding;
}

double tu_tol(kvz_dtype dt) { return tu_tol_at(kvz_isa_active(), dt); }

float tu_query(tu_rng *r, float lo, float hi, kvz_dtype dt)
{
    const float x = tu_uniform(r, lo, hi);
    return dt == KVZ_DTYPE_BF16 ? (float)tu_round_bf16(x) : x;
}

void tu_assert_close(const float *got, const double *want, size_t n, double atol, double rtol, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        const double g = got[i], w = want[i];
        if (g == w) /* also equal infinities */
            continue;
        const double err = fabs(g - w), lim = atol + rtol * fabs(w);
        if (isnan(g) || isnan(w) || !(err <= lim))
            fail_msg("%s: index %zu: got %.9g, want %.9g (error %.3g > %.3g)", what ? what : "", i, g, w, err,
                     lim);
    }
}

static double worst_ratio, t_start;

static double tu_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static char worst_what[600];

void tu_check_close(const float *got, const double *want, size_t n, double atol, double rtol, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if ((double)got[i] == want[i])
            continue;
        const double ratio = fabs((double)got[i] - want[i]) / (atol + rtol * fabs(want[i]));
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            snprintf(worst_what, sizeof worst_what, "%s", what ? what : "");
        }
    }
    tu_assert_close(got, want, n, atol, rtol, what);
}

int tu_setup_clock(void **state)
{
    (void)state;
    worst_ratio = 0;
    worst_what[0] = '\0';
    t_start = tu_wall();
    return 0;
}

int tu_teardown_report(void **state)
{
    (void)state;
    const char *e = getenv("KVZ_TEST_VERBOSE");
    if (e && *e && strcmp(e, "0") != 0)
        fprintf(stderr, "  %.2f s, worst error / tolerance: %.3g (%s)\n", tu_wall() - t_start,
                worst_ratio, worst_what);
    return 0;
}

static const uint32_t SENTINEL = 0x7fc0beefu;

void tu_fill_sentinel(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        memcpy(p + i, &SENTINEL, 4);
}

int tu_is_sentinel(const float *p)
{
    uint32_t u;
    memcpy(&u, p, 4);
    return u == SENTINEL;
}

unsigned char *tu_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = tu_malloc(*n + 1);
    assert_int_equal(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

void tu_spit(const char *path, const unsigned char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

int tu_in_ci(void)
{
    const char *ci = getenv("CI");
    return ci && *ci && strcmp(ci, "0") && strcmp(ci, "false");
}

int tu_models_tier_off(void)
{
    const char *e = getenv("KVZ_TEST_MODELS");
    return e && !strcmp(e, "0");
}

/* NULL after saying why the test skips; under CI, where everything a test needs is installed, a
 * missing file fails the test instead. In `make check` (KVZ_TEST_MODELS=0) every case that needs a
 * model or a shared file skips: `make check-models` runs it. */
static const char *readable_or_skip(const char *path, const char *why)
{
    if (tu_models_tier_off()) {
        fprintf(stderr, "%s: skipping, a case of the model tier (make check-models runs it)\n", path);
        return NULL;
    }
    if (access(path, R_OK) == 0)
        return path;
    if (tu_in_ci())
        fail_msg("%s is absent under CI (%s)", path, why);
    fprintf(stderr, "%s is absent: skipping (%s)\n", path, why);
    return NULL;
}

const char *tu_shared_file(const char *relative)
{
    static char path[1024];
    const char *dir = getenv("KVZ_SHARED_DIR"); /* the environment's first: make distcheck sets it */
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : KVZ_SHARED_DIR, relative);
    return readable_or_skip(path, "tests read the shared models and evaluation sets from ../shared");
}

const char *tu_model_file(const char *file)
{
    static char path[1024];
    kvz_model_cache_path(file, path, sizeof path);
    return readable_or_skip(path, ".ci/fetch-models downloads the real models into this cache");
}

static char tmpdir[64];

int tu_tmpdir_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kvz-test-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

int tu_tmpdir_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

const char *tu_tmpdir(void) { return tmpdir; }

void tu_tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

typedef struct tu_thread {
    pthread_barrier_t *start;
    void (*fn)(void *ctx, size_t i);
    void *ctx;
    size_t i;
} tu_thread;

static void *tu_thread_main(void *arg)
{
    const tu_thread *t = arg;
    pthread_barrier_wait(t->start);
    t->fn(t->ctx, t->i);
    return NULL;
}

void tu_run_threads(size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
{
    if (n == 0)
        return;
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, (unsigned)n), 0);
    pthread_t *id = tu_malloc(n * sizeof *id);
    tu_thread *t = tu_malloc(n * sizeof *t);
    for (size_t i = 0; i < n; i++) {
        t[i] = (tu_thread){&start, fn, ctx, i};
        assert_int_equal(pthread_create(&id[i], NULL, tu_thread_main, &t[i]), 0);
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pthread_join(id[i], NULL), 0);
    pthread_barrier_destroy(&start);
    free(id), free(t);
}

void tu_first_call_in_child(const char *var, const char *value, int (*first)(void), tu_child *out)
{
    memset(out, 0, sizeof *out);
    int res[2], err[2];
    if (pipe(res) != 0 || pipe(err) != 0)
        return;
    fflush(stdout), fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0)
        return;
    if (pid == 0) {
        close(res[0]), close(err[0]);
        dup2(err[1], 2);
        if (value)
            setenv(var, value, 1);
        else
            unsetenv(var);
        tu_child r = {.ok = 1};
        r.value = first();
        snprintf(r.last_error, sizeof r.last_error, "%s", kvz_last_error());
        if (write(res[1], &r, sizeof r) != (ssize_t)sizeof r)
            _exit(1);
        fflush(stderr);
        _exit(0);
    }
    close(res[1]), close(err[1]);
    tu_child r;
    const ssize_t got = read(res[0], &r, sizeof r);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < sizeof out->stderr_text &&
           (k = read(err[0], out->stderr_text + n, sizeof out->stderr_text - 1 - n)) > 0)
        n += (size_t)k;
    out->stderr_text[n] = '\0';
    int status = 0;
    waitpid(pid, &status, 0);
    close(res[0]), close(err[0]);
    if (got == (ssize_t)sizeof r && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        out->ok = 1, out->value = r.value;
        memcpy(out->last_error, r.last_error, sizeof r.last_error);
    }
}
