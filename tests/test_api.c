/* ABI hygiene: every declared function links, versions agree, statuses have texts, errors are per thread, facts
 * are sane. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "testutil.h"

/*
 * The address of EVERY function declared in include/kvz.h, so that one declared but not defined
 * fails to link (and, through the consumer test, one not exported). Add new functions here:
 * test_table_matches_header fails when a KVZ_API declaration has no entry (or an entry no
 * declaration).
 */
#define FN(f)                                                                                                  \
    {                                                                                                          \
#f, (const void *)f                                                                                    \
    }
static const struct {
    const char *name;
    const void *addr;
} api_functions[] = {
    FN(kvz_version),
    FN(kvz_strerror),
    FN(kvz_last_error),
    FN(kvz_isa_active),
    FN(kvz_isa_supported),
    FN(kvz_isa_force),
    FN(kvz_isa_name),
    FN(kvz_isa_from_name),
    FN(kvz_num_threads),
    FN(kvz_set_num_threads),
    FN(kvz_numa_nodes),
    FN(kvz_cpu_has_avx512_bf16),
    FN(kvz_read_plan_active),
    FN(kvz_read_plan_force),
    FN(kvz_read_plan_name),
    FN(kvz_convert),
    FN(kvz_attn_prefill),
    FN(kvz_attn_decode_varlen),
    FN(kvz_window_score),
    FN(kvz_select_global),
    FN(kvz_select_topk),
    FN(kvz_cache_create),
    FN(kvz_cache_destroy),
    FN(kvz_cache_append),
    FN(kvz_cache_append_at),
    FN(kvz_cache_clone),
    FN(kvz_cache_reserve),
    FN(kvz_cache_truncate),
    FN(kvz_cache_compact),
    FN(kvz_cache_length),
    FN(kvz_cache_positions),
    FN(kvz_cache_rows),
    FN(kvz_cache_next_position),
    FN(kvz_cache_get_stats),
    FN(kvz_cache_segment_bytes),
    FN(kvz_cache_segment_node),
    FN(kvz_cache_layer_window),
    FN(kvz_cache_shape),
    FN(kvz_cache_attend),
    FN(kvz_query_create),
    FN(kvz_query_destroy),
    FN(kvz_query_append),
    FN(kvz_query_attend),
    FN(kvz_query_next_position),
    FN(kvz_query_shape),
    FN(kvz_query_reset),
    FN(kvz_policy_select),
    FN(kvz_policy_name),
    FN(kvz_kvzip_passes),
    FN(kvz_kvzip_pass),
    FN(kvz_kvzip_check_cache),
    FN(kvz_kvzip_compress),
    FN(kvz_fastkv_propagate),
    FN(kvz_fastkv_compress_layer),
    FN(kvz_numa_plan),
    FN(kvz_cache_save),
    FN(kvz_cache_load),
};
#undef FN
enum { N_API = sizeof api_functions / sizeof api_functions[0] };

static void test_every_function_links(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_API; i++) {
        assert_non_null(api_functions[i].addr);
        for (size_t j = 0; j < i; j++) /* no name twice, no two names for one function */
            assert_true(strcmp(api_functions[i].name, api_functions[j].name) != 0 &&
                        api_functions[i].addr != api_functions[j].addr);
    }
}

/* The header from the source tree: $srcdir (exported by make check) or next to this file. */
static char *read_header(void)
{
    char path[4096];
    const char *srcdir = getenv("srcdir");
    FILE *f = NULL;
    if (srcdir && *srcdir) {
        snprintf(path, sizeof path, "%s/include/kvz.h", srcdir);
        f = fopen(path, "rb");
    }
    if (!f) {
        const char *me = __FILE__, *tail = strstr(me, "tests/test_api.c");
        snprintf(path, sizeof path, "%.*sinclude/kvz.h", tail ? (int)(tail - me) : 0, me);
        f = fopen(path, "rb");
    }
    if (!f)
        return NULL;
    fclose(f);
    size_t n;
    char *text = (char *)tu_slurp(path, &n);
    text[n] = '\0';
    return text;
}

