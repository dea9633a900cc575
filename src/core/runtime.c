/* Version, NUMA node count, aligned scratch: facts about the running library. */
#include <pthread.h>
#include <stdlib.h>

#include "config.h"
#include "core/internal.h"

#ifdef KVZ_HAVE_NUMA
#include <numa.h>
#endif

#define KVZ_STR_(x) #x
#define KVZ_STR(x)  KVZ_STR_(x)

kvz_version_info kvz_version(void)
{
    const kvz_version_info v = {
        KVZ_VERSION_MAJOR, KVZ_VERSION_MINOR, KVZ_VERSION_PATCH,
        KVZ_STR(KVZ_VERSION_MAJOR) "." KVZ_STR(KVZ_VERSION_MINOR) "." KVZ_STR(KVZ_VERSION_PATCH)};
    return v;
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

/*
 * Per-thread kernel scratch, kept between calls: a fresh allocation of a few hundred KiB
 * per call goes through mmap and page faults, which cost more than a decode step itself.
 * A pthread key frees it when the thread ends.
 */
typedef struct scratch {
    float *p;
    size_t floats;
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v)
{
    scratch *s = v;
    if (s) {
        kvz_aligned_free(s->p);
        free(s);
    }
}

static void scratch_key_init(void) { (void)pthread_key_create(&scratch_key, scratch_free); }

float *kvz_thread_scratch(size_t floats)
{
    pthread_once(&scratch_once, scratch_key_init);
    scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        if (!(s = calloc(1, sizeof *s)))
            return NULL;
        if (pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->floats < floats) {
        float *p = kvz_aligned_alloc(floats * sizeof(float));
        if (!p)
            return NULL;
        kvz_aligned_free(s->p);
        s->p = p;
        s->floats = floats;
    }
    return s->p;
}
