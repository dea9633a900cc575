/* ISA dispatch: the pure chooser, KVZ_ISA in fresh processes, racing first calls, forcing, and the tables. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include "core/internal.h"
#include "testutil.h"

#define M(i) (1u << (i))

/* The rule kvz_isa_choose must follow: the best level of the mask (amx > avx512bf16 > avx512 >
 * avx2 > neon > generic) unless the name is a level of the mask. */
static kvz_isa best_of(unsigned mask)
{
    return (mask & M(KVZ_ISA_AMX))           ? KVZ_ISA_AMX
           : (mask & M(KVZ_ISA_AVX512_BF16)) ? KVZ_ISA_AVX512_BF16
           : (mask & M(KVZ_ISA_AVX512))      ? KVZ_ISA_AVX512
           : (mask & M(KVZ_ISA_AVX2))        ? KVZ_ISA_AVX2
           : (mask & M(KVZ_ISA_NEON))        ? KVZ_ISA_NEON
                                             : KVZ_ISA_GENERIC;
}

/* -1: not a level name; else the level (any case). */
static int level_of_name(const char *s)
{
    static const char *const names[] = {"generic", "avx2", "avx512", "neon", "avx512bf16", "amx"};
    for (int i = 0; i < 6; i++) {
        size_t c = 0;
        while (s[c] && names[i][c] && tolower((unsigned char)s[c]) == names[i][c])
            c++;
        if (!s[c] && !names[i][c])
            return i;
    }
    return -1;
}

static const char *const envs[] = {
    NULL,      "",       "generic", "GENERIC",    "Generic",    "avx2",        "AVX2",     "aVx2",
    "avx512",  "AVX512", "Avx512",  "avx512bf16", "AVX512BF16", "avx512_bf16", "neon",     "NEON",
    "NeOn",    "sse42",  "avx",     "avx2 ",      " avx2",      "avx-512",     "generic2", "x",
    "unknown", "0",      "1",       "amx",        "AMX",        "Amx",         "amx-bf16", "avx512amx"};

/* Every mask (all 64 subsets of the six levels) against every value of the variable. */
static void test_choose_all_combinations(void **state)
{
    (void)state;
    char msg[256];
    for (unsigned mask = 0; mask < 64; mask++)
        for (size_t e = 0; e < sizeof envs / sizeof envs[0]; e++) {
            const char *env = envs[e];
            memset(msg, 'Z', sizeof msg);
            const kvz_isa got = kvz_isa_choose(env, mask, msg, sizeof msg);
            const int lvl = env ? level_of_name(env) : -1;
            const int honoured = lvl >= 0 && (mask & M(lvl));
            const kvz_isa want = honoured ? (kvz_isa)lvl : best_of(mask);
            if (got != want)
                fail_msg("choose('%s', mask 0x%x) = %s, want %s", env ? env : "(unset)", mask,
                         kvz_isa_name(got), kvz_isa_name(want));
            assert_non_null(memchr(msg, '\0', sizeof msg));
            if (!env || !*env || honoured) {
                if (msg[0])
                    fail_msg("choose('%s', mask 0x%x): unexpected message '%s'", env ? env : "(unset)", mask,
                             msg);
            } else if (!strstr(msg, env)) { /* refused: a message naming the value */
                fail_msg("choose('%s', mask 0x%x): message '%s' does not name the value", env, mask, msg);
            }
        }
    /* the real machines' masks, spelled out */
    const unsigned x86 = M(KVZ_ISA_GENERIC) | M(KVZ_ISA_AVX2) | M(KVZ_ISA_AVX512);
    const unsigned arm = M(KVZ_ISA_GENERIC) | M(KVZ_ISA_NEON);
    assert_int_equal(kvz_isa_choose(NULL, x86, msg, sizeof msg), KVZ_ISA_AVX512);
    assert_int_equal(kvz_isa_choose(NULL, x86 | M(KVZ_ISA_AVX512_BF16), msg, sizeof msg), KVZ_ISA_AVX512_BF16);
    assert_int_equal(kvz_isa_choose("avx512", x86 | M(KVZ_ISA_AVX512_BF16), msg, sizeof msg), KVZ_ISA_AVX512);
    assert_int_equal(kvz_isa_choose("avx512bf16", x86, msg, sizeof msg), KVZ_ISA_AVX512);
    assert_true(strstr(msg, "avx512bf16") != NULL);
    const unsigned spr = x86 | M(KVZ_ISA_AVX512_BF16) | M(KVZ_ISA_AMX);
    assert_int_equal(kvz_isa_choose(NULL, spr, msg, sizeof msg), KVZ_ISA_AMX);
    assert_int_equal(kvz_isa_choose("avx512bf16", spr, msg, sizeof msg), KVZ_ISA_AVX512_BF16);
    assert_int_equal(kvz_isa_choose("amx", x86 | M(KVZ_ISA_AVX512_BF16), msg, sizeof msg), KVZ_ISA_AVX512_BF16);
    assert_true(strstr(msg, "amx") != NULL);
    assert_int_equal(kvz_isa_choose(NULL, arm, msg, sizeof msg), KVZ_ISA_NEON);
    assert_int_equal(kvz_isa_choose(NULL, M(0) | M(KVZ_ISA_AVX2), msg, sizeof msg), KVZ_ISA_AVX2);
    assert_int_equal(kvz_isa_choose(NULL, M(0), msg, sizeof msg), KVZ_ISA_GENERIC);
    assert_int_equal(kvz_isa_choose("AVX2", x86, msg, sizeof msg), KVZ_ISA_AVX2);
    assert_string_equal(msg, "");
    assert_int_equal(kvz_isa_choose("neon", x86, msg, sizeof msg), KVZ_ISA_AVX512);
    assert_true(strstr(msg, "neon") != NULL);
    assert_int_equal(kvz_isa_choose("avx512", arm, msg, sizeof msg), KVZ_ISA_NEON);
    assert_true(strstr(msg, "avx512") != NULL);
    assert_int_equal(kvz_isa_choose("avx512", M(0) | M(KVZ_ISA_AVX2), msg, sizeof msg), KVZ_ISA_AVX2);
    assert_true(strstr(msg, "avx512") != NULL);
}

