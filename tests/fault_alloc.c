/* The wrappers of fault_alloc.h: a counter that fails one chosen allocation, and the set of live blocks. */
#include "fault_alloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __real_posix_memalign(void **p, size_t align, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
int __wrap_posix_memalign(void **p, size_t align, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);

/* ---- the counter ------------------------------------------------------------------------- */

static atomic_ulong counted, fail_at; /* fail_at 0: disarmed */
static atomic_int fired;

void fa_arm(unsigned long n)
{
    atomic_store(&fired, 0);
    atomic_store(&counted, 0);
    atomic_store(&fail_at, n);
}

int fa_disarm(void)
{
    atomic_store(&fail_at, 0);
    return atomic_load(&fired);
}

unsigned long fa_count(void) { return atomic_load(&counted); }

/* The distinct call sites (return addresses) of the allocations while fa_sites_begin is on. */
static pthread_mutex_t sites_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int recording;
static uintptr_t site_slot[1 << 13];
static size_t n_sites;

void fa_sites_begin(void)
{
    pthread_mutex_lock(&sites_mu);
    memset(site_slot, 0, sizeof site_slot);
    n_sites = 0;
    pthread_mutex_unlock(&sites_mu);
    atomic_store(&recording, 1);
}

size_t fa_sites_end(void)
{
    atomic_store(&recording, 0);
    return n_sites;
}

static void record_site(const void *site)
{
    const uintptr_t a = (uintptr_t)site;
    const size_t mask = sizeof site_slot / sizeof *site_slot - 1;
    pthread_mutex_lock(&sites_mu);
    size_t i = (size_t)(a * 0x9E3779B97F4A7C15ull >> 40) & mask;
    while (site_slot[i] && site_slot[i] != a && n_sites < mask)
        i = (i + 1) & mask;
    if (!site_slot[i] && n_sites < mask)
        site_slot[i] = a, n_sites++;
    pthread_mutex_unlock(&sites_mu);
}

/* Counts one allocation made at `site`; non-zero when it is the one to fail. */
static int must_fail(const void *site)
{
    if (atomic_load(&recording))
        record_site(site);
    const unsigned long k = atomic_fetch_add(&counted, 1) + 1, at = atomic_load(&fail_at);
    if (at == 0 || k != at)
        return 0;
    atomic_store(&fired, 1);
    return 1;
}

#define SITE __builtin_return_address(0)

/* ---- live blocks: an open-addressing set of pointers (linear probing, no tombstones) ------ */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t *slots; /* 0: empty */
static size_t n_slots, n_live;
static atomic_size_t mapped;

/* The set holds pointers complemented: LeakSanitizer, which takes any word that points into a
 * block for a reference to it, must not find every block reachable from here. */
static uintptr_t hide(const void *p) { return ~(uintptr_t)p; }

static size_t slot_of(uintptr_t p, size_t mask) { return (size_t)((p >> 4) * 0x9E3779B97F4A7C15ull) & mask; }

/* Under mu. A table that cannot grow stops tracking rather than failing the caller's allocation. */
static void set_add(void *ptr)
{
    if (2 * (n_live + 1) > n_slots) {
        const size_t want = n_slots ? 2 * n_slots : 4096;
        uintptr_t *t = __real_calloc(want, sizeof *t);
        if (!t)
            return;
        for (size_t i = 0; i < n_slots; i++)
            if (slots[i]) {
                size_t j = slot_of(slots[i], want - 1);
                while (t[j])
                    j = (j + 1) & (want - 1);
                t[j] = slots[i];
            }
        __real_free(slots);
        slots = t, n_slots = want;
    }
    const uintptr_t p = hide(ptr);
    size_t i = slot_of(p, n_slots - 1);
    while (slots[i])
        i = (i + 1) & (n_slots - 1);
    slots[i] = p;
    n_live++;
}

/* Under mu: removes p when present (blocks from elsewhere, e.g. glibc's getline, are not). */
static void set_remove(void *ptr)
{
    const uintptr_t p = hide(ptr);
    if (!n_slots)
        return;
    const size_t mask = n_slots - 1;
    size_t i = slot_of(p, mask);
    while (slots[i] && slots[i] != p)
        i = (i + 1) & mask;
    if (!slots[i])
        return;
    slots[i] = 0;
    n_live--;
    /* backward shift: later entries of the probe run move into the hole they would have taken */
    for (size_t j = (i + 1) & mask; slots[j]; j = (j + 1) & mask) {
        const size_t home = slot_of(slots[j], mask);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            slots[i] = slots[j], slots[j] = 0;
            i = j;
        }
    }
}

static void *track(void *p)
{
    if (p) {
        pthread_mutex_lock(&mu);
        set_add(p);
        pthread_mutex_unlock(&mu);
    }
    return p;
}

size_t fa_live_blocks(void)
{
    pthread_mutex_lock(&mu);
    const size_t n = n_live;
    pthread_mutex_unlock(&mu);
    return n;
}

size_t fa_live_mapped(void) { return atomic_load(&mapped); }

/* ---- the wrappers -------------------------------------------------------------------------- */

static void *alloc_at(size_t n, const void *site)
{
    if (must_fail(site)) {
        errno = ENOMEM;
        return NULL;
    }
    return track(__real_malloc(n));
}

void *__wrap_malloc(size_t n) { return alloc_at(n, SITE); }

void *__wrap_calloc(size_t n, size_t size)
{
    if (must_fail(SITE)) {
        errno = ENOMEM;
        return NULL;
    }
    return track(__real_calloc(n, size));
}

void *__wrap_realloc(void *p, size_t n)
{
    if (must_fail(SITE)) {
        errno = ENOMEM;
        return NULL; /* p stays valid, as after a real failure */
    }
    void *q = __real_realloc(p, n);
    if (q || n == 0) {
        pthread_mutex_lock(&mu);
        if (p)
            set_remove(p);
        if (q)
            set_add(q);
        pthread_mutex_unlock(&mu);
    }
    return q;
}

void __wrap_free(void *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&mu);
    set_remove(p);
    pthread_mutex_unlock(&mu);
    __real_free(p);
}

int __wrap_posix_memalign(void **p, size_t align, size_t n)
{
    if (must_fail(SITE))
        return ENOMEM;
    const int e = __real_posix_memalign(p, align, n);
    if (e == 0)
        track(*p);
    return e;
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
    if (must_fail(SITE)) {
        errno = ENOMEM;
        return NULL;
    }
    return track(__real_aligned_alloc(align, n));
}

/* glibc's strdup allocates inside glibc, out of the wrappers' reach: these allocate here. */
static char *dup_at(const char *s, size_t n, const void *site)
{
    const size_t len = strnlen(s, n);
    char *d = alloc_at(len + 1, site);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *__wrap_strndup(const char *s, size_t n) { return dup_at(s, n, SITE); }
char *__wrap_strdup(const char *s) { return dup_at(s, (size_t)-1, SITE); }

/* Whole pages, as the kernel maps and unmaps them. */
static size_t pages(size_t len)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (len + page - 1) / page * page;
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (must_fail(SITE)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    void *p = __real_mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED)
        atomic_fetch_add(&mapped, pages(len));
    return p;
}

int __wrap_munmap(void *addr, size_t len)
{
    const int r = __real_munmap(addr, len);
    if (r == 0)
        atomic_fetch_sub(&mapped, pages(len));
    return r;
}