/* Every `KVZ_API <type> name(` of the header is in the table above, and vice versa. */
static void test_table_matches_header(void **state)
{
    (void)state;
    char *h = read_header();
    if (!h) {
        fprintf(stderr, "include/kvz.h not found (set srcdir): header cross-check skipped\n");
        skip();
    }
    int seen[N_API] = {0};
    size_t declared = 0;
    for (const char *p = h; (p = strstr(p, "KVZ_API")) != NULL; p += 7) {
        const char *line = p;
        while (line > h && line[-1] != '\n')
            line--;
        if (strncmp(line, "#", 1) == 0) /* the #define of the macro itself */
            continue;
        const char *paren = strchr(p, '(');
        assert_non_null(paren);
        const char *end = paren;
        while (end > p && isspace((unsigned char)end[-1]))
            end--;
        const char *start = end;
        while (start > p && (isalnum((unsigned char)start[-1]) || start[-1] == '_'))
            start--;
        const size_t len = (size_t)(end - start);
        assert_true(len > 0);
        declared++;
        size_t i = 0;
        while (i < N_API &&
               !(strlen(api_functions[i].name) == len && !strncmp(api_functions[i].name, start, len)))
            i++;
        if (i == N_API)
            fail_msg("include/kvz.h declares %.*s but test_api.c does not take its address: add it to "
                     "api_functions",
                     (int)len, start);
        seen[i]++;
    }
    for (size_t i = 0; i < N_API; i++)
        if (seen[i] != 1)
            fail_msg("%s is declared %d times in include/kvz.h", api_functions[i].name, seen[i]);
    assert_int_equal(declared, N_API);
    free(h);
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
    assert_non_null(v.string);
    assert_string_equal(v.string, s);
    assert_int_equal(KVZ_VERSION_NUMBER,
                     KVZ_VERSION_MAJOR * 10000 + KVZ_VERSION_MINOR * 100 + KVZ_VERSION_PATCH);
    /* the package version of configure.ac is the header's */
    assert_string_equal(PACKAGE_VERSION, s);
}

static void test_status_texts(void **state)
{
    (void)state;
    /* the pinned values */
    assert_int_equal(KVZ_OK, 0), assert_int_equal(KVZ_ERR_NULL, 1), assert_int_equal(KVZ_ERR_INVALID_ARG, 2);
    assert_int_equal(KVZ_ERR_NOMEM, 3), assert_int_equal(KVZ_ERR_UNSUPPORTED, 4);
    assert_int_equal(KVZ_ERR_ISA_UNAVAILABLE, 5), assert_int_equal(KVZ_ERR_IO, 6);
    assert_int_equal(KVZ_ERR_FORMAT, 7), assert_int_equal(KVZ_ERR_CORRUPT, 8);
    assert_int_equal(KVZ_ERR_VERSION, 9), assert_int_equal(KVZ_ERR_MISMATCH, 10);
    assert_int_equal(KVZ_ERR_TRUNCATED, 11), assert_int_equal(KVZ_ERR_STATE, 12);
    for (int a = 0; a <= 12; a++) {
        const char *ta = kvz_strerror((kvz_status)a);
        assert_non_null(ta);
        assert_true(strlen(ta) > 0);
        assert_string_not_equal(ta, "unknown status");
        for (int b = 0; b < a; b++)
            assert_string_not_equal(ta, kvz_strerror((kvz_status)b));
    }
    const int unknown[] = {13, 14, 100, -1, -12, 0x7fffffff};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_string_equal(kvz_strerror((kvz_status)unknown[i]), "unknown status");
}

static void test_last_error(void **state)
{
    (void)state;
    assert_int_equal(kvz_attn_prefill(NULL), KVZ_ERR_NULL);
    assert_true(strlen(kvz_last_error()) > 0);
    assert_true(strstr(kvz_last_error(), "kvz_attn_prefill") != NULL);
    assert_int_equal(kvz_isa_from_name("sse9", &(kvz_isa){0}), KVZ_ERR_INVALID_ARG);
    assert_true(strstr(kvz_last_error(), "sse9") != NULL);
    assert_int_equal(kvz_convert(NULL, KVZ_DTYPE_F32, NULL, KVZ_DTYPE_F16, 3), KVZ_ERR_NULL);
    assert_true(strstr(kvz_last_error(), "kvz_convert") != NULL);
    assert_int_equal(kvz_isa_force((kvz_isa)77), KVZ_ERR_INVALID_ARG);
    assert_true(strlen(kvz_last_error()) > 0);
    assert_int_equal(kvz_cache_create(NULL, NULL), KVZ_ERR_NULL);
    assert_true(strlen(kvz_last_error()) > 0);
}

/* The message is per thread: a fresh thread has none, and its failures do not reach this one. */
static void *other_thread(void *arg)
{
    char *seen = arg;
    snprintf(seen, 256, "%s", kvz_last_error()); /* before any failure of this thread */
    (void)kvz_window_score(NULL);
    snprintf(seen + 256, 256, "%s", kvz_last_error());
    return NULL;
}