/* The message never runs past msg_size (truncated, terminated), and msg_size 0 writes nothing. */
static void test_choose_message_bounds(void **state)
{
    (void)state;
    char buf[64];
    for (size_t size = 1; size <= 16; size++) {
        memset(buf, 'Z', sizeof buf);
        assert_int_equal(kvz_isa_choose("a-rather-long-unknown-level-name", M(0), buf, size), KVZ_ISA_GENERIC);
        assert_non_null(memchr(buf, '\0', size));
        for (size_t i = size; i < sizeof buf; i++)
            assert_int_equal(buf[i], 'Z');
    }
    memset(buf, 'Z', sizeof buf);
    assert_int_equal(kvz_isa_choose("bogus", M(0) | M(KVZ_ISA_AVX2), buf, 0), KVZ_ISA_AVX2);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 'Z');
}

/* ---- the live path, from main before any other libkvz call ---------------------------------------- */

/* KVZ_ISA values tried in fresh (forked) processes: what the first call chose, its stderr and
 * the last-error message of the thread that made it. */
typedef struct child_result {
    const char *env;
    tu_child r;
} child_result;

static child_result children[] = {{.env = "GeNeRiC"}, {.env = "avx2"}, {.env = "AVX512"}, {.env = "avx512bf16"},
                                  {.env = "amx"},     {.env = "neon"}, {.env = "sse9"},   {.env = ""}};
enum { N_CHILDREN = sizeof children / sizeof children[0] };

static int active_isa(void) { return (int)kvz_isa_active(); }

static kvz_isa first_choice = (kvz_isa)-1;
static int racers, racers_agree;

/* KVZ_ISA=generic set before the first call of this process; 8 threads made that first call
 * at once and all got the same level. */
static void test_env_first_call(void **state)
{
    (void)state;
    assert_int_equal(first_choice, KVZ_ISA_GENERIC);
    assert_true(racers >= 2);
    assert_true(racers_agree);
    /* the variable restricts the choice, not what the machine supports */
    assert_true(kvz_isa_supported(KVZ_ISA_GENERIC));
#if defined(__x86_64__) && defined(KVZ_HAVE_AVX2)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        assert_true(kvz_isa_supported(KVZ_ISA_AVX2));
#endif
}

/* The variable in fresh processes: honoured when it names a supported level (any case), else the
 * best level and a message on stderr naming the value. */
static void test_env_fresh_processes(void **state)
{
    (void)state;
    unsigned mask = 0;
    for (int i = 0; i < 6; i++)
        if (kvz_isa_supported((kvz_isa)i))
            mask |= M(i);
    for (size_t i = 0; i < N_CHILDREN; i++) {
        const child_result *c = &children[i];
        if (!c->r.ok)
            fail_msg("KVZ_ISA=%s: the child process did not report", c->env);
        const int lvl = level_of_name(c->env);
        const int honoured = lvl >= 0 && (mask & M(lvl));
        const kvz_isa want = honoured ? (kvz_isa)lvl : best_of(mask);
        if (c->r.value != (int)want)
            fail_msg("KVZ_ISA=%s: first call chose %s, want %s", c->env, kvz_isa_name((kvz_isa)c->r.value),
                     kvz_isa_name(want));
        if (honoured || !*c->env) {
            if (c->r.stderr_text[0])
                fail_msg("KVZ_ISA=%s: unexpected stderr '%s'", c->env, c->r.stderr_text);
        } else if (!strstr(c->r.stderr_text, c->env)) {
            fail_msg("KVZ_ISA=%s: stderr '%s' does not name the value", c->env, c->r.stderr_text);
        }
    }
}

