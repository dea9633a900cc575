/*
 * The read plan of the bf16 decode kernels (kvz_read_plan): how they stream K/V from memory
 * on this CPU, chosen once per process from its vendor, honouring KVZ_READ_PLAN.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "core/cpu_features.h"
#include "core/internal.h"

_Static_assert((int)KVZ_READ_PLAN_L2X1 == KVZ_KREADS_L2X1 && (int)KVZ_READ_PLAN_L1X4 == KVZ_KREADS_L1X4,
               "the public plans and the kernels' agree");

static const char *const plan_names[] = {[KVZ_READ_PLAN_L2X1] = "l2x1", [KVZ_READ_PLAN_L1X4] = "l1x4"};
enum { PLAN_COUNT = sizeof plan_names / sizeof plan_names[0] };

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int active;

kvz_read_plan kvz_read_plan_choose(const char *env, int vendor, char *msg, size_t msg_size)
{
    /* Intel cores keep more misses in flight over interleaved streams prefetched into L1;
       on AMD's Zen 4 one stream prefetched into L2 reads fastest (perf/results/2026-12-07-tuning.md).
       Other CPUs take the plan of the simpler access pattern. */
    const kvz_read_plan best = vendor == KVZ_VENDOR_INTEL ? KVZ_READ_PLAN_L1X4 : KVZ_READ_PLAN_L2X1;
    if (msg_size)
        msg[0] = '\0';
    if (!env || !*env)
        return best;
    for (int p = 0; p < PLAN_COUNT; p++)
        if (strcasecmp(env, plan_names[p]) == 0)
            return (kvz_read_plan)p;
    snprintf(msg, msg_size, "KVZ_READ_PLAN=%s is not a plan (l2x1, l1x4); using %s", env, plan_names[best]);
    return best;
}

static void choose_once(void)
{
    char msg[256];
    const kvz_read_plan p = kvz_read_plan_choose(getenv("KVZ_READ_PLAN"), kvz_cpu_vendor(), msg, sizeof msg);
    if (msg[0]) { /* as KVZ_ISA: stderr for the operator, kvz_last_error() for the calling thread */
        fprintf(stderr, "libkvz: %s\n", msg);
        kvz_fail(KVZ_ERR_INVALID_ARG, "%s", msg);
    }
    atomic_store(&active, (int)p);
}

kvz_read_plan kvz_read_plan_active(void)
{
    pthread_once(&once, choose_once);
    return (kvz_read_plan)atomic_load_explicit(&active, memory_order_relaxed);
}

kvz_status kvz_read_plan_force(kvz_read_plan plan)
{
    if ((unsigned)plan >= PLAN_COUNT)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "kvz_read_plan_force: %d is not a kvz_read_plan value", (int)plan);
    pthread_once(&once, choose_once); /* so that a later first use does not undo the call */
    atomic_store(&active, (int)plan);
    return KVZ_OK;
}

const char *kvz_read_plan_name(kvz_read_plan plan)
{
    return (unsigned)plan < PLAN_COUNT ? plan_names[plan] : "unknown";
}