static void test_last_error_per_thread(void **state)
{
    (void)state;
    assert_int_equal(kvz_isa_from_name("mmx", &(kvz_isa){0}), KVZ_ERR_INVALID_ARG);
    char mine[256], seen[512];
    snprintf(mine, sizeof mine, "%s", kvz_last_error());
    assert_true(strstr(mine, "mmx") != NULL);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, seen), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_string_equal(seen, "");
    assert_true(strstr(seen + 256, "kvz_window_score") != NULL);
    assert_string_equal(kvz_last_error(), mine);
}

static void test_isa_names(void **state)
{
    (void)state;
    const kvz_isa all[] = {KVZ_ISA_GENERIC,     KVZ_ISA_AVX2, KVZ_ISA_AVX512,
                           KVZ_ISA_AVX512_BF16, KVZ_ISA_AMX,  KVZ_ISA_NEON};
    const char *names[] = {"generic", "avx2", "avx512", "avx512bf16", "amx", "neon"};
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(kvz_isa_name(all[i]), names[i]);
        kvz_isa back = (kvz_isa)-1;
        assert_int_equal(kvz_isa_from_name(kvz_isa_name(all[i]), &back), KVZ_OK);
        assert_int_equal(back, all[i]);
        char up[16]; /* any case */
        for (size_t c = 0; c <= strlen(names[i]); c++)
            up[c] = (char)toupper((unsigned char)names[i][c]);
        back = (kvz_isa)-1;
        assert_int_equal(kvz_isa_from_name(up, &back), KVZ_OK);
        assert_int_equal(back, all[i]);
    }
    assert_string_equal(kvz_isa_name((kvz_isa)6), "unknown");
    assert_string_equal(kvz_isa_name((kvz_isa)42), "unknown");
    assert_string_equal(kvz_isa_name((kvz_isa)-1), "unknown");
    const char *bad[] = {"", "avx", "avx2 ", " avx2", "avx5120", "unknown", "sse4.2", "generic\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kvz_isa x = KVZ_ISA_NEON;
        if (kvz_isa_from_name(bad[i], &x) != KVZ_ERR_INVALID_ARG)
            fail_msg("kvz_isa_from_name('%s') accepted", bad[i]);
        assert_int_equal(x, KVZ_ISA_NEON); /* untouched */
        assert_true(strlen(kvz_last_error()) > 0);
    }
    kvz_isa x;
    assert_int_equal(kvz_isa_from_name(NULL, &x), KVZ_ERR_NULL);
    assert_int_equal(kvz_isa_from_name("avx2", NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_isa_from_name(NULL, NULL), KVZ_ERR_NULL);
}

static void test_policy_names(void **state)
{
    (void)state;
    for (int a = KVZ_POLICY_FULL; a <= KVZ_POLICY_RANDOM; a++) {
        const char *na = kvz_policy_name((kvz_policy)a);
        assert_non_null(na);
        assert_true(strlen(na) > 0);
        assert_string_not_equal(na, "unknown");
        for (int b = 0; b < a; b++)
            assert_string_not_equal(na, kvz_policy_name((kvz_policy)b));
    }
    assert_string_equal(kvz_policy_name((kvz_policy)(KVZ_POLICY_RANDOM + 1)), "unknown");
    assert_string_equal(kvz_policy_name((kvz_policy)-1), "unknown");
}

static void test_facts(void **state)
{
    (void)state;
    assert_true(kvz_num_threads() >= 1);
    assert_true(kvz_numa_nodes() >= 1);
    assert_true(kvz_isa_supported(KVZ_ISA_GENERIC));
    assert_false(kvz_isa_supported((kvz_isa)6));
    assert_false(kvz_isa_supported((kvz_isa)-1));
    const kvz_isa act = kvz_isa_active();
    assert_true(kvz_isa_supported(act));
    const int bf16 = kvz_cpu_has_avx512_bf16();
    assert_true(bf16 == 0 || bf16 == 1);
#if !defined(__x86_64__)
    assert_false(kvz_isa_supported(KVZ_ISA_AVX2));
    assert_false(kvz_isa_supported(KVZ_ISA_AVX512));
    assert_false(kvz_isa_supported(KVZ_ISA_AVX512_BF16));
    assert_false(kvz_isa_supported(KVZ_ISA_AMX));
#endif
#if !defined(__aarch64__)
    assert_false(kvz_isa_supported(KVZ_ISA_NEON));
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_function_links),
        cmocka_unit_test(test_table_matches_header),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_status_texts),
        cmocka_unit_test(test_last_error),
        cmocka_unit_test(test_last_error_per_thread),
        cmocka_unit_test(test_isa_names),
        cmocka_unit_test(test_policy_names),
        cmocka_unit_test(test_facts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