/* kvz.h: "a level the CPU lacks is refused: the library then stays on the best level and
 * kvz_last_error() says why" -- in the thread whose call made the choice. */
static void test_env_refusal_in_last_error(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CHILDREN; i++) {
        const child_result *c = &children[i];
        const int lvl = level_of_name(c->env);
        if (lvl < 0 || kvz_isa_supported((kvz_isa)lvl))
            continue; /* only levels this machine lacks (neon on x86, avx2/avx512 on arm) */
        if (!strstr(c->r.last_error, c->env))
            fail_msg("KVZ_ISA=%s was refused, but kvz_last_error() in the first caller's thread is '%s'",
                     c->env, c->r.last_error);
    }
}

/* ---- forcing and the tables -------------------------------------------------------------------------- */

static void test_force(void **state)
{
    (void)state;
    const kvz_isa all[] = {KVZ_ISA_GENERIC,     KVZ_ISA_AVX2, KVZ_ISA_AVX512,
                           KVZ_ISA_AVX512_BF16, KVZ_ISA_AMX,  KVZ_ISA_NEON};
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < 6; i++) {
            const kvz_isa before = kvz_isa_active();
            if (kvz_isa_supported(all[i])) {
                assert_int_equal(kvz_isa_force(all[i]), KVZ_OK);
                assert_int_equal(kvz_isa_active(), all[i]);
            } else {
                assert_int_equal(kvz_isa_force(all[i]), KVZ_ERR_ISA_UNAVAILABLE);
                assert_true(strstr(kvz_last_error(), kvz_isa_name(all[i])) != NULL);
                assert_int_equal(kvz_isa_active(), before);
            }
        }
    const int bad[] = {6, 7, 99, -1, 0x7fffffff};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const kvz_isa before = kvz_isa_active();
        assert_int_equal(kvz_isa_force((kvz_isa)bad[i]), KVZ_ERR_INVALID_ARG);
        assert_true(strlen(kvz_last_error()) > 0);
        assert_int_equal(kvz_isa_active(), before);
    }
    /* back to the best level, as an unforced process would run */
    kvz_isa best = KVZ_ISA_GENERIC;
    for (int i = 0; i < 6; i++)
        if (kvz_isa_supported((kvz_isa)i))
            best = best_of(M(best) | M(i));
    assert_int_equal(kvz_isa_force(best), KVZ_OK);
    assert_int_equal(kvz_isa_active(), best);
}

