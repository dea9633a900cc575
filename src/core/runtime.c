/* Version, thread count, NUMA node count, aligned scratch: facts about the running library. */
#include <stdlib.h>

#include "config.h"
#include "core/internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef KVZ_HAVE_NUMA
#include <numa.h>
#endif

#define KVZ_STR_(x) #x
#define KVZ_STR(x) KVZ_STR_(x)

kvz_version_info kvz_version(void)
{
    const kvz_version_info v = {KVZ_VERSION_MAJOR, KVZ_VERSION_MINOR, KVZ_VERSION_PATCH,
                                KVZ_STR(KVZ_VERSION_MAJOR) "." KVZ_STR(KVZ_VERSION_MINOR) "." KVZ_STR(
                                    KVZ_VERSION_PATCH)};
    return v;
}

int kvz_num_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int kvz_numa_nodes(void)
{
#ifdef KVZ_HAVE_NUMA
    if (numa_available() >= 0) {
        const int n = numa_num_configured_nodes();
        return n > 0 ? n : 1;
    }
#endif
    return 1;
}

void *kvz_aligned_alloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0)
        return NULL;
    return p;
}

void kvz_aligned_free(void *p) { free(p); }
