/* ISA dispatch: the pure chooser, KVZ_ISA in a fresh process, forcing, and the tables. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "testutil.h"

#define M(i) (1u << (i))

static void test_choose_pure(void **state)
{
    (void)state;
    char msg[256];
    const unsigned x86 = M(KVZ_ISA_GENERIC) | M(KVZ_ISA_AVX2) | M(KVZ_ISA_AVX512);
    const unsigned arm = M(KVZ_ISA_GENERIC) | M(KVZ_ISA_NEON);
    /* unset or empty: the best level */
    assert_int_equal(kvz_isa_choose(NULL, x86, msg, sizeof msg), KVZ_ISA_AVX512);
    assert_string_equal(msg, "");
    assert_int_equal(kvz_isa_choose("", arm, msg, sizeof msg), KVZ_ISA_NEON);
    assert_int_equal(kvz_isa_choose(NULL, M(0) | M(KVZ_ISA_AVX2), msg, sizeof msg), KVZ_ISA_AVX2);
    assert_int_equal(kvz_isa_choose(NULL, M(0) | M(KVZ_ISA_AVX2) | M(KVZ_ISA_AVX512), msg, sizeof msg),
                     KVZ_ISA_AVX512);
    assert_int_equal(kvz_isa_choose(NULL, M(0), msg, sizeof msg), KVZ_ISA_GENERIC);
    /* a lower supported level, any case */
    const char *names[] = {"generic", "AVX2", "Avx512"};
    const kvz_isa want[] = {KVZ_ISA_GENERIC, KVZ_ISA_AVX2, KVZ_ISA_AVX512};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(kvz_isa_choose(names[i], x86, msg, sizeof msg), want[i]);
        assert_string_equal(msg, "");
    }
    /* unknown name or a level this machine lacks: the best level and a message naming it */
    assert_int_equal(kvz_isa_choose("sse42", x86, msg, sizeof msg), KVZ_ISA_AVX512);
    assert_true(strstr(msg, "sse42") != NULL);
    assert_int_equal(kvz_isa_choose("neon", x86, msg, sizeof msg), KVZ_ISA_AVX512);
    assert_true(strstr(msg, "neon") != NULL);
    assert_int_equal(kvz_isa_choose("avx512", arm, msg, sizeof msg), KVZ_ISA_NEON);
    assert_true(strstr(msg, "avx512") != NULL);
}

static void test_force(void **state)
{
    (void)state;
    const kvz_isa all[] = {KVZ_ISA_GENERIC, KVZ_ISA_AVX2, KVZ_ISA_AVX512, KVZ_ISA_NEON};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const kvz_isa before = kvz_isa_active();
        if (kvz_isa_supported(all[i])) {
            assert_int_equal(kvz_isa_force(all[i]), KVZ_OK);
            assert_int_equal(kvz_isa_active(), all[i]);
            assert_non_null(kvz_kernels_for(all[i]));
            assert_int_equal(kvz_kernels_for(all[i])->isa, (int)all[i]);
        } else {
            assert_int_equal(kvz_isa_force(all[i]), KVZ_ERR_ISA_UNAVAILABLE);
            assert_int_equal(kvz_isa_active(), before);
            assert_null(kvz_kernels_for(all[i]));
        }
    }
    assert_int_equal(kvz_isa_force((kvz_isa)99), KVZ_ERR_INVALID_ARG);
    assert_null(kvz_kernels_for((kvz_isa)99));
}

static kvz_isa first_choice;
static int concurrent_ok;

/* What main saw at the first libkvz call of the process, with KVZ_ISA=generic set. */
static void test_env_first_call(void **state)
{
    (void)state;
    assert_int_equal(first_choice, KVZ_ISA_GENERIC);
    assert_true(concurrent_ok);
}

int main(void)
{
    /* Before any other libkvz call of this process: KVZ_ISA is honoured, and threads racing
     * to the first call all see the same level. */
    setenv("KVZ_ISA", "generic", 1);
    kvz_isa seen[16];
    int n = 0;
#pragma omp parallel num_threads(8)
    {
        const kvz_isa a = kvz_isa_active();
#pragma omp critical
        seen[n++] = a;
    }
    unsetenv("KVZ_ISA");
    first_choice = seen[0];
    concurrent_ok = 1;
    for (int i = 1; i < n; i++)
        concurrent_ok &= seen[i] == seen[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_first_call),
        cmocka_unit_test(test_choose_pure),
        cmocka_unit_test(test_force),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
