/* Allocation failure injection for a test linked with --wrap for the allocator: fail the n-th allocation. */
#ifndef KVZ_TESTS_FAULT_ALLOC_H
#define KVZ_TESTS_FAULT_ALLOC_H

#include <stddef.h>

/*
 * The link wraps malloc, calloc, realloc, free, posix_memalign, aligned_alloc, strdup,
 * strndup, mmap and munmap in the objects of that link only (--wrap binds at link time):
 * the library's own calls and the test's, never those inside shared libraries (oneDNN,
 * libgomp) or inside glibc, whose failures nobody here can handle.
 */

/* Makes the n-th allocation from now fail and every later one succeed (n = 0: none fails, the
 * count restarts). Every mmap counts as an allocation and fails with ENOMEM, as a mapping does
 * when the address space runs out. */
void fa_arm(unsigned long n);
/* Stops injecting; returns non-zero when the armed allocation was reached (and failed). */
int fa_disarm(void);
/* Allocations counted since the last fa_arm (also after it fired). */
unsigned long fa_count(void);

/* Blocks the wrappers handed out that are not yet freed, and bytes mapped and not yet
 * unmapped: a call that leaks nothing returns both to where they were. */
size_t fa_live_blocks(void);
size_t fa_live_mapped(void);

/* Records the distinct call sites of allocations from fa_sites_begin to fa_sites_end, which
 * returns their count (one site may allocate many times). */
void fa_sites_begin(void);
size_t fa_sites_end(void);

#endif
