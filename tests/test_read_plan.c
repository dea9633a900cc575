/* The read plan of the bf16 decode kernels: the pure chooser, KVZ_READ_PLAN in fresh processes,
 * the CPU's own choice, forcing, and the names. (That both plans compute the same attention is
 * test_decode's: it runs every case under each.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include "core/cpu_features.h"
#include "core/internal.h"
#include "testutil.h"

/* The vendor as this test reads it from CPUID, apart from the library's reading. */
static int vendor_here(void)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d))
        return KVZ_VENDOR_OTHER;
    if (b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e) /* "Genu" "ineI" "ntel" */
        return KVZ_VENDOR_INTEL;
    if (b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163) /* "Auth" "enti" "cAMD" */
        return KVZ_VENDOR_AMD;
#endif
    return KVZ_VENDOR_OTHER;
}

/* The rule: Intel l1x4, any other CPU l2x1, unless the variable names a plan (any case). */
static kvz_read_plan rule(const char *env, int vendor, int *refused)
{
    *refused = 0;
    if (env && *env) {
        if (!strcasecmp(env, "l2x1"))
            return KVZ_READ_PLAN_L2X1;
        if (!strcasecmp(env, "l1x4"))
            return KVZ_READ_PLAN_L1X4;
        *refused = 1;
    }
    return vendor == KVZ_VENDOR_INTEL ? KVZ_READ_PLAN_L1X4 : KVZ_READ_PLAN_L2X1;
}

static const char *const envs[] = {NULL,    "",     "l2x1", "L2X1", "l1x4", "L1x4", " l1x4",
                                   "l1x4 ", "l1x2", "l2",   "x",    "amx",  "0",    "1"};

static void test_choose(void **state)
{
    (void)state;
    const int vendors[] = {KVZ_VENDOR_OTHER, KVZ_VENDOR_INTEL, KVZ_VENDOR_AMD};
    char msg[128];
    for (size_t v = 0; v < 3; v++)
        for (size_t e = 0; e < sizeof envs / sizeof envs[0]; e++) {
            int refused;
            const kvz_read_plan want = rule(envs[e], vendors[v], &refused);
            memset(msg, 'Z', sizeof msg);
            const kvz_read_plan got = kvz_read_plan_choose(envs[e], vendors[v], msg, sizeof msg);
            if (got != want)
                fail_msg("choose('%s', vendor %d) = %s, want %s", envs[e] ? envs[e] : "(unset)", vendors[v],
                         kvz_read_plan_name(got), kvz_read_plan_name(want));
            assert_non_null(memchr(msg, '\0', sizeof msg));
            if (refused ? !strstr(msg, envs[e]) : msg[0] != '\0')
                fail_msg("choose('%s', vendor %d): message '%s'", envs[e] ? envs[e] : "(unset)", vendors[v],
                         msg);
        }
    /* the message stays inside its buffer, and a zero size writes nothing */
    for (size_t size = 1; size <= 8; size++) {
        memset(msg, 'Z', sizeof msg);
        (void)kvz_read_plan_choose("a-long-unknown-plan-name", KVZ_VENDOR_AMD, msg, size);
        assert_non_null(memchr(msg, '\0', size));
        for (size_t i = size; i < sizeof msg; i++)
            assert_int_equal(msg[i], 'Z');
    }
    memset(msg, 'Z', sizeof msg);
    assert_int_equal(kvz_read_plan_choose("bogus", KVZ_VENDOR_INTEL, msg, 0), KVZ_READ_PLAN_L1X4);
    assert_int_equal(msg[0], 'Z');
}

/* ---- fresh processes, forked from main before any libkvz call ---------------------------------------- */

typedef struct child_result {
    const char *env; /* NULL: unset */
    tu_child r;
} child_result;

static child_result children[] = {{.env = NULL},    {.env = ""},     {.env = "L1X4"}, {.env = "l2x1"},
                                  {.env = "l1x4 "}, {.env = "bogus"}};
enum { N_CHILDREN = sizeof children / sizeof children[0] };

static int active_plan(void) { return (int)kvz_read_plan_active(); }

/* Unset, the CPU's plan; a plan's name is honoured; anything else is refused on stderr and in
 * the first caller's kvz_last_error(), naming the value, and the CPU's plan stays. */
static void test_env_fresh_processes(void **state)
{
    (void)state;
    const int vendor = vendor_here();
    fprintf(stderr, "CPU vendor %s: its plan %s\n",
            vendor == KVZ_VENDOR_INTEL ? "Intel"
            : vendor == KVZ_VENDOR_AMD ? "AMD"
                                       : "other",
            kvz_read_plan_name(vendor == KVZ_VENDOR_INTEL ? KVZ_READ_PLAN_L1X4 : KVZ_READ_PLAN_L2X1));
    for (size_t i = 0; i < N_CHILDREN; i++) {
        const child_result *c = &children[i];
        const char *shown = c->env ? c->env : "(unset)";
        if (!c->r.ok)
            fail_msg("KVZ_READ_PLAN=%s: the child process did not report", shown);
        int refused;
        const kvz_read_plan want = rule(c->env, vendor, &refused);
        if (c->r.value != (int)want)
            fail_msg("KVZ_READ_PLAN=%s: the first call chose %s, want %s", shown,
                     kvz_read_plan_name((kvz_read_plan)c->r.value), kvz_read_plan_name(want));
        if (!refused) {
            if (c->r.stderr_text[0])
                fail_msg("KVZ_READ_PLAN=%s: unexpected stderr '%s'", shown, c->r.stderr_text);
        } else if (!strstr(c->r.stderr_text, c->env) || !strstr(c->r.last_error, c->env)) {
            fail_msg("KVZ_READ_PLAN=%s: refused, but stderr '%s' and kvz_last_error() '%s' do not both name it",
                     shown, c->r.stderr_text, c->r.last_error);
        }
    }
}

static void test_force_and_names(void **state)
{
    (void)state;
    assert_string_equal(kvz_read_plan_name(KVZ_READ_PLAN_L2X1), "l2x1");
    assert_string_equal(kvz_read_plan_name(KVZ_READ_PLAN_L1X4), "l1x4");
    const int bad[] = {2, 3, 99, -1, 0x7fffffff};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_string_equal(kvz_read_plan_name((kvz_read_plan)bad[i]), "unknown");
    const kvz_read_plan first = kvz_read_plan_active();
    for (int round = 0; round < 2; round++)
        for (int p = 0; p < 2; p++) {
            assert_int_equal(kvz_read_plan_force((kvz_read_plan)p), KVZ_OK);
            assert_int_equal(kvz_read_plan_active(), p);
        }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const kvz_read_plan before = kvz_read_plan_active();
        assert_int_equal(kvz_read_plan_force((kvz_read_plan)bad[i]), KVZ_ERR_INVALID_ARG);
        assert_true(strstr(kvz_last_error(), "kvz_read_plan_force") != NULL);
        assert_int_equal(kvz_read_plan_active(), before);
    }
    assert_int_equal(kvz_read_plan_force(first), KVZ_OK);
}

int main(void)
{
    for (size_t i = 0; i < N_CHILDREN; i++)
        tu_first_call_in_child("KVZ_READ_PLAN", children[i].env, active_plan, &children[i].r);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choose),
        cmocka_unit_test(test_env_fresh_processes),
        cmocka_unit_test(test_force_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
