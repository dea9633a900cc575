/*
 * ISA dispatch: the kernel table is chosen once per process through pthread_once (never a
 * lazily written flag), honouring KVZ_ISA; kvz_isa_force() swaps it atomically later.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "core/cpu_features.h"
#include "core/internal.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static unsigned supported_mask; /* written once inside pthread_once */
static unsigned cpu_flags;      /* likewise */
static char env_message[256];   /* likewise: why KVZ_ISA was refused */
static _Atomic(const kvz_kernel_table *) active;

/* The public enum (ABI, written out in include/kvz.h) and the list of kernels.h agree: every level
 * of the list has its public name and value, and the list ends where the enum does. */
#define AGREES_WITH_PUBLIC(name, ID, value, cpu)                                                               \
    _Static_assert((int)KVZ_ISA_##ID == KVZ_KISA_##ID, "kvz_isa and the list agree on " #name);
KVZ_ISA_LIST(AGREES_WITH_PUBLIC)
_Static_assert(KVZ_KISA_COUNT == (int)KVZ_ISA_AMX + 1, "kvz_isa has no level the list lacks");

/* Each level's table if configure compiled it (config.h: KVZ_HAVE_<ID>), else NULL: the one
 * fact about a level that the list cannot hold, since the build decides it. A level added to
 * the list without a line here does not compile. */
#define TABLE_generic (&kvz_kernels_generic)
#ifdef KVZ_HAVE_AVX2
#define TABLE_avx2 (&kvz_kernels_avx2)
#else
#define TABLE_avx2 NULL
#endif
#ifdef KVZ_HAVE_AVX512
#define TABLE_avx512 (&kvz_kernels_avx512)
#else
#define TABLE_avx512 NULL
#endif
#ifdef KVZ_HAVE_AVX512BF16
#define TABLE_avx512bf16 (&kvz_kernels_avx512bf16)
#else
#define TABLE_avx512bf16 NULL
#endif
#ifdef KVZ_HAVE_AMX
#define TABLE_amx (&kvz_kernels_amx)
#else
#define TABLE_amx NULL
#endif
#ifdef KVZ_HAVE_NEON
#define TABLE_neon (&kvz_kernels_neon)
#else
#define TABLE_neon NULL
#endif

#define TABLE_CASE(name, ID, value, cpu)                                                                       \
    case KVZ_KISA_##ID: return TABLE_##name;
static const kvz_kernel_table *table_of(kvz_isa isa)
{
    switch ((int)isa) {
        KVZ_ISA_LIST(TABLE_CASE)
    default: return NULL;
    }
}

/* The levels' names, indexed by kvz_isa. */
#define NAME_AT(name, ID, value, cpu) [KVZ_KISA_##ID] = #name,
static const char *const isa_names[KVZ_KISA_COUNT] = {KVZ_ISA_LIST(NAME_AT)};

/* The names as the messages list them, ", generic, neon, ...", used from the third character on. */
#define NAME_LISTED(name, ID, value, cpu) ", " #name
static const char isa_name_list[] = KVZ_ISA_LIST(NAME_LISTED);

static int parse_isa(const char *s, kvz_isa *out)
{
    for (int i = 0; i < KVZ_KISA_COUNT; i++)
        if (strcasecmp(s, isa_names[i]) == 0) {
            *out = (kvz_isa)i;
            return 1;
        }
    return 0;
}

/* The most preferred level of the mask (the list's order), generic when it holds none. */
#define PREFER_IF_IN_MASK(name, ID, value, cpu)                                                                \
    if (mask & (1u << KVZ_KISA_##ID))                                                                          \
        best = (kvz_isa)KVZ_KISA_##ID;
static kvz_isa best_of(unsigned mask)
{
    kvz_isa best = KVZ_ISA_GENERIC;
    KVZ_ISA_LIST(PREFER_IF_IN_MASK)
    return best;
}

kvz_isa kvz_isa_choose(const char *env, unsigned mask, char *msg, size_t msg_size)
{
    const kvz_isa best = best_of(mask);
    if (msg_size)
        msg[0] = '\0';
    if (!env || !*env)
        return best;
    kvz_isa want;
    if (!parse_isa(env, &want)) {
        snprintf(msg, msg_size, "KVZ_ISA=%s is not a level (%s); using %s", env, isa_name_list + 2,
                 kvz_isa_name(best));
        return best;
    }
    if (!(mask & (1u << want))) {
        snprintf(msg, msg_size, "KVZ_ISA=%s: this CPU or build cannot run %s; using %s", env,
                 kvz_isa_name(want), kvz_isa_name(best));
        return best;
    }
    return want;
}

static void choose_once(void)
{
    cpu_flags = kvz_cpu_detect();
    unsigned mask = 0;
    /* a level the CPU can run and the build has (generic: always) */
#define ADD_IF_RUNNABLE(name, ID, value, cpu)                                                                  \
    if ((cpu_flags & (unsigned)(cpu)) == (unsigned)(cpu) && table_of((kvz_isa)KVZ_KISA_##ID))                  \
        mask |= 1u << KVZ_KISA_##ID;
    KVZ_ISA_LIST(ADD_IF_RUNNABLE)
    supported_mask = mask;
    const kvz_isa isa = kvz_isa_choose(getenv("KVZ_ISA"), mask, env_message, sizeof env_message);
    if (env_message[0]) {
        /* stderr for the operator; kvz_last_error() for the host, in the thread whose call
           made the choice (the only thread that exists for it at that moment). */
        fprintf(stderr, "libkvz: %s\n", env_message);
        kvz_fail(KVZ_ERR_ISA_UNAVAILABLE, "%s", env_message);
    }
    atomic_store_explicit(&active, table_of(isa), memory_order_release);
}

const kvz_kernel_table *kvz_kernels(void)
{
    pthread_once(&once, choose_once);
    return atomic_load_explicit(&active, memory_order_acquire);
}

const kvz_kernel_table *kvz_kernels_for(kvz_isa isa)
{
    pthread_once(&once, choose_once);
    if ((unsigned)isa >= KVZ_KISA_COUNT || !(supported_mask & (1u << isa)))
        return NULL;
    return table_of(isa);
}

kvz_isa kvz_isa_active(void) { return (kvz_isa)kvz_kernels()->isa; }

int kvz_isa_supported(kvz_isa isa) { return kvz_kernels_for(isa) != NULL; }

kvz_status kvz_isa_force(kvz_isa isa)
{
    if ((unsigned)isa >= KVZ_KISA_COUNT)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_isa_force: %d is not a kvz_isa value", (int)isa);
    const kvz_kernel_table *t = kvz_kernels_for(isa);
    if (!t)
        return kvz_fail(KVZ_ERR_ISA_UNAVAILABLE, "kvz_isa_force: %s is not available on this CPU or build",
                        kvz_isa_name(isa));
    atomic_store_explicit(&active, t, memory_order_release);
    return KVZ_OK;
}

const char *kvz_isa_name(kvz_isa isa)
{
    return (unsigned)isa < KVZ_KISA_COUNT ? isa_names[isa] : "unknown";
}

kvz_status kvz_isa_from_name(const char *name, kvz_isa *isa)
{
    if (!name || !isa)
        return kvz_fail(KVZ_ERR_NULL, "kvz_isa_from_name: NULL argument");
    if (!parse_isa(name, isa))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_isa_from_name: '%s' is not a level (%s)", name,
                        isa_name_list + 2);
    return KVZ_OK;
}

int kvz_cpu_has_avx512_bf16(void)
{
    pthread_once(&once, choose_once);
    return (cpu_flags & KVZ_CPU_AVX512_BF16) != 0;
}
