/* ABI hygiene: every declared function links, versions agree, statuses have texts, facts are sane. */
#include <stdio.h>
#include <string.h>

#include "testutil.h"

/* Takes the address of every function declared in include/kvz.h, so one declared but not
 * defined (or not exported, for the consumer test) fails to link. Add new ones here. */
static void test_every_function_links(void **state)
{
    (void)state;
    const void *fns[] = {
        (const void *)kvz_version,
        (const void *)kvz_strerror,
        (const void *)kvz_last_error,
        (const void *)kvz_isa_active,
        (const void *)kvz_isa_supported,
        (const void *)kvz_isa_force,
        (const void *)kvz_isa_name,
        (const void *)kvz_isa_from_name,
        (const void *)kvz_num_threads,
        (const void *)kvz_numa_nodes,
        (const void *)kvz_cpu_has_avx512_bf16,
        (const void *)kvz_convert,
        (const void *)kvz_attn_prefill,
        (const void *)kvz_attn_decode_varlen,
        (const void *)kvz_window_score,
        (const void *)kvz_select_global,
        (const void *)kvz_select_topk,
        (const void *)kvz_cache_create,
        (const void *)kvz_cache_destroy,
        (const void *)kvz_cache_append,
        (const void *)kvz_cache_truncate,
        (const void *)kvz_cache_compact,
        (const void *)kvz_cache_length,
        (const void *)kvz_cache_positions,
        (const void *)kvz_cache_rows,
        (const void *)kvz_cache_next_position,
        (const void *)kvz_cache_get_stats,
        (const void *)kvz_cache_segment_bytes,
        (const void *)kvz_cache_attend,
        (const void *)kvz_query_create,
        (const void *)kvz_query_destroy,
        (const void *)kvz_query_append,
        (const void *)kvz_query_attend,
        (const void *)kvz_query_next_position,
        (const void *)kvz_query_reset,
        (const void *)kvz_cache_save,
        (const void *)kvz_cache_load,
        (const void *)kvz_policy_select,
        (const void *)kvz_policy_name,
        (const void *)kvz_numa_plan,
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        assert_non_null(fns[i]);
}

static void test_version(void **state)
{
    (void)state;
    const kvz_version_info v = kvz_version();
    assert_int_equal(v.major, KVZ_VERSION_MAJOR);
    assert_int_equal(v.minor, KVZ_VERSION_MINOR);
    assert_int_equal(v.patch, KVZ_VERSION_PATCH);
    char s[32];
    snprintf(s, sizeof s, "%d.%d.%d", KVZ_VERSION_MAJOR, KVZ_VERSION_MINOR, KVZ_VERSION_PATCH);
    assert_string_equal(v.string, s);
    assert_int_equal(KVZ_VERSION_NUMBER,
                     KVZ_VERSION_MAJOR * 10000 + KVZ_VERSION_MINOR * 100 + KVZ_VERSION_PATCH);
}

static void test_status_texts(void **state)
{
    (void)state;
    /* the pinned values */
    assert_int_equal(KVZ_OK, 0), assert_int_equal(KVZ_ERR_NULL, 1), assert_int_equal(KVZ_ERR_INVALID_ARG, 2);
    assert_int_equal(KVZ_ERR_NOMEM, 3), assert_int_equal(KVZ_ERR_UNSUPPORTED, 4);
    assert_int_equal(KVZ_ERR_ISA_UNAVAILABLE, 5), assert_int_equal(KVZ_ERR_IO, 6);
    assert_int_equal(KVZ_ERR_FORMAT, 7), assert_int_equal(KVZ_ERR_CORRUPT, 8),
        assert_int_equal(KVZ_ERR_VERSION, 9);
    assert_int_equal(KVZ_ERR_MISMATCH, 10), assert_int_equal(KVZ_ERR_TRUNCATED, 11);
    assert_int_equal(KVZ_ERR_STATE, 12);
    for (int a = 0; a <= 12; a++) {
        const char *ta = kvz_strerror((kvz_status)a);
        assert_non_null(ta);
        assert_true(strlen(ta) > 0);
        assert_string_not_equal(ta, "unknown status");
        for (int b = 0; b < a; b++)
            assert_string_not_equal(ta, kvz_strerror((kvz_status)b));
    }
    assert_string_equal(kvz_strerror((kvz_status)13), "unknown status");
    assert_string_equal(kvz_strerror((kvz_status)-1), "unknown status");
}

static void test_last_error(void **state)
{
    (void)state;
    assert_int_equal(kvz_attn_prefill(NULL), KVZ_ERR_NULL);
    assert_true(strstr(kvz_last_error(), "kvz_attn_prefill") != NULL);
    assert_int_equal(kvz_isa_from_name("sse9", &(kvz_isa){0}), KVZ_ERR_INVALID_ARG);
    assert_true(strstr(kvz_last_error(), "sse9") != NULL);
}

static void test_isa_names(void **state)
{
    (void)state;
    const kvz_isa all[] = {KVZ_ISA_GENERIC, KVZ_ISA_AVX2, KVZ_ISA_AVX512, KVZ_ISA_NEON};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        kvz_isa back;
        assert_int_equal(kvz_isa_from_name(kvz_isa_name(all[i]), &back), KVZ_OK);
        assert_int_equal(back, all[i]);
    }
    assert_string_equal(kvz_isa_name((kvz_isa)42), "unknown");
    assert_int_equal(kvz_isa_from_name(NULL, NULL), KVZ_ERR_NULL);
    kvz_isa x;
    assert_int_equal(kvz_isa_from_name("AVX2", &x), KVZ_OK);
    assert_int_equal(x, KVZ_ISA_AVX2);
}

static void test_facts(void **state)
{
    (void)state;
    assert_true(kvz_num_threads() >= 1);
    assert_true(kvz_numa_nodes() >= 1);
    assert_true(kvz_isa_supported(KVZ_ISA_GENERIC));
    const int bf16 = kvz_cpu_has_avx512_bf16();
    assert_true(bf16 == 0 || bf16 == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_function_links),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_status_texts),
        cmocka_unit_test(test_last_error),
        cmocka_unit_test(test_isa_names),
        cmocka_unit_test(test_facts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