static void test_tables(void **state)
{
    (void)state;
    for (int i = 0; i < KVZ_KISA_COUNT; i++) {
        const kvz_kernel_table *t = kvz_kernels_for((kvz_isa)i);
        assert_int_equal(t != NULL, kvz_isa_supported((kvz_isa)i) != 0);
        if (!t)
            continue;
        assert_int_equal(t->isa, i);
        assert_string_equal(t->name, kvz_isa_name((kvz_isa)i));
        assert_non_null(t->attn);
        assert_non_null(t->window_score);
        assert_non_null(t->to_f32);
        assert_non_null(t->from_f32);
        assert_non_null(t->key_histogram);
        tu_force((kvz_isa)i);
        assert_ptr_equal(kvz_kernels(), t);
    }
    const int bad[] = {6, 99, -1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(kvz_kernels_for((kvz_isa)bad[i]));
#if !defined(KVZ_HAVE_NEON)
    assert_null(kvz_kernels_for(KVZ_ISA_NEON));
#endif
#if !defined(KVZ_HAVE_AVX512)
    assert_null(kvz_kernels_for(KVZ_ISA_AVX512));
#endif
#if !defined(KVZ_HAVE_AVX512BF16)
    assert_null(kvz_kernels_for(KVZ_ISA_AVX512_BF16));
#endif
#if !defined(KVZ_HAVE_AMX)
    assert_null(kvz_kernels_for(KVZ_ISA_AMX));
#endif
}

/* Detection agrees with the compiler's own CPU model (which also checks the OS saves the registers). */
static void test_detection_matches_compiler(void **state)
{
    (void)state;
#if defined(__x86_64__)
    __builtin_cpu_init();
    const int avx2 =
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    const int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#ifdef KVZ_HAVE_AVX2
    assert_int_equal(kvz_isa_supported(KVZ_ISA_AVX2) != 0, avx2);
#endif
#ifdef KVZ_HAVE_AVX512
    assert_int_equal(kvz_isa_supported(KVZ_ISA_AVX512) != 0, avx512);
#endif
    if (kvz_cpu_has_avx512_bf16())
        assert_true(avx512);
#ifdef KVZ_HAVE_AVX512BF16
    assert_int_equal(kvz_isa_supported(KVZ_ISA_AVX512_BF16) != 0,
                     avx512 && __builtin_cpu_supports("avx512bf16"));
#endif
    /* gcc 12's CPU model knows no AMX: read CPUID leaf 7 (EDX bits 22, 24) directly; the OS
       side (XCR0, the Linux permission) may still refuse, never the other way round */
    unsigned a7, b7, c7, d7;
    __cpuid_count(7, 0, a7, b7, c7, d7);
    const int amx_cpu = ((d7 >> 22) & 1) && ((d7 >> 24) & 1);
    if (kvz_isa_supported(KVZ_ISA_AMX))
        assert_true(amx_cpu && kvz_isa_supported(KVZ_ISA_AVX512_BF16));
#else
    skip();
#endif
}

/* Forcing while other threads compute: every call still gives the (level-independent,
 * bit-exact) conversion result. Thread 0 forces levels, the others convert. */
enum { FORCE_N = 1000 };
typedef struct force_run {
    const kvz_isa *lv;
    size_t nl;
    const float *x;
    const uint16_t *want;
    int bad[4];
} force_run;

static void force_or_convert(void *ctx, size_t t)
{
    force_run *run = ctx;
    if (t == 0) {
        for (int it = 0; it < 2000; it++)
            run->bad[t] += kvz_isa_force(run->lv[(size_t)it % run->nl]) != KVZ_OK;
        return;
    }
    uint16_t got[FORCE_N];
    for (int it = 0; it < 300; it++) {
        run->bad[t] += kvz_convert(got, KVZ_DTYPE_F16, run->x, KVZ_DTYPE_F32, FORCE_N) != KVZ_OK;
        run->bad[t] += memcmp(got, run->want, sizeof got) != 0;
    }
}

static void test_force_while_computing(void **state)
{
    (void)state;
    kvz_isa lv[TU_MAX_LEVELS];
    const size_t nl = tu_isa_levels(lv);
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 40);
    float x[FORCE_N];
    uint16_t want[FORCE_N];
    for (size_t i = 0; i < FORCE_N; i++)
        x[i] = tu_uniform(&r, -1000, 1000);
    tu_force(KVZ_ISA_GENERIC);
    assert_int_equal(kvz_convert(want, KVZ_DTYPE_F16, x, KVZ_DTYPE_F32, FORCE_N), KVZ_OK);
    force_run run = {lv, nl, x, want, {0}};
    tu_run_threads(4, force_or_convert, &run);
    int bad = 0;
    for (size_t t = 0; t < 4; t++)
        bad += run.bad[t];
    assert_int_equal(bad, 0);
    const kvz_isa act = kvz_isa_active();
    assert_true(kvz_isa_supported(act));
}

/* One of the threads racing to the process's first call. */
static void first_call(void *seen, size_t i)
{
    ((kvz_isa *)seen)[i] = kvz_isa_active();
}

int main(void)
{
    /* Nothing of libkvz has run yet. First, fresh processes for other values of KVZ_ISA (a
     * fork before any libkvz or OpenMP use gives each child a first call of its own). */
    for (size_t i = 0; i < N_CHILDREN; i++)
        tu_first_call_in_child("KVZ_ISA", children[i].env, active_isa, &children[i].r);
    /* Then this process: KVZ_ISA=generic, and threads racing to the first call. */
    setenv("KVZ_ISA", "generic", 1);
    kvz_isa seen[8];
    tu_run_threads(8, first_call, seen);
    const int n = 8;
    unsetenv("KVZ_ISA");
    first_choice = seen[0];
    racers = n;
    racers_agree = 1;
    for (int i = 1; i < n; i++)
        racers_agree &= seen[i] == seen[0];

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_first_call),
        cmocka_unit_test(test_env_fresh_processes),
        cmocka_unit_test(test_env_refusal_in_last_error),
        cmocka_unit_test(test_choose_all_combinations),
        cmocka_unit_test(test_choose_message_bounds),
        cmocka_unit_test(test_force),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_detection_matches_compiler),
        cmocka_unit_test(test_force_while_computing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
