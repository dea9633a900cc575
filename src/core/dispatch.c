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

static const kvz_kernel_table *table_of(kvz_isa isa)
{
    switch (isa) {
    case KVZ_ISA_GENERIC: return &kvz_kernels_generic;
#ifdef KVZ_HAVE_AVX2
    case KVZ_ISA_AVX2: return &kvz_kernels_avx2;
#endif
#ifdef KVZ_HAVE_AVX512
    case KVZ_ISA_AVX512: return &kvz_kernels_avx512;
#endif
#ifdef KVZ_HAVE_AVX512BF16
    case KVZ_ISA_AVX512_BF16: return &kvz_kernels_avx512bf16;
#endif
#ifdef KVZ_HAVE_AMX
    case KVZ_ISA_AMX: return &kvz_kernels_amx;
#endif
#ifdef KVZ_HAVE_NEON
    case KVZ_ISA_NEON: return &kvz_kernels_neon;
#endif
    default: return NULL;
    }
}

/* The levels' names, indexed by kvz_isa, whose values are the KVZ_KISA_* of kernels.h. */
static const char *const isa_names[KVZ_KISA_COUNT] = {"generic", "avx2", "avx512", "neon", "avx512bf16", "amx"};
_Static_assert((int)KVZ_ISA_GENERIC == KVZ_KISA_GENERIC && (int)KVZ_ISA_AVX2 == KVZ_KISA_AVX2 &&
                   (int)KVZ_ISA_AVX512 == KVZ_KISA_AVX512 && (int)KVZ_ISA_NEON == KVZ_KISA_NEON &&
                   (int)KVZ_ISA_AVX512_BF16 == KVZ_KISA_AVX512_BF16 && (int)KVZ_ISA_AMX == KVZ_KISA_AMX,
               "public and kernel level ids agree");

static int parse_isa(const char *s, kvz_isa *out)
{
    for (int i = 0; i < KVZ_KISA_COUNT; i++)
        if (strcasecmp(s, isa_names[i]) == 0) {
            *out = (kvz_isa)i;
            return 1;
        }
    return 0;
}

static kvz_isa best_of(unsigned mask)
{
    if (mask & (1u << KVZ_ISA_AMX))
        return KVZ_ISA_AMX;
    if (mask & (1u << KVZ_ISA_AVX512_BF16))
        return KVZ_ISA_AVX512_BF16;
    if (mask & (1u << KVZ_ISA_AVX512))
        return KVZ_ISA_AVX512;
    if (mask & (1u << KVZ_ISA_AVX2))
        return KVZ_ISA_AVX2;
    if (mask & (1u << KVZ_ISA_NEON))
        return KVZ_ISA_NEON;
    return KVZ_ISA_GENERIC;
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
        snprintf(msg, msg_size,
                 "KVZ_ISA=%s is not a level (generic, avx2, avx512, avx512bf16, amx, neon); using %s", env,
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
    unsigned mask = 1u << KVZ_ISA_GENERIC;
    if ((cpu_flags & KVZ_CPU_AVX2) && table_of(KVZ_ISA_AVX2))
        mask |= 1u << KVZ_ISA_AVX2;
    if ((cpu_flags & KVZ_CPU_AVX512) && table_of(KVZ_ISA_AVX512))
        mask |= 1u << KVZ_ISA_AVX512;
    if ((cpu_flags & KVZ_CPU_AVX512_BF16) && table_of(KVZ_ISA_AVX512_BF16))
        mask |= 1u << KVZ_ISA_AVX512_BF16;
    if ((cpu_flags & KVZ_CPU_AMX) && table_of(KVZ_ISA_AMX))
        mask |= 1u << KVZ_ISA_AMX;
    if ((cpu_flags & KVZ_CPU_NEON) && table_of(KVZ_ISA_NEON))
        mask |= 1u << KVZ_ISA_NEON;
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
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "kvz_isa_from_name: '%s' is not generic, avx2, avx512, avx512bf16, amx or neon", name);
    return KVZ_OK;
}

int kvz_cpu_has_avx512_bf16(void)
{
    pthread_once(&once, choose_once);
    return (cpu_flags & KVZ_CPU_AVX512_BF16) != 0;
}
